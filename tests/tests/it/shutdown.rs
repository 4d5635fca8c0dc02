//! SIGTERM to the real `sluice serve` while API clients create inboxes and a run
//! delivers batches to a slow receiver: the process exits within the deadline, and
//! after a restart on the same data directory every inbox whose create was answered
//! 2xx is there and the interrupted run is finished (or run again) to the last row.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{Receiver, ServeProcess, free_address, sqlite_source};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::crash::{
    api, assert_all_delivered_and_ready, delivered_ids, sluice, start_incremental_run,
    wait_until_completed,
};

const ROWS: i64 = 2000;
const BATCH: i64 = 20;
/// 100 batches at 300 ms each: the run is far from done when SIGTERM arrives.
const RECEIVER_DELAY: Duration = Duration::from_millis(300);
/// Enough to use up the store's connection pool (SQLite: 4).
const INBOX_CLIENTS: usize = 8;
/// The server's shutdown deadline is 15 s; this leaves room for process exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Inbox creates answered 2xx (by all clients) before SIGTERM is sent.
const ACCEPTED_BEFORE_SIGTERM: usize = 10;
/// How long the clients may take to get [`ACCEPTED_BEFORE_SIGTERM`] creates answered.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

async fn create_items_db(path: &std::path::Path) {
    sqlite_source(
        path,
        &format!(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, h TEXT);
             WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {ROWS})
             INSERT INTO items SELECT n, hex(randomblob(8)) FROM g;"
        ),
    )
    .await;
}

/// Creates inboxes in a loop until `stop`; returns the ids of those answered 2xx
/// and counts them in `accepted`. Errors are expected once the server stops.
async fn create_inboxes(
    base_url: String,
    key: String,
    client: usize,
    accepted_count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let mut accepted = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let created = http
            .post(format!("{base_url}/api/v1/inboxes"))
            .bearer_auth(&key)
            .json(&json!({"name": format!("client {client} inbox {n}")}))
            .send()
            .await;
        match created {
            Ok(response) if response.status().is_success() => {
                if let Ok(body) = response.json::<Value>().await {
                    accepted.push(body["id"].as_str().expect("inbox id").to_string());
                    accepted_count.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    accepted
}

/// Waits up to [`ACCEPT_TIMEOUT`] until `count` reaches `target`.
async fn wait_for_count(count: &AtomicUsize, target: usize) -> bool {
    let deadline = tokio::time::Instant::now() + ACCEPT_TIMEOUT;
    while count.load(Ordering::Relaxed) < target {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn inbox_ids(server: &ServeProcess, key: &str) -> BTreeSet<String> {
    let inboxes: Vec<Value> = api(server, key, Method::GET, "/api/v1/inboxes")
        .send()
        .await
        .expect("list inboxes")
        .json()
        .await
        .expect("inboxes JSON");
    inboxes
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_process_in_time_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = sluice(&dir.path().join("data"));
    let term = sluice.provision("Term Co", "term@term.test", "term test password");
    create_items_db(&term.sqlite_dir.join("items.db")).await;
    let key = term.key;
    let bind = free_address();
    let mut first = sluice.serve(&bind).await;

    let receiver = Receiver::start().await;
    receiver.respond_after(RECEIVER_DELAY);
    let connection =
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}});
    let id = start_incremental_run(&first, &key, connection, &receiver, BATCH).await;
    receiver.wait_for(3, Duration::from_secs(30)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let accepted_count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..INBOX_CLIENTS)
        .map(|client| {
            tokio::spawn(create_inboxes(
                first.base_url.clone(),
                key.clone(),
                client,
                accepted_count.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let creating = wait_for_count(&accepted_count, ACCEPTED_BEFORE_SIGTERM).await;

    first.terminate();
    let terminated = tokio::time::Instant::now();
    let exited = first.wait_for_exit(EXIT_TIMEOUT).await;
    eprintln!(
        "exit after SIGTERM: {exited:?} in {:?}",
        terminated.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    let mut accepted = Vec::new();
    for client in clients {
        accepted.extend(client.await.expect("inbox client"));
    }
    assert!(
        creating,
        "before SIGTERM, {INBOX_CLIENTS} clients got only {} inbox creates answered 2xx in \
         {ACCEPT_TIMEOUT:?}: the server stopped serving requests",
        accepted.len()
    );
    assert!(
        exited.is_some(),
        "sluice serve was still running {EXIT_TIMEOUT:?} after SIGTERM (with {} inboxes created and \
         a run in flight); {}",
        accepted.len(),
        first.log_tail()
    );
    let before_restart = delivered_ids(&receiver).len();
    assert!(
        before_restart < ROWS as usize,
        "SIGTERM came while the run was mid-way ({before_restart} rows)"
    );

    let second = sluice.serve(&bind).await;
    receiver.respond_after(Duration::ZERO);
    let present = inbox_ids(&second, &key).await;
    let lost: Vec<&String> = accepted
        .iter()
        .filter(|id| !present.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} inboxes answered 2xx before SIGTERM are gone after the restart: {lost:?}",
        lost.len(),
        accepted.len()
    );
    wait_until_completed(&second, &key, &id).await;
    assert_all_delivered_and_ready(&second, &key, &id, &receiver, ROWS).await;
}
