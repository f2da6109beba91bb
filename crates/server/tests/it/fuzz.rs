//! Property tests: random and mutated input thrown at the live server over
//! HTTP. Whatever arrives, the server answers (never a dropped connection),
//! never with a 5xx, every 4xx is a SCIM error document (RFC 7644 §3.12),
//! and a rejected write leaves the directory exactly as it was.
//!
//! Inputs start from corpora of valid requests (filters, the PATCH operations
//! Okta and Entra send, full user and group documents) and are mutated, so
//! most cases get past the first check and reach the code behind it.
//!
//! Each property runs one server for all its cases. Proptest's closures are
//! synchronous, so the server lives on a static multi-thread runtime that
//! keeps running between cases, and each case enters it with `block_on`.
//! Set `PROPTEST_CASES` for a longer run.

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::{Reply, TestApp};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

// ----- harness -------------------------------------------------------------

/// The runtime every property's server and requests run on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Runs `test` on `cases` inputs from `strategy` (or `PROPTEST_CASES`),
/// shrinking a failure to a minimal input before reporting it.
fn check<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(err) = runner.run(&strategy, test) {
        panic!("{err}");
    }
}

/// The ids a property's requests aim at.
struct Fixture {
    app: TestApp,
    /// A user that is a member of `group`.
    user: String,
    /// A second user, a member candidate.
    other_user: String,
    group: String,
    /// A second group, nested in `group`.
    other_group: String,
    /// Answers below 400 and answers of 400 and above, to show the cases
    /// exercised both outcomes.
    tally: [AtomicUsize; 2],
}

impl Fixture {
    /// Fails if every case got the same kind of answer: then the inputs no
    /// longer reach the code they are meant to (say, every request got 401).
    fn assert_both_outcomes(&self) {
        let [accepted, rejected] = [0, 1].map(|i| self.tally[i].load(Ordering::Relaxed));
        assert!(
            accepted > 0 && rejected > 0,
            "{accepted} accepted, {rejected} rejected"
        );
    }
}

/// A server with a few rich users and groups, so filters, projections and
/// PATCH paths have something to work on.
async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let reply = app
            .post("/Users", full_user(&format!("seed{i}@example.com")))
            .await;
        assert_eq!(reply.status.as_u16(), 201, "{:#}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    let other_group = app.create_group("Seed Nested", &[&ids[2]]).await;
    let group = app
        .create_group("Seed Team", &[&ids[0], &other_group])
        .await;
    Fixture {
        user: ids[0].clone(),
        other_user: ids[1].clone(),
        group,
        other_group,
        app,
        tally: Default::default(),
    }
}

/// A user document with every attribute Roster knows.
fn full_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "externalId": format!("ext-{user_name}"),
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara",
                 "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "password": "t1meMa$heen",
        "emails": [{"value": user_name, "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                       "region": "CA", "postalCode": "91608", "country": "USA",
                       "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": true}],
        "entitlements": [{"value": "tour-admin"}],
        "roles": [{"value": "guide", "primary": true}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQA"}],
        ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                     "division": "Theme Park", "department": "Tour Operations",
                     "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}}
    })
}

fn full_group(display_name: &str, members: &[(&str, &str)]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|(id, kind)| json!({"value": id, "type": kind, "display": "someone"}))
        .collect();
    json!({"schemas": [GROUP], "displayName": display_name, "externalId": "ext-group", "members": members})
}

/// A request as sent, for failure messages.
struct Request {
    method: Method,
    path: String,
    body: Option<String>,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(body) = &self.body {
            write!(f, "\n{body}")?;
        }
        Ok(())
    }
}

impl Request {
    fn new(method: Method, path: impl Into<String>, body: Option<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, None)
    }

    fn is_write(&self) -> bool {
        self.method != Method::GET && !self.path.ends_with("/.search")
    }
}

/// Sends `request` and checks the answer: some HTTP answer, below 500, and a
/// SCIM error document when it is a 4xx. For writes, a 4xx must also have
/// changed nothing.
async fn send_checked(fixture: &Fixture, request: &Request) -> Result<Reply, TestCaseError> {
    let app = &fixture.app;
    let before = if request.is_write() {
        Some(app.snapshot().await)
    } else {
        None
    };
    let mut builder = app
        .client
        .request(
            request.method.clone(),
            format!("{}{}", app.scim, request.path),
        )
        .bearer_auth(&app.token);
    if let Some(body) = &request.body {
        builder = builder
            .header("content-type", "application/scim+json")
            .body(body.clone());
    }
    let response = builder.send().await.map_err(|err| {
        TestCaseError::fail(format!(
            "no HTTP answer (did a handler panic?): {err}\n{request}"
        ))
    })?;
    let reply = crate::to_reply(response).await;
    let status = reply.status.as_u16();
    fixture.tally[usize::from(status >= 400)].fetch_add(1, Ordering::Relaxed);
    prop_assert!(
        status < 500,
        "answered {status} {:#}\nto {request}",
        reply.body
    );
    if status >= 400 {
        check_scim_error(&reply, request)?;
        if let Some(before) = before {
            let after = app.snapshot().await;
            prop_assert!(
                after == before,
                "a rejected write ({status} {}) changed the directory\nrequest: {request}\nbefore: {before}\nafter: {after}",
                reply.body
            );
        }
    }
    Ok(reply)
}

