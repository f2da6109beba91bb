//! Deciding: who may do what, and why.
//!
//! The rules, in order:
//! 1. A break-glass super-user (from the config file) may do everything.
//! 2. Nobody (no token, a service call), a user the directory does not
//!    know, and a deactivated user get DENY.
//! 3. The user's roles are those assigned to them and to every group they
//!    belong to, directly or through nested groups, that have not expired.
//! 4. Of those roles' rules, only the ones that cover the permission count.
//!    An unconditional deny decides DENY. Without an allow, DENY.
//! 5. Otherwise the answer is ALLOW when nothing is conditional, else the
//!    conditions: "one of the allows holds and none of the denies". With a
//!    resource at hand they are evaluated here; without one they go back to
//!    the caller as a CONDITIONAL decision.
//!
//! A decision must take microseconds (see `examples/engine_bench.rs`), so
//! the work that does not depend on the question is done once:
//! - at [`Policy::new`], each distinct condition tree is interned (one id,
//!   one shared `Arc<Criteria>`, identical subtrees one node), and grants
//!   are laid out per user and per group;
//! - per permission, the rules of every role that cover it (a bounded
//!   cache);
//! - per combination of conditions, the CONDITIONAL answer (a bounded
//!   cache), so users whose roles come to the same conditions share it.
//!
//! Per decision there remain the user's roles (a bitset, no allocation),
//! their covering rules, and with an entity each distinct condition node
//! evaluated at most once. Working memory is kept per thread.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock};

use roster_domain::{GroupId, UserId};
use rustc_hash::FxHashMap;
use serde_json::Value;
use time::OffsetDateTime;

use crate::conditions::{CatalogRule, Criteria};
use crate::model::{
    Action, Assignment, Effect, Permission, PermissionPattern, Role, RoleName, Subject,
};

/// Who is asking, as resolved against the directory.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// No signed-in user: an anonymous request or a service call.
    Nobody,
    /// A user ref the directory does not know.
    Unknown {
        user_ref: String,
    },
    /// A break-glass super-user named in the config file.
    SuperUser {
        user_ref: String,
    },
    User(DirectoryUser),
}

/// A directory user with everything a decision needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryUser {
    pub id: UserId,
    pub user_ref: String,
    pub active: bool,
    /// Every group the user is in, directly (depth 1) or through nesting,
    /// each once at its smallest depth.
    pub groups: Vec<(GroupId, u32)>,
    /// The entity refs that count as "the user" for ownership: the user's
    /// own ref and the refs of the groups they are directly in.
    pub ownership_refs: Vec<String>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    Deny,
    /// Allowed for the resources that satisfy the criteria. Only for
    /// resource permissions asked about without a specific resource.
    /// Shared: users whose roles come to the same conditions get the same
    /// tree.
    Conditional(Arc<Criteria>),
}

/// How a role reached the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Assigned to the user.
    Direct,
    /// Assigned to a group the user is in, at this nesting depth (1 for a
    /// group the user is directly in).
    Group(GroupId, u32),
}

/// One rule that took part in a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit<'p> {
    pub role: &'p Role,
    /// Index of the rule in the role.
    pub rule: usize,
    pub via: Via,
}

impl RuleHit<'_> {
    pub fn effect(&self) -> Effect {
        self.role.rules[self.rule].effect
    }
}

/// Why the decision is what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason<'p> {
    SuperUser,
    NoUser,
    UnknownUser,
    Deactivated,
    /// None of the user's roles has a rule that covers the permission.
    NoRule,
    /// Only conditional allows cover the permission, and it is a basic
    /// permission or the resource satisfies none of them.
    ConditionsNotMet {
        allows: Vec<RuleHit<'p>>,
        denies: Vec<RuleHit<'p>>,
    },
    /// This rule denies, unconditionally or because the resource satisfies
    /// its conditions.
    DeniedBy(RuleHit<'p>),
    /// This rule allows (and no deny applies).
    AllowedBy(RuleHit<'p>),
    /// The answer depends on the resource: these rules' conditions.
    Conditional {
        allows: Vec<RuleHit<'p>>,
        denies: Vec<RuleHit<'p>>,
    },
}

/// A decision with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'p> {
    pub decision: Decision,
    pub reason: Reason<'p>,
}

