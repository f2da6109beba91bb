use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_scim::query::{list_response, ListQuery, Projection};
use roster_scim::schema::user_resource;
use roster_scim::{patch, resource};

use super::query_pairs;
use super::wire::{
    not_modified, not_modified_response, precondition, ScimErrorResponse, ScimJson, ScimResponse,
};
use crate::directory::UserView;
use crate::AppState;

type Result<T> = std::result::Result<T, ScimErrorResponse>;

fn projection(raw: Option<&str>) -> Result<Projection> {
    Ok(super::projection(raw, user_resource())?)
}

fn render(
    state: &AppState,
    view: &UserView,
    projection: &Projection,
    status: StatusCode,
) -> ScimResponse {
    let doc = resource::user_to_json(&view.user, &view.groups, state.directory.base_url());
    ScimResponse::resource(
        status,
        projection.apply(user_resource(), doc),
        view.user.meta.version,
    )
}

#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim", params(("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),), request_body(content = crate::openapi::User, content_type = "application/scim+json"),
    responses((status = 201, description = "The created User", content_type = "application/scim+json", body = crate::openapi::User)))]
pub async fn users_create(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    let attributes = resource::user_from_json(&body)?;
    let view = state.directory.create_user(attributes).await?;
    Ok(render(&state, &view, &projection, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-None-Match" = Option<String>, Header, description = "Answer 304 if the version is unchanged")),
    responses((status = 200, description = "The User", content_type = "application/scim+json", body = crate::openapi::User), (status = 304, description = "Not modified")))]
pub async fn users_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let projection = projection(raw.as_deref())?;
    let view = state
        .directory
        .get_user(&id, projection.wants(user_resource(), "groups"))
        .await?;
    if not_modified(&headers, view.user.meta.version) {
        return Ok(not_modified_response(view.user.meta.version));
    }
    Ok(render(&state, &view, &projection, StatusCode::OK).into_response())
}

#[utoipa::path(get, path = "/scim/v2/Users", tag = "scim", params(
        ("filter" = Option<String>, Query, description = "A SCIM filter (RFC 7644 §3.4.2.2)"),
        ("sortBy" = Option<String>, Query, description = "Attribute to sort by"),
        ("sortOrder" = Option<String>, Query, description = "ascending or descending"),
        ("startIndex" = Option<i64>, Query, description = "1-based index of the first result"),
        ("count" = Option<i64>, Query, description = "Page size (at most 1000)"),
        ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
    ),
    responses((status = 200, description = "A page of Users", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn users_list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<ScimResponse> {
    let pairs = query_pairs(raw.as_deref())?;
    let query = ListQuery::from_params(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        user_resource(),
    )?;
    list(&state, &query).await
}

#[utoipa::path(post, path = "/scim/v2/Users/.search", tag = "scim", request_body(content = crate::openapi::SearchRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "A page of Users", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn users_search(
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let query = ListQuery::from_search_body(&body, user_resource())?;
    list(&state, &query).await
}

async fn list(state: &AppState, query: &ListQuery) -> Result<ScimResponse> {
    let page = state.directory.list_users(query).await?;
    Ok(ScimResponse::ok(list_response(
        page.total,
        query.start_index,
        page.resources,
    )))
}

#[utoipa::path(put, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    request_body(content = crate::openapi::User, content_type = "application/scim+json"),
    responses((status = 200, description = "The replaced User", content_type = "application/scim+json", body = crate::openapi::User)))]
pub async fn users_replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    check_body_id(&body, &id)?;
    let attributes = resource::user_from_json(&body)?;
    let view = state
        .directory
        .replace_user(&id, attributes, precondition(&headers))
        .await?;
    Ok(render(&state, &view, &projection, StatusCode::OK))
}

/// A body `id` that differs from the URL's is an attempt to change an
/// immutable attribute.
pub(crate) fn check_body_id(body: &serde_json::Value, id: &str) -> Result<()> {
    let body_id = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")))
        .map(|(_, v)| v);
    match body_id {
        Some(serde_json::Value::String(given)) if given != id => Err(
            roster_scim::ScimError::mutability("id is immutable and must match the resource's URL")
                .into(),
        ),
        _ => Ok(()),
    }
}

#[utoipa::path(patch, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    request_body(content = crate::openapi::PatchRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "The patched User", content_type = "application/scim+json", body = crate::openapi::User)))]
pub async fn users_patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    let ops = patch::parse_patch_request(&body)?;
    let view = state
        .directory
        .patch_user(&id, &ops, precondition(&headers))
        .await?;
    Ok(render(&state, &view, &projection, StatusCode::OK))
}

#[utoipa::path(delete, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path, description = "The User's id"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    responses((status = 204, description = "Deleted")))]
pub async fn users_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    state
        .directory
        .delete_user(&id, precondition(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
