//! The MongoDB store (production; tested against FerretDB).
//!
//! Neither a standalone `mongod` nor FerretDB has transactions, so each multi-step operation is
//! a sequence of idempotent steps whose order makes every intermediate state recognisable:
//!
//! - **Claims.** A unique value is taken by *inserting* a document into `reservations` whose
//!   `_id` is `slug:<slug>` or `email:<email>` (insert-time duplicate keys are reported as
//!   code 11000 by MongoDB and FerretDB alike; update-time ones are not on FerretDB). The unique
//!   indexes on `organizations.slug` and `admins.email` back the claims up.
//! - **States.** An organization document is `creating` until its admin and collection exist,
//!   then `active`; a delete first marks it `deleting`; a rename records `pending` (the target
//!   name) before moving the collection. Reads only ever see `active` organizations.
//! - **Reconciler.** [`Store::reconcile`] undoes `creating` organizations older than the grace
//!   period, finishes `deleting` ones and pending renames, and removes reservations, admins and
//!   tenant collections that nothing owns. It runs at start-up and periodically, on every
//!   instance; every step is idempotent, so instances racing on it agree.
//!
//! Every call is bounded by the store timeout and maps "cannot reach the server" to
//! [`StoreError::Unavailable`], which the API answers with 503.

use std::future::IntoFuture;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

mod clock;
mod idempotency;
mod lock;

use clock::ServerClock;

use super::{
    AttemptWindow, IdempotencyClaim, ReconcileReport, RefreshSpend, RefreshToken, Store,
    StoreError, Taken,
};
use crate::domain::{is_tenant_collection, Admin, NewOrganization, OrgName, Organization};
use crate::failpoint::Failpoints;

const ORGS: &str = "organizations";
const ADMINS: &str = "admins";
const RESERVATIONS: &str = "reservations";
const LOGIN_ATTEMPTS: &str = "login_attempts";
const LOGIN_WINDOWS: &str = "login_windows";
const REFRESH_TOKENS: &str = "refresh_tokens";

const DUPLICATE_KEY: i32 = 11000;
const NAMESPACE_NOT_FOUND: i32 = 26;
const NAMESPACE_EXISTS: i32 = 48;

const STATE_CREATING: &str = "creating";
const STATE_ACTIVE: &str = "active";
const STATE_DELETING: &str = "deleting";

/// MongoDB-backed [`Store`].
pub struct MongoStore {
    client: Client,
    db: Database,
    timeout: Duration,
    failpoints: Failpoints,
    /// The server's time: every time written or compared for the reconciler and locks.
    clock: ServerClock,
}

