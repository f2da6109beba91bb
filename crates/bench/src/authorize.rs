//! `authorize`: Backstage permission decisions over HTTP, and how soon a policy change shows.
//!
//! The `authorize` run POSTs Backstage-shaped bodies (reference §4.1) to a permission
//! endpoint (Backstage's own `/api/permission/authorize` or Roster's
//! `/backstage/permission/authorize`) from N clients, each on its own keep-alive
//! connection, rotating through real user tokens. Every response is verified: HTTP 200,
//! one decision per item with the item's id, in order, and a valid result (`ALLOW`,
//! `DENY`, or `CONDITIONAL` with `pluginId`, the item's `resourceType` and `conditions`,
//! for resource permissions only).
//!
//! `policy-change-latency` flips one decision through Roster's admin API (a role's
//! rule between allow and deny, an assignment deleted and created again) and times
//! how long until `authorize` answers the new way.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::stats::{round3, OpStats};

const JSON: &str = "application/json";

/// One permission as Backstage's permission client sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Permission {
    pub name: String,
    /// `None` for a basic permission, else the resource type (`catalog-entity`).
    pub resource_type: Option<String>,
    pub action: Option<String>,
}

/// Permissions whose type and action Backstage defines (reference §4.4).
const KNOWN: &[(&str, Option<&str>, Option<&str>)] = &[
    ("catalog.entity.read", Some("catalog-entity"), Some("read")),
    ("catalog.entity.create", None, Some("create")),
    (
        "catalog.entity.refresh",
        Some("catalog-entity"),
        Some("update"),
    ),
    (
        "catalog.entity.delete",
        Some("catalog-entity"),
        Some("delete"),
    ),
    ("catalog.entity.validate", None, None),
    ("catalog.location.read", None, Some("read")),
    ("catalog.location.create", None, Some("create")),
    ("catalog.location.delete", None, Some("delete")),
    ("catalog.location.analyze", None, None),
    ("scaffolder.action.execute", Some("scaffolder-action"), None),
    (
        "scaffolder.template.parameter.read",
        Some("scaffolder-template"),
        Some("read"),
    ),
    (
        "scaffolder.template.step.read",
        Some("scaffolder-template"),
        Some("read"),
    ),
    ("scaffolder.task.read", None, Some("read")),
    ("scaffolder.task.create", None, Some("create")),
    ("scaffolder.task.cancel", None, None),
    ("scaffolder.template.management", None, None),
];

/// The default mix: list reads and deletes of catalog entities (resource permissions,
/// conditional under an owner rule), and two basic permissions.
pub const DEFAULT_PERMISSIONS: &[&str] = &[
    "catalog.entity.read",
    "catalog.location.create",
    "catalog.entity.delete",
    "scaffolder.task.create",
];

impl Permission {
    /// `NAME` (a known Backstage permission, else basic without an action) or
    /// `NAME:TYPE[:ACTION]` where TYPE is `basic` or a resource type.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() {
            bail!("empty permission name in {spec:?}");
        }
        let kind = parts.next();
        let action = parts.next();
        if parts.next().is_some() {
            bail!("permission {spec:?}: expected NAME or NAME:TYPE[:ACTION]");
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(kind) = kind {
            return Ok(Self {
                name: name.to_string(),
                resource_type: if kind == "basic" { None } else { some(kind) },
                action: action.and_then(some),
            });
        }
        let known = KNOWN.iter().find(|(n, _, _)| *n == name);
        Ok(Self {
            name: name.to_string(),
            resource_type: known.and_then(|k| k.1).map(str::to_string),
            action: known.and_then(|k| k.2).map(str::to_string),
        })
    }

    /// The `permission` object of a request item.
    pub fn to_json(&self) -> Value {
        let mut p = json!({
            "type": if self.resource_type.is_some() { "resource" } else { "basic" },
            "name": self.name,
            "attributes": {},
        });
        if let Some(a) = &self.action {
            p["attributes"]["action"] = json!(a);
        }
        if let Some(rt) = &self.resource_type {
            p["resourceType"] = json!(rt);
        }
        p
    }
}

/// A request body, encoded once, and what each of its items asked.
struct PreparedBody {
    bytes: Vec<u8>,
    ids: Vec<String>,
    /// Index into the permission list, per item.
    perms: Vec<usize>,
}

