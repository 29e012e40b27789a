//! The MongoDB reconciler against an organization created while a pass runs: the pass must
//! not take the new tenant collection, or its admin's refresh token, for an orphan. (The embedded store's pass is
//! one transaction, so there is nothing in between to create in.)

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use org_service::failpoint::REACHED;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::helpers::*;

/// An operator's pass (`migrate`) is held after its reads, and an organization is created
/// meanwhile. A pass that listed the collections after reading the owners saw a collection
/// with no owner and dropped it; it has to list them first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn an_organization_created_during_a_pass_keeps_its_collection_and_sessions() {
    let app = spawn_app(Backend::mongo()).await;
    let location = Arc::clone(&app.location);
    let mut pass = tokio::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .arg("migrate")
        .env_clear()
        .envs(location.env_with(&[
            ("RUST_LOG", "warn"),
            ("ORG_SERVICE_FAILPOINTS", "reconcile.after_reads=5000ms"),
        ]))
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn org-service migrate");
    let mut stderr = tokio::io::BufReader::new(pass.stderr.take().unwrap()).lines();
    let marker = format!("{REACHED} reconcile.after_reads");
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains(&marker) {
                return;
            }
        }
        panic!("migrate ended before its pass reached the pause");
    })
    .await
    .expect("the pass reached its pause");

    app.given_org("Racer", "r@racer.example").await;
    let login = json_body(app.login("r@racer.example", PASSWORD).await).await;
    let status = pass.wait().await.unwrap();
    assert!(status.success(), "migrate failed: {status}");
    let problems = app.store.consistency_problems().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(app.get_org("Racer").await.status(), 200);
    // The admin's refresh token, issued during the pass, was not taken for a deleted
    // organization's.
    let refresh = json!({ "refresh_token": login["refresh_token"] });
    assert_eq!(
        app.post_json("/admin/refresh", &refresh).await.status(),
        200
    );
}
