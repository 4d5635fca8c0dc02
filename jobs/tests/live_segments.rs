//! Segment-sync batches planned and applied against the local MariaDB
//! (`SLUICE_TEST_MARIADB_URL`, default `mysql://root@127.0.0.1:3306`),
//! PostgreSQL (`SLUICE_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and SQLite files. Each test works in a database of its own, dropped at the end.

use std::str::FromStr;

use serde_json::{Value, json};
use sluice_connect::{ConnectionParams, Database, DbKind, Finish, Limits, TlsMode};
use sluice_jobs::segments::{
    EventKind, Plan, SegmentEvent, SyncTemplates, TemplateSources, apply_batch, plan_batch,
};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};

// ---- seed 003's templates, verbatim ----

const SEED_ADD: &str = r#"INSERT INTO mysegment (segId, clientId, updated)
VALUES
{for $index, $lead = $batch}
({segment_id}, "{$lead.CustomID}", NOW()){autocomma}
{end}
ON DUPLICATE KEY UPDATE
updated = NOW();"#;

const SEED_REMOVE: &str = r#"DELETE FROM mysegment
WHERE segment_id = {segment_id}
AND clientId IN ({batch_in "CustomID"})"#;

const SEED_CLEAR: &str = "DELETE FROM mysegment
WHERE segment_id = {segment_id}";

const SEED_UPSERT_SEGMENT: &str = r#"INSERT INTO segments (segment_id,name,updated)
VALUES
({segment_id}, "{segment_name}", NOW())
ON DUPLICATE KEY UPDATE
name = "{segment_name}",
updated = NOW();"#;

const SEED_DELETE_SEGMENT: &str = "DELETE FROM segments
WHERE segment_id = {segment_id}
LIMIT 1";

