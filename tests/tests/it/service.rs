//! What the service layer guarantees through both edges: the API's input is typed
//! (options stay a map, numbers stay numbers), every change needs a role that may
//! make it, and every change to a connector, command or inbox is audited.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_store::api_keys::KeyCreator;
use sluice_store::domain::Email;
use sluice_tests::{THREE_ITEMS, TestApp, on_both_backends, sqlite_source};

/// POSTs `body` and returns the new object's id.
async fn created(app: &TestApp, key: &str, path: &str, body: Value) -> String {
    let response = app
        .api(Method::POST, key, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "POST {path}: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn refused_field(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    body["error"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

on_both_backends!(
    api_options_stay_one_option_each_and_ports_are_numbers,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Options").await;
        let key = app.api_key_for(&owner).await;
        let send = |method: Method, path: &str, body: Value| {
            app.api(method, &key, path).json(&body).send()
        };
        let postgres = |options: Value, port: Value| {
            json!({"name": "warehouse", "kind": "postgres", "auth": {"params": {
                "server": "db.example.com", "port": port, "username": "sluice", "options": options}}})
        };

        // A line break in a value used to come out as a second option.
        let smuggled = json!({"applicationName": "sluice\nsslmode=disable"});
        let response = send(
            Method::POST,
            "/api/v1/connections",
            postgres(smuggled, json!(5433)),
        )
        .await
        .unwrap();
        assert_eq!(
            refused_field(response).await,
            "auth.params.options.applicationName"
        );
        let listed: Value = app.api_get_json(&key, "/api/v1/connections").await;
        assert_eq!(listed, json!([]), "nothing was created");

        let response = send(
            Method::POST,
            "/api/v1/connections",
            postgres(json!({}), json!(70000)),
        )
        .await
        .unwrap();
        assert_eq!(refused_field(response).await, "auth.params.port");

        // Values are kept as sent ('=' is data), the port as the number it was.
        let kept = json!({"applicationName": "a=b", "connect_timeout": "5"});
        let id = created(
            &app,
            &key,
            "/api/v1/connections",
            postgres(kept.clone(), json!(5433)),
        )
        .await;
        let path = format!("/api/v1/connections/{id}");
        let shown: Value = app.api_get_json(&key, &path).await;
        assert_eq!(shown["params"]["options"], kept);
        assert_eq!(shown["params"]["port"], 5433);

        // A patch is checked the same way, and a refused one changes nothing.
        let response = send(
            Method::PATCH,
            &path,
            json!({"auth": {"params": {"options": {"search_path": "public\r\nx=y"}}}}),
        )
        .await
        .unwrap();
        assert_eq!(
            refused_field(response).await,
            "auth.params.options.search_path"
        );
        let shown: Value = app.api_get_json(&key, &path).await;
        assert_eq!(shown["params"]["options"], kept);
    }
);

on_both_backends!(viewers_are_refused_every_change, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Readers").await;
    let owner_key = app.api_key_for(&owner).await;
    sqlite_source(
        &app.sqlite_dir_for(&owner).await.join("items.db"),
        THREE_ITEMS,
    )
    .await;
    let connection = created(
        &app,
        &owner_key,
        "/api/v1/connections",
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    )
    .await;
    let inbox = created(&app, &owner_key, "/api/v1/inboxes", json!({"name": "sink"})).await;
    let command = created(
        &app,
        &owner_key,
        "/api/v1/commands",
        json!({"connection_id": connection, "sql": "SELECT id FROM items",
            "callback": {"inbox_id": inbox}}),
    )
    .await;

    let viewer = app.add_user("viewer@readers.test", "viewer").await;
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    let viewer_user = app
        .store()
        .user_by_email(&tenant.id, &Email::parse("viewer@readers.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, viewer_key) = app
        .store()
        .create_api_key(&tenant.id, "viewer's", KeyCreator::User(&viewer_user))
        .await
        .unwrap();
    let audit_entries = || async {
        app.store()
            .audit_entries(&tenant.id, 1000)
            .await
            .unwrap()
            .len()
    };
    let audited_before = audit_entries().await;

    let api_changes = [
        (
            Method::POST,
            "/api/v1/connections".to_string(),
            json!({"name": "more", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/connections/{connection}"),
            json!({"description": "changed"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/connections/{connection}"),
            json!({"confirm": "items"}),
        ),
        (
            Method::POST,
            "/api/v1/commands".to_string(),
            json!({"connection_id": connection, "sql": "SELECT 1", "callback": {"inbox_id": inbox}}),
        ),
        (
            Method::POST,
            format!("/api/v1/commands/{command}/run"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/commands/{command}/pause"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/commands/{command}/resume"),
            json!({}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/commands/{command}"),
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/inboxes".to_string(),
            json!({"name": "more"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/inboxes/{inbox}"),
            json!({}),
        ),
    ];
    for (method, path, body) in api_changes {
        let response = app
            .api(method.clone(), &viewer_key, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
    }

    for form in [
        "/connectors/new".to_string(),
        format!("/connectors/{connection}/edit"),
        format!("/connectors/{connection}/delete"),
        format!("/connectors/{connection}/commands/new"),
        format!("/commands/{command}/edit"),
        format!("/inboxes/{inbox}/delete"),
    ] {
        let response = viewer.get(app.url(&form)).send().await.unwrap();
        assert_eq!(response.status(), 403, "GET {form}");
    }
    let password = "correct horse battery";
    let page_changes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/connectors".into(),
            vec![
                ("name", "more"),
                ("kind", "sqlite"),
                ("reach", "direct"),
                ("path", "items.db"),
            ],
        ),
        (
            format!("/connectors/{connection}/edit"),
            vec![
                ("name", "items"),
                ("kind", "sqlite"),
                ("reach", "direct"),
                ("path", "items.db"),
            ],
        ),
        (format!("/connectors/{connection}/rotate-key"), vec![]),
        (
            format!("/connectors/{connection}/delete"),
            vec![("password", password)],
        ),
        (
            format!("/connectors/{connection}/commands"),
            vec![
                ("sql", "SELECT 1"),
                ("callback_kind", "inbox"),
                ("callback_inbox_id", inbox.as_str()),
            ],
        ),
        (
            format!("/commands/{command}/edit"),
            vec![
                ("sql", "SELECT 1"),
                ("callback_kind", "inbox"),
                ("callback_inbox_id", inbox.as_str()),
            ],
        ),
        (format!("/commands/{command}/run"), vec![]),
        (format!("/commands/{command}/pause"), vec![]),
        (format!("/commands/{command}/resume"), vec![]),
        (
            format!("/commands/{command}/last-value"),
            vec![("last_value", "9")],
        ),
        (format!("/commands/{command}/direct-url"), vec![]),
        (format!("/commands/{command}/delete"), vec![]),
        ("/inboxes".into(), vec![("name", "more")]),
        (
            format!("/inboxes/{inbox}/delete"),
            vec![("password", password)],
        ),
        ("/settings/api-keys".into(), vec![("name", "viewer key")]),
    ];
    for (action, fields) in &page_changes {
        let response = app.submit(&viewer, "/connectors", action, fields).await;
        assert_eq!(response.status(), 403, "POST {action}");
    }

    // Nothing changed, and nothing was recorded as if it had.
    for path in [
        format!("/api/v1/connections/{connection}"),
        format!("/api/v1/commands/{command}"),
        format!("/api/v1/inboxes/{inbox}"),
    ] {
        assert_eq!(app.api_get(&owner_key, &path).await.status(), 200, "{path}");
    }
    let command: Value = app
        .api_get_json(&owner_key, &format!("/api/v1/commands/{command}"))
        .await;
    assert_eq!(command["status"], "READY");
    assert_eq!(command["last_value"], Value::Null);
    assert_eq!(
        app.api_get_json::<Value>(&owner_key, "/api/v1/connections")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(audit_entries().await, audited_before);
});

on_both_backends!(every_change_is_audited, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Audited").await;
    let key = app.api_key_for(&owner).await;
    sqlite_source(
        &app.sqlite_dir_for(&owner).await.join("items.db"),
        THREE_ITEMS,
    )
    .await;

    // Through the API.
    let connection = created(
        &app,
        &key,
        "/api/v1/connections",
        json!({"name": "api_items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    )
    .await;
    let patched = app
        .api(
            Method::PATCH,
            &key,
            &format!("/api/v1/connections/{connection}"),
        )
        .json(&json!({"description": "patched"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let inbox = created(&app, &key, "/api/v1/inboxes", json!({"name": "api sink"})).await;
    let command = created(
        &app,
        &key,
        "/api/v1/commands",
        json!({"connection_id": connection, "name": "api pull", "sql": "SELECT id FROM items",
            "callback": {"inbox_id": inbox}}),
    )
    .await;
    for path in [
        format!("/api/v1/commands/{command}"),
        format!("/api/v1/inboxes/{inbox}"),
    ] {
        let deleted = app.api(Method::DELETE, &key, &path).send().await.unwrap();
        assert_eq!(deleted.status(), 204, "DELETE {path}");
    }
    let deleted = app
        .api(
            Method::DELETE,
            &key,
            &format!("/api/v1/connections/{connection}"),
        )
        .json(&json!({"confirm": "api_items"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Through the pages.
    let sqlite = [
        ("kind", "sqlite"),
        ("reach", "direct"),
        ("path", "items.db"),
    ];
    let mut fields = vec![("name", "page_items")];
    fields.extend(sqlite);
    let response = app
        .submit(&app.client, "/connectors/new", "/connectors", &fields)
        .await;
    assert_eq!(response.status(), 303);
    let connectors: Value = app.api_get_json(&key, "/api/v1/connections").await;
    let connection = connectors[0]["id"].as_str().unwrap().to_string();
    fields.push(("description", "edited"));
    let response = app
        .submit(
            &app.client,
            "/connectors",
            &format!("/connectors/{connection}/edit"),
            &fields,
        )
        .await;
    assert_eq!(response.status(), 303);
    let response = app
        .submit(
            &app.client,
            "/inboxes",
            "/inboxes",
            &[("name", "page sink")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let inboxes: Value = app.api_get_json(&key, "/api/v1/inboxes").await;
    let inbox = inboxes[0]["id"].as_str().unwrap().to_string();
    let response = app
        .submit(
            &app.client,
            "/connectors",
            &format!("/connectors/{connection}/commands"),
            &[
                ("name", "page pull"),
                ("sql", "SELECT id FROM items"),
                ("callback_kind", "inbox"),
                ("callback_inbox_id", inbox.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let commands: Value = app.api_get_json(&key, "/api/v1/commands").await;
    let command = commands[0]["id"].as_str().unwrap().to_string();
    let response = app
        .submit(
            &app.client,
            "/connectors",
            &format!("/commands/{command}/edit"),
            &[
                ("name", "page pull"),
                ("sql", "SELECT id FROM items ORDER BY id"),
                ("callback_kind", "inbox"),
                ("callback_inbox_id", inbox.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let password = owner.password.as_str();
    for (action, fields) in [
        (format!("/commands/{command}/delete"), vec![]),
        (
            format!("/inboxes/{inbox}/delete"),
            vec![("password", password)],
        ),
        (
            format!("/connectors/{connection}/delete"),
            vec![("password", password)],
        ),
    ] {
        let response = app
            .submit(&app.client, "/connectors", &action, &fields)
            .await;
        assert_eq!(response.status(), 303, "POST {action}");
    }

    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    let entries = app.store().audit_entries(&tenant.id, 1000).await.unwrap();
    let recorded = |actor: &str, action: &str, target: &str| {
        entries
            .iter()
            .any(|e| e.actor == actor && e.action == action && e.target == target)
    };
    let by_key = "key:test";
    let by_user = format!("user:{}", owner.email);
    for (actor, action, target) in [
        (by_key, "connector.create", "api_items"),
        (by_key, "connector.update", "api_items"),
        (by_key, "inbox.create", "api sink"),
        (by_key, "command.create", "api pull"),
        (by_key, "command.delete", "api pull"),
        (by_key, "inbox.delete", "api sink"),
        (by_key, "connector.delete", "api_items"),
        (&by_user, "connector.create", "page_items"),
        (&by_user, "connector.update", "page_items"),
        (&by_user, "inbox.create", "page sink"),
        (&by_user, "command.create", "page pull"),
        (&by_user, "command.update", "page pull"),
        (&by_user, "command.delete", "page pull"),
        (&by_user, "inbox.delete", "page sink"),
        (&by_user, "connector.delete", "page_items"),
    ] {
        assert!(
            recorded(actor, action, target),
            "{actor} {action} {target} is audited: {entries:#?}"
        );
    }
    assert!(
        entries
            .iter()
            .filter(|e| e.actor == by_key)
            .all(|e| e.detail == "via API")
    );
});
