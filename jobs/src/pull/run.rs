//! Running one command: render, stream, deliver batch by batch, then complete.

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_connect::{Access, CursorSort, Database};
use sluice_deliver::{Delivery, Signing};
use sluice_sqltpl::{PlaceholderValues, Rendered, render_placeholders};
use sluice_store::StoreError;
use sluice_store::commands::{Callback, Command, CommandKind};
use sluice_store::ids::RunId;
use sluice_store::inboxes::InboxRefusal;
use sluice_store::leases::{Lease, owner_token};
use sluice_store::runs::{Completion, Run};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pull::body::{self, PreparedBatch};
use crate::pull::cursor::Cursor;
use crate::pull::next_scheduled_run;
use crate::{Job, JobContext, JobError, databases};

/// Runs one queued run of a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunCommand {
    pub run_id: RunId,
}

/// How long one callback POST may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

impl Job for RunCommand {
    const QUEUE: &'static str = "pull.run_command";

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let owner = owner_token(&ctx.instance);
        // Another worker has it, or it already ended (e.g. released after a crash).
        let Some((run, lease)) = ctx.store.claim_run(&self.run_id, &owner).await? else {
            return Ok(());
        };
        ctx.metrics.run_claimed();
        let _active = ctx.track_run(&run.id);
        let command = ctx.store.command(&run.tenant_id, &run.command_id).await?;
        let (lease, lost) = heartbeat(ctx, &run, lease);
        let _slot = ctx.connector_slot(&command.settings.connector_id).await;
        // A lost lease stops the run at once, wherever it is (reading, posting, retrying).
        let outcome = tokio::select! {
            outcome = execute(ctx, &command, &run, &lease) => outcome,
            () = lost.cancelled() => Err(Failure::LeaseLost),
        };
        lost.cancel();
        let lease = lease.current();
        let next_run_at = match command.settings.kind {
            CommandKind::Static => next_scheduled_run(&command, Utc::now()),
            CommandKind::Dynamic => None,
        };
        let written = match outcome {
            Ok(last_value) => {
                let completion = Completion {
                    last_value: last_value.as_ref().map(|(value, _)| value.as_str()),
                    last_value_type: last_value.as_ref().map(|(_, sort)| sort.as_str()),
                    next_run_at,
                };
                let done = ctx
                    .store
                    .complete_run(&run, &lease, command.settings.kind, completion)
                    .await;
                done.map(|()| ctx.metrics.run_finished(true))
            }
            Err(Failure::Failed(message)) => {
                tracing::warn!(run = %run.id, command = %command.id, error = %message, "run failed");
                let failed = ctx
                    .store
                    .fail_run(&run, &lease, &message, next_run_at)
                    .await;
                failed.map(|()| ctx.metrics.run_finished(false))
            }
            Err(Failure::Retry {
                attempts,
                wait,
                error,
            }) => {
                let next_at = (Utc::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
                .naive_utc();
                tracing::info!(run = %run.id, attempts, wait_ms = wait.as_millis() as u64, error = %error, "callback attempt failed; the next is scheduled");
                ctx.store
                    .schedule_run_retry(&run, &lease, attempts, next_at, &error)
                    .await
            }
            Err(Failure::LeaseLost) => Err(StoreError::LeaseLost {
                resource: lease.resource.clone(),
            }),
        };
        match written {
            Err(StoreError::LeaseLost { .. }) => {
                // Another worker owns the command now; nothing of this run may land.
                tracing::warn!(run = %run.id, command = %command.id, "run stopped: its lease was lost (another worker took the command over)");
                Ok(())
            }
            other => Ok(other?),
        }
    }
}

