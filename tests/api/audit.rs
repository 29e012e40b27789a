//! Issue 13: the audit log on both stores and both MongoDB layouts: one event per change with
//! its actor, target and context, gapless sequences, a chain that verifies, no secret in any
//! event, filtered and paged lists, the roles that may read it.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api_keys::KeyHeader;
use crate::both_stores;
use crate::helpers::*;
use crate::team_helpers::*;

impl TestApp {
    /// The organization's whole log, oldest first (the export).
    pub async fn audit_log(&self, token: &str) -> Vec<Value> {
        let r = self
            .call(Method::GET, "/org/audit/export", token, None)
            .await;
        assert_eq!(r.status(), 200);
        r.text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `GET /org/audit/verify`.
    pub async fn verify_audit(&self, token: &str) -> Value {
        let r = self
            .call(Method::GET, "/org/audit/verify", token, None)
            .await;
        assert_eq!(r.status(), 200);
        json_body(r).await
    }
}

pub fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn body(r: Response) -> Value {
    json_body(r).await
}

both_stores! {
    /// Every audited action records exactly one event, in order, with the contract's actor,
    /// target and context; the chain verifies; no password, token, key or hash is in any
    /// event; a deleted organization's last event says so.
    async fn every_change_records_one_event(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.post(app.url("/org/create"))
            .header("user-agent", "audit-test/1").header("x-request-id", "req-create")
            .json(&json!({"organization_name": "Audited", "email": "o@audited.com", "password": PASSWORD}))
            .send().await.unwrap();
        assert_eq!(r.status(), 201);
        let org = body(r).await;
        let login = body(app.login("o@audited.com", PASSWORD).await).await;
        let t = access(&login);
        let owner_id = id_of(&login);
        assert_eq!(app.login("o@audited.com", "WrongPass999!").await.status(), 401);
        let bo_inv = app.invite(&t, "bo@audited.com", "member").await;
        let r = app.call(Method::POST, &format!("/org/invitations/{}/resend", bo_inv["invitation_id"].as_str().unwrap()), &t, None).await;
        let bo_token = body(r).await["token"].as_str().unwrap().to_owned();
        let cy_inv = app.invite(&t, "cy@audited.com", "viewer").await;
        assert_eq!(app.call(Method::DELETE, &format!("/org/invitations/{}", cy_inv["invitation_id"].as_str().unwrap()), &t, None).await.status(), 204);
        let bo = body(app.accept(&bo_token, MEMBER_PASSWORD).await).await;
        let bo_id = id_of(&bo);
        assert_eq!(app.set_role(&t, &bo_id, "viewer").await.status(), 200);
        let dee = app.join(&t, "dee@audited.com", "member").await;
        assert_eq!(app.remove(&access(&dee), &id_of(&dee)).await.status(), 204);
        assert_eq!(app.remove(&t, &bo_id).await.status(), 204);
        let key = app.make_key(&t, "ci", "member").await;
        let key_hash = app.store.api_key_by_prefix(key["prefix"].as_str().unwrap()).await.unwrap().unwrap().hash;
        assert_eq!(app.call(Method::DELETE, &format!("/org/api-keys/{}", key["id"].as_str().unwrap()), &t, None).await.status(), 204);
        let hash_before = app.store.account_by_email("o@audited.com").await.unwrap().unwrap().password_hash;
        let r = app.call(Method::PUT, "/admin/password", &t, Some(&json!({"current_password": PASSWORD, "new_password": "NewSecurePass456!"}))).await;
        assert_eq!(r.status(), 200);
        let t = access(&body(r).await);
        assert_eq!(app.call(Method::POST, "/admin/logout", &t, None).await.status(), 204);
        let login = body(app.login("o@audited.com", "NewSecurePass456!").await).await;
        let first_refresh = login["refresh_token"].as_str().unwrap().to_owned();
        let refresh = |token: String| {
            let app = &app;
            async move { app.post_json("/admin/refresh", &json!({"refresh_token": token})).await.status() }
        };
        assert_eq!(refresh(first_refresh.clone()).await, 200);
        assert_eq!(refresh(first_refresh.clone()).await, 401, "reuse detected");
        let t = access(&body(app.login("o@audited.com", "NewSecurePass456!").await).await);
        let r = app.update_org(Some(&t), "Audited Renamed", "o@audited.com", "NewSecurePass456!").await;
        assert_eq!(r.status(), 200);

        let events = app.audit_log(&t).await;
        assert_eq!(actions(&events), [
            "organization.created", "login.succeeded", "login.failed", "member.invited",
            "member.invitation_resent", "member.invited", "member.invitation_revoked",
            "member.invitation_accepted", "member.role_changed", "member.invited",
            "member.invitation_accepted", "member.left", "member.removed", "api_key.created",
            "api_key.revoked", "password.changed", "sessions.revoked", "login.succeeded",
            "refresh.reuse_detected", "login.succeeded", "organization.renamed",
        ]);
        let mut prev = "0".repeat(64);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["sequence"], i as u64 + 1);
            assert_eq!(e["organization_id"], org["organization_id"]);
            assert_eq!(e["prev_hash"], prev.as_str(), "event {i} links to the one before");
            assert_eq!(e["context"]["ip"], "127.0.0.1");
            prev = e["hash"].as_str().unwrap().to_owned();
        }
        let created = &events[0];
        assert_eq!(created["actor"], json!({"type": "account", "id": owner_id, "email": "o@audited.com"}));
        assert_eq!(created["target"], json!({"type": "organization", "id": org["organization_id"], "name": "Audited"}));
        assert_eq!(created["context"], json!({"ip": "127.0.0.1", "user_agent": "audit-test/1", "request_id": "req-create"}));
        assert_eq!(events[2]["details"], json!({"reason": "wrong_password"}));
        assert_eq!(events[3]["target"], json!({"type": "invitation", "id": bo_inv["invitation_id"], "name": "bo@audited.com"}));
        assert_eq!(events[7]["actor"]["id"], bo_id.as_str());
        assert_eq!(events[8]["target"], json!({"type": "account", "id": bo_id, "name": "bo@audited.com"}));
        assert_eq!(events[8]["details"], json!({"role": "viewer", "previous_role": "member"}));
        assert_eq!(events[11]["actor"]["id"], id_of(&dee).as_str());
        assert_eq!(events[13]["target"], json!({"type": "api_key", "id": key["id"], "name": "ci"}));
        assert_eq!(events[20]["target"]["name"], "Audited Renamed");
        assert_eq!(events[20]["details"], json!({"previous_name": "Audited"}));
        let verified = app.verify_audit(&t).await;
        assert_eq!(verified["ok"], true, "{verified}");
        assert_eq!(verified["events_checked"], 21);
        assert_eq!(verified["head"], json!({"sequence": 21, "hash": prev}));
        assert_eq!(verified["first_bad_sequence"], Value::Null);