fn prepare(
    worker: usize,
    n: usize,
    batch: usize,
    perms: &[Permission],
    resource_ref: Option<&str>,
) -> Result<PreparedBody> {
    let mut ids = Vec::with_capacity(batch);
    let mut idx = Vec::with_capacity(batch);
    let mut items = Vec::with_capacity(batch);
    for i in 0..batch {
        let id = format!("w{worker}-b{n}-i{i}");
        let p = (worker + n + i) % perms.len();
        let mut item = json!({"id": id, "permission": perms[p].to_json()});
        if let (Some(r), Some(_)) = (resource_ref, &perms[p].resource_type) {
            item["resourceRef"] = json!(r);
        }
        items.push(item);
        ids.push(id);
        idx.push(p);
    }
    let bytes = serde_json::to_vec(&json!({ "items": items })).context("cannot encode a body")?;
    Ok(PreparedBody {
        bytes,
        ids,
        perms: idx,
    })
}

/// Decision counts by result.
#[derive(Clone, Copy, Default, Debug)]
pub struct Tally {
    pub allow: u64,
    pub deny: u64,
    pub conditional: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.allow += o.allow;
        self.deny += o.deny;
        self.conditional += o.conditional;
    }
}

/// Checks one answer against its request; returns the decisions by result.
/// An answer as the load generator reads it: every field it checks,
/// borrowed from the body, and the criteria only checked to be an object
/// (building them as a `Value` cost the generator more than the server
/// spent deciding).
#[derive(serde::Deserialize)]
struct AnswerBody<'a> {
    #[serde(borrow)]
    items: Vec<AnswerItem<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerItem<'a> {
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    result: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    plugin_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    resource_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    conditions: Option<AnyObject>,
}

/// Any JSON object, read and dropped.
struct AnyObject;

impl<'de> serde::Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyObject)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn verify(
    status: StatusCode,
    body: &[u8],
    req: &PreparedBody,
    perms: &[Permission],
) -> Result<Tally, String> {
    let snippet = || {
        let t = String::from_utf8_lossy(body);
        t.chars().take(240).collect::<String>()
    };
    if status != StatusCode::OK {
        return Err(format!("HTTP {}: {}", status.as_u16(), snippet()));
    }
    let answer: AnswerBody<'_> =
        serde_json::from_slice(body).map_err(|e| format!("not an answer ({e}): {}", snippet()))?;
    let items = answer.items;
    if items.len() != req.ids.len() {
        return Err(format!(
            "{} decisions for {} items: {}",
            items.len(),
            req.ids.len(),
            snippet()
        ));
    }
    let mut tally = Tally::default();
    for ((item, id), &p) in items.iter().zip(&req.ids).zip(&req.perms) {
        let got_id = item.id.as_deref();
        if got_id != Some(id.as_str()) {
            return Err(format!("decision id {got_id:?} where {id:?} was asked"));
        }
        let perm = &perms[p];
        match item.result.as_deref() {
            Some("ALLOW") => tally.allow += 1,
            Some("DENY") => tally.deny += 1,
            Some("CONDITIONAL") => {
                let Some(rt) = &perm.resource_type else {
                    return Err(format!(
                        "CONDITIONAL for the basic permission {}: {}",
                        perm.name,
                        snippet()
                    ));
                };
                if item.plugin_id.as_deref().is_none_or(str::is_empty)
                    || item.resource_type.as_deref() != Some(rt.as_str())
                    || item.conditions.is_none()
                {
                    return Err(format!(
                        "malformed CONDITIONAL for {} (needs pluginId, resourceType {rt}, conditions): {}",
                        perm.name,
                        snippet()
                    ));
                }
                tally.conditional += 1;
            }
            other => return Err(format!("invalid result {other:?} for {id}: {}", snippet())),
        }
    }
    Ok(tally)
}

/// Settings of one `authorize` run.
pub struct AuthorizeConfig {
    pub url: String,
    pub tokens: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub batch: usize,
    pub permissions: Vec<Permission>,
    /// Sent with every resource permission (Backstage refuses a user's resource
    /// permission without one; the catalog, calling with a plugin token, never sends one).
    pub resource_ref: Option<String>,
    pub timeout: Duration,
}

