//! The engine as a table: (policy, who, permission, resource) → decision.

use std::collections::HashMap;

use proptest::prelude::*;
use roster_domain::{GroupId, UserId};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::*;

const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

/// A small directory: groups org ⊃ eng ⊃ payments, and ops; users alice (no
/// groups), bob (payments), carol (eng, deactivated), dave (ops).
struct Directory {
    groups: HashMap<&'static str, GroupId>,
    users: HashMap<&'static str, DirectoryUser>,
}

fn gid(n: u128) -> GroupId {
    GroupId::from_uuid(Uuid::from_u128(n))
}

fn directory() -> Directory {
    let groups: HashMap<&str, GroupId> = [("org", 1), ("eng", 2), ("payments", 3), ("ops", 4)]
        .into_iter()
        .map(|(name, n)| (name, gid(n)))
        .collect();
    let parents: HashMap<GroupId, Vec<GroupId>> = HashMap::from([
        (groups["eng"], vec![groups["org"]]),
        (groups["payments"], vec![groups["eng"]]),
    ]);
    let user = |name: &str, n: u128, direct: &[&str], active: bool| {
        let direct_ids: Vec<GroupId> = direct.iter().map(|g| groups[g]).collect();
        let mut ownership_refs = vec![format!("user:default/{name}")];
        ownership_refs.extend(direct.iter().map(|g| format!("group:default/{g}")));
        DirectoryUser {
            id: UserId::from_uuid(Uuid::from_u128(100 + n)),
            user_ref: format!("user:default/{name}"),
            active,
            groups: group_closure(&direct_ids, &parents, 10),
            ownership_refs,
        }
    };
    let users = HashMap::from([
        ("alice", user("alice", 1, &[], true)),
        ("bob", user("bob", 2, &["payments"], true)),
        ("carol", user("carol", 3, &["eng"], false)),
        ("dave", user("dave", 4, &["ops"], true)),
    ]);
    Directory { groups, users }
}

/// Builds a policy from a document whose assignment subjects are
/// `user:NAME` / `group:NAME` of [`directory`].
fn policy(dir: &Directory, yaml: &str) -> Policy {
    let document = PolicyDocument::parse(yaml).unwrap();
    let mut roles = builtin_roles().to_vec();
    roles.extend(document.validate_roles(&BUILTIN_ROLE_NAMES).unwrap());
    let assignments = document
        .assignments
        .iter()
        .map(|a| Assignment {
            id: Uuid::new_v4(),
            role: RoleName::parse(&a.role).unwrap(),
            subject: match a.subject.split_once(':').unwrap() {
                ("user", name) => Subject::User(dir.users[name].id),
                ("group", name) => Subject::Group(dir.groups[name]),
                other => panic!("bad subject {other:?}"),
            },
            expires_at: a.expires_at,
        })
        .collect();
    Policy::new(roles, assignments).unwrap()
}

/// Backstage's permissions (reference §4.4) by name; anything else is a
/// basic permission without an action.
fn permission(name: &str) -> Permission<'_> {
    use Action::*;
    match name {
        "catalog.entity.read" => Permission::resource(name, CATALOG_ENTITY, Some(Read)),
        "catalog.entity.refresh" => Permission::resource(name, CATALOG_ENTITY, Some(Update)),
        "catalog.entity.delete" => Permission::resource(name, CATALOG_ENTITY, Some(Delete)),
        "catalog.entity.create" => Permission::basic(name, Some(Create)),
        "catalog.location.read" => Permission::basic(name, Some(Read)),
        "catalog.location.create" => Permission::basic(name, Some(Create)),
        "catalog.location.delete" => Permission::basic(name, Some(Delete)),
        "scaffolder.action.execute" => Permission::resource(name, "scaffolder-action", None),
        "scaffolder.template.parameter.read" => {
            Permission::resource(name, "scaffolder-template", Some(Read))
        }
        "scaffolder.task.create" => Permission::basic(name, Some(Create)),
        _ => Permission::basic(name, None),
    }
}

