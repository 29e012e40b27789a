//! The embedded store: one SQLite file, no server.
//!
//! Every multi-step operation is a single SQLite transaction, so a crash at any point leaves
//! either all of an operation or none of it. Uniqueness lives in `UNIQUE` constraints. Every
//! tenant's documents share one table keyed by the organization's id (`tenant.rs`): the schema
//! is the same size for ten organizations and for a million, and a rename touches no document.
//!
//! One module per concern, each implementing its role trait: `organizations`, `members`,
//! `invitations`, `api_keys`, `audit`, `documents`, `sessions`,
//! `throttle`, `tenant`, `idempotency`, `maintenance`; `schema` holds the DDL and the upgrades of
//! older files, `codec` the row mapping and error translation.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool: writes through the one
//! writer connection (SQLite allows one writer at a time anyway), reads through a small pool of
//! reader connections that WAL mode lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Transaction};

mod api_keys;
mod audit;
mod codec;
mod documents;
mod idempotency;
mod invitations;
mod maintenance;
mod members;
mod organizations;
mod schema;
mod sessions;
mod tenant;
mod throttle;

use super::{Store, StoreError};
use crate::failpoint::Failpoints;
use codec::backend;

/// Reader connections kept open: one per core (2 to 8). Reads beyond this many at once wait
/// for a free connection rather than opening more: each connection holds its own copy of the
/// schema and a page cache. A point read is CPU work, so more connections than cores would not read faster.
fn max_readers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}
/// Page cache per connection, in KiB (SQLite's `cache_size` with a negative value).
const CACHE_KIB: i64 = 2048;

/// SQLite-backed [`Store`].
pub struct EmbeddedStore {
    path: PathBuf,
    /// `STORE_TIMEOUT_SECONDS`: SQLite's busy timeout, and the bound on a health probe.
    timeout: Duration,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_permits: Arc<tokio::sync::Semaphore>,
    failpoints: Failpoints,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database file and its directory.
    pub async fn open(
        path: &Path,
        timeout: Duration,
        failpoints: Failpoints,
    ) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let conn = open_connection(&p, timeout)?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(backend)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        Ok(Self {
            path,
            timeout,
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            reader_permits: Arc::new(tokio::sync::Semaphore::new(max_readers())),
            failpoints,
        })
    }

    /// Runs `f` in a write transaction on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Failpoints) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        let failpoints = self.failpoints.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let value = f(&tx, &failpoints)?;
            tx.commit().map_err(backend)?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Runs `f` on a reader connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // A permit per pooled connection: at most max_readers() reads run at once, and each
        // finds a connection in the pool (or opens one of them the first time).
        let permit = Arc::clone(&self.reader_permits)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path, timeout)?,
            };
            let result = f(&conn);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn open_connection(path: &Path, timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    // A write that waits for another process's lock gives up within the store timeout, like
    // every other store call: the client gets its 503 in time, not after SQLite's own wait.
    conn.busy_timeout(timeout).map_err(backend)?;
    // FULL: a transaction acknowledged to a client survives a crash or power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)
        .map_err(backend)?;
    Ok(conn)
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn close(&self) {
        // Fold the WAL back into the main file (and empty it) so a copied database file is
        // complete. A checkpoint cannot run inside a transaction, so it runs on the bare writer
        // connection; pooled readers are idle by now and are closed first.
        let readers = Arc::clone(&self.readers);
        let writer = Arc::clone(&self.writer);
        let result = tokio::task::spawn_blocking(move || {
            readers.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            let (busy, _, _): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(backend)?;
            if busy != 0 {
                return Err(StoreError::Unavailable("the WAL is in use".into()));
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")));
        if let Err(e) = result.and_then(|r| r) {
            tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
        }
    }
}
