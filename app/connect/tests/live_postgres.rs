//! Against the local PostgreSQL (`SLUICE_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication).
//! Each test works in its own database.

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_connect::{ConnectError, Database, DbKind, Limits, TableKind, TableRef, TlsMode};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

use common::{closed_port, params_for, pg_url, quick_limits, run_detached, unique_name};

/// A database of its own, dropped (WITH FORCE) when the guard goes away.
struct TempDatabase {
    name: String,
}

impl TempDatabase {
    async fn create() -> TempDatabase {
        let name = unique_name("sluice_ct");
        let mut admin = admin().await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        TempDatabase { name }
    }

    async fn run(&self, sql: &str) {
        let options = admin_options().database(&self.name);
        let mut connection = options.connect().await.expect("connect to test database");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
    }

    async fn connect(&self) -> Database {
        Database::connect(&self.params(), &quick_limits())
            .await
            .expect("connect")
    }

    fn params(&self) -> sluice_connect::ConnectionParams {
        params_for(&pg_url(), DbKind::Postgres, Some(&self.name))
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        run_detached(move || async move {
            let mut admin = admin().await;
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        });
    }
}

fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&pg_url()).expect("PostgreSQL test URL")
}

async fn admin() -> PgConnection {
    admin_options().connect().await.expect("admin connection")
}

fn table(name: &str) -> TableRef {
    TableRef {
        schema: Some("public".into()),
        name: name.into(),
        kind: TableKind::Table,
    }
}

const ALL_TYPES: &str = r#"
CREATE TABLE all_types (
    id integer PRIMARY KEY,
    c_smallint smallint, c_integer integer, c_bigint bigint,
    c_real real, c_double double precision,
    c_numeric_exact numeric(38,10), c_numeric_big numeric(38,10),
    c_boolean boolean, c_text text, c_varchar varchar(20), c_char char(5),
    c_date date, c_time time, c_timestamp timestamp, c_timestamptz timestamptz,
    c_interval interval, c_json json, c_jsonb jsonb, c_uuid uuid, c_bytea bytea,
    c_int_array int[], c_text_array text[], c_inet inet
);
INSERT INTO all_types VALUES (
    1, -32768, 2147483647, 9223372036854775807,
    1.5, 0.1,
    123.45, 1234567890123456789012345678.1234567891,
    true, 'héllo "quoted"', 'varchar', 'ab',
    '2024-01-31', '12:34:56.123456', '2024-01-31 12:34:56.123456', '2024-01-31 12:34:56.5+02',
    '1 year 2 mons 3 days 04:05:06.5', '{"a": [1, 2.5, null]}', '{"b": {"c": true}}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xdeadbeef',
    '{1,NULL,3}', '{"x","y z",NULL}', '192.168.1.0/24'
);
INSERT INTO all_types (id) VALUES (2);
CREATE VIEW all_types_view AS SELECT id, c_text FROM all_types;
"#;

#[tokio::test]
async fn explores_and_previews_every_common_type() {
    let db = TempDatabase::create().await;
    db.run(ALL_TYPES).await;
    let database = db.connect().await;
    assert_eq!(database.kind(), DbKind::Postgres);

    let report = database.test().await.expect("test");
    assert!(
        report.server_version.starts_with("PostgreSQL 1"),
        "{report:?}"
    );

    assert!(
        database
            .schemas()
            .await
            .expect("schemas")
            .contains(&"public".to_owned())
    );
    let tables = database.tables().await.expect("tables");
    assert_eq!(
        tables,
        [
            table("all_types"),
            TableRef {
                kind: TableKind::View,
                ..table("all_types_view")
            }
        ]
    );

    let columns = database
        .columns(&table("all_types"))
        .await
        .expect("columns");
    let described: Vec<_> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable))
        .collect();
    assert_eq!(described[0], ("id", "integer", false));
    assert_eq!(described[6], ("c_numeric_exact", "numeric(38,10)", true));
    assert_eq!(described[21], ("c_int_array", "integer[]", true));

    let preview = database
        .preview(&table("all_types"), 10)
        .await
        .expect("preview");
    assert_eq!(preview.columns.len(), 24);
    assert_eq!(preview.columns[0], "id");
    let rows: Vec<Value> = preview.rows.into_iter().map(Value::Object).collect();
    assert_eq!(
        rows[0],
        json!({
            "id": 1,
            "c_smallint": -32768,
            "c_integer": 2147483647,
            "c_bigint": 9223372036854775807_i64,
            "c_real": 1.5,
            "c_double": 0.1,
            "c_numeric_exact": 123.45,
            "c_numeric_big": "1234567890123456789012345678.1234567891",
            "c_boolean": true,
            "c_text": "héllo \"quoted\"",
            "c_varchar": "varchar",
            "c_char": "ab   ",
            "c_date": "2024-01-31",
            "c_time": "12:34:56.123456",
            "c_timestamp": "2024-01-31T12:34:56.123456",
            "c_timestamptz": "2024-01-31T10:34:56.500000Z",
            "c_interval": "P1Y2M3DT4H5M6.5S",
            "c_json": {"a": [1, 2.5, null]},
            "c_jsonb": {"b": {"c": true}},
            "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "c_bytea": "3q2+7w==",
            "c_int_array": [1, null, 3],
            "c_text_array": ["x", "y z", null],
            "c_inet": "192.168.1.0/24"
        })
    );
    let nulls = rows[1].as_object().expect("object");
    assert_eq!(nulls["id"], json!(1 + 1));
    assert!(nulls.iter().skip(1).all(|(_, v)| v.is_null()), "{nulls:?}");

    let one = database
        .preview(&table("all_types"), 0)
        .await
        .expect("clamped to 1");
    assert_eq!(one.rows.len(), 1);
    let view = database
        .preview(
            &TableRef {
                kind: TableKind::View,
                ..table("all_types_view")
            },
            5,
        )
        .await
        .expect("view preview");
    assert_eq!(view.columns, ["id", "c_text"]);
    database.close().await;
}

