//! Nothing half-made in teams: SIGKILL at every crash point of a member's removal and of an
//! invitation's accept, then `migrate --grace-seconds 0` and a restart: the store is consistent
//! (no membership without its account or organization, no organization without an owner, no
//! accepted invitation without its membership) and each operation happened whole or not at all.

use std::time::Duration;

use org_service::domain::{
    invitation_expiry, new_id, Email, Invitation, InvitationStatus, MemberRole, NewOrganization,
    OrgName,
};
use org_service::failpoint::{REACHED, TEAMS};
use org_service::storage::AcceptingAccount;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::team_helpers::MEMBER_PASSWORD;

fn hashed(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Acme (owner a@acme.com), a member bo, and a pending invitation for cy with `token`.
async fn seed(location: &StoreLocation, token: &str) -> String {
    let store = location.store().await;
    let now = chrono::Utc::now();
    let org = store
        .create_organization(
            &NewOrganization {
                id: new_id(),
                admin_id: new_id(),
                name: OrgName::parse("Acme").unwrap(),
                admin_email: Email::parse("a@acme.com").unwrap(),
                password_hash: Some(bcrypt::hash(PASSWORD, 4).unwrap()),
                created_at: now,
            },
            &[],
        )
        .await
        .unwrap();
    let invite = |email: &str| Invitation {
        id: new_id(),
        organization_id: org.id.clone(),
        email: email.into(),
        role: MemberRole::Member,
        stored_status: InvitationStatus::Pending,
        valid_hours: 24,
        expires_at: invitation_expiry(now, 24),
        created_at: now,
        invited_by: org.id.clone(),
    };
    let bo = invite("bo@acme.com");
    store
        .create_invitation(&bo, &hashed("oit_bo"), &[])
        .await
        .unwrap();
    let bo_id = new_id();
    let account = AcceptingAccount {
        id: bo_id.clone(),
        email: "bo@acme.com".into(),
        password_hash: Some(bcrypt::hash(MEMBER_PASSWORD, 4).unwrap()),
    };
    store
        .accept_invitation(&bo.id, &hashed("oit_bo"), &account, now, &[])
        .await
        .unwrap();
    store
        .create_invitation(&invite("cy@acme.com"), &hashed(token), &[])
        .await
        .unwrap();
    bo_id
}

async fn login(
    client: &reqwest::Client,
    service: &ServiceProcess,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(service.url("/admin/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn crash_at(backend: Backend, failpoint: &'static str) {
    let location = StoreLocation::fresh(&backend);
    let token = "oit_cy_for_the_crash_test";
    let bo = seed(&location, token).await;
    let mut service = start_service(
        &location,
        &[
            ("ORG_SERVICE_FAILPOINTS", failpoint),
            ("RATE_LIMITS", "off"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let owner: Value = login(&client, &service, "a@acme.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let owner = owner["access_token"].as_str().unwrap().to_owned();
    let removing = failpoint.starts_with("member.");
    let request = if removing {
        client
            .delete(service.url(&format!("/org/members/{bo}")))
            .bearer_auth(&owner)
    } else {
        client
            .post(service.url("/invitations/accept"))
            .json(&json!({"token": token, "password": MEMBER_PASSWORD}))
    };
    let in_flight = tokio::spawn(request.timeout(Duration::from_secs(60)).send());
    service
        .wait_for_stderr(&format!("{REACHED} {failpoint}"), Duration::from_secs(20))
        .await;
    service.kill().await;
    assert!(in_flight.await.unwrap().is_err(), "{failpoint}: answered");

    crate::crash::recover(&location, failpoint);
    let service = start_service(&location, &[("RATE_LIMITS", "off")]).await;
    let store = location.store().await;
    let problems = store.consistency_problems().await.unwrap();
    assert!(problems.is_empty(), "{failpoint}: {problems:?}");

    let acme = store
        .organization_by_slug("acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    if removing {
        // Whole or not at all: still a member who logs in, or gone with the account.
        let removed = crate::crash::events_of(store.as_ref(), &acme, "member.removed").await;
        let status = login(&client, &service, "bo@acme.com", MEMBER_PASSWORD)
            .await
            .status();
        let member = store
            .member(
                &store
                    .organization_by_slug("acme")
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                &bo,
            )
            .await
            .unwrap();
        assert_eq!(
            removed,
            usize::from(member.is_none()),
            "{failpoint}: removed and its event"
        );
        match member {
            Some(_) => assert_eq!(status, 200, "{failpoint}: a member who cannot log in"),
            None => {
                assert_eq!(status, 401, "{failpoint}: removed, yet logs in");
                assert!(
                    store.account_by_id(&bo).await.unwrap().is_none(),
                    "{failpoint}: account kept"
                );
            }
        }
    } else {
        // Either joined (the token is spent) or not (the token still works, once).
        let joined = login(&client, &service, "cy@acme.com", MEMBER_PASSWORD)
            .await
            .status()
            == 200;
        let accepted =
            crate::crash::events_of(store.as_ref(), &acme, "member.invitation_accepted").await;
        assert_eq!(
            accepted,
            usize::from(joined),
            "{failpoint}: joined and its event"
        );
        let again = client
            .post(service.url("/invitations/accept"))
            .json(&json!({"token": token, "password": MEMBER_PASSWORD}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            again,
            if joined { 410 } else { 200 },
            "{failpoint}: joined {joined}"
        );
        let problems = store.consistency_problems().await.unwrap();
        assert!(
            problems.is_empty(),
            "{failpoint} after the retry: {problems:?}"
        );
    }
    service.kill().await;
}

async fn crash_everywhere(backend: Backend) {
    for failpoint in TEAMS {
        crash_at(backend.clone(), failpoint).await;
    }
}

/// Every teams crash point, embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_member_changes_and_accepts_leaves_nothing_half_made_embedded() {
    crash_everywhere(Backend::Embedded).await;
}

/// Every teams crash point, MongoDB (the reconciler settles interrupted accepts and sweeps
/// what a removal left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mongodb_leg),
    ignore = "MongoDB leg off: set TEST_MONGODB_URL (README: Testing)"
)]
async fn sigkill_in_member_changes_and_accepts_leaves_nothing_half_made_mongodb() {
    crash_everywhere(Backend::mongo()).await;
}
