//! Conditions on a resource, in the shape of Backstage's permission
//! criteria: `allOf`/`anyOf`/`not` over the catalog's rules.
//!
//! Roster uses a criteria tree twice: handed back to the catalog inside a
//! CONDITIONAL decision (the catalog then filters in its own database), and
//! evaluated here against an entity when the question names one.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

/// The resource type of the catalog's entities, and the plugin that owns
/// the rules below.
pub const CATALOG_ENTITY: &str = "catalog-entity";
pub const CATALOG_PLUGIN: &str = "catalog";

/// A criteria tree. `AllOf` and `AnyOf` are never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Criteria {
    AllOf(Vec<Criteria>),
    AnyOf(Vec<Criteria>),
    Not(Box<Criteria>),
    Rule(CatalogRule),
}

/// The catalog's permission rules (resource type `catalog-entity`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CatalogRule {
    /// Owned by one of `claims` (entity refs). `None` means the caller's own
    /// ownership refs, filled in at decision time.
    IsEntityOwner {
        claims: Option<Vec<String>>,
    },
    IsEntityKind {
        kinds: Vec<String>,
    },
    HasAnnotation {
        annotation: String,
        value: Option<String>,
    },
    HasLabel {
        label: String,
    },
    HasMetadata {
        key: String,
        value: Option<String>,
    },
    HasSpec {
        key: String,
        value: Option<String>,
    },
}

/// Why a criteria tree was refused, with where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CriteriaError {
    pub path: String,
    pub message: String,
}

const RULE_NAMES: &str =
    "IS_ENTITY_OWNER, IS_ENTITY_KIND, HAS_ANNOTATION, HAS_LABEL, HAS_METADATA, HAS_SPEC";

/// Deepest criteria tree accepted, so a hostile document cannot make
/// evaluation recurse without bound.
const MAX_DEPTH: usize = 32;

impl Criteria {
    /// Parses a criteria tree: nodes `{allOf: [...]}`, `{anyOf: [...]}`,
    /// `{not: node}` and leaves `{rule, params?, resourceType?}`.
    pub fn from_json(value: &Value, path: &str) -> Result<Self, CriteriaError> {
        Self::parse_at(value, path, 0)
    }

    fn parse_at(value: &Value, path: &str, depth: usize) -> Result<Self, CriteriaError> {
        let fail = |message: String| CriteriaError {
            path: path.to_owned(),
            message,
        };
        if depth > MAX_DEPTH {
            return Err(fail(format!("conditions nest deeper than {MAX_DEPTH}")));
        }
        let Some(object) = value.as_object() else {
            return Err(fail(
                "expected an object with allOf, anyOf, not or rule".into(),
            ));
        };
        let list = |key: &str, items: &Value| -> Result<Vec<Criteria>, CriteriaError> {
            let Some(items) = items.as_array().filter(|items| !items.is_empty()) else {
                return Err(fail(format!("{key} must be a non-empty list")));
            };
            items
                .iter()
                .enumerate()
                .map(|(i, item)| Self::parse_at(item, &format!("{path}.{key}[{i}]"), depth + 1))
                .collect()
        };
        let only = |key: &str| -> Result<(), CriteriaError> {
            match object.keys().find(|k| k.as_str() != key) {
                Some(other) => Err(fail(format!("unexpected key {other:?} beside {key}"))),
                None => Ok(()),
            }
        };
        if let Some(items) = object.get("allOf") {
            only("allOf")?;
            return Ok(Self::AllOf(list("allOf", items)?));
        }
        if let Some(items) = object.get("anyOf") {
            only("anyOf")?;
            return Ok(Self::AnyOf(list("anyOf", items)?));
        }
        if let Some(inner) = object.get("not") {
            only("not")?;
            if inner.is_array() {
                return Err(fail("not takes a single condition, not a list".into()));
            }
            let inner = Self::parse_at(inner, &format!("{path}.not"), depth + 1)?;
            return Ok(Self::Not(Box::new(inner)));
        }
        CatalogRule::from_json(object, path).map(Self::Rule)
    }

    /// The Backstage JSON form, with `IS_ENTITY_OWNER` leaves that name no
    /// claims given `own_claims`.
    pub fn to_backstage_json(&self, own_claims: &[String]) -> Value {
        // Serializing to a `Value` fails only for map keys that are not
        // strings, and every key here is one.
        serde_json::to_value(self.backstage_json(own_claims)).unwrap_or(Value::Null)
    }

