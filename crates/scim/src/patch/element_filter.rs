//! Value filters (`emails[type eq "work"]`) evaluated against one element of
//! a multi-valued attribute.
//!
//! The general filter evaluator sees whole resources and resolves paths
//! against the resource schema; inside a value filter the paths are relative
//! to the element (`type` means `emails.type`), and `caseExact` depends on
//! which attribute the element belongs to (`members.value` is case-exact,
//! `emails.value` is not). So PATCH evaluates value filters here, against
//! the multi-valued attribute's own definition.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::filter::{AttrPath, CompareOp, Filter, Literal};
use crate::schema::{AttrType, AttributeDef};
use crate::ScimError;

use super::get_ci;

/// Checks that every attribute a value filter mentions is a sub-attribute of
/// `def`, and that it holds no nested value filter.
pub(super) fn validate(filter: &Filter, def: &AttributeDef) -> Result<(), ScimError> {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => {
            sub_def(path, def).map(|_| ()).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "\"{}\" in the value filter is not a sub-attribute of \"{}\"",
                    path.full_name(),
                    def.name
                ))
            })
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            validate(a, def)?;
            validate(b, def)
        }
        Filter::Not(inner) => validate(inner, def),
        Filter::ValuePath { .. } => Err(ScimError::invalid_path(format!(
            "value filters on \"{}\" cannot nest another value filter",
            def.name
        ))),
    }
}

/// Whether `element` (one value of the multi-valued attribute `def`)
/// satisfies `filter`. Filters are assumed [`validate`]d; unknown paths and
/// non-object elements simply do not match.
pub(super) fn matches(filter: &Filter, element: &Value, def: &AttributeDef) -> bool {
    match filter {
        Filter::Compare { path, op, value } => {
            let Some(sub) = sub_def(path, def) else {
                return false;
            };
            let actual = element.as_object().and_then(|obj| get_ci(obj, sub.name));
            compare(*op, actual, value, sub.case_exact)
        }
        Filter::Present(path) => {
            let Some(sub) = sub_def(path, def) else {
                return false;
            };
            match element.as_object().and_then(|obj| get_ci(obj, sub.name)) {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::Object(o)) => !o.is_empty(),
                Some(_) => true,
            }
        }
        Filter::And(a, b) => matches(a, element, def) && matches(b, element, def),
        Filter::Or(a, b) => matches(a, element, def) || matches(b, element, def),
        Filter::Not(inner) => !matches(inner, element, def),
        Filter::ValuePath { .. } => false,
    }
}

/// If `filter` is a conjunction of `sub eq literal` comparisons, the element
/// those comparisons describe (e.g. `type eq "work"` → `{"type": "work"}`),
/// with canonical keys. Used to create the element a lenient `replace`
/// targets when none matches.
pub(super) fn element_from_equalities(
    filter: &Filter,
    def: &AttributeDef,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    collect_equalities(filter, def, &mut out)?;
    Some(out)
}

fn collect_equalities(
    filter: &Filter,
    def: &AttributeDef,
    out: &mut Map<String, Value>,
) -> Option<()> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } => {
            let sub = sub_def(path, def)?;
            let value = match (sub.kind, value) {
                (AttrType::Boolean, Literal::Bool(b)) => Value::Bool(*b),
                (AttrType::Boolean, Literal::String(s)) => match s.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return None,
                },
                (AttrType::Integer | AttrType::Decimal, Literal::Number(n)) => {
                    Value::Number(n.clone())
                }
                (
                    AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime,
                    Literal::String(s),
                ) => Value::String(s.clone()),
                _ => return None,
            };
            if out.get(sub.name).is_some_and(|existing| existing != &value) {
                // `type eq "a" and type eq "b"` describes no element.
                return None;
            }
            out.insert(sub.name.to_string(), value);
            Some(())
        }
        Filter::And(a, b) => {
            collect_equalities(a, def, out)?;
            collect_equalities(b, def, out)
        }
        _ => None,
    }
}

/// The sub-attribute a path inside a value filter names. Paths are relative
/// (`type`); a path repeating the attribute (`emails.type`) is accepted too.
fn sub_def<'d>(path: &AttrPath, def: &'d AttributeDef) -> Option<&'d AttributeDef> {
    if path.urn.is_some() {
        return None;
    }
    match &path.sub {
        None => def.sub(&path.attr),
        Some(sub) if path.attr.eq_ignore_ascii_case(def.name) => def.sub(sub),
        Some(_) => None,
    }
}

fn compare(op: CompareOp, actual: Option<&Value>, literal: &Literal, case_exact: bool) -> bool {
    match op {
        CompareOp::Eq => equals(actual, literal, case_exact),
        CompareOp::Ne => !equals(actual, literal, case_exact),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let (Some(Value::String(a)), Literal::String(b)) = (actual, literal) else {
                return false;
            };
            let (a, b) = fold_pair(a, b, case_exact);
            match op {
                CompareOp::Co => a.contains(b.as_str()),
                CompareOp::Sw => a.starts_with(b.as_str()),
                _ => a.ends_with(b.as_str()),
            }
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            let Some(ordering) = order(actual, literal, case_exact) else {
                return false;
            };
            match op {
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::Ge => ordering != Ordering::Less,
                CompareOp::Lt => ordering == Ordering::Less,
                _ => ordering != Ordering::Greater,
            }
        }
    }
}

fn equals(actual: Option<&Value>, literal: &Literal, case_exact: bool) -> bool {
    match (actual, literal) {
        (None | Some(Value::Null), Literal::Null) => true,
        (Some(Value::String(a)), Literal::String(b)) => {
            let (a, b) = fold_pair(a, b, case_exact);
            a == b
        }
        (Some(Value::Bool(a)), Literal::Bool(b)) => a == b,
        // `primary eq "true"`: a boolean compared with its string spelling.
        (Some(Value::Bool(a)), Literal::String(b)) => {
            b.eq_ignore_ascii_case(if *a { "true" } else { "false" })
        }
        (Some(Value::Number(a)), Literal::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

fn order(actual: Option<&Value>, literal: &Literal, case_exact: bool) -> Option<Ordering> {
    match (actual?, literal) {
        (Value::String(a), Literal::String(b)) => {
            let (a, b) = fold_pair(a, b, case_exact);
            Some(a.cmp(&b))
        }
        (Value::Number(a), Literal::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        _ => None,
    }
}

fn fold_pair(a: &str, b: &str, case_exact: bool) -> (String, String) {
    if case_exact {
        (a.to_string(), b.to_string())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    }
}
