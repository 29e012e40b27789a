//! `Idempotency-Key` on POSTs: the same key and request get the first response again, on both
//! stores, also when the first answer was lost to the request timeout.

use std::time::Duration;

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

async fn create_with_key(app: &TestApp, key: &str, name: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/org/create"))
        .header("idempotency-key", key)
        .json(&json!({"organization_name": name, "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

both_stores! {
    /// The same key and body: one organization, the first response replayed; another body:
    /// 422; a malformed key: 422; logins replay the same tokens.
    async fn the_same_key_replays_the_first_response(backend: Backend) {
        let app = spawn_app(backend).await;
        let first = create_with_key(&app, "key-1", "Once Only", "o@once.example").await;
        assert_eq!(first.status(), 201);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first_body = json_body(first).await;
        let again = create_with_key(&app, "key-1", "Once Only", "o@once.example").await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.headers()["content-type"], "application/json");
        assert_eq!(json_body(again).await, first_body);
        app.assert_consistent(1).await;

        let other = create_with_key(&app, "key-1", "Twice", "t@twice.example").await;
        assert_422_on(other, "Idempotency-Key").await;
        let bad = create_with_key(&app, "has space", "Spaced", "s@spaced.example").await;
        assert_422_on(bad, "Idempotency-Key").await;
        // A key is per path: the same key elsewhere is a fresh request.
        let login = |key: &'static str| app.client.post(app.url("/admin/login")).header("idempotency-key", key)
            .json(&json!({"email": "o@once.example", "password": PASSWORD})).send();
        let a = json_body(login("key-1").await.unwrap()).await;
        let b = json_body(login("key-1").await.unwrap()).await;
        assert_eq!(a["access_token"], b["access_token"], "the login was replayed");
        assert_eq!(a["refresh_token"], b["refresh_token"]);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Eight concurrent creates with one key: one organization; every answer is its 201.
    async fn concurrent_requests_with_one_key_create_once(backend: Backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMITS", "off")]).await;
        let responses = futures::future::join_all((0..8).map(|_| create_with_key(&app, "same-key", "Raced Once", "r@raced.example"))).await;
        let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        let fresh = responses.iter().filter(|r| r.headers().get("idempotent-replayed").is_none()).count();
        assert_eq!(fresh, 1, "exactly one request ran");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// A create that outlives the request timeout is answered 503, yet finishes; the client's
    /// retry with the same key gets its 201, not a 409 for its own organization.
    async fn a_retry_after_a_timeout_gets_the_committed_201(backend: Backend) {
        // The pause, not a slow password hash, makes the create outlast the timeout: how fast
        // bcrypt runs depends on the machine.
        let app = spawn_app_with(backend, &[
            ("REQUEST_TIMEOUT_SECONDS", "1"),
            ("ORG_SERVICE_FAILPOINTS", "create.after_admin=2500ms"),
            ("RATE_LIMITS", "off"),
        ]).await;
        let first = create_with_key(&app, "slow-key", "Slow Corp", "s@slow.example").await;
        assert_eq!(first.status(), 503, "a create paused for 2.5 s outlasts a 1 s request timeout");
        let mut retry = None;
        for _ in 0..60 {
            let r = create_with_key(&app, "slow-key", "Slow Corp", "s@slow.example").await;
            if r.status() != 409 && r.status() != 503 {
                retry = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let retry = retry.expect("the retry got an answer other than 409/503 within 30 s");
        assert_eq!(retry.status(), 201);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(json_body(retry).await["organization_name"], "Slow Corp");
        app.assert_consistent(1).await;
    }
}
