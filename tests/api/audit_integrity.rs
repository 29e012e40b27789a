//! Issue 13, the chain's integrity and the operator's side: an event edited, deleted or inserted
//! in the store directly is found by the API and by `org-service audit verify`; a deleted
//! organization's log is reachable by name from the command line; pruning keeps what remains
//! verifiable; sequences stay gapless with three instances writing at once.

use std::process::Output;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::audit::actions;
use crate::both_stores;
use crate::helpers::*;

/// What to do to one stored event.
enum Tamper {
    /// Change its JSON (a name in it).
    Edit(i64),
    /// Remove it.
    Delete(i64),
    /// Add a forged copy of it as the next event.
    Append(i64),
}

/// Changes `org_id`'s stored chain behind the service's back.
async fn tamper(location: &StoreLocation, org_id: &str, how: Tamper) {
    if let Some(path) = location.env.get("DATABASE_PATH") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let changed = match how {
            Tamper::Edit(seq) => conn.execute(
                "UPDATE audit_events SET event = replace(event, '@tampered.com', '@evil.com') WHERE organization_id = ?1 AND sequence = ?2",
                rusqlite::params![org_id, seq],
            ),
            Tamper::Delete(seq) => conn.execute(
                "DELETE FROM audit_events WHERE organization_id = ?1 AND sequence = ?2",
                rusqlite::params![org_id, seq],
            ),
            Tamper::Append(seq) => conn.execute(
                "INSERT INTO audit_events (organization_id, sequence, id, organization_slug, action, actor_id, occurred_at, hash, event)
                 SELECT organization_id, sequence + 1, id || 'x', organization_slug, action, actor_id, occurred_at, hash,
                        replace(event, '\"sequence\":' || sequence, '\"sequence\":' || (sequence + 1))
                 FROM audit_events WHERE organization_id = ?1 AND sequence = ?2",
                rusqlite::params![org_id, seq],
            ),
        }
        .unwrap();
        assert_eq!(changed, 1);
        return;
    }
    use mongodb::bson::doc;
    let client = mongodb::Client::with_uri_str(&location.env["MONGODB_URL"])
        .await
        .unwrap();
    let events = client
        .database(&location.env["MASTER_DB_NAME"])
        .collection::<mongodb::bson::Document>("audit_events");
    let id = |seq: i64| format!("{org_id}:{seq}");
    match how {
        Tamper::Edit(seq) => {
            let stored = events
                .find_one(doc! { "_id": id(seq) })
                .await
                .unwrap()
                .unwrap();
            let edited = stored
                .get_str("event")
                .unwrap()
                .replace("@tampered.com", "@evil.com");
            events
                .update_one(
                    doc! { "_id": id(seq) },
                    doc! { "$set": { "event": edited } },
                )
                .await
                .unwrap();
        }
        Tamper::Delete(seq) => {
            events.delete_one(doc! { "_id": id(seq) }).await.unwrap();
        }
        Tamper::Append(seq) => {
            let mut copy = events
                .find_one(doc! { "_id": id(seq) })
                .await
                .unwrap()
                .unwrap();
            let forged = copy.get_str("event").unwrap().replace(
                &format!("\"sequence\":{seq}"),
                &format!("\"sequence\":{}", seq + 1),
            );
            copy.insert("_id", id(seq + 1));
            copy.insert("sequence", seq + 1);
            copy.insert("event_id", format!("{org_id}-forged"));
            copy.insert("event", forged);
            events.insert_one(copy).await.unwrap();
        }
    }
}

