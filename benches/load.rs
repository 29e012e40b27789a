//! The load benchmark: `cargo bench --bench load -- [--quick | --full] [--out DIR]`.
//!
//! Builds in release mode (cargo bench's profile), starts FerretDB and the real `org-service`
//! binary on each store, drives it with oha (single endpoints) and a small driver of ours
//! (creates with unique names), and measures each figure beside a ceiling taken in the same
//! run: the same lookup done directly through the store, or cores ÷ one bcrypt operation.
//! Writes `report.json` and `report.md` to `bench-results/` (or `--out`). Timings are reported,
//! never asserted: the targets are printed as pass/fail for people to act on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_service::config::Config;
use org_service::domain::{new_id, Email, NewOrganization, OrgName};
use org_service::failpoint::Failpoints;
use org_service::storage::Store;
use serde_json::{json, Value};

const SECRET: &str = "benchmark-secret-key-of-at-least-32-bytes";
const PASSWORD: &str = "BenchPass123!";

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    /// Length of each load phase.
    phase: Duration,
    /// Organizations for the "many organizations" GET measurement on the embedded store.
    many_orgs: usize,
    /// The same on FerretDB, whose SQLite backend makes a table per collection and slows down
    /// creating them as they accumulate (about 4,000 in 13 minutes here): a full 10,000 would
    /// take most of an hour. On MongoDB itself use `many_orgs`.
    many_orgs_ferretdb: usize,
    /// Documents in the tenant for the large rename.
    large_docs: usize,
    bcrypt_cost: u32,
}

