//! A corpus of real IdP traffic: the request sequences and bodies Okta and
//! Microsoft Entra ID send (reference §5.1, rules in §5.2), one table per
//! scenario family.
//!
//! A row is (what, IdP, requests with the status each must get, read-back).
//! Every row ends with a GET of the resulting resource matched against a
//! JSON fragment, so a row proves what was stored, not only what was
//! answered. Rows are data: ids the server assigns are written `{name}` and
//! filled in at run time, queries are written as the IdP means them and
//! percent-encoded on the way out, and whatever a row creates is deleted
//! after it so the next row starts from the family's seed.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{Reply, TestApp};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Entra's fully qualified path to the enterprise manager.
const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
/// In an expected fragment: this key must be missing.
const ABSENT: &str = "<absent>";

// ---------------------------------------------------------------------------
// The tables' vocabulary.

/// Who sends a row's requests.
#[derive(Debug, Clone, Copy)]
enum Idp {
    /// Okta's catalog SCIM 2.0 integration.
    Okta,
    /// An Okta app made with the App Integration Wizard: PUT for everything.
    OktaAiw,
    /// Entra ID's default provisioning behaviour.
    Entra,
    /// Entra ID with the `aadOptscim062020` tenant-URL flag.
    EntraFlag,
}

/// One request and what its reply must be.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    scim_type: Option<&'static str>,
    /// Remember the reply's `id` as `{name}`.
    bind: Option<&'static str>,
    /// A fragment the reply body must contain.
    expect: Option<Value>,
}

impl Call {
    fn new(method: Method, path: &str, body: Option<Value>, status: u16) -> Call {
        Call {
            method,
            path: path.to_string(),
            body,
            status,
            scim_type: None,
            bind: None,
            expect: None,
        }
    }

    /// The request must fail with this SCIM error.
    fn fails(mut self, status: u16, scim_type: Option<&'static str>) -> Call {
        self.status = status;
        self.scim_type = scim_type;
        self
    }

    fn bind(mut self, name: &'static str) -> Call {
        self.bind = Some(name);
        self
    }

    fn expect(mut self, fragment: Value) -> Call {
        self.expect = Some(fragment);
        self
    }
}

fn get(path: &str) -> Call {
    Call::new(Method::GET, path, None, 200)
}

/// A GET whose reply must contain `fragment`.
fn read(path: &str, fragment: Value) -> Call {
    get(path).expect(fragment)
}

/// A GET that must find nothing: a 404 SCIM error.
fn gone(path: &str) -> Call {
    get(path).fails(404, None)
}

fn post(path: &str, body: Value) -> Call {
    Call::new(Method::POST, path, Some(body), 201)
}

fn put(path: &str, body: Value) -> Call {
    Call::new(Method::PUT, path, Some(body), 200)
}

/// A PATCH request; `operations` is the `Operations` array as sent.
fn patch(path: &str, operations: Value) -> Call {
    Call::new(
        Method::PATCH,
        path,
        Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
        200,
    )
}

fn delete(path: &str) -> Call {
    Call::new(Method::DELETE, path, None, 204)
}

/// A table row: the requests an IdP sends and the read-back of the result.
struct Row {
    what: &'static str,
    idp: Idp,
    send: Vec<Call>,
    then: Call,
}

fn row(what: &'static str, idp: Idp, send: Vec<Call>, then: Call) -> Row {
    Row {
        what,
        idp,
        send,
        then,
    }
}

// ---------------------------------------------------------------------------
// Bodies.

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Okta's create request (Kenji Tanaka), as Okta's SCIM 2.0 app sends it.
fn okta_create_body() -> Value {
    fixture(include_str!("corpus/okta_create_user.json"))
}

/// Entra's create request (Ana Souza, reporting to `{manager}`).
fn entra_create_body() -> Value {
    fixture(include_str!("corpus/entra_create_user.json"))
}

/// Okta's create request for another person.
fn okta_body(user_name: &str, given: &str, family: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "tZ4#qLw9Vb",
        "active": true
    })
}

/// Entra's create request for another person.
fn entra_body(upn: &str, given: &str, family: &str, object_id: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": object_id,
        "userName": upn,
        "active": true,
        "displayName": format!("{given} {family}"),
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("{given} {family}"), "familyName": family, "givenName": given},
        "roles": [],
        ENTERPRISE: {"department": "Finance", "employeeNumber": "100007"}
    })
}

/// Okta creates Kenji Tanaka as `{id}`.
fn okta_user() -> Call {
    post("/Users", okta_create_body()).bind("id")
}

/// Entra creates Ana Souza as `{id}`.
fn entra_user() -> Call {
    post("/Users", entra_create_body()).bind("id")
}

/// Entra creates Ana Souza with some attributes changed (null drops one).
fn entra_user_with(changes: Value) -> Call {
    post("/Users", merged(entra_create_body(), &changes)).bind("id")
}

/// Okta's full PUT of Kenji Tanaka (`{id}`) with `changes` merged in: Okta
/// sends its whole profile, `id` included, every time.
fn okta_put(changes: Value) -> Call {
    let mut body = okta_create_body();
    body["id"] = json!("{id}");
    put("/Users/{id}", merged(body, &changes))
}

/// Okta's create request for a pushed group, bound to `{g}`; `members` are
/// variable names.
fn group(name: &str, members: &[&str]) -> Call {
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"value": format!("{{{m}}}")}))
        .collect();
    post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": name, "members": members}),
    )
    .bind("g")
}

/// `base` with `changes` merged in recursively; a null in `changes` removes
/// the key.
fn merged(mut base: Value, changes: &Value) -> Value {
    merge(&mut base, changes);
    base
}

fn merge(base: &mut Value, changes: &Value) {
    match (base, changes) {
        (Value::Object(base), Value::Object(changes)) => {
            for (key, change) in changes {
                if change.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge(existing, change);
                } else {
                    base.insert(key.clone(), change.clone());
                }
            }
        }
        (base, change) => *base = change.clone(),
    }
}

// ---------------------------------------------------------------------------
// Matching.

/// Panics unless `actual` contains `expected`: objects key by key (the
/// value [`ABSENT`] requires the key to be missing), arrays element-wise as
/// subsets (same length, any order), anything else by equality.
#[track_caller]
fn assert_contains(actual: &Value, expected: &Value) {
    if let Err(why) = contains(actual, expected, "$") {
        panic!("{why}\nexpected fragment: {expected:#}\nactual: {actual:#}");
    }
}

fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, want) in want {
                let at = format!("{at}.{key}");
                match have.get(key) {
                    None if *want == ABSENT => {}
                    Some(found) if *want == ABSENT => {
                        return Err(format!("{at}: expected no value, found {found}"))
                    }
                    None => return Err(format!("{at}: missing")),
                    Some(found) => contains(found, want, &at)?,
                }
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(format!(
                    "{at}: expected {} elements, found {}",
                    want.len(),
                    have.len()
                ));
            }
            let mut used = vec![false; have.len()];
            for (i, want) in want.iter().enumerate() {
                let hit =
                    (0..have.len()).find(|&j| !used[j] && contains(&have[j], want, "").is_ok());
                match hit {
                    Some(j) => used[j] = true,
                    None => return Err(format!("{at}[{i}]: no element contains {want}")),
                }
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: expected {expected}, found {actual}")),
    }
}

#[test]
fn assert_contains_matches_fragments() {
    let actual = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": [{"v": 1, "w": 2}, {"v": 3}]});
    for (expected, ok) in [
        (json!({}), true),
        (json!({"a": 1}), true),
        (json!({"a": 2}), false),
        (json!({"b": {"c": "x"}}), true),
        (json!({"b": {"d": [2, 1]}}), true),
        (json!({"b": {"d": [1]}}), false),
        (json!({"e": [{"v": 3}, {"w": 2}]}), true),
        (json!({"e": [{"v": 3}, {"v": 3}]}), false),
        (json!({"z": ABSENT}), true),
        (json!({"a": ABSENT}), false),
        (json!({"z": null}), false),
    ] {
        assert_eq!(contains(&actual, &expected, "$").is_ok(), ok, "{expected}");
    }
}

