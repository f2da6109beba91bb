//! Tests of the real `roster` binary: what an operator sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_roster");

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "roster-bin-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn roster(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("ROSTER_DATABASE_URL")
        .output()
        .unwrap()
}

/// A running `roster serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("ROSTER_DATABASE_URL")
            .env("ROSTER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let url = line
                    .split("roster listening on ")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                // Logged before announced, so a test woken by the URL finds
                // the line in the log.
                log_writer.lock().unwrap().push(line);
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server logged its URL");
        Server { child, base, log }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn create_token(data_dir: &Path, name: &str, scope: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            name,
            "--scope",
            scope,
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("ROSTER_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout must carry only the token: {stdout:?}"
    );
    assert!(lines[0].starts_with("rst_"));
    lines[0].to_string()
}

#[tokio::test]
async fn tokens_are_created_while_the_server_runs_and_revoked() {
    let dir = TempDir::new();
    let server = Server::start(&dir.0);
    let token = create_token(&dir.0, "okta", "scim");
    let client = reqwest::Client::new();
    let users = format!("{}/scim/v2/Users", server.base);
    let ok = client.get(&users).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let list = roster(&["token", "list", "--data-dir", dir.0.to_str().unwrap()]);
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(
        listing.contains("okta") && listing.contains("scim") && listing.contains("active"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "the secret must never be listed");

    let dup = roster(&[
        "token",
        "create",
        "--name",
        "okta",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let revoke = roster(&[
        "token",
        "revoke",
        "okta",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    // Revocation reaches the server within the token cache's lifetime.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .get(&users)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "revoked token still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bad_scope = roster(&[
        "token",
        "create",
        "--name",
        "x",
        "--scope",
        "superuser",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown token scope"));
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_masked() {
    let out = Command::new(BIN)
        .args(["config", "check", "--listen", "127.0.0.1:9999"])
        .env(
            "ROSTER_DATABASE_URL",
            "postgres://roster:s3cret@db.internal:5432/roster",
        )
        .env("ROSTER_LSITEN", "oops")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(
        stdout.contains("postgres://roster:***@db.internal:5432/roster"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
    assert!(
        stderr.contains("ROSTER_LSITEN") && stderr.contains("did you mean ROSTER_LISTEN"),
        "{stderr}"
    );
}

/// Every write that got a 2xx answer survives a SIGKILL.
#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = TempDir::new();
    let mut server = Server::start(&dir.0);
    let token = create_token(&dir.0, "durability", "scim");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for worker in 0..8 {
        let url = format!("{}/scim/v2/Users", server.base);
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("w{worker}-{i}@example.com");
                i += 1;
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => acknowledged.lock().unwrap().push(name),
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(_) => break, // the server died mid-request: not acknowledged
                }
            }
        }));
    }
    // Let writes stream, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 300,
        "only {} writes acknowledged",
        acknowledged.len()
    );

    let server = Server::start(&dir.0);
    let client = reqwest::Client::new();
    let mut found = std::collections::HashSet::new();
    let mut start = 1;
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "{}/scim/v2/Users?startIndex={start}&count=1000&attributes=userName",
                server.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resources = page["Resources"].as_array().unwrap();
        if resources.is_empty() {
            break;
        }
        for r in resources {
            found.insert(r["userName"].as_str().unwrap().to_string());
        }
        start += resources.len();
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !found.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

#[test]
fn serve_logs_its_url_and_answers_readyz() {
    let dir = TempDir::new();
    let server = Server::start(&dir.0);
    assert!(server.base.starts_with("http://127.0.0.1:"));
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("roster listening on"), "{log}");
    assert!(dir.0.join("roster.db").exists());
}

/// SIGTERM lets in-flight work finish and exits cleanly.
#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = TempDir::new();
    let mut server = Server::start(&dir.0);
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "roster did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    // The log reader thread may trail the exit slightly.
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("shutting down") && log.contains("roster stopped"),
        "{log}"
    );
}

