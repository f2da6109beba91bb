//! The catalog feed: `GET /backstage/entities.yaml`, every published user
//! and group as Backstage entities, for a Backstage `url` location.
//!
//! One request takes this path:
//!
//! 1. [`require_feed_token`]: a `catalog-feed` token, from `?token=` (a
//!    Backstage URL reader sends no credentials) or a bearer header.
//! 2. The directory's fingerprint (one cheap store query) becomes the
//!    `ETag`; a matching `If-None-Match` is answered `304` at once.
//! 3. [`assign_entity_names`] gives every user and group that has no
//!    entity name yet one, persisted in the store; existing names never
//!    change.
//! 4. The body is streamed page by page from the store (users, then
//!    groups), encoded as it goes, so memory stays flat however large the
//!    directory. A store failure half-way aborts the response rather than
//!    end it early, so Backstage never mistakes a truncated feed for a
//!    complete one (which would orphan the missing entities).
//!
//! Names are assigned here, lazily, rather than when a user is created:
//! one place covers SCIM, bulk, databases migrated from before names
//! existed and anything added later, and the directory's write path stays
//! as fast as it was. Naming is deterministic (oldest first, the §1.4 rules)
//! and race-free across replicas (see `Store::claim_entity_names`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use roster_backstage::entity::PublishConfig;
use roster_backstage::feed::{Encoder, Format, GroupIndex};
use roster_backstage::names::{self, EntityName, NameStrategy};
use roster_domain::{MemberKind, TokenScope};
use roster_store::{Position, Store, StoreError, StoreResult};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::auth::{bearer, AuthError, Authenticator};
use crate::AppState;

/// Where the feed is served.
pub const PATH: &str = "/backstage/entities.yaml";

/// Resources named per store round trip.
const NAMING_BATCH: u64 = 1000;
/// How often naming starts over after losing a race to another replica
/// before it gives up for this request (the rest are named next time).
const NAMING_RETRIES: usize = 5;
/// Users read per store round trip.
const USER_PAGE: u64 = 1000;
/// Groups read per store round trip (each with all its members).
const GROUP_PAGE: u64 = 100;
/// A body chunk is sent once it is this large.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks encoded ahead of what the client has taken.
const READ_AHEAD: usize = 2;

/// How many names one [`assign_entity_names`] call gave out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamingReport {
    pub users: usize,
    pub groups: usize,
}

/// Gives every user and group without an entity name one, oldest first:
/// its base name (users by `strategy`) or, when that is taken by another
/// resource of the same kind, the first free `base-2`, `base-3`, …
/// Names already given are never changed.
pub async fn assign_entity_names(
    store: &dyn Store,
    strategy: NameStrategy,
) -> StoreResult<NamingReport> {
    Ok(NamingReport {
        users: assign_kind(store, MemberKind::User, strategy).await?,
        groups: assign_kind(store, MemberKind::Group, strategy).await?,
    })
}

async fn assign_kind(
    store: &dyn Store,
    kind: MemberKind,
    strategy: NameStrategy,
) -> StoreResult<usize> {
    let mut taken: Option<HashSet<String>> = None;
    let mut assigned = 0;
    let mut lost_races = 0;
    loop {
        let bases: Vec<(Uuid, EntityName)> = match kind {
            MemberKind::User => store
                .users_without_entity_name(NAMING_BATCH)
                .await?
                .iter()
                .map(|u| (u.id.as_uuid(), names::user_base_name(strategy, u)))
                .collect(),
            MemberKind::Group => store
                .groups_without_entity_name(NAMING_BATCH)
                .await?
                .iter()
                .map(|g| (g.id.as_uuid(), names::group_base_name(g)))
                .collect(),
        };
        if bases.is_empty() {
            return Ok(assigned);
        }
        let taken_now = match &mut taken {
            Some(names) => names,
            None => taken.insert(store.entity_names(kind).await?),
        };
        let claims: Vec<(Uuid, String)> = bases
            .iter()
            .map(|(id, base)| (*id, names::choose(base, taken_now).folded()))
            .collect();
        let won = store.claim_entity_names(kind, &claims).await?;
        assigned += won.len();
        if won.len() < claims.len() {
            // Another replica named some of these, or took a name chosen
            // here, first: start again from what the store now holds.
            lost_races += 1;
            if lost_races > NAMING_RETRIES {
                tracing::warn!(
                    kind = kind.as_str(),
                    "could not name every resource; the rest are named on the next feed request"
                );
                return Ok(assigned);
            }
            taken = None;
        }
    }
}

