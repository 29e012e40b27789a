//! The audit log on MongoDB, without transactions.
//!
//! - **Chains.** An event is the document `_id: "<organization id>:<sequence>"` in
//!   `audit_events`: inserting sequence n+1 succeeds for exactly one writer (an insert-time
//!   unique `_id`, atomic on MongoDB and FerretDB alike), the others move on to n+2, so each chain
//!   is gapless under any number of writers on any number of instances. A unique index on
//!   `event_id` makes appending the same event twice a no-op. `audit_heads` holds a hint of each
//!   chain's last sequence (written with `$max`; a stale hint costs a few point reads forward).
//! - **With the change**: see `audit_outbox.rs`.
//! - **Pruning** records the last pruned event of a chain in `audit_anchors` before deleting up
//!   to it, so what remains verifies from there.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::FindOptions;
use mongodb::Collection;

use super::codec::bson_time;
use super::MongoStore;
use crate::domain::{AuditEvent, ChainAnchor, NewEvent, StoredEvent};
use crate::storage::{Audit, AuditQuery, StoreError};

pub(super) const AUDIT_EVENTS: &str = "audit_events";
const AUDIT_HEADS: &str = "audit_heads";
const AUDIT_ANCHORS: &str = "audit_anchors";

impl MongoStore {
    fn audit_events(&self) -> Collection<Document> {
        self.db.collection(AUDIT_EVENTS)
    }
    fn audit_heads(&self) -> Collection<Document> {
        self.db.collection(AUDIT_HEADS)
    }
    fn audit_anchors(&self) -> Collection<Document> {
        self.db.collection(AUDIT_ANCHORS)
    }

    /// The event at `sequence` of `org_id`'s chain (its hash), or the anchor's at or before it.
    pub(super) async fn hash_at(
        &self,
        org_id: &str,
        sequence: i64,
    ) -> Result<Option<String>, StoreError> {
        if sequence == 0 {
            return Ok(Some(crate::domain::GENESIS_HASH.into()));
        }
        let event = self
            .run(
                "read audit event",
                self.audit_events()
                    .find_one(doc! { "_id": format!("{org_id}:{sequence}") }),
            )
            .await?;
        if let Some(hash) = event.and_then(|d| d.get_str("hash").ok().map(str::to_owned)) {
            return Ok(Some(hash));
        }
        let anchor = self.anchor(org_id).await?;
        Ok((anchor.sequence == sequence).then_some(anchor.hash))
    }

    async fn anchor(&self, org_id: &str) -> Result<ChainAnchor, StoreError> {
        Ok(self
            .run(
                "read audit anchor",
                self.audit_anchors().find_one(doc! { "_id": org_id }),
            )
            .await?
            .and_then(|d| {
                Some(ChainAnchor {
                    sequence: d.get_i64("sequence").ok()?,
                    hash: d.get_str("hash").ok()?.to_owned(),
                })
            })
            .unwrap_or_default())
    }

    /// The last sequence of `org_id`'s chain: from the hint (or the anchor), then forward by
    /// point reads while a later event exists.
    async fn last_sequence(&self, org_id: &str) -> Result<i64, StoreError> {
        let hint = self
            .run(
                "read audit head",
                self.audit_heads().find_one(doc! { "_id": org_id }),
            )
            .await?
            .and_then(|d| d.get_i64("sequence").ok());
        // Never below the anchor: events up to it may be pruned.
        let mut sequence = hint.unwrap_or(0).max(self.anchor(org_id).await?.sequence);
        while self
            .run(
                "probe audit chain",
                self.audit_events()
                    .find_one(doc! { "_id": format!("{org_id}:{}", sequence + 1) }),
            )
            .await?
            .is_some()
        {
            sequence += 1;
        }
        Ok(sequence)
    }

