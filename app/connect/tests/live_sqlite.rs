//! SQLite files made for each test in the temporary directory.

mod common;

use std::path::PathBuf;

use serde_json::{Value, json};
use sluice_connect::{ConnectionParams, Database, DbKind, TableKind, TableRef};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};

use common::{quick_limits, unique_name};

/// A database file of its own, removed when the guard goes away.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    async fn create(sql: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("sluice_ct")));
        let mut connection = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("create SQLite file");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
        TempFile { path }
    }

    fn params(&self) -> ConnectionParams {
        sqlite_params(&self.path.to_string_lossy())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn sqlite_params(path: &str) -> ConnectionParams {
    let mut params = ConnectionParams::new(DbKind::Sqlite);
    params.path = Some(path.to_owned());
    params
}

fn table(name: &str) -> TableRef {
    TableRef {
        schema: None,
        name: name.into(),
        kind: TableKind::Table,
    }
}

const ALL_TYPES: &str = r#"
CREATE TABLE all_types (
    id INTEGER PRIMARY KEY, c_integer INTEGER, c_real REAL, c_text TEXT, c_blob BLOB,
    c_json JSON, c_boolean BOOLEAN, c_null TEXT
);
INSERT INTO all_types VALUES
    (1, 9223372036854775807, 2.5, 'héllo', X'00FF', '{"k": [1, true]}', 1, NULL),
    (2, -1, -0.125, '', X'', 'not json', 0, NULL);
CREATE VIEW all_types_view AS SELECT id, c_text FROM all_types;
"#;

#[tokio::test]
async fn explores_and_previews_storage_classes_and_declared_types() {
    let file = TempFile::create(ALL_TYPES).await;
    let database = Database::connect(&file.params(), &quick_limits())
        .await
        .expect("connect");
    assert_eq!(database.kind(), DbKind::Sqlite);
    let report = database.test().await.expect("test");
    assert!(report.server_version.starts_with("SQLite 3."), "{report:?}");
    assert_eq!(database.schemas().await.expect("schemas"), ["main"]);
    assert_eq!(
        database.tables().await.expect("tables"),
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
    assert_eq!(columns[5].data_type, "JSON");
    assert!(columns[1].nullable);

    let preview = database
        .preview(&table("all_types"), 10)
        .await
        .expect("preview");
    let rows: Vec<Value> = preview.rows.into_iter().map(Value::Object).collect();
    assert_eq!(
        rows,
        [
            json!({
                "id": 1, "c_integer": 9223372036854775807_i64, "c_real": 2.5, "c_text": "héllo",
                "c_blob": "AP8=", "c_json": {"k": [1, true]}, "c_boolean": true, "c_null": null
            }),
            json!({
                "id": 2, "c_integer": -1, "c_real": -0.125, "c_text": "",
                "c_blob": "", "c_json": "not json", "c_boolean": false, "c_null": null
            }),
        ]
    );
    let view = database
        .preview(
            &TableRef {
                kind: TableKind::View,
                ..table("all_types_view")
            },
            1,
        )
        .await
        .expect("view preview");
    assert_eq!(view.columns, ["id", "c_text"]);
    assert_eq!(view.rows.len(), 1);
    database.close().await;
}

#[tokio::test]
async fn hostile_table_names_cannot_inject_sql() {
    let file = TempFile::create(
        r#"CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);
           CREATE TABLE "x""; DROP TABLE t; --" (v TEXT); INSERT INTO "x""; DROP TABLE t; --" VALUES ('safe');"#,
    )
    .await;
    let database = Database::connect(&file.params(), &quick_limits())
        .await
        .expect("connect");
    let error = database
        .preview(&table("x\"; DROP TABLE t; -- other"), 5)
        .await
        .expect_err("unknown table");
    assert_eq!(error.category(), "no_such_table", "{error}");
    let preview = database
        .preview(&table("x\"; DROP TABLE t; --"), 5)
        .await
        .expect("quoted name works");
    assert_eq!(Value::Object(preview.rows[0].clone()), json!({"v": "safe"}));
    assert_eq!(
        database
            .preview(&table("t"), 5)
            .await
            .expect("t survives")
            .rows
            .len(),
        1
    );
}

#[tokio::test]
async fn missing_files_and_memory_databases_are_refused() {
    let missing = std::env::temp_dir().join(format!("{}.db", unique_name("missing")));
    let error = Database::connect(&sqlite_params(&missing.to_string_lossy()), &quick_limits())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.category(), "unknown_database", "{error}");
    assert!(!missing.exists(), "the file must not be created");

    let error = Database::connect(&sqlite_params(":memory:"), &quick_limits())
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("path"), "{error}");
}

#[tokio::test]
async fn fetch_json_limits_rows_and_reports_columns_of_empty_results() {
    let file =
        TempFile::create("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);").await;
    let database = Database::connect(&file.params(), &quick_limits())
        .await
        .expect("connect");
    let rows = database
        .fetch_json("SELECT n, n * 10 AS \"a.b\" FROM t ORDER BY n", 2)
        .await
        .expect("query");
    assert_eq!(rows.columns, ["n", "a.b"]);
    assert_eq!(rows.rows.len(), 2);
    let empty = database
        .fetch_json("SELECT n AS only_column FROM t WHERE n > 10", 5)
        .await
        .expect("empty");
    assert_eq!(empty.columns, ["only_column"]);
    assert!(empty.rows.is_empty());
}

fn texts(rows: &sluice_connect::RowSet, column: &str) -> Vec<String> {
    rows.rows
        .iter()
        .map(|row| row[column].as_str().unwrap_or("<not text>").to_owned())
        .collect()
}

#[tokio::test]
async fn transactions_commit_or_roll_back_as_asked_and_name_a_failing_statement() {
    let file =
        TempFile::create("CREATE TABLE t (v TEXT PRIMARY KEY); INSERT INTO t VALUES ('old')").await;
    let database = Database::connect(&file.params(), &quick_limits())
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
        "INSERT INTO missing VALUES (1)".to_owned(),
    ];
    let error = database
        .execute_in_transaction(&failing, sluice_connect::Finish::Commit)
        .await
        .expect_err("no such table");
    assert_eq!(error.statement_index, Some(1));
    assert!(
        error.to_string().contains("no such table: missing"),
        "{error}"
    );
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
        .expect("commits");
    assert_eq!(executed.rows_affected, [2, 3]);
    let rows = database
        .fetch_json("SELECT v FROM t", 10)
        .await
        .expect("rows");
    assert_eq!(texts(&rows, "v"), ["a2"]);
}
