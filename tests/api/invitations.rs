//! Issue 11, invitations: tokens (random, hashed, shown once, single-use), their ends (410
//! naming which; 404 unknown), accepts by new and existing accounts, on both stores.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use org_service::domain::{new_id, Invitation, InvitationStatus, MemberRole};

use crate::both_stores;
use crate::helpers::*;
use crate::team_helpers::*;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Acme and its owner's token.
async fn acme(app: &TestApp) -> String {
    app.given_org("Acme", "owner@acme.com").await;
    access(&json_body(app.login("owner@acme.com", PASSWORD).await).await)
}

async fn detail(r: reqwest::Response) -> String {
    json_body(r).await["detail"].as_str().unwrap().to_owned()
}

both_stores! {
    /// A token is 256 random bits, URL-safe, in the create and resend responses only; the store
    /// finds the invitation by the token's SHA-256, never by the token.
    async fn tokens_are_random_hashed_and_shown_once(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = acme(&app).await;
        let a = app.invite(&owner, "Bo@Acme.com", "member").await;
        let b = app.invite(&owner, "cy@acme.com", "viewer").await;
        let token = a["token"].as_str().unwrap();
        assert!(token.starts_with("oit_") && token.len() == 68, "{token}");
        assert!(token[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a["token"], b["token"]);
        assert_eq!(a["email"], "bo@acme.com");
        assert_eq!((a["role"].as_str(), a["status"].as_str()), (Some("member"), Some("pending")));
        let me = json_body(app.call(Method::GET, "/admin/me", &owner, None).await).await;
        assert_eq!(a["invited_by"], me["admin_id"]);
        let created = chrono::DateTime::parse_from_rfc3339(a["created_at"].as_str().unwrap()).unwrap();
        let expires = chrono::DateTime::parse_from_rfc3339(a["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!((expires - created).num_hours(), 168);
        assert!(app.store.invitation_by_token(token).await.unwrap().is_none());
        let found = app.store.invitation_by_token(&sha256_hex(token)).await.unwrap().unwrap();
        assert!(found.current);
        assert_eq!(found.invitation.id, a["invitation_id"].as_str().unwrap());
        // Lists never show a token.
        let listed = app.call(Method::GET, "/org/invitations", &owner, None).await.text().await.unwrap();
        assert!(!listed.contains(token) && !listed.contains("\"token\""), "{listed}");
        let page: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(page["invitations"].as_array().unwrap().len(), 2);
        // Custom lifetime, and its bounds.
        let r = app.call(Method::POST, "/org/invitations", &owner, Some(&json!({"email": "dee@acme.com", "role": "admin", "expires_in_hours": 1}))).await;
        let body = json_body(r).await;
        let created = chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).unwrap();
        let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!((expires - created).num_minutes(), 60);
        for hours in [0, 721] {
            let r = app.call(Method::POST, "/org/invitations", &owner, Some(&json!({"email": "eve@acme.com", "role": "admin", "expires_in_hours": hours}))).await;
            assert_422_on(r, "expires_in_hours").await;
        }
    }
}

both_stores! {
    /// Eight concurrent accepts of one token: exactly one 200, the others 410; one membership.
    async fn a_token_is_single_use_under_concurrency(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = acme(&app).await;
        let token = app.invite(&owner, "bo@acme.com", "member").await["token"].as_str().unwrap().to_owned();
        let accepts = (0..8).map(|_| app.accept(&token, MEMBER_PASSWORD));
        let statuses: Vec<u16> = futures::future::join_all(accepts).await.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 7, "{statuses:?}");
        assert_eq!(app.members(&owner).await.len(), 2);
        let r = app.accept(&token, MEMBER_PASSWORD).await;
        assert_eq!(r.status(), 410);
        assert_eq!(detail(r).await, "This invitation has already been accepted");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Used, revoked, expired or re-sent: 410 saying which; unknown: 404. A resend gives a new
    /// token and a new expiry; the old token dies.
    async fn ended_invitations_say_why(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = acme(&app).await;
        assert_eq!(app.accept("oit_unknown", MEMBER_PASSWORD).await.status(), 404);

        let revoked = app.invite(&owner, "rev@acme.com", "viewer").await;
        let path = format!("/org/invitations/{}", revoked["invitation_id"].as_str().unwrap());
        assert_eq!(app.call(Method::DELETE, &path, &owner, None).await.status(), 204);
        assert_eq!(app.call(Method::DELETE, &path, &owner, None).await.status(), 409);
        let r = app.accept(revoked["token"].as_str().unwrap(), MEMBER_PASSWORD).await;
        assert_eq!(r.status(), 410);
        assert_eq!(detail(r).await, "This invitation has been revoked");

        let first = app.invite(&owner, "re@acme.com", "viewer").await;
        let id = first["invitation_id"].as_str().unwrap();
        let r = app.call(Method::POST, &format!("/org/invitations/{id}/resend"), &owner, None).await;
        assert_eq!(r.status(), 200);
        let second = json_body(r).await;
        assert_eq!(second["invitation_id"], first["invitation_id"]);
        assert_ne!(second["token"], first["token"]);
        assert!(second["expires_at"].as_str() >= first["expires_at"].as_str());
        let r = app.accept(first["token"].as_str().unwrap(), MEMBER_PASSWORD).await;
        assert_eq!(r.status(), 410);
        assert_eq!(detail(r).await, "This invitation was re-sent; use the newest token");
        assert_eq!(app.accept(second["token"].as_str().unwrap(), MEMBER_PASSWORD).await.status(), 200);
        let r = app.call(Method::POST, &format!("/org/invitations/{id}/resend"), &owner, None).await;
        assert_eq!(r.status(), 409, "an accepted invitation is not re-sent");
        let unknown = "/org/invitations/65a1b2c3d4e5f6a7b8c9d0e1";
        assert_eq!(app.call(Method::DELETE, unknown, &owner, None).await.status(), 404);
        assert_eq!(app.call(Method::POST, &format!("{unknown}/resend"), &owner, None).await.status(), 404);

        // An invitation whose time is up (made through the store with a past expiry).
        let org = app.store.organization_by_slug("acme").await.unwrap().unwrap();
        let now = chrono::Utc::now();
        let token = "oit_expired_for_the_test";
        let expired = Invitation {
            id: new_id(),
            organization_id: org.id.clone(),
            email: "late@acme.com".into(),
            role: MemberRole::Viewer,
            stored_status: InvitationStatus::Pending,
            valid_hours: 1,
            expires_at: now - chrono::Duration::hours(1),
            created_at: now - chrono::Duration::hours(2),
            invited_by: org.id.clone(),
        };
        app.store.create_invitation(&expired, &sha256_hex(token), &[]).await.unwrap();
        let r = app.accept(token, MEMBER_PASSWORD).await;
        assert_eq!(r.status(), 410);
        assert_eq!(detail(r).await, "This invitation has expired");
        let by_status = |status: &'static str| {
            let app = &app;
            let owner = owner.clone();
            async move {
                let r = app.call(Method::GET, &format!("/org/invitations?status={status}"), &owner, None).await;
                json_body(r).await["invitations"].as_array().unwrap().iter()
                    .map(|i| i["email"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(by_status("expired").await, ["late@acme.com"]);
        assert_eq!(by_status("revoked").await, ["rev@acme.com"]);
        assert_eq!(by_status("accepted").await, ["re@acme.com"]);
        assert!(by_status("pending").await.is_empty());
        assert_eq!(app.call(Method::GET, "/org/invitations?status=gone", &owner, None).await.status(), 422);
        // An expired invitation no longer blocks a new one; a resend revives it.
        app.invite(&owner, "late@acme.com", "viewer").await;
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// An email that is a member, or has a pending invitation, cannot be invited again (409);
    /// a new account's password follows the password rules (422, nothing made).
    async fn duplicates_and_bad_passwords_change_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = acme(&app).await;
        let r = app.call(Method::POST, "/org/invitations", &owner, Some(&json!({"email": "OWNER@acme.com", "role": "viewer"}))).await;
        assert_eq!(r.status(), 409);
        assert_eq!(detail(r).await, "This email is already a member of the organization");
        let inv = app.invite(&owner, "bo@acme.com", "viewer").await;
        let r = app.call(Method::POST, "/org/invitations", &owner, Some(&json!({"email": "bo@acme.com", "role": "admin"}))).await;
        assert_eq!(r.status(), 409);
        assert_eq!(detail(r).await, "This email already has a pending invitation to the organization");
        let token = inv["token"].as_str().unwrap();
        assert_422_on(app.accept(token, "short").await, "password").await;
        assert_422_on(app.post_json("/invitations/accept", &json!({"token": "", "password": MEMBER_PASSWORD})).await, "token").await;
        // Still pending, still usable.
        assert_eq!(app.accept(token, MEMBER_PASSWORD).await.status(), 200);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// An existing account accepts with its own password: a wrong one is 401 and counts toward
    /// the login throttle (429 once over), and the invitation stays pending; the right one
    /// joins and logs in to the inviting organization.
    async fn existing_accounts_accept_with_their_password(backend: Backend) {
        let app = spawn_app_with(backend, &[("LOGIN_MAX_ATTEMPTS", "3")]).await;
        let owner = acme(&app).await;
        app.given_org("Globex", "g@globex.com").await;
        let token = app.invite(&owner, "g@globex.com", "admin").await["token"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            let r = app.accept(&token, "WrongPass123!").await;
            assert_eq!(r.status(), 401);
        }
        let r = app.accept(&token, PASSWORD).await;
        assert_eq!(r.status(), 429, "the throttle counts accepts");
        // The login throttle is the same one.
        assert_eq!(app.login("g@globex.com", PASSWORD).await.status(), 429);
        let pending = app.call(Method::GET, "/org/invitations?status=pending", &owner, None).await;
        assert_eq!(json_body(pending).await["invitations"].as_array().unwrap().len(), 1);
    }
}

both_stores! {
    /// The right password of an existing account joins it and logs it in to the inviting
    /// organization, with both organizations listed.
    async fn an_existing_account_joins_a_second_organization(backend: Backend) {
        let app = spawn_app(backend).await;
        let owner = acme(&app).await;
        app.given_org("Globex", "g@globex.com").await;
        let token = app.invite(&owner, "g@globex.com", "admin").await["token"].as_str().unwrap().to_owned();
        let r = app.accept(&token, PASSWORD).await;
        assert_eq!(r.status(), 200);
        let login = json_body(r).await;
        assert_eq!((login["organization_name"].as_str(), login["role"].as_str()), (Some("Acme"), Some("admin")));
        assert_eq!(login["organizations"].as_array().unwrap().len(), 2);
        assert!(login["refresh_token"].as_str().unwrap().starts_with("ort_"));
        let me = json_body(app.call(Method::GET, "/admin/me", &access(&login), None).await).await;
        assert_eq!(me["email"], "g@globex.com");
        // Its password is unchanged, and its first organization is still the default.
        let again = json_body(app.login("g@globex.com", PASSWORD).await).await;
        assert_eq!(again["organization_name"], "Globex");
        app.assert_consistent(2).await;
    }
}
