//! Inboxes under abuse (security issue #8): a nested-array flood leaves the server's
//! memory flat; the per-token rate limit, the per-inbox quota and the nesting depth
//! answer with the limit they hit; retention removes old messages; the inbox page
//! links each message's exact body as a download; commands obey the same limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_tests::{Backend, TestApp, on_both_backends, sqlite_source};
use std::time::Duration;

/// Creates an inbox through the API; returns its id and public URL.
async fn create_inbox(app: &TestApp, key: &str, name: &str) -> (String, String) {
    let response = app
        .api(Method::POST, key, "/api/v1/inboxes")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let inbox: Value = response.json().await.unwrap();
    (
        inbox["id"].as_str().unwrap().to_string(),
        inbox["url"].as_str().unwrap().to_string(),
    )
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap()
}

async fn messages(app: &TestApp, key: &str, inbox: &str) -> Vec<Value> {
    let body: Value = app
        .api_get_json(key, &format!("/api/v1/inboxes/{inbox}/messages"))
        .await;
    body.as_array().unwrap().clone()
}

/// `levels` arrays inside each other: `[[[…]]]`.
fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// A field of this process's `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_array_flood_leaves_the_servers_memory_flat() {
    // The server runs in this process: its peak memory is this process's VmHWM.
    let app =
        TestApp::spawn_with(Backend::Sqlite, |c| c.inbox.inbox_rate_per_minute = 100_000).await;
    let user = app.signup("Flood").await;
    let key = app.api_key_for(&user).await;
    let (id, url) = create_inbox(&app, &key, "flood").await;
    // Just under 1 MiB of 32-deep arrays: about 30 MiB each once indented.
    let chain = nested(31);
    let body = format!(
        "[{}]",
        vec![chain.as_str(); 1_000_000 / (chain.len() + 1)].join(",")
    );
    assert!(body.len() < 1024 * 1024);
    let page = app.url(&format!("/inboxes/{id}"));
    assert_eq!(post(&url, body.clone()).await.status(), 202);
    assert_eq!(app.client.get(&page).send().await.unwrap().status(), 200);
    let before = status_kb("VmHWM:");

    let mut accepted = 1;
    loop {
        let response = post(&url, body.clone()).await;
        if response.status() != 202 {
            assert_eq!(
                response.status(),
                413,
                "the flood ends at the inbox's quota"
            );
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["limit"], "max_bytes");
            break;
        }
        accepted += 1;
        assert!(accepted <= 100, "the quota never stopped the flood");
    }
    for _ in 0..3 {
        let html = app
            .client
            .get(&page)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.len() < 2 * 1024 * 1024,
            "the page is {} bytes",
            html.len()
        );
        assert!(html.contains("Show full"));
    }
    let after = status_kb("VmHWM:");
    let grown_mb = (after.saturating_sub(before)) / 1024;
    eprintln!(
        "{accepted} messages of {} bytes; VmHWM {before} kB -> {after} kB",
        body.len()
    );
    assert!(
        grown_mb < 64,
        "peak memory grew by {grown_mb} MB ({before} kB -> {after} kB) for {accepted} stored messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hook_token_is_rate_limited_with_429_and_retry_after() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.inbox.inbox_rate_per_minute = 3).await;
    let user = app.signup("Rate").await;
    let key = app.api_key_for(&user).await;
    let (_, url) = create_inbox(&app, &key, "busy").await;
    let (_, other) = create_inbox(&app, &key, "quiet").await;
    for _ in 0..3 {
        assert_eq!(post(&url, "{}").await.status(), 202);
    }
    let refused = post(&url, "{}").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "Retry-After {retry_after}");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    assert_eq!(error["error"]["limit"], "rate_per_minute");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 a minute")
    );
    assert_eq!(
        post(&other, "{}").await.status(),
        202,
        "another token has its own allowance"
    );
}

