//! The catalog client's HTTP behaviour against a small stand-in for
//! Backstage's catalog API, served on a real socket: paging with cursors,
//! `by-refs` chunks, errors in Backstage's shape, retries and timeouts.
//! The test against a real Backstage backend lives elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use roster_backstage::client::{
    CatalogClient, CatalogConfig, CatalogError, CatalogToken, Deletion,
};
use roster_backstage::reconcile::{
    apply_fixes, plan_fixes, reconcile, CatalogEntity, DirectorySnapshot, Outcome, ReconcileConfig,
    CATALOG_FIELDS,
};
use serde_json::{json, Value};

const TOKEN: &str = "static-test-token";

/// How the stand-in misbehaves.
#[derive(Default, Clone)]
struct Script {
    /// Answer this many requests with `fail_status` before behaving.
    fail_first: usize,
    fail_status: u16,
    retry_after: Option<&'static str>,
    /// Sleep this long before answering every request.
    delay: Duration,
    /// Answer `by-query` with a body that is not JSON.
    garbage: bool,
    /// Hand out the same cursor forever.
    stuck_cursor: bool,
}

struct Catalog {
    entities: Vec<Value>,
    script: Script,
    requests: Mutex<Vec<Recorded>>,
    bodies: Mutex<Vec<Value>>,
    cursors: Mutex<HashMap<String, (Vec<String>, usize)>>,
    served: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Vec<(String, String)>,
}

impl Recorded {
    fn params(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn backstage_error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({
        "error": {"name": name, "message": message},
        "request": {"method": "GET", "url": "/whatever"},
        "response": {"statusCode": status.as_u16()},
    });
    (status, Json(body)).into_response()
}

/// Records every request, checks the token, and applies the script.
async fn gatekeeper(State(catalog): State<Arc<Catalog>>, request: Request, next: Next) -> Response {
    let query = request.uri().query().map(url_pairs).unwrap_or_default();
    catalog.requests.lock().unwrap().push(Recorded {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query,
    });
    let n = catalog.served.fetch_add(1, Ordering::SeqCst);
    let script = &catalog.script;
    if !script.delay.is_zero() {
        tokio::time::sleep(script.delay).await;
    }
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return backstage_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Illegal token",
        );
    }
    if n < script.fail_first {
        let status = StatusCode::from_u16(script.fail_status).unwrap();
        let mut response = backstage_error(status, "Error", "the database is having a moment");
        if let Some(seconds) = script.retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.parse().unwrap());
        }
        return response;
    }
    next.run(request).await
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Backstage's flattened view of an entity: lowercase dotted keys, arrays
/// spread over the same key, relations as `relations.<type>`.
fn flatten(entity: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(prefix, item, out)),
            Value::String(s) => out.push((prefix.to_lowercase(), s.to_lowercase())),
            other => out.push((prefix.to_lowercase(), other.to_string().to_lowercase())),
        }
    }
    let mut out = Vec::new();
    walk("", entity, &mut out);
    for relation in entity["relations"].as_array().into_iter().flatten() {
        out.push((
            format!(
                "relations.{}",
                relation["type"].as_str().unwrap().to_lowercase()
            ),
            relation["targetRef"].as_str().unwrap().to_lowercase(),
        ));
    }
    out
}

/// One `filter` value: comma-separated conditions, all of which must hold.
fn matches(entity: &Value, filter: &str) -> bool {
    let flat = flatten(entity);
    filter
        .split(',')
        .all(|condition| match condition.split_once('=') {
            Some((key, value)) => flat
                .iter()
                .any(|(k, v)| *k == key.to_lowercase() && *v == value.to_lowercase()),
            None => flat.iter().any(|(k, _)| *k == condition.to_lowercase()),
        })
}

/// `fields=a.b,c`: keep only those paths.
fn project(entity: &Value, fields: Option<&str>) -> Value {
    let Some(fields) = fields else {
        return entity.clone();
    };
    let mut out = json!({});
    for field in fields.split(',') {
        let parts: Vec<&str> = field.split('.').collect();
        let mut source = entity;
        let mut found = true;
        for part in &parts {
            match source.get(part) {
                Some(next) => source = next,
                None => found = false,
            }
        }
        if found {
            let mut target = &mut out;
            for part in &parts[..parts.len() - 1] {
                target = target
                    .as_object_mut()
                    .unwrap()
                    .entry(part.to_string())
                    .or_insert(json!({}));
            }
            target[parts[parts.len() - 1]] = source.clone();
        }
    }
    out
}

