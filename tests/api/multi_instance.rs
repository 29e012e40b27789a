//! Several service processes on one store behave as one service.

use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// Three processes, 30 concurrent creates of one name spread over them: exactly one 201. A
    /// token whose organization was deleted through one instance is refused by the others.
    async fn three_instances_share_uniqueness_and_revocation(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let mut instances = Vec::new();
        for _ in 0..3 {
            instances.push(start_service(&location, &[]).await);
        }
        let client = reqwest::Client::new();
        let creates = (0..30).map(|i| {
            let url = instances[i % 3].url("/org/create");
            let client = client.clone();
            async move {
                client.post(url).json(&json!({"organization_name": "Shared Name", "email": format!("a{i}@shared.com"), "password": PASSWORD}))
                    .send().await.unwrap().status().as_u16()
            }
        });
        let statuses = futures::future::join_all(creates).await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 29, "{statuses:?}");

        // Log in through instance 0; the token works on every instance (shared SECRET_KEY).
        let winner = location.store().await.organization_by_slug("shared_name").await.unwrap().unwrap();
        let login = client.post(instances[0].url("/admin/login")).json(&json!({"email": winner.admin_email, "password": PASSWORD})).send().await.unwrap();
        let token = login.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
        for instance in &instances {
            let r = client.put(instance.url("/org/update")).bearer_auth(&token)
                .json(&json!({"organization_name": "Shared Name", "email": winner.admin_email, "password": PASSWORD})).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        // Delete through instance 1; instances 0 and 2 refuse the token at once.
        let r = client.delete(instances[1].url("/org/delete")).bearer_auth(&token).json(&json!({"organization_name": "Shared Name"})).send().await.unwrap();
        assert_eq!(r.status(), 204);
        for i in [0, 2] {
            let r = client.put(instances[i].url("/org/update")).bearer_auth(&token)
                .json(&json!({"organization_name": "Again", "email": winner.admin_email, "password": PASSWORD})).send().await.unwrap();
            assert_eq!(r.status(), 401, "instance {i} still accepts a dead token");
        }
        let problems = location.store().await.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        for instance in instances {
            instance.kill().await;
        }
    }
}

