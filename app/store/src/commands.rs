//! Commands (pull syncs): SQL on a connector whose rows go to a callback URL or an
//! inbox. Static commands run on a schedule until paused or deleted; dynamic ones
//! run once with parameters and end FINISHED.
//!
//! Status machine: READY → PROCESSING → READY (static) | FINISHED (dynamic), or
//! ERROR with a message; PAUSED while paused. A PROCESSING command whose lease ran
//! out (its worker died) goes back to READY.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{CommandId, ConnectorId, InboxId, RunId, TenantId};
use crate::schema::{command_runs, commands, leases};
use crate::{Store, StoreError, in_transaction, insert_audit, now, with_conn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    Static,
    Dynamic,
}

impl CommandKind {
    pub const ALL: [CommandKind; 2] = [Self::Static, Self::Dynamic];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "static" => Some(Self::Static),
            "dynamic" => Some(Self::Dynamic),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CommandStatus {
    Ready,
    Processing,
    Finished,
    Error,
    Paused,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 5] = [
        Self::Ready,
        Self::Processing,
        Self::Finished,
        Self::Error,
        Self::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Processing => "PROCESSING",
            Self::Finished => "FINISHED",
            Self::Error => "ERROR",
            Self::Paused => "PAUSED",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "READY" => Some(Self::Ready),
            "PROCESSING" => Some(Self::Processing),
            "FINISHED" => Some(Self::Finished),
            "ERROR" => Some(Self::Error),
            "PAUSED" => Some(Self::Paused),
            _ => None,
        }
    }
}

/// Where a command's rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    Url(String),
    Inbox(InboxId),
}

/// A command's configuration, validated by the caller.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    pub connector_id: ConnectorId,
    pub name: String,
    pub kind: CommandKind,
    pub sql: String,
    pub callback: Callback,
    pub last_field: Option<String>,
    /// Cron with seconds (6 or 7 fields), for static commands.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in.
    pub timezone: String,
    /// JSON object of parameters, for dynamic commands.
    pub params: Option<String>,
    pub batch_size: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = commands)]
