//! The scale benchmark: `cargo bench --bench scale -- [--quick | --full] [--out DIR]
//! [--target embedded|mongodb-shared|mongodb-collection]`.
//!
//! Does the service stay as fast with many tenants as with a few? On the embedded store and on
//! MongoDB in the shared layout (FerretDB), it seeds organizations through the store and, at
//! each size, starts the release binary and measures: time to the first healthy answer,
//! creates per second through the API (bcrypt at cost 4, so the store is what is measured),
//! and the service's peak RSS after the same load. Then, in every layout, a rename of a tenant
//! of many documents against an empty one. Writes `scale.json` and `scale.md`; the ratios the
//! storage issue asks for are printed as pass/fail, never asserted.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{find_or_install_oha, machine, round, seed, start_service, store_handle, FerretDb};
use org_service::domain::{new_id, Email, NewOrganization, OrgName};
use org_service::storage::Store;
use serde_json::{json, Value};

const SECRET: &str = "benchmark-secret-key-of-at-least-32-bytes";
const PASSWORD: &str = "BenchPass123!";

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    phase: Duration,
    /// Organization counts measured, smallest first: the few, the reference for creates, many.
    sizes: [usize; 3],
    /// The largest count on FerretDB, whose SQLite backend takes minutes per ten thousand.
    many_ferretdb: usize,
    /// Documents in the large tenant of the rename.
    large_docs: usize,
}

