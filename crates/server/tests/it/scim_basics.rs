//! SCIM behaviour as a client sees it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::TestApp;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[tokio::test]
async fn requests_without_a_valid_token_get_a_scim_401() {
    let app = TestApp::spawn().await;
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = app.client.get(format!("{}/Users", app.scim));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let reply = crate::to_reply(req.send().await.unwrap()).await;
        reply.assert_scim_error(401, None);
        assert!(reply.headers.get("www-authenticate").is_some());
    }
    // Unknown SCIM paths and methods reveal nothing without a token...
    for (method, path) in [
        (Method::GET, "/Nope"),
        (Method::POST, "/ServiceProviderConfig"),
    ] {
        let anonymous = app
            .client
            .request(method.clone(), format!("{}{path}", app.scim))
            .send()
            .await
            .unwrap();
        crate::to_reply(anonymous)
            .await
            .assert_scim_error(401, None);
        // ...and are SCIM errors with one.
        let status = if path == "/Nope" { 404 } else { 405 };
        app.scim(method, path, None)
            .await
            .assert_scim_error(status, None);
    }
}

#[tokio::test]
async fn a_catalog_feed_token_cannot_call_scim() {
    let app = TestApp::spawn().await;
    let feed = crate::create_token(
        &*app.store,
        "backstage",
        roster_domain::TokenScope::CatalogFeed,
    )
    .await;
    let reply = crate::to_reply(
        app.client
            .get(format!("{}/Users", app.scim))
            .bearer_auth(feed)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_scim_error(403, None);
}

#[tokio::test]
async fn user_lifecycle_create_read_replace_deactivate_delete() {
    let app = TestApp::spawn().await;
    let created = app
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "Jane.Doe@example.com", "externalId": "okta-1",
                   "name": {"givenName": "Jane", "familyName": "Doe"},
                   "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
                   "password": "never-stored", "active": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["userName"], "Jane.Doe@example.com");
    assert!(created.body.get("password").is_none());
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(
        created.body["meta"]["location"],
        format!("{}/Users/{id}", app.scim)
    );
    assert_eq!(
        created.headers["location"],
        format!("{}/Users/{id}", app.scim).as_str()
    );
    assert_eq!(created.etag(), "W/\"1\"");
    assert_eq!(created.headers["content-type"], "application/scim+json");

    let read = app.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["externalId"], "okta-1");

    // Okta's profile update: GET then full PUT.
    let mut body = read.body.clone();
    body["name"]["givenName"] = json!("Janet");
    let replaced = app.put(&format!("/Users/{id}"), body).await;
    assert_eq!(replaced.status, StatusCode::OK, "{:#}", replaced.body);
    assert_eq!(replaced.body["name"]["givenName"], "Janet");
    assert_eq!(replaced.etag(), "W/\"2\"");

    // Okta deactivation: path-less replace.
    let deactivated = app
        .patch(&format!("/Users/{id}"), json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]}))
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{:#}", deactivated.body);
    assert_eq!(deactivated.body["active"], false);
    // Deactivated users stay readable and findable.
    let found = app
        .get("/Users?filter=userName%20eq%20%22jane.doe@example.com%22")
        .await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["active"], false);

    let deleted = app.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
    app.delete(&format!("/Users/{id}"))
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn user_names_are_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    app.create_user("alice@example.com").await;
    let dup = app
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "ALICE@example.com"}),
        )
        .await;
    dup.assert_scim_error(409, Some("uniqueness"));
    let other = app.create_user("bob@example.com").await;
    let rename = app
        .patch(&format!("/Users/{other}"), json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "Alice@Example.com"}]}))
        .await;
    rename.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(
        app.get(&format!("/Users/{other}")).await.body["userName"],
        "bob@example.com"
    );
}

