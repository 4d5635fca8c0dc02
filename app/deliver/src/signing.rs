//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the receiver
//! gets `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC>`,
//! where the HMAC-SHA256 covers `"{id}.{timestamp}.{body}"`. Signing the id and the
//! timestamp together with the body lets receivers reject replays and duplicates.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only signature scheme Standard Webhooks defines for symmetric secrets.
const SCHEME_PREFIX: &str = "v1";

/// How to sign one delivery. The same `message_id` is reused on every retry, so
/// receivers can de-duplicate; the timestamp is taken fresh for each attempt.
#[derive(Clone)]
pub struct Signing {
    pub message_id: String,
    /// The raw secret bytes (callers decode a `whsec_`-style secret first).
    pub secret: Vec<u8>,
}

impl Signing {
    /// Signing with a fresh, unique message id (`msg_<uuid>`).
    pub fn with_new_message_id(secret: Vec<u8>) -> Self {
        Self {
            message_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            secret,
        }
    }
}

// The secret must never reach logs, so Debug is written by hand.
impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("message_id", &self.message_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn mac_over(secret: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long ones are hashed, short ones padded), so the
    // only error this constructor declares cannot happen for HMAC-SHA256.
    #[allow(clippy::expect_used)]
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for one message: `v1,<base64(HMAC-SHA256)>`.
pub fn sign(secret: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac_over(secret, message_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("{SCHEME_PREFIX},{}", BASE64.encode(tag))
}

/// Whether `header` (a space-separated list of `v1,<base64>` signatures, as sent while
/// a secret is being rotated) holds a valid signature. Comparison is constant time.
/// Checking that the timestamp is recent is left to the caller.
pub fn verify(secret: &[u8], message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split_whitespace().any(|candidate| {
        let Some((scheme, encoded)) = candidate.split_once(',') else {
            return false;
        };
        if scheme != SCHEME_PREFIX {
            return false;
        }
        let Ok(tag) = BASE64.decode(encoded) else {
            return false;
        };
        mac_over(secret, message_id, timestamp, body)
            .verify_slice(&tag)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification and reference libraries.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let secret = BASE64
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("reference secret is base64");
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            expected
        );
        assert!(verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            expected
        ));
    }

    #[test]
    fn verify_accepts_any_signature_in_a_list() {
        let good = sign(b"new", "msg_1", 10, b"{}");
        let old = sign(b"old", "msg_1", 10, b"{}");
        assert!(verify(b"new", "msg_1", 10, b"{}", &format!("{old} {good}")));
        assert!(verify(
            b"old",
            "msg_1",
            10,
            b"{}",
            &format!("{old}  {good}")
        ));
        assert!(!verify(
            b"other",
            "msg_1",
            10,
            b"{}",
            &format!("{old} {good}")
        ));
    }

    #[test]
    fn verify_rejects_malformed_and_unknown_schemes() {
        let good = sign(b"k", "msg_1", 10, b"{}");
        let tag = good.trim_start_matches("v1,");
        for header in [
            "",
            "   ",
            tag,
            &format!("v2,{tag}"),
            &format!("v1a,{tag}"),
            "v1,not*base64",
            "v1,",
            "v1,AAAA",
        ] {
            assert!(!verify(b"k", "msg_1", 10, b"{}", header), "{header:?}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let signing = Signing::with_new_message_id(b"hunter2".to_vec());
        assert!(signing.message_id.starts_with("msg_"));
        let printed = format!("{signing:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("104"), "{printed}"); // no byte dump either
    }
}
