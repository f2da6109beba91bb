use axum::extract::{Path, RawQuery, State};
use roster_scim::discovery::{self, Limits};
use roster_scim::query::list_response;
use roster_scim::ScimError;
use serde_json::Value;

use super::query_pairs;
use super::wire::{ScimErrorResponse, ScimJson, ScimResponse};
use crate::AppState;

type Result<T> = std::result::Result<T, ScimErrorResponse>;

fn base(state: &AppState) -> &str {
    state.directory.base_url()
}

#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim",
    responses((status = 200, description = "What this service provider supports", content_type = "application/scim+json", body = crate::openapi::DiscoveryDocument)))]
pub async fn service_provider_config_get(State(state): State<AppState>) -> ScimResponse {
    // Filter, sort and paging parameters are ignored here (RFC 7644 §4).
    ScimResponse::ok(discovery::service_provider_config(
        base(&state),
        Limits {
            max_bulk_operations: state.config.max_bulk_operations,
            max_payload_bytes: state.config.max_body_bytes,
            max_filter_results: roster_scim::query::MAX_PAGE_SIZE,
        },
    ))
}

/// RFC 7644 §4: a filter on `/Schemas` or `/ResourceTypes` is refused with
/// 403 so that no client assumes it was applied.
fn refuse_filter(raw: Option<&str>) -> Result<()> {
    if query_pairs(raw)?
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("filter"))
    {
        return Err(ScimError::forbidden("filtering is not supported on this endpoint").into());
    }
    Ok(())
}

fn listing(docs: Vec<Value>) -> ScimResponse {
    let total = docs.len() as u64;
    ScimResponse::ok(list_response(total, 1, docs))
}

fn find_by_id(docs: Vec<Value>, id: &str, what: &str) -> Result<ScimResponse> {
    docs.into_iter()
        .find(|d| d["id"].as_str().is_some_and(|d| d.eq_ignore_ascii_case(id)))
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::not_found(format!("{what} {id} not found")).into())
}

#[utoipa::path(get, path = "/scim/v2/ResourceTypes", tag = "scim",
    responses((status = 200, description = "The resource types", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn resource_types_list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<ScimResponse> {
    refuse_filter(raw.as_deref())?;
    Ok(listing(discovery::resource_types(base(&state))))
}

#[utoipa::path(get, path = "/scim/v2/ResourceTypes/{name}", tag = "scim", params(("name" = String, Path, description = "User or Group")),
    responses((status = 200, description = "One resource type", content_type = "application/scim+json", body = crate::openapi::DiscoveryDocument)))]
pub async fn resource_types_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<ScimResponse> {
    find_by_id(
        discovery::resource_types(base(&state)),
        &name,
        "ResourceType",
    )
}

#[utoipa::path(get, path = "/scim/v2/Schemas", tag = "scim",
    responses((status = 200, description = "The schemas", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn schemas_list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<ScimResponse> {
    refuse_filter(raw.as_deref())?;
    Ok(listing(discovery::schemas(base(&state))))
}

#[utoipa::path(get, path = "/scim/v2/Schemas/{id}", tag = "scim", params(("id" = String, Path, description = "A schema URN")),
    responses((status = 200, description = "One schema", content_type = "application/scim+json", body = crate::openapi::DiscoveryDocument)))]
pub async fn schemas_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ScimResponse> {
    find_by_id(discovery::schemas(base(&state)), &id, "Schema")
}

/// `/Me` needs to know which user the caller is; SCIM callers here are
/// provisioning clients, not users, so it is not implemented.
pub async fn me_any() -> ScimErrorResponse {
    ScimError::not_implemented(
        "/Me is not supported: Roster's SCIM clients are provisioning agents, not users",
    )
    .into()
}

/// Searches users and groups at once (RFC 7644 §3.4.3).
#[utoipa::path(post, path = "/scim/v2/.search", tag = "scim", request_body(content = crate::openapi::SearchRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "Users and groups matching the search", content_type = "application/scim+json", body = crate::openapi::ListResponse)))]
pub async fn root_search(
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse> {
    let (query, page) = state.directory.search_all(&body).await?;
    Ok(ScimResponse::ok(list_response(
        page.total,
        query.start_index,
        page.resources,
    )))
}
