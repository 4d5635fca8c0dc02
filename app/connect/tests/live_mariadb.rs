//! Against the local MariaDB (`SLUICE_TEST_MARIADB_URL`, default
//! `mysql://root@127.0.0.1:3306`, empty root password). Each test works in its
//! own database (and, where needed, its own user).

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_connect::{ConnectError, Database, DbKind, Limits, TableKind, TableRef, TlsMode};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, MySqlConnection};

use common::{closed_port, mariadb_url, params_for, quick_limits, run_detached, unique_name};

/// A database (and optionally a user) of its own, dropped when the guard goes away.
struct TempDatabase {
    name: String,
    user: Option<String>,
}

impl TempDatabase {
    async fn create() -> TempDatabase {
        let name = unique_name("sluice_ct");
        admin_run(&format!("CREATE DATABASE `{name}`")).await;
        TempDatabase { name, user: None }
    }

    /// A user who may read this database, with `password`.
    async fn create_user(&mut self, password: &str) -> String {
        let user = unique_name("sluice_ct_user");
        admin_run(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
             GRANT SELECT ON `{}`.* TO '{user}'@'%'",
            self.name
        ))
        .await;
        self.user = Some(user.clone());
        user
    }

    async fn run(&self, sql: &str) {
        let options = admin_options().database(&self.name);
        let mut connection = options.connect().await.expect("connect to test database");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
    }

    fn params(&self) -> sluice_connect::ConnectionParams {
        params_for(&mariadb_url(), DbKind::Mariadb, Some(&self.name))
    }

    async fn connect(&self) -> Database {
        Database::connect(&self.params(), &quick_limits())
            .await
            .expect("connect")
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let user = self.user.clone();
        run_detached(move || async move {
            let mut admin = admin().await;
            let mut cleanup = format!("DROP DATABASE IF EXISTS `{name}`");
            if let Some(user) = user {
                cleanup.push_str(&format!("; DROP USER IF EXISTS '{user}'@'%'"));
            }
            let _ = sqlx::raw_sql(AssertSqlSafe(cleanup))
                .execute(&mut admin)
                .await;
        });
    }
}

fn admin_options() -> MySqlConnectOptions {
    MySqlConnectOptions::from_str(&mariadb_url()).expect("MariaDB test URL")
}

async fn admin() -> MySqlConnection {
    admin_options().connect().await.expect("admin connection")
}

async fn admin_run(sql: &str) {
    let mut admin = admin().await;
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut admin)
        .await
        .expect("admin SQL runs");
}

fn table(db: &TempDatabase, name: &str) -> TableRef {
    TableRef {
        schema: Some(db.name.clone()),
        name: name.into(),
        kind: TableKind::Table,
    }
}

const ALL_TYPES: &str = r#"
CREATE TABLE all_types (
    id INT PRIMARY KEY,
    c_tinyint TINYINT, c_smallint SMALLINT, c_int INT, c_bigint_unsigned BIGINT UNSIGNED,
    c_float FLOAT, c_double DOUBLE, c_decimal DECIMAL(30,10), c_decimal_exact DECIMAL(30,10),
    c_bit BIT(1), c_bool BOOLEAN,
    c_char CHAR(5), c_varchar VARCHAR(20), c_text TEXT, c_enum ENUM('small', 'large'),
    c_date DATE, c_time TIME, c_datetime DATETIME(6), c_timestamp TIMESTAMP NULL DEFAULT NULL,
    c_json JSON, c_blob BLOB, c_varbinary VARBINARY(8)
);
INSERT INTO all_types VALUES (
    1, -128, 32767, -2147483648, 18446744073709551615,
    1.5, 0.1, 12345678901234567890.1234567891, 2.5,
    b'1', TRUE,
    'ab', 'varchar', 'héllo "text"', 'large',
    '2024-01-31', '-12:34:56', '2024-01-31 12:34:56.123456', '2024-01-31 12:34:56',
    '{"a": [1, 2.5, null]}', X'DEADBEEF', X'00FF'
);
INSERT INTO all_types (id) VALUES (2);
CREATE VIEW all_types_view AS SELECT id, c_text FROM all_types;
"#;

