//! The Backstage catalog feed, `GET /backstage/entities.yaml`, as Backstage
//! (and an operator with curl) sees it.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use roster_backstage::entity::PublishConfig;
use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, SystemClock, TokenName,
    TokenScope, User, UserAttributes, UserId, UserName,
};
use roster_server::{Application, Config};
use roster_store::Store;
use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::{create_token, to_reply, Reply, TempDir, TestApp};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const FEED: &str = "/backstage/entities.yaml";

/// A server with a SCIM token and a catalog-feed token.
struct FeedApp {
    base: String,
    scim_token: String,
    feed_token: String,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    _dir: TempDir,
}

/// A feed response: status, headers, and the body parsed into documents.
struct FeedReply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl FeedReply {
    fn etag(&self) -> String {
        self.headers
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn content_type(&self) -> String {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The YAML documents, as data.
    fn docs(&self) -> Vec<Value> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        yaml_docs(&self.text)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap()
    }
}

/// Every document in a multi-document YAML text, as JSON values.
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            serde_json::to_value(value).unwrap()
        })
        .collect()
}

impl FeedApp {
    async fn spawn() -> FeedApp {
        Self::spawn_with(PublishConfig::default()).await
    }

    async fn spawn_with(publish: PublishConfig) -> FeedApp {
        let dir = TempDir::new();
        let store = roster_store::open(&format!("sqlite://{}", dir.0.join("roster.db").display()))
            .await
            .unwrap();
        Self::spawn_on(store, dir, publish).await
    }

    async fn spawn_on(store: Arc<dyn Store>, dir: TempDir, publish: PublishConfig) -> FeedApp {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.0.clone(),
            publish,
            ..Config::default()
        };
        let app = Application::build(config, store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let base = app.base_url().to_string();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        FeedApp {
            base,
            scim_token: create_token(&*store, &format!("idp-{suffix}"), TokenScope::Scim).await,
            feed_token: create_token(
                &*store,
                &format!("backstage-{suffix}"),
                TokenScope::CatalogFeed,
            )
            .await,
            client: reqwest::Client::new(),
            store,
            _dir: dir,
        }
    }

    async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}/scim/v2{path}", self.base))
            .bearer_auth(&self.scim_token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        to_reply(req.send().await.unwrap()).await
    }

    async fn create_user(&self, body: Value) -> String {
        let mut body = body;
        body["schemas"] = json!([USER]);
        let reply = self.scim(Method::POST, "/Users", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let reply = self
            .scim(
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP], "displayName": name, "members": members})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn patch(&self, path: &str, operations: Value) {
        let reply = self
            .scim(
                Method::PATCH,
                path,
                Some(json!({"schemas": [PATCH], "Operations": operations})),
            )
            .await;
        assert!(reply.status.is_success(), "{:#}", reply.body);
    }

    async fn delete(&self, path: &str) {
        let reply = self.scim(Method::DELETE, path, None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:#}", reply.body);
    }

    /// The feed with the feed token in the query string, plus `headers`.
    async fn feed_with(&self, headers: &[(&str, &str)]) -> FeedReply {
        let mut req = self
            .client
            .get(format!("{}{FEED}", self.base))
            .query(&[("token", &self.feed_token)]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req).await
    }

    async fn feed(&self) -> FeedReply {
        self.feed_with(&[]).await
    }
}