// ---------------------------------------------------------------------------
// The runner.

/// Values for `{name}` placeholders.
#[derive(Default)]
struct Vars(HashMap<String, String>);

impl Vars {
    fn fill_str(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.0 {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        if let Some(hole) = unbound(&out) {
            panic!("{hole} is not bound in {text:?}");
        }
        out
    }

    fn fill(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.fill_str(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.fill(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.fill(v))).collect())
            }
            other => other.clone(),
        }
    }
}

/// The first `{name}` placeholder left in `text`.
fn unbound(text: &str) -> Option<&str> {
    text.match_indices('{').find_map(|(i, _)| {
        let end = text[i + 1..].find('}')?;
        let name = &text[i + 1..i + 1 + end];
        let is_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        is_name.then(|| &text[i..i + end + 2])
    })
}

/// Percent-encodes what IdPs encode in a query (spaces, quotes, brackets);
/// `+` and existing escapes go out as written.
fn encode_query(path: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let mut out = format!("{base}?");
    for c in query.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '"' => out.push_str("%22"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            c => out.push(c),
        }
    }
    out
}

/// Runs a family's seed and rows against one server.
struct Corpus<'a> {
    app: &'a TestApp,
    vars: Vars,
    /// Resources the current row created, to delete after it.
    created: Vec<String>,
}

impl<'a> Corpus<'a> {
    fn new(app: &'a TestApp) -> Self {
        Corpus {
            app,
            vars: Vars::default(),
            created: Vec::new(),
        }
    }

    /// Requests every row of the family builds on; kept after the rows.
    async fn seed(&mut self, calls: Vec<Call>) {
        for call in &calls {
            self.send(call, "seed").await;
        }
        self.created.clear();
    }

    async fn run(&mut self, rows: Vec<Row>) {
        assert!(!rows.is_empty());
        for row in &rows {
            let label = format!("[{:?}] {}", row.idp, row.what);
            eprintln!("row: {label}");
            assert!(
                row.then.method == Method::GET
                    && (row.then.expect.is_some() || row.then.status == 404),
                "{label}: a row must end by reading the resource back"
            );
            for call in &row.send {
                self.send(call, &label).await;
            }
            self.send(&row.then, &label).await;
            self.clean_up().await;
        }
    }

    async fn clean_up(&mut self) {
        for location in std::mem::take(&mut self.created).iter().rev() {
            let reply = self.app.delete(location).await;
            assert!(
                matches!(reply.status.as_u16(), 204 | 404),
                "cleaning up {location}: {} {:#}",
                reply.status,
                reply.body
            );
        }
    }

    async fn send(&mut self, call: &Call, label: &str) -> Reply {
        let path = encode_query(&self.vars.fill_str(&call.path));
        let body = call.body.as_ref().map(|b| self.vars.fill(b));
        let reply = self
            .app
            .scim(call.method.clone(), &path, body.clone())
            .await;
        let context = format!(
            "{label}\n  {} {path}\n  body: {}\n  reply {}: {:#}",
            call.method,
            body.unwrap_or(Value::Null),
            reply.status,
            reply.body
        );
        let resource = path
            .split_once('?')
            .map_or(path.as_str(), |(p, _)| p)
            .to_string();
        let group_patch = call.method == Method::PATCH && resource.starts_with("/Groups/");

        // Roster answers a group PATCH with 200 and the group; the IdPs
        // also accept 204.
        let status_ok = reply.status.as_u16() == call.status
            || (group_patch && call.status == 200 && reply.status == StatusCode::NO_CONTENT);
        assert!(status_ok, "expected {}\n{context}", call.status);
        if call.status >= 400 {
            eprintln!("{context}");
            reply.assert_scim_error(call.status, call.scim_type);
        }
        if let Some(fragment) = &call.expect {
            let fragment = self.vars.fill(fragment);
            if let Err(why) = contains(&reply.body, &fragment, "$") {
                panic!("{why}\nexpected fragment: {fragment:#}\n{context}");
            }
        }
        let mut location = resource.clone();
        if let Some(name) = call.bind {
            let id = reply.body["id"]
                .as_str()
                .unwrap_or_else(|| panic!("no id to bind\n{context}"))
                .to_string();
            location = format!("{resource}/{id}");
            self.created.push(location.clone());
            self.vars.0.insert(name.to_string(), id);
        }
        let wrote = matches!(call.method, Method::POST | Method::PUT | Method::PATCH);
        if wrote && reply.status.is_success() && !reply.body.is_null() {
            self.assert_reply_is_stored(&reply, &location, group_patch, &context)
                .await;
        }
        reply
    }

    /// The reply to a successful write is the resource as a GET now shows
    /// it (a group PATCH reply may leave `members` out).
    async fn assert_reply_is_stored(
        &self,
        reply: &Reply,
        location: &str,
        group_patch: bool,
        context: &str,
    ) {
        if location == "/Users" || location == "/Groups" {
            panic!("a create must bind its id\n{context}");
        }
        let stored = self.app.get(location).await;
        assert_eq!(stored.status, StatusCode::OK, "{context}");
        if group_patch {
            let without_members = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().map(|o| o.remove("members"));
                v
            };
            assert_eq!(
                without_members(&reply.body),
                without_members(&stored.body),
                "{context}"
            );
            if let Some(members) = reply.body.get("members") {
                assert_eq!(members, &stored.body["members"], "{context}");
            }
        } else {
            assert_eq!(
                reply.body, stored.body,
                "reply differs from the stored resource\n{context}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (a) Looking a user up before creating it.

#[tokio::test]
async fn okta_and_entra_look_users_up_before_creating() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![
            post(
                "/Users",
                entra_body(
                    "maria.garcia@contoso.com",
                    "Maria",
                    "Garcia",
                    "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
                ),
            )
            .bind("manager"),
            post("/Users", okta_create_body()).bind("kenji"),
            post("/Users", entra_create_body()).bind("ana"),
            post(
                "/Users",
                entra_body(
                    "li.wei@contoso.com",
                    "Li",
                    "Wei",
                    "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
                ),
            )
            .bind("li"),
            post(
                "/Users",
                entra_body(
                    "sean.o'brien+scim@contoso.com",
                    "Seán",
                    "O'Brien",
                    "6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0",
                ),
            )
            .bind("sean"),
            patch(
                "/Users/{li}",
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            ),
        ])
        .await;

    let rows = vec![
        row(
            "finds a user by exact userName, paged as Okta pages",
            Idp::Okta,
            vec![],
            read(
                "/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100",
                json!({"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
                       "Resources": [{"id": "{kenji}", "userName": "kenji.tanaka@example.com",
                                      "externalId": "00u1k2tan8KenjiT0h7", "active": true}]}),
            ),
        ),
        row(
            "lists one user per page (the SCIM validator's probe)",
            Idp::Okta,
            vec![],
            read(
                "/Users?count=1&startIndex=1",
                json!({"schemas": [LIST], "totalResults": 5, "startIndex": 1, "itemsPerPage": 1, "Resources": [{}]}),
            ),
        ),
        row(
            "finds a user whose login differs only in case",
            Idp::Okta,
            vec![],
            read(
                "/Users?filter=userName eq \"Kenji.Tanaka@EXAMPLE.com\"&startIndex=1&count=100",
                json!({"totalResults": 1, "Resources": [{"id": "{kenji}"}]}),
            ),
        ),
        row(
            "an unknown login is an empty page, not a 404",
            Idp::Okta,
            vec![],
            read(
                "/Users?filter=userName eq \"nobody@example.com\"&startIndex=1&count=100",
                json!({"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}),
            ),
        ),
        row(
            "finds a user by UPN",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName eq \"ana.souza@contoso.com\"",
                json!({"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
                       "Resources": [{"id": "{ana}", "userName": "ana.souza@contoso.com",
                                      ENTERPRISE: {"manager": {"value": "{manager}"}}}]}),
            ),
        ),
        row(
            "finds a user by UPN with a form-encoded query",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName+eq+%22ana.souza%40contoso.com%22",
                json!({"totalResults": 1, "Resources": [{"id": "{ana}"}]}),
            ),
        ),
        row(
            "finds a user by externalId (the object id)",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=externalId eq \"4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c\"",
                json!({"totalResults": 1, "Resources": [{"id": "{ana}", "externalId": "4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c"}]}),
            ),
        ),
        row(
            "finds a user by work email",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=emails[type eq \"work\"].value eq \"ana.souza@contoso.com\"",
                json!({"totalResults": 1, "Resources": [{"id": "{ana}"}]}),
            ),
        ),
        row(
            "an unknown work email is an empty list",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=emails[type eq \"work\"].value eq \"ghost@contoso.com\"",
                json!({"totalResults": 0, "itemsPerPage": 0, "Resources": []}),
            ),
        ),
        row(
            "matches on two attributes joined with and",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName eq \"ana.souza@contoso.com\" and externalId eq \"4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c\"",
                json!({"totalResults": 1, "Resources": [{"id": "{ana}"}]}),
            ),
        ),
        row(
            "and with one side false finds nothing",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName eq \"ana.souza@contoso.com\" and externalId eq \"00000000-0000-0000-0000-000000000000\"",
                json!({"totalResults": 0, "Resources": []}),
            ),
        ),
        row(
            "finds a UPN with an apostrophe and a plus (sent as %2B)",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName eq \"sean.o'brien%2Bscim@contoso.com\"",
                json!({"totalResults": 1, "Resources": [{"id": "{sean}", "userName": "sean.o'brien+scim@contoso.com",
                                                         "name": {"givenName": "Seán", "familyName": "O'Brien"}}]}),
            ),
        ),
        row(
            "a deactivated user is still found",
            Idp::Entra,
            vec![],
            read(
                "/Users?filter=userName eq \"li.wei@contoso.com\"",
                json!({"totalResults": 1, "Resources": [{"id": "{li}", "active": false}]}),
            ),
        ),
        row(
            "reads a user by id",
            Idp::Entra,
            vec![],
            read(
                "/Users/{ana}",
                json!({"schemas": [USER, ENTERPRISE], "id": "{ana}", "userName": "ana.souza@contoso.com",
                       "meta": {"resourceType": "User"}}),
            ),
        ),
        row("an unknown id is a SCIM 404", Idp::Okta, vec![], gone("/Users/2b7e4a91-0c3d-4f5e-8a6b-1c2d3e4f5a6b")),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (b) Creating users.

