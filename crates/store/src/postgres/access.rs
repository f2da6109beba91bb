//! [`AccessStore`] on PostgreSQL. A policy change locks the revision row
//! first, so concurrent changes from several replicas apply one at a time
//! and each sees the revision the other left.

use async_trait::async_trait;
use roster_domain::{GroupId, MemberKind, UserId, Version};
use sqlx::postgres::PgConnection;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgUuid, PostgresStore};
use crate::access::{
    subject_columns, subject_from_columns, AccessChange, AccessChangeRecord, AccessSnapshot,
    AccessStore, AccessSubject, AccessWrite, StoredAssignment, StoredRole,
};
use crate::rows::{from_millis, map_sqlx, to_millis};
use crate::{StoreError, StoreResult};

fn revision_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn parse_json(text: Option<String>) -> StoreResult<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(StoreError::backend))
        .transpose()
}

async fn apply_write(conn: &mut PgConnection, write: &AccessWrite, at: i64) -> StoreResult<()> {
    match write {
        AccessWrite::PutRole { name, document } => put_role(conn, name, document, at).await,
        AccessWrite::DeleteRole { name } => {
            sqlx::query("DELETE FROM access_roles WHERE name = $1")
                .bind(name)
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
            Ok(())
        }
        AccessWrite::AddAssignment(assignment) => insert_assignment(conn, assignment).await,
        AccessWrite::DeleteAssignment { id } => {
            sqlx::query("DELETE FROM access_assignments WHERE id = $1")
                .bind(PgUuid(*id))
                .execute(&mut *conn)
                .await
                .map_err(map_sqlx)?;
            Ok(())
        }
        AccessWrite::ReplaceAll { roles, assignments } => {
            for sql in ["DELETE FROM access_assignments", "DELETE FROM access_roles"] {
                sqlx::query(sql)
                    .execute(&mut *conn)
                    .await
                    .map_err(map_sqlx)?;
            }
            for (name, document) in roles {
                put_role(conn, name, document, at).await?;
            }
            for assignment in assignments {
                insert_assignment(conn, assignment).await?;
            }
            Ok(())
        }
    }
}

async fn put_role(
    conn: &mut PgConnection,
    name: &str,
    document: &serde_json::Value,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_roles (name, doc, updated) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated",
    )
    .bind(name)
    .bind(document.to_string())
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_assignment(
    conn: &mut PgConnection,
    assignment: &StoredAssignment,
) -> StoreResult<()> {
    let (kind, subject) = subject_columns(&assignment.subject);
    sqlx::query(
        "INSERT INTO access_assignments (id, role, subject_kind, subject_id, expires, created, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (role, subject_kind, subject_id) DO UPDATE SET expires = excluded.expires",
    )
    .bind(PgUuid(assignment.id))
    .bind(&assignment.role)
    .bind(kind)
    .bind(PgUuid(subject))
    .bind(assignment.expires_at.map(to_millis).transpose()?)
    .bind(to_millis(assignment.created_at)?)
    .bind(&assignment.created_by)
    .execute(&mut *conn)
    .await
    .map_err(map_sqlx)?;
    Ok(())
}

/// See the SQLite twin: `UNION` plus the depth bound make cycles finite.
const SUBJECT_GROUPS: &str = "\
WITH RECURSIVE closure (gid, depth) AS ( \
    SELECT group_id, 1 FROM group_members WHERE member_id = $1 \
    UNION \
    SELECT gm.group_id, c.depth + 1 FROM closure c \
    JOIN group_members gm ON gm.member_id = c.gid WHERE c.depth < $2 \
) \
SELECT c.gid AS gid, MIN(c.depth)::BIGINT AS depth, g.entity_name AS entity_name \
FROM closure c JOIN groups g ON g.id = c.gid \
GROUP BY c.gid, g.entity_name ORDER BY depth, c.gid";

#[async_trait]
impl AccessStore for PostgresStore {
    async fn access_revision(&self) -> StoreResult<u64> {
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM access_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(revision_of(revision))
    }

