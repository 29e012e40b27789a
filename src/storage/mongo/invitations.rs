//! Invitations on MongoDB. Each change holds the organization's operation lock, so "already a
//! member", "already invited" and "still pending" are decided on a state that cannot change
//! under them. A token superseded by a resend is kept in `old_token_hashes` (410, not 404).
//!
//! An accept is ordered so that every crash leaves a recognisable state: the invitation turns
//! `accepting` (naming the account), then the account (if new) and the membership are inserted,
//! then it turns `accepted`. The reconciler settles an `accepting` invitation older than the
//! grace period: accepted if its membership exists, pending again (and the account it made
//! deleted) if not. So there is never an accepted invitation without its membership.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};

use super::audit_outbox::Check;
use super::codec::{bson_time, invitation_from_doc, membership_key, ACCEPTING};
use super::members::after_key;
use super::MongoStore;
use crate::domain::{
    check_invite, invitation_expiry, Invitation, InvitationStatus, Member, MemberRole, NewEvent,
    PageKey,
};
use crate::storage::{
    AcceptingAccount, InvitationToken, Invitations, ReconcileReport, StoreError, Taken,
};

impl MongoStore {
    async fn invitation_doc(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.run(
            "find invitation",
            self.invitations()
                .find_one(doc! { "_id": id, "organization_id": org_id }),
        )
        .await?
        .map(|d| invitation_from_doc(&d))
        .transpose()
    }

    async fn create_locked(&self, inv: &Invitation, token_hash: &str) -> Result<(), StoreError> {
        let member = self
            .run(
                "find membership",
                self.memberships().find_one(
                    doc! { "organization_id": &inv.organization_id, "email": &inv.email },
                ),
            )
            .await?
            .is_some();
        if member {
            return Err(StoreError::Conflict(Taken::Member));
        }
        let pending = self
            .run(
                "find invitation",
                self.invitations().find_one(doc! {
                    "organization_id": &inv.organization_id, "email": &inv.email,
                    "status": { "$in": ["pending", ACCEPTING] },
                    "expires_at": { "$gt": bson_time(inv.created_at) },
                }),
            )
            .await?
            .is_some();
        if pending {
            return Err(StoreError::Conflict(Taken::Invitation));
        }
        self.run(
            "insert invitation",
            self.invitations().insert_one(doc! {
                "_id": &inv.id,
                "organization_id": &inv.organization_id,
                "email": &inv.email,
                "role": inv.role.as_str(),
                "status": "pending",
                "valid_hours": i64::from(inv.valid_hours),
                "expires_at": bson_time(inv.expires_at),
                "created_at": bson_time(inv.created_at),
                "invited_by": &inv.invited_by,
                "token_hash": token_hash,
                "old_token_hashes": [],
            }),
        )
        .await
        .map(drop)
    }

    async fn reissue_locked(
        &self,
        org_id: &str,
        id: &str,
        token_hash: &str,
        now: DateTime<Utc>,
        by: MemberRole,
    ) -> Result<Option<Invitation>, StoreError> {
        let Some(inv) = self.invitation_doc(org_id, id).await? else {
            return Ok(None);
        };
        inv.check_open().map_err(StoreError::Ended)?;
        check_invite(by, inv.role).map_err(StoreError::Rule)?;
        let expires_at = invitation_expiry(now, inv.valid_hours);
        let old = self
            .run(
                "find invitation",
                self.invitations().find_one(doc! { "_id": id }),
            )
            .await?
            .and_then(|d| d.get_str("token_hash").ok().map(str::to_owned))
            .unwrap_or_default();
        self.run(
            "reissue invitation",
            self.invitations().update_one(
                doc! { "_id": id },
                doc! {
                    "$set": { "token_hash": token_hash, "expires_at": bson_time(expires_at), "status": "pending" },
                    "$push": { "old_token_hashes": old },
                },
            ),
        )
        .await?;
        Ok(Some(Invitation {
            stored_status: InvitationStatus::Pending,
            expires_at,
            ..inv
        }))
    }

    async fn revoke_locked(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(inv) = self.invitation_doc(org_id, id).await? else {
            return Ok(false);
        };
        inv.check_open().map_err(StoreError::Ended)?;
        self.run(
            "revoke invitation",
            self.invitations()
                .update_one(doc! { "_id": id }, doc! { "$set": { "status": "revoked" } }),
        )
        .await?;
        Ok(true)
    }

