//! The guard applied on the wire: IP literals before sending, hostnames after DNS.

use std::time::Duration;

use sluice_deliver::{AddressGuard, Outbound, RetryPolicy};

use crate::support::{Receiver, Reply};
use crate::{json_delivery, outbound_allowing_private};

#[tokio::test]
async fn loopback_ip_literal_is_refused_without_contacting_the_receiver() {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let outbound = Outbound::new(AddressGuard::new(false));

    let attempt = outbound
        .send_once(&json_delivery(receiver.url("/hook")))
        .await;

    assert!(!attempt.succeeded());
    assert!(attempt.permanent);
    assert_eq!(attempt.status, None);
    assert_eq!(
        attempt.error.as_deref(),
        Some("address 127.0.0.1 is loopback and not allowed")
    );
    assert_eq!(receiver.connections(), 0);
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn localhost_is_refused_after_dns_resolution_without_contacting_the_receiver() {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let outbound = Outbound::new(AddressGuard::new(false));
    let url = url::Url::parse(&format!("http://localhost:{}/hook", receiver.port())).unwrap();

    let attempt = outbound.send_once(&json_delivery(url)).await;

    assert!(!attempt.succeeded());
    assert!(attempt.permanent, "{attempt:?}");
    let error = attempt.error.unwrap_or_default();
    assert!(error.starts_with("host localhost: address "), "{error}");
    assert!(error.contains("is loopback and not allowed"), "{error}");
    assert_eq!(receiver.connections(), 0);
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_refusal_is_permanent_and_not_retried() {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let outbound = Outbound::new(AddressGuard::new(false));
    let mut seen = 0;

    let failed = outbound
        .send_with_retries(
            &json_delivery(receiver.url("/hook")),
            &RetryPolicy::quick(3),
            |_| seen += 1,
        )
        .await
        .unwrap_err();

    assert_eq!(seen, 1);
    assert_eq!(failed.attempts, 1);
    assert_eq!(
        failed.to_string(),
        "gave up after 1 attempt: address 127.0.0.1 is loopback and not allowed"
    );
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn allow_private_delivers_to_ip_literals_and_localhost() {
    let receiver = Receiver::start(vec![Reply::status(204)]).await;
    let outbound = outbound_allowing_private();

    let by_ip = outbound
        .send_once(&json_delivery(receiver.url("/ip")))
        .await;
    assert!(by_ip.succeeded(), "{by_ip:?}");
    assert_eq!(by_ip.status, Some(204));

    let url = url::Url::parse(&format!("http://localhost:{}/name", receiver.port())).unwrap();
    let by_name = outbound.send_once(&json_delivery(url)).await;
    assert!(by_name.succeeded(), "{by_name:?}");

    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/ip", "/name"]);
}

#[tokio::test]
async fn cloud_metadata_is_refused_even_when_private_is_allowed() {
    let outbound = outbound_allowing_private();
    for raw in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/latest/meta-data/",
    ] {
        let mut delivery = json_delivery(url::Url::parse(raw).unwrap());
        // If the guard failed, this would hang on an unroutable address; keep it short.
        delivery.timeout = Duration::from_millis(500);
        let attempt = outbound.send_once(&delivery).await;
        assert!(attempt.permanent, "{raw}: {attempt:?}");
        let error = attempt.error.unwrap_or_default();
        assert!(error.contains("never allowed"), "{raw}: {error}");
    }
}

#[tokio::test]
async fn urls_that_bypassed_check_url_are_still_refused() {
    let outbound = outbound_allowing_private();
    let url = url::Url::parse("ftp://127.0.0.1/file").unwrap();
    let attempt = outbound.send_once(&json_delivery(url)).await;
    assert!(attempt.permanent);
    assert_eq!(
        attempt.error.as_deref(),
        Some("invalid URL: scheme \"ftp\" is not supported; use http or https")
    );
}

#[tokio::test]
async fn obfuscated_loopback_literals_are_refused() {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let outbound = Outbound::new(AddressGuard::new(false));
    let port = receiver.port();
    // The URL parser normalises these to 127.0.0.1 / ::1, which the guard then sees.
    for raw in [
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let attempt = outbound
            .send_once(&json_delivery(url::Url::parse(&raw).unwrap()))
            .await;
        assert!(attempt.permanent, "{raw}: {attempt:?}");
        let error = attempt.error.unwrap_or_default();
        assert!(
            error.contains("is loopback and not allowed"),
            "{raw}: {error}"
        );
    }
    assert_eq!(receiver.connections(), 0);
}
