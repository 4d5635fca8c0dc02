//! Sign-up, sign-in, sign-out, wrong passwords, throttling and CSRF.

use sluice_tests::{TestApp, on_both_backends};

on_both_backends!(signup_creates_tenant_and_signs_in, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Acme").await;
    let dashboard = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains(&user.tenant), "the header names the tenant");
    let audit = app.page_text("/audit").await;
    assert!(audit.contains("tenant.signup"), "sign-up is audited");
});

on_both_backends!(
    signup_errors_name_the_field_and_store_nothing,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let response = app
            .submit(
                &app.client,
                "/signup",
                "/signup",
                &[
                    ("tenant_name", ""),
                    ("name", "Ann"),
                    ("email", "not-an-email"),
                    ("password", "short"),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("id=\"tenant_name-error\""),
            "tenant name error shown"
        );
        assert!(html.contains("id=\"email-error\""), "email error shown");
        assert!(
            html.contains("at least 10 characters"),
            "password rule shown"
        );
        assert!(
            html.contains("value=\"not-an-email\""),
            "typed values are kept"
        );

        let first = app.signup("Taken").await;
        let other = TestApp::browser_like_client();
        let response = app
            .submit(
                &other,
                "/signup",
                "/signup",
                &[
                    ("tenant_name", "Another org"),
                    ("name", "Bob"),
                    ("email", &first.email),
                    ("password", "long enough pw"),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("is already registered")
        );
        assert!(
            app.store().tenant_by_name("Another org").await.is_err(),
            "no half-created tenant"
        );
    }
);

on_both_backends!(login_and_logout, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Login").await;
    let browser = TestApp::browser_like_client();
    assert_eq!(
        browser.get(app.url("/")).send().await.unwrap().status(),
        303,
        "anonymous visitors are sent to log in"
    );

    let response = app.login_with(&browser, &user.email, &user.password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        browser
            .get(app.url("/settings"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let response = app.submit(&browser, "/settings", "/logout", &[]).await;
    assert_eq!(response.status(), 303);
    let after = browser.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()["location"], "/login");
});

on_both_backends!(
    logout_invalidates_the_session_server_side,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        app.signup("Stolen").await;
        let cookie = app.client.get(app.url("/")).send().await.unwrap();
        assert_eq!(cookie.status(), 200);
        let sessions_before = app.store().count_sessions().await.unwrap();
        app.submit(&app.client, "/", "/logout", &[]).await;
        assert_eq!(
            app.store().count_sessions().await.unwrap(),
            sessions_before - 1,
            "the session row is gone, not just the cookie"
        );
    }
);

on_both_backends!(wrong_password_is_refused, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let user = app.signup("Wrong").await;
    let browser = TestApp::browser_like_client();
    let response = app
        .login_with(&browser, &user.email, "not the password")
        .await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Email or password is incorrect")
    );
    assert_eq!(
        browser.get(app.url("/")).send().await.unwrap().status(),
        303,
        "still signed out"
    );

    let unknown = app
        .login_with(&browser, "nobody@example.test", "whatever pw")
        .await;
    assert_eq!(unknown.status(), 401, "unknown emails look the same");
});

on_both_backends!(
    repeated_failures_lock_the_account_for_a_while,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Throttle").await;
        let browser = TestApp::browser_like_client();
        for attempt in 1..=5 {
            let response = app.login_with(&browser, &user.email, "guess").await;
            assert_eq!(response.status(), 401, "attempt {attempt}");
        }
        let locked = app.login_with(&browser, &user.email, &user.password).await;
        assert_eq!(
            locked.status(),
            429,
            "even the right password waits out the lock"
        );
        assert!(locked.headers().contains_key("retry-after"));
        assert!(
            locked
                .text()
                .await
                .unwrap()
                .contains("too many failed sign-in attempts")
        );
    }
);

