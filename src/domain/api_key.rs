//! API keys: machine credentials of one organization, for its documents only.
//!
//! A key reads `osk_<prefix>_<secret>`: 16 hex digits of prefix (64 random bits, the stores'
//! lookup key, shown in lists so a person can tell keys apart) and 64 hex digits of secret (256
//! random bits). Stores keep the prefix and the SHA-256 of the whole key, never the key. A
//! presented key is parsed here before anything else: a malformed one never reaches a store.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Invalid, MemberRole};

/// What every key starts with (recognisable by secret scanners and in a leaked log line).
pub const KEY_START: &str = "osk_";
/// Hex digits of a key's prefix.
pub const PREFIX_DIGITS: usize = 16;
/// Hex digits of a key's secret (256 bits).
pub const SECRET_DIGITS: usize = 64;
/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;
/// Longest lifetime a key may be given, in days (ten years); without one it never expires.
pub const MAX_KEY_DAYS: i64 = 3650;
/// Keys an organization may hold at once (expired ones included, until revoked).
pub const MAX_API_KEYS: u64 = 100;
/// How stale a stored `last_used_at` may get: a use later than this after it is written.
pub const TOUCH_INTERVAL_SECONDS: i64 = 60;

/// An API key as stored and listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id (in `DELETE /org/api-keys/{id}`).
    pub id: String,
    /// The organization it belongs to (it dies with it, not with its creator).
    pub organization_id: String,
    /// A name for people.
    pub name: String,
    /// `member` (reads and writes documents) or `viewer` (reads).
    pub role: MemberRole,
    /// The public part of the key, after `osk_`.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The account that made it.
    pub created_by: String,
    /// Its last use, to within [`TOUCH_INTERVAL_SECONDS`]; `None` before the first.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key still works at `now` (not past its expiry).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// A stored key with the hash a presented key is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The key's record.
    pub key: ApiKey,
    /// Lowercase hex SHA-256 of the whole key.
    pub hash: String,
}

impl StoredApiKey {
    /// Whether `presented` is this key: its hash compared in constant time, so the time an
    /// answer takes says nothing about how much of a guess was right.
    pub fn matches(&self, presented: &PresentedKey<'_>) -> bool {
        hash_key(presented.raw)
            .as_bytes()
            .ct_eq(self.hash.as_bytes())
            .into()
    }
}

/// A key as a request presents it, well-formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    /// The prefix: what the store looks the key up by.
    pub prefix: &'a str,
    raw: &'a str,
}

