//! Headers, CORS, demo mode, rate limits, and 500s that leak nothing.

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// Responses carry nosniff and no version banner.
    async fn responses_carry_security_headers(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.get_org("x").await;
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.headers().get("server").is_none());
        assert!(r.headers().get("x-request-id").is_some());
        let r = app.client.get(app.url("/health")).header("x-request-id", "abc-123").send().await.unwrap();
        assert_eq!(r.headers()["x-request-id"], "abc-123", "a caller's request id is echoed");
    }
}

both_stores! {
    /// CORS allows only configured origins, never "*".
    async fn cors_allows_only_configured_origins(backend: Backend) {
        let app = spawn_app_with(backend, &[("CORS_ORIGINS", "https://app.example.com")]).await;
        let allowed = app.client.get(app.url("/health")).header("origin", "https://app.example.com").send().await.unwrap();
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
        let other = app.client.get(app.url("/health")).header("origin", "https://evil.example").send().await.unwrap();
        assert!(other.headers().get("access-control-allow-origin").is_none());
        let preflight = app.client.request(reqwest::Method::OPTIONS, app.url("/org/create"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST").send().await.unwrap();
        assert!(preflight.headers().get("access-control-allow-origin").is_none());
    }
}

both_stores! {
    /// Demo data and its route exist only when DEMO_MODE is switched on.
    async fn demo_mode_is_off_by_default(backend: Backend) {
        let app = spawn_app(backend.clone()).await;
        assert_eq!(app.post_json("/demo/create-sample-data", &json!({})).await.status(), 404);
        assert_eq!(app.get_org("Demo Company").await.status(), 404);
        assert_eq!(app.login("admin@democompany.com", "DemoPass123!").await.status(), 401);
        app.assert_consistent(0).await;

        let demo = spawn_app_with(backend, &[("DEMO_MODE", "true")]).await;
        assert_eq!(demo.get_org("Demo Company").await.status(), 200);
        assert_eq!(demo.login("admin@democompany.com", "DemoPass123!").await.status(), 200);
        let r = demo.post_json("/demo/create-sample-data", &json!({})).await;
        assert_eq!(r.status(), 201);
        assert_eq!(json_body(r).await["existing"].as_array().unwrap().len(), 3);
        demo.assert_consistent(3).await;
    }
}

both_stores! {
    /// Per-address limits: past the create burst, 429 with Retry-After; RATE_LIMITS=off lifts it.
    async fn create_is_rate_limited_per_address(backend: Backend) {
        let app = spawn_app(backend.clone()).await;
        let mut statuses = Vec::new();
        for i in 0..25 {
            statuses.push(app.create_org("", &format!("x{i}@x.co"), PASSWORD).await);
        }
        let limited = statuses.iter().filter(|r| r.status() == 429).count();
        assert_eq!(limited, 5, "burst of 20 creates per address");
        let r = statuses.pop().unwrap();
        assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

        let unlimited = spawn_app_with(backend, &[("RATE_LIMITS", "off")]).await;
        for i in 0..25 {
            assert_eq!(unlimited.create_org("", &format!("x{i}@x.co"), PASSWORD).await.status(), 422);
        }
    }
}

both_stores! {
    /// A corrupt record makes a 500 that says "internal server error" and nothing else.
    async fn internal_errors_leak_nothing(backend: Backend) {
        let app = spawn_app(backend.clone()).await;
        corrupt_an_organization(&app, "Broken").await;
        let r = app.get_org("Broken").await;
        assert_eq!(r.status(), 500);
        assert_eq!(json_body(r).await, json!({"detail": "internal server error"}));
    }
}

/// Writes an organization record with an unparseable timestamp, behind the service's back.
async fn corrupt_an_organization(app: &TestApp, name: &str) {
    let slug = name.to_lowercase();
    match &app.backend {
        Backend::Embedded => {
            let path = &app.location.env["DATABASE_PATH"];
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute(
                "INSERT INTO organizations (id, name, slug, collection_name, admin_email, created_at) VALUES ('0123456789abcdef01234567', ?1, ?2, ?3, 'c@x.co', 'not a time')",
                rusqlite::params![name, slug, format!("org_{slug}")],
            ).unwrap();
        }
        Backend::Mongo(url) | Backend::MongoShared(url) => {
            let client = mongodb::Client::with_uri_str(url).await.unwrap();
            let db = client.database(&app.location.env["MASTER_DB_NAME"]);
            db.collection::<mongodb::bson::Document>("organizations")
                .insert_one(mongodb::bson::doc! {
                    "_id": "0123456789abcdef01234567", "name": name, "slug": &slug,
                    "collection_name": format!("org_{slug}"), "admin_email": "c@x.co",
                    "created_at": "not a time", "state": "active",
                })
                .await
                .unwrap();
            // With its slug's reservation, through which the store finds it by name.
            db.collection::<mongodb::bson::Document>("reservations")
                .insert_one(mongodb::bson::doc! {
                    "_id": format!("slug:{slug}"), "organization_id": "0123456789abcdef01234567",
                    "created_at": mongodb::bson::DateTime::now(),
                })
                .await
                .unwrap();
        }
    }
}

both_stores! {
    /// A client that never finishes its headers is disconnected instead of pinning a connection.
    async fn slow_clients_are_disconnected(backend: Backend) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = spawn_app_with(backend, &[("HTTP_HEADER_TIMEOUT_SECONDS", "1")]).await;
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = Vec::new();
        // The server must end the connection by itself; the 20 s bound only keeps a broken
        // server from hanging the test.
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server kept a half-sent request open");
        assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
        // A normal client on another connection is served meanwhile and after.
        assert_eq!(app.client.get(app.url("/health/live")).send().await.unwrap().status(), 200);
    }
}

both_stores! {
    /// Header key hints (`kid`, `jku`, `x5u`) are never trusted: a token signed with another key
    /// that points at it is refused, and one signed with ours is verified with ours regardless.
    async fn token_header_key_hints_are_ignored(backend: Backend) {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        let admin = app.store.account_by_email("a@acme.com").await.unwrap().unwrap();
        let org = app.store.organization_by_slug("acme").await.unwrap().unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": admin.id, "admin_id": admin.id, "organization_id": org.id,
            "ver": 0, "iat": now, "nbf": now, "exp": now + 60, "jti": "k"});
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("attacker-key".into());
        header.jku = Some("https://attacker.example/jwks.json".into());
        header.x5u = Some("https://attacker.example/cert.pem".into());
        let evil = encode(&header, &claims, &EncodingKey::from_secret(b"attacker-controlled-key-material!").unwrap()).unwrap();
        let r = app.client.post(app.url("/admin/logout")).bearer_auth(&evil).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let ours = encode(&header, &claims, &EncodingKey::from_secret(TEST_SECRET.as_bytes()).unwrap()).unwrap();
        let r = app.client.post(app.url("/admin/logout")).bearer_auth(&ours).send().await.unwrap();
        assert_eq!(r.status(), 204);
    }
}

both_stores! {
    /// A request running past REQUEST_TIMEOUT_SECONDS is answered with 503 and the envelope.
    async fn slow_requests_are_cut_off(backend: Backend) {
        // The create pauses 2.5 s inside the store: past the timeout on any machine.
        let app = spawn_app_with(backend, &[("REQUEST_TIMEOUT_SECONDS", "1"), ("ORG_SERVICE_FAILPOINTS", "create.after_admin=2500ms")]).await;
        let r = app.create_org("Slow", "s@slow.com", PASSWORD).await;
        assert_eq!(r.status(), 503);
        assert!(json_body(r).await["detail"].is_string());
    }
}
