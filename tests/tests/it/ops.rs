//! Health, readiness, metrics, static assets and the app shell.

use sluice_tests::{Backend, TestApp, on_both_backends};

on_both_backends!(health_readiness_and_metrics, |backend| async move {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        reqwest::get(app.url("/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
    app.signup("Metrics").await;
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "sluice_http_requests_total{method=\"POST\",route=\"/signup\",status=\"303\"}"
        ),
        "{metrics}"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_area_has_a_page_with_the_tenant_name() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Shell").await;
    for path in [
        "/",
        "/connectors",
        "/inboxes",
        "/profiles",
        "/segments",
        "/segment-syncs",
        "/triggers",
        "/audit",
        "/settings",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("data-testid=\"tenant-name\">{}<", user.tenant)),
            "{path} shows the tenant"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
    }
    let unknown = app
        .client
        .get(app.url("/no-such-area"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    for asset in [
        "/static/vendor/pico/pico.min.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/app.css",
    ] {
        assert_eq!(
            reqwest::get(app.url(asset)).await.unwrap().status(),
            200,
            "{asset}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_files_and_secret_key_are_created_on_first_start() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for file in ["sluice.db", "jobs.db", "secret.key"] {
        assert!(app.data_dir.join(file).exists(), "{file} created");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// `/metrics` shows the instance's activity: with `SLUICE_METRICS_TOKEN` set only a
/// scraper holding it reads them (without one, only loopback clients do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_operators_token_when_one_is_set() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.metrics_token = Some("scrape-me-please".into())
    })
    .await;
    let client = reqwest::Client::new();
    for header in [None, Some("Bearer wrong-token"), Some("scrape-me-please")] {
        let mut request = client.get(app.url("/metrics"));
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        assert_eq!(request.send().await.unwrap().status(), 404, "{header:?}");
    }
    let scraped = client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me-please")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("sluice_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_only_when_served_over_https() {
    let plain = TestApp::spawn(Backend::Sqlite).await;
    let response = reqwest::get(plain.url("/login")).await.unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    let https = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://sluice.example.com".into())
    })
    .await;
    let response = reqwest::get(https.url("/login")).await.unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}
