//! Integrations (issue #10, part 1): profiles, static segments and segment syncs
//! through the JSON API, the outbox entries each change appends for the syncs'
//! consumers, and the refusals (other tenants, viewers, hostile input).

use reqwest::Method;
use serde_json::{Value, json};
use sluice_store::api_keys::KeyCreator;
use sluice_store::ids::TenantId;
use sluice_store::integrations::{segment_stream, sync_consumer};
use sluice_store::outbox::OutboxEntry;
use sluice_tests::{THREE_ITEMS, TestApp, TestUser, on_both_backends, sqlite_source};

/// `method path` with `body`: the status and the JSON answer (null when none).
async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.api(method, key, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("API call");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let (status, answer) = call(app, key, method.clone(), path, body).await;
    assert_eq!(status, expected, "{method} {path}: {answer}");
    answer
}

/// Creates a segment named `name` through the API; returns its id.
async fn create_segment(app: &TestApp, key: &str, name: &str) -> String {
    let created = ok(
        app,
        key,
        Method::POST,
        "/api/v1/segments",
        Some(json!({"name": name})),
        201,
    )
    .await;
    created["id"].as_str().expect("a segment id").to_string()
}

/// The error's `field` of a 400 answer.
async fn refused_field(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Value,
) -> String {
    let (status, answer) = call(app, key, method.clone(), path, Some(body)).await;
    assert_eq!(status, 400, "{method} {path}: {answer}");
    answer["error"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn tenant_of(app: &TestApp, user: &TestUser) -> TenantId {
    app.store().tenant_by_name(&user.tenant).await.unwrap().id
}

/// A SQLite connection of `user`'s tenant.
async fn connection(app: &TestApp, user: &TestUser, key: &str) -> String {
    sqlite_source(&app.sqlite_dir_for(user).await.join("crm.db"), THREE_ITEMS).await;
    let created = ok(
        app,
        key,
        Method::POST,
        "/api/v1/connections",
        Some(json!({"name": "crm", "kind": "sqlite", "auth": {"params": {"path": "crm.db"}}})),
        201,
    )
    .await;
    created["id"].as_str().unwrap().to_string()
}

fn sync_body(name: &str, connection: &str, segment_ids: Value) -> Value {
    json!({
        "name": name,
        "connection_id": connection,
        "segment_ids": segment_ids,
        "templates": {
            "add": "INSERT INTO members (segment, profile) VALUES\n{for $lead = $batch}({segment_id}, {$lead.id}){autocomma}\n{end}",
            "remove": "DELETE FROM members WHERE segment = {segment_id} AND profile IN ({batch_in \"id\"})",
            "clear": "DELETE FROM members WHERE segment = {segment_id}",
        },
        "batch_size": 100,
        "batch_timeout_ms": 1000,
    })
}

/// The payloads `consumer` has yet to apply on `stream`.
async fn pending(app: &TestApp, tenant: &TenantId, consumer: &str, stream: &str) -> Vec<Value> {
    let pending = app
        .store()
        .pending_outbox(tenant, consumer, stream, 1_000)
        .await
        .expect("consumer exists");
    pending
        .entries
        .into_iter()
        .map(|e: OutboxEntry| e.payload)
        .collect()
}

on_both_backends!(
    profiles_are_upserted_listed_searched_and_paged,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Profiles").await;
        let key = app.api_key_for(&owner).await;

        let created = ok(
            &app,
            &key,
            Method::PUT,
            "/api/v1/profiles/crm-1",
            Some(json!({"fields": {"email": "a@x.test"}})),
            201,
        )
        .await;
        assert_eq!(created["fields"], json!({"email": "a@x.test"}));
        ok(
            &app,
            &key,
            Method::PUT,
            "/api/v1/profiles/crm-1",
            Some(json!({"fields": {"email": "b@x.test"}})),
            200,
        )
        .await;
        let shown = ok(&app, &key, Method::GET, "/api/v1/profiles/crm-1", None, 200).await;
        assert_eq!(shown["fields"], json!({"email": "b@x.test"}));

        let batch: Vec<Value> = (0..10_000)
            .map(|i| json!({"id": format!("bulk-{i:05}"), "fields": {"n": i}}))
            .collect();
        let outcome = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/profiles:batch",
            Some(json!({"profiles": batch})),
            200,
        )
        .await;
        assert_eq!(outcome, json!({"created": 10_000, "updated": 0}));

        // A bad entry refuses the whole batch, naming it.
        let bad =
            json!({"profiles": [{"id": "new-1"}, {"id": "new-2"}, {"id": "new-3"}, {"id": ""}]});
        assert_eq!(
            refused_field(&app, &key, Method::POST, "/api/v1/profiles:batch", bad).await,
            "profiles[3].id"
        );
        let none: Vec<Value> = app.api_get_json(&key, "/api/v1/profiles?q=new-").await;
        assert!(none.is_empty(), "nothing of a refused batch was saved");

        let response = app
            .api(Method::GET, &key, "/api/v1/profiles?q=bulk-0999&limit=4")
            .send()
            .await
            .unwrap();
        let link = response
            .headers()
            .get("link")
            .expect("a full page links the next")
            .to_str()
            .unwrap()
            .to_string();
        let page: Vec<Value> = response.json().await.unwrap();
        let ids: Vec<&str> = page.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["bulk-09990", "bulk-09991", "bulk-09992", "bulk-09993"]
        );
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        let page: Vec<Value> = app.api_get_json(&key, next).await;
        let ids: Vec<&str> = page.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["bulk-09994", "bulk-09995", "bulk-09996", "bulk-09997"]
        );
        let all: Vec<Value> = app.api_get_json(&key, "/api/v1/profiles?limit=500").await;
        assert_eq!(all.len(), 500);
        assert_eq!(all[0]["id"], "bulk-00000");

        // Any printable id can be addressed in a path, percent-encoded.
        for (encoded, id) in [
            ("a%2Fb", "a/b"),
            ("sp%20ace%2Bplus", "sp ace+plus"),
            ("%C3%A9t%C3%A9", "été"),
        ] {
            let path = format!("/api/v1/profiles/{encoded}");
            let created = ok(
                &app,
                &key,
                Method::PUT,
                &path,
                Some(json!({"fields": {}})),
                201,
            )
            .await;
            assert_eq!(created["id"], id);
            assert_eq!(
                ok(&app, &key, Method::GET, &path, None, 200).await["id"],
                id
            );
            ok(&app, &key, Method::DELETE, &path, None, 204).await;
        }
        ok(
            &app,
            &key,
            Method::DELETE,
            "/api/v1/profiles/crm-1",
            None,
            204,
        )
        .await;
        ok(&app, &key, Method::GET, "/api/v1/profiles/crm-1", None, 404).await;
        app.stop().await;
    }
);

