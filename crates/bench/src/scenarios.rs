//! The five scenarios, run in order by N concurrent workers.
//!
//! 1. `user_create`   POST /Users (Okta-style body, unique userName)
//! 2. `user_filter`   GET /Users?filter=userName eq "..." of a random created user
//! 3. `patch_active_okta` / `patch_active_entra`  PATCH /Users/{id} deactivation, both IdP dialects
//! 4. `group_create`  POST /Groups
//! 5. `member_add` / `member_remove`  PATCH /Groups/{id} members add, then remove by filter

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{
    self, okta_group, okta_user, parse_url, send, str_field, Reply, Target, PATCH_SCHEMA,
};
use crate::stats::{OpResult, OpStats, Verdict};

/// The operation kinds measured separately.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    UserCreate,
    UserFilter,
    PatchActiveOkta,
    PatchActiveEntra,
    GroupCreate,
    MemberAdd,
    MemberRemove,
}

pub const ALL_OPS: [Op; 7] = [
    Op::UserCreate,
    Op::UserFilter,
    Op::PatchActiveOkta,
    Op::PatchActiveEntra,
    Op::GroupCreate,
    Op::MemberAdd,
    Op::MemberRemove,
];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::UserCreate => "user_create",
            Op::UserFilter => "user_filter",
            Op::PatchActiveOkta => "patch_active_okta",
            Op::PatchActiveEntra => "patch_active_entra",
            Op::GroupCreate => "group_create",
            Op::MemberAdd => "member_add",
            Op::MemberRemove => "member_remove",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The scenarios, in the order they run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    UserCreate,
    UserFilter,
    PatchActive,
    GroupCreate,
    GroupMembers,
}

pub const ALL_SCENARIOS: [Scenario; 5] = [
    Scenario::UserCreate,
    Scenario::UserFilter,
    Scenario::PatchActive,
    Scenario::GroupCreate,
    Scenario::GroupMembers,
];

impl Scenario {
    pub fn title(self) -> &'static str {
        match self {
            Scenario::UserCreate => "1. user create (POST /Users)",
            Scenario::UserFilter => "2. user lookup (GET /Users?filter=userName eq ...)",
            Scenario::PatchActive => {
                "3. deactivate (PATCH /Users/{id} active, Okta and Entra forms)"
            }
            Scenario::GroupCreate => "4. group create (POST /Groups)",
            Scenario::GroupMembers => "5. group member add + remove (PATCH /Groups/{id})",
        }
    }

    pub fn ops(self) -> &'static [Op] {
        match self {
            Scenario::UserCreate => &[Op::UserCreate],
            Scenario::UserFilter => &[Op::UserFilter],
            Scenario::PatchActive => &[Op::PatchActiveOkta, Op::PatchActiveEntra],
            Scenario::GroupCreate => &[Op::GroupCreate],
            Scenario::GroupMembers => &[Op::MemberAdd, Op::MemberRemove],
        }
    }
}

/// When a scenario stops.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// Run for this long (requests in flight at the deadline complete).
    Duration(Duration),
    /// Run this many iterations in total over all workers. One iteration is one request,
    /// except in scenario 5 where it is an add followed by a remove.
    Ops(u64),
}

/// Resources created by earlier scenarios, read by later ones.
#[derive(Default)]
pub struct Pools {
    /// (id, userName)
    pub users: Vec<(String, String)>,
    pub groups: Vec<String>,
}

/// One worker: its own HTTP client and its own counters.
pub struct Worker {
    id: usize,
    workers: usize,
    http: reqwest::Client,
    target: Arc<Target>,
    run_id: Arc<str>,
    rng: StdRng,
    seq: u64,
    stats: Vec<OpStats>,
    new_users: Vec<(String, String)>,
    new_groups: Vec<String>,
}

