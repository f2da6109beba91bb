//! The directory service: every change to users and groups goes through
//! here, whichever front end asked (SCIM, bulk, later the admin API and
//! console). Each call validates, applies the domain rules and makes one
//! store call, which is one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use roster_domain::{
    Clock, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, User, UserAttributes, UserId,
    Version,
};
use roster_scim::filter::Filter;
use roster_scim::patch::{self, MemberOp, MembershipPlan, PatchOperation};
use roster_scim::query::{sort_documents, ListQuery};
use roster_scim::resource::{self, MemberValue, UserGroup};
use roster_scim::schema::ResourceSchema;
use roster_scim::schema::{group_resource, user_resource};
use roster_scim::ScimError;
use roster_store::{
    GroupQuery, Handover, HandoverReason, MembershipChange, Store, StoreError, UniqueField,
    UserQuery,
};
use serde_json::Value;
use uuid::Uuid;

/// How often a write that lost a race (no `If-Match` given) is retried
/// against the newer version before giving up.
const MAX_WRITE_ATTEMPTS: usize = 5;

/// A user or group as read, ready to render.
pub struct UserView {
    pub user: User,
    pub groups: Vec<UserGroup>,
}

pub struct GroupView {
    pub group: Group,
    /// `None` when the caller did not want the members loaded.
    pub members: Option<Vec<Member>>,
}

/// A page of a list.
pub struct Page {
    pub total: u64,
    pub resources: Vec<Value>,
}

impl Page {
    fn empty() -> Self {
        Page {
            total: 0,
            resources: Vec::new(),
        }
    }
}

/// Which index a list filter lets the store use: a top-level `eq` on the
/// resource's name attribute, on `externalId` or on `id`, in that order.
/// The whole filter is still evaluated on what the index returns.
enum IndexHint<'f> {
    Name(&'f str),
    ExternalId(&'f str),
    Id(&'f str),
    Scan,
}

fn index_hint<'f>(
    filter: Option<&'f Filter>,
    schema: &ResourceSchema,
    name_attr: &str,
) -> IndexHint<'f> {
    let Some(f) = filter else {
        return IndexHint::Scan;
    };
    if let Some(name) = f.equality_value(schema, name_attr) {
        IndexHint::Name(name)
    } else if let Some(ext) = f.equality_value(schema, "externalId") {
        IndexHint::ExternalId(ext)
    } else if let Some(id) = f.equality_value(schema, "id") {
        IndexHint::Id(id)
    } else {
        IndexHint::Scan
    }
}

/// What the caller demanded of the current version (`If-Match`).
#[derive(Debug, Clone, Copy)]
pub enum Precondition {
    None,
    IfMatch(Option<Version>),
    /// `If-Match: *`
    Any,
}

impl Precondition {
    fn check(self, current: Version) -> Result<(), ScimError> {
        match self {
            Precondition::None | Precondition::Any => Ok(()),
            Precondition::IfMatch(Some(v)) if v == current => Ok(()),
            Precondition::IfMatch(_) => Err(ScimError::precondition_failed(format!(
                "the resource is at version {}, not the one given in If-Match",
                current.etag()
            ))),
        }
    }

    fn allows_retry(self) -> bool {
        !matches!(self, Precondition::IfMatch(_))
    }
}

#[derive(Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    base_url: Arc<str>,
    handovers: Arc<HandoverPolicy>,
}

/// How the directory chooses who takes over an offboarded user's catalog
/// entities: their manager, else their first published group, else
/// `fallback_owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverPolicy {
    /// The namespace the feed publishes users and groups in.
    pub namespace: String,
    /// `[backstage] fallback_owner`: an entity ref (kind defaults to group).
    pub fallback_owner: Option<String>,
}

impl Default for HandoverPolicy {
    fn default() -> Self {
        Self {
            namespace: "default".to_owned(),
            fallback_owner: None,
        }
    }
}

