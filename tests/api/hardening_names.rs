//! Issue 9, names that deceive: invisible and reordering characters are refused, and names that
//! look alike (the same Unicode TS #39 skeleton) are one organization, on both stores.

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// Zero-width, bidirectional-override, soft-hyphen, separator and C1 control characters
    /// are a 422 naming the field; nothing is created.
    async fn invisible_characters_in_names_are_refused(backend: Backend) {
        let app = spawn_app(backend).await;
        for (i, name) in ["Acme\u{200B}Corp", "Acme\u{202E}proC", "Acme\u{2028}Corp", "Acme\u{0085}Corp", "Acme\u{00AD}Corp"].iter().enumerate() {
            let r = app.create_org(name, &format!("i{i}@invisible.example"), PASSWORD).await;
            assert_422_on(r, "organization_name").await;
        }
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// `Аcme Corp` with a Cyrillic `А` is `Acme Corp`: 409 on create and on a rename to it; a
    /// rename of an organization to a look-alike of its own name is fine.
    async fn look_alike_names_are_the_same_organization(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme Corp", "a@acme.example").await;
        let r = app.create_org("\u{0410}cme Corp", "evil@acme.example", PASSWORD).await;
        assert_eq!(r.status(), 409, "a Cyrillic look-alike was accepted");
        let r = app.create_org("\u{0391}cme Corp", "evil@acme.example", PASSWORD).await;
        assert_eq!(r.status(), 409, "a Greek look-alike was accepted");
        let r = app.create_org("Acrne Corp", "evil@acme.example", PASSWORD).await;
        assert_eq!(r.status(), 409, "rn for m was accepted");

        app.given_org("Other", "o@other.example").await;
        let token = app.token("o@other.example", PASSWORD).await;
        let r = app.update_org(Some(&token), "\u{0410}cme Corp", "o@other.example", PASSWORD).await;
        assert_eq!(r.status(), 409, "rename to another's look-alike");
        // Its own look-alike: a new slug, the same skeleton.
        let token = app.token("a@acme.example", PASSWORD).await;
        let r = app.update_org(Some(&token), "\u{0410}cme Corp", "a@acme.example", PASSWORD).await;
        assert_eq!(r.status(), 200);
        // And back, and then away: the old look-alike claim is released.
        let r = app.update_org(Some(&token), "Fresh Name", "a@acme.example", PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.create_org("Acme Corp", "new@acme.example", PASSWORD).await.status(), 201);
        app.assert_consistent(3).await;
    }
}

/// A database made before skeletons existed gets them at start-up: its organizations keep
/// working and new look-alikes of them are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_embedded_database_gains_skeletons() {
    let app = spawn_app(Backend::Embedded).await;
    app.given_org("Acme Corp", "a@acme.example").await;
    let location = std::sync::Arc::clone(&app.location);
    drop(app);
    {
        let conn = rusqlite::Connection::open(&location.env["DATABASE_PATH"]).unwrap();
        conn.execute_batch(
            "DROP INDEX organizations_skeleton; ALTER TABLE organizations DROP COLUMN skeleton;",
        )
        .unwrap();
    }
    let app = spawn_on(Backend::Embedded, location, &[]).await;
    assert_eq!(app.get_org("Acme Corp").await.status(), 200);
    assert_eq!(
        app.create_org("\u{0410}cme Corp", "e@acme.example", PASSWORD)
            .await
            .status(),
        409
    );
    app.assert_consistent(1).await;
}

/// The same on MongoDB: a database from before skeletons (no skeleton, no claim, no record of
/// the backfill) gets them at the next start-up, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn an_older_mongodb_database_gains_skeletons() {
    use mongodb::bson::{doc, Document};
    let app = spawn_app(Backend::mongo()).await;
    app.given_org("Acme Corp", "a@acme.example").await;
    let location = std::sync::Arc::clone(&app.location);
    drop(app);
    let client = mongodb::Client::with_uri_str(mongo_url()).await.unwrap();
    let db = client.database(&location.env["MASTER_DB_NAME"]);
    db.collection::<Document>("organizations")
        .update_many(doc! {}, doc! { "$unset": { "skeleton": "" } })
        .await
        .unwrap();
    db.collection::<Document>("reservations")
        .delete_many(doc! { "_id": { "$regex": "^skeleton:" } })
        .await
        .unwrap();
    let settings = db.collection::<Document>("settings");
    let removed = settings
        .delete_one(doc! { "_id": "upgrade:skeletons" })
        .await
        .unwrap();
    assert_eq!(
        removed.deleted_count, 1,
        "the first start-up recorded the backfill"
    );

    let app = spawn_on(Backend::mongo(), location, &[]).await;
    assert_eq!(app.get_org("Acme Corp").await.status(), 200);
    assert_eq!(
        app.create_org("\u{0410}cme Corp", "e@acme.example", PASSWORD)
            .await
            .status(),
        409
    );
    assert!(settings
        .find_one(doc! { "_id": "upgrade:skeletons" })
        .await
        .unwrap()
        .is_some());
    app.assert_consistent(1).await;
}

both_stores! {
    /// Any name the document allows is accepted: 100 characters of a three-byte script get a
    /// collection name cut to 120 bytes and ended with a hash, and it renames and deletes.
    async fn long_names_in_any_script_get_a_bounded_collection(backend: Backend) {
        let app = spawn_app(backend).await;
        let name = "日".repeat(100);
        let r = app.create_org(&name, "wide@wide.example", PASSWORD).await;
        assert_eq!(r.status(), 201);
        let collection = json_body(r).await["collection_name"].as_str().unwrap().to_owned();
        assert!(collection.len() <= 120 && collection.starts_with("org_日"), "{collection}");
        assert_eq!(app.get_org(&name).await.status(), 200);
        let token = app.token("wide@wide.example", PASSWORD).await;
        let renamed = format!("{}月", "日".repeat(99));
        assert_eq!(app.update_org(Some(&token), &renamed, "wide@wide.example", PASSWORD).await.status(), 200);
        app.assert_consistent(1).await;
        assert_eq!(app.delete_org(Some(&token), &renamed).await.status(), 204);
        app.assert_consistent(0).await;
    }
}
