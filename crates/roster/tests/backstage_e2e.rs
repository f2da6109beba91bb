//! End to end against a real Backstage 1.45.3 backend (`e2e/backstage`): the
//! real `roster` binary serves SCIM and the catalog feed, Backstage reads the
//! feed, and `roster reconcile` finds and removes what the directory no
//! longer has. No mock of Backstage stands in for this test.
//!
//! Skipped (and passing) when `e2e/backstage/node_modules` is absent, `node`
//! is not on PATH, or `ROSTER_TEST_BACKSTAGE=skip`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{create_token, free_port, has_relation, repo_root, skip_reason, TempDir};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_roster");
const STATIC_TOKEN: &str = "roster-e2e-static-token-for-tests";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A running `roster serve` on a chosen port; killed on drop.
struct Roster {
    child: Child,
    base: String,
}

impl Roster {
    fn start(data_dir: &Path, port: u16) -> Roster {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env_remove("ROSTER_DATABASE_URL")
            .env("ROSTER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("roster listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("roster logged its URL");
        assert_eq!(base, format!("http://127.0.0.1:{port}"));
        Roster { child, base }
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Backstage backend started by `scripts/backstage.sh start`; stopped on
/// drop (also on panic).
struct Backstage {
    root: PathBuf,
    port: u16,
    base: String,
}

impl Backstage {
    fn start(root: &Path, port: u16, roster_port: u16, feed_url: &str) -> Backstage {
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
            .env("ROSTER_PORT", roster_port.to_string())
            .env("BACKSTAGE_START_TIMEOUT", "120")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "backstage.sh start failed");
        guard.base = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(guard.base, format!("http://127.0.0.1:{port}"));
        guard
    }

    fn log_tail(&self) -> String {
        let log = self
            .root
            .join(format!("e2e/backstage/run/{}/backstage.log", self.port));
        let text = std::fs::read_to_string(log).unwrap_or_default();
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

fn reconcile(data_dir: &Path, backstage: &str, apply: bool) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["reconcile", "--format", "json", "--data-dir"])
        .arg(data_dir)
        .env_remove("ROSTER_DATABASE_URL")
        .env("ROSTER_BACKSTAGE__URL", backstage)
        .env("ROSTER_BACKSTAGE__TOKEN", STATIC_TOKEN);
    if apply {
        cmd.arg("--apply");
    }
    cmd.output().unwrap()
}

fn reconcile_report(data_dir: &Path, backstage: &str) -> Value {
    let out = reconcile(data_dir, backstage, false);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reconcile failed: {stderr}\n{stdout}");
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("reconcile JSON: {e}\n{stdout}"));
    eprintln!(
        "reconcile report:\n{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    report
}

fn find<'a>(findings: &'a [Value], kind: &str, subject: &str, report: &Value) -> &'a Value {
    findings
        .iter()
        .find(|f| f["kind"] == kind && f["subject"]["entity_ref"] == subject)
        .unwrap_or_else(|| panic!("no {kind} finding for {subject}: {report:#}"))
}

struct Catalog {
    client: reqwest::Client,
    base: String,
}

