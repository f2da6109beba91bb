//! List queries (RFC 7644 §3.4.2–3.4.3): filter, sort, paging and the
//! `attributes`/`excludedAttributes` projection, from query parameters or a
//! `POST .search` body, and the ListResponse that answers them.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::filter::{self, Filter};
use crate::schema::{AttrType, ResourceSchema, Returned};
use crate::{urn, ScimError};

/// The most resources one page returns, whatever `count` asks for.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A parsed list request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub sort_by: Option<String>,
    pub descending: bool,
    /// 1-based, as in SCIM.
    pub start_index: u64,
    /// `None` means the server's page size.
    pub count: Option<u64>,
    pub projection: Projection,
}

/// Which attributes a response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_int(name: &str, raw: &str) -> Result<i64, ScimError> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {raw:?}")))
}

impl Projection {
    /// Parses `attributes`/`excludedAttributes` query values.
    pub fn from_params(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        Self {
            attributes: attributes.map(split_list).unwrap_or_default(),
            excluded: excluded.map(split_list).unwrap_or_default(),
        }
    }

    /// Checks every named attribute exists in `schema`.
    pub fn validate(&self, schema: &ResourceSchema) -> Result<(), ScimError> {
        for name in self.attributes.iter().chain(&self.excluded) {
            if name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let known = match schema.resolve(name) {
                Some((resolved, Some(sub))) => resolved.def.sub(sub).is_some(),
                Some((_, None)) => true,
                // A bare extension URN names the whole extension.
                None => schema.extension(name).is_some(),
            };
            if !known {
                return Err(ScimError::invalid_value(format!(
                    "unknown attribute {name:?} in attributes/excludedAttributes"
                )));
            }
        }
        Ok(())
    }

    /// Whether the response needs the attribute `name` (used to skip loading
    /// expensive attributes such as a group's members).
    pub fn wants(&self, schema: &ResourceSchema, name: &str) -> bool {
        let names = |list: &[String]| {
            list.iter().any(|a| {
                schema
                    .resolve(a)
                    .is_some_and(|(r, _)| r.def.name.eq_ignore_ascii_case(name))
            })
        };
        if !self.attributes.is_empty() {
            return names(&self.attributes);
        }
        !self.excluded.iter().any(|a| {
            matches!(schema.resolve(a), Some((r, None)) if r.def.name.eq_ignore_ascii_case(name))
        })
    }

    /// Applies the projection to a full resource document.
    pub fn apply(&self, schema: &ResourceSchema, doc: Value) -> Value {
        let Value::Object(mut obj) = doc else {
            return doc;
        };
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for (key, value) in std::mem::take(&mut obj) {
                if let Some(v) = self.keep_requested(schema, &key, value) {
                    kept.insert(key, v);
                }
            }
            obj = kept;
        }
        for name in &self.excluded {
            exclude(schema, &mut obj, name);
        }
        Value::Object(obj)
    }

    /// With `attributes=...`: keep a top-level key if it is always returned
    /// or requested (whole, or some of its sub-attributes).
    fn keep_requested(&self, schema: &ResourceSchema, key: &str, value: Value) -> Option<Value> {
        if key == "schemas" || key == "id" {
            return Some(value);
        }
        if let Some(ext) = schema.extension(key) {
            // Extension object: keep the requested attributes inside it.
            if self
                .attributes
                .iter()
                .any(|a| a.eq_ignore_ascii_case(ext.id))
            {
                return Some(value);
            }
            let Value::Object(fields) = value else {
                return None;
            };
            let kept: Map<String, Value> = fields
                .into_iter()
                .filter(|(k, _)| {
                    self.attributes.iter().any(|a| {
                        matches!(schema.resolve(a), Some((r, _)) if r.extension == Some(ext.id) && r.def.name.eq_ignore_ascii_case(k))
                    })
                })
                .collect();
            return (!kept.is_empty()).then_some(Value::Object(kept));
        }
        let (resolved, _) = schema.resolve(key)?;
        if resolved.def.returned == Returned::Always {
            return Some(value);
        }
        let mut subs = Vec::new();
        for requested in &self.attributes {
            if let Some((r, sub)) = schema.resolve(requested) {
                if r.extension.is_none() && r.def.name.eq_ignore_ascii_case(key) {
                    match sub {
                        None => return Some(value),
                        Some(sub) => subs.push(sub.to_string()),
                    }
                }
            }
        }
        if subs.is_empty() {
            return None;
        }
        let keep_subs = |v: Value| match v {
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                    .collect(),
            ),
            other => other,
        };
        Some(match value {
            Value::Array(items) => Value::Array(items.into_iter().map(keep_subs).collect()),
            other => keep_subs(other),
        })
    }
}

