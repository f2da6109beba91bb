//! Access control's storage: the policy round trip, the revision guard,
//! the change record, and resolving a user with nested groups.

use std::collections::HashMap;

use roster_authz::{group_closure, Subject};
use roster_domain::{GroupId, MemberKind, UserId};
use roster_store::{AccessChange, AccessWrite, MembershipChange, StoreError, StoredAssignment};
use serde_json::json;
use uuid::Uuid;

use crate::{at, group, insert_users, m_group, m_user, touched, Ctx};

fn assignment(role: &str, subject: Subject) -> StoredAssignment {
    StoredAssignment {
        id: Uuid::new_v4(),
        role: role.to_owned(),
        subject,
        expires_at: Some(at(3600)),
        created_at: at(1),
        created_by: "token:ops".into(),
    }
}

fn change(action: &str, target: &str) -> AccessChange {
    AccessChange {
        actor: "token:ops".into(),
        action: action.into(),
        target: target.into(),
        before: None,
        after: Some(json!({"target": target})),
    }
}

pub(crate) async fn access_policy_round_trips_under_a_revision_guard(cx: Ctx) {
    let store = &*cx.store;
    let empty = store.access_snapshot().await.unwrap();
    assert_eq!(empty.revision, 0);
    assert!(empty.roles.is_empty() && empty.assignments.is_empty());

    let role = json!({"name": "ops", "rules": [{"permissions": ["*"], "effect": "allow"}]});
    let jane = UserId::new_random();
    let granted = assignment("ops", Subject::User(jane));
    let revision = store
        .write_access(
            0,
            vec![
                AccessWrite::PutRole {
                    name: "ops".into(),
                    document: role.clone(),
                },
                AccessWrite::AddAssignment(granted.clone()),
            ],
            vec![
                change("role.put", "ops"),
                change("assignment.add", "user:default/jane"),
            ],
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(revision, 1);
    assert_eq!(store.access_revision().await.unwrap(), 1);

    let snapshot = store.access_snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 1);
    assert_eq!(snapshot.roles.len(), 1);
    assert_eq!(snapshot.roles[0].name, "ops");
    assert_eq!(snapshot.roles[0].document, role);
    assert_eq!(snapshot.roles[0].updated_at, at(2));
    assert_eq!(snapshot.assignments, vec![granted.clone()]);

    // A write based on an old revision changes nothing.
    let stale = store
        .write_access(
            0,
            vec![AccessWrite::DeleteRole { name: "ops".into() }],
            vec![change("role.delete", "ops")],
            at(3),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { current }) if current.0 == 1),
        "{stale:?}"
    );
    assert_eq!(store.access_snapshot().await.unwrap(), snapshot);

    // Assigning the same role to the same subject again updates its expiry.
    let again = StoredAssignment {
        id: Uuid::new_v4(),
        expires_at: None,
        ..granted.clone()
    };
    store
        .write_access(1, vec![AccessWrite::AddAssignment(again)], vec![], at(4))
        .await
        .unwrap();
    let assignments = store.access_snapshot().await.unwrap().assignments;
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].id, granted.id);
    assert_eq!(assignments[0].expires_at, None);

    // Replace everything; another handle (a replica) sees the result.
    let group_grant = assignment("viewer", Subject::Group(GroupId::new_random()));
    store
        .write_access(
            2,
            vec![AccessWrite::ReplaceAll {
                roles: vec![],
                assignments: vec![group_grant.clone()],
            }],
            vec![change("policy.replace", "policy")],
            at(5),
        )
        .await
        .unwrap();
    let other = cx.reopen().await.unwrap();
    let seen = other.access_snapshot().await.unwrap();
    assert_eq!(seen.revision, 3);
    assert!(seen.roles.is_empty());
    assert_eq!(seen.assignments, vec![group_grant.clone()]);
    store
        .write_access(
            3,
            vec![AccessWrite::DeleteAssignment { id: group_grant.id }],
            vec![],
            at(6),
        )
        .await
        .unwrap();
    assert!(other
        .access_snapshot()
        .await
        .unwrap()
        .assignments
        .is_empty());

    // The change record, newest first, with the revision each made.
    let changes = store.access_changes(10).await.unwrap();
    let listed: Vec<(u64, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c.revision,
                c.change.action.as_str(),
                c.change.target.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (3, "policy.replace", "policy"),
            (1, "assignment.add", "user:default/jane"),
            (1, "role.put", "ops"),
        ]
    );
    assert_eq!(changes[0].at, at(5));
    assert_eq!(changes[0].change.actor, "token:ops");
    assert_eq!(changes[0].change.after, Some(json!({"target": "policy"})));
    assert_eq!(changes[0].change.before, None);
    assert_eq!(store.access_changes(1).await.unwrap().len(), 1);
}

