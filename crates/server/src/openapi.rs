//! The OpenAPI document served at `/openapi.json`, generated from the
//! handlers' annotations. `docs/openapi.json` is the committed copy; CI
//! diffs the two.

use axum::Json;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::scim;

/// A SCIM error (RFC 7644 §3.12).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScimError {
    /// Always `["urn:ietf:params:scim:api:messages:2.0:Error"]`.
    schemas: Vec<String>,
    /// The HTTP status, as a string.
    status: String,
    /// The SCIM detail error keyword, e.g. `invalidFilter`.
    #[schema(nullable = false)]
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
    detail: String,
}

/// A SCIM User (core schema plus the Enterprise User extension). See
/// `/scim/v2/Schemas` for every attribute.
#[derive(ToSchema)]
#[schema(example = json!({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "amara.nwosu@northwind.example",
    "externalId": "00u9k2lmq8XyZa3f74x6",
    "name": {"givenName": "Amara", "familyName": "Nwosu"},
    "emails": [{"value": "amara.nwosu@northwind.example", "type": "work", "primary": true}],
    "active": true
}))]
#[allow(dead_code)]
pub struct User {
    schemas: Vec<String>,
    id: Option<String>,
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "externalId")]
    external_id: Option<String>,
    active: Option<bool>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    #[schema(value_type = Object)]
    meta: Option<Value>,
}

/// A SCIM Group.
#[derive(ToSchema)]
#[schema(example = json!({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": "Payments Core",
    "externalId": "00g1emaKYZTWRYYRRTSK"
}))]
#[allow(dead_code)]
pub struct Group {
    schemas: Vec<String>,
    id: Option<String>,
    #[serde(rename = "displayName")]
    display_name: String,
    #[serde(rename = "externalId")]
    external_id: Option<String>,
    members: Option<Vec<GroupMember>>,
    #[schema(value_type = Object)]
    meta: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GroupMember {
    value: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    display: Option<String>,
}

/// A page of resources (RFC 7644 §3.4.2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ListResponse {
    schemas: Vec<String>,
    #[serde(rename = "totalResults")]
    total_results: u64,
    #[serde(rename = "startIndex")]
    start_index: u64,
    #[serde(rename = "itemsPerPage")]
    items_per_page: u64,
    #[serde(rename = "Resources")]
    #[schema(value_type = Vec<Object>)]
    resources: Vec<Value>,
}

/// A PATCH request (RFC 7644 §3.5.2).
#[derive(ToSchema)]
#[schema(example = json!({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": false}}]
}))]
#[allow(dead_code)]
pub struct PatchRequest {
    schemas: Vec<String>,
    #[serde(rename = "Operations")]
    operations: Vec<PatchOperation>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PatchOperation {
    /// `add`, `remove` or `replace` (any case).
    op: String,
    path: Option<String>,
    #[schema(value_type = Object)]
    value: Option<Value>,
}

/// A search request (RFC 7644 §3.4.3).
#[derive(ToSchema)]
#[schema(example = json!({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
    "filter": "userName sw \"a\"",
    "startIndex": 1,
    "count": 10
}))]
#[allow(dead_code)]
pub struct SearchRequest {
    schemas: Vec<String>,
    filter: Option<String>,
    #[serde(rename = "sortBy")]
    sort_by: Option<String>,
    #[serde(rename = "sortOrder")]
    sort_order: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<Vec<String>>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<Vec<String>>,
}

/// A bulk request (RFC 7644 §3.7).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BulkRequest {
    schemas: Vec<String>,
    #[serde(rename = "failOnErrors")]
    fail_on_errors: Option<u64>,
    #[serde(rename = "Operations")]
    #[schema(value_type = Vec<Object>)]
    operations: Vec<Value>,
}

/// A bulk response.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BulkResponse {
    schemas: Vec<String>,
    #[serde(rename = "Operations")]
    #[schema(value_type = Vec<Object>)]
    operations: Vec<Value>,
}

