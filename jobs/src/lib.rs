//! Sluice's background work on apalis. One job = one serialisable struct implementing
//! [`Job`]; [`register_all`] is the single list of them. The queue lives beside the
//! control plane: apalis-postgres in the same PostgreSQL database, or apalis-sqlite in
//! its own file next to the embedded store (so the two SQLite writers never contend).

pub mod databases;
mod housekeeping;
mod metrics;
pub mod outbox;
pub mod pull;
mod queue;
pub mod segments;
pub mod sqlite_dirs;
mod wake;

pub use housekeeping::{
    ApplyHistoryRetention, ApplyInboxRetention, ApplyOutboxRetention, CleanupExpiredSessions,
    HOUSEKEEPING_DEFAULT_SCHEDULE,
};
pub use metrics::JobMetrics;
pub use queue::{JobQueue, JobQueueError};

use apalis::prelude::*;
use serde::{Serialize, de::DeserializeOwned};
use sluice_connect::Registry;
use sluice_deliver::{Outbound, RetryPolicy};
use sluice_store::Store;
use sluice_store::db::connection_scope;
use sluice_store::ids::{ConnectorId, RunId};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What every job gets to work with.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub queue: JobQueue,
    /// Connection pools to tenants' databases, shared with the web handlers.
    pub databases: Registry,
    pub sqlite_root: Arc<PathBuf>,
    /// The one way out to callback URLs and webhooks.
    pub outbound: Arc<Outbound>,
    pub settings: Arc<JobSettings>,
    pub metrics: JobMetrics,
    /// Names this instance's workers apart from every other process's.
    pub instance: Arc<str>,
    connector_slots: Arc<Mutex<HashMap<ConnectorId, Arc<Semaphore>>>>,
    active_runs: Arc<Mutex<HashSet<RunId>>>,
    /// This process's lease on the scheduler, while it is the one scheduling.
    scheduler_lease: Arc<tokio::sync::Mutex<Option<sluice_store::leases::Lease>>>,
}

impl JobContext {
    pub fn new(
        store: Store,
        queue: JobQueue,
        databases: Registry,
        sqlite_root: Arc<PathBuf>,
        outbound: Arc<Outbound>,
        settings: JobSettings,
        metrics: JobMetrics,
    ) -> Self {
        Self {
            store,
            queue,
            databases,
            sqlite_root,
            outbound,
            settings: Arc::new(settings),
            metrics,
            instance: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
            connector_slots: Arc::default(),
            active_runs: Arc::default(),
            scheduler_lease: Arc::default(),
        }
    }

    /// Marks a run as running in this process until the guard drops.
    pub(crate) fn track_run(&self, run: &RunId) -> ActiveRun {
        lock(&self.active_runs).insert(run.clone());
        ActiveRun {
            runs: self.active_runs.clone(),
            run: run.clone(),
        }
    }

    /// At shutdown, after the workers had their grace period: hands the runs still
    /// going in this process back to the queue at once, instead of after their
    /// lease runs out. Returns how many.
    pub async fn release_active_runs(&self) -> Result<usize, JobError> {
        let runs: Vec<RunId> = lock(&self.active_runs).drain().collect();
        if runs.is_empty() {
            return Ok(0);
        }
        Ok(self.store.release_interrupted_runs(&runs).await?)
    }

    /// Waits for one of the connector's run slots (at most
    /// `runs_per_connector` runs of one connector at a time in this process).
    pub async fn connector_slot(&self, connector: &ConnectorId) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = lock(&self.connector_slots);
            slots
                .entry(connector.clone())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.settings.runs_per_connector.max(1)))
                })
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run in progress in this process (see [`JobContext::track_run`]).
pub(crate) struct ActiveRun {
    runs: Arc<Mutex<HashSet<RunId>>>,
    run: RunId,
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        lock(&self.runs).remove(&self.run);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] sluice_store::StoreError),
    #[error(transparent)]
    Queue(#[from] JobQueueError),
    #[error("{0}")]
    Run(String),
}

/// A unit of background work with a stable queue name.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The apalis queue this job travels on; never rename a shipped one.
    const QUEUE: &'static str;

    fn run(self, ctx: &JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// Bytes of JSON in one callback POST unless the operator says otherwise.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// How the job system runs in this process.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Cron (with seconds) for the housekeeping tick.
    pub housekeeping_schedule: String,
    /// Retries of a callback POST before a run fails.
    pub delivery_policy: RetryPolicy,
    /// Concurrent runs of one connector in this process.
    pub runs_per_connector: usize,
    /// Bytes of JSON one callback POST may carry (batches are split below it).
    pub max_batch_bytes: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            housekeeping_schedule: HOUSEKEEPING_DEFAULT_SCHEDULE.to_string(),
            delivery_policy: RetryPolicy::standard(),
            runs_per_connector: 2,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

/// How long running jobs may take to finish once the process is asked to stop.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Every worker and schedule of the product, registered on one monitor.
pub fn register_all(ctx: JobContext) -> Result<Monitor, String> {
    let monitor = Monitor::new().shutdown_timeout(SHUTDOWN_GRACE);
    ctx.queue.listen_for_jobs();
    let monitor = ctx
        .queue
        .register_worker::<CleanupExpiredSessions>(monitor, ctx.clone());
    let monitor = ctx
        .queue
        .register_worker::<ApplyInboxRetention>(monitor, ctx.clone());
    let monitor = ctx
        .queue
        .register_worker::<ApplyHistoryRetention>(monitor, ctx.clone());
    let monitor = ctx
        .queue
        .register_worker::<ApplyOutboxRetention>(monitor, ctx.clone());
    let monitor = ctx
        .queue
        .register_worker::<pull::RunCommand>(monitor, ctx.clone());
    let monitor = pull::register_scheduler(monitor, ctx.clone());
    let schedule = cron::Schedule::from_str(&ctx.settings.housekeeping_schedule).map_err(|e| {
        format!(
            "housekeeping schedule {:?}: {e}",
            ctx.settings.housekeeping_schedule
        )
    })?;
    Ok(housekeeping::register_tick(
        monitor,
        schedule,
        ctx.queue.clone(),
    ))
}

/// The apalis handler shared by every [`Job`].
async fn run_job<J: Job>(job: J, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let started = std::time::Instant::now();
    // apalis polls a worker's jobs side by side in one task: each is its own
    // holder of a store connection.
    let outcome = connection_scope(job.run(&ctx)).await;
    match &outcome {
        Ok(()) => tracing::debug!(
            queue = J::QUEUE,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "job done"
        ),
        Err(e) => tracing::warn!(queue = J::QUEUE, error = %e, "job failed"),
    }
    outcome.map_err(Into::into)
}