    async fn accept_locked(
        &self,
        id: &str,
        token_hash: &str,
        account: &AcceptingAccount,
        now: DateTime<Utc>,
    ) -> Result<Member, StoreError> {
        let found = self
            .invitation_by_token(token_hash)
            .await?
            .filter(|t| t.invitation.id == id)
            .ok_or(StoreError::Gone)?;
        found
            .invitation
            .check_usable(now, found.current)
            .map_err(StoreError::Ended)?;
        let inv = found.invitation;
        self.update_if(
            "claim invitation",
            &self.invitations(),
            doc! { "_id": id, "status": "pending", "token_hash": token_hash },
            doc! { "$set": { "status": ACCEPTING, "accepted_by": &account.id, "accepting_since": bson_time(self.clock.now()) } },
        )
        .await?;
        self.failpoints.reached("accept.after_claim").await;
        let joined = async {
            if let Some(hash) = &account.password_hash {
                self.claim_email(&account.email, &account.id).await?;
                self.run(
                    "insert account",
                    self.admins().insert_one(doc! {
                        "_id": &account.id, "email": &account.email, "password_hash": hash,
                        "token_version": 0_i64, "created_at": bson_time(self.clock.now()),
                    }),
                )
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(Taken::Email),
                    other => other,
                })?;
            }
            self.failpoints.reached("accept.after_account").await;
            let member = Member {
                account_id: account.id.clone(),
                email: account.email.clone(),
                role: inv.role,
                joined_at: now,
            };
            self.run(
                "insert membership",
                self.memberships().insert_one(doc! {
                    "_id": membership_key(&inv.organization_id, &account.id),
                    "organization_id": &inv.organization_id,
                    "account_id": &account.id,
                    "email": &account.email,
                    "role": inv.role.as_str(),
                    "joined_at": bson_time(now),
                }),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(Taken::Member),
                other => other,
            })?;
            Ok::<_, StoreError>(member)
        }
        .await;
        match joined {
            Ok(member) => {
                self.failpoints.reached("accept.after_membership").await;
                self.update_if(
                    "accept invitation",
                    &self.invitations(),
                    doc! { "_id": id },
                    doc! { "$set": { "status": "accepted" }, "$unset": { "accepting_since": "" } },
                )
                .await?;
                Ok(member)
            }
            Err(e) => {
                // Nothing joined: the invitation is pending again (the reconciler does this if
                // the store is unreachable now).
                if let Err(undo) = self
                    .reopen(id, &account.id, account.password_hash.is_some())
                    .await
                {
                    tracing::warn!(error = %undo, invitation_id = %id, "undo of failed accept deferred to the reconciler");
                }
                Err(e)
            }
        }
    }

    /// Turns an `accepting` invitation whose membership was not made back to pending, deleting
    /// the account the accept made (if it made one and it belongs nowhere).
    async fn reopen(
        &self,
        id: &str,
        account_id: &str,
        made_account: bool,
    ) -> Result<(), StoreError> {
        if made_account {
            self.drop_if_unattached(account_id, None, None).await?;
        }
        self.update_if(
            "reopen invitation",
            &self.invitations(),
            doc! { "_id": id, "status": ACCEPTING },
            doc! { "$set": { "status": "pending" }, "$unset": { "accepting_since": "", "accepted_by": "" } },
        )
        .await
        .map(drop)
    }

    /// The reconciler's pass over accepts interrupted more than the grace period ago.
    pub(super) async fn settle_accepts(
        &self,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let stuck = self
            .all(
                "find invitations",
                &self.invitations(),
                doc! { "status": ACCEPTING, "accepting_since": { "$lt": cutoff } },
            )
            .await?;
        for inv in stuck {
            let id = inv.get_str("_id").unwrap_or_default();
            let org_id = inv.get_str("organization_id").unwrap_or_default();
            let account_id = inv.get_str("accepted_by").unwrap_or_default();
            let joined = self
                .run(
                    "find membership",
                    self.memberships()
                        .find_one(doc! { "_id": membership_key(org_id, account_id) }),
                )
                .await?
                .is_some();
            if joined {
                self.update_if(
                    "accept invitation",
                    &self.invitations(),
                    doc! { "_id": id, "status": ACCEPTING },
                    doc! { "$set": { "status": "accepted" }, "$unset": { "accepting_since": "" } },
                )
                .await?;
                report
                    .repaired
                    .push(format!("finished accept of invitation {id}"));
            } else {
                self.reopen(id, account_id, true).await?;
                report
                    .repaired
                    .push(format!("undid accept of invitation {id}"));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Invitations for MongoStore {
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &str,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let check = Check::InvitationToken {
            id: invitation.id.clone(),
            hash: token_hash.to_owned(),
        };
        let create = async {
            let lock = self.lock(&invitation.organization_id).await?;
            let result = self.create_locked(invitation, token_hash).await;
            lock.release().await;
            result
        };
        self.audited(events, check, create, |_| true).await
    }

    async fn list_invitations(
        &self,
        org_id: &str,
        status: Option<InvitationStatus>,
        now: DateTime<Utc>,
        after: Option<PageKey>,
        limit: u32,
    ) -> Result<Vec<Invitation>, StoreError> {
        let now = bson_time(now);
        let mut filter = doc! { "organization_id": org_id };
        after_key(&mut filter, "created_at", "_id", after);
        let by_status = match status {
            None => doc! {},
            Some(InvitationStatus::Pending) => {
                doc! { "status": "pending", "expires_at": { "$gt": now } }
            }
            Some(InvitationStatus::Expired) => doc! { "$or": [
                { "status": "expired" },
                { "status": "pending", "expires_at": { "$lte": now } },
            ] },
            Some(InvitationStatus::Accepted) => {
                doc! { "status": { "$in": ["accepted", ACCEPTING] } }
            }
            Some(InvitationStatus::Revoked) => doc! { "status": "revoked" },
        };
        let filter = doc! { "$and": [filter, by_status] };
        let docs: Vec<Document> = self
            .run("list invitations", async {
                self.invitations()
                    .find(filter)
                    .sort(doc! { "created_at": 1, "_id": 1 })
                    .limit(i64::from(limit))
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        docs.iter().map(invitation_from_doc).collect()
    }

    async fn reissue_invitation(
        &self,
        org_id: &str,
        id: &str,
        token_hash: &str,
        now: DateTime<Utc>,
        by: MemberRole,
        events: &[NewEvent],
    ) -> Result<Option<Invitation>, StoreError> {
        let check = Check::InvitationToken {
            id: id.to_owned(),
            hash: token_hash.to_owned(),
        };
        let reissue = async {
            let lock = self.lock(org_id).await?;
            let result = self.reissue_locked(org_id, id, token_hash, now, by).await;
            lock.release().await;
            result
        };
        self.audited(events, check, reissue, Option::is_some).await
    }

    async fn revoke_invitation(
        &self,
        org_id: &str,
        id: &str,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let check = Check::InvitationStatus {
            id: id.to_owned(),
            status: "revoked".into(),
        };
        let revoke = async {
            let lock = self.lock(org_id).await?;
            let result = self.revoke_locked(org_id, id).await;
            lock.release().await;
            result
        };
        self.audited(events, check, revoke, |revoked| *revoked)
            .await
    }

    async fn invitation(&self, org_id: &str, id: &str) -> Result<Option<Invitation>, StoreError> {
        self.invitation_doc(org_id, id).await
    }

    async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<InvitationToken>, StoreError> {
        let found = self
            .run(
                "find invitation",
                self.invitations().find_one(doc! { "$or": [
                    { "token_hash": token_hash },
                    { "old_token_hashes": token_hash },
                ] }),
            )
            .await?;
        found
            .map(|d| {
                Ok(InvitationToken {
                    current: d.get_str("token_hash") == Ok(token_hash),
                    invitation: invitation_from_doc(&d)?,
                })
            })
            .transpose()
    }

    async fn accept_invitation(
        &self,
        id: &str,
        token_hash: &str,
        account: &AcceptingAccount,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> Result<Member, StoreError> {
        let check = Check::InvitationStatus {
            id: id.to_owned(),
            status: "accepted".into(),
        };
        let accept = self.accept_unaudited(id, token_hash, account, now);
        self.audited(events, check, accept, |_| true).await
    }
}

impl MongoStore {
    async fn accept_unaudited(
        &self,
        id: &str,
        token_hash: &str,
        account: &AcceptingAccount,
        now: DateTime<Utc>,
    ) -> Result<Member, StoreError> {
        let org_id = self
            .invitation_by_token(token_hash)
            .await?
            .filter(|t| t.invitation.id == id)
            .ok_or(StoreError::Gone)?
            .invitation
            .organization_id;
        let lock = self.lock(&org_id).await?;
        let result = self.accept_locked(id, token_hash, account, now).await;
        lock.release().await;
        result
    }
}
