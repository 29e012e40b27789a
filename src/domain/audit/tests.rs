use super::*;
use serde_json::json;

fn at(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn event(n: i64) -> NewEvent {
    NewEvent {
        id: format!("e{n}"),
        organization_id: "org".into(),
        organization_slug: "acme".into(),
        action: AuditAction::MemberInvited,
        occurred_at: at(n),
        actor: AuditActor::account("a1", "o@acme.com"),
        target: AuditTarget::new("invitation", &format!("i{n}"), Some("bo@acme.com")),
        context: AuditContext::new("203.0.113.7".into(), Some("curl/8"), Some("r1")),
        details: Map::from_iter([("role".to_owned(), json!("member"))]),
    }
}

/// A chain of `n` events, as a store would hold them.
fn chain(n: i64) -> Vec<StoredEvent> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=n)
        .map(|i| {
            let e = event(i).chain(i, &prev);
            prev = e.hash.clone();
            StoredEvent {
                sequence: e.sequence,
                json: e.json,
            }
        })
        .collect()
}

fn verify(events: &[StoredEvent], anchor: ChainAnchor) -> Verification {
    let mut check = ChainCheck::new("org", anchor);
    for e in events {
        check.push(e);
    }
    check.finish()
}

#[test]
fn the_hash_is_sha256_of_the_jcs_serialization() {
    // JCS: keys sorted by UTF-16 code units, no whitespace, non-ASCII as UTF-8.
    assert_eq!(
        hash_of(&json!({"c": {"y": 2.5, "x": "é"}, "b": [true, null], "a": 1})),
        "ac5176822575472b0b0dfc4815bc2728408c98b545171b7e88b0733918dc0aa8"
    );
}

#[test]
fn an_event_carries_every_field_and_hashes_itself_without_its_hash() {
    let e = event(1).chain(1, GENESIS_HASH);
    let value: Value = serde_json::from_str(&e.json).unwrap();
    let mut fields: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "action",
            "actor",
            "context",
            "details",
            "hash",
            "id",
            "occurred_at",
            "organization_id",
            "prev_hash",
            "sequence",
            "target"
        ]
    );
    assert_eq!(value["action"], "member.invited");
    assert_eq!(value["occurred_at"], "2027-01-15T08:00:01.000Z");
    assert_eq!(
        value["actor"],
        json!({"type": "account", "id": "a1", "email": "o@acme.com"})
    );
    assert_eq!(
        value["target"],
        json!({"type": "invitation", "id": "i1", "name": "bo@acme.com"})
    );
    assert_eq!(
        value["context"],
        json!({"ip": "203.0.113.7", "user_agent": "curl/8", "request_id": "r1"})
    );
    assert_eq!(value["prev_hash"], GENESIS_HASH);
    assert_eq!(value["sequence"], 1);
    let mut without = value.clone();
    without.as_object_mut().unwrap().remove("hash");
    assert_eq!(value["hash"], hash_of(&without));
    assert_eq!(e.hash, hash_of(&without));
    assert_eq!(e.hash.len(), 64);
    assert_ne!(
        event(1).chain(1, &e.hash).hash,
        e.hash,
        "prev_hash is hashed"
    );
    assert_ne!(
        event(1).chain(2, GENESIS_HASH).hash,
        e.hash,
        "the sequence is hashed"
    );
    let system = AuditActor::system("reconciler");
    assert_eq!(
        serde_json::to_value(&system).unwrap(),
        json!({"type": "system", "id": "reconciler"})
    );
}

#[test]
fn an_intact_chain_verifies_with_its_head() {
    let events = chain(5);
    let last: Value = serde_json::from_str(&events[4].json).unwrap();
    assert_eq!(
        verify(&events, ChainAnchor::default()),
        Verification {
            ok: true,
            events_checked: 5,
            head: Some(ChainHead {
                sequence: 5,
                hash: last["hash"].as_str().unwrap().to_owned()
            }),
            first_bad_sequence: None,
        }
    );
    assert_eq!(
        verify(&[], ChainAnchor::default()),
        Verification {
            ok: true,
            events_checked: 0,
            head: None,
            first_bad_sequence: None
        }
    );
}

#[test]
fn an_edited_event_is_the_first_bad_one() {
    let mut events = chain(5);
    events[2].json = events[2].json.replace("bo@acme.com", "eve@acme.com");
    let v = verify(&events, ChainAnchor::default());
    assert_eq!(
        (v.ok, v.first_bad_sequence, v.events_checked),
        (false, Some(3), 5)
    );
    // Re-hashing the edited event does not help: the next one no longer links to it.
    let mut events = chain(5);
    let mut forged: Value = serde_json::from_str(&events[2].json).unwrap();
    forged["target"]["name"] = json!("eve@acme.com");
    forged.as_object_mut().unwrap().remove("hash");
    forged["hash"] = json!(hash_of(&forged));
    events[2].json = forged.to_string();
    assert_eq!(
        verify(&events, ChainAnchor::default()).first_bad_sequence,
        Some(4)
    );
}