        // No secret anywhere: passwords, tokens, the key, and every stored hash.
        let text = serde_json::to_string(&events).unwrap();
        let hash_after = app.store.account_by_email("o@audited.com").await.unwrap().unwrap().password_hash;
        for secret in [
            PASSWORD, MEMBER_PASSWORD, "NewSecurePass456!", "WrongPass999!", key["key"].as_str().unwrap(),
            &key_hash, &hash_before, &hash_after, &bo_token, &sha256_hex(&bo_token),
            bo_inv["token"].as_str().unwrap(), &first_refresh, &sha256_hex(&first_refresh), &t,
        ] {
            assert!(!text.contains(secret), "a secret is in the audit log: {secret}");
        }

        // Deleted: its chain stays (for the operator), ending with the deletion.
        let org_id = org["organization_id"].as_str().unwrap();
        assert_eq!(app.delete_org(Some(&t), "Audited Renamed").await.status(), 204);
        let kept = app.store.events_after(org_id, 0, None, None, 100).await.unwrap();
        assert_eq!(kept.len(), 22);
        let last: Value = serde_json::from_str(&kept[21].json).unwrap();
        assert_eq!(last["action"], "organization.deleted");
        let check = org_service::audit_log::verify_chain(app.store.as_ref(), org_id).await.unwrap();
        assert!(check.ok && check.events_checked == 22, "{check:?}");
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// An account event goes to every organization the account belongs to.
    async fn account_events_go_to_every_organization(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("First Co", "o@first.com").await;
        let t = access(&body(app.login("o@first.com", PASSWORD).await).await);
        let r = app.client.post(app.url("/org/create")).bearer_auth(&t)
            .json(&json!({"organization_name": "Second Co", "email": "o@first.com", "password": PASSWORD}))
            .send().await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(app.login("o@first.com", "WrongPass999!").await.status(), 401);
        let first = access(&body(app.send_json(Method::POST, "/admin/login", None, &json!({"email": "o@first.com", "password": PASSWORD, "organization_name": "First Co"})).await).await);
        let second = access(&body(app.send_json(Method::POST, "/admin/login", None, &json!({"email": "o@first.com", "password": PASSWORD, "organization_name": "Second Co"})).await).await);
        assert_eq!(actions(&app.audit_log(&first).await), [
            "organization.created", "login.succeeded", "login.failed", "login.succeeded", "login.succeeded",
        ]);
        let in_second = app.audit_log(&second).await;
        assert_eq!(actions(&in_second), [
            "organization.created", "login.failed", "login.succeeded", "login.succeeded",
        ]);
        assert_eq!(in_second[0]["sequence"], 1, "each organization has its own chain");
    }
}