#[tokio::test]
async fn okta_and_entra_create_users() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![post(
            "/Users",
            entra_body(
                "maria.garcia@contoso.com",
                "Maria",
                "Garcia",
                "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
            ),
        )
        .bind("manager")])
        .await;

    let rows = vec![
        row(
            "creates a user; password and groups are ignored, never stored",
            Idp::Okta,
            vec![okta_user()],
            read(
                "/Users/{id}",
                json!({"schemas": [USER], "id": "{id}", "userName": "kenji.tanaka@example.com",
                       "name": {"givenName": "Kenji", "familyName": "Tanaka"},
                       "emails": [{"primary": true, "value": "kenji.tanaka@example.com", "type": "work"}],
                       "displayName": "Kenji Tanaka", "locale": "en-US", "externalId": "00u1k2tan8KenjiT0h7",
                       "active": true, "groups": [], "password": ABSENT, ENTERPRISE: ABSENT,
                       "meta": {"resourceType": "User", "location": format!("{}/Users/{{id}}", app.scim)}}),
            ),
        ),
        row(
            "creates a user with a second email and a mobile number",
            Idp::Okta,
            vec![post(
                "/Users",
                merged(
                    okta_body("priya.raman@example.com", "Priya", "Raman", "00u7f3rama9PriyaR0h7"),
                    &json!({"emails": [{"primary": true, "value": "priya.raman@example.com", "type": "work"},
                                       {"primary": false, "value": "priya@raman.example", "type": "home"}],
                            "phoneNumbers": [{"primary": true, "value": "+1 415 555 0134", "type": "mobile"}]}),
                ),
            )
            .bind("id")],
            read(
                "/Users/{id}",
                json!({"userName": "priya.raman@example.com",
                       "emails": [{"value": "priya@raman.example", "type": "home", "primary": false},
                                  {"value": "priya.raman@example.com", "type": "work", "primary": true}],
                       "phoneNumbers": [{"value": "+1 415 555 0134", "type": "mobile"}]}),
            ),
        ),
        row(
            "creates a user with core and enterprise schemas, manager as a bare id",
            Idp::Entra,
            vec![entra_user()],
            read(
                "/Users/{id}",
                json!({"schemas": [USER, ENTERPRISE], "id": "{id}", "userName": "ana.souza@contoso.com",
                       "externalId": "4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c", "active": true,
                       "displayName": "Ana Souza", "title": "Payments Engineer",
                       "emails": [{"primary": true, "type": "work", "value": "ana.souza@contoso.com"}],
                       "name": {"formatted": "Ana Souza", "familyName": "Souza", "givenName": "Ana"},
                       ENTERPRISE: {"department": "Payments", "employeeNumber": "100231",
                                    "manager": {"value": "{manager}"}},
                       "meta": {"resourceType": "User"}}),
            ),
        ),
        row(
            "creates a user with the manager as {value}",
            Idp::Entra,
            vec![entra_user_with(json!({ENTERPRISE: {"manager": {"value": "{manager}"}}}))],
            read("/Users/{id}", json!({ENTERPRISE: {"manager": {"value": "{manager}"}}})),
        ),
        row(
            "creates a user whose externalId is the mailNickname, core schema only",
            Idp::Entra,
            vec![post(
                "/Users",
                json!({"schemas": [USER], "externalId": "jwilson", "userName": "jamal.wilson@contoso.com",
                       "active": true, "displayName": "Jamal Wilson",
                       "emails": [{"primary": true, "type": "work", "value": "jamal.wilson@contoso.com"}],
                       "meta": {"resourceType": "User"},
                       "name": {"formatted": "Jamal Wilson", "familyName": "Wilson", "givenName": "Jamal"},
                       "roles": []}),
            )
            .bind("id")],
            read(
                "/Users/{id}",
                json!({"schemas": [USER], "externalId": "jwilson", "userName": "jamal.wilson@contoso.com",
                       ENTERPRISE: ABSENT}),
            ),
        ),
        row(
            "creates the Entra validator's test user",
            Idp::Entra,
            vec![post("/Users", fixture(include_str!("corpus/entra_validator_user.json"))).bind("id")],
            read(
                "/Users/{id}",
                json!({"userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
                       "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                       "emails": [{"primary": true, "type": "work",
                                   "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
                       "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}}),
            ),
        ),
        row(
            "creates a disabled account as inactive",
            Idp::Entra,
            vec![post(
                "/Users",
                merged(
                    entra_body("olu.adeyemi@contoso.com", "Olu", "Adeyemi", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
                    &json!({"active": false}),
                ),
            )
            .bind("id")],
            read("/Users/{id}", json!({"userName": "olu.adeyemi@contoso.com", "active": false})),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (c) Creating a user that already exists.

#[tokio::test]
async fn creating_an_existing_user_is_a_409_uniqueness() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![
            post(
                "/Users",
                entra_body(
                    "maria.garcia@contoso.com",
                    "Maria",
                    "Garcia",
                    "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
                ),
            )
            .bind("manager"),
            post("/Users", okta_create_body()).bind("kenji"),
            post("/Users", entra_create_body()).bind("ana"),
        ])
        .await;
    let kenji_once = json!({"totalResults": 1, "Resources": [{"id": "{kenji}", "externalId": "00u1k2tan8KenjiT0h7"}]});
    let ana_once = json!({"totalResults": 1,
                          "Resources": [{"id": "{ana}", "externalId": "4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c",
                                         "displayName": "Ana Souza"}]});

    let rows = vec![
        row(
            "the same create again",
            Idp::Okta,
            vec![post("/Users", okta_create_body()).fails(409, Some("uniqueness"))],
            read("/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100", kenji_once.clone()),
        ),
        row(
            "a login that differs only in case, from another Okta user",
            Idp::Okta,
            vec![post(
                "/Users",
                okta_body("KENJI.TANAKA@example.com", "Kenji", "Tanaka", "00u9z8y7x6KenjiT2h7"),
            )
            .fails(409, Some("uniqueness"))],
            read("/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100", kenji_once.clone()),
        ),
        row(
            "a deactivated user still holds the login",
            Idp::Okta,
            vec![
                patch("/Users/{kenji}", json!([{"op": "replace", "value": {"active": false}}])),
                post("/Users", okta_create_body()).fails(409, Some("uniqueness")),
                patch("/Users/{kenji}", json!([{"op": "replace", "value": {"active": true}}])),
            ],
            read("/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100", kenji_once.clone()),
        ),
        row(
            "a full PUT renaming onto another user's login",
            Idp::Okta,
            vec![put(
                "/Users/{kenji}",
                merged(
                    okta_create_body(),
                    &json!({"id": "{kenji}", "userName": "ana.souza@contoso.com"}),
                ),
            )
            .fails(409, Some("uniqueness"))],
            read("/Users/{kenji}", json!({"userName": "kenji.tanaka@example.com"})),
        ),
        row(
            "Replace userName onto another user's UPN",
            Idp::Entra,
            vec![patch(
                "/Users/{ana}",
                json!([{"op": "Replace", "path": "userName", "value": "Kenji.Tanaka@example.com"}]),
            )
            .fails(409, Some("uniqueness"))],
            read("/Users/{ana}", json!({"userName": "ana.souza@contoso.com", "displayName": "Ana Souza"})),
        ),
        row(
            "the same create again",
            Idp::Entra,
            vec![post("/Users", entra_create_body()).fails(409, Some("uniqueness"))],
            read("/Users?filter=userName eq \"ana.souza@contoso.com\"", ana_once.clone()),
        ),
        row(
            "matching on externalId finds nothing, then the UPN collides",
            Idp::Entra,
            vec![
                read(
                    "/Users?filter=externalId eq \"c0ffee00-1234-4abc-8def-0123456789ab\"",
                    json!({"totalResults": 0, "Resources": []}),
                ),
                post(
                    "/Users",
                    merged(
                        entra_create_body(),
                        &json!({"externalId": "c0ffee00-1234-4abc-8def-0123456789ab", "displayName": "Ana S."}),
                    ),
                )
                .fails(409, Some("uniqueness")),
            ],
            read("/Users?filter=userName eq \"ana.souza@contoso.com\"", ana_once.clone()),
        ),
        row(
            "a UPN in upper case",
            Idp::Entra,
            vec![post("/Users", merged(entra_create_body(), &json!({"userName": "Ana.Souza@CONTOSO.COM"})))
                .fails(409, Some("uniqueness"))],
            read("/Users?filter=userName eq \"ana.souza@contoso.com\"", ana_once.clone()),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (d) Profile updates.

#[tokio::test]
async fn okta_and_entra_update_profiles() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![
            post(
                "/Users",
                entra_body(
                    "maria.garcia@contoso.com",
                    "Maria",
                    "Garcia",
                    "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
                ),
            )
            .bind("manager"),
            post(
                "/Users",
                entra_body(
                    "tom.becker@contoso.com",
                    "Tom",
                    "Becker",
                    "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
                ),
            )
            .bind("manager2"),
        ])
        .await;

    let rows = vec![
        // Okta: GET, then a full PUT of its profile.
        row(
            "GET then full PUT with a new family name",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(
                    json!({"name": {"familyName": "Tanaka-Sato"}, "displayName": "Kenji Tanaka-Sato"}),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"name": {"givenName": "Kenji", "familyName": "Tanaka-Sato"}, "displayName": "Kenji Tanaka-Sato",
                       "externalId": "00u1k2tan8KenjiT0h7", "locale": "en-US", "active": true, "password": ABSENT}),
            ),
        ),
        row(
            "full PUT with a new primary email replaces the whole list",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(
                    json!({"emails": [{"primary": true, "value": "kenji@tanaka.example", "type": "work"},
                                           {"primary": false, "value": "kenji.tanaka@example.com", "type": "other"}]}),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"emails": [{"primary": true, "value": "kenji@tanaka.example", "type": "work"},
                                  {"primary": false, "value": "kenji.tanaka@example.com", "type": "other"}]}),
            ),
        ),
        row(
            "full PUT renames the login",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({"userName": "kenji.tanaka@example.org",
                                "emails": [{"primary": true, "value": "kenji.tanaka@example.org", "type": "work"}]})),
                read(
                    "/Users?filter=userName eq \"kenji.tanaka@example.org\"&startIndex=1&count=100",
                    json!({"totalResults": 1, "Resources": [{"id": "{id}"}]}),
                ),
                read(
                    "/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100",
                    json!({"totalResults": 0, "Resources": []}),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"userName": "kenji.tanaka@example.org", "externalId": "00u1k2tan8KenjiT0h7"}),
            ),
        ),
        row(
            "full PUT without locale clears it",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({"locale": null})),
            ],
            read(
                "/Users/{id}",
                json!({"locale": ABSENT, "displayName": "Kenji Tanaka", "active": true}),
            ),
        ),
        row(
            "full PUT with enterprise attributes under the URN key",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({
                    "schemas": [USER, ENTERPRISE], "title": "Staff Engineer",
                    ENTERPRISE: {"department": "Platform", "costCenter": "CC-4410", "organization": "Example Inc"}
                })),
            ],
            read(
                "/Users/{id}",
                json!({"schemas": [USER, ENTERPRISE], "title": "Staff Engineer",
                       ENTERPRISE: {"department": "Platform", "costCenter": "CC-4410", "organization": "Example Inc"}}),
            ),
        ),
        row(
            "password sync: a path-less replace of password is accepted, never stored",
            Idp::Okta,
            vec![
                okta_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "value": {"password": "N3w!Passw0rd-2024"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"password": ABSENT, "active": true, "displayName": "Kenji Tanaka"}),
            ),
        ),
        // Entra, default: one op per attribute, capitalised ops.
        row(
            "Replace displayName",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "displayName", "value": "Ana Souza-Lima"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"displayName": "Ana Souza-Lima",
                       "name": {"formatted": "Ana Souza", "familyName": "Souza", "givenName": "Ana"}}),
            ),
        ),
        row(
            "Add name.givenName and Replace name.familyName",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": "name.givenName", "value": "Ana Clara"},
                           {"op": "Replace", "path": "name.familyName", "value": "Souza Lima"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"name": {"formatted": "Ana Souza", "givenName": "Ana Clara", "familyName": "Souza Lima"},
                       "displayName": "Ana Souza"}),
            ),
        ),
        row(
            "Replace the work email's value with a plain string",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ana.lima@contoso.com"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"emails": [{"primary": true, "type": "work", "value": "ana.lima@contoso.com"}]}),
            ),
        ),
        row(
            "Add a work email to a user that has none",
            Idp::Entra,
            vec![
                entra_user_with(json!({"emails": null})),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ana.souza@contoso.com"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"emails": [{"type": "work", "value": "ana.souza@contoso.com"}]}),
            ),
        ),
        row(
            "Add mobile and work phone numbers",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+55 11 5555 0101"},
                           {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+55 11 5555 0199"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"phoneNumbers": [{"type": "mobile", "value": "+55 11 5555 0101"},
                                        {"type": "work", "value": "+55 11 5555 0199"}]}),
            ),
        ),
        row(
            "Add the parts of a work address one op each",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "Av. Paulista 1000"},
                           {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "São Paulo"},
                           {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "01310-100"},
                           {"op": "Add", "path": "addresses[type eq \"work\"].country", "value": "BR"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"addresses": [{"type": "work", "streetAddress": "Av. Paulista 1000", "locality": "São Paulo",
                                      "postalCode": "01310-100", "country": "BR"}]}),
            ),
        ),
        row(
            "Add a title to a user that has none",
            Idp::Entra,
            vec![
                entra_user_with(json!({"title": null})),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": "title", "value": "Payments Engineer II"}]),
                ),
            ],
            read("/Users/{id}", json!({"title": "Payments Engineer II"})),
        ),
        row(
            "Replace title and the enterprise department",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "title", "value": "Senior Payments Engineer"},
                           {"op": "Replace",
                            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                            "value": "Payments Platform"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"title": "Senior Payments Engineer",
                       ENTERPRISE: {"department": "Payments Platform", "employeeNumber": "100231",
                                    "manager": {"value": "{manager}"}}}),
            ),
        ),
        row(
            "Replace the manager with a plain id string",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": MANAGER, "value": "{manager2}"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({ENTERPRISE: {"manager": {"value": "{manager2}"}, "department": "Payments"}}),
            ),
        ),
        row(
            "Replace the manager given as {value}",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": MANAGER, "value": {"value": "{manager2}"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({ENTERPRISE: {"manager": {"value": "{manager2}"}, "employeeNumber": "100231"}}),
            ),
        ),
        row(
            "Add a manager to a user that has none",
            Idp::Entra,
            vec![
                entra_user_with(json!({ENTERPRISE: {"manager": null}})),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add", "path": MANAGER, "value": "{manager}"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({ENTERPRISE: {"manager": {"value": "{manager}"}, "employeeNumber": "100231"}}),
            ),
        ),
        row(
            "Add an enterprise section to a core-only user",
            Idp::Entra,
            vec![
                entra_user_with(json!({"schemas": [USER], ENTERPRISE: null})),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Add",
                            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                            "value": "100555"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"schemas": [USER, ENTERPRISE], ENTERPRISE: {"employeeNumber": "100555"}}),
            ),
        ),
        row(
            "Replace userName after a UPN change",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "userName", "value": "ana.lima@contoso.com"}]),
                ),
                read(
                    "/Users?filter=userName eq \"ana.lima@contoso.com\"",
                    json!({"totalResults": 1, "Resources": [{"id": "{id}"}]}),
                ),
            ],
            read("/Users/{id}", json!({"userName": "ana.lima@contoso.com"})),
        ),
        row(
            "Replace externalId",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "externalId", "value": "asouza"}]),
                ),
                read(
                    "/Users?filter=externalId eq \"asouza\"",
                    json!({"totalResults": 1, "Resources": [{"id": "{id}"}]}),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"externalId": "asouza", "userName": "ana.souza@contoso.com"}),
            ),
        ),
        row(
            "many attributes in one request, one op each",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "displayName", "value": "Ana Lima"},
                           {"op": "Replace", "path": "name.familyName", "value": "Lima"},
                           {"op": "Replace", "path": "name.formatted", "value": "Ana Lima"},
                           {"op": "Replace", "path": "title", "value": "Engineering Manager"},
                           {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ana.lima@contoso.com"},
                           {"op": "Replace",
                            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                            "value": "Payments Leadership"},
                           {"op": "Replace", "path": MANAGER, "value": "{manager2}"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"displayName": "Ana Lima", "title": "Engineering Manager",
                       "name": {"givenName": "Ana", "familyName": "Lima", "formatted": "Ana Lima"},
                       "emails": [{"type": "work", "value": "ana.lima@contoso.com", "primary": true}],
                       ENTERPRISE: {"department": "Payments Leadership", "employeeNumber": "100231",
                                    "manager": {"value": "{manager2}"}}}),
            ),
        ),
        // Entra with aadOptscim062020: one path-less replace.
        row(
            "one path-less replace with plain and dotted keys",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace",
                            "value": {"displayName": "Ana Lima", "name.givenName": "Ana Clara", "name.familyName": "Lima"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"displayName": "Ana Lima",
                       "name": {"givenName": "Ana Clara", "familyName": "Lima", "formatted": "Ana Souza"},
                       "title": "Payments Engineer"}),
            ),
        ),
        row(
            "one path-less replace with fully qualified enterprise keys",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace",
                            "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Risk",
                                      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "200400",
                                      MANAGER: "{manager2}"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"displayName": "Ana Souza",
                       ENTERPRISE: {"department": "Risk", "employeeNumber": "200400",
                                    "manager": {"value": "{manager2}"}}}),
            ),
        ),
        row(
            "one path-less replace mixing core, dotted and enterprise keys",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace",
                            "value": {"title": "Staff Engineer", "name.formatted": "Ana S. Lima", "active": true,
                                      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Core Banking"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"title": "Staff Engineer", "active": true,
                       "name": {"formatted": "Ana S. Lima", "givenName": "Ana", "familyName": "Souza"},
                       ENTERPRISE: {"department": "Core Banking", "manager": {"value": "{manager}"}}}),
            ),
        ),
        row(
            "one path-less replace with a work-email key",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace",
                            "value": {"emails[type eq \"work\"].value": "ana.lima@contoso.com",
                                      "name.familyName": "Lima"}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"name": {"familyName": "Lima", "givenName": "Ana"},
                       "emails": [{"type": "work", "value": "ana.lima@contoso.com", "primary": true}]}),
            ),
        ),
        row(
            "lowercase ops with paths",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "path": "name.familyName", "value": "Lima"},
                           {"op": "add", "path": "emails[type eq \"work\"].value", "value": "ana.lima@contoso.com"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"name": {"familyName": "Lima", "givenName": "Ana"},
                       "emails": [{"type": "work", "value": "ana.lima@contoso.com", "primary": true}]}),
            ),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (e) Deactivation and reactivation.