fn check_scim_error(reply: &Reply, request: &Request) -> Result<(), TestCaseError> {
    let status = reply.status.as_u16();
    let content_type = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    prop_assert!(
        content_type.starts_with("application/scim+json"),
        "a {status} with content-type {content_type:?}: {:#}\nto {request}",
        reply.body
    );
    prop_assert_eq!(
        &reply.body["schemas"],
        &json!([ERROR]),
        "not a SCIM error: {:#}\nto {}",
        reply.body,
        request
    );
    prop_assert_eq!(
        &reply.body["status"],
        &json!(status.to_string()),
        "{:#}\nto {}",
        reply.body,
        request
    );
    prop_assert!(
        reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {:#}\nto {request}",
        reply.body
    );
    if let Some(scim_type) = reply.body.get("scimType") {
        const TYPES: [&str; 10] = [
            "invalidFilter",
            "tooMany",
            "uniqueness",
            "mutability",
            "invalidSyntax",
            "invalidPath",
            "noTarget",
            "invalidValue",
            "invalidVers",
            "sensitive",
        ];
        prop_assert!(
            scim_type.as_str().is_some_and(|t| TYPES.contains(&t)),
            "unknown scimType: {:#}\nto {request}",
            reply.body
        );
    }
    Ok(())
}

/// A 200 list answer is a ListResponse whose page matches `itemsPerPage`.
fn check_list(reply: &Reply, request: &Request) -> Result<(), TestCaseError> {
    if reply.status.as_u16() != 200 {
        return Ok(());
    }
    prop_assert_eq!(
        &reply.body["schemas"],
        &json!([LIST]),
        "{:#}\nto {}",
        reply.body,
        request
    );
    let items = reply.body["Resources"].as_array().map(Vec::len);
    prop_assert_eq!(
        items,
        reply.body["itemsPerPage"].as_u64().map(|n| n as usize),
        "{:#}\nto {}",
        reply.body,
        request
    );
    prop_assert!(
        reply.body["totalResults"].as_u64() >= reply.body["itemsPerPage"].as_u64(),
        "{:#}\nto {request}",
        reply.body
    );
    Ok(())
}

/// What an accepted write answered is what a read returns afterwards.
async fn check_reads_back(
    fixture: &Fixture,
    reply: &Reply,
    request: &Request,
) -> Result<(), TestCaseError> {
    let resource = if request.path.starts_with("/Users") {
        "Users"
    } else {
        "Groups"
    };
    let id = reply.body["id"].as_str().unwrap_or_default();
    let read = send_checked(fixture, &Request::get(format!("/{resource}/{id}"))).await?;
    prop_assert_eq!(read.status.as_u16(), 200, "{:#}", read.body);
    prop_assert!(
        read.body == reply.body,
        "the write answered\n{:#}\nbut a read then gave\n{:#}\nrequest: {request}",
        reply.body,
        read.body
    );
    Ok(())
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

// ----- string mutation -----------------------------------------------------

/// Pieces of syntax (and of trouble) to insert into strings.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "\"",
    "\\",
    "\\\"",
    ".",
    ":",
    " ",
    "\t",
    "\n",
    "and",
    "or",
    "not",
    " and ",
    " or ",
    "not (",
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
    " pr",
    "null",
    "true",
    "false",
    "1e999",
    "-0.0e-0",
    "123456789012345678901234567890",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\\u",
    "\u{0}",
    "urn:",
    "urn:ietf:params:scim:schemas:core:2.0:User:",
    "$ref",
    "emails[",
    "]]",
    "[[",
    ".value",
    "é",
    "😀",
    "\u{202e}",
    "\u{feff}",
    "%",
    "%00",
    "+",
    "&",
    "=",
    "#",
    "'",
    ",",
    "members[value eq \"",
    "\"]",
    "*",
    "..",
    "\r\n",
];

/// One edit of a string.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Insert(Index, String),
    Replace(Index, String),
    DuplicateToken(Index),
    DropToken(Index),
    SwapTokens(Index, Index),
    Truncate(Index),
    /// Wraps in this many parentheses (more than the parser's limit too).
    Parens(usize),
    /// Wraps in this many `not (…)`.
    Not(usize),
    /// Wraps in this many `emails[…]`.
    Brackets(usize),
    /// Repeats, joined with `and` or `or` (long inputs).
    Repeat(usize, bool),
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
        1 => "\\PC{1,3}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Delete),
        3 => (any::<Index>(), fragment()).prop_map(|(i, f)| Mutation::Insert(i, f)),
        3 => (any::<Index>(), fragment()).prop_map(|(i, f)| Mutation::Replace(i, f)),
        2 => any::<Index>().prop_map(Mutation::DuplicateToken),
        2 => any::<Index>().prop_map(Mutation::DropToken),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (1usize..100).prop_map(Mutation::Parens),
        1 => (1usize..80).prop_map(Mutation::Not),
        1 => (1usize..80).prop_map(Mutation::Brackets),
        1 => (2usize..700, any::<bool>()).prop_map(|(n, and)| Mutation::Repeat(n, and)),
    ]
}