pub struct AuthorizeResult {
    pub stats: OpStats,
    pub tally: Tally,
    pub elapsed: Duration,
}

impl AuthorizeResult {
    pub fn decisions(&self) -> u64 {
        self.tally.allow + self.tally.deny + self.tally.conditional
    }

    pub fn decisions_per_sec(&self) -> f64 {
        self.decisions() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.stats.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self, cfg: &AuthorizeConfig) -> Value {
        let has = self.stats.ok > 0;
        let ms = |x: f64| if has { json!(round3(x)) } else { Value::Null };
        json!({
            "url": cfg.url,
            "clients": cfg.clients,
            "batch": cfg.batch,
            "duration_secs": round3(cfg.duration.as_secs_f64()),
            "warmup_secs": round3(cfg.warmup.as_secs_f64()),
            "tokens": cfg.tokens.len(),
            "permissions": cfg.permissions.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            "resource_ref": cfg.resource_ref,
            "elapsed_secs": round3(self.elapsed.as_secs_f64()),
            "requests_ok": self.stats.ok,
            "errors": self.stats.errors,
            "decisions": self.decisions(),
            "decisions_per_sec": round3(self.decisions_per_sec()),
            "requests_per_sec": round3(self.requests_per_sec()),
            "p50_ms": ms(self.stats.p50_ms()),
            "p99_ms": ms(self.stats.p99_ms()),
            "max_ms": ms(self.stats.max_ms()),
            "mean_ms": ms(self.stats.mean_ms()),
            "results": {"ALLOW": self.tally.allow, "DENY": self.tally.deny, "CONDITIONAL": self.tally.conditional},
            "error_samples": self.stats.samples,
        })
    }
}

/// Reads bearer tokens, one per line (blank lines and `#` comments skipped).
pub fn read_tokens(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --tokens-file {}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        bail!("{} holds no tokens", path.display());
    }
    Ok(tokens)
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (try 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(timeout)
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")
}

fn bearer(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("a token is not a valid header value")?;
    v.set_sensitive(true);
    Ok(v)
}

