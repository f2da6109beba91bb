//! The access-control admin API under `/api/v1/access` (admin tokens), and
//! the native decision API `POST /api/v1/authorize` (admin or `authorize`
//! tokens).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use roster_authz::{AssignmentDocument, Decision, PolicyDocument, RoleDocument};
use roster_domain::TokenScope;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access::{
    decision_name, rfc3339, AccessError, Answer, AnswerJson, AnswersJson, Question,
};
use crate::admin::error;
use crate::auth::{bearer, AuthError, Authenticator, Caller};
use crate::AppState;

/// Largest policy document `PUT /api/v1/access/policy` accepts.
const MAX_POLICY_BYTES: usize = 32 * 1024 * 1024;

/// Most items in one native decision request.
const MAX_ITEMS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/access/roles", get(roles_list))
        .route(
            "/access/roles/{name}",
            get(roles_get).put(roles_put).delete(roles_delete),
        )
        .route(
            "/access/assignments",
            get(assignments_list).post(assignments_create),
        )
        .route("/access/assignments/{id}", delete(assignments_delete))
        .route(
            "/access/policy",
            get(policy_get)
                .put(policy_put)
                // A policy file for thousands of users outgrows the
                // general request limit.
                .layer(axum::extract::DefaultBodyLimit::max(MAX_POLICY_BYTES)),
        )
        .route("/access/changes", get(changes_list))
        .route("/access/explain", post(explain))
        .route("/access/who-can", post(who_can))
}

fn actor(caller: &Caller) -> String {
    format!("token:{}", caller.token_name)
}