#[tokio::test]
async fn hostile_table_names_cannot_inject_sql() {
    let db = TempDatabase::create().await;
    db.run(r#"CREATE TABLE t (id int); INSERT INTO t VALUES (1);
              CREATE TABLE "x""; DROP TABLE t; --" (v text); INSERT INTO "x""; DROP TABLE t; --" VALUES ('safe');"#)
        .await;
    let database = db.connect().await;

    let unknown = table("x\"; DROP TABLE t; -- not listed");
    let error = database
        .preview(&unknown, 5)
        .await
        .expect_err("unknown table");
    assert_eq!(error.category(), "no_such_table", "{error}");

    let hostile = table("x\"; DROP TABLE t; --");
    let preview = database
        .preview(&hostile, 5)
        .await
        .expect("quoted name works");
    assert_eq!(Value::Object(preview.rows[0].clone()), json!({"v": "safe"}));

    let still_there = database.preview(&table("t"), 5).await.expect("t survives");
    assert_eq!(still_there.rows.len(), 1);
    let wrong_schema = TableRef {
        schema: Some("public\"; --".into()),
        ..table("t")
    };
    assert!(database.preview(&wrong_schema, 1).await.is_err());
}

#[tokio::test]
async fn fetch_json_reads_at_most_limit_rows_and_never_writes() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t AS SELECT generate_series(1, 50) AS n")
        .await;
    let database = db.connect().await;
    let rows = database
        .fetch_json("SELECT n, n * 2 AS \"double.value\" FROM t ORDER BY n", 3)
        .await
        .expect("query");
    assert_eq!(rows.columns, ["n", "double.value"]);
    assert_eq!(rows.rows.len(), 3);
    assert_eq!(
        Value::Object(rows.rows[2].clone()),
        json!({"n": 3, "double.value": 6})
    );

    let empty = database
        .fetch_json("SELECT n AS only_column FROM t WHERE false", 10)
        .await
        .expect("empty result");
    assert_eq!(empty.columns, ["only_column"]);
    assert!(empty.rows.is_empty());

    let error = database
        .fetch_json("DELETE FROM t RETURNING n", 10)
        .await
        .expect_err("read-only");
    assert_eq!(error.category(), "query", "{error}");
    let count = database
        .fetch_json("SELECT count(*) AS c FROM t", 1)
        .await
        .expect("count");
    assert_eq!(count.rows[0]["c"], json!(50));
}

#[tokio::test]
async fn slow_queries_time_out() {
    let db = TempDatabase::create().await;
    let limits = Limits {
        query_timeout: Duration::from_secs(1),
        ..quick_limits()
    };
    let database = Database::connect(&db.params(), &limits)
        .await
        .expect("connect");
    let started = Instant::now();
    let error = database
        .fetch_json("SELECT pg_sleep(5)", 1)
        .await
        .expect_err("times out");
    assert!(matches!(error, ConnectError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // The pool is still usable afterwards.
    database.test().await.expect("still connected");
}

#[tokio::test]
async fn unknown_role_is_an_authentication_error() {
    // Local trust authentication accepts any password, so a wrong password
    // cannot be shown here; a role that does not exist is refused the same way.
    let db = TempDatabase::create().await;
    let mut params = db.params();
    params.username = Some(unique_name("no_such_role"));
    params.password = Some("s3cret-pw".into());
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "authentication", "{error}");
    assert!(!error.to_string().contains("s3cret-pw"), "{error}");
}

#[tokio::test]
async fn unknown_database_is_reported_as_such() {
    let params = params_for(&pg_url(), DbKind::Postgres, Some(&unique_name("missing")));
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "unknown_database", "{error}");
}

