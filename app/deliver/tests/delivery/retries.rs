//! The retry loop against receivers that fail in scripted ways.

use std::time::{Duration, Instant};

use sluice_deliver::{Attempt, Delivery, Outbound, RetryPolicy};

use crate::support::{Receiver, Reply, closed_port};
use crate::{json_delivery, outbound_allowing_private};

#[tokio::test]
async fn two_failures_then_success_reports_every_attempt() {
    let receiver = Receiver::start(vec![
        Reply::status(500),
        Reply::status(500),
        Reply::status(200).body("ok"),
    ])
    .await;
    let outbound = outbound_allowing_private();
    let mut seen: Vec<(u32, Option<u16>)> = Vec::new();

    let success = outbound
        .send_with_retries(
            &json_delivery(receiver.url("/")),
            &RetryPolicy::quick(3),
            |attempt: &Attempt| seen.push((attempt.number, attempt.status)),
        )
        .await
        .expect("third attempt succeeds");

    assert_eq!(success.number, 3);
    assert_eq!(success.response_excerpt, "ok");
    assert_eq!(seen, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn retries_reuse_the_idempotency_key_and_message_id_but_re_sign() {
    let receiver = Receiver::start(vec![Reply::status(503), Reply::status(200)]).await;
    let outbound = outbound_allowing_private();
    let mut delivery = json_delivery(receiver.url("/"));
    delivery.idempotency_key = Some("batch-7".into());
    delivery.signing = Some(sluice_deliver::Signing::with_new_message_id(b"k".to_vec()));

    outbound
        .send_with_retries(&delivery, &RetryPolicy::quick(1), |_| {})
        .await
        .expect("second attempt succeeds");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for name in ["idempotency-key", "webhook-id"] {
        assert_eq!(
            requests[0].headers[name], requests[1].headers[name],
            "{name}"
        );
    }
    for request in &requests {
        let header = |name: &str| request.headers[name].to_str().unwrap().to_string();
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        assert!(sluice_deliver::verify(
            b"k",
            &header("webhook-id"),
            timestamp,
            &request.body,
            &header("webhook-signature"),
        ));
    }
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let receiver = Receiver::start(vec![
        Reply::status(429).header("retry-after", "1"),
        Reply::status(200),
    ])
    .await;
    let outbound = outbound_allowing_private();
    let mut seen: Vec<Attempt> = Vec::new();

    let started = Instant::now();
    let success = outbound
        .send_with_retries(
            &json_delivery(receiver.url("/")),
            &RetryPolicy::quick(2),
            |attempt| seen.push(attempt.clone()),
        )
        .await
        .expect("succeeds after waiting");

    assert_eq!(success.number, 2);
    assert_eq!(seen[0].status, Some(429));
    assert_eq!(seen[0].retry_after, Some(Duration::from_secs(1)));
    assert_eq!(seen[0].error.as_deref(), Some("HTTP 429 Too Many Requests"));
    let requests = receiver.requests();
    let gap = requests[1].arrived - requests[0].arrived;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn retry_after_is_clamped_to_the_policy() {
    let receiver = Receiver::start(vec![
        Reply::status(503).header("retry-after", "86400"),
        Reply::status(200),
    ])
    .await;
    let outbound = outbound_allowing_private();
    let mut policy = RetryPolicy::quick(1);
    policy.max_retry_after = Duration::from_millis(200);

    let started = Instant::now();
    outbound
        .send_with_retries(&json_delivery(receiver.url("/")), &policy, |_| {})
        .await
        .expect("succeeds after the clamped wait");

    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn always_failing_gives_up_after_every_attempt() {
    let receiver = Receiver::start(vec![Reply::status(500)]).await;
    let outbound = outbound_allowing_private();
    let policy = RetryPolicy::quick(3);
    let mut calls = 0;

    let failed = outbound
        .send_with_retries(&json_delivery(receiver.url("/")), &policy, |_| calls += 1)
        .await
        .expect_err("never succeeds");

    assert_eq!(failed.attempts, 4);
    assert_eq!(calls, 4);
    assert_eq!(failed.last.number, 4);
    assert_eq!(
        failed.to_string(),
        "gave up after 4 attempts: HTTP 500 Internal Server Error"
    );
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test]
async fn timeouts_are_retried_and_reported() {
    let receiver = Receiver::start(vec![Reply::status(200).after(Duration::from_secs(3))]).await;
    let outbound = outbound_allowing_private();
    let mut delivery: Delivery = json_delivery(receiver.url("/slow"));
    delivery.timeout = Duration::from_millis(200);

    let failed = outbound
        .send_with_retries(&delivery, &RetryPolicy::quick(1), |_| {})
        .await
        .expect_err("always too slow");

    assert_eq!(failed.attempts, 2);
    assert!(failed.to_string().contains("timed out"), "{failed}");
}

#[tokio::test]
async fn connection_refused_is_retried_and_reported() {
    let port = closed_port().await;
    let outbound = outbound_allowing_private();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();

    let failed = outbound
        .send_with_retries(&json_delivery(url), &RetryPolicy::quick(2), |_| {})
        .await
        .expect_err("nothing listens");

    assert_eq!(failed.attempts, 3);
    assert_eq!(
        failed.to_string(),
        "gave up after 3 attempts: connection refused"
    );
}

#[tokio::test]
async fn a_redirect_fails_every_attempt_without_being_followed() {
    let receiver = Receiver::start(vec![Reply::status(302).header("location", "/elsewhere")]).await;
    let outbound = outbound_allowing_private();

    let failed = outbound
        .send_with_retries(
            &json_delivery(receiver.url("/start")),
            &RetryPolicy::quick(1),
            |_| {},
        )
        .await
        .expect_err("redirects fail");

    assert!(
        failed.to_string().contains("redirects are not followed"),
        "{failed}"
    );
    assert!(receiver.requests().iter().all(|r| r.path == "/start"));
}

/// The job system runs deliveries on a multi-threaded runtime, so the future must be Send.
#[test]
fn the_retry_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let outbound = Outbound::new(sluice_deliver::AddressGuard::new(false));
    let delivery = json_delivery(url::Url::parse("https://example.com/").unwrap());
    let policy = RetryPolicy::quick(0);
    let future = outbound.send_with_retries(&delivery, &policy, |_| {});
    assert_send(&future);
}
