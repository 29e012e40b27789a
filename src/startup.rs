//! Building and running the application.
//!
//! [`App::build`] binds the listener (port 0 in tests), connects the store, and assembles the
//! router; [`App::run_until`] serves until a shutdown future resolves, then drains in-flight
//! requests. Tests and `main` use exactly the same path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::auth::throttle::LoginThrottle;
use crate::auth::{PasswordHasher, TokenKeys};
use crate::config::Config;
use crate::ratelimit::RateLimits;
use crate::router::router;
use crate::server;
use crate::state::AppState;
use crate::storage;

/// A built, bound, not yet serving application.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: Option<Arc<RateLimits>>,
    /// Whether start-up migrated the store (false when it was unreachable then).
    migrated: bool,
}

impl App {
    /// Connects the store, runs migrations, seeds the demo data in demo mode, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::metrics::handle();
        let failpoints = config.testing.failpoints.clone();
        let (store, migrated) =
            storage::connect_and_report(&config, failpoints, storage::Role::Serving).await?;
        let hasher =
            PasswordHasher::new(config.auth.bcrypt_cost, config.auth.bcrypt_workers).await?;
        let tokens = TokenKeys::new(
            &config.auth.secret_key,
            config.auth.algorithm,
            config.auth.access_token_ttl,
        )?;
        let state = AppState {
            store,
            tokens: Arc::new(tokens),
            hasher,
            throttle: LoginThrottle {
                max_attempts: config.auth.login_max_attempts,
                account_budget: config.auth.login_account_max_attempts,
                window: config.auth.login_window,
            },
            keys: Arc::default(),
            config: Arc::new(config),
        };

        let config = &state.config;
        if config.demo_mode {
            let seeded = crate::demo::seed(&state)
                .await
                .map_err(|e| anyhow::anyhow!("demo seeding: {e}"))?;
            tracing::warn!(created = ?seeded.created, "DEMO_MODE is on: sample organizations with published passwords exist");
        }

        let bind_to = SocketAddr::new(config.http.host, config.http.port);
        let listener = TcpListener::bind(bind_to)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind_to}: {e}"))?;
        let limits = config.http.rate_limits.then(|| Arc::new(RateLimits::new()));
        let router = router(state.clone(), limits.clone());
        Ok(Self {
            listener,
            router,
            state,
            limits,
            migrated,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The shared state (tests reach the store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting connections, lets in-flight
    /// requests finish (for at most [`crate::server::SHUTDOWN_GRACE`]), and closes the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let reconciler = tokio::spawn(reconcile_periodically(self.state.clone(), self.migrated));
        let upkeep = self
            .limits
            .clone()
            .map(|limits| tokio::spawn(shrink_periodically(limits)));
        let addr = self.local_addr();
        tracing::info!(%addr, store = self.state.store.kind(), "org-service listening");
        let config = &self.state.config;
        if config.auth.secret_key_generated {
            // Said when serving only: `seed-demo` and `migrate` issue no tokens.
            tracing::warn!(
                "SECRET_KEY is not set: using a random key for this run. Tokens will not survive a restart \
                 nor work across instances. Set SECRET_KEY (e.g. `openssl rand -hex 32`) for anything but local use."
            );
        }
        let limits = server::Limits {
            max_connections: config.http.max_connections,
            header_timeout: config.http.header_timeout,
            idle_timeout: config.http.idle_timeout,
        };
        server::serve(self.listener, self.router, limits, shutdown).await;
        reconciler.abort();
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        self.state.store.close().await;
        tracing::info!("org-service stopped");
        Ok(())
    }
}

/// Runs the reconciler at once and then every `RECONCILE_INTERVAL_SECONDS`, first running the
/// migrations until they succeed once if start-up could not (`migrated` false: the store was
/// down then). The
/// first pass runs beside serving, not before it: on MongoDB a pass reads every organization,
/// and serving does not depend on it (reads see only finished organizations; an interrupted
/// operation's claims are what the pass releases).
async fn reconcile_periodically(state: AppState, mut migrated: bool) {
    let mut ticker = tokio::time::interval(state.config.storage.reconcile_interval);
    loop {
        ticker.tick().await;
        if !migrated {
            migrated = state.store.migrate().await.is_ok();
        }
        match state
            .store
            .reconcile(state.config.storage.reconcile_grace)
            .await
        {
            Ok(report) => {
                for line in report.repaired {
                    tracing::warn!(repair = %line, "reconciler repaired an interrupted operation");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation failed; will retry"),
        }
        prune_audit(&state).await;
    }
}

/// Deletes audit events older than `AUDIT_RETENTION_DAYS` (each chain keeps an anchor, so what
/// remains verifies). Cheap when there is nothing to prune: one indexed range read.
async fn prune_audit(state: &AppState) {
    let keep = chrono::Duration::days(i64::from(state.config.tenant.audit_retention_days));
    match state.store.prune_events(chrono::Utc::now() - keep).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "audit events past their retention pruned"),
        Err(e) => tracing::warn!(error = %e, "pruning the audit log failed; will retry"),
    }
}

/// Forgets rate-limit buckets that have refilled, every minute, so memory stays bounded by the
/// addresses seen recently.
async fn shrink_periodically(limits: Arc<RateLimits>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        limits.shrink();
    }
}
