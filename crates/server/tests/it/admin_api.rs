//! The admin API's authentication and its answers when Backstage is not
//! reachable or not configured.

use reqwest::StatusCode;
use roster_domain::TokenScope;

use crate::TestApp;

#[tokio::test]
async fn reconcile_needs_an_admin_token() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/reconcile", app.base);
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["status"], 401);
    // A SCIM token does not open the admin API.
    let scim = app
        .client
        .get(&url)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), StatusCode::FORBIDDEN);
    // Unknown admin paths reveal nothing without a token either.
    let unknown = app
        .client
        .get(format!("{}/api/v1/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reconcile_without_backstage_configured_is_a_clear_503() {
    let app = TestApp::spawn().await;
    let admin = crate::create_token(&*app.store, "ops", TokenScope::Admin).await;
    let reply = app
        .client
        .get(format!("{}/api/v1/reconcile", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backstage.url"),
        "{body}"
    );
}
