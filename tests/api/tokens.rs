//! Token validation: every bad token is a 401 with `WWW-Authenticate: Bearer`.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::both_stores;
use crate::helpers::*;

fn sign(alg: Algorithm, key: &[u8], claims: &serde_json::Value) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

fn b64(s: &str) -> String {
    use std::fmt::Write;
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let _ = write!(out, "{}", T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

both_stores! {
    /// Missing, malformed, forged, expired, not-yet-valid, wrong-algorithm and `alg: none`
    /// tokens are all refused with 401 and `WWW-Authenticate: Bearer`, and change nothing.
    async fn bad_tokens_get_401(backend: Backend) {
        let app = spawn_app(backend).await;
        let org = app.given_org("Acme", "a@acme.com").await;
        let good = app.token("a@acme.com", PASSWORD).await;
        let payload: serde_json::Value = {
            let part = good.split('.').nth(1).unwrap();
            let padded = format!("{part}{}", "=".repeat((4 - part.len() % 4) % 4));
            let bytes = decode_b64(&padded);
            serde_json::from_slice(&bytes).unwrap()
        };
        let admin_id = payload["admin_id"].as_str().unwrap().to_owned();
        let now = chrono::Utc::now().timestamp();
        let claims = |iat: i64, nbf: i64, exp: i64| json!({
            "sub": admin_id, "admin_id": admin_id, "organization_id": org["organization_id"],
            "ver": 0, "iat": iat, "nbf": nbf, "exp": exp, "jti": "t",
        });
        let key = TEST_SECRET.as_bytes();
        let mut no_exp = claims(now, now, now + 60);
        no_exp.as_object_mut().unwrap().remove("exp");
        let cases: Vec<(String, &str)> = vec![
            ("Bearer".into(), "empty bearer"),
            ("Bearer not.a.jwt".into(), "malformed"),
            (format!("Basic {good}"), "wrong scheme"),
            (format!("Bearer {}", sign(Algorithm::HS256, b"some-other-key-some-other-key-!!", &claims(now, now, now + 60))), "forged"),
            (format!("Bearer {}", sign(Algorithm::HS256, key, &claims(now - 600, now - 600, now - 60))), "expired"),
            (format!("Bearer {}", sign(Algorithm::HS256, key, &claims(now, now + 600, now + 900))), "not yet valid"),
            (format!("Bearer {}", sign(Algorithm::HS512, key, &claims(now, now, now + 60))), "other algorithm"),
            (format!("Bearer {}", sign(Algorithm::HS256, key, &no_exp)), "no exp"),
            (format!("Bearer {}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims(now, now, now + 60).to_string())), "alg none"),
            (format!("Bearer {}", sign(Algorithm::HS256, key, &{ let mut c = claims(now, now, now + 60); c["ver"] = json!(1); c })), "stale token version"),
            (format!("Bearer {}", sign(Algorithm::HS256, key, &{ let mut c = claims(now, now, now + 60); c["organization_id"] = json!("000000000000000000000000"); c })), "other organization"),
        ];
        for (header, why) in cases {
            let r = app.client.delete(app.url("/org/delete")).header("authorization", header).json(&json!({"organization_name": "Acme"})).send().await.unwrap();
            assert_eq!(r.status(), 401, "{why}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer", "{why}");
            assert!(json_body(r).await["detail"].is_string(), "{why}");
        }
        // A well-formed token of ours is accepted (the cases above failed for their reason).
        let valid = sign(Algorithm::HS256, key, &claims(now, now, now + 60));
        let r = app.client.put(app.url("/org/update")).bearer_auth(&valid)
            .json(&json!({"organization_name": "Acme", "email": "a@acme.com", "password": PASSWORD})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        app.assert_consistent(1).await;
    }
}

fn decode_b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' | b'+' => 62,
            _ => 63,
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (val(c) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
