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
CREATE TABLE IF NOT EXISTS accounts (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    token_version   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at       TEXT NOT NULL,
    PRIMARY KEY (organization_id, account_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_account ON memberships (account_id, joined_at);
CREATE INDEX IF NOT EXISTS memberships_joined ON memberships (organization_id, joined_at, account_id);
CREATE INDEX IF NOT EXISTS memberships_role ON memberships (organization_id, role, joined_at);
CREATE TABLE IF NOT EXISTS invitations (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    role            TEXT NOT NULL,
    status          TEXT NOT NULL,
    valid_hours     INTEGER NOT NULL,
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    invited_by      TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    accepted_by     TEXT
);
CREATE INDEX IF NOT EXISTS invitations_created ON invitations (organization_id, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS invitations_pending ON invitations (organization_id, email) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS invitation_tokens (
    hash          TEXT PRIMARY KEY,
    invitation_id TEXT NOT NULL REFERENCES invitations(id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invitation_tokens_invitation ON invitation_tokens (invitation_id);
CREATE TABLE IF NOT EXISTS api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('member', 'viewer')),
    prefix          TEXT NOT NULL UNIQUE,
    key_hash        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT,
    created_by      TEXT NOT NULL,
    last_used_at    TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_organization ON api_keys (organization_id, created_at, id);
CREATE TABLE IF NOT EXISTS audit_events (
    organization_id   TEXT NOT NULL,
    sequence          INTEGER NOT NULL,
    id                TEXT NOT NULL UNIQUE,
    organization_slug TEXT NOT NULL,
    action            TEXT NOT NULL,
    actor_id          TEXT NOT NULL,
    occurred_at       TEXT NOT NULL,
    hash              TEXT NOT NULL,
    event             TEXT NOT NULL,
    PRIMARY KEY (organization_id, sequence)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (organization_id, action, sequence);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (organization_id, actor_id, sequence);
CREATE INDEX IF NOT EXISTS audit_events_slug ON audit_events (organization_slug);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at);
CREATE TABLE IF NOT EXISTS audit_anchors (
    organization_id TEXT PRIMARY KEY,
    sequence        INTEGER NOT NULL,
    hash            TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       TEXT PRIMARY KEY,
    admin_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS refresh_tokens_admin ON refresh_tokens (admin_id, organization_id);
CREATE TABLE IF NOT EXISTS login_attempts (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_documents (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    id              TEXT NOT NULL,
    document        TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT,
    updated_at      TEXT,
    PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    sealed      BLOB
);
";

/// Whether the file has a table of this name.
fn has_table(tx: &Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Before [`SCHEMA`]: moves a file made before teams aside. There, `admins` held one admin per
/// organization and `refresh_tokens` pointed at it; the old tables are renamed so that
/// [`SCHEMA`] creates the new ones, and [`adopt_admins`] fills them. Returns whether there was
/// anything to move.
pub(super) fn set_aside_admins(tx: &Transaction<'_>) -> Result<bool, StoreError> {
    if !has_table(tx, "admins")? {
        return Ok(false);
    }
    if has_table(tx, "refresh_tokens")? {
        tx.execute_batch(
            "DROP INDEX IF EXISTS refresh_tokens_family;
             DROP INDEX IF EXISTS refresh_tokens_admin;
             ALTER TABLE refresh_tokens RENAME TO refresh_tokens_before_teams;",
        )
        .map_err(backend)?;
    }
    Ok(true)
}

/// After [`SCHEMA`], for a file [`set_aside_admins`] moved aside: each admin becomes an account
/// with an `owner` membership of its organization (joined when the admin was made), its refresh
/// tokens carry on for that organization, and the old tables go. One transaction with the rest
/// of start-up: a crash leaves the old file, and the next start-up runs this again.
pub(super) fn adopt_admins(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "INSERT INTO accounts (id, email, password_hash, token_version, created_at)
             SELECT id, email, password_hash, token_version, created_at FROM admins;
         INSERT INTO memberships (organization_id, account_id, role, joined_at)
             SELECT organization_id, id, 'owner', created_at FROM admins
             WHERE organization_id IN (SELECT id FROM organizations);",
    )
    .map_err(backend)?;
    if has_table(tx, "refresh_tokens_before_teams")? {
        tx.execute_batch(
            "INSERT INTO refresh_tokens (hash, admin_id, organization_id, family_id, expires_at, token_version, spent)
                 SELECT r.hash, r.admin_id, a.organization_id, r.family_id, r.expires_at, r.token_version, r.spent
                 FROM refresh_tokens_before_teams r JOIN admins a ON a.id = r.admin_id;
             DROP TABLE refresh_tokens_before_teams;",
        )
        .map_err(backend)?;
    }
    tx.execute_batch("DROP TABLE admins").map_err(backend)?;
    let adopted: i64 = tx
        .query_row("SELECT COUNT(*) FROM memberships", [], |r| r.get(0))
        .map_err(backend)?;
    tracing::info!(
        owners = adopted,
        "admins became accounts with owner memberships"
    );
    Ok(())
}

/// Adds the `version`, `created_at` and `updated_at` columns of the documents API to a file
/// made before it. Existing documents are version 1; their times are read from their ids.
pub(super) fn add_document_versions(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let has_column: bool = tx
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('tenant_documents') WHERE name = 'version')",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if !has_column {
        tx.execute_batch(
            "ALTER TABLE tenant_documents ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
             ALTER TABLE tenant_documents ADD COLUMN created_at TEXT;
             ALTER TABLE tenant_documents ADD COLUMN updated_at TEXT;",
        )
        .map_err(backend)?;
    }
    Ok(())
}

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
