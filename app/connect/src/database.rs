//! A connected tenant database: one bounded pool per connector, whatever the
//! engine, with the same small API for testing, exploring and reading rows.

use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::connstr::ConnectionParams;
use crate::driver::{
    self, mysql::MySqlDatabase, oracle::OracleDatabase, postgres::PgDatabase,
    sqlite::SqliteDatabase, sqlserver::SqlServerDatabase, within,
};
use crate::error::ConnectError;
use crate::kind::DbKind;
use crate::stream::Batch;
use crate::transaction::{ExecError, Executed, Finish};

/// How much a connector may use of its database, and how long it may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4,
            connect_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(30),
        }
    }
}

/// What a piece of work may do to a connector's database. Only SQLite enforces
/// it (a read-only file handle); on network databases the least-privilege
/// user the connector logs in as decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Testing, exploring, previewing: nothing may change.
    ReadOnly,
    /// Work that writes the tenant's own database (pull commands that write,
    /// seed 001; trigger installation; segment sync). Never another file.
    ReadWrite,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub server_version: String,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// A table or view. MySQL/MariaDB use the database as the schema; SQLite has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
    pub kind: TableKind,
}

impl TableRef {
    fn same_object(&self, other: &TableRef) -> bool {
        self.schema == other.schema && self.name == other.name
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The type as the database declares it, e.g. `numeric(38,10)`.
    pub data_type: String,
    pub nullable: bool,
}

/// Rows as JSON objects keyed by column alias, plus the column order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowSet {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

impl RowSet {
    /// Cuts every value longer than `max_bytes` (a string's UTF-8, or an array's or
    /// object's JSON text) to a string of its first `max_bytes` bytes followed by
    /// how long it was, so a preview of wide rows stays small.
    pub fn cap_cells(mut self, max_bytes: usize) -> RowSet {
        for row in &mut self.rows {
            for value in row.values_mut() {
                let text = match value {
                    Value::String(s) if s.len() > max_bytes => std::mem::take(s),
                    Value::Array(_) | Value::Object(_) => {
                        let text = value.to_string();
                        if text.len() <= max_bytes {
                            continue;
                        }
                        text
                    }
                    _ => continue,
                };
                let mut end = max_bytes;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                *value = Value::String(format!("{}… [{} bytes in all]", &text[..end], text.len()));
            }
        }
        self
    }
}

/// A connector's pool.
pub enum Database {
    Postgres(PgDatabase),
    /// MySQL and MariaDB.
    Mysql(MySqlDatabase),
    Sqlite(SqliteDatabase),
    Sqlserver(SqlServerDatabase),
    Oracle(OracleDatabase),
}

macro_rules! each_driver {
    ($database:expr, $driver:ident => $body:expr) => {
        match $database {
            Database::Postgres($driver) => $body,
            Database::Mysql($driver) => $body,
            Database::Sqlite($driver) => $body,
            Database::Sqlserver($driver) => $body,
            Database::Oracle($driver) => $body,
        }
    };
}

/// tiberius brings rustls' aws-lc-rs backend next to the ring one the rest of
/// the workspace uses; with both compiled in, rustls cannot pick a default and
/// code that relies on the default (sqlx's CA-only verifier, tiberius) would
/// panic. Installing ring once settles it; an already installed default wins.
fn ensure_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

impl Database {
    /// Opens one connection (so bad credentials fail here) within
    /// `limits.connect_timeout`, then keeps a pool of at most
    /// `limits.max_connections`.
    pub async fn connect(
        params: &ConnectionParams,
        limits: &Limits,
    ) -> Result<Database, ConnectError> {
        ensure_crypto_provider();
        let limits = Limits {
            max_connections: limits.max_connections.max(1),
            ..*limits
        };
        // Boxed: the drivers' connect futures are large, and one per kind.
        let connected = match params.kind {
            DbKind::Postgres => Box::pin(PgDatabase::connect(params, limits))
                .await
                .map(Database::Postgres),
            DbKind::Mysql | DbKind::Mariadb => Box::pin(MySqlDatabase::connect(params, limits))
                .await
                .map(Database::Mysql),
            DbKind::Sqlite => Box::pin(SqliteDatabase::connect(params, limits))
                .await
                .map(Database::Sqlite),
            DbKind::Sqlserver => Box::pin(SqlServerDatabase::connect(params, limits))
                .await
                .map(Database::Sqlserver),
            DbKind::Oracle => Box::pin(OracleDatabase::connect(params, limits))
                .await
                .map(Database::Oracle),
        };
        connected.map_err(|error| error.redacted(params.password.as_deref()))
    }

    pub fn kind(&self) -> DbKind {
        each_driver!(self, driver => driver.kind())
    }

    fn limits(&self) -> Limits {
        each_driver!(self, driver => driver.limits())
    }

