//! `seed-access`: the directory and policy of the authorize benchmark, loaded into a live
//! Roster. Users and groups go in through SCIM `POST /Bulk` (groups leaves first, each
//! level naming the one below as members); the policy ([`crate::policy`]) through
//! `PUT /api/v1/access/policy`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{okta_group, okta_user, parse_url, send, Target, BULK_SCHEMA};
use crate::policy::{self, Spec, LEVELS};
use crate::stats::round3;

pub struct SeedConfig {
    pub spec: Spec,
    /// How many users' refs to write to `users_out` (the benchmarked users).
    pub bench_users: usize,
    /// Operations per `POST /Bulk`.
    pub bulk: usize,
    pub concurrency: usize,
    /// Roster's admin API base (`.../api/v1`); `None` writes the policy without importing it.
    pub admin_url: Option<String>,
    pub admin_token: Option<String>,
    /// Roster's catalog feed URL (with `?token=`): read once before the import, so
    /// every user and group has its entity name.
    pub feed_url: Option<String>,
    pub policy_out: Option<PathBuf>,
    pub users_out: Option<PathBuf>,
    /// Only generate the policy (no SCIM, no import).
    pub dry_run: bool,
}

/// One bulk request of creations; returns the ids created, by bulkId.
async fn bulk_create(
    http: &reqwest::Client,
    target: &Target,
    ops: Vec<(String, &'static str, Value)>,
) -> Result<Vec<(String, String)>> {
    let n = ops.len();
    let operations: Vec<Value> = ops
        .into_iter()
        .map(|(bulk_id, path, data)| {
            json!({"method": "POST", "path": path, "bulkId": bulk_id, "data": data})
        })
        .collect();
    let body = json!({"schemas": [BULK_SCHEMA], "failOnErrors": 1, "Operations": operations});
    let url = parse_url(&target.url("/Bulk")).map_err(anyhow::Error::msg)?;
    let reply = send(http, Method::POST, url, Some(&body))
        .await
        .map_err(anyhow::Error::msg)?;
    if reply.status != StatusCode::OK {
        bail!(reply.unexpected("POST /Bulk"));
    }
    let v = reply.json().map_err(anyhow::Error::msg)?;
    let mut out = Vec::with_capacity(n);
    for op in v
        .get("Operations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let status = op.get("status").map(|s| s.to_string().replace('"', ""));
        let bulk_id = op.get("bulkId").and_then(Value::as_str);
        let id = op
            .get("location")
            .and_then(Value::as_str)
            .and_then(|l| l.rsplit('/').next());
        match (status.as_deref(), bulk_id, id) {
            (Some("201"), Some(b), Some(id)) => out.push((b.to_string(), id.to_string())),
            _ => bail!("POST /Bulk: an operation failed: {op}"),
        }
    }
    if out.len() != n {
        bail!(
            "POST /Bulk: {} of {n} creations answered: {}",
            out.len(),
            reply.snippet()
        );
    }
    Ok(out)
}

/// Runs `jobs` bulk requests, `concurrency` at a time; returns id by index.
async fn create_all(
    target: &Arc<Target>,
    concurrency: usize,
    total: usize,
    chunk: usize,
    path: &'static str,
    make: impl Fn(usize) -> Value,
) -> Result<Vec<String>> {
    let http = target.client()?;
    let chunks: Vec<Vec<(String, &'static str, Value)>> = (0..total)
        .collect::<Vec<_>>()
        .chunks(chunk.max(1))
        .map(|c| c.iter().map(|&i| (i.to_string(), path, make(i))).collect())
        .collect();
    let results: Vec<Vec<(String, String)>> = stream::iter(chunks)
        .map(|ops| bulk_create(&http, target, ops))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut ids = vec![String::new(); total];
    for (bulk_id, id) in results.into_iter().flatten() {
        let i: usize = bulk_id.parse().context("a bulkId that was not sent")?;
        ids[i] = id;
    }
    Ok(ids)
}

async fn admin_put_policy(url: &str, token: &str, policy: &Value) -> Result<Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let body = serde_json::to_vec(policy)?;
    let bytes = body.len();
    let resp = http
        .put(format!("{}/access/policy", url.trim_end_matches('/')))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .context("PUT /access/policy")?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "PUT /access/policy ({bytes} bytes): HTTP {}: {}",
            status.as_u16(),
            text.chars().take(500).collect::<String>()
        );
    }
    Ok(json!({"bytes": bytes, "status": status.as_u16()}))
}

