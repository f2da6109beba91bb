//! Backstage's well-known permissions, so a caller of Roster's own API can
//! name a permission without spelling out its type and action.

use crate::conditions::CATALOG_ENTITY;
use crate::model::{Action, Permission};

/// `(name, resource type, action)` for the permissions Backstage's core
/// plugins define (catalog and scaffolder).
const KNOWN: &[(&str, Option<&str>, Option<Action>)] = &[
    (
        "catalog.entity.read",
        Some(CATALOG_ENTITY),
        Some(Action::Read),
    ),
    ("catalog.entity.create", None, Some(Action::Create)),
    (
        "catalog.entity.refresh",
        Some(CATALOG_ENTITY),
        Some(Action::Update),
    ),
    (
        "catalog.entity.delete",
        Some(CATALOG_ENTITY),
        Some(Action::Delete),
    ),
    ("catalog.entity.validate", None, None),
    ("catalog.location.read", None, Some(Action::Read)),
    ("catalog.location.create", None, Some(Action::Create)),
    ("catalog.location.delete", None, Some(Action::Delete)),
    ("catalog.location.analyze", None, None),
    ("scaffolder.action.execute", Some("scaffolder-action"), None),
    (
        "scaffolder.template.parameter.read",
        Some("scaffolder-template"),
        Some(Action::Read),
    ),
    (
        "scaffolder.template.step.read",
        Some("scaffolder-template"),
        Some(Action::Read),
    ),
    ("scaffolder.task.read", None, Some(Action::Read)),
    ("scaffolder.task.create", None, Some(Action::Create)),
    ("scaffolder.task.cancel", None, None),
    ("scaffolder.template.management", None, None),
];

/// The permission Backstage means by `name`; an unknown name is a basic
/// permission without an action.
pub fn known_permission(name: &str) -> Permission<'_> {
    match KNOWN.iter().find(|(known, _, _)| *known == name) {
        Some((_, resource_type, action)) => Permission {
            name,
            resource_type: *resource_type,
            action: *action,
        },
        None => Permission::basic(name, None),
    }
}
