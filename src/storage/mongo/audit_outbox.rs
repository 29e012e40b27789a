//! Audit events staged with the change they record, on MongoDB (no transactions).
//!
//! An audited operation first *stages* its events in `audit_outbox` with a [`Check`] that tells
//! whether the change happened, then makes the change, then appends the events to their chains
//! (`audit.rs`) and drops them from the outbox. A refusal drops them at once. A crash or an
//! outage in between leaves them staged; the reconciler, after its other passes have finished or
//! undone the interrupted operations, appends each staged event older than the grace period
//! whose change is visible and drops the others. So a change and its event both exist in the
//! end, or neither.

use std::future::Future;

use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::codec::{bson_time, membership_key};
use super::{MongoStore, STATE_ACTIVE};
use crate::domain::NewEvent;
use crate::storage::{ReconcileReport, StoreError};

pub(super) const AUDIT_OUTBOX: &str = "audit_outbox";

/// How the reconciler tells whether a staged event's change happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Check {
    /// The organization exists and is active (a create).
    OrgActive { org: String },
    /// The organization has this name and no rename pending (a rename).
    OrgName { org: String, name: String },
    /// The organization is gone (a delete).
    OrgGone { org: String },
    /// The invitation's current token has this hash (an invitation or a resend).
    InvitationToken { id: String, hash: String },
    /// The invitation has this status (a revoke, an accept).
    InvitationStatus { id: String, status: String },
    /// The membership has this role (a role change).
    MemberRole {
        org: String,
        account: String,
        role: String,
    },
    /// The membership is gone (a removal).
    MemberGone { org: String, account: String },
    /// The API key exists.
    KeyExists { id: String },
    /// The API key is gone.
    KeyGone { id: String },
    /// The account's password hash is this one (a password change).
    PasswordHash { account: String, hash: String },
    /// The account's token version is above this one (sessions revoked).
    TokenVersionAbove { account: String, version: i64 },
    /// The refresh token exists (a login).
    RefreshToken { hash: String },
    /// The refresh-token chain is revoked.
    FamilyRevoked { family: String },
}

impl MongoStore {
    fn audit_outbox(&self) -> Collection<Document> {
        self.db.collection(AUDIT_OUTBOX)
    }

    /// Runs the audited operation `op` whose success `changed` tells apart from a no-op,
    /// recording `events` with it (see the module's comment).
    pub(super) async fn audited<T>(
        &self,
        events: &[NewEvent],
        check: Check,
        op: impl Future<Output = Result<T, StoreError>>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        if events.is_empty() {
            return op.await;
        }
        self.stage(events, &check).await?;
        let result = op.await;
        match &result {
            Ok(value) if changed(value) => {
                self.failpoints.reached("audit.after_change").await;
                if let Err(e) = self.publish(events).await {
                    tracing::warn!(error = %e, "audit events left for the reconciler to append");
                }
            }
            // Whether the change happened is not known: the reconciler settles it by the check.
            Err(StoreError::Unavailable(_) | StoreError::Backend(_)) => {}
            _ => self.discard(events).await,
        }
        result
    }