/// One POST with a JSON body; returns status, whole body and the time both took.
async fn post(
    http: &reqwest::Client,
    url: &Url,
    auth: &HeaderValue,
    body: Vec<u8>,
) -> Result<(StatusCode, Vec<u8>, Duration), String> {
    let start = Instant::now();
    let resp = http
        .post(url.clone())
        .header(AUTHORIZATION, auth.clone())
        .header(CONTENT_TYPE, JSON)
        .header(ACCEPT, JSON)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {}: {}", url.path(), error_chain(&e)))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("POST {}: reading body: {}", url.path(), error_chain(&e)))?;
    Ok((status, bytes.to_vec(), start.elapsed()))
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

/// Bodies each worker cycles through (ids differ between them).
const BODIES_PER_WORKER: usize = 16;

pub async fn run(cfg: &AuthorizeConfig) -> Result<AuthorizeResult> {
    if cfg.clients == 0 || cfg.batch == 0 {
        bail!("--clients and --batch must be at least 1");
    }
    if cfg.permissions.is_empty() {
        bail!("no permissions to ask about");
    }
    let url = Url::parse(&cfg.url).with_context(|| format!("invalid --url {:?}", cfg.url))?;
    let perms = Arc::new(cfg.permissions.clone());
    let auths: Arc<Vec<HeaderValue>> = Arc::new(
        cfg.tokens
            .iter()
            .map(|t| bearer(t))
            .collect::<Result<_>>()?,
    );
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let deadline = measure_from + cfg.duration;
    let mut handles = Vec::with_capacity(cfg.clients);
    for w in 0..cfg.clients {
        let http = http_client(cfg.timeout)?;
        let bodies = (0..BODIES_PER_WORKER)
            .map(|n| prepare(w, n, cfg.batch, &perms, cfg.resource_ref.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let (url, perms, auths, clients) = (
            url.clone(),
            Arc::clone(&perms),
            Arc::clone(&auths),
            cfg.clients,
        );
        handles.push(tokio::spawn(async move {
            let mut stats = OpStats::new()?;
            let mut tally = Tally::default();
            let mut n = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let body = &bodies[n % bodies.len()];
                let auth = &auths[(w + n * clients) % auths.len()];
                n += 1;
                let outcome = post(&http, &url, auth, body.bytes.clone()).await.and_then(
                    |(status, bytes, latency)| {
                        verify(status, &bytes, body, &perms).map(|t| (t, latency))
                    },
                );
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    Ok((t, latency)) => {
                        stats.success(latency);
                        tally.add(&t);
                    }
                    Err(e) => stats.failure(e),
                }
            }
            anyhow::Ok((stats, tally))
        }));
    }
    let mut stats = OpStats::new()?;
    let mut tally = Tally::default();
    for joined in futures::future::join_all(handles).await {
        let (s, t) = joined.context("an authorize worker panicked")??;
        stats.merge(&s)?;
        tally.add(&t);
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    Ok(AuthorizeResult {
        stats,
        tally,
        elapsed,
    })
}

/// Settings of `policy-change-latency`.
pub struct ChangeConfig {
    /// The Backstage-compatible authorize URL.
    pub url: String,
    /// A user token of `subject`.
    pub token: String,
    /// The user's entity ref, e.g. `user:default/bu00000`.
    pub subject: String,
    /// Roster's admin API base, e.g. `http://127.0.0.1:8080/api/v1`.
    pub admin_url: String,
    pub admin_token: String,
    /// A basic permission that no other role of `subject` decides.
    pub permission: Permission,
    pub role: String,
    pub iterations: u32,
    pub timeout: Duration,
}

/// One timed flip.
struct Flip {
    kind: &'static str,
    /// From sending the admin request until the first decision with the new result.
    from_request: Duration,
    /// From the admin API's answer (the change is committed) until then.
    from_ack: Duration,
    polls: u32,
}

struct Probe {
    http: reqwest::Client,
    url: Url,
    auth: HeaderValue,
    admin: reqwest::Client,
    admin_base: String,
    admin_auth: HeaderValue,
    body: PreparedBody,
    perms: Vec<Permission>,
    timeout: Duration,
}

impl Probe {
    async fn decide(&self) -> Result<&'static str, String> {
        let (status, bytes, _) =
            post(&self.http, &self.url, &self.auth, self.body.bytes.clone()).await?;
        let t = verify(status, &bytes, &self.body, &self.perms)?;
        Ok(if t.allow == 1 {
            "ALLOW"
        } else if t.deny == 1 {
            "DENY"
        } else {
            "CONDITIONAL"
        })
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.admin_base);
        let mut req = self
            .admin
            .request(method.clone(), &url)
            .header(AUTHORIZATION, self.admin_auth.clone())
            .header(ACCEPT, JSON);
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, JSON).body(serde_json::to_vec(b)?);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: reading body"))?;
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{method} {url}: HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        Ok((status, v))
    }

    /// Polls until the decision is `want`; returns the time since `since` and the polls made.
    async fn wait_for(&self, want: &str, since: Instant) -> Result<(Instant, u32)> {
        let mut polls = 0;
        loop {
            polls += 1;
            let got = self.decide().await.map_err(anyhow::Error::msg)?;
            let now = Instant::now();
            if got == want {
                return Ok((now, polls));
            }
            if now.duration_since(since) > self.timeout {
                bail!(
                    "still {got} {} ms after the change (wanted {want})",
                    now.duration_since(since).as_millis()
                );
            }
        }
    }

    /// Sends one admin change and times until the decision reads `want`.
    async fn flip(
        &self,
        kind: &'static str,
        want: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Flip, Value)> {
        let t0 = Instant::now();
        let (_, v) = self.admin(method, path, body).await?;
        let ack = Instant::now();
        let (seen, polls) = self.wait_for(want, t0).await?;
        Ok((
            Flip {
                kind,
                from_request: seen.duration_since(t0),
                from_ack: seen.saturating_duration_since(ack),
                polls,
            },
            v,
        ))
    }
}

fn role_body(role: &str, perm: &str, effect: &str) -> Value {
    json!({
        "name": role,
        "description": "roster-bench policy-change-latency probe",
        "rules": [{"permissions": [perm], "effect": effect}],
    })
}

