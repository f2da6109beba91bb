//! SCIM PATCH (RFC 7644 §3.5.2), including the dialects Okta and Microsoft
//! Entra ID actually send.
//!
//! The flow is: [`parse_patch_request`] turns a `PatchOp` message into
//! [`PatchOperation`]s; [`apply_to_user`] applies them to a stored user
//! document; [`apply_to_group`] applies them to a group document *without*
//! its members and hands membership changes back as [`MemberOp`]s, which
//! [`plan_membership`] folds into one [`MembershipPlan`] the server can
//! execute in O(changed members).
//!
//! Decisions worth knowing (each is also tested in `tests.rs`):
//!
//! - Every step is all-or-nothing: operations run in order on a working
//!   copy, and the caller's document changes only if all of them succeed.
//! - Op names, attribute names and message keys compare case-insensitively;
//!   results are written with the schema's spelling. Boolean attributes
//!   accept `"True"`/`"False"` strings (Entra's default dialect).
//! - An unknown op name is `invalidSyntax`: the message does not follow the
//!   `PatchOp` grammar. `remove` without a path is `noTarget` (RFC 7644
//!   §3.5.2.2). `add`/`replace` without a value is `invalidValue`.
//! - `replace` of a complex singular attribute (`name`) *merges* the given
//!   sub-attributes and leaves the others unchanged, as RFC 7644 §3.5.2.3
//!   requires ("Sub-attributes that are not specified in the value
//!   parameter are left unchanged"). `replace` with `"value": null` removes.
//! - `replace`/`add` with `attr[filter].sub` where no element matches
//!   creates an element when the filter is a conjunction of `eq`
//!   comparisons (`emails[type eq "work"].value` → `{type: "work", value}`),
//!   because Entra relies on it; otherwise it is `noTarget`. `replace` of
//!   whole elements (`attr[filter]`, no `.sub`) follows the RFC: `noTarget`.
//! - `remove` with `attr[filter]` that matches nothing is `noTarget`, except
//!   on group `members`, where removing an absent member succeeds (IdPs
//!   retry). `remove` with a value list (Entra) is idempotent.
//! - Read-only attributes (`id`, `meta`, `groups`, `members.display`, …)
//!   named by a path are `mutability` errors. Inside a path-less value object
//!   they are ignored, except `id`, which must equal the resource's id (Okta
//!   sends it) or the request fails with `mutability`. `password` is
//!   accepted and discarded. Unknown attributes in a path are `invalidPath`;
//!   unknown keys in a path-less value object are ignored.
//! - Removing a required attribute (`userName`, group `displayName`) or
//!   setting it to null or an empty string is `invalidValue` ("a required
//!   value was missing", RFC 7644 §3.12).
//! - Value filters on elements are evaluated here, against the multi-valued
//!   attribute's own sub-attribute definitions, so `caseExact` is right
//!   (`members.value` is case-exact, `emails.value` is not).

mod apply;
mod element_filter;
mod members;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::filter::{parse_patch_path, PatchPath};
use crate::{urn, ScimError};

pub use apply::{apply_to_group, apply_to_user};
pub use members::{plan_membership, MemberOp, MemberValue, MembershipPlan, PlanError};

/// The most operations one PATCH request may carry; more is `tooMany`.
pub const MAX_OPERATIONS: usize = 1000;

/// The three PATCH operations of RFC 7644 §3.5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    /// Adds values: sets single-valued attributes, merges complex ones,
    /// appends to multi-valued ones (RFC 7644 §3.5.2.1).
    Add,
    /// Removes an attribute, sub-attribute or matching values (§3.5.2.2).
    Remove,
    /// Replaces values; a null value unassigns (§3.5.2.3).
    Replace,
}

impl PatchOpKind {
    /// Parses an op name case-insensitively (`"Replace"`, `"add"`).
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("add") {
            Some(Self::Add)
        } else if name.eq_ignore_ascii_case("remove") {
            Some(Self::Remove)
        } else if name.eq_ignore_ascii_case("replace") {
            Some(Self::Replace)
        } else {
            None
        }
    }

    /// The RFC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One validated operation of a PATCH request.
