//! A client for Backstage's catalog REST API (`<backend>/api/catalog`).
//!
//! Roster reads the catalog to reconcile it with the directory, and changes it
//! through two calls only: delete an entity by uid, and refresh an entity.
//! Every call Roster makes is idempotent (reads, a delete that answers 204 when
//! the entity is already gone, a refresh), so the client retries all of them
//! on transport failures, timeouts, 5xx and 429, with exponential backoff and
//! jitter. A 4xx other than 429 is an answer, not a hiccup, and is never
//! retried.
//!
//! Errors are typed ([`CatalogError`]) and their `Display` tells an operator
//! what to check. URLs in errors and logs carry no query string: cursors are
//! long and say nothing to a person, and nothing secret is ever in a URL.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::{json, Value};

/// The catalog plugin's path under the backend's base URL.
const CATALOG_PATH: &str = "api/catalog";

/// The static external-access token Roster presents to Backstage
/// (`backend.auth.externalAccess`, type `static`). Its `Debug` is masked so
/// that a config dump or a panic message never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct CatalogToken(String);

impl CatalogToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CatalogToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CatalogToken(***)")
    }
}

/// How to reach the catalog and how patient to be with it.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// The Backstage backend's base URL, e.g. `http://localhost:7007`. The
    /// client appends `/api/catalog` unless the URL already ends with it.
    pub base_url: String,
    pub token: CatalogToken,
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole attempt: connect, send, and read the answer.
    pub request_timeout: Duration,
    /// Attempts per call, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles with each further retry.
    pub initial_backoff: Duration,
    /// Upper bound on one delay, also on what a `Retry-After` header asks for.
    pub max_backoff: Duration,
    /// Entities per `by-query` page.
    pub page_size: u32,
    /// Entity refs per `by-refs` request, which keeps request bodies small.
    pub refs_chunk_size: usize,
}

impl CatalogConfig {
    /// A config with defaults suited to a catalog of a few hundred thousand
    /// entities on a backend under normal load.
    pub fn new(base_url: impl Into<String>, token: CatalogToken) -> Self {
        Self {
            base_url: base_url.into(),
            token,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            page_size: 500,
            refs_chunk_size: 200,
        }
    }
}

/// What went wrong talking to the catalog, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "the Backstage URL {url:?} is not usable ({reason}); set it to the backend's base URL, \
         e.g. http://localhost:7007"
    )]
    InvalidBaseUrl { url: String, reason: String },

    #[error(
        "cannot reach Backstage at {url} ({attempts} attempt(s)): {}; check the Backstage URL in \
         Roster's config and that the Backstage backend is running",
        error_chain(.source)
    )]
    Unreachable {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "Backstage at {url} did not answer within {timeout:?} ({attempts} attempt(s)); the \
         backend may be overloaded: retry later, or raise the catalog request timeout"
    )]
    Timeout {
        url: String,
        timeout: Duration,
        attempts: u32,
    },

    #[error(
        "Backstage refused Roster's token for {url} (401: {message}); check the static token in \
         backend.auth.externalAccess in Backstage's app-config and the token Roster is \
         configured with: they must be the same"
    )]
    Unauthorized { url: String, message: String },

    #[error(
        "Backstage has nothing at {url} (404 {name}: {message}); if this is the catalog API \
         itself, check that Roster's Backstage URL is the backend's base URL (Roster adds \
         /api/catalog)"
    )]
    NotFound {
        url: String,
        name: String,
        message: String,
    },

    #[error("Backstage answered {method} {url} with {status} {name}: {message}{}", status_hint(*.status))]
    Backstage {
        method: String,
        url: String,
        status: u16,
        name: String,
        message: String,
    },

    #[error(
        "Backstage's answer to {url} is not what Roster expects ({reason}); check that the URL \
         points at a Backstage backend"
    )]
    InvalidResponse { url: String, reason: String },
}

