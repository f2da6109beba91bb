//! The access-control service: keeps the current policy in memory, resolves
//! callers against the directory, decides, explains, and changes the policy
//! (recording every change).
//!
//! Freshness: the policy is rebuilt when its revision in the store moves. A
//! change made through this process rebuilds it before the change is
//! acknowledged; a change made by another replica or by the CLI is picked
//! up by a poll of the revision every [`POLL_INTERVAL`]. Who a caller is
//! (their user record and groups) is cached only until the directory
//! changes: the store's [`DirectoryChanges`] generation moves before any
//! directory write is acknowledged, so a deactivation applies to the very
//! next request; on PostgreSQL, another replica's write reaches this one
//! as a notification, milliseconds after its commit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use roster_authz::{
    builtin_roles, known_permission, Action, Assignment, AssignmentDocument, Decision,
    DirectoryUser, Permission, Policy, PolicyDocument, Principal, Reason, Role, RoleDocument,
    RoleName, RuleHit, Subject, Verdict, Via, BUILTIN_ROLE_NAMES, CATALOG_ENTITY,
};
use roster_backstage::client::CatalogClient;
use roster_backstage::reconcile::EntityRef;
use roster_domain::{Clock, GroupId, MemberKind, UserId};
use roster_store::{
    AccessChange, AccessChangeRecord, AccessSnapshot, AccessWrite, DirectoryChanges, Position,
    Store, StoreError, StoredAssignment, StoredRole,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::AccessConfig;

/// How often a replica checks whether the policy changed elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Most callers remembered at once; past it the cache starts over (a flood
/// of made-up names cannot grow it without limit).
const RESOLVED_CACHE_LIMIT: usize = 65_536;

/// Most catalog entities remembered for decisions at once.
const ENTITY_CACHE_LIMIT: usize = 50_000;

/// How many times a change is retried when another replica got there
/// first; each retry waits a little longer, at random, so replicas writing
/// at once take turns instead of colliding again.
const WRITE_ATTEMPTS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The policy in force, built from one revision of the store.
pub struct LoadedPolicy {
    pub revision: u64,
    pub policy: Policy,
    snapshot: Stored,
}

/// The stored policy a [`LoadedPolicy`] was built from. Successive policies
/// share their unchanged roles, so a change copies pointers, not documents.
#[derive(Clone)]
struct Stored {
    revision: u64,
    /// By name.
    roles: Vec<Arc<StoredRole>>,
    assignments: Vec<StoredAssignment>,
}

impl From<AccessSnapshot> for Stored {
    fn from(snapshot: AccessSnapshot) -> Self {
        let mut roles: Vec<Arc<StoredRole>> = snapshot.roles.into_iter().map(Arc::new).collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            revision: snapshot.revision,
            roles,
            assignments: snapshot.assignments,
        }
    }
}

/// A caller resolved against the directory, with names for explanations.
pub struct Resolved {
    pub principal: Principal,
    /// Entity refs of the user's groups, for saying how a role was reached.
    group_refs: HashMap<GroupId, String>,
}

#[derive(Clone)]
pub struct AccessService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    namespace: String,
    name_strategy: roster_backstage::names::NameStrategy,
    super_users: HashSet<String>,
    max_group_depth: u32,
    current: RwLock<Arc<LoadedPolicy>>,
    reload: tokio::sync::Mutex<()>,
    /// Changes made through this process, one at a time: concurrent admin
    /// requests would otherwise race for the same revision and most would
    /// run out of retries (a 409). Other replicas still race; they retry.
    writes: tokio::sync::Mutex<()>,
    catalog: Option<CatalogClient>,
    changes: DirectoryChanges,
    resolved: Mutex<ResolvedCache>,
    /// Catalog entities asked about by ref, with when they were fetched.
    entities: Mutex<HashMap<String, Fetched>>,
    entity_ttl: Duration,
}

/// A catalog entity as fetched at an instant (`None`: the catalog does not
/// know it).
type Fetched = (Instant, Option<Arc<Value>>);

/// Callers as resolved at one directory generation.
#[derive(Default)]
struct ResolvedCache {
    generation: u64,
    by_ref: HashMap<String, Arc<Resolved>>,
}

/// One question: who is asked about is decided by the caller of
/// [`AccessService::decide_many`].
#[derive(Debug, Clone)]
pub struct Question {
    pub name: String,
    pub resource_type: Option<String>,
    pub action: Option<Action>,
    /// Entity refs of specific resources, if the question names any.
    pub resource_refs: Option<Vec<String>>,
}

impl Question {
    pub fn permission(&self) -> Permission<'_> {
        Permission {
            name: &self.name,
            resource_type: self.resource_type.as_deref(),
            action: self.action,
        }
    }

    /// A question about a permission named the way Backstage names it,
    /// with its type and action from Backstage's well-known list.
    pub fn known(name: &str, resource_ref: Option<String>) -> Self {
        let p = known_permission(name);
        Self {
            name: name.to_owned(),
            resource_type: p.resource_type.map(str::to_owned),
            action: p.action,
            resource_refs: resource_ref.map(|r| vec![r]),
        }
    }
}

/// The answer to one question: one decision, or one per named resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    One(Decision),
    PerResource(Vec<Decision>),
}