///
/// Invariants established by [`parse_patch_request`]: `add` always has a
/// non-null value; `replace` always has a value, and a null one only with a
/// path; path-less `add`/`replace` values are JSON objects; `remove` always
/// has a path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    /// `None` when the request had no `path` (or an empty one): the target is
    /// the resource itself.
    pub path: Option<PatchPath>,
    /// `None` when the request had no `value` member; `Some(Value::Null)`
    /// when it was explicitly null.
    pub value: Option<Value>,
}

/// Parses a PATCH request body (RFC 7644 §3.5.2).
///
/// `schemas` must contain the `PatchOp` URN (compared case-insensitively),
/// else `invalidSyntax`. `Operations` (key case-insensitive) must be a
/// non-empty array of at most [`MAX_OPERATIONS`] objects (`invalidSyntax`,
/// `tooMany`). Each op's `op` is `add`/`remove`/`replace` in any case
/// (`invalidSyntax` otherwise); `path` goes through the filter crate's path
/// parser (`invalidPath`); `remove` without a path is `noTarget`; `add` or
/// `replace` without a usable value is `invalidValue`.
pub fn parse_patch_request(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    let Some(body) = body.as_object() else {
        return Err(ScimError::invalid_syntax(
            "a PATCH request body must be a JSON object",
        ));
    };
    let schemas_ok = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(urn::PATCH_OP))
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must contain \"{}\"",
            urn::PATCH_OP
        )));
    }
    let operations = match get_ci(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(ScimError::invalid_syntax(
                "\"Operations\" must contain at least one operation",
            ))
        }
        Some(_) => {
            return Err(ScimError::invalid_syntax(
                "\"Operations\" must be an array of operations",
            ))
        }
        None => {
            return Err(ScimError::invalid_syntax(
                "a PATCH request needs an \"Operations\" array",
            ))
        }
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::too_many(format!(
            "a PATCH request may carry at most {MAX_OPERATIONS} operations, not {}",
            operations.len()
        )));
    }
    operations
        .iter()
        .enumerate()
        .map(|(index, op)| parse_operation(index, op))
        .collect()
}

fn parse_operation(index: usize, op: &Value) -> Result<PatchOperation, ScimError> {
    let Some(fields) = op.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "operation {index} must be a JSON object"
        )));
    };
    let kind = match get_ci(fields, "op") {
        Some(Value::String(name)) => PatchOpKind::parse(name).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "operation {index}: \"op\" must be \"add\", \"remove\" or \"replace\", not {name:?}"
            ))
        })?,
        Some(_) => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {index}: \"op\" must be a string"
            )))
        }
        None => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {index} has no \"op\""
            )))
        }
    };
    let path = match get_ci(fields, "path") {
        None | Some(Value::Null) => None,
        // Some clients send `"path": ""` for "the resource itself".
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(parse_patch_path(p.trim())?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {index}: \"path\" must be a string"
            )))
        }
    };
    let value = get_ci(fields, "value").cloned();
    match (kind, &path, &value) {
        (PatchOpKind::Remove, None, _) => Err(ScimError::no_target(format!(
            "operation {index}: \"remove\" needs a \"path\""
        ))),
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(ScimError::invalid_value(
            format!("operation {index}: \"{}\" needs a \"value\"", kind.as_str()),
        )),
        (PatchOpKind::Add, Some(_), Some(Value::Null)) => Err(ScimError::invalid_value(format!(
            "operation {index}: \"add\" needs a non-null \"value\""
        ))),
        (PatchOpKind::Add | PatchOpKind::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::invalid_value(format!(
                "operation {index}: without a \"path\", \"value\" must be an object of attributes"
            )))
        }
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// A member of a JSON object by key, case-insensitively; an exact match wins.
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}
