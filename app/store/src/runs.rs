//! Runs of a command: one row per execution with its window, progress and outcome.
//! A run is claimed under a lease; its command's cursor moves only when the run
//! completes, in the same transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::commands::{CommandKind, CommandStatus};
use crate::error::OptionalExt;
use crate::ids::{CommandId, RunId, TenantId};
use crate::leases::Lease;
use crate::schema::{command_runs, commands, leases};
use crate::{
    Store, StoreError, acquire_lease, hold_lease, in_transaction, now, release_lease_in, with_conn,
};

/// The lease resource of one run.
pub fn run_resource(id: &RunId) -> String {
    format!("run:{id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Running,
    /// A batch's delivery failed; the run waits for its next attempt (a row
    /// becoming due, see [`Store::schedule_run_retry`]), holding no worker.
    Retrying,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Retrying,
        Self::Succeeded,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "retrying" => Some(Self::Retrying),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = command_runs)]
struct RunRow {
    id: String,
    tenant_id: String,
    command_id: String,
    run_trigger: String,
    status: String,
    window_start: Option<NaiveDateTime>,
    window_end: Option<NaiveDateTime>,
    params: Option<String>,
    rows_delivered: i64,
    bytes_delivered: i64,
    batches_delivered: i64,
    error: Option<String>,
    last_value_before: Option<String>,
    last_value_after: Option<String>,
    created_at: NaiveDateTime,
    started_at: Option<NaiveDateTime>,
    finished_at: Option<NaiveDateTime>,
    lease_until: Option<NaiveDateTime>,
    attempts: i64,
    next_attempt_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: RunId,
    pub tenant_id: TenantId,
    pub command_id: CommandId,
    /// `schedule`, `manual`, `api` or `direct`.
    pub trigger: String,
    pub status: RunStatus,
    pub window_start: Option<NaiveDateTime>,
    pub window_end: Option<NaiveDateTime>,
    /// JSON object of the parameters this run was given.
    pub params: Option<String>,
    pub rows: i64,
    pub bytes: i64,
    pub batches: i64,
    pub error: Option<String>,
    pub last_value_before: Option<String>,
    pub last_value_after: Option<String>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub lease_until: Option<NaiveDateTime>,
    /// Failed delivery attempts of the batch being delivered (0 once it went out).
    pub attempts: i64,
    /// When a retrying run's next attempt is due.
    pub next_attempt_at: Option<NaiveDateTime>,
}

impl Run {
    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;

    fn try_from(r: RunRow) -> Result<Self, StoreError> {
        let status = RunStatus::parse(&r.status).ok_or_else(|| StoreError::Corrupt {
            what: "run status",
            value: r.status.clone(),
        })?;
        Ok(Self {
            id: RunId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            command_id: CommandId::from_stored(r.command_id),
            trigger: r.run_trigger,
            status,
            window_start: r.window_start,
            window_end: r.window_end,
            params: r.params,
            rows: r.rows_delivered,
            bytes: r.bytes_delivered,
            batches: r.batches_delivered,
            error: r.error,
            last_value_before: r.last_value_before,
            last_value_after: r.last_value_after,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            lease_until: r.lease_until,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
        })
    }
}

/// A run to record, for a command its caller has claimed.
pub struct NewRun<'a> {
    pub trigger: &'a str,
    pub window_start: Option<NaiveDateTime>,
    pub window_end: Option<NaiveDateTime>,
    pub params: Option<&'a str>,
    pub last_value_before: Option<&'a str>,
}

/// How a finished run leaves its command.
pub struct Completion<'a> {
    /// The new cursor, when the run delivered rows carrying the Last Field.
    pub last_value: Option<&'a str>,
    /// How the Last Field's column orders (`integer`, `text`, …), stored with
    /// the new cursor.
    pub last_value_type: Option<&'a str>,
    /// When a static command runs next (`None`: only on demand).
    pub next_run_at: Option<NaiveDateTime>,
}