/// Maps storage failures to SCIM errors. Backend failures are logged here,
/// once, and answered opaquely.
pub fn store_error(err: StoreError) -> ScimError {
    match err {
        StoreError::Conflict(UniqueField::UserName) => {
            ScimError::uniqueness("a user with this userName already exists")
        }
        StoreError::Conflict(UniqueField::GroupDisplayName) => {
            ScimError::uniqueness("a group with this displayName already exists")
        }
        StoreError::Conflict(UniqueField::TokenName) => {
            ScimError::uniqueness("a token with this name already exists")
        }
        StoreError::NotFound => ScimError::not_found("resource not found"),
        StoreError::VersionMismatch { .. } => {
            ScimError::precondition_failed("the resource changed since the version given")
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            ScimError::internal()
        }
    }
}

fn user_not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("User {id} not found"))
}

fn group_not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("Group {id} not found"))
}

/// Whether a filter (or sort) mentions attribute `name` at top level.
fn filter_mentions(filter: &Filter, name: &str) -> bool {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => {
            path.attr.eq_ignore_ascii_case(name)
        }
        Filter::ValuePath { path, .. } => path.attr.eq_ignore_ascii_case(name),
        Filter::And(a, b) | Filter::Or(a, b) => {
            filter_mentions(a, name) || filter_mentions(b, name)
        }
        Filter::Not(inner) => filter_mentions(inner, name),
    }
}

