//! Shared application state: one `Clone` struct of cheap handles.

use std::sync::Arc;

use crate::auth::key_guard::KeyGuard;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{PasswordHasher, TokenKeys};
use crate::config::Config;
use crate::storage::Store;

/// Everything a handler needs, cloned per request (all fields are `Arc`s or small copies).
#[derive(Clone)]
pub struct AppState {
    /// The store behind the API (embedded SQLite or MongoDB).
    pub store: Arc<dyn Store>,
    /// JWT keys and validation policy.
    pub tokens: Arc<TokenKeys>,
    /// bcrypt on a bounded blocking pool.
    pub hasher: PasswordHasher,
    /// Per-account login throttle.
    pub throttle: LoginThrottle,
    /// API-key guessing per address and written key uses (this process's).
    pub keys: Arc<KeyGuard>,
    /// The configuration the service started with.
    pub config: Arc<Config>,
}
