//! Operator settings for sign-in and sign-up throttling, flattened into
//! [`crate::config::Config`].

use clap::Args;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ThrottleConfig {
    /// Reverse proxies (IP addresses or CIDR networks, comma-separated) whose
    /// `X-Forwarded-For` names the real client; from any other peer the header is
    /// ignored.
    #[arg(
        long,
        env = "SLUICE_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,

    /// Length of the first lock after too many failed password attempts, in
    /// seconds; each further lock doubles it (at most 16 times this).
    #[arg(long, env = "SLUICE_LOGIN_LOCK_SECS", default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=86_400), global = true)]
    pub login_lock_secs: u32,

    /// Sign-ups (new organisations) accepted per client address an hour.
    #[arg(long, env = "SLUICE_SIGNUPS_PER_HOUR", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000), global = true)]
    pub signups_per_hour: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: String::new(),
            login_lock_secs: 900,
            signups_per_hour: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        throttle: ThrottleConfig,
    }

    #[test]
    fn default_matches_the_documented_flag_defaults() {
        let parsed = Cli::try_parse_from(["sluice"]).expect("defaults parse");
        assert_eq!(parsed.throttle, ThrottleConfig::default());
    }
}