on_both_backends!(
    segment_changes_append_their_entries_in_order,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Segments").await;
        let key = app.api_key_for(&owner).await;
        let tenant = tenant_of(&app, &owner).await;
        let connection = connection(&app, &owner, &key).await;
        // A sync of all segments consumes every segment's stream from its creation.
        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(sync_body("all", &connection, Value::Null)),
            201,
        )
        .await;
        let consumer = sync_consumer(
            &sluice_store::ids::SegmentSyncId::parse(sync["id"].as_str().unwrap()).unwrap(),
        );
        for (id, email) in [("a", "a@x.test"), ("b", "b@x.test"), ("c", "c@x.test")] {
            ok(
                &app,
                &key,
                Method::PUT,
                &format!("/api/v1/profiles/{id}"),
                Some(json!({"fields": {"email": email}})),
                201,
            )
            .await;
        }

        let first = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "VIP"})),
            201,
        )
        .await;
        assert_eq!(first["number"], 1);
        let second = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "Churned"})),
            201,
        )
        .await;
        assert_eq!(second["number"], 2);
        let (status, _) = call(
            &app,
            &key,
            Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "VIP"})),
        )
        .await;
        assert_eq!(status, 409);
        let id = first["id"].as_str().unwrap().to_string();
        let stream = segment_stream(&sluice_store::ids::SegmentId::parse(&id).unwrap());
        let members = format!("/api/v1/segments/{id}/members");

        let added = ok(
            &app,
            &key,
            Method::POST,
            &members,
            Some(json!({"profile_ids": ["a", "b"]})),
            200,
        )
        .await;
        assert_eq!(added["changed"], 2);
        let again = ok(
            &app,
            &key,
            Method::POST,
            &members,
            Some(json!({"profile_ids": ["a"]})),
            200,
        )
        .await;
        assert_eq!(again["changed"], 0, "already a member");
        let (status, unknown) = call(
            &app,
            &key,
            Method::POST,
            &members,
            Some(json!({"profile_ids": ["a", "ghost", "c"]})),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(unknown["error"]["field"], "profile_ids");
        assert!(
            unknown["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"ghost\""),
            "{unknown}"
        );
        let removed = ok(
            &app,
            &key,
            Method::DELETE,
            &members,
            Some(json!({"profile_ids": ["b", "c"]})),
            200,
        )
        .await;
        assert_eq!(removed["changed"], 1, "c was not a member");
        ok(
            &app,
            &key,
            Method::PATCH,
            &format!("/api/v1/segments/{id}"),
            Some(json!({"name": "VIP"})),
            200,
        )
        .await;
        ok(
            &app,
            &key,
            Method::PATCH,
            &format!("/api/v1/segments/{id}"),
            Some(json!({"name": "Gold"})),
            200,
        )
        .await;
        ok(
            &app,
            &key,
            Method::POST,
            &members,
            Some(json!({"profile_ids": ["c"]})),
            200,
        )
        .await;
        let listed: Vec<Value> = app.api_get_json(&key, &members).await;
        let ids: Vec<&str> = listed
            .iter()
            .map(|m| m["profile_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        let shown = ok(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segments/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(shown["members"], 2);
        ok(&app, &key, Method::DELETE, "/api/v1/profiles/c", None, 204).await;
        let cleared = ok(
            &app,
            &key,
            Method::POST,
            &format!("/api/v1/segments/{id}/clear"),
            None,
            200,
        )
        .await;
        assert_eq!(cleared["changed"], 1);
        let cleared = ok(
            &app,
            &key,
            Method::POST,
            &format!("/api/v1/segments/{id}/clear"),
            None,
            200,
        )
        .await;
        assert_eq!(cleared["changed"], 0, "already empty");
        ok(
            &app,
            &key,
            Method::DELETE,
            &format!("/api/v1/segments/{id}"),
            None,
            204,
        )
        .await;
        ok(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segments/{id}"),
            None,
            404,
        )
        .await;

        let segment = |name: &str| json!({"id": 1, "name": name});
        let profile = |id: &str, email: &str| json!({"id": id, "fields": {"email": email}});
        assert_eq!(
            pending(&app, &tenant, &consumer, &stream).await,
            vec![
                json!({"op": "upsert_segment", "segment": segment("VIP")}),
                json!({"op": "add", "segment": segment("VIP"), "profile": profile("a", "a@x.test")}),
                json!({"op": "add", "segment": segment("VIP"), "profile": profile("b", "b@x.test")}),
                json!({"op": "remove", "segment": segment("VIP"), "profile": profile("b", "b@x.test")}),
                json!({"op": "upsert_segment", "segment": segment("Gold")}),
                json!({"op": "add", "segment": segment("Gold"), "profile": profile("c", "c@x.test")}),
                json!({"op": "remove", "segment": segment("Gold"), "profile": profile("c", "c@x.test")}),
                json!({"op": "clear", "segment": segment("Gold")}),
                json!({"op": "delete_segment", "segment": segment("Gold")}),
            ]
        );
        app.stop().await;
    }
);

on_both_backends!(
    a_syncs_consumers_follow_its_scope_and_active_flag,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Scope").await;
        let key = app.api_key_for(&owner).await;
        let tenant = tenant_of(&app, &owner).await;
        let connection = connection(&app, &owner, &key).await;
        ok(
            &app,
            &key,
            Method::PUT,
            "/api/v1/profiles/p1",
            Some(json!({"fields": {}})),
            201,
        )
        .await;
        let s1 = create_segment(&app, &key, "one").await;
        let s2 = create_segment(&app, &key, "two").await;
        ok(
            &app,
            &key,
            Method::POST,
            &format!("/api/v1/segments/{s1}/members"),
            Some(json!({"profile_ids": ["p1"]})),
            200,
        )
        .await;
        let stream = |id: &str| segment_stream(&sluice_store::ids::SegmentId::parse(id).unwrap());

        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(sync_body("chosen", &connection, json!([s1]))),
            201,
        )
        .await;
        let sync_id = sync["id"].as_str().unwrap().to_string();
        let consumer = sync_consumer(&sluice_store::ids::SegmentSyncId::parse(&sync_id).unwrap());
        let on_s1 = app
            .store()
            .outbox_consumer(&tenant, &consumer, &stream(&s1))
            .await
            .expect("a consumer of its segment");
        assert!(!on_s1.paused);
        assert!(
            pending(&app, &tenant, &consumer, &stream(&s1))
                .await
                .is_empty(),
            "a new consumer starts at the stream's end"
        );
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream(&s2))
                .await
                .is_err()
        );

        let path = format!("/api/v1/segment-syncs/{sync_id}");
        let patched = ok(
            &app,
            &key,
            Method::PATCH,
            &path,
            Some(json!({"segment_ids": [s2]})),
            200,
        )
        .await;
        assert_eq!(patched["segment_ids"], json!([s2]));
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream(&s1))
                .await
                .is_err(),
            "left scope"
        );
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream(&s2))
                .await
                .is_ok()
        );

        ok(
            &app,
            &key,
            Method::PATCH,
            &path,
            Some(json!({"active": false})),
            200,
        )
        .await;
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream(&s2))
                .await
                .unwrap()
                .paused
        );
        ok(
            &app,
            &key,
            Method::POST,
            &format!("/api/v1/segments/{s2}/members"),
            Some(json!({"profile_ids": ["p1"]})),
            200,
        )
        .await;
        let paused = app
            .store()
            .pending_outbox(&tenant, &consumer, &stream(&s2), 10)
            .await
            .unwrap();
        assert_eq!(
            (paused.count, paused.entries.len()),
            (1, 0),
            "paused: kept, not handed out"
        );
        ok(
            &app,
            &key,
            Method::PATCH,
            &path,
            Some(json!({"active": true})),
            200,
        )
        .await;
        assert_eq!(
            pending(&app, &tenant, &consumer, &stream(&s2)).await.len(),
            1,
            "resumed where it stopped"
        );

        ok(
            &app,
            &key,
            Method::PATCH,
            &path,
            Some(json!({"segment_ids": null})),
            200,
        )
        .await;
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream(&s1))
                .await
                .is_ok(),
            "all segments"
        );
        let s3 = create_segment(&app, &key, "three").await;
        assert_eq!(
            pending(&app, &tenant, &consumer, &stream(&s3)).await,
            vec![json!({"op": "upsert_segment", "segment": {"id": 3, "name": "three"}})],
            "a segment created later is in an all-segments sync's scope from its first entry"
        );

        ok(
            &app,
            &key,
            Method::POST,
            &format!("{path}/resync"),
            None,
            202,
        )
        .await;
        let shown = ok(&app, &key, Method::GET, &path, None, 200).await;
        assert!(shown["resync_requested_at"].is_string());
        let stats = ok(&app, &key, Method::GET, &format!("{path}/stats"), None, 200).await;
        assert_eq!(
            (stats["succeeded"].as_i64(), stats["failed"].as_i64()),
            (Some(0), Some(0))
        );

        let (status, _) = call(
            &app,
            &key,
            Method::DELETE,
            &path,
            Some(json!({"confirm": "wrong"})),
        )
        .await;
        assert_eq!(status, 400);
        ok(
            &app,
            &key,
            Method::DELETE,
            &path,
            Some(json!({"confirm": "chosen"})),
            204,
        )
        .await;
        for s in [&s1, &s2, &s3] {
            assert!(
                app.store()
                    .outbox_consumer(&tenant, &consumer, &stream(s))
                    .await
                    .is_err(),
                "consumers go with the sync"
            );
        }
        app.stop().await;
    }
);

