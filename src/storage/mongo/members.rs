//! Memberships on MongoDB: one document per account and organization, `_id`
//! `<organization id>:<account id>`. A change holds the organization's operation lock while it
//! reads the roles and the owner count and writes, so two owners demoting each other at once
//! are serialized and the second is refused (FerretDB's conditional updates are not atomic,
//! so a guarded update alone would not do).

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::audit_outbox::Check;
use super::codec::{bson_time, member_from_doc, membership_key};
use super::{MongoStore, STATE_ACTIVE};
use crate::domain::{
    check_member_change, Member, MemberChange, MemberRole, Membership, NewEvent, PageKey, Refusal,
};
use crate::storage::{Members, StoreError};

/// The filter of a page that starts after `after`, ordered by `(field, tie)`.
pub(super) fn after_key(filter: &mut Document, field: &str, tie: &str, after: Option<PageKey>) {
    if let Some(key) = after {
        let at = bson_time(key.at);
        filter.insert(
            "$or",
            vec![
                doc! { field: { "$gt": at } },
                doc! { field: at, tie: { "$gt": key.id } },
            ],
        );
    }
}

impl MongoStore {
    async fn member_doc(
        &self,
        org_id: &str,
        account_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.run(
            "find membership",
            self.memberships()
                .find_one(doc! { "_id": membership_key(org_id, account_id) }),
        )
        .await?
        .map(|d| member_from_doc(&d))
        .transpose()
    }

    async fn change_locked(
        &self,
        org_id: &str,
        actor: &str,
        target: &str,
        change: MemberChange,
    ) -> Result<Option<Member>, StoreError> {
        let actor_role = self
            .member_doc(org_id, actor)
            .await?
            .ok_or(StoreError::Rule(Refusal::Forbidden))?
            .role;
        let member = self
            .member_doc(org_id, target)
            .await?
            .ok_or(StoreError::Gone)?;
        let owners = self
            .run(
                "count owners",
                self.memberships()
                    .count_documents(doc! { "organization_id": org_id, "role": "owner" }),
            )
            .await?;
        check_member_change(actor_role, actor == target, member.role, change, owners)
            .map_err(StoreError::Rule)?;
        self.failpoints.reached("member.after_check").await;
        // Who the longest-standing owner is can change only when an owner is touched or made.
        let owners_change =
            member.role == MemberRole::Owner || change == MemberChange::Role(MemberRole::Owner);
        if owners_change {
            self.mark_owner_check(org_id).await?;
        }
        let key = membership_key(org_id, target);
        let result = self
            .apply_change(org_id, target, &key, member, change)
            .await?;
        if owners_change {
            self.settle_owner(org_id).await?;
        }
        Ok(result)
    }

    /// Marks the organization's stored owner email as possibly stale: readers compute it from
    /// the memberships until [`MongoStore::settle_owner`] clears the mark (a crash between the
    /// two leaves the mark, so a stale email is never shown).
    async fn mark_owner_check(&self, org_id: &str) -> Result<(), StoreError> {
        self.run(
            "mark owner check",
            self.orgs().update_one(
                doc! { "_id": org_id },
                doc! { "$set": { "owner_check": true } },
            ),
        )
        .await
        .map(drop)
    }

    /// Stores the longest-standing owner's email and clears the mark.
    async fn settle_owner(&self, org_id: &str) -> Result<(), StoreError> {
        let Some(email) = self.owner_from_memberships(org_id).await? else {
            return Ok(());
        };
        self.run(
            "store owner email",
            self.orgs().update_one(
                doc! { "_id": org_id },
                doc! { "$set": { "admin_email": email }, "$unset": { "owner_check": "" } },
            ),
        )
        .await
        .map(drop)
    }

    /// The earliest-joined owner's email, from the memberships (a scan on FerretDB).
    async fn owner_from_memberships(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        let owner = self
            .run(
                "find owner",
                self.memberships()
                    .find_one(doc! { "organization_id": org_id, "role": "owner" })
                    .sort(doc! { "joined_at": 1, "account_id": 1 }),
            )
            .await?;
        Ok(owner.and_then(|m| m.get_str("email").ok().map(str::to_owned)))
    }

