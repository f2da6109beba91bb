//! The single SQLite writer and its group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` each
//! commit costs an `fsync`. Rather than let many connections queue on the
//! file lock (each paying its own `fsync`), every write is sent to this task,
//! which owns the only write connection. Each round it takes everything that
//! queued while it was busy (up to [`MAX_GROUP`] requests) and:
//!
//! 1. opens `BEGIN IMMEDIATE` (taking the write lock up front, so no statement
//!    inside can fail with `SQLITE_BUSY` half-way);
//! 2. runs each request in turn; a request of several statements runs inside
//!    its own `SAVEPOINT`. A request that fails for a reason the caller must
//!    hear about (a uniqueness conflict, a version mismatch, a missing row)
//!    fails at its first write statement, which SQLite rolls back on its own,
//!    so it undoes only itself and the group goes on;
//! 3. `COMMIT`s once, and only then answers every caller.
//!
//! If a request fails with a storage error (which may have ended the
//! transaction), the group is rolled back, that request gets its error and the
//! rest are run again in a fresh transaction; a second such failure fails the
//! whole group. No caller is told "done" before its write is durable.

use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::handovers::{FixRow, HandoverRow, HANDOVER_COLUMNS, HANDOVER_UPSERT_TAIL};
use crate::rows::{map_sqlx, GroupRow, TokenRow, UserRow};
use crate::{DirectoryChanges, StoreError, StoreResult};

/// Most requests committed together. Large enough to absorb any realistic
/// burst; small enough that one group never holds the lock for long.
const MAX_GROUP: usize = 256;

/// One write, with its values already converted to columns (serialising is
/// done by the caller, off the writer's critical path).
#[derive(Debug)]
pub(super) enum WriteOp {
    InsertUser(UserRow),
    UpdateUser {
        row: UserRow,
        expected: i64,
    },
    DeleteUser {
        id: Uuid,
        now: i64,
    },
    InsertGroup {
        row: GroupRow,
        /// JSON `[[hex id, kind], ...]`, if there are members.
        members: Option<String>,
    },
    UpdateGroup {
        row: GroupRow,
        expected: i64,
        members: MembersWrite,
    },
    DeleteGroup {
        id: Uuid,
        now: i64,
    },
    InsertToken(TokenRow),
    RevokeToken {
        name: String,
        at: i64,
    },
    /// Entity names for `users` or `groups`: JSON `[[hex id, name], ...]`,
    /// at most one per id and per name.
    ClaimEntityNames {
        table: EntityTable,
        claims: String,
    },
    /// Upsert into `handovers`; an automatic row never replaces a manual one.
    SaveHandover(HandoverRow),
    DeleteHandover {
        user_id: Uuid,
    },
    /// Appends to `reconcile_fixes`, in order.
    RecordFixes(Vec<FixRow>),
    /// A policy change (see `sqlite/access.rs`).
    Access(Box<super::access::AccessWriteOp>),
}

/// The tables that hold entity names.
#[derive(Debug, Clone, Copy)]
pub(super) enum EntityTable {
    Users,
    Groups,
}

#[derive(Debug)]
pub(super) enum MembersWrite {
    Unchanged,
    Delta {
        /// JSON `[[hex id, kind], ...]`.
        add: Option<String>,
        /// JSON `[hex id, ...]`.
        remove: Option<String>,
    },
    /// JSON `[[hex id, kind], ...]`; may be empty.
    Replace(String),
}

