//! The embedded store: one SQLite file.
//!
//! Reads go to a pool of read-only connections; with WAL they never wait for
//! the writer. Every write goes to one task that owns the only write
//! connection and commits in groups (see [`writer`]): whatever requests are
//! queued when it becomes free are run in one `BEGIN IMMEDIATE` transaction
//! and made durable by one `fsync`, so throughput grows with concurrency
//! while each request still sees its own outcome.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use roster_domain::{
    ApiToken, Group, GroupId, Member, MemberKind, TokenHash, TokenName, User, UserId, UserName,
    Version,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::handovers::{handover_from_parts, FixRow, HandoverRow, FIX_COLUMNS, HANDOVER_COLUMNS};
use crate::rows::{
    self, fold_display_name, group_from_parts, kind_from_db, token_from_parts, user_from_parts,
    uuid_from_bytes, GroupRow, TokenRow, UserRow,
};
use crate::{
    distinct_claims, page_of, CatalogGroup, CatalogMember, CatalogPage, CatalogUser,
    DirectoryChanges, DirectoryFingerprint, GroupGraph, GroupQuery, GroupRef, Handover,
    MembershipChange, Position, ReconcileFix, Store, StoreError, StoreResult, UserQuery,
};

mod access;
mod writer;

use writer::{EntityTable, MembersWrite, Outcome, WriteOp, WriteRequest};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another process (such as `roster token
/// create`) to release the database before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests that may wait for the writer before callers feel back-pressure.
const WRITE_QUEUE: usize = 4096;

/// Connections for whole-table walks, and their page cache (negative =
/// KiB): the OS caches the file anyway; this only saves copying.
const BULK_READERS: u32 = 2;
const BULK_CACHE_KIB: &str = "-4096";

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    readers: SqlitePool,
    /// Connections for reads that walk whole tables (the catalog feed), with
    /// a small page cache of their own: a walk through 100,000 users would
    /// otherwise fill every reader's cache (32 MiB each) and push out the
    /// pages SCIM requests keep hot.
    bulk: SqlitePool,
    writer: mpsc::Sender<WriteRequest>,
    changes: DirectoryChanges,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The rows of the users `query` selects, with `columns`.
    async fn user_rows(&self, query: &UserQuery, columns: &str) -> StoreResult<Vec<SqliteRow>> {
        let rows = match query {
            UserQuery::All { offset, limit } => {
                let (limit, offset) = page(*offset, *limit);
                sqlx::query(&users_sql(columns, "ORDER BY seq LIMIT ?1 OFFSET ?2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.readers)
                    .await
            }
            UserQuery::ByUserName(name) => {
                sqlx::query(&users_sql(columns, "WHERE user_name_folded = ?1"))
                    .bind(UserName::fold(name))
                    .fetch_all(&self.readers)
                    .await
            }
            UserQuery::ByExternalId(external_id) => {
                sqlx::query(&users_sql(columns, "WHERE external_id = ?1 ORDER BY seq"))
                    .bind(external_id)
                    .fetch_all(&self.readers)
                    .await
            }
            UserQuery::ByIds(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&users_sql(
                    columns,
                    "WHERE id IN (SELECT unhex(value) FROM json_each(?1)) ORDER BY seq",
                ))
                .bind(id_list(ids.iter().map(UserId::as_uuid)))
                .fetch_all(&self.readers)
                .await
            }
        }
        .map_err(StoreError::backend)?;
        Ok(rows)
    }

    /// Opens (creating if needed) the database at `path`, runs pending
    /// migrations and starts the writer task on the current Tokio runtime.
    ///
    /// Fails with [`StoreError::DatabaseTooNew`] if a newer Roster has
    /// migrated the file.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|err| {
                StoreError::Backend(format!(
                    "cannot create the database directory {}: {err}",
                    parent.display()
                ))
            })?;
        }

        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Per-connection page cache of 32 MiB (negative = KiB).
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "MEMORY");

        // The write connection: WAL so readers and the writer don't block each
        // other, and synchronous=FULL so a commit is on disk (WAL fsynced)
        // before it is acknowledged, surviving SIGKILL and power loss.
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Checkpoints normally run on their own connection (see
            // `checkpointer`); the writer only steps in if the WAL grows
            // past this many pages (40 MiB).
            .pragma("wal_autocheckpoint", "10000")
            // After a large transaction, shrink the WAL file back to 64 MiB
            // once it is reused rather than keep it at its peak size.
            .pragma("journal_size_limit", "67108864");
        let mut conn = write_options
            .connect()
            .await
            .map_err(|err| StoreError::Backend(format!("cannot open {}: {err}", path.display())))?;
        migrate(&mut conn).await?;

        let readers = SqlitePoolOptions::new()
            .max_connections(reader_count())
            .min_connections(1)
            // A reader that fails is replaced on the next error; checking each
            // one before use would add a round trip to every read.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(|err| {
                StoreError::Backend(format!("cannot open {} for reading: {err}", path.display()))
            })?;

        let bulk = SqlitePoolOptions::new()
            .max_connections(BULK_READERS)
            .min_connections(0)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                base.clone()
                    .read_only(true)
                    .pragma("cache_size", BULK_CACHE_KIB),
            )
            .await
            .map_err(|err| {
                StoreError::Backend(format!("cannot open {} for reading: {err}", path.display()))
            })?;

        let checkpoints = base
            .connect()
            .await
            .map_err(|err| StoreError::Backend(format!("cannot open {}: {err}", path.display())))?;
        let (kick, kicks) = mpsc::channel(1);
        tokio::spawn(checkpointer(checkpoints, kicks));

        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let changes = DirectoryChanges::followed();
        tokio::spawn(writer::run(conn, rx, kick, changes.clone()));
        Ok(Self {
            changes,
            readers,
            bulk,
            writer: tx,
        })
    }

    async fn write(&self, op: WriteOp) -> StoreResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer dropped a request".into()))?
    }
}