#[tokio::test]
async fn explores_and_previews_every_common_type() {
    let db = TempDatabase::create().await;
    db.run(ALL_TYPES).await;
    let database = db.connect().await;
    assert_eq!(database.kind(), DbKind::Mariadb);

    let report = database.test().await.expect("test");
    assert!(report.server_version.contains("MariaDB"), "{report:?}");
    assert_eq!(
        database.schemas().await.expect("schemas"),
        vec![db.name.clone()]
    );
    let tables = database.tables().await.expect("tables");
    assert_eq!(
        tables,
        [
            table(&db, "all_types"),
            TableRef {
                kind: TableKind::View,
                ..table(&db, "all_types_view")
            }
        ]
    );

    let columns = database
        .columns(&table(&db, "all_types"))
        .await
        .expect("columns");
    let described: Vec<_> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable))
        .collect();
    assert_eq!(described[0], ("id", "int(11)", false));
    assert_eq!(
        described[4],
        ("c_bigint_unsigned", "bigint(20) unsigned", true)
    );
    assert_eq!(described[19], ("c_json", "json", true));

    let preview = database
        .preview(&table(&db, "all_types"), 10)
        .await
        .expect("preview");
    assert_eq!(preview.columns.len(), 22);
    let rows: Vec<Value> = preview.rows.into_iter().map(Value::Object).collect();
    assert_eq!(
        rows[0],
        json!({
            "id": 1,
            "c_tinyint": -128,
            "c_smallint": 32767,
            "c_int": -2147483648_i64,
            "c_bigint_unsigned": 18446744073709551615_u64,
            "c_float": 1.5,
            "c_double": 0.1,
            "c_decimal": "12345678901234567890.1234567891",
            "c_decimal_exact": 2.5,
            "c_bit": true,
            "c_bool": 1,
            "c_char": "ab",
            "c_varchar": "varchar",
            "c_text": "héllo \"text\"",
            "c_enum": "large",
            "c_date": "2024-01-31",
            "c_time": "-12:34:56",
            "c_datetime": "2024-01-31T12:34:56.123456",
            "c_timestamp": "2024-01-31T12:34:56Z",
            "c_json": {"a": [1, 2.5, null]},
            "c_blob": "3q2+7w==",
            "c_varbinary": "AP8="
        })
    );
    let nulls = rows[1].as_object().expect("object");
    assert_eq!(nulls["id"], json!(2));
    assert!(nulls.iter().skip(1).all(|(_, v)| v.is_null()), "{nulls:?}");
    database.close().await;
}

#[tokio::test]
async fn hostile_table_names_cannot_inject_sql() {
    let db = TempDatabase::create().await;
    db.run(
        "CREATE TABLE t (id INT); INSERT INTO t VALUES (1); \
         CREATE TABLE `x``; DROP TABLE t; --` (v TEXT); \
         INSERT INTO `x``; DROP TABLE t; --` VALUES ('safe');",
    )
    .await;
    let database = db.connect().await;

    let unknown = table(&db, "x`; DROP TABLE t; -- not listed");
    let error = database
        .preview(&unknown, 5)
        .await
        .expect_err("unknown table");
    assert_eq!(error.category(), "no_such_table", "{error}");

    let hostile = table(&db, "x`; DROP TABLE t; --");
    let preview = database
        .preview(&hostile, 5)
        .await
        .expect("quoted name works");
    assert_eq!(Value::Object(preview.rows[0].clone()), json!({"v": "safe"}));
    let still_there = database
        .preview(&table(&db, "t"), 5)
        .await
        .expect("t survives");
    assert_eq!(still_there.rows.len(), 1);
}

#[tokio::test]
async fn fetch_json_reads_at_most_limit_rows_and_never_writes() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (n INT); INSERT INTO t VALUES (1), (2), (3), (4), (5);")
        .await;
    let database = db.connect().await;
    let rows = database
        .fetch_json("SELECT n, JSON_OBJECT('k', n) AS j FROM t ORDER BY n", 2)
        .await
        .expect("query");
    assert_eq!(rows.columns, ["n", "j"]);
    assert_eq!(rows.rows.len(), 2);
    let empty = database
        .fetch_json("SELECT n FROM t WHERE n > 100", 10)
        .await
        .expect("empty");
    assert_eq!(empty.columns, ["n"]);
    let error = database
        .fetch_json("DELETE FROM t", 10)
        .await
        .expect_err("read-only transaction");
    assert_eq!(error.category(), "query", "{error}");
    let count = database
        .fetch_json("SELECT COUNT(*) AS c FROM t", 1)
        .await
        .expect("count");
    assert_eq!(count.rows[0]["c"], json!(5));
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
        .fetch_json("SELECT SLEEP(5)", 1)
        .await
        .expect_err("times out");
    assert!(matches!(error, ConnectError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    let mut db = TempDatabase::create().await;
    let user = db.create_user("right-pw").await;
    let mut params = db.params();
    params.username = Some(user);
    params.password = Some("wrong-pw".into());
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "authentication", "{error}");
    assert!(!error.to_string().contains("wrong-pw"), "{error}");
    params.password = Some("right-pw".into());
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("right password");
    database.test().await.expect("test");
}

#[tokio::test]
async fn unknown_database_is_reported_as_such() {
    let params = params_for(
        &mariadb_url(),
        DbKind::Mariadb,
        Some(&unique_name("missing")),
    );
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "unknown_database", "{error}");
}

