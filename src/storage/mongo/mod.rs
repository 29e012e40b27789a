//! The MongoDB store (production; tested against FerretDB).
//!
//! Neither a standalone `mongod` nor FerretDB has transactions, so each multi-step operation is
//! a sequence of idempotent steps whose order makes every intermediate state recognisable:
//!
//! - **Claims.** A unique value is taken by *inserting* a document into `reservations` whose
//!   `_id` is `slug:<slug>` or `skeleton:<skeleton>` (insert-time duplicate keys are reported
//!   as code 11000 by MongoDB and FerretDB alike; update-time ones are not on FerretDB). The
//!   unique index on `organizations.slug` backs the claims up; an account's email is claimed
//!   in `account_emails` (`_id: <email>`) before the account is inserted, which also serves
//!   lookups by email by `_id`; the unique `email` index on accounts (`admins`) backs it up. A membership's `_id` is
//!   `<organization id>:<account id>`, unique by construction.
//! - **Teams.** Membership changes, invitations and accepts of one organization take its
//!   operation lock (`lock.rs`): the role and owner count they decide on cannot change under
//!   them, so the last owner stays protected without transactions.
//! - **States.** An organization document is `creating` until its admin and collection exist,
//!   then `active`; a delete first marks it `deleting`; a rename records `pending` (the target
//!   name) before moving the collection. Reads only ever see `active` organizations.
//! - **Reconciler.** [`super::Maintenance::reconcile`] undoes `creating` organizations older than the grace
//!   period, finishes `deleting` ones and pending renames, and removes reservations, admins and
//!   tenant collections that nothing owns. It runs at start-up and periodically, on every
//!   instance; every step is idempotent, so instances racing on it agree.
//!
//! Every call is bounded by the store timeout and maps "cannot reach the server" to
//! [`StoreError::Unavailable`], which the API answers with 503.

//!
//! One module per concern: `organizations` (create, read, delete), `members`, `invitations`,
//! `api_keys`, `audit` (the chains), `audit_outbox` (events staged with their change), `documents`,
//! `rename`, `claims` (the
//! reservations above), `tenant` (tenant documents in either layout), `layout` (the recorded
//! layout, presence of serving instances, moving between layouts), `maintenance` (indexes,
//! the reconciler's order, consistency check), `reconcile` (its passes), `teams_upkeep` (teams' upgrade, check and sweep), `emails` (the email → account index), `sessions`, `throttle`, `idempotency`, `lock`, `clock`, `guarded` (conditional deletes FerretDB serves by `_id`);
//! `codec` maps documents and driver errors.

use std::future::IntoFuture;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};

mod api_keys;
mod audit;
mod audit_outbox;
mod claims;
mod clock;
mod codec;
mod documents;
mod emails;
mod guarded;
mod idempotency;
mod invitations;
mod layout;
mod lock;
mod maintenance;
mod members;
mod organizations;
mod reconcile;
mod rename;
mod sessions;
mod teams_upkeep;
mod tenant;
mod throttle;

use clock::ServerClock;
use codec::{error_code, translate};
use guarded::ServerKind;
use layout::{LayoutState, Presence};

use super::{Store, StoreError};
use crate::domain::TenantLayout;
use crate::failpoint::Failpoints;

pub(super) const ORGS: &str = "organizations";
pub(super) const ADMINS: &str = "admins";
pub(super) const RESERVATIONS: &str = "reservations";
pub(super) const LOGIN_ATTEMPTS: &str = "login_attempts";
pub(super) const LOGIN_WINDOWS: &str = "login_windows";
pub(super) const REFRESH_TOKENS: &str = "refresh_tokens";
pub(super) const MEMBERSHIPS: &str = "memberships";
pub(super) const INVITATIONS: &str = "invitations";
pub(super) const DOCUMENT_WRITES: &str = "document_writes";

pub(super) const STATE_CREATING: &str = "creating";
pub(super) const STATE_ACTIVE: &str = "active";
pub(super) const STATE_DELETING: &str = "deleting";

/// How a [`MongoStore`] behaves, from the configuration.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// `STORE_TIMEOUT_SECONDS`: the bound on every driver call.
    pub timeout: Duration,
    /// Test-only crash and pause points.
    pub failpoints: Failpoints,
    /// Test-only error of this instance's clock.
    pub clock_skew: chrono::Duration,
    /// `TENANT_LAYOUT`: where tenant documents live; checked against the database's record.
    pub layout: TenantLayout,
    /// For a serving instance, how long its presence record lasts unless renewed (it is
    /// renewed by every reconciler pass); `None` for tools (`migrate`, tests), which do not
    /// count as serving.
    pub presence: Option<Duration>,
}

/// MongoDB-backed [`Store`].
pub struct MongoStore {
    client: Client,
    db: Database,
    timeout: Duration,
    failpoints: Failpoints,
    /// The server's time: every time written or compared for the reconciler and locks.
    clock: ServerClock,
    /// Where tenant documents live (see `layout.rs`).
    layout: LayoutState,
    /// This process's presence record (`instances`), if it serves.
    presence: Option<Presence>,
    /// FerretDB or MongoDB, once asked (see `guarded.rs`).
    server: ServerKind,
}

