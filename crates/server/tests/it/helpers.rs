use std::sync::Arc;

use reqwest::{Method, StatusCode};
use roster_domain::{ApiToken, SystemClock, TokenName, TokenScope, TokenSecret};
use roster_server::{Application, Config};
use serde_json::{json, Value};

/// A running server on a fresh SQLite database, with a SCIM token.
pub struct TestApp {
    pub base: String,
    pub scim: String,
    pub token: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn roster_store::Store>,
    pub _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("roster-it-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SCIM reply: status, body (JSON, or Null when empty) and headers.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn etag(&self) -> String {
        self.headers
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(
            self.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{:#}",
            self.body
        );
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{:#}",
            self.body
        );
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], json!(t), "{:#}", self.body),
            None => assert!(self.body.get("scimType").is_none(), "{:#}", self.body),
        }
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let dir = TempDir::new();
        let store = roster_store::open(&format!("sqlite://{}", dir.0.join("roster.db").display()))
            .await
            .unwrap();
        Self::spawn_with(store, dir).await
    }

    /// A server on a fresh PostgreSQL database, or `None` (with a note on
    /// stderr) when none is reachable. `ROSTER_TEST_POSTGRES_URL` names the
    /// server (default `postgres://postgres@127.0.0.1:5432/test`);
    /// `ROSTER_TEST_POSTGRES=skip` skips.
    pub async fn spawn_postgres() -> Option<(TestApp, PgDatabase)> {
        let url = fresh_postgres_database().await?;
        let store = roster_store::open(&url).await.unwrap();
        Some((Self::spawn_with(store, TempDir::new()).await, url))
    }

    pub async fn spawn_with(store: Arc<dyn roster_store::Store>, dir: TempDir) -> TestApp {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.0.clone(),
            max_bulk_operations: 50,
            ..Config::default()
        };
        let app = Application::build(config, store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let base = app.base_url().to_string();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let name = format!(
            "test-idp-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let token = create_token(&*store, &name, TokenScope::Scim).await;
        TestApp {
            scim: format!("{base}/scim/v2"),
            base,
            token,
            client: reqwest::Client::new(),
            store,
            _dir: dir,
        }
    }

    /// A SCIM request with the test token.
    pub async fn scim(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.scim_with(method, path, body, &[]).await
    }

    pub async fn scim_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.scim))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        to_reply(resp).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.scim(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.scim(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.scim(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.scim(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.scim(Method::DELETE, path, None).await
    }

    /// Creates a user with just a userName; returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let reply = self
            .post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let reply = self
            .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }

    /// Everything the directory holds, for "bad input changed nothing" checks.
    pub async fn snapshot(&self) -> Value {
        let users = self.get("/Users?count=1000").await.body["Resources"].clone();
        let groups = self.get("/Groups?count=1000").await.body["Resources"].clone();
        json!({"users": users, "groups": groups})
    }
}

pub async fn to_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        body,
        headers,
    }
}

pub async fn create_token(
    store: &dyn roster_store::Store,
    name: &str,
    scope: TokenScope,
) -> String {
    let secret = TokenSecret::generate(&mut rand::thread_rng());
    store
        .insert_token(&ApiToken {
            id: uuid::Uuid::new_v4(),
            name: TokenName::parse(name).unwrap(),
            scope,
            hash: secret.hash(),
            created: time::OffsetDateTime::now_utc(),
            revoked: None,
        })
        .await
        .unwrap();
    secret.expose().to_string()
}

/// A PostgreSQL database made for one test: its URL (as `&str`), and
/// dropped, whoever is still connected, when the test is done with it.
pub struct PgDatabase {
    url: String,
    name: String,
    admin_url: String,
}

impl std::ops::Deref for PgDatabase {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use sqlx::Connection as _;
        use sqlx::Executor as _;
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the drop gets a thread and a
        // runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                admin.execute(drop.as_str()).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Creates an empty PostgreSQL database for one test.
pub async fn fresh_postgres_database() -> Option<PgDatabase> {
    use sqlx::Connection as _;
    use sqlx::Executor as _;
    if std::env::var("ROSTER_TEST_POSTGRES").as_deref() == Ok("skip") {
        eprintln!("ROSTER_TEST_POSTGRES=skip: skipping PostgreSQL server tests");
        return None;
    }
    let url = std::env::var("ROSTER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let connect = sqlx::PgConnection::connect(&url);
    let mut admin = match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(conn)) => conn,
        _ => {
            eprintln!("PostgreSQL not reachable at {url}: skipping PostgreSQL server tests");
            return None;
        }
    };
    let name = format!("roster_it_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(url.clone());
    Some(PgDatabase {
        url: format!("{base}/{name}"),
        name,
        admin_url: url,
    })
}
