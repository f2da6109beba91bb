//! Bulk requests (RFC 7644 §3.7): parsing and `bulkId` references. The
//! server executes the operations; this module knows the message shapes.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::{urn, ScimError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BulkOperation {
    pub method: BulkMethod,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    pub path: String,
    pub data: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct BulkRequest {
    /// Stop after this many errors; `None` means never stop.
    pub fail_on_errors: Option<u64>,
    pub operations: Vec<BulkOperation>,
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Parses a BulkRequest, enforcing the operation limit.
pub fn parse_bulk_request(body: &Value, max_operations: usize) -> Result<BulkRequest, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the bulk request must be a JSON object"))?;
    let names_bulk = field(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(urn::BULK_REQUEST))
            })
        });
    if !names_bulk {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must be [\"{}\"]",
            urn::BULK_REQUEST
        )));
    }
    let fail_on_errors =
        match field(obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })?),
        };
    let ops = field(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("\"Operations\" must be an array"))?;
    if ops.len() > max_operations {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "a bulk request may carry at most {max_operations} operations, not {}",
                ops.len()
            ),
        ));
    }
    let mut operations = Vec::with_capacity(ops.len());
    let mut seen_ids = std::collections::HashSet::new();
    for (index, op) in ops.iter().enumerate() {
        let op = op.as_object().ok_or_else(|| {
            ScimError::invalid_syntax(format!("operation {index} must be an object"))
        })?;
        let method = match field(op, "method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("POST") => BulkMethod::Post,
            Some("PUT") => BulkMethod::Put,
            Some("PATCH") => BulkMethod::Patch,
            Some("DELETE") => BulkMethod::Delete,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {index}: method must be POST, PUT, PATCH or DELETE"
                )))
            }
        };
        let path = field(op, "path")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ScimError::invalid_syntax(format!("operation {index}: path is required"))
            })?
            .to_string();
        let bulk_id = field(op, "bulkId")
            .and_then(Value::as_str)
            .map(str::to_string);
        if method == BulkMethod::Post && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "operation {index}: POST operations need a bulkId"
            )));
        }
        if let Some(id) = &bulk_id {
            if !seen_ids.insert(id.clone()) {
                return Err(ScimError::invalid_syntax(format!(
                    "bulkId {id:?} is used twice"
                )));
            }
        }
        let data = field(op, "data").cloned();
        if method != BulkMethod::Delete && data.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "operation {index}: {} needs data",
                method.as_str()
            )));
        }
        operations.push(BulkOperation {
            method,
            bulk_id,
            version: field(op, "version")
                .and_then(Value::as_str)
                .map(str::to_string),
            path,
            data,
        });
    }
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

/// Replaces every `"bulkId:<id>"` string in `value` by the id that the
/// operation with that bulkId created. Returns the first reference that has
/// no created id yet.
pub fn resolve_bulk_ids(
    value: &mut Value,
    created: &HashMap<String, String>,
) -> Result<(), String> {
    match value {
        Value::String(s) => {
            if let Some(reference) = s.strip_prefix("bulkId:") {
                match created.get(reference) {
                    Some(id) => *s = id.clone(),
                    None => return Err(reference.to_string()),
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|i| resolve_bulk_ids(i, created)),
        Value::Object(fields) => fields
            .values_mut()
            .try_for_each(|v| resolve_bulk_ids(v, created)),
        _ => Ok(()),
    }
}

/// Every bulkId a value refers to.
pub fn bulk_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(reference) = s.strip_prefix("bulkId:") {
                out.push(reference.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| bulk_references(i, out)),
        Value::Object(fields) => fields.values().for_each(|v| bulk_references(v, out)),
        _ => {}
    }
}

/// One entry of a BulkResponse.
pub fn bulk_result(
    op: &BulkOperation,
    location: Option<String>,
    status: u16,
    error: Option<&ScimError>,
) -> Value {
    let mut out = json!({
        "method": op.method.as_str(),
        "status": status.to_string(),
    });
    if let Some(obj) = out.as_object_mut() {
        if let Some(id) = &op.bulk_id {
            obj.insert("bulkId".into(), Value::String(id.clone()));
        }
        if let Some(location) = location {
            obj.insert("location".into(), Value::String(location));
        }
        if let Some(err) = error {
            obj.insert("response".into(), err.to_json());
        }
    }
    out
}

pub fn bulk_response(results: Vec<Value>) -> Value {
    json!({"schemas": [urn::BULK_RESPONSE], "Operations": results})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_the_rfc_example_shape_and_resolves_references() {
        let body = json!({
            "schemas": [urn::BULK_REQUEST],
            "failOnErrors": 1,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"userName": "alice"}},
                {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
                 "data": {"displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
                {"method": "DELETE", "path": "/Users/abc"},
            ]
        });
        let req = parse_bulk_request(&body, 10).unwrap();
        assert_eq!(req.fail_on_errors, Some(1));
        assert_eq!(req.operations.len(), 3);
        let mut data = req.operations[1].data.clone().unwrap();
        let mut refs = Vec::new();
        bulk_references(&data, &mut refs);
        assert_eq!(refs, ["qwerty"]);
        assert_eq!(
            resolve_bulk_ids(&mut data, &HashMap::new()),
            Err("qwerty".into())
        );
        let created = HashMap::from([("qwerty".to_string(), "92b7".to_string())]);
        resolve_bulk_ids(&mut data, &created).unwrap();
        assert_eq!(data["members"][0]["value"], "92b7");
    }

    #[test]
    fn rejects_malformed_requests() {
        for (body, status) in [
            (json!({"Operations": []}), 400),
            (json!({"schemas": [urn::BULK_REQUEST]}), 400),
            (
                json!({"schemas": [urn::BULK_REQUEST], "Operations": [{"method": "GET", "path": "/Users"}]}),
                400,
            ),
            (
                json!({"schemas": [urn::BULK_REQUEST], "Operations": [{"method": "POST", "path": "/Users", "data": {}}]}),
                400,
            ),
            (
                json!({"schemas": [urn::BULK_REQUEST], "Operations": [{"method": "DELETE", "path": "/Users/1"}, {"method": "DELETE", "path": "/Users/2"}, {"method": "DELETE", "path": "/Users/3"}]}),
                413,
            ),
        ] {
            assert_eq!(
                parse_bulk_request(&body, 2).unwrap_err().status,
                status,
                "{body}"
            );
        }
    }
}
