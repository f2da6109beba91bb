//! Ownership handovers and the record of applied reconcile fixes, over the
//! admin API:
//!
//! - `GET /api/v1/handovers`, `GET|PUT|DELETE /api/v1/handovers/{userId}`:
//!   who takes over each offboarded user's catalog entities. The directory
//!   records a handover automatically when a user is deleted or
//!   deactivated (see `Directory::delete_user`); a person can set one by
//!   hand, which no automatic choice replaces.
//! - `GET /api/v1/reconcile/fixes`: every fix `reconcile --apply` carried
//!   out, newest first.
//!
//! The CLI (`roster handover ...`) calls the same service functions.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roster_backstage::names::EntityName;
use roster_backstage::reconcile::EntityRef;
use roster_domain::{MemberKind, UserId};
use roster_store::{Handover, HandoverReason, ReconcileFix, Store, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::admin::error;
use crate::auth::Caller;
use crate::AppState;

/// Fixes listed when `limit` is not given, and the most one request lists.
const DEFAULT_FIXES: u64 = 100;
const MAX_FIXES: u64 = 1000;

/// Why a handover could not be set.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("{0}")]
    InvalidSuccessor(String),
    #[error("no user {0} in the directory, and no handover recorded for it")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a successor given by a person: an entity ref of kind `user` or
/// `group` (`user:default/jane.doe`, `group:payments`; the namespace
/// defaults to `namespace`) with a valid Backstage name. Returns it in full
/// form.
pub fn parse_successor(raw: &str, namespace: &str) -> Result<EntityRef, HandoverError> {
    let invalid = |why: &str| {
        HandoverError::InvalidSuccessor(format!(
            "successor {raw:?} {why}; give an entity ref such as \"user:default/jane.doe\" or \"group:default/payments\""
        ))
    };
    if !raw.contains(':') {
        return Err(invalid("has no kind"));
    }
    let to =
        EntityRef::parse(raw, "group", namespace).ok_or_else(|| invalid("is not an entity ref"))?;
    if !matches!(to.kind(), "user" | "group") {
        return Err(invalid("is not of kind user or group"));
    }
    if let Err(err) = EntityName::parse(to.name()) {
        return Err(invalid(&format!("has an invalid name ({err})")));
    }
    if let Err(err) = EntityName::parse(to.namespace()) {
        return Err(invalid(&format!("has an invalid namespace ({err})")));
    }
    Ok(to)
}

/// Sets a user's successor by hand (reason `manual`). The user must be in
/// the directory, or have a handover already (a deleted user keeps what
/// was recorded of them).
pub async fn set_manual(
    store: &dyn Store,
    namespace: &str,
    user_id: &str,
    successor: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Handover, HandoverError> {
    let to = parse_successor(successor, namespace)?;
    let id: UserId = user_id
        .trim()
        .parse()
        .map_err(|_| HandoverError::UnknownUser(user_id.to_owned()))?;
    let (user_name, entity_name) = match store.get_user(id).await? {
        Some(user) => (
            user.user_name().as_str().to_owned(),
            store.entity_name(MemberKind::User, id.as_uuid()).await?,
        ),
        None => match store.get_handover(id).await? {
            Some(known) => (known.user_name, known.entity_name),
            None => return Err(HandoverError::UnknownUser(user_id.to_owned())),
        },
    };
    let handover = Handover {
        user_id: id,
        user_name,
        entity_name,
        successor: to.to_string(),
        successor_id: None,
        reason: HandoverReason::Manual,
        recorded_at: now,
        recorded_by: actor.to_owned(),
    };
    store.save_handover(&handover).await?;
    Ok(handover)
}

/// A handover as the API shows it.
pub fn handover_json(handover: &Handover, namespace: &str) -> Value {
    json!({
        "userId": handover.user_id.to_string(),
        "userName": handover.user_name,
        "entityName": handover.entity_name,
        "entityRef": handover
            .entity_name
            .as_deref()
            .map(|name| EntityRef::new("user", namespace, name).to_string()),
        "successor": handover.successor,
        "successorId": handover.successor_id.map(|id| id.to_string()),
        "reason": handover.reason.as_str(),
        "recordedAt": timestamp(handover.recorded_at),
        "recordedBy": handover.recorded_by,
    })
}

/// A recorded fix as the API shows it.
pub fn fix_json(fix: &ReconcileFix) -> Value {
    json!({
        "appliedAt": timestamp(fix.applied_at),
        "actor": fix.actor,
        "finding": fix.finding,
        "entityRef": fix.entity_ref,
        "uid": fix.uid,
        "action": fix.action,
        "outcome": fix.outcome,
        "ok": fix.ok(),
        "error": fix.error,
    })
}

fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn namespace(state: &AppState) -> &str {
    state.config.publish.namespace.as_str()
}

fn internal(err: StoreError) -> Response {
    tracing::error!(error = %err, "storage failure in the admin API");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn no_handover(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no handover is recorded for user {id}"),
    )
}

/// A handover (schema for the OpenAPI document).
#[derive(ToSchema)]
#[schema(example = json!({
    "userId": "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa",
    "userName": "amara.nwosu@northwind.example",
    "entityName": "amara.nwosu",
    "entityRef": "user:default/amara.nwosu",
    "successor": "user:default/jane.doe",
    "successorId": "0f6e4c1a-1111-4a4a-8a8a-000000000002",
    "reason": "manager",
    "recordedAt": "2025-03-01T09:30:00Z",
    "recordedBy": "scim"
}))]
#[allow(dead_code)]
pub struct HandoverDoc {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "entityName")]
    entity_name: Option<String>,
    #[serde(rename = "entityRef")]
    entity_ref: Option<String>,
    successor: String,
    #[serde(rename = "successorId")]
    successor_id: Option<String>,
    /// `manager`, `primary-group`, `fallback` or `manual`.
    reason: String,
    #[serde(rename = "recordedAt")]
    recorded_at: String,
    /// A token name, or `scim` for a choice made during a SCIM write.
    #[serde(rename = "recordedBy")]
    recorded_by: String,
}

