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
