//! The audit events requests record: who (the caller), what (the target, as the contract
//! names it), where from (the request's context). Built here, stored by the operation that
//! makes the change, atomically with it. Never a secret: no password, token, key or hash.

use serde_json::{json, Map, Value};

use crate::domain::{
    ApiKey, AuditAction, AuditActor, AuditContext, AuditTarget, Invitation, Membership, NewEvent,
    OrgName, Organization,
};
use crate::extract::AuthAdmin;

fn details(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The calling account.
pub fn caller(auth: &AuthAdmin) -> AuditActor {
    AuditActor::account(&auth.admin.id, &auth.admin.email)
}

/// An event on the organization itself (created, renamed, deleted).
pub fn organization(
    org: &Organization,
    action: AuditAction,
    actor: AuditActor,
    context: &AuditContext,
    facts: Value,
) -> NewEvent {
    NewEvent::new(
        (&org.id, &org.slug),
        action,
        actor,
        AuditTarget::new("organization", &org.id, Some(&org.name)),
        context,
        details(facts),
    )
}

/// An event on a member (role changed, removed, left).
pub fn member(
    org: &Organization,
    action: AuditAction,
    actor: AuditActor,
    context: &AuditContext,
    (account_id, email): (&str, &str),
    facts: Value,
) -> NewEvent {
    NewEvent::new(
        (&org.id, &org.slug),
        action,
        actor,
        AuditTarget::new("account", account_id, Some(email)),
        context,
        details(facts),
    )
}

/// An event on an invitation (invited, re-sent, revoked, accepted).
pub fn invitation(
    org: (&str, &str),
    action: AuditAction,
    actor: AuditActor,
    context: &AuditContext,
    inv: &Invitation,
) -> NewEvent {
    NewEvent::new(
        org,
        action,
        actor,
        AuditTarget::new("invitation", &inv.id, Some(&inv.email)),
        context,
        details(json!({ "role": inv.role.as_str() })),
    )
}

/// An event on an API key (created, revoked).
pub fn api_key(
    org: &Organization,
    action: AuditAction,
    actor: AuditActor,
    context: &AuditContext,
    key: &ApiKey,
) -> NewEvent {
    NewEvent::new(
        (&org.id, &org.slug),
        action,
        actor,
        AuditTarget::new("api_key", &key.id, Some(&key.name)),
        context,
        details(json!({ "role": key.role.as_str(), "prefix": key.prefix })),
    )
}

/// An account event (login, password change, logout, a reused refresh token), once in each
/// organization the account belongs to.
pub fn account(
    memberships: &[Membership],
    action: AuditAction,
    (account_id, email): (&str, &str),
    context: &AuditContext,
    facts: Value,
) -> Vec<NewEvent> {
    memberships
        .iter()
        .map(|m| {
            // The stored name passed the name rule once; its slug is what operators search.
            let slug = OrgName::parse(&m.organization_name)
                .map(|n| n.slug().to_owned())
                .unwrap_or_default();
            NewEvent::new(
                (&m.organization_id, &slug),
                action,
                AuditActor::account(account_id, email),
                AuditTarget::new("account", account_id, Some(email)),
                context,
                details(facts.clone()),
            )
        })
        .collect()
}
