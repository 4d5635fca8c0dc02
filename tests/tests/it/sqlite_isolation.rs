//! Security issue #8: a tenant's SQLite connector reaches its own file and nothing
//! else. Each test runs an attack against the real server over HTTP, on the
//! embedded SQLite control plane (the file an attacker would ATTACH), and fails
//! if the attack works again.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_store::connectors::{ConnectorSecrets, ConnectorSettings};
use sluice_store::domain::{ConnectorName, Reach};
use sluice_tests::{Backend, Receiver, TestApp, TestUser, sqlite_source};
use std::path::Path;
use std::time::Duration;

const SHOP: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT);
     INSERT INTO items VALUES (1, 'lamp'), (2, 'desk');";

struct Tenant {
    user: TestUser,
    key: String,
    connector: String,
}

/// A signed-up tenant with `shop.db` in its directory and a connector to it.
async fn tenant_with_shop(app: &TestApp, label: &str) -> Tenant {
    let user = app.signup(label).await;
    let key = app.api_key_for(&user).await;
    sqlite_source(&app.sqlite_dir_for(&user).await.join("shop.db"), SHOP).await;
    let created = app
        .api(Method::POST, &key, "/api/v1/connections")
        .json(&json!({"name": "shop", "kind": "sqlite", "auth": {"params": {"path": "shop.db"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let connector = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Tenant {
        user,
        key,
        connector,
    }
}

fn control_plane(app: &TestApp) -> String {
    let file = app.data_dir.join("sluice.db");
    assert!(file.is_file(), "the embedded control plane is at {file:?}");
    file.to_string_lossy().into_owned()
}

/// Runs `sql` as a command of `tenant` once; returns the command's error (the
/// run must fail) after checking that no row reached the callback.
async fn failing_command(app: &TestApp, tenant: &Tenant, sql: &str) -> String {
    let receiver = Receiver::start().await;
    let created: Value = app
        .api_post_json(
            &tenant.key,
            "/api/v1/commands",
            &json!({"connection_id": tenant.connector, "name": "attack", "sql": sql,
            "callback": {"url": format!("{}/rows", receiver.url)}}),
        )
        .await;
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"));
    let started = app
        .api(
            Method::POST,
            &tenant.key,
            &format!("/api/v1/commands/{id}/run"),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "{}", started.text().await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Value = app
            .api_get_json(&tenant.key, &format!("/api/v1/commands/{id}/runs"))
            .await;
        let finished = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "succeeded" || r["status"] == "failed");
        if let Some(run) = finished {
            assert_eq!(
                run["status"], "failed",
                "{sql}: the attack succeeded: {run}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sql}: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let command: Value = app
        .api_get_json(&tenant.key, &format!("/api/v1/commands/{id}"))
        .await;
    assert_eq!(command["status"], "ERROR", "{sql}: {command}");
    assert!(
        receiver.received().is_empty(),
        "{sql}: rows were delivered: {:?}",
        receiver
            .received()
            .iter()
            .map(|r| r.json())
            .collect::<Vec<_>>()
    );
    command["error"].as_str().unwrap_or_default().to_owned()
}

fn assert_no_server_path(app: &TestApp, shown: &str) {
    let data_dir = app.data_dir.to_string_lossy();
    assert!(
        !shown.contains(data_dir.as_ref()),
        "a server path is shown: {shown}"
    );
    assert!(!shown.contains("/tmp/"), "a server path is shown: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_cannot_attach_the_control_plane_or_write_other_files() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mallory = tenant_with_shop(&app, "Mallory").await;
    let control_plane = control_plane(&app);
    let new_file = app.data_dir.join("planted.db");
    let vacuumed = app.data_dir.join("stolen.db");
    let attacks = [
        format!(
            "ATTACH DATABASE '{control_plane}' AS cp; SELECT email, password_hash FROM cp.users"
        ),
        format!("ATTACH '{control_plane}' AS cp; UPDATE cp.users SET email = 'owned@evil.test'"),
        format!("ATTACH 'file:{control_plane}?mode=ro' AS cp; SELECT * FROM cp.api_keys"),
        format!(
            "ATTACH '{}' AS planted; CREATE TABLE planted.t (x)",
            new_file.display()
        ),
        format!("VACUUM INTO '{}'", vacuumed.display()),
        "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')".to_owned(),
    ];
    for sql in &attacks {
        let error = failing_command(&app, &mallory, sql).await;
        let why = if sql.contains("load_extension") {
            "not authorized"
        } else {
            "too many attached databases"
        };
        assert!(
            error.contains(why),
            "{sql}: failed for another reason: {error}"
        );
        assert_no_server_path(&app, &error);
    }
    assert!(!new_file.exists(), "ATTACH created a file");
    assert!(
        !vacuumed.exists(),
        "VACUUM INTO wrote a copy of the database"
    );
    let owner = app
        .store()
        .tenant_by_name(&mallory.user.tenant)
        .await
        .unwrap();
    let users = app.store().users(&owner.id).await.unwrap();
    assert!(
        users.iter().all(|u| u.email != "owned@evil.test"),
        "the control plane was written"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explore_and_preview_never_reach_an_attached_database() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mallory = tenant_with_shop(&app, "Mallory").await;
    let control_plane = control_plane(&app);
    // Were ATTACH possible, it would stay on a pooled connection that explore
    // and preview use next; a temporary view named like a listed table would
    // then show the control plane's rows.
    failing_command(
        &app,
        &mallory,
        &format!(
            "ATTACH '{control_plane}' AS cp; CREATE TEMP VIEW items AS SELECT email AS label FROM cp.users"
        ),
    )
    .await;
    let id = &mallory.connector;
    for path in [
        format!("/api/v1/connections/{id}/tables/users/preview?schema=cp"),
        format!("/api/v1/connections/{id}/tables/users/preview"),
        format!("/api/v1/connections/{id}/tables/users/columns?schema=cp"),
        format!("/api/v1/connections/{id}/tables/sqlite_master/preview?schema=cp"),
    ] {
        let response = app
            .api(Method::GET, &mallory.key, &path)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(!status.is_success(), "{path}: {status} {body}");
        assert!(!body.contains(&mallory.user.email), "{path}: {body}");
        assert_no_server_path(&app, &body);
    }
    let preview = app
        .api(
            Method::GET,
            &mallory.key,
            &format!("/api/v1/connections/{id}/tables/items/preview"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains("lamp") && !preview.contains(&mallory.user.email),
        "{preview}"
    );
    let tables = app
        .api(
            Method::GET,
            &mallory.key,
            &format!("/api/v1/connections/{id}/tables"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !tables.contains("users") && !tables.contains("api_keys"),
        "{tables}"
    );
    for page in [
        format!("/connectors/{id}/explore"),
        format!("/connectors/{id}/explore/table?schema=cp&name=users"),
        format!("/connectors/{id}/explore/table?name=items"),
    ] {
        let html = app.page_text(&page).await;
        assert!(!html.contains(&mallory.user.email), "{page}: {html}");
        assert_no_server_path(&app, &html);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_file_is_unreachable() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = tenant_with_shop(&app, "Alice").await;
    let alice_dir = app.sqlite_dir_for(&alice.user).await;
    let alice_tenant = alice_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mallory = tenant_with_shop(&app, "Mallory").await;
    let mallory_dir = app.sqlite_dir_for(&mallory.user).await;
    std::os::unix::fs::symlink(alice_dir.join("shop.db"), mallory_dir.join("link.db")).unwrap();
    std::fs::write(app.sqlite_root().join("shared.db"), b"").unwrap();
    let alice_file = alice_dir.join("shop.db");
    for path in [
        format!("../{alice_tenant}/shop.db"),
        alice_file.to_string_lossy().into_owned(),
        format!("sqlite:{}", alice_file.display()),
        "link.db".to_owned(),
        "../shared.db".to_owned(),
        format!("{alice_tenant}/shop.db"),
    ] {
        let response = app
            .api(Method::POST, &mallory.key, "/api/v1/connections")
            .json(&json!({"name": "theft", "kind": "sqlite", "auth": {"params": {"path": path}}}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], "auth.params.path", "{path}: {body}");
        assert_no_server_path(&app, &body.to_string());
    }
    // Nor by editing an existing connector.
    let edit = app
        .api(
            Method::PATCH,
            &mallory.key,
            &format!("/api/v1/connections/{}", mallory.connector),
        )
        .json(&json!({"auth": {"params": {"path": format!("../{alice_tenant}/shop.db")}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status(), 400);
    // Nor with SQL.
    let error = failing_command(
        &app,
        &mallory,
        &format!(
            "ATTACH '{}' AS alice; SELECT * FROM alice.items",
            alice_file.display()
        ),
    )
    .await;
    assert_no_server_path(&app, &error);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_show_the_servers_paths() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = tenant_with_shop(&app, "Paths").await;
    let dir = app.sqlite_dir_for(&tenant.user).await;
    let mut shown = Vec::new();
    for path in ["missing.db", "../x.db", "/etc/passwd", ":memory:"] {
        let response = app
            .api(Method::POST, &tenant.key, "/api/v1/connections")
            .json(&json!({"name": "other", "kind": "sqlite", "auth": {"params": {"path": path}}}))
            .send()
            .await
            .unwrap();
        shown.push(response.text().await.unwrap());
    }
    shown.push(failing_command(&app, &tenant, "SELECT * FROM no_such_table").await);
    // A file that is not a database, then a file gone since the connector was saved.
    std::fs::write(
        dir.join("shop.db"),
        b"this is not a database, not at all......",
    )
    .unwrap();
    let id = &tenant.connector;
    for _ in 0..2 {
        for path in [
            format!("/api/v1/connections/{id}/test"),
            format!("/api/v1/connections/{id}/tables"),
        ] {
            let method = if path.ends_with("test") {
                Method::POST
            } else {
                Method::GET
            };
            let response = app.api(method, &tenant.key, &path).send().await.unwrap();
            shown.push(response.text().await.unwrap());
        }
        for page in [
            format!("/connectors/{id}"),
            format!("/connectors/{id}/explore"),
        ] {
            shown.push(app.page_text(&page).await);
        }
        shown.push(failing_command(&app, &tenant, "SELECT * FROM items").await);
        let _ = std::fs::remove_file(dir.join("shop.db"));
        // A new version of the connector, so its pool is opened again.
        let edit = app
            .api(
                Method::PATCH,
                &tenant.key,
                &format!("/api/v1/connections/{id}"),
            )
            .json(&json!({"description": "reopen"}))
            .send()
            .await
            .unwrap();
        shown.push(edit.text().await.unwrap());
    }
    for text in &shown {
        assert_no_server_path(&app, text);
    }
    assert!(
        shown.iter().any(|t| t.contains("shop.db")),
        "errors name the connector's own path: {shown:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_connectors_move_into_their_tenants_directories() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let root = app.sqlite_root();
    let solo = tenant_with_shop(&app, "Solo").await;
    let first = tenant_with_shop(&app, "First").await;
    let second = tenant_with_shop(&app, "Second").await;
    sqlite_source(&root.join("solo.db"), SHOP).await;
    sqlite_source(&root.join("both.db"), SHOP).await;
    let store = app.store();
    let legacy = |name: &str, path: &Path| ConnectorSettings {
        name: ConnectorName::parse(name).unwrap(),
        description: String::new(),
        kind: "sqlite".into(),
        reach: Reach::Direct,
        host: None,
        port: None,
        database: None,
        username: None,
        tls_mode: "disabled".into(),
        options: Default::default(),
        path: Some(path.to_string_lossy().into_owned()),
    };
    let tenant_id = |user: &TestUser| {
        let name = user.tenant.clone();
        async move { store.tenant_by_name(&name).await.unwrap().id }
    };
    let solo_id = tenant_id(&solo.user).await;
    let first_id = tenant_id(&first.user).await;
    let second_id = tenant_id(&second.user).await;
    // Saved before tenant directories: an absolute path, and one relative to the root.
    let (solo_legacy, _) = store
        .create_connector(
            &solo_id,
            &legacy("legacy", &root.join("solo.db").canonicalize().unwrap()),
            &ConnectorSecrets::default(),
        )
        .await
        .unwrap();
    store
        .create_connector(
            &first_id,
            &legacy("legacy", &root.join("both.db").canonicalize().unwrap()),
            &ConnectorSecrets::default(),
        )
        .await
        .unwrap();
    store
        .create_connector(
            &second_id,
            &legacy("legacy", Path::new("both.db")),
            &ConnectorSecrets::default(),
        )
        .await
        .unwrap();

    let moved = sluice_jobs::sqlite_dirs::move_into_tenant_dirs(store, &root)
        .await
        .unwrap();
    assert_eq!(moved.connectors, 3, "{moved:?}");
    assert!(
        !root.join("solo.db").exists(),
        "a file of one tenant is moved"
    );
    assert!(app.sqlite_dir(&solo_id).join("solo.db").is_file());
    assert!(
        app.sqlite_dir(&first_id).join("both.db").is_file(),
        "a shared file is copied"
    );
    assert!(
        app.sqlite_dir(&second_id).join("both.db").is_file(),
        "to each tenant"
    );
    let again = sluice_jobs::sqlite_dirs::move_into_tenant_dirs(store, &root)
        .await
        .unwrap();
    assert_eq!(again, Default::default(), "a second run changes nothing");

    let stored = store.connector(&solo_id, &solo_legacy.id).await.unwrap();
    assert_eq!(stored.settings.path.as_deref(), Some("solo.db"));
    for tenant in [&solo, &first, &second] {
        let connectors: Value = app.api_get_json(&tenant.key, "/api/v1/connections").await;
        let legacy = connectors
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "legacy")
            .unwrap();
        let tables = app
            .api(
                Method::GET,
                &tenant.key,
                &format!(
                    "/api/v1/connections/{}/tables",
                    legacy["id"].as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(tables.status(), 200, "{}", tables.text().await.unwrap());
    }
    app.stop().await;
}
