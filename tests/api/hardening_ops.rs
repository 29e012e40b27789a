//! Issue 9, the operator's side: health that tells the truth, a WAL emptied at shutdown,
//! start-up errors said once and naming the address.

use std::time::Duration;

use crate::helpers::*;

/// `/health` reads real data: a database file corrupted under the service is unhealthy,
/// though `SELECT 1` would still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_on_a_corrupt_database_file() {
    let location = StoreLocation::fresh(&Backend::Embedded);
    let service = start_service(&location, &[]).await;
    let client = reqwest::Client::new();
    let r = client.post(service.url("/org/create"))
        .json(&serde_json::json!({"organization_name": "Corrupt", "email": "c@corrupt.example", "password": PASSWORD}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    service.signal("TERM");
    let mut service = service;
    assert!(service.wait().await.success());

    let path = std::path::PathBuf::from(&location.env["DATABASE_PATH"]);
    // The pages of the organizations table and its indexes become garbage; the schema (which
    // spans more than page 1) stays readable, so the service starts and `SELECT 1` would work.
    let roots: Vec<usize> = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'organizations' AND rootpage > 0")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|p| p.unwrap() as usize)
            .collect()
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(!roots.is_empty());
    for root in roots {
        for b in &mut bytes[(root - 1) * page..root * page] {
            *b = 0xA5;
        }
    }
    std::fs::write(&path, bytes).unwrap();

    let service = start_service(&location, &[]).await;
    let r = client.get(service.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(json_body(r).await["status"], "unhealthy");
    service.kill().await;
}

/// A database locked by another process: writes and `/health` answer 503 within the store
/// timeout (SQLite's busy wait is bounded by it), and all is well once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_unhealthy_and_writes_fail_fast() {
    let app = spawn_app_with(Backend::Embedded, &[("STORE_TIMEOUT_SECONDS", "1")]).await;
    app.given_org("Locked", "l@locked.example").await;
    let path = app.location.env["DATABASE_PATH"].clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();

    let started = std::time::Instant::now();
    let r = app
        .create_org("Blocked", "b@blocked.example", PASSWORD)
        .await;
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?} with a 1 s store timeout",
        started.elapsed()
    );
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.create_org("Blocked", "b@blocked.example", PASSWORD)
            .await
            .status(),
        201
    );
}

/// SIGTERM folds the WAL into the database file and empties it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_checkpoints_the_wal() {
    let location = StoreLocation::fresh(&Backend::Embedded);
    let mut service = start_service(&location, &[("RUST_LOG", "warn")]).await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client.post(service.url("/org/create"))
            .json(&serde_json::json!({"organization_name": format!("Wal {i}"), "email": format!("w{i}@wal.example"), "password": PASSWORD}))
            .send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let wal = format!("{}-wal", location.env["DATABASE_PATH"]);
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0,
        "writes went to the WAL"
    );
    service.signal("TERM");
    let logs = service
        .drain_stderr(Duration::from_millis(300))
        .await
        .join("\n");
    assert!(service.wait().await.success());
    assert!(!logs.contains("checkpoint"), "{logs}");
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "WAL left behind"
    );
}

/// A taken port is reported once, naming the address; `seed-demo` issues no tokens and so
/// does not warn about SECRET_KEY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_said_once_and_seeding_does_not_warn() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db").display().to_string();
    let bin = env!("CARGO_BIN_EXE_org-service");
    let out = std::process::Command::new(bin)
        .env_clear()
        .envs([
            ("PORT", port.as_str()),
            ("DATABASE_PATH", db.as_str()),
            ("SECRET_KEY", TEST_SECRET),
            ("RUST_LOG", "warn"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let address = format!("127.0.0.1:{port}");
    assert_eq!(all.matches(&address).count(), 1, "{all}");
    assert_eq!(all.matches("in use").count(), 1, "{all}");

    let out = std::process::Command::new(bin)
        .arg("seed-demo")
        .env_clear()
        .envs([("DATABASE_PATH", db.as_str()), ("RUST_LOG", "warn")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("SECRET_KEY"), "{all}");
}