fn assignment_id(v: &Value) -> Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("POST /access/assignments answered without an id: {v}"))
}

pub async fn change_latency(cfg: &ChangeConfig) -> Result<Value> {
    let body = prepare(0, 0, 1, std::slice::from_ref(&cfg.permission), None)?;
    let probe = Probe {
        http: http_client(Duration::from_secs(10))?,
        url: Url::parse(&cfg.url).with_context(|| format!("invalid --url {:?}", cfg.url))?,
        auth: bearer(&cfg.token)?,
        admin: http_client(Duration::from_secs(30))?,
        admin_base: cfg.admin_url.trim_end_matches('/').to_string(),
        admin_auth: bearer(&cfg.admin_token)?,
        body,
        perms: vec![cfg.permission.clone()],
        timeout: cfg.timeout,
    };
    let role_path = format!("/access/roles/{}", cfg.role);
    let perm = cfg.permission.name.as_str();
    let allow = role_body(&cfg.role, perm, "allow");
    let deny = role_body(&cfg.role, perm, "deny");
    let assignment = json!({"role": cfg.role, "subject": cfg.subject});

    // Set-up: the role allows, and the subject holds it.
    probe.admin(Method::PUT, &role_path, Some(&allow)).await?;
    let (_, v) = probe
        .admin(Method::POST, "/access/assignments", Some(&assignment))
        .await?;
    let mut id = assignment_id(&v)?;
    probe
        .wait_for("ALLOW", Instant::now())
        .await
        .context("the probe permission never became ALLOW after the set-up")?;

    let mut flips = Vec::new();
    for _ in 0..cfg.iterations {
        let (f, _) = probe
            .flip("role_to_deny", "DENY", Method::PUT, &role_path, Some(&deny))
            .await?;
        flips.push(f);
        let (f, _) = probe
            .flip(
                "role_to_allow",
                "ALLOW",
                Method::PUT,
                &role_path,
                Some(&allow),
            )
            .await?;
        flips.push(f);
        let (f, _) = probe
            .flip(
                "unassign",
                "DENY",
                Method::DELETE,
                &format!("/access/assignments/{id}"),
                None,
            )
            .await?;
        flips.push(f);
        let (f, v) = probe
            .flip(
                "assign",
                "ALLOW",
                Method::POST,
                "/access/assignments",
                Some(&assignment),
            )
            .await?;
        flips.push(f);
        id = assignment_id(&v)?;
    }
    // Clean up: leave no trace of the probe in the policy.
    probe
        .admin(Method::DELETE, &format!("/access/assignments/{id}"), None)
        .await?;
    probe.admin(Method::DELETE, &role_path, None).await?;

    let summarize = |sel: &dyn Fn(&Flip) -> bool| -> Value {
        let mut req: Vec<f64> = flips
            .iter()
            .filter(|f| sel(f))
            .map(|f| f.from_request.as_secs_f64() * 1000.0)
            .collect();
        let mut ack: Vec<f64> = flips
            .iter()
            .filter(|f| sel(f))
            .map(|f| f.from_ack.as_secs_f64() * 1000.0)
            .collect();
        let polls: u32 = flips
            .iter()
            .filter(|f| sel(f))
            .map(|f| f.polls)
            .max()
            .unwrap_or(0);
        json!({
            "flips": req.len(),
            "from_request_ms": quantiles(&mut req),
            "from_ack_ms": quantiles(&mut ack),
            "max_polls": polls,
        })
    };
    let mut by_kind = serde_json::Map::new();
    for kind in ["role_to_deny", "role_to_allow", "unassign", "assign"] {
        by_kind.insert(kind.to_string(), summarize(&|f: &Flip| f.kind == kind));
    }
    Ok(json!({
        "url": cfg.url,
        "admin_url": cfg.admin_url,
        "subject": cfg.subject,
        "permission": perm,
        "iterations": cfg.iterations,
        "all": summarize(&|_| true),
        "by_kind": by_kind,
    }))
}