on_both_backends!(
    templates_with_syntax_errors_are_refused_with_line_and_column,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Templates").await;
        let key = app.api_key_for(&owner).await;
        let connection = connection(&app, &owner, &key).await;
        let mut body = sync_body("broken", &connection, Value::Null);
        body["templates"]["remove"] = json!(
            "DELETE FROM members\nWHERE segment = {segment_id} AND profile IN ({batch_in \"id\")"
        );
        let (status, answer) = call(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], "templates.remove");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("line 2, column"), "{message}");

        let mut body = sync_body("broken", &connection, Value::Null);
        body["templates"]["clear"] = json!("DELETE FROM members WHERE name = 'unterminated");
        assert_eq!(
            refused_field(&app, &key, Method::POST, "/api/v1/segment-syncs", body).await,
            "templates.clear"
        );
        let mut body = sync_body("broken", &connection, Value::Null);
        body["templates"]["add"] = json!("  ");
        assert_eq!(
            refused_field(&app, &key, Method::POST, "/api/v1/segment-syncs", body).await,
            "templates.add"
        );
        let syncs: Vec<Value> = app.api_get_json(&key, "/api/v1/segment-syncs").await;
        assert!(syncs.is_empty());
        app.stop().await;
    }
);

on_both_backends!(
    other_tenants_get_404_and_viewers_403_everywhere,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Owner").await;
        let key = app.api_key_for(&owner).await;
        let tenant = tenant_of(&app, &owner).await;
        let connection = connection(&app, &owner, &key).await;
        ok(
            &app,
            &key,
            Method::PUT,
            "/api/v1/profiles/mine",
            Some(json!({"fields": {}})),
            201,
        )
        .await;
        let segment = create_segment(&app, &key, "mine").await;
        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(sync_body("mine", &connection, Value::Null)),
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();

        let viewer_browser = app.add_user("viewer@integrations.test", "viewer").await;
        drop(viewer_browser);
        let viewer = app
            .store()
            .user_by_email(
                &tenant,
                &sluice_store::domain::Email::parse("viewer@integrations.test").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let (_, viewer_key) = app
            .store()
            .create_api_key(&tenant, "viewer's", KeyCreator::User(&viewer))
            .await
            .unwrap();
        let other = TestUser::unique("Other");
        app.signup_with(&TestApp::browser_like_client(), &other)
            .await;
        let other_key = app.api_key_for(&other).await;

        let members = json!({"profile_ids": ["mine"]});
        let foreign: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/api/v1/profiles/mine".into(), None),
            (Method::DELETE, "/api/v1/profiles/mine".into(), None),
            (Method::GET, format!("/api/v1/segments/{segment}"), None),
            (
                Method::PATCH,
                format!("/api/v1/segments/{segment}"),
                Some(json!({"name": "x"})),
            ),
            (Method::DELETE, format!("/api/v1/segments/{segment}"), None),
            (
                Method::GET,
                format!("/api/v1/segments/{segment}/members"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/segments/{segment}/members"),
                Some(members.clone()),
            ),
            (
                Method::DELETE,
                format!("/api/v1/segments/{segment}/members"),
                Some(members.clone()),
            ),
            (
                Method::POST,
                format!("/api/v1/segments/{segment}/clear"),
                None,
            ),
            (Method::GET, format!("/api/v1/segment-syncs/{sync}"), None),
            (
                Method::PATCH,
                format!("/api/v1/segment-syncs/{sync}"),
                Some(json!({"active": false})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/segment-syncs/{sync}"),
                Some(json!({"confirm": "mine"})),
            ),
            (
                Method::GET,
                format!("/api/v1/segment-syncs/{sync}/stats"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/segment-syncs/{sync}/resync"),
                None,
            ),
        ];
        for (method, path, body) in &foreign {
            let (status, answer) = call(&app, &other_key, method.clone(), path, body.clone()).await;
            assert_eq!(status, 404, "another tenant: {method} {path}: {answer}");
        }
        // Another tenant's connection and segment are not choosable.
        let field = refused_field(
            &app,
            &other_key,
            Method::POST,
            "/api/v1/segment-syncs",
            sync_body("theirs", &connection, Value::Null),
        )
        .await;
        assert_eq!(field, "connection_id");

        let mutating: Vec<(Method, String, Option<Value>)> = foreign
            .into_iter()
            .filter(|(method, _, _)| *method != Method::GET)
            .chain([
                (
                    Method::PUT,
                    "/api/v1/profiles/new".to_string(),
                    Some(json!({"fields": {}})),
                ),
                (
                    Method::POST,
                    "/api/v1/profiles:batch".to_string(),
                    Some(json!({"profiles": []})),
                ),
                (
                    Method::POST,
                    "/api/v1/segments".to_string(),
                    Some(json!({"name": "v"})),
                ),
                (
                    Method::POST,
                    "/api/v1/segment-syncs".to_string(),
                    Some(sync_body("v", &connection, Value::Null)),
                ),
            ])
            .collect();
        for (method, path, body) in &mutating {
            let (status, answer) =
                call(&app, &viewer_key, method.clone(), path, body.clone()).await;
            assert_eq!(status, 403, "viewer: {method} {path}: {answer}");
        }
        for path in [
            "/api/v1/profiles",
            "/api/v1/segments",
            "/api/v1/segment-syncs",
            "/api/v1/profiles/mine",
        ] {
            ok(&app, &viewer_key, Method::GET, path, None, 200).await;
        }
        ok(&app, &key, Method::GET, "/api/v1/profiles/mine", None, 200).await;
        app.stop().await;
    }
);

on_both_backends!(
    hostile_input_is_a_400_naming_the_path,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Hostile").await;
        let key = app.api_key_for(&owner).await;
        let connection = connection(&app, &owner, &key).await;
        let put = |id: &str| format!("/api/v1/profiles/{id}");

        let huge = json!({"fields": {"blob": "x".repeat(70 * 1024)}});
        assert_eq!(
            refused_field(&app, &key, Method::PUT, &put("p"), huge).await,
            "fields"
        );
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({"a": deep});
        }
        let field =
            refused_field(&app, &key, Method::PUT, &put("p"), json!({"fields": deep})).await;
        assert!(field.starts_with("fields.a.a."), "{field}");
        assert_eq!(
            refused_field(&app, &key, Method::PUT, &put("p"), json!({"fields": [1]})).await,
            "fields"
        );
        let very_deep = format!(
            "{{\"fields\": {}1{}}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        let response = app
            .api(Method::PUT, &key, &put("p"))
            .header("content-type", "application/json")
            .body(very_deep)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            400,
            "too deep for the parser is still the client's mistake"
        );
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::PUT,
                &put(&"x".repeat(256)),
                json!({"fields": {}})
            )
            .await,
            "id"
        );
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::PUT,
                &put("a%0Ab"),
                json!({"fields": {}})
            )
            .await,
            "id"
        );
        ok(&app, &key, Method::GET, &put("a%0Ab"), None, 404).await;

        let batch = json!({"profiles": [{"id": "ok"}, {"id": "ok2", "fields": {"blob": "x".repeat(70 * 1024)}}]});
        assert_eq!(
            refused_field(&app, &key, Method::POST, "/api/v1/profiles:batch", batch).await,
            "profiles[1].fields"
        );
        let batch = json!({"profiles": [{"id": 5}]});
        assert_eq!(
            refused_field(&app, &key, Method::POST, "/api/v1/profiles:batch", batch).await,
            "profiles[0].id"
        );
        let too_many: Vec<Value> = (0..10_001).map(|i| json!({"id": i.to_string()})).collect();
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                "/api/v1/profiles:batch",
                json!({"profiles": too_many})
            )
            .await,
            "profiles"
        );

        let segment = create_segment(&app, &key, "s").await;
        let members = format!("/api/v1/segments/{segment}/members");
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                &members,
                json!({"profile_ids": [1]})
            )
            .await,
            "profile_ids[0]"
        );
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                &members,
                json!({"profile_ids": []})
            )
            .await,
            "profile_ids"
        );
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                "/api/v1/segments",
                json!({"name": " "})
            )
            .await,
            "name"
        );
        ok(
            &app,
            &key,
            Method::GET,
            "/api/v1/segments/seg_nothex",
            None,
            404,
        )
        .await;

        let mut body = sync_body("s", &connection, json!(["seg_0123"]));
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                "/api/v1/segment-syncs",
                body.clone()
            )
            .await,
            "segment_ids[0]"
        );
        body["segment_ids"] = Value::Null;
        body["batch_size"] = json!(0);
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                "/api/v1/segment-syncs",
                body.clone()
            )
            .await,
            "batch_size"
        );
        body["batch_size"] = json!(10);
        body["batch_timeout_ms"] = json!(99);
        assert_eq!(
            refused_field(
                &app,
                &key,
                Method::POST,
                "/api/v1/segment-syncs",
                body.clone()
            )
            .await,
            "batch_timeout_ms"
        );
        body["batch_timeout_ms"] = json!(100);
        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(body),
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, answer) = call(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segment-syncs/{sync}/stats?from=yesterday"),
            None,
        )
        .await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (400, Some("from"))
        );
        let (status, answer) = call(&app, &key, Method::GET, &format!("/api/v1/segment-syncs/{sync}/stats?from=2026-01-01T00:00:00Z&to=2020-01-01T00:00:00Z"), None).await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (400, Some("from"))
        );
        app.stop().await;
    }
);