fn lower_hex(s: &str, digits: usize) -> bool {
    s.len() == digits && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl<'a> PresentedKey<'a> {
    /// `osk_`, 16 lowercase hex digits, `_`, 64 lowercase hex digits: exactly, or `None`.
    pub fn parse(raw: &'a str) -> Option<Self> {
        let rest = raw.strip_prefix(KEY_START)?;
        let (prefix, secret) = rest.split_once('_')?;
        (lower_hex(prefix, PREFIX_DIGITS) && lower_hex(secret, SECRET_DIGITS))
            .then_some(Self { prefix, raw })
    }
}

/// Whether a credential is meant as an API key (it starts like one), well-formed or not.
pub fn looks_like_key(credential: &str) -> bool {
    credential.starts_with(KEY_START)
}

/// Lowercase hex SHA-256 of a whole key: what stores keep.
pub fn hash_key(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new key: `(key, prefix, hash)`.
pub fn generate_key() -> (String, String, String) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let prefix = hex(&rand::random::<[u8; PREFIX_DIGITS / 2]>());
    let secret = hex(&rand::random::<[u8; SECRET_DIGITS / 2]>());
    let key = format!("{KEY_START}{prefix}_{secret}");
    let hash = hash_key(&key);
    (key, prefix, hash)
}

/// A key's role: `member` or `viewer`. A key never runs the organization, so `owner` and
/// `admin` are refused (422) like an unknown role.
pub fn key_role(raw: &str) -> Result<MemberRole, Invalid> {
    match MemberRole::parse(raw) {
        Ok(role @ (MemberRole::Member | MemberRole::Viewer)) => Ok(role),
        _ => Err(Invalid::new(
            "enum",
            "Input should be 'member' or 'viewer' (an API key cannot be an owner or admin)",
        )),
    }
}

/// A key's name: trimmed, 1 to 100 characters, no control characters.
pub fn key_name(raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_KEY_NAME_CHARS {
        return Err(Invalid::new(
            "string_length",
            format!("name must be 1 to {MAX_KEY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::new(
            "value_error",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// `expires_in_days`: 1 to [`MAX_KEY_DAYS`], or absent (the key never expires).
pub fn key_days(days: Option<i64>) -> Result<Option<i64>, Invalid> {
    match days {
        Some(d) if !(1..=MAX_KEY_DAYS).contains(&d) => Err(Invalid::new(
            "value_error",
            format!("expires_in_days must be between 1 and {MAX_KEY_DAYS}"),
        )),
        other => Ok(other),
    }
}

/// When a key made at `now` to last `days` expires.
pub fn key_expiry(now: DateTime<Utc>, days: Option<i64>) -> Option<DateTime<Utc>> {
    days.map(|d| now + Duration::days(d))
}

/// Whether a use at `now` must be written as the key's `last_used_at`, given the latest use
/// known to be written: none yet, or one [`TOUCH_INTERVAL_SECONDS`] or more ago. So the stored
/// time is never more than that behind, at one write per key per interval.
pub fn touch_due(last_written: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_written.is_none_or(|t| now - t >= Duration::seconds(TOUCH_INTERVAL_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn generated_keys_parse_and_match_only_themselves() {
        let (key, prefix, hash) = generate_key();
        assert_eq!(key.len(), 4 + 16 + 1 + 64);
        assert_eq!(&key[4..20], prefix);
        assert_eq!(hash, hash_key(&key));
        assert_eq!(hash.len(), 64);
        let presented = PresentedKey::parse(&key).unwrap();
        assert_eq!(presented.prefix, prefix);
        let stored = StoredApiKey {
            key: sample(None),
            hash,
        };
        assert!(stored.matches(&presented));
        let (other, _, _) = generate_key();
        assert!(!stored.matches(&PresentedKey::parse(&other).unwrap()));
        assert_ne!(generate_key().0, generate_key().0);
    }

    #[test]
    fn sha256_is_the_stored_form() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_the_exact_shape_parses() {
        let p = "0123456789abcdef";
        let s = "a".repeat(64);
        assert!(PresentedKey::parse(&format!("osk_{p}_{s}")).is_some());
        for bad in [
            format!("osk_{p}_{}", "a".repeat(63)),
            format!("osk_{p}_{}", "a".repeat(65)),
            format!("osk_{}_{s}", &p[..15]),
            format!("osk_{p}0_{s}"),
            format!("osk_{p}_{}A", "a".repeat(63)),
            format!("osk_0123456789ABCDEF_{s}"),
            format!("osk_{p}_{}g", "a".repeat(63)),
            format!("osk_{}/_{s}", &p[..15]),
            format!("osk_{p}{s}"),
            format!("osk_{p}-{s}"),
            format!("OSK_{p}_{s}"),
            format!("ort_{p}_{s}"),
            format!("osk_{p}_{s}_"),
        ] {
            assert!(PresentedKey::parse(&bad).is_none(), "{bad}");
        }
        assert!(looks_like_key("osk_x"));
        assert!(!looks_like_key("eyJhbGciOi"));
        assert!(!looks_like_key("Osk_"));
    }

    #[test]
    fn keys_are_members_or_viewers() {
        assert_eq!(key_role("member"), Ok(MemberRole::Member));
        assert_eq!(key_role("viewer"), Ok(MemberRole::Viewer));
        for bad in ["owner", "admin", "Member", ""] {
            assert_eq!(key_role(bad).unwrap_err().kind, "enum", "{bad}");
        }
    }

    #[test]
    fn names_are_1_to_100_characters_without_controls() {
        assert_eq!(key_name("  ci deploy ").unwrap(), "ci deploy");
        assert_eq!(key_name(&"é".repeat(100)).unwrap().chars().count(), 100);
        assert_eq!(
            key_name(&"é".repeat(101)).unwrap_err().kind,
            "string_length"
        );
        assert_eq!(key_name("   ").unwrap_err().kind, "string_length");
        assert_eq!(key_name("x").unwrap(), "x");
        assert_eq!(key_name("a\u{7}b").unwrap_err().kind, "value_error");
    }

    #[test]
    fn lifetimes_are_1_to_3650_days_or_none() {
        assert_eq!(key_days(None), Ok(None));
        assert_eq!(key_days(Some(1)), Ok(Some(1)));
        assert_eq!(key_days(Some(3650)), Ok(Some(3650)));
        assert!(key_days(Some(0)).is_err());
        assert!(key_days(Some(3651)).is_err());
        assert!(key_days(Some(-1)).is_err());
        assert_eq!(key_expiry(at(0), Some(2)), Some(at(2 * 86_400)));
        assert_eq!(key_expiry(at(0), None), None);
    }

    fn sample(expires_at: Option<DateTime<Utc>>) -> ApiKey {
        ApiKey {
            id: "k".into(),
            organization_id: "o".into(),
            name: "n".into(),
            role: MemberRole::Viewer,
            prefix: "p".into(),
            created_at: at(0),
            expires_at,
            created_by: "a".into(),
            last_used_at: None,
        }
    }

    #[test]
    fn a_key_works_until_its_expiry() {
        assert!(sample(None).is_live(at(1_000_000)));
        assert!(sample(Some(at(10))).is_live(at(9)));
        assert!(!sample(Some(at(10))).is_live(at(10)));
        assert!(!sample(Some(at(10))).is_live(at(11)));
    }

    #[test]
    fn last_use_is_written_once_a_minute() {
        assert!(touch_due(None, at(0)));
        assert!(!touch_due(Some(at(0)), at(59)));
        assert!(touch_due(Some(at(0)), at(60)));
        assert!(touch_due(Some(at(0)), at(61)));
        assert!(!touch_due(Some(at(10)), at(0)));
    }
}
