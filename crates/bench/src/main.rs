//! roster-bench: a SCIM 2.0 load generator for Roster and for peer servers.
//!
//! Every response is verified (status code and key body fields); any failed verification
//! makes the run exit non-zero. See docs/benchmarks.md and scripts/bench.sh.

mod authorize;
mod client;
mod compare;
mod load;
mod machine;
mod policy;
mod scenarios;
mod seed;
mod startup;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::client::Target;
use crate::scenarios::{Limit, Pools, ALL_SCENARIOS};

#[derive(Parser)]
#[command(
    name = "roster-bench",
    version,
    about = "SCIM 2.0 load generator: drives a live SCIM server with N concurrent clients, verifying every response.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the five scenarios in order (the default when no subcommand is given).
    Run(RunArgs),
    /// Create N users as fast as possible and report the wall time.
    Load(LoadArgs),
    /// Measure `roster serve` start-up time until /readyz answers 200, and idle RSS.
    Startup(StartupArgs),
    /// Print the per-operation ratios between two JSON results.
    Compare(CompareArgs),
    /// Backstage permission decisions per second over HTTP (`POST .../authorize`).
    Authorize(AuthorizeArgs),
    /// How long after an admin API change a decision through `authorize` flips.
    PolicyChangeLatency(PolicyChangeArgs),
    /// Load the authorize benchmark's users, groups and policy into a live Roster.
    SeedAccess(SeedAccessArgs),
}

#[derive(Args)]
struct AuthorizeArgs {
    /// The authorize URL, e.g. http://127.0.0.1:8080/backstage/permission/authorize
    /// or Backstage's own http://127.0.0.1:7007/api/permission/authorize.
    #[arg(long)]
    url: String,
    /// Bearer tokens (Backstage user tokens), one per line; requests rotate through them.
    #[arg(long)]
    tokens_file: PathBuf,
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 8)]
    clients: usize,
    /// How long to measure (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = authorize::parse_duration)]
    duration: Duration,
    /// Requests before this are sent but not counted.
    #[arg(long, default_value = "1s", value_parser = authorize::parse_duration)]
    warmup: Duration,
    /// Items per request.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Permissions to ask about, in turn: a Backstage name (`catalog.entity.read`) or
    /// NAME:TYPE[:ACTION] (TYPE `basic` or a resource type). Default: a catalog mix.
    #[arg(long = "permission")]
    permissions: Vec<String>,
    /// Send this resourceRef with every resource permission (e.g. component:default/x).
    #[arg(long)]
    resource_ref: Option<String>,
    #[arg(long, default_value = "authorize")]
    label: String,
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// PID of the server process, to report its RSS after the run.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Threads driving the clients. One keeps the load generator to one
    /// core: on a small machine it shares the cores with the server, and
    /// every extra busy thread adds scheduling delay to the server's
    /// latencies.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Args)]
struct PolicyChangeArgs {
    /// Roster's Backstage-compatible authorize URL.
    #[arg(long)]
    url: String,
    /// A file whose first token is the probe user's.
    #[arg(long)]
    tokens_file: PathBuf,
    /// The probe user's entity ref (the subject of the first token).
    #[arg(long)]
    subject: String,
    /// Roster's admin API base, e.g. http://127.0.0.1:8080/api/v1.
    #[arg(long)]
    admin_url: String,
    /// An admin-scoped Roster token.
    #[arg(long, env = "ROSTER_BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// A basic permission no other role of the subject decides.
    #[arg(long, default_value = policy::PROBE_PERMISSION)]
    permission: String,
    /// The role the benchmark creates, flips and deletes.
    #[arg(long, default_value = "bench-probe")]
    role: String,
    /// Each iteration flips four times: role to deny, role to allow, unassign, assign.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Give up on one flip after this long.
    #[arg(long, default_value = "5s", value_parser = authorize::parse_duration)]
    timeout: Duration,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args)]
