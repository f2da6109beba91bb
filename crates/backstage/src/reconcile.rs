//! Reconciliation of the directory against the live catalog.
//!
//! [`reconcile`] is a pure function: it takes a snapshot of the directory and
//! the catalog's User, Group and owned entities, and returns a [`Report`] of
//! findings, each with the facts behind it (evidence) and a proposed fix.
//! Nothing here calls Backstage; the CLI fetches the catalog with
//! [`crate::client::CatalogClient`], shows the report and, when asked,
//! applies the fixes Roster can apply with [`apply_fixes`].
//!
//! What counts as a finding, and why:
//!
//! - **Ghost user / ghost group**: a catalog User or Group that stands for no
//!   live directory record. An entity with a `roster.dev/scim-id` annotation
//!   is judged by that id alone (Roster published it, so the id is the truth
//!   and a name or email that happens to match means nothing). Any other
//!   entity is matched by name and email; when nothing matches it is
//!   reported as "not managed by Roster".
//! - **Deactivated user**: a catalog User matching a directory user whose
//!   `active` is false.
//! - **Duplicate**: two catalog Users for one person (same email, compared
//!   case-insensitively, or same `roster.dev/scim-id`). Sign-in resolvers
//!   that match on email fail when two users match.
//! - **Missing user**: an active directory user whose Backstage name is not
//!   in the catalog.
//! - **Dangling owner**: an entity whose `spec.owner` or `ownedBy` relation
//!   names a user or group that is gone, deactivated, or a ghost that the
//!   proposed fixes delete, with a proposed new owner (the manager, else the
//!   primary group, else the configured fallback owner; never one that is
//!   itself gone or deactivated). When Roster recorded a handover for the
//!   departed user ([`DirHandover`]), its successor comes first: it is the
//!   only candidate left once a deleted user's manager is forgotten, and a
//!   person may have chosen it.
//!
//! Each catalog entity gets at most one of the first three findings (ghost,
//! then deactivated, then duplicate), so no two fixes act on one entity.
//!
//! Performance: every lookup goes through a hash map keyed by a lowercase
//! id, ref, name or email, so the work is linear in the size of the inputs
//! (100,000 users against 150,000 entities: see `examples/reconcile_bench.rs`).

mod apply;
mod catalog;
mod engine;
mod render;

use std::fmt;

use serde::Serialize;

pub use apply::{apply_fixes, plan_fixes, AppliedFix, CatalogWriter, Outcome};
pub use catalog::{CatalogEntity, EntityJsonError, EntityRef, Relation, CATALOG_FIELDS};
pub use render::{render_csv, render_json, render_table, write_csv};

/// Annotation keys the reconciler reads.
pub mod annotations {
    /// The SCIM id of the directory record an entity was published from.
    pub const SCIM_ID: &str = "roster.dev/scim-id";
    /// The identity provider's id for the record (SCIM `externalId`).
    pub const EXTERNAL_ID: &str = "roster.dev/external-id";
    /// `active` or a deactivated state, as the feed published it.
    pub const STATUS: &str = "roster.dev/status";
    /// Set by the catalog to the string `"true"` when nothing emits the entity.
    pub const ORPHAN: &str = "backstage.io/orphan";
    /// Set by the catalog: the `type:target` location that emits the entity.
    pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
}

/// The directory as the reconciler needs it: ids, assigned Backstage names,
/// emails, state and the links used to find a new owner. Built from the store
/// by the caller; plain data so that tests and benchmarks can build it too.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirectorySnapshot {
    pub users: Vec<DirUser>,
    pub groups: Vec<DirGroup>,
    /// Who takes over from offboarded users (Roster's handover map): the
    /// proposed new owner of what they owned, ahead of any other candidate.
    pub handovers: Vec<DirHandover>,
}

/// A recorded ownership handover: what Roster kept of a deleted or
/// deactivated user, and who takes over their entities.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirHandover {
    /// The offboarded user's SCIM id (what `roster.dev/scim-id` carried).
    pub user_id: String,
    pub user_name: String,
    /// The user's Backstage name, if it was ever published.
    pub entity_name: Option<String>,
    /// An entity ref of kind user or group.
    pub successor: String,
    /// `manager`, `primary-group`, `fallback` or `manual`.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirUser {
    /// The SCIM id, also published as `roster.dev/scim-id`.
    pub id: String,
    pub user_name: String,
    /// The Backstage name assigned to the user, if one has been assigned.
    pub entity_name: Option<String>,
    /// The primary email.
    pub email: Option<String>,
    pub active: bool,
    /// The SCIM id of the user's manager (Enterprise extension `manager.value`).
    pub manager_id: Option<String>,
    pub external_id: Option<String>,
    /// Ids of the groups the user is a direct member of; the first is the
    /// user's primary group.
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirGroup {
    /// The SCIM id, also published as `roster.dev/scim-id`.
    pub id: String,
    pub display_name: String,
    /// The Backstage name assigned to the group, if one has been assigned.
    pub entity_name: Option<String>,
    pub member_ids: Vec<String>,
}

/// Where Roster publishes and what to propose when nothing else fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// The namespace Roster's feed publishes users and groups in.
    pub namespace: String,
    /// An entity ref (kind defaults to Group) proposed as owner when a gone
    /// owner has no live manager or group.
    pub fallback_owner: Option<String>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            namespace: "default".to_owned(),
            fallback_owner: None,
        }
    }
}

