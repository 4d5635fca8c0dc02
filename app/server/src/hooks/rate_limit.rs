//! Per-token rate limit of the public `/hooks/{token}` URLs (governor's GCRA, keyed
//! by token). Counted in this process only: with several replicas each one allows
//! the rate.

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// Past this many tracked tokens, ones with a full allowance again are forgotten.
const FORGET_IDLE_ABOVE: usize = 10_000;

pub struct HookRateLimit {
    per_minute: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl HookRateLimit {
    /// `per_minute` requests a minute per token, all of them allowed in a burst.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            per_minute,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    pub fn allowance(&self) -> u32 {
        self.per_minute.get()
    }

    /// Counts one request for `token`: `Ok`, or how long until the next is allowed.
    pub fn check(&self, token: &str) -> Result<(), Duration> {
        if self.limiter.len() > FORGET_IDLE_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&token.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_gets_its_own_allowance() {
        let limit = HookRateLimit::per_minute(NonZeroU32::new(2).unwrap());
        assert!(limit.check("a").is_ok());
        assert!(limit.check("a").is_ok());
        let wait = limit.check("a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(limit.check("b").is_ok());
    }
}
