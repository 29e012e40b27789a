//! Memberships on the embedded store. A change is one transaction that reads the roles and the
//! owner count and writes the change, so two owners demoting each other are serialized by
//! SQLite's single writer: the second sees one owner left and is refused.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::audit::append;
use super::codec::{backend, member_from_row, parse_ts, role_from, ts, MEMBER_COLUMNS};
use super::EmbeddedStore;
use crate::domain::{check_member_change, Member, MemberChange, Membership, NewEvent, PageKey};
use crate::storage::{Members, StoreError};

pub(super) fn member_in(
    conn: &Connection,
    org_id: &str,
    account_id: &str,
) -> Result<Option<Member>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.organization_id = ?1 AND m.account_id = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![org_id, account_id], member_from_row)
            .optional()
    })
    .map_err(backend)
}

/// Deletes the account if it has no membership left (an account exists only to belong).
pub(super) fn drop_if_unattached(conn: &Connection, account_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM accounts WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM memberships WHERE account_id = ?1)",
        [account_id],
    )
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl Members for EmbeddedStore {
    async fn memberships_of(&self, account_id: &str) -> Result<Vec<Membership>, StoreError> {
        let account_id = account_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.organization_id, o.name, m.role, m.joined_at
                     FROM memberships m JOIN organizations o ON o.id = m.organization_id
                     WHERE m.account_id = ?1 ORDER BY m.joined_at, m.organization_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([&account_id], |r| {
                    Ok(Membership {
                        organization_id: r.get(0)?,
                        organization_name: r.get(1)?,
                        role: role_from(&r.get::<_, String>(2)?)?,
                        joined_at: parse_ts(&r.get::<_, String>(3)?)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn owner_email(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id
                 WHERE m.organization_id = ?1 AND m.role = 'owner'
                 ORDER BY m.joined_at, m.account_id LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row([&org_id], |r| r.get(0)).optional())
            .map_err(backend)
        })
        .await
    }

    async fn member(&self, org_id: &str, account_id: &str) -> Result<Option<Member>, StoreError> {
        let (org_id, account_id) = (org_id.to_owned(), account_id.to_owned());
        self.read(move |conn| member_in(conn, &org_id, &account_id))
            .await
    }

    async fn list_members(
        &self,
        org_id: &str,
        after: Option<PageKey>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |conn| {
            // No cursor: start before every real key.
            let (at, id) = after.map_or((String::new(), String::new()), |k| (ts(k.at), k.id));
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN accounts a ON a.id = m.account_id
                     WHERE m.organization_id = ?1 AND (m.joined_at, m.account_id) > (?2, ?3)
                     ORDER BY m.joined_at, m.account_id LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![org_id, at, id, limit], member_from_row)
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn change_member(
        &self,
        org_id: &str,
        actor: &str,
        target: &str,
        change: MemberChange,
        events: &[NewEvent],
    ) -> Result<Option<Member>, StoreError> {
        let (org_id, actor, target) = (org_id.to_owned(), actor.to_owned(), target.to_owned());
        let events = events.to_vec();
        self.write(move |tx, fp| {
            let actor_role = member_in(tx, &org_id, &actor)?
                .ok_or(StoreError::Rule(crate::domain::Refusal::Forbidden))?
                .role;
            let member = member_in(tx, &org_id, &target)?.ok_or(StoreError::Gone)?;
            let owners: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM memberships WHERE organization_id = ?1 AND role = 'owner'",
                    [&org_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            check_member_change(
                actor_role,
                actor == target,
                member.role,
                change,
                owners.max(0) as u64,
            )
            .map_err(StoreError::Rule)?;
            fp.hit("member.after_check");
            append(tx, &events)?;
            match change {
                MemberChange::Role(role) => {
                    tx.execute(
                        "UPDATE memberships SET role = ?3 WHERE organization_id = ?1 AND account_id = ?2",
                        params![org_id, target, role.as_str()],
                    )
                    .map_err(backend)?;
                    Ok(Some(Member { role, ..member }))
                }
                MemberChange::Remove => {
                    // `accepted_by` names the membership an invitation made while it lasts.
                    tx.execute(
                        "UPDATE invitations SET accepted_by = NULL WHERE organization_id = ?1 AND accepted_by = ?2",
                        params![org_id, target],
                    )
                    .map_err(backend)?;
                    tx.execute(
                        "DELETE FROM memberships WHERE organization_id = ?1 AND account_id = ?2",
                        params![org_id, target],
                    )
                    .map_err(backend)?;
                    fp.hit("member.after_remove");
                    tx.execute(
                        "DELETE FROM refresh_tokens WHERE admin_id = ?1 AND organization_id = ?2",
                        params![target, org_id],
                    )
                    .map_err(backend)?;
                    drop_if_unattached(tx, &target)?;
                    Ok(None)
                }
            }
        })
        .await
    }
}
