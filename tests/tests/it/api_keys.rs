//! API keys belong to the user who created them (security issue #8): a key acts with
//! its creator's current role, at most admin, and stops working when they are
//! removed; system keys (`sluice admin apikey-create`) belong to no user and act as
//! admin; Settings names each key's creator; one-time secrets are never cached.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sluice_store::api_keys::KeyCreator;
use sluice_store::domain::Email;
use sluice_tests::{TestApp, TestUser, on_both_backends, one_time_secret};

/// A key created on the Settings page by `client`'s user.
async fn key_from_settings(app: &TestApp, client: &reqwest::Client, name: &str) -> String {
    let response = app.create_key_in_settings(client, name).await;
    assert_eq!(response.status(), 201);
    one_time_secret(&response.text().await.unwrap()).expect("the key is shown once")
}

async fn create_inbox(app: &TestApp, key: &str, name: &str) -> StatusCode {
    app.api(Method::POST, key, "/api/v1/inboxes")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The id of the user with `email` in the tenant `owner` signed up.
async fn user_id(app: &TestApp, owner: &TestUser, email: &str) -> String {
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    app.store()
        .user_by_email(&tenant.id, &Email::parse(email).unwrap())
        .await
        .unwrap()
        .expect("user exists")
        .id
        .to_string()
}

on_both_backends!(a_removed_users_key_is_refused, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Leaver").await;
    let admin = app.add_user("leaver@keys.test", "admin").await;
    let key = key_from_settings(&app, &admin, "leaver's key").await;
    assert_eq!(app.api_get(&key, "/api/v1/tenant").await.status(), 200);

    let id = user_id(&app, &owner, "leaver@keys.test").await;
    let removed = app
        .submit(
            &app.client,
            "/settings",
            &format!("/settings/users/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(removed.status(), 303);

    assert_eq!(app.api_get(&key, "/api/v1/tenant").await.status(), 401);
    assert_eq!(create_inbox(&app, &key, "after removal").await, 401);
    let settings = app.page_text("/settings").await;
    assert!(
        settings.contains("revoked"),
        "the key shows as revoked in Settings"
    );
});

on_both_backends!(
    a_demoted_users_key_reads_but_cannot_write,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Demoted").await;
        let admin = app.add_user("demoted@keys.test", "admin").await;
        let key = key_from_settings(&app, &admin, "demoted's key").await;
        assert_eq!(create_inbox(&app, &key, "while admin").await, 201);

        let id = user_id(&app, &owner, "demoted@keys.test").await;
        let set_role = |role: &'static str| {
            let path = format!("/settings/users/{id}/role");
            let app = &app;
            async move {
                let response = app
                    .submit(&app.client, "/settings", &path, &[("role", role)])
                    .await;
                assert_eq!(response.status(), 303);
            }
        };
        set_role("viewer").await;
        assert_eq!(create_inbox(&app, &key, "while viewer").await, 403);
        assert_eq!(
            app.api(
                Method::DELETE,
                &key,
                "/api/v1/commands/cmd_00000000000000000000000000000000"
            )
            .send()
            .await
            .unwrap()
            .status(),
            403
        );
        assert_eq!(
            app.api_get(&key, "/api/v1/inboxes").await.status(),
            200,
            "a viewer's key still reads"
        );

        // The key has no role of its own: it follows its creator's current role.
        set_role("admin").await;
        assert_eq!(create_inbox(&app, &key, "admin again").await, 201);
    }
);

on_both_backends!(
    an_owners_key_acts_as_admin_and_system_keys_keep_working,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Ceiling").await;
        let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
        let (_, system_key) = app
            .store()
            .create_api_key(&tenant.id, "ops", KeyCreator::System)
            .await
            .unwrap();
        assert_eq!(create_inbox(&app, &system_key, "from ops").await, 201);

        // An owner's key is capped at admin; and users come and go without
        // touching the system key.
        let owner_key = app.api_key_for(&owner).await;
        assert_eq!(create_inbox(&app, &owner_key, "from owner").await, 201);
        let _viewer = app.add_user("passing@keys.test", "viewer").await;
        let id = user_id(&app, &owner, "passing@keys.test").await;
        let removed = app
            .submit(
                &app.client,
                "/settings",
                &format!("/settings/users/{id}/delete"),
                &[],
            )
            .await;
        assert_eq!(removed.status(), 303);
        assert_eq!(create_inbox(&app, &system_key, "still ops").await, 201);
    }
);

on_both_backends!(settings_names_each_keys_creator, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Creators").await;
    let admin = app.add_user("maker@keys.test", "admin").await;
    key_from_settings(&app, &admin, "makers-key").await;
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    app.store()
        .create_api_key(&tenant.id, "ops-key", KeyCreator::System)
        .await
        .unwrap();

    let html = app.page_text("/settings").await;
    let row = |name: &str| {
        let start = html.find(&format!("<td>{name}</td>")).expect("key listed");
        let end = start + html[start..].find("</tr>").unwrap();
        html[start..end].to_string()
    };
    assert!(
        row("makers-key").contains("<td class=\"key-creator\">maker@keys.test</td>"),
        "{}",
        row("makers-key")
    );
    assert!(
        row("ops-key").contains("<td class=\"key-creator\">system"),
        "{}",
        row("ops-key")
    );
});

on_both_backends!(one_time_secrets_are_not_cached, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Secrets").await;
    let no_store = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("no-store"))
    };

    let new_key = app.create_key_in_settings(&app.client, "once").await;
    assert_eq!(new_key.status(), 201);
    assert!(no_store(&new_key), "a new API key page is not stored");
    let invitation = app
        .submit(
            &app.client,
            "/settings",
            "/settings/users/invite",
            &[("email", "once@keys.test"), ("role", "viewer")],
        )
        .await;
    assert!(
        no_store(&invitation),
        "an invitation link page is not stored"
    );

    let key = app.api_key_for(&owner).await;
    let gateway = app
        .api(Method::POST, &key, "/api/v1/connections")
        .json(
            &json!({"name": "onprem", "kind": "postgres", "reach": "gateway",
            "auth": {"params": {"server": "db.internal", "port": 5432, "database": "shop",
                "username": "sluice", "password": "secret"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(gateway.status(), 201);
    assert!(
        no_store(&gateway),
        "an API answer with a gateway key is not stored"
    );
    let id = gateway.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = format!("/connectors/{id}");
    let rotated = app
        .submit(&app.client, &page, &format!("{page}/rotate-key"), &[])
        .await;
    assert_eq!(rotated.status(), 200);
    assert!(no_store(&rotated), "a new gateway key page is not stored");

    let plain = app.client.get(app.url("/settings")).send().await.unwrap();
    assert!(!no_store(&plain), "pages without secrets stay cacheable");
});