/// Every handover.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HandoverList {
    handovers: Vec<HandoverDoc>,
}

/// The body of `PUT /api/v1/handovers/{userId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"successor": "user:default/jane.doe"}))]
pub struct SetHandoverRequest {
    /// An entity ref of kind user or group.
    pub successor: String,
}

/// One applied reconcile fix.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReconcileFixDoc {
    #[serde(rename = "appliedAt")]
    applied_at: String,
    /// The admin token's name, or `cli`.
    actor: String,
    /// The finding kind, e.g. `ghost-user`.
    finding: String,
    #[serde(rename = "entityRef")]
    entity_ref: Option<String>,
    uid: Option<String>,
    /// `delete-entity` or `refresh-location`.
    action: String,
    /// `deleted`, `already-gone`, `refreshed`, `failed` or `not-attempted`.
    outcome: String,
    ok: bool,
    error: Option<String>,
}

/// Recorded fixes, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReconcileFixList {
    fixes: Vec<ReconcileFixDoc>,
}

/// An admin API error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AdminError {
    #[schema(value_type = Object)]
    error: Value,
}

/// Who takes over each offboarded user's catalog entities, newest first.
#[utoipa::path(get, path = "/api/v1/handovers", tag = "admin",
    responses(
        (status = 200, description = "Every recorded handover", body = HandoverList),
        (status = 401, description = "No valid admin token", body = AdminError),
        (status = 403, description = "The token's scope is not admin", body = AdminError),
    ),
    security(("bearer" = [])))]
pub async fn handovers_list(State(state): State<AppState>) -> Response {
    match state.directory.store().list_handovers().await {
        Ok(list) => {
            let ns = namespace(&state);
            let items: Vec<Value> = list.iter().map(|h| handover_json(h, ns)).collect();
            Json(json!({ "handovers": items })).into_response()
        }
        Err(err) => internal(err),
    }
}

/// The handover recorded for one user.
#[utoipa::path(get, path = "/api/v1/handovers/{userId}", tag = "admin",
    params(("userId" = String, Path, description = "The offboarded user's Roster (SCIM) id")),
    responses(
        (status = 200, description = "The handover", body = HandoverDoc),
        (status = 401, description = "No valid admin token", body = AdminError),
        (status = 403, description = "The token's scope is not admin", body = AdminError),
        (status = 404, description = "No handover is recorded for this user", body = AdminError),
    ),
    security(("bearer" = [])))]
pub async fn handovers_get(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    let Ok(id) = user_id.trim().parse::<UserId>() else {
        return no_handover(&user_id);
    };
    match state.directory.store().get_handover(id).await {
        Ok(Some(handover)) => Json(handover_json(&handover, namespace(&state))).into_response(),
        Ok(None) => no_handover(&user_id),
        Err(err) => internal(err),
    }
}

