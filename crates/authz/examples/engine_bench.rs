//! Times the policy engine in process: `Policy::decide` on a realistic
//! policy, the cost of building a `Policy` from its documents, and the cost
//! of writing a CONDITIONAL answer as Backstage JSON.
//!
//! ```text
//! cargo run --release -p roster-authz --example engine_bench [-- --json] [-- --secs S]
//! ```
//!
//! The directory and policy are generated deterministically (the same on
//! every run): 10,000 users, 1,000 groups in a five-level tree (8, 32, 96,
//! 264 and 600 groups per level; every group is in one group a level up,
//! one in 20 in a second one), each user directly in 1 to 3 groups on the
//! two lowest levels (a team, maybe a sibling team and a group a level
//! up in the same part of the tree); 200 custom roles of 10 rules each (exact names,
//! prefix patterns, `*` with action read, `IS_ENTITY_OWNER`,
//! `IS_ENTITY_KIND` and `HAS_LABEL` conditions under `anyOf`/`allOf`/`not`,
//! one deny rule in ten) plus the built-in roles; assignments to groups on
//! every level and to users directly, so that a user holds about 50 roles.
//! Principals are built with `group_closure`, as the server builds them
//! from its SQL closure.
//!
//! Decisions run on one thread over a rotating mix of users and
//! permissions, first without a resource (answers ALLOW, DENY or
//! CONDITIONAL) and then with a catalog entity (a definitive answer). Each
//! decision is timed on its own (the time includes dropping the verdict);
//! decisions/s comes from a separate pass without per-decision timing.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use roster_authz::{
    builtin_roles, group_closure, known_permission, Assignment, Criteria, Decision, DirectoryUser,
    Permission, Policy, PolicyDocument, Principal, Role, RoleDocument, RoleName, Subject,
    BUILTIN_ROLE_NAMES, CATALOG_ENTITY, CATALOG_PLUGIN,
};
use roster_domain::{GroupId, UserId};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error>;

const USERS: usize = 10_000;
/// Groups per level of the tree, roots first: 1,000 in all.
const LEVEL_SIZES: [usize; 5] = [8, 32, 96, 264, 600];
const ROLES: usize = 200;
const RULES_PER_ROLE: usize = 10;
/// The server's default `max_group_depth`.
const MAX_GROUP_DEPTH: u32 = 10;
/// Custom roles each group gets, by level, from that level's own pool
/// (`LEVEL_POOLS`); the remaining roles form the pool of direct
/// assignments, of which each user gets `DIRECT_ROLES`.
const ROLES_PER_GROUP: [usize; 5] = [6, 6, 6, 7, 7];
const LEVEL_POOLS: [usize; 5] = [20, 30, 40, 40, 40];
const DIRECT_ROLES: usize = 10;
/// Plugins invented for the benchmark, so rule names are as many as in a
/// real installation.
const PLUGINS: usize = 40;

/// The permissions of the mix without a resource, as Backstage sends them.
const MIX: [&str; 8] = [
    "catalog.entity.read",
    "catalog.entity.delete",
    "catalog.entity.refresh",
    "catalog.location.create",
    "scaffolder.action.execute",
    "catalog.entity.create",
    "scaffolder.task.create",
    "acme.widget.frobnicate",
];
/// The permissions asked about a specific catalog entity.
const RESOURCE_MIX: [&str; 3] = [
    "catalog.entity.read",
    "catalog.entity.delete",
    "catalog.entity.refresh",
];

/// A small deterministic generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn group_id(level: usize, idx: usize) -> GroupId {
    GroupId::from_uuid(Uuid::from_u128(((level as u128 + 1) << 32) | idx as u128))
}

fn group_ref(level: usize, idx: usize) -> String {
    format!("group:default/g{}-{idx:04}", level + 1)
}

fn user_id(u: usize) -> UserId {
    UserId::from_uuid(Uuid::from_u128((9 << 32) | u as u128))
}

