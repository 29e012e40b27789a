//! Test-only crash and pause points inside multi-step store operations.
//!
//! A crash test starts the service with `ORG_SERVICE_FAILPOINTS=create.after_admin` (say);
//! when an operation reaches that point the process announces it on stderr and stops making
//! progress, and the test kills it with SIGKILL. After a restart the reconciler must leave
//! nothing half-made.
//!
//! `name=<n>ms` pauses at the point for `n` milliseconds and then goes on. Tests use it to make
//! an operation outlast the request timeout without depending on how fast the machine hashes a
//! password (a CI machine that hashes fast once turned such a test into a false failure).
//!
//! Refused when `APP_ENV=production`; with no names set, [`Failpoints::hit`] is a lookup in an
//! empty map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What happens when an operation reaches an enabled point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Announce and never go on (the test kills the process).
    Hang,
    /// Announce, wait this long, go on.
    Pause(Duration),
}

/// The points this process stops or pauses at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failpoints(Arc<HashMap<String, Action>>);

/// Every crash point the stores define, in operation order (tests iterate over this).
pub const ALL: &[&str] = &[
    "create.after_claim",
    "create.after_organization",
    "create.after_admin",
    "create.after_collection",
    "create.after_commit",
    "rename.after_claim",
    "rename.after_mark",
    "rename.after_collection",
    "rename.after_update",
    "delete.after_mark",
    "delete.after_admin",
    "delete.after_collection",
];

/// The crash points of `org-service migrate --tenant-layout`, in order.
pub const LAYOUT: &[&str] = &[
    "layout.after_mark",
    "layout.after_copy",
    "layout.after_tenant",
];

/// The crash points of membership changes and invitation accepts, in operation order.
pub const TEAMS: &[&str] = &[
    "member.after_check",
    "member.after_remove",
    "accept.after_claim",
    "accept.after_account",
    "accept.after_membership",
];

/// The crash point between an audited change and the append of its events (MongoDB: the
/// events are staged; embedded: inside the transaction, after both). The crash tests reach it
/// through a rename.
pub const AUDIT: &[&str] = &["audit.after_change"];

/// The pause point of the MongoDB reconciler: after it has read what owns the tenant
/// collections and before it drops the ones nothing owns (a test creates an organization there).
pub const RECONCILE: &[&str] = &["reconcile.after_reads"];

/// Marker printed on stderr when a crash point is reached.
pub const REACHED: &str = "FAILPOINT REACHED:";

/// The longest pause a point may ask for: longer is a typo, not a test.
const MAX_PAUSE_MS: u64 = 60_000;

impl Failpoints {
    /// Parses the comma-separated list of `ORG_SERVICE_FAILPOINTS`: `name` hangs there,
    /// `name=<n>ms` pauses. Names must be in [`ALL`], so a misspelt point cannot silently
    /// turn a crash test into one that never crashes.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut points = HashMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, action) = match entry.split_once('=') {
                None => (entry, Action::Hang),
                Some((name, pause)) => (name.trim(), Action::Pause(parse_pause(pause.trim())?)),
            };
            let known = || {
                ALL.iter()
                    .chain(LAYOUT)
                    .chain(TEAMS)
                    .chain(AUDIT)
                    .chain(RECONCILE)
            };
            if !known().any(|k| *k == name) {
                let known: Vec<&str> = known().copied().collect();
                return Err(format!(
                    "unknown point `{name}`; known: {}",
                    known.join(", ")
                ));
            }
            points.insert(name.to_owned(), action);
        }
        Ok(Self(Arc::new(points)))
    }

    /// True when no point is enabled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// If `name` is enabled, announces it and blocks this thread: forever for a crash point
    /// (the operation must not progress past it), for the pause otherwise.
    pub fn hit(&self, name: &str) {
        match self.0.get(name) {
            None => {}
            Some(Action::Hang) => {
                eprintln!("{REACHED} {name}");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            Some(Action::Pause(pause)) => {
                eprintln!("{REACHED} {name}");
                std::thread::sleep(*pause);
            }
        }
    }

    /// Async form of [`Failpoints::hit`]: the task waits instead of a thread.
    pub async fn reached(&self, name: &str) {
        match self.0.get(name) {
            None => {}
            Some(Action::Hang) => {
                eprintln!("{REACHED} {name}");
                std::future::pending::<()>().await;
            }
            Some(Action::Pause(pause)) => {
                eprintln!("{REACHED} {name}");
                tokio::time::sleep(*pause).await;
            }
        }
    }
}

fn parse_pause(text: &str) -> Result<Duration, String> {
    let millis = text
        .strip_suffix("ms")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| (1..=MAX_PAUSE_MS).contains(n))
        .ok_or_else(|| format!("`{text}` is not a pause; write 1ms to {MAX_PAUSE_MS}ms"))?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(points: &Failpoints, name: &str) -> Option<Action> {
        points.0.get(name).copied()
    }

    #[test]
    fn names_hang_and_pauses_wait() {
        let points = Failpoints::parse(" create.after_admin , delete.after_mark=1500ms,").unwrap();
        assert_eq!(action(&points, "create.after_admin"), Some(Action::Hang));
        assert_eq!(
            action(&points, "delete.after_mark"),
            Some(Action::Pause(Duration::from_millis(1500)))
        );
        assert_eq!(points.0.len(), 2);
        assert!(!points.is_empty());
        assert!(Failpoints::parse("").unwrap().is_empty());
        assert!(Failpoints::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn pauses_are_bounded_and_need_a_unit() {
        assert!(Failpoints::parse("create.after_admin=1ms").is_ok());
        assert!(Failpoints::parse("create.after_admin=60000ms").is_ok());
        for bad in ["0ms", "60001ms", "1500", "1.5s", "ms", "-1ms"] {
            let err = Failpoints::parse(&format!("create.after_admin={bad}")).unwrap_err();
            assert!(err.contains("is not a pause"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = Failpoints::parse("create.after_admn").unwrap_err();
        assert!(
            err.starts_with("unknown point `create.after_admn`"),
            "{err}"
        );
        assert!(Failpoints::parse("create.after_admn=5ms").is_err());
        assert!(Failpoints::parse("layout.after_copy").is_ok());
        assert!(Failpoints::parse("reconcile.after_reads=5ms").is_ok());
    }

    #[test]
    fn a_pause_goes_on_after_waiting() {
        let points = Failpoints::parse("create.after_claim=20ms").unwrap();
        let start = std::time::Instant::now();
        points.hit("create.after_admin");
        points.hit("create.after_claim");
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_async_pause_goes_on_after_waiting() {
        let points = Failpoints::parse("create.after_claim=1500ms").unwrap();
        let start = tokio::time::Instant::now();
        points.reached("create.after_admin").await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "an unset point does not wait"
        );
        points.reached("create.after_claim").await;
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }
}
