//! `/api/v1/commands…`: create (a dynamic command starts at once), read, run,
//! pause/resume, delete, and the run history.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::commands::{Callback, Command, CommandKind};
use sluice_store::domain::Invalid;
use sluice_store::ids::{CommandId, ConnectorId, RunId};
use sluice_store::runs::Run;
use utoipa::{IntoParams, ToSchema};

use crate::api::{fields, iso, page};
use crate::auth::{ApiCaller, Writer};
use crate::error::{ApiError, AppError, api_payload_error};
use crate::hooks::urls::without_hook_token;
use crate::service::commands::{self, CallbackChoice, CommandDraft, parse_window};
use crate::service::found_or;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CallbackRequest {
    pub url: Option<String>,
    pub inbox_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct CommandRequest {
    pub connection_id: String,
    /// `static` (default) or `dynamic`.
    pub kind: Option<String>,
    #[schema(max_length = 100)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 100000)]
    pub sql: String,
    pub callback: CallbackRequest,
    pub last_field: Option<String>,
    pub last_value: Option<String>,
    /// Cron: 5 fields, or 6 with seconds first.
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    pub timezone: Option<String>,
    /// For dynamic commands: the values of `@object.params.NAME@`.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// Rows per POST (default 1000).
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_size: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedCommand {
    pub id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CommandBody {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// READY, PROCESSING, FINISHED, ERROR or PAUSED.
    pub status: String,
    pub connection_id: String,
    pub sql: String,
    #[schema(value_type = Object)]
    pub callback: Value,
    pub last_field: Option<String>,
    pub last_value: Option<String>,
    /// How the Last Field's column orders the stored value (`integer`, `decimal`,
    /// `instant`, `timestamp`, `date`, `text`); null until a run stores one.
    pub last_value_type: Option<String>,
    pub schedule: Option<String>,
    pub timezone: String,
    #[schema(format = DateTime)]
    pub next_run_at: Option<String>,
    pub batch_size: i64,
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CommandBody {
    /// A caller who may not change state gets callback URLs without hook tokens.
    fn for_caller(c: &Command, caller: &ApiCaller) -> Self {
        let callback = match &c.settings.callback {
            Callback::Url(url) if caller.can_write() => serde_json::json!({"url": url}),
            Callback::Url(url) => serde_json::json!({"url": without_hook_token(url)}),
            Callback::Inbox(id) => serde_json::json!({"inbox_id": id.to_string()}),
        };
        Self {
            id: c.id.to_string(),
            name: c.settings.name.clone(),
            kind: c.settings.kind.as_str().into(),
            status: c.status.as_str().into(),
            connection_id: c.settings.connector_id.to_string(),
            sql: c.settings.sql.clone(),
            callback,
            last_field: c.settings.last_field.clone(),
            last_value: c.last_value.clone(),
            last_value_type: c.last_value_type.clone(),
            schedule: c.settings.schedule.clone(),
            timezone: c.settings.timezone.clone(),
            next_run_at: c.next_run_at.as_ref().map(iso),
            batch_size: c.settings.batch_size,
            params: c
                .settings
                .params
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            error: c.error.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RunBody {
    pub id: String,
    /// queued, running, retrying (a batch's delivery failed; see `attempts` and
    /// `next_attempt_at`), succeeded or failed.
    pub status: String,
    pub trigger: String,
    pub rows: i64,
    pub bytes: i64,
    pub batches: i64,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub window_start: Option<String>,
    #[schema(format = DateTime)]
    pub window_end: Option<String>,
    /// When the run was queued.
    #[schema(format = DateTime)]
    pub queued_at: String,
    /// When a worker started it.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// Failed delivery attempts of the batch being delivered.
    pub attempts: i64,
    /// When a retrying run's next attempt is due.
    pub next_attempt_at: Option<String>,
}

impl From<&Run> for RunBody {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.to_string(),
            status: r.status.as_str().into(),
            trigger: r.trigger.clone(),
            rows: r.rows,
            bytes: r.bytes,
            batches: r.batches,
            error: r.error.clone(),
            window_start: r.window_start.as_ref().map(iso),
            window_end: r.window_end.as_ref().map(iso),
            queued_at: iso(&r.created_at),
            started_at: r.started_at.as_ref().map(iso),
            finished_at: r.finished_at.as_ref().map(iso),
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.as_ref().map(iso),
        }
    }
}

/// Creates a command; a dynamic one is queued at once.
#[utoipa::path(post, path = "/api/v1/commands", tag = "commands", operation_id = "createCommand", security(("bearer" = [])), request_body = CommandRequest,
    responses((status = 201, body = CreatedCommand), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "The tenant has as many commands as this instance allows", body = crate::error::ErrorBody),
        (status = 429, description = "A dynamic command could not start: too many runs in progress", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    body: web::Json<CommandRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let kind = match body.kind.as_deref() {
        None => CommandKind::Static,
        Some(raw) => CommandKind::parse(raw)
            .ok_or_else(|| AppError::Invalid(Invalid::new("kind", "must be static or dynamic")))?,
    };
    let not_ours = || Invalid::new("connection_id", "is not one of your connections");
    let connector_id = ConnectorId::parse(&body.connection_id).ok_or_else(not_ours)?;
    let connector = found_or(
        state.store.connector(caller.tenant(), &connector_id).await,
        not_ours,
    )??;
    let callback = match (body.callback.url, body.callback.inbox_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::Invalid(Invalid::new(
                "callback",
                "give either url or inbox_id, not both",
            ))
            .into());
        }
        (_, Some(inbox)) => CallbackChoice::Inbox(inbox),
        (url, None) => CallbackChoice::Url(url.unwrap_or_default()),
    };
    let params = match body.params {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(AppError::Invalid(Invalid::new("params", "must be a JSON object")).into());
        }
    };
    let draft = CommandDraft {
        name: body.name.unwrap_or_default(),
        sql: body.sql,
        callback,
        last_field: body.last_field.unwrap_or_default(),
        last_value: body.last_value.unwrap_or_default(),
        schedule: body.schedule.unwrap_or_default(),
        timezone: body.timezone.unwrap_or_default(),
        batch_size: body.batch_size,
        params,
    };
    let valid = draft
        .validate(&state, &connector, kind)
        .await?
        .map_err(|e| fields::renamed(e, fields::command))?;
    let created = commands::create(&state, caller.actor(), &valid, "api").await?;
    Ok(HttpResponse::Created().json(CreatedCommand {
        id: created.command.id.to_string(),
        status: created.command.status.as_str().into(),
        run_id: created.run.map(|run| run.id.to_string()),
    }))
}

async fn load(state: &AppState, caller: &ApiCaller, raw: &str) -> Result<Command, ApiError> {
    Ok(commands::find(state, caller.tenant(), raw).await?)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this connection's commands.
    connection_id: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: commands created before this command id (the `Link: rel="next"`
    /// header of the previous page carries it).
    before: Option<String>,
}

/// The tenant's commands, or one connection's, newest first, a page at a time:
/// a full page carries `Link: <…?before=…>; rel="next"`.
#[utoipa::path(get, path = "/api/v1/commands", tag = "commands", operation_id = "listCommands", security(("bearer" = [])), params(ListQuery), responses((status = 200, body = [CommandBody]),
    (status = 404, description = "`connection_id` is not one of your connections", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let connector = match page::given(query.connection_id.as_deref()) {
        Some(raw) => {
            let id = ConnectorId::parse(raw).ok_or(AppError::NotFound)?;
            state.store.connector(caller.tenant(), &id).await?;
            Some(id)
        }
        None => None,
    };
    let before = page::cursor(query.before.as_deref(), CommandId::parse, "a command id")?;
    let page = state
        .store
        .commands_page(caller.tenant(), connector.as_ref(), before.as_ref(), limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = page.last().filter(|_| page.len() as i64 == limit) {
        let mut next = format!("/api/v1/commands?limit={limit}&before={}", last.id);
        if let Some(connector) = &connector {
            next.push_str(&format!("&connection_id={connector}"));
        }
        page::link_next(&mut response, &next);
    }
    Ok(response.json(
        page.iter()
            .map(|c| CommandBody::for_caller(c, &caller))
            .collect::<Vec<_>>(),
    ))
}

/// One command; another tenant's id answers 404.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "commands", operation_id = "getCommand", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CommandBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let command = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(CommandBody::for_caller(&command, &caller)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// ISO 8601; default: the end of the last successful window.
    #[serde(rename = "startTime")]
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    /// ISO 8601; default: now.
    #[serde(rename = "endTime")]
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
}

impl RunRequest {
    /// An empty body means "no window"; anything else must be a JSON object with
    /// nothing but `startTime` and `endTime`, each a string or null. Errors name
    /// the field, or serde's line and column when the JSON itself is broken.
    fn read(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.subtype().as_str() == "json" || m.suffix().is_some_and(|s| s.as_str() == "json")
        });
        if !is_json {
            return Err(AppError::UnsupportedMediaType.into());
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("request body: {e}")))?;
        let Value::Object(object) = value else {
            return Err(AppError::BadRequest(format!(
                "request body: expected a JSON object such as {{\"startTime\": …, \"endTime\": …}}, found {}",
                json_kind(&value)
            ))
            .into());
        };
        for field in ["startTime", "endTime"] {
            match object.get(field) {
                None | Some(Value::Null) => {}
                // Blank means "the default" in the page's form, but a JSON
                // client leaves the field out (or sends null) for that.
                Some(Value::String(text)) if text.trim().is_empty() => {
                    return Err(AppError::Invalid(Invalid::new(
                        field,
                        "must be an ISO 8601 time; leave it out (or null) for the default",
                    ))
                    .into());
                }
                Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(AppError::Invalid(Invalid::new(
                        field,
                        format!("must be an ISO 8601 time string, not {}", json_kind(other)),
                    ))
                    .into());
                }
            }
        }
        // What is left to refuse is a field it does not know.
        serde_json::from_value(Value::Object(object))
            .map_err(|e| AppError::BadRequest(format!("request body: {e}")).into())
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: String,
}

