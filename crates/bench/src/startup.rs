//! `startup`: time from spawning `roster serve` on a fresh data dir to `/readyz` answering 200,
//! and the idle resident memory after that.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::machine;
use crate::stats::round3;

pub struct StartupConfig {
    /// `roster` binary; None when `extra_args` is a whole command (`--exec`).
    pub roster_bin: Option<PathBuf>,
    pub runs: u32,
    pub idle_wait: Duration,
    pub ready_path: String,
    pub timeout: Duration,
    /// Extra arguments appended to `roster serve ...` (e.g. `--database-url postgres://...`),
    /// or, without `roster_bin`, the whole command with `{port}` and `{dir}` placeholders.
    pub extra_args: Vec<String>,
    /// Do not pass `--data-dir` (when `extra_args` name a database instead).
    pub no_data_dir: bool,
}

impl StartupConfig {
    pub fn describe(&self) -> String {
        match &self.roster_bin {
            Some(bin) => format!("{} serve (fresh data dir each run)", bin.display()),
            None => self.extra_args.join(" "),
        }
    }
}

pub struct StartupRun {
    pub ready: Duration,
    pub rss_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr().context("no local address")?.port())
}

async fn one_run(cfg: &StartupConfig, n: u32) -> Result<StartupRun> {
    let dir = std::env::temp_dir().join(format!(
        "roster-bench-startup-{}-{n}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).context("cannot create the server log")?;
    let log_err = log.try_clone().context("cannot clone the log handle")?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let data_dir = dir.join("data");

    let mut cmd = match &cfg.roster_bin {
        Some(bin) => {
            let mut cmd = tokio::process::Command::new(bin);
            cmd.arg("serve").arg("--listen").arg(&listen);
            if !cfg.no_data_dir {
                cmd.arg("--data-dir").arg(&data_dir);
            }
            cmd.args(&cfg.extra_args);
            cmd
        }
        None => {
            let dir_s = data_dir.to_string_lossy().to_string();
            let argv: Vec<String> = cfg
                .extra_args
                .iter()
                .map(|a| {
                    a.replace("{port}", &port.to_string())
                        .replace("{dir}", &dir_s)
                })
                .collect();
            let Some((prog, rest)) = argv.split_first() else {
                bail!("--exec needs a command after --");
            };
            let mut cmd = tokio::process::Command::new(prog);
            cmd.args(rest);
            cmd
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true);

    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!("http://{listen}{}", cfg.ready_path);

    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", cfg.describe()))?;
    let pid = child.id();
    let ready = loop {
        if let Ok(resp) = http.get(&url).send().await {
            if resp.status().as_u16() == 200 {
                break start.elapsed();
            }
        }
        if let Some(status) = child.try_wait().context("cannot poll the server")? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the server exited with {status} before {url} answered 200; log:\n{log}");
        }
        if start.elapsed() > cfg.timeout {
            let _ = child.kill().await;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "{url} did not answer 200 within {:?}; log:\n{log}",
                cfg.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };

    tokio::time::sleep(cfg.idle_wait).await;
    let mem = pid.and_then(machine::rss_kib);
    let _ = child.kill().await;
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(StartupRun {
        ready,
        rss_kib: mem.map(|m| m.0),
        hwm_kib: mem.map(|m| m.1),
    })
}

pub async fn run(cfg: &StartupConfig) -> Result<Vec<StartupRun>> {
    if cfg.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut out = Vec::new();
    for n in 0..cfg.runs {
        let r = one_run(cfg, n).await?;
        println!(
            "  run {}: ready in {:.1} ms, idle RSS {} (peak {})",
            n + 1,
            r.ready.as_secs_f64() * 1000.0,
            fmt_kib(r.rss_kib),
            fmt_kib(r.hwm_kib)
        );
        out.push(r);
    }
    Ok(out)
}

pub fn fmt_kib(k: Option<u64>) -> String {
    k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "?".to_string())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

pub fn summarize(runs: &[StartupRun]) -> Value {
    let ms: Vec<f64> = runs
        .iter()
        .map(|r| r.ready.as_secs_f64() * 1000.0)
        .collect();
    let rss: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.rss_kib)
        .map(|k| k as f64)
        .collect();
    let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ms.iter().copied().fold(0.0, f64::max);
    json!({
        "runs": runs.len(),
        "ready_ms_median": round3(median(ms.clone())),
        "ready_ms_min": round3(min),
        "ready_ms_max": round3(max),
        "ready_ms_all": ms.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        "idle_rss_kib_median": if rss.is_empty() { Value::Null } else { json!(median(rss)) },
    })
}
