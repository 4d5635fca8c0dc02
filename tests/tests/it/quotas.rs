//! Operator limits on what one tenant may ask of a shared instance, and lists
//! that never grow without bound: runs in flight, inboxes, preview cells, batch
//! bytes, paged lists and history retention — each against the real server.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{Backend, Receiver, TestApp, TestUser, sqlite_source};
use std::time::Duration;

/// A SQLite connector on `items.db` in the tenant's folder, filled by `sql`.
async fn items_connector(app: &TestApp, user: &TestUser, key: &str, sql: &str) -> String {
    sqlite_source(&app.sqlite_dir_for(user).await.join("items.db"), sql).await;
    let created: Value = app
        .api_post_json(
            key,
            "/api/v1/connections",
            &json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
        )
        .await;
    created["id"].as_str().expect("connector id").to_string()
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .api(Method::POST, key, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// With one run in flight allowed, a second "run now" answers 429 (and says
/// why), while an API-created dynamic command and a direct-URL call are queued
/// rather than refused, and start only once the running one has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_beyond_the_tenants_limit_wait_or_are_refused_never_run_at_once() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.max_runs_in_flight_per_tenant = 1;
    })
    .await;
    let user = app.signup("InFlight").await;
    let key = app.api_key_for(&user).await;
    let connector = items_connector(&app, &user, &key, sluice_tests::THREE_ITEMS).await;
    let receiver = Receiver::start().await;
    receiver.respond_after(Duration::from_secs(2));
    let sql = "SELECT id, label FROM items ORDER BY id";
    let command = |name: &str| json!({"connection_id": connector, "name": name, "kind": "static", "sql": sql, "callback": {"url": receiver.url}, "schedule": "0 0 0 1 1 *"});
    let (_, slow) = post(&app, &key, "/api/v1/commands", command("slow")).await;
    let (_, other) = post(&app, &key, "/api/v1/commands", command("other")).await;
    let slow = slow["id"].as_str().unwrap().to_string();
    let other = other["id"].as_str().unwrap().to_string();

    let (status, _) = post(
        &app,
        &key,
        &format!("/api/v1/commands/{slow}/run"),
        json!({}),
    )
    .await;
    assert_eq!(status, 202);
    let (status, refused) = post(
        &app,
        &key,
        &format!("/api/v1/commands/{other}/run"),
        json!({}),
    )
    .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "runs_in_flight", "{refused}");
    assert_eq!(refused["error"]["limit"], "max_runs_in_flight", "{refused}");

    let (status, dynamic) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "kind": "dynamic", "sql": sql, "callback": {"url": receiver.url}, "params": {}})).await;
    assert_eq!(status, 201, "{dynamic}");
    assert_eq!(
        dynamic["run_id"],
        Value::Null,
        "queued, not started: {dynamic}"
    );
    assert_eq!(dynamic["status"], "READY", "{dynamic}");
    let page = format!("/commands/{slow}");
    let made = app
        .submit(&app.client, &page, &format!("{page}/direct-url"), &[])
        .await;
    assert_eq!(made.status(), 303);
    let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
    let tokens = app
        .store()
        .direct_url_tokens(
            &tenant.id,
            &sluice_store::ids::CommandId::parse(&slow).unwrap(),
        )
        .await
        .unwrap();
    let called = reqwest::Client::new()
        .post(app.url(&format!("/hooks/{}", tokens[0])))
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 202);
    let called: Value = called.json().await.unwrap();
    assert_eq!(called["run_id"], Value::Null, "{called}");

    // Three runs in all, one after the other: each starts after the one before ended.
    let mut spans = Vec::new();
    for id in [
        slow.as_str(),
        dynamic["id"].as_str().unwrap(),
        called["command_id"].as_str().unwrap(),
    ] {
        let done = app.finished_runs(&key, id, 1).await;
        assert_eq!(done[0]["status"], "succeeded", "{done:?}");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(done[0][field].as_str().unwrap()).unwrap()
        };
        spans.push((at("started_at"), at("finished_at")));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped: {spans:?}");
    }
    assert_eq!(receiver.received().len(), 3);
}

/// The inbox quota: the API answers 409 naming the limit, the page says so next
/// to the form, and nothing is created beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_create_more_inboxes_than_the_operator_allows() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.limits.max_inboxes_per_tenant = 2).await;
    let user = app.signup("InboxQuota").await;
    let key = app.api_key_for(&user).await;
    for name in ["one", "two"] {
        let (status, _) = post(&app, &key, "/api/v1/inboxes", json!({"name": name})).await;
        assert_eq!(status, 201);
    }
    let (status, refused) = post(&app, &key, "/api/v1/inboxes", json!({"name": "three"})).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["field"], "limit", "{refused}");
    let response = app
        .submit(&app.client, "/inboxes", "/inboxes", &[("name", "four")])
        .await;
    assert_eq!(response.status(), 409);
    let page = response.text().await.unwrap();
    assert!(page.contains("the most this instance allows"), "{page}");
    let all: Value = app.api_get_json(&key, "/api/v1/inboxes").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
}