#[tokio::test]
async fn etags_give_304_and_412() {
    let app = TestApp::spawn().await;
    let id = app.create_user("etag@example.com").await;
    let read = app.get(&format!("/Users/{id}")).await;
    let etag = read.etag();
    let cached = app
        .scim_with(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    let stale = app
        .scim_with(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "E"}]})),
            &[("if-match", "W/\"99\"")],
        )
        .await;
    stale.assert_scim_error(412, None);
    let fresh = app
        .scim_with(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "E"}]})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{:#}", fresh.body);
    assert_ne!(fresh.etag(), etag);
    let again = app
        .scim_with(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn filters_paging_and_projection() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        app.post(
            "/Users",
            json!({"schemas": [USER], "userName": format!("user{i:02}@example.com"),
                   "title": if i % 2 == 0 { "Engineer" } else { "Manager" },
                   "emails": [{"value": format!("user{i:02}@example.com"), "type": "work"}]}),
        )
        .await;
    }
    let page = app.get("/Users?startIndex=11&count=10").await;
    assert_eq!(page.body["totalResults"], 25);
    assert_eq!(page.body["startIndex"], 11);
    assert_eq!(page.body["itemsPerPage"], 10);
    assert_eq!(page.body["Resources"][0]["userName"], "user10@example.com");

    let filtered = app
        .get("/Users?filter=title%20eq%20%22engineer%22%20and%20userName%20sw%20%22user1%22")
        .await;
    assert_eq!(filtered.body["totalResults"], 5, "{:#}", filtered.body);

    let value_path = app
        .get("/Users?filter=emails%5Btype%20eq%20%22work%22%20and%20value%20co%20%22user07%22%5D")
        .await;
    assert_eq!(value_path.body["totalResults"], 1, "{:#}", value_path.body);

    let none = app.get("/Users?filter=userName%20eq%20%22nobody%22").await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.body["totalResults"], 0);
    assert_eq!(none.body["Resources"], json!([]));

    let sorted = app
        .get("/Users?sortBy=userName&sortOrder=descending&count=1")
        .await;
    assert_eq!(
        sorted.body["Resources"][0]["userName"],
        "user24@example.com"
    );

    let projected = app.get("/Users?attributes=userName&count=1").await;
    let keys: Vec<&String> = projected.body["Resources"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["schemas", "id", "userName"]);

    app.get("/Users?filter=userName%20eq")
        .await
        .assert_scim_error(400, Some("invalidFilter"));
    app.get("/Users?filter=nosuch%20eq%20%22x%22")
        .await
        .assert_scim_error(400, Some("invalidFilter"));

    let searched = app
        .post("/Users/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "title eq \"Manager\"", "count": 3}))
        .await;
    assert_eq!(searched.status, StatusCode::OK, "{:#}", searched.body);
    assert_eq!(searched.body["totalResults"], 12);
    assert_eq!(searched.body["itemsPerPage"], 3);
}

#[tokio::test]
async fn groups_members_and_entra_excluded_members() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let group = app.create_group("Payments Core", &[&alice]).await;

    let with_members = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(with_members.body["members"][0]["value"], alice.as_str());
    assert_eq!(with_members.body["members"][0]["type"], "User");
    assert_eq!(
        with_members.body["members"][0]["$ref"],
        format!("{}/Users/{alice}", app.scim).as_str()
    );
    let without = app
        .get(&format!("/Groups/{group}?excludedAttributes=members"))
        .await;
    assert!(without.body.get("members").is_none());
    assert_eq!(without.body["displayName"], "Payments Core");

    // Entra: add by value array, remove by value array.
    let added = app
        .patch(&format!("/Groups/{group}"), json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": [{"value": bob}]}]}))
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{:#}", added.body);
    let alice_groups = app.get(&format!("/Users/{alice}")).await;
    assert_eq!(alice_groups.body["groups"][0]["value"], group.as_str());
    assert_eq!(alice_groups.body["groups"][0]["display"], "Payments Core");

    let removed = app
        .patch(&format!("/Groups/{group}"), json!({"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": alice}]}]}))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:#}", removed.body);
    // Okta: remove with a filter path.
    let okta = app
        .patch(&format!("/Groups/{group}"), json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]}))
        .await;
    assert_eq!(okta.status, StatusCode::NO_CONTENT, "{:#}", okta.body);
    assert_eq!(
        app.get(&format!("/Groups/{group}")).await.body["members"],
        json!([])
    );

    // A member that does not exist is a 400 and changes nothing.
    let before = app.snapshot().await;
    app.patch(
        &format!("/Groups/{group}"),
        json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa"}]}]}),
    )
    .await
    .assert_scim_error(400, Some("invalidValue"));
    assert_eq!(app.snapshot().await, before);

    let filter = app
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22payments%20core%22")
        .await;
    assert_eq!(filter.body["totalResults"], 1);
    assert!(filter.body["Resources"][0].get("members").is_none());

    app.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "payments core"}))
        .await
        .assert_scim_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn deleting_a_user_removes_its_memberships() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice@example.com").await;
    let group = app.create_group("Team", &[&alice]).await;
    let before = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(
        app.delete(&format!("/Users/{alice}")).await.status,
        StatusCode::NO_CONTENT
    );
    let after = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(after.body["members"], json!([]));
    assert_ne!(after.etag(), before.etag());
}