    /// The Backstage JSON form, as [`Criteria::to_backstage_json`] writes
    /// it, for serializing straight to text: the same JSON without
    /// building a `Value` tree first.
    pub fn backstage_json<'a>(&'a self, own_claims: &'a [String]) -> BackstageCriteria<'a> {
        BackstageCriteria {
            criteria: self,
            own_claims,
        }
    }

    /// The document form: as Backstage's, but `IS_ENTITY_OWNER` without
    /// claims stays without them, and leaves carry no `resourceType`.
    pub fn to_document_json(&self) -> Value {
        match self {
            Self::AllOf(items) => {
                json!({"allOf": items.iter().map(Self::to_document_json).collect::<Vec<_>>()})
            }
            Self::AnyOf(items) => {
                json!({"anyOf": items.iter().map(Self::to_document_json).collect::<Vec<_>>()})
            }
            Self::Not(inner) => json!({"not": inner.to_document_json()}),
            Self::Rule(rule) => {
                let mut leaf = rule.to_backstage_json(None);
                if let Some(object) = leaf.as_object_mut() {
                    object.remove("resourceType");
                }
                leaf
            }
        }
    }

    /// Whether `entity` (a catalog entity as the catalog API returns it)
    /// satisfies the tree.
    pub fn matches(&self, entity: &Value, own_claims: &[String]) -> bool {
        match self {
            Self::AllOf(items) => items.iter().all(|c| c.matches(entity, own_claims)),
            Self::AnyOf(items) => items.iter().any(|c| c.matches(entity, own_claims)),
            Self::Not(inner) => !inner.matches(entity, own_claims),
            Self::Rule(rule) => rule.matches(entity, own_claims),
        }
    }
}

/// A criteria tree in Backstage's JSON form, serializable without an
/// intermediate `Value`. See [`Criteria::backstage_json`].
#[derive(Debug, Clone, Copy)]
pub struct BackstageCriteria<'a> {
    criteria: &'a Criteria,
    own_claims: &'a [String],
}

impl Serialize for BackstageCriteria<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let own_claims = self.own_claims;
        let list = |items| BackstageList { items, own_claims };
        let mut map = serializer.serialize_map(None)?;
        match self.criteria {
            Criteria::AllOf(items) => map.serialize_entry("allOf", &list(items))?,
            Criteria::AnyOf(items) => map.serialize_entry("anyOf", &list(items))?,
            Criteria::Not(inner) => {
                map.serialize_entry("not", &inner.backstage_json(own_claims))?
            }
            Criteria::Rule(rule) => {
                map.serialize_entry("resourceType", CATALOG_ENTITY)?;
                map.serialize_entry("rule", rule.name())?;
                map.serialize_entry("params", &BackstageParams { rule, own_claims })?;
            }
        }
        map.end()
    }
}

#[derive(Clone, Copy)]
struct BackstageList<'a> {
    items: &'a [Criteria],
    own_claims: &'a [String],
}

impl Serialize for BackstageList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.items.len()))?;
        for item in self.items {
            seq.serialize_element(&item.backstage_json(self.own_claims))?;
        }
        seq.end()
    }
}

/// A leaf's `params`, as `CatalogRule::to_backstage_json` writes them with
/// the caller's claims at hand.
struct BackstageParams<'a> {
    rule: &'a CatalogRule,
    own_claims: &'a [String],
}

impl Serialize for BackstageParams<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn with_value<M: SerializeMap>(
            map: &mut M,
            key_name: &str,
            key: &str,
            value: &Option<String>,
        ) -> Result<(), M::Error> {
            map.serialize_entry(key_name, key)?;
            match value {
                Some(value) => map.serialize_entry("value", value),
                None => Ok(()),
            }
        }
        let mut map = serializer.serialize_map(None)?;
        match self.rule {
            CatalogRule::IsEntityOwner { claims } => {
                let claims = claims.as_deref().unwrap_or(self.own_claims);
                map.serialize_entry("claims", claims)?;
            }
            CatalogRule::IsEntityKind { kinds } => map.serialize_entry("kinds", kinds)?,
            CatalogRule::HasAnnotation { annotation, value } => {
                with_value(&mut map, "annotation", annotation, value)?;
            }
            CatalogRule::HasLabel { label } => map.serialize_entry("label", label)?,
            CatalogRule::HasMetadata { key, value } | CatalogRule::HasSpec { key, value } => {
                with_value(&mut map, "key", key, value)?;
            }
        }
        map.end()
    }
}