impl Store {
    pub async fn create_run(
        &self,
        tenant: &TenantId,
        command: &CommandId,
        new: NewRun<'_>,
    ) -> Result<Run, StoreError> {
        let id = RunId::generate();
        let at = now();
        let mut conn = self.write().await?;
        let row: RunRow = with_conn!(&mut conn, c => diesel::insert_into(command_runs::table)
            .values((
                command_runs::id.eq(id.as_str()),
                command_runs::tenant_id.eq(tenant.as_str()),
                command_runs::command_id.eq(command.as_str()),
                command_runs::run_trigger.eq(new.trigger),
                command_runs::status.eq(RunStatus::Queued.as_str()),
                command_runs::window_start.eq(new.window_start),
                command_runs::window_end.eq(new.window_end),
                command_runs::params.eq(new.params),
                command_runs::rows_delivered.eq(0i64),
                command_runs::bytes_delivered.eq(0i64),
                command_runs::batches_delivered.eq(0i64),
                command_runs::last_value_before.eq(new.last_value_before),
                command_runs::created_at.eq(at),
                // A queued run that no worker picks up is released like a dead one.
                command_runs::lease_until.eq(at + self.run_lease()),
            ))
            .returning(RunRow::as_returning())
            .get_result(c)
            .await)
        .map_err(StoreError::parent_gone("command"))?;
        row.try_into()
    }

    pub async fn run(&self, tenant: &TenantId, id: &RunId) -> Result<Run, StoreError> {
        let mut conn = self.read().await?;
        let row: RunRow = with_conn!(&mut conn, c => command_runs::table
            .filter(command_runs::tenant_id.eq(tenant.as_str()))
            .filter(command_runs::id.eq(id.as_str()))
            .select(RunRow::as_select())
            .first(c)
            .await)
        .or_not_found("run")?;
        row.try_into()
    }