fn exclude(schema: &ResourceSchema, obj: &mut Map<String, Value>, name: &str) {
    if let Some(ext) = schema.extension(name) {
        obj.retain(|k, _| !k.eq_ignore_ascii_case(ext.id));
        return;
    }
    let Some((resolved, sub)) = schema.resolve(name) else {
        return;
    };
    if resolved.def.returned == Returned::Always {
        return;
    }
    let container = match resolved.extension {
        Some(urn) => match obj
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(urn))
            .and_then(|(_, v)| v.as_object_mut())
        {
            Some(ext) => ext,
            None => return,
        },
        None => obj,
    };
    let attr = resolved.def.name;
    match sub {
        None => container.retain(|k, _| !k.eq_ignore_ascii_case(attr)),
        Some(sub) => {
            let strip = |v: &mut Value| {
                if let Some(fields) = v.as_object_mut() {
                    fields.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                }
            };
            if let Some((_, value)) = container
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            {
                match value {
                    Value::Array(items) => items.iter_mut().for_each(strip),
                    other => strip(other),
                }
            }
        }
    }
}

impl ListQuery {
    /// Builds a query from URL query parameters (names case-insensitive).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        schema: &ResourceSchema,
    ) -> Result<Self, ScimError> {
        let mut query = ListQuery {
            start_index: 1,
            ..ListQuery::default()
        };
        let mut attributes = None;
        let mut excluded = None;
        for (key, value) in params {
            match key.to_ascii_lowercase().as_str() {
                "filter" => query.filter = Some(parse_filter(value, schema)?),
                "sortby" => query.sort_by = Some(value.trim().to_string()),
                "sortorder" => query.descending = parse_sort_order(value)?,
                "startindex" => query.start_index = parse_int("startIndex", value)?.max(1) as u64,
                "count" => query.count = Some(parse_int("count", value)?.max(0) as u64),
                "attributes" => attributes = Some(value.to_string()),
                "excludedattributes" => excluded = Some(value.to_string()),
                _ => {}
            }
        }
        query.projection = Projection::from_params(attributes.as_deref(), excluded.as_deref());
        query.finish(schema)
    }

    /// Builds a query from a `POST /.search` body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value, schema: &ResourceSchema) -> Result<Self, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the search request must be a JSON object"))?;
        let field = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        match field("schemas").and_then(Value::as_array) {
            Some(list)
                if list.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(urn::SEARCH_REQUEST))
                }) => {}
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "\"schemas\" must be [\"{}\"]",
                    urn::SEARCH_REQUEST
                )))
            }
        }
        let string = |name: &str| -> Result<Option<String>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        let names = |name: &str| -> Result<Vec<String>, ScimError> {
            match field(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must be an array of strings"))
                        })
                    })
                    .collect(),
                Some(Value::String(s)) => Ok(split_list(s)),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an array of strings"
                ))),
            }
        };
        let query = ListQuery {
            filter: string("filter")?
                .map(|f| parse_filter(&f, schema))
                .transpose()?,
            sort_by: string("sortBy")?,
            descending: string("sortOrder")?
                .map(|s| parse_sort_order(&s))
                .transpose()?
                .unwrap_or(false),
            start_index: int("startIndex")?.unwrap_or(1).max(1) as u64,
            count: int("count")?.map(|c| c.max(0) as u64),
            projection: Projection {
                attributes: names("attributes")?,
                excluded: names("excludedAttributes")?,
            },
        };
        query.finish(schema)
    }

    fn finish(mut self, schema: &ResourceSchema) -> Result<Self, ScimError> {
        self.projection.validate(schema)?;
        if let Some(sort_by) = &self.sort_by {
            if schema.resolve(sort_by).is_none() {
                return Err(ScimError::invalid_value(format!(
                    "cannot sort by unknown attribute {sort_by:?}"
                )));
            }
        }
        self.count = Some(self.count.unwrap_or(100).min(MAX_PAGE_SIZE));
        Ok(self)
    }

    /// The page size after defaults and the cap.
    pub fn page_size(&self) -> u64 {
        self.count.unwrap_or(100)
    }

    /// The same query without paging or sorting: every match. Used to
    /// gather candidates from several resource types before paging them
    /// together.
    pub fn everything(&self) -> ListQuery {
        ListQuery {
            sort_by: None,
            start_index: 1,
            count: Some(i64::MAX as u64),
            ..self.clone()
        }
    }
}