/// Least time between two checkpoints.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Copies committed pages from the WAL back into the database file, on a
/// connection of its own, whenever the writer reports commits (at most every
/// [`CHECKPOINT_INTERVAL`]).
///
/// Left to SQLite, the connection that commits runs the checkpoint, so every
/// thousandth page or so one unlucky write would also wait for a few
/// megabytes of random writes and an `fsync` of the database file. A
/// `PASSIVE` checkpoint here never blocks the writer or readers, and keeps the
/// WAL short so that it is reused from the start instead of growing.
async fn checkpointer(mut conn: SqliteConnection, mut kicks: mpsc::Receiver<()>) {
    while kicks.recv().await.is_some() {
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %err, "SQLite checkpoint failed; will retry");
        }
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
    }
    if let Err(err) = conn.close().await {
        tracing::warn!(error = %err, "closing the SQLite checkpoint connection failed");
    }
}

/// Read connections: enough to keep every core busy and a few waiting on I/O.
fn reader_count() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from((cores * 2).clamp(4, 16)).unwrap_or(4)
}

/// Runs pending migrations, first refusing a database from a newer Roster.
async fn migrate(conn: &mut SqliteConnection) -> StoreResult<()> {
    let has_table: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::backend)?;
    if has_table.is_some() {
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        rows::check_not_too_new(&MIGRATOR, applied)?;
    }
    MIGRATOR.run(&mut *conn).await.map_err(rows::migrate_error)
}

/// A JSON array of ids as 32-digit hex strings, for `json_each` + `unhex`:
/// one statement (and one cached plan) for a list of any length.
fn id_list(ids: impl IntoIterator<Item = Uuid>) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\"", id.simple());
    }
    out.push(']');
    out
}

/// A JSON array of `[hex id, kind]` pairs, in order.
fn member_list(members: &[Member]) -> String {
    let mut out = String::from("[");
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "[\"{}\",{}]",
            member.id.simple(),
            rows::kind_to_db(member.kind)
        );
    }
    out.push(']');
    out
}

const USER_COLUMNS: &str = "id, version, created, last_modified, doc";
const GROUP_COLUMNS: &str = "id, version, created, last_modified, doc";
const TOKEN_COLUMNS: &str = "id, name, scope, hash_hex, created, revoked";

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    let id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
    user_from_parts(
        uuid_from_bytes(id)?,
        row.try_get(1).map_err(StoreError::backend)?,
        row.try_get(2).map_err(StoreError::backend)?,
        row.try_get(3).map_err(StoreError::backend)?,
        row.try_get(4).map_err(StoreError::backend)?,
    )
}

