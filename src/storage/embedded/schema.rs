//! The embedded store's schema, and the steps that bring a file made by an older version to it.
//! Every step runs in the one start-up transaction: a crash half-way leaves the old file as it
//! was, and the next start-up runs the step again.

use rusqlite::{params, Connection, Transaction};

use super::codec::backend;
use crate::domain::{is_tenant_collection, new_id};
use crate::storage::StoreError;

pub(super) const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS tenant_documents (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    id              TEXT NOT NULL,
    document        TEXT NOT NULL,
    PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    sealed      BLOB
);
";

/// Adds the `skeleton` column (the confusable skeleton of the slug, unique) to a database made
/// before it existed, filling it in for every organization. Two existing organizations whose
/// names look alike keep working; the younger one is left without a skeleton (and logged), so
/// only new names are held to the rule.
pub(super) fn add_skeletons(tx: &Transaction<'_>) -> Result<(), StoreError> {
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

/// Moves the documents of every per-tenant table (`org_<slug>`, the layout before
/// `tenant_documents`) into `tenant_documents`, in their order, and drops the table. A table
/// no organization owns (a hand-edited file) is dropped with its rows. Returns how many tables
/// were folded in; zero once done, so this costs one schema lookup per start-up.
pub(super) fn fold_tenant_tables(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    let tables = tenant_tables(tx)?;
    for table in &tables {
        let owner: Option<String> = tx
            .query_row(
                "SELECT id FROM organizations WHERE collection_name = ?1",
                [table],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(backend)?;
        let mut moved = 0_u64;
        if let Some(owner) = &owner {
            let mut read = tx
                .prepare(&format!(
                    "SELECT document FROM {} ORDER BY id",
                    quoted(table)
                ))
                .map_err(backend)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO tenant_documents (organization_id, id, document) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?;
            let mut rows = read.query([]).map_err(backend)?;
            // ObjectIds made one after another ascend, so the documents keep their order.
            while let Some(row) = rows.next().map_err(backend)? {
                let document: String = row.get(0).map_err(backend)?;
                insert
                    .execute(params![owner, new_id(), document])
                    .map_err(backend)?;
                moved += 1;
            }
        }
        tx.execute_batch(&format!("DROP TABLE {}", quoted(table)))
            .map_err(backend)?;
        match owner {
            Some(owner) => {
                tracing::info!(table = %table, organization_id = %owner, documents = moved, "tenant table folded into tenant_documents")
            }
            None => tracing::warn!(table = %table, "dropped a tenant table no organization owns"),
        }
    }
    Ok(tables.len())
}

pub(super) fn tenant_tables(conn: &Connection) -> Result<Vec<String>, StoreError> {
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

/// Quotes a tenant table name. Names come only from [`OrgName::collection_name`] (letters,
/// digits, `_`), and the assertion keeps any other caller honest.
fn quoted(table: &str) -> String {
    assert!(is_tenant_collection(table), "not a tenant table: {table:?}");
    format!("\"{table}\"")
}
