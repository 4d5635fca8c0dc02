//! SQLite through sqlx. The file is opened read-write but never created: a
//! connector points at an existing database.

use std::path::Path;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection, Executor, Row, SqlSafeStr, Statement,
};

use super::{no_answer, required, sqlx_error};
use crate::connstr::ConnectionParams;
use crate::database::{ColumnInfo, Limits, RowSet, TableKind, TableRef};
use crate::error::ConnectError;
use crate::ident::quote_double;
use crate::kind::DbKind;
use crate::stream::{Held, RowStream, bind_all, generate, nested_row};
use crate::value::{ColumnHints, sqlite_row_to_json, sqlite_row_to_json_with_hints};
use sluice_sqltpl::Rendered;

pub struct SqliteDatabase {
    pool: SqlitePool,
    limits: Limits,
    path: String,
}

impl SqliteDatabase {
    pub(crate) async fn connect(
        params: &ConnectionParams,
        limits: Limits,
    ) -> Result<SqliteDatabase, ConnectError> {
        let path = database_path(params)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .read_only(false)
            .busy_timeout(limits.query_timeout)
            .disable_statement_logging();
        let attempt = async {
            let connection = sqlx::SqliteConnection::connect_with(&options).await?;
            connection.close().await
        };
        match tokio::time::timeout(limits.connect_timeout, attempt).await {
            Err(_) => return Err(no_answer(path, limits)),
            Ok(Err(error)) => return Err(sqlx_error(error, path)),
            Ok(Ok(())) => {}
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(limits.max_connections)
            .acquire_timeout(limits.connect_timeout)
            .connect_lazy_with(options);
        Ok(SqliteDatabase {
            pool,
            limits,
            path: path.to_owned(),
        })
    }

    pub(crate) fn kind(&self) -> DbKind {
        DbKind::Sqlite
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn error(&self, error: sqlx::Error) -> ConnectError {
        sqlx_error(error, &self.path)
    }

    pub(crate) async fn server_version(&self) -> Result<String, ConnectError> {
        sqlx::query_scalar::<_, String>("SELECT 'SQLite ' || sqlite_version()")
            .fetch_one(&self.pool)
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
        .fetch_all(&self.pool)
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
                .fetch_all(&self.pool)
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
        let mut conn = self.pool.acquire().await.map_err(|e| self.error(e))?;
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
    /// No transaction is opened: a command may write (seed 001). A stream
    /// dropped before the end closes its connection instead of returning it
    /// to the pool (see [`Held`]).
    pub(crate) fn stream_rows<'a>(&'a self, query: &'a Rendered) -> RowStream<'a> {
        generate(move |mut out| async move {
            let run = async {
                let connection = self.pool.acquire().await.map_err(|e| self.error(e))?;
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
                    while let Some(row) = rows.try_next().await.map_err(|e| self.error(e))? {
                        let item = nested_row(sqlite_row_to_json(&row));
                        let failed = item.is_err();
                        if !out.send(item).await || failed {
                            return Ok(());
                        }
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

    pub(crate) async fn close(&self) {
        self.pool.close().await;
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
        return Err(ConnectError::UnknownDatabase(format!(
            "no SQLite database file at {}",
            crate::connstr::quoted(path)
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
