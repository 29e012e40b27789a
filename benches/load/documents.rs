//! The documents figures of the load benchmark: reading one document beside reading one
//! organization (the same HTTP and auth path plus one keyed read), and with an API key beside a
//! token, storing 1 KiB documents,
//! list pages at the start and deep into a large tenant, and a filtered count over it.

use std::sync::Arc;

use org_service::domain::{Filter, OrgName};
use org_service::storage::Store;
use serde_json::{json, Value};

use super::common::{oha_with, round, sign_up};
use super::{Bench, PASSWORD};

impl Bench {
    /// Adds `document_get` (with a token, and with an API key), `document_create`,
    /// `document_pages` and `document_count`.
    pub(super) async fn document_figures(
        &self,
        base: &str,
        store: &Arc<dyn Store>,
        figures: &mut serde_json::Map<String, Value>,
    ) {
        let client = reqwest::Client::new();
        let token = sign_up(&client, base, "Doc Org", "owner@docs.example", PASSWORD).await;
        let bearer = format!("authorization: Bearer {token}");
        let headers = [bearer.as_str()];
        let one: Value = client
            .post(format!("{base}/org/documents"))
            .bearer_auth(&token)
            .json(&json!({"title": "bench", "n": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = one["id"].as_str().unwrap();
        let phase = self.mode.phase;
        let get = oha_with(
            &self.oha,
            phase,
            32,
            &format!("{base}/org/documents/{id}"),
            None,
            &headers,
        );
        let org = oha_with(
            &self.oha,
            phase,
            32,
            &format!("{base}/org/get?organization_name=Doc%20Org"),
            None,
            &[],
        );
        figures.insert(
            "document_get_c32".into(),
            json!({
                "api": get.json(), "get_org": org.json(), "ratio": round(get.ok_rps / org.ok_rps),
            }),
        );

        // The same read with an API key: one hash and one keyed read of the key instead of the
        // token's three reads (account, membership, organization) and its signature check.
        let made: Value = client
            .post(format!("{base}/org/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench", "role": "viewer"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key_header = format!("x-api-key: {}", made["key"].as_str().unwrap());
        let keyed = oha_with(
            &self.oha,
            phase,
            32,
            &format!("{base}/org/documents/{id}"),
            None,
            &[key_header.as_str()],
        );
        figures.insert(
            "document_get_api_key_c32".into(),
            json!({
                "api_key": keyed.json(), "bearer": get.json(), "ratio": round(keyed.ok_rps / get.ok_rps),
            }),
        );

        let kib = json!({"title": "x".repeat(900), "n": 1, "tags": ["a", "b"]}).to_string();
        let create = oha_with(
            &self.oha,
            phase,
            32,
            &format!("{base}/org/documents"),
            Some(&kib),
            &headers,
        );
        // oha counts 200s as ok; a create is a 201, so its rate is all responses here (the
        // quota is far away and nothing else refuses a valid body).
        figures.insert(
            "document_create_c32".into(),
            json!({ "rps": round(create.rps), "p99_ms": round(create.p99_ms), "bytes": kib.len() }),
        );

        // A large tenant, stored in bulk through the store: pages at the start and deep in.
        // FerretDB answers every query but one on `_id` by reading the whole collection, so it
        // gets fewer (as with `many_orgs_ferretdb`); on MongoDB itself use the full number.
        let documents = if self.store == "mongodb" {
            self.mode.many_orgs_ferretdb * 2
        } else {
            self.mode.large_docs * 2
        };
        let deep_page = documents / 100;
        let big_token = sign_up(&client, base, "Big Docs", "owner@big.example", PASSWORD).await;
        let big = store
            .organization_by_slug(OrgName::parse("Big Docs").unwrap().slug())
            .await
            .unwrap()
            .unwrap();
        for start in (0..documents).step_by(10_000) {
            let docs = (start..(start + 10_000).min(documents))
                .map(|i| json!({"i": i, "k": i % 10, "payload": "x".repeat(64)}))
                .collect();
            store.insert_tenant_documents(&big, docs).await.unwrap();
        }
        let big_bearer = format!("authorization: Bearer {big_token}");
        let big_headers = [big_bearer.as_str()];
        let before_deep = store
            .list_documents(
                &big,
                &Filter::default(),
                None,
                ((deep_page - 1) * 100) as u32,
            )
            .await
            .unwrap();
        let cursor = &before_deep.last().expect("documents").id;
        let first = oha_with(
            &self.oha,
            phase,
            8,
            &format!("{base}/org/documents?limit=100"),
            None,
            &big_headers,
        );
        let deep = oha_with(
            &self.oha,
            phase,
            8,
            &format!("{base}/org/documents?limit=100&cursor={cursor}"),
            None,
            &big_headers,
        );
        figures.insert(
            "document_pages".into(),
            json!({
                "documents": documents, "deep_page": deep_page,
                "first_p99_ms": round(first.p99_ms), "deep_p99_ms": round(deep.p99_ms),
                "ratio": round(deep.p99_ms / first.p99_ms),
            }),
        );
        let count = oha_with(
            &self.oha,
            phase,
            8,
            &format!("{base}/org/documents/count?filter=%7B%22k%22%3A7%7D"),
            None,
            &big_headers,
        );
        figures.insert(
            "document_count".into(),
            json!({
                "documents": documents, "rps": round(count.ok_rps), "p99_ms": round(count.p99_ms),
            }),
        );
    }
}
