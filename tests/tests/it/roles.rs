//! Invitations, roles (owner / admin / viewer) and tenant isolation in the UI.

use sluice_store::api_keys::KeyCreator;
use sluice_tests::{TestApp, on_both_backends};

on_both_backends!(owner_invites_and_roles_are_enforced, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Roles").await;
    let viewer_link = app.invite(&app.client, "viewer@roles.test", "viewer").await;
    let admin_link = app.invite(&app.client, "admin@roles.test", "admin").await;
    let viewer = app.join(&viewer_link, "Vera Viewer").await;
    let admin = app.join(&admin_link, "Adam Admin").await;

    // The link works once.
    let again = TestApp::browser_like_client()
        .get(&viewer_link)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // Viewers read but cannot change anything.
    let page = viewer.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await.unwrap().contains(&owner.tenant),
        "same tenant in the header"
    );
    let denied = app
        .submit(
            &viewer,
            "/settings",
            "/settings/api-keys",
            &[("name", "viewer key")],
        )
        .await;
    assert_eq!(denied.status(), 403);
    let denied = app
        .submit(
            &viewer,
            "/settings",
            "/settings/users/invite",
            &[("email", "x@roles.test"), ("role", "owner")],
        )
        .await;
    assert_eq!(denied.status(), 403);

    // Admins change configuration but do not manage users.
    let created = app
        .submit(
            &admin,
            "/settings",
            "/settings/api-keys",
            &[("name", "admin key")],
        )
        .await;
    assert_eq!(created.status(), 201);
    assert!(
        created.text().await.unwrap().contains("sk_"),
        "the key is shown once"
    );
    let denied = app
        .submit(
            &admin,
            "/settings",
            "/settings/users/invite",
            &[("email", "y@roles.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(denied.status(), 403);

    // The owner promotes and removes.
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    let users = app.store().users(&tenant.id).await.unwrap();
    let vera = users
        .iter()
        .find(|u| u.email == "viewer@roles.test")
        .unwrap();
    let response = app
        .submit(
            &app.client,
            "/settings",
            &format!("/settings/users/{}/role", vera.id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.store()
            .user(&tenant.id, &vera.id)
            .await
            .unwrap()
            .role
            .as_str(),
        "admin"
    );
    let response = app
        .submit(
            &app.client,
            "/settings",
            &format!("/settings/users/{}/delete", vera.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        viewer.get(app.url("/")).send().await.unwrap().status(),
        303,
        "a removed user is signed out"
    );

    let audit = app.page_text("/audit").await;
    for action in [
        "user.invite",
        "invitation.accept",
        "user.role_change",
        "user.remove",
        "api_key.create",
    ] {
        assert!(audit.contains(action), "audit log records {action}");
    }
});

on_both_backends!(
    another_tenants_ids_answer_404_in_the_ui,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let alice = app.signup("Alice").await;
        let bob_browser = TestApp::browser_like_client();
        let bob = sluice_tests::TestUser::unique("Bob");
        app.signup_with(&bob_browser, &bob).await;

        let alice_tenant = app.store().tenant_by_name(&alice.tenant).await.unwrap();
        let alice_user = &app.store().users(&alice_tenant.id).await.unwrap()[0];
        let (alice_key, _) = app
            .store()
            .create_api_key(&alice_tenant.id, "alice key", KeyCreator::User(alice_user))
            .await
            .unwrap();

        // Bob is an owner, but of another tenant.
        let response = app
            .submit(
                &bob_browser,
                "/settings",
                &format!("/settings/users/{}/role", alice_user.id),
                &[("role", "viewer")],
            )
            .await;
        assert_eq!(response.status(), 404);
        let response = app
            .submit(
                &bob_browser,
                "/settings",
                &format!("/settings/api-keys/{}/revoke", alice_key.id),
                &[],
            )
            .await;
        assert_eq!(response.status(), 404);
        assert_eq!(
            app.store()
                .user(&alice_tenant.id, &alice_user.id)
                .await
                .unwrap()
                .role
                .as_str(),
            "owner"
        );
        assert!(
            app.store()
                .api_key(&alice_tenant.id, &alice_key.id)
                .await
                .unwrap()
                .revoked_at
                .is_none()
        );

        let bob_settings = bob_browser
            .get(app.url("/settings"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !bob_settings.contains(&alice.email),
            "no other tenant's users"
        );
    }
);

on_both_backends!(the_last_owner_cannot_be_demoted, |backend| async move {
    let app = TestApp::spawn(backend).await;
    let owner = app.signup("Solo").await;
    let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
    let me = &app.store().users(&tenant.id).await.unwrap()[0];
    // The form hides it, but a crafted post must fail too.
    let response = app
        .submit(
            &app.client,
            "/settings",
            &format!("/settings/users/{}/delete", me.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), 409);
    let response = app
        .submit(
            &app.client,
            "/settings",
            &format!("/settings/users/{}/role", me.id),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        app.store()
            .user(&tenant.id, &me.id)
            .await
            .unwrap()
            .role
            .as_str(),
        "owner"
    );
});

on_both_backends!(
    concurrent_demotions_of_the_last_two_owners_leave_one,
    |backend| async move {
        let app = TestApp::spawn(backend).await;
        let owner = app.signup("Duo").await;
        let second = app.add_user("second@duo.test", "owner").await;
        let tenant = app.store().tenant_by_name(&owner.tenant).await.unwrap();
        let users = app.store().users(&tenant.id).await.unwrap();
        let id_of = |email: &str| users.iter().find(|u| u.email == email).unwrap().id.clone();
        let (first_id, second_id) = (id_of(&owner.email), id_of("second@duo.test"));
        // A form token stays valid for its session, so the race is two bare POSTs.
        let first_csrf = app.csrf_token(&app.client, "/settings").await;
        let second_csrf = app.csrf_token(&second, "/settings").await;
        let demote = |client: &reqwest::Client, csrf: &str, target: &sluice_store::ids::UserId| {
            client
                .post(app.url(&format!("/settings/users/{target}/role")))
                .form(&[("csrf", csrf), ("role", "admin")])
                .send()
        };
        // Several rounds, since one race may happen to run in order.
        for round in 0..10 {
            let (a, b) = tokio::join!(
                demote(&app.client, &first_csrf, &second_id),
                demote(&second, &second_csrf, &first_id),
            );
            let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
            statuses.sort();
            // The loser is refused as the last owner (409), or, when it came second,
            // as no longer an owner at all (403).
            assert!(
                statuses == [303, 403] || statuses == [303, 409],
                "round {round}: {statuses:?}"
            );
            let owners: Vec<_> = app
                .store()
                .users(&tenant.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.role == sluice_store::domain::Role::Owner)
                .collect();
            assert_eq!(owners.len(), 1, "round {round}: exactly one owner remains");
            let demoted = if owners[0].id == first_id {
                &second_id
            } else {
                &first_id
            };
            app.store()
                .set_role(&tenant.id, demoted, sluice_store::domain::Role::Owner)
                .await
                .unwrap();
        }
    }
);