    async fn apply_change(
        &self,
        org_id: &str,
        target: &str,
        key: &str,
        member: Member,
        change: MemberChange,
    ) -> Result<Option<Member>, StoreError> {
        match change {
            MemberChange::Role(role) => {
                self.run(
                    "change role",
                    self.memberships().update_one(
                        doc! { "_id": key },
                        doc! { "$set": { "role": role.as_str() } },
                    ),
                )
                .await?;
                Ok(Some(Member { role, ..member }))
            }
            MemberChange::Remove => {
                // `accepted_by` names the membership an invitation made while it lasts; cleared
                // first, so a crash between the two steps leaves nothing inconsistent.
                self.run(
                    "release invitations",
                    self.invitations().update_many(
                        doc! { "organization_id": org_id, "accepted_by": target, "status": "accepted" },
                        doc! { "$set": { "accepted_by": mongodb::bson::Bson::Null } },
                    ),
                )
                .await?;
                self.run(
                    "remove member",
                    self.memberships().delete_one(doc! { "_id": key }),
                )
                .await?;
                self.failpoints.reached("member.after_remove").await;
                // A crash here leaves refresh tokens the refresh route refuses (no membership)
                // and perhaps an account with no membership, which the reconciler deletes.
                self.run(
                    "delete refresh tokens",
                    self.refresh()
                        .delete_many(doc! { "admin_id": target, "organization_id": org_id }),
                )
                .await?;
                self.drop_if_unattached(target, None, None).await?;
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Members for MongoStore {
    async fn memberships_of(&self, account_id: &str) -> Result<Vec<Membership>, StoreError> {
        let docs = self
            .all(
                "find memberships",
                &self.memberships(),
                doc! { "account_id": account_id },
            )
            .await?;
        let ids: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.get_str("organization_id").ok())
            .collect();
        let orgs = self
            .all(
                "find organizations",
                &self.orgs(),
                doc! { "_id": { "$in": &ids }, "state": STATE_ACTIVE },
            )
            .await?;
        let mut memberships = Vec::new();
        for d in &docs {
            let org_id = d.get_str("organization_id").unwrap_or_default();
            let Some(org) = orgs.iter().find(|o| o.get_str("_id") == Ok(org_id)) else {
                continue; // being created or deleted
            };
            let member = member_from_doc(d)?;
            memberships.push(Membership {
                organization_id: org_id.to_owned(),
                organization_name: org.get_str("name").unwrap_or_default().to_owned(),
                role: member.role,
                joined_at: member.joined_at,
            });
        }
        memberships.sort_by(|a, b| {
            (a.joined_at, &a.organization_id).cmp(&(b.joined_at, &b.organization_id))
        });
        Ok(memberships)
    }

    async fn owner_email(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        // The stored email, read by `_id`, unless a change of owners is unsettled.
        let org = self
            .run(
                "find organization",
                self.orgs().find_one(doc! { "_id": org_id }),
            )
            .await?;
        match org {
            None => Ok(None),
            Some(org) if org.get_bool("owner_check") == Ok(true) => {
                self.owner_from_memberships(org_id).await
            }
            Some(org) => Ok(org.get_str("admin_email").ok().map(str::to_owned)),
        }
    }

    async fn member(&self, org_id: &str, account_id: &str) -> Result<Option<Member>, StoreError> {
        self.member_doc(org_id, account_id).await
    }

    async fn list_members(
        &self,
        org_id: &str,
        after: Option<PageKey>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let mut filter = doc! { "organization_id": org_id };
        after_key(&mut filter, "joined_at", "account_id", after);
        let docs: Vec<Document> = self
            .run("list members", async {
                self.memberships()
                    .find(filter)
                    .sort(doc! { "joined_at": 1, "account_id": 1 })
                    .limit(i64::from(limit))
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        docs.iter().map(member_from_doc).collect()
    }

    async fn change_member(
        &self,
        org_id: &str,
        actor: &str,
        target: &str,
        change: MemberChange,
        events: &[NewEvent],
    ) -> Result<Option<Member>, StoreError> {
        let (org, account) = (org_id.to_owned(), target.to_owned());
        let check = match change {
            MemberChange::Role(role) => Check::MemberRole {
                org,
                account,
                role: role.as_str().to_owned(),
            },
            MemberChange::Remove => Check::MemberGone { org, account },
        };
        let change = async {
            let lock = self.lock(org_id).await?;
            let result = self.change_locked(org_id, actor, target, change).await;
            lock.release().await;
            result
        };
        self.audited(events, check, change, |_| true).await
    }
}