#[tokio::test]
async fn okta_and_entra_deactivate_and_reactivate() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![post(
            "/Users",
            entra_body(
                "maria.garcia@contoso.com",
                "Maria",
                "Garcia",
                "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
            ),
        )
        .bind("manager")])
        .await;
    let okta_off = || {
        patch(
            "/Users/{id}",
            json!([{"op": "replace", "value": {"active": false}}]),
        )
    };
    let entra_off = || {
        patch(
            "/Users/{id}",
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
    };
    let kenji_off = json!({"active": false, "userName": "kenji.tanaka@example.com",
                           "name": {"givenName": "Kenji", "familyName": "Tanaka"}, "externalId": "00u1k2tan8KenjiT0h7"});
    let ana_off = json!({"active": false, "userName": "ana.souza@contoso.com", "displayName": "Ana Souza",
                         ENTERPRISE: {"manager": {"value": "{manager}"}}});

    let rows = vec![
        row(
            "path-less replace {active: false}",
            Idp::Okta,
            vec![okta_user(), okta_off()],
            read("/Users/{id}", kenji_off.clone()),
        ),
        row(
            "path-less replace {active: true} after deactivation",
            Idp::Okta,
            vec![
                okta_user(),
                okta_off(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "value": {"active": true}}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"active": true, "userName": "kenji.tanaka@example.com"}),
            ),
        ),
        row(
            "a deactivated user is still found by Okta's lookup",
            Idp::Okta,
            vec![okta_user(), okta_off()],
            read(
                "/Users?filter=userName eq \"kenji.tanaka@example.com\"&startIndex=1&count=100",
                json!({"totalResults": 1, "Resources": [{"id": "{id}", "active": false}]}),
            ),
        ),
        row(
            "Replace active with the string \"False\"",
            Idp::Entra,
            vec![entra_user(), entra_off()],
            read("/Users/{id}", ana_off.clone()),
        ),
        row(
            "Replace active with the string \"True\" after \"False\"",
            Idp::Entra,
            vec![
                entra_user(),
                entra_off(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "active", "value": "True"}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"active": true, "displayName": "Ana Souza"}),
            ),
        ),
        row(
            "\"False\" again on an inactive user changes nothing",
            Idp::Entra,
            vec![entra_user(), entra_off(), entra_off()],
            read("/Users/{id}", ana_off.clone()),
        ),
        row(
            "a deactivated user keeps its group memberships",
            Idp::Entra,
            vec![
                entra_user(),
                group("Payments On-Call", &["id"]),
                entra_off(),
                read(
                    "/Users/{id}",
                    json!({"active": false, "groups": [{"value": "{g}", "display": "Payments On-Call"}]}),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{id}"}]})),
        ),
        row(
            "a deactivated user is still found by externalId",
            Idp::Entra,
            vec![entra_user(), entra_off()],
            read(
                "/Users?filter=externalId eq \"4f9b2c1e-8a7d-4e3b-9c6f-1d2e3f4a5b6c\"",
                json!({"totalResults": 1, "Resources": [{"id": "{id}", "active": false}]}),
            ),
        ),
        row(
            "replace active with a real boolean",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "path": "active", "value": false}]),
                ),
            ],
            read("/Users/{id}", ana_off.clone()),
        ),
        row(
            "path-less replace {active: false}",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "value": {"active": false}}]),
                ),
            ],
            read("/Users/{id}", ana_off.clone()),
        ),
        row(
            "replace active true after false",
            Idp::EntraFlag,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "path": "active", "value": false}]),
                ),
                patch(
                    "/Users/{id}",
                    json!([{"op": "replace", "path": "active", "value": true}]),
                ),
            ],
            read(
                "/Users/{id}",
                json!({"active": true, "userName": "ana.souza@contoso.com"}),
            ),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (f) Deleting users.

