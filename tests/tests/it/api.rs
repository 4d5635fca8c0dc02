//! The JSON API: bearer keys, the error shape, OpenAPI, tenant isolation.

use reqwest::Method;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};
use sluice_store::api_keys::KeyCreator;
use sluice_tests::{THREE_ITEMS, TestApp, TestUser, on_both_backends, sqlite_source};
use std::collections::HashSet;

on_both_backends!(
    api_keys_authenticate_and_revocation_sticks,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Api").await;

        let anonymous = reqwest::get(app.url("/api/v1/tenant")).await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let body: Value = anonymous.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].is_string());

        assert_eq!(
            app.api_get("sk_not-a-real-key", "/api/v1/tenant")
                .await
                .status(),
            401
        );

        // Create the key through the UI, as a user would; it is shown once.
        let page = app
            .submit(
                &app.client,
                "/settings",
                "/settings/api-keys",
                &[("name", "ci")],
            )
            .await;
        assert_eq!(page.status(), 201);
        let html = page.text().await.unwrap();
        let start = html.find("sk_").expect("secret shown");
        let key: String = html[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let settings = app.page_text("/settings").await;
        assert!(!settings.contains(&key), "the secret is never shown again");

        let tenant: Value = app
            .api_get(&key, "/api/v1/tenant")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tenant["name"], user.tenant.as_str());
        let users: Value = app
            .api_get(&key, "/api/v1/users")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(users.as_array().unwrap().len(), 1);
        assert_eq!(users[0]["email"], user.email.as_str());
        assert!(users[0].get("password_hash").is_none());

        let tenant_id = app.store().tenant_by_name(&user.tenant).await.unwrap().id;
        let stored = app.store().api_keys(&tenant_id).await.unwrap();
        let response = app
            .submit(
                &app.client,
                "/settings",
                &format!("/settings/api-keys/{}/revoke", stored[0].id),
                &[],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(
            app.api_get(&key, "/api/v1/tenant").await.status(),
            401,
            "a revoked key is refused"
        );
    }
);

on_both_backends!(
    another_tenants_ids_answer_404_in_the_api,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let alice = app.signup("Alice").await;
        let bob_browser = TestApp::browser_like_client();
        let bob = sluice_tests::TestUser::unique("Bob");
        app.signup_with(&bob_browser, &bob).await;
        let alice_key = app.api_key_for(&alice).await;
        let bob_tenant = app.store().tenant_by_name(&bob.tenant).await.unwrap();
        let bob_user = &app.store().users(&bob_tenant.id).await.unwrap()[0];

        let response = app
            .api_get(&alice_key, &format!("/api/v1/users/{}", bob_user.id))
            .await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        assert!(!body.to_string().contains(&bob.email));

        for path in [
            "/api/v1/users/usr_nothex",
            "/api/v1/users/%2e%2e%2fetc",
            "/api/v1/no-such-thing",
        ] {
            let response = app.api_get(&alice_key, path).await;
            assert_eq!(response.status(), 404, "{path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "not_found", "{path}");
        }

        let audit: Value = app
            .api_get(&alice_key, "/api/v1/audit")
            .await
            .json()
            .await
            .unwrap();
        assert!(audit.as_array().unwrap().iter().all(|e| {
            !e["target"]
                .as_str()
                .unwrap_or_default()
                .contains(&bob.email)
        }));
    }
);

on_both_backends!(openapi_document_describes_the_api, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let doc: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/tenant",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
});