/// Runs the command now, with an optional window.
#[utoipa::path(post, path = "/api/v1/commands/{id}/run", tag = "commands", operation_id = "runCommand", security(("bearer" = [])), params(("id" = String, Path)), request_body(content = RunRequest, description = "Optional: an empty body runs with the default window"),
    responses((status = 202, body = RunStarted), (status = 409, description = "The command cannot run now (paused, finished or already running)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many runs in progress for this tenant", body = crate::error::ErrorBody)))]
pub async fn run(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|e| api_payload_error(&e))?;
    let body = RunRequest::read(&req, &body)?;
    let command = load(&state, &caller, &id).await?;
    let window = parse_window(
        &command,
        body.start_time.as_deref(),
        body.end_time.as_deref(),
    )?;
    let run = commands::run(&state, caller.actor(), &command, window, "api").await?;
    Ok(HttpResponse::Accepted().json(RunStarted {
        run_id: run.id.to_string(),
    }))
}

/// Pauses a static command.
#[utoipa::path(post, path = "/api/v1/commands/{id}/pause", tag = "commands", operation_id = "pauseCommand", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CommandBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn pause(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let command = load(&state, &caller, &id).await?;
    commands::pause(&state, caller.actor(), &command).await?;
    current_body(&state, &caller, &command).await
}

