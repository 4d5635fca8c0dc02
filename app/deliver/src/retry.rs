//! Retries with a jittered schedule that honours `Retry-After`.
//!
//! Modelled on svix's worker: a fixed schedule (not exponential to infinity) so users
//! can predict when a failed event gives up; jitter so receivers recovering from an
//! outage are not hit by every sender at the same instant; `Retry-After` honoured but
//! clamped, so a receiver cannot park a worker for a day.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use thiserror::Error;

use crate::client::{Attempt, Delivery, Outbound};

/// When to retry a failed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The wait before each retry; there are `delays.len() + 1` attempts in all.
    pub delays: Vec<Duration>,
    /// Each wait is scaled by a random factor in `1 ± jitter`; clamped to `0.0..=0.5`.
    pub jitter: f64,
    /// The longest `Retry-After` that is honoured; longer requests wait this long.
    pub max_retry_after: Duration,
}

/// The product's schedule: 1 s, 5 s, 30 s, 2 min, 10 min.
const STANDARD_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

impl RetryPolicy {
    /// Five retries over about 13 minutes, ±20 % jitter, `Retry-After` up to 10 min.
    pub fn standard() -> Self {
        Self::standard_with_retries(STANDARD_DELAYS.len())
    }

    /// The standard schedule cut to (or, past five, extended at 10-minute steps to)
    /// `retries` retries — for triggers whose user set a retry count.
    pub fn standard_with_retries(retries: usize) -> Self {
        let last = STANDARD_DELAYS[STANDARD_DELAYS.len() - 1];
        let delays = (0..retries)
            .map(|i| STANDARD_DELAYS.get(i).copied().unwrap_or(last))
            .collect();
        Self {
            delays,
            jitter: 0.2,
            max_retry_after: Duration::from_secs(600),
        }
    }

    /// For tests: `retries` retries 50 ms apart, no jitter, `Retry-After` up to 5 s.
    pub fn quick(retries: usize) -> Self {
        Self {
            delays: vec![Duration::from_millis(50); retries],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(5),
        }
    }

    /// Attempts in all, including the first.
    pub fn max_attempts(&self) -> usize {
        self.delays.len().saturating_add(1)
    }

    /// After a failed `attempt`: how long to wait before the next one, or `None`
    /// when retrying cannot help (refused by the address guard) or this was the
    /// last attempt. A receiver that is overloaded (429) or too slow to answer
    /// (timeout) gets twice the scheduled wait; `Retry-After` is honoured, clamped.
    pub fn retry_after_attempt(&self, attempt: &Attempt) -> Option<Duration> {
        let retry_index = (attempt.number.max(1) - 1) as usize;
        if attempt.succeeded() || attempt.permanent || retry_index >= self.delays.len() {
            return None;
        }
        let wait = self.wait_before_retry(retry_index, attempt.retry_after);
        Some(if attempt.slows_down() && attempt.retry_after.is_none() {
            wait.saturating_mul(2)
        } else {
            wait
        })
    }

