//! Access tokens: HS256/384/512 JWTs with one pinned algorithm.
//!
//! Verification accepts only the configured algorithm, requires `exp`, `iat` and `sub`, checks
//! `nbf`, and allows 5 seconds of clock skew (the library's default is 60). Header fields that
//! point elsewhere for keys (`kid`, `jku`, `x5u`, `jwk`) are ignored: there is one key. A token
//! is only half the check: the guard also loads its admin and compares the token version, so a
//! token dies with its admin, its organization or a credential change.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the admin id.
    pub sub: String,
    /// The admin id (the original's claim name, kept for clients that read it).
    pub admin_id: String,
    /// The admin's organization.
    pub organization_id: String,
    /// The account's token version when issued.
    pub ver: i64,
    /// The account's role in the organization when issued, for clients to read (the server
    /// reloads the membership on every request and never trusts this).
    #[serde(default)]
    pub role: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before (seconds since the epoch).
    pub nbf: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// Signing and verification keys plus the policy, built once from the configuration.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
    ttl: Duration,
}

/// Accepted clock skew between instances.
const LEEWAY_SECONDS: u64 = 5;

impl TokenKeys {
    /// Keys for `secret`, issuing and accepting only `algorithm`.
    pub fn new(
        secret: &Secret,
        algorithm: Algorithm,
        ttl: Duration,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.expose())?,
            decoding: DecodingKey::from_secret(secret.expose())?,
            header: Header::new(algorithm),
            validation,
            ttl,
        })
    }

    /// Token lifetime in seconds (the login response's `expires_in`).
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// Issues a token for the admin.
    pub fn issue(
        &self,
        admin_id: &str,
        organization_id: &str,
        version: i64,
        role: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: admin_id.to_owned(),
            admin_id: admin_id.to_owned(),
            organization_id: organization_id.to_owned(),
            ver: version,
            role: role.to_owned(),
            iat: now,
            nbf: now,
            exp: now.saturating_add_unsigned(self.ttl.as_secs()),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        encode(&self.header, &claims, &self.encoding)
    }

    /// Verifies signature, algorithm and times; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)?;
        if data.claims.sub != data.claims.admin_id {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidSubject.into());
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(alg: Algorithm) -> TokenKeys {
        TokenKeys::new(
            &Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()),
            alg,
            Duration::from_secs(60),
        )
        .unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let k = keys(Algorithm::HS256);
        let t = k.issue("a1", "o1", 3, "admin").unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(
            (
                c.admin_id.as_str(),
                c.organization_id.as_str(),
                c.ver,
                c.role.as_str()
            ),
            ("a1", "o1", 3, "admin")
        );
        // The lifetime is exactly the configured one, from issue to expiry.
        assert_eq!(c.exp - c.iat, 60);
        assert_eq!(c.nbf, c.iat);
        assert_eq!(k.ttl_seconds(), 60);
        let now = chrono::Utc::now().timestamp();
        assert!((now - 5..=now).contains(&c.iat), "iat {} now {now}", c.iat);
    }

    #[test]
    fn other_algorithms_and_keys_are_refused() {
        let t = keys(Algorithm::HS512)
            .issue("a1", "o1", 0, "owner")
            .unwrap();
        assert!(
            keys(Algorithm::HS256).verify(&t).is_err(),
            "algorithm is pinned"
        );
        let other = TokenKeys::new(
            &Secret::new(b"another key of enough length!!!!".to_vec()),
            Algorithm::HS256,
            Duration::from_secs(60),
        )
        .unwrap();
        let forged = other.issue("a1", "o1", 0, "owner").unwrap();
        assert!(
            keys(Algorithm::HS256).verify(&forged).is_err(),
            "signature is checked"
        );
    }

    #[test]
    fn alg_none_and_expired_tokens_are_refused() {
        use base64_url as b64;
        let k = keys(Algorithm::HS256);
        let now = Utc::now().timestamp();
        let claims = format!(
            r#"{{"sub":"a","admin_id":"a","organization_id":"o","ver":0,"iat":{now},"nbf":{now},"exp":{},"jti":"x"}}"#,
            now + 60
        );
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
        assert!(k.verify(&none).is_err());

        let mut expired = k.clone();
        expired.ttl = Duration::ZERO;
        let old = Claims {
            sub: "a".into(),
            admin_id: "a".into(),
            organization_id: "o".into(),
            ver: 0,
            role: "owner".into(),
            iat: now - 100,
            nbf: now - 100,
            exp: now - 30,
            jti: "j".into(),
        };
        let t = encode(&expired.header, &old, &expired.encoding).unwrap();
        assert!(k.verify(&t).is_err());
    }

    fn base64_url(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
