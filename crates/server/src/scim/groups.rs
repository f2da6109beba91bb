use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_scim::query::{list_response, ListQuery, Projection};
use roster_scim::schema::group_resource;
use roster_scim::{patch, resource};

use super::query_pairs;
use super::users::check_body_id;
use super::wire::{
    not_modified, not_modified_response, precondition, ScimErrorResponse, ScimJson, ScimResponse,
};
use crate::directory::GroupView;
use crate::AppState;

type Result<T> = std::result::Result<T, ScimErrorResponse>;

fn projection(raw: Option<&str>) -> Result<Projection> {
    Ok(super::projection(raw, group_resource())?)
}

fn render(
    state: &AppState,
    view: &GroupView,
    projection: &Projection,
    status: StatusCode,
) -> ScimResponse {
    let doc = resource::group_to_json(
        &view.group,
        view.members.as_deref(),
        state.directory.base_url(),
    );
    ScimResponse::resource(
        status,
        projection.apply(group_resource(), doc),
        view.group.meta.version,
    )
}

#[utoipa::path(post, path = "/scim/v2/Groups", tag = "scim", params(("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),), request_body(content = crate::openapi::Group, content_type = "application/scim+json"),
    responses((status = 201, description = "The created Group", content_type = "application/scim+json", body = crate::openapi::Group)))]
pub async fn groups_create(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    let (attributes, members) = resource::group_from_json(&body)?;
    let view = state.directory.create_group(attributes, members).await?;
    Ok(render(&state, &view, &projection, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path, description = "The Group's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-None-Match" = Option<String>, Header, description = "Answer 304 if the version is unchanged")),
    responses((status = 200, description = "The Group", content_type = "application/scim+json", body = crate::openapi::Group), (status = 304, description = "Not modified")))]
pub async fn groups_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let projection = projection(raw.as_deref())?;
    // Entra reads groups with `excludedAttributes=members`: then the member
    // list is never loaded.
    let view = state
        .directory
        .get_group(&id, projection.wants(group_resource(), "members"))
        .await?;
    if not_modified(&headers, view.group.meta.version) {
        return Ok(not_modified_response(view.group.meta.version));
    }
    Ok(render(&state, &view, &projection, StatusCode::OK).into_response())
}

#[utoipa::path(get, path = "/scim/v2/Groups", tag = "scim", params(
        ("filter" = Option<String>, Query, description = "A SCIM filter (RFC 7644 §3.4.2.2)"),
        ("sortBy" = Option<String>, Query, description = "Attribute to sort by"),
        ("sortOrder" = Option<String>, Query, description = "ascending or descending"),
        ("startIndex" = Option<i64>, Query, description = "1-based index of the first result"),
        ("count" = Option<i64>, Query, description = "Page size (at most 1000)"),
        ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
    ),
    responses((status = 200, description = "A page of Groups", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn groups_list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<ScimResponse> {
    let pairs = query_pairs(raw.as_deref())?;
    let query = ListQuery::from_params(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        group_resource(),
    )?;
    list(&state, &query).await
}

#[utoipa::path(post, path = "/scim/v2/Groups/.search", tag = "scim", request_body(content = crate::openapi::SearchRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "A page of Groups", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn groups_search(
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let query = ListQuery::from_search_body(&body, group_resource())?;
    list(&state, &query).await
}

async fn list(state: &AppState, query: &ListQuery) -> Result<ScimResponse> {
    let page = state.directory.list_groups(query).await?;
    Ok(ScimResponse::ok(list_response(
        page.total,
        query.start_index,
        page.resources,
    )))
}

#[utoipa::path(put, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path, description = "The Group's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    request_body(content = crate::openapi::Group, content_type = "application/scim+json"),
    responses((status = 200, description = "The replaced Group", content_type = "application/scim+json", body = crate::openapi::Group)))]
pub async fn groups_replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    check_body_id(&body, &id)?;
    let (attributes, members) = resource::group_from_json(&body)?;
    let view = state
        .directory
        .replace_group(&id, attributes, members, precondition(&headers))
        .await?;
    Ok(render(&state, &view, &projection, StatusCode::OK))
}

/// PATCH answers 204 No Content unless the request names `attributes` or
/// `excludedAttributes`; then 200 with the group so projected. RFC 7644
/// §3.5.2 lets the server choose, Entra expects 204 and Okta accepts it, and
/// a group may have 100,000 members that nobody asked to receive.
#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path, description = "The Group's id"), ("attributes" = Option<String>, Query, description = "Comma-separated attributes to return"),
        ("excludedAttributes" = Option<String>, Query, description = "Comma-separated attributes to leave out"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    request_body(content = crate::openapi::PatchRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "The patched Group, when attributes were requested", content_type = "application/scim+json", body = crate::openapi::Group),
              (status = 204, description = "Patched")))]
pub async fn groups_patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response> {
    let projection = projection(raw.as_deref())?;
    let ops = patch::parse_patch_request(&body)?;
    let group = state
        .directory
        .patch_group(&id, &ops, precondition(&headers))
        .await?;
    if projection == Projection::default() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(etag) = axum::http::HeaderValue::from_str(&group.meta.version.etag()) {
            response
                .headers_mut()
                .insert(axum::http::header::ETAG, etag);
        }
        return Ok(response);
    }
    let members = if projection.wants(group_resource(), "members") {
        Some(
            state
                .directory
                .get_group(&id, true)
                .await?
                .members
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let view = GroupView { group, members };
    Ok(render(&state, &view, &projection, StatusCode::OK).into_response())
}

#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path, description = "The Group's id"),
        ("If-Match" = Option<String>, Header, description = "Only if at this version")),
    responses((status = 204, description = "Deleted")))]
pub async fn groups_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    state
        .directory
        .delete_group(&id, precondition(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
