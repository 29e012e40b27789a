//! Issue 11: accounts in several organizations, roles, the role table cell by cell, and the
//! protected last owner, on both stores.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;
use crate::team_helpers::*;

/// Acme with an owner and one account of each other role; their login bodies.
async fn team(app: &TestApp) -> [Value; 4] {
    app.given_org("Acme", "owner@acme.com").await;
    let owner = app.login("owner@acme.com", PASSWORD).await;
    assert_eq!(owner.status(), 200);
    let owner = json_body(owner).await;
    let t = access(&owner);
    let admin = app.join(&t, "admin@acme.com", "admin").await;
    let member = app.join(&t, "member@acme.com", "member").await;
    let viewer = app.join(&t, "viewer@acme.com", "viewer").await;
    [owner, admin, member, viewer]
}

/// Every member's id and role, sorted by email.
async fn roster(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = app
        .members(token)
        .await
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

both_stores! {
    /// The role table, cell by cell, for the routes that exist: every ✓ succeeds, every – is
    /// a 403 that changes nothing.
    async fn the_role_table_cell_by_cell(backend: Backend) {
        let app = spawn_app(backend).await;
        let logins = team(&app).await;
        let roles = ["owner", "admin", "member", "viewer"];
        let tokens: Vec<String> = logins.iter().map(access).collect();
        for (login, role) in logins.iter().zip(roles) {
            assert_eq!(login["role"], role);
        }
        let before = roster(&app, &tokens[0]).await;
        for (i, role) in roles.iter().enumerate() {
            let t = &tokens[i];
            // Read: everyone.
            for path in ["/admin/me", "/org/members", "/org/invitations"] {
                assert_eq!(app.call(Method::GET, path, t, None).await.status(), 200, "{role} GET {path}");
            }
            // Invite: owners and admins.
            let r = app
                .call(Method::POST, "/org/invitations", t, Some(&json!({"email": format!("new-{role}@acme.com"), "role": "viewer"})))
                .await;
            assert_eq!(r.status(), if i < 2 { 201 } else { 403 }, "{role} invites");
            // Rename (to a name of the same slug) and delete: owners only.
            if i > 0 {
                let email = format!("{role}@acme.com");
                let r = app
                    .call(Method::PUT, "/org/update", t, Some(&json!({"organization_name": "ACME", "email": email, "password": MEMBER_PASSWORD})))
                    .await;
                assert_eq!(r.status(), 403, "{role} renames");
                assert_eq!(json_body(r).await["detail"], "Your role in this organization does not allow this");
                assert_eq!(app.delete_org(Some(t), "Acme").await.status(), 403, "{role} deletes");
            }
        }
        // Invitations made only by the owner and the admin.
        let r = app.call(Method::GET, "/org/invitations?status=pending", &tokens[3], None).await;
        let invited: Vec<String> = json_body(r).await["invitations"].as_array().unwrap().iter()
            .map(|i| i["email"].as_str().unwrap().to_owned()).collect();
        assert_eq!(invited, ["new-owner@acme.com", "new-admin@acme.com"]);
        // Nothing else changed: the same members, the same name.
        assert_eq!(roster(&app, &tokens[0]).await, before);
        assert_eq!(json_body(app.get_org("Acme").await).await["organization_name"], "Acme");
        let r = app.update_org(Some(&tokens[0]), "ACME", "owner@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.delete_org(Some(&tokens[0]), "Acme").await.status(), 204);
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// Changing roles and removing: owners do anything that leaves an owner; admins anything
    /// that does not touch an owner nor grant owner; members and viewers nothing but leave.
    async fn who_may_change_whom(backend: Backend) {
        let app = spawn_app(backend).await;
        let [owner, admin, member, viewer] = team(&app).await;
        let (o, a, m, v) = (access(&owner), access(&admin), access(&member), access(&viewer));
        let before = roster(&app, &o).await;
        // Admins never touch owners, nor make one.
        assert_eq!(app.set_role(&a, &id_of(&owner), "admin").await.status(), 403);
        assert_eq!(app.remove(&a, &id_of(&owner)).await.status(), 403);
        assert_eq!(app.set_role(&a, &id_of(&member), "owner").await.status(), 403);
        assert_eq!(app.set_role(&a, &id_of(&admin), "owner").await.status(), 403);
        let r = app.call(Method::POST, "/org/invitations", &a, Some(&json!({"email": "boss@acme.com", "role": "owner"}))).await;
        assert_eq!(r.status(), 403);
        // Members and viewers change nobody, themselves included.
        for t in [&m, &v] {
            assert_eq!(app.set_role(t, &id_of(&viewer), "member").await.status(), 403);
            assert_eq!(app.set_role(t, &id_of(&member), "admin").await.status(), 403);
            assert_eq!(app.remove(t, &id_of(&admin)).await.status(), 403);
        }
        assert_eq!(roster(&app, &o).await, before, "a refused change changed something");
        // An unknown member is a 404; a bad role a 422.
        assert_eq!(app.set_role(&o, "65a1b2c3d4e5f6a7b8c9d0e1", "viewer").await.status(), 404);
        assert_eq!(app.remove(&a, "65a1b2c3d4e5f6a7b8c9d0e1").await.status(), 404);
        assert_422_on(app.set_role(&o, &id_of(&member), "superuser").await, "role").await;
        // What admins may do.
        let r = app.set_role(&a, &id_of(&member), "viewer").await;
        assert_eq!(r.status(), 200);
        let body = json_body(r).await;
        assert_eq!((body["admin_id"].as_str(), body["role"].as_str()), (Some(id_of(&member).as_str()), Some("viewer")));
        assert_eq!(body["email"], "member@acme.com");
        assert_eq!(app.remove(&a, &id_of(&viewer)).await.status(), 204);
        // Owners promote to owner.
        assert_eq!(app.set_role(&o, &id_of(&admin), "owner").await.status(), 200);
        // Anyone may leave: the demoted member leaves with its own id.
        assert_eq!(app.remove(&m, &id_of(&member)).await.status(), 204);
        assert_eq!(
            roster(&app, &o).await,
            [("admin@acme.com".to_owned(), "owner".to_owned()), ("owner@acme.com".to_owned(), "owner".to_owned())]
        );
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// The only owner cannot demote itself, leave, or be removed or demoted by the other
    /// owner once it is alone; deleting the organization is the way out.
    async fn the_last_owner_is_protected(backend: Backend) {
        let app = spawn_app(backend).await;
        let [owner, admin, ..] = team(&app).await;
        let o = access(&owner);
        let me = id_of(&owner);
        for r in [app.set_role(&o, &me, "admin").await, app.remove(&o, &me).await] {
            assert_eq!(r.status(), 409);
            assert!(json_body(r).await["detail"].as_str().unwrap().contains("only owner"));
        }
        // Keeping the role is no loss.
        assert_eq!(app.set_role(&o, &me, "owner").await.status(), 200);
        // With a second owner the first may step down; then the second is the last.
        assert_eq!(app.set_role(&o, &id_of(&admin), "owner").await.status(), 200);
        let second = access(&admin);
        assert_eq!(app.set_role(&o, &me, "member").await.status(), 200);
        assert_eq!(app.set_role(&second, &id_of(&admin), "viewer").await.status(), 409);
        assert_eq!(app.remove(&second, &id_of(&admin)).await.status(), 409);
        // admin_email follows: the remaining owner's.
        assert_eq!(json_body(app.get_org("Acme").await).await["admin_email"], "admin@acme.com");
        assert_eq!(app.delete_org(Some(&second), "Acme").await.status(), 204);
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// Two owners demoting each other at once, again and again: exactly one succeeds, and the
    /// organization always keeps an owner.
    async fn two_owners_demoting_each_other_leave_one(backend: Backend) {
        let app = spawn_app(backend).await;
        for round in 0..6 {
            let name = format!("Race {round}");
            let first = format!("a{round}@race.com");
            app.given_org(&name, &first).await;
            let a = json_body(app.login(&first, PASSWORD).await).await;
            let b = app.join(&access(&a), &format!("b{round}@race.com"), "owner").await;
            let (ta, tb, ia, ib) = (access(&a), access(&b), id_of(&a), id_of(&b));
            let (ra, rb) = tokio::join!(
                app.set_role(&ta, &ib, "admin"),
                app.set_role(&tb, &ia, "admin"),
            );
            let statuses = [ra.status().as_u16(), rb.status().as_u16()];
            assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
            // The loser is refused as the last owner (409), or as an admin by then (403).
            assert!(statuses.iter().all(|s| [200, 403, 409].contains(s)), "round {round}: {statuses:?}");
            let org = json_body(app.get_org(&name).await).await;
            let owners: Vec<Value> = app.members(&ta).await.into_iter().filter(|m| m["role"] == "owner").collect();
            assert_eq!(owners.len(), 1, "round {round}");
            assert_eq!(org["admin_email"], owners[0]["email"]);
        }
        app.assert_consistent(6).await;
    }
}

both_stores! {
    /// The role in a token is never trusted: a role change or a removal takes effect on the
    /// member's next request, and a removed member's refresh token dies too.
    async fn role_changes_and_removals_apply_to_existing_tokens(backend: Backend) {
        let app = spawn_app(backend).await;
        let [owner, _, member, _] = team(&app).await;
        let (o, m) = (access(&owner), access(&member));
        let invite = |t: String| {
            let app = &app;
            async move {
                app.call(Method::POST, "/org/invitations", &t, Some(&json!({"email": "x@acme.com", "role": "viewer"}))).await.status()
            }
        };
        assert_eq!(invite(m.clone()).await, 403);
        assert_eq!(app.set_role(&o, &id_of(&member), "admin").await.status(), 200);
        assert_eq!(invite(m.clone()).await, 201, "the old token acts with the new role");
        let me = json_body(app.call(Method::GET, "/admin/me", &m, None).await).await;
        assert_eq!(me["role"], "admin");
        assert_eq!(app.remove(&o, &id_of(&member)).await.status(), 204);
        let r = app.call(Method::GET, "/admin/me", &m, None).await;
        assert_eq!(r.status(), 401);
        let r = app.post_json("/admin/refresh", &json!({"refresh_token": member["refresh_token"]})).await;
        assert_eq!(r.status(), 401);
        // Its only organization gone, the account went too.
        assert_eq!(app.login("member@acme.com", MEMBER_PASSWORD).await.status(), 401);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// One account in two organizations: a second organization needs its token and password;
    /// login picks the named one or the oldest and lists both; a token never reaches the other
    /// organization; deleting one leaves the account working in the other.
    async fn one_account_in_several_organizations(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "owner@acme.com").await;
        let owner = access(&json_body(app.login("owner@acme.com", PASSWORD).await).await);
        let bo = app.join(&owner, "bo@acme.com", "viewer").await;
        let bo_acme = access(&bo);
        let globex = json!({"organization_name": "Globex", "email": "bo@acme.com", "password": MEMBER_PASSWORD});
        // No token, another account's token: the email is taken. Its own token with a wrong
        // password: 401.
        assert_eq!(app.post_json("/org/create", &globex).await.status(), 409);
        assert_eq!(app.send_json(Method::POST, "/org/create", Some(&owner), &globex).await.status(), 409);
        let wrong = json!({"organization_name": "Globex", "email": "bo@acme.com", "password": "WrongPass123!"});
        assert_eq!(app.send_json(Method::POST, "/org/create", Some(&bo_acme), &wrong).await.status(), 401);
        assert_eq!(app.get_org("Globex").await.status(), 404, "a refused create made nothing");
        let r = app.send_json(Method::POST, "/org/create", Some(&bo_acme), &globex).await;
        assert_eq!(r.status(), 201);
        assert_eq!(json_body(r).await["admin_email"], "bo@acme.com");

        // Login: the oldest membership unless one is named; both listed.
        let login = |org: Option<&str>| {
            let mut body = json!({"email": "BO@acme.com", "password": MEMBER_PASSWORD});
            if let Some(org) = org {
                body["organization_name"] = json!(org);
            }
            let app = &app;
            async move { app.post_json("/admin/login", &body).await }
        };
        let first = json_body(login(None).await).await;
        assert_eq!((first["organization_name"].as_str(), first["role"].as_str()), (Some("Acme"), Some("viewer")));
        let listed: Vec<(String, String)> = first["organizations"].as_array().unwrap().iter()
            .map(|o| (o["organization_name"].as_str().unwrap().to_owned(), o["role"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(listed, [("Acme".to_owned(), "viewer".to_owned()), ("Globex".to_owned(), "owner".to_owned())]);
        let second = json_body(login(Some("globex")).await).await;
        assert_eq!((second["organization_name"].as_str(), second["role"].as_str()), (Some("Globex"), Some("owner")));
        let r = login(Some("Initech")).await;
        assert_eq!(r.status(), 401);
        assert_eq!(json_body(r).await, json!({"detail": "Incorrect email or password"}));

        // The Acme token is for Acme only.
        let acme_token = access(&first);
        let me = json_body(app.call(Method::GET, "/admin/me", &acme_token, None).await).await;
        assert_eq!((me["organization_name"].as_str(), me["role"].as_str()), (Some("Acme"), Some("viewer")));
        assert_eq!(me["organizations"].as_array().unwrap().len(), 2);
        assert_eq!(app.delete_org(Some(&acme_token), "Globex").await.status(), 403);
        assert_eq!(app.members(&acme_token).await.len(), 2, "Acme's members, not Globex's");
        assert_eq!(app.members(&access(&second)).await.len(), 1);

        // Acme deleted: bo's Acme token dies; bo keeps Globex.
        assert_eq!(app.delete_org(Some(&owner), "Acme").await.status(), 204);
        assert_eq!(app.call(Method::GET, "/admin/me", &acme_token, None).await.status(), 401);
        assert_eq!(app.login("owner@acme.com", PASSWORD).await.status(), 401, "the owner's account went with its only organization");
        let again = json_body(login(None).await).await;
        assert_eq!(again["organization_name"], "Globex");
        assert_eq!(app.call(Method::GET, "/admin/me", &access(&second), None).await.status(), 200);
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Members are listed oldest first, by an opaque cursor: every member once, a null cursor
    /// on the last page, and limits and cursors checked.
    async fn members_are_paged_by_cursor(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Pages", "p0@pages.com").await;
        let owner = access(&json_body(app.login("p0@pages.com", PASSWORD).await).await);
        for i in 1..5 {
            app.join(&owner, &format!("p{i}@pages.com"), "viewer").await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                None => "/org/members?limit=2".to_owned(),
                Some(c) => format!("/org/members?limit=2&cursor={c}"),
            };
            let page = json_body(app.call(Method::GET, &path, &owner, None).await).await;
            pages += 1;
            seen.extend(page["members"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, (0..5).map(|i| format!("p{i}@pages.com")).collect::<Vec<_>>());
        for bad in ["limit=0", "limit=101", "limit=x", "cursor=nonsense"] {
            let r = app.call(Method::GET, &format!("/org/members?{bad}"), &owner, None).await;
            assert_eq!(r.status(), 422, "{bad}");
        }
        let all = json_body(app.call(Method::GET, "/org/members", &owner, None).await).await;
        assert_eq!(all["members"].as_array().unwrap().len(), 5);
        assert_eq!(all["next_cursor"], Value::Null);
    }
}
