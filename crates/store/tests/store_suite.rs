//! The store suite: every test runs against SQLite (always) and PostgreSQL
//! (when reachable), each on a fresh database.
//!
//! PostgreSQL is found at `postgres://postgres@127.0.0.1:5432/test` unless
//! `ROSTER_TEST_POSTGRES_URL` says otherwise; each test creates (and drops)
//! its own database on that server. `ROSTER_TEST_POSTGRES=skip` skips them.
//!
//! A test is an `async fn(Ctx)`; list it in `store_tests!` at the bottom.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use roster_domain::{
    ApiToken, DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, MultiValue,
    PersonName, TokenHash, TokenName, TokenScope, User, UserAttributes, UserId, UserName, Version,
};
use roster_store::{
    CatalogMember, DirectoryFingerprint, GroupQuery, GroupRef, Handover, HandoverReason,
    MembershipChange, Position, PostgresStore, ReconcileFix, SqliteStore, Store, StoreError,
    StoreResult, UniqueField, UserQuery,
};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

#[path = "store_suite/access.rs"]
mod access;
use access::{
    access_policy_round_trips_under_a_revision_guard,
    access_subject_resolves_nested_groups_like_the_reference,
    concurrent_policy_writes_apply_one_at_a_time,
};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Clone)]
enum Backend {
    Sqlite(PathBuf),
    Postgres(Box<PgConnectOptions>),
}

/// What a test gets: the store, and a way to reach the database behind it.
struct Ctx {
    store: Arc<dyn Store>,
    backend: Backend,
}

