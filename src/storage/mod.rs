//! Storage: traits that speak the domain, one per concern ([`roles`]), and two adapters.
//!
//! Handlers talk to [`Store`] only; they never see a driver type, a table or a collection
//! handle. Each adapter translates its backend's errors into [`StoreError`] itself: a unique
//! violation becomes [`StoreError::Conflict`], an absent record `Ok(None)`, everything else
//! [`StoreError::Unavailable`] (the store cannot be reached: 503) or [`StoreError::Backend`].
//!
//! - [`embedded::EmbeddedStore`]: a single SQLite file; every operation is one transaction.
//! - [`mongo::MongoStore`]: MongoDB (or FerretDB) without transactions: ordered idempotent
//!   steps, claimed by inserting reservation documents, finished or undone by a reconciler.
//!
//! See ARCHITECTURE.md for the data model on each store and the consistency argument.

pub mod embedded;
pub mod metered;
pub mod mongo;
mod roles;

pub use roles::{
    ApiKeys, Audit, Documents, Idempotency, Invitations, Maintenance, Members, Organizations,
    Sessions, TenantData, Throttle,
};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{Config, StoreConfig};
use crate::domain::{Invitation, InvitationEnd, Refusal, TenantLayout};
use crate::failpoint::Failpoints;

/// Longest login throttle window (`LOGIN_WINDOW_SECONDS` is capped at this); throttle records
/// older than this are expired by the reconciler.
pub const MAX_LOGIN_WINDOW_SECONDS: i64 = 86_400;

/// Which unique value a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another organization has the same slug.
    Name,
    /// Another account has the same email.
    Email,
    /// The email is already a member of the organization.
    Member,
    /// The email has a pending invitation to the organization.
    Invitation,
    /// Another API key has the same prefix (64 random bits: practically never).
    KeyPrefix,
}

/// Which of an organization's events a list asks for (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this action.
    pub action: Option<crate::domain::AuditAction>,
    /// Only this actor (an account's or key's id).
    pub actor_id: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events before this sequence (the cursor).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// What an organization may hold only so many of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Documents: `TENANT_MAX_DOCUMENTS`.
    Documents,
    /// API keys: [`crate::domain::MAX_API_KEYS`].
    ApiKeys,
}

/// What can go wrong in a store, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already taken.
    #[error("{0:?} already taken")]
    Conflict(Taken),
    /// The organization or admin the operation acts on no longer exists (deleted meanwhile).
    #[error("gone")]
    Gone,
    /// The roles and owners as they are forbid the membership change.
    #[error("refused: {0}")]
    Rule(Refusal),
    /// The invitation's token no longer works, and why.
    #[error("invitation {0:?}")]
    Ended(InvitationEnd),
    /// The organization holds as many of something as it may.
    #[error("{0:?} quota reached")]
    Quota(Limit),
    /// The server cannot store this value as given (FerretDB refuses arrays nested directly in
    /// arrays, which MongoDB and the embedded store hold): the client's data, so a 422.
    #[error("cannot store: {0}")]
    Unstorable(String),
    /// The document's version is not the one the write was conditioned on (`If-Match`).
    #[error("version mismatch")]
    Precondition,
    /// The refresh-token chain was revoked (or the token already stored): it cannot be joined.
    #[error("revoked")]
    Revoked,
    /// Another change to the same organization is in progress (MongoDB's per-organization
    /// operation lock); the caller may retry.
    #[error("another change to this organization is in progress")]
    Busy,
    /// The store could not be reached in time: callers answer 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's present state forbids the operation (a tenant layout other than the one
    /// configured, an unfinished layout change, instances serving during one); the message
    /// says what to do.
    #[error("{0}")]
    Refused(String),
    /// Any other failure, with context for the log.
    #[error("store error: {0}")]
    Backend(String),
}

/// Outcome of one login attempt against the per-account throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    /// Attempts counted in the current window, this one included (`limit + 1`: refused).
    pub attempts: u32,
    /// When the current window started.
    pub window_start: DateTime<Utc>,
}

/// A refresh token as stored: only its SHA-256 hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token string.
    pub hash: String,
    /// The account it refreshes.
    pub admin_id: String,
    /// The organization the session is for.
    pub organization_id: String,
    /// The rotation chain it belongs to (one per login).
    pub family_id: String,
    /// The admin's token version when issued: a logout or password change since then voids it.
    pub token_version: i64,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What spending a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshSpend {
    /// Valid and now spent: the caller issues the next token of the family.
    Fresh(RefreshToken),
    /// Spent before, and its successor has been issued since: a replay after the winning
    /// use; the caller revokes the whole family.
    Reused(RefreshToken),
    /// Spent by a concurrent use whose successor is not issued yet: this use lost the race.
    /// The caller answers 401 and revokes nothing (the winner's chain goes on).
    Contended,
    /// Unknown, revoked or expired.
    Invalid,
}

