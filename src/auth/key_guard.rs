//! The in-process state of API-key authentication: failed guesses per client address, and the
//! last use of each key this process has written.
//!
//! - **Guessing.** A well-formed key that is unknown or wrong is a failure of its address.
//!   [`MAX_KEY_FAILURES`] failures within [`KEY_FAILURE_WINDOW_SECONDS`] of the first refuse
//!   every key from that address (429 with `Retry-After`) until the window ends, *before* the
//!   key is looked up: a right guess made while refused is never confirmed. A client that holds
//!   a real key does not fail, so it is never refused. The count is per instance (like the
//!   request rate limits): behind N instances an address gets N windows' worth, still
//!   nothing against 2^256 secrets, and no store write per failure for an attacker to cause.
//! - **Last use.** A key's `last_used_at` is written when the latest use known to be written
//!   (the stored one, or this process's own newer write) is a minute old or more
//!   ([`crate::domain::touch_due`]), and only by one request of this process at a time: one
//!   write per key per minute per instance, not one per request.
//!
//! Both maps are pruned of entries that no longer matter once they grow past [`PRUNE_AT`], so
//! neither grows with traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::throttle::retry_after;
use crate::domain::{touch_due, ApiKey};

/// Failed key guesses an address may make per window.
pub const MAX_KEY_FAILURES: u32 = 20;
/// The window, from an address's first failure.
pub const KEY_FAILURE_WINDOW_SECONDS: i64 = 60;
/// Entries each map holds before the stale ones are dropped.
pub const PRUNE_AT: usize = 10_000;

/// An address's failures in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// When its first failure was.
    pub window_start: DateTime<Utc>,
    /// Failures since then.
    pub count: u32,
}

impl Failures {
    fn window_end(self) -> DateTime<Utc> {
        self.window_start + Duration::seconds(KEY_FAILURE_WINDOW_SECONDS)
    }

    /// Seconds an address with these failures is refused for at `now`, if it is.
    pub fn refusal(self, now: DateTime<Utc>) -> Option<u64> {
        (self.count >= MAX_KEY_FAILURES && now < self.window_end())
            .then(|| retry_after(self.window_end(), now))
    }

    /// The failures after one more at `now` (a window that has ended starts again).
    pub fn after_failure(current: Option<Self>, now: DateTime<Utc>) -> Self {
        match current {
            Some(f) if now < f.window_end() => Self {
                count: f.count.saturating_add(1),
                ..f
            },
            _ => Self {
                window_start: now,
                count: 1,
            },
        }
    }
}

/// Failed guesses and written uses, shared by every request of this process.
#[derive(Debug, Default)]
pub struct KeyGuard {
    failures: Mutex<HashMap<IpAddr, Failures>>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl KeyGuard {
    /// Seconds `client` must wait before presenting a key again, if it is refused now.
    pub fn refused(&self, client: IpAddr, now: DateTime<Utc>) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(&client).and_then(|f| f.refusal(now))
    }

    /// Counts a failed guess by `client` at `now`.
    pub fn failed(&self, client: IpAddr, now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let next = Failures::after_failure(failures.get(&client).copied(), now);
        failures.insert(client, next);
        if failures.len() > PRUNE_AT {
            failures.retain(|_, f| now < f.window_end());
        }
    }

