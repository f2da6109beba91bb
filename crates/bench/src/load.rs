//! `load`: create N users as fast as possible and report the wall time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{self, okta_user, parse_url, send, Target, BULK_SCHEMA};
use crate::stats::{round3, OpStats};

pub struct LoadConfig {
    pub users: u64,
    pub concurrency: usize,
    /// 0: one POST /Users per user; otherwise POST /Bulk with this many operations.
    pub bulk: u64,
    pub run_id: String,
}

pub struct LoadResult {
    pub wall: Duration,
    pub created: u64,
    pub stats: OpStats,
    pub total_results: Option<u64>,
}

impl LoadResult {
    pub fn to_json(&self, cfg: &LoadConfig) -> Value {
        let secs = self.wall.as_secs_f64();
        json!({
            "users": cfg.users,
            "bulk": cfg.bulk,
            "concurrency": cfg.concurrency,
            "created": self.created,
            "errors": self.stats.errors,
            "wall_secs": round3(secs),
            "users_per_sec": round3(if secs > 0.0 { self.created as f64 / secs } else { 0.0 }),
            "request_p50_ms": round3(self.stats.p50_ms()),
            "request_p99_ms": round3(self.stats.p99_ms()),
            "request_max_ms": round3(self.stats.max_ms()),
            "total_results_after": self.total_results,
            "error_samples": self.stats.samples,
        })
    }
}

fn user_for(run_id: &str, i: u64) -> (String, Value) {
    let user_name = format!("load.{run_id}.{i}@example.com");
    let body = okta_user(
        &user_name,
        &format!("Given{i}"),
        &format!("Family{}", i % 1000),
        &format!("00l{run_id}{i:09}"),
    );
    (user_name, body)
}

async fn create_one(
    http: &reqwest::Client,
    target: &Target,
    run_id: &str,
    i: u64,
) -> Result<Duration, String> {
    let (user_name, body) = user_for(run_id, i);
    let url = parse_url(&target.url("/Users"))?;
    let reply = send(http, Method::POST, url, Some(&body)).await?;
    client::verify_created(&reply, "POST /Users", "userName", &user_name)?;
    Ok(reply.latency)
}

/// One POST /Bulk holding `n` user creations starting at `first`; returns how many verified.
async fn create_bulk(
    http: &reqwest::Client,
    target: &Target,
    run_id: &str,
    first: u64,
    n: u64,
) -> Result<(Duration, u64), String> {
    let operations: Vec<Value> = (first..first + n)
        .map(|i| {
            let (_, body) = user_for(run_id, i);
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": body})
        })
        .collect();
    let body = json!({"schemas": [BULK_SCHEMA], "failOnErrors": 0, "Operations": operations});
    let url = parse_url(&target.url("/Bulk"))?;
    let reply = send(http, Method::POST, url, Some(&body)).await?;
    if reply.status != StatusCode::OK {
        return Err(reply.unexpected("POST /Bulk"));
    }
    let v = reply.json()?;
    let ops = v
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("POST /Bulk: no Operations in response: {}", reply.snippet()))?;
    let created = ops
        .iter()
        .filter(|o| {
            // RFC 7644 shows status as a string ("201"); accept a number or {"code": ..} too.
            let st = o.get("status");
            let code = st
                .and_then(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .or_else(|| s.as_u64().map(|n| n.to_string()))
                })
                .or_else(|| {
                    st.and_then(|s| s.get("code"))
                        .map(|c| c.to_string().trim_matches('"').to_string())
                });
            code.as_deref() == Some("201")
        })
        .count() as u64;
    if created != n {
        return Err(format!(
            "POST /Bulk: {created} of {n} creations answered 201: {}",
            reply.snippet()
        ));
    }
    Ok((reply.latency, created))
}

pub async fn run(target: Arc<Target>, cfg: &LoadConfig) -> Result<LoadResult> {
    if cfg.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let chunk = cfg.bulk.max(1);
    let mut handles = Vec::new();
    for _ in 0..cfg.concurrency {
        let target = Arc::clone(&target);
        let next = Arc::clone(&next);
        let done = Arc::clone(&done);
        let run_id = cfg.run_id.clone();
        let users = cfg.users;
        let bulk = cfg.bulk;
        let http = target.client()?;
        handles.push(tokio::spawn(async move {
            let mut stats = OpStats::new()?;
            loop {
                let first = next.fetch_add(chunk, Ordering::Relaxed);
                if first >= users {
                    break;
                }
                let n = chunk.min(users - first);
                if bulk == 0 {
                    match create_one(&http, &target, &run_id, first).await {
                        Ok(lat) => {
                            stats.success(lat);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => stats.failure(e),
                    }
                } else {
                    match create_bulk(&http, &target, &run_id, first, n).await {
                        Ok((lat, created)) => {
                            stats.success(lat);
                            done.fetch_add(created, Ordering::Relaxed);
                        }
                        Err(e) => stats.failure(e),
                    }
                }
            }
            anyhow::Ok(stats)
        }));
    }

    // Progress on stderr every 5 s until all workers are done.
    let progress = {
        let done = Arc::clone(&done);
        let total = cfg.users;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let d = done.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                eprintln!(
                    "  load: {d}/{total} users in {secs:.1} s ({:.0}/s)",
                    d as f64 / secs
                );
            }
        })
    };

    let mut stats = OpStats::new()?;
    let mut first_err = None;
    for joined in futures::future::join_all(handles).await {
        match joined.context("a load worker panicked")? {
            Ok(s) => stats.merge(&s)?,
            Err(e) => first_err = Some(e),
        }
    }
    let wall = start.elapsed();
    progress.abort();
    if let Some(e) = first_err {
        return Err(e);
    }

    // Cross-check: the server now reports at least this many users.
    let http = target.client()?;
    let url = reqwest::Url::parse_with_params(&target.url("/Users"), &[("count", "0")])
        .context("bad URL")?;
    let total_results = match send(&http, Method::GET, url, None).await {
        Ok(reply) if reply.status == StatusCode::OK => reply
            .json()
            .ok()
            .and_then(|v| v.get("totalResults").and_then(Value::as_u64)),
        _ => None,
    };

    Ok(LoadResult {
        wall,
        created: done.load(Ordering::Relaxed),
        stats,
        total_results,
    })
}
