//! Issue 9, authentication: equal login work after a `BCRYPT_COST` change, hashes upgraded on
//! login.

use crate::both_stores;
use crate::helpers::*;

/// Creates an organization straight in the store, its admin's password hashed at `cost`.
async fn org_hashed_at(app: &TestApp, name: &str, email: &str, cost: u32) {
    use org_service::domain::{new_id, Email, NewOrganization, OrgName};
    app.store
        .create_organization(&NewOrganization {
            id: new_id(),
            admin_id: new_id(),
            name: OrgName::parse(name).unwrap(),
            admin_email: Email::parse(email).unwrap(),
            password_hash: bcrypt::hash(PASSWORD, cost).unwrap(),
            created_at: chrono::Utc::now(),
        })
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
        let stored = app.store.admin_by_email("old@hash.example").await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$2b$06$"), "{}", stored.password_hash);
        let before = app.state.hasher.work();
        assert_eq!(app.login("old@hash.example", "WrongPass123!").await.status(), 401);
        assert_eq!(work(before), unknown);
        // The upgrade changed no password and ended no session.
        assert_eq!(app.login("old@hash.example", PASSWORD).await.status(), 200);
        assert_eq!(stored.token_version, 0);
    }
}
