//! SQL connectors against live PostgreSQL, MariaDB and SQLite: create (fields, JSON,
//! connection strings), test, explore, preview, errors, isolation, encrypted
//! credentials and password-confirmed delete.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{
    Backend, TestApp, TestDatabase, TestMariaDb, TestUser, on_both_backends, sqlite_source,
};

const PG_SETUP: &str = r#"
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, balance numeric(12,2), active boolean, created_at timestamptz, tags jsonb);
INSERT INTO customers VALUES
  (1, 'Ada', 12.50, true, '2026-01-02T03:04:05Z', '{"tier": "gold"}'),
  (2, 'Grace', NULL, false, NULL, NULL);
CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE active;
"#;

fn pg_host_port_db(db: &TestDatabase) -> (String, u16, String) {
    let url = url::Url::parse(&db.url).unwrap();
    (
        url.host_str().unwrap().to_string(),
        url.port().unwrap_or(5432),
        db.name.clone(),
    )
}

async fn create_pg_connector(
    app: &TestApp,
    key: &str,
    db: &TestDatabase,
    name: &str,
    password: &str,
) -> String {
    let (host, port, database) = pg_host_port_db(db);
    let response = app
        .api(Method::POST, key, "/api/v1/connections")
        .json(&json!({
            "name": name, "kind": "postgres", "description": "live test",
            "auth": {"params": {"server": host, "port": port, "database": database, "username": "postgres", "password": password, "sslMode": "disabled"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

on_both_backends!(
    postgres_connector_tests_explores_and_previews,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Pg").await;
        let key = app.api_key_for(&user).await;
        let source = TestDatabase::create("sluice_src").await;
        source.execute(PG_SETUP).await;
        let id = create_pg_connector(&app, &key, &source, "shop_pg", "pg-secret-123").await;

        let test: Value = app
            .api(
                Method::POST,
                &key,
                &format!("/api/v1/connections/{id}/test"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(test["ok"], true, "{test}");
        assert!(
            test["server_version"]
                .as_str()
                .unwrap()
                .contains("PostgreSQL"),
            "{test}"
        );
        assert!(test["latency_ms"].is_u64());

        let tables: Value = app
            .api_get_json(&key, &format!("/api/v1/connections/{id}/tables"))
            .await;
        let names: Vec<(&str, &str)> = tables
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap(), t["kind"].as_str().unwrap()))
            .collect();
        assert!(names.contains(&("customers", "table")), "{tables}");
        assert!(names.contains(&("active_customers", "view")), "{tables}");

        let columns: Value = app
            .api_get_json(
                &key,
                &format!("/api/v1/connections/{id}/tables/customers/columns?schema=public"),
            )
            .await;
        assert_eq!(columns[0]["name"], "id");
        assert_eq!(columns[0]["nullable"], false);
        assert!(
            columns[2]["type"].as_str().unwrap().contains("numeric"),
            "{columns}"
        );

        let preview: Value = app
            .api_get_json(
                &key,
                &format!("/api/v1/connections/{id}/tables/customers/preview?schema=public"),
            )
            .await;
        assert_eq!(
            preview["rows"][0],
            json!({"id": 1, "name": "Ada", "balance": 12.5, "active": true, "created_at": "2026-01-02T03:04:05Z", "tags": {"tier": "gold"}})
        );
        assert_eq!(preview["rows"][1]["balance"], Value::Null);

        let shown: Value = app
            .api_get_json(&key, &format!("/api/v1/connections/{id}"))
            .await;
        assert_eq!(shown["params"]["username"], "postgres");
        assert_eq!(shown["has_password"], true);
        let listing = app
            .api(Method::GET, &key, "/api/v1/connections")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !listing.contains("pg-secret-123") && !shown.to_string().contains("pg-secret-123"),
            "no password in any answer"
        );
    }
);

on_both_backends!(mariadb_connector_from_a_jdbc_string, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Maria").await;
    let key = app.api_key_for(&user).await;
    let source = TestMariaDb::create("sluice_src").await;
    source
        .execute(
            "CREATE TABLE invoices (id INT PRIMARY KEY, amount DECIMAL(30,10), paid DATETIME(6), note TEXT, big BIGINT UNSIGNED);
             INSERT INTO invoices VALUES (1, 12345678901234567890.0123456789, '2026-03-04 05:06:07.250000', 'first', 18446744073709551615), (2, 5.5, NULL, NULL, 0);",
        )
        .await;
    let jdbc = format!(
        "jdbc:mariadb://127.0.0.1:3306/{}?user=root&sslMode=disable",
        source.name
    );
    let response = app
        .api(Method::POST, &key, "/api/v1/connections")
        .json(&json!({"name": "billing", "connectionString": jdbc}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown: Value = app
        .api_get_json(&key, &format!("/api/v1/connections/{id}"))
        .await;
    assert_eq!(shown["kind"], "mariadb");
    assert_eq!(shown["params"]["database"], source.name.as_str());

    let test: Value = app
        .api(
            Method::POST,
            &key,
            &format!("/api/v1/connections/{id}/test"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(test["ok"], true, "{test}");
    assert!(
        test["server_version"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("mariadb"),
        "{test}"
    );

    let preview: Value = app
        .api_get_json(
            &key,
            &format!("/api/v1/connections/{id}/tables/invoices/preview"),
        )
        .await;
    assert_eq!(
        preview["rows"][0]["amount"], "12345678901234567890.0123456789",
        "a decimal that would lose precision stays a string: {preview}"
    );
    assert_eq!(preview["rows"][0]["paid"], "2026-03-04T05:06:07.250000");
    assert_eq!(preview["rows"][0]["big"], json!(18446744073709551615u64));
    assert_eq!(preview["rows"][1]["amount"], json!(5.5));
    assert_eq!(preview["rows"][1]["note"], Value::Null);
});

on_both_backends!(connection_failures_are_explained, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Fail").await;
    let key = app.api_key_for(&user).await;
    let source = TestMariaDb::create("sluice_src").await;
    let account = format!("u{}", &source.name[source.name.len() - 12..]);
    source.execute(&format!("CREATE USER '{account}'@'%' IDENTIFIED BY 'right-password'; GRANT SELECT ON `{}`.* TO '{account}'@'%';", source.name)).await;

    let cases = [
        (
            "wrong_password",
            json!({"server": "127.0.0.1", "port": 3306, "database": source.name, "username": account, "password": "wrong-password", "sslMode": "disabled"}),
            "authentication",
        ),
        (
            "unknown_db",
            json!({"server": "127.0.0.1", "port": 3306, "database": "no_such_database_here", "username": "root", "sslMode": "disabled"}),
            "unknown_database",
        ),
        (
            "nobody_home",
            json!({"server": "127.0.0.1", "port": 1, "database": "x", "username": "root", "sslMode": "disabled"}),
            "unreachable",
        ),
    ];
    for (name, params, category) in cases {
        let created = app
            .api(Method::POST, &key, "/api/v1/connections")
            .json(&json!({"name": name, "kind": "mariadb", "auth": {"params": params}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let test: Value = app
            .api(
                Method::POST,
                &key,
                &format!("/api/v1/connections/{id}/test"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(test["ok"], false, "{name}: {test}");
        assert_eq!(test["category"], category, "{name}: {test}");
        assert!(
            !test["error"].as_str().unwrap().contains("wrong-password"),
            "the error never repeats the password"
        );
        let tables = app
            .api(
                Method::GET,
                &key,
                &format!("/api/v1/connections/{id}/tables"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(tables.status(), 502, "{name}");
        assert_eq!(
            tables.json::<Value>().await.unwrap()["error"]["code"],
            "connection_failed"
        );
    }
    source.execute(&format!("DROP USER '{account}'@'%'")).await;
});

on_both_backends!(
    bad_input_names_the_field_and_stores_nothing,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Bad").await;
        let key = app.api_key_for(&user).await;
        let cases = [
            (
                json!({"name": "Bad Name", "kind": "postgres", "auth": {"params": {"server": "h", "username": "u"}}}),
                "name",
            ),
            (
                json!({"name": "ok", "kind": "db2", "auth": {"params": {"server": "h", "username": "u"}}}),
                "kind",
            ),
            (
                json!({"name": "ok", "kind": "postgres", "auth": {"params": {"server": "h", "username": "u", "port": 70000}}}),
                "auth.params.port",
            ),
            (
                json!({"name": "ok", "kind": "postgres", "auth": {"params": {"username": "u"}}}),
                "auth.params.server",
            ),
            (
                json!({"name": "ok", "kind": "sqlite", "auth": {"params": {"path": "../sluice.db"}}}),
                "auth.params.path",
            ),
            (
                json!({"name": "ok", "kind": "sqlite", "auth": {"params": {"path": "/etc/passwd"}}}),
                "auth.params.path",
            ),
            (
                json!({"name": "ok", "connectionString": "jdbc:mysql://h:99999/db"}),
                "connectionString",
            ),
        ];
        for (body, field) in cases {
            let response = app
                .api(Method::POST, &key, "/api/v1/connections")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["field"], field, "{body}: {error}");
        }
        let malformed = app
            .api(Method::POST, &key, "/api/v1/connections")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(malformed.status(), 400);
        let list: Value = app.api_get_json(&key, "/api/v1/connections").await;
        assert_eq!(list.as_array().unwrap().len(), 0);

        std::fs::write(app.sqlite_dir_for(&user).await.join("a.db"), b"").unwrap();
        let first = app
            .api(Method::POST, &key, "/api/v1/connections")
            .json(&json!({"name": "dup", "kind": "sqlite", "auth": {"params": {"path": "a.db"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 201);
        let second = app
            .api(Method::POST, &key, "/api/v1/connections")
            .json(&json!({"name": "dup", "kind": "sqlite", "auth": {"params": {"path": "a.db"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(second.status(), 409);
        assert_eq!(
            second.json::<Value>().await.unwrap()["error"]["field"],
            "name"
        );
    }
);

on_both_backends!(
    connectors_are_tenant_scoped_and_deletes_confirmed,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let alice = app.signup("Alice").await;
        let alice_key = app.api_key_for(&alice).await;
        let bob_browser = TestApp::browser_like_client();
        let bob = TestUser::unique("Bob");
        app.signup_with(&bob_browser, &bob).await;
        let bob_key = app.api_key_for(&bob).await;
        std::fs::write(app.sqlite_dir_for(&alice).await.join("alice.db"), b"").unwrap();
        let created: Value = app.api_post_json(&alice_key, "/api/v1/connections", &json!({"name": "alice_db", "kind": "sqlite", "auth": {"params": {"path": "alice.db"}}})).await;
        let id = created["id"].as_str().unwrap();

        for (method, path) in [
            (Method::GET, format!("/api/v1/connections/{id}")),
            (Method::POST, format!("/api/v1/connections/{id}/test")),
            (Method::GET, format!("/api/v1/connections/{id}/tables")),
            (Method::PATCH, format!("/api/v1/connections/{id}")),
            (Method::DELETE, format!("/api/v1/connections/{id}")),
        ] {
            let response = app
                .api(method.clone(), &bob_key, &path)
                .json(&json!({"confirm": "alice_db", "name": "stolen"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {path}");
        }
        for page in [
            format!("/connectors/{id}"),
            format!("/connectors/{id}/explore"),
            format!("/connectors/{id}/edit"),
        ] {
            assert_eq!(
                bob_browser
                    .get(app.url(&page))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                404,
                "{page}"
            );
        }
        let listing = bob_browser
            .get(app.url("/connectors"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!listing.contains("alice_db"));

        // API delete needs the name; UI delete needs the password.
        let wrong = app
            .api(
                Method::DELETE,
                &alice_key,
                &format!("/api/v1/connections/{id}"),
            )
            .json(&json!({"confirm": "nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 400);
        assert_eq!(
            wrong.json::<Value>().await.unwrap()["error"]["field"],
            "confirm"
        );
        let page = format!("/connectors/{id}/delete");
        let refused = app
            .submit(
                &app.client,
                &page,
                &page,
                &[("password", "not my password")],
            )
            .await;
        assert_eq!(refused.status(), 403);
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("nothing was deleted")
        );
        assert_eq!(
            app.api(
                Method::GET,
                &alice_key,
                &format!("/api/v1/connections/{id}")
            )
            .send()
            .await
            .unwrap()
            .status(),
            200,
            "still there"
        );
        let confirmed = app
            .submit(&app.client, &page, &page, &[("password", &alice.password)])
            .await;
        assert_eq!(confirmed.status(), 303);
        assert_eq!(
            app.api(
                Method::GET,
                &alice_key,
                &format!("/api/v1/connections/{id}")
            )
            .send()
            .await
            .unwrap()
            .status(),
            404,
            "gone"
        );
        let audit = app.page_text("/audit").await;
        assert!(audit.contains("connector.delete"));
    }
);

on_both_backends!(stored_credentials_are_encrypted, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Crypt").await;
    let key = app.api_key_for(&user).await;
    let source = TestDatabase::create("sluice_src").await;
    let password = "Unmistakable-Pa55word-xyzzy";
    let id = create_pg_connector(&app, &key, &source, "sealed", password).await;
    let connector_id = sluice_store::ids::ConnectorId::parse(&id).unwrap();
    let sealed = app
        .store()
        .connector_sealed_secrets(&connector_id)
        .await
        .unwrap()
        .expect("secrets stored");
    assert!(
        sealed.starts_with("v2:") && !sealed.contains(password),
        "AES-GCM ciphertext, not the password"
    );
    if backend == Backend::Sqlite {
        // Not even hidden in the raw database pages (WAL included).
        for file in ["sluice.db", "sluice.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.data_dir.join(file)) {
                assert!(
                    !bytes
                        .windows(password.len())
                        .any(|w| w == password.as_bytes()),
                    "{file} holds the plain password"
                );
            }
        }
    }
    // Editing without a password keeps the stored one.
    let page = format!("/connectors/{id}/edit");
    let html = app.page_text(&page).await;
    assert!(!html.contains(password), "the edit form never shows it");
    let edited = app
        .api(Method::PATCH, &key, &format!("/api/v1/connections/{id}"))
        .json(&json!({"description": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let connector = app
        .store()
        .connector(
            &app.store().tenant_by_name(&user.tenant).await.unwrap().id,
            &connector_id,
        )
        .await
        .unwrap();
    assert_eq!(
        connector.secrets(app.store()).unwrap().password.as_deref(),
        Some(password)
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connector_through_the_pages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Pages").await;
    let file = app.sqlite_dir_for(&user).await.join("shop.db");
    sqlite_source(&file, "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT, price REAL, meta JSON); INSERT INTO items VALUES (1, 'lamp', 9.5, '{\"color\":\"red\"}');").await;
    let response = app
        .submit(
            &app.client,
            "/connectors/new",
            "/connectors",
            &[
                ("name", "shop"),
                ("kind", "sqlite"),
                ("path", "shop.db"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let detail_path = location.split('?').next().unwrap().to_string();
    let tested = app
        .submit(
            &app.client,
            &detail_path,
            &format!("{detail_path}/test"),
            &[],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(tested.contains("Connection works."), "{tested}");
    let explore = app.page_text(&format!("{detail_path}/explore")).await;
    assert!(explore.contains(">items</a>"));
    let table = app
        .page_text(&format!("{detail_path}/explore/table?name=items"))
        .await;
    assert!(
        table.contains("<td>lamp</td>") && table.contains("{&#34;color&#34;:&#34;red&#34;}"),
        "{table}"
    );

    // A form error names the field and keeps the rest.
    let bad = app
        .submit(
            &app.client,
            "/connectors/new",
            "/connectors",
            &[
                ("name", "Shop!"),
                ("kind", "sqlite"),
                ("path", "shop.db"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(html.contains("id=\"name-error\"") && html.contains("value=\"shop.db\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parsing_a_connection_string_fills_the_form_without_echoing_the_password() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.signup("Parse").await;
    let response = app
        .submit(&app.client, "/connectors/new", "/connectors", &[("connection_string", "jdbc:sqlserver://sql.example.com:1433;databaseName=erp;user=reader;password=Hidden-Pw-42;encrypt=true"), ("intent", "parse")])
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("value=\"sql.example.com\"")
            && html.contains("value=\"erp\"")
            && html.contains("value=\"reader\""),
        "fields filled"
    );
    assert!(html.contains("<option value=\"sqlserver\" selected>"));
    assert!(
        !html.contains("Hidden-Pw-42"),
        "the password is never echoed"
    );
    let bad = app
        .submit(
            &app.client,
            "/connectors/new",
            "/connectors",
            &[
                (
                    "connection_string",
                    "jdbc:oracle:thin:@(DESCRIPTION=(ADDRESS=(HOST=x)))",
                ),
                ("intent", "parse"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text().await.unwrap().contains("TNS descriptor"),
        "the message names the bad part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_specs_list_every_kind() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Specs").await;
    let key = app.api_key_for(&user).await;
    let specs: Value = app.api_get_json(&key, "/api/v1/connectionSpecs").await;
    let kinds: Vec<&str> = specs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "postgres",
            "mysql",
            "mariadb",
            "sqlserver",
            "oracle",
            "sqlite"
        ]
    );
    let postgres = &specs[0]["params"];
    let names: Vec<&str> = postgres
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "server", "port", "database", "username", "password", "sslMode",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    assert!(
        postgres
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"].is_string() && p["required"].is_boolean())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_provisions_a_working_sqlite_connector() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let login = sluice_server::demo::provision(app.store(), &app.sqlite_root())
        .await
        .unwrap();
    let again = sluice_server::demo::provision(app.store(), &app.sqlite_root())
        .await
        .unwrap();
    assert_ne!(
        login.password, again.password,
        "each run prints a fresh password"
    );
    assert_eq!(
        app.login_with(&app.client, &again.email, &again.password)
            .await
            .status(),
        303
    );
    let list = app.page_text("/connectors").await;
    assert_eq!(
        list.matches(">demo_shop</a>").count(),
        1,
        "provisioning twice keeps one connector"
    );
    let tenant = app.store().tenant_by_name("Demo").await.unwrap();
    let connector = app.store().connectors(&tenant.id).await.unwrap().remove(0);
    let page = format!("/connectors/{}", connector.id);
    let tested = app
        .submit(&app.client, &page, &format!("{page}/test"), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(tested.contains("Connection works."), "{tested}");
    let table = app
        .page_text(&format!("{page}/explore/table?name=customers"))
        .await;
    assert!(table.contains("Ada Lovelace"));

    // The demo's pull syncs: run "new paid invoices" now; its rows land in the demo inbox.
    let queue = app.page_text(&page).await;
    assert!(queue.contains(">new paid invoices</a>") && queue.contains(">usage events</a>"));
    let commands = app
        .store()
        .connector_commands(&tenant.id, &connector.id, false, None, 100)
        .await
        .unwrap();
    let invoices = commands
        .iter()
        .find(|c| c.settings.name == "new paid invoices")
        .unwrap();
    let command_page = format!("/commands/{}", invoices.id);
    assert_eq!(
        app.submit(
            &app.client,
            &command_page,
            &format!("{command_page}/run"),
            &[]
        )
        .await
        .status(),
        303
    );
    let inbox = app
        .store()
        .inboxes(&tenant.id, None, 100)
        .await
        .unwrap()
        .remove(0);
    for _ in 0..100 {
        if app
            .store()
            .count_inbox_messages(&tenant.id, &inbox.id)
            .await
            .unwrap()
            > 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let messages = app
        .store()
        .inbox_messages(&tenant.id, &inbox.id, None, 10)
        .await
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        15,
        "three paid invoices for each of five customers"
    );
    let dashboard = app.page_text("/").await;
    assert!(dashboard.contains("id=\"recent-runs\"") && dashboard.contains("new paid invoices"));
}

/// Creates a MariaDB connector through the API and returns (status, body).
async fn try_create_mariadb(app: &TestApp, key: &str, name: &str, server: &str) -> (u16, Value) {
    let response = app
        .api(Method::POST, key, "/api/v1/connections")
        .json(&json!({"name": name, "kind": "mariadb", "auth": {"params": {"server": server, "port": 3306, "database": "test", "username": "root", "sslMode": "disabled"}}}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn test_connection(app: &TestApp, key: &str, id: &str) -> Value {
    app.api(Method::POST, key, &format!("/api/v1/connections/{id}/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A hostile tenant aims connectors at the server's own network: loopback by
/// address and by name, a Unix socket, options smuggled into the host. By default
/// none is reached (and Test connection reveals no latency); the operator setting
/// lets loopback through for self-hosted installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_cannot_reach_the_servers_own_network_unless_the_operator_allows_it() {
    let shared = TestApp::spawn_with(Backend::Sqlite, |c| c.allow_private_databases = false).await;
    let user = shared.signup("Hostile").await;
    let key = shared.api_key_for(&user).await;
    for (name, server) in [
        ("by_address", "127.0.0.1"),
        ("by_name", "localhost"),
        ("mapped", "::ffff:127.0.0.1"),
    ] {
        let (status, created) = try_create_mariadb(&shared, &key, name, server).await;
        assert_eq!(status, 201, "{created}");
        let test = test_connection(&shared, &key, created["id"].as_str().unwrap()).await;
        assert_eq!(test["ok"], false, "{name}: {test}");
        assert_eq!(test["category"], "forbidden", "{name}: {test}");
        assert!(
            test["error"].as_str().unwrap().contains("loopback"),
            "{test}"
        );
        assert!(test.get("latency_ms").is_none(), "no timing oracle: {test}");
        let tables = shared
            .api(
                Method::GET,
                &key,
                &format!(
                    "/api/v1/connections/{}/tables",
                    created["id"].as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        assert!(
            tables.status().is_client_error() || tables.status() == 502,
            "{}",
            tables.status()
        );
    }
    for (name, server) in [
        ("socket", "/var/run/mysqld"),
        ("smuggled", "db.example.com?allowLoadLocalInfile=true"),
        ("oracle_style", "db;Database=master"),
    ] {
        let (status, refused) = try_create_mariadb(&shared, &key, name, server).await;
        assert_eq!(status, 400, "{name}: {refused}");
        assert_eq!(refused["error"]["field"], "auth.params.server", "{refused}");
    }
    shared.stop().await;

    let self_hosted = TestApp::spawn(Backend::Sqlite).await;
    let user = self_hosted.signup("SelfHosted").await;
    let key = self_hosted.api_key_for(&user).await;
    let (_, created) = try_create_mariadb(&self_hosted, &key, "local", "127.0.0.1").await;
    let test = test_connection(&self_hosted, &key, created["id"].as_str().unwrap()).await;
    assert_eq!(
        test["ok"], true,
        "allowed by SLUICE_ALLOW_PRIVATE_DATABASES: {test}"
    );
}

/// Listens on a free loopback port and counts connection attempts: an attacker's
/// "database server" waiting for a cleartext password.
async fn password_trap() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, hits)
}

/// The sealed-password field of the new-connector form used to decrypt whatever
/// it was given with the credentials key: a stolen stored secret (or another
/// user's form value) replayed through it, aimed at the attacker's server, would
/// send the cleartext password there. It must not open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_sealed_secret_replayed_through_the_form_never_opens() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let victim = app.signup("Victim").await;
    let key = app.api_key_for(&victim).await;
    let created = app
        .api(Method::POST, &key, "/api/v1/connections")
        .json(&json!({"name": "crm", "kind": "postgres", "auth": {"params": {"server": "db.example.com", "database": "crm", "username": "app", "password": "victims-db-password", "sslMode": "disabled"}}}))
        .send()
        .await
        .unwrap();
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stolen = app
        .store()
        .connector_sealed_secrets(&sluice_store::ids::ConnectorId::parse(&id).unwrap())
        .await
        .unwrap()
        .expect("the password is stored sealed");

    let attacker = TestApp::browser_like_client();
    app.signup_with(&attacker, &TestUser::unique("Attacker"))
        .await;
    let (trap_port, hits) = password_trap().await;
    let port = trap_port.to_string();
    // The victim's own form value, replayed by the attacker, must not open either.
    let mut victims_form_value = String::new();
    {
        let victim_browser = TestApp::browser_like_client();
        app.login_with(&victim_browser, &victim.email, &victim.password)
            .await;
        let parsed = app
            .submit(
                &victim_browser,
                "/connectors/new",
                "/connectors",
                &[
                    (
                        "connection_string",
                        "postgres://app:form-secret-pw@db.example.com/crm",
                    ),
                    ("intent", "parse"),
                ],
            )
            .await
            .text()
            .await
            .unwrap();
        let marker = "name=\"sealed_password\" value=\"";
        let start = parsed.find(marker).unwrap() + marker.len();
        victims_form_value.push_str(&parsed[start..start + parsed[start..].find('"').unwrap()]);
        assert!(!victims_form_value.is_empty());
    }
    for replayed in [stolen.as_str(), victims_form_value.as_str()] {
        let response = app
            .submit(
                &attacker,
                "/connectors/new",
                "/connectors",
                &[
                    ("name", "exfil"),
                    ("kind", "postgres"),
                    ("reach", "direct"),
                    ("server", "127.0.0.1"),
                    ("port", &port),
                    ("database", "x"),
                    ("username", "x"),
                    ("ssl_mode", "disabled"),
                    ("sealed_password", replayed),
                    ("intent", "test"),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("could not be read back"),
            "the replayed value is refused"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the attacker's server"
    );
}

/// A sealed value moved to another connector's row (someone with write access to
/// the control-plane database) does not open there: it is bound to its connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_secret_copied_to_another_connector_does_not_open() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Swap").await;
    let key = app.api_key_for(&user).await;
    let mut ids = Vec::new();
    for (name, password) in [("source", "first-password"), ("target", "second-password")] {
        let created = app
            .api(Method::POST, &key, "/api/v1/connections")
            .json(&json!({"name": name, "kind": "mariadb", "auth": {"params": {"server": "127.0.0.1", "port": 3306, "database": "test", "username": "root", "password": password, "sslMode": "disabled"}}}))
            .send()
            .await
            .unwrap();
        ids.push(
            created.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!(
            "sqlite:{}",
            app.data_dir.join("sluice.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE connectors SET secrets_enc = (SELECT secrets_enc FROM connectors WHERE id = ?), version = version + 1 WHERE id = ?")
            .bind(&ids[0])
            .bind(&ids[1])
            .execute(&mut db)
            .await
            .unwrap();
    }
    let test = test_connection(&app, &key, &ids[1]).await;
    assert_eq!(test["ok"], false, "{test}");
    assert!(
        test["error"].as_str().unwrap().contains("cannot be opened"),
        "{test}"
    );
    // Its own row still opens: the password reaches the server (which refuses it).
    let source = test_connection(&app, &key, &ids[0]).await;
    assert_eq!(source["category"], "authentication", "{source}");
}

/// Rotation: secrets sealed under the old key open with it listed as previous,
/// are re-sealed with the new key on start, and then need the old key no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_secret_key_reseals_every_stored_secret() {
    const OLD: &str = "the old instance key of more than 32 characters";
    const NEW: &str = "the new instance key of more than 32 characters";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |key: &'static str, previous: Option<&'static str>| {
        let data = data.clone();
        async move {
            let mut config = sluice_tests::test_config(data, None);
            config.secret_key = Some(key.into());
            config.previous_secret_keys = previous.map(Into::into);
            sluice_server::startup::open_store(&config).await.unwrap()
        }
    };
    let store = start(OLD, None).await;
    let (tenant, _) = store
        .create_tenant_with_owner(
            &sluice_store::domain::TenantName::parse("Rotate").unwrap(),
            sluice_store::accounts::NewUser {
                email: sluice_store::domain::Email::parse("rotate@example.com").unwrap(),
                name: sluice_store::domain::PersonName::parse("Rotate").unwrap(),
                password: sluice_store::domain::NewPassword::parse(
                    "correct horse battery",
                    "password",
                )
                .unwrap(),
                role: sluice_store::domain::Role::Owner,
            },
        )
        .await
        .unwrap();
    let settings = sluice_store::connectors::ConnectorSettings {
        name: sluice_store::domain::ConnectorName::parse("crm").unwrap(),
        description: String::new(),
        kind: "postgres".into(),
        reach: sluice_store::domain::Reach::Direct,
        host: Some("db.example.com".into()),
        port: None,
        database: Some("crm".into()),
        username: Some("app".into()),
        tls_mode: "required".into(),
        options: Default::default(),
        path: None,
    };
    let secrets = sluice_store::connectors::ConnectorSecrets {
        password: Some("rotated-password".into()),
        options: Default::default(),
    };
    let (connector, _) = store
        .create_connector(&tenant.id, &settings, &secrets)
        .await
        .unwrap();
    drop(store);

    let new_only = start(NEW, None).await;
    let stale = new_only.connector(&tenant.id, &connector.id).await.unwrap();
    assert!(
        stale.secrets(&new_only).is_err(),
        "the new key alone cannot open it"
    );
    drop(new_only);

    let rotating = start(NEW, Some(OLD)).await;
    drop(rotating);
    let rotated = start(NEW, None).await;
    let opened = rotated
        .connector(&tenant.id, &connector.id)
        .await
        .unwrap()
        .secrets(&rotated)
        .unwrap();
    assert_eq!(opened.password.as_deref(), Some("rotated-password"));
}

/// "preferred" TLS against a server without TLS (the local MariaDB): without a
/// password it connects in the clear, but a password is never sent unencrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_tls_never_sends_a_password_in_the_clear() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Tls").await;
    let key = app.api_key_for(&user).await;
    let mut outcomes = Vec::new();
    for (name, password) in [
        ("no_password", None),
        ("with_password", Some("a-real-password")),
    ] {
        let mut params = json!({"server": "127.0.0.1", "port": 3306, "database": "test", "username": "root", "sslMode": "preferred"});
        if let Some(password) = password {
            params["password"] = json!(password);
        }
        let created = app
            .api(Method::POST, &key, "/api/v1/connections")
            .json(&json!({"name": name, "kind": "mariadb", "auth": {"params": params}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        outcomes.push(test_connection(&app, &key, &id).await);
    }
    assert_eq!(
        outcomes[0]["ok"], true,
        "no secret at stake: {}",
        outcomes[0]
    );
    assert_eq!(outcomes[1]["ok"], false, "{}", outcomes[1]);
    assert_eq!(outcomes[1]["category"], "tls", "{}", outcomes[1]);
    assert!(
        outcomes[1]["error"]
            .as_str()
            .unwrap()
            .contains("password unencrypted"),
        "{}",
        outcomes[1]
    );
}

/// A new network connector that names no TLS mode requires TLS: against a server
/// without TLS (the local MariaDB) Test connection fails and says which setting
/// would connect, rather than falling back to plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connectors_require_tls_unless_they_say_otherwise() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("TlsDefault").await;
    let key = app.api_key_for(&user).await;
    let mut ids = Vec::new();
    for body in [
        json!({"name": "by_params", "kind": "mariadb", "auth": {"params": {"server": "127.0.0.1", "port": 3306, "database": "test", "username": "root"}}}),
        json!({"name": "by_string", "connectionString": "jdbc:mariadb://127.0.0.1:3306/test?user=root"}),
    ] {
        let created: Value = app.api_post_json(&key, "/api/v1/connections", &body).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let shown: Value = app
            .api_get_json(&key, &format!("/api/v1/connections/{id}"))
            .await;
        assert_eq!(shown["params"]["sslMode"], "required", "{shown}");
        let outcome = test_connection(&app, &key, id).await;
        assert_eq!(outcome["ok"], false, "{outcome}");
        assert_eq!(outcome["category"], "tls", "{outcome}");
        let error = outcome["error"].as_str().unwrap();
        assert!(
            error.contains("does not offer TLS") && error.contains("\"disabled\""),
            "{error}"
        );
    }
}
