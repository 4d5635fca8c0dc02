//! Periodic upkeep: a cron tick enqueues the cleanup job, which any worker runs.

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use serde::{Deserialize, Serialize};

use crate::{Job, JobContext, JobError, JobQueue};

/// Every five minutes, at second 0.
pub const HOUSEKEEPING_DEFAULT_SCHEDULE: &str = "0 */5 * * * *";

/// Removes sessions past their expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupExpiredSessions;

impl Job for CleanupExpiredSessions {
    const QUEUE: &'static str = "housekeeping.cleanup_expired_sessions";

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let removed = ctx.store.delete_expired_sessions().await?;
        if removed > 0 {
            tracing::info!(removed, "removed expired sessions");
        }
        Ok(())
    }
}

/// Inbox retention: removes messages past their age, and all but the newest of
/// each inbox (the store's `InboxLimits`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyInboxRetention;

impl Job for ApplyInboxRetention {
    const QUEUE: &'static str = "housekeeping.inbox_retention";

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let removed = ctx.store.apply_inbox_retention().await?;
        if removed > 0 {
            tracing::info!(removed, "removed inbox messages past retention");
        }
        Ok(())
    }
}

/// History retention: archived dynamic commands and old runs past the
/// operator's retention (the store's `TenantQuotas`), and stale lease rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyHistoryRetention;

impl Job for ApplyHistoryRetention {
    const QUEUE: &'static str = "housekeeping.history_retention";

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let removed = ctx.store.apply_history_retention().await?;
        // Nobody can write under an expired lease; after an hour its row only takes room.
        let leases = ctx
            .store
            .remove_stale_leases(chrono::Duration::hours(1))
            .await?;
        if leases > 0 {
            tracing::info!(leases, "removed leases expired for over an hour");
        }
        if removed != Default::default() {
            tracing::info!(
                archived_commands = removed.archived_commands,
                runs = removed.runs,
                audit_entries = removed.audit_entries,
                "removed history past retention"
            );
        }
        Ok(())
    }
}

/// Outbox retention: removes entries every consumer of their stream has applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyOutboxRetention;

impl Job for ApplyOutboxRetention {
    const QUEUE: &'static str = "housekeeping.outbox_retention";

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let removed = ctx.store.apply_outbox_retention().await?;
        if removed > 0 {
            tracing::info!(removed, "removed outbox entries every consumer had applied");
        }
        Ok(())
    }
}

pub(crate) fn register_tick(
    monitor: Monitor,
    schedule: cron::Schedule,
    queue: JobQueue,
) -> Monitor {
    monitor.register(move |_| {
        WorkerBuilder::new("housekeeping.tick")
            .backend(CronScheduler::new(schedule.clone()))
            .data(queue.clone())
            .build(enqueue_housekeeping)
    })
}

async fn enqueue_housekeeping(_tick: Tick, queue: Data<JobQueue>) -> Result<(), BoxDynError> {
    queue.push(CleanupExpiredSessions).await?;
    queue.push(ApplyInboxRetention).await?;
    queue.push(ApplyHistoryRetention).await?;
    queue.push(ApplyOutboxRetention).await.map_err(Into::into)
}
