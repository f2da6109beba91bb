//! PATCH as tables of (document, request, expected result): every example
//! of RFC 7644 §3.5.2, the requests Okta and Entra ID send, and the errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::filter::Filter;
use crate::ScimType;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
const GROUP_ID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

/// The RFC 7643 §8.2 user, trimmed.
fn user() -> Value {
    json!({
        "schemas": [USER],
        "id": USER_ID,
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [{
            "type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
            "region": "CA", "postalCode": "91608", "country": "USA", "primary": true
        }],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "groups": [{"value": GROUP_ID, "display": "Tour Guides", "type": "direct"}],
        "meta": {
            "resourceType": "User", "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff590\"",
            "location": format!("https://example.com/v2/Users/{USER_ID}")
        }
    })
}

/// The same user with the enterprise extension.
fn ent_user() -> Value {
    with(
        &user(),
        json!({
            "schemas": [USER, ENT],
            ENT: {
                "employeeNumber": "701984", "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        }),
    )
}

/// A user with only what PATCH cannot remove, plus a few plain attributes.
fn bare_user() -> Value {
    json!({"schemas": [USER], "id": USER_ID, "userName": "pat", "active": true})
}

fn group() -> Value {
    json!({
        "schemas": [GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
        "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z"}
    })
}

/// `base` with top-level keys set from `changes`; a null change removes
/// the key.
fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.as_object().unwrap().clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            out.shift_remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

enum Expect {
    Doc(Value),
    Fails(ScimType),
}
use Expect::{Doc, Fails};

fn run_user(initial: &Value, request: &Value) -> Result<Value, ScimError> {
    let ops = parse_patch_request(request)?;
    let mut doc = initial.clone();
    match apply_to_user(&mut doc, &ops) {
        Ok(()) => Ok(doc),
        Err(err) => {
            assert_eq!(
                &doc, initial,
                "a failed PATCH must leave the document unchanged"
            );
            Err(err)
        }
    }
}

fn check_users(rows: Vec<(&str, Value, Value, Expect)>) {
    let mut failures = Vec::new();
    for (name, initial, ops, expect) in rows {
        let request = if ops.is_array() { body(ops) } else { ops };
        let got = run_user(&initial, &request);
        match (&got, &expect) {
            (Ok(doc), Doc(want)) if doc == want => {}
            (Err(err), Fails(kind)) if err.scim_type == Some(*kind) && err.status == 400 => {}
            (Ok(doc), Doc(want)) => failures.push(format!("{name}:\n  got  {doc}\n  want {want}")),
            (Ok(doc), Fails(kind)) => {
                failures.push(format!("{name}: want {kind:?}, got success {doc}"))
            }
            (Err(err), Doc(_)) => failures.push(format!("{name}: unexpected error {err}")),
            (Err(err), Fails(kind)) => failures.push(format!("{name}: want {kind:?}, got {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- parsing

#[test]
fn parse_accepts_the_patchop_message_in_its_spellings() {
    for (name, request, want) in [
        (
            "lowercase op",
            body(json!([{"op": "add", "path": "displayName", "value": "x"}])),
            vec![PatchOpKind::Add],
        ),
        (
            "Entra capitalised ops",
            body(json!([
                {"op": "Add", "path": "displayName", "value": "x"},
                {"op": "Replace", "path": "displayName", "value": "y"},
                {"op": "Remove", "path": "displayName"}
            ])),
            vec![PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove],
        ),
        (
            "upper-case everything",
            json!({"SCHEMAS": [PATCH_OP.to_uppercase()], "operations": [{"OP": "REPLACE", "PATH": "active", "VALUE": false}]}),
            vec![PatchOpKind::Replace],
        ),
        (
            "path-less replace",
            body(json!([{"op": "replace", "value": {"active": false}}])),
            vec![PatchOpKind::Replace],
        ),
        (
            "replace with explicit null",
            body(json!([{"op": "replace", "path": "title", "value": null}])),
            vec![PatchOpKind::Replace],
        ),
        (
            "remove with a value list",
            body(json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}]}])),
            vec![PatchOpKind::Remove],
        ),
        (
            "empty path means the resource",
            body(json!([{"op": "replace", "path": "", "value": {"active": true}}])),
            vec![PatchOpKind::Replace],
        ),
        (
            "other schemas alongside",
            json!({"schemas": ["urn:example:other", PATCH_OP], "Operations": [{"op": "remove", "path": "title"}]}),
            vec![PatchOpKind::Remove],
        ),
        (
            "unknown members of an operation are ignored",
            body(json!([{"op": "add", "path": "title", "value": "x", "comment": "hi"}])),
            vec![PatchOpKind::Add],
        ),
    ] {
        let ops = parse_patch_request(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kinds: Vec<_> = ops.iter().map(|o| o.op).collect();
        assert_eq!(kinds, want, "{name}");
    }
}

#[test]
fn parse_keeps_path_and_value() {
    let ops = parse_patch_request(&body(json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@b"},
        {"op": "replace", "path": "title", "value": null},
        {"op": "add", "value": {"title": "x"}}
    ])))
    .unwrap();
    let path = ops[0].path.as_ref().unwrap();
    assert_eq!(path.attr.attr, "emails");
    assert_eq!(path.sub.as_deref(), Some("value"));
    assert!(path.value_filter.is_some());
    assert_eq!(ops[0].value, Some(json!("a@b")));
    assert_eq!(ops[1].value, Some(Value::Null));
    assert!(ops[2].path.is_none());
}

#[test]
fn parse_rejects_malformed_messages() {
    let many: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
        .collect();
    let exactly_max: Vec<Value> = many[..MAX_OPERATIONS].to_vec();
    assert!(parse_patch_request(&body(Value::Array(exactly_max))).is_ok());
    for (name, request, want) in [
        ("not an object", json!([1, 2]), ScimType::InvalidSyntax),
        ("a string", json!("patch"), ScimType::InvalidSyntax),
        (
            "no schemas",
            json!({"Operations": [{"op": "remove", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            "wrong schema",
            json!({"schemas": [USER], "Operations": [{"op": "remove", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            "schemas not an array",
            json!({"schemas": PATCH_OP, "Operations": [{"op": "remove", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            "no Operations",
            json!({"schemas": [PATCH_OP]}),
            ScimType::InvalidSyntax,
        ),
        ("empty Operations", body(json!([])), ScimType::InvalidSyntax),
        (
            "Operations an object",
            body(json!({"op": "add"})),
            ScimType::InvalidSyntax,
        ),
        (
            "too many operations",
            body(Value::Array(many)),
            ScimType::TooMany,
        ),
        (
            "operation not an object",
            body(json!(["add"])),
            ScimType::InvalidSyntax,
        ),
        (
            "no op",
            body(json!([{"path": "title", "value": "x"}])),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown op",
            body(json!([{"op": "frobnicate", "path": "title", "value": "x"}])),
            ScimType::InvalidSyntax,
        ),
        (
            "op not a string",
            body(json!([{"op": 1, "path": "title", "value": "x"}])),
            ScimType::InvalidSyntax,
        ),
        (
            "op with spaces",
            body(json!([{"op": " add", "path": "title", "value": "x"}])),
            ScimType::InvalidSyntax,
        ),
        (
            "remove without path",
            body(json!([{"op": "remove"}])),
            ScimType::NoTarget,
        ),
        (
            "remove without path but with a value",
            body(json!([{"op": "remove", "value": {"title": "x"}}])),
            ScimType::NoTarget,
        ),
        (
            "add without value",
            body(json!([{"op": "add", "path": "title"}])),
            ScimType::InvalidValue,
        ),
        (
            "replace without value",
            body(json!([{"op": "replace", "path": "title"}])),
            ScimType::InvalidValue,
        ),
        (
            "add with null value",
            body(json!([{"op": "add", "path": "title", "value": null}])),
            ScimType::InvalidValue,
        ),
        (
            "path-less add of a string",
            body(json!([{"op": "add", "value": "x"}])),
            ScimType::InvalidValue,
        ),
        (
            "path-less replace of an array",
            body(json!([{"op": "replace", "value": [{"title": "x"}]}])),
            ScimType::InvalidValue,
        ),
        (
            "path-less replace with null",
            body(json!([{"op": "replace", "value": null}])),
            ScimType::InvalidValue,
        ),
        (
            "path not a string",
            body(json!([{"op": "remove", "path": 7}])),
            ScimType::InvalidPath,
        ),
        (
            "path syntax",
            body(json!([{"op": "remove", "path": "emails[type eq]"}])),
            ScimType::InvalidPath,
        ),
        (
            "unclosed filter",
            body(json!([{"op": "remove", "path": "emails[type eq \"work\""}])),
            ScimType::InvalidPath,
        ),
        (
            "second operation bad",
            body(json!([{"op": "add", "path": "title", "value": "x"}, {"op": "nope"}])),
            ScimType::InvalidSyntax,
        ),
    ] {
        match parse_patch_request(&request) {
            Ok(ops) => panic!("{name}: want {want:?}, parsed {ops:?}"),
            Err(err) => {
                assert_eq!(err.scim_type, Some(want), "{name}: {err}");
                assert_eq!(err.status, 400, "{name}");
            }
        }
    }
}

// ---------------------------------------------------------------- RFC 7644 §3.5.2 examples

#[test]
fn rfc7644_user_examples() {
    let work_address = json!({
        "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
        "region": "CA", "postalCode": "91608", "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true
    });
    check_users(vec![
        (
            "§3.5.2.1 path-less add of emails and nickname",
            user(),
            json!([{"op": "add", "value": {
                "emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "b@new.example", "type": "other"}],
                "nickname": "Babs"
            }}]),
            Doc(with(
                &user(),
                json!({
                    "emails": [
                        {"value": "bjensen@example.com", "type": "work", "primary": true},
                        {"value": "babs@jensen.org", "type": "home"},
                        {"value": "b@new.example", "type": "other"}
                    ],
                    "nickName": "Babs"
                }),
            )),
        ),
        (
            "§3.5.2.1 add emails with a path",
            bare_user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "pat@example.com", "type": "work"}]}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [{"value": "pat@example.com", "type": "work"}]}),
            )),
        ),
        (
            "§3.5.2.2 remove emails[type eq work and value ew example.com]",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
            Doc(with(
                &user(),
                json!({"emails": [{"value": "babs@jensen.org", "type": "home"}]}),
            )),
        ),
        (
            "§3.5.2.2 remove a whole attribute",
            user(),
            json!([{"op": "remove", "path": "phoneNumbers"}]),
            Doc(with(&user(), json!({"phoneNumbers": null}))),
        ),
        (
            "§3.5.2.3 replace addresses[type eq work] wholesale",
            user(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": work_address.clone()}]),
            Doc(with(&user(), json!({"addresses": [work_address]}))),
        ),
        (
            "§3.5.2.3 replace addresses[type eq work].streetAddress",
            user(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1111 Broadway Ave"}]),
            Doc(with(
                &user(),
                json!({"addresses": [{
                    "type": "work", "streetAddress": "1111 Broadway Ave", "locality": "Hollywood",
                    "region": "CA", "postalCode": "91608", "country": "USA", "primary": true
                }]}),
            )),
        ),
        (
            "§3.5.2.3 path-less replace of emails and nickname",
            user(),
            json!([{"op": "replace", "value": {
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                "nickname": "Babs"
            }}]),
            Doc(with(
                &user(),
                json!({
                    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                    "nickName": "Babs"
                }),
            )),
        ),
        (
            "§3.5.2.3 replace a multi-valued attribute with a path",
            user(),
            json!([{"op": "replace", "path": "phoneNumbers", "value": [{"value": "555-0100", "type": "mobile"}]}]),
            Doc(with(
                &user(),
                json!({"phoneNumbers": [{"value": "555-0100", "type": "mobile"}]}),
            )),
        ),
        (
            "§3.5.2.3 replace with a filter that matches nothing",
            user(),
            json!([{"op": "replace", "path": "addresses[type eq \"home\"]", "value": {"type": "home", "locality": "X"}}]),
            Fails(ScimType::NoTarget),
        ),
    ]);
}

#[test]
fn rfc7644_group_examples() {
    let babs = json!({"display": "Babs Jensen", "$ref": format!("https://example.com/v2/Users/{USER_ID}"), "value": USER_ID});
    check_groups(vec![
        (
            "§3.5.2.1 add a member",
            json!([{"op": "add", "path": "members", "value": [babs]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Add(vec![
                    json!({"value": USER_ID, "display": "Babs Jensen"}),
                ])],
            ),
        ),
        (
            "§3.5.2.2 remove one member",
            json!([{"op": "remove", "path": format!("members[value eq \"{USER_ID}\"]")}]),
            GroupExpect::Ops(group(), vec![MemberOp::Remove(vec![USER_ID.into()])]),
        ),
        (
            "§3.5.2.2 remove all members",
            json!([{"op": "remove", "path": "members"}]),
            GroupExpect::Ops(group(), vec![MemberOp::Clear]),
        ),
        (
            "§3.5.2.2 replace all members with remove + add",
            json!([
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [
                    {"display": "Babs Jensen", "value": USER_ID},
                    {"display": "James Smith", "value": "08e1d05d-121c-4561-8b96-473d93df9210"}
                ]}
            ]),
            GroupExpect::Ops(
                group(),
                vec![
                    MemberOp::Clear,
                    MemberOp::Add(vec![
                        json!({"value": USER_ID, "display": "Babs Jensen"}),
                        json!({"value": "08e1d05d-121c-4561-8b96-473d93df9210", "display": "James Smith"}),
                    ]),
                ],
            ),
        ),
        (
            "§3.5.2.3 replace members",
            json!([{"op": "replace", "path": "members", "value": [
                {"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223", "value": USER_ID},
                {"display": "James Smith", "value": "08e1d05d-121c-4561-8b96-473d93df9210"}
            ]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Replace(vec![
                    json!({"value": USER_ID, "display": "Babs Jensen"}),
                    json!({"value": "08e1d05d-121c-4561-8b96-473d93df9210", "display": "James Smith"}),
                ])],
            ),
        ),
    ]);
}

// ---------------------------------------------------------------- Okta and Entra (reference §5.1)

#[test]
fn okta_and_entra_user_requests() {
    let ent_manager = format!("{ENT}:manager");
    check_users(vec![
        (
            "Okta deactivate: path-less replace",
            user(),
            json!([{"op": "replace", "value": {"active": false}}]),
            Doc(with(&user(), json!({"active": false}))),
        ),
        (
            "Okta reactivate",
            with(&user(), json!({"active": false})),
            json!([{"op": "replace", "value": {"active": true}}]),
            Doc(user()),
        ),
        (
            "Entra deactivate: boolean as a string",
            user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            Doc(with(&user(), json!({"active": false}))),
        ),
        (
            "Entra reactivate: \"True\"",
            with(&user(), json!({"active": false})),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
            Doc(user()),
        ),
        (
            "Entra with the flag: a real boolean",
            user(),
            json!([{"op": "replace", "path": "active", "value": false}]),
            Doc(with(&user(), json!({"active": false}))),
        ),
        (
            "Entra default: one op per attribute",
            user(),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Barbara Jensen"},
                {"op": "Replace", "path": "name.givenName", "value": "Barb"},
                {"op": "Replace", "path": "name.familyName", "value": "Jensen-Smith"},
                {"op": "Replace", "path": "title", "value": "Tour Lead"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"}
            ]),
            Doc(with(
                &user(),
                json!({
                    "displayName": "Barbara Jensen",
                    "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen-Smith", "givenName": "Barb"},
                    "title": "Tour Lead",
                    "emails": [
                        {"value": "barbara@example.com", "type": "work", "primary": true},
                        {"value": "babs@jensen.org", "type": "home"}
                    ]
                }),
            )),
        ),
        (
            "Entra emails[type eq work].value with no work email creates it",
            bare_user(),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "pat@example.com"}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [{"type": "work", "value": "pat@example.com"}]}),
            )),
        ),
        (
            "Entra replace emails[type eq work].value with no work email creates it",
            with(
                &bare_user(),
                json!({"emails": [{"type": "home", "value": "h@example.com"}]}),
            ),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@example.com"}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [
                    {"type": "home", "value": "h@example.com"},
                    {"type": "work", "value": "w@example.com"}
                ]}),
            )),
        ),
        (
            "Entra manager as a plain id string",
            ent_user(),
            json!([{"op": "Replace", "path": ent_manager, "value": "boss-id"}]),
            Doc(with(
                &ent_user(),
                json!({ENT: {
                    "employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "boss-id"}
                }}),
            )),
        ),
        (
            "Entra manager as a string on a user without the extension",
            bare_user(),
            json!([{"op": "Add", "path": ent_manager, "value": "boss-id"}]),
            Doc(with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"manager": {"value": "boss-id"}}}),
            )),
        ),
        (
            "manager as a {value} object replaces the whole manager",
            with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"manager": {"value": "old", "$ref": "../Users/old"}}}),
            ),
            json!([{"op": "replace", "path": ent_manager, "value": {"value": "new"}}]),
            Doc(with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"manager": {"value": "new"}}}),
            )),
        ),
        (
            "manager.value path",
            ent_user(),
            json!([{"op": "replace", "path": format!("{ENT}:manager.value"), "value": "boss-2"}]),
            Doc(with(
                &ent_user(),
                json!({ENT: {
                    "employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "boss-2"}
                }}),
            )),
        ),
        (
            "Entra removes the manager",
            ent_user(),
            json!([{"op": "Remove", "path": ent_manager}]),
            Doc(with(
                &ent_user(),
                json!({ENT: {"employeeNumber": "701984", "department": "Tour Operations"}}),
            )),
        ),
        (
            "Entra with the flag: path-less replace with dotted and URN keys",
            ent_user(),
            json!([{"op": "replace", "value": {
                "displayName": "Barbara Jensen",
                "name.givenName": "Barb",
                "name.familyName": "Jensen-Smith",
                "emails[type eq \"work\"].value": "barbara@example.com",
                format!("{ENT}:department"): "Sales",
                format!("{ENT}:manager"): "boss-id",
                "active": false
            }}]),
            Doc(with(
                &ent_user(),
                json!({
                    "displayName": "Barbara Jensen",
                    "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen-Smith", "givenName": "Barb"},
                    "emails": [
                        {"value": "barbara@example.com", "type": "work", "primary": true},
                        {"value": "babs@jensen.org", "type": "home"}
                    ],
                    "active": false,
                    ENT: {"employeeNumber": "701984", "department": "Sales", "manager": {"value": "boss-id"}}
                }),
            )),
        ),
        (
            "path-less add with the extension URN key and an object",
            bare_user(),
            json!([{"op": "add", "value": {ENT: {"Department": "Eng", "employeeNumber": "42", "bogus": 1}}}]),
            Doc(with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"department": "Eng", "employeeNumber": "42"}}),
            )),
        ),
        (
            "Entra adds enterprise attributes one by one",
            bare_user(),
            json!([
                {"op": "Add", "path": format!("{ENT}:department"), "value": "Eng"},
                {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "42"},
                {"op": "Add", "path": "title", "value": "Engineer"}
            ]),
            Doc(with(
                &bare_user(),
                json!({
                    "schemas": [USER, ENT], ENT: {"department": "Eng", "employeeNumber": "42"}, "title": "Engineer"
                }),
            )),
        ),
        (
            "removing the last enterprise attribute drops the extension",
            with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"department": "Eng"}}),
            ),
            json!([{"op": "remove", "path": format!("{ENT}:department")}]),
            Doc(bare_user()),
        ),
        (
            "Entra sets externalId and userName",
            user(),
            json!([
                {"op": "Replace", "path": "externalId", "value": "0a1b2c"},
                {"op": "Replace", "path": "userName", "value": "barbara@example.com"}
            ]),
            Doc(with(
                &user(),
                json!({"externalId": "0a1b2c", "userName": "barbara@example.com"}),
            )),
        ),
        (
            "Okta-style password in a path-less replace is discarded",
            user(),
            json!([{"op": "replace", "value": {"password": "hunter2", "active": false}}]),
            Doc(with(&user(), json!({"active": false}))),
        ),
        (
            "password with a path is accepted and discarded",
            user(),
            json!([{"op": "replace", "path": "password", "value": "hunter2"}]),
            Doc(user()),
        ),
        (
            "path-less replace echoing id, meta, groups and schemas",
            user(),
            json!([{"op": "replace", "value": {
                "id": USER_ID, "schemas": [USER], "meta": {"resourceType": "User"},
                "groups": [], "displayName": "B"
            }}]),
            Doc(with(&user(), json!({"displayName": "B"}))),
        ),
    ]);
}

