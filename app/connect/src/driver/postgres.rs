//! PostgreSQL through sqlx.

use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection, Executor, Row, SqlSafeStr, Statement,
};

use super::{
    address, ca_file, no_answer, plaintext_fallback, refuse_disabled_certificate_checks, required,
    server_refused_tls, sqlx_error, tls_not_offered,
};
use crate::connstr::ConnectionParams;
use crate::cursor::{CursorSort, ResultColumn};
use crate::database::{ColumnInfo, Limits, RowSet, TableKind, TableRef};
use crate::error::ConnectError;
use crate::ident::qualified_name;
use crate::kind::{DbKind, TlsMode};
use crate::stream::{BatchStream, BatchWriter, Held, failed, generate, send_batch};
use crate::transaction::{ExecError, Finish, SqlxTransaction};
use crate::value::pg_row_to_json;
use crate::value::postgres::PgRowWriter;
use sluice_sqltpl::Rendered;

pub struct PgDatabase {
    pool: PgPool,
    limits: Limits,
    address: String,
}

impl PgDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<PgDatabase, ConnectError> {
        refuse_disabled_certificate_checks(params)?;
        let address = address(params);
        let options = connect_options(params, limits)?;
        let options = match probe(&options, limits).await {
            None => return Err(no_answer(&address, limits)),
            Some(Ok(())) => options,
            Some(Err(error)) if params.tls == TlsMode::Preferred && server_refused_tls(&error) => {
                plaintext_fallback(params, &address)?;
                let plain = options.ssl_mode(PgSslMode::Disable);
                match probe(&plain, limits).await {
                    None => return Err(no_answer(&address, limits)),
                    Some(Err(error)) => return Err(sqlx_error(error, &address)),
                    Some(Ok(())) => plain,
                }
            }
            Some(Err(error)) if server_refused_tls(&error) => {
                return Err(tls_not_offered(params, &address));
            }
            Some(Err(error)) => return Err(sqlx_error(error, &address)),
        };
        let pool = PgPoolOptions::new()
            .max_connections(limits.max_connections)
            .acquire_timeout(limits.connect_timeout)
            .idle_timeout(std::time::Duration::from_secs(300))
            .connect_lazy_with(options);
        Ok(PgDatabase {
            pool,
            limits,
            address,
        })
    }

    pub(crate) fn kind(&self) -> DbKind {
        DbKind::Postgres
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn error(&self, error: sqlx::Error) -> ConnectError {
        sqlx_error(error, &self.address)
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        sqlx::query_scalar::<_, String>("SELECT 'PostgreSQL ' || current_setting('server_version')")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        sqlx::query_scalar::<_, String>(
            "SELECT nspname::text FROM pg_namespace \
             WHERE nspname NOT IN ('pg_catalog', 'information_schema') \
               AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%' \
             ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        let rows = sqlx::query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                let relkind: String = row.try_get(2)?;
                Ok(TableRef {
                    schema: Some(row.try_get(0)?),
                    name: row.try_get(1)?,
                    kind: if matches!(relkind.as_str(), "v" | "m") {
                        TableKind::View
                    } else {
                        TableKind::Table
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>, ConnectError> {
        let rows = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(table.schema.as_deref().unwrap_or("public"))
        .bind(&table.name)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                Ok(ColumnInfo {
                    name: row.try_get(0)?,
                    data_type: row.try_get(1)?,
                    nullable: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error(e))
    }

    /// `table` has been checked against [`Self::tables`].
    pub(crate) async fn preview(
        &self,
        table: &TableRef,
        limit: u32,
    ) -> Result<RowSet, ConnectError> {
        let sql = format!(
            "SELECT * FROM {} LIMIT {limit}",
            qualified_name(DbKind::Postgres, table.schema.as_deref(), &table.name)
        );
        self.fetch_json(&sql, limit).await
    }

    pub(crate) async fn fetch_json(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.error(e))?;
        let mut tx = conn
            .begin_with("BEGIN READ ONLY")
            .await
            .map_err(|e| self.error(e))?;
        let mut result = RowSet::default();
        {
            let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                if result.rows.is_empty() {
                    result.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                }
                result.rows.push(pg_row_to_json(&row)?);
                if result.rows.len() >= limit as usize {
                    break;
                }
            }
        }
        if result.rows.is_empty() {
            let statement = (&mut *tx)
                .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
                .await
                .map_err(|e| self.error(e))?;
            result.columns = statement
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
        }
        tx.rollback().await.map_err(|e| self.error(e))?;
        Ok(result)
    }

    /// The rows of a rendered pull-sync command, one at a time, converted
    /// and nested; see [`crate::Database::stream_batches`].
    ///
    /// sqlx runs the statement with the extended protocol and reads each row
    /// off the socket as the stream is polled: the server sends rows as it
    /// produces them and TCP flow control holds it back while the consumer is
    /// busy, so nothing here buffers the result. Only one statement is
    /// accepted (the extended protocol refuses `a; b`), and no transaction is
    /// opened: a command may write (seed 001).
    ///
    /// The connection's `statement_timeout` (the query timeout, set when the
    /// pool connects) would cancel a long pull whose consumer is slow, so it
    /// is lifted for the stream and restored once the result has been read;
    /// the query timeout then bounds the wait for each batch on the client.
    /// A stream dropped before the end closes its connection instead of
    /// returning it to the pool (see [`Held`]).
    pub(crate) fn stream_rows<'a>(
        &'a self,
        query: &'a Rendered,
        batch_size: usize,
        cursor_field: Option<&'a str>,
    ) -> BatchStream<'a> {
        if !query.binds.is_empty() {
            // sluice-sqltpl writes PostgreSQL values as literals, never binds.
            return failed(ConnectError::Query(
                "a PostgreSQL statement takes no bound values".to_owned(),
            ));
        }
        generate(move |mut out| async move {
            let run = async {
                let connection = self.pool.acquire().await.map_err(|e| self.error(e))?;
                let mut held = Held::new(connection);
                (&mut *held.connection)
                    .execute("SET statement_timeout = 0")
                    .await
                    .map_err(|e| self.error(e))?;
                // sluice-sqltpl reads the template's '…' literals the standard way;
                // an earlier command on this pooled connection may have turned
                // that off, which would move where a literal ends.
                (&mut *held.connection)
                    .execute("SET standard_conforming_strings = on")
                    .await
                    .map_err(|e| self.error(e))?;
                {
                    // The user's SQL is run as written, on purpose: it is the
                    // connector owner's own command, and every placeholder
                    // value in it was rendered by sluice-sqltpl as a
                    // dollar-quoted literal that cannot change its structure.
                    let sql = AssertSqlSafe(query.sql.clone());
                    let mut rows = sqlx::query(sql)
                        .persistent(false)
                        .fetch(&mut *held.connection);
                    let mut writer = BatchWriter::new(batch_size, cursor_field);
                    let mut row_writer: Option<PgRowWriter> = None;
                    while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                        let (changed, done) =
                            writer.columns(row.columns().iter().map(|c| c.name()), || {
                                row.columns()
                                    .iter()
                                    .map(|c| ResultColumn {
                                        name: c.name().to_owned(),
                                        sort: CursorSort::postgres(c.type_info()),
                                    })
                                    .collect()
                            });
                        if !send_batch(&mut out, done).await {
                            return Ok(());
                        }
                        let row_writer = match &mut row_writer {
                            Some(current) if !changed => current,
                            slot => slot.insert(PgRowWriter::new(row.columns())),
                        };
                        match row_writer.write(&row, &mut writer) {
                            Ok(full) => {
                                if !send_batch(&mut out, full).await {
                                    return Ok(());
                                }
                            }
                            Err(error) => {
                                let error = ConnectError::Query(error.to_string());
                                let _ = out.send(Err(error)).await;
                                return Ok(());
                            }
                        }
                    }
                    if !send_batch(&mut out, writer.finish()).await {
                        return Ok(());
                    }
                }
                (&mut *held.connection)
                    .execute("RESET statement_timeout")
                    .await
                    .map_err(|e| self.error(e))?;
                held.finish();
                Ok::<(), ConnectError>(())
            };
            if let Err(error) = run.await {
                let _ = out.send(Err(error)).await;
            }
        })
    }

    /// Runs `statements` in one transaction; see [`crate::Database::execute_in_transaction`].
    pub(crate) async fn execute_in_transaction(
        &self,
        statements: &[String],
        finish: Finish,
    ) -> Result<Vec<u64>, ExecError> {
        let connection = self
            .pool
            .acquire()
            .await
            .map_err(|e| ExecError::outside(self.error(e)))?;
        SqlxTransaction {
            // sluice-sqltpl reads the template's own '…' literals the standard
            // way (values are dollar-quoted and do not depend on it).
            prepare: &["SET standard_conforming_strings = on"],
            begin: "BEGIN",
            query_timeout: self.limits.query_timeout,
        }
        .run(
            Held::new(connection),
            statements,
            finish,
            |e| self.error(e),
            |result| result.rows_affected(),
        )
        .await
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Preferred TLS starts as verify-full; only a server without TLS at all
/// (it answers 'N' to SSLRequest) gets a plain connection.
fn connect_options(
    params: &ConnectionParams,
    limits: Limits,
) -> Result<PgConnectOptions, ConnectError> {
    let host = required(params.host.as_deref(), "server")?;
    let username = required(params.username.as_deref(), "username")?;
    let ssl_mode = match params.tls {
        TlsMode::Disabled => PgSslMode::Disable,
        TlsMode::Required => PgSslMode::VerifyCa,
        TlsMode::Preferred | TlsMode::VerifyFull => PgSslMode::VerifyFull,
    };
    let statement_timeout = limits.query_timeout.as_millis().to_string();
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(params.effective_port().unwrap_or(5432))
        .username(username)
        .database(params.database.as_deref().unwrap_or(username))
        .ssl_mode(ssl_mode)
        .application_name("sluice")
        // The server stops a runaway query itself, not only the client.
        .options([("statement_timeout", statement_timeout.as_str())])
        .disable_statement_logging();
    if let Some(password) = params.password.as_deref() {
        options = options.password(password);
    }
    if let Some(ca) = ca_file(params) {
        options = options.ssl_root_cert(ca);
    }
    Ok(options)
}

/// Opens and closes one connection; `None` when the connect timeout passed first.
async fn probe(options: &PgConnectOptions, limits: Limits) -> Option<Result<(), sqlx::Error>> {
    let attempt = async {
        let connection = sqlx::PgConnection::connect_with(options).await?;
        connection.close().await
    };
    tokio::time::timeout(limits.connect_timeout, attempt)
        .await
        .ok()
}
