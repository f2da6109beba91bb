//! The SCIM 2.0 service provider endpoints under `/scim/v2`.

pub(crate) mod bulk;
pub(crate) mod discovery;
pub(crate) mod groups;
pub(crate) mod users;
pub mod wire;

use axum::routing::{get, post};
use axum::Router;
use roster_scim::ScimError;

use crate::AppState;
use wire::ScimErrorResponse;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Users", get(users::users_list).post(users::users_create))
        .route("/Users/.search", post(users::users_search))
        .route(
            "/Users/{id}",
            get(users::users_get)
                .put(users::users_replace)
                .patch(users::users_patch)
                .delete(users::users_delete),
        )
        .route(
            "/Groups",
            get(groups::groups_list).post(groups::groups_create),
        )
        .route("/Groups/.search", post(groups::groups_search))
        .route(
            "/Groups/{id}",
            get(groups::groups_get)
                .put(groups::groups_replace)
                .patch(groups::groups_patch)
                .delete(groups::groups_delete),
        )
        .route("/.search", post(discovery::root_search))
        .route("/Bulk", post(bulk::bulk_post))
        .route("/Me", axum::routing::any(discovery::me_any))
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config_get),
        )
        .route("/ResourceTypes", get(discovery::resource_types_list))
        .route("/ResourceTypes/{name}", get(discovery::resource_types_get))
        .route("/Schemas", get(discovery::schemas_list))
        .route("/Schemas/{id}", get(discovery::schemas_get))
        .fallback(scim_not_found)
        .method_not_allowed_fallback(scim_method_not_allowed)
}

async fn scim_not_found() -> ScimErrorResponse {
    ScimError::not_found("no such SCIM endpoint").into()
}

async fn scim_method_not_allowed() -> ScimErrorResponse {
    ScimError::new(405, None, "method not allowed on this endpoint").into()
}

/// Reads `attributes`/`excludedAttributes` from a query string and checks
/// them against the resource's schema.
pub(crate) fn projection(
    raw: Option<&str>,
    schema: &roster_scim::schema::ResourceSchema,
) -> Result<roster_scim::query::Projection, ScimError> {
    let pairs = query_pairs(raw)?;
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let projection =
        roster_scim::query::Projection::from_params(find("attributes"), find("excludedAttributes"));
    projection.validate(schema)?;
    Ok(projection)
}

/// Parses a raw query string into pairs; malformed encoding is a SCIM error.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ScimError> {
    match raw {
        None => Ok(Vec::new()),
        Some(raw) => serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map_err(|e| ScimError::invalid_syntax(format!("malformed query string: {e}"))),
    }
}
