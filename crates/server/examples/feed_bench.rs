//! How long the Backstage catalog feed takes, and how much memory it needs,
//! for a large directory: 100,000 users and 10,000 groups by default.
//!
//! ```text
//! cargo run --release -p roster-server --example feed_bench [-- USERS GROUPS]
//! ```
//!
//! The directory goes straight into the store (a fresh SQLite file; and a
//! fresh PostgreSQL database beside `ROSTER_BENCH_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`, when that server answers).
//! Every user has a display name, an email and an external id, one in 20
//! is deactivated, each is in two groups, and the groups form a tree (every
//! group but the first hundred is a member of another). A child process
//! builds the directory; then the real HTTP server serves the feed to a
//! client in the same process, which reads the body as a stream (never
//! holding it) and counts its documents.
//!
//! Measured, each from a fresh peak-memory mark (`/proc/self/clear_refs`;
//! the table shows `VmRSS` at the mark and `VmHWM`, the peak, after the
//! whole body was read; both count the whole process, store included):
//!
//! * the first feed, which also names every entity (as after an upgrade);
//! * the feed again, names already in place (Backstage's every poll after
//!   a change), in YAML and in JSON;
//! * a poll with a matching `If-None-Match` (304).
//!
//! Targets from the issue: the whole body in under 2 s, under 100 MB peak.
//! `ROSTER_BENCH_BACKENDS=sqlite` (or `postgres`) runs just one backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use roster_domain::{
    ApiToken, DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, MultiValue,
    SystemClock, TokenName, TokenScope, TokenSecret, User, UserAttributes, UserId, UserName,
};
use roster_server::{Application, Config};
use roster_store::Store;