pub(crate) async fn concurrent_policy_writes_apply_one_at_a_time(cx: Ctx) {
    let store = cx.store.clone();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write_access(
                    0,
                    vec![AccessWrite::PutRole {
                        name: format!("r{i}"),
                        document: json!({}),
                    }],
                    vec![],
                    at(i),
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(revision) => {
                assert_eq!(revision, 1);
                won += 1;
            }
            Err(StoreError::VersionMismatch { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.access_snapshot().await.unwrap().roles.len(), 1);
}

pub(crate) async fn access_subject_resolves_nested_groups_like_the_reference(cx: Ctx) {
    let store = &*cx.store;
    let users = insert_users(store, &["jane", "bob"]).await;
    let (jane, bob) = (&users[0], &users[1]);
    // g0 ⊃ g1 ⊃ g2 ⊃ g3 ⊃ g0 (a cycle), g4 ⊃ g2; jane in g2 and g4; bob in none.
    let groups: Vec<_> = (0..5).map(|i| group(&format!("g{i}"))).collect();
    let contains = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 2)];
    store.insert_group(&groups[3], &[]).await.unwrap();
    store
        .insert_group(&groups[2], &[m_group(&groups[3]), m_user(jane)])
        .await
        .unwrap();
    store
        .insert_group(&groups[1], &[m_group(&groups[2])])
        .await
        .unwrap();
    store
        .insert_group(&groups[0], &[m_group(&groups[1])])
        .await
        .unwrap();
    store
        .insert_group(&groups[4], &[m_group(&groups[2]), m_user(jane)])
        .await
        .unwrap();
    // Close the cycle: g3 ⊃ g0.
    let add_g0 = MembershipChange::Delta {
        add: vec![m_group(&groups[0])],
        remove: vec![],
    };
    store
        .update_group(
            &touched(&groups[3], at(10)),
            groups[3].meta.version,
            &add_g0,
        )
        .await
        .unwrap();
    store
        .claim_entity_names(
            MemberKind::User,
            &[
                (jane.id.as_uuid(), "jane".into()),
                (bob.id.as_uuid(), "bob".into()),
            ],
        )
        .await
        .unwrap();
    store
        .claim_entity_names(MemberKind::Group, &[(groups[2].id.as_uuid(), "g2".into())])
        .await
        .unwrap();

    let mut parents: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
    for (parent, child) in contains {
        parents
            .entry(groups[child].id)
            .or_default()
            .push(groups[parent].id);
    }
    for depth in [1, 2, 3, 10] {
        let subject = store.access_subject("jane", depth).await.unwrap().unwrap();
        assert_eq!(subject.id, jane.id);
        assert!(subject.active);
        let mut got: Vec<(GroupId, u32)> =
            subject.groups.iter().map(|(g, d, _)| (*g, *d)).collect();
        got.sort();
        let mut want = group_closure(&[groups[2].id, groups[4].id], &parents, depth);
        want.sort();
        assert_eq!(got, want, "depth {depth}");
        let g2 = subject
            .groups
            .iter()
            .find(|(g, _, _)| *g == groups[2].id)
            .unwrap();
        assert_eq!(g2.2.as_deref(), Some("g2"));
    }
    let bob_subject = store.access_subject("bob", 10).await.unwrap().unwrap();
    assert!(bob_subject.groups.is_empty());
    assert_eq!(store.access_subject("nobody", 10).await.unwrap(), None);

    assert_eq!(
        store
            .id_by_entity_name(MemberKind::User, "jane")
            .await
            .unwrap(),
        Some(jane.id.as_uuid())
    );
    assert_eq!(
        store
            .id_by_entity_name(MemberKind::Group, "g2")
            .await
            .unwrap(),
        Some(groups[2].id.as_uuid())
    );
    assert_eq!(
        store
            .id_by_entity_name(MemberKind::Group, "jane")
            .await
            .unwrap(),
        None
    );
}