impl MongoStore {
    /// Builds a client for `url` (the driver connects lazily, at the first operation).
    pub async fn connect(
        url: &str,
        db_name: &str,
        options: MongoOptions,
    ) -> Result<Self, StoreError> {
        let MongoOptions {
            timeout,
            failpoints,
            clock_skew,
            layout,
            presence,
        } = options;
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| StoreError::Backend(format!("MONGODB_URL: {e}")))?;
        options.app_name.get_or_insert_with(|| "org-service".into());
        // Fail fast when the server is gone, and notice quickly when it is back.
        options.server_selection_timeout.get_or_insert(timeout);
        options.connect_timeout.get_or_insert(timeout);
        options.heartbeat_freq.get_or_insert(Duration::from_secs(2));
        let client = Client::with_options(options)
            .map_err(|e| StoreError::Backend(format!("MONGODB_URL: {e}")))?;
        let db = client.database(db_name);
        Ok(Self {
            client,
            db,
            timeout,
            failpoints,
            clock: ServerClock::new(clock_skew),
            layout: LayoutState::new(layout),
            presence: presence.map(Presence::new),
            server: ServerKind::default(),
        })
    }

    pub(super) fn orgs(&self) -> Collection<Document> {
        self.db.collection(ORGS)
    }
    pub(super) fn admins(&self) -> Collection<Document> {
        self.db.collection(ADMINS)
    }
    pub(super) fn memberships(&self) -> Collection<Document> {
        self.db.collection(MEMBERSHIPS)
    }
    pub(super) fn document_writes(&self) -> Collection<Document> {
        self.db.collection(DOCUMENT_WRITES)
    }
    pub(super) fn invitations(&self) -> Collection<Document> {
        self.db.collection(INVITATIONS)
    }
    pub(super) fn reservations(&self) -> Collection<Document> {
        self.db.collection(RESERVATIONS)
    }
    pub(super) fn attempts(&self) -> Collection<Document> {
        self.db.collection(LOGIN_ATTEMPTS)
    }
    pub(super) fn refresh(&self) -> Collection<Document> {
        self.db.collection(REFRESH_TOKENS)
    }
    pub(super) fn windows(&self) -> Collection<Document> {
        self.db.collection(LOGIN_WINDOWS)
    }

    /// Bounds one driver call by the store timeout and translates its error.
    pub(super) async fn run<T>(
        &self,
        what: &str,
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        self.run_within(self.timeout, what, fut).await
    }

    /// The string `field` of the document `{_id: key}` of `collection`: the first of the two
    /// reads by `_id` behind a lookup through an index collection (an organization by its
    /// slug's reservation, an account by its email's entry). `None` when there is no entry.
    pub(super) async fn pointer(
        &self,
        what: &str,
        collection: &Collection<Document>,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        let entry = self
            .run(what, collection.find_one(doc! { "_id": key }))
            .await?;
        Ok(entry.and_then(|e| e.get_str(field).ok().map(str::to_owned)))
    }

    /// Like [`MongoStore::run`] with ten store timeouts: for a scan or a bulk write of a
    /// tenant's data (FerretDB has no metadata count), never for a point operation.
    pub(super) async fn run_scan<T>(
        &self,
        what: &str,
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        self.run_within(self.timeout * 10, what, fut).await
    }

    async fn run_within<T>(
        &self,
        limit: Duration,
        what: &str,
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(limit, fut.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(translate(what, &e)),
            Err(_) => Err(StoreError::Unavailable(format!("{what}: timed out"))),
        };
        tracing::trace!(
            step = what,
            micros = started.elapsed().as_micros() as u64,
            "store step"
        );
        result
    }

    /// Like [`MongoStore::run`] for a write of a client's data: a value the server refuses to
    /// store (`BadValue`) is [`StoreError::Unstorable`], the client's to fix.
    pub(super) async fn run_with_data<T>(
        &self,
        what: &str,
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if error_code(&e) == Some(codec::BAD_VALUE) => {
                Err(StoreError::Unstorable(match e.kind.as_ref() {
                    mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(
                        w,
                    )) => w.message.clone(),
                    _ => "a value this server does not support".to_owned(),
                }))
            }
            Ok(Err(e)) => Err(translate(what, &e)),
            Err(_) => Err(StoreError::Unavailable(format!("{what}: timed out"))),
        }
    }

    /// Like [`MongoStore::run`], but a server error whose code is in `tolerated` is `Ok(None)`:
    /// the codes stay typed, not written into a message and searched for again.
    pub(super) async fn run_tolerating<T>(
        &self,
        what: &str,
        tolerated: &[i32],
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<Option<T>, StoreError> {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(Ok(value)) => Ok(Some(value)),
            Ok(Err(e)) if error_code(&e).is_some_and(|c| tolerated.contains(&c)) => Ok(None),
            Ok(Err(e)) => Err(translate(what, &e)),
            Err(_) => Err(StoreError::Unavailable(format!("{what}: timed out"))),
        }
    }
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    async fn close(&self) {
        self.sign_off().await;
        self.client.clone().shutdown().await;
    }
}
