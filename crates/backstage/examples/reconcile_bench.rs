//! Times `reconcile` on a large directory and catalog built in memory, and
//! reports peak memory (VmHWM from /proc/self/status).
//!
//! ```text
//! cargo run --release -p roster-backstage --example reconcile_bench [users] [entities]
//! ```
//!
//! Defaults: 100,000 directory users against 150,000 catalog entities. The
//! catalog is the feed of the directory plus the mess a real one collects:
//! ghosts, deactivated users, duplicates from a second importer, and
//! components owned by live, deactivated and vanished owners.

use std::time::{Duration, Instant};

use roster_backstage::reconcile::{
    annotations, plan_fixes, reconcile, render_csv, render_json, render_table, CatalogEntity,
    DirGroup, DirUser, DirectorySnapshot, ReconcileConfig, Relation,
};

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

const FEED: &str = "url:http://roster.internal/backstage/catalog.yaml";
const REPO: &str = "url:https://git.example/acme/catalog/blob/main/all.yaml";

fn directory(users: usize, rng: &mut Rng) -> DirectorySnapshot {
    let groups = (users / 20).max(1);
    let groups: Vec<DirGroup> = (0..groups)
        .map(|n| DirGroup {
            id: format!("00000000-0000-4000-8000-{n:012x}"),
            display_name: format!("Team {n}"),
            entity_name: Some(format!("team-{n}")),
            member_ids: Vec::new(),
        })
        .collect();
    let users = (0..users)
        .map(|n| DirUser {
            id: format!("10000000-0000-4000-8000-{n:012x}"),
            user_name: format!("person{n}@acme.example"),
            entity_name: Some(format!("person{n}")),
            email: Some(format!("person{n}@acme.example")),
            active: !rng.chance(3),
            manager_id: (n > 0).then(|| format!("10000000-0000-4000-8000-{:012x}", rng.below(n))),
            external_id: Some(format!("00u{n:016x}")),
            group_ids: (0..1 + rng.below(3))
                .map(|_| groups[rng.below(groups.len())].id.clone())
                .collect(),
        })
        .collect();
    DirectorySnapshot {
        users,
        groups,
        handovers: Vec::new(),
    }
}

fn entity(kind: &str, name: String, uid: usize, location: &str) -> CatalogEntity {
    let mut e = CatalogEntity {
        uid: format!("20000000-0000-4000-8000-{uid:012x}"),
        kind: kind.to_owned(),
        namespace: "default".to_owned(),
        name,
        managed_by_location: Some(location.to_owned()),
        ..CatalogEntity::default()
    };
    e.annotations.insert(
        annotations::MANAGED_BY_LOCATION.to_owned(),
        location.to_owned(),
    );
    e
}

