//! The admin API under `/api/v1`: JSON in, JSON out, opened by `admin`-scoped
//! tokens (`roster token create --name ops --scope admin`).

use axum::extract::{Request, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use roster_domain::TokenScope;
use serde_json::json;

use crate::auth::{bearer, AuthError, Authenticator};
use crate::handovers;
use crate::reconciliation::{self, ReconcileError};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reconcile", get(reconcile_get))
        .route("/reconcile/fixes", get(handovers::reconcile_fixes_list))
        .route("/handovers", get(handovers::handovers_list))
        .route(
            "/handovers/{user_id}",
            get(handovers::handovers_get)
                .put(handovers::handovers_put)
                .delete(handovers::handovers_delete),
        )
        // Its own fallback, so unknown admin paths sit behind the token check too.
        .fallback(admin_not_found)
}

async fn admin_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such admin endpoint")
}

/// An admin API error: `{"error": {"status", "message"}}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": message.into()}})),
    )
        .into_response()
}

/// Middleware: a valid `admin`-scoped bearer token, or a JSON 401/403.
pub async fn require_admin(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let outcome = match bearer(&req) {
        Some(secret) => auth.verify(secret, TokenScope::Admin).await,
        None => Err(AuthError::Missing),
    };
    match outcome {
        Ok(caller) => {
            tracing::Span::current().record("caller", caller.token_name.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(AuthError::WrongScope) => error(
            StatusCode::FORBIDDEN,
            "this token's scope does not open the admin API; create one with `roster token create --name <name> --scope admin`",
        ),
        Err(AuthError::Unavailable) => error(StatusCode::SERVICE_UNAVAILABLE, "authentication is temporarily unavailable"),
        Err(AuthError::Missing | AuthError::Invalid) => {
            let mut response = error(StatusCode::UNAUTHORIZED, "an admin bearer token is required");
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"roster\""));
            response
        }
    }
}

/// Compares the directory with the live Backstage catalog and returns every
/// finding with its evidence and proposed fix (a dry run: nothing is changed).
#[utoipa::path(get, path = "/api/v1/reconcile", tag = "admin",
    responses(
        (status = 200, description = "The reconciliation report", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
        (status = 502, description = "Backstage could not be reached or refused", content_type = "application/json", body = Object),
        (status = 503, description = "Backstage is not configured", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn reconcile_get(State(state): State<AppState>) -> Response {
    let client = match reconciliation::catalog_client(&state.config) {
        Ok(client) => client,
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    };
    match reconciliation::reconcile_now(&**state.directory.store(), &client, &state.config).await {
        Ok(report) => match roster_backstage::reconcile::render_json(&report) {
            Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "rendering the reconciliation report failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        },
        Err(ReconcileError::Catalog(err)) => error(StatusCode::BAD_GATEWAY, err.to_string()),
        Err(ReconcileError::NotConfigured(..)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Backstage is not configured",
        ),
        Err(ReconcileError::Store(err)) => {
            tracing::error!(error = %err, "storage failure during reconciliation");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
