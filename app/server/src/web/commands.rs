//! Command pages: create and edit (with a preview of the next run times), the
//! detail page (status, run now with an optional window, pause/resume, the stored
//! last value, direct URLs, run history with a chart, live progress), delete.

mod fields;

pub use fields::CommandFields;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use sluice_jobs::pull::Schedule;
use sluice_store::commands::{Callback, Command, CommandKind, CommandStatus};
use sluice_store::connectors::Connector;
use sluice_store::ids::RunId;
use sluice_store::runs::{Run, RunStatus};

use crate::auth::{CsrfForm, CurrentUser, Writer};
use crate::error::AppError;
use crate::hooks::urls::{hook_url, without_hook_token};
use crate::service::commands::{self, ValidCommand, parse_window};
use crate::service::connectors;
use crate::state::AppState;
use crate::web::{FormErrors, Layout, redirect, render, render_with_status, when};

pub const HISTORY: i64 = 50;

/// Inboxes a command form offers as its callback (the operator's inbox quota is
/// normally far below).
const INBOX_CHOICES: i64 = 1000;

async fn connector(
    state: &AppState,
    current: &CurrentUser,
    raw: &str,
) -> Result<Connector, AppError> {
    connectors::find(state, &current.tenant.id, raw).await
}

async fn command(state: &AppState, current: &CurrentUser, raw: &str) -> Result<Command, AppError> {
    commands::find(state, &current.tenant.id, raw).await
}

// ---------------------------------------------------------------- form

struct InboxOption {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "commands/form.html")]
struct FormPage {
    layout: Layout,
    connector_id: String,
    connector_name: String,
    /// `None` when creating.
    editing: Option<String>,
    fields: CommandFields,
    errors: FormErrors,
    inboxes: Vec<InboxOption>,
    preview: Vec<String>,
    timezones: &'static [&'static str],
}

impl FormPage {
    fn action(&self) -> String {
        match &self.editing {
            Some(id) => format!("/commands/{id}/edit"),
            None => format!("/connectors/{}/commands", self.connector_id),
        }
    }
}

/// Time zones offered in the form (any IANA name is accepted when typed).
const COMMON_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
];

