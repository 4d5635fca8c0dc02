//! `/api/v1/connectionSpecs` and `/api/v1/connections…`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_connect::{ConnectError, TableKind, TableRef, connection_specs};
use sluice_store::connectors::Connector;
use sluice_store::domain::Invalid;
use utoipa::{IntoParams, ToSchema};

use crate::api::{fields, iso, page};
use crate::auth::{ApiCaller, Writer};
use crate::error::{ApiError, AppError};
use crate::service::connectors::{
    self, ConnectorDraft, ConnectorInput, ConnectorOptions, TestOutcome, open_database,
};
use crate::state::AppState;
use crate::web::no_store;

#[derive(Serialize, ToSchema)]
pub struct ParamSpecBody {
    pub name: String,
    /// `string`, `integer`, `password` or `enum`.
    pub r#type: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionSpecBody {
    pub kind: String,
    pub params: Vec<ParamSpecBody>,
}

/// The connector kinds and the parameters each takes.
#[utoipa::path(get, path = "/api/v1/connectionSpecs", tag = "connections", operation_id = "listConnectionSpecs", security(("bearer" = [])),
    responses((status = 200, body = [ConnectionSpecBody])))]
pub async fn specs(_caller: ApiCaller) -> HttpResponse {
    let specs: Vec<ConnectionSpecBody> = connection_specs()
        .into_iter()
        .map(|s| ConnectionSpecBody {
            kind: s.kind.as_str().to_string(),
            params: s
                .params
                .into_iter()
                .map(|p| ParamSpecBody {
                    name: p.name.into(),
                    r#type: p.r#type.into(),
                    required: p.required,
                    values: p.values.map(|v| v.iter().map(|x| x.to_string()).collect()),
                })
                .collect(),
        })
        .collect();
    HttpResponse::Ok().json(specs)
}

/// Connection parameters in requests (`auth.params`).
#[derive(Deserialize, Default, ToSchema)]
pub struct AuthParams {
    pub server: Option<String>,
    /// A number or a numeric string.
    #[schema(value_type = Option<u16>, minimum = 1, maximum = 65535)]
    pub port: Option<Value>,
    pub database: Option<String>,
    pub username: Option<String>,
    /// Write-only: never returned.
    pub password: Option<String>,
    #[serde(rename = "sslMode")]
    pub ssl_mode: Option<String>,
    /// SQLite: the file inside the server's SQLite directory.
    pub path: Option<String>,
    /// Extra driver options.
    pub options: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Default, ToSchema)]
pub struct Auth {
    #[serde(default)]
    pub params: AuthParams,
}

