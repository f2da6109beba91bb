//! Backstage's permission protocol, served so that Backstage's discovery
//! can route the `permission` plugin id to Roster:
//! `POST /backstage/permission/authorize` and `GET .../health`.
//!
//! Every bearer token is verified against Backstage's published keys
//! (`roster_backstage::tokens`); the user comes from the token's `sub` (or
//! its `obo` token) and their groups from Roster's directory, never from
//! the token. Errors use Backstage's error shape, so its client reports
//! them as it would its own backend's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_authz::{Action, Decision, Principal};
use roster_backstage::tokens::{Caller, TokenError};
use serde_json::{json, Value};

use crate::access::{Answer, AnswerJson, AnswersJson, Question, ResultJson};
use crate::AppState;

/// Where Roster serves the permission plugin id.
pub const BASE: &str = "/backstage/permission";

/// Most items in one request: Backstage sends one per user action; this is
/// far above that and keeps one request's work bounded.
pub const MAX_ITEMS: usize = 1000;
/// Most resource refs in one batched item.
pub const MAX_REFS_PER_ITEM: usize = 100;

/// An error in Backstage's shape: `{error: {name, message}, response:
/// {statusCode}}`.
pub fn backstage_error(status: StatusCode, name: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({
            "error": {"name": name, "message": message.into()},
            "request": {"method": "POST", "url": format!("{BASE}/authorize")},
            "response": {"statusCode": status.as_u16()},
        })),
    )
        .into_response()
}

fn input_error(message: impl Into<String>) -> Response {
    backstage_error(StatusCode::BAD_REQUEST, "InputError", message)
}

/// `GET /backstage/permission/health`.
#[utoipa::path(get, path = "/backstage/permission/health", tag = "access",
    responses(
        (status = 200, description = "The endpoint answers: {\"status\": \"ok\"}", content_type = "application/json", body = Object),
    ),
    security(("backstage" = [])))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// One parsed request item.
struct Item {
    id: String,
    question: Question,
    /// Whether `resourceRef` was a list (the batched form), so the answer
    /// is a list too.
    batched: bool,
}

fn parse_items(body: &[u8]) -> Result<Vec<Item>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(items) = value.get("items").and_then(Value::as_array) else {
        return Err("the body must be an object with an `items` list".into());
    };
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "{} items; at most {MAX_ITEMS} per request",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_item(item).map_err(|e| format!("items[{i}]: {e}")))
        .collect()
}

fn parse_item(item: &Value) -> Result<Item, String> {
    let id = match item.get("id") {
        Some(Value::String(id)) => id.clone(),
        _ => return Err("`id` must be a string".into()),
    };
    let Some(permission) = item.get("permission").and_then(Value::as_object) else {
        return Err("`permission` must be an object".into());
    };
    let name = match permission.get("name") {
        Some(Value::String(name)) if !name.is_empty() && name.len() <= 200 => name.clone(),
        _ => return Err("`permission.name` must be a non-empty string".into()),
    };
    let action = match permission.get("attributes").and_then(|a| a.get("action")) {
        None | Some(Value::Null) => None,
        Some(Value::String(action)) => Some(Action::parse(action).ok_or_else(|| {
            format!(
                "`permission.attributes.action` {action:?} is not create, read, update or delete"
            )
        })?),
        Some(_) => return Err("`permission.attributes.action` must be a string".into()),
    };
    let resource_type = match permission.get("type").and_then(Value::as_str) {
        Some("basic") => None,
        Some("resource") => match permission.get("resourceType") {
            Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
            _ => return Err("a resource permission needs `permission.resourceType`".into()),
        },
        _ => return Err("`permission.type` must be \"basic\" or \"resource\"".into()),
    };
    let (resource_refs, batched) = match item.get("resourceRef") {
        None | Some(Value::Null) => (None, false),
        Some(_) if resource_type.is_none() => {
            return Err("a basic permission cannot name a resource".into())
        }
        Some(Value::String(r)) => (Some(vec![r.clone()]), false),
        Some(Value::Array(refs)) => {
            if refs.is_empty() || refs.len() > MAX_REFS_PER_ITEM {
                return Err(format!(
                    "`resourceRef` lists must hold 1 to {MAX_REFS_PER_ITEM} refs"
                ));
            }
            let refs = refs
                .iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("`resourceRef` must be a string or a list of strings")?;
            (Some(refs), true)
        }
        Some(_) => return Err("`resourceRef` must be a string or a list of strings".into()),
    };
    Ok(Item {
        id,
        question: Question {
            name,
            resource_type,
            action,
            resource_refs,
        },
        batched,
    })
}

