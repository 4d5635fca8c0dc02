//! Against a SQL Server named by `SLUICE_TEST_MSSQL_URL` (any connection-string
//! format, e.g. `sqlserver://sa:pw@127.0.0.1:1433/master?sslMode=disabled`).
//! Without it the test passes after saying it was skipped.

mod common;

use sluice_connect::{Database, DbKind, parse_connection_string};

use common::quick_limits;

#[tokio::test]
async fn tests_lists_and_previews() {
    let Ok(url) = std::env::var("SLUICE_TEST_MSSQL_URL") else {
        println!("skipped: set SLUICE_TEST_MSSQL_URL");
        return;
    };
    let params = parse_connection_string(&url, Some(DbKind::Sqlserver)).expect("test URL parses");
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("connect");
    let report = database.test().await.expect("test");
    assert!(report.server_version.contains("SQL Server"), "{report:?}");
    database.schemas().await.expect("schemas");
    let rows = database
        .fetch_json(
            "SELECT CAST(1 AS bigint) AS n, CAST(12.50 AS decimal(10,2)) AS d, \
             CAST('2024-01-31T12:34:56' AS datetime2(0)) AS t, CAST(0xDEAD AS varbinary(2)) AS b",
            5,
        )
        .await
        .expect("query");
    assert_eq!(
        serde_json::Value::Object(rows.rows[0].clone()),
        serde_json::json!({"n": 1, "d": 12.5, "t": "2024-01-31T12:34:56", "b": "3q0="})
    );
    if let Some(table) = database.tables().await.expect("tables").first() {
        database.preview(table, 5).await.expect("preview");
    }
    database.close().await;
}