fn user_ref(u: usize) -> String {
    format!("user:default/u{u:05}")
}

/// The directory: who is in which group, and which group in which.
struct Directory {
    parents: HashMap<GroupId, Vec<GroupId>>,
    /// Each user's direct groups as (level, index).
    memberships: Vec<Vec<(usize, usize)>>,
}

fn directory(rng: &mut Rng) -> Directory {
    let mut parents: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
    for level in 1..LEVEL_SIZES.len() {
        let above = LEVEL_SIZES[level - 1];
        for idx in 0..LEVEL_SIZES[level] {
            let mut up = vec![group_id(level - 1, idx % above)];
            if idx % 20 == 3 {
                let second = (idx * 7 + 3) % above;
                if second != idx % above {
                    up.push(group_id(level - 1, second));
                }
            }
            parents.insert(group_id(level, idx), up);
        }
    }
    let memberships = (0..USERS)
        .map(|_| {
            let count = match rng.below(10) {
                0..=4 => 1,
                5..=7 => 2,
                _ => 3,
            };
            // A team (a leaf), and maybe a sibling team and a group a
            // level up in the same part of the tree.
            let leaf = rng.below(LEVEL_SIZES[4]);
            let parent = leaf % LEVEL_SIZES[3];
            let mut groups = vec![(4, leaf)];
            if count >= 2 {
                let sibling = (leaf + LEVEL_SIZES[3]) % LEVEL_SIZES[4];
                if sibling != leaf {
                    groups.push((4, sibling));
                }
            }
            if count >= 3 {
                groups.push((3, (parent + LEVEL_SIZES[2]) % LEVEL_SIZES[3]));
            }
            groups
        })
        .collect();
    Directory {
        parents,
        memberships,
    }
}

fn principal(dir: &Directory, u: usize) -> Principal {
    let direct: Vec<GroupId> = dir.memberships[u]
        .iter()
        .map(|&(l, i)| group_id(l, i))
        .collect();
    let mut ownership_refs = vec![user_ref(u)];
    ownership_refs.extend(dir.memberships[u].iter().map(|&(l, i)| group_ref(l, i)));
    Principal::User(DirectoryUser {
        id: user_id(u),
        user_ref: user_ref(u),
        active: true,
        groups: group_closure(&direct, &dir.parents, MAX_GROUP_DEPTH),
        ownership_refs,
    })
}

fn role_name(r: usize) -> String {
    format!("team-role-{r:03}")
}

fn owner() -> Value {
    json!({"rule": "IS_ENTITY_OWNER"})
}

fn kind(kinds: &[&str]) -> Value {
    json!({"rule": "IS_ENTITY_KIND", "params": {"kinds": kinds}})
}

fn label(name: &str) -> Value {
    json!({"rule": "HAS_LABEL", "params": {"label": name}})
}

fn rule(permissions: &[&str], effect: &str) -> Value {
    json!({"permissions": permissions, "effect": effect})
}

fn with(mut rule: Value, key: &str, value: Value) -> Value {
    rule[key] = value;
    rule
}

