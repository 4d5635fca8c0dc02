//! Connector pages: list, create (fields or a pasted connection string), detail with
//! Test connection, Explore (tables, columns, preview), edit, password-confirmed
//! delete, gateway key rotation, and the least-privilege guides.

mod fields;

pub use fields::ConnectorFields;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_connect::{DbKind, TableRef, TlsMode};
use sluice_store::connectors::Connector;
use sluice_store::ids::CommandId;

use crate::auth::{CsrfForm, CurrentUser, Writer};
use crate::error::AppError;
use crate::service::connectors::{self, TestOutcome, open_database};
use crate::state::AppState;
use crate::web::{FormErrors, Layout, PAGE, no_store, redirect, render, render_with_status, when};

/// A connector as shown on pages (never its secrets).
pub struct ConnectorView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub reach: &'static str,
    pub target: String,
    pub username: String,
    pub tls_mode: String,
    pub options: Vec<(String, String)>,
    pub has_password: bool,
    pub gateway_key_prefix: Option<String>,
    pub created: String,
    pub updated: String,
}

impl From<&Connector> for ConnectorView {
    fn from(c: &Connector) -> Self {
        let s = &c.settings;
        let target = match &s.path {
            Some(path) => path.clone(),
            None => {
                let host = s.host.clone().unwrap_or_default();
                let port = s.port.map(|p| format!(":{p}")).unwrap_or_default();
                let db = s
                    .database
                    .as_ref()
                    .map(|d| format!("/{d}"))
                    .unwrap_or_default();
                format!("{host}{port}{db}")
            }
        };
        Self {
            id: c.id.to_string(),
            name: s.name.as_str().to_string(),
            description: s.description.clone(),
            kind: s.kind.clone(),
            reach: s.reach.as_str(),
            target,
            username: s.username.clone().unwrap_or_default(),
            tls_mode: s.tls_mode.clone(),
            options: s
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            has_password: c.has_password,
            gateway_key_prefix: c.gateway_key_prefix.clone(),
            created: when(&c.created_at),
            updated: when(&c.updated_at),
        }
    }
}

async fn load(
    state: &AppState,
    current: &CurrentUser,
    raw_id: &str,
) -> Result<Connector, AppError> {
    connectors::find(state, &current.tenant.id, raw_id).await
}

// ---------------------------------------------------------------- list

#[derive(Template)]
#[template(path = "connectors/list.html")]
struct ListPage {
    layout: Layout,
    connectors: Vec<ConnectorView>,
}

pub async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let connectors = state
        .store
        .connectors(&current.tenant.id)
        .await?
        .iter()
        .map(ConnectorView::from)
        .collect();
    render(&ListPage {
        layout: Layout::new(&current, "connectors"),
        connectors,
    })
}

// ---------------------------------------------------------------- create / edit

#[derive(Template)]
#[template(path = "connectors/form.html")]
struct FormPage {
    layout: Layout,
    /// `None` when creating.
    editing: Option<ConnectorView>,
    fields: ConnectorFields,
    errors: FormErrors,
    imported: bool,
    kinds: [DbKind; 6],
    tls_modes: [TlsMode; 4],
}

impl FormPage {
    fn action(&self) -> String {
        match &self.editing {
            Some(c) => format!("/connectors/{}/edit", c.id),
            None => "/connectors".into(),
        }
    }
}

fn form_page(
    current: &CurrentUser,
    editing: Option<ConnectorView>,
    mut fields: ConnectorFields,
    errors: FormErrors,
    imported: bool,
) -> FormPage {
    // A password is never sent back to the browser in clear.
    fields.password.clear();
    FormPage {
        layout: Layout::new(current, "connectors"),
        editing,
        fields,
        errors,
        imported,
        kinds: DbKind::ALL,
        tls_modes: TlsMode::ALL,
    }
}

