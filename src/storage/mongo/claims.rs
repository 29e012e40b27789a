//! Reservations: unique values (slug, skeleton) and create outcomes, each taken by
//! inserting a document with that `_id` into `reservations`. Inserts into a unique `_id` are
//! atomic on MongoDB and FerretDB alike, which update-time uniqueness is not on FerretDB.

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Document};

use super::codec::bson_time;
use super::{MongoStore, STATE_CREATING};
use crate::storage::StoreError;

/// Prefix of a deleted organization's tombstone, `deleted:<id>`: it carries the id as `tenant`,
/// not `organization_id`, so the organization's purge does not take it with its reservations.
pub(super) const DELETED_PREFIX: &str = "deleted:";

impl MongoStore {
    /// Inserts a reservation; `Ok(false)` when the value is already reserved.
    pub(super) async fn claim(
        &self,
        key: &str,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
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

    pub(super) async fn release(&self, key: &str, org_id: &str) -> Result<(), StoreError> {
        self.delete_if(
            "release",
            &self.reservations(),
            doc! { "_id": key, "organization_id": org_id },
        )
        .await
        .map(drop)
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
    pub(super) async fn decide(&self, org_id: &str, want: Outcome) -> Result<Outcome, StoreError> {
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
}

/// How an interrupted create ends: made visible, or undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The create is made visible.
    Commit,
    /// The create is undone.
    Abort,
}

impl Outcome {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Abort => "abort",
        }
    }
}

/// The reservation keys an organization document legitimately holds.
pub(super) fn reservation_keys(org: &Document) -> Vec<String> {
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