/// Rule `k` of role `r`. Rule 9 denies, so one rule in ten is a deny.
fn rule_of(r: usize, k: usize) -> Value {
    const KINDS: [&[&str]; 5] = [
        &["component", "api"],
        &["system", "domain"],
        &["resource"],
        &["component"],
        &["template", "location"],
    ];
    let plugin = |m: usize| format!("acme-plugin-{:02}", (r * m + k) % PLUGINS);
    match k {
        0 => with(
            rule(&["catalog.entity.read"], "allow"),
            "conditions",
            kind(KINDS[r % 5]),
        ),
        1 => with(
            rule(
                &["catalog.entity.refresh", "catalog.entity.delete"],
                "allow",
            ),
            "conditions",
            owner(),
        ),
        2 => with(
            rule(&["catalog.entity.*"], "allow"),
            "conditions",
            json!({"anyOf": [owner(), label(&format!("team-{}", r % 20))]}),
        ),
        3 => match r % 4 {
            0 => with(rule(&["*"], "allow"), "action", json!("read")),
            1 => with(
                with(rule(&["*"], "allow"), "action", json!("read")),
                "conditions",
                json!({"allOf": [kind(&["component", "api"]), {"not": label("deprecated")}]}),
            ),
            2 => rule(&["catalog.location.*"], "allow"),
            _ => rule(
                &["catalog.location.read", "catalog.location.create"],
                "allow",
            ),
        },
        4 => match r % 3 {
            0 => rule(&["scaffolder.*"], "allow"),
            1 => rule(
                &["scaffolder.action.execute", "scaffolder.task.create"],
                "allow",
            ),
            _ => rule(&["scaffolder.task.*"], "allow"),
        },
        5 => rule(
            &[
                &format!("{}.item.read", plugin(1)),
                &format!("{}.item.list", plugin(1)),
            ],
            "allow",
        ),
        6 => rule(&[&format!("{}.*", plugin(7))], "allow"),
        7 => match r % 2 {
            0 => with(rule(&["kubernetes.*"], "allow"), "action", json!("read")),
            _ => rule(&["kubernetes.proxy", "kubernetes.clusters.read"], "allow"),
        },
        8 => with(
            rule(&["catalog.entity.read"], "allow"),
            "conditions",
            json!({"anyOf": [label("tier"), {"allOf": [owner(), {"not": kind(&["user", "group"])}]}]}),
        ),
        _ => match r % 5 {
            0 => with(
                rule(&["catalog.entity.delete"], "deny"),
                "conditions",
                json!({"allOf": [kind(&["group", "user"]), {"not": owner()}]}),
            ),
            1 => with(
                with(
                    rule(&["catalog.entity.*"], "deny"),
                    "action",
                    json!("delete"),
                ),
                "conditions",
                label("protected"),
            ),
            2 => rule(&["catalog.location.delete"], "deny"),
            3 => rule(&[&format!("{}.admin", plugin(3))], "deny"),
            _ => with(
                rule(&["catalog.entity.refresh"], "deny"),
                "conditions",
                json!({"allOf": [label("frozen"), {"not": owner()}]}),
            ),
        },
    }
}

/// Role `r` as it is stored: its document as JSON. The rules' order turns
/// with `r`, so the deny sits at every position.
fn role_json(r: usize) -> Value {
    let rules: Vec<Value> = (0..RULES_PER_ROLE)
        .map(|i| rule_of(r, (i + r) % RULES_PER_ROLE))
        .collect();
    json!({"name": role_name(r), "description": format!("Team role {r}"), "rules": rules})
}

/// An assignment with its subject written as an entity ref (the document
/// form) and resolved (the stored form).
struct Grant {
    role: String,
    subject_ref: String,
    subject: Subject,
    expires_at: Option<OffsetDateTime>,
}

fn grants(now: OffsetDateTime, rng: &mut Rng) -> Vec<Grant> {
    let mut out = Vec::new();
    let mut pool_start = 0;
    for (level, &size) in LEVEL_SIZES.iter().enumerate() {
        let pool = LEVEL_POOLS[level];
        for idx in 0..size {
            for k in 0..ROLES_PER_GROUP[level] {
                out.push(Grant {
                    role: role_name(pool_start + (idx * 3 + k) % pool),
                    subject_ref: group_ref(level, idx),
                    subject: Subject::Group(group_id(level, idx)),
                    expires_at: None,
                });
            }
        }
        pool_start += pool;
    }
    // The built-in roles: `member` through two roots, `viewer` through two
    // others, `admin` to a few users.
    for (root, role) in [(0, "member"), (1, "member"), (2, "viewer"), (3, "viewer")] {
        out.push(Grant {
            role: role.into(),
            subject_ref: group_ref(0, root),
            subject: Subject::Group(group_id(0, root)),
            expires_at: None,
        });
    }
    let direct_pool = ROLES - pool_start;
    for u in 0..USERS {
        for k in 0..DIRECT_ROLES {
            // Temporary grants: most far away, a few already expired.
            let expires_at = match rng.below(50) {
                0..=5 => Some(now + Duration::from_secs(86_400 * 90)),
                6 => Some(now - Duration::from_secs(86_400)),
                _ => None,
            };
            out.push(Grant {
                role: role_name(pool_start + (u * 5 + k) % direct_pool),
                subject_ref: user_ref(u),
                subject: Subject::User(user_id(u)),
                expires_at,
            });
        }
        if u % 997 == 0 {
            out.push(Grant {
                role: "admin".into(),
                subject_ref: user_ref(u),
                subject: Subject::User(user_id(u)),
                expires_at: None,
            });
        }
    }
    out
}

