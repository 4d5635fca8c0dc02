//! SQL Server through tiberius, with a small bounded pool: a semaphore caps
//! the connections, idle clients wait in a list, and a client whose work was
//! interrupted (error, timeout, early stop) is dropped rather than reused.

use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use tiberius::{AuthMethod, Client, ColumnData, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{
    address, ca_file, connect_within, refuse_disabled_certificate_checks, required, within,
};
use crate::connstr::ConnectionParams;
use crate::cursor::{CursorSort, ResultColumn};
use crate::database::{ColumnInfo, Limits, RowSet, TableKind, TableRef};
use crate::error::{ConnectError, io_error};
use crate::ident::qualified_name;
use crate::kind::{DbKind, TlsMode};
use crate::stream::{BatchStream, BatchWriter, generate, push_converted, send_batch};
use crate::transaction::{ExecError, Finish};
use crate::value::tiberius_row_to_json;
use sluice_sqltpl::{BindValue, Rendered};

type SqlClient = Client<Compat<TcpStream>>;

pub struct SqlServerDatabase {
    /// Boxed: tiberius' config is large and this sits in the `Database` enum.
    config: Box<Config>,
    limits: Limits,
    address: String,
    idle: Mutex<Vec<SqlClient>>,
    permits: Arc<Semaphore>,
}

/// A client on loan; it goes back to the pool only through [`Loan::give_back`].
struct Loan {
    client: SqlClient,
    _permit: OwnedSemaphorePermit,
}

impl SqlServerDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<SqlServerDatabase, ConnectError> {
        refuse_disabled_certificate_checks(params)?;
        let config = client_config(params, limits)?;
        let database = SqlServerDatabase {
            address: address(params),
            config: Box::new(config),
            limits,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(limits.max_connections as usize)),
        };
        let first = database.borrow().await?;
        database.give_back(first);
        Ok(database)
    }

    pub(crate) fn kind(&self) -> DbKind {
        DbKind::Sqlserver
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    async fn borrow(&self) -> Result<Loan, ConnectError> {
        let permit = tokio::time::timeout(
            self.limits.connect_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| ConnectError::Timeout("waiting for a free connection to the database".into()))?
        .map_err(|_| ConnectError::Driver("the connection pool is closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let client = match idle {
            Some(client) => client,
            None => self.open().await?,
        };
        Ok(Loan {
            client,
            _permit: permit,
        })
    }

    fn give_back(&self, loan: Loan) {
        if self.permits.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(loan.client);
        }
    }

    async fn open(&self) -> Result<SqlClient, ConnectError> {
        connect_within(self.limits.connect_timeout, &self.address, async {
            match open_client((*self.config).clone(), &self.address).await {
                // Azure SQL may redirect the login to another node, once.
                Err(tiberius::error::Error::Routing { host, port }) => {
                    let mut redirected = (*self.config).clone();
                    redirected.host(&host);
                    redirected.port(port);
                    open_client(redirected, &format!("{host}:{port}"))
                        .await
                        .map_err(|e| tiberius_error(e, &self.address))
                }
                other => other.map_err(|e| tiberius_error(e, &self.address)),
            }
        })
        .await
    }

    /// Runs `sql` and converts at most `limit` rows; the client is reused only
    /// when the whole result was read.
    async fn query_rows(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        let mut loan = self.borrow().await?;
        let mut result = RowSet::default();
        let complete = {
            let mut stream = loan
                .client
                .simple_query(sql)
                .await
                .map_err(|e| tiberius_error(e, &self.address))?;
            if let Some(columns) = stream
                .columns()
                .await
                .map_err(|e| tiberius_error(e, &self.address))?
            {
                result.columns = columns.iter().map(|c| c.name().to_owned()).collect();
            }
            let mut rows = stream.into_row_stream();
            let mut complete = true;
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(|e| tiberius_error(e, &self.address))?
            {
                if row.result_index() > 0 {
                    continue;
                }
                if result.rows.len() >= limit as usize {
                    complete = false;
                    break;
                }
                result.rows.push(tiberius_row_to_json(&row)?);
            }
            complete
        };
        if complete {
            self.give_back(loan);
        }
        Ok(result)
    }

    fn strings(rows: &RowSet, column: usize) -> Vec<String> {
        let name = rows.columns.get(column).cloned().unwrap_or_default();
        rows.rows
            .iter()
            .filter_map(|row| row.get(&name).and_then(|v| v.as_str()).map(str::to_owned))
            .collect()
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        let rows = self
            .query_rows("SELECT CAST(@@VERSION AS nvarchar(4000)) AS version", 1)
            .await?;
        let version = Self::strings(&rows, 0)
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(version.lines().next().unwrap_or_default().trim().to_owned())
    }

    pub(crate) async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        let rows = self
            .query_rows(
                "SELECT name FROM sys.schemas \
                 WHERE schema_id < 16384 AND name NOT IN ('sys', 'INFORMATION_SCHEMA', 'guest') \
                 ORDER BY name",
                u32::MAX,
            )
            .await?;
        Ok(Self::strings(&rows, 0))
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        let rows = self
            .query_rows(
                "SELECT s.name AS table_schema, o.name AS table_name, \
                        RTRIM(o.type) AS table_type \
                 FROM sys.objects o JOIN sys.schemas s ON s.schema_id = o.schema_id \
                 WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0 \
                 ORDER BY s.name, o.name",
                u32::MAX,
            )
            .await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|row| {
                let text = |key: &str| row.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                Some(TableRef {
                    schema: text("table_schema"),
                    name: text("table_name")?,
                    kind: if text("table_type").as_deref() == Some("V") {
                        TableKind::View
                    } else {
                        TableKind::Table
                    },
                })
            })
            .collect())
    }

    pub(crate) async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>, ConnectError> {
        let mut loan = self.borrow().await?;
        let rows = {
            let mut query = tiberius::Query::new(
                "SELECT c.name, TYPE_NAME(c.user_type_id), c.is_nullable \
                 FROM sys.columns c \
                 JOIN sys.objects o ON o.object_id = c.object_id \
                 JOIN sys.schemas s ON s.schema_id = o.schema_id \
                 WHERE s.name = @P1 AND o.name = @P2 ORDER BY c.column_id",
            );
            query.bind(table.schema.clone().unwrap_or_else(|| "dbo".to_owned()));
            query.bind(table.name.clone());
            query
                .query(&mut loan.client)
                .await
                .map_err(|e| tiberius_error(e, &self.address))?
                .into_first_result()
                .await
                .map_err(|e| tiberius_error(e, &self.address))?
        };
        self.give_back(loan);
        Ok(rows
            .iter()
            .map(|row| ColumnInfo {
                name: row.get::<&str, _>(0).unwrap_or_default().to_owned(),
                data_type: row.get::<&str, _>(1).unwrap_or_default().to_owned(),
                nullable: row.get::<bool, _>(2).unwrap_or(true),
            })
            .collect())
    }

    /// `table` has been checked against [`Self::tables`].
    pub(crate) async fn preview(
        &self,
        table: &TableRef,
        limit: u32,
    ) -> Result<RowSet, ConnectError> {
        let sql = format!(
            "SELECT TOP ({limit}) * FROM {}",
            qualified_name(DbKind::Sqlserver, table.schema.as_deref(), &table.name)
        );
        self.query_rows(&sql, limit).await
    }

    pub(crate) async fn fetch_json(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        self.query_rows(sql, limit).await
    }

    /// The rows of a rendered pull-sync command, one at a time, converted
    /// and nested; see [`crate::Database::stream_batches`].
    ///
    /// The statement runs through `sp_executesql` with the values bound as
    /// `@P1…` parameters; tiberius decodes rows from the TDS stream as they
    /// are polled. Rows of result sets after the first are skipped, as in
    /// [`Self::fetch_json`]. The client goes back to the pool only when the
    /// whole result was read; a stream dropped early drops (closes) it.
    pub(crate) fn stream_rows<'a>(
        &'a self,
        query: &'a Rendered,
        batch_size: usize,
        cursor_field: Option<&'a str>,
    ) -> BatchStream<'a> {
        generate(move |mut out| async move {
            let run = async {
                let mut loan = self.borrow().await?;
                {
                    // The user's SQL is run as written, on purpose: it is the
                    // connector owner's own command, and every placeholder
                    // value is bound as a parameter by sluice-sqltpl's
                    // rendering, so none can change its structure.
                    let mut statement = tiberius::Query::new(query.sql.as_str());
                    for value in &query.binds {
                        statement.bind(sqlserver_param(value));
                    }
                    let mut rows = statement
                        .query(&mut loan.client)
                        .await
                        .map_err(|e| tiberius_error(e, &self.address))?
                        .into_row_stream();
                    let mut writer = BatchWriter::new(batch_size, cursor_field);
                    while let Some(row) = rows
                        .try_next()
                        .await
                        .map_err(|e| tiberius_error(e, &self.address))?
                    {
                        if row.result_index() > 0 {
                            continue;
                        }
                        let (_, done) =
                            writer.columns(row.columns().iter().map(|c| c.name()), || {
                                row.columns()
                                    .iter()
                                    .map(|c| ResultColumn {
                                        name: c.name().to_owned(),
                                        sort: CursorSort::sqlserver(c.column_type()),
                                    })
                                    .collect()
                            });
                        if !send_batch(&mut out, done).await
                            || !push_converted(&mut out, &mut writer, tiberius_row_to_json(&row))
                                .await
                        {
                            return Ok(());
                        }
                    }
                    if !send_batch(&mut out, writer.finish()).await {
                        return Ok(());
                    }
                }
                self.give_back(loan);
                Ok::<(), ConnectError>(())
            };
            if let Err(error) = run.await {
                let _ = out.send(Err(error)).await;
            }
        })
    }

    /// Runs `statements` in one transaction; see [`crate::Database::execute_in_transaction`].
    ///
    /// BEGIN/COMMIT/ROLLBACK go as plain batches; each statement runs as a
    /// batch of its own through `sp_executesql` (no parameters: its values
    /// are literals), which reports the rows it changed. `XACT_ABORT` makes
    /// the server roll the whole transaction back on any run-time error; it is
    /// switched off again at the end, as pull commands on the same pooled
    /// client expect the default. The client goes back to the pool only after
    /// a clean end.
    pub(crate) async fn execute_in_transaction(
        &self,
        statements: &[String],
        finish: Finish,
    ) -> Result<Vec<u64>, ExecError> {
        let mut loan = self.borrow().await.map_err(ExecError::outside)?;
        let timeout = self.limits.query_timeout;
        let fail = |e| tiberius_error(e, &self.address);
        let control = async |loan: &mut Loan, sql: &str, what: &str| {
            within(timeout, what, async {
                loan.client
                    .simple_query(sql)
                    .await
                    .map_err(fail)?
                    .into_results()
                    .await
                    .map_err(fail)?;
                Ok(())
            })
            .await
            .map_err(ExecError::outside)
        };
        control(
            &mut loan,
            "SET XACT_ABORT ON; BEGIN TRANSACTION",
            "beginning the transaction",
        )
        .await?;
        let mut counts = Vec::with_capacity(statements.len());
        for (index, sql) in statements.iter().enumerate() {
            // Rendered by sluice-sqltpl: every value is an N'…' or numeric
            // literal that cannot change the statement's structure.
            let ran = within(timeout, "the statement", async {
                loan.client
                    .execute(sql.as_str(), &[])
                    .await
                    .map(tiberius::ExecuteResult::total)
                    .map_err(fail)
            })
            .await;
            match ran {
                Ok(count) => counts.push(count),
                Err(failure @ ConnectError::Timeout(_)) => {
                    return Err(ExecError::at(index, failure));
                }
                Err(failure) => {
                    let rolled_back = control(
                        &mut loan,
                        "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION; SET XACT_ABORT OFF",
                        "rolling back",
                    )
                    .await;
                    if rolled_back.is_ok() {
                        self.give_back(loan);
                    }
                    return Err(ExecError::at(index, failure));
                }
            }
        }
        let end = match finish {
            Finish::Commit => "COMMIT TRANSACTION; SET XACT_ABORT OFF",
            Finish::Rollback => "ROLLBACK TRANSACTION; SET XACT_ABORT OFF",
        };
        control(&mut loan, end, "ending the transaction").await?;
        self.give_back(loan);
        Ok(counts)
    }

    pub(crate) async fn close(&self) {
        self.permits.close();
        let clients = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => Vec::new(),
        };
        for client in clients {
            let _ = client.close().await;
        }
    }
}

