//! Oracle through the `oracle` crate (ODPI-C). The driver blocks, so every
//! call runs on Tokio's blocking threads; the Oracle client libraries are
//! loaded at the first connection, not at build time.
//!
//! TLS: "required" and "verify-full" connect over TCPS with the server's
//! certificate name checked (`ssl_server_dn_match`); CA certificates come from
//! an Oracle wallet (`wallet_location` option), as Oracle Net has no PEM
//! setting. Oracle listeners serve TCP and TCPS on separate ports with no
//! negotiation between them, so "preferred" connects over plain TCP: a plain
//! listener offers no TLS to prefer.

use std::sync::Arc;

use oracle::pool::{GetMode, Pool, PoolBuilder};
use oracle::{Connection, ResultSet, Row};

use super::{address, connect_within, refuse_disabled_certificate_checks, required};
use crate::connstr::{ConnectionParams, OracleTarget};
use crate::cursor::{CursorSort, ResultColumn};
use crate::database::{ColumnInfo, Limits, RowSet, TableKind, TableRef};
use crate::error::ConnectError;
use crate::ident::qualified_name;
use crate::kind::{DbKind, TlsMode};
use crate::stream::{BatchStream, BatchWriter, converted, generate, push_converted, send_batch};
use crate::transaction::{ExecError, Finish, oracle_statement};
use crate::value::oracle_row_to_json;
use sluice_sqltpl::{BindValue, Rendered};

const USER_SCHEMAS: &str = "SELECT username FROM all_users WHERE oracle_maintained = 'N'";

pub struct OracleDatabase {
    pool: Arc<Pool>,
    limits: Limits,
    address: String,
}