impl CatalogError {
    /// True when no further call can succeed either (wrong URL, wrong token,
    /// backend down), so a batch of calls should stop instead of failing one
    /// by one.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            CatalogError::InvalidBaseUrl { .. }
                | CatalogError::Unreachable { .. }
                | CatalogError::Timeout { .. }
                | CatalogError::Unauthorized { .. }
        )
    }
}

/// The sentence an operator needs after Backstage's own message.
fn status_hint(status: u16) -> &'static str {
    match status {
        400 => "; Backstage rejected Roster's request: please report this as a Roster bug",
        403 => {
            "; the token's accessRestrictions in backend.auth.externalAccess do not allow this \
             call: allow the catalog plugin (and catalog.entity.delete / catalog.entity.refresh \
             for fixes)"
        }
        429 => "; Backstage is rate-limiting Roster: retry later",
        500..=599 => "; Backstage failed: see the Backstage backend's logs",
        _ => "",
    }
}

/// `reqwest` puts the useful part ("Connection refused") at the end of the
/// source chain; show the whole chain on one line.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deletion {
    Deleted,
    /// Backstage answered 404 NotFoundError: someone (or the orphan cleanup)
    /// was faster. The goal is reached all the same.
    AlreadyGone,
}

/// A catalog location (`GET /locations/by-entity/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub id: String,
    /// `url`, `file`, ... (Backstage's location type).
    pub location_type: String,
    pub target: String,
}

impl fmt::Display for Location {
    /// The `type:target` form Backstage uses in `backstage.io/managed-by-location`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.location_type, self.target)
    }
}

/// The catalog API client. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    /// Always ends with `/api/catalog/`, so that joining keeps the prefix.
    base: Url,
    config: CatalogConfig,
}

impl CatalogClient {
    pub fn new(config: CatalogConfig) -> Result<Self, CatalogError> {
        let base = catalog_base(&config.base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| CatalogError::InvalidBaseUrl {
                url: config.base_url.clone(),
                reason: format!("cannot set up an HTTP client: {}", error_chain(&error)),
            })?;
        Ok(Self { http, base, config })
    }

    /// The catalog API's base URL, `<backend>/api/catalog/`.
    pub fn catalog_url(&self) -> &Url {
        &self.base
    }

