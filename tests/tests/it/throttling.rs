//! Password guessing and sign-up floods (security issue #8): parallel guesses get
//! exactly the limit of password checks, locks back off and end, per-address limits
//! follow trusted proxies and IPv6 /64s, and the password confirmations of a delete
//! and a password change are throttled too.

use reqwest::StatusCode;
use sluice_tests::{TestApp, TestUser, on_both_backends};
use std::time::Duration;

/// Failed sign-ins on one email before it locks (`ThrottlePolicy::PER_EMAIL`).
const EMAIL_LIMIT: usize = 5;
/// Failed sign-ins from one address before it locks (`ThrottlePolicy::PER_ADDRESS`).
const ADDRESS_LIMIT: usize = 20;

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

/// A wrong-password sign-in from a fresh browser, as if forwarded for `client`.
async fn login_from(app: &TestApp, client: Option<&str>, email: &str) -> reqwest::Response {
    let browser = TestApp::browser_like_client();
    let csrf = app.csrf_token(&browser, "/login").await;
    let mut request = browser.post(app.url("/login")).form(&[
        ("csrf", csrf.as_str()),
        ("email", email),
        ("password", "not the password"),
    ]);
    if let Some(client) = client {
        request = request.header("X-Forwarded-For", client);
    }
    request.send().await.expect("POST /login")
}

on_both_backends!(
    parallel_wrong_passwords_get_exactly_the_limit_of_checks,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Burst").await;
        // Every browser gets its form first, so the 30 POSTs really race.
        let mut ready = Vec::new();
        for _ in 0..30 {
            let browser = TestApp::browser_like_client();
            let csrf = app.csrf_token(&browser, "/login").await;
            ready.push((browser, csrf));
        }
        let attempts = ready.iter().map(|(browser, csrf)| {
            browser
                .post(app.url("/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", user.email.as_str()),
                    ("password", "wrong guess"),
                ])
                .send()
        });
        let responses = futures::future::join_all(attempts).await;
        let (mut checked, mut refused) = (0, 0);
        for response in responses {
            let response = response.expect("POST /login");
            match response.status() {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(retry_after(&response) > 0);
                    refused += 1;
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(
            (checked, refused),
            (EMAIL_LIMIT, 30 - EMAIL_LIMIT),
            "exactly the limit reach a password check"
        );
        let fresh = TestApp::browser_like_client();
        let locked = app.login_with(&fresh, &user.email, &user.password).await;
        assert_eq!(locked.status(), 429, "the right password waits too");
    }
);

on_both_backends!(
    a_lock_ends_and_the_next_one_lasts_twice_as_long,
    |backend| async move {
        let app = TestApp::spawn_with(backend, |config| config.throttle.login_lock_secs = 1).await;
        let user = app.signup("Backoff").await;
        let browser = TestApp::browser_like_client();
        for _ in 0..EMAIL_LIMIT {
            let response = app.login_with(&browser, &user.email, "guess").await;
            assert_eq!(response.status(), 401);
        }
        let first = app.login_with(&browser, &user.email, "guess").await;
        assert_eq!(first.status(), 429);
        assert_eq!(retry_after(&first), 1, "the first lock lasts the base");

        tokio::time::sleep(Duration::from_millis(1200)).await;
        for _ in 0..EMAIL_LIMIT {
            let response = app.login_with(&browser, &user.email, "guess").await;
            assert_eq!(response.status(), 401, "the lock ended");
        }
        let second = app.login_with(&browser, &user.email, "guess").await;
        assert_eq!(second.status(), 429);
        assert_eq!(
            retry_after(&second),
            2,
            "the second lock lasts twice as long"
        );

        tokio::time::sleep(Duration::from_millis(1200)).await;
        let still = app.login_with(&browser, &user.email, &user.password).await;
        assert_eq!(still.status(), 429, "still locked after the base");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let after = app.login_with(&browser, &user.email, &user.password).await;
        assert_eq!(
            after.status(),
            303,
            "the lock ended; the right password works"
        );
    }
);

