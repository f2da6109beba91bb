//! The shared store: PostgreSQL, for several Roster replicas.
//!
//! Each method is one transaction (a single statement where one suffices).
//! Nothing is kept in memory between calls, so replicas sharing the database
//! always agree. Optimistic concurrency uses `UPDATE ... WHERE version = $n`;
//! row locks taken by PostgreSQL serialise competing writers.
//!
//! Memberships name a user or a group, so they cannot have a foreign key on
//! the member. Instead, adding a member takes `FOR KEY SHARE` on the member's
//! row (what a foreign key check does), and deleting a resource deletes its
//! row before its memberships: a concurrent delete waits for the add to
//! commit and then removes the new membership too. Transactions that meet a
//! deadlock or serialization failure are retried a few times.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roster_domain::{
    ApiToken, Group, GroupId, Member, MemberKind, TokenHash, TokenName, User, UserId, UserName,
    Version,
};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgConnectOptions, PgConnection, PgHasArrayType, PgListener, PgPool,
    PgPoolOptions, PgRow, PgTypeInfo, PgValueFormat, PgValueRef, Postgres,
};
use sqlx::{Decode, Encode, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

mod access;

use crate::handovers::{
    handover_from_parts, FixRow, HandoverRow, FIX_COLUMNS, HANDOVER_COLUMNS, HANDOVER_UPSERT_TAIL,
};
use crate::rows::{
    self, fold_display_name, group_from_parts, kind_from_db, kind_to_db, map_sqlx,
    token_from_parts, user_from_parts, GroupRow, TokenRow, UserRow, KIND_GROUP, KIND_USER,
};
use crate::{
    distinct_claims, page_of, CatalogGroup, CatalogMember, CatalogPage, CatalogUser,
    DirectoryChanges, DirectoryFingerprint, GroupGraph, GroupQuery, GroupRef, Handover,
    MembershipChange, Position, ReconcileFix, Store, StoreError, StoreResult, UserQuery,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 16;

/// How often a transaction that lost a deadlock or serialization race is
/// tried again before the failure is reported.
const RETRIES: u32 = 3;

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    changes: DirectoryChanges,
    /// Stops following the other replicas' writes when the last handle goes.
    _follower: Arc<AbortOnDrop>,
}

/// The channel the directory tables' triggers notify (migration 0005).
const DIRECTORY_CHANNEL: &str = "roster_directory";

/// How long to wait before listening again after the channel went down.
const RELISTEN_DELAY: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host/db`) and runs
    /// pending migrations. Fails with [`StoreError::DatabaseTooNew`] if a
    /// newer Roster has migrated it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| StoreError::Backend(format!("invalid PostgreSQL URL: {err}")))?;
        Self::connect_with(options).await
    }

    /// [`PostgresStore::connect`] with options built by the caller.
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|err| StoreError::Backend(format!("cannot connect to PostgreSQL: {err}")))?;
        migrate(&pool).await?;
        let changes = DirectoryChanges::unfollowed();
        let follower = tokio::spawn(follow_directory_changes(pool.clone(), changes.clone()));
        Ok(Self {
            pool,
            changes,
            _follower: Arc::new(AbortOnDrop(follower.abort_handle())),
        })
    }

    /// Moves the directory generation after a write of this replica, before
    /// the caller hears back (the notification from the trigger comes
    /// later, asynchronously). Moved on failure too: a transaction whose
    /// commit failed may still have committed.
    fn written<T>(&self, result: T) -> T {
        self.changes.bump();
        result
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Follows the other replicas' directory writes for as long as the store
/// lives: every notification moves the generation; while the channel is
/// down the generation is not trusted (see [`DirectoryChanges`]).
async fn follow_directory_changes(pool: PgPool, changes: DirectoryChanges) {
    loop {
        match listen(&pool).await {
            Ok(mut listener) => {
                changes.set_followed(true);
                // `None` or an error: the connection went down. Listen again
                // on a new one rather than let sqlx reconnect behind our back.
                while let Ok(Some(_)) = listener.try_recv().await {
                    changes.bump();
                }
                changes.set_followed(false);
                tracing::warn!("lost PostgreSQL directory notifications; listening again");
            }
            Err(err) => {
                changes.set_followed(false);
                tracing::warn!(error = %err, "cannot listen for PostgreSQL directory notifications");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(DIRECTORY_CHANNEL).await?;
    Ok(listener)
}

/// Runs pending migrations, first refusing a database from a newer Roster.
/// sqlx's migrator holds an advisory lock, so replicas starting together
/// apply each migration once.
async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(StoreError::backend)?;
    if has_table {
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await
            .map_err(StoreError::backend)?;
        rows::check_not_too_new(&MIGRATOR, applied)?;
    }
    MIGRATOR.run(pool).await.map_err(rows::migrate_error)
}

/// A UUID as PostgreSQL's `uuid` type (sqlx's own mapping needs a feature
/// this workspace does not enable).
#[derive(Debug, Clone, Copy)]
struct PgUuid(Uuid);

const UUID_OID: Oid = Oid(2950);
const UUID_ARRAY_OID: Oid = Oid(2951);

impl Type<Postgres> for PgUuid {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_OID)
    }
}

impl PgHasArrayType for PgUuid {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(UUID_ARRAY_OID)
    }
}

impl Encode<'_, Postgres> for PgUuid {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for PgUuid {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let uuid = match value.format() {
            PgValueFormat::Binary => Uuid::from_slice(value.as_bytes()?)?,
            PgValueFormat::Text => Uuid::parse_str(value.as_str()?)?,
        };
        Ok(PgUuid(uuid))
    }
}

fn uuids(ids: impl IntoIterator<Item = Uuid>) -> Vec<PgUuid> {
    ids.into_iter().map(PgUuid).collect()
}

/// A failed transaction attempt: either final, or worth another try.
enum Failure {
    Final(StoreError),
    Retry(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        let code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned());
        match code.as_deref() {
            // serialization_failure, deadlock_detected
            Some("40001" | "40P01") => Failure::Retry(err),
            _ => Failure::Final(map_sqlx(err)),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Final(err)
    }
}

/// Runs a transaction attempt (an expression producing a future of
/// `Result<T, Failure>`) until it succeeds, fails for good or runs out of
/// retries.
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut tries = 0;
        loop {
            match $attempt.await {
                Ok(value) => break Ok(value),
                Err(Failure::Final(err)) => break Err(err),
                Err(Failure::Retry(err)) => {
                    tries += 1;
                    if tries > RETRIES {
                        break Err(StoreError::backend(err));
                    }
                    tracing::debug!(error = %err, tries, "retrying a PostgreSQL transaction");
                }
            }
        }
    }};
}

fn get<'r, T>(row: &'r PgRow, index: usize) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(index).map_err(StoreError::backend)
}

fn user_from_row(row: &PgRow) -> StoreResult<User> {
    let id: PgUuid = get(row, 0)?;
    let doc: &str = get(row, 4)?;
    user_from_parts(id.0, get(row, 1)?, get(row, 2)?, get(row, 3)?, doc)
}

fn group_from_row(row: &PgRow) -> StoreResult<Group> {
    let id: PgUuid = get(row, 0)?;
    let doc: &str = get(row, 4)?;
    group_from_parts(id.0, get(row, 1)?, get(row, 2)?, get(row, 3)?, doc)
}

fn token_from_row(row: &PgRow) -> StoreResult<ApiToken> {
    let id: PgUuid = get(row, 0)?;
    let name: &str = get(row, 1)?;
    let scope: &str = get(row, 2)?;
    let hash: &str = get(row, 3)?;
    token_from_parts(id.0, name, scope, hash, get(row, 4)?, get(row, 5)?)
}

/// A member from `(member_id, member_kind, display)` at `offset`.
fn member_from_row(row: &PgRow, offset: usize) -> StoreResult<Member> {
    let id: PgUuid = get(row, offset)?;
    let kind: i16 = get(row, offset + 1)?;
    Ok(Member {
        id: id.0,
        kind: kind_from_db(i64::from(kind))?,
        display: get(row, offset + 2)?,
    })
}

const USERS_SELECT: &str = "SELECT id, version, created, last_modified, doc FROM users";
const GROUPS_SELECT: &str = "SELECT id, version, created, last_modified, doc FROM groups";
const TOKENS_SELECT: &str = "SELECT id, name, scope, hash_hex, created, revoked FROM api_tokens";

/// Members with their current display text, in insertion order.
const MEMBERS_SELECT: &str = "SELECT gm.group_id, gm.member_id, gm.member_kind, \
     COALESCE(u.display, g.display) \
     FROM group_members gm \
     LEFT JOIN users u ON gm.member_kind = 0 AND u.id = gm.member_id \
     LEFT JOIN groups g ON gm.member_kind = 1 AND g.id = gm.member_id";

fn page(offset: u64, limit: Option<u64>) -> (Option<i64>, i64) {
    // LIMIT NULL means no limit.
    (
        limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        i64::try_from(offset).unwrap_or(i64::MAX),
    )
}

/// Why a versioned `UPDATE` matched no row.
fn not_updated(current: Option<i64>) -> StoreResult<StoreError> {
    Ok(match current {
        None => StoreError::NotFound,
        Some(version) => StoreError::VersionMismatch {
            current: rows::version_from_db(version)?,
        },
    })
}

/// Which of `members` exist with the stated kind, locking each existing one
/// (`FOR KEY SHARE`) until the transaction ends so it cannot be deleted
/// before the membership commits.
async fn lock_members(conn: &mut PgConnection, members: &[Member]) -> Result<Vec<Member>, Failure> {
    let mut present: HashSet<(Uuid, MemberKind)> = HashSet::new();
    for (kind, sql) in [
        (
            MemberKind::User,
            "SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
        ),
        (
            MemberKind::Group,
            "SELECT id FROM groups WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
        ),
    ] {
        let ids = uuids(members.iter().filter(|m| m.kind == kind).map(|m| m.id));
        if ids.is_empty() {
            continue;
        }
        let found: Vec<PgUuid> = sqlx::query_scalar(sql)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
        present.extend(found.into_iter().map(|id| (id.0, kind)));
    }
    Ok(members
        .iter()
        .filter(|m| present.contains(&(m.id, m.kind)))
        .cloned()
        .collect())
}

/// Adds `members` (already checked by [`lock_members`]) in list order;
/// members already present stay where they are.
async fn add_members(
    conn: &mut PgConnection,
    group: Uuid,
    members: &[Member],
) -> Result<(), Failure> {
    if members.is_empty() {
        return Ok(());
    }
    let ids = uuids(members.iter().map(|m| m.id));
    let kinds: Vec<i16> = members.iter().map(|m| kind_to_db(m.kind)).collect();
    sqlx::query(
        "INSERT INTO group_members (group_id, member_id, member_kind) \
         SELECT $1, t.m, t.k FROM UNNEST($2::uuid[], $3::int2[]) WITH ORDINALITY AS t(m, k, ord) \
         ORDER BY t.ord \
         ON CONFLICT DO NOTHING",
    )
    .bind(PgUuid(group))
    .bind(ids)
    .bind(kinds)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes `member` from every group it is in, bumping each such group's
/// version and `lastModified`. Call after deleting the member's own row.
async fn leave_all_groups(conn: &mut PgConnection, member: Uuid, now: i64) -> Result<(), Failure> {
    sqlx::query(
        "WITH gone AS (DELETE FROM group_members WHERE member_id = $1 RETURNING group_id) \
         UPDATE groups SET version = version + 1, last_modified = $2 \
         WHERE id IN (SELECT group_id FROM gone)",
    )
    .bind(PgUuid(member))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PostgresStore {
    async fn try_insert_user(&self, row: &UserRow) -> Result<(), Failure> {
        sqlx::query(
            "INSERT INTO users \
             (id, user_name_folded, external_id, display, active, version, created, last_modified, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(PgUuid(row.id))
        .bind(&row.user_name_folded)
        .bind(&row.external_id)
        .bind(&row.display)
        .bind(row.active)
        .bind(row.version)
        .bind(row.created)
        .bind(row.last_modified)
        .bind(&row.doc)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn try_update_user(&self, row: &UserRow, expected: i64) -> Result<(), Failure> {
        let done = sqlx::query(
            "UPDATE users SET user_name_folded = $2, external_id = $3, display = $4, \
             active = $5, version = $6, last_modified = $7, doc = $8 \
             WHERE id = $1 AND version = $9",
        )
        .bind(PgUuid(row.id))
        .bind(&row.user_name_folded)
        .bind(&row.external_id)
        .bind(&row.display)
        .bind(row.active)
        .bind(row.version)
        .bind(row.last_modified)
        .bind(&row.doc)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        // A fresh statement (so a fresh snapshot) explains the miss.
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
            .bind(PgUuid(row.id))
            .fetch_optional(&self.pool)
            .await?;
        Err(Failure::Final(not_updated(current)?))
    }

    async fn try_delete_user(&self, id: Uuid, now: i64) -> Result<bool, Failure> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(PgUuid(id))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        leave_all_groups(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn try_insert_group(&self, row: &GroupRow, members: &[Member]) -> Result<(), Failure> {
        let mut tx = self.pool.begin().await?;
        let members = lock_members(&mut tx, members).await?;
        sqlx::query(
            "INSERT INTO groups \
             (id, display_name_folded, external_id, display, version, created, last_modified, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(PgUuid(row.id))
        .bind(&row.display_name_folded)
        .bind(&row.external_id)
        .bind(&row.display)
        .bind(row.version)
        .bind(row.created)
        .bind(row.last_modified)
        .bind(&row.doc)
        .execute(&mut *tx)
        .await?;
        add_members(&mut tx, row.id, &members).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn try_update_group(
        &self,
        row: &GroupRow,
        expected: i64,
        change: &MembershipChange,
    ) -> Result<(), Failure> {
        let mut tx = self.pool.begin().await?;
        // Lock the members being added before the group row, the order
        // deletes take them in (member row, then the groups it leaves).
        let added = match change {
            MembershipChange::Unchanged => Vec::new(),
            MembershipChange::Delta { add, .. } => lock_members(&mut tx, add).await?,
            MembershipChange::Replace(all) => lock_members(&mut tx, all).await?,
        };
        let done = sqlx::query(
            "UPDATE groups SET display_name_folded = $2, external_id = $3, display = $4, \
             version = $5, last_modified = $6, doc = $7 WHERE id = $1 AND version = $8",
        )
        .bind(PgUuid(row.id))
        .bind(&row.display_name_folded)
        .bind(&row.external_id)
        .bind(&row.display)
        .bind(row.version)
        .bind(row.last_modified)
        .bind(&row.doc)
        .bind(expected)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Under READ COMMITTED this statement sees the latest commit.
            let current: Option<i64> =
                sqlx::query_scalar("SELECT version FROM groups WHERE id = $1")
                    .bind(PgUuid(row.id))
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(Failure::Final(not_updated(current)?));
        }
        match change {
            MembershipChange::Unchanged => {}
            MembershipChange::Delta { remove, .. } => {
                // Removals first, so "remove X, add X" leaves X a member.
                if !remove.is_empty() {
                    sqlx::query(
                        "DELETE FROM group_members WHERE group_id = $1 AND member_id = ANY($2)",
                    )
                    .bind(PgUuid(row.id))
                    .bind(uuids(remove.iter().copied()))
                    .execute(&mut *tx)
                    .await?;
                }
                add_members(&mut tx, row.id, &added).await?;
            }
            MembershipChange::Replace(_) => {
                sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                    .bind(PgUuid(row.id))
                    .execute(&mut *tx)
                    .await?;
                add_members(&mut tx, row.id, &added).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn try_delete_group(&self, id: Uuid, now: i64) -> Result<bool, Failure> {
        let mut tx = self.pool.begin().await?;
        // Its own memberships go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(PgUuid(id))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        leave_all_groups(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The table holding entity names of `kind`.
fn entity_table(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::User => "users",
        MemberKind::Group => "groups",
    }
}

fn limit_of(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// A transaction for the catalog feed's reads and name claims, with
    /// JIT compilation off: they are many cheap index lookups, which a
    /// stale statistic (right after a bulk import) can make look expensive
    /// enough to JIT-compile, costing tens of milliseconds per page for
    /// nothing.
    async fn catalog_tx(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Claims entity names in `table` (see [`Store::claim_entity_names`]).
    ///
    /// An advisory lock per table serialises claims across replicas: the
    /// `UPDATE` runs after the previous claimer committed, and (under READ
    /// COMMITTED, in a statement of its own) sees its names, so the
    /// `NOT EXISTS` check never races and the unique index never fires.
    async fn try_claim_entity_names(
        &self,
        table: &str,
        ids: &[PgUuid],
        names: &[String],
    ) -> Result<Vec<PgUuid>, Failure> {
        let mut tx = self.catalog_tx().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("roster:{table}.entity_name"))
            .execute(&mut *tx)
            .await?;
        let claimed: Vec<PgUuid> = sqlx::query_scalar(&format!(
            "UPDATE {table} AS t SET entity_name = c.name \
             FROM UNNEST($1::uuid[], $2::text[]) AS c(id, name) \
             WHERE t.id = c.id AND t.entity_name IS NULL \
               AND NOT EXISTS (SELECT 1 FROM {table} AS taken WHERE taken.entity_name = c.name) \
             RETURNING t.id"
        ))
        .bind(ids)
        .bind(names)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn directory_changes(&self) -> DirectoryChanges {
        self.changes.clone()
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let row = UserRow::from_user(user)?;
        self.written(retrying!(self.try_insert_user(&row)))
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query(&format!("{USERS_SELECT} WHERE id = $1"))
            .bind(PgUuid(id.as_uuid()))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .map(|row| user_from_row(&row))
            .transpose()
    }

    async fn update_user(&self, user: &User, expected: Version) -> StoreResult<()> {
        let row = UserRow::from_user(user)?;
        let expected = rows::version_to_db(expected)?;
        self.written(retrying!(self.try_update_user(&row, expected)))
    }

    async fn delete_user(&self, id: UserId, now: OffsetDateTime) -> StoreResult<bool> {
        let now = rows::to_millis(now)?;
        self.written(retrying!(self.try_delete_user(id.as_uuid(), now)))
    }

    async fn find_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let rows = match query {
            UserQuery::All { offset, limit } => {
                let (limit, offset) = page(*offset, *limit);
                sqlx::query(&format!("{USERS_SELECT} ORDER BY seq LIMIT $1 OFFSET $2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
            }
            UserQuery::ByUserName(name) => {
                sqlx::query(&format!("{USERS_SELECT} WHERE user_name_folded = $1"))
                    .bind(UserName::fold(name))
                    .fetch_all(&self.pool)
                    .await
            }
            UserQuery::ByExternalId(external_id) => {
                sqlx::query(&format!(
                    "{USERS_SELECT} WHERE external_id = $1 ORDER BY seq"
                ))
                .bind(external_id)
                .fetch_all(&self.pool)
                .await
            }
            UserQuery::ByIds(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!("{USERS_SELECT} WHERE id = ANY($1) ORDER BY seq"))
                    .bind(uuids(ids.iter().map(UserId::as_uuid)))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::backend)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn groups_of_users(&self, ids: &[UserId]) -> StoreResult<HashMap<UserId, Vec<GroupRef>>> {
        let mut out: HashMap<UserId, Vec<GroupRef>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT gm.member_id, g.id, g.display FROM group_members gm \
             JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_kind = 0 AND gm.member_id = ANY($1) \
             ORDER BY g.seq",
        )
        .bind(uuids(ids.iter().map(UserId::as_uuid)))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        for row in rows {
            let user: PgUuid = get(&row, 0)?;
            let group: PgUuid = get(&row, 1)?;
            out.entry(UserId::from_uuid(user.0))
                .or_default()
                .push(GroupRef {
                    id: GroupId::from_uuid(group.0),
                    display_name: get(&row, 2)?,
                });
        }
        Ok(out)
    }

    async fn insert_group(&self, group: &Group, members: &[Member]) -> StoreResult<()> {
        let row = GroupRow::from_group(group)?;
        self.written(retrying!(self.try_insert_group(&row, members)))
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        sqlx::query(&format!("{GROUPS_SELECT} WHERE id = $1"))
            .bind(PgUuid(id.as_uuid()))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .map(|row| group_from_row(&row))
            .transpose()
    }

    async fn group_members(&self, id: GroupId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "{MEMBERS_SELECT} WHERE gm.group_id = $1 ORDER BY gm.seq"
        ))
        .bind(PgUuid(id.as_uuid()))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(|row| member_from_row(row, 1)).collect()
    }

    async fn members_of_groups(
        &self,
        ids: &[GroupId],
    ) -> StoreResult<HashMap<GroupId, Vec<Member>>> {
        let mut out: HashMap<GroupId, Vec<Member>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(&format!(
            "{MEMBERS_SELECT} WHERE gm.group_id = ANY($1) ORDER BY gm.seq"
        ))
        .bind(uuids(ids.iter().map(GroupId::as_uuid)))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        for row in rows {
            let group: PgUuid = get(&row, 0)?;
            out.entry(GroupId::from_uuid(group.0))
                .or_default()
                .push(member_from_row(&row, 1)?);
        }
        Ok(out)
    }

    async fn update_group(
        &self,
        group: &Group,
        expected: Version,
        members: &MembershipChange,
    ) -> StoreResult<()> {
        let row = GroupRow::from_group(group)?;
        let expected = rows::version_to_db(expected)?;
        self.written(retrying!(self.try_update_group(&row, expected, members)))
    }

    async fn delete_group(&self, id: GroupId, now: OffsetDateTime) -> StoreResult<bool> {
        let now = rows::to_millis(now)?;
        self.written(retrying!(self.try_delete_group(id.as_uuid(), now)))
    }

    async fn find_groups(&self, query: &GroupQuery) -> StoreResult<Vec<Group>> {
        let rows = match query {
            GroupQuery::All { offset, limit } => {
                let (limit, offset) = page(*offset, *limit);
                sqlx::query(&format!("{GROUPS_SELECT} ORDER BY seq LIMIT $1 OFFSET $2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
            }
            GroupQuery::ByDisplayName(name) => {
                sqlx::query(&format!("{GROUPS_SELECT} WHERE display_name_folded = $1"))
                    .bind(fold_display_name(name))
                    .fetch_all(&self.pool)
                    .await
            }
            GroupQuery::ByExternalId(external_id) => {
                sqlx::query(&format!(
                    "{GROUPS_SELECT} WHERE external_id = $1 ORDER BY seq"
                ))
                .bind(external_id)
                .fetch_all(&self.pool)
                .await
            }
            GroupQuery::ByIds(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!("{GROUPS_SELECT} WHERE id = ANY($1) ORDER BY seq"))
                    .bind(uuids(ids.iter().map(GroupId::as_uuid)))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::backend)?;
        rows.iter().map(group_from_row).collect()
    }

    async fn count_groups(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM groups")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn existing_members(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, MemberKind>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(
            "SELECT id, $2::int2 FROM users WHERE id = ANY($1) \
             UNION ALL SELECT id, $3::int2 FROM groups WHERE id = ANY($1)",
        )
        .bind(uuids(ids.iter().copied()))
        .bind(KIND_USER)
        .bind(KIND_GROUP)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                let id: PgUuid = get(row, 0)?;
                let kind: i16 = get(row, 1)?;
                Ok((id.0, kind_from_db(i64::from(kind))?))
            })
            .collect()
    }

    async fn insert_token(&self, token: &ApiToken) -> StoreResult<()> {
        let row = TokenRow::from_token(token)?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, scope, hash_hex, created, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(PgUuid(row.id))
        .bind(&row.name)
        .bind(row.scope)
        .bind(&row.hash_hex)
        .bind(row.created)
        .bind(row.revoked)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(&format!("{TOKENS_SELECT} ORDER BY seq"))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, name: &TokenName, at: OffsetDateTime) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked = $2 WHERE name = $1 AND revoked IS NULL")
                .bind(name.as_str())
                .bind(rows::to_millis(at)?)
                .execute(&self.pool)
                .await
                .map_err(map_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_token(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        sqlx::query(&format!("{TOKENS_SELECT} WHERE hash_hex = $1"))
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .map(|row| token_from_row(&row))
            .transpose()
    }

    async fn users_without_entity_name(&self, limit: u64) -> StoreResult<Vec<User>> {
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let rows = sqlx::query(&format!(
            "{USERS_SELECT} WHERE entity_name IS NULL ORDER BY seq LIMIT $1"
        ))
        .bind(limit_of(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn groups_without_entity_name(&self, limit: u64) -> StoreResult<Vec<Group>> {
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let rows = sqlx::query(&format!(
            "{GROUPS_SELECT} WHERE entity_name IS NULL ORDER BY seq LIMIT $1"
        ))
        .bind(limit_of(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        rows.iter().map(group_from_row).collect()
    }

    async fn entity_names(&self, kind: MemberKind) -> StoreResult<HashSet<String>> {
        let names: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT entity_name FROM {} WHERE entity_name IS NOT NULL",
            entity_table(kind)
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(names.into_iter().collect())
    }

    async fn entity_name(&self, kind: MemberKind, id: Uuid) -> StoreResult<Option<String>> {
        let name: Option<Option<String>> = sqlx::query_scalar(&format!(
            "SELECT entity_name FROM {} WHERE id = $1",
            entity_table(kind)
        ))
        .bind(PgUuid(id))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(name.flatten())
    }

    async fn claim_entity_names(
        &self,
        kind: MemberKind,
        claims: &[(Uuid, String)],
    ) -> StoreResult<HashSet<Uuid>> {
        let claims = distinct_claims(claims);
        if claims.is_empty() {
            return Ok(HashSet::new());
        }
        let ids = uuids(claims.iter().map(|(id, _)| *id));
        let names: Vec<String> = claims.into_iter().map(|(_, name)| name).collect();
        let claimed = self.written(retrying!(self.try_claim_entity_names(
            entity_table(kind),
            &ids,
            &names
        )))?;
        Ok(claimed.into_iter().map(|id| id.0).collect())
    }

    async fn catalog_users(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogUser>> {
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let rows = sqlx::query(
            "SELECT u.id, u.version, u.created, u.last_modified, u.doc, u.seq, u.entity_name, \
               ARRAY(SELECT gm.group_id FROM group_members gm \
                     WHERE gm.member_kind = 0 AND gm.member_id = u.id) \
             FROM users u WHERE u.seq > $1 ORDER BY u.seq LIMIT $2",
        )
        .bind(after.seq())
        .bind(limit_of(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        let mut last = None;
        let users = rows
            .iter()
            .map(|row| {
                last = Some(get::<i64>(row, 5)?);
                let groups: Vec<PgUuid> = get(row, 7)?;
                Ok(CatalogUser {
                    user: user_from_row(row)?,
                    entity_name: get(row, 6)?,
                    groups: groups
                        .into_iter()
                        .map(|g| GroupId::from_uuid(g.0))
                        .collect(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(users, last, limit))
    }

    async fn catalog_groups(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogGroup>> {
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let rows = sqlx::query(
            "SELECT id, version, created, last_modified, doc, seq, entity_name FROM groups \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after.seq())
        .bind(limit_of(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        let mut last = None;
        let mut groups = rows
            .iter()
            .map(|row| {
                last = Some(get::<i64>(row, 5)?);
                Ok(CatalogGroup {
                    group: group_from_row(row)?,
                    entity_name: get(row, 6)?,
                    members: Vec::new(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if !groups.is_empty() {
            let index: HashMap<Uuid, usize> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.group.id.as_uuid(), i))
                .collect();
            let rows = sqlx::query(
                "SELECT gm.group_id, gm.member_id, u.entity_name, u.active \
                 FROM group_members gm JOIN users u ON u.id = gm.member_id \
                 WHERE gm.member_kind = 0 AND gm.group_id = ANY($1) ORDER BY gm.seq",
            )
            .bind(uuids(groups.iter().map(|g| g.group.id.as_uuid())))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
            for row in rows {
                let group: PgUuid = get(&row, 0)?;
                let member: PgUuid = get(&row, 1)?;
                if let Some(&i) = index.get(&group.0) {
                    groups[i].members.push(CatalogMember {
                        id: UserId::from_uuid(member.0),
                        entity_name: get(&row, 2)?,
                        active: get(&row, 3)?,
                    });
                }
            }
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(page_of(groups, last, limit))
    }

    async fn group_graph(&self) -> StoreResult<GroupGraph> {
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let rows = sqlx::query("SELECT id, entity_name FROM groups ORDER BY seq")
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let groups = rows
            .iter()
            .map(|row| {
                let id: PgUuid = get(row, 0)?;
                Ok((GroupId::from_uuid(id.0), get(row, 1)?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT gm.group_id, gm.member_id FROM group_members gm \
             JOIN groups p ON p.id = gm.group_id \
             WHERE gm.member_kind = 1 ORDER BY p.seq, gm.seq",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        let edges = rows
            .iter()
            .map(|row| {
                let parent: PgUuid = get(row, 0)?;
                let child: PgUuid = get(row, 1)?;
                Ok((GroupId::from_uuid(parent.0), GroupId::from_uuid(child.0)))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(GroupGraph { groups, edges })
    }

    async fn directory_fingerprint(&self) -> StoreResult<DirectoryFingerprint> {
        // One statement, so one snapshot. The sum of a hash of each
        // `(id, version)` changes with any committed write, whatever order
        // concurrent transactions commit in (a change counter or the
        // highest sequence value would not: a transaction holding a lower
        // value may commit after a reader saw a higher one).
        let mut tx = self.catalog_tx().await.map_err(StoreError::backend)?;
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM users), \
               (SELECT coalesce(sum(uuid_hash_extended(id, version)), 0)::text FROM users), \
               (SELECT count(*) FROM groups), \
               (SELECT coalesce(sum(uuid_hash_extended(id, version)), 0)::text FROM groups)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        let users: i64 = get(&row, 0)?;
        let user_sum: String = get(&row, 1)?;
        let groups: i64 = get(&row, 2)?;
        let group_sum: String = get(&row, 3)?;
        Ok(DirectoryFingerprint::new(format!(
            "u{users}-{user_sum}-g{groups}-{group_sum}"
        )))
    }

    async fn save_handover(&self, handover: &Handover) -> StoreResult<bool> {
        let row = HandoverRow::from_handover(handover)?;
        let done = sqlx::query(&format!(
            "INSERT INTO handovers ({HANDOVER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             {HANDOVER_UPSERT_TAIL}"
        ))
        .bind(PgUuid(row.user_id))
        .bind(&row.user_name)
        .bind(&row.entity_name)
        .bind(&row.successor)
        .bind(row.successor_id.map(PgUuid))
        .bind(row.reason)
        .bind(row.recorded_at)
        .bind(&row.recorded_by)
        .execute(&self.pool)
        .await
        .map_err(map_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_handover(&self, user: UserId) -> StoreResult<Option<Handover>> {
        sqlx::query(&format!(
            "SELECT {HANDOVER_COLUMNS} FROM handovers WHERE user_id = $1"
        ))
        .bind(PgUuid(user.as_uuid()))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::backend)?
        .map(|row| handover_from_row(&row))
        .transpose()
    }

    async fn list_handovers(&self) -> StoreResult<Vec<Handover>> {
        let rows = sqlx::query(&format!(
            "SELECT {HANDOVER_COLUMNS} FROM handovers ORDER BY recorded_at DESC, user_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(handover_from_row).collect()
    }

    async fn delete_handover(&self, user: UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM handovers WHERE user_id = $1")
            .bind(PgUuid(user.as_uuid()))
            .execute(&self.pool)
            .await
            .map_err(map_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_reconcile_fixes(&self, fixes: &[ReconcileFix]) -> StoreResult<()> {
        if fixes.is_empty() {
            return Ok(());
        }
        let rows = fixes
            .iter()
            .map(FixRow::from_fix)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.pool.begin().await.map_err(map_sqlx)?;
        for row in &rows {
            sqlx::query(&format!(
                "INSERT INTO reconcile_fixes ({FIX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(row.applied_at)
            .bind(&row.actor)
            .bind(&row.finding)
            .bind(&row.entity_ref)
            .bind(&row.uid)
            .bind(&row.action)
            .bind(&row.outcome)
            .bind(&row.error)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx)?;
        }
        tx.commit().await.map_err(map_sqlx)
    }

    async fn list_reconcile_fixes(&self, limit: u64) -> StoreResult<Vec<ReconcileFix>> {
        let rows = sqlx::query(&format!(
            "SELECT {FIX_COLUMNS} FROM reconcile_fixes ORDER BY seq DESC LIMIT $1"
        ))
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                FixRow {
                    applied_at: get(row, 0)?,
                    actor: get(row, 1)?,
                    finding: get(row, 2)?,
                    entity_ref: get(row, 3)?,
                    uid: get(row, 4)?,
                    action: get(row, 5)?,
                    outcome: get(row, 6)?,
                    error: get(row, 7)?,
                }
                .into_fix()
            })
            .collect()
    }
}

fn handover_from_row(row: &PgRow) -> StoreResult<Handover> {
    let user_id: PgUuid = get(row, 0)?;
    let successor_id: Option<PgUuid> = get(row, 4)?;
    let reason: &str = get(row, 5)?;
    handover_from_parts(
        user_id.0,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        successor_id.map(|id| id.0),
        reason,
        get(row, 6)?,
        get(row, 7)?,
    )
}