impl CatalogRule {
    fn from_json(leaf: &Map<String, Value>, path: &str) -> Result<Self, CriteriaError> {
        let fail = |message: String| CriteriaError {
            path: path.to_owned(),
            message,
        };
        let Some(rule) = leaf.get("rule").and_then(Value::as_str) else {
            return Err(fail(
                "expected allOf, anyOf, not, or a leaf with a rule name".into(),
            ));
        };
        if let Some(other) = leaf
            .keys()
            .find(|k| !matches!(k.as_str(), "rule" | "params" | "resourceType"))
        {
            return Err(fail(format!("unexpected key {other:?} in a rule")));
        }
        match leaf.get("resourceType") {
            None => {}
            Some(Value::String(t)) if t == CATALOG_ENTITY => {}
            Some(other) => {
                return Err(fail(format!(
                    "resourceType {other} is not supported; rules apply to {CATALOG_ENTITY:?}"
                )))
            }
        }
        let empty = Map::new();
        let params = match leaf.get("params") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(params)) => params,
            Some(_) => return Err(fail("params must be an object".into())),
        };
        let text = |key: &str| -> Result<String, CriteriaError> {
            match params.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(fail(format!(
                    "{rule} needs params.{key}, a non-empty string"
                ))),
            }
        };
        let optional_text = |key: &str| -> Result<Option<String>, CriteriaError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(fail(format!("params.{key} must be a string"))),
            }
        };
        let strings = |key: &str| -> Result<Option<Vec<String>>, CriteriaError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| fail(format!("params.{key} must be a list of strings")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(fail(format!(
                    "params.{key} must be a non-empty list of strings"
                ))),
            }
        };
        let allow_params = |allowed: &[&str]| -> Result<(), CriteriaError> {
            match params.keys().find(|k| !allowed.contains(&k.as_str())) {
                Some(other) => Err(fail(format!("{rule} has no parameter {other:?}"))),
                None => Ok(()),
            }
        };
        Ok(match rule {
            "IS_ENTITY_OWNER" => {
                allow_params(&["claims"])?;
                Self::IsEntityOwner {
                    claims: strings("claims")?,
                }
            }
            "IS_ENTITY_KIND" => {
                allow_params(&["kinds"])?;
                let Some(kinds) = strings("kinds")? else {
                    return Err(fail("IS_ENTITY_KIND needs params.kinds".into()));
                };
                Self::IsEntityKind { kinds }
            }
            "HAS_ANNOTATION" => {
                allow_params(&["annotation", "value"])?;
                Self::HasAnnotation {
                    annotation: text("annotation")?,
                    value: optional_text("value")?,
                }
            }
            "HAS_LABEL" => {
                allow_params(&["label"])?;
                Self::HasLabel {
                    label: text("label")?,
                }
            }
            "HAS_METADATA" => {
                allow_params(&["key", "value"])?;
                Self::HasMetadata {
                    key: text("key")?,
                    value: optional_text("value")?,
                }
            }
            "HAS_SPEC" => {
                allow_params(&["key", "value"])?;
                Self::HasSpec {
                    key: text("key")?,
                    value: optional_text("value")?,
                }
            }
            other => {
                return Err(fail(format!(
                    "unknown rule {other:?}; expected one of {RULE_NAMES}"
                )))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::IsEntityOwner { .. } => "IS_ENTITY_OWNER",
            Self::IsEntityKind { .. } => "IS_ENTITY_KIND",
            Self::HasAnnotation { .. } => "HAS_ANNOTATION",
            Self::HasLabel { .. } => "HAS_LABEL",
            Self::HasMetadata { .. } => "HAS_METADATA",
            Self::HasSpec { .. } => "HAS_SPEC",
        }
    }

    /// The leaf as Backstage writes it. With `own_claims`, an owner rule
    /// without claims gets them; without, it stays as written.
    fn to_backstage_json(&self, own_claims: Option<&[String]>) -> Value {
        let with_value = |key_name: &str, key: &str, value: &Option<String>| {
            let mut params = Map::new();
            params.insert(key_name.to_owned(), Value::String(key.to_owned()));
            if let Some(value) = value {
                params.insert("value".to_owned(), Value::String(value.clone()));
            }
            Value::Object(params)
        };
        let params = match self {
            Self::IsEntityOwner { claims } => match (claims, own_claims) {
                (Some(claims), _) => json!({ "claims": claims }),
                (None, Some(own)) => json!({ "claims": own }),
                (None, None) => Value::Null,
            },
            Self::IsEntityKind { kinds } => json!({ "kinds": kinds }),
            Self::HasAnnotation { annotation, value } => {
                with_value("annotation", annotation, value)
            }
            Self::HasLabel { label } => json!({ "label": label }),
            Self::HasMetadata { key, value } | Self::HasSpec { key, value } => {
                with_value("key", key, value)
            }
        };
        let mut leaf = Map::new();
        leaf.insert("resourceType".into(), Value::String(CATALOG_ENTITY.into()));
        leaf.insert("rule".into(), Value::String(self.name().into()));
        if !params.is_null() {
            leaf.insert("params".into(), params);
        }
        Value::Object(leaf)
    }

    /// Evaluates the rule the way the catalog does in its database.
    pub(crate) fn matches(&self, entity: &Value, own_claims: &[String]) -> bool {
        match self {
            Self::IsEntityOwner { claims } => {
                owned_by(entity, claims.as_deref().unwrap_or(own_claims))
            }
            Self::IsEntityKind { kinds } => field(entity, "kind")
                .and_then(Value::as_str)
                .is_some_and(|kind| kinds.iter().any(|k| k.eq_ignore_ascii_case(kind))),
            Self::HasAnnotation { annotation, value } => {
                has_entry(entity, &["metadata", "annotations"], annotation, value)
            }
            Self::HasLabel { label } => has_entry(entity, &["metadata", "labels"], label, &None),
            Self::HasMetadata { key, value } => {
                has_path(field(entity, "metadata"), key, value.as_deref())
            }
            Self::HasSpec { key, value } => has_path(field(entity, "spec"), key, value.as_deref()),
        }
    }
}