    /// The server's version and the round-trip time of a trivial query.
    pub async fn test(&self) -> Result<TestReport, ConnectError> {
        let started = Instant::now();
        let server_version = self
            .timed("the connection test", async {
                each_driver!(self, driver => driver.server_version().await)
            })
            .await?;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(TestReport {
            server_version,
            latency_ms,
        })
    }

    /// User schemas (for MySQL/MariaDB: databases), without system ones.
    pub async fn schemas(&self) -> Result<Vec<String>, ConnectError> {
        self.timed("listing schemas", async {
            each_driver!(self, driver => driver.schemas().await)
        })
        .await
    }

    /// User tables and views, without system ones.
    pub async fn tables(&self) -> Result<Vec<TableRef>, ConnectError> {
        self.timed("listing tables", async {
            each_driver!(self, driver => driver.tables().await)
        })
        .await
    }

    pub async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>, ConnectError> {
        let table = self.existing_table(table).await?;
        self.timed("listing columns", async {
            each_driver!(self, driver => driver.columns(&table).await)
        })
        .await
    }

    /// The first `limit` rows (clamped to 1..=1000) of a table that
    /// [`Database::tables`] lists; any other name is refused before any SQL is built.
    pub async fn preview(&self, table: &TableRef, limit: u32) -> Result<RowSet, ConnectError> {
        let table = self.existing_table(table).await?;
        let limit = driver::clamp_preview_limit(limit);
        self.timed("the preview", async {
            each_driver!(self, driver => driver.preview(&table, limit).await)
        })
        .await
    }

    /// Runs a read query and returns at most `limit` rows (at least 1); the
    /// rest of the result is not read. PostgreSQL and MySQL/MariaDB run it in a
    /// read-only transaction. The SQL is the connector owner's own.
    pub async fn fetch_json(&self, sql: &str, limit: u32) -> Result<RowSet, ConnectError> {
        let limit = limit.max(1);
        self.timed("the query", async {
            each_driver!(self, driver => driver.fetch_json(sql, limit).await)
        })
        .await
    }