/// A signed-up owner with a key, a SQLite connector on `items.db` (three rows), an
/// inbox, and a static command that delivers `items` to the inbox.
struct Fixture {
    user: TestUser,
    key: String,
    connection: String,
    inbox: String,
    command: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let user = app.signup("Edge").await;
    let key = app.api_key_for(&user).await;
    sqlite_source(
        &app.sqlite_dir_for(&user).await.join("items.db"),
        THREE_ITEMS,
    )
    .await;
    let connection = created(
        app,
        &key,
        "/api/v1/connections",
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    )
    .await;
    let inbox = created(app, &key, "/api/v1/inboxes", json!({"name": "sink"})).await;
    let command = created(
        app,
        &key,
        "/api/v1/commands",
        json!({"connection_id": connection, "sql": "SELECT id, label FROM items", "callback": {"inbox_id": inbox}}),
    )
    .await;
    Fixture {
        user,
        key,
        connection,
        inbox,
        command,
    }
}

/// POSTs `body` and returns the new object's id (the answer must be 201).
async fn created(app: &TestApp, key: &str, path: &str, body: Value) -> String {
    let response = app
        .api(Method::POST, key, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts SPEC's JSON error shape with `status` and `code`; returns `error`.
async fn json_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let url = response.url().to_string();
    assert_eq!(response.status(), status, "{url}");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{url}: {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{url}: {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

on_both_backends!(
    a_run_body_that_does_not_read_is_refused_and_starts_nothing,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let path = format!("/api/v1/commands/{}/run", f.command);
        let post = |body: &'static str| {
            app.api(Method::POST, &f.key, &path)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
        };

        let error = json_error(
            post("{\"startTime\": ").send().await.unwrap(),
            400,
            "bad_request",
        )
        .await;
        assert!(
            error["message"].as_str().unwrap().contains("line 1 column"),
            "broken JSON is located: {error}"
        );
        for body in ["null", "[]", "\"2026-01-01T00:00:00Z\"", "7"] {
            let error = json_error(post(body).send().await.unwrap(), 400, "bad_request").await;
            assert!(
                error["message"].as_str().unwrap().contains("JSON object"),
                "{body}: {error}"
            );
        }
        for (body, field) in [
            ("{\"startTime\": 5}", "startTime"),
            (
                "{\"startTime\": \"\", \"endTime\": \"2000-01-01T00:00:00Z\"}",
                "startTime",
            ),
            ("{\"endTime\": \" \"}", "endTime"),
        ] {
            let error = json_error(post(body).send().await.unwrap(), 400, "invalid").await;
            assert_eq!(error["field"], field, "{body}: {error}");
        }
        let error = json_error(
            post("{\"endTime\": [\"2026\"]}").send().await.unwrap(),
            400,
            "invalid",
        )
        .await;
        assert_eq!(error["field"], "endTime");
        let error = json_error(
            post("{\"start_time\": \"2026-01-01T00:00:00Z\"}")
                .send()
                .await
                .unwrap(),
            400,
            "bad_request",
        )
        .await;
        assert!(
            error["message"].as_str().unwrap().contains("start_time"),
            "{error}"
        );
        json_error(
            app.api(Method::POST, &f.key, &path)
                .header(CONTENT_TYPE, "text/plain")
                .body("{}")
                .send()
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        )
        .await;
        assert!(
            app.runs(&f.key, &f.command).await.is_empty(),
            "no refused body started a run"
        );

        // The legitimate calls still run: no body at all, `{}`, and a window.
        let no_body = app.api(Method::POST, &f.key, &path).send().await.unwrap();
        assert_eq!(no_body.status(), 202, "{}", no_body.text().await.unwrap());
        app.finished_runs(&f.key, &f.command, 1).await;
        let empty = app
            .api(Method::POST, &f.key, &path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), 202, "{}", empty.text().await.unwrap());
        app.finished_runs(&f.key, &f.command, 2).await;
        let window = app
            .api(Method::POST, &f.key, &path)
            .json(&json!({"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(window.status(), 202, "{}", window.text().await.unwrap());
        let runs = app.finished_runs(&f.key, &f.command, 3).await;
        assert_eq!(runs[0]["window_start"], "2026-01-01T00:00:00.000Z");
        assert_eq!(runs[0]["window_end"], "2026-01-02T00:00:00.000Z");
        assert_ne!(
            runs[1]["window_end"], "2026-01-02T00:00:00.000Z",
            "`{{}}` asks for no window: {:?}",
            runs[1]
        );
    }
);

on_both_backends!(
    query_string_errors_answer_the_json_error_shape,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        for path in [
            "/api/v1/commands?limit=abc".to_string(),
            format!("/api/v1/commands/{}/runs?limit=abc", f.command),
            "/api/v1/inboxes?limit=1.5".to_string(),
            "/api/v1/inboxes?limit=".to_string(),
            format!("/api/v1/inboxes/{}/messages?limit=-", f.inbox),
            format!(
                "/api/v1/connections/{}/tables/items/preview?limit=lots",
                f.connection
            ),
            format!(
                "/api/v1/connections/{}/tables/items/preview?limit=0",
                f.connection
            ),
        ] {
            let error = json_error(app.api_get(&f.key, &path).await, 400, "invalid").await;
            assert_eq!(error["field"], "limit", "{path}");
        }
        // A text parameter left empty is absent, as in a form.
        let all = app
            .api_get(&f.key, "/api/v1/commands?before=&connection_id=")
            .await;
        assert_eq!(all.status(), 200);
        assert_eq!(
            all.json::<Value>().await.unwrap().as_array().unwrap().len(),
            1
        );
        // A query actix itself cannot read (a number that is not one; a repeated key).
        for path in [
            "/api/v1/audit?limit=abc",
            "/api/v1/commands?before=a&before=b",
        ] {
            json_error(app.api_get(&f.key, path).await, 400, "bad_request").await;
        }
        // Pages keep their HTML answers.
        let page = app
            .client
            .get(app.url(&format!(
                "/connectors/{}/explore/table?name=items&limit=abc",
                f.connection
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400);
        assert!(
            !page.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "a page's error stays a page"
        );
    }
);

on_both_backends!(
    exploring_a_table_that_does_not_exist_is_404_and_an_unreachable_database_502,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let table = |name: &str, what: &str| {
            format!("/api/v1/connections/{}/tables/{name}/{what}", f.connection)
        };
        for what in ["preview", "columns"] {
            let error = json_error(
                app.api_get(&f.key, &table("no_such_table", what)).await,
                404,
                "not_found",
            )
            .await;
            assert!(
                error["message"].as_str().unwrap().contains("no_such_table"),
                "{error}"
            );
            assert_eq!(
                app.api_get(&f.key, &table("items", what)).await.status(),
                200
            );
        }

        // Nothing listens on port 1: a real connection failure stays 502.
        let down = created(
            &app,
            &f.key,
            "/api/v1/connections",
            json!({"name": "down", "kind": "postgres", "auth": {"params": {"server": "127.0.0.1", "port": 1, "username": "u", "sslMode": "disabled"}}}),
        )
        .await;
        for what in ["preview", "columns"] {
            json_error(
                app.api_get(
                    &f.key,
                    &format!("/api/v1/connections/{down}/tables/items/{what}"),
                )
                .await,
                502,
                "connection_failed",
            )
            .await;
        }
    }
);

on_both_backends!(
    error_fields_name_the_json_paths_the_client_sent,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let refused = |path: &'static str, body: Value| {
            let request = app.api(Method::POST, &f.key, path).json(&body);
            async move { json_error(request.send().await.unwrap(), 400, "invalid").await }
        };
        let cases = [
            (
                "/api/v1/commands",
                json!({"connection_id": f.connection, "sql": "SELECT 1", "callback": {"url": "not a url"}}),
                "callback.url",
            ),
            (
                "/api/v1/commands",
                json!({"connection_id": f.connection, "sql": "SELECT 1", "callback": {}}),
                "callback.url",
            ),
            (
                "/api/v1/commands",
                json!({"connection_id": f.connection, "sql": "SELECT 1", "callback": {"inbox_id": "ibx_nope"}}),
                "callback.inbox_id",
            ),
            (
                "/api/v1/connections",
                json!({"name": "broken", "connectionString": "jdbc:nonsense://x"}),
                "connectionString",
            ),
            (
                "/api/v1/connections",
                json!({"name": "badport", "kind": "postgres", "auth": {"params": {"server": "db", "username": "u", "port": "abc"}}}),
                "auth.params.port",
            ),
            (
                "/api/v1/connections",
                json!({"name": "badtls", "kind": "postgres", "auth": {"params": {"server": "db", "username": "u", "sslMode": "sometimes"}}}),
                "auth.params.sslMode",
            ),
            (
                "/api/v1/connections",
                json!({"name": "nouser", "kind": "postgres", "auth": {"params": {"server": "db"}}}),
                "auth.params.username",
            ),
        ];
        for (path, body, field) in cases {
            let error = refused(path, body.clone()).await;
            assert_eq!(error["field"], field, "{body}: {error}");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{field}: ")),
                "{error}"
            );
        }
    }
);

on_both_backends!(
    a_callback_with_both_url_and_inbox_is_refused,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let response = app
            .api(Method::POST, &f.key, "/api/v1/commands")
            .json(&json!({
                "connection_id": f.connection, "sql": "SELECT id FROM items",
                "callback": {"url": "http://127.0.0.1:9/hook", "inbox_id": f.inbox},
            }))
            .send()
            .await
            .unwrap();
        let error = json_error(response, 400, "invalid").await;
        assert_eq!(error["field"], "callback");
        let commands: Value = app.api_get_json(&f.key, "/api/v1/commands").await;
        assert_eq!(
            commands.as_array().unwrap().len(),
            1,
            "only the fixture's command"
        );
    }
);

