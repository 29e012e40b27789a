//! bcrypt on a bounded pool of blocking threads.
//!
//! bcrypt at cost 12 takes a few hundred milliseconds of CPU. Run on the async executor it would
//! stall every other request on that worker; run on an unbounded blocking pool, a login flood
//! would queue thousands of hashes. So hashing runs on tokio's blocking pool behind a semaphore
//! with one permit per worker: at most `BCRYPT_WORKERS` hashes at once, the rest wait their turn
//! without holding a thread, and reads keep flowing on the executor.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};
use tracing::Instrument;

use crate::domain::{LoginPassword, Password};

/// bcrypt on the bounded pool, with equal work for every login attempt.
///
/// An attacker must not learn whether an email has an account from how long a failed login
/// takes. So every verification does at least one bcrypt at the configured cost: an unknown
/// email is verified against a dummy hash (at the configured cost, or the highest cost this
/// process has seen on a stored hash, if that is higher), and a known account whose hash is
/// cheaper than the configured cost (hashed before `BCRYPT_COST` was raised) is padded with a
/// dummy verification at the configured cost. A successful login re-hashes such a password at
/// the configured cost ([`PasswordHasher::needs_rehash`]), so the padding fades as users log in.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    dummies: Arc<std::sync::Mutex<std::collections::HashMap<u32, Arc<OnceCell<String>>>>>,
    highest_seen: Arc<AtomicU32>,
    completed: Arc<AtomicU64>,
    work: Arc<AtomicU64>,
}

impl PasswordHasher {
    /// Builds the pool and starts computing the dummy hash in the background: at cost 12 it
    /// takes a fifth of a second, which start-up need not wait for.
    pub async fn new(cost: u32, workers: usize) -> anyhow::Result<Self> {
        let hasher = Self {
            cost,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            dummies: Arc::default(),
            highest_seen: Arc::new(AtomicU32::new(cost)),
            completed: Arc::default(),
            work: Arc::default(),
        };
        let background = hasher.clone();
        tokio::spawn(async move {
            if let Err(e) = background.dummy(cost).await {
                tracing::error!(error = %e, "computing the dummy password hash failed");
            }
        });
        Ok(hasher)
    }

    /// The dummy hash at `cost`, computed once per cost (callers arriving meanwhile wait for
    /// the same computation).
    async fn dummy(&self, cost: u32) -> anyhow::Result<String> {
        let cell = Arc::clone(
            self.dummies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(cost)
                .or_default(),
        );
        cell.get_or_try_init(|| async move {
            let random: [u8; 16] = rand::random();
            let password = format!("{random:x?}");
            Ok::<_, anyhow::Error>(
                tokio::task::spawn_blocking(move || bcrypt::hash(password, cost)).await??,
            )
        })
        .await
        .cloned()
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        self.hash_str(password.expose()).await
    }

    /// Re-hashes a password that just verified, at the configured cost.
    pub async fn rehash(&self, password: &LoginPassword) -> anyhow::Result<String> {
        self.hash_str(password.expose()).await
    }

    async fn hash_str(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        let cost = self.cost;
        self.run(cost, move || {
            bcrypt::hash(password, cost).map_err(anyhow::Error::from)
        })
        .await
    }

    /// True when `hash` was made at another cost than the configured one.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash_cost(hash) != Some(self.cost)
    }

    /// Verifies `password` against `hash`; with `None` (unknown account) verifies against a
    /// dummy hash and returns false, spending at least the same work (see the type's doc).
    pub async fn verify(
        &self,
        password: &LoginPassword,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let Some(hash) = hash else {
            let cost = self.highest_seen.load(Ordering::Relaxed);
            let dummy = self.dummy(cost).await?;
            self.check(password, dummy, cost).await?;
            return Ok(false);
        };
        let cost = hash_cost(hash).unwrap_or(self.cost);
        self.highest_seen.fetch_max(cost, Ordering::Relaxed);
        let ok = self.check(password, hash.to_owned(), cost).await?;
        if cost < self.cost {
            let dummy = self.dummy(self.cost).await?;
            self.check(password, dummy, self.cost).await?;
        }
        Ok(ok)
    }

    async fn check(
        &self,
        password: &LoginPassword,
        hash: String,
        cost: u32,
    ) -> anyhow::Result<bool> {
        let password = password.expose().to_owned();
        self.run(cost, move || {
            bcrypt::verify(password, &hash).map_err(anyhow::Error::from)
        })
        .await
    }

    /// bcrypt operations (hashes and verifies) this hasher has completed.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// The work those operations took, in bcrypt rounds (2^cost each): equal work for an
    /// unknown email and a wrong password shows up here, whatever the costs of stored hashes.
    pub fn work(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        cost: u32,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let queued = std::time::Instant::now();
        metrics::gauge!("bcrypt_queue_depth").increment(1.0);
        let permit = self.permits.acquire().await;
        metrics::gauge!("bcrypt_queue_depth").decrement(1.0);
        metrics::histogram!("bcrypt_wait_seconds").record(queued.elapsed().as_secs_f64());
        let _permit = permit?;
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || span.in_scope(job))
            .instrument(tracing::Span::current())
            .await?;
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.work
            .fetch_add(1_u64 << cost.min(63), Ordering::Relaxed);
        result
    }
}

