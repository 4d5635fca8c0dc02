//! Kill the real `sluice` process (SIGKILL) in the middle of a multi-batch run,
//! start it again, and check that every row was delivered at least once and that
//! the cursor ends right. The helpers here are shared with `shutdown.rs`.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{Receiver, ServeProcess, Sluice, TestDatabase, free_address};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const ROWS: i64 = 3000;

/// `sluice` on `data_dir` with a short run lease and fast callback retries.
pub fn sluice(data_dir: &Path) -> Sluice {
    Sluice::new(data_dir)
        .env("SLUICE_RUN_LEASE_SECS", "3")
        .env("SLUICE_DELIVERY_RETRY_DELAYS", "0.1,0.2")
}

/// A JSON API request to `server` with a bearer key.
pub fn api(
    server: &ServeProcess,
    key: &str,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(key)
}

async fn created_id(request: reqwest::RequestBuilder) -> String {
    let response = request.send().await.expect("API request");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON answer");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("an id").to_string()
}

/// Creates a connector from `connection` and an incremental command over its
/// `items (id, h)` table POSTing batches of `batch_size` rows to `receiver`, starts
/// a run and returns the command's id.
pub async fn start_incremental_run(
    server: &ServeProcess,
    key: &str,
    connection: Value,
    receiver: &Receiver,
    batch_size: i64,
) -> String {
    let connection =
        created_id(api(server, key, Method::POST, "/api/v1/connections").json(&connection)).await;
    let command = created_id(
        api(server, key, Method::POST, "/api/v1/commands").json(&json!({
            "connection_id": connection,
            "sql": "SELECT id, h FROM items WHERE id > @last_value@ ORDER BY id",
            "callback": {"url": receiver.url},
            "last_field": "id", "last_value": "0", "batch_size": batch_size,
        })),
    )
    .await;
    let started = api(
        server,
        key,
        Method::POST,
        &format!("/api/v1/commands/{command}/run"),
    )
    .send()
    .await
    .expect("run request");
    assert_eq!(started.status(), 202);
    command
}