#[test]
fn backstage_token_comes_from_a_file_and_never_prints() {
    let dir = TempDir::new();
    let token_file = dir.0.join("backstage-token");
    std::fs::write(&token_file, "static-token-123456\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("ROSTER_BACKSTAGE__URL", "http://backstage.internal:7007")
        .env("ROSTER_BACKSTAGE__TOKEN_FILE", &token_file)
        .env_remove("ROSTER_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains("[backstage]")
            && stdout.contains("url = \"http://backstage.internal:7007\""),
        "{stdout}"
    );
    assert!(stdout.contains("token = \"***\""), "{stdout}");
    assert!(!stdout.contains("static-token-123456") && !stderr.contains("static-token-123456"));
    assert!(!stderr.contains("not a Roster setting"), "{stderr}");
}

#[test]
fn reconcile_without_backstage_configured_says_what_to_set() {
    let dir = TempDir::new();
    let out = roster(&["reconcile", "--data-dir", dir.0.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backstage.url") && stderr.contains("ROSTER_BACKSTAGE__URL"),
        "{stderr}"
    );
}

/// `roster access` writes to the same database a running server decides
/// from: the server follows the change at once (it polls the policy
/// revision every 20 ms), and `explain` names the rule that decided.
#[tokio::test]
async fn access_commands_change_what_the_running_server_decides() {
    let dir = TempDir::new();
    let data = dir.0.to_str().unwrap().to_owned();
    let server = Server::start(&dir.0);
    let scim = create_token(&dir.0, "idp", "scim");
    let decide = create_token(&dir.0, "gate", "authorize");
    let client = reqwest::Client::new();
    for name in ["jane.doe", "bob"] {
        let created = client
            .post(format!("{}/scim/v2/Users", server.base))
            .bearer_auth(&scim)
            .header("content-type", "application/scim+json")
            .body(format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{name}@example.com","emails":[{{"value":"{name}@example.com","primary":true}}]}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let ask = |user: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/authorize", server.base);
        let decide = decide.clone();
        async move {
            let answer: serde_json::Value = client
                .post(url)
                .bearer_auth(decide)
                .json(&serde_json::json!({"items": [
                    {"id": "1", "user": user, "permission": "catalog.location.create"}]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["items"][0]["result"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(ask("user:default/bob").await, "DENY");

    let policy = dir.0.join("policy.yaml");
    std::fs::write(
        &policy,
        "roles:\n  - name: registrar\n    rules:\n      - permissions: [\"catalog.location.*\"]\n        action: create\n        effect: allow\nassignments:\n  - role: registrar\n    subject: user:default/bob\n",
    )
    .unwrap();
    let import = roster(&[
        "access",
        "import",
        policy.to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let mut result = String::new();
    for _ in 0..50 {
        result = ask("user:default/bob").await;
        if result == "ALLOW" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        result, "ALLOW",
        "the server did not follow the imported policy"
    );
    assert_eq!(ask("user:default/jane.doe").await, "DENY");

    let explain = roster(&[
        "access",
        "explain",
        "--user",
        "bob",
        "--permission",
        "catalog.location.create",
        "--data-dir",
        &data,
    ]);
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(
        text.starts_with("ALLOW  bob  catalog.location.create"),
        "{text}"
    );
    assert!(
        text.contains("allowed by rule 0 of role registrar (assigned directly)"),
        "{text}"
    );

    // A bad file changes nothing and says what is wrong, and where.
    std::fs::write(
        &policy,
        "roles:\n  - name: Bad Name\n    rules: []\nassignments:\n  - role: registrar\n    subject: user:default/nobody\n",
    )
    .unwrap();
    let refused = roster(&[
        "access",
        "import",
        policy.to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("roles[0].name: \"Bad Name\" is not a role name"),
        "{stderr}"
    );
    assert_eq!(ask("user:default/bob").await, "ALLOW");

    let changes = roster(&["access", "changes", "--data-dir", &data]);
    let listing = String::from_utf8_lossy(&changes.stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(
        listing.contains("policy.import") && listing.contains("cli:"),
        "{listing}"
    );
}