/// Why a run ended without completing.
enum Failure {
    /// The run failed: the command goes to ERROR with this message.
    Failed(String),
    /// A batch's delivery failed and may succeed later: the run waits, durably,
    /// for its next attempt (`attempts` so far, the wait, the error).
    Retry {
        attempts: i64,
        wait: Duration,
        error: String,
    },
    /// The run's lease was lost: it stops and writes nothing more.
    LeaseLost,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Failed(message)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LeaseLost { .. } => Failure::LeaseLost,
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// The run's lease as the heartbeat last renewed it.
#[derive(Clone)]
struct HeldLease(Arc<std::sync::Mutex<Lease>>);

impl HeldLease {
    fn current(&self) -> Lease {
        self.0.lock().expect("lease lock").clone()
    }
}

/// Renews the run's lease well within its term until the run ends; cancels the
/// returned token as soon as a renewal finds the lease lost.
fn heartbeat(ctx: &JobContext, run: &Run, lease: Lease) -> (HeldLease, CancellationToken) {
    let held = HeldLease(Arc::new(std::sync::Mutex::new(lease)));
    let lost = CancellationToken::new();
    let every = (ctx.store.run_lease() / 4)
        .to_std()
        .unwrap_or(Duration::from_secs(30));
    let (store, run, beat, stop) = (ctx.store.clone(), run.clone(), held.clone(), lost.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
            match store.renew_run_lease(&run, &beat.current()).await {
                Ok(renewed) => *beat.0.lock().expect("lease lock") = renewed,
                Err(StoreError::LeaseLost { .. }) => {
                    tracing::warn!(run = %run.id, "the run's lease was lost; stopping it");
                    stop.cancel();
                    return;
                }
                // The store is busy or unreachable: try again on the next beat; the
                // lease's expiry decides whether the run may go on.
                Err(e) => {
                    tracing::warn!(run = %run.id, error = %e, "could not renew the run's lease")
                }
            }
        }
    });
    (held, lost)
}

/// Streams and delivers every batch; returns the new cursor (the largest Last
/// Field among the delivered rows, and its column's sort), or why the run failed.
async fn execute(
    ctx: &JobContext,
    command: &Command,
    run: &Run,
    lease: &HeldLease,
) -> Result<Option<(String, CursorSort)>, Failure> {
    let connector = ctx
        .store
        .connector(&run.tenant_id, &command.settings.connector_id)
        .await
        .map_err(|e| e.to_string())?;
    let db = databases::open_database(&ctx.databases, &ctx.store, &ctx.sqlite_root, &connector)
        .await
        .map_err(|e| e.message())?;
    let params = match run.params.as_deref() {
        Some(raw) => {
            serde_json::from_str::<Map<String, Value>>(raw).map_err(|e| format!("params: {e}"))?
        }
        None => Map::new(),
    };
    let values = PlaceholderValues {
        last_value: command.last_value.clone(),
        params,
        start_time: run.window_start.map(|t| t.and_utc()),
        end_time: run.window_end.map(|t| t.and_utc()),
    };
    let rendered = render_placeholders(&command.settings.sql, db.dialect(), &values)
        .map_err(|e| format!("SQL template, {e}"))?;
    let batch_size = usize::try_from(command.settings.batch_size)
        .unwrap_or(1000)
        .clamp(1, 100_000);
    let mut cursor = Cursor::new(
        command.settings.last_field.as_deref(),
        command
            .last_value_type
            .as_deref()
            .and_then(CursorSort::parse),
    );
    let max_bytes = ctx.settings.max_batch_bytes;
    let field = command.settings.last_field.clone();
    let mut batches = prefetch_batches(db, rendered, batch_size, max_bytes, field);
    let mut number = 0u64;
    // A run resumed after a failed attempt re-reads its result and skips the
    // batches it already delivered (same numbers, same idempotency keys).
    let delivered = u64::try_from(run.batches).unwrap_or(0);
    while let Some(batch) = batches.recv().await {
        let PreparedBatch {
            columns,
            rows,
            body,
            cursor: values,
        } = batch?;
        number += 1;
        cursor.observe(&columns, &values)?;
        if number <= delivered {
            continue;
        }
        let bytes = body.len() as i64;
        let held = lease.current();
        deliver(ctx, command, run, &held, number, body).await?;
        ctx.store
            .record_batch(run, &held, rows as i64, bytes)
            .await?;
        ctx.metrics.batch_delivered(rows as u64, bytes as u64);
    }
    Ok(cursor.into_value())
}

/// How many batches may wait while one is being delivered.
const READ_AHEAD: usize = 2;

