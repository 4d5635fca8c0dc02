//! Commands: the typed input both edges build ([`CommandDraft`] →
//! [`ValidCommand`]), and every change — create (a dynamic command starts at
//! once), update, delete, run now, pause, resume, the cursor, direct URLs — with
//! its audit entry.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sluice_connect::DbKind;
use sluice_deliver::AddressGuard;
use sluice_jobs::pull::{Schedule, Window, next_scheduled_run, start_run};
use sluice_sqltpl::referenced_placeholders_in;
use sluice_store::commands::{
    Callback, Claim, Command, CommandKind, CommandSettings, CommandStatus,
};
use sluice_store::connectors::Connector;
use sluice_store::domain::Invalid;
use sluice_store::ids::{CommandId, InboxId, TenantId};
use sluice_store::runs::Run;

use crate::error::AppError;
use crate::input::{blank_to_none, keep};
use crate::service::{Actor, found_or};
use crate::state::AppState;

pub const DEFAULT_BATCH_SIZE: i64 = 1000;
pub const MAX_BATCH_SIZE: i64 = 100_000;

/// Where a command's rows should go, as chosen by the client.
#[derive(Debug, Clone)]
pub enum CallbackChoice {
    Url(String),
    /// An inbox id, still to be found among the tenant's inboxes.
    Inbox(String),
}

/// A command as a client sent it: numbers and params already typed; the rest is
/// checked together by [`CommandDraft::validate`] so a form can show every
/// mistake at once.
#[derive(Debug, Clone)]
pub struct CommandDraft {
    pub name: String,
    pub sql: String,
    pub callback: CallbackChoice,
    pub last_field: String,
    pub last_value: String,
    pub schedule: String,
    pub timezone: String,
    /// `None`: the default.
    pub batch_size: Option<i64>,
    /// For dynamic commands: the values of `@object.params.NAME@`.
    pub params: Option<Map<String, Value>>,
}

/// A command that passed validation: what the service functions take.
pub struct ValidCommand {
    pub settings: CommandSettings,
    pub last_value: Option<String>,
    pub schedule: Option<Schedule>,
}

/// Validation's answer: the valid command, or what to fix. A store that cannot
/// answer is neither: it is the outer error (503), never blamed on a field.
pub type Checked<T> = Result<T, Vec<Invalid>>;

impl CommandDraft {
    /// Validates against the connector (its SQL dialect) and the tenant's inboxes.
    pub async fn validate(
        &self,
        state: &AppState,
        connector: &Connector,
        kind: CommandKind,
    ) -> Result<Checked<ValidCommand>, AppError> {
        let mut errors = Vec::new();
        let name = blank_to_none(&self.name).unwrap_or_else(|| "command".into());
        if name.chars().count() > 100 {
            errors.push(Invalid::new("name", "must be at most 100 characters"));
        }
        let dialect = DbKind::parse(&connector.settings.kind)
            .map(DbKind::dialect)
            .unwrap_or(sluice_sqltpl::Dialect::Postgres);
        let sql = self.sql.trim().to_string();
        if sql.is_empty() {
            errors.push(Invalid::new("sql", "is required"));
        } else if sql.len() > 100_000 {
            errors.push(Invalid::new("sql", "must be at most 100 000 characters"));
        } else if let Err(e) = referenced_placeholders_in(&sql, dialect) {
            errors.push(Invalid::new("sql", e.to_string()));
        }
        let callback = keep(&mut errors, self.callback(state, connector).await?);
        let timezone = blank_to_none(&self.timezone).unwrap_or_else(|| "UTC".into());
        let schedule = match (kind, blank_to_none(&self.schedule)) {
            (CommandKind::Static, Some(expression)) => keep(
                &mut errors,
                Schedule::parse(&expression, &timezone)
                    .map_err(|e| Invalid::new(e.field(), e.to_string()))
                    .and_then(|s| often_enough(s, state.tenant_limits.min_schedule_interval)),
            ),
            _ => None,
        };
        let batch_size = self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
            errors.push(Invalid::new(
                "batch_size",
                format!("must be a whole number from 1 to {MAX_BATCH_SIZE}"),
            ));
        }
        let last_field = blank_to_none(&self.last_field);
        if last_field.as_ref().is_some_and(|f| f.len() > 200) {
            errors.push(Invalid::new("last_field", "must be at most 200 characters"));
        }
        let Some(callback) = callback else {
            return Ok(Err(errors));
        };
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        Ok(Ok(ValidCommand {
            settings: CommandSettings {
                connector_id: connector.id.clone(),
                name,
                kind,
                sql,
                callback,
                last_field,
                timezone: if schedule.is_some() {
                    timezone
                } else {
                    "UTC".into()
                },
                schedule: schedule.as_ref().map(|s| s.expression.clone()),
                params: self
                    .params
                    .as_ref()
                    .map(|p| Value::Object(p.clone()).to_string()),
                batch_size,
            },
            last_value: blank_to_none(&self.last_value),
            schedule,
        }))
    }

    /// The callback, when it is usable; a store error is the caller's to answer.
    async fn callback(
        &self,
        state: &AppState,
        connector: &Connector,
    ) -> Result<Result<Callback, Invalid>, AppError> {
        match &self.callback {
            CallbackChoice::Inbox(raw) => {
                let not_ours = || Invalid::new("callback_inbox_id", "choose one of your inboxes");
                let Some(id) = InboxId::parse(raw.trim()) else {
                    return Ok(Err(not_ours()));
                };
                let found = found_or(state.store.inbox(&connector.tenant_id, &id).await, not_ours)?;
                Ok(found.map(|_| Callback::Inbox(id)))
            }
            CallbackChoice::Url(raw) => Ok(callback_url(state, raw)),
        }
    }
}

