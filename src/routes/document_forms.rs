//! What a documents request says besides its body: `If-Match`, and the `filter`, `limit` and
//! `cursor` of a list, parsed once.

use serde::Deserialize;
use utoipa::IntoParams;

use super::team_forms::parse_limit;
use crate::domain::{Filter, Invalid};
use crate::error::ApiError;

/// `If-Match`: the versions a write is conditioned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version (the document must exist).
    Any,
    /// A list of strong entity tags, `"<version>"`; weak ones (`W/"1"`) and anything else
    /// never match (RFC 9110 §13.1.1 compares strongly).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Reads the header's value (absent: `None`, the write applies unconditionally).
    pub fn parse(header: Option<&str>) -> Option<Self> {
        let header = header?.trim();
        if header == "*" {
            return Some(Self::Any);
        }
        let versions = header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
                if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                inner.parse().ok()
            })
            .collect();
        Some(Self::Versions(versions))
    }

    /// Whether a document at `version` satisfies it.
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(list) => list.contains(&version),
        }
    }

    /// Whether it names versions (a lost race is then a 412, not a retry).
    pub fn is_specific(&self) -> bool {
        matches!(self, Self::Versions(_))
    }
}

/// The `ETag` of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `GET /org/documents?filter=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A JSON object of at most 8 equality conditions on scalar fields, dotted paths allowed:
    /// `{"status": "open", "owner.id": 7}`. Type and value must match exactly.
    #[param(example = "{\"status\": \"open\"}")]
    pub filter: Option<String>,
    /// Documents per page, 1 to 100 (default 50); outside that range is a 422, never clamped.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// `GET /org/documents/count?filter=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    /// As for the list.
    #[param(example = "{\"status\": \"open\"}")]
    pub filter: Option<String>,
}

/// A list request, parsed.
#[derive(Debug)]
pub struct ListForm {
    pub filter: Filter,
    pub limit: u32,
    /// The id of the last document of the previous page.
    pub after: Option<String>,
}

/// The filter, or a 422 at `query.filter`.
pub fn parse_filter(raw: Option<&str>) -> Result<Filter, ApiError> {
    Filter::parse(raw).map_err(|e| ApiError::field(&["query", "filter"], e.kind, e.message))
}

/// A cursor is the last document's id: 24 lower-case hex digits.
fn parse_cursor(raw: &str) -> Result<String, ApiError> {
    let ok = raw.len() == 24 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        let e = Invalid::new("value_error", "Invalid cursor");
        return Err(ApiError::field(&["query", "cursor"], e.kind, e.message));
    }
    Ok(raw.to_owned())
}

impl TryFrom<ListQuery> for ListForm {
    type Error = ApiError;

    fn try_from(q: ListQuery) -> Result<Self, ApiError> {
        Ok(Self {
            filter: parse_filter(q.filter.as_deref())?,
            limit: parse_limit(q.limit.as_deref())?,
            after: q.cursor.as_deref().map(parse_cursor).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_strong_tags_only() {
        assert_eq!(IfMatch::parse(None), None);
        assert_eq!(IfMatch::parse(Some("*")), Some(IfMatch::Any));
        assert_eq!(
            IfMatch::parse(Some(" \"3\" ")),
            Some(IfMatch::Versions(vec![3]))
        );
        assert_eq!(
            IfMatch::parse(Some("\"1\", W/\"2\", \"x\", 4, \"\", \"5\"")),
            Some(IfMatch::Versions(vec![1, 5]))
        );
        assert_eq!(
            IfMatch::parse(Some("\"-1\"")),
            Some(IfMatch::Versions(vec![]))
        );
        assert_eq!(
            IfMatch::parse(Some("\"99999999999999999999\"")),
            Some(IfMatch::Versions(vec![]))
        );
        let m = IfMatch::parse(Some("\"2\"")).unwrap();
        assert!(m.matches(2) && !m.matches(3) && m.is_specific());
        assert!(IfMatch::Any.matches(7) && !IfMatch::Any.is_specific());
        assert!(!IfMatch::Versions(vec![]).matches(1));
        assert_eq!(etag(12), "\"12\"");
    }

    #[test]
    fn list_queries_are_checked() {
        let q = |filter: Option<&str>, limit: Option<&str>, cursor: Option<&str>| {
            ListForm::try_from(ListQuery {
                filter: filter.map(str::to_owned),
                limit: limit.map(str::to_owned),
                cursor: cursor.map(str::to_owned),
            })
        };
        let ok = q(
            Some("{\"a\":1}"),
            Some("10"),
            Some("65a1b2c3d4e5f6a7b8c9d0e1"),
        )
        .unwrap();
        assert_eq!((ok.filter.conditions.len(), ok.limit), (1, 10));
        assert_eq!(ok.after.as_deref(), Some("65a1b2c3d4e5f6a7b8c9d0e1"));
        assert_eq!(q(None, None, None).unwrap().limit, 50);
        for (filter, limit, cursor) in [
            (Some("[1]"), None, None),
            (None, Some("0"), None),
            (None, None, Some("65A1B2C3D4E5F6A7B8C9D0E1")),
            (None, None, Some("65a1b2c3d4e5f6a7b8c9d0e")),
            (None, None, Some("65a1b2c3d4e5f6a7b8c9d0eg")),
        ] {
            assert!(matches!(
                q(filter, limit, cursor),
                Err(ApiError::Validation(_))
            ));
        }
    }
}
