//! Backstage entity names and how Roster derives them.
//!
//! An [`EntityName`] only ever holds a valid Backstage `metadata.name`: 1 to
//! 63 characters from `A–Z a–z 0–9 - _ .`, starting and ending with a letter
//! or digit (`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`). Backstage compares
//! names case-insensitively, and so does `EntityName`.
//!
//! Names are derived from an identity the way the reference (§1.4) spells
//! out, which is the convention of Backstage's own Microsoft Graph importer
//! plus the length and edge rules it leaves out:
//!
//! 1. start from the identity (see [`NameStrategy`]); trim and lowercase;
//! 2. replace each character outside `a-z 0-9 _ - .` with `_`;
//! 3. collapse runs of `_` into one; strip leading and trailing `_ - .`;
//! 4. cut to 63 characters and strip trailing `_ - .` again;
//! 5. on a collision with another identity, append `-2`, `-3`, … (cutting the
//!    base so the whole stays within 63 characters).
//!
//! Steps 1–4 give a resource's *base* name ([`normalize`]); step 5 is
//! [`choose`], which needs to know the names already taken. When nothing
//! valid is left of the identity (it was all punctuation or non-Latin
//! script), the base is a fallback made from the resource id
//! (`user-1b4e28ba`). Choosing is deterministic; *persisting* the choice so
//! it never changes for an existing user is the caller's job (the store
//! keeps it; see `roster_store::Store::claim_entity_names`).

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use roster_domain::{Group, User};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid entity name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityNameError {
    #[error("an entity name must not be empty")]
    Empty,
    #[error("an entity name is at most 63 characters; this one has {0}")]
    TooLong(usize),
    #[error("an entity name may only contain letters, digits, '-', '_' and '.'; found {0:?}")]
    InvalidCharacter(char),
    #[error("an entity name must start and end with a letter or digit")]
    InvalidEdge,
}

/// A valid Backstage entity name (`metadata.name`), compared and hashed
/// case-insensitively as the catalog does.
#[derive(Clone)]
pub struct EntityName(String);

fn is_edge_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The characters steps 3 and 4 strip from the ends.
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.')
}

impl EntityName {
    /// Most characters in a name.
    pub const MAX_LEN: usize = 63;

    /// Accepts `value` if it is a valid name as it stands (nothing is
    /// changed; use [`normalize`] to derive one from arbitrary text).
    pub fn parse(value: &str) -> Result<Self, EntityNameError> {
        let count = value.chars().count();
        if count == 0 {
            return Err(EntityNameError::Empty);
        }
        if count > Self::MAX_LEN {
            return Err(EntityNameError::TooLong(count));
        }
        if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
            return Err(EntityNameError::InvalidCharacter(bad));
        }
        let first = value.chars().next().is_some_and(is_edge_char);
        let last = value.chars().next_back().is_some_and(is_edge_char);
        if !(first && last) {
            return Err(EntityNameError::InvalidEdge);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercase form, under which uniqueness is enforced. (Names are
    /// ASCII, so this is plain ASCII lowercasing.)
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl PartialEq for EntityName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for EntityName {}

impl Hash for EntityName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in self.0.bytes() {
            state.write_u8(byte.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl fmt::Debug for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EntityName {
    type Err = EntityNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EntityName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        EntityName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Which identity a user's entity name is derived from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameStrategy {
    /// The local part (before the `@`) of the primary email, else of the
    /// `userName`: `Jane.Doe@acme.example` → `jane.doe`. This is what
    /// Backstage's `emailLocalPartMatchingUserEntityName` sign-in resolver
    /// looks for, hence the default.
    #[default]
    EmailLocalPart,
    /// The whole `userName`: `Jane.Doe+ops@Acme.example` →
    /// `jane.doe_ops_acme.example`.
    UserName,
}

/// Steps 1–4: the base name `raw` gives, or `None` when nothing valid is
/// left of it.
pub fn normalize(raw: &str) -> Option<EntityName> {
    // Steps 1-3 in one pass: lowercase, map to the allowed set, and collapse
    // runs of `_` as they are produced.
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        let mapped = if matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.') {
            c
        } else {
            '_'
        };
        if mapped == '_' && out.ends_with('_') {
            continue;
        }
        out.push(mapped);
    }
    let stripped = out.trim_matches(is_separator);
    // Step 4. Everything left is ASCII, so bytes are characters.
    let cut = &stripped[..stripped.len().min(EntityName::MAX_LEN)];
    let name = cut.trim_end_matches(is_separator);
    if name.is_empty() {
        return None;
    }
    Some(EntityName(name.to_owned()))
}

/// The part of an address before its last `@` (all of it when it has none).
/// The last, because a quoted local part may itself contain `@`.
fn local_part(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or(address, |(local, _domain)| local)
}

/// Steps 1–4 for a user identity under `strategy`, without the fallback:
/// `None` when neither source leaves anything valid.
///
/// With [`NameStrategy::EmailLocalPart`], the email's local part is tried
/// first and the `userName`'s second, so a user whose address is in a
/// non-Latin script still gets a readable name from an ASCII `userName`.
pub fn user_base(
    strategy: NameStrategy,
    user_name: &str,
    email: Option<&str>,
) -> Option<EntityName> {
    match strategy {
        NameStrategy::UserName => normalize(user_name),
        NameStrategy::EmailLocalPart => email
            .filter(|e| !e.trim().is_empty())
            .and_then(|e| normalize(local_part(e.trim())))
            .or_else(|| normalize(local_part(user_name.trim()))),
    }
}

/// The name used when nothing valid is left of an identity: `prefix-` and
/// the first eight hex digits of the id, e.g. `user-1b4e28ba`.
pub fn fallback(prefix: &str, id: Uuid) -> EntityName {
    let hex = id.simple().to_string();
    normalize(&format!("{prefix}-{}", &hex[..8])).unwrap_or_else(|| EntityName(hex[..8].to_owned()))
}

/// A user's base name under `strategy` (steps 1–4), falling back to
/// `user-<id prefix>`.
pub fn user_base_name(strategy: NameStrategy, user: &User) -> EntityName {
    user_base(strategy, user.user_name().as_str(), user.primary_email())
        .unwrap_or_else(|| fallback("user", user.id.as_uuid()))
}

/// A group's base name: its `displayName` through steps 1–4, falling back to
/// `group-<id prefix>`.
pub fn group_base_name(group: &Group) -> EntityName {
    normalize(group.attributes.display_name.as_str())
        .unwrap_or_else(|| fallback("group", group.id.as_uuid()))
}

/// Step 5: the `n`th candidate for `base`. The first is `base` itself; the
/// `n`th (n ≥ 2) is `base-n`, with `base` cut (and its cut end stripped of
/// `_ - .`) so the whole is at most 63 characters.
pub fn candidate(base: &EntityName, n: u32) -> EntityName {
    if n <= 1 {
        return base.clone();
    }
    let suffix = format!("-{n}");
    let keep = EntityName::MAX_LEN - suffix.len();
    let stem = &base.0[..base.0.len().min(keep)];
    // The base starts with a letter or digit, so something is always left.
    let stem = stem.trim_end_matches(is_separator);
    EntityName(format!("{stem}{suffix}"))
}

/// Step 5: the first candidate for `base` whose folded form is not in
/// `taken`, which it is then added to.
pub fn choose(base: &EntityName, taken: &mut HashSet<String>) -> EntityName {
    let mut n = 1u32;
    loop {
        let name = candidate(base, n);
        if taken.insert(name.folded()) {
            return name;
        }
        n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
