//! A fresh MariaDB database per test, dropped afterwards.

pub fn server_url() -> String {
    std::env::var("SLUICE_TEST_MARIADB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub struct TestMariaDb {
    pub name: String,
    /// URL of the database itself (root credentials).
    pub url: String,
}

impl TestMariaDb {
    pub async fn create(prefix: &str) -> Self {
        use sqlx::Connection;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut conn = sqlx::MySqlConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MariaDB at {server}: {e} (start it, or set SLUICE_TEST_MARIADB_URL)"));
        // The name is ours: a prefix and a UUID.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        Self {
            url: format!("{}/{name}", server.trim_end_matches('/')),
            name,
        }
    }

    /// Runs setup SQL (several statements) in this database.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&self.url)
            .await
            .expect("connect to test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .expect("setup SQL");
    }
}

impl Drop for TestMariaDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&server_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
