//! `spawn_app` and friends: a fresh store per test, the app on 127.0.0.1:0, a client with a
//! method per endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use org_service::config::Config;
use org_service::failpoint::Failpoints;
use org_service::startup::App;
use org_service::storage::Store;
use reqwest::{Client, Response};
use serde_json::{json, Value};

/// The fixed secret tests sign with (so they can forge and expire tokens).
pub const TEST_SECRET: &str = "test-secret-key-that-is-32-bytes-long!!";
pub const PASSWORD: &str = "SecurePass123!";

/// Which store a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A temporary SQLite file.
    Embedded,
    /// A fresh database on the MongoDB server at this URL (`TENANT_LAYOUT=collection`).
    Mongo(String),
    /// The same with `TENANT_LAYOUT=shared`: every tenant in `tenant_documents`.
    MongoShared(String),
}

impl Backend {
    /// The MongoDB backend at `TEST_MONGODB_URL`. Only called by tests built with the MongoDB
    /// leg on (see build.rs): without a URL at run time they fail, never pass silently.
    pub fn mongo() -> Self {
        Self::Mongo(mongo_url())
    }

    /// [`Backend::mongo`] in the shared tenant layout.
    pub fn mongo_shared() -> Self {
        Self::MongoShared(mongo_url())
    }
}

/// `TEST_MONGODB_URL`; panics without it (see [`Backend::mongo`]).
pub fn mongo_url() -> String {
    match std::env::var("TEST_MONGODB_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => url,
        None => panic!(
            "TEST_MONGODB_URL is not set, but the tests were built with the MongoDB leg on \
                 (CI=true, or a URL at build time): set it (scripts/ferretdb.sh start prints one)"
        ),
    }
}

/// Generates `mod $name { embedded(), mongodb(), mongodb_shared() }` running the same body on
/// both stores, and on MongoDB in both tenant layouts. The MongoDB tests are reported ignored
/// when the tests were built without the MongoDB leg.
#[macro_export]
macro_rules! both_stores {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: $crate::helpers::Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                run($crate::helpers::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(mongodb_leg), ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)")]
            async fn mongodb() {
                run($crate::helpers::Backend::mongo()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(mongodb_leg), ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)")]
            async fn mongodb_shared() {
                run($crate::helpers::Backend::mongo_shared()).await
            }
        }
    };
}

/// Where a test's data lives; kept alive as long as the test needs it.
pub struct StoreLocation {
    pub env: HashMap<String, String>,
    _dir: Option<tempfile::TempDir>,
}

impl StoreLocation {
    /// A fresh, empty store location for `backend`.
    pub fn fresh(backend: &Backend) -> Self {
        match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("data").join("orgs.db");
                Self {
                    env: HashMap::from([("DATABASE_PATH".into(), path.display().to_string())]),
                    _dir: Some(dir),
                }
            }
            Backend::Mongo(url) | Backend::MongoShared(url) => {
                let db = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
                let layout = match backend {
                    Backend::MongoShared(_) => "shared",
                    _ => "collection",
                };
                Self {
                    env: HashMap::from([
                        ("MONGODB_URL".into(), url.clone()),
                        ("MASTER_DB_NAME".into(), db),
                        ("TENANT_LAYOUT".into(), layout.into()),
                    ]),
                    _dir: None,
                }
            }
        }
    }

    /// The environment every test process gets, plus the store location and `overrides`.
    pub fn env_with(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("SECRET_KEY", TEST_SECRET),
            ("BCRYPT_COST", "4"),
            ("RECONCILE_GRACE_SECONDS", "60"),
            ("STORE_TIMEOUT_SECONDS", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(self.env.clone());
        env.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// A direct connection to the same store, bypassing the API (to inspect or corrupt it).
    pub async fn store(&self) -> Arc<dyn Store> {
        self.store_with(&[]).await
    }

    /// [`StoreLocation::store`] with configuration `overrides` (e.g. another tenant layout).
    pub async fn store_with(&self, overrides: &[(&str, &str)]) -> Arc<dyn Store> {
        let env = self.env_with(overrides);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        org_service::storage::connect(
            &config,
            Failpoints::default(),
            org_service::storage::Role::Tool,
        )
        .await
        .expect("connect store")
    }
}

/// A running app plus a client.
pub struct TestApp {
    pub state: org_service::state::AppState,
    pub addr: SocketAddr,
    pub client: Client,
    pub store: Arc<dyn Store>,
    pub location: Arc<StoreLocation>,
    pub backend: Backend,
}

/// Spawns the app on a fresh store with the default test configuration.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Spawns the app on a fresh store with configuration `overrides`.
pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let location = Arc::new(StoreLocation::fresh(&backend));
    spawn_on(backend, location, overrides).await
}

