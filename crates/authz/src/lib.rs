//! Roster's policy engine.
//!
//! Roles are data: each is a list of rules naming permissions (exact names
//! or patterns), optionally a resource type and an action, an effect, and
//! optional conditions on the resource in the catalog's own terms. Roles
//! are assigned to users and groups, optionally until a point in time.
//! [`Policy::decide`] is a pure function from (who, what, which resource,
//! when) to a decision and the reason for it: deny by default, an explicit
//! deny wins. This crate never does I/O; the server resolves the caller
//! against the directory and fetches resources.

pub mod builtin;
pub mod conditions;
pub mod document;
pub mod engine;
pub mod groups;
pub mod model;
pub mod permissions;

pub use builtin::{builtin_roles, BUILTIN_ROLE_NAMES};
pub use conditions::{
    BackstageCriteria, CatalogRule, Criteria, CriteriaError, CATALOG_ENTITY, CATALOG_PLUGIN,
};
pub use document::{AssignmentDocument, DocumentError, PolicyDocument, RoleDocument, RuleDocument};
pub use engine::{
    Decision, DirectoryUser, Policy, PolicyError, Principal, Reason, RuleHit, Verdict, Via,
};
pub use groups::group_closure;
pub use model::{
    Action, Assignment, Effect, Permission, PermissionPattern, Role, RoleName, Rule, Subject,
};
pub use permissions::known_permission;

#[cfg(test)]
mod tests;
