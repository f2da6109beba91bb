//! Roster's storage.
//!
//! [`Store`] is the one interface the rest of Roster persists through. It has
//! two implementations, [`SqliteStore`] (the embedded default) and
//! [`PostgresStore`] (for several replicas), which pass one shared test suite
//! (`tests/store_suite.rs`). Migrations are embedded in the binary, numbered
//! and forward-only; [`open`] runs them and refuses a database written by a
//! newer Roster.
//!
//! Every method is one transaction. Writes are acknowledged only after they
//! are durable (SQLite: WAL with `synchronous=FULL`, commits grouped by a
//! single writer; PostgreSQL: an ordinary commit).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use roster_domain::{
    ApiToken, Group, GroupId, Member, MemberKind, TokenHash, TokenName, User, UserId, Version,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub mod access;
mod changes;
mod handovers;
mod postgres;
mod rows;
mod sqlite;

pub use access::{
    AccessChange, AccessChangeRecord, AccessSnapshot, AccessStore, AccessSubject, AccessWrite,
    StoredAssignment, StoredRole,
};
pub use changes::DirectoryChanges;
pub use handovers::{Handover, HandoverReason, ReconcileFix};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    UserName,
    GroupDisplayName,
    TokenName,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} is already taken")]
    Conflict(UniqueField),
    #[error("no such resource")]
    NotFound,
    /// The resource changed since the version the write was based on.
    #[error("the resource is at version {current}, not the expected one")]
    VersionMismatch { current: Version },
    #[error("the database was written by a newer Roster (it has migration {found}, this binary knows up to {known}); upgrade Roster or point it at another database")]
    DatabaseTooNew { found: i64, known: i64 },
    /// Anything the database or driver reported. Opaque to callers on purpose:
    /// it is logged once and answered as an internal error.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        StoreError::Backend(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How to select users. Ordering is always by creation (a stable order, so
/// paging with offsets never skips or repeats a resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserQuery {
    /// Every user, optionally a page of them.
    All {
        offset: u64,
        limit: Option<u64>,
    },
    /// The user with this `userName`, compared case-insensitively.
    ByUserName(String),
    /// Users with exactly this `externalId`.
    ByExternalId(String),
    ByIds(Vec<UserId>),
}

/// How to select groups; ordered by creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupQuery {
    All {
        offset: u64,
        limit: Option<u64>,
    },
    /// The group with this `displayName`, compared case-insensitively.
    ByDisplayName(String),
    ByExternalId(String),
    ByIds(Vec<GroupId>),
}

/// A group a user belongs to directly, for the user's `groups` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: GroupId,
    pub display_name: String,
}

/// What a group update does to its members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MembershipChange {
    #[default]
    Unchanged,
    /// Add and remove individual members; cost independent of group size.
    /// Adding a present member or removing an absent one is not an error.
    /// Removals are applied before additions.
    Delta { add: Vec<Member>, remove: Vec<Uuid> },
    /// Set the member list to exactly this.
    Replace(Vec<Member>),
}

/// A place in creation order, for walking every user or group page by page.
/// Keyset paging: unlike an offset, it never skips or repeats a resource
/// when others are created or deleted during the walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(i64);

impl Position {
    /// Before the first resource.
    pub const START: Position = Position(0);
}

/// One page of a walk in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page was the last.
    pub next: Option<Position>,
}

/// A user as the Backstage catalog feed reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogUser {
    pub user: User,
    /// The persisted entity name (lowercase), if one was claimed.
    pub entity_name: Option<String>,
    /// The groups it belongs to directly, in no particular order.
    pub groups: Vec<GroupId>,
}

/// A group as the Backstage catalog feed reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogGroup {
    pub group: Group,
    pub entity_name: Option<String>,
    /// Its user members, in the order they were added. (Member groups are
    /// in [`GroupGraph`].)
    pub members: Vec<CatalogMember>,
}

/// A user member of a group: just what the catalog needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMember {
    pub id: UserId,
    pub entity_name: Option<String>,
    pub active: bool,
}

/// Every group's entity name and which groups contain which: small (one
/// row per group and per nested membership), read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupGraph {
    /// Every group in creation order, with its entity name if claimed.
    pub groups: Vec<(GroupId, Option<String>)>,
    /// `(parent, child)` for every group that is a member of another, in
    /// the parent's creation order, then the order the child was added.
    pub edges: Vec<(GroupId, GroupId)>,
}

