//! The pure half of `Idempotency-Key`: which keys are valid, where a key lives (its scope),
//! what makes two requests the same (the fingerprint), and the sealing of stored responses.

use axum::http::Method;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::MAX_KEY_LEN;

/// Why a key is refused, or `None` if it is a valid key.
pub fn key_problem(key: &[u8]) -> Option<&'static str> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Some("Idempotency-Key must be 1 to 255 characters");
    }
    if !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Some("Idempotency-Key must be visible ASCII characters (no spaces)");
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a key lives: the path, the caller's credentials and the key itself.
pub fn scope(path: &str, authorization: Option<&[u8]>, key: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [path.as_bytes(), authorization.unwrap_or_default(), key] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

/// What makes two requests "the same": method, path and query, and the body.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), path_and_query.as_bytes(), body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

/// Seals and opens stored responses.
#[derive(Clone)]
pub struct Sealer(ChaCha20Poly1305);

impl Sealer {
    /// The sealer for this deployment's `SECRET_KEY` (HMAC-SHA-256 as the key derivation).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"org-service idempotency v1");
        let key = mac.finalize().into_bytes();
        Self(ChaCha20Poly1305::new_from_slice(&key).expect("a 32-byte key"))
    }

    pub(super) fn seal(&self, scope: &str, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .0
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plain,
                    aad: scope.as_bytes(),
                },
            )
            .expect("encryption does not fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub(super) fn open(&self, scope: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.0
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: scope.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert_eq!(key_problem(b"a"), None);
        assert_eq!(key_problem(&[b'k'; 255]), None);
        assert!(key_problem(b"").is_some());
        assert!(key_problem(&[b'k'; 256]).is_some());
        assert!(key_problem(b"has space").unwrap().contains("visible"));
        assert!(key_problem(b"tab\there").is_some());
        assert!(key_problem("é".as_bytes()).is_some());
        assert_eq!(key_problem(b"!~"), None);
        assert!(key_problem(&[0x7f]).is_some());
    }

    #[test]
    fn scopes_and_fingerprints_separate_their_parts() {
        let a = scope("/org/create", None, b"k1");
        assert_eq!(a.len(), 64);
        assert_ne!(a, scope("/org/create", None, b"k2"));
        assert_ne!(a, scope("/admin/login", None, b"k1"));
        assert_ne!(a, scope("/org/create", Some(b"Bearer x"), b"k1"));
        // Moving bytes between parts changes the result (each part is length-prefixed).
        assert_ne!(scope("/a", Some(b"b"), b"c"), scope("/a", Some(b""), b"bc"));
        let f = fingerprint(&Method::POST, "/org/create", b"{}");
        assert_ne!(f, fingerprint(&Method::POST, "/org/create", b"{ }"));
        assert_ne!(f, fingerprint(&Method::POST, "/org/create?x=1", b"{}"));
        assert_ne!(f, fingerprint(&Method::PUT, "/org/create", b"{}"));
    }

    #[test]
    fn sealed_responses_open_only_under_their_scope_and_key() {
        let sealer = Sealer::new(b"a secret key of some length......");
        let sealed = sealer.seal("scope-1", b"{\"access_token\":\"t\"}");
        assert!(
            !sealed.windows(12).any(|w| w == b"access_token"),
            "stored in clear"
        );
        assert_eq!(
            sealer.open("scope-1", &sealed).unwrap(),
            b"{\"access_token\":\"t\"}"
        );
        assert_eq!(sealer.open("scope-2", &sealed), None);
        assert_eq!(
            Sealer::new(b"another secret").open("scope-1", &sealed),
            None
        );
        assert_eq!(sealer.open("scope-1", &sealed[..11]), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open("scope-1", &tampered), None);
    }
}