#[tokio::test]
async fn entra_deletes_users_after_hard_delete() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![post(
            "/Users",
            entra_body(
                "maria.garcia@contoso.com",
                "Maria",
                "Garcia",
                "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
            ),
        )
        .bind("manager")])
        .await;

    let rows = vec![
        row(
            "unassigned (deactivated, still readable), then hard-deleted",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "active", "value": "False"}]),
                ),
                read(
                    "/Users/{id}",
                    json!({"id": "{id}", "active": false, "userName": "ana.souza@contoso.com"}),
                ),
                delete("/Users/{id}"),
            ],
            gone("/Users/{id}"),
        ),
        row(
            "a retried DELETE is a SCIM 404",
            Idp::Entra,
            vec![
                entra_user(),
                delete("/Users/{id}"),
                delete("/Users/{id}").fails(404, None),
            ],
            gone("/Users/{id}"),
        ),
        row(
            "an update for a user deleted meanwhile is a SCIM 404",
            Idp::Entra,
            vec![
                entra_user(),
                delete("/Users/{id}"),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "displayName", "value": "Ana Lima"}]),
                )
                .fails(404, None),
            ],
            gone("/Users/{id}"),
        ),
        row(
            "DELETE of an id never provisioned is a SCIM 404",
            Idp::Entra,
            vec![delete("/Users/7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8").fails(404, None)],
            gone("/Users/7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"),
        ),
        row(
            "deleting a member takes it out of its groups",
            Idp::Entra,
            vec![
                entra_user(),
                group("Payments On-Call", &["id"]),
                delete("/Users/{id}"),
            ],
            read(
                "/Groups/{g}",
                json!({"displayName": "Payments On-Call", "members": []}),
            ),
        ),
        row(
            "after a delete the lookup is empty and the UPN can be provisioned again",
            Idp::Entra,
            vec![
                entra_user(),
                delete("/Users/{id}"),
                read(
                    "/Users?filter=userName eq \"ana.souza@contoso.com\"",
                    json!({"totalResults": 0, "Resources": []}),
                ),
                entra_user(),
            ],
            read(
                "/Users/{id}",
                json!({"userName": "ana.souza@contoso.com", "active": true, "groups": []}),
            ),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (g) Groups.

#[tokio::test]
async fn okta_and_entra_manage_groups() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![
            post(
                "/Users",
                okta_body(
                    "alice.nguyen@example.com",
                    "Alice",
                    "Nguyen",
                    "00u1alic3Nguy3n0h7",
                ),
            )
            .bind("alice"),
            post(
                "/Users",
                okta_body(
                    "bob.okafor@example.com",
                    "Bob",
                    "Okafor",
                    "00u2b0bOkaf0r0h7",
                ),
            )
            .bind("bob"),
            post(
                "/Users",
                okta_body(
                    "carol.jensen@example.com",
                    "Carol",
                    "Jensen",
                    "00u3car0lJens3n0h7",
                ),
            )
            .bind("carol"),
            group("Platform", &["alice"]).bind("platform"),
            group("Payments Core", &[]).bind("payments"),
        ])
        .await;
    let okta_add = |who: &str, display: &str| {
        patch(
            "/Groups/{g}",
            json!([{"op": "add", "path": "members", "value": [{"value": format!("{{{who}}}"), "display": display}]}]),
        )
    };

    let rows = vec![
        // Okta: imports by paging, pushes by id.
        row(
            "imports groups with startIndex=1&count=100",
            Idp::Okta,
            vec![],
            read(
                "/Groups?startIndex=1&count=100",
                json!({"schemas": [LIST], "totalResults": 2, "startIndex": 1, "itemsPerPage": 2,
                       "Resources": [{"id": "{platform}", "displayName": "Platform", "members": [{"value": "{alice}"}]},
                                     {"id": "{payments}", "displayName": "Payments Core", "members": []}]}),
            ),
        ),
        row(
            "pushes a new group",
            Idp::Okta,
            vec![post("/Groups", json!({"schemas": [GROUP], "displayName": "Design Guild", "members": []})).bind("g")],
            read(
                "/Groups/{g}",
                json!({"schemas": [GROUP], "id": "{g}", "displayName": "Design Guild", "members": [],
                       "meta": {"resourceType": "Group"}}),
            ),
        ),
        row(
            "pushing a group whose name is taken is a 409",
            Idp::Okta,
            vec![post("/Groups", json!({"schemas": [GROUP], "displayName": "Platform", "members": []}))
                .fails(409, Some("uniqueness"))],
            read("/Groups/{platform}", json!({"displayName": "Platform", "members": [{"value": "{alice}"}]})),
        ),
        row(
            "reads one group with its members",
            Idp::Okta,
            vec![],
            read(
                "/Groups/{platform}",
                json!({"id": "{platform}", "displayName": "Platform",
                       "members": [{"value": "{alice}", "type": "User"}]}),
            ),
        ),
        row(
            "adds a member with value and display",
            Idp::Okta,
            vec![
                group("Design Guild", &[]),
                okta_add("bob", "bob.okafor@example.com"),
                read(
                    "/Users/{bob}",
                    json!({"groups": [{"value": "{g}", "display": "Design Guild"}]}),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}]})),
        ),
        row(
            "removes a member with a filter path",
            Idp::Okta,
            vec![
                group("Design Guild", &["alice", "bob"]),
                patch("/Groups/{g}", json!([{"op": "remove", "path": "members[value eq \"{bob}\"]"}])),
                read("/Users/{bob}", json!({"groups": []})),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{alice}"}]})),
        ),
        row(
            "removes the last member with a filter path",
            Idp::Okta,
            vec![
                group("Design Guild", &["carol"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "remove", "path": "members[value eq \"{carol}\"]"}]),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Design Guild", "members": []})),
        ),
        row(
            "full membership push replaces the list",
            Idp::Okta,
            vec![
                group("Design Guild", &["alice"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "replace", "path": "members",
                            "value": [{"value": "{bob}", "display": "bob.okafor@example.com"},
                                      {"value": "{carol}", "display": "carol.jensen@example.com"}]}]),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}, {"value": "{carol}"}]})),
        ),
        row(
            "full membership push with an empty list",
            Idp::Okta,
            vec![group("Design Guild", &["alice", "bob"]), patch("/Groups/{g}", json!([{"op": "replace", "path": "members", "value": []}]))],
            read("/Groups/{g}", json!({"displayName": "Design Guild", "members": []})),
        ),
        row(
            "renames with a path-less replace carrying id and displayName",
            Idp::Okta,
            vec![
                group("Design Guild", &["alice"]),
                patch("/Groups/{g}", json!([{"op": "replace", "value": {"id": "{g}", "displayName": "Design Systems"}}])),
                read("/Users/{alice}", json!({"groups": [{"display": "Platform"}, {"value": "{g}", "display": "Design Systems"}]})),
            ],
            read("/Groups/{g}", json!({"displayName": "Design Systems", "members": [{"value": "{alice}"}]})),
        ),
        row(
            "resends the rename together with a membership change",
            Idp::Okta,
            vec![
                group("Design Guild", &["alice"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "replace", "value": {"id": "{g}", "displayName": "Design Systems"}},
                           {"op": "add", "path": "members", "value": [{"value": "{carol}", "display": "carol.jensen@example.com"}]},
                           {"op": "remove", "path": "members[value eq \"{alice}\"]"}]),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Design Systems", "members": [{"value": "{carol}"}]})),
        ),
        row(
            "deletes a group when the push link is removed",
            Idp::Okta,
            vec![
                group("Design Guild", &["carol"]),
                delete("/Groups/{g}"),
                read("/Users/{carol}", json!({"groups": []})),
            ],
            gone("/Groups/{g}"),
        ),
        // Entra: looks groups up by name, never reads members.
        row(
            "looks a group up by displayName without members",
            Idp::Entra,
            vec![],
            read(
                "/Groups?excludedAttributes=members&filter=displayName eq \"Platform\"",
                json!({"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
                       "Resources": [{"id": "{platform}", "displayName": "Platform", "members": ABSENT}]}),
            ),
        ),
        row(
            "an unknown group name is an empty list",
            Idp::Entra,
            vec![],
            read(
                "/Groups?excludedAttributes=members&filter=displayName eq \"Finance Approvers\"",
                json!({"totalResults": 0, "itemsPerPage": 0, "Resources": []}),
            ),
        ),
        row(
            "creates a group with its own schema URN and meta",
            Idp::Entra,
            vec![post("/Groups", fixture(include_str!("corpus/entra_create_group.json"))).bind("g")],
            read(
                "/Groups/{g}?excludedAttributes=members",
                json!({"schemas": [GROUP], "id": "{g}", "displayName": "Finance Approvers",
                       "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "members": ABSENT,
                       "meta": {"resourceType": "Group"}}),
            ),
        ),
        row(
            "looks a group up by externalId (the object id)",
            Idp::Entra,
            vec![post("/Groups", fixture(include_str!("corpus/entra_create_group.json"))).bind("g")],
            read(
                "/Groups?excludedAttributes=members&filter=externalId eq \"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159\"",
                json!({"totalResults": 1, "Resources": [{"id": "{g}", "displayName": "Finance Approvers", "members": ABSENT}]}),
            ),
        ),
        row(
            "reads one group without members",
            Idp::Entra,
            vec![],
            read("/Groups/{platform}?excludedAttributes=members", json!({"displayName": "Platform", "members": ABSENT})),
        ),
        row(
            "Add one member ($ref null, as Entra sends it)",
            Idp::Entra,
            vec![
                post("/Groups", fixture(include_str!("corpus/entra_create_group.json"))).bind("g"),
                patch("/Groups/{g}", json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "{alice}"}]}])),
                read("/Groups/{g}?excludedAttributes=members", json!({"displayName": "Finance Approvers", "members": ABSENT})),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{alice}"}]})),
        ),
        row(
            "Add several members in one op",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["alice"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "Add", "path": "members", "value": [{"value": "{bob}"}, {"value": "{carol}"}]}]),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{alice}"}, {"value": "{bob}"}, {"value": "{carol}"}]})),
        ),
        row(
            "a retried Add does not duplicate the member",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["alice"]),
                patch("/Groups/{g}", json!([{"op": "Add", "path": "members", "value": [{"value": "{alice}"}]}])),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{alice}"}]})),
        ),
        row(
            "Remove with a value list",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["alice", "bob", "carol"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "{alice}"}, {"value": "{carol}"}]}]),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}]})),
        ),
        row(
            "Add and Remove members in one request",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["alice", "bob"]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "{carol}"}]},
                           {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "{alice}"}]}]),
                ),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}, {"value": "{carol}"}]})),
        ),
        row(
            "Replace displayName and Add a member in one request",
            Idp::Entra,
            vec![
                group("Finance Approvers", &[]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "Replace", "path": "displayName", "value": "Finance Approvers APAC"},
                           {"op": "Add", "path": "members", "value": [{"value": "{bob}"}]}]),
                ),
                read("/Users/{bob}", json!({"groups": [{"value": "{g}", "display": "Finance Approvers APAC"}]})),
            ],
            read(
                "/Groups/{g}",
                json!({"displayName": "Finance Approvers APAC", "members": [{"value": "{bob}"}]}),
            ),
        ),
        row(
            "a retried Remove of a member already gone changes nothing",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["bob"]),
                patch("/Groups/{g}", json!([{"op": "Remove", "path": "members", "value": [{"value": "{alice}"}]}])),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}]})),
        ),
        row(
            "remove with a filter path",
            Idp::EntraFlag,
            vec![
                group("Finance Approvers", &["alice", "bob"]),
                patch("/Groups/{g}", json!([{"op": "remove", "path": "members[value eq \"{alice}\"]"}])),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}]})),
        ),
        row(
            "Replace displayName renames, and the new name is found",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["alice"]),
                patch("/Groups/{g}", json!([{"op": "Replace", "path": "displayName", "value": "Finance Approvers EMEA"}])),
                read(
                    "/Groups?excludedAttributes=members&filter=displayName eq \"Finance Approvers EMEA\"",
                    json!({"totalResults": 1, "Resources": [{"id": "{g}", "members": ABSENT}]}),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Finance Approvers EMEA", "members": [{"value": "{alice}"}]})),
        ),
        row(
            "a retried group DELETE is a SCIM 404",
            Idp::Entra,
            vec![
                group("Finance Approvers", &[]),
                delete("/Groups/{g}"),
                delete("/Groups/{g}").fails(404, None),
            ],
            gone("/Groups/{g}"),
        ),
        row(
            "deletes a group that left scope",
            Idp::Entra,
            vec![
                group("Finance Approvers", &["bob"]),
                delete("/Groups/{g}"),
                read(
                    "/Groups?excludedAttributes=members&filter=displayName eq \"Finance Approvers\"",
                    json!({"totalResults": 0, "Resources": []}),
                ),
                read("/Users/{bob}", json!({"groups": []})),
            ],
            gone("/Groups/{g}"),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// Case-only renames: userName and group displayName compare
// case-insensitively for uniqueness, but what the IdP sends is what must be
// stored and answered back.

#[tokio::test]
async fn case_only_renames_are_stored() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![post(
            "/Users",
            entra_body(
                "maria.garcia@contoso.com",
                "Maria",
                "Garcia",
                "9d1c7f4e-2b3a-4c5d-8e6f-7a8b9c0d1e2f",
            ),
        )
        .bind("manager")])
        .await;

    let rows = vec![
        row(
            "full PUT changing only the case of the login",
            Idp::Okta,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({"userName": "Kenji.Tanaka@example.com"})),
            ],
            read(
                "/Users/{id}",
                json!({"userName": "Kenji.Tanaka@example.com"}),
            ),
        ),
        row(
            "Replace userName with a case variant of itself",
            Idp::Entra,
            vec![
                entra_user(),
                patch(
                    "/Users/{id}",
                    json!([{"op": "Replace", "path": "userName", "value": "Ana.Souza@contoso.com"}]),
                ),
            ],
            read("/Users/{id}", json!({"userName": "Ana.Souza@contoso.com"})),
        ),
        row(
            "renames a group to a case variant of its own name",
            Idp::Okta,
            vec![
                group("Design guild", &[]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "replace", "value": {"id": "{g}", "displayName": "Design Guild"}}]),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Design Guild"})),
        ),
        row(
            "a wizard app's PUT changing only the case of a group name",
            Idp::OktaAiw,
            vec![
                group("Design guild", &[]),
                put(
                    "/Groups/{g}",
                    json!({"schemas": [GROUP], "id": "{g}", "displayName": "Design Guild", "members": []}),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Design Guild"})),
        ),
        row(
            "Replace displayName with a case variant of itself",
            Idp::Entra,
            vec![
                group("Finance approvers", &[]),
                patch(
                    "/Groups/{g}",
                    json!([{"op": "Replace", "path": "displayName", "value": "Finance Approvers"}]),
                ),
            ],
            read("/Groups/{g}", json!({"displayName": "Finance Approvers"})),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (h) Okta App Integration Wizard apps: PUT for everything.

#[tokio::test]
async fn okta_wizard_apps_send_put_for_everything() {
    let app = TestApp::spawn().await;
    let mut corpus = Corpus::new(&app);
    corpus
        .seed(vec![
            post(
                "/Users",
                okta_body(
                    "alice.nguyen@example.com",
                    "Alice",
                    "Nguyen",
                    "00u1alic3Nguy3n0h7",
                ),
            )
            .bind("alice"),
            post(
                "/Users",
                okta_body(
                    "bob.okafor@example.com",
                    "Bob",
                    "Okafor",
                    "00u2b0bOkaf0r0h7",
                ),
            )
            .bind("bob"),
            group("Platform", &[]).bind("platform"),
        ])
        .await;
    let group_put = |name: &str, members: &[(&str, &str)]| {
        let members: Vec<Value> = members
            .iter()
            .map(|(who, display)| json!({"value": format!("{{{who}}}"), "display": display}))
            .collect();
        put(
            "/Groups/{g}",
            json!({"schemas": [GROUP], "id": "{g}", "displayName": name, "members": members}),
        )
    };

    let rows = vec![
        row(
            "deactivates with a full PUT carrying active false",
            Idp::OktaAiw,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({"active": false})),
            ],
            read(
                "/Users/{id}",
                json!({"active": false, "userName": "kenji.tanaka@example.com", "displayName": "Kenji Tanaka",
                       "name": {"givenName": "Kenji", "familyName": "Tanaka"}, "locale": "en-US"}),
            ),
        ),
        row(
            "reactivates with a full PUT carrying active true",
            Idp::OktaAiw,
            vec![
                okta_user(),
                okta_put(json!({"active": false})),
                get("/Users/{id}"),
                okta_put(json!({"active": true})),
            ],
            read(
                "/Users/{id}",
                json!({"active": true, "externalId": "00u1k2tan8KenjiT0h7"}),
            ),
        ),
        row(
            "updates a profile with a full PUT",
            Idp::OktaAiw,
            vec![
                okta_user(),
                get("/Users/{id}"),
                okta_put(json!({"title": "Staff Engineer", "locale": "ja-JP"})),
            ],
            read(
                "/Users/{id}",
                json!({"title": "Staff Engineer", "locale": "ja-JP", "active": true}),
            ),
        ),
        row(
            "renames a group with a PUT that carries the member list",
            Idp::OktaAiw,
            vec![
                group("Design Guild", &["alice"]),
                group_put("Design Systems", &[("alice", "alice.nguyen@example.com")]),
            ],
            read(
                "/Groups/{g}",
                json!({"displayName": "Design Systems", "members": [{"value": "{alice}"}]}),
            ),
        ),
        row(
            "adds a member with a PUT of the whole list",
            Idp::OktaAiw,
            vec![
                group("Design Guild", &["alice"]),
                group_put(
                    "Design Guild",
                    &[
                        ("alice", "alice.nguyen@example.com"),
                        ("bob", "bob.okafor@example.com"),
                    ],
                ),
                read(
                    "/Users/{bob}",
                    json!({"groups": [{"value": "{g}", "display": "Design Guild"}]}),
                ),
            ],
            read(
                "/Groups/{g}",
                json!({"members": [{"value": "{alice}"}, {"value": "{bob}"}]}),
            ),
        ),
        row(
            "removes a member with a PUT of the remaining list",
            Idp::OktaAiw,
            vec![
                group("Design Guild", &["alice", "bob"]),
                group_put("Design Guild", &[("bob", "bob.okafor@example.com")]),
                read("/Users/{alice}", json!({"groups": []})),
            ],
            read("/Groups/{g}", json!({"members": [{"value": "{bob}"}]})),
        ),
        row(
            "empties a group with a PUT of an empty list",
            Idp::OktaAiw,
            vec![
                group("Design Guild", &["alice", "bob"]),
                group_put("Design Guild", &[]),
            ],
            read(
                "/Groups/{g}",
                json!({"displayName": "Design Guild", "members": []}),
            ),
        ),
        row(
            "a rename onto a taken name is a 409 and changes nothing",
            Idp::OktaAiw,
            vec![
                group("Design Guild", &["alice"]),
                group_put("Platform", &[("bob", "bob.okafor@example.com")])
                    .fails(409, Some("uniqueness")),
            ],
            read(
                "/Groups/{g}",
                json!({"displayName": "Design Guild", "members": [{"value": "{alice}"}]}),
            ),
        ),
    ];
    corpus.run(rows).await;
}

// ---------------------------------------------------------------------------
// (i) Paging.

/// Okta's pages over 250 users and 130 groups: (startIndex, itemsPerPage).
const USER_PAGES: [(u64, u64); 4] = [(1, 100), (101, 100), (201, 50), (301, 0)];
const GROUP_PAGES: [(u64, u64); 3] = [(1, 100), (101, 30), (201, 0)];

/// Walks `endpoint` page by page as Okta does, checking each page's list
/// metadata, and returns the ids in the order seen. `between` runs after
/// the first page.
async fn walk<F, Fut>(
    app: &TestApp,
    endpoint: &str,
    total: u64,
    pages: &[(u64, u64)],
    mut between: F,
) -> Vec<String>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    for (i, &(start, items)) in pages.iter().enumerate() {
        let page = app
            .get(&format!("{endpoint}?startIndex={start}&count=100"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        assert_contains(
            &page.body,
            &json!({"schemas": [LIST], "totalResults": total, "startIndex": start, "itemsPerPage": items}),
        );
        for key in ["totalResults", "startIndex", "itemsPerPage"] {
            assert!(
                page.body[key].is_u64(),
                "{key} must be a JSON integer: {}",
                page.body[key]
            );
        }
        let resources = page.body["Resources"].as_array().unwrap();
        assert_eq!(resources.len() as u64, items, "{endpoint} from {start}");
        let ids: Vec<String> = resources
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        seen.extend(ids.iter().cloned());
        if i == 0 {
            between(ids).await;
        }
    }
    seen
}

fn assert_each_once(seen: &[String], created: &[String]) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a resource appeared on two pages");
    assert_eq!(
        unique,
        created.iter().collect::<HashSet<_>>(),
        "a resource was missed"
    );
}

#[tokio::test]
async fn okta_pages_through_users_and_groups() {
    let app = TestApp::spawn().await;
    let mut users = Vec::new();
    for i in 0..250 {
        let body = okta_body(
            &format!("user{i:03}@example.com"),
            "User",
            &format!("N{i:03}"),
            &format!("00u{i:03}okta0h7"),
        );
        let reply = app.post("/Users", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        users.push(reply.body["id"].as_str().unwrap().to_string());
    }
    let mut groups = Vec::new();
    for (i, user) in users.iter().take(130).enumerate() {
        // Every tenth group has a member, so imports carry some members.
        let members = if i % 10 == 0 {
            vec![user.as_str()]
        } else {
            vec![]
        };
        groups.push(app.create_group(&format!("Team {i:03}"), &members).await);
    }

    let first = walk(&app, "/Users", 250, &USER_PAGES, |_| async {}).await;
    assert_each_once(&first, &users);

    // Okta deactivates and updates users while it pages: the order must not
    // depend on what changed.
    let second = walk(&app, "/Users", 250, &USER_PAGES, |page| {
        let app = &app;
        async move {
            for id in [&page[0], &page[99]] {
                let reply = app
                    .patch(
                        &format!("/Users/{id}"),
                        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]}),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
            }
        }
    })
    .await;
    assert_eq!(second, first, "the order moved between two walks");

    let imported = walk(&app, "/Groups", 130, &GROUP_PAGES, |page| {
        let app = &app;
        async move {
            let id = &page[50];
            let reply = app
                .patch(
                    &format!("/Groups/{id}"),
                    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"id": id, "displayName": "Renamed Mid-Import"}}]}),
                )
                .await;
            assert!(matches!(reply.status.as_u16(), 200 | 204), "{:#}", reply.body);
        }
    })
    .await;
    assert_each_once(&imported, &groups);
    let again = walk(&app, "/Groups", 130, &GROUP_PAGES, |_| async {}).await;
    assert_eq!(again, imported, "the group order moved between two walks");

    // Okta's lookup uses the same paging parameters.
    let lookup = app
        .get("/Users?filter=userName%20eq%20%22user042%40example.com%22&startIndex=1&count=100")
        .await;
    assert_contains(
        &lookup.body,
        &json!({"totalResults": 1, "startIndex": 1, "itemsPerPage": 1, "Resources": [{"id": users[42].as_str()}]}),
    );
}
