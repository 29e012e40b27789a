//! Test-only crash points inside multi-step store operations.
//!
//! A crash test starts the service with `ORG_SERVICE_FAILPOINTS=create.after_admin` (say);
//! when an operation reaches that point the process announces it on stderr and stops making
//! progress, and the test kills it with SIGKILL. After a restart the reconciler must leave
//! nothing half-made. Refused when `APP_ENV=production`; with no names set, [`Failpoints::hit`]
//! is a lookup in an empty set.

use std::collections::HashSet;
use std::sync::Arc;

/// The names of the crash points this process stops at.
#[derive(Debug, Clone, Default)]
pub struct Failpoints(Arc<HashSet<String>>);

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

/// Marker printed on stderr when a crash point is reached.
pub const REACHED: &str = "FAILPOINT REACHED:";

impl Failpoints {
    /// Enables the named crash points.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self(Arc::new(names.into_iter().collect()))
    }

    /// If `name` is enabled, announces it and blocks this thread forever (the test kills the
    /// process). Blocking is deliberate: the operation must not progress past this point.
    pub fn hit(&self, name: &str) {
        if self.0.contains(name) {
            eprintln!("{REACHED} {name}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }

    /// Async form of [`Failpoints::hit`]: the task waits forever instead of a thread.
    pub async fn reached(&self, name: &str) {
        if self.0.contains(name) {
            eprintln!("{REACHED} {name}");
            std::future::pending::<()>().await;
        }
    }
}