impl AccessService {
    /// Loads the policy and returns the service. Call [`Self::spawn_poller`]
    /// to follow changes made elsewhere.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: &AccessConfig,
        publish: &roster_backstage::entity::PublishConfig,
        catalog: Option<CatalogClient>,
    ) -> Result<Self, StoreError> {
        let loaded = load(&*store).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                clock,
                namespace: publish.namespace.as_str().to_ascii_lowercase(),
                name_strategy: publish.name_strategy,
                super_users: config
                    .super_users
                    .iter()
                    .filter_map(|r| EntityRef::parse(r, "user", "default"))
                    .map(|r| r.to_string().to_lowercase())
                    .collect(),
                max_group_depth: config.max_group_depth.max(1),
                current: RwLock::new(Arc::new(loaded)),
                reload: tokio::sync::Mutex::new(()),
                writes: tokio::sync::Mutex::new(()),
                catalog,
                changes: store.directory_changes(),
                resolved: Mutex::new(ResolvedCache::default()),
                entities: Mutex::new(HashMap::new()),
                entity_ttl: Duration::from_millis(config.entity_cache_ms),
                store,
            }),
        })
    }

    /// Follows the store's policy revision for as long as the service
    /// lives.
    pub fn spawn_poller(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let service = AccessService { inner };
                if let Err(err) = service.refresh().await {
                    tracing::warn!(error = %err, "checking the policy revision failed");
                }
            }
        });
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        match self.inner.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the policy if the store's revision moved.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let revision = self.inner.store.access_revision().await?;
        if revision != self.current().revision {
            self.reload().await?;
        }
        Ok(())
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.reload.lock().await;
        let loaded = load(&*self.inner.store).await?;
        self.install(loaded);
        Ok(())
    }

    /// Makes `loaded` current unless a newer policy already is.
    fn install(&self, loaded: LoadedPolicy) {
        let mut guard = match self.inner.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if loaded.revision >= guard.revision {
            tracing::debug!(revision = loaded.revision, "policy in force");
            *guard = Arc::new(loaded);
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn user_ref(&self, name: &str) -> String {
        format!("user:{}/{name}", self.inner.namespace)
    }

    fn group_ref(&self, name: &str) -> String {
        format!("group:{}/{name}", self.inner.namespace)
    }

    /// Who `user_ref` is (`user:default/jane.doe`; `jane.doe` alone means
    /// the same). Users outside the published namespace are unknown.
    /// Answered from memory while the directory has not changed since.
    pub async fn resolve(&self, user_ref: &str) -> Result<Arc<Resolved>, StoreError> {
        let generation = self.inner.changes.generation();
        if let Some(generation) = generation {
            if let Some(hit) = self.remembered(generation, user_ref) {
                return Ok(hit);
            }
        }
        let resolved = Arc::new(self.resolve_from_store(user_ref).await?);
        if let Some(generation) = generation {
            self.remember(generation, user_ref, &resolved);
        }
        Ok(resolved)
    }

    fn resolved_cache(&self) -> std::sync::MutexGuard<'_, ResolvedCache> {
        lock(&self.inner.resolved)
    }

    fn remembered(&self, generation: u64, user_ref: &str) -> Option<Arc<Resolved>> {
        let cache = self.resolved_cache();
        if cache.generation != generation {
            return None;
        }
        cache.by_ref.get(user_ref).cloned()
    }

    /// Keeps what was read at `generation`, unless the directory has moved
    /// on since (then the read may already be stale).
    fn remember(&self, generation: u64, user_ref: &str, resolved: &Arc<Resolved>) {
        let mut cache = self.resolved_cache();
        if self.inner.changes.generation() != Some(generation) {
            return;
        }
        if cache.generation != generation || cache.by_ref.len() >= RESOLVED_CACHE_LIMIT {
            cache.by_ref.clear();
            cache.generation = generation;
        }
        cache.by_ref.insert(user_ref.to_owned(), resolved.clone());
    }

    async fn resolve_from_store(&self, user_ref: &str) -> Result<Resolved, StoreError> {
        let unknown = || Resolved {
            principal: Principal::Unknown {
                user_ref: user_ref.to_owned(),
            },
            group_refs: HashMap::new(),
        };
        let Some(parsed) = EntityRef::parse(user_ref, "user", "default") else {
            return Ok(unknown());
        };
        let canonical = parsed.to_string().to_lowercase();
        if self.inner.super_users.contains(&canonical) {
            return Ok(Resolved {
                principal: Principal::SuperUser {
                    user_ref: canonical,
                },
                group_refs: HashMap::new(),
            });
        }
        if parsed.kind() != "user"
            || !parsed
                .namespace()
                .eq_ignore_ascii_case(&self.inner.namespace)
        {
            return Ok(unknown());
        }
        let name = parsed.name().to_lowercase();
        let store = &*self.inner.store;
        let mut subject = store
            .access_subject(&name, self.inner.max_group_depth)
            .await?;
        if subject.is_none() {
            // Names are chosen when users are first published; a user
            // created since may not have one yet.
            crate::catalog_feed::assign_entity_names(store, self.inner.name_strategy).await?;
            subject = store
                .access_subject(&name, self.inner.max_group_depth)
                .await?;
        }
        let Some(subject) = subject else {
            return Ok(unknown());
        };
        let user_ref = self.user_ref(&name);
        let mut ownership_refs = vec![user_ref.clone()];
        let mut group_refs = HashMap::new();
        for (group, depth, entity_name) in &subject.groups {
            if let Some(entity_name) = entity_name {
                let group_ref = self.group_ref(entity_name);
                if *depth == 1 {
                    ownership_refs.push(group_ref.clone());
                }
                group_refs.insert(*group, group_ref);
            }
        }
        Ok(Resolved {
            principal: Principal::User(DirectoryUser {
                id: subject.id,
                user_ref,
                active: subject.active,
                groups: subject.groups.iter().map(|(g, d, _)| (*g, *d)).collect(),
                ownership_refs,
            }),
            group_refs,
        })
    }

    /// Decides every question for one principal. Questions that name
    /// resources get definitive answers: conditions are evaluated against
    /// each entity, fetched from the catalog (a missing entity is a DENY).
    pub async fn decide_many(&self, principal: &Principal, questions: &[Question]) -> Vec<Answer> {
        let loaded = self.current();
        let now = self.now();
        let general: Vec<Decision> = questions
            .iter()
            .map(|q| {
                let permission = q.permission();
                loaded
                    .policy
                    .decide(principal, &permission, None, now)
                    .decision
            })
            .collect();
        // Only resources whose answer depends on them are fetched, each once,
        // all in one request to the catalog.
        let needed: Vec<&str> = questions
            .iter()
            .zip(&general)
            .filter(|(_, decision)| matches!(decision, Decision::Conditional(_)))
            .filter_map(|(q, _)| q.resource_refs.as_deref())
            .flatten()
            .map(String::as_str)
            .collect();
        let entities = self.entities(&needed).await;
        let mut answers = Vec::with_capacity(questions.len());
        for (question, general) in questions.iter().zip(general) {
            let answer = match (&question.resource_refs, general) {
                (None, decision) => Answer::One(decision),
                (Some(refs), Decision::Conditional(_)) => {
                    let permission = question.permission();
                    let decide = |resource_ref: &String| match entities
                        .get(&entity_key(resource_ref))
                        .cloned()
                        .flatten()
                    {
                        Some(entity) => {
                            loaded
                                .policy
                                .decide(principal, &permission, Some(&entity), now)
                                .decision
                        }
                        None => Decision::Deny,
                    };
                    Answer::PerResource(refs.iter().map(decide).collect())
                }
                (Some(refs), decision) => Answer::PerResource(vec![decision; refs.len()]),
            };
            metrics::counter!("roster_access_decisions_total").increment(1);
            answers.push(answer);
        }
        answers
    }

    /// The catalog entities `refs` name, under [`entity_key`]: `None` for
    /// one the catalog does not know, or when the catalog cannot be asked
    /// (logged; a missing entity is a DENY). Recent answers come from
    /// memory, the rest from one `by-refs` request.
    async fn entities(&self, refs: &[&str]) -> HashMap<String, Option<Arc<Value>>> {
        let mut found = HashMap::with_capacity(refs.len());
        if refs.is_empty() {
            return found;
        }
        let Some(catalog) = self.inner.catalog.as_ref() else {
            for r in refs {
                found.insert(entity_key(r), None);
            }
            return found;
        };
        let mut missing = Vec::new();
        {
            let now = Instant::now();
            let cache = lock(&self.inner.entities);
            for r in refs {
                let key = entity_key(r);
                if found.contains_key(&key) {
                    continue;
                }
                match cache.get(&key) {
                    Some((at, entity)) if now.duration_since(*at) < self.inner.entity_ttl => {
                        found.insert(key, entity.clone());
                    }
                    _ => {
                        found.insert(key.clone(), None);
                        missing.push(key);
                    }
                }
            }
        }
        if missing.is_empty() {
            return found;
        }
        match catalog.entities_by_refs(&missing, &[]).await {
            Ok(entities) => {
                let fetched_at = Instant::now();
                let mut cache = lock(&self.inner.entities);
                if cache.len() + missing.len() > ENTITY_CACHE_LIMIT {
                    cache.retain(|_, (at, _)| {
                        fetched_at.duration_since(*at) < self.inner.entity_ttl
                    });
                    if cache.len() + missing.len() > ENTITY_CACHE_LIMIT {
                        cache.clear();
                    }
                }
                for (key, entity) in missing.into_iter().zip(entities) {
                    let entity = entity.map(Arc::new);
                    if !self.inner.entity_ttl.is_zero() {
                        cache.insert(key.clone(), (fetched_at, entity.clone()));
                    }
                    found.insert(key, entity);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, entities = missing.len(), "fetching entities for decisions failed");
            }
        }
        found
    }

    /// The catalog entity `entity_ref` names, or `None` when it does not
    /// exist or cannot be fetched (logged).
    pub async fn fetch_entity(&self, entity_ref: &str) -> Option<Value> {
        let catalog = self.inner.catalog.as_ref()?;
        let parsed = EntityRef::parse(entity_ref, "component", "default")?;
        match catalog
            .entity_by_name(parsed.kind(), parsed.namespace(), parsed.name())
            .await
        {
            Ok(entity) => entity,
            Err(err) => {
                tracing::warn!(error = %err, entity_ref, "fetching an entity for a decision failed");
                None
            }
        }
    }

    pub fn catalog_configured(&self) -> bool {
        self.inner.catalog.is_some()
    }

    /// A decision with everything that went into it, as JSON.
    pub async fn explain(&self, user_ref: &str, question: &Question) -> Result<Value, AccessError> {
        let resolved = self.resolve(user_ref).await?;
        let loaded = self.current();
        let now = self.now();
        let resource_ref = question.resource_refs.as_ref().and_then(|r| r.first());
        let entity = match resource_ref {
            Some(r) => match self.fetch_entity(r).await {
                Some(entity) => Some(entity),
                None => {
                    return Err(AccessError::NotFound(format!(
                        "the catalog has no entity {r}{}",
                        if self.catalog_configured() {
                            ""
                        } else {
                            " (Backstage is not configured: set [backstage] url and token)"
                        }
                    )))
                }
            },
            None => None,
        };
        let permission = question.permission();
        let verdict = loaded
            .policy
            .decide(&resolved.principal, &permission, entity.as_ref(), now);
        let roles: Vec<Value> = match &resolved.principal {
            Principal::User(user) => loaded
                .policy
                .roles_of(user, now)
                .into_iter()
                .map(|(role, via)| json!({"role": role.name.as_str(), "via": self.via_json(&via, &resolved)}))
                .collect(),
            _ => Vec::new(),
        };
        let claims = match &resolved.principal {
            Principal::User(user) => user.ownership_refs.clone(),
            _ => Vec::new(),
        };
        let mut body = json!({
            "user": user_ref,
            "permission": permission_json(&permission),
            "result": decision_name(&verdict.decision),
            "explanation": self.reason_text(&verdict, &resolved),
            "reason": self.reason_json(&verdict.reason, &resolved),
            "roles": roles,
            "policyRevision": loaded.revision,
        });
        if let Some(r) = resource_ref {
            body["resourceRef"] = json!(r);
        }
        if let Decision::Conditional(criteria) = &verdict.decision {
            body["conditions"] = criteria.to_backstage_json(&claims);
        }
        Ok(body)
    }

    fn via_json(&self, via: &Via, resolved: &Resolved) -> Value {
        match via {
            Via::Direct => json!({"kind": "direct"}),
            Via::Group(group, depth) => json!({
                "kind": "group",
                "group": resolved.group_refs.get(group).cloned().unwrap_or_else(|| group.to_string()),
                "depth": depth,
            }),
        }
    }

    fn hit_json(&self, hit: &RuleHit<'_>, resolved: &Resolved) -> Value {
        let document = RoleDocument::from_role(hit.role);
        json!({
            "role": hit.role.name.as_str(),
            "builtin": hit.role.builtin,
            "rule": hit.rule,
            "definition": document.rules.get(hit.rule),
            "via": self.via_json(&hit.via, resolved),
        })
    }

    fn reason_json(&self, reason: &Reason<'_>, resolved: &Resolved) -> Value {
        let hits = |hits: &[RuleHit<'_>]| -> Vec<Value> {
            hits.iter().map(|h| self.hit_json(h, resolved)).collect()
        };
        match reason {
            Reason::SuperUser => json!({"kind": "super-user"}),
            Reason::NoUser => json!({"kind": "no-user"}),
            Reason::UnknownUser => json!({"kind": "unknown-user"}),
            Reason::Deactivated => json!({"kind": "deactivated"}),
            Reason::NoRule => json!({"kind": "no-rule"}),
            Reason::DeniedBy(hit) => {
                json!({"kind": "denied-by", "decidedBy": self.hit_json(hit, resolved)})
            }
            Reason::AllowedBy(hit) => {
                json!({"kind": "allowed-by", "decidedBy": self.hit_json(hit, resolved)})
            }
            Reason::ConditionsNotMet { allows, denies } => json!({
                "kind": "conditions-not-met", "allows": hits(allows), "denies": hits(denies)}),
            Reason::Conditional { allows, denies } => json!({
                "kind": "conditional", "allows": hits(allows), "denies": hits(denies)}),
        }
    }

    fn reason_text(&self, verdict: &Verdict<'_>, resolved: &Resolved) -> String {
        let via = |via: &Via| match via {
            Via::Direct => "assigned directly".to_owned(),
            Via::Group(group, depth) => {
                let name = resolved
                    .group_refs
                    .get(group)
                    .cloned()
                    .unwrap_or_else(|| group.to_string());
                if *depth == 1 {
                    format!("through {name}")
                } else {
                    format!("through {name} ({depth} levels up)")
                }
            }
        };
        let hit =
            |h: &RuleHit<'_>| format!("rule {} of role {} ({})", h.rule, h.role.name, via(&h.via));
        match &verdict.reason {
            Reason::SuperUser => "a break-glass super-user from the config file".into(),
            Reason::NoUser => "no signed-in user: denied by default".into(),
            Reason::UnknownUser => "the directory has no such user: denied by default".into(),
            Reason::Deactivated => "the user is deactivated".into(),
            Reason::NoRule => {
                "no role the user holds has a rule for this permission: denied by default".into()
            }
            Reason::DeniedBy(h) => format!("denied by {}", hit(h)),
            Reason::AllowedBy(h) => format!("allowed by {}", hit(h)),
            Reason::ConditionsNotMet { allows, .. } if allows.is_empty() => {
                "only conditional denies apply: denied by default".into()
            }
            Reason::ConditionsNotMet { allows, .. } => format!(
                "the resource meets the conditions of none of: {}",
                allows.iter().map(hit).collect::<Vec<_>>().join(", ")
            ),
            Reason::Conditional { allows, denies } => {
                let mut text = String::from("depends on the resource: ");
                if allows.is_empty() {
                    text.push_str("allowed unless ");
                } else {
                    text.push_str(&format!(
                        "allowed by {}",
                        allows.iter().map(hit).collect::<Vec<_>>().join(" or ")
                    ));
                    if !denies.is_empty() {
                        text.push_str(", unless ");
                    }
                }
                if !denies.is_empty() {
                    text.push_str(&format!(
                        "denied by {}",
                        denies.iter().map(hit).collect::<Vec<_>>().join(" or ")
                    ));
                }
                text
            }
        }
    }

    /// Every directory user and what they get for `question`: users whose
    /// answer is ALLOW or CONDITIONAL, with the deciding role.
    pub async fn who_can(&self, question: &Question) -> Result<Value, AccessError> {
        let store = &*self.inner.store;
        crate::catalog_feed::assign_entity_names(store, self.inner.name_strategy).await?;
        let resource_ref = question.resource_refs.as_ref().and_then(|r| r.first());
        let entity =
            match resource_ref {
                Some(r) => Some(self.fetch_entity(r).await.ok_or_else(|| {
                    AccessError::NotFound(format!("the catalog has no entity {r}"))
                })?),
                None => None,
            };
        let graph = store.group_graph().await?;
        let names: HashMap<GroupId, String> = graph
            .groups
            .iter()
            .filter_map(|(id, name)| name.clone().map(|n| (*id, n)))
            .collect();
        let mut parents: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
        for (parent, child) in &graph.edges {
            parents.entry(*child).or_default().push(*parent);
        }
        let loaded = self.current();
        let now = self.now();
        let permission = question.permission();
        let mut allowed = Vec::new();
        let mut after = Position::START;
        loop {
            let page = store.catalog_users(after, 1000).await?;
            for entry in page.items {
                let Some(name) = entry.entity_name else {
                    continue;
                };
                let groups = roster_authz::group_closure(
                    &entry.groups,
                    &parents,
                    self.inner.max_group_depth,
                );
                let mut ownership_refs = vec![self.user_ref(&name)];
                ownership_refs.extend(
                    entry
                        .groups
                        .iter()
                        .filter_map(|g| names.get(g))
                        .map(|n| self.group_ref(n)),
                );
                let user = DirectoryUser {
                    id: entry.user.id,
                    user_ref: self.user_ref(&name),
                    active: entry.user.attributes.is_active(),
                    groups,
                    ownership_refs,
                };
                let principal = Principal::User(user);
                let verdict = loaded
                    .policy
                    .decide(&principal, &permission, entity.as_ref(), now);
                if matches!(verdict.decision, Decision::Deny) {
                    continue;
                }
                let role = match &verdict.reason {
                    Reason::AllowedBy(hit) => Some(hit.role.name.to_string()),
                    Reason::Conditional { allows, .. } => {
                        allows.first().map(|h| h.role.name.to_string())
                    }
                    _ => None,
                };
                allowed.push(json!({
                    "user": self.user_ref(&name),
                    "userName": entry.user.user_name().as_str(),
                    "result": decision_name(&verdict.decision),
                    "role": role,
                }));
            }
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let mut body = json!({
            "permission": permission_json(&permission),
            "users": allowed,
            "policyRevision": loaded.revision,
        });
        if let Some(r) = resource_ref {
            body["resourceRef"] = json!(r);
        }
        Ok(body)
    }

    // ----- Changing the policy -------------------------------------------

    /// Runs a change against the current revision, retrying when another
    /// writer moved it, then makes the new policy current before returning.
    async fn change<F>(&self, mut plan: F) -> Result<u64, AccessError>
    where
        F: FnMut(&LoadedPolicy) -> Result<(Vec<AccessWrite>, Vec<AccessChange>), AccessError>,
    {
        let _one_writer = self.inner.writes.lock().await;
        for attempt in 0..WRITE_ATTEMPTS {
            let started = Instant::now();
            let loaded = self.current();
            let (writes, changes) = plan(&loaded)?;
            let planned = started.elapsed();
            let now = self.now();
            match self
                .inner
                .store
                .write_access(loaded.revision, writes.clone(), changes, now)
                .await
            {
                Ok(revision) => {
                    let written = started.elapsed();
                    // The write was based on `loaded`, so applying it here
                    // gives exactly what the store now holds.
                    let next = build(
                        applied(&loaded.snapshot, &writes, revision, now),
                        Some(&loaded),
                    )?;
                    self.install(next);
                    tracing::debug!(
                        revision,
                        ?planned,
                        ?written,
                        in_force = ?started.elapsed(),
                        "policy change in force"
                    );
                    return Ok(revision);
                }
                Err(StoreError::VersionMismatch { .. }) => {
                    self.reload().await?;
                    let most = 2u64 << attempt.min(6);
                    let wait = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=most);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(AccessError::Conflict(
            "the policy kept changing under this request; try again".into(),
        ))
    }

    /// Creates or replaces a custom role.
    pub async fn put_role(
        &self,
        actor: &str,
        document: RoleDocument,
    ) -> Result<Value, AccessError> {
        if BUILTIN_ROLE_NAMES.contains(&document.name.as_str()) {
            return Err(AccessError::Invalid(format!(
                "{:?} is a built-in role and cannot be changed",
                document.name
            )));
        }
        let role = document
            .validate("role")
            .map_err(|e| AccessError::Invalid(e.to_string()))?;
        let canonical = RoleDocument::from_role(&role);
        let after =
            serde_json::to_value(&canonical).map_err(|e| AccessError::Invalid(e.to_string()))?;
        self.change(|loaded| {
            let before = loaded
                .snapshot
                .roles
                .iter()
                .find(|r| r.name == canonical.name)
                .map(|r| r.document.clone());
            Ok((
                vec![AccessWrite::PutRole {
                    name: canonical.name.clone(),
                    document: after.clone(),
                }],
                vec![AccessChange {
                    actor: actor.to_owned(),
                    action: if before.is_some() {
                        "role.update"
                    } else {
                        "role.create"
                    }
                    .into(),
                    target: format!("role:{}", canonical.name),
                    before,
                    after: Some(after.clone()),
                }],
            ))
        })
        .await?;
        Ok(after)
    }

    /// Deletes a custom role; refused while assignments use it.
    pub async fn delete_role(&self, actor: &str, name: &str) -> Result<(), AccessError> {
        if BUILTIN_ROLE_NAMES.contains(&name) {
            return Err(AccessError::Invalid(format!(
                "{name:?} is a built-in role and cannot be deleted"
            )));
        }
        self.change(|loaded| {
            let Some(role) = loaded.snapshot.roles.iter().find(|r| r.name == name) else {
                return Err(AccessError::NotFound(format!("no custom role {name:?}")));
            };
            let users = loaded
                .snapshot
                .assignments
                .iter()
                .filter(|a| a.role == name)
                .count();
            if users > 0 {
                return Err(AccessError::Conflict(format!(
                    "role {name:?} has {users} assignment(s); remove them first"
                )));
            }
            Ok((
                vec![AccessWrite::DeleteRole {
                    name: name.to_owned(),
                }],
                vec![AccessChange {
                    actor: actor.to_owned(),
                    action: "role.delete".into(),
                    target: format!("role:{name}"),
                    before: Some(role.document.clone()),
                    after: None,
                }],
            ))
        })
        .await?;
        Ok(())
    }

    /// The subject an entity ref names: a user or group of the directory.
    pub async fn subject_of(&self, subject_ref: &str) -> Result<Subject, AccessError> {
        let invalid = || {
            AccessError::Invalid(format!(
                "subject {subject_ref:?} is not a user or group entity ref (user:{ns}/jane.doe, group:{ns}/payments)",
                ns = self.inner.namespace
            ))
        };
        let parsed = EntityRef::parse(subject_ref, "user", "default").ok_or_else(invalid)?;
        if !parsed
            .namespace()
            .eq_ignore_ascii_case(&self.inner.namespace)
        {
            return Err(AccessError::Invalid(format!(
                "subject {subject_ref:?} is outside namespace {:?}, where Roster publishes its users and groups",
                self.inner.namespace
            )));
        }
        let kind = match parsed.kind() {
            "user" => MemberKind::User,
            "group" => MemberKind::Group,
            _ => return Err(invalid()),
        };
        let store = &*self.inner.store;
        let name = parsed.name().to_lowercase();
        let mut id = store.id_by_entity_name(kind, &name).await?;
        if id.is_none() {
            crate::catalog_feed::assign_entity_names(store, self.inner.name_strategy).await?;
            id = store.id_by_entity_name(kind, &name).await?;
        }
        let id = id.ok_or_else(|| {
            AccessError::Invalid(format!(
                "the directory has no {} {subject_ref:?}",
                parsed.kind()
            ))
        })?;
        Ok(match kind {
            MemberKind::User => Subject::User(UserId::from_uuid(id)),
            MemberKind::Group => Subject::Group(GroupId::from_uuid(id)),
        })
    }

    /// The entity ref of a subject, or its id when it has no name (e.g. it
    /// was deleted).
    pub async fn subject_ref(&self, subject: &Subject) -> Result<String, StoreError> {
        let (kind, id, prefix) = match subject {
            Subject::User(id) => (MemberKind::User, id.as_uuid(), "user"),
            Subject::Group(id) => (MemberKind::Group, id.as_uuid(), "group"),
        };
        Ok(match self.inner.store.entity_name(kind, id).await? {
            Some(name) => format!("{prefix}:{}/{name}", self.inner.namespace),
            None => format!("{prefix}:{id}"),
        })
    }

    pub async fn assignment_json(&self, a: &StoredAssignment) -> Result<Value, StoreError> {
        Ok(json!({
            "id": a.id,
            "role": a.role,
            "subject": self.subject_ref(&a.subject).await?,
            "expiresAt": a.expires_at.map(rfc3339),
            "createdAt": rfc3339(a.created_at),
            "createdBy": a.created_by,
        }))
    }

    /// Assigns a role; assigning it again to the same subject replaces the
    /// expiry.
    pub async fn add_assignment(
        &self,
        actor: &str,
        document: &AssignmentDocument,
    ) -> Result<Value, AccessError> {
        let role = RoleName::parse(&document.role).ok_or_else(|| {
            AccessError::Invalid(format!("{:?} is not a role name", document.role))
        })?;
        if let Some(at) = document.expires_at {
            if at <= self.now() {
                return Err(AccessError::Invalid(format!(
                    "expiresAt {} is in the past",
                    rfc3339(at)
                )));
            }
        }
        let subject = self.subject_of(&document.subject).await?;
        let subject_ref = self.subject_ref(&subject).await?;
        let mut stored = None;
        self.change(|loaded| {
            if loaded.policy.role(&role).is_none() {
                return Err(AccessError::Invalid(format!("no role {:?}", role.as_str())));
            }
            let existing = loaded
                .snapshot
                .assignments
                .iter()
                .find(|a| a.role == role.as_str() && a.subject == subject);
            let assignment = StoredAssignment {
                id: existing.map_or_else(Uuid::new_v4, |a| a.id),
                role: role.to_string(),
                subject,
                expires_at: document.expires_at,
                created_at: existing.map_or_else(|| self.now(), |a| a.created_at),
                created_by: existing.map_or_else(|| actor.to_owned(), |a| a.created_by.clone()),
            };
            let describe = |a: &StoredAssignment| {
                json!({"role": a.role, "subject": subject_ref, "expiresAt": a.expires_at.map(rfc3339)})
            };
            let change = AccessChange {
                actor: actor.to_owned(),
                action: if existing.is_some() { "assignment.update" } else { "assignment.create" }.into(),
                target: format!("assignment:{}", assignment.id),
                before: existing.map(describe),
                after: Some(describe(&assignment)),
            };
            stored = Some(assignment.clone());
            Ok((vec![AccessWrite::AddAssignment(assignment)], vec![change]))
        })
        .await?;
        match stored {
            Some(a) => Ok(self.assignment_json(&a).await?),
            None => Err(AccessError::Conflict(
                "the assignment was not stored".into(),
            )),
        }
    }

    pub async fn delete_assignment(&self, actor: &str, id: Uuid) -> Result<(), AccessError> {
        let found = self
            .current()
            .snapshot
            .assignments
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| AccessError::NotFound(format!("no assignment {id}")))?;
        let before = self.assignment_json(&found).await?;
        self.change(|loaded| {
            if !loaded.snapshot.assignments.iter().any(|a| a.id == id) {
                return Err(AccessError::NotFound(format!("no assignment {id}")));
            }
            Ok((
                vec![AccessWrite::DeleteAssignment { id }],
                vec![AccessChange {
                    actor: actor.to_owned(),
                    action: "assignment.delete".into(),
                    target: format!("assignment:{id}"),
                    before: Some(before.clone()),
                    after: None,
                }],
            ))
        })
        .await?;
        Ok(())
    }

    pub async fn list_assignments(&self) -> Result<Vec<Value>, StoreError> {
        let loaded = self.current();
        let mut out = Vec::with_capacity(loaded.snapshot.assignments.len());
        for a in &loaded.snapshot.assignments {
            out.push(self.assignment_json(a).await?);
        }
        Ok(out)
    }

    /// Every role, built-in first, as documents.
    pub fn list_roles(&self) -> Vec<Value> {
        self.current()
            .policy
            .roles()
            .map(|role| {
                let mut doc =
                    serde_json::to_value(RoleDocument::from_role(role)).unwrap_or_default();
                doc["builtin"] = json!(role.builtin);
                doc
            })
            .collect()
    }

    pub fn role(&self, name: &str) -> Option<Value> {
        let name = RoleName::parse(name)?;
        let loaded = self.current();
        let role = loaded.policy.role(&name)?;
        let mut doc = serde_json::to_value(RoleDocument::from_role(role)).ok()?;
        doc["builtin"] = json!(role.builtin);
        Some(doc)
    }

    /// The custom roles and every assignment, as a policy document.
    pub async fn export(&self) -> Result<PolicyDocument, StoreError> {
        let loaded = self.current();
        let roles = loaded
            .policy
            .roles()
            .filter(|r| !r.builtin)
            .map(RoleDocument::from_role)
            .collect();
        let mut assignments = Vec::new();
        for a in &loaded.snapshot.assignments {
            let subject = self.subject_ref(&a.subject).await?;
            // A subject without an entity name was deleted from the
            // directory: its assignment can never apply again, and a
            // file naming it could not be imported.
            if !subject.contains('/') {
                tracing::info!(assignment = %a.id, %subject, "export leaves out an assignment of a deleted subject");
                continue;
            }
            assignments.push(AssignmentDocument {
                role: a.role.clone(),
                subject,
                expires_at: a.expires_at,
            });
        }
        Ok(PolicyDocument { roles, assignments })
    }

    /// Replaces the custom roles and all assignments with a document's,
    /// all or nothing. Every problem in the document is reported at once.
    pub async fn import(&self, actor: &str, document: &PolicyDocument) -> Result<u64, AccessError> {
        let roles = document
            .validate_roles(&BUILTIN_ROLE_NAMES)
            .map_err(|e| AccessError::Invalid(e.to_string()))?;
        let role_names: HashSet<&str> = roles
            .iter()
            .map(|r| r.name.as_str())
            .chain(BUILTIN_ROLE_NAMES)
            .collect();
        let mut problems = Vec::new();
        let mut assignments = Vec::new();
        let mut seen = HashSet::new();
        for (i, a) in document.assignments.iter().enumerate() {
            if !role_names.contains(a.role.as_str()) {
                problems.push(format!("assignments[{i}].role: no role {:?}", a.role));
                continue;
            }
            match self.subject_of(&a.subject).await {
                Ok(subject) => {
                    if !seen.insert((a.role.clone(), subject)) {
                        problems.push(format!(
                            "assignments[{i}]: {:?} is assigned to {} twice",
                            a.role, a.subject
                        ));
                        continue;
                    }
                    assignments.push(StoredAssignment {
                        id: Uuid::new_v4(),
                        role: a.role.clone(),
                        subject,
                        expires_at: a.expires_at,
                        created_at: self.now(),
                        created_by: actor.to_owned(),
                    });
                }
                Err(AccessError::Invalid(message)) => {
                    problems.push(format!("assignments[{i}].subject: {message}"))
                }
                Err(other) => return Err(other),
            }
        }
        if !problems.is_empty() {
            return Err(AccessError::Invalid(format!(
                "invalid policy: {}",
                problems.join("; ")
            )));
        }
        let role_docs: Vec<(String, Value)> = roles
            .iter()
            .map(|r| {
                (
                    r.name.to_string(),
                    serde_json::to_value(RoleDocument::from_role(r)).unwrap_or_default(),
                )
            })
            .collect();
        let before = serde_json::to_value(self.export().await?).ok();
        let after = serde_json::to_value(document).ok();
        self.change(|_| {
            Ok((
                vec![AccessWrite::ReplaceAll {
                    roles: role_docs.clone(),
                    assignments: assignments.clone(),
                }],
                vec![AccessChange {
                    actor: actor.to_owned(),
                    action: "policy.import".into(),
                    target: "policy".into(),
                    before: before.clone(),
                    after: after.clone(),
                }],
            ))
        })
        .await
    }

    pub async fn changes(&self, limit: u32) -> Result<Vec<AccessChangeRecord>, StoreError> {
        self.inner.store.access_changes(limit).await
    }
}

/// Builds the policy from the store: built-in roles, then the custom ones.
/// A stored role or assignment that no longer validates is skipped and
/// logged, so one bad row cannot take decisions down.
async fn load(store: &dyn Store) -> Result<LoadedPolicy, StoreError> {
    build(store.access_snapshot().await?.into(), None)
}

/// The snapshot after `writes`, as the store applied them at `revision`:
/// lets the replica that made a change use it without reading the whole
/// policy back.
fn applied(snapshot: &Stored, writes: &[AccessWrite], revision: u64, at: OffsetDateTime) -> Stored {
    let mut next = snapshot.clone();
    next.revision = revision;
    let put_role = |roles: &mut Vec<Arc<StoredRole>>, name: &str, document: &Value| {
        let role = Arc::new(StoredRole {
            name: name.to_owned(),
            document: document.clone(),
            updated_at: at,
        });
        match roles.binary_search_by(|r| r.name.as_str().cmp(name)) {
            Ok(i) => roles[i] = role,
            Err(i) => roles.insert(i, role),
        }
    };
    let add = |assignments: &mut Vec<StoredAssignment>, new: &StoredAssignment| {
        match assignments
            .iter_mut()
            .find(|a| a.role == new.role && a.subject == new.subject)
        {
            // As the store does: the same role for the same subject again
            // only moves the expiry.
            Some(existing) => existing.expires_at = new.expires_at,
            None => assignments.push(new.clone()),
        }
    };
    for write in writes {
        match write {
            AccessWrite::PutRole { name, document } => put_role(&mut next.roles, name, document),
            AccessWrite::DeleteRole { name } => next.roles.retain(|r| r.name != *name),
            AccessWrite::AddAssignment(a) => add(&mut next.assignments, a),
            AccessWrite::DeleteAssignment { id } => next.assignments.retain(|a| a.id != *id),
            AccessWrite::ReplaceAll { roles, assignments } => {
                next.roles.clear();
                next.assignments.clear();
                for (name, document) in roles {
                    put_role(&mut next.roles, name, document);
                }
                for a in assignments {
                    add(&mut next.assignments, a);
                }
            }
        }
    }
    next
}

/// Builds the policy from a snapshot: built-in roles, then the custom ones.
/// A role whose document is the same as in `previous` is not parsed and
/// validated again: a change to one role of hundreds costs one role's work.
fn build(snapshot: Stored, previous: Option<&LoadedPolicy>) -> Result<LoadedPolicy, StoreError> {
    let before: HashMap<&str, &Arc<StoredRole>> = previous
        .map(|p| &p.snapshot.roles)
        .into_iter()
        .flatten()
        .map(|r| (r.name.as_str(), r))
        .collect();
    let unchanged = |stored: &Arc<StoredRole>| {
        let previous = previous?;
        let was = before.get(stored.name.as_str())?;
        // The same shared role (a local change kept it), or a reload that
        // read the same document back.
        if !Arc::ptr_eq(was, stored) && was.document != stored.document {
            return None;
        }
        previous
            .policy
            .role(&RoleName::parse(&stored.name)?)
            .cloned()
    };
    let mut roles: Vec<Role> = builtin_roles().to_vec();
    for stored in &snapshot.roles {
        if let Some(role) = unchanged(stored) {
            roles.push(role);
            continue;
        }
        let parsed = serde_json::from_value::<RoleDocument>(stored.document.clone())
            .map_err(|e| e.to_string())
            .and_then(|doc| doc.validate(&stored.name).map_err(|e| e.to_string()));
        match parsed {
            Ok(role) => roles.push(role),
            Err(err) => {
                tracing::error!(role = %stored.name, error = %err, "skipping a stored role that does not validate")
            }
        }
    }
    let names: HashMap<&str, &RoleName> =
        roles.iter().map(|r| (r.name.as_str(), &r.name)).collect();
    let assignments = snapshot
        .assignments
        .iter()
        .filter_map(|a| {
            let role = names.get(a.role.as_str()).map(|&name| name.clone());
            if role.is_none() {
                tracing::error!(assignment = %a.id, role = %a.role, "skipping an assignment of an unknown role");
            }
            Some(Assignment {
                id: a.id,
                role: role?,
                subject: a.subject,
                expires_at: a.expires_at,
            })
        })
        .collect();
    let policy = Policy::new(roles, assignments)
        .map_err(|e| StoreError::Backend(format!("the stored policy is inconsistent: {e}")))?;
    Ok(LoadedPolicy {
        revision: snapshot.revision,
        policy,
        snapshot,
    })
}

/// How an entity ref is known to the entity cache: `kind:namespace/name`,
/// lowercase, with Backstage's defaults filled in (a bare name is a
/// component in `default`). Unparseable refs stay as they are: the catalog
/// knows no such entity.
fn entity_key(entity_ref: &str) -> String {
    EntityRef::parse(entity_ref, "component", "default")
        .map_or_else(|| entity_ref.to_owned(), |r| r.to_string().to_lowercase())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

pub fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "ALLOW",
        Decision::Deny => "DENY",
        Decision::Conditional(_) => "CONDITIONAL",
    }
}

pub fn permission_json(permission: &Permission<'_>) -> Value {
    let mut value = json!({
        "type": if permission.resource_type.is_some() { "resource" } else { "basic" },
        "name": permission.name,
        "attributes": {},
    });
    if let Some(action) = permission.action {
        value["attributes"]["action"] = json!(action.as_str());
    }
    if let Some(t) = permission.resource_type {
        value["resourceType"] = json!(t);
    }
    value
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The criteria Backstage receives for a CONDITIONAL answer.
/// One answer as Backstage's permission protocol writes it (and the native
/// API too), serialized straight to text: a CONDITIONAL answer's criteria
/// can be large, and building a `Value` tree first cost more than deciding.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerJson<'a> {
    pub id: &'a str,
    pub result: ResultJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_id: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<roster_authz::BackstageCriteria<'a>>,
}

/// `"ALLOW"`, or one result per resource of a batched item.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum ResultJson {
    One(&'static str),
    PerResource(Vec<&'static str>),
}

impl<'a> AnswerJson<'a> {
    pub fn plain(id: &'a str, result: &'static str) -> Self {
        Self::new(id, ResultJson::One(result))
    }

    pub fn new(id: &'a str, result: ResultJson) -> Self {
        Self {
            id,
            result,
            plugin_id: None,
            resource_type: None,
            conditions: None,
        }
    }

    /// A CONDITIONAL answer: the catalog applies `criteria` itself, with
    /// `IS_ENTITY_OWNER` claiming the user and the groups they are directly
    /// in.
    pub fn conditional(
        id: &'a str,
        criteria: &'a roster_authz::Criteria,
        principal: &'a Principal,
    ) -> Self {
        let claims = match principal {
            Principal::User(user) => user.ownership_refs.as_slice(),
            _ => &[],
        };
        Self {
            id,
            result: ResultJson::One("CONDITIONAL"),
            plugin_id: Some(roster_authz::CATALOG_PLUGIN),
            resource_type: Some(CATALOG_ENTITY),
            conditions: Some(criteria.backstage_json(claims)),
        }
    }
}

/// The body of an authorize answer.
#[derive(Debug, serde::Serialize)]
pub struct AnswersJson<'a> {
    pub items: Vec<AnswerJson<'a>>,
}