    /// One page of a command's runs, newest first: those started before
    /// `before` (run ids grow with time), at most `limit`.
    pub async fn runs(
        &self,
        tenant: &TenantId,
        command: &CommandId,
        before: Option<&RunId>,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        // Every id sorts below "~": no cursor means from the newest.
        let before = before.map_or("~", RunId::as_str);
        let mut conn = self.read().await?;
        let rows: Vec<RunRow> = with_conn!(&mut conn, c => command_runs::table
            .filter(command_runs::tenant_id.eq(tenant.as_str()))
            .filter(command_runs::command_id.eq(command.as_str()))
            .filter(command_runs::id.lt(before))
            .order(command_runs::id.desc())
            .limit(limit)
            .select(RunRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The latest run of each of `commands` that has one, in one query (a
    /// connector's queue shows them side by side).
    pub async fn latest_runs(
        &self,
        tenant: &TenantId,
        commands: &[CommandId],
    ) -> Result<std::collections::HashMap<CommandId, Run>, StoreError> {
        let ids: Vec<&str> = commands.iter().map(CommandId::as_str).collect();
        let newer = diesel::alias!(command_runs as newer);
        let a_newer_run = newer
            .filter(
                newer
                    .field(command_runs::command_id)
                    .eq(command_runs::command_id),
            )
            .filter(
                newer
                    .field(command_runs::created_at)
                    .gt(command_runs::created_at),
            );
        let mut conn = self.read().await?;
        let rows: Vec<RunRow> = with_conn!(&mut conn, c => command_runs::table
            .filter(command_runs::tenant_id.eq(tenant.as_str()))
            .filter(command_runs::command_id.eq_any(&ids))
            .filter(diesel::dsl::not(diesel::dsl::exists(a_newer_run)))
            .select(RunRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter()
            .map(|row| Run::try_from(row).map(|run| (run.command_id.clone(), run)))
            .collect()
    }

    /// The tenant's latest runs across commands (dashboard).
    pub async fn recent_runs(&self, tenant: &TenantId, limit: i64) -> Result<Vec<Run>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<RunRow> = with_conn!(&mut conn, c => command_runs::table
            .filter(command_runs::tenant_id.eq(tenant.as_str()))
            .order((command_runs::created_at.desc(), command_runs::id.desc()))
            .limit(limit)
            .select(RunRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Runs that were due more than `grace` ago and that no worker has started:
    /// queued runs (due when queued, or at their next attempt once a retry was
    /// queued again) and retrying runs past their next attempt. Empty unless the
    /// job system is stopped or stuck; the test harness asserts it.
    pub async fn overdue_runs(&self, grace: chrono::Duration) -> Result<Vec<Run>, StoreError> {
        let cutoff = now() - grace;
        let queued = RunStatus::Queued.as_str();
        let retrying = RunStatus::Retrying.as_str();
        let mut conn = self.read().await?;
        let rows: Vec<RunRow> = with_conn!(&mut conn, c => command_runs::table
            .filter(
                command_runs::status
                    .eq(queued)
                    .or(command_runs::status.eq(retrying)),
            )
            .filter(
                command_runs::next_attempt_at.le(cutoff).or(command_runs::next_attempt_at
                    .is_null()
                    .and(command_runs::created_at.le(cutoff))),
            )
            .select(RunRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Claims a queued run for this worker under a new fenced lease (`run:<id>`,
    /// owned by `owner`), and renews its command's lease. `None` when it already
    /// started, finished or was released: a run whose worker died is never
    /// resumed here — the scheduler releases it as interrupted and the command
    /// runs again from its unmoved cursor.
    pub async fn claim_run(
        &self,
        id: &RunId,
        owner: &str,
    ) -> Result<Option<(Run, Lease)>, StoreError> {
        let at = now();
        let ttl = self.run_lease();
        let until = at + ttl;
        let resource = run_resource(id);
        let mut conn = self.write().await?;
        let claimed: Option<(RunRow, Lease)> = in_transaction!(&mut conn, c => {
            let claimed = diesel::update(
                command_runs::table
                    .filter(command_runs::id.eq(id.as_str()))
                    .filter(command_runs::status.eq(RunStatus::Queued.as_str())),
            )
            .set((
                command_runs::status.eq(RunStatus::Running.as_str()),
                command_runs::started_at.eq(at),
                command_runs::lease_until.eq(until),
            ))
            .returning(RunRow::as_returning())
            .get_result(c)
            .await
            .optional()?;
            let Some(run) = claimed else { return Ok(None) };
            let lease = acquire_lease!(c, &resource, owner, ttl)
                .ok_or_else(|| StoreError::LeaseLost { resource: resource.clone() })?;
            diesel::update(
                commands::table
                    .filter(commands::id.eq(&run.command_id))
                    .filter(commands::status.eq(CommandStatus::Processing.as_str())),
            )
            .set(commands::lease_until.eq(until))
            .execute(c)
            .await?;
            Ok(Some((run, lease)))
        })?;
        claimed
            .map(|(row, lease)| Run::try_from(row).map(|run| (run, lease)))
            .transpose()
    }

    /// Records a delivered batch under the run's lease, and renews the run's
    /// `lease_until` (the lease itself is renewed by the heartbeat).
    pub async fn record_batch(
        &self,
        run: &Run,
        lease: &Lease,
        rows: i64,
        bytes: i64,
    ) -> Result<(), StoreError> {
        let until = now() + self.run_lease();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            hold_lease!(c, lease);
            diesel::update(
                command_runs::table
                    .find(run.id.as_str())
                    .filter(command_runs::status.eq(RunStatus::Running.as_str())),
            )
            .set((
                command_runs::rows_delivered.eq(command_runs::rows_delivered + rows),
                command_runs::bytes_delivered.eq(command_runs::bytes_delivered + bytes),
                command_runs::batches_delivered.eq(command_runs::batches_delivered + 1i64),
                command_runs::lease_until.eq(until),
                command_runs::attempts.eq(0i64),
                command_runs::next_attempt_at.eq(None::<NaiveDateTime>),
                command_runs::error.eq(None::<String>),
            ))
            .execute(c)
            .await?;
            Ok(())
        })
    }

    /// The heartbeat: extends the run's lease, and the `lease_until` of the run
    /// and its command, together; [`StoreError::LeaseLost`] when the lease is gone.
    pub async fn renew_run_lease(&self, run: &Run, lease: &Lease) -> Result<Lease, StoreError> {
        let ttl = self.run_lease();
        let until = now() + ttl;
        let (run_id, command_id) = (run.id.as_str(), run.command_id.as_str());
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            hold_lease!(c, lease);
            diesel::update(
                leases::table
                    .filter(leases::resource.eq(&lease.resource))
                    .filter(leases::owner.eq(&lease.owner)),
            )
            .set(leases::expires_at.eq(until))
            .execute(c)
            .await?;
            diesel::update(command_runs::table.find(run_id))
                .set(command_runs::lease_until.eq(until))
                .execute(c)
                .await?;
            diesel::update(
                commands::table
                    .filter(commands::id.eq(command_id))
                    .filter(commands::status.eq(CommandStatus::Processing.as_str())),
            )
            .set(commands::lease_until.eq(until))
            .execute(c)
            .await?;
            Ok(Lease { expires_at: until, ..lease.clone() })
        })
    }

    /// Marks a run succeeded and, in the same transaction, moves its command on:
    /// cursor and window advance; static → READY, dynamic → FINISHED.
    pub async fn complete_run(
        &self,
        run: &Run,
        lease: &Lease,
        kind: CommandKind,
        completion: Completion<'_>,
    ) -> Result<(), StoreError> {
        let at = now();
        let status = match kind {
            CommandKind::Static => CommandStatus::Ready,
            CommandKind::Dynamic => CommandStatus::Finished,
        };
        let next_run_at = if kind == CommandKind::Static {
            completion.next_run_at
        } else {
            None
        };
        let last_value = completion.last_value.map(str::to_string);
        let last_value_type = completion.last_value_type.map(str::to_string);
        let (run_id, command_id, window_end) = (
            run.id.as_str().to_string(),
            run.command_id.as_str().to_string(),
            run.window_end,
        );
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            hold_lease!(c, lease);
            release_lease_in!(c, lease);
            diesel::update(command_runs::table.find(&run_id))
                .set((
                    command_runs::status.eq(RunStatus::Succeeded.as_str()),
                    command_runs::finished_at.eq(at),
                    command_runs::last_value_after.eq(&last_value),
                    command_runs::lease_until.eq(None::<NaiveDateTime>),
                ))
                .execute(c)
                .await?;
            let command = commands::table.find(&command_id);
            diesel::update(command)
                .set((
                    commands::status.eq(status.as_str()),
                    commands::error.eq(None::<String>),
                    commands::lease_until.eq(None::<NaiveDateTime>),
                    commands::next_run_at.eq(next_run_at),
                    commands::updated_at.eq(at),
                ))
                .execute(c)
                .await?;
            if let Some(value) = &last_value {
                diesel::update(command)
                    .set((
                        commands::last_value.eq(value),
                        commands::last_value_type.eq(&last_value_type),
                    ))
                    .execute(c)
                    .await?;
            }
            if let Some(end) = window_end {
                diesel::update(command).set(commands::window_end.eq(end)).execute(c).await?;
            }
            Ok(())
        })
    }

    /// A batch's delivery failed and another attempt is due at `next_at`: the
    /// run gives its lease up and waits as `retrying` (holding no worker) with
    /// its attempts and the last error; [`Store::requeue_due_retries`] queues it
    /// again when due, and it resumes from that batch. Its `lease_until` (and its
    /// command's) cover the wait, so it is released as interrupted only if no
    /// worker takes it up in time after that.
    pub async fn schedule_run_retry(
        &self,
        run: &Run,
        lease: &Lease,
        attempts: i64,
        next_at: NaiveDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        let until = next_at + self.run_lease();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            hold_lease!(c, lease);
            release_lease_in!(c, lease);
            diesel::update(
                command_runs::table
                    .find(run.id.as_str())
                    .filter(command_runs::status.eq(RunStatus::Running.as_str())),
            )
            .set((
                command_runs::status.eq(RunStatus::Retrying.as_str()),
                command_runs::attempts.eq(attempts),
                command_runs::next_attempt_at.eq(next_at),
                command_runs::error.eq(error),
                command_runs::lease_until.eq(until),
            ))
            .execute(c)
            .await?;
            diesel::update(
                commands::table
                    .find(run.command_id.as_str())
                    .filter(commands::status.eq(CommandStatus::Processing.as_str())),
            )
            .set(commands::lease_until.eq(until))
            .execute(c)
            .await?;
            Ok(())
        })
    }

    /// Queues again, at most `limit`, the retrying runs whose next attempt is
    /// due; returns their ids for the caller to hand to workers.
    pub async fn requeue_due_retries(&self, limit: i64) -> Result<Vec<RunId>, StoreError> {
        let at = now();
        let until = at + self.run_lease();
        let mut conn = self.write().await?;
        let ids: Vec<String> = in_transaction!(&mut conn, c => {
            let due: Vec<String> = command_runs::table
                .filter(command_runs::status.eq(RunStatus::Retrying.as_str()))
                .filter(command_runs::next_attempt_at.le(at))
                .order(command_runs::next_attempt_at.asc())
                .limit(limit)
                .select(command_runs::id)
                .load(c)
                .await?;
            Ok(diesel::update(
                command_runs::table
                    .filter(command_runs::id.eq_any(&due))
                    .filter(command_runs::status.eq(RunStatus::Retrying.as_str())),
            )
            .set((
                command_runs::status.eq(RunStatus::Queued.as_str()),
                command_runs::lease_until.eq(until),
            ))
            .returning(command_runs::id)
            .get_results(c)
            .await?)
        })?;
        Ok(ids.into_iter().map(RunId::from_stored).collect())
    }

    /// A run that could not be handed to a worker (the job queue refused it):
    /// the run fails, and its command goes to ERROR due again at `retry_at`, so
    /// the scheduler tries again rather than the command waiting for ever.
    pub async fn unqueue_run(
        &self,
        run: &Run,
        error: &str,
        retry_at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let released = diesel::update(
                command_runs::table
                    .find(run.id.as_str())
                    .filter(command_runs::status.eq(RunStatus::Queued.as_str())),
            )
            .set((
                command_runs::status.eq(RunStatus::Failed.as_str()),
                command_runs::finished_at.eq(at),
                command_runs::error.eq(error),
                command_runs::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(c)
            .await?;
            if released == 1 {
                diesel::update(
                    commands::table
                        .find(run.command_id.as_str())
                        .filter(commands::status.eq(CommandStatus::Processing.as_str())),
                )
                .set((
                    commands::status.eq(CommandStatus::Error.as_str()),
                    commands::error.eq(error),
                    commands::lease_until.eq(None::<NaiveDateTime>),
                    commands::next_run_at.eq(retry_at),
                    commands::updated_at.eq(at),
                ))
                .execute(c)
                .await?;
            }
            Ok(())
        })
    }

    /// Marks a run failed and its command ERROR with the message; the cursor stays.
    pub async fn fail_run(
        &self,
        run: &Run,
        lease: &Lease,
        error: &str,
        next_run_at: Option<NaiveDateTime>,
    ) -> Result<(), StoreError> {
        let at = now();
        let (run_id, command_id, error) = (
            run.id.as_str().to_string(),
            run.command_id.as_str().to_string(),
            error.to_string(),
        );
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            hold_lease!(c, lease);
            release_lease_in!(c, lease);
            diesel::update(command_runs::table.find(&run_id))
                .set((
                    command_runs::status.eq(RunStatus::Failed.as_str()),
                    command_runs::finished_at.eq(at),
                    command_runs::error.eq(&error),
                    command_runs::lease_until.eq(None::<NaiveDateTime>),
                ))
                .execute(c)
                .await?;
            diesel::update(commands::table.find(&command_id))
                .set((
                    commands::status.eq(CommandStatus::Error.as_str()),
                    commands::error.eq(&error),
                    commands::lease_until.eq(None::<NaiveDateTime>),
                    commands::next_run_at.eq(next_run_at),
                    commands::updated_at.eq(at),
                ))
                .execute(c)
                .await?;
            Ok(())
        })
    }
}
