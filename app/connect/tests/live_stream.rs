//! `Database::stream_batches` against live servers: the local PostgreSQL
//! (`SLUICE_TEST_PG_URL`) and MariaDB (`SLUICE_TEST_MARIADB_URL`), SQLite files,
//! and — only when `SLUICE_TEST_MSSQL_URL` / `SLUICE_TEST_ORACLE_URL` are set —
//! SQL Server and Oracle. Each test works in its own database (or file, or
//! uniquely named table). Statements are rendered through sluice-sqltpl as
//! pull syncs render them.

mod common;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{Days, NaiveDate};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use sluice_connect::{
    Access, ConnectError, ConnectionParams, CursorSort, Database, DbKind, Limits,
    parse_connection_string,
};
use sluice_sqltpl::{Dialect, PlaceholderValues, Rendered, TemplateError, render_placeholders};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};

use common::{mariadb_url, params_for, pg_url, quick_limits, run_detached, unique_name};

type Row = Map<String, Value>;

// ---- temporary databases ------------------------------------------------------

/// A database of its own on one of the local servers (or a SQLite file),
/// dropped when the guard goes away.
struct TempDatabase {
    kind: DbKind,
    name: String,
    file: Option<PathBuf>,
}

impl TempDatabase {
    async fn create(kind: DbKind) -> TempDatabase {
        let name = unique_name("sluice_st");
        let mut file = None;
        match kind {
            DbKind::Postgres => {
                let mut admin = PgConnectOptions::from_str(&pg_url())
                    .expect("PostgreSQL test URL")
                    .connect()
                    .await
                    .expect("admin connection");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
            }
            DbKind::Mariadb => {
                let mut admin = MySqlConnectOptions::from_str(&mariadb_url())
                    .expect("MariaDB test URL")
                    .connect()
                    .await
                    .expect("admin connection");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
            }
            DbKind::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .connect()
                    .await
                    .expect("create SQLite file");
                file = Some(path);
            }
            other => panic!("no local {other} server"),
        }
        TempDatabase { kind, name, file }
    }

    fn params(&self) -> ConnectionParams {
        match self.kind {
            DbKind::Postgres => params_for(&pg_url(), DbKind::Postgres, Some(&self.name)),
            DbKind::Mariadb => params_for(&mariadb_url(), DbKind::Mariadb, Some(&self.name)),
            _ => {
                let mut params = ConnectionParams::new(DbKind::Sqlite);
                params.path = self
                    .file
                    .as_ref()
                    .map(|path| path.to_string_lossy().into_owned());
                params
            }
        }
    }

    async fn connect_with(&self, limits: Limits) -> Database {
        Database::connect(&self.params(), &limits)
            .await
            .expect("connect")
    }

    async fn connect(&self) -> Database {
        self.connect_with(quick_limits()).await
    }

    /// Set-up SQL, run with the test's own admin connection.
    async fn run(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self.kind {
            DbKind::Postgres => {
                let mut connection = PgConnectOptions::from_str(&pg_url())
                    .expect("PostgreSQL test URL")
                    .database(&self.name)
                    .connect()
                    .await
                    .expect("connect to test database");
                sqlx::raw_sql(sql)
                    .execute(&mut connection)
                    .await
                    .expect("set-up SQL runs");
            }
            DbKind::Mariadb => {
                let mut connection = MySqlConnectOptions::from_str(&mariadb_url())
                    .expect("MariaDB test URL")
                    .database(&self.name)
                    .connect()
                    .await
                    .expect("connect to test database");
                sqlx::raw_sql(sql)
                    .execute(&mut connection)
                    .await
                    .expect("set-up SQL runs");
            }
            _ => {
                let mut connection = SqliteConnectOptions::new()
                    .filename(self.file.as_ref().expect("SQLite file"))
                    .connect()
                    .await
                    .expect("open SQLite file");
                sqlx::raw_sql(sql)
                    .execute(&mut connection)
                    .await
                    .expect("set-up SQL runs");
            }
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
            return;
        }
        let (kind, name) = (self.kind, self.name.clone());
        run_detached(move || async move {
            if kind == DbKind::Postgres {
                if let Ok(mut admin) = PgConnectOptions::from_str(&pg_url())
                    .expect("PostgreSQL test URL")
                    .connect()
                    .await
                {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            } else if let Ok(mut admin) = MySqlConnectOptions::from_str(&mariadb_url())
                .expect("MariaDB test URL")
                .connect()
                .await
            {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}

// ---- helpers ----------------------------------------------------------------

fn plain(sql: &str) -> Rendered {
    Rendered {
        sql: sql.to_owned(),
        binds: Vec::new(),
    }
}

fn with_last_value(value: &str) -> PlaceholderValues {
    PlaceholderValues {
        last_value: Some(value.to_owned()),
        ..PlaceholderValues::default()
    }
}

/// Every batch, failing the test on an error.
async fn batches(database: &Database, query: &Rendered, batch_size: usize) -> Vec<Vec<Row>> {
    database
        .stream_batches(query, batch_size, Access::ReadWrite)
        .map(|batch| {
            batch
                .unwrap_or_else(|error| panic!("{}: {error}", query.sql))
                .rows()
        })
        .collect()
        .await
}

async fn all_rows(database: &Database, query: &Rendered) -> Vec<Row> {
    batches(database, query, 1000).await.concat()
}

fn ids(rows: &[Row]) -> Vec<i64> {
    rows.iter()
        .map(|row| {
            let id = row
                .get("id")
                .or_else(|| row.get("ID"))
                .unwrap_or_else(|| panic!("no id in {row:?}"));
            id.as_i64()
                .or_else(|| id.as_str().and_then(|text| text.parse().ok()))
                .unwrap_or_else(|| panic!("id {id} is not an integer"))
        })
        .collect()
}

async fn count_invoices(database: &Database) -> i64 {
    let rows = all_rows(database, &plain("SELECT COUNT(*) AS id FROM invoices")).await;
    ids(&rows)[0]
}

const INVOICE_COUNT: i64 = 2500;

fn invoice_date(id: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|start| start.checked_add_days(Days::new(id as u64)))
        .expect("date in range")
}

/// `invoices(id, name, date_paid, amount)` with 2 500 rows: invoice `n` was
/// paid on 2024-01-01 + n days and is worth n × 1.25.
async fn create_invoices(db: &TempDatabase) {
    let (date_type, amount_type) = match db.kind {
        DbKind::Sqlite => ("TEXT", "REAL"),
        _ => ("DATE", "DECIMAL(10,2)"),
    };
    let values: Vec<String> = (1..=INVOICE_COUNT)
        .map(|id| {
            format!(
                "({id}, 'name {id}', '{}', {})",
                invoice_date(id),
                id as f64 * 1.25
            )
        })
        .collect();
    db.run(&format!(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, \
         date_paid {date_type} NOT NULL, amount {amount_type} NOT NULL); \
         INSERT INTO invoices (id, name, date_paid, amount) VALUES {}",
        values.join(", ")
    ))
    .await;
}

// ---- batching, order, conversion, nesting -------------------------------------------

async fn streams_in_batches_in_order(kind: DbKind) {
    let db = TempDatabase::create(kind).await;
    create_invoices(&db).await;
    let database = db.connect().await;

    let query = plain("SELECT id, name, date_paid, amount FROM invoices ORDER BY id");
    let got = batches(&database, &query, 1000).await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 1000, 500], "{kind}");
    let rows = got.concat();
    assert_eq!(
        ids(&rows),
        (1..=INVOICE_COUNT).collect::<Vec<_>>(),
        "{kind}"
    );
    assert_eq!(
        Value::Object(rows[0].clone()),
        json!({"id": 1, "name": "name 1", "date_paid": "2024-01-02", "amount": 1.25}),
        "{kind}"
    );
    assert_eq!(
        Value::Object(rows[2498].clone()),
        json!({"id": 2499, "name": "name 2499", "date_paid": invoice_date(2499).to_string(), "amount": 3123.75}),
        "{kind}"
    );

    // Exact multiples end without an empty batch; an empty result yields nothing.
    let sizes: Vec<usize> = batches(&database, &query, 500)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [500; 5], "{kind}");
    assert!(
        batches(
            &database,
            &plain("SELECT id FROM invoices WHERE id < 0"),
            10
        )
        .await
        .is_empty()
    );

    // Dotted aliases nest.
    let quote = |alias: &str| match kind {
        DbKind::Mariadb => format!("`{alias}`"),
        _ => format!("\"{alias}\""),
    };
    let sql = format!(
        "SELECT id AS {}, name AS {}, amount AS {} FROM invoices WHERE id <= 2 ORDER BY id",
        quote("a.id"),
        quote("a.name"),
        quote("a.money.amount")
    );
    let rows = all_rows(&database, &plain(&sql)).await;
    assert_eq!(
        Value::Array(rows.into_iter().map(Value::Object).collect()),
        json!([
            {"a": {"id": 1, "name": "name 1", "money": {"amount": 1.25}}},
            {"a": {"id": 2, "name": "name 2", "money": {"amount": 2.5}}},
        ]),
        "{kind}"
    );
    database.close().await;
}

