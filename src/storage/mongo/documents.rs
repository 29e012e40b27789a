//! The documents API on MongoDB, in either tenant layout. A document is stored as
//! `{_id: ObjectId, document, version, created_at, updated_at}` (plus `organization_id` in the
//! shared layout).
//!
//! A write conditioned on version `v` first *claims* version `v + 1` by inserting
//! `document_writes {_id: "<org>:<doc>:<v+1>", …the write…}`: inserts into a unique `_id` are
//! atomic on MongoDB and FerretDB alike (FerretDB's conditional updates are not), so of
//! concurrent writes on one version exactly one claims it. The winner then applies its write to
//! the document, conditioned on `version: v` (idempotent), and drops the claim.
//!
//! - Only a claim's owner applies it while the claim is young: FerretDB applies a conditional
//!   update as read-then-write, so two processes applying writes to one document at once could
//!   move it backwards. A writer that finds the claim taken reports the conflict.
//! - A claim older than the lock lease (`lock::lease`, ten store timeouts) belongs to a writer
//!   that died between its two steps: the next writer applies it (so no write is half-done) and
//!   drops it (so none blocks the document), then reports the conflict.
//! - A writer whose claim succeeded but whose write changed nothing had read the document
//!   before an earlier write's claim was dropped: its claim is stale; it drops it and reports
//!   the conflict.
//!
//! Filters become a document built field by field (`render`): each condition is an `$eq`,
//! `$type: null`, and a `$not: {$type: array}` on its path and every prefix, so a path never
//! matches inside an array, as on the embedded store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde_json::{Map, Value};

use super::codec::{bson_time, chrono_time};
use super::MongoStore;
use crate::domain::{Filter, Organization, Scalar, StoredDocument, TenantLayout};
use crate::storage::{Documents, Limit, StoreError};

/// The `$and` clauses of `filter`, on fields under `document.`.
pub(super) fn render(filter: &Filter) -> Vec<Document> {
    let mut clauses = Vec::new();
    for condition in &filter.conditions {
        let mut path = String::from("document");
        for name in &condition.path {
            path.push('.');
            path.push_str(name);
            clauses.push(doc! { path.clone(): { "$not": { "$type": "array" } } });
        }
        clauses.push(match &condition.value {
            Scalar::Null => doc! { path: { "$type": "null" } },
            Scalar::Bool(b) => doc! { path: { "$eq": *b } },
            Scalar::String(s) => doc! { path: { "$eq": s.as_str() } },
            Scalar::Number(n) => match n.as_i64() {
                Some(i) => doc! { path: { "$eq": i } },
                None => doc! { path: { "$eq": n.as_f64().unwrap_or(f64::NAN) } },
            },
        });
    }
    clauses
}

fn object_id(id: &str) -> Result<ObjectId, StoreError> {
    ObjectId::parse_str(id).map_err(|_| StoreError::Gone)
}

fn to_bson(data: &Map<String, Value>) -> Result<Document, StoreError> {
    match mongodb::bson::to_bson(data) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(StoreError::Backend("document is not an object".into())),
        Err(e) => Err(StoreError::Backend(format!("document: {e}"))),
    }
}

/// A stored record to the domain's document (records stored before the API, with the data at
/// the top level, read as version 1 with the time of their id).
fn from_record(record: Document) -> Result<StoredDocument, StoreError> {
    let id = record
        .get_object_id("_id")
        .map_err(|_| StoreError::Backend("document without an ObjectId".into()))?;
    let created = record
        .get_datetime("created_at")
        .map(|t| chrono_time(*t))
        .unwrap_or_else(|_| chrono_time(id.timestamp()));
    let body = match record.get_document("document") {
        Ok(body) => body.clone(),
        Err(_) => {
            let mut legacy = record.clone();
            legacy.remove("_id");
            legacy.remove("organization_id");
            legacy
        }
    };
    let data = match serde_json::to_value(&body) {
        Ok(Value::Object(map)) => map,
        _ => return Err(StoreError::Backend("document does not map to JSON".into())),
    };
    Ok(StoredDocument {
        id: id.to_hex(),
        version: record
            .get_i64("version")
            .or_else(|_| record.get_i32("version").map(i64::from))
            .unwrap_or(1),
        created_at: created,
        updated_at: record
            .get_datetime("updated_at")
            .map(|t| chrono_time(*t))
            .unwrap_or(created),
        data,
    })
}