/// Shows the form again after a parse or an error: an imported password travels
/// sealed, and the pasted string (which may hold it) is not echoed.
fn reshow_form(
    state: &AppState,
    current: &CurrentUser,
    editing: Option<ConnectorView>,
    mut fields: ConnectorFields,
    errors: FormErrors,
    imported: bool,
) -> Result<HttpResponse, AppError> {
    fields.seal_password(state.store.secret(), current.user());
    if imported {
        fields.connection_string.clear();
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render_with_status(
        &form_page(current, editing, fields, errors, imported),
        status,
    )
}

pub async fn new_form(current: Writer<CurrentUser>) -> Result<HttpResponse, AppError> {
    let fields = ConnectorFields {
        kind: "postgres".into(),
        reach: "direct".into(),
        ssl_mode: "preferred".into(),
        ..Default::default()
    };
    render(&form_page(
        &current,
        None,
        fields,
        FormErrors::default(),
        false,
    ))
}

#[derive(Deserialize)]
pub struct SubmittedConnector {
    #[serde(flatten)]
    fields: ConnectorFields,
    /// `parse` fills the form from the connection string without saving.
    #[serde(default)]
    intent: String,
}

/// Applies a pasted connection string: on `parse`, or on save when it is the only input.
fn import_if_asked(submitted: &mut SubmittedConnector, errors: &mut FormErrors) -> bool {
    let wants_import = submitted.intent == "parse"
        || (!submitted.fields.connection_string.trim().is_empty()
            && submitted.fields.server.trim().is_empty()
            && submitted.fields.path.trim().is_empty());
    if !wants_import {
        return false;
    }
    if submitted.fields.connection_string.trim().is_empty() {
        errors.add("connection_string", "paste a connection string first");
        return false;
    }
    match submitted.fields.import() {
        Ok(()) => true,
        Err(e) => {
            errors.add(e.field, e.message);
            false
        }
    }
}

pub async fn create(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    CsrfForm(submitted): CsrfForm<SubmittedConnector>,
) -> Result<HttpResponse, AppError> {
    save(&state, &current, None, submitted).await
}

pub async fn edit_form(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    render(&form_page(
        &current,
        Some(ConnectorView::from(&connector)),
        ConnectorFields::of(&connector),
        FormErrors::default(),
        false,
    ))
}

pub async fn update(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(submitted): CsrfForm<SubmittedConnector>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    save(&state, &current, Some(connector), submitted).await
}

/// Creates (`existing` is `None`) or updates a connector from the form, or shows
/// the form again: after a `parse`, or with what to fix.
async fn save(
    state: &AppState,
    current: &Writer<CurrentUser>,
    existing: Option<Connector>,
    mut submitted: SubmittedConnector,
) -> Result<HttpResponse, AppError> {
    let view = existing.as_ref().map(ConnectorView::from);
    let mut errors = FormErrors::default();
    let imported = import_if_asked(&mut submitted, &mut errors);
    if submitted.intent == "parse" || !errors.is_empty() {
        return reshow_form(state, current, view, submitted.fields, errors, imported);
    }
    if let Err(e) = submitted
        .fields
        .unseal_password(state.store.secret(), current.user())
    {
        errors.add(e.field, e.message);
        return reshow_form(state, current, view, submitted.fields, errors, imported);
    }
    let input = match submitted
        .fields
        .validate(&state.tenant_sqlite_dir(&current.tenant.id))
    {
        Ok(input) => input,
        Err(invalid) => {
            let errors = FormErrors::from(invalid);
            return reshow_form(state, current, view, submitted.fields, errors, imported);
        }
    };
    let saved = match &existing {
        None => connectors::create(state, current.actor(), &input).await,
        Some(connector) => connectors::update(state, current.actor(), connector, &input).await,
    };
    let (connector, gateway_key) = match saved {
        Ok(saved) => saved,
        Err(AppError::Conflict { field, message }) => {
            errors.add(field, message);
            return reshow_form(state, current, view, submitted.fields, errors, imported);
        }
        Err(other) => return Err(other),
    };
    let (status, done) = match existing {
        None => (StatusCode::CREATED, "created"),
        Some(_) => (StatusCode::OK, "updated"),
    };
    match gateway_key {
        Some(key) => {
            let detail = Detail {
                gateway_key: Some(key),
                ..Detail::default()
            };
            show_with(state, current, &connector, detail, status).await
        }
        None => Ok(redirect(&format!(
            "/connectors/{}?done={done}",
            connector.id
        ))),
    }
}

// ---------------------------------------------------------------- detail and test

/// "Test connection" as the page shows it.
pub struct TestView {
    pub ok: bool,
    pub message: String,
    pub category: &'static str,
}

#[derive(Default)]
struct Detail {
    test: Option<TestView>,
    gateway_key: Option<String>,
    notice: Option<&'static str>,
    queue: QueueView,
}

/// Which part of a connector's queue the page shows: the commands that are not
/// finished, or the archive of finished dynamic ones; a page at a time.
#[derive(Default)]
struct QueueView {
    archived: bool,
    before: Option<CommandId>,
}

/// One line of a connector's commands queue.
pub struct QueueRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub error: String,
    pub next_run: String,
    pub last_run: String,
    pub last_rows: String,
}

#[derive(Template)]
#[template(path = "connectors/show.html")]
struct ShowPage {
    layout: Layout,
    c: ConnectorView,
    test: Option<TestView>,
    gateway_key: Option<String>,
    notice: Option<&'static str>,
    queue: Vec<QueueRow>,
    /// The queue's next page, when this one is full.
    queue_next: Option<String>,
    /// Whether `queue` is the archive of finished dynamic commands.
    archived: bool,
    archived_count: i64,
}

