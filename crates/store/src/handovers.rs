//! Ownership handovers and the record of applied reconcile fixes: what both
//! implementations store in the `handovers` and `reconcile_fixes` tables
//! (migration 0003), and the conversions to and from their columns.

use std::fmt;
use std::str::FromStr;

use roster_domain::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{from_millis, to_millis};
use crate::{StoreError, StoreResult};

/// Why a successor was chosen for an offboarded user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandoverReason {
    /// The user's manager (Enterprise extension `manager.value`).
    Manager,
    /// The user's first group.
    PrimaryGroup,
    /// `[backstage] fallback_owner`: no manager or group could take over.
    Fallback,
    /// Set by a person through the admin API; never replaced automatically.
    Manual,
}

impl HandoverReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoverReason::Manager => "manager",
            HandoverReason::PrimaryGroup => "primary-group",
            HandoverReason::Fallback => "fallback",
            HandoverReason::Manual => "manual",
        }
    }
}

impl fmt::Display for HandoverReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HandoverReason {
    type Err = StoreError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "manager" => Ok(HandoverReason::Manager),
            "primary-group" => Ok(HandoverReason::PrimaryGroup),
            "fallback" => Ok(HandoverReason::Fallback),
            "manual" => Ok(HandoverReason::Manual),
            other => Err(StoreError::Backend(format!(
                "stored handover reason {other:?} is unknown"
            ))),
        }
    }
}

/// Who takes over the catalog entities of an offboarded (deleted or
/// deactivated) user. Keeps what is needed after the user row is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub user_id: UserId,
    pub user_name: String,
    /// The user's Backstage `metadata.name`, if it was ever published.
    pub entity_name: Option<String>,
    /// A Backstage entity ref of kind user or group, e.g.
    /// `user:default/jane.doe`.
    pub successor: String,
    /// The successor's Roster id, when it is a directory user or group.
    pub successor_id: Option<Uuid>,
    pub reason: HandoverReason,
    pub recorded_at: OffsetDateTime,
    /// A token name, or `scim` for a choice made during a SCIM write.
    pub recorded_by: String,
}

/// One fix `reconcile --apply` carried out against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileFix {
    pub applied_at: OffsetDateTime,
    /// The admin token's name, or `cli`.
    pub actor: String,
    /// The finding kind, e.g. `ghost-user`.
    pub finding: String,
    pub entity_ref: Option<String>,
    pub uid: Option<String>,
    /// The fix's action, e.g. `delete-entity`.
    pub action: String,
    /// What happened: `deleted`, `already-gone`, `refreshed`, `failed`,
    /// `not-attempted`.
    pub outcome: String,
    /// Why it failed or was not attempted.
    pub error: Option<String>,
}

impl ReconcileFix {
    /// Whether the fix reached its goal.
    pub fn ok(&self) -> bool {
        matches!(
            self.outcome.as_str(),
            "deleted" | "already-gone" | "refreshed"
        )
    }
}

/// A handover as columns; ids as UUIDs (each backend binds them its way).
#[derive(Debug)]
pub(crate) struct HandoverRow {
    pub user_id: Uuid,
    pub user_name: String,
    pub entity_name: Option<String>,
    pub successor: String,
    pub successor_id: Option<Uuid>,
    pub reason: &'static str,
    pub recorded_at: i64,
    pub recorded_by: String,
}

impl HandoverRow {
    pub fn from_handover(handover: &Handover) -> StoreResult<Self> {
        Ok(Self {
            user_id: handover.user_id.as_uuid(),
            user_name: handover.user_name.clone(),
            entity_name: handover.entity_name.clone(),
            successor: handover.successor.clone(),
            successor_id: handover.successor_id,
            reason: handover.reason.as_str(),
            recorded_at: to_millis(handover.recorded_at)?,
            recorded_by: handover.recorded_by.clone(),
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn handover_from_parts(
    user_id: Uuid,
    user_name: String,
    entity_name: Option<String>,
    successor: String,
    successor_id: Option<Uuid>,
    reason: &str,
    recorded_at: i64,
    recorded_by: String,
) -> StoreResult<Handover> {
    Ok(Handover {
        user_id: UserId::from_uuid(user_id),
        user_name,
        entity_name,
        successor,
        successor_id,
        reason: reason.parse()?,
        recorded_at: from_millis(recorded_at)?,
        recorded_by,
    })
}

/// A fix record as columns.
#[derive(Debug)]
pub(crate) struct FixRow {
    pub applied_at: i64,
    pub actor: String,
    pub finding: String,
    pub entity_ref: Option<String>,
    pub uid: Option<String>,
    pub action: String,
    pub outcome: String,
    pub error: Option<String>,
}

impl FixRow {
    pub fn from_fix(fix: &ReconcileFix) -> StoreResult<Self> {
        Ok(Self {
            applied_at: to_millis(fix.applied_at)?,
            actor: fix.actor.clone(),
            finding: fix.finding.clone(),
            entity_ref: fix.entity_ref.clone(),
            uid: fix.uid.clone(),
            action: fix.action.clone(),
            outcome: fix.outcome.clone(),
            error: fix.error.clone(),
        })
    }

    pub fn into_fix(self) -> StoreResult<ReconcileFix> {
        Ok(ReconcileFix {
            applied_at: from_millis(self.applied_at)?,
            actor: self.actor,
            finding: self.finding,
            entity_ref: self.entity_ref,
            uid: self.uid,
            action: self.action,
            outcome: self.outcome,
            error: self.error,
        })
    }
}

/// The `SET` of an upsert into `handovers`: everything but the key. The
/// `WHERE` on the conflict branch keeps a manual handover unless the new
/// one is manual too (both backends share the SQL; the parameter is the
/// new row's reason).
pub(crate) const HANDOVER_UPSERT_TAIL: &str = "ON CONFLICT (user_id) DO UPDATE SET \
     user_name = excluded.user_name, entity_name = excluded.entity_name, \
     successor = excluded.successor, successor_id = excluded.successor_id, \
     reason = excluded.reason, recorded_at = excluded.recorded_at, \
     recorded_by = excluded.recorded_by \
     WHERE handovers.reason <> 'manual' OR excluded.reason = 'manual'";

pub(crate) const HANDOVER_COLUMNS: &str =
    "user_id, user_name, entity_name, successor, successor_id, reason, recorded_at, recorded_by";

pub(crate) const FIX_COLUMNS: &str =
    "applied_at, actor, finding, entity_ref, uid, action, outcome, error";