/// Each batch names its result's columns with the order their types give them
/// (SQLite keeps dates as TEXT and compares them as text).
#[tokio::test]
async fn batches_carry_their_columns_cursor_sorts() {
    for kind in [DbKind::Postgres, DbKind::Mariadb, DbKind::Sqlite] {
        let db = TempDatabase::create(kind).await;
        create_invoices(&db).await;
        let database = db.connect().await;
        let query = plain("SELECT id, name, date_paid, amount FROM invoices ORDER BY id");
        let batch = database
            .stream_batches(&query, 10, Access::ReadWrite)
            .next()
            .await
            .expect("a batch")
            .expect("rows");
        let sorts: Vec<(&str, CursorSort)> = batch
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.sort))
            .collect();
        let date = match kind {
            DbKind::Sqlite => CursorSort::Text,
            _ => CursorSort::Date,
        };
        assert_eq!(
            sorts,
            [
                ("id", CursorSort::Integer),
                ("name", CursorSort::Text),
                ("date_paid", date),
                ("amount", CursorSort::Decimal)
            ],
            "{kind}"
        );
        database.close().await;
    }
}

#[tokio::test]
async fn postgres_streams_in_batches_in_order() {
    streams_in_batches_in_order(DbKind::Postgres).await;
}

#[tokio::test]
async fn mariadb_streams_in_batches_in_order() {
    streams_in_batches_in_order(DbKind::Mariadb).await;
}