    async fn stage(&self, events: &[NewEvent], check: &Check) -> Result<(), StoreError> {
        let check = serde_json::to_string(check).map_err(|e| StoreError::Backend(e.to_string()))?;
        let now = bson_time(self.clock.now());
        let docs: Vec<Document> = events
            .iter()
            .map(|e| {
                Ok(doc! {
                    "_id": &e.id, "organization_id": &e.organization_id, "created_at": now,
                    "check": &check,
                    "draft": serde_json::to_string(e).map_err(|e| StoreError::Backend(e.to_string()))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        self.run("stage audit events", self.audit_outbox().insert_many(docs))
            .await
            .map(drop)
    }

    async fn publish(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        for event in events {
            self.append(event).await?;
            self.run(
                "unstage audit event",
                self.audit_outbox().delete_one(doc! { "_id": &event.id }),
            )
            .await?;
        }
        Ok(())
    }

    async fn discard(&self, events: &[NewEvent]) {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        if let Err(e) = self
            .run(
                "discard audit events",
                self.audit_outbox()
                    .delete_many(doc! { "_id": { "$in": ids } }),
            )
            .await
        {
            tracing::warn!(error = %e, "staged audit events left for the reconciler to drop");
        }
    }

    async fn check_holds(&self, check: &Check) -> Result<bool, StoreError> {
        let exists = |collection: Collection<Document>, filter: Document| async move {
            self.run("audit check", collection.find_one(filter))
                .await
                .map(|d| d.is_some())
        };
        match check {
            Check::OrgActive { org } => {
                exists(self.orgs(), doc! { "_id": org, "state": STATE_ACTIVE }).await
            }
            Check::OrgName { org, name } => {
                exists(
                    self.orgs(),
                    doc! { "_id": org, "name": name, "state": STATE_ACTIVE, "pending": { "$exists": false } },
                )
                .await
            }
            Check::OrgGone { org } => exists(self.orgs(), doc! { "_id": org }).await.map(|e| !e),
            Check::InvitationToken { id, hash } => {
                exists(self.invitations(), doc! { "_id": id, "token_hash": hash }).await
            }
            Check::InvitationStatus { id, status } => {
                exists(self.invitations(), doc! { "_id": id, "status": status }).await
            }
            Check::MemberRole { org, account, role } => {
                exists(
                    self.memberships(),
                    doc! { "_id": membership_key(org, account), "role": role },
                )
                .await
            }
            Check::MemberGone { org, account } => exists(
                self.memberships(),
                doc! { "_id": membership_key(org, account) },
            )
            .await
            .map(|e| !e),
            Check::KeyExists { id } => exists(self.api_keys(), doc! { "_id": id }).await,
            Check::KeyGone { id } => exists(self.api_keys(), doc! { "_id": id }).await.map(|e| !e),
            Check::PasswordHash { account, hash } => {
                exists(self.admins(), doc! { "_id": account, "password_hash": hash }).await
            }
            Check::TokenVersionAbove { account, version } => {
                exists(
                    self.admins(),
                    doc! { "_id": account, "token_version": { "$gt": version } },
                )
                .await
            }
            Check::RefreshToken { hash } => exists(self.refresh(), doc! { "_id": hash }).await,
            Check::FamilyRevoked { family } => {
                exists(self.refresh(), doc! { "_id": format!("family:{family}") }).await
            }
        }
    }

    /// The reconciler's pass: each event staged before `cutoff` is appended if its change is
    /// visible, dropped if not.
    pub(super) async fn settle_audit(
        &self,
        cutoff: BsonDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let staged = self
            .all(
                "find staged audit events",
                &self.audit_outbox(),
                doc! { "created_at": { "$lt": cutoff } },
            )
            .await?;
        for entry in staged {
            let id = entry.get_str("_id").unwrap_or_default().to_owned();
            let check: Option<Check> = entry
                .get_str("check")
                .ok()
                .and_then(|c| serde_json::from_str(c).ok());
            let draft: Option<NewEvent> = entry
                .get_str("draft")
                .ok()
                .and_then(|d| serde_json::from_str(d).ok());
            let (Some(check), Some(draft)) = (check, draft) else {
                tracing::error!(%id, "unreadable staged audit event dropped");
                self.discard_one(&id).await?;
                continue;
            };
            if self.check_holds(&check).await? {
                self.publish(std::slice::from_ref(&draft)).await?;
                report.repaired.push(format!(
                    "appended audit event {id} of an interrupted change"
                ));
            } else {
                self.discard_one(&id).await?;
                report.repaired.push(format!(
                    "dropped audit event {id} of a change that did not happen"
                ));
            }
        }
        Ok(())
    }

    async fn discard_one(&self, id: &str) -> Result<(), StoreError> {
        self.run(
            "discard audit event",
            self.audit_outbox().delete_one(doc! { "_id": id }),
        )
        .await
        .map(drop)
    }

    /// Staged events (for the consistency check: none may be left once the reconciler ran).
    pub(super) async fn audit_problems(&self) -> Result<Vec<String>, StoreError> {
        let staged = self
            .run(
                "count staged audit events",
                self.audit_outbox().count_documents(doc! {}),
            )
            .await?;
        Ok((staged > 0)
            .then(|| format!("{staged} audit events staged but not settled"))
            .into_iter()
            .collect())
    }
}