on_both_backends!(
    a_full_inbox_answers_413_naming_the_limit,
    |backend| async move {
        let app = TestApp::spawn_with(backend, |c| {
            c.inbox.inbox_max_messages = 3;
            c.inbox.inbox_max_bytes = 1000;
        })
        .await;
        let user = app.signup("Quota").await;
        let key = app.api_key_for(&user).await;

        let (counted, url) = create_inbox(&app, &key, "counted").await;
        for n in 0..3 {
            assert_eq!(
                post(&url, json!({ "n": n }).to_string()).await.status(),
                202
            );
        }
        let full = post(&url, "{}").await;
        assert_eq!(full.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let error: Value = full.json().await.unwrap();
        assert_eq!(error["error"]["code"], "inbox_full");
        assert_eq!(error["error"]["limit"], "max_messages");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 3 messages")
        );
        assert_eq!(messages(&app, &key, &counted).await.len(), 3);

        let (_, url) = create_inbox(&app, &key, "weighed").await;
        let big = format!("\"{}\"", "x".repeat(598));
        assert_eq!(post(&url, big.clone()).await.status(), 202);
        let full = post(&url, big).await;
        assert_eq!(full.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let error: Value = full.json().await.unwrap();
        assert_eq!(error["error"]["limit"], "max_bytes");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 1000 bytes")
        );

        // Concurrent POSTs cannot slip past the count together.
        let (raced, url) = create_inbox(&app, &key, "raced").await;
        let posts = (0..8).map(|n| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, json!({ "n": n }).to_string()).await.status() })
        });
        let statuses = futures::future::join_all(posts).await;
        let accepted = statuses
            .iter()
            .filter(|s| *s.as_ref().unwrap() == 202)
            .count();
        assert_eq!(accepted, 3, "{statuses:?}");
        assert_eq!(messages(&app, &key, &raced).await.len(), 3);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_deeper_than_the_limit_is_refused_with_400_naming_the_depth() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Deep").await;
    let key = app.api_key_for(&user).await;
    let (id, url) = create_inbox(&app, &key, "deep").await;
    assert_eq!(post(&url, nested(32)).await.status(), 202);
    // Brackets inside strings are text, not nesting.
    assert_eq!(
        post(&url, json!(["[".repeat(100)]).to_string())
            .await
            .status(),
        202
    );
    for levels in [33, 500_000] {
        let refused = post(&url, nested(levels)).await;
        assert_eq!(refused.status(), 400, "{levels} levels");
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["code"], "too_deep");
        assert_eq!(error["error"]["field"], "body");
        assert_eq!(error["error"]["limit"], "max_depth");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("deeper than 32 levels")
        );
    }
    assert_eq!(messages(&app, &key, &id).await.len(), 2);
}

/// Moves a stored message's receipt into the past, straight in the control plane.
async fn backdate(app: &TestApp, message: &str) {
    let sql = format!(
        "UPDATE inbox_messages SET received_at = '2000-01-01 00:00:00' WHERE id = '{message}'"
    );
    use sqlx::Connection;
    match app.database_url() {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(app.data_dir.join("sluice.db"))
                .busy_timeout(Duration::from_secs(5));
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

on_both_backends!(
    retention_removes_old_messages_and_all_but_the_newest,
    |backend| async move {
        // Housekeeping runs every second in tests.
        let app = TestApp::spawn_with(backend, |c| c.inbox.inbox_retention_messages = 3).await;
        let user = app.signup("Retention").await;
        let key = app.api_key_for(&user).await;
        let (aged, url) = create_inbox(&app, &key, "aged").await;
        let stored: Value = post(&url, "{}").await.json().await.unwrap();
        backdate(&app, stored["id"].as_str().unwrap()).await;

        let (crowded, url) = create_inbox(&app, &key, "crowded").await;
        let mut ids = Vec::new();
        for n in 0..5 {
            let stored: Value = post(&url, json!({ "n": n }).to_string())
                .await
                .json()
                .await
                .unwrap();
            ids.push(stored["id"].as_str().unwrap().to_string());
        }
        let newest_three: Vec<String> = ids.iter().rev().take(3).cloned().collect();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left_aged = messages(&app, &key, &aged).await;
            let left_crowded: Vec<String> = messages(&app, &key, &crowded)
                .await
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect();
            if left_aged.is_empty() && left_crowded == newest_three {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "aged inbox: {left_aged:?}; crowded inbox: {left_crowded:?}, expected {newest_three:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_full_downloads_the_exact_body_as_an_attachment() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Download").await;
    let key = app.api_key_for(&user).await;
    let (id, url) = create_inbox(&app, &key, "big").await;
    let body = format!(
        "{{ \"html\": \"<script>alert(1)</script>\",\n  \"text\": \"{}\" }}",
        "é".repeat(10_000)
    );
    assert_eq!(post(&url, body.clone()).await.status(), 202);
    let html = app.page_text(&format!("/inboxes/{id}")).await;
    assert!(
        html.contains("Showing the first 8192 bytes"),
        "a truncated preview"
    );
    assert!(!html.contains("<script>alert"), "the body is escaped");
    let class = html
        .find("class=\"download-message\"")
        .expect("a download link");
    let href = html[..class].rfind("href=\"").unwrap() + "href=\"".len();
    let link = html[href..].split('"').next().unwrap().to_string();

    let download = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let headers = download.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        download.text().await.unwrap(),
        body,
        "the exact stored body"
    );

    // Another tenant cannot download it.
    let other = sluice_tests::TestUser::unique("Other");
    let browser = TestApp::browser_like_client();
    app.signup_with(&browser, &other).await;
    assert_eq!(
        browser.get(app.url(&link)).send().await.unwrap().status(),
        404
    );
}

/// Waits for the command's first run to end; returns it.
async fn finished_run(app: &TestApp, key: &str, command: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Value = app
            .api_get_json(key, &format!("/api/v1/commands/{command}/runs"))
            .await;
        if let Some(run) = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "succeeded" || r["status"] == "failed")
        {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never ended: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends!(
    a_command_fails_when_its_batch_would_overflow_the_inbox,
    |backend| async move {
        let app = TestApp::spawn_with(backend, |c| c.inbox.inbox_max_messages = 2).await;
        let user = app.signup("CmdQuota").await;
        let key = app.api_key_for(&user).await;
        sqlite_source(
            &app.sqlite_dir_for(&user).await.join("items.db"),
            "CREATE TABLE items (id INTEGER PRIMARY KEY, doc TEXT);
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
        )
        .await;
        let connection: Value = app.api_post_json(&key, "/api/v1/connections", &json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}})).await;
        let (inbox, _) = create_inbox(&app, &key, "small").await;
        let command: Value = app
            .api_post_json(
                &key,
                "/api/v1/commands",
                &json!({
                    "connection_id": connection["id"],
                    "kind": "dynamic",
                    "sql": "SELECT id, doc FROM items ORDER BY id",
                    "callback": {"inbox_id": inbox},
                    "batch_size": 1
                }),
            )
            .await;
        let id = command["id"].as_str().unwrap();
        let run = finished_run(&app, &key, id).await;
        assert_eq!(run["status"], "failed", "{run}");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains("batch 3")
                && error.contains("at most 2 messages")
                && error.contains("max_messages"),
            "{error}"
        );
        let state: Value = app
            .api_get_json(&key, &format!("/api/v1/commands/{id}"))
            .await;
        assert_eq!(state["status"], "ERROR");
        assert_eq!(
            messages(&app, &key, &inbox).await.len(),
            2,
            "the first two batches stay"
        );
    }
);

