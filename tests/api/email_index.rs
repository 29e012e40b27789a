//! MongoDB's email → account index (`account_emails`, see `src/storage/mongo/emails.rs`):
//! lookups by email read it by `_id`, so every account must be in it. Accounts made before it
//! are indexed at start-up, stragglers by the reconciler, and an entry whose account never came
//! keeps its email taken only until the reconciler frees it.

use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document};

use crate::helpers::*;

async fn master(app: &TestApp) -> mongodb::Database {
    let client = mongodb::Client::with_uri_str(mongo_url()).await.unwrap();
    client.database(&app.location.env["MASTER_DB_NAME"])
}

/// An account without its entry (made before the index, or by an instance of the previous
/// version): indexed once at the next start-up, and by any reconciler pass after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn accounts_missing_from_the_index_are_indexed() {
    let app = spawn_app(Backend::mongo()).await;
    app.given_org("Acme Corp", "a@acme.example").await;
    let db = master(&app).await;
    let emails = db.collection::<Document>("account_emails");
    let entry = emails
        .find_one(doc! { "_id": "a@acme.example" })
        .await
        .unwrap()
        .expect("the create indexed its account");
    let settings = db.collection::<Document>("settings");
    assert!(settings
        .find_one(doc! { "_id": "upgrade:account_emails" })
        .await
        .unwrap()
        .is_some());

    // A database from before the index: no entries and no record of the upgrade.
    emails.delete_many(doc! {}).await.unwrap();
    settings
        .delete_one(doc! { "_id": "upgrade:account_emails" })
        .await
        .unwrap();
    let location = std::sync::Arc::clone(&app.location);
    drop(app);
    let app = spawn_on(Backend::mongo(), location, &[]).await;
    assert_eq!(app.login("a@acme.example", PASSWORD).await.status(), 200);
    let again = emails
        .find_one(doc! { "_id": "a@acme.example" })
        .await
        .unwrap()
        .expect("indexed at start-up");
    assert_eq!(again.get_str("account_id"), entry.get_str("account_id"));
    app.assert_consistent(1).await;

    // A straggler after the upgrade: not found by email (and reported) until a pass.
    emails.delete_many(doc! {}).await.unwrap();
    assert_eq!(app.login("a@acme.example", PASSWORD).await.status(), 401);
    let problems = app.store.consistency_problems().await.unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("is not in the email index")),
        "{problems:?}"
    );
    let report = app.store.reconcile(Duration::ZERO).await.unwrap();
    assert!(
        report
            .repaired
            .iter()
            .any(|r| r == "indexed the emails of 1 accounts"),
        "{:?}",
        report.repaired
    );
    assert_eq!(app.login("a@acme.example", PASSWORD).await.status(), 200);
    app.assert_consistent(1).await;
}

/// An entry whose account was never made (a crash between the two inserts) keeps its email
/// taken, is reported, and is freed by the reconciler once older than the grace period; a
/// lookup never returns another account through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn an_entry_without_its_account_is_freed_by_the_reconciler() {
    let app = spawn_app(Backend::mongo()).await;
    app.given_org("Acme Corp", "a@acme.example").await;
    let db = master(&app).await;
    let emails = db.collection::<Document>("account_emails");
    let admin = db
        .collection::<Document>("admins")
        .find_one(doc! { "email": "a@acme.example" })
        .await
        .unwrap()
        .unwrap();
    let made = DateTime::from_millis(DateTime::now().timestamp_millis() - 60_000);
    // A ghost entry, and one that names a live account under another email.
    emails
        .insert_many([
            doc! { "_id": "ghost@acme.example", "account_id": "no-such-account", "created_at": made },
            doc! { "_id": "alias@acme.example", "account_id": admin.get_str("_id").unwrap(), "created_at": made },
        ])
        .await
        .unwrap();
    assert_eq!(
        app.login("alias@acme.example", PASSWORD).await.status(),
        401
    );
    assert_eq!(
        app.create_org("Ghost Corp", "ghost@acme.example", PASSWORD)
            .await
            .status(),
        409
    );
    let problems = app.store.consistency_problems().await.unwrap();
    for email in ["ghost@acme.example", "alias@acme.example"] {
        assert!(
            problems.contains(&format!("email index entry {email} has no account")),
            "{problems:?}"
        );
    }
    // Within the grace period the entries stay (a create may be between its two inserts).
    let report = app
        .store
        .reconcile(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(report.repaired.is_empty(), "{:?}", report.repaired);
    assert_eq!(emails.count_documents(doc! {}).await.unwrap(), 3);

    app.store.reconcile(Duration::from_secs(30)).await.unwrap();
    assert_eq!(emails.count_documents(doc! {}).await.unwrap(), 1);
    assert_eq!(
        app.create_org("Ghost Corp", "ghost@acme.example", PASSWORD)
            .await
            .status(),
        201
    );
    app.assert_consistent(2).await;
}
