//! `/org/*`: create, get, rename, delete.

use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// A create returns 201 with the organization, and makes its admin and collection.
    async fn create_org_returns_201_with_the_organization(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.create_org("  Acme Corp ", "Admin@Acme.COM", PASSWORD).await;
        assert_eq!(r.status(), 201);
        let body = json_body(r).await;
        assert_eq!(body["organization_name"], "Acme Corp");
        assert_eq!(body["collection_name"], "org_acme_corp");
        assert_eq!(body["admin_email"], "admin@acme.com");
        assert_eq!(body["updated_at"], Value::Null);
        assert_eq!(body["organization_id"].as_str().unwrap().len(), 24);
        let created = body["created_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'), "{created}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "exactly the contract's fields: {keys:?}");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Names that fold to one slug are one organization: the second create is a 409.
    async fn create_org_returns_409_when_slug_is_taken(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme Corp", "a@acme.com").await;
        for (i, same) in ["acme-corp", "ACME_CORP", "  acme   corp ", "Acme.Corp!"].iter().enumerate() {
            let r = app.create_org(same, &format!("other{i}@acme.com"), PASSWORD).await;
            assert_eq!(r.status(), 409, "{same}");
            assert!(json_body(r).await["detail"].as_str().unwrap().contains("already exists"));
        }
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Emails compare case-insensitively: a second admin with the same address is a 409.
    async fn create_org_returns_409_when_email_is_taken_in_any_case(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("First", "Admin@Example.com").await;
        let r = app.create_org("Second", "ADMIN@example.COM", PASSWORD).await;
        assert_eq!(r.status(), 409);
        assert!(json_body(r).await["detail"].as_str().unwrap().contains("email"));
        assert_eq!(app.get_org("Second").await.status(), 404, "the loser left nothing behind");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Each invalid field gets a FastAPI-shaped 422 naming it, and nothing is created.
    async fn create_org_returns_422_for_invalid_fields(backend: Backend) {
        let app = spawn_app(backend).await;
        let long_name = "a".repeat(101);
        let long_password = "p".repeat(73);
        let wide_password = "€".repeat(25);
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({"organization_name": "", "email": "a@b.co", "password": PASSWORD}), "organization_name", "empty name"),
            (json!({"organization_name": "   ", "email": "a@b.co", "password": PASSWORD}), "organization_name", "blank name"),
            (json!({"organization_name": long_name, "email": "a@b.co", "password": PASSWORD}), "organization_name", "101 characters"),
            (json!({"organization_name": "Acme\u{0007}Corp", "email": "a@b.co", "password": PASSWORD}), "organization_name", "control character"),
            (json!({"organization_name": "!!! ---", "email": "a@b.co", "password": PASSWORD}), "organization_name", "empty slug"),
            (json!({"organization_name": "Acme", "email": "not-an-email", "password": PASSWORD}), "email", "bad email"),
            (json!({"organization_name": "Acme", "email": "a@b.co", "password": "short"}), "password", "short password"),
            (json!({"organization_name": "Acme", "email": "a@b.co", "password": "Password1"}), "password", "one of the most common passwords"),
            (json!({"organization_name": "Acme", "email": "a@b.co", "password": long_password}), "password", "73 bytes: bcrypt would truncate"),
            (json!({"organization_name": "Acme", "email": "a@b.co", "password": wide_password}), "password", "25 characters but 75 bytes"),
            (json!({"organization_name": "Acme", "email": "a@b.co"}), "password", "missing password"),
            (json!({"organization_name": 42, "email": "a@b.co", "password": PASSWORD}), "organization_name", "number for a name"),
            (json!({"email": "a@b.co", "password": PASSWORD}), "organization_name", "missing name"),
        ];
        for (body, field, why) in cases {
            let r = app.post_json("/org/create", &body).await;
            assert_eq!(r.status(), 422, "{why}");
            assert_422_on(r, field).await;
        }
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// A 72-byte password is accepted, and only the exact password logs in (no truncation).
    async fn passwords_up_to_72_bytes_work_exactly(backend: Backend) {
        let app = spawn_app(backend).await;
        let pw = "x".repeat(72);
        assert_eq!(app.create_org("Exact", "e@x.co", &pw).await.status(), 201);
        assert_eq!(app.login("e@x.co", &pw).await.status(), 200);
        assert_eq!(app.login("e@x.co", &format!("{pw}y")).await.status(), 422, "73 bytes is refused, not truncated");
        assert_eq!(app.login("e@x.co", &"x".repeat(71)).await.status(), 401);
    }
}

both_stores! {
    /// Malformed JSON, a wrong content type and an oversized body get 4xx envelopes, not 500s.
    async fn create_org_rejects_malformed_requests_with_the_envelope(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.post(app.url("/org/create")).header("content-type", "application/json").body("{\"organization_name\": ").send().await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(json_body(r).await["detail"][0]["type"], "json_invalid");

        let r = app.client.post(app.url("/org/create")).header("content-type", "text/plain").body("{}").send().await.unwrap();
        assert_eq!(r.status(), 415);
        assert!(json_body(r).await["detail"].is_string());

        let r = app.client.post(app.url("/org/create")).body(r#"{"organization_name":"A","email":"a@b.co","password":"12345678"}"#).send().await.unwrap();
        assert_eq!(r.status(), 415, "no content type");

        let big = json!({"organization_name": "Big", "email": "a@b.co", "password": PASSWORD, "pad": "x".repeat(100_000)});
        let r = app.post_json("/org/create", &big).await;
        assert_eq!(r.status(), 413);
        assert!(json_body(r).await["detail"].is_string());

        // The limit is exactly 16 KiB: a body of 16,384 bytes is read (and refused for its
        // email), one byte more is a 413.
        let sized = |len: usize| {
            let head = format!(r#"{{"organization_name":"Edge","email":"not-an-email","password":"{PASSWORD}","pad":""#);
            let tail = r#""}"#;
            format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
        };
        for (len, status) in [(16_384, 422), (16_385, 413)] {
            let body = sized(len);
            assert_eq!(body.len(), len);
            let r = app.client.post(app.url("/org/create")).header("content-type", "application/json").body(body).send().await.unwrap();
            assert_eq!(r.status(), status, "a body of {len} bytes");
        }

        let r = app.post_json("/org/create", &json!([1, 2, 3])).await;
        assert_eq!(r.status(), 422);
        app.assert_consistent(0).await;
    }
}

both_stores! {
    /// Unknown fields are ignored, never stored or echoed.
    async fn unknown_fields_are_ignored(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.post_json("/org/create", &json!({"organization_name": "Extra", "email": "x@e.co", "password": PASSWORD, "is_superuser": true, "collection_name": "admins"})).await;
        assert_eq!(r.status(), 201);
        let body = json_body(r).await;
        assert_eq!(body["collection_name"], "org_extra");
        assert!(body.get("is_superuser").is_none());
    }
}

both_stores! {
    /// Any spelling with the same slug finds the organization; unknown names are 404.
    async fn get_org_finds_by_slug_and_404s_otherwise(backend: Backend) {
        let app = spawn_app(backend).await;
        let created = app.given_org("Acme Corp", "a@acme.com").await;
        for spelling in ["Acme Corp", "acme-corp", "ACME_CORP"] {
            let r = app.get_org(spelling).await;
            assert_eq!(r.status(), 200);
            assert_eq!(json_body(r).await, created);
        }
        let r = app.get_org("Nobody").await;
        assert_eq!(r.status(), 404);
        assert!(json_body(r).await["detail"].as_str().unwrap().contains("not found"));
        let r = app.client.get(app.url("/org/get")).send().await.unwrap();
        assert_422_on(r, "organization_name").await;
        let r = app.get_org("  ").await;
        assert_422_on(r, "organization_name").await;
    }
}

both_stores! {
    /// A rename moves the tenant's documents to the new collection and frees the old name.
    async fn update_org_renames_and_moves_the_tenant_data(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme Corp", "a@acme.com").await;
        let org = app.store.organization_by_slug("acme_corp").await.unwrap().unwrap();
        app.store.insert_tenant_documents(&org, (0..25).map(|i| json!({"n": i})).collect()).await.unwrap();
        let token = app.token("a@acme.com", PASSWORD).await;

        let r = app.update_org(Some(&token), "Acme Corporation", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let body = json_body(r).await;
        assert_eq!(body["organization_name"], "Acme Corporation");
        assert_eq!(body["collection_name"], "org_acme_corporation");
        assert_eq!(body["organization_id"], org.id.as_str());
        assert!(body["updated_at"].is_string());

        let renamed = app.store.organization_by_slug("acme_corporation").await.unwrap().unwrap();
        assert_eq!(app.store.count_tenant_documents(&renamed).await.unwrap(), 25);
        assert_eq!(app.get_org("Acme Corp").await.status(), 404);
        app.assert_consistent(1).await;
        // The old name is free again.
        assert_eq!(app.create_org("Acme Corp", "b@acme.com", PASSWORD).await.status(), 201);
        app.assert_consistent(2).await;
        // The token still works after a rename (same admin, same organization).
        let r = app.update_org(Some(&token), "Acme Corporation Ltd", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
    }
}

both_stores! {
    /// A rename to a name with the same slug changes only the display name.
    async fn update_org_with_same_slug_keeps_the_collection(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("acme corp", "a@acme.com").await;
        let token = app.token("a@acme.com", PASSWORD).await;
        let r = app.update_org(Some(&token), "ACME Corp", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        let body = json_body(r).await;
        assert_eq!(body["organization_name"], "ACME Corp");
        assert_eq!(body["collection_name"], "org_acme_corp");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Rename needs a token and the admin's own email and password; a taken name is a 409.
    async fn update_org_requires_token_and_reauthentication(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        app.given_org("Globex", "g@globex.com").await;
        let token = app.token("a@acme.com", PASSWORD).await;

        let r = app.update_org(None, "New Name", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");

        let r = app.update_org(Some(&token), "New Name", "a@acme.com", "WrongPass123!").await;
        assert_eq!(r.status(), 401, "wrong password");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");

        let r = app.update_org(Some(&token), "New Name", "g@globex.com", PASSWORD).await;
        assert_eq!(r.status(), 401, "another admin's credentials");

        let r = app.update_org(Some(&token), "GLOBEX", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 409, "taken name");

        let r = app.update_org(Some(&token), "", "a@acme.com", PASSWORD).await;
        assert_422_on(r, "organization_name").await;

        // Nothing changed.
        assert_eq!(json_body(app.get_org("Acme").await).await["updated_at"], Value::Null);
        assert_eq!(app.get_org("New Name").await.status(), 404);
        app.assert_consistent(2).await;
    }
}

both_stores! {
    /// Delete removes the organization, its admin, its collection, and kills its tokens.
    async fn delete_org_removes_everything_and_kills_tokens(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        app.given_org("Globex", "g@globex.com").await;
        let token = app.token("a@acme.com", PASSWORD).await;

        let r = app.delete_org(Some(&token), "Acme").await;
        assert_eq!(r.status(), 204);
        assert!(r.bytes().await.unwrap().is_empty());

        assert_eq!(app.get_org("Acme").await.status(), 404);
        assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 401);
        let r = app.delete_org(Some(&token), "Acme").await;
        assert_eq!(r.status(), 401, "the token died with its organization");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let r = app.update_org(Some(&token), "Acme 2", "a@acme.com", PASSWORD).await;
        assert_eq!(r.status(), 401);
        app.assert_consistent(1).await;
        // Name and email are free again.
        assert_eq!(app.create_org("Acme", "a@acme.com", PASSWORD).await.status(), 201);
        app.assert_consistent(2).await;
    }
}

both_stores! {
    /// Another organization's admin gets 403 and nothing changes; no token is a 401.
    async fn delete_org_of_another_tenant_is_forbidden(backend: Backend) {
        let app = spawn_app(backend).await;
        app.given_org("Acme", "a@acme.com").await;
        app.given_org("Globex", "g@globex.com").await;
        let globex_token = app.token("g@globex.com", PASSWORD).await;

        let r = app.delete_org(Some(&globex_token), "Acme").await;
        assert_eq!(r.status(), 403);
        assert!(json_body(r).await["detail"].is_string());
        let r = app.delete_org(None, "Acme").await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");

        assert_eq!(app.get_org("Acme").await.status(), 200);
        assert_eq!(app.login("a@acme.com", PASSWORD).await.status(), 200);
        app.assert_consistent(2).await;
    }
}
