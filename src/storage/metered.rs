//! A [`Store`] decorator that times every operation and counts failures, so both adapters are
//! measured the same way in one place. Its role-trait implementations are generated next to the
//! traits (`roles.rs`), each a call of [`MeteredStore::measure`].

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{Store, StoreError};

/// Wraps a store with metrics.
pub struct MeteredStore(pub Arc<dyn Store>);

impl MeteredStore {
    /// Runs `fut`, recording its duration and outcome under `operation`.
    pub(super) async fn measure<T>(
        &self,
        operation: &'static str,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = fut.await;
        let store = self.0.kind();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(
                StoreError::Conflict(_)
                | StoreError::Gone
                | StoreError::Revoked
                | StoreError::Busy
                | StoreError::Rule(_)
                | StoreError::Ended(_)
                | StoreError::Quota(_)
                | StoreError::Unstorable(_)
                | StoreError::Precondition,
            ) => "rejected",
            Err(StoreError::Unavailable(_)) => "unavailable",
            Err(StoreError::Refused(_) | StoreError::Backend(_)) => "error",
        };
        metrics::histogram!("store_operation_duration_seconds", "store" => store, "operation" => operation, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        if matches!(outcome, "unavailable" | "error") {
            metrics::counter!("store_errors_total", "store" => store, "operation" => operation, "kind" => outcome)
                .increment(1);
        }
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    async fn close(&self) {
        self.0.close().await;
    }
}
