//! Domain types, parsed once at the edge ("parse, don't validate").
//!
//! Handlers turn request bodies into these types; everything below the handlers (storage,
//! tokens) takes only these, so an unchecked name, email or password cannot reach the store.
//! In particular [`OrgName`] is the only source of tenant collection names.

mod api_key;
mod audit;
mod document;
mod email;
mod filter;
mod invitation;
mod layout;
mod org_name;
mod organization;
mod page;
mod password;
mod team;

pub use api_key::{
    generate_key, hash_key, key_days, key_expiry, key_name, key_role, looks_like_key, touch_due,
    ApiKey, PresentedKey, StoredApiKey, MAX_API_KEYS, MAX_KEY_DAYS, MAX_KEY_NAME_CHARS,
};
pub use audit::{
    hash_of, AuditAction, AuditActor, AuditContext, AuditEvent, AuditTarget, ChainAnchor,
    ChainCheck, ChainHead, NewEvent, StoredEvent, TimeRange, Verification, GENESIS_HASH,
};
pub use document::{key_allowed, merge_patch, DocumentBody, StoredDocument, MAX_DEPTH};
pub use email::Email;
pub use filter::{Condition, Filter, Scalar, MAX_CONDITIONS};
pub use invitation::{
    invitation_expiry, invitation_hours, Invitation, InvitationEnd, InvitationStatus,
    DEFAULT_INVITATION_HOURS, MAX_INVITATION_HOURS,
};
pub use layout::TenantLayout;
pub use org_name::{is_tenant_collection, name_pattern, skeleton_of, OrgName};
pub use organization::{new_id, NewOrganization, Organization};
pub use page::{page_limit, PageKey, DEFAULT_LIMIT, MAX_LIMIT};
pub use password::{LoginPassword, Password};
pub use team::pick_membership;
pub use team::{
    check_invite, check_member_change, Account, Action, Member, MemberChange, MemberRole,
    Membership, Refusal,
};

/// Why a value was refused: the rule it broke, phrased for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// FastAPI-style error type, e.g. `string_too_short` or `value_error`.
    pub kind: &'static str,
    /// Human-readable rule that was broken.
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
