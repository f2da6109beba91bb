//! Converting between SCIM resource documents and Roster's domain types.

use roster_domain::{Group, GroupAttributes, Member, MemberKind, Meta, User, UserAttributes};
use serde_json::{json, Map, Value};

use crate::schema::{group_resource, user_resource};
use crate::{urn, ScimError};

/// The time format SCIM uses for `meta.created`/`meta.lastModified`.
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn meta_json(meta: &Meta, resource_type: &str, location: String) -> Value {
    json!({
        "resourceType": resource_type,
        "created": rfc3339(meta.created),
        "lastModified": rfc3339(meta.last_modified),
        "location": location,
        "version": meta.version.etag(),
    })
}

/// A group a user belongs to, as shown in the user's read-only `groups`.
#[derive(Debug, Clone)]
pub struct UserGroup {
    pub id: String,
    pub display: String,
}

/// The SCIM document of a user.
pub fn user_to_json(user: &User, groups: &[UserGroup], base_url: &str) -> Value {
    let mut attributes = match serde_json::to_value(&user.attributes) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let enterprise = attributes.remove("enterprise");
    let mut schemas = vec![Value::String(urn::USER.into())];
    let mut doc = Map::new();
    doc.insert("id".into(), Value::String(user.id.to_string()));
    doc.extend(attributes);
    if let Some(ext) = enterprise.filter(|e| e.as_object().is_some_and(|o| !o.is_empty())) {
        schemas.push(Value::String(urn::ENTERPRISE_USER.into()));
        doc.insert(urn::ENTERPRISE_USER.into(), ext);
    }
    doc.insert("groups".into(), user_groups_json(groups, base_url));
    doc.insert(
        "meta".into(),
        meta_json(&user.meta, "User", format!("{base_url}/Users/{}", user.id)),
    );
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(doc);
    Value::Object(out)
}

/// Checks `schemas` where a client sent it: it must be a list of strings and
/// name the resource's core schema. Clients that omit it are tolerated.
fn check_schemas(doc: &Map<String, Value>, core: &str) -> Result<(), ScimError> {
    let Some(schemas) = doc.get("schemas") else {
        return Ok(());
    };
    let Some(list) = schemas.as_array() else {
        return Err(ScimError::invalid_syntax(
            "\"schemas\" must be an array of URNs",
        ));
    };
    let mut names_core = false;
    for item in list {
        let Some(s) = item.as_str() else {
            return Err(ScimError::invalid_syntax(
                "\"schemas\" must be an array of URNs",
            ));
        };
        names_core |= s.eq_ignore_ascii_case(core);
    }
    if names_core {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must include {core}"
        )))
    }
}

fn require_object(doc: &Value) -> Result<&Map<String, Value>, ScimError> {
    doc.as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))
}

/// Turns a serde error about one attribute into a SCIM `invalidValue`.
fn invalid(err: serde_json::Error) -> ScimError {
    ScimError::invalid_value(format!("invalid attribute value: {err}"))
}

/// Parses a user document from POST, PUT or the result of a PATCH.
///
/// Attribute names may be in any case; unknown and read-only attributes
/// (`id`, `meta`, `groups`) are ignored and `password` is dropped unread.
pub fn user_from_json(doc: &Value) -> Result<UserAttributes, ScimError> {
    check_schemas(require_object(doc)?, urn::USER)?;
    let Value::Object(mut attrs) = user_resource().canonicalize(doc) else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    for read_only in ["schemas", "id", "meta", "groups", "password"] {
        attrs.remove(read_only);
    }
    match attrs.get("userName") {
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_value("userName is required"));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(ScimError::invalid_value("userName must be a string")),
    }
    if attrs.get("active").is_some_and(Value::is_null) {
        attrs.remove("active");
    }
    // Nulls mean "unassigned" (RFC 7643 §2.5): drop them.
    attrs.retain(|_, v| !v.is_null());
    if let Some(mut ext) = attrs.remove(urn::ENTERPRISE_USER) {
        if let Some(fields) = ext.as_object_mut() {
            fields.retain(|_, v| !v.is_null());
            // Entra sends the manager as a bare id string.
            if let Some(Value::String(id)) = fields.get("manager") {
                let id = id.clone();
                fields.insert("manager".into(), json!({ "value": id }));
            }
        }
        attrs.insert("enterprise".into(), ext);
    }
    let parsed: UserAttributes = serde_json::from_value(Value::Object(attrs)).map_err(invalid)?;
    Ok(parsed)
}

