//! Issue 14: API keys, on both stores and both MongoDB layouts: shown once and stored as a
//! hash, the documents routes only and with their role, managed by owners and admins, dead at
//! once when revoked or when their organization goes, throttled guessing, a use written once
//! a minute, and never a key in a log line, a metric or an error body.

use chrono::{Duration, Utc};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::both_stores;
use crate::helpers::*;
use crate::team_helpers::*;

/// How a request carries its key.
#[derive(Debug, Clone, Copy)]
pub enum KeyHeader {
    /// `X-API-Key: osk_…`
    XApiKey,
    /// `Authorization: Bearer osk_…`
    Bearer,
}

impl TestApp {
    /// Makes a key with `role` through `token`; returns the 201 body (panics otherwise).
    pub async fn make_key(&self, token: &str, name: &str, role: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/org/api-keys",
                token,
                Some(&json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(r.status(), 201, "making a {role} key");
        json_body(r).await
    }

    /// `method path` with an API key, sent as `how`.
    pub async fn with_key(
        &self,
        how: KeyHeader,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        req = match how {
            KeyHeader::XApiKey => req.header("x-api-key", key),
            KeyHeader::Bearer => req.bearer_auth(key),
        };
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.expect("request")
    }
}

async fn owner_token(app: &TestApp, name: &str, email: &str) -> String {
    app.given_org(name, email).await;
    access(&json_body(app.login(email, PASSWORD).await).await)
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

both_stores! {
    /// The key is `osk_<16 hex>_<64 hex>`, in the create response only; the store keeps its
    /// prefix and SHA-256; lists show everything but the key.
    async fn keys_are_shown_once_and_stored_as_a_hash(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Keys", "o@keys.com").await;
        let me = json_body(app.call(Method::GET, "/admin/me", &t, None).await).await;
        let r = app.call(Method::POST, "/org/api-keys", &t, Some(&json!({"name": " nightly ", "role": "viewer", "expires_in_days": 30}))).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let made = json_body(r).await;
        let key = made["key"].as_str().unwrap().to_owned();
        let prefix = made["prefix"].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 85, "{key}");
        assert!(key.starts_with("osk_"));
        assert_eq!(&key[4..20], prefix);
        assert_eq!(&key[20..21], "_");
        assert!(key[4..].bytes().all(|b| b == b'_' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(made["name"], "nightly");
        assert_eq!(made["role"], "viewer");
        assert_eq!(made["created_by"], me["admin_id"]);
        let created = chrono::DateTime::parse_from_rfc3339(made["created_at"].as_str().unwrap()).unwrap();
        let expires = chrono::DateTime::parse_from_rfc3339(made["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires - created, Duration::days(30));
        let forever = app.make_key(&t, "forever", "member").await;
        assert_eq!(forever["expires_at"], Value::Null);

        let stored = app.store.api_key_by_prefix(&prefix).await.unwrap().unwrap();
        assert_eq!(stored.hash, sha256_hex(&key));
        assert_eq!(stored.key.id, made["id"].as_str().unwrap());
        assert!(!format!("{stored:?}").contains(&key[21..]), "the secret is stored");

        let r = app.call(Method::GET, "/org/api-keys", &t, None).await;
        assert_eq!(r.status(), 200);
        let list = json_body(r).await;
        let keys = list["api_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        let mut fields: Vec<&str> = keys[0].as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["created_at", "created_by", "expires_at", "id", "last_used_at", "name", "prefix", "role"]);
        assert_eq!(keys[0]["id"], made["id"]);
        assert_eq!(keys[1]["id"], forever["id"]);
        assert_eq!(keys[0]["last_used_at"], Value::Null);
        assert!(!list.to_string().contains(&key[21..]));
    }
}

both_stores! {
    /// A member key reads and writes documents, a viewer key reads them, through either header;
    /// a key is 403 everywhere else and changes nothing there; it never reaches another
    /// organization's documents.
    async fn keys_work_on_documents_only_with_their_role(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Keyed", "o@keyed.com").await;
        let writer = app.make_key(&t, "writer", "member").await["key"].as_str().unwrap().to_owned();
        let reader = app.make_key(&t, "reader", "viewer").await["key"].as_str().unwrap().to_owned();
        for how in [KeyHeader::XApiKey, KeyHeader::Bearer] {
            let r = app.with_key(how, Method::POST, "/org/documents", &writer, Some(&json!({"n": 1}))).await;
            assert_eq!(r.status(), 201, "{how:?}");
            let id = json_body(r).await["id"].as_str().unwrap().to_owned();
            let path = format!("/org/documents/{id}");
            for key in [&writer, &reader] {
                assert_eq!(app.with_key(how, Method::GET, &path, key, None).await.status(), 200);
                let r = app.with_key(how, Method::GET, "/org/documents?filter=%7B%22n%22%3A1%7D", key, None).await;
                assert_eq!(r.status(), 200);
                assert!(!json_body(r).await["documents"].as_array().unwrap().is_empty());
                assert_eq!(app.with_key(how, Method::GET, "/org/documents/count", key, None).await.status(), 200);
            }
            for (method, body) in [(Method::PUT, Some(json!({"n": 2}))), (Method::DELETE, None)] {
                assert_eq!(app.with_key(how, method.clone(), &path, &reader, body.as_ref()).await.status(), 403, "{how:?} viewer {method}");
            }
            assert_eq!(app.with_key(how, Method::POST, "/org/documents", &reader, Some(&json!({"n": 3}))).await.status(), 403);
            let r = app.with_key(how, Method::PUT, &path, &writer, Some(&json!({"n": 2}))).await;
            assert_eq!(r.status(), 200);
            assert_eq!(app.with_key(how, Method::DELETE, &path, &writer, None).await.status(), 204);
        }

        // Everywhere else: 403, and nothing changes.
        for how in [KeyHeader::XApiKey, KeyHeader::Bearer] {
            for (method, path, body) in [
                (Method::GET, "/admin/me", None),
                (Method::GET, "/org/members", None),
                (Method::GET, "/org/api-keys", None),
                (Method::POST, "/org/api-keys", Some(json!({"name": "more", "role": "member"}))),
                (Method::POST, "/org/invitations", Some(json!({"email": "x@keyed.com", "role": "member"}))),
                (Method::PUT, "/org/update", Some(json!({"organization_name": "Taken Over", "email": "o@keyed.com", "password": PASSWORD}))),
                (Method::DELETE, "/org/delete", Some(json!({"organization_name": "Keyed"}))),
                (Method::POST, "/admin/logout", None),
            ] {
                let r = app.with_key(how, method.clone(), path, &writer, body.as_ref()).await;
                assert_eq!(r.status(), 403, "{how:?} {method} {path}");
                assert!(json_body(r).await["detail"].as_str().unwrap().contains("/org/documents only"));
            }
        }
        // A valid person's token does not make an API key welcome elsewhere either.
        let r = app.call_with(Method::GET, "/admin/me", &t, None, &[("x-api-key", &writer)]).await;
        assert_eq!(r.status(), 403);
        assert_eq!(app.get_org("Keyed").await.status(), 200);
        assert_eq!(app.get_org("Taken Over").await.status(), 404);
        assert_eq!(json_body(app.call(Method::GET, "/org/api-keys", &t, None).await).await["api_keys"].as_array().unwrap().len(), 2);
        assert_eq!(json_body(app.call(Method::GET, "/org/invitations", &t, None).await).await["invitations"], json!([]));

        // Another organization's document is not found through this key.
        let other = owner_token(&app, "Other", "o@other.com").await;
        let r = app.call(Method::POST, "/org/documents", &other, Some(&json!({"secret": true}))).await;
        let foreign = json_body(r).await["id"].as_str().unwrap().to_owned();
        let r = app.with_key(KeyHeader::XApiKey, Method::GET, &format!("/org/documents/{foreign}"), &writer, None).await;
        assert_eq!(r.status(), 404);
        let r = app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents/count", &writer, None).await;
        assert_eq!(json_body(r).await["count"], 0);
    }
}

both_stores! {
    /// Owners and admins make, list and revoke keys; members and viewers get 403. Keys are
    /// members or viewers (owner and admin: 422), and an organization holds at most 100.
    async fn owners_and_admins_manage_keys(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Managed", "o@managed.com").await;
        let admin = access(&app.join(&t, "a@managed.com", "admin").await);
        let member = access(&app.join(&t, "m@managed.com", "member").await);
        let viewer = access(&app.join(&t, "v@managed.com", "viewer").await);
        let by_admin = app.make_key(&admin, "by admin", "member").await;
        for token in [&member, &viewer] {
            let body = json!({"name": "no", "role": "viewer"});
            assert_eq!(app.call(Method::POST, "/org/api-keys", token, Some(&body)).await.status(), 403);
            assert_eq!(app.call(Method::GET, "/org/api-keys", token, None).await.status(), 403);
            let path = format!("/org/api-keys/{}", by_admin["id"].as_str().unwrap());
            assert_eq!(app.call(Method::DELETE, &path, token, None).await.status(), 403);
        }
        for role in ["owner", "admin", "root"] {
            let r = app.call(Method::POST, "/org/api-keys", &t, Some(&json!({"name": "x", "role": role}))).await;
            assert_422_on(r, "role").await;
        }
        assert_422_on(app.call(Method::POST, "/org/api-keys", &t, Some(&json!({"name": "", "role": "member"}))).await, "name").await;
        for days in [0, 3651] {
            let r = app.call(Method::POST, "/org/api-keys", &t, Some(&json!({"name": "x", "role": "member", "expires_in_days": days}))).await;
            assert_422_on(r, "expires_in_days").await;
        }
        let listed = json_body(app.call(Method::GET, "/org/api-keys", &admin, None).await).await;
        assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1, "a refused request made a key");

        // The quota: 100 keys, then 403 naming it; a revoke makes room.
        for i in 1..100 {
            app.make_key(&t, &format!("k{i}"), "viewer").await;
        }
        let r = app.call(Method::POST, "/org/api-keys", &t, Some(&json!({"name": "one too many", "role": "viewer"}))).await;
        assert_eq!(r.status(), 403);
        assert!(json_body(r).await["detail"].as_str().unwrap().contains("quota"));
        let path = format!("/org/api-keys/{}", by_admin["id"].as_str().unwrap());
        assert_eq!(app.call(Method::DELETE, &path, &admin, None).await.status(), 204);
        app.make_key(&t, "room again", "viewer").await;
        assert_eq!(json_body(app.call(Method::GET, "/org/api-keys", &t, None).await).await["api_keys"].as_array().unwrap().len(), 100);
    }
}

both_stores! {
    /// A revoked key is refused at its next request; a key outlives its creator's membership but
    /// not its organization; an expired key is refused; another organization cannot revoke it.
    async fn keys_die_when_revoked_expired_or_orphaned(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Mortal", "o@mortal.com").await;
        let admin = access(&app.join(&t, "a@mortal.com", "admin").await);
        let made = app.make_key(&admin, "by the admin", "member").await;
        let key = made["key"].as_str().unwrap().to_owned();
        let id = made["id"].as_str().unwrap().to_owned();
        let docs = |key: String| {
            let app = &app;
            async move { app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents", &key, None).await.status().as_u16() }
        };
        assert_eq!(docs(key.clone()).await, 200);

        // Its creator leaves: the key is the organization's and keeps working.
        let admin_id = json_body(app.call(Method::GET, "/admin/me", &admin, None).await).await["admin_id"].as_str().unwrap().to_owned();
        assert_eq!(app.remove(&t, &admin_id).await.status(), 204);
        assert_eq!(docs(key.clone()).await, 200);

        // Another organization cannot see or revoke it.
        let other = owner_token(&app, "Nosy", "o@nosy.com").await;
        assert_eq!(app.call(Method::DELETE, &format!("/org/api-keys/{id}"), &other, None).await.status(), 404);
        assert_eq!(docs(key.clone()).await, 200);

        assert_eq!(app.call(Method::DELETE, &format!("/org/api-keys/{id}"), &t, None).await.status(), 204);
        let r = app.with_key(KeyHeader::Bearer, Method::GET, "/org/documents", &key, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(json_body(r).await["detail"], "Invalid API key");
        assert_eq!(app.call(Method::DELETE, &format!("/org/api-keys/{id}"), &t, None).await.status(), 404);

        // Expired: a key made (directly in the store) with an expiry a second ago.
        let org = app.store.organization_by_slug("mortal").await.unwrap().unwrap();
        let (raw, prefix, hash) = org_service::domain::generate_key();
        let now = Utc::now();
        let expired = org_service::domain::ApiKey {
            id: org_service::domain::new_id(),
            organization_id: org.id.clone(),
            name: "old".into(),
            role: org_service::domain::MemberRole::Viewer,
            prefix,
            created_at: now - Duration::days(2),
            expires_at: Some(now - Duration::seconds(1)),
            created_by: "someone".into(),
            last_used_at: None,
        };
        app.store.create_api_key(&expired, &hash, 100, &[]).await.unwrap();
        let r = app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents", &raw, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(json_body(r).await["detail"], "API key expired");

        // The organization goes: so do its keys.
        let live = app.make_key(&t, "live", "viewer").await["key"].as_str().unwrap().to_owned();
        assert_eq!(docs(live.clone()).await, 200);
        assert_eq!(app.delete_org(Some(&t), "Mortal").await.status(), 204);
        assert_eq!(docs(live).await, 401);
        assert!(app.store.list_api_keys(&org.id).await.unwrap().is_empty());
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// A malformed key is a 401; twenty wrong well-formed keys from one address are 401s, then
    /// that address gets 429 with Retry-After, even for a right key.
    async fn guessing_keys_is_throttled(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Guarded", "o@guarded.com").await;
        let key = app.make_key(&t, "real", "viewer").await["key"].as_str().unwrap().to_owned();
        for malformed in ["osk_", "osk_short_abc", &key[..84], &format!("{key}0"), &key.to_uppercase()] {
            let r = app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents", malformed, None).await;
            assert_eq!(r.status(), 401, "{malformed}");
        }
        let guess = |i: usize| format!("{}{:064x}", &key[..21], i);
        for i in 0..20 {
            let r = app.with_key(KeyHeader::Bearer, Method::GET, "/org/documents", &guess(i), None).await;
            assert_eq!(r.status(), 401, "guess {i}");
        }
        let r = app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents", &guess(20), None).await;
        assert_eq!(r.status(), 429);
        let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let r = app.with_key(KeyHeader::XApiKey, Method::GET, "/org/documents", &key, None).await;
        assert_eq!(r.status(), 429, "a right guess is not confirmed while refused");
        // People's tokens are not affected.
        assert_eq!(app.call(Method::GET, "/org/documents", &t, None).await.status(), 200);
    }
}

fn operation_count(metrics: &str, operation: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("store_operation_duration_seconds_count")
                && l.contains(&format!("operation=\"{operation}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

both_stores! {
    /// In a service process: 1,000 requests with a key write its use once (counted by the
    /// store metrics), a malformed key costs no store read, and the key appears in no log line,
    /// metric or error body.
    async fn key_uses_are_written_once_a_minute_and_keys_leak_nowhere(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let mut service = start_service(&location, &[("RATE_LIMITS", "off"), ("RUST_LOG", "debug")]).await;
        let client = reqwest::Client::new();
        let r = client.post(service.url("/org/create")).json(&json!({"organization_name": "Busy", "email": "o@busy.com", "password": PASSWORD})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let login: Value = client.post(service.url("/admin/login")).json(&json!({"email": "o@busy.com", "password": PASSWORD})).send().await.unwrap().json().await.unwrap();
        let t = login["access_token"].as_str().unwrap().to_owned();
        let made: Value = client.post(service.url("/org/api-keys")).bearer_auth(&t).json(&json!({"name": "busy", "role": "member"})).send().await.unwrap().json().await.unwrap();
        let key = made["key"].as_str().unwrap().to_owned();
        let secret = key[21..].to_owned();
        let r = client.post(service.url("/org/documents")).header("x-api-key", &key).json(&json!({"n": 1})).send().await.unwrap();
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let metrics_url = service.url("/metrics");
        let metrics = || async { client.get(&metrics_url).send().await.unwrap().text().await.unwrap() };
        let touches_before = operation_count(&metrics().await, "touch_api_key");
        assert_eq!(touches_before, 1, "the first use is written");

        let before = Utc::now();
        let requests = (0..1000).map(|i| {
            let client = client.clone();
            let url = service.url(&format!("/org/documents/{id}"));
            let key = key.clone();
            async move {
                let req = client.get(url);
                let req = if i % 2 == 0 { req.header("x-api-key", key) } else { req.bearer_auth(key) };
                req.send().await.unwrap().status().as_u16()
            }
        });
        let statuses = futures::stream::iter(requests).buffer_unordered(16).collect::<Vec<_>>().await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let text = metrics().await;
        assert_eq!(operation_count(&text, "touch_api_key"), touches_before, "a store write per request");
        assert!(operation_count(&text, "api_key_by_prefix") >= 1001);
        let listed: Value = client.get(service.url("/org/api-keys")).bearer_auth(&t).send().await.unwrap().json().await.unwrap();
        let used = chrono::DateTime::parse_from_rfc3339(listed["api_keys"][0]["last_used_at"].as_str().unwrap()).unwrap();
        assert!(before.signed_duration_since(used) < Duration::seconds(60), "last_used_at {used} is more than a minute stale");

        // Malformed keys: refused before any store read.
        let reads = operation_count(&text, "api_key_by_prefix");
        let mut bodies = Vec::new();
        for bad in [format!("{key}x"), key[..80].to_owned(), format!("osk_{secret}")] {
            let r = client.get(service.url("/org/documents")).header("x-api-key", &bad).send().await.unwrap();
            assert_eq!(r.status(), 401);
            bodies.push(r.text().await.unwrap());
        }
        let text = metrics().await;
        assert_eq!(operation_count(&text, "api_key_by_prefix"), reads, "a malformed key was looked up");

        // Error bodies (401, 403, 404, 422) and everything logged or measured: no key.
        let r = client.get(service.url("/admin/me")).header("x-api-key", &key).send().await.unwrap();
        assert_eq!(r.status(), 403);
        bodies.push(r.text().await.unwrap());
        let r = client.get(service.url("/org/documents/65a1b2c3d4e5f6a7b8c9d0e4")).header("x-api-key", &key).send().await.unwrap();
        assert_eq!(r.status(), 404);
        bodies.push(r.text().await.unwrap());
        let r = client.get(service.url("/org/documents?filter=%7B%22a%22%3A%5B1%5D%7D")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), 422);
        bodies.push(r.text().await.unwrap());
        let logs = service.drain_stderr(std::time::Duration::from_millis(500)).await;
        assert!(logs.len() > 10, "the debug log is empty: {logs:?}");
        for (what, text) in [("metrics", metrics().await), ("logs", logs.join("\n")), ("bodies", bodies.join("\n"))] {
            assert!(!text.contains(&secret), "the key's secret is in the {what}");
        }
        service.kill().await;
    }
}

use futures::StreamExt;

both_stores! {
    /// Two keys sending one `Idempotency-Key` never share a remembered response: each create
    /// runs, and each replay gives its own caller's document back.
    async fn idempotency_keys_are_scoped_to_the_api_key(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_token(&app, "Scoped", "o@scoped.com").await;
        let a = app.make_key(&t, "a", "member").await["key"].as_str().unwrap().to_owned();
        let b = app.make_key(&t, "b", "member").await["key"].as_str().unwrap().to_owned();
        let create = |key: String, n: i64| {
            let app = &app;
            async move {
                let r = app.client.post(app.url("/org/documents")).header("x-api-key", key)
                    .header("idempotency-key", "same-key-1").json(&json!({"n": n})).send().await.unwrap();
                assert_eq!(r.status(), 201);
                let replayed = r.headers().get("idempotent-replayed").is_some();
                (json_body(r).await["id"].as_str().unwrap().to_owned(), replayed)
            }
        };
        let (first_a, replayed) = create(a.clone(), 1).await;
        assert!(!replayed);
        let (first_b, replayed) = create(b.clone(), 2).await;
        assert!(!replayed, "b got a's remembered response");
        assert_ne!(first_a, first_b);
        assert_eq!(create(a, 1).await, (first_a, true));
        assert_eq!(create(b, 2).await, (first_b, true));
        let r = app.call(Method::GET, "/org/documents/count", &t, None).await;
        assert_eq!(json_body(r).await["count"], 2);
    }
}