#[test]
fn okta_and_entra_group_requests() {
    check_groups(vec![
        (
            "Okta add members with display",
            json!([{"op": "add", "path": "members", "value": [{"value": "u1", "display": "One"}, {"value": "u2", "display": "Two"}]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Add(vec![
                    json!({"value": "u1", "display": "One"}),
                    json!({"value": "u2", "display": "Two"}),
                ])],
            ),
        ),
        (
            "Entra add members",
            json!([{"op": "Add", "path": "members", "value": [{"value": "u1"}]}]),
            GroupExpect::Ops(group(), vec![MemberOp::Add(vec![json!({"value": "u1"})])]),
        ),
        (
            "Okta remove a member by filter",
            json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]),
            GroupExpect::Ops(group(), vec![MemberOp::Remove(vec!["u1".into()])]),
        ),
        (
            "Entra remove members with a value list",
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Remove(vec!["u1".into(), "u2".into()])],
            ),
        ),
        (
            "Okta full membership push",
            json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2", "type": "user"}]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Replace(vec![
                    json!({"value": "u1"}),
                    json!({"value": "u2", "type": "User"}),
                ])],
            ),
        ),
        (
            "Okta rename with the id in the value",
            json!([{"op": "replace", "value": {"id": GROUP_ID, "displayName": "Guides"}}]),
            GroupExpect::Ops(with(&group(), json!({"displayName": "Guides"})), vec![]),
        ),
        (
            "Okta rename resent with membership",
            json!([
                {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Guides"}},
                {"op": "add", "path": "members", "value": [{"value": "u3", "display": "Three"}]},
                {"op": "remove", "path": "members[value eq \"u1\"]"}
            ]),
            GroupExpect::Ops(
                with(&group(), json!({"displayName": "Guides"})),
                vec![
                    MemberOp::Add(vec![json!({"value": "u3", "display": "Three"})]),
                    MemberOp::Remove(vec!["u1".into()]),
                ],
            ),
        ),
        (
            "Entra rename",
            json!([{"op": "Replace", "path": "displayName", "value": "Guides"}]),
            GroupExpect::Ops(with(&group(), json!({"displayName": "Guides"})), vec![]),
        ),
        (
            "Entra with the flag: lowercase filter removal",
            json!([{"op": "remove", "path": "members[value eq \"u1\"]"}, {"op": "remove", "path": "members[value eq \"u2\"]"}]),
            GroupExpect::Ops(
                group(),
                vec![
                    MemberOp::Remove(vec!["u1".into()]),
                    MemberOp::Remove(vec!["u2".into()]),
                ],
            ),
        ),
    ]);
}

