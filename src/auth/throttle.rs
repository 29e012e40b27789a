//! Login throttling, shared by every instance through the store: per account *and* address,
//! with a larger per-account budget across addresses.
//!
//! An account's email is public, so a throttle keyed on the account alone lets anyone lock its
//! owner out by failing on purpose. So attempts are counted twice, each count one atomic store
//! operation made *before* the password is checked (the keys are normalized emails, known or
//! not, so the throttle reveals nothing about which accounts exist):
//!
//! - **per (account, address)**: `LOGIN_MAX_ATTEMPTS` (5) per `LOGIN_WINDOW_SECONDS` (900 s).
//!   Past it that address gets 429 with `Retry-After` until the window ends, even with the right
//!   password. A successful login clears this count.
//! - **per account, across addresses**: `LOGIN_ACCOUNT_MAX_ATTEMPTS` (50) per window. Past it
//!   the account is under attack from many addresses, and each address gets **one** attempt per
//!   window instead of five: an address that has already tried this account in the window gets
//!   429, an address that has not is let through. So the owner, logging in from an address that
//!   has not failed, always gets in, while distributed guessing drops to one guess per address
//!   per window (and each address is still held to its request rate limits). A success does not
//!   clear this count: the attack goes on whether or not the owner logs in.
//!
//! Windows end by themselves: there is no permanent lockout for an attacker to inflict.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::storage::{AttemptWindow, Store};

/// Throttle policy.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    /// Attempts allowed per (account, address) per window.
    pub max_attempts: u32,
    /// Attempts per account across all addresses per window before each address is held to one.
    pub account_budget: u32,
    /// Window length.
    pub window: Duration,
}

/// What the two counts decide for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on and check the password.
    Allowed,
    /// Refused until the returned time (the end of the window that refused it).
    Refused(DateTime<Utc>),
}

impl LoginThrottle {
    fn pair_key(email: &str, client: IpAddr) -> String {
        format!("login:{email}|{client}")
    }

    fn account_key(email: &str) -> String {
        format!("login:{email}")
    }

    /// The decision for an attempt, given what the two counts returned. Pure, so its every
    /// boundary is tested without a store.
    pub fn verdict(&self, pair: AttemptWindow, account: AttemptWindow) -> Verdict {
        let ends = |w: AttemptWindow| {
            w.window_start + chrono::Duration::from_std(self.window).unwrap_or_default()
        };
        if pair.attempts > self.max_attempts {
            return Verdict::Refused(ends(pair));
        }
        if account.attempts > self.account_budget && pair.attempts > 1 {
            return Verdict::Refused(ends(account));
        }
        Verdict::Allowed
    }

    /// Counts an attempt on `email` from `client`; refuses it with 429 when over a limit.
    pub async fn attempt(
        &self,
        store: &dyn Store,
        email: &str,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        let now = Utc::now();
        let pair = store
            .register_login_attempt(
                &Self::pair_key(email, client),
                now,
                self.window,
                self.max_attempts,
            )
            .await?;
        // An attempt the pair limit refuses is not counted against the account: one address
        // hammering away must not use up the budget of every other address.
        let account = if pair.attempts > self.max_attempts {
            pair
        } else {
            store
                .register_login_attempt(
                    &Self::account_key(email),
                    now,
                    self.window,
                    self.account_budget,
                )
                .await?
        };
        match self.verdict(pair, account) {
            Verdict::Allowed => Ok(()),
            Verdict::Refused(until) => {
                tracing::warn!("login throttled");
                metrics::counter!("login_throttled_total").increment(1);
                Err(ApiError::TooManyRequests {
                    retry_after: retry_after(until, now),
                })
            }
        }
    }

    /// Clears the (account, address) count after a successful login.
    pub async fn succeeded(
        &self,
        store: &dyn Store,
        email: &str,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        store
            .clear_login_attempts(&Self::pair_key(email, client))
            .await?;
        Ok(())
    }
}

