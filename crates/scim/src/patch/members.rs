//! Group membership changes: what a group PATCH asks for ([`MemberOp`]) and
//! the single change the server makes ([`MembershipPlan`]).
//!
//! A group can have 100,000 members, so a PATCH never loads them unless an
//! operation cannot be resolved otherwise (`remove` with a value filter
//! other than `value eq "…"`). Everything else folds into a delta of added
//! and removed ids, or an absolute list after a `replace`.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::filter::{CompareOp, Filter, Literal};
use crate::schema::{group_resource, AttributeDef};
use crate::ScimError;

use super::{element_filter, get_ci};

/// One membership change requested by a group PATCH, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    /// Add these members: canonical member objects
    /// `{"value": id, "type"?: "User"|"Group", "display"?: …}`.
    Add(Vec<Value>),
    /// Remove these member ids (from `members[value eq "id"]` paths, or
    /// Entra's `remove` with a value list). Ids that are not members are
    /// ignored.
    Remove(Vec<String>),
    /// Remove the members matching a value filter that is not a plain
    /// `value eq "…"` (e.g. `members[type eq "Group"]`); resolving it needs
    /// the current member list.
    RemoveMatching(Filter),
    /// Replace the membership with exactly this list (canonical member
    /// objects), from `replace` with path `members` or a path-less `replace`
    /// whose value has a `members` key.
    Replace(Vec<Value>),
    /// `remove` with path `members` and no value (or `replace` with null):
    /// the RFC's "remove all members", kept distinct so the server can audit
    /// it as such.
    Clear,
}

/// A member to add, as the client described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// The member's id.
    pub value: String,
    /// `"User"` or `"Group"` when the client said which.
    pub kind: Option<String>,
}

/// The net membership change of a PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipPlan {
    /// No membership change.
    Unchanged,
    /// Add these members (ids that already are members are no-ops for the
    /// server) and remove these ids (absent ids are no-ops). An id is never
    /// in both lists.
    Delta {
        add: Vec<MemberValue>,
        remove: Vec<String>,
    },
    /// The membership becomes exactly this list (possibly empty). Only
    /// returned when the current members were not supplied; with them, the
    /// plan is always a precise [`MembershipPlan::Delta`].
    Replace(Vec<MemberValue>),
}

/// Why [`plan_membership`] could not produce a plan.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// An operation (a `remove` with a member filter) must see the current
    /// members; call again with `current`.
    #[error("the current members are needed to resolve a member filter")]
    NeedsMembers,
    /// An operation was malformed (only possible for hand-built ops; those
    /// from [`super::apply_to_group`] are validated).
    #[error(transparent)]
    Scim(#[from] ScimError),
}

/// Folds member operations into one plan.
///
/// `current` is the group's member objects (`{value, type, display}`); pass
/// `None` first. The result is `Err(PlanError::NeedsMembers)` only when a
/// [`MemberOp::RemoveMatching`] is not overridden by a later `Replace` or
/// `Clear`; then call again with the members. Operations before the last
/// `Replace`/`Clear` cannot affect the outcome and are skipped.
pub fn plan_membership(
    ops: &[MemberOp],
    current: Option<&[Value]>,
) -> Result<MembershipPlan, PlanError> {
    let def = members_def()?;
    let start = ops
        .iter()
        .rposition(|op| matches!(op, MemberOp::Replace(_) | MemberOp::Clear))
        .unwrap_or(0);
    let mut seq = Seq(0);
    let mut state = match current {
        Some(current) => State::Absolute(set_from(current, &mut seq, false)?),
        None => State::Delta {
            add: BTreeMap::new(),
            remove: BTreeMap::new(),
        },
    };
    for op in ops.iter().skip(start) {
        match op {
            MemberOp::Add(values) => {
                for value in values {
                    let (id, member) = member_entry(value)?;
                    let at = seq.next();
                    match &mut state {
                        State::Delta { add, remove } => {
                            remove.remove(&id);
                            add.entry(id).or_insert((at, member));
                        }
                        State::Absolute(set) => {
                            set.entry(id).or_insert((at, member));
                        }
                    }
                }
            }
            MemberOp::Remove(ids) => {
                for id in ids {
                    let at = seq.next();
                    match &mut state {
                        State::Delta { add, remove } => {
                            add.remove(id);
                            remove.entry(id.clone()).or_insert(at);
                        }
                        State::Absolute(set) => {
                            set.remove(id);
                        }
                    }
                }
            }
            MemberOp::RemoveMatching(filter) => match &mut state {
                State::Delta { .. } => return Err(PlanError::NeedsMembers),
                State::Absolute(set) => {
                    set.retain(|_, (_, member)| !element_filter::matches(filter, member, def));
                }
            },
            MemberOp::Replace(values) => {
                state = State::Absolute(set_from(values, &mut seq, true)?);
            }
            MemberOp::Clear => state = State::Absolute(BTreeMap::new()),
        }
    }
    Ok(match (state, current) {
        (State::Delta { add, remove }, _) => {
            if add.is_empty() && remove.is_empty() {
                MembershipPlan::Unchanged
            } else {
                MembershipPlan::Delta {
                    add: to_values(in_order(add)),
                    remove: {
                        let mut ids: Vec<(u64, String)> =
                            remove.into_iter().map(|(id, at)| (at, id)).collect();
                        ids.sort();
                        ids.into_iter().map(|(_, id)| id).collect()
                    },
                }
            }
        }
        (State::Absolute(set), None) => MembershipPlan::Replace(to_values(in_order(set))),
        (State::Absolute(set), Some(current)) => {
            let mut before = Vec::new();
            let mut seen = HashSet::new();
            for member in current {
                if let Ok((id, _)) = member_entry(member) {
                    if seen.insert(id.clone()) {
                        before.push(id);
                    }
                }
            }
            let remove: Vec<String> = before
                .into_iter()
                .filter(|id| !set.contains_key(id))
                .collect();
            let add: Vec<MemberValue> = to_values(in_order(set))
                .into_iter()
                .filter(|m| !seen.contains(&m.value))
                .collect();
            if add.is_empty() && remove.is_empty() {
                MembershipPlan::Unchanged
            } else {
                MembershipPlan::Delta { add, remove }
            }
        }
    })
}