on_both_backends!(
    a_method_a_path_does_not_have_answers_405_with_allow,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let command = format!("/api/v1/commands/{}", f.command);
        let run = format!("/api/v1/commands/{}/run", f.command);
        let inbox = format!("/api/v1/inboxes/{}", f.inbox);
        for (method, path, allow) in [
            (Method::PUT, command.as_str(), "GET, DELETE"),
            (Method::PATCH, command.as_str(), "GET, DELETE"),
            (Method::DELETE, "/api/v1/connections", "POST, GET"),
            (Method::GET, run.as_str(), "POST"),
            (Method::POST, "/api/v1/tenant", "GET"),
            (Method::PUT, inbox.as_str(), "GET, DELETE"),
        ] {
            let response = app.api(method.clone(), &f.key, path).send().await.unwrap();
            assert_eq!(
                response
                    .headers()
                    .get(ALLOW)
                    .map(|v| v.to_str().unwrap().to_string()),
                Some(allow.to_string()),
                "{method} {path}"
            );
            json_error(response, 405, "method_not_allowed").await;
        }
        // An unknown path is still 404, and the declared methods still work.
        for path in ["/api/v1/nothing-here", "/api/v1/commands/x/y"] {
            json_error(
                app.api(Method::PUT, &f.key, path).send().await.unwrap(),
                404,
                "not_found",
            )
            .await;
        }
        assert_eq!(app.api_get(&f.key, &command).await.status(), 200);
    }
);