fn mutate(input: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = input.chars().collect();
    let tokens: Vec<&str> = input.split(' ').collect();
    let join = |tokens: Vec<&str>| tokens.join(" ");
    match mutation {
        Mutation::Delete(i) if !chars.is_empty() => {
            let at = i.index(chars.len());
            chars[..at].iter().chain(&chars[at + 1..]).collect()
        }
        Mutation::Insert(i, fragment) => {
            let at = i.index(chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(fragment);
            out.extend(&chars[at..]);
            out
        }
        Mutation::Replace(i, fragment) if !chars.is_empty() => {
            let at = i.index(chars.len());
            let mut out: String = chars[..at].iter().collect();
            out.push_str(fragment);
            out.extend(&chars[at + 1..]);
            out
        }
        Mutation::DuplicateToken(i) => {
            let mut tokens = tokens;
            let at = i.index(tokens.len());
            tokens.insert(at, tokens[at]);
            join(tokens)
        }
        Mutation::DropToken(i) => {
            let mut tokens = tokens;
            tokens.remove(i.index(tokens.len()));
            join(tokens)
        }
        Mutation::SwapTokens(a, b) => {
            let mut tokens = tokens;
            let (a, b) = (a.index(tokens.len()), b.index(tokens.len()));
            tokens.swap(a, b);
            join(tokens)
        }
        Mutation::Truncate(i) => chars[..i.index(chars.len() + 1)].iter().collect(),
        Mutation::Parens(n) => format!("{}{input}{}", "(".repeat(*n), ")".repeat(*n)),
        Mutation::Not(n) => format!("{}{input}{}", "not (".repeat(*n), ")".repeat(*n)),
        Mutation::Brackets(n) => format!("{}{input}{}", "emails[".repeat(*n), "]".repeat(*n)),
        Mutation::Repeat(n, and) => vec![input; *n].join(if *and { " and " } else { " or " }),
        Mutation::Delete(_) | Mutation::Replace(..) => input.to_string(),
    }
}

/// Applies mutations in turn, keeping the result under [`MAX_MUTATED_CHARS`].
fn mutate_all(input: &str, mutations: &[Mutation]) -> String {
    mutations.iter().fold(input.to_string(), |s, m| {
        mutate(&s, m).chars().take(MAX_MUTATED_CHARS).collect()
    })
}

/// Long enough to pass every length limit the server has (a filter is at
/// most 8 KiB), short enough that repeated repetition stays cheap.
const MAX_MUTATED_CHARS: usize = 20_000;

// ----- (a) filters ---------------------------------------------------------

/// Valid filters: RFC 7644 §3.4.2.2's examples, what Okta and Entra send,
/// and a few more covering every operator and literal kind.
const FILTERS: &[&str] = &[
    r#"userName eq "a""#,
    r#"userName Eq "bjensen@example.com""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    "title pr",
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
    r#"emails[type eq "work" and value co "@x"]"#,
    r#"not (title pr) or meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"externalId eq "00u1abcd2EFGHijk3l4m""#,
    r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
    "active eq true",
    "active ne False",
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
    r#"emails[type eq "work"].value eq "seed0@example.com""#,
    r#"displayName eq "Seed Team""#,
    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
    r#"members.value eq "x" or displayName sw "Seed""#,
    r#"displayName sw "Pay" and externalId pr"#,
    r#"userName eq "\u00e9l\u00e8ve \"q\"""#,
    "name.givenName ew \"a\" or nickName eq null",
    "addresses[postalCode gt 90000 and primary eq true]",
    "meta.version eq 1.5e3",
    // Well-formed, with operand types that do not fit the attribute.
    r#"name eq "Barbara""#,
    r#"emails gt "a""#,
    r#"groups[value eq "x"] and groups.display sw "Seed""#,
    r#"meta.lastModified gt "not a date" or meta.created lt 5"#,
    "active gt true and userName eq 5",
    r#"members pr and members.display sw "seed" and meta.resourceType eq "Group""#,
];

/// Words to build filter-like token soup from.
const TOKENS: &[&str] = &[
    "userName",
    "emails",
    "emails.value",
    "members",
    "displayName",
    "meta.lastModified",
    "eq",
    "ne",
    "co",
    "sw",
    "pr",
    "gt",
    "and",
    "or",
    "not",
    "(",
    ")",
    "[",
    "]",
    "\"a\"",
    "\"\"",
    "true",
    "null",
    "42",
    "-1.5e10",
    "type",
    "value",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
];

fn filter_input() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (select(FILTERS), prop::collection::vec(mutation(), 0..4))
            .prop_map(|(f, ms)| mutate_all(f, &ms)),
        2 => (select(FILTERS), select(FILTERS), any::<bool>(), prop::collection::vec(mutation(), 0..3))
            .prop_map(|(a, b, and, ms)| mutate_all(&format!("{a} {} {b}", if and { "and" } else { "or" }), &ms)),
        2 => prop::collection::vec(select(TOKENS), 0..12).prop_map(|t| t.join(" ")),
        1 => any::<String>(),
    ]
}

