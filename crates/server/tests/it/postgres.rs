//! The same server on PostgreSQL, and two replicas sharing one database.

use reqwest::StatusCode;
use serde_json::json;

use crate::TestApp;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn two_replicas_on_one_postgres_database_serve_the_same_directory() {
    let Some((first, url)) = TestApp::spawn_postgres().await else {
        return;
    };
    let store = roster_store::open(&url).await.unwrap();
    let second = TestApp::spawn_with(store, crate::TempDir::new()).await;

    // Written on one replica, read and changed on the other.
    let alice = first.create_user("alice@example.com").await;
    let group = first.create_group("Platform", &[&alice]).await;
    let read = second.get(&format!("/Users/{alice}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["groups"][0]["value"], group.as_str());
    let deactivated = second
        .patch(&format!("/Users/{alice}"), json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}))
        .await;
    assert_eq!(deactivated.body["active"], false);
    assert_eq!(
        first.get(&format!("/Users/{alice}")).await.body["active"],
        false
    );

    // Uniqueness holds across replicas.
    second
        .post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ALICE@example.com"}))
        .await
        .assert_scim_error(409, Some("uniqueness"));

    // A version pinned on one replica is checked on the other.
    let etag = first.get(&format!("/Groups/{group}")).await.etag();
    second
        .patch(&format!("/Groups/{group}"), json!({"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": alice}]}]}))
        .await;
    let stale = first
        .scim_with(
            reqwest::Method::DELETE,
            &format!("/Groups/{group}"),
            None,
            &[("if-match", etag.as_str())],
        )
        .await;
    stale.assert_scim_error(412, None);

    // Tokens live in the database: each replica accepts the other's.
    let reply = crate::to_reply(
        second
            .client
            .get(format!("{}/Users", second.scim))
            .bearer_auth(&first.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["totalResults"], 1);
}