on_both_backends!(
    an_oversized_api_body_is_413_in_the_json_shape,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let big = json!({"name": "x".repeat(2 * 1024 * 1024)});
        for path in [
            "/api/v1/inboxes".to_string(),
            "/api/v1/connections".to_string(),
            format!("/api/v1/commands/{}/run", f.command),
        ] {
            let response = app
                .api(Method::POST, &f.key, &path)
                .json(&big)
                .send()
                .await
                .unwrap();
            json_error(response, 413, "payload_too_large").await;
        }
        assert!(app.runs(&f.key, &f.command).await.is_empty());
    }
);

on_both_backends!(
    inboxes_can_be_read_and_deleted_one_at_a_time,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let f = fixture(&app).await;
        let doomed = created(&app, &f.key, "/api/v1/inboxes", json!({"name": "doomed"})).await;
        let path = format!("/api/v1/inboxes/{doomed}");

        let inbox: Value = app.api_get_json(&f.key, &path).await;
        assert_eq!(inbox["id"], doomed.as_str());
        assert_eq!(inbox["name"], "doomed");
        assert!(
            inbox["url"].as_str().unwrap().contains("/hooks/"),
            "{inbox}"
        );

        // A viewer's key reads it without the hook URL, and cannot delete it.
        let tenant = app.store().tenant_by_name(&f.user.tenant).await.unwrap();
        app.add_user("viewer@edge.test", "viewer").await;
        let viewer = app
            .store()
            .user_by_email(
                &tenant.id,
                &sluice_store::domain::Email::parse("viewer@edge.test").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let (_, viewer_key) = app
            .store()
            .create_api_key(&tenant.id, "viewer's", KeyCreator::User(&viewer))
            .await
            .unwrap();
        let seen: Value = app.api_get_json(&viewer_key, &path).await;
        assert_eq!(seen["name"], "doomed");
        assert!(seen.get("url").is_none(), "{seen}");
        json_error(
            app.api(Method::DELETE, &viewer_key, &path)
                .send()
                .await
                .unwrap(),
            403,
            "forbidden",
        )
        .await;

        // Another tenant sees nothing and deletes nothing.
        let other_user = TestUser::unique("Other");
        app.signup_with(&TestApp::browser_like_client(), &other_user)
            .await;
        let other_key = app.api_key_for(&other_user).await;
        json_error(app.api_get(&other_key, &path).await, 404, "not_found").await;
        json_error(
            app.api(Method::DELETE, &other_key, &path)
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        json_error(
            app.api_get(&f.key, "/api/v1/inboxes/ibx_nope").await,
            404,
            "not_found",
        )
        .await;

        let deleted = app.api(Method::DELETE, &f.key, &path).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        json_error(app.api_get(&f.key, &path).await, 404, "not_found").await;
        let names: Vec<String> = app
            .api_get_json::<Value>(&f.key, "/api/v1/inboxes")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["sink"]);
        let audit: Value = app.api_get_json(&f.key, "/api/v1/audit").await;
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "inbox.delete"
                    && e["target"] == "doomed"
                    && e["actor"].as_str().unwrap().starts_with("key:")),
            "{audit}"
        );
    }
);