#[tokio::test]
async fn sqlite_streams_in_batches_in_order() {
    streams_in_batches_in_order(DbKind::Sqlite).await;
}

// ---- seed 001: the incremental query --------------------------------------------------

/// The seed's query, with the quote styles the dialect reads as a value: on
/// PostgreSQL `"…"` would be an identifier in plain SQL, so the template is
/// written with single quotes — and sluice-sqltpl also takes a placeholder
/// that is the whole of a `"…"` as the value, so both are tried everywhere.
async fn incremental_query_returns_rows_from_the_last_value(kind: DbKind) {
    let db = TempDatabase::create(kind).await;
    create_invoices(&db).await;
    let database = db.connect().await;
    let dialect = database.dialect();
    assert_eq!(dialect, kind.dialect());

    let last_value = invoice_date(2400).to_string();
    for template in [
        "SELECT * FROM invoices WHERE date_paid >= '@last_value@' ORDER BY id",
        "SELECT * FROM invoices WHERE date_paid >= \"@last_value@\" ORDER BY id",
        "SELECT * FROM invoices WHERE date_paid >= @last_value@ ORDER BY id",
    ] {
        let query = render_placeholders(template, dialect, &with_last_value(&last_value))
            .unwrap_or_else(|error| panic!("{kind}: {template}: {error}"));
        let rows = all_rows(&database, &query).await;
        assert_eq!(
            ids(&rows),
            (2400..=INVOICE_COUNT).collect::<Vec<_>>(),
            "{kind}: {}",
            query.sql
        );
        assert_eq!(rows[0]["date_paid"], json!(last_value), "{kind}");
    }

    // A last value past every row: nothing.
    let query = render_placeholders(
        "SELECT * FROM invoices WHERE date_paid >= '@last_value@'",
        dialect,
        &with_last_value("2999-01-01"),
    )
    .expect("renders");
    assert!(batches(&database, &query, 100).await.is_empty());
    database.close().await;
}