const QUICK: Mode = Mode {
    name: "quick",
    phase: Duration::from_secs(3),
    sizes: [10, 1_000, 5_000],
    many_ferretdb: 2_000,
    large_docs: 5_000,
};
const FULL: Mode = Mode {
    name: "full",
    phase: Duration::from_secs(10),
    sizes: [10, 1_000, 50_000],
    many_ferretdb: 2_000,
    large_docs: 50_000,
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
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let targets = [
        ("embedded", None),
        ("mongodb-shared", Some("shared")),
        ("mongodb-collection", Some("collection")),
    ];
    let only = common::arg_value(&args, "--target");
    let mut results = Vec::new();
    for (name, layout) in targets
        .into_iter()
        .filter(|(name, _)| only.as_deref().is_none_or(|o| o == *name))
    {
        let target = Target {
            name,
            layout,
            mongo_url: ferret.url.clone(),
            mode,
            oha: oha.clone(),
            out: out.clone(),
        };
        eprintln!("scale: {name} ({} mode)", mode.name);
        results.push(runtime.block_on(target.run()));
    }
    drop(ferret);
    let report = json!({
        "mode": mode.name,
        "machine": machine(),
        "duration_seconds": round(started.elapsed().as_secs_f64()),
        "targets": results,
    });
    std::fs::write(
        out.join("scale.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = markdown(&report);
    std::fs::write(out.join("scale.md"), &md).unwrap();
    println!("{md}");
}

struct Target {
    name: &'static str,
    /// `None`: the embedded store; otherwise MongoDB in this layout.
    layout: Option<&'static str>,
    mongo_url: String,
    mode: Mode,
    oha: PathBuf,
    out: PathBuf,
}

impl Target {
    fn env(&self, dir: &Path) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("SECRET_KEY", SECRET),
            ("BCRYPT_COST", "4"),
            ("RATE_LIMITS", "off"),
            ("RUST_LOG", "warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        match self.layout {
            Some(layout) => {
                env.insert("MONGODB_URL".into(), self.mongo_url.clone());
                env.insert("TENANT_LAYOUT".into(), layout.into());
                env.insert(
                    "MASTER_DB_NAME".into(),
                    format!("scale_{}_{}", layout, std::process::id()),
                );
            }
            None => {
                env.insert(
                    "DATABASE_PATH".into(),
                    dir.join("scale.db").display().to_string(),
                );
            }
        }
        env
    }

    async fn run(&self) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let env = self.env(dir.path());
        let store = store_handle(&env).await;
        let rename = self.rename(&store).await;
        if self.layout == Some("collection") {
            // The collection layout is measured for renames only: a collection per tenant is
            // what the shared layout exists to avoid at scale.
            return json!({ "target": self.name, "rename": rename });
        }
        store.close().await;
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let mut sizes = self.mode.sizes.to_vec();
        if self.layout.is_some() {
            sizes[2] = self.mode.many_ferretdb;
        }
        let mut next_name = 0;
        let mut points = Vec::new();
        for size in sizes {
            // The bench's own handle is open only to seed: the service is measured alone on
            // its store, as it runs in production (an open reader also keeps SQLite's WAL
            // from being checkpointed).
            let store = store_handle(&env).await;
            // Creates of earlier rounds count too: seed up to `size` organizations in all.
            let existing = store.count_organizations().await.unwrap() as usize;
            if existing < size {
                let t = Instant::now();
                let more = size - existing;
                seed(&store, next_name, next_name + more, &hash).await;
                next_name += more;
                eprintln!(
                    "scale: {}: {size} organizations in {:.0?}",
                    self.name,
                    t.elapsed()
                );
            }
            // No creates at the smallest size: they would add organizations before the
            // reference point, which must hold exactly its count.
            let measure_creates = size != self.mode.sizes[0];
            points.push(self.measure(dir.path(), &env, measure_creates).await);
        }
        let ratio =
            |a: &Value, b: &Value| round(a.as_f64().unwrap_or(0.0) / b.as_f64().unwrap_or(1.0));
        let (few, reference, many) = (&points[0], &points[1], &points[2]);
        json!({
            "target": self.name,
            "points": points,
            "rename": rename,
            "ratios": {
                "creates_many_over_reference": ratio(&many["creates_per_s"], &reference["creates_per_s"]),
                "first_healthy_many_over_few": ratio(&many["first_healthy_ms"], &few["first_healthy_ms"]),
                "peak_rss_many_over_few": ratio(&many["peak_rss_mib"], &few["peak_rss_mib"]),
            },
        })
    }

    /// Starts the service on the store as it is, and measures start-up, creates and memory.
    async fn measure(
        &self,
        dir: &Path,
        env: &BTreeMap<String, String>,
        with_creates: bool,
    ) -> Value {
        let store = store_handle(env).await;
        let organizations = store.count_organizations().await.unwrap();
        store.close().await;
        drop(store);
        let log = self.out.join(format!("scale-{}.log", self.name));
        // Start-up is a few milliseconds: the median of five starts, not one sample of noise.
        let mut starts = Vec::new();
        for _ in 0..4 {
            let (service, healthy) = start_service(dir, env, &log).await;
            starts.push(healthy);
            drop(service);
        }
        let (service, healthy) = start_service(dir, env, &log).await;
        starts.push(healthy);
        starts.sort();
        let healthy = starts[2];
        // The same read load at every size, so peak memory compares like with like; read
        // before the creates, which only some sizes run.
        let get = common::oha(
            &self.oha,
            self.mode.phase,
            32,
            &format!("{}/org/get?organization_name=Bench%20Org%203", service.base),
            None,
        );
        let peak_rss = service.peak_rss_mib();
        let creates = if with_creates {
            json!(round(creates(&service.base, 8, self.mode.phase).await))
        } else {
            Value::Null
        };
        // Where the time went, by store operation: kept beside the report for reading, since a
        // ratio alone does not say which operation grew with the organizations.
        if let Ok(response) = reqwest::get(format!("{}/metrics", service.base)).await {
            let metrics = response.text().await.unwrap_or_default();
            let path = self
                .out
                .join(format!("scale-{}-{organizations}.metrics", self.name));
            std::fs::write(path, metrics).unwrap();
        }
        let point = json!({
            "organizations": organizations,
            "first_healthy_ms": round(healthy.as_secs_f64() * 1000.0),
            "creates_per_s": creates,
            "get_p99_ms": round(get.p99_ms),
            "peak_rss_mib": round(peak_rss),
        });
        eprintln!("scale: {}: {point}", self.name);
        point
    }

    /// Renames through the store: an empty tenant, then one of `large_docs` documents.
    async fn rename(&self, store: &Arc<dyn Store>) -> Value {
        let mut times = Vec::new();
        for (name, docs) in [("Rename Empty", 0), ("Rename Large", self.mode.large_docs)] {
            let org = store
                .create_organization(
                    &NewOrganization {
                        id: new_id(),
                        admin_id: new_id(),
                        name: OrgName::parse(name).unwrap(),
                        admin_email: Email::parse(&format!("{}@rename.example", docs)).unwrap(),
                        password_hash: Some(bcrypt::hash(PASSWORD, 4).unwrap()),
                        created_at: chrono::Utc::now(),
                    },
                    &[],
                )
                .await
                .unwrap();
            for start in (0..docs).step_by(10_000) {
                let batch = (start..(start + 10_000).min(docs))
                    .map(|n| json!({"n": n, "payload": "x".repeat(64)}))
                    .collect();
                store.insert_tenant_documents(&org, batch).await.unwrap();
            }
            let renamed = OrgName::parse(&format!("{name} Renamed")).unwrap();
            let t = Instant::now();
            let org = store
                .rename_organization(&org.id, &renamed, chrono::Utc::now(), &[])
                .await
                .unwrap();
            times.push(t.elapsed());
            assert_eq!(
                store.count_tenant_documents(&org).await.unwrap() as usize,
                docs
            );
        }
        json!({
            "empty_ms": round(times[0].as_secs_f64() * 1000.0),
            "large_ms": round(times[1].as_secs_f64() * 1000.0),
            "large_documents": self.mode.large_docs,
            "ratio": round(times[1].as_secs_f64() / times[0].as_secs_f64()),
        })
    }
}

