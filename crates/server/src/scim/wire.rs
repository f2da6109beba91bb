//! SCIM on the wire: the JSON body extractor, responses with the SCIM media
//! type and ETags, and the error mapping.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_domain::Version;
use roster_scim::ScimError;
use serde_json::Value;

use crate::directory::Precondition;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM error as an HTTP response (RFC 7644 §3.12).
pub struct ScimErrorResponse(pub ScimError);

impl From<ScimError> for ScimErrorResponse {
    fn from(err: ScimError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ScimErrorResponse {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, scim_headers(), self.0.to_json().to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster\""),
            );
        }
        response
    }
}

fn scim_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    )]
}

/// A SCIM resource or message with a status and, for single resources, an ETag.
pub struct ScimResponse {
    pub status: StatusCode,
    pub body: Value,
    pub etag: Option<Version>,
    pub location: Option<String>,
}

impl ScimResponse {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            etag: None,
            location: None,
        }
    }

    pub fn resource(status: StatusCode, body: Value, version: Version) -> Self {
        let location = body["meta"]["location"].as_str().map(str::to_string);
        Self {
            status,
            body,
            etag: Some(version),
            location: (status == StatusCode::CREATED)
                .then_some(location)
                .flatten(),
        }
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, scim_headers(), self.body.to_string()).into_response();
        if let Some(version) = self.etag {
            if let Ok(v) = HeaderValue::from_str(&version.etag()) {
                response.headers_mut().insert(header::ETAG, v);
            }
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// A JSON request body, parsed with errors in SCIM's own format rather than
/// the framework's plain text. Accepts `application/scim+json`,
/// `application/json`, and bodies without a content type (some IdPs omit it).
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimErrorResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let ct = content_type.to_str().unwrap_or("").to_ascii_lowercase();
            if !(ct.starts_with("application/scim+json")
                || ct.starts_with("application/json")
                || ct.contains("+json"))
            {
                return Err(ScimError::new(
                    415,
                    None,
                    "the body must be application/scim+json or application/json",
                )
                .into());
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::payload_too_large("the request body is too large")
            } else {
                ScimError::invalid_syntax(format!("could not read the request body: {rejection}"))
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|err| {
            ScimError::invalid_syntax(format!("the body is not valid JSON: {err}"))
        })?;
        Ok(ScimJson(value))
    }
}

/// Reads `If-Match` into a precondition.
pub fn precondition(headers: &HeaderMap) -> Precondition {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => Precondition::None,
        Some(raw) if raw.trim() == "*" => Precondition::Any,
        Some(raw) => Precondition::IfMatch(raw.split(',').filter_map(Version::from_etag).next()),
    }
}

/// Whether `If-None-Match` names `current` (so a GET may answer 304).
pub fn not_modified(headers: &HeaderMap, current: Version) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|raw| {
            raw.trim() == "*"
                || raw
                    .split(',')
                    .filter_map(Version::from_etag)
                    .any(|v| v == current)
        })
}

pub fn not_modified_response(version: Version) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(&version.etag()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