both_stores! {
    /// Three processes: a role change or a removal made through one instance applies to the
    /// member's existing token on every instance at its next request, and two owners demoting
    /// each other through different instances leave exactly one owner, every time.
    async fn three_instances_agree_on_roles_and_the_last_owner(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let mut instances = Vec::new();
        for _ in 0..3 {
            instances.push(start_service(&location, &[("RATE_LIMITS", "off")]).await);
        }
        let client = reqwest::Client::new();
        let post = |i: usize, path: &str, token: Option<&str>, body: serde_json::Value| {
            let mut req = client.post(instances[i].url(path)).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            async move { req.send().await.unwrap() }
        };
        let body = |r: reqwest::Response| async move { r.json::<serde_json::Value>().await.unwrap() };
        let r = post(0, "/org/create", None, json!({"organization_name": "Roles", "email": "o@roles.com", "password": PASSWORD})).await;
        assert_eq!(r.status(), 201);
        let owner = body(post(0, "/admin/login", None, json!({"email": "o@roles.com", "password": PASSWORD})).await).await;
        let owner_token = owner["access_token"].as_str().unwrap().to_owned();
        let join = |email: &'static str, role: &'static str| {
            let owner_token = owner_token.clone();
            let post = &post;
            async move {
                let inv = body(post(1, "/org/invitations", Some(&owner_token), json!({"email": email, "role": role})).await).await;
                let r = post(2, "/invitations/accept", None, json!({"token": inv["token"], "password": PASSWORD})).await;
                assert_eq!(r.status(), 200);
                body(r).await
            }
        };
        let member = join("m@roles.com", "admin").await;
        let token = member["access_token"].as_str().unwrap().to_owned();
        let id = member["admin_id"].as_str().unwrap().to_owned();
        let invite = |i: usize, n: usize| post(i, "/org/invitations", Some(&token), json!({"email": format!("x{n}@roles.com"), "role": "viewer"}));
        for i in 0..3 {
            assert_eq!(invite(i, i).await.status(), 201, "instance {i}");
        }
        let r = client.patch(instances[1].url(&format!("/org/members/{id}"))).bearer_auth(&owner_token)
            .json(&json!({"role": "viewer"})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        for i in 0..3 {
            assert_eq!(invite(i, 10 + i).await.status(), 403, "instance {i} still trusts the old role");
        }
        let r = client.delete(instances[2].url(&format!("/org/members/{id}"))).bearer_auth(&owner_token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        for (i, instance) in instances.iter().enumerate() {
            let r = client.get(instance.url("/admin/me")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 401, "instance {i} still accepts a removed member");
        }

        // Two owners, each demoting the other through a different instance.
        let second = join("s@roles.com", "owner").await;
        for round in 0..3 {
            let (a, b) = if round % 2 == 0 { (&owner, &second) } else { (&second, &owner) };
            let demote = |i: usize, by: &serde_json::Value, whom: &serde_json::Value| {
                client.patch(instances[i].url(&format!("/org/members/{}", whom["admin_id"].as_str().unwrap())))
                    .bearer_auth(by["access_token"].as_str().unwrap()).json(&json!({"role": "admin"})).send()
            };
            let (ra, rb) = tokio::join!(demote(0, a, b), demote(1, b, a));
            let statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
            assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
            // Restore two owners for the next round, through the survivor.
            let members = body(client.get(instances[2].url("/org/members")).bearer_auth(owner_token.as_str()).send().await.unwrap()).await;
            let survivor = members["members"].as_array().unwrap().iter().find(|m| m["role"] == "owner").unwrap().clone();
            let (by, other) = if survivor["admin_id"] == owner["admin_id"] { (&owner, &second) } else { (&second, &owner) };
            let r = client.patch(instances[2].url(&format!("/org/members/{}", other["admin_id"].as_str().unwrap())))
                .bearer_auth(by["access_token"].as_str().unwrap()).json(&json!({"role": "owner"})).send().await.unwrap();
            assert_eq!(r.status(), 200, "round {round}");
        }
        let problems = location.store().await.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        for instance in instances {
            instance.kill().await;
        }
    }
}

both_stores! {
    /// Three processes: a key revoked through one instance is refused by all three at its next
    /// request, and so is every key of an organization deleted through another.
    async fn three_instances_agree_on_api_keys(backend: Backend) {
        let location = StoreLocation::fresh(&backend);
        let mut instances = Vec::new();
        for _ in 0..3 {
            instances.push(start_service(&location, &[]).await);
        }
        let client = reqwest::Client::new();
        let r = client.post(instances[0].url("/org/create")).json(&json!({"organization_name": "Keyring", "email": "o@keyring.com", "password": PASSWORD})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let login: serde_json::Value = client.post(instances[0].url("/admin/login")).json(&json!({"email": "o@keyring.com", "password": PASSWORD})).send().await.unwrap().json().await.unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        let make = |i: usize| {
            let (client, token, url) = (client.clone(), token.clone(), instances[i].url("/org/api-keys"));
            async move {
                let made: serde_json::Value = client.post(url).bearer_auth(token).json(&json!({"name": "k", "role": "viewer"})).send().await.unwrap().json().await.unwrap();
                (made["id"].as_str().unwrap().to_owned(), made["key"].as_str().unwrap().to_owned())
            }
        };
        let uses = |key: String| {
            let client = client.clone();
            let urls: Vec<String> = instances.iter().map(|s| s.url("/org/documents")).collect();
            async move {
                let mut statuses = Vec::new();
                for url in urls {
                    statuses.push(client.get(url).header("x-api-key", &key).send().await.unwrap().status().as_u16());
                }
                statuses
            }
        };
        let (revoked_id, revoked) = make(0).await;
        let (_, kept) = make(1).await;
        assert_eq!(uses(revoked.clone()).await, [200, 200, 200]);
        let r = client.delete(instances[2].url(&format!("/org/api-keys/{revoked_id}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(uses(revoked).await, [401, 401, 401]);
        assert_eq!(uses(kept.clone()).await, [200, 200, 200]);

        let r = client.delete(instances[1].url("/org/delete")).bearer_auth(&token).json(&json!({"organization_name": "Keyring"})).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(uses(kept).await, [401, 401, 401]);
        let problems = location.store().await.consistency_problems().await.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        for instance in instances {
            instance.kill().await;
        }
    }
}
