//! SCIM 2.0 (RFC 7643 schemas, RFC 7644 protocol) as pure functions.
//!
//! Only this crate knows SCIM's JSON. It parses filters and PATCH documents,
//! converts between SCIM resource documents and Roster's domain types,
//! projects `attributes`/`excludedAttributes`, and builds list, error and
//! discovery documents. It performs no I/O: the server feeds it documents
//! and stores what it returns.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;
pub mod query;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};

/// Schema and message URNs from RFC 7643/7644.
pub mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
    pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
    pub const SERVICE_PROVIDER_CONFIG: &str =
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
}