pub(crate) fn definitive(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "ALLOW",
        // A conditional answer for a named resource was resolved before
        // this point; anything left is not an allow.
        Decision::Deny | Decision::Conditional(_) => "DENY",
    }
}

/// `POST /backstage/permission/authorize`.
#[utoipa::path(post, path = "/backstage/permission/authorize", tag = "access",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "One decision per item, in order, as Backstage's permission backend answers", content_type = "application/json", body = Object),
        (status = 400, description = "InputError", content_type = "application/json", body = Object),
        (status = 401, description = "AuthenticationError: the token could not be verified", content_type = "application/json", body = Object),
        (status = 503, description = "Backstage is not configured or its keys could not be fetched", content_type = "application/json", body = Object),
    ),
    security(("backstage" = [])))]
pub async fn authorize(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(verifier) = state.token_verifier.as_ref() else {
        return backstage_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "Roster cannot verify Backstage tokens: set [backstage] url (ROSTER_BACKSTAGE__URL)",
        );
    };
    let header = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let caller = match verifier.verify(header).await {
        Ok(caller) => caller,
        Err(TokenError::KeysUnavailable(reason)) => {
            tracing::warn!(%reason, "Backstage's signing keys could not be fetched");
            return backstage_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableError",
                "Backstage's signing keys could not be fetched",
            );
        }
        Err(err) => {
            tracing::info!(error = %err, "refused a permission request token");
            return backstage_error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                err.to_string(),
            );
        }
    };
    let items = match parse_items(&body) {
        Ok(items) => items,
        Err(message) => return input_error(message),
    };
    let access = &state.access;
    // A service call with a plugin token and no user, or no token: nobody
    // to grant anything to.
    let nobody = Principal::Nobody;
    let resolved = match &caller {
        Caller::User { user_ref, .. } => match access.resolve(user_ref).await {
            Ok(resolved) => Some(resolved),
            Err(err) => {
                tracing::error!(error = %err, "resolving a user for a decision failed");
                return backstage_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "internal error",
                );
            }
        },
        Caller::Service { .. } | Caller::Anonymous => None,
    };
    let principal = resolved.as_ref().map_or(&nobody, |r| &r.principal);
    let (asked, questions): (Vec<(String, bool)>, Vec<Question>) = items
        .into_iter()
        .map(|item| ((item.id, item.batched), item.question))
        .unzip();
    let answers = access.decide_many(principal, &questions).await;
    let results: Vec<AnswerJson<'_>> = asked
        .iter()
        .zip(&answers)
        .map(|((id, batched), answer)| match answer {
            Answer::One(Decision::Conditional(criteria)) => {
                AnswerJson::conditional(id, criteria, principal)
            }
            Answer::One(decision) => AnswerJson::plain(id, definitive(decision)),
            Answer::PerResource(decisions) if *batched => AnswerJson::new(
                id,
                ResultJson::PerResource(decisions.iter().map(definitive).collect()),
            ),
            Answer::PerResource(decisions) => {
                AnswerJson::plain(id, decisions.first().map_or("DENY", definitive))
            }
        })
        .collect();
    if let Principal::User(user) = &principal {
        tracing::debug!(user = %user.user_ref, items = results.len(), "permission decisions");
    }
    Json(AnswersJson { items: results }).into_response()
}

/// Parses one item's permission and resource refs, as the native API also
/// accepts them.
pub fn parse_question(item: &Value) -> Result<Question, String> {
    parse_item(item).map(|item| item.question)
}