/// One page of the queue (or its archive), and the next page's URL when full.
async fn queue(
    state: &AppState,
    connector: &Connector,
    view: &QueueView,
) -> Result<(Vec<QueueRow>, Option<String>), AppError> {
    let commands = state
        .store
        .connector_commands(
            &connector.tenant_id,
            &connector.id,
            view.archived,
            view.before.as_ref(),
            PAGE,
        )
        .await?;
    let next = commands
        .last()
        .filter(|_| commands.len() as i64 == PAGE)
        .map(|last| {
            let archive = if view.archived { "archive=1&" } else { "" };
            format!(
                "/connectors/{}?{archive}before={}#commands",
                connector.id, last.id
            )
        });
    let ids: Vec<_> = commands.iter().map(|c| c.id.clone()).collect();
    let mut latest = state.store.latest_runs(&connector.tenant_id, &ids).await?;
    let mut rows = Vec::new();
    for command in commands {
        let last = latest.remove(&command.id);
        rows.push(QueueRow {
            id: command.id.to_string(),
            name: command.settings.name.clone(),
            kind: command.settings.kind.as_str(),
            status: command.status.as_str(),
            error: command.error.clone().unwrap_or_default(),
            next_run: command
                .next_run_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            last_run: last
                .as_ref()
                .map(|r| format!("{} ({})", when(&r.created_at), r.status.as_str()))
                .unwrap_or_else(|| "never".into()),
            last_rows: last.map(|r| r.rows.to_string()).unwrap_or_default(),
        });
    }
    Ok((rows, next))
}

