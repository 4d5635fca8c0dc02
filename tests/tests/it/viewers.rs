//! Viewers see everything but what lets them change state (security issue #8): no
//! inbox token, no direct-URL token and no hook URL holding one, on the pages or
//! through the API with a key whose creator is a viewer.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_store::api_keys::KeyCreator;
use sluice_tests::{THREE_ITEMS, TestApp, on_both_backends, sqlite_source};

async fn api_post(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let response = app
        .api(Method::POST, key, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "POST {path}");
    response.json().await.unwrap()
}

async fn text(client: &reqwest::Client, url: String) -> String {
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

on_both_backends!(viewers_see_no_hook_tokens, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Tokens").await;
    let owner_key = app.api_key_for(&owner).await;
    sqlite_source(
        &app.sqlite_dir_for(&owner).await.join("items.db"),
        THREE_ITEMS,
    )
    .await;
    let connection = api_post(
        &app,
        &owner_key,
        "/api/v1/connections",
        json!({"name": "items", "kind": "sqlite", "auth": {"params": {"path": "items.db"}}}),
    )
    .await;
    let inbox = api_post(&app, &owner_key, "/api/v1/inboxes", json!({"name": "sink"})).await;
    let hook_url = inbox["url"].as_str().unwrap().to_string();
    let inbox_token = hook_url.rsplit('/').next().unwrap().to_string();
    let into_inbox = api_post(
        &app,
        &owner_key,
        "/api/v1/commands",
        json!({
        "connection_id": connection["id"], "sql": "SELECT id FROM items",
        "callback": {"inbox_id": inbox["id"]}}),
    )
    .await;
    let to_hook_url = api_post(
        &app,
        &owner_key,
        "/api/v1/commands",
        json!({
        "connection_id": connection["id"], "sql": "SELECT id FROM items",
        "callback": {"url": hook_url}}),
    )
    .await;
    let command_page = format!("/commands/{}", into_inbox["id"].as_str().unwrap());
    let created = app
        .submit(
            &app.client,
            &command_page,
            &format!("{command_page}/direct-url"),
            &[],
        )
        .await;
    assert_eq!(created.status(), 303);
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    let command_id =
        sluice_store::ids::CommandId::parse(into_inbox["id"].as_str().unwrap()).unwrap();
    let direct_token = app
        .store()
        .direct_url_tokens(&tenant.id, &command_id)
        .await
        .unwrap()
        .remove(0);

    let viewer = app.add_user("viewer@tokens.test", "viewer").await;
    let viewer_user = app
        .store()
        .user_by_email(
            &tenant.id,
            &sluice_store::domain::Email::parse("viewer@tokens.test").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let (_, viewer_key) = app
        .store()
        .create_api_key(&tenant.id, "viewer's", KeyCreator::User(&viewer_user))
        .await
        .unwrap();

    let inbox_page = format!("/inboxes/{}", inbox["id"].as_str().unwrap());
    let hook_page = format!("/commands/{}", to_hook_url["id"].as_str().unwrap());
    let pages = [
        "/inboxes".to_string(),
        inbox_page.clone(),
        command_page.clone(),
        format!("{command_page}/live"),
        hook_page.clone(),
        format!("{hook_page}/live"),
        format!("/connectors/{}", connection["id"].as_str().unwrap()),
    ];
    // The owner sees them: the pages do carry the tokens when allowed.
    assert!(
        text(&app.client, app.url("/inboxes"))
            .await
            .contains(&inbox_token)
    );
    assert!(
        text(&app.client, app.url(&command_page))
            .await
            .contains(&direct_token)
    );
    assert!(
        text(&app.client, app.url(&hook_page))
            .await
            .contains(&inbox_token)
    );

    let mut seen = Vec::new();
    for page in &pages {
        seen.push((page.clone(), text(&viewer, app.url(page)).await));
    }
    for path in [
        "/api/v1/inboxes".to_string(),
        "/api/v1/commands".to_string(),
        format!("/api/v1/commands/{}", to_hook_url["id"].as_str().unwrap()),
    ] {
        let response = app.api_get(&viewer_key, &path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        seen.push((path, response.text().await.unwrap()));
    }
    for (page, body) in &seen {
        assert!(
            !body.contains(&inbox_token),
            "{page} shows the inbox token to a viewer"
        );
        assert!(
            !body.contains(&direct_token),
            "{page} shows a direct-URL token to a viewer"
        );
    }
});
