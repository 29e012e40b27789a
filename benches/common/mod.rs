//! What the benchmarks share: FerretDB, oha, the service process, seeding, the machine.

#![allow(dead_code)] // each bench uses a part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_service::config::Config;
use org_service::domain::{new_id, Email, NewOrganization, OrgName};
use org_service::failpoint::Failpoints;
use org_service::storage::Store;
use serde_json::{json, Value};

/// The value after `flag` on the command line.
pub fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// `--out DIR` (default `bench-results`), created.
pub fn out_dir(args: &[String]) -> PathBuf {
    let out =
        arg_value(args, "--out").map_or_else(|| PathBuf::from("bench-results"), PathBuf::from);
    std::fs::create_dir_all(&out).expect("output directory");
    out
}

/// oha from PATH, or installed from crates.io into ~/.cache/org-service/oha.
pub fn find_or_install_oha() -> PathBuf {
    if let Ok(path) = which("oha") {
        return path;
    }
    let root = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        .join(".cache/org-service/oha");
    let bin = root.join("bin/oha");
    if !bin.exists() {
        eprintln!(
            "bench: installing oha from crates.io into {} (once)",
            root.display()
        );
        let status = Command::new("cargo")
            .args([
                "install",
                "oha",
                "--locked",
                "--version",
                "1.16.0",
                "--root",
            ])
            .arg(&root)
            .status()
            .expect("cargo install oha");
        assert!(status.success(), "cargo install oha failed");
    }
    bin
}

pub fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

pub struct FerretDb {
    pub url: String,
    dir: String,
    root: PathBuf,
}

impl FerretDb {
    pub fn start(root: &Path) -> Self {
        let out = Command::new("bash")
            .arg(root.join("scripts/ferretdb.sh"))
            .arg("start")
            .output()
            .expect("ferretdb.sh");
        assert!(
            out.status.success(),
            "ferretdb.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {key}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .unwrap_or_else(|| panic!("ferretdb.sh printed no {key}"))
        };
        Self {
            url: value("TEST_MONGODB_URL"),
            dir: value("FERRETDB_DIR"),
            root: root.to_path_buf(),
        }
    }
}

impl Drop for FerretDb {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.root.join("scripts/ferretdb.sh"))
            .args(["stop", &self.dir])
            .status();
    }
}

pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "os": std::env::consts::OS,
    })
}

/// The release binary, serving; killed when dropped.
pub struct Service {
    child: Child,
    pub base: String,
}

impl Drop for Service {
    /// SIGTERM, as a host stops it (the embedded store checkpoints its WAL, a MongoDB
    /// instance signs off), then SIGKILL if it is still there after five seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

/// Latency summary of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rps: f64,
    pub ok_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load {
    pub fn json(&self) -> Value {
        json!({ "rps": round(self.rps), "ok_rps": round(self.ok_rps), "p50_ms": round(self.p50_ms), "p99_ms": round(self.p99_ms) })
    }
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The bench's own store handle (seeding, direct lookups). Seeding thousands of
/// organizations keeps FerretDB busy, so this handle waits longer than the service does.
pub async fn store_handle(env: &BTreeMap<String, String>) -> Arc<dyn Store> {
    let mut env = env.clone();
    env.insert("STORE_TIMEOUT_SECONDS".into(), "60".into());
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("bench config");
    org_service::storage::connect(
        &config,
        Failpoints::default(),
        org_service::storage::Role::Tool,
    )
    .await
    .expect("store")
}

/// Starts the release binary and measures the time to its first healthy answer.
pub async fn start_service(
    dir: &Path,
    env: &BTreeMap<String, String>,
    log: &Path,
) -> (Service, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_org-service"))
        .envs(env)
        .env("PORT", port.to_string())
        .current_dir(dir)
        .stdout(std::fs::File::create(log).expect("log file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn org-service");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "service did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (Service { child, base }, started.elapsed())
}

pub async fn seed(store: &Arc<dyn Store>, from: usize, to: usize, hash: &str) {
    let mut tasks = Vec::new();
    for chunk in (from..to)
        .collect::<Vec<_>>()
        .chunks(((to - from) / 8).max(1))
    {
        let (store, hash, chunk) = (Arc::clone(store), hash.to_owned(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for i in chunk {
                let new = NewOrganization {
                    id: new_id(),
                    admin_id: new_id(),
                    name: OrgName::parse(&format!("Bench Org {i}")).unwrap(),
                    admin_email: Email::parse(&format!("admin{i}@bench.example")).unwrap(),
                    password_hash: Some(hash.clone()),
                    created_at: chrono::Utc::now(),
                };
                // FerretDB answers "busy" now and then under a long stream of writes.
                let mut attempt = 0;
                loop {
                    match store.create_organization(&new, &[]).await {
                        Ok(_) => break,
                        Err(org_service::storage::StoreError::Unavailable(e)) if attempt < 10 => {
                            attempt += 1;
                            eprintln!("bench: seeding {i}: {e}; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => panic!("seed organization {i}: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Creates an organization through the API and logs its owner in; the access token.
pub async fn sign_up(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    email: &str,
    password: &str,
) -> String {
    let r = client
        .post(format!("{base}/org/create"))
        .json(&serde_json::json!({"organization_name": name, "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create {name}");
    let login: Value = client
        .post(format!("{base}/admin/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().expect("a token").to_owned()
}

/// Runs oha and summarizes its JSON output.
pub fn oha(oha: &Path, phase: Duration, concurrency: usize, url: &str, body: Option<&str>) -> Load {
    oha_with(oha, phase, concurrency, url, body, &[])
}

/// [`oha`] with extra request headers (`"name: value"`), e.g. a bearer token.
pub fn oha_with(
    oha: &Path,
    phase: Duration,
    concurrency: usize,
    url: &str,
    body: Option<&str>,
    headers: &[&str],
) -> Load {
    oha_request(oha, phase, concurrency, "POST", url, body, headers)
}

/// [`oha_with`] with the method of requests that carry `body` (GET without one).
pub fn oha_request(
    oha: &Path,
    phase: Duration,
    concurrency: usize,
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[&str],
) -> Load {
    let mut cmd = Command::new(oha);
    cmd.args(["--no-tui", "--output-format", "json", "-z"])
        .arg(format!("{}ms", phase.as_millis()))
        .args(["-c", &concurrency.to_string()]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    if let Some(body) = body {
        cmd.args([
            "-m",
            method,
            "-H",
            "content-type: application/json",
            "-d",
            body,
        ]);
    }
    let out = cmd.arg(url).output().expect("run oha");
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("oha JSON");
    let rps = v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0);
    let total: f64 = v["statusCodeDistribution"]
        .as_object()
        .map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
    let ok = v["statusCodeDistribution"]["200"].as_f64().unwrap_or(0.0);
    let ms = |p: &str| v["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    Load {
        rps,
        ok_rps: if total > 0.0 { rps * ok / total } else { 0.0 },
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
    }
}
