//! Per-client-address request limits (`RATE_LIMITS=on`, the default).
//!
//! Three token buckets per address, from the `governor` crate: a generous one for every API
//! request, a tighter one for the credential endpoints (`POST /admin/login`, `POST /admin/refresh`,
//! `PUT /admin/password`: password guessing across accounts) and the
//! tightest for `POST /org/create` (name squatting). Over the limit: 429 with `Retry-After`.
//! Per-account login throttling is separate ([`crate::auth::throttle`]) and always on.
//!
//! The client address is the one [`crate::client_addr`] resolved (the peer, or behind trusted
//! proxies the address they saw).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::client_addr::ClientAddr;
use crate::error::ApiError;

/// The three limiters.
pub struct RateLimits {
    general: DefaultKeyedRateLimiter<IpAddr>,
    login: DefaultKeyedRateLimiter<IpAddr>,
    create: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(burst: u32, every: Duration) -> Quota {
    Quota::with_period(every)
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("non-zero burst"))
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimits {
    /// The default limits.
    pub fn new() -> Self {
        Self::with_quotas(
            quota(200, Duration::from_millis(10)),
            quota(30, Duration::from_secs(2)),
            quota(20, Duration::from_secs(30)),
        )
    }

    fn with_quotas(general: Quota, login: Quota, create: Quota) -> Self {
        Self {
            general: governor::RateLimiter::keyed(general),
            login: governor::RateLimiter::keyed(login),
            create: governor::RateLimiter::keyed(create),
        }
    }

    /// Addresses currently remembered by any bucket.
    pub fn tracked(&self) -> usize {
        self.general.len() + self.login.len() + self.create.len()
    }

    /// Forgets addresses whose buckets are full again (run periodically to bound memory).
    pub fn shrink(&self) {
        self.general.retain_recent();
        self.login.retain_recent();
        self.create.retain_recent();
    }
}

/// The tighter bucket a request draws from besides the general one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Credential endpoints: password guessing across accounts.
    Login,
    /// Organization creation: name squatting.
    Create,
}

/// Which tighter bucket, if any, `method path` draws from.
pub fn bucket_for(method: &Method, path: &str) -> Option<Bucket> {
    match (method, path) {
        (&Method::POST, "/admin/login" | "/admin/refresh") | (&Method::PUT, "/admin/password") => {
            Some(Bucket::Login)
        }
        (&Method::POST, "/org/create") => Some(Bucket::Create),
        _ => None,
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up (a client that waits that long finds a
/// token), and at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Middleware: refuses a request over its address's limits.
pub async fn limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let Some(&ClientAddr(ip)) = req.extensions().get::<ClientAddr>() else {
        return next.run(req).await;
    };
    // Probes and scrapes come often from one address (a load balancer, Prometheus) and must
    // never be refused for it.
    if matches!(req.uri().path(), "/health" | "/health/live" | "/metrics") {
        return next.run(req).await;
    }
    let specific = match bucket_for(req.method(), req.uri().path()) {
        Some(Bucket::Login) => Some(("login", &limits.login)),
        Some(Bucket::Create) => Some(("create", &limits.create)),
        None => None,
    };
    for (bucket, limiter) in [Some(("general", &limits.general)), specific]
        .into_iter()
        .flatten()
    {
        if let Err(not_until) = limiter.check_key(&ip) {
            metrics::counter!("rate_limited_total", "bucket" => bucket).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return ApiError::TooManyRequests {
                retry_after: retry_after_secs(wait),
            }
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_and_create_routes_draw_from_their_own_buckets() {
        assert_eq!(
            bucket_for(&Method::POST, "/admin/login"),
            Some(Bucket::Login)
        );
        assert_eq!(
            bucket_for(&Method::POST, "/admin/refresh"),
            Some(Bucket::Login)
        );
        assert_eq!(
            bucket_for(&Method::PUT, "/admin/password"),
            Some(Bucket::Login)
        );
        assert_eq!(
            bucket_for(&Method::POST, "/org/create"),
            Some(Bucket::Create)
        );
        assert_eq!(bucket_for(&Method::GET, "/admin/login"), None);
        assert_eq!(bucket_for(&Method::POST, "/admin/password"), None);
        assert_eq!(bucket_for(&Method::PUT, "/org/create"), None);
        assert_eq!(bucket_for(&Method::GET, "/org/get"), None);
    }

    #[test]
    fn retry_after_rounds_waits_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(29_500)), 30);
    }

    #[test]
    fn shrink_forgets_addresses_whose_buckets_refilled() {
        let fast = quota(1, Duration::from_millis(1));
        let limits = RateLimits::with_quotas(fast, fast, fast);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for limiter in [&limits.general, &limits.login, &limits.create] {
            let _ = limiter.check_key(&ip);
        }
        assert_eq!(limits.tracked(), 3);
        std::thread::sleep(Duration::from_millis(20));
        limits.shrink();
        assert_eq!(limits.tracked(), 0);
    }

    #[tokio::test]
    async fn the_middleware_refuses_past_the_bucket_except_probes() {
        use axum::routing::{get, post};
        use tower::ServiceExt;

        let slow = quota(1, Duration::from_secs(60));
        let limits = Arc::new(RateLimits::with_quotas(
            quota(100, Duration::from_secs(60)),
            slow,
            slow,
        ));
        let app = axum::Router::new()
            .route("/admin/login", post(|| async { "ok" }))
            .route("/health/live", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(limits, limit));
        let send = |method: &str, path: &str, client: Option<&str>| {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap();
            if let Some(ip) = client {
                req.extensions_mut().insert(ClientAddr(ip.parse().unwrap()));
            }
            app.clone().oneshot(req)
        };
        let a = Some("192.0.2.1");
        assert_eq!(send("POST", "/admin/login", a).await.unwrap().status(), 200);
        let refused = send("POST", "/admin/login", a).await.unwrap();
        assert_eq!(refused.status(), 429);
        let wait: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&wait), "{wait}");
        // Another address has its own bucket; probes and unaddressed requests are never refused.
        assert_eq!(
            send("POST", "/admin/login", Some("192.0.2.2"))
                .await
                .unwrap()
                .status(),
            200
        );
        for _ in 0..3 {
            assert_eq!(send("GET", "/health/live", a).await.unwrap().status(), 200);
            assert_eq!(
                send("POST", "/admin/login", None).await.unwrap().status(),
                200
            );
        }
    }
}
