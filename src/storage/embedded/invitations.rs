//! Invitations on the embedded store. Every token ever issued stays in `invitation_tokens`, so
//! a token superseded by a resend is recognised (410) rather than unknown (404). An accept is one
//! transaction: the invitation turns `accepted` with the membership it made, or not at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::audit::append;
use super::codec::{backend, conflict_or_backend, parse_ts, role_from, ts};
use super::members::member_in;
use super::EmbeddedStore;
use crate::domain::{
    check_invite, invitation_expiry, Invitation, InvitationStatus, Member, MemberRole, NewEvent,
    PageKey,
};
use crate::storage::{AcceptingAccount, InvitationToken, Invitations, StoreError, Taken};

const COLUMNS: &str =
    "i.id, i.organization_id, i.email, i.role, i.status, i.valid_hours, i.expires_at, i.created_at, i.invited_by";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Invitation> {
    let status: String = row.get(4)?;
    Ok(Invitation {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        email: row.get(2)?,
        role: role_from(&row.get::<_, String>(3)?)?,
        stored_status: InvitationStatus::parse(&status).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        valid_hours: row.get(5)?,
        expires_at: parse_ts(&row.get::<_, String>(6)?)?,
        created_at: parse_ts(&row.get::<_, String>(7)?)?,
        invited_by: row.get(8)?,
    })
}

fn invitation_in(
    conn: &Connection,
    org_id: &str,
    id: &str,
) -> Result<Option<Invitation>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM invitations i WHERE i.organization_id = ?1 AND i.id = ?2"
    ))
    .and_then(|mut stmt| stmt.query_row(params![org_id, id], from_row).optional())
    .map_err(backend)
}

/// The token's invitation and whether the token is its current one.
fn by_token(conn: &Connection, hash: &str) -> Result<Option<InvitationToken>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, i.token_hash = t.hash FROM invitation_tokens t
         JOIN invitations i ON i.id = t.invitation_id WHERE t.hash = ?1"
    ))
    .and_then(|mut stmt| {
        stmt.query_row([hash], |r| {
            Ok(InvitationToken {
                invitation: from_row(r)?,
                current: r.get(9)?,
            })
        })
        .optional()
    })
    .map_err(backend)
}

