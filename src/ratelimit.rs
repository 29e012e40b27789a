//! Per-client-address request limits (`RATE_LIMITS=on`, the default).
//!
//! Three token buckets per address, from the `governor` crate: a generous one for every API
//! request, a tighter one for the credential endpoints (`POST /admin/login`, `POST /admin/refresh`,
//! `PUT /admin/password`: password guessing across accounts) and the
//! tightest for `POST /org/create` (name squatting). Over the limit: 429 with `Retry-After`.
//! Per-account login throttling is separate ([`crate::auth::throttle`]) and always on.
//!
//! Behind a reverse proxy every request comes from the proxy's address; with
//! `TRUST_FORWARDED_FOR=true` the client is the last address in `X-Forwarded-For` (the one the
//! proxy appended). Only enable that behind a proxy that sets the header.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// The three limiters and how to find the client's address.
pub struct RateLimits {
    general: DefaultKeyedRateLimiter<IpAddr>,
    login: DefaultKeyedRateLimiter<IpAddr>,
    create: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

fn quota(burst: u32, every: Duration) -> Quota {
    Quota::with_period(every)
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("non-zero burst"))
}

impl RateLimits {
    /// The default limits.
    pub fn new(trust_forwarded_for: bool) -> Self {
        Self {
            general: governor::RateLimiter::keyed(quota(200, Duration::from_millis(10))),
            login: governor::RateLimiter::keyed(quota(30, Duration::from_secs(2))),
            create: governor::RateLimiter::keyed(quota(20, Duration::from_secs(30))),
            trust_forwarded_for,
        }
    }

    fn client(&self, req: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
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
    let Some(ip) = limits.client(&req) else {
        return next.run(req).await;
    };
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