/// An opaque value that changes whenever anything the catalog feed shows
/// changes: a user or group created, changed or deleted, or a membership
/// added or removed (which bumps the group's version). Equal fingerprints
/// mean the same directory, on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectoryFingerprint(String);

impl DirectoryFingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The persistence interface. See the crate docs for the guarantees.
#[async_trait]
pub trait Store: access::AccessStore + Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// The directory's change generation: moves on every committed write,
    /// so what is derived from the directory can be cached until it does.
    fn directory_changes(&self) -> DirectoryChanges;

    /// Inserts a new user. `Conflict(UserName)` if the (case-folded)
    /// `userName` is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Replaces a user's record with `user` (whose `meta.version` is the new
    /// version) if the stored version is `expected`; otherwise
    /// `VersionMismatch`, or `NotFound` if it is gone.
    async fn update_user(&self, user: &User, expected: Version) -> StoreResult<()>;
    /// Deletes a user and every membership of it, bumping the version of each
    /// group it left. Returns whether it existed.
    async fn delete_user(&self, id: UserId, now: OffsetDateTime) -> StoreResult<bool>;
    async fn find_users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// Users selected by `query`, each with the groups it belongs to
    /// directly: what a SCIM read returns. Backends answer it in one round
    /// trip where they can; the default asks twice.
    async fn find_users_with_groups(
        &self,
        query: &UserQuery,
    ) -> StoreResult<Vec<(User, Vec<GroupRef>)>> {
        let users = self.find_users(query).await?;
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        let mut groups = self.groups_of_users(&ids).await?;
        Ok(users
            .into_iter()
            .map(|u| {
                let g = groups.remove(&u.id).unwrap_or_default();
                (u, g)
            })
            .collect())
    }
    async fn count_users(&self) -> StoreResult<u64>;
    /// The groups each of `ids` belongs to directly, in group creation
    /// order. Every id in `ids` has an entry (empty if it is in no group).
    async fn groups_of_users(&self, ids: &[UserId]) -> StoreResult<HashMap<UserId, Vec<GroupRef>>>;

    /// Inserts a new group with its members. `Conflict(GroupDisplayName)` if
    /// the name is taken. Members must exist (see [`Store::existing_members`]);
    /// any that do not (with the stated kind) when the write commits are
    /// skipped here and by [`Store::update_group`], so no membership outlives
    /// its member.
    async fn insert_group(&self, group: &Group, members: &[Member]) -> StoreResult<()>;
    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    /// A group's members in a stable order, with `display` filled in from
    /// each member's current record.
    async fn group_members(&self, id: GroupId) -> StoreResult<Vec<Member>>;
    /// [`Store::group_members`] for several groups at once. Every id in
    /// `ids` has an entry (empty if the group has no members or is unknown).
    async fn members_of_groups(
        &self,
        ids: &[GroupId],
    ) -> StoreResult<HashMap<GroupId, Vec<Member>>>;
    /// Updates a group's attributes and members in one transaction, if the
    /// stored version is `expected`.
    async fn update_group(
        &self,
        group: &Group,
        expected: Version,
        members: &MembershipChange,
    ) -> StoreResult<()>;
    /// Deletes a group (and its memberships, including in other groups).
    async fn delete_group(&self, id: GroupId, now: OffsetDateTime) -> StoreResult<bool>;
    async fn find_groups(&self, query: &GroupQuery) -> StoreResult<Vec<Group>>;
    async fn count_groups(&self) -> StoreResult<u64>;
    /// Which of these ids name an existing user or group, and which kind.
    async fn existing_members(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, MemberKind>>;

    /// Stores a new token. `Conflict(TokenName)` if an active token has the name.
    async fn insert_token(&self, token: &ApiToken) -> StoreResult<()>;
    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// Revokes the active token with this name; returns whether there was one.
    async fn revoke_token(&self, name: &TokenName, at: OffsetDateTime) -> StoreResult<bool>;
    /// The token (active or revoked) whose secret hashes to `hash`.
    async fn find_token(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>>;

    // ----- Backstage entity names and the catalog feed ------------------

    /// Users that have no entity name yet, oldest first, at most `limit`.
    async fn users_without_entity_name(&self, limit: u64) -> StoreResult<Vec<User>>;
    /// Groups that have no entity name yet, oldest first, at most `limit`.
    async fn groups_without_entity_name(&self, limit: u64) -> StoreResult<Vec<Group>>;
    /// Every entity name users (`MemberKind::User`) or groups hold, lowercase.
    async fn entity_names(&self, kind: MemberKind) -> StoreResult<HashSet<String>>;
    /// The entity name of one user or group, if it has one.
    async fn entity_name(&self, kind: MemberKind, id: Uuid) -> StoreResult<Option<String>>;
    /// Gives each resource in `claims` its proposed entity name, stored
    /// lowercase, if it has none yet and no other resource of `kind` holds
    /// that name (Backstage compares names case-insensitively). Returns the
    /// ids that got their name; the others keep what they had.
    ///
    /// A name, once set, is never changed or cleared by any write (it goes
    /// with the row when the resource is deleted). Claims are serialised
    /// across processes and replicas, so two resources can never end up
    /// with one name. Only the first claim per id and per name counts.
    async fn claim_entity_names(
        &self,
        kind: MemberKind,
        claims: &[(Uuid, String)],
    ) -> StoreResult<HashSet<Uuid>>;
    /// Up to `limit` users after `after` in creation order, with entity
    /// names and direct groups.
    async fn catalog_users(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogUser>>;
    /// Up to `limit` groups after `after` in creation order, with entity
    /// names and user members.
    async fn catalog_groups(
        &self,
        after: Position,
        limit: u64,
    ) -> StoreResult<CatalogPage<CatalogGroup>>;
    /// Every group's entity name and the group-in-group memberships.
    async fn group_graph(&self) -> StoreResult<GroupGraph>;
    /// The directory's current [`DirectoryFingerprint`]. Costs one pass
    /// over the users' and groups' ids and versions, no documents.
    async fn directory_fingerprint(&self) -> StoreResult<DirectoryFingerprint>;

    // Ownership handovers

    /// Records who takes over an offboarded user's entities (one per user).
    /// A manual handover ([`HandoverReason::Manual`]) replaces any; any
    /// other replaces an earlier automatic one but never a manual one.
    /// Returns whether `handover` was stored.
    async fn save_handover(&self, handover: &Handover) -> StoreResult<bool>;
    async fn get_handover(&self, user: UserId) -> StoreResult<Option<Handover>>;
    /// Every handover, newest first.
    async fn list_handovers(&self) -> StoreResult<Vec<Handover>>;
    /// Removes a user's handover; returns whether there was one.
    async fn delete_handover(&self, user: UserId) -> StoreResult<bool>;
    /// Appends records of applied reconcile fixes, in order, in one
    /// transaction.
    async fn record_reconcile_fixes(&self, fixes: &[ReconcileFix]) -> StoreResult<()>;
    /// The `limit` most recently recorded fixes, newest first.
    async fn list_reconcile_fixes(&self, limit: u64) -> StoreResult<Vec<ReconcileFix>>;
}

/// The claims that count: the first per id and per (lowercased) name, with
/// names lowercased as they are stored.
pub(crate) fn distinct_claims(claims: &[(Uuid, String)]) -> Vec<(Uuid, String)> {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    claims
        .iter()
        .filter_map(|(id, name)| {
            let name = name.to_lowercase();
            (!ids.contains(id) && !names.contains(&name)).then(|| {
                ids.insert(*id);
                names.insert(name.clone());
                (*id, name)
            })
        })
        .collect()
}

/// The page a query for `limit` rows returned: the next one starts after
/// the last row, unless there were fewer rows than asked for.
pub(crate) fn page_of<T>(items: Vec<T>, last: Option<i64>, limit: u64) -> CatalogPage<T> {
    let full = u64::try_from(items.len()).unwrap_or(u64::MAX) >= limit;
    CatalogPage {
        next: if full && limit > 0 {
            last.map(Position)
        } else {
            None
        },
        items,
    }
}

impl Position {
    pub(crate) fn seq(self) -> i64 {
        self.0
    }
}

impl DirectoryFingerprint {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }
}

/// Opens the store a URL names (`sqlite://path` or `postgres://...`),
/// running pending migrations.
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL {url:?}; use sqlite://PATH or postgres://..."
        )))
    }
}
