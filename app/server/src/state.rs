use sluice_connect::Registry;
use sluice_jobs::JobContext;
use sluice_jobs::JobQueue;
use sluice_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

use crate::metrics::Metrics;

/// Everything a request handler may need; cloned into each actix worker.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub queue: JobQueue,
    /// Base of links handed out (inboxes, direct URLs, invitations), no trailing slash.
    pub public_url: Arc<str>,
    pub secure_cookies: bool,
    pub allow_private_targets: bool,
    pub metrics: Metrics,
    /// What one tenant may ask of this instance.
    pub tenant_limits: TenantLimits,
    /// Bearer token `/metrics` asks for; without one it answers loopback clients only.
    pub metrics_token: Option<Arc<str>>,
    /// Connection pools to tenants' databases, one per connector.
    pub databases: Registry,
    /// SQLite connectors open files only inside their tenant's directory in it.
    pub sqlite_root: Arc<PathBuf>,
    /// The job system, for starting runs from requests.
    pub jobs: JobContext,
    /// Requests per minute to each public `/hooks/{token}` URL.
    pub hook_rate_limit: Arc<crate::hooks::HookRateLimit>,
    /// Limits on password guesses and sign-ups, and who the client is.
    pub throttle: Arc<crate::auth::Throttle>,
}

/// Operator limits on what one tenant may ask of a shared instance.
#[derive(Debug, Clone, Copy)]
pub struct TenantLimits {
    /// The shortest gap allowed between two runs of a schedule.
    pub min_schedule_interval: chrono::Duration,
    /// Commands not finished, per tenant.
    pub max_commands: i64,
    /// Bytes of one value a preview shows.
    pub preview_cell_bytes: usize,
}

impl AppState {
    /// The directory a tenant's SQLite connectors may open files in.
    /// The tenant's folder for SQLite files, created on first use so the
    /// operator only has to drop files into it.
    pub fn tenant_sqlite_dir(&self, tenant: &sluice_store::ids::TenantId) -> PathBuf {
        let dir = sluice_jobs::databases::tenant_sqlite_dir(&self.sqlite_root, tenant);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(error = %e, "cannot create a tenant's SQLite directory");
        }
        dir
    }
}