    /// Appends `event` to its organization's chain, once (again: a no-op).
    pub(super) async fn append(&self, event: &NewEvent) -> Result<(), StoreError> {
        let org_id = &event.organization_id;
        loop {
            let last = self.last_sequence(org_id).await?;
            let Some(prev) = self.hash_at(org_id, last).await? else {
                // Pruned under us: read the head again.
                continue;
            };
            let chained = event.clone().chain(last + 1, &prev);
            let inserted = self
                .run(
                    "append audit event",
                    self.audit_events().insert_one(event_doc(event, &chained)),
                )
                .await;
            match inserted {
                Ok(_) => {
                    self.advance_head(org_id, chained.sequence).await?;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => {
                    let appended = self
                        .run(
                            "find audit event",
                            self.audit_events().find_one(doc! { "event_id": &event.id }),
                        )
                        .await?
                        .is_some();
                    if appended {
                        return Ok(());
                    }
                    // Another writer took that sequence: go on after it.
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends `batch` (events of one organization) in one ordered insert after the chain's
    /// current end. `Ok(false)` when another writer got in the way (some may be in).
    async fn append_batch(&self, batch: &[NewEvent]) -> Result<bool, StoreError> {
        let Some(first) = batch.first() else {
            return Ok(true);
        };
        let org_id = &first.organization_id;
        let mut sequence = self.last_sequence(org_id).await?;
        let Some(mut prev) = self.hash_at(org_id, sequence).await? else {
            return Ok(false);
        };
        let mut docs = Vec::with_capacity(batch.len());
        for event in batch {
            sequence += 1;
            let chained = event.clone().chain(sequence, &prev);
            docs.push(event_doc(event, &chained));
            prev = chained.hash;
        }
        match self
            .run_scan("append audit events", self.audit_events().insert_many(docs))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.advance_head(org_id, sequence).await?;
        Ok(true)
    }

    async fn advance_head(&self, org_id: &str, sequence: i64) -> Result<(), StoreError> {
        self.run(
            "advance audit head",
            self.audit_heads()
                .update_one(
                    doc! { "_id": org_id },
                    doc! { "$max": { "sequence": sequence } },
                )
                .upsert(true),
        )
        .await
        .map(drop)
        .or_else(|e| match e {
            // Two first appends upserting one hint: the other one's stands.
            StoreError::Conflict(_) => Ok(()),
            e => Err(e),
        })
    }

    async fn stored_events(
        &self,
        filter: Document,
        sort: i32,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let options = FindOptions::builder()
            .sort(doc! { "sequence": sort })
            .limit(i64::from(limit))
            .projection(doc! { "sequence": 1, "event": 1 })
            .build();
        let docs: Vec<Document> = self
            .run_scan("list audit events", async {
                self.audit_events()
                    .find(filter)
                    .with_options(options)
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        docs.iter()
            .map(|d| {
                Ok(StoredEvent {
                    sequence: d
                        .get_i64("sequence")
                        .map_err(|_| super::codec::field_err("sequence"))?,
                    json: d
                        .get_str("event")
                        .map_err(|_| super::codec::field_err("event"))?
                        .to_owned(),
                })
            })
            .collect()
    }
}

/// Events a bulk append inserts at once.
const BULK: usize = 1_000;

/// The stored form of `event` as the `chained.sequence`-th of its chain.
fn event_doc(event: &NewEvent, chained: &AuditEvent) -> Document {
    doc! {
        "_id": format!("{}:{}", event.organization_id, chained.sequence),
        "organization_id": &event.organization_id,
        "sequence": chained.sequence,
        "event_id": &event.id,
        "organization_slug": &event.organization_slug,
        "action": event.action.as_str(),
        "actor_id": &event.actor.id,
        "occurred_at": bson_time(event.occurred_at),
        "hash": &chained.hash,
        "event": &chained.json,
    }
}

fn time_range(filter: &mut Document, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) {
    let mut range = Document::new();
    if let Some(since) = since {
        range.insert("$gte", bson_time(since));
    }
    if let Some(until) = until {
        range.insert("$lt", bson_time(until));
    }
    if !range.is_empty() {
        filter.insert("occurred_at", range);
    }
}

#[async_trait]
impl Audit for MongoStore {
    async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        // Consecutive events of one organization are chained here and inserted a batch at a
        // time; a batch that meets another writer falls back to one append per event (each a
        // no-op if its event made it in).
        for run in events.chunk_by(|a, b| a.organization_id == b.organization_id) {
            for batch in run.chunks(BULK) {
                if !self.append_batch(batch).await? {
                    for event in batch {
                        self.append(event).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn list_events(
        &self,
        org_id: &str,
        query: &AuditQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut filter = doc! { "organization_id": org_id };
        if let Some(before) = query.before {
            filter.insert("sequence", doc! { "$lt": before });
        }
        if let Some(action) = query.action {
            filter.insert("action", action.as_str());
        }
        if let Some(actor) = &query.actor_id {
            filter.insert("actor_id", actor);
        }
        time_range(&mut filter, query.since, query.until);
        self.stored_events(filter, -1, query.limit).await
    }

    async fn events_after(
        &self,
        org_id: &str,
        after: i64,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut filter = doc! { "organization_id": org_id, "sequence": { "$gt": after } };
        time_range(&mut filter, since, until);
        self.stored_events(filter, 1, limit).await
    }

    async fn chain_anchor(&self, org_id: &str) -> Result<ChainAnchor, StoreError> {
        self.anchor(org_id).await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let old = doc! { "occurred_at": { "$lt": bson_time(before) } };
        let orgs = self
            .run(
                "find chains to prune",
                self.audit_events().distinct("organization_id", old.clone()),
            )
            .await?;
        let mut pruned = 0;
        for org in orgs.iter().filter_map(|o| o.as_str()) {
            let mut filter = old.clone();
            filter.insert("organization_id", org);
            let Some(end) = self.stored_events(filter, -1, 1).await?.into_iter().next() else {
                continue;
            };
            let Some(hash) = self.hash_at(org, end.sequence).await? else {
                continue;
            };
            // The anchor first: a crash before the delete leaves events the check skips.
            self.run(
                "record audit anchor",
                self.audit_anchors()
                    .update_one(
                        doc! { "_id": org },
                        doc! { "$set": { "sequence": end.sequence, "hash": hash } },
                    )
                    .upsert(true),
            )
            .await?;
            pruned += self
                .run_scan(
                    "prune audit events",
                    self.audit_events().delete_many(
                        doc! { "organization_id": org, "sequence": { "$lte": end.sequence } },
                    ),
                )
                .await?
                .deleted_count;
        }
        Ok(pruned)
    }

    async fn audited_organizations(&self) -> Result<Vec<(String, String)>, StoreError> {
        let orgs = self
            .run(
                "list audited organizations",
                self.audit_events().distinct("organization_id", doc! {}),
            )
            .await?;
        let mut found = Vec::new();
        for org in orgs.iter().filter_map(|o| o.as_str()) {
            let last = self.last_sequence(org).await?;
            let slug = self
                .run(
                    "read audit event",
                    self.audit_events()
                        .find_one(doc! { "_id": format!("{org}:{last}") }),
                )
                .await?
                .and_then(|d| d.get_str("organization_slug").ok().map(str::to_owned))
                .unwrap_or_default();
            found.push((org.to_owned(), slug));
        }
        found.sort();
        Ok(found)
    }
}