fn catalog(directory: &DirectorySnapshot, entities: usize, rng: &mut Rng) -> Vec<CatalogEntity> {
    let mut catalog = Vec::with_capacity(entities);
    let mut uid = 0;
    let mut next_uid = || {
        uid += 1;
        uid
    };
    for user in &directory.users {
        // Most deactivated users are gone from the feed; some linger.
        if !user.active && !catalog.len().is_multiple_of(5) {
            continue;
        }
        let Some(name) = user.entity_name.clone() else {
            continue;
        };
        let mut e = entity("User", name, next_uid(), FEED);
        e.annotations
            .insert(annotations::SCIM_ID.to_owned(), user.id.clone());
        e.profile_email = user.email.clone();
        for group_id in &user.group_ids {
            e.relations.push(Relation {
                relation_type: "memberOf".to_owned(),
                target_ref: format!("group:default/team-{}", group_index(group_id)),
            });
        }
        catalog.push(e);
    }
    for group in &directory.groups {
        let Some(name) = group.entity_name.clone() else {
            continue;
        };
        let mut e = entity("Group", name, next_uid(), FEED);
        e.annotations
            .insert(annotations::SCIM_ID.to_owned(), group.id.clone());
        catalog.push(e);
    }
    // Ghosts Roster published, orphaned since.
    for n in 0..1_000 {
        let mut e = entity("User", format!("left{n}"), next_uid(), FEED);
        e.annotations.insert(
            annotations::SCIM_ID.to_owned(),
            format!("30000000-0000-4000-8000-{n:012x}"),
        );
        e.annotations
            .insert(annotations::ORPHAN.to_owned(), "true".to_owned());
        catalog.push(e);
    }
    // A second importer's users: half duplicate a directory user's email.
    for n in 0..1_000 {
        let mut e = entity("User", format!("gh-user{n}"), next_uid(), REPO);
        e.namespace = "github".to_owned();
        e.profile_email = Some(if n % 2 == 0 {
            format!("person{}@acme.example", rng.below(directory.users.len()))
        } else {
            format!("contractor{n}@partner.example")
        });
        catalog.push(e);
    }
    // Components, APIs and systems fill the rest, owned mostly by live
    // groups and users, some by deactivated users and vanished groups.
    let kinds = ["Component", "API", "System", "Resource"];
    let groups = directory.groups.len();
    let users = directory.users.len();
    let mut n = 0;
    while catalog.len() < entities {
        let owner = match rng.below(100) {
            0..=69 => format!("team-{}", rng.below(groups)),
            70..=94 => format!("user:person{}", rng.below(users)),
            _ => format!("group:default/vanished-{}", rng.below(500)),
        };
        let mut e = entity(
            kinds[n % kinds.len()],
            format!("thing-{n}"),
            next_uid(),
            REPO,
        );
        e.relations.push(Relation {
            relation_type: "ownedBy".to_owned(),
            target_ref: owner_ref(&owner),
        });
        e.spec_owner = Some(owner);
        catalog.push(e);
        n += 1;
    }
    catalog
}

fn group_index(id: &str) -> u64 {
    u64::from_str_radix(id.rsplit('-').next().unwrap_or("0"), 16).unwrap_or(0)
}

fn owner_ref(owner: &str) -> String {
    if owner.contains(':') {
        owner
            .replace("user:", "user:default/")
            .replace("default/default/", "default/")
    } else {
        format!("group:default/{owner}")
    }
}

/// Peak resident memory so far, from /proc/self/status.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let entities: usize = args.next().map_or(Ok(150_000), |a| a.parse())?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    let started = Instant::now();
    let directory = directory(users, &mut rng);
    let catalog = catalog(&directory, entities, &mut rng);
    println!(
        "generated {} users, {} groups, {} entities in {}; peak RSS {}",
        directory.users.len(),
        directory.groups.len(),
        catalog.len(),
        ms(started.elapsed()),
        peak_rss()
    );

    let config = ReconcileConfig {
        fallback_owner: Some("team-0".to_owned()),
        ..ReconcileConfig::default()
    };
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..5 {
        let started = Instant::now();
        let this = reconcile(&directory, &catalog, &config);
        times.push(started.elapsed());
        report = Some(this);
    }
    let report = report.ok_or("no run")?;
    times.sort();
    println!(
        "reconcile: min {}, median {}, max {} over {} runs; peak RSS {}",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len(),
        peak_rss()
    );

    let s = &report.summary;
    println!(
        "findings: {} (ghost users {}, ghost groups {}, deactivated {}, duplicates {}, missing {}, dangling owners {}); {} applicable, {} manual; {} planned",
        s.findings(),
        s.ghost_users,
        s.ghost_groups,
        s.deactivated_users,
        s.duplicates,
        s.missing_users,
        s.dangling_owners,
        s.applicable_fixes,
        s.manual_fixes,
        plan_fixes(&report).len()
    );

    let started = Instant::now();
    let table = render_table(&report);
    let table_time = started.elapsed();
    let started = Instant::now();
    let json = render_json(&report)?;
    let json_time = started.elapsed();
    let started = Instant::now();
    let csv = render_csv(&report)?;
    let csv_time = started.elapsed();
    println!(
        "render: table {} ({} KiB), JSON {} ({} KiB), CSV {} ({} KiB); peak RSS {}",
        ms(table_time),
        table.len() / 1024,
        ms(json_time),
        json.len() / 1024,
        ms(csv_time),
        csv.len() / 1024,
        peak_rss()
    );
    Ok(())
}