#[tokio::test]
async fn postgres_incremental_query() {
    incremental_query_returns_rows_from_the_last_value(DbKind::Postgres).await;
}

#[tokio::test]
async fn mariadb_incremental_query() {
    incremental_query_returns_rows_from_the_last_value(DbKind::Mariadb).await;
}

#[tokio::test]
async fn sqlite_incremental_query() {
    incremental_query_returns_rows_from_the_last_value(DbKind::Sqlite).await;
}

// ---- hostile placeholder values ---------------------------------------------------

const HOSTILE: [&str; 7] = [
    "' OR '1'='1",
    "x'; DROP TABLE invoices; --",
    "\\' OR 1=1 -- ",
    "*/ OR 1=1 /*",
    "$s_0$ OR true --",
    "nul\0byte",
    "; DELETE FROM invoices",
];

/// Ways a command may use a value: bare, as the whole of a `'…'` or `"…"`,
/// and spliced into a longer string literal.
fn hostile_templates(kind: DbKind) -> Vec<String> {
    let concat = match kind {
        DbKind::Mariadb | DbKind::Mysql => "CONCAT('k:', name)",
        DbKind::Sqlserver => "('k:' + name)",
        _ => "('k:' || name)",
    };
    vec![
        "SELECT id FROM invoices WHERE name = @last_value@ ORDER BY id".to_owned(),
        "SELECT id FROM invoices WHERE name = '@last_value@' ORDER BY id".to_owned(),
        "SELECT id FROM invoices WHERE name = \"@last_value@\" ORDER BY id".to_owned(),
        format!("SELECT id FROM invoices WHERE {concat} = 'k:@last_value@' ORDER BY id"),
    ]
}

/// Runs every hostile value through every template on `database`, whose
/// `invoices` has `total` rows, among them one named after each value in
/// `stored` (id 1000 + its index in [`HOSTILE`]). Each query must return
/// exactly the rows a literal comparison matches, and the table must keep all
/// its rows.
async fn hostile_values_change_nothing(
    database: &Database,
    kind: DbKind,
    total: i64,
    stored: &[&str],
) {
    for template in hostile_templates(kind) {
        for (index, value) in HOSTILE.iter().enumerate() {
            let rendered =
                render_placeholders(&template, database.dialect(), &with_last_value(value));
            let query = match rendered {
                Ok(query) => query,
                // A NUL cannot be written into SQL text; refusing it is safe.
                Err(TemplateError::NulInValue { .. }) if value.contains('\0') => continue,
                Err(error) => panic!("{kind}: {template} with {value:?}: {error}"),
            };
            assert!(
                kind != DbKind::Postgres || !value.contains('\0'),
                "PostgreSQL text cannot hold NUL; rendering must refuse it: {}",
                query.sql
            );
            let expected: Vec<i64> = if stored.contains(value) {
                vec![1000 + index as i64]
            } else {
                Vec::new()
            };
            let rows = all_rows(database, &query).await;
            assert_eq!(
                ids(&rows),
                expected,
                "{kind}: {value:?} through {template}: {}",
                query.sql
            );
        }
    }
    assert_eq!(count_invoices(database).await, total, "{kind}");
}

