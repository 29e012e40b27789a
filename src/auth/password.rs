//! bcrypt on a bounded pool of blocking threads.
//!
//! bcrypt at cost 12 takes a few hundred milliseconds of CPU. Run on the async executor it would
//! stall every other request on that worker; run on an unbounded blocking pool, a login flood
//! would queue thousands of hashes. So hashing runs on tokio's blocking pool behind a semaphore
//! with one permit per worker: at most `BCRYPT_WORKERS` hashes at once, the rest wait their turn
//! without holding a thread, and reads keep flowing on the executor.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::domain::{LoginPassword, Password};

/// bcrypt on the bounded pool. Holds a hash of a random password at the configured cost,
/// verified against when the email is unknown so that an unknown email costs the same time as a
/// wrong password.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
    completed: Arc<std::sync::atomic::AtomicU64>,
}

impl PasswordHasher {
    /// Builds the pool and starts computing the dummy hash in the background: at cost 12 it
    /// takes a fifth of a second, which start-up need not wait for.
    pub async fn new(cost: u32, workers: usize) -> anyhow::Result<Self> {
        let hasher = Self {
            cost,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            dummy_hash: Arc::default(),
            completed: Arc::default(),
        };
        let background = hasher.clone();
        tokio::spawn(async move {
            if let Err(e) = background.dummy().await {
                tracing::error!(error = %e, "computing the dummy password hash failed");
            }
        });
        Ok(hasher)
    }

    /// The dummy hash, computed once (callers arriving meanwhile wait for the same computation).
    async fn dummy(&self) -> anyhow::Result<String> {
        let cost = self.cost;
        self.dummy_hash
            .get_or_try_init(|| async move {
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
        let password = password.expose().to_owned();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost).map_err(anyhow::Error::from))
            .await
    }

    /// Verifies `password` against `hash`; with `None` (unknown account) verifies against the
    /// dummy hash and returns false, spending the same work.
    pub async fn verify(
        &self,
        password: &LoginPassword,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash.to_owned(),
            None => self.dummy().await?,
        };
        let password = password.expose().to_owned();
        let ok = self
            .run(move || bcrypt::verify(password, &hash).map_err(anyhow::Error::from))
            .await?;
        Ok(ok && known)
    }

    /// bcrypt operations (hashes and verifies) this hasher has completed: equal work for an
    /// unknown email and a wrong password shows up here as one operation each.
    pub fn completed(&self) -> u64 {
        self.completed.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
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
        self.completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result
    }
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
}