impl Worker {
    pub fn new(id: usize, workers: usize, target: Arc<Target>, run_id: Arc<str>) -> Result<Self> {
        let stats = ALL_OPS
            .iter()
            .map(|_| OpStats::new())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            id,
            workers,
            http: target.client()?,
            target,
            run_id,
            rng: StdRng::seed_from_u64(0x5eed_0000 + id as u64),
            seq: 0,
            stats,
            new_users: Vec::new(),
            new_groups: Vec::new(),
        })
    }

    fn record(&mut self, op: Op, outcome: Result<Duration, String>) -> bool {
        let s = &mut self.stats[op.index()];
        match outcome {
            Ok(latency) => {
                s.success(latency);
                true
            }
            Err(msg) => {
                s.failure(msg);
                false
            }
        }
    }

    fn take_stats(&mut self, op: Op) -> Result<OpStats> {
        let fresh = OpStats::new()?;
        Ok(std::mem::replace(&mut self.stats[op.index()], fresh))
    }

    async fn step(&mut self, scenario: Scenario, pools: &Pools) {
        self.seq += 1;
        match scenario {
            Scenario::UserCreate => {
                let out = self.create_user().await;
                self.record(Op::UserCreate, out);
            }
            Scenario::UserFilter => {
                let (id, name) = self.random_user(pools, false);
                let out = self.filter_user(&id, &name).await;
                self.record(Op::UserFilter, out);
            }
            Scenario::PatchActive => {
                let (id, _) = self.random_user(pools, false);
                let (op, out) = if self.seq & 1 == 0 {
                    (Op::PatchActiveOkta, self.patch_active(&id, true).await)
                } else {
                    (Op::PatchActiveEntra, self.patch_active(&id, false).await)
                };
                self.record(op, out);
            }
            Scenario::GroupCreate => {
                let out = self.create_group().await;
                self.record(Op::GroupCreate, out);
            }
            Scenario::GroupMembers => {
                let (uid, _) = self.random_user(pools, true);
                let gid = pools.groups[self.rng.gen_range(0..pools.groups.len())].clone();
                let out = self.member_add(&gid, &uid).await;
                if self.record(Op::MemberAdd, out) {
                    let out = self.member_remove(&gid, &uid).await;
                    self.record(Op::MemberRemove, out);
                }
            }
        }
    }

    /// A random created user; with `own`, one from this worker's share of the pool, so that
    /// no two workers add and remove the same user to the same group at the same time.
    fn random_user(&mut self, pools: &Pools, own: bool) -> (String, String) {
        let n = pools.users.len();
        let idx = if own && n > self.id {
            let share = (n - self.id).div_ceil(self.workers);
            self.id + self.rng.gen_range(0..share) * self.workers
        } else {
            self.rng.gen_range(0..n)
        };
        pools.users[idx.min(n - 1)].clone()
    }

    async fn create_user(&mut self) -> Result<Duration, String> {
        let user_name = format!(
            "bench.{}.w{}.{}@example.com",
            self.run_id, self.id, self.seq
        );
        let given = format!("Given{}", self.seq);
        let family = format!("Family{}", self.id);
        let external_id = format!("00u{}{:02}{:08}", self.run_id, self.id, self.seq);
        let body = okta_user(&user_name, &given, &family, &external_id);
        let url = parse_url(&self.target.url("/Users"))?;
        let reply = send(&self.http, Method::POST, url, Some(&body)).await?;
        let id = client::verify_created(&reply, "POST /Users", "userName", &user_name)?;
        self.new_users.push((id, user_name));
        Ok(reply.latency)
    }

    async fn filter_user(&mut self, id: &str, user_name: &str) -> Result<Duration, String> {
        let filter = format!("userName eq \"{user_name}\"");
        let url = reqwest::Url::parse_with_params(
            &self.target.url("/Users"),
            &[("filter", filter.as_str())],
        )
        .map_err(|e| format!("bad URL: {e}"))?;
        let reply = send(&self.http, Method::GET, url, None).await?;
        let what = "GET /Users?filter";
        if reply.status != StatusCode::OK {
            return Err(reply.unexpected(what));
        }
        let v = reply.json()?;
        let total = v.get("totalResults").and_then(Value::as_u64);
        if total != Some(1) {
            return Err(format!(
                "{what}: totalResults is {total:?}, expected 1 for {user_name}"
            ));
        }
        let first = v.get("Resources").and_then(|r| r.get(0));
        let got_name = first.and_then(|r| str_field(r, "userName"));
        let got_id = first.and_then(|r| str_field(r, "id"));
        if got_name != Some(user_name) || got_id != Some(id) {
            return Err(format!(
                "{what}: Resources[0] is {got_id:?}/{got_name:?}, expected {id}/{user_name}"
            ));
        }
        Ok(reply.latency)
    }

    async fn patch_active(&mut self, id: &str, okta: bool) -> Result<Duration, String> {
        let body = if okta {
            json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": false}}]})
        } else {
            json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        };
        let url = parse_url(&self.target.url(&format!("/Users/{id}")))?;
        let reply = send(&self.http, Method::PATCH, url, Some(&body)).await?;
        let what = if okta {
            "PATCH /Users/{id} (Okta form)"
        } else {
            "PATCH /Users/{id} (Entra form)"
        };
        match reply.status {
            StatusCode::NO_CONTENT => Ok(reply.latency),
            StatusCode::OK => {
                let v = reply.json()?;
                match v.get("active") {
                    Some(Value::Bool(false)) => Ok(reply.latency),
                    other => Err(format!(
                        "{what}: 200 with active = {other:?}, expected false"
                    )),
                }
            }
            _ => Err(reply.unexpected(what)),
        }
    }

    async fn create_group(&mut self) -> Result<Duration, String> {
        let name = format!("bench-group-{}-w{}-{}", self.run_id, self.id, self.seq);
        let body = okta_group(&name);
        let url = parse_url(&self.target.url("/Groups"))?;
        let reply = send(&self.http, Method::POST, url, Some(&body)).await?;
        let id = client::verify_created(&reply, "POST /Groups", "displayName", &name)?;
        self.new_groups.push(id);
        Ok(reply.latency)
    }

    async fn member_add(&mut self, gid: &str, uid: &str) -> Result<Duration, String> {
        let body = json!({"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]});
        let url = parse_url(&self.target.url(&format!("/Groups/{gid}")))?;
        let reply = send(&self.http, Method::PATCH, url, Some(&body)).await?;
        check_members(&reply, "PATCH /Groups/{id} add member", uid, true)?;
        Ok(reply.latency)
    }

    async fn member_remove(&mut self, gid: &str, uid: &str) -> Result<Duration, String> {
        let body = json!({"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]});
        let url = parse_url(&self.target.url(&format!("/Groups/{gid}")))?;
        let reply = send(&self.http, Method::PATCH, url, Some(&body)).await?;
        check_members(&reply, "PATCH /Groups/{id} remove member", uid, false)?;
        Ok(reply.latency)
    }
}

/// 204, or 200 whose `members` (when returned at all) do or do not hold `uid`.
fn check_members(reply: &Reply, what: &str, uid: &str, present: bool) -> Result<(), String> {
    match reply.status {
        StatusCode::NO_CONTENT => Ok(()),
        StatusCode::OK => {
            let v = reply.json()?;
            let members = v.get("members").and_then(Value::as_array);
            let holds = members
                .map(|m| m.iter().any(|e| str_field(e, "value") == Some(uid)))
                .unwrap_or(false);
            if members.is_none() && present {
                // Servers may leave `members` out of the response (returned=request or large groups).
                return Ok(());
            }
            if holds == present {
                Ok(())
            } else {
                Err(format!(
                    "{what}: 200 but member {uid} is {} the returned members",
                    if holds { "still in" } else { "missing from" }
                ))
            }
        }
        _ => Err(reply.unexpected(what)),
    }
}

/// Result of one scenario.
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub elapsed: Duration,
    pub ops: Vec<OpResult>,
}

/// Run one scenario with every worker until the limit, then hand the workers back.
pub async fn run_scenario(
    scenario: Scenario,
    workers: Vec<Worker>,
    pools: Arc<Pools>,
    limit: Limit,
    peer_mode: bool,
) -> Result<(Vec<Worker>, ScenarioResult)> {
    let missing = match scenario {
        Scenario::UserFilter | Scenario::PatchActive if pools.users.is_empty() => {
            Some("no users were created")
        }
        Scenario::GroupMembers if pools.users.is_empty() => Some("no users were created"),
        Scenario::GroupMembers if pools.groups.is_empty() => Some("no groups were created"),
        _ => None,
    };
    if let Some(reason) = missing {
        let mut ops = Vec::new();
        for &op in scenario.ops() {
            ops.push(OpResult {
                op: op.name(),
                stats: OpStats::new()?,
                elapsed: Duration::ZERO,
                verdict: Verdict::NotRun,
                note: Some(reason.to_string()),
            });
        }
        return Ok((
            workers,
            ScenarioResult {
                scenario,
                elapsed: Duration::ZERO,
                ops,
            },
        ));
    }

    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Ops(_) => None,
    };
    let max_ops = match limit {
        Limit::Ops(n) => Some(n),
        Limit::Duration(_) => None,
    };
    let mut handles = Vec::with_capacity(workers.len());
    for mut w in workers {
        let pools = Arc::clone(&pools);
        let counter = Arc::clone(&counter);
        handles.push(tokio::spawn(async move {
            loop {
                if let Some(d) = deadline {
                    if Instant::now() >= d {
                        break;
                    }
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if let Some(max) = max_ops {
                    if n >= max {
                        break;
                    }
                }
                w.step(scenario, &pools).await;
            }
            w
        }));
    }
    let mut workers = Vec::with_capacity(handles.len());
    for joined in futures::future::join_all(handles).await {
        workers.push(joined.context("a worker task panicked")?);
    }
    let elapsed = start.elapsed();

    let mut ops = Vec::new();
    for &op in scenario.ops() {
        let mut merged = OpStats::new()?;
        for w in &mut workers {
            merged.merge(&w.take_stats(op)?)?;
        }
        let verdict = Verdict::of(&merged, peer_mode);
        ops.push(OpResult {
            op: op.name(),
            stats: merged,
            elapsed,
            verdict,
            note: None,
        });
    }
    Ok((
        workers,
        ScenarioResult {
            scenario,
            elapsed,
            ops,
        },
    ))
}

/// Move what the workers created into the shared pools.
pub fn collect_created(workers: &mut [Worker], pools: &mut Pools) {
    for w in workers {
        pools.users.append(&mut w.new_users);
        pools.groups.append(&mut w.new_groups);
    }
}

/// Build the workers for a run.
pub fn make_workers(n: usize, target: &Arc<Target>, run_id: &Arc<str>) -> Result<Vec<Worker>> {
    if n == 0 {
        return Err(anyhow!("--concurrency must be at least 1"));
    }
    (0..n)
        .map(|i| Worker::new(i, n, Arc::clone(target), Arc::clone(run_id)))
        .collect()
}
