//! Passwords, token versions and refresh-token chains on MongoDB. Spending a token and
//! revoking a chain are inserts of marker documents with unique `_id`s: FerretDB's
//! findAndModify is not atomic, inserts are.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};

use super::audit_outbox::Check;
use super::codec::{account_from_doc, bson_time, chrono_time, field_err};
use super::MongoStore;
use crate::domain::NewEvent;
use crate::storage::{Organizations, RefreshSpend, RefreshToken, Sessions, StoreError};

impl MongoStore {
    /// Bumps the admin's token version (applying `set`, e.g. a new password hash) and deletes
    /// their refresh tokens: every earlier token of theirs stops working. Returns the new version.
    pub(super) async fn end_sessions(
        &self,
        admin_id: &str,
        set: Document,
    ) -> Result<i64, StoreError> {
        let mut update = doc! { "$inc": { "token_version": 1_i64 } };
        if !set.is_empty() {
            update.insert("$set", set);
        }
        let admin = self
            .run(
                "end sessions",
                self.admins()
                    .find_one_and_update(doc! { "_id": admin_id }, update)
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?
            .ok_or(StoreError::Gone)?;
        self.run(
            "revoke refresh tokens",
            self.refresh().delete_many(doc! { "admin_id": admin_id }),
        )
        .await?;
        Ok(account_from_doc(&admin)?.token_version)
    }
}

#[async_trait]
impl Sessions for MongoStore {
    async fn change_password(
        &self,
        admin_id: &str,
        password_hash: &str,
        events: &[NewEvent],
    ) -> Result<i64, StoreError> {
        let check = Check::PasswordHash {
            account: admin_id.to_owned(),
            hash: password_hash.to_owned(),
        };
        let change = self.end_sessions(admin_id, doc! { "password_hash": password_hash });
        self.audited(events, check, change, |_| true).await
    }

    async fn upgrade_password_hash(
        &self,
        admin_id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        self.update_if(
            "upgrade password hash",
            &self.admins(),
            doc! { "_id": admin_id, "password_hash": old_hash },
            doc! { "$set": { "password_hash": new_hash } },
        )
        .await
    }

    async fn revoke_sessions(
        &self,
        admin_id: &str,
        events: &[NewEvent],
    ) -> Result<i64, StoreError> {
        if events.is_empty() {
            return self.end_sessions(admin_id, doc! {}).await;
        }
        let before = self
            .account_by_id(admin_id)
            .await?
            .ok_or(StoreError::Gone)?
            .token_version;
        let check = Check::TokenVersionAbove {
            account: admin_id.to_owned(),
            version: before,
        };
        let change = self.end_sessions(admin_id, doc! {});
        self.audited(events, check, change, |_| true).await
    }

    async fn insert_refresh_token(
        &self,
        token: &RefreshToken,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let check = Check::RefreshToken {
            hash: token.hash.clone(),
        };
        self.audited(events, check, self.insert_token(token), |_| true)
            .await
    }

