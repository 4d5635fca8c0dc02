//! Command logic shared by the pages and the API: validating submitted fields into
//! settings, and starting runs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice_connect::DbKind;
use sluice_deliver::AddressGuard;
use sluice_jobs::pull::{Schedule, Window, next_scheduled_run, start_run};
use sluice_sqltpl::referenced_placeholders_in;
use sluice_store::commands::{Callback, Claim, Command, CommandKind, CommandSettings};
use sluice_store::connectors::Connector;
use sluice_store::domain::Invalid;
use sluice_store::ids::{InboxId, TenantId};
use sluice_store::runs::Run;

use crate::error::AppError;
use crate::input::{blank_to_none, keep};
use crate::state::AppState;

pub const DEFAULT_BATCH_SIZE: i64 = 1000;
pub const MAX_BATCH_SIZE: i64 = 100_000;

/// Command fields as submitted (form or API), unvalidated.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct CommandFields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub sql: String,
    /// `url` or `inbox`.
    #[serde(default)]
    pub callback_kind: String,
    #[serde(default)]
    pub callback_url: String,
    #[serde(default)]
    pub callback_inbox_id: String,
    #[serde(default)]
    pub last_field: String,
    #[serde(default)]
    pub last_value: String,
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub batch_size: String,
    /// JSON object, for dynamic commands.
    #[serde(default)]
    pub params: String,
}

/// Validated fields, ready for the store.
pub struct ValidCommand {
    pub settings: CommandSettings,
    pub last_value: Option<String>,
    pub schedule: Option<Schedule>,
}

impl CommandFields {
    /// Validates against the connector (its SQL dialect) and the tenant's inboxes.
    pub async fn validate(
        &self,
        state: &AppState,
        connector: &Connector,
        kind: CommandKind,
    ) -> Result<ValidCommand, Vec<Invalid>> {
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
        let callback = keep(&mut errors, self.callback(state, connector).await);
        let schedule = match (kind, blank_to_none(&self.schedule)) {
            (CommandKind::Static, Some(expression)) => {
                let timezone = blank_to_none(&self.timezone).unwrap_or_else(|| "UTC".into());
                keep(
                    &mut errors,
                    Schedule::parse(&expression, &timezone)
                        .map_err(|e| Invalid::new(e.field(), e.to_string()))
                        .and_then(|s| often_enough(s, state.tenant_limits.min_schedule_interval)),
                )
            }
            _ => None,
        };
        let batch_size = keep(
            &mut errors,
            match self.batch_size.trim() {
                "" => Ok(DEFAULT_BATCH_SIZE),
                raw => raw
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_BATCH_SIZE).contains(n))
                    .ok_or_else(|| {
                        Invalid::new(
                            "batch_size",
                            format!("must be a whole number from 1 to {MAX_BATCH_SIZE}"),
                        )
                    }),
            },
        );
        let params = match blank_to_none(&self.params) {
            None => None,
            Some(raw) => keep(
                &mut errors,
                match serde_json::from_str::<Value>(&raw) {
                    Ok(Value::Object(map)) => Ok(Value::Object(map).to_string()),
                    Ok(_) => Err(Invalid::new("params", "must be a JSON object")),
                    Err(e) => Err(Invalid::new("params", format!("is not valid JSON: {e}"))),
                },
            ),
        };
        let last_field = blank_to_none(&self.last_field);
        if last_field.as_ref().is_some_and(|f| f.len() > 200) {
            errors.push(Invalid::new("last_field", "must be at most 200 characters"));
        }
        let (Some(callback), Some(batch_size)) = (callback, batch_size) else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let timezone = schedule
            .as_ref()
            .map(|_| blank_to_none(&self.timezone).unwrap_or_else(|| "UTC".into()))
            .unwrap_or_else(|| "UTC".into());
        Ok(ValidCommand {
            settings: CommandSettings {
                connector_id: connector.id.clone(),
                name,
                kind,
                sql,
                callback,
                last_field,
                schedule: schedule.as_ref().map(|s| s.expression.clone()),
                timezone,
                params,
                batch_size,
            },
            last_value: blank_to_none(&self.last_value),
            schedule,
        })
    }

    async fn callback(&self, state: &AppState, connector: &Connector) -> Result<Callback, Invalid> {
        let wants_inbox = self.callback_kind == "inbox"
            || (self.callback_kind.is_empty() && !self.callback_inbox_id.trim().is_empty());
        if wants_inbox {
            let id = InboxId::parse(self.callback_inbox_id.trim())
                .ok_or_else(|| Invalid::new("callback_inbox_id", "choose one of your inboxes"))?;
            state
                .store
                .inbox(&connector.tenant_id, &id)
                .await
                .map_err(|_| Invalid::new("callback_inbox_id", "choose one of your inboxes"))?;
            return Ok(Callback::Inbox(id));
        }
        let raw = self.callback_url.trim();
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
}

/// When a static command first runs: its next schedule time, or never (on demand).
pub fn first_run_at(valid: &ValidCommand) -> Option<chrono::NaiveDateTime> {
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

/// Starts a run by hand (UI, API or direct URL). 409 when it is running or
/// paused; 429 when the tenant has no room for another run in flight.
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

/// The next run time after a pause/resume or an edit.
pub fn next_run(command: &Command) -> Option<chrono::NaiveDateTime> {
    next_scheduled_run(command, Utc::now())
}
