//! Issue 9, authentication: equal login work after a `BCRYPT_COST` change, hashes upgraded on
//! login.

use crate::both_stores;
use crate::helpers::*;

/// Creates an organization straight in the store, its admin's password hashed at `cost`.
async fn org_hashed_at(app: &TestApp, name: &str, email: &str, cost: u32) {
    use org_service::domain::{new_id, Email, NewOrganization, OrgName};
    app.store
        .create_organization(
            &NewOrganization {
                id: new_id(),
                admin_id: new_id(),
                name: OrgName::parse(name).unwrap(),
                admin_email: Email::parse(email).unwrap(),
                password_hash: Some(bcrypt::hash(PASSWORD, cost).unwrap()),
                created_at: chrono::Utc::now(),
            },
            &[],
        )
        .await
        .unwrap();
}

both_stores! {
    /// Accounts hashed at cost 4 with the service at cost 6: a wrong password on such an
    /// account costs at least the work of an unknown email; a successful login re-hashes at 6,
    /// and from then on both cost exactly the same.
    async fn a_cost_change_reveals_no_accounts_and_hashes_are_upgraded(backend: Backend) {
        let app = spawn_app_with(backend, &[("BCRYPT_COST", "6")]).await;
        org_hashed_at(&app, "Old Hash", "old@hash.example", 4).await;
        let work = |before: u64| app.state.hasher.work() - before;

        let before = app.state.hasher.work();
        assert_eq!(app.login("nobody@hash.example", "WrongPass123!").await.status(), 401);
        let unknown = work(before);
        assert_eq!(unknown, 1 << 6);
        let before = app.state.hasher.work();
        assert_eq!(app.login("old@hash.example", "WrongPass123!").await.status(), 401);
        let known = work(before);
        assert!(known >= unknown, "known {known} < unknown {unknown}");

        assert_eq!(app.login("old@hash.example", PASSWORD).await.status(), 200);
        let stored = app.store.account_by_email("old@hash.example").await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$2b$06$"), "{}", stored.password_hash);
        let before = app.state.hasher.work();
        assert_eq!(app.login("old@hash.example", "WrongPass123!").await.status(), 401);
        assert_eq!(work(before), unknown);
        // The upgrade changed no password and ended no session.
        assert_eq!(app.login("old@hash.example", PASSWORD).await.status(), 200);
        assert_eq!(stored.token_version, 0);
    }
}

/// A login from a given forwarded address (the service trusts one proxy in these tests).
async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> u16 {
    app.client
        .post(app.url("/admin/login"))
        .header("x-forwarded-for", address)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_stores! {
    /// Attackers failing from other addresses cannot lock the owner out of an address that has
    /// not failed; past the per-account budget each address gets one guess per window instead
    /// of three.
    async fn attackers_elsewhere_cannot_lock_the_owner_out(backend: Backend) {
        let app = spawn_app_with(backend, &[
            ("TRUST_FORWARDED_FOR", "true"), ("RATE_LIMITS", "off"),
            ("LOGIN_MAX_ATTEMPTS", "3"), ("LOGIN_ACCOUNT_MAX_ATTEMPTS", "6"),
        ]).await;
        app.given_org("Target", "owner@target.example").await;
        let victim = "owner@target.example";

        // Under the account budget, an address gets three guesses, then 429.
        let first: Vec<u16> = futures::future::join_all((0..4).map(|_| login_from(&app, "198.51.100.1", victim, "WrongPass123!"))).await;
        assert_eq!(first.iter().filter(|s| **s == 401).count(), 3, "{first:?}");
        assert_eq!(first.iter().filter(|s| **s == 429).count(), 1, "{first:?}");
        // Three more guesses from a second address exhaust the account budget of six.
        for _ in 0..3 {
            assert_eq!(login_from(&app, "198.51.100.2", victim, "WrongPass123!").await, 401);
        }
        // Past the budget, a fresh attacker address gets one guess, not three.
        assert_eq!(login_from(&app, "198.51.100.3", victim, "WrongPass123!").await, 401);
        assert_eq!(login_from(&app, "198.51.100.3", victim, "WrongPass123!").await, 429);
        // The owner, from an address that has not failed, still gets in.
        assert_eq!(login_from(&app, "203.0.113.9", victim, PASSWORD).await, 200);
        // ... and again (a success clears that address's count).
        assert_eq!(login_from(&app, "203.0.113.9", victim, PASSWORD).await, 200);
        // The attackers' addresses stay refused, even with the right password.
        assert_eq!(login_from(&app, "198.51.100.1", victim, PASSWORD).await, 429);
    }
}