/// Waits (up to 60 s) until the command has a succeeded run and none queued or
/// running; returns its runs, newest first.
pub async fn wait_until_completed(server: &ServeProcess, key: &str, id: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Vec<Value> = api(
            server,
            key,
            Method::GET,
            &format!("/api/v1/commands/{id}/runs"),
        )
        .send()
        .await
        .expect("runs request")
        .json()
        .await
        .expect("runs JSON");
        if runs.iter().any(|r| r["status"] == "succeeded")
            && runs
                .iter()
                .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
        {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never completed after the restart: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn delivered_ids(receiver: &Receiver) -> Vec<i64> {
    receiver
        .received()
        .iter()
        .flat_map(|r| {
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every row 1..=`rows` reached `receiver` at least once, the cursor is the last
/// row's id and the command is READY again.
pub async fn assert_all_delivered_and_ready(
    server: &ServeProcess,
    key: &str,
    id: &str,
    receiver: &Receiver,
    rows: i64,
) {
    let delivered: BTreeSet<i64> = delivered_ids(receiver).into_iter().collect();
    let expected: BTreeSet<i64> = (1..=rows).collect();
    assert_eq!(delivered, expected, "every row delivered at least once");
    let state: Value = api(server, key, Method::GET, &format!("/api/v1/commands/{id}"))
        .send()
        .await
        .expect("command request")
        .json()
        .await
        .expect("command JSON");
    assert_eq!(
        state["last_value"],
        rows.to_string(),
        "the cursor is the last row's id"
    );
    assert_eq!(state["status"], "READY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_no_rows_and_the_cursor_ends_right() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = sluice(&dir.path().join("data"));
    let source = TestDatabase::create("sluice_src").await;
    source.execute(&format!("CREATE TABLE items (id bigint PRIMARY KEY, h text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;")).await;
    let key = sluice
        .provision("Crash Co", "crash@crash.test", "crash test password")
        .key;
    let bind = free_address();
    let mut first = sluice.serve(&bind).await;

    let url = url::Url::parse(&source.url).unwrap();
    let connection = json!({"name": "items", "kind": "postgres", "auth": {"params": {"server": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "database": source.name, "username": "postgres", "sslMode": "disabled"}}});
    let receiver = Receiver::start().await;
    receiver.respond_after(Duration::from_millis(100));
    let id = start_incremental_run(&first, &key, connection, &receiver, 100).await;

    // Mid-run: some batches are in, most are not.
    receiver.wait_for(5, Duration::from_secs(30)).await;
    first.kill();
    let before_restart = delivered_ids(&receiver);
    assert!(
        before_restart.len() < ROWS as usize,
        "the run was interrupted mid-way ({} rows)",
        before_restart.len()
    );

    let mut second = sluice.serve(&bind).await;
    receiver.respond_after(Duration::ZERO);
    let runs = wait_until_completed(&second, &key, &id).await;
    // The killed run is never resumed: it is released as interrupted and the
    // command runs again from its unmoved cursor.
    let released = runs.iter().any(|r| {
        r["status"] == "failed"
            && r["error"]
                .as_str()
                .is_some_and(|e| e.contains("interrupted"))
    });
    assert!(released, "{runs:?}");
    assert_all_delivered_and_ready(&second, &key, &id, &receiver, ROWS).await;
    second.kill();
}

/// A callback retry is a row that becomes due, not a sleep: while a failed batch
/// waits for its next attempt the run shows `retrying` (attempts, next attempt),
/// a SIGKILL then loses nothing, and after the restart the same run resumes from
/// the failed batch — the batches before it are not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_callback_retry_resumes_the_run_from_the_failed_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the first process is surely killed while the retry waits,
    // even on a loaded machine (a kill after it started would interrupt the run).
    let sluice = sluice(&dir.path().join("data")).env("SLUICE_DELIVERY_RETRY_DELAYS", "8,8");
    let tenant = sluice.provision("Retry Co", "retry@retry.test", "retry test password");
    sluice_tests::sqlite_source(
        &tenant.sqlite_dir.join("items.db"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, h TEXT);
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await;
    let bind = free_address();
    let mut first = sluice.serve(&bind).await;
    let receiver = Receiver::start().await;
    // Batch 1 arrives; batch 2's first attempt fails.
    receiver.respond_with(&[200, 500]);
    let connection =
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}});
    let id = start_incremental_run(&first, &tenant.key, connection, &receiver, 1).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let retrying = loop {
        let runs: Vec<Value> = api(
            &first,
            &tenant.key,
            Method::GET,
            &format!("/api/v1/commands/{id}/runs"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        if let Some(run) = runs.iter().find(|r| r["status"] == "retrying") {
            break run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never retrying: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(retrying["attempts"], 1, "{retrying}");
    assert_eq!(retrying["batches"], 1, "{retrying}");
    assert!(retrying["next_attempt_at"].is_string(), "{retrying}");
    assert!(
        retrying["error"].as_str().unwrap().contains("HTTP 500"),
        "{retrying}"
    );
    first.kill();
    let due: chrono::DateTime<chrono::Utc> = retrying["next_attempt_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("next_attempt_at");
    assert!(
        chrono::Utc::now() < due,
        "the first process was killed only after its retry was due ({due}): this test needs a less loaded machine"
    );

    let second = sluice.serve(&bind).await;
    let runs = wait_until_completed(&second, &tenant.key, &id).await;
    assert_eq!(runs.len(), 1, "the same run resumed, no new one: {runs:?}");
    assert_eq!(runs[0]["id"], retrying["id"]);
    assert_eq!(runs[0]["status"], "succeeded");
    let batches: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("sluice-batch").unwrap_or("?").to_string())
        .collect();
    assert_eq!(batches, ["1", "2", "2", "3"], "batch 1 was not sent again");
    assert_all_delivered_and_ready(&second, &tenant.key, &id, &receiver, 3).await;
}
