//! Fenced leases against real processes: a worker stalls (SIGSTOP) in the middle
//! of a run past its lease, a second process takes the command over and
//! completes it, and when the first wakes (SIGCONT) none of its late writes land.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{Receiver, ServeProcess, Sluice, TestDatabase, free_address, sqlite_source};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `sluice` on its own data directory, sharing the control plane, the secret
/// key and the SQLite root with its sibling.
fn sluice(data_dir: &Path, database_url: &str, sqlite_root: &Path) -> Sluice {
    Sluice::new(data_dir)
        .env("SLUICE_DATABASE_URL", database_url)
        .env(
            "SLUICE_SECRET_KEY",
            "fencing-test-secret-key-0123456789abcdef",
        )
        .env("SLUICE_SQLITE_ROOT", &sqlite_root.display().to_string())
        .env("SLUICE_RUN_LEASE_SECS", "2")
        .env("SLUICE_DELIVERY_RETRY_DELAYS", "0.1")
        .env("RUST_LOG", "warn")
}

fn api(server: &ServeProcess, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(key)
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("API request")
        .json()
        .await
        .expect("JSON answer")
}

fn signal(process: &ServeProcess, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_that_lost_its_lease_writes_nothing_when_it_wakes() {
    let database = TestDatabase::create("sluice_fencing").await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_root = dir.path().join("sqlite");
    let first = sluice(&dir.path().join("a"), &database.url, &sqlite_root);
    let second = sluice(&dir.path().join("b"), &database.url, &sqlite_root);
    let tenant = first.provision("Fencing", "owner@fencing.example", "correct horse battery");
    let tenant_id = tenant.sqlite_dir.file_name().unwrap().to_owned();
    let source = sqlite_root.join(&tenant_id).join("items.db");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    sqlite_source(
        &source,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, h TEXT);
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await;

    let mut a = first.serve(&free_address()).await;
    let key = tenant.key.as_str();
    let receiver = Receiver::start().await;
    receiver.respond_after(Duration::from_secs(2));
    let connector = json_of(api(&a, key, Method::POST, "/api/v1/connections").json(
        &json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    ))
    .await;
    let command = json_of(api(&a, key, Method::POST, "/api/v1/commands").json(&json!({
        "connection_id": connector["id"], "name": "incremental", "kind": "static",
        "sql": "SELECT id, h FROM items WHERE id > @last_value@ ORDER BY id",
        "callback": {"url": receiver.url}, "last_field": "id", "last_value": "0",
        "batch_size": 1, "schedule": "0 0 0 1 1 *",
    })))
    .await;
    let id = command["id"].as_str().expect("command id").to_string();
    let started = api(&a, key, Method::POST, &format!("/api/v1/commands/{id}/run"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);

    // The first worker is waiting for the receiver's answer to its first batch.
    assert_eq!(receiver.wait_for(1, Duration::from_secs(20)).await.len(), 1);
    signal(&a, "STOP");
    receiver.respond_after(Duration::ZERO);
    sqlite_source(&source, "INSERT INTO items VALUES (4, 'd');").await;

    // The second process releases the stalled run once its lease ran out, and
    // runs the command again from its unmoved cursor.
    let b = second.serve(&free_address()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs = json_of(api(
            &b,
            key,
            Method::GET,
            &format!("/api/v1/commands/{id}/runs"),
        ))
        .await;
        if runs
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "succeeded")
        {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never taken over: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stalled = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "failed")
        .cloned()
        .expect("the stalled run, released");
    let taken_over = json_of(api(&b, key, Method::GET, &format!("/api/v1/commands/{id}"))).await;
    assert_eq!(taken_over["last_value"], "4", "{taken_over}");

    // Wake the first worker: its answer arrives, and everything it tries to
    // write (the batch, the completion with cursor 3) must be refused.
    signal(&a, "CONT");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = json_of(api(&b, key, Method::GET, &format!("/api/v1/commands/{id}"))).await;
    assert_eq!(
        after["last_value"], "4",
        "the stalled worker moved the cursor: {after}"
    );
    assert_eq!(after["status"], "READY", "{after}");
    let runs_after = json_of(api(
        &b,
        key,
        Method::GET,
        &format!("/api/v1/commands/{id}/runs"),
    ))
    .await;
    let stalled_after = runs_after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == stalled["id"])
        .cloned()
        .unwrap();
    assert_eq!(
        stalled_after, stalled,
        "the stalled run was not written to after it woke"
    );
    assert_eq!(
        runs_after
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count(),
        1,
        "{runs_after}"
    );
    let log = a.log();
    assert!(
        log.contains("lease was lost"),
        "the first worker says why it stopped: {log}"
    );
    a.kill();
}

sluice_tests::on_both_backends!(
    a_lease_has_one_holder_and_a_takeover_fences_the_old_one,
    |backend| async move {
        let app = sluice_tests::TestApp::spawn(backend).await;
        let store = app.store();
        let ttl = chrono::Duration::milliseconds(300);
        let first = store
            .acquire_lease("test:resource", "first/1", ttl)
            .await
            .unwrap()
            .expect("a free lease is taken");
        assert_eq!(first.epoch, 1);
        assert!(
            store
                .acquire_lease("test:resource", "second/1", ttl)
                .await
                .unwrap()
                .is_none(),
            "held by another owner"
        );
        let first = store
            .renew_lease(&first, ttl)
            .await
            .expect("the holder renews");

        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = store
            .acquire_lease("test:resource", "second/1", ttl)
            .await
            .unwrap()
            .expect("an expired lease is taken over");
        assert_eq!(second.epoch, 2, "a takeover bumps the epoch");
        let lost = store.renew_lease(&first, ttl).await.unwrap_err();
        assert!(
            matches!(lost, sluice_store::StoreError::LeaseLost { .. }),
            "{lost}"
        );
        // The old holder cannot release the new holder's lease either.
        store.release_lease(&first).await.unwrap();
        store
            .renew_lease(&second, ttl)
            .await
            .expect("still held by the second");
        store.release_lease(&second).await.unwrap();
        let third = store
            .acquire_lease("test:resource", "third/1", ttl)
            .await
            .unwrap()
            .expect("released, so free again");
        assert_eq!(third.epoch, 1);
    }
);

/// The value of an unlabelled counter on a process's `/metrics`.
async fn counter(process: &ServeProcess, name: &str) -> u64 {
    let text = reqwest::get(process.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().expect("a counter value"))
}

/// Two processes on one PostgreSQL control plane share the queued runs: each
/// process counts the runs it claimed, both counts are above zero, they add up
/// to the runs queued, and the callback saw every run exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_queued_runs_and_none_runs_twice() {
    const RUNS: usize = 24;
    let database = TestDatabase::create("sluice_two_workers").await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_root = dir.path().join("sqlite");
    let processes = [
        sluice(&dir.path().join("a"), &database.url, &sqlite_root),
        sluice(&dir.path().join("b"), &database.url, &sqlite_root),
    ]
    .map(|s| s.env("SLUICE_MAX_RUNS_IN_FLIGHT_PER_TENANT", "100"));
    let tenant = processes[0].provision("Pair", "owner@pair.example", "correct horse battery");
    let tenant_id = tenant.sqlite_dir.file_name().unwrap().to_owned();
    let source = sqlite_root.join(&tenant_id).join("items.db");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    sqlite_source(
        &source,
        "CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO items VALUES (1);",
    )
    .await;
    let a = processes[0].serve(&free_address()).await;
    let b = processes[1].serve(&free_address()).await;
    let key = tenant.key.as_str();
    let receiver = Receiver::start().await;
    // Each run takes a while, so neither process can drain the queue alone
    // before the other looks (each runs two runs of a connector at a time).
    receiver.respond_after(Duration::from_millis(150));
    let connector = json_of(api(&a, key, Method::POST, "/api/v1/connections").json(
        &json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    ))
    .await;
    for n in 0..RUNS {
        let via = if n % 2 == 0 { &a } else { &b };
        let created = api(via, key, Method::POST, "/api/v1/commands")
            .json(&json!({
                "connection_id": connector["id"], "kind": "dynamic",
                "sql": "SELECT id FROM items", "callback": {"url": receiver.url},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    }

    let posts = receiver.wait_for(RUNS, Duration::from_secs(90)).await;
    assert_eq!(posts.len(), RUNS, "every run delivered");
    let finished = "sluice_command_runs_total{outcome=\"succeeded\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while counter(&a, finished).await + counter(&b, finished).await < RUNS as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "runs never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let claims = "sluice_command_run_claims_total";
    let (by_a, by_b) = (counter(&a, claims).await, counter(&b, claims).await);
    assert!(
        by_a > 0 && by_b > 0,
        "both processes took work: {by_a} and {by_b}"
    );
    assert_eq!(by_a + by_b, RUNS as u64, "no run was claimed twice");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut keys: Vec<String> = receiver
        .received()
        .iter()
        .map(|post| post.header("idempotency-key").expect("a key").to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), RUNS, "each run's batch arrived once");
    assert_eq!(receiver.received().len(), RUNS, "and nothing else arrived");
}