impl OracleDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<OracleDatabase, ConnectError> {
        refuse_disabled_certificate_checks(params)?;
        let address = address(params);
        let username = required(params.username.as_deref(), "username")?.to_owned();
        let password = params.password.clone().unwrap_or_default();
        let target = connect_target(params)?;
        let max = limits.max_connections;
        let wait = limits.connect_timeout;
        let build = move || -> Result<Pool, oracle::Error> {
            let pool = PoolBuilder::new(username, password, target)
                .min_connections(0)
                .max_connections(max)
                .get_mode(GetMode::TimedWait(wait))
                .build()?;
            // Open one session now, so a wrong password fails here.
            pool.get()?.close()?;
            Ok(pool)
        };
        let pool = connect_within(limits.connect_timeout, &address, async {
            tokio::task::spawn_blocking(build)
                .await
                .map_err(|e| ConnectError::Driver(e.to_string()))?
                .map_err(|e| oracle_error(&e, &address))
        })
        .await?;
        Ok(OracleDatabase {
            pool: Arc::new(pool),
            limits,
            address,
        })
    }

    pub(crate) fn kind(&self) -> DbKind {
        DbKind::Oracle
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `work` with a pooled session on a blocking thread. The session's
    /// call timeout stops the server-side work when the query timeout passes.
    async fn with_session<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, ConnectError> + Send + 'static,
    ) -> Result<T, ConnectError> {
        let pool = Arc::clone(&self.pool);
        let address = self.address.clone();
        let call_timeout = self.limits.query_timeout;
        tokio::task::spawn_blocking(move || {
            let session = pool.get().map_err(|e| oracle_error(&e, &address))?;
            session
                .set_call_timeout(Some(call_timeout))
                .map_err(|e| oracle_error(&e, &address))?;
            work(&session)
        })
        .await
        .map_err(|e| ConnectError::Driver(e.to_string()))?
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        let address = self.address.clone();
        self.with_session(move |session| {
            let (version, banner) = session
                .server_version()
                .map_err(|e| oracle_error(&e, &address))?;
            let banner = banner.lines().next().unwrap_or_default().trim().to_owned();
            Ok(if banner.is_empty() {
                version.to_string()
            } else {
                banner
            })
        })
        .await
    }

    pub(crate) async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        let address = self.address.clone();
        self.with_session(move |session| {
            strings(
                session,
                &format!("{USER_SCHEMAS} ORDER BY username"),
                &[],
                &address,
            )
        })
        .await
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        let address = self.address.clone();
        self.with_session(move |session| {
            let sql = format!(
                "SELECT owner, table_name, 'TABLE' FROM all_tables WHERE owner IN ({USER_SCHEMAS}) \
                 UNION ALL \
                 SELECT owner, view_name, 'VIEW' FROM all_views WHERE owner IN ({USER_SCHEMAS}) \
                 ORDER BY 1, 2"
            );
            let rows = session
                .query(&sql, &[])
                .map_err(|e| oracle_error(&e, &address))?;
            rows.map(|row| {
                let row = row.map_err(|e| oracle_error(&e, &address))?;
                let text = |index: usize| -> Result<String, ConnectError> {
                    row.get::<usize, String>(index)
                        .map_err(|e| oracle_error(&e, &address))
                };
                Ok(TableRef {
                    schema: Some(text(0)?),
                    name: text(1)?,
                    kind: if text(2)? == "VIEW" {
                        TableKind::View
                    } else {
                        TableKind::Table
                    },
                })
            })
            .collect()
        })
        .await
    }

    pub(crate) async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>, ConnectError> {
        let address = self.address.clone();
        let owner = table.schema.clone().unwrap_or_default();
        let name = table.name.clone();
        self.with_session(move |session| {
            let rows = session
                .query(
                    "SELECT column_name, data_type, nullable FROM all_tab_columns \
                     WHERE owner = :1 AND table_name = :2 ORDER BY column_id",
                    &[&owner, &name],
                )
                .map_err(|e| oracle_error(&e, &address))?;
            rows.map(|row| {
                let row = row.map_err(|e| oracle_error(&e, &address))?;
                let text = |index: usize| -> Result<String, ConnectError> {
                    row.get::<usize, Option<String>>(index)
                        .map(Option::unwrap_or_default)
                        .map_err(|e| oracle_error(&e, &address))
                };
                Ok(ColumnInfo {
                    name: text(0)?,
                    data_type: text(1)?,
                    nullable: text(2)? == "Y",
                })
            })
            .collect()
        })
        .await
    }

    /// `table` has been checked against [`Self::tables`].
    pub(crate) async fn preview(
        &self,
        table: &TableRef,
        limit: u32,
    ) -> Result<RowSet, ConnectError> {
        let sql = format!(
            "SELECT * FROM {} FETCH FIRST {limit} ROWS ONLY",
            qualified_name(DbKind::Oracle, table.schema.as_deref(), &table.name)
        );
        self.fetch_json(&sql, limit).await
    }

    pub(crate) async fn fetch_json(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        let address = self.address.clone();
        let sql = sql.to_owned();
        self.with_session(move |session| {
            let rows = session
                .query(&sql, &[])
                .map_err(|e| oracle_error(&e, &address))?;
            collect_rows(rows, limit, &address)
        })
        .await
    }

    /// The rows of a rendered pull-sync command, one at a time, converted
    /// and nested; see [`crate::Database::stream_batches`].
    ///
    /// The driver blocks, so a blocking thread holds the session, runs the
    /// statement with the values bound positionally (`:1…`), fetches rows
    /// [`ORACLE_FETCH_ARRAY_SIZE`] at a time, and hands them over through a
    /// channel of [`ORACLE_ROW_BUFFER`] rows; when the stream is dropped the
    /// channel closes and the thread stops, releasing the session. The
    /// session's call timeout bounds each round trip, not the whole result.
    /// A statement that is not a query (a command may write, seed 001) is
    /// executed and committed, and yields no rows.
    pub(crate) fn stream_rows<'a>(
        &'a self,
        query: &'a Rendered,
        batch_size: usize,
        cursor_field: Option<&'a str>,
    ) -> BatchStream<'a> {
        let pool = Arc::clone(&self.pool);
        let address = self.address.clone();
        let call_timeout = self.limits.query_timeout;
        let sql = query.sql.clone();
        let binds: Vec<OracleBind> = query.binds.iter().map(oracle_bind).collect();
        generate(move |mut out| async move {
            let (sender, mut receiver) = tokio::sync::mpsc::channel(ORACLE_ROW_BUFFER);
            let worker = tokio::task::spawn_blocking(move || {
                let send = |item| sender.blocking_send(item).is_ok();
                let run = || -> Result<(), ConnectError> {
                    let fail = |e: oracle::Error| oracle_error(&e, &address);
                    let session = pool.get().map_err(fail)?;
                    session.set_call_timeout(Some(call_timeout)).map_err(fail)?;
                    // The user's SQL is run as written, on purpose: it is
                    // the connector owner's own command, and every
                    // placeholder value is bound by position, so none can
                    // change its structure.
                    let mut statement = session
                        .statement(&sql)
                        .fetch_array_size(ORACLE_FETCH_ARRAY_SIZE)
                        .build()
                        .map_err(fail)?;
                    let values: Vec<Box<dyn oracle::sql_type::ToSql>> =
                        binds.iter().map(OracleBind::to_sql).collect();
                    let params: Vec<&dyn oracle::sql_type::ToSql> =
                        values.iter().map(|value| value.as_ref()).collect();
                    if !statement.is_query() {
                        statement.execute(&params).map_err(fail)?;
                        return session.commit().map_err(fail);
                    }
                    let rows = statement.query(&params).map_err(fail)?;
                    let columns = rows
                        .column_info()
                        .iter()
                        .map(|c| ResultColumn {
                            name: c.name().to_owned(),
                            sort: CursorSort::oracle(c.oracle_type()),
                        })
                        .collect::<Vec<_>>();
                    if !send(Ok(Streamed::Columns(columns))) {
                        return Ok(());
                    }
                    for row in rows {
                        let item = converted(oracle_row_to_json(&row.map_err(fail)?));
                        let failed = item.is_err();
                        if !send(item.map(Streamed::Row)) || failed {
                            break;
                        }
                    }
                    Ok(())
                };
                if let Err(error) = run() {
                    send(Err(error));
                }
            });
            let mut writer = BatchWriter::new(batch_size, cursor_field);
            while let Some(item) = receiver.recv().await {
                let more = match item {
                    Ok(Streamed::Columns(columns)) => {
                        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                        let (_, done) =
                            writer.columns(names.iter().map(String::as_str), || columns);
                        send_batch(&mut out, done).await
                    }
                    Ok(Streamed::Row(row)) => push_converted(&mut out, &mut writer, Ok(row)).await,
                    Err(error) => {
                        let _ = out.send(Err(error)).await;
                        false
                    }
                };
                if !more {
                    return;
                }
            }
            if !send_batch(&mut out, writer.finish()).await {
                return;
            }
            if let Err(error) = worker.await {
                let _ = out.send(Err(ConnectError::Driver(error.to_string()))).await;
            }
        })
    }

    /// Runs `statements` in one transaction; see [`crate::Database::execute_in_transaction`].
    ///
    /// A session from the pool does not autocommit, so the statements form
    /// one transaction that ends with COMMIT or ROLLBACK. Each is one
    /// statement or PL/SQL block (a trailing `;` after plain SQL is dropped).
    /// The session's call timeout bounds each round trip. A session whose
    /// rollback failed is dropped from the pool rather than reused.
    pub(crate) async fn execute_in_transaction(
        &self,
        statements: &[String],
        finish: Finish,
    ) -> Result<Vec<u64>, ExecError> {
        let pool = Arc::clone(&self.pool);
        let address = self.address.clone();
        let call_timeout = self.limits.query_timeout;
        let statements = statements.to_vec();
        tokio::task::spawn_blocking(move || {
            let fail = |e: oracle::Error| oracle_error(&e, &address);
            let session = pool.get().map_err(|e| ExecError::outside(fail(e)))?;
            session
                .set_call_timeout(Some(call_timeout))
                .map_err(|e| ExecError::outside(fail(e)))?;
            let mut counts = Vec::with_capacity(statements.len());
            for (index, sql) in statements.iter().enumerate() {
                // Rendered by sluice-sqltpl: every value is a literal that
                // cannot change the statement's structure.
                let ran = session
                    .execute(oracle_statement(sql), &[])
                    .and_then(|statement| statement.row_count());
                match ran {
                    Ok(count) => counts.push(count),
                    Err(error) => {
                        if session.rollback().is_err() {
                            let _ = session.close_with_mode(oracle::conn::CloseMode::Drop);
                        }
                        return Err(ExecError::at(index, fail(error)));
                    }
                }
            }
            let ended = match finish {
                Finish::Commit => session.commit(),
                Finish::Rollback => session.rollback(),
            };
            if let Err(error) = ended {
                let _ = session.close_with_mode(oracle::conn::CloseMode::Drop);
                return Err(ExecError::outside(fail(error)));
            }
            Ok(counts)
        })
        .await
        .map_err(|e| ExecError::outside(ConnectError::Driver(e.to_string())))?
    }

    pub(crate) async fn close(&self) {
        let pool = Arc::clone(&self.pool);
        let _ =
            tokio::task::spawn_blocking(move || pool.close(&oracle::pool::CloseMode::Force)).await;
    }
}

