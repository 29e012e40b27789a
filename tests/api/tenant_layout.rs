//! Where tenant documents live: on the embedded store one table for every tenant, keyed by the
//! organization's id (the schema does not grow with tenants; files of the older per-tenant
//! layout are folded in at start-up, once); on both stores a rename keeps a tenant's documents
//! and a delete takes them all, so a new organization of the same name starts empty.

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

fn schema_objects(path: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type || ' ' || name FROM sqlite_master ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Thirty organizations add nothing to the embedded schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_schema_does_not_grow_with_tenants() {
    let app = spawn_app_with(Backend::Embedded, &[("RATE_LIMITS", "off")]).await;
    let path = app.location.env["DATABASE_PATH"].clone();
    app.given_org("First Tenant", "first@t.example").await;
    let with_one = schema_objects(&path);
    assert!(
        with_one.iter().any(|o| o == "table tenant_documents"),
        "{with_one:?}"
    );
    for i in 0..30 {
        app.given_org(&format!("Tenant {i}"), &format!("t{i}@t.example"))
            .await;
    }
    assert_eq!(schema_objects(&path), with_one);
    app.assert_consistent(31).await;
}

/// A file of the older layout (a table `org_<slug>` per tenant) is folded into
/// `tenant_documents` at start-up: every document arrives, in order; a table no organization
/// owns is dropped; a second start-up changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_tables_of_an_older_file_are_folded_in_once() {
    let app = spawn_app(Backend::Embedded).await;
    app.given_org("Acme Corp", "a@acme.example").await;
    app.given_org("Empty Corp", "e@empty.example").await;
    let location = std::sync::Arc::clone(&app.location);
    drop(app);
    let path = location.env["DATABASE_PATH"].clone();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE org_acme_corp (id INTEGER PRIMARY KEY, document TEXT NOT NULL);
             INSERT INTO org_acme_corp (document) VALUES ('{\"n\":1}'), ('{\"n\":2}'), ('{\"n\":3}');
             CREATE TABLE org_empty_corp (id INTEGER PRIMARY KEY, document TEXT NOT NULL);
             CREATE TABLE org_ghost (id INTEGER PRIMARY KEY, document TEXT NOT NULL);
             INSERT INTO org_ghost (document) VALUES ('{\"lost\":true}');",
        )
        .unwrap();
    }
    let documents_in_order = |path: &str| -> Vec<String> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT d.document FROM tenant_documents d JOIN organizations o ON o.id = d.organization_id WHERE o.slug = 'acme_corp' ORDER BY d.id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };

    let app = spawn_on(Backend::Embedded, std::sync::Arc::clone(&location), &[]).await;
    let acme = app
        .store
        .organization_by_slug("acme_corp")
        .await
        .unwrap()
        .unwrap();
    let empty = app
        .store
        .organization_by_slug("empty_corp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.store.count_tenant_documents(&acme).await.unwrap(), 3);
    assert_eq!(app.store.count_tenant_documents(&empty).await.unwrap(), 0);
    assert_eq!(
        documents_in_order(&path),
        [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]
    );
    let objects = schema_objects(&path);
    assert!(
        !objects.iter().any(|o| o.starts_with("table org_")),
        "{objects:?}"
    );
    app.assert_consistent(2).await;
    drop(app);

    let app = spawn_on(Backend::Embedded, location, &[]).await;
    assert_eq!(app.store.count_tenant_documents(&acme).await.unwrap(), 3);
    assert_eq!(schema_objects(&path), objects);
    app.assert_consistent(2).await;
}

both_stores! {
    /// A rename keeps the tenant's documents; a delete removes them, so an organization
    /// created again under the same name starts with none.
    async fn rename_keeps_documents_and_delete_takes_them(backend: Backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMITS", "off")]).await;
        app.given_org("Doc Corp", "d@doc.example").await;
        app.given_org("Neighbour", "n@neighbour.example").await;
        let org = app.store.organization_by_slug("doc_corp").await.unwrap().unwrap();
        let neighbour = app.store.organization_by_slug("neighbour").await.unwrap().unwrap();
        let docs = (0..5).map(|i| json!({"n": i})).collect();
        assert_eq!(app.store.insert_tenant_documents(&org, docs).await.unwrap(), 5);
        app.store.insert_tenant_documents(&neighbour, vec![json!({"mine": true})]).await.unwrap();

        let token = app.token("d@doc.example", PASSWORD).await;
        let r = app.update_org(Some(&token), "Doc Corp Two", "d@doc.example", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let renamed = app.store.organization_by_slug("doc_corp_two").await.unwrap().unwrap();
        assert_eq!(app.store.count_tenant_documents(&renamed).await.unwrap(), 5);

        let token = app.token("d@doc.example", PASSWORD).await;
        assert_eq!(app.delete_org(Some(&token), "Doc Corp Two").await.status(), 204);
        app.assert_consistent(1).await;
        app.given_org("Doc Corp Two", "again@doc.example").await;
        let again = app.store.organization_by_slug("doc_corp_two").await.unwrap().unwrap();
        assert_eq!(app.store.count_tenant_documents(&again).await.unwrap(), 0);
        assert_eq!(app.store.count_tenant_documents(&neighbour).await.unwrap(), 1);
        app.assert_consistent(2).await;
    }
}

/// Shared layout: documents that an insert racing a delete lands after the purge are taken back
/// by the insert itself (it answers `Gone`), or, if that process died, swept by the reconciler
/// once the deletion's tombstone is past the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn documents_of_a_deleted_shared_tenant_do_not_survive() {
    use org_service::storage::StoreError;
    let app = spawn_app(Backend::mongo_shared()).await;
    app.given_org("Racing Corp", "r@racing.example").await;
    app.given_org("Calm Corp", "c@calm.example").await;
    let org = app
        .store
        .organization_by_slug("racing_corp")
        .await
        .unwrap()
        .unwrap();
    let calm = app
        .store
        .organization_by_slug("calm_corp")
        .await
        .unwrap()
        .unwrap();
    app.store
        .insert_tenant_documents(&calm, vec![json!({"keep": true})])
        .await
        .unwrap();
    let token = app.token("r@racing.example", PASSWORD).await;
    assert_eq!(
        app.delete_org(Some(&token), "Racing Corp").await.status(),
        204
    );

    // A late insert through the store notices and takes its documents back.
    let late = app
        .store
        .insert_tenant_documents(&org, vec![json!({"late": 1}), json!({"late": 2})])
        .await;
    assert!(matches!(late, Err(StoreError::Gone)), "{late:?}");
    app.assert_consistent(1).await;

    // One whose process died before that check: written behind the store's back.
    let client = mongodb::Client::with_uri_str(mongo_url()).await.unwrap();
    let shared = client
        .database(&app.location.env["MASTER_DB_NAME"])
        .collection::<mongodb::bson::Document>("tenant_documents");
    shared
        .insert_one(mongodb::bson::doc! { "organization_id": &org.id, "document": { "late": 3 } })
        .await
        .unwrap();
    let problems = app.store.consistency_problems().await.unwrap();
    assert_eq!(
        problems,
        [format!("documents of vanished organization {}", org.id)]
    );
    let report = app
        .store
        .reconcile(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(
        report.repaired.contains(&format!(
            "deleted 1 documents of deleted organization {}",
            org.id
        )),
        "{report:?}"
    );
    app.assert_consistent(1).await;
    assert_eq!(
        shared
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap(),
        1,
        "the other tenant's document stays"
    );
    assert_eq!(app.store.count_tenant_documents(&calm).await.unwrap(), 1);
}