struct SeedAccessArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    #[arg(long, default_value_t = 200)]
    roles: usize,
    #[arg(long, default_value_t = 10)]
    rules_per_role: usize,
    #[arg(long, default_value_t = 50)]
    roles_per_user: usize,
    /// Users (from the first) with direct assignments as well as group ones.
    #[arg(long, default_value_t = 1_000)]
    direct_users: usize,
    /// How many benchmarked users' refs to write to --users-out.
    #[arg(long, default_value_t = 50)]
    bench_users: usize,
    /// Operations per POST /Bulk.
    #[arg(long, default_value_t = 500)]
    bulk: usize,
    /// Roster's admin API base (http://.../api/v1); omit to skip the policy import.
    #[arg(long)]
    admin_url: Option<String>,
    #[arg(long, env = "ROSTER_BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Roster's catalog feed with ?token=, read once so entity names exist before the import.
    #[arg(long)]
    feed_url: Option<String>,
    /// Write the policy JSON here.
    #[arg(long)]
    policy_out: Option<PathBuf>,
    /// Write the benchmarked users' entity refs here, one per line.
    #[arg(long)]
    users_out: Option<PathBuf>,
    /// Only write the policy (and users) files; touch no server.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct ConnArgs {
    /// SCIM base URL.
    #[arg(
        long,
        env = "ROSTER_BENCH_URL",
        default_value = "http://127.0.0.1:8080/scim/v2"
    )]
    url: String,
    /// Bearer token (omit for a server without auth).
    #[arg(long, env = "ROSTER_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Iterations per scenario instead of a duration.
    #[arg(long, conflicts_with = "duration_secs")]
    ops: Option<u64>,
    /// Name of this run in reports, e.g. roster-sqlite.
    #[arg(long, default_value = "roster")]
    label: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// A previous JSON result (e.g. the peer's) to print ratios against.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Target is a peer: an operation with no successful response is reported as
    /// "unsupported by peer" instead of failing the run.
    #[arg(long)]
    peer: bool,
    /// PID of the server process, to report its RSS after the run.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Number of users to create.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Send POST /Bulk requests of this many creations instead of one POST /Users per user.
    #[arg(long, default_value_t = 0)]
    bulk: u64,
    #[arg(long, default_value = "roster")]
    label: String,
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// PID of the server process, to report its RSS after the load.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Args)]
struct StartupArgs {
    /// Path of the roster binary (runs `roster serve --listen 127.0.0.1:PORT --data-dir TMP`).
    #[arg(long, required_unless_present = "exec")]
    roster_bin: Option<PathBuf>,
    /// Instead of roster, start the command given after `--`, with `{port}` and `{dir}`
    /// substituted (e.g. `-- .venv/bin/scim2-server --port {port}`, `--ready-path /v2/ServiceProviderConfig`).
    #[arg(long, conflicts_with = "roster_bin")]
    exec: bool,
    /// Number of cold starts to measure (each on a fresh temporary data dir).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Milliseconds to wait once ready before reading VmRSS.
    #[arg(long, default_value_t = 1000)]
    idle_ms: u64,
    #[arg(long, default_value = "/readyz")]
    ready_path: String,
    /// Give up on a start after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Do not pass --data-dir (use with `-- --database-url ...`).
    #[arg(long)]
    no_data_dir: bool,
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Extra arguments for `roster serve` (or the whole command with --exec), after `--`.
    #[arg(last = true)]
    extra: Vec<String>,
}

#[derive(Args)]
struct CompareArgs {
    /// Our result (JSON from --json-out).
    ours: PathBuf,
    /// The other result, e.g. the peer's.
    theirs: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(Command::Authorize(a)) = &cli.command {
        builder.worker_threads(a.threads.max(1));
    }
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    match cli.command {
        None => rt.block_on(run(cli.run)),
        Some(Command::Run(a)) => rt.block_on(run(a)),
        Some(Command::Load(a)) => rt.block_on(load_cmd(a)),
        Some(Command::Startup(a)) => rt.block_on(startup_cmd(a)),
        Some(Command::Authorize(a)) => rt.block_on(authorize_cmd(a)),
        Some(Command::PolicyChangeLatency(a)) => rt.block_on(policy_change_cmd(a)),
        Some(Command::SeedAccess(a)) => rt.block_on(seed_access_cmd(a)),
        Some(Command::Compare(a)) => {
            let ours = compare::load(&a.ours)?;
            let theirs = compare::load(&a.theirs)?;
            compare::print(&ours, &theirs);
            Ok(())
        }
    }
}

