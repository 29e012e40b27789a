//! Teams' upkeep on MongoDB: the start-up upgrade of data made before teams, the consistency
//! check of accounts, memberships and invitations, and the reconciler's sweep of what an
//! interrupted change left behind.

use std::collections::HashSet;

use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};

use super::codec::{bson_time, chrono_time, membership_key};
use super::emails::Entries;
use super::reconcile::Owners;
use super::MongoStore;
use crate::domain::MemberRole;
use crate::storage::{ReconcileReport, StoreError};

/// The upgrade record of [`adopt_admins`].
pub(super) const MEMBERSHIPS_UPGRADE: &str = "memberships";

/// Gives every admin of an organization made before teams an `owner` membership of it,
/// joined when the admin was made. Idempotent (a membership's `_id` is its key), so a crash
/// half-way is finished by the next start-up.
pub(super) async fn adopt_admins(store: &MongoStore) -> Result<u64, StoreError> {
    let legacy = store
        .all(
            "find admins",
            &store.admins(),
            doc! { "organization_id": { "$exists": true } },
        )
        .await?;
    let orgs = store
        .all("find organizations", &store.orgs(), doc! {})
        .await?;
    let mut adopted = 0;
    for admin in legacy {
        let (Ok(id), Ok(org_id), Ok(email)) = (
            admin.get_str("_id"),
            admin.get_str("organization_id"),
            admin.get_str("email"),
        ) else {
            continue;
        };
        if !orgs.iter().any(|o| o.get_str("_id") == Ok(org_id)) {
            continue; // an orphan admin: the reconciler deletes it
        }
        let joined = admin
            .get_datetime("created_at")
            .map(|t| chrono_time(*t))
            .unwrap_or_default();
        let inserted = store
            .run(
                "adopt admin",
                store.memberships().insert_one(doc! {
                    "_id": membership_key(org_id, id),
                    "organization_id": org_id,
                    "account_id": id,
                    "email": email,
                    "role": MemberRole::Owner.as_str(),
                    "joined_at": bson_time(joined),
                }),
            )
            .await;
        match inserted {
            Ok(_) => adopted += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(adopted)
}

/// What is wrong with the teams' data (empty when consistent), given every organization.
pub(super) async fn team_problems(
    store: &MongoStore,
    orgs: &[Document],
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let accounts = store.all("find accounts", &store.admins(), doc! {}).await?;
    let memberships = store
        .all("find memberships", &store.memberships(), doc! {})
        .await?;
    let accepted = store
        .all(
            "find invitations",
            &store.invitations(),
            doc! { "status": "accepted" },
        )
        .await?;
    let id = |d: &Document, k: &str| d.get_str(k).unwrap_or("?").to_owned();
    for org in orgs {
        let org_id = id(org, "_id");
        let oldest = memberships
            .iter()
            .filter(|m| id(m, "organization_id") == org_id && m.get_str("role") == Ok("owner"))
            .min_by_key(|m| {
                (
                    m.get_datetime("joined_at").ok().copied(),
                    id(m, "account_id"),
                )
            });
        match oldest {
            None => problems.push(format!("organization {org_id} has no owner")),
            // The stored owner email counts only when no change of owners is unsettled.
            Some(owner)
                if org.get_bool("owner_check") != Ok(true)
                    && org.get_str("admin_email") != owner.get_str("email") =>
            {
                problems.push(format!("organization {org_id} stores a stale owner email"));
            }
            Some(_) => {}
        }
    }
    for account in &accounts {
        let account_id = id(account, "_id");
        if !memberships
            .iter()
            .any(|m| id(m, "account_id") == account_id)
        {
            problems.push(format!("account {account_id} has no membership"));
        }
    }
    for m in &memberships {
        let (org_id, account_id) = (id(m, "organization_id"), id(m, "account_id"));
        if !orgs.iter().any(|o| id(o, "_id") == org_id)
            || !accounts.iter().any(|a| id(a, "_id") == account_id)
        {
            problems.push(format!(
                "membership {} lacks its account or organization",
                id(m, "_id")
            ));
        }
    }
    for inv in accepted.iter().filter(|i| i.get_str("accepted_by").is_ok()) {
        let key = membership_key(
            inv.get_str("organization_id").unwrap_or("?"),
            inv.get_str("accepted_by").unwrap_or("?"),
        );
        if !memberships
            .iter()
            .any(|m| m.get_str("_id") == Ok(key.as_str()))
        {
            problems.push(format!(
                "accepted invitation {} has no membership",
                id(inv, "_id")
            ));
        }
    }
    Ok(problems)
}

impl MongoStore {
    /// Accounts with no membership (a crash between a removal and the account's deletion, or
    /// an account a create or accept made before it crashed) and memberships whose account or
    /// organization is gone, once older than the grace period.
    /// `accounts` is every account read at the start of the pass; the accounts deleted here
    /// leave it, so the email sweep after this frees their entries.
    pub(super) async fn sweep_teams(
        &self,
        owners: &Owners,
        accounts: &mut Entries,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let mut members = HashSet::new();
        let fields = doc! { "account_id": 1 };
        self.scan(
            "list member accounts",
            &self.memberships(),
            doc! {},
            fields,
            |m| {
                if let Ok(id) = m.get_str("account_id") {
                    members.insert(id.to_owned());
                }
            },
        )
        .await?;
        let mut unattached = Vec::new();
        accounts.retain(|id, (_, made)| {
            let attached = !made.is_some_and(|m| m < cutoff) || members.contains(id);
            if !attached {
                unattached.push(Bson::String(id.clone()));
            }
            attached
        });
        let orphans = self
            .delete_ids(
                "delete accounts without membership",
                &self.admins(),
                &unattached,
            )
            .await?;
        if orphans > 0 {
            report
                .repaired
                .push(format!("deleted {orphans} accounts without membership"));
        }
        let stale = self
            .sweep(
                "delete orphan memberships",
                &self.memberships(),
                doc! { "joined_at": { "$lt": cutoff } },
                doc! { "organization_id": 1, "account_id": 1 },
                |m| {
                    !owners.has(m.get_str("organization_id").unwrap_or_default())
                        || !accounts.contains_key(m.get_str("account_id").unwrap_or_default())
                },
            )
            .await?;
        if stale > 0 {
            report
                .repaired
                .push(format!("deleted {stale} orphan memberships"));
        }
        Ok(())
    }
}
