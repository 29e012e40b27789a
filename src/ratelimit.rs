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
        Self {
            general: governor::RateLimiter::keyed(quota(200, Duration::from_millis(10))),
            login: governor::RateLimiter::keyed(quota(30, Duration::from_secs(2))),
            create: governor::RateLimiter::keyed(quota(20, Duration::from_secs(30))),
        }
    }

    /// Forgets addresses whose buckets are full again (run periodically to bound memory).
    pub fn shrink(&self) {
        self.general.retain_recent();
        self.login.retain_recent();
        self.create.retain_recent();
    }
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
    let specific = match (req.method(), req.uri().path()) {
        (&Method::POST, "/admin/login" | "/admin/refresh") | (&Method::PUT, "/admin/password") => {
            Some(("login", &limits.login))
        }
        (&Method::POST, "/org/create") => Some(("create", &limits.create)),
        _ => None,
    };
    for (bucket, limiter) in [Some(("general", &limits.general)), specific]
        .into_iter()
        .flatten()
    {
        if let Err(not_until) = limiter.check_key(&ip) {
            metrics::counter!("rate_limited_total", "bucket" => bucket).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return ApiError::TooManyRequests {
                retry_after: wait.as_secs() + 1,
            }
            .into_response();
        }
    }
    next.run(req).await
}