#[tokio::test]
async fn closed_ports_are_unreachable_within_the_connect_timeout() {
    let mut params = params_for(&mariadb_url(), DbKind::Mariadb, None);
    params.host = Some("127.0.0.1".into());
    params.port = Some(closed_port());
    let started = Instant::now();
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "unreachable", "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

async fn server_has_tls() -> bool {
    let mut admin = admin().await;
    let have_ssl: Option<String> =
        sqlx::query_scalar("SELECT CAST(VARIABLE_VALUE AS CHAR) FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'HAVE_SSL'")
            .fetch_optional(&mut admin)
            .await
            .expect("have_ssl");
    have_ssl.as_deref() == Some("YES")
}

#[tokio::test]
async fn tls_modes_verify_certificates_and_fall_back_only_without_tls() {
    let mut params = params_for(&mariadb_url(), DbKind::Mariadb, None);
    params.tls = TlsMode::VerifyFull;
    let error = Database::connect(&params, &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "tls", "{error}");

    params.tls = TlsMode::Preferred;
    let preferred = Database::connect(&params, &quick_limits()).await;
    if server_has_tls().await {
        // A self-signed certificate is a failure, not a reason for plain text.
        assert_eq!(preferred.err().expect("refused").category(), "tls");
    } else {
        // The server has no TLS at all: "preferred" goes on in plain text.
        preferred
            .expect("preferred connects")
            .test()
            .await
            .expect("test");
    }
}

fn texts(rows: &sluice_connect::RowSet, column: &str) -> Vec<String> {
    rows.rows
        .iter()
        .map(|row| row[column].as_str().unwrap_or("<not text>").to_owned())
        .collect()
}

#[tokio::test]
async fn transactions_commit_or_roll_back_as_asked_and_name_a_failing_statement() {
    let db = TempDatabase::create().await;
    db.run(
        "CREATE TABLE t (v VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES ('old')",
    )
    .await;
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
        "INSERT INTO t VALUES ('a'), ('b')".to_owned(),
        "UPDATE t SET v = 'a2' WHERE v = 'a'; DELETE FROM t WHERE v IN ('b', 'old');".to_owned(),
    ];
    let executed = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Rollback)
        .await
        .expect("test run");
    assert_eq!(executed.rows_affected, [2, 3]);
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), ["old"], "a test run keeps nothing");

    let failing = [
        statements[0].clone(),
        "INSERT INTO t VALUES ('a')".to_owned(),
    ];
    let error = database
        .execute_in_transaction(&failing, sluice_connect::Finish::Commit)
        .await
        .expect_err("duplicate key");
    assert_eq!(error.statement_index, Some(1));
    assert!(error.to_string().contains("Duplicate entry 'a'"), "{error}");
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(
        texts(&rows, "v"),
        ["old"],
        "the failed transaction kept nothing"
    );

    let executed = database
        .execute_in_transaction(&statements, sluice_connect::Finish::Commit)
        .await
        .expect("commits on the same, reused connection");
    assert_eq!(executed.rows_affected, [2, 3]);
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), ["a2"]);
}

/// The renderer writes MySQL literals for backslash escapes and `"…"` strings.
/// A session that an earlier statement left in `NO_BACKSLASH_ESCAPES,ANSI_QUOTES`
/// (one pooled connection, so the next transaction gets that very session)
/// is put back before the statements run.
#[tokio::test]
async fn transactions_run_in_the_sql_mode_the_renderer_writes_for() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v VARCHAR(20))").await;
    let database = Database::connect(
        &db.params(),
        &Limits {
            max_connections: 1,
            ..quick_limits()
        },
    )
    .await
    .expect("connect");
    let hostile_mode = [
        "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')"
            .to_owned(),
    ];
    database
        .execute_in_transaction(&hostile_mode, sluice_connect::Finish::Commit)
        .await
        .expect("mode set");
    let mode = database
        .fetch_json("SELECT CAST(@@SESSION.sql_mode AS CHAR) AS m", 1)
        .await
        .expect("mode");
    let mode = texts(&mode, "m").join("");
    assert!(
        mode.contains("NO_BACKSLASH_ESCAPES") && mode.contains("ANSI_QUOTES"),
        "the session kept the hostile mode: {mode}"
    );
    let statements = [r#"INSERT INTO t VALUES ("a\'b\\c")"#.to_owned()];
    database
        .execute_in_transaction(&statements, sluice_connect::Finish::Commit)
        .await
        .expect("a double-quoted string with backslash escapes");
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), [r"a'b\c"]);
}

/// MariaDB has no server-side limit here: the client gives up, closes the
/// connection (which ends the transaction uncommitted) and opens another.
#[tokio::test]
async fn a_statement_past_the_query_timeout_fails_and_its_transaction_is_not_kept() {
    let db = TempDatabase::create().await;
    db.run("CREATE TABLE t (v VARCHAR(20)) ENGINE=InnoDB").await;
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
        "SELECT SLEEP(5)".to_owned(),
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
        .expect("a later transaction runs on a new connection");
    assert_eq!(executed.rows_affected, [1]);
}