impl Verdict<'_> {
    fn deny(reason: Reason<'_>) -> Verdict<'_> {
        Verdict {
            decision: Decision::Deny,
            reason,
        }
    }
}

/// Most distinct permission names whose covering rules a policy remembers,
/// and most (resource type, action) variants remembered per name.
const COVERING_CACHE_LIMIT: usize = 4096;
const COVERING_VARIANTS_LIMIT: usize = 16;
/// Most distinct CONDITIONAL answers a policy remembers. A realistic
/// policy (10,000 users, 200 roles, see `examples/engine_bench.rs`) makes
/// about 450, of ~3 KB each; beyond the limit answers are built per
/// decision, as correct and slower.
const ANSWER_CACHE_LIMIT: usize = 1024;
/// Separates the allow conditions from the deny conditions in an answer
/// cache key. Never a condition id.
const KEY_SEPARATOR: usize = usize::MAX;

/// A role with its rules indexed by permission name.
#[derive(Debug)]
struct IndexedRole {
    role: Role,
    /// Rules whose patterns are all exact names, under each name.
    exact: FxHashMap<String, Vec<usize>>,
    /// Rules with a prefix or `*` pattern, checked against every name.
    general: Vec<usize>,
    /// Each rule's condition id (see [`Conditions`]), in rule order.
    conditions: Vec<Option<usize>>,
}

impl IndexedRole {
    fn new(role: Role, interner: &mut Interner) -> Self {
        let mut exact: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        let mut general = Vec::new();
        for (i, rule) in role.rules.iter().enumerate() {
            let all_exact = rule
                .permissions
                .iter()
                .all(|p| matches!(p, PermissionPattern::Exact(_)));
            if all_exact {
                for pattern in &rule.permissions {
                    if let PermissionPattern::Exact(name) = pattern {
                        let rules = exact.entry(name.clone()).or_default();
                        if rules.last() != Some(&i) {
                            rules.push(i);
                        }
                    }
                }
            } else {
                general.push(i);
            }
        }
        let conditions = role
            .rules
            .iter()
            .map(|rule| rule.conditions.as_ref().map(|c| interner.intern(c)))
            .collect();
        Self {
            role,
            exact,
            general,
            conditions,
        }
    }

    /// The rules of this role that cover the permission, in rule order
    /// within each kind.
    fn covering<'a>(&'a self, permission: &'a Permission<'a>) -> impl Iterator<Item = usize> + 'a {
        let exact = self
            .exact
            .get(permission.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        exact
            .iter()
            .chain(self.general.iter())
            .copied()
            .filter(move |&i| self.role.rules[i].covers(permission))
    }
}

/// A node of an interned condition tree: identical subtrees, wherever they
/// appear in the policy, are one node, so a decision about an entity
/// evaluates each at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    AllOf(Box<[usize]>),
    AnyOf(Box<[usize]>),
    Not(usize),
    Rule(CatalogRule),
}

/// The distinct conditions of a policy's rules. A condition id is the
/// position of a distinct tree in order of first appearance (roles in
/// order, rules in order); CONDITIONAL answers list conditions in that
/// order.
#[derive(Debug, Default)]
struct Conditions {
    nodes: Vec<Node>,
    /// For each condition id: its root node, and the tree as answered.
    roots: Vec<(usize, Arc<Criteria>)>,
}

impl Conditions {
    /// Whether `entity` satisfies node `node`, remembering every node
    /// evaluated in `memo` (0 unknown, 1 false, 2 true).
    fn matches(&self, node: usize, entity: &Value, claims: &[String], memo: &mut [u8]) -> bool {
        match memo[node] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        let result = match &self.nodes[node] {
            Node::AllOf(items) => items.iter().all(|&i| self.matches(i, entity, claims, memo)),
            Node::AnyOf(items) => items.iter().any(|&i| self.matches(i, entity, claims, memo)),
            Node::Not(inner) => !self.matches(*inner, entity, claims, memo),
            Node::Rule(rule) => rule.matches(entity, claims),
        };
        memo[node] = 1 + u8::from(result);
        result
    }

    /// One of the conditions `ids` (sorted, distinct), as a tree.
    fn any_of(&self, ids: &[usize]) -> Option<Criteria> {
        match ids {
            [] => None,
            [only] => Some(Criteria::clone(&self.roots[*only].1)),
            many => Some(Criteria::AnyOf(
                many.iter()
                    .map(|&id| Criteria::clone(&self.roots[id].1))
                    .collect(),
            )),
        }
    }
}

