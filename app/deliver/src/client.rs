//! One HTTP POST, guarded, signed and measured.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::{Host, Url};

use crate::guard::{AddressGuard, DeliverError};
use crate::resolver::{GuardedResolver, ResolveFailed};
use crate::retry::parse_retry_after;
use crate::signing::{Signing, sign};

/// How much of a response body is kept in [`Attempt::response_excerpt`].
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// How much of a response body is read at most; past this the connection is dropped,
/// so a receiver that streams gigabytes costs us one MiB of reading, not memory.
pub const RESPONSE_READ_CAP_BYTES: usize = 1024 * 1024;

/// Headers users may not set: they control framing or routing of the request, and
/// letting them through would allow request smuggling or confuse the receiver.
const HEADERS_USERS_CANNOT_SET: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// One outbound POST: where, what, and how.
#[derive(Clone)]
pub struct Delivery {
    pub url: Url,
    pub body: Bytes,
    /// Usually `"application/json"`.
    pub content_type: &'static str,
    /// Sent as `Idempotency-Key`, identical on every retry, so receivers can
    /// de-duplicate batches they have already applied.
    pub idempotency_key: Option<String>,
    /// Extra headers configured by the user; ours (content type, signature...) win
    /// over a user header of the same name.
    pub headers: Vec<(String, String)>,
    /// Per attempt, from connecting until the response body has been read.
    pub timeout: Duration,
    pub signing: Option<Signing>,
}

impl Delivery {
    /// A JSON POST with the product's default 5 s timeout and nothing else set.
    pub fn json(url: Url, body: impl Into<Bytes>) -> Self {
        Self {
            url,
            body: body.into(),
            content_type: "application/json",
            idempotency_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            signing: None,
        }
    }
}

// Bodies and header values (Authorization, API keys) must not reach logs.
impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Delivery")
            .field("url", &redacted_url(&self.url))
            .field("body_bytes", &self.body.len())
            .field("content_type", &self.content_type)
            .field("idempotency_key", &self.idempotency_key)
            .field("header_names", &header_names)
            .field("timeout", &self.timeout)
            .field("signing", &self.signing)
            .finish()
    }
}

/// What happened on one attempt; one row of an invocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub duration: Duration,
    /// The first KiB of the response body, lossy UTF-8.
    pub response_excerpt: String,
    /// Why the attempt failed, in words fit for a user; `None` on success.
    pub error: Option<String>,
    /// The receiver's `Retry-After` on a 429 or 503, unclamped.
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (the address guard refused, the request cannot be built).
    pub permanent: bool,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .status
                .is_some_and(|status| (200..300).contains(&status))
    }

    /// The receiver is overloaded (429) or too slow to answer: wait longer.
    pub fn slows_down(&self) -> bool {
        self.status == Some(429)
            || (self.status.is_none()
                && self
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with(TIMED_OUT)))
    }

    fn failed_before_sending(message: String, permanent: bool, started: Instant) -> Self {
        Self {
            number: 1,
            status: None,
            duration: started.elapsed(),
            response_excerpt: String::new(),
            error: Some(message),
            retry_after: None,
            permanent,
        }
    }
}

/// The product's outbound HTTP client. Cheap to share; clone the `Arc` you keep it in.
#[derive(Debug)]
pub struct Outbound {
    guard: AddressGuard,
    /// Building can only fail if the TLS backend cannot initialise; that failure is
    /// reported on every attempt instead of panicking at start-up.
    client: Result<reqwest::Client, String>,
}