impl Catalog {
    /// The entity, or `None` on 404.
    async fn by_name(&self, kind: &str, name: &str) -> Option<Value> {
        let resp = self
            .client
            .get(format!(
                "{}/api/catalog/entities/by-name/{kind}/default/{name}",
                self.base
            ))
            .bearer_auth(STATIC_TOKEN)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => Some(resp.json().await.unwrap()),
            404 => None,
            other => panic!(
                "GET by-name {kind}/{name}: {other} {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }

    /// Polls until `check` accepts the entity (or its absence), for at most
    /// `timeout`; panics with `what` and the last state otherwise.
    async fn wait_for(
        &self,
        kind: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let entity = self.by_name(kind, name).await;
            if check(entity.as_ref()) {
                return entity;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {kind}/{name}: {what}; last: {}",
                    entity.map_or("404".to_string(), |e| serde_json::to_string_pretty(&e)
                        .unwrap())
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn is_orphan(entity: &Value) -> bool {
    entity["metadata"]["annotations"]["backstage.io/orphan"] == "true"
}

async fn scim_post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 201, "POST {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn directory_reaches_backstage_and_reconcile_removes_a_deleted_user() {
    let root = repo_root();
    if let Some(reason) = skip_reason(&root) {
        eprintln!("SKIPPED backstage_e2e: {reason}");
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("backstage-e2e");
    let roster_port = free_port();
    let roster = Roster::start(&dir.0, roster_port);
    let scim_token = create_token(&dir.0, "idp", "scim");
    let feed_token = create_token(&dir.0, "backstage", "catalog-feed");
    let client = reqwest::Client::new();
    let scim = format!("{}/scim/v2", roster.base);

    // The directory: Sam, Jane (managed by Sam), and their group.
    let sam = scim_post(
        &client,
        format!("{scim}/Users"),
        &scim_token,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "sam.lee@example.com",
            "displayName": "Sam Lee",
            "emails": [{"value": "sam.lee@example.com", "type": "work", "primary": true}],
        }),
    )
    .await;
    let sam_id = sam["id"].as_str().unwrap().to_string();
    let jane = scim_post(
        &client,
        format!("{scim}/Users"),
        &scim_token,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "jane.doe@example.com",
            "displayName": "Jane Doe",
            "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": true}],
            ENTERPRISE: {"manager": {"value": sam_id}},
        }),
    )
    .await;
    let jane_id = jane["id"].as_str().unwrap().to_string();
    // A group's entity name is its displayName normalised ("Payments Core"
    // would give `payments_core`), so name it as the fixtures refer to it.
    scim_post(
        &client,
        format!("{scim}/Groups"),
        &scim_token,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "payments-core",
            "members": [{"value": jane_id}, {"value": sam_id}],
        }),
    )
    .await;

    let backstage_port = free_port();
    let feed_url =
        format!("http://127.0.0.1:{roster_port}/backstage/entities.yaml?token={feed_token}");
    let backstage = Backstage::start(&root, backstage_port, roster_port, &feed_url);
    eprintln!(
        "roster {} and backstage {} up after {:?}",
        roster.base,
        backstage.base,
        started.elapsed()
    );
    let catalog = Catalog {
        client: client.clone(),
        base: backstage.base.clone(),
    };
    let wait = Duration::from_secs(60);

    // The feed reaches the catalog, relations included.
    let jane_entity = catalog
        .wait_for(
            "user",
            "jane.doe",
            "jane in the catalog, member of payments-core",
            wait,
            |e| e.is_some_and(|e| has_relation(e, "memberOf", "group:default/payments-core")),
        )
        .await
        .unwrap();
    assert_eq!(
        jane_entity["metadata"]["annotations"]["roster.dev/scim-id"],
        jane_id.as_str()
    );
    catalog
        .wait_for("user", "sam.lee", "sam in the catalog", wait, |e| {
            e.is_some_and(|e| has_relation(e, "memberOf", "group:default/payments-core"))
        })
        .await;
    catalog
        .wait_for(
            "group",
            "payments-core",
            "group with both members",
            wait,
            |e| {
                e.is_some_and(|e| {
                    has_relation(e, "hasMember", "user:default/jane.doe")
                        && has_relation(e, "hasMember", "user:default/sam.lee")
                })
            },
        )
        .await;
    catalog
        .wait_for("component", "refund-worker", "owned by jane", wait, |e| {
            e.is_some_and(|e| has_relation(e, "ownedBy", "user:default/jane.doe"))
        })
        .await;
    eprintln!("feed in the catalog after {:?}", started.elapsed());

    // Jane is deactivated first: the directory still knows her manager, so
    // the owner proposed for what she owns is Sam.
    let resp = client
        .patch(format!("{scim}/Users/{jane_id}"))
        .bearer_auth(&scim_token)
        .header("content-type", "application/scim+json")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let report = reconcile_report(&dir.0, &backstage.base);
    let findings = report["findings"].as_array().expect("findings array");
    let deactivated = find(
        findings,
        "deactivated-user",
        "user:default/jane.doe",
        &report,
    );
    assert_eq!(
        deactivated["subject"]["directory_id"],
        jane_id.as_str(),
        "{deactivated:#}"
    );
    let dangling = find(
        findings,
        "dangling-owner",
        "component:default/refund-worker",
        &report,
    );
    assert_eq!(dangling["fix"]["action"], "change-owner", "{dangling:#}");
    assert_eq!(
        dangling["fix"]["from"], "user:default/jane.doe",
        "{dangling:#}"
    );
    assert_eq!(
        dangling["fix"]["to"], "user:default/sam.lee",
        "{dangling:#}"
    );

    // Jane leaves: the feed stops emitting her, the catalog keeps her as an
    // orphan (orphanStrategy: keep).
    let resp = client
        .delete(format!("{scim}/Users/{jane_id}"))
        .bearer_auth(&scim_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let orphan = catalog
        .wait_for("user", "jane.doe", "jane orphaned", wait, |e| {
            e.is_some_and(is_orphan)
        })
        .await
        .unwrap();
    let jane_uid = orphan["metadata"]["uid"].as_str().unwrap().to_string();
    eprintln!("jane orphaned after {:?}", started.elapsed());

    // Dry run: a ghost user with a delete fix. Deleted from the directory,
    // Jane is gone, but the handover map recorded her manager when she was
    // deactivated: he is still the proposed owner.
    let report = reconcile_report(&dir.0, &backstage.base);
    let findings = report["findings"].as_array().expect("findings array");
    let ghost = find(findings, "ghost-user", "user:default/jane.doe", &report);
    assert_eq!(ghost["subject"]["uid"], jane_uid.as_str(), "{ghost:#}");
    assert_eq!(ghost["fix"]["action"], "delete-entity", "{ghost:#}");
    assert_eq!(ghost["fix"]["uid"], jane_uid.as_str(), "{ghost:#}");
    assert_eq!(ghost["fix"]["applicable"], true, "{ghost:#}");
    let dangling = find(
        findings,
        "dangling-owner",
        "component:default/refund-worker",
        &report,
    );
    assert_eq!(dangling["fix"]["action"], "change-owner", "{dangling:#}");
    assert_eq!(
        dangling["fix"]["from"], "user:default/jane.doe",
        "{dangling:#}"
    );
    assert_eq!(
        dangling["fix"]["to"], "user:default/sam.lee",
        "{dangling:#}"
    );
    assert!(
        dangling["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e
                .as_str()
                .is_some_and(|e| e.contains("the successor recorded"))),
        "{dangling:#}"
    );
    for f in findings {
        let subject = &f["subject"]["entity_ref"];
        assert!(
            subject != "user:default/sam.lee" && subject != "group:default/payments-core",
            "live entities must not be findings: {f:#}"
        );
    }

    // Apply: Jane's entity is deleted and stays deleted.
    let out = reconcile(&dir.0, &backstage.base, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reconcile --apply failed: {stderr}");
    eprintln!("reconcile --apply:\n{stderr}");
    catalog
        .wait_for("user", "jane.doe", "jane deleted", wait, |e| e.is_none())
        .await;
    // Two or more processing intervals (3 to 4.5 s each): the feed no longer
    // emits her, so nothing brings her back.
    let settle = Instant::now() + Duration::from_secs(9);
    while Instant::now() < settle {
        assert!(
            catalog.by_name("user", "jane.doe").await.is_none(),
            "jane came back after deletion"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sam_entity = catalog
        .by_name("user", "sam.lee")
        .await
        .expect("sam remains");
    assert!(!is_orphan(&sam_entity));
    let group = catalog
        .by_name("group", "payments-core")
        .await
        .expect("group remains");
    assert!(!is_orphan(&group));
    assert!(has_relation(&group, "hasMember", "user:default/sam.lee"));
    eprintln!("backstage e2e passed in {:?}", started.elapsed());
}