impl Ctx {
    fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Opens another store on the same database (another process, or a
    /// restart).
    async fn reopen(&self) -> StoreResult<Arc<dyn Store>> {
        Ok(match &self.backend {
            Backend::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
            Backend::Postgres(options) => {
                Arc::new(PostgresStore::connect_with((**options).clone()).await?)
            }
        })
    }

    /// Runs SQL on the database directly, past the store.
    async fn exec_raw(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite(path) => {
                let options = SqliteConnectOptions::new().filename(path);
                let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
                conn.execute(sql).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres(options) => {
                let mut conn = PgConnection::connect_with(&**options).await.unwrap();
                conn.execute(sql).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Runs `test` after `cleanup`-safe setup, re-raising its panic after
/// cleaning up.
async fn run_guarded<Fut: Future<Output = ()>>(
    test: Fut,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    AssertUnwindSafe(test).catch_unwind().await
}

async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("roster-store-test-{}", Uuid::new_v4().simple()));
    let path = dir.join("nested").join("roster.db");
    let store = SqliteStore::open(&path).await.expect("open SQLite store");
    let ctx = Ctx {
        store: Arc::new(store),
        backend: Backend::Sqlite(path),
    };
    let outcome = run_guarded(test(ctx)).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The server to create test databases on, or `None` (with a note on
/// stderr) when there is none.
async fn postgres_server() -> Option<(String, PgConnectOptions)> {
    if std::env::var("ROSTER_TEST_POSTGRES").is_ok_and(|v| v.eq_ignore_ascii_case("skip")) {
        eprintln!("ROSTER_TEST_POSTGRES=skip: skipping PostgreSQL store tests");
        return None;
    }
    let url = std::env::var("ROSTER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let options = match PgConnectOptions::from_str(&url) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("PostgreSQL URL {url:?} is invalid ({err}): skipping PostgreSQL store tests");
            return None;
        }
    };
    let admin = options.clone().database("postgres");
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&admin)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Some((url, options))
        }
        Ok(Err(err)) => {
            eprintln!("PostgreSQL not reachable at {url}: skipping PostgreSQL store tests ({err})");
            None
        }
        Err(_) => {
            eprintln!(
                "PostgreSQL not reachable at {url}: skipping PostgreSQL store tests (timed out)"
            );
            None
        }
    }
}

async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((_url, server)) = postgres_server().await else {
        return;
    };
    let admin_options = server.clone().database("postgres");
    let name = format!("roster_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&admin_options).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let options = server.database(&name);
    let store = PostgresStore::connect_with(options.clone())
        .await
        .expect("connect PostgreSQL store");
    let handle = store.clone();
    let ctx = Ctx {
        store: Arc::new(store),
        backend: Backend::Postgres(Box::new(options)),
    };
    let outcome = run_guarded(test(ctx)).await;
    handle.close().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------
// Domain helpers
// ---------------------------------------------------------------------------

fn t0() -> OffsetDateTime {
    datetime!(2024-05-01 12:00:00.123 UTC)
}

fn at(seconds: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(seconds)
}

fn user(name: &str) -> User {
    User {
        id: UserId::new_random(),
        meta: Meta::new(t0()),
        attributes: UserAttributes::with_user_name(UserName::parse(name).unwrap()),
    }
}

/// The next revision of `user`, changed by `change`, written at `now`.
fn revise_user(user: &User, now: OffsetDateTime, change: impl FnOnce(&mut UserAttributes)) -> User {
    let mut next = user.clone();
    next.meta = user.meta.touched(now);
    change(&mut next.attributes);
    next
}

fn group(name: &str) -> Group {
    Group {
        id: GroupId::new_random(),
        meta: Meta::new(t0()),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(name).unwrap(),
            external_id: None,
        },
    }
}

fn revise_group(
    group: &Group,
    now: OffsetDateTime,
    change: impl FnOnce(&mut GroupAttributes),
) -> Group {
    let mut next = group.clone();
    next.meta = group.meta.touched(now);
    change(&mut next.attributes);
    next
}

fn renamed(group: &Group, now: OffsetDateTime, name: &str) -> Group {
    revise_group(group, now, |a| {
        a.display_name = DisplayName::parse(name).unwrap()
    })
}

fn touched(group: &Group, now: OffsetDateTime) -> Group {
    revise_group(group, now, |_| {})
}

fn m_user(user: &User) -> Member {
    Member {
        id: user.id.as_uuid(),
        kind: MemberKind::User,
        display: None,
    }
}

fn m_group(group: &Group) -> Member {
    Member {
        id: group.id.as_uuid(),
        kind: MemberKind::Group,
        display: None,
    }
}

fn member_ids(members: &[Member]) -> Vec<Uuid> {
    members.iter().map(|m| m.id).collect()
}

fn token(name: &str, secret: &str) -> ApiToken {
    ApiToken {
        id: Uuid::new_v4(),
        name: TokenName::parse(name).unwrap(),
        scope: TokenScope::Scim,
        hash: TokenHash::of(secret),
        created: t0(),
        revoked: None,
    }
}

async fn insert_users(store: &dyn Store, names: &[&str]) -> Vec<User> {
    let mut out = Vec::new();
    for name in names {
        let u = user(name);
        store.insert_user(&u).await.unwrap();
        out.push(u);
    }
    out
}

async fn members_of(store: &dyn Store, group: &Group) -> Vec<Uuid> {
    member_ids(&store.group_members(group.id).await.unwrap())
}

async fn version_of(store: &dyn Store, group: &Group) -> Version {
    store
        .get_group(group.id)
        .await
        .unwrap()
        .unwrap()
        .meta
        .version
}

fn assert_conflict(result: StoreResult<()>, field: UniqueField) {
    match result {
        Err(StoreError::Conflict(f)) if f == field => {}
        other => panic!("expected Conflict({field:?}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

async fn users_round_trip(cx: Ctx) {
    let store = &*cx.store;
    store.ping().await.unwrap();
    let mut jane = user("Jane.Doe@Example.com");
    jane.attributes.external_id = Some("ext-1".into());
    jane.attributes.display_name = Some("Jane Doe".into());
    jane.attributes.name = Some(PersonName {
        given_name: Some("Jane".into()),
        family_name: Some("Doe".into()),
        ..PersonName::default()
    });
    jane.attributes.emails = vec![MultiValue {
        value: Some("jane@example.com".into()),
        kind: Some("work".into()),
        primary: Some(true),
        display: None,
    }];
    jane.attributes.active = Some(false);
    store.insert_user(&jane).await.unwrap();
    let other = user("other");
    store.insert_user(&other).await.unwrap();

    assert_eq!(store.get_user(jane.id).await.unwrap(), Some(jane.clone()));
    assert_eq!(store.get_user(UserId::new_random()).await.unwrap(), None);

    let by_name = store
        .find_users(&UserQuery::ByUserName("JANE.DOE@example.COM".into()))
        .await
        .unwrap();
    assert_eq!(by_name, vec![jane.clone()]);
    assert_eq!(
        store
            .find_users(&UserQuery::ByUserName("nobody".into()))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .find_users(&UserQuery::ByExternalId("ext-1".into()))
            .await
            .unwrap(),
        vec![jane.clone()]
    );
    assert_eq!(
        store
            .find_users(&UserQuery::ByExternalId("EXT-1".into()))
            .await
            .unwrap(),
        vec![],
        "externalId is case-exact"
    );
    let by_ids = store
        .find_users(&UserQuery::ByIds(vec![
            other.id,
            UserId::new_random(),
            jane.id,
        ]))
        .await
        .unwrap();
    assert_eq!(
        by_ids,
        vec![jane.clone(), other.clone()],
        "in creation order"
    );
    assert_eq!(
        store.find_users(&UserQuery::ByIds(vec![])).await.unwrap(),
        vec![]
    );
    assert_eq!(store.count_users().await.unwrap(), 2);
}

async fn user_names_are_unique_case_insensitively(cx: Ctx) {
    let store = &*cx.store;
    let [alice, bob] = <[User; 2]>::try_from(insert_users(store, &["alice", "bob"]).await).unwrap();
    assert_conflict(
        store.insert_user(&user("ALICE")).await,
        UniqueField::UserName,
    );

    let bob_as_alice = revise_user(&bob, at(1), |a| {
        a.user_name = UserName::parse("Alice").unwrap()
    });
    assert_conflict(
        store.update_user(&bob_as_alice, bob.meta.version).await,
        UniqueField::UserName,
    );
    assert_eq!(
        store.get_user(bob.id).await.unwrap(),
        Some(bob.clone()),
        "unchanged"
    );

    // Changing only the case of one's own name is fine.
    let alice2 = revise_user(&alice, at(1), |a| {
        a.user_name = UserName::parse("ALICE").unwrap()
    });
    store
        .update_user(&alice2, alice.meta.version)
        .await
        .unwrap();
    assert_eq!(store.get_user(alice.id).await.unwrap(), Some(alice2));
    assert_eq!(store.count_users().await.unwrap(), 2);

    // Reusing an id is a storage error, not a name conflict.
    let mut same_id = user("carol");
    same_id.id = alice.id;
    assert!(matches!(
        store.insert_user(&same_id).await,
        Err(StoreError::Backend(_))
    ));
}

async fn update_user_checks_the_version(cx: Ctx) {
    let store = &*cx.store;
    let jane = insert_users(store, &["jane"]).await.remove(0);
    let v2 = revise_user(&jane, at(5), |a| a.display_name = Some("Jane".into()));
    store.update_user(&v2, Version(1)).await.unwrap();
    let stored = store.get_user(jane.id).await.unwrap().unwrap();
    assert_eq!(stored, v2);
    assert_eq!(stored.meta.version, Version(2));
    assert_eq!(stored.meta.created, t0());
    assert_eq!(stored.meta.last_modified, at(5));

    let stale = revise_user(&jane, at(6), |a| a.title = Some("Stale".into()));
    match store.update_user(&stale, Version(1)).await {
        Err(StoreError::VersionMismatch { current }) => assert_eq!(current, Version(2)),
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert_eq!(store.get_user(jane.id).await.unwrap(), Some(v2.clone()));

    let ghost = user("ghost");
    assert!(matches!(
        store
            .update_user(&revise_user(&ghost, at(1), |_| {}), Version(1))
            .await,
        Err(StoreError::NotFound)
    ));

    let v3 = revise_user(&v2, at(7), |a| a.active = Some(false));
    store.update_user(&v3, Version(2)).await.unwrap();
    assert_eq!(store.get_user(jane.id).await.unwrap(), Some(v3));
}

async fn timestamps_round_trip_to_the_millisecond(cx: Ctx) {
    let store = &*cx.store;
    let precise = datetime!(2031-12-31 23:59:58.987_654_321 UTC);
    let mut u = user("precise");
    u.meta = Meta::new(precise);
    store.insert_user(&u).await.unwrap();
    let stored = store.get_user(u.id).await.unwrap().unwrap();
    assert_eq!(stored.meta.created, datetime!(2031-12-31 23:59:58.987 UTC));
    assert_eq!(
        stored.meta.last_modified,
        datetime!(2031-12-31 23:59:58.987 UTC)
    );

    let before_epoch = datetime!(1969-07-20 20:17:40.5 UTC);
    let mut g = group("Apollo");
    g.meta = Meta::new(before_epoch);
    store.insert_group(&g, &[]).await.unwrap();
    assert_eq!(store.get_group(g.id).await.unwrap(), Some(g));
}

async fn delete_user_removes_memberships_and_bumps_groups(cx: Ctx) {
    let store = &*cx.store;
    let [a, b] = <[User; 2]>::try_from(insert_users(store, &["a", "b"]).await).unwrap();
    let g = group("G");
    let h = group("H");
    let k = group("K");
    store
        .insert_group(&g, &[m_user(&a), m_user(&b)])
        .await
        .unwrap();
    store.insert_group(&h, &[m_user(&a)]).await.unwrap();
    store.insert_group(&k, &[m_user(&b)]).await.unwrap();

    assert!(store.delete_user(a.id, at(60)).await.unwrap());
    assert!(!store.delete_user(a.id, at(61)).await.unwrap());
    assert_eq!(store.get_user(a.id).await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 1);

    assert_eq!(members_of(store, &g).await, vec![b.id.as_uuid()]);
    assert_eq!(members_of(store, &h).await, Vec::<Uuid>::new());
    for left in [&g, &h] {
        let stored = store.get_group(left.id).await.unwrap().unwrap();
        assert_eq!(
            stored.meta.version,
            Version(2),
            "{}",
            left.attributes.display_name
        );
        assert_eq!(stored.meta.last_modified, at(60));
        assert_eq!(stored.meta.created, t0());
        assert_eq!(stored.attributes, left.attributes);
    }
    assert_eq!(
        store.get_group(k.id).await.unwrap(),
        Some(k.clone()),
        "untouched"
    );
    let groups = store.groups_of_users(&[a.id]).await.unwrap();
    assert_eq!(groups.get(&a.id), Some(&vec![]));
    assert_eq!(
        store.existing_members(&[a.id.as_uuid()]).await.unwrap(),
        HashMap::new()
    );

    // The bumped version is what the next write must name.
    assert!(matches!(
        store
            .update_group(
                &touched(&g, at(62)),
                Version(1),
                &MembershipChange::Unchanged
            )
            .await,
        Err(StoreError::VersionMismatch {
            current: Version(2)
        })
    ));
    let g2 = store.get_group(g.id).await.unwrap().unwrap();
    store
        .update_group(
            &touched(&g2, at(63)),
            Version(2),
            &MembershipChange::Unchanged,
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

async fn groups_round_trip_and_names_are_unique(cx: Ctx) {
    let store = &*cx.store;
    let mut eng = group("Engineering");
    eng.attributes.external_id = Some("g-ext".into());
    store.insert_group(&eng, &[]).await.unwrap();
    let ops = group("Ops");
    store.insert_group(&ops, &[]).await.unwrap();

    assert_eq!(store.get_group(eng.id).await.unwrap(), Some(eng.clone()));
    assert_eq!(store.get_group(GroupId::new_random()).await.unwrap(), None);
    assert_eq!(
        store
            .find_groups(&GroupQuery::ByDisplayName("ENGINEERING".into()))
            .await
            .unwrap(),
        vec![eng.clone()]
    );
    assert_eq!(
        store
            .find_groups(&GroupQuery::ByExternalId("g-ext".into()))
            .await
            .unwrap(),
        vec![eng.clone()]
    );
    assert_eq!(
        store
            .find_groups(&GroupQuery::ByIds(vec![
                ops.id,
                eng.id,
                GroupId::new_random()
            ]))
            .await
            .unwrap(),
        vec![eng.clone(), ops.clone()]
    );
    assert_eq!(
        store.find_groups(&GroupQuery::ByIds(vec![])).await.unwrap(),
        vec![]
    );
    assert_eq!(store.count_groups().await.unwrap(), 2);

    assert_conflict(
        store.insert_group(&group("engineering"), &[]).await,
        UniqueField::GroupDisplayName,
    );
    assert_conflict(
        store
            .update_group(
                &renamed(&ops, at(1), "ENGINEERING"),
                Version(1),
                &MembershipChange::Unchanged,
            )
            .await,
        UniqueField::GroupDisplayName,
    );
    assert_eq!(store.get_group(ops.id).await.unwrap(), Some(ops.clone()));
    assert_eq!(store.count_groups().await.unwrap(), 2);
}

async fn update_group_checks_the_version(cx: Ctx) {
    let store = &*cx.store;
    let [a, b] = <[User; 2]>::try_from(insert_users(store, &["a", "b"]).await).unwrap();
    let g = group("G");
    store.insert_group(&g, &[m_user(&a)]).await.unwrap();
    let g2 = renamed(&g, at(1), "G2");
    store
        .update_group(&g2, Version(1), &MembershipChange::Unchanged)
        .await
        .unwrap();
    assert_eq!(store.get_group(g.id).await.unwrap(), Some(g2.clone()));

    // A stale write changes neither attributes nor members.
    let stale = renamed(&g, at(2), "Stale");
    let add_b = MembershipChange::Delta {
        add: vec![m_user(&b)],
        remove: vec![a.id.as_uuid()],
    };
    assert!(matches!(
        store.update_group(&stale, Version(1), &add_b).await,
        Err(StoreError::VersionMismatch {
            current: Version(2)
        })
    ));
    assert_eq!(store.get_group(g.id).await.unwrap(), Some(g2.clone()));
    assert_eq!(members_of(store, &g).await, vec![a.id.as_uuid()]);

    assert!(matches!(
        store
            .update_group(&touched(&group("ghost"), at(1)), Version(1), &add_b)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn membership_delta_and_replace(cx: Ctx) {
    let store = &*cx.store;
    let [u1, u2, u3, u4] =
        <[User; 4]>::try_from(insert_users(store, &["u1", "u2", "u3", "u4"]).await).unwrap();
    let g = group("G");
    store
        .insert_group(&g, &[m_user(&u1), m_user(&u2)])
        .await
        .unwrap();
    assert_eq!(
        members_of(store, &g).await,
        vec![u1.id.as_uuid(), u2.id.as_uuid()]
    );

    // Delta: adding a present member and removing an absent one are no-ops.
    let g2 = touched(&g, at(1));
    let delta = MembershipChange::Delta {
        add: vec![m_user(&u3), m_user(&u1)],
        remove: vec![u2.id.as_uuid(), Uuid::new_v4()],
    };
    store.update_group(&g2, Version(1), &delta).await.unwrap();
    assert_eq!(
        members_of(store, &g).await,
        vec![u1.id.as_uuid(), u3.id.as_uuid()]
    );
    assert_eq!(version_of(store, &g).await, Version(2));

    // Remove and re-add in one change keeps the member.
    let g3 = touched(&g2, at(2));
    let churn = MembershipChange::Delta {
        add: vec![m_user(&u3)],
        remove: vec![u3.id.as_uuid()],
    };
    store.update_group(&g3, Version(2), &churn).await.unwrap();
    assert_eq!(
        BTreeSet::from_iter(members_of(store, &g).await),
        BTreeSet::from([u1.id.as_uuid(), u3.id.as_uuid()])
    );

    // Replace sets exactly the list, in its order (duplicates collapse).
    let g4 = touched(&g3, at(3));
    let replace =
        MembershipChange::Replace(vec![m_user(&u4), m_user(&u2), m_user(&u4), m_user(&u1)]);
    store.update_group(&g4, Version(3), &replace).await.unwrap();
    assert_eq!(
        members_of(store, &g).await,
        vec![u4.id.as_uuid(), u2.id.as_uuid(), u1.id.as_uuid()]
    );

    let g5 = touched(&g4, at(4));
    store
        .update_group(&g5, Version(4), &MembershipChange::Replace(vec![]))
        .await
        .unwrap();
    assert_eq!(members_of(store, &g).await, Vec::<Uuid>::new());

    // An empty delta still updates the attributes.
    let g6 = renamed(&g5, at(5), "G6");
    let empty = MembershipChange::Delta {
        add: vec![],
        remove: vec![],
    };
    store.update_group(&g6, Version(5), &empty).await.unwrap();
    assert_eq!(store.get_group(g.id).await.unwrap(), Some(g6));
}

async fn members_show_current_display(cx: Ctx) {
    let store = &*cx.store;
    let [jane, joe] =
        <[User; 2]>::try_from(insert_users(store, &["jane.doe", "joe"]).await).unwrap();
    let child = group("Child");
    let parent = group("Parent");
    let empty = group("Empty");
    store.insert_group(&child, &[m_user(&joe)]).await.unwrap();
    store
        .insert_group(&parent, &[m_user(&jane), m_group(&child)])
        .await
        .unwrap();
    store.insert_group(&empty, &[]).await.unwrap();

    let members = store.group_members(parent.id).await.unwrap();
    assert_eq!(
        members,
        vec![
            Member {
                id: jane.id.as_uuid(),
                kind: MemberKind::User,
                display: Some("jane.doe".into())
            },
            Member {
                id: child.id.as_uuid(),
                kind: MemberKind::Group,
                display: Some("Child".into())
            },
        ]
    );

    // Displays follow the members' current records.
    let jane2 = revise_user(&jane, at(1), |a| a.display_name = Some("Jane Doe".into()));
    store.update_user(&jane2, Version(1)).await.unwrap();
    store
        .update_group(
            &renamed(&child, at(1), "Kids"),
            Version(1),
            &MembershipChange::Unchanged,
        )
        .await
        .unwrap();
    let displays: Vec<_> = store
        .group_members(parent.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.display)
        .collect();
    assert_eq!(displays, vec![Some("Jane Doe".into()), Some("Kids".into())]);

    let missing = GroupId::new_random();
    let all = store
        .members_of_groups(&[parent.id, child.id, empty.id, missing])
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all[&parent.id],
        store.group_members(parent.id).await.unwrap()
    );
    assert_eq!(
        all[&child.id],
        vec![Member {
            id: joe.id.as_uuid(),
            kind: MemberKind::User,
            display: Some("joe".into())
        }]
    );
    assert_eq!(all[&empty.id], vec![]);
    assert_eq!(all[&missing], vec![]);
    assert!(store.members_of_groups(&[]).await.unwrap().is_empty());
    assert_eq!(store.group_members(missing).await.unwrap(), vec![]);
}

async fn groups_of_users_lists_direct_groups(cx: Ctx) {
    let store = &*cx.store;
    let [u, v, w] = <[User; 3]>::try_from(insert_users(store, &["u", "v", "w"]).await).unwrap();
    let g1 = group("One");
    let g2 = group("Two");
    let outer = group("Outer");
    store
        .insert_group(&g1, &[m_user(&u), m_user(&v)])
        .await
        .unwrap();
    store.insert_group(&g2, &[m_user(&u)]).await.unwrap();
    store.insert_group(&outer, &[m_group(&g1)]).await.unwrap();

    let map = store.groups_of_users(&[u.id, v.id, w.id]).await.unwrap();
    let refs = |gs: &[&Group]| -> Vec<GroupRef> {
        gs.iter()
            .map(|g| GroupRef {
                id: g.id,
                display_name: g.attributes.display_name.to_string(),
            })
            .collect()
    };
    assert_eq!(
        map[&u.id],
        refs(&[&g1, &g2]),
        "direct groups only, in creation order"
    );
    assert_eq!(map[&v.id], refs(&[&g1]));
    assert_eq!(map[&w.id], vec![]);
    assert!(store.groups_of_users(&[]).await.unwrap().is_empty());

    // A group that is a member is not listed as a user's group.
    let as_user = store
        .groups_of_users(&[UserId::from_uuid(g1.id.as_uuid())])
        .await
        .unwrap();
    assert_eq!(as_user[&UserId::from_uuid(g1.id.as_uuid())], vec![]);
}

async fn users_come_with_their_groups_in_one_call(cx: Ctx) {
    let store = &*cx.store;
    let [u, v] = <[User; 2]>::try_from(insert_users(store, &["u", "V"]).await).unwrap();
    let g1 = group("One");
    let g2 = group("Two");
    store
        .insert_group(&g1, &[m_user(&u), m_user(&v)])
        .await
        .unwrap();
    store.insert_group(&g2, &[m_user(&u)]).await.unwrap();
    let names = |pairs: &[(User, Vec<GroupRef>)]| -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(user, groups)| {
                (
                    user.attributes.user_name.to_string(),
                    groups.iter().map(|g| g.display_name.clone()).collect(),
                )
            })
            .collect()
    };
    let all = store
        .find_users_with_groups(&UserQuery::All {
            offset: 0,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(
        names(&all),
        vec![
            ("u".to_string(), vec!["One".to_string(), "Two".to_string()]),
            ("V".to_string(), vec!["One".to_string()]),
        ]
    );
    assert_eq!(all[0].0, u);
    assert_eq!(all[0].1[0].id, g1.id);
    let by_name = store
        .find_users_with_groups(&UserQuery::ByUserName("v".into()))
        .await
        .unwrap();
    assert_eq!(
        names(&by_name),
        vec![("V".to_string(), vec!["One".to_string()])]
    );
    let none = store
        .find_users_with_groups(&UserQuery::ByIds(vec![UserId::new_random()]))
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn existing_members_reports_kinds(cx: Ctx) {
    let store = &*cx.store;
    let u = insert_users(store, &["u"]).await.remove(0);
    let g = group("G");
    store.insert_group(&g, &[]).await.unwrap();
    let unknown = Uuid::new_v4();
    let found = store
        .existing_members(&[u.id.as_uuid(), g.id.as_uuid(), unknown])
        .await
        .unwrap();
    assert_eq!(
        found,
        HashMap::from([
            (u.id.as_uuid(), MemberKind::User),
            (g.id.as_uuid(), MemberKind::Group)
        ])
    );
    assert!(store.existing_members(&[]).await.unwrap().is_empty());
}

async fn unknown_members_are_not_stored(cx: Ctx) {
    let store = &*cx.store;
    let u = insert_users(store, &["u"]).await.remove(0);
    let g = group("G");
    let ghost = Member {
        id: Uuid::new_v4(),
        kind: MemberKind::User,
        display: None,
    };
    // The user's id claimed as a group: the wrong kind does not match.
    let wrong_kind = Member {
        id: u.id.as_uuid(),
        kind: MemberKind::Group,
        display: None,
    };
    store
        .insert_group(&g, &[ghost.clone(), wrong_kind, m_user(&u)])
        .await
        .unwrap();
    assert_eq!(members_of(store, &g).await, vec![u.id.as_uuid()]);
    let delta = MembershipChange::Delta {
        add: vec![ghost],
        remove: vec![],
    };
    store
        .update_group(&touched(&g, at(1)), Version(1), &delta)
        .await
        .unwrap();
    assert_eq!(members_of(store, &g).await, vec![u.id.as_uuid()]);
}

async fn delete_group_cascades(cx: Ctx) {
    let store = &*cx.store;
    let u = insert_users(store, &["u"]).await.remove(0);
    let child = group("Child");
    let parent = group("Parent");
    let bystander = group("Bystander");
    store.insert_group(&child, &[m_user(&u)]).await.unwrap();
    store
        .insert_group(&parent, &[m_group(&child), m_user(&u)])
        .await
        .unwrap();
    store.insert_group(&bystander, &[m_user(&u)]).await.unwrap();

    assert!(store.delete_group(child.id, at(30)).await.unwrap());
    assert!(!store.delete_group(child.id, at(31)).await.unwrap());
    assert_eq!(store.get_group(child.id).await.unwrap(), None);
    assert_eq!(store.group_members(child.id).await.unwrap(), vec![]);
    assert_eq!(members_of(store, &parent).await, vec![u.id.as_uuid()]);
    let stored_parent = store.get_group(parent.id).await.unwrap().unwrap();
    assert_eq!(stored_parent.meta.version, Version(2));
    assert_eq!(stored_parent.meta.last_modified, at(30));
    assert_eq!(
        store.get_group(bystander.id).await.unwrap(),
        Some(bystander.clone())
    );
    let groups: Vec<GroupId> = store.groups_of_users(&[u.id]).await.unwrap()[&u.id]
        .iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(groups, vec![parent.id, bystander.id]);
    assert_eq!(store.count_groups().await.unwrap(), 2);

    // The name is free again.
    store.insert_group(&group("child"), &[]).await.unwrap();
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

async fn paging_is_stable(cx: Ctx) {
    let store = &*cx.store;
    let names: Vec<String> = (0..25).map(|i| format!("user{i:02}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let users = insert_users(store, &name_refs).await;

    let mut paged = Vec::new();
    for offset in (0..30).step_by(10) {
        let page = store
            .find_users(&UserQuery::All {
                offset,
                limit: Some(10),
            })
            .await
            .unwrap();
        assert!(page.len() <= 10);
        paged.extend(page);
    }
    assert_eq!(paged, users);
    assert_eq!(
        store
            .find_users(&UserQuery::All {
                offset: 0,
                limit: None
            })
            .await
            .unwrap(),
        users
    );
    assert_eq!(
        store
            .find_users(&UserQuery::All {
                offset: 100,
                limit: Some(5)
            })
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .find_users(&UserQuery::All {
                offset: 24,
                limit: None
            })
            .await
            .unwrap(),
        vec![users[24].clone()]
    );

    // Updating or deleting never reorders the rest.
    let u3 = revise_user(&users[3], at(1), |a| a.nick_name = Some("three".into()));
    store.update_user(&u3, Version(1)).await.unwrap();
    store.delete_user(users[10].id, at(2)).await.unwrap();
    let mut expected = users.clone();
    expected[3] = u3;
    expected.remove(10);
    let after = store
        .find_users(&UserQuery::All {
            offset: 0,
            limit: Some(100),
        })
        .await
        .unwrap();
    assert_eq!(after, expected);

    let groups: Vec<Group> = (0..7).map(|i| group(&format!("group{i}"))).collect();
    for g in &groups {
        store.insert_group(g, &[]).await.unwrap();
    }
    let first = store
        .find_groups(&GroupQuery::All {
            offset: 0,
            limit: Some(4),
        })
        .await
        .unwrap();
    let rest = store
        .find_groups(&GroupQuery::All {
            offset: 4,
            limit: Some(4),
        })
        .await
        .unwrap();
    assert_eq!([first, rest].concat(), groups);
    assert_eq!(
        store
            .find_groups(&GroupQuery::All {
                offset: 0,
                limit: None
            })
            .await
            .unwrap(),
        groups
    );
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

async fn tokens_lifecycle(cx: Ctx) {
    let store = &*cx.store;
    let okta = token("okta", "secret-1");
    let mut feed = token("catalog", "secret-2");
    feed.scope = TokenScope::CatalogFeed;
    store.insert_token(&okta).await.unwrap();
    store.insert_token(&feed).await.unwrap();
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![okta.clone(), feed.clone()]
    );
    assert_eq!(
        store.find_token(&TokenHash::of("secret-1")).await.unwrap(),
        Some(okta.clone())
    );
    assert_eq!(
        store.find_token(&TokenHash::of("nope")).await.unwrap(),
        None
    );

    assert_conflict(
        store.insert_token(&token("okta", "secret-3")).await,
        UniqueField::TokenName,
    );

    let name = TokenName::parse("okta").unwrap();
    assert!(store.revoke_token(&name, at(10)).await.unwrap());
    assert!(!store.revoke_token(&name, at(11)).await.unwrap());
    assert!(!store
        .revoke_token(&TokenName::parse("unknown").unwrap(), at(11))
        .await
        .unwrap());
    let revoked = store.find_token(&okta.hash).await.unwrap().unwrap();
    assert_eq!(revoked.revoked, Some(at(10)));
    assert!(!revoked.is_active());

    // The name is free once the old token is revoked.
    let okta2 = token("okta", "secret-4");
    store.insert_token(&okta2).await.unwrap();
    let listed = store.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2], okta2);
    assert!(store.revoke_token(&name, at(12)).await.unwrap());
    assert!(store
        .find_token(&okta2.hash)
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_some());
}

// ---------------------------------------------------------------------------
// Migrations and durability
// ---------------------------------------------------------------------------

async fn database_too_new_is_refused(cx: Ctx) {
    // A second handle on a current database opens fine.
    cx.reopen().await.unwrap();
    let checksum = if cx.is_postgres() {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    cx.exec_raw(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, {checksum}, 0)"
    ))
    .await;
    match cx.reopen().await {
        Err(StoreError::DatabaseTooNew { found, known }) => {
            assert_eq!(found, 9999);
            let latest = *migration_shape("sqlite").0.last().unwrap();
            assert_eq!(known, latest);
        }
        Err(other) => panic!("expected DatabaseTooNew, got {other:?}"),
        Ok(_) => panic!("expected DatabaseTooNew, but the store opened"),
    }
}

async fn another_handle_sees_the_same_data(cx: Ctx) {
    // Like `roster token create` writing while the server runs.
    let store = &*cx.store;
    let u = insert_users(store, &["u"]).await.remove(0);
    let other = cx.reopen().await.unwrap();
    assert_eq!(other.get_user(u.id).await.unwrap(), Some(u.clone()));
    let t = token("cli", "cli-secret");
    other.insert_token(&t).await.unwrap();
    assert_eq!(store.find_token(&t.hash).await.unwrap(), Some(t.clone()));
    store
        .insert_token(&token("server", "server-secret"))
        .await
        .unwrap();
    assert_eq!(other.list_tokens().await.unwrap().len(), 2);
    drop(other);
    // And a restart keeps everything.
    let restarted = cx.reopen().await.unwrap();
    assert_eq!(restarted.get_user(u.id).await.unwrap(), Some(u));
    assert_eq!(restarted.list_tokens().await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// Concurrency and scale
// ---------------------------------------------------------------------------

async fn concurrent_inserts_all_land(cx: Ctx) {
    let users: Vec<User> = (0..200).map(|i| user(&format!("concurrent{i}"))).collect();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|u| {
            let store = cx.store.clone();
            tokio::spawn(async move { store.insert_user(&u).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(cx.store.count_users().await.unwrap(), 200);
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let found = cx.store.find_users(&UserQuery::ByIds(ids)).await.unwrap();
    assert_eq!(found.len(), 200);
    assert_eq!(
        cx.store
            .find_users(&UserQuery::All {
                offset: 0,
                limit: None
            })
            .await
            .unwrap()
            .len(),
        200
    );
}

async fn concurrent_updates_exactly_one_wins(cx: Ctx) {
    let base = user("contended");
    cx.store.insert_user(&base).await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = cx.store.clone();
            let next = revise_user(&base, at(1), |a| {
                a.display_name = Some(format!("writer {i}"))
            });
            tokio::spawn(async move { store.update_user(&next, Version(1)).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::VersionMismatch { current }) => assert_eq!(current, Version(2)),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let stored = cx.store.get_user(base.id).await.unwrap().unwrap();
    assert_eq!(stored.meta.version, Version(2));
}

async fn concurrent_conflicts_fail_alone(cx: Ctx) {
    // Conflicting and clean writes committed together: each conflict undoes
    // only itself.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = cx.store.clone();
        let clashing = user(if i % 2 == 0 { "Same-Name" } else { "same-name" });
        tasks.push((
            true,
            tokio::spawn(async move { store.insert_user(&clashing).await }),
        ));
        let store = cx.store.clone();
        let clean = user(&format!("clean{i}"));
        tasks.push((
            false,
            tokio::spawn(async move { store.insert_user(&clean).await }),
        ));
    }
    let mut clash_wins = 0;
    for (clashing, task) in tasks {
        match (clashing, task.await.unwrap()) {
            (true, Ok(())) => clash_wins += 1,
            (true, Err(StoreError::Conflict(UniqueField::UserName))) => {}
            (false, Ok(())) => {}
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(clash_wins, 1);
    assert_eq!(cx.store.count_users().await.unwrap(), 51);
}

async fn large_group(cx: Ctx) {
    const SIZE: usize = 10_000;
    let users: Vec<User> = (0..=SIZE).map(|i| user(&format!("member{i:05}"))).collect();
    // Insert in 16 concurrent streams.
    let chunks: Vec<Vec<User>> = users.chunks(SIZE / 16 + 1).map(<[User]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let store = cx.store.clone();
            tokio::spawn(async move {
                for u in chunk {
                    store.insert_user(&u).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let (extra, members) = users.split_last().unwrap();
    let store = &*cx.store;
    let g = group("Everyone");
    store.insert_group(&g, &[]).await.unwrap();
    let all: Vec<Member> = members.iter().map(m_user).collect();
    let g2 = touched(&g, at(1));
    store
        .update_group(&g2, Version(1), &MembershipChange::Replace(all.clone()))
        .await
        .unwrap();
    let stored = store.group_members(g.id).await.unwrap();
    assert_eq!(stored.len(), SIZE);
    assert_eq!(member_ids(&stored), member_ids(&all), "insertion order");
    assert_eq!(stored[17].display.as_deref(), Some("member00017"));

    let gone = members[1234].id.as_uuid();
    let g3 = touched(&g2, at(2));
    let delta = MembershipChange::Delta {
        add: vec![m_user(extra)],
        remove: vec![gone],
    };
    store.update_group(&g3, Version(2), &delta).await.unwrap();
    let stored = member_ids(&store.group_members(g.id).await.unwrap());
    assert_eq!(stored.len(), SIZE);
    assert!(!stored.contains(&gone));
    assert_eq!(stored.last(), Some(&extra.id.as_uuid()));

    let groups = store
        .groups_of_users(&[members[42].id, extra.id])
        .await
        .unwrap();
    assert_eq!(groups[&members[42].id].len(), 1);
    assert_eq!(groups[&extra.id].len(), 1);

    assert!(store.delete_user(members[0].id, at(3)).await.unwrap());
    assert_eq!(store.group_members(g.id).await.unwrap().len(), SIZE - 1);
    assert_eq!(version_of(store, &g).await, Version(4));

    assert!(store.delete_group(g.id, at(4)).await.unwrap());
    assert!(store.groups_of_users(&[extra.id]).await.unwrap()[&extra.id].is_empty());
}

// ---------------------------------------------------------------------------
// SQLite specifics
// ---------------------------------------------------------------------------

/// Another process (such as `roster token create`) holding the write lock
/// makes writes wait for it rather than fail, and reads go on meanwhile.
async fn sqlite_writes_wait_for_another_writer(cx: Ctx) {
    let Backend::Sqlite(path) = &cx.backend else {
        unreachable!("SQLite only");
    };
    let u = insert_users(&*cx.store, &["before"]).await.remove(0);
    let options = SqliteConnectOptions::new().filename(path);
    let mut other = SqliteConnection::connect_with(&options).await.unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let t = token("outside", "outside-secret");
    other
        .execute(
            sqlx::query(
                "INSERT INTO api_tokens (id, name, scope, hash_hex, created) \
                 VALUES (?1, 'outside', 'scim', ?2, 0)",
            )
            .bind(t.id.as_bytes().as_slice())
            .bind(t.hash.to_hex()),
        )
        .await
        .unwrap();

    let store = cx.store.clone();
    let blocked = tokio::spawn(async move { store.insert_user(&user("during")).await });
    // Reads are not blocked by the other writer.
    assert_eq!(cx.store.get_user(u.id).await.unwrap(), Some(u));
    assert_eq!(
        cx.store.find_token(&t.hash).await.unwrap(),
        None,
        "not committed yet"
    );
    tokio::task::yield_now().await;
    assert!(!blocked.is_finished(), "the write should wait for the lock");
    other.execute("COMMIT").await.unwrap();
    blocked.await.unwrap().unwrap();
    assert_eq!(cx.store.count_users().await.unwrap(), 2);
    assert_eq!(
        cx.store.find_token(&t.hash).await.unwrap().map(|t| t.id),
        Some(t.id)
    );
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_another_process() {
    run_sqlite(sqlite_writes_wait_for_another_writer).await;
}

/// Environment variable that turns [`crash_child_helper`] into the child
/// process of [`sqlite_acknowledged_writes_survive_sigkill`].
const CRASH_DB_VAR: &str = "ROSTER_STORE_CRASH_DB";

/// Writes survive a `SIGKILL` once acknowledged: a child process inserts
/// users from 16 tasks and prints each id when its insert returns; after 500
/// acknowledgements it is killed mid-stream, and every acknowledged user must
/// be in the database.
#[test]
fn sqlite_acknowledged_writes_survive_sigkill() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const ACKS: usize = 500;
    let dir = std::env::temp_dir().join(format!("roster-store-test-{}", Uuid::new_v4().simple()));
    let path = dir.join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DB_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(id) = line.unwrap().strip_prefix("acked ") {
            acked.push(id.parse::<UserId>().unwrap());
            if acked.len() == ACKS {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert_eq!(acked.len(), ACKS, "the child stopped before {ACKS} writes");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let found = store
            .find_users(&UserQuery::ByIds(acked.clone()))
            .await
            .unwrap();
        assert_eq!(found.len(), ACKS, "acknowledged users were lost");
        assert!(store.count_users().await.unwrap() >= ACKS as u64);
        let options = SqliteConnectOptions::new().filename(&path);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Not a test on its own: the child process of
/// [`sqlite_acknowledged_writes_survive_sigkill`]; returns at once otherwise.
#[test]
fn crash_child_helper() {
    let Some(path) = std::env::var_os(CRASH_DB_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(
            SqliteStore::open(std::path::Path::new(&path))
                .await
                .unwrap(),
        );
        for task in 0..16 {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let u = user(&format!("crash-{task}-{i}"));
                    store.insert_user(&u).await.unwrap();
                    println!("acked {}", u.id);
                }
            });
        }
        futures::future::pending::<()>().await;
    });
}

#[tokio::test]
async fn open_dispatches_on_the_url_scheme() {
    let dir = std::env::temp_dir().join(format!("roster-store-test-{}", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.join("via-url.db").display());
    let store = roster_store::open(&url).await.unwrap();
    store.insert_user(&user("via-url")).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(
        roster_store::open("mysql://localhost/roster").await,
        Err(StoreError::Backend(_))
    ));
}

// ---------------------------------------------------------------------------
// Backstage entity names and the catalog feed
// ---------------------------------------------------------------------------

fn claim(id: Uuid, name: &str) -> (Uuid, String) {
    (id, name.to_owned())
}

fn uid(user: &User) -> Uuid {
    user.id.as_uuid()
}

fn gid(group: &Group) -> Uuid {
    group.id.as_uuid()
}

async fn name_of(store: &dyn Store, kind: MemberKind, id: Uuid) -> Option<String> {
    store.entity_name(kind, id).await.unwrap()
}

async fn entity_names_are_claimed_once_and_never_change(cx: Ctx) {
    use MemberKind::{Group as G, User as U};
    let store = &*cx.store;
    let users = insert_users(store, &["jane@a.example", "bob", "carol", "dave", "erin"]).await;
    let [jane, bob, carol, dave, erin] = <[User; 5]>::try_from(users).unwrap();

    // Nobody has a name yet; the unnamed come oldest first, `limit` at a time.
    let unnamed = store.users_without_entity_name(3).await.unwrap();
    assert_eq!(unnamed, vec![jane.clone(), bob.clone(), carol.clone()]);
    assert!(store.entity_names(U).await.unwrap().is_empty());

    // Claims are stored lowercase.
    let got = store
        .claim_entity_names(U, &[claim(uid(&jane), "Jane"), claim(uid(&bob), "bob")])
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([jane.id.as_uuid(), bob.id.as_uuid()]));
    assert_eq!(name_of(store, U, uid(&jane)).await.as_deref(), Some("jane"));

    // A named resource keeps its name.
    let got = store
        .claim_entity_names(U, &[claim(uid(&jane), "someone-else")])
        .await
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(name_of(store, U, uid(&jane)).await.as_deref(), Some("jane"));

    // Names are unique case-insensitively; a refused claim changes nothing
    // and the rest of the batch goes through.
    let got = store
        .claim_entity_names(U, &[claim(uid(&carol), "JANE"), claim(uid(&dave), "dave")])
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([dave.id.as_uuid()]));
    assert_eq!(name_of(store, U, uid(&carol)).await, None);
    let got = store
        .claim_entity_names(U, &[claim(uid(&carol), "jane-2")])
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([carol.id.as_uuid()]));

    // Within one batch, the first claim per name and per id counts.
    let got = store
        .claim_entity_names(
            U,
            &[
                claim(uid(&erin), "x"),
                claim(uid(&erin), "y"),
                claim(uid(&jane), "x"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([erin.id.as_uuid()]));
    assert_eq!(name_of(store, U, uid(&erin)).await.as_deref(), Some("x"));

    // Unknown ids claim nothing.
    let got = store
        .claim_entity_names(U, &[claim(Uuid::new_v4(), "ghost")])
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(store.claim_entity_names(U, &[]).await.unwrap().is_empty());

    assert!(store
        .users_without_entity_name(10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.entity_names(U).await.unwrap(),
        HashSet::from(["jane", "bob", "jane-2", "dave", "x"].map(String::from))
    );

    // Renames, deactivation and any other write leave the name alone.
    let renamed = revise_user(&jane, at(1), |a| {
        a.user_name = UserName::parse("janet@b.example").unwrap();
        a.display_name = Some("Janet".into());
        a.emails = vec![MultiValue {
            value: Some("janet@b.example".into()),
            ..MultiValue::default()
        }];
        a.active = Some(false);
    });
    store.update_user(&renamed, Version(1)).await.unwrap();
    assert_eq!(name_of(store, U, uid(&jane)).await.as_deref(), Some("jane"));

    // Groups have names of their own: a group may share a user's name.
    let g = group("Jane's team");
    store.insert_group(&g, &[m_user(&bob)]).await.unwrap();
    assert_eq!(
        store.groups_without_entity_name(10).await.unwrap(),
        vec![g.clone()]
    );
    let got = store
        .claim_entity_names(G, &[claim(gid(&g), "jane")])
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([g.id.as_uuid()]));
    store
        .update_group(&renamed_group(&g), Version(1), &MembershipChange::Unchanged)
        .await
        .unwrap();
    assert_eq!(name_of(store, G, gid(&g)).await.as_deref(), Some("jane"));
    assert!(store
        .groups_without_entity_name(10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.entity_names(G).await.unwrap(),
        HashSet::from(["jane".to_owned()])
    );

    // A deleted resource frees its name.
    store.delete_user(jane.id, at(2)).await.unwrap();
    let newcomer = insert_users(store, &["jane@c.example"]).await.remove(0);
    let got = store
        .claim_entity_names(U, &[claim(uid(&newcomer), "jane")])
        .await
        .unwrap();
    assert_eq!(got, HashSet::from([newcomer.id.as_uuid()]));
    assert_eq!(name_of(store, U, uid(&jane)).await, None);

    // Names are durable and every handle sees them.
    let other = cx.reopen().await.unwrap();
    assert_eq!(name_of(&*other, U, uid(&bob)).await.as_deref(), Some("bob"));
    assert_eq!(name_of(&*other, G, gid(&g)).await.as_deref(), Some("jane"));
}

fn renamed_group(g: &Group) -> Group {
    renamed(g, at(1), "Janet's team")
}

async fn concurrent_claims_never_share_a_name(cx: Ctx) {
    // Several "replicas" (store handles) race to name the same users from
    // the same pool of names, in different orders.
    const USERS: usize = 30;
    let users = insert_users(
        &*cx.store,
        &(0..USERS)
            .map(|i| format!("racer{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let mut handles = vec![cx.store.clone()];
    for _ in 0..2 {
        handles.push(cx.reopen().await.unwrap());
    }
    let mut tasks = Vec::new();
    for worker in 0..6usize {
        let store = handles[worker % handles.len()].clone();
        let ids: Vec<Uuid> = users.iter().map(|u| u.id.as_uuid()).collect();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for round in 0..USERS {
                // Each worker proposes, per round, a batch of claims in its
                // own order: user i gets name (i + worker + round) % USERS.
                let claims: Vec<(Uuid, String)> = (0..USERS)
                    .map(|i| {
                        let j = (i * (worker + 1) + round) % USERS;
                        (ids[j], format!("name-{}", (j + worker + round) % USERS))
                    })
                    .collect();
                for chunk in claims.chunks(7) {
                    won.extend(
                        store
                            .claim_entity_names(MemberKind::User, chunk)
                            .await
                            .unwrap(),
                    );
                }
            }
            won
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    // Every user was named exactly once, and no two share a name.
    winners.sort();
    let distinct: BTreeSet<Uuid> = winners.iter().copied().collect();
    assert_eq!(winners.len(), distinct.len(), "a user was named twice");
    let names = cx.store.entity_names(MemberKind::User).await.unwrap();
    let mut named = 0;
    for u in &users {
        if name_of(&*cx.store, MemberKind::User, uid(u))
            .await
            .is_some()
        {
            named += 1;
        }
    }
    assert_eq!(named, names.len(), "two users share a name");
    assert_eq!(named, distinct.len());
}

async fn catalog_pages_walk_everything(cx: Ctx) {
    use MemberKind::{Group as G, User as U};
    let store = &*cx.store;
    let mut users = insert_users(store, &["u1", "u2", "u3", "u4", "u5", "u6"]).await;
    // u3 is inactive; u6 is deleted later (a hole in the walk).
    let inactive = revise_user(&users[2], at(1), |a| a.active = Some(false));
    store.update_user(&inactive, Version(1)).await.unwrap();
    users[2] = inactive;
    let [u1, u2, u3, u4, u5, u6] = <[User; 6]>::try_from(users.clone()).unwrap();
    store
        .claim_entity_names(
            U,
            &[
                claim(uid(&u1), "one"),
                claim(uid(&u2), "two"),
                claim(uid(&u3), "three"),
            ],
        )
        .await
        .unwrap();
    let g1 = group("g1");
    let g2 = group("g2");
    let g3 = group("g3");
    store
        .insert_group(&g1, &[m_user(&u3), m_user(&u1), m_user(&u4)])
        .await
        .unwrap();
    store
        .insert_group(&g2, &[m_user(&u1), m_group(&g1)])
        .await
        .unwrap();
    store
        .insert_group(&g3, &[m_group(&g1), m_group(&g2)])
        .await
        .unwrap();
    store
        .claim_entity_names(G, &[claim(gid(&g1), "g-one"), claim(gid(&g3), "g-three")])
        .await
        .unwrap();
    store.delete_user(u6.id, at(2)).await.unwrap();

    // Users, two at a time.
    let mut pages = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.catalog_users(after, 2).await.unwrap();
        pages.push(page.items.clone());
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let walked: Vec<(UserId, Option<String>, BTreeSet<GroupId>, bool)> = pages
        .iter()
        .flatten()
        .map(|c| {
            (
                c.user.id,
                c.entity_name.clone(),
                c.groups.iter().copied().collect(),
                c.user.attributes.is_active(),
            )
        })
        .collect();
    let set = |ids: &[GroupId]| ids.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(
        walked,
        vec![
            (u1.id, Some("one".into()), set(&[g1.id, g2.id]), true),
            (u2.id, Some("two".into()), set(&[]), true),
            (u3.id, Some("three".into()), set(&[g1.id]), false),
            (u4.id, None, set(&[g1.id]), true),
            (u5.id, None, set(&[]), true),
        ]
    );
    assert_eq!(pages.len(), 3, "pages of 2, 2 and 1");
    assert_eq!(pages[0][0].user, u1, "whole user records");

    // Groups, one at a time, with their user members in order.
    let mut walked = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.catalog_groups(after, 1).await.unwrap();
        assert!(page.items.len() <= 1);
        walked.extend(page.items);
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let member = |u: &User, name: Option<&str>, active: bool| CatalogMember {
        id: u.id,
        entity_name: name.map(str::to_owned),
        active,
    };
    assert_eq!(walked.len(), 3);
    assert_eq!(walked[0].group.id, g1.id);
    assert_eq!(walked[0].entity_name.as_deref(), Some("g-one"));
    assert_eq!(
        walked[0].members,
        vec![
            member(&u3, Some("three"), false),
            member(&u1, Some("one"), true),
            member(&u4, None, true),
        ]
    );
    assert_eq!(walked[1].group.id, g2.id);
    assert_eq!(walked[1].entity_name, None);
    assert_eq!(walked[1].members, vec![member(&u1, Some("one"), true)]);
    assert_eq!(walked[2].members, vec![]);
    // A big page is one page.
    let all = store.catalog_groups(Position::START, 100).await.unwrap();
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.next, None);
    assert_eq!(all.items, walked);

    // The group graph: every group, and which contains which.
    let graph = store.group_graph().await.unwrap();
    assert_eq!(
        graph.groups,
        vec![
            (g1.id, Some("g-one".to_owned())),
            (g2.id, None),
            (g3.id, Some("g-three".to_owned())),
        ]
    );
    assert_eq!(
        graph.edges,
        vec![(g2.id, g1.id), (g3.id, g1.id), (g3.id, g2.id)]
    );

    // An empty directory walks to nothing.
    let empty = store.catalog_users(after, 0).await.unwrap();
    assert_eq!(empty.items, vec![]);
    assert_eq!(empty.next, None);
}

async fn fingerprint_changes_with_every_directory_change(cx: Ctx) {
    let store = &*cx.store;
    let mut seen: Vec<(String, DirectoryFingerprint)> = Vec::new();
    let mut step = |what: &str, fingerprint: DirectoryFingerprint| {
        if let Some((before, _)) = seen.iter().find(|(_, f)| *f == fingerprint) {
            panic!("the fingerprint after {what:?} equals the one after {before:?}");
        }
        seen.push((what.to_owned(), fingerprint));
    };
    let fp = || async { store.directory_fingerprint().await.unwrap() };

    step("empty", fp().await);
    let a = user("a");
    store.insert_user(&a).await.unwrap();
    step("create user", fp().await);
    let a2 = revise_user(&a, at(1), |x| x.display_name = Some("A".into()));
    store.update_user(&a2, Version(1)).await.unwrap();
    step("update user", fp().await);
    let b = user("b");
    store.insert_user(&b).await.unwrap();
    step("create another user", fp().await);
    let g = group("g");
    store.insert_group(&g, &[m_user(&a)]).await.unwrap();
    step("create group", fp().await);
    let g2 = touched(&g, at(2));
    store
        .update_group(
            &g2,
            Version(1),
            &MembershipChange::Delta {
                add: vec![m_user(&b)],
                remove: vec![],
            },
        )
        .await
        .unwrap();
    step("add member", fp().await);
    let g3 = touched(&g2, at(3));
    store
        .update_group(
            &g3,
            Version(2),
            &MembershipChange::Delta {
                add: vec![],
                remove: vec![b.id.as_uuid()],
            },
        )
        .await
        .unwrap();
    step("remove member", fp().await);
    let h = group("h");
    store.insert_group(&h, &[m_group(&g)]).await.unwrap();
    step("nest group", fp().await);
    store.delete_user(a.id, at(4)).await.unwrap();
    step("delete member user", fp().await);
    store.delete_group(g.id, at(5)).await.unwrap();
    step("delete nested group", fp().await);
    store.delete_user(b.id, at(6)).await.unwrap();
    step("delete unattached user", fp().await);
    // Delete the newest user and create another in the same millisecond
    // (SQLite may reuse the row id): still a change.
    let c = user("c");
    store.insert_user(&c).await.unwrap();
    step("create c", fp().await);
    store.delete_user(c.id, t0()).await.unwrap();
    let d = user("d");
    store.insert_user(&d).await.unwrap();
    step("replace c by d", fp().await);

    // Nothing the feed shows changed: the same fingerprint.
    let same = fp().await;
    assert_eq!(same, seen.last().unwrap().1);
    store
        .claim_entity_names(MemberKind::User, &[claim(uid(&d), "d")])
        .await
        .unwrap();
    store.insert_token(&token("t", "secret")).await.unwrap();
    assert_eq!(
        fp().await,
        same,
        "names and tokens are not directory changes"
    );
    let other = cx.reopen().await.unwrap();
    assert_eq!(other.directory_fingerprint().await.unwrap(), same);
}

/// Waits until `store` trusts its directory generation (on PostgreSQL,
/// once it listens for the other replicas' writes).
async fn followed_generation(store: &dyn Store) -> u64 {
    let changes = store.directory_changes();
    for _ in 0..500 {
        if let Some(generation) = changes.generation() {
            return generation;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the directory generation was never followed");
}

async fn directory_generation_moves_before_every_write_returns(cx: Ctx) {
    let store = &*cx.store;
    let changes = store.directory_changes();
    let mut last = followed_generation(store).await;
    let mut moved = |what: &str| {
        let now = changes
            .generation()
            .unwrap_or_else(|| panic!("not followed after {what}"));
        assert_ne!(now, last, "the generation did not move for {what}");
        last = now;
    };
    let a = user("a");
    store.insert_user(&a).await.unwrap();
    moved("create user");
    let a2 = revise_user(&a, at(1), |x| x.active = Some(false));
    store.update_user(&a2, Version(1)).await.unwrap();
    moved("deactivate user");
    let g = group("g");
    store.insert_group(&g, &[m_user(&a)]).await.unwrap();
    moved("create group");
    store
        .update_group(
            &touched(&g, at(2)),
            Version(1),
            &MembershipChange::Delta {
                add: vec![],
                remove: vec![a.id.as_uuid()],
            },
        )
        .await
        .unwrap();
    moved("remove member");
    store
        .claim_entity_names(MemberKind::User, &[claim(uid(&a), "a")])
        .await
        .unwrap();
    moved("name user");
    store.delete_group(g.id, at(3)).await.unwrap();
    moved("delete group");
    store.delete_user(a.id, at(4)).await.unwrap();
    moved("delete user");
}

/// On PostgreSQL every replica follows the others' writes; on SQLite one
/// process writes, so there is nothing to follow.
async fn other_replicas_see_the_generation_move(cx: Ctx) {
    if !cx.is_postgres() {
        return;
    }
    let other = cx.reopen().await.unwrap();
    let before = followed_generation(&*other).await;
    let a = user("a");
    cx.store.insert_user(&a).await.unwrap();
    let changes = other.directory_changes();
    for _ in 0..500 {
        if changes.generation().is_some_and(|now| now != before) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("another replica's write never moved this replica's generation");
}

/// When the notification channel drops, the generation the replica held
/// must not be trusted again: it is either unknown or moved on once the
/// replica listens again, and later writes elsewhere still reach it.
async fn a_lost_notification_channel_moves_the_generation_and_recovers(cx: Ctx) {
    if !cx.is_postgres() {
        return;
    }
    let before = followed_generation(&*cx.store).await;
    cx.exec_raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .await;
    let changes = cx.store.directory_changes();
    let mut relistened = None;
    for _ in 0..500 {
        match changes.generation() {
            Some(now) if now != before => {
                relistened = Some(now);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let relistened = relistened.expect("the generation never moved after the channel dropped");
    let other = cx.reopen().await.unwrap();
    other.insert_user(&user("after")).await.unwrap();
    for _ in 0..500 {
        if changes.generation().is_some_and(|now| now != relistened) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("after listening again, another replica's write never arrived");
}

// ---------------------------------------------------------------------------
// Ownership handovers and reconcile fixes
// ---------------------------------------------------------------------------

fn handover(
    user: &User,
    successor: &str,
    reason: HandoverReason,
    when: OffsetDateTime,
) -> Handover {
    Handover {
        user_id: user.id,
        user_name: user.user_name().as_str().to_owned(),
        entity_name: Some(user.user_name().as_str().to_lowercase()),
        successor: successor.to_owned(),
        successor_id: Some(Uuid::new_v4()),
        reason,
        recorded_at: when,
        recorded_by: "scim".to_owned(),
    }
}

async fn handovers_outlive_the_user_and_manual_ones_stick(cx: Ctx) {
    let store = &*cx.store;
    let users = insert_users(store, &["jane", "bob"]).await;
    let (jane, bob) = (&users[0], &users[1]);
    assert_eq!(store.get_handover(jane.id).await.unwrap(), None);
    assert!(store.list_handovers().await.unwrap().is_empty());

    // Automatic, then deleted user: the row stays, exactly as written.
    let auto = handover(jane, "user:default/boss", HandoverReason::Manager, at(1));
    assert!(store.save_handover(&auto).await.unwrap());
    assert!(store.delete_user(jane.id, at(2)).await.unwrap());
    assert_eq!(
        store.get_handover(jane.id).await.unwrap(),
        Some(auto.clone())
    );

    // A later automatic choice replaces an automatic one.
    let later = Handover {
        successor: "group:default/payments".to_owned(),
        successor_id: None,
        reason: HandoverReason::PrimaryGroup,
        entity_name: None,
        ..handover(jane, "", HandoverReason::PrimaryGroup, at(3))
    };
    assert!(store.save_handover(&later).await.unwrap());
    assert_eq!(store.get_handover(jane.id).await.unwrap(), Some(later));

    // A manual one replaces it, and no automatic one replaces the manual.
    let mut manual = handover(jane, "user:default/ops.lead", HandoverReason::Manual, at(4));
    manual.recorded_by = "ops".to_owned();
    manual.successor_id = None;
    assert!(store.save_handover(&manual).await.unwrap());
    let again = handover(
        jane,
        "group:default/fallback",
        HandoverReason::Fallback,
        at(5),
    );
    assert!(!store.save_handover(&again).await.unwrap());
    assert_eq!(
        store.get_handover(jane.id).await.unwrap(),
        Some(manual.clone())
    );
    // A newer manual one does.
    let manual2 = Handover {
        successor: "group:default/platform".to_owned(),
        ..manual.clone()
    };
    assert!(store.save_handover(&manual2).await.unwrap());
    assert_eq!(
        store.get_handover(jane.id).await.unwrap(),
        Some(manual2.clone())
    );

    // Listing: newest first.
    let bobs = handover(bob, "fallback:x", HandoverReason::Fallback, at(10));
    assert!(store.save_handover(&bobs).await.unwrap());
    let listed = store.list_handovers().await.unwrap();
    assert_eq!(listed, vec![bobs.clone(), manual2]);

    // Another handle sees the same; deleting is per user.
    let other = cx.reopen().await.unwrap();
    assert_eq!(other.list_handovers().await.unwrap().len(), 2);
    assert!(store.delete_handover(jane.id).await.unwrap());
    assert!(!store.delete_handover(jane.id).await.unwrap());
    assert_eq!(store.get_handover(jane.id).await.unwrap(), None);
    assert_eq!(store.list_handovers().await.unwrap(), vec![bobs]);
}

fn fix(n: usize, outcome: &str, error: Option<&str>) -> ReconcileFix {
    ReconcileFix {
        applied_at: at(i64::try_from(n).unwrap()),
        actor: if n.is_multiple_of(2) { "cli" } else { "ops" }.to_owned(),
        finding: "ghost-user".to_owned(),
        entity_ref: Some(format!("user:default/ghost{n}")),
        uid: (!n.is_multiple_of(3)).then(|| format!("uid-{n}")),
        action: "delete-entity".to_owned(),
        outcome: outcome.to_owned(),
        error: error.map(str::to_owned),
    }
}

async fn reconcile_fixes_are_appended_and_listed_newest_first(cx: Ctx) {
    let store = &*cx.store;
    assert!(store.list_reconcile_fixes(10).await.unwrap().is_empty());
    store.record_reconcile_fixes(&[]).await.unwrap();
    let first = vec![fix(1, "deleted", None), fix(2, "failed", Some("HTTP 500"))];
    store.record_reconcile_fixes(&first).await.unwrap();
    let second = vec![
        fix(3, "already-gone", None),
        fix(4, "refreshed", None),
        fix(5, "not-attempted", Some("stopped")),
    ];
    store.record_reconcile_fixes(&second).await.unwrap();

    let all = store.list_reconcile_fixes(100).await.unwrap();
    let expected: Vec<ReconcileFix> = first.iter().chain(&second).rev().cloned().collect();
    assert_eq!(all, expected);
    assert_eq!(
        store.list_reconcile_fixes(2).await.unwrap(),
        expected[..2].to_vec()
    );
    assert!(all[1].ok() && !all[0].ok() && !all[3].ok());
    assert_eq!(
        cx.reopen()
            .await
            .unwrap()
            .list_reconcile_fixes(1)
            .await
            .unwrap(),
        expected[..1].to_vec()
    );
}

// ---------------------------------------------------------------------------
// Migration folders
// ---------------------------------------------------------------------------

/// `(version, tables, indexes)` each migration folder defines.
fn migration_shape(flavour: &str) -> (BTreeSet<i64>, BTreeSet<String>, BTreeSet<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(flavour);
    let mut versions = BTreeSet::new();
    let mut tables = BTreeSet::new();
    let mut indexes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let (version, _) = stem
            .split_once('_')
            .expect("migrations are named NNNN_description.sql");
        assert!(
            versions.insert(version.parse::<i64>().unwrap()),
            "{flavour}: duplicate {file}"
        );
        let sql = std::fs::read_to_string(&path).unwrap().to_lowercase();
        let code: String = sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<&str> = code
            .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for (i, window) in words.windows(2).enumerate() {
            let name_after = |skip: usize| {
                let mut rest = words[i + skip..].iter();
                let mut name = *rest.next().unwrap();
                if name == "if" {
                    name = rest.nth(2).unwrap(); // if not exists <name>
                }
                name.to_owned()
            };
            match window {
                ["create", "table"] => {
                    tables.insert(name_after(2));
                }
                ["create", "index"] => {
                    indexes.insert(name_after(2));
                }
                ["unique", "index"] if i > 0 && words[i - 1] == "create" => {
                    indexes.insert(name_after(2));
                }
                _ => {}
            }
        }
    }
    (versions, tables, indexes)
}

#[test]
fn migration_folders_define_the_same_versions_tables_and_indexes() {
    let sqlite = migration_shape("sqlite");
    let postgres = migration_shape("postgres");
    assert!(!sqlite.0.is_empty(), "no SQLite migrations found");
    assert_eq!(sqlite.0, postgres.0, "migration versions differ");
    assert_eq!(sqlite.1, postgres.1, "tables differ");
    assert_eq!(sqlite.2, postgres.2, "indexes differ");
    for table in [
        "users",
        "groups",
        "group_members",
        "api_tokens",
        "handovers",
        "reconcile_fixes",
        "access_roles",
        "access_assignments",
        "access_changes",
        "access_revision",
    ] {
        assert!(sqlite.1.contains(table), "{table} missing: {:?}", sqlite.1);
    }
}

// ---------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run_sqlite(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run_postgres(crate::$name).await;
                }
            )*
        }
    };
}

store_tests!(
    users_round_trip,
    user_names_are_unique_case_insensitively,
    update_user_checks_the_version,
    timestamps_round_trip_to_the_millisecond,
    delete_user_removes_memberships_and_bumps_groups,
    groups_round_trip_and_names_are_unique,
    update_group_checks_the_version,
    membership_delta_and_replace,
    members_show_current_display,
    groups_of_users_lists_direct_groups,
    users_come_with_their_groups_in_one_call,
    existing_members_reports_kinds,
    unknown_members_are_not_stored,
    delete_group_cascades,
    paging_is_stable,
    tokens_lifecycle,
    database_too_new_is_refused,
    another_handle_sees_the_same_data,
    concurrent_inserts_all_land,
    concurrent_updates_exactly_one_wins,
    concurrent_conflicts_fail_alone,
    large_group,
    entity_names_are_claimed_once_and_never_change,
    concurrent_claims_never_share_a_name,
    catalog_pages_walk_everything,
    directory_generation_moves_before_every_write_returns,
    other_replicas_see_the_generation_move,
    a_lost_notification_channel_moves_the_generation_and_recovers,
    fingerprint_changes_with_every_directory_change,
    handovers_outlive_the_user_and_manual_ones_stick,
    reconcile_fixes_are_appended_and_listed_newest_first,
    access_policy_round_trips_under_a_revision_guard,
    concurrent_policy_writes_apply_one_at_a_time,
    access_subject_resolves_nested_groups_like_the_reference,
);
