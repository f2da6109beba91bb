//! Ownership handovers (`/api/v1/handovers`) and the record of applied
//! reconcile fixes (`/api/v1/reconcile/fixes`), as an operator sees them:
//! status codes and JSON bodies.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use roster_backstage::client::{CatalogError, Deletion};
use roster_backstage::reconcile::{
    annotations, reconcile, CatalogEntity, CatalogWriter, DirectorySnapshot, ReconcileConfig,
};
use roster_domain::{SystemClock, TokenScope};
use roster_server::{Application, Config};
use serde_json::{json, Value};

use crate::{create_token, to_reply, Reply, TempDir, TestApp};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A test app whose config names a fallback owner, with an admin token.
struct Admin {
    app: TestApp,
    token: String,
}

impl Admin {
    async fn spawn(fallback_owner: Option<&str>) -> Admin {
        let dir = TempDir::new();
        let store = roster_store::open(&format!("sqlite://{}", dir.0.join("roster.db").display()))
            .await
            .unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.0.clone(),
            ..Config::default()
        };
        config.backstage.fallback_owner = fallback_owner.map(str::to_owned);
        let app = Application::build(config, store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let base = app.base_url().to_string();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let scim = create_token(&*store, "idp", TokenScope::Scim).await;
        let token = create_token(&*store, "ops", TokenScope::Admin).await;
        Admin {
            app: TestApp {
                scim: format!("{base}/scim/v2"),
                base,
                token: scim,
                client: reqwest::Client::new(),
                store,
                _dir: dir,
            },
            token,
        }
    }

    async fn api(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        let mut req = self
            .app
            .client
            .request(method, format!("{}/api/v1{path}", self.app.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        to_reply(req.send().await.unwrap()).await
    }

    async fn handover(&self, user_id: &str) -> Reply {
        self.api(Method::GET, &format!("/handovers/{user_id}"), None)
            .await
    }

    /// Publishes the directory once, which gives every user and group its
    /// Backstage name (what a successor is referred to by).
    async fn publish(&self) {
        let feed = create_token(
            &*self.app.store,
            &format!("feed-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            TokenScope::CatalogFeed,
        )
        .await;
        let reply = self
            .app
            .client
            .get(format!("{}/backstage/entities.yaml", self.app.base))
            .bearer_auth(feed)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }

    async fn create_user(&self, user_name: &str, manager: Option<&str>) -> String {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
        });
        if let Some(manager) = manager {
            body[ENTERPRISE] = json!({"manager": {"value": manager}});
        }
        let reply = self.app.post("/Users", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }
}

fn deactivate() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    })
}