async fn hostile_values_on(kind: DbKind) {
    let db = TempDatabase::create(kind).await;
    let stored: Vec<&str> = HOSTILE
        .iter()
        .copied()
        .filter(|value| !value.contains('\0'))
        .collect();
    let escape = |value: &str| {
        let value = value.replace('\'', "''");
        if kind == DbKind::Mariadb {
            value.replace('\\', "\\\\")
        } else {
            value
        }
    };
    let mut rows: Vec<String> = (1..=5)
        .map(|id| format!("({id}, 'name {id}', '2024-01-01', 1)"))
        .collect();
    for (index, value) in HOSTILE.iter().enumerate() {
        if stored.contains(value) {
            rows.push(format!(
                "({}, '{}', '2024-01-01', 1)",
                1000 + index,
                escape(value)
            ));
        }
    }
    db.run(&format!(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, \
         date_paid VARCHAR(10) NOT NULL, amount INTEGER NOT NULL); \
         INSERT INTO invoices VALUES {}",
        rows.join(", ")
    ))
    .await;
    let database = db.connect().await;
    let total = 5 + stored.len() as i64;
    assert_eq!(count_invoices(&database).await, total);
    hostile_values_change_nothing(&database, kind, total, &stored).await;
    database.close().await;
}

#[tokio::test]
async fn postgres_hostile_values_change_nothing() {
    hostile_values_on(DbKind::Postgres).await;
}

#[tokio::test]
async fn mariadb_hostile_values_change_nothing() {
    hostile_values_on(DbKind::Mariadb).await;
}