/// A bound value as tiberius sends it: NULL as a NULL `nvarchar` (SQL Server
/// converts it to the column's type), booleans as `bit`, integers as
/// `bigint`, floats as `float`, text as `nvarchar` (Unicode, never `varchar`,
/// so no character is lost to a code page).
pub(crate) fn sqlserver_param(value: &BindValue) -> ColumnData<'static> {
    match value {
        BindValue::Null => ColumnData::String(None),
        BindValue::Bool(flag) => ColumnData::Bit(Some(*flag)),
        BindValue::Int(int) => ColumnData::I64(Some(*int)),
        BindValue::Float(float) => ColumnData::F64(Some(*float)),
        BindValue::Text(text) => ColumnData::String(Some(text.clone().into())),
    }
}

/// TLS: "disabled" sends nothing encrypted that the server does not insist
/// on; every other mode checks the certificate chain and host name (tiberius
/// always checks both), and "preferred" only goes without TLS when the server
/// has none. The certificate check is never switched off.
fn client_config(params: &ConnectionParams, limits: Limits) -> Result<Config, ConnectError> {
    let host = required(params.host.as_deref(), "server")?;
    let username = required(params.username.as_deref(), "username")?;
    let instance = params
        .options
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("instanceName"))
        .map(|(_, value)| value.as_str());
    if let (Some(instance), None) = (instance, params.port) {
        return Err(ConnectError::config(
            "port",
            format!(
                "the named instance {} needs its port: Sluice does not ask SQL Browser",
                crate::connstr::quoted(instance)
            ),
        ));
    }
    let mut config = Config::new();
    config.host(host);
    config.port(params.effective_port().unwrap_or(1433));
    if let Some(database) = params.database.as_deref() {
        config.database(database);
    }
    config.application_name("sluice");
    config.authentication(AuthMethod::sql_server(
        username,
        params.password.as_deref().unwrap_or_default(),
    ));
    config.encryption(match params.tls {
        TlsMode::Disabled => EncryptionLevel::NotSupported,
        TlsMode::Preferred => EncryptionLevel::On,
        TlsMode::Required | TlsMode::VerifyFull => EncryptionLevel::Required,
    });
    if let Some(ca) = ca_file(params) {
        config.trust_cert_ca(ca);
    }
    config.handshake_timeout(Some(limits.connect_timeout));
    Ok(config)
}