on_both_backends!(
    ten_thousand_members_change_at_once_and_a_connectors_deletion_takes_its_syncs,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Bulk").await;
        let key = app.api_key_for(&owner).await;
        let tenant = tenant_of(&app, &owner).await;
        let connection = connection(&app, &owner, &key).await;
        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(sync_body("all", &connection, Value::Null)),
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let consumer = sync_consumer(&sluice_store::ids::SegmentSyncId::parse(&sync).unwrap());
        let ids: Vec<String> = (0..10_000).map(|i| format!("p{i:05}")).collect();
        let batch: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "fields": {"id": id}}))
            .collect();
        ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/profiles:batch",
            Some(json!({"profiles": batch})),
            200,
        )
        .await;
        let segment = create_segment(&app, &key, "big").await;
        let stream = segment_stream(&sluice_store::ids::SegmentId::parse(&segment).unwrap());
        let members = format!("/api/v1/segments/{segment}/members");

        let added = ok(
            &app,
            &key,
            Method::POST,
            &members,
            Some(json!({"profile_ids": ids})),
            200,
        )
        .await;
        assert_eq!(added["changed"], 10_000);
        let pending = app
            .store()
            .pending_outbox(&tenant, &consumer, &stream, 10)
            .await
            .unwrap();
        assert_eq!(
            pending.count, 10_001,
            "the segment's creation and one add per member"
        );
        assert_eq!(pending.entries[1].payload["profile"]["id"], "p00000");
        assert_eq!(
            pending.entries[1].payload["profile"]["fields"],
            json!({"id": "p00000"})
        );
        let shown = ok(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segments/{segment}"),
            None,
            200,
        )
        .await;
        assert_eq!(shown["members"], 10_000);
        let removed = ok(
            &app,
            &key,
            Method::DELETE,
            &members,
            Some(json!({"profile_ids": ids})),
            200,
        )
        .await;
        assert_eq!(removed["changed"], 10_000);
        let pending = app
            .store()
            .pending_outbox(&tenant, &consumer, &stream, 10)
            .await
            .unwrap();
        assert_eq!(pending.count, 20_001);

        ok(
            &app,
            &key,
            Method::DELETE,
            &format!("/api/v1/connections/{connection}"),
            Some(json!({"confirm": "crm"})),
            204,
        )
        .await;
        ok(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segment-syncs/{sync}"),
            None,
            404,
        )
        .await;
        assert!(
            app.store()
                .outbox_consumer(&tenant, &consumer, &stream)
                .await
                .is_err(),
            "its consumers went with it"
        );
        app.stop().await;
    }
);