pub async fn run(target: Arc<Target>, cfg: &SeedConfig) -> Result<Value> {
    let spec = &cfg.spec;
    let layout = spec.layout()?;
    let mut report = json!({
        "users": spec.users, "groups": spec.groups, "roles": spec.roles,
        "rules": spec.roles * spec.rules_per_role, "roles_per_user": spec.roles_per_user,
        "direct_users": spec.direct_users, "level_sizes": spec.level_sizes(),
    });

    if !cfg.dry_run {
        let t = Instant::now();
        let user_ids = create_all(
            &target,
            cfg.concurrency,
            spec.users,
            cfg.bulk,
            "/Users",
            |u| {
                let email = policy::user_email(u);
                okta_user(
                    &email,
                    &format!("Bench{u}"),
                    &format!("User{}", u % 1000),
                    &format!("bench-{u}"),
                )
            },
        )
        .await
        .context("while creating users")?;
        let users_secs = t.elapsed().as_secs_f64();
        eprintln!("seed: {} users in {users_secs:.1} s", spec.users);

        // Groups, leaves first: members of a leaf are users, of any other group its children.
        let t = Instant::now();
        let sizes = spec.level_sizes();
        let mut leaf_members: Vec<Vec<Value>> = vec![Vec::new(); sizes[LEVELS - 1]];
        for (u, id) in user_ids.iter().enumerate() {
            leaf_members[spec.leaf_of(u)].push(json!({"value": id, "type": "User"}));
        }
        let mut members = leaf_members;
        for level in (0..LEVELS).rev() {
            let m = std::mem::take(&mut members);
            // Groups with many members go in smaller bulks.
            let chunk = (cfg.bulk / 10).max(10);
            let ids = create_all(
                &target,
                cfg.concurrency,
                sizes[level],
                chunk,
                "/Groups",
                |g| {
                    let mut doc = okta_group(&policy::group_name(level, g));
                    doc["members"] = json!(m[g]);
                    doc
                },
            )
            .await
            .with_context(|| format!("while creating the groups of level {}", level + 1))?;
            if level > 0 {
                members = vec![Vec::new(); sizes[level - 1]];
                for (g, id) in ids.iter().enumerate() {
                    if let Some(p) = spec.parent(level, g) {
                        members[p].push(json!({"value": id, "type": "Group"}));
                    }
                }
            }
        }
        let groups_secs = t.elapsed().as_secs_f64();
        eprintln!("seed: {} groups in {groups_secs:.1} s", spec.groups);
        report["scim_users_secs"] = json!(round3(users_secs));
        report["scim_groups_secs"] = json!(round3(groups_secs));

        if let Some(feed) = &cfg.feed_url {
            // Entity names are claimed when the feed is first served.
            let t = Instant::now();
            let resp = reqwest::Client::builder()
                .no_proxy()
                .build()?
                .get(feed)
                .send()
                .await
                .context("GET the catalog feed")?;
            if resp.status() != StatusCode::OK {
                bail!("GET the catalog feed: HTTP {}", resp.status().as_u16());
            }
            let body = resp.bytes().await.context("reading the catalog feed")?;
            eprintln!(
                "seed: catalog feed read ({} bytes) in {:.1} s",
                body.len(),
                t.elapsed().as_secs_f64()
            );
        }
    }

    let doc = policy::policy(spec)?;
    let assignments = doc["assignments"].as_array().map_or(0, Vec::len);
    report["assignments"] = json!(assignments);
    if let Some(path) = &cfg.policy_out {
        let text = serde_json::to_string(&doc)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !cfg.dry_run {
        if let (Some(url), Some(token)) = (&cfg.admin_url, &cfg.admin_token) {
            let t = Instant::now();
            let r = admin_put_policy(url, token, &doc).await?;
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "seed: policy imported ({} roles, {assignments} assignments, {} bytes) in {secs:.2} s",
                spec.roles, r["bytes"]
            );
            report["policy_bytes"] = r["bytes"].clone();
            report["policy_import_secs"] = json!(round3(secs));
        }
    }
    if let Some(path) = &cfg.users_out {
        let refs: Vec<String> = (0..cfg.bench_users.min(spec.direct_users).min(spec.users))
            .map(policy::user_ref)
            .collect();
        std::fs::write(path, refs.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let bench_roles = spec.roles_of(&layout, 0).len();
    report["roles_of_a_bench_user"] = json!(bench_roles);
    Ok(report)
}