// ---------------------------------------------------------------- user semantics

#[test]
fn add_semantics() {
    check_users(vec![
        (
            "add a simple attribute",
            bare_user(),
            json!([{"op": "add", "path": "title", "value": "Boss"}]),
            Doc(with(&bare_user(), json!({"title": "Boss"}))),
        ),
        (
            "add to an existing single-valued attribute replaces it",
            user(),
            json!([{"op": "add", "path": "displayName", "value": "B"}]),
            Doc(with(&user(), json!({"displayName": "B"}))),
        ),
        (
            "add merges a complex attribute",
            user(),
            json!([{"op": "add", "path": "name", "value": {"middleName": "J", "GIVENNAME": "Babs"}}]),
            Doc(with(
                &user(),
                json!({"name": {
                    "formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Babs", "middleName": "J"
                }}),
            )),
        ),
        (
            "add name.sub creates the complex attribute",
            bare_user(),
            json!([{"op": "add", "path": "name.givenName", "value": "Pat"}]),
            Doc(with(&bare_user(), json!({"name": {"givenName": "Pat"}}))),
        ),
        (
            "add appends and skips exact duplicates",
            user(),
            json!([{"op": "add", "path": "emails", "value": [
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "x@example.com", "type": "other"},
                {"value": "x@example.com", "type": "other"}
            ]}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"},
                    {"value": "x@example.com", "type": "other"}
                ]}),
            )),
        ),
        (
            "duplicates are found whatever the key order and case",
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"TYPE": "home", "Value": "babs@jensen.org"}]}]),
            Doc(user()),
        ),
        (
            "add a single object to a multi-valued attribute",
            bare_user(),
            json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "555", "type": "work"}}]),
            Doc(with(
                &bare_user(),
                json!({"phoneNumbers": [{"value": "555", "type": "work"}]}),
            )),
        ),
        (
            "a new primary clears the old one",
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "n@example.com", "type": "other", "primary": "True"}]}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": false},
                    {"value": "babs@jensen.org", "type": "home"},
                    {"value": "n@example.com", "type": "other", "primary": true}
                ]}),
            )),
        ),
        (
            "add a sub-attribute to filtered elements",
            user(),
            json!([{"op": "add", "path": "emails[type eq \"home\"].display", "value": "Home"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home", "display": "Home"}
                ]}),
            )),
        ),
        (
            "add primary via a filter moves primary",
            user(),
            json!([{"op": "add", "path": "emails[type eq \"home\"].primary", "value": true}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": false},
                    {"value": "babs@jensen.org", "type": "home", "primary": true}
                ]}),
            )),
        ),
        (
            "add an object to filtered elements merges it",
            user(),
            json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home", "display": "Home"}
                ]}),
            )),
        ),
        (
            "add to a filter that matches nothing creates from eq",
            bare_user(),
            json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "555"}}]),
            Doc(with(
                &bare_user(),
                json!({"phoneNumbers": [{"type": "mobile", "value": "555"}]}),
            )),
        ),
        (
            "add to a non-eq filter that matches nothing",
            bare_user(),
            json!([{"op": "add", "path": "phoneNumbers[type co \"mob\"].value", "value": "555"}]),
            Fails(ScimType::NoTarget),
        ),
        (
            "add emails.value without a filter creates an element",
            bare_user(),
            json!([{"op": "add", "path": "emails.value", "value": "p@example.com"}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [{"value": "p@example.com"}]}),
            )),
        ),
        (
            "add emails.type without a filter sets every element",
            user(),
            json!([{"op": "add", "path": "emails.type", "value": "other"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "other", "primary": true},
                    {"value": "babs@jensen.org", "type": "other"}
                ]}),
            )),
        ),
        (
            "URN-qualified core attribute",
            bare_user(),
            json!([{"op": "add", "path": format!("{USER}:nickName"), "value": "P"}]),
            Doc(with(&bare_user(), json!({"nickName": "P"}))),
        ),
        (
            "path-less add ignores null and unknown keys",
            bare_user(),
            json!([{"op": "add", "value": {"title": null, "favouriteColour": "blue", "name.nickname": "x", "nickName": "P"}}]),
            Doc(with(&bare_user(), json!({"nickName": "P"}))),
        ),
        (
            "path-less add of a complex attribute merges",
            user(),
            json!([{"op": "add", "value": {"name": {"middleName": "J"}}}]),
            Doc(with(
                &user(),
                json!({"name": {
                    "formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara", "middleName": "J"
                }}),
            )),
        ),
        (
            "unknown and read-only sub-attributes in a value are dropped",
            bare_user(),
            json!([{"op": "add", "path": format!("{ENT}:manager"), "value": {"value": "b", "displayName": "Boss", "x": 1}}]),
            Doc(with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"manager": {"value": "b"}}}),
            )),
        ),
        (
            "an element with no known sub-attribute is skipped",
            bare_user(),
            json!([{"op": "add", "path": "emails", "value": [{"bogus": 1}, null]}]),
            Doc(bare_user()),
        ),
        (
            "add a whole extension by its URN path",
            bare_user(),
            json!([{"op": "add", "path": ENT, "value": {"department": "Eng"}}]),
            Doc(with(
                &bare_user(),
                json!({"schemas": [USER, ENT], ENT: {"department": "Eng"}}),
            )),
        ),
        (
            "mixed-case attribute path",
            bare_user(),
            json!([{"op": "add", "path": "NAME.GIVENNAME", "value": "Pat"}]),
            Doc(with(&bare_user(), json!({"name": {"givenName": "Pat"}}))),
        ),
        (
            "add to roles",
            bare_user(),
            json!([{"op": "add", "path": "roles", "value": [{"value": "admin", "primary": "false"}]}]),
            Doc(with(
                &bare_user(),
                json!({"roles": [{"value": "admin", "primary": false}]}),
            )),
        ),
    ]);
}

