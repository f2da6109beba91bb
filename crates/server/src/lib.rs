//! Roster's HTTP server: the SCIM service provider, operational endpoints
//! and the OpenAPI document, over the directory service.
//!
//! Every request takes one path: authenticate → a request id in the span →
//! a [`directory::Directory`] call → one store transaction.

pub mod access;
pub mod access_api;
pub mod admin;
pub mod auth;
pub mod catalog_feed;
pub mod config;
pub mod directory;
pub mod handovers;
pub mod openapi;
pub(crate) mod ops;
pub mod permission;
pub mod reconciliation;
pub mod scim;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use roster_domain::Clock;
use roster_store::Store;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub directory: directory::Directory,
    pub config: Arc<Config>,
    pub access: access::AccessService,
    /// Verifies the tokens Backstage sends to the permission endpoint;
    /// `None` until `[backstage] url` is configured.
    pub token_verifier: Option<roster_backstage::tokens::TokenVerifier>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with every layer, for a given state.
pub fn router(state: AppState, authenticator: auth::Authenticator) -> Router {
    // `layer`, not `route_layer`: unknown SCIM paths need a token too, so
    // nothing about the API is revealed to an anonymous caller.
    let scim = scim::router().layer(middleware::from_fn_with_state(
        authenticator.clone(),
        auth::require_scim,
    ));
    let admin = admin::router()
        .merge(access_api::router())
        .layer(middleware::from_fn_with_state(
            authenticator.clone(),
            admin::require_admin,
        ));
    let decisions = Router::new()
        .route(
            "/api/v1/authorize",
            axum::routing::post(access_api::authorize),
        )
        .route_layer(middleware::from_fn_with_state(
            authenticator.clone(),
            access_api::require_authorize,
        ));
    // Backstage's permission protocol: tokens are Backstage's own, verified
    // in the handler against Backstage's published keys.
    let permission = Router::new()
        .route(
            &format!("{}/authorize", permission::BASE),
            axum::routing::post(permission::authorize),
        )
        .route(
            &format!("{}/health", permission::BASE),
            get(permission::health),
        );
    let feed = Router::new()
        .route(catalog_feed::PATH, get(catalog_feed::entities_get))
        .route_layer(middleware::from_fn_with_state(
            authenticator,
            catalog_feed::require_feed_token,
        ));
    Router::new()
        .nest("/scim/v2", scim)
        .merge(decisions)
        .nest("/api/v1", admin)
        .merge(feed)
        .merge(permission)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn(ops::track_metrics))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(60),
        ))
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: the catalog feed takes its token in the
                // query string, which must never reach the logs.
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %request_id,
                    caller = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

fn internal_error() -> Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({"error": "internal error"}).to_string(),
    )
        .into_response()
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    base_url: String,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and wires the app.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "while binding {} (set `listen` / ROSTER_LISTEN / --listen to another address)",
                config.listen
            )
        })?;
        let address = listener.local_addr()?;
        let base_url = config.base_url(address);
        let directory =
            directory::Directory::new(store.clone(), clock.clone(), &format!("{base_url}/scim/v2"))
                .with_handover_policy(directory::HandoverPolicy {
                    namespace: config.publish.namespace.as_str().to_owned(),
                    fallback_owner: config.backstage.fallback_owner.clone(),
                });
        let catalog = reconciliation::catalog_client(&config).ok();
        let access = access::AccessService::new(
            store.clone(),
            clock.clone(),
            &config.access,
            &config.publish,
            catalog,
        )
        .await
        .context("while loading the access policy")?;
        access.spawn_poller();
        let token_verifier = match config.backstage.url.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(url) => {
                let url = reqwest::Url::parse(url).with_context(|| {
                    format!("backstage.url {url:?} (ROSTER_BACKSTAGE__URL) is not a URL")
                })?;
                Some(roster_backstage::tokens::TokenVerifier::new(
                    &url,
                    "permission",
                ))
            }
        };
        let state = AppState {
            directory,
            config: Arc::new(config),
            access,
            token_verifier,
        };
        let _ = ops::metrics_handle();
        let router = router(state, auth::Authenticator::new(store));
        Ok(Self {
            listener,
            router,
            address,
            base_url,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