#[test]
fn any_filter_gets_a_list_or_a_scim_400_alike_by_get_and_search() {
    let fixture = runtime().block_on(fixture());
    check(128, filter_input(), |filter| {
        runtime().block_on(async {
            for resource in ["/Users", "/Groups"] {
                let get = Request::get(format!(
                    "{resource}?{}",
                    query_string(&[("filter", &filter)])
                ));
                let by_get = send_checked(&fixture, &get).await?;
                check_list(&by_get, &get)?;
                if by_get.status.as_u16() == 400 {
                    prop_assert_eq!(
                        &by_get.body["scimType"],
                        &json!("invalidFilter"),
                        "{:#}\nto {}",
                        by_get.body,
                        get
                    );
                }
                let body = json!({"schemas": [SEARCH], "filter": filter}).to_string();
                let search = Request::new(Method::POST, format!("{resource}/.search"), Some(body));
                let by_search = send_checked(&fixture, &search).await?;
                check_list(&by_search, &search)?;
                // The same filter means the same thing either way.
                prop_assert_eq!(
                    by_get.status,
                    by_search.status,
                    "{}\n{:#}\nvs {}\n{:#}",
                    get,
                    by_get.body,
                    search,
                    by_search.body
                );
                prop_assert_eq!(
                    &by_get.body["totalResults"],
                    &by_search.body["totalResults"],
                    "{}",
                    search
                );
            }
            Ok(())
        })
    });
    fixture.assert_both_outcomes();
}

// ----- arbitrary JSON ------------------------------------------------------

/// Attribute names and message keys, in the spellings clients use and some
/// they should not.
const KEYS: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "userName",
    "USERNAME",
    "name",
    "givenName",
    "familyName",
    "displayName",
    "active",
    "emails",
    "value",
    "type",
    "primary",
    "display",
    "members",
    "groups",
    "meta",
    "version",
    "password",
    "op",
    "path",
    "Operations",
    "$ref",
    "manager",
    "title",
    "phoneNumbers",
    "addresses",
    "roles",
    ENTERPRISE,
    USER,
    "",
    " ",
    "😀",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "True",
    "False",
    "true",
    "work",
    "User",
    "Group",
    "direct",
    "2011-05-13T04:42:34Z",
    "not-a-date",
    "2819c223-7f76-453a-919d-413861904646",
    "seed0@example.com",
    "SEED1@EXAMPLE.COM",
    "Seed Team",
    "seed team",
    USER,
    GROUP,
    PATCH_OP,
    ENTERPRISE,
    "\u{0}",
    "\u{202e}evil",
    "é😀",
    "members[value eq \"x\"]",
    "emails[type eq \"work\"].value",
    "null",
    "1e999",
];

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(STRINGS).prop_map(str::to_string),
        2 => any::<String>(),
        1 => "[a-z]{1,8}@example\\.com",
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        4 => json_string().prop_map(Value::String),
    ]
}

/// Any JSON value, nested a few levels, plus the occasional very deep one.
fn json_value() -> impl Strategy<Value = Value> {
    let nested = json_leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    });
    prop_oneof![
        20 => nested,
        1 => (1usize..200, any::<bool>()).prop_map(|(depth, arrays)| {
            (0..depth).fold(Value::Null, |v, _| if arrays { json!([v]) } else { json!({"value": v}) })
        }),
    ]
}

// ----- structural mutation of JSON documents -------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    At(usize),
}

