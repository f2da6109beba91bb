//! Access control end to end against a real Backstage 1.45.3 backend
//! (`e2e/backstage`): Roster is Backstage's permission backend. Backstage
//! runs with `permission.enabled: true` and discovery sending the
//! `permission` plugin id to Roster (`app-config.permission.yaml`), the test
//! acts as real users with real user tokens from the test-only auth module,
//! and every decision takes the real path: catalog → Roster
//! (`POST /backstage/permission/authorize`) → catalog. No mock of Backstage
//! stands in for this test.
//!
//! Skipped (and passing) when `e2e/backstage/node_modules` is absent, `node`
//! is not on PATH, or `ROSTER_TEST_BACKSTAGE=skip`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{create_token, free_port, has_relation, repo_root, skip_reason, TempDir};

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_roster");
const STATIC_TOKEN: &str = "roster-permission-e2e-static-token";
const AUTHORIZE_ROUTE: &str = "/backstage/permission/authorize";

/// A running `roster serve` on a chosen port that knows where Backstage will
/// be; killed on drop, printing the tail of its log if the test panicked.
struct Roster {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Roster {
    fn start(data_dir: &Path, port: u16, backstage_base: &str) -> Roster {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env_remove("ROSTER_DATABASE_URL")
            .env(
                "ROSTER_LOG",
                std::env::var("ROSTER_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Roster verifies Backstage's tokens against its JWKS and reads
            // catalog entities with the static token.
            .env("ROSTER_BACKSTAGE__URL", backstage_base)
            .env("ROSTER_BACKSTAGE__TOKEN", STATIC_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("roster listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut guard = Roster {
            child,
            base: String::new(),
            log,
        };
        guard.base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("roster logged its URL");
        assert_eq!(guard.base, format!("http://127.0.0.1:{port}"));
        guard
    }

    fn log_tail(&self) -> String {
        let lines = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- roster log tail ---\n{}", self.log_tail());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Backstage backend started by `scripts/backstage.sh start` with Roster
/// as its permission backend; stopped on drop (also on panic).
struct Backstage {
    root: PathBuf,
    port: u16,
    base: String,
}

impl Backstage {
    fn start(root: &Path, port: u16, roster_base: &str, feed_url: &str) -> Backstage {
        let mut guard = Backstage {
            root: root.to_path_buf(),
            port,
            base: String::new(),
        };
        let out = Command::new("bash")
            .arg(root.join("scripts/backstage.sh"))
            .arg("start")
            .env("BACKSTAGE_PORT", port.to_string())
            .env("BACKSTAGE_STATIC_TOKEN", STATIC_TOKEN)
            .env("ROSTER_FEED_URL", feed_url)
            .env(
                "ROSTER_PERMISSION_URL",
                format!("{roster_base}/backstage/permission"),
            )
            .env_remove("BACKSTAGE_PERMISSION")
            .env("BACKSTAGE_START_TIMEOUT", "120")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "backstage.sh start failed");
        guard.base = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(guard.base, format!("http://127.0.0.1:{port}"));
        guard
    }

    fn log(&self) -> String {
        let log = self
            .root
            .join(format!("e2e/backstage/run/{}/backstage.log", self.port));
        std::fs::read_to_string(log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Backstage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- backstage log tail ---\n{}", self.log_tail());
        }
        let _ = Command::new("bash")
            .arg(self.root.join("scripts/backstage.sh"))
            .arg("stop")
            .env("BACKSTAGE_PORT", self.port.to_string())
            .status();
    }
}

/// Sends a JSON request and returns the status and the body (JSON, or the
/// text as a JSON string, or null when empty).
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Roster's SCIM and admin APIs.
struct RosterApi {
    client: reqwest::Client,
    base: String,
    scim_token: String,
    admin_token: String,
}

impl RosterApi {
    async fn create_user(&self, user_name: &str, display_name: &str) -> String {
        let (status, body) = send(
            self.client
                .post(format!("{}/scim/v2/Users", self.base))
                .bearer_auth(&self.scim_token)
                .header("content-type", "application/scim+json")
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "displayName": display_name,
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                })),
        )
        .await;
        assert_eq!(status, 201, "create user {user_name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn create_group(&self, display_name: &str, members: &[&str]) {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        let (status, body) = send(
            self.client
                .post(format!("{}/scim/v2/Groups", self.base))
                .bearer_auth(&self.scim_token)
                .header("content-type", "application/scim+json")
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": display_name,
                    "members": members,
                })),
        )
        .await;
        assert_eq!(status, 201, "create group {display_name}: {body}");
    }

    async fn deactivate_user(&self, id: &str) {
        let (status, body) = send(
            self.client
                .patch(format!("{}/scim/v2/Users/{id}", self.base))
                .bearer_auth(&self.scim_token)
                .header("content-type", "application/scim+json")
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}],
                })),
        )
        .await;
        assert_eq!(status, 200, "deactivate {id}: {body}");
        assert_eq!(body["active"], false, "{body}");
    }

    async fn assign(&self, role: &str, subject: &str) {
        let (status, body) = send(
            self.client
                .post(format!("{}/api/v1/access/assignments", self.base))
                .bearer_auth(&self.admin_token)
                .json(&json!({"role": role, "subject": subject})),
        )
        .await;
        assert_eq!(status, 201, "assign {role} to {subject}: {body}");
        assert_eq!(body["role"], role, "{body}");
        assert_eq!(body["subject"], subject, "{body}");
    }

    /// Native decisions (`POST /api/v1/authorize`): each item's result.
    async fn decide(&self, items: Value) -> Vec<String> {
        let (status, body) = send(
            self.client
                .post(format!("{}/api/v1/authorize", self.base))
                .bearer_auth(&self.admin_token)
                .json(&json!({ "items": items })),
        )
        .await;
        assert_eq!(status, 200, "authorize: {body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["result"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The sum of `roster_http_requests_total` for the authorize route, per
    /// status code.
    async fn authorize_requests(&self) -> Vec<(String, u64)> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut by_status: Vec<(String, u64)> = Vec::new();
        for line in text.lines().filter(|l| {
            l.starts_with("roster_http_requests_total{")
                && l.contains(&format!("route=\"{AUTHORIZE_ROUTE}\""))
        }) {
            let status = line
                .split("status=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("?")
                .to_string();
            let value: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = value as u64;
            match by_status.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += value,
                None => by_status.push((status, value)),
            }
        }
        by_status
    }

    async fn authorize_ok_count(&self) -> u64 {
        self.authorize_requests()
            .await
            .iter()
            .filter(|(s, _)| s == "200")
            .map(|(_, n)| n)
            .sum()
    }
}

