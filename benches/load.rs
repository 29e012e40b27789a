//! The load benchmark: `cargo bench --bench load -- [--quick | --full] [--out DIR]`.
//!
//! Builds in release mode (cargo bench's profile), starts FerretDB and the real `org-service`
//! binary on each store, drives it with oha (single endpoints) and a small driver of ours
//! (creates with unique names), and measures each figure beside a ceiling taken in the same
//! run: the same lookup done directly through the store, or cores ÷ one bcrypt operation.
//! Writes `report.json` and `report.md` to `bench-results/` (or `--out`). Timings are reported,
//! never asserted: the targets are printed as pass/fail for people to act on.

#[path = "load/audit.rs"]
mod audit;
#[path = "common/mod.rs"]
mod common;
#[path = "load/documents.rs"]
mod documents;
#[path = "load/report.rs"]
mod report;
#[path = "load/teams.rs"]
mod teams;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    find_or_install_oha, machine, percentile, round, seed, start_service, store_handle, FerretDb,
    Load,
};
use org_service::domain::OrgName;
use org_service::storage::Store;
use report::{markdown, targets};
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
    /// Audit events in the long log whose pages are read (a tenth on FerretDB).
    audit_events: usize,
    bcrypt_cost: u32,
}

const QUICK: Mode = Mode {
    name: "quick",
    phase: Duration::from_secs(3),
    many_orgs: 1_000,
    many_orgs_ferretdb: 500,
    large_docs: 5_000,
    audit_events: 10_000,
    bcrypt_cost: 10,
};
const FULL: Mode = Mode {
    name: "full",
    phase: Duration::from_secs(10),
    many_orgs: 10_000,
    many_orgs_ferretdb: 2_000,
    large_docs: 50_000,
    audit_events: 100_000,
    bcrypt_cost: 12,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.iter().any(|a| a == "--full") {
        FULL
    } else {
        QUICK
    };
    let out = common::out_dir(&args);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let oha = find_or_install_oha();
    let ferret = FerretDb::start(&root);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = common::arg_value(&args, "--store");
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

struct Bench {
    mode: Mode,
    oha: PathBuf,
    cores: usize,
    store: &'static str,
    mongo_url: String,
    /// Where the report (and the service's log, for diagnosis) goes.
    out: PathBuf,
}

impl Bench {
    fn oha(&self, concurrency: usize, url: &str, body: Option<&str>) -> Load {
        common::oha(&self.oha, self.mode.phase, concurrency, url, body)
    }

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
                &[],
            )
            .await
            .expect("rename back");
        started.elapsed()
    }

    async fn run(&self) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let env = self.env(dir.path());
        let store = store_handle(&env).await;
        let hash = bcrypt::hash(PASSWORD, self.mode.bcrypt_cost).unwrap();
        seed(&store, 0, 10, &hash).await;
        let log = self.out.join(format!("service-{}.log", self.store));
        let (service, startup) = start_service(dir.path(), &env, &log).await;
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
        self.team_figures(&base, &store, &hash, hashing, &mut figures)
            .await;
        eprintln!("bench: {}: teams done", self.store);
        self.document_figures(&base, &store, &mut figures).await;
        eprintln!("bench: {}: documents done", self.store);
        self.audit_figures(&base, &store, verify, &mut figures)
            .await;
        eprintln!("bench: {}: audit done", self.store);
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
        seed(&store, 10, many_orgs, &hash).await;
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