/// Every location in a document (the root included), as steps from the root.
fn locations(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match value {
            Value::Object(fields) => {
                for (k, v) in fields {
                    here.push(Step::Key(k.clone()));
                    walk(v, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    here.push(Step::At(i));
                    walk(v, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn at_mut<'a>(value: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

/// One structural edit of a JSON document.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets a location to another value (usually of the wrong type).
    Set(Index, Value),
    Remove(Index),
    /// Renames the key that leads to a location.
    Rename(Index, String),
    /// Changes the case of the key that leads to a location.
    Recase(Index),
    /// Wraps the value in an array.
    Wrap(Index),
    /// Adds a key to an object.
    AddKey(Index, String, Value),
    /// Duplicates an array element.
    Duplicate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), json_value()).prop_map(|(i, v)| Edit::Set(i, v)),
        3 => any::<Index>().prop_map(Edit::Remove),
        1 => (any::<Index>(), json_key()).prop_map(|(i, k)| Edit::Rename(i, k)),
        1 => any::<Index>().prop_map(Edit::Recase),
        1 => any::<Index>().prop_map(Edit::Wrap),
        2 => (any::<Index>(), json_key(), json_value()).prop_map(|(i, k, v)| Edit::AddKey(i, k, v)),
        1 => any::<Index>().prop_map(Edit::Duplicate),
    ]
}

fn apply_edit(doc: &mut Value, edit: &Edit) {
    let all = locations(doc);
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match edit {
        Edit::Set(i, v) => {
            if let Some(target) = at_mut(doc, &pick(i)) {
                *target = v.clone();
            }
        }
        Edit::Wrap(i) => {
            if let Some(target) = at_mut(doc, &pick(i)) {
                *target = Value::Array(vec![target.take()]);
            }
        }
        Edit::AddKey(i, k, v) => {
            if let Some(Value::Object(fields)) = at_mut(doc, &pick(i)) {
                fields.insert(k.clone(), v.clone());
            }
        }
        Edit::Remove(i) | Edit::Rename(i, _) | Edit::Recase(i) | Edit::Duplicate(i) => {
            let mut steps = pick(i);
            let Some(last) = steps.pop() else { return };
            let Some(parent) = at_mut(doc, &steps) else {
                return;
            };
            match (parent, last, edit) {
                (Value::Object(fields), Step::Key(k), Edit::Remove(_)) => {
                    fields.shift_remove(&k);
                }
                (Value::Object(fields), Step::Key(k), Edit::Rename(_, new)) => {
                    if let Some(v) = fields.shift_remove(&k) {
                        fields.insert(new.clone(), v);
                    }
                }
                (Value::Object(fields), Step::Key(k), Edit::Recase(_)) => {
                    if let Some(v) = fields.shift_remove(&k) {
                        fields.insert(k.to_uppercase(), v);
                    }
                }
                (Value::Array(items), Step::At(at), Edit::Remove(_)) => {
                    items.remove(at);
                }
                (Value::Array(items), Step::At(at), Edit::Duplicate(_)) => {
                    let copy = items[at].clone();
                    items.insert(at, copy);
                }
                _ => {}
            }
        }
    }
}

fn edited(mut doc: Value, edits: &[Edit]) -> Value {
    for e in edits {
        apply_edit(&mut doc, e);
    }
    doc
}

// ----- (b) PATCH -----------------------------------------------------------

/// PATCH operations Okta and Entra send to users, as templates: `{user}`
/// and `{other}` become real ids.
fn user_ops(fixture: &Fixture) -> Vec<Value> {
    let user = &fixture.user;
    let other = &fixture.other_user;
    vec![
        json!({"op": "replace", "value": {"active": false}}),
        json!({"op": "replace", "value": {"id": user, "active": true, "name": {"givenName": "Barb"}}}),
        json!({"op": "replace", "path": "name.givenName", "value": "Barbara"}),
        json!({"op": "Replace", "path": "active", "value": "False"}),
        json!({"op": "Add", "path": "title", "value": "Chief Guide"}),
        json!({"op": "remove", "path": "title"}),
        json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "work@example.com"}),
        json!({"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}),
        json!({"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Burbank"}),
        json!({"op": "remove", "path": "emails[value co \"jensen.org\"]"}),
        json!({"op": "add", "value": {"nickName": "B", "name": {"familyName": "J"}, "emails": [{"value": "b@x.org", "type": "other"}]}}),
        json!({"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": other}),
        json!({"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Rides"}),
        json!({"op": "Replace", "path": "externalId", "value": "00u1abcd"}),
        json!({"op": "replace", "path": "userName", "value": "renamed@example.com"}),
        json!({"op": "replace", "path": "displayName", "value": null}),
        json!({"op": "add", "path": "roles", "value": [{"value": "admin", "primary": "True"}]}),
    ]
}

fn group_ops(fixture: &Fixture) -> Vec<Value> {
    let (group, user, other, nested) = (
        &fixture.group,
        &fixture.user,
        &fixture.other_user,
        &fixture.other_group,
    );
    vec![
        json!({"op": "replace", "value": {"id": group, "displayName": "Seed Team Renamed"}}),
        json!({"op": "add", "path": "members", "value": [{"value": other, "display": "seed1@example.com"}]}),
        json!({"op": "remove", "path": format!("members[value eq \"{user}\"]")}),
        json!({"op": "Add", "path": "members", "value": [{"value": user}]}),
        json!({"op": "Remove", "path": "members", "value": [{"value": other}]}),
        json!({"op": "Replace", "path": "displayName", "value": "Seed Team"}),
        json!({"op": "replace", "path": "members", "value": [{"value": user}, {"value": nested, "type": "Group"}]}),
        json!({"op": "Replace", "path": "externalId", "value": "okta-group-1"}),
        json!({"op": "add", "path": "members", "value": [{"value": nested, "type": "Group"}]}),
        json!({"op": "remove", "path": "members"}),
        // A group in itself, and a cycle through the nested group.
        json!({"op": "add", "path": "members", "value": [{"value": group, "type": "Group"}]}),
        json!({"op": "add", "path": "members", "value": [{"value": nested}, {"value": group}]}),
    ]
}

/// PATCH paths to mutate (both resources' attributes, every path form).
const PATHS: &[&str] = &[
    "members",
    "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
    "members.value",
    "displayName",
    "externalId",
    "userName",
    "name.givenName",
    "name",
    "emails",
    "emails[type eq \"work\"].value",
    "emails[type eq \"work\" and primary eq true]",
    "addresses[type eq \"work\"].postalCode",
    "phoneNumbers[value co \"555\"]",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:core:2.0:User:title",
    "active",
    "meta.version",
    "id",
    "groups",
    "members[display eq \"x\"].value",
    "x509Certificates[value pr]",
];

const OP_NAMES: &[&str] = &[
    "add", "Add", "ADD", "remove", "Remove", "replace", "Replace", "replace ", "delete", "copy",
    "move", "test", "", "merge", "ädd",
];

/// How a field of an operation is changed.
#[derive(Debug, Clone)]
enum Field {
    Keep,
    Missing,
    Set(Value),
}

#[derive(Debug, Clone)]
enum PathField {
    Keep,
    Missing,
    Set(Value),
    /// A path from [`PATHS`], mutated.
    Mutated(Index, Vec<Mutation>),
    /// This operation's own path, mutated.
    MutateOwn(Vec<Mutation>),
}

#[derive(Debug, Clone)]
struct OpCase {
    template: Index,
    op: Field,
    path: PathField,
    value: Field,
    value_edits: Vec<Edit>,
    extra: Option<(String, Value)>,
    recase_keys: bool,
}

#[derive(Debug, Clone)]
enum Envelope {
    Valid,
    NoSchemas,
    Schemas(Value),
    OperationsKey(String),
    Operations(Value),
    Extra(String, Value),
    NotAnObject(Value),
}

#[derive(Debug, Clone)]
struct PatchCase {
    ops: Vec<OpCase>,
    envelope: Envelope,
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        10 => Just(Field::Keep),
        1 => Just(Field::Missing),
        3 => json_value().prop_map(Field::Set),
    ]
}

fn op_case() -> impl Strategy<Value = OpCase> {
    let op = prop_oneof![
        10 => Just(Field::Keep),
        3 => select(OP_NAMES).prop_map(|n| Field::Set(json!(n))),
        1 => Just(Field::Missing),
        1 => json_leaf().prop_map(Field::Set),
    ];
    let path = prop_oneof![
        10 => Just(PathField::Keep),
        1 => Just(PathField::Missing),
        1 => json_leaf().prop_map(PathField::Set),
        3 => (any::<Index>(), prop::collection::vec(mutation(), 0..3)).prop_map(|(i, m)| PathField::Mutated(i, m)),
        3 => prop::collection::vec(mutation(), 1..4).prop_map(PathField::MutateOwn),
    ];
    (
        any::<Index>(),
        op,
        path,
        field(),
        prop::collection::vec(edit(), 0..2),
        prop::option::weighted(0.15, (json_key(), json_value())),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(template, op, path, value, value_edits, extra, recase_keys)| OpCase {
                template,
                op,
                path,
                value,
                value_edits,
                extra,
                recase_keys,
            },
        )
}

fn patch_case() -> impl Strategy<Value = PatchCase> {
    let envelope = prop_oneof![
        12 => Just(Envelope::Valid),
        1 => Just(Envelope::NoSchemas),
        1 => json_value().prop_map(Envelope::Schemas),
        1 => select(&["operations", "OPERATIONS", "Operation", "ops", ""][..]).prop_map(|k| Envelope::OperationsKey(k.to_string())),
        1 => json_value().prop_map(Envelope::Operations),
        1 => (json_key(), json_value()).prop_map(|(k, v)| Envelope::Extra(k, v)),
        1 => json_value().prop_map(Envelope::NotAnObject),
    ];
    (prop::collection::vec(op_case(), 1..3), envelope)
        .prop_map(|(ops, envelope)| PatchCase { ops, envelope })
}

fn build_op(templates: &[Value], case: &OpCase) -> Value {
    let template = &templates[case.template.index(templates.len())];
    let mut op = template.as_object().cloned().unwrap_or_default();
    match &case.op {
        Field::Keep => {}
        Field::Missing => {
            op.remove("op");
        }
        Field::Set(v) => {
            op.insert("op".into(), v.clone());
        }
    }
    match &case.path {
        PathField::Keep => {}
        PathField::Missing => {
            op.remove("path");
        }
        PathField::Set(v) => {
            op.insert("path".into(), v.clone());
        }
        PathField::Mutated(i, ms) => {
            op.insert(
                "path".into(),
                json!(mutate_all(PATHS[i.index(PATHS.len())], ms)),
            );
        }
        PathField::MutateOwn(ms) => {
            let own = op
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            op.insert("path".into(), json!(mutate_all(&own, ms)));
        }
    }
    match &case.value {
        Field::Keep => {
            if let Some(v) = op.get_mut("value") {
                *v = edited(v.take(), &case.value_edits);
            }
        }
        Field::Missing => {
            op.remove("value");
        }
        Field::Set(v) => {
            op.insert("value".into(), v.clone());
        }
    }
    if let Some((k, v)) = &case.extra {
        op.insert(k.clone(), v.clone());
    }
    if case.recase_keys {
        op = op.into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
    }
    Value::Object(op)
}

fn build_patch(templates: &[Value], case: &PatchCase) -> String {
    let ops: Vec<Value> = case.ops.iter().map(|op| build_op(templates, op)).collect();
    let mut body: Map<String, Value> = [
        ("schemas".to_string(), json!([PATCH_OP])),
        ("Operations".to_string(), Value::Array(ops)),
    ]
    .into_iter()
    .collect();
    match &case.envelope {
        Envelope::Valid => {}
        Envelope::NoSchemas => {
            body.remove("schemas");
        }
        Envelope::Schemas(v) => {
            body.insert("schemas".into(), v.clone());
        }
        Envelope::OperationsKey(k) => {
            if let Some(ops) = body.shift_remove("Operations") {
                body.insert(k.clone(), ops);
            }
        }
        Envelope::Operations(v) => {
            body.insert("Operations".into(), v.clone());
        }
        Envelope::Extra(k, v) => {
            body.insert(k.clone(), v.clone());
        }
        Envelope::NotAnObject(v) => return v.to_string(),
    }
    Value::Object(body).to_string()
}

#[test]
fn any_patch_is_applied_or_rejected_with_a_scim_error_and_no_change() {
    let fixture = runtime().block_on(fixture());
    let users = user_ops(&fixture);
    let groups = group_ops(&fixture);
    check(
        128,
        (patch_case(), patch_case()),
        |(user_case, group_case)| {
            runtime().block_on(async {
                let user = Request::new(
                    Method::PATCH,
                    format!("/Users/{}", fixture.user),
                    Some(build_patch(&users, &user_case)),
                );
                let reply = send_checked(&fixture, &user).await?;
                if reply.status.is_success() {
                    prop_assert_eq!(
                        &reply.body["id"],
                        &json!(fixture.user),
                        "{:#}\nto {}",
                        reply.body,
                        user
                    );
                    check_reads_back(&fixture, &reply, &user).await?;
                }
                let group = Request::new(
                    Method::PATCH,
                    format!("/Groups/{}", fixture.group),
                    Some(build_patch(&groups, &group_case)),
                );
                let reply = send_checked(&fixture, &group).await?;
                // A group PATCH answers 204 unless the request asks for attributes.
                if reply.status.as_u16() == 200 {
                    prop_assert_eq!(
                        &reply.body["id"],
                        &json!(fixture.group),
                        "{:#}\nto {}",
                        reply.body,
                        group
                    );
                }
                Ok(())
            })
        },
    );
    fixture.assert_both_outcomes();
}

// ----- (c) POST and PUT bodies ---------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Target {
    CreateUser,
    ReplaceUser,
    CreateGroup,
    ReplaceGroup,
}

