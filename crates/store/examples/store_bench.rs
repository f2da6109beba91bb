//! A rough throughput check for the store (development only).
//!
//! ```text
//! cargo run --release -p roster-store --example store_bench [-- DB_URL]
//! ```
//!
//! With no URL it uses a fresh SQLite file in the temp directory. It measures,
//! at 16 concurrent tasks: user inserts, get-then-update (what a SCIM PATCH
//! does), indexed reads; then a 100,000-member group: Replace, one read of all
//! members, and single-member Delta changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_domain::Clock as _;
use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, SystemClock, User,
    UserAttributes, UserId, UserName,
};
use roster_store::{MembershipChange, Store, UserQuery};

const CONCURRENCY: usize = 16;

fn user(name: &str) -> User {
    User {
        id: UserId::new_random(),
        meta: Meta::new(SystemClock.now()),
        attributes: UserAttributes::with_user_name(UserName::parse(name).unwrap()),
    }
}

struct Report {
    what: &'static str,
    count: usize,
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

/// This process's CPU time (user + system), from /proc on Linux. On a shared
/// machine it is a steadier measure of cost than wall-clock time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the
    // command name), in clock ticks of 1/100 s.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

impl Report {
    fn print(mut self) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64) * p) as usize;
            self.latencies
                .get(i.min(self.latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{:<24} {:>6} ops in {:>7.2?} {:>7.0} ops/s  cpu {:>5.0}µs/op  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            self.what,
            self.count,
            self.elapsed,
            self.count as f64 / self.elapsed.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / self.count as f64,
            pct(0.50),
            pct(0.99),
            self.latencies.last().copied().unwrap_or_default(),
        );
    }
}

/// Runs `op(i)` for `i in 0..count` on [`CONCURRENCY`] tasks.
async fn run<F, Fut>(what: &'static str, count: usize, op: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let cpu_start = cpu_time();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let op = op.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let t = Instant::now();
                    op(i).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Report {
        what,
        count,
        elapsed: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu_start),
        latencies,
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1);
    let dir = std::env::temp_dir().join(format!("roster-bench-{}", uuid::Uuid::new_v4().simple()));
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    println!("store: {url}");
    let store: Arc<dyn Store> = roster_store::open(&url).await.unwrap();

    let users = Arc::new(
        (0..20_000)
            .map(|i| user(&format!("bench-{i}-{}", uuid::Uuid::new_v4().simple())))
            .collect::<Vec<_>>(),
    );
    {
        let (store, users) = (store.clone(), users.clone());
        run("insert_user", users.len(), move |i| {
            let (store, users) = (store.clone(), users.clone());
            async move { store.insert_user(&users[i]).await.unwrap() }
        })
        .await
        .print();
    }
    {
        let (store, users) = (store.clone(), users.clone());
        run("get_user + update_user", 20_000, move |i| {
            let (store, users) = (store.clone(), users.clone());
            async move {
                let id = users[(i * 7919) % users.len()].id;
                loop {
                    let current = store.get_user(id).await.unwrap().unwrap();
                    let mut next = current.clone();
                    next.meta = current.meta.touched(SystemClock.now());
                    next.attributes.title = Some(format!("title {i}"));
                    match store.update_user(&next, current.meta.version).await {
                        Ok(()) => break,
                        Err(roster_store::StoreError::VersionMismatch { .. }) => continue,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
        })
        .await
        .print();
    }
    {
        let (store, users) = (store.clone(), users.clone());
        run("get_user", 50_000, move |i| {
            let (store, users) = (store.clone(), users.clone());
            async move {
                store
                    .get_user(users[(i * 31) % users.len()].id)
                    .await
                    .unwrap()
                    .unwrap();
            }
        })
        .await
        .print();
    }
    {
        let (store, users) = (store.clone(), users.clone());
        run("find_users ByUserName", 50_000, move |i| {
            let (store, users) = (store.clone(), users.clone());
            async move {
                let name = users[(i * 31) % users.len()]
                    .attributes
                    .user_name
                    .as_str()
                    .to_uppercase();
                let found = store
                    .find_users(&UserQuery::ByUserName(name))
                    .await
                    .unwrap();
                assert_eq!(found.len(), 1);
            }
        })
        .await
        .print();
    }

    if std::env::var_os("ROSTER_BENCH_QUICK").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // A big group.
    let mut members: Vec<Member> = users
        .iter()
        .map(|u| Member {
            id: u.id.as_uuid(),
            kind: MemberKind::User,
            display: None,
        })
        .collect();
    let extra: Vec<User> = (0..80_000).map(|i| user(&format!("big-{i}"))).collect();
    let extra = Arc::new(extra);
    {
        let (store, extra) = (store.clone(), extra.clone());
        run("insert_user (more)", extra.len(), move |i| {
            let (store, extra) = (store.clone(), extra.clone());
            async move { store.insert_user(&extra[i]).await.unwrap() }
        })
        .await
        .print();
    }
    members.extend(extra.iter().map(|u| Member {
        id: u.id.as_uuid(),
        kind: MemberKind::User,
        display: None,
    }));
    let mut group = Group {
        id: GroupId::new_random(),
        meta: Meta::new(SystemClock.now()),
        attributes: GroupAttributes {
            display_name: DisplayName::parse("Everyone").unwrap(),
            external_id: None,
        },
    };
    store.insert_group(&group, &[]).await.unwrap();
    let t = Instant::now();
    let next = Group {
        meta: group.meta.touched(SystemClock.now()),
        ..group.clone()
    };
    store
        .update_group(
            &next,
            group.meta.version,
            &MembershipChange::Replace(members.clone()),
        )
        .await
        .unwrap();
    group = next;
    println!("replace with {} members: {:?}", members.len(), t.elapsed());
    for _ in 0..3 {
        let t = Instant::now();
        let got = store.group_members(group.id).await.unwrap();
        println!("group_members ({} rows): {:?}", got.len(), t.elapsed());
    }
    let mut small = Group {
        id: GroupId::new_random(),
        meta: Meta::new(SystemClock.now()),
        attributes: GroupAttributes {
            display_name: DisplayName::parse("Small").unwrap(),
            external_id: None,
        },
    };
    store.insert_group(&small, &members[..10]).await.unwrap();
    for (label, group) in [("big", &mut group), ("10-member", &mut small)] {
        let t = Instant::now();
        let rounds = 200;
        for i in 0..rounds {
            let next = Group {
                meta: group.meta.touched(SystemClock.now()),
                ..group.clone()
            };
            let change = MembershipChange::Delta {
                add: vec![members[i].clone()],
                remove: vec![members[i + 1].id],
            };
            store
                .update_group(&next, group.meta.version, &change)
                .await
                .unwrap();
            *group = next;
        }
        println!(
            "delta add+remove on the {label} group: {:?} each (sequential)",
            t.elapsed() / rounds as u32
        );
    }
    if std::env::var_os("ROSTER_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