/// Builds [`Conditions`] while a policy is built.
#[derive(Default)]
struct Interner {
    conditions: Conditions,
    nodes: FxHashMap<Node, usize>,
    /// Condition id by root node.
    roots: FxHashMap<usize, usize>,
}

impl Interner {
    /// The condition id of `criteria`, the same for every identical tree.
    fn intern(&mut self, criteria: &Criteria) -> usize {
        let node = self.node(criteria);
        let roots = &mut self.conditions.roots;
        *self.roots.entry(node).or_insert_with(|| {
            roots.push((node, Arc::new(criteria.clone())));
            roots.len() - 1
        })
    }

    fn node(&mut self, criteria: &Criteria) -> usize {
        let node = match criteria {
            Criteria::AllOf(items) => Node::AllOf(items.iter().map(|c| self.node(c)).collect()),
            Criteria::AnyOf(items) => Node::AnyOf(items.iter().map(|c| self.node(c)).collect()),
            Criteria::Not(inner) => Node::Not(self.node(inner)),
            Criteria::Rule(rule) => Node::Rule(rule.clone()),
        };
        if let Some(&id) = self.nodes.get(&node) {
            return id;
        }
        let id = self.conditions.nodes.len();
        self.conditions.nodes.push(node.clone());
        self.nodes.insert(node, id);
        id
    }
}

/// What a covering rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allow,
    Deny,
    /// Allows when the resource satisfies this condition.
    AllowIf(usize),
    /// Denies when the resource satisfies this condition.
    DenyIf(usize),
}

/// The rules of every role that cover one permission.
#[derive(Debug)]
struct Covering {
    /// For each role, its range in `rules`.
    spans: Vec<(usize, usize)>,
    /// (rule index in its role, what it does), role after role.
    rules: Vec<(usize, Kind)>,
}

impl Covering {
    fn of(&self, role: usize) -> &[(usize, Kind)] {
        let (start, end) = self.spans[role];
        &self.rules[start..end]
    }
}

/// Covering rules remembered for one (resource type, action) of a name.
#[derive(Debug)]
struct CoveringVariant {
    resource_type: Option<String>,
    action: Option<Action>,
    covering: Arc<Covering>,
}

/// A role assignment as decisions read it: 16 bytes, so that a user's
/// grants take few cache lines.
#[derive(Debug, Clone, Copy)]
struct Grant {
    /// The expiry as seconds and nanoseconds since the Unix epoch;
    /// [`Grant::NEVER`] seconds when it does not expire.
    secs: i64,
    nanos: u32,
    role: u32,
}

impl Grant {
    /// Beyond any `OffsetDateTime`.
    const NEVER: i64 = i64::MAX;

    fn new(role: usize, expires_at: Option<OffsetDateTime>) -> Self {
        let (secs, nanos) = expires_at.map_or((Self::NEVER, 0), instant);
        Self {
            secs,
            nanos,
            role: role as u32,
        }
    }

    fn is_current(&self, (secs, nanos): (i64, u32)) -> bool {
        (secs, nanos) < (self.secs, self.nanos)
    }
}

/// A point in time as (seconds, nanoseconds) since the Unix epoch, which
/// compare as the points in time do.
fn instant(at: OffsetDateTime) -> (i64, u32) {
    (at.unix_timestamp(), at.nanosecond())
}

/// Each subject's grants, as ranges of one list: groups first, so that the
/// grants of groups, which every decision reads, sit together.
#[derive(Debug, Default)]
struct Grants {
    by_user: FxHashMap<UserId, (u32, u32)>,
    by_group: FxHashMap<GroupId, (u32, u32)>,
    /// In assignment order within each subject.
    all: Vec<Grant>,
}