/// p50, p99 and max of samples in ms.
fn quantiles(v: &mut [f64]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"p50": round3(at(0.5)), "p99": round3(at(0.99)), "max": round3(v[v.len() - 1]), "min": round3(v[0])})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms() -> Vec<Permission> {
        DEFAULT_PERMISSIONS
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn permissions_parse_known_and_explicit() {
        let p = Permission::parse("catalog.entity.read").unwrap();
        assert_eq!(p.resource_type.as_deref(), Some("catalog-entity"));
        assert_eq!(p.action.as_deref(), Some("read"));
        let p = Permission::parse("catalog.location.create").unwrap();
        assert_eq!(
            p.to_json(),
            json!({"type":"basic","name":"catalog.location.create","attributes":{"action":"create"}})
        );
        let p = Permission::parse("x.y:my-type:update").unwrap();
        assert_eq!(p.resource_type.as_deref(), Some("my-type"));
        assert_eq!(p.action.as_deref(), Some("update"));
        let p = Permission::parse("x.y:basic").unwrap();
        assert_eq!(p.resource_type, None);
        assert!(Permission::parse("a:b:c:d").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
    }

    #[test]
    fn verification_accepts_valid_answers_and_rejects_wrong_ones() {
        let perms = perms();
        let req = prepare(0, 0, 4, &perms, None).unwrap();
        let answer = |items: Value| serde_json::to_vec(&json!({ "items": items })).unwrap();
        // Items are catalog.entity.read, catalog.location.create, catalog.entity.delete, scaffolder.task.create.
        let cond = json!({"anyOf":[{"rule":"IS_ENTITY_OWNER","resourceType":"catalog-entity","params":{"claims":["user:default/a"]}}]});
        let good = answer(json!([
            {"id": req.ids[0], "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity", "conditions": cond},
            {"id": req.ids[1], "result": "ALLOW"},
            {"id": req.ids[2], "result": "DENY"},
            {"id": req.ids[3], "result": "ALLOW"},
        ]));
        let t = verify(StatusCode::OK, &good, &req, &perms).unwrap();
        assert_eq!((t.allow, t.deny, t.conditional), (2, 1, 1));
        assert!(verify(StatusCode::UNAUTHORIZED, &good, &req, &perms).is_err());
        let swapped = answer(json!([
            {"id": req.ids[1], "result": "ALLOW"},
            {"id": req.ids[0], "result": "ALLOW"},
            {"id": req.ids[2], "result": "DENY"},
            {"id": req.ids[3], "result": "ALLOW"},
        ]));
        assert!(verify(StatusCode::OK, &swapped, &req, &perms).is_err());
        let short = answer(json!([{"id": req.ids[0], "result": "ALLOW"}]));
        assert!(verify(StatusCode::OK, &short, &req, &perms).is_err());
        let conditional_basic = answer(json!([
            {"id": req.ids[0], "result": "ALLOW"},
            {"id": req.ids[1], "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity", "conditions": cond},
            {"id": req.ids[2], "result": "DENY"},
            {"id": req.ids[3], "result": "ALLOW"},
        ]));
        assert!(verify(StatusCode::OK, &conditional_basic, &req, &perms).is_err());
        let bad_result = answer(json!([
            {"id": req.ids[0], "result": "MAYBE"},
            {"id": req.ids[1], "result": "ALLOW"},
            {"id": req.ids[2], "result": "DENY"},
            {"id": req.ids[3], "result": "ALLOW"},
        ]));
        assert!(verify(StatusCode::OK, &bad_result, &req, &perms).is_err());
        for broken in [
            json!({"id": req.ids[0], "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity"}),
            json!({"id": req.ids[0], "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity", "conditions": "x"}),
            json!({"id": req.ids[0], "result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "scaffolder-task", "conditions": cond}),
            json!({"id": req.ids[0], "result": "CONDITIONAL", "resourceType": "catalog-entity", "conditions": cond}),
        ] {
            let body = answer(json!([
                broken,
                {"id": req.ids[1], "result": "ALLOW"},
                {"id": req.ids[2], "result": "DENY"},
                {"id": req.ids[3], "result": "ALLOW"},
            ]));
            assert!(
                verify(StatusCode::OK, &body, &req, &perms).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn quantiles_of_samples() {
        let mut v = vec![3.0, 1.0, 2.0];
        assert_eq!(
            quantiles(&mut v),
            json!({"p50": 2.0, "p99": 3.0, "max": 3.0, "min": 1.0})
        );
    }
}
