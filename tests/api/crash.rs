//! Nothing half-made: SIGKILL at every crash point inside create, rename and delete, restart,
//! and the store holds whole organizations only (each with exactly its admin and collection),
//! with no orphan admin, collection or reservation.

use std::time::Duration;

use org_service::domain::{new_id, Email, NewOrganization, OrgName};
use org_service::failpoint::{ALL, AUDIT, REACHED};
use serde_json::json;

use crate::helpers::*;

/// An organization with ten documents and an API key; returns its id.
async fn seed(location: &StoreLocation, name: &str, email: &str) -> String {
    let store = location.store().await;
    let org = store
        .create_organization(
            &NewOrganization {
                id: new_id(),
                admin_id: new_id(),
                name: OrgName::parse(name).unwrap(),
                admin_email: Email::parse(email).unwrap(),
                password_hash: Some(bcrypt::hash(PASSWORD, 4).unwrap()),
                created_at: chrono::Utc::now(),
            },
            &[],
        )
        .await
        .unwrap();
    store
        .insert_tenant_documents(&org, (0..10).map(|i| json!({"n": i})).collect())
        .await
        .unwrap();
    let (_, prefix, hash) = org_service::domain::generate_key();
    let key = org_service::domain::ApiKey {
        id: new_id(),
        organization_id: org.id.clone(),
        name: "seeded".into(),
        role: org_service::domain::MemberRole::Member,
        prefix,
        created_at: chrono::Utc::now(),
        expires_at: None,
        created_by: "seed".into(),
        last_used_at: None,
    };
    store.create_api_key(&key, &hash, 100, &[]).await.unwrap();
    org.id
}