    async fn spend_refresh_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshSpend, StoreError> {
        let Some(found) = self
            .run(
                "find refresh token",
                self.refresh().find_one(doc! { "_id": hash }),
            )
            .await?
        else {
            return Ok(RefreshSpend::Invalid);
        };
        let token = RefreshToken {
            hash: hash.to_owned(),
            admin_id: found
                .get_str("admin_id")
                .map_err(|_| field_err("admin_id"))?
                .to_owned(),
            organization_id: found
                .get_str("organization_id")
                .map_err(|_| field_err("organization_id"))?
                .to_owned(),
            family_id: found
                .get_str("family_id")
                .map_err(|_| field_err("family_id"))?
                .to_owned(),
            token_version: found.get_i64("token_version").unwrap_or(-1),
            expires_at: found
                .get_datetime("expires_at")
                .map(|t| chrono_time(*t))
                .map_err(|_| field_err("expires_at"))?,
        };
        // Spending is an insert of a marker with a unique _id: of concurrent spends exactly one
        // succeeds (FerretDB's findAndModify is not atomic, inserts are).
        let marker = doc! {
            "_id": format!("{hash}:spent"),
            "admin_id": &token.admin_id,
            "organization_id": &token.organization_id,
            "family_id": &token.family_id,
            "expires_at": bson_time(token.expires_at),
            "spent": true,
        };
        match self
            .run("spend refresh token", self.refresh().insert_one(marker))
            .await
        {
            Ok(_) if token.expires_at <= now => Ok(RefreshSpend::Invalid),
            Ok(_) => Ok(RefreshSpend::Fresh(token)),
            Err(StoreError::Conflict(_)) => {
                // A confirmed token of the family issued after this one is the successor of the
                // won spend: this is a replay after the win. None yet: the winner is still being
                // answered, and this use simply lost the race.
                let issued = found
                    .get_datetime("issued_at")
                    .copied()
                    .unwrap_or(BsonDateTime::MIN);
                let successor = self
                    .run(
                        "find successor",
                        self.refresh().find_one(doc! {
                            "family_id": &token.family_id, "issued_at": { "$gt": issued },
                            "confirmed": true,
                        }),
                    )
                    .await?
                    .is_some();
                Ok(if successor {
                    RefreshSpend::Reused(token)
                } else {
                    RefreshSpend::Contended
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn revoke_refresh_family(
        &self,
        family_id: &str,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let check = Check::FamilyRevoked {
            family: family_id.to_owned(),
        };
        self.audited(events, check, self.revoke_family(family_id), |_| true)
            .await
    }
}

impl MongoStore {
    /// Stores a refresh token, unless its chain was revoked meanwhile.
    async fn insert_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.account_by_id(&token.admin_id)
            .await?
            .ok_or(StoreError::Gone)?;
        self.run(
            "insert refresh token",
            self.refresh().insert_one(doc! {
                "_id": &token.hash,
                "admin_id": &token.admin_id,
                "organization_id": &token.organization_id,
                "family_id": &token.family_id,
                "token_version": token.token_version,
                "expires_at": bson_time(token.expires_at),
                "issued_at": bson_time(Utc::now()),
            }),
        )
        .await?;
        // Joining a chain that was revoked meanwhile is undone: revocation inserts its marker
        // before deleting the chain's tokens, so either we see the marker here or the
        // revocation's delete sees our token.
        let revoked = self
            .run(
                "check family",
                self.refresh()
                    .find_one(doc! { "_id": format!("family:{}", token.family_id) }),
            )
            .await?
            .is_some();
        if revoked {
            self.run(
                "undo refresh token",
                self.refresh().delete_one(doc! { "_id": &token.hash }),
            )
            .await?;
            return Err(StoreError::Revoked);
        }
        // Confirmed: from here the token is handed out, and a use of its predecessor counts
        // as a replay after the win (see `spend_refresh_token`). Before this, a concurrent use
        // of the predecessor only lost the race; were it to revoke the chain, it would make the
        // winner fail too, and nobody would win.
        self.update_if(
            "confirm refresh token",
            &self.refresh(),
            doc! { "_id": &token.hash },
            doc! { "$set": { "confirmed": true } },
        )
        .await?;
        Ok(())
    }

    /// Revokes a chain: its marker first, then its live tokens.
    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        let marker = doc! {
            "_id": format!("family:{family_id}"),
            "family_id": family_id,
            "revoked": true,
            "expires_at": bson_time(Utc::now() + chrono::Duration::days(90)),
        };
        match self
            .run("revoke family", self.refresh().insert_one(marker))
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // Live tokens go; spent markers stay until they expire, so a late replay of a spent
        // token is still recognised as a reuse.
        self.run(
            "revoke family",
            self.refresh().delete_many(doc! {
                "family_id": family_id, "spent": { "$exists": false }, "revoked": { "$exists": false },
            }),
        )
        .await
        .map(drop)
    }
}
