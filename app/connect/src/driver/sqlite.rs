//! SQLite through sqlx. The file is never created: a connector points at an
//! existing database. Reading work (test, explore, preview) opens it read-only;
//! only work that asks for [`Access::ReadWrite`] may write, and then only this
//! file: no connection can ATTACH another database or VACUUM INTO one (see
//! [`refuse_builds_that_attach`]).

use std::path::Path;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection, Executor, Row, SqlSafeStr, Statement,
    TypeInfo,
};

use super::{no_answer, required, sqlx_error};
use crate::connstr::ConnectionParams;
use crate::cursor::{CursorSort, ResultColumn};
use crate::database::{Access, ColumnInfo, Limits, RowSet, TableKind, TableRef};
use crate::error::ConnectError;
use crate::ident::quote_double;
use crate::kind::DbKind;
use crate::stream::{
    BatchStream, BatchWriter, Held, bind_all, generate, push_converted, send_batch,
};
use crate::transaction::{ExecError, Finish, SqlxTransaction};
use crate::value::{ColumnHints, sqlite_row_to_json, sqlite_row_to_json_with_hints};
use sluice_sqltpl::Rendered;

pub struct SqliteDatabase {
    read_only: SqlitePool,
    /// Opened on first use: most connectors only ever read.
    read_write: SqlitePool,
    limits: Limits,
    path: String,
    /// How messages name the file (see [`ConnectionParams::path_label`]).
    label: String,
}