const QUICK: Mode = Mode {
    name: "quick",
    phase: Duration::from_secs(3),
    many_orgs: 1_000,
    many_orgs_ferretdb: 500,
    large_docs: 5_000,
    bcrypt_cost: 10,
};
const FULL: Mode = Mode {
    name: "full",
    phase: Duration::from_secs(10),
    many_orgs: 10_000,
    many_orgs_ferretdb: 2_000,
    large_docs: 50_000,
    bcrypt_cost: 12,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.iter().any(|a| a == "--full") {
        FULL
    } else {
        QUICK
    };
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("bench-results"), PathBuf::from);
    std::fs::create_dir_all(&out).expect("output directory");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let oha = find_or_install_oha();
    let ferret = FerretDb::start(&root);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut stores = Vec::new();
    for store in ["embedded", "mongodb"]
        .into_iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == *s))
    {
        eprintln!("bench: {store} store ({} mode)", mode.name);
        let bench = Bench {
            mode,
            oha: oha.clone(),
            cores,
            store,
            mongo_url: ferret.url.clone(),
            out: out.clone(),
        };
        stores.push(runtime.block_on(bench.run()));
    }
    drop(ferret);

    let report = json!({
        "mode": mode.name,
        "machine": machine(),
        "duration_seconds": started.elapsed().as_secs_f64(),
        "bcrypt_cost": mode.bcrypt_cost,
        "stores": stores,
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let markdown = markdown(&report);
    std::fs::write(out.join("report.md"), &markdown).unwrap();
    println!("{markdown}");
    eprintln!(
        "bench: wrote {}/report.json and report.md in {:.0?}",
        out.display(),
        started.elapsed()
    );
}

/// oha from PATH, or installed from crates.io into ~/.cache/org-service/oha.
fn find_or_install_oha() -> PathBuf {
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

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

struct FerretDb {
    url: String,
    dir: String,
    root: PathBuf,
}

impl FerretDb {
    fn start(root: &Path) -> Self {
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

fn machine() -> Value {
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

struct Bench {
    mode: Mode,
    oha: PathBuf,
    cores: usize,
    store: &'static str,
    mongo_url: String,
    /// Where the report (and the service's log, for diagnosis) goes.
    out: PathBuf,
}

struct Service {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn peak_rss_mib(&self) -> f64 {
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
struct Load {
    rps: f64,
    ok_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Load {
    fn json(&self) -> Value {
        json!({ "rps": round(self.rps), "ok_rps": round(self.ok_rps), "p50_ms": round(self.p50_ms), "p99_ms": round(self.p99_ms) })
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl Bench {
    fn env(&self, dir: &Path) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("SECRET_KEY", SECRET.to_owned()),
            ("BCRYPT_COST", self.mode.bcrypt_cost.to_string()),
            ("RATE_LIMITS", "off".to_owned()),
            ("LOGIN_MAX_ATTEMPTS", "1000".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if self.store == "mongodb" {
            env.insert("MONGODB_URL".into(), self.mongo_url.clone());
            env.insert(
                "MASTER_DB_NAME".into(),
                format!("bench_{}", std::process::id()),
            );
        } else {
            env.insert(
                "DATABASE_PATH".into(),
                dir.join("bench.db").display().to_string(),
            );
        }
        env
    }

    /// The bench's own store handle (seeding, direct lookups). Seeding thousands of
    /// organizations keeps FerretDB busy, so this handle waits longer than the service does.
    async fn store_handle(&self, env: &BTreeMap<String, String>) -> Arc<dyn Store> {
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
    async fn start_service(
        &self,
        dir: tempfile::TempDir,
        env: &BTreeMap<String, String>,
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
            .current_dir(dir.path())
            .stdout(
                std::fs::File::create(self.out.join(format!("service-{}.log", self.store)))
                    .expect("log file"),
            )
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
        (
            Service {
                child,
                base,
                _dir: dir,
            },
            started.elapsed(),
        )
    }

    async fn seed(&self, store: &Arc<dyn Store>, from: usize, to: usize, hash: &str) {
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
                        password_hash: hash.clone(),
                        created_at: chrono::Utc::now(),
                    };
                    // FerretDB answers "busy" now and then under a long stream of writes.
                    let mut attempt = 0;
                    loop {
                        match store.create_organization(&new).await {
                            Ok(_) => break,
                            Err(org_service::storage::StoreError::Unavailable(e))
                                if attempt < 10 =>
                            {
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

    /// Runs oha and summarizes its JSON output.
    fn oha(&self, concurrency: usize, url: &str, body: Option<&str>) -> Load {
        let mut cmd = Command::new(&self.oha);
        cmd.args(["--no-tui", "--output-format", "json", "-z"])
            .arg(format!("{}ms", self.mode.phase.as_millis()))
            .args(["-c", &concurrency.to_string()]);
        if let Some(body) = body {
            cmd.args([
                "-m",
                "POST",
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

    /// The GET ceiling: the same lookup straight through the store at the same concurrency.
    async fn direct_lookups(&self, store: &Arc<dyn Store>, concurrency: usize, slug: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (store, stop, slug) = (Arc::clone(store), Arc::clone(&stop), slug.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    store
                        .organization_by_slug(&slug)
                        .await
                        .expect("lookup")
                        .expect("present");
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            }));
        }
        tokio::time::sleep(self.mode.phase).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_by(f64::total_cmp);
        let rps = all.len() as f64 / elapsed;
        Load {
            rps,
            ok_rps: rps,
            p50_ms: percentile(&all, 0.5),
            p99_ms: percentile(&all, 0.99),
        }
    }

    /// Creates with unique names from `concurrency` clients for one phase; returns 201s per second.
    async fn creates(&self, base: &str, concurrency: usize) -> f64 {
        let client = reqwest::Client::new();
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let (client, stop, created, base) = (
                client.clone(),
                Arc::clone(&stop),
                Arc::clone(&created),
                base.to_owned(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"organization_name": format!("Created {worker} {i}"), "email": format!("c{worker}x{i}@bench.example"), "password": PASSWORD});
                    let r = client.post(format!("{base}/org/create")).json(&body).send().await.unwrap();
                    if r.status() == 201 {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            }));
        }
        tokio::time::sleep(self.mode.phase).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        created.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }

    /// Median time of one bcrypt verify and one hash at the configured cost.
    fn bcrypt_times(&self) -> (Duration, Duration) {
        let hash = bcrypt::hash(PASSWORD, self.mode.bcrypt_cost).unwrap();
        let mut verify: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                bcrypt::verify(PASSWORD, &hash).unwrap();
                t.elapsed()
            })
            .collect();
        let mut hashing: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                bcrypt::hash(PASSWORD, self.mode.bcrypt_cost).unwrap();
                t.elapsed()
            })
            .collect();
        verify.sort();
        hashing.sort();
        (verify[2], hashing[2])
    }

    async fn rename_time(
        &self,
        base: &str,
        store: &Arc<dyn Store>,
        name: &str,
        documents: usize,
    ) -> Duration {
        let client = reqwest::Client::new();
        let email = format!("{}@rename.example", name.to_lowercase().replace(' ', "."));
        let r = client
            .post(format!("{base}/org/create"))
            .json(&json!({"organization_name": name, "email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {name}");
        let org = store
            .organization_by_slug(OrgName::parse(name).unwrap().slug())
            .await
            .unwrap()
            .unwrap();
        for start in (0..documents).step_by(10_000) {
            let docs = (start..(start + 10_000).min(documents))
                .map(|n| json!({"n": n, "payload": "x".repeat(64)}))
                .collect();
            store.insert_tenant_documents(&org, docs).await.unwrap();
        }
        let login: Value = client
            .post(format!("{base}/admin/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        let started = Instant::now();
        let r = client.put(format!("{base}/org/update")).bearer_auth(&token)
            .json(&json!({"organization_name": format!("{name} Renamed"), "email": email, "password": PASSWORD})).send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 200, "rename {name}");
        let renamed = store
            .organization_by_slug(OrgName::parse(&format!("{name} Renamed")).unwrap().slug())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.count_tenant_documents(&renamed).await.unwrap() as usize,
            documents,
            "documents kept"
        );
        // Through the API a rename also pays a bcrypt verify (re-authentication), which would
        // hide the collection rename itself; so time renaming back through the store.
        let _ = took;
        let started = Instant::now();
        store
            .rename_organization(
                &renamed.id,
                &OrgName::parse(name).unwrap(),
                chrono::Utc::now(),
            )
            .await
            .expect("rename back");
        started.elapsed()
    }

    async fn run(&self) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let env = self.env(dir.path());
        let store = self.store_handle(&env).await;
        let hash = bcrypt::hash(PASSWORD, self.mode.bcrypt_cost).unwrap();
        self.seed(&store, 0, 10, &hash).await;
        let (service, startup) = self.start_service(dir, &env).await;
        let base = service.base.clone();
        let get_url = format!("{base}/org/get?organization_name=Bench%20Org%203");
        let mut figures = serde_json::Map::new();

        // The HTTP floor: the cheapest route (no store, no body parsing) at 32 connections shows
        // what the HTTP stack and the load generator, sharing these cores, cost by themselves.
        let floor = self.oha(32, &format!("{base}/health/live"), None);
        figures.insert("http_floor_c32".into(), floor.json());

        // GET against its ceiling, at 32 and 64 connections.
        for c in [32, 64] {
            let api = self.oha(c, &get_url, None);
            let direct = self.direct_lookups(&store, c, "bench_org_3").await;
            figures.insert(format!("get_c{c}"), json!({ "api": api.json(), "ceiling": direct.json(), "ratio": round(api.ok_rps / direct.rps) }));
        }

        eprintln!("bench: {}: GET done", self.store);
        // Logins against the bcrypt ceiling.
        let (verify, hashing) = self.bcrypt_times();
        let login_body = json!({"email": "admin1@bench.example", "password": PASSWORD}).to_string();
        let login_ceiling = self.cores as f64 / verify.as_secs_f64();
        let login = self.oha(
            self.cores * 4,
            &format!("{base}/admin/login"),
            Some(&login_body),
        );
        figures.insert("login".into(), json!({ "api": login.json(), "ceiling_rps": round(login_ceiling), "bcrypt_verify_ms": round(verify.as_secs_f64() * 1000.0), "ratio": round(login.ok_rps / login_ceiling) }));

        // GET while logins saturate the CPU.
        let login_load = {
            let bench = Bench {
                mode: self.mode,
                oha: self.oha.clone(),
                cores: self.cores,
                store: self.store,
                mongo_url: self.mongo_url.clone(),
                out: self.out.clone(),
            };
            let url = format!("{base}/admin/login");
            let body = login_body.clone();
            std::thread::spawn(move || bench.oha(bench.cores * 4, &url, Some(&body)))
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let get_under_login = self.oha(32, &get_url, None);
        let login_during = login_load.join().unwrap();
        figures.insert(
            "get_while_logins_saturate".into(),
            json!({ "get": get_under_login.json(), "login": login_during.json() }),
        );

        eprintln!("bench: {}: logins done", self.store);
        // Creates against the bcrypt-hash ceiling.
        let create_ceiling = self.cores as f64 / hashing.as_secs_f64();
        let creates = self.creates(&base, self.cores * 4).await;
        figures.insert("create".into(), json!({ "rps": round(creates), "ceiling_rps": round(create_ceiling), "bcrypt_hash_ms": round(hashing.as_secs_f64() * 1000.0), "ratio": round(creates / create_ceiling) }));

        eprintln!("bench: {}: creates done", self.store);
        // Renames: an empty tenant and a large one (the store's rename, without re-authentication).
        let empty = self.rename_time(&base, &store, "Rename Empty", 0).await;
        let large = self
            .rename_time(&base, &store, "Rename Large", self.mode.large_docs)
            .await;
        figures.insert("rename".into(), json!({ "empty_ms": round(empty.as_secs_f64() * 1000.0), "large_ms": round(large.as_secs_f64() * 1000.0), "large_documents": self.mode.large_docs, "ratio": round(large.as_secs_f64() / empty.as_secs_f64()) }));

        eprintln!(
            "bench: {}: renames done; seeding {} organizations",
            self.store,
            if self.store == "mongodb" {
                self.mode.many_orgs_ferretdb
            } else {
                self.mode.many_orgs
            }
        );
        // GET latency with many organizations.
        let many_orgs = if self.store == "mongodb" {
            self.mode.many_orgs_ferretdb
        } else {
            self.mode.many_orgs
        };
        let few = figures["get_c32"]["api"]["p99_ms"]
            .as_f64()
            .unwrap_or(f64::NAN);
        self.seed(&store, 10, many_orgs, &hash).await;
        let many = self.oha(32, &get_url, None);
        figures.insert("get_many_orgs".into(), json!({ "organizations": many_orgs, "p99_ms": round(many.p99_ms), "p99_ms_with_10": few, "ratio": round(many.p99_ms / few) }));

        figures.insert("peak_rss_mib".into(), json!(round(service.peak_rss_mib())));
        figures.insert(
            "first_healthy_ms".into(),
            json!(round(startup.as_secs_f64() * 1000.0)),
        );
        drop(service);
        json!({ "store": self.store, "figures": figures, "targets": targets(self.store, &figures) })
    }
}

/// The targets we hold ourselves to, with pass/fail.
fn targets(store: &str, f: &serde_json::Map<String, Value>) -> Value {
    let figures = Value::Object(f.clone());
    let num = |path: &[&str]| {
        path.iter()
            .try_fold(&figures, |v, k| v.get(*k))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let mut rows = vec![
        (
            "GET /org/get at 32 connections ≥ 0.8 × direct lookups",
            num(&["get_c32", "ratio"]),
            0.8,
            true,
        ),
        (
            "GET /org/get at 64 connections ≥ 0.8 × direct lookups",
            num(&["get_c64", "ratio"]),
            0.8,
            true,
        ),
        (
            "logins ≥ 0.9 × bcrypt ceiling (cores ÷ one verify)",
            num(&["login", "ratio"]),
            0.9,
            true,
        ),
        (
            "GET p99 while logins saturate ≤ 25 ms",
            num(&["get_while_logins_saturate", "get", "p99_ms"]),
            25.0,
            false,
        ),
        ("peak RSS ≤ 64 MiB", num(&["peak_rss_mib"]), 64.0, false),
        (
            "GET p99 with many organizations ≤ 1.25 × with 10",
            num(&["get_many_orgs", "ratio"]),
            1.25,
            false,
        ),
    ];
    if store == "mongodb" {
        rows.push((
            "rename of the large tenant ≤ 2 × the empty one",
            num(&["rename", "ratio"]),
            2.0,
            false,
        ));
    }
    if store == "embedded" {
        rows.push((
            "first healthy response ≤ 200 ms",
            num(&["first_healthy_ms"]),
            200.0,
            false,
        ));
    }
    Value::Array(
        rows.into_iter()
            .map(|(name, value, limit, at_least)| {
                let pass = if at_least {
                    value >= limit
                } else {
                    value <= limit
                };
                json!({ "target": name, "value": round(value), "limit": limit, "pass": pass })
            })
            .collect(),
    )
}

fn markdown(report: &Value) -> String {
    let m = &report["machine"];
    let mut s = format!(
        "### Benchmark ({} mode)\n\nMachine: {} cores, {} ({} GiB), bcrypt cost {}. Every figure is from one run; ceilings were measured in the same run.\n\n",
        report["mode"].as_str().unwrap_or("?"),
        m["cores"], m["cpu"].as_str().unwrap_or("unknown CPU"), m["memory_gib"], report["bcrypt_cost"]
    );
    for store in report["stores"].as_array().into_iter().flatten() {
        let f = &store["figures"];
        s += &format!(
            "#### {} store\n\n| figure | measured | ceiling | ratio |\n|---|---|---|---|\n",
            store["store"].as_str().unwrap_or("?")
        );
        for c in ["32", "64"] {
            let g = &f[format!("get_c{c}")];
            s += &format!("| GET /org/get, {c} connections: req/s (p50 / p99 ms) | {} ({} / {}) | {} ({} / {}) | {} |\n",
                g["api"]["ok_rps"], g["api"]["p50_ms"], g["api"]["p99_ms"], g["ceiling"]["rps"], g["ceiling"]["p50_ms"], g["ceiling"]["p99_ms"], g["ratio"]);
        }
        s += &format!(
            "| HTTP floor: GET /health/live, 32 connections: req/s (p50 / p99 ms) | {} ({} / {}) | | |\n",
            f["http_floor_c32"]["ok_rps"], f["http_floor_c32"]["p50_ms"], f["http_floor_c32"]["p99_ms"]
        );
        s += &format!(
            "| logins/s (bcrypt verify {} ms) | {} | {} | {} |\n",
            f["login"]["bcrypt_verify_ms"],
            f["login"]["api"]["ok_rps"],
            f["login"]["ceiling_rps"],
            f["login"]["ratio"]
        );
        s += &format!(
            "| GET p99 ms while logins saturate | {} | | |\n",
            f["get_while_logins_saturate"]["get"]["p99_ms"]
        );
        s += &format!(
            "| creates/s (bcrypt hash {} ms) | {} | {} | {} |\n",
            f["create"]["bcrypt_hash_ms"],
            f["create"]["rps"],
            f["create"]["ceiling_rps"],
            f["create"]["ratio"]
        );
        s += &format!(
            "| store rename ms: empty tenant / {} documents | {} / {} | | {} |\n",
            f["rename"]["large_documents"],
            f["rename"]["empty_ms"],
            f["rename"]["large_ms"],
            f["rename"]["ratio"]
        );
        s += &format!(
            "| GET p99 ms: 10 / {} organizations | {} / {} | | {} |\n",
            f["get_many_orgs"]["organizations"],
            f["get_many_orgs"]["p99_ms_with_10"],
            f["get_many_orgs"]["p99_ms"],
            f["get_many_orgs"]["ratio"]
        );
        s += &format!(
            "| peak RSS MiB | {} | | |\n| first healthy response ms | {} | | |\n\n",
            f["peak_rss_mib"], f["first_healthy_ms"]
        );
        s += "| target | value | limit | |\n|---|---|---|---|\n";
        for t in store["targets"].as_array().into_iter().flatten() {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                t["target"].as_str().unwrap_or("?"),
                t["value"],
                t["limit"],
                if t["pass"] == true {
                    "pass"
                } else {
                    "**miss**"
                }
            );
        }
        s += "\n";
    }
    s
}
