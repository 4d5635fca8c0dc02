//! Runtime configuration: environment variables (`SLUICE_*`) or the equivalent flags.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Control-plane database: `postgres://user@host/db`, or `sqlite:PATH`.
    /// Default: the embedded SQLite file `<data-dir>/sluice.db`.
    #[arg(long, env = "SLUICE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Directory for the embedded database, the job queue file and the generated secret key.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Address the web server listens on (port 0 picks a free port).
    #[arg(
        long,
        env = "SLUICE_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// Public base URL of this instance, used to build inbox, direct-URL and invitation
    /// links. Default: `http://<bind address>`.
    #[arg(long, env = "SLUICE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Encrypts stored credentials and signs tokens (at least 32 characters). Default:
    /// generated into `<data-dir>/secret.key` (mode 0600) on first start.
    #[arg(long, env = "SLUICE_SECRET_KEY", hide_env_values = true, global = true)]
    pub secret_key: Option<String>,

    /// Keys used before `SLUICE_SECRET_KEY` (comma-separated): secrets sealed with
    /// them still open, and are re-sealed with the current key on start and by
    /// `sluice admin rotate-key`. Remove them once that has run.
    #[arg(
        long,
        env = "SLUICE_PREVIOUS_SECRET_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub previous_secret_keys: Option<String>,

    /// Allow outbound HTTP (callbacks, webhooks) to private and loopback addresses.
    /// Off in production; on for development, demos and tests.
    #[arg(
        long,
        env = "SLUICE_ALLOW_PRIVATE_TARGETS",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub allow_private_targets: bool,

    /// Allow connectors to reach databases on loopback and private addresses (and
    /// Unix sockets never). Off for shared deployments, where the gateway agent is
    /// the way to private databases; on for development, demos and tests.
    #[arg(
        long,
        env = "SLUICE_ALLOW_PRIVATE_DATABASES",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new(),
        global = true
    )]
    pub allow_private_databases: bool,

    /// Bearer token a scraper must send to read `/metrics`. Without one, `/metrics`
    /// answers only clients on the loopback interface.
    #[arg(
        long,
        env = "SLUICE_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<String>,

    /// Log format: `pretty` for people, `json` for log collectors.
    #[arg(
        long,
        env = "SLUICE_LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// Cron expression (with seconds) for the housekeeping job (expired sessions).
    #[arg(long, env = "SLUICE_HOUSEKEEPING_CRON", default_value = sluice_jobs::HOUSEKEEPING_DEFAULT_SCHEDULE, global = true)]
    pub housekeeping_cron: String,

    /// Directory holding the SQLite databases that SQLite connectors may open; a
    /// connector's path is resolved inside it and can never leave it. Default:
    /// `<data-dir>/sqlite`.
    #[arg(long, env = "SLUICE_SQLITE_ROOT", global = true)]
    pub sqlite_root: Option<PathBuf>,

    /// Waits between retries of a failed callback POST, in seconds, comma-separated
    /// (a run fails after the last one).
    #[arg(
        long,
        env = "SLUICE_DELIVERY_RETRY_DELAYS",
        default_value = "1,5,30,120",
        global = true
    )]
    pub delivery_retry_delays: String,

    /// Seconds a running command may go without a sign of life before another
    /// worker takes it over (after a crash).
    #[arg(long, env = "SLUICE_RUN_LEASE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(2..=86_400), global = true)]
    pub run_lease_secs: u32,

    /// Maximum connections to the control-plane database (on SQLite: readers,
    /// beside the one writer).
    #[arg(long, env = "SLUICE_DB_POOL_SIZE", default_value_t = 10, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=1000), usize::from), global = true)]
    pub db_pool_size: usize,

    /// How long a request or job waits for a control-plane connection before it
    /// gets "busy" (HTTP 503 with Retry-After) instead of hanging, in milliseconds.
    #[arg(long, env = "SLUICE_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(50..=600_000), global = true)]
    pub db_acquire_timeout_ms: u64,

    /// Per-tenant limits (`SLUICE_MAX_*`, `SLUICE_MIN_SCHEDULE_SECS`, …).
    #[command(flatten)]
    pub limits: crate::limits_config::LimitsConfig,

    /// Inbox limits, rate and retention (`SLUICE_INBOX_*`).
    #[command(flatten)]
    pub inbox: crate::inbox_config::InboxConfig,

    /// Sign-in and sign-up throttling (`SLUICE_TRUSTED_PROXIES`, `SLUICE_LOGIN_LOCK_SECS`,
    /// `SLUICE_SIGNUPS_PER_HOUR`).
    #[command(flatten)]
    pub throttle: crate::throttle_config::ThrottleConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Config {
    /// The base URL for links, without a trailing slash.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }

    pub fn sqlite_root(&self) -> PathBuf {
        self.sqlite_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sqlite"))
    }

    /// The retry policy for callbacks, from `delivery_retry_delays`.
    pub fn delivery_policy(&self) -> anyhow::Result<sluice_deliver::RetryPolicy> {
        let mut delays = Vec::new();
        for part in self
            .delivery_retry_delays
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let seconds: f64 = part
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "SLUICE_DELIVERY_RETRY_DELAYS: {part:?} is not a number of seconds"
                    )
                })?;
            delays.push(std::time::Duration::from_secs_f64(seconds));
        }
        Ok(sluice_deliver::RetryPolicy {
            delays,
            jitter: 0.1,
            max_retry_after: std::time::Duration::from_secs(300),
        })
    }

    /// Cookies get the `Secure` flag when the instance is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}
