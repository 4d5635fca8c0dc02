//! The main flows in real headless Chromium.

use sluice_tests::{Backend, Browser, TestApp, TestUser};

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
