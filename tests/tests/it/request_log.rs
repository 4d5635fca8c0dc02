//! The request log of the real `sluice serve` (security issue #8): hook and
//! invitation tokens, secret query values and connection-string passwords from a
//! rejected request never reach it.

use serde_json::{Value, json};
use sluice_tests::{Sluice, free_address};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_never_contains_tokens_or_secret_query_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sluice = Sluice::new(dir.path()).env("RUST_LOG", "info");
    let tenant = sluice.provision("Log", "log@example.test", "correct horse battery");
    let server = sluice.serve(&free_address()).await;
    let http = reqwest::Client::new();

    let inbox: Value = http
        .post(server.url("/api/v1/inboxes"))
        .bearer_auth(&tenant.key)
        .json(&json!({ "name": "logged" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_url = inbox["url"].as_str().expect("inbox url");
    let hook_token = hook_url.rsplit('/').next().unwrap().to_string();
    let posted = http
        .post(hook_url)
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);

    let invitation_token = "inv_secretinvitationtoken0123456789";
    http.get(server.url(&format!("/invite/{invitation_token}")))
        .send()
        .await
        .unwrap();
    http.get(server.url(
        "/login?password=pw-secret-value&token=tok-secret-value&api_key=key-secret-value&page=2",
    ))
    .send()
    .await
    .unwrap();
    // A connection string the parser rejects, and a body serde quotes in its error.
    for body in [
        json!({
            "name": "bad",
            "connectionString": "jdbc:mariadb://db.example:notaport/shop?user=u&password=conn-secret-pw"
        }),
        json!({ "name": "bad", "auth": "conn-secret-auth" }),
    ] {
        let rejected = http
            .post(server.url("/api/v1/connections"))
            .bearer_auth(&tenant.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(rejected.status().is_client_error(), "{}", rejected.status());
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(
        log.contains("request finished") && log.contains("/hooks/[redacted]"),
        "requests are logged, redacted: {}",
        server.log_tail()
    );
    for secret in [
        hook_token.as_str(),
        invitation_token,
        "pw-secret-value",
        "tok-secret-value",
        "key-secret-value",
        "conn-secret",
    ] {
        assert!(!log.contains(secret), "the log contains {secret}:\n{log}");
    }
}
