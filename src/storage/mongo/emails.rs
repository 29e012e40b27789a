//! The email → account index, `account_emails`: one document `{_id: <email>, account_id}` per
//! account, so that a lookup by email is a read by `_id`.
//!
//! FerretDB answers every filter other than `_id` by reading the whole collection, index or
//! not, so `admins.find({email})` (every login, every create) slowed down with the number of
//! accounts (a lookup among 4,000 took 100 ms). MongoDB would serve it from the unique index;
//! through this index it serves it by `_id`, which costs one more point read.
//!
//! The entry is written *before* its account and deleted *after* it, so an account always has
//! its entry; an entry may outlive an account that was never made or is gone (a crash between
//! the two steps), and a lookup checks that the account exists and still has that email. Such a
//! stale entry only keeps its email taken until the reconciler (`sweep_emails`) deletes it, as
//! a stale slug claim keeps its name. The unique index on `admins.email` stays as the backstop.
//! Accounts made before the index (or by an instance of an earlier version during an upgrade)
//! are indexed once at start-up and by every reconciler pass after that.

use std::collections::HashMap;

use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::Collection;

use super::codec::bson_time;
use super::MongoStore;
use crate::domain::Account;
use crate::storage::{ReconcileReport, StoreError, Taken};

pub(super) const ACCOUNT_EMAILS: &str = "account_emails";
/// The record of the one-time indexing of the accounts that existed before the index.
pub(super) const EMAILS_UPGRADE: &str = "account_emails";

impl MongoStore {
    pub(super) fn account_emails(&self) -> Collection<Document> {
        self.db.collection(ACCOUNT_EMAILS)
    }

    /// The account with `email`, through the index.
    pub(super) async fn account_with_email(
        &self,
        email: &str,
    ) -> Result<Option<Account>, StoreError> {
        let entries = self.account_emails();
        let Some(account_id) = self
            .pointer("find account email", &entries, email, "account_id")
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .account(doc! { "_id": account_id })
            .await?
            .filter(|account| account.email == email))
    }

    /// Takes `email` for `account_id` before the account is inserted: a conflict unless it is
    /// free or already this account's (a retried step). True when this call took it.
    pub(super) async fn claim_email(
        &self,
        email: &str,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .run(
                "claim account email",
                self.account_emails().insert_one(doc! {
                    "_id": email, "account_id": account_id,
                    "created_at": bson_time(self.clock.now()),
                }),
            )
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => {
                let holder = self
                    .run(
                        "claim account email",
                        self.account_emails().find_one(doc! { "_id": email }),
                    )
                    .await?;
                match holder {
                    Some(h) if h.get_str("account_id") == Ok(account_id) => Ok(false),
                    _ => Err(StoreError::Conflict(Taken::Email)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Frees `email` after its account `account_id` was deleted (only if still that account's).
    pub(super) async fn release_email(
        &self,
        email: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        self.delete_if(
            "release account email",
            &self.account_emails(),
            doc! { "_id": email, "account_id": account_id },
        )
        .await
        .map(drop)
    }

    /// `_id` → (`field`, `created_at`) across `collection`, read as a stream.
    async fn pairs(
        &self,
        what: &str,
        collection: &Collection<Document>,
        field: &str,
    ) -> Result<Entries, StoreError> {
        let mut map = Entries::new();
        let fields = doc! { field: 1, "created_at": 1 };
        self.scan(what, collection, doc! {}, fields, |d| {
            if let (Ok(key), Ok(value)) = (d.get_str("_id"), d.get_str(field)) {
                let made = d.get_datetime("created_at").ok().copied();
                map.insert(key.to_owned(), (value.to_owned(), made));
            }
        })
        .await?;
        Ok(map)
    }

    /// Every account: id → (email, made at). The reconciler reads it once a pass, for the
    /// teams' sweep and the email index's.
    pub(super) async fn accounts_by_id(&self) -> Result<Entries, StoreError> {
        self.pairs("read accounts", &self.admins(), "email").await
    }

    /// Every entry of the index: email → (account id, made at).
    async fn email_entries(&self) -> Result<Entries, StoreError> {
        self.pairs("read account emails", &self.account_emails(), "account_id")
            .await
    }

    /// Indexes the accounts that have no entry (made before the index, or by an instance of an
    /// earlier version); how many it indexed. One whose email another account's entry holds
    /// is left for the sweep, which frees stale entries first.
    pub(super) async fn index_emails(&self) -> Result<u64, StoreError> {
        let accounts = self.accounts_by_id().await?;
        self.index_missing(&self.email_entries().await?, &accounts)
            .await
    }

    async fn index_missing(
        &self,
        entries: &Entries,
        accounts: &Entries,
    ) -> Result<u64, StoreError> {
        let mut added = 0;
        for (id, (email, _)) in accounts {
            let indexed = entries.get(email).is_some_and(|(holder, _)| holder == id);
            if !indexed && matches!(self.claim_email(email, id).await, Ok(true)) {
                added += 1;
            }
        }
        Ok(added)
    }

    /// Entries whose account is gone or has another email, once older than the grace period
    /// (a create or accept in flight has its entry before its account), are deleted; then
    /// accounts without an entry are indexed. `accounts`: every account, read before the
    /// entries (an account made since has an entry newer than the grace period, so it is
    /// neither freed nor missed).
    pub(super) async fn sweep_emails(
        &self,
        accounts: &Entries,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let mut entries = self.email_entries().await?;
        let stale: Vec<(String, String)> = entries
            .iter()
            .filter(|(email, (account_id, made))| {
                made.is_some_and(|m| m < cutoff)
                    && accounts.get(account_id.as_str()).map(|(e, _)| e) != Some(*email)
            })
            .map(|(email, (account_id, _))| (email.clone(), account_id.clone()))
            .collect();
        for (email, account_id) in stale {
            self.release_email(&email, &account_id).await?;
            entries.remove(&email);
            report.repaired.push(format!(
                "released the email of missing account {account_id}"
            ));
        }
        let indexed = self.index_missing(&entries, accounts).await?;
        if indexed > 0 {
            report
                .repaired
                .push(format!("indexed the emails of {indexed} accounts"));
        }
        Ok(())
    }

    /// Accounts without their entry, and entries without their account (empty when consistent).
    pub(super) async fn email_problems(&self) -> Result<Vec<String>, StoreError> {
        let accounts = self.accounts_by_id().await?;
        let entries = self.email_entries().await?;
        let mut problems = Vec::new();
        for (id, (email, _)) in &accounts {
            if entries.get(email).map(|(holder, _)| holder) != Some(id) {
                problems.push(format!("account {id} is not in the email index"));
            }
        }
        for (email, (id, _)) in &entries {
            if accounts.get(id).map(|(e, _)| e) != Some(email) {
                problems.push(format!("email index entry {email} has no account"));
            }
        }
        Ok(problems)
    }
}

/// `_id` → (the other field, `created_at`): entries by email, or accounts by id.
pub(super) type Entries = HashMap<String, (String, Option<BsonDateTime>)>;