impl WriteOp {
    /// Whether the request may run more than one write statement.
    fn needs_savepoint(&self) -> bool {
        match self {
            WriteOp::InsertUser(_)
            | WriteOp::UpdateUser { .. }
            | WriteOp::InsertToken(_)
            | WriteOp::RevokeToken { .. }
            | WriteOp::ClaimEntityNames { .. }
            | WriteOp::SaveHandover(_)
            | WriteOp::DeleteHandover { .. } => false,
            WriteOp::RecordFixes(rows) => rows.len() > 1,
            WriteOp::InsertGroup { members, .. } => members.is_some(),
            WriteOp::UpdateGroup { members, .. } => !matches!(members, MembersWrite::Unchanged),
            WriteOp::DeleteUser { .. } | WriteOp::DeleteGroup { .. } | WriteOp::Access(_) => true,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Outcome {
    Done,
    Existed(bool),
    /// The ids whose entity name claim succeeded.
    Claimed(Vec<Uuid>),
    /// The policy revision a change produced.
    Revision(u64),
}

impl Outcome {
    pub(super) fn existed(self) -> bool {
        matches!(self, Outcome::Existed(true))
    }

    pub(super) fn claimed(self) -> Vec<Uuid> {
        match self {
            Outcome::Claimed(ids) => ids,
            _ => Vec::new(),
        }
    }
}

pub(super) struct WriteRequest {
    pub op: WriteOp,
    pub reply: oneshot::Sender<StoreResult<Outcome>>,
}

/// The writer task: runs until every sender (every store handle) is gone.
/// After each group it nudges the checkpointer through `checkpoint`.
pub(super) async fn run(
    mut conn: SqliteConnection,
    mut requests: mpsc::Receiver<WriteRequest>,
    checkpoint: mpsc::Sender<()>,
    changes: DirectoryChanges,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while requests.recv_many(&mut group, MAX_GROUP).await > 0 {
        commit_group(&mut conn, &mut group, &changes).await;
        group.clear();
        // Full means a nudge is already pending.
        let _ = checkpoint.try_send(());
    }
    if let Err(err) = conn.close().await {
        tracing::warn!(error = %err, "closing the SQLite write connection failed");
    }
}

enum GroupFailure {
    /// Request `index` hit a storage error.
    Request(usize, String),
    /// Beginning or committing the transaction failed.
    Transaction(String),
}

async fn commit_group(
    conn: &mut SqliteConnection,
    group: &mut Vec<WriteRequest>,
    changes: &DirectoryChanges,
) {
    let mut retried = false;
    loop {
        let result = run_group(conn, group).await;
        // Before anyone hears back: a reader told "done" must find the
        // generation moved. A failed group changed nothing, but moving it
        // costs nothing either.
        changes.bump();
        match result {
            Ok(results) => {
                for (request, result) in group.drain(..).zip(results) {
                    // A caller that stopped waiting has nothing to hear.
                    let _ = request.reply.send(result);
                }
                return;
            }
            Err(GroupFailure::Request(index, message)) if !retried => {
                rollback(conn).await;
                retried = true;
                let failed = group.remove(index);
                let _ = failed.reply.send(Err(StoreError::Backend(message)));
            }
            Err(GroupFailure::Request(_, message) | GroupFailure::Transaction(message)) => {
                rollback(conn).await;
                tracing::warn!(error = %message, requests = group.len(), "a SQLite write group failed");
                for request in group.drain(..) {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Backend(message.clone())));
                }
                return;
            }
        }
    }
}

async fn run_group(
    conn: &mut SqliteConnection,
    group: &[WriteRequest],
) -> Result<Vec<StoreResult<Outcome>>, GroupFailure> {
    exec(conn, "BEGIN IMMEDIATE")
        .await
        .map_err(GroupFailure::Transaction)?;
    let mut results = Vec::with_capacity(group.len());
    for (index, request) in group.iter().enumerate() {
        let fail = |message: String| GroupFailure::Request(index, message);
        let guarded = request.op.needs_savepoint();
        if guarded {
            exec(conn, "SAVEPOINT request").await.map_err(fail)?;
        }
        match apply(conn, &request.op).await {
            Ok(outcome) => {
                if guarded {
                    exec(conn, "RELEASE request").await.map_err(fail)?;
                }
                results.push(Ok(outcome));
            }
            Err(StoreError::Backend(message)) => return Err(fail(message)),
            Err(refusal) => {
                if guarded {
                    exec(conn, "ROLLBACK TO request").await.map_err(fail)?;
                    exec(conn, "RELEASE request").await.map_err(fail)?;
                }
                results.push(Err(refusal));
            }
        }
    }
    exec(conn, "COMMIT")
        .await
        .map_err(GroupFailure::Transaction)?;
    Ok(results)
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), String> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
}