#[async_trait]
impl Invitations for EmbeddedStore {
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &str,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let (inv, hash, events) = (invitation.clone(), token_hash.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            let member: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM memberships m JOIN accounts a ON a.id = m.account_id
                     WHERE m.organization_id = ?1 AND a.email = ?2)",
                    params![inv.organization_id, inv.email],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if member {
                return Err(StoreError::Conflict(Taken::Member));
            }
            // A pending invitation whose time is up no longer blocks a new one.
            tx.execute(
                "UPDATE invitations SET status = 'expired'
                 WHERE organization_id = ?1 AND email = ?2 AND status = 'pending' AND expires_at <= ?3",
                params![inv.organization_id, inv.email, ts(inv.created_at)],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO invitations (id, organization_id, email, role, status, valid_hours, expires_at, created_at, invited_by, token_hash)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9)",
                params![
                    inv.id, inv.organization_id, inv.email, inv.role.as_str(), inv.valid_hours,
                    ts(inv.expires_at), ts(inv.created_at), inv.invited_by, hash
                ],
            )
            .map_err(conflict_or_backend)?;
            tx.execute(
                "INSERT INTO invitation_tokens (hash, invitation_id) VALUES (?1, ?2)",
                params![hash, inv.id],
            )
            .map_err(backend)?;
            append(tx, &events)?;
            Ok(())
        })
        .await
    }

    async fn list_invitations(
        &self,
        org_id: &str,
        status: Option<InvitationStatus>,
        now: DateTime<Utc>,
        after: Option<PageKey>,
        limit: u32,
    ) -> Result<Vec<Invitation>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |conn| {
            let (at, id) = after.map_or((String::new(), String::new()), |k| (ts(k.at), k.id));
            // The status at `now`: a pending invitation past its expiry counts as expired.
            let condition = match status {
                None => "?5 = ?5",
                Some(InvitationStatus::Pending) => "i.status = 'pending' AND i.expires_at > ?5",
                Some(InvitationStatus::Expired) => {
                    "(i.status = 'expired' OR (i.status = 'pending' AND i.expires_at <= ?5))"
                }
                Some(InvitationStatus::Accepted) => "i.status = 'accepted' AND ?5 = ?5",
                Some(InvitationStatus::Revoked) => "i.status = 'revoked' AND ?5 = ?5",
            };
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM invitations i
                     WHERE i.organization_id = ?1 AND (i.created_at, i.id) > (?2, ?3) AND {condition}
                     ORDER BY i.created_at, i.id LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![org_id, at, id, limit, ts(now)], from_row)
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
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
        let (org_id, id, hash) = (org_id.to_owned(), id.to_owned(), token_hash.to_owned());
        let events = events.to_vec();
        self.write(move |tx, _| {
            let Some(inv) = invitation_in(tx, &org_id, &id)? else {
                return Ok(None);
            };
            inv.check_open().map_err(StoreError::Ended)?;
            check_invite(by, inv.role).map_err(StoreError::Rule)?;
            let expires_at = invitation_expiry(now, inv.valid_hours);
            tx.execute(
                "UPDATE invitations SET token_hash = ?2, expires_at = ?3, status = 'pending' WHERE id = ?1",
                params![id, hash, ts(expires_at)],
            )
            .map_err(conflict_or_backend)?;
            tx.execute(
                "INSERT INTO invitation_tokens (hash, invitation_id) VALUES (?1, ?2)",
                params![hash, id],
            )
            .map_err(backend)?;
            append(tx, &events)?;
            Ok(Some(Invitation {
                stored_status: InvitationStatus::Pending,
                expires_at,
                ..inv
            }))
        })
        .await
    }

    async fn revoke_invitation(
        &self,
        org_id: &str,
        id: &str,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let (org_id, id, events) = (org_id.to_owned(), id.to_owned(), events.to_vec());
        self.write(move |tx, _| {
            let Some(inv) = invitation_in(tx, &org_id, &id)? else {
                return Ok(false);
            };
            inv.check_open().map_err(StoreError::Ended)?;
            tx.execute(
                "UPDATE invitations SET status = 'revoked' WHERE id = ?1",
                [&id],
            )
            .map_err(backend)?;
            append(tx, &events)?;
            Ok(true)
        })
        .await
    }

    async fn invitation(&self, org_id: &str, id: &str) -> Result<Option<Invitation>, StoreError> {
        let (org_id, id) = (org_id.to_owned(), id.to_owned());
        self.read(move |conn| invitation_in(conn, &org_id, &id))
            .await
    }

    async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<InvitationToken>, StoreError> {
        let hash = token_hash.to_owned();
        self.read(move |conn| by_token(conn, &hash)).await
    }

    async fn accept_invitation(
        &self,
        id: &str,
        token_hash: &str,
        account: &AcceptingAccount,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> Result<Member, StoreError> {
        let (id, hash, account) = (id.to_owned(), token_hash.to_owned(), account.clone());
        let events = events.to_vec();
        self.write(move |tx, fp| {
            let found = by_token(tx, &hash)?
                .filter(|t| t.invitation.id == id)
                .ok_or(StoreError::Gone)?;
            found
                .invitation
                .check_usable(now, found.current)
                .map_err(StoreError::Ended)?;
            let inv = found.invitation;
            fp.hit("accept.after_claim");
            if let Some(password_hash) = &account.password_hash {
                tx.execute(
                    "INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![account.id, account.email, password_hash, ts(now)],
                )
                .map_err(conflict_or_backend)?;
            }
            fp.hit("accept.after_account");
            tx.execute(
                "INSERT INTO memberships (organization_id, account_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
                params![inv.organization_id, account.id, inv.role.as_str(), ts(now)],
            )
            .map_err(conflict_or_backend)?;
            fp.hit("accept.after_membership");
            tx.execute(
                "UPDATE invitations SET status = 'accepted', accepted_by = ?2 WHERE id = ?1",
                params![id, account.id],
            )
            .map_err(backend)?;
            append(tx, &events)?;
            member_in(tx, &inv.organization_id, &account.id)?.ok_or(StoreError::Gone)
        })
        .await
    }
}