both_stores! {
    /// Newest first, paged by cursor without gaps or repeats; filters by action, actor and
    /// time; owners and admins read it, members, viewers and API keys get 403.
    async fn the_log_is_listed_filtered_and_guarded(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner(&app).await;
        let admin = access(&app.join(&t, "a@listed.com", "admin").await);
        for i in 0..5 {
            app.invite(&admin, &format!("p{i}@listed.com"), "viewer").await;
        }
        let all = app.audit_log(&t).await;
        let total = all.len();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/org/audit?limit=3&cursor={c}"),
                None => "/org/audit?limit=3".into(),
            };
            let page = body(app.call(Method::GET, &path, &t, None).await).await;
            let events = page["events"].as_array().unwrap();
            assert!(events.len() <= 3);
            seen.extend(events.iter().map(|e| e["sequence"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, (1..=total as i64).rev().collect::<Vec<_>>());

        let page = body(app.call(Method::GET, "/org/audit?action=member.invited", &admin, None).await).await;
        let invited = page["events"].as_array().unwrap();
        assert_eq!(invited.len(), 6, "the admin's invitation and five more");
        let admin_id = invited[0]["actor"]["id"].as_str().unwrap().to_owned();
        let page = body(app.call(Method::GET, &format!("/org/audit?actor_id={admin_id}"), &t, None).await).await;
        assert!(page["events"].as_array().unwrap().iter().all(|e| e["actor"]["id"] == admin_id.as_str()));
        assert_eq!(page["events"].as_array().unwrap().len(), 6, "five invitations and the admin's own acceptance");
        let middle = all[total / 2]["occurred_at"].as_str().unwrap().to_owned();
        let since = body(app.client.get(app.url("/org/audit")).query(&[("since", &middle), ("limit", &"100".to_owned())]).bearer_auth(&t).send().await.unwrap()).await;
        let until = body(app.client.get(app.url("/org/audit")).query(&[("until", &middle), ("limit", &"100".to_owned())]).bearer_auth(&t).send().await.unwrap()).await;
        let (since, until) = (since["events"].as_array().unwrap().len(), until["events"].as_array().unwrap().len());
        assert_eq!(since + until, total, "since is inclusive, until exclusive");
        assert!(since >= 1 && until >= total / 2);
        let export = app.client.get(app.url("/org/audit/export")).query(&[("since", &middle)]).bearer_auth(&t).send().await.unwrap();
        assert_eq!(export.text().await.unwrap().lines().count(), since);

        for bad in ["action=member.joined", "limit=0", "cursor=abc", "since=yesterday"] {
            assert_eq!(app.call(Method::GET, &format!("/org/audit?{bad}"), &t, None).await.status(), 422, "{bad}");
        }
        let member = access(&app.join(&t, "m@listed.com", "member").await);
        let viewer = access(&app.join(&t, "v@listed.com", "viewer").await);
        let key = app.make_key(&t, "k", "member").await["key"].as_str().unwrap().to_owned();
        for path in ["/org/audit", "/org/audit/export", "/org/audit/verify"] {
            for token in [&member, &viewer] {
                assert_eq!(app.call(Method::GET, path, token, None).await.status(), 403, "{path}");
            }
            for how in [KeyHeader::XApiKey, KeyHeader::Bearer] {
                assert_eq!(app.with_key(how, Method::GET, path, &key, None).await.status(), 403, "{path}");
            }
            assert_eq!(app.call(Method::GET, path, &admin, None).await.status(), 200, "{path}");
        }
    }
}

async fn owner(app: &TestApp) -> String {
    app.given_org("Listed", "o@listed.com").await;
    access(&body(app.login("o@listed.com", PASSWORD).await).await)
}
