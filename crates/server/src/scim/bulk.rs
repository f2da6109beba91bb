//! `POST /Bulk` (RFC 7644 §3.7): operations run one after another through
//! the same directory service as single requests; `bulkId` references are
//! resolved as the operations that define them succeed.

use std::collections::HashMap;

use axum::extract::State;
use roster_domain::Version;
use roster_scim::bulk::{self, BulkMethod, BulkOperation};
use roster_scim::{patch, resource, ScimError};
use serde_json::Value;

use super::wire::{ScimErrorResponse, ScimJson, ScimResponse};
use crate::directory::Precondition;
use crate::AppState;

enum Target {
    Users(Option<String>),
    Groups(Option<String>),
}

fn parse_path(path: &str) -> Result<Target, ScimError> {
    let trimmed = path.trim().trim_start_matches('/');
    let mut parts = trimmed.splitn(2, '/');
    let kind = parts.next().unwrap_or("");
    let id = parts.next().map(str::to_string).filter(|s| !s.is_empty());
    match kind {
        k if k.eq_ignore_ascii_case("Users") => Ok(Target::Users(id)),
        k if k.eq_ignore_ascii_case("Groups") => Ok(Target::Groups(id)),
        _ => Err(ScimError::invalid_path(format!(
            "unsupported bulk path {path:?}"
        ))),
    }
}

fn version_precondition(version: Option<&str>) -> Precondition {
    match version {
        None => Precondition::None,
        Some(v) if v.trim() == "*" => Precondition::Any,
        Some(v) => Precondition::IfMatch(Version::from_etag(v)),
    }
}

/// Runs one operation; returns (status, location, created id).
async fn run(
    state: &AppState,
    op: &BulkOperation,
    data: Option<&Value>,
) -> Result<(u16, Option<String>, Option<String>), ScimError> {
    let dir = &state.directory;
    let pre = version_precondition(op.version.as_deref());
    let need_id = |id: Option<String>| {
        id.ok_or_else(|| {
            ScimError::invalid_path(format!(
                "{} needs a resource id in the path",
                op.method.as_str()
            ))
        })
    };
    let data = || data.ok_or_else(|| ScimError::invalid_syntax("the operation needs data"));
    let location = |kind: &str, id: &str| format!("{}/{kind}/{id}", dir.base_url());
    match (op.method, parse_path(&op.path)?) {
        (BulkMethod::Post, Target::Users(None)) => {
            let view = dir.create_user(resource::user_from_json(data()?)?).await?;
            let id = view.user.id.to_string();
            Ok((201, Some(location("Users", &id)), Some(id)))
        }
        (BulkMethod::Post, Target::Groups(None)) => {
            let (attrs, members) = resource::group_from_json(data()?)?;
            let view = dir.create_group(attrs, members).await?;
            let id = view.group.id.to_string();
            Ok((201, Some(location("Groups", &id)), Some(id)))
        }
        (BulkMethod::Post, _) => Err(ScimError::invalid_path("POST goes to /Users or /Groups")),
        (BulkMethod::Put, Target::Users(id)) => {
            let id = need_id(id)?;
            dir.replace_user(&id, resource::user_from_json(data()?)?, pre)
                .await?;
            Ok((200, Some(location("Users", &id)), None))
        }
        (BulkMethod::Put, Target::Groups(id)) => {
            let id = need_id(id)?;
            let (attrs, members) = resource::group_from_json(data()?)?;
            dir.replace_group(&id, attrs, members, pre).await?;
            Ok((200, Some(location("Groups", &id)), None))
        }
        (BulkMethod::Patch, Target::Users(id)) => {
            let id = need_id(id)?;
            let ops = patch::parse_patch_request(data()?)?;
            dir.patch_user(&id, &ops, pre).await?;
            Ok((200, Some(location("Users", &id)), None))
        }
        (BulkMethod::Patch, Target::Groups(id)) => {
            let id = need_id(id)?;
            let ops = patch::parse_patch_request(data()?)?;
            dir.patch_group(&id, &ops, pre).await?;
            Ok((200, Some(location("Groups", &id)), None))
        }
        (BulkMethod::Delete, Target::Users(id)) => {
            dir.delete_user(&need_id(id)?, pre).await?;
            Ok((204, None, None))
        }
        (BulkMethod::Delete, Target::Groups(id)) => {
            dir.delete_group(&need_id(id)?, pre).await?;
            Ok((204, None, None))
        }
    }
}

#[utoipa::path(post, path = "/scim/v2/Bulk", tag = "scim", request_body(content = crate::openapi::BulkRequest, content_type = "application/scim+json"),
    responses((status = 200, description = "The result of each operation", content_type = "application/scim+json", body = crate::openapi::BulkResponse)))]
pub async fn bulk_post(
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimErrorResponse> {
    let request = bulk::parse_bulk_request(&body, state.config.max_bulk_operations)?;
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; request.operations.len()];
    let mut errors = 0u64;
    // Operations whose bulkId references are not yet resolvable wait for a
    // later pass; a pass that makes no progress fails what is left.
    let mut pending: Vec<usize> = (0..request.operations.len()).collect();
    'passes: while !pending.is_empty() {
        let mut deferred = Vec::new();
        let mut progressed = false;
        for index in pending {
            let op = &request.operations[index];
            let mut data = op.data.clone();
            let mut path_op = op.clone();
            let resolvable = match data.as_mut().map(|d| bulk::resolve_bulk_ids(d, &created)) {
                Some(Err(_)) => false,
                _ => {
                    let mut path = Value::String(op.path.clone());
                    match bulk::resolve_bulk_ids(&mut path, &created) {
                        Ok(()) => {
                            path_op.path = path.as_str().unwrap_or_default().to_string();
                            true
                        }
                        Err(_) => false,
                    }
                }
            };
            if !resolvable {
                deferred.push(index);
                continue;
            }
            progressed = true;
            let outcome = run(&state, &path_op, data.as_ref()).await;
            let entry = match outcome {
                Ok((status, location, new_id)) => {
                    if let (Some(bulk_id), Some(id)) = (&op.bulk_id, new_id) {
                        created.insert(bulk_id.clone(), id);
                    }
                    bulk::bulk_result(op, location, status, None)
                }
                Err(err) => {
                    errors += 1;
                    bulk::bulk_result(op, None, err.status, Some(&err))
                }
            };
            results[index] = Some(entry);
            if request.fail_on_errors.is_some_and(|limit| errors >= limit) {
                break 'passes;
            }
        }
        if !progressed {
            for index in deferred {
                let op = &request.operations[index];
                let err = ScimError::new(
                    409,
                    Some(roster_scim::ScimType::InvalidValue),
                    "the operation refers to a bulkId that no operation created",
                );
                results[index] = Some(bulk::bulk_result(op, None, 409, Some(&err)));
            }
            break;
        }
        pending = deferred;
    }
    Ok(ScimResponse::ok(bulk::bulk_response(
        results.into_iter().flatten().collect(),
    )))
}
