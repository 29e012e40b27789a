//! `/admin/login` and the per-account login throttle.

use std::time::{Duration, Instant};

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// A login returns a bearer token with the original's fields, never cached.
    async fn login_returns_a_bearer_token(backend: Backend) {
        let app = spawn_app(backend).await;
        let org = app.given_org("Acme", "a@acme.com").await;
        let r = app.login("A@ACME.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = json_body(r).await;
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["organization_id"], org["organization_id"]);
        assert_eq!(body["organization_name"], "Acme");
        assert_eq!(body["admin_id"].as_str().unwrap().len(), 24);
        assert_eq!(body["expires_in"], 1800);
        assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    }
}

both_stores! {
    /// An unknown email and a wrong password are indistinguishable: same status, headers, body.
    async fn unknown_email_and_wrong_password_look_the_same(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let wrong = app.login("a@acme.com", "WrongPass123!").await;
        let unknown = app.login("nobody@acme.com", "WrongPass123!").await;
        assert_eq!(wrong.status(), 401);
        assert_eq!(unknown.status(), 401);
        assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
        assert_eq!(unknown.headers()["www-authenticate"], "Bearer");
        assert_eq!(wrong.headers().get("content-length"), unknown.headers().get("content-length"));
        assert_eq!(json_body(wrong).await, json_body(unknown).await);
    }
}

both_stores! {
    /// An unknown email costs the same bcrypt work as a wrong password: one verify each.
    async fn unknown_email_costs_one_bcrypt_verify_like_a_wrong_password(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let before = app.state.hasher.completed();
        assert_eq!(app.login("a@acme.com", "WrongPass123!").await.status(), 401);
        let after_wrong = app.state.hasher.completed();
        assert_eq!(app.login("nobody@acme.com", "WrongPass123!").await.status(), 401);
        let after_unknown = app.state.hasher.completed();
        assert_eq!(after_wrong - before, 1, "a wrong password costs one verify");
        assert_eq!(after_unknown - after_wrong, 1, "an unknown email costs one verify too");
    }
}

both_stores! {
    /// Login with malformed input is a 422 naming the field.
    async fn login_validates_its_body(backend: Backend) {
        let app = spawn_app(backend).await;
        assert_422_on(app.login("not-an-email", PASSWORD).await, "email").await;
        assert_422_on(app.login("a@b.co", "").await, "password").await;
        assert_422_on(app.post_json("/admin/login", &serde_json::json!({"email": "a@b.co"})).await, "password").await;
    }
}

both_stores! {
    /// After the allowed failures an account is throttled with 429 and Retry-After, even for the
    /// right password; the throttle ends by itself when the window passes.
    async fn repeated_failures_throttle_the_account_until_the_window_ends(backend: Backend) {
        let app = spawn_app_with(backend, &[("LOGIN_MAX_ATTEMPTS", "3"), ("LOGIN_WINDOW_SECONDS", "2")]).await;
        app.given_org("Acme", "a@acme.com").await;
        app.given_org("Other", "o@other.com").await;
        for _ in 0..3 {
            assert_eq!(app.login("a@acme.com", "WrongPass123!").await.status(), 401);
        }
        let started = Instant::now();
        let r = app.login("a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 429, "the right password is refused while throttled");
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert!(json_body(r).await["detail"].is_string());
        // Other accounts are unaffected.
        assert_eq!(app.login("o@other.com", PASSWORD).await.status(), 200);
        // Unknown accounts are throttled the same way (no hint which emails exist).
        for _ in 0..3 {
            assert_eq!(app.login("ghost@acme.com", "WrongPass123!").await.status(), 401);
        }
        assert_eq!(app.login("ghost@acme.com", "WrongPass123!").await.status(), 429);

        tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 200, "the throttle ended by itself");
    }
}

both_stores! {
    /// Concurrent guesses cannot slip past the limit: of 12 simultaneous attempts with a limit
    /// of 4, exactly 4 are checked and 8 refused.
    async fn concurrent_attempts_cannot_exceed_the_limit(backend: Backend) {
        let app = spawn_app_with(backend, &[("LOGIN_MAX_ATTEMPTS", "4"), ("LOGIN_WINDOW_SECONDS", "600")]).await;
        app.given_org("Acme", "a@acme.com").await;
        let attempts = (0..12).map(|_| app.login("a@acme.com", "WrongPass123!"));
        let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 4, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 8, "{statuses:?}");
    }
}

both_stores! {
    /// A successful login resets the account's count.
    async fn success_resets_the_count(backend: Backend) {
        let app = spawn_app_with(backend, &[("LOGIN_MAX_ATTEMPTS", "3")]).await;
        app.given_org("Acme", "a@acme.com").await;
        for _ in 0..3 {
            assert_eq!(app.login("a@acme.com", "WrongPass123!").await.status(), 401);
            assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 200);
        }
    }
}
