//! Refresh tokens: opaque random strings, stored only as SHA-256 hashes, rotated on every use.
//!
//! A login starts a *family*. `POST /admin/refresh` spends the presented token (atomically: of
//! two concurrent uses exactly one wins) and returns a new access token plus the next refresh
//! token of the family. Presenting a token that was already spent means it leaked (or a client
//! raced itself): the whole family is revoked, so the thief's copy and the owner's newer token
//! both stop working (RFC 9700 §4.14.2, refresh token rotation with reuse detection).

use sha2::{Digest, Sha256};

/// Prefix that makes a refresh token recognisable in logs and secret scanners.
pub const PREFIX: &str = "ort_";

/// Prefix of invitation tokens (same construction: 256 random bits, stored as SHA-256).
pub const INVITATION_PREFIX: &str = "oit_";

/// A new refresh token string (256 random bits) and the hash to store.
pub fn generate() -> (String, String) {
    generate_with(PREFIX)
}

/// A new secret token with `prefix` (256 random bits, hex: URL-safe) and the hash to store.
pub fn generate_with(prefix: &str) -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("{prefix}{}", hex(&bytes));
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!(ha, hash(&a));
        assert_ne!(ha, hb);
        assert!(!ha.contains(&a[PREFIX.len()..]));
        let (inv, h) = generate_with(INVITATION_PREFIX);
        assert!(inv.starts_with("oit_") && inv.len() == 4 + 64);
        assert!(inv[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(h, hash(&inv));
    }
}
