//! MySQL and MariaDB through sqlx. The schema of a table is its database; when
//! the connector names a database, only that one is explored.

use futures::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlSslMode};
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
use crate::stream::{
    BatchStream, BatchWriter, Held, bind_all, generate, push_converted, send_batch,
};
use crate::transaction::{ExecError, Finish, SqlxTransaction};
use crate::value::{ColumnHints, mysql_row_to_json, mysql_row_to_json_with_hints};
use sluice_sqltpl::Rendered;

const SYSTEM_SCHEMAS: &str = "('mysql', 'sys', 'performance_schema', 'information_schema')";

pub struct MySqlDatabase {
    pool: MySqlPool,
    kind: DbKind,
    limits: Limits,
    address: String,
}

impl MySqlDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<MySqlDatabase, ConnectError> {
        refuse_disabled_certificate_checks(params)?;
        let address = address(params);
        let options = connect_options(params)?;
        let options = match probe(&options, limits).await {
            None => return Err(no_answer(&address, limits)),
            Some(Ok(())) => options,
            // Only a server without the SSL capability gets a plain connection.
            Some(Err(error)) if params.tls == TlsMode::Preferred && server_refused_tls(&error) => {
                plaintext_fallback(params, &address)?;
                let plain = options.ssl_mode(MySqlSslMode::Disabled);
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
        let pool = MySqlPoolOptions::new()
            .max_connections(limits.max_connections)
            .acquire_timeout(limits.connect_timeout)
            .idle_timeout(std::time::Duration::from_secs(300))
            .connect_lazy_with(options);
        Ok(MySqlDatabase {
            pool,
            kind: params.kind,
            limits,
            address,
        })
    }

    pub(crate) fn kind(&self) -> DbKind {
        self.kind
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn error(&self, error: sqlx::Error) -> ConnectError {
        sqlx_error(error, &self.address)
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        sqlx::query_scalar::<_, String>("SELECT CAST(VERSION() AS CHAR)")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        sqlx::query_scalar::<_, String>(AssertSqlSafe(format!(
            "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME = COALESCE(DATABASE(), SCHEMA_NAME) \
               AND SCHEMA_NAME NOT IN {SYSTEM_SCHEMAS} ORDER BY 1"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR) \
             FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = COALESCE(DATABASE(), TABLE_SCHEMA) \
               AND TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS} \
               AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED') \
             ORDER BY 1, 2"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                let table_type: String = row.try_get(2)?;
                Ok(TableRef {
                    schema: Some(row.try_get(0)?),
                    name: row.try_get(1)?,
                    kind: if table_type == "VIEW" {
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
        let schema = table.schema.as_deref().unwrap_or_default();
        let rows = sqlx::query(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                    CAST(IS_NULLABLE = 'YES' AS SIGNED) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(schema)
        .bind(&table.name)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let mut columns = rows
            .iter()
            .map(|row| {
                Ok(ColumnInfo {
                    name: row.try_get(0)?,
                    data_type: row.try_get(1)?,
                    nullable: row.try_get::<i64, _>(2)? != 0,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| self.error(e))?;
        if self.kind == DbKind::Mariadb {
            let json_columns = self.mariadb_json_columns(schema, &table.name).await?;
            for column in &mut columns {
                if json_columns.contains(&column.name) {
                    column.data_type = "json".to_owned();
                }
            }
        }
        Ok(columns)
    }

    /// MariaDB's JSON is LONGTEXT plus a `json_valid(col)` check constraint
    /// named after the column; that constraint is how to recognise it.
    async fn mariadb_json_columns(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Vec<String>, ConnectError> {
        sqlx::query_scalar::<_, String>(
            "SELECT CAST(CONSTRAINT_NAME AS CHAR) FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? \
               AND CHECK_CLAUSE = CONCAT('json_valid(`', CONSTRAINT_NAME, '`)')",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))
    }

    /// `table` has been checked against [`Self::tables`].
    pub(crate) async fn preview(
        &self,
        table: &TableRef,
        limit: u32,
    ) -> Result<RowSet, ConnectError> {
        let columns = self.columns(table).await?;
        let hints = ColumnHints::from_declared_types(
            columns
                .iter()
                .map(|c| (c.name.as_str(), c.data_type.as_str())),
        );
        let sql = format!(
            "SELECT * FROM {} LIMIT {limit}",
            qualified_name(self.kind, table.schema.as_deref(), &table.name)
        );
        self.fetch_with_hints(&sql, limit, &hints).await
    }

    pub(crate) async fn fetch_json(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        self.fetch_with_hints(sql, limit, &ColumnHints::default())
            .await
    }

    async fn fetch_with_hints(
        &self,
        sql: &str,
        limit: u32,
        hints: &ColumnHints,
    ) -> Result<RowSet, ConnectError> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.error(e))?;
        let mut tx = conn
            .begin_with("START TRANSACTION READ ONLY")
            .await
            .map_err(|e| self.error(e))?;
        let mut result = RowSet::default();
        {
            let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                if result.rows.is_empty() {
                    result.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                }
                result.rows.push(mysql_row_to_json_with_hints(&row, hints)?);
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
    /// sqlx prepares the statement (the binary protocol: one statement only)
    /// and reads each row off the socket as the stream is polled; TCP flow
    /// control holds the server back while the consumer is busy.
    /// No transaction is opened: a command may write (seed 001). A stream
    /// dropped before the end closes its connection instead of returning it
    /// to the pool (see [`Held`]).
    pub(crate) fn stream_rows<'a>(
        &'a self,
        query: &'a Rendered,
        batch_size: usize,
        cursor_field: Option<&'a str>,
    ) -> BatchStream<'a> {
        generate(move |mut out| async move {
            let run = async {
                let connection = self.pool.acquire().await.map_err(|e| self.error(e))?;
                let mut held = Held::new(connection);
                (&mut *held.connection)
                    .execute(RENDERER_SQL_MODE)
                    .await
                    .map_err(|e| self.error(e))?;
                {
                    // The user's SQL is run as written, on purpose: it is the
                    // connector owner's own command, and every placeholder
                    // value is bound as a parameter by sluice-sqltpl's
                    // rendering, so none can change its structure.
                    let sql = AssertSqlSafe(query.sql.clone());
                    let mut rows = bind_all(sqlx::query(sql), &query.binds)
                        .persistent(false)
                        .fetch(&mut *held.connection);
                    let mut writer = BatchWriter::new(batch_size, cursor_field);
                    while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                        let (_, done) =
                            writer.columns(row.columns().iter().map(|c| c.name()), || {
                                row.columns()
                                    .iter()
                                    .map(|c| ResultColumn {
                                        name: c.name().to_owned(),
                                        sort: CursorSort::mysql(c.type_info()),
                                    })
                                    .collect()
                            });
                        if !send_batch(&mut out, done).await
                            || !push_converted(&mut out, &mut writer, mysql_row_to_json(&row)).await
                        {
                            return Ok(());
                        }
                    }
                    if !send_batch(&mut out, writer.finish()).await {
                        return Ok(());
                    }
                }
                held.finish();
                Ok::<(), ConnectError>(())
            };
            if let Err(error) = run.await {
                let _ = out.send(Err(error)).await;
            }
        })
    }

    /// Runs `statements` in one transaction; see [`crate::Database::execute_in_transaction`].
    /// The text protocol runs a `;`-separated text statement by statement.
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
            prepare: &[RENDERER_SQL_MODE],
            begin: "START TRANSACTION",
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

/// sluice-sqltpl reads the template's literals with backslash escapes on and `"…"`
/// as a string; an earlier command on this pooled connection may have set
/// `NO_BACKSLASH_ESCAPES` or `ANSI_QUOTES`, which would move where a literal ends.
/// Both are taken out of the session's mode before every run.
const RENDERER_SQL_MODE: &str = "SET SESSION sql_mode = TRIM(BOTH ',' FROM \
     REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), \
     ',NO_BACKSLASH_ESCAPES,', ','), ',ANSI_QUOTES,', ','), ',ANSI,', ','))";

/// Preferred TLS starts as VERIFY_IDENTITY; see [`MySqlDatabase::connect`].
fn connect_options(params: &ConnectionParams) -> Result<MySqlConnectOptions, ConnectError> {
    let host = required(params.host.as_deref(), "server")?;
    let username = required(params.username.as_deref(), "username")?;
    let ssl_mode = match params.tls {
        TlsMode::Disabled => MySqlSslMode::Disabled,
        TlsMode::Required => MySqlSslMode::VerifyCa,
        TlsMode::Preferred | TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
    };
    let mut options = MySqlConnectOptions::new()
        .host(host)
        .port(params.effective_port().unwrap_or(3306))
        .username(username)
        .ssl_mode(ssl_mode)
        .disable_statement_logging();
    if let Some(password) = params.password.as_deref() {
        options = options.password(password);
    }
    if let Some(database) = params.database.as_deref() {
        options = options.database(database);
    }
    if let Some(ca) = ca_file(params) {
        options = options.ssl_ca(ca);
    }
    Ok(options)
}

/// Opens and closes one connection; `None` when the connect timeout passed first.
async fn probe(options: &MySqlConnectOptions, limits: Limits) -> Option<Result<(), sqlx::Error>> {
    let attempt = async {
        let connection = sqlx::MySqlConnection::connect_with(options).await?;
        connection.close().await
    };
    tokio::time::timeout(limits.connect_timeout, attempt)
        .await
        .ok()
}