#[test]
fn deleted_inserted_and_misplaced_events_show() {
    let mut deleted = chain(5);
    deleted.remove(2);
    assert_eq!(
        verify(&deleted, ChainAnchor::default()).first_bad_sequence,
        Some(3)
    );
    let mut last_gone = chain(5);
    last_gone.pop();
    assert!(
        verify(&last_gone, ChainAnchor::default()).ok,
        "a truncated end needs the recorded head"
    );

    let mut inserted = chain(5);
    let mut extra = inserted[1].clone();
    extra.sequence = 3;
    inserted.insert(2, extra);
    for (i, e) in inserted.iter_mut().enumerate().skip(3) {
        e.sequence = i as i64 + 1;
    }
    assert_eq!(
        verify(&inserted, ChainAnchor::default()).first_bad_sequence,
        Some(3)
    );

    let mut other_org = chain(2);
    other_org[1].json = other_org[1].json.replace(
        "\"organization_id\":\"org\"",
        "\"organization_id\":\"other\"",
    );
    assert_eq!(
        verify(&other_org, ChainAnchor::default()).first_bad_sequence,
        Some(2)
    );
    let mut not_json = chain(2);
    not_json[0].json = "{".into();
    assert_eq!(
        verify(&not_json, ChainAnchor::default()).first_bad_sequence,
        Some(1)
    );
    let mut no_prev = chain(1);
    no_prev[0].json = no_prev[0].json.replace("\"prev_hash\"", "\"prev\"");
    assert_eq!(
        verify(&no_prev, ChainAnchor::default()).first_bad_sequence,
        Some(1)
    );
}

#[test]
fn a_pruned_chain_verifies_from_its_anchor() {
    let events = chain(6);
    let third: Value = serde_json::from_str(&events[2].json).unwrap();
    let anchor = ChainAnchor {
        sequence: 3,
        hash: third["hash"].as_str().unwrap().to_owned(),
    };
    let v = verify(&events[3..], anchor.clone());
    assert_eq!(
        (v.ok, v.events_checked, v.head.unwrap().sequence),
        (true, 3, 6)
    );
    // Without the anchor (or with a wrong one) the remaining events do not verify.
    assert_eq!(
        verify(&events[3..], ChainAnchor::default()).first_bad_sequence,
        Some(1)
    );
    let wrong = ChainAnchor {
        sequence: 3,
        hash: GENESIS_HASH.into(),
    };
    assert_eq!(verify(&events[3..], wrong).first_bad_sequence, Some(4));
    assert_eq!(verify(&events[4..], anchor).first_bad_sequence, Some(4));
}

#[test]
fn actions_have_their_contract_names() {
    let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "organization.created",
            "organization.renamed",
            "organization.deleted",
            "member.invited",
            "member.invitation_resent",
            "member.invitation_revoked",
            "member.invitation_accepted",
            "member.role_changed",
            "member.removed",
            "member.left",
            "api_key.created",
            "api_key.revoked",
            "login.succeeded",
            "login.failed",
            "password.changed",
            "sessions.revoked",
            "refresh.reuse_detected"
        ]
    );
    for a in AuditAction::ALL {
        assert_eq!(AuditAction::parse(a.as_str()), Ok(a));
    }
    assert!(AuditAction::parse("member.Invited").is_err());
    assert!(AuditAction::parse("").is_err());
}

#[test]
fn user_agents_are_cut_to_256_characters() {
    let long = "é".repeat(300);
    let c = AuditContext::new("::1".into(), Some(&long), None);
    assert_eq!(c.user_agent.unwrap().chars().count(), 256);
    let c = AuditContext::new("::1".into(), Some("x"), Some("r"));
    assert_eq!(
        (c.user_agent.as_deref(), c.request_id.as_deref()),
        (Some("x"), Some("r"))
    );
    assert_eq!(AuditContext::new("::1".into(), None, None).user_agent, None);
}

#[test]
fn an_intact_event_filed_elsewhere_is_bad() {
    // Well hashed and linked, but saying another sequence than the one it is filed under.
    let claims_five = event(1).chain(5, GENESIS_HASH);
    let filed = StoredEvent {
        sequence: 1,
        json: claims_five.json,
    };
    assert_eq!(
        verify(&[filed], ChainAnchor::default()).first_bad_sequence,
        Some(1)
    );
    // Or another organization's.
    let mut foreign = event(1);
    foreign.organization_id = "other".into();
    let filed = StoredEvent {
        sequence: 1,
        json: foreign.chain(1, GENESIS_HASH).json,
    };
    assert_eq!(
        verify(&[filed], ChainAnchor::default()).first_bad_sequence,
        Some(1)
    );
}