async fn read(req: reqwest::RequestBuilder) -> FeedReply {
    let resp = req.send().await.unwrap();
    FeedReply {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// Expected documents, from YAML text with `{placeholders}` filled in.
fn expected(template: &str, values: &[(&str, &str)]) -> Vec<Value> {
    let mut text = template.to_owned();
    for (key, value) in values {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    assert!(!text.contains('{'), "unfilled placeholder in {text}");
    yaml_docs(&text)
}

fn names_of(docs: &[Value], kind: &str) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The name of the entity for the resource with this id.
fn named(docs: &[Value], id: &str) -> Option<String> {
    docs.iter()
        .find(|d| d["metadata"]["annotations"]["roster.dev/scim-id"] == id)
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
}

fn doc<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

/// A small directory: colliding email local parts, a deactivated user, a
/// user with nothing usable for a name, a nested group.
struct Directory {
    jane_a: String,
    jane_b: String,
    bob: String,
    yamada: String,
    platform: String,
    engineering: String,
}

async fn build_directory(app: &FeedApp) -> Directory {
    let jane_a = app
        .create_user(json!({
            "userName": "jane.doe@a.example", "externalId": "okta-1",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "Jane.Doe@a.example", "type": "work", "primary": true}],
            "photos": [{"value": "https://img.example/jane.png", "type": "photo"}]
        }))
        .await;
    let jane_b = app
        .create_user(json!({"userName": "jane.doe@b.example", "displayName": "Jane B. Doe"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@x.example", "active": false, "displayName": "Bob"}))
        .await;
    let yamada = app
        .create_user(json!({"userName": "山田@x.example", "displayName": "山田太郎"}))
        .await;
    let platform = app
        .create_group("Platform Team", &[&jane_b, &bob, &yamada])
        .await;
    let engineering = app.create_group("Engineering", &[&jane_a, &platform]).await;
    Directory {
        jane_a,
        jane_b,
        bob,
        yamada,
        platform,
        engineering,
    }
}

const DIRECTORY_FEED: &str = "
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane.doe
  namespace: default
  annotations:
    roster.dev/scim-id: {jane_a}
    roster.dev/external-id: okta-1
    roster.dev/status: active
spec:
  profile:
    displayName: Jane Doe
    email: Jane.Doe@a.example
    picture: https://img.example/jane.png
  memberOf: [group:default/engineering]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane.doe-2
  namespace: default
  annotations:
    roster.dev/scim-id: {jane_b}
    roster.dev/status: active
spec:
  profile:
    displayName: Jane B. Doe
  memberOf: [group:default/platform_team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: {yamada_name}
  namespace: default
  annotations:
    roster.dev/scim-id: {yamada}
    roster.dev/status: active
spec:
  profile:
    displayName: 山田太郎
  memberOf: [group:default/platform_team]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: platform_team
  namespace: default
  annotations:
    roster.dev/scim-id: {platform}
spec:
  type: team
  profile:
    displayName: Platform Team
  parent: group:default/engineering
  children: []
  members: [user:default/jane.doe-2, user:default/{yamada_name}]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: engineering
  namespace: default
  annotations:
    roster.dev/scim-id: {engineering}
spec:
  type: team
  profile:
    displayName: Engineering
  children: [group:default/platform_team]
  members: [user:default/jane.doe]
";

fn directory_values(d: &Directory) -> Vec<(&'static str, String)> {
    vec![
        ("jane_a", d.jane_a.clone()),
        ("jane_b", d.jane_b.clone()),
        ("yamada", d.yamada.clone()),
        ("yamada_name", format!("user-{}", &d.yamada[..8])),
        ("platform", d.platform.clone()),
        ("engineering", d.engineering.clone()),
    ]
}

fn filled<'a>(values: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    values.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn the_directory_is_published_as_backstage_entities() {
    let app = FeedApp::spawn().await;
    let d = build_directory(&app).await;
    let reply = app.feed().await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.content_type(), "application/yaml; charset=utf-8");
    assert!(reply
        .text
        .starts_with("---\napiVersion: backstage.io/v1alpha1\n"));
    let values = directory_values(&d);
    assert_eq!(reply.docs(), expected(DIRECTORY_FEED, &filled(&values)));
    // The deactivated user is nowhere: not an entity, not a member.
    assert!(!reply.text.contains(&d.bob), "{}", reply.text);
    assert!(!reply.text.contains("bob"), "{}", reply.text);

    // The names were persisted, and a second read is the same feed.
    assert_eq!(
        app.store
            .entity_name(MemberKind::User, d.jane_b.parse().unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some("jane.doe-2")
    );
    assert_eq!(app.feed().await.text, reply.text);
}

#[tokio::test]
async fn renames_never_change_a_published_name() {
    let app = FeedApp::spawn().await;
    let d = build_directory(&app).await;
    let before = app.feed().await.docs();

    // Everything a name was derived from changes.
    app.patch(
        &format!("/Users/{}", d.jane_a),
        json!([{"op": "replace", "value": {
            "userName": "janet.smith@c.example", "displayName": "Janet Smith",
            "emails": [{"value": "janet.smith@c.example", "primary": true}]
        }}]),
    )
    .await;
    app.patch(
        &format!("/Groups/{}", d.engineering),
        json!([{"op": "Replace", "path": "displayName", "value": "Eng & Ops"}]),
    )
    .await;
    let after = app.feed().await.docs();
    assert_eq!(names_of(&after, "User"), names_of(&before, "User"));
    assert_eq!(names_of(&after, "Group"), names_of(&before, "Group"));
    let jane = doc(&after, "User", "jane.doe");
    assert_eq!(
        jane["metadata"]["annotations"]["roster.dev/scim-id"],
        d.jane_a.as_str()
    );
    assert_eq!(jane["spec"]["profile"]["displayName"], "Janet Smith");
    assert_eq!(jane["spec"]["profile"]["email"], "janet.smith@c.example");
    let eng = doc(&after, "Group", "engineering");
    assert_eq!(eng["spec"]["profile"]["displayName"], "Eng & Ops");

    // A newcomer with the same local part takes the next free number...
    let jane_c = app
        .create_user(json!({"userName": "Jane.Doe@d.example"}))
        .await;
    let docs = app.feed().await.docs();
    assert_eq!(named(&docs, &jane_c).as_deref(), Some("jane.doe-3"));
    // ...and a name freed by a delete goes to the next one who needs it.
    app.delete(&format!("/Users/{}", d.jane_b)).await;
    let jane_e = app
        .create_user(json!({"userName": "jane.doe@e.example"}))
        .await;
    let docs = app.feed().await.docs();
    assert_eq!(named(&docs, &jane_c).as_deref(), Some("jane.doe-3"));
    assert_eq!(named(&docs, &jane_e).as_deref(), Some("jane.doe-2"));
    assert_eq!(named(&docs, &d.jane_b), None);
    // The group that lost a member says so.
    let platform = doc(&docs, "Group", "platform_team");
    assert_eq!(
        platform["spec"]["members"],
        json!([format!("user:default/user-{}", &d.yamada[..8])])
    );
}

#[tokio::test]
async fn deactivated_users_can_be_kept_and_labelled() {
    let app = FeedApp::spawn_with(PublishConfig {
        include_deactivated: true,
        namespace: roster_backstage::entity::Namespace::parse("acme").unwrap(),
        group_type: roster_backstage::entity::GroupType::parse("business-unit").unwrap(),
        ..PublishConfig::default()
    })
    .await;
    let bob = app
        .create_user(json!({"userName": "bob@x.example", "active": false, "externalId": "0042"}))
        .await;
    let ann = app.create_user(json!({"userName": "ann@x.example"})).await;
    let team = app.create_group("Team", &[&bob, &ann]).await;
    let docs = app.feed().await.docs();
    assert_eq!(
        docs,
        expected(
            "
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: bob
  namespace: acme
  labels:
    roster.dev/status: deactivated
  annotations:
    roster.dev/scim-id: {bob}
    roster.dev/external-id: '0042'
    roster.dev/status: deactivated
spec:
  memberOf: [group:acme/team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ann
  namespace: acme
  annotations:
    roster.dev/scim-id: {ann}
    roster.dev/status: active
spec:
  memberOf: [group:acme/team]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team
  namespace: acme
  annotations:
    roster.dev/scim-id: {team}
spec:
  type: business-unit
  profile:
    displayName: Team
  children: []
  members: [user:acme/bob, user:acme/ann]
",
            &[("bob", &bob), ("ann", &ann), ("team", &team)]
        )
    );

    // Reactivated: the label goes, the status annotation flips.
    app.patch(
        &format!("/Users/{bob}"),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    let docs = app.feed().await.docs();
    let bob_doc = doc(&docs, "User", "bob");
    assert!(bob_doc["metadata"].get("labels").is_none());
    assert_eq!(
        bob_doc["metadata"]["annotations"]["roster.dev/status"],
        "active"
    );
}

#[tokio::test]
async fn the_user_name_strategy_uses_the_whole_user_name() {
    let app = FeedApp::spawn_with(PublishConfig {
        name_strategy: roster_backstage::names::NameStrategy::UserName,
        ..PublishConfig::default()
    })
    .await;
    app.create_user(json!({"userName": "Jane.Doe+ops@Acme.example"}))
        .await;
    app.create_user(json!({"userName": "jane.doe@a.example"}))
        .await;
    let docs = app.feed().await.docs();
    assert_eq!(
        names_of(&docs, "User"),
        ["jane.doe_ops_acme.example", "jane.doe_a.example"]
    );
}

#[tokio::test]
async fn json_is_the_same_entities_in_an_array() {
    let app = FeedApp::spawn().await;
    let d = build_directory(&app).await;
    let yaml = app.feed().await;
    let json = app.feed_with(&[("accept", "application/json")]).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.content_type(), "application/json");
    assert_eq!(json.json(), Value::Array(yaml.docs()));
    assert_eq!(
        json.json(),
        Value::Array(expected(DIRECTORY_FEED, &filled(&directory_values(&d))))
    );
    assert_ne!(
        json.etag(),
        yaml.etag(),
        "each representation has its own tag"
    );
    assert_eq!(json.headers.get("vary").unwrap(), "accept");

    // An empty directory is an empty feed.
    let empty = FeedApp::spawn().await;
    assert_eq!(empty.feed().await.text, "");
    assert_eq!(
        empty
            .feed_with(&[("accept", "application/json")])
            .await
            .json(),
        json!([])
    );
}

/// Checks that `reply` is a full body under a tag not seen before.
#[track_caller]
fn changed(seen: &mut Vec<String>, what: &str, reply: FeedReply) -> FeedReply {
    assert_eq!(reply.status, StatusCode::OK, "{what}");
    let tag = reply.etag();
    assert!(!seen.contains(&tag), "{what} kept an old ETag");
    seen.push(tag);
    reply
}

#[tokio::test]
async fn unchanged_directories_answer_304_and_every_change_a_new_etag() {
    let app = FeedApp::spawn().await;
    let d = build_directory(&app).await;
    let first = app.feed().await;
    let etag = first.etag();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(
        first.headers.get("cache-control").unwrap(),
        "private, no-cache"
    );

    let not_modified = app.feed_with(&[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.text, "");
    assert_eq!(not_modified.etag(), etag);
    // Stale tags get the body.
    let stale = app.feed_with(&[("if-none-match", "W/\"0000\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.text, first.text);

    let mut seen = vec![etag];

    let carol = app
        .create_user(json!({"userName": "carol@x.example"}))
        .await;
    let last = seen.last().unwrap().clone();
    let after = changed(
        &mut seen,
        "creating a user",
        app.feed_with(&[("if-none-match", &last)]).await,
    );
    assert!(names_of(&after.docs(), "User").contains(&"carol".to_owned()));

    app.patch(
        &format!("/Users/{carol}"),
        json!([{"op": "replace", "path": "displayName", "value": "Carol"}]),
    )
    .await;
    changed(&mut seen, "a PATCH", app.feed().await);

    app.patch(
        &format!("/Groups/{}", d.engineering),
        json!([{"op": "add", "path": "members", "value": [{"value": carol}]}]),
    )
    .await;
    let after = changed(&mut seen, "adding a member", app.feed().await);
    assert_eq!(
        doc(&after.docs(), "User", "carol")["spec"]["memberOf"],
        json!(["group:default/engineering"])
    );

    app.patch(
        &format!("/Groups/{}", d.engineering),
        json!([{"op": "remove", "path": format!("members[value eq \"{carol}\"]")}]),
    )
    .await;
    changed(&mut seen, "removing a member", app.feed().await);

    app.patch(
        &format!("/Users/{}", d.jane_a),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    let after = changed(&mut seen, "deactivating a user", app.feed().await);
    assert!(!names_of(&after.docs(), "User").contains(&"jane.doe".to_owned()));
    assert_eq!(
        doc(&after.docs(), "Group", "engineering")["spec"]["members"],
        json!([])
    );

    app.delete(&format!("/Users/{carol}")).await;
    changed(&mut seen, "deleting a user", app.feed().await);
    app.delete(&format!("/Groups/{}", d.platform)).await;
    let after = changed(&mut seen, "deleting a group", app.feed().await);
    assert_eq!(
        doc(&after.docs(), "Group", "engineering")["spec"]["children"],
        json!([])
    );

    // And with nothing changed, the last tag still holds.
    let last = seen.last().unwrap().clone();
    assert_eq!(
        app.feed_with(&[("if-none-match", &last)]).await.status,
        StatusCode::NOT_MODIFIED
    );
}

#[tokio::test]
async fn only_a_catalog_feed_token_opens_the_feed() {
    let app = FeedApp::spawn().await;
    app.create_user(json!({"userName": "ann@x.example"})).await;
    let url = format!("{}{FEED}", app.base);
    let get = || app.client.get(&url);

    // The feed token, in the query string (Backstage) or a header (curl).
    let ok = read(get().query(&[("token", &app.feed_token)])).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.docs().len(), 1);
    let ok = read(get().bearer_auth(&app.feed_token)).await;
    assert_eq!(ok.status, StatusCode::OK);

    let json_error = |reply: &FeedReply, status: StatusCode| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.content_type(), "application/json");
        let body: Value = serde_json::from_str(&reply.text).unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    };
    // A SCIM token is a valid token of the wrong scope.
    json_error(
        &read(get().query(&[("token", &app.scim_token)])).await,
        StatusCode::FORBIDDEN,
    );
    json_error(
        &read(get().bearer_auth(&app.scim_token)).await,
        StatusCode::FORBIDDEN,
    );
    // No token, an unknown one, an empty one.
    for reply in [
        read(get()).await,
        read(get().query(&[("token", "not-a-token")])).await,
        read(get().bearer_auth("not-a-token")).await,
        read(get().query(&[("token", "")])).await,
    ] {
        json_error(&reply, StatusCode::UNAUTHORIZED);
        assert!(reply.headers.get("www-authenticate").is_some());
    }
    // A revoked feed token stops working (after the auth cache's few
    // seconds, so revoke one that was never used).
    let spare = create_token(&*app.store, "spare", TokenScope::CatalogFeed).await;
    app.store
        .revoke_token(
            &TokenName::parse("spare").unwrap(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    json_error(
        &read(get().query(&[("token", &spare)])).await,
        StatusCode::UNAUTHORIZED,
    );
    // And a feed token does not open SCIM.
    let scim = to_reply(
        app.client
            .get(format!("{}/scim/v2/Users", app.base))
            .bearer_auth(&app.feed_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    scim.assert_scim_error(403, None);
}

/// Log lines written while the test runs, for checking what reaches them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_token_never_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The server's side only: the test's own HTTP client logs URLs.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            "roster_server=trace,roster_store=trace,tower_http=trace,axum=trace,sqlx=debug",
        )
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // This thread only: the server runs on the test's single-threaded
    // runtime, so its request spans and events land here. While only one
    // dispatcher exists, tracing caches a callsite's interest from whichever
    // thread hits it first (often another test's, with no subscriber), which
    // would silence it here too; a second, idle one makes it ask each time.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = FeedApp::spawn().await;
    app.create_user(json!({"userName": "ann@x.example"})).await;
    assert_eq!(app.feed().await.status, StatusCode::OK);
    let wrong = read(
        app.client
            .get(format!("{}{FEED}", app.base))
            .query(&[("token", "wrong-secret-value")]),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(FEED), "the request is logged: {logs}");
    assert!(
        !logs.contains(&app.feed_token),
        "the feed token leaked: {logs}"
    );
    assert!(
        !logs.contains("wrong-secret-value"),
        "a presented token leaked: {logs}"
    );
    assert!(!logs.contains("token="), "{logs}");
}

fn direct_user(i: usize, active: bool) -> User {
    let mut attributes =
        UserAttributes::with_user_name(UserName::parse(format!("user{i:05}@example.com")).unwrap());
    attributes.display_name = Some(format!("User {i}"));
    attributes.active = (!active).then_some(false);
    User {
        id: UserId::new_random(),
        meta: Meta::new(time::OffsetDateTime::now_utc()),
        attributes,
    }
}

#[tokio::test]
async fn the_whole_directory_is_streamed_however_large() {
    const USERS: usize = 2_500;
    const GROUPS: usize = 30;
    let app = FeedApp::spawn().await;
    // Straight into the store, unnamed, as after an upgrade.
    let users: Vec<User> = (0..USERS).map(|i| direct_user(i, i % 50 != 0)).collect();
    for chunk in users.chunks(250) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|u| {
                let store = app.store.clone();
                tokio::spawn(async move { store.insert_user(&u).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    for g in 0..GROUPS {
        let group = Group {
            id: GroupId::new_random(),
            meta: Meta::new(time::OffsetDateTime::now_utc()),
            attributes: GroupAttributes {
                display_name: DisplayName::parse(format!("Group {g}")).unwrap(),
                external_id: None,
            },
        };
        let members: Vec<Member> = users
            .iter()
            .skip(g)
            .step_by(GROUPS)
            .map(|u| Member {
                id: u.id.as_uuid(),
                kind: MemberKind::User,
                display: None,
            })
            .collect();
        app.store.insert_group(&group, &members).await.unwrap();
    }
    let inactive = USERS / 50;

    let reply = app.feed().await;
    let docs = reply.docs();
    let user_names = names_of(&docs, "User");
    assert_eq!(user_names.len(), USERS - inactive);
    assert_eq!(names_of(&docs, "Group").len(), GROUPS);
    // Named oldest first, from the email local part.
    assert_eq!(user_names[0], "user00001");
    assert_eq!(
        user_names[user_names.len() - 1],
        format!("user{:05}", USERS - 1)
    );
    let distinct: std::collections::HashSet<&String> = user_names.iter().collect();
    assert_eq!(distinct.len(), user_names.len());
    // Both sides of every membership agree.
    let members: usize = docs
        .iter()
        .filter(|d| d["kind"] == "Group")
        .map(|d| d["spec"]["members"].as_array().unwrap().len())
        .sum();
    let member_of: usize = docs
        .iter()
        .filter(|d| d["kind"] == "User")
        .map(|d| d["spec"]["memberOf"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, USERS - inactive);
    assert_eq!(member_of, members);
    // It came in several chunks of one body, and JSON holds the same.
    assert!(reply.text.len() > 256 * 1024, "{}", reply.text.len());
    let json = app
        .feed_with(&[("accept", "application/json")])
        .await
        .json();
    assert_eq!(json.as_array().unwrap().len(), USERS - inactive + GROUPS);
}

#[tokio::test]
async fn replicas_agree_on_names() {
    let Some(url) = crate::fresh_postgres_database().await else {
        return;
    };
    let first = FeedApp::spawn_on(
        roster_store::open(&url).await.unwrap(),
        TempDir::new(),
        PublishConfig::default(),
    )
    .await;
    let second = FeedApp::spawn_on(
        roster_store::open(&url).await.unwrap(),
        TempDir::new(),
        PublishConfig::default(),
    )
    .await;
    for i in 0..40 {
        // Twenty pairs whose local parts collide.
        first
            .create_user(json!({"userName": format!("dev{}@{}.example", i / 2, i % 2)}))
            .await;
    }
    // Both replicas name at once.
    let (a, b) = tokio::join!(first.feed(), second.feed());
    let (a, b) = (a.docs(), b.docs());
    let names = names_of(&a, "User");
    assert_eq!(names.len(), 40);
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), 40, "{names:?}");
    // Whichever finished naming first, both serve the same names.
    assert_eq!(names_of(&b, "User"), names);
    assert_eq!(first.feed().await.text, second.feed().await.text);
    // A TestApp on the same database sees the same directory.
    let third = TestApp::spawn_with(roster_store::open(&url).await.unwrap(), TempDir::new()).await;
    assert_eq!(third.get("/Users?count=0").await.body["totalResults"], 40);
}
