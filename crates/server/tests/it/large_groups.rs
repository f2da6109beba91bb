//! A group with 100,000 members, as Okta and Entra drive it: adding or
//! removing one member works, touches only that member, and no answer or
//! read that does not ask for the member list carries it.
//!
//! Speed is not asserted here: `examples/large_group_bench.rs` measures what
//! one member change costs for groups of 10 to 100,000 members.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Member, MemberKind, Meta, User, UserAttributes,
    UserId, UserName,
};
use serde_json::{json, Value};

use crate::{Reply, TestApp};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The size the issue names. Built through the store directly (the HTTP
/// route would take minutes in a debug build).
const MEMBERS: usize = 100_000;

/// Inserts `count` users and a group holding all of them, straight into the
/// store. Returns the group's id and the members' ids in order.
async fn large_group(app: &TestApp, name: &str, count: usize) -> (String, Vec<String>) {
    let now = time::OffsetDateTime::now_utc();
    let users: Vec<User> = (0..count)
        .map(|i| User {
            id: UserId::new_random(),
            meta: Meta::new(now),
            attributes: UserAttributes::with_user_name(
                UserName::parse(format!("member{i:06}@example.com")).unwrap(),
            ),
        })
        .collect();
    // Concurrent inserts share commits in the SQLite writer.
    futures::stream::iter(&users)
        .map(|user| app.store.insert_user(user))
        .buffer_unordered(512)
        .try_collect::<()>()
        .await
        .unwrap();
    let members: Vec<Member> = users
        .iter()
        .map(|u| Member {
            id: u.id.as_uuid(),
            kind: MemberKind::User,
            display: None,
        })
        .collect();
    let group = Group {
        id: GroupId::new_random(),
        meta: Meta::new(now),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(name).unwrap(),
            external_id: None,
        },
    };
    app.store.insert_group(&group, &members).await.unwrap();
    (
        group.id.to_string(),
        users.iter().map(|u| u.id.to_string()).collect(),
    )
}