/// Spawns the app on an existing store location.
pub async fn spawn_on(
    backend: Backend,
    location: Arc<StoreLocation>,
    overrides: &[(&str, &str)],
) -> TestApp {
    let mut env = location.env_with(overrides);
    env.insert("PORT".into(), "0".into());
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid");
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let store = Arc::clone(&app.state().store);
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        state,
        addr,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        store,
        location,
        backend,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn create_org(&self, name: &str, email: &str, password: &str) -> Response {
        self.post_json(
            "/org/create",
            &json!({"organization_name": name, "email": email, "password": password}),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// The served OpenAPI document.
    pub async fn openapi(&self) -> Value {
        self.client
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON document")
    }

    /// Sends `method path` with a JSON body and, if given, a bearer token.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get_org(&self, name: &str) -> Response {
        self.client
            .get(self.url("/org/get"))
            .query(&[("organization_name", name)])
            .send()
            .await
            .expect("request")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/admin/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in and returns the access token (panics unless 200).
    pub async fn token(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        assert_eq!(r.status(), 200, "login of {email} failed");
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn update_org(
        &self,
        token: Option<&str>,
        name: &str,
        email: &str,
        password: &str,
    ) -> Response {
        let mut req = self
            .client
            .put(self.url("/org/update"))
            .json(&json!({"organization_name": name, "email": email, "password": password}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn delete_org(&self, token: Option<&str>, name: &str) -> Response {
        let mut req = self
            .client
            .delete(self.url("/org/delete"))
            .json(&json!({"organization_name": name}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Creates an organization and returns its JSON (panics unless 201).
    pub async fn given_org(&self, name: &str, email: &str) -> Value {
        let r = self.create_org(name, email, PASSWORD).await;
        assert_eq!(r.status(), 201, "creating {name}");
        r.json().await.unwrap()
    }

    /// The store has exactly `n` organizations, each with its admin and collection, and
    /// nothing else (no orphans of any kind).
    pub async fn assert_consistent(&self, n: u64) {
        assert_eq!(
            self.store.count_organizations().await.unwrap(),
            n,
            "organization count"
        );
        let problems = self.store.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "store inconsistent: {problems:?}");
    }
}

/// Reads a JSON body.
pub async fn json_body(r: Response) -> Value {
    r.json().await.expect("JSON body")
}

/// Asserts a 422 whose detail names `field` (last element of `loc`).
pub async fn assert_422_on(r: Response, field: &str) -> Value {
    assert_eq!(r.status(), 422);
    let body = json_body(r).await;
    let detail = body["detail"].as_array().expect("detail is a list");
    assert!(
        detail.iter().any(
            |d| d["loc"].as_array().and_then(|l| l.last()) == Some(&json!(field))
                && d["msg"].is_string()
                && d["type"].is_string()
        ),
        "422 does not name {field}: {body}"
    );
    body
}

/// A service started as its own process (the real binary), for crash and multi-instance tests.
pub struct ServiceProcess {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    stderr: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Starts `org-service` on `location` with `overrides`, and waits until it answers.
pub async fn start_service(location: &StoreLocation, overrides: &[(&str, &str)]) -> ServiceProcess {
    use tokio::io::AsyncBufReadExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = location.env_with(overrides);
    env.insert("PORT".into(), port.to_string());
    env.entry("RUST_LOG".into())
        .or_insert_with(|| "warn".into());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_org-service"))
        .env_clear()
        .envs(&env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn org-service");
    // stdout (the logs) and stderr (failpoint markers, fatal errors) feed one channel.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let tx2 = tx.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out.next_line().await {
            let _ = tx2.send(line);
        }
    });
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            let _ = tx.send(line);
        }
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = Client::new();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://{addr}/health/live"))
            .send()
            .await
        {
            if r.status() == 200 {
                return ServiceProcess {
                    child,
                    addr,
                    stderr: rx,
                };
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("org-service exited at start-up with {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("org-service did not answer within 10 s");
}

impl ServiceProcess {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until the process prints `marker` (on stdout or stderr).
    pub async fn wait_for_stderr(&mut self, marker: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stderr.recv()).await {
                Ok(Some(line)) if line.contains(marker) => return,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("org-service exited before printing {marker:?}"),
                Err(_) => panic!("org-service did not print {marker:?} in time"),
            }
        }
    }

    /// The process's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// SIGKILL: no destructor, no graceful anything.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

impl ServiceProcess {
    /// Everything the process printed until it has been quiet for `quiet`.
    pub async fn drain_stderr(&mut self, quiet: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(quiet, self.stderr.recv()).await {
            lines.push(line);
        }
        lines
    }

    /// Sends a signal by name (TERM, INT).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most 30 s).
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the process exited within 30 s")
            .unwrap()
    }
}
