//! The apalis job system runs in the server process on both backends.

use sluice_tests::{TestApp, on_both_backends};
use std::time::Duration;

on_both_backends!(
    housekeeping_job_removes_expired_sessions,
    |backend| async move {
        // The test configuration ticks housekeeping every second.
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Jobs").await;
        let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
        let owner = app.store().users(&tenant.id).await.unwrap().remove(0);
        let (expiring, _) = app.store().create_session(&owner).await.unwrap();
        let before = app.store().count_sessions().await.unwrap();
        assert_eq!(before, 2);
        app.store()
            .set_session_expiry(
                &expiring.id,
                sluice_store::now() - chrono::Duration::minutes(1),
            )
            .await
            .unwrap();

        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while app.store().count_sessions().await.unwrap() != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cleanup job never ran"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            app.client.get(app.url("/")).send().await.unwrap().status(),
            200,
            "the live session survives"
        );
    }
);

/// The harness's own rule: a test that ends with due work no worker takes up
/// fails. Here a run is recorded as queued but never handed to the job queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "the test ended with due work")]
async fn a_test_that_leaves_due_work_behind_fails() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Leftover").await;
    let key = app.api_key_for(&user).await;
    let dir = app.sqlite_dir_for(&user).await;
    sluice_tests::sqlite_source(&dir.join("items.db"), sluice_tests::THREE_ITEMS).await;
    let connector: serde_json::Value = app
        .api_post_json(
            &key,
            "/api/v1/connections",
            &serde_json::json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
        )
        .await;
    let command: serde_json::Value = app
        .api_post_json(
            &key,
            "/api/v1/commands",
            &serde_json::json!({"connection_id": connector["id"], "sql": "SELECT * FROM items", "callback": {"url": "http://127.0.0.1:9/"}}),
        )
        .await;
    let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
    let command_id =
        sluice_store::ids::CommandId::parse(command["id"].as_str().expect("a command id"))
            .expect("a command id");
    app.store()
        .create_run(
            &tenant.id,
            &command_id,
            sluice_store::runs::NewRun {
                trigger: "manual",
                window_start: None,
                window_end: None,
                params: None,
                last_value_before: None,
            },
        )
        .await
        .unwrap();
}
