//! Uniqueness under concurrency is enforced by the store, not by a read before a write.

use crate::both_stores;
use crate::helpers::*;

both_stores! {
    /// 16 concurrent creates of one name (spelled differently): exactly one 201, fifteen 409s.
    async fn concurrent_creates_of_one_name_give_one_201(backend: Backend) {
        let app = spawn_app(backend).await;
        let spellings = ["Race Corp", "race-corp", "RACE_CORP", "race corp"];
        let requests = (0..16).map(|i| {
            let name = spellings[i % spellings.len()];
            let email = format!("admin{i}@race.com");
            let app = &app;
            async move { app.create_org(name, &email, PASSWORD).await.status().as_u16() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// 16 concurrent creates with one email (in different cases): exactly one 201.
    async fn concurrent_creates_with_one_email_give_one_201(backend: Backend) {
        let app = spawn_app(backend).await;
        let requests = (0..16).map(|i| {
            let name = format!("Org {i}");
            let email = if i % 2 == 0 { "Same@Mail.com" } else { "same@mail.COM" };
            let app = &app;
            async move { app.create_org(&name, email, PASSWORD).await.status().as_u16() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
        app.assert_consistent(1).await;
    }
}

both_stores! {
    /// Two admins renaming to one name at once: one wins, the other gets 409.
    async fn concurrent_renames_to_one_name_give_one_200(backend: Backend) {
        let app = spawn_app(backend).await;
        let mut tokens = Vec::new();
        for i in 0..6 {
            app.given_org(&format!("Org {i}"), &format!("a{i}@x.com")).await;
            tokens.push(app.token(&format!("a{i}@x.com"), PASSWORD).await);
        }
        let requests = tokens.iter().enumerate().map(|(i, t)| {
            let app = &app;
            async move { app.update_org(Some(t), "Target Name", &format!("a{i}@x.com"), PASSWORD).await.status().as_u16() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
        app.assert_consistent(6).await;
    }
}