/// A member as a client wrote it: an id and, optionally, the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub value: String,
    pub kind: Option<MemberKind>,
}

/// Parses one `members` element (`{"value": id, "type"?: "User"|"Group"}`).
pub fn member_from_json(value: &Value) -> Result<MemberValue, ScimError> {
    let obj = value.as_object().ok_or_else(|| {
        ScimError::invalid_value("each member must be an object with a \"value\"")
    })?;
    let id = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| {
            ScimError::invalid_value("each member needs a string \"value\" (the member's id)")
        })?;
    let kind = match obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("type"))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.eq_ignore_ascii_case("user") => Some(MemberKind::User),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("group") => Some(MemberKind::Group),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "member type must be \"User\" or \"Group\", not {other}"
            )))
        }
    };
    Ok(MemberValue {
        value: id.to_string(),
        kind,
    })
}

/// Parses a group document from POST or PUT: its attributes and, when the
/// document has a `members` key, the member list.
pub fn group_from_json(
    doc: &Value,
) -> Result<(GroupAttributes, Option<Vec<MemberValue>>), ScimError> {
    check_schemas(require_object(doc)?, urn::GROUP)?;
    let Value::Object(mut attrs) = group_resource().canonicalize(doc) else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let members = match attrs.remove("members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(member_from_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    };
    for read_only in ["schemas", "id", "meta"] {
        attrs.remove(read_only);
    }
    attrs.retain(|_, v| !v.is_null());
    match attrs.get("displayName") {
        None => return Err(ScimError::invalid_value("displayName is required")),
        Some(Value::String(_)) => {}
        Some(_) => return Err(ScimError::invalid_value("displayName must be a string")),
    }
    let parsed: GroupAttributes = serde_json::from_value(Value::Object(attrs)).map_err(invalid)?;
    Ok((parsed, members))
}

/// The SCIM document of a group. `members` is `None` when they were not
/// loaded (excluded by the request), and the key is then left out.
pub fn group_to_json(group: &Group, members: Option<&[Member]>, base_url: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([urn::GROUP]));
    doc.insert("id".into(), Value::String(group.id.to_string()));
    if let Some(external_id) = &group.attributes.external_id {
        doc.insert("externalId".into(), Value::String(external_id.clone()));
    }
    doc.insert(
        "displayName".into(),
        Value::String(group.attributes.display_name.as_str().to_string()),
    );
    if let Some(members) = members {
        doc.insert("members".into(), members_json(members, base_url));
    }
    doc.insert(
        "meta".into(),
        meta_json(
            &group.meta,
            "Group",
            format!("{base_url}/Groups/{}", group.id),
        ),
    );
    Value::Object(doc)
}

/// The `groups` attribute of a user.
pub fn user_groups_json(groups: &[UserGroup], base_url: &str) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "display": g.display,
                    "type": "direct",
                    "$ref": format!("{base_url}/Groups/{}", g.id),
                })
            })
            .collect(),
    )
}

/// The `members` attribute of a group.
pub fn members_json(members: &[Member], base_url: &str) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| member_to_json(m, base_url))
            .collect(),
    )
}