/// Every list a tenant can grow is paged: inboxes and runs in the API with a
/// `Link: rel="next"` that walks them all exactly once; on the connector page the
/// queue leaves finished dynamic commands to its archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages_and_finished_calls_go_to_the_archive() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Pages").await;
    let key = app.api_key_for(&user).await;
    for name in ["c", "a", "b & d", "e"] {
        let (status, _) = post(&app, &key, "/api/v1/inboxes", json!({"name": name})).await;
        assert_eq!(status, 201);
    }
    let names = walk(&app, &key, "/api/v1/inboxes?limit=2", "name").await;
    assert_eq!(names, ["a", "b & d", "c", "e"]);

    let connector = items_connector(&app, &user, &key, sluice_tests::THREE_ITEMS).await;
    let (inbox_status, inbox) = post(&app, &key, "/api/v1/inboxes", json!({"name": "sink"})).await;
    assert_eq!(inbox_status, 201);
    let (_, scheduled) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "name": "kept", "kind": "static", "sql": "SELECT id FROM items", "callback": {"inbox_id": inbox["id"]}, "schedule": "0 0 0 1 1 *"})).await;
    let scheduled = scheduled["id"].as_str().unwrap().to_string();
    for expected in 1..=3 {
        let (status, _) = post(
            &app,
            &key,
            &format!("/api/v1/commands/{scheduled}/run"),
            json!({}),
        )
        .await;
        assert_eq!(status, 202);
        app.finished_runs(&key, &scheduled, expected).await;
        wait_until_ready(&app, &key, &scheduled).await;
    }
    let runs = walk(
        &app,
        &key,
        &format!("/api/v1/commands/{scheduled}/runs?limit=2"),
        "id",
    )
    .await;
    let newest_first = app.runs(&key, &scheduled).await;
    let ids: Vec<&str> = newest_first
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ids, "pages walk every run once, newest first");

    let mut dynamic = Vec::new();
    for customer in 0..2 {
        let (_, created) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "kind": "dynamic", "sql": "SELECT id FROM items", "callback": {"inbox_id": inbox["id"]}, "params": {"customer": customer}})).await;
        let id = created["id"].as_str().unwrap().to_string();
        app.finished_runs(&key, &id, 1).await;
        dynamic.push(id);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for id in &dynamic {
        while app
            .api_get_json::<Value>(&key, &format!("/api/v1/commands/{id}"))
            .await["status"]
            != "FINISHED"
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let queue = app.page_text(&format!("/connectors/{connector}")).await;
    let archive = app
        .page_text(&format!("/connectors/{connector}?archive=1"))
        .await;
    assert!(queue.contains(&scheduled) && archive.contains("Archive (2)"));
    for id in &dynamic {
        assert!(
            !queue.contains(id.as_str()),
            "a finished call left the queue"
        );
        assert!(archive.contains(id.as_str()), "and is in the archive");
    }
    assert!(!archive.contains(&format!("/commands/{scheduled}\"")));
}

/// Follows `Link: rel="next"` from `first` and collects `field` of every item.
async fn walk(app: &TestApp, key: &str, first: &str, field: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next.take() {
        let response = app.api_get(key, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string())
            .and_then(|l| Some(l.strip_prefix('<')?.split_once('>')?.0.to_string()));
        let page: Value = response.json().await.unwrap();
        let items = page.as_array().unwrap();
        assert!(items.len() <= 2, "{path}: {page}");
        seen.extend(items.iter().map(|i| i[field].as_str().unwrap().to_string()));
        assert!(seen.len() < 100, "the pages never end");
    }
    seen
}

async fn wait_until_ready(app: &TestApp, key: &str, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app
        .api_get_json::<Value>(key, &format!("/api/v1/commands/{id}"))
        .await["status"]
        != "READY"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never READY again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A table preview cuts long values to the operator's cell size and says how
/// long they were; short values and numbers are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_cut_long_cells() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.limits.preview_cell_bytes = 64).await;
    let user = app.signup("Cells").await;
    let key = app.api_key_for(&user).await;
    let connector = items_connector(
        &app,
        &user,
        &key,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, tag TEXT);
         INSERT INTO notes VALUES (1, printf('%.100000c', 'x'), 'short');",
    )
    .await;
    let preview: Value = app
        .api_get_json(
            &key,
            &format!("/api/v1/connections/{connector}/tables/notes/preview"),
        )
        .await;
    let row = &preview["rows"][0];
    let body = row["body"].as_str().unwrap();
    assert!(body.len() < 120, "{}", body.len());
    assert!(
        body.starts_with(&"x".repeat(64)) && body.ends_with("[100000 bytes in all]"),
        "{body}"
    );
    assert_eq!(row["tag"], "short");
    assert_eq!(row["id"], 1);
    let page = app
        .page_text(&format!("/connectors/{connector}/explore/table?name=notes"))
        .await;
    assert!(page.contains("[100000 bytes in all]"));
    assert!(!page.contains(&"x".repeat(65)));
}