/// Catalog entities the rows refer to by name.
fn entity(name: &str) -> Value {
    match name {
        "bobs-service" => json!({
            "kind": "Component", "metadata": {"name": name, "namespace": "default"},
            "spec": {"owner": "user:default/bob", "type": "service"},
            "relations": [{"type": "ownedBy", "targetRef": "user:default/bob"}]}),
        "payments-api" => json!({
            "kind": "API", "metadata": {"name": name, "labels": {"tier": "gold"}},
            "spec": {"owner": "payments"}}),
        "protected-db" => json!({
            "kind": "Resource", "metadata": {"name": name,
                "annotations": {"roster.dev/protected": "true"}},
            "spec": {"owner": "group:default/payments", "type": "database"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/payments"}]}),
        "ops-runbook" => json!({
            "kind": "Component", "metadata": {"name": name, "tags": ["ops", "docs"]},
            "spec": {"owner": "ops", "type": "documentation", "lifecycle": "production"}}),
        other => panic!("no entity {other}"),
    }
}

/// One row: the decision as text (`ALLOW`, `DENY`, or `CONDITIONAL` and
/// the criteria JSON Backstage receives).
fn decide(
    dir: &Directory,
    policy: &Policy,
    who: &str,
    perm: &str,
    resource: Option<&str>,
) -> String {
    let principal = match who {
        "nobody" => Principal::Nobody,
        "ghost" => Principal::Unknown {
            user_ref: "user:default/ghost".into(),
        },
        "root" => Principal::SuperUser {
            user_ref: "user:default/root".into(),
        },
        name => Principal::User(dir.users[name].clone()),
    };
    let resource = resource.map(entity);
    let verdict = policy.decide(&principal, &permission(perm), resource.as_ref(), NOW);
    match verdict.decision {
        Decision::Allow => "ALLOW".into(),
        Decision::Deny => "DENY".into(),
        Decision::Conditional(criteria) => {
            let claims = match &principal {
                Principal::User(user) => user.ownership_refs.clone(),
                _ => Vec::new(),
            };
            format!("CONDITIONAL {}", criteria.to_backstage_json(&claims))
        }
    }
}

const NONE: &str = "";

const CUSTOM: &str = r#"
roles:
  - name: deleter
    rules:
      - permissions: ["catalog.entity.*"]
        action: delete
        effect: allow
  - name: no-protected-deletes
    rules:
      - permissions: [catalog.entity.delete]
        effect: deny
        conditions: { rule: HAS_ANNOTATION, params: { annotation: roster.dev/protected } }
  - name: gold-reader
    rules:
      - permissions: [catalog.entity.read]
        effect: allow
        conditions: { rule: HAS_LABEL, params: { label: tier } }
  - name: kind-reader
    rules:
      - permissions: [catalog.entity.read]
        effect: allow
        conditions:
          allOf:
            - rule: IS_ENTITY_KIND
              params: { kinds: [component] }
            - not: { rule: HAS_SPEC, params: { key: lifecycle, value: experimental } }
  - name: no-locations
    rules:
      - permissions: ["catalog.location.*"]
        effect: deny
  - name: docs-only
    rules:
      - permissions: [catalog.entity.read]
        effect: allow
        conditions: { rule: HAS_METADATA, params: { key: tags, value: docs } }
  - name: scaffolder-user
    rules:
      - permissions: ["scaffolder.*"]
        effect: allow
"#;

fn with_assignments(assignments: &str) -> String {
    format!("{CUSTOM}\nassignments:\n{assignments}")
}

fn policy_with(dir: &Directory, roles: &str, assignments: &str) -> Policy {
    policy(dir, &format!("{roles}\nassignments:\n{assignments}"))
}

#[test]
fn decisions_table() {
    let dir = directory();
    let owner_of_bob = r#"{"resourceType":"catalog-entity","rule":"IS_ENTITY_OWNER","params":{"claims":["user:default/bob","group:default/payments"]}}"#;
    // (assignments, who, permission, resource, expected)
    let rows: &[(&str, &str, &str, Option<&str>, &str)] = &[
        // Deny by default.
        (NONE, "alice", "catalog.entity.read", None, "DENY"),
        (NONE, "alice", "catalog.location.create", None, "DENY"),
        (NONE, "nobody", "catalog.entity.read", None, "DENY"),
        ("  - {role: admin, subject: user:alice}", "nobody", "catalog.entity.read", None, "DENY"),
        ("  - {role: admin, subject: user:alice}", "ghost", "catalog.entity.read", None, "DENY"),
        // Break-glass super-user, from config: everything, with no role.
        (NONE, "root", "catalog.entity.delete", Some("protected-db"), "ALLOW"),
        (NONE, "root", "anything.at.all", None, "ALLOW"),
        // admin: everything, including names no one has heard of.
        ("  - {role: admin, subject: user:alice}", "alice", "catalog.entity.delete", None, "ALLOW"),
        ("  - {role: admin, subject: user:alice}", "alice", "catalog.location.delete", None, "ALLOW"),
        ("  - {role: admin, subject: user:alice}", "alice", "unknown.permission", None, "ALLOW"),
        ("  - {role: admin, subject: user:alice}", "bob", "catalog.entity.read", None, "DENY"),
        // A deactivated user is denied whatever their roles.
        ("  - {role: admin, subject: user:carol}", "carol", "catalog.entity.read", None, "DENY"),
        ("  - {role: admin, subject: group:eng}", "carol", "catalog.entity.read", None, "DENY"),
        // viewer: reads only.
        ("  - {role: viewer, subject: user:alice}", "alice", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: viewer, subject: user:alice}", "alice", "catalog.location.read", None, "ALLOW"),
        ("  - {role: viewer, subject: user:alice}", "alice", "scaffolder.template.parameter.read", None, "ALLOW"),
        ("  - {role: viewer, subject: user:alice}", "alice", "catalog.entity.delete", None, "DENY"),
        ("  - {role: viewer, subject: user:alice}", "alice", "catalog.location.create", None, "DENY"),
        ("  - {role: viewer, subject: user:alice}", "alice", "scaffolder.action.execute", None, "DENY"),
        // member: reads, scaffolder, registers; deletes what it owns.
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.location.create", None, "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "scaffolder.action.execute", None, "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "scaffolder.task.create", None, "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.location.delete", None, "DENY"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.create", None, "DENY"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.delete", None, &*format!("CONDITIONAL {owner_of_bob}")),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.refresh", None, &*format!("CONDITIONAL {owner_of_bob}")),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.delete", Some("bobs-service"), "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.delete", Some("protected-db"), "ALLOW"),
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.delete", Some("ops-runbook"), "DENY"),
        // Ownership from spec.owner when the entity has no relations: bare
        // names are groups in the entity's namespace.
        ("  - {role: member, subject: user:bob}", "bob", "catalog.entity.delete", Some("payments-api"), "ALLOW"),
        ("  - {role: member, subject: user:dave}", "dave", "catalog.entity.delete", Some("ops-runbook"), "ALLOW"),
        ("  - {role: member, subject: user:dave}", "dave", "catalog.entity.delete", Some("payments-api"), "DENY"),
        // Roles through groups, nested: payments ⊂ eng ⊂ org.
        ("  - {role: viewer, subject: group:payments}", "bob", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: viewer, subject: group:eng}", "bob", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: viewer, subject: group:org}", "bob", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: viewer, subject: group:org}", "dave", "catalog.entity.read", None, "DENY"),
        ("  - {role: viewer, subject: group:ops}", "bob", "catalog.entity.read", None, "DENY"),
        // Expiry: a role until a moment in the past no longer counts.
        ("  - {role: viewer, subject: user:alice, expiresAt: 2026-11-30T11:59:59Z}", "alice", "catalog.entity.read", None, "DENY"),
        ("  - {role: viewer, subject: user:alice, expiresAt: 2026-11-30T12:00:00Z}", "alice", "catalog.entity.read", None, "DENY"),
        ("  - {role: viewer, subject: user:alice, expiresAt: 2026-11-30T12:00:01Z}", "alice", "catalog.entity.read", None, "ALLOW"),
        ("  - {role: viewer, subject: group:org, expiresAt: 2026-01-01T00:00:00Z}\n  - {role: viewer, subject: user:bob}", "bob", "catalog.entity.read", None, "ALLOW"),
        // Patterns with an action: `catalog.entity.*` + delete.
        ("  - {role: deleter, subject: user:alice}", "alice", "catalog.entity.delete", None, "ALLOW"),
        ("  - {role: deleter, subject: user:alice}", "alice", "catalog.entity.read", None, "DENY"),
        ("  - {role: deleter, subject: user:alice}", "alice", "catalog.location.delete", None, "DENY"),
        // An unconditional deny wins over admin.
        ("  - {role: admin, subject: user:alice}\n  - {role: no-locations, subject: user:alice}", "alice", "catalog.location.create", None, "DENY"),
        ("  - {role: admin, subject: user:alice}\n  - {role: no-locations, subject: group:org}", "bob", "catalog.location.read", None, "DENY"),
        ("  - {role: admin, subject: user:bob}\n  - {role: no-locations, subject: group:org}", "bob", "catalog.location.read", None, "DENY"),
        ("  - {role: admin, subject: user:bob}\n  - {role: no-locations, subject: group:org}", "bob", "catalog.entity.read", None, "ALLOW"),
        // A conditional deny on top of an unconditional allow: not(deny).
        ("  - {role: admin, subject: user:alice}\n  - {role: no-protected-deletes, subject: user:alice}", "alice", "catalog.entity.delete", None,
            r#"CONDITIONAL {"not":{"resourceType":"catalog-entity","rule":"HAS_ANNOTATION","params":{"annotation":"roster.dev/protected"}}}"#),
        ("  - {role: admin, subject: user:alice}\n  - {role: no-protected-deletes, subject: user:alice}", "alice", "catalog.entity.delete", Some("protected-db"), "DENY"),
        ("  - {role: admin, subject: user:alice}\n  - {role: no-protected-deletes, subject: user:alice}", "alice", "catalog.entity.delete", Some("bobs-service"), "ALLOW"),
        ("  - {role: admin, subject: user:alice}\n  - {role: no-protected-deletes, subject: user:alice}", "alice", "catalog.entity.read", None, "ALLOW"),
        // Conditional allow and conditional deny: allOf(allow, not(deny)).
        ("  - {role: member, subject: user:bob}\n  - {role: no-protected-deletes, subject: group:eng}", "bob", "catalog.entity.delete", None,
            &*format!(r#"CONDITIONAL {{"allOf":[{owner_of_bob},{{"not":{{"resourceType":"catalog-entity","rule":"HAS_ANNOTATION","params":{{"annotation":"roster.dev/protected"}}}}}}]}}"#)),
        ("  - {role: member, subject: user:bob}\n  - {role: no-protected-deletes, subject: group:eng}", "bob", "catalog.entity.delete", Some("protected-db"), "DENY"),
        ("  - {role: member, subject: user:bob}\n  - {role: no-protected-deletes, subject: group:eng}", "bob", "catalog.entity.delete", Some("bobs-service"), "ALLOW"),
        // Only a conditional deny: nothing allows, so DENY.
        ("  - {role: no-protected-deletes, subject: user:alice}", "alice", "catalog.entity.delete", None, "DENY"),
        // Two conditional allows: anyOf.
        ("  - {role: gold-reader, subject: user:dave}\n  - {role: docs-only, subject: user:dave}", "dave", "catalog.entity.read", None,
            r#"CONDITIONAL {"anyOf":[{"resourceType":"catalog-entity","rule":"HAS_LABEL","params":{"label":"tier"}},{"resourceType":"catalog-entity","rule":"HAS_METADATA","params":{"key":"tags","value":"docs"}}]}"#),
        ("  - {role: gold-reader, subject: user:dave}", "dave", "catalog.entity.read", Some("payments-api"), "ALLOW"),
        ("  - {role: gold-reader, subject: user:dave}", "dave", "catalog.entity.read", Some("bobs-service"), "DENY"),
        ("  - {role: docs-only, subject: user:dave}", "dave", "catalog.entity.read", Some("ops-runbook"), "ALLOW"),
        ("  - {role: docs-only, subject: user:dave}", "dave", "catalog.entity.read", Some("bobs-service"), "DENY"),
        ("  - {role: kind-reader, subject: user:dave}", "dave", "catalog.entity.read", Some("ops-runbook"), "ALLOW"),
        ("  - {role: kind-reader, subject: user:dave}", "dave", "catalog.entity.read", Some("payments-api"), "DENY"),
        // Conditional rules never cover basic permissions.
        ("  - {role: gold-reader, subject: user:dave}", "dave", "catalog.location.read", None, "DENY"),
        // Patterns reach resource permissions of any type.
        ("  - {role: scaffolder-user, subject: user:dave}", "dave", "scaffolder.action.execute", None, "ALLOW"),
        ("  - {role: scaffolder-user, subject: user:dave}", "dave", "scaffolder.task.create", None, "ALLOW"),
        ("  - {role: scaffolder-user, subject: user:dave}", "dave", "scaffolderx.task.create", None, "DENY"),
        ("  - {role: scaffolder-user, subject: user:dave}", "dave", "catalog.entity.read", None, "DENY"),
    ];
    let mut failures = Vec::new();
    for (assignments, who, perm, resource, expected) in rows {
        let policy = policy(&dir, &with_assignments(assignments));
        let actual = decide(&dir, &policy, who, perm, *resource);
        if actual != *expected {
            failures.push(format!(
                "{who} {perm} {resource:?} with\n{assignments}\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons_name_the_deciding_rule_and_how_the_role_was_reached() {
    let dir = directory();
    let policy = policy(
        &dir,
        &with_assignments(
            "  - {role: viewer, subject: group:org}\n  - {role: no-locations, subject: group:payments}",
        ),
    );
    let bob = Principal::User(dir.users["bob"].clone());
    let verdict = policy.decide(&bob, &permission("catalog.entity.read"), None, NOW);
    let Reason::AllowedBy(hit) = verdict.reason else {
        panic!("{:?}", verdict.reason)
    };
    assert_eq!(hit.role.name.as_str(), "viewer");
    assert_eq!(hit.rule, 0);
    assert_eq!(hit.via, Via::Group(dir.groups["org"], 3));

    let verdict = policy.decide(&bob, &permission("catalog.location.read"), None, NOW);
    let Reason::DeniedBy(hit) = verdict.reason else {
        panic!("{:?}", verdict.reason)
    };
    assert_eq!(hit.role.name.as_str(), "no-locations");
    assert_eq!(hit.via, Via::Group(dir.groups["payments"], 1));

    let alice = Principal::User(dir.users["alice"].clone());
    assert_eq!(
        policy
            .decide(&alice, &permission("catalog.entity.read"), None, NOW)
            .reason,
        Reason::NoRule
    );
    let carol = Principal::User(dir.users["carol"].clone());
    assert_eq!(
        policy
            .decide(&carol, &permission("catalog.entity.read"), None, NOW)
            .reason,
        Reason::Deactivated
    );
}

/// Roles that share a condition, for the interning tests: `owners` and
/// `team-owners` both allow deleting what you own.
const SHARED: &str = r#"
roles:
  - name: owners
    rules:
      - permissions: [catalog.entity.delete]
        effect: allow
        conditions: { rule: IS_ENTITY_OWNER }
  - name: team-owners
    rules:
      - permissions: ["catalog.entity.*"]
        effect: allow
        conditions: { rule: IS_ENTITY_OWNER }
      - permissions: [catalog.entity.delete]
        effect: allow
        conditions: { anyOf: [{ rule: IS_ENTITY_OWNER }, { rule: HAS_LABEL, params: { label: tier } }] }
  - name: labelled
    rules:
      - permissions: [catalog.entity.delete]
        effect: allow
        conditions: { rule: HAS_LABEL, params: { label: tier } }
  - name: no-protected-deletes
    rules:
      - permissions: [catalog.entity.delete]
        effect: deny
        conditions: { rule: HAS_ANNOTATION, params: { annotation: roster.dev/protected } }
"#;

fn conditional(verdict: Verdict<'_>) -> std::sync::Arc<Criteria> {
    match verdict.decision {
        Decision::Conditional(criteria) => criteria,
        other => panic!("expected CONDITIONAL, got {other:?}"),
    }
}

#[test]
fn identical_conditions_are_interned_and_answered_once() {
    let dir = directory();
    let owner = Criteria::from_json(&json!({"rule": "IS_ENTITY_OWNER"}), "c").unwrap();
    let tier = Criteria::from_json(
        &json!({"rule": "HAS_LABEL", "params": {"label": "tier"}}),
        "c",
    )
    .unwrap();
    let protected = Criteria::from_json(
        &json!({"rule": "HAS_ANNOTATION", "params": {"annotation": "roster.dev/protected"}}),
        "c",
    )
    .unwrap();
    let policy = policy(
        &dir,
        &format!(
            "{SHARED}\nassignments:\n  - {{role: owners, subject: user:bob}}\n  - {{role: team-owners, subject: group:org}}\n  - {{role: owners, subject: user:dave}}\n  - {{role: member, subject: user:alice}}"
        ),
    );
    let ask = |who: &str, perm: &str| {
        policy.decide(
            &Principal::User(dir.users[who].clone()),
            &permission(perm),
            None,
            NOW,
        )
    };
    // bob reaches the owner condition through three rules of two roles;
    // it is sent once, beside the distinct anyOf.
    let bob = conditional(ask("bob", "catalog.entity.delete"));
    assert_eq!(
        *bob,
        Criteria::AnyOf(vec![
            owner.clone(),
            Criteria::AnyOf(vec![owner.clone(), tier.clone()])
        ])
    );
    // The same question again, and the same conditions reached otherwise,
    // share the answer rather than building it again.
    assert!(std::sync::Arc::ptr_eq(
        &bob,
        &conditional(ask("bob", "catalog.entity.delete"))
    ));
    // A single condition is the policy's own tree, whoever holds it and
    // through whichever role (built-in `member` has the same one).
    let dave = conditional(ask("dave", "catalog.entity.delete"));
    assert_eq!(*dave, owner);
    assert!(std::sync::Arc::ptr_eq(
        &dave,
        &conditional(ask("bob", "catalog.entity.refresh"))
    ));
    assert!(std::sync::Arc::ptr_eq(
        &dave,
        &conditional(ask("alice", "catalog.entity.delete"))
    ));

    // With a conditional deny: allOf(allow, not(deny)), also shared.
    let policy = policy_with(
        &dir,
        SHARED,
        "  - {role: labelled, subject: user:bob}\n  - {role: no-protected-deletes, subject: group:eng}\n  - {role: labelled, subject: group:ops}\n  - {role: no-protected-deletes, subject: user:dave}",
    );
    let ask = |who: &str| {
        conditional(policy.decide(
            &Principal::User(dir.users[who].clone()),
            &permission("catalog.entity.delete"),
            None,
            NOW,
        ))
    };
    let expected = Criteria::AllOf(vec![tier.clone(), Criteria::Not(Box::new(protected))]);
    assert_eq!(*ask("bob"), expected);
    assert!(std::sync::Arc::ptr_eq(&ask("bob"), &ask("dave")));
}

#[test]
fn conditional_answers_list_conditions_in_policy_order() {
    // dave reaches `labelled` first (directly) and `owners` through ops;
    // alice the other way round. Both get the conditions in the order the
    // policy defines them, so both get one answer.
    let dir = directory();
    let policy = policy_with(
        &dir,
        SHARED,
        "  - {role: labelled, subject: user:dave}\n  - {role: owners, subject: group:ops}\n  - {role: owners, subject: user:alice}\n  - {role: labelled, subject: user:alice}",
    );
    let ask = |who: &str| {
        let verdict = policy.decide(
            &Principal::User(dir.users[who].clone()),
            &permission("catalog.entity.delete"),
            None,
            NOW,
        );
        let claims = dir.users[who].ownership_refs.clone();
        (conditional(verdict), claims)
    };
    let (dave, claims) = ask("dave");
    assert_eq!(
        dave.to_backstage_json(&claims),
        json!({"anyOf": [
            {"resourceType": "catalog-entity", "rule": "IS_ENTITY_OWNER", "params": {"claims": ["user:default/dave", "group:default/ops"]}},
            {"resourceType": "catalog-entity", "rule": "HAS_LABEL", "params": {"label": "tier"}},
        ]})
    );
    assert!(std::sync::Arc::ptr_eq(&dave, &ask("alice").0));
}

#[test]
fn roles_of_lists_direct_then_groups_by_depth_each_once() {
    let dir = directory();
    let policy = policy_with(
        &dir,
        CUSTOM,
        "  - {role: viewer, subject: group:org}\n  - {role: gold-reader, subject: group:eng}\n  - {role: docs-only, subject: group:payments}\n  - {role: viewer, subject: group:payments}\n  - {role: member, subject: user:bob, expiresAt: 2026-11-30T12:00:00Z}\n  - {role: deleter, subject: user:bob}\n  - {role: gold-reader, subject: user:bob}",
    );
    let bob = dir.users["bob"].clone();
    let listed = |user: &DirectoryUser| -> Vec<(String, Via)> {
        policy
            .roles_of(user, NOW)
            .into_iter()
            .map(|(role, via)| (role.name.to_string(), via))
            .collect()
    };
    let payments = Via::Group(dir.groups["payments"], 1);
    let expected = vec![
        ("deleter".to_string(), Via::Direct),
        ("gold-reader".to_string(), Via::Direct),
        ("docs-only".to_string(), payments),
        ("viewer".to_string(), payments),
    ];
    assert_eq!(listed(&bob), expected);
    // Groups given deepest first are still taken shallowest first.
    let reversed = DirectoryUser {
        groups: bob.groups.iter().rev().copied().collect(),
        ..bob.clone()
    };
    assert_eq!(listed(&reversed), expected);
}

#[test]
fn owner_conditions_compare_refs_like_the_catalog() {
    // (spec.owner, metadata.namespace, claim, owned): entities without
    // relations, whose owner ref is completed from spec.owner.
    let rows: &[(&str, Option<&str>, &str, bool)] = &[
        ("payments", None, "group:default/payments", true),
        ("payments", None, "GROUP:Default/Payments", true),
        ("payments", Some("shop"), "group:shop/payments", true),
        ("payments", Some("shop"), "group:default/payments", false),
        ("user:bob", None, "user:default/bob", true),
        ("User:bob", None, "user:default/bob", true),
        ("user:other/bob", Some("shop"), "user:other/bob", true),
        ("user:other/bob", Some("shop"), "user:shop/bob", false),
        ("group:a:b/c", None, "group:a:b/c", true),
        ("payments", Some("a/b"), "group:a/b/payments", true),
        ("payments", None, "group:default/payment", false),
        ("payments", None, "group:default/paymentsx", false),
        ("payments", None, "", false),
        ("pay", None, "group:default/pay\u{e9}", false),
    ];
    for &(owner, namespace, claim, owned) in rows {
        let mut metadata = json!({"name": "x"});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        let entity = json!({"kind": "Component", "metadata": metadata, "spec": {"owner": owner}});
        let rule = Criteria::Rule(CatalogRule::IsEntityOwner {
            claims: Some(vec![claim.to_string()]),
        });
        assert_eq!(
            rule.matches(&entity, &[]),
            owned,
            "{owner} in {namespace:?} vs {claim}"
        );
        // Relations, when present, are the owners.
        let related = json!({"kind": "Component", "spec": {"owner": "nobody"},
            "relations": [{"type": "ownedBy", "targetRef": claim.to_ascii_uppercase()}]});
        assert!(
            claim.is_empty() || rule.matches(&related, &[]),
            "{claim} as a relation"
        );
    }
}

#[test]
fn builtin_roles_parse_and_are_marked() {
    let names: Vec<&str> = builtin_roles().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, BUILTIN_ROLE_NAMES);
    assert!(builtin_roles()
        .iter()
        .all(|r| r.builtin && !r.rules.is_empty()));
}

#[test]
fn invalid_documents_say_what_and_where() {
    let rows: &[(&str, &str)] = &[
        ("roles: [{name: Admin2, rules: []}]", "roles[0].name: \"Admin2\" is not a role name"),
        ("roles: [{name: admin, rules: []}]", "roles[0]: \"admin\" is a built-in role"),
        ("roles: [{name: a, rules: []}, {name: a, rules: []}]", "roles[1]: role \"a\" is defined twice"),
        ("roles: [{name: a, rules: [{permissions: [], effect: allow}]}]", "roles[0].rules[0].permissions: list at least one"),
        ("roles: [{name: a, rules: [{permissions: [catalog..x], effect: allow}]}]", "roles[0].rules[0].permissions[0]: \"catalog..x\" is not a permission"),
        ("roles: [{name: a, rules: [{permissions: [\"cat*\"], effect: allow}]}]", "\"cat*\" is not a permission"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: maybe}]}]", "roles[0].rules[0].effect: \"maybe\" is not allow or deny"),
        ("roles: [{name: a, rules: [{permissions: [x], action: destroy, effect: allow}]}]", "roles[0].rules[0].action: \"destroy\" is not one of"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {rule: IS_OWNER}}]}]", "roles[0].rules[0].conditions: unknown rule \"IS_OWNER\""),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {allOf: []}}]}]", "conditions: allOf must be a non-empty list"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {not: [{rule: HAS_LABEL, params: {label: x}}]}}]}]", "not takes a single condition"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {anyOf: [{rule: HAS_LABEL}]}}]}]", "conditions.anyOf[0]: HAS_LABEL needs params.label"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {rule: IS_ENTITY_KIND, params: {kinds: component}}}]}]", "params.kinds must be a non-empty list of strings"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {rule: HAS_LABEL, params: {label: x, colour: red}}}]}]", "HAS_LABEL has no parameter \"colour\""),
        ("roles: [{name: a, rules: [{permissions: [x], resourceType: scaffolder-template, effect: allow, conditions: {rule: HAS_LABEL, params: {label: x}}}]}]", "apply to \"catalog-entity\", not \"scaffolder-template\""),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {rule: HAS_LABEL, resourceType: scaffolder-template, params: {label: x}}}]}]", "is not supported"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, colour: red}]}]", "unknown field `colour`"),
        ("rolez: []", "unknown field `rolez`"),
        ("roles: [{name: a, rules: [{permissions: [x], effect: allow, conditions: {allOf: [{rule: HAS_LABEL, params: {label: x}}], anyOf: [{rule: HAS_LABEL, params: {label: y}}]}}]}]", "unexpected key"),
    ];
    let mut failures = Vec::new();
    for (yaml, expected) in rows {
        let result =
            PolicyDocument::parse(yaml).and_then(|d| d.validate_roles(&BUILTIN_ROLE_NAMES));
        match result {
            Err(e) if e.to_string().contains(expected) => {}
            other => failures.push(format!(
                "{yaml}\n  expected error containing {expected}\n  got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn documents_round_trip_through_export() {
    let document = PolicyDocument::parse(CUSTOM).unwrap();
    let roles = document.validate_roles(&BUILTIN_ROLE_NAMES).unwrap();
    let exported = PolicyDocument {
        roles: roles.iter().map(RoleDocument::from_role).collect(),
        assignments: Vec::new(),
    };
    let reparsed = PolicyDocument::parse(&exported.to_yaml()).unwrap();
    assert_eq!(reparsed.validate_roles(&BUILTIN_ROLE_NAMES).unwrap(), roles);
}

#[test]
fn deep_condition_trees_are_refused() {
    let mut tree = json!({"rule": "HAS_LABEL", "params": {"label": "x"}});
    for _ in 0..40 {
        tree = json!({ "not": tree });
    }
    let error = Criteria::from_json(&tree, "conditions").unwrap_err();
    assert!(error.message.contains("deeper than"), "{error}");
}

#[test]
fn group_closure_is_cycle_safe_and_depth_limited() {
    let parents = HashMap::from([
        (gid(1), vec![gid(2)]),
        (gid(2), vec![gid(3)]),
        (gid(3), vec![gid(1), gid(4)]),
    ]);
    assert_eq!(
        group_closure(&[gid(1)], &parents, 10),
        vec![(gid(1), 1), (gid(2), 2), (gid(3), 3), (gid(4), 4)]
    );
    assert_eq!(
        group_closure(&[gid(1)], &parents, 2),
        vec![(gid(1), 1), (gid(2), 2)]
    );
    assert_eq!(group_closure(&[gid(1)], &parents, 0), vec![]);
}

// Properties.

/// A random policy over a few permissions, and a random directory user.
/// (role index, pattern, action, effect, index into [`CONDITIONS`]).
type CaseRule = (usize, &'static str, Option<Action>, Effect, Option<usize>);

#[derive(Debug, Clone)]
struct Case {
    rules: Vec<CaseRule>,
    assignments: Vec<(usize, Option<u8>)>,
    perm: &'static str,
    resource: Option<&'static str>,
}

const PERMS: [&str; 6] = [
    "catalog.entity.read",
    "catalog.entity.delete",
    "catalog.location.create",
    "scaffolder.action.execute",
    "unknown.permission",
    "catalog.entity.refresh",
];
const PATTERNS: [&str; 7] = [
    "*",
    "catalog.entity.*",
    "catalog.*",
    "catalog.entity.read",
    "catalog.entity.delete",
    "catalog.location.create",
    "scaffolder.*",
];
/// Conditions rules may carry; the last two share parts with the first
/// three, as interned conditions do.
const CONDITIONS: [&str; 5] = [
    r#"{"rule":"IS_ENTITY_OWNER"}"#,
    r#"{"rule":"HAS_LABEL","params":{"label":"tier"}}"#,
    r#"{"not":{"rule":"IS_ENTITY_KIND","params":{"kinds":["resource"]}}}"#,
    r#"{"anyOf":[{"rule":"IS_ENTITY_OWNER"},{"rule":"HAS_LABEL","params":{"label":"tier"}}]}"#,
    r#"{"allOf":[{"rule":"HAS_LABEL","params":{"label":"tier"}},{"not":{"rule":"IS_ENTITY_KIND","params":{"kinds":["resource"]}}}]}"#,
];
const ENTITIES: [&str; 4] = [
    "bobs-service",
    "payments-api",
    "protected-db",
    "ops-runbook",
];

fn case() -> impl Strategy<Value = Case> {
    let action = prop::option::of(prop::sample::select(vec![Action::Read, Action::Delete]));
    let effect = prop::sample::select(vec![Effect::Allow, Effect::Deny]);
    let rule = (
        0..4usize,
        prop::sample::select(PATTERNS.to_vec()),
        action,
        effect,
        prop::option::of(0..CONDITIONS.len()),
    );
    // Subjects: 0 = bob, 1 = payments, 2 = eng, 3 = org; expiry hours from
    // NOW - 2 (None = never).
    let assignment = (0..4usize, prop::option::of(0..4u8));
    (
        prop::collection::vec(rule, 0..8),
        prop::collection::vec(assignment, 0..6),
        prop::sample::select(PERMS.to_vec()),
        prop::option::of(prop::sample::select(ENTITIES.to_vec())),
    )
        .prop_map(|(rules, assignments, perm, resource)| Case {
            rules,
            assignments,
            perm,
            resource,
        })
}

/// The policy document of a case: four roles r0..r3; assignment i gives
/// role i % 4 to its subject.
fn case_yaml(case: &Case) -> String {
    let mut roles: Vec<Value> = (0..4)
        .map(|i| json!({"name": format!("r{i}"), "rules": []}))
        .collect();
    for (role, pattern, action, effect, condition) in &case.rules {
        let mut rule = json!({"permissions": [pattern], "effect": effect.as_str()});
        if let Some(action) = action {
            rule["action"] = json!(action.as_str());
        }
        if let Some(c) = condition {
            rule["conditions"] = serde_json::from_str(CONDITIONS[*c]).unwrap();
        }
        roles[*role]["rules"].as_array_mut().unwrap().push(rule);
    }
    let subjects = ["user:bob", "group:payments", "group:eng", "group:org"];
    let assignments: Vec<Value> = case
        .assignments
        .iter()
        .enumerate()
        .map(|(i, (subject, hours))| {
            let mut a = json!({"role": format!("r{}", i % 4), "subject": subjects[*subject]});
            if let Some(h) = hours {
                let at = NOW + time::Duration::hours(i64::from(*h) - 2);
                a["expiresAt"] = json!(at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap());
            }
            a
        })
        .collect();
    json!({"roles": roles, "assignments": assignments}).to_string()
}

fn rank(decision: &str) -> u8 {
    match decision.split(' ').next() {
        Some("DENY") => 0,
        Some("CONDITIONAL") => 1,
        _ => 2,
    }
}

/// Backstage's criteria JSON, built by hand: the reference for
/// `Criteria::backstage_json` and `to_backstage_json`.
fn backstage_form(tree: &Criteria, claims: &[String]) -> Value {
    let list = |items: &[Criteria]| -> Vec<Value> {
        items.iter().map(|c| backstage_form(c, claims)).collect()
    };
    let with_value = |key_name: &str, key: &str, value: &Option<String>| {
        let mut params = serde_json::Map::new();
        params.insert(key_name.to_owned(), json!(key));
        if let Some(value) = value {
            params.insert("value".to_owned(), json!(value));
        }
        Value::Object(params)
    };
    let rule = match tree {
        Criteria::AllOf(items) => return json!({ "allOf": list(items) }),
        Criteria::AnyOf(items) => return json!({ "anyOf": list(items) }),
        Criteria::Not(inner) => return json!({ "not": backstage_form(inner, claims) }),
        Criteria::Rule(rule) => rule,
    };
    let params = match rule {
        CatalogRule::IsEntityOwner {
            claims: Some(named),
        } => json!({ "claims": named }),
        CatalogRule::IsEntityOwner { claims: None } => json!({ "claims": claims }),
        CatalogRule::IsEntityKind { kinds } => json!({ "kinds": kinds }),
        CatalogRule::HasAnnotation { annotation, value } => {
            with_value("annotation", annotation, value)
        }
        CatalogRule::HasLabel { label } => json!({ "label": label }),
        CatalogRule::HasMetadata { key, value } | CatalogRule::HasSpec { key, value } => {
            with_value("key", key, value)
        }
    };
    json!({ "resourceType": CATALOG_ENTITY, "rule": rule.name(), "params": params })
}

/// Random criteria trees over a small vocabulary, so that trees share
/// leaves and subtrees and entities satisfy some of them.
fn criteria() -> impl Strategy<Value = Criteria> {
    let text = |options: &'static [&'static str]| {
        prop::sample::select(options.to_vec()).prop_map(str::to_owned)
    };
    let leaf = prop_oneof![
        prop::option::of(prop::collection::vec(
            text(&[
                "user:default/bob",
                "group:default/payments",
                "group:default/ops"
            ]),
            1..3
        ))
        .prop_map(|claims| CatalogRule::IsEntityOwner { claims }),
        prop::collection::vec(text(&["component", "API", "resource"]), 1..3)
            .prop_map(|kinds| CatalogRule::IsEntityKind { kinds }),
        (
            text(&["roster.dev/protected", "other"]),
            prop::option::of(text(&["true", "false"]))
        )
            .prop_map(|(annotation, value)| CatalogRule::HasAnnotation { annotation, value }),
        text(&["tier", "team"]).prop_map(|label| CatalogRule::HasLabel { label }),
        (
            text(&["tags", "name", "labels.tier"]),
            prop::option::of(text(&["docs", "gold", "payments-api"]))
        )
            .prop_map(|(key, value)| CatalogRule::HasMetadata { key, value }),
        (
            text(&["owner", "type", "lifecycle"]),
            prop::option::of(text(&["service", "production", "ops"]))
        )
            .prop_map(|(key, value)| CatalogRule::HasSpec { key, value }),
    ]
    .prop_map(Criteria::Rule);
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(Criteria::AllOf),
            prop::collection::vec(inner.clone(), 1..3).prop_map(Criteria::AnyOf),
            inner.prop_map(|c| Criteria::Not(Box::new(c))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// A tree in Backstage's JSON form, written straight to text or as a
    /// `Value`, is what Backstage expects, key order included.
    #[test]
    fn backstage_json_is_backstages_form(tree in criteria()) {
        let claims = vec!["user:default/bob".to_string(), "group:default/payments".to_string()];
        let expected = serde_json::to_string(&backstage_form(&tree, &claims)).unwrap();
        let direct = serde_json::to_string(&tree.backstage_json(&claims)).unwrap();
        let through_value = serde_json::to_string(&tree.to_backstage_json(&claims)).unwrap();
        prop_assert_eq!(&direct, &expected);
        prop_assert_eq!(&through_value, &expected);
    }

    /// Interned conditions, evaluated once each per decision, decide as the
    /// trees themselves do: a deny whose tree holds wins, else an allow
    /// whose tree holds allows.
    #[test]
    fn interned_conditions_evaluate_like_the_trees(
        allows in prop::collection::vec(criteria(), 1..4),
        denies in prop::collection::vec(criteria(), 0..3),
        name in prop::sample::select(ENTITIES.to_vec()),
    ) {
        let dir = directory();
        let rule = |effect: &str, c: &Criteria| json!({
            "permissions": ["catalog.entity.read"], "effect": effect, "conditions": c.to_document_json(),
        });
        let rules: Vec<Value> = allows.iter().map(|c| rule("allow", c))
            .chain(denies.iter().map(|c| rule("deny", c)))
            .collect();
        let document = json!({
            "roles": [{"name": "r", "rules": rules}],
            "assignments": [{"role": "r", "subject": "user:bob"}],
        });
        let policy = policy(&dir, &document.to_string());
        let bob = dir.users["bob"].clone();
        let entity = entity(name);
        let holds = |c: &Criteria| c.matches(&entity, &bob.ownership_refs);
        let expected = if denies.iter().any(holds) {
            Decision::Deny
        } else if allows.iter().any(holds) {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let verdict = policy.decide(&Principal::User(bob.clone()), &permission("catalog.entity.read"), Some(&entity), NOW);
        prop_assert_eq!(verdict.decision, expected);
        // The deciding rule is the first that holds, in rule order.
        let first = |list: &[Criteria], offset: usize| list.iter().position(holds).map(|i| i + offset);
        let deciding = match &verdict.reason {
            Reason::DeniedBy(hit) | Reason::AllowedBy(hit) => Some(hit.rule),
            _ => None,
        };
        prop_assert_eq!(deciding, first(&denies, allows.len()).or_else(|| first(&allows, 0)));
    }

    /// With no rules at all, every question is denied.
    #[test]
    fn no_rule_means_deny(perm in prop::sample::select(PERMS.to_vec()), who in prop::sample::select(vec!["alice", "bob", "carol", "dave", "nobody", "ghost"])) {
        let dir = directory();
        let policy = policy(&dir, "{}");
        prop_assert_eq!(decide(&dir, &policy, who, perm, None), "DENY");
    }

    /// An unconditional deny that covers the permission, in any role the
    /// user holds, decides DENY whatever else is allowed.
    #[test]
    fn deny_wins(case in case(), subject in 0..4usize) {
        let dir = directory();
        let mut with_deny = case.clone();
        with_deny.rules.push((0, "*", None, Effect::Deny, None));
        with_deny.assignments.insert(0, (subject, None));
        let policy = policy(&dir, &case_yaml(&with_deny));
        prop_assert_eq!(decide(&dir, &policy, "bob", case.perm, case.resource), "DENY");
    }

    /// Adding an allow rule never turns an ALLOW into something less, nor a
    /// CONDITIONAL into a DENY; with a resource, never ALLOW into DENY.
    #[test]
    fn adding_an_allow_never_removes_access(case in case(), extra in (0..4usize, prop::sample::select(PATTERNS.to_vec()), prop::option::of(0..CONDITIONS.len()))) {
        let dir = directory();
        let before = decide(&dir, &policy(&dir, &case_yaml(&case)), "bob", case.perm, case.resource);
        let mut more = case.clone();
        more.rules.push((extra.0, extra.1, None, Effect::Allow, extra.2));
        let after = decide(&dir, &policy(&dir, &case_yaml(&more)), "bob", case.perm, case.resource);
        prop_assert!(rank(&after) >= rank(&before), "before {before}, after {after}");
        if case.resource.is_some() {
            prop_assert!(before != "ALLOW" || after == "ALLOW");
        }
    }

    /// Roles assigned to a nested group reach its members exactly as if the
    /// user were directly in every group of the closure.
    #[test]
    fn nesting_resolves_like_flattening(case in case()) {
        let dir = directory();
        let policy = policy(&dir, &case_yaml(&case));
        let nested = dir.users["bob"].clone();
        let flat = DirectoryUser {
            groups: nested.groups.iter().map(|&(g, _)| (g, 1)).collect(),
            ..nested.clone()
        };
        let resource = case.resource.map(entity);
        let perm = permission(case.perm);
        let a = policy.decide(&Principal::User(nested), &perm, resource.as_ref(), NOW).decision;
        let b = policy.decide(&Principal::User(flat), &perm, resource.as_ref(), NOW).decision;
        prop_assert_eq!(a, b);
    }

    /// The order a user's groups are given in changes nothing: decisions
    /// and reasons are the same with the groups shuffled.
    #[test]
    fn group_order_changes_nothing(case in case(), seed in any::<u64>()) {
        let dir = directory();
        let policy = policy(&dir, &case_yaml(&case));
        let bob = dir.users["bob"].clone();
        let mut groups = bob.groups.clone();
        let mut state = seed | 1;
        for i in (1..groups.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            groups.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let shuffled = DirectoryUser { groups, ..bob.clone() };
        let resource = case.resource.map(entity);
        let perm = permission(case.perm);
        let a = policy.decide(&Principal::User(bob), &perm, resource.as_ref(), NOW);
        let b = policy.decide(&Principal::User(shuffled), &perm, resource.as_ref(), NOW);
        prop_assert_eq!(a, b);
    }

    /// A CONDITIONAL answer, evaluated on an entity, agrees with asking
    /// about that entity directly.
    #[test]
    fn conditional_agrees_with_asking_about_the_resource(case in case(), name in prop::sample::select(ENTITIES.to_vec())) {
        let dir = directory();
        let policy = policy(&dir, &case_yaml(&case));
        let bob = dir.users["bob"].clone();
        let perm = permission(case.perm);
        let entity = entity(name);
        let general = policy.decide(&Principal::User(bob.clone()), &perm, None, NOW).decision;
        let specific = policy.decide(&Principal::User(bob.clone()), &perm, Some(&entity), NOW).decision;
        let expected = match general {
            Decision::Conditional(criteria) => if criteria.matches(&entity, &bob.ownership_refs) { Decision::Allow } else { Decision::Deny },
            other => other,
        };
        prop_assert_eq!(specific, expected);
    }
}
