//! Table-driven tests of the filter language: parsing (as S-expressions),
//! canonical printing, errors, evaluation against RFC 7643 example
//! resources, schema validation, index push-down and PATCH paths, plus
//! property tests that nothing panics and printing round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{parse, parse_patch_path, AttrPath, CompareOp, Filter, Literal, PatchPath};
use crate::schema::{
    group_resource, user_resource, AttrType, AttributeDef, Mutability, ResourceSchema, Returned,
    Schema,
};
use crate::ScimType;

// ---- Helpers ----------------------------------------------------------------

/// A compact, unambiguous rendering of a tree: `(op path value)`, with a
/// URN separated from the attribute by `|`.
fn sexpr(filter: &Filter) -> String {
    match filter {
        Filter::Compare { path, op, value } => {
            format!("({} {} {})", op.as_str(), path_s(path), lit_s(value))
        }
        Filter::Present(path) => format!("(pr {})", path_s(path)),
        Filter::And(a, b) => format!("(and {} {})", sexpr(a), sexpr(b)),
        Filter::Or(a, b) => format!("(or {} {})", sexpr(a), sexpr(b)),
        Filter::Not(inner) => format!("(not {})", sexpr(inner)),
        Filter::ValuePath { path, filter } => format!("(vp {} {})", path_s(path), sexpr(filter)),
    }
}

fn path_s(path: &AttrPath) -> String {
    let mut out = String::new();
    if let Some(urn) = &path.urn {
        out.push_str(urn);
        out.push('|');
    }
    out.push_str(&path.attr);
    if let Some(sub) = &path.sub {
        out.push('.');
        out.push_str(sub);
    }
    out
}

fn lit_s(literal: &Literal) -> String {
    match literal {
        Literal::Null => "null".into(),
        Literal::Bool(b) => b.to_string(),
        Literal::Number(n) => n.to_string(),
        Literal::String(s) => serde_json::to_string(s).unwrap(),
    }
}

/// Runs every row, then fails once listing every mismatch.
fn report(table: &str, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{} of the {table} rows failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// `input` parses to the tree `expected` (in `sexpr` form), and printing
/// that tree parses back to the same tree.
fn check_parse(rows: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, expected) in rows {
        match parse(input) {
            Ok(filter) => {
                let actual = sexpr(&filter);
                if actual != *expected {
                    failures.push(format!(
                        "  {input:?}\n    expected {expected}\n    actual   {actual}"
                    ));
                }
                let printed = filter.to_string();
                match parse(&printed) {
                    Ok(again) if again == filter => {}
                    other => failures.push(format!(
                        "  {input:?}: printed as {printed:?}, which parses to {other:?}"
                    )),
                }
            }
            Err(e) => failures.push(format!("  {input:?}: expected {expected}, got error {e}")),
        }
    }
    report("parse", failures);
}

/// `input` is rejected with `400 invalidFilter` and the detail contains
/// `fragment`.
fn check_invalid(rows: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, fragment) in rows {
        match parse(input) {
            Ok(filter) => failures.push(format!(
                "  {input:?}: expected an error containing {fragment:?}, parsed to {}",
                sexpr(&filter)
            )),
            Err(e) => {
                if e.status != 400
                    || e.scim_type != Some(ScimType::InvalidFilter)
                    || !e.detail.contains(fragment)
                {
                    failures.push(format!(
                        "  {input:?}: expected invalidFilter containing {fragment:?}, got {e}"
                    ));
                }
            }
        }
    }
    report("invalid filter", failures);
}

/// `input` prints in canonical syntax as `expected`.
fn check_display(rows: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, expected) in rows {
        let filter = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let printed = filter.to_string();
        if printed != *expected {
            failures.push(format!(
                "  {input:?}\n    expected {expected}\n    actual   {printed}"
            ));
        }
        if parse(&printed).ok().as_ref() != Some(&filter) {
            failures.push(format!("  {input:?}: {printed:?} does not parse back"));
        }
    }
    report("display", failures);
}

/// Each filter matches (or not) `doc` under `schema`. Every filter must
/// also pass validation unless it is listed with `false` and mentions an
/// attribute the schema does not know; validation is checked separately.
fn check_matches(schema: &ResourceSchema, doc: &Value, rows: &[(&str, bool)]) {
    let mut failures = Vec::new();
    for (input, expected) in rows {
        match parse(input) {
            Ok(filter) => {
                let actual = filter.matches(doc, schema);
                if actual != *expected {
                    failures.push(format!("  {input:?}: expected {expected}, got {actual}"));
                }
            }
            Err(e) => failures.push(format!("  {input:?}: {e}")),
        }
    }
    report("match", failures);
}

/// `None`: the filter validates; `Some(fragment)`: it is rejected with
/// `invalidFilter` mentioning `fragment`.
fn check_validate(schema: &ResourceSchema, rows: &[(&str, Option<&str>)]) {
    let mut failures = Vec::new();
    for (input, expected) in rows {
        let filter = match parse(input) {
            Ok(filter) => filter,
            Err(e) => {
                failures.push(format!("  {input:?}: does not parse: {e}"));
                continue;
            }
        };
        match (filter.validate(schema), expected) {
            (Ok(()), None) => {}
            (Ok(()), Some(fragment)) => failures.push(format!(
                "  {input:?}: expected an error containing {fragment:?}"
            )),
            (Err(e), None) => failures.push(format!("  {input:?}: unexpected error {e}")),
            (Err(e), Some(fragment)) => {
                if e.scim_type != Some(ScimType::InvalidFilter) || !e.detail.contains(fragment) {
                    failures.push(format!(
                        "  {input:?}: expected invalidFilter containing {fragment:?}, got {e}"
                    ));
                }
            }
        }
    }
    report("validate", failures);
}

fn patch_s(path: &PatchPath) -> String {
    let mut out = path_s(&path.attr);
    if let Some(filter) = &path.value_filter {
        out.push_str(&format!(" [{}]", sexpr(filter)));
    }
    if let Some(sub) = &path.sub {
        out.push_str(&format!(" .{sub}"));
    }
    out
}

// ---- Fixtures ---------------------------------------------------------------

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Barbara Jensen, RFC 7643 §8.2–8.3, with the enterprise extension.
fn bjensen() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "primary": true
            },
            {
                "type": "home",
                "streetAddress": "456 Hollywood Blvd",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA"
            }
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}
        ],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "groups": [
            {
                "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
                "display": "Tour Guides"
            }
        ],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith"
            }
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\"",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        }
    })
}

/// A user with empty and null values and keys in unusual case.
fn sparse_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "abc",
        "USERNAME": "Sparse",
        "Title": "",
        "nickName": null,
        "emails": [],
        "phoneNumbers": [{"value": "", "type": ""}],
        "name": {"givenName": "", "familyName": null},
        "ims": [{"Value": "x@foo.com", "Type": "XMPP"}],
        "addresses": {},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "7"}
    })
}

fn tour_guides() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "externalId": "tg-1",
        "displayName": "Tour Guides",
        "members": [
            {
                "value": "2819c223-7f76-453a-919d-413861904646",
                "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                "display": "Babs Jensen",
                "type": "User"
            },
            {
                "value": "902c246b-6245-4190-8e05-00816be7344a",
                "display": "Mandy Pepperidge",
                "type": "User"
            }
        ],
        "meta": {
            "resourceType": "Group",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        }
    })
}

fn def(name: &'static str, kind: AttrType) -> AttributeDef {
    AttributeDef {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: "none",
        canonical_values: &[],
        reference_types: &[],
        description: "",
        sub_attributes: Vec::new(),
    }
}

/// A made-up resource with the attribute types Users and Groups lack
/// (integer, decimal, a case-exact string, a complex without `value`).
fn widget_schema() -> ResourceSchema {
    let mut code = def("code", AttrType::String);
    code.case_exact = true;
    let mut blob = def("blob", AttrType::Binary);
    blob.case_exact = true;
    let mut tags = def("tags", AttrType::String);
    tags.multi_valued = true;
    let mut sizes = def("sizes", AttrType::Integer);
    sizes.multi_valued = true;
    let mut parts = def("parts", AttrType::Complex);
    parts.multi_valued = true;
    parts.sub_attributes = vec![def("name", AttrType::String), def("qty", AttrType::Integer)];
    ResourceSchema {
        name: "Widget",
        endpoint: "/Widgets",
        core: Schema {
            id: "urn:example:params:scim:schemas:Widget",
            name: "Widget",
            description: "",
            attributes: vec![
                def("count", AttrType::Integer),
                def("weight", AttrType::Decimal),
                def("big", AttrType::Integer),
                def("enabled", AttrType::Boolean),
                code,
                def("label", AttrType::String),
                blob,
                def("seen", AttrType::DateTime),
                tags,
                sizes,
                parts,
            ],
        },
        extensions: Vec::new(),
    }
}

fn widget() -> Value {
    json!({
        "id": "w1",
        "count": 42,
        "weight": 2.5,
        "big": 18446744073709551615u64,
        "enabled": false,
        "code": "AbC",
        "label": "Widget",
        "blob": "AAEC",
        "seen": "2024-02-29T12:00:00.5+00:00",
        "tags": ["red", "Blue"],
        "sizes": [1, 5, 10],
        "parts": [{"name": "bolt", "qty": 4}]
    })
}

/// The filters of RFC 7644 §3.4.2.2, Figure 2 and the surrounding text.
const RFC_FILTERS: &[&str] = &[
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    r#"userName Eq "john""#,
    r#"Username eq "john""#,
];

// ---- Parsing ----------------------------------------------------------------