async fn show_with(
    state: &AppState,
    current: &CurrentUser,
    connector: &Connector,
    detail: Detail,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let shows_gateway_key = detail.gateway_key.is_some();
    let (queue, queue_next) = queue(state, connector, &detail.queue).await?;
    let page = ShowPage {
        layout: Layout::new(current, "connectors"),
        c: connector.into(),
        test: detail.test,
        gateway_key: detail.gateway_key,
        notice: detail.notice,
        queue,
        queue_next,
        archived: detail.queue.archived,
        archived_count: state
            .store
            .count_archived_commands(&connector.tenant_id, &connector.id)
            .await?,
    };
    let mut response = render_with_status(&page, status)?;
    if shows_gateway_key {
        no_store(&mut response);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    /// `1` shows the archive of finished dynamic commands instead of the queue.
    archive: Option<String>,
    /// The queue's page: commands created before this command id.
    before: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    let notice = match query.done.as_deref() {
        Some("created") => Some("Connector created. Test the connection to check the settings."),
        Some("updated") => Some("Connector saved."),
        _ => None,
    };
    show_with(
        &state,
        &current,
        &connector,
        Detail {
            notice,
            queue: QueueView {
                archived: query.archive.as_deref() == Some("1"),
                before: query.before.as_deref().and_then(CommandId::parse),
            },
            ..Detail::default()
        },
        StatusCode::OK,
    )
    .await
}

pub async fn test(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    let outcome = match connectors::test(&state, &connector).await {
        TestOutcome::Connected {
            server_version,
            latency_ms,
        } => TestView {
            ok: true,
            message: format!("Connected: {server_version} ({latency_ms} ms)"),
            category: "ok",
        },
        TestOutcome::Failed { message, category } => TestView {
            ok: false,
            message,
            category,
        },
    };
    show_with(
        &state,
        &current,
        &connector,
        Detail {
            test: Some(outcome),
            ..Detail::default()
        },
        StatusCode::OK,
    )
    .await
}

pub async fn rotate_key(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    _form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    let key = connectors::rotate_gateway_key(&state, current.actor(), &connector).await?;
    let connector = load(&state, &current, &id).await?;
    show_with(
        &state,
        &current,
        &connector,
        Detail {
            gateway_key: Some(key),
            ..Detail::default()
        },
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------- explore

struct TableView {
    schema: String,
    name: String,
    kind: &'static str,
    href: String,
}

#[derive(Template)]
#[template(path = "connectors/explore.html")]
struct ExplorePage {
    layout: Layout,
    c: ConnectorView,
    tables: Vec<TableView>,
    error: Option<String>,
}

fn table_href(connector: &str, table: &TableRef) -> String {
    let query = serde_urlencoded::to_string([
        ("schema", table.schema.clone().unwrap_or_default()),
        ("name", table.name.clone()),
    ])
    .unwrap_or_default();
    format!("/connectors/{connector}/explore/table?{query}")
}

pub async fn explore(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    let listed = match open_database(&state, &connector).await {
        Err(u) => Err(u.message()),
        Ok(db) => db.tables().await.map_err(|e| e.to_string()),
    };
    let (tables, error) = match listed {
        Ok(tables) => (
            tables
                .iter()
                .map(|t| TableView {
                    schema: t.schema.clone().unwrap_or_default(),
                    name: t.name.clone(),
                    kind: if matches!(t.kind, sluice_connect::TableKind::View) {
                        "view"
                    } else {
                        "table"
                    },
                    href: table_href(connector.id.as_str(), t),
                })
                .collect(),
            None,
        ),
        Err(message) => (Vec::new(), Some(message)),
    };
    render(&ExplorePage {
        layout: Layout::new(&current, "connectors"),
        c: (&connector).into(),
        tables,
        error,
    })
}

#[derive(Deserialize)]
pub struct TableQuery {
    #[serde(default)]
    schema: String,
    #[serde(default)]
    name: String,
    limit: Option<u32>,
}

struct ColumnView {
    name: String,
    data_type: String,
    nullable: bool,
}

#[derive(Template)]
#[template(path = "connectors/table.html")]
struct TablePage {
    layout: Layout,
    c: ConnectorView,
    schema: String,
    name: String,
    columns: Vec<ColumnView>,
    preview_columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
    limit: u32,
    error: Option<String>,
}

/// A preview value as displayed: NULL is marked, JSON shown compactly.
struct Cell {
    text: String,
    is_null: bool,
}

fn cell(value: &serde_json::Value) -> Cell {
    match value {
        serde_json::Value::Null => Cell {
            text: "NULL".into(),
            is_null: true,
        },
        serde_json::Value::String(s) => Cell {
            text: s.clone(),
            is_null: false,
        },
        other => Cell {
            text: other.to_string(),
            is_null: false,
        },
    }
}

pub const PREVIEW_ROWS: u32 = 50;

pub async fn table(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
    query: web::Query<TableQuery>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    let limit = query.limit.unwrap_or(PREVIEW_ROWS).clamp(1, 1000);
    let table = TableRef {
        schema: (!query.schema.is_empty()).then(|| query.schema.clone()),
        name: query.name.clone(),
        kind: sluice_connect::TableKind::Table,
    };
    let mut page = TablePage {
        layout: Layout::new(&current, "connectors"),
        c: (&connector).into(),
        schema: query.schema.clone(),
        name: query.name.clone(),
        columns: Vec::new(),
        preview_columns: Vec::new(),
        rows: Vec::new(),
        limit,
        error: None,
    };
    let result = async {
        let db = open_database(&state, &connector)
            .await
            .map_err(|u| u.message())?;
        let columns = db.columns(&table).await.map_err(|e| e.to_string())?;
        let preview = db
            .preview(&table, limit)
            .await
            .map_err(|e| e.to_string())?
            .cap_cells(state.tenant_limits.preview_cell_bytes);
        Ok::<_, String>((columns, preview))
    }
    .await;
    match result {
        Ok((columns, preview)) => {
            page.columns = columns
                .into_iter()
                .map(|c| ColumnView {
                    name: c.name,
                    data_type: c.data_type,
                    nullable: c.nullable,
                })
                .collect();
            page.rows = preview
                .rows
                .iter()
                .map(|row| {
                    preview
                        .columns
                        .iter()
                        .map(|col| cell(row.get(col).unwrap_or(&serde_json::Value::Null)))
                        .collect()
                })
                .collect();
            page.preview_columns = preview.columns;
        }
        Err(message) => page.error = Some(message),
    }
    render(&page)
}

// ---------------------------------------------------------------- delete

#[derive(Template)]
#[template(path = "connectors/delete.html")]
struct DeletePage {
    layout: Layout,
    c: ConnectorView,
    errors: FormErrors,
}

pub async fn delete_form(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    render(&DeletePage {
        layout: Layout::new(&current, "connectors"),
        c: (&connector).into(),
        errors: FormErrors::default(),
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    password: String,
}

pub async fn delete(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let connector = load(&state, &current, &id).await?;
    if !current.confirm_password(&state, &form.password).await? {
        let mut errors = FormErrors::default();
        errors.add("password", "is not your password; nothing was deleted");
        return render_with_status(
            &DeletePage {
                layout: Layout::new(&current, "connectors"),
                c: (&connector).into(),
                errors,
            },
            StatusCode::FORBIDDEN,
        );
    }
    connectors::delete(&state, current.actor(), &connector).await?;
    Ok(redirect("/connectors"))
}

// ---------------------------------------------------------------- guides

#[derive(Template)]
#[template(path = "connectors/guide.html")]
struct GuidePage {
    layout: Layout,
    kind: &'static str,
    kinds: [DbKind; 6],
}

pub async fn guide(
    current: CurrentUser,
    kind: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kind = DbKind::parse(&kind).ok_or(AppError::NotFound)?;
    render(&GuidePage {
        layout: Layout::new(&current, "connectors"),
        kind: kind.as_str(),
        kinds: DbKind::ALL,
    })
}
