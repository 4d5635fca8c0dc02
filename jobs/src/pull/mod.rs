//! Pull syncs: the scheduler claims due commands and queues their runs; a worker
//! runs one: render the SQL, stream the rows in batches, deliver each batch to the
//! callback URL or inbox, and move the cursor only after the last batch arrived.

mod body;
mod cursor;
mod run;
pub mod schedule;
mod scheduler;
mod weekdays;

pub use run::RunCommand;
pub use schedule::{Schedule, ScheduleError, legacy_to_standard};
pub use scheduler::register_scheduler;

use chrono::{DateTime, NaiveDateTime, Utc};
use sluice_store::commands::Command;
use sluice_store::runs::{NewRun, Run};

use crate::{JobContext, JobError};

/// A run's time window, `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Window {
    /// From the end of the last successful window (or the beginning of time) to now.
    pub fn following(command: &Command, now: DateTime<Utc>) -> Self {
        Self {
            start: command
                .window_end
                .unwrap_or(DateTime::UNIX_EPOCH.naive_utc()),
            end: now.naive_utc(),
        }
    }
}

/// Records a run of a command the caller has claimed (PROCESSING) and queues it.
/// `window` defaults to [`Window::following`]; `params` (a JSON object) override
/// the command's own.
pub async fn start_run(
    ctx: &JobContext,
    command: &Command,
    trigger: &str,
    window: Option<Window>,
    params: Option<&str>,
) -> Result<Run, JobError> {
    let window = window.unwrap_or_else(|| Window::following(command, Utc::now()));
    let run = ctx
        .store
        .create_run(
            &command.tenant_id,
            &command.id,
            NewRun {
                trigger,
                window_start: Some(window.start),
                window_end: Some(window.end),
                params: params.or(command.settings.params.as_deref()),
                last_value_before: command.last_value.as_deref(),
            },
        )
        .await?;
    if let Err(e) = ctx
        .queue
        .push(RunCommand {
            run_id: run.id.clone(),
        })
        .await
    {
        let error = format!("could not queue the run: {e}; it will be tried again");
        let retry_at = (Utc::now() + QUEUE_RETRY).naive_utc();
        ctx.store.unqueue_run(&run, &error, retry_at).await?;
        return Err(e.into());
    }
    Ok(run)
}

/// How long a command whose run could not be queued waits before the scheduler
/// tries it again.
const QUEUE_RETRY: chrono::Duration = chrono::Duration::seconds(30);

/// When a command runs next after `after` (static commands with a schedule only).
pub fn next_scheduled_run(command: &Command, after: DateTime<Utc>) -> Option<NaiveDateTime> {
    let expression = command.settings.schedule.as_deref()?;
    Schedule::parse(expression, &command.settings.timezone)
        .ok()?
        .next_after(after)
}
