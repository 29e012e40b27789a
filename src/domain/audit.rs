//! The audit log: what happened to an organization, by whom, from where, chained so that an
//! edited, deleted or inserted event shows.
//!
//! Each organization has its own chain. An event's `sequence` is one more than the previous
//! one's (1, 2, 3, …, gapless), its `prev_hash` is the previous event's `hash` (64 zeros for the
//! first), and its `hash` is the lowercase hex SHA-256 of the RFC 8785 (JCS) serialization of
//! the event without its `hash` field. Stores keep each event as that JSON text, so what is
//! verified is exactly what was hashed. Pruning old events records the last pruned event's
//! `(sequence, hash)` as the chain's anchor, so what remains still verifies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Invalid;

/// The `prev_hash` of an organization's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    OrganizationCreated,
    OrganizationRenamed,
    OrganizationDeleted,
    MemberInvited,
    InvitationResent,
    InvitationRevoked,
    InvitationAccepted,
    RoleChanged,
    MemberRemoved,
    MemberLeft,
    ApiKeyCreated,
    ApiKeyRevoked,
    LoginSucceeded,
    LoginFailed,
    PasswordChanged,
    SessionsRevoked,
    RefreshReuseDetected,
}

impl AuditAction {
    /// Every action, in the contract's order.
    pub const ALL: [AuditAction; 17] = [
        Self::OrganizationCreated,
        Self::OrganizationRenamed,
        Self::OrganizationDeleted,
        Self::MemberInvited,
        Self::InvitationResent,
        Self::InvitationRevoked,
        Self::InvitationAccepted,
        Self::RoleChanged,
        Self::MemberRemoved,
        Self::MemberLeft,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::PasswordChanged,
        Self::SessionsRevoked,
        Self::RefreshReuseDetected,
    ];

    /// The action's name in events and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationCreated => "organization.created",
            Self::OrganizationRenamed => "organization.renamed",
            Self::OrganizationDeleted => "organization.deleted",
            Self::MemberInvited => "member.invited",
            Self::InvitationResent => "member.invitation_resent",
            Self::InvitationRevoked => "member.invitation_revoked",
            Self::InvitationAccepted => "member.invitation_accepted",
            Self::RoleChanged => "member.role_changed",
            Self::MemberRemoved => "member.removed",
            Self::MemberLeft => "member.left",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::PasswordChanged => "password.changed",
            Self::SessionsRevoked => "sessions.revoked",
            Self::RefreshReuseDetected => "refresh.reuse_detected",
        }
    }

    /// Parses an action name (exact).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "enum",
                    "Input should be an audit action, e.g. 'member.invited'",
                )
            })
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditActor {
    /// `account`, `api_key` or `system`.
    #[serde(rename = "type")]
    #[schema(example = "account")]
    pub kind: String,
    /// The account's or key's id (`system`: the component, e.g. `reconciler`).
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub id: String,
    /// The account's email, for accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "admin@acme.com")]
    pub email: Option<String>,
}

impl AuditActor {
    /// A person.
    pub fn account(id: &str, email: &str) -> Self {
        Self {
            kind: "account".into(),
            id: id.into(),
            email: Some(email.into()),
        }
    }

    /// The service itself.
    pub fn system(component: &str) -> Self {
        Self {
            kind: "system".into(),
            id: component.into(),
            email: None,
        }
    }
}

/// What was acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditTarget {
    /// `organization`, `account`, `invitation` or `api_key`.
    #[serde(rename = "type")]
    #[schema(example = "account")]
    pub kind: String,
    /// Its id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e3")]
    pub id: String,
    /// Its name or email.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "bo@acme.com")]
    pub name: Option<String>,
}

impl AuditTarget {
    /// A target of `kind` with an id and a name.
    pub fn new(kind: &str, id: &str, name: Option<&str>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            name: name.map(str::to_owned),
        }
    }
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditContext {
    /// The client's address (through the trusted-proxy rule).
    #[schema(example = "203.0.113.7")]
    pub ip: String,
    /// Its `User-Agent`, cut to 256 characters.
    #[schema(example = "curl/8.5.0")]
    pub user_agent: Option<String>,
    /// The request's `X-Request-Id`.
    #[schema(example = "3f2b8c1e-9d4a-4c6b-8e2f-1a7d5c9b0e4f")]
    pub request_id: Option<String>,
}

/// Longest `User-Agent` kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

impl AuditContext {
    /// The context of a request, its user agent cut to [`MAX_USER_AGENT_CHARS`].
    pub fn new(ip: String, user_agent: Option<&str>, request_id: Option<&str>) -> Self {
        Self {
            ip,
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
            request_id: request_id.map(str::to_owned),
        }
    }
}

/// An event before it joins its organization's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Its id (unique across all organizations).
    pub id: String,
    /// The organization whose chain it joins.
    pub organization_id: String,
    /// The organization's slug at the time. Not part of the event: it lets an operator find a
    /// deleted organization's events by name.
    pub organization_slug: String,
    /// What happened.
    pub action: AuditAction,
    /// When (RFC 3339, UTC, milliseconds).
    pub occurred_at: DateTime<Utc>,
    /// Who did it.
    pub actor: AuditActor,
    /// What to.
    pub target: AuditTarget,
    /// From where.
    pub context: AuditContext,
    /// Action-specific facts (never a secret).
    pub details: Map<String, Value>,
}

