//! Issue 12: the organization's own documents through the API, on both stores and both
//! MongoDB layouts: versions and `If-Match`, merge patch, the body rules, the quota, exact
//! filters, cursor paging, roles, and isolation between organizations.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;
use crate::team_helpers::*;

impl TestApp {
    async fn new_doc(&self, token: &str, data: Value) -> Value {
        let r = self
            .call_with(Method::POST, "/org/documents", token, Some(&data), &[])
            .await;
        assert_eq!(r.status(), 201, "create {data}");
        json_body(r).await
    }
}

async fn owner_of(app: &TestApp, name: &str, email: &str) -> String {
    app.given_org(name, email).await;
    access(&json_body(app.login(email, PASSWORD).await).await)
}

fn etag(r: &Response) -> String {
    r.headers()["etag"].to_str().unwrap().to_owned()
}

both_stores! {
    /// Create, read, replace, merge-patch and delete, with versions as ETags and If-Match
    /// deciding: a stale one is a 412 that changes nothing.
    async fn documents_have_versions_and_if_match(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_of(&app, "Docs", "o@docs.com").await;
        let r = app.call_with(Method::POST, "/org/documents", &t, Some(&json!({"title": "a", "n": {"x": 1, "y": 2}})), &[]).await;
        assert_eq!(r.status(), 201);
        assert_eq!(etag(&r), "\"1\"");
        let created = json_body(r).await;
        assert_eq!(created["version"], 1);
        assert_eq!(created["data"], json!({"title": "a", "n": {"x": 1, "y": 2}}));
        assert_eq!(created["created_at"], created["updated_at"]);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 24);
        let path = format!("/org/documents/{id}");
        let r = app.call_with(Method::GET, &path, &t, None, &[]).await;
        assert_eq!((r.status().as_u16(), etag(&r)), (200, "\"1\"".to_owned()));
        assert_eq!(json_body(r).await["data"], created["data"]);

        let r = app.call_with(Method::PUT, &path, &t, Some(&json!({"title": "b", "n": {"x": 1}})), &[("If-Match", "\"1\"")]).await;
        assert_eq!((r.status().as_u16(), etag(&r)), (200, "\"2\"".to_owned()));
        let stale = app.call_with(Method::PUT, &path, &t, Some(&json!({"title": "lost"})), &[("If-Match", "\"1\"")]).await;
        assert_eq!(stale.status(), 412);
        let r = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&t)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", "\"2\"")
            .body(r#"{"n": {"y": 3, "x": null}, "tags": ["t"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let patched = json_body(r).await;
        assert_eq!(patched["version"], 3);
        assert_eq!(patched["data"], json!({"title": "b", "n": {"y": 3}, "tags": ["t"]}));
        // Without If-Match a write applies to the current version.
        let r = app.call_with(Method::PUT, &path, &t, Some(&json!({"title": "c"})), &[]).await;
        assert_eq!(json_body(r).await["version"], 4);
        assert_eq!(app.call_with(Method::DELETE, &path, &t, None, &[("If-Match", "\"3\"")]).await.status(), 412);
        assert_eq!(app.call_with(Method::DELETE, &path, &t, None, &[("If-Match", "W/\"4\"")]).await.status(), 412);
        let r = app.call_with(Method::GET, &path, &t, None, &[]).await;
        assert_eq!(json_body(r).await["data"], json!({"title": "c"}), "refused writes changed nothing");
        assert_eq!(app.call_with(Method::DELETE, &path, &t, None, &[("If-Match", "\"4\"")]).await.status(), 204);
        for method in [Method::GET, Method::DELETE] {
            assert_eq!(app.call_with(method, &path, &t, None, &[]).await.status(), 404);
        }
        assert_eq!(app.call_with(Method::PUT, &path, &t, Some(&json!({})), &[]).await.status(), 404);
        assert_eq!(app.call_with(Method::GET, "/org/documents/not-an-id", &t, None, &[]).await.status(), 404);
    }
}

