//! Deletes of one document by `_id` on a condition: "this claim, lock or record, only if it is
//! still the one we mean" (a holder, an owner, a nonce).
//!
//! MongoDB runs `delete_one({_id, …})` atomically, from the `_id` index. FerretDB 1.24 serves a
//! delete from an index only when its filter is exactly `{_id}`: with any other field it reads
//! the whole collection (measured: 97 ms among 4,000 documents, against 10 ms by `_id` alone),
//! and then deletes what it found by `_id`, a read and then a write, not one atomic step. Every
//! create, rename and locked operation releases such a claim, so on FerretDB they slowed down
//! as organizations accumulated.
//!
//! On FerretDB the store therefore takes the server's own two steps itself: a `find_one` with
//! the full filter (its `_id` serves it) and then a `delete_one({_id})`. That promises what
//! FerretDB's own conditional delete promises, no less. On MongoDB the one atomic delete stays.
//! Which server it is comes from `buildInfo` (FerretDB adds `ferretdbVersion`), asked once; until
//! it is known, the atomic form is used, which is correct on both.

use std::sync::OnceLock;

use mongodb::bson::{doc, Document};
use mongodb::{Client, Collection};

use super::MongoStore;
use crate::storage::StoreError;

/// Whether the server is FerretDB, once known.
#[derive(Default)]
pub(super) struct ServerKind(OnceLock<bool>);

impl ServerKind {
    /// `Some(true)` on FerretDB; `None` while unknown (the server has not answered yet).
    pub(super) async fn ferretdb(&self, client: &Client) -> Option<bool> {
        if let Some(known) = self.0.get() {
            return Some(*known);
        }
        let info = client
            .database("admin")
            .run_command(doc! { "buildInfo": 1 })
            .await
            .ok()?;
        let ferretdb = info.contains_key("ferretdbVersion");
        Some(*self.0.get_or_init(|| ferretdb))
    }
}

/// Deletes the document `filter` matches, which names its `_id`; true when one was deleted.
/// `by_id_only`: the server serves only `{_id}` deletes from the index (see the module).
pub(super) async fn delete_if(
    collection: &Collection<Document>,
    filter: Document,
    by_id_only: bool,
) -> mongodb::error::Result<bool> {
    let id = match filter.get("_id") {
        Some(id) if by_id_only => id.clone(),
        _ => return Ok(collection.delete_one(filter).await?.deleted_count == 1),
    };
    if collection.find_one(filter).await?.is_none() {
        return Ok(false);
    }
    Ok(collection
        .delete_one(doc! { "_id": id })
        .await?
        .deleted_count
        == 1)
}

impl MongoStore {
    /// [`delete_if`] bounded by the store timeout, on the server this store talks to.
    pub(super) async fn delete_if(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
    ) -> Result<bool, StoreError> {
        let by_id_only = self.ferretdb().await;
        self.run_within(
            self.timeout,
            what,
            delete_if(collection, filter, by_id_only),
        )
        .await
    }

    /// True on FerretDB (asked once); false on MongoDB and while the server is unknown.
    pub(super) async fn ferretdb(&self) -> bool {
        tokio::time::timeout(self.timeout, self.server.ferretdb(&self.client))
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }
}