fn schedule_preview(fields: &CommandFields) -> Vec<String> {
    let timezone = if fields.timezone.trim().is_empty() {
        "UTC"
    } else {
        fields.timezone.trim()
    };
    match Schedule::parse(&fields.schedule, timezone) {
        Ok(schedule) => schedule
            .preview(Utc::now(), 5)
            .iter()
            .map(|t| t.format("%a %Y-%m-%d %H:%M:%S %Z").to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn form_page(
    state: &AppState,
    current: &CurrentUser,
    connector: &Connector,
    editing: Option<String>,
    fields: CommandFields,
    errors: FormErrors,
) -> Result<FormPage, AppError> {
    let inboxes = state
        .store
        .inboxes(&current.tenant.id, None, INBOX_CHOICES)
        .await?
        .into_iter()
        .map(|i| InboxOption {
            id: i.id.to_string(),
            name: i.name,
        })
        .collect();
    let preview = schedule_preview(&fields);
    Ok(FormPage {
        layout: Layout::new(current, "connectors"),
        connector_id: connector.id.to_string(),
        connector_name: connector.settings.name.as_str().to_string(),
        editing,
        fields,
        errors,
        inboxes,
        preview,
        timezones: COMMON_ZONES,
    })
}

pub async fn new_form(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    connector_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let connector = connector(&state, &current, &connector_id).await?;
    let fields = CommandFields {
        callback_kind: "url".into(),
        timezone: "UTC".into(),
        batch_size: "1000".into(),
        ..Default::default()
    };
    render(
        &form_page(
            &state,
            &current,
            &connector,
            None,
            fields,
            FormErrors::default(),
        )
        .await?,
    )
}

#[derive(Deserialize)]
pub struct SubmittedCommand {
    #[serde(flatten)]
    fields: CommandFields,
    /// `preview` shows the next run times without saving.
    #[serde(default)]
    intent: String,
}

/// The validated command, or the form to show again: with the next run times
/// (intent `preview`) or with the errors.
async fn validate_or_show_form(
    state: &AppState,
    current: &CurrentUser,
    connector: &Connector,
    editing: Option<String>,
    submitted: SubmittedCommand,
    kind: CommandKind,
) -> Result<Result<ValidCommand, HttpResponse>, AppError> {
    let (draft, mut unreadable) = submitted.fields.draft();
    let checked = match draft.validate(state, connector, kind).await? {
        Ok(valid) if unreadable.is_empty() => Ok(valid),
        Ok(_) => Err(unreadable),
        Err(invalid) => {
            unreadable.extend(invalid);
            Err(unreadable)
        }
    };
    match checked {
        Ok(valid) if submitted.intent != "preview" => Ok(Ok(valid)),
        Ok(_) => Ok(Err(render(
            &form_page(
                state,
                current,
                connector,
                editing,
                submitted.fields,
                FormErrors::default(),
            )
            .await?,
        )?)),
        Err(invalid) => Ok(Err(render_with_status(
            &form_page(
                state,
                current,
                connector,
                editing,
                submitted.fields,
                FormErrors::from(invalid),
            )
            .await?,
            StatusCode::BAD_REQUEST,
        )?)),
    }
}

pub async fn create(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    connector_id: web::Path<String>,
    CsrfForm(submitted): CsrfForm<SubmittedCommand>,
) -> Result<HttpResponse, AppError> {
    let connector = connector(&state, &current, &connector_id).await?;
    let valid = match validate_or_show_form(
        &state,
        &current,
        &connector,
        None,
        submitted,
        CommandKind::Static,
    )
    .await?
    {
        Ok(valid) => valid,
        Err(form) => return Ok(form),
    };
    let created = commands::create(&state, current.actor(), &valid, "manual").await?;
    Ok(redirect(&format!("/commands/{}", created.command.id)))
}

pub async fn edit_form(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let connector = state
        .store
        .connector(&current.tenant.id, &command.settings.connector_id)
        .await?;
    render(
        &form_page(
            &state,
            &current,
            &connector,
            Some(command.id.to_string()),
            CommandFields::of(&command),
            FormErrors::default(),
        )
        .await?,
    )
}

pub async fn update(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(submitted): CsrfForm<SubmittedCommand>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let connector = state
        .store
        .connector(&current.tenant.id, &command.settings.connector_id)
        .await?;
    let editing = Some(command.id.to_string());
    let valid = match validate_or_show_form(
        &state,
        &current,
        &connector,
        editing,
        submitted,
        command.settings.kind,
    )
    .await?
    {
        Ok(valid) => valid,
        Err(form) => return Ok(form),
    };
    let updated = commands::update(&state, current.actor(), &command, &valid).await?;
    Ok(redirect(&format!("/commands/{}?done=updated", updated.id)))
}

// ---------------------------------------------------------------- detail

pub struct RunView {
    pub id: String,
    pub trigger: String,
    pub status: &'static str,
    pub rows: i64,
    pub bytes: i64,
    pub batches: i64,
    pub error: String,
    pub started: String,
    pub duration: String,
    pub window: String,
    pub running: bool,
}

impl From<&Run> for RunView {
    fn from(r: &Run) -> Self {
        let window = match (r.window_start, r.window_end) {
            (Some(s), Some(e)) => format!(
                "{} → {}",
                s.format("%Y-%m-%d %H:%M:%S"),
                e.format("%Y-%m-%d %H:%M:%S")
            ),
            _ => String::new(),
        };
        Self {
            id: r.id.to_string(),
            trigger: r.trigger.clone(),
            status: r.status.as_str(),
            rows: r.rows,
            bytes: r.bytes,
            batches: r.batches,
            error: match (&r.error, r.next_attempt_at) {
                (Some(error), Some(next)) if r.status == RunStatus::Retrying => {
                    format!(
                        "{error} — attempt {} failed; next attempt {}",
                        r.attempts,
                        when(&next)
                    )
                }
                (error, _) => error.clone().unwrap_or_default(),
            },
            started: r
                .started_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| when(&r.created_at)),
            duration: r
                .duration_ms()
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default(),
            window,
            running: !r.status.is_finished(),
        }
    }
}

pub struct CommandView {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub sql: String,
    pub callback: String,
    pub status: &'static str,
    pub error: String,
    pub last_field: String,
    pub last_value: String,
    pub last_value_type: String,
    pub schedule: String,
    pub timezone: String,
    pub next_run: String,
    pub params: String,
    pub batch_size: i64,
    pub connector_id: String,
}

impl CommandView {
    /// `reader_may_write`: whether the reader may see hook tokens (see [`hook_url`]).
    pub fn new(c: &Command, inbox_name: Option<String>, reader_may_write: bool) -> Self {
        let callback = match (&c.settings.callback, inbox_name) {
            (Callback::Inbox(_), Some(name)) => format!("inbox {name}"),
            (Callback::Inbox(id), None) => format!("inbox {id}"),
            (Callback::Url(url), _) if reader_may_write => url.clone(),
            (Callback::Url(url), _) => without_hook_token(url),
        };
        Self {
            id: c.id.to_string(),
            name: c.settings.name.clone(),
            kind: c.settings.kind.as_str(),
            sql: c.settings.sql.clone(),
            callback,
            status: c.status.as_str(),
            error: c.error.clone().unwrap_or_default(),
            last_field: c.settings.last_field.clone().unwrap_or_default(),
            last_value: c.last_value.clone().unwrap_or_default(),
            last_value_type: c.last_value_type.clone().unwrap_or_default(),
            schedule: c.settings.schedule.clone().unwrap_or_default(),
            timezone: c.settings.timezone.clone(),
            next_run: c
                .next_run_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            params: c.settings.params.clone().unwrap_or_default(),
            batch_size: c.settings.batch_size,
            connector_id: c.settings.connector_id.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "commands/show.html")]
struct ShowPage {
    layout: Layout,
    c: CommandView,
    connector_name: String,
    runs: Vec<RunView>,
    chart_points: String,
    direct_urls: Vec<String>,
    next_runs: Vec<String>,
    /// The run history's next page, when this one is full.
    older_runs: Option<String>,
    notice: Option<&'static str>,
    errors: FormErrors,
    live: LivePartial,
}

#[derive(Template)]
#[template(path = "commands/_live.html")]
struct LivePartial {
    c: CommandView,
    runs: Vec<RunView>,
}

impl LivePartial {
    fn any_running(&self) -> bool {
        self.c.status == "PROCESSING" || self.runs.iter().any(|r| r.running)
    }
}

async fn inbox_name(state: &AppState, command: &Command) -> Option<String> {
    match &command.settings.callback {
        Callback::Inbox(id) => state
            .store
            .inbox(&command.tenant_id, id)
            .await
            .ok()
            .map(|i| i.name),
        Callback::Url(_) => None,
    }
}

fn chart_points(runs: &[Run]) -> String {
    let points: Vec<serde_json::Value> = runs
        .iter()
        .rev()
        .map(|r| serde_json::json!({"at": r.created_at.format("%m-%d %H:%M:%S").to_string(), "rows": r.rows, "failed": r.status == RunStatus::Failed}))
        .collect();
    serde_json::Value::Array(points).to_string()
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    /// The run history's page: runs started before this run id.
    runs_before: Option<String>,
}

async fn show_page(
    state: &AppState,
    current: &CurrentUser,
    command: &Command,
    notice: Option<&'static str>,
    errors: FormErrors,
    runs_before: Option<&RunId>,
) -> Result<ShowPage, AppError> {
    let connector = state
        .store
        .connector(&current.tenant.id, &command.settings.connector_id)
        .await?;
    let runs = state
        .store
        .runs(&current.tenant.id, &command.id, runs_before, HISTORY)
        .await?;
    let older_runs = runs
        .last()
        .filter(|_| runs.len() as i64 == HISTORY)
        .map(|last| format!("/commands/{}?runs_before={}#history", command.id, last.id));
    let can_write = current.user().role.can_write();
    let direct_urls = if can_write {
        state
            .store
            .direct_url_tokens(&current.tenant.id, &command.id)
            .await?
            .into_iter()
            .map(|t| hook_url(&state.public_url, &t))
            .collect()
    } else {
        Vec::new()
    };
    let next_runs = match &command.settings.schedule {
        Some(expression) if command.status != CommandStatus::Paused => {
            Schedule::parse(expression, &command.settings.timezone)
                .map(|s| {
                    s.preview(Utc::now(), 5)
                        .iter()
                        .map(|t| t.format("%a %Y-%m-%d %H:%M:%S %Z").to_string())
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let inbox = inbox_name(state, command).await;
    let live = LivePartial {
        c: CommandView::new(command, inbox.clone(), can_write),
        runs: runs.iter().take(5).map(RunView::from).collect(),
    };
    Ok(ShowPage {
        layout: Layout::new(current, "connectors"),
        live,
        c: CommandView::new(command, inbox, can_write),
        connector_name: connector.settings.name.as_str().to_string(),
        chart_points: chart_points(&runs),
        runs: runs.iter().map(RunView::from).collect(),
        direct_urls,
        next_runs,
        older_runs,
        notice,
        errors,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let notice = match query.done.as_deref() {
        Some("updated") => Some("Command saved."),
        Some("started") => Some("Run started: its progress shows below."),
        Some("paused") => Some("Paused: it will not run until you resume it."),
        Some("resumed") => Some("Resumed."),
        Some("last_value") => Some("Last value saved: the next run starts from it."),
        Some("direct_url") => Some(
            "Direct URL created: a POST with a JSON body starts a run with the body as params.",
        ),
        _ => None,
    };
    let runs_before = query.runs_before.as_deref().and_then(RunId::parse);
    let page = show_page(
        &state,
        &current,
        &command,
        notice,
        FormErrors::default(),
        runs_before.as_ref(),
    );
    render(&page.await?)
}

/// The live part of the detail page (status and latest runs), polled while running.
pub async fn live(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let runs = state
        .store
        .runs(&current.tenant.id, &command.id, None, 5)
        .await?;
    render(&LivePartial {
        c: CommandView::new(
            &command,
            inbox_name(&state, &command).await,
            current.user().role.can_write(),
        ),
        runs: runs.iter().map(RunView::from).collect(),
    })
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default, rename = "startTime")]
    start_time: String,
    #[serde(default, rename = "endTime")]
    end_time: String,
}

pub async fn run(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RunForm>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let window = match parse_window(&command, Some(&form.start_time), Some(&form.end_time)) {
        Ok(window) => window,
        Err(invalid) => {
            return render_with_status(
                &show_page(
                    &state,
                    &current,
                    &command,
                    None,
                    FormErrors::from(vec![invalid]),
                    None,
                )
                .await?,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let (status, message) =
        match commands::run(&state, current.actor(), &command, window, "manual").await {
            Ok(_) => return Ok(done(&command, "started")),
            Err(AppError::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
            Err(busy @ AppError::RunsInFlight { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, busy.to_string())
            }
            Err(other) => return Err(other),
        };
    let mut errors = FormErrors::default();
    errors.add("status", message);
    render_with_status(
        &show_page(&state, &current, &command, None, errors, None).await?,
        status,
    )
}

/// The command's page, with the notice for what was just `done`.
fn done(command: &Command, done: &str) -> HttpResponse {
    redirect(&format!("/commands/{}?done={done}", command.id))
}

pub async fn pause(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    commands::pause(&state, current.actor(), &command).await?;
    Ok(done(&command, "paused"))
}

pub async fn resume(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    commands::resume(&state, current.actor(), &command).await?;
    Ok(done(&command, "resumed"))
}

#[derive(Deserialize)]
pub struct LastValueForm {
    #[serde(default)]
    last_value: String,
}

pub async fn set_last_value(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<LastValueForm>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    let value = form.last_value.trim();
    let value = (!value.is_empty()).then_some(value);
    commands::set_last_value(&state, current.actor(), &command, value).await?;
    Ok(done(&command, "last_value"))
}

pub async fn create_direct_url(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    commands::create_direct_url(&state, current.actor(), &command).await?;
    Ok(done(&command, "direct_url"))
}

pub async fn delete(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let command = command(&state, &current, &id).await?;
    commands::delete(&state, current.actor(), &command).await?;
    Ok(redirect(&format!(
        "/connectors/{}",
        command.settings.connector_id
    )))
}
