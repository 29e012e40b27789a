//! A rename moves the tenant's collection without copying documents: 50,000 documents all
//! arrive. (The timing comparison with an empty rename is the benchmark's job, not a test's.)

use std::time::Instant;

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// Renaming a tenant with 50,000 documents keeps every one of them.
    async fn rename_of_a_large_tenant_keeps_every_document(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Big Tenant", "big@t.com").await;
        let org = app.store.organization_by_slug("big_tenant").await.unwrap().unwrap();
        for chunk in 0..5 {
            let docs = (0..10_000).map(|i| json!({"n": chunk * 10_000 + i, "payload": "x".repeat(32)})).collect();
            app.store.insert_tenant_documents(&org, docs).await.unwrap();
        }
        assert_eq!(app.store.count_tenant_documents(&org).await.unwrap(), 50_000);
        let token = app.token("big@t.com", PASSWORD).await;
        let started = Instant::now();
        let r = app.update_org(Some(&token), "Big Tenant Renamed", "big@t.com", PASSWORD).await;
        println!("rename of 50,000 documents ({:?}): {:?}", app.backend, started.elapsed());
        assert_eq!(r.status(), 200);
        let renamed = app.store.organization_by_slug("big_tenant_renamed").await.unwrap().unwrap();
        assert_eq!(app.store.count_tenant_documents(&renamed).await.unwrap(), 50_000);
        app.assert_consistent(1).await;
    }
}
