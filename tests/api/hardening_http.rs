//! Issue 9, the HTTP side: silent and idle connections, bounded metrics labels, the client
//! address behind proxies, CORS without credentials.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_stores;
use crate::helpers::*;

/// Reads until the server closes the connection; `true` if it did within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0_u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Connections that send nothing are closed after the header timeout, counted from accept;
/// past the connection cap new clients wait instead of failing, and are served once the
/// silent ones are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_capped() {
    let app = spawn_app_with(
        Backend::Embedded,
        &[
            ("HTTP_HEADER_TIMEOUT_SECONDS", "1"),
            ("MAX_CONNECTIONS", "20"),
        ],
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..60 {
        silent.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // A normal client arriving behind 60 silent connections (3× the cap) is still served.
    let started = std::time::Instant::now();
    let r = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "served once silent ones were closed"
    );
    // The first silent connection was accepted and then closed by the server.
    assert!(closed_by_server(&mut silent[0], Duration::from_secs(5)).await);
}

/// A kept-alive connection with no request in flight is closed after the idle timeout,
/// while a request slower than that timeout is never cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let app = spawn_app_with(Backend::Embedded, &[("HTTP_IDLE_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0_u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"));
    assert!(
        head.contains("content-length: 18"),
        "the size survives the in-flight guard: {head}"
    );
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(5)).await,
        "idle connection kept"
    );

    // A create paused 2.5 s in the store lasts longer than the 1 s idle timeout.
    let slow = spawn_app_with(
        Backend::Embedded,
        &[
            ("HTTP_IDLE_TIMEOUT_SECONDS", "1"),
            ("ORG_SERVICE_FAILPOINTS", "create.after_admin=2500ms"),
        ],
    )
    .await;
    let r = slow
        .create_org("Slowpoke", "s@slow.example", PASSWORD)
        .await;
    assert_eq!(r.status(), 201, "a slow request is not an idle connection");
}

/// 2,000 made-up methods add no series: non-standard methods are labelled `other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_stay_bounded_whatever_the_method() {
    let app = spawn_app_with(Backend::Embedded, &[("RATE_LIMITS", "off")]).await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .count()
    };
    let before = series(
        &app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    for i in 0..2000 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/org/get"
        } else {
            "/no/such/path"
        };
        let r = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error());
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("FOO"), "a raw method became a label");
    assert!(text.contains("method=\"other\""));
    // Other tests share the process-wide recorder: allow their few series, never 2,000.
    assert!(series(&text) < before + 100, "{} series", series(&text));
}

both_stores! {
    /// Behind one trusted proxy the client is the right-most X-Forwarded-For entry across all
    /// header lines: a client that sends its own line first cannot get a fresh address.
    async fn forwarded_for_uses_the_address_the_proxy_added(backend: Backend) {
        let app = spawn_app_with(backend, &[("TRUST_FORWARDED_FOR", "true")]).await;
        let mut limited = 0;
        for i in 0..40 {
            let r = app.client.post(app.url("/admin/login"))
                .header("x-forwarded-for", format!("10.9.{}.{}", i / 250, i % 250))
                .header("x-forwarded-for", "203.0.113.7")
                .json(&json!({"email": format!("n{i}@x.example"), "password": "WrongPass123!"}))
                .send().await.unwrap();
            if r.status() == 429 { limited += 1; }
        }
        // The login bucket allows a burst of 30 per address (plus what refills meanwhile);
        // with the spoofed line as the address nothing would be limited.
        assert!((7..=10).contains(&limited), "{limited} limited");

        // Two trusted hops: the second entry from the right is the client.
        let app = spawn_app_with(app.backend.clone(), &[("TRUST_FORWARDED_FOR", "true"), ("TRUSTED_PROXY_HOPS", "2")]).await;
        let mut limited = 0;
        for i in 0..35 {
            let r = app.client.post(app.url("/admin/login"))
                .header("x-forwarded-for", format!("10.8.0.{i}, 198.51.100.4, 10.0.0.{i}"))
                .json(&json!({"email": format!("h{i}@x.example"), "password": "WrongPass123!"}))
                .send().await.unwrap();
            if r.status() == 429 { limited += 1; }
        }
        assert!((2..=5).contains(&limited), "{limited} limited");
    }
}

both_stores! {
    /// CORS never sends `allow-credentials`: the API authenticates with a header, not cookies.
    async fn cors_never_allows_credentials(backend: Backend) {
        for origins in ["", "https://app.example.com"] {
            let app = spawn_app_with(backend.clone(), &[("CORS_ORIGINS", origins)]).await;
            let r = app.client.request(reqwest::Method::OPTIONS, app.url("/org/create"))
                .header("origin", "https://app.example.com")
                .header("access-control-request-method", "POST").send().await.unwrap();
            assert!(r.headers().get("access-control-allow-credentials").is_none(), "origins {origins:?}");
        }
    }
}

/// Health probes and scrapes are never rate-limited (the document lists no 429 for them),
/// while other routes are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_never_rate_limited() {
    let app = spawn_app(Backend::Embedded).await;
    let burst = |path: &'static str| {
        // A client per burst: reusing the last burst's pooled connections races the server
        // closing them as idle (a reset, seen when the machine was loaded).
        let client = reqwest::Client::new();
        let requests: Vec<_> = (0..400).map(|_| client.get(app.url(path)).send()).collect();
        async move {
            futures::future::join_all(requests)
                .await
                .into_iter()
                .filter(|r| r.as_ref().unwrap().status() == 429)
                .count()
        }
    };
    assert_eq!(burst("/health/live").await, 0);
    assert_eq!(burst("/metrics").await, 0);
    assert!(
        burst("/org/get").await > 0,
        "the general limit still applies to the API"
    );
}

/// An HTTP/2 connection (h2c) whose last stream ended is closed after the idle timeout, even
/// though the client answers the server's pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed() {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = spawn_app_with(Backend::Embedded, &[("HTTP_IDLE_TIMEOUT_SECONDS", "1")]).await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(app.url("/health/live"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    drop(response);
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was kept open");
}
