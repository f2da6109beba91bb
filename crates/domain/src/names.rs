use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} must not contain control characters")]
    ControlCharacter(&'static str),
}

fn validate(what: &'static str, value: &str, max: usize) -> Result<(), NameError> {
    if value.trim().is_empty() {
        return Err(NameError::Empty(what));
    }
    if value.chars().count() > max {
        return Err(NameError::TooLong(what, max));
    }
    if value.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter(what));
    }
    Ok(())
}

/// A user's unique sign-in name (SCIM `userName`).
///
/// Kept exactly as the identity provider sent it, but compared and hashed
/// case-insensitively: RFC 7643 makes `userName` `caseExact: false`, and two
/// users differing only in case would be one person to every IdP.
#[derive(Clone)]
pub struct UserName {
    original: String,
    folded: String,
}

impl UserName {
    pub const MAX_LEN: usize = 256;

    pub fn parse(value: impl Into<String>) -> Result<Self, NameError> {
        let original = value.into();
        validate("userName", &original, Self::MAX_LEN)?;
        let folded = Self::fold(&original);
        Ok(Self { original, folded })
    }

    /// The case-folded key under which uniqueness is enforced.
    pub fn fold(value: &str) -> String {
        value.to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

impl PartialEq for UserName {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl Eq for UserName {}

impl Hash for UserName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.folded.hash(state);
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.original, f)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Serialize for UserName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        UserName::parse(raw).map_err(serde::de::Error::custom)
    }
}

/// A group's name (SCIM `displayName`), unique case-insensitively like
/// [`UserName`].
#[derive(Clone)]
pub struct DisplayName {
    original: String,
    folded: String,
}

impl DisplayName {
    pub const MAX_LEN: usize = 256;

    pub fn parse(value: impl Into<String>) -> Result<Self, NameError> {
        let original = value.into();
        validate("displayName", &original, Self::MAX_LEN)?;
        let folded = original.to_lowercase();
        Ok(Self { original, folded })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

impl PartialEq for DisplayName {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl Eq for DisplayName {}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.original, f)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Serialize for DisplayName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DisplayName::parse(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_compare_case_insensitively_but_keep_their_spelling() {
        let a = UserName::parse("Jane.Doe@Example.com").unwrap();
        let b = UserName::parse("jane.doe@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Jane.Doe@Example.com");
        assert_eq!(a.folded(), "jane.doe@example.com");
    }

    #[test]
    fn invalid_user_names_are_rejected() {
        for (input, expected) in [
            ("", NameError::Empty("userName")),
            ("   ", NameError::Empty("userName")),
            ("a\u{0}b", NameError::ControlCharacter("userName")),
        ] {
            assert_eq!(UserName::parse(input).unwrap_err(), expected, "{input:?}");
        }
        assert!(matches!(
            UserName::parse("x".repeat(257)),
            Err(NameError::TooLong(..))
        ));
    }
}
