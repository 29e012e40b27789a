//! Writes of one document by `_id` on a condition: "this claim, lock or record, only if it is
//! still the one we mean" (a holder, an owner, a nonce, a state).
//!
//! MongoDB runs `delete_one`/`update_one`/`find_one_and_update` on `{_id, …}` atomically, from
//! the `_id` index. FerretDB 1.24 serves such a write from an index only when its filter is
//! exactly `{_id}`: with any other field it reads the whole collection (measured among 2,100
//! organizations: `update_one({_id, state})` 152 ms, `update_one({_id})` 0.8 ms, and it holds
//! the database's write lock meanwhile), and then writes what it found by `_id`, a read and
//! then a write, not one atomic step. Every create, rename and locked operation makes such
//! writes, so on FerretDB they slowed down, one after another, as organizations accumulated.
//!
//! On FerretDB the store therefore takes the server's own two steps itself: a `find_one` with
//! the full filter (its `_id` serves it, and a find takes no write lock) and then the write by
//! `_id` alone. That promises what FerretDB's own conditional write promises, no less (nothing
//! here relies on it for a decision: those are inserts of unique `_id`s). On MongoDB the one
//! atomic write stays. Which server it is comes from `buildInfo` (FerretDB adds
//! `ferretdbVersion`), asked once; until it is known, the atomic form is used, correct on both.

use std::sync::OnceLock;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
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
        tracing::debug!(ferretdb, "the server is known");
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
    match narrowed(collection, filter, by_id_only).await? {
        Some(filter) => Ok(collection.delete_one(filter).await?.deleted_count == 1),
        None => Ok(false),
    }
}

/// The filter a write should use: `filter` itself, or, when writes go by `_id` alone, `{_id}`
/// once a read has found that `filter` matches; `None` when it matches nothing.
async fn narrowed(
    collection: &Collection<Document>,
    filter: Document,
    by_id_only: bool,
) -> mongodb::error::Result<Option<Document>> {
    let Some(id) = by_id(&filter, by_id_only) else {
        return Ok(Some(filter));
    };
    Ok(collection
        .find_one(filter)
        .await?
        .map(|_| doc! { "_id": id }))
}

/// The `_id` of a filter that also has a condition, when writes should go by `_id` alone (see
/// the module); `None` for a filter of `_id` alone, which every server serves directly.
fn by_id(filter: &Document, by_id_only: bool) -> Option<Bson> {
    filter
        .get("_id")
        .filter(|_| by_id_only && filter.len() > 1)
        .cloned()
}

impl MongoStore {
    /// `update_one(filter, update)` for a filter that names its `_id`; true when it matched.
    pub(super) async fn update_if(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
        update: Document,
    ) -> Result<bool, StoreError> {
        let by_id_only = self.ferretdb().await;
        self.run_within(self.timeout, what, async {
            match narrowed(collection, filter, by_id_only).await? {
                Some(filter) => Ok(collection.update_one(filter, update).await?.matched_count == 1),
                None => Ok(false),
            }
        })
        .await
    }

    /// `find_one_and_update(filter, update)` for a filter that names its `_id`: the document as
    /// it was (`after` false) or became, if it matched.
    pub(super) async fn find_and_update_if(
        &self,
        what: &str,
        collection: &Collection<Document>,
        filter: Document,
        update: Document,
        after: bool,
    ) -> Result<Option<Document>, StoreError> {
        let by_id_only = self.ferretdb().await;
        let returned = if after {
            ReturnDocument::After
        } else {
            ReturnDocument::Before
        };
        self.run_within(self.timeout, what, async {
            let Some(filter) = narrowed(collection, filter, by_id_only).await? else {
                return Ok(None);
            };
            collection
                .find_one_and_update(filter, update)
                .return_document(returned)
                .await
        })
        .await
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_conditional_filter_on_ferretdb_goes_by_id() {
        let conditional = doc! { "_id": "k", "holder": "h" };
        assert_eq!(by_id(&conditional, true), Some(Bson::from("k")));
        assert_eq!(by_id(&conditional, false), None);
        assert_eq!(by_id(&doc! { "_id": "k" }, true), None);
        assert_eq!(by_id(&doc! { "holder": "h", "other": 1 }, true), None);
    }
}