fn callback_url(state: &AppState, raw: &str) -> Result<Callback, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Invalid::new(
            "callback_url",
            "is required (or choose an inbox)",
        ));
    }
    let guard = AddressGuard::new(state.allow_private_targets);
    let url = guard
        .check_url(raw)
        .map_err(|e| Invalid::new("callback_url", e.to_string()))?;
    // A literal address can be judged now; names are checked after resolution on every delivery.
    if let Some(host) = url.host_str()
        && let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>()
        && !guard.ip_allowed(ip)
    {
        return Err(Invalid::new(
            "callback_url",
            format!(
                "{ip} is a private or reserved address and outbound calls to it are not allowed"
            ),
        ));
    }
    Ok(Callback::Url(url.to_string()))
}

/// Refuses a schedule that fires more often than the operator allows.
fn often_enough(schedule: Schedule, shortest: chrono::Duration) -> Result<Schedule, Invalid> {
    match schedule.shortest_interval(Utc::now()) {
        Some(gap) if gap < shortest => Err(Invalid::new(
            "schedule",
            format!(
                "runs every {} s; this instance allows at most one run every {} s",
                gap.num_seconds(),
                shortest.num_seconds()
            ),
        )),
        _ => Ok(schedule),
    }
}

/// When a static command first runs: its next schedule time, or never (on demand).
fn first_run_at(valid: &ValidCommand) -> Option<chrono::NaiveDateTime> {
    valid
        .schedule
        .as_ref()
        .and_then(|s| s.next_after(Utc::now()))
}

/// Parses an optional on-demand window (`startTime`/`endTime`, ISO 8601).
pub fn parse_window(
    command: &Command,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<Option<Window>, Invalid> {
    let parse = |field: &'static str, raw: &str| -> Result<chrono::NaiveDateTime, Invalid> {
        let raw = raw.trim();
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc).naive_utc())
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M"))
            .map_err(|_| {
                Invalid::new(
                    field,
                    format!("{raw:?} is not an ISO 8601 time such as 2026-01-31T00:00:00Z"),
                )
            })
    };
    let start = start.map(str::trim).filter(|s| !s.is_empty());
    let end = end.map(str::trim).filter(|s| !s.is_empty());
    if start.is_none() && end.is_none() {
        return Ok(None);
    }
    let default = Window::following(command, Utc::now());
    let window = Window {
        start: start
            .map(|s| parse("startTime", s))
            .transpose()?
            .unwrap_or(default.start),
        end: end
            .map(|s| parse("endTime", s))
            .transpose()?
            .unwrap_or(default.end),
    };
    if window.end < window.start {
        return Err(Invalid::new("endTime", "must not be before startTime"));
    }
    Ok(Some(window))
}

/// Refuses a new command when the tenant already has as many unfinished ones as
/// the operator allows.
pub async fn room_for_a_command(state: &AppState, tenant: &TenantId) -> Result<(), AppError> {
    let active = state.store.count_unfinished_commands(tenant).await?;
    if active >= state.tenant_limits.max_commands {
        return Err(AppError::Conflict {
            field: "limit",
            message: format!(
                "this organisation has {active} commands that are not finished, the most this \
                 instance allows; delete some first"
            ),
        });
    }
    Ok(())
}

/// A command of `tenant`; an id that does not parse is as unknown as another
/// tenant's.
pub async fn find(state: &AppState, tenant: &TenantId, raw_id: &str) -> Result<Command, AppError> {
    let id = CommandId::parse(raw_id).ok_or(AppError::NotFound)?;
    Ok(state.store.command(tenant, &id).await?)
}

/// A new command, and the run a dynamic one started (none when it waits for room).
pub struct Created {
    pub command: Command,
    pub run: Option<Run>,
}

/// Creates a command: a static one is scheduled, a dynamic one starts at once
/// (or queues when the tenant has no room for another run in flight).
pub async fn create(
    state: &AppState,
    actor: &Actor,
    valid: &ValidCommand,
    trigger: &str,
) -> Result<Created, AppError> {
    let kind = valid.settings.kind;
    let next = match kind {
        CommandKind::Static => first_run_at(valid),
        CommandKind::Dynamic => None,
    };
    room_for_a_command(state, &actor.tenant).await?;
    let event = actor.event("command.create", &valid.settings.name, "");
    let command = state
        .store
        .create_command_audited(
            &actor.tenant,
            &valid.settings,
            valid.last_value.as_deref(),
            next,
            Some(&event),
        )
        .await?;
    match kind {
        CommandKind::Static => Ok(Created { command, run: None }),
        CommandKind::Dynamic => {
            let run = run_dynamic(state, &command, trigger).await?;
            let command = state.store.command(&actor.tenant, &command.id).await?;
            Ok(Created { command, run })
        }
    }
}

