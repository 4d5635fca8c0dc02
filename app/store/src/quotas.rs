//! What one tenant may hold or run at once on a shared instance, set by the
//! operator; the store checks each in the statement that would exceed it.

/// Per-tenant limits the store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantQuotas {
    /// Inboxes one tenant may have.
    pub max_inboxes: i64,
    /// Commands of one tenant PROCESSING at once; more wait, due, until one ends.
    pub max_runs_in_flight: i64,
    /// How long finished dynamic commands (archived direct-URL and API calls) and
    /// old runs are kept.
    pub history_retention: chrono::Duration,
    /// How long audit entries are kept.
    pub audit_retention: chrono::Duration,
}

pub const DEFAULT_MAX_INBOXES: i64 = 100;
pub const DEFAULT_MAX_RUNS_IN_FLIGHT: i64 = 8;
pub const DEFAULT_HISTORY_RETENTION_DAYS: i64 = 30;
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 365;

impl Default for TenantQuotas {
    fn default() -> Self {
        Self {
            max_inboxes: DEFAULT_MAX_INBOXES,
            max_runs_in_flight: DEFAULT_MAX_RUNS_IN_FLIGHT,
            history_retention: chrono::Duration::days(DEFAULT_HISTORY_RETENTION_DAYS),
            audit_retention: chrono::Duration::days(DEFAULT_AUDIT_RETENTION_DAYS),
        }
    }
}