    async fn access_snapshot(&self) -> StoreResult<AccessSnapshot> {
        // REPEATABLE READ: the three reads see one revision.
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM access_revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let roles = sqlx::query("SELECT name, doc, updated FROM access_roles ORDER BY name")
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::backend)?
            .into_iter()
            .map(|row| {
                Ok(StoredRole {
                    name: row.get("name"),
                    document: serde_json::from_str(row.get::<&str, _>("doc"))
                        .map_err(StoreError::backend)?,
                    updated_at: from_millis(row.get("updated"))?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let assignments = sqlx::query(
            "SELECT id, role, subject_kind, subject_id, expires, created, created_by \
             FROM access_assignments ORDER BY seq",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::backend)?
        .into_iter()
        .map(|row| {
            Ok(StoredAssignment {
                id: row.get::<PgUuid, _>("id").0,
                role: row.get("role"),
                subject: subject_from_columns(
                    row.get("subject_kind"),
                    row.get::<PgUuid, _>("subject_id").0,
                )?,
                expires_at: row
                    .get::<Option<i64>, _>("expires")
                    .map(from_millis)
                    .transpose()?,
                created_at: from_millis(row.get("created"))?,
                created_by: row.get("created_by"),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(AccessSnapshot {
            revision: revision_of(revision),
            roles,
            assignments,
        })
    }

    async fn write_access(
        &self,
        expected_revision: u64,
        writes: Vec<AccessWrite>,
        changes: Vec<AccessChange>,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        let at = to_millis(at)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let current: i64 =
            sqlx::query_scalar("SELECT revision FROM access_revision WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        if revision_of(current) != expected_revision {
            return Err(StoreError::VersionMismatch {
                current: Version(revision_of(current)),
            });
        }
        let next = current + 1;
        for write in &writes {
            apply_write(&mut tx, write, at).await?;
        }
        sqlx::query("UPDATE access_revision SET revision = $1 WHERE id = 1")
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        for change in &changes {
            sqlx::query(
                "INSERT INTO access_changes (at, revision, actor, action, target, before_doc, after_doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(at)
            .bind(next)
            .bind(&change.actor)
            .bind(&change.action)
            .bind(&change.target)
            .bind(change.before.as_ref().map(serde_json::Value::to_string))
            .bind(change.after.as_ref().map(serde_json::Value::to_string))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(revision_of(next))
    }

    async fn access_changes(&self, limit: u32) -> StoreResult<Vec<AccessChangeRecord>> {
        sqlx::query(
            "SELECT seq, at, revision, actor, action, target, before_doc, after_doc \
             FROM access_changes ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?
        .into_iter()
        .map(|row| {
            Ok(AccessChangeRecord {
                seq: row.get("seq"),
                at: from_millis(row.get("at"))?,
                revision: revision_of(row.get("revision")),
                change: AccessChange {
                    actor: row.get("actor"),
                    action: row.get("action"),
                    target: row.get("target"),
                    before: parse_json(row.get("before_doc"))?,
                    after: parse_json(row.get("after_doc"))?,
                },
            })
        })
        .collect()
    }

    async fn access_subject(
        &self,
        entity_name: &str,
        max_depth: u32,
    ) -> StoreResult<Option<AccessSubject>> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::backend)?;
        let Some(user) = sqlx::query("SELECT id, active FROM users WHERE entity_name = $1")
            .bind(entity_name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::backend)?
        else {
            return Ok(None);
        };
        let id = user.get::<PgUuid, _>("id").0;
        let groups = sqlx::query(SUBJECT_GROUPS)
            .bind(PgUuid(id))
            .bind(i32::try_from(max_depth).unwrap_or(i32::MAX))
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::backend)?
            .into_iter()
            .map(|row| {
                (
                    GroupId::from_uuid(row.get::<PgUuid, _>("gid").0),
                    u32::try_from(row.get::<i64, _>("depth")).unwrap_or(u32::MAX),
                    row.get::<Option<String>, _>("entity_name"),
                )
            })
            .collect();
        Ok(Some(AccessSubject {
            id: UserId::from_uuid(id),
            active: user.get::<bool, _>("active"),
            groups,
        }))
    }

    async fn id_by_entity_name(
        &self,
        kind: MemberKind,
        entity_name: &str,
    ) -> StoreResult<Option<Uuid>> {
        let sql = match kind {
            MemberKind::User => "SELECT id FROM users WHERE entity_name = $1",
            MemberKind::Group => "SELECT id FROM groups WHERE entity_name = $1",
        };
        Ok(sqlx::query_scalar::<_, PgUuid>(sql)
            .bind(entity_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .map(|id| id.0))
    }
}