impl SqliteDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<SqliteDatabase, ConnectError> {
        let label = params
            .path_label
            .clone()
            .or_else(|| params.path.clone())
            .unwrap_or_default();
        let scrub = |error: ConnectError| scrubbed(error, params.path.as_deref(), &label);
        let path = database_path(params).map_err(scrub)?;
        let options = |access: Access| {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(false)
                .read_only(access == Access::ReadOnly)
                // Views and triggers in the file cannot call functions with
                // side effects on their own.
                .pragma("trusted_schema", "OFF")
                .busy_timeout(limits.query_timeout)
                .disable_statement_logging()
        };
        let attempt = async {
            let mut connection =
                sqlx::SqliteConnection::connect_with(&options(Access::ReadOnly)).await?;
            let attach_refused = refuse_builds_that_attach(&mut connection).await;
            connection.close().await?;
            Ok::<_, sqlx::Error>(attach_refused)
        };
        match tokio::time::timeout(limits.connect_timeout, attempt).await {
            Err(_) => return Err(scrub(no_answer(&label, limits))),
            Ok(Err(error)) => return Err(scrub(sqlx_error(error, &label))),
            Ok(Ok(attach_refused)) => attach_refused.map_err(scrub)?,
        }
        let pool = |access: Access| {
            SqlitePoolOptions::new()
                .max_connections(limits.max_connections)
                .acquire_timeout(limits.connect_timeout)
                .connect_lazy_with(options(access))
        };
        Ok(SqliteDatabase {
            read_only: pool(Access::ReadOnly),
            read_write: pool(Access::ReadWrite),
            limits,
            path: path.to_owned(),
            label,
        })
    }

    fn pool(&self, access: Access) -> &SqlitePool {
        match access {
            Access::ReadOnly => &self.read_only,
            Access::ReadWrite => &self.read_write,
        }
    }

    pub(crate) fn kind(&self) -> DbKind {
        DbKind::Sqlite
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn error(&self, error: sqlx::Error) -> ConnectError {
        scrubbed(
            sqlx_error(error, &self.label),
            Some(&self.path),
            &self.label,
        )
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        sqlx::query_scalar::<_, String>("SELECT 'SQLite ' || sqlite_version()")
            .fetch_one(&self.read_only)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        Ok(vec!["main".to_owned()])
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        let rows = sqlx::query(
            "SELECT name, type FROM sqlite_master \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
        )
        .fetch_all(&self.read_only)
        .await
        .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get(1)?;
                Ok(TableRef {
                    schema: None,
                    name: row.try_get(0)?,
                    kind: if kind == "view" {
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
        let rows =
            sqlx::query("SELECT name, type, \"notnull\" FROM pragma_table_info(?) ORDER BY cid")
                .bind(&table.name)
                .fetch_all(&self.read_only)
                .await
                .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                Ok(ColumnInfo {
                    name: row.try_get(0)?,
                    data_type: row.try_get(1)?,
                    nullable: row.try_get::<i64, _>(2)? == 0,
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
        let columns = self.columns(table).await?;
        let hints = ColumnHints::from_declared_types(
            columns
                .iter()
                .map(|c| (c.name.as_str(), c.data_type.as_str())),
        );
        let sql = format!("SELECT * FROM {} LIMIT {limit}", quote_double(&table.name));
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
        let mut conn = self.read_only.acquire().await.map_err(|e| self.error(e))?;
        let mut result = RowSet::default();
        {
            let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                if result.rows.is_empty() {
                    result.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                }
                result
                    .rows
                    .push(sqlite_row_to_json_with_hints(&row, hints)?);
                if result.rows.len() >= limit as usize {
                    break;
                }
            }
        }
        if result.rows.is_empty() {
            let statement = (&mut *conn)
                .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
                .await
                .map_err(|e| self.error(e))?;
            result.columns = statement
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
        }
        Ok(result)
    }

    /// The rows of a rendered pull-sync command, one at a time, converted
    /// and nested; see [`crate::Database::stream_batches`].
    ///
    /// sqlx steps the statement on the connection's worker thread, which sends
    /// rows through a small bounded channel as the stream is polled. As
    /// everywhere in sqlx's SQLite driver, each statement of the text runs in
    /// turn and their rows follow one another.
    /// No transaction is opened: a command given [`Access::ReadWrite`] may
    /// write (seed 001). A stream dropped before the end closes its connection
    /// instead of returning it to the pool (see [`Held`]).
    pub(crate) fn stream_rows<'a>(
        &'a self,
        query: &'a Rendered,
        access: Access,
        batch_size: usize,
        cursor_field: Option<&'a str>,
    ) -> BatchStream<'a> {
        generate(move |mut out| async move {
            let run = async {
                let connection = self
                    .pool(access)
                    .acquire()
                    .await
                    .map_err(|e| self.error(e))?;
                let mut held = Held::new(connection);
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
                                        sort: CursorSort::sqlite(c.type_info().name()),
                                    })
                                    .collect()
                            });
                        if !send_batch(&mut out, done).await
                            || !push_converted(&mut out, &mut writer, sqlite_row_to_json(&row))
                                .await
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

    /// Runs `statements` in one transaction on the read-write pool; see
    /// [`crate::Database::execute_in_transaction`]. `BEGIN IMMEDIATE` takes
    /// the write lock first, so a busy file waits (busy timeout) up front
    /// instead of failing half-way.
    pub(crate) async fn execute_in_transaction(
        &self,
        statements: &[String],
        finish: Finish,
    ) -> Result<Vec<u64>, ExecError> {
        let connection = self
            .pool(Access::ReadWrite)
            .acquire()
            .await
            .map_err(|e| ExecError::outside(self.error(e)))?;
        SqlxTransaction {
            prepare: &[],
            begin: "BEGIN IMMEDIATE",
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
        self.read_only.close().await;
        self.read_write.close().await;
    }
}

/// The bundled SQLite is built with an attached-database limit of 0 (see the
/// workspace's `.cargo/config.toml`), which refuses `ATTACH` and `VACUUM INTO`
/// on every connection. A build without it would let a tenant's SQL read and
/// write any file the server can, so its SQLite connectors do not open at all.
async fn refuse_builds_that_attach(
    connection: &mut sqlx::SqliteConnection,
) -> Result<(), ConnectError> {
    match sqlx::raw_sql("ATTACH DATABASE ':memory:' AS sluice_attach_probe")
        .execute(&mut *connection)
        .await
    {
        Err(_) => Ok(()),
        Ok(_) => {
            let _ = sqlx::raw_sql("DETACH DATABASE sluice_attach_probe")
                .execute(&mut *connection)
                .await;
            Err(ConnectError::Unsupported(
                "this Sluice build lets SQLite attach other databases, so SQLite connectors \
                 are disabled; build it with LIBSQLITE3_FLAGS=-DSQLITE_MAX_ATTACHED=0"
                    .to_owned(),
            ))
        }
    }
}

/// The message with the file's absolute path, and the directory it is in,
/// replaced by the connector's own name for it.
fn scrubbed(error: ConnectError, absolute: Option<&str>, label: &str) -> ConnectError {
    let Some(absolute) = absolute.filter(|a| Path::new(a).is_absolute()) else {
        return error;
    };
    let error = error.replaced(absolute, label);
    match Path::new(absolute).parent().and_then(Path::to_str) {
        Some(directory) if directory.len() > 1 => error.replaced(directory, "."),
        _ => error,
    }
}

/// The caller has validated the path; here it must name an existing file,
/// not an in-memory database (which would be empty and private to one connection).
fn database_path(params: &ConnectionParams) -> Result<&str, ConnectError> {
    let path = required(params.path.as_deref(), "path")?;
    let lowered = path.to_ascii_lowercase();
    if lowered == ":memory:"
        || lowered.contains("mode=memory")
        || lowered.starts_with("file::memory:")
    {
        return Err(ConnectError::config(
            "path",
            "an in-memory SQLite database cannot be a connector; give the path of a database file",
        ));
    }
    let file = Path::new(path);
    if !file.is_file() {
        let shown = params.path_label.as_deref().unwrap_or(path);
        return Err(ConnectError::UnknownDatabase(format!(
            "no SQLite database file at {}",
            crate::connstr::quoted(shown)
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_params(path: &str) -> ConnectionParams {
        let mut params = ConnectionParams::new(DbKind::Sqlite);
        params.path = Some(path.to_owned());
        params
    }

    #[test]
    fn memory_databases_are_refused_naming_path() {
        for path in [
            ":memory:",
            "file::memory:?cache=shared",
            "file:x?mode=memory",
        ] {
            let error = database_path(&sqlite_params(path)).expect_err(path);
            assert!(
                matches!(&error, ConnectError::Config { field, .. } if field == "path"),
                "{error}"
            );
        }
    }

    #[test]
    fn missing_files_are_unknown_databases() {
        let error = database_path(&sqlite_params("/nonexistent/sluice.db")).expect_err("missing");
        assert_eq!(error.category(), "unknown_database");
        let error = database_path(&ConnectionParams::new(DbKind::Sqlite)).expect_err("no path");
        assert_eq!(error.category(), "config");
    }
}