async fn open_client(config: Config, address: &str) -> Result<SqlClient, tiberius::error::Error> {
    let tcp =
        TcpStream::connect(config.get_addr())
            .await
            .map_err(|e| tiberius::error::Error::Io {
                kind: e.kind(),
                message: format!("{address}: {e}"),
            })?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Classifies a tiberius failure; server errors by their number.
fn tiberius_error(error: tiberius::error::Error, address: &str) -> ConnectError {
    match error {
        tiberius::error::Error::Io { kind, message } => {
            io_error(address, &std::io::Error::new(kind, message))
        }
        tiberius::error::Error::Tls(message) => ConnectError::Tls(message),
        tiberius::error::Error::Server(token) => {
            server_error(token.code(), token.message().to_owned())
        }
        other => ConnectError::Driver(other.to_string()),
    }
}

fn server_error(code: u32, message: String) -> ConnectError {
    match code {
        18456 => ConnectError::Authentication(message),
        4060 | 911 => ConnectError::UnknownDatabase(message),
        _ => ConnectError::Query(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> ConnectionParams {
        crate::parse_connection_string(text, Some(DbKind::Sqlserver))
            .expect("valid connection string")
    }

    #[test]
    fn named_instances_need_a_port() {
        let p = params("Server=db\\SQLEXPRESS;Database=x;User Id=u;Password=p");
        let error = client_config(&p, Limits::default()).expect_err("no port");
        assert!(
            matches!(&error, ConnectError::Config { field, .. } if field == "port"),
            "{error}"
        );
    }

    #[test]
    fn bind_values_become_typed_parameters() {
        assert_eq!(sqlserver_param(&BindValue::Null), ColumnData::String(None));
        assert_eq!(
            sqlserver_param(&BindValue::Bool(true)),
            ColumnData::Bit(Some(true))
        );
        assert_eq!(
            sqlserver_param(&BindValue::Int(i64::MIN)),
            ColumnData::I64(Some(i64::MIN))
        );
        assert_eq!(
            sqlserver_param(&BindValue::Float(-1.5)),
            ColumnData::F64(Some(-1.5))
        );
        // Hostile text is data: it travels as a parameter, byte for byte.
        let hostile = "x'; DROP TABLE invoices; --\0\u{0}é";
        assert_eq!(
            sqlserver_param(&BindValue::Text(hostile.to_owned())),
            ColumnData::String(Some(hostile.into()))
        );
    }

    #[test]
    fn server_error_numbers_are_classified() {
        assert_eq!(
            server_error(18456, String::new()).category(),
            "authentication"
        );
        assert_eq!(
            server_error(4060, String::new()).category(),
            "unknown_database"
        );
        assert_eq!(server_error(208, String::new()).category(), "query");
    }

    #[test]
    fn io_failures_name_the_address() {
        let error = tiberius_error(
            tiberius::error::Error::Io {
                kind: std::io::ErrorKind::ConnectionRefused,
                message: "refused".into(),
            },
            "db:1433",
        );
        assert_eq!(error.category(), "unreachable");
        assert!(error.to_string().contains("db:1433"), "{error}");
    }
}
