//! Store outage: with the MongoDB server unreachable, requests that need it get 503 quickly,
//! `/health` says unhealthy, and the service recovers by itself when the server returns.
//!
//! The outage is a TCP proxy between the service and the server that the test switches off
//! (closing every open connection and refusing new ones) and on again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::*;

struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (up2, gen2) = (Arc::clone(&up), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut killed = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Outage and recovery against MongoDB (the embedded store is a local file: it has no outage
/// to simulate short of a broken disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn store_outage_gives_503_and_the_service_recovers_by_itself() {
    let (proxy, proxied) = proxied_mongo().await;
    let app = spawn_app(Backend::Mongo(proxied)).await;
    app.given_org("Acme", "a@acme.com").await;

    proxy.down();
    for (what, request) in [
        (
            "get",
            app.client
                .get(app.url("/org/get"))
                .query(&[("organization_name", "Acme")]),
        ),
        (
            "login",
            app.client
                .post(app.url("/admin/login"))
                .json(&json!({"email": "a@acme.com", "password": PASSWORD})),
        ),
        (
            "create",
            app.client.post(app.url("/org/create")).json(
                &json!({"organization_name": "Other", "email": "o@o.com", "password": PASSWORD}),
            ),
        ),
    ] {
        let started = Instant::now();
        let r = request.send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "{what}");
        assert!(
            took < Duration::from_secs(3),
            "{what} took {took:?}: a down store must not hang requests"
        );
        assert_eq!(
            json_body(r).await,
            json!({"detail": "Service temporarily unavailable"}),
            "{what}"
        );
    }
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(json_body(r).await["status"], "unhealthy");

    proxy.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.client.get(app.url("/health")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not recover within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get_org("Acme").await.status(), 200);
    assert_eq!(
        app.create_org("Other", "o@o.com", PASSWORD).await.status(),
        201
    );
    assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 200);
    app.assert_consistent(2).await;
}

/// A proxy in front of `TEST_MONGODB_URL`'s server, and the URL that goes through it.
async fn proxied_mongo() -> (Proxy, String) {
    let server: SocketAddr = mongo_url()
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap()
        .parse()
        .expect("TEST_MONGODB_URL names 127.0.0.1:PORT");
    let proxy = Proxy::start(server).await;
    let proxied = format!("mongodb://{}/?directConnection=true", proxy.addr);
    (proxy, proxied)
}

/// Started while MongoDB is unreachable, the service serves 503s, and once the server answers
/// its periodic task migrates (indexes, the tenant-layout check) and creates succeed: tenant
/// operations wait for that check, so a 201 shows the migration ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn a_service_started_during_an_outage_migrates_when_the_store_returns() {
    let (proxy, proxied) = proxied_mongo().await;
    proxy.down();
    let app = spawn_app_with(
        Backend::Mongo(proxied),
        &[
            ("RECONCILE_INTERVAL_SECONDS", "1"),
            ("STORE_TIMEOUT_SECONDS", "1"),
            ("RATE_LIMITS", "off"),
        ],
    )
    .await;
    assert_eq!(
        app.create_org("Early", "e@early.com", PASSWORD)
            .await
            .status(),
        503
    );

    proxy.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app
            .create_org("Early", "e@early.com", PASSWORD)
            .await
            .status();
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "until migrated, only 503");
        assert!(
            Instant::now() < deadline,
            "no migration within 30 s of the store's return"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    app.assert_consistent(1).await;
}