#[tokio::test]
async fn closed_ports_are_unreachable_within_the_connect_timeout() {
    let mut params = params_for(&pg_url(), DbKind::Postgres, Some("postgres"));
    params.host = Some("127.0.0.1".into());
    params.port = Some(closed_port());
    let started = Instant::now();
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "unreachable", "{error}");
    assert!(error.to_string().contains("127.0.0.1:"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

async fn server_has_tls() -> bool {
    let mut admin = admin().await;
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .expect("SHOW ssl");
    let _ = admin.close().await;
    ssl == "on"
}

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[tokio::test]
async fn tls_modes_verify_certificates_and_fall_back_only_without_tls() {
    let mut params = params_for(&pg_url(), DbKind::Postgres, Some("postgres"));
    params.tls = TlsMode::VerifyFull;
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "tls", "{error}");

    params.tls = TlsMode::Preferred;
    if !server_has_tls().await {
        // No TLS at all on the server: "preferred" goes on in plain text.
        Database::connect(&params, &quick_limits())
            .await
            .expect("preferred connects");
        return;
    }
    // The server has TLS with a self-signed certificate: a certificate
    // failure is an error, never a reason to fall back to plain text.
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "tls", "{error}");
    if !std::path::Path::new(SNAKEOIL).exists() {
        return;
    }
    // Trusting the server's certificate as CA makes "preferred" connect over
    // verified TLS (Debian's snake-oil certificate is issued to `localhost`).
    params.options.insert("sslrootcert".into(), SNAKEOIL.into());
    params.host = Some("localhost".into());
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("preferred connects");
    let ssl = database
        .fetch_json(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            1,
        )
        .await
        .expect("ssl status");
    assert_eq!(ssl.rows[0]["ssl"], json!(true));
    // "required" checks the chain but not the host name.
    params.tls = TlsMode::Required;
    params.host = Some("127.0.0.1".into());
    Database::connect(&params, &quick_limits())
        .await
        .expect("required connects");
}

fn texts(rows: &sluice_connect::RowSet, column: &str) -> Vec<String> {
    rows.rows
        .iter()
        .map(|row| row[column].as_str().unwrap_or("<not text>").to_owned())
        .collect()
}

#[tokio::test]
async fn transactions_commit_every_statement_and_count_rows_per_statement() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v text PRIMARY KEY); INSERT INTO t VALUES ('old')")
        .await;
    let database = db.connect().await;
    let statements = [
        "INSERT INTO t VALUES ('a'), ('b')".to_owned(),
        // Several statements in one text: their counts add up.
        "UPDATE t SET v = 'a2' WHERE v = 'a'; DELETE FROM t WHERE v IN ('b', 'old');".to_owned(),
        "DELETE FROM t WHERE v = 'nothing'".to_owned(),
    ];
    let executed = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Commit)
        .await
        .expect("commits");
    assert_eq!(executed.rows_affected, [2, 3, 0]);
    assert!(executed.committed);
    let rows = database
        .fetch_json("SELECT v FROM t ORDER BY v", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), ["a2"]);
}

#[tokio::test]
async fn test_runs_report_counts_and_keep_nothing() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
        .await;
    let database = db.connect().await;
    let statements = [
        "INSERT INTO t VALUES ('x'), ('y')".to_owned(),
        "DELETE FROM t".to_owned(),
    ];
    let executed = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Rollback)
        .await
        .expect("test run");
    assert_eq!(executed.rows_affected, [2, 3]);
    assert!(!executed.committed);
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), ["kept"]);
}

#[tokio::test]
async fn a_failing_statement_is_named_and_nothing_of_the_transaction_is_kept() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v text PRIMARY KEY)").await;
    let database = Database::connect(
        &db.params(),
        &Limits {
            max_connections: 1,
            ..quick_limits()
        },
    )
    .await
    .expect("connect");
    let statements = [
        "INSERT INTO t VALUES ('a')".to_owned(),
        "INSERT INTO t VALUES ('a')".to_owned(),
        "INSERT INTO t VALUES ('c')".to_owned(),
    ];
    let error = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Commit)
        .await
        .expect_err("duplicate key");
    assert_eq!(error.statement_index, Some(1));
    assert_eq!(error.error.category(), "query");
    assert!(error.to_string().contains("duplicate key"), "{error}");
    // The one pooled connection was rolled back and is usable again.
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert!(rows.rows.is_empty(), "{rows:?}");
    let executed = database
        .execute_in_transaction(&statements[..1], sluice_connect::Finish::Commit)
        .await
        .expect("the connection is reusable");
    assert_eq!(executed.rows_affected, [1]);
}

#[tokio::test]
async fn a_statement_past_the_query_timeout_fails_and_its_transaction_is_not_kept() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v text)").await;
    let database = Database::connect(
        &db.params(),
        &Limits {
            max_connections: 1,
            connect_timeout: Duration::from_secs(3),
            query_timeout: Duration::from_secs(1),
        },
    )
    .await
    .expect("connect");
    let statements = [
        "INSERT INTO t VALUES ('a')".to_owned(),
        "SELECT pg_sleep(5)".to_owned(),
    ];
    let started = Instant::now();
    let error = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Commit)
        .await
        .expect_err("too slow");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.statement_index, Some(1));
    assert_eq!(error.error.category(), "timeout", "{error}");
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert!(rows.rows.is_empty(), "{rows:?}");
    let executed = database
        .execute_in_transaction(&statements[..1], sluice_connect::Finish::Commit)
        .await
        .expect("a later transaction runs");
    assert_eq!(executed.rows_affected, [1]);
}