/// A JSON error, e.g. `{"error": "..."}`.
fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Logs a storage failure (once, here) and answers opaquely.
fn store_failure(err: StoreError) -> Response {
    tracing::error!(error = %err, "catalog feed: storage failure");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// The `token` query parameter, if any.
fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
}

/// Middleware for the feed: a `catalog-feed` token in `?token=` or in an
/// `Authorization: Bearer` header (the header wins when both are sent).
/// No or an unknown token is a 401; a token of another scope a 403.
pub async fn require_feed_token(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let secret = bearer(&req)
        .map(str::to_owned)
        .or_else(|| query_token(req.uri().query()))
        .filter(|s| !s.is_empty());
    let outcome = match &secret {
        Some(secret) => auth.verify(secret, TokenScope::CatalogFeed).await,
        None => Err(AuthError::Missing),
    };
    match outcome {
        Ok(caller) => {
            tracing::Span::current().record("caller", caller.token_name.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(AuthError::WrongScope) => json_error(
            StatusCode::FORBIDDEN,
            "this token's scope does not open the catalog feed; create a feed token with \
             `roster token create --name backstage --scope catalog-feed`",
        ),
        Err(AuthError::Unavailable) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication is temporarily unavailable",
        ),
        Err(AuthError::Missing | AuthError::Invalid) => {
            let mut response = json_error(
                StatusCode::UNAUTHORIZED,
                "a catalog-feed token is required, as ?token=... or a bearer token",
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster\""),
            );
            response
        }
    }
}

/// The entity tag of the feed for a directory state, configuration and
/// representation. Bump `feed-v1` when the mapping changes, so clients
/// holding a body from an older Roster fetch a fresh one.
fn entity_tag(fingerprint: &str, config: &PublishConfig, format: Format) -> String {
    let config = serde_json::to_string(config).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update("feed-v1\n")
        .chain_update(fingerprint)
        .chain_update("\n")
        .chain_update(config)
        .chain_update("\n")
        .chain_update(format.tag())
        .finalize();
    format!("W/\"{}\"", hex_prefix(&digest, 16))
}

fn hex_prefix(bytes: &[u8], digits: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(digits)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect()
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// prescribes for `If-None-Match`) or is `*`.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `GET /backstage/entities.yaml`: every published entity, as YAML
/// documents or (with `Accept: application/json`) a JSON array.
pub async fn entities_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let store = state.directory.store().clone();
    let config = state.config.publish.clone();
    let fingerprint = match store.directory_fingerprint().await {
        Ok(fingerprint) => fingerprint,
        Err(err) => return store_failure(err),
    };
    let etag = entity_tag(fingerprint.as_str(), &config, format);
    let mut response = if not_modified(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match feed_body(store, config, format).await {
            Ok(body) => {
                let mut response = Response::new(body);
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                );
                response
            }
            Err(err) => return store_failure(err),
        }
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, header(&etag));
    headers.insert(VARY, HeaderValue::from_static("accept"));
    // Caches may keep the body but must ask (cheaply, with the ETag)
    // before reusing it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

/// Names whatever is unnamed, reads the group graph, and returns the body
/// that streams the rest.
async fn feed_body(
    store: Arc<dyn Store>,
    config: PublishConfig,
    format: Format,
) -> StoreResult<Body> {
    let named = assign_entity_names(&*store, config.name_strategy).await?;
    if named != NamingReport::default() {
        tracing::info!(
            users = named.users,
            groups = named.groups,
            "catalog feed: named new entities"
        );
    }
    let graph = store.group_graph().await?;
    let index = GroupIndex::new(
        graph
            .groups
            .into_iter()
            .map(|(id, name)| (id, name.as_deref().and_then(stored_name))),
        &graph.edges,
    );
    Ok(Body::from_stream(feed_stream(store, config, index, format)))
}

/// A persisted name as an [`EntityName`]. Only valid names are ever
/// stored; anything else means the database was edited by hand, and the
/// resource is left out rather than break the whole feed.
fn stored_name(name: &str) -> Option<EntityName> {
    match EntityName::parse(name) {
        Ok(name) => Some(name),
        Err(err) => {
            tracing::warn!(name, error = %err, "catalog feed: skipping an invalid stored entity name");
            None
        }
    }
}

enum Phase {
    Users(Position),
    Groups(Position),
    Done,
}

struct Feed {
    store: Arc<dyn Store>,
    config: PublishConfig,
    index: GroupIndex,
    encoder: Encoder,
    phase: Phase,
}