impl Grants {
    /// `role_of` finds the role an assignment names.
    fn new(
        assignments: &[Assignment],
        role_of: impl Fn(&Assignment) -> Result<usize, PolicyError>,
    ) -> Result<Self, PolicyError> {
        // Assignments usually come grouped by subject (a store reads them
        // in order): one map lookup per run of the same subject, not per
        // assignment.
        let mut runs: Vec<(Subject, u32)> = Vec::new();
        let mut roles = Vec::with_capacity(assignments.len());
        for assignment in assignments {
            roles.push(role_of(assignment)?);
            match runs.last_mut() {
                Some((subject, count)) if *subject == assignment.subject => *count += 1,
                _ => runs.push((assignment.subject, 1)),
            }
        }
        // Count per subject, lay the ranges out, then place each run.
        let mut grants = Self::default();
        for &(subject, count) in &runs {
            grants.slot(subject).1 += count;
        }
        let mut next = 0;
        let ranges = grants
            .by_group
            .values_mut()
            .chain(grants.by_user.values_mut());
        for (start, end) in ranges {
            let count = *end;
            (*start, *end) = (next, next);
            next += count;
        }
        grants.all = vec![Grant::new(0, None); assignments.len()];
        let mut from = 0;
        for &(subject, count) in &runs {
            let slot = grants.slot(subject);
            let at = slot.1 as usize;
            slot.1 += count;
            let count = count as usize;
            let placed = assignments[from..from + count]
                .iter()
                .zip(&roles[from..from + count])
                .map(|(assignment, &role)| Grant::new(role, assignment.expires_at));
            for (grant, placed) in grants.all[at..at + count].iter_mut().zip(placed) {
                *grant = placed;
            }
            from += count;
        }
        Ok(grants)
    }

    fn slot(&mut self, subject: Subject) -> &mut (u32, u32) {
        match subject {
            Subject::User(user) => self.by_user.entry(user).or_default(),
            Subject::Group(group) => self.by_group.entry(group).or_default(),
        }
    }

    fn of(&self, range: Option<&(u32, u32)>) -> &[Grant] {
        match range {
            Some(&(start, end)) => &self.all[start as usize..end as usize],
            None => &[],
        }
    }
}

/// A rule that took part in a decision, before it is reported.
#[derive(Debug, Clone, Copy)]
struct Hit {
    role: usize,
    rule: usize,
    via: Via,
    condition: usize,
}

/// Working memory of a decision, kept per thread so that deciding does not
/// allocate unless the reason needs it.
struct Scratch {
    /// Bitset over roles: already reached.
    seen: Vec<u64>,
    /// A user's groups by depth, when they do not come sorted.
    order: Vec<(u32, usize)>,
    /// Conditional allows and denies, in the order the roles were reached.
    allows: Vec<Hit>,
    denies: Vec<Hit>,
    /// Bitsets over condition ids, for a CONDITIONAL answer.
    allow_ids: Vec<u64>,
    deny_ids: Vec<u64>,
    /// The answer cache key, and the ids it is made of.
    key: Vec<usize>,
    /// Condition nodes evaluated against the entity (see
    /// [`Conditions::matches`]).
    memo: Vec<u8>,
}

impl Scratch {
    const fn new() -> Self {
        Self {
            seen: Vec::new(),
            order: Vec::new(),
            allows: Vec::new(),
            denies: Vec::new(),
            allow_ids: Vec::new(),
            deny_ids: Vec::new(),
            key: Vec::new(),
            memo: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

/// Clears `bits` and makes it hold `len` bits.
fn reset_bits(bits: &mut Vec<u64>, len: usize) {
    bits.clear();
    bits.resize(len.div_ceil(64), 0);
}

/// Sets bit `i`; whether it was clear.
fn set_bit(bits: &mut [u64], i: usize) -> bool {
    let (word, bit) = (i / 64, 1u64 << (i % 64));
    let was_clear = bits[word] & bit == 0;
    bits[word] |= bit;
    was_clear
}

/// Appends the set bits of `bits`, in increasing order, to `out`.
fn push_set_bits(bits: &[u64], out: &mut Vec<usize>) {
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            out.push(w * 64 + rest.trailing_zeros() as usize);
            rest &= rest - 1;
        }
    }
}

/// A policy ready for deciding: built-in and custom roles, indexed, and
/// the assignments by subject. Immutable; a change builds a new one.
#[derive(Debug)]
pub struct Policy {
    /// For each permission asked about so far, which rules of each role
    /// cover it: matching patterns once per permission, not per decision.
    /// Sound because a policy never changes; bounded so that made-up
    /// permission names cannot grow it without limit.
    covering_cache: RwLock<FxHashMap<String, Vec<CoveringVariant>>>,
    /// CONDITIONAL answers by what they are made of: whether an
    /// unconditional allow holds, the allow condition ids, the separator,
    /// the deny condition ids. Users holding different roles with the same
    /// conditions share one answer. Bounded like `covering_cache`.
    answer_cache: RwLock<FxHashMap<Box<[usize]>, Arc<Criteria>>>,
    roles: Vec<IndexedRole>,
    conditions: Conditions,
    by_name: FxHashMap<RoleName, usize>,
    grants: Grants,
    assignments: Vec<Assignment>,
}

/// Why roles and assignments cannot form a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("role {0:?} is defined twice")]
    DuplicateRole(String),
    #[error("assignment {id} names role {role:?}, which does not exist")]
    UnknownRole { id: uuid::Uuid, role: String },
}