impl MongoStore {
    /// The organization's documents: its collection, or its slice of `tenant_documents`.
    fn documents_of(
        &self,
        org: &Organization,
    ) -> Result<(Collection<Document>, Document), StoreError> {
        Ok(match self.layout()? {
            TenantLayout::Collection => (self.db.collection(&org.collection_name), doc! {}),
            TenantLayout::Shared => (self.tenant_documents(), doc! { "organization_id": &org.id }),
        })
    }

    async fn record(&self, org: &Organization, id: &str) -> Result<Option<Document>, StoreError> {
        let (collection, mut filter) = self.documents_of(org)?;
        filter.insert("_id", object_id(id)?);
        self.run("find document", collection.find_one(filter)).await
    }

    /// Applies a claimed write (idempotent: conditioned on the version it was claimed from);
    /// whether it changed the document.
    async fn apply_claim(&self, org: &Organization, claim: &Document) -> Result<bool, StoreError> {
        let (collection, mut filter) = self.documents_of(org)?;
        let id = claim.get_str("document_id").unwrap_or_default();
        filter.insert("_id", object_id(id)?);
        filter.insert("version", claim.get_i64("from").unwrap_or(-1));
        match claim.get_document("data") {
            Ok(data) => {
                let update = doc! { "$set": {
                    "document": data.clone(),
                    "version": claim.get_i64("from").unwrap_or(-1) + 1,
                    "updated_at": claim.get("updated_at").cloned().unwrap_or(Bson::Null),
                } };
                let result = self
                    .run_with_data("write document", collection.update_one(filter, update))
                    .await?;
                Ok(result.matched_count == 1)
            }
            Err(_) => {
                let result = self
                    .run("delete document", collection.delete_one(filter))
                    .await?;
                Ok(result.deleted_count == 1)
            }
        }
    }
}

#[async_trait]
impl Documents for MongoStore {
    async fn insert_document(
        &self,
        org: &Organization,
        id: &str,
        data: &Map<String, Value>,
        at: DateTime<Utc>,
        max_documents: u64,
    ) -> Result<StoredDocument, StoreError> {
        let (collection, base) = self.documents_of(org)?;
        // Counted before the insert: under concurrent inserts the quota can be passed by as
        // many documents as there are writers at that moment (FerretDB has no atomic counter).
        let held = self
            .run_scan("count documents", collection.count_documents(base.clone()))
            .await?;
        if held >= max_documents {
            return Err(StoreError::Quota(Limit::Documents));
        }
        let mut record = base;
        record.insert("_id", object_id(id)?);
        record.insert("document", to_bson(data)?);
        record.insert("version", 1_i64);
        record.insert("created_at", bson_time(at));
        record.insert("updated_at", bson_time(at));
        self.run_with_data("insert document", collection.insert_one(&record))
            .await?;
        if self.layout()? == TenantLayout::Shared {
            self.confirm_tenant_alive(org, std::slice::from_ref(&record))
                .await?;
        }
        from_record(record)
    }

    async fn get_document(
        &self,
        org: &Organization,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        if ObjectId::parse_str(id).is_err() {
            return Ok(None);
        }
        self.record(org, id).await?.map(from_record).transpose()
    }

