//! Access control as its users see it: the admin API under
//! `/api/v1/access` (roles, assignments, policy import/export, the change
//! record, explain, who-can), native decisions at `POST /api/v1/authorize`,
//! and Backstage's permission protocol at `/backstage/permission`. Status
//! codes and JSON bodies only; the policy engine's own tables live in
//! `crates/authz`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use roster_domain::{FixedClock, TokenScope};
use roster_server::{Application, Config};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{create_token, to_reply, Reply, TempDir, TestApp};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One user in a who-can answer: entity name, result, deciding role.
type Allowed = (&'static str, &'static str, &'static str);

/// A server on a fresh database with a clock the test moves, an admin
/// token (named `ops`) and an `authorize` token.
struct Access {
    app: TestApp,
    admin: String,
    authorize: String,
    clock: Arc<FixedClock>,
}

impl Access {
    async fn spawn() -> Access {
        Self::spawn_with(|_| {}).await
    }

    async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Access {
        let dir = TempDir::new();
        let store = roster_store::open(&format!("sqlite://{}", dir.0.join("roster.db").display()))
            .await
            .unwrap();
        Self::on(store, dir, "ops", tweak).await
    }

    /// A server on `store`; its admin token is named `admin_name` (replicas
    /// on one database need different names).
    async fn on(
        store: Arc<dyn roster_store::Store>,
        dir: TempDir,
        admin_name: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Access {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.0.clone(),
            ..Config::default()
        };
        tweak(&mut config);
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        let app = Application::build(config, store.clone(), clock.clone())
            .await
            .unwrap();
        let base = app.base_url().to_string();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let scim = create_token(&*store, &format!("idp-{suffix}"), TokenScope::Scim).await;
        let admin = create_token(&*store, admin_name, TokenScope::Admin).await;
        let authorize =
            create_token(&*store, &format!("pdp-{suffix}"), TokenScope::Authorize).await;
        Access {
            app: TestApp {
                scim: format!("{base}/scim/v2"),
                base,
                token: scim,
                client: reqwest::Client::new(),
                store,
                _dir: dir,
            },
            admin,
            authorize,
            clock,
        }
    }

    /// A request to `{base}{path}` with `token`, a body sent as is.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        to_reply(req.send().await.unwrap()).await
    }

    /// An admin API request under `/api/v1/access` with a JSON body.
    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            &format!("/api/v1/access{path}"),
            Some(&self.admin),
            &[("content-type", "application/json")],
            body.map(|b| b.to_string()),
        )
        .await
    }

    /// Creates a user; returns its id and its entity ref.
    async fn user(&self, user_name: &str) -> (String, String) {
        let id = self.app.create_user(user_name).await;
        let local = user_name.split('@').next().unwrap().to_lowercase();
        (id, format!("user:default/{local}"))
    }

    async fn assign(&self, role: &str, subject: &str) -> Value {
        let reply = self
            .api(
                Method::POST,
                "/assignments",
                Some(json!({"role": role, "subject": subject})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body
    }

    /// One native decision item, asked with the `authorize` token.
    async fn decide(&self, user: &str, permission: &str) -> Value {
        let reply = self
            .send(
                Method::POST,
                "/api/v1/authorize",
                Some(&self.authorize),
                &[("content-type", "application/json")],
                Some(
                    json!({"items": [{"id": "q", "user": user, "permission": permission}]})
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        reply.body["items"][0].clone()
    }

    async fn result(&self, user: &str, permission: &str) -> String {
        self.decide(user, permission).await["result"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn put_policy_yaml(&self, document: String) -> Reply {
        self.send(
            Method::PUT,
            "/api/v1/access/policy",
            Some(&self.admin),
            &[("content-type", "application/yaml")],
            Some(document),
        )
        .await
    }

    async fn explain(&self, user: &str, permission: &str) -> Reply {
        let body = json!({"user": user, "permission": permission});
        self.api(Method::POST, "/explain", Some(body)).await
    }

    async fn who_can(&self, permission: &str) -> Reply {
        let body = json!({"permission": permission});
        self.api(Method::POST, "/who-can", Some(body)).await
    }

    /// Asks until `user` gets `expected` for `permission`; fails after a
    /// second.
    async fn until(&self, user: &str, permission: &str, expected: &str) {
        let started = Instant::now();
        while self.result(user, permission).await != expected {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{user} still not {expected} for {permission} after a second"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn policy_json(&self) -> Value {
        let reply = self.api(Method::GET, "/policy", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        reply.body
    }
}

#[track_caller]
fn assert_error(reply: &Reply, status: StatusCode, contains: &[&str]) {
    assert_eq!(reply.status, status, "{:#}", reply.body);
    assert_eq!(
        reply.body["error"]["status"],
        status.as_u16(),
        "{:#}",
        reply.body
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    for part in contains {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

fn deactivate() -> Value {
    json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]})
}

#[tokio::test]
async fn builtin_roles_are_listed_and_custom_roles_are_validated_created_and_deleted() {
    let t = Access::spawn().await;

    let listed = t.api(Method::GET, "/roles", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let builtin: Vec<(&str, bool)> = listed.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["builtin"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        builtin,
        [("admin", true), ("member", true), ("viewer", true)]
    );

    // Every invalid role answers 400 with the problem and where it is.
    let rule = |rule: Value| json!({"rules": [rule]});
    let invalid: &[(&str, Value, &[&str])] = &[
        (
            "ops",
            rule(json!({"permissions": ["catalog..delete"], "effect": "allow"})),
            &["role.rules[0].permissions[0]", "catalog..delete"],
        ),
        (
            "ops",
            rule(
                json!({"permissions": ["catalog.entity.delete"], "effect": "allow",
                         "conditions": {"rule": "IS_FRIDAY"}}),
            ),
            &["role.rules[0].conditions", "IS_FRIDAY"],
        ),
        (
            "ops",
            rule(
                json!({"permissions": ["catalog.entity.delete"], "effect": "allow",
                         "conditions": {"anyOf": [{"rule": "IS_ENTITY_OWNER"}, {"rule": "NOPE"}]}}),
            ),
            &["role.rules[0].conditions.anyOf[1]", "NOPE"],
        ),
        (
            "ops",
            rule(json!({"permissions": ["*"], "effect": "maybe"})),
            &["role.rules[0].effect", "maybe"],
        ),
        (
            "ops",
            rule(json!({"permissions": ["*"], "action": "fly", "effect": "allow"})),
            &["role.rules[0].action", "fly"],
        ),
        (
            "ops",
            rule(json!({"permissions": [], "effect": "allow"})),
            &["role.rules[0].permissions"],
        ),
        ("admin", json!({"rules": []}), &["\"admin\"", "built-in"]),
        ("viewer", json!({"name": "viewer"}), &["built-in"]),
        (
            "ops",
            json!({"name": "other", "rules": []}),
            &["name", "path"],
        ),
        ("Ops!", json!({"rules": []}), &["role.name", "Ops!"]),
        ("ops", json!({"rules": [], "colour": "red"}), &["colour"]),
        // Once a 500: inserting the path's name panicked on a non-object.
        ("ops", json!("not an object"), &["must be a JSON object"]),
        ("ops", json!([]), &["must be a JSON object"]),
    ];
    for (name, body, contains) in invalid {
        let reply = t
            .api(Method::PUT, &format!("/roles/{name}"), Some(body.clone()))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, contains);
    }
    // Nothing above was stored.
    assert_eq!(t.api(Method::GET, "/roles", None).await.body, listed.body);

    // Created, then updated.
    let v1 = json!({"description": "Runs things", "rules": [
        {"permissions": ["catalog.entity.refresh"], "effect": "allow"}]});
    let created = t.api(Method::PUT, "/roles/ops", Some(v1)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    assert_eq!(
        created.body,
        json!({"name": "ops", "description": "Runs things", "rules": [
            {"permissions": ["catalog.entity.refresh"], "effect": "allow"}]})
    );
    let v2 = json!({"name": "ops", "rules": [
        {"permissions": ["catalog.entity.*"], "action": "delete", "effect": "allow",
         "conditions": {"rule": "IS_ENTITY_OWNER"}}]});
    let updated = t.api(Method::PUT, "/roles/ops", Some(v2)).await;
    assert_eq!(updated.status, StatusCode::OK, "{:#}", updated.body);
    assert_eq!(
        updated.body["rules"][0],
        json!({"permissions": ["catalog.entity.*"], "action": "delete", "effect": "allow",
               "conditions": {"rule": "IS_ENTITY_OWNER"}})
    );
    let got = t.api(Method::GET, "/roles/ops", None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["builtin"], false);
    assert_eq!(got.body["rules"], updated.body["rules"]);
    let names: Vec<Value> = t.api(Method::GET, "/roles", None).await.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("admin"),
            json!("member"),
            json!("viewer"),
            json!("ops")
        ]
    );

    // A role in use cannot be deleted; once unused it can, once.
    let (_, jane) = t.user("jane.doe@example.com").await;
    let assignment = t.assign("ops", &jane).await;
    assert_error(
        &t.api(Method::DELETE, "/roles/ops", None).await,
        StatusCode::CONFLICT,
        &["\"ops\"", "1 assignment"],
    );
    let id = assignment["id"].as_str().unwrap();
    assert_eq!(
        t.api(Method::DELETE, &format!("/assignments/{id}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let deletes: &[(&str, StatusCode, &[&str])] = &[
        ("ops", StatusCode::NO_CONTENT, &[]),
        ("ops", StatusCode::NOT_FOUND, &["\"ops\""]),
        ("admin", StatusCode::BAD_REQUEST, &["built-in"]),
        ("member", StatusCode::BAD_REQUEST, &["built-in"]),
        ("nope", StatusCode::NOT_FOUND, &["\"nope\""]),
    ];
    for (name, status, contains) in deletes {
        let reply = t.api(Method::DELETE, &format!("/roles/{name}"), None).await;
        if *status == StatusCode::NO_CONTENT {
            assert_eq!(reply.status, *status, "{:#}", reply.body);
            assert_eq!(reply.body, Value::Null);
        } else {
            assert_error(&reply, *status, contains);
        }
    }
    assert_error(
        &t.api(Method::GET, "/roles/nope", None).await,
        StatusCode::NOT_FOUND,
        &["nope"],
    );
}

#[tokio::test]
async fn assignments_name_directory_users_and_groups() {
    let t = Access::spawn().await;
    let (jane_id, jane) = t.user("Jane.Doe@example.com").await;
    assert_eq!(jane, "user:default/jane.doe");
    t.app.create_group("Payments Core", &[&jane_id]).await;

    let user = t.assign("member", "user:default/jane.doe").await;
    assert_eq!(user["role"], "member");
    assert_eq!(user["subject"], "user:default/jane.doe");
    assert_eq!(user["expiresAt"], Value::Null);
    assert_eq!(user["createdBy"], "token:ops");
    // The group's name is its displayName, normalised as the feed does.
    let group = t.assign("viewer", "group:default/payments_core").await;
    assert_eq!(group["subject"], "group:default/payments_core");
    // Kind and namespace may be left out; the answer names them.
    let short = t.assign("viewer", "jane.doe").await;
    assert_eq!(short["subject"], "user:default/jane.doe");
    // The feed publishes the same names.
    let feed = create_token(&*t.app.store, "feed", TokenScope::CatalogFeed).await;
    let entities = t
        .send(
            Method::GET,
            "/backstage/entities.yaml",
            Some(&feed),
            &[],
            None,
        )
        .await;
    assert_eq!(entities.status, StatusCode::OK);
    let text = entities.body.as_str().unwrap();
    assert!(text.contains("name: jane.doe"), "{text}");
    assert!(text.contains("name: payments_core"), "{text}");

    let past = "2020-01-01T00:00:00Z";
    let invalid: &[(Value, &[&str])] = &[
        (
            json!({"role": "member", "subject": "user:default/nobody"}),
            &["no user", "nobody"],
        ),
        (
            json!({"role": "member", "subject": "group:default/nobody"}),
            &["no group", "nobody"],
        ),
        (
            json!({"role": "member", "subject": "component:default/x"}),
            &["not a user or group"],
        ),
        (
            json!({"role": "member", "subject": "user:other/jane.doe"}),
            &["outside namespace"],
        ),
        (
            json!({"role": "nope", "subject": jane}),
            &["no role \"nope\""],
        ),
        (
            json!({"role": "Not A Role", "subject": jane}),
            &["not a role name"],
        ),
        (
            json!({"role": "member", "subject": jane, "expiresAt": past}),
            &["expiresAt", "in the past"],
        ),
        (
            json!({"role": "member", "subject": jane, "expiresAt": "tomorrow"}),
            &["invalid request body"],
        ),
        (json!({"role": "member"}), &["subject"]),
    ];
    for (body, contains) in invalid {
        let reply = t
            .api(Method::POST, "/assignments", Some(body.clone()))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, contains);
    }

    let listed = t.api(Method::GET, "/assignments", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let pairs: BTreeSet<(String, String)> = listed.body["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap().into(),
                a["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("member", "user:default/jane.doe"),
        ("viewer", "group:default/payments_core"),
        ("viewer", "user:default/jane.doe"),
    ]
    .iter()
    .map(|(r, s)| (r.to_string(), s.to_string()))
    .collect();
    assert_eq!(pairs, expected);

    let id = user["id"].as_str().unwrap();
    let path = format!("/assignments/{id}");
    let deleted = t.api(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:#}", deleted.body);
    assert_error(
        &t.api(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
        &[id],
    );
    assert_error(
        &t.api(Method::DELETE, "/assignments/not-a-uuid", None).await,
        StatusCode::NOT_FOUND,
        &["not-a-uuid"],
    );
    assert_eq!(
        t.api(Method::GET, "/assignments", None).await.body["assignments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The admin API needs an admin token.
    let path = "/api/v1/access/assignments";
    assert_eq!(
        t.send(Method::GET, path, None, &[], None).await.status,
        StatusCode::UNAUTHORIZED
    );
    for token in [&t.app.token, &t.authorize] {
        let reply = t.send(Method::GET, path, Some(token), &[], None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:#}", reply.body);
    }
}

const POLICY: &str = "\
roles:
  - name: payments-operator
    description: Runs the payments services
    rules:
      - permissions: [catalog.entity.refresh, catalog.entity.delete]
        effect: allow
        conditions:
          anyOf:
            - rule: IS_ENTITY_OWNER
            - rule: HAS_LABEL
              params: { label: payments }
      - permissions: [\"catalog.entity.*\"]
        action: delete
        effect: deny
        conditions: { rule: HAS_ANNOTATION, params: { annotation: roster.dev/protected } }
  - name: auditor
    rules:
      - permissions: [\"*\"]
        action: read
        effect: allow
assignments:
  - role: payments-operator
    subject: group:default/payments_core
    expiresAt: 2099-03-31T00:00:00Z
  - role: auditor
    subject: user:default/jane.doe
  - role: member
    subject: user:default/jane.doe
";

#[tokio::test]
async fn the_policy_imports_all_or_nothing_and_exports_what_re_imports() {
    let t = Access::spawn().await;
    let (jane_id, _) = t.user("jane.doe@example.com").await;
    t.app.create_group("Payments Core", &[&jane_id]).await;
    let before = t
        .api(Method::PUT, "/roles/leftover", Some(json!({"rules": []})))
        .await;
    assert_eq!(before.status, StatusCode::CREATED);

    let imported = t.put_policy_yaml(POLICY.to_owned()).await;
    assert_eq!(imported.status, StatusCode::OK, "{:#}", imported.body);
    assert_eq!(imported.body["roles"], 2);
    assert_eq!(imported.body["assignments"], 3);

    // JSON by default: the custom roles replaced, assignments as written.
    let exported = t.policy_json().await;
    let role_names: Vec<&Value> = exported["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["name"])
        .collect();
    // Custom roles export in name order.
    assert_eq!(role_names, [&json!("auditor"), &json!("payments-operator")]);
    assert_eq!(
        exported["roles"][1]["rules"][1],
        json!({"permissions": ["catalog.entity.*"], "action": "delete", "effect": "deny",
               "conditions": {"rule": "HAS_ANNOTATION", "params": {"annotation": "roster.dev/protected"}}})
    );
    assert_eq!(
        exported["assignments"],
        json!([
            {"role": "payments-operator", "subject": "group:default/payments_core", "expiresAt": "2099-03-31T00:00:00Z"},
            {"role": "auditor", "subject": "user:default/jane.doe"},
            {"role": "member", "subject": "user:default/jane.doe"},
        ])
    );
    assert_error(
        &t.api(Method::GET, "/roles/leftover", None).await,
        StatusCode::NOT_FOUND,
        &[],
    );

    // YAML on request, and it re-imports to the same policy.
    let as_yaml = t
        .send(
            Method::GET,
            "/api/v1/access/policy",
            Some(&t.admin),
            &[("accept", "application/yaml")],
            None,
        )
        .await;
    assert_eq!(as_yaml.status, StatusCode::OK);
    assert_eq!(as_yaml.headers["content-type"], "application/yaml");
    let text = as_yaml.body.as_str().unwrap().to_owned();
    assert!(text.contains("name: payments-operator"), "{text}");
    let again = t.put_policy_yaml(text).await;
    assert_eq!(again.status, StatusCode::OK, "{:#}", again.body);
    assert_eq!(t.policy_json().await, exported);
    // JSON bodies are accepted too.
    let again = t.api(Method::PUT, "/policy", Some(exported.clone())).await;
    assert_eq!(again.status, StatusCode::OK, "{:#}", again.body);
    assert_eq!(t.policy_json().await, exported);

    // One document with several problems: all of them reported, nothing
    // changed.
    let bad: &[(String, &[&str])] = &[
        (
            format!(
                "{POLICY}  - role: auditor\n    subject: user:default/ghost\n  - role: nope\n    subject: user:default/jane.doe\n  - role: auditor\n    subject: group:default/payments_core\n"
            ),
            &["assignments[3].subject", "ghost", "assignments[4].role", "\"nope\""],
        ),
        (
            format!("{POLICY}  - role: member\n    subject: jane.doe\n"),
            &["assignments[3]", "twice"],
        ),
        (
            "roles:\n  - name: admin\n  - name: x\n    rules: [{permissions: [\"a..b\"], effect: allow}]\n  - name: y\n    rules: [{permissions: [\"*\"], effect: allow, conditions: {rule: NOPE}}]\n".to_owned(),
            &["roles[0]", "built-in", "roles[1].rules[0].permissions[0]", "roles[2].rules[0].conditions", "NOPE"],
        ),
        ("roles: 12\n".to_owned(), &["not a policy document"]),
        ("assignments: []\nextra: 1\n".to_owned(), &["extra"]),
    ];
    for (document, contains) in bad {
        let reply = t.put_policy_yaml(document.clone()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, contains);
        assert_eq!(t.policy_json().await, exported, "after {document}");
    }

    // An empty document clears custom roles and assignments.
    let cleared = t.put_policy_yaml("{}".to_owned()).await;
    assert_eq!(cleared.status, StatusCode::OK, "{:#}", cleared.body);
    assert_eq!(
        t.policy_json().await,
        json!({"roles": [], "assignments": []})
    );
}

#[tokio::test]
async fn every_change_is_recorded_newest_first_with_before_and_after() {
    let t = Access::spawn().await;
    let (_, jane) = t.user("jane.doe@example.com").await;
    let rules = json!([{"permissions": ["catalog.entity.refresh"], "effect": "allow"}]);
    t.api(Method::PUT, "/roles/ops", Some(json!({"rules": rules})))
        .await;
    t.api(
        Method::PUT,
        "/roles/ops",
        Some(json!({"description": "v2", "rules": rules})),
    )
    .await;
    let assignment = t.assign("ops", &jane).await;
    let id = assignment["id"].as_str().unwrap();
    t.api(Method::DELETE, &format!("/assignments/{id}"), None)
        .await;
    t.api(Method::DELETE, "/roles/ops", None).await;
    // Refused changes are not recorded.
    t.api(Method::DELETE, "/roles/ops", None).await;
    t.api(Method::PUT, "/roles/admin", Some(json!({}))).await;

    let reply = t.api(Method::GET, "/changes", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let changes = reply.body["changes"].as_array().unwrap();
    let role_v1 = json!({"name": "ops", "rules": rules});
    let role_v2 = json!({"name": "ops", "description": "v2", "rules": rules});
    let grant = json!({"role": "ops", "subject": "user:default/jane.doe", "expiresAt": null});
    let target = format!("assignment:{id}");
    let expected = [
        ("role.delete", "role:ops", role_v2.clone(), Value::Null),
        (
            "assignment.delete",
            target.as_str(),
            Value::Null,
            Value::Null,
        ),
        (
            "assignment.create",
            target.as_str(),
            Value::Null,
            grant.clone(),
        ),
        ("role.update", "role:ops", role_v1.clone(), role_v2.clone()),
        ("role.create", "role:ops", Value::Null, role_v1),
    ];
    assert_eq!(changes.len(), expected.len(), "{:#}", reply.body);
    for (change, (action, target, before, after)) in changes.iter().zip(expected) {
        assert_eq!(change["actor"], "token:ops", "{change:#}");
        assert_eq!(change["action"], action, "{change:#}");
        assert_eq!(change["target"], target, "{change:#}");
        if action == "assignment.delete" {
            // The record names what was removed as the API showed it.
            assert_eq!(change["before"]["id"], id);
            assert_eq!(change["before"]["role"], "ops");
            assert_eq!(change["before"]["subject"], "user:default/jane.doe");
        } else {
            assert_eq!(change["before"], before, "{change:#}");
        }
        assert_eq!(change["after"], after, "{change:#}");
        assert!(change["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    }
    let seqs: Vec<u64> = changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let revisions: Vec<u64> = changes
        .iter()
        .map(|c| c["revision"].as_u64().unwrap())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] > w[1]), "{revisions:?}");

    let limited = t.api(Method::GET, "/changes?limit=2", None).await;
    assert_eq!(
        limited.body["changes"].as_array().unwrap().as_slice(),
        &changes[..2]
    );
    let twice = t.api(Method::GET, "/changes?limit=1&limit=2", None).await;
    assert_error(&twice, StatusCode::BAD_REQUEST, &["limit"]);
    for bad in ["0", "1001", "ten", "-1"] {
        let reply = t
            .api(Method::GET, &format!("/changes?limit={bad}"), None)
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            &["limit must be a number from 1 to 1000"],
        );
    }

    // An import is one change, with the whole policy before and after.
    let (_, john) = t.user("john@example.com").await;
    t.assign("viewer", &john).await;
    let put = t
        .api(
            Method::PUT,
            "/policy",
            Some(json!({"assignments": [{"role": "member", "subject": john}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    let newest = &t.api(Method::GET, "/changes?limit=1", None).await.body["changes"][0];
    assert_eq!(newest["action"], "policy.import");
    assert_eq!(newest["target"], "policy");
    assert_eq!(
        newest["before"],
        json!({"roles": [], "assignments": [{"role": "viewer", "subject": "user:default/john"}]})
    );
    assert_eq!(
        newest["after"],
        json!({"roles": [], "assignments": [{"role": "member", "subject": "user:default/john"}]})
    );
}

#[tokio::test]
async fn the_decision_api_takes_admin_and_authorize_tokens_only() {
    let t = Access::spawn().await;
    let body = json!({"items": [{"user": "user:default/x", "permission": "catalog.entity.read"}]})
        .to_string();
    let cases: &[(Option<&str>, StatusCode)] = &[
        (None, StatusCode::UNAUTHORIZED),
        (Some("not-a-token"), StatusCode::UNAUTHORIZED),
        (Some(&t.app.token), StatusCode::FORBIDDEN),
        (Some(&t.authorize), StatusCode::OK),
        (Some(&t.admin), StatusCode::OK),
    ];
    for (token, status) in cases {
        let reply = t
            .send(
                Method::POST,
                "/api/v1/authorize",
                *token,
                &[],
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, *status, "{token:?}: {:#}", reply.body);
        if *status == StatusCode::OK {
            assert_eq!(
                reply.body,
                json!({"items": [{"id": "0", "result": "DENY"}]})
            );
        } else {
            assert_eq!(reply.body["error"]["status"], status.as_u16());
        }
    }
    let unauthenticated = t
        .send(
            Method::POST,
            "/api/v1/authorize",
            None,
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        unauthenticated.headers["www-authenticate"],
        "Bearer realm=\"roster\""
    );
    let forbidden = t
        .send(
            Method::POST,
            "/api/v1/authorize",
            Some(&t.app.token),
            &[],
            Some(body),
        )
        .await;
    assert_error(&forbidden, StatusCode::FORBIDDEN, &["--scope authorize"]);

    // Malformed requests name the item and the problem.
    let bad: &[(Value, &[&str])] = &[
        (json!([]), &["`items` list"]),
        (
            json!({"items": [{"permission": "catalog.entity.read"}]}),
            &["items[0]", "`user`"],
        ),
        (
            json!({"items": [{"user": "x"}]}),
            &["items[0]", "`permission`"],
        ),
        (
            json!({"items": [{"user": "x", "permission": "a", "id": 3}]}),
            &["items[0]", "`id`"],
        ),
        (
            json!({"items": [{"user": "x", "permission": "catalog.entity.read"},
                             {"user": "x", "permission": "catalog.entity.create", "resourceRef": "component:default/a"}]}),
            &["items[1]", "basic permission"],
        ),
    ];
    for (body, contains) in bad {
        let reply = t
            .send(
                Method::POST,
                "/api/v1/authorize",
                Some(&t.authorize),
                &[],
                Some(body.to_string()),
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, contains);
    }
}

#[tokio::test]
async fn decisions_follow_roles_groups_expiry_deactivation_and_policy_changes() {
    let t = Access::spawn().await;
    let (_, nobody) = t.user("nobody@example.com").await;
    let (_, vera) = t.user("vera@example.com").await;
    let (mia_id, mia) = t.user("mia@example.com").await;
    let (nick_id, nick) = t.user("nick@example.com").await;
    let (_, tim) = t.user("tim@example.com").await;
    let (dee_id, dee) = t.user("dee@example.com").await;
    let (_, ada) = t.user("ada@example.com").await;
    // Platform ⊃ Payments ⊃ Payments Core ∋ nick; Payments ∋ mia.
    let core = t.app.create_group("Payments Core", &[&nick_id]).await;
    let payments = t.app.create_group("Payments", &[&core, &mia_id]).await;
    t.app.create_group("Platform", &[&payments]).await;
    t.app.create_group("Other", &[&mia_id]).await;

    t.assign("viewer", &vera).await;
    t.assign("member", &mia).await;
    t.assign("member", "group:default/platform").await;
    t.assign("member", &dee).await;
    t.assign("admin", &ada).await;
    let expires = t.clock.now_rfc3339_in(time::Duration::hours(1));
    let timed = t
        .api(
            Method::POST,
            "/assignments",
            Some(json!({"role": "viewer", "subject": tim, "expiresAt": expires})),
        )
        .await;
    assert_eq!(timed.status, StatusCode::CREATED, "{:#}", timed.body);
    assert_eq!(timed.body["expiresAt"], expires);

    let owner = |claims: &[&str]| {
        let mut claims = claims.to_vec();
        claims.sort_unstable();
        json!({"id": "q", "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity",
               "conditions": {"resourceType": "catalog-entity", "rule": "IS_ENTITY_OWNER",
                              "params": {"claims": claims}}})
    };
    let plain = |result: &str| json!({"id": "q", "result": result});
    let table: Vec<(&str, &str, Value)> = vec![
        (&nobody, "catalog.entity.read", plain("DENY")),
        (&vera, "catalog.entity.read", plain("ALLOW")),
        (&vera, "scaffolder.template.parameter.read", plain("ALLOW")),
        (&vera, "catalog.entity.delete", plain("DENY")),
        (&vera, "catalog.location.create", plain("DENY")),
        (&mia, "catalog.entity.read", plain("ALLOW")),
        (&mia, "catalog.location.create", plain("ALLOW")),
        (&mia, "catalog.entity.create", plain("DENY")),
        // The claims: the user and the groups they are directly in.
        (
            &mia,
            "catalog.entity.delete",
            owner(&[
                "user:default/mia",
                "group:default/other",
                "group:default/payments",
            ]),
        ),
        // Member through Platform, two levels above nick's own group.
        (
            &nick,
            "catalog.entity.refresh",
            owner(&["user:default/nick", "group:default/payments_core"]),
        ),
        (&nick, "catalog.location.analyze", plain("ALLOW")),
        (&tim, "catalog.entity.read", plain("ALLOW")),
        (&ada, "catalog.entity.delete", plain("ALLOW")),
        (&ada, "some.plugin.permission", plain("ALLOW")),
        ("user:default/ghost", "catalog.entity.read", plain("DENY")),
        ("user:other/mia", "catalog.entity.read", plain("DENY")),
        (
            "group:default/payments",
            "catalog.entity.read",
            plain("DENY"),
        ),
    ];
    for (user, permission, expected) in &table {
        let mut got = t.decide(user, permission).await;
        // The order of claims is not part of the contract.
        if let Some(claims) = got
            .pointer_mut("/conditions/params/claims")
            .and_then(Value::as_array_mut)
        {
            claims.sort_by_key(|c| c.as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(&got, expected, "{user} {permission}");
    }

    // Without a catalog to consult, a named resource is not owned.
    let named = t
        .send(
            Method::POST,
            "/api/v1/authorize",
            Some(&t.authorize),
            &[],
            Some(json!({"items": [
                {"id": "a", "user": mia, "permission": "catalog.entity.delete", "resourceRef": "component:default/x"},
                {"id": "b", "user": ada, "permission": "catalog.entity.delete", "resourceRef": "component:default/x"},
                {"id": "c", "user": vera, "permission": {"type": "basic", "name": "catalog.entity.create", "attributes": {"action": "create"}}},
            ]}).to_string()),
        )
        .await;
    assert_eq!(
        named.body,
        json!({"items": [{"id": "a", "result": "DENY"}, {"id": "b", "result": "ALLOW"}, {"id": "c", "result": "DENY"}]})
    );

    // An expired assignment no longer counts.
    t.clock.advance(time::Duration::hours(2));
    assert_eq!(t.result(&tim, "catalog.entity.read").await, "DENY");

    // Deactivation applies to the very next decision.
    assert_eq!(t.result(&dee, "catalog.entity.read").await, "ALLOW");
    let patched = t.app.patch(&format!("/Users/{dee_id}"), deactivate()).await;
    assert_eq!(patched.body["active"], false, "{:#}", patched.body);
    assert_eq!(t.result(&dee, "catalog.entity.read").await, "DENY");

    // So does a policy change, each way.
    assert_eq!(t.result(&nobody, "catalog.entity.read").await, "DENY");
    let grant = t.assign("viewer", &nobody).await;
    assert_eq!(t.result(&nobody, "catalog.entity.read").await, "ALLOW");
    let id = grant["id"].as_str().unwrap();
    t.api(Method::DELETE, &format!("/assignments/{id}"), None)
        .await;
    assert_eq!(t.result(&nobody, "catalog.entity.read").await, "DENY");
    // A group leaving the parent takes the role away from its members.
    let removed = t
        .app
        .patch(
            &format!("/Groups/{payments}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{core}\"]")}]}),
        )
        .await;
    assert!(removed.status.is_success(), "{:#}", removed.body);
    assert_eq!(t.result(&nick, "catalog.location.analyze").await, "DENY");
    // A custom role's deny wins over a built-in allow.
    assert_eq!(
        t.api(
            Method::PUT,
            "/roles/no-locations",
            Some(deny_all_locations())
        )
        .await
        .status,
        StatusCode::CREATED
    );
    t.assign("no-locations", &mia).await;
    assert_eq!(t.result(&mia, "catalog.location.create").await, "DENY");
    assert_eq!(t.result(&mia, "catalog.entity.read").await, "ALLOW");
    // Changing the role's rules changes the decision, each way, while the
    // policy's other roles stay as they were.
    let narrowed =
        json!({"rules": [{"permissions": ["catalog.location.delete"], "effect": "deny"}]});
    let put = t
        .api(Method::PUT, "/roles/no-locations", Some(narrowed))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    assert_eq!(t.result(&mia, "catalog.location.create").await, "ALLOW");
    let put = t
        .api(
            Method::PUT,
            "/roles/no-locations",
            Some(deny_all_locations()),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    assert_eq!(t.result(&mia, "catalog.location.create").await, "DENY");
    assert_eq!(t.result(&mia, "catalog.entity.read").await, "ALLOW");
}

fn deny_all_locations() -> Value {
    json!({"rules": [{"permissions": ["catalog.location.*"], "effect": "deny"}]})
}

trait ClockExt {
    fn now_rfc3339_in(&self, by: time::Duration) -> String;
}

impl ClockExt for FixedClock {
    fn now_rfc3339_in(&self, by: time::Duration) -> String {
        use roster_domain::Clock as _;
        (self.now() + by)
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }
}

#[tokio::test]
async fn explain_names_the_deciding_rule_and_who_can_lists_exactly_the_allowed_users() {
    let t = Access::spawn().await;
    let (vera_id, vera) = t.user("vera@example.com").await;
    let (mia_id, mia) = t.user("mia@example.com").await;
    let (_, ada) = t.user("ada@example.com").await;
    let (dee_id, dee) = t.user("dee@example.com").await;
    t.user("nobody@example.com").await;
    let team = t.app.create_group("Readers Team", &[&vera_id]).await;
    t.app.create_group("Readers", &[&team]).await;
    t.app.create_group("Builders", &[&mia_id]).await;
    t.assign("viewer", "group:default/readers").await;
    t.assign("member", "group:default/builders").await;
    t.assign("admin", &ada).await;
    t.assign("member", &dee).await;
    t.app.patch(&format!("/Users/{dee_id}"), deactivate()).await;

    let viewer = t.explain(&vera, "catalog.entity.read").await;
    assert_eq!(viewer.status, StatusCode::OK, "{:#}", viewer.body);
    assert_eq!(viewer.body["result"], "ALLOW");
    assert_eq!(viewer.body["reason"]["kind"], "allowed-by");
    let decided = &viewer.body["reason"]["decidedBy"];
    assert_eq!(decided["role"], "viewer");
    assert_eq!(decided["builtin"], true);
    assert_eq!(decided["rule"], 0);
    assert_eq!(
        decided["via"],
        json!({"kind": "group", "group": "group:default/readers", "depth": 2})
    );
    assert_eq!(
        viewer.body["roles"],
        json!([{"role": "viewer", "via": {"kind": "group", "group": "group:default/readers", "depth": 2}}])
    );
    let text = viewer.body["explanation"].as_str().unwrap();
    assert!(
        text.contains("rule 0 of role viewer") && text.contains("2 levels up"),
        "{text}"
    );

    let admin = t.explain(&ada, "catalog.entity.delete").await;
    assert_eq!(admin.body["result"], "ALLOW");
    assert_eq!(admin.body["reason"]["decidedBy"]["role"], "admin");
    assert_eq!(
        admin.body["reason"]["decidedBy"]["via"],
        json!({"kind": "direct"})
    );

    let member = t.explain(&mia, "catalog.entity.delete").await;
    assert_eq!(member.body["result"], "CONDITIONAL");
    assert_eq!(member.body["reason"]["kind"], "conditional");
    let allows = &member.body["reason"]["allows"];
    assert_eq!(allows[0]["role"], "member");
    assert_eq!(allows[0]["rule"], 3);
    assert_eq!(
        allows[0]["via"],
        json!({"kind": "group", "group": "group:default/builders", "depth": 1})
    );

    let kinds: &[(&str, &str, &str)] = &[
        (&vera, "catalog.entity.delete", "no-rule"),
        (&dee, "catalog.entity.read", "deactivated"),
        ("user:default/ghost", "catalog.entity.read", "unknown-user"),
    ];
    for (user, permission, kind) in kinds {
        let reply = t.explain(user, permission).await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        assert_eq!(reply.body["result"], "DENY", "{user}");
        assert_eq!(reply.body["reason"]["kind"], *kind, "{user}");
    }
    let no_catalog = t
        .api(
            Method::POST,
            "/explain",
            Some(json!({"user": mia, "permission": "catalog.entity.delete",
                                                   "resourceRef": "component:default/x"})),
        )
        .await;
    assert_error(
        &no_catalog,
        StatusCode::NOT_FOUND,
        &["component:default/x", "[backstage] url"],
    );

    let table: &[(&str, &[Allowed])] = &[
        (
            "catalog.entity.read",
            &[
                ("ada", "ALLOW", "admin"),
                ("mia", "ALLOW", "member"),
                ("vera", "ALLOW", "viewer"),
            ],
        ),
        (
            "catalog.entity.delete",
            &[("ada", "ALLOW", "admin"), ("mia", "CONDITIONAL", "member")],
        ),
        (
            "catalog.location.create",
            &[("ada", "ALLOW", "admin"), ("mia", "ALLOW", "member")],
        ),
        ("roster.nothing", &[("ada", "ALLOW", "admin")]),
    ];
    for (permission, expected) in table {
        let reply = t.who_can(permission).await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        let got: BTreeSet<(String, String, String)> = reply.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["user"].as_str().unwrap().to_owned(),
                    u["result"].as_str().unwrap().to_owned(),
                    u["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String, String)> = expected
            .iter()
            .map(|(u, r, role)| (format!("user:default/{u}"), r.to_string(), role.to_string()))
            .collect();
        assert_eq!(got, expected, "{permission}");
    }
    assert_error(
        &t.api(Method::POST, "/who-can", Some(json!({"permission": 7})))
            .await,
        StatusCode::BAD_REQUEST,
        &["permission"],
    );
}

#[tokio::test]
async fn backstage_protocol_without_a_backstage_url_is_a_503_in_backstage_shape() {
    let t = Access::spawn().await;
    let health = t
        .send(Method::GET, "/backstage/permission/health", None, &[], None)
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!({"status": "ok"}));
    let reply = t
        .send(
            Method::POST,
            "/backstage/permission/authorize",
            Some("whatever"),
            &[("content-type", "application/json")],
            Some(json!({"items": []}).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["error"]["name"], "ServiceUnavailableError");
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ROSTER_BACKSTAGE__URL"));
    assert_eq!(reply.body["response"]["statusCode"], 503);
}

#[tokio::test]
async fn backstage_protocol_refuses_bad_tokens_before_reading_the_body() {
    // A port nothing listens on: Backstage's keys can never be fetched.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let t =
        Access::spawn_with(|c| c.backstage.url = Some(format!("http://127.0.0.1:{port}"))).await;
    let (_, ada) = t.user("ada@example.com").await;
    t.assign("admin", &ada).await;

    let items = json!({"items": [{"id": "1", "permission": {"type": "basic", "name": "catalog.entity.create", "attributes": {"action": "create"}}}]}).to_string();
    let malformed = [
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ];
    for header in malformed {
        for body in [items.as_str(), "not json", "{\"items\": 3}"] {
            let reply = t
                .send(
                    Method::POST,
                    "/backstage/permission/authorize",
                    None,
                    &[
                        ("authorization", header),
                        ("content-type", "application/json"),
                    ],
                    Some(body.to_owned()),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{header} {body}: {:#}",
                reply.body
            );
            assert_eq!(
                reply.body["error"]["name"], "AuthenticationError",
                "{header}"
            );
            assert_eq!(reply.body["response"]["statusCode"], 401);
        }
    }
    // No token at all is nobody: every item is denied, and a bad body is
    // Backstage's InputError.
    let anonymous = t
        .send(
            Method::POST,
            "/backstage/permission/authorize",
            None,
            &[],
            Some(items),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::OK, "{:#}", anonymous.body);
    assert_eq!(
        anonymous.body,
        json!({"items": [{"id": "1", "result": "DENY"}]})
    );
    let bad_body = t
        .send(
            Method::POST,
            "/backstage/permission/authorize",
            None,
            &[],
            Some("{\"items\": 3}".into()),
        )
        .await;
    assert_eq!(
        bad_body.status,
        StatusCode::BAD_REQUEST,
        "{:#}",
        bad_body.body
    );
    assert_eq!(bad_body.body["error"]["name"], "InputError");
}

/// Two servers on one fresh PostgreSQL database (dropped with the first
/// element, once the test is done), or `None` when PostgreSQL is not reachable.
async fn two_replicas() -> Option<(crate::PgDatabase, Access, Access)> {
    let db = crate::fresh_postgres_database().await?;
    let replica = |admin: &'static str| {
        let url = db.to_string();
        async move {
            let store = roster_store::open(&url).await.unwrap();
            Access::on(store, TempDir::new(), admin, |_| {}).await
        }
    };
    let a = replica("ops").await;
    let b = replica("ops-b").await;
    Some((db, a, b))
}

#[tokio::test]
async fn a_policy_change_on_one_replica_reaches_decisions_on_another_within_a_second() {
    let Some((_db, a, b)) = two_replicas().await else {
        return;
    };
    let (_, jane) = a.user("jane.doe@example.com").await;
    assert_eq!(b.result(&jane, "catalog.entity.read").await, "DENY");

    let assigned = a.assign("viewer", &jane).await;
    b.until(&jane, "catalog.entity.read", "ALLOW").await;
    let id = assigned["id"].as_str().unwrap();
    let deleted = a
        .api(Method::DELETE, &format!("/assignments/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    b.until(&jane, "catalog.entity.read", "DENY").await;
    // And the other way, through an import on B.
    let put = b
        .api(
            Method::PUT,
            "/policy",
            Some(json!({"assignments": [{"role": "member", "subject": jane}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    a.until(&jane, "catalog.location.create", "ALLOW").await;
    // Both replicas record changes in the one log.
    let changes = a.api(Method::GET, "/changes", None).await.body["changes"].clone();
    let actions: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["policy.import", "assignment.delete", "assignment.create"]
    );
}

/// Replicas remember who callers are until the directory changes; another
/// replica's SCIM write must end that at once, not at some expiry.
#[tokio::test]
async fn a_directory_change_on_one_replica_reaches_decisions_on_another_within_a_second() {
    let Some((_db, a, b)) = two_replicas().await else {
        return;
    };
    // Unknown to B first (and remembered as unknown), then created on A.
    let read = "catalog.entity.read";
    let create = "catalog.location.create";
    assert_eq!(b.result("user:default/jane.doe", read).await, "DENY");
    let (jane_id, jane) = a.user("jane.doe@example.com").await;
    a.assign("viewer", &jane).await;
    b.until(&jane, read, "ALLOW").await;
    // Joining a group on A gives the group's role on B.
    assert_eq!(b.result(&jane, create).await, "DENY");
    let readers = a.app.create_group("Readers", &[&jane_id]).await;
    a.assign("member", "group:default/readers").await;
    b.until(&jane, create, "ALLOW").await;
    // Deactivated on A: denied on B, however often B has answered before.
    for _ in 0..20 {
        assert_eq!(b.result(&jane, create).await, "ALLOW");
    }
    let patched = a
        .app
        .patch(&format!("/Users/{jane_id}"), deactivate())
        .await;
    assert_eq!(patched.body["active"], false, "{:#}", patched.body);
    b.until(&jane, create, "DENY").await;
    assert_eq!(b.result(&jane, read).await, "DENY");
    // Reactivated on A, then out of the group: each reaches B.
    let active =
        json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": true}}]});
    a.app.patch(&format!("/Users/{jane_id}"), active).await;
    b.until(&jane, create, "ALLOW").await;
    let left = a
        .app
        .patch(
            &format!("/Groups/{readers}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{jane_id}\"]")}]}),
        )
        .await;
    assert!(left.status.is_success(), "{:#}", left.body);
    b.until(&jane, create, "DENY").await;
    assert_eq!(b.result(&jane, read).await, "ALLOW");
}

#[tokio::test]
async fn concurrent_changes_through_one_replica_all_land() {
    let t = Access::spawn().await;
    let mut subjects = Vec::new();
    for i in 0..30 {
        subjects.push(t.user(&format!("u{i}@example.com")).await.1);
    }
    // Once most of these answered 409: they raced for one revision and ran
    // out of retries.
    let replies = futures::future::join_all(subjects.iter().map(|subject| {
        t.api(
            Method::POST,
            "/assignments",
            Some(json!({"role": "viewer", "subject": subject})),
        )
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    }
    let listed = t.api(Method::GET, "/assignments", None).await;
    assert_eq!(listed.body["assignments"].as_array().unwrap().len(), 30);
    let changes = t.api(Method::GET, "/changes", None).await;
    assert_eq!(changes.body["changes"].as_array().unwrap().len(), 30);
    for subject in &subjects {
        assert_eq!(t.result(subject, "catalog.entity.read").await, "ALLOW");
    }
    // A bare name is a user in the default namespace.
    assert_eq!(t.result("u7", "catalog.entity.read").await, "ALLOW");
}

#[tokio::test]
async fn concurrent_changes_on_two_replicas_all_land() {
    let Some((_db, a, b)) = two_replicas().await else {
        return;
    };
    let mut subjects = Vec::new();
    for i in 0..40 {
        subjects.push(a.user(&format!("u{i}@example.com")).await.1);
    }
    // Once about one in 40 answered 409: a replica lost the race for the
    // revision five times in a row.
    let replies = futures::future::join_all(subjects.iter().enumerate().map(|(i, subject)| {
        let replica = if i % 2 == 0 { &a } else { &b };
        replica.api(
            Method::POST,
            "/assignments",
            Some(json!({"role": "viewer", "subject": subject})),
        )
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    }
    for replica in [&a, &b] {
        replica
            .until(&subjects[39], "catalog.entity.read", "ALLOW")
            .await;
        // Subject 39's write need not be the last one: a replica that sees
        // it may still be a poll (20 ms) away from the others.
        let mut listed = 0;
        for _ in 0..100 {
            let reply = replica.api(Method::GET, "/assignments", None).await;
            listed = reply.body["assignments"].as_array().unwrap().len();
            if listed == 40 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(listed, 40);
    }
    let changes = a.api(Method::GET, "/changes", None).await;
    assert_eq!(changes.body["changes"].as_array().unwrap().len(), 40);
}
