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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use roster_domain::{GroupId, UserId};
use serde_json::Value;
use time::OffsetDateTime;

use crate::conditions::Criteria;
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
    Conditional(Criteria),
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

/// Most distinct permissions whose covering rules a policy remembers.
const COVERING_CACHE_LIMIT: usize = 4096;

/// A role with its rules indexed by permission name.
#[derive(Debug)]
struct IndexedRole {
    role: Role,
    /// Rules whose patterns are all exact names, under each name.
    exact: HashMap<String, Vec<usize>>,
    /// Rules with a prefix or `*` pattern, checked against every name.
    general: Vec<usize>,
}

impl IndexedRole {
    fn new(role: Role) -> Self {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
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
        Self {
            role,
            exact,
            general,
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

/// A policy ready for deciding: built-in and custom roles, indexed, and
/// the assignments by subject. Immutable; a change builds a new one.
#[derive(Debug)]
pub struct Policy {
    /// For each permission asked about so far, which rules of each role
    /// cover it: matching patterns once per permission, not per decision.
    /// Sound because a policy never changes; bounded so that made-up
    /// permission names cannot grow it without limit.
    covering_cache: RwLock<HashMap<String, Arc<Vec<Vec<usize>>>>>,
    roles: Vec<IndexedRole>,
    by_name: HashMap<RoleName, usize>,
    by_subject: HashMap<Subject, Vec<(usize, Option<OffsetDateTime>)>>,
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

impl Policy {
    /// Builds a policy from every role (built-in ones included) and the
    /// assignments. Assignments must name existing roles.
    pub fn new(roles: Vec<Role>, assignments: Vec<Assignment>) -> Result<Self, PolicyError> {
        let mut by_name = HashMap::new();
        for (i, role) in roles.iter().enumerate() {
            if by_name.insert(role.name.clone(), i).is_some() {
                return Err(PolicyError::DuplicateRole(role.name.to_string()));
            }
        }
        let mut by_subject: HashMap<Subject, Vec<(usize, Option<OffsetDateTime>)>> = HashMap::new();
        for assignment in &assignments {
            let Some(&role) = by_name.get(&assignment.role) else {
                return Err(PolicyError::UnknownRole {
                    id: assignment.id,
                    role: assignment.role.to_string(),
                });
            };
            by_subject
                .entry(assignment.subject)
                .or_default()
                .push((role, assignment.expires_at));
        }
        Ok(Self {
            covering_cache: RwLock::new(HashMap::new()),
            roles: roles.into_iter().map(IndexedRole::new).collect(),
            by_name,
            by_subject,
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
        self.effective_roles(user, now)
            .into_iter()
            .map(|(i, via)| (&self.roles[i].role, via))
            .collect()
    }

    fn effective_roles(&self, user: &DirectoryUser, now: OffsetDateTime) -> Vec<(usize, Via)> {
        let mut groups: Vec<&(GroupId, u32)> = user.groups.iter().collect();
        groups.sort_by_key(|(_, depth)| *depth);
        let subjects = std::iter::once((Subject::User(user.id), Via::Direct)).chain(
            groups
                .into_iter()
                .map(|&(g, depth)| (Subject::Group(g), Via::Group(g, depth))),
        );
        let mut seen = vec![false; self.roles.len()];
        let mut roles = Vec::new();
        for (subject, via) in subjects {
            for &(role, expires_at) in self.by_subject.get(&subject).into_iter().flatten() {
                let current = expires_at.is_none_or(|at| now < at);
                if current && !seen[role] {
                    seen[role] = true;
                    roles.push((role, via));
                }
            }
        }
        roles
    }

    /// For every role, the rules that cover `permission`.
    fn covering(&self, permission: &Permission<'_>) -> Arc<Vec<Vec<usize>>> {
        let key = format!(
            "{}\u{0}{}\u{0}{}",
            permission.name,
            permission.resource_type.unwrap_or(""),
            permission.action.map_or("", Action::as_str)
        );
        let cached = match self.covering_cache.read() {
            Ok(guard) => guard.get(&key).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&key).cloned(),
        };
        if let Some(found) = cached {
            return found;
        }
        let computed: Arc<Vec<Vec<usize>>> = Arc::new(
            self.roles
                .iter()
                .map(|role| role.covering(permission).collect())
                .collect(),
        );
        let mut writable = match self.covering_cache.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if writable.len() < COVERING_CACHE_LIMIT {
            writable.insert(key, computed.clone());
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

        let mut first_allow = None;
        // Conditional rules, with their conditions alongside.
        let mut allows = Vec::new();
        let mut allow_conditions: Vec<&'p Criteria> = Vec::new();
        let mut denies = Vec::new();
        let mut deny_conditions: Vec<&'p Criteria> = Vec::new();
        let covering = self.covering(permission);
        for (role_index, via) in self.effective_roles(user, now) {
            let indexed = &self.roles[role_index];
            for &rule_index in &covering[role_index] {
                let hit = RuleHit {
                    role: &indexed.role,
                    rule: rule_index,
                    via,
                };
                let rule = &indexed.role.rules[rule_index];
                match (rule.effect, &rule.conditions) {
                    (Effect::Deny, None) => return Verdict::deny(Reason::DeniedBy(hit)),
                    (Effect::Deny, Some(conditions)) => {
                        denies.push(hit);
                        deny_conditions.push(conditions);
                    }
                    (Effect::Allow, None) => {
                        first_allow.get_or_insert(hit);
                    }
                    (Effect::Allow, Some(conditions)) => {
                        allows.push(hit);
                        allow_conditions.push(conditions);
                    }
                }
            }
        }

        if first_allow.is_none() && allows.is_empty() {
            return Verdict::deny(if denies.is_empty() {
                Reason::NoRule
            } else {
                Reason::ConditionsNotMet { allows, denies }
            });
        }
        if let Some(entity) = resource {
            let claims = &user.ownership_refs;
            if let Some(i) = deny_conditions
                .iter()
                .position(|c| c.matches(entity, claims))
            {
                return Verdict::deny(Reason::DeniedBy(denies.swap_remove(i)));
            }
            let allowed_by = first_allow.or_else(|| {
                allow_conditions
                    .iter()
                    .position(|c| c.matches(entity, claims))
                    .map(|i| allows.swap_remove(i))
            });
            return match allowed_by {
                Some(hit) => Verdict {
                    decision: Decision::Allow,
                    reason: Reason::AllowedBy(hit),
                },
                None => Verdict::deny(Reason::ConditionsNotMet { allows, denies }),
            };
        }

        if let (Some(hit), true) = (&first_allow, denies.is_empty()) {
            return Verdict {
                decision: Decision::Allow,
                reason: Reason::AllowedBy(hit.clone()),
            };
        }
        if permission.resource_type.is_none() {
            // Conditional rules only cover resource permissions, so this is
            // unreachable through `covers`; answer safely all the same.
            return Verdict::deny(Reason::ConditionsNotMet { allows, denies });
        }
        // Roles often share conditions (every role with "what you own"):
        // each distinct tree is sent, and evaluated by the catalog, once.
        let any_of = |conditions: &[&Criteria]| {
            let mut distinct: Vec<&Criteria> = Vec::with_capacity(conditions.len());
            for &c in conditions {
                if !distinct.contains(&c) {
                    distinct.push(c);
                }
            }
            match distinct.as_slice() {
                [] => None,
                [only] => Some((*only).clone()),
                many => Some(Criteria::AnyOf(many.iter().map(|c| (*c).clone()).collect())),
            }
        };
        let criteria = match (
            first_allow.is_some(),
            any_of(&allow_conditions),
            any_of(&deny_conditions),
        ) {
            (true, _, Some(deny)) => Criteria::Not(Box::new(deny)),
            (false, Some(allow), Some(deny)) => {
                Criteria::AllOf(vec![allow, Criteria::Not(Box::new(deny))])
            }
            (false, Some(allow), None) => allow,
            // Covered above: an unconditional allow without denies, and no
            // allow at all.
            (_, None, _) | (true, Some(_), None) => {
                return Verdict::deny(Reason::ConditionsNotMet { allows, denies })
            }
        };
        Verdict {
            decision: Decision::Conditional(criteria),
            reason: Reason::Conditional { allows, denies },
        }
    }
}
