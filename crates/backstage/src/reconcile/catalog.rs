//! The catalog's side: entity refs and the parts of an entity the
//! reconciler reads.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::annotations;

/// The fields to ask the catalog for (`fields=` on `by-query`): everything
/// [`CatalogEntity::from_json`] reads, and nothing else, which keeps a page
/// of 500 entities small.
pub const CATALOG_FIELDS: &[&str] = &[
    "kind",
    "metadata.uid",
    "metadata.name",
    "metadata.namespace",
    "metadata.annotations",
    "metadata.labels",
    "spec.owner",
    "spec.profile.email",
    "relations",
];

/// A full entity reference, `kind:namespace/name`.
///
/// Backstage compares refs case-insensitively, so equality, hashing and
/// ordering use the lowercase form; the original spelling is kept for
/// display (with the kind lowercased, as Backstage writes refs).
#[derive(Debug, Clone)]
pub struct EntityRef {
    text: String,
    key: String,
    /// Byte offsets of the `:` and the `/` in `text`.
    colon: usize,
    slash: usize,
}

impl EntityRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        let text = format!("{}:{namespace}/{name}", kind.to_ascii_lowercase());
        let key = text.to_lowercase();
        Self {
            colon: kind.len(),
            slash: kind.len() + 1 + namespace.len(),
            text,
            key,
        }
    }

    /// Parses `[kind:][namespace/]name` the way Backstage does, filling in
    /// the defaults. `None` for an empty part or a stray `:` or `/`.
    pub fn parse(text: &str, default_kind: &str, default_namespace: &str) -> Option<Self> {
        let text = text.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind, rest),
            None => (default_kind, text),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((namespace, name)) => (namespace, name),
            None => (default_namespace, rest),
        };
        let well_formed = |part: &str| !part.is_empty() && !part.contains([':', '/']);
        (well_formed(kind) && well_formed(namespace) && well_formed(name))
            .then(|| Self::new(kind, namespace, name))
    }

    /// The kind, lowercase.
    pub fn kind(&self) -> &str {
        &self.text[..self.colon]
    }

    pub fn namespace(&self) -> &str {
        &self.text[self.colon + 1..self.slash]
    }

    pub fn name(&self) -> &str {
        &self.text[self.slash + 1..]
    }

    /// The lowercase form, for map keys.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for EntityRef {}

impl Hash for EntityRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for EntityRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntityRef {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// One computed relation of an entity (`relations[]` in the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// `ownedBy`, `memberOf`, `childOf`, ...
    pub relation_type: String,
    pub target_ref: String,
}

/// The parts of a catalog entity the reconciler reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogEntity {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `spec.owner` as written, possibly short (`team-a` means
    /// `group:<own namespace>/team-a`).
    pub spec_owner: Option<String>,
    pub relations: Vec<Relation>,
    pub profile_email: Option<String>,
    /// `backstage.io/managed-by-location`, copied out because every piece of
    /// evidence mentions it.
    pub managed_by_location: Option<String>,
}

/// Why an entity from the API could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityJsonError {
    #[error("a catalog entity must be a JSON object")]
    NotAnObject,
    #[error(
        "catalog entity {name:?} has no string `{field}`; fetch it with `fields` including {field}"
    )]
    Missing { field: &'static str, name: String },
}

impl CatalogEntity {
    /// Reads an entity as the catalog API returns it (whole, or trimmed to
    /// [`CATALOG_FIELDS`]). `metadata.namespace` defaults to `default`;
    /// annotations or labels whose values are not strings are skipped, as
    /// the catalog's own validation would reject them.
    pub fn from_json(value: &Value) -> Result<Self, EntityJsonError> {
        let object = value.as_object().ok_or(EntityJsonError::NotAnObject)?;
        let metadata = object.get("metadata");
        let meta_str = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
        let name = meta_str("name").unwrap_or_default().to_owned();
        let missing = |field: &'static str| EntityJsonError::Missing {
            field,
            name: name.clone(),
        };
        if name.is_empty() {
            return Err(missing("metadata.name"));
        }
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("kind"))?
            .to_owned();
        let uid = meta_str("uid")
            .ok_or_else(|| missing("metadata.uid"))?
            .to_owned();
        let namespace = meta_str("namespace").unwrap_or("default").to_owned();
        let string_map = |key: &str| -> BTreeMap<String, String> {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let annotations = string_map("annotations");
        let labels = string_map("labels");
        let spec = object.get("spec");
        let spec_owner = spec
            .and_then(|s| s.get("owner"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let profile_email = spec
            .and_then(|s| s.get("profile"))
            .and_then(|p| p.get("email"))
            .and_then(Value::as_str)
            .filter(|email| !email.trim().is_empty())
            .map(str::to_owned);
        let relations = object
            .get("relations")
            .and_then(Value::as_array)
            .map(|relations| {
                relations
                    .iter()
                    .filter_map(|relation| {
                        Some(Relation {
                            relation_type: relation.get("type")?.as_str()?.to_owned(),
                            target_ref: relation.get("targetRef")?.as_str()?.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let managed_by_location = annotations.get(annotations::MANAGED_BY_LOCATION).cloned();
        Ok(Self {
            uid,
            kind,
            namespace,
            name,
            annotations,
            labels,
            spec_owner,
            relations,
            profile_email,
            managed_by_location,
        })
    }

    pub fn entity_ref(&self) -> EntityRef {
        EntityRef::new(&self.kind, &self.namespace, &self.name)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }

    /// True when the catalog has marked the entity orphan: nothing emits it.
    pub fn is_orphan(&self) -> bool {
        self.annotation(annotations::ORPHAN)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    /// The `roster.dev/scim-id` annotation: present on every entity Roster's
    /// feed publishes.
    pub fn scim_id(&self) -> Option<&str> {
        self.annotation(annotations::SCIM_ID)
    }

    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }

    /// Targets of relations of one type, in the catalog's order.
    pub fn relation_targets<'e>(&'e self, relation_type: &'e str) -> impl Iterator<Item = &'e str> {
        self.relations
            .iter()
            .filter(move |r| r.relation_type.eq_ignore_ascii_case(relation_type))
            .map(|r| r.target_ref.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_like_backstage() {
        for (input, kind, namespace, expected) in [
            ("team-a", "group", "default", Some("group:default/team-a")),
            ("user:jane", "group", "default", Some("user:default/jane")),
            ("User:Ops/Jane", "group", "default", Some("user:Ops/Jane")),
            (
                "platform/team-a",
                "group",
                "default",
                Some("group:platform/team-a"),
            ),
            ("team-a", "group", "ops", Some("group:ops/team-a")),
            (
                " group:default/x ",
                "group",
                "default",
                Some("group:default/x"),
            ),
            ("", "group", "default", None),
            ("user:", "group", "default", None),
            (":x", "group", "default", None),
            ("user:a/b/c", "group", "default", None),
            ("a:b:c", "group", "default", None),
        ] {
            let parsed = EntityRef::parse(input, kind, namespace);
            assert_eq!(
                parsed.as_ref().map(EntityRef::as_str),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn refs_compare_case_insensitively_and_keep_their_spelling() {
        let a = EntityRef::new("User", "default", "Jane.Doe");
        let b = EntityRef::new("user", "DEFAULT", "jane.doe");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "user:default/Jane.Doe");
        assert_eq!(
            (a.kind(), a.namespace(), a.name()),
            ("user", "default", "Jane.Doe")
        );
        assert_eq!(a.key(), "user:default/jane.doe");
    }
}