/// Whole seconds from `now` until `until`, at least 1.
pub fn retry_after(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((until - now).num_seconds())
        .unwrap_or(0)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LoginThrottle = LoginThrottle {
        max_attempts: 5,
        account_budget: 50,
        window: Duration::from_secs(900),
    };

    fn window(attempts: u32, start: i64) -> AttemptWindow {
        AttemptWindow {
            attempts,
            window_start: DateTime::from_timestamp(start, 0).unwrap(),
        }
    }

    #[test]
    fn the_pair_limit_refuses_past_max_attempts_until_its_window_ends() {
        assert_eq!(POLICY.verdict(window(5, 0), window(1, 0)), Verdict::Allowed);
        assert_eq!(
            POLICY.verdict(window(6, 100), window(1, 0)),
            Verdict::Refused(DateTime::from_timestamp(1000, 0).unwrap())
        );
    }

    #[test]
    fn past_the_account_budget_each_address_gets_one_attempt() {
        // At the budget: business as usual.
        assert_eq!(
            POLICY.verdict(window(3, 0), window(50, 0)),
            Verdict::Allowed
        );
        // Past it: an address's first attempt goes through, its second does not.
        assert_eq!(
            POLICY.verdict(window(1, 0), window(51, 0)),
            Verdict::Allowed
        );
        assert_eq!(
            POLICY.verdict(window(2, 0), window(51, 200)),
            Verdict::Refused(DateTime::from_timestamp(1100, 0).unwrap())
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let now = DateTime::from_timestamp(1000, 0).unwrap();
        assert_eq!(
            retry_after(DateTime::from_timestamp(1900, 0).unwrap(), now),
            900
        );
        assert_eq!(
            retry_after(DateTime::from_timestamp(1001, 0).unwrap(), now),
            1
        );
        assert_eq!(retry_after(now, now), 1);
        assert_eq!(
            retry_after(DateTime::from_timestamp(10, 0).unwrap(), now),
            1
        );
    }

    #[test]
    fn keys_name_the_account_and_the_address() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            LoginThrottle::pair_key("a@b.example", ip),
            "login:a@b.example|192.0.2.7"
        );
        assert_eq!(
            LoginThrottle::account_key("a@b.example"),
            "login:a@b.example"
        );
    }

    /// The whole policy against a real (embedded) store: three attempts per address, a budget
    /// of four per account, success clearing only the address's count.
    #[tokio::test]
    async fn attempts_are_counted_per_address_and_per_account() {
        use crate::storage::embedded::EmbeddedStore;
        use crate::storage::Maintenance;

        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(
            &dir.path().join("t.db"),
            Duration::from_secs(2),
            crate::failpoint::Failpoints::default(),
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let throttle = LoginThrottle {
            max_attempts: 3,
            account_budget: 4,
            window: Duration::from_secs(900),
        };
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let email = "x@y.example";
        for _ in 0..3 {
            throttle.attempt(&store, email, a).await.unwrap();
        }
        match throttle.attempt(&store, email, a).await {
            Err(ApiError::TooManyRequests { retry_after }) => {
                // The rest of the 900 s window: the attempts before took some of it (seconds,
                // once, on a loaded machine). `retry_after` itself is tested exactly above.
                assert!((840..=900).contains(&retry_after), "{retry_after}")
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address: its first attempt is the account's fourth (at the budget), its
        // second is past the budget and it has tried before: refused.
        throttle.attempt(&store, email, b).await.unwrap();
        assert!(throttle.attempt(&store, email, b).await.is_err());
        // A fresh address past the budget still gets its one attempt.
        throttle.attempt(&store, email, c).await.unwrap();
        // Success clears that address's count only.
        throttle.succeeded(&store, email, a).await.unwrap();
        throttle.attempt(&store, email, a).await.unwrap();
        assert!(throttle.attempt(&store, email, b).await.is_err());
    }
}
