//! Directory users and groups as Backstage catalog entities.
//!
//! Pure mapping, no I/O: a user or group, its persisted [`EntityName`] and
//! the names of the groups around it go in; an [`Entity`] ready to serialise
//! comes out. The shapes follow the reference (§1.1–1.3, 1.6):
//!
//! | entity field | from |
//! |---|---|
//! | `metadata.name` | the persisted entity name (see [`crate::names`]) |
//! | `metadata.namespace` | [`PublishConfig::namespace`] (`default`) |
//! | `metadata.annotations` | `roster.dev/scim-id` (Roster's id), `roster.dev/external-id` (if set), users: `roster.dev/status` (`active` or `deactivated`) |
//! | `metadata.labels` | deactivated users, when published: `roster.dev/status: deactivated` |
//! | User `spec.profile` | `displayName`, else `name.formatted`, else given and family name; the primary (else first) email; the primary (else first) photo |
//! | User `spec.memberOf` | the user's direct groups, always present |
//! | Group `spec.type` | [`PublishConfig::group_type`] (`team`) |
//! | Group `spec.profile.displayName` | the group's `displayName` |
//! | Group `spec.parent` | the group's parent (see [`crate::feed::GroupIndex`]) |
//! | Group `spec.children` | groups whose parent it is, always present |
//! | Group `spec.members` | its user members, always present |
//!
//! References are always written in full (`group:default/payments-core`).

use std::collections::BTreeMap;
use std::fmt;

use roster_domain::{Group, User};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{EntityName, NameStrategy};

/// The `apiVersion` Roster writes.
pub const API_VERSION: &str = "backstage.io/v1alpha1";
/// Roster's id of the user or group.
pub const ANNOTATION_SCIM_ID: &str = "roster.dev/scim-id";
/// The identity provider's `externalId`, when it sent one.
pub const ANNOTATION_EXTERNAL_ID: &str = "roster.dev/external-id";
/// A user's status, `active` or `deactivated` (an annotation on every user,
/// and a label on deactivated users so they can be filtered on).
pub const STATUS_KEY: &str = "roster.dev/status";

/// How the directory is published to Backstage: the `[publish]` section of
/// Roster's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Which identity a user's entity name is derived from. Only affects
    /// names chosen from now on: a user's name, once chosen, never changes.
    pub name_strategy: NameStrategy,
    /// `spec.type` of every group (Backstage requires one).
    pub group_type: GroupType,
    /// Whether deactivated users are published (labelled
    /// `roster.dev/status: deactivated`) or left out, and out of their
    /// groups' `members`, which is the default.
    pub include_deactivated: bool,
    /// The catalog namespace of every entity.
    pub namespace: Namespace,
}

/// A catalog namespace: lowercase letters and digits in groups joined by
/// single hyphens, at most 63 characters (`^[a-z0-9]+(-[a-z0-9]+)*$`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Backstage namespace: use 1 to 63 lowercase letters and digits, \
     with single hyphens between them"
)]
pub struct NamespaceError(String);

