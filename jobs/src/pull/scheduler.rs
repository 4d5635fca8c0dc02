//! The scheduler tick: every second, in every process. Claims are atomic in the
//! store, so several processes never start the same command twice; leases that
//! ran out (a dead worker) are released first.

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use std::str::FromStr;

use crate::pull::{RunCommand, start_run};
use crate::{JobContext, JobError};
use sluice_store::StoreError;
use sluice_store::leases::owner_token;

/// Commands claimed per tick, so one tick never hogs the store.
const CLAIMS_PER_TICK: i64 = 20;

pub fn register_scheduler(monitor: Monitor, ctx: JobContext) -> Monitor {
    monitor.register(move |_| {
        let every_second = cron::Schedule::from_str("* * * * * *").expect("valid cron");
        WorkerBuilder::new("pull.scheduler")
            .backend(CronScheduler::new(every_second))
            .data(ctx.clone())
            .build(tick)
    })
}

async fn tick(tick: Tick, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    sluice_store::db::connection_scope(claim_and_start(tick, ctx)).await
}

/// How long a process stays the scheduler without renewing (each tick renews).
const SCHEDULER_LEASE: chrono::Duration = chrono::Duration::seconds(5);

/// Whether this process schedules this tick: it renews its lease on
/// `scheduler`, or takes it when free or expired. One process claims due work
/// at a time; another takes over within [`SCHEDULER_LEASE`] if it stops. (The
/// claims themselves stay atomic per row, so correctness never rests on this.)
async fn is_the_scheduler(ctx: &JobContext) -> Result<bool, StoreError> {
    let mut held = ctx.scheduler_lease.lock().await;
    if let Some(lease) = held.as_ref() {
        match ctx.store.renew_lease(lease, SCHEDULER_LEASE).await {
            Ok(renewed) => {
                *held = Some(renewed);
                return Ok(true);
            }
            Err(StoreError::LeaseLost { .. }) => *held = None,
            Err(other) => return Err(other),
        }
    }
    *held = ctx
        .store
        .acquire_lease("scheduler", &owner_token(&ctx.instance), SCHEDULER_LEASE)
        .await?;
    Ok(held.is_some())
}

async fn claim_and_start(_tick: Tick, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    if !is_the_scheduler(&ctx).await? {
        return Ok(());
    }
    let released = ctx.store.release_expired_leases().await?;
    if released > 0 {
        tracing::warn!(released, "released commands and runs whose worker stopped");
    }
    // Runs whose next delivery attempt is due go back to the workers; they resume
    // from the batch that failed.
    for run_id in ctx.store.requeue_due_retries(CLAIMS_PER_TICK).await? {
        if let Err(e) = ctx
            .queue
            .push(RunCommand {
                run_id: run_id.clone(),
            })
            .await
        {
            // The run's lease ran from now; if no worker takes it, the sweeper
            // releases it as interrupted and the command runs again.
            tracing::error!(run = %run_id, error = %e, "could not queue a run's next attempt");
        }
    }
    for command in ctx.store.claim_due_commands(CLAIMS_PER_TICK).await? {
        let trigger = match command.settings.kind {
            sluice_store::commands::CommandKind::Static => "schedule",
            sluice_store::commands::CommandKind::Dynamic => "api",
        };
        match start_run(&ctx, &command, trigger, None, None).await {
            Ok(_) => {}
            Err(JobError::Store(StoreError::NotFound { .. })) => {
                tracing::debug!(command = %command.id, "command deleted as its run was due");
            }
            Err(e) => {
                tracing::error!(command = %command.id, error = %e, "could not start a scheduled run");
            }
        }
    }
    Ok(())
}
