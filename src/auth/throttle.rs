//! Per-account login throttling, shared by every instance through the store.
//!
//! Each attempt on an account (known or not: the key is the normalized email, so the throttle
//! reveals nothing about which accounts exist) is counted *before* the password is checked, in
//! one atomic store operation. Past `max_attempts` in a window, attempts are refused with 429
//! and `Retry-After` until the window ends, even with the right password; so concurrent guesses
//! cannot slip past the limit, and the lock ends by itself (no permanent lockout that an
//! attacker could inflict on a victim). A successful login clears the count.

use std::time::Duration;

use chrono::Utc;

use crate::error::ApiError;
use crate::storage::Store;

/// Throttle policy.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    /// Attempts allowed per window.
    pub max_attempts: u32,
    /// Window length.
    pub window: Duration,
}

impl LoginThrottle {
    fn key(email: &str) -> String {
        format!("login:{email}")
    }

    /// Counts an attempt; refuses it with 429 when the account is over its limit.
    pub async fn attempt(&self, store: &dyn Store, email: &str) -> Result<(), ApiError> {
        let now = Utc::now();
        let window = store
            .register_login_attempt(&Self::key(email), now, self.window, self.max_attempts)
            .await?;
        if window.attempts > self.max_attempts {
            let ends =
                window.window_start + chrono::Duration::from_std(self.window).unwrap_or_default();
            let retry_after = (ends - now).num_seconds().max(1);
            tracing::warn!("login throttled");
            metrics::counter!("login_throttled_total").increment(1);
            return Err(ApiError::TooManyRequests {
                retry_after: u64::try_from(retry_after).unwrap_or(1),
            });
        }
        Ok(())
    }

    /// Clears the account's count after a successful login.
    pub async fn succeeded(&self, store: &dyn Store, email: &str) -> Result<(), ApiError> {
        store.clear_login_attempts(&Self::key(email)).await?;
        Ok(())
    }
}