impl MongoStore {
    /// Builds a client for `url` (the driver connects lazily, at the first operation).
    pub async fn connect(
        url: &str,
        db_name: &str,
        timeout: Duration,
        failpoints: Failpoints,
        clock_skew: chrono::Duration,
    ) -> Result<Self, StoreError> {
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
        })
    }

    fn orgs(&self) -> Collection<Document> {
        self.db.collection(ORGS)
    }
    fn admins(&self) -> Collection<Document> {
        self.db.collection(ADMINS)
    }
    fn reservations(&self) -> Collection<Document> {
        self.db.collection(RESERVATIONS)
    }
    fn attempts(&self) -> Collection<Document> {
        self.db.collection(LOGIN_ATTEMPTS)
    }
    fn refresh(&self) -> Collection<Document> {
        self.db.collection(REFRESH_TOKENS)
    }
    fn windows(&self) -> Collection<Document> {
        self.db.collection(LOGIN_WINDOWS)
    }

    /// The start (seconds) of `key`'s current throttle window, starting a new one if needed.
    async fn current_window(&self, key: &str, now_s: i64, cutoff: i64) -> Result<i64, StoreError> {
        for _ in 0..5 {
            let current = self
                .run("find window", self.windows().find_one(doc! { "_id": key }))
                .await?;
            let start = current
                .as_ref()
                .and_then(|d| d.get_i64("window_start").ok());
            match start {
                Some(start) if start > cutoff => return Ok(start),
                Some(expired) => {
                    self.run(
                        "expire window",
                        self.windows()
                            .delete_one(doc! { "_id": key, "window_start": expired }),
                    )
                    .await?;
                }
                None => {}
            }
            match self
                .run(
                    "start window",
                    self.windows()
                        .insert_one(doc! { "_id": key, "window_start": now_s }),
                )
                .await
            {
                Ok(_) => return Ok(now_s),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "login throttle window is contended".into(),
        ))
    }

    /// Bumps the admin's token version (applying `set`, e.g. a new password hash) and deletes
    /// their refresh tokens: every earlier token of theirs stops working. Returns the new version.
    async fn end_sessions(&self, admin_id: &str, set: Document) -> Result<i64, StoreError> {
        let mut update = doc! { "$inc": { "token_version": 1_i64 } };
        if !set.is_empty() {
            update.insert("$set", set);
        }
        let admin = self
            .run(
                "end sessions",
                self.admins()
                    .find_one_and_update(doc! { "_id": admin_id }, update)
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        self.run(
            "revoke refresh tokens",
            self.refresh().delete_many(doc! { "admin_id": admin_id }),
        )
        .await?;
        Ok(admin_from_doc(&admin)?.token_version)
    }

    /// Bounds one driver call by the store timeout and translates its error.
    async fn run<T>(
        &self,
        what: &str,
        fut: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(translate(what, &e)),
            Err(_) => Err(StoreError::Unavailable(format!("{what}: timed out"))),
        }
    }

    /// Inserts a reservation; `Ok(false)` when the value is already reserved.
    async fn claim(&self, key: &str, org_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let res = self
            .run(
                "claim",
                self.reservations().insert_one(doc! {
                    "_id": key, "organization_id": org_id, "created_at": bson_time(now),
                }),
            )
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => {
                // Already ours (a retried step) counts as claimed.
                let owner = self
                    .run("claim", self.reservations().find_one(doc! { "_id": key }))
                    .await?;
                Ok(owner.is_some_and(|d| d.get_str("organization_id").ok() == Some(org_id)))
            }
            Err(e) => Err(e),
        }
    }

    async fn release(&self, key: &str, org_id: &str) -> Result<(), StoreError> {
        self.run(
            "release",
            self.reservations()
                .delete_one(doc! { "_id": key, "organization_id": org_id }),
        )
        .await
        .map(drop)
    }

    async fn create_collection(&self, name: &str) -> Result<(), StoreError> {
        match self
            .run("create collection", self.db.create_collection(name))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Backend(msg)) if msg.contains(&format!("code {NAMESPACE_EXISTS}")) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        if !is_tenant_collection(name) {
            return Err(StoreError::Backend(format!("refusing to drop {name:?}")));
        }
        match self
            .run(
                "drop collection",
                self.db.collection::<Document>(name).drop(),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Backend(msg))
                if msg.contains(&format!("code {NAMESPACE_NOT_FOUND}")) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `renameCollection`, idempotent: a source already gone with the target present is done.
    async fn rename_collection(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let db = self.db.name();
        let command = doc! {
            "renameCollection": format!("{db}.{from}"),
            "to": format!("{db}.{to}"),
        };
        let admin = self.client.database("admin");
        match self
            .run("rename collection", admin.run_command(command))
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Backend(msg))
                if msg.contains(&format!("code {NAMESPACE_NOT_FOUND}")) =>
            {
                if self.tenant_collections().await?.iter().any(|c| c == to) {
                    Ok(())
                } else {
                    // Neither exists: recreate the target so the organization has its collection.
                    self.create_collection(to).await
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn tenant_collections(&self) -> Result<Vec<String>, StoreError> {
        let names = self
            .run("list collections", self.db.list_collection_names())
            .await?;
        Ok(names
            .into_iter()
            .filter(|n| is_tenant_collection(n))
            .collect())
    }

    /// Removes every trace of an organization. Each step is idempotent.
    async fn purge(&self, org: &Document) -> Result<(), StoreError> {
        let id = org.get_str("_id").unwrap_or_default().to_owned();
        self.run(
            "delete refresh tokens",
            self.refresh().delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.run(
            "delete admins",
            self.admins().delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.failpoints.reached("delete.after_admin").await;
        for collection in owned_collections(org) {
            self.drop_collection(&collection).await?;
        }
        self.failpoints.reached("delete.after_collection").await;
        self.run(
            "delete reservations",
            self.reservations()
                .delete_many(doc! { "organization_id": &id }),
        )
        .await?;
        self.run(
            "delete organization",
            self.orgs().delete_one(doc! { "_id": &id }),
        )
        .await?;
        Ok(())
    }

    /// Records the outcome of the create of `org_id` unless one is recorded already; returns
    /// the outcome that stands. The record is an inserted reservation `outcome:<id>`, so of a
    /// creator committing and a reconciler aborting at once exactly one wins.
    ///
    /// Only the creator ever records `Commit` (organization ids are never reused), so a
    /// creator that finds a record already there has been aborted. A reconciler that finds one
    /// reads it: `commit` stands; an `abort` of another reconciler, or no record any more (a
    /// purge or a finished activation released it), is treated as abort, and the caller
    /// re-reads the organization's state before undoing anything.
    async fn decide(&self, org_id: &str, want: Outcome) -> Result<Outcome, StoreError> {
        let key = format!("outcome:{org_id}");
        let inserted = self
            .run(
                "decide create",
                self.reservations().insert_one(doc! {
                    "_id": &key, "organization_id": org_id, "outcome": want.as_str(),
                    "created_at": bson_time(self.clock.now()),
                }),
            )
            .await;
        match (inserted, want) {
            (Ok(_), _) => Ok(want),
            (Err(StoreError::Conflict(_)), Outcome::Commit) => Ok(Outcome::Abort),
            (Err(StoreError::Conflict(_)), Outcome::Abort) => {
                let recorded = self
                    .run(
                        "read outcome",
                        self.reservations().find_one(doc! { "_id": &key }),
                    )
                    .await?;
                Ok(
                    match recorded.as_ref().and_then(|d| d.get_str("outcome").ok()) {
                        Some("commit") => Outcome::Commit,
                        _ => Outcome::Abort,
                    },
                )
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Gives organizations made before look-alike names were refused their skeleton and its
    /// claim. Two existing look-alikes both keep working: the one that loses the claim is
    /// left without a skeleton (and logged), so only new names are held to the rule.
    async fn add_skeletons(&self) -> Result<(), StoreError> {
        let legacy: Vec<Document> = self
            .run("find", async {
                self.orgs()
                    .find(doc! { "state": STATE_ACTIVE, "skeleton": { "$exists": false } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for org in legacy {
            let id = org.get_str("_id").unwrap_or_default();
            let skeleton = crate::domain::skeleton_of(org.get_str("slug").unwrap_or_default());
            if self
                .claim(&format!("skeleton:{skeleton}"), id, self.clock.now())
                .await?
            {
                self.run(
                    "set skeleton",
                    self.orgs().update_one(
                        doc! { "_id": id },
                        doc! { "$set": { "skeleton": &skeleton } },
                    ),
                )
                .await?;
            } else {
                tracing::warn!(organization_id = %id, "an older organization's name looks like this one's");
            }
        }
        Ok(())
    }

    /// Makes a committed create visible, then drops its outcome record (idempotent).
    async fn activate(&self, org_id: &str) -> Result<(), StoreError> {
        self.run(
            "activate organization",
            self.orgs().update_one(
                doc! { "_id": org_id, "state": STATE_CREATING },
                doc! { "$set": { "state": STATE_ACTIVE, "since": bson_time(self.clock.now()) } },
            ),
        )
        .await?;
        self.release(&format!("outcome:{org_id}"), org_id).await
    }

    /// Drops the collection of a half-created organization only if its slug is still ours.
    async fn undo_create(&self, org: &Document) -> Result<(), StoreError> {
        let id = org.get_str("_id").unwrap_or_default();
        let slug = org.get_str("slug").unwrap_or_default();
        let ours = self
            .run(
                "find reservation",
                self.reservations()
                    .find_one(doc! { "_id": format!("slug:{slug}"), "organization_id": id }),
            )
            .await?
            .is_some();
        if !ours {
            // Someone else holds the slug: leave their collection alone.
            let mut org = org.clone();
            org.remove("collection_name");
            return self.purge(&org).await;
        }
        self.purge(org).await
    }

    /// Moves a marked rename forward to completion. Idempotent.
    async fn finish_rename(&self, org: &Document) -> Result<Option<Document>, StoreError> {
        let id = org.get_str("_id").unwrap_or_default().to_owned();
        let Ok(pending) = org.get_document("pending") else {
            return Ok(Some(org.clone()));
        };
        let old_slug = org.get_str("slug").unwrap_or_default().to_owned();
        let old_skeleton = org.get_str("skeleton").ok().map(str::to_owned);
        let new_skeleton = pending.get_str("skeleton").ok().map(str::to_owned);
        let from = org
            .get_str("collection_name")
            .unwrap_or_default()
            .to_owned();
        let to = pending
            .get_str("collection_name")
            .unwrap_or_default()
            .to_owned();
        if from != to {
            self.rename_collection(&from, &to).await?;
        }
        self.failpoints.reached("rename.after_collection").await;
        let updated = self
            .run(
                "finish rename",
                self.orgs()
                    .find_one_and_update(
                        doc! { "_id": &id, "state": STATE_ACTIVE, "pending": { "$exists": true } },
                        doc! {
                            "$set": {
                                "name": pending.get_str("name").unwrap_or_default(),
                                "slug": pending.get_str("slug").unwrap_or_default(),
                                "skeleton": new_skeleton.as_deref().map_or(Bson::Null, |s| Bson::String(s.to_owned())),
                                "collection_name": &to,
                                "updated_at": pending.get("updated_at").or_else(|| pending.get("at")).cloned().unwrap_or(Bson::Null),
                            },
                            "$unset": { "pending": "" },
                        },
                    )
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?;
        self.failpoints.reached("rename.after_update").await;
        if pending.get_str("slug").unwrap_or_default() != old_slug {
            self.release(&format!("slug:{old_slug}"), &id).await?;
        }
        if let Some(old) = old_skeleton.filter(|old| Some(old) != new_skeleton.as_ref()) {
            self.release(&format!("skeleton:{old}"), &id).await?;
        }
        Ok(updated)
    }

    async fn rename_locked(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        let current = self
            .run(
                "find organization",
                self.orgs()
                    .find_one(doc! { "_id": id, "state": STATE_ACTIVE }),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.get_document("pending").is_ok() {
            // An earlier rename of this organization was interrupted: finish it first.
            self.finish_rename(&current).await?;
            return Box::pin(self.rename_locked(id, new_name, at)).await;
        }
        let old = org_from_doc(&current)?;

        if old.slug == new_name.slug() {
            let updated = self
                .run(
                    "rename organization",
                    self.orgs().find_one_and_update(
                        doc! { "_id": id, "state": STATE_ACTIVE },
                        doc! { "$set": { "name": new_name.as_str(), "updated_at": bson_time(at) } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After),
                )
                .await?
                .ok_or(StoreError::NotFound)?;
            return org_from_doc(&updated);
        }

        let now = self.clock.now();
        let new_key = format!("slug:{}", new_name.slug());
        if !self.claim(&new_key, id, now).await? {
            return Err(StoreError::Conflict(Taken::Name));
        }
        // A look-alike of another organization's name is taken too (a look-alike of our own
        // current name is fine: the claim is already ours).
        let skeleton_key = format!("skeleton:{}", new_name.skeleton());
        match self.claim(&skeleton_key, id, now).await {
            Ok(true) => {}
            other => {
                let _ = self.release(&new_key, id).await;
                return Err(other.err().unwrap_or(StoreError::Conflict(Taken::Name)));
            }
        }
        let mut new_keys = vec![new_key];
        if current.get_str("skeleton") != Ok(new_name.skeleton()) {
            new_keys.push(skeleton_key);
        }
        let release_new = || async {
            for key in &new_keys {
                let _ = self.release(key, id).await;
            }
        };
        self.failpoints.reached("rename.after_claim").await;
        let marked = self
            .run(
                "mark rename",
                self.orgs()
                    .find_one_and_update(
                        doc! { "_id": id, "state": STATE_ACTIVE, "pending": { "$exists": false } },
                        doc! { "$set": { "pending": {
                            "name": new_name.as_str(),
                            "slug": new_name.slug(),
                            "skeleton": new_name.skeleton(),
                            "collection_name": new_name.collection_name(),
                            "at": bson_time(self.clock.now()),
                            "updated_at": bson_time(at),
                        } } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await;
        let marked = match marked {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                release_new().await;
                return Err(StoreError::NotFound);
            }
            Err(e) => {
                release_new().await;
                return Err(e);
            }
        };
        self.failpoints.reached("rename.after_mark").await;
        let updated = self
            .finish_rename(&marked)
            .await?
            .ok_or(StoreError::NotFound)?;
        org_from_doc(&updated)
    }

    async fn delete_locked(&self, id: &str) -> Result<bool, StoreError> {
        let marked = self
            .run(
                "mark delete",
                self.orgs().find_one_and_update(
                    doc! { "_id": id, "state": { "$in": [STATE_ACTIVE, STATE_DELETING] } },
                    doc! { "$set": { "state": STATE_DELETING, "since": bson_time(self.clock.now()) } },
                )
                .return_document(mongodb::options::ReturnDocument::Before),
            )
            .await?;
        let Some(org) = marked else {
            return Ok(false);
        };
        self.failpoints.reached("delete.after_mark").await;
        self.purge(&org).await?;
        // Only the request that turned it from active to deleting deleted it; one that found a
        // delete already under way (the first one's purge frees the lock with the
        // organization's other reservations) finished it, but the answer is the first one's.
        Ok(org.get_str("state") == Ok(STATE_ACTIVE))
    }

    async fn active_org(&self, filter: Document) -> Result<Option<Organization>, StoreError> {
        let mut filter = filter;
        filter.insert("state", STATE_ACTIVE);
        self.run("find organization", self.orgs().find_one(filter))
            .await?
            .map(|d| org_from_doc(&d))
            .transpose()
    }

    async fn admin_of_active_org(&self, filter: Document) -> Result<Option<Admin>, StoreError> {
        let Some(doc) = self
            .run("find admin", self.admins().find_one(filter))
            .await?
        else {
            return Ok(None);
        };
        let admin = admin_from_doc(&doc)?;
        let active = self
            .run(
                "find organization",
                self.orgs()
                    .find_one(doc! { "_id": &admin.organization_id, "state": STATE_ACTIVE }),
            )
            .await?
            .is_some();
        Ok(active.then_some(admin))
    }
}

/// How an interrupted create ends: made visible, or undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Commit,
    Abort,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Abort => "abort",
        }
    }
}

/// The tenant collections an organization document refers to (current and pending).
fn owned_collections(org: &Document) -> Vec<String> {
    let mut names: Vec<String> = org
        .get_str("collection_name")
        .ok()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Ok(pending) = org.get_document("pending") {
        if let Ok(to) = pending.get_str("collection_name") {
            if !names.iter().any(|n| n == to) {
                names.push(to.to_owned());
            }
        }
    }
    names
}

fn bson_time(at: DateTime<Utc>) -> BsonDateTime {
    BsonDateTime::from_millis(at.timestamp_millis())
}

fn chrono_time(at: BsonDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or_default()
}

fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|errs| errs.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// Driver error → domain error. Duplicate keys become a conflict (the caller knows which
/// value it was claiming and re-labels it); unreachable servers become `Unavailable`.
fn translate(what: &str, e: &mongodb::error::Error) -> StoreError {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => {
            return StoreError::Unavailable(format!("{what}: {e}"));
        }
        _ => {}
    }
    // FerretDB's SQLite backend reports a write that waited out its lock as an internal error;
    // it is transient, like an unreachable server.
    let text = e.to_string();
    if text.contains("SQLITE_BUSY") || text.contains("database is locked") {
        return StoreError::Unavailable(format!("{what}: store busy"));
    }
    match error_code(e) {
        Some(DUPLICATE_KEY) => StoreError::Conflict(Taken::Name),
        Some(code) => StoreError::Backend(format!("{what}: code {code}: {e}")),
        None => StoreError::Backend(format!("{what}: {e}")),
    }
}

fn field_err(field: &str) -> StoreError {
    StoreError::Backend(format!("stored document lacks a valid {field:?}"))
}

fn org_from_doc(d: &Document) -> Result<Organization, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    Ok(Organization {
        id: s("_id")?,
        name: s("name")?,
        slug: s("slug")?,
        collection_name: s("collection_name")?,
        admin_email: s("admin_email")?,
        created_at: d
            .get_datetime("created_at")
            .map(|t| chrono_time(*t))
            .map_err(|_| field_err("created_at"))?,
        updated_at: d.get_datetime("updated_at").ok().map(|t| chrono_time(*t)),
    })
}

fn admin_from_doc(d: &Document) -> Result<Admin, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| field_err(k));
    Ok(Admin {
        id: s("_id")?,
        email: s("email")?,
        password_hash: s("password_hash")?,
        organization_id: s("organization_id")?,
        token_version: d
            .get_i64("token_version")
            .or_else(|_| d.get_i32("token_version").map(i64::from))
            .unwrap_or(0),
    })
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.run("read server clock", self.clock.sync(&self.db))
            .await?;
        self.add_skeletons().await?;
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        // One index per command: FerretDB 1.24 drops the connection when a multi-index
        // createIndexes names indexes that already exist (every start-up after the first).
        let indexes = [
            (ORGS, unique(doc! { "slug": 1 }, "slug_unique")),
            (ORGS, plain(doc! { "state": 1 }, "state")),
            (ADMINS, unique(doc! { "email": 1 }, "email_unique")),
            (
                ADMINS,
                plain(doc! { "organization_id": 1 }, "organization_id"),
            ),
            (
                RESERVATIONS,
                plain(doc! { "organization_id": 1 }, "organization_id"),
            ),
            (
                LOGIN_ATTEMPTS,
                plain(doc! { "key": 1, "window_start": 1 }, "key_window"),
            ),
        ];
        for (collection, index) in indexes {
            self.run(
                "create index",
                self.db
                    .collection::<Document>(collection)
                    .create_index(index),
            )
            .await?;
        }
        Ok(())
    }

    async fn close(&self) {
        self.client.clone().shutdown().await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read of the data itself, not just a `ping` command the server answers from memory.
        self.run("health read", self.orgs().find_one(doc! {}))
            .await
            .map(drop)
    }

    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization, StoreError> {
        let org = new.organization();
        let slug_key = format!("slug:{}", org.slug);
        let skeleton_key = format!("skeleton:{}", new.name.skeleton());
        let email_key = format!("email:{}", org.admin_email);

        let now = self.clock.now();
        if !self.claim(&slug_key, &org.id, now).await? {
            return Err(StoreError::Conflict(Taken::Name));
        }
        self.failpoints.reached("create.after_claim").await;
        for (key, taken) in [(&skeleton_key, Taken::Name), (&email_key, Taken::Email)] {
            let claimed = self.claim(key, &org.id, now).await;
            if !matches!(claimed, Ok(true)) {
                for held in [&slug_key, &skeleton_key] {
                    if held != key {
                        let _ = self.release(held, &org.id).await;
                    }
                }
                return Err(claimed.err().unwrap_or(StoreError::Conflict(taken)));
            }
        }

        let org_doc = doc! {
            "_id": &org.id,
            "name": &org.name,
            "slug": &org.slug,
            "skeleton": new.name.skeleton(),
            "collection_name": &org.collection_name,
            "admin_email": &org.admin_email,
            "created_at": bson_time(org.created_at),
            "updated_at": Bson::Null,
            "state": STATE_CREATING,
            "since": bson_time(now),
        };
        let steps = async {
            self.run("insert organization", self.orgs().insert_one(&org_doc))
                .await?;
            self.failpoints.reached("create.after_organization").await;
            self.run(
                "insert admin",
                self.admins().insert_one(doc! {
                    "_id": &new.admin_id,
                    "email": &org.admin_email,
                    "password_hash": &new.password_hash,
                    "organization_id": &org.id,
                    "token_version": 0_i64,
                    "created_at": bson_time(self.clock.now()),
                }),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(Taken::Email),
                other => other,
            })?;
            self.failpoints.reached("create.after_admin").await;
            self.create_collection(&org.collection_name).await?;
            self.failpoints.reached("create.after_collection").await;
            // The reconciler may have judged this create abandoned meanwhile (a long store
            // pause): whoever inserts the outcome first decides, commit or abort.
            match self.decide(&org.id, Outcome::Commit).await? {
                Outcome::Commit => {}
                Outcome::Abort => {
                    return Err(StoreError::Unavailable(
                        "the create was interrupted and undone; retry it".into(),
                    ))
                }
            }
            Ok::<_, StoreError>(())
        };
        if let Err(e) = steps.await {
            // Undo now if we can; if the store is unreachable the reconciler does it later.
            if let Err(undo) = self.undo_create(&org_doc).await {
                tracing::warn!(error = %undo, organization_id = %org.id, "undo of failed create deferred to the reconciler");
            }
            return Err(e);
        }
        // Committed: from here the create only goes forward (the reconciler finishes it if
        // this process cannot).
        self.failpoints.reached("create.after_commit").await;
        self.activate(&org.id).await?;
        Ok(org)
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        self.active_org(doc! { "slug": slug }).await
    }

    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        self.active_org(doc! { "_id": id }).await
    }

    async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>, StoreError> {
        self.admin_of_active_org(doc! { "email": email }).await
    }

    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError> {
        self.admin_of_active_org(doc! { "_id": id }).await
    }

    async fn rename_organization(
        &self,
        id: &str,
        new_name: &OrgName,
        at: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        let lock = self.lock(id).await?;
        let result = self.rename_locked(id, new_name, at).await;
        lock.release().await;
        result
    }

    async fn delete_organization(&self, id: &str) -> Result<bool, StoreError> {
        let lock = self.lock(id).await?;
        let result = self.delete_locked(id).await;
        // A completed delete already removed the lock with the organization's reservations.
        lock.release().await;
        result
    }

    async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        self.run("read server clock", self.clock.sync(&self.db))
            .await?;
        let now = self.clock.now();
        let cutoff = bson_time(now - chrono::Duration::from_std(grace).unwrap_or_default());

        // 1. Deletes are finished whatever their age: the organization is already invisible.
        let deleting: Vec<Document> = self
            .run("find", async {
                self.orgs()
                    .find(doc! { "state": STATE_DELETING })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for org in deleting {
            self.purge(&org).await?;
            report.repaired.push(format!(
                "finished delete of {}",
                org.get_str("_id").unwrap_or("?")
            ));
        }

        // 2. Creates abandoned mid-way are undone.
        let creating: Vec<Document> = self
            .run("find", async {
                self.orgs()
                    .find(doc! { "state": STATE_CREATING, "since": { "$lt": cutoff } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for org in creating {
            let id = org.get_str("_id").unwrap_or_default().to_owned();
            match self.decide(&id, Outcome::Abort).await? {
                Outcome::Commit => {
                    // The creator committed (and maybe crashed before activating): roll forward.
                    self.activate(&id).await?;
                    report.repaired.push(format!("finished create of {id}"));
                }
                Outcome::Abort => {
                    let still_creating = self
                        .run(
                            "find organization",
                            self.orgs()
                                .find_one(doc! { "_id": &id, "state": STATE_CREATING }),
                        )
                        .await?
                        .is_some();
                    if still_creating {
                        self.undo_create(&org).await?;
                        report.repaired.push(format!("undid create of {id}"));
                    } else {
                        // Activated before the abort was recorded (its commit record was
                        // already released): the abort record is void.
                        self.release(&format!("outcome:{id}"), &id).await?;
                    }
                }
            }
        }

        // 3. Renames abandoned after being marked are rolled forward.
        let renaming: Vec<Document> = self
            .run("find", async {
                self.orgs()
                    .find(doc! { "state": STATE_ACTIVE, "pending.at": { "$lt": cutoff } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for org in renaming {
            self.finish_rename(&org).await?;
            report.repaired.push(format!(
                "finished rename of {}",
                org.get_str("_id").unwrap_or("?")
            ));
        }

        // 4. Reservations nothing refers to (a crash between claim and use) are released.
        let orgs: Vec<Document> = self
            .run("find", async {
                self.orgs().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let stale: Vec<Document> = self
            .run("find", async {
                self.reservations()
                    .find(doc! { "created_at": { "$lt": cutoff } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        for res in stale {
            let key = res.get_str("_id").unwrap_or_default();
            let owner = res.get_str("organization_id").unwrap_or_default();
            let used = orgs.iter().any(|o| {
                o.get_str("_id").ok() == Some(owner) && reservation_keys(o).iter().any(|k| k == key)
            });
            if !used {
                self.release(key, owner).await?;
                report.repaired.push(format!("released reservation {key}"));
            }
        }

        // 5. Admins without an organization, and tenant collections nothing owns or claims.
        let org_ids: Vec<&str> = orgs.iter().filter_map(|o| o.get_str("_id").ok()).collect();
        let orphans = self
            .run(
                "delete orphan admins",
                self.admins().delete_many(doc! {
                    "organization_id": { "$nin": &org_ids }, "created_at": { "$lt": cutoff },
                }),
            )
            .await?;
        if orphans.deleted_count > 0 {
            report
                .repaired
                .push(format!("deleted {} orphan admins", orphans.deleted_count));
        }
        let claimed: Vec<String> = self
            .run("find", async {
                self.reservations()
                    .find(doc! { "_id": { "$regex": "^slug:" } })
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?
            .iter()
            .filter_map(|r| {
                r.get_str("_id")
                    .ok()
                    .map(|k| format!("org_{}", &k["slug:".len()..]))
            })
            .collect();
        for collection in self.tenant_collections().await? {
            let owned = orgs
                .iter()
                .any(|o| owned_collections(o).contains(&collection));
            if !owned && !claimed.contains(&collection) {
                self.drop_collection(&collection).await?;
                report
                    .repaired
                    .push(format!("dropped orphan collection {collection}"));
            }
        }

        // Refresh tokens that expired, or whose admin is gone.
        self.run(
            "expire refresh tokens",
            self.refresh().delete_many(doc! { "$or": [
                { "expires_at": { "$lt": bson_time(now) } },
                { "organization_id": { "$exists": true, "$nin": &org_ids } },
            ] }),
        )
        .await?;

        self.expire_idempotent().await?;

        // 6. Throttle windows long over (no window is longer than a day).
        let old = now.timestamp() - super::MAX_LOGIN_WINDOW_SECONDS;
        self.run(
            "expire login attempts",
            self.attempts()
                .delete_many(doc! { "window_start": { "$lt": old } }),
        )
        .await?;
        self.run(
            "expire login windows",
            self.windows()
                .delete_many(doc! { "window_start": { "$lt": old } }),
        )
        .await?;
        Ok(report)
    }

    async fn consistency_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let orgs: Vec<Document> = self
            .run("find", async {
                self.orgs().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let admins: Vec<Document> = self
            .run("find", async {
                self.admins().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let reservations: Vec<Document> = self
            .run("find", async {
                self.reservations().find(doc! {}).await?.try_collect().await
            })
            .await?;
        let collections = self.tenant_collections().await?;
        for org in &orgs {
            let id = org.get_str("_id").unwrap_or("?");
            let state = org.get_str("state").unwrap_or("?");
            if state != STATE_ACTIVE || org.get_document("pending").is_ok() {
                problems.push(format!("organization {id} is unfinished ({state})"));
            }
            let n = admins
                .iter()
                .filter(|a| a.get_str("organization_id").ok() == Some(id))
                .count();
            if n != 1 {
                problems.push(format!("organization {id} has {n} admins"));
            }
            let collection = org.get_str("collection_name").unwrap_or("?");
            if !collections.iter().any(|c| c == collection) {
                problems.push(format!("organization {id} has no collection {collection}"));
            }
            for key in reservation_keys(org) {
                if !reservations.iter().any(|r| {
                    r.get_str("_id").ok() == Some(key.as_str())
                        && r.get_str("organization_id").ok() == Some(id)
                }) {
                    problems.push(format!("organization {id} lacks reservation {key}"));
                }
            }
        }
        for admin in &admins {
            let org_id = admin.get_str("organization_id").unwrap_or("?");
            if !orgs.iter().any(|o| o.get_str("_id").ok() == Some(org_id)) {
                problems.push(format!(
                    "orphan admin {}",
                    admin.get_str("_id").unwrap_or("?")
                ));
            }
        }
        for res in &reservations {
            let key = res.get_str("_id").unwrap_or("?");
            let owner = res.get_str("organization_id").unwrap_or("?");
            let used = orgs.iter().any(|o| {
                o.get_str("_id").ok() == Some(owner) && reservation_keys(o).iter().any(|k| k == key)
            });
            if !used {
                problems.push(format!("orphan reservation {key}"));
            }
        }
        for collection in &collections {
            if !orgs
                .iter()
                .any(|o| owned_collections(o).contains(collection))
            {
                problems.push(format!("orphan collection {collection}"));
            }
        }
        Ok(problems)
    }

    async fn count_organizations(&self) -> Result<u64, StoreError> {
        self.run(
            "count organizations",
            self.orgs().count_documents(doc! { "state": STATE_ACTIVE }),
        )
        .await
    }

    async fn insert_tenant_documents(
        &self,
        org: &Organization,
        documents: Vec<serde_json::Value>,
    ) -> Result<u64, StoreError> {
        let docs = documents
            .into_iter()
            .map(|v| match mongodb::bson::to_bson(&v) {
                Ok(Bson::Document(d)) => Ok(d),
                Ok(other) => Ok(doc! { "value": other }),
                Err(e) => Err(StoreError::Backend(format!("document: {e}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut inserted = 0;
        let collection = self.db.collection::<Document>(&org.collection_name);
        for chunk in docs.chunks(10_000) {
            let result =
                tokio::time::timeout(self.timeout * 10, collection.insert_many(chunk.to_vec()))
                    .await
                    .map_err(|_| StoreError::Unavailable("insert documents: timed out".into()))?
                    .map_err(|e| translate("insert documents", &e))?;
            inserted += result.inserted_ids.len() as u64;
        }
        Ok(inserted)
    }

    async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError> {
        // A full count scans the tenant (FerretDB has no metadata count): like a bulk insert it
        // gets ten store timeouts, not one.
        let collection = self.db.collection::<Document>(&org.collection_name);
        tokio::time::timeout(
            self.timeout * 10,
            collection.count_documents(doc! {}).into_future(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("count documents: timed out".into()))?
        .map_err(|e| translate("count documents", &e))
    }

    async fn register_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<AttemptWindow, StoreError> {
        // FerretDB applies `$inc` as read-modify-write, so concurrent increments get lost.
        // Inserts into a unique `_id` are atomic everywhere, so each attempt claims a numbered
        // slot document `<key>|<window start>|<n>`, n = 1..=limit; when every slot of the window
        // is taken the attempt is over the limit. The window itself is a document claimed the
        // same way, replaced once it has expired.
        let now_s = now.timestamp();
        let cutoff = now_s - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let start = self.current_window(key, now_s, cutoff).await?;
        let taken = self
            .run(
                "count attempts",
                self.attempts()
                    .count_documents(doc! { "key": key, "window_start": start }),
            )
            .await?;
        let first_free = u32::try_from(taken).unwrap_or(u32::MAX).saturating_add(1);
        for n in first_free..=limit {
            let slot =
                doc! { "_id": format!("{key}|{start}|{n}"), "key": key, "window_start": start };
            match self
                .run("count attempt", self.attempts().insert_one(slot))
                .await
            {
                Ok(_) => {
                    return Ok(AttemptWindow {
                        attempts: n,
                        window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
                    })
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(AttemptWindow {
            attempts: limit.saturating_add(1),
            window_start: DateTime::from_timestamp(start, 0).unwrap_or(now),
        })
    }

    async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.run(
            "clear attempts",
            self.attempts().delete_many(doc! { "key": key }),
        )
        .await?;
        self.run(
            "clear window",
            self.windows().delete_one(doc! { "_id": key }),
        )
        .await
        .map(drop)
    }

    async fn change_password(
        &self,
        admin_id: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        self.end_sessions(admin_id, doc! { "password_hash": password_hash })
            .await
    }

    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .run(
                "upgrade password hash",
                self.admins().update_one(
                    doc! { "_id": admin_id, "password_hash": old_hash },
                    doc! { "$set": { "password_hash": new_hash } },
                ),
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    async fn revoke_sessions(&self, admin_id: &str) -> Result<i64, StoreError> {
        self.end_sessions(admin_id, doc! {}).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let organization_id = self
            .run(
                "find admin",
                self.admins().find_one(doc! { "_id": &token.admin_id }),
            )
            .await?
            .and_then(|a| a.get_str("organization_id").ok().map(str::to_owned))
            .ok_or(StoreError::NotFound)?;
        self.run(
            "insert refresh token",
            self.refresh().insert_one(doc! {
                "_id": &token.hash,
                "admin_id": &token.admin_id,
                "organization_id": organization_id,
                "family_id": &token.family_id,
                "token_version": token.token_version,
                "expires_at": bson_time(token.expires_at),
                "issued_at": bson_time(Utc::now()),
            }),
        )
        .await?;
        // Joining a chain that was revoked meanwhile is undone: revocation inserts its marker
        // before deleting the chain's tokens, so either we see the marker here or the
        // revocation's delete sees our token.
        let revoked = self
            .run(
                "check family",
                self.refresh()
                    .find_one(doc! { "_id": format!("family:{}", token.family_id) }),
            )
            .await?
            .is_some();
        if revoked {
            self.run(
                "undo refresh token",
                self.refresh().delete_one(doc! { "_id": &token.hash }),
            )
            .await?;
            return Err(StoreError::NotFound);
        }
        // Confirmed: from here the token is handed out, and a use of its predecessor counts
        // as a replay after the win (see `spend_refresh_token`). Before this, a concurrent use
        // of the predecessor only lost the race; were it to revoke the chain, it would make the
        // winner fail too, and nobody would win.
        self.run(
            "confirm refresh token",
            self.refresh().update_one(
                doc! { "_id": &token.hash },
                doc! { "$set": { "confirmed": true } },
            ),
        )
        .await?;
        Ok(())
    }

    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError> {
        let Some(found) = self
            .run(
                "find refresh token",
                self.refresh().find_one(doc! { "_id": hash }),
            )
            .await?
        else {
            return Ok(RefreshSpend::Invalid);
        };
        let token = RefreshToken {
            hash: hash.to_owned(),
            admin_id: found
                .get_str("admin_id")
                .map_err(|_| field_err("admin_id"))?
                .to_owned(),
            family_id: found
                .get_str("family_id")
                .map_err(|_| field_err("family_id"))?
                .to_owned(),
            token_version: found.get_i64("token_version").unwrap_or(-1),
            expires_at: found
                .get_datetime("expires_at")
                .map(|t| chrono_time(*t))
                .map_err(|_| field_err("expires_at"))?,
        };
        // Spending is an insert of a marker with a unique _id: of concurrent spends exactly one
        // succeeds (FerretDB's findAndModify is not atomic, inserts are).
        let marker = doc! {
            "_id": format!("{hash}:spent"),
            "admin_id": &token.admin_id,
            "organization_id": found.get_str("organization_id").unwrap_or_default(),
            "family_id": &token.family_id,
            "expires_at": bson_time(token.expires_at),
            "spent": true,
        };
        match self
            .run("spend refresh token", self.refresh().insert_one(marker))
            .await
        {
            Ok(_) if token.expires_at <= now => Ok(RefreshSpend::Invalid),
            Ok(_) => Ok(RefreshSpend::Fresh(token)),
            Err(StoreError::Conflict(_)) => {
                // A confirmed token of the family issued after this one is the successor of the
                // won spend: this is a replay after the win. None yet: the winner is still being
                // answered, and this use simply lost the race.
                let issued = found
                    .get_datetime("issued_at")
                    .copied()
                    .unwrap_or(BsonDateTime::MIN);
                let successor = self
                    .run(
                        "find successor",
                        self.refresh().find_one(doc! {
                            "family_id": &token.family_id, "issued_at": { "$gt": issued },
                            "confirmed": true,
                        }),
                    )
                    .await?
                    .is_some();
                Ok(if successor {
                    RefreshSpend::Reused(token)
                } else {
                    RefreshSpend::Contended
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn begin_idempotent(
        &self,
        scope: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.claim_idempotent(scope, fingerprint, running_ttl).await
    }

    async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.seal_idempotent(scope, sealed).await
    }

    async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError> {
        self.drop_idempotent(scope).await
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), StoreError> {
        let marker = doc! {
            "_id": format!("family:{family_id}"),
            "family_id": family_id,
            "revoked": true,
            "expires_at": bson_time(Utc::now() + chrono::Duration::days(90)),
        };
        match self
            .run("revoke family", self.refresh().insert_one(marker))
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // Live tokens go; spent markers stay until they expire, so a late replay of a spent
        // token is still recognised as a reuse.
        self.run(
            "revoke family",
            self.refresh().delete_many(doc! {
                "family_id": family_id, "spent": { "$exists": false }, "revoked": { "$exists": false },
            }),
        )
        .await
        .map(drop)
    }
}

/// The reservation keys an organization document legitimately holds.
fn reservation_keys(org: &Document) -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(slug) = org.get_str("slug") {
        keys.push(format!("slug:{slug}"));
    }
    if let Ok(skeleton) = org.get_str("skeleton") {
        keys.push(format!("skeleton:{skeleton}"));
    }
    if let Ok(skeleton) = org
        .get_document("pending")
        .and_then(|p| p.get_str("skeleton"))
    {
        keys.push(format!("skeleton:{skeleton}"));
    }
    if let Ok(email) = org.get_str("admin_email") {
        keys.push(format!("email:{email}"));
    }
    if let Ok(slug) = org.get_document("pending").and_then(|p| p.get_str("slug")) {
        keys.push(format!("slug:{slug}"));
    }
    if org.get_str("state") == Ok(STATE_CREATING) {
        if let Ok(id) = org.get_str("_id") {
            keys.push(format!("outcome:{id}"));
        }
    }
    keys
}
