//! The discovery documents (RFC 7644 §4): what this service provider
//! supports, stated exactly.

use serde_json::{json, Value};

use crate::schema::{group_resource, user_resource};
use crate::urn;

/// Limits advertised in `/ServiceProviderConfig` and enforced by the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_operations: usize,
    pub max_payload_bytes: usize,
    pub max_filter_results: u64,
}

pub fn service_provider_config(base_url: &str, limits: Limits) -> Value {
    json!({
        "schemas": [urn::SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://github.com/roster-dev/roster#connecting-an-identity-provider",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": limits.max_bulk_operations,
            "maxPayloadSize": limits.max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": limits.max_filter_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token created with `roster token create`, sent as `Authorization: Bearer <token>`.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        },
    })
}

/// `/ResourceTypes` as a list of documents.
pub fn resource_types(base_url: &str) -> Vec<Value> {
    vec![
        user_resource().resource_type_json(base_url),
        group_resource().resource_type_json(base_url),
    ]
}

/// `/Schemas` as a list of documents.
pub fn schemas(base_url: &str) -> Vec<Value> {
    crate::schema::all_schemas()
        .into_iter()
        .map(|s| s.to_json(base_url))
        .collect()
}
