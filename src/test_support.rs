//! What unit tests of HTTP middleware share: an application state on a throwaway store.

use std::time::Duration;

use crate::state::AppState;

/// An application state on a fresh embedded store in `dir` (request timeout 1 s, bcrypt cost 4).
pub async fn state(dir: &std::path::Path) -> AppState {
    use std::sync::Arc;
    let db = dir.join("t.db").display().to_string();
    let config = crate::config::Config::from_lookup(|k| match k {
        "DATABASE_PATH" => Some(db.clone()),
        "SECRET_KEY" => Some("an idempotency test key of 32+ bytes".into()),
        "BCRYPT_COST" => Some("4".into()),
        "REQUEST_TIMEOUT_SECONDS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let store = crate::storage::connect(
        &config,
        crate::failpoint::Failpoints::default(),
        crate::storage::Role::Tool,
    )
    .await
    .unwrap();
    AppState {
        store,
        tokens: Arc::new(
            crate::auth::TokenKeys::new(
                &config.auth.secret_key,
                config.auth.algorithm,
                config.auth.access_token_ttl,
            )
            .unwrap(),
        ),
        hasher: crate::auth::PasswordHasher::new(4, 1).await.unwrap(),
        throttle: crate::auth::throttle::LoginThrottle {
            max_attempts: 5,
            account_budget: 50,
            window: Duration::from_secs(900),
        },
        keys: Arc::default(),
        config: Arc::new(config),
    }
}