/// What kind of disagreement a finding reports. The order is the report's
/// order: entity-level findings first, then the directory's side, then
/// ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    GhostUser,
    GhostGroup,
    DeactivatedUser,
    Duplicate,
    MissingUser,
    DanglingOwner,
}

impl FindingKind {
    pub const ALL: [FindingKind; 6] = [
        FindingKind::GhostUser,
        FindingKind::GhostGroup,
        FindingKind::DeactivatedUser,
        FindingKind::Duplicate,
        FindingKind::MissingUser,
        FindingKind::DanglingOwner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::GhostUser => "ghost-user",
            FindingKind::GhostGroup => "ghost-group",
            FindingKind::DeactivatedUser => "deactivated-user",
            FindingKind::Duplicate => "duplicate",
            FindingKind::MissingUser => "missing-user",
            FindingKind::DanglingOwner => "dangling-owner",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is about: a catalog entity, a directory record, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// The entity (for a missing user: the ref the feed publishes it as).
    pub entity_ref: Option<EntityRef>,
    pub uid: Option<String>,
    /// The directory record's SCIM id, when one is involved.
    pub directory_id: Option<String>,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.entity_ref, &self.directory_id) {
            (Some(entity_ref), _) => write!(f, "{entity_ref}"),
            (None, Some(id)) => write!(f, "directory user {id}"),
            (None, None) => f.write_str("-"),
        }
    }
}

/// A change that would resolve a finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum FixAction {
    /// `DELETE /entities/by-uid/{uid}`.
    DeleteEntity { uid: String, entity_ref: EntityRef },
    /// `POST /refresh` for the entity, which makes the catalog re-read the
    /// location that emits it.
    RefreshLocation {
        entity_ref: EntityRef,
        location: Option<String>,
    },
    /// Set `spec.owner` to `to`. Owners live in YAML files Roster does not
    /// write, so a person has to make this change.
    ChangeOwner {
        entity_ref: EntityRef,
        from: EntityRef,
        to: Option<EntityRef>,
    },
    /// The feed lists the user; Backstage adds it at its next read.
    PublishUser { id: String },
    /// Nothing Roster could do or propose; the instructions say what a
    /// person can do.
    None,
}

impl FixAction {
    pub fn name(&self) -> &'static str {
        match self {
            FixAction::DeleteEntity { .. } => "delete-entity",
            FixAction::RefreshLocation { .. } => "refresh-location",
            FixAction::ChangeOwner { .. } => "change-owner",
            FixAction::PublishUser { .. } => "publish-user",
            FixAction::None => "none",
        }
    }
}

impl fmt::Display for FixAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixAction::DeleteEntity { uid, entity_ref } => {
                write!(f, "delete {entity_ref} (uid {uid})")
            }
            FixAction::RefreshLocation { entity_ref, .. } => write!(f, "refresh {entity_ref}"),
            FixAction::ChangeOwner { from, to, .. } => match to {
                Some(to) => write!(f, "change owner {from} -> {to}"),
                None => write!(f, "change owner {from} -> (none found)"),
            },
            FixAction::PublishUser { id } => write!(f, "publish directory user {id}"),
            FixAction::None => f.write_str("none"),
        }
    }
}

/// A fix with whether Roster can carry it out through the catalog API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedFix {
    #[serde(flatten)]
    pub action: FixAction,
    /// True when `apply` may run it; false when it needs a person (or, for
    /// a published user, only time).
    pub applicable: bool,
    /// What a person should do, or what to expect after applying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub subject: Subject,
    /// Facts a person can check, one sentence each: which annotation, which
    /// directory record, the orphan flag, the location.
    pub evidence: Vec<String>,
    pub fix: ProposedFix,
}

/// Counts for the report's last line and for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub directory_users: usize,
    pub directory_groups: usize,
    pub catalog_entities: usize,
    pub ghost_users: usize,
    pub ghost_groups: usize,
    pub deactivated_users: usize,
    pub duplicates: usize,
    pub missing_users: usize,
    pub dangling_owners: usize,
    /// Findings whose fix `apply` can carry out.
    pub applicable_fixes: usize,
    /// Findings whose fix needs a person.
    pub manual_fixes: usize,
}

impl Summary {
    pub fn count(&self, kind: FindingKind) -> usize {
        match kind {
            FindingKind::GhostUser => self.ghost_users,
            FindingKind::GhostGroup => self.ghost_groups,
            FindingKind::DeactivatedUser => self.deactivated_users,
            FindingKind::Duplicate => self.duplicates,
            FindingKind::MissingUser => self.missing_users,
            FindingKind::DanglingOwner => self.dangling_owners,
        }
    }

    pub fn findings(&self) -> usize {
        FindingKind::ALL.iter().map(|kind| self.count(*kind)).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Sorted by kind, then subject, then fix: the same inputs in any order
    /// give the same report.
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Compares the directory with the catalog. `catalog` should hold every User
/// and Group entity and every entity with an owner (fetch with
/// [`CATALOG_FIELDS`]); entities of other kinds are only read for ownership.
pub fn reconcile(
    directory: &DirectorySnapshot,
    catalog: &[CatalogEntity],
    config: &ReconcileConfig,
) -> Report {
    engine::run(directory, catalog, config)
}
