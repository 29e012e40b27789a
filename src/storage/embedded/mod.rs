//! The embedded store: one SQLite file, no server.
//!
//! Every multi-step operation is a single SQLite transaction (DDL included: SQLite's `CREATE`,
//! `ALTER TABLE … RENAME` and `DROP` are transactional), so a crash at any point leaves either
//! all of an operation or none of it. Uniqueness lives in `UNIQUE` constraints. The tenant
//! "collection" is a table `org_<slug>` holding JSON documents; a rename is `ALTER TABLE … RENAME
//! TO`, which touches only the schema, never the rows.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool: writes through the one
//! writer connection (SQLite allows one writer at a time anyway), reads through a small pool of
//! reader connections that WAL mode lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Transaction};

mod idempotency;

use super::{
    AttemptWindow, IdempotencyClaim, ReconcileReport, RefreshSpend, RefreshToken, Store,
    StoreError, Taken,
};
use crate::domain::{is_tenant_collection, Admin, NewOrganization, OrgName, Organization};
use crate::failpoint::Failpoints;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS organizations (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    slug            TEXT NOT NULL UNIQUE,
    collection_name TEXT NOT NULL UNIQUE,
    admin_email     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT
);
CREATE TABLE IF NOT EXISTS admins (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    organization_id TEXT NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    token_version   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       TEXT PRIMARY KEY,
    admin_id   TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    token_version INTEGER NOT NULL,
    spent      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS revoked_families (
    family_id  TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_admin ON refresh_tokens (admin_id);
CREATE TABLE IF NOT EXISTS login_attempts (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    sealed      BLOB
);
";

/// Reader connections kept open: one per core (2 to 8). Reads beyond this many at once wait
/// for a free connection rather than opening more: opening one parses the whole schema, which
/// grows with every tenant table, and each connection holds its own copy of it and a page
/// cache. A point read is CPU work, so more connections than cores would not read faster.
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

fn backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        if matches!(
            err.code,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
        ) {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Backend(e.to_string())
}

/// Maps a unique-constraint violation to the value it concerns.
fn conflict_or_backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e {
        if err.code == ErrorCode::ConstraintViolation {
            if msg.contains("admins.email") {
                return StoreError::Conflict(Taken::Email);
            }
            if msg.contains("organizations.slug")
                || msg.contains("organizations.collection_name")
                || msg.contains("organizations.skeleton")
            {
                return StoreError::Conflict(Taken::Name);
            }
        }
    }
    backend(e)
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(raw: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

/// Quotes a tenant table name. Names come only from [`OrgName::collection_name`] (letters,
/// digits, `_`), and the assertion keeps any other caller honest.
fn quoted(table: &str) -> String {
    assert!(is_tenant_collection(table), "not a tenant table: {table:?}");
    format!("\"{table}\"")
}

const ORG_COLUMNS: &str = "id, name, slug, collection_name, admin_email, created_at, updated_at";

fn org_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    let updated: Option<String> = row.get(6)?;
    Ok(Organization {
        id: row.get(0)?,
        name: row.get(1)?,
        slug: row.get(2)?,
        collection_name: row.get(3)?,
        admin_email: row.get(4)?,
        created_at: parse_ts(&row.get::<_, String>(5)?)?,
        updated_at: updated.as_deref().map(parse_ts).transpose()?,
    })
}

const ADMIN_COLUMNS: &str = "id, email, password_hash, organization_id, token_version";

fn admin_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Admin> {
    Ok(Admin {
        id: row.get(0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
        organization_id: row.get(3)?,
        token_version: row.get(4)?,
    })
}

/// One row by a unique key, through the connection's statement cache (the hot reads are
/// parsed once per connection, not once per request).
fn query_one<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row([key], map).optional())
        .map_err(backend)
}

fn org_by_id(conn: &Connection, id: &str) -> Result<Option<Organization>, StoreError> {
    query_one(
        conn,
        &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"),
        id,
        org_from_row,
    )
}

/// Bumps the admin's token version (setting a new password hash if given) and deletes their
/// refresh tokens: every earlier token of theirs stops working. Returns the new version.
fn end_sessions(
    tx: &Transaction<'_>,
    admin_id: &str,
    new_hash: Option<&str>,
) -> Result<i64, StoreError> {
    let version: Option<i64> = tx
        .query_row(
            "UPDATE admins SET password_hash = COALESCE(?2, password_hash), token_version = token_version + 1
             WHERE id = ?1 RETURNING token_version",
            params![admin_id, new_hash],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let version = version.ok_or(StoreError::NotFound)?;
    tx.execute("DELETE FROM refresh_tokens WHERE admin_id = ?1", [admin_id])
        .map_err(backend)?;
    Ok(version)
}

/// Adds the `skeleton` column (the confusable skeleton of the slug, unique) to a database made
/// before it existed, filling it in for every organization. Two existing organizations whose
/// names look alike keep working; the younger one is left without a skeleton (and logged), so
/// only new names are held to the rule.
fn add_skeletons(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let has_column: bool = tx
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('organizations') WHERE name = 'skeleton')",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if !has_column {
        tx.execute_batch("ALTER TABLE organizations ADD COLUMN skeleton TEXT")
            .map_err(backend)?;
        let rows: Vec<(String, String)> = tx
            .prepare("SELECT id, slug FROM organizations ORDER BY created_at")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .map_err(backend)?;
        let mut seen = std::collections::HashSet::new();
        for (id, slug) in rows {
            let skeleton = crate::domain::skeleton_of(&slug);
            if seen.insert(skeleton.clone()) {
                tx.execute(
                    "UPDATE organizations SET skeleton = ?2 WHERE id = ?1",
                    params![id, skeleton],
                )
                .map_err(backend)?;
            } else {
                tracing::warn!(organization_id = %id, "an older organization's name looks like this one's");
            }
        }
    }
    tx.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS organizations_skeleton ON organizations (skeleton)",
    )
    .map_err(backend)
}