async fn by_query(State(catalog): State<Arc<Catalog>>, RawQuery(query): RawQuery) -> Response {
    if catalog.script.garbage {
        return (StatusCode::OK, "<html>login page</html>").into_response();
    }
    let pairs = url_pairs(query.as_deref().unwrap_or_default());
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let limit: usize = get("limit").map_or(20, |l| l.parse().unwrap());
    let fields = get("fields");
    let (filters, offset) = match get("cursor") {
        Some(cursor) => {
            // Filters and order are baked into the cursor; being strict here
            // proves the client does not send them again.
            if get("filter").is_some() || get("orderField").is_some() {
                return backstage_error(
                    StatusCode::BAD_REQUEST,
                    "InputError",
                    "Cannot combine cursor with filter or orderField",
                );
            }
            match catalog.cursors.lock().unwrap().get(cursor) {
                Some(state) => state.clone(),
                None => {
                    return backstage_error(
                        StatusCode::BAD_REQUEST,
                        "InputError",
                        "Malformed cursor",
                    )
                }
            }
        }
        None => {
            let filters = pairs
                .iter()
                .filter(|(k, _)| k == "filter")
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>();
            (filters, 0)
        }
    };
    let mut selected: Vec<&Value> = catalog
        .entities
        .iter()
        .filter(|e| filters.is_empty() || filters.iter().any(|f| matches(e, f)))
        .collect();
    selected.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap().to_owned());
    let total = selected.len();
    let items: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| project(e, fields))
        .collect();
    let next = offset + items.len();
    let mut page_info = json!({});
    if next < total || catalog.script.stuck_cursor {
        let cursor = if catalog.script.stuck_cursor {
            "stuck".to_owned()
        } else {
            format!("c{next}")
        };
        catalog
            .cursors
            .lock()
            .unwrap()
            .insert(cursor.clone(), (filters, next));
        page_info["nextCursor"] = json!(cursor);
    }
    Json(json!({"items": items, "totalItems": total, "pageInfo": page_info})).into_response()
}

async fn by_refs(State(catalog): State<Arc<Catalog>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    catalog.bodies.lock().unwrap().push(body.clone());
    let fields = body["fields"].as_array().map(|f| {
        f.iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    });
    let items: Vec<Value> = body["entityRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let wanted = r.as_str().unwrap().to_lowercase();
            catalog
                .entities
                .iter()
                .find(|e| entity_ref(e) == wanted)
                .map_or(Value::Null, |e| project(e, fields.as_deref()))
        })
        .collect();
    Json(json!({ "items": items })).into_response()
}

fn entity_ref(e: &Value) -> String {
    format!(
        "{}:{}/{}",
        e["kind"].as_str().unwrap(),
        e["metadata"]["namespace"].as_str().unwrap_or("default"),
        e["metadata"]["name"].as_str().unwrap()
    )
    .to_lowercase()
}

async fn by_name(
    State(catalog): State<Arc<Catalog>>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let wanted = format!("{kind}:{namespace}/{name}").to_lowercase();
    match catalog.entities.iter().find(|e| entity_ref(e) == wanted) {
        Some(entity) => Json(entity.clone()).into_response(),
        None => backstage_error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!(
                "No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
            ),
        ),
    }
}