/// Whether one of `claims` (entity refs, compared ignoring ASCII case)
/// owns the entity: is one of its `ownedBy` relations, or when the entity
/// came without relations, is `spec.owner` completed the way the catalog
/// completes it (default kind `group`, the entity's namespace). Compares
/// in place: this runs for every owner condition of every decision about
/// an entity.
fn owned_by(entity: &Value, claims: &[String]) -> bool {
    if let Some(relations) = field(entity, "relations").and_then(Value::as_array) {
        return relations
            .iter()
            .filter(|r| field(r, "type").and_then(Value::as_str) == Some("ownedBy"))
            .filter_map(|r| field(r, "targetRef").and_then(Value::as_str))
            .any(|owner| claims.iter().any(|c| c.eq_ignore_ascii_case(owner)));
    }
    let owner = field(entity, "spec").and_then(|spec| field(spec, "owner"));
    let Some(owner) = owner.and_then(Value::as_str) else {
        return false;
    };
    let namespace = field(entity, "metadata")
        .and_then(|metadata| field(metadata, "namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let (kind, rest) = owner.split_once(':').unwrap_or(("group", owner));
    let (namespace, name) = rest.split_once('/').unwrap_or((namespace, rest));
    // The ref is `{kind}:{namespace}/{name}`; a claim equals it, ignoring
    // case, when it has its length and each part at the same place.
    let parts = [kind, ":", namespace, "/", name];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    claims.iter().any(|claim| {
        let mut rest = claim.as_bytes();
        claim.len() == len
            && parts.iter().all(|part| {
                let (head, tail) = rest.split_at(part.len());
                rest = tail;
                head.eq_ignore_ascii_case(part.as_bytes())
            })
    })
}

/// `value[key]` for an object, as `Value::get` but without hashing the key
/// for the small objects entities are made of: a scan of a few keys is
/// cheaper than SipHash.
fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) if map.len() <= 8 => {
            map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        }
        Value::Object(map) => map.get(key),
        _ => None,
    }
}

fn has_entry(entity: &Value, at: &[&str], key: &str, value: &Option<String>) -> bool {
    let map = at.iter().try_fold(entity, |v, k| field(v, k));
    match map.and_then(|m| field(m, key)) {
        None => false,
        Some(found) => value
            .as_deref()
            .is_none_or(|want| found.as_str() == Some(want)),
    }
}

/// `HAS_METADATA`/`HAS_SPEC`: the dotted `key` exists under `root`, and
/// when `value` is given, equals it (or, for a list, contains it).
fn has_path(root: Option<&Value>, key: &str, value: Option<&str>) -> bool {
    let found = key
        .split('.')
        .try_fold(root, |v, part| Some(field(v?, part)))
        .flatten();
    match (found, value) {
        (None, _) | (Some(Value::Null), _) => false,
        (Some(_), None) => true,
        (Some(Value::Array(items)), Some(want)) => items.iter().any(|i| scalar_eq(i, want)),
        (Some(found), Some(want)) => scalar_eq(found, want),
    }
}

fn scalar_eq(value: &Value, want: &str) -> bool {
    match value {
        Value::String(s) => s == want,
        Value::Bool(b) => want == if *b { "true" } else { "false" },
        Value::Number(n) => n.to_string() == want,
        _ => false,
    }
}