fn member_to_json(member: &Member, base_url: &str) -> Value {
    let endpoint = match member.kind {
        MemberKind::User => "Users",
        MemberKind::Group => "Groups",
    };
    let mut obj = Map::new();
    // `display` is left out on purpose: a member reads back exactly as the
    // client wrote it (value, type, $ref), which is what IdPs and the
    // scim2-tester conformance suite compare against.
    obj.insert("value".into(), Value::String(member.id.to_string()));
    obj.insert("type".into(), Value::String(member.kind.as_str().into()));
    obj.insert(
        "$ref".into(),
        Value::String(format!("{base_url}/{endpoint}/{}", member.id)),
    );
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use roster_domain::{UserId, UserName};

    fn at() -> time::OffsetDateTime {
        time::macros::datetime!(2026-01-02 03:04:05.678 UTC)
    }

    #[test]
    fn okta_create_body_parses_ignoring_password_and_groups() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "amara.nwosu@northwind.example",
            "name": {"givenName": "Amara", "familyName": "Nwosu"},
            "emails": [{"primary": true, "value": "amara.nwosu@northwind.example", "type": "work"}],
            "displayName": "Amara Nwosu",
            "locale": "en-US",
            "externalId": "00u9k2lmq8XyZa3f74x6",
            "groups": [],
            "password": "hunter2",
            "active": true
        });
        let attrs = user_from_json(&body).unwrap();
        assert_eq!(attrs.user_name.as_str(), "amara.nwosu@northwind.example");
        assert_eq!(attrs.external_id.as_deref(), Some("00u9k2lmq8XyZa3f74x6"));
        assert_eq!(attrs.active, Some(true));
        let user = User {
            id: UserId::new_random(),
            meta: Meta::new(at()),
            attributes: attrs,
        };
        let out = user_to_json(&user, &[], "https://r.example/scim/v2");
        assert!(out.get("password").is_none());
        assert_eq!(out["name"]["givenName"], "Amara");
        assert_eq!(out["meta"]["created"], "2026-01-02T03:04:05.678Z");
        assert_eq!(out["meta"]["version"], "W/\"1\"");
        assert_eq!(out["groups"], json!([]));
    }

    #[test]
    fn entra_create_body_with_enterprise_manager_as_string() {
        let body = json!({
            "schemas": [urn::USER, urn::ENTERPRISE_USER],
            "userName": "ada@contoso.example",
            "active": "True",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Payments", "employeeNumber": "1234", "manager": "mgr-1"
            }
        });
        let attrs = user_from_json(&body).unwrap();
        let ext = attrs.enterprise.clone().unwrap();
        assert_eq!(ext.department.as_deref(), Some("Payments"));
        assert_eq!(ext.manager.unwrap().value.as_deref(), Some("mgr-1"));
        let user = User {
            id: UserId::new_random(),
            meta: Meta::new(at()),
            attributes: attrs,
        };
        let out = user_to_json(&user, &[], "");
        assert_eq!(out["schemas"], json!([urn::USER, urn::ENTERPRISE_USER]));
        assert_eq!(
            out[urn::ENTERPRISE_USER]["manager"],
            json!({"value": "mgr-1"})
        );
    }

    #[test]
    fn bad_user_documents_are_rejected_with_the_right_scim_type() {
        for (body, scim_type) in [
            (json!([]), "invalidSyntax"),
            (json!({"schemas": "x", "userName": "a"}), "invalidSyntax"),
            (
                json!({"schemas": [urn::GROUP], "userName": "a"}),
                "invalidSyntax",
            ),
            (json!({}), "invalidValue"),
            (json!({"userName": ""}), "invalidValue"),
            (json!({"userName": 7}), "invalidValue"),
            (json!({"userName": "a", "active": "maybe"}), "invalidValue"),
            (json!({"userName": "a", "emails": "x@y"}), "invalidValue"),
            (
                json!({"userName": "a", "name": {"givenName": 3}}),
                "invalidValue",
            ),
        ] {
            let err = user_from_json(&body).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.scim_type.unwrap().as_str(), scim_type, "{body}");
        }
    }

    #[test]
    fn group_documents_round_trip() {
        let body = json!({
            "schemas": [urn::GROUP],
            "displayName": "Payments Core",
            "externalId": "g-1",
            "members": [{"value": "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa", "type": "User"}]
        });
        let (attrs, members) = group_from_json(&body).unwrap();
        assert_eq!(attrs.display_name.as_str(), "Payments Core");
        assert_eq!(members.unwrap().len(), 1);
        let group = Group {
            id: roster_domain::GroupId::new_random(),
            meta: Meta::new(at()),
            attributes: attrs,
        };
        let out = group_to_json(&group, None, "");
        assert!(out.get("members").is_none());
        assert_eq!(out["displayName"], "Payments Core");
        let name = UserName::parse("x").unwrap();
        assert_eq!(name.as_str(), "x");
    }
}