/// A catalog entity as the catalog API returns it, owned by `owner`.
fn entity(i: usize, owner: &str, rng: &mut Rng) -> Value {
    const KINDS: [(&str, &str); 7] = [
        ("Component", "service"),
        ("Component", "website"),
        ("API", "openapi"),
        ("Resource", "database"),
        ("System", ""),
        ("Group", "team"),
        ("User", ""),
    ];
    let (kind, spec_type) = KINDS[rng.below(KINDS.len())];
    let mut labels = serde_json::Map::new();
    for (name, percent) in [
        ("tier", 30),
        ("deprecated", 10),
        ("protected", 10),
        ("frozen", 10),
    ] {
        if rng.chance(percent) {
            labels.insert(name.into(), json!("true"));
        }
    }
    labels.insert(format!("team-{}", rng.below(20)), json!("yes"));
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": format!("entity-{i}"),
            "namespace": "default",
            "labels": labels,
            "annotations": {"backstage.io/managed-by-location": "url:https://git.example/catalog-info.yaml"},
        },
        "spec": {"type": spec_type, "owner": owner, "lifecycle": "production"},
        "relations": [
            {"type": "ownedBy", "targetRef": owner},
            {"type": "partOf", "targetRef": "system:default/platform"},
        ],
    })
}

/// Latency figures of one histogram, in nanoseconds.
struct Latency {
    count: u64,
    mean: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_ns": self.mean.round(),
            "p50_ns": self.p50,
            "p99_ns": self.p99,
            "p999_ns": self.p999,
            "max_ns": self.max,
        })
    }
}