fn run_id() -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(8);
    s
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write_json(path: &PathBuf, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).context("cannot encode the results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

fn server_mem(pid: Option<u32>) -> Value {
    match pid.and_then(machine::rss_kib) {
        Some((rss, hwm)) => {
            println!(
                "server RSS: {} (peak {})",
                startup::fmt_kib(Some(rss)),
                startup::fmt_kib(Some(hwm))
            );
            json!({"rss_kib": rss, "hwm_kib": hwm})
        }
        None => Value::Null,
    }
}

async fn run(a: RunArgs) -> Result<()> {
    let target = Arc::new(Target::new(
        &a.conn.url,
        a.conn.token.clone(),
        Duration::from_secs(a.conn.timeout_secs),
    )?);
    let rid: Arc<str> = Arc::from(run_id());
    let limit = match a.ops {
        Some(n) => Limit::Ops(n),
        None => Limit::Duration(Duration::from_secs(a.duration_secs)),
    };
    let limit_text = match limit {
        Limit::Ops(n) => format!("{n} iterations per scenario"),
        Limit::Duration(d) => format!("{} s per scenario", d.as_secs()),
    };
    println!(
        "roster-bench: {} -> {}  concurrency={}  {}  run id {}",
        a.label, target.base, a.conn.concurrency, limit_text, rid
    );
    println!("{}", machine::describe_line());

    let mut workers = scenarios::make_workers(a.conn.concurrency, &target, &rid)?;
    let mut pools = Pools::default();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for scenario in ALL_SCENARIOS {
        println!();
        println!("{}", scenario.title());
        let shared = Arc::new(std::mem::take(&mut pools));
        let (mut ws, result) =
            scenarios::run_scenario(scenario, workers, Arc::clone(&shared), limit, a.peer).await?;
        pools = Arc::try_unwrap(shared)
            .map_err(|_| anyhow::anyhow!("pool still shared after a scenario"))?;
        scenarios::collect_created(&mut ws, &mut pools);
        workers = ws;
        println!(
            "{}   ({:.1} s)",
            stats::table_header(),
            result.elapsed.as_secs_f64()
        );
        for op in &result.ops {
            println!("{}", stats::table_row(op));
            if op.verdict.fails() || op.verdict == stats::Verdict::Unsupported {
                for s in &op.stats.samples {
                    println!("      e.g. {s}");
                }
            }
            if op.verdict.fails() {
                failed.push(op.op);
            }
        }
        results.push(result);
    }
    println!();
    println!(
        "created {} users and {} groups",
        pools.users.len(),
        pools.groups.len()
    );
    let mem = server_mem(a.server_pid);

    let doc = json!({
        "tool": "roster-bench",
        "label": a.label,
        "url": target.base,
        "concurrency": a.conn.concurrency,
        "duration_secs": match limit { Limit::Duration(d) => json!(d.as_secs()), Limit::Ops(_) => Value::Null },
        "ops_per_scenario": match limit { Limit::Ops(n) => json!(n), Limit::Duration(_) => Value::Null },
        "peer_mode": a.peer,
        "run_id": &*rid,
        "unix_time": unix_now(),
        "machine": machine::describe(),
        "server_memory": mem,
        "users_created": pools.users.len(),
        "groups_created": pools.groups.len(),
        "scenarios": results.iter().map(|r| json!({
            "scenario": r.scenario.title(),
            "elapsed_secs": stats::round3(r.elapsed.as_secs_f64()),
            "ops": r.ops.iter().map(stats::OpResult::to_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    if let Some(path) = &a.json_out {
        write_json(path, &doc)?;
        println!("results written to {}", path.display());
    }
    if let Some(path) = &a.compare {
        let theirs = compare::load(path)?;
        compare::print(&doc, &theirs);
    }
    if !failed.is_empty() {
        bail!("responses failed verification for: {}", failed.join(", "));
    }
    Ok(())
}

async fn load_cmd(a: LoadArgs) -> Result<()> {
    let target = Arc::new(Target::new(
        &a.conn.url,
        a.conn.token.clone(),
        Duration::from_secs(a.conn.timeout_secs),
    )?);
    let cfg = load::LoadConfig {
        users: a.users,
        concurrency: a.conn.concurrency,
        bulk: a.bulk,
        run_id: run_id(),
    };
    let how = if a.bulk > 0 {
        format!("POST /Bulk x{}", a.bulk)
    } else {
        "POST /Users".to_string()
    };
    println!(
        "roster-bench load: {} users into {} ({}) via {how}, concurrency={}",
        a.users, target.base, a.label, a.conn.concurrency
    );
    println!("{}", machine::describe_line());
    let r = load::run(Arc::clone(&target), &cfg).await?;
    let secs = r.wall.as_secs_f64();
    println!(
        "loaded {} users in {:.2} s = {:.0} users/s  (request p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms), {} errors",
        r.created,
        secs,
        r.created as f64 / secs.max(1e-9),
        r.stats.p50_ms(),
        r.stats.p99_ms(),
        r.stats.max_ms(),
        r.stats.errors
    );
    match r.total_results {
        Some(t) => println!("server reports totalResults = {t} users"),
        None => println!("server did not answer GET /Users?count=0 with a totalResults"),
    }
    for s in &r.stats.samples {
        println!("      e.g. {s}");
    }
    let mem = server_mem(a.server_pid);
    if let Some(path) = &a.json_out {
        let mut doc = r.to_json(&cfg);
        doc["label"] = json!(a.label);
        doc["url"] = json!(target.base);
        doc["machine"] = machine::describe();
        doc["server_memory"] = mem;
        write_json(path, &doc)?;
    }
    if r.stats.errors > 0 || r.created != a.users {
        bail!(
            "load incomplete: {} of {} users created, {} errors",
            r.created,
            a.users,
            r.stats.errors
        );
    }
    if let Some(t) = r.total_results {
        if t < a.users {
            bail!(
                "server reports totalResults = {t}, fewer than the {} users just created",
                a.users
            );
        }
    }
    Ok(())
}

async fn startup_cmd(a: StartupArgs) -> Result<()> {
    let cfg = startup::StartupConfig {
        roster_bin: a.roster_bin,
        runs: a.runs,
        idle_wait: Duration::from_millis(a.idle_ms),
        ready_path: a.ready_path,
        timeout: Duration::from_secs(a.timeout_secs),
        extra_args: a.extra,
        no_data_dir: a.no_data_dir,
    };
    println!(
        "roster-bench startup: {}, {} runs",
        cfg.describe(),
        cfg.runs
    );
    println!("{}", machine::describe_line());
    let runs = startup::run(&cfg).await?;
    let summary = startup::summarize(&runs);
    println!(
        "startup: ready in {} ms median (min {} ms, max {} ms); idle RSS {} median",
        summary["ready_ms_median"],
        summary["ready_ms_min"],
        summary["ready_ms_max"],
        startup::fmt_kib(summary["idle_rss_kib_median"].as_f64().map(|k| k as u64)),
    );
    if let Some(path) = &a.json_out {
        let mut doc = summary;
        doc["machine"] = machine::describe();
        write_json(path, &doc)?;
    }
    Ok(())
}

async fn authorize_cmd(a: AuthorizeArgs) -> Result<()> {
    let names: Vec<String> = if a.permissions.is_empty() {
        authorize::DEFAULT_PERMISSIONS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        a.permissions.clone()
    };
    let cfg = authorize::AuthorizeConfig {
        url: a.url.clone(),
        tokens: authorize::read_tokens(&a.tokens_file)?,
        clients: a.clients,
        duration: a.duration,
        warmup: a.warmup,
        batch: a.batch,
        permissions: names
            .iter()
            .map(|n| authorize::Permission::parse(n))
            .collect::<Result<_>>()?,
        resource_ref: a.resource_ref.clone(),
        timeout: Duration::from_secs(a.timeout_secs),
    };
    println!(
        "roster-bench authorize: {} -> {}  clients={}  batch={}  {:.1} s (+{:.1} s warm-up)  {} tokens  permissions {}{}",
        a.label,
        cfg.url,
        cfg.clients,
        cfg.batch,
        cfg.duration.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        cfg.tokens.len(),
        names.join(", "),
        cfg.resource_ref
            .as_deref()
            .map(|r| format!(" (resourceRef {r})"))
            .unwrap_or_default()
    );
    println!("{}", machine::describe_line());
    let r = authorize::run(&cfg).await?;
    println!(
        "{}: {:.0} decisions/s, {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} requests ok, {} errors; ALLOW {} DENY {} CONDITIONAL {}",
        a.label,
        r.decisions_per_sec(),
        r.requests_per_sec(),
        r.stats.p50_ms(),
        r.stats.p99_ms(),
        r.stats.max_ms(),
        r.stats.ok,
        r.stats.errors,
        r.tally.allow,
        r.tally.deny,
        r.tally.conditional
    );
    for s in &r.stats.samples {
        println!("      e.g. {s}");
    }
    let mem = server_mem(a.server_pid);
    let mut doc = r.to_json(&cfg);
    doc["tool"] = json!("roster-bench authorize");
    doc["label"] = json!(a.label);
    doc["unix_time"] = json!(unix_now());
    doc["machine"] = machine::describe();
    doc["server_memory"] = mem;
    if let Some(path) = &a.json_out {
        write_json(path, &doc)?;
    }
    if r.stats.errors > 0 || r.stats.ok == 0 {
        bail!(
            "{} of {} responses failed verification",
            r.stats.errors,
            r.stats.errors + r.stats.ok
        );
    }
    Ok(())
}

async fn policy_change_cmd(a: PolicyChangeArgs) -> Result<()> {
    let token = authorize::read_tokens(&a.tokens_file)?
        .into_iter()
        .next()
        .context("no token")?;
    let cfg = authorize::ChangeConfig {
        url: a.url,
        token,
        subject: a.subject,
        admin_url: a.admin_url,
        admin_token: a.admin_token,
        permission: authorize::Permission::parse(&a.permission)?,
        role: a.role,
        iterations: a.iterations,
        timeout: a.timeout,
    };
    println!(
        "roster-bench policy-change-latency: {} for {} via {}, {} iterations x 4 flips",
        cfg.permission.name, cfg.subject, cfg.url, cfg.iterations
    );
    println!("{}", machine::describe_line());
    let mut doc = authorize::change_latency(&cfg).await?;
    let all = &doc["all"];
    println!(
        "policy change visible: p50 {} ms, p99 {} ms, max {} ms from the admin request ({} flips); from its answer: p50 {} ms, max {} ms",
        all["from_request_ms"]["p50"],
        all["from_request_ms"]["p99"],
        all["from_request_ms"]["max"],
        all["flips"],
        all["from_ack_ms"]["p50"],
        all["from_ack_ms"]["max"]
    );
    if let Some(kinds) = doc["by_kind"].as_object() {
        for (kind, v) in kinds {
            println!(
                "  {kind:<14} p50 {:>8} ms  max {:>8} ms  (from answer: p50 {} ms, max {} ms; most polls {})",
                v["from_request_ms"]["p50"],
                v["from_request_ms"]["max"],
                v["from_ack_ms"]["p50"],
                v["from_ack_ms"]["max"],
                v["max_polls"]
            );
        }
    }
    doc["tool"] = json!("roster-bench policy-change-latency");
    doc["unix_time"] = json!(unix_now());
    doc["machine"] = machine::describe();
    if let Some(path) = &a.json_out {
        write_json(path, &doc)?;
    }
    Ok(())
}

async fn seed_access_cmd(a: SeedAccessArgs) -> Result<()> {
    let target = Arc::new(Target::new(
        &a.conn.url,
        a.conn.token.clone(),
        Duration::from_secs(a.conn.timeout_secs.max(120)),
    )?);
    let cfg = seed::SeedConfig {
        spec: policy::Spec {
            users: a.users,
            groups: a.groups,
            roles: a.roles,
            rules_per_role: a.rules_per_role,
            roles_per_user: a.roles_per_user,
            direct_users: a.direct_users,
        },
        bench_users: a.bench_users,
        bulk: a.bulk,
        concurrency: a.conn.concurrency.min(4),
        admin_url: a.admin_url,
        admin_token: a.admin_token,
        feed_url: a.feed_url,
        policy_out: a.policy_out,
        users_out: a.users_out,
        dry_run: a.dry_run,
    };
    let t = std::time::Instant::now();
    let mut report = seed::run(target, &cfg).await?;
    report["wall_secs"] = json!(stats::round3(t.elapsed().as_secs_f64()));
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &a.json_out {
        write_json(path, &report)?;
    }
    Ok(())
}