impl Feed {
    /// Encodes the next page into `out` and moves on.
    async fn page(&mut self, out: &mut Vec<u8>) -> StoreResult<()> {
        match self.phase {
            Phase::Users(after) => {
                let page = self.store.catalog_users(after, USER_PAGE).await?;
                for item in &page.items {
                    let Some(name) = item.entity_name.as_deref().and_then(stored_name) else {
                        continue;
                    };
                    if let Some(entity) =
                        self.index
                            .user_document(&self.config, &item.user, &name, &item.groups)
                    {
                        self.encoder
                            .entity(&entity, out)
                            .map_err(StoreError::backend)?;
                    }
                }
                self.phase = page
                    .next
                    .map_or(Phase::Groups(Position::START), Phase::Users);
            }
            Phase::Groups(after) => {
                let page = self.store.catalog_groups(after, GROUP_PAGE).await?;
                for item in &page.items {
                    let Some(name) = item.entity_name.as_deref().and_then(stored_name) else {
                        continue;
                    };
                    let members: Vec<(Option<EntityName>, bool)> = item
                        .members
                        .iter()
                        .map(|m| (m.entity_name.as_deref().and_then(stored_name), m.active))
                        .collect();
                    let entity = self.index.group_document(
                        &self.config,
                        &item.group,
                        &name,
                        members
                            .iter()
                            .map(|(name, active)| (name.as_ref(), *active)),
                    );
                    self.encoder
                        .entity(&entity, out)
                        .map_err(StoreError::backend)?;
                }
                match page.next {
                    Some(next) => self.phase = Phase::Groups(next),
                    None => {
                        self.encoder.finish(out);
                        self.phase = Phase::Done;
                    }
                }
            }
            Phase::Done => {}
        }
        Ok(())
    }
}

/// The body: chunks of at least [`CHUNK_BYTES`] (the last may be smaller).
///
/// A task of its own reads and encodes up to [`READ_AHEAD`] chunks ahead of
/// the client, so store reads overlap with sending; it stops as soon as the
/// client goes away (the body, and with it the channel, is dropped).
fn feed_stream(
    store: Arc<dyn Store>,
    config: PublishConfig,
    index: GroupIndex,
    format: Format,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (chunks, received) = tokio::sync::mpsc::channel(READ_AHEAD);
    let mut feed = Feed {
        store,
        config,
        index,
        encoder: Encoder::new(format),
        phase: Phase::Users(Position::START),
    };
    let produce = async move {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        feed.encoder.start(&mut chunk);
        loop {
            while chunk.len() < CHUNK_BYTES && !matches!(feed.phase, Phase::Done) {
                if let Err(err) = feed.page(&mut chunk).await {
                    // Logged once, here; the error aborts the response so
                    // the client sees a failed read, never a short feed.
                    tracing::error!(error = %err, "catalog feed: storage failure while streaming");
                    let failed = std::io::Error::other("the catalog feed failed while streaming");
                    let _ = chunks.send(Err(failed)).await;
                    return;
                }
            }
            if chunk.is_empty() {
                return;
            }
            let full = std::mem::replace(
                &mut chunk,
                Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            );
            if chunks.send(Ok(Bytes::from(full))).await.is_err() {
                return;
            }
        }
    };
    tokio::spawn(produce.instrument(tracing::Span::current()));
    futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|item| (item, received))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_come_from_the_query_string() {
        assert_eq!(query_token(Some("token=abc")), Some("abc".into()));
        assert_eq!(query_token(Some("x=1&token=a%2Bb%3D")), Some("a+b=".into()));
        assert_eq!(query_token(Some("tokens=abc")), None);
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = "W/\"0123456789abcdef\"";
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            not_modified(&headers, etag)
        };
        assert!(check("W/\"0123456789abcdef\""));
        assert!(check("\"0123456789abcdef\""));
        assert!(check("\"other\", W/\"0123456789abcdef\""));
        assert!(check("*"));
        assert!(!check("W/\"0123456789abcdee\""));
        assert!(!not_modified(&HeaderMap::new(), etag));
    }

    #[test]
    fn entity_tags_depend_on_state_config_and_format() {
        let config = PublishConfig::default();
        let a = entity_tag("u1-2-g0-0", &config, Format::Yaml);
        assert!(a.starts_with("W/\"") && a.len() == 20, "{a}");
        assert_eq!(a, entity_tag("u1-2-g0-0", &config, Format::Yaml));
        assert_ne!(a, entity_tag("u1-3-g0-0", &config, Format::Yaml));
        assert_ne!(a, entity_tag("u1-2-g0-0", &config, Format::Json));
        let other = PublishConfig {
            include_deactivated: true,
            ..PublishConfig::default()
        };
        assert_ne!(a, entity_tag("u1-2-g0-0", &other, Format::Yaml));
    }
}