    /// Pages through `GET /entities/by-query`. Filters are ORed; within one
    /// filter, comma-separated `key=value` pairs are ANDed (Backstage's
    /// syntax). An empty `fields` asks for whole entities.
    pub fn pages(&self, filters: &[&str], fields: &[&str]) -> EntityPages<'_> {
        EntityPages {
            client: self,
            filters: filters.iter().map(|f| f.to_string()).collect(),
            fields: fields.join(","),
            state: PageState::Start,
            seen_cursors: HashSet::new(),
            total_items: None,
        }
    }

    /// Every entity that matches, all pages read. For very large catalogs
    /// prefer [`CatalogClient::pages`] and process page by page.
    pub async fn list_entities(
        &self,
        filters: &[&str],
        fields: &[&str],
    ) -> Result<Vec<Value>, CatalogError> {
        let mut pages = self.pages(filters, fields);
        let mut entities = Vec::new();
        while let Some(page) = pages.next_page().await? {
            entities.extend(page);
        }
        Ok(entities)
    }

    /// `POST /entities/by-refs`: one answer per ref, in the same order, `None`
    /// for refs the catalog does not know. Sent in chunks of
    /// `refs_chunk_size`.
    pub async fn entities_by_refs(
        &self,
        refs: &[impl AsRef<str>],
        fields: &[&str],
    ) -> Result<Vec<Option<Value>>, CatalogError> {
        let url = self.endpoint(&["entities", "by-refs"]);
        let mut found = Vec::with_capacity(refs.len());
        for chunk in refs.chunks(self.config.refs_chunk_size.max(1)) {
            let chunk: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
            let mut body = json!({ "entityRefs": chunk });
            if !fields.is_empty() {
                body["fields"] = json!(fields);
            }
            let answer = self.call(Method::POST, &url, Some(&body)).await?;
            let mut items = match answer.json(&url)? {
                Value::Object(mut object) => match object.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => return Err(invalid(&url, "no `items` array")),
                },
                _ => return Err(invalid(&url, "not a JSON object")),
            };
            if items.len() != chunk.len() {
                return Err(invalid(
                    &url,
                    &format!("{} items for {} refs", items.len(), chunk.len()),
                ));
            }
            found.extend(items.drain(..).map(|item| match item {
                Value::Null => None,
                entity => Some(entity),
            }));
        }
        Ok(found)
    }

    /// Entities owned by `owner_ref` (a full ref such as `group:default/team-a`):
    /// those whose `spec.owner` says so literally, or whose computed `ownedBy`
    /// relation points at it (which also catches short forms like `team-a`).
    pub async fn entities_owned_by(
        &self,
        owner_ref: &str,
        fields: &[&str],
    ) -> Result<Vec<Value>, CatalogError> {
        let by_spec = format!("spec.owner={owner_ref}");
        let by_relation = format!("relations.ownedBy={owner_ref}");
        self.list_entities(&[&by_spec, &by_relation], fields).await
    }

    /// `GET /entities/by-name/{kind}/{namespace}/{name}`; `None` when the
    /// catalog has no such entity.
    pub async fn entity_by_name(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, CatalogError> {
        let url = self.endpoint(&["entities", "by-name", kind, namespace, name]);
        match self.call(Method::GET, &url, None).await {
            Ok(answer) => answer.json(&url).map(Some),
            Err(error) if is_backstage_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `DELETE /entities/by-uid/{uid}`. The entity comes back if a location
    /// or provider still emits it; that is the caller's concern.
    pub async fn delete_entity_by_uid(&self, uid: &str) -> Result<Deletion, CatalogError> {
        let url = self.endpoint(&["entities", "by-uid", uid]);
        match self.call(Method::DELETE, &url, None).await {
            Ok(_) => Ok(Deletion::Deleted),
            Err(error) if is_backstage_not_found(&error) => Ok(Deletion::AlreadyGone),
            Err(error) => Err(error),
        }
    }

    /// `POST /refresh`: asks the catalog to reprocess the entity and the
    /// locations that emit it, now rather than at the next processing round.
    pub async fn refresh_entity(&self, entity_ref: &str) -> Result<(), CatalogError> {
        let url = self.endpoint(&["refresh"]);
        let body = json!({ "entityRef": entity_ref });
        self.call(Method::POST, &url, Some(&body)).await.map(drop)
    }

    /// `GET /locations/by-entity/{kind}/{namespace}/{name}`: the location that
    /// produced the entity; `None` when the entity or its location is unknown.
    pub async fn location_of_entity(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Location>, CatalogError> {
        let url = self.endpoint(&["locations", "by-entity", kind, namespace, name]);
        let value = match self.call(Method::GET, &url, None).await {
            Ok(answer) => answer.json(&url)?,
            Err(error) if is_backstage_not_found(&error) => return Ok(None),
            Err(error) => return Err(error),
        };
        // `GET /locations` wraps each location in `{data: ...}`; accept that
        // shape here too rather than depend on which one this release uses.
        let location = value.get("data").unwrap_or(&value);
        let text = |key: &str| location.get(key).and_then(Value::as_str).map(str::to_owned);
        match (text("id"), text("type"), text("target")) {
            (Some(id), Some(location_type), Some(target)) => Ok(Some(Location {
                id,
                location_type,
                target,
            })),
            _ => Err(invalid(&url, "a location needs `id`, `type` and `target`")),
        }
    }

    /// `<catalog>/<segments...>`, each segment percent-encoded, so a name or
    /// uid can never change the path's shape.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // `base` ends with `/`, which leaves an empty last segment.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One call with retries. Answers 2xx as `Ok`; everything else becomes
    /// the matching [`CatalogError`].
    async fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Answer, CatalogError> {
        let max_attempts = self.config.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.config.token.expose())
                .header(ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, retry_after, bytes.to_vec())),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok((status, _, body)) if status.is_success() => return Ok(Answer { body }),
                Ok((status, retry_after, body)) => {
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if retryable && attempt < max_attempts {
                        let delay = self.backoff(attempt).max(
                            retry_after
                                .unwrap_or(Duration::ZERO)
                                .min(self.config.max_backoff),
                        );
                        tracing::warn!(
                            method = %method, url = %display_url(url), status = status.as_u16(),
                            attempt, delay_ms = delay.as_millis() as u64,
                            "Backstage catalog call failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(status_error(&method, url, status, &body));
                }
                Err(error) => {
                    if attempt < max_attempts {
                        let delay = self.backoff(attempt);
                        tracing::warn!(
                            method = %method, url = %display_url(url), error = %error_chain(&error),
                            attempt, delay_ms = delay.as_millis() as u64,
                            "Backstage catalog call failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(self.transport_error(url, attempt, error));
                }
            }
        }
    }

    /// Exponential backoff with "equal jitter": half the delay is fixed, half
    /// random, so concurrent Rosters (several replicas) do not retry in step
    /// yet every retry still waits at least half the nominal delay.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let nominal = self
            .config
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff);
        let half = nominal / 2;
        let jitter_nanos = rand::thread_rng().gen_range(0..=half.as_nanos() as u64);
        half + Duration::from_nanos(jitter_nanos)
    }

    fn transport_error(&self, url: &Url, attempts: u32, source: reqwest::Error) -> CatalogError {
        // A connect timeout is a reachability problem, not a slow backend.
        if source.is_timeout() && !source.is_connect() {
            CatalogError::Timeout {
                url: display_url(url),
                timeout: self.config.request_timeout,
                attempts,
            }
        } else {
            CatalogError::Unreachable {
                url: display_url(url),
                attempts,
                source,
            }
        }
    }
}

/// A successful answer's body.
struct Answer {
    body: Vec<u8>,
}

impl Answer {
    fn json(&self, url: &Url) -> Result<Value, CatalogError> {
        serde_json::from_slice(&self.body)
            .map_err(|error| invalid(url, &format!("not JSON: {error}")))
    }
}

/// Pages of `GET /entities/by-query`, read one at a time.
///
/// The first request carries the filters, `fields`, `limit` and the order.
/// Later requests carry the `cursor` plus `fields` and `limit` only: Backstage
/// bakes the filters and the order into the cursor and rejects or ignores them
/// alongside one, while `fields` and `limit` apply per request and are not
/// remembered (leaving them out would fetch whole entities 20 at a time).
pub struct EntityPages<'c> {
    client: &'c CatalogClient,
    filters: Vec<String>,
    fields: String,
    state: PageState,
    /// Cursors already followed: a backend that hands one out twice would
    /// otherwise keep Roster paging forever.
    seen_cursors: HashSet<String>,
    total_items: Option<u64>,
}

