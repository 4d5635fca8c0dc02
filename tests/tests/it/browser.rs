//! The main flows in real headless Chromium.

use sluice_tests::{Backend, Browser, TestApp, TestUser, sqlite_source};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_out_and_log_back_in() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::start().await;
    let user = TestUser::unique("Browser");

    browser.goto(&app.url("/signup")).await;
    browser.fill("#tenant_name", &user.tenant).await;
    browser.fill("#name", &user.name).await;
    browser.fill("#email", &user.email).await;
    browser.fill("#password", &user.password).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("[data-testid=tenant-name]").await, user.tenant);
    if let Ok(dir) = std::env::var("SLUICE_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("dashboard.png"))
            .await;
    }

    browser.click("#logout").await;
    browser.wait_for_path("/login").await;

    browser.fill("#email", &user.email).await;
    browser.fill("#password", "wrong password").await;
    browser.click("button[type=submit]").await;
    assert!(browser.text("#password-error").await.contains("incorrect"));

    browser.fill("#email", &user.email).await;
    browser.fill("#password", &user.password).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_path("/").await;
    assert_eq!(browser.text("[data-testid=tenant-name]").await, user.tenant);

    browser.goto(&app.url("/settings")).await;
    browser.fill("#key_name", "from the browser").await;
    browser
        .click("section[aria-labelledby=api-keys] form button[type=submit]")
        .await;
    assert!(browser.text("#one-time-secret").await.starts_with("sk_"));
    if let Ok(dir) = std::env::var("SLUICE_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("settings.png"))
            .await;
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_connector_from_a_pasted_jdbc_string_test_it_and_explore() {
    let source = sluice_tests::TestDatabase::create("sluice_src").await;
    source
        .execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2)); INSERT INTO orders VALUES (1, 'Ada', 42.10), (2, 'Grace', 7.00);")
        .await;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Jdbc").await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/login")).await;
    browser.fill("#email", &user.email).await;
    browser.fill("#password", &user.password).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_path("/").await;

    browser.goto(&app.url("/connectors")).await;
    browser.click("#new-connector").await;
    browser.wait_for_path("/connectors/new").await;
    browser.fill("#connection_string", &format!("jdbc:postgresql://127.0.0.1:5432/{}?user=postgres&password=any-pass&sslmode=disable", source.name)).await;
    browser.click("#parse-connection-string").await;
    assert!(browser.text("#imported-notice").await.contains("Imported"));
    let server = browser
        .client
        .find(fantoccini::Locator::Css("#server"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(server.as_deref(), Some("127.0.0.1"));
    browser.fill("#name", "orders_db").await;
    browser.click("#save-connector").await;
    browser.click("#test-connection").await;
    assert!(
        browser
            .text("#test-result")
            .await
            .contains("Connection works.")
    );
    if let Ok(dir) = std::env::var("SLUICE_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("connector.png"))
            .await;
    }
    browser.click("#explore").await;
    browser.click("#tables a").await;
    assert!(browser.text("#preview").await.contains("Grace"));
    if let Ok(dir) = std::env::var("SLUICE_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("explore.png"))
            .await;
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_command_run_it_and_read_the_rows_in_an_inbox() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.signup("Pull").await;
    let file = app.sqlite_dir_for(&user).await.join("shop.db");
    sqlite_source(&file, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, date_paid TEXT); INSERT INTO invoices VALUES (1, 'Ada', '2026-01-01'), (2, 'Grace', '2026-01-02');").await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/login")).await;
    browser.fill("#email", &user.email).await;
    browser.fill("#password", &user.password).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_path("/").await;

    // An inbox to receive the rows.
    browser.goto(&app.url("/inboxes")).await;
    browser.fill("#name", "paid invoices").await;
    browser.click("#create-inbox").await;
    assert!(browser.text("#inbox-url").await.contains("/hooks/hk_"));

    // A connector and a command delivering into the inbox.
    browser.goto(&app.url("/connectors/new")).await;
    browser.fill("#name", "shop").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#kind"))
        .await
        .unwrap()
        .select_by_value("sqlite")
        .await
        .unwrap();
    browser.fill("#path", "shop.db").await;
    browser.click("#save-connector").await;
    browser.click("#new-command").await;
    browser.fill("#name", "paid invoices").await;
    browser.fill("#sql", "SELECT id, customer, date_paid FROM invoices WHERE date_paid > '@last_value@' ORDER BY id").await;
    browser
        .click("input[name=callback_kind][value=inbox]")
        .await;
    browser
        .client
        .find(fantoccini::Locator::Css("#callback_inbox_id"))
        .await
        .unwrap()
        .select_by_index(1)
        .await
        .unwrap();
    browser.fill("#last_field", "date_paid").await;
    browser.fill("#last_value", "2000-01-01").await;
    browser.fill("#schedule", "0 3 * * *").await;
    browser.click("#preview-schedule").await;
    browser
        .client
        .wait()
        .for_element(fantoccini::Locator::Css("#schedule-preview li"))
        .await
        .unwrap();
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("#schedule-preview li"))
            .await
            .unwrap()
            .len(),
        5,
        "five next run times"
    );
    browser.click("#save-command").await;

    // Run it and watch it finish (the status refreshes itself).
    browser.click("#run-now").await;
    for _ in 0..300 {
        if browser.text("#command-status").await == "READY"
            && browser
                .client
                .find(fantoccini::Locator::Css("#running-run"))
                .await
                .is_err()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    browser.client.refresh().await.unwrap();
    assert!(browser.text("#runs").await.contains("succeeded"));
    assert_eq!(
        browser
            .client
            .find(fantoccini::Locator::Css("#last-value"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-01-02")
    );
    if let Ok(dir) = std::env::var("SLUICE_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join("command.png"))
            .await;
    }

    browser.goto(&app.url("/inboxes")).await;
    browser.click("#inboxes a").await;
    let messages = browser.text("#messages").await;
    assert!(
        messages.contains("Ada") && messages.contains("Grace"),
        "{messages}"
    );
    browser.close().await;
}
