//! The OpenAPI document served at `/openapi.json`.

use axum::Json;
use serde_json::Value;

/// Placeholder until the document is generated from the handlers.
pub async fn openapi_json() -> Json<Value> {
    Json(serde_json::json!({"openapi": "3.1.0", "info": {"title": "Roster", "version": env!("CARGO_PKG_VERSION")}, "paths": {}}))
}