/// A chained event, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Its position in the organization's chain (1, 2, 3, …).
    pub sequence: i64,
    /// Its JSON, `hash` included, exactly as hashed.
    pub json: String,
    /// The event's fields.
    pub event: NewEvent,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

fn to_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl NewEvent {
    /// An event of `action` in the organization `(id, slug)`, now, with a new id.
    pub fn new(
        organization: (&str, &str),
        action: AuditAction,
        actor: AuditActor,
        target: AuditTarget,
        context: &AuditContext,
        details: Map<String, Value>,
    ) -> Self {
        Self {
            id: super::new_id(),
            organization_id: organization.0.to_owned(),
            organization_slug: organization.1.to_owned(),
            action,
            occurred_at: Utc::now(),
            actor,
            target,
            context: context.clone(),
            details,
        }
    }

    /// The event as JSON without `hash`: what is hashed.
    fn unhashed(&self, sequence: i64, prev_hash: &str) -> Value {
        serde_json::json!({
            "id": self.id,
            "sequence": sequence,
            "organization_id": self.organization_id,
            "action": self.action.as_str(),
            "occurred_at": to_rfc3339(self.occurred_at),
            "actor": self.actor,
            "target": self.target,
            "context": self.context,
            "details": self.details,
            "prev_hash": prev_hash,
        })
    }

    /// The event as the `sequence`-th of its chain, after an event whose hash is `prev_hash`.
    pub fn chain(self, sequence: i64, prev_hash: &str) -> AuditEvent {
        let mut value = self.unhashed(sequence, prev_hash);
        let hash = hash_of(&value);
        value["hash"] = Value::String(hash.clone());
        AuditEvent {
            sequence,
            json: value.to_string(),
            event: self,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// Lowercase hex SHA-256 of the JCS serialization of `value`.
pub fn hash_of(value: &Value) -> String {
    let canonical = serde_jcs::to_vec(value).expect("a JSON value serializes");
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Events that occurred at or after `since` and before `until` (each bound optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
}

/// A stored event as read back for checking: its sequence and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The sequence the store files it under.
    pub sequence: i64,
    /// Its JSON as stored.
    pub json: String,
}

/// Where a chain's remaining events start: after the last pruned event (or at the beginning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAnchor {
    /// The last pruned event's sequence (0: nothing pruned).
    pub sequence: i64,
    /// Its hash ([`GENESIS_HASH`]: nothing pruned).
    pub hash: String,
}

impl Default for ChainAnchor {
    fn default() -> Self {
        Self {
            sequence: 0,
            hash: GENESIS_HASH.into(),
        }
    }
}

/// The chain's last event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainHead {
    /// Its sequence.
    pub sequence: i64,
    /// Its hash.
    pub hash: String,
}

/// What checking a chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    /// True when every event is intact and in place.
    pub ok: bool,
    /// Events read.
    pub events_checked: u64,
    /// The last event (null for an empty chain): record it elsewhere to notice a rewritten
    /// chain later.
    pub head: Option<ChainHead>,
    /// The first event that is not what the chain says it should be.
    pub first_bad_sequence: Option<i64>,
}

/// Checks events one at a time, in sequence order, from an anchor.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    organization_id: String,
    expected_sequence: i64,
    prev_hash: String,
    checked: u64,
    first_bad: Option<i64>,
    head: Option<ChainHead>,
}

impl ChainCheck {
    /// A check of `organization_id`'s chain from `anchor`.
    pub fn new(organization_id: &str, anchor: ChainAnchor) -> Self {
        Self {
            organization_id: organization_id.into(),
            expected_sequence: anchor.sequence + 1,
            prev_hash: anchor.hash,
            checked: 0,
            first_bad: None,
            head: None,
        }
    }

    /// Checks the next stored event: its place, its link to the previous one, its hash.
    pub fn push(&mut self, stored: &StoredEvent) {
        self.checked += 1;
        let bad_at = self.expected_sequence.min(stored.sequence);
        let intact = intact_hash(stored, &self.organization_id);
        let linked = intact
            .as_ref()
            .is_some_and(|(_, prev)| *prev == self.prev_hash);
        if stored.sequence != self.expected_sequence || !linked {
            self.first_bad.get_or_insert(bad_at);
        }
        if let Some((hash, _)) = intact {
            self.prev_hash = hash;
        }
        self.head = Some(ChainHead {
            sequence: stored.sequence,
            hash: self.prev_hash.clone(),
        });
        self.expected_sequence = stored.sequence + 1;
    }

    /// The result.
    pub fn finish(self) -> Verification {
        Verification {
            ok: self.first_bad.is_none(),
            events_checked: self.checked,
            head: self.head,
            first_bad_sequence: self.first_bad,
        }
    }
}

/// The event's own hash and its `prev_hash`, if its JSON is an event of this organization at
/// its stored sequence whose `hash` is the hash of the rest.
fn intact_hash(stored: &StoredEvent, organization_id: &str) -> Option<(String, String)> {
    let mut value: Value = serde_json::from_str(&stored.json).ok()?;
    let object = value.as_object_mut()?;
    let hash = object.remove("hash")?.as_str()?.to_owned();
    let prev = object.get("prev_hash")?.as_str()?.to_owned();
    let in_place = object.get("sequence")?.as_i64()? == stored.sequence
        && object.get("organization_id")?.as_str()? == organization_id;
    (in_place && hash_of(&value) == hash).then_some((hash, prev))
}

#[cfg(test)]
mod tests;
