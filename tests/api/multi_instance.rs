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
