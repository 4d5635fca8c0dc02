//! Operator limits on what one tenant may ask of a shared instance
//! (`SLUICE_MIN_SCHEDULE_SECS`, `SLUICE_MAX_*`, `SLUICE_PREVIEW_CELL_BYTES`,
//! `SLUICE_HISTORY_RETENTION_DAYS`), flattened into [`crate::config::Config`].

use clap::Args;
use sluice_store::quotas::TenantQuotas;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LimitsConfig {
    /// The most often a command's schedule may fire, in seconds between runs
    /// (1 allows every-second schedules).
    #[arg(long, env = "SLUICE_MIN_SCHEDULE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=86_400), global = true)]
    pub min_schedule_secs: u32,

    /// Commands a tenant may have that are not finished (scheduled ones, and
    /// dynamic ones still queued or running).
    #[arg(long, env = "SLUICE_MAX_COMMANDS_PER_TENANT", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_commands_per_tenant: u32,

    /// Inboxes a tenant may have.
    #[arg(long, env = "SLUICE_MAX_INBOXES_PER_TENANT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_inboxes_per_tenant: u32,

    /// Commands of one tenant running at once; more wait, due, until one ends.
    #[arg(long, env = "SLUICE_MAX_RUNS_IN_FLIGHT_PER_TENANT", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_runs_in_flight_per_tenant: u32,

    /// Bytes of one value a table preview or query preview shows; longer ones are cut.
    #[arg(long, env = "SLUICE_PREVIEW_CELL_BYTES", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(16..=1_048_576), global = true)]
    pub preview_cell_bytes: u32,

    /// Bytes of JSON one callback POST (one batch) may carry: a batch that would be
    /// larger is split, and a single row larger than this fails the run.
    #[arg(long, env = "SLUICE_MAX_BATCH_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024), global = true)]
    pub max_batch_bytes: u64,

    /// Days archived dynamic commands (API and direct-URL calls) and old runs are kept.
    #[arg(long, env = "SLUICE_HISTORY_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_500), global = true)]
    pub history_retention_days: u32,

    /// Days audit entries are kept.
    #[arg(long, env = "SLUICE_AUDIT_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500), global = true)]
    pub audit_retention_days: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            min_schedule_secs: 10,
            max_commands_per_tenant: 1000,
            max_inboxes_per_tenant: 100,
            max_runs_in_flight_per_tenant: 8,
            preview_cell_bytes: 2048,
            max_batch_bytes: 16 * 1024 * 1024,
            history_retention_days: 30,
            audit_retention_days: 365,
        }
    }
}

impl LimitsConfig {
    /// The limits the store enforces.
    pub fn quotas(&self) -> TenantQuotas {
        TenantQuotas {
            max_inboxes: i64::from(self.max_inboxes_per_tenant),
            max_runs_in_flight: i64::from(self.max_runs_in_flight_per_tenant),
            history_retention: chrono::Duration::days(i64::from(self.history_retention_days)),
            audit_retention: chrono::Duration::days(i64::from(self.audit_retention_days)),
        }
    }

    pub fn max_batch_bytes(&self) -> usize {
        usize::try_from(self.max_batch_bytes).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitsConfig,
    }

    #[test]
    fn default_matches_the_documented_flag_defaults() {
        let parsed = Cli::try_parse_from(["sluice"]).expect("defaults parse");
        assert_eq!(parsed.limits, LimitsConfig::default());
    }

    #[test]
    fn limits_below_their_floor_are_refused() {
        for flag in [
            "--max-inboxes-per-tenant=0",
            "--max-runs-in-flight-per-tenant=0",
            "--preview-cell-bytes=1",
            "--max-batch-bytes=10",
        ] {
            assert!(Cli::try_parse_from(["sluice", flag]).is_err(), "{flag}");
        }
    }
}