#[test]
fn replace_semantics() {
    check_users(vec![
        (
            "replace a simple attribute",
            user(),
            json!([{"op": "replace", "path": "title", "value": "Lead"}]),
            Doc(with(&user(), json!({"title": "Lead"}))),
        ),
        (
            "replace of a complex attribute merges (RFC 7644 §3.5.2.3)",
            user(),
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs", "middleName": null}}]),
            Doc(with(
                &user(),
                json!({"name": {
                    "formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Babs"
                }}),
            )),
        ),
        (
            "replace with null removes",
            user(),
            json!([{"op": "replace", "path": "displayName", "value": null}]),
            Doc(with(&user(), json!({"displayName": null}))),
        ),
        (
            "path-less replace with null removes",
            user(),
            json!([{"op": "replace", "value": {"displayName": null, "name.givenName": null}}]),
            Doc(with(
                &user(),
                json!({
                    "displayName": null,
                    "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen"}
                }),
            )),
        ),
        (
            "replace with null on something absent is fine",
            bare_user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": null}]),
            Doc(bare_user()),
        ),
        (
            "replace a list with an empty list unassigns it",
            user(),
            json!([{"op": "replace", "path": "phoneNumbers", "value": []}]),
            Doc(with(&user(), json!({"phoneNumbers": null}))),
        ),
        (
            "replace with two primaries keeps the last",
            bare_user(),
            json!([{"op": "replace", "path": "emails", "value": [
                {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}
            ]}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [
                    {"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}
                ]}),
            )),
        ),
        (
            "replace a sub-attribute of matching elements",
            user(),
            json!([{"op": "replace", "path": "emails[value eq \"BABS@JENSEN.ORG\"].type", "value": "other"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "other"}
                ]}),
            )),
        ),
        (
            "replace with a filter on primary",
            user(),
            json!([{"op": "replace", "path": "emails[primary eq true].value", "value": "new@example.com"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "new@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "replace with a not() filter",
            user(),
            json!([{"op": "replace", "path": "emails[not (type eq \"work\")].display", "value": "Other"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home", "display": "Other"}
                ]}),
            )),
        ),
        (
            "replace with an or filter",
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\" or type eq \"home\"].display", "value": "E"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true, "display": "E"},
                    {"value": "babs@jensen.org", "type": "home", "display": "E"}
                ]}),
            )),
        ),
        (
            "replace with a pr filter",
            user(),
            json!([{"op": "replace", "path": "emails[primary pr].display", "value": "P"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true, "display": "P"},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "replace with a gt filter",
            user(),
            json!([{"op": "replace", "path": "emails[value gt \"bj\"].display", "value": "G"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true, "display": "G"},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "replace with a co filter, case-insensitively",
            user(),
            json!([{"op": "replace", "path": "emails[value co \"JENSEN.ORG\"].display", "value": "C"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home", "display": "C"}
                ]}),
            )),
        ),
        (
            "replace with a sw filter and a le filter",
            user(),
            json!([{"op": "replace", "path": "emails[value sw \"b\" and value le \"babs@jensen.org\"].display", "value": "L"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home", "display": "L"}
                ]}),
            )),
        ),
        (
            "replace with a primary eq \"true\" string filter",
            user(),
            json!([{"op": "replace", "path": "emails[primary eq \"true\"].display", "value": "P"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true, "display": "P"},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "replace with a ne filter",
            user(),
            json!([{"op": "replace", "path": "emails[type ne \"work\"].type", "value": "other"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "other"}
                ]}),
            )),
        ),
        (
            "replace matching elements with duplicates collapses them",
            user(),
            json!([{"op": "replace", "path": "emails[value ew \".org\" or value ew \".com\"]", "value": {"value": "one@x"}}]),
            Doc(with(&user(), json!({"emails": [{"value": "one@x"}]}))),
        ),
        (
            "filter keywords and attributes are case-insensitive",
            user(),
            json!([{"op": "replace", "path": "EMAILS[TYPE EQ \"WORK\"].VALUE", "value": "w@x"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "w@x", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "replace sub with a filter that cannot create",
            user(),
            json!([{"op": "replace", "path": "emails[value sw \"zzz\"].type", "value": "work"}]),
            Fails(ScimType::NoTarget),
        ),
        (
            "replace sub with contradictory eq filter",
            bare_user(),
            json!([{"op": "replace", "path": "emails[type eq \"a\" and type eq \"b\"].value", "value": "x"}]),
            Fails(ScimType::NoTarget),
        ),
        (
            "replace sub creating from a two-part eq filter",
            bare_user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\" and primary eq true].value", "value": "w@x"}]),
            Doc(with(
                &bare_user(),
                json!({"emails": [{"type": "work", "primary": true, "value": "w@x"}]}),
            )),
        ),
        (
            "path-less replace of a multi-valued attribute replaces the list",
            user(),
            json!([{"op": "replace", "value": {"phoneNumbers": [{"value": "1", "type": "home"}]}}]),
            Doc(with(
                &user(),
                json!({"phoneNumbers": [{"value": "1", "type": "home"}]}),
            )),
        ),
        (
            "replace the whole extension by its URN path merges",
            ent_user(),
            json!([{"op": "replace", "path": ENT, "value": {"department": "Sales"}}]),
            Doc(with(
                &ent_user(),
                json!({ENT: {
                    "employeeNumber": "701984", "department": "Sales",
                    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
                }}),
            )),
        ),
        (
            "replace active with mixed-case string",
            user(),
            json!([{"op": "replace", "path": "active", "value": "fAlSe"}]),
            Doc(with(&user(), json!({"active": false}))),
        ),
    ]);
}