#[derive(Debug, Clone)]
enum Body {
    Arbitrary(Value),
    /// A full user document with this `userName`, edited.
    User(String, Vec<Edit>),
    /// A group document with this `displayName` and the fixture's members, edited.
    Group(String, Vec<Edit>),
    /// The text of a valid user (`true`) or group document, mutated as a string.
    Text(bool, Vec<Mutation>),
}

fn body() -> impl Strategy<Value = Body> {
    let user_name = prop_oneof![
        Just("seed0@example.com".to_string()),
        Just("SEED1@example.COM".to_string()),
        "[a-z]{1,6}@example\\.com",
    ];
    let group_name = prop_oneof![
        Just("Seed Team".to_string()),
        Just("seed nested".to_string()),
        "[A-Z][a-z]{1,6}",
    ];
    prop_oneof![
        2 => json_value().prop_map(Body::Arbitrary),
        4 => (user_name, prop::collection::vec(edit(), 0..4)).prop_map(|(n, e)| Body::User(n, e)),
        3 => (group_name, prop::collection::vec(edit(), 0..4)).prop_map(|(n, e)| Body::Group(n, e)),
        2 => (any::<bool>(), prop::collection::vec(mutation(), 1..4)).prop_map(|(u, m)| Body::Text(u, m)),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    select(
        &[
            Target::CreateUser,
            Target::ReplaceUser,
            Target::CreateGroup,
            Target::ReplaceGroup,
        ][..],
    )
}

fn render_body(fixture: &Fixture, body: &Body) -> String {
    let members = [
        (fixture.user.as_str(), "User"),
        (fixture.other_group.as_str(), "Group"),
    ];
    match body {
        Body::Arbitrary(v) => v.to_string(),
        Body::User(name, edits) => edited(full_user(name), edits).to_string(),
        Body::Group(name, edits) => edited(full_group(name, &members), edits).to_string(),
        Body::Text(true, ms) => mutate_all(&full_user("text@example.com").to_string(), ms),
        Body::Text(false, ms) => mutate_all(&full_group("Text", &members).to_string(), ms),
    }
}

#[test]
fn any_resource_body_is_stored_or_rejected_with_a_scim_error_and_no_change() {
    let fixture = runtime().block_on(fixture());
    check(128, (target(), body()), |(target, body)| {
        runtime().block_on(async {
            let text = render_body(&fixture, &body);
            let (method, path) = match target {
                Target::CreateUser => (Method::POST, "/Users".to_string()),
                Target::ReplaceUser => (Method::PUT, format!("/Users/{}", fixture.user)),
                Target::CreateGroup => (Method::POST, "/Groups".to_string()),
                Target::ReplaceGroup => (Method::PUT, format!("/Groups/{}", fixture.group)),
            };
            let request = Request::new(method, path, Some(text));
            let reply = send_checked(&fixture, &request).await?;
            if reply.status.is_success() {
                prop_assert!(
                    reply.body["id"].is_string(),
                    "{:#}\nto {request}",
                    reply.body
                );
                check_reads_back(&fixture, &reply, &request).await?;
            }
            Ok(())
        })
    });
    fixture.assert_both_outcomes();
}

// ----- (d) query parameters ------------------------------------------------

const PARAMS: &[&str] = &[
    "attributes",
    "excludedAttributes",
    "sortBy",
    "sortOrder",
    "startIndex",
    "count",
    "filter",
    "ATTRIBUTES",
    "Count",
    "excludedattributes",
    "startindex",
];

const ATTRIBUTE_NAMES: &[&str] = &[
    "userName",
    "name.givenName",
    "emails",
    "emails.value",
    "members",
    "members.value",
    "groups",
    "meta",
    "meta.lastModified",
    "id",
    "displayName",
    "schemas",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:core:2.0:Group:members",
    "nosuch",
    "",
    " ",
    "name.",
    ".value",
    "emails[type eq \"work\"]",
    "password",
    "USERNAME",
    "é",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "10",
    "1000",
    "1001",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999",
    "-0",
    "1e3",
    "1.5",
    "abc",
    "",
    " 7",
    "+5",
    "0x10",
    "NaN",
    "٣",
];

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(select(ATTRIBUTE_NAMES), 1..4).prop_map(|names| names.join(",")),
        3 => select(NUMBERS).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => select(&["ascending", "descending", "DESCENDING", "up", ""][..]).prop_map(str::to_string),
        1 => select(FILTERS).prop_map(str::to_string),
        1 => json_string(),
    ]
}