struct CommandRow {
    id: String,
    tenant_id: String,
    connector_id: String,
    name: String,
    kind: String,
    sql_text: String,
    callback_url: Option<String>,
    callback_inbox_id: Option<String>,
    last_field: Option<String>,
    last_value: Option<String>,
    last_value_type: Option<String>,
    schedule: Option<String>,
    timezone: String,
    params: Option<String>,
    batch_size: i64,
    status: String,
    error: Option<String>,
    next_run_at: Option<NaiveDateTime>,
    window_end: Option<NaiveDateTime>,
    lease_until: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub id: CommandId,
    pub tenant_id: TenantId,
    pub settings: CommandSettings,
    pub last_value: Option<String>,
    /// How the Last Field's column ordered when a run stored `last_value`
    /// (`integer`, `decimal`, `instant`, `timestamp`, `date`, `text`); none for
    /// a value saved by hand, until the next run.
    pub last_value_type: Option<String>,
    pub status: CommandStatus,
    pub error: Option<String>,
    pub next_run_at: Option<NaiveDateTime>,
    /// End of the last successful time window.
    pub window_end: Option<NaiveDateTime>,
    pub lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl TryFrom<CommandRow> for Command {
    type Error = StoreError;

    fn try_from(r: CommandRow) -> Result<Self, StoreError> {
        let corrupt = |what, value: &str| StoreError::Corrupt {
            what,
            value: value.to_string(),
        };
        let kind = CommandKind::parse(&r.kind).ok_or_else(|| corrupt("command kind", &r.kind))?;
        let status =
            CommandStatus::parse(&r.status).ok_or_else(|| corrupt("command status", &r.status))?;
        let callback = match (r.callback_inbox_id, r.callback_url) {
            (Some(inbox), _) => Callback::Inbox(InboxId::from_stored(inbox)),
            (None, url) => Callback::Url(url.unwrap_or_default()),
        };
        Ok(Self {
            id: CommandId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            settings: CommandSettings {
                connector_id: ConnectorId::from_stored(r.connector_id),
                name: r.name,
                kind,
                sql: r.sql_text,
                callback,
                last_field: r.last_field,
                schedule: r.schedule,
                timezone: r.timezone,
                params: r.params,
                batch_size: r.batch_size,
            },
            last_value: r.last_value,
            last_value_type: r.last_value_type,
            status,
            error: r.error,
            next_run_at: r.next_run_at,
            window_end: r.window_end,
            lease_until: r.lease_until,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn callback_columns(callback: &Callback) -> (Option<&str>, Option<&str>) {
    match callback {
        Callback::Url(url) => (Some(url.as_str()), None),
        Callback::Inbox(inbox) => (None, Some(inbox.as_str())),
    }
}

/// How long a claimed command or run may go without a sign of life, by default
/// (see [`Store::with_run_lease`]).
pub const DEFAULT_RUN_LEASE: Duration = Duration::seconds(120);

/// The columns that hand a command whose run ended abnormally back to the queue,
/// due at once (its cursor has not moved).
type ReadyAgain = (
    diesel::dsl::Eq<commands::status, &'static str>,
    diesel::dsl::Eq<commands::lease_until, Option<NaiveDateTime>>,
    diesel::dsl::Eq<commands::next_run_at, NaiveDateTime>,
    diesel::dsl::Eq<commands::updated_at, NaiveDateTime>,
);

/// Run statuses that still hold their command (PROCESSING).
const LIVE_RUN: [&str; 3] = ["queued", "running", "retrying"];

/// Statuses a run may start from.
const RUNNABLE: [&str; 2] = ["READY", "ERROR"];

/// Whether a run started by hand could start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Running, paused or finished: it cannot start now.
    NotRunnable(CommandStatus),
    /// The tenant already has as many runs in flight as the operator allows.
    TenantBusy {
        max_runs_in_flight: i64,
    },
}

/// A command that may start: READY or ERROR, and its tenant has fewer than
/// `$max` commands PROCESSING (checked in the claiming statement itself).
macro_rules! claimable {
    ($max:expr) => {{
        let others = diesel::alias!(commands as others);
        commands::status.eq_any(RUNNABLE).and(
            others
                .filter(others.field(commands::tenant_id).eq(commands::tenant_id))
                .filter(
                    others
                        .field(commands::status)
                        .eq(CommandStatus::Processing.as_str()),
                )
                .count()
                .single_value()
                .lt($max),
        )
    }};
}

type Processing = (
    diesel::dsl::Eq<commands::status, &'static str>,
    diesel::dsl::Eq<commands::lease_until, NaiveDateTime>,
    diesel::dsl::Eq<commands::updated_at, NaiveDateTime>,
);

fn processing_until(at: NaiveDateTime, lease: Duration) -> Processing {
    (
        commands::status.eq(CommandStatus::Processing.as_str()),
        commands::lease_until.eq(at + lease),
        commands::updated_at.eq(at),
    )
}

fn ready_again_at(at: NaiveDateTime) -> ReadyAgain {
    (
        commands::status.eq(CommandStatus::Ready.as_str()),
        commands::lease_until.eq(None),
        commands::next_run_at.eq(at),
        commands::updated_at.eq(at),
    )
}

impl Store {
    /// Creates a command in READY (a dynamic one is due at once).
    pub async fn create_command(
        &self,
        tenant: &TenantId,
        settings: &CommandSettings,
        last_value: Option<&str>,
        next_run_at: Option<NaiveDateTime>,
    ) -> Result<Command, StoreError> {
        self.create_command_audited(tenant, settings, last_value, next_run_at, None)
            .await
    }

    /// [`Store::create_command`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn create_command_audited(
        &self,
        tenant: &TenantId,
        settings: &CommandSettings,
        last_value: Option<&str>,
        next_run_at: Option<NaiveDateTime>,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<Command, StoreError> {
        let id = CommandId::generate();
        let (url, inbox) = callback_columns(&settings.callback);
        let at = now();
        let mut conn = self.write().await?;
        let row: CommandRow = in_transaction!(&mut conn, c => {
            let row = diesel::insert_into(commands::table)
            .values((
                commands::id.eq(id.as_str()),
                commands::tenant_id.eq(tenant.as_str()),
                commands::connector_id.eq(settings.connector_id.as_str()),
                commands::name.eq(&settings.name),
                commands::kind.eq(settings.kind.as_str()),
                commands::sql_text.eq(&settings.sql),
                commands::callback_url.eq(url),
                commands::callback_inbox_id.eq(inbox),
                commands::last_field.eq(&settings.last_field),
                commands::last_value.eq(last_value),
                commands::schedule.eq(&settings.schedule),
                commands::timezone.eq(&settings.timezone),
                commands::params.eq(&settings.params),
                commands::batch_size.eq(settings.batch_size),
                commands::status.eq(CommandStatus::Ready.as_str()),
                commands::next_run_at.eq(next_run_at),
                commands::created_at.eq(at),
                commands::updated_at.eq(at),
            ))
            .returning(CommandRow::as_returning())
            .get_result(c)
            .await?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(row)
        })?;
        row.try_into()
    }

    pub async fn command(&self, tenant: &TenantId, id: &CommandId) -> Result<Command, StoreError> {
        let mut conn = self.read().await?;
        let row: CommandRow = with_conn!(&mut conn, c => commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::id.eq(id.as_str()))
            .select(CommandRow::as_select())
            .first(c)
            .await)
        .or_not_found("command")?;
        row.try_into()
    }

    /// How many of the tenant's commands are not FINISHED (the operator's limit
    /// counts these).
    pub async fn count_unfinished_commands(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::status.ne(CommandStatus::Finished.as_str()))
            .count()
            .get_result::<i64>(c)
            .await)?)
    }