/// What the blocking thread hands over: the result's columns, then its rows.
enum Streamed {
    Columns(Vec<ResultColumn>),
    Row(serde_json::Map<String, serde_json::Value>),
}

/// Rows fetched from the server per round trip while streaming.
pub(crate) const ORACLE_FETCH_ARRAY_SIZE: u32 = 500;

/// Converted rows waiting between the blocking thread and the stream.
pub(crate) const ORACLE_ROW_BUFFER: usize = 500;

/// A bound value as Oracle receives it. Oracle SQL (before 23ai) has no
/// boolean type, so booleans bind as the numbers 1 and 0, the usual
/// `NUMBER(1)` flag; NULL binds as a NULL `VARCHAR2`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OracleBind {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

pub(crate) fn oracle_bind(value: &BindValue) -> OracleBind {
    match value {
        BindValue::Null => OracleBind::Null,
        BindValue::Bool(flag) => OracleBind::Int(i64::from(*flag)),
        BindValue::Int(int) => OracleBind::Int(*int),
        BindValue::Float(float) => OracleBind::Float(*float),
        BindValue::Text(text) => OracleBind::Text(text.clone()),
    }
}

impl OracleBind {
    fn to_sql(&self) -> Box<dyn oracle::sql_type::ToSql> {
        match self {
            OracleBind::Null => Box::new(None::<String>),
            OracleBind::Int(int) => Box::new(*int),
            OracleBind::Float(float) => Box::new(*float),
            OracleBind::Text(text) => Box::new(text.clone()),
        }
    }
}

