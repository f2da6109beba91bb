//! Reconciling the directory with the live Backstage catalog: the service
//! behind `roster reconcile` and `GET /api/v1/reconcile`.
//!
//! The comparison itself is `roster_backstage::reconcile` (pure); this
//! module gathers its two inputs. The catalog is read before the directory:
//! a user published in between then shows up as "missing", never as a
//! ghost whose deletion would be proposed.

use roster_backstage::client::{CatalogClient, CatalogConfig, CatalogError, CatalogToken};
use roster_backstage::reconcile::{
    self, apply_fixes, plan_fixes, AppliedFix, CatalogEntity, CatalogWriter, DirGroup, DirHandover,
    DirUser, DirectorySnapshot, FixAction, Outcome, ReconcileConfig, Report, CATALOG_FIELDS,
};
use roster_store::{Position, ReconcileFix, Store, StoreError};
use time::OffsetDateTime;

use crate::config::Config;

/// Rows per store page while taking the snapshot.
const PAGE: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reconciliation needs `backstage.{0}` (ROSTER_BACKSTAGE__{1}) in the configuration")]
    NotConfigured(&'static str, &'static str),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("reading the directory failed: {0}")]
    Store(#[from] StoreError),
}

/// A catalog client from the `[backstage]` configuration.
pub fn catalog_client(config: &Config) -> Result<CatalogClient, ReconcileError> {
    let url = config
        .backstage
        .url
        .clone()
        .ok_or(ReconcileError::NotConfigured("url", "URL"))?;
    let token = config
        .backstage
        .token
        .as_ref()
        .ok_or(ReconcileError::NotConfigured("token", "TOKEN"))?;
    Ok(CatalogClient::new(CatalogConfig::new(
        url,
        CatalogToken::new(token.expose()),
    ))?)
}

/// The directory as reconciliation sees it.
pub async fn directory_snapshot(store: &dyn Store) -> Result<DirectorySnapshot, StoreError> {
    let mut snapshot = DirectorySnapshot::default();
    let mut after = Position::START;
    loop {
        let page = store.catalog_users(after, PAGE).await?;
        for entry in page.items {
            let user = &entry.user;
            snapshot.users.push(DirUser {
                id: user.id.to_string(),
                user_name: user.user_name().as_str().to_string(),
                entity_name: entry.entity_name.clone(),
                email: user.primary_email().map(str::to_string),
                active: user.attributes.is_active(),
                manager_id: user
                    .attributes
                    .enterprise
                    .as_ref()
                    .and_then(|e| e.manager.as_ref())
                    .and_then(|m| m.value.clone()),
                external_id: user.attributes.external_id.clone(),
                group_ids: entry.groups.iter().map(|g| g.to_string()).collect(),
            });
        }
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    let graph = store.group_graph().await?;
    let mut after = Position::START;
    loop {
        let page = store.catalog_groups(after, PAGE).await?;
        for entry in page.items {
            let id = entry.group.id;
            let mut member_ids: Vec<String> =
                entry.members.iter().map(|m| m.id.to_string()).collect();
            member_ids.extend(
                graph
                    .edges
                    .iter()
                    .filter(|(parent, _)| *parent == id)
                    .map(|(_, child)| child.to_string()),
            );
            snapshot.groups.push(DirGroup {
                id: id.to_string(),
                display_name: entry.group.attributes.display_name.as_str().to_string(),
                entity_name: entry.entity_name.clone(),
                member_ids,
            });
        }
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    snapshot.handovers = store
        .list_handovers()
        .await?
        .into_iter()
        .map(|h| DirHandover {
            user_id: h.user_id.to_string(),
            user_name: h.user_name,
            entity_name: h.entity_name,
            successor: h.successor,
            reason: h.reason.as_str().to_owned(),
        })
        .collect();
    Ok(snapshot)
}

/// Compares the live catalog with the directory and reports the findings.
pub async fn reconcile_now(
    store: &dyn Store,
    client: &CatalogClient,
    config: &Config,
) -> Result<Report, ReconcileError> {
    let raw = client.list_entities(&[], CATALOG_FIELDS).await?;
    let mut catalog = Vec::with_capacity(raw.len());
    for value in &raw {
        match CatalogEntity::from_json(value) {
            Ok(entity) => catalog.push(entity),
            // One malformed entity must not hide every other finding.
            Err(err) => {
                tracing::warn!(error = %err, "skipping a catalog entity Roster cannot read")
            }
        }
    }
    let snapshot = directory_snapshot(store).await?;
    let settings = ReconcileConfig {
        namespace: config.publish.namespace.as_str().to_string(),
        fallback_owner: config.backstage.fallback_owner.clone(),
    };
    Ok(reconcile::reconcile(&snapshot, &catalog, &settings))
}

/// Applies the report's applicable fixes through `writer` and records each
/// one, with its outcome, in the store (`reconcile_fixes`), as done by
/// `actor` (a token name, or `cli`). Returns the outcomes; a failure to
/// record is an error (the fixes themselves have run by then).
pub async fn apply_and_record<W: CatalogWriter>(
    store: &dyn Store,
    writer: &W,
    report: &Report,
    actor: &str,
) -> Result<Vec<AppliedFix>, StoreError> {
    let plan = plan_fixes(report);
    let applied = apply_fixes(writer, &plan).await;
    let records = fix_records(report, &applied, actor, OffsetDateTime::now_utc());
    store.record_reconcile_fixes(&records).await?;
    Ok(applied)
}

/// The store records of applied fixes: each with the kind of the finding
/// that proposed it (the first, in report order).
pub fn fix_records(
    report: &Report,
    applied: &[AppliedFix],
    actor: &str,
    at: OffsetDateTime,
) -> Vec<ReconcileFix> {
    applied
        .iter()
        .map(|done| {
            let finding = report
                .findings
                .iter()
                .find(|f| f.fix.action == done.fix)
                .map_or("unknown", |f| f.kind.as_str());
            let (entity_ref, uid) = match &done.fix {
                FixAction::DeleteEntity { uid, entity_ref } => {
                    (Some(entity_ref.to_string()), Some(uid.clone()))
                }
                FixAction::RefreshLocation { entity_ref, .. } => {
                    let uid = report
                        .findings
                        .iter()
                        .find(|f| f.fix.action == done.fix)
                        .and_then(|f| f.subject.uid.clone());
                    (Some(entity_ref.to_string()), uid)
                }
                FixAction::ChangeOwner { entity_ref, .. } => (Some(entity_ref.to_string()), None),
                FixAction::PublishUser { .. } | FixAction::None => (None, None),
            };
            let (outcome, error) = match &done.outcome {
                Outcome::Deleted => ("deleted", None),
                Outcome::AlreadyGone => ("already-gone", None),
                Outcome::Refreshed => ("refreshed", None),
                Outcome::Failed { error } => ("failed", Some(error.clone())),
                Outcome::NotAttempted { reason } => ("not-attempted", Some(reason.clone())),
            };
            ReconcileFix {
                applied_at: at,
                actor: actor.to_owned(),
                finding: finding.to_owned(),
                entity_ref,
                uid,
                action: done.fix.name().to_owned(),
                outcome: outcome.to_owned(),
                error,
            }
        })
        .collect()
}
