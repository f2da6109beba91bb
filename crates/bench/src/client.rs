//! The HTTP side: one keep-alive client per worker, timed requests, response checks.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub const SCIM_JSON: &str = "application/scim+json";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Connection settings shared by all workers.
#[derive(Clone, Debug)]
pub struct Target {
    /// SCIM base URL without the trailing slash, e.g. `http://127.0.0.1:8080/scim/v2`.
    pub base: String,
    pub token: Option<String>,
    pub timeout: Duration,
}

impl Target {
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        Url::parse(&base).with_context(|| format!("invalid --url {url:?}"))?;
        let token = token.filter(|t| !t.is_empty());
        Ok(Self {
            base,
            token,
            timeout,
        })
    }

    /// A client for one worker: HTTP/1.1, keep-alive, one idle connection.
    pub fn client(&self) -> Result<reqwest::Client> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(SCIM_JSON));
        if let Some(token) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token is not a valid header value")?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .timeout(self.timeout)
            .no_proxy()
            .build()
            .context("cannot build the HTTP client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// A response, read completely, with the time it took.
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub latency: Duration,
}

impl Reply {
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "HTTP {}: body is not JSON ({e}): {}",
                self.status.as_u16(),
                self.snippet()
            )
        })
    }

    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.chars().count() > 240 {
            let cut: String = text.chars().take(240).collect();
            format!("{cut}...")
        } else {
            text.to_string()
        }
    }

    pub fn unexpected(&self, what: &str) -> String {
        format!(
            "{what}: unexpected HTTP {}: {}",
            self.status.as_u16(),
            self.snippet()
        )
    }
}

/// Send one request and read the whole body; the latency covers both.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: Url,
    body: Option<&Value>,
) -> Result<Reply, String> {
    let mut req = client.request(method.clone(), url.clone());
    if let Some(body) = body {
        let bytes = serde_json::to_vec(body).map_err(|e| format!("cannot encode body: {e}"))?;
        req = req.header(CONTENT_TYPE, SCIM_JSON).body(bytes);
    }
    let start = Instant::now();
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {}: {}", url.path(), error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{method} {}: reading body: {}", url.path(), error_chain(&e)))?;
    Ok(Reply {
        status,
        body: body.to_vec(),
        latency: start.elapsed(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

pub fn parse_url(s: &str) -> Result<Url, String> {
    Url::parse(s).map_err(|e| format!("bad URL {s:?}: {e}"))
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An Okta-style user creation body (what Okta's SCIM 2.0 connector sends).
pub fn okta_user(user_name: &str, given: &str, family: &str, external_id: &str) -> Value {
    serde_json::json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": { "givenName": given, "familyName": family },
        "emails": [ { "primary": true, "value": user_name, "type": "work" } ],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "active": true
    })
}

/// An Okta-style group creation body.
pub fn okta_group(display_name: &str) -> Value {
    serde_json::json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": display_name,
        "members": []
    })
}

/// Check a creation response: 201, a non-empty `id`, and `key` echoed back.
pub fn verify_created(
    reply: &Reply,
    what: &str,
    key: &str,
    expected: &str,
) -> Result<String, String> {
    if reply.status != StatusCode::CREATED {
        return Err(reply.unexpected(what));
    }
    let v = reply.json()?;
    let id = str_field(&v, "id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{what}: 201 without an id: {}", reply.snippet()))?;
    match str_field(&v, key) {
        Some(got) if got == expected => Ok(id.to_string()),
        got => Err(format!("{what}: {key} is {got:?}, expected {expected:?}")),
    }
}
