//! SQLite source files for tests and benchmarks (what a SQLite connector reads).

/// Creates the SQLite file at `path` (if missing) and runs `sql` on it.
pub async fn sqlite_source(path: &std::path::Path, sql: &str) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("fill {}: {e}", path.display()));
}

/// Three rows in `items (id, label)`: enough for commands that must simply succeed.
pub const THREE_ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT);
     INSERT INTO items VALUES (1, 'lamp'), (2, 'desk'), (3, 'chair');";