impl Outbound {
    pub fn new(guard: AddressGuard) -> Self {
        ensure_crypto_provider();
        let client = reqwest::Client::builder()
            // Every hostname goes through the guard after resolution.
            .dns_resolver(Arc::new(GuardedResolver::new(guard)))
            // A redirect could lead anywhere, including past the guard's intent (an
            // IP literal in Location skips DNS); receivers must answer where they are.
            .redirect(reqwest::redirect::Policy::none())
            // An HTTP(S)_PROXY in the environment would make the proxy, not us,
            // resolve and connect, bypassing the guard.
            .no_proxy()
            .user_agent(concat!("Sluice-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string());
        if let Err(reason) = &client {
            tracing::error!(%reason, "outbound HTTP client could not be built");
        }
        Self { guard, client }
    }

    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// One attempt; `number` is 1. Never fails: the outcome is in the [`Attempt`].
    pub async fn send_once(&self, delivery: &Delivery) -> Attempt {
        let started = Instant::now();
        let client = match &self.client {
            Ok(client) => client,
            Err(reason) => {
                return Attempt::failed_before_sending(
                    format!("HTTP client unavailable: {reason}"),
                    true,
                    started,
                );
            }
        };
        if let Err(refused) = self.check_target(&delivery.url) {
            tracing::warn!(url = %redacted_url(&delivery.url), %refused, "outbound request refused");
            return Attempt::failed_before_sending(refused.to_string(), true, started);
        }
        let headers = match request_headers(delivery) {
            Ok(headers) => headers,
            Err(message) => return Attempt::failed_before_sending(message, true, started),
        };

        let sent = client
            .post(delivery.url.clone())
            .headers(headers)
            .body(delivery.body.clone())
            .timeout(delivery.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let (message, permanent) = describe_send_error(err, delivery.timeout);
                return Attempt::failed_before_sending(message, permanent, started);
            }
        };

        let status = response.status();
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, chrono::Utc::now()))
        } else {
            None
        };
        let response_excerpt = read_excerpt(response).await;
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            Some(format!(
                "{}: redirects are not followed",
                status_text(status)
            ))
        } else {
            Some(status_text(status))
        };
        Attempt {
            number: 1,
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            response_excerpt,
            error,
            retry_after,
            permanent: false,
        }
    }

    /// Re-checks the URL (it may not have come through `check_url`) and, for IP
    /// literals, the address: those skip DNS and so never meet the resolver's check.
    fn check_target(&self, url: &Url) -> Result<(), DeliverError> {
        self.guard.check_url(url.as_str())?;
        match url.host() {
            Some(Host::Ipv4(ip)) => self.guard.check_ip(ip.into()),
            Some(Host::Ipv6(ip)) => self.guard.check_ip(ip.into()),
            Some(Host::Domain(_)) => Ok(()),
            None => Err(DeliverError::InvalidUrl("the URL has no host".into())),
        }
    }
}

/// reqwest picks ring when no process-level provider is installed, but other crates
/// in the workspace build rustls configs with `ClientConfig::builder()`, which panics
/// when both ring and aws-lc-rs are linked and no default is set. Installing ring
/// here (if nobody has yet) keeps the whole process consistent.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: a provider is then set.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn request_headers(delivery: &Delivery) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &delivery.headers {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("header {name:?} is not a valid HTTP header name"))?;
        if HEADERS_USERS_CANNOT_SET.contains(&header_name.as_str()) {
            tracing::debug!(header = %header_name, "ignoring a header users cannot set");
            continue;
        }
        // The value is not quoted back: it is often a credential.
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            format!("the value of header {name:?} is not a valid HTTP header value")
        })?;
        headers.append(header_name, header_value);
    }

    // From here on `insert`, so ours replace any user header of the same name.
    let content_type = HeaderValue::from_str(delivery.content_type)
        .map_err(|_| "the content type is not a valid HTTP header value".to_string())?;
    headers.insert(CONTENT_TYPE, content_type);
    if let Some(key) = &delivery.idempotency_key {
        let value = HeaderValue::from_str(key)
            .map_err(|_| "the idempotency key is not a valid HTTP header value".to_string())?;
        headers.insert(HeaderName::from_static("idempotency-key"), value);
    }
    if let Some(signing) = &delivery.signing {
        // A fresh timestamp per attempt: receivers reject old timestamps to stop replays.
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(
            &signing.secret,
            &signing.message_id,
            timestamp,
            &delivery.body,
        );
        let id = HeaderValue::from_str(&signing.message_id)
            .map_err(|_| "the webhook message id is not a valid HTTP header value".to_string())?;
        headers.insert(HeaderName::from_static("webhook-id"), id);
        headers.insert(
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from(timestamp),
        );
        let signature = HeaderValue::from_str(&signature)
            .map_err(|_| "the webhook signature is not a valid HTTP header value".to_string())?;
        headers.insert(HeaderName::from_static("webhook-signature"), signature);
    }
    Ok(headers)
}

/// Reads at most [`RESPONSE_READ_CAP_BYTES`] and keeps the first
/// [`RESPONSE_EXCERPT_BYTES`]. A body that fails midway (reset, timeout) does not turn
/// the attempt into a failure: the status line already carried the receiver's answer.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut kept: Vec<u8> = Vec::with_capacity(RESPONSE_EXCERPT_BYTES);
    let mut read = 0usize;
    while read < RESPONSE_READ_CAP_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read = read.saturating_add(chunk.len());
                let room = RESPONSE_EXCERPT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(error = %err.without_url(), "response body could not be read to the end");
                break;
            }
        }
    }
    // Dropping `response` here closes a connection whose body we stopped reading.
    excerpt_text(&kept)
}

