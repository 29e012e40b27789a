//! Reading an organization's audit log a batch at a time, for the API and the command line:
//! the NDJSON export and the check of the hash chain. Memory stays flat however long the log.

use std::sync::Arc;

use axum::body::Bytes;

use crate::domain::{ChainCheck, TimeRange, Verification};
use crate::storage::{Store, StoreError};

/// Events the check reads from the store at a time.
pub const BATCH: u32 = 1_000;
/// Events the export reads at a time: the batch is held three times over (as read, as
/// events, as the chunk sent), so it is kept small enough for large events to stay cheap.
pub const EXPORT_BATCH: u32 = 250;

/// The events of `org_id` in `range`, oldest first, as NDJSON read a batch at a time: memory
/// stays flat however long the log.
pub fn ndjson(
    store: Arc<dyn Store>,
    org_id: String,
    range: TimeRange,
) -> impl futures::Stream<Item = Result<Bytes, StoreError>> + Send {
    futures::stream::try_unfold(
        (store, org_id, 0_i64, false),
        move |(store, org_id, after, done)| async move {
            if done {
                return Ok(None);
            }
            let batch = store
                .events_after(&org_id, after, range.since, range.until, EXPORT_BATCH)
                .await?;
            let Some(last) = batch.last().map(|e| e.sequence) else {
                return Ok(None);
            };
            let finished = batch.len() < EXPORT_BATCH as usize;
            let mut chunk = Vec::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum());
            for event in &batch {
                chunk.extend_from_slice(event.json.as_bytes());
                chunk.push(b'\n');
            }
            Ok(Some((Bytes::from(chunk), (store, org_id, last, finished))))
        },
    )
}

/// Checks `org_id`'s chain from its anchor, a batch at a time.
pub async fn verify_chain(store: &dyn Store, org_id: &str) -> Result<Verification, StoreError> {
    let anchor = store.chain_anchor(org_id).await?;
    let mut after = anchor.sequence;
    let mut check = ChainCheck::new(org_id, anchor);
    loop {
        let batch = store.events_after(org_id, after, None, None, BATCH).await?;
        for event in &batch {
            check.push(event);
        }
        match batch.last() {
            Some(last) if batch.len() == BATCH as usize => after = last.sequence,
            _ => return Ok(check.finish()),
        }
    }
}