#[tokio::test]
async fn discovery_describes_what_is_supported() {
    let app = TestApp::spawn().await;
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], true);
    assert_eq!(spc.body["bulk"]["maxOperations"], 50);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["changePassword"]["supported"], false);
    let types = app.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    let user_type = app.get("/ResourceTypes/User").await;
    assert_eq!(
        user_type.body["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    let schemas = app.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user_schema = app.get(&format!("/Schemas/{USER}")).await;
    assert_eq!(user_schema.body["attributes"][0]["name"], "userName");
    app.get("/Schemas?filter=id%20eq%20%22x%22")
        .await
        .assert_scim_error(403, None);
    app.get("/Me").await.assert_scim_error(501, None);
}

#[tokio::test]
async fn bulk_with_bulk_id_references_and_fail_on_errors() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                   "Operations": [
                     {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:u"}]}},
                     {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [USER], "userName": "alice"}},
                     {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": "ALICE"}}
                   ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let ops = reply.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3);
    let by_id = |id: &str| ops.iter().find(|o| o["bulkId"] == id).unwrap().clone();
    assert_eq!(by_id("u")["status"], "201");
    assert_eq!(by_id("g")["status"], "201");
    assert_eq!(by_id("dup")["status"], "409");
    assert_eq!(by_id("dup")["response"]["scimType"], "uniqueness");
    let group_location = by_id("g")["location"].as_str().unwrap().to_string();
    let group_id = group_location.rsplit('/').next().unwrap();
    let group = app.get(&format!("/Groups/{group_id}")).await;
    let alice = app
        .get("/Users?filter=userName%20eq%20%22alice%22")
        .await
        .body["Resources"][0]["id"]
        .clone();
    assert_eq!(group.body["members"][0]["value"], alice);

    let stopped = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
                   "Operations": [
                     {"method": "DELETE", "path": "/Users/nope"},
                     {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER], "userName": "never"}}
                   ]}),
        )
        .await;
    assert_eq!(stopped.body["Operations"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/Users?filter=userName%20eq%20%22never%22")
            .await
            .body["totalResults"],
        0
    );
}

#[tokio::test]
async fn malformed_bodies_get_scim_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_user("stable@example.com").await;
    let before = app.snapshot().await;
    for (method, path, body, status, scim_type) in [
        (
            Method::POST,
            "/Users".to_string(),
            "{not json",
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".to_string(),
            "[]",
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".to_string(),
            "{\"userName\": 5}",
            400,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            "{\"Operations\": []}",
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PUT,
            format!("/Users/{id}"),
            "{\"userName\": null}",
            400,
            Some("invalidValue"),
        ),
        (
            Method::PUT,
            format!("/Users/{id}"),
            "{\"id\": \"other\", \"userName\": \"x\"}",
            400,
            Some("mutability"),
        ),
        (
            Method::POST,
            "/Groups".to_string(),
            "{\"displayName\": \"\"}",
            400,
            Some("invalidValue"),
        ),
    ] {
        let reply = crate::to_reply(
            app.client
                .request(method.clone(), format!("{}{path}", app.scim))
                .bearer_auth(&app.token)
                .header("content-type", "application/scim+json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_scim_error(status, scim_type);
    }
    let huge = "x".repeat(2 * 1024 * 1024);
    let reply = app.post("/Users", json!({"userName": huge})).await;
    reply.assert_scim_error(413, None);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = TestApp::spawn().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.headers().get("x-request-id").is_some());
    app.get("/Users").await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("roster_http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn root_search_covers_users_and_groups() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice@example.com").await;
    let group = app.create_group("Platform", &[&alice]).await;
    let search = |body| async { app.post("/.search", body).await };
    let all = search(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": ["id"]})).await;
    assert_eq!(all.status, StatusCode::OK, "{:#}", all.body);
    assert_eq!(all.body["totalResults"], 2);
    let ids: Vec<&str> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [alice.as_str(), group.as_str()]);
    // A filter on a user-only attribute leaves groups out.
    let users = search(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"ali\""})).await;
    assert_eq!(users.body["totalResults"], 1);
    assert_eq!(users.body["Resources"][0]["id"], alice.as_str());
    search(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "bogus eq 1"}))
        .await
        .assert_scim_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn group_patch_returns_the_group_when_attributes_are_requested() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice@example.com").await;
    let group = app.create_group("Platform", &[]).await;
    let reply = app
        .patch(
            &format!("/Groups/{group}?attributes=members"),
            json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": alice}]}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["members"][0]["value"], alice.as_str());
    assert!(reply.body.get("displayName").is_none());
    assert_eq!(reply.etag(), "W/\"2\"");
}