fn collect_rows(
    rows: ResultSet<'_, Row>,
    limit: u32,
    address: &str,
) -> Result<RowSet, ConnectError> {
    let mut result = RowSet {
        columns: rows
            .column_info()
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        rows: Vec::new(),
    };
    for row in rows.take(limit as usize) {
        let row = row.map_err(|e| oracle_error(&e, address))?;
        result.rows.push(oracle_row_to_json(&row)?);
    }
    Ok(result)
}

fn strings(
    session: &Connection,
    sql: &str,
    params: &[&dyn oracle::sql_type::ToSql],
    address: &str,
) -> Result<Vec<String>, ConnectError> {
    let rows = session
        .query(sql, params)
        .map_err(|e| oracle_error(&e, address))?;
    rows.map(|row| {
        row.and_then(|row| row.get::<usize, String>(0))
            .map_err(|e| oracle_error(&e, address))
    })
    .collect()
}

/// An EZConnect string (`//host:port/service`, `tcps://…`) or, for a SID, a
/// connect descriptor built from validated parts.
pub(crate) fn connect_target(params: &ConnectionParams) -> Result<String, ConnectError> {
    let host = required(params.host.as_deref(), "server")?;
    let port = params.effective_port().unwrap_or(1521);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let secure = matches!(params.tls, TlsMode::Required | TlsMode::VerifyFull);
    let wallet = params
        .options
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("wallet_location"))
        .map(|(_, value)| value.clone());
    if let Some(wallet) = &wallet
        && wallet.contains(['(', ')', '=', '?', '&'])
    {
        return Err(ConnectError::config(
            "wallet_location",
            "must be a plain directory path",
        ));
    }
    let target = params
        .oracle_service
        .clone()
        .or_else(|| params.database.clone().map(OracleTarget::ServiceName))
        .ok_or_else(|| ConnectError::config("database", "is required (a service name or SID)"))?;
    let name = target.name().to_owned();
    if name.contains(['(', ')', '=', '/', '?', '&', ' ']) {
        return Err(ConnectError::config(
            "database",
            "is not a valid service name or SID",
        ));
    }
    Ok(match (target, secure) {
        (OracleTarget::ServiceName(_), false) => format!("//{host}:{port}/{name}"),
        (OracleTarget::ServiceName(_), true) => {
            let mut text = format!("tcps://{host}:{port}/{name}?ssl_server_dn_match=true");
            if let Some(wallet) = wallet {
                text.push_str(&format!("&wallet_location={wallet}"));
            }
            text
        }
        (OracleTarget::Sid(_), secure) => {
            let protocol = if secure { "TCPS" } else { "TCP" };
            let security = match (secure, wallet) {
                (true, Some(wallet)) => {
                    format!("(SECURITY=(SSL_SERVER_DN_MATCH=TRUE)(MY_WALLET_DIRECTORY={wallet}))")
                }
                (true, None) => "(SECURITY=(SSL_SERVER_DN_MATCH=TRUE))".to_owned(),
                (false, _) => String::new(),
            };
            format!(
                "(DESCRIPTION=(ADDRESS=(PROTOCOL={protocol})(HOST={host})(PORT={port}))\
                 (CONNECT_DATA=(SID={name})){security})"
            )
        }
    })
}