/// Creates with unique names from `concurrency` clients for `phase`; 201s per second.
async fn creates(base: &str, concurrency: usize, phase: Duration) -> f64 {
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(0));
    let run = new_id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, stop, created, base, run) = (
            client.clone(),
            Arc::clone(&stop),
            Arc::clone(&created),
            base.to_owned(),
            run.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"organization_name": format!("Scale {run} {worker} {i}"), "email": format!("s{worker}x{i}@{run}.example"), "password": PASSWORD});
                let r = client
                    .post(format!("{base}/org/create"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                if r.status() == 201 {
                    created.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    created.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn markdown(report: &Value) -> String {
    let mut md = format!(
        "# Scale benchmark ({} mode)\n\nMachine: {}\n\n",
        report["mode"].as_str().unwrap_or("?"),
        report["machine"]
    );
    md.push_str("| store | organizations | first healthy (ms) | creates/s | GET p99 (ms) | peak RSS (MiB) |\n|---|---|---|---|---|---|\n");
    for t in report["targets"].as_array().into_iter().flatten() {
        for p in t["points"].as_array().into_iter().flatten() {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                t["target"].as_str().unwrap_or("?"),
                p["organizations"],
                p["first_healthy_ms"],
                p["creates_per_s"],
                p["get_p99_ms"],
                p["peak_rss_mib"]
            ));
        }
    }
    md.push_str("\n| store | target | value | limit | pass |\n|---|---|---|---|---|\n");
    for t in report["targets"].as_array().into_iter().flatten() {
        let name = t["target"].as_str().unwrap_or("?");
        let r = &t["ratios"];
        let mut checks = vec![(
            "rename of the large tenant ÷ an empty one",
            t["rename"]["ratio"].as_f64(),
            2.0,
            true,
        )];
        if r.is_object() {
            checks.extend([
                (
                    "creates/s with many ÷ with 1,000",
                    r["creates_many_over_reference"].as_f64(),
                    0.8,
                    false,
                ),
                (
                    "first healthy with many ÷ with 10",
                    r["first_healthy_many_over_few"].as_f64(),
                    1.25,
                    true,
                ),
                (
                    "peak RSS with many ÷ with 10",
                    r["peak_rss_many_over_few"].as_f64(),
                    1.1,
                    true,
                ),
            ]);
            let last = t["points"].as_array().and_then(|p| p.last());
            checks.push((
                "first healthy with many (ms)",
                last.and_then(|p| p["first_healthy_ms"].as_f64()),
                200.0,
                true,
            ));
        }
        for (what, value, limit, at_most) in checks {
            let value = value.unwrap_or(f64::NAN);
            let pass = if at_most {
                value <= limit
            } else {
                value >= limit
            };
            md.push_str(&format!(
                "| {name} | {what} | {value} | {} {limit} | {} |\n",
                if at_most { "≤" } else { "≥" },
                if pass { "yes" } else { "NO" }
            ));
        }
    }
    md
}
