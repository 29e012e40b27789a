//! The store's operations, one trait per concern.
//!
//! Each trait is declared once, through [`role!`], which also implements it for
//! [`MeteredStore`]: timing is written once (in [`MeteredStore::measure`]), not once per
//! operation. A new concern (members, documents, audit, API keys) is one more `role!` block here
//! and one module per adapter that implements it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::metered::MeteredStore;
use super::{
    AcceptingAccount, AttemptWindow, AuditQuery, IdempotencyClaim, InvitationToken, LayoutChange,
    ReconcileReport, RefreshSpend, RefreshToken, StoreError,
};
use crate::domain::{
    Account, ApiKey, ChainAnchor, Filter, Invitation, InvitationStatus, Member, MemberChange,
    MemberRole, Membership, NewEvent, NewOrganization, OrgName, Organization, PageKey,
    StoredApiKey, StoredDocument, StoredEvent, TenantLayout,
};

/// Declares a role trait whose operations all return `Result<_, StoreError>`, and implements
/// it for [`MeteredStore`] by timing the wrapped store's operation under its own name.
macro_rules! role {
    (
        $(#[$doc:meta])*
        pub trait $role:ident {
            $(
                $(#[$op_doc:meta])*
                async fn $op:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> Result<$ok:ty, StoreError>;
            )*
        }
    ) => {
        $(#[$doc])*
        #[async_trait]
        pub trait $role: Send + Sync {
            $(
                $(#[$op_doc])*
                async fn $op(&self $(, $arg: $ty)*) -> Result<$ok, StoreError>;
            )*
        }

        #[async_trait]
        impl $role for MeteredStore {
            $(
                async fn $op(&self $(, $arg: $ty)*) -> Result<$ok, StoreError> {
                    self.measure(stringify!($op), self.0.$op($($arg),*)).await
                }
            )*
        }
    };
}

// Every operation that changes an organization takes the `events` that record the change
// (`&[]`: none) and stores them atomically with it: in the same transaction on the embedded
// store; on MongoDB staged before the change and published after it, a crash in between being
// settled by the reconciler by whether the change happened (`mongo/audit.rs`).

role! {
    /// Schema, health and repair.
    pub trait Maintenance {
        /// Creates tables/indexes if missing and brings older data to the current layout.
        /// Idempotent; run at every start-up.
        async fn migrate(&self) -> Result<(), StoreError>;

        /// A real read of the data (and on the embedded store a write lock taken and released),
        /// within the store timeout: what `/health` reports.
        async fn ping(&self) -> Result<(), StoreError>;

        /// Finishes or undoes operations interrupted more than `grace` ago, and removes expired
        /// throttle records. Safe to run at any time, from any number of instances.
        async fn reconcile(&self, grace: Duration) -> Result<ReconcileReport, StoreError>;

        /// Lists every inconsistency between organizations, admins, tenant data and
        /// reservations (empty when consistent). Used by tests and `org-service migrate`.
        async fn consistency_problems(&self) -> Result<Vec<String>, StoreError>;

        /// Moves every tenant's documents to the `to` layout (`org-service migrate
        /// --tenant-layout`): nothing lost or duplicated, resumable after a crash at any point,
        /// [`StoreError::Refused`] while an instance serves.
        async fn change_tenant_layout(&self, to: TenantLayout) -> Result<LayoutChange, StoreError>;
    }
}

role! {
    /// Organizations and the accounts that log in to them.
    pub trait Organizations {
        /// Creates the organization, its owner's membership (and account, unless it exists)
        /// and its tenant collection, all or nothing. A taken slug or email is
        /// [`StoreError::Conflict`]; an existing owner account that vanished meanwhile
        /// [`StoreError::Gone`].
        async fn create_organization(&self, new: &NewOrganization, events: &[NewEvent]) -> Result<Organization, StoreError>;

        /// The (fully created) organization with this slug.
        async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError>;

        /// The (fully created) organization with this id.
        async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, StoreError>;

        /// The account with this normalized email.
        async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;

        /// The account with this id.
        async fn account_by_id(&self, id: &str) -> Result<Option<Account>, StoreError>;

        /// Renames the organization. Its tenant data keeps its place or moves with the slug
        /// (a rename of the collection, never a copy), depending on the layout. A taken slug is
        /// a conflict; a vanished organization [`StoreError::Gone`].
        async fn rename_organization(&self, id: &str, new_name: &OrgName, at: DateTime<Utc>, events: &[NewEvent]) -> Result<Organization, StoreError>;

        /// Removes the organization, its memberships, invitations and tenant data, and every
        /// account left with no membership. `Ok(false)` if absent.
        async fn delete_organization(&self, id: &str, events: &[NewEvent]) -> Result<bool, StoreError>;

        /// Number of fully created organizations.
        async fn count_organizations(&self) -> Result<u64, StoreError>;
    }
}

role! {
    /// Passwords, token versions and refresh-token chains.
    pub trait Sessions {
        /// Replaces the admin's password hash, bumps their token version (every access token
        /// dies) and deletes their refresh tokens. Returns the new version; [`StoreError::Gone`]
        /// if the admin is gone.
        async fn change_password(&self, admin_id: &str, password_hash: &str, events: &[NewEvent]) -> Result<i64, StoreError>;

        /// Replaces the admin's password hash with the same password hashed at another cost, if
        /// it is still `old_hash` (a concurrent password change wins). Sessions are untouched:
        /// the password did not change. `Ok(false)` when nothing was replaced.
        async fn upgrade_password_hash(&self, admin_id: &str, old_hash: &str, new_hash: &str) -> Result<bool, StoreError>;

        /// Bumps the admin's token version and deletes their refresh tokens (log out everywhere).
        async fn revoke_sessions(&self, admin_id: &str, events: &[NewEvent]) -> Result<i64, StoreError>;

        /// Stores a new refresh token (by hash). [`StoreError::Revoked`] if its chain was
        /// revoked meanwhile (or the token exists already).
        async fn insert_refresh_token(&self, token: &RefreshToken, events: &[NewEvent]) -> Result<(), StoreError>;

        /// Marks the token with this hash spent, atomically: of concurrent spends of one token,
        /// exactly one is `Fresh`.
        async fn spend_refresh_token(&self, hash: &str, now: DateTime<Utc>) -> Result<RefreshSpend, StoreError>;

        /// Revokes a rotation chain: its tokens stop working and no new token can join it.
        async fn revoke_refresh_family(&self, family_id: &str, events: &[NewEvent]) -> Result<(), StoreError>;
    }
}

role! {
    /// The per-account login throttle.
    pub trait Throttle {
        /// Counts one login attempt for `key` in the current window (a window is `window` long
        /// from its first attempt; an expired one restarts). At most `limit` attempts are
        /// counted per window, atomically even under concurrency and across instances; an
        /// attempt beyond that is not counted and reported as `limit + 1`.
        async fn register_login_attempt(&self, key: &str, now: DateTime<Utc>, window: Duration, limit: u32) -> Result<AttemptWindow, StoreError>;

        /// Forgets the attempts counted for `key` (after a successful login).
        async fn clear_login_attempts(&self, key: &str) -> Result<(), StoreError>;
    }
}

role! {
    /// The organization's own documents.
    pub trait TenantData {
        /// Adds JSON documents to the organization's tenant data (demo data, tests, benchmarks).
        async fn insert_tenant_documents(&self, org: &Organization, documents: Vec<serde_json::Value>) -> Result<u64, StoreError>;

        /// Number of the organization's documents.
        async fn count_tenant_documents(&self, org: &Organization) -> Result<u64, StoreError>;
    }
}

role! {
    /// Remembered responses for `Idempotency-Key`.
    pub trait Idempotency {
        /// Claims the idempotency `scope` for a request with this `fingerprint`, atomically
        /// across instances. A running claim older than `running_ttl` (its process died) and a
        /// finished one older than [`super::IDEMPOTENCY_KEEP`] count as absent.
        async fn begin_idempotent(&self, scope: &str, fingerprint: &str, running_ttl: Duration) -> Result<IdempotencyClaim, StoreError>;

        /// Stores the sealed response of the request that holds `scope`.
        async fn finish_idempotent(&self, scope: &str, sealed: &[u8]) -> Result<(), StoreError>;

        /// Gives up a running claim (the response is not to be replayed: a 5xx or a 429).
        async fn abandon_idempotent(&self, scope: &str) -> Result<(), StoreError>;
    }
}

role! {
    /// Memberships: who belongs to which organization, with which role.
    pub trait Members {
        /// The account's memberships in fully created organizations, oldest first.
        async fn memberships_of(&self, account_id: &str) -> Result<Vec<Membership>, StoreError>;

        /// The account's membership in the organization, if any.
        async fn member(&self, org_id: &str, account_id: &str) -> Result<Option<Member>, StoreError>;

        /// The email of the organization's longest-standing owner (earliest joined): what the
        /// API shows as `admin_email`. Read only where an organization is shown, not by the
        /// guard (on FerretDB it is a scan).
        async fn owner_email(&self, org_id: &str) -> Result<Option<String>, StoreError>;

        /// The organization's members by `(joined_at, account id)`, from after `after`.
        async fn list_members(&self, org_id: &str, after: Option<PageKey>, limit: u32) -> Result<Vec<Member>, StoreError>;

        /// Changes or removes the membership of `target`, acting as `actor`, deciding with
        /// [`crate::domain::check_member_change`] on the roles and owner count as they are at
        /// that moment, atomically (two owners demoting each other: at most one succeeds).
        /// Returns the changed member (`None` when removed); a refusal is
        /// [`StoreError::Rule`], an absent target [`StoreError::Gone`]. A removed member's
        /// refresh tokens for the organization go, and an account left with no membership is
        /// deleted.
        async fn change_member(&self, org_id: &str, actor: &str, target: &str, change: MemberChange, events: &[NewEvent]) -> Result<Option<Member>, StoreError>;
    }
}

role! {
    /// Invitations to join an organization.
    pub trait Invitations {
        /// Stores a new invitation with the hash of its token. An email that is a member, or
        /// has a pending unexpired invitation to the organization, is [`StoreError::Conflict`].
        async fn create_invitation(&self, invitation: &Invitation, token_hash: &str, events: &[NewEvent]) -> Result<(), StoreError>;

        /// The organization's invitations by `(created_at, id)`, from after `after`, only
        /// those with `status` at `now` if given.
        async fn list_invitations(&self, org_id: &str, status: Option<InvitationStatus>, now: DateTime<Utc>, after: Option<PageKey>, limit: u32) -> Result<Vec<Invitation>, StoreError>;

        /// Gives a pending (possibly expired) invitation a new token and expiry; the old token
        /// dies. `Ok(None)` if there is no such invitation; an accepted or revoked one is
        /// [`StoreError::Ended`]; one whose role `by` may not invite is [`StoreError::Rule`].
        async fn reissue_invitation(&self, org_id: &str, id: &str, token_hash: &str, now: DateTime<Utc>, by: MemberRole, events: &[NewEvent]) -> Result<Option<Invitation>, StoreError>;

        /// Revokes a pending invitation. `Ok(false)` if there is none with this id; an accepted
        /// or revoked one is [`StoreError::Ended`].
        async fn revoke_invitation(&self, org_id: &str, id: &str, events: &[NewEvent]) -> Result<bool, StoreError>;

        /// The organization's invitation with this id.
        async fn invitation(&self, org_id: &str, id: &str) -> Result<Option<Invitation>, StoreError>;

        /// The invitation a token (current or superseded by a resend) belongs to.
        async fn invitation_by_token(&self, token_hash: &str) -> Result<Option<InvitationToken>, StoreError>;

        /// Accepts the invitation `id` with a token of this hash, once: of concurrent accepts
        /// exactly one succeeds, the others see [`StoreError::Ended`] (as does a token that is
        /// not the current one, or an invitation no longer pending). Creates the account when
        /// `account.password_hash` is given. Returns the new membership.
        async fn accept_invitation(&self, id: &str, token_hash: &str, account: &AcceptingAccount, now: DateTime<Utc>, events: &[NewEvent]) -> Result<Member, StoreError>;
    }
}

role! {
    /// The organization's documents, one at a time, through the API.
    pub trait Documents {
        /// Stores a new document with version 1, unless the organization holds `max_documents`
        /// already ([`StoreError::Quota`]); [`StoreError::Gone`] if the organization is.
        async fn insert_document(&self, org: &Organization, id: &str, data: &serde_json::Map<String, serde_json::Value>, at: DateTime<Utc>, max_documents: u64) -> Result<StoredDocument, StoreError>;

        /// The organization's document with this id.
        async fn get_document(&self, org: &Organization, id: &str) -> Result<Option<StoredDocument>, StoreError>;

        /// Replaces the document's data (`Some`) or deletes it (`None`), if its version is still
        /// `expected` ([`StoreError::Precondition`] otherwise), atomically: of concurrent writes
        /// conditioned on one version exactly one succeeds. [`StoreError::Gone`] if there is no
        /// such document. Returns the new document (`None` when deleted).
        async fn write_document(&self, org: &Organization, id: &str, expected: i64, data: Option<&serde_json::Map<String, serde_json::Value>>, at: DateTime<Utc>) -> Result<Option<StoredDocument>, StoreError>;

        /// The documents matching `filter`, oldest first, from after the document `after`.
        async fn list_documents(&self, org: &Organization, filter: &Filter, after: Option<String>, limit: u32) -> Result<Vec<StoredDocument>, StoreError>;

        /// How many documents match `filter`.
        async fn count_documents(&self, org: &Organization, filter: &Filter) -> Result<u64, StoreError>;
    }
}

role! {
    /// API keys: machine credentials of an organization's documents.
    pub trait ApiKeys {
        /// Stores a new key (its record and hash) unless the organization holds `max_keys`
        /// already ([`StoreError::Quota`]), atomically with that count. [`StoreError::Gone`] if
        /// the organization is; [`StoreError::Conflict`] if the prefix is taken (the caller
        /// makes another key).
        async fn create_api_key(&self, key: &ApiKey, hash: &str, max_keys: u64, events: &[NewEvent]) -> Result<(), StoreError>;

        /// The organization's keys, oldest first.
        async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKey>, StoreError>;

        /// Deletes the organization's key `id`: it stops working at the next request. `Ok(false)`
        /// if there is none.
        async fn revoke_api_key(&self, org_id: &str, id: &str, events: &[NewEvent]) -> Result<bool, StoreError>;

        /// The key with this prefix, with its hash: one keyed read, what authenticates a key.
        async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError>;

        /// Records a use of key `id` at `at` as its `last_used_at`, unless a later one is
        /// recorded. Callers write at most once a minute per key (see
        /// [`crate::domain::touch_due`]), not once per request.
        async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    }
}

role! {
    /// The audit log: each organization's chain of events. Changes record their events
    /// through their own operation (atomically with the change); these are the rest.
    pub trait Audit {
        /// Appends events that go with no other change (a failed login), each to its
        /// organization's chain.
        async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;

        /// The organization's events matching `query`, newest first.
        async fn list_events(&self, org_id: &str, query: &AuditQuery) -> Result<Vec<StoredEvent>, StoreError>;

        /// Up to `limit` of the organization's events after sequence `after`, oldest first,
        /// that occurred at or after `since` and before `until` (export and verification).
        async fn events_after(&self, org_id: &str, after: i64, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

        /// Where the organization's remaining chain starts (after its pruned events).
        async fn chain_anchor(&self, org_id: &str) -> Result<ChainAnchor, StoreError>;

        /// Deletes every chain's events up to its newest one that occurred before `before`,
        /// recording that one as the chain's anchor, so what remains still verifies. Returns
        /// how many went.
        async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

        /// Every organization with events (deleted ones included), with the slug its latest
        /// event names: for the operator's command line.
        async fn audited_organizations(&self) -> Result<Vec<(String, String)>, StoreError>;
    }
}