#[test]
fn rfc7644_example_filters_parse() {
    check_parse(&[
        (r#"userName eq "bjensen""#, r#"(eq userName "bjensen")"#),
        (
            r#"name.familyName co "O'Malley""#,
            r#"(co name.familyName "O'Malley")"#,
        ),
        (r#"userName sw "J""#, r#"(sw userName "J")"#),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"(sw urn:ietf:params:scim:schemas:core:2.0:User|userName "J")"#,
        ),
        (r#"title pr"#, r#"(pr title)"#),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"(gt meta.lastModified "2011-05-13T04:42:34Z")"#,
        ),
        (
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"(ge meta.lastModified "2011-05-13T04:42:34Z")"#,
        ),
        (
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"(lt meta.lastModified "2011-05-13T04:42:34Z")"#,
        ),
        (
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"(le meta.lastModified "2011-05-13T04:42:34Z")"#,
        ),
        (
            r#"title pr and userType eq "Employee""#,
            r#"(and (pr title) (eq userType "Employee"))"#,
        ),
        (
            r#"title pr or userType eq "Intern""#,
            r#"(or (pr title) (eq userType "Intern"))"#,
        ),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"(eq schemas "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")"#,
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"(and (eq userType "Employee") (or (co emails "example.com") (co emails.value "example.org")))"#,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"(and (ne userType "Employee") (not (or (co emails "example.com") (co emails.value "example.org"))))"#,
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"(and (eq userType "Employee") (eq emails.type "work"))"#,
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"(and (eq userType "Employee") (vp emails (and (eq type "work") (co value "@example.com"))))"#,
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"(or (vp emails (and (eq type "work") (co value "@example.com"))) (vp ims (and (eq type "xmpp") (co value "@foo.com"))))"#,
        ),
        // §3.4.2.2: "the following two expressions will evaluate to the same
        // logical value".
        (r#"userName Eq "john""#, r#"(eq userName "john")"#),
        (r#"Username eq "john""#, r#"(eq Username "john")"#),
    ]);
}

#[test]
fn identity_provider_filters_parse() {
    check_parse(&[
        // Okta: user and group lookups before create.
        (
            r#"userName eq "john.doe@example.com""#,
            r#"(eq userName "john.doe@example.com")"#,
        ),
        (
            r#"displayName eq "Engineering""#,
            r#"(eq displayName "Engineering")"#,
        ),
        (
            r#"id eq "00u1ab2cd3EF4gh5i6j7""#,
            r#"(eq id "00u1ab2cd3EF4gh5i6j7")"#,
        ),
        // Entra ID (Azure AD) provisioning.
        (
            r#"userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081""#,
            r#"(eq userName "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081")"#,
        ),
        (
            r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
            r#"(eq externalId "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")"#,
        ),
        (
            r#"displayName eq "Group1DisplayName""#,
            r#"(eq displayName "Group1DisplayName")"#,
        ),
        (
            r#"emails[type eq "work"].value eq "Test_User_11bb3dd4@testuser.com""#,
            r#"(vp emails (and (eq type "work") (eq value "Test_User_11bb3dd4@testuser.com")))"#,
        ),
        (
            r#"id eq "40734ae8-1a5c-4c5f-8d3e-9b4f0c2a1b3d" and members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"(and (eq id "40734ae8-1a5c-4c5f-8d3e-9b4f0c2a1b3d") (vp members (eq value "2819c223-7f76-453a-919d-413861904646")))"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            r#"(eq urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|employeeNumber "701984")"#,
        ),
        (r#"active eq true"#, r#"(eq active true)"#),
        (r#"active eq "True""#, r#"(eq active "True")"#),
        (r#"userName eq "O'Brien""#, r#"(eq userName "O'Brien")"#),
        (
            r#"userName eq "john+tag@example.com""#,
            r#"(eq userName "john+tag@example.com")"#,
        ),
    ]);
}

#[test]
fn precedence_and_associativity() {
    check_parse(&[
        (
            r#"a pr or b pr and c pr"#,
            r#"(or (pr a) (and (pr b) (pr c)))"#,
        ),
        (
            r#"a pr and b pr or c pr"#,
            r#"(or (and (pr a) (pr b)) (pr c))"#,
        ),
        (
            r#"a pr and b pr and c pr"#,
            r#"(and (and (pr a) (pr b)) (pr c))"#,
        ),
        (
            r#"a pr or b pr or c pr"#,
            r#"(or (or (pr a) (pr b)) (pr c))"#,
        ),
        (
            r#"(a pr or b pr) and c pr"#,
            r#"(and (or (pr a) (pr b)) (pr c))"#,
        ),
        (
            r#"a pr and (b pr or c pr)"#,
            r#"(and (pr a) (or (pr b) (pr c)))"#,
        ),
        (
            r#"a pr and (b pr and c pr)"#,
            r#"(and (pr a) (and (pr b) (pr c)))"#,
        ),
        (
            r#"a pr or (b pr or c pr)"#,
            r#"(or (pr a) (or (pr b) (pr c)))"#,
        ),
        (
            r#"a pr or b pr and c pr or d pr"#,
            r#"(or (or (pr a) (and (pr b) (pr c))) (pr d))"#,
        ),
        (
            r#"a pr and b pr or c pr and d pr"#,
            r#"(or (and (pr a) (pr b)) (and (pr c) (pr d)))"#,
        ),
        (
            r#"a pr and b pr and c pr or d pr"#,
            r#"(or (and (and (pr a) (pr b)) (pr c)) (pr d))"#,
        ),
        (r#"not (a pr) and b pr"#, r#"(and (not (pr a)) (pr b))"#),
        (r#"not (a pr) or b pr"#, r#"(or (not (pr a)) (pr b))"#),
        (r#"a pr and not (b pr)"#, r#"(and (pr a) (not (pr b)))"#),
        (
            r#"not (a pr and b pr) or c pr"#,
            r#"(or (not (and (pr a) (pr b))) (pr c))"#,
        ),
        (r#"not (a pr or b pr)"#, r#"(not (or (pr a) (pr b)))"#),
        (r#"not (not (a pr))"#, r#"(not (not (pr a)))"#),
        (r#"((a pr))"#, r#"(pr a)"#),
        (r#"(((a pr)))"#, r#"(pr a)"#),
        (r#"((a pr) and (b pr))"#, r#"(and (pr a) (pr b))"#),
        (
            r#"(a pr) or ((b pr) and c pr)"#,
            r#"(or (pr a) (and (pr b) (pr c)))"#,
        ),
        (
            r#"(a pr or b pr) and (c pr or d pr)"#,
            r#"(and (or (pr a) (pr b)) (or (pr c) (pr d)))"#,
        ),
        (
            r#"a eq 1 and b eq 2 or c eq 3"#,
            r#"(or (and (eq a 1) (eq b 2)) (eq c 3))"#,
        ),
        (
            r#"emails[type eq "work"] and emails[type eq "home"] or x pr"#,
            r#"(or (and (vp emails (eq type "work")) (vp emails (eq type "home"))) (pr x))"#,
        ),
        (
            r#"emails[type eq "a" or type eq "b" and primary eq true]"#,
            r#"(vp emails (or (eq type "a") (and (eq type "b") (eq primary true))))"#,
        ),
        // Words that merely start like keywords are attribute names.
        (r#"andy pr and oracle pr"#, r#"(and (pr andy) (pr oracle))"#),
        (
            r#"notes pr or nothing pr"#,
            r#"(or (pr notes) (pr nothing))"#,
        ),
        (r#"prefix pr"#, r#"(pr prefix)"#),
        (r#"eq eq "eq""#, r#"(eq eq "eq")"#),
        (r#"pr pr"#, r#"(pr pr)"#),
    ]);
}

#[test]
fn case_insensitive_keywords_and_names_keep_their_spelling() {
    check_parse(&[
        (r#"userName EQ "x""#, r#"(eq userName "x")"#),
        (r#"userName eQ "x""#, r#"(eq userName "x")"#),
        (r#"userName NE "x""#, r#"(ne userName "x")"#),
        (r#"userName Co "x""#, r#"(co userName "x")"#),
        (r#"userName SW "x""#, r#"(sw userName "x")"#),
        (r#"userName eW "x""#, r#"(ew userName "x")"#),
        (r#"count GT 1"#, r#"(gt count 1)"#),
        (r#"count Ge 1"#, r#"(ge count 1)"#),
        (r#"count lT 1"#, r#"(lt count 1)"#),
        (r#"count LE 1"#, r#"(le count 1)"#),
        (r#"title PR"#, r#"(pr title)"#),
        (r#"title Pr"#, r#"(pr title)"#),
        (r#"a pr AND b pr"#, r#"(and (pr a) (pr b))"#),
        (r#"a pr And b pr"#, r#"(and (pr a) (pr b))"#),
        (r#"a pr OR b pr"#, r#"(or (pr a) (pr b))"#),
        (r#"a pr oR b pr"#, r#"(or (pr a) (pr b))"#),
        (r#"NOT (a pr)"#, r#"(not (pr a))"#),
        (r#"Not(a pr)"#, r#"(not (pr a))"#),
        (r#"active eq TRUE"#, r#"(eq active true)"#),
        (r#"active eq True"#, r#"(eq active true)"#),
        (r#"active eq FALSE"#, r#"(eq active false)"#),
        (r#"title eq NULL"#, r#"(eq title null)"#),
        (r#"title eq Null"#, r#"(eq title null)"#),
        (r#"USERNAME eq "X""#, r#"(eq USERNAME "X")"#),
        (r#"NAME.FAMILYNAME eq "x""#, r#"(eq NAME.FAMILYNAME "x")"#),
        (
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME eq "x""#,
            r#"(eq URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER|USERNAME "x")"#,
        ),
        (
            r#"Urn:Ietf:Params:Scim:Schemas:Extension:Enterprise:2.0:User:Manager.Value eq "x""#,
            r#"(eq Urn:Ietf:Params:Scim:Schemas:Extension:Enterprise:2.0:User|Manager.Value "x")"#,
        ),
        (
            r#"EMAILS[TYPE EQ "work"]"#,
            r#"(vp EMAILS (eq TYPE "work"))"#,
        ),
    ]);
}

#[test]
fn whitespace_is_tolerated() {
    check_parse(&[
        ("  userName   eq    \"x\"  ", r#"(eq userName "x")"#),
        ("userName\teq\t\"x\"", r#"(eq userName "x")"#),
        ("\tuserName eq \"x\"\t", r#"(eq userName "x")"#),
        ("userName\r\neq\n\"x\"", r#"(eq userName "x")"#),
        ("a pr  \t and \t  b pr", r#"(and (pr a) (pr b))"#),
        ("a pr\nor\nb pr", r#"(or (pr a) (pr b))"#),
        ("(  a pr  )", r#"(pr a)"#),
        ("( a pr )and( b pr )", r#"(and (pr a) (pr b))"#),
        ("(a pr)or(b pr)", r#"(or (pr a) (pr b))"#),
        ("not(a pr)", r#"(not (pr a))"#),
        ("not   (  a pr  )", r#"(not (pr a))"#),
        ("not\t(a pr)", r#"(not (pr a))"#),
        (
            "emails[ type eq \"work\" ]",
            r#"(vp emails (eq type "work"))"#,
        ),
        (
            "emails [type eq \"work\"]",
            r#"(vp emails (eq type "work"))"#,
        ),
        (
            "emails[type eq \"work\"  and  value co \"x\"]",
            r#"(vp emails (and (eq type "work") (co value "x")))"#,
        ),
        ("userName eq\"x\"", r#"(eq userName "x")"#),
        (
            "userName eq \"x\"and b pr",
            r#"(and (eq userName "x") (pr b))"#,
        ),
        ("title  pr", r#"(pr title)"#),
        ("count eq 1 ", r#"(eq count 1)"#),
    ]);
}

#[test]
fn attribute_paths() {
    check_parse(&[
        (r#"name.givenName eq "x""#, r#"(eq name.givenName "x")"#),
        (
            r#"meta.resourceType eq "User""#,
            r#"(eq meta.resourceType "User")"#,
        ),
        (r#"x509Certificates pr"#, r#"(pr x509Certificates)"#),
        (r#"my-attr_2 eq "x""#, r#"(eq my-attr_2 "x")"#),
        (r#"a1-_b.c2-_d pr"#, r#"(pr a1-_b.c2-_d)"#),
        (r#"members.$ref pr"#, r#"(pr members.$ref)"#),
        (r#"members[$ref eq "x"]"#, r#"(vp members (eq $ref "x"))"#),
        (r#"$ref pr"#, r#"(pr $ref)"#),
        (r#"manager.$REF pr"#, r#"(pr manager.$REF)"#),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "x""#,
            r#"(eq urn:ietf:params:scim:schemas:core:2.0:User|name.familyName "x")"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
            r#"(eq urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|manager.value "x")"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref pr"#,
            r#"(pr urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|manager.$ref)"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr"#,
            r#"(pr urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|manager)"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#,
            r#"(vp urn:ietf:params:scim:schemas:core:2.0:User|emails (eq type "work"))"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value eq "x""#,
            r#"(vp urn:ietf:params:scim:schemas:core:2.0:User|emails (and (eq type "work") (eq value "x")))"#,
        ),
        (
            r#"urn:example:custom:attr pr"#,
            r#"(pr urn:example:custom|attr)"#,
        ),
        (r#"urn:a:b pr"#, r#"(pr urn:a|b)"#),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#,
            r#"(eq urn:ietf:params:scim:schemas:core:2.0:Group|displayName "x")"#,
        ),
    ]);
}

#[test]
fn literals() {
    check_parse(&[
        // Strings and JSON escapes.
        (r#"x eq """#, r#"(eq x "")"#),
        (r#"x eq " ""#, r#"(eq x " ")"#),
        (r#"x eq "a  b""#, r#"(eq x "a  b")"#),
        (r#"x eq "a\"b""#, r#"(eq x "a\"b")"#),
        (r#"x eq "\"""#, r#"(eq x "\"")"#),
        (r#"x eq "a\\b""#, r#"(eq x "a\\b")"#),
        (r#"x eq "\\""#, r#"(eq x "\\")"#),
        (r#"x eq "\/""#, r#"(eq x "/")"#),
        (r#"x eq "\b\f\n\r\t""#, r#"(eq x "\b\f\n\r\t")"#),
        (r#"x eq "\u00e9""#, r#"(eq x "é")"#),
        (r#"x eq "\u00E9""#, r#"(eq x "é")"#),
        (r#"x eq "caf\u00e9 cr\u00e8me""#, r#"(eq x "café crème")"#),
        (r#"x eq "\u0041\u0042""#, r#"(eq x "AB")"#),
        (r#"x eq "\u0000""#, r#"(eq x "\u0000")"#),
        (r#"x eq "\u001f""#, r#"(eq x "\u001f")"#),
        (r#"x eq "\u20AC""#, r#"(eq x "€")"#),
        (r#"x eq "\uD83D\uDE00""#, r#"(eq x "😀")"#),
        (r#"x eq "\ud83d\ude00""#, r#"(eq x "😀")"#),
        (r#"x eq "héllo wörld""#, r#"(eq x "héllo wörld")"#),
        (r#"x eq "日本語""#, r#"(eq x "日本語")"#),
        (r#"x eq "😀""#, r#"(eq x "😀")"#),
        (r#"x eq "O'Malley""#, r#"(eq x "O'Malley")"#),
        (r#"x eq "and or not pr""#, r#"(eq x "and or not pr")"#),
        (r#"x eq "(x) [y]""#, r#"(eq x "(x) [y]")"#),
        (r#"x eq "a]b""#, r#"(eq x "a]b")"#),
        (
            r#"emails[value eq "a]b"]"#,
            r#"(vp emails (eq value "a]b"))"#,
        ),
        // Numbers.
        (r#"x eq 0"#, r#"(eq x 0)"#),
        (r#"x eq 42"#, r#"(eq x 42)"#),
        (r#"x eq -42"#, r#"(eq x -42)"#),
        (r#"x eq -0"#, r#"(eq x 0)"#),
        (r#"x eq 3.14"#, r#"(eq x 3.14)"#),
        (r#"x eq -3.14"#, r#"(eq x -3.14)"#),
        (r#"x eq 0.5"#, r#"(eq x 0.5)"#),
        (r#"x eq 1e3"#, r#"(eq x 1000.0)"#),
        (r#"x eq 1E3"#, r#"(eq x 1000.0)"#),
        (r#"x eq 1e+3"#, r#"(eq x 1000.0)"#),
        (r#"x eq 25e-1"#, r#"(eq x 2.5)"#),
        (r#"x eq -2.5E-3"#, r#"(eq x -0.0025)"#),
        (
            r#"x eq 9223372036854775807"#,
            r#"(eq x 9223372036854775807)"#,
        ),
        (
            r#"x eq -9223372036854775808"#,
            r#"(eq x -9223372036854775808)"#,
        ),
        (
            r#"x eq 18446744073709551615"#,
            r#"(eq x 18446744073709551615)"#,
        ),
        (
            r#"x eq 18446744073709551616"#,
            r#"(eq x 1.8446744073709552e+19)"#,
        ),
        // Booleans and null.
        (r#"x eq true"#, r#"(eq x true)"#),
        (r#"x eq false"#, r#"(eq x false)"#),
        (r#"x eq null"#, r#"(eq x null)"#),
        (r#"x ne null"#, r#"(ne x null)"#),
        (
            r#"x eq true and y eq false"#,
            r#"(and (eq x true) (eq y false))"#,
        ),
        (r#"(x eq 1)"#, r#"(eq x 1)"#),
        (r#"(x eq null)"#, r#"(eq x null)"#),
        (r#"(x eq "a")"#, r#"(eq x "a")"#),
        // Every operator takes every kind of value syntactically; the
        // schema decides what makes sense (see `validate`).
        (r#"x co 1"#, r#"(co x 1)"#),
        (r#"x sw true"#, r#"(sw x true)"#),
        (r#"x gt null"#, r#"(gt x null)"#),
    ]);
}

#[test]
fn value_paths() {
    check_parse(&[
        (
            r#"emails[type eq "work"]"#,
            r#"(vp emails (eq type "work"))"#,
        ),
        (r#"emails[value pr]"#, r#"(vp emails (pr value))"#),
        (
            r#"emails[primary eq true]"#,
            r#"(vp emails (eq primary true))"#,
        ),
        (
            r#"emails[not (type eq "work")]"#,
            r#"(vp emails (not (eq type "work")))"#,
        ),
        (
            r#"emails[(type eq "work")]"#,
            r#"(vp emails (eq type "work"))"#,
        ),
        (
            r#"emails[type eq "work" or type eq "home"]"#,
            r#"(vp emails (or (eq type "work") (eq type "home")))"#,
        ),
        (
            r#"emails[type eq "work"].value eq "x""#,
            r#"(vp emails (and (eq type "work") (eq value "x")))"#,
        ),
        (
            r#"emails[type eq "work"].value pr"#,
            r#"(vp emails (and (eq type "work") (pr value)))"#,
        ),
        (
            r#"emails[type eq "work" or primary eq true].value co "@x""#,
            r#"(vp emails (and (or (eq type "work") (eq primary true)) (co value "@x")))"#,
        ),
        (
            r#"addresses[type eq "work"].streetAddress sw "1""#,
            r#"(vp addresses (and (eq type "work") (sw streetAddress "1")))"#,
        ),
        (
            r#"emails[type eq "work"].value eq "x" and userName pr"#,
            r#"(and (vp emails (and (eq type "work") (eq value "x"))) (pr userName))"#,
        ),
        (
            r#"emails[type eq "work"].VALUE EQ "x""#,
            r#"(vp emails (and (eq type "work") (eq VALUE "x")))"#,
        ),
        (
            r#"emails[type eq "work"] and userName eq "x""#,
            r#"(and (vp emails (eq type "work")) (eq userName "x"))"#,
        ),
        (
            r#"not (emails[type eq "work"])"#,
            r#"(not (vp emails (eq type "work")))"#,
        ),
        (
            r#"(emails[type eq "work"])"#,
            r#"(vp emails (eq type "work"))"#,
        ),
        (
            r#"name[givenName eq "Barbara"]"#,
            r#"(vp name (eq givenName "Barbara"))"#,
        ),
        (
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"(vp members (eq value "2819c223-7f76-453a-919d-413861904646"))"#,
        ),
        (
            r#"emails[type eq "work" and value co "@example.com" and primary eq true]"#,
            r#"(vp emails (and (and (eq type "work") (co value "@example.com")) (eq primary true)))"#,
        ),
        // Paths inside a value filter are taken as written; `validate`
        // checks them against the schema.
        (
            r#"emails[type.sub eq "x"]"#,
            r#"(vp emails (eq type.sub "x"))"#,
        ),
    ]);
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let deep = format!("{}a pr{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(sexpr(&parse(&deep).unwrap()), "(pr a)");
    let nots = format!("{}a pr{}", "not (".repeat(63), ")".repeat(63));
    assert!(parse(&nots).is_ok());
    let in_value_path = format!("emails[{}type pr{}]", "(".repeat(63), ")".repeat(63));
    assert!(parse(&in_value_path).is_ok());
    // Long flat chains are not nesting and are fine up to the length limit.
    let chain = vec!["a pr"; 900].join(" and ");
    assert!(chain.len() <= super::parse::MAX_FILTER_LEN);
    let filter = parse(&chain).unwrap();
    assert!(!filter.matches(&bjensen(), user_resource()));
    assert_eq!(parse(&filter.to_string()).unwrap(), filter);
}

// ---- Errors -----------------------------------------------------------------

#[test]
fn invalid_filters_are_invalid_filter_errors() {
    let too_deep = format!("{}a pr{}", "(".repeat(65), ")".repeat(65));
    let too_deep_not = format!("{}a pr{}", "not (".repeat(65), ")".repeat(65));
    let too_long = format!("userName eq \"{}\"", "x".repeat(9000));
    let rows: Vec<(&str, &str)> = vec![
        // Structure.
        ("", "the filter is empty"),
        ("   ", "the filter is empty"),
        ("\t\n", "the filter is empty"),
        ("userName", "expected an operator"),
        ("userName ", "expected an operator"),
        ("userName eq", "expected a value"),
        ("userName eq ", "expected a value"),
        (r#"userName xx "a""#, "unknown operator 'xx'"),
        (r#"userName eqq "a""#, "unknown operator 'eqq'"),
        (r#"userName equals "a""#, "unknown operator 'equals'"),
        (r#"userName = "a""#, "expected an operator"),
        (r#"userName == "a""#, "expected an operator"),
        (r#"userName != "a""#, "expected an operator"),
        (r#"userName ~ "a""#, "expected an operator"),
        (
            r#"(userName eq "a""#,
            "expected ')' to close '(' at character 1",
        ),
        (r#"((userName eq "a")"#, "expected ')'"),
        (
            r#"userName eq "a")"#,
            "expected 'and', 'or' or the end of the filter, found ')'",
        ),
        (r#"(userName eq "a"))"#, "found ')'"),
        (r#"userName eq "unterminated"#, "unterminated string"),
        (r#"userName eq ""#, "unterminated string"),
        (r#"userName eq "abc\"#, "unterminated string"),
        (r#"userName eq "abc\""#, "unterminated string"),
        (
            r#"emails[type eq "work""#,
            "expected ']' to close the value filter",
        ),
        (r#"emails[type eq "work" and"#, "expected an attribute path"),
        (r#"emails[type eq "a"[x eq "b"]]"#, "expected ']'"),
        (
            r#"emails[type[value eq "x"]]"#,
            "value filters cannot be nested",
        ),
        (
            r#"emails[x pr and ims[type pr]]"#,
            "value filters cannot be nested",
        ),
        (r#"emails[]"#, "the value filter is empty"),
        (r#"emails[ ]"#, "the value filter is empty"),
        (r#"emails]"#, "expected an operator"),
        (r#"emails[type eq "work"]]"#, "found ']'"),
        (
            r#"emails[type eq "work"]."#,
            "expected a sub-attribute name after '].'",
        ),
        (r#"emails[type eq "work"].value"#, "expected an operator"),
        (r#"emails[type eq "work"].value eq"#, "expected a value"),
        (
            r#"emails[type eq "work"].value.x eq "a""#,
            "only one level of sub-attribute",
        ),
        (
            r#"emails[type eq "work"].1x eq "a""#,
            "expected a sub-attribute name",
        ),
        (r#"emails[type eq "work"] .value eq "x""#, "found '.value'"),
        (
            r#"emails.value[type eq "work"]"#,
            "must follow an attribute, not the sub-attribute",
        ),
        (r#"emails[type eq "work"][value eq "x"]"#, "found '['"),
        (r#"emails[type eq "work"] eq "x""#, "found 'eq'"),
        (r#"not userName eq "a""#, "expected '(' after 'not'"),
        (r#"not"#, "expected '(' after 'not'"),
        (r#"not ("#, "expected an attribute path"),
        (
            r#"not ()"#,
            "expected an attribute path, '(' or 'not', found ')'",
        ),
        (r#"not (a pr"#, "expected ')'"),
        (r#"not a pr"#, "expected '(' after 'not'"),
        (r#"and"#, "found 'and'"),
        (r#"or"#, "found 'or'"),
        (r#"AND"#, "found 'AND'"),
        (r#"and a pr"#, "found 'and'"),
        (r#"a pr and and b pr"#, "found 'and'"),
        (r#"a pr or or b pr"#, "found 'or'"),
        (r#"a pr and or b pr"#, "found 'or'"),
        (
            r#"()"#,
            "expected an attribute path, '(' or 'not', found ')'",
        ),
        (r#"( )"#, "found ')'"),
        (r#"[]"#, "found '['"),
        (r#"[a pr]"#, "found '['"),
        (
            r#"userName eq "a" and"#,
            "expected an attribute path, '(' or 'not', found the end",
        ),
        (r#"userName eq "a" or"#, "found the end of the input"),
        (r#"userName eq "a" and not"#, "expected '(' after 'not'"),
        (r#"userName eq "a" userName eq "b""#, "found 'userName'"),
        (r#"userName eq "a" garbage"#, "found 'garbage'"),
        (r#"userName eq "a" "b""#, "found a string"),
        (r#"userName eq "a" 1"#, "found '1'"),
        (r#"userName eq "a";"#, "found ';'"),
        (r#"userName eq "a" && b pr"#, "found '&'"),
        (r#"userName eq "a" || b pr"#, "found '|'"),
        (r#"!(a pr)"#, "found '!'"),
        (r#"title pr pr"#, "found 'pr'"),
        (r#"title pr "x""#, "found a string"),
        (r#""userName" eq "x""#, "found a string"),
        (r#"1 eq 1"#, "found '1'"),
        // Values.
        (r#"userName eq bjensen"#, "strings must be in double quotes"),
        (r#"userName eq 'bjensen'"#, "expected a value"),
        (r#"userName eq “bjensen”"#, "expected a value"),
        (r#"userName eq (x)"#, "expected a value"),
        (r#"userName eq [x]"#, "expected a value"),
        (r#"userName eq {}"#, "expected a value"),
        (r#"userName eq NaN"#, "strings must be in double quotes"),
        (
            r#"userName eq Infinity"#,
            "strings must be in double quotes",
        ),
        (r#"userName eq yes"#, "strings must be in double quotes"),
        (r#"userName eq "a\qb""#, "invalid escape '\\q'"),
        (r#"userName eq "a\x41""#, "invalid escape '\\x'"),
        (r#"userName eq "a\'b""#, "invalid escape"),
        (r#"userName eq "\u12""#, "four hex digits"),
        (r#"userName eq "\u""#, "four hex digits"),
        (r#"userName eq "\uZZZZ""#, "four hex digits"),
        (r#"userName eq "\u00G0""#, "four hex digits"),
        (r#"userName eq "\uD800""#, "high surrogate"),
        (r#"userName eq "\uD800x""#, "high surrogate"),
        (r#"userName eq "\uD800\u0041""#, "high surrogate"),
        (r#"userName eq "\uD800\uD800""#, "high surrogate"),
        (r#"userName eq "\uDC00""#, "lone low surrogate"),
        (r#"userName eq "\uDFFF\uD800""#, "lone low surrogate"),
        ("userName eq \"a\tb\"", "control character U+0009"),
        ("userName eq \"a\nb\"", "control character U+000A"),
        ("userName eq \"\u{0}\"", "control character U+0000"),
        (r#"x eq 01"#, "'01' is not a number"),
        (r#"x eq 00"#, "is not a number"),
        (r#"x eq -01"#, "is not a number"),
        (r#"x eq 1."#, "'1.' is not a number"),
        (r#"x eq .5"#, "expected a value"),
        (r#"x eq -"#, "'-' is not a number"),
        (r#"x eq --1"#, "is not a number"),
        (r#"x eq -a"#, "is not a number"),
        (r#"x eq +1"#, "expected a value"),
        (r#"x eq 1e"#, "'1e' is not a number"),
        (r#"x eq 1e+"#, "is not a number"),
        (r#"x eq 1e-"#, "is not a number"),
        (r#"x eq 1.2.3"#, "is not a number"),
        (r#"x eq 1.e5"#, "is not a number"),
        (r#"x eq 12abc"#, "'12abc' is not a number"),
        (r#"x eq 0x10"#, "is not a number"),
        (r#"x eq 1_000"#, "expected 'and', 'or'"),
        (r#"x eq 1e400"#, "out of range"),
        (r#"x eq -1e400"#, "out of range"),
        // Attribute paths.
        (r#"1abc eq "x""#, "found '1abc'"),
        (r#"_abc eq "x""#, "found '_abc'"),
        (r#"-x pr"#, "found '-x'"),
        (r#".name pr"#, "found '.name'"),
        (r#"a.b.c eq "x""#, "more than one '.'"),
        (r#"name. eq "x""#, "'' is not an attribute name"),
        (r#"a..b pr"#, "more than one '.'"),
        (r#"name.1x pr"#, "'1x' is not an attribute name"),
        (r#"name._x pr"#, "is not an attribute name"),
        (r#"a$b pr"#, "'a$b' is not an attribute name"),
        (r#"$refx pr"#, "is not an attribute name"),
        (r#"$ pr"#, "is not an attribute name"),
        (r#"foo:bar eq "x""#, "must be a URN"),
        (r#"urn:userName eq "x""#, "must be a URN"),
        (r#"urn::x:userName pr"#, "must be a URN"),
        (r#"http:x pr"#, "must be a URN"),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User: eq "x""#,
            "is not an attribute name",
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:1a eq "x""#,
            "is not an attribute name",
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0 pr"#,
            "is not an attribute name",
        ),
        (r#"üser eq "x""#, "found 'ü'"),
        (r#"userName eq "x" é"#, "found 'é'"),
        (r#"user\Name pr"#, "expected an operator"),
        ("userName\u{0}eq \"x\"", "expected an operator"),
        // Limits.
        (too_deep.as_str(), "nests more than 64 levels"),
        (too_deep_not.as_str(), "nests more than 64 levels"),
        (too_long.as_str(), "at most 8192 are accepted"),
    ];
    check_invalid(&rows);
}

#[test]
fn error_details_name_the_position() {
    for (input, detail) in [
        (
            r#"userName xx "a""#,
            "invalid filter at character 10: unknown operator 'xx'; expected eq, ne, co, sw, ew, \
             gt, ge, lt, le or pr",
        ),
        (
            r#"userName eq"#,
            "invalid filter at character 12: expected a value (a string in double quotes, a \
             number, true, false or null) after 'eq', found the end of the input",
        ),
        (
            r#"(userName eq "a""#,
            "invalid filter at character 17: expected ')' to close '(' at character 1, found the \
             end of the input",
        ),
        (
            r#"userName eq "abc"#,
            "invalid filter at character 13: unterminated string: expected a closing '\"'",
        ),
        (
            r#"emails[type eq "work""#,
            "invalid filter at character 22: expected ']' to close the value filter '[' at \
             character 7, found the end of the input",
        ),
        (
            r#"not userName eq "a""#,
            "invalid filter at character 5: expected '(' after 'not' (write `not (expression)`), \
             found 'userName'",
        ),
        (
            r#"é eq "x" trailing"#,
            "invalid filter at character 1: expected an attribute path, '(' or 'not', found 'é'",
        ),
        (
            r#"x eq "ü" trailing"#,
            "invalid filter at character 10: expected 'and', 'or' or the end of the filter, \
             found 'trailing'",
        ),
        (
            r#"x eq "a\qb""#,
            "invalid filter at character 8: invalid escape '\\q' in string; valid escapes are \
             \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX",
        ),
        (
            "",
            "invalid filter at character 1: the filter is empty; expected an attribute path, '(' \
             or 'not'",
        ),
    ] {
        let err = parse(input).unwrap_err();
        assert_eq!(err.detail, detail, "{input:?}");
        assert_eq!(err.status, 400);
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        assert_eq!(err.to_json()["scimType"], "invalidFilter");
    }
    let long = "a".repeat(8193);
    assert_eq!(
        parse(&long).unwrap_err().detail,
        "invalid filter: it is 8193 bytes long; at most 8192 are accepted"
    );
}

// ---- Printing ---------------------------------------------------------------

#[test]
fn display_prints_canonical_syntax() {
    check_display(&[
        (r#"userName Eq "john""#, r#"userName eq "john""#),
        (r#"  userName   eq   "john"  "#, r#"userName eq "john""#),
        (r#"title PR"#, r#"title pr"#),
        (r#"a pr AND (b pr OR c pr)"#, r#"a pr and (b pr or c pr)"#),
        (r#"(a pr and b pr) and c pr"#, r#"a pr and b pr and c pr"#),
        (r#"a pr and (b pr and c pr)"#, r#"a pr and (b pr and c pr)"#),
        (r#"(a pr or b pr) or c pr"#, r#"a pr or b pr or c pr"#),
        (r#"a pr or (b pr or c pr)"#, r#"a pr or (b pr or c pr)"#),
        (r#"a pr or (b pr and c pr)"#, r#"a pr or b pr and c pr"#),
        (r#"(a pr or b pr) and c pr"#, r#"(a pr or b pr) and c pr"#),
        (r#"(a pr and b pr) or c pr"#, r#"a pr and b pr or c pr"#),
        (r#"((a pr))"#, r#"a pr"#),
        (r#"not(a pr)"#, r#"not (a pr)"#),
        (r#"NOT ( a pr or b pr )"#, r#"not (a pr or b pr)"#),
        (
            r#"not (a pr) and not (b pr)"#,
            r#"not (a pr) and not (b pr)"#,
        ),
        (r#"emails[ type eq "work" ]"#, r#"emails[type eq "work"]"#),
        (
            r#"emails[type eq "work"].value eq "x""#,
            r#"emails[type eq "work" and value eq "x"]"#,
        ),
        (
            r#"emails[type eq "work" or type eq "home"].value eq "x""#,
            r#"emails[(type eq "work" or type eq "home") and value eq "x"]"#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        ),
        (r#"x eq "\u00e9\n\"\\""#, r#"x eq "é\n\"\\""#),
        (r#"x eq "\u0001\b\f""#, r#"x eq "\u0001\u0008\u000c""#),
        (r#"x eq "\/""#, r#"x eq "/""#),
        (r#"x eq "\t\r""#, r#"x eq "\t\r""#),
        (r#"x eq TRUE"#, r#"x eq true"#),
        (r#"x eq False"#, r#"x eq false"#),
        (r#"x eq Null"#, r#"x eq null"#),
        (r#"x eq 1E2"#, r#"x eq 100.0"#),
        (r#"x eq -0.50"#, r#"x eq -0.5"#),
    ]);
}

// ---- Evaluation -------------------------------------------------------------

#[test]
fn rfc_examples_against_barbara_jensen() {
    check_matches(
        user_resource(),
        &bjensen(),
        &[
            (r#"userName eq "bjensen@example.com""#, true),
            (r#"userName eq "bjensen""#, false),
            (r#"name.familyName co "O'Malley""#, false),
            (r#"name.familyName co "ens""#, true),
            (r#"userName sw "J""#, false),
            (r#"userName sw "B""#, true),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
                true,
            ),
            (r#"title pr"#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
            (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
            (r#"title pr and userType eq "Employee""#, true),
            (r#"title pr or userType eq "Intern""#, true),
            (r#"userType eq "Intern""#, false),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                true,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                true,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                false,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                true,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                true,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                true,
            ),
            (r#"ims[type eq "xmpp" and value co "@foo.com"]"#, false),
            (r#"userName Eq "BJENSEN@example.com""#, true),
            (r#"Username eq "bjensen@example.com""#, true),
        ],
    );
}

#[test]
fn evaluation_semantics_on_barbara_jensen() {
    let e = ENTERPRISE;
    let manager_value = format!(r#"{e}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#);
    let manager_complex = format!(r#"{e}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#);
    let manager_name = format!(r#"{e}:manager.displayName eq "john smith""#);
    let employee_number = format!(r#"{e}:employeeNumber eq "701984""#);
    let department = format!(r#"{e}:department co "tour""#);
    let manager_pr = format!(r#"{e}:manager pr"#);
    let cost_center_gt = format!(r#"{e}:costCenter gt "4000""#);
    let cost_center_gt_5 = format!(r#"{e}:costCenter gt "5""#);
    let lower_urn = format!(r#"{}:employeeNumber eq "701984""#, e.to_lowercase());
    let upper_urn = format!(r#"{}:EMPLOYEENUMBER eq "701984""#, e.to_uppercase());
    let ext_user_name = format!(r#"{e}:userName eq "bjensen@example.com""#);
    let ext_division_ne = format!(r#"{e}:division ne "Theme Park""#);
    check_matches(
        user_resource(),
        &bjensen(),
        &[
            // caseExact: userName, displayName, name parts are not; id,
            // externalId, meta.resourceType, meta.version, photos.value and
            // x509Certificates.value are.
            (r#"userName eq "BJENSEN@EXAMPLE.COM""#, true),
            (r#"USERNAME eq "bjensen@example.com""#, true),
            (r#"displayName eq "babs jensen""#, true),
            (r#"name.givenName eq "BARBARA""#, true),
            (r#"name.GIVENNAME eq "Barbara""#, true),
            (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
            (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
            (r#"externalId eq "701984""#, true),
            (r#"externalId eq "701984 ""#, false),
            (r#"externalId sw "7019""#, true),
            (r#"meta.resourceType eq "User""#, true),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.version eq "W/\"3694e05e9dff591\"""#, true),
            (r#"meta.version eq "w/\"3694E05E9DFF591\"""#, false),
            (r#"meta.location sw "https://example.com/v2/Users/""#, true),
            (r#"profileUrl eq "HTTPS://LOGIN.EXAMPLE.COM/BJENSEN""#, true),
            (
                r#"photos.value eq "https://photos.example.com/profilephoto/72930000000Ccne/F""#,
                true,
            ),
            (
                r#"photos.value eq "https://photos.example.com/profilephoto/72930000000ccne/f""#,
                false,
            ),
            (
                r#"x509Certificates.value eq "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw""#,
                true,
            ),
            (
                r#"x509Certificates.value eq "miidqzccaqygawibagiceaawdqyjkozihvcnaqefbqaw""#,
                false,
            ),
            (r#"x509Certificates.value gt "A""#, false),
            (r#"x509Certificates.value sw "MIID""#, true),
            // dateTime attributes compare as instants.
            (r#"meta.lastModified eq "2011-05-13T04:42:34Z""#, true),
            (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
            (r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#, true),
            (r#"meta.lastModified ne "2011-05-13T04:42:34.000Z""#, false),
            (r#"meta.lastModified ne "2011-05-13T04:42:35Z""#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
            (r#"meta.lastModified lt "2011-05-13T04:42:35Z""#, true),
            (r#"meta.lastModified gt "2011-05-13T05:00:00+01:00""#, true),
            (r#"meta.lastModified lt "2011-05-13T05:00:00+01:00""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34.001Z""#, false),
            (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
            (
                r#"meta.created gt "2010-01-23T04:56:21Z" and meta.created lt "2010-01-23T04:56:23Z""#,
                true,
            ),
            (r#"meta.created sw "2010-""#, true),
            (r#"meta.created co "T04:56""#, true),
            (r#"meta.created pr"#, true),
            (
                r#"meta.lastModified gt "2011-05-13T04:42:34Z" or meta.created pr"#,
                true,
            ),
            // Booleans.
            (r#"active eq true"#, true),
            (r#"active eq false"#, false),
            (r#"active ne false"#, true),
            (r#"active ne true"#, false),
            (r#"active eq "true""#, true),
            (r#"active eq "TRUE""#, true),
            (r#"active eq "false""#, false),
            (r#"active gt false"#, false),
            (r#"active le true"#, false),
            (r#"active co "t""#, false),
            (r#"active eq 1"#, false),
            (r#"active pr"#, true),
            (r#"emails.primary eq true"#, true),
            (r#"emails[primary eq true].value ew "@example.com""#, true),
            (r#"emails[primary eq true and type eq "home"]"#, false),
            // `ne` is `not eq`: true when missing, false if any value equals.
            (r#"userType ne "Intern""#, true),
            (r#"userType ne "employee""#, false),
            (r#"password ne "x""#, true),
            (r#"nickName ne "Babs""#, false),
            (r#"nickName ne "babs""#, false),
            (r#"emails.type ne "work""#, false),
            (r#"emails.type ne "other""#, true),
            (r#"emails ne "babs@jensen.org""#, false),
            (r#"emails ne "nobody@example.com""#, true),
            // Unknown attributes never match, whatever the operator.
            (r#"nosuch eq "x""#, false),
            (r#"nosuch ne "x""#, false),
            (r#"nosuch pr"#, false),
            (r#"nosuch eq null"#, false),
            (r#"not (nosuch pr)"#, true),
            (r#"name.nosuch pr"#, false),
            (r#"name.nosuch ne "x""#, false),
            (r#"userName.sub pr"#, false),
            (r#"employeeNumber eq "701984""#, false),
            (
                r#"urn:example:unknown:1.0:User:userName eq "bjensen@example.com""#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Babs Jensen""#,
                false,
            ),
            (r#"emails[nosuch pr]"#, false),
            (r#"emails[type.sub eq "work"]"#, false),
            (
                r#"emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "work"]"#,
                false,
            ),
            (r#"nosuch[type eq "work"]"#, false),
            (r#"userName[value eq "bjensen@example.com"]"#, false),
            // The enterprise extension lives under its URN.
            (manager_value.as_str(), true),
            (manager_complex.as_str(), true),
            (manager_name.as_str(), true),
            (employee_number.as_str(), true),
            (department.as_str(), true),
            (manager_pr.as_str(), true),
            (cost_center_gt.as_str(), true),
            (cost_center_gt_5.as_str(), false),
            (lower_urn.as_str(), true),
            (upper_urn.as_str(), true),
            (ext_user_name.as_str(), false),
            (ext_division_ne.as_str(), false),
            // null means "not present".
            (r#"title eq null"#, false),
            (r#"title ne null"#, true),
            (r#"password eq null"#, true),
            (r#"password ne null"#, false),
            (r#"emails eq null"#, false),
            (r#"title gt null"#, false),
            (r#"title co null"#, false),
            // Multi-valued attributes match if any value does; value paths
            // need one element to satisfy the whole inner filter.
            (r#"emails co "jensen.org""#, true),
            (r#"emails sw "babs""#, true),
            (r#"emails ew ".COM""#, true),
            (r#"emails eq "BABS@JENSEN.ORG""#, true),
            (r#"emails.value eq "babs@jensen.org""#, true),
            (
                r#"emails.type eq "home" and emails.value co "@example.com""#,
                true,
            ),
            (
                r#"emails[type eq "home" and value co "@example.com"]"#,
                false,
            ),
            (
                r#"emails[type eq "work"].value eq "bjensen@example.com""#,
                true,
            ),
            (
                r#"emails[type eq "home"].value eq "bjensen@example.com""#,
                false,
            ),
            (
                r#"emails[type eq "WORK"].value eq "BJENSEN@example.com""#,
                true,
            ),
            (r#"emails[type eq "work"].value pr"#, true),
            (r#"emails[type eq "other"].value pr"#, false),
            (r#"emails[type eq "work"] and emails[type eq "home"]"#, true),
            (
                r#"emails[value ew "example.com"] and not (emails[type eq "other"])"#,
                true,
            ),
            (r#"emails[not (type eq "work")]"#, true),
            (r#"emails[not (type pr)]"#, false),
            (r#"phoneNumbers.value sw "555-555-4""#, true),
            (
                r#"phoneNumbers[type eq "mobile"].value eq "555-555-4444""#,
                true,
            ),
            (
                r#"phoneNumbers[type eq "work"].value eq "555-555-4444""#,
                false,
            ),
            (r#"addresses[type eq "work"].locality eq "Hollywood""#, true),
            (r#"addresses.postalCode eq "91608""#, true),
            (
                r#"addresses[postalCode eq "91608" and region eq "ca"]"#,
                true,
            ),
            (r#"addresses[type eq "home" and primary eq true]"#, false),
            (r#"addresses[type eq "work" and primary eq true]"#, true),
            (r#"addresses.formatted co "Hollywood, CA""#, true),
            (r#"groups.display eq "Tour Guides""#, true),
            (
                r#"groups[value eq "e9e30dba-f08f-4109-8486-d5c6a331660a"]"#,
                true,
            ),
            (r#"groups.$ref ew "d5c6a331660a""#, true),
            (r#"ims.type eq "aim""#, true),
            (r#"ims eq "someaimhandle""#, true),
            // Value filters on a single-valued complex attribute.
            (r#"name[givenName eq "Barbara"]"#, true),
            (
                r#"name[givenName eq "Barbara" and familyName eq "Smith"]"#,
                false,
            ),
            // Complex attributes: `pr` looks inside, comparisons without
            // `value` never match.
            (r#"name pr"#, true),
            (r#"name.middleName pr"#, true),
            (r#"name eq "Barbara""#, false),
            (r#"meta gt "a""#, false),
            (r#"emails pr"#, true),
            (r#"addresses pr"#, true),
            // Strings.
            (r#"userName co """#, true),
            (r#"userName sw """#, true),
            (r#"userName gt "a""#, true),
            (r#"userName gt "c""#, false),
            (r#"userName lt "C""#, true),
            (r#"userName ge "BJENSEN@EXAMPLE.COM""#, true),
            (r#"userName le "bjensen@example.com""#, true),
            (r#"userName eq 1"#, false),
            (r#"userName eq true"#, false),
            (r#"title eq "tour guide""#, true),
            (r#"title co "OUR G""#, true),
            (r#"timezone eq "America/Los_Angeles""#, true),
            (r#"locale sw "en-""#, true),
            // Logic.
            (r#"not (userName eq "bjensen@example.com")"#, false),
            (r#"not (not (userName pr))"#, true),
            (r#"userName pr and nickName pr and title pr"#, true),
            (r#"userName pr and password pr"#, false),
            (r#"password pr or userName pr"#, true),
            (
                r#"password pr or userType eq "Intern" or title pr and active eq false"#,
                false,
            ),
            (
                r#"(password pr or userType eq "Employee") and active eq true"#,
                true,
            ),
        ],
    );
}

#[test]
fn evaluation_on_sparse_and_oddly_spelled_documents() {
    let ext = format!(r#"{ENTERPRISE}:employeeNumber eq "7""#);
    check_matches(
        user_resource(),
        &sparse_user(),
        &[
            (r#"userName eq "sparse""#, true),
            (r#"userName pr"#, true),
            (r#"title pr"#, false),
            (r#"title eq null"#, true),
            (r#"title eq """#, true),
            (r#"nickName pr"#, false),
            (r#"nickName eq null"#, true),
            (r#"nickName ne null"#, false),
            (r#"emails pr"#, false),
            (r#"emails eq null"#, true),
            (r#"phoneNumbers pr"#, false),
            (r#"phoneNumbers.value pr"#, false),
            (r#"addresses pr"#, false),
            (r#"name pr"#, false),
            (r#"name.givenName pr"#, false),
            (r#"name.familyName pr"#, false),
            (r#"ims[type eq "xmpp" and value co "@foo.com"]"#, true),
            (r#"ims.value eq "X@FOO.COM""#, true),
            (ext.as_str(), true),
            (r#"active eq false"#, false),
            (r#"active ne true"#, true),
            (r#"active pr"#, false),
            (r#"meta.lastModified gt "2000-01-01T00:00:00Z""#, false),
            (r#"meta.lastModified ne "2000-01-01T00:00:00Z""#, true),
            (r#"emails.type ne "work""#, true),
            (r#"emails[type eq "work"]"#, false),
            (r#"not (emails[type eq "work"])"#, true),
            (r#"displayName ne "x" and userName pr"#, true),
            (r#"id eq "abc""#, true),
            (r#"id eq "ABC""#, false),
        ],
    );
    // Documents that are not objects, or have the wrong shapes, never match
    // and never panic.
    let filter =
        parse(r#"userName eq "x" or emails[type eq "work"] or name.givenName pr"#).unwrap();
    for doc in [
        json!(null),
        json!("userName"),
        json!([{"userName": "x"}]),
        json!({"userName": ["y", 1, null]}),
        json!({"emails": "x", "name": "y"}),
        json!({"emails": [1, "a", null, [1]], "name": [1]}),
    ] {
        assert!(!filter.matches(&doc, user_resource()), "{doc}");
    }
    assert!(parse(r#"userName eq "x""#)
        .unwrap()
        .matches(&json!({"userName": ["y", "X"]}), user_resource()));
}

#[test]
fn evaluation_on_groups() {
    check_matches(
        group_resource(),
        &tour_guides(),
        &[
            (r#"displayName eq "Tour Guides""#, true),
            (r#"displayName eq "tour guides""#, true),
            (r#"displayName sw "Tour""#, true),
            (r#"externalId eq "tg-1""#, true),
            (r#"externalId eq "TG-1""#, false),
            (
                r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
                true,
            ),
            (
                r#"members[value eq "2819C223-7F76-453A-919D-413861904646"]"#,
                false,
            ),
            (
                r#"members.value eq "902c246b-6245-4190-8e05-00816be7344a""#,
                true,
            ),
            (r#"members eq "902c246b-6245-4190-8e05-00816be7344a""#, true),
            (r#"members.display co "mandy""#, true),
            (r#"members[$ref pr]"#, true),
            (r#"members.$ref sw "https://""#, true),
            (r#"members[type eq "Group"]"#, false),
            (r#"members[type eq "User" and display sw "Mandy"]"#, true),
            (
                r#"members[type eq "User" and display sw "Mandy"].$ref pr"#,
                false,
            ),
            (
                r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "902c246b-6245-4190-8e05-00816be7344a"]"#,
                true,
            ),
            (
                r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "00000000-0000-0000-0000-000000000000"]"#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Tour Guides""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:displayName eq "Tour Guides""#,
                false,
            ),
            (r#"userName eq "Tour Guides""#, false),
            (r#"meta.resourceType eq "Group""#, true),
            (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:core:2.0:Group""#,
                true,
            ),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:core:2.0:User""#,
                false,
            ),
        ],
    );
}

#[test]
fn evaluation_of_numbers_booleans_binary_and_dates() {
    check_matches(
        &widget_schema(),
        &widget(),
        &[
            (r#"count eq 42"#, true),
            (r#"count eq 42.0"#, true),
            (r#"count eq 4.2e1"#, true),
            (r#"count gt 41"#, true),
            (r#"count gt 42"#, false),
            (r#"count ge 42"#, true),
            (r#"count lt 100"#, true),
            (r#"count le 41.9"#, false),
            (r#"count ne 42"#, false),
            (r#"count ne 43"#, true),
            (r#"count eq -42"#, false),
            (r#"count gt -1e3"#, true),
            (r#"count eq "42""#, false),
            (r#"count co 4"#, false),
            (r#"count sw 4"#, false),
            (r#"count pr"#, true),
            (r#"count eq null"#, false),
            (r#"weight eq 2.5"#, true),
            (r#"weight eq 25e-1"#, true),
            (r#"weight gt 2"#, true),
            (r#"weight lt 2.50001"#, true),
            (r#"weight lt 2.5"#, false),
            (r#"big eq 18446744073709551615"#, true),
            (r#"big gt 9223372036854775807"#, true),
            (r#"big gt -1"#, true),
            (r#"big lt 1e20"#, true),
            (r#"enabled eq false"#, true),
            (r#"enabled ne true"#, true),
            (r#"enabled eq true"#, false),
            (r#"enabled lt true"#, false),
            (r#"enabled gt false"#, false),
            (r#"enabled pr"#, true),
            (r#"code eq "AbC""#, true),
            (r#"code eq "abc""#, false),
            (r#"code ne "abc""#, true),
            (r#"code sw "Ab""#, true),
            (r#"code co "b""#, true),
            (r#"code co "B""#, false),
            (r#"code gt "AB""#, true),
            (r#"code lt "ABC""#, false),
            (r#"label eq "WIDGET""#, true),
            (r#"label lt "x""#, true),
            (r#"blob eq "AAEC""#, true),
            (r#"blob eq "aaec""#, false),
            (r#"blob gt "A""#, false),
            (r#"blob ge "AAEC""#, false),
            (r#"seen eq "2024-02-29T12:00:00.500Z""#, true),
            (r#"seen gt "2024-02-29T11:59:59Z""#, true),
            (r#"seen gt "2024-02-29T12:00:00Z""#, true),
            (r#"seen lt "2024-02-29T13:00:00+01:00""#, false),
            (r#"seen gt "2024-02-29T13:00:00+01:00""#, true),
            (r#"seen lt "2024-03-01T00:00:00-12:00""#, true),
            (r#"seen sw "2024-02""#, true),
            (r#"seen eq "not a date""#, false),
            (r#"seen lt "not a date""#, true),
            (r#"tags eq "blue""#, true),
            (r#"tags eq "green""#, false),
            (r#"tags ne "red""#, false),
            (r#"tags ne "green""#, true),
            (r#"tags co "LU""#, true),
            (r#"sizes gt 9"#, true),
            (r#"sizes lt 1"#, false),
            (r#"sizes eq 5"#, true),
            (r#"sizes ne 5"#, false),
            (r#"sizes ne 7"#, true),
            (r#"sizes ge 10 and sizes le 1"#, true),
            (r#"parts[name eq "bolt" and qty ge 4]"#, true),
            (r#"parts[qty gt 4]"#, false),
            (r#"parts.qty eq 4"#, true),
            (r#"parts.name eq "BOLT""#, true),
            (r#"parts eq "bolt""#, false),
            (r#"parts pr"#, true),
            (r#"parts ne "bolt""#, false),
        ],
    );
}

// ---- Validation -------------------------------------------------------------

#[test]
fn validate_accepts_the_rfc_and_identity_provider_filters() {
    let mut rows: Vec<(&str, Option<&str>)> = RFC_FILTERS.iter().map(|f| (*f, None)).collect();
    rows.extend([
        (r#"externalId eq "x""#, None),
        (r#"id eq "x""#, None),
        (r#"displayName eq "x""#, None),
        (r#"emails[type eq "work"].value eq "x""#, None),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
            None,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref pr"#,
            None,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "x""#,
            None,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "x""#,
            None,
        ),
        (
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME eq "x""#,
            None,
        ),
        (r#"active eq true"#, None),
        (r#"active ne false"#, None),
        (r#"active eq "True""#, None),
        (r#"meta.lastModified gt "2011-05-13T04:42:34+02:00""#, None),
        (r#"meta.created sw "2011""#, None),
        (r#"meta.created co "not a date but a substring""#, None),
        (r#"emails co "x""#, None),
        (r#"emails gt "x""#, None),
        (r#"name[givenName eq "x"]"#, None),
        (r#"title eq null"#, None),
        (r#"name eq null"#, None),
        (r#"name ne null"#, None),
        (r#"schemas pr"#, None),
        (r#"x509Certificates.value eq "x""#, None),
        (r#"groups.$ref pr"#, None),
        (r#"groups[$ref pr]"#, None),
        (r#"userName gt "a""#, None),
        (r#"not (userName eq "a") or title pr"#, None),
        (r#"emails[not (type eq "work") and primary eq true]"#, None),
    ]);
    check_validate(user_resource(), &rows);
    check_validate(
        group_resource(),
        &[
            (r#"displayName eq "Group1DisplayName""#, None),
            (r#"members[value eq "x"]"#, None),
            (r#"members[$ref pr]"#, None),
            (r#"id eq "x" and members[value eq "y"]"#, None),
            (r#"externalId eq "x""#, None),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, None),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#,
                None,
            ),
        ],
    );
}

#[test]
fn validate_rejects_unknown_attributes_and_meaningless_comparisons() {
    check_validate(
        user_resource(),
        &[
            (
                r#"nosuch eq "x""#,
                Some(r#"unknown attribute "nosuch" for User resources"#),
            ),
            (r#"nosuch pr"#, Some(r#"unknown attribute "nosuch""#)),
            (r#"not (nosuch pr)"#, Some("unknown attribute")),
            (r#"userName pr or nosuch pr"#, Some("unknown attribute")),
            (
                r#"userName pr and (title pr or nosuch pr)"#,
                Some("unknown attribute"),
            ),
            (
                r#"name.nosuch eq "x""#,
                Some(r#"unknown attribute "name.nosuch""#),
            ),
            (r#"userName.sub eq "x""#, Some("has no sub-attributes")),
            (
                r#"employeeNumber eq "1""#,
                Some(r#"unknown attribute "employeeNumber""#),
            ),
            (
                r#"urn:example:x:1.0:User:userName eq "x""#,
                Some("unknown attribute"),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#,
                Some("unknown attribute"),
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "x""#,
                Some("unknown attribute"),
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.nosuch pr"#,
                Some("unknown attribute"),
            ),
            (
                r#"emails[nosuch eq "x"]"#,
                Some(r#"unknown attribute "emails.nosuch""#),
            ),
            (r#"emails[type.x eq "x"]"#, Some("unknown attribute")),
            (
                r#"emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]"#,
                Some("unknown attribute"),
            ),
            (
                r#"emails[type eq "work"].nosuch eq "x""#,
                Some(r#"unknown attribute "emails.nosuch""#),
            ),
            (r#"nosuch[type eq "work"]"#, Some("unknown attribute")),
            (
                r#"userName[value eq "x"]"#,
                Some("value filters apply to complex attributes"),
            ),
            (
                r#"active gt true"#,
                Some("\"gt\" is not defined for booleans"),
            ),
            (r#"active le false"#, Some("not defined for booleans")),
            (r#"active co "t""#, Some("not defined for booleans")),
            (r#"emails.primary sw "t""#, Some("not defined for booleans")),
            (
                r#"active eq 1"#,
                Some("compare it with true or false, not 1"),
            ),
            (r#"active eq "yes""#, Some("compare it with true or false")),
            (r#"x509Certificates.value gt "A""#, Some("binary attribute")),
            (
                r#"x509Certificates.value ge "A""#,
                Some("not defined for binary"),
            ),
            (
                r#"meta.lastModified gt "yesterday""#,
                Some("not an RFC 3339 timestamp"),
            ),
            (
                r#"meta.lastModified eq "2011-05-13""#,
                Some("not an RFC 3339 timestamp"),
            ),
            (r#"meta.lastModified eq 5"#, Some("dateTime attribute")),
            (r#"meta.lastModified eq true"#, Some("dateTime attribute")),
            (
                r#"userName eq 5"#,
                Some("compare it with a string in double quotes, not 5"),
            ),
            (r#"userName eq true"#, Some("not true")),
            (r#"profileUrl eq 1"#, Some("reference attribute")),
            (r#"name eq "x""#, Some(r#""name" is a complex attribute"#)),
            (r#"name co "x""#, Some("cannot be compared directly")),
            (r#"meta gt "x""#, Some("cannot be compared directly")),
            (r#"addresses eq "x""#, Some("cannot be compared directly")),
            (
                r#"userName gt null"#,
                Some("only eq and ne can compare with null"),
            ),
            (
                r#"userName co null"#,
                Some("only eq and ne can compare with null"),
            ),
            (r#"emails[value co null]"#, Some("only eq and ne")),
        ],
    );
    check_validate(
        group_resource(),
        &[
            (
                r#"userName eq "x""#,
                Some(r#"unknown attribute "userName" for Group resources"#),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                Some("unknown attribute"),
            ),
            (r#"members[nosuch pr]"#, Some("unknown attribute")),
            (r#"members.primary eq true"#, Some("unknown attribute")),
        ],
    );
    check_validate(
        &widget_schema(),
        &[
            (r#"count gt 1.5"#, None),
            (r#"count co 1"#, Some("\"co\" is only defined for strings")),
            (r#"count eq "1""#, Some("compare it with a number")),
            (r#"weight eq true"#, Some("decimal attribute")),
            (r#"weight lt 2"#, None),
            (r#"parts eq "x""#, Some("cannot be compared directly")),
            (r#"parts[qty eq "x"]"#, Some("compare it with a number")),
            (r#"parts[qty ge 1]"#, None),
            (r#"tags gt "a""#, None),
            (r#"blob eq "AAEC""#, None),
            (r#"blob co "A""#, None),
            (r#"seen eq "2024-02-29T12:00:00Z""#, None),
            (r#"seen ew "Z""#, None),
        ],
    );
}

// ---- Index push-down ----------------------------------------------------------

#[test]
fn equality_value_finds_indexable_terms() {
    let user = user_resource();
    let group = group_resource();
    let rows: &[(&ResourceSchema, &str, &str, Option<&str>)] = &[
        (
            user,
            r#"userName eq "bjensen""#,
            "userName",
            Some("bjensen"),
        ),
        (
            user,
            r#"USERNAME EQ "bjensen""#,
            "userName",
            Some("bjensen"),
        ),
        (
            user,
            r#"userName eq "bjensen""#,
            "username",
            Some("bjensen"),
        ),
        (
            user,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#,
            "userName",
            Some("bjensen"),
        ),
        (
            user,
            r#"userName eq "x" and active eq true"#,
            "userName",
            Some("x"),
        ),
        (
            user,
            r#"active eq true and userName eq "x""#,
            "userName",
            Some("x"),
        ),
        (
            user,
            r#"(title pr and userName eq "x") and active eq true"#,
            "userName",
            Some("x"),
        ),
        (
            user,
            r#"userName eq "a" and userName eq "b""#,
            "userName",
            Some("a"),
        ),
        (
            user,
            r#"userName eq "x" or userName eq "y""#,
            "userName",
            None,
        ),
        (
            user,
            r#"userName eq "x" and (title pr or nickName pr)"#,
            "userName",
            Some("x"),
        ),
        (
            user,
            r#"title pr or userName eq "x" and active eq true"#,
            "userName",
            None,
        ),
        (user, r#"not (userName eq "x")"#, "userName", None),
        (user, r#"userName ne "x""#, "userName", None),
        (user, r#"userName co "x""#, "userName", None),
        (user, r#"userName sw "x""#, "userName", None),
        (user, r#"userName eq 5"#, "userName", None),
        (user, r#"userName eq null"#, "userName", None),
        (user, r#"userName pr"#, "userName", None),
        (user, r#"userName eq "x""#, "externalId", None),
        (user, r#"externalId eq "abc""#, "externalId", Some("abc")),
        (user, r#"externalid eq "abc""#, "externalId", Some("abc")),
        (user, r#"id eq "2819c223""#, "id", Some("2819c223")),
        (
            user,
            r#"displayName eq "Babs""#,
            "displayName",
            Some("Babs"),
        ),
        (
            group,
            r#"displayName eq "Tour Guides""#,
            "displayName",
            Some("Tour Guides"),
        ),
        (
            group,
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Tour Guides""#,
            "displayName",
            Some("Tour Guides"),
        ),
        (
            group,
            r#"id eq "g1" and members[value eq "u1"]"#,
            "id",
            Some("g1"),
        ),
        (
            group,
            r#"id eq "g1" and members[value eq "u1"]"#,
            "members",
            None,
        ),
        (
            user,
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#,
            "displayName",
            None,
        ),
        (user, r#"name.familyName eq "x""#, "name", None),
        (user, r#"name.familyName eq "x""#, "familyName", None),
        (
            user,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            "employeeNumber",
            None,
        ),
        (user, r#"emails[value eq "x"]"#, "emails", None),
        (user, r#"emails eq "x""#, "emails", None),
        (user, r#"nosuch eq "x""#, "nosuch", None),
        (
            user,
            r#"emails[type eq "work"].value eq "x""#,
            "emails",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (schema, input, attr, expected) in rows {
        let filter = parse(input).unwrap();
        let actual = filter.equality_value(schema, attr);
        if actual != *expected {
            failures.push(format!(
                "  {input:?} / {attr}: expected {expected:?}, got {actual:?}"
            ));
        }
    }
    report("equality_value", failures);
}

// ---- PATCH paths --------------------------------------------------------------

#[test]
fn patch_paths_parse() {
    let rows = [
        ("userName", "userName"),
        ("active", "active"),
        ("displayName", "displayName"),
        ("externalId", "externalId"),
        ("members", "members"),
        ("x509Certificates", "x509Certificates"),
        ("name.familyName", "name.familyName"),
        ("name.givenName", "name.givenName"),
        ("NAME.GIVENNAME", "NAME.GIVENNAME"),
        (" name.givenName ", "name.givenName"),
        ("manager.$ref", "manager.$ref"),
        ("$ref", "$ref"),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            "urn:ietf:params:scim:schemas:core:2.0:User|userName",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|manager",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|manager.value",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User|employeeNumber",
        ),
        (
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"members [(eq value "2819c223-7f76-453a-919d-413861904646")]"#,
        ),
        (
            r#"members[value eq "x" or value eq "y"]"#,
            r#"members [(or (eq value "x") (eq value "y"))]"#,
        ),
        (
            r#"members[value eq "x"].display"#,
            r#"members [(eq value "x")] .display"#,
        ),
        (
            r#"emails[type eq "work"].value"#,
            r#"emails [(eq type "work")] .value"#,
        ),
        (
            r#"emails[type eq "work" and primary eq true]"#,
            r#"emails [(and (eq type "work") (eq primary true))]"#,
        ),
        (
            r#"emails[primary eq true].type"#,
            r#"emails [(eq primary true)] .type"#,
        ),
        (
            r#"phoneNumbers[type eq "mobile"].value"#,
            r#"phoneNumbers [(eq type "mobile")] .value"#,
        ),
        (
            r#"addresses[type eq "work"].streetAddress"#,
            r#"addresses [(eq type "work")] .streetAddress"#,
        ),
        (
            r#"addresses[type eq "work"].formatted"#,
            r#"addresses [(eq type "work")] .formatted"#,
        ),
        (
            r#"EMAILS[TYPE EQ "work"].VALUE"#,
            r#"EMAILS [(eq TYPE "work")] .VALUE"#,
        ),
        (
            r#"emails[ type eq "work" ].value"#,
            r#"emails [(eq type "work")] .value"#,
        ),
        (
            r#"emails[not (type eq "work")]"#,
            r#"emails [(not (eq type "work"))]"#,
        ),
        (r#"emails[value pr]"#, r#"emails [(pr value)]"#),
        (r#"members[$ref pr].value"#, r#"members [(pr $ref)] .value"#),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User|emails [(eq type "work")] .value"#,
        ),
        (
            r#"emails[type eq "work"].value"#,
            r#"emails [(eq type "work")] .value"#,
        ),
    ];
    let mut failures = Vec::new();
    for (input, expected) in rows {
        match parse_patch_path(input) {
            Ok(path) => {
                let actual = patch_s(&path);
                if actual != expected {
                    failures.push(format!(
                        "  {input:?}\n    expected {expected}\n    actual   {actual}"
                    ));
                }
                let printed = path.to_string();
                if parse_patch_path(&printed).ok().as_ref() != Some(&path) {
                    failures.push(format!(
                        "  {input:?}: printed {printed:?} does not parse back"
                    ));
                }
            }
            Err(e) => failures.push(format!("  {input:?}: {e}")),
        }
    }
    report("patch path", failures);

    // The shape other code relies on: `.sub` without a filter is in
    // `attr.sub`; after a filter it is in `PatchPath::sub`.
    let plain = parse_patch_path("name.givenName").unwrap();
    assert_eq!(plain.attr.sub.as_deref(), Some("givenName"));
    assert_eq!(plain.sub, None);
    assert_eq!(plain.value_filter, None);
    let filtered = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
    assert_eq!(filtered.attr.attr, "emails");
    assert_eq!(filtered.attr.sub, None);
    assert_eq!(filtered.sub.as_deref(), Some("value"));
    assert_eq!(
        filtered.value_filter,
        Some(Filter::Compare {
            path: AttrPath {
                urn: None,
                attr: "type".into(),
                sub: None
            },
            op: CompareOp::Eq,
            value: Literal::String("work".into()),
        })
    );
}

#[test]
fn invalid_patch_paths_are_invalid_path_errors() {
    let long = "a".repeat(9000);
    let rows: Vec<(&str, &str)> = vec![
        ("", "the path is empty"),
        ("   ", "the path is empty"),
        ("emails[", "expected an attribute path"),
        (r#"emails[type eq "work""#, "expected ']'"),
        ("emails[]", "the value filter is empty"),
        (
            r#"emails[type eq "work"]."#,
            "expected a sub-attribute name",
        ),
        (
            r#"emails[type eq "work"].value eq "x""#,
            "expected the end of the path, found 'eq'",
        ),
        (r#"emails[type eq "work"].value.x"#, "only one level"),
        (
            r#"emails.value[type eq "work"]"#,
            "must follow an attribute",
        ),
        ("a.b.c", "more than one '.'"),
        ("name.", "is not an attribute name"),
        ("1abc", "expected an attribute name, found '1abc'"),
        (
            r#"userName eq "x""#,
            "expected the end of the path, found 'eq'",
        ),
        ("userName pr", "expected the end of the path"),
        (
            r#"members[value eq "x"]extra"#,
            "expected the end of the path, found 'extra'",
        ),
        (
            r#"emails[type[value eq "x"]]"#,
            "value filters cannot be nested",
        ),
        (r#"emails[type eq "work"][x pr]"#, "found '['"),
        ("foo:bar", "must be a URN"),
        (r#""userName""#, "found a string"),
        (r#"emails[type xx "a"]"#, "unknown operator 'xx'"),
        (r#"emails[type eq "a]"#, "unterminated string"),
        ("(userName)", "found '('"),
        ("emails]", "expected the end of the path, found ']'"),
        ("user name", "found 'name'"),
        (long.as_str(), "at most 8192"),
    ];
    let mut failures = Vec::new();
    for (input, fragment) in rows {
        match parse_patch_path(input) {
            Ok(path) => failures.push(format!("  {input:?}: parsed to {}", patch_s(&path))),
            Err(e) => {
                if e.status != 400
                    || e.scim_type != Some(ScimType::InvalidPath)
                    || !e.detail.contains(fragment)
                    || !e.detail.starts_with("invalid path")
                {
                    failures.push(format!(
                        "  {input:?}: expected invalidPath containing {fragment:?}, got {e}"
                    ));
                }
            }
        }
    }
    report("invalid patch path", failures);
}

// ---- Properties -------------------------------------------------------------

fn assert_invalid_filter_or_ok(input: &str) -> Result<Option<Filter>, TestCaseError> {
    match parse(input) {
        Ok(filter) => {
            let printed = filter.to_string();
            prop_assert_eq!(
                parse(&printed).ok(),
                Some(filter.clone()),
                "printed {:?}",
                printed
            );
            // Evaluation and validation never panic either.
            let _ = filter.matches(&bjensen(), user_resource());
            let _ = filter.matches(&tour_guides(), group_resource());
            let _ = filter.validate(user_resource());
            let _ = filter.equality_value(user_resource(), "userName");
            Ok(Some(filter))
        }
        Err(e) => {
            prop_assert_eq!(e.status, 400);
            prop_assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
            prop_assert!(e.detail.starts_with("invalid filter"), "{}", e.detail);
            Ok(None)
        }
    }
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        1 => Just("$ref".to_string()),
    ]
    .prop_filter("keywords start a term", |name| {
        !["and", "or", "not"]
            .iter()
            .any(|kw| name.eq_ignore_ascii_case(kw))
    })
}

fn arb_path(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
    let urn = prop_oneof![
        3 => Just(None),
        1 => Just(Some("urn:ietf:params:scim:schemas:core:2.0:User".to_string())),
        1 => "urn(:[a-zA-Z0-9.-]{1,6}){1,4}".prop_map(Some),
    ];
    let sub = if allow_sub {
        proptest::option::of(arb_name()).boxed()
    } else {
        Just(None).boxed()
    };
    (urn, arb_name(), sub).prop_map(|(urn, attr, sub)| AttrPath { urn, attr, sub })
}

fn arb_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(|n| Literal::Number(n.into())),
        any::<u64>().prop_map(|n| Literal::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(Literal::Number),
        any::<String>().prop_map(Literal::String),
        "[ -~]{0,12}".prop_map(Literal::String),
    ]
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn arb_filter(allow_value_paths: bool) -> BoxedStrategy<Filter> {
    let leaf =
        prop_oneof![
            (arb_path(true), arb_op(), arb_literal())
                .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
            arb_path(true).prop_map(Filter::Present),
        ];
    leaf.prop_recursive(5, 32, 3, move |inner| {
        let mut options = vec![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b)))
                .boxed(),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b)))
                .boxed(),
            inner.clone().prop_map(|f| Filter::Not(Box::new(f))).boxed(),
        ];
        if allow_value_paths {
            options.push(
                (arb_path(false), arb_filter(false))
                    .prop_map(|(path, filter)| Filter::ValuePath {
                        path,
                        filter: Box::new(filter),
                    })
                    .boxed(),
            );
        }
        proptest::strategy::Union::new(options)
    })
    .boxed()
}

/// Pieces that make up filters, to shuffle into near-valid input.
const TOKENS: &[&str] = &[
    "userName",
    "emails",
    "emails.value",
    "name.familyName",
    "meta.lastModified",
    "active",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "type",
    "value",
    "$ref",
    "eq",
    "ne",
    "co",
    "sw",
    "ew",
    "gt",
    "ge",
    "lt",
    "le",
    "pr",
    "and",
    "or",
    "not",
    "AND",
    "Not",
    "(",
    ")",
    "[",
    "]",
    ".",
    ".value",
    "\"x\"",
    "\"\"",
    "\"a\\\"b\"",
    "\"\\u00e9\"",
    "42",
    "-1.5e3",
    "true",
    "null",
    "\"2011-05-13T04:42:34Z\"",
    " ",
    "\t",
    "\"",
    "\\",
    ":",
    "é",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Duplicate(usize, usize),
}

fn apply_edits(input: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = input.chars().collect();
    for edit in edits {
        let len = chars.len().max(1);
        match *edit {
            Edit::Delete(i) => {
                if !chars.is_empty() {
                    chars.remove(i % len);
                }
            }
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Replace(i, c) => {
                if !chars.is_empty() {
                    chars[i % len] = c;
                }
            }
            Edit::Duplicate(i, n) => {
                let start = i % len;
                let end = (start + n % 8).min(chars.len());
                let piece: Vec<char> = chars.get(start..end).unwrap_or_default().to_vec();
                for (k, c) in piece.into_iter().enumerate() {
                    chars.insert(end + k, c);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    let filter_char = prop_oneof![
        proptest::sample::select(vec![
            '(', ')', '[', ']', '"', '\\', ' ', '.', ':', '$', 'a', 'e', 'q', 'u', '0', '-', 'é',
            '\u{0}', '\n',
        ]),
        any::<char>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), filter_char.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), filter_char).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_strings_never_panic(input in any::<String>()) {
        assert_invalid_filter_or_ok(&input)?;
        if let Err(e) = parse_patch_path(&input) {
            prop_assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        }
    }

    #[test]
    fn filter_like_strings_never_panic(input in r#"[a-zA-Z0-9 "()\[\]\\.:$_\t-]{0,80}"#) {
        assert_invalid_filter_or_ok(&input)?;
        if let Err(e) = parse_patch_path(&input) {
            prop_assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        }
    }

    #[test]
    fn token_soup_never_panics(
        tokens in proptest::collection::vec(proptest::sample::select(TOKENS.to_vec()), 0..24),
        separators in proptest::collection::vec(proptest::sample::select(vec!["", " ", "  "]), 24),
    ) {
        let mut input = String::new();
        for (token, sep) in tokens.iter().zip(separators.iter()) {
            input.push_str(token);
            input.push_str(sep);
        }
        assert_invalid_filter_or_ok(&input)?;
        let _ = parse_patch_path(&input);
    }

    #[test]
    fn mutated_valid_filters_never_panic(
        index in 0..RFC_FILTERS.len(),
        edits in proptest::collection::vec(arb_edit(), 1..6),
    ) {
        let input = apply_edits(RFC_FILTERS[index], &edits);
        assert_invalid_filter_or_ok(&input)?;
        let _ = parse_patch_path(&input);
    }

    #[test]
    fn printing_any_tree_parses_back_to_it(filter in arb_filter(true)) {
        let printed = filter.to_string();
        match parse(&printed) {
            Ok(again) => prop_assert_eq!(again, filter, "printed {:?}", printed),
            Err(e) => prop_assert!(false, "{:?} does not parse: {}", printed, e),
        }
    }

    #[test]
    fn printing_any_patch_path_parses_back_to_it(
        attr in arb_path(true),
        filter in proptest::option::of(arb_filter(false)),
        sub in proptest::option::of(arb_name()),
    ) {
        let path = match filter {
            // `.sub` without a filter lives in `attr.sub`.
            None => PatchPath { attr, value_filter: None, sub: None },
            Some(filter) => PatchPath {
                attr: AttrPath { sub: None, ..attr },
                value_filter: Some(filter),
                sub,
            },
        };
        let printed = path.to_string();
        prop_assert_eq!(parse_patch_path(&printed).ok(), Some(path), "printed {:?}", printed);
    }

    #[test]
    fn nesting_is_bounded(depth in 0usize..200, not in any::<bool>()) {
        let open = if not { "not (" } else { "(" };
        let input = format!("{}a pr{}", open.repeat(depth), ")".repeat(depth));
        let result = parse(&input);
        prop_assert_eq!(result.is_ok(), depth <= 64, "depth {}", depth);
    }
}