async fn rollback(conn: &mut SqliteConnection) {
    // Fails harmlessly if SQLite already ended the transaction.
    let _ = exec(conn, "ROLLBACK").await;
}

async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> StoreResult<Outcome> {
    match op {
        WriteOp::Access(op) => super::access::apply(conn, op).await,
        WriteOp::InsertUser(row) => insert_user(conn, row).await,
        WriteOp::UpdateUser { row, expected } => update_user(conn, row, *expected).await,
        WriteOp::DeleteUser { id, now } => delete_user(conn, *id, *now).await,
        WriteOp::InsertGroup { row, members } => insert_group(conn, row, members.as_deref()).await,
        WriteOp::UpdateGroup {
            row,
            expected,
            members,
        } => update_group(conn, row, *expected, members).await,
        WriteOp::DeleteGroup { id, now } => delete_group(conn, *id, *now).await,
        WriteOp::InsertToken(row) => insert_token(conn, row).await,
        WriteOp::RevokeToken { name, at } => revoke_token(conn, name, *at).await,
        WriteOp::ClaimEntityNames { table, claims } => {
            claim_entity_names(conn, *table, claims).await
        }
        WriteOp::SaveHandover(row) => save_handover(conn, row).await,
        WriteOp::DeleteHandover { user_id } => delete_handover(conn, *user_id).await,
        WriteOp::RecordFixes(rows) => record_fixes(conn, rows).await,
    }
}

fn blob(id: &Uuid) -> &[u8] {
    id.as_bytes().as_slice()
}