/// The cost of a bcrypt hash (`$2b$12$...` → 12), if it is one.
pub fn hash_cost(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    let (Some(""), Some(version), Some(cost)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    if !matches!(version, "2a" | "2b" | "2x" | "2y") || cost.len() != 2 {
        return None;
    }
    cost.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_match() {
        let hasher = PasswordHasher::new(4, 2).await.unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        let right = LoginPassword::parse("correct horse").unwrap();
        let wrong = LoginPassword::parse("wrong horse!").unwrap();
        assert!(hasher.verify(&right, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&right, None).await.unwrap());
    }

    #[test]
    fn hash_cost_reads_the_cost_field() {
        assert_eq!(hash_cost("$2b$12$abcdefghijklmnopqrstuu"), Some(12));
        assert_eq!(hash_cost("$2a$04$x"), Some(4));
        assert_eq!(hash_cost("$2y$31$x"), Some(31));
        assert_eq!(hash_cost("$2x$10$x"), Some(10));
        assert_eq!(hash_cost("$3b$12$x"), None);
        assert_eq!(hash_cost("$2b$1$x"), None);
        assert_eq!(hash_cost("$2b$123$x"), None);
        assert_eq!(hash_cost("2b$12$x"), None);
        assert_eq!(hash_cost("$2b"), None);
        assert_eq!(hash_cost("$2b$ab$x"), None);
    }

    #[tokio::test]
    async fn every_verification_does_at_least_the_configured_work() {
        let hasher = PasswordHasher::new(5, 2).await.unwrap();
        let pw = LoginPassword::parse("correct horse").unwrap();
        let cheap = bcrypt::hash("correct horse", 4).unwrap();
        let dear = bcrypt::hash("correct horse", 6).unwrap();
        assert!(hasher.needs_rehash(&cheap));
        assert!(hasher.needs_rehash(&dear));
        assert!(!hasher.needs_rehash(&bcrypt::hash("x", 5).unwrap()));

        let work = |f: u64| hasher.work() - f;
        let start = hasher.work();
        assert!(!hasher.verify(&pw, None).await.unwrap());
        assert_eq!(
            work(start),
            1 << 5,
            "unknown: one verify at the configured cost"
        );

        let start = hasher.work();
        assert!(hasher.verify(&pw, Some(&cheap)).await.unwrap());
        assert_eq!(
            work(start),
            (1 << 4) + (1 << 5),
            "a cheap hash is padded to the configured cost"
        );

        let start = hasher.work();
        let even = bcrypt::hash("correct horse", 5).unwrap();
        assert!(hasher.verify(&pw, Some(&even)).await.unwrap());
        assert_eq!(
            work(start),
            1 << 5,
            "a hash at the configured cost: one verify"
        );

        let start = hasher.work();
        assert!(hasher.verify(&pw, Some(&dear)).await.unwrap());
        assert_eq!(work(start), 1 << 6);

        // Having seen a cost-6 hash, unknown emails cost as much as that account.
        let start = hasher.work();
        assert!(!hasher.verify(&pw, None).await.unwrap());
        assert_eq!(work(start), 1 << 6);
        let rehashed = hasher.rehash(&pw).await.unwrap();
        assert_eq!(hash_cost(&rehashed), Some(5));
        assert_eq!(hasher.completed(), 7);
    }
}
