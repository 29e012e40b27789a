//! Secrets in configuration: a type whose `Debug` prints nothing, and the strength rule
//! production holds `SECRET_KEY` to.

use std::fmt;

/// Bytes that must never be printed: `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    /// The secret bytes, for the one place that needs them (the JWT keys).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

/// Shortest `SECRET_KEY` production accepts, in bytes.
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Least estimated entropy of a production `SECRET_KEY`, in bits: what HS256 needs to resist
/// offline guessing of a captured token (NIST SP 800-107 asks for a key at least as strong as
/// the security level; 128 bits is the floor every current guideline shares).
pub const MIN_PRODUCTION_SECRET_BITS: f64 = 128.0;

/// Keys published in this project's documentation, examples, tests and benchmarks, and in the
/// original service's README: anyone can read them, so they sign nothing in production.
const PUBLISHED_KEYS: &[&str] = &[
    "change-me-to-the-output-of-openssl-rand-hex-32",
    "test-secret-key-that-is-32-bytes-long!!",
    "fuzzing-secret-key-of-at-least-32-bytes",
    "benchmark-secret-key-of-at-least-32-bytes",
    "your-secret-key-here",
    "your-super-secret-key-change-this-in-production",
];

/// Fragments that only placeholder keys contain (`a1b2c3d4e5f6...` is the original's example).
const PLACEHOLDER_FRAGMENTS: &[&str] = &["change-me", "changeme", "a1b2c3d4e5f6", "your-secret"];

/// Estimated entropy of `key` in bits: its length times the Shannon entropy of its byte
/// distribution. It is an upper bound for structured keys (a repeated phrase scores as its
/// letters), but it catches what people actually paste: repeated characters, short alphabets,
/// keyboard runs of a few symbols.
pub fn estimated_entropy_bits(key: &[u8]) -> f64 {
    if key.is_empty() {
        return 0.0;
    }
    let mut counts = [0_u32; 256];
    for &b in key {
        counts[usize::from(b)] += 1;
    }
    let len = key.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum();
    per_byte * len
}

/// Why `key` is refused as a production signing key, or `None` when it is acceptable.
pub fn production_key_problem(key: &str) -> Option<String> {
    if key.len() < MIN_PRODUCTION_SECRET_BYTES {
        return Some(format!(
            "must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production (try `openssl rand -hex 32`)"
        ));
    }
    let lower = key.to_ascii_lowercase();
    if PUBLISHED_KEYS.contains(&key) || PLACEHOLDER_FRAGMENTS.iter().any(|f| lower.contains(f)) {
        return Some(
            "is an example value from the documentation: generate one with `openssl rand -hex 32`"
                .into(),
        );
    }
    let bits = estimated_entropy_bits(key.as_bytes());
    if bits < MIN_PRODUCTION_SECRET_BITS {
        return Some(format!(
            "is too predictable (about {bits:.0} bits of entropy, at least {MIN_PRODUCTION_SECRET_BITS:.0} needed): generate one with `openssl rand -hex 32`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_is_length_times_shannon_entropy() {
        assert_eq!(estimated_entropy_bits(b""), 0.0);
        assert_eq!(estimated_entropy_bits(&[b'a'; 40]), 0.0);
        // Two symbols, equally often: 1 bit each.
        assert!((estimated_entropy_bits(&b"ab".repeat(20)) - 40.0).abs() < 1e-9);
        // Sixteen symbols, equally often: 4 bits each.
        let hex = b"0123456789abcdef".repeat(2);
        assert!((estimated_entropy_bits(&hex) - 128.0).abs() < 1e-9);
        // Unequal frequencies: 3 a's and 1 b is 0.811 bits a byte.
        assert!((estimated_entropy_bits(b"aaab") - 3.245_112_497_836_532).abs() < 1e-9);
    }

    #[test]
    fn production_refuses_short_published_and_predictable_keys() {
        assert!(production_key_problem(&"k".repeat(31))
            .unwrap()
            .contains("at least 32 bytes"));
        assert!(production_key_problem(&"a".repeat(32))
            .unwrap()
            .contains("predictable"));
        for published in PUBLISHED_KEYS {
            let problem = production_key_problem(published).unwrap();
            assert!(
                problem.contains("example") || problem.contains("32 bytes"),
                "{published}"
            );
        }
        let placeholder = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0";
        assert!(production_key_problem(placeholder)
            .unwrap()
            .contains("example"));
        assert!(
            production_key_problem("CHANGE-ME-please-0123456789abcdefghij")
                .unwrap()
                .contains("example")
        );
        // 32 bytes of 16 evenly used symbols is exactly 128 bits: accepted.
        let edge = "0123456789abcdef".repeat(2);
        assert_eq!(production_key_problem(&edge), None);
        // One symbol fewer is below the floor.
        let below = "0123456789abcdee".repeat(2);
        assert!(production_key_problem(&below).is_some());
        // What `openssl rand -hex 32` prints is fine.
        let generated = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(production_key_problem(generated), None);
    }
}