async fn insert_user(conn: &mut SqliteConnection, row: &UserRow) -> StoreResult<Outcome> {
    sqlx::query(
        "INSERT INTO users \
         (id, user_name_folded, external_id, display, active, version, created, last_modified, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(blob(&row.id))
    .bind(&row.user_name_folded)
    .bind(&row.external_id)
    .bind(&row.display)
    .bind(row.active)
    .bind(row.version)
    .bind(row.created)
    .bind(row.last_modified)
    .bind(&row.doc)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(Outcome::Done)
}

async fn update_user(
    conn: &mut SqliteConnection,
    row: &UserRow,
    expected: i64,
) -> StoreResult<Outcome> {
    let done = sqlx::query(
        "UPDATE users SET user_name_folded = ?1, external_id = ?2, display = ?3, active = ?4, \
         version = ?5, last_modified = ?6, doc = ?7 WHERE id = ?8 AND version = ?9",
    )
    .bind(&row.user_name_folded)
    .bind(&row.external_id)
    .bind(&row.display)
    .bind(row.active)
    .bind(row.version)
    .bind(row.last_modified)
    .bind(&row.doc)
    .bind(blob(&row.id))
    .bind(expected)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    if done.rows_affected() > 0 {
        return Ok(Outcome::Done);
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM users WHERE id = ?1")
        .bind(blob(&row.id))
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Err(not_updated(current)?)
}

/// Why a versioned `UPDATE` matched no row: the row is gone, or it is at
/// another version.
fn not_updated(current: Option<i64>) -> StoreResult<StoreError> {
    Ok(match current {
        None => StoreError::NotFound,
        Some(version) => StoreError::VersionMismatch {
            current: crate::rows::version_from_db(version)?,
        },
    })
}

async fn delete_user(conn: &mut SqliteConnection, id: Uuid, now: i64) -> StoreResult<Outcome> {
    let done = sqlx::query("DELETE FROM users WHERE id = ?1")
        .bind(blob(&id))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    if done.rows_affected() == 0 {
        return Ok(Outcome::Existed(false));
    }
    leave_all_groups(conn, id, now).await?;
    Ok(Outcome::Existed(true))
}

/// Removes `member` from every group it is in, bumping each such group's
/// version and `lastModified`.
async fn leave_all_groups(conn: &mut SqliteConnection, member: Uuid, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE groups SET version = version + 1, last_modified = ?2 \
         WHERE id IN (SELECT group_id FROM group_members WHERE member_id = ?1)",
    )
    .bind(blob(&member))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    sqlx::query("DELETE FROM group_members WHERE member_id = ?1")
        .bind(blob(&member))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_group(
    conn: &mut SqliteConnection,
    row: &GroupRow,
    members: Option<&str>,
) -> StoreResult<Outcome> {
    sqlx::query(
        "INSERT INTO groups \
         (id, display_name_folded, external_id, display, version, created, last_modified, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(blob(&row.id))
    .bind(&row.display_name_folded)
    .bind(&row.external_id)
    .bind(&row.display)
    .bind(row.version)
    .bind(row.created)
    .bind(row.last_modified)
    .bind(&row.doc)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    if let Some(members) = members {
        add_members(conn, row.id, members).await?;
    }
    Ok(Outcome::Done)
}

/// Adds members from a JSON `[[hex id, kind], ...]` list in one statement, in
/// list order. Members already present are left where they are; ids that name
/// no existing user or group (of the stated kind) are skipped, so a
/// membership can never outlive, or predate, its member.
async fn add_members(conn: &mut SqliteConnection, group: Uuid, members: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, member_id, member_kind) \
         SELECT ?1, m.id, m.kind FROM \
           (SELECT unhex(j.value ->> 0) AS id, j.value ->> 1 AS kind, j.key AS ord \
            FROM json_each(?2) AS j) AS m \
         WHERE CASE m.kind \
           WHEN 0 THEN EXISTS (SELECT 1 FROM users u WHERE u.id = m.id) \
           ELSE EXISTS (SELECT 1 FROM groups g WHERE g.id = m.id) END \
         ORDER BY m.ord \
         ON CONFLICT DO NOTHING",
    )
    .bind(blob(&group))
    .bind(members)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

async fn update_group(
    conn: &mut SqliteConnection,
    row: &GroupRow,
    expected: i64,
    members: &MembersWrite,
) -> StoreResult<Outcome> {
    let done = sqlx::query(
        "UPDATE groups SET display_name_folded = ?1, external_id = ?2, display = ?3, \
         version = ?4, last_modified = ?5, doc = ?6 WHERE id = ?7 AND version = ?8",
    )
    .bind(&row.display_name_folded)
    .bind(&row.external_id)
    .bind(&row.display)
    .bind(row.version)
    .bind(row.last_modified)
    .bind(&row.doc)
    .bind(blob(&row.id))
    .bind(expected)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    if done.rows_affected() == 0 {
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM groups WHERE id = ?1")
            .bind(blob(&row.id))
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_sqlx)?;
        return Err(not_updated(current)?);
    }
    match members {
        MembersWrite::Unchanged => {}
        MembersWrite::Delta { add, remove } => {
            // Removals first, so "remove X, add X" leaves X a member.
            if let Some(remove) = remove {
                sqlx::query(
                    "DELETE FROM group_members WHERE group_id = ?1 \
                     AND member_id IN (SELECT unhex(value) FROM json_each(?2))",
                )
                .bind(blob(&row.id))
                .bind(remove.as_str())
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
            }
            if let Some(add) = add {
                add_members(conn, row.id, add).await?;
            }
        }
        MembersWrite::Replace(all) => {
            sqlx::query("DELETE FROM group_members WHERE group_id = ?1")
                .bind(blob(&row.id))
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
            add_members(conn, row.id, all).await?;
        }
    }
    Ok(Outcome::Done)
}

async fn delete_group(conn: &mut SqliteConnection, id: Uuid, now: i64) -> StoreResult<Outcome> {
    // Its own memberships first (the foreign key would cascade, but one
    // indexed DELETE is cheaper than a per-row cascade).
    sqlx::query("DELETE FROM group_members WHERE group_id = ?1")
        .bind(blob(&id))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    let done = sqlx::query("DELETE FROM groups WHERE id = ?1")
        .bind(blob(&id))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    if done.rows_affected() == 0 {
        return Ok(Outcome::Existed(false));
    }
    leave_all_groups(conn, id, now).await?;
    Ok(Outcome::Existed(true))
}

async fn insert_token(conn: &mut SqliteConnection, row: &TokenRow) -> StoreResult<Outcome> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, scope, hash_hex, created, revoked) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(blob(&row.id))
    .bind(&row.name)
    .bind(row.scope)
    .bind(&row.hash_hex)
    .bind(row.created)
    .bind(row.revoked)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(Outcome::Done)
}

