//! What the real-Backstage end-to-end tests share: finding the repo and
//! deciding whether Backstage can run here, temp dirs, ports, tokens.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_roster");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn skip_reason(root: &Path) -> Option<String> {
    if std::env::var("ROSTER_TEST_BACKSTAGE").as_deref() == Ok("skip") {
        return Some("ROSTER_TEST_BACKSTAGE=skip".into());
    }
    if !root.join("e2e/backstage/node_modules").is_dir() {
        return Some(
            "e2e/backstage/node_modules is absent (run `bash scripts/backstage.sh install`)".into(),
        );
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("`node` is not on PATH".into());
    }
    None
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir, named after `prefix`.
    pub fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("roster-{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn create_token(data_dir: &Path, name: &str, scope: &str) -> String {
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
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn has_relation(entity: &Value, kind: &str, target: &str) -> bool {
    entity["relations"].as_array().is_some_and(|rels| {
        rels.iter()
            .any(|r| r["type"] == kind && r["targetRef"] == target)
    })
}
