//! What adding and removing one member costs as a group grows: 10, 1,000
//! and 100,000 members, through the real HTTP server, one client, one
//! request at a time.
//!
//! ```text
//! cargo run --release -p roster-server --example large_group_bench [-- ITERATIONS]
//! ```
//!
//! It runs on SQLite (a fresh file in the temp directory) and, when
//! reachable, on PostgreSQL: `ROSTER_BENCH_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`) names a server and a database
//! to connect to; the benchmark creates a fresh database beside it with
//! `psql` and drops it afterwards.
//!
//! All groups live in one database (101,010 members in all), so every size
//! is measured against tables of the same size. Each iteration adds one user
//! (Okta's and Entra's `add` of `members`), then removes it, alternating
//! Okta's form (`members[value eq "…"]`) and Entra's (a value array); the
//! sizes take turns within each iteration. Latencies are per request, client
//! side, after a warm-up; the member count is checked at the end.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{StreamExt as _, TryStreamExt as _};
use roster_domain::{
    ApiToken, DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, SystemClock,
    TokenName, TokenScope, TokenSecret, User, UserAttributes, UserId, UserName,
};
use roster_server::{Application, Config};
use roster_store::Store;
use serde_json::{json, Value};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const DEFAULT_ITERATIONS: usize = 300;
const WARM_UP: usize = 20;
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .context("while reading ITERATIONS (the first argument)")?,
        None => DEFAULT_ITERATIONS,
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for numbers worth comparing");
    }
    println!(
        "single-member PATCH latency, {iterations} adds and {iterations} removes per size, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut rows = Vec::new();
    let dir =
        std::env::temp_dir().join(format!("roster-large-group-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).context("while creating a temp directory")?;
    let sqlite =
        roster_store::open(&format!("sqlite://{}", dir.join("roster.db").display())).await?;
    let result = run("sqlite", sqlite, iterations, &mut rows).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;

    let admin = std::env::var("ROSTER_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    match FreshPostgres::create(&admin) {
        Ok(db) => {
            let result = match roster_store::open(&db.url).await {
                Ok(store) => run("postgres", store, iterations, &mut rows).await,
                Err(err) => Err(err.into()),
            };
            db.drop_database();
            result?;
        }
        Err(err) => eprintln!("PostgreSQL skipped: {err:#}"),
    }

    println!();
    println!(
        "{:<9} {:>8} {:>9} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>10}",
        "backend",
        "members",
        "build",
        "add mean",
        "add p99",
        "rm mean",
        "rm p99",
        "okta p99",
        "entra p99"
    );
    for row in &rows {
        println!(
            "{:<9} {:>8} {:>8.1}s | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>10}",
            row.backend,
            row.members,
            row.build.as_secs_f64(),
            ms(mean(&row.add)),
            ms(p99(&row.add)),
            ms(mean(&row.remove_all())),
            ms(p99(&row.remove_all())),
            ms(p99(&row.remove_okta)),
            ms(p99(&row.remove_entra)),
        );
    }
    Ok(())
}

struct Row {
    backend: &'static str,
    members: usize,
    build: Duration,
    add: Vec<Duration>,
    remove_okta: Vec<Duration>,
    remove_entra: Vec<Duration>,
}

impl Row {
    fn remove_all(&self) -> Vec<Duration> {
        self.remove_okta
            .iter()
            .chain(&self.remove_entra)
            .copied()
            .collect()
    }
}

/// Builds the groups on `store`, serves it, and measures every size.
async fn run(
    backend: &'static str,
    store: Arc<dyn Store>,
    iterations: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut groups = Vec::new();
    for size in SIZES {
        let started = Instant::now();
        let group = build_group(&*store, &format!("{backend}-{size}"), size).await?;
        let build = started.elapsed();
        eprintln!(
            "{backend}: built a group of {size} in {:.1}s",
            build.as_secs_f64()
        );
        groups.push((size, group, build));
    }

    let dir = std::env::temp_dir();
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir,
        ..Config::default()
    };
    let app = Application::build(config, store.clone(), Arc::new(SystemClock)).await?;
    let scim = format!("{}/scim/v2", app.base_url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = Client {
        http: reqwest::Client::new(),
        scim,
        token: create_token(&*store).await?,
    };

    let mut measured = Vec::new();
    for (size, group, build) in groups {
        let candidate = client
            .create_user(&format!("candidate-{backend}-{size}@example.com"))
            .await?;
        let row = Row {
            backend,
            members: size,
            build,
            add: Vec::new(),
            remove_okta: Vec::new(),
            remove_entra: Vec::new(),
        };
        measured.push((group, candidate, row));
    }
    // Sizes take turns, so load from elsewhere on the machine falls on all
    // of them alike.
    for i in 0..WARM_UP + iterations {
        for (group, candidate, row) in &mut measured {
            let add = client
                .patch(
                    group,
                    json!({"op": "add", "path": "members", "value": [{"value": candidate}]}),
                )
                .await?;
            let okta = i % 2 == 0;
            let remove = if okta {
                json!({"op": "remove", "path": format!("members[value eq \"{candidate}\"]")})
            } else {
                json!({"op": "Remove", "path": "members", "value": [{"value": candidate}]})
            };
            let removed = client.patch(group, remove).await?;
            if i >= WARM_UP {
                row.add.push(add);
                if okta {
                    row.remove_okta.push(removed);
                } else {
                    row.remove_entra.push(removed);
                }
            }
        }
    }
    for (group, _, row) in measured {
        let members = client.member_count(&group).await?;
        if members != row.members {
            bail!(
                "{backend}: the group of {} has {members} members after the run",
                row.members
            );
        }
        rows.push(row);
    }
    eprintln!("{backend}: measured");

    drop(client);
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Inserts `size` users and a group of them straight into the store.
async fn build_group(store: &dyn Store, name: &str, size: usize) -> anyhow::Result<String> {
    let now = time::OffsetDateTime::now_utc();
    let users = (0..size)
        .map(|i| {
            Ok(User {
                id: UserId::new_random(),
                meta: Meta::new(now),
                attributes: UserAttributes::with_user_name(UserName::parse(format!(
                    "{name}-{i:06}@example.com"
                ))?),
            })
        })
        .collect::<anyhow::Result<Vec<User>>>()?;
    futures::stream::iter(&users)
        .map(|user| store.insert_user(user))
        .buffer_unordered(256)
        .try_collect::<()>()
        .await?;
    let members: Vec<Member> = users
        .iter()
        .map(|u| Member {
            id: u.id.as_uuid(),
            kind: MemberKind::User,
            display: None,
        })
        .collect();
    let group = Group {
        id: GroupId::new_random(),
        meta: Meta::new(now),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(name)?,
            external_id: None,
        },
    };
    store.insert_group(&group, &members).await?;
    Ok(group.id.to_string())
}

async fn create_token(store: &dyn Store) -> anyhow::Result<String> {
    let secret = TokenSecret::generate(&mut rand::thread_rng());
    store
        .insert_token(&ApiToken {
            id: uuid::Uuid::new_v4(),
            name: TokenName::parse("large-group-bench")?,
            scope: TokenScope::Scim,
            hash: secret.hash(),
            created: time::OffsetDateTime::now_utc(),
            revoked: None,
        })
        .await?;
    Ok(secret.expose().to_string())
}

struct Client {
    http: reqwest::Client,
    scim: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.scim))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok((status, body))
    }

    async fn create_user(&self, user_name: &str) -> anyhow::Result<String> {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name});
        match self
            .send(reqwest::Method::POST, "/Users", Some(body))
            .await?
        {
            (201, body) => Ok(body["id"].as_str().unwrap_or_default().to_string()),
            (status, body) => bail!("creating {user_name} answered {status}: {body}"),
        }
    }

    /// Sends one PATCH operation to a group; returns how long it took.
    async fn patch(&self, group: &str, op: Value) -> anyhow::Result<Duration> {
        let body = json!({"schemas": [PATCH_OP], "Operations": [op]});
        let started = Instant::now();
        let (status, answer) = self
            .send(
                reqwest::Method::PATCH,
                &format!("/Groups/{group}"),
                Some(body),
            )
            .await?;
        let elapsed = started.elapsed();
        if !matches!(status, 200 | 204) {
            bail!("PATCH {group} answered {status}: {answer}");
        }
        Ok(elapsed)
    }

    async fn member_count(&self, group: &str) -> anyhow::Result<usize> {
        match self
            .send(
                reqwest::Method::GET,
                &format!("/Groups/{group}?attributes=members"),
                None,
            )
            .await?
        {
            (200, body) => Ok(body["members"].as_array().map_or(0, Vec::len)),
            (status, body) => bail!("GET {group} answered {status}: {body}"),
        }
    }
}

/// A database created for this run, dropped at the end.
struct FreshPostgres {
    admin: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("roster_large_group_bench_{}", std::process::id());
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .filter(|base| base.contains("://") && !base.ends_with('/'))
            .with_context(|| format!("ROSTER_BENCH_POSTGRES {admin:?} does not name a database"))?;
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(admin, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    fn drop_database(self) {
        if let Err(err) = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!(
                "could not drop the benchmark database {}: {err:#}",
                self.name
            );
        }
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("while running psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn mean(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.iter().sum::<Duration>() / samples.len() as u32
}

fn p99(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * 99).div_ceil(100);
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
