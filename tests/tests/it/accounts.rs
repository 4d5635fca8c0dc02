//! Sign-up, sign-in, sign-out, wrong passwords, throttling and CSRF.

use sluice_store::domain::Email;
use sluice_tests::{TestApp, TestUser, on_both_backends};

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

        // A taken workspace name is refused on its field, and nothing is stored.
        let first = app.signup("Taken").await;
        let other = TestApp::browser_like_client();
        let email = "second-owner@example.test";
        let response = app
            .submit(
                &other,
                "/signup",
                "/signup",
                &[
                    ("tenant_name", &first.tenant),
                    ("name", "Bob"),
                    ("email", email),
                    ("password", "long enough pw"),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"tenant_name-error\""), "{html}");
        assert!(
            app.store()
                .users_by_email(&Email::parse(email).unwrap())
                .await
                .unwrap()
                .is_empty(),
            "no half-created owner"
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

/// Another workspace for the same person: `user`'s email (and password) with a
/// workspace name of its own.
fn same_person(user: &TestUser, label: &str, password: &str) -> TestUser {
    TestUser {
        password: password.into(),
        email: user.email.clone(),
        ..TestUser::unique(label)
    }
}

/// The sign-up answer, with what a visitor could compare between two of them.
async fn signup_answer(
    app: &TestApp,
    user: &TestUser,
) -> (u16, Option<String>, Vec<String>, String) {
    let response = app
        .submit(
            &TestApp::browser_like_client(),
            "/signup",
            "/signup",
            &[
                ("tenant_name", &user.tenant),
                ("name", &user.name),
                ("email", &user.email),
                ("password", &user.password),
            ],
        )
        .await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let mut cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_string())
        .collect();
    cookies.sort();
    (status, location, cookies, response.text().await.unwrap())
}

/// The tenant name shown in the header of the dashboard `client` sees.
async fn dashboard_of(app: &TestApp, client: &reqwest::Client) -> String {
    let response = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200, "signed in");
    response.text().await.unwrap()
}

on_both_backends!(
    signing_up_twice_with_one_email_makes_two_workspaces_and_says_nothing,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let first = TestUser::unique("First");
        let second = same_person(&first, "Second", "another long password");
        let first_answer = signup_answer(&app, &first).await;
        let second_answer = signup_answer(&app, &second).await;
        assert_eq!(first_answer.0, 303, "{}", first_answer.3);
        assert_eq!(
            (&first_answer.0, &first_answer.1, &first_answer.2),
            (&second_answer.0, &second_answer.1, &second_answer.2),
            "the second sign-up answers exactly like the first"
        );
        assert!(!second_answer.3.contains("registered"));

        let accounts = app
            .store()
            .users_by_email(&Email::parse(&first.email).unwrap())
            .await
            .unwrap();
        assert_eq!(accounts.len(), 2, "one owner in each workspace");
        assert_ne!(accounts[0].tenant_id, accounts[1].tenant_id);
        for user in [&first, &second] {
            let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap();
            assert!(accounts.iter().any(|a| a.tenant_id == tenant.id));
        }
    }
);