async fn crash_at(backend: Backend, failpoint: &'static str) {
    let location = StoreLocation::fresh(&backend);
    let acme = seed(&location, "Acme", "a@acme.com").await;
    seed(&location, "Bystander", "b@by.com").await;

    // The token comes from an instance without crash points (a login is audited too, and
    // would stop at the audit point), then the next process stops dead at the crash point and
    // the test kills it there.
    let client = reqwest::Client::new();
    let token = {
        let plain = start_service(&location, &[("RATE_LIMITS", "off")]).await;
        let r = client
            .post(plain.url("/admin/login"))
            .json(&json!({"email": "a@acme.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        plain.kill().await;
        token
    };
    let mut service = start_service(
        &location,
        &[
            ("ORG_SERVICE_FAILPOINTS", failpoint),
            ("RATE_LIMITS", "off"),
        ],
    )
    .await;
    // The audit point is reached through a rename.
    let op = match failpoint.split('.').next().unwrap() {
        "audit" => "rename",
        op => op,
    };
    let request = match op {
        "create" => client.post(service.url("/org/create")).json(&json!({"organization_name": "Newco", "email": "n@newco.com", "password": PASSWORD})),
        "rename" => client.put(service.url("/org/update")).bearer_auth(&token).json(&json!({"organization_name": "Acme Renamed", "email": "a@acme.com", "password": PASSWORD})),
        "delete" => client.delete(service.url("/org/delete")).bearer_auth(&token).json(&json!({"organization_name": "Acme"})),
        other => panic!("unknown operation {other}"),
    };
    let in_flight = tokio::spawn(request.timeout(Duration::from_secs(60)).send());
    service
        .wait_for_stderr(&format!("{REACHED} {failpoint}"), Duration::from_secs(20))
        .await;
    service.kill().await;
    assert!(
        in_flight.await.unwrap().is_err(),
        "{failpoint}: the request must not have been answered"
    );

    recover(&location, failpoint);
    let service = start_service(&location, &[("RATE_LIMITS", "off")]).await;
    let store = location.store().await;
    let problems = store.consistency_problems().await.unwrap();
    assert!(problems.is_empty(), "{failpoint}: {problems:?}");

    let get = |name: &'static str| {
        client
            .get(service.url("/org/get"))
            .query(&[("organization_name", name)])
            .send()
    };
    assert_eq!(
        get("Bystander").await.unwrap().status(),
        200,
        "{failpoint}: bystander untouched"
    );
    let by = store
        .organization_by_slug("bystander")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.count_tenant_documents(&by).await.unwrap(), 10);
    assert_eq!(store.list_api_keys(&by.id).await.unwrap().len(), 1);

    match op {
        "create" => {
            let exists = get("Newco").await.unwrap().status() == 200;
            let chains: Vec<String> = store
                .audited_organizations()
                .await
                .unwrap()
                .into_iter()
                .filter(|(_, slug)| slug == "newco")
                .map(|(id, _)| id)
                .collect();
            match store.organization_by_slug("newco").await.unwrap() {
                Some(newco) => {
                    assert_eq!(
                        chains,
                        std::slice::from_ref(&newco.id),
                        "{failpoint}: one chain"
                    );
                    assert_eq!(
                        events_of(store.as_ref(), &newco.id, "organization.created").await,
                        1,
                        "{failpoint}"
                    );
                }
                None => assert!(
                    chains.is_empty(),
                    "{failpoint}: an event of an undone create"
                ),
            }
            let expected = if exists { 3 } else { 2 };
            assert_eq!(
                store.count_organizations().await.unwrap(),
                expected,
                "{failpoint}"
            );
            if !exists {
                // Nothing of the interrupted create blocks a retry.
                let r = client.post(service.url("/org/create")).json(&json!({"organization_name": "Newco", "email": "n@newco.com", "password": PASSWORD})).send().await.unwrap();
                assert_eq!(r.status(), 201, "{failpoint}: retry after an undone create");
            }
            let r = client
                .post(service.url("/admin/login"))
                .json(&json!({"email": "n@newco.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{failpoint}");
        }
        "rename" => {
            let old = get("Acme").await.unwrap().status();
            let new = get("Acme Renamed").await.unwrap().status();
            assert!(
                (old == 200) != (new == 200),
                "{failpoint}: exactly one name resolves ({old}, {new})"
            );
            let renamed = events_of(store.as_ref(), &acme, "organization.renamed").await;
            assert_eq!(
                renamed,
                usize::from(new == 200),
                "{failpoint}: renamed and its event"
            );
            let slug = if new == 200 { "acme_renamed" } else { "acme" };
            let org = store.organization_by_slug(slug).await.unwrap().unwrap();
            assert_eq!(
                store.count_tenant_documents(&org).await.unwrap(),
                10,
                "{failpoint}: tenant data kept"
            );
            let r = client
                .post(service.url("/admin/login"))
                .json(&json!({"email": "a@acme.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{failpoint}");
        }
        _ => {
            let gone = get("Acme").await.unwrap().status() == 404;
            let login = client
                .post(service.url("/admin/login"))
                .json(&json!({"email": "a@acme.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status();
            let deleted = events_of(store.as_ref(), &acme, "organization.deleted").await;
            assert_eq!(
                deleted,
                usize::from(gone),
                "{failpoint}: deleted and its event"
            );
            let keys = store.list_api_keys(&acme).await.unwrap().len();
            assert_eq!(
                keys,
                usize::from(!gone),
                "{failpoint}: keys go with their organization"
            );
            if gone {
                assert_eq!(
                    login, 401,
                    "{failpoint}: a deleted organization's admin is gone"
                );
                assert_eq!(store.count_organizations().await.unwrap(), 1);
            } else {
                assert_eq!(login, 200, "{failpoint}: an undone delete left the admin");
                assert_eq!(store.count_organizations().await.unwrap(), 2);
            }
        }
    }
    service.kill().await;
}

/// How many events of `action` the organization's chain holds, after checking that the chain
/// verifies: a change and its event survive a crash together or not at all.
pub async fn events_of(
    store: &dyn org_service::storage::Store,
    org_id: &str,
    action: &str,
) -> usize {
    let check = org_service::audit_log::verify_chain(store, org_id)
        .await
        .unwrap();
    assert!(check.ok, "{check:?}");
    store
        .events_after(org_id, 0, None, None, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.json.contains(&format!("\"action\":\"{action}\"")))
        .count()
}

/// With every instance stopped, the operator's `migrate --grace-seconds 0` treats everything
/// unfinished as abandoned; after it and a restart the store must be whole.
pub fn recover(location: &StoreLocation, failpoint: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .args(["migrate", "--grace-seconds", "0"])
        .env_clear()
        .envs(location.env_with(&[("RUST_LOG", "warn")]))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{failpoint}: migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn crash_everywhere(backend: Backend) {
    for failpoint in ALL.iter().chain(AUDIT) {
        crash_at(backend.clone(), failpoint).await;
    }
}

/// Every crash point, embedded store (SQLite transactions roll back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_crash_point_leaves_nothing_half_made_embedded() {
    crash_everywhere(Backend::Embedded).await;
}

/// Every crash point, MongoDB (the reconciler finishes or undoes the steps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn sigkill_at_every_crash_point_leaves_nothing_half_made_mongodb() {
    crash_everywhere(Backend::mongo()).await;
}

/// Every crash point, MongoDB in the shared tenant layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn sigkill_at_every_crash_point_leaves_nothing_half_made_mongodb_shared() {
    crash_everywhere(Backend::mongo_shared()).await;
}