async fn revoke_token(conn: &mut SqliteConnection, name: &str, at: i64) -> StoreResult<Outcome> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL")
            .bind(name)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(map_sqlx)?;
    Ok(Outcome::Existed(done.rows_affected() > 0))
}

/// Sets each claimed name on a row that has none, unless another row holds
/// it. The single writer makes this race-free: no other claim can commit
/// between the check and the update. Claims arrive with distinct ids and
/// names, so rows updated earlier in the statement cannot matter.
///
/// The `+` keeps SQLite from driving the join from `entity_name IS NULL`
/// (every unnamed row, times every claim); it walks the claims and finds
/// each row by id instead.
async fn claim_entity_names(
    conn: &mut SqliteConnection,
    table: EntityTable,
    claims: &str,
) -> StoreResult<Outcome> {
    let sql = match table {
        EntityTable::Users => CLAIM_USERS,
        EntityTable::Groups => CLAIM_GROUPS,
    };
    let ids: Vec<String> = sqlx::query_scalar(sql)
        .bind(claims)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    ids.iter()
        .map(|hex| {
            Uuid::try_parse(hex)
                .map_err(|err| StoreError::Backend(format!("claimed id is invalid: {err}")))
        })
        .collect::<StoreResult<Vec<_>>>()
        .map(Outcome::Claimed)
}

macro_rules! claim_sql {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET entity_name = c.claim_name \
             FROM (SELECT unhex(j.value ->> 0) AS claim_id, j.value ->> 1 AS claim_name \
                   FROM json_each(?1) AS j) AS c \
             WHERE ",
            $table,
            ".id = c.claim_id AND +",
            $table,
            ".entity_name IS NULL \
             AND NOT EXISTS (SELECT 1 FROM ",
            $table,
            " AS taken WHERE taken.entity_name = c.claim_name) \
             RETURNING hex(id)"
        )
    };
}

const CLAIM_USERS: &str = claim_sql!("users");
const CLAIM_GROUPS: &str = claim_sql!("groups");

async fn save_handover(conn: &mut SqliteConnection, row: &HandoverRow) -> StoreResult<Outcome> {
    let sql = format!(
        "INSERT INTO handovers ({HANDOVER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         {HANDOVER_UPSERT_TAIL}"
    );
    let done = sqlx::query(&sql)
        .bind(blob(&row.user_id))
        .bind(&row.user_name)
        .bind(&row.entity_name)
        .bind(&row.successor)
        .bind(row.successor_id.as_ref().map(blob))
        .bind(row.reason)
        .bind(row.recorded_at)
        .bind(&row.recorded_by)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(Outcome::Existed(done.rows_affected() > 0))
}

async fn delete_handover(conn: &mut SqliteConnection, user_id: Uuid) -> StoreResult<Outcome> {
    let done = sqlx::query("DELETE FROM handovers WHERE user_id = ?1")
        .bind(blob(&user_id))
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(Outcome::Existed(done.rows_affected() > 0))
}

async fn record_fixes(conn: &mut SqliteConnection, rows: &[FixRow]) -> StoreResult<Outcome> {
    for row in rows {
        sqlx::query(
            "INSERT INTO reconcile_fixes \
             (applied_at, actor, finding, entity_ref, uid, action, outcome, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(row.applied_at)
        .bind(&row.actor)
        .bind(&row.finding)
        .bind(&row.entity_ref)
        .bind(&row.uid)
        .bind(&row.action)
        .bind(&row.outcome)
        .bind(&row.error)
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    }
    Ok(Outcome::Done)
}
