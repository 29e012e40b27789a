//! `/health` and `/health/live`.

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// Health reports the store connected; liveness answers without the store.
    async fn health_reports_a_connected_store(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(json_body(r).await, json!({"status": "healthy", "database": "connected"}));
        let r = app.client.get(app.url("/health/live")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(json_body(r).await, json!({"status": "alive"}));
    }
}

both_stores! {
    /// Unknown paths and methods get the JSON envelope too.
    async fn unknown_routes_get_the_envelope(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.get(app.url("/nope")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(json_body(r).await["detail"].is_string());
        let r = app.client.patch(app.url("/org/create")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert!(json_body(r).await["detail"].is_string());
    }
}
