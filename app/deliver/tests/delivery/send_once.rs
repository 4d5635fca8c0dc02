//! What one attempt sends and how it reads the answer.

use std::time::Duration;

use sluice_deliver::{RESPONSE_EXCERPT_BYTES, Signing, verify};

use crate::support::{Receiver, Reply, closed_port};
use crate::{json_delivery, outbound_allowing_private};

#[tokio::test]
async fn body_headers_and_a_verifiable_signature_arrive() {
    let receiver = Receiver::start(vec![Reply::status(200).body("thanks")]).await;
    let outbound = outbound_allowing_private();
    let secret = b"a shared secret".to_vec();
    let mut delivery = json_delivery(receiver.url("/hooks/orders"));
    delivery.idempotency_key = Some("sync-42-batch-3".into());
    delivery.headers = vec![
        ("X-Tenant".into(), "acme".into()),
        ("Authorization".into(), "Bearer token-1".into()),
    ];
    delivery.signing = Some(Signing {
        message_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".into(),
        secret: secret.clone(),
    });

    let attempt = outbound.send_once(&delivery).await;

    assert!(attempt.succeeded(), "{attempt:?}");
    assert_eq!(attempt.number, 1);
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.response_excerpt, "thanks");
    assert_eq!(attempt.error, None);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/orders");
    assert_eq!(request.body, delivery.body);
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("idempotency-key"), "sync-42-batch-3");
    assert_eq!(header("x-tenant"), "acme");
    assert_eq!(header("authorization"), "Bearer token-1");
    assert_eq!(header("webhook-id"), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");

    let timestamp: i64 = header("webhook-timestamp").parse().expect("unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - timestamp).abs() <= 5,
        "timestamp {timestamp} vs now {now}"
    );

    let signature = header("webhook-signature");
    assert!(signature.starts_with("v1,"), "{signature}");
    let id = header("webhook-id");
    assert!(verify(&secret, &id, timestamp, &request.body, &signature));
    // Tampering with any signed part breaks verification.
    assert!(!verify(
        &secret,
        &id,
        timestamp,
        br#"{"rows":[{"id":2}]}"#,
        &signature
    ));
    assert!(!verify(
        &secret,
        &id,
        timestamp + 1,
        &request.body,
        &signature
    ));
    assert!(!verify(
        &secret,
        "msg_other",
        timestamp,
        &request.body,
        &signature
    ));
    assert!(!verify(
        b"wrong secret",
        &id,
        timestamp,
        &request.body,
        &signature
    ));
}

#[tokio::test]
async fn unsigned_deliveries_carry_no_webhook_headers() {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let outbound = outbound_allowing_private();

    let attempt = outbound.send_once(&json_delivery(receiver.url("/"))).await;

    assert!(attempt.succeeded());
    let request = &receiver.requests()[0];
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "idempotency-key",
    ] {
        assert!(request.headers.get(name).is_none(), "{name}");
    }
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_reported_as_timed_out() {
    let receiver = Receiver::start(vec![Reply::status(200).after(Duration::from_secs(3))]).await;
    let outbound = outbound_allowing_private();
    let mut delivery = json_delivery(receiver.url("/slow"));
    delivery.timeout = Duration::from_millis(300);

    let attempt = outbound.send_once(&delivery).await;

    assert!(!attempt.succeeded());
    assert!(!attempt.permanent);
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.error.as_deref(), Some("timed out after 300ms"));
    assert!(
        attempt.duration < Duration::from_secs(2),
        "{:?}",
        attempt.duration
    );
}

#[tokio::test]
async fn a_closed_port_is_reported_as_connection_refused() {
    let port = closed_port().await;
    let outbound = outbound_allowing_private();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();

    let attempt = outbound.send_once(&json_delivery(url)).await;

    assert!(!attempt.succeeded());
    assert!(!attempt.permanent, "a receiver that is down may come back");
    assert_eq!(attempt.error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn an_unknown_host_is_reported_as_unresolvable() {
    let outbound = outbound_allowing_private();
    let url = url::Url::parse("http://no-such-host.invalid/").unwrap();

    let attempt = outbound.send_once(&json_delivery(url)).await;

    assert!(!attempt.succeeded());
    let error = attempt.error.unwrap_or_default();
    assert!(
        error.starts_with("could not resolve host no-such-host.invalid"),
        "{error}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(vec![
        Reply::status(302).header("location", "/elsewhere"),
        Reply::status(200),
    ])
    .await;
    let outbound = outbound_allowing_private();

    let attempt = outbound
        .send_once(&json_delivery(receiver.url("/start")))
        .await;

    assert!(!attempt.succeeded());
    assert_eq!(attempt.status, Some(302));
    assert_eq!(
        attempt.error.as_deref(),
        Some("HTTP 302 Found: redirects are not followed")
    );
    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/start"]);
}

#[tokio::test]
async fn a_huge_response_body_is_capped() {
    let huge = vec![b'x'; 20 * 1024 * 1024];
    let receiver = Receiver::start(vec![Reply::status(200).body(huge)]).await;
    let outbound = outbound_allowing_private();

    let attempt = outbound
        .send_once(&json_delivery(receiver.url("/huge")))
        .await;

    assert!(attempt.succeeded(), "{attempt:?}");
    assert_eq!(attempt.response_excerpt.len(), RESPONSE_EXCERPT_BYTES);
    assert!(attempt.response_excerpt.bytes().all(|b| b == b'x'));
}

#[tokio::test]
async fn error_answers_keep_an_excerpt_of_the_body() {
    let receiver = Receiver::start(vec![
        Reply::status(500).body(r#"{"error":"database is down"}"#),
    ])
    .await;
    let outbound = outbound_allowing_private();

    let attempt = outbound.send_once(&json_delivery(receiver.url("/"))).await;

    assert_eq!(attempt.status, Some(500));
    assert_eq!(
        attempt.error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert_eq!(attempt.response_excerpt, r#"{"error":"database is down"}"#);
    assert!(!attempt.permanent);
}