#[test]
fn remove_semantics() {
    check_users(vec![
        (
            "remove a simple attribute",
            user(),
            json!([{"op": "remove", "path": "displayName"}]),
            Doc(with(&user(), json!({"displayName": null}))),
        ),
        (
            "remove an absent attribute is fine",
            bare_user(),
            json!([{"op": "remove", "path": "title"}]),
            Doc(bare_user()),
        ),
        (
            "remove a sub-attribute",
            user(),
            json!([{"op": "remove", "path": "name.formatted"}]),
            Doc(with(
                &user(),
                json!({"name": {"familyName": "Jensen", "givenName": "Barbara"}}),
            )),
        ),
        (
            "removing the last sub-attribute unassigns the attribute",
            with(&bare_user(), json!({"name": {"givenName": "Pat"}})),
            json!([{"op": "remove", "path": "name.givenName"}]),
            Doc(bare_user()),
        ),
        (
            "remove matching elements",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
            Doc(with(
                &user(),
                json!({"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]}),
            )),
        ),
        (
            "removing every element unassigns the attribute",
            user(),
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]),
            Doc(with(&user(), json!({"phoneNumbers": null}))),
        ),
        (
            "remove with a filter that matches nothing",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
            Fails(ScimType::NoTarget),
        ),
        (
            "remove a sub-attribute of matching elements",
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "type": "work"},
                    {"value": "babs@jensen.org", "type": "home"}
                ]}),
            )),
        ),
        (
            "remove a sub-attribute from every element",
            user(),
            json!([{"op": "remove", "path": "emails.type"}]),
            Doc(with(
                &user(),
                json!({"emails": [
                    {"value": "bjensen@example.com", "primary": true},
                    {"value": "babs@jensen.org"}
                ]}),
            )),
        ),
        (
            "remove listed values (Entra style) on a user attribute",
            user(),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}, {"value": "nope@x"}]}]),
            Doc(with(
                &user(),
                json!({"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]}),
            )),
        ),
        (
            "remove listed values given as strings",
            user(),
            json!([{"op": "remove", "path": "emails", "value": "babs@jensen.org"}]),
            Doc(with(
                &user(),
                json!({"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]}),
            )),
        ),
        (
            "remove with an empty object value removes nothing",
            user(),
            json!([{"op": "remove", "path": "emails", "value": [{}]}]),
            Doc(user()),
        ),
        (
            "remove an enterprise attribute",
            ent_user(),
            json!([{"op": "remove", "path": format!("{ENT}:employeeNumber")}]),
            Doc(with(
                &ent_user(),
                json!({ENT: {
                    "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
                }}),
            )),
        ),
        (
            "remove the whole extension",
            ent_user(),
            json!([{"op": "remove", "path": ENT}]),
            Doc(with(&user(), json!({}))),
        ),
        (
            "remove password is a no-op",
            user(),
            json!([{"op": "remove", "path": "password"}]),
            Doc(user()),
        ),
        (
            "remove then add in one request",
            user(),
            json!([
                {"op": "remove", "path": "emails"},
                {"op": "add", "path": "emails", "value": [{"value": "only@x", "type": "work"}]}
            ]),
            Doc(with(
                &user(),
                json!({"emails": [{"value": "only@x", "type": "work"}]}),
            )),
        ),
        (
            "operations see earlier ones",
            bare_user(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@x"},
                {"op": "remove", "path": "emails[value eq \"b@x\"]"}
            ]),
            Doc(bare_user()),
        ),
    ]);
}