const DEFAULT_USERS: usize = 100_000;
const DEFAULT_GROUPS: usize = 10_000;
/// Groups below this index are roots; every other group is a member of
/// group `index / ROOTS`.
const ROOTS: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The directory is built by a child process (this program again), so
    // the memory figures below are those of a process that only serves.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, url, users, groups] = args.as_slice() {
        if flag == "--fill" {
            let store = roster_store::open(url).await?;
            return fill(&*store, users.parse()?, groups.parse()?).await;
        }
    }
    let mut args = args.into_iter();
    let users: usize = match args.next() {
        Some(n) => n
            .parse()
            .context("while reading USERS (the first argument)")?,
        None => DEFAULT_USERS,
    };
    let groups: usize = match args.next() {
        Some(n) => n
            .parse()
            .context("while reading GROUPS (the second argument)")?,
        None => DEFAULT_GROUPS,
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for numbers worth comparing");
    }
    println!(
        "catalog feed: {users} users, {groups} groups, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let backends =
        std::env::var("ROSTER_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    if backends.contains("sqlite") {
        let dir = std::env::temp_dir().join(format!("roster-feed-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).context("while creating a temp directory")?;
        let url = format!("sqlite://{}", dir.join("roster.db").display());
        let result = run("sqlite", &url, users, groups).await;
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
    if !backends.contains("postgres") {
        return Ok(());
    }

    let server = std::env::var("ROSTER_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    match fresh_postgres(&server).await {
        Ok((url, name)) => {
            let result = run("postgres", &url, users, groups).await;
            drop_postgres(&server, &name).await;
            result?;
        }
        Err(err) => eprintln!("PostgreSQL skipped: {err:#}"),
    }
    Ok(())
}

/// Fills the database at `url`, serves it, and prints one line per
/// measurement.
async fn run(backend: &str, url: &str, users: usize, groups: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--fill", url, &users.to_string(), &groups.to_string()])
        .status()
        .await
        .context("while running this program again to build the directory")?;
    if !status.success() {
        bail!("{backend}: building the directory failed ({status})");
    }
    eprintln!(
        "{backend}: directory built in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let store = roster_store::open(url).await?;

    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: std::env::temp_dir(),
        ..Config::default()
    };
    let app = Application::build(config, store.clone(), Arc::new(SystemClock)).await?;
    let url = format!("{}/backstage/entities.yaml", app.base_url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let token = create_feed_token(&*store).await?;
    let client = reqwest::Client::new();
    let expected_docs = users - users.div_ceil(20) + groups;

    println!(
        "{:<9} {:<26} {:>6} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "backend", "request", "status", "docs", "MB", "first ms", "total ms", "RSS MiB", "peak MiB"
    );
    let mut etag = String::new();
    for (label, accept, conditional) in [
        ("first (names everyone)", "application/yaml", false),
        ("again (YAML)", "application/yaml", false),
        ("again (JSON)", "application/json", false),
        ("unchanged (If-None-Match)", "application/yaml", true),
    ] {
        reset_peak();
        let rss = status_mib("VmRSS:").unwrap_or(f64::NAN);
        let mut req = client
            .get(&url)
            .query(&[("token", &token)])
            .header("accept", accept);
        if conditional {
            req = req.header("if-none-match", &etag);
        }
        let sent = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        if !conditional && accept == "application/yaml" {
            etag = header(&resp, "etag");
        }
        let mut first = None;
        let mut bytes = 0usize;
        let mut counter = DocCounter::new(accept == "application/json");
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await? {
            first.get_or_insert_with(|| sent.elapsed());
            bytes += chunk.len();
            counter.feed(&chunk);
        }
        let total = sent.elapsed();
        let docs = counter.count();
        if conditional {
            if status != reqwest::StatusCode::NOT_MODIFIED {
                bail!("{backend}: expected 304, got {status}");
            }
        } else if docs != expected_docs {
            bail!(
                "{backend}: {label}: status {status}, {docs} documents, expected {expected_docs}"
            );
        }
        println!(
            "{:<9} {:<26} {:>6} {:>7} {:>7.1} {:>9} {:>9} {:>9.1} {:>9.1}",
            backend,
            label,
            status.as_u16(),
            docs,
            bytes as f64 / 1e6,
            first.map_or("-".into(), ms),
            ms(total),
            rss,
            status_mib("VmHWM:").unwrap_or(f64::NAN),
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Counts entities in a streamed body: `---` lines in YAML, `apiVersion`
/// keys in JSON, across chunk boundaries.
struct DocCounter {
    needle: &'static [u8],
    tail: Vec<u8>,
    count: usize,
}

impl DocCounter {
    fn new(json: bool) -> Self {
        let needle: &'static [u8] = if json {
            b"\"apiVersion\":"
        } else {
            b"---\napiVersion:"
        };
        Self {
            needle,
            tail: Vec::new(),
            count: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        self.count += window
            .windows(self.needle.len())
            .filter(|w| *w == self.needle)
            .count();
        let keep = self.needle.len().saturating_sub(1).min(window.len());
        self.tail = window[window.len() - keep..].to_vec();
    }

    fn count(&self) -> usize {
        self.count
    }
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Starts a fresh peak-RSS mark (Linux: writing 5 to clear_refs resets
/// `VmHWM` to the current RSS).
fn reset_peak() {
    if let Err(err) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS mark: {err}");
    }
}

/// A `/proc/self/status` memory figure (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn user(i: usize, id: UserId) -> anyhow::Result<User> {
    let mut attributes =
        UserAttributes::with_user_name(UserName::parse(format!("person.{i:06}@bench.example"))?);
    attributes.display_name = Some(format!("Person {i:06}"));
    attributes.external_id = Some(format!("00u{i:017}"));
    attributes.emails = vec![MultiValue {
        value: Some(format!("person.{i:06}@bench.example")),
        kind: Some("work".into()),
        primary: Some(true),
        display: None,
    }];
    attributes.active = i.is_multiple_of(20).then_some(false);
    Ok(User {
        id,
        meta: Meta::new(time::OffsetDateTime::now_utc()),
        attributes,
    })
}

/// Inserts the users (16 at a time), then the groups, children before
/// parents so nested members exist when their parent is created.
async fn fill(store: &dyn Store, users: usize, groups: usize) -> anyhow::Result<()> {
    // Only the ids are kept: the setup should not leave the allocator
    // holding memory the measurements would then count.
    let user_ids: Vec<UserId> = (0..users).map(|_| UserId::new_random()).collect();
    let mut inserts = futures::stream::iter(user_ids.iter().enumerate())
        .map(|(i, id)| async move {
            store
                .insert_user(&user(i, *id)?)
                .await
                .map_err(anyhow::Error::from)
        })
        .buffer_unordered(16);
    while let Some(done) = inserts.next().await {
        done?;
    }
    drop(inserts);
    let ids: Vec<GroupId> = (0..groups).map(|_| GroupId::new_random()).collect();
    let mut members: Vec<Vec<Member>> = vec![Vec::new(); groups];
    if groups > 0 {
        for (i, id) in user_ids.iter().enumerate() {
            for g in [i % groups, (i * 7 + 3) % groups] {
                members[g].push(Member {
                    id: id.as_uuid(),
                    kind: MemberKind::User,
                    display: None,
                });
            }
        }
        for child in ROOTS..groups {
            members[child / ROOTS].push(Member {
                id: ids[child].as_uuid(),
                kind: MemberKind::Group,
                display: None,
            });
        }
    }
    for (g, mut members) in members.into_iter().enumerate().rev() {
        let group = Group {
            id: ids[g],
            meta: Meta::new(time::OffsetDateTime::now_utc()),
            attributes: GroupAttributes {
                display_name: DisplayName::parse(format!("Team {g:05}"))?,
                external_id: Some(format!("00g{g:017}")),
            },
        };
        members.dedup_by_key(|m| m.id);
        store.insert_group(&group, &members).await?;
    }
    Ok(())
}

async fn create_feed_token(store: &dyn Store) -> anyhow::Result<String> {
    let secret = TokenSecret::generate(&mut rand::thread_rng());
    store
        .insert_token(&ApiToken {
            id: uuid::Uuid::new_v4(),
            name: TokenName::parse("feed-bench")?,
            scope: TokenScope::CatalogFeed,
            hash: secret.hash(),
            created: time::OffsetDateTime::now_utc(),
            revoked: None,
        })
        .await?;
    Ok(secret.expose().to_string())
}

/// Creates an empty database on the server at `url`; returns its URL and name.
async fn fresh_postgres(url: &str) -> anyhow::Result<(String, String)> {
    use sqlx::{Connection as _, Executor as _};
    let connect = sqlx::PgConnection::connect(url);
    let mut admin = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .context("while connecting to PostgreSQL (timed out)")?
        .with_context(|| format!("while connecting to {url} (set ROSTER_BENCH_POSTGRES)"))?;
    let name = format!("roster_feed_bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    Ok((format!("{base}/{name}"), name))
}

async fn drop_postgres(url: &str, name: &str) {
    use sqlx::{Connection as _, Executor as _};
    if let Ok(mut admin) = sqlx::PgConnection::connect(url).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}
