//! Filter evaluation against SCIM resource documents, schema-aware
//! validation, and index push-down (`equality_value`).
//!
//! Semantics (RFC 7644 §3.4.2.2, with Roster's readings where the RFC is
//! silent):
//!
//! - Attribute names and document keys match case-insensitively. Unqualified
//!   names and the core schema's URN resolve to the core schema (or to the
//!   common attributes `id`, `externalId`, `meta`); an extension URN
//!   resolves to the attributes stored under that URN's key. `schemas` is
//!   filterable as a multi-valued, case-insensitive string.
//! - String comparisons honour the attribute's `caseExact`; otherwise both
//!   sides are lower-cased. `gt`/`ge`/`lt`/`le` on strings are lexicographic.
//! - `dateTime` attributes compare as instants (RFC 3339) for `eq`, `ne`,
//!   `gt`, `ge`, `lt`, `le`, so `2011-05-13T04:42:34Z` equals
//!   `2011-05-13T06:42:34+02:00`. If either side is not a valid timestamp
//!   the comparison falls back to the textual one; `co`/`sw`/`ew` are
//!   always textual (`meta.created sw "2024-"`).
//! - Numbers compare numerically (`1 eq 1.0`).
//! - Booleans support only `eq`/`ne`. `gt`/`ge`/`lt`/`le` on boolean or
//!   binary attributes are rejected by [`Filter::validate`] with
//!   `invalidFilter`, as RFC 7644 requires; [`Filter::matches`] cannot fail
//!   and treats them as no match. `co`/`sw`/`ew` on booleans and numbers
//!   likewise.
//! - A complex attribute compared without a sub-attribute compares its
//!   `value` sub-attribute (`emails co "@x"` means `emails.value co "@x"`);
//!   one without `value` (`name eq "x"`) never matches and fails validation.
//! - Multi-valued attributes match if ANY value matches.
//! - `pr` matches a value that is not null, not `""`, not `[]`, and not an
//!   object whose members are all absent in that sense.
//! - `ne` is read as `not (attr eq value)`: it matches when the attribute
//!   is missing, and on a multi-valued attribute only when no value equals.
//! - `eq null` is "not present" and `ne null` is "present" (RFC 7643 §2.5
//!   treats null and unassigned alike); other operators with `null` never
//!   match and fail validation.
//! - A value path `attr[f]` matches if any element of `attr` satisfies `f`,
//!   with paths in `f` relative to the element.
//! - An attribute the schema does not know never matches, whatever the
//!   operator (even `ne`); `not (...)` still negates that `false`.
//!   [`Filter::validate`] rejects such filters up front.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{AttrPath, CompareOp, Filter, Literal};
use crate::schema::{
    common_attribute, AttrType, AttributeDef, Mutability, ResourceSchema, Returned,
};
use crate::ScimError;

/// `schemas` (RFC 7643 §3) is not in the schema table but clients filter on
/// it (`schemas eq "urn:...:enterprise:2.0:User"`). URNs compare
/// case-insensitively.
static SCHEMAS_ATTRIBUTE: AttributeDef = AttributeDef {
    name: "schemas",
    kind: AttrType::Reference,
    multi_valued: true,
    required: true,
    case_exact: false,
    mutability: Mutability::ReadWrite,
    returned: Returned::Always,
    uniqueness: "none",
    canonical_values: &[],
    reference_types: &["uri"],
    description: "The schema URNs of the resource.",
    sub_attributes: Vec::new(),
};

impl Filter {
    /// Whether `resource` (a SCIM resource document in wire form) matches
    /// this filter. Never fails: anything that cannot match is `false`. See
    /// the module documentation for the exact semantics.
    pub fn matches(&self, resource: &Value, schema: &ResourceSchema) -> bool {
        eval(
            self,
            &Scope::Resource {
                doc: resource,
                schema,
            },
        )
    }

    /// Checks the filter against `schema`: every attribute must exist, and
    /// each comparison must make sense for the attribute's type (no `gt` on
    /// booleans, a number for numeric attributes, a valid timestamp for
    /// `dateTime` ones, ...). Errors are `400 invalidFilter`.
    pub fn validate(&self, schema: &ResourceSchema) -> Result<(), ScimError> {
        validate(self, &VScope::Resource(schema)).map_err(ScimError::invalid_filter)
    }