on_both_backends!(
    the_openapi_document_matches_the_routes,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let doc: Value = reqwest::get(app.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut operation_ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let in_path: HashSet<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{method} {path} has an operationId");
                assert!(operation_ids.insert(id.to_string()), "{id} is unique");
                let params = operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let declared: HashSet<&str> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}: path parameters");
                let responses = &operation["responses"];
                assert!(responses["401"].is_object(), "{method} {path}: 401");
                if !in_path.is_empty() {
                    assert!(responses["404"].is_object(), "{method} {path}: 404");
                }
                if operation.get("requestBody").is_some() {
                    assert!(responses["413"].is_object(), "{method} {path}: 413");
                    assert!(responses["400"].is_object(), "{method} {path}: 400");
                }
            }
        }
        assert!(operation_ids.contains("getInbox") && operation_ids.contains("deleteInbox"));

        let list = &doc["paths"]["/api/v1/commands"]["get"]["parameters"];
        let limit = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .expect("limit documented");
        assert_eq!(limit["in"], "query");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 500);
        assert!(doc["paths"]["/api/v1/connections"]["post"]["responses"]["409"].is_object());
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CommandBody"]["properties"]["status"]["enum"],
            json!(["READY", "PROCESSING", "FINISHED", "ERROR", "PAUSED"])
        );
        assert_eq!(
            schemas["RunRequest"]["properties"]["startTime"]["format"],
            "date-time"
        );
        let body = &schemas["MessageBody"]["properties"]["body"];
        assert!(
            body.get("type").is_none(),
            "any JSON, not only objects: {body}"
        );
    }
);