/// A discovery document (ServiceProviderConfig, ResourceType or Schema).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DiscoveryDocument {
    schemas: Vec<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roster",
        description = "Roster's HTTP API: the SCIM 2.0 service provider (RFC 7643/7644) and operational endpoints.",
        license(name = "Apache-2.0")
    ),
    paths(
        scim::users::users_list,
        scim::users::users_create,
        scim::users::users_search,
        scim::users::users_get,
        scim::users::users_replace,
        scim::users::users_patch,
        scim::users::users_delete,
        scim::groups::groups_list,
        scim::groups::groups_create,
        scim::groups::groups_search,
        scim::groups::groups_get,
        scim::groups::groups_replace,
        scim::groups::groups_patch,
        scim::groups::groups_delete,
        scim::bulk::bulk_post,
        scim::discovery::root_search,
        scim::discovery::service_provider_config_get,
        scim::discovery::resource_types_list,
        scim::discovery::resource_types_get,
        scim::discovery::schemas_list,
        scim::discovery::schemas_get,
        crate::ops::healthz,
        crate::ops::readyz,
        crate::ops::metrics,
        openapi_json,
        crate::admin::reconcile_get,
        catalog_feed_doc,
        crate::handovers::handovers_list,
        crate::handovers::handovers_get,
        crate::handovers::handovers_put,
        crate::handovers::handovers_delete,
        crate::handovers::reconcile_fixes_list,
        crate::access_api::roles_list,
        crate::access_api::roles_get,
        crate::access_api::roles_put,
        crate::access_api::roles_delete,
        crate::access_api::assignments_list,
        crate::access_api::assignments_create,
        crate::access_api::assignments_delete,
        crate::access_api::policy_get,
        crate::access_api::policy_put,
        crate::access_api::changes_list,
        crate::access_api::explain,
        crate::access_api::who_can,
        crate::access_api::authorize,
        crate::permission::authorize,
        crate::permission::health,
    ),
    components(schemas(ScimError, User, Group, GroupMember, ListResponse, PatchRequest, PatchOperation, SearchRequest, BulkRequest, BulkResponse, DiscoveryDocument)),
    modifiers(&ScimErrors),
    tags((name = "scim", description = "SCIM 2.0 service provider"), (name = "ops", description = "Operational endpoints"), (name = "admin", description = "The admin API (admin-scoped tokens)"), (name = "backstage", description = "The Backstage catalog feed (catalog-feed tokens)"), (name = "access", description = "Access decisions: Backstage's permission protocol (Backstage tokens) and the native API (authorize or admin tokens)"))
)]
pub struct ApiDoc;

/// Adds the bearer scheme and the SCIM error responses every SCIM
/// operation can give, so each handler annotation lists only its successes.
struct ScimErrors;

impl Modify for ScimErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Backstage's own ES256 tokens (user, or plugin with `obo`),
        // verified against Backstage's published keys.
        components.add_security_scheme(
            "backstage",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let error = || {
            ResponseBuilder::new()
                .description("A SCIM error document")
                .content(
                    "application/scim+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ScimError")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/scim/v2") {
                continue;
            }
            let operations: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for status in [
                    "400", "401", "403", "404", "409", "412", "413", "415", "500", "501", "503",
                ] {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error().into());
                }
                operation.security =
                    Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
            }
        }
    }
}

/// The document itself.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every published user and group as Backstage entities, for a Backstage
/// `url` location: YAML documents separated by `---`, or one JSON array
/// with `Accept: application/json`. Streamed; the `ETag` fingerprints the
/// whole directory and the publish settings. (Documentation only: the
/// handler is `catalog_feed::entities_get`.)
#[utoipa::path(get, path = "/backstage/entities.yaml", tag = "backstage", operation_id = "entities_get",
    params(
        ("token" = Option<String>, Query, description = "A catalog-feed token (Backstage's URL reader sends no headers); an `Authorization: Bearer` header works too"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of an earlier answer: 304 if the directory has not changed since"),
    ),
    responses(
        (status = 200, description = "Every published user and group",
            headers(("ETag" = String, description = "A fingerprint of the directory and the publish settings")),
            content(
                (String = "application/yaml"),
                (Vec<Object> = "application/json"),
            )),
        (status = 304, description = "Not modified: the directory is as it was at the ETag given"),
        (status = 401, description = "No token, or an unknown or revoked one", content_type = "application/json", body = Object),
        (status = 403, description = "The token's scope is not catalog-feed", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn catalog_feed_doc() {}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    /// The committed `docs/openapi.json` is the generated document.
    /// `ROSTER_UPDATE_OPENAPI=1 cargo test -p roster-server openapi` rewrites it.
    #[test]
    fn openapi_document_matches_committed_copy() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = serde_json::to_value(super::document()).unwrap();
        if std::env::var("ROSTER_UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&generated).unwrap() + "\n",
            )
            .unwrap();
        }
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path).expect("docs/openapi.json exists"),
        )
        .unwrap();
        assert!(
            committed == generated,
            "docs/openapi.json is stale; regenerate it with scripts/update-openapi.sh"
        );
    }
}
