//! What both implementations store, and the conversions to and from it.
//!
//! A resource is kept as columns for what the database must index or change
//! on its own (folded names, external id, version, timestamps, the display
//! text memberships show) plus `doc`, the JSON of its client-writable
//! attributes. `meta` lives only in columns, so bumping a group's version when
//! a member is deleted never rewrites its document.

use roster_domain::{
    ApiToken, Group, GroupAttributes, GroupId, MemberKind, Meta, TokenHash, TokenName, TokenScope,
    User, UserAttributes, UserId, Version,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// Timestamps are stored as Unix milliseconds in both databases: exact to the
/// millisecond (what SCIM and the domain clock keep), numerically ordered, and
/// free of any driver's time-zone handling. Sub-millisecond parts are dropped.
pub(crate) fn to_millis(at: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| StoreError::Backend(format!("timestamp {at} is out of range")))
}

pub(crate) fn from_millis(millis: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|err| StoreError::Backend(format!("stored timestamp {millis} is invalid: {err}")))
}

pub(crate) fn version_to_db(version: Version) -> StoreResult<i64> {
    i64::try_from(version.0)
        .map_err(|_| StoreError::Backend(format!("version {version} is out of range")))
}

pub(crate) fn version_from_db(version: i64) -> StoreResult<Version> {
    u64::try_from(version)
        .map(Version)
        .map_err(|_| StoreError::Backend(format!("stored version {version} is negative")))
}

pub(crate) const KIND_USER: i16 = 0;
pub(crate) const KIND_GROUP: i16 = 1;

pub(crate) fn kind_to_db(kind: MemberKind) -> i16 {
    match kind {
        MemberKind::User => KIND_USER,
        MemberKind::Group => KIND_GROUP,
    }
}

pub(crate) fn kind_from_db(code: i64) -> StoreResult<MemberKind> {
    match code {
        0 => Ok(MemberKind::User),
        1 => Ok(MemberKind::Group),
        other => Err(StoreError::Backend(format!(
            "stored member kind {other} is unknown"
        ))),
    }
}

pub(crate) fn uuid_from_bytes(bytes: &[u8]) -> StoreResult<Uuid> {
    Uuid::from_slice(bytes)
        .map_err(|err| StoreError::Backend(format!("stored id is invalid: {err}")))
}

/// How to fold a group `displayName` for lookup; the same rule as
/// [`roster_domain::DisplayName::folded`].
pub(crate) fn fold_display_name(name: &str) -> String {
    name.to_lowercase()
}

/// A user as stored.
#[derive(Debug)]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub user_name_folded: String,
    pub external_id: Option<String>,
    pub display: String,
    pub active: bool,
    pub version: i64,
    pub created: i64,
    pub last_modified: i64,
    pub doc: String,
}

impl UserRow {
    pub fn from_user(user: &User) -> StoreResult<Self> {
        let attrs = &user.attributes;
        Ok(Self {
            id: user.id.as_uuid(),
            user_name_folded: attrs.user_name.folded().to_owned(),
            external_id: attrs.external_id.clone(),
            display: attrs
                .display_name
                .clone()
                .unwrap_or_else(|| attrs.user_name.as_str().to_owned()),
            active: attrs.is_active(),
            version: version_to_db(user.meta.version)?,
            created: to_millis(user.meta.created)?,
            last_modified: to_millis(user.meta.last_modified)?,
            doc: serde_json::to_string(attrs).map_err(StoreError::backend)?,
        })
    }
}

/// Rebuilds a user from its id, meta columns and document.
pub(crate) fn user_from_parts(
    id: Uuid,
    version: i64,
    created: i64,
    last_modified: i64,
    doc: &str,
) -> StoreResult<User> {
    let attributes: UserAttributes = serde_json::from_str(doc)
        .map_err(|err| StoreError::Backend(format!("stored user {id} is unreadable: {err}")))?;
    Ok(User {
        id: UserId::from_uuid(id),
        meta: meta_from_parts(version, created, last_modified)?,
        attributes,
    })
}

/// A group as stored (its members are rows of `group_members`).
#[derive(Debug)]
pub(crate) struct GroupRow {
    pub id: Uuid,
    pub display_name_folded: String,
    pub external_id: Option<String>,
    pub display: String,
    pub version: i64,
    pub created: i64,
    pub last_modified: i64,
    pub doc: String,
}