on_both_backends!(
    forms_without_a_valid_csrf_token_are_rejected,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Csrf").await;

        // No token at all.
        let bare = TestApp::browser_like_client();
        let response = bare
            .post(app.url("/login"))
            .form(&[
                ("email", user.email.as_str()),
                ("password", user.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);

        // A token minted for another browser.
        let other = TestApp::browser_like_client();
        let foreign = app.csrf_token(&other, "/login").await;
        let victim = TestApp::browser_like_client();
        victim.get(app.url("/login")).send().await.unwrap();
        let response = victim
            .post(app.url("/login"))
            .form(&[
                ("csrf", foreign.as_str()),
                ("email", user.email.as_str()),
                ("password", user.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);

        // A signed-in user's state-changing form with a wrong token changes nothing.
        let response = app
            .client
            .post(app.url("/settings/api-keys"))
            .form(&[("csrf", "forged"), ("name", "sneaky")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
        assert!(app.store().api_keys(&tenant.id).await.unwrap().is_empty());
    }
);

on_both_backends!(
    changing_password_signs_out_other_sessions,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Passwd").await;
        let laptop = TestApp::browser_like_client();
        assert_eq!(
            app.login_with(&laptop, &user.email, &user.password)
                .await
                .status(),
            303
        );

        let wrong = app
            .submit(
                &app.client,
                "/settings",
                "/settings/password",
                &[
                    ("current_password", "nope"),
                    ("new_password", "a brand new one"),
                ],
            )
            .await;
        assert_eq!(wrong.status(), 400);
        assert!(
            wrong
                .text()
                .await
                .unwrap()
                .contains("is not your current password")
        );

        let response = app
            .submit(
                &app.client,
                "/settings",
                "/settings/password",
                &[
                    ("current_password", &user.password),
                    ("new_password", "a brand new one"),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(
            app.client
                .get(app.url("/settings"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "this session stays"
        );
        assert_eq!(
            laptop
                .get(app.url("/settings"))
                .send()
                .await
                .unwrap()
                .status(),
            303,
            "the other session is gone"
        );

        let fresh = TestApp::browser_like_client();
        assert_eq!(
            app.login_with(&fresh, &user.email, &user.password)
                .await
                .status(),
            401
        );
        assert_eq!(
            app.login_with(&fresh, &user.email, "a brand new one")
                .await
                .status(),
            303
        );
    }
);

/// The anonymous cookie's token (for the sign-in pages) never passes for a
/// signed-in action: a neighbouring site that plants `sluice_anon` and knows its
/// token still cannot forge a form of a signed-in user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_csrf_token_never_passes_for_a_signed_in_form() {
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let browser = TestApp::browser_like_client();
    // Visiting the sign-in page first leaves the anonymous cookie in the jar.
    let anonymous_token = app.csrf_token(&browser, "/login").await;
    let user = sluice_tests::TestUser::unique("Planted");
    app.signup_with(&browser, &user).await;
    let forged = browser
        .post(app.url("/inboxes"))
        .form(&[("csrf", anonymous_token.as_str()), ("name", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "bound to the anonymous cookie only");
    let genuine = app
        .submit(&browser, "/inboxes", "/inboxes", &[("name", "genuine")])
        .await;
    assert_eq!(genuine.status(), 303, "the session's own token works");
}

/// Under HTTPS the cookies carry the `__Host-` prefix (Secure, Path=/, no
/// Domain): a cookie of the old name, which a sibling subdomain or plain HTTP
/// could plant, is no session at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sessions_use_host_prefixed_cookies_only() {
    let app = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |c| {
        c.public_url = Some("https://sluice.example.com".into())
    })
    .await;
    // Secure cookies are not sent back over the test's plain HTTP: carry them by hand.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(app.url("/signup")).send().await.unwrap();
    let anon = cookie_pair(&form, "__Host-sluice_anon");
    let csrf = sluice_tests::extract_csrf(&form.text().await.unwrap()).unwrap();
    let user = sluice_tests::TestUser::unique("Https");
    let signed_up = http
        .post(app.url("/signup"))
        .header("cookie", &anon)
        .form(&[
            ("csrf", csrf.as_str()),
            ("tenant_name", user.tenant.as_str()),
            ("name", user.name.as_str()),
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 303);
    let set_cookie = signed_up
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-sluice_session="))
        .expect("a __Host- session cookie");
    assert!(
        set_cookie.contains("Secure") && set_cookie.contains("Path=/"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.to_lowercase().contains("domain="),
        "{set_cookie}"
    );
    let token = cookie_pair(&signed_up, "__Host-sluice_session")
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let page = |cookie: String| {
        http.get(app.url("/settings"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        page(format!("__Host-sluice_session={token}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        page(format!("sluice_session={token}"))
            .await
            .unwrap()
            .status(),
        303,
        "the unprefixed name is ignored under HTTPS"
    );
}

/// `name=value` of the cookie `name` a response sets.
fn cookie_pair(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie set"))
        .to_string()
}