fn page_bounds(query: &ListQuery, total: usize) -> (usize, usize) {
    let start = (query.start_index.saturating_sub(1) as usize).min(total);
    let end = start.saturating_add(query.page_size() as usize).min(total);
    (start, end)
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, base_url: &str) -> Self {
        Self {
            store,
            clock,
            base_url: base_url.into(),
            handovers: Arc::new(HandoverPolicy::default()),
        }
    }

    /// The same directory, choosing handover successors by `policy`.
    pub fn with_handover_policy(mut self, policy: HandoverPolicy) -> Self {
        self.handovers = Arc::new(policy);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ----- users -------------------------------------------------------

    pub async fn create_user(&self, attributes: UserAttributes) -> Result<UserView, ScimError> {
        let user = User {
            id: UserId::new_random(),
            meta: Meta::new(self.clock.now()),
            attributes,
        };
        self.store.insert_user(&user).await.map_err(store_error)?;
        Ok(UserView {
            user,
            groups: Vec::new(),
        })
    }

    async fn load_user(&self, id: &str) -> Result<User, ScimError> {
        let user_id: UserId = id.parse().map_err(|_| user_not_found(id))?;
        self.store
            .get_user(user_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| user_not_found(id))
    }

    async fn groups_of(
        &self,
        ids: &[UserId],
    ) -> Result<HashMap<UserId, Vec<UserGroup>>, ScimError> {
        let groups = self.store.groups_of_users(ids).await.map_err(store_error)?;
        Ok(groups
            .into_iter()
            .map(|(id, refs)| (id, user_groups(refs)))
            .collect())
    }

    /// A user and, in the same round trip, its direct groups.
    async fn load_user_view(&self, id: &str) -> Result<UserView, ScimError> {
        let user_id: UserId = id.parse().map_err(|_| user_not_found(id))?;
        let (user, groups) = self
            .store
            .find_users_with_groups(&UserQuery::ByIds(vec![user_id]))
            .await
            .map_err(store_error)?
            .pop()
            .ok_or_else(|| user_not_found(id))?;
        Ok(UserView {
            user,
            groups: user_groups(groups),
        })
    }

    pub async fn get_user(&self, id: &str, with_groups: bool) -> Result<UserView, ScimError> {
        if with_groups {
            return self.load_user_view(id).await;
        }
        let user = self.load_user(id).await?;
        Ok(UserView {
            user,
            groups: Vec::new(),
        })
    }

    /// Writes a new version of a user computed from the current one by
    /// `change`, retrying on a lost race unless the client pinned a version.
    async fn update_user_with(
        &self,
        id: &str,
        precondition: Precondition,
        change: impl Fn(&User) -> Result<UserAttributes, ScimError>,
    ) -> Result<UserView, ScimError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            // A user write does not change group memberships, so the groups
            // read here are the ones to answer with.
            let UserView {
                user: current,
                groups,
            } = self.load_user_view(id).await?;
            precondition.check(current.meta.version)?;
            let attributes = change(&current)?;
            if attributes.identical(&current.attributes) {
                // Nothing changed: keep the version, as IdPs re-send state.
                return Ok(UserView {
                    user: current,
                    groups,
                });
            }
            let updated = User {
                id: current.id,
                meta: current.meta.touched(self.clock.now()),
                attributes,
            };
            match self.store.update_user(&updated, current.meta.version).await {
                Ok(()) => {
                    if current.attributes.is_active() && !updated.attributes.is_active() {
                        let group_ids: Vec<GroupId> =
                            groups.iter().filter_map(|g| g.id.parse().ok()).collect();
                        self.record_handover(&updated, Some(group_ids)).await;
                    }
                    return Ok(UserView {
                        user: updated,
                        groups,
                    });
                }
                Err(StoreError::VersionMismatch { .. }) if precondition.allows_retry() => continue,
                Err(StoreError::NotFound) => return Err(user_not_found(id)),
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(ScimError::new(
            409,
            None,
            "the user is being changed concurrently; retry",
        ))
    }

    pub async fn replace_user(
        &self,
        id: &str,
        attributes: UserAttributes,
        precondition: Precondition,
    ) -> Result<UserView, ScimError> {
        self.update_user_with(id, precondition, |_| Ok(attributes.clone()))
            .await
    }

    pub async fn patch_user(
        &self,
        id: &str,
        ops: &[PatchOperation],
        precondition: Precondition,
    ) -> Result<UserView, ScimError> {
        let base_url = self.base_url.clone();
        self.update_user_with(id, precondition, |current| {
            let mut doc = resource::user_to_json(current, &[], &base_url);
            patch::apply_to_user(&mut doc, ops)?;
            resource::user_from_json(&doc)
        })
        .await
    }

    pub async fn delete_user(&self, id: &str, precondition: Precondition) -> Result<(), ScimError> {
        let user = self.load_user(id).await?;
        precondition.check(user.meta.version)?;
        // Chosen before the delete, which takes the user's memberships and
        // entity name with it.
        let handover = self.choose_handover(&user, None).await;
        let existed = self
            .store
            .delete_user(user.id, self.clock.now())
            .await
            .map_err(store_error)?;
        if existed {
            self.save_handover(handover).await;
            Ok(())
        } else {
            Err(user_not_found(id))
        }
    }

    // ----- ownership handovers ------------------------------------------

    /// Records who takes over a user who was just deactivated.
    async fn record_handover(&self, user: &User, groups: Option<Vec<GroupId>>) {
        let handover = self.choose_handover(user, groups).await;
        self.save_handover(handover).await;
    }

    /// Stores an automatic handover (one write; a manual one is kept). A
    /// failure is logged and does not fail the SCIM request: the user
    /// change is already committed, and reconciliation still proposes an
    /// owner without it.
    async fn save_handover(&self, handover: Option<Handover>) {
        let Some(handover) = handover else {
            return;
        };
        match self.store.save_handover(&handover).await {
            Ok(true) => tracing::info!(
                user = %handover.user_id,
                successor = %handover.successor,
                reason = %handover.reason,
                "ownership handover recorded"
            ),
            Ok(false) => tracing::info!(
                user = %handover.user_id,
                "a manual ownership handover is kept"
            ),
            Err(err) => {
                tracing::error!(error = %err, user = %handover.user_id, "recording an ownership handover failed")
            }
        }
    }

    /// The successor of an offboarded user, by [`HandoverPolicy`]: reads
    /// only (a few indexed lookups), `None` when nobody qualifies or the
    /// store fails (logged).
    async fn choose_handover(&self, user: &User, groups: Option<Vec<GroupId>>) -> Option<Handover> {
        match self.try_choose_handover(user, groups).await {
            Ok(handover) => handover,
            Err(err) => {
                tracing::error!(error = %err, user = %user.id, "choosing an ownership successor failed");
                None
            }
        }
    }

    async fn try_choose_handover(
        &self,
        user: &User,
        groups: Option<Vec<GroupId>>,
    ) -> Result<Option<Handover>, StoreError> {
        use roster_backstage::reconcile::EntityRef;
        let namespace = self.handovers.namespace.as_str();
        let mut chosen: Option<(String, Option<Uuid>, HandoverReason)> = None;

        // The manager, if they are a live user with a Backstage name.
        let manager = user
            .attributes
            .enterprise
            .as_ref()
            .and_then(|e| e.manager.as_ref())
            .and_then(|m| m.value.as_deref())
            .and_then(|value| value.trim().parse::<UserId>().ok())
            .filter(|manager| *manager != user.id);
        if let Some(manager) = manager {
            let active = self
                .store
                .get_user(manager)
                .await?
                .is_some_and(|m| m.attributes.is_active());
            if active {
                if let Some(name) = self
                    .store
                    .entity_name(MemberKind::User, manager.as_uuid())
                    .await?
                {
                    let to = EntityRef::new("user", namespace, &name);
                    chosen = Some((
                        to.to_string(),
                        Some(manager.as_uuid()),
                        HandoverReason::Manager,
                    ));
                }
            }
        }

        // Else the first of their groups (in creation order) with a name.
        if chosen.is_none() {
            let groups = match groups {
                Some(groups) => groups,
                None => self
                    .store
                    .groups_of_users(&[user.id])
                    .await?
                    .remove(&user.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| g.id)
                    .collect(),
            };
            for group in groups {
                if let Some(name) = self
                    .store
                    .entity_name(MemberKind::Group, group.as_uuid())
                    .await?
                {
                    let to = EntityRef::new("group", namespace, &name);
                    chosen = Some((
                        to.to_string(),
                        Some(group.as_uuid()),
                        HandoverReason::PrimaryGroup,
                    ));
                    break;
                }
            }
        }

        // Else the configured fallback owner.
        if chosen.is_none() {
            chosen = self
                .handovers
                .fallback_owner
                .as_deref()
                .and_then(|raw| EntityRef::parse(raw, "group", namespace))
                .filter(|to| matches!(to.kind(), "user" | "group"))
                .map(|to| (to.to_string(), None, HandoverReason::Fallback));
        }

        let Some((successor, successor_id, reason)) = chosen else {
            tracing::info!(user = %user.id, "no ownership successor: no manager, group or fallback owner");
            return Ok(None);
        };
        let entity_name = self
            .store
            .entity_name(MemberKind::User, user.id.as_uuid())
            .await?;
        Ok(Some(Handover {
            user_id: user.id,
            user_name: user.user_name().as_str().to_owned(),
            entity_name,
            successor,
            successor_id,
            reason,
            recorded_at: self.clock.now(),
            recorded_by: "scim".to_owned(),
        }))
    }

    pub async fn list_users(&self, query: &ListQuery) -> Result<Page, ScimError> {
        let schema = user_resource();
        let wants_groups = query.projection.wants(schema, "groups");
        let render = |user: &User, groups: &HashMap<UserId, Vec<UserGroup>>| {
            let g = groups.get(&user.id).map(Vec::as_slice).unwrap_or(&[]);
            query
                .projection
                .apply(schema, resource::user_to_json(user, g, &self.base_url))
        };

        // Unfiltered, unsorted: page in the database.
        if query.filter.is_none() && query.sort_by.is_none() {
            let total = self.store.count_users().await.map_err(store_error)?;
            let users = self
                .store
                .find_users(&UserQuery::All {
                    offset: query.start_index.saturating_sub(1),
                    limit: Some(query.page_size()),
                })
                .await
                .map_err(store_error)?;
            let groups = if wants_groups {
                self.groups_of(&users.iter().map(|u| u.id).collect::<Vec<_>>())
                    .await?
            } else {
                HashMap::new()
            };
            let resources = users.iter().map(|u| render(u, &groups)).collect();
            return Ok(Page { total, resources });
        }

        // Otherwise narrow by an index where the filter allows, then
        // evaluate the whole filter on the candidates.
        let candidates_query = match index_hint(query.filter.as_ref(), schema, "userName") {
            IndexHint::Name(name) => UserQuery::ByUserName(name.to_string()),
            IndexHint::ExternalId(ext) => UserQuery::ByExternalId(ext.to_string()),
            IndexHint::Id(id) => match id.parse::<UserId>() {
                Ok(id) => UserQuery::ByIds(vec![id]),
                // Not an id Roster issues: nothing can match.
                Err(_) => return Ok(Page::empty()),
            },
            IndexHint::Scan => UserQuery::All {
                offset: 0,
                limit: None,
            },
        };
        let needs_groups_to_filter = query
            .filter
            .as_ref()
            .is_some_and(|f| filter_mentions(f, "groups"))
            || query
                .sort_by
                .as_deref()
                .is_some_and(|s| s.to_ascii_lowercase().starts_with("groups"));
        // Groups come with the candidates when the filter needs them, or
        // when an index narrowed the candidates to a few (the SCIM lookup
        // IdPs make before every create); after a full scan they are
        // loaded for the returned page only.
        let indexed = !matches!(candidates_query, UserQuery::All { .. });
        let groups_loaded = needs_groups_to_filter || (indexed && wants_groups);
        let candidates: Vec<(User, Vec<UserGroup>)> = if groups_loaded {
            self.store
                .find_users_with_groups(&candidates_query)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|(u, g)| (u, user_groups(g)))
                .collect()
        } else {
            self.store
                .find_users(&candidates_query)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|u| (u, Vec::new()))
                .collect()
        };
        let mut matched: Vec<Value> = candidates
            .iter()
            .map(|(user, groups)| resource::user_to_json(user, groups, &self.base_url))
            .filter(|doc| query.filter.as_ref().is_none_or(|f| f.matches(doc, schema)))
            .collect();
        if let Some(sort_by) = &query.sort_by {
            sort_documents(&mut matched, schema, sort_by, query.descending);
        }
        let total = matched.len() as u64;
        let (start, end) = page_bounds(query, matched.len());
        let page: Vec<Value> = matched.drain(start..end).collect();
        // Fill in groups for the page if they were not loaded with it.
        let resources = if wants_groups && !groups_loaded {
            let ids: Vec<UserId> = page
                .iter()
                .filter_map(|d| d["id"].as_str()?.parse().ok())
                .collect();
            let groups = self.groups_of(&ids).await?;
            page.into_iter()
                .map(|mut doc| {
                    let id = doc["id"].as_str().and_then(|s| s.parse::<UserId>().ok());
                    if let (Some(id), Some(obj)) = (id, doc.as_object_mut()) {
                        let list = groups.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                        obj.insert(
                            "groups".into(),
                            resource::user_groups_json(list, &self.base_url),
                        );
                    }
                    query.projection.apply(schema, doc)
                })
                .collect()
        } else {
            page.into_iter()
                .map(|doc| query.projection.apply(schema, doc))
                .collect()
        };
        Ok(Page { total, resources })
    }

    // ----- groups ------------------------------------------------------

    /// Resolves client-supplied member values to existing users and groups.
    async fn resolve_members(&self, values: &[MemberValue]) -> Result<Vec<Member>, ScimError> {
        let mut ids = Vec::with_capacity(values.len());
        for v in values {
            let id = Uuid::parse_str(v.value.trim()).map_err(|_| {
                ScimError::invalid_value(format!("member {:?} does not exist", v.value))
            })?;
            ids.push(id);
        }
        let existing = self
            .store
            .existing_members(&ids)
            .await
            .map_err(store_error)?;
        let mut seen = HashSet::new();
        let mut members = Vec::with_capacity(values.len());
        for (v, id) in values.iter().zip(ids) {
            let kind = *existing.get(&id).ok_or_else(|| {
                ScimError::invalid_value(format!("member {:?} does not exist", v.value))
            })?;
            if let Some(claimed) = v.kind {
                if claimed != kind {
                    return Err(ScimError::invalid_value(format!(
                        "member {:?} is a {}, not a {}",
                        v.value,
                        kind.as_str(),
                        claimed.as_str()
                    )));
                }
            }
            if seen.insert(id) {
                members.push(Member {
                    id,
                    kind,
                    display: None,
                });
            }
        }
        Ok(members)
    }

    pub async fn create_group(
        &self,
        attributes: GroupAttributes,
        members: Option<Vec<MemberValue>>,
    ) -> Result<GroupView, ScimError> {
        let members = self.resolve_members(&members.unwrap_or_default()).await?;
        let group = Group {
            id: GroupId::new_random(),
            meta: Meta::new(self.clock.now()),
            attributes,
        };
        self.store
            .insert_group(&group, &members)
            .await
            .map_err(store_error)?;
        let members = self
            .store
            .group_members(group.id)
            .await
            .map_err(store_error)?;
        Ok(GroupView {
            group,
            members: Some(members),
        })
    }

    async fn load_group(&self, id: &str) -> Result<Group, ScimError> {
        let group_id: GroupId = id.parse().map_err(|_| group_not_found(id))?;
        self.store
            .get_group(group_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| group_not_found(id))
    }

    pub async fn get_group(&self, id: &str, with_members: bool) -> Result<GroupView, ScimError> {
        let group = self.load_group(id).await?;
        let members = if with_members {
            Some(
                self.store
                    .group_members(group.id)
                    .await
                    .map_err(store_error)?,
            )
        } else {
            None
        };
        Ok(GroupView { group, members })
    }

    pub async fn replace_group(
        &self,
        id: &str,
        attributes: GroupAttributes,
        members: Option<Vec<MemberValue>>,
        precondition: Precondition,
    ) -> Result<GroupView, ScimError> {
        // PUT replaces the whole resource: no `members` means none (RFC 7644 §3.5.1).
        let members = self.resolve_members(&members.unwrap_or_default()).await?;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load_group(id).await?;
            precondition.check(current.meta.version)?;
            let updated = Group {
                id: current.id,
                meta: current.meta.touched(self.clock.now()),
                attributes: attributes.clone(),
            };
            match self
                .store
                .update_group(
                    &updated,
                    current.meta.version,
                    &MembershipChange::Replace(members.clone()),
                )
                .await
            {
                Ok(()) => return self.get_group(id, true).await,
                Err(StoreError::VersionMismatch { .. }) if precondition.allows_retry() => continue,
                Err(StoreError::NotFound) => return Err(group_not_found(id)),
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(ScimError::new(
            409,
            None,
            "the group is being changed concurrently; retry",
        ))
    }

    /// Applies a PATCH to a group without loading its members unless an
    /// operation needs them; member changes cost O(changed members).
    pub async fn patch_group(
        &self,
        id: &str,
        ops: &[PatchOperation],
        precondition: Precondition,
    ) -> Result<Group, ScimError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load_group(id).await?;
            precondition.check(current.meta.version)?;
            let mut doc = resource::group_to_json(&current, None, &self.base_url);
            let member_ops = patch::apply_to_group(&mut doc, ops)?;
            let (attributes, _) = resource::group_from_json(&doc)?;
            let plan = self.plan_members(current.id, &member_ops).await?;
            let change = match plan {
                MembershipPlan::Unchanged => MembershipChange::Unchanged,
                MembershipPlan::Delta { add, remove } => {
                    let add = self.resolve_members(&convert_members(&add)?).await?;
                    let remove = remove
                        .iter()
                        .filter_map(|v| Uuid::parse_str(v.trim()).ok())
                        .collect();
                    MembershipChange::Delta { add, remove }
                }
                MembershipPlan::Replace(list) => {
                    MembershipChange::Replace(self.resolve_members(&convert_members(&list)?).await?)
                }
            };
            if change == MembershipChange::Unchanged && attributes.identical(&current.attributes) {
                return Ok(current);
            }
            let updated = Group {
                id: current.id,
                meta: current.meta.touched(self.clock.now()),
                attributes,
            };
            match self
                .store
                .update_group(&updated, current.meta.version, &change)
                .await
            {
                Ok(()) => return Ok(updated),
                Err(StoreError::VersionMismatch { .. }) if precondition.allows_retry() => continue,
                Err(StoreError::NotFound) => return Err(group_not_found(id)),
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(ScimError::new(
            409,
            None,
            "the group is being changed concurrently; retry",
        ))
    }

    async fn plan_members(
        &self,
        id: GroupId,
        ops: &[MemberOp],
    ) -> Result<MembershipPlan, ScimError> {
        match patch::plan_membership(ops, None) {
            Ok(plan) => Ok(plan),
            Err(patch::PlanError::NeedsMembers) => {
                let members = self.store.group_members(id).await.map_err(store_error)?;
                let docs = match resource::members_json(&members, &self.base_url) {
                    Value::Array(items) => items,
                    _ => Vec::new(),
                };
                patch::plan_membership(ops, Some(&docs)).map_err(|e| match e {
                    patch::PlanError::Scim(err) => err,
                    patch::PlanError::NeedsMembers => ScimError::internal(),
                })
            }
            Err(patch::PlanError::Scim(err)) => Err(err),
        }
    }

    pub async fn delete_group(
        &self,
        id: &str,
        precondition: Precondition,
    ) -> Result<(), ScimError> {
        let group = self.load_group(id).await?;
        precondition.check(group.meta.version)?;
        let existed = self
            .store
            .delete_group(group.id, self.clock.now())
            .await
            .map_err(store_error)?;
        if existed {
            Ok(())
        } else {
            Err(group_not_found(id))
        }
    }

    pub async fn list_groups(&self, query: &ListQuery) -> Result<Page, ScimError> {
        let schema = group_resource();
        let wants_members = query.projection.wants(schema, "members");
        let filter_needs_members = query
            .filter
            .as_ref()
            .is_some_and(|f| filter_mentions(f, "members"));

        let candidates_query = match index_hint(query.filter.as_ref(), schema, "displayName") {
            IndexHint::Name(name) => GroupQuery::ByDisplayName(name.to_string()),
            IndexHint::ExternalId(ext) => GroupQuery::ByExternalId(ext.to_string()),
            IndexHint::Id(id) => match id.parse::<GroupId>() {
                Ok(id) => GroupQuery::ByIds(vec![id]),
                Err(_) => return Ok(Page::empty()),
            },
            IndexHint::Scan if query.filter.is_none() && query.sort_by.is_none() => {
                GroupQuery::All {
                    offset: query.start_index.saturating_sub(1),
                    limit: Some(query.page_size()),
                }
            }
            IndexHint::Scan => GroupQuery::All {
                offset: 0,
                limit: None,
            },
        };
        let paged_in_db = query.filter.is_none() && query.sort_by.is_none();
        let groups = self
            .store
            .find_groups(&candidates_query)
            .await
            .map_err(store_error)?;
        let members = if filter_needs_members || (paged_in_db && wants_members) {
            self.store
                .members_of_groups(&groups.iter().map(|g| g.id).collect::<Vec<_>>())
                .await
                .map_err(store_error)?
        } else {
            HashMap::new()
        };
        let render = |g: &Group| {
            let m = members.get(&g.id).map(Vec::as_slice);
            let m = if filter_needs_members || (paged_in_db && wants_members) {
                Some(m.unwrap_or(&[]))
            } else {
                None
            };
            resource::group_to_json(g, m, &self.base_url)
        };
        if paged_in_db {
            let total = self.store.count_groups().await.map_err(store_error)?;
            let resources = groups
                .iter()
                .map(|g| query.projection.apply(schema, render(g)))
                .collect();
            return Ok(Page { total, resources });
        }
        let mut matched: Vec<Value> = groups
            .iter()
            .map(render)
            .filter(|doc| query.filter.as_ref().is_none_or(|f| f.matches(doc, schema)))
            .collect();
        if let Some(sort_by) = &query.sort_by {
            sort_documents(&mut matched, schema, sort_by, query.descending);
        }
        let total = matched.len() as u64;
        let (start, end) = page_bounds(query, matched.len());
        let mut page: Vec<Value> = matched.drain(start..end).collect();
        if wants_members && !filter_needs_members {
            let ids: Vec<GroupId> = page
                .iter()
                .filter_map(|d| d["id"].as_str()?.parse().ok())
                .collect();
            let loaded = self
                .store
                .members_of_groups(&ids)
                .await
                .map_err(store_error)?;
            for doc in &mut page {
                let id = doc["id"].as_str().and_then(|s| s.parse::<GroupId>().ok());
                if let Some(id) = id {
                    let list = loaded.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                    if let Some(obj) = doc.as_object_mut() {
                        obj.insert(
                            "members".into(),
                            resource::members_json(list, &self.base_url),
                        );
                    }
                }
            }
        }
        let resources = page
            .into_iter()
            .map(|doc| query.projection.apply(schema, doc))
            .collect();
        Ok(Page { total, resources })
    }

    /// Searches users and groups together (`POST /.search` at the root,
    /// RFC 7644 §3.4.3). A resource type takes part when the filter and
    /// projection make sense for it; results are users then groups unless
    /// sorted, then paged together.
    pub async fn search_all(&self, body: &Value) -> Result<(ListQuery, Page), ScimError> {
        let users = ListQuery::from_search_body(body, user_resource());
        let groups = ListQuery::from_search_body(body, group_resource());
        let (users, groups) = match (users, groups) {
            (Err(err), Err(_)) => return Err(err),
            (u, g) => (u.ok(), g.ok()),
        };
        let Some(reference) = users.clone().or_else(|| groups.clone()) else {
            return Err(ScimError::internal());
        };
        let mut docs = Vec::new();
        if let Some(q) = &users {
            docs.extend(self.list_users(&q.everything()).await?.resources);
        }
        if let Some(q) = &groups {
            docs.extend(self.list_groups(&q.everything()).await?.resources);
        }
        if let Some(sort_by) = &reference.sort_by {
            let schema: &ResourceSchema = if users.is_some() {
                user_resource()
            } else {
                group_resource()
            };
            sort_documents(&mut docs, schema, sort_by, reference.descending);
        }
        let total = docs.len() as u64;
        let (start, end) = page_bounds(&reference, docs.len());
        let resources = docs.drain(start..end).collect();
        Ok((reference, Page { total, resources }))
    }
}

fn user_groups(refs: Vec<roster_store::GroupRef>) -> Vec<UserGroup> {
    refs.into_iter()
        .map(|g| UserGroup {
            id: g.id.to_string(),
            display: g.display_name,
        })
        .collect()
}

fn convert_members(values: &[patch::MemberValue]) -> Result<Vec<MemberValue>, ScimError> {
    values
        .iter()
        .map(|v| {
            let kind = match v.kind.as_deref() {
                None => None,
                Some(k) if k.eq_ignore_ascii_case("user") => Some(MemberKind::User),
                Some(k) if k.eq_ignore_ascii_case("group") => Some(MemberKind::Group),
                Some(other) => {
                    return Err(ScimError::invalid_value(format!(
                        "member type must be \"User\" or \"Group\", not {other:?}"
                    )))
                }
            };
            Ok(MemberValue {
                value: v.value.clone(),
                kind,
            })
        })
        .collect()
}