async fn delete_by_uid(State(catalog): State<Arc<Catalog>>, Path(uid): Path<String>) -> Response {
    catalog
        .bodies
        .lock()
        .unwrap()
        .push(json!({ "deleted": uid }));
    if uid == "raced-away" {
        return backstage_error(StatusCode::NOT_FOUND, "NotFoundError", "Entity not found");
    }
    if uid == "protected" {
        return backstage_error(StatusCode::FORBIDDEN, "NotAllowedError", "Unauthorized");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn refresh(State(catalog): State<Arc<Catalog>>, Json(body): Json<Value>) -> Response {
    catalog.bodies.lock().unwrap().push(body);
    StatusCode::OK.into_response()
}

async fn location_by_entity(
    State(catalog): State<Arc<Catalog>>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let wanted = format!("{kind}:{namespace}/{name}").to_lowercase();
    match catalog.entities.iter().find(|e| entity_ref(e) == wanted) {
        Some(_) => Json(json!({
            "id": "5d7c3a8e-loc",
            "type": "url",
            "target": "http://roster.test/backstage/catalog.yaml",
        }))
        .into_response(),
        None => backstage_error(StatusCode::NOT_FOUND, "NotFoundError", "Location not found"),
    }
}

struct Backstage {
    url: String,
    catalog: Arc<Catalog>,
}

impl Backstage {
    async fn start(entities: Vec<Value>, script: Script) -> Self {
        let catalog = Arc::new(Catalog {
            entities,
            script,
            requests: Mutex::default(),
            bodies: Mutex::default(),
            cursors: Mutex::default(),
            served: AtomicUsize::new(0),
        });
        let api = Router::new()
            .route("/entities/by-query", get(by_query))
            .route("/entities/by-refs", post(by_refs))
            .route("/entities/by-name/{kind}/{namespace}/{name}", get(by_name))
            .route("/entities/by-uid/{uid}", delete(delete_by_uid))
            .route("/refresh", post(refresh))
            .route(
                "/locations/by-entity/{kind}/{namespace}/{name}",
                get(location_by_entity),
            );
        let app = Router::new()
            .nest("/api/catalog", api)
            .layer(middleware::from_fn_with_state(catalog.clone(), gatekeeper))
            .with_state(catalog.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, catalog }
    }

    fn config(&self) -> CatalogConfig {
        CatalogConfig {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..CatalogConfig::new(&self.url, CatalogToken::new(TOKEN))
        }
    }

    fn client(&self) -> CatalogClient {
        CatalogClient::new(self.config()).unwrap()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.catalog.requests.lock().unwrap().clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.catalog.bodies.lock().unwrap().clone()
    }
}

fn user(name: &str, scim_id: Option<&str>) -> Value {
    let mut annotations = json!({
        "backstage.io/managed-by-location": "url:http://roster.test/backstage/catalog.yaml",
    });
    if let Some(id) = scim_id {
        annotations["roster.dev/scim-id"] = json!(id);
    }
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "annotations": annotations},
        "spec": {"profile": {"email": format!("{name}@acme.example"), "displayName": name}, "memberOf": []},
        "relations": [],
    })
}

fn component(name: &str, owner: &str, owner_ref: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner},
        "relations": [{"type": "ownedBy", "targetRef": owner_ref}],
    })
}

fn seven_users_and_three_components() -> Vec<Value> {
    let mut entities: Vec<Value> = (1..=7)
        .map(|n| user(&format!("user{n}"), Some(&format!("u{n}"))))
        .collect();
    entities.push(component("svc-a", "team-a", "group:default/team-a"));
    entities.push(component(
        "svc-b",
        "group:default/team-a",
        "group:default/team-a",
    ));
    entities.push(component("svc-c", "team-b", "group:default/team-b"));
    entities
}

#[tokio::test]
async fn pages_follow_the_cursor_and_repeat_only_fields_and_limit() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let client = CatalogClient::new(CatalogConfig {
        page_size: 3,
        ..backstage.config()
    })
    .unwrap();
    let users = client
        .list_entities(&["kind=user"], &["kind", "metadata.name"])
        .await
        .unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["user1", "user2", "user3", "user4", "user5", "user6", "user7"]
    );
    assert!(
        users.iter().all(|u| u.get("spec").is_none()),
        "every page is trimmed to the fields: {users:?}"
    );

    let requests = backstage.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let first = &requests[0];
    assert_eq!(first.path, "/api/catalog/entities/by-query");
    assert_eq!(first.params("filter"), ["kind=user"]);
    assert_eq!(first.params("orderField"), ["metadata.name,asc"]);
    assert_eq!(first.params("fields"), ["kind,metadata.name"]);
    assert_eq!(first.params("limit"), ["3"]);
    assert!(first.params("cursor").is_empty());
    for later in &requests[1..] {
        assert_eq!(later.params("cursor").len(), 1, "{later:?}");
        assert!(later.params("filter").is_empty(), "{later:?}");
        assert!(later.params("orderField").is_empty(), "{later:?}");
        assert_eq!(later.params("fields"), ["kind,metadata.name"]);
        assert_eq!(later.params("limit"), ["3"]);
    }
}