#[test]
fn user_errors() {
    check_users(vec![
        (
            "unknown attribute",
            user(),
            json!([{"op": "replace", "path": "favouriteColour", "value": "blue"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "unknown sub-attribute",
            user(),
            json!([{"op": "replace", "path": "name.nick", "value": "x"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "sub of a simple attribute",
            user(),
            json!([{"op": "replace", "path": "userName.x", "value": "x"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "unknown extension attribute",
            user(),
            json!([{"op": "add", "path": format!("{ENT}:shoeSize"), "value": "9"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "unknown schema URN",
            user(),
            json!([{"op": "add", "path": "urn:example:x:1.0:User:foo", "value": "9"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "schemas is not patchable",
            user(),
            json!([{"op": "remove", "path": "schemas"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "filter on a single-valued attribute",
            user(),
            json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": {}}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "filter on an unknown sub-attribute",
            user(),
            json!([{"op": "remove", "path": "emails[kind eq \"work\"]"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "filtered path with a bad sub",
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].nope", "value": "x"}]),
            Fails(ScimType::InvalidPath),
        ),
        (
            "remove userName",
            user(),
            json!([{"op": "remove", "path": "userName"}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "replace userName with null",
            user(),
            json!([{"op": "replace", "path": "userName", "value": null}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "path-less userName null",
            user(),
            json!([{"op": "replace", "value": {"userName": null}}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "empty userName",
            user(),
            json!([{"op": "replace", "path": "userName", "value": "  "}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "replace id",
            user(),
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            Fails(ScimType::Mutability),
        ),
        (
            "remove id",
            user(),
            json!([{"op": "remove", "path": "id"}]),
            Fails(ScimType::Mutability),
        ),
        (
            "path-less different id",
            user(),
            json!([{"op": "replace", "value": {"id": "other", "displayName": "x"}}]),
            Fails(ScimType::Mutability),
        ),
        (
            "path-less id of the wrong type",
            user(),
            json!([{"op": "replace", "value": {"id": 7}}]),
            Fails(ScimType::Mutability),
        ),
        (
            "replace meta",
            user(),
            json!([{"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}]),
            Fails(ScimType::Mutability),
        ),
        (
            "remove meta",
            user(),
            json!([{"op": "remove", "path": "meta"}]),
            Fails(ScimType::Mutability),
        ),
        (
            "add groups",
            user(),
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            Fails(ScimType::Mutability),
        ),
        (
            "remove groups by filter",
            user(),
            json!([{"op": "remove", "path": format!("groups[value eq \"{GROUP_ID}\"]")}]),
            Fails(ScimType::Mutability),
        ),
        (
            "manager.displayName is read-only",
            user(),
            json!([{"op": "replace", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}]),
            Fails(ScimType::Mutability),
        ),
        (
            "boolean attribute given a word",
            user(),
            json!([{"op": "replace", "path": "active", "value": "nope"}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "boolean attribute given a number",
            user(),
            json!([{"op": "replace", "path": "active", "value": 0}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "path-less boolean given an object",
            user(),
            json!([{"op": "replace", "value": {"active": {}}}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "string attribute given an object",
            user(),
            json!([{"op": "replace", "path": "title", "value": {"x": 1}}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "string attribute given an array",
            user(),
            json!([{"op": "add", "path": "displayName", "value": ["a"]}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "string attribute given a number",
            user(),
            json!([{"op": "replace", "value": {"title": 5}}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "complex attribute given a number",
            user(),
            json!([{"op": "replace", "path": "name", "value": 5}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "complex without value given a string",
            user(),
            json!([{"op": "replace", "path": "name", "value": "Babs"}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "sub-attribute of the wrong type",
            user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": "maybe"}]}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "element of the wrong type",
            user(),
            json!([{"op": "add", "path": "emails", "value": [5]}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "filtered element replacement not an object",
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": 5}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "extension value not an object",
            user(),
            json!([{"op": "add", "value": {ENT: "Eng"}}]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "password of the wrong type",
            user(),
            json!([{"op": "replace", "path": "password", "value": 5}]),
            Fails(ScimType::InvalidValue),
        ),
    ]);
}

#[test]
fn large_lists_stay_linear() {
    let many: Vec<Value> = (0..20_000)
        .map(|i| json!({"value": format!("e{}@x", i % 10_000), "type": "other"}))
        .collect();
    let request = body(json!([
        {"op": "add", "path": "emails", "value": many},
        {"op": "remove", "path": "emails[value sw \"e1\"]"}
    ]));
    let doc = run_user(&bare_user(), &request).unwrap();
    // 10,000 distinct addresses, minus e1, e10..e19, e100..e199, e1000..e1999.
    assert_eq!(
        doc["emails"].as_array().unwrap().len(),
        10_000 - 1 - 10 - 100 - 1000
    );
}

#[test]
fn a_failing_operation_leaves_the_document_unchanged() {
    // `run_user` asserts the document is untouched whenever a row fails.
    check_users(vec![
        (
            "second op fails",
            user(),
            json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "id", "value": "other"}
            ]),
            Fails(ScimType::Mutability),
        ),
        (
            "last of many fails",
            ent_user(),
            json!([
                {"op": "remove", "path": "emails"},
                {"op": "add", "path": format!("{ENT}:department"), "value": "X"},
                {"op": "remove", "path": ENT},
                {"op": "replace", "path": "active", "value": "nope"}
            ]),
            Fails(ScimType::InvalidValue),
        ),
        (
            "a failing filter after edits",
            user(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "z@x"}]},
                {"op": "remove", "path": "emails[value eq \"absent@x\"]"}
            ]),
            Fails(ScimType::NoTarget),
        ),
    ]);
    let mut doc = json!("not an object");
    let ops = parse_patch_request(&body(json!([{"op": "remove", "path": "title"}]))).unwrap();
    assert_eq!(apply_to_user(&mut doc, &ops).unwrap_err().status, 500);
}

// ---------------------------------------------------------------- groups

enum GroupExpect {
    Ops(Value, Vec<MemberOp>),
    Fails(ScimType),
}

fn check_groups(rows: Vec<(&str, Value, GroupExpect)>) {
    let mut failures = Vec::new();
    for (name, ops, expect) in rows {
        let initial = group();
        let got = parse_patch_request(&body(ops)).and_then(|ops| {
            let mut doc = initial.clone();
            match apply_to_group(&mut doc, &ops) {
                Ok(member_ops) => Ok((doc, member_ops)),
                Err(err) => {
                    assert_eq!(doc, initial, "{name}: doc changed on error");
                    Err(err)
                }
            }
        });
        match (got, expect) {
            (Ok((doc, ops)), GroupExpect::Ops(want_doc, want_ops)) => {
                if doc != want_doc || ops != want_ops {
                    failures.push(format!(
                        "{name}:\n  got  {doc} {ops:?}\n  want {want_doc} {want_ops:?}"
                    ));
                }
            }
            (Err(err), GroupExpect::Fails(kind)) if err.scim_type == Some(kind) => {}
            (Ok((doc, ops)), GroupExpect::Fails(kind)) => {
                failures.push(format!("{name}: want {kind:?}, got {doc} {ops:?}"))
            }
            (Err(err), _) => failures.push(format!("{name}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn filter_of(path: &str) -> Filter {
    crate::filter::parse_patch_path(path)
        .unwrap()
        .value_filter
        .unwrap()
}

#[test]
fn group_semantics() {
    check_groups(vec![
        (
            "add a single member object",
            json!([{"op": "add", "path": "members", "value": {"value": "u1", "type": "Group"}}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Add(vec![json!({"value": "u1", "type": "Group"})])],
            ),
        ),
        (
            "member keys are case-insensitive and $ref is dropped",
            json!([{"op": "add", "path": "MEMBERS", "value": [{"VALUE": "u1", "Type": "USER", "$ref": "x", "Display": "One"}]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Add(vec![
                    json!({"value": "u1", "type": "User", "display": "One"}),
                ])],
            ),
        ),
        (
            "members given as id strings",
            json!([{"op": "add", "path": "members", "value": ["u1", "u2"]}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Add(vec![
                    json!({"value": "u1"}),
                    json!({"value": "u2"}),
                ])],
            ),
        ),
        (
            "path-less add with members",
            json!([{"op": "add", "value": {"members": [{"value": "u1"}]}}]),
            GroupExpect::Ops(group(), vec![MemberOp::Add(vec![json!({"value": "u1"})])]),
        ),
        (
            "path-less replace with members and displayName",
            json!([{"op": "replace", "value": {"displayName": "New", "members": [{"value": "u1"}]}}]),
            GroupExpect::Ops(
                with(&group(), json!({"displayName": "New"})),
                vec![MemberOp::Replace(vec![json!({"value": "u1"})])],
            ),
        ),
        (
            "replace members with an empty list",
            json!([{"op": "replace", "path": "members", "value": []}]),
            GroupExpect::Ops(group(), vec![MemberOp::Replace(vec![])]),
        ),
        (
            "replace members with null clears",
            json!([{"op": "replace", "path": "members", "value": null}]),
            GroupExpect::Ops(group(), vec![MemberOp::Clear]),
        ),
        (
            "remove members with an or of ids",
            json!([{"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\"]"}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::Remove(vec!["u1".into(), "u2".into()])],
            ),
        ),
        (
            "remove members by type needs the list",
            json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::RemoveMatching(filter_of(
                    "members[type eq \"Group\"]",
                ))],
            ),
        ),
        (
            "remove members by value ne needs the list",
            json!([{"op": "remove", "path": "members[value ne \"u1\"]"}]),
            GroupExpect::Ops(
                group(),
                vec![MemberOp::RemoveMatching(filter_of(
                    "members[value ne \"u1\"]",
                ))],
            ),
        ),
        (
            "Entra remove with a single value object",
            json!([{"op": "Remove", "path": "members", "value": {"value": "u1"}}]),
            GroupExpect::Ops(group(), vec![MemberOp::Remove(vec!["u1".into()])]),
        ),
        (
            "remove members with a null value clears",
            json!([{"op": "remove", "path": "members", "value": null}]),
            GroupExpect::Ops(group(), vec![MemberOp::Clear]),
        ),
        (
            "externalId on a group",
            json!([{"op": "add", "path": "externalId", "value": "okta-1"}]),
            GroupExpect::Ops(with(&group(), json!({"externalId": "okta-1"})), vec![]),
        ),
        (
            "path-less replace ignoring meta and schemas",
            json!([{"op": "replace", "value": {"schemas": [GROUP], "meta": {}, "displayName": "N"}}]),
            GroupExpect::Ops(with(&group(), json!({"displayName": "N"})), vec![]),
        ),
        (
            "path-less members sub-attribute key is ignored",
            json!([{"op": "replace", "value": {"members.display": "x"}}]),
            GroupExpect::Ops(group(), vec![]),
        ),
        (
            "remove displayName",
            json!([{"op": "remove", "path": "displayName"}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "displayName null",
            json!([{"op": "replace", "value": {"displayName": null}}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "displayName not a string",
            json!([{"op": "replace", "path": "displayName", "value": 1}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "group rename with a different id",
            json!([{"op": "replace", "value": {"id": "x", "displayName": "N"}}]),
            GroupExpect::Fails(ScimType::Mutability),
        ),
        (
            "members.display is read-only",
            json!([{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"}]),
            GroupExpect::Fails(ScimType::Mutability),
        ),
        (
            "members.value is immutable",
            json!([{"op": "replace", "path": "members.value", "value": "x"}]),
            GroupExpect::Fails(ScimType::Mutability),
        ),
        (
            "add with a members filter",
            json!([{"op": "add", "path": "members[value eq \"u1\"]", "value": {"value": "u1"}}]),
            GroupExpect::Fails(ScimType::InvalidPath),
        ),
        (
            "replace with a members filter",
            json!([{"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}]),
            GroupExpect::Fails(ScimType::InvalidPath),
        ),
        (
            "member without value",
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "member with an empty value",
            json!([{"op": "add", "path": "members", "value": [{"value": ""}]}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "member with a numeric value",
            json!([{"op": "add", "path": "members", "value": [{"value": 5}]}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "member of unknown type",
            json!([{"op": "add", "path": "members", "value": [{"value": "u", "type": "Robot"}]}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "member list of numbers",
            json!([{"op": "Remove", "path": "members", "value": [5]}]),
            GroupExpect::Fails(ScimType::InvalidValue),
        ),
        (
            "members filter on an unknown sub",
            json!([{"op": "remove", "path": "members[kind eq \"x\"]"}]),
            GroupExpect::Fails(ScimType::InvalidPath),
        ),
        (
            "user attribute on a group",
            json!([{"op": "replace", "path": "userName", "value": "x"}]),
            GroupExpect::Fails(ScimType::InvalidPath),
        ),
        (
            "enterprise attribute on a group",
            json!([{"op": "replace", "path": format!("{ENT}:department"), "value": "x"}]),
            GroupExpect::Fails(ScimType::InvalidPath),
        ),
        (
            "a failure after member ops returns no member ops",
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}, {"op": "remove", "path": "id"}]),
            GroupExpect::Fails(ScimType::Mutability),
        ),
    ]);
}

// ---------------------------------------------------------------- membership plans

fn mv(id: &str) -> MemberValue {
    MemberValue {
        value: id.into(),
        kind: None,
    }
}

fn mvk(id: &str, kind: &str) -> MemberValue {
    MemberValue {
        value: id.into(),
        kind: Some(kind.into()),
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn add(list: &[&str]) -> MemberOp {
    MemberOp::Add(list.iter().map(|id| json!({"value": id})).collect())
}

#[test]
fn membership_plans_without_the_member_list() {
    let type_group = filter_of("members[type eq \"Group\"]");
    for (name, ops, want) in [
        ("nothing", vec![], Ok(MembershipPlan::Unchanged)),
        (
            "empty add",
            vec![MemberOp::Add(vec![])],
            Ok(MembershipPlan::Unchanged),
        ),
        (
            "add",
            vec![MemberOp::Add(vec![
                json!({"value": "a", "type": "User"}),
                json!({"value": "b"}),
            ])],
            Ok(MembershipPlan::Delta {
                add: vec![mvk("a", "User"), mv("b")],
                remove: vec![],
            }),
        ),
        (
            "add twice keeps one",
            vec![add(&["a", "a"]), add(&["a"])],
            Ok(MembershipPlan::Delta {
                add: vec![mv("a")],
                remove: vec![],
            }),
        ),
        (
            "remove",
            vec![MemberOp::Remove(ids(&["a", "b"]))],
            Ok(MembershipPlan::Delta {
                add: vec![],
                remove: ids(&["a", "b"]),
            }),
        ),
        (
            "add then remove the same id removes it",
            vec![add(&["a", "b"]), MemberOp::Remove(ids(&["a"]))],
            Ok(MembershipPlan::Delta {
                add: vec![mv("b")],
                remove: ids(&["a"]),
            }),
        ),
        (
            "remove then add the same id adds it",
            vec![MemberOp::Remove(ids(&["a"])), add(&["a"])],
            Ok(MembershipPlan::Delta {
                add: vec![mv("a")],
                remove: vec![],
            }),
        ),
        (
            "clear",
            vec![MemberOp::Clear],
            Ok(MembershipPlan::Replace(vec![])),
        ),
        (
            "clear then add (RFC remove-all + add)",
            vec![MemberOp::Clear, add(&["a", "b"])],
            Ok(MembershipPlan::Replace(vec![mv("a"), mv("b")])),
        ),
        (
            "replace",
            vec![MemberOp::Replace(vec![
                json!({"value": "b"}),
                json!({"value": "a"}),
                json!({"value": "b"}),
            ])],
            Ok(MembershipPlan::Replace(vec![mv("b"), mv("a")])),
        ),
        (
            "ops before a replace do not matter",
            vec![
                MemberOp::RemoveMatching(type_group.clone()),
                add(&["x"]),
                MemberOp::Replace(vec![json!({"value": "a"})]),
            ],
            Ok(MembershipPlan::Replace(vec![mv("a")])),
        ),
        (
            "replace then edits",
            vec![
                MemberOp::Replace(vec![json!({"value": "a"}), json!({"value": "b"})]),
                MemberOp::Remove(ids(&["a"])),
                add(&["c"]),
            ],
            Ok(MembershipPlan::Replace(vec![mv("b"), mv("c")])),
        ),
        (
            "remove-matching after a replace is resolved without the list",
            vec![
                MemberOp::Replace(vec![
                    json!({"value": "a", "type": "Group"}),
                    json!({"value": "b", "type": "User"}),
                ]),
                MemberOp::RemoveMatching(type_group.clone()),
            ],
            Ok(MembershipPlan::Replace(vec![mvk("b", "User")])),
        ),
        (
            "remove-matching needs the list",
            vec![MemberOp::RemoveMatching(type_group.clone())],
            Err(PlanError::NeedsMembers),
        ),
        (
            "remove-matching after edits needs the list",
            vec![add(&["a"]), MemberOp::RemoveMatching(type_group.clone())],
            Err(PlanError::NeedsMembers),
        ),
        (
            "a malformed hand-built op",
            vec![MemberOp::Add(vec![json!({"display": "x"})])],
            Err(PlanError::Scim(ScimError::invalid_value(
                "a member needs a \"value\"",
            ))),
        ),
    ] {
        let got = plan_membership(&ops, None);
        match (&got, &want) {
            (Err(PlanError::Scim(g)), Err(PlanError::Scim(w))) => {
                assert_eq!(g.scim_type, w.scim_type, "{name}")
            }
            _ => assert_eq!(got, want, "{name}"),
        }
    }
}

#[test]
fn membership_plans_against_the_member_list() {
    let current = vec![
        json!({"value": "u1", "type": "User", "display": "One"}),
        json!({"value": "g1", "type": "Group", "display": "Sub"}),
        json!({"value": "u2", "type": "User", "display": "Two"}),
    ];
    let type_group = filter_of("members[type eq \"Group\"]");
    let display_t = filter_of("members[display sw \"t\"]");
    let upper_u1 = filter_of("members[value eq \"U1\"]");
    for (name, ops, want) in [
        ("nothing", vec![], MembershipPlan::Unchanged),
        (
            "adding a member already there",
            vec![add(&["u1"])],
            MembershipPlan::Unchanged,
        ),
        (
            "removing an absent member",
            vec![MemberOp::Remove(ids(&["zz"]))],
            MembershipPlan::Unchanged,
        ),
        (
            "remove by type",
            vec![MemberOp::RemoveMatching(type_group.clone())],
            MembershipPlan::Delta {
                add: vec![],
                remove: ids(&["g1"]),
            },
        ),
        (
            "remove by display, case-insensitively",
            vec![MemberOp::RemoveMatching(display_t)],
            MembershipPlan::Delta {
                add: vec![],
                remove: ids(&["u2"]),
            },
        ),
        (
            "member ids are case-exact",
            vec![MemberOp::RemoveMatching(upper_u1)],
            MembershipPlan::Unchanged,
        ),
        (
            "remove-matching sees members added earlier in the request",
            vec![
                MemberOp::Add(vec![
                    json!({"value": "g2", "type": "Group"}),
                    json!({"value": "u3"}),
                ]),
                MemberOp::RemoveMatching(type_group.clone()),
            ],
            MembershipPlan::Delta {
                add: vec![mv("u3")],
                remove: ids(&["g1"]),
            },
        ),
        (
            "replace becomes a precise delta",
            vec![MemberOp::Replace(vec![
                json!({"value": "u2"}),
                json!({"value": "u9", "type": "User"}),
            ])],
            MembershipPlan::Delta {
                add: vec![mvk("u9", "User")],
                remove: ids(&["u1", "g1"]),
            },
        ),
        (
            "replace with the same members",
            vec![MemberOp::Replace(vec![
                json!({"value": "g1"}),
                json!({"value": "u1"}),
                json!({"value": "u2"}),
            ])],
            MembershipPlan::Unchanged,
        ),
        (
            "clear",
            vec![MemberOp::Clear],
            MembershipPlan::Delta {
                add: vec![],
                remove: ids(&["u1", "g1", "u2"]),
            },
        ),
    ] {
        assert_eq!(plan_membership(&ops, Some(&current)), Ok(want), "{name}");
    }
}

#[test]
fn group_patch_to_plan_end_to_end() {
    let ops = parse_patch_request(&body(json!([
        {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
        {"op": "Remove", "path": "members", "value": [{"value": "u2"}]},
        {"op": "remove", "path": "members[value eq \"u0\"]"}
    ])))
    .unwrap();
    let mut doc = group();
    let member_ops = apply_to_group(&mut doc, &ops).unwrap();
    assert_eq!(doc, group());
    assert_eq!(
        plan_membership(&member_ops, None),
        Ok(MembershipPlan::Delta {
            add: vec![mv("u1")],
            remove: ids(&["u2", "u0"])
        })
    );
}

// ---------------------------------------------------------------- robustness

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "work",
            "home",
            "True",
            "false",
            "",
            "x@example.com",
            "u1",
            "User",
            "Group",
            "value",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "value",
        "type",
        "primary",
        "display",
        "displayName",
        "userName",
        "active",
        "name",
        "givenName",
        "name.givenName",
        "emails",
        "members",
        "id",
        "meta",
        "groups",
        "password",
        "title",
        "manager",
        ENT,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "emails[type eq \"work\"].value",
        "bogus",
    ])
    .prop_map(str::to_string)
}

fn arb_path() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec![
            "active",
            "userName",
            "displayName",
            "name",
            "name.givenName",
            "emails",
            "emails.value",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "emails[value ew \"x\"].primary",
            "emails[not (type eq \"home\") or primary eq true]",
            "addresses[type eq \"work\"].streetAddress",
            "members",
            "members[value eq \"u1\"]",
            "members[type eq \"Group\"]",
            "members.display",
            "id",
            "meta",
            "groups",
            "password",
            "title",
            "x509Certificates",
            "roles[value pr]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User:nickName",
            "",
            "[",
            "emails[",
            "emails[type eq \"work\"",
            "a.b.c",
            "nope",
            "emails[type eq \"a\"]]",
        ])
        .prop_map(|s| json!(s)),
        any::<i8>().prop_map(|n| json!(n)),
    ]
}

fn arb_op() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "add", "Add", "remove", "Remove", "replace", "REPLACE", "frob",
        ]),
        arb_path(),
        prop::option::of(arb_json()),
    )
        .prop_map(|(op, path, value)| {
            let mut obj = Map::new();
            obj.insert("op".into(), json!(op));
            if !path.is_null() {
                obj.insert("path".into(), path);
            }
            if let Some(value) = value {
                obj.insert("value".into(), value);
            }
            Value::Object(obj)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_requests_never_panic_and_fail_with_400(
        ops in prop::collection::vec(arb_op(), 1..6),
        use_enterprise in any::<bool>(),
    ) {
        let request = body(Value::Array(ops));
        let initial = if use_enterprise { ent_user() } else { user() };
        match parse_patch_request(&request) {
            Err(err) => prop_assert_eq!(err.status, 400),
            Ok(ops) => {
                let mut doc = initial.clone();
                match apply_to_user(&mut doc, &ops) {
                    Ok(()) => {
                        // The result is still a user with its identity intact.
                        prop_assert_eq!(doc.get("id"), initial.get("id"));
                        prop_assert_eq!(doc.get("meta"), initial.get("meta"));
                        prop_assert!(doc.get("userName").is_some_and(Value::is_string));
                    }
                    Err(err) => {
                        prop_assert_eq!(err.status, 400);
                        prop_assert_eq!(&doc, &initial);
                    }
                }
                let mut gdoc = group();
                match apply_to_group(&mut gdoc, &ops) {
                    Ok(member_ops) => {
                        prop_assert!(gdoc.get("members").is_none());
                        let current = vec![json!({"value": "u1", "type": "User"}), json!({"value": "g1", "type": "Group"})];
                        match plan_membership(&member_ops, None) {
                            Ok(_) => {}
                            Err(PlanError::NeedsMembers) => {
                                prop_assert!(plan_membership(&member_ops, Some(&current)).is_ok());
                            }
                            Err(PlanError::Scim(err)) => prop_assert!(false, "validated ops failed to plan: {}", err),
                        }
                    }
                    Err(err) => {
                        prop_assert_eq!(err.status, 400);
                        prop_assert_eq!(&gdoc, &group());
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_bodies_never_panic(request in arb_json()) {
        if let Err(err) = parse_patch_request(&request) {
            prop_assert_eq!(err.status, 400);
        }
        let wrapped = json!({"schemas": [PATCH_OP], "Operations": [request]});
        match parse_patch_request(&wrapped) {
            Err(err) => prop_assert_eq!(err.status, 400),
            Ok(ops) => {
                let mut doc = user();
                if let Err(err) = apply_to_user(&mut doc, &ops) {
                    prop_assert_eq!(err.status, 400);
                }
            }
        }
    }

    #[test]
    fn path_less_values_of_any_shape_never_panic(
        value in arb_json(),
        op in prop::sample::select(vec!["add", "replace"]),
    ) {
        let request = body(json!([{"op": op, "value": value}]));
        if let Ok(ops) = parse_patch_request(&request) {
            let mut doc = ent_user();
            if let Err(err) = apply_to_user(&mut doc, &ops) {
                prop_assert_eq!(err.status, 400);
                prop_assert_eq!(&doc, &ent_user());
            }
            let mut gdoc = group();
            if let Err(err) = apply_to_group(&mut gdoc, &ops) {
                prop_assert_eq!(err.status, 400);
            }
        }
    }
}