/// Raw query-string pieces, malformed encoding included.
const RAW_QUERY: &[&str] = &[
    "%",
    "%2",
    "%zz",
    "%ff",
    "%c3%28",
    "%00",
    "&",
    "=",
    "+",
    ";",
    "count=",
    "count=-1",
    "startIndex=0",
    "attributes=",
    "filter=",
    "filter=userName%20eq",
    "a=b=c",
    "%e2%82",
    "é",
    "[]",
];

#[derive(Debug, Clone)]
enum Query {
    Pairs(Vec<(String, String)>),
    Raw(Vec<&'static str>),
}

impl Query {
    fn render(&self) -> String {
        match self {
            Query::Pairs(pairs) => serde_urlencoded::to_string(pairs).unwrap(),
            Query::Raw(pieces) => pieces.concat(),
        }
    }
}

fn query() -> impl Strategy<Value = Query> {
    let key = prop_oneof![
        6 => select(PARAMS).prop_map(str::to_string),
        1 => json_key(),
    ];
    prop_oneof![
        5 => prop::collection::vec((key, query_value()), 0..5).prop_map(Query::Pairs),
        1 => prop::collection::vec(select(RAW_QUERY), 1..6).prop_map(Query::Raw),
    ]
}

#[test]
fn any_query_parameters_get_an_answer_or_a_scim_error_and_no_change() {
    let fixture = runtime().block_on(fixture());
    check(
        128,
        (query(), 0usize..8, "[a-z]{1,12}"),
        |(query, endpoint, word)| {
            runtime().block_on(async {
            let q = query.render();
            let (user, group) = (&fixture.user, &fixture.group);
            let request = match endpoint {
                0 => Request::get(format!("/Users?{q}")),
                1 => Request::get(format!("/Groups?{q}")),
                2 => Request::get(format!("/Users/{user}?{q}")),
                3 => Request::get(format!("/Groups/{group}?{q}")),
                // Writes with a valid body: the query alone decides.
                4 => Request::new(
                    Method::PATCH,
                    format!("/Users/{user}?{q}"),
                    Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": word}]}).to_string()),
                ),
                5 => Request::new(
                    Method::PATCH,
                    format!("/Groups/{group}?{q}"),
                    Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "externalId", "value": word}]}).to_string()),
                ),
                6 => Request::new(
                    Method::POST,
                    format!("/Users?{q}"),
                    Some(json!({"schemas": [USER], "userName": format!("{word}@query.example.com")}).to_string()),
                ),
                _ => Request::new(
                    Method::POST,
                    format!("/Groups?{q}"),
                    Some(json!({"schemas": [GROUP], "displayName": format!("Query {word}")}).to_string()),
                ),
            };
            let reply = send_checked(&fixture, &request).await?;
            if endpoint < 2 {
                check_list(&reply, &request)?;
            }
            Ok(())
        })
        },
    );
    fixture.assert_both_outcomes();
}