/// Replaces a command's settings. A paused command stays paused: its next run is
/// set when it resumes.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    command: &Command,
    valid: &ValidCommand,
) -> Result<Command, AppError> {
    let next = if command.status == CommandStatus::Paused {
        None
    } else {
        first_run_at(valid)
    };
    let event = actor.event("command.update", &valid.settings.name, "");
    Ok(state
        .store
        .update_command_audited(
            &actor.tenant,
            &command.id,
            &valid.settings,
            next,
            Some(&event),
        )
        .await?)
}

/// Deletes a command and its runs.
pub async fn delete(state: &AppState, actor: &Actor, command: &Command) -> Result<(), AppError> {
    let event = actor.event("command.delete", &command.settings.name, "");
    Ok(state
        .store
        .delete_command_audited(&actor.tenant, &command.id, Some(&event))
        .await?)
}

/// Starts a run by hand (`trigger`: `manual` on the page, `api`). 409 when it is
/// running or paused; 429 when the tenant has no room for another run in flight.
pub async fn run(
    state: &AppState,
    actor: &Actor,
    command: &Command,
    window: Option<Window>,
    trigger: &str,
) -> Result<Run, AppError> {
    let run = run_now(state, command, trigger, window, None).await?;
    actor
        .record(&state.store, "command.run", &command.settings.name, "")
        .await?;
    Ok(run)
}

/// Pauses a static command (a running run finishes first).
pub async fn pause(state: &AppState, actor: &Actor, command: &Command) -> Result<(), AppError> {
    if !state
        .store
        .pause_command(&actor.tenant, &command.id)
        .await?
    {
        return Err(AppError::Conflict {
            field: "status",
            message: format!("a {} command cannot be paused", command.status.as_str()),
        });
    }
    Ok(actor
        .record(&state.store, "command.pause", &command.settings.name, "")
        .await?)
}

/// Resumes a paused command at its next schedule time.
pub async fn resume(state: &AppState, actor: &Actor, command: &Command) -> Result<(), AppError> {
    let next = next_scheduled_run(command, Utc::now());
    if !state
        .store
        .resume_command(&actor.tenant, &command.id, next)
        .await?
    {
        return Err(AppError::Conflict {
            field: "status",
            message: "only a paused command can be resumed".into(),
        });
    }
    Ok(actor
        .record(&state.store, "command.resume", &command.settings.name, "")
        .await?)
}

/// Sets the stored cursor by hand (blank clears it).
pub async fn set_last_value(
    state: &AppState,
    actor: &Actor,
    command: &Command,
    value: Option<&str>,
) -> Result<(), AppError> {
    state
        .store
        .set_last_value(&actor.tenant, &command.id, value)
        .await?;
    Ok(actor
        .record(
            &state.store,
            "command.last_value",
            &command.settings.name,
            "",
        )
        .await?)
}

/// Adds a direct URL: a POST to it starts a run with its JSON body as params.
pub async fn create_direct_url(
    state: &AppState,
    actor: &Actor,
    command: &Command,
) -> Result<(), AppError> {
    state
        .store
        .create_direct_url(&actor.tenant, &command.id)
        .await?;
    Ok(actor
        .record(
            &state.store,
            "command.direct_url",
            &command.settings.name,
            "",
        )
        .await?)
}

/// Starts a run (UI, API or direct URL) when the command may run now.
pub async fn run_now(
    state: &AppState,
    command: &Command,
    trigger: &str,
    window: Option<Window>,
    params: Option<&str>,
) -> Result<Run, AppError> {
    match state
        .store
        .claim_command_now(&command.tenant_id, &command.id)
        .await?
    {
        Claim::Claimed => Ok(start_run(&state.jobs, command, trigger, window, params).await?),
        Claim::NotRunnable(status) => Err(AppError::Conflict {
            field: "status",
            message: format!(
                "the command is {} — it can run when it is READY or in ERROR",
                status.as_str()
            ),
        }),
        Claim::TenantBusy { max_runs_in_flight } => {
            Err(AppError::RunsInFlight { max_runs_in_flight })
        }
    }
}

/// Starts a new dynamic command's one run, or, when the tenant has no room for
/// another run in flight, leaves it queued for the scheduler: `None` then.
pub async fn run_dynamic(
    state: &AppState,
    command: &Command,
    trigger: &str,
) -> Result<Option<Run>, AppError> {
    match run_now(state, command, trigger, None, None).await {
        Ok(run) => Ok(Some(run)),
        Err(AppError::RunsInFlight { .. }) => {
            state
                .store
                .queue_when_room(&command.tenant_id, &command.id)
                .await?;
            Ok(None)
        }
        Err(other) => Err(other),
    }
}
