//! Against an Oracle database named by `SLUICE_TEST_ORACLE_URL` (e.g.
//! `oracle://system:pw@127.0.0.1:1521/FREEPDB1?sslmode=disabled`); needs the
//! Oracle Instant Client libraries at run time. Without the variable the test
//! passes after saying it was skipped.

mod common;

use sluice_connect::{Database, DbKind, parse_connection_string};

use common::quick_limits;

#[tokio::test]
async fn tests_lists_and_previews() {
    let Ok(url) = std::env::var("SLUICE_TEST_ORACLE_URL") else {
        println!("skipped: set SLUICE_TEST_ORACLE_URL");
        return;
    };
    let params = parse_connection_string(&url, Some(DbKind::Oracle)).expect("test URL parses");
    let database = Database::connect(&params, &quick_limits())
        .await
        .expect("connect");
    let report = database.test().await.expect("test");
    assert!(!report.server_version.is_empty(), "{report:?}");
    database.schemas().await.expect("schemas");
    let rows = database
        .fetch_json(
            "SELECT 1 AS n, 12.5 AS d, DATE '2024-01-31' AS dt, HEXTORAW('DEAD') AS b FROM dual",
            5,
        )
        .await
        .expect("query");
    assert_eq!(
        serde_json::Value::Object(rows.rows[0].clone()),
        serde_json::json!({"N": 1, "D": 12.5, "DT": "2024-01-31T00:00:00", "B": "3q0="})
    );
    if let Some(table) = database.tables().await.expect("tables").first() {
        database.preview(table, 5).await.expect("preview");
    }
    database.close().await;
}