/// Runs `org-service audit <args>` on `location`.
fn audit_cli(location: &StoreLocation, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .arg("audit")
        .args(args)
        .env_clear()
        .envs(location.env_with(&[("RUST_LOG", "error")]))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run org-service audit")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// An organization with a few events (created, a login, three invitations); its token and id.
async fn chain_of(app: &TestApp, name: &str) -> (String, String) {
    let email = format!("owner@{}.com", name.to_lowercase().replace(' ', "-"));
    let org = app.given_org(name, &email).await;
    let t = app.token(&email, PASSWORD).await;
    for who in ["a", "b", "c"] {
        app.invite(&t, &format!("{who}@tampered.com"), "viewer")
            .await;
    }
    (t, org["organization_id"].as_str().unwrap().to_owned())
}

both_stores! {
    /// Each kind of tampering is found, at the first event it touched, through the API and the
    /// command line; untouched chains still verify.
    async fn tampering_is_found_by_the_api_and_the_cli(backend: Backend) {
        let app = spawn_app(backend).await;
        let (intact, _) = chain_of(&app, "Intact").await;
        let mut cases = Vec::new();
        for (name, how, first_bad) in [
            ("Edited", Tamper::Edit(4), 4),
            ("Deleted", Tamper::Delete(2), 2),
            ("Appended", Tamper::Append(5), 6),
        ] {
            let (token, org_id) = chain_of(&app, name).await;
            assert_eq!(app.verify_audit(&token).await["ok"], true);
            tamper(&app.location, &org_id, how).await;
            let v = app.verify_audit(&token).await;
            assert_eq!((v["ok"].clone(), v["first_bad_sequence"].clone()), (json!(false), json!(first_bad)), "{name}: {v}");
            cases.push((name, org_id, first_bad));
        }
        assert_eq!(app.verify_audit(&intact).await["ok"], true);

        let all = audit_cli(&app.location, &["verify"]);
        assert!(!all.status.success(), "a broken chain must fail the command");
        let report = lines(&all);
        assert_eq!(report.len(), 4);
        for (name, org_id, first_bad) in &cases {
            let line = report.iter().find(|l| l["organization_id"] == org_id.as_str()).unwrap();
            assert_eq!(line["verification"]["first_bad_sequence"], *first_bad, "{name}");
        }
        let one = audit_cli(&app.location, &["verify", "--org", "intact"]);
        assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
        assert_eq!(lines(&one)[0]["verification"]["ok"], true);
        let one = audit_cli(&app.location, &["verify", "--org", "Deleted"]);
        assert!(!one.status.success());
        let unknown = audit_cli(&app.location, &["verify", "--org", "Nobody"]);
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no audit log"));
    }
}

both_stores! {
    /// A deleted organization's events stay reachable from the command line by its name (or
    /// id), end with its deletion, and verify.
    async fn a_deleted_organizations_log_is_exported_by_name(backend: Backend) {
        let app = spawn_app(backend).await;
        let (t, org_id) = chain_of(&app, "Gone Co").await;
        assert_eq!(app.delete_org(Some(&t), "Gone Co").await.status(), 204);
        for org in ["Gone Co", "gone-co", org_id.as_str()] {
            let out = audit_cli(&app.location, &["export", "--org", org]);
            assert!(out.status.success(), "{org}: {}", String::from_utf8_lossy(&out.stderr));
            let events = lines(&out);
            assert_eq!(actions(&events), [
                "organization.created", "login.succeeded", "member.invited", "member.invited",
                "member.invited", "organization.deleted",
            ]);
        }
        let since = (Utc::now() + Duration::hours(1)).to_rfc3339();
        let out = audit_cli(&app.location, &["export", "--org", "Gone Co", "--since", &since]);
        assert!(out.status.success());
        assert!(out.stdout.is_empty());
        let out = audit_cli(&app.location, &["verify", "--org", "Gone Co"]);
        assert!(out.status.success());
        assert_eq!(lines(&out)[0]["verification"]["events_checked"], 6);
    }
}

both_stores! {
    /// Pruning removes a chain's old events and leaves the rest verifiable, through the API and
    /// by the reconciler's pass with `AUDIT_RETENTION_DAYS`.
    async fn pruning_keeps_the_rest_verifiable(backend: Backend) {
        // Kept a year here, so nothing is pruned while the old events are written and checked.
        let app = spawn_app(backend.clone()).await;
        let (t, org_id) = chain_of(&app, "Pruned").await;
        // Three events from ten days ago, then the chain goes on.
        let old: Vec<_> = (0..3)
            .map(|i| {
                let mut e = org_service::domain::NewEvent::new(
                    (&org_id, "pruned"),
                    org_service::domain::AuditAction::LoginFailed,
                    org_service::domain::AuditActor::system("test"),
                    org_service::domain::AuditTarget::new("account", &format!("x{i}"), None),
                    &Default::default(),
                    Default::default(),
                );
                e.occurred_at = Utc::now() - Duration::days(10);
                e
            })
            .collect();
        app.store.record_events(&old).await.unwrap();
        app.invite(&t, "late@tampered.com", "viewer").await;
        assert_eq!(app.verify_audit(&t).await["events_checked"], 9);
        // An instance that keeps a day: its reconciler's pass prunes everything up to the newest
        // old event (the 8th).
        let _pruner = spawn_on(backend, std::sync::Arc::clone(&app.location), &[("AUDIT_RETENTION_DAYS", "1"), ("RECONCILE_INTERVAL_SECONDS", "1")]).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while app.audit_log(&t).await.len() != 1 {
            assert!(std::time::Instant::now() < deadline, "not pruned");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let left = app.audit_log(&t).await;
        assert_eq!((left[0]["sequence"].clone(), left[0]["action"].clone()), (json!(9), json!("member.invited")));
        let v = app.verify_audit(&t).await;
        assert_eq!((v["ok"].clone(), v["events_checked"].clone()), (json!(true), json!(1)), "{v}");
        let anchor = app.store.chain_anchor(&org_id).await.unwrap();
        assert_eq!((anchor.sequence, anchor.hash.as_str()), (8, left[0]["prev_hash"].as_str().unwrap()));
        // The chain goes on from its anchor.
        app.invite(&t, "later@tampered.com", "viewer").await;
        let v = app.verify_audit(&t).await;
        assert_eq!((v["ok"].clone(), v["events_checked"].clone()), (json!(true), json!(2)), "{v}");
        assert_eq!(app.store.prune_events(Utc::now() - Duration::days(1)).await.unwrap(), 0);
    }
}

both_stores! {
    /// Three instances recording events of one organization at once: sequences 1..n without a
    /// gap or a repeat, and the chain verifies.
    async fn three_instances_keep_one_gapless_chain(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let settings = [("RATE_LIMITS", "off"), ("LOGIN_MAX_ATTEMPTS", "1000"), ("LOGIN_ACCOUNT_MAX_ATTEMPTS", "10000")];
        let mut instances = Vec::new();
        for _ in 0..3 {
            instances.push(start_service(&location, &settings).await);
        }
        let client = reqwest::Client::new();
        let r = client.post(instances[0].url("/org/create")).json(&json!({"organization_name": "Busy Log", "email": "o@busylog.com", "password": PASSWORD})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let failures = (0..45).map(|i| {
            let (client, url) = (client.clone(), instances[i % 3].url("/admin/login"));
            async move {
                client.post(url).json(&json!({"email": "o@busylog.com", "password": format!("Wrong{i}Pass!")})).send().await.unwrap().status().as_u16()
            }
        });
        let statuses = futures::future::join_all(failures).await;
        assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
        let store = location.store().await;
        let org = store.organization_by_slug("busy_log").await.unwrap().unwrap();
        let stored = store.events_after(&org.id, 0, None, None, 1000).await.unwrap();
        let sequences: Vec<i64> = stored.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=46).collect::<Vec<_>>());
        let check = org_service::audit_log::verify_chain(store.as_ref(), &org.id).await.unwrap();
        assert!(check.ok && check.events_checked == 46, "{check:?}");
        let problems = store.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        for instance in instances {
            instance.kill().await;
        }
    }
}

both_stores! {
    /// Exporting a long log streams it: the service's peak memory grows by a fraction of the
    /// export's size, not by the export. 100,000 events on the embedded store; on FerretDB,
    /// which answers each batch's range read by scanning the collection, 10,000 larger ones.
    async fn exporting_a_long_log_keeps_memory_flat(backend: Backend) {
        let (batches, padding) = match backend {
            Backend::Embedded => (10, 0),
            _ => (1, 2_500),
        };
        let location = StoreLocation::fresh(&backend);
        let service = start_service(&location, &[("RATE_LIMITS", "off")]).await;
        let client = reqwest::Client::new();
        let r = client.post(service.url("/org/create")).json(&json!({"organization_name": "Long Log", "email": "o@longlog.com", "password": PASSWORD})).send().await.unwrap();
        let org_id = r.json::<Value>().await.unwrap()["organization_id"].as_str().unwrap().to_owned();
        let login: Value = client.post(service.url("/admin/login")).json(&json!({"email": "o@longlog.com", "password": PASSWORD})).send().await.unwrap().json().await.unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        let store = location.store().await;
        let target = org_service::domain::AuditTarget::new("account", "someone", Some("someone@longlog.com"));
        let details = serde_json::Map::from_iter([
            ("reason".to_owned(), json!("wrong_password")),
            ("note".to_owned(), json!("n".repeat(padding))),
        ]);
        for _ in 0..batches {
            let batch: Vec<_> = (0..10_000)
                .map(|_| org_service::domain::NewEvent::new(
                    (&org_id, "long_log"),
                    org_service::domain::AuditAction::LoginFailed,
                    org_service::domain::AuditActor::account("someone", "someone@longlog.com"),
                    target.clone(),
                    &org_service::domain::AuditContext::new("203.0.113.7".into(), Some("bench/1"), Some("r")),
                    details.clone(),
                ))
                .collect();
            store.record_events(&batch).await.unwrap();
        }
        let before = service.peak_rss_kib();
        let mut r = client.get(service.url("/org/audit/export")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (mut bytes, mut lines) = (0_u64, 0_u64);
        while let Some(chunk) = r.chunk().await.unwrap() {
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        assert_eq!(lines, batches * 10_000 + 2, "created, the login, and the seeded events");
        let grown = service.peak_rss_kib().saturating_sub(before);
        assert!(bytes > 25 << 20, "the export is {bytes} bytes");
        assert!(grown * 1024 < bytes / 4, "peak memory grew by {grown} KiB while exporting {bytes} bytes");
        service.kill().await;
    }
}
