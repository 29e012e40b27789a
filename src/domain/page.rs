//! Paging by an opaque cursor, never by offset: a page starts after the last item of the one
//! before, by `(time, id)`, so page 1,000 costs what page 1 does and an insert between two
//! requests neither repeats nor skips an item.

use chrono::{DateTime, Utc};

use super::Invalid;

/// Items per page when the request does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 100;

/// Where a page starts: after the item with this time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    /// The item's ordering time, to the microsecond.
    pub at: DateTime<Utc>,
    /// The item's 24-hex-digit id (ties on `at` are ordered by it).
    pub id: String,
}

impl PageKey {
    /// The key after `(at, id)`.
    pub fn after(at: DateTime<Utc>, id: &str) -> Self {
        Self {
            at,
            id: id.to_owned(),
        }
    }

    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a cursor this service issued; anything else is a 422.
    pub fn decode(raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("value_error", "Invalid cursor");
        let bytes = unhex(raw).ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (micros, id) = text.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let hex_id = id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_id {
            return Err(bad());
        }
        Ok(Self::after(at, id))
    }
}

/// Hex digits (lower-case, in pairs) to bytes.
fn unhex(raw: &str) -> Option<Vec<u8>> {
    if raw.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    raw.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? * 16 + digit(pair[1])?))
        .collect()
}

/// Checks a requested page size: 1 to [`MAX_LIMIT`], never clamped.
pub fn page_limit(requested: Option<i64>) -> Result<u32, Invalid> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => Ok(n as u32),
        Some(_) => Err(Invalid::new(
            "value_error",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    const ID: &str = "65a1b2c3d4e5f6a7b8c9d0e1";

    #[test]
    fn cursors_round_trip_to_the_microsecond() {
        let at = DateTime::from_timestamp_micros(1_764_496_000_123_456).unwrap();
        let key = PageKey::after(at, ID);
        let raw = key.encode();
        assert_eq!(raw, enc(&format!("1764496000123456.{ID}")));
        assert_eq!(PageKey::decode(&raw), Ok(key));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            String::new(),
            "!!!".to_owned(),
            enc("123"),
            enc(&format!("x.{ID}")),
            enc("1.65a1b2c3d4e5f6a7b8c9d0e"),
            enc("1.65a1b2c3d4e5f6a7b8c9d0e1f"),
            enc("1.65A1B2C3D4E5F6A7B8C9D0E1"),
            enc("1.65a1b2c3d4e5f6a7b8c9d0eg"),
            enc(&format!("{}.{ID}", i64::MAX)),
            "fffe".to_owned(),
            "abc".to_owned(),
            "3g".to_owned(),
            enc(&format!("1.{ID}")).to_uppercase(),
        ] {
            let err = PageKey::decode(&bad).unwrap_err();
            assert_eq!(
                (err.kind, err.message.as_str()),
                ("value_error", "Invalid cursor"),
                "{bad}"
            );
        }
        assert!(PageKey::decode(&enc(&format!("-5.{ID}"))).is_ok());
    }

    #[test]
    fn limits_are_checked_not_clamped() {
        assert_eq!(page_limit(None), Ok(50));
        assert_eq!(page_limit(Some(1)), Ok(1));
        assert_eq!(page_limit(Some(100)), Ok(100));
        for bad in [0, 101, -1, i64::MAX] {
            let err = page_limit(Some(bad)).unwrap_err();
            assert_eq!(err.message, "limit must be between 1 and 100");
        }
    }
}