    /// If this filter is, or is an `and` of terms containing, `attr eq
    /// "string"` where the path resolves to the core (or common) attribute
    /// named `attr` (case-insensitively, URN-qualified or not, without a
    /// sub-attribute) and that attribute is simple and single-valued, the
    /// string (the leftmost one if there are several). Lets the server narrow candidates with an
    /// index before evaluating the whole filter on them.
    pub fn equality_value(&self, schema: &ResourceSchema, attr: &str) -> Option<&str> {
        match self {
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Literal::String(s),
            } if path.sub.is_none() => {
                let (extension, def) = resolve(schema, path)?;
                let indexable = extension.is_none()
                    && def.kind != AttrType::Complex
                    && !def.multi_valued
                    && def.name.eq_ignore_ascii_case(attr);
                indexable.then_some(s.as_str())
            }
            Filter::And(left, right) => left
                .equality_value(schema, attr)
                .or_else(|| right.equality_value(schema, attr)),
            _ => None,
        }
    }
}

/// Resolves a top-level path's attribute (ignoring `sub`): the extension URN
/// it lives under (`None` for core and common attributes) and its definition.
fn resolve<'s>(
    schema: &'s ResourceSchema,
    path: &AttrPath,
) -> Option<(Option<&'static str>, &'s AttributeDef)> {
    let core = |name: &str| {
        schema
            .core
            .attribute(name)
            .or_else(|| common_attribute(name))
            .map(|def| (None, def))
    };
    match &path.urn {
        None if path.attr.eq_ignore_ascii_case("schemas") => Some((None, &SCHEMAS_ATTRIBUTE)),
        None => core(&path.attr),
        Some(urn) if urn.eq_ignore_ascii_case(schema.core.id) => core(&path.attr),
        Some(urn) => {
            let ext = schema.extension(urn)?;
            ext.attribute(&path.attr).map(|def| (Some(ext.id), def))
        }
    }
}

/// A member of a JSON object by key, exact spelling first, then
/// case-insensitively.
fn get_ci<'r>(value: &'r Value, key: &str) -> Option<&'r Value> {
    let obj = value.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Pushes `value`, or its elements if it is an array.