on_both_backends!(
    statistics_count_the_statements_a_sync_ran_in_the_range,
    |backend| async move {
        use sluice_store::integrations::{SyncBatch, SyncEvent, SyncOutcome};
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Stats").await;
        let key = app.api_key_for(&owner).await;
        let tenant = tenant_of(&app, &owner).await;
        let connection = connection(&app, &owner, &key).await;
        let sync = ok(
            &app,
            &key,
            Method::POST,
            "/api/v1/segment-syncs",
            Some(sync_body("stats", &connection, Value::Null)),
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let sync_id = sluice_store::ids::SegmentSyncId::parse(&sync).unwrap();
        let now = sluice_store::now();
        let batch = |outcome, rows, at, error| SyncBatch {
            sync_id: &sync_id,
            segment_id: None,
            event: SyncEvent::Add,
            entries: 10,
            rows_affected: rows,
            duration_ms: 5,
            outcome,
            error,
            failed_sql: error.map(|_| "INSERT INTO members VALUES (1, 'x')"),
            at,
        };
        let hour = chrono::Duration::hours(1);
        for b in [
            batch(SyncOutcome::Succeeded, 10, now - hour, None),
            batch(SyncOutcome::Succeeded, 7, now - hour * 2, None),
            batch(
                SyncOutcome::Failed,
                0,
                now - hour * 3,
                Some("no such table: members"),
            ),
            batch(
                SyncOutcome::Failed,
                0,
                now - hour * 48,
                Some("too old to count"),
            ),
        ] {
            app.store().record_sync_batch(&tenant, &b).await.unwrap();
        }
        let stats = ok(
            &app,
            &key,
            Method::GET,
            &format!("/api/v1/segment-syncs/{sync}/stats"),
            None,
            200,
        )
        .await;
        assert_eq!(
            (
                stats["succeeded"].as_i64(),
                stats["failed"].as_i64(),
                stats["rows_affected"].as_i64()
            ),
            (Some(2), Some(1), Some(17))
        );
        assert_eq!(stats["recent_errors"].as_array().unwrap().len(), 1);
        assert_eq!(
            stats["recent_errors"][0]["message"],
            "no such table: members"
        );
        assert_eq!(
            stats["recent_errors"][0]["sql"],
            "INSERT INTO members VALUES (1, 'x')"
        );
        let charted: i64 = stats["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["succeeded"].as_i64().unwrap() + b["failed"].as_i64().unwrap())
            .sum();
        assert_eq!(charted, 3);
        let from = (now - hour * 72).and_utc().to_rfc3339();
        let wide = ok(
            &app,
            &key,
            Method::GET,
            &format!(
                "/api/v1/segment-syncs/{sync}/stats?from={}",
                from.replace('+', "%2B")
            ),
            None,
            200,
        )
        .await;
        assert_eq!(wide["failed"], 2);
        app.stop().await;
    }
);