/// Batches read ahead while the previous one is being delivered, so the database,
/// the JSON encoding and the callback overlap. At most [`READ_AHEAD`] batches
/// wait, which keeps memory bounded whatever the result size.
fn prefetch_batches(
    db: Arc<Database>,
    rendered: Rendered,
    batch_size: usize,
    max_bytes: usize,
    last_field: Option<String>,
) -> mpsc::Receiver<Result<PreparedBatch, String>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        // A command may write its own database (seed 001); it can never reach
        // another file, read-write or not (see sluice_connect's SQLite driver).
        let mut batches = db.stream_batches_with_cursor(
            &rendered,
            batch_size,
            Access::ReadWrite,
            last_field.as_deref(),
        );
        while let Some(batch) = batches.next().await {
            let prepared = batch
                .map_err(|e| e.to_string())
                .and_then(|batch| body::prepare(batch, max_bytes));
            let parts = match prepared {
                Ok(parts) => parts,
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    break;
                }
            };
            for part in parts {
                // Stop reading when the run stopped listening (its delivery failed).
                if sender.send(Ok(part)).await.is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

/// Why a batch could not go into the inbox, with what to do about the inbox's limits.
/// The run fails (its cursor unmoved) rather than drop rows or older messages.
fn inbox_failure(number: u64, err: &StoreError) -> String {
    let StoreError::InboxRefused(refusal) = err else {
        return format!("inbox: {err}");
    };
    let limit = refusal.limit();
    match refusal {
        InboxRefusal::BodyTooLarge { .. } => {
            format!("inbox: batch {number} {refusal} ({limit}): lower the command's batch size")
        }
        _ if refusal.is_about_the_body() => format!("inbox: batch {number} {refusal} ({limit})"),
        _ => format!("inbox: batch {number}: {refusal} ({limit})"),
    }
}

async fn deliver(
    ctx: &JobContext,
    command: &Command,
    run: &Run,
    lease: &Lease,
    number: u64,
    body: Vec<u8>,
) -> Result<(), Failure> {
    match &command.settings.callback {
        Callback::Inbox(inbox) => {
            let text = String::from_utf8(body).map_err(|e| e.to_string())?;
            let source = format!("command:{}", command.id);
            match ctx
                .store
                .add_inbox_message(&run.tenant_id, inbox, &source, &text, Some(lease))
                .await
            {
                Ok(_) => Ok(()),
                Err(StoreError::LeaseLost { .. }) => Err(Failure::LeaseLost),
                Err(e) => Err(inbox_failure(number, &e).into()),
            }
        }
        Callback::Url(url) if url.is_empty() => Err(Failure::Failed(
            "the command has no callback (its inbox was deleted)".into(),
        )),
        Callback::Url(url) => {
            let url = ctx
                .outbound
                .guard()
                .check_url(url)
                .map_err(|e| format!("callback URL: {e}"))?;
            let key = format!("{}:{number}", run.id);
            let delivery = Delivery {
                url,
                body: Bytes::from(body),
                content_type: "application/json",
                idempotency_key: Some(key.clone()),
                headers: vec![
                    ("Sluice-Command".into(), command.id.to_string()),
                    ("Sluice-Batch".into(), number.to_string()),
                ],
                timeout: CALLBACK_TIMEOUT,
                signing: Some(Signing {
                    message_id: key,
                    secret: ctx.store.callback_signing_key(&run.tenant_id),
                }),
            };
            // One attempt per job: a failure becomes a retry that is due later
            // (a row, not a sleep), so it survives restarts and shows on the run.
            let mut attempt = ctx.outbound.send_once(&delivery).await;
            attempt.number = u32::try_from(run.attempts + 1).unwrap_or(u32::MAX);
            if attempt.succeeded() {
                return Ok(());
            }
            let error = format!(
                "callback batch {number}, attempt {}: {}",
                attempt.number,
                attempt.error.as_deref().unwrap_or("failed")
            );
            match ctx.settings.delivery_policy.retry_after_attempt(&attempt) {
                Some(wait) => Err(Failure::Retry {
                    attempts: i64::from(attempt.number),
                    wait,
                    error,
                }),
                None => Err(Failure::Failed(format!("{error}; giving up"))),
            }
        }
    }
}