/// Members by id, each with the position it was added at and its object.
type MemberSet = BTreeMap<String, (u64, Value)>;

enum State {
    /// Relative to the (unknown) current members.
    Delta {
        add: MemberSet,
        remove: BTreeMap<String, u64>,
    },
    /// The complete member list.
    Absolute(MemberSet),
}

/// A counter that keeps the client's order in the plan's lists.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

fn set_from(values: &[Value], seq: &mut Seq, strict: bool) -> Result<MemberSet, ScimError> {
    let mut set = MemberSet::new();
    for value in values {
        match member_entry(value) {
            Ok((id, member)) => {
                let at = seq.next();
                set.entry(id).or_insert((at, member));
            }
            // Stored members are the server's own data; one it cannot read
            // should not block every PATCH of the group.
            Err(_) if !strict => {}
            Err(err) => return Err(err),
        }
    }
    Ok(set)
}

fn in_order<T>(set: BTreeMap<String, (u64, T)>) -> Vec<(String, T)> {
    let mut items: Vec<(u64, String, T)> =
        set.into_iter().map(|(id, (at, t))| (at, id, t)).collect();
    items.sort_by_key(|(at, _, _)| *at);
    items.into_iter().map(|(_, id, t)| (id, t)).collect()
}

fn to_values(items: Vec<(String, Value)>) -> Vec<MemberValue> {
    items
        .into_iter()
        .map(|(id, member)| MemberValue {
            kind: member
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_string),
            value: id,
        })
        .collect()
}

/// The id and canonical object of a member value.
fn member_entry(value: &Value) -> Result<(String, Value), ScimError> {
    let member = member_object(value)?;
    let id = member
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ScimError::invalid_value("a member needs a \"value\""))?;
    Ok((id, member))
}

/// The definition of the group's `members` attribute.
pub(super) fn members_def() -> Result<&'static AttributeDef, ScimError> {
    group_resource()
        .core
        .attribute("members")
        .ok_or_else(ScimError::internal)
}

/// Canonicalises a member value: `{"value": id, "type"?: "User"|"Group",
/// "display"?: …}`. A plain string is taken as the id. `$ref` is dropped
/// (the server derives it); `display` is kept as sent.
pub(super) fn member_object(value: &Value) -> Result<Value, ScimError> {
    let fields = match value {
        Value::String(id) => {
            let mut fields = Map::new();
            fields.insert("value".into(), Value::String(id.clone()));
            fields
        }
        Value::Object(fields) => fields.clone(),
        _ => {
            return Err(ScimError::invalid_value(
                "each member must be an object like {\"value\": \"<id>\"}",
            ))
        }
    };
    let mut out = Map::new();
    match get_ci(&fields, "value") {
        Some(Value::String(id)) if !id.trim().is_empty() => {
            out.insert("value".into(), Value::String(id.clone()));
        }
        _ => {
            return Err(ScimError::invalid_value(
                "each member needs a non-empty string \"value\" (the member's id)",
            ))
        }
    }
    match get_ci(&fields, "type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("user") => {
            out.insert("type".into(), Value::String("User".into()));
        }
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("group") => {
            out.insert("type".into(), Value::String("Group".into()));
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "a member's \"type\" must be \"User\" or \"Group\", not {other}"
            )))
        }
    }
    if let Some(Value::String(display)) = get_ci(&fields, "display") {
        out.insert("display".into(), Value::String(display.clone()));
    }
    Ok(Value::Object(out))
}

/// Member objects from a PATCH value: an array of members or one member.
pub(super) fn member_values(value: &Value) -> Result<Vec<Value>, ScimError> {
    match value {
        Value::Array(items) => items.iter().map(member_object).collect(),
        other => Ok(vec![member_object(other)?]),
    }
}

/// Member ids from a `remove` value list (Entra: `[{"value": "id"}]`).
pub(super) fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    member_values(value)?
        .iter()
        .map(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ScimError::invalid_value("a member needs a \"value\""))
        })
        .collect()
}

/// The ids of a filter that only says `value eq "a" [or value eq "b" …]`,
/// which can be removed without loading the member list.
pub(super) fn plain_ids(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(id),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = plain_ids(a)?;
            ids.extend(plain_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}