fn tenant_tables(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'org\\_%' ESCAPE '\\'")
        .map_err(backend)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(names
        .into_iter()
        .filter(|n| is_tenant_collection(n))
        .collect())
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.execute_batch(SCHEMA).map_err(backend)?;
            add_skeletons(tx)
        })
        .await
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

    async fn ping(&self) -> Result<(), StoreError> {
        // A real read of the data (a corrupt file fails here, where `SELECT 1` would not) and
        // a write lock taken and given back (a database another process holds locked answers
        // every write with 503, so health must say so too); both within the store timeout.
        let probe = async {
            self.read(|conn| {
                conn.prepare_cached("SELECT id FROM organizations ORDER BY id LIMIT 1")
                    .and_then(|mut stmt| stmt.query_row([], |_| Ok(())).optional())
                    .map(drop)
                    .map_err(backend)
            })
            .await?;
            self.write(|_, _| Ok(())).await
        };
        tokio::time::timeout(self.timeout, probe)
            .await
            .map_err(|_| StoreError::Unavailable("health probe timed out".into()))?
    }

    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization, StoreError> {
        let org = new.organization();
        let admin_id = new.admin_id.clone();
        let hash = new.password_hash.clone();
        let skeleton = new.name.skeleton().to_owned();
        let created = org.clone();
        self.write(move |tx, fp| {
            tx.execute(
                "INSERT INTO organizations (id, name, slug, collection_name, admin_email, created_at, skeleton) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![org.id, org.name, org.slug, org.collection_name, org.admin_email, ts(org.created_at), skeleton],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("create.after_claim");
            fp.hit("create.after_organization");
            tx.execute(
                "INSERT INTO admins (id, email, password_hash, organization_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![admin_id, org.admin_email, hash, org.id, ts(org.created_at)],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("create.after_admin");
            tx.execute_batch(&format!(
                "CREATE TABLE {} (id INTEGER PRIMARY KEY, document TEXT NOT NULL)",
                quoted(&org.collection_name)
            ))
            .map_err(backend)?;
            fp.hit("create.after_collection");
            fp.hit("create.after_commit");
            Ok(())
        })
        .await?;
        Ok(created)
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE slug = ?1"),
                &slug,
                org_from_row,
            )
        })
        .await
    }

    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| org_by_id(conn, &id)).await
    }

    async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>, StoreError> {
        let email = email.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE email = ?1"),
                &email,
                admin_from_row,
            )
        })
        .await
    }

    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE id = ?1"),
                &id,
                admin_from_row,
            )
        })
        .await
    }

    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        let id = id.to_owned();
        let new_name = new_name.clone();
        self.write(move |tx, fp| {
            let current = org_by_id(tx, &id)?.ok_or(StoreError::NotFound)?;
            let new_collection = new_name.collection_name();
            tx.execute(
                "UPDATE organizations SET name = ?2, slug = ?3, collection_name = ?4, updated_at = ?5, skeleton = ?6 WHERE id = ?1",
                params![id, new_name.as_str(), new_name.slug(), new_collection, ts(at), new_name.skeleton()],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("rename.after_claim");
            fp.hit("rename.after_mark");
            if current.collection_name != new_collection {
                tx.execute_batch(&format!(
                    "ALTER TABLE {} RENAME TO {}",
                    quoted(&current.collection_name),
                    quoted(&new_collection)
                ))
                .map_err(backend)?;
            }
            fp.hit("rename.after_collection");
            fp.hit("rename.after_update");
            org_by_id(tx, &id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn delete_organization(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |tx, fp| {
            let Some(org) = org_by_id(tx, &id)? else {
                return Ok(false);
            };
            fp.hit("delete.after_mark");
            tx.execute("DELETE FROM admins WHERE organization_id = ?1", [&id])
                .map_err(backend)?;
            fp.hit("delete.after_admin");
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS {}",
                quoted(&org.collection_name)
            ))
            .map_err(backend)?;
            fp.hit("delete.after_collection");
            tx.execute("DELETE FROM organizations WHERE id = ?1", [&id])
                .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn reconcile(&self, _grace: Duration) -> Result<ReconcileReport, StoreError> {
        // Transactions leave nothing half-made; what is left to do is expiring throttle records
        // and dropping tenant tables no organization owns (only a hand-edited file has those).
        let cutoff = Utc::now().timestamp() - super::MAX_LOGIN_WINDOW_SECONDS;
        self.write(move |tx, _| {
            let mut report = ReconcileReport::default();
            tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at < ?1",
                [Utc::now().timestamp()],
            )
            .map_err(backend)?;
            // A revoked chain's tokens all expire within the longest refresh lifetime (90 days).
            tx.execute(
                "DELETE FROM revoked_families WHERE revoked_at < ?1",
                [Utc::now().timestamp() - 90 * 86_400],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM login_attempts WHERE window_start < ?1",
                [cutoff],
            )
            .map_err(backend)?;
            idempotency::expire(tx)?;
            for table in tenant_tables(tx)? {
                let owned: bool = tx
                    .query_row(
                        "SELECT EXISTS(SELECT 1 FROM organizations WHERE collection_name = ?1)",
                        [&table],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if !owned {
                    tx.execute_batch(&format!("DROP TABLE {}", quoted(&table)))
                        .map_err(backend)?;
                    report
                        .repaired
                        .push(format!("dropped orphan table {table}"));
                }
            }
            Ok(report)
        })
        .await
    }

    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut problems = Vec::new();
            let mut stmt = conn
                .prepare(
                    "SELECT o.id, o.collection_name, (SELECT COUNT(*) FROM admins a WHERE a.organization_id = o.id) FROM organizations o",
                )
                .map_err(backend)?;
            let orgs = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let tables = tenant_tables(conn)?;
            for (id, collection, admins) in &orgs {
                if *admins != 1 {
                    problems.push(format!("organization {id} has {admins} admins"));
                }
                if !tables.contains(collection) {
                    problems.push(format!("organization {id} has no table {collection}"));
                }
            }
            for table in &tables {
                if !orgs.iter().any(|(_, c, _)| c == table) {
                    problems.push(format!("orphan table {table}"));
                }
            }
            let orphans: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM admins WHERE organization_id NOT IN (SELECT id FROM organizations)",
                    [],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if orphans > 0 {
                problems.push(format!("{orphans} orphan admins"));
            }
            Ok(problems)
        })
        .await
    }

    async fn count_organizations(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM organizations", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(backend)
        })
        .await
    }

    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        let table = quoted(&org.collection_name);
        self.write(move |tx, _| {
            let mut stmt = tx
                .prepare(&format!("INSERT INTO {table} (document) VALUES (?1)"))
                .map_err(|e| match &e {
                    rusqlite::Error::SqliteFailure(_, Some(msg))
                        if msg.contains("no such table") =>
                    {
                        StoreError::NotFound
                    }
                    _ => backend(e),
                })?;
            for doc in &documents {
                stmt.execute([doc.to_string()]).map_err(backend)?;
            }
            Ok(documents.len() as u64)
        })
        .await
    }

    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        let table = quoted(&org.collection_name);
        self.read(move |conn| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(backend)
        })
        .await
    }

    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError> {
        let key = key.to_owned();
        let now_s = now.timestamp();
        let cutoff = now_s - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        self.write(move |tx, _| {
            let (attempts, start): (i64, i64) = tx
                .query_row(
                    "INSERT INTO login_attempts (key, window_start, attempts) VALUES (?1, ?2, 1)
                     ON CONFLICT(key) DO UPDATE SET
                        attempts = CASE WHEN window_start <= ?3 THEN 1 ELSE MIN(attempts + 1, ?4) END,
                        window_start = CASE WHEN window_start <= ?3 THEN ?2 ELSE window_start END
                     RETURNING attempts, window_start",
                    params![key, now_s, cutoff, i64::from(limit) + 1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)?;
            Ok(AttemptWindow {
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
            })
        })
        .await
    }

    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |tx, _| {
            tx.execute("DELETE FROM login_attempts WHERE key = ?1", [key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn change_password(
        &self,
        admin_id: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        let (id, hash) = (admin_id.to_owned(), password_hash.to_owned());
        self.write(move |tx, _| end_sessions(tx, &id, Some(&hash)))
            .await
    }

    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let (id, old, new) = (
            admin_id.to_owned(),
            old_hash.to_owned(),
            new_hash.to_owned(),
        );
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE admins SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                params![id, old, new],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn revoke_sessions(&self, admin_id: &str) -> Result<i64, StoreError> {
        let id = admin_id.to_owned();
        self.write(move |tx, _| end_sessions(tx, &id, None)).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let t = token.clone();
        self.write(move |tx, _| {
            let revoked: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM revoked_families WHERE family_id = ?1)",
                    [&t.family_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if revoked {
                return Err(StoreError::NotFound);
            }
            tx.execute(
                "INSERT INTO refresh_tokens (hash, admin_id, family_id, expires_at, token_version) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.hash, t.admin_id, t.family_id, t.expires_at.timestamp(), t.token_version],
            )
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(err, _) if err.code == ErrorCode::ConstraintViolation => {
                    StoreError::NotFound
                }
                _ => backend(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError> {
        let hash = hash.to_owned();
        self.write(move |tx, _| {
            let row: Option<(String, String, i64, i64, i64)> = tx
                .query_row(
                    "SELECT admin_id, family_id, expires_at, spent, token_version FROM refresh_tokens WHERE hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((admin_id, family_id, expires_at, spent, token_version)) = row else {
                return Ok(RefreshSpend::Invalid);
            };
            let token = RefreshToken {
                hash: hash.clone(),
                admin_id,
                family_id,
                token_version,
                expires_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(now),
            };
            if spent != 0 {
                // A live token in the family is the successor of a won spend: this is a replay
                // after the win. None: the winner is still being answered.
                let successor: bool = tx
                    .query_row(
                        "SELECT EXISTS(SELECT 1 FROM refresh_tokens WHERE family_id = ?1 AND spent = 0)",
                        [&token.family_id],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                return Ok(if successor {
                    RefreshSpend::Reused(token)
                } else {
                    RefreshSpend::Contended
                });
            }
            if expires_at <= now.timestamp() {
                return Ok(RefreshSpend::Invalid);
            }
            tx.execute("UPDATE refresh_tokens SET spent = 1 WHERE hash = ?1", [&hash])
                .map_err(backend)?;
            Ok(RefreshSpend::Fresh(token))
        })
        .await
    }

    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let (scope, fingerprint) = (scope.to_owned(), fingerprint.to_owned());
        self.write(move |tx, _| idempotency::begin(tx, &scope, &fingerprint, running_ttl))
            .await
    }

    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let (scope, sealed) = (scope.to_owned(), sealed.to_vec());
        self.write(move |tx, _| idempotency::finish(tx, &scope, &sealed))
            .await
    }

    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        let scope = scope.to_owned();
        self.write(move |tx, _| idempotency::abandon(tx, &scope))
            .await
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), StoreError> {
        let family = family_id.to_owned();
        self.write(move |tx, _| {
            tx.execute(
                "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at) VALUES (?1, ?2)",
                params![family, Utc::now().timestamp()],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM refresh_tokens WHERE family_id = ?1", [&family])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