/// The seed's two tables. The add template writes `segId` and the remove and
/// clear templates read `segment_id`: here the latter is computed from the former.
const MARIADB_TABLES: &str = "
CREATE TABLE mysegment (
    segId INT(11), clientId VARCHAR(255), updated DATETIME,
    segment_id INT(11) AS (segId) PERSISTENT,
    UNIQUE KEY member (segId, clientId)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE segments (
    name VARCHAR(255), segment_id INT(11), updated DATETIME, UNIQUE KEY id (segment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE canary (v VARCHAR(20)) ENGINE=InnoDB;
INSERT INTO canary VALUES ('untouched');";

fn seed_templates() -> SyncTemplates {
    SyncTemplates::parse(&TemplateSources {
        add: SEED_ADD,
        remove: SEED_REMOVE,
        clear: Some(SEED_CLEAR),
        upsert_segment: Some(SEED_UPSERT_SEGMENT),
        delete_segment: Some(SEED_DELETE_SEGMENT),
    })
    .expect("seed 003's templates parse")
}

// ---- PostgreSQL and SQLite equivalents ----

const PG_ADD: &str = "INSERT INTO mysegment (segId, clientId, updated)
VALUES
{for $index, $lead = $batch}
({segment_id}, '{$lead.CustomID}', NOW()){autocomma}
{end}
ON CONFLICT (segId, clientId) DO UPDATE SET updated = NOW();";

const PG_UPSERT_SEGMENT: &str = "INSERT INTO segments (segment_id, name, updated)
VALUES ({segment_id}, '{segment_name}', NOW())
ON CONFLICT (segment_id) DO UPDATE SET name = '{segment_name}', updated = NOW();";

const PG_DELETE_SEGMENT: &str = "DELETE FROM segments WHERE segment_id = {segment_id}";

const PG_TABLES: &str = "
CREATE TABLE mysegment (
    segId int, clientId varchar(255), updated timestamp,
    segment_id int GENERATED ALWAYS AS (segId) STORED,
    UNIQUE (segId, clientId)
);
CREATE TABLE segments (name varchar(255), segment_id int UNIQUE, updated timestamp);
CREATE TABLE canary (v text);
INSERT INTO canary VALUES ('untouched');";

fn pg_templates() -> SyncTemplates {
    SyncTemplates::parse(&TemplateSources {
        add: PG_ADD,
        remove: SEED_REMOVE,
        clear: Some(SEED_CLEAR),
        upsert_segment: Some(PG_UPSERT_SEGMENT),
        delete_segment: Some(PG_DELETE_SEGMENT),
    })
    .expect("PostgreSQL templates parse")
}

const SQLITE_ADD: &str = "INSERT INTO mysegment (segId, clientId, updated)
VALUES
{for $index, $lead = $batch}
({segment_id}, '{$lead.CustomID}', datetime('now')){autocomma}
{end}
ON CONFLICT (segId, clientId) DO UPDATE SET updated = datetime('now');";

const SQLITE_UPSERT_SEGMENT: &str = "INSERT INTO segments (segment_id, name, updated)
VALUES ({segment_id}, '{segment_name}', datetime('now'))
ON CONFLICT (segment_id) DO UPDATE SET name = excluded.name, updated = excluded.updated;";

const SQLITE_TABLES: &str = "
CREATE TABLE mysegment (
    segId INTEGER, clientId TEXT, updated TEXT,
    segment_id INTEGER GENERATED ALWAYS AS (segId) VIRTUAL,
    UNIQUE (segId, clientId)
);
CREATE TABLE segments (name TEXT, segment_id INTEGER UNIQUE, updated TEXT);
CREATE TABLE canary (v TEXT);
INSERT INTO canary VALUES ('untouched');";

fn sqlite_templates() -> SyncTemplates {
    SyncTemplates::parse(&TemplateSources {
        add: SQLITE_ADD,
        remove: SEED_REMOVE,
        clear: Some(SEED_CLEAR),
        upsert_segment: Some(SQLITE_UPSERT_SEGMENT),
        delete_segment: Some(PG_DELETE_SEGMENT),
    })
    .expect("SQLite templates parse")
}

/// Profile values that would break or change a statement if written naively.
const HOSTILE: [&str; 8] = [
    "it's",
    "say \"hi\"",
    r"back\slash",
    r"\'",
    r"trailing\",
    "'); DROP TABLE mysegment; --",
    "Zürich 東京 🎉",
    "nul\0byte",
];

// ---- events ----

fn event(payload: Value) -> SegmentEvent {
    SegmentEvent::from_payload(&payload).expect("well-formed event")
}

fn member(op: &str, segment: i64, custom_id: &str) -> SegmentEvent {
    event(json!({
        "op": op,
        "segment": {"id": segment, "name": format!("segment {segment}")},
        "profile": {"id": format!("prf_{custom_id}"), "fields": {"CustomID": custom_id}}
    }))
}

fn segment_op(op: &str, segment: i64, name: &str) -> SegmentEvent {
    event(json!({"op": op, "segment": {"id": segment, "name": name}}))
}

fn plan(events: &[SegmentEvent], templates: &SyncTemplates, kind: DbKind) -> Plan {
    plan_batch(events, templates, kind.segment_dialect()).expect("batch renders")
}

async fn apply(database: &Database, plan: &Plan) -> Vec<u64> {
    apply_batch(database, &plan.statements, Finish::Commit)
        .await
        .expect("batch applies")
        .rows_affected
}

// ---- temporary databases ----

fn mariadb_url() -> String {
    std::env::var("SLUICE_TEST_MARIADB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique_name() -> String {
    format!("sluice_seg_{}", uuid::Uuid::new_v4().simple())
}

/// Runs `work` on a runtime of its own in a helper thread, so a `Drop` can
/// clean up even while the test's runtime is unwinding.
fn run_detached<F: Future<Output = ()>>(work: impl FnOnce() -> F + Send + 'static) {
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(work());
        }
    })
    .join();
}

fn params(url: &str, kind: DbKind, database: &str) -> ConnectionParams {
    let mut params = sluice_connect::parse_connection_string(url, Some(kind)).expect("test URL");
    params.database = Some(database.to_owned());
    params.tls = TlsMode::Disabled;
    params
}

/// One pooled connection, so a session setting made by one batch is what the
/// next batch finds.
fn one_connection() -> Limits {
    Limits {
        max_connections: 1,
        ..Limits::default()
    }
}

struct TempMariadb {
    name: String,
}

impl TempMariadb {
    async fn create(setup: &str) -> TempMariadb {
        let name = unique_name();
        let mut admin = MySqlConnectOptions::from_str(&mariadb_url())
            .expect("MariaDB URL")
            .connect()
            .await
            .expect("admin connection");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let db = TempMariadb { name };
        let mut connection = MySqlConnectOptions::from_str(&mariadb_url())
            .expect("MariaDB URL")
            .database(&db.name)
            .connect()
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(AssertSqlSafe(setup.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
        db
    }

    async fn connect(&self) -> Database {
        Database::connect(
            &params(&mariadb_url(), DbKind::Mariadb, &self.name),
            &one_connection(),
        )
        .await
        .expect("connect")
    }
}

impl Drop for TempMariadb {
    fn drop(&mut self) {
        let name = self.name.clone();
        run_detached(move || async move {
            if let Ok(mut admin) = MySqlConnectOptions::from_str(&mariadb_url())
                .expect("MariaDB URL")
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

struct TempPostgres {
    name: String,
}

impl TempPostgres {
    async fn create(setup: &str) -> TempPostgres {
        let name = unique_name();
        let mut admin = PgConnectOptions::from_str(&pg_url())
            .expect("PostgreSQL URL")
            .connect()
            .await
            .expect("admin connection");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let db = TempPostgres { name };
        let mut connection = PgConnectOptions::from_str(&pg_url())
            .expect("PostgreSQL URL")
            .database(&db.name)
            .connect()
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(AssertSqlSafe(setup.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
        db
    }

    async fn connect(&self) -> Database {
        Database::connect(
            &params(&pg_url(), DbKind::Postgres, &self.name),
            &one_connection(),
        )
        .await
        .expect("connect")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let name = self.name.clone();
        run_detached(move || async move {
            if let Ok(mut admin) = PgConnectOptions::from_str(&pg_url())
                .expect("PostgreSQL URL")
                .connect()
                .await
            {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
        });
    }
}

struct TempSqlite {
    path: std::path::PathBuf,
}

impl TempSqlite {
    async fn create(setup: &str) -> TempSqlite {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
        let mut connection = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .expect("create SQLite file");
        sqlx::raw_sql(AssertSqlSafe(setup.to_owned()))
            .execute(&mut connection)
            .await
            .expect("set-up SQL runs");
        TempSqlite { path }
    }

    async fn connect(&self) -> Database {
        let mut params = ConnectionParams::new(DbKind::Sqlite);
        params.path = Some(self.path.to_string_lossy().into_owned());
        Database::connect(&params, &one_connection())
            .await
            .expect("connect")
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `(segId, clientId)` of every member, sorted here (collations differ).
async fn members(database: &Database) -> Vec<(i64, String)> {
    let rows = database
        .fetch_json("SELECT segId AS s, clientId AS c FROM mysegment", 1000)
        .await
        .expect("members");
    let mut members: Vec<(i64, String)> = rows
        .rows
        .iter()
        .map(|row| {
            let id = row["s"].as_i64().expect("integer segId");
            (id, row["c"].as_str().expect("text clientId").to_owned())
        })
        .collect();
    members.sort();
    members
}

async fn segments_table(database: &Database) -> Vec<(i64, String)> {
    let rows = database
        .fetch_json(
            "SELECT segment_id AS s, name AS n FROM segments ORDER BY segment_id",
            100,
        )
        .await
        .expect("segments");
    rows.rows
        .iter()
        .map(|row| {
            let id = row["s"].as_i64().expect("integer segment_id");
            (id, row["n"].as_str().expect("text name").to_owned())
        })
        .collect()
}

async fn canary(database: &Database) -> Vec<Value> {
    database
        .fetch_json("SELECT v FROM canary", 10)
        .await
        .expect("canary")
        .rows
        .into_iter()
        .map(|row| row["v"].clone())
        .collect()
}

fn pairs(segment: i64, ids: &[&str]) -> Vec<(i64, String)> {
    let mut pairs: Vec<_> = ids.iter().map(|id| (segment, (*id).to_owned())).collect();
    pairs.sort();
    pairs
}

// ---- the whole life of a segment, per database ----

/// Adds, re-adds, removes, clears, upserts and deletes segments through
/// `templates`, checking the rows after each batch.
async fn segment_life(database: &Database, templates: &SyncTemplates, kind: DbKind) {
    let batch = [
        segment_op("upsert_segment", 7, "VIP"),
        member("add", 7, "c-1"),
        member("add", 7, "c-2"),
        member("add", 7, "c-3"),
        member("add", 8, "c-1"),
    ];
    let planned = plan(&batch, templates, kind);
    assert_eq!(planned.statements.len(), 3, "{:#?}", planned.statements);
    apply(database, &planned).await;
    let mut expected = pairs(7, &["c-1", "c-2", "c-3"]);
    expected.push((8, "c-1".into()));
    assert_eq!(members(database).await, expected);
    assert_eq!(segments_table(database).await, [(7, "VIP".to_owned())]);

    // Adding a member again updates it rather than duplicating it; a rename upserts.
    let batch = [
        member("add", 7, "c-1"),
        member("remove", 7, "c-2"),
        member("remove", 7, "c-3"),
        segment_op("upsert_segment", 7, "Very important"),
        segment_op("upsert_segment", 9, "Other"),
    ];
    apply(database, &plan(&batch, templates, kind)).await;
    assert_eq!(
        members(database).await,
        [(7, "c-1".to_owned()), (8, "c-1".to_owned())]
    );
    assert_eq!(
        segments_table(database).await,
        [(7, "Very important".to_owned()), (9, "Other".to_owned())]
    );

    let batch = [
        segment_op("clear", 7, "Very important"),
        segment_op("delete_segment", 9, "Other"),
    ];
    let counts = apply(database, &plan(&batch, templates, kind)).await;
    assert_eq!(counts, [1, 1]);
    assert_eq!(members(database).await, [(8, "c-1".to_owned())]);
    assert_eq!(
        segments_table(database).await,
        [(7, "Very important".to_owned())]
    );
}

#[tokio::test]
async fn seed_templates_run_verbatim_on_mariadb() {
    let db = TempMariadb::create(MARIADB_TABLES).await;
    let database = db.connect().await;
    segment_life(&database, &seed_templates(), DbKind::Mariadb).await;
}

#[tokio::test]
async fn equivalent_templates_run_on_postgres() {
    let db = TempPostgres::create(PG_TABLES).await;
    let database = db.connect().await;
    segment_life(&database, &pg_templates(), DbKind::Postgres).await;
}

#[tokio::test]
async fn equivalent_templates_run_on_sqlite() {
    let db = TempSqlite::create(SQLITE_TABLES).await;
    let database = db.connect().await;
    segment_life(&database, &sqlite_templates(), DbKind::Sqlite).await;
}

// ---- order within a batch ----

async fn order_is_kept(database: &Database, templates: &SyncTemplates, kind: DbKind) {
    let batch = [
        member("add", 1, "gone"),
        member("add", 1, "kept"),
        member("remove", 1, "gone"),
        member("remove", 1, "back"),
        member("add", 1, "back"),
    ];
    apply(database, &plan(&batch, templates, kind)).await;
    assert_eq!(members(database).await, pairs(1, &["back", "kept"]));
}

#[tokio::test]
async fn a_remove_never_overtakes_the_add_before_it_on_mariadb() {
    let db = TempMariadb::create(MARIADB_TABLES).await;
    order_is_kept(&db.connect().await, &seed_templates(), DbKind::Mariadb).await;
}

#[tokio::test]
async fn a_remove_never_overtakes_the_add_before_it_on_sqlite() {
    let db = TempSqlite::create(SQLITE_TABLES).await;
    order_is_kept(&db.connect().await, &sqlite_templates(), DbKind::Sqlite).await;
}

// ---- hostile values ----

/// Adds then removes members whose ids are `values`: each lands verbatim,
/// nothing else changes, and the remove template's `IN (…)` finds them all.
async fn hostile_values_are_data(
    database: &Database,
    templates: &SyncTemplates,
    kind: DbKind,
    values: &[&str],
) {
    let adds: Vec<_> = values.iter().map(|v| member("add", 5, v)).collect();
    let planned = plan(&adds, templates, kind);
    assert_eq!(planned.statements.len(), 1);
    apply(database, &planned).await;
    assert_eq!(members(database).await, pairs(5, values));
    assert_eq!(canary(database).await, [json!("untouched")]);

    let removes: Vec<_> = values.iter().map(|v| member("remove", 5, v)).collect();
    let counts = apply(database, &plan(&removes, templates, kind)).await;
    assert_eq!(counts, [values.len() as u64]);
    assert!(members(database).await.is_empty());
    assert_eq!(canary(database).await, [json!("untouched")]);
}

#[tokio::test]
async fn hostile_values_land_verbatim_on_mariadb_whatever_the_session_sql_mode() {
    let db = TempMariadb::create(MARIADB_TABLES).await;
    let database = db.connect().await;
    // The pool's one session now reads `\` as a plain character and `"…"` as
    // an identifier, as a server or an earlier statement could have set it.
    let hostile_mode = ["SET SESSION sql_mode = \
         CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')"
        .to_owned()];
    database
        .execute_in_transaction(&hostile_mode, Finish::Commit)
        .await
        .expect("mode set");
    let mode = database
        .fetch_json("SELECT CAST(@@SESSION.sql_mode AS CHAR) AS m", 1)
        .await
        .expect("mode");
    let mode = mode.rows[0]["m"].as_str().unwrap_or_default().to_owned();
    assert!(
        mode.contains("NO_BACKSLASH_ESCAPES") && mode.contains("ANSI_QUOTES"),
        "{mode}"
    );

    hostile_values_are_data(&database, &seed_templates(), DbKind::Mariadb, &HOSTILE).await;
}

#[tokio::test]
async fn hostile_values_land_verbatim_on_postgres_whatever_the_database_defaults() {
    let db = TempPostgres::create(PG_TABLES).await;
    // The database's default reads backslashes in '…' as escapes.
    let mut admin = PgConnectOptions::from_str(&pg_url())
        .expect("PostgreSQL URL")
        .connect()
        .await
        .expect("admin connection");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER DATABASE \"{}\" SET standard_conforming_strings = off",
        db.name
    )))
    .execute(&mut admin)
    .await
    .expect("database default set");
    let database = db.connect().await;
    let without_nul: Vec<&str> = HOSTILE
        .iter()
        .copied()
        .filter(|v| !v.contains('\0'))
        .collect();
    hostile_values_are_data(&database, &pg_templates(), DbKind::Postgres, &without_nul).await;

    // PostgreSQL text cannot hold NUL: the batch is refused before any SQL runs.
    let error = plan_batch(
        &[member("add", 5, "nul\0byte")],
        &pg_templates(),
        DbKind::Postgres.segment_dialect(),
    )
    .expect_err("NUL refused");
    assert_eq!(error.kind, EventKind::Add);
    assert!(members(&database).await.is_empty());
}

#[tokio::test]
async fn hostile_values_land_verbatim_on_sqlite() {
    let db = TempSqlite::create(SQLITE_TABLES).await;
    let database = db.connect().await;
    let without_nul: Vec<&str> = HOSTILE
        .iter()
        .copied()
        .filter(|v| !v.contains('\0'))
        .collect();
    hostile_values_are_data(&database, &sqlite_templates(), DbKind::Sqlite, &without_nul).await;
}

// ---- test runs and failures ----

#[tokio::test]
async fn a_test_run_reports_counts_and_changes_nothing() {
    let db = TempMariadb::create(MARIADB_TABLES).await;
    let database = db.connect().await;
    apply(
        &database,
        &plan(&[member("add", 1, "a")], &seed_templates(), DbKind::Mariadb),
    )
    .await;

    let batch = [
        member("add", 1, "b"),
        member("add", 1, "c"),
        segment_op("clear", 1, "s"),
    ];
    let planned = plan(&batch, &seed_templates(), DbKind::Mariadb);
    let outcome = apply_batch(&database, &planned.statements, Finish::Rollback)
        .await
        .expect("test run");
    assert_eq!(outcome.rows_affected, [2, 3]);
    assert!(!outcome.committed);
    assert_eq!(members(&database).await, pairs(1, &["a"]));
}

async fn a_failing_statement_keeps_nothing(
    database: &Database,
    kind: DbKind,
    templates: &SyncTemplates,
    missing_table: &str,
) {
    let batch = [
        member("add", 1, "a"),
        segment_op("upsert_segment", 1, "s"),
        member("add", 1, "b"),
    ];
    let planned = plan(&batch, templates, kind);
    let failure = apply_batch(database, &planned.statements, Finish::Commit)
        .await
        .expect_err("the segments table is gone");
    assert_eq!(failure.statement_index, Some(1));
    assert_eq!(failure.category, "query");
    assert_eq!(
        failure.sql.as_deref(),
        Some(planned.statements[1].sql.as_str())
    );
    assert!(
        failure.message.contains(missing_table),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("upsert_segment"),
        "{}",
        failure.message
    );
    assert!(
        members(database).await.is_empty(),
        "the first add was not kept"
    );
}

#[tokio::test]
async fn a_failing_statement_reports_the_error_and_sql_on_mariadb() {
    let db = TempMariadb::create(&format!("{MARIADB_TABLES} DROP TABLE segments;")).await;
    let database = db.connect().await;
    a_failing_statement_keeps_nothing(
        &database,
        DbKind::Mariadb,
        &seed_templates(),
        "segments' doesn't exist",
    )
    .await;
}

#[tokio::test]
async fn a_failing_statement_reports_the_error_and_sql_on_postgres() {
    let db = TempPostgres::create(&format!("{PG_TABLES} DROP TABLE segments;")).await;
    let database = db.connect().await;
    a_failing_statement_keeps_nothing(
        &database,
        DbKind::Postgres,
        &pg_templates(),
        "relation \"segments\" does not exist",
    )
    .await;
}
