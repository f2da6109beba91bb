use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DisplayName, GroupId, Meta};

/// A group in the directory. Its members are kept apart from it (see
/// [`Member`]) so that a group of 100,000 members can change one member
/// without rewriting the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub meta: Meta,
    #[serde(flatten)]
    pub attributes: GroupAttributes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAttributes {
    pub display_name: DisplayName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl GroupAttributes {
    /// Whether two versions are the same to the letter (see
    /// `UserAttributes::identical`).
    pub fn identical(&self, other: &GroupAttributes) -> bool {
        self == other && self.display_name.as_str() == other.display_name.as_str()
    }
}

/// What kind of resource a member is. SCIM groups may contain groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }
}

/// One member of a group: the id of a user or a group, and (when read back)
/// its display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub kind: MemberKind,
    /// Filled in from the member's current record when read; never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}
