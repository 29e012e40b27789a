//! Operability: metrics, logs, graceful shutdown, the command line.

use std::time::Duration;

use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

both_stores! {
    /// After traffic, /metrics reports requests by route and status, latency histograms,
    /// store operations, bcrypt queueing, login failures, throttling and the organization count.
    async fn metrics_report_traffic(backend: Backend) {
        let app = spawn_app_with(backend, &[("LOGIN_MAX_ATTEMPTS", "1")]).await;
        app.given_org("Metered", "m@metered.com").await;
        assert_eq!(app.login("m@metered.com", "WrongPass123!").await.status(), 401);
        assert_eq!(app.login("m@metered.com", "WrongPass123!").await.status(), 429);
        assert_eq!(app.get_org("Metered").await.status(), 200);

        let r = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = r.text().await.unwrap();
        let store = if matches!(app.backend, Backend::Embedded) { "embedded" } else { "mongodb" };
        assert!(sample(&text, "http_requests_total", &["route=\"/org/create\"", "status=\"201\""]).unwrap() >= 1.0, "{text}");
        assert!(sample(&text, "http_requests_total", &["route=\"/admin/login\"", "status=\"429\""]).unwrap() >= 1.0);
        assert!(sample(&text, "http_request_duration_seconds_count", &["route=\"/org/get\""]).unwrap() >= 1.0);
        assert!(sample(&text, "http_request_duration_seconds_bucket", &["route=\"/org/get\"", "le=\"+Inf\""]).is_some());
        let op = format!("store=\"{store}\"");
        assert!(sample(&text, "store_operation_duration_seconds_count", &[&op, "operation=\"create_organization\""]).unwrap() >= 1.0);
        assert!(sample(&text, "bcrypt_wait_seconds_count", &[]).unwrap() >= 2.0);
        assert!(sample(&text, "bcrypt_queue_depth", &[]).is_some());
        assert!(sample(&text, "login_failures_total", &[]).unwrap() >= 1.0);
        assert!(sample(&text, "login_throttled_total", &[]).unwrap() >= 1.0);
        assert!(sample(&text, "organizations", &[]).is_some());
    }
}

both_stores! {
    /// JSON logs carry the request id on every line of a request, and never a password, a
    /// hash or a token.
    async fn logs_carry_request_ids_and_no_secrets(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let mut service = start_service(&location, &[("LOG_FORMAT", "json"), ("RUST_LOG", "debug")]).await;
        let client = reqwest::Client::new();
        let password = "Sup3r-Secret-Passw0rd";
        let r = client.post(service.url("/org/create")).header("x-request-id", "req-create-1")
            .json(&json!({"organization_name": "Loggy", "email": "l@loggy.com", "password": password})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let r = client.post(service.url("/admin/login")).header("x-request-id", "req-login-1")
            .json(&json!({"email": "l@loggy.com", "password": password})).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        let r = client.put(service.url("/org/update")).bearer_auth(&token).header("x-request-id", "req-update-1")
            .json(&json!({"organization_name": "Loggy Two", "email": "l@loggy.com", "password": password})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = client.post(service.url("/admin/login")).json(&json!({"email": "l@loggy.com", "password": "wrong-password"})).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let hash = location.store().await.account_by_email("l@loggy.com").await.unwrap().unwrap().password_hash;

        let lines = service.drain_stderr(Duration::from_millis(500)).await;
        let logs = lines.join("\n");
        for secret in [password, "wrong-password", &token, &refresh_token, &hash] {
            assert!(!logs.contains(secret), "a secret reached the logs");
        }
        let mut seen = 0;
        for line in &lines {
            let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
            // Every enclosing span is listed; the outermost is the request's, with its id.
            let id = entry["spans"].as_array().and_then(|spans| spans.iter().find_map(|s| s["request_id"].as_str()));
            if entry["fields"]["message"] == "organization renamed" {
                assert_eq!(id, Some("req-update-1"), "{line}");
                seen += 1;
            }
            if entry["fields"]["message"] == "organization created" {
                assert_eq!(id, Some("req-create-1"), "{line}");
                seen += 1;
            }
        }
        assert_eq!(seen, 2, "the request log lines were not found: {logs}");
        service.kill().await;
    }
}

both_stores! {
    /// SIGTERM with a request in flight: the request completes, then the process exits 0.
    async fn sigterm_drains_in_flight_requests(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        // A slow request: the create pauses 2 s inside the store (a pause point, so the test
        // does not hang on how fast this machine hashes passwords).
        let mut service = start_service(&location, &[("ORG_SERVICE_FAILPOINTS", "create.after_admin=2000ms")]).await;
        let client = reqwest::Client::new();
        let create = tokio::spawn(client.post(service.url("/org/create")).json(&json!({"organization_name": "Slow", "email": "s@slow.com", "password": PASSWORD})).send());
        service.wait_for_stderr(org_service::failpoint::REACHED, Duration::from_secs(20)).await;
        service.signal("TERM");
        let response = create.await.unwrap().expect("the in-flight request was answered");
        assert_eq!(response.status(), 201);
        let status = service.wait().await;
        assert!(status.success(), "exit status {status}");
        assert!(client.get(service.url("/health/live")).send().await.is_err(), "no longer accepting");
    }
}

/// `--help` and `--version` describe the binary; a bad variable stops start-up naming it.
#[tokio::test]
async fn command_line_help_version_and_config_errors() {
    let bin = env!("CARGO_BIN_EXE_org-service");
    let out = std::process::Command::new(bin)
        .arg("--help")
        .env("MONGODB_URL", "mongodb://user:hunter2@db.example")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "seed-demo",
        "--port",
        "--mongodb-url",
        "[env: PORT",
        "[env: MONGODB_URL]",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    assert!(
        !help.contains("hunter2"),
        "--help shows the connection string: {help}"
    );
    let out = std::process::Command::new(bin)
        .args(["migrate", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--tenant-layout"), "{help}");
    // A variable is read by clap for its flag: a bad one is refused naming the variable.
    let out = std::process::Command::new(bin)
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT"));
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    let out = std::process::Command::new(bin)
        .env("BCRYPT_COST", "99")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BCRYPT_COST"));
    let out = std::process::Command::new(bin)
        .args(["--port", "nope"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PORT"),
        "a flag overrides the variable and is checked the same way"
    );
    let out = std::process::Command::new(bin)
        .env("APP_ENV", "production")
        .env("DATABASE_PATH", "/tmp/never-opened.db")
        .env_remove("SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_KEY"));
}

both_stores! {
    /// `migrate` creates the schema and reports a consistent store; `seed-demo` adds the demo data.
    async fn migrate_and_seed_demo_subcommands(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let bin = env!("CARGO_BIN_EXE_org-service");
        let run = |args: &[&str]| {
            std::process::Command::new(bin).args(args).envs(location.env_with(&[("RUST_LOG", "warn")])).current_dir(std::env::temp_dir()).output().unwrap()
        };
        let out = run(&["migrate"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("0 inconsistencies"));
        let out = run(&["seed-demo"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let store = location.store().await;
        assert_eq!(store.count_organizations().await.unwrap(), 3);
        assert!(store.organization_by_slug("demo_company").await.unwrap().is_some());
    }
}
