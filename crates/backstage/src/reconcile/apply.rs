//! Applying the fixes Roster can apply: deletes of entities by uid and
//! refreshes. The CLI shows [`plan_fixes`]' result first and applies it only
//! when asked (a dry run is the default).

use std::collections::HashSet;
use std::future::Future;

use serde::Serialize;

use super::{FixAction, Report};
use crate::client::{CatalogClient, CatalogError, Deletion};

/// The catalog calls fixes need. [`CatalogClient`] implements it; tests can
/// put a recorder in its place.
pub trait CatalogWriter {
    fn delete_entity_by_uid(
        &self,
        uid: &str,
    ) -> impl Future<Output = Result<Deletion, CatalogError>> + Send;

    fn refresh_entity(
        &self,
        entity_ref: &str,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send;
}

impl CatalogWriter for CatalogClient {
    fn delete_entity_by_uid(
        &self,
        uid: &str,
    ) -> impl Future<Output = Result<Deletion, CatalogError>> + Send {
        CatalogClient::delete_entity_by_uid(self, uid)
    }

    fn refresh_entity(
        &self,
        entity_ref: &str,
    ) -> impl Future<Output = Result<(), CatalogError>> + Send {
        CatalogClient::refresh_entity(self, entity_ref)
    }
}

/// The applicable fixes of a report, each once, in the order to run them:
/// deletes first, then refreshes, each sorted by entity ref.
///
/// Deletes go first because a refresh makes the catalog re-read a location;
/// an entity deleted before that re-read is gone for good if the location no
/// longer emits it, while the reverse order could re-read first and leave the
/// delete racing the catalog's next processing round.
pub fn plan_fixes(report: &Report) -> Vec<FixAction> {
    let mut seen = HashSet::new();
    let mut deletes = Vec::new();
    let mut refreshes = Vec::new();
    for finding in report.findings.iter().filter(|f| f.fix.applicable) {
        let action = &finding.fix.action;
        match action {
            FixAction::DeleteEntity { uid, .. } if seen.insert(format!("delete {uid}")) => {
                deletes.push(action.clone())
            }
            FixAction::RefreshLocation { entity_ref, .. }
                if seen.insert(format!("refresh {}", entity_ref.key())) =>
            {
                refreshes.push(action.clone())
            }
            _ => {}
        }
    }
    let entity = |action: &FixAction| match action {
        FixAction::DeleteEntity { entity_ref, .. }
        | FixAction::RefreshLocation { entity_ref, .. } => Some(entity_ref.clone()),
        _ => None,
    };
    deletes.sort_by_key(entity);
    refreshes.sort_by_key(entity);
    deletes.extend(refreshes);
    deletes
}

/// What happened to one fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Deleted,
    /// The entity was gone before Roster asked; the goal is reached.
    AlreadyGone,
    Refreshed,
    Failed {
        error: String,
    },
    /// Not tried: the fix needs a person, or an earlier call showed that no
    /// call could succeed (Backstage unreachable, token refused).
    NotAttempted {
        reason: String,
    },
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            Outcome::Deleted | Outcome::AlreadyGone | Outcome::Refreshed
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedFix {
    pub fix: FixAction,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Runs the fixes one after the other and records each outcome. A failed
/// fix does not stop the others, except when the failure means that every
/// further call would fail the same way ([`CatalogError::is_fatal`]); the
/// rest are then recorded as not attempted.
pub async fn apply_fixes<W: CatalogWriter>(writer: &W, fixes: &[FixAction]) -> Vec<AppliedFix> {
    let mut applied = Vec::with_capacity(fixes.len());
    let mut stopped: Option<String> = None;
    for fix in fixes {
        let outcome = match (&stopped, fix) {
            (Some(reason), _) => Outcome::NotAttempted {
                reason: reason.clone(),
            },
            (None, FixAction::DeleteEntity { uid, .. }) => {
                match writer.delete_entity_by_uid(uid).await {
                    Ok(Deletion::Deleted) => Outcome::Deleted,
                    Ok(Deletion::AlreadyGone) => Outcome::AlreadyGone,
                    Err(error) => failed(error, &mut stopped),
                }
            }
            (None, FixAction::RefreshLocation { entity_ref, .. }) => {
                match writer.refresh_entity(entity_ref.as_str()).await {
                    Ok(()) => Outcome::Refreshed,
                    Err(error) => failed(error, &mut stopped),
                }
            }
            (
                None,
                FixAction::ChangeOwner { .. } | FixAction::PublishUser { .. } | FixAction::None,
            ) => Outcome::NotAttempted {
                reason: "Roster cannot apply this fix through the catalog API".to_owned(),
            },
        };
        if let Outcome::Failed { error } = &outcome {
            tracing::warn!(fix = %fix, error = %error, "catalog fix failed");
        }
        applied.push(AppliedFix {
            fix: fix.clone(),
            outcome,
        });
    }
    applied
}

fn failed(error: CatalogError, stopped: &mut Option<String>) -> Outcome {
    if error.is_fatal() {
        *stopped = Some(format!("stopped after an earlier failure: {error}"));
    }
    Outcome::Failed {
        error: error.to_string(),
    }
}