on_both_backends!(
    an_invitation_to_an_email_of_another_workspace_reveals_nothing,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Inviter").await;
        let elsewhere = TestUser::unique("Elsewhere");
        app.signup_with(&TestApp::browser_like_client(), &elsewhere)
            .await;

        // Inviting that email answers like inviting a stranger: a link.
        let fresh = app
            .submit(
                &app.client,
                "/settings",
                "/settings/users/invite",
                &[("email", "stranger@example.test"), ("role", "viewer")],
            )
            .await;
        let known = app
            .submit(
                &app.client,
                "/settings",
                "/settings/users/invite",
                &[("email", &elsewhere.email), ("role", "viewer")],
            )
            .await;
        assert_eq!(fresh.status(), 200);
        assert_eq!(known.status(), 200);
        let html = known.text().await.unwrap();
        assert!(!html.contains("already"), "nothing is said about accounts");
        let link = sluice_tests::one_time_secret(&html).expect("a link is shown");

        // The invitee joins the inviter's workspace beside their own.
        let joined = app.join(&link, "Eli Elsewhere").await;
        assert!(dashboard_of(&app, &joined).await.contains(&owner.tenant));
        let accounts = app
            .store()
            .users_by_email(&Email::parse(&elsewhere.email).unwrap())
            .await
            .unwrap();
        assert_eq!(accounts.len(), 2);
        // Their own workspace's password still opens (only) their own workspace.
        let browser = TestApp::browser_like_client();
        let login = app
            .login_with(&browser, &elsewhere.email, &elsewhere.password)
            .await;
        assert_eq!(login.status(), 303);
        assert!(
            dashboard_of(&app, &browser)
                .await
                .contains(&elsewhere.tenant)
        );
    }
);

on_both_backends!(
    inviting_a_member_of_this_workspace_is_refused,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Members").await;
        app.add_user("member@example.test", "viewer").await;
        for email in [
            owner.email.as_str(),
            "member@example.test",
            "MEMBER@example.test",
        ] {
            let response = app
                .submit(
                    &app.client,
                    "/settings",
                    "/settings/users/invite",
                    &[("email", email), ("role", "admin")],
                )
                .await;
            assert_eq!(response.status(), 409, "{email}");
            let html = response.text().await.unwrap();
            assert!(
                html.contains("is already a member of this workspace"),
                "{html}"
            );
            assert!(sluice_tests::one_time_secret(&html).is_none(), "no link");
        }
        let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
        assert!(
            app.store()
                .pending_invitations(&tenant.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

/// The chooser's signed choice and its options (user id, workspace name) in order.
fn chooser(html: &str) -> (String, Vec<(String, String)>) {
    let value = |form: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = form.find(&marker).map(|i| i + marker.len())?;
        Some(form[start..start + form[start..].find('"')?].to_string())
    };
    let forms: Vec<&str> = html.split("<form").skip(1).collect();
    let choice = value(forms.first().expect("a choice"), "choice").expect("signed choice");
    let options = forms
        .iter()
        .map(|form| {
            let start = form.find("<button type=\"submit\">").unwrap() + 22;
            let end = start + form[start..].find("</button>").unwrap();
            (
                value(form, "user_id").unwrap(),
                form[start..end].to_string(),
            )
        })
        .collect();
    (choice, options)
}

/// Posts a choice on the chooser with `browser` (and its own CSRF token).
async fn choose(
    app: &TestApp,
    browser: &reqwest::Client,
    choice: &str,
    user_id: &str,
) -> reqwest::Response {
    app.submit(
        browser,
        "/login",
        "/login/workspace",
        &[("choice", choice), ("user_id", user_id)],
    )
    .await
}

on_both_backends!(
    one_password_for_two_workspaces_asks_which_one,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let first = TestUser::unique("Alpha");
        let second = same_person(&first, "Beta", &first.password);
        let third = same_person(&first, "Gamma", "a different password");
        for user in [&first, &second, &third] {
            app.signup_with(&TestApp::browser_like_client(), user).await;
        }

        let browser = TestApp::browser_like_client();
        let response = app
            .login_with(&browser, &first.email, &first.password)
            .await;
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains("Choose a workspace"), "{html}");
        assert!(
            !html.contains(&third.tenant),
            "only the workspaces it opens"
        );
        let (choice, options) = chooser(&html);
        let names: Vec<&str> = options.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&first.tenant.as_str()) && names.contains(&second.tenant.as_str()));
        assert_eq!(
            browser.get(app.url("/")).send().await.unwrap().status(),
            303,
            "not signed in before choosing"
        );

        let (user_id, _) = options
            .iter()
            .find(|(_, name)| *name == second.tenant)
            .unwrap();
        let chosen = choose(&app, &browser, &choice, user_id).await;
        assert_eq!(chosen.status(), 303);
        assert_eq!(chosen.headers()["location"], "/");
        let dashboard = dashboard_of(&app, &browser).await;
        assert!(dashboard.contains(&second.tenant) && !dashboard.contains(&first.tenant));
        let audit = browser
            .get(app.url("/audit"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(audit.contains("user.login"), "the sign-in is audited");
    }
);

