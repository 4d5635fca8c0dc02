//! Pull syncs end to end: real source databases, the real job system, a real HTTP
//! receiver. Seed 001's incremental invoices, seed 000's time windows, dynamic
//! commands, direct URLs, inboxes, hostile values and failing callbacks.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{Receiver, TestApp, TestDatabase, TestMariaDb, TestUser, on_both_backends};
use std::time::Duration;

/// Creates a connector through the API and returns its id.
async fn connector(app: &TestApp, key: &str, body: Value) -> String {
    let response = app
        .api(Method::POST, key, "/api/v1/connections")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create_command(app: &TestApp, key: &str, body: Value) -> Value {
    let response = app
        .api(Method::POST, key, "/api/v1/commands")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn command(app: &TestApp, key: &str, id: &str) -> Value {
    app.api_get_json(key, &format!("/api/v1/commands/{id}"))
        .await
}

async fn run(app: &TestApp, key: &str, id: &str, body: Value) -> String {
    let response = app
        .api(Method::POST, key, &format!("/api/v1/commands/{id}/run"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn rows_of(receiver: &Receiver) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .flat_map(|r| r.json().as_array().unwrap().clone())
        .collect()
}

on_both_backends!(
    seed_001_incremental_invoices_on_mariadb,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Seed1").await;
        let key = app.api_key_for(&user).await;
        let source = TestMariaDb::create("sluice_src").await;
        source
        .execute(
            "CREATE TABLE invoices (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2), date_paid DATETIME);
             INSERT INTO invoices VALUES (1, 'Ada', 10.00, '2026-01-01 10:00:00'), (2, 'Grace', 20.50, '2026-01-02 11:00:00'), (3, 'Alan', 30.25, '2026-01-03 12:00:00');",
        )
        .await;
        let connection = connector(&app, &key, json!({"name": "billing", "connectionString": format!("jdbc:mariadb://127.0.0.1:3306/{}?user=root&sslMode=disable", source.name)})).await;
        let receiver = Receiver::start().await;
        let created = create_command(&app, &key, json!({
        "connection_id": connection, "name": "paid invoices",
        "sql": "SELECT id, customer AS \"customer.name\", amount, date_paid FROM invoices WHERE date_paid >= \"@last_value@\" ORDER BY id",
        "callback": {"url": format!("{}/invoices", receiver.url)},
        "last_field": "date_paid", "last_value": "2000-01-01 00:00:00", "batch_size": 2
    }))
    .await;
        let id = created["id"].as_str().unwrap();
        assert_eq!(created["status"], "READY");

        run(&app, &key, id, json!({})).await;
        let first = app.finished_runs(&key, id, 1).await;
        assert_eq!(first[0]["status"], "succeeded", "{first:?}");
        assert_eq!(first[0]["rows"], 3);
        let posts = receiver.received();
        assert_eq!(posts.len(), 2, "3 rows in batches of 2");
        assert_eq!(posts[0].json().as_array().unwrap().len(), 2);
        assert_eq!(
            posts[0].json()[0],
            json!({"id": 1, "customer": {"name": "Ada"}, "amount": 10, "date_paid": "2026-01-01T10:00:00"})
        );
        let run_id = first[0]["id"].as_str().unwrap();
        assert_eq!(
            posts[0].header("idempotency-key"),
            Some(format!("{run_id}:1").as_str())
        );
        assert_eq!(
            posts[1].header("idempotency-key"),
            Some(format!("{run_id}:2").as_str())
        );
        // The signature verifies with the tenant's signing key.
        let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
        let secret = app.store().callback_signing_key(&tenant.id);
        let timestamp: i64 = posts[0]
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(sluice_deliver::verify(
            &secret,
            posts[0].header("webhook-id").unwrap(),
            timestamp,
            &posts[0].body,
            posts[0].header("webhook-signature").unwrap()
        ));
        assert_eq!(
            command(&app, &key, id).await["last_value"],
            "2026-01-03T12:00:00",
            "the cursor moved to the newest date_paid"
        );

        source
            .execute("INSERT INTO invoices VALUES (4, 'Hedy', 40.00, '2026-02-01 09:00:00');")
            .await;
        run(&app, &key, id, json!({})).await;
        let second = app.finished_runs(&key, id, 2).await;
        assert_eq!(second[0]["status"], "succeeded");
        let delivered: Vec<i64> = receiver.received()[2..]
            .iter()
            .flat_map(|r| {
                r.json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| row["id"].as_i64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            delivered,
            [3, 4],
            "only rows at or after the stored date_paid (seed 001 uses >=)"
        );
        assert_eq!(
            command(&app, &key, id).await["last_value"],
            "2026-02-01T09:00:00"
        );
    }
);

on_both_backends!(
    seed_000_usage_window_on_postgres_into_an_inbox,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Seed0").await;
        let key = app.api_key_for(&user).await;
        let source = TestDatabase::create("sluice_src").await;
        source
        .execute(
            "CREATE TABLE usages (event_id text PRIMARY KEY, account_id int, usage_count int, created_at timestamptz);
             INSERT INTO usages VALUES ('e1', 7, 3, '2026-01-01T00:00:00Z'), ('e2', 7, 5, '2026-01-15T00:00:00Z'), ('e3', 8, 1, '2026-02-10T00:00:00Z');",
        )
        .await;
        let url = url::Url::parse(&source.url).unwrap();
        let connection = connector(&app, &key, json!({"name": "usage_db", "kind": "postgres", "auth": {"params": {"server": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "database": source.name, "username": "postgres", "sslMode": "disabled"}}})).await;
        let inbox: Value = app
            .api_post_json(&key, "/api/v1/inboxes", &json!({"name": "usage"}))
            .await;
        let created = create_command(&app, &key, json!({
        "connection_id": connection,
        "sql": "SELECT event_id AS \"id\", account_id AS \"accountId\", usage_count AS \"usage\", created_at AS \"timestamp\" FROM usages WHERE created_at > '${startTime}' AND created_at < '${endTime}' ORDER BY event_id",
        "callback": {"inbox_id": inbox["id"]}
    }))
    .await;
        let id = created["id"].as_str().unwrap();
        run(
            &app,
            &key,
            id,
            json!({"startTime": "2025-12-31T00:00:00Z", "endTime": "2026-02-01T00:00:00Z"}),
        )
        .await;
        let done = app.finished_runs(&key, id, 1).await;
        assert_eq!(done[0]["status"], "succeeded", "{done:?}");
        assert_eq!(done[0]["window_start"], "2025-12-31T00:00:00.000Z");
        let messages: Value = app
            .api_get_json(
                &key,
                &format!("/api/v1/inboxes/{}/messages", inbox["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(messages[0]["source"], format!("command:{id}"));
        assert_eq!(
            messages[0]["body"],
            json!([{"id": "e1", "accountId": 7, "usage": 3, "timestamp": "2026-01-01T00:00:00Z"}, {"id": "e2", "accountId": 7, "usage": 5, "timestamp": "2026-01-15T00:00:00Z"}])
        );
        let bad = app
            .api(Method::POST, &key, &format!("/api/v1/commands/{id}/run"))
            .json(&json!({"startTime": "yesterday"}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert_eq!(
            bad.json::<Value>().await.unwrap()["error"]["field"],
            "startTime"
        );
    }
);

async fn invoices_db() -> TestDatabase {
    let source = TestDatabase::create("sluice_src").await;
    source
        .execute("CREATE TABLE invoices (id int PRIMARY KEY, customer_id int, note text); INSERT INTO invoices VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 2, 'c');")
        .await;
    source
}

async fn pg_connector(app: &TestApp, key: &str, source: &TestDatabase) -> String {
    let url = url::Url::parse(&source.url).unwrap();
    connector(app, key, json!({"name": "pg", "kind": "postgres", "auth": {"params": {"server": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "database": source.name, "username": "postgres", "sslMode": "disabled"}}})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_commands_direct_urls_and_hostile_params() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Dyn").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let receiver = Receiver::start().await;
    let sql =
        "SELECT id, note FROM invoices WHERE customer_id = @object.params.customer@ ORDER BY id";

    let created = create_command(&app, &key, json!({"connection_id": connection, "kind": "dynamic", "sql": sql, "callback": {"url": receiver.url}, "params": {"customer": 2}})).await;
    assert!(
        created["run_id"].is_string(),
        "a dynamic command is queued at once"
    );
    let id = created["id"].as_str().unwrap();
    app.finished_runs(&key, id, 1).await;
    assert_eq!(command(&app, &key, id).await["status"], "FINISHED");
    assert_eq!(
        rows_of(&receiver),
        [json!({"id": 2, "note": "b"}), json!({"id": 3, "note": "c"})]
    );

    // Hostile values are one value: they match nothing and change nothing.
    for hostile in [
        json!("2 OR 1=1"),
        json!("2; DROP TABLE invoices; --"),
        json!("' OR '1'='1"),
        json!("$s_0$ OR true --"),
        json!("*/ OR 1=1 /*"),
    ] {
        let sql_text = "SELECT id FROM invoices WHERE note = @object.params.customer@";
        let created = create_command(&app, &key, json!({"connection_id": connection, "kind": "dynamic", "sql": sql_text, "callback": {"url": receiver.url}, "params": {"customer": hostile}})).await;
        let id = created["id"].as_str().unwrap();
        let done = app.finished_runs(&key, id, 1).await;
        assert_eq!(done[0]["status"], "succeeded", "{hostile}: {done:?}");
        assert_eq!(done[0]["rows"], 0, "{hostile} matched rows");
    }
    let preview: Value = app
        .api_get_json(
            &key,
            &format!("/api/v1/connections/{connection}/tables/invoices/preview"),
        )
        .await;
    assert_eq!(
        preview["rows"].as_array().unwrap().len(),
        3,
        "the table is intact"
    );

    // A direct URL starts a dynamic run with the posted body as params.
    let bound = create_command(
        &app,
        &key,
        json!({"connection_id": connection, "sql": sql, "callback": {"url": receiver.url}}),
    )
    .await;
    let bound_id = bound["id"].as_str().unwrap();
    let page = format!("/commands/{bound_id}");
    let response = app
        .submit(&app.client, &page, &format!("{page}/direct-url"), &[])
        .await;
    assert!(
        response.status() == 303 || response.status() == 403,
        "{}",
        response.status()
    );
    let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
    let tokens = app
        .store()
        .direct_url_tokens(
            &tenant.id,
            &sluice_store::ids::CommandId::parse(bound_id).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    let before = receiver.received().len();
    let started: Value = reqwest::Client::new()
        .post(app.url(&format!("/hooks/{}", tokens[0])))
        .json(&json!({"customer": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.finished_runs(&key, started["command_id"].as_str().unwrap(), 1)
        .await;
    let last = receiver.received()[before].json();
    assert_eq!(last, json!([{"id": 1, "note": "a"}]));
    let not_object = reqwest::Client::new()
        .post(app.url(&format!("/hooks/{}", tokens[0])))
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(not_object.status(), 400);
}

on_both_backends!(
    a_failing_callback_is_retried_and_the_cursor_waits,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Retry").await;
        let key = app.api_key_for(&user).await;
        let source = invoices_db().await;
        let connection = pg_connector(&app, &key, &source).await;
        let receiver = Receiver::start().await;
        receiver.respond_with(&[500]);
        let created = create_command(&app, &key, json!({"connection_id": connection, "sql": "SELECT id FROM invoices WHERE id > @last_value@ ORDER BY id", "callback": {"url": receiver.url}, "last_field": "id", "last_value": "0"})).await;
        let id = created["id"].as_str().unwrap();
        run(&app, &key, id, json!({})).await;
        let done = app.finished_runs(&key, id, 1).await;
        assert_eq!(
            done[0]["status"], "succeeded",
            "500 then 200 delivers: {done:?}"
        );
        let posts = receiver.received();
        assert_eq!(posts.len(), 2);
        assert_eq!(
            posts[0].header("idempotency-key"),
            posts[1].header("idempotency-key"),
            "a retry repeats the key"
        );
        assert_eq!(command(&app, &key, id).await["last_value"], "3");

        // Down for good: the run fails, the command says why, the cursor stays.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let broken = create_command(&app, &key, json!({"connection_id": connection, "sql": "SELECT id FROM invoices WHERE id > @last_value@", "callback": {"url": format!("http://{dead}/gone")}, "last_field": "id", "last_value": "0"})).await;
        let broken_id = broken["id"].as_str().unwrap();
        run(&app, &key, broken_id, json!({})).await;
        let failed = app.finished_runs(&key, broken_id, 1).await;
        assert_eq!(failed[0]["status"], "failed");
        let state = command(&app, &key, broken_id).await;
        assert_eq!(state["status"], "ERROR");
        assert!(
            state["error"].as_str().unwrap().contains("refused"),
            "{state}"
        );
        assert_eq!(
            state["last_value"], "0",
            "a failed delivery never advances the cursor"
        );
        let queue = app.page_text(&format!("/connectors/{connection}")).await;
        assert!(queue.contains("● ERROR"), "a red mark in the queue");
        let dashboard = app.page_text("/").await;
        let failing = dashboard
            .find("id=\"failing\"")
            .expect("failing commands listed first");
        assert!(
            dashboard[failing..].contains(broken_id),
            "the broken command is on the dashboard"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_commands_on_time() {
    let app = TestApp::spawn(sluice_tests::Backend::Postgres).await;
    let user = app.signup("Cron").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let receiver = Receiver::start().await;
    let created = create_command(&app, &key, json!({"connection_id": connection, "sql": "SELECT count(*) AS n FROM invoices", "callback": {"url": receiver.url}, "schedule": "*/2 * * * * *"})).await;
    let id = created["id"].as_str().unwrap();
    let done = app.finished_runs(&key, id, 2).await;
    assert!(
        done.iter()
            .all(|r| r["trigger"] == "schedule" && r["status"] == "succeeded"),
        "{done:?}"
    );
    let shown = command(&app, &key, id).await;
    assert!(shown["next_run_at"].is_string());
    let paused: Value = app
        .api(Method::POST, &key, &format!("/api/v1/commands/{id}/pause"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paused["status"], "PAUSED");
    assert_eq!(
        app.api(Method::POST, &key, &format!("/api/v1/commands/{id}/run"))
            .send()
            .await
            .unwrap()
            .status(),
        409,
        "a paused command does not run"
    );
    let resumed: Value = app
        .api(Method::POST, &key, &format!("/api/v1/commands/{id}/resume"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["status"], "READY");
}

on_both_backends!(inboxes_receive_json_within_limits, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Inbox").await;
    let key = app.api_key_for(&user).await;
    let created = app
        .api(Method::POST, &key, "/api/v1/inboxes")
        .json(&json!({"name": "orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let inbox: Value = created.json().await.unwrap();
    let url = inbox["url"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .post(&url)
            .json(&json!({"order": 42}))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let invalid = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().await.unwrap()["error"]["field"],
        "body"
    );
    let huge = client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("\"{}\"", "x".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(
        client
            .post(app.url("/hooks/hk_unknown"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let messages: Value = app
        .api_get_json(
            &key,
            &format!("/api/v1/inboxes/{}/messages", inbox["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        messages.as_array().unwrap().len(),
        1,
        "only the valid message was stored"
    );
    assert_eq!(messages[0]["body"], json!({"order": 42}));

    // Another tenant sees none of it.
    let other = TestUser::unique("Other");
    app.signup_with(&TestApp::browser_like_client(), &other)
        .await;
    let other_key = app.api_key_for(&other).await;
    let foreign = app
        .api(
            Method::GET,
            &other_key,
            &format!("/api/v1/inboxes/{}/messages", inbox["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_validate_input_and_stay_tenant_scoped() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Valid").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let base = json!({"connection_id": connection, "sql": "SELECT 1", "callback": {"url": "http://127.0.0.1:9/x"}});
    let cases = [
        (json!({"sql": ""}), "sql"),
        (json!({"sql": "SELECT '${startTime"}), "sql"),
        (
            json!({"callback": {"url": "ftp://example.com/x"}}),
            "callback.url",
        ),
        (
            json!({"callback": {"inbox_id": "inb_00000000000000000000000000000000"}}),
            "callback.inbox_id",
        ),
        (json!({"schedule": "61 * * * *"}), "schedule"),
        (
            json!({"schedule": "* * * * *", "timezone": "Mars/Base"}),
            "timezone",
        ),
        (json!({"batch_size": 0}), "batch_size"),
        (json!({"kind": "dynamic", "params": [1]}), "params"),
        (
            json!({"connection_id": "con_00000000000000000000000000000000"}),
            "connection_id",
        ),
    ];
    for (patch, field) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app
            .api(Method::POST, &key, "/api/v1/commands")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["field"],
            field,
            "{body}"
        );
    }
    let created = create_command(&app, &key, base).await;
    let id = created["id"].as_str().unwrap();
    let other = TestUser::unique("Other");
    app.signup_with(&TestApp::browser_like_client(), &other)
        .await;
    let other_key = app.api_key_for(&other).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/commands/{id}")),
        (Method::POST, format!("/api/v1/commands/{id}/run")),
        (Method::GET, format!("/api/v1/commands/{id}/runs")),
        (Method::DELETE, format!("/api/v1/commands/{id}")),
    ] {
        assert_eq!(
            app.api(method.clone(), &other_key, &path)
                .send()
                .await
                .unwrap()
                .status(),
            404,
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_private_addresses_are_refused_in_production_mode() {
    let app = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |config| {
        config.allow_private_targets = false
    })
    .await;
    let user = app.signup("Ssrf").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let receiver = Receiver::start().await;
    for literal in [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://10.0.0.5/x",
    ] {
        let response = app.api(Method::POST, &key, "/api/v1/commands").json(&json!({"connection_id": connection, "sql": "SELECT 1", "callback": {"url": literal}})).send().await.unwrap();
        assert_eq!(response.status(), 400, "{literal}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["field"],
            "callback.url",
            "{literal}"
        );
    }
    // A name that resolves to loopback passes the save-time check but is refused after resolution.
    let port = url::Url::parse(&receiver.url).unwrap().port().unwrap();
    let created = create_command(&app, &key, json!({"connection_id": connection, "sql": "SELECT id FROM invoices", "callback": {"url": format!("http://localhost:{port}/x")}})).await;
    let id = created["id"].as_str().unwrap();
    run(&app, &key, id, json!({})).await;
    let done = app.finished_runs(&key, id, 1).await;
    assert_eq!(done[0]["status"], "failed");
    assert!(
        done[0]["error"].as_str().unwrap().contains("not allowed"),
        "{}",
        done[0]
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

/// Two app instances sharing one PostgreSQL control plane (and its secret key).
async fn two_processes_on_one_postgres() -> (TestApp, TestApp) {
    const SECRET: &str = "a shared instance secret of more than 32 characters";
    let first = TestApp::spawn_with(sluice_tests::Backend::Postgres, |c| {
        c.secret_key = Some(SECRET.into())
    })
    .await;
    let shared = first.database_url().unwrap();
    let second = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |c| {
        c.secret_key = Some(SECRET.into());
        c.database_url = Some(shared.clone());
    })
    .await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_run_each_scheduled_command_once() {
    let (first, second) = two_processes_on_one_postgres().await;
    let user = first.signup("Pair").await;
    let key = first.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&first, &key, &source).await;
    let receiver = Receiver::start().await;
    let created = create_command(&first, &key, json!({"connection_id": connection, "sql": "SELECT id FROM invoices", "callback": {"url": receiver.url}, "schedule": "* * * * * *"})).await;
    let id = created["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    first
        .api(Method::POST, &key, &format!("/api/v1/commands/{id}/pause"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Both processes see the same command; neither ran it twice for one tick.
    let all = second.runs(&key, id).await;
    assert!(all.len() >= 3, "the schedule fired: {all:?}");
    let mut windows: Vec<&str> = all
        .iter()
        .map(|r| r["window_end"].as_str().unwrap())
        .collect();
    windows.sort();
    windows.dedup();
    assert_eq!(
        windows.len(),
        all.len(),
        "one run per tick, never two: {all:?}"
    );
    let mut spans: Vec<(String, String)> = all
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .map(|r| {
            (
                r["started_at"].as_str().unwrap().to_string(),
                r["finished_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "runs of one command never overlap: {pair:?}"
        );
    }
    assert_eq!(
        receiver.received().len(),
        all.iter().filter(|r| r["status"] == "succeeded").count(),
        "one POST per run"
    );
}

/// The PostgreSQL lock-up the store once had: two replicas, each given ten dynamic
/// commands one after the other, must deliver all twenty and stay ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_deliver_every_dynamic_command() {
    let (first, second) = two_processes_on_one_postgres().await;
    let user = first.signup("Replicas").await;
    let key = first.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&first, &key, &source).await;
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for replica in [&first, &second] {
        for _ in 0..10 {
            let created = create_command(replica, &key, json!({"connection_id": connection, "kind": "dynamic", "sql": "SELECT id FROM invoices", "callback": {"url": receiver.url}})).await;
            ids.push(created["id"].as_str().unwrap().to_string());
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let replica = if i % 2 == 0 { &first } else { &second };
        let done = replica.finished_runs(&key, id, 1).await;
        assert_eq!(done[0]["status"], "succeeded", "{done:?}");
    }
    assert_eq!(receiver.received().len(), 20, "one POST per command");
    for replica in [&first, &second] {
        let ready = replica
            .client
            .get(replica.url("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
}

/// Operator limits on a shared instance: schedules no more frequent than
/// `SLUICE_MIN_SCHEDULE_SECS`, and at most `SLUICE_MAX_COMMANDS_PER_TENANT`
/// unfinished commands per tenant (scheduled, API-created or started through a
/// direct URL alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_stay_within_the_operators_limits() {
    let app = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |c| {
        c.limits.min_schedule_secs = 60;
        c.limits.max_commands_per_tenant = 2;
    })
    .await;
    let user = app.signup("Limits").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let receiver = Receiver::start().await;
    let body = |schedule: &str| json!({"connection_id": connection, "sql": "SELECT id FROM invoices", "callback": {"url": receiver.url}, "schedule": schedule});
    let post = |body: Value| {
        app.api(Method::POST, &key, "/api/v1/commands")
            .json(&body)
            .send()
    };

    let too_often = post(body("*/10 * * * * *")).await.unwrap();
    assert_eq!(too_often.status(), 400);
    let error: Value = too_often.json().await.unwrap();
    assert_eq!(error["error"]["field"], "schedule", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("every 10 s"),
        "{error}"
    );

    for _ in 0..2 {
        assert_eq!(post(body("*/5 * * * *")).await.unwrap().status(), 201);
    }
    let third = post(body("*/5 * * * *")).await.unwrap();
    assert_eq!(third.status(), 409);
    assert_eq!(
        third.json::<Value>().await.unwrap()["error"]["field"],
        "limit"
    );
    let dynamic = post(json!({"connection_id": connection, "kind": "dynamic", "sql": "SELECT 1 AS one", "callback": {"url": receiver.url}}))
        .await
        .unwrap();
    assert_eq!(dynamic.status(), 409, "dynamic commands count too");
}

/// `GET /api/v1/commands` pages with a cursor: newest first, a `Link: rel="next"`
/// on every full page, each command exactly once, and never another tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_list_pages_with_a_cursor() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Pages").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let command = create_command(&app, &key, json!({"connection_id": connection, "sql": "SELECT id FROM invoices", "callback": {"url": "https://example.com/hook"}})).await;
        created.push(command["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/v1/commands?limit=2".to_string());
    while let Some(path) = next.take() {
        let response = app.api(Method::GET, &key, &path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|l| {
            l.to_str()
                .unwrap()
                .split(['<', '>'])
                .nth(1)
                .unwrap()
                .to_string()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        assert!(seen.len() <= 5, "the cursor ends");
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");

    let other = app.signup("Elsewhere").await;
    let other_key = app.api_key_for(&other).await;
    let theirs: Vec<Value> = app
        .api_get_json(
            &other_key,
            &format!("/api/v1/commands?before={}", created[0]),
        )
        .await;
    assert!(
        theirs.is_empty(),
        "another tenant's cursor shows nothing of ours"
    );
    for (path, field) in [
        ("/api/v1/commands?limit=0", "limit"),
        ("/api/v1/commands?limit=501", "limit"),
        ("/api/v1/commands?before=nope", "before"),
    ] {
        let bad = app.api(Method::GET, &key, path).send().await.unwrap();
        assert_eq!(bad.status(), 400, "{path}");
        assert_eq!(bad.json::<Value>().await.unwrap()["error"]["field"], field);
    }
}

/// A connector's queue reads each command's latest run in one query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_each_commands_latest_run() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Queue").await;
    let key = app.api_key_for(&user).await;
    let source = invoices_db().await;
    let connection = pg_connector(&app, &key, &source).await;
    let receiver = Receiver::start().await;
    let body = json!({"connection_id": connection, "sql": "SELECT id FROM invoices", "callback": {"url": receiver.url}});
    let ran = create_command(&app, &key, body.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let idle = create_command(&app, &key, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&app, &key, &ran, json!({})).await;
    app.finished_runs(&key, &ran, 1).await;
    let second = run(&app, &key, &ran, json!({})).await;
    app.finished_runs(&key, &ran, 2).await;

    let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
    let ids = [&ran, &idle].map(|id| sluice_store::ids::CommandId::parse(id).unwrap());
    let latest = app.store().latest_runs(&tenant.id, &ids).await.unwrap();
    assert_eq!(
        latest.len(),
        1,
        "a command that never ran has no latest run"
    );
    assert_eq!(latest[&ids[0]].id.as_str(), second);
    let page = app.page_text(&format!("/connectors/{connection}")).await;
    assert!(page.contains("never"), "the idle command shows no run");
}

/// A PostgreSQL-backed app with one scheduled command over a SQLite `items`
/// table, and a connection to its control plane for editing stored rows:
/// `(app, key, command id, connection)`.
async fn stored_command(
    label: &str,
    callback: &str,
    schedule: &str,
) -> (TestApp, String, String, sqlx::PgConnection) {
    use sqlx::Connection;
    let app = TestApp::spawn(sluice_tests::Backend::Postgres).await;
    let user = app.signup(label).await;
    let key = app.api_key_for(&user).await;
    sluice_tests::sqlite_source(
        &app.sqlite_dir_for(&user).await.join("items.db"),
        sluice_tests::THREE_ITEMS,
    )
    .await;
    let connection = connector(
        &app,
        &key,
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    )
    .await;
    let created = create_command(&app, &key, json!({"connection_id": connection, "name": label, "kind": "static", "sql": "SELECT id FROM items", "callback": {"url": callback}, "schedule": schedule})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let db = sqlx::PgConnection::connect(&app.database_url().unwrap())
        .await
        .unwrap();
    (app, key, id, db)
}

/// A stored status the code does not know (a newer version wrote it, or a hand
/// edit) is an error, never read as READY: the API answers 500 and the command
/// does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stored_status_is_an_error_not_ready() {
    let receiver = Receiver::start().await;
    let (app, key, id, mut db) = stored_command("Corrupt", &receiver.url, "0 0 0 1 1 *").await;
    let id = id.as_str();
    sqlx::query("UPDATE commands SET status = 'SOMEDAY', next_run_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&mut db)
        .await
        .unwrap();
    let before = receiver.received().len();
    let answer = app.api_get(&key, &format!("/api/v1/commands/{id}")).await;
    assert_eq!(answer.status(), 500);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), before, "it never ran");
}

/// Schedules stored while weekdays were read the cron crate's way (1 = Sunday)
/// are rewritten once, keeping their days: `2` (Monday then) becomes `MON`, and a
/// second pass changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_schedules_keep_their_weekdays_under_standard_cron() {
    let (app, key, id, mut db) =
        stored_command("Weekdays", "http://127.0.0.1:9/", "0 0 9 * * MON").await;
    let id = id.as_str();
    // As an older version stored it, and before the one-time rewrite ran.
    sqlx::query("UPDATE commands SET schedule = '0 0 9 * * 2' WHERE id = $1")
        .bind(id)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM maintenance_done")
        .execute(&mut db)
        .await
        .unwrap();
    let rewrite = || {
        app.store().convert_schedules_once(
            "standard-cron-weekdays",
            sluice_jobs::pull::legacy_to_standard,
        )
    };
    assert_eq!(rewrite().await.unwrap(), 1);
    assert_eq!(command(&app, &key, id).await["schedule"], "0 0 9 * * MON");
    assert_eq!(rewrite().await.unwrap(), 0, "it runs once");
}

/// `@last_value@` is the largest Last Field in the column's own order on live
/// databases, where text order would be wrong: decimals (99.50 < 100.25),
/// timestamps of different precision (…:00.5 is after …:00), dates and a bigint
/// past 2^53; and a VARCHAR of digits orders as text ('99' > '100'), as the
/// database compares it. The column's sort is stored beside the value; a Last
/// Field that is no column of the result fails the run, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_orders_decimals_timestamps_dates_and_bigints_by_value() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Cursor").await;
    let key = app.api_key_for(&user).await;
    let pg = TestDatabase::create("sluice_cursor").await;
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(12,2), at timestamptz(3), d date, big bigint, code varchar(20));
         INSERT INTO t VALUES
           (1, 99.50, '2026-01-10 09:00:00.5+00', '2026-01-10', 9007199254740993, '99'),
           (2, 100.25, '2026-01-10 10:00:00+01', '2026-01-09', 12, '100');",
    )
    .await;
    let maria = TestMariaDb::create("sluice_cursor").await;
    maria
        .execute(
            "CREATE TABLE t (id INT PRIMARY KEY, amount DECIMAL(12,2), at DATETIME(3), d DATE, big BIGINT, code VARCHAR(20));
             INSERT INTO t VALUES
               (1, 99.50, '2026-01-10 09:00:00.500', '2026-01-10', 9007199254740993, '99'),
               (2, 100.25, '2026-01-10 09:00:00', '2026-01-09', 12, '100');",
        )
        .await;
    let url = url::Url::parse(&pg.url).unwrap();
    let sources = [
        json!({"name": "pg", "kind": "postgres", "auth": {"params": {"server": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "database": pg.name, "username": "postgres", "sslMode": "disabled"}}}),
        json!({"name": "maria", "connectionString": format!("jdbc:mariadb://127.0.0.1:3306/{}?user=root&sslMode=disable", maria.name)}),
    ];
    let (inbox_status, inbox) = {
        let response = app
            .api(Method::POST, &key, "/api/v1/inboxes")
            .json(&json!({"name": "sink"}))
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(inbox_status, 201);
    for source in sources {
        let connection = connector(&app, &key, source.clone()).await;
        for (field, expected, sort) in [
            ("amount", "100.25", "decimal"),
            ("d", "2026-01-10", "date"),
            ("big", "9007199254740993", "integer"),
            ("code", "99", "text"),
        ] {
            let created = create_command(&app, &key, json!({"connection_id": connection, "name": format!("by {field}"), "kind": "static", "sql": "SELECT * FROM t ORDER BY id", "callback": {"inbox_id": inbox["id"]}, "last_field": field, "schedule": "0 0 0 1 1 *"})).await;
            let id = created["id"].as_str().unwrap();
            run(&app, &key, id, json!({})).await;
            let done = app.finished_runs(&key, id, 1).await;
            assert_eq!(done[0]["status"], "succeeded", "{source}: {done:?}");
            let stored = command(&app, &key, id).await;
            assert_eq!(stored["last_value"], expected, "{source} {field}");
            assert_eq!(stored["last_value_type"], sort, "{source} {field}");
        }
        // Timestamps: the row with the fraction of a second is the later one.
        let created = create_command(&app, &key, json!({"connection_id": connection, "name": "by at", "kind": "static", "sql": "SELECT * FROM t ORDER BY id", "callback": {"inbox_id": inbox["id"]}, "last_field": "at", "schedule": "0 0 0 1 1 *"})).await;
        let id = created["id"].as_str().unwrap();
        run(&app, &key, id, json!({})).await;
        app.finished_runs(&key, id, 1).await;
        let stored = command(&app, &key, id).await;
        let last = stored["last_value"].clone();
        assert!(
            last.as_str().unwrap().contains("09:00:00.5"),
            "{source}: {last}"
        );
        // PostgreSQL's timestamptz is an instant; MariaDB's DATETIME has no zone.
        let sort = if source["name"] == "pg" {
            "instant"
        } else {
            "timestamp"
        };
        assert_eq!(stored["last_value_type"], sort, "{source}");

        // A Last Field that is no column of the result fails the run, naming it.
        let created = create_command(&app, &key, json!({"connection_id": connection, "name": "by nope", "kind": "static", "sql": "SELECT * FROM t ORDER BY id", "callback": {"inbox_id": inbox["id"]}, "last_field": "nope", "schedule": "0 0 0 1 1 *"})).await;
        let id = created["id"].as_str().unwrap();
        run(&app, &key, id, json!({})).await;
        let done = app.finished_runs(&key, id, 1).await;
        assert_eq!(done[0]["status"], "failed", "{source}: {done:?}");
        let failed = command(&app, &key, id).await;
        assert!(
            failed["error"]
                .as_str()
                .is_some_and(|e| e.contains("Last Field nope")),
            "{source}: {failed}"
        );
        assert_eq!(failed["last_value"], Value::Null, "{source}");
    }
}