    /// One page of the tenant's commands (or one connector's), newest first: those
    /// created before `before` (ids grow with time), at most `limit`.
    pub async fn commands_page(
        &self,
        tenant: &TenantId,
        connector: Option<&ConnectorId>,
        before: Option<&CommandId>,
        limit: i64,
    ) -> Result<Vec<Command>, StoreError> {
        // Every id sorts below "~": no cursor means from the newest.
        let before = before.map_or("~", CommandId::as_str);
        let mine = commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::id.lt(before))
            .order(commands::id.desc())
            .limit(limit);
        let mut conn = self.read().await?;
        let rows: Vec<CommandRow> = with_conn!(&mut conn, c => match connector {
            Some(connector) => mine
                .filter(commands::connector_id.eq(connector.as_str()))
                .select(CommandRow::as_select())
                .load(c)
                .await,
            None => mine.select(CommandRow::as_select()).load(c).await,
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// One page of a connector's queue, newest first: its commands that are not
    /// FINISHED, or (`archived`) the finished dynamic ones; those created before
    /// `before`, at most `limit`.
    pub async fn connector_commands(
        &self,
        tenant: &TenantId,
        connector: &ConnectorId,
        archived: bool,
        before: Option<&CommandId>,
        limit: i64,
    ) -> Result<Vec<Command>, StoreError> {
        let before = before.map_or("~", CommandId::as_str);
        let finished = CommandStatus::Finished.as_str();
        let mine = commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::connector_id.eq(connector.as_str()))
            .filter(commands::id.lt(before))
            .order(commands::id.desc())
            .limit(limit);
        let mut conn = self.read().await?;
        let rows: Vec<CommandRow> = with_conn!(&mut conn, c => if archived {
            mine.filter(commands::status.eq(finished)).select(CommandRow::as_select()).load(c).await
        } else {
            mine.filter(commands::status.ne(finished)).select(CommandRow::as_select()).load(c).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// How many of a connector's commands are archived (finished dynamic ones).
    pub async fn count_archived_commands(
        &self,
        tenant: &TenantId,
        connector: &ConnectorId,
    ) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::connector_id.eq(connector.as_str()))
            .filter(commands::status.eq(CommandStatus::Finished.as_str()))
            .count()
            .get_result::<i64>(c)
            .await)?)
    }

    /// The tenant's commands in ERROR, most recently failed first, at most
    /// `limit`, and how many there are in all (for the dashboard).
    pub async fn failing_commands(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<(Vec<Command>, i64), StoreError> {
        let failing = commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::status.eq(CommandStatus::Error.as_str()));
        let mut conn = self.read().await?;
        let (rows, count): (Vec<CommandRow>, i64) = with_conn!(&mut conn, c => {
            let rows = failing
                .order(commands::updated_at.desc())
                .limit(limit)
                .select(CommandRow::as_select())
                .load(c)
                .await?;
            let count = failing.count().get_result(c).await?;
            Ok::<_, diesel::result::Error>((rows, count))
        })?;
        Ok((
            rows.into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            count,
        ))
    }

