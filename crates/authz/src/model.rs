//! The policy model: roles made of rules, and assignments of roles to users
//! and groups. Values here are validated; the file and API form, with
//! entity refs and free text, is in [`crate::document`].

use std::fmt;

use roster_domain::{GroupId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::conditions::Criteria;

/// What a permission does to its resource, from Backstage's
/// `permission.attributes.action`. `Use` is Roster's own, for rules about
/// permissions that carry no action (e.g. running a scaffolder action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Use,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Use,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Use => "use",
        }
    }
}

/// Whether a matching rule grants or refuses. A matching deny always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// Which permission names a rule covers: one exact name
/// (`catalog.entity.delete`), every name under a prefix
/// (`catalog.entity.*` covers `catalog.entity.read` and
/// `catalog.entity.x.y`, but not `catalog.entityx`), or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PermissionPattern {
    Exact(String),
    /// The prefix including its trailing dot, e.g. `catalog.entity.`.
    Prefix(String),
    Any,
}

impl PermissionPattern {
    /// Parses a pattern; `None` unless it is `*`, a dotted name of
    /// `[A-Za-z0-9_-]` segments, or such a name followed by `.*`.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::Any);
        }
        let (name, is_prefix) = match text.strip_suffix(".*") {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        let valid_segment = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if name.len() > 200 || !name.split('.').all(valid_segment) {
            return None;
        }
        Some(if is_prefix {
            Self::Prefix(format!("{name}."))
        } else {
            Self::Exact(name.to_owned())
        })
    }

    pub fn matches(&self, permission: &str) -> bool {
        match self {
            Self::Exact(name) => name == permission,
            Self::Prefix(prefix) => permission.starts_with(prefix.as_str()),
            Self::Any => true,
        }
    }
}

impl fmt::Display for PermissionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// One rule of a role: which permissions it is about, optionally narrowed
/// to a resource type and an action, its effect, and optional conditions on
/// the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub permissions: Vec<PermissionPattern>,
    /// When set, the rule covers only resource permissions of this type.
    /// Rules with conditions always have one (the conditions' type).
    pub resource_type: Option<String>,
    pub action: Option<Action>,
    pub effect: Effect,
    pub conditions: Option<Criteria>,
}

impl Rule {
    /// Whether this rule is about the permission asked for (its
    /// conditions, if any, are the next question).
    pub fn covers(&self, permission: &Permission<'_>) -> bool {
        if let Some(resource_type) = &self.resource_type {
            if permission.resource_type != Some(resource_type.as_str()) {
                return false;
            }
        }
        if let Some(action) = self.action {
            if permission.action != Some(action) {
                return false;
            }
        }
        self.permissions.iter().any(|p| p.matches(permission.name))
    }
}

/// A role name: 1 to 63 characters of lowercase letters, digits, `-`, `_`
/// and `.`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named set of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: RoleName,
    pub description: String,
    pub rules: Vec<Rule>,
    /// Built-in roles ship with Roster and cannot be changed or removed.
    pub builtin: bool,
}

/// Who a role is assigned to. A group assignment reaches every member,
/// including members of nested groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(UserId),
    Group(GroupId),
}

/// A role given to a subject, optionally until a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub id: Uuid,
    pub role: RoleName,
    pub subject: Subject,
    pub expires_at: Option<OffsetDateTime>,
}

impl Assignment {
    pub fn is_current(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// What is being asked for, as Backstage describes a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission<'a> {
    pub name: &'a str,
    /// `Some` for resource permissions (e.g. `catalog-entity`), `None` for
    /// basic ones.
    pub resource_type: Option<&'a str>,
    pub action: Option<Action>,
}

impl<'a> Permission<'a> {
    pub fn basic(name: &'a str, action: Option<Action>) -> Self {
        Self {
            name,
            resource_type: None,
            action,
        }
    }

    pub fn resource(name: &'a str, resource_type: &'a str, action: Option<Action>) -> Self {
        Self {
            name,
            resource_type: Some(resource_type),
            action,
        }
    }
}