/// Classifies an Oracle failure by its ORA- or DPI- number.
fn oracle_error(error: &oracle::Error, address: &str) -> ConnectError {
    let message = error.to_string();
    if error.dpi_code() == Some(1047) {
        return ConnectError::Unsupported(format!(
            "the Oracle client libraries (Instant Client) are not installed: {message}"
        ));
    }
    if error.dpi_code() == Some(1067) {
        return ConnectError::Timeout(message);
    }
    match error.oci_code() {
        Some(1017 | 1005 | 28000) => ConnectError::Authentication(message),
        Some(12514 | 12505 | 12154) => ConnectError::UnknownDatabase(message),
        Some(12541 | 12543 | 12545 | 12170 | 12535 | 12537) => {
            ConnectError::Unreachable(format!("{address}: {message}"))
        }
        Some(29024 | 29002 | 28759 | 28860 | 29003 | 29039) => ConnectError::Tls(message),
        Some(3136 | 3156 | 1013) => ConnectError::Timeout(message),
        Some(_) => ConnectError::Query(message),
        None => ConnectError::Driver(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> ConnectionParams {
        crate::parse_connection_string(text, None).expect("valid connection string")
    }

    #[test]
    fn service_names_use_ezconnect_and_tls_uses_tcps() {
        let plain = params("jdbc:oracle:thin:u/p@//db.example.com:1522/ORCLPDB?sslmode=disable");
        assert_eq!(
            connect_target(&plain).as_deref(),
            Ok("//db.example.com:1522/ORCLPDB")
        );
        let secure = params("jdbc:oracle:thin:u/p@//db.example.com/ORCLPDB?sslmode=verify-full");
        assert_eq!(
            connect_target(&secure).as_deref(),
            Ok("tcps://db.example.com:1521/ORCLPDB?ssl_server_dn_match=true")
        );
    }

    #[test]
    fn bind_values_become_positional_parameters() {
        assert_eq!(oracle_bind(&BindValue::Null), OracleBind::Null);
        assert_eq!(oracle_bind(&BindValue::Bool(true)), OracleBind::Int(1));
        assert_eq!(oracle_bind(&BindValue::Bool(false)), OracleBind::Int(0));
        assert_eq!(oracle_bind(&BindValue::Int(-7)), OracleBind::Int(-7));
        assert_eq!(oracle_bind(&BindValue::Float(0.5)), OracleBind::Float(0.5));
        let hostile = "x'; DROP TABLE invoices; --\u{0}";
        assert_eq!(
            oracle_bind(&BindValue::Text(hostile.to_owned())),
            OracleBind::Text(hostile.to_owned())
        );
    }

    #[test]
    fn sids_use_a_descriptor() {
        let sid = params("jdbc:oracle:thin:u/p@db.example.com:1521:XE");
        let target = connect_target(&sid).expect("target");
        assert!(target.contains("(SID=XE)"), "{target}");
        assert!(target.contains("(PROTOCOL=TCP)"), "{target}");
    }

    #[test]
    fn hostile_names_are_refused() {
        let mut p = params("jdbc:oracle:thin:u/p@db.example.com:1521:XE");
        p.oracle_service = Some(OracleTarget::Sid("XE)(HOST=evil".into()));
        assert_eq!(
            connect_target(&p).expect_err("refused").category(),
            "config"
        );
    }
}