/// Resumes a paused command.
#[utoipa::path(post, path = "/api/v1/commands/{id}/resume", tag = "commands", operation_id = "resumeCommand", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CommandBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resume(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let command = load(&state, &caller, &id).await?;
    commands::resume(&state, caller.actor(), &command).await?;
    current_body(&state, &caller, &command).await
}

/// The command as it is now, after a change.
async fn current_body(
    state: &AppState,
    caller: &ApiCaller,
    command: &Command,
) -> Result<HttpResponse, ApiError> {
    let command = state.store.command(caller.tenant(), &command.id).await?;
    Ok(HttpResponse::Ok().json(CommandBody::for_caller(&command, caller)))
}

/// Deletes a command and its runs.
#[utoipa::path(delete, path = "/api/v1/commands/{id}", tag = "commands", operation_id = "deleteCommand", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let command = load(&state, &caller, &id).await?;
    commands::delete(&state, caller.actor(), &command).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: runs started before this run id (the `Link: rel="next"` header of
    /// the previous page carries it).
    before: Option<String>,
}

/// The command's runs, newest first, a page at a time: a full page carries
/// `Link: <…?before=…>; rel="next"`.
#[utoipa::path(get, path = "/api/v1/commands/{id}/runs", tag = "commands", operation_id = "listRuns", security(("bearer" = [])), params(("id" = String, Path), RunsQuery),
    responses((status = 200, body = [RunBody]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn runs(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    query: web::Query<RunsQuery>,
) -> Result<HttpResponse, ApiError> {
    let command = load(&state, &caller, &id).await?;
    let limit = page::limit(query.limit.as_deref())?;
    let before = page::cursor(query.before.as_deref(), RunId::parse, "a run id")?;
    let runs = state
        .store
        .runs(caller.tenant(), &command.id, before.as_ref(), limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = runs.last().filter(|_| runs.len() as i64 == limit) {
        let next = format!(
            "/api/v1/commands/{}/runs?limit={limit}&before={}",
            command.id, last.id
        );
        page::link_next(&mut response, &next);
    }
    Ok(response.json(runs.iter().map(RunBody::from).collect::<Vec<_>>()))
}
