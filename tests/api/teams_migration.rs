//! Existing data migrates: each admin made before teams becomes an account with an `owner`
//! membership, at start-up, once; its password, its refresh token and the original's
//! single-admin flows keep working.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// A file as the version before teams made it: one organization, its admin, a refresh token.
const BEFORE_TEAMS: &str = "
CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL, slug TEXT NOT NULL UNIQUE,
    collection_name TEXT NOT NULL UNIQUE, admin_email TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT, skeleton TEXT);
CREATE UNIQUE INDEX organizations_skeleton ON organizations (skeleton);
CREATE TABLE admins (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
    organization_id TEXT NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    token_version INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE refresh_tokens (hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE, family_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL, token_version INTEGER NOT NULL, spent INTEGER NOT NULL DEFAULT 0);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_admin ON refresh_tokens (admin_id);
CREATE TABLE tenant_documents (organization_id TEXT NOT NULL REFERENCES organizations(id),
    id TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (organization_id, id)) WITHOUT ROWID;
";

const ORG: &str = "65a1b2c3d4e5f6a7b8c9d0e1";
const ADMIN: &str = "65a1b2c3d4e5f6a7b8c9d0e2";
const OLD_REFRESH: &str = "ort_made_before_teams";

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an admin of before can do after: log in as the owner, refresh the old token, rename.
async fn the_old_admin_is_the_owner(app: &TestApp) {
    let r = app.login("old@legacy.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let login = json_body(r).await;
    assert_eq!(
        (login["admin_id"].as_str(), login["role"].as_str()),
        (Some(ADMIN), Some("owner"))
    );
    assert_eq!(login["organization_id"], ORG);
    let token = login["access_token"].as_str().unwrap().to_owned();
    let me = json_body(app.call(Method::GET, "/admin/me", &token, None).await).await;
    assert_eq!(me["organizations"].as_array().unwrap().len(), 1);
    let members = app.members(&token).await;
    assert_eq!(members.len(), 1);
    assert_eq!(
        members[0]["joined_at"], "2025-01-02T03:04:05.000Z",
        "joined when the admin was made"
    );
    assert_eq!(
        json_body(app.get_org("Legacy").await).await["admin_email"],
        "old@legacy.com"
    );
    assert_eq!(
        app.update_org(Some(&token), "Legacy Two", "old@legacy.com", PASSWORD)
            .await
            .status(),
        200
    );
    app.assert_consistent(1).await;
}

/// Embedded: the start-up transaction turns `admins` into accounts and owner memberships and
/// carries refresh tokens over; the old tables are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_file_from_before_teams_migrates() {
    let location = Arc::new(StoreLocation::fresh(&Backend::Embedded));
    let path = location.env["DATABASE_PATH"].clone();
    std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(BEFORE_TEAMS).unwrap();
        let created = "2025-01-02T03:04:05.000000Z";
        conn.execute(
            "INSERT INTO organizations (id, name, slug, collection_name, admin_email, created_at, skeleton) VALUES (?1, 'Legacy', 'legacy', 'org_legacy', 'old@legacy.com', ?2, 'legacy')",
            rusqlite::params![ORG, created],
        ).unwrap();
        conn.execute(
            "INSERT INTO admins (id, email, password_hash, organization_id, created_at) VALUES (?1, 'old@legacy.com', ?2, ?3, ?4)",
            rusqlite::params![ADMIN, bcrypt::hash(PASSWORD, 4).unwrap(), ORG, created],
        ).unwrap();
        conn.execute(
            "INSERT INTO refresh_tokens (hash, admin_id, family_id, expires_at, token_version) VALUES (?1, ?2, 'f', ?3, 0)",
            rusqlite::params![sha256_hex(OLD_REFRESH), ADMIN, chrono::Utc::now().timestamp() + 3600],
        ).unwrap();
    }
    let app = spawn_on(Backend::Embedded, Arc::clone(&location), &[]).await;
    let r = app
        .post_json("/admin/refresh", &json!({"refresh_token": OLD_REFRESH}))
        .await;
    assert_eq!(r.status(), 200, "a refresh token of before still works");
    assert_eq!(json_body(r).await["organization_name"], "Legacy");
    the_old_admin_is_the_owner(&app).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('admins', 'refresh_tokens_before_teams')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(old, 0);
}

/// MongoDB: the first start-up gives each admin an owner membership (idempotent inserts behind
/// an upgrade record); a second start-up does it no more and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_mongodb_database_from_before_teams_migrates() {
    use mongodb::bson::{doc, DateTime, Document};
    let location = Arc::new(StoreLocation::fresh(&Backend::mongo()));
    let client = mongodb::Client::with_uri_str(mongo_url()).await.unwrap();
    let db = client.database(&location.env["MASTER_DB_NAME"]);
    let created = DateTime::parse_rfc3339_str("2025-01-02T03:04:05Z").unwrap();
    db.collection::<Document>("organizations")
        .insert_one(doc! {
            "_id": ORG, "name": "Legacy", "slug": "legacy", "skeleton": "legacy",
            "collection_name": "org_legacy", "admin_email": "old@legacy.com",
            "created_at": created, "updated_at": null, "state": "active", "since": created,
        })
        .await
        .unwrap();
    for key in ["slug:legacy", "skeleton:legacy"] {
        db.collection::<Document>("reservations")
            .insert_one(doc! { "_id": key, "organization_id": ORG, "created_at": created })
            .await
            .unwrap();
    }
    db.create_collection("org_legacy").await.unwrap();
    db.collection::<Document>("admins")
        .insert_one(doc! {
            "_id": ADMIN, "email": "old@legacy.com", "password_hash": bcrypt::hash(PASSWORD, 4).unwrap(),
            "organization_id": ORG, "token_version": 0_i64, "created_at": created,
        })
        .await
        .unwrap();
    let app = spawn_on(Backend::mongo(), Arc::clone(&location), &[]).await;
    the_old_admin_is_the_owner(&app).await;
    let memberships = db.collection::<Document>("memberships");
    assert_eq!(memberships.count_documents(doc! {}).await.unwrap(), 1);
    let record = db
        .collection::<Document>("settings")
        .find_one(doc! { "_id": "upgrade:memberships" })
        .await
        .unwrap();
    assert!(record.is_some(), "the upgrade is recorded");
    // Once: a membership removed behind its back is not made again by the next start-up.
    memberships.delete_many(doc! {}).await.unwrap();
    let again = spawn_on(Backend::mongo(), location, &[]).await;
    assert_eq!(memberships.count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(again.login("old@legacy.com", PASSWORD).await.status(), 401);
}