#[tokio::test]
async fn sqlite_hostile_values_change_nothing() {
    hostile_values_on(DbKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_nul_in_a_value_is_refused_at_render_time() {
    for template in hostile_templates(DbKind::Postgres) {
        let error = render_placeholders(&template, Dialect::Postgres, &with_last_value("a\0b"))
            .expect_err("NUL refused");
        assert!(
            matches!(error, TemplateError::NulInValue { .. }),
            "{template}: {error}"
        );
    }
}

/// PostgreSQL's extended protocol and MySQL's prepared statements take one
/// statement. (SQLite, through sqlx, runs each statement of the text in turn:
/// the owner's SQL is theirs to write, and no value reaches the text there.)
#[tokio::test]
async fn a_second_statement_is_refused_not_run() {
    for kind in [DbKind::Postgres, DbKind::Mariadb] {
        let db = TempDatabase::create(kind).await;
        create_invoices(&db).await;
        let database = db.connect().await;
        let query = plain("SELECT id FROM invoices WHERE id = 1; DELETE FROM invoices");
        let outcome: Vec<_> = database
            .stream_batches(&query, 10, Access::ReadWrite)
            .collect()
            .await;
        assert!(
            outcome.iter().any(Result::is_err),
            "{kind}: two statements were accepted: {outcome:?}"
        );
        assert_eq!(count_invoices(&database).await, INVOICE_COUNT, "{kind}");
        database.close().await;
    }
}

// ---- commands may write (seed 001) ---------------------------------------------------

#[tokio::test]
async fn commands_may_write() {
    for kind in [DbKind::Postgres, DbKind::Mariadb, DbKind::Sqlite] {
        let db = TempDatabase::create(kind).await;
        create_invoices(&db).await;
        let database = db.connect().await;
        let insert = render_placeholders(
            "INSERT INTO invoices (id, name, date_paid, amount) VALUES (9999, '@last_value@', '2030-01-01', 1)",
            database.dialect(),
            &with_last_value("written"),
        )
        .expect("renders");
        assert!(batches(&database, &insert, 10).await.is_empty(), "{kind}");
        let rows = all_rows(
            &database,
            &plain("SELECT id, name FROM invoices WHERE id = 9999"),
        )
        .await;
        assert_eq!(
            Value::Object(rows[0].clone()),
            json!({"id": 9999, "name": "written"}),
            "{kind}"
        );
        database.close().await;
    }
}

// ---- PostgreSQL: memory, timeouts, errors, connections -----------------------------

#[tokio::test]
async fn postgres_streams_a_large_result_batch_by_batch() {
    let db = TempDatabase::create(DbKind::Postgres).await;
    let database = db.connect().await;
    let query = plain("SELECT g AS n FROM generate_series(1, 200000) AS g");
    let mut stream = database.stream_batches(&query, 1000, Access::ReadWrite);
    let (mut count, mut batches, mut largest) = (0usize, 0usize, 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch.expect("batch");
        count += batch.len();
        batches += 1;
        largest = largest.max(batch.len());
    }
    drop(stream);
    assert_eq!(count, 200_000);
    assert_eq!(batches, 200);
    assert_eq!(largest, 1000);
    database.close().await;
}

fn one_second_limits(max_connections: u32) -> Limits {
    Limits {
        max_connections,
        connect_timeout: Duration::from_secs(3),
        query_timeout: Duration::from_secs(1),
    }
}

/// The session's statement_timeout, read outside `stream_batches` (which
/// lifts it while it runs).
async fn statement_timeout(database: &Database) -> String {
    let rows = database
        .fetch_json("SELECT current_setting('statement_timeout') AS setting", 1)
        .await
        .expect("setting");
    rows.rows[0]["setting"].as_str().expect("text").to_owned()
}

#[tokio::test]
async fn postgres_times_out_waiting_for_the_first_batch() {
    let db = TempDatabase::create(DbKind::Postgres).await;
    let database = db.connect_with(one_second_limits(1)).await;
    let query = plain("SELECT pg_sleep(3) AS slept");
    let outcome: Vec<_> = database
        .stream_batches(&query, 10, Access::ReadWrite)
        .collect()
        .await;
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert!(
        matches!(&outcome[0], Err(ConnectError::Timeout(_))),
        "{outcome:?}"
    );
    // The interrupted connection was closed, not handed to the next user
    // with the statement still running or its setting changed.
    let rows = all_rows(&database, &plain("SELECT 1 AS id")).await;
    assert_eq!(ids(&rows), [1]);
    assert_eq!(statement_timeout(&database).await, "1s");
    database.close().await;
}

/// The query timeout bounds each batch, not the stream: a consumer that
/// pauses longer than the timeout between batches still gets every row
/// (the server's statement_timeout, which equals the query timeout, is
/// lifted for the stream), and the connection's own setting is back
/// afterwards.
#[tokio::test]
async fn postgres_timeout_applies_per_batch_not_to_the_stream() {
    let db = TempDatabase::create(DbKind::Postgres).await;
    let database = db.connect_with(one_second_limits(1)).await;
    // About 25 MB: far more than the socket buffers, so the server has to
    // wait for the paused consumer.
    let query =
        plain("SELECT g AS n, repeat('x', 120) AS pad FROM generate_series(1, 200000) AS g");
    let mut stream = database.stream_batches(&query, 5000, Access::ReadWrite);
    let mut count = 0;
    let mut paused = false;
    while let Some(batch) = stream.next().await {
        count += batch.expect("batch").len();
        if !paused {
            paused = true;
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }
    drop(stream);
    assert_eq!(count, 200_000);
    assert_eq!(statement_timeout(&database).await, "1s");
    database.close().await;
}

#[tokio::test]
async fn postgres_a_stream_dropped_early_frees_its_connection() {
    let db = TempDatabase::create(DbKind::Postgres).await;
    let database = db.connect_with(one_second_limits(1)).await;
    let query = plain("SELECT g AS id FROM generate_series(1, 1000000) AS g");
    {
        let mut stream = database.stream_batches(&query, 100, Access::ReadWrite);
        let first = stream.next().await.expect("a batch").expect("rows");
        assert_eq!(ids(&first.rows()), (1..=100).collect::<Vec<_>>());
    }
    // With a pool of one, this only runs if the connection came back (or was
    // closed and replaced) at once, without reading the rest of the million rows.
    assert_eq!(statement_timeout(&database).await, "1s");
    database.close().await;
}

/// MariaDB and SQLite: a stream dropped after its first batch gives its
/// connection up at once, with a pool of one.
#[tokio::test]
async fn a_stream_dropped_early_frees_its_connection() {
    for kind in [DbKind::Mariadb, DbKind::Sqlite] {
        let db = TempDatabase::create(kind).await;
        let database = db.connect_with(one_second_limits(1)).await;
        let query = plain(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300000) \
             SELECT n AS id FROM s",
        );
        {
            let mut stream = database.stream_batches(&query, 100, Access::ReadWrite);
            let first = stream.next().await.expect("a batch").expect("rows");
            assert_eq!(first.len(), 100, "{kind}");
        }
        let rows = all_rows(&database, &plain("SELECT 1 AS id")).await;
        assert_eq!(ids(&rows), [1], "{kind}");
        database.close().await;
    }
}

#[tokio::test]
async fn postgres_a_conversion_error_ends_the_stream_naming_the_column() {
    let db = TempDatabase::create(DbKind::Postgres).await;
    let database = db.connect().await;
    let query = plain(
        "SELECT g AS id, CASE WHEN g = 3 THEN point(1, 2) END AS location \
         FROM generate_series(1, 10) AS g ORDER BY g",
    );
    let outcome: Vec<_> = database
        .stream_batches(&query, 2, Access::ReadWrite)
        .collect()
        .await;
    assert_eq!(outcome.len(), 2, "{outcome:?}");
    assert_eq!(
        ids(&outcome[0].as_ref().expect("first batch").rows()),
        [1, 2]
    );
    match &outcome[1] {
        Err(ConnectError::Query(message)) => {
            assert!(message.contains("\"location\""), "{message}");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
    database.close().await;
}

#[tokio::test]
async fn query_errors_end_the_stream() {
    let db = TempDatabase::create(DbKind::Sqlite).await;
    let database = db.connect().await;
    let outcome: Vec<_> = database
        .stream_batches(&plain("SELECT * FROM no_such_table"), 10, Access::ReadWrite)
        .collect()
        .await;
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert!(
        matches!(&outcome[0], Err(ConnectError::Query(message)) if message.contains("no_such_table")),
        "{outcome:?}"
    );
    database.close().await;
}

// ---- SQL Server and Oracle, when a server is named ----------------------------------

/// Creates `invoices_<unique>` through `stream_batches` itself (a command may
/// run any statement), fills it, and runs the incremental query and the
/// hostile values against it; the table is dropped at the end.
async fn remote_stream_checks(database: &Database, kind: DbKind) {
    let table = unique_name("invoices").to_uppercase();
    let run = |sql: String| async move {
        let outcome: Vec<_> = database
            .stream_batches(&plain(&sql), 10, Access::ReadWrite)
            .collect()
            .await;
        assert!(outcome.iter().all(Result::is_ok), "{sql}: {outcome:?}");
    };
    let (text, date) = match kind {
        DbKind::Oracle => ("VARCHAR2(100)", "VARCHAR2(10)"),
        _ => ("NVARCHAR(100)", "VARCHAR(10)"),
    };
    run(format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name {text} NOT NULL, date_paid {date} NOT NULL)"
    ))
    .await;
    let result = async {
        for id in 1..=30 {
            run(format!(
                "INSERT INTO {table} (id, name, date_paid) VALUES ({id}, 'name {id}', '{}')",
                invoice_date(id)
            ))
            .await;
        }
        let last_value = invoice_date(25).to_string();
        for template in [
            format!("SELECT id FROM {table} WHERE date_paid >= '@last_value@' ORDER BY id"),
            format!("SELECT id FROM {table} WHERE date_paid >= @last_value@ ORDER BY id"),
        ] {
            let query =
                render_placeholders(&template, kind.dialect(), &with_last_value(&last_value))
                    .expect("renders");
            let got = batches(database, &query, 4).await;
            let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
            assert_eq!(sizes, [4, 2], "{kind}: {}", query.sql);
            assert_eq!(ids(&got.concat()), (25..=30).collect::<Vec<_>>());
        }
        for template in [
            format!("SELECT id FROM {table} WHERE name = '@last_value@' ORDER BY id"),
            format!("SELECT id FROM {table} WHERE name = @last_value@ ORDER BY id"),
        ] {
            for value in HOSTILE {
                let query =
                    match render_placeholders(&template, kind.dialect(), &with_last_value(value)) {
                        Ok(query) => query,
                        Err(TemplateError::NulInValue { .. }) => continue,
                        Err(error) => panic!("{template} with {value:?}: {error}"),
                    };
                let outcome: Vec<_> = database
                    .stream_batches(&query, 100, Access::ReadWrite)
                    .collect()
                    .await;
                match outcome.as_slice() {
                    [] => {}
                    // A server may refuse a NUL even as a bound value; that
                    // too returns no rows.
                    [Err(_)] if value.contains('\0') => {}
                    other => panic!("{kind}: {value:?}: {}: {other:?}", query.sql),
                }
            }
        }
        let rows = all_rows(
            database,
            &plain(&format!("SELECT COUNT(*) AS id FROM {table}")),
        )
        .await;
        assert_eq!(ids(&rows), [30]);
    };
    result.await;
    run(format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn sqlserver_streams_binds_and_survives_hostile_values() {
    let Ok(url) = std::env::var("SLUICE_TEST_MSSQL_URL") else {
        println!("skipped: set SLUICE_TEST_MSSQL_URL");
        return;
    };
    let params = parse_connection_string(&url, Some(DbKind::Sqlserver)).expect("test URL parses");
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("connect");
    let rows = all_rows(
        &database,
        &plain("SELECT 1 AS [a.id], N'x' AS [a.name] UNION ALL SELECT 2, N'y'"),
    )
    .await;
    assert_eq!(
        rows[0],
        json!({"a": {"id": 1, "name": "x"}})
            .as_object()
            .cloned()
            .expect("object")
    );
    remote_stream_checks(&database, DbKind::Sqlserver).await;
    database.close().await;
}

#[tokio::test]
async fn oracle_streams_binds_and_survives_hostile_values() {
    let Ok(url) = std::env::var("SLUICE_TEST_ORACLE_URL") else {
        println!("skipped: set SLUICE_TEST_ORACLE_URL");
        return;
    };
    let params = parse_connection_string(&url, Some(DbKind::Oracle)).expect("test URL parses");
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("connect");
    let rows = all_rows(
        &database,
        &plain("SELECT 1 AS \"a.id\", 'x' AS \"a.name\" FROM dual"),
    )
    .await;
    assert_eq!(
        rows[0],
        json!({"a": {"id": 1, "name": "x"}})
            .as_object()
            .cloned()
            .expect("object")
    );
    remote_stream_checks(&database, DbKind::Oracle).await;
    database.close().await;
}

// ---- session settings the renderer relies on ---------------------------------------

/// A command may change its session (`SET …`), and pooled connections are reused:
/// the settings sluice-sqltpl's reading of literals relies on are restored before
/// every run, whatever an earlier command left behind.
#[tokio::test]
async fn an_earlier_command_cannot_change_how_literals_are_read() {
    for (kind, spoil, read) in [
        (
            DbKind::Postgres,
            "SET standard_conforming_strings = off",
            "SELECT current_setting('standard_conforming_strings') AS setting",
        ),
        (
            DbKind::Mariadb,
            "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES,STRICT_TRANS_TABLES'",
            "SELECT @@SESSION.sql_mode AS setting",
        ),
    ] {
        let db = TempDatabase::create(kind).await;
        // One connection: the spoiled session is the one the next run gets.
        let database = db.connect_with(one_second_limits(1)).await;
        assert!(batches(&database, &plain(spoil), 10).await.is_empty());
        let rows = all_rows(&database, &plain(read)).await;
        let setting = rows[0]["setting"].as_str().expect("text").to_owned();
        match kind {
            DbKind::Postgres => assert_eq!(setting, "on"),
            _ => {
                assert!(
                    !setting.contains("NO_BACKSLASH_ESCAPES") && !setting.contains("ANSI_QUOTES"),
                    "{setting}"
                );
                assert!(
                    setting.contains("STRICT_TRANS_TABLES"),
                    "the rest is kept: {setting}"
                );
            }
        }
        database.close().await;
    }
}
