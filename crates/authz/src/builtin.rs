//! The roles Roster ships with: `admin`, `member`, `viewer`.

use std::sync::OnceLock;

use crate::document::PolicyDocument;
use crate::model::Role;

const BUILTIN_YAML: &str = include_str!("builtin.yaml");

/// The names of the built-in roles, which custom roles cannot take.
pub const BUILTIN_ROLE_NAMES: [&str; 3] = ["admin", "member", "viewer"];

/// The built-in roles, parsed once. The file is part of the binary and a
/// test parses it, so it is always valid.
pub fn builtin_roles() -> &'static [Role] {
    static ROLES: OnceLock<Vec<Role>> = OnceLock::new();
    ROLES.get_or_init(|| {
        PolicyDocument::parse(BUILTIN_YAML)
            .and_then(|document| document.validate_roles(&[]))
            .map(|roles| {
                roles
                    .into_iter()
                    .map(|role| Role {
                        builtin: true,
                        ..role
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The built-in roles' source, for documentation and `roster access export
/// --builtin`.
pub fn builtin_yaml() -> &'static str {
    BUILTIN_YAML
}
