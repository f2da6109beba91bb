use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A resource's revision. Every successful write increments it; it is what
/// SCIM publishes as `meta.version` and HTTP as the `ETag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    pub const FIRST: Version = Version(1);

    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }

    /// The weak entity tag for this version, e.g. `W/"3"`.
    pub fn etag(self) -> String {
        format!("W/\"{}\"", self.0)
    }

    /// Parses an entity tag as a client sends it back (weak or strong form).
    pub fn from_etag(tag: &str) -> Option<Version> {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
        inner.parse().ok().map(Version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Bookkeeping every stored resource carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    pub version: Version,
}

impl Meta {
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            created: now,
            last_modified: now,
            version: Version::FIRST,
        }
    }

    /// The meta of the next revision, written at `now`.
    pub fn touched(&self, now: OffsetDateTime) -> Self {
        Self {
            created: self.created,
            last_modified: now,
            version: self.version.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_in_weak_and_strong_form() {
        assert_eq!(Version(7).etag(), "W/\"7\"");
        assert_eq!(Version::from_etag("W/\"7\""), Some(Version(7)));
        assert_eq!(Version::from_etag("\"7\""), Some(Version(7)));
        assert_eq!(Version::from_etag("7"), None);
        assert_eq!(Version::from_etag("W/\"x\""), None);
    }
}
