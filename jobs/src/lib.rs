//! Sluice's background work on apalis. One job = one serialisable struct implementing
//! [`Job`]; [`register_all`] is the single list of them. The queue lives beside the
//! control plane: apalis-postgres in the same PostgreSQL database, or apalis-sqlite in
//! its own file next to the embedded store (so the two SQLite writers never contend).

mod housekeeping;
mod queue;

pub use housekeeping::{CleanupExpiredSessions, HOUSEKEEPING_DEFAULT_SCHEDULE};
pub use queue::{JobQueue, JobQueueError};

use apalis::prelude::*;
use serde::{Serialize, de::DeserializeOwned};
use sluice_store::Store;
use std::future::Future;
use std::str::FromStr;

/// What every job gets to work with.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub queue: JobQueue,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] sluice_store::StoreError),
    #[error(transparent)]
    Queue(#[from] JobQueueError),
}

/// A unit of background work with a stable queue name.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The apalis queue this job travels on; never rename a shipped one.
    const QUEUE: &'static str;

    fn run(self, ctx: &JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// How the job system runs in this process.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Cron (with seconds) for the housekeeping tick.
    pub housekeeping_schedule: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            housekeeping_schedule: HOUSEKEEPING_DEFAULT_SCHEDULE.to_string(),
        }
    }
}

/// Every worker and schedule of the product, registered on one monitor.
pub fn register_all(ctx: JobContext, settings: &JobSettings) -> Result<Monitor, String> {
    let monitor = Monitor::new().shutdown_timeout(std::time::Duration::from_secs(10));
    let monitor = ctx
        .queue
        .register_worker::<CleanupExpiredSessions>(monitor, ctx.clone());
    let schedule = cron::Schedule::from_str(&settings.housekeeping_schedule).map_err(|e| {
        format!(
            "housekeeping schedule {:?}: {e}",
            settings.housekeeping_schedule
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
    let outcome = job.run(&ctx).await;
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