/// Backstage's catalog API, as a user (a real user token) or as the static
/// service principal (which never asks the permission backend).
struct Catalog {
    client: reqwest::Client,
    base: String,
    /// Catalog requests made with a user token: each needs a decision.
    user_requests: AtomicU64,
}

impl Catalog {
    /// A fresh user token from the test-only auth module. Its `ent` claim is
    /// the user ref alone: group ownership has to come from Roster's
    /// directory, not from the token.
    async fn user_token(&self, user_ref: &str) -> String {
        let (status, body) = send(
            self.client
                .post(format!("{}/api/roster-test-auth/token", self.base))
                .json(&json!({"userEntityRef": user_ref})),
        )
        .await;
        assert_eq!(status, 200, "token for {user_ref}: {body}");
        assert_eq!(body["userEntityRef"], user_ref, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        if token != STATIC_TOKEN {
            self.user_requests.fetch_add(1, Ordering::Relaxed);
        }
        send(
            self.client
                .get(format!("{}/api/catalog{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    /// `GET /entities/by-name/{kind}/default/{name}`: the status code.
    async fn read_status(&self, token: &str, kind: &str, name: &str) -> u16 {
        self.get(token, &format!("/entities/by-name/{kind}/default/{name}"))
            .await
            .0
    }

    /// `GET /entities?filter=kind={kind}`: the names listed (must be 200).
    async fn list_names(&self, token: &str, kind: &str) -> BTreeSet<String> {
        let (status, body) = self
            .get(token, &format!("/entities?filter=kind={kind}"))
            .await;
        assert_eq!(status, 200, "list {kind}: {body}");
        body.as_array()
            .unwrap_or_else(|| panic!("list {kind} is not an array: {body}"))
            .iter()
            .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `DELETE /entities/by-uid/{uid}`: the status code.
    async fn delete_status(&self, token: &str, uid: &str) -> u16 {
        self.user_requests.fetch_add(1, Ordering::Relaxed);
        send(
            self.client
                .delete(format!("{}/api/catalog/entities/by-uid/{uid}", self.base))
                .bearer_auth(token),
        )
        .await
        .0
    }

    /// The entity as the static (service) token sees it, or `None` on 404.
    async fn service_get(&self, kind: &str, name: &str) -> Option<Value> {
        let (status, body) = self
            .get(
                STATIC_TOKEN,
                &format!("/entities/by-name/{kind}/default/{name}"),
            )
            .await;
        match status {
            200 => Some(body),
            404 => None,
            other => panic!("service GET {kind}/{name}: {other} {body}"),
        }
    }

    async fn uid(&self, kind: &str, name: &str) -> String {
        let entity = self
            .service_get(kind, name)
            .await
            .unwrap_or_else(|| panic!("{kind}/{name} is not in the catalog"));
        entity["metadata"]["uid"].as_str().unwrap().to_string()
    }

    /// Whether the entity with this uid still exists (service token).
    async fn uid_exists(&self, uid: &str) -> bool {
        let (status, body) = self
            .get(STATIC_TOKEN, &format!("/entities/by-uid/{uid}"))
            .await;
        match status {
            200 => true,
            404 => false,
            other => panic!("service GET by-uid {uid}: {other} {body}"),
        }
    }

    /// Polls (service token) until `check` accepts the entity, for at most
    /// `timeout`; returns it.
    async fn wait_for(
        &self,
        kind: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let entity = self.service_get(kind, name).await;
            if let Some(e) = entity.as_ref().filter(|e| check(e)) {
                return e.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {kind}/{name}: {what}; last: {}",
                    entity.map_or("404".to_string(), |e| e.to_string())
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

const JANE: &str = "user:default/jane.doe";
const AMARA: &str = "user:default/amara.nwosu";
const ADA: &str = "user:default/ada.admin";
const NOAH: &str = "user:default/noah.none";

#[tokio::test]
async fn backstage_asks_roster_for_every_user_decision() {
    let root = repo_root();
    if let Some(reason) = skip_reason(&root) {
        eprintln!("SKIPPED backstage_permission_e2e: {reason}");
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("backstage-permission-e2e");
    // Each needs the other's URL: pick both ports first. Roster fetches
    // Backstage's keys only when a token arrives, so it may start first.
    let roster_port = free_port();
    let backstage_port = free_port();
    let backstage_base = format!("http://127.0.0.1:{backstage_port}");
    let roster = Roster::start(&dir.0, roster_port, &backstage_base);
    let client = reqwest::Client::new();
    let api = RosterApi {
        client: client.clone(),
        base: roster.base.clone(),
        scim_token: create_token(&dir.0, "idp", "scim"),
        admin_token: create_token(&dir.0, "ops", "admin"),
    };
    let feed_token = create_token(&dir.0, "backstage", "catalog-feed");
    let (status, body) =
        send(client.get(format!("{}/backstage/permission/health", roster.base))).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"status": "ok"})),
        "permission health"
    );

    // The directory. Jane owns refund-worker herself; Amara is in
    // payments-core, which owns ledger-service and ledger-api; Ada is an
    // admin; Noah has no role. Jane is not in payments-core.
    let jane_id = api.create_user("jane.doe@example.com", "Jane Doe").await;
    let amara_id = api
        .create_user("amara.nwosu@example.com", "Amara Nwosu")
        .await;
    api.create_user("ada.admin@example.com", "Ada Admin").await;
    api.create_user("noah.none@example.com", "Noah None").await;
    api.create_group("payments-core", &[&amara_id]).await;

    let feed_url =
        format!("http://127.0.0.1:{roster_port}/backstage/entities.yaml?token={feed_token}");
    let backstage = Backstage::start(&root, backstage_port, &roster.base, &feed_url);
    eprintln!(
        "roster {} and backstage {} up after {:?}",
        roster.base,
        backstage.base,
        started.elapsed()
    );
    let catalog = Catalog {
        client: client.clone(),
        base: backstage.base.clone(),
        user_requests: AtomicU64::new(0),
    };
    let wait = Duration::from_secs(30);

    // The catalog has the users, the group and the fixtures' ownership.
    for user in ["jane.doe", "ada.admin", "noah.none"] {
        catalog
            .wait_for("user", user, "in the catalog", wait, |_| true)
            .await;
    }
    catalog
        .wait_for(
            "user",
            "amara.nwosu",
            "member of payments-core",
            wait,
            |e| has_relation(e, "memberOf", "group:default/payments-core"),
        )
        .await;
    catalog
        .wait_for("component", "refund-worker", "owned by jane", wait, |e| {
            has_relation(e, "ownedBy", JANE)
        })
        .await;
    catalog
        .wait_for(
            "component",
            "ledger-service",
            "owned by payments-core",
            wait,
            |e| has_relation(e, "ownedBy", "group:default/payments-core"),
        )
        .await;
    eprintln!("feed in the catalog after {:?}", started.elapsed());

    // Roles, through Roster's admin API. Amara's comes from her group.
    api.assign("member", JANE).await;
    api.assign("member", "group:default/payments-core").await;
    api.assign("admin", ADA).await;

    // A question about a named resource gets a definitive answer: Roster
    // fetches the entities from the catalog (each once, in one request) and
    // applies the conditions itself. Owners may delete, others may not, a
    // resource the catalog does not know is denied; a bare name means a
    // component.
    let delete = |id: &str, user: &str, resource: &str| json!({"id": id, "user": user, "permission": "catalog.entity.delete", "resourceRef": resource});
    let answers = api
        .decide(json!([
            delete("1", JANE, "component:default/refund-worker"),
            delete("2", JANE, "component:default/ledger-service"),
            delete("3", AMARA, "component:default/ledger-service"),
            delete("4", AMARA, "refund-worker"),
            delete("5", JANE, "Component:default/Refund-Worker"),
            delete("6", JANE, "component:default/no-such-thing"),
            delete("7", ADA, "component:default/no-such-thing"),
            delete("8", NOAH, "component:default/refund-worker"),
        ]))
        .await;
    assert_eq!(
        answers,
        ["ALLOW", "DENY", "ALLOW", "DENY", "ALLOW", "DENY", "ALLOW", "DENY"]
    );

    let both = names(&["ledger-service", "refund-worker"]);
    let refund_uid = catalog.uid("component", "refund-worker").await;
    let ledger_uid = catalog.uid("component", "ledger-service").await;
    let api_uid = catalog.uid("api", "ledger-api").await;

    // No role: nothing to read, nothing to delete. The catalog turns a
    // denied read into "not found" (404 by name, an empty list) and a denied
    // delete into 403. With permission enabled, a user request is only ever
    // denied because the permission backend (Roster) said so.
    let before = api.authorize_ok_count().await;
    let noah = catalog.user_token(NOAH).await;
    assert_eq!(
        catalog
            .read_status(&noah, "component", "refund-worker")
            .await,
        404
    );
    assert_eq!(
        catalog
            .read_status(&noah, "component", "ledger-service")
            .await,
        404
    );
    assert_eq!(catalog.list_names(&noah, "component").await, names(&[]));
    assert_eq!(catalog.delete_status(&noah, &ledger_uid).await, 403);
    assert_eq!(catalog.delete_status(&noah, &refund_uid).await, 403);
    assert!(catalog.uid_exists(&ledger_uid).await);
    assert!(catalog.uid_exists(&refund_uid).await);
    let after = api.authorize_ok_count().await;
    assert!(
        after > before,
        "Roster answered no authorize request for Noah ({before} → {after})"
    );

    // Member: reads everything, deletes only what they own.
    let jane = catalog.user_token(JANE).await;
    assert_eq!(
        catalog
            .read_status(&jane, "component", "refund-worker")
            .await,
        200
    );
    assert_eq!(
        catalog
            .read_status(&jane, "component", "ledger-service")
            .await,
        200
    );
    assert_eq!(catalog.list_names(&jane, "component").await, both);
    assert_eq!(catalog.delete_status(&jane, &ledger_uid).await, 403);
    assert!(catalog.uid_exists(&ledger_uid).await);

    // Amara owns ledger-service through payments-core. Her token's `ent`
    // claim names only herself, so the group comes from Roster's directory.
    let amara = catalog.user_token(AMARA).await;
    assert_eq!(catalog.list_names(&amara, "component").await, both);
    assert_eq!(catalog.delete_status(&amara, &refund_uid).await, 403);
    assert!(catalog.uid_exists(&refund_uid).await);

    // Admin: reads everything.
    let ada = catalog.user_token(ADA).await;
    assert_eq!(catalog.list_names(&ada, "component").await, both);
    assert_eq!(catalog.read_status(&ada, "api", "ledger-api").await, 200);

    // The owners' deletes go through.
    assert_eq!(catalog.delete_status(&jane, &refund_uid).await, 204);
    assert!(!catalog.uid_exists(&refund_uid).await);
    assert_eq!(catalog.delete_status(&amara, &ledger_uid).await, 204);
    assert!(!catalog.uid_exists(&ledger_uid).await);
    // The admin deletes what someone else owns.
    assert_eq!(catalog.delete_status(&ada, &api_uid).await, 204);
    assert!(!catalog.uid_exists(&api_uid).await);
    eprintln!("roles checked after {:?}", started.elapsed());

    // The fixture location still emits refund-worker: it comes back with a
    // new uid at the next processing round (1 to 4.5 s).
    let refund = catalog
        .wait_for(
            "component",
            "refund-worker",
            "back after delete",
            wait,
            |e| e["metadata"]["uid"] != refund_uid.as_str() && has_relation(e, "ownedBy", JANE),
        )
        .await;
    let refund_uid = refund["metadata"]["uid"].as_str().unwrap().to_string();
    let jane = catalog.user_token(JANE).await;
    assert_eq!(
        catalog
            .read_status(&jane, "component", "refund-worker")
            .await,
        200
    );

    // Deactivated in the directory: denied at once. Backstage 1.45.3 asks
    // the permission backend on every request (checked below), but newer
    // permission clients cache each answer for about 5 s per token and
    // permission, so there a token that was just allowed could stay allowed
    // for those seconds without asking Roster. A fresh token for the same
    // user has no cached answer anywhere: the catalog asks Roster, which
    // already denies.
    api.deactivate_user(&jane_id).await;
    let jane = catalog.user_token(JANE).await;
    assert_eq!(
        catalog
            .read_status(&jane, "component", "refund-worker")
            .await,
        404
    );
    assert_eq!(catalog.list_names(&jane, "component").await, names(&[]));
    assert_eq!(catalog.delete_status(&jane, &refund_uid).await, 403);
    assert!(catalog.uid_exists(&refund_uid).await);

    // Every decision above reached Roster and was answered: one authorize
    // request per catalog request made with a user token (the pinned
    // Backstage does not cache decisions), none refused (an unverifiable
    // token would show as 401 here, and as a 500 in Backstage).
    let requests = api.authorize_requests().await;
    eprintln!("authorize requests by status: {requests:?}");
    assert!(
        requests.iter().all(|(s, _)| s == "200"),
        "Roster refused authorize requests: {requests:?}"
    );
    assert_eq!(
        api.authorize_ok_count().await,
        catalog.user_requests.load(Ordering::Relaxed),
        "authorize requests answered by Roster vs catalog requests with a user token"
    );
    assert!(
        !backstage.log().contains("AuthenticationError"),
        "Backstage logged an authentication error: {}",
        backstage.log_tail()
    );
    eprintln!("backstage permission e2e passed in {:?}", started.elapsed());
}
