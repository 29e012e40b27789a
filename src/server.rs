//! The accept loop: bounded connections, deadlines for silent and idle ones, graceful drain.
//!
//! The loop is hyper's own rather than `axum::serve` so that every connection is held to three
//! limits a public server needs:
//! - **At most `MAX_CONNECTIONS` at once.** A permit is taken *before* `accept`, so past the cap
//!   new clients wait in the kernel's backlog until a connection closes, instead of the process
//!   running out of file descriptors and failing every accept.
//! - **A first request head within `HTTP_HEADER_TIMEOUT_SECONDS` of being accepted.** hyper's
//!   own header timer starts at the first byte, so a connection that sends nothing would be kept
//!   for ever; the [`Activity`] watchdog closes it. hyper's timer still bounds a client that
//!   dribbles its headers a byte at a time.
//! - **Idle connections closed after `HTTP_IDLE_TIMEOUT_SECONDS`.** A kept-alive HTTP/1
//!   connection, or an HTTP/2 connection with no open stream (answering pings does not count as
//!   use), is closed that long after its last response finished.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// Connection limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time from accept to the first complete request head.
    pub header_timeout: Duration,
    /// Time a connection may sit with no request in flight after its last response.
    pub idle_timeout: Duration,
}

/// Longest the service waits for in-flight requests after SIGTERM/SIGINT.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What one connection is doing, shared by its requests and its watchdog.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    last_finished: Mutex<Instant>,
    /// Wakes the watchdog when a request starts or ends, so it recomputes its deadline.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            accepted: now,
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_finished: Mutex::new(now),
            changed: Notify::new(),
        }
    }

    /// When the connection is due to be closed, or `None` while a request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return Some(self.accepted + limits.header_timeout);
        }
        let last = *self.last_finished.lock().unwrap_or_else(|p| p.into_inner());
        Some(last + limits.idle_timeout)
    }

    /// Resolves when the connection has been silent or idle past its deadline.
    async fn expired(&self, limits: Limits) {
        loop {
            match self.deadline(&limits) {
                None => self.changed.notified().await,
                Some(deadline) if Instant::now() >= deadline => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// Marks a request of a connection in flight until dropped (with its response body).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self
            .0
            .last_finished
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Middleware (outermost): a request counts as in flight until its response body is sent, so
/// the idle deadline never cuts a response short.
pub async fn track_activity(req: Request, next: Next) -> Response {
    let Some(activity) = req.extensions().get::<Arc<Activity>>().cloned() else {
        return next.run(req).await;
    };
    let guard = InFlight::start(activity);
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(GuardedBody {
            body,
            _guard: guard,
        }),
    )
}

/// A response body that keeps its request in flight until it is sent or dropped, and keeps
/// the inner body's size (so `content-length` survives).
struct GuardedBody {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets
/// in-flight requests finish (for at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of file descriptors despite the cap (other files open): back off
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let for_requests = Arc::clone(&activity);
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.extensions_mut().insert(Arc::clone(&for_requests));
                req
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                // Dropping the connection closes the socket; nothing is in flight by then.
                () = activity.expired(limits) => tracing::debug!(%peer, "closed a silent or idle connection"),
            }
        });
    }
    drop(listener);
    tracing::info!("shutdown signal received; draining in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests did not finish within {SHUTDOWN_GRACE:?}; stopping anyway"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_connections: 1,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_connection_state() {
        let activity = Arc::new(Activity::new());
        let accepted = activity.accepted;
        assert_eq!(
            activity.deadline(&LIMITS),
            Some(accepted + LIMITS.header_timeout)
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        let guard = InFlight::start(Arc::clone(&activity));
        assert_eq!(
            activity.deadline(&LIMITS),
            None,
            "never while a request is in flight"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        drop(guard);
        let finished = accepted + Duration::from_secs(5);
        assert_eq!(
            activity.deadline(&LIMITS),
            Some(finished + LIMITS.idle_timeout)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_at_the_header_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.expired(LIMITS).await;
        assert_eq!(Instant::now() - started, LIMITS.header_timeout);
    }
}
