//! Bearer-token authentication. Each route group names the scope it needs;
//! a token opens only the endpoints of its own scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_domain::{ApiToken, TokenHash, TokenScope};
use roster_scim::ScimError;
use roster_store::Store;

use crate::scim::wire::ScimErrorResponse;

/// How long a verified token is trusted without asking the database again.
/// Bounds how long a revocation takes to reach every replica.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// Verifies bearer tokens against the store, with a short-lived cache so
/// that a busy SCIM client does not cost a database read per request.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: Arc<Mutex<TokenCache>>,
}

/// Lookups by secret hash, with when they were made (`None`: no such token).
type TokenCache = HashMap<TokenHash, (Option<ApiToken>, Instant)>;

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_name: String,
    pub scope: TokenScope,
}

#[derive(Debug)]
pub enum AuthError {
    Missing,
    Invalid,
    WrongScope,
    Unavailable,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Checks a presented secret for `scope`.
    pub async fn verify(&self, secret: &str, scope: TokenScope) -> Result<Caller, AuthError> {
        let hash = TokenHash::of(secret);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&hash).cloned())
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(t, _)| t);
        let token = match cached {
            Some(token) => token,
            None => {
                let token = self.store.find_token(&hash).await.map_err(|err| {
                    tracing::error!(error = %err, "token lookup failed");
                    AuthError::Unavailable
                })?;
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(hash, (token.clone(), Instant::now()));
                }
                token
            }
        };
        // The lookup was by hash; compare again in constant time so no
        // timing difference depends on the secret's bytes.
        let token = token
            .filter(|t| t.hash.verify(&hash) && t.is_active())
            .ok_or(AuthError::Invalid)?;
        if token.scope != scope {
            return Err(AuthError::WrongScope);
        }
        Ok(Caller {
            token_name: token.name.to_string(),
            scope: token.scope,
        })
    }
}

/// The bearer secret of a request, if it has one.
pub fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

/// Middleware for `/scim/v2`: a valid `scim`-scoped token or a SCIM 401.
pub async fn require_scim(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(secret) = bearer(&req) else {
        return ScimErrorResponse(ScimError::unauthorized()).into_response();
    };
    match auth.verify(secret, TokenScope::Scim).await {
        Ok(caller) => {
            tracing::Span::current().record("caller", caller.token_name.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(AuthError::WrongScope) => ScimErrorResponse(ScimError::forbidden(
            "this token's scope does not open the SCIM API",
        ))
        .into_response(),
        Err(AuthError::Unavailable) => ScimErrorResponse(ScimError::new(
            503,
            None,
            "authentication is temporarily unavailable",
        ))
        .into_response(),
        Err(AuthError::Missing | AuthError::Invalid) => {
            ScimErrorResponse(ScimError::unauthorized()).into_response()
        }
    }
}
