//! Refresh tokens, logout and password change: every earlier token dies when it should.

use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;

async fn login_body(app: &TestApp, email: &str, password: &str) -> Value {
    let r = app.login(email, password).await;
    assert_eq!(r.status(), 200);
    json_body(r).await
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/admin/refresh", &json!({"refresh_token": token}))
        .await
}

/// A guarded call that succeeds with a live token (a same-name rename).
async fn token_works(app: &TestApp, token: &str, name: &str, email: &str, password: &str) -> bool {
    let r = app.update_org(Some(token), name, email, password).await;
    match r.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("unexpected {other}"),
    }
}

both_stores! {
    /// Login returns a refresh token; each refresh token works once and yields the next one.
    async fn refresh_tokens_rotate(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let first = login_body(&app, "a@acme.com", PASSWORD).await;
        let r1 = first["refresh_token"].as_str().unwrap();
        assert!(first["refresh_expires_in"].as_u64().unwrap() > 0);

        let r = refresh(&app, r1).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let second = json_body(r).await;
        let r2 = second["refresh_token"].as_str().unwrap();
        assert_ne!(r1, r2);
        assert_eq!(second["organization_name"], "Acme");
        assert!(token_works(&app, second["access_token"].as_str().unwrap(), "Acme", "a@acme.com", PASSWORD).await);

        let r = refresh(&app, r2).await;
        assert_eq!(r.status(), 200, "the rotated token works once");
        // Outside the documented 1..=256 characters: 422; inside it but not a live token: 401,
        // however many bytes its characters take (the fuzzer found 256 characters refused).
        for (bad, status) in [
            (String::new(), 422),
            ("x".repeat(257), 422),
            ("ort_nonsense".into(), 401),
            ("é".repeat(256), 401),
        ] {
            let r = refresh(&app, &bad).await;
            assert_eq!(r.status(), status, "{} characters", bad.chars().count());
        }
    }
}

both_stores! {
    /// Reusing a spent refresh token revokes the whole chain, including the newest token.
    async fn reusing_a_spent_refresh_token_revokes_the_chain(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let first = login_body(&app, "a@acme.com", PASSWORD).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        let second = json_body(refresh(&app, &r1).await).await;
        let r2 = second["refresh_token"].as_str().unwrap().to_owned();

        let replay = refresh(&app, &r1).await;
        assert_eq!(replay.status(), 401);
        assert_eq!(replay.headers()["www-authenticate"], "Bearer");
        assert_eq!(refresh(&app, &r2).await.status(), 401, "the chain is revoked");
        // Another login starts a new, working chain.
        let third = login_body(&app, "a@acme.com", PASSWORD).await;
        assert_eq!(refresh(&app, third["refresh_token"].as_str().unwrap()).await.status(), 200);
    }
}

both_stores! {
    /// Two simultaneous refreshes with one token: exactly one wins and the other gets 401,
    /// every round; the race revokes nothing, but presenting the token again after the win is
    /// a replay that revokes the chain.
    async fn concurrent_refreshes_of_one_token_have_exactly_one_winner(backend: Backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMITS", "off")]).await;
        app.given_org("Acme", "a@acme.com").await;
        let mut chains_alive = 0;
        for round in 0..10 {
            let body = login_body(&app, "a@acme.com", PASSWORD).await;
            let token = body["refresh_token"].as_str().unwrap();
            let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
            let mut statuses = [a.status().as_u16(), b.status().as_u16()];
            statuses.sort_unstable();
            assert_eq!(statuses, [200, 401], "round {round}");
            let winner = if a.status() == 200 { a } else { b };
            let next = json_body(winner).await["refresh_token"].as_str().unwrap().to_owned();
            let after = refresh(&app, &next).await;
            if after.status() == 200 {
                chains_alive += 1;
                let newest = json_body(after).await["refresh_token"].as_str().unwrap().to_owned();
                // A replay of the raced token after the win revokes the chain.
                assert_eq!(refresh(&app, token).await.status(), 401);
                assert_eq!(refresh(&app, &newest).await.status(), 401, "round {round}: chain not revoked");
            }
        }
        // The loser of a race arrives before the winner's successor exists (it would have to be
        // several store round trips late to count as a replay after the win).
        assert!(chains_alive >= 5, "the race revoked the winner's chain in {} of 10 rounds", 10 - chains_alive);
    }
}

both_stores! {
    /// Logout kills every access and refresh token of the admin.
    async fn logout_revokes_every_token(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let a = login_body(&app, "a@acme.com", PASSWORD).await;
        let b = login_body(&app, "a@acme.com", PASSWORD).await;
        let r = app.client.post(app.url("/admin/logout")).bearer_auth(a["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 204);
        for session in [&a, &b] {
            assert!(!token_works(&app, session["access_token"].as_str().unwrap(), "Acme", "a@acme.com", PASSWORD).await);
            assert_eq!(refresh(&app, session["refresh_token"].as_str().unwrap()).await.status(), 401);
        }
        let r = app.client.post(app.url("/admin/logout")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let c = login_body(&app, "a@acme.com", PASSWORD).await;
        assert!(token_works(&app, c["access_token"].as_str().unwrap(), "Acme", "a@acme.com", PASSWORD).await);
    }
}

both_stores! {
    /// A password change needs the current password, kills every earlier token, and returns new ones.
    async fn password_change_kills_earlier_tokens(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let old = login_body(&app, "a@acme.com", PASSWORD).await;
        let access = old["access_token"].as_str().unwrap();
        let change = |current: &str, new: &str| {
            app.client.put(app.url("/admin/password")).bearer_auth(access)
                .json(&json!({"current_password": current, "new_password": new})).send()
        };
        let r = change("WrongPass123!", "BrandNewPass456!").await.unwrap();
        assert_eq!(r.status(), 401);
        assert_422_on(change(PASSWORD, "short").await.unwrap(), "new_password").await;
        assert_422_on(change(PASSWORD, &"p".repeat(73)).await.unwrap(), "new_password").await;

        let r = change(PASSWORD, "BrandNewPass456!").await.unwrap();
        assert_eq!(r.status(), 200);
        let fresh = json_body(r).await;
        assert!(!token_works(&app, access, "Acme", "a@acme.com", "BrandNewPass456!").await, "old access token died");
        assert_eq!(refresh(&app, old["refresh_token"].as_str().unwrap()).await.status(), 401, "old refresh token died");
        assert!(token_works(&app, fresh["access_token"].as_str().unwrap(), "Acme", "a@acme.com", "BrandNewPass456!").await);
        assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 401);
        assert_eq!(app.login("a@acme.com", "BrandNewPass456!").await.status(), 200);
    }
}

both_stores! {
    /// Deleting the organization kills its refresh tokens too.
    async fn delete_kills_refresh_tokens(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let s = login_body(&app, "a@acme.com", PASSWORD).await;
        assert_eq!(app.delete_org(Some(s["access_token"].as_str().unwrap()), "Acme").await.status(), 204);
        assert_eq!(refresh(&app, s["refresh_token"].as_str().unwrap()).await.status(), 401);
        app.assert_consistent(0).await;
    }
}