    /// The wait before retry number `retry_index` (0-based): the scheduled delay with
    /// jitter, or the receiver's `Retry-After` (clamped) when that is longer.
    fn wait_before_retry(&self, retry_index: usize, retry_after: Option<Duration>) -> Duration {
        let scheduled = self.delays.get(retry_index).copied().unwrap_or_default();
        let jittered = apply_jitter(scheduled, self.jitter);
        match retry_after {
            Some(requested) => jittered.max(requested.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

fn apply_jitter(delay: Duration, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 0.5)
    } else {
        0.0
    };
    if jitter == 0.0 || delay.is_zero() {
        return delay;
    }
    let factor = 1.0 + rand::rng().random_range(-jitter..=jitter);
    delay.mul_f64(factor)
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in
/// the past means "now"; anything unparseable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Every attempt failed (or one failed in a way retrying cannot fix).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "gave up after {attempts} {}: {}",
    if *.attempts == 1 { "attempt" } else { "attempts" },
    .last.error.as_deref().unwrap_or("unknown error")
)]
pub struct DeliveryFailed {
    pub attempts: u32,
    pub last: Attempt,
}

impl Outbound {
    /// Sends until a 2xx arrives or the policy is exhausted. Non-2xx answers, timeouts
    /// and connection errors are retried; a refusal by the address guard is not.
    /// `on_attempt` sees every attempt as it completes (invocation logs, progress).
    pub async fn send_with_retries(
        &self,
        delivery: &Delivery,
        policy: &RetryPolicy,
        mut on_attempt: impl FnMut(&Attempt) + Send,
    ) -> Result<Attempt, DeliveryFailed> {
        let mut number: u32 = 1;
        loop {
            let mut attempt = self.send_once(delivery).await;
            attempt.number = number;
            on_attempt(&attempt);
            if attempt.succeeded() {
                return Ok(attempt);
            }
            let Some(wait) = policy.retry_after_attempt(&attempt) else {
                return Err(DeliveryFailed {
                    attempts: number,
                    last: attempt,
                });
            };
            tracing::info!(
                attempt = number,
                status = attempt.status,
                error = attempt.error.as_deref().unwrap_or(""),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "delivery attempt failed; retrying"
            );
            tokio::time::sleep(wait).await;
            number = number.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedule() {
        let policy = RetryPolicy::standard();
        assert_eq!(
            policy.delays,
            vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
            ]
        );
        assert_eq!(policy.max_attempts(), 6);
        assert_eq!(RetryPolicy::standard_with_retries(3).delays.len(), 3);
        assert_eq!(
            RetryPolicy::standard_with_retries(7).delays[6],
            Duration::from_secs(600)
        );
        assert_eq!(
            RetryPolicy::quick(2).delays,
            vec![Duration::from_millis(50); 2]
        );
    }

    #[test]
    fn the_wait_after_an_attempt_follows_the_schedule_and_slows_down_for_429() {
        let policy = RetryPolicy {
            delays: vec![Duration::from_secs(1), Duration::from_secs(5)],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(60),
        };
        let failed = |number: u32, status: Option<u16>, error: &str| Attempt {
            number,
            status,
            duration: Duration::ZERO,
            response_excerpt: String::new(),
            error: Some(error.into()),
            retry_after: None,
            permanent: false,
        };
        let wait = |attempt: &Attempt| policy.retry_after_attempt(attempt);
        assert_eq!(
            wait(&failed(1, Some(500), "HTTP 500")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            wait(&failed(2, Some(500), "HTTP 500")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            wait(&failed(3, Some(500), "HTTP 500")),
            None,
            "the last attempt"
        );
        assert_eq!(
            wait(&failed(1, Some(429), "HTTP 429")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            wait(&failed(1, None, "timed out after 30 s")),
            Some(Duration::from_secs(2))
        );
        let mut asked = failed(1, Some(503), "HTTP 503");
        asked.retry_after = Some(Duration::from_secs(600));
        assert_eq!(
            wait(&asked),
            Some(Duration::from_secs(60)),
            "Retry-After, clamped"
        );
        let mut refused = failed(1, None, "refused");
        refused.permanent = true;
        assert_eq!(wait(&refused), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let base = Duration::from_secs(10);
        for _ in 0..200 {
            let waited = apply_jitter(base, 0.2);
            assert!(waited >= Duration::from_secs(8) && waited <= Duration::from_secs(12));
            // Out-of-range jitter is clamped to 0.5.
            let waited = apply_jitter(base, 3.0);
            assert!(waited >= Duration::from_secs(5) && waited <= Duration::from_secs(15));
        }
        assert_eq!(apply_jitter(base, f64::NAN), base);
        assert_eq!(apply_jitter(base, -1.0), base);
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let policy = RetryPolicy::quick(3);
        assert_eq!(policy.wait_before_retry(0, None), Duration::from_millis(50));
        assert_eq!(
            policy.wait_before_retry(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.wait_before_retry(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
        // A shorter Retry-After does not shorten the schedule.
        assert_eq!(
            policy.wait_before_retry(1, Some(Duration::ZERO)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn failure_message_counts_attempts() {
        let last = Attempt {
            number: 4,
            status: Some(500),
            duration: Duration::from_millis(3),
            response_excerpt: String::new(),
            error: Some("HTTP 500 Internal Server Error".into()),
            retry_after: None,
            permanent: false,
        };
        let failed = DeliveryFailed { attempts: 4, last };
        assert_eq!(
            failed.to_string(),
            "gave up after 4 attempts: HTTP 500 Internal Server Error"
        );
    }
}