fn group_from_row(row: &SqliteRow) -> StoreResult<Group> {
    let id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
    group_from_parts(
        uuid_from_bytes(id)?,
        row.try_get(1).map_err(StoreError::backend)?,
        row.try_get(2).map_err(StoreError::backend)?,
        row.try_get(3).map_err(StoreError::backend)?,
        row.try_get(4).map_err(StoreError::backend)?,
    )
}

fn token_from_row(row: &SqliteRow) -> StoreResult<ApiToken> {
    let id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
    token_from_parts(
        uuid_from_bytes(id)?,
        row.try_get(1).map_err(StoreError::backend)?,
        row.try_get(2).map_err(StoreError::backend)?,
        row.try_get(3).map_err(StoreError::backend)?,
        row.try_get(4).map_err(StoreError::backend)?,
        row.try_get(5).map_err(StoreError::backend)?,
    )
}

/// The display text of member `gm`: from whichever table its kind names (a
/// correlated subquery, so only that one is searched).
const MEMBER_DISPLAY: &str = "CASE gm.member_kind \
     WHEN 0 THEN (SELECT u.display FROM users u WHERE u.id = gm.member_id) \
     ELSE (SELECT g.display FROM groups g WHERE g.id = gm.member_id) END";

/// Members as a single JSON array of `[seq, hex group id, hex member id,
/// kind, display]` (the group id only `with_group`, else null).
///
/// Aggregating inside SQLite and parsing one string is several times faster
/// for large groups than streaming a row per member out of the driver (each
/// row crosses a thread boundary), so a 100,000-member group is one query.
/// The inner `ORDER BY` makes SQLite walk `group_members_group_seq` (in order,
/// no sort); since SQL does not promise that an aggregate sees rows in a
/// subquery's order, callers sort by `seq` again, which costs one pass over
/// already-sorted input.
fn members_json_sql(filter: &str, with_group: bool) -> String {
    let group = if with_group {
        "hex(gm.group_id)"
    } else {
        "NULL"
    };
    format!(
        "SELECT json_group_array(json_array(s, g, m, k, d)) FROM ( \
           SELECT gm.seq AS s, {group} AS g, hex(gm.member_id) AS m, \
             gm.member_kind AS k, {MEMBER_DISPLAY} AS d \
           FROM group_members gm WHERE {filter} ORDER BY gm.seq)"
    )
}

/// One member as [`members_json_sql`] returns it.
type MemberJson<'a> = (i64, Option<&'a str>, &'a str, i64, Option<String>);

/// Parses [`members_json_sql`]'s result into `(group, member)` pairs in
/// insertion order.
fn parse_members(json: &str) -> StoreResult<Vec<(Option<GroupId>, Member)>> {
    let mut rows: Vec<MemberJson<'_>> = serde_json::from_str(json)
        .map_err(|err| StoreError::Backend(format!("reading members: {err}")))?;
    rows.sort_by_key(|row| row.0);
    rows.into_iter()
        .map(|(_, group, id, kind, display)| {
            Ok((
                group
                    .map(|g| uuid_from_hex(g).map(GroupId::from_uuid))
                    .transpose()?,
                Member {
                    id: uuid_from_hex(id)?,
                    kind: kind_from_db(kind)?,
                    display,
                },
            ))
        })
        .collect()
}

fn uuid_from_hex(hex: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(hex).map_err(|err| StoreError::Backend(format!("stored id is invalid: {err}")))
}

