//! The policy as a file (YAML or JSON) and as the admin API's bodies:
//! roles with rules, and assignments naming their subject by entity ref.
//!
//! ```yaml
//! roles:
//!   - name: payments-operator
//!     description: Runs the payments services
//!     rules:
//!       - permissions: [catalog.entity.refresh, catalog.entity.delete]
//!         effect: allow
//!         conditions:
//!           anyOf:
//!             - rule: IS_ENTITY_OWNER
//!             - rule: HAS_LABEL
//!               params: { label: payments }
//!       - permissions: ["catalog.entity.*"]
//!         action: delete
//!         effect: deny
//!         conditions: { rule: HAS_ANNOTATION, params: { annotation: roster.dev/protected } }
//! assignments:
//!   - role: payments-operator
//!     subject: group:default/payments-core
//!     expiresAt: 2027-03-31T00:00:00Z
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::conditions::{Criteria, CATALOG_ENTITY};
use crate::model::{Action, Effect, PermissionPattern, Role, RoleName, Rule};

/// A whole policy file: custom roles and assignments. Built-in roles are
/// not part of it; assignments may name them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default)]
    pub roles: Vec<RoleDocument>,
    #[serde(default)]
    pub assignments: Vec<AssignmentDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDocument {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub rules: Vec<RuleDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDocument {
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub effect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentDocument {
    pub role: String,
    /// `user:default/jane.doe` or `group:default/payments-core` (kind and
    /// namespace may be left out: `jane.doe` is a user in `default`).
    pub subject: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// Everything wrong with a document, each with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {}", .problems.join("; "))]
pub struct DocumentError {
    pub problems: Vec<String>,
}

impl DocumentError {
    fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

/// Longest policy file accepted, and the most roles and rules per role:
/// far above any real policy, low enough that a hostile file is refused
/// before it costs anything.
pub const MAX_ROLES: usize = 10_000;
pub const MAX_RULES_PER_ROLE: usize = 1_000;

impl PolicyDocument {
    /// Parses YAML (which includes JSON).
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let document: Self = serde_yaml::from_str(text)
            .map_err(|e| DocumentError::one(format!("not a policy document: {e}")))?;
        if document.roles.len() > MAX_ROLES {
            return Err(DocumentError::one(format!(
                "{} roles; at most {MAX_ROLES} are accepted",
                document.roles.len()
            )));
        }
        Ok(document)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// Validates the roles. Role names must be unique and must not be a
    /// built-in's name (given in `reserved`).
    pub fn validate_roles(&self, reserved: &[&str]) -> Result<Vec<Role>, DocumentError> {
        let mut problems = Vec::new();
        let mut roles = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, role) in self.roles.iter().enumerate() {
            let at = format!("roles[{i}]");
            if reserved.contains(&role.name.as_str()) {
                problems.push(format!(
                    "{at}: {:?} is a built-in role and cannot be redefined",
                    role.name
                ));
                continue;
            }
            if !seen.insert(role.name.clone()) {
                problems.push(format!("{at}: role {:?} is defined twice", role.name));
                continue;
            }
            match role.validate(&at) {
                Ok(role) => roles.push(role),
                Err(mut e) => problems.append(&mut e.problems),
            }
        }
        if problems.is_empty() {
            Ok(roles)
        } else {
            Err(DocumentError { problems })
        }
    }
}

impl RoleDocument {
    /// Validates one role; `at` prefixes every problem (e.g. `roles[2]`).
    pub fn validate(&self, at: &str) -> Result<Role, DocumentError> {
        let mut problems = Vec::new();
        let name = RoleName::parse(&self.name);
        if name.is_none() {
            problems.push(format!(
                "{at}.name: {:?} is not a role name (1-63 of a-z, 0-9, '-', '_', '.', starting with a letter or digit)",
                self.name
            ));
        }
        if self.rules.len() > MAX_RULES_PER_ROLE {
            problems.push(format!(
                "{at}.rules: {} rules; at most {MAX_RULES_PER_ROLE} per role",
                self.rules.len()
            ));
        }
        let mut rules = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.validate(&format!("{at}.rules[{i}]")) {
                Ok(rule) => rules.push(rule),
                Err(problem) => problems.push(problem),
            }
        }
        match name {
            Some(name) if problems.is_empty() => Ok(Role {
                name,
                description: self.description.clone(),
                rules,
                builtin: false,
            }),
            _ => Err(DocumentError { problems }),
        }
    }

    pub fn from_role(role: &Role) -> Self {
        Self {
            name: role.name.to_string(),
            description: role.description.clone(),
            rules: role.rules.iter().map(RuleDocument::from_rule).collect(),
        }
    }
}

impl RuleDocument {
    fn validate(&self, at: &str) -> Result<Rule, String> {
        if self.permissions.is_empty() {
            return Err(format!("{at}.permissions: list at least one permission"));
        }
        let permissions = self
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PermissionPattern::parse(p).ok_or_else(|| {
                    format!(
                        "{at}.permissions[{i}]: {p:?} is not a permission name or pattern \
                         (e.g. catalog.entity.delete, catalog.entity.*, *)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let action = match &self.action {
            None => None,
            Some(text) => Some(Action::parse(text).ok_or_else(|| {
                format!("{at}.action: {text:?} is not one of create, read, update, delete, use")
            })?),
        };
        let effect = match self.effect.as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            other => return Err(format!("{at}.effect: {other:?} is not allow or deny")),
        };
        let conditions = match &self.conditions {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                Criteria::from_json(value, &format!("{at}.conditions"))
                    .map_err(|e| e.to_string())?,
            ),
        };
        let resource_type = match (&self.resource_type, &conditions) {
            (Some(t), _) if t.is_empty() => {
                return Err(format!("{at}.resourceType: must not be empty"))
            }
            (Some(t), Some(_)) if t != CATALOG_ENTITY => {
                return Err(format!(
                    "{at}.resourceType: conditions use the catalog's rules, which apply to \
                     {CATALOG_ENTITY:?}, not {t:?}"
                ))
            }
            (Some(t), _) => Some(t.clone()),
            // Conditions are about catalog entities, so the rule is too.
            (None, Some(_)) => Some(CATALOG_ENTITY.to_owned()),
            (None, None) => None,
        };
        Ok(Rule {
            permissions,
            resource_type,
            action,
            effect,
            conditions,
        })
    }

    fn from_rule(rule: &Rule) -> Self {
        Self {
            permissions: rule.permissions.iter().map(|p| p.to_string()).collect(),
            // Implied by conditions, so left out when they are present.
            resource_type: rule
                .resource_type
                .clone()
                .filter(|_| rule.conditions.is_none()),
            action: rule.action.map(|a| a.as_str().to_owned()),
            effect: rule.effect.as_str().to_owned(),
            conditions: rule.conditions.as_ref().map(Criteria::to_document_json),
        }
    }
}
