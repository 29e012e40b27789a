//! `org-service migrate --tenant-layout` on MongoDB (FerretDB): every document arrives, once;
//! SIGKILL at any point of the move and a second run finishes it; it refuses while an instance
//! serves; an instance refuses to start on a database in another layout or half-way through a
//! move.

use std::process::Stdio;
use std::time::Duration;

use org_service::domain::{new_id, Email, NewOrganization, OrgName};
use org_service::failpoint::{LAYOUT, REACHED};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::helpers::*;

/// Tenants and their document counts: one over a copy batch, one empty, one small.
const TENANTS: &[(&str, usize)] = &[("Big Docs", 2_300), ("No Docs", 0), ("Few Docs", 7)];

fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "_")
}

/// A database in the collection layout holding [`TENANTS`].
async fn seeded() -> StoreLocation {
    let location = StoreLocation::fresh(&Backend::mongo());
    let store = location.store().await;
    for (i, (name, docs)) in TENANTS.iter().enumerate() {
        let org = store
            .create_organization(
                &NewOrganization {
                    id: new_id(),
                    admin_id: new_id(),
                    name: OrgName::parse(name).unwrap(),
                    admin_email: Email::parse(&format!("admin{i}@docs.example")).unwrap(),
                    password_hash: Some(bcrypt::hash(PASSWORD, 4).unwrap()),
                    created_at: chrono::Utc::now(),
                },
                &[],
            )
            .await
            .unwrap();
        let documents = (0..*docs)
            .map(|n| json!({"n": n, "organization_id": "not ours"}))
            .collect();
        store
            .insert_tenant_documents(&org, documents)
            .await
            .unwrap();
    }
    location
}

/// Every tenant has exactly its documents in `layout`, each once, and the store is consistent.
async fn assert_whole(location: &StoreLocation, layout: &str) {
    let store = location.store_with(&[("TENANT_LAYOUT", layout)]).await;
    for (name, docs) in TENANTS {
        let org = store
            .organization_by_slug(&slug(name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.count_tenant_documents(&org).await.unwrap(),
            *docs as u64,
            "{name} in {layout}"
        );
    }
    let problems = store.consistency_problems().await.unwrap();
    assert!(problems.is_empty(), "{layout}: {problems:?}");
    let client = mongodb::Client::with_uri_str(mongo_url()).await.unwrap();
    let db = client.database(&location.env["MASTER_DB_NAME"]);
    let collections = db.list_collection_names().await.unwrap();
    let tenant_collections = collections.iter().filter(|c| c.starts_with("org_")).count();
    let shared = db.collection::<mongodb::bson::Document>("tenant_documents");
    let in_shared = shared
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    let total: u64 = TENANTS.iter().map(|(_, d)| *d as u64).sum();
    match layout {
        "shared" => {
            assert_eq!(tenant_collections, 0, "{collections:?}");
            assert_eq!(in_shared, total);
            // The tenant's own keys stay its own: ours is outside its document.
            let one = shared
                .find_one(mongodb::bson::doc! {})
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                one.get_document("document")
                    .unwrap()
                    .get_str("organization_id")
                    .unwrap(),
                "not ours"
            );
        }
        _ => {
            assert_eq!(tenant_collections, TENANTS.len(), "{collections:?}");
            assert_eq!(in_shared, 0);
        }
    }
}

/// Runs `org-service migrate --tenant-layout <to>` to the end; returns (success, output).
async fn migrate_layout(
    location: &StoreLocation,
    to: &str,
    overrides: &[(&str, &str)],
) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .args(["migrate", "--grace-seconds", "0", "--tenant-layout", to])
        .env_clear()
        .envs(location.env_with(overrides))
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts the migration with a crash point and kills it there.
async fn kill_migration_at(location: &StoreLocation, to: &str, point: &str) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .args(["migrate", "--tenant-layout", to])
        .env_clear()
        .envs(location.env_with(&[("ORG_SERVICE_FAILPOINTS", point)]))
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let marker = format!("{REACHED} {point}");
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(&marker) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "{point}: the migration did not reach its crash point"
    );
    child.kill().await.unwrap();
}