/// Lossy UTF-8, minus a character cut in half by the byte limit.
fn excerpt_text(bytes: &[u8]) -> String {
    let complete = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    String::from_utf8_lossy(complete).into_owned()
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// How a timed-out attempt's error begins.
const TIMED_OUT: &str = "timed out";

/// Turns a reqwest error into user-facing words and whether retrying is pointless.
fn describe_send_error(err: reqwest::Error, timeout: Duration) -> (String, bool) {
    if err.is_timeout() {
        return (
            format!("{TIMED_OUT} after {}", human_duration(timeout)),
            false,
        );
    }
    let mut innermost: Option<String> = None;
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<DeliverError>() {
            return (refused.to_string(), true);
        }
        if let Some(unresolved) = cause.downcast_ref::<ResolveFailed>() {
            return (unresolved.to_string(), false);
        }
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            match io_error.kind() {
                io::ErrorKind::ConnectionRefused => return ("connection refused".into(), false),
                io::ErrorKind::ConnectionReset => {
                    return ("connection reset by the receiver".into(), false);
                }
                io::ErrorKind::ConnectionAborted => {
                    return ("connection aborted by the receiver".into(), false);
                }
                io::ErrorKind::TimedOut => {
                    return (
                        format!("{TIMED_OUT} after {}", human_duration(timeout)),
                        false,
                    );
                }
                _ => {}
            }
        }
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    let what = if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let detail = innermost.unwrap_or_else(|| err.without_url().to_string());
    (format!("{what}: {detail}"), false)
}

/// "5s", "1.5s" or "250ms": how users wrote the timeout, not `Debug` output.
pub(crate) fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The URL without user info or query string, for logs (queries often carry tokens).
fn redacted_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_settings() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn excerpts_drop_a_cut_character() {
        let text = "é".repeat(10);
        let bytes = text.as_bytes();
        assert_eq!(excerpt_text(&bytes[..5]), "éé");
        assert_eq!(excerpt_text(b"ok \xff here"), "ok \u{fffd} here");
    }

    #[test]
    fn user_headers_cannot_override_ours_or_framing() {
        let url = Url::parse("https://example.com/hook").expect("url");
        let mut delivery = Delivery::json(url, "{}");
        delivery.idempotency_key = Some("batch-1".into());
        delivery.headers = vec![
            ("Content-Type".into(), "text/plain".into()),
            ("Idempotency-Key".into(), "forged".into()),
            ("Host".into(), "internal.example".into()),
            ("Content-Length".into(), "0".into()),
            ("X-Tenant".into(), "acme".into()),
        ];
        let headers = request_headers(&delivery).expect("headers");
        assert_eq!(headers.get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(headers["idempotency-key"], "batch-1");
        assert!(headers.get("host").is_none());
        assert!(headers.get("content-length").is_none());
        assert_eq!(headers["x-tenant"], "acme");
    }

    #[test]
    fn invalid_user_headers_are_named_without_their_value() {
        let url = Url::parse("https://example.com/hook").expect("url");
        let mut delivery = Delivery::json(url, "{}");
        delivery.headers = vec![("Authorization".into(), "Bearer sec\nret".into())];
        let message = request_headers(&delivery).unwrap_err();
        assert!(message.contains("Authorization"), "{message}");
        assert!(!message.contains("sec"), "{message}");
        delivery.headers = vec![("bad header".into(), "x".into())];
        let message = request_headers(&delivery).unwrap_err();
        assert!(
            message.contains("not a valid HTTP header name"),
            "{message}"
        );
    }

    #[test]
    fn debug_output_hides_body_secrets_and_header_values() {
        let url = Url::parse("https://example.com/hook?token=abc").expect("url");
        let mut delivery = Delivery::json(url, r#"{"card":"4111"}"#);
        delivery.headers = vec![("Authorization".into(), "Bearer s3cr3t".into())];
        delivery.signing = Some(Signing {
            message_id: "msg_1".into(),
            secret: b"topsecret".to_vec(),
        });
        let printed = format!("{delivery:?}");
        for secret in ["4111", "s3cr3t", "topsecret", "token=abc"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("Authorization"));
    }
}