on_both_backends!(
    a_command_batch_nested_too_deep_fails_naming_the_depth,
    |backend| async move {
        let app = TestApp::spawn_with(backend, |c| c.inbox.inbox_max_depth = 4).await;
        let user = app.signup("CmdDepth").await;
        let key = app.api_key_for(&user).await;
        sqlite_source(
            &app.sqlite_dir_for(&user).await.join("docs.db"),
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc JSON);
         INSERT INTO docs VALUES (1, '[[[[1]]]]');",
        )
        .await;
        let connection: Value = app
            .api_post_json(
                &key,
                "/api/v1/connections",
                &json!({"name": "docs", "kind": "sqlite", "auth": {"params": {"path": "docs.db"}}}),
            )
            .await;
        let (inbox, _) = create_inbox(&app, &key, "shallow").await;
        let command: Value = app
            .api_post_json(
                &key,
                "/api/v1/commands",
                &json!({
                    "connection_id": connection["id"],
                    "kind": "dynamic",
                    // One array of rows, each an object nesting three more: five levels.
                "sql": "SELECT doc AS \"a.b.c.d\" FROM docs",
                    "callback": {"inbox_id": inbox}
                }),
            )
            .await;
        let run = finished_run(&app, &key, command["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed", "{run}");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains("deeper than 4 levels") && error.contains("max_depth"),
            "{error}"
        );
        assert!(messages(&app, &key, &inbox).await.is_empty());
    }
);

/// Follows `Link: rel="next"` from `first`; returns each page's message ids.
async fn pages_of_messages(app: &TestApp, key: &str, first: String) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(first);
    while let Some(path) = next.take() {
        let response = app.api(Method::GET, key, &path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        next = response.headers().get("link").map(|l| {
            l.to_str()
                .unwrap()
                .split(['<', '>'])
                .nth(1)
                .unwrap()
                .to_string()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        pages.push(
            page.iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect(),
        );
        assert!(pages.len() <= 20, "the cursor ends");
    }
    pages
}

/// The API pages an inbox's messages with a cursor, by count and by size: a page
/// never carries more than 8 MiB of bodies, however many fit the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_list_pages_by_count_and_by_size() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("MsgPages").await;
    let key = app.api_key_for(&user).await;
    let (inbox, url) = create_inbox(&app, &key, "paged").await;
    let big = format!("\"{}\"", "x".repeat(1_000_000));
    for _ in 0..9 {
        assert_eq!(post(&url, big.clone()).await.status(), 202);
    }
    let all: Vec<String> = messages(&app, &key, &inbox)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 8, "the default page stops at 8 MiB of bodies");

    let by_size = pages_of_messages(&app, &key, format!("/api/v1/inboxes/{inbox}/messages")).await;
    assert_eq!(by_size.iter().map(Vec::len).collect::<Vec<_>>(), [8, 1]);
    let by_count = pages_of_messages(
        &app,
        &key,
        format!("/api/v1/inboxes/{inbox}/messages?limit=4"),
    )
    .await;
    assert_eq!(by_count.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
    assert_eq!(
        by_count.concat(),
        by_size.concat(),
        "newest first, each once"
    );
    for (query, field) in [("limit=0", "limit"), ("before=nope", "before")] {
        let bad = app
            .api(
                Method::GET,
                &key,
                &format!("/api/v1/inboxes/{inbox}/messages?{query}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad.json::<Value>().await.unwrap()["error"]["field"], field);
    }
}