/// The group ids a user's `groups` attribute lists.
async fn groups_of(app: &TestApp, user: &str) -> Vec<String> {
    let reply = app.get(&format!("/Users/{user}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{:#}", reply.body);
    reply.body["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The member ids of a group, read over SCIM.
async fn member_ids(app: &TestApp, group: &str) -> HashSet<String> {
    let reply = app
        .get(&format!("/Groups/{group}?attributes=members"))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{:#}", reply.body);
    reply.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

/// A member PATCH's answer: 204, or a group without its member list, and
/// small either way; its ETag names the next version.
#[track_caller]
fn assert_small_answer(reply: &Reply, version: u64) {
    assert!(
        matches!(reply.status.as_u16(), 200 | 204),
        "{} {:#}",
        reply.status,
        reply.body
    );
    assert!(
        reply.body.get("members").is_none(),
        "the answer carries the member list"
    );
    assert!(
        reply.body.to_string().len() < 2_000,
        "a {}-byte answer",
        reply.body.to_string().len()
    );
    assert_eq!(reply.etag(), format!("W/\"{version}\""));
}

/// Whether `user` is a member, asked the way IdPs ask: a filter on the
/// group's members, without the member list in the answer.
async fn is_member_by_filter(app: &TestApp, group: &str, user: &str) -> bool {
    let filter = format!("id eq \"{group}\" and members[value eq \"{user}\"]");
    let query = serde_urlencoded::to_string([
        ("filter", filter.as_str()),
        ("excludedAttributes", "members"),
    ])
    .unwrap();
    let reply = app.get(&format!("/Groups?{query}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{:#}", reply.body);
    assert!(reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g.get("members").is_none()));
    reply.body["totalResults"] == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_changes_in_a_group_of_100_000() {
    let app = TestApp::spawn().await;
    let (group, members) = large_group(&app, "Everyone", MEMBERS).await;
    let newcomer = app.create_user("newcomer@example.com").await;
    let entra_newcomer = app.create_user("entra.newcomer@example.com").await;
    let (okta_leaver, entra_leaver, stayer) =
        (&members[0], &members[MEMBERS / 2], &members[MEMBERS - 1]);
    let mut expected: HashSet<String> = members.iter().cloned().collect();

    // Entra reads the group without members.
    let read = app
        .get(&format!("/Groups/{group}?excludedAttributes=members"))
        .await;
    assert_eq!(read.status.as_u16(), 200, "{:#}", read.body);
    assert!(read.body.get("members").is_none());
    assert_eq!(read.body["displayName"], "Everyone");
    assert_eq!(read.etag(), "W/\"1\"");

    // Okta adds a member.
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                   "value": [{"value": newcomer, "display": "newcomer@example.com"}]}]}),
        )
        .await;
    assert_small_answer(&reply, 2);
    expected.insert(newcomer.clone());
    assert_eq!(groups_of(&app, &newcomer).await, [group.as_str()]);
    assert!(is_member_by_filter(&app, &group, &newcomer).await);

    // Okta removes a member with a value filter.
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{okta_leaver}\"]")}]}),
        )
        .await;
    assert_small_answer(&reply, 3);
    expected.remove(okta_leaver);
    assert!(groups_of(&app, okta_leaver).await.is_empty());
    assert!(!is_member_by_filter(&app, &group, okta_leaver).await);

    // Entra adds and removes with value arrays.
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": [{"value": entra_newcomer}]}]}),
        )
        .await;
    assert_small_answer(&reply, 4);
    expected.insert(entra_newcomer.clone());
    assert_eq!(groups_of(&app, &entra_newcomer).await, [group.as_str()]);
    let reply = app
        .patch(
            &format!("/Groups/{group}"),
            json!({"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": entra_leaver}]}]}),
        )
        .await;
    assert_small_answer(&reply, 5);
    expected.remove(entra_leaver);
    assert!(groups_of(&app, entra_leaver).await.is_empty());

    // A client that wants the patched group back, but not its members.
    let reply = app
        .patch(
            &format!("/Groups/{group}?excludedAttributes=members"),
            json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Everyone Inc"}]}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{:#}", reply.body);
    assert_eq!(reply.body["displayName"], "Everyone Inc");
    assert_small_answer(&reply, 6);

    // Everyone else is untouched.
    assert_eq!(groups_of(&app, stayer).await, [group.as_str()]);
    assert!(is_member_by_filter(&app, &group, stayer).await);
    let actual = member_ids(&app, &group).await;
    assert_eq!(actual.len(), MEMBERS);
    assert!(
        actual == expected,
        "the member list is not the expected one"
    );

    // Lists of groups leave members out when asked to.
    let list = app.get("/Groups?excludedAttributes=members").await;
    assert_eq!(list.body["totalResults"], 1, "{:#}", list.body);
    assert!(list.body["Resources"][0].get("members").is_none());
    assert_eq!(list.body["Resources"][0]["displayName"], "Everyone Inc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_that_change_nothing_leave_a_large_group_alone() {
    let app = TestApp::spawn().await;
    let (group, members) = large_group(&app, "Big", 5_000).await;
    let outsider = app.create_user("outsider@example.com").await;

    // IdPs retry: adding a present member and removing an absent one succeed.
    for body in [
        json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": members[7]}]}]}),
        json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{outsider}\"]")}]}),
        json!({"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": outsider}]}]}),
    ] {
        let reply = app.patch(&format!("/Groups/{group}"), body.clone()).await;
        assert!(
            matches!(reply.status.as_u16(), 200 | 204),
            "{body}: {} {:#}",
            reply.status,
            reply.body
        );
        assert!(reply.body.get("members").is_none());
    }
    assert!(groups_of(&app, &outsider).await.is_empty());

    // A member that does not exist is rejected and changes nothing.
    let before = app
        .get(&format!("/Groups/{group}?attributes=members"))
        .await
        .body;
    app.patch(
        &format!("/Groups/{group}"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": outsider}]},
            {"op": "add", "path": "members", "value": [{"value": "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa"}]}]}),
    )
    .await
    .assert_scim_error(400, Some("invalidValue"));
    let after: Value = app
        .get(&format!("/Groups/{group}?attributes=members"))
        .await
        .body;
    assert_eq!(after, before);
    assert_eq!(after["members"].as_array().unwrap().len(), 5_000);
    assert!(groups_of(&app, &outsider).await.is_empty());
}
