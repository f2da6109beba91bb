use serde::{Deserialize, Serialize};

use crate::{Meta, UserId, UserName};

/// A person in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub meta: Meta,
    #[serde(flatten)]
    pub attributes: UserAttributes,
}

impl User {
    pub fn user_name(&self) -> &UserName {
        &self.attributes.user_name
    }

    /// The primary email, else the first one.
    pub fn primary_email(&self) -> Option<&str> {
        let emails = &self.attributes.emails;
        emails
            .iter()
            .find(|e| e.primary == Some(true))
            .or_else(|| emails.first())
            .and_then(|e| e.value.as_deref())
    }
}

/// Everything about a user that a client may write: the SCIM core User
/// attributes (RFC 7643 §4.1) and the Enterprise User extension (§4.3).
///
/// `password` is deliberately absent: Roster never stores one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAttributes {
    pub user_name: UserName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The administrative status. Deactivation (`Some(false)`) is distinct
    /// from deletion: an inactive user stays in the directory and readable.
    /// Unset (an IdP may remove the attribute) counts as active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ims: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x509_certificates: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<EnterpriseUser>,
}

impl UserAttributes {
    /// Whether two versions are the same to the letter. `==` treats names
    /// that differ only in case as equal (they are one identity); a write
    /// that only changes case is still a change to store.
    pub fn identical(&self, other: &UserAttributes) -> bool {
        self == other && self.user_name.as_str() == other.user_name.as_str()
    }

    /// Whether the user is active: anything but an explicit `active: false`.
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }

    /// A user with only a name; every other attribute unset (so active).
    pub fn with_user_name(user_name: UserName) -> Self {
        Self {
            user_name,
            external_id: None,
            active: None,
            name: None,
            display_name: None,
            nick_name: None,
            profile_url: None,
            title: None,
            user_type: None,
            preferred_language: None,
            locale: None,
            timezone: None,
            emails: Vec::new(),
            phone_numbers: Vec::new(),
            ims: Vec::new(),
            photos: Vec::new(),
            addresses: Vec::new(),
            entitlements: Vec::new(),
            roles: Vec::new(),
            x509_certificates: Vec::new(),
            enterprise: None,
        }
    }
}

/// SCIM's complex `name` attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
}

/// One value of a multi-valued attribute such as `emails` or `phoneNumbers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// One postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// The Enterprise User extension (RFC 7643 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnterpriseUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Manager>,
}

impl EnterpriseUser {
    pub fn is_empty(&self) -> bool {
        self == &EnterpriseUser::default()
    }
}

/// A user's manager: the id of another user (may name one Roster does not
/// know yet; IdPs push managers and reports in any order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The URI of the manager's resource, as the client gave it.
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}
