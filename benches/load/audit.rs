//! The audit figures of the load benchmark: renames (each re-authenticates with bcrypt and
//! appends an event) against the bcrypt-verify ceiling, so the log is shown not to be the
//! bottleneck; and `GET /org/audit` p99 over a long log, on the first page and deep in it.

use std::sync::Arc;
use std::time::Duration;

use org_service::domain::{AuditAction, AuditActor, AuditContext, AuditTarget, NewEvent};
use org_service::storage::Store;
use serde_json::{json, Value};

use super::common::{oha_request, oha_with, round, sign_up};
use super::{Bench, PASSWORD};

impl Bench {
    /// Adds `rename_throughput` and `audit_pages`.
    pub(super) async fn audit_figures(
        &self,
        base: &str,
        store: &Arc<dyn Store>,
        verify: Duration,
        figures: &mut serde_json::Map<String, Value>,
    ) {
        let client = reqwest::Client::new();
        let email = "owner@audit.example";
        let token = sign_up(&client, base, "Audit Bench", email, PASSWORD).await;
        let bearer = format!("authorization: Bearer {token}");
        let phase = self.mode.phase;

        // Renames to the same name: each one a bcrypt verify, a store write and an event.
        let body =
            json!({"organization_name": "Audit Bench", "email": email, "password": PASSWORD})
                .to_string();
        let renames = oha_request(
            &self.oha,
            phase,
            self.cores * 2,
            "PUT",
            &format!("{base}/org/update"),
            Some(&body),
            &[bearer.as_str()],
        );
        let ceiling = self.cores as f64 / verify.as_secs_f64();
        figures.insert(
            "rename_throughput".into(),
            json!({ "api": renames.json(), "ceiling_rps": round(ceiling), "ratio": round(renames.ok_rps / ceiling) }),
        );

        // A long log, stored in bulk through the store (FerretDB reads the collection for each
        // page, so it gets fewer, as with documents).
        let org = store
            .organization_by_slug("audit_bench")
            .await
            .unwrap()
            .expect("the audit organization");
        let events = if self.store == "mongodb" {
            self.mode.audit_events / 10
        } else {
            self.mode.audit_events
        };
        let context = AuditContext::new("203.0.113.7".into(), Some("bench/1"), Some("r"));
        for start in (0..events).step_by(10_000) {
            let batch: Vec<NewEvent> = (start..(start + 10_000).min(events))
                .map(|i| {
                    NewEvent::new(
                        (&org.id, &org.slug),
                        AuditAction::LoginFailed,
                        AuditActor::account("bench", "bench@audit.example"),
                        AuditTarget::new("account", &format!("a{i}"), Some("bench@audit.example")),
                        &context,
                        Default::default(),
                    )
                })
                .collect();
            store.record_events(&batch).await.unwrap();
        }
        let first = oha_with(
            &self.oha,
            phase,
            8,
            &format!("{base}/org/audit?limit=50"),
            None,
            &[bearer.as_str()],
        );
        let deep_cursor = events / 2;
        let deep = oha_with(
            &self.oha,
            phase,
            8,
            &format!("{base}/org/audit?limit=50&cursor={deep_cursor}"),
            None,
            &[bearer.as_str()],
        );
        figures.insert(
            "audit_pages".into(),
            json!({
                "events": events, "deep_cursor": deep_cursor,
                "first": first.json(), "deep": deep.json(),
                "ratio": round(deep.p99_ms / first.p99_ms),
            }),
        );
    }
}