/// Reads a lock whether or not another thread panicked while holding it:
/// the caches only ever gain complete entries.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Policy {
    /// Builds a policy from every role (built-in ones included) and the
    /// assignments. Assignments must name existing roles.
    pub fn new(roles: Vec<Role>, assignments: Vec<Assignment>) -> Result<Self, PolicyError> {
        let mut by_name = FxHashMap::default();
        by_name.reserve(roles.len());
        for (i, role) in roles.iter().enumerate() {
            if by_name.insert(role.name.clone(), i).is_some() {
                return Err(PolicyError::DuplicateRole(role.name.to_string()));
            }
        }
        let grants = Grants::new(&assignments, |assignment| {
            by_name
                .get(&assignment.role)
                .copied()
                .ok_or_else(|| PolicyError::UnknownRole {
                    id: assignment.id,
                    role: assignment.role.to_string(),
                })
        })?;
        let mut interner = Interner::default();
        let roles = roles
            .into_iter()
            .map(|role| IndexedRole::new(role, &mut interner))
            .collect();
        Ok(Self {
            covering_cache: RwLock::default(),
            answer_cache: RwLock::default(),
            roles,
            conditions: interner.conditions,
            by_name,
            grants,
            assignments,
        })
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter().map(|r| &r.role)
    }

    pub fn role(&self, name: &RoleName) -> Option<&Role> {
        self.by_name.get(name).map(|&i| &self.roles[i].role)
    }

    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }

    /// The roles a user holds now, each once, with how it reached them
    /// (directly before groups, shallower groups before deeper ones).
    pub fn roles_of(&self, user: &DirectoryUser, now: OffsetDateTime) -> Vec<(&Role, Via)> {
        let mut roles = Vec::new();
        let mut seen = Vec::new();
        let mut order = Vec::new();
        let _ = self.visit_roles(user, now, &mut seen, &mut order, |role, via| {
            roles.push((&self.roles[role].role, via));
            ControlFlow::Continue(())
        });
        roles
    }

    /// Calls `visit` with each role the user holds now, once, with how it
    /// reached them: directly first, then through groups by depth (groups
    /// of the same depth in the order given). Stops when `visit` breaks.
    fn visit_roles(
        &self,
        user: &DirectoryUser,
        now: OffsetDateTime,
        seen: &mut Vec<u64>,
        order: &mut Vec<(u32, usize)>,
        mut visit: impl FnMut(usize, Via) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let now = instant(now);
        reset_bits(seen, self.roles.len());
        let mut reach = |grants: &[Grant], via: Via| {
            for grant in grants {
                let role = grant.role as usize;
                if grant.is_current(now) && set_bit(seen, role) {
                    visit(role, via)?;
                }
            }
            ControlFlow::Continue(())
        };
        let of_group = |group| self.grants.of(self.grants.by_group.get(&group));
        reach(
            self.grants.of(self.grants.by_user.get(&user.id)),
            Via::Direct,
        )?;
        if user.groups.is_sorted_by_key(|&(_, depth)| depth) {
            for &(group, depth) in &user.groups {
                reach(of_group(group), Via::Group(group, depth))?;
            }
        } else {
            // A stable sort by depth, without moving the user's groups.
            order.clear();
            order.extend(
                user.groups
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, depth))| (depth, i)),
            );
            order.sort_unstable();
            for &(depth, i) in order.iter() {
                let group = user.groups[i].0;
                reach(of_group(group), Via::Group(group, depth))?;
            }
        }
        ControlFlow::Continue(())
    }

    /// For every role, the rules that cover `permission`.
    fn covering(&self, permission: &Permission<'_>) -> Arc<Covering> {
        let same = |v: &&CoveringVariant| {
            v.resource_type.as_deref() == permission.resource_type && v.action == permission.action
        };
        if let Some(found) = read(&self.covering_cache)
            .get(permission.name)
            .and_then(|variants| variants.iter().find(same))
        {
            return found.covering.clone();
        }
        let mut spans = Vec::with_capacity(self.roles.len());
        let mut rules = Vec::new();
        for indexed in &self.roles {
            let start = rules.len();
            for i in indexed.covering(permission) {
                let kind = match (indexed.role.rules[i].effect, indexed.conditions[i]) {
                    (Effect::Allow, None) => Kind::Allow,
                    (Effect::Deny, None) => Kind::Deny,
                    (Effect::Allow, Some(c)) => Kind::AllowIf(c),
                    (Effect::Deny, Some(c)) => Kind::DenyIf(c),
                };
                rules.push((i, kind));
            }
            spans.push((start, rules.len()));
        }
        let computed = Arc::new(Covering { spans, rules });
        let mut cache = write(&self.covering_cache);
        let names = cache.len();
        let variants = match cache.get_mut(permission.name) {
            Some(variants) => Some(variants),
            None if names < COVERING_CACHE_LIMIT => {
                Some(cache.entry(permission.name.to_owned()).or_default())
            }
            None => None,
        };
        if let Some(variants) = variants {
            if variants.len() < COVERING_VARIANTS_LIMIT && !variants.iter().any(|v| same(&v)) {
                variants.push(CoveringVariant {
                    resource_type: permission.resource_type.map(str::to_owned),
                    action: permission.action,
                    covering: computed.clone(),
                });
            }
        }
        computed
    }

    /// Decides, with the reason. `resource` is the entity the question is
    /// about, when the caller named one and it could be fetched.
    pub fn decide<'p>(
        &'p self,
        principal: &Principal,
        permission: &Permission<'_>,
        resource: Option<&Value>,
        now: OffsetDateTime,
    ) -> Verdict<'p> {
        let user = match principal {
            Principal::SuperUser { .. } => {
                return Verdict {
                    decision: Decision::Allow,
                    reason: Reason::SuperUser,
                }
            }
            Principal::Nobody => return Verdict::deny(Reason::NoUser),
            Principal::Unknown { .. } => return Verdict::deny(Reason::UnknownUser),
            Principal::User(user) if !user.active => return Verdict::deny(Reason::Deactivated),
            Principal::User(user) => user,
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.decide_for(user, permission, resource, now, &mut scratch),
            // Only if deciding ever re-entered itself on this thread.
            Err(_) => self.decide_for(user, permission, resource, now, &mut Scratch::new()),
        })
    }

    fn hit(&self, hit: &Hit) -> RuleHit<'_> {
        RuleHit {
            role: &self.roles[hit.role].role,
            rule: hit.rule,
            via: hit.via,
        }
    }

    fn hits(&self, hits: &[Hit]) -> Vec<RuleHit<'_>> {
        hits.iter().map(|h| self.hit(h)).collect()
    }

    fn decide_for<'p>(
        &'p self,
        user: &DirectoryUser,
        permission: &Permission<'_>,
        resource: Option<&Value>,
        now: OffsetDateTime,
        scratch: &mut Scratch,
    ) -> Verdict<'p> {
        let covering = self.covering(permission);
        let Scratch {
            seen,
            order,
            allows,
            denies,
            allow_ids,
            deny_ids,
            key,
            memo,
        } = scratch;
        allows.clear();
        denies.clear();
        let mut first_allow = None;
        let mut denied = None;
        let _ = self.visit_roles(user, now, seen, order, |role, via| {
            for &(rule, kind) in covering.of(role) {
                let hit = |condition| Hit {
                    role,
                    rule,
                    via,
                    condition,
                };
                match kind {
                    Kind::Deny => {
                        denied = Some(hit(0));
                        return ControlFlow::Break(());
                    }
                    Kind::DenyIf(c) => denies.push(hit(c)),
                    Kind::Allow => {
                        first_allow.get_or_insert(hit(0));
                    }
                    Kind::AllowIf(c) => allows.push(hit(c)),
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(hit) = denied {
            return Verdict::deny(Reason::DeniedBy(self.hit(&hit)));
        }

        let not_met = |allows: &[Hit], denies: &[Hit]| {
            Verdict::deny(Reason::ConditionsNotMet {
                allows: self.hits(allows),
                denies: self.hits(denies),
            })
        };
        if first_allow.is_none() && allows.is_empty() {
            return if denies.is_empty() {
                Verdict::deny(Reason::NoRule)
            } else {
                not_met(allows, denies)
            };
        }
        if let Some(entity) = resource {
            // Each distinct condition (and shared part of one) is evaluated
            // at most once.
            let claims = &user.ownership_refs;
            memo.clear();
            memo.resize(self.conditions.nodes.len(), 0);
            let mut holds = |hit: &&Hit| {
                let node = self.conditions.roots[hit.condition].0;
                self.conditions.matches(node, entity, claims, memo)
            };
            if let Some(hit) = denies.iter().find(&mut holds) {
                return Verdict::deny(Reason::DeniedBy(self.hit(hit)));
            }
            return match first_allow.or_else(|| allows.iter().find(&mut holds).copied()) {
                Some(hit) => Verdict {
                    decision: Decision::Allow,
                    reason: Reason::AllowedBy(self.hit(&hit)),
                },
                None => not_met(allows, denies),
            };
        }

        if let (Some(hit), true) = (&first_allow, denies.is_empty()) {
            return Verdict {
                decision: Decision::Allow,
                reason: Reason::AllowedBy(self.hit(hit)),
            };
        }
        if permission.resource_type.is_none() {
            // Conditional rules only cover resource permissions, so this is
            // unreachable through `covers`; answer safely all the same.
            return not_met(allows, denies);
        }
        // Roles often share conditions (every role with "what you own"):
        // each distinct condition is sent, and evaluated by the catalog,
        // once, in the policy's order.
        let unconditional = first_allow.is_some();
        key.clear();
        key.push(usize::from(unconditional));
        if !unconditional {
            reset_bits(allow_ids, self.conditions.roots.len());
            for hit in allows.iter() {
                set_bit(allow_ids, hit.condition);
            }
            push_set_bits(allow_ids, key);
        }
        key.push(KEY_SEPARATOR);
        reset_bits(deny_ids, self.conditions.roots.len());
        for hit in denies.iter() {
            set_bit(deny_ids, hit.condition);
        }
        push_set_bits(deny_ids, key);
        let criteria = match self.conditional(key) {
            Some(criteria) => criteria,
            // Covered above: an unconditional allow without denies, and no
            // allow at all.
            None => return not_met(allows, denies),
        };
        Verdict {
            decision: Decision::Conditional(criteria),
            reason: Reason::Conditional {
                allows: self.hits(allows),
                denies: self.hits(denies),
            },
        }
    }

    /// The CONDITIONAL answer for an answer cache key: "one of the allows
    /// holds and none of the denies", or "none of the denies" after an
    /// unconditional allow.
    fn conditional(&self, key: &[usize]) -> Option<Arc<Criteria>> {
        let (unconditional, ids) = key.split_first()?;
        let split = ids.iter().position(|&id| id == KEY_SEPARATOR)?;
        let (allow_ids, deny_ids) = (&ids[..split], &ids[split + 1..]);
        if let ([only], [], 0) = (allow_ids, deny_ids, unconditional) {
            // One condition as it stands: the policy's own tree.
            return Some(self.conditions.roots[*only].1.clone());
        }
        if let Some(found) = read(&self.answer_cache).get(key) {
            return Some(found.clone());
        }
        let criteria = match (
            *unconditional != 0,
            self.conditions.any_of(allow_ids),
            self.conditions.any_of(deny_ids),
        ) {
            (true, _, Some(deny)) => Criteria::Not(Box::new(deny)),
            (false, Some(allow), Some(deny)) => {
                Criteria::AllOf(vec![allow, Criteria::Not(Box::new(deny))])
            }
            (false, Some(allow), None) => allow,
            (_, None, _) | (true, Some(_), None) => return None,
        };
        let criteria = Arc::new(criteria);
        let mut cache = write(&self.answer_cache);
        if cache.len() < ANSWER_CACHE_LIMIT {
            cache.entry(key.into()).or_insert_with(|| criteria.clone());
        }
        Some(criteria)
    }
}