#[tokio::test]
async fn pages_can_be_read_one_at_a_time() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let client = CatalogClient::new(CatalogConfig {
        page_size: 4,
        ..backstage.config()
    })
    .unwrap();
    let mut pages = client.pages(&[], CATALOG_FIELDS);
    let mut sizes = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(pages.total_items(), Some(10));
    assert_eq!(pages.next_page().await.unwrap(), None, "stays done");
}

#[tokio::test]
async fn entities_owned_by_ors_spec_owner_and_relation() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let owned = backstage
        .client()
        .entities_owned_by("group:default/team-a", &["metadata.name"])
        .await
        .unwrap();
    let mut names: Vec<&str> = owned
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    // svc-a says `team-a` in spec.owner: only its relation finds it.
    assert_eq!(names, ["svc-a", "svc-b"]);
    let first = &backstage.requests()[0];
    assert_eq!(
        first.params("filter"),
        [
            "spec.owner=group:default/team-a",
            "relations.ownedBy=group:default/team-a"
        ]
    );
}

#[tokio::test]
async fn by_refs_goes_in_chunks_keeps_order_and_answers_none_for_unknown() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let client = CatalogClient::new(CatalogConfig {
        refs_chunk_size: 2,
        ..backstage.config()
    })
    .unwrap();
    let refs: Vec<String> = [
        "user:default/user3",
        "group:default/nobody",
        "user:default/USER1",
        "component:default/svc-c",
        "user:default/ghost",
    ]
    .map(str::to_owned)
    .to_vec();
    let found = client
        .entities_by_refs(&refs, &["metadata.name", "kind"])
        .await
        .unwrap();
    let names: Vec<Option<&str>> = found
        .iter()
        .map(|e| e.as_ref().map(|e| e["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [Some("user3"), None, Some("user1"), Some("svc-c"), None]
    );
    let bodies = backstage.bodies();
    assert_eq!(bodies.len(), 3, "5 refs in chunks of 2");
    assert_eq!(
        bodies[0]["entityRefs"],
        json!(["user:default/user3", "group:default/nobody"])
    );
    assert_eq!(bodies[0]["fields"], json!(["metadata.name", "kind"]));
    assert!(
        found[0].as_ref().unwrap().get("spec").is_none(),
        "fields apply"
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_not_retried() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let client = CatalogClient::new(CatalogConfig {
        token: CatalogToken::new("wrong"),
        ..backstage.config()
    })
    .unwrap();
    let error = client.list_entities(&["kind=user"], &[]).await.unwrap_err();
    assert!(
        matches!(error, CatalogError::Unauthorized { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("backend.auth.externalAccess"), "{text}");
    assert!(
        text.contains("Illegal token"),
        "Backstage's message is kept: {text}"
    );
    assert!(!text.contains("wrong"), "the token never shows: {text}");
    assert!(error.is_fatal());
    assert_eq!(backstage.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_they_pass() {
    let script = Script {
        fail_first: 2,
        fail_status: 500,
        ..Script::default()
    };
    let backstage = Backstage::start(seven_users_and_three_components(), script).await;
    let users = backstage
        .client()
        .list_entities(&["kind=user"], &[])
        .await
        .unwrap();
    assert_eq!(users.len(), 7);
    assert_eq!(
        backstage.requests().len(),
        3,
        "two failures, then the answer"
    );
}

#[tokio::test]
async fn rate_limits_are_retried_honouring_retry_after() {
    let script = Script {
        fail_first: 1,
        fail_status: 429,
        retry_after: Some("0"),
        ..Script::default()
    };
    let backstage = Backstage::start(seven_users_and_three_components(), script).await;
    let client = backstage.client();
    assert_eq!(
        client.delete_entity_by_uid("uid-user1").await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(backstage.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_give_up_after_max_attempts_with_backstages_message() {
    let script = Script {
        fail_first: usize::MAX,
        fail_status: 503,
        ..Script::default()
    };
    let backstage = Backstage::start(seven_users_and_three_components(), script).await;
    let client = CatalogClient::new(CatalogConfig {
        max_attempts: 3,
        ..backstage.config()
    })
    .unwrap();
    let error = client
        .refresh_entity("user:default/user1")
        .await
        .unwrap_err();
    match &error {
        CatalogError::Backstage {
            status,
            name,
            message,
            method,
            ..
        } => {
            assert_eq!(
                (*status, name.as_str(), message.as_str(), method.as_str()),
                (503, "Error", "the database is having a moment", "POST")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("see the Backstage backend's logs"),
        "{error}"
    );
    assert_eq!(backstage.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let backstage = Backstage::start(vec![], Script::default()).await;
    let error = backstage
        .client()
        .delete_entity_by_uid("protected")
        .await
        .unwrap_err();
    match &error {
        CatalogError::Backstage { status, name, .. } => {
            assert_eq!((*status, name.as_str()), (403, "NotAllowedError"))
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("accessRestrictions"), "{error}");
    assert_eq!(backstage.requests().len(), 1);
}

#[tokio::test]
async fn a_slow_backend_times_out_per_attempt() {
    let script = Script {
        delay: Duration::from_secs(3),
        ..Script::default()
    };
    let backstage = Backstage::start(vec![], script).await;
    let client = CatalogClient::new(CatalogConfig {
        request_timeout: Duration::from_millis(200),
        max_attempts: 2,
        ..backstage.config()
    })
    .unwrap();
    let started = Instant::now();
    let error = client.list_entities(&[], &[]).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, CatalogError::Timeout { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "two attempts of 200 ms took {elapsed:?}"
    );
    assert!(
        error.to_string().contains("did not answer within 200ms"),
        "{error}"
    );
    assert_eq!(backstage.requests().len(), 2);
}

#[tokio::test]
async fn a_closed_port_is_unreachable_after_retries() {
    // Bind, note the port, close it: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = CatalogClient::new(CatalogConfig {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        ..CatalogConfig::new(&url, CatalogToken::new(TOKEN))
    })
    .unwrap();
    let error = client
        .entity_by_name("user", "default", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::Unreachable { attempts: 2, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("cannot reach Backstage at http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("refused"),
        "the cause is shown: {text}"
    );
    assert!(error.is_fatal());
}

#[tokio::test]
async fn answers_that_are_not_the_catalog_api_are_invalid_responses() {
    let backstage = Backstage::start(
        vec![],
        Script {
            garbage: true,
            ..Script::default()
        },
    )
    .await;
    let error = backstage
        .client()
        .list_entities(&[], &[])
        .await
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::InvalidResponse { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not JSON"), "{error}");
}

#[tokio::test]
async fn a_cursor_that_comes_back_stops_paging() {
    let backstage = Backstage::start(
        seven_users_and_three_components(),
        Script {
            stuck_cursor: true,
            ..Script::default()
        },
    )
    .await;
    let error = backstage
        .client()
        .list_entities(&[], &[])
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the same nextCursor came back twice"),
        "{error}"
    );
    assert_eq!(backstage.requests().len(), 2);
}

#[tokio::test]
async fn by_name_by_uid_refresh_and_location() {
    let backstage = Backstage::start(seven_users_and_three_components(), Script::default()).await;
    let client = backstage.client();

    let found = client
        .entity_by_name("user", "default", "user2")
        .await
        .unwrap();
    assert_eq!(found.unwrap()["metadata"]["uid"], "uid-user2");
    assert_eq!(
        client
            .entity_by_name("user", "default", "nobody")
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        client.delete_entity_by_uid("uid-user1").await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        client.delete_entity_by_uid("raced-away").await.unwrap(),
        Deletion::AlreadyGone
    );

    client.refresh_entity("user:default/user3").await.unwrap();

    let location = client
        .location_of_entity("user", "default", "user3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        location.to_string(),
        "url:http://roster.test/backstage/catalog.yaml"
    );
    assert_eq!(location.id, "5d7c3a8e-loc");
    assert_eq!(
        client
            .location_of_entity("user", "default", "nobody")
            .await
            .unwrap(),
        None
    );

    let requests = backstage.requests();
    let lines: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /api/catalog/entities/by-name/user/default/user2",
            "GET /api/catalog/entities/by-name/user/default/nobody",
            "DELETE /api/catalog/entities/by-uid/uid-user1",
            "DELETE /api/catalog/entities/by-uid/raced-away",
            "POST /api/catalog/refresh",
            "GET /api/catalog/locations/by-entity/user/default/user3",
            "GET /api/catalog/locations/by-entity/user/default/nobody",
        ]
    );
    assert!(backstage
        .bodies()
        .contains(&json!({"entityRef": "user:default/user3"})));
}

#[tokio::test]
async fn path_segments_are_encoded() {
    let backstage = Backstage::start(vec![], Script::default()).await;
    let client = backstage.client();
    assert_eq!(
        client.delete_entity_by_uid("a/../../b c").await.unwrap(),
        Deletion::Deleted
    );
    let path = &backstage.requests()[0].path;
    assert_eq!(path, "/api/catalog/entities/by-uid/a%2F..%2F..%2Fb%20c");
}

#[tokio::test]
async fn a_404_from_outside_backstage_is_not_taken_for_a_missing_entity() {
    let backstage = Backstage::start(vec![], Script::default()).await;
    // A base URL with a wrong prefix: the stand-in's router answers a bare
    // 404, which must not read as "no such entity".
    let client = CatalogClient::new(CatalogConfig {
        base_url: format!("{}/wrong", backstage.url),
        ..backstage.config()
    })
    .unwrap();
    let error = client
        .entity_by_name("user", "default", "x")
        .await
        .unwrap_err();
    assert!(matches!(error, CatalogError::NotFound { .. }), "{error:?}");
    assert!(
        error.to_string().contains("Roster adds /api/catalog"),
        "{error}"
    );
}

#[tokio::test]
async fn reconcile_and_apply_against_the_stand_in() {
    // The catalog as the CLI will read it: trimmed pages, then reconciled,
    // planned and applied.
    let mut entities = seven_users_and_three_components();
    entities[6]["metadata"]["annotations"]["backstage.io/orphan"] = json!("true");
    let backstage = Backstage::start(entities, Script::default()).await;
    let client = backstage.client();
    let values = client.list_entities(&[], CATALOG_FIELDS).await.unwrap();
    let catalog: Vec<CatalogEntity> = values
        .iter()
        .map(|v| CatalogEntity::from_json(v).unwrap())
        .collect();
    assert_eq!(catalog.len(), 10);
    assert!(
        catalog.iter().all(|e| !e.uid.is_empty()),
        "the fields include the uid"
    );

    // A directory that lost user7 (orphaned) and user6 (still emitted).
    let directory = DirectorySnapshot {
        users: (1..=5)
            .map(|n| roster_backstage::reconcile::DirUser {
                id: format!("u{n}"),
                user_name: format!("user{n}"),
                entity_name: Some(format!("user{n}")),
                email: Some(format!("user{n}@acme.example")),
                active: true,
                ..Default::default()
            })
            .collect(),
        groups: vec![],
        handovers: vec![],
    };
    let report = reconcile(&directory, &catalog, &ReconcileConfig::default());
    let plan = plan_fixes(&report);
    let planned: Vec<String> = plan.iter().map(ToString::to_string).collect();
    assert_eq!(
        planned,
        [
            "delete user:default/user6 (uid uid-user6)",
            "delete user:default/user7 (uid uid-user7)"
        ]
    );
    let applied = apply_fixes(&client, &plan).await;
    assert!(
        applied.iter().all(|a| a.outcome == Outcome::Deleted),
        "{applied:?}"
    );
    let deleted: Vec<Value> = backstage
        .bodies()
        .into_iter()
        .filter(|body| body.get("deleted").is_some())
        .collect();
    assert_eq!(
        deleted,
        [
            json!({"deleted": "uid-user6"}),
            json!({"deleted": "uid-user7"})
        ]
    );
}