fn parse_filter(raw: &str, schema: &ResourceSchema) -> Result<Filter, ScimError> {
    let parsed = filter::parse(raw)?;
    parsed.validate(schema)?;
    Ok(parsed)
}

fn parse_sort_order(raw: &str) -> Result<bool, ScimError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(false),
        "descending" => Ok(true),
        _ => Err(ScimError::invalid_value(format!(
            "sortOrder must be \"ascending\" or \"descending\", not {raw:?}"
        ))),
    }
}

/// The sort key of a document for `sortBy` (RFC 7644 §3.4.2.3): for a
/// multi-valued attribute, its primary value (else the first).
fn sort_key<'a>(doc: &'a Value, schema: &ResourceSchema, sort_by: &str) -> Option<&'a Value> {
    let (resolved, sub) = schema.resolve(sort_by)?;
    let container = match resolved.extension {
        Some(urn) => get_ci(doc, urn)?,
        None => doc,
    };
    let mut value = get_ci(container, resolved.def.name)?;
    if let Value::Array(items) = value {
        value = items
            .iter()
            .find(|i| get_ci(i, "primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    match (sub, resolved.def.kind) {
        (Some(sub), _) => get_ci(value, sub),
        (None, AttrType::Complex) => get_ci(value, "value"),
        (None, _) => Some(value),
    }
}

fn get_ci<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Sorts documents by `sort_by`. Resources without a value sort last in
/// ascending order, first in descending (RFC 7644 §3.4.2.3). Stable.
pub fn sort_documents(
    docs: &mut [Value],
    schema: &ResourceSchema,
    sort_by: &str,
    descending: bool,
) {
    let case_exact = schema
        .resolve(sort_by)
        .map(|(r, sub)| match sub.and_then(|s| r.def.sub(s)) {
            Some(sub) => sub.case_exact,
            None => r.def.case_exact,
        })
        .unwrap_or(false);
    let compare = |a: &Value, b: &Value| -> Ordering {
        match (sort_key(a, schema, sort_by), sort_key(b, schema, sort_by)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => compare_values(x, y, case_exact),
        }
    };
    docs.sort_by(|a, b| {
        let ordering = compare(a, b);
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

fn compare_values(a: &Value, b: &Value, case_exact: bool) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) if case_exact => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// A ListResponse (RFC 7644 §3.4.2).
pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [urn::LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{group_resource, user_resource};

    fn user_doc() -> Value {
        json!({
            "schemas": [urn::USER, urn::ENTERPRISE_USER],
            "id": "1",
            "userName": "jane",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "j@x", "type": "work"}, {"value": "k@x", "type": "home"}],
            urn::ENTERPRISE_USER: {"department": "Eng", "costCenter": "7"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn projection_table() {
        let cases: Vec<(Option<&str>, Option<&str>, Value)> = vec![
            (
                Some("userName"),
                None,
                json!({"schemas": [urn::USER, urn::ENTERPRISE_USER], "id": "1", "userName": "jane"}),
            ),
            (
                Some("name.givenName,emails.value"),
                None,
                json!({
                "schemas": [urn::USER, urn::ENTERPRISE_USER], "id": "1",
                "name": {"givenName": "Jane"}, "emails": [{"value": "j@x"}, {"value": "k@x"}]}),
            ),
            (
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                None,
                json!({
                "schemas": [urn::USER, urn::ENTERPRISE_USER], "id": "1", urn::ENTERPRISE_USER: {"department": "Eng"}}),
            ),
            (
                None,
                Some("emails,name.familyName,id,meta"),
                json!({
                "schemas": [urn::USER, urn::ENTERPRISE_USER], "id": "1", "userName": "jane",
                "name": {"givenName": "Jane"},
                urn::ENTERPRISE_USER: {"department": "Eng", "costCenter": "7"}}),
            ),
            (
                None,
                Some(urn::ENTERPRISE_USER),
                json!({
                "schemas": [urn::USER, urn::ENTERPRISE_USER], "id": "1", "userName": "jane",
                "name": {"givenName": "Jane", "familyName": "Doe"},
                "emails": [{"value": "j@x", "type": "work"}, {"value": "k@x", "type": "home"}],
                "meta": {"resourceType": "User"}}),
            ),
        ];
        for (attributes, excluded, expected) in cases {
            let projection = Projection::from_params(attributes, excluded);
            projection.validate(user_resource()).unwrap();
            assert_eq!(
                projection.apply(user_resource(), user_doc()),
                expected,
                "{attributes:?} {excluded:?}"
            );
        }
    }

    #[test]
    fn entra_excluded_members_is_not_wanted() {
        let p = Projection::from_params(None, Some("members"));
        assert!(!p.wants(group_resource(), "members"));
        assert!(Projection::default().wants(group_resource(), "members"));
        assert!(
            !Projection::from_params(Some("displayName"), None).wants(group_resource(), "members")
        );
        assert!(
            Projection::from_params(Some("members.value"), None).wants(group_resource(), "members")
        );
    }

    #[test]
    fn unknown_projection_attribute_is_rejected() {
        let p = Projection::from_params(Some("nosuch"), None);
        assert_eq!(p.validate(user_resource()).unwrap_err().status, 400);
    }

    #[test]
    fn params_parse_with_defaults_and_caps() {
        let q = ListQuery::from_params(
            [
                ("startIndex", "0"),
                ("COUNT", "5000"),
                ("sortBy", "userName"),
                ("sortOrder", "descending"),
            ],
            user_resource(),
        )
        .unwrap();
        assert_eq!(q.start_index, 1);
        assert_eq!(q.page_size(), MAX_PAGE_SIZE);
        assert!(q.descending);
        for bad in [("count", "x"), ("sortOrder", "up"), ("sortBy", "nosuch")] {
            assert_eq!(
                ListQuery::from_params([bad], user_resource())
                    .unwrap_err()
                    .status,
                400
            );
        }
    }

    #[test]
    fn search_body_parses() {
        let body = json!({
            "schemas": [urn::SEARCH_REQUEST],
            "attributes": ["displayName"],
            "startIndex": 2, "count": 10,
        });
        let q = ListQuery::from_search_body(&body, user_resource()).unwrap();
        assert_eq!(q.start_index, 2);
        assert_eq!(q.page_size(), 10);
        assert_eq!(q.projection.attributes, vec!["displayName"]);
        assert!(ListQuery::from_search_body(&json!({"count": 1}), user_resource()).is_err());
    }

    #[test]
    fn sorting_puts_missing_values_last_and_uses_primary_values() {
        let mut docs = vec![
            json!({"id": "a", "userName": "b"}),
            json!({"id": "b"}),
            json!({"id": "c", "userName": "A"}),
        ];
        sort_documents(&mut docs, user_resource(), "userName", false);
        let ids: Vec<_> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        sort_documents(&mut docs, user_resource(), "userName", true);
        let ids: Vec<_> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
        let mut docs = vec![
            json!({"id": "x", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": true}]}),
            json!({"id": "y", "emails": [{"value": "m@x"}]}),
        ];
        sort_documents(&mut docs, user_resource(), "emails", false);
        assert_eq!(docs[0]["id"], "x");
    }
}
