//! Access control's storage (migration 0004): custom roles (as their
//! policy-document JSON), assignments, the record of every change, and a
//! revision number that every change bumps, so replicas notice changes by
//! reading one integer.

use async_trait::async_trait;
use roster_authz::Subject;
use roster_domain::{GroupId, MemberKind, UserId};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreResult;

/// A custom role as stored: its name and its document (the JSON of
/// `roster_authz::RoleDocument`, validated before it was written).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRole {
    pub name: String,
    pub document: Value,
    pub updated_at: OffsetDateTime,
}

/// A role assignment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAssignment {
    pub id: Uuid,
    pub role: String,
    pub subject: Subject,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// Everything the policy is made of, at one revision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessSnapshot {
    pub revision: u64,
    pub roles: Vec<StoredRole>,
    pub assignments: Vec<StoredAssignment>,
}

/// One change to the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessWrite {
    /// Creates or replaces a custom role.
    PutRole {
        name: String,
        document: Value,
    },
    DeleteRole {
        name: String,
    },
    AddAssignment(StoredAssignment),
    DeleteAssignment {
        id: Uuid,
    },
    /// Replaces every custom role and every assignment.
    ReplaceAll {
        roles: Vec<(String, Value)>,
        assignments: Vec<StoredAssignment>,
    },
}

/// What the change record says about one change: who, what, on what, and
/// the before and after (JSON documents; `None` for "did not exist").
#[derive(Debug, Clone, PartialEq)]
pub struct AccessChange {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessChangeRecord {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub revision: u64,
    pub change: AccessChange,
}

/// A user as a decision needs them: found by entity name, with every
/// group they are in through nesting.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessSubject {
    pub id: UserId,
    pub active: bool,
    /// Each group once, at its smallest depth (1 = direct), with its entity
    /// name if one was claimed. Ordered by depth, then id.
    pub groups: Vec<(GroupId, u32, Option<String>)>,
}

#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// The policy revision: bumped by every change, never reused.
    async fn access_revision(&self) -> StoreResult<u64>;
    /// Roles, assignments and the revision they are at, read together.
    async fn access_snapshot(&self) -> StoreResult<AccessSnapshot>;
    /// Applies `writes` and records `changes` in one transaction, if the
    /// policy is still at `expected_revision`; otherwise nothing happens and
    /// the answer is `StoreError::VersionMismatch` with the current revision.
    /// Returns the new revision.
    async fn write_access(
        &self,
        expected_revision: u64,
        writes: Vec<AccessWrite>,
        changes: Vec<AccessChange>,
        at: OffsetDateTime,
    ) -> StoreResult<u64>;
    /// The most recent changes, newest first.
    async fn access_changes(&self, limit: u32) -> StoreResult<Vec<AccessChangeRecord>>;
    /// The user whose entity name is `entity_name` (lowercase), with their
    /// groups through nesting up to `max_depth` levels (cycles are fine).
    async fn access_subject(
        &self,
        entity_name: &str,
        max_depth: u32,
    ) -> StoreResult<Option<AccessSubject>>;
    /// The user or group whose entity name is `entity_name` (lowercase).
    async fn id_by_entity_name(
        &self,
        kind: MemberKind,
        entity_name: &str,
    ) -> StoreResult<Option<Uuid>>;
}

/// How a subject is stored: a kind column (`user`/`group`) and the id.
pub(crate) fn subject_columns(subject: &Subject) -> (&'static str, Uuid) {
    match subject {
        Subject::User(id) => ("user", id.as_uuid()),
        Subject::Group(id) => ("group", id.as_uuid()),
    }
}

pub(crate) fn subject_from_columns(kind: &str, id: Uuid) -> StoreResult<Subject> {
    match kind {
        "user" => Ok(Subject::User(UserId::from_uuid(id))),
        "group" => Ok(Subject::Group(GroupId::from_uuid(id))),
        other => Err(crate::StoreError::Backend(format!(
            "stored assignment subject kind {other:?} is unknown"
        ))),
    }
}
