//! The teams figures of the load benchmark: listing 100 members beside reading one organization
//! on the same run, and invitation accepts (each hashes a new account's password) against the
//! bcrypt-hash ceiling.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use org_service::domain::{
    invitation_expiry, new_id, Invitation, InvitationStatus, MemberRole, OrgName,
};
use org_service::storage::{AcceptingAccount, Store};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::common::{oha_with, round, sign_up};
use super::{Bench, PASSWORD};

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `count` pending invitations to `org`, made through the store; their tokens.
async fn invitations(store: &Arc<dyn Store>, org: &str, count: usize, prefix: &str) -> Vec<String> {
    let now = chrono::Utc::now();
    let mut tokens = Vec::new();
    for i in 0..count {
        let token = format!("oit_bench_{prefix}_{i}_{}", new_id());
        let invitation = Invitation {
            id: new_id(),
            organization_id: org.to_owned(),
            email: format!("{prefix}{i}@team.example"),
            role: MemberRole::Member,
            stored_status: InvitationStatus::Pending,
            valid_hours: 24,
            expires_at: invitation_expiry(now, 24),
            created_at: now,
            invited_by: org.to_owned(),
        };
        store
            .create_invitation(&invitation, &sha256_hex(&token), &[])
            .await
            .expect("invite");
        tokens.push(token);
    }
    tokens
}

impl Bench {
    /// Adds `members_list` and `accept` to `figures`.
    pub(super) async fn team_figures(
        &self,
        base: &str,
        store: &Arc<dyn Store>,
        hash: &str,
        hashing: Duration,
        figures: &mut serde_json::Map<String, Value>,
    ) {
        let client = reqwest::Client::new();
        let token = sign_up(&client, base, "Team Org", "owner@team.example", PASSWORD).await;
        let org = store
            .organization_by_slug(OrgName::parse("Team Org").unwrap().slug())
            .await
            .unwrap()
            .unwrap();
        // 99 more members, through the store (the accepts are measured below, not here).
        let now = chrono::Utc::now();
        for token in invitations(store, &org.id, 99, "member").await {
            let found = store
                .invitation_by_token(&sha256_hex(&token))
                .await
                .unwrap()
                .unwrap();
            let account = AcceptingAccount {
                id: new_id(),
                email: found.invitation.email.clone(),
                password_hash: Some(hash.to_owned()),
            };
            store
                .accept_invitation(
                    &found.invitation.id,
                    &sha256_hex(&token),
                    &account,
                    now,
                    &[],
                )
                .await
                .expect("accept");
        }
        let bearer = format!("authorization: Bearer {token}");
        let members = oha_with(
            &self.oha,
            self.mode.phase,
            32,
            &format!("{base}/org/members?limit=100"),
            None,
            &[&bearer],
        );
        let get = oha_with(
            &self.oha,
            self.mode.phase,
            32,
            &format!("{base}/org/get?organization_name=Team%20Org"),
            None,
            &[],
        );
        figures.insert(
            "members_list_c32".into(),
            json!({
                "members": 100, "api": members.json(), "get_org": get.json(),
                "ratio": round(members.ok_rps / get.ok_rps),
            }),
        );

        // Accepts by new accounts: each hashes a password, so the ceiling is the create's.
        let tokens = Arc::new(invitations(store, &org.id, 2_000, "accept").await);
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.cores * 4 {
            let (client, tokens, next, stop, accepted, base) = (
                client.clone(),
                Arc::clone(&tokens),
                Arc::clone(&next),
                Arc::clone(&stop),
                Arc::clone(&accepted),
                base.to_owned(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Some(token) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let r = client
                        .post(format!("{base}/invitations/accept"))
                        .json(&json!({"token": token, "password": PASSWORD}))
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 200 {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(self.mode.phase).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let rate = accepted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        let ceiling = self.cores as f64 / hashing.as_secs_f64();
        figures.insert(
            "accept".into(),
            json!({
                "rps": round(rate), "ceiling_rps": round(ceiling), "ratio": round(rate / ceiling),
            }),
        );
    }
}