fn push_flat<'r>(value: &'r Value, out: &mut Vec<&'r Value>) {
    match value {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

// ---- Evaluation -------------------------------------------------------------

/// What paths are relative to: the resource, or one element of the
/// attribute a value path is filtering.
enum Scope<'r, 's> {
    Resource {
        doc: &'r Value,
        schema: &'s ResourceSchema,
    },
    Element {
        parent: &'s AttributeDef,
        item: &'r Value,
    },
}

/// The values a path points at, flattened across multi-valued attributes,
/// with the definition that describes them.
struct Target<'r, 's> {
    def: &'s AttributeDef,
    values: Vec<&'r Value>,
}

fn lookup<'r, 's>(scope: &Scope<'r, 's>, path: &AttrPath) -> Option<Target<'r, 's>> {
    let (def, values) = match scope {
        Scope::Resource { doc, schema } => {
            let (extension, def) = resolve(schema, path)?;
            let container = match extension {
                Some(urn) => get_ci(doc, urn),
                None => Some(*doc),
            };
            let mut values = Vec::new();
            if let Some(value) = container.and_then(|c| get_ci(c, def.name)) {
                push_flat(value, &mut values);
            }
            (def, values)
        }
        Scope::Element { parent, item } => {
            if path.urn.is_some() || path.sub.is_some() {
                return None;
            }
            let def = parent.sub(&path.attr)?;
            let mut values = Vec::new();
            if let Some(value) = get_ci(item, def.name) {
                push_flat(value, &mut values);
            }
            return Some(Target { def, values });
        }
    };
    match &path.sub {
        None => Some(Target { def, values }),
        Some(sub) => {
            let sub_def = def.sub(sub)?;
            let mut sub_values = Vec::new();
            for value in values {
                if let Some(v) = get_ci(value, sub_def.name) {
                    push_flat(v, &mut sub_values);
                }
            }
            Some(Target {
                def: sub_def,
                values: sub_values,
            })
        }
    }
}

fn eval(filter: &Filter, scope: &Scope<'_, '_>) -> bool {
    match filter {
        Filter::And(left, right) => eval(left, scope) && eval(right, scope),
        Filter::Or(left, right) => eval(left, scope) || eval(right, scope),
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Present(path) => {
            lookup(scope, path).is_some_and(|t| t.values.iter().any(|v| is_present(v)))
        }
        Filter::Compare { path, op, value } => {
            lookup(scope, path).is_some_and(|target| compare_target(&target, *op, value))
        }
        Filter::ValuePath { path, filter } => {
            let Scope::Resource { .. } = scope else {
                // Nested value paths are a syntax error; never a match.
                return false;
            };
            if path.sub.is_some() {
                return false;
            }
            let Some(target) = lookup(scope, path) else {
                return false;
            };
            target.values.iter().any(|item| {
                eval(
                    filter,
                    &Scope::Element {
                        parent: target.def,
                        item,
                    },
                )
            })
        }
    }
}

/// `pr`: not null, not an empty string, array or object (an object whose
/// members are all empty counts as empty).
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare_target(target: &Target<'_, '_>, op: CompareOp, literal: &Literal) -> bool {
    if let Literal::Null = literal {
        let present = target.values.iter().any(|v| is_present(v));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }
    // A complex attribute without a sub-attribute compares its `value`.
    let (def, values) = if target.def.kind == AttrType::Complex {
        let Some(value_def) = target.def.sub("value") else {
            return false;
        };
        let values: Vec<&Value> = target
            .values
            .iter()
            .filter_map(|v| get_ci(v, value_def.name))
            .collect();
        (value_def, Cow::Owned(values))
    } else {
        (target.def, Cow::Borrowed(&target.values))
    };
    match op {
        CompareOp::Ne => !values
            .iter()
            .any(|v| compare_one(def, v, CompareOp::Eq, literal)),
        _ => values.iter().any(|v| compare_one(def, v, op, literal)),
    }
}

/// One attribute value against the literal, for every operator but `ne`
/// (which the caller turns into `not eq`).
fn compare_one(def: &AttributeDef, actual: &Value, op: CompareOp, literal: &Literal) -> bool {
    match (actual, literal) {
        (Value::String(a), Literal::String(b)) => {
            if def.kind == AttrType::DateTime && is_ordering_or_eq(op) {
                if let (Some(a), Some(b)) = (parse_datetime(a), parse_datetime(b)) {
                    return ordering_matches(op, a.cmp(&b));
                }
            }
            if matches!(def.kind, AttrType::Boolean | AttrType::Binary)
                && matches!(
                    op,
                    CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
                )
            {
                return false;
            }
            compare_strings(a, b, op, def.case_exact)
        }
        (Value::Bool(a), Literal::Bool(b)) => op == CompareOp::Eq && a == b,
        (Value::Bool(a), Literal::String(b)) => {
            op == CompareOp::Eq && parse_bool(b).is_some_and(|b| b == *a)
        }
        (Value::String(a), Literal::Bool(b)) if def.kind == AttrType::Boolean => {
            op == CompareOp::Eq && parse_bool(a).is_some_and(|a| a == *b)
        }
        (Value::Number(a), Literal::Number(b)) => {
            is_ordering_or_eq(op) && compare_numbers(a, b).is_some_and(|o| ordering_matches(op, o))
        }
        _ => false,
    }
}

fn is_ordering_or_eq(op: CompareOp) -> bool {
    matches!(
        op,
        CompareOp::Eq | CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    )
}

fn ordering_matches(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (a, b): (Cow<'_, str>, Cow<'_, str>) = if case_exact {
        (Cow::Borrowed(a), Cow::Borrowed(b))
    } else {
        (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase()))
    };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        other => ordering_matches(other, a.cmp(&b)),
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

// ---- Validation -------------------------------------------------------------

enum VScope<'s> {
    Resource(&'s ResourceSchema),
    /// Inside `parent[...]`; `name` is the path as the client wrote it.
    Element {
        parent: &'s AttributeDef,
        name: String,
    },
}

fn validate(filter: &Filter, scope: &VScope<'_>) -> Result<(), String> {
    match filter {
        Filter::And(left, right) | Filter::Or(left, right) => {
            validate(left, scope)?;
            validate(right, scope)
        }
        Filter::Not(inner) => validate(inner, scope),
        Filter::Present(path) => validate_path(scope, path).map(|_| ()),
        Filter::Compare { path, op, value } => {
            let def = validate_path(scope, path)?;
            validate_comparison(def, &display_name(scope, path), *op, value)
        }
        Filter::ValuePath { path, filter } => {
            let VScope::Resource(_) = scope else {
                return Err("value filters cannot be nested".to_string());
            };
            if path.sub.is_some() {
                return Err(format!(
                    "a value filter must follow an attribute, not the sub-attribute \"{path}\""
                ));
            }
            let def = validate_path(scope, path)?;
            if def.kind != AttrType::Complex {
                return Err(format!(
                    "\"{path}\" is a {} attribute; value filters apply to complex attributes",
                    def.kind.as_str()
                ));
            }
            validate(
                filter,
                &VScope::Element {
                    parent: def,
                    name: path.to_string(),
                },
            )
        }
    }
}

/// The path as the client would recognise it in an error message.
fn display_name(scope: &VScope<'_>, path: &AttrPath) -> String {
    match scope {
        VScope::Resource(_) => path.to_string(),
        VScope::Element { name, .. } => format!("{name}.{path}"),
    }
}

/// Resolves a path to the definition of what it points at, or explains why
/// it cannot.
fn validate_path<'s>(scope: &VScope<'s>, path: &AttrPath) -> Result<&'s AttributeDef, String> {
    match scope {
        VScope::Resource(schema) => {
            let Some((_, def)) = resolve(schema, path) else {
                return Err(format!(
                    "unknown attribute \"{path}\" for {} resources",
                    schema.name
                ));
            };
            match &path.sub {
                None => Ok(def),
                Some(_) if def.kind != AttrType::Complex => Err(format!(
                    "unknown attribute \"{path}\": \"{}\" has no sub-attributes",
                    def.name
                )),
                Some(sub) => def.sub(sub).ok_or_else(|| {
                    format!(
                        "unknown attribute \"{path}\": \"{}\" has no sub-attribute \"{sub}\"",
                        def.name
                    )
                }),
            }
        }
        VScope::Element { parent, name } => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(format!(
                    "unknown attribute \"{path}\" inside \"{name}[...]\": paths in a value \
                     filter name a sub-attribute of \"{name}\", such as \"value\""
                ));
            }
            parent.sub(&path.attr).ok_or_else(|| {
                format!(
                    "unknown attribute \"{name}.{}\": \"{name}\" has no sub-attribute \"{}\"",
                    path.attr, path.attr
                )
            })
        }
    }
}

