//! Operator settings for inboxes (`SLUICE_INBOX_*`), flattened into [`crate::config::Config`].

use clap::Args;
use sluice_store::inboxes::{DEFAULT_MAX_BODY_BYTES, InboxLimits};
use std::num::NonZeroU32;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct InboxConfig {
    /// Messages one inbox keeps at most: a POST beyond answers 413 (`inbox_full`),
    /// a command delivering beyond fails.
    #[arg(long, env = "SLUICE_INBOX_MAX_MESSAGES", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub inbox_max_messages: u32,

    /// Bytes all of one inbox's messages hold together at most (same answers).
    #[arg(long, env = "SLUICE_INBOX_MAX_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64), global = true)]
    pub inbox_max_bytes: u64,

    /// Levels of nested arrays and objects one message may have (400 beyond).
    #[arg(long, env = "SLUICE_INBOX_MAX_DEPTH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=128), global = true)]
    pub inbox_max_depth: u16,

    /// POSTs per minute to one `/hooks/{token}` URL, counted in this process
    /// (429 with Retry-After beyond).
    #[arg(long, env = "SLUICE_INBOX_RATE_PER_MINUTE", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub inbox_rate_per_minute: u32,

    /// Housekeeping removes inbox messages older than this many days…
    #[arg(long, env = "SLUICE_INBOX_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=36_500), global = true)]
    pub inbox_retention_days: u32,

    /// …and all but the newest this many messages of each inbox.
    #[arg(long, env = "SLUICE_INBOX_RETENTION_MESSAGES", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub inbox_retention_messages: u32,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            inbox_max_messages: 1000,
            inbox_max_bytes: 64 * 1024 * 1024,
            inbox_max_depth: 32,
            inbox_rate_per_minute: 120,
            inbox_retention_days: 7,
            inbox_retention_messages: 500,
        }
    }
}

impl InboxConfig {
    pub fn limits(&self) -> InboxLimits {
        InboxLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: usize::from(self.inbox_max_depth),
            max_messages: i64::from(self.inbox_max_messages),
            max_bytes: i64::try_from(self.inbox_max_bytes).unwrap_or(i64::MAX),
            retention_days: i64::from(self.inbox_retention_days),
            retention_messages: i64::from(self.inbox_retention_messages),
        }
    }

    pub fn rate_per_minute(&self) -> NonZeroU32 {
        NonZeroU32::new(self.inbox_rate_per_minute).unwrap_or(NonZeroU32::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        inbox: InboxConfig,
    }

    #[test]
    fn default_matches_the_documented_flag_defaults() {
        let parsed = Cli::try_parse_from(["sluice"]).expect("defaults parse");
        assert_eq!(parsed.inbox, InboxConfig::default());
    }
}