both_stores! {
    /// Ten concurrent PUTs conditioned on one version: exactly one 200, nine 412.
    async fn one_if_match_wins_once(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_of(&app, "Race Docs", "o@race.com").await;
        let id = app.new_doc(&t, json!({"n": 0})).await["id"].as_str().unwrap().to_owned();
        let path = format!("/org/documents/{id}");
        let puts = (0..10).map(|i| {
            let (app, t, path) = (&app, &t, &path);
            async move {
                app.call_with(Method::PUT, path, t, Some(&json!({"n": i})), &[("If-Match", "\"1\"")]).await.status().as_u16()
            }
        });
        let statuses = futures::future::join_all(puts).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 9, "{statuses:?}");
        let r = app.call_with(Method::GET, &path, &t, None, &[]).await;
        assert_eq!(json_body(r).await["version"], 2);
        // Without If-Match, concurrent writes all apply, one after another.
        let puts = (0..6).map(|i| {
            let (app, t, path) = (&app, &t, &path);
            async move { app.call_with(Method::PUT, path, t, Some(&json!({"m": i})), &[]).await.status().as_u16() }
        });
        assert!(futures::future::join_all(puts).await.iter().all(|s| *s == 200));
        let r = app.call_with(Method::GET, &path, &t, None, &[]).await;
        assert_eq!(json_body(r).await["version"], 8);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// The body rules: an object, at most MAX_DOCUMENT_BYTES, nested at most 32 levels, no key
    /// starting with `$` or holding `.` or NUL (422); a body far over the limit is a 413; the
    /// quota is a 403 naming it. Nothing refused is stored.
    async fn bodies_are_checked_and_the_quota_holds(backend: Backend) {
        let app = spawn_app_with(backend, &[("MAX_DOCUMENT_BYTES", "1024"), ("TENANT_MAX_DOCUMENTS", "2")]).await;
        let t = owner_of(&app, "Limits", "o@limits.com").await;
        let mut deep = json!({"leaf": 1});
        for _ in 0..32 {
            deep = json!({"a": deep});
        }
        for bad in [
            json!({"$set": 1}),
            json!({"a.b": 1}),
            json!({"ok": {"$inc": 1}}),
            json!({"nul\u{0}": 1}),
            deep,
            json!({"big": "x".repeat(1100)}),
        ] {
            let r = app.call_with(Method::POST, "/org/documents", &t, Some(&bad), &[]).await;
            assert_eq!(r.status(), 422, "{bad}");
        }
        for not_object in ["[1]", "\"x\"", "1"] {
            let r = app.client.post(app.url("/org/documents")).bearer_auth(&t)
                .header("content-type", "application/json").body(not_object).send().await.unwrap();
            assert_eq!(r.status(), 422, "{not_object}");
        }
        let huge = json!({"big": "x".repeat(4000)});
        assert_eq!(app.call_with(Method::POST, "/org/documents", &t, Some(&huge), &[]).await.status(), 413);
        let count = || {
            let (t, app) = (t.clone(), &app);
            async move { json_body(app.call_with(Method::GET, "/org/documents/count", &t, None, &[]).await).await["count"].clone() }
        };
        assert_eq!(count().await, 0);
        let first = app.new_doc(&t, json!({"n": 1})).await;
        app.new_doc(&t, json!({"n": 2})).await;
        let r = app.call_with(Method::POST, "/org/documents", &t, Some(&json!({"n": 3})), &[]).await;
        assert_eq!(r.status(), 403);
        assert!(json_body(r).await["detail"].as_str().unwrap().contains("quota"));
        assert_eq!(count().await, 2);
        // A patch whose result breaks a rule changes nothing.
        let path = format!("/org/documents/{}", first["id"].as_str().unwrap());
        let r = app.client.patch(app.url(&path)).bearer_auth(&t)
            .header("content-type", "application/merge-patch+json")
            .body(format!(r#"{{"big": "{}"}}"#, "x".repeat(1100))).send().await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(json_body(app.call_with(Method::GET, &path, &t, None, &[]).await).await["version"], 1);
    }
}

/// Documents whose fields differ only in type, and what each filter finds (the same on every
/// store: this table is the comparison).
fn filter_cases() -> (Vec<Value>, Vec<(Value, Vec<usize>)>) {
    let docs = vec![
        json!({"a": 1}),
        json!({"a": 1.0}),
        json!({"a": true}),
        json!({"a": "1"}),
        json!({"a": null}),
        json!({}),
        json!({"a": [1]}),
        json!({"a": {"b": 1}}),
        json!({"b": {"c": "x"}, "k": 2.5}),
        json!({"tags": ["x"], "b": {"c": "y"}}),
        json!({"list": [{"c": "x"}]}),
    ];
    let cases = vec![
        (json!({"a": 1}), vec![0, 1]),
        (json!({"a": 1.0}), vec![0, 1]),
        (json!({"a": true}), vec![2]),
        (json!({"a": false}), vec![]),
        (json!({"a": "1"}), vec![3]),
        (json!({"a": null}), vec![4]),
        (json!({"a.b": 1}), vec![7]),
        (json!({"b.c": "x"}), vec![8]),
        (json!({"b.c": "x", "k": 2.5}), vec![8]),
        (json!({"b.c": "x", "k": 2}), vec![]),
        (json!({"tags": "x"}), vec![]),
        (json!({"list.c": "x"}), vec![]),
        (json!({"missing": null}), vec![]),
        (json!({}), (0..11).collect()),
    ];
    (docs, cases)
}

both_stores! {
    /// Filters compare type and value exactly, never descend into arrays, and give the same
    /// documents on every store (the expected table is shared); list and count agree.
    async fn filters_are_exact_and_the_same_on_every_store(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_of(&app, "Filters", "o@filters.com").await;
        let (docs, cases) = filter_cases();
        let mut ids = Vec::new();
        for d in docs {
            ids.push(app.new_doc(&t, d).await["id"].as_str().unwrap().to_owned());
        }
        for (filter, expected) in cases {
            let encoded: String = url_encode(&filter.to_string());
            let r = app.call_with(Method::GET, &format!("/org/documents?limit=100&filter={encoded}"), &t, None, &[]).await;
            assert_eq!(r.status(), 200, "{filter}");
            let got: Vec<String> = json_body(r).await["documents"].as_array().unwrap().iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()).collect();
            let want: Vec<String> = expected.iter().map(|i| ids[*i].clone()).collect();
            assert_eq!(got, want, "{filter}");
            let r = app.call_with(Method::GET, &format!("/org/documents/count?filter={encoded}"), &t, None, &[]).await;
            assert_eq!(json_body(r).await["count"], expected.len(), "count {filter}");
        }
        for bad in [r#"{"a":{"$gt":0}}"#, r#"{"$where":"1"}"#, "[1]", r#"{"a":[1]}"#, "nope"] {
            let r = app.call_with(Method::GET, &format!("/org/documents?filter={}", url_encode(bad)), &t, None, &[]).await;
            assert_eq!(r.status(), 422, "{bad}");
            let r = app.call_with(Method::GET, &format!("/org/documents/count?filter={}", url_encode(bad)), &t, None, &[]).await;
            assert_eq!(r.status(), 422, "count {bad}");
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

both_stores! {
    /// Oldest first (ids sort by creation), paged by cursor with no repeats or gaps; bad
    /// cursors and limits are 422s.
    async fn documents_are_paged_oldest_first(backend: Backend) {
        let app = spawn_app(backend).await;
        let t = owner_of(&app, "Paging", "o@paging.com").await;
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(app.new_doc(&t, json!({"i": i})).await["id"].as_str().unwrap().to_owned());
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids sort by creation");
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let path = match &cursor {
                None => "/org/documents?limit=3".to_owned(),
                Some(c) => format!("/org/documents?limit=3&cursor={c}"),
            };
            let page = json_body(app.call_with(Method::GET, &path, &t, None, &[]).await).await;
            pages += 1;
            seen.extend(page["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!((pages, seen), (3, ids));
        for bad in ["limit=0", "limit=101", "cursor=zzz"] {
            assert_eq!(app.call_with(Method::GET, &format!("/org/documents?{bad}"), &t, None, &[]).await.status(), 422, "{bad}");
        }
    }
}

both_stores! {
    /// Viewers read, members write; another organization's token reaches nothing of this one,
    /// by id, list, count or filter; a rename keeps every document.
    async fn roles_and_isolation(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = owner_of(&app, "Alpha", "o@alpha.com").await;
        let viewer = access(&app.join(&owner, "v@alpha.com", "viewer").await);
        let member = access(&app.join(&owner, "m@alpha.com", "member").await);
        let doc = app.new_doc(&member, json!({"secret": "alpha", "owner": "o@alpha.com"})).await;
        let id = doc["id"].as_str().unwrap().to_owned();
        let path = format!("/org/documents/{id}");
        assert_eq!(app.call_with(Method::GET, &path, &viewer, None, &[]).await.status(), 200);
        assert_eq!(app.call_with(Method::POST, "/org/documents", &viewer, Some(&json!({})), &[]).await.status(), 403);
        assert_eq!(app.call_with(Method::PUT, &path, &viewer, Some(&json!({})), &[]).await.status(), 403);
        assert_eq!(app.call_with(Method::DELETE, &path, &viewer, None, &[]).await.status(), 403);

        let other = owner_of(&app, "Beta", "o@beta.com").await;
        for method in [Method::GET, Method::DELETE] {
            assert_eq!(app.call_with(method, &path, &other, None, &[]).await.status(), 404);
        }
        assert_eq!(app.call_with(Method::PUT, &path, &other, Some(&json!({"x": 1})), &[]).await.status(), 404);
        let org = json_body(app.get_org("Alpha").await).await;
        for filter in [json!({}), json!({"secret": "alpha"}), json!({"organization_id": org["organization_id"]}), json!({"_id": id})] {
            let encoded = url_encode(&filter.to_string());
            let page = json_body(app.call_with(Method::GET, &format!("/org/documents?filter={encoded}"), &other, None, &[]).await).await;
            assert_eq!(page["documents"], json!([]), "{filter}");
            let count = json_body(app.call_with(Method::GET, &format!("/org/documents/count?filter={encoded}"), &other, None, &[]).await).await;
            assert_eq!(count["count"], 0, "{filter}");
        }
        let r = app.call_with(Method::GET, &path, &owner, None, &[]).await;
        assert_eq!(json_body(r).await["data"]["secret"], "alpha", "the other organization changed nothing");

        let r = app.update_org(Some(&owner), "Alpha Renamed", "o@alpha.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let r = app.call_with(Method::GET, &path, &owner, None, &[]).await;
        assert_eq!(json_body(r).await["data"]["secret"], "alpha", "a rename keeps documents");
        assert_eq!(app.delete_org(Some(&owner), "Alpha Renamed").await.status(), 204);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Arrays inside arrays are stored where the server can hold them (the embedded store,
    /// MongoDB); FerretDB cannot, and the answer is a 422 saying so, with nothing stored, for a
    /// create, a replace and a merge patch alike, never a 500.
    async fn arrays_in_arrays_are_stored_or_refused_clearly(backend: Backend) {
        let app = spawn_app(backend.clone()).await;
        let t = owner_of(&app, "Nested", "o@nested.com").await;
        let nested = json!({"grid": [[1, 2], [], [null]]});
        let r = app.call_with(Method::POST, "/org/documents", &t, Some(&nested), &[]).await;
        let plain = app.new_doc(&t, json!({"grid": "flat"})).await;
        let path = format!("/org/documents/{}", plain["id"].as_str().unwrap());
        let put = app.call_with(Method::PUT, &path, &t, Some(&nested), &[]).await;
        let patch = app.client.patch(app.url(&path)).bearer_auth(&t)
            .header("content-type", "application/merge-patch+json").body(nested.to_string()).send().await.unwrap();
        let statuses = [r.status().as_u16(), put.status().as_u16(), patch.status().as_u16()];
        let count = || app.call_with(Method::GET, "/org/documents/count", &t, None, &[]);
        if statuses == [201, 200, 200] {
            assert_eq!(json_body(r).await["data"], nested);
            assert_eq!(json_body(count().await).await["count"], 2);
        } else {
            assert!(!matches!(backend, Backend::Embedded), "the embedded store holds any JSON");
            assert_eq!(statuses, [422, 422, 422]);
            let detail = json_body(r).await["detail"][0]["msg"].as_str().unwrap().to_owned();
            assert!(detail.contains("nested arrays"), "{detail}");
            assert_eq!(json_body(count().await).await["count"], 1);
            let kept = json_body(app.call_with(Method::GET, &path, &t, None, &[]).await).await;
            assert_eq!((kept["version"].clone(), kept["data"].clone()), (json!(1), json!({"grid": "flat"})));
        }
    }
}
