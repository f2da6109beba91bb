//! Reconciling the directory with the live Backstage catalog: the service
//! behind `roster reconcile` and `GET /api/v1/reconcile`.
//!
//! The comparison itself is `roster_backstage::reconcile` (pure); this
//! module gathers its two inputs. The catalog is read before the directory:
//! a user published in between then shows up as "missing", never as a
//! ghost whose deletion would be proposed.

use roster_backstage::client::{CatalogClient, CatalogConfig, CatalogError, CatalogToken};
use roster_backstage::reconcile::{
    self, CatalogEntity, DirGroup, DirUser, DirectorySnapshot, ReconcileConfig, Report,
    CATALOG_FIELDS,
};
use roster_store::{Position, Store, StoreError};

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
