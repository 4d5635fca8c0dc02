//! The JSON API: bearer keys, the error shape, OpenAPI, tenant isolation.

use serde_json::Value;
use sluice_tests::{TestApp, on_both_backends};

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