on_both_backends!(
    a_workspace_choice_cannot_be_forged_widened_or_carried_away,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let first = TestUser::unique("Own");
        let second = same_person(&first, "Twin", &first.password);
        let other = same_person(&first, "Other", "a different password");
        for user in [&first, &second, &other] {
            app.signup_with(&TestApp::browser_like_client(), user).await;
        }
        let other_tenant = app.store().tenant_by_name(&other.tenant).await.unwrap();
        let other_user = app
            .store()
            .user_by_email(&other_tenant.id, &Email::parse(&other.email).unwrap())
            .await
            .unwrap()
            .unwrap();

        let browser = TestApp::browser_like_client();
        let response = app
            .login_with(&browser, &first.email, &first.password)
            .await;
        let (choice, options) = chooser(&response.text().await.unwrap());
        let user_id = options[0].0.as_str();

        let refused = |response: reqwest::Response, what: &'static str| async move {
            assert_eq!(response.status(), 403, "{what}");
            assert!(
                response.text().await.unwrap().contains("sign in again"),
                "{what}"
            );
        };
        // Carried to another browser, even with that browser's own CSRF token.
        let thief = TestApp::browser_like_client();
        refused(
            choose(&app, &thief, &choice, user_id).await,
            "other browser",
        )
        .await;
        assert_eq!(thief.get(app.url("/")).send().await.unwrap().status(), 303);
        // An account the password did not open.
        refused(
            choose(&app, &browser, &choice, other_user.id.as_str()).await,
            "account not in the choice",
        )
        .await;
        // The choice widened to that account, or its expiry pushed back.
        let (payload, tag) = choice.rsplit_once('.').unwrap();
        let widened = format!("{payload},{}:{}.{tag}", other_tenant.id, other_user.id);
        refused(
            choose(&app, &browser, &widened, other_user.id.as_str()).await,
            "widened choice",
        )
        .await;
        let (expiry, accounts) = payload.split_once('.').unwrap();
        let later: i64 = expiry.parse::<i64>().unwrap() + 3600;
        refused(
            choose(
                &app,
                &browser,
                &format!("{later}.{accounts}.{tag}"),
                user_id,
            )
            .await,
            "extended choice",
        )
        .await;
        refused(
            choose(&app, &browser, "forged", user_id).await,
            "made-up choice",
        )
        .await;
        assert_eq!(
            browser.get(app.url("/")).send().await.unwrap().status(),
            303
        );

        // The genuine choice still works in its own browser.
        let chosen = choose(&app, &browser, &choice, user_id).await;
        assert_eq!(chosen.status(), 303);
        assert_eq!(
            browser.get(app.url("/")).send().await.unwrap().status(),
            200
        );
    }
);

on_both_backends!(
    the_one_account_a_password_opens_is_entered_directly,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let first = TestUser::unique("Left");
        let second = same_person(&first, "Right", "the right one's password");
        for user in [&first, &second] {
            app.signup_with(&TestApp::browser_like_client(), user).await;
        }
        for user in [&first, &second] {
            let browser = TestApp::browser_like_client();
            let response = app.login_with(&browser, &user.email, &user.password).await;
            assert_eq!(response.status(), 303, "{}", user.tenant);
            let dashboard = dashboard_of(&app, &browser).await;
            assert!(dashboard.contains(&user.tenant));
        }
        let wrong = app
            .login_with(
                &TestApp::browser_like_client(),
                &first.email,
                "neither of them",
            )
            .await;
        assert_eq!(wrong.status(), 401);
    }
);