enum PageState {
    Start,
    Next(String),
    Done,
}

impl EntityPages<'_> {
    /// The next page's entities, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, CatalogError> {
        let mut url = self.client.endpoint(&["entities", "by-query"]);
        let limit = self.client.config.page_size.max(1).to_string();
        {
            let mut query = url.query_pairs_mut();
            match &self.state {
                PageState::Done => return Ok(None),
                PageState::Start => {
                    for filter in &self.filters {
                        query.append_pair("filter", filter);
                    }
                    query.append_pair("orderField", "metadata.name,asc");
                }
                PageState::Next(cursor) => {
                    query.append_pair("cursor", cursor);
                }
            }
            if !self.fields.is_empty() {
                query.append_pair("fields", &self.fields);
            }
            query.append_pair("limit", &limit);
        }
        let answer = self.client.call(Method::GET, &url, None).await?;
        let mut page = answer.json(&url)?;
        let items = match page.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => return Err(invalid(&url, "no `items` array")),
        };
        if self.total_items.is_none() {
            self.total_items = page.get("totalItems").and_then(Value::as_u64);
        }
        let next = page
            .get("pageInfo")
            .and_then(|info| info.get("nextCursor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.state = match next {
            Some(cursor) => {
                if !self.seen_cursors.insert(cursor.clone()) {
                    return Err(invalid(&url, "the same nextCursor came back twice"));
                }
                PageState::Next(cursor)
            }
            None => PageState::Done,
        };
        Ok(Some(items))
    }

    /// `totalItems` as the first page reported it, for progress display.
    pub fn total_items(&self) -> Option<u64> {
        self.total_items
    }
}