fn access_error(err: AccessError) -> Response {
    match err {
        AccessError::Invalid(message) => error(StatusCode::BAD_REQUEST, message),
        AccessError::NotFound(message) => error(StatusCode::NOT_FOUND, message),
        AccessError::Conflict(message) => error(StatusCode::CONFLICT, message),
        AccessError::Store(err) => {
            tracing::error!(error = %err, "access control storage failure");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Parses a JSON body; the error is the message for a 400.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

#[utoipa::path(get, path = "/api/v1/access/roles", tag = "admin",
    responses(
        (status = 200, description = "Every role, built-in ones first, with its rules", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn roles_list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "roles": state.access.list_roles() }))
}

#[utoipa::path(get, path = "/api/v1/access/roles/{name}", tag = "admin",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The role", content_type = "application/json", body = Object),
        (status = 404, description = "No such role", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn roles_get(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.access.role(&name) {
        Some(role) => Json(role).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no role {name:?}")),
    }
}

#[utoipa::path(put, path = "/api/v1/access/roles/{name}", tag = "admin",
    params(("name" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The role was replaced", content_type = "application/json", body = Object),
        (status = 201, description = "The role was created", content_type = "application/json", body = Object),
        (status = 400, description = "The role is invalid (the message names the problem and where) or built-in", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn roles_put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let mut value: Value = match parse_json(&body) {
        Ok(value) => value,
        Err(message) => return bad_request(message),
    };
    // Indexing a non-object `Value` to insert the name would panic.
    let Some(object) = value.as_object_mut() else {
        return bad_request("invalid role: the body must be a JSON object".into());
    };
    match object.get("name") {
        None => {
            object.insert("name".into(), json!(name));
        }
        Some(Value::String(given)) if *given == name => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body's name differs from the path's",
            )
        }
    }
    object.remove("builtin");
    let document: RoleDocument = match serde_json::from_value(value) {
        Ok(document) => document,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid role: {e}")),
    };
    let existed = state.access.role(&name).is_some();
    match state.access.put_role(&actor(&caller), document).await {
        Ok(role) => {
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, Json(role)).into_response()
        }
        Err(err) => access_error(err),
    }
}

#[utoipa::path(delete, path = "/api/v1/access/roles/{name}", tag = "admin",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A built-in role", content_type = "application/json", body = Object),
        (status = 404, description = "No such custom role", content_type = "application/json", body = Object),
        (status = 409, description = "The role still has assignments", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn roles_delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    match state.access.delete_role(&actor(&caller), &name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => access_error(err),
    }
}

#[utoipa::path(get, path = "/api/v1/access/assignments", tag = "admin",
    responses(
        (status = 200, description = "Every assignment", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn assignments_list(State(state): State<AppState>) -> Response {
    match state.access.list_assignments().await {
        Ok(assignments) => Json(json!({ "assignments": assignments })).into_response(),
        Err(err) => access_error(err.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/access/assignments", tag = "admin",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "The assignment (assigning a role to the same subject again updates its expiry)", content_type = "application/json", body = Object),
        (status = 400, description = "Unknown role or subject, or an expiry in the past", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn assignments_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let document: AssignmentDocument = match parse_json(&body) {
        Ok(document) => document,
        Err(message) => return bad_request(message),
    };
    match state
        .access
        .add_assignment(&actor(&caller), &document)
        .await
    {
        Ok(assignment) => (StatusCode::CREATED, Json(assignment)).into_response(),
        Err(err) => access_error(err),
    }
}

#[utoipa::path(delete, path = "/api/v1/access/assignments/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such assignment", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn assignments_delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no assignment {id}"));
    };
    match state.access.delete_assignment(&actor(&caller), id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => access_error(err),
    }
}

fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"))
}

#[utoipa::path(get, path = "/api/v1/access/policy", tag = "admin",
    responses(
        (status = 200, description = "The custom roles and assignments as a policy document (YAML with Accept: application/yaml)", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn policy_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.access.export().await {
        Ok(document) if wants_yaml(&headers) => {
            ([(CONTENT_TYPE, "application/yaml")], document.to_yaml()).into_response()
        }
        Ok(document) => Json(document).into_response(),
        Err(err) => access_error(err.into()),
    }
}

#[utoipa::path(put, path = "/api/v1/access/policy", tag = "admin",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The policy was replaced", content_type = "application/json", body = Object),
        (status = 400, description = "The document is invalid; every problem is listed and nothing changed", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn policy_put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the policy must be UTF-8 YAML or JSON",
        );
    };
    let document = match PolicyDocument::parse(text) {
        Ok(document) => document,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match state.access.import(&actor(&caller), &document).await {
        Ok(revision) => Json(json!({
            "revision": revision,
            "roles": document.roles.len(),
            "assignments": document.assignments.len(),
        }))
        .into_response(),
        Err(err) => access_error(err),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    /// Read as text so that a bad value gets this API's JSON error rather
    /// than the extractor's plain-text one.
    limit: Option<String>,
}

/// Most changes one request lists.
const MAX_CHANGES: u32 = 1000;

#[utoipa::path(get, path = "/api/v1/access/changes", tag = "admin",
    params(("limit" = Option<u32>, Query, description = "Most changes to list (1 to 1000, default 100)")),
    responses(
        (status = 200, description = "Policy changes, newest first: who, what, before and after", content_type = "application/json", body = Object),
        (status = 400, description = "`limit` is not a number from 1 to 1000", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn changes_list(
    State(state): State<AppState>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return access_error(AccessError::Invalid(rejection.body_text())),
    };
    let limit = match query.limit.as_deref().map(str::trim) {
        None => 100,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_CHANGES).contains(&n) => n,
            _ => {
                return access_error(AccessError::Invalid(format!(
                    "limit must be a number from 1 to {MAX_CHANGES}, not {raw:?}"
                )))
            }
        },
    };
    match state.access.changes(limit).await {
        Ok(changes) => Json(json!({
            "changes": changes.iter().map(|c| json!({
                "seq": c.seq,
                "at": rfc3339(c.at),
                "revision": c.revision,
                "actor": c.change.actor,
                "action": c.change.action,
                "target": c.change.target,
                "before": c.change.before,
                "after": c.change.after,
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(err) => access_error(err.into()),
    }
}

/// A question as the native API takes it: a permission by name (its type
/// and action from Backstage's well-known list) or as Backstage writes it.
fn question_of(permission: &Value, resource_ref: Option<&Value>) -> Result<Question, String> {
    let resource_ref = match resource_ref {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => return Err("`resourceRef` must be a string".into()),
    };
    match permission {
        Value::String(name) if !name.is_empty() && name.len() <= 200 => {
            let question = Question::known(name, resource_ref);
            if question.resource_type.is_none() && question.resource_refs.is_some() {
                return Err(format!(
                    "{name} is a basic permission and cannot name a resource"
                ));
            }
            Ok(question)
        }
        Value::Object(_) => {
            let mut item = json!({"id": "", "permission": permission});
            if let Some(r) = resource_ref {
                item["resourceRef"] = json!(r);
            }
            crate::permission::parse_question(&item)
        }
        _ => Err("`permission` must be a permission name or a Backstage permission object".into()),
    }
}

/// The body of `explain` (which needs `user`) and `who-can` (which must
/// not have one).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuestionRequest {
    #[serde(default)]
    user: Option<String>,
    permission: Value,
    #[serde(default)]
    resource_ref: Option<Value>,
}

/// Parses a `QuestionRequest`; the error is the message for a 400.
fn question_request(body: &[u8], wants_user: bool) -> Result<(Option<String>, Question), String> {
    let request: QuestionRequest = parse_json(body)?;
    match (&request.user, wants_user) {
        (None, true) => return Err("invalid request body: missing field `user`".into()),
        (Some(_), false) => return Err("invalid request body: unknown field `user`".into()),
        _ => {}
    }
    let question = question_of(&request.permission, request.resource_ref.as_ref())?;
    Ok((request.user, question))
}

#[utoipa::path(post, path = "/api/v1/access/explain", tag = "admin",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The decision, the rule and role that decided, and how the user holds it", content_type = "application/json", body = Object),
        (status = 400, description = "Invalid request", content_type = "application/json", body = Object),
        (status = 404, description = "The resource does not exist in the catalog", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn explain(State(state): State<AppState>, body: Bytes) -> Response {
    let (user, question) = match question_request(&body, true) {
        Ok((Some(user), question)) => (user, question),
        Ok((None, _)) => return bad_request("`user` is required".into()),
        Err(message) => return bad_request(message),
    };
    match state.access.explain(&user, &question).await {
        Ok(body) => Json(body).into_response(),
        Err(err) => access_error(err),
    }
}

#[utoipa::path(post, path = "/api/v1/access/who-can", tag = "admin",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The users the permission is granted to", content_type = "application/json", body = Object),
        (status = 400, description = "Invalid request", content_type = "application/json", body = Object),
        (status = 401, description = "No valid admin token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn who_can(State(state): State<AppState>, body: Bytes) -> Response {
    let question = match question_request(&body, false) {
        Ok((_, question)) => question,
        Err(message) => return bad_request(message),
    };
    match state.access.who_can(&question).await {
        Ok(body) => Json(body).into_response(),
        Err(err) => access_error(err),
    }
}

/// Middleware for `POST /api/v1/authorize`: an `authorize` or `admin`
/// token.
pub async fn require_authorize(
    State(auth): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let outcome = match bearer(&req) {
        Some(secret) => match auth.verify(secret, TokenScope::Authorize).await {
            Err(AuthError::WrongScope) => auth.verify(secret, TokenScope::Admin).await,
            other => other,
        },
        None => Err(AuthError::Missing),
    };
    match outcome {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(AuthError::WrongScope) => error(
            StatusCode::FORBIDDEN,
            "this token's scope does not open the decision API; create one with `roster token create --name <name> --scope authorize`",
        ),
        Err(AuthError::Unavailable) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication is temporarily unavailable",
        ),
        Err(AuthError::Missing | AuthError::Invalid) => {
            let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster\""),
            );
            response
        }
    }
}

/// `POST /api/v1/authorize`: batched decisions for any user.
///
/// Body: `{"items": [{"id"?, "user", "permission", "resourceRef"?}]}`;
/// answer: `{"items": [{"id", "result", ...conditions}]}` in order.
#[utoipa::path(post, path = "/api/v1/authorize", tag = "access",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "One decision per item, in order", content_type = "application/json", body = Object),
        (status = 400, description = "Invalid request", content_type = "application/json", body = Object),
        (status = 401, description = "No valid token", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is neither authorize nor admin", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn authorize(State(state): State<AppState>, body: Bytes) -> Response {
    let value: Value = match parse_json(&body) {
        Ok(value) => value,
        Err(message) => return bad_request(message),
    };
    let Some(items) = value.get("items").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be an object with an `items` list",
        );
    };
    if items.len() > MAX_ITEMS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{} items; at most {MAX_ITEMS} per request", items.len()),
        );
    }
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let user = match item.get("user") {
            Some(Value::String(user)) if !user.is_empty() => user.clone(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("items[{i}]: `user` must be a user entity ref"),
                )
            }
        };
        let id = match item.get("id") {
            None => i.to_string(),
            Some(Value::String(id)) => id.clone(),
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("items[{i}]: `id` must be a string"),
                )
            }
        };
        let Some(permission) = item.get("permission") else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("items[{i}]: `permission` is missing"),
            );
        };
        match question_of(permission, item.get("resourceRef")) {
            Ok(question) => parsed.push((id, user, question)),
            Err(message) => {
                return error(StatusCode::BAD_REQUEST, format!("items[{i}]: {message}"))
            }
        }
    }
    let mut principals = HashMap::new();
    let mut answers = Vec::with_capacity(parsed.len());
    for (_, user, question) in &parsed {
        if !principals.contains_key(user) {
            match state.access.resolve(user).await {
                Ok(resolved) => {
                    principals.insert(user.clone(), resolved);
                }
                Err(err) => return access_error(err.into()),
            }
        }
        let Some(principal) = principals.get(user).map(|r| &r.principal) else {
            answers.push(None);
            continue;
        };
        let answer = state
            .access
            .decide_many(principal, std::slice::from_ref(question))
            .await
            .pop();
        answers.push(answer);
    }
    let results: Vec<AnswerJson<'_>> = parsed
        .iter()
        .zip(&answers)
        .map(
            |((id, user, _), answer)| match (answer, principals.get(user)) {
                (Some(Answer::One(Decision::Conditional(criteria))), Some(resolved)) => {
                    AnswerJson::conditional(id, criteria, &resolved.principal)
                }
                // Never without the principal that produced it; a DENY if so.
                (Some(Answer::One(Decision::Conditional(_))), None) | (None, _) => {
                    AnswerJson::plain(id, "DENY")
                }
                (Some(Answer::One(decision)), _) => AnswerJson::plain(id, decision_name(decision)),
                (Some(Answer::PerResource(decisions)), _) => AnswerJson::plain(
                    id,
                    decisions
                        .first()
                        .map_or("DENY", crate::permission::definitive),
                ),
            },
        )
        .collect();
    Json(AnswersJson { items: results }).into_response()
}