/// Sets a user's successor by hand; no automatic choice replaces it.
#[utoipa::path(put, path = "/api/v1/handovers/{userId}", tag = "admin",
    params(("userId" = String, Path, description = "The user's Roster (SCIM) id")),
    request_body(content = SetHandoverRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The handover as stored", body = HandoverDoc),
        (status = 400, description = "The body is not JSON, or the successor is not a user or group entity ref", body = AdminError),
        (status = 401, description = "No valid admin token", body = AdminError),
        (status = 403, description = "The token's scope is not admin", body = AdminError),
        (status = 404, description = "No such user in the directory, and no handover recorded for it", body = AdminError),
    ),
    security(("bearer" = [])))]
pub async fn handovers_put(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    // Parsed by hand so that a bad body answers in the admin API's JSON
    // error shape, not axum's plain text.
    let request: SetHandoverRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"successor\": \"user:default/jane.doe\"}}: {err}"),
            )
        }
    };
    let actor = caller.map_or_else(|| "admin".to_owned(), |c| c.0.token_name);
    let result = set_manual(
        &**state.directory.store(),
        namespace(&state),
        &user_id,
        &request.successor,
        &actor,
        OffsetDateTime::now_utc(),
    )
    .await;
    match result {
        Ok(handover) => Json(handover_json(&handover, namespace(&state))).into_response(),
        Err(HandoverError::InvalidSuccessor(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(err @ HandoverError::UnknownUser(_)) => error(StatusCode::NOT_FOUND, err.to_string()),
        Err(HandoverError::Store(err)) => internal(err),
    }
}

/// Removes a user's handover (automatic or manual).
#[utoipa::path(delete, path = "/api/v1/handovers/{userId}", tag = "admin",
    params(("userId" = String, Path, description = "The user's Roster (SCIM) id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid admin token", body = AdminError),
        (status = 403, description = "The token's scope is not admin", body = AdminError),
        (status = 404, description = "No handover is recorded for this user", body = AdminError),
    ),
    security(("bearer" = [])))]
pub async fn handovers_delete(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Response {
    let Ok(id) = user_id.trim().parse::<UserId>() else {
        return no_handover(&user_id);
    };
    match state.directory.store().delete_handover(id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_handover(&user_id),
        Err(err) => internal(err),
    }
}

#[derive(Debug, Deserialize)]
pub struct FixesQuery {
    limit: Option<String>,
}

/// The fixes `reconcile --apply` carried out, newest first.
#[utoipa::path(get, path = "/api/v1/reconcile/fixes", tag = "admin",
    params(("limit" = Option<u64>, Query, description = "Most fixes to list (1 to 1000, default 100)")),
    responses(
        (status = 200, description = "Recorded fixes, newest first", body = ReconcileFixList),
        (status = 400, description = "`limit` is not a number from 1 to 1000", body = AdminError),
        (status = 401, description = "No valid admin token", body = AdminError),
        (status = 403, description = "The token's scope is not admin", body = AdminError),
    ),
    security(("bearer" = [])))]
pub async fn reconcile_fixes_list(
    State(state): State<AppState>,
    query: Result<Query<FixesQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let limit = match query.limit.as_deref().map(str::trim) {
        None => DEFAULT_FIXES,
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if (1..=MAX_FIXES).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit must be a number from 1 to {MAX_FIXES}, not {raw:?}"),
                )
            }
        },
    };
    match state.directory.store().list_reconcile_fixes(limit).await {
        Ok(fixes) => {
            let items: Vec<Value> = fixes.iter().map(fix_json).collect();
            Json(json!({ "fixes": items })).into_response()
        }
        Err(err) => internal(err),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn successors_must_be_user_or_group_refs() {
        let ok = [
            ("user:default/jane.doe", "user:default/jane.doe"),
            ("group:payments", "group:default/payments"),
            ("  Group:Ops/Team-A ", "group:Ops/Team-A"),
        ];
        for (raw, expected) in ok {
            assert_eq!(
                parse_successor(raw, "default").unwrap().to_string(),
                expected,
                "{raw}"
            );
        }
        let bad = [
            ("jane.doe", "has no kind"),
            ("component:default/svc", "is not of kind user or group"),
            ("user:default/", "is not an entity ref"),
            ("user:a/b/c", "is not an entity ref"),
            ("user:default/jane doe", "invalid name"),
            ("user:default/-jane", "invalid name"),
            ("", "has no kind"),
        ];
        for (raw, why) in bad {
            let err = parse_successor(raw, "default").unwrap_err().to_string();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }
}
