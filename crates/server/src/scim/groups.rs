use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_scim::query::{list_response, ListQuery, Projection};
use roster_scim::schema::group_resource;
use roster_scim::{patch, resource};

use super::query_pairs;
use super::users::check_body_id;
use super::wire::{not_modified, not_modified_response, precondition, ScimErrorResponse, ScimJson, ScimResponse};
use crate::directory::GroupView;
use crate::AppState;

type Result<T> = std::result::Result<T, ScimErrorResponse>;

fn projection(raw: Option<&str>) -> Result<Projection> {
    let pairs = query_pairs(raw)?;
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let projection = Projection::from_params(find("attributes"), find("excludedAttributes"));
    projection.validate(group_resource())?;
    Ok(projection)
}

fn render(state: &AppState, view: &GroupView, projection: &Projection, status: StatusCode) -> ScimResponse {
    let doc = resource::group_to_json(&view.group, view.members.as_deref(), state.directory.base_url());
    ScimResponse::resource(status, projection.apply(group_resource(), doc), view.group.meta.version)
}

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

pub async fn groups_list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<ScimResponse> {
    let pairs = query_pairs(raw.as_deref())?;
    let query = ListQuery::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), group_resource())?;
    list(&state, &query).await
}

pub async fn groups_search(State(state): State<AppState>, ScimJson(body): ScimJson) -> Result<ScimResponse> {
    let query = ListQuery::from_search_body(&body, group_resource())?;
    list(&state, &query).await
}

async fn list(state: &AppState, query: &ListQuery) -> Result<ScimResponse> {
    let page = state.directory.list_groups(query).await?;
    Ok(ScimResponse::ok(list_response(page.total, query.start_index, page.resources)))
}

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

/// PATCH answers 200 with the group. The member list is included only when
/// the request asks for it with `attributes=members`, because a group may
/// have 100,000 members (RFC 7644 §3.5.2 lets the server choose; Okta
/// accepts a group without `members`, Entra ignores the body).
pub async fn groups_patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let projection = projection(raw.as_deref())?;
    let ops = patch::parse_patch_request(&body)?;
    let group = state.directory.patch_group(&id, &ops, precondition(&headers)).await?;
    let with_members = projection
        .attributes
        .iter()
        .any(|a| a.to_ascii_lowercase().starts_with("members"));
    let members = if with_members {
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
    Ok(render(&state, &view, &projection, StatusCode::OK))
}

pub async fn groups_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    state.directory.delete_group(&id, precondition(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}