#[derive(Deserialize, ToSchema)]
pub struct ConnectionRequest {
    /// Lower-case letters, digits and `_`; unique in the tenant.
    #[schema(pattern = "^[a-z0-9_]{1,63}$")]
    pub name: Option<String>,
    pub description: Option<String>,
    /// `postgres`, `mysql`, `mariadb`, `sqlserver`, `oracle`, `sqlite`.
    pub kind: Option<String>,
    /// `direct` (default) or `gateway`.
    pub reach: Option<String>,
    pub auth: Option<Auth>,
    /// Alternative to `kind` + `auth`: JDBC, ODBC/ADO or URL.
    #[serde(rename = "connectionString")]
    #[schema(min_length = 1)]
    pub connection_string: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionParamsBody {
    pub server: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub username: Option<String>,
    #[serde(rename = "sslMode")]
    pub ssl_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub options: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionBody {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub reach: String,
    pub params: ConnectionParamsBody,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Connector> for ConnectionBody {
    fn from(c: &Connector) -> Self {
        let s = &c.settings;
        Self {
            id: c.id.to_string(),
            name: s.name.as_str().into(),
            description: s.description.clone(),
            kind: s.kind.clone(),
            reach: s.reach.as_str().into(),
            params: ConnectionParamsBody {
                server: s.host.clone(),
                port: s.port,
                database: s.database.clone(),
                username: s.username.clone(),
                ssl_mode: s.tls_mode.clone(),
                path: s
                    .path
                    .as_deref()
                    .map(|p| p.rsplit('/').next().unwrap_or(p).to_string()),
                options: s.options.clone(),
            },
            has_password: c.has_password,
            created_at: iso(&c.created_at),
            updated_at: iso(&c.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedConnection {
    pub id: String,
    /// Only for `reach: gateway`, only in this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_key: Option<String>,
}

/// `auth.params.port`: a number, or (as clients long sent it) a numeric string.
fn port(value: &Value) -> Result<Option<u16>, Invalid> {
    let out_of_range =
        |raw: &str| Invalid::new("port", format!("{raw:?} is not a port number (1-65535)"));
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| out_of_range(&n.to_string())),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| out_of_range(s)),
        _ => Err(Invalid::new("port", "must be a number")),
    }
}

/// Applies a request onto `draft` (empty for a create, the stored settings for a
/// patch) and validates the result; errors name the request's JSON paths.
fn to_input(
    state: &AppState,
    caller: &ApiCaller,
    request: ConnectionRequest,
    mut draft: ConnectorDraft,
) -> Result<ConnectorInput, ApiError> {
    let from_connection_string = request.connection_string.is_some() && request.auth.is_none();
    let rename = |field| fields::connection(field, from_connection_string);
    apply(request, &mut draft)?;
    draft
        .validate(&state.tenant_sqlite_dir(caller.tenant()))
        .map_err(|e| fields::renamed(e, rename))
}

/// Applies a request onto `draft`.
fn apply(request: ConnectionRequest, draft: &mut ConnectorDraft) -> Result<(), ApiError> {
    let from_connection_string = request.connection_string.is_some() && request.auth.is_none();
    let rename = |field| fields::connection(field, from_connection_string);
    if let Some(v) = request.name {
        draft.name = v;
    }
    if let Some(v) = request.description {
        draft.description = v;
    }
    if let Some(v) = request.kind {
        draft.kind = v;
    }
    if let Some(v) = request.reach {
        draft.reach = v;
    }
    if let Some(cs) = request.connection_string {
        draft.password = None;
        draft
            .import(&cs)
            .map_err(|e| fields::renamed(vec![e], rename))?;
    }
    if let Some(Auth { params: p }) = request.auth {
        if let Some(v) = p.server {
            draft.server = v;
        }
        if let Some(v) = &p.port {
            draft.port = port(v).map_err(|e| fields::renamed(vec![e], rename))?;
        }
        if let Some(v) = p.database {
            draft.database = v;
        }
        if let Some(v) = p.username {
            draft.username = v;
        }
        if let Some(v) = p.password {
            draft.password = Some(v);
        }
        if let Some(v) = p.ssl_mode {
            draft.ssl_mode = v;
        }
        if let Some(v) = p.path {
            draft.path = v;
        }
        if let Some(options) = p.options {
            draft.options =
                ConnectorOptions::from_map(&options).map_err(|bad| AppError::InvalidAt {
                    path: format!("auth.params.options.{}", bad.key),
                    message: bad.message.to_string(),
                })?;
        }
    }
    Ok(())
}

/// Creates a connection from parameters or a connection string.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", operation_id = "createConnection", security(("bearer" = [])), request_body = ConnectionRequest,
    responses((status = 201, body = CreatedConnection), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    body: web::Json<ConnectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = to_input(
        &state,
        &caller,
        body.into_inner(),
        ConnectorDraft::default(),
    )?;
    let (connector, gateway_key) = connectors::create(&state, caller.actor(), &input).await?;
    let shows_gateway_key = gateway_key.is_some();
    let mut response = HttpResponse::Created().json(CreatedConnection {
        id: connector.id.to_string(),
        gateway_key,
    });
    if shows_gateway_key {
        no_store(&mut response);
    }
    Ok(response)
}

/// The tenant's connections (never their passwords).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", operation_id = "listConnections", security(("bearer" = [])), responses((status = 200, body = [ConnectionBody])))]
pub async fn list(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let body: Vec<ConnectionBody> = state
        .store
        .connectors(caller.tenant())
        .await?
        .iter()
        .map(ConnectionBody::from)
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn load(state: &AppState, caller: &ApiCaller, raw: &str) -> Result<Connector, ApiError> {
    Ok(connectors::find(state, caller.tenant(), raw).await?)
}

/// One connection; another tenant's id answers 404.
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "getConnection", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ConnectionBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let connector = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(ConnectionBody::from(&connector)))
}

/// Partial update: only the given fields change; a missing password keeps the stored one.
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "updateConnection", security(("bearer" = [])), params(("id" = String, Path)), request_body = ConnectionRequest,
    responses((status = 200, body = ConnectionBody), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Another connection has this name", body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    body: web::Json<ConnectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let connector = load(&state, &caller, &id).await?;
    let input = to_input(
        &state,
        &caller,
        body.into_inner(),
        ConnectorDraft::of(&connector),
    )?;
    let (updated, _) = connectors::update(&state, caller.actor(), &connector, &input).await?;
    Ok(HttpResponse::Ok().json(ConnectionBody::from(&updated)))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteRequest {
    /// The connection's name, to confirm.
    pub confirm: Option<String>,
}

/// Deletes a connection with its commands and logs; `confirm` must repeat its name.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections", operation_id = "deleteConnection", security(("bearer" = [])), params(("id" = String, Path)), request_body(content = DeleteRequest, description = "`confirm` must repeat the connection's name"),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    body: Option<web::Json<DeleteRequest>>,
) -> Result<HttpResponse, ApiError> {
    let connector = load(&state, &caller, &id).await?;
    let confirm = body
        .and_then(|b| b.into_inner().confirm)
        .unwrap_or_default();
    if confirm != connector.settings.name.as_str() {
        return Err(ApiError(AppError::Invalid(Invalid::new(
            "confirm",
            "must be the connection's name",
        ))));
    }
    connectors::delete(&state, caller.actor(), &connector).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct TestBody {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it failed: `unreachable`, `authentication`, `unknown_database`, `tls`, `timeout`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// Connects and reports the server version and latency, or a clear error.
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections", operation_id = "testConnection", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TestBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn test(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let connector = load(&state, &caller, &id).await?;
    let body = match connectors::test(&state, &connector).await {
        TestOutcome::Connected {
            server_version,
            latency_ms,
        } => TestBody {
            ok: true,
            server_version: Some(server_version),
            latency_ms: Some(latency_ms),
            error: None,
            category: None,
        },
        TestOutcome::Failed { message, category } => TestBody {
            ok: false,
            server_version: None,
            latency_ms: None,
            error: Some(message),
            category: Some(category.into()),
        },
    };
    Ok(HttpResponse::Ok().json(body))
}

/// A failure while exploring: a table that is not there is 404, anything else
/// (the database could not be reached or answered with an error) 502.
fn explore_error(e: ConnectError) -> AppError {
    match e {
        ConnectError::NoSuchTable(message) => AppError::NoSuch(message),
        other => AppError::Upstream(other.to_string()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct TableBody {
    pub schema: Option<String>,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
}

/// Tables and views the connection's user can see.
#[utoipa::path(get, path = "/api/v1/connections/{id}/tables", tag = "connections", operation_id = "listTables", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [TableBody]), (status = 404, description = "No such connection, or no such table", body = crate::error::ErrorBody),
        (status = 409, description = "A gateway connection: the server cannot explore it", body = crate::error::ErrorBody),
        (status = 502, description = "The database could not be reached or answered with an error", body = crate::error::ErrorBody)))]
pub async fn tables(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let connector = load(&state, &caller, &id).await?;
    let db = open_database(&state, &connector)
        .await
        .map_err(AppError::from)?;
    let tables = db.tables().await.map_err(explore_error)?;
    let body: Vec<TableBody> = tables
        .into_iter()
        .map(|t| TableBody {
            schema: t.schema,
            name: t.name,
            kind: if matches!(t.kind, TableKind::View) {
                "view".into()
            } else {
                "table".into()
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TableQuery {
    /// The table's schema, when the database has several.
    schema: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The table's schema, when the database has several.
    schema: Option<String>,
    /// Rows to return, 1 to 1000 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

fn table_ref(name: String, schema: Option<&str>) -> TableRef {
    TableRef {
        schema: schema.filter(|s| !s.is_empty()).map(str::to_string),
        name,
        kind: TableKind::Table,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ColumnBody {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// A table's columns with their types.
#[utoipa::path(get, path = "/api/v1/connections/{id}/tables/{name}/columns", tag = "connections", operation_id = "listColumns", security(("bearer" = [])),
    params(("id" = String, Path), ("name" = String, Path), TableQuery),
    responses((status = 200, body = [ColumnBody]), (status = 404, description = "No such connection, or no such table", body = crate::error::ErrorBody),
        (status = 409, description = "A gateway connection: the server cannot explore it", body = crate::error::ErrorBody),
        (status = 502, description = "The database could not be reached or answered with an error", body = crate::error::ErrorBody)))]
pub async fn columns(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
    query: web::Query<TableQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let connector = load(&state, &caller, &id).await?;
    let db = open_database(&state, &connector)
        .await
        .map_err(AppError::from)?;
    let columns = db
        .columns(&table_ref(name, query.schema.as_deref()))
        .await
        .map_err(explore_error)?;
    let body: Vec<ColumnBody> = columns
        .into_iter()
        .map(|c| ColumnBody {
            name: c.name,
            data_type: c.data_type,
            nullable: c.nullable,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Serialize, ToSchema)]
pub struct PreviewBody {
    pub columns: Vec<String>,
    /// Rows as JSON objects keyed by column.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, Value>>,
}

/// The first rows of a table, converted to JSON.
#[utoipa::path(get, path = "/api/v1/connections/{id}/tables/{name}/preview", tag = "connections", operation_id = "previewTable", security(("bearer" = [])),
    params(("id" = String, Path), ("name" = String, Path), PreviewQuery),
    responses((status = 200, body = PreviewBody), (status = 404, description = "No such connection, or no such table", body = crate::error::ErrorBody),
        (status = 409, description = "A gateway connection: the server cannot explore it", body = crate::error::ErrorBody),
        (status = 502, description = "The database could not be reached or answered with an error", body = crate::error::ErrorBody)))]
pub async fn preview(
    state: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let limit = page::bounded("limit", query.limit.as_deref(), 50, 1000)?;
    let connector = load(&state, &caller, &id).await?;
    let db = open_database(&state, &connector)
        .await
        .map_err(AppError::from)?;
    let limit = u32::try_from(limit).unwrap_or(50);
    let rows = db
        .preview(&table_ref(name, query.schema.as_deref()), limit)
        .await
        .map_err(explore_error)?
        .cap_cells(state.tenant_limits.preview_cell_bytes);
    Ok(HttpResponse::Ok().json(PreviewBody {
        columns: rows.columns,
        rows: rows.rows,
    }))
}