/// `<base>/api/catalog/` from what an operator configured.
fn catalog_base(configured: &str) -> Result<Url, CatalogError> {
    let unusable = |reason: &str| CatalogError::InvalidBaseUrl {
        url: configured.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(configured.trim()).map_err(|error| unusable(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(unusable("the scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(unusable("it must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with(&format!("/{CATALOG_PATH}")) {
        format!("{path}/")
    } else {
        format!("{path}/{CATALOG_PATH}/")
    };
    url.set_path(&path);
    Ok(url)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    // Only the delay-seconds form; an HTTP date is rare from Backstage and
    // the backoff covers it.
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A URL as errors and logs show it: without the query.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn invalid(url: &Url, reason: &str) -> CatalogError {
    CatalogError::InvalidResponse {
        url: display_url(url),
        reason: reason.to_owned(),
    }
}

/// A 404 that Backstage itself produced for a missing entity or location, as
/// opposed to a 404 from a proxy or a wrong base URL.
fn is_backstage_not_found(error: &CatalogError) -> bool {
    matches!(error, CatalogError::NotFound { name, .. } if name == "NotFoundError")
}

/// Backstage's error body: `{"error": {"name", "message"}, "request": ...,
/// "response": {"statusCode"}}`. Anything else (a proxy's HTML page) keeps
/// the start of its text as the message.
fn status_error(method: &Method, url: &Url, status: StatusCode, body: &[u8]) -> CatalogError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let error = parsed.as_ref().and_then(|value| value.get("error"));
    let field = |key: &str| {
        error
            .and_then(|error| error.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let name = field("name").unwrap_or_default();
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    let url = display_url(url);
    match status {
        StatusCode::UNAUTHORIZED => CatalogError::Unauthorized { url, message },
        StatusCode::NOT_FOUND => CatalogError::NotFound { url, name, message },
        _ => CatalogError::Backstage {
            method: method.to_string(),
            url,
            status: status.as_u16(),
            name,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_the_catalog_path_once() {
        for (configured, expected) in [
            (
                "http://localhost:7007",
                "http://localhost:7007/api/catalog/",
            ),
            (
                "http://localhost:7007/",
                "http://localhost:7007/api/catalog/",
            ),
            (
                "https://b.example/backstage",
                "https://b.example/backstage/api/catalog/",
            ),
            (
                "http://localhost:7007/api/catalog",
                "http://localhost:7007/api/catalog/",
            ),
            (
                "http://localhost:7007/api/catalog/",
                "http://localhost:7007/api/catalog/",
            ),
        ] {
            let url = catalog_base(configured).map(|url| url.to_string());
            assert_eq!(url.ok().as_deref(), Some(expected), "{configured}");
        }
        for bad in ["localhost:7007", "ftp://x", "not a url", "http://x/?a=b"] {
            assert!(catalog_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_never_prints() {
        let config = CatalogConfig::new("http://x", CatalogToken::new("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn backstage_error_bodies_are_parsed() {
        let url = Url::parse("http://x/api/catalog/entities?cursor=abc").ok();
        let Some(url) = url else { return };
        let body = br#"{"error":{"name":"InputError","message":"bad filter"},"response":{"statusCode":400}}"#;
        let error = status_error(&Method::GET, &url, StatusCode::BAD_REQUEST, body);
        let text = error.to_string();
        assert!(text.contains("400 InputError: bad filter"), "{text}");
        assert!(text.contains("Roster bug"), "{text}");
        assert!(!text.contains("cursor"), "{text}");
        let error = status_error(
            &Method::GET,
            &url,
            StatusCode::BAD_GATEWAY,
            b"<html>oops</html>",
        );
        assert!(error.to_string().contains("<html>oops</html>"));
    }
}