    /// Whether this request is to write `key`'s use at `now`; if so, it is counted as written
    /// (so concurrent requests of this process do not write it too).
    pub fn claim_touch(&self, key: &ApiKey, now: DateTime<Utc>) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        let ours = touched.get(&key.id).copied();
        let last_written = ours.max(key.last_used_at);
        if !touch_due(last_written, now) {
            return false;
        }
        touched.insert(key.id.clone(), now);
        if touched.len() > PRUNE_AT {
            touched.retain(|_, at| !touch_due(Some(*at), now));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MemberRole;
    use std::net::Ipv4Addr;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn twenty_failures_refuse_the_address_until_the_window_ends() {
        let guard = KeyGuard::default();
        for i in 0..19 {
            guard.failed(A, at(i));
        }
        assert_eq!(guard.refused(A, at(19)), None);
        guard.failed(A, at(19));
        assert_eq!(guard.refused(A, at(19)), Some(41));
        assert_eq!(guard.refused(A, at(59)), Some(1));
        assert_eq!(guard.refused(A, at(60)), None);
        assert_eq!(guard.refused(B, at(19)), None);
        // A failure after the window starts a new one, with one failure.
        guard.failed(A, at(61));
        assert_eq!(guard.refused(A, at(61)), None);
        assert_eq!(
            guard.failures.lock().unwrap()[&A],
            Failures {
                window_start: at(61),
                count: 1
            }
        );
    }

    #[test]
    fn failures_add_up_within_their_window_only() {
        let first = Failures::after_failure(None, at(5));
        assert_eq!(
            first,
            Failures {
                window_start: at(5),
                count: 1
            }
        );
        let second = Failures::after_failure(Some(first), at(64));
        assert_eq!(
            second,
            Failures {
                window_start: at(5),
                count: 2
            }
        );
        assert_eq!(
            Failures::after_failure(Some(second), at(65)),
            Failures {
                window_start: at(65),
                count: 1
            }
        );
        let full = Failures {
            window_start: at(0),
            count: u32::MAX,
        };
        assert_eq!(Failures::after_failure(Some(full), at(1)).count, u32::MAX);
    }

    #[test]
    fn stale_entries_go_when_the_map_is_full() {
        // At exactly PRUNE_AT entries nothing is dropped, stale or not.
        let guard = KeyGuard::default();
        for i in 0..(PRUNE_AT - 1) as u32 {
            guard.failed(IpAddr::V4(Ipv4Addr::from(i)), at(0));
        }
        guard.failed(A, at(60));
        assert_eq!(guard.failures.lock().unwrap().len(), PRUNE_AT);
        let guard = KeyGuard::default();
        for i in 0..=PRUNE_AT as u32 {
            guard.failed(IpAddr::V4(Ipv4Addr::from(i)), at(0));
        }
        assert_eq!(guard.failures.lock().unwrap().len(), PRUNE_AT + 1);
        guard.failed(A, at(60));
        assert_eq!(guard.failures.lock().unwrap().len(), 1);
        guard.failed(B, at(61));
        assert_eq!(guard.failures.lock().unwrap().len(), 2);
    }

    fn key(id: &str, last_used_at: Option<DateTime<Utc>>) -> ApiKey {
        ApiKey {
            id: id.into(),
            organization_id: "o".into(),
            name: "n".into(),
            role: MemberRole::Member,
            prefix: "p".into(),
            created_at: at(0),
            expires_at: None,
            created_by: "a".into(),
            last_used_at,
        }
    }

    #[test]
    fn a_use_is_written_once_a_minute_per_key() {
        let guard = KeyGuard::default();
        assert!(guard.claim_touch(&key("k", None), at(0)));
        // Concurrent requests read the stored value from before the write: still no write.
        assert!(!guard.claim_touch(&key("k", None), at(1)));
        assert!(!guard.claim_touch(&key("k", Some(at(0))), at(59)));
        assert!(guard.claim_touch(&key("k", Some(at(0))), at(60)));
        // Another instance wrote a later use: this one waits a minute from that.
        assert!(!guard.claim_touch(&key("k", Some(at(100))), at(130)));
        assert!(guard.claim_touch(&key("other", None), at(1)));
    }

    #[test]
    fn written_uses_are_forgotten_a_minute_later_when_the_map_is_full() {
        let guard = KeyGuard::default();
        for i in 0..PRUNE_AT - 1 {
            assert!(guard.claim_touch(&key(&i.to_string(), None), at(0)));
        }
        assert!(guard.claim_touch(&key("exactly full", None), at(60)));
        assert_eq!(guard.touched.lock().unwrap().len(), PRUNE_AT);
        let guard = KeyGuard::default();
        for i in 0..=PRUNE_AT {
            assert!(guard.claim_touch(&key(&i.to_string(), None), at(0)));
        }
        assert_eq!(guard.touched.lock().unwrap().len(), PRUNE_AT + 1);
        assert!(guard.claim_touch(&key("late", None), at(59)));
        assert_eq!(guard.touched.lock().unwrap().len(), PRUNE_AT + 2);
        assert!(guard.claim_touch(&key("later", None), at(60)));
        assert_eq!(guard.touched.lock().unwrap().len(), 2);
    }
}