    /// The names of `ids` among the tenant's commands, in one query.
    pub async fn command_names(
        &self,
        tenant: &TenantId,
        ids: &[CommandId],
    ) -> Result<std::collections::HashMap<CommandId, String>, StoreError> {
        let ids: Vec<&str> = ids.iter().map(CommandId::as_str).collect();
        let mut conn = self.read().await?;
        let rows: Vec<(String, String)> = with_conn!(&mut conn, c => commands::table
            .filter(commands::tenant_id.eq(tenant.as_str()))
            .filter(commands::id.eq_any(&ids))
            .select((commands::id, commands::name))
            .load(c)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| (CommandId::from_stored(id), name))
            .collect())
    }

    pub async fn update_command(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        settings: &CommandSettings,
        next_run_at: Option<NaiveDateTime>,
    ) -> Result<Command, StoreError> {
        self.update_command_audited(tenant, id, settings, next_run_at, None)
            .await
    }

    /// [`Store::update_command`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn update_command_audited(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        settings: &CommandSettings,
        next_run_at: Option<NaiveDateTime>,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<Command, StoreError> {
        let (url, inbox) = callback_columns(&settings.callback);
        let mut conn = self.write().await?;
        let row: CommandRow = in_transaction!(&mut conn, c => {
            // Another Last Field: the stored cursor's type was another column's.
            let field: Option<Option<String>> = commands::table
                .filter(commands::tenant_id.eq(tenant.as_str()))
                .filter(commands::id.eq(id.as_str()))
                .select(commands::last_field)
                .first(c)
                .await
                .optional()?;
            if field.is_some_and(|field| field != settings.last_field) {
                diesel::update(commands::table.filter(commands::id.eq(id.as_str())))
                    .set(commands::last_value_type.eq(None::<String>))
                    .execute(c)
                    .await?;
            }
            let row = diesel::update(
                commands::table.filter(commands::tenant_id.eq(tenant.as_str())).filter(commands::id.eq(id.as_str())),
            )
            .set((
                commands::name.eq(&settings.name),
                commands::sql_text.eq(&settings.sql),
                commands::callback_url.eq(url),
                commands::callback_inbox_id.eq(inbox),
                commands::last_field.eq(&settings.last_field),
                commands::schedule.eq(&settings.schedule),
                commands::timezone.eq(&settings.timezone),
                commands::batch_size.eq(settings.batch_size),
                commands::next_run_at.eq(next_run_at),
                commands::updated_at.eq(now()),
            ))
            .returning(CommandRow::as_returning())
            .get_result(c)
            .await
            .or_not_found("command")?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(row)
        })?;
        row.try_into()
    }

    /// Edits the stored cursor by hand. Its type is forgotten: the next run
    /// stores the type of the column it reads.
    pub async fn set_last_value(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(
                commands::table.filter(commands::tenant_id.eq(tenant.as_str())).filter(commands::id.eq(id.as_str())),
            )
            .set((
                commands::last_value.eq(value),
                commands::last_value_type.eq(None::<String>),
                commands::updated_at.eq(now()),
            ))
            .execute(c)
            .await)?;
        if changed == 0 {
            return Err(StoreError::not_found("command"));
        }
        Ok(())
    }

    /// Pauses a static command (a running run finishes first).
    pub async fn pause_command(
        &self,
        tenant: &TenantId,
        id: &CommandId,
    ) -> Result<bool, StoreError> {
        self.set_status_from(
            tenant,
            id,
            &[CommandStatus::Ready, CommandStatus::Error],
            CommandStatus::Paused,
            None,
        )
        .await
    }

    /// Resumes a paused command; it next runs at `next_run_at`.
    pub async fn resume_command(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        next_run_at: Option<NaiveDateTime>,
    ) -> Result<bool, StoreError> {
        self.set_status_from(
            tenant,
            id,
            &[CommandStatus::Paused],
            CommandStatus::Ready,
            next_run_at,
        )
        .await
    }

    async fn set_status_from(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        from: &[CommandStatus],
        to: CommandStatus,
        next_run_at: Option<NaiveDateTime>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut conn = self.write().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(
                commands::table
                    .filter(commands::tenant_id.eq(tenant.as_str()))
                    .filter(commands::id.eq(id.as_str()))
                    .filter(commands::status.eq_any(&from)),
            )
            .set((commands::status.eq(to.as_str()), commands::next_run_at.eq(next_run_at), commands::updated_at.eq(now())))
            .execute(c)
            .await)?;
        Ok(changed == 1)
    }

    pub async fn delete_command(
        &self,
        tenant: &TenantId,
        id: &CommandId,
    ) -> Result<(), StoreError> {
        self.delete_command_audited(tenant, id, None).await
    }

    /// [`Store::delete_command`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn delete_command_audited(
        &self,
        tenant: &TenantId,
        id: &CommandId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            // Runs first: the lock order every run update uses (see the crate docs).
            diesel::delete(
                command_runs::table
                    .filter(command_runs::tenant_id.eq(tenant.as_str()))
                    .filter(command_runs::command_id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            let removed = diesel::delete(
                commands::table.filter(commands::tenant_id.eq(tenant.as_str())).filter(commands::id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            if removed == 0 {
                return Err(StoreError::not_found("command"));
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(())
        })
    }

    /// Claims up to `limit` due commands for this process: READY or ERROR ones whose
    /// time has come become PROCESSING under a lease, oldest due first, as long as
    /// their tenant has fewer than [`TenantQuotas::max_runs_in_flight`] commands
    /// PROCESSING (the others wait, due, for the next tick). Two schedulers can
    /// never claim the same command.
    pub async fn claim_due_commands(&self, limit: i64) -> Result<Vec<Command>, StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        let due: Vec<String> = with_conn!(&mut conn, c => commands::table
            .filter(commands::status.eq_any(RUNNABLE))
            .filter(commands::next_run_at.le(at))
            .order(commands::next_run_at.asc())
            .limit(limit)
            .select(commands::id)
            .load(c)
            .await)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // One statement per command, so each sees the claims before it: the
        // tenant's count of runs in flight is checked in the claiming UPDATE.
        let (lease, max) = (self.run_lease(), self.quotas.max_runs_in_flight);
        let rows: Vec<CommandRow> = in_transaction!(&mut conn, c => {
            let mut claimed = Vec::new();
            for id in &due {
                let row: Option<CommandRow> = diesel::update(commands::table.filter(commands::id.eq(id)))
                    .filter(claimable!(max))
                    .set(processing_until(at, lease))
                    .returning(CommandRow::as_returning())
                    .get_result(c)
                    .await
                    .optional()?;
                claimed.extend(row);
            }
            Ok(claimed)
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Claims one command for a run started by hand (run now, API, direct URL).
    pub async fn claim_command_now(
        &self,
        tenant: &TenantId,
        id: &CommandId,
    ) -> Result<Claim, StoreError> {
        let at = now();
        let (lease, max) = (self.run_lease(), self.quotas.max_runs_in_flight);
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let changed = diesel::update(
                    commands::table
                        .filter(commands::tenant_id.eq(tenant.as_str()))
                        .filter(commands::id.eq(id.as_str())),
                )
                .filter(claimable!(max))
                .set(processing_until(at, lease))
                .execute(c)
                .await?;
            if changed == 1 {
                return Ok(Claim::Claimed);
            }
            let status: Option<String> = commands::table
                .filter(commands::tenant_id.eq(tenant.as_str()))
                .filter(commands::id.eq(id.as_str()))
                .select(commands::status)
                .first(c)
                .await
                .optional()?;
            let Some(raw) = status else {
                return Err(StoreError::not_found("command"));
            };
            match CommandStatus::parse(&raw) {
                Some(status) if RUNNABLE.contains(&status.as_str()) => {
                    Ok(Claim::TenantBusy { max_runs_in_flight: max })
                }
                Some(status) => Ok(Claim::NotRunnable(status)),
                None => Err(StoreError::Corrupt { what: "command status", value: raw }),
            }
        })
    }

    /// Leaves a command that could not start now (its tenant had no room for
    /// another run) READY and due, so the scheduler starts it when there is room.
    pub async fn queue_when_room(
        &self,
        tenant: &TenantId,
        id: &CommandId,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::update(
                commands::table
                    .filter(commands::tenant_id.eq(tenant.as_str()))
                    .filter(commands::id.eq(id.as_str()))
                    .filter(commands::status.eq_any(RUNNABLE)),
            )
            .set((commands::next_run_at.eq(at), commands::updated_at.eq(at)))
            .execute(c)
            .await)?;
        Ok(())
    }

    /// Returns commands and runs whose lease ran out (their worker died) to the
    /// queue: the command to READY, due now; the run to failed. Returns how many.
    pub async fn release_expired_leases(&self) -> Result<usize, StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        let runs = in_transaction!(&mut conn, c => {
            let expired: Vec<String> = command_runs::table
                .filter(command_runs::status.eq_any(LIVE_RUN))
                .filter(command_runs::lease_until.lt(at))
                .select(command_runs::id)
                .load(c)
                .await?;
            // Leases first (the order every guarded write takes them in): a worker
            // that stalled past its lease can no longer write anything.
            let resources: Vec<String> = expired
                .iter()
                .map(|id| format!("run:{id}"))
                .collect();
            diesel::delete(leases::table.filter(leases::resource.eq_any(&resources)))
                .execute(c)
                .await?;
            Ok(diesel::update(
                command_runs::table
                    .filter(command_runs::id.eq_any(&expired))
                    .filter(command_runs::status.eq_any(LIVE_RUN)),
            )
            .set((
                command_runs::status.eq("failed"),
                command_runs::error.eq("interrupted: the worker running it stopped; the command will run again"),
                command_runs::finished_at.eq(at),
            ))
            .execute(c)
            .await?)
        })?;
        // A command whose run is still alive (its lease not yet expired) waits: it
        // is released only after that run, so it never runs twice at once.
        let live_run = command_runs::table
            .filter(command_runs::command_id.eq(commands::id))
            .filter(command_runs::status.eq_any(LIVE_RUN))
            .filter(command_runs::lease_until.ge(at));
        let commands = with_conn!(&mut conn, c => diesel::update(
                commands::table
                    .filter(commands::status.eq(CommandStatus::Processing.as_str()))
                    .filter(commands::lease_until.lt(at))
                    .filter(diesel::dsl::not(diesel::dsl::exists(live_run))),
            )
            .set(ready_again_at(at))
            .execute(c)
            .await)?;
        Ok(runs + commands)
    }

    /// Hands runs this process was still running back at shutdown: each run fails
    /// as interrupted and its command is due again at once (the cursor has not
    /// moved). Returns how many runs were released.
    pub async fn release_interrupted_runs(&self, runs: &[RunId]) -> Result<usize, StoreError> {
        let at = now();
        let ids: Vec<&str> = runs.iter().map(RunId::as_str).collect();
        let mut conn = self.write().await?;
        let resources: Vec<String> = ids.iter().map(|id| format!("run:{id}")).collect();
        in_transaction!(&mut conn, c => {
            diesel::delete(leases::table.filter(leases::resource.eq_any(&resources)))
                .execute(c)
                .await?;
            let released: Vec<String> = diesel::update(
                command_runs::table
                    .filter(command_runs::id.eq_any(&ids))
                    .filter(command_runs::status.eq_any(["queued", "running"])),
            )
            .set((
                command_runs::status.eq("failed"),
                command_runs::error.eq("interrupted: Sluice was stopped during the run; the command will run again"),
                command_runs::finished_at.eq(at),
                command_runs::lease_until.eq(None::<NaiveDateTime>),
            ))
            .returning(command_runs::command_id)
            .get_results(c)
            .await?;
            diesel::update(
                commands::table
                    .filter(commands::id.eq_any(&released))
                    .filter(commands::status.eq(CommandStatus::Processing.as_str())),
            )
            .set(ready_again_at(at))
            .execute(c)
            .await?;
            Ok(released.len())
        })
    }
}