    async fn write_document(
        &self,
        org: &Organization,
        id: &str,
        expected: i64,
        data: Option<&Map<String, Value>>,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let current = self.record(org, id).await?.ok_or(StoreError::Gone)?;
        let version = from_record(current)?.version;
        if version != expected {
            return Err(StoreError::Precondition);
        }
        let key = format!("{}:{id}:{}", org.id, version + 1);
        // The key names the version; the nonce names this claim, so that marking or dropping
        // it can never touch a later claim of the same version.
        let nonce = uuid::Uuid::new_v4().to_string();
        let mine = doc! { "_id": &key, "nonce": &nonce };
        let mut claim = doc! {
            "_id": &key, "nonce": &nonce, "organization_id": &org.id, "document_id": id, "from": version,
            "updated_at": bson_time(at), "created_at": bson_time(self.clock.now()),
        };
        if let Some(data) = data {
            claim.insert("data", to_bson(data)?);
        }
        match self
            .run_with_data("claim version", self.document_writes().insert_one(&claim))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                // Another write claimed this version first; if its writer died, finish it.
                let abandoned = bson_time(
                    self.clock.now()
                        - chrono::Duration::from_std(super::lock::lease(self.timeout))
                            .unwrap_or_default(),
                );
                let other = self
                    .run(
                        "read claim",
                        self.document_writes()
                            .find_one(doc! { "_id": &key, "created_at": { "$lt": abandoned } }),
                    )
                    .await?;
                if let Some(other) = other {
                    self.apply_claim(org, &other).await?;
                    let theirs =
                        doc! { "_id": &key, "nonce": other.get_str("nonce").unwrap_or_default() };
                    self.delete_if("drop claim", &self.document_writes(), theirs)
                        .await?;
                }
                return Err(StoreError::Precondition);
            }
            Err(e) => return Err(e),
        }
        let applied = self.apply_claim(org, &claim).await?;
        self.delete_if("drop claim", &self.document_writes(), mine)
            .await?;
        if !applied {
            // A stale claim: the document had moved on before it was made.
            return Err(StoreError::Precondition);
        }
        match data {
            Some(_) => self.get_document(org, id).await,
            None => Ok(None),
        }
    }

    async fn list_documents(
        &self,
        org: &Organization,
        filter: &Filter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let (collection, base) = self.documents_of(org)?;
        let mut clauses = vec![base];
        if let Some(after) = after {
            clauses.push(doc! { "_id": { "$gt": object_id(&after)? } });
        }
        clauses.extend(render(filter));
        let records: Vec<Document> = self
            .run_scan("list documents", async {
                collection
                    .find(doc! { "$and": clauses })
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(limit))
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        records.into_iter().map(from_record).collect()
    }

    async fn count_documents(
        &self,
        org: &Organization,
        filter: &Filter,
    ) -> Result<u64, StoreError> {
        let (collection, base) = self.documents_of(org)?;
        let mut clauses = vec![base];
        clauses.extend(render(filter));
        self.run_scan(
            "count documents",
            collection.count_documents(doc! { "$and": clauses }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_documents_built_field_by_field() {
        let filter = Filter::parse(Some(
            r#"{"a.b": 1, "n": null, "s": "{\"$gt\": 1}", "t": true, "f": 2.5}"#,
        ))
        .unwrap();
        let not_array = doc! { "$not": { "$type": "array" } };
        assert_eq!(
            render(&filter),
            vec![
                doc! { "document.a": not_array.clone() },
                doc! { "document.a.b": not_array.clone() },
                doc! { "document.a.b": { "$eq": 1_i64 } },
                doc! { "document.f": not_array.clone() },
                doc! { "document.f": { "$eq": 2.5 } },
                doc! { "document.n": not_array.clone() },
                doc! { "document.n": { "$type": "null" } },
                doc! { "document.s": not_array.clone() },
                doc! { "document.s": { "$eq": "{\"$gt\": 1}" } },
                doc! { "document.t": not_array },
                doc! { "document.t": { "$eq": true } },
            ]
        );
        assert!(render(&Filter::default()).is_empty());
    }
}