    /// Runs a rendered pull-sync command and streams its rows in batches of
    /// `batch_size` rows (clamped to 1..=100 000); the last batch may be
    /// smaller and an empty result yields no batch at all. Each row is
    /// converted like [`Database::fetch_json`]'s and then nested
    /// ([`crate::nest_dotted`]: `"address.city"` → `{"address": {"city": …}}`);
    /// a batch holds its rows as JSON text, the array a callback POST carries
    /// ([`Batch::into_array`]), written straight from the driver's values where
    /// the driver can (PostgreSQL).
    ///
    /// `query.binds` are bound in order (`?` for MySQL/MariaDB and SQLite,
    /// `@P1…` for SQL Server, `:1…` for Oracle; PostgreSQL renderings carry
    /// their values as literals). The SQL is the connector owner's own and
    /// runs as written, outside any transaction: a command may write.
    ///
    /// The result is never held in memory: rows are pulled from the driver's
    /// row stream as batches are asked for, so memory stays bounded by one
    /// batch plus the driver's buffers, whatever the result size. On
    /// PostgreSQL sqlx reads each row off the socket as it is consumed, and
    /// TCP flow control holds the server back meanwhile; the connection's
    /// server-side `statement_timeout` is lifted for the stream.
    ///
    /// The query timeout bounds the wait for each batch (the time to the
    /// first row, then between batches), not the whole stream, so a long pull
    /// runs as long as rows keep coming; past it the stream yields
    /// [`ConnectError::Timeout`] and ends. A row that cannot be converted ends
    /// the stream with [`ConnectError::Query`] naming the column. Any error
    /// ends the stream.
    ///
    /// The stream holds one connection from its first poll until it ends or
    /// is dropped. A connection whose result was read to the end goes back to
    /// the pool; one dropped or failed half-way is closed instead (it may have
    /// unread rows or a running statement), which frees its place in the pool.
    ///
    /// Each batch carries its result's columns: alias and [`CursorSort`], the
    /// order the database gives the column's values (for the Last Field cursor).
    ///
    /// `access` is enforced on SQLite only (see [`Access`]).
    ///
    /// [`CursorSort`]: crate::CursorSort
    pub fn stream_batches<'a>(
        &'a self,
        query: &'a sluice_sqltpl::Rendered,
        batch_size: usize,
        access: Access,
    ) -> BoxStream<'a, Result<Batch, ConnectError>> {
        self.stream_batches_with_cursor(query, batch_size, access, None)
    }

    /// [`Database::stream_batches`], with each row's value of the column
    /// named `cursor_field` (the command's Last Field) beside its JSON text
    /// ([`Batch::cursor_json`]).
    pub fn stream_batches_with_cursor<'a>(
        &'a self,
        query: &'a sluice_sqltpl::Rendered,
        batch_size: usize,
        access: Access,
        cursor_field: Option<&'a str>,
    ) -> BoxStream<'a, Result<Batch, ConnectError>> {
        let size = crate::stream::clamp_batch_size(batch_size);
        let batches = match self {
            Database::Sqlite(driver) => driver.stream_rows(query, access, size, cursor_field),
            Database::Postgres(driver) => driver.stream_rows(query, size, cursor_field),
            Database::Mysql(driver) => driver.stream_rows(query, size, cursor_field),
            Database::Sqlserver(driver) => driver.stream_rows(query, size, cursor_field),
            Database::Oracle(driver) => driver.stream_rows(query, size, cursor_field),
        };
        crate::stream::batched(batches, self.limits().query_timeout)
    }

    /// Runs `statements` (SQL text whose values are already written as safe
    /// literals: rendered segment-sync templates) in one transaction, in
    /// order, and ends it as `finish` says: [`Finish::Rollback`] is a test
    /// run that reports the rows each statement changed and keeps nothing.
    /// A statement may hold several separated by `;` (not on Oracle); its
    /// count is their sum.
    ///
    /// The first failing statement ends the run: the transaction is rolled
    /// back and the error names the statement. Each step (statement, begin,
    /// commit) is bounded by the query timeout; past it the connection is
    /// closed, which ends the transaction without committing. On MySQL and
    /// MariaDB the session's `sql_mode` is the one the renderer writes for
    /// (backslash escapes on, `"…"` a string); statements that commit
    /// implicitly there (DDL) cannot be rolled back.
    pub async fn execute_in_transaction(
        &self,
        statements: &[String],
        finish: Finish,
    ) -> Result<Executed, ExecError> {
        let started = Instant::now();
        // Boxed: a driver future is large (see `timed`).
        let rows_affected = Box::pin(async {
            match self {
                Database::Postgres(driver) => {
                    driver.execute_in_transaction(statements, finish).await
                }
                Database::Mysql(driver) => driver.execute_in_transaction(statements, finish).await,
                Database::Sqlite(driver) => driver.execute_in_transaction(statements, finish).await,
                Database::Sqlserver(driver) => {
                    driver.execute_in_transaction(statements, finish).await
                }
                Database::Oracle(driver) => driver.execute_in_transaction(statements, finish).await,
            }
        })
        .await?;
        Ok(Executed {
            rows_affected,
            duration: started.elapsed(),
            committed: finish == Finish::Commit,
        })
    }

    /// The dialect pull-sync commands are rendered in for this database.
    pub fn dialect(&self) -> sluice_sqltpl::Dialect {
        self.kind().dialect()
    }

    /// Closes every pooled connection; later calls fail.
    pub async fn close(&self) {
        each_driver!(self, driver => driver.close().await)
    }

    /// Boxed: a driver future is large, and debug builds would otherwise
    /// carry every driver's state on the caller's stack.
    async fn timed<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, ConnectError> {
        within(self.limits().query_timeout, what, Box::pin(work)).await
    }

    /// The listed table matching `wanted` by schema and name.
    async fn existing_table(&self, wanted: &TableRef) -> Result<TableRef, ConnectError> {
        let tables = self.tables().await?;
        let exact = tables
            .iter()
            .find(|table| table.same_object(wanted))
            .cloned();
        // Without a schema, a name that exists in exactly one schema (or in the
        // usual default one) is unambiguous.
        let by_name_only = || {
            let named: Vec<&TableRef> = tables.iter().filter(|t| t.name == wanted.name).collect();
            match named.as_slice() {
                [only] => Some((*only).clone()),
                several => several
                    .iter()
                    .find(|t| matches!(t.schema.as_deref(), Some("public" | "main" | "dbo")))
                    .map(|t| (*t).clone()),
            }
        };
        exact
            .or_else(|| wanted.schema.is_none().then(by_name_only).flatten())
            .ok_or_else(|| {
                let name = match &wanted.schema {
                    Some(schema) => format!("{schema}.{}", wanted.name),
                    None => wanted.name.clone(),
                };
                ConnectError::NoSuchTable(format!(
                    "no table or view named {} is visible to this connector",
                    crate::connstr::quoted(&name)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn long_cells_are_cut_and_short_ones_kept() {
        let row = json!({"a": "é".repeat(10), "b": [1, 2, 3, 4, 5, 6, 7, 8], "c": 12345678901i64, "d": "short"});
        let rows = super::RowSet {
            columns: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            rows: vec![row.as_object().unwrap().clone()],
        }
        .cap_cells(9);
        let row = &rows.rows[0];
        // 9 bytes cut back to a character boundary: four two-byte characters.
        assert_eq!(row["a"], json!("éééé… [20 bytes in all]"));
        assert_eq!(row["b"], json!("[1,2,3,4,… [17 bytes in all]"));
        assert_eq!(row["c"], json!(12345678901i64), "numbers are never cut");
        assert_eq!(row["d"], json!("short"));
    }
}
