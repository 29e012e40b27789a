//! Issue 9, races between requests on one organization: the same documented outcome on both
//! stores (never an undocumented 404 or 409), locks that do not outlive a store pause.

use std::collections::BTreeSet;

use crate::both_stores;
use crate::helpers::*;

/// The statuses `/openapi.json` documents for `method path`.
async fn documented(app: &TestApp, method: &str, path: &str) -> BTreeSet<u16> {
    let doc = app.openapi().await;
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

both_stores! {
    /// A rename racing a delete, and deletes racing each other: every answer is documented,
    /// exactly one delete wins, and the losers learn that their token died (401).
    async fn racing_renames_and_deletes_answer_documented_statuses(backend: Backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMITS", "off")]).await;
        let rename_ok = documented(&app, "put", "/org/update").await;
        let delete_ok = documented(&app, "delete", "/org/delete").await;
        for round in 0..4 {
            let name = format!("Race {round}");
            let email = format!("r{round}@race.example");
            app.given_org(&name, &email).await;
            let token = app.token(&email, PASSWORD).await;
            let new_name = format!("Raced {round}");
            let (renamed, deleted) = tokio::join!(
                app.update_org(Some(&token), &new_name, &email, PASSWORD),
                app.delete_org(Some(&token), &name),
            );
            let (r, d) = (renamed.status().as_u16(), deleted.status().as_u16());
            assert!(rename_ok.contains(&r) && matches!(r, 200 | 401), "round {round}: rename {r}");
            assert!(delete_ok.contains(&d) && matches!(d, 204 | 403), "round {round}: delete {d}");

            let name = format!("Twice {round}");
            let email = format!("t{round}@twice.example");
            app.given_org(&name, &email).await;
            let token = app.token(&email, PASSWORD).await;
            let deletes = futures::future::join_all((0..4).map(|_| app.delete_org(Some(&token), &name))).await;
            let mut statuses: Vec<u16> = deletes.iter().map(|r| r.status().as_u16()).collect();
            statuses.sort_unstable();
            assert_eq!(statuses, [204, 401, 401, 401], "round {round}");
        }
        let problems = app.store.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

/// The statuses of a rename that found its organization deleted and of a losing delete are in
/// the document, with the same meaning on both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_401_and_503_for_rename_and_delete() {
    let app = spawn_app(Backend::Embedded).await;
    for (method, path) in [("put", "/org/update"), ("delete", "/org/delete")] {
        let statuses = documented(&app, method, path).await;
        assert!(
            statuses.contains(&401) && statuses.contains(&503),
            "{method} {path}: {statuses:?}"
        );
        assert!(
            !statuses.contains(&404),
            "{method} {path}: 404 is not an outcome"
        );
    }
}

/// Creates through one instance while another, its clock five minutes ahead, reconciles every
/// second: every organization answered 201 exists afterwards, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_fast_clock_elsewhere_undoes_no_live_create() {
    let location = StoreLocation::fresh(&Backend::mongo());
    let creator = start_service(&location, &[("RATE_LIMITS", "off")]).await;
    let reconciler = start_service(
        &location,
        &[
            ("ORG_SERVICE_CLOCK_SKEW_SECONDS", "300"),
            ("RECONCILE_INTERVAL_SECONDS", "1"),
            ("RECONCILE_GRACE_SECONDS", "12"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let mut created = Vec::new();
    for batch in 0..6 {
        let requests = (0..8).map(|i| {
            let name = format!("Skew {batch} {i}");
            client
                .post(creator.url("/org/create"))
                .json(&serde_json::json!({"organization_name": name, "email": format!("s{batch}x{i}@skew.example"), "password": PASSWORD}))
                .send()
        });
        for (i, r) in futures::future::join_all(requests)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.unwrap().status(), 201);
            created.push(format!("Skew {batch} {i}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for name in &created {
        let r = client
            .get(reconciler.url("/org/get"))
            .query(&[("organization_name", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} was undone");
    }
    let problems = location.store().await.consistency_problems().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    creator.kill().await;
    reconciler.kill().await;
}

/// A lock whose lease ended (its holder died, or a store pause swallowed the release) is taken
/// over at once; a live lock makes the other operation wait, then answer 503, never 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn expired_locks_are_taken_over_and_live_ones_give_503() {
    use mongodb::bson::{doc, DateTime, Document};
    let app = spawn_app_with(Backend::mongo(), &[("STORE_TIMEOUT_SECONDS", "1")]).await;
    let org = app.given_org("Locked Out", "l@locked.example").await;
    let id = org["organization_id"].as_str().unwrap().to_owned();
    let token = app.token("l@locked.example", PASSWORD).await;
    let env = &app.location.env;
    let client = mongodb::Client::with_uri_str(&env["MONGODB_URL"])
        .await
        .unwrap();
    let reservations = client
        .database(&env["MASTER_DB_NAME"])
        .collection::<Document>("reservations");
    let lock = |expires: DateTime| doc! { "_id": format!("lock:{id}"), "organization_id": &id, "holder": "someone-else", "created_at": expires, "expires_at": expires };

    let now = DateTime::now().timestamp_millis();
    reservations
        .insert_one(lock(DateTime::from_millis(now + 60_000)))
        .await
        .unwrap();
    let r = app
        .update_org(Some(&token), "Locked Out Two", "l@locked.example", PASSWORD)
        .await;
    assert_eq!(r.status(), 503, "a held lock is a documented 503");
    assert!(r.headers().get("retry-after").is_some());

    reservations
        .delete_one(doc! { "_id": format!("lock:{id}") })
        .await
        .unwrap();
    reservations
        .insert_one(lock(DateTime::from_millis(now - 1_000)))
        .await
        .unwrap();
    let r = app
        .update_org(Some(&token), "Locked Out Two", "l@locked.example", PASSWORD)
        .await;
    assert_eq!(r.status(), 200, "an expired lock is taken over");
    assert_eq!(
        app.delete_org(Some(&token), "Locked Out Two")
            .await
            .status(),
        204
    );
    app.assert_consistent(0).await;
}