fn page(offset: u64, limit: Option<u64>) -> (i64, i64) {
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    (limit, i64::try_from(offset).unwrap_or(i64::MAX))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn directory_changes(&self) -> DirectoryChanges {
        self.changes.clone()
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.write(WriteOp::InsertUser(UserRow::from_user(user)?))
            .await
            .map(|_| ())
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query(&users_sql(USER_COLUMNS, "WHERE id = ?1"))
            .bind(id.as_uuid().as_bytes().as_slice())
            .fetch_optional(&self.readers)
            .await
            .map_err(StoreError::backend)?
            .map(|row| user_from_row(&row))
            .transpose()
    }

    async fn update_user(&self, user: &User, expected: Version) -> StoreResult<()> {
        let op = WriteOp::UpdateUser {
            row: UserRow::from_user(user)?,
            expected: rows::version_to_db(expected)?,
        };
        self.write(op).await.map(|_| ())
    }

    async fn delete_user(&self, id: UserId, now: OffsetDateTime) -> StoreResult<bool> {
        let op = WriteOp::DeleteUser {
            id: id.as_uuid(),
            now: rows::to_millis(now)?,
        };
        self.write(op).await.map(Outcome::existed)
    }

    async fn find_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let rows = self.user_rows(query, USER_COLUMNS).await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn find_users_with_groups(
        &self,
        query: &UserQuery,
    ) -> StoreResult<Vec<(User, Vec<GroupRef>)>> {
        // One query instead of two: each round trip through the driver's
        // connection thread costs more than the lookup itself.
        let columns = format!("{USER_COLUMNS}, {USER_GROUPS_COLUMN}");
        let rows = self.user_rows(query, &columns).await?;
        rows.iter()
            .map(|row| {
                let user = user_from_row(row)?;
                let groups: &str = row.try_get(5).map_err(StoreError::backend)?;
                Ok((user, group_refs_from_json(groups)?))
            })
            .collect()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.readers)
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
             WHERE gm.member_kind = 0 AND gm.member_id IN (SELECT unhex(value) FROM json_each(?1)) \
             ORDER BY g.seq",
        )
        .bind(id_list(ids.iter().map(UserId::as_uuid)))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        for row in rows {
            let user: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
            let group: &[u8] = row.try_get(1).map_err(StoreError::backend)?;
            out.entry(UserId::from_uuid(uuid_from_bytes(user)?))
                .or_default()
                .push(GroupRef {
                    id: GroupId::from_uuid(uuid_from_bytes(group)?),
                    display_name: row.try_get(2).map_err(StoreError::backend)?,
                });
        }
        Ok(out)
    }

    async fn insert_group(&self, group: &Group, members: &[Member]) -> StoreResult<()> {
        let op = WriteOp::InsertGroup {
            row: GroupRow::from_group(group)?,
            members: (!members.is_empty()).then(|| member_list(members)),
        };
        self.write(op).await.map(|_| ())
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        sqlx::query(&groups_sql("WHERE id = ?1"))
            .bind(id.as_uuid().as_bytes().as_slice())
            .fetch_optional(&self.readers)
            .await
            .map_err(StoreError::backend)?
            .map(|row| group_from_row(&row))
            .transpose()
    }

    async fn group_members(&self, id: GroupId) -> StoreResult<Vec<Member>> {
        let json: String = sqlx::query_scalar(&members_json_sql("gm.group_id = ?1", false))
            .bind(id.as_uuid().as_bytes().as_slice())
            .fetch_one(&self.readers)
            .await
            .map_err(StoreError::backend)?;
        Ok(parse_members(&json)?
            .into_iter()
            .map(|(_, member)| member)
            .collect())
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
        let json: String = sqlx::query_scalar(&members_json_sql(
            "gm.group_id IN (SELECT unhex(value) FROM json_each(?1))",
            true,
        ))
        .bind(id_list(ids.iter().map(GroupId::as_uuid)))
        .fetch_one(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        for (group, member) in parse_members(&json)? {
            if let Some(group) = group {
                out.entry(group).or_default().push(member);
            }
        }
        Ok(out)
    }

    async fn update_group(
        &self,
        group: &Group,
        expected: Version,
        members: &MembershipChange,
    ) -> StoreResult<()> {
        let members = match members {
            MembershipChange::Unchanged => MembersWrite::Unchanged,
            MembershipChange::Delta { add, remove } => MembersWrite::Delta {
                add: (!add.is_empty()).then(|| member_list(add)),
                remove: (!remove.is_empty()).then(|| id_list(remove.iter().copied())),
            },
            MembershipChange::Replace(all) => MembersWrite::Replace(member_list(all)),
        };
        let op = WriteOp::UpdateGroup {
            row: GroupRow::from_group(group)?,
            expected: rows::version_to_db(expected)?,
            members,
        };
        self.write(op).await.map(|_| ())
    }

    async fn delete_group(&self, id: GroupId, now: OffsetDateTime) -> StoreResult<bool> {
        let op = WriteOp::DeleteGroup {
            id: id.as_uuid(),
            now: rows::to_millis(now)?,
        };
        self.write(op).await.map(Outcome::existed)
    }

    async fn find_groups(&self, query: &GroupQuery) -> StoreResult<Vec<Group>> {
        let rows = match query {
            GroupQuery::All { offset, limit } => {
                let (limit, offset) = page(*offset, *limit);
                sqlx::query(&groups_sql("ORDER BY seq LIMIT ?1 OFFSET ?2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.readers)
                    .await
            }
            GroupQuery::ByDisplayName(name) => {
                sqlx::query(&groups_sql("WHERE display_name_folded = ?1"))
                    .bind(fold_display_name(name))
                    .fetch_all(&self.readers)
                    .await
            }
            GroupQuery::ByExternalId(external_id) => {
                sqlx::query(&groups_sql("WHERE external_id = ?1 ORDER BY seq"))
                    .bind(external_id)
                    .fetch_all(&self.readers)
                    .await
            }
            GroupQuery::ByIds(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&groups_sql(
                    "WHERE id IN (SELECT unhex(value) FROM json_each(?1)) ORDER BY seq",
                ))
                .bind(id_list(ids.iter().map(GroupId::as_uuid)))
                .fetch_all(&self.readers)
                .await
            }
        }
        .map_err(StoreError::backend)?;
        rows.iter().map(group_from_row).collect()
    }

    async fn count_groups(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM groups")
            .fetch_one(&self.readers)
            .await
            .map_err(StoreError::backend)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn existing_members(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, MemberKind>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(
            "SELECT id, 0 FROM users WHERE id IN (SELECT unhex(value) FROM json_each(?1)) \
             UNION ALL \
             SELECT id, 1 FROM groups WHERE id IN (SELECT unhex(value) FROM json_each(?1))",
        )
        .bind(id_list(ids.iter().copied()))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                let id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
                let kind: i64 = row.try_get(1).map_err(StoreError::backend)?;
                Ok((uuid_from_bytes(id)?, kind_from_db(kind)?))
            })
            .collect()
    }

    async fn insert_token(&self, token: &ApiToken) -> StoreResult<()> {
        self.write(WriteOp::InsertToken(TokenRow::from_token(token)?))
            .await
            .map(|_| ())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY seq");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.readers)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, name: &TokenName, at: OffsetDateTime) -> StoreResult<bool> {
        let op = WriteOp::RevokeToken {
            name: name.as_str().to_owned(),
            at: rows::to_millis(at)?,
        };
        self.write(op).await.map(Outcome::existed)
    }

    async fn find_token(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash_hex = ?1");
        sqlx::query(&sql)
            .bind(hash.to_hex())
            .fetch_optional(&self.readers)
            .await
            .map_err(StoreError::backend)?
            .map(|row| token_from_row(&row))
            .transpose()
    }

    async fn users_without_entity_name(&self, limit: u64) -> StoreResult<Vec<User>> {
        let rows = self.unnamed_rows("users", USER_COLUMNS, limit).await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn groups_without_entity_name(&self, limit: u64) -> StoreResult<Vec<Group>> {
        let rows = self.unnamed_rows("groups", GROUP_COLUMNS, limit).await?;
        rows.iter().map(group_from_row).collect()
    }

    async fn entity_names(&self, kind: MemberKind) -> StoreResult<HashSet<String>> {
        let (_, table) = entity_table(kind);
        let names: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT entity_name FROM {table} WHERE entity_name IS NOT NULL"
        ))
        .fetch_all(&self.bulk)
        .await
        .map_err(StoreError::backend)?;
        Ok(names.into_iter().collect())
    }

    async fn entity_name(&self, kind: MemberKind, id: Uuid) -> StoreResult<Option<String>> {
        let (_, table) = entity_table(kind);
        let name: Option<Option<String>> =
            sqlx::query_scalar(&format!("SELECT entity_name FROM {table} WHERE id = ?1"))
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.bulk)
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
        let json = serde_json::to_string(
            &claims
                .iter()
                .map(|(id, name)| (id.simple().to_string(), name))
                .collect::<Vec<_>>(),
        )
        .map_err(StoreError::backend)?;
        let (table, _) = entity_table(kind);
        let op = WriteOp::ClaimEntityNames {
            table,
            claims: json,
        };
        Ok(self.write(op).await?.claimed().into_iter().collect())
    }

    async fn catalog_users(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogUser>> {
        // The page as one JSON value (see `members_json_sql` for why), with
        // each document embedded as JSON so it is parsed once.
        let json: String = sqlx::query_scalar(CATALOG_USERS_SQL)
            .bind(after.seq())
            .bind(limit_of(limit))
            .fetch_one(&self.bulk)
            .await
            .map_err(StoreError::backend)?;
        let mut rows: Vec<CatalogUserJson> = serde_json::from_str(&json)
            .map_err(|err| StoreError::Backend(format!("reading users: {err}")))?;
        rows.sort_by_key(|row| row.5);
        let last = rows.last().map(|row| row.5);
        let users = rows
            .into_iter()
            .map(
                |(id, version, created, last_modified, attributes, _, entity_name, groups)| {
                    Ok(CatalogUser {
                        user: User {
                            id: UserId::from_uuid(uuid_from_hex(&id)?),
                            meta: rows::meta_from_parts(version, created, last_modified)?,
                            attributes,
                        },
                        entity_name,
                        groups: groups
                            .iter()
                            .map(|g| uuid_from_hex(g).map(GroupId::from_uuid))
                            .collect::<StoreResult<_>>()?,
                    })
                },
            )
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(users, last, limit))
    }

    async fn catalog_groups(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogGroup>> {
        let rows = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS}, seq, entity_name FROM groups \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))
        .bind(after.seq())
        .bind(limit_of(limit))
        .fetch_all(&self.bulk)
        .await
        .map_err(StoreError::backend)?;
        let mut last = None;
        let mut groups = rows
            .iter()
            .map(|row| {
                last = Some(row.try_get::<i64, _>(5).map_err(StoreError::backend)?);
                Ok(CatalogGroup {
                    group: group_from_row(row)?,
                    entity_name: row.try_get(6).map_err(StoreError::backend)?,
                    members: Vec::new(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if !groups.is_empty() {
            let json: String = sqlx::query_scalar(CATALOG_MEMBERS_SQL)
                .bind(id_list(groups.iter().map(|g| g.group.id.as_uuid())))
                .fetch_one(&self.bulk)
                .await
                .map_err(StoreError::backend)?;
            let mut members: Vec<CatalogMemberJson> = serde_json::from_str(&json)
                .map_err(|err| StoreError::Backend(format!("reading members: {err}")))?;
            members.sort_by_key(|m| m.0);
            let index: HashMap<Uuid, usize> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.group.id.as_uuid(), i))
                .collect();
            for (_, group, member, entity_name, active) in members {
                if let Some(&i) = index.get(&uuid_from_hex(&group)?) {
                    groups[i].members.push(CatalogMember {
                        id: UserId::from_uuid(uuid_from_hex(&member)?),
                        entity_name,
                        active: active != 0,
                    });
                }
            }
        }
        Ok(page_of(groups, last, limit))
    }

    async fn group_graph(&self) -> StoreResult<GroupGraph> {
        let rows = sqlx::query("SELECT id, entity_name FROM groups ORDER BY seq")
            .fetch_all(&self.bulk)
            .await
            .map_err(StoreError::backend)?;
        let groups = rows
            .iter()
            .map(|row| {
                let id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
                Ok((
                    GroupId::from_uuid(uuid_from_bytes(id)?),
                    row.try_get(1).map_err(StoreError::backend)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT gm.group_id, gm.member_id FROM group_members gm \
             JOIN groups p ON p.id = gm.group_id \
             WHERE gm.member_kind = 1 ORDER BY p.seq, gm.seq",
        )
        .fetch_all(&self.bulk)
        .await
        .map_err(StoreError::backend)?;
        let edges = rows
            .iter()
            .map(|row| {
                let parent: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
                let child: &[u8] = row.try_get(1).map_err(StoreError::backend)?;
                Ok((
                    GroupId::from_uuid(uuid_from_bytes(parent)?),
                    GroupId::from_uuid(uuid_from_bytes(child)?),
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(GroupGraph { groups, edges })
    }

    async fn directory_fingerprint(&self) -> StoreResult<DirectoryFingerprint> {
        // One statement, so one snapshot. SQLite has no hash function, so it
        // hands over every `id:version` and the hash is taken here. (Sums of
        // the integer columns would miss a delete and a create that reuse a
        // row id within one millisecond; an id cannot be reused.)
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM users), \
               (SELECT coalesce(group_concat(hex(id) || ':' || version, ','), '') FROM users), \
               (SELECT count(*) FROM groups), \
               (SELECT coalesce(group_concat(hex(id) || ':' || version, ','), '') FROM groups)",
        )
        .fetch_one(&self.bulk)
        .await
        .map_err(StoreError::backend)?;
        let users: i64 = row.try_get(0).map_err(StoreError::backend)?;
        let user_versions: &str = row.try_get(1).map_err(StoreError::backend)?;
        let groups: i64 = row.try_get(2).map_err(StoreError::backend)?;
        let group_versions: &str = row.try_get(3).map_err(StoreError::backend)?;
        Ok(DirectoryFingerprint::new(format!(
            "u{users}-{:016x}-g{groups}-{:016x}",
            fnv1a(user_versions.as_bytes()),
            fnv1a(group_versions.as_bytes())
        )))
    }

    async fn save_handover(&self, handover: &Handover) -> StoreResult<bool> {
        let row = HandoverRow::from_handover(handover)?;
        self.write(WriteOp::SaveHandover(row))
            .await
            .map(Outcome::existed)
    }

    async fn get_handover(&self, user: UserId) -> StoreResult<Option<Handover>> {
        sqlx::query(&format!(
            "SELECT {HANDOVER_COLUMNS} FROM handovers WHERE user_id = ?1"
        ))
        .bind(user.as_uuid().as_bytes().as_slice())
        .fetch_optional(&self.readers)
        .await
        .map_err(StoreError::backend)?
        .map(|row| handover_from_row(&row))
        .transpose()
    }

    async fn list_handovers(&self) -> StoreResult<Vec<Handover>> {
        let rows = sqlx::query(&format!(
            "SELECT {HANDOVER_COLUMNS} FROM handovers ORDER BY recorded_at DESC, user_id"
        ))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(handover_from_row).collect()
    }

    async fn delete_handover(&self, user: UserId) -> StoreResult<bool> {
        self.write(WriteOp::DeleteHandover {
            user_id: user.as_uuid(),
        })
        .await
        .map(Outcome::existed)
    }

    async fn record_reconcile_fixes(&self, fixes: &[ReconcileFix]) -> StoreResult<()> {
        if fixes.is_empty() {
            return Ok(());
        }
        let rows = fixes
            .iter()
            .map(FixRow::from_fix)
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(WriteOp::RecordFixes(rows)).await.map(|_| ())
    }

    async fn list_reconcile_fixes(&self, limit: u64) -> StoreResult<Vec<ReconcileFix>> {
        let rows = sqlx::query(&format!(
            "SELECT {FIX_COLUMNS} FROM reconcile_fixes ORDER BY seq DESC LIMIT ?1"
        ))
        .bind(limit_of(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                FixRow {
                    applied_at: row.try_get(0).map_err(StoreError::backend)?,
                    actor: row.try_get(1).map_err(StoreError::backend)?,
                    finding: row.try_get(2).map_err(StoreError::backend)?,
                    entity_ref: row.try_get(3).map_err(StoreError::backend)?,
                    uid: row.try_get(4).map_err(StoreError::backend)?,
                    action: row.try_get(5).map_err(StoreError::backend)?,
                    outcome: row.try_get(6).map_err(StoreError::backend)?,
                    error: row.try_get(7).map_err(StoreError::backend)?,
                }
                .into_fix()
            })
            .collect()
    }
}

fn handover_from_row(row: &SqliteRow) -> StoreResult<Handover> {
    let user_id: &[u8] = row.try_get(0).map_err(StoreError::backend)?;
    let successor_id: Option<&[u8]> = row.try_get(4).map_err(StoreError::backend)?;
    handover_from_parts(
        uuid_from_bytes(user_id)?,
        row.try_get(1).map_err(StoreError::backend)?,
        row.try_get(2).map_err(StoreError::backend)?,
        row.try_get(3).map_err(StoreError::backend)?,
        successor_id.map(uuid_from_bytes).transpose()?,
        row.try_get(5).map_err(StoreError::backend)?,
        row.try_get(6).map_err(StoreError::backend)?,
        row.try_get(7).map_err(StoreError::backend)?,
    )
}

/// The table holding entity names of `kind`.
fn entity_table(kind: MemberKind) -> (EntityTable, &'static str) {
    match kind {
        MemberKind::User => (EntityTable::Users, "users"),
        MemberKind::Group => (EntityTable::Groups, "groups"),
    }
}

/// A page size as SQLite's `LIMIT` takes it.
fn limit_of(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// 64-bit FNV-1a: a small, stable hash (the same on every build), enough to
/// tell two fingerprints apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A group's user members as one JSON array of `[seq, hex group id, hex
/// user id, entity name, active]`; see [`members_json_sql`] for why JSON.
const CATALOG_MEMBERS_SQL: &str = "SELECT json_group_array(json_array(s, g, m, n, a)) FROM ( \
       SELECT gm.seq AS s, hex(gm.group_id) AS g, hex(gm.member_id) AS m, \
         u.entity_name AS n, u.active AS a \
       FROM group_members gm JOIN users u ON u.id = gm.member_id \
       WHERE gm.member_kind = 0 AND gm.group_id IN (SELECT unhex(value) FROM json_each(?1)) \
       ORDER BY gm.seq)";

type CatalogMemberJson = (i64, String, String, Option<String>, i64);

/// A page of users as one JSON array of `[hex id, version, created,
/// lastModified, doc, seq, entity name, [hex group id, ...]]`.
const CATALOG_USERS_SQL: &str = "SELECT json_group_array(json_array( \
       hex(u.id), u.version, u.created, u.last_modified, json(u.doc), u.seq, u.entity_name, \
       json((SELECT json_group_array(hex(gm.group_id)) FROM group_members gm \
             WHERE gm.member_kind = 0 AND gm.member_id = u.id)))) \
     FROM (SELECT * FROM users WHERE seq > ?1 ORDER BY seq LIMIT ?2) AS u";

type CatalogUserJson = (
    String,
    i64,
    i64,
    i64,
    roster_domain::UserAttributes,
    i64,
    Option<String>,
    Vec<String>,
);

impl SqliteStore {
    async fn unnamed_rows(
        &self,
        table: &str,
        columns: &str,
        limit: u64,
    ) -> StoreResult<Vec<SqliteRow>> {
        // `users_unnamed` / `groups_unnamed` hold only the rows still
        // waiting for a name, so this never walks the named ones.
        sqlx::query(&format!(
            "SELECT {columns} FROM {table} WHERE entity_name IS NULL ORDER BY seq LIMIT ?1"
        ))
        .bind(limit_of(limit))
        .fetch_all(&self.bulk)
        .await
        .map_err(StoreError::backend)
    }
}

/// `SELECT` of the user columns [`user_from_row`] reads, then `tail`.
fn users_sql(columns: &str, tail: &str) -> String {
    format!("SELECT {columns} FROM users {tail}")
}

/// A user's direct groups as a JSON array of `[hex id, display]`, in group
/// creation order.
const USER_GROUPS_COLUMN: &str =
    "(SELECT json_group_array(json_array(lower(hex(x.id)), x.display)) \
     FROM (SELECT g.id, g.display FROM group_members gm JOIN groups g ON g.id = gm.group_id \
           WHERE gm.member_kind = 0 AND gm.member_id = users.id ORDER BY g.seq) x)";

fn group_refs_from_json(raw: &str) -> StoreResult<Vec<GroupRef>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(raw)
        .map_err(|err| StoreError::Backend(format!("group list is invalid: {err}")))?;
    pairs
        .into_iter()
        .map(|(id, display_name)| {
            let id = Uuid::parse_str(&id)
                .map_err(|err| StoreError::Backend(format!("stored group id is invalid: {err}")))?;
            Ok(GroupRef {
                id: GroupId::from_uuid(id),
                display_name,
            })
        })
        .collect()
}

/// `SELECT` of the group columns [`group_from_row`] reads, then `tail`.
fn groups_sql(tail: &str) -> String {
    format!("SELECT {GROUP_COLUMNS} FROM groups {tail}")
}