fn validate_comparison(
    def: &AttributeDef,
    name: &str,
    op: CompareOp,
    literal: &Literal,
) -> Result<(), String> {
    if let Literal::Null = literal {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(()),
            _ => Err(format!(
                "\"{name} {op} null\": only eq and ne can compare with null"
            )),
        };
    }
    let def = if def.kind == AttrType::Complex {
        def.sub("value").ok_or_else(|| {
            let example = def.sub_attributes.first().map_or("", |s| s.name);
            format!(
                "\"{name}\" is a complex attribute and cannot be compared directly; compare \
                 one of its sub-attributes, such as \"{name}.{example}\""
            )
        })?
    } else {
        def
    };
    let kind = def.kind.as_str();
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    match def.kind {
        AttrType::Boolean => {
            if ordering || substring {
                return Err(format!(
                    "\"{name}\" is a boolean attribute; \"{op}\" is not defined for booleans \
                     (use eq or ne)"
                ));
            }
            let ok = match literal {
                Literal::Bool(_) => true,
                Literal::String(s) => parse_bool(s).is_some(),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "\"{name}\" is a boolean attribute; compare it with true or false, not {literal}"
                ));
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            if substring {
                return Err(format!(
                    "\"{name}\" is an {kind} attribute; \"{op}\" is only defined for strings"
                ));
            }
            if !matches!(literal, Literal::Number(_)) {
                return Err(format!(
                    "\"{name}\" is an {kind} attribute; compare it with a number, not {literal}"
                ));
            }
        }
        AttrType::Binary if ordering => {
            return Err(format!(
                "\"{name}\" is a binary attribute; \"{op}\" is not defined for binary values"
            ));
        }
        AttrType::DateTime => {
            let Literal::String(s) = literal else {
                return Err(format!(
                    "\"{name}\" is a dateTime attribute; compare it with a quoted RFC 3339 \
                     timestamp such as \"2011-05-13T04:42:34Z\", not {literal}"
                ));
            };
            if !substring && parse_datetime(s).is_none() {
                return Err(format!(
                    "\"{name}\" is a dateTime attribute and {literal} is not an RFC 3339 \
                     timestamp such as \"2011-05-13T04:42:34Z\""
                ));
            }
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            if !matches!(literal, Literal::String(_)) {
                return Err(format!(
                    "\"{name}\" is a {kind} attribute; compare it with a string in double \
                     quotes, not {literal}"
                ));
            }
        }
        AttrType::Complex => {
            return Err(format!(
                "\"{name}\" is a complex attribute and cannot be compared directly"
            ));
        }
    }
    Ok(())
}