#[track_caller]
fn assert_error(reply: &Reply, status: StatusCode, contains: &str) {
    assert_eq!(reply.status, status, "{:#}", reply.body);
    assert_eq!(
        reply.body["error"]["status"],
        status.as_u16(),
        "{:#}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(contains), "{message}");
}

#[tokio::test]
async fn deleting_a_user_hands_their_entities_to_their_manager() {
    let admin = Admin::spawn(Some("group:default/platform")).await;
    let boss = admin.create_user("boss@acme.example", None).await;
    let jane = admin.create_user("jane@acme.example", Some(&boss)).await;
    admin.publish().await;
    assert_eq!(
        admin.api(Method::GET, "/handovers", None).await.body,
        json!({"handovers": []})
    );

    let reply = admin.app.delete(&format!("/Users/{jane}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    let reply = admin.handover(&jane).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let body = &reply.body;
    assert_eq!(body["userId"], json!(jane));
    assert_eq!(body["userName"], "jane@acme.example");
    assert_eq!(body["entityName"], "jane");
    assert_eq!(body["entityRef"], "user:default/jane");
    assert_eq!(body["successor"], "user:default/boss");
    assert_eq!(body["successorId"], json!(boss));
    assert_eq!(body["reason"], "manager");
    assert_eq!(body["recordedBy"], "scim");
    assert!(
        body["recordedAt"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );

    let list = admin.api(Method::GET, "/handovers", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["handovers"], json!([body]));
}

#[tokio::test]
async fn deactivating_a_user_without_a_manager_hands_over_to_their_group() {
    let admin = Admin::spawn(Some("group:default/platform")).await;
    // A manager who is deactivated does not take over.
    let gone_boss = admin.create_user("old.boss@acme.example", None).await;
    let bob = admin
        .create_user("bob@acme.example", Some(&gone_boss))
        .await;
    let group = admin.app.create_group("Payments Core", &[&bob]).await;
    admin.publish().await;
    let reply = admin
        .app
        .patch(&format!("/Users/{gone_boss}"), deactivate())
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let reply = admin
        .app
        .patch(&format!("/Users/{bob}"), deactivate())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let reply = admin.handover(&bob).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["successor"], "group:default/payments_core");
    assert_eq!(reply.body["successorId"], json!(group));
    assert_eq!(reply.body["reason"], "primary-group");

    // The deactivated manager was handed over to the fallback (no manager,
    // no group); re-sending the same state records nothing new.
    let reply = admin.handover(&gone_boss).await;
    assert_eq!(reply.body["successor"], "group:default/platform");
    assert_eq!(reply.body["reason"], "fallback");
    assert_eq!(reply.body["successorId"], Value::Null);

    // An ordinary change to an active user records nothing.
    let carol = admin.create_user("carol@acme.example", None).await;
    let reply = admin
        .app
        .patch(
            &format!("/Users/{carol}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "value": {"displayName": "Carol"}}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(admin.handover(&carol).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nobody_to_hand_over_to_records_nothing() {
    let admin = Admin::spawn(None).await;
    let solo = admin.create_user("solo@acme.example", None).await;
    assert_eq!(
        admin.app.delete(&format!("/Users/{solo}")).await.status,
        StatusCode::NO_CONTENT
    );
    let reply = admin.handover(&solo).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "no handover is recorded");
}

#[tokio::test]
async fn a_manual_handover_is_kept_when_the_user_leaves() {
    let admin = Admin::spawn(None).await;
    let boss = admin.create_user("boss@acme.example", None).await;
    let jane = admin.create_user("jane@acme.example", Some(&boss)).await;
    admin.publish().await;

    let reply = admin
        .api(
            Method::PUT,
            &format!("/handovers/{jane}"),
            Some(r#"{"successor": "group:default/payments"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["successor"], "group:default/payments");
    assert_eq!(reply.body["reason"], "manual");
    assert_eq!(reply.body["recordedBy"], "ops");
    assert_eq!(reply.body["entityName"], "jane");

    // Deleting her (her manager is live) does not replace the manual choice.
    assert_eq!(
        admin.app.delete(&format!("/Users/{jane}")).await.status,
        StatusCode::NO_CONTENT
    );
    let reply = admin.handover(&jane).await;
    assert_eq!(reply.body["successor"], "group:default/payments");
    assert_eq!(reply.body["reason"], "manual");
    assert_eq!(reply.body["userName"], "jane@acme.example");

    // The user is gone, but her handover can still be changed.
    let reply = admin
        .api(
            Method::PUT,
            &format!("/handovers/{jane}"),
            Some(r#"{"successor": "user:boss"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["successor"], "user:default/boss");
    assert_eq!(reply.body["userName"], "jane@acme.example");

    // And removed.
    let path = format!("/handovers/{jane}");
    let reply = admin.api(Method::DELETE, &path, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_error(
        &admin.handover(&jane).await,
        StatusCode::NOT_FOUND,
        "no handover",
    );
    assert_error(
        &admin.api(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
        "no handover",
    );
    // A deleted user with no handover cannot get one: nothing is known of them.
    let reply = admin
        .api(
            Method::PUT,
            &path,
            Some(r#"{"successor": "user:default/boss"}"#),
        )
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "no user");
}

#[tokio::test]
async fn invalid_handover_requests_are_clear_json_errors() {
    let admin = Admin::spawn(None).await;
    let jane = admin.create_user("jane@acme.example", None).await;
    let path = format!("/handovers/{jane}");
    for (body, message) in [
        (
            r#"{"successor": "component:default/svc"}"#,
            "is not of kind user or group",
        ),
        (r#"{"successor": "jane.doe"}"#, "has no kind"),
        (r#"{"successor": "user:default/jane doe"}"#, "invalid name"),
        (r#"{"successor": "user:a/b/c"}"#, "is not an entity ref"),
        (r#"{"successor": 42}"#, "the body must be"),
        (r#"{"owner": "user:default/x"}"#, "the body must be"),
        ("not json", "the body must be"),
    ] {
        let reply = admin.api(Method::PUT, &path, Some(body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, message);
    }
    assert_error(
        &admin
            .api(
                Method::PUT,
                "/handovers/not-an-id",
                Some(r#"{"successor": "user:x"}"#),
            )
            .await,
        StatusCode::NOT_FOUND,
        "no user",
    );
    assert_error(
        &admin.handover("not-an-id").await,
        StatusCode::NOT_FOUND,
        "no handover",
    );
    // Nothing was stored by the rejected requests.
    assert_eq!(
        admin.api(Method::GET, "/handovers", None).await.body,
        json!({"handovers": []})
    );
}

#[tokio::test]
async fn handovers_and_fixes_need_an_admin_token() {
    let admin = Admin::spawn(None).await;
    for path in ["/handovers", "/handovers/x", "/reconcile/fixes"] {
        let url = format!("{}/api/v1{path}", admin.app.base);
        let anonymous = to_reply(admin.app.client.get(&url).send().await.unwrap()).await;
        assert_error(&anonymous, StatusCode::UNAUTHORIZED, "admin bearer token");
        let scim = to_reply(
            admin
                .app
                .client
                .get(&url)
                .bearer_auth(&admin.app.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(&scim, StatusCode::FORBIDDEN, "scope");
    }
}

/// Answers every catalog call: deletes find `uid-gone` already gone.
struct FakeCatalog;

impl CatalogWriter for FakeCatalog {
    async fn delete_entity_by_uid(&self, uid: &str) -> Result<Deletion, CatalogError> {
        Ok(if uid == "uid-gone" {
            Deletion::AlreadyGone
        } else {
            Deletion::Deleted
        })
    }

    async fn refresh_entity(&self, _entity_ref: &str) -> Result<(), CatalogError> {
        Ok(())
    }
}

fn ghost(name: &str, uid: &str) -> CatalogEntity {
    let mut entity = CatalogEntity {
        uid: uid.to_owned(),
        kind: "User".to_owned(),
        namespace: "default".to_owned(),
        name: name.to_owned(),
        ..CatalogEntity::default()
    };
    entity
        .annotations
        .insert(annotations::SCIM_ID.to_owned(), format!("id-{name}"));
    entity
}

#[tokio::test]
async fn applied_fixes_are_recorded_and_listed_newest_first() {
    let admin = Admin::spawn(None).await;
    let reply = admin.api(Method::GET, "/reconcile/fixes", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"fixes": []}));

    // Two ghosts in the catalog: applying deletes both.
    let catalog = vec![ghost("bob", "uid-bob"), ghost("old", "uid-gone")];
    let report = reconcile(
        &DirectorySnapshot::default(),
        &catalog,
        &ReconcileConfig::default(),
    );
    let applied = roster_server::reconciliation::apply_and_record(
        &*admin.app.store,
        &FakeCatalog,
        &report,
        "cli",
    )
    .await
    .unwrap();
    assert_eq!(applied.len(), 2);

    let reply = admin.api(Method::GET, "/reconcile/fixes", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let fixes = reply.body["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 2, "{:#}", reply.body);
    // Deletes run in entity-ref order (bob, then old); newest first.
    let strip = |fix: &Value| {
        let mut fix = fix.clone();
        assert!(fix["appliedAt"].as_str().unwrap().ends_with('Z'));
        fix.as_object_mut().unwrap().remove("appliedAt");
        fix
    };
    assert_eq!(
        strip(&fixes[0]),
        json!({"actor": "cli", "finding": "ghost-user", "entityRef": "user:default/old",
               "uid": "uid-gone", "action": "delete-entity", "outcome": "already-gone",
               "ok": true, "error": null})
    );
    assert_eq!(
        strip(&fixes[1]),
        json!({"actor": "cli", "finding": "ghost-user", "entityRef": "user:default/bob",
               "uid": "uid-bob", "action": "delete-entity", "outcome": "deleted",
               "ok": true, "error": null})
    );

    let reply = admin
        .api(Method::GET, "/reconcile/fixes?limit=1", None)
        .await;
    assert_eq!(reply.body["fixes"].as_array().unwrap().len(), 1);
    assert_eq!(reply.body["fixes"][0]["uid"], "uid-gone");
    for bad in ["0", "1001", "-1", "many"] {
        let reply = admin
            .api(Method::GET, &format!("/reconcile/fixes?limit={bad}"), None)
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "limit must be a number from 1 to 1000",
        );
    }
    let twice = admin
        .api(Method::GET, "/reconcile/fixes?limit=1&limit=2", None)
        .await;
    assert_error(&twice, StatusCode::BAD_REQUEST, "limit");
}