/// An invitation found by one of its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationToken {
    /// The invitation.
    pub invitation: Invitation,
    /// False when a resend has issued a newer token since.
    pub current: bool,
}

/// The account that accepts an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptingAccount {
    /// Its id (new or existing).
    pub id: String,
    /// The invited email.
    pub email: String,
    /// For a new account, its password's hash; `None` for an existing account.
    pub password_hash: Option<String>,
}

/// How long a request is remembered under its `Idempotency-Key`.
pub const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(24 * 3600);

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours now: run the request, then finish or abandon the claim.
    Started,
    /// Another request with this key is still running.
    Running {
        /// Fingerprint of that request.
        fingerprint: String,
    },
    /// A request with this key finished: its response (sealed) is replayed.
    Finished {
        /// Fingerprint of that request.
        fingerprint: String,
        /// The response, encrypted by [`crate::idempotency`].
        sealed: Vec<u8>,
    },
}

/// What a tenant-layout change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutChange {
    /// The layout the documents were in.
    pub from: TenantLayout,
    /// The layout they are in now.
    pub to: TenantLayout,
    /// Tenants whose documents were moved.
    pub tenants: u64,
    /// Documents copied (a resumed change counts again the ones it copies again).
    pub documents: u64,
}

/// What a reconciler pass repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Interrupted operations finished or undone, one line each.
    pub repaired: Vec<String>,
}

/// The service's persistence, in domain terms: every role trait, plus what is not an
/// operation to time. Implementations must be safe to share between tasks and, for MongoDB,
/// between service instances on one database.
#[async_trait]
pub trait Store:
    Maintenance
    + Organizations
    + Members
    + Invitations
    + Sessions
    + Throttle
    + TenantData
    + Documents
    + ApiKeys
    + Audit
    + Idempotency
    + 'static
{
    /// Short name for logs and metrics ("embedded" or "mongodb").
    fn kind(&self) -> &'static str;

    /// Flushes and closes connections at shutdown (best effort).
    async fn close(&self);
}

/// Whether the connecting process serves the API or is a tool (`migrate`, tests). On MongoDB a
/// serving process keeps a presence record, so that a tenant-layout change can refuse to run
/// while an instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves the API.
    Serving,
    /// A command-line tool or a test's direct connection.
    Tool,
}

/// Opens the store chosen by the configuration without migrating it (for a tenant-layout
/// change, which must run before the layout check that [`Maintenance::migrate`] does).
pub async fn open(
    config: &Config,
    failpoints: Failpoints,
    role: Role,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match &config.storage.backend {
        StoreConfig::Embedded { path } => {
            Arc::new(embedded::EmbeddedStore::open(path, config.storage.timeout, failpoints).await?)
        }
        StoreConfig::Mongo {
            url,
            db_name,
            layout,
        } => Arc::new(
            mongo::MongoStore::connect(
                std::str::from_utf8(url.expose())?,
                db_name,
                mongo::MongoOptions {
                    timeout: config.storage.timeout,
                    failpoints,
                    clock_skew: config.testing.clock_skew,
                    layout: *layout,
                    // Three reconciler passes and some: a live instance renews it in time.
                    presence: (role == Role::Serving)
                        .then(|| config.storage.reconcile_interval * 3 + Duration::from_secs(10)),
                },
            )
            .await?,
        ),
    };
    Ok(Arc::new(metered::MeteredStore(store)))
}

/// Opens the store chosen by the configuration and runs its migrations.
pub async fn connect(
    config: &Config,
    failpoints: Failpoints,
    role: Role,
) -> anyhow::Result<Arc<dyn Store>> {
    connect_and_report(config, failpoints, role)
        .await
        .map(|(store, _)| store)
}

/// [`connect`], also saying whether the migrations ran: an unreachable MongoDB at start-up is
/// not fatal (the service starts, reports unhealthy, and migrates once the server answers), and
/// whoever retries needs to know whether there is anything to retry.
pub async fn connect_and_report(
    config: &Config,
    failpoints: Failpoints,
    role: Role,
) -> anyhow::Result<(Arc<dyn Store>, bool)> {
    let store = open(config, failpoints, role).await?;
    match store.migrate().await {
        Ok(()) => Ok((store, true)),
        Err(e @ StoreError::Unavailable(_)) => {
            tracing::error!(error = %e, "store unreachable at start-up; will retry");
            Ok((store, false))
        }
        Err(e) => Err(e.into()),
    }
}