on_both_backends!(
    a_signed_in_browser_and_a_new_password_end_an_email_lock,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Unlock").await;
        let lock = async |email: &str| {
            let guesser = TestApp::browser_like_client();
            for _ in 0..EMAIL_LIMIT {
                app.login_with(&guesser, email, "guess").await;
            }
            let fresh = TestApp::browser_like_client();
            let locked = app.login_with(&fresh, email, &user.password).await;
            assert_eq!(locked.status(), 429, "locked");
        };

        lock(&user.email).await;
        // The owner's own browser, still signed in, signs in again despite the lock…
        // (its sign-in page was opened before: the token of its anonymous cookie)
        let csrf = app.csrf_token(&app.client, "/signup").await;
        let again = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", user.email.as_str()),
                ("password", user.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 303, "a known session is not locked out");
        // …and that success ended the lock for everyone.
        let other = TestApp::browser_like_client();
        let response = app.login_with(&other, &user.email, &user.password).await;
        assert_eq!(response.status(), 303, "the lock ended");

        lock(&user.email).await;
        let changed = app
            .submit(
                &app.client,
                "/settings",
                "/settings/password",
                &[
                    ("current_password", user.password.as_str()),
                    ("new_password", "a brand new passphrase"),
                ],
            )
            .await;
        assert_eq!(changed.status(), 303, "password changed");
        let response = app
            .login_with(
                &TestApp::browser_like_client(),
                &user.email,
                "a brand new passphrase",
            )
            .await;
        assert_eq!(response.status(), 303, "a new password ends the lock");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let behind_proxy = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |config| {
        config.throttle.trusted_proxies = "127.0.0.1/32".into();
    })
    .await;
    for n in 0..ADDRESS_LIMIT {
        let response =
            login_from(&behind_proxy, Some("203.0.113.7"), &format!("a{n}@x.test")).await;
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    let locked = login_from(&behind_proxy, Some("203.0.113.7"), "next@x.test").await;
    assert_eq!(locked.status(), 429, "that client used up its attempts");
    let other = login_from(&behind_proxy, Some("203.0.113.8"), "next@x.test").await;
    assert_eq!(
        other.status(),
        401,
        "another client behind the proxy is not locked"
    );

    // Without a trusted proxy the header is the client's word: ignored.
    let direct = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    for n in 0..ADDRESS_LIMIT {
        let forged = format!("198.51.100.{n}");
        let response = login_from(&direct, Some(&forged), &format!("b{n}@x.test")).await;
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    let locked = login_from(&direct, Some("198.51.100.200"), "next@x.test").await;
    assert_eq!(
        locked.status(),
        429,
        "a forged X-Forwarded-For does not help"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_addresses_in_one_64_share_a_limit() {
    let app = TestApp::spawn_with(sluice_tests::Backend::Sqlite, |config| {
        config.throttle.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    for n in 0..ADDRESS_LIMIT {
        let client = format!("2001:db8:1:2:{n:x}::1");
        let response = login_from(&app, Some(&client), &format!("c{n}@x.test")).await;
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    let same_64 = login_from(&app, Some("2001:db8:1:2:ffff:1:2:3"), "next@x.test").await;
    assert_eq!(same_64.status(), 429, "the whole /64 is one client");
    let next_64 = login_from(&app, Some("2001:db8:1:3::1"), "next@x.test").await;
    assert_eq!(next_64.status(), 401, "the neighbouring /64 is not");
}

on_both_backends!(signups_are_throttled_per_address, |backend| async move {
    let app = TestApp::spawn_with(backend, |config| config.throttle.signups_per_hour = 2).await;
    for _ in 0..2 {
        app.signup_with(&TestApp::browser_like_client(), &TestUser::unique("Signup"))
            .await;
    }
    let user = TestUser::unique("Signup");
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
    assert_eq!(response.status(), 429);
    assert!(retry_after(&response) > 0);
    assert!(
        app.store().tenant_by_name(&user.tenant).await.is_err(),
        "no tenant was created"
    );
});

on_both_backends!(
    the_password_confirmation_of_a_delete_is_throttled,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Confirm").await;
        let key = app.api_key_for(&user).await;
        let created = app
            .api(reqwest::Method::POST, &key, "/api/v1/inboxes")
            .json(&serde_json::json!({ "name": "kept" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let page = format!("/inboxes/{id}/delete");
        for attempt in 0..EMAIL_LIMIT {
            let response = app
                .submit(&app.client, &page, &page, &[("password", "guess")])
                .await;
            assert_eq!(response.status(), 403, "attempt {attempt}");
        }
        let locked = app
            .submit(&app.client, &page, &page, &[("password", &user.password)])
            .await;
        assert_eq!(locked.status(), 429, "even the right password waits");
        assert!(retry_after(&locked) > 0);
        let inbox = app
            .client
            .get(app.url(&format!("/inboxes/{id}")))
            .send()
            .await;
        assert_eq!(inbox.unwrap().status(), 200, "nothing was deleted");
    }
);

on_both_backends!(
    the_current_password_check_of_a_password_change_is_throttled,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Change").await;
        let change = async |current: &str| {
            app.submit(
                &app.client,
                "/settings",
                "/settings/password",
                &[
                    ("current_password", current),
                    ("new_password", "another long passphrase"),
                ],
            )
            .await
        };
        for attempt in 0..EMAIL_LIMIT {
            assert_eq!(change("guess").await.status(), 400, "attempt {attempt}");
        }
        let locked = change(&user.password).await;
        assert_eq!(locked.status(), 429, "even the right password waits");
        assert!(retry_after(&locked) > 0);
        let old = app
            .login_with(&TestApp::browser_like_client(), &user.email, &user.password)
            .await;
        assert_eq!(old.status(), 303, "the password did not change");
    }
);

on_both_backends!(
    the_password_confirmation_of_a_connector_delete_is_throttled,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Connector").await;
        let key = app.api_key_for(&user).await;
        std::fs::write(app.sqlite_dir_for(&user).await.join("kept.db"), b"").unwrap();
        let created: serde_json::Value = app
            .api_post_json(
                &key,
                "/api/v1/connections",
                &serde_json::json!({"name": "kept_db", "kind": "sqlite",
                    "auth": {"params": {"path": "kept.db"}}}),
            )
            .await;
        let id = created["id"]
            .as_str()
            .expect("connector created")
            .to_string();
        let page = format!("/connectors/{id}/delete");
        for attempt in 0..EMAIL_LIMIT {
            let response = app
                .submit(&app.client, &page, &page, &[("password", "guess")])
                .await;
            assert_eq!(response.status(), 403, "attempt {attempt}");
        }
        let locked = app
            .submit(&app.client, &page, &page, &[("password", &user.password)])
            .await;
        assert_eq!(locked.status(), 429, "even the right password waits");
        assert!(retry_after(&locked) > 0);
        assert!(
            locked
                .text()
                .await
                .unwrap()
                .contains("too many password confirmations")
        );
        let connector = app
            .api(
                reqwest::Method::GET,
                &key,
                &format!("/api/v1/connections/{id}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(connector.status(), 200, "the connector survives");
    }
);

on_both_backends!(
    a_signed_in_browser_is_not_locked_out_when_its_email_has_several_workspaces,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Several").await;
        let twin = TestUser {
            email: user.email.clone(),
            password: user.password.clone(),
            ..TestUser::unique("Twin")
        };
        app.signup_with(&TestApp::browser_like_client(), &twin)
            .await;
        let guesser = TestApp::browser_like_client();
        for _ in 0..EMAIL_LIMIT {
            app.login_with(&guesser, &user.email, "guess").await;
        }
        let fresh = TestApp::browser_like_client();
        let locked = app.login_with(&fresh, &user.email, &user.password).await;
        assert_eq!(locked.status(), 429, "locked");

        // The owner's browser, signed in to one of the two workspaces, gets through
        // to the chooser.
        // (A signed-in browser's /login redirects: its token comes from the sign-up
        // page, like any anonymous form's.)
        let again = app
            .submit(
                &app.client,
                "/signup",
                "/login",
                &[("email", &user.email), ("password", &user.password)],
            )
            .await;
        assert_eq!(again.status(), 200, "a known session is not locked out");
        assert!(again.text().await.unwrap().contains("Choose a workspace"));
        let other = TestApp::browser_like_client();
        let response = app.login_with(&other, &user.email, &user.password).await;
        assert_eq!(response.status(), 200, "the lock ended");
    }
);

/// `name value` of one sample on the `/metrics` page.
fn sample(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        .trim()
        .parse()
        .expect("an integer gauge")
}

/// A burst of parallel sign-ins never runs more argon2 verifications at once than
/// the cap (`MAX_CONCURRENT_HASHES`), as the peak gauge on `/metrics` shows; the
/// burst itself runs several side by side, so a missing cap would show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ins_runs_at_most_the_cap_of_verifications_at_once() {
    use sluice_store::password::MAX_CONCURRENT_HASHES;
    let app = TestApp::spawn(sluice_tests::Backend::Sqlite).await;
    let user = app.signup("Cap").await;
    let mut ready = Vec::new();
    // Under the per-address limit, each email under its own: every one is checked.
    for n in 0..(ADDRESS_LIMIT - 4) {
        let browser = TestApp::browser_like_client();
        let csrf = app.csrf_token(&browser, "/login").await;
        let email = if n % 2 == 0 {
            user.email.clone()
        } else {
            format!("nobody{n}@cap.test")
        };
        ready.push((browser, csrf, email));
    }
    let attempts = ready.iter().map(|(browser, csrf, email)| {
        browser
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email.as_str()),
                ("password", "wrong guess"),
            ])
            .send()
    });
    let checked = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED)
        })
        .count();
    assert!(
        checked >= ADDRESS_LIMIT - 4 - EMAIL_LIMIT,
        "{checked} checked"
    );

    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let peak = sample(&metrics, "sluice_password_hashes_running_peak");
    let cap = i64::try_from(MAX_CONCURRENT_HASHES).unwrap();
    assert!(
        (2..=cap).contains(&peak),
        "{peak} verifications ran at once (cap {cap})"
    );
    assert_eq!(sample(&metrics, "sluice_password_hashes_running"), 0);
    assert_eq!(sample(&metrics, "sluice_password_hashes_waiting"), 0);
}