fn micros(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One decision to make: whose, about what, and about which entity.
struct Step {
    user: usize,
    permission: usize,
    entity: Option<usize>,
}

/// One pass of decisions: per-decision latencies, answers by kind, and
/// decisions/s from a pass without per-decision timing.
struct Pass {
    latency: Latency,
    /// By permission (same order as the mix), with answers by kind.
    by_permission: Vec<(Latency, [u64; 3])>,
    answers: [u64; 3],
    per_second: f64,
}

fn answer_index(decision: &Decision) -> usize {
    match decision {
        Decision::Allow => 0,
        Decision::Deny => 1,
        Decision::Conditional(_) => 2,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_pass(
    policy: &Policy,
    principals: &[Principal],
    permissions: &[Permission<'_>],
    entities: &[Value],
    steps: &[Step],
    now: OffsetDateTime,
    secs: f64,
) -> Result<Pass, BoxError> {
    let decide = |step: &Step| {
        policy.decide(
            &principals[step.user],
            &permissions[step.permission],
            step.entity.map(|e| &entities[e]),
            now,
        )
    };
    // Warm up: every step once.
    for step in steps {
        black_box(decide(step));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?;
    let mut answers = [0u64; 3];
    let mut by_permission = Vec::new();
    for _ in permissions {
        by_permission.push((
            Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?,
            [0u64; 3],
        ));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    'timed: loop {
        for chunk in steps.chunks(1024) {
            for step in chunk {
                let started = Instant::now();
                let verdict = decide(step);
                let answer = answer_index(&verdict.decision);
                drop(black_box(verdict));
                let elapsed = started.elapsed().as_nanos() as u64;
                histogram.saturating_record(elapsed.max(1));
                answers[answer] += 1;
                let (h, a) = &mut by_permission[step.permission];
                h.saturating_record(elapsed.max(1));
                a[answer] += 1;
            }
            if Instant::now() >= deadline {
                break 'timed;
            }
        }
    }
    let mut decisions = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    'untimed: loop {
        for chunk in steps.chunks(1024) {
            for step in chunk {
                black_box(decide(step));
            }
            decisions += chunk.len() as u64;
            if Instant::now() >= deadline {
                break 'untimed;
            }
        }
    }
    Ok(Pass {
        latency: Latency::of(&histogram),
        by_permission: by_permission
            .iter()
            .map(|(h, a)| (Latency::of(h), *a))
            .collect(),
        answers,
        per_second: decisions as f64 / started.elapsed().as_secs_f64(),
    })
}

/// The server's load path without the store read: each stored role
/// document parsed and validated, the built-in roles in front, the
/// resolved assignments, `Policy::new`.
fn build_from_stored(stored_roles: &[Value], grants: &[Grant]) -> Result<Policy, BoxError> {
    let (roles, assignments) = stored_inputs(stored_roles, grants)?;
    Ok(Policy::new(roles, assignments)?)
}

/// What `Policy::new` is given on the load path.
fn stored_inputs(
    stored_roles: &[Value],
    grants: &[Grant],
) -> Result<(Vec<Role>, Vec<Assignment>), BoxError> {
    let mut roles: Vec<Role> = builtin_roles().to_vec();
    for stored in stored_roles {
        let document: RoleDocument = serde_json::from_value(stored.clone())?;
        roles.push(document.validate(&document.name)?);
    }
    let assignments = grants
        .iter()
        .enumerate()
        .map(|(i, g)| {
            Ok(Assignment {
                id: Uuid::from_u128(i as u128 + 1),
                role: RoleName::parse(&g.role).ok_or("bad role name")?,
                subject: g.subject,
                expires_at: g.expires_at,
            })
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    Ok((roles, assignments))
}

/// The import path: the whole document parsed from its text, validated,
/// subjects resolved (from a map here; from the store in the server),
/// `Policy::new`.
fn build_from_text(text: &str, subjects: &HashMap<String, Subject>) -> Result<Policy, BoxError> {
    let document = PolicyDocument::parse(text)?;
    let mut roles: Vec<Role> = builtin_roles().to_vec();
    roles.extend(document.validate_roles(&BUILTIN_ROLE_NAMES)?);
    let assignments = document
        .assignments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            Ok(Assignment {
                id: Uuid::from_u128(i as u128 + 1),
                role: RoleName::parse(&a.role).ok_or("bad role name")?,
                subject: *subjects.get(&a.subject).ok_or("unknown subject")?,
                expires_at: a.expires_at,
            })
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    Ok(Policy::new(roles, assignments)?)
}

/// The same text, serialized straight from the criteria.
fn conditional_text_direct(criteria: &Criteria, claims: &[String]) -> Result<String, BoxError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        result: &'static str,
        plugin_id: &'static str,
        resource_type: &'static str,
        conditions: roster_authz::BackstageCriteria<'a>,
    }
    Ok(serde_json::to_string(&Answer {
        result: "CONDITIONAL",
        plugin_id: CATALOG_PLUGIN,
        resource_type: CATALOG_ENTITY,
        conditions: criteria.backstage_json(claims),
    })?)
}

/// What the server sends Backstage for a CONDITIONAL answer
/// (`access::conditional_json`), written out.
fn conditional_text(criteria: &Criteria, claims: &[String]) -> Result<String, BoxError> {
    Ok(serde_json::to_string(&json!({
        "result": "CONDITIONAL",
        "pluginId": CATALOG_PLUGIN,
        "resourceType": CATALOG_ENTITY,
        "conditions": criteria.to_backstage_json(claims),
    }))?)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let as_json = args.iter().any(|a| a == "--json");
    let secs: f64 = match args.iter().position(|a| a == "--secs") {
        Some(i) => args.get(i + 1).ok_or("--secs needs a value")?.parse()?,
        None => 3.0,
    };
    let now = OffsetDateTime::now_utc();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);

    // The directory, the policy documents and the principals.
    let dir = directory(&mut rng);
    let stored_roles: Vec<Value> = (0..ROLES).map(role_json).collect();
    let grants = grants(now, &mut rng);
    let document_text = serde_json::to_string(&json!({
        "roles": stored_roles,
        "assignments": grants.iter().map(|g| {
            let mut a = json!({"role": g.role, "subject": g.subject_ref});
            if let Some(at) = g.expires_at {
                a["expiresAt"] = json!(at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default());
            }
            a
        }).collect::<Vec<_>>(),
    }))?;
    let subjects: HashMap<String, Subject> = grants
        .iter()
        .map(|g| (g.subject_ref.clone(), g.subject))
        .collect();

    let mut principal_times = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?;
    let principals: Vec<Principal> = (0..USERS)
        .map(|u| {
            let started = Instant::now();
            let p = principal(&dir, u);
            principal_times.saturating_record((started.elapsed().as_nanos() as u64).max(1));
            p
        })
        .collect();

    // Building the policy: what a change costs before decisions see it.
    let policy = build_from_stored(&stored_roles, &grants)?;
    let mut load_times = Vec::new();
    let mut import_times = Vec::new();
    let mut new_times = Vec::new();
    for _ in 0..9 {
        let (roles, assignments) = stored_inputs(&stored_roles, &grants)?;
        let started = Instant::now();
        let built = black_box(Policy::new(roles, assignments)?);
        new_times.push(started.elapsed());
        drop(built);
        let started = Instant::now();
        black_box(build_from_stored(&stored_roles, &grants)?);
        load_times.push(started.elapsed());
        let started = Instant::now();
        black_box(build_from_text(&document_text, &subjects)?);
        import_times.push(started.elapsed());
    }
    let load_time = median(load_times);
    let import_time = median(import_times);
    let new_time = median(new_times);

    // The shape of what we decide on.
    let mut held: Vec<usize> = principals
        .iter()
        .map(|p| match p {
            Principal::User(user) => policy.roles_of(user, now).len(),
            _ => 0,
        })
        .collect();
    held.sort_unstable();
    let held_at = |q: f64| held[((held.len() - 1) as f64 * q) as usize];
    let mut groups_held: Vec<usize> = principals
        .iter()
        .map(|p| match p {
            Principal::User(user) => user.groups.len(),
            _ => 0,
        })
        .collect();
    groups_held.sort_unstable();
    let rules_total: usize = policy.roles().map(|r| r.rules.len()).sum();
    let custom_roles = policy.roles().filter(|r| !r.builtin).count();

    // Entities: most owned by someone else, some by the asking user or one
    // of their direct groups.
    let mut entities = Vec::new();
    const STEPS: usize = 8192;
    let mut steps = Vec::with_capacity(STEPS);
    let mut resource_steps = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        let user = rng.below(USERS);
        steps.push(Step {
            user,
            permission: rng.below(MIX.len()),
            entity: None,
        });
        let owner = match rng.below(10) {
            0 => user_ref(user),
            1..=2 => {
                let direct = &dir.memberships[user];
                let (l, g) = direct[rng.below(direct.len())];
                group_ref(l, g)
            }
            _ => {
                let level = 3 + rng.below(2);
                group_ref(level, rng.below(LEVEL_SIZES[level]))
            }
        };
        entities.push(entity(i, &owner, &mut rng));
        resource_steps.push(Step {
            user,
            permission: rng.below(RESOURCE_MIX.len()),
            entity: Some(i),
        });
    }
    let mix: Vec<Permission<'_>> = MIX.iter().map(|p| known_permission(p)).collect();
    let resource_mix: Vec<Permission<'_>> =
        RESOURCE_MIX.iter().map(|p| known_permission(p)).collect();

    // Timer overhead: two Instant::now() calls back to back.
    let mut overhead = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?;
    for _ in 0..100_000 {
        let started = Instant::now();
        overhead.saturating_record((started.elapsed().as_nanos() as u64).max(1));
    }

    let without = run_pass(&policy, &principals, &mix, &entities, &steps, now, secs)?;
    let with_resource = run_pass(
        &policy,
        &principals,
        &resource_mix,
        &entities,
        &resource_steps,
        now,
        secs,
    )?;

    // Serialising CONDITIONAL answers, over the ones the mix produces: as
    // the server does (through a `Value`), and straight to text.
    let mut serialise = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?;
    let mut serialise_direct = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)?;
    let mut sizes = Vec::new();
    for _ in 0..3 {
        for step in &steps {
            let Principal::User(user) = &principals[step.user] else {
                continue;
            };
            let verdict = policy.decide(&principals[step.user], &mix[step.permission], None, now);
            if let Decision::Conditional(criteria) = &verdict.decision {
                let started = Instant::now();
                let text = conditional_text(criteria, &user.ownership_refs)?;
                serialise.saturating_record((started.elapsed().as_nanos() as u64).max(1));
                let started = Instant::now();
                let direct = conditional_text_direct(criteria, &user.ownership_refs)?;
                serialise_direct.saturating_record((started.elapsed().as_nanos() as u64).max(1));
                if direct != text {
                    return Err(format!("direct JSON differs:\n{direct}\n{text}").into());
                }
                sizes.push(text.len());
            }
        }
    }
    sizes.sort_unstable();
    let size_median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let size_max = sizes.last().copied().unwrap_or(0);
    let serialise = Latency::of(&serialise);
    let serialise_direct = Latency::of(&serialise_direct);
    let principal_latency = Latency::of(&principal_times);
    let overhead = Latency::of(&overhead);

    if as_json {
        let answers_json = |a: &[u64; 3]| json!({"allow": a[0], "deny": a[1], "conditional": a[2]});
        let pass_json = |p: &Pass, names: &[&str]| {
            let by_permission: serde_json::Map<String, Value> = names
                .iter()
                .zip(&p.by_permission)
                .map(|(name, (l, a))| {
                    let mut v = l.json();
                    v["answers"] = answers_json(a);
                    (name.to_string(), v)
                })
                .collect();
            json!({
                "decisions_per_sec": p.per_second.round(),
                "latency": p.latency.json(),
                "answers": answers_json(&p.answers),
                "by_permission": by_permission,
            })
        };
        let report = json!({
            "shape": {
                "users": USERS,
                "groups": LEVEL_SIZES.iter().sum::<usize>(),
                "levels": LEVEL_SIZES.len(),
                "custom_roles": custom_roles,
                "rules": rules_total,
                "assignments": grants.len(),
                "roles_per_user": {"min": held[0], "p10": held_at(0.1), "median": held_at(0.5), "p90": held_at(0.9), "max": held_at(1.0)},
                "groups_per_user": {"min": groups_held[0], "median": groups_held[groups_held.len() / 2], "max": groups_held[groups_held.len() - 1]},
                "document_bytes": document_text.len(),
            },
            "without_resource": pass_json(&without, &MIX),
            "with_resource": pass_json(&with_resource, &RESOURCE_MIX),
            "build_policy_ms": {
                "from_stored_role_documents": load_time.as_secs_f64() * 1000.0,
                "import_from_document_text": import_time.as_secs_f64() * 1000.0,
                "policy_new_alone": new_time.as_secs_f64() * 1000.0,
            },
            "conditional_to_backstage_json": {
                "latency": serialise.json(),
                "direct_latency": serialise_direct.json(),
                "bytes_median": size_median,
                "bytes_max": size_max,
            },
            "principal_group_closure": principal_latency.json(),
            "timer_overhead": overhead.json(),
            "target_p99_ns": 20_000,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }

    println!(
        "policy: {USERS} users, {} groups in {} levels, {custom_roles} custom roles + {} built-in, \
         {rules_total} rules, {} assignments ({} bytes as a document)",
        LEVEL_SIZES.iter().sum::<usize>(),
        LEVEL_SIZES.len(),
        BUILTIN_ROLE_NAMES.len(),
        grants.len(),
        document_text.len()
    );
    println!(
        "roles held per user: min {}, p10 {}, median {}, p90 {}, max {}; groups per user (closure): {}-{}, median {}",
        held[0],
        held_at(0.1),
        held_at(0.5),
        held_at(0.9),
        held_at(1.0),
        groups_held[0],
        groups_held[groups_held.len() - 1],
        groups_held[groups_held.len() / 2],
    );
    println!();
    println!(
        "| Policy::decide ({secs} s per pass, 1 thread) | decisions/s | p50 µs | p99 µs | p99.9 µs | max µs | ALLOW/DENY/CONDITIONAL |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, pass) in [
        ("no resource, 8 permissions", &without),
        ("with a catalog entity, 3 permissions", &with_resource),
    ] {
        let total = pass.answers.iter().sum::<u64>().max(1) as f64;
        let share = |i: usize| format!("{:.0}%", pass.answers[i] as f64 * 100.0 / total);
        println!(
            "| {name} | {:.0} | {} | {} | {} | {} | {}/{}/{} |",
            pass.per_second,
            micros(pass.latency.p50),
            micros(pass.latency.p99),
            micros(pass.latency.p999),
            micros(pass.latency.max),
            share(0),
            share(1),
            share(2)
        );
    }
    println!();
    println!("| by permission | p50 µs | p99 µs | p99.9 µs | ALLOW/DENY/CONDITIONAL |");
    println!("|---|---|---|---|---|");
    for (pass, names, suffix) in [
        (&without, &MIX[..], ""),
        (&with_resource, &RESOURCE_MIX[..], " + entity"),
    ] {
        for (name, (l, a)) in names.iter().zip(&pass.by_permission) {
            println!(
                "| {name}{suffix} | {} | {} | {} | {}/{}/{} |",
                micros(l.p50),
                micros(l.p99),
                micros(l.p999),
                a[0],
                a[1],
                a[2]
            );
        }
    }
    println!();
    println!(
        "build Policy: from the stored role documents {} ms (of which Policy::new {} ms); import from the document text {} ms (median of 9)",
        millis(load_time),
        millis(new_time),
        millis(import_time)
    );
    println!(
        "CONDITIONAL → Backstage JSON text: through a Value (to_backstage_json) p50 {} µs, p99 {} µs; \
         straight (backstage_json) p50 {} µs, p99 {} µs ({} answers; {} bytes median, {} max)",
        micros(serialise.p50),
        micros(serialise.p99),
        micros(serialise_direct.p50),
        micros(serialise_direct.p99),
        serialise.count,
        size_median,
        size_max
    );
    println!(
        "principal (group_closure): p50 {} µs, p99 {} µs; timer overhead p50 {} ns",
        micros(principal_latency.p50),
        micros(principal_latency.p99),
        overhead.p50
    );
    let worst = without.latency.p99.max(with_resource.latency.p99);
    println!(
        "target: p99 < 20 µs: {} (worst p99 {} µs)",
        if worst < 20_000 { "met" } else { "NOT met" },
        micros(worst)
    );
    Ok(())
}