/// A batch whose JSON would pass the operator's byte limit goes out as several
/// POSTs, each within it, with every row once and in order; a row that alone is
/// larger fails the run with a message naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_posts_stay_within_the_batch_byte_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.limits.max_batch_bytes = 1024).await;
    let user = app.signup("Bytes").await;
    let key = app.api_key_for(&user).await;
    let connector = items_connector(
        &app,
        &user,
        &key,
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, pad TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
         INSERT INTO rows SELECT i, printf('%.80c', 'p') FROM n;
         INSERT INTO rows VALUES (1000, printf('%.5000c', 'w'));",
    )
    .await;
    let receiver = Receiver::start().await;
    let (status, ok) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "kind": "dynamic", "sql": "SELECT id, pad FROM rows WHERE id <= 50 ORDER BY id", "callback": {"url": receiver.url}, "params": {}, "batch_size": 1000})).await;
    assert_eq!(status, 201, "{ok}");
    let done = app.finished_runs(&key, ok["id"].as_str().unwrap(), 1).await;
    assert_eq!(done[0]["status"], "succeeded", "{done:?}");
    let posts = receiver.received();
    assert!(
        posts.len() > 1,
        "one batch of 50 rows split into several POSTs"
    );
    let mut ids = Vec::new();
    for post in &posts {
        assert!(post.body.len() <= 1024, "{}", post.body.len());
        ids.extend(
            post.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap()),
        );
    }
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());

    let (_, wide) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "kind": "dynamic", "sql": "SELECT id, pad FROM rows WHERE id = 1000", "callback": {"url": receiver.url}, "params": {}})).await;
    let failed = app
        .finished_runs(&key, wide["id"].as_str().unwrap(), 1)
        .await;
    assert_eq!(failed[0]["status"], "failed");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("SLUICE_MAX_BATCH_BYTES"),
        "{failed:?}"
    );
    assert_eq!(
        receiver.received().len(),
        posts.len(),
        "nothing of it was sent"
    );
}

/// History retention on PostgreSQL: archived dynamic commands and runs older
/// than the retention are removed, each command's latest run is kept, audit
/// entries past their own retention go too, and nothing newer is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_retention_removes_old_archived_calls_and_runs() {
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app.signup("Retention").await;
    let key = app.api_key_for(&user).await;
    let connector = items_connector(&app, &user, &key, sluice_tests::THREE_ITEMS).await;
    let (_, inbox) = post(&app, &key, "/api/v1/inboxes", json!({"name": "sink"})).await;
    let (_, scheduled) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "name": "kept", "kind": "static", "sql": "SELECT id FROM items", "callback": {"inbox_id": inbox["id"]}, "schedule": "0 0 0 1 1 *"})).await;
    let scheduled = scheduled["id"].as_str().unwrap().to_string();
    for expected in 1..=2 {
        post(
            &app,
            &key,
            &format!("/api/v1/commands/{scheduled}/run"),
            json!({}),
        )
        .await;
        app.finished_runs(&key, &scheduled, expected).await;
        wait_until_ready(&app, &key, &scheduled).await;
    }
    let mut calls = Vec::new();
    for _ in 0..2 {
        let (_, created) = post(&app, &key, "/api/v1/commands", json!({"connection_id": connector, "kind": "dynamic", "sql": "SELECT id FROM items", "callback": {"inbox_id": inbox["id"]}, "params": {}})).await;
        let id = created["id"].as_str().unwrap().to_string();
        app.finished_runs(&key, &id, 1).await;
        calls.push(id);
    }
    // Age everything but the newest call past the 30-day default.
    let mut db = sqlx::PgConnection::connect(&app.database_url().unwrap())
        .await
        .unwrap();
    let aged = [calls[0].as_str(), scheduled.as_str()];
    sqlx::query("UPDATE commands SET updated_at = now() - interval '40 days' WHERE id = ANY($1)")
        .bind(&aged[..])
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE command_runs SET finished_at = now() - interval '40 days' WHERE command_id = ANY($1)")
        .bind(&aged[..])
        .execute(&mut db)
        .await
        .unwrap();
    // Audit entries: the oldest of the tenant's aged past the 365-day default.
    let audit_before: (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log")
        .fetch_one(&mut db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_log SET at = now() - interval '400 days' WHERE action = 'tenant.signup'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Housekeeping runs every second in tests.
    while app
        .api_get(&key, &format!("/api/v1/commands/{}", calls[0]))
        .await
        .status()
        != 404
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old call was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.api_get(&key, &format!("/api/v1/commands/{}", calls[1]))
            .await
            .status(),
        200
    );
    assert_eq!(app.runs(&key, &calls[1]).await.len(), 1);
    let kept = app.runs(&key, &scheduled).await;
    assert_eq!(
        kept.len(),
        1,
        "the static command keeps its latest run: {kept:?}"
    );
    let status: (String,) = sqlx::query_as("SELECT status FROM commands WHERE id = $1")
        .bind(&scheduled)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(status.0, "READY");
    let audit_after: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE at < now() - interval '365 days') FROM audit_log",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        audit_after.1, 0,
        "entries past the audit retention are gone"
    );
    assert!(
        audit_after.0 >= audit_before.0 - 1 && audit_after.0 > 0,
        "newer entries stay: {audit_before:?} -> {audit_after:?}"
    );
}