impl Namespace {
    pub fn parse(value: &str) -> Result<Self, NamespaceError> {
        let valid = !value.is_empty()
            && value.len() <= 63
            && value.split('-').all(|part| {
                !part.is_empty() && part.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
            });
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(NamespaceError(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Namespace::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A group's `spec.type`: free text, but not empty or blank.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GroupType(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a group type must not be empty (common values: team, business-unit, product-area, root)")]
pub struct GroupTypeError;

impl GroupType {
    pub fn parse(value: &str) -> Result<Self, GroupTypeError> {
        let value = value.trim();
        if value.is_empty() {
            Err(GroupTypeError)
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for GroupType {
    fn default() -> Self {
        Self("team".to_owned())
    }
}

impl fmt::Debug for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for GroupType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GroupType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        GroupType::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The two kinds Roster publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    /// The kind as it appears in an entity reference (`user`, `group`).
    pub fn ref_prefix(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
}

/// The full reference `kind:namespace/name`, e.g. `user:default/jane.doe`.
pub fn entity_ref(kind: Kind, namespace: &Namespace, name: &EntityName) -> String {
    format!(
        "{}:{}/{}",
        kind.ref_prefix(),
        namespace.as_str(),
        name.as_str()
    )
}

/// A catalog entity as Roster emits it. Serialises to the catalog's shape;
/// field order is the order Backstage's own examples use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub api_version: &'static str,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub name: EntityName,
    pub namespace: Namespace,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<&'static str, String>,
    pub annotations: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    User(UserSpec),
    Group(GroupSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    #[serde(skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
    /// Always written, `[]` if none: the catalog's JSON schema requires it.
    pub member_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    #[serde(rename = "type")]
    pub group_type: GroupType,
    #[serde(skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Always written: the catalog requires it.
    pub children: Vec<String>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.email.is_none() && self.picture.is_none()
    }
}

/// A non-blank string, trimmed.
fn present(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The name a person goes by: `displayName`, else `name.formatted`, else
/// given and family name.
pub fn user_display_name(user: &User) -> Option<String> {
    let attrs = &user.attributes;
    present(attrs.display_name.as_deref()).or_else(|| {
        let name = attrs.name.as_ref()?;
        present(name.formatted.as_deref()).or_else(|| {
            let parts: Vec<String> = [name.given_name.as_deref(), name.family_name.as_deref()]
                .into_iter()
                .filter_map(present)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    })
}

/// The primary photo's URL, else the first one's.
fn user_picture(user: &User) -> Option<String> {
    let photos = &user.attributes.photos;
    photos
        .iter()
        .filter(|p| p.primary == Some(true))
        .chain(photos.iter())
        .find_map(|p| present(p.value.as_deref()))
}

/// The user's entity, or `None` when it is deactivated and deactivated users
/// are not published. `member_of` are its direct groups' names, in the
/// order to write them.
pub fn user_entity(
    config: &PublishConfig,
    user: &User,
    name: &EntityName,
    member_of: &[EntityName],
) -> Option<Entity> {
    let active = user.attributes.is_active();
    if !active && !config.include_deactivated {
        return None;
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_SCIM_ID, user.id.to_string());
    if let Some(external_id) = &user.attributes.external_id {
        annotations.insert(ANNOTATION_EXTERNAL_ID, external_id.clone());
    }
    let status = if active { "active" } else { "deactivated" };
    annotations.insert(STATUS_KEY, status.to_owned());
    let mut labels = BTreeMap::new();
    if !active {
        labels.insert(STATUS_KEY, status.to_owned());
    }
    Some(Entity {
        api_version: API_VERSION,
        kind: Kind::User,
        metadata: Metadata {
            name: name.clone(),
            namespace: config.namespace.clone(),
            labels,
            annotations,
        },
        spec: Spec::User(UserSpec {
            profile: Profile {
                display_name: user_display_name(user),
                email: present(user.primary_email()),
                picture: user_picture(user),
            },
            member_of: member_of
                .iter()
                .map(|g| entity_ref(Kind::Group, &config.namespace, g))
                .collect(),
        }),
    })
}

/// A group's entity. `members` are the names of the user members to list
/// (the caller leaves out unpublished users); `children` the groups whose
/// parent this group is.
pub fn group_entity(
    config: &PublishConfig,
    group: &Group,
    name: &EntityName,
    parent: Option<&EntityName>,
    children: &[EntityName],
    members: &[EntityName],
) -> Entity {
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_SCIM_ID, group.id.to_string());
    if let Some(external_id) = &group.attributes.external_id {
        annotations.insert(ANNOTATION_EXTERNAL_ID, external_id.clone());
    }
    let group_ref = |g: &EntityName| entity_ref(Kind::Group, &config.namespace, g);
    Entity {
        api_version: API_VERSION,
        kind: Kind::Group,
        metadata: Metadata {
            name: name.clone(),
            namespace: config.namespace.clone(),
            labels: BTreeMap::new(),
            annotations,
        },
        spec: Spec::Group(GroupSpec {
            group_type: config.group_type.clone(),
            profile: Profile {
                display_name: present(Some(group.attributes.display_name.as_str())),
                email: None,
                picture: None,
            },
            parent: parent.map(group_ref),
            children: children.iter().map(group_ref).collect(),
            members: members
                .iter()
                .map(|u| entity_ref(Kind::User, &config.namespace, u))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests;