impl GroupRow {
    pub fn from_group(group: &Group) -> StoreResult<Self> {
        let attrs = &group.attributes;
        Ok(Self {
            id: group.id.as_uuid(),
            display_name_folded: attrs.display_name.folded().to_owned(),
            external_id: attrs.external_id.clone(),
            display: attrs.display_name.as_str().to_owned(),
            version: version_to_db(group.meta.version)?,
            created: to_millis(group.meta.created)?,
            last_modified: to_millis(group.meta.last_modified)?,
            doc: serde_json::to_string(attrs).map_err(StoreError::backend)?,
        })
    }
}

pub(crate) fn group_from_parts(
    id: Uuid,
    version: i64,
    created: i64,
    last_modified: i64,
    doc: &str,
) -> StoreResult<Group> {
    let attributes: GroupAttributes = serde_json::from_str(doc)
        .map_err(|err| StoreError::Backend(format!("stored group {id} is unreadable: {err}")))?;
    Ok(Group {
        id: GroupId::from_uuid(id),
        meta: meta_from_parts(version, created, last_modified)?,
        attributes,
    })
}

pub(crate) fn meta_from_parts(version: i64, created: i64, last_modified: i64) -> StoreResult<Meta> {
    Ok(Meta {
        created: from_millis(created)?,
        last_modified: from_millis(last_modified)?,
        version: version_from_db(version)?,
    })
}

/// An API token as stored.
#[derive(Debug)]
pub(crate) struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub scope: &'static str,
    pub hash_hex: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

impl TokenRow {
    pub fn from_token(token: &ApiToken) -> StoreResult<Self> {
        Ok(Self {
            id: token.id,
            name: token.name.as_str().to_owned(),
            scope: token.scope.as_str(),
            hash_hex: token.hash.to_hex(),
            created: to_millis(token.created)?,
            revoked: token.revoked.map(to_millis).transpose()?,
        })
    }
}

pub(crate) fn token_from_parts(
    id: Uuid,
    name: &str,
    scope: &str,
    hash_hex: &str,
    created: i64,
    revoked: Option<i64>,
) -> StoreResult<ApiToken> {
    let corrupt =
        |what: &str| StoreError::Backend(format!("stored token {id} has an invalid {what}"));
    Ok(ApiToken {
        id,
        name: TokenName::parse(name).map_err(|_| corrupt("name"))?,
        scope: scope.parse::<TokenScope>().map_err(|_| corrupt("scope"))?,
        hash: TokenHash::from_hex(hash_hex).ok_or_else(|| corrupt("hash"))?,
        created: from_millis(created)?,
        revoked: revoked.map(from_millis).transpose()?,
    })
}

/// Which uniqueness rule an index or constraint enforces, by its name in the
/// migrations (PostgreSQL reports the index name; SQLite the `table.column`).
pub(crate) fn unique_field_for(name: &str) -> Option<crate::UniqueField> {
    use crate::UniqueField;
    if name.contains("users_user_name_folded") || name.contains("users.user_name_folded") {
        Some(UniqueField::UserName)
    } else if name.contains("groups_display_name_folded")
        || name.contains("groups.display_name_folded")
    {
        Some(UniqueField::GroupDisplayName)
    } else if name.contains("api_tokens_active_name") || name.contains("api_tokens.name") {
        Some(UniqueField::TokenName)
    } else {
        None
    }
}

/// Maps a driver error, turning uniqueness violations into
/// [`StoreError::Conflict`].
pub(crate) fn map_sqlx(err: sqlx::Error) -> StoreError {
    if let Some(db) = err.as_database_error() {
        if db.is_unique_violation() {
            let field = db
                .constraint()
                .and_then(unique_field_for)
                .or_else(|| unique_field_for(db.message()));
            if let Some(field) = field {
                return StoreError::Conflict(field);
            }
        }
    }
    StoreError::backend(err)
}

/// Refuses a database that has applied a migration this binary does not know
/// (`applied` is the highest version recorded in `_sqlx_migrations`).
pub(crate) fn check_not_too_new(
    migrator: &sqlx::migrate::Migrator,
    applied: Option<i64>,
) -> StoreResult<()> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(found) if found > known => Err(StoreError::DatabaseTooNew { found, known }),
        _ => Ok(()),
    }
}

pub(crate) fn migrate_error(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(format!("migrating the database failed: {err}"))
}