/// Collection → shared → collection: every document, once, in each layout; the service then
/// serves in the new layout, and refuses the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_deployment_moves_between_layouts_with_every_document() {
    let location = seeded().await;
    assert_whole(&location, "collection").await;

    let (ok, out) = migrate_layout(&location, "shared", &[]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("tenant layout collection -> shared: 3 tenants, 2307 documents copied"),
        "{out}"
    );
    assert!(out.contains("set TENANT_LAYOUT=shared"), "{out}");
    assert_whole(&location, "shared").await;
    // Again: nothing to do.
    let (ok, out) = migrate_layout(&location, "shared", &[("TENANT_LAYOUT", "shared")]).await;
    assert!(ok && out.contains("0 tenants, 0 documents"), "{out}");

    let mut service = start_service(&location, &[("TENANT_LAYOUT", "shared")]).await;
    let r = reqwest::get(service.url("/org/get?organization_name=Big%20Docs"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Stopped gracefully, it signs off (killed, its presence would hold moves off for minutes).
    service.signal("TERM");
    assert!(service.wait().await.success());
    let refused = start_refused(&location, &[("TENANT_LAYOUT", "collection")]).await;
    assert!(
        refused.contains("shared layout but TENANT_LAYOUT=collection"),
        "{refused}"
    );
    assert!(
        refused.contains("migrate --tenant-layout collection"),
        "{refused}"
    );

    let (ok, out) = migrate_layout(&location, "collection", &[("TENANT_LAYOUT", "shared")]).await;
    assert!(ok, "{out}");
    assert_whole(&location, "collection").await;
}

/// SIGKILL at each crash point of a move: instances refuse to start until the move is run
/// again, which finishes it with every document once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_killed_layout_move_is_finished_by_running_it_again() {
    for point in LAYOUT {
        let location = seeded().await;
        kill_migration_at(&location, "shared", point).await;
        for layout in ["collection", "shared"] {
            let refused = start_refused(&location, &[("TENANT_LAYOUT", layout)]).await;
            assert!(
                refused.contains("from collection to shared is unfinished"),
                "{point}: {refused}"
            );
        }
        let (ok, out) = migrate_layout(&location, "collection", &[]).await;
        assert!(
            !ok && out.contains("finish it with `org-service migrate --tenant-layout shared`"),
            "{point}: {out}"
        );
        let (ok, out) = migrate_layout(&location, "shared", &[]).await;
        assert!(ok, "{point}: {out}");
        assert_whole(&location, "shared").await;

        kill_migration_at(&location, "collection", point).await;
        let (ok, out) =
            migrate_layout(&location, "collection", &[("TENANT_LAYOUT", "shared")]).await;
        assert!(ok, "{point}: {out}");
        assert_whole(&location, "collection").await;
    }
}

/// While an instance serves, a move refuses and changes nothing; once it has stopped (and
/// signed off), the move runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_layout_move_refuses_while_an_instance_serves() {
    let location = seeded().await;
    let mut service = start_service(&location, &[]).await;
    let (ok, out) = migrate_layout(&location, "shared", &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("1 instance(s) serve this database"), "{out}");
    assert_whole(&location, "collection").await;
    let r = reqwest::get(service.url("/org/get?organization_name=Few%20Docs"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the instance serves on");

    service.signal("TERM");
    assert!(service.wait().await.success());
    let (ok, out) = migrate_layout(&location, "shared", &[]).await;
    assert!(ok, "{out}");
    assert_whole(&location, "shared").await;
}

/// Starts the service expecting it to refuse; returns what it printed.
async fn start_refused(location: &StoreLocation, overrides: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .env_clear()
        .envs(location.env_with(overrides))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "the service started");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
