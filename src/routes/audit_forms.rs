//! The query of `GET /org/audit` and `/org/audit/export`, parsed once (see `forms.rs`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::team_forms::parse_limit;
use crate::domain::{AuditAction, Invalid, TimeRange};
use crate::error::{ApiError, FieldError};
use crate::storage::AuditQuery;

/// `GET /org/audit?action=&actor_id=&since=&until=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    /// Only this action, e.g. `member.invited`.
    #[param(example = "member.invited")]
    pub action: Option<String>,
    /// Only events by this actor (an account's `admin_id` or an API key's id).
    #[param(example = "65a1b2c3d4e5f6a7b8c9d0e2")]
    pub actor_id: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub until: Option<String>,
    /// Events per page, 1 to 100 (default 50); outside that range is a 422, never clamped.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the newest events.
    pub cursor: Option<String>,
}

/// `GET /org/audit/export?since=&until=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditExportQuery {
    /// Only events at or after this time (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub until: Option<String>,
}

fn time(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Invalid::new(
                "datetime_parsing",
                "Input should be an RFC 3339 time, e.g. 2026-11-30T09:15:00Z",
            )
        })
}

/// Collects the failures of a query's fields.
struct QueryFields(Vec<FieldError>);

impl QueryFields {
    fn take<T>(&mut self, name: &str, parsed: Result<T, Invalid>) -> Option<T> {
        parsed
            .map_err(|e| {
                self.0
                    .push(FieldError::new(&["query", name], e.kind, e.message))
            })
            .ok()
    }

    fn optional<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Option<T>> {
        self.take(name, raw.map(parse).transpose())
    }
}

/// The opaque cursor of a page: the sequence of its last event, in decimal.
pub fn cursor_of(sequence: i64) -> String {
    sequence.to_string()
}

fn cursor(raw: &str) -> Result<i64, Invalid> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| *s >= 1 && raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Invalid::new("value_error", "cursor is not one this service issued"))
}

fn range(fields: &mut QueryFields, since: Option<&str>, until: Option<&str>) -> Option<TimeRange> {
    let since = fields.optional("since", since, time);
    let until = fields.optional("until", until, time);
    Some(TimeRange {
        since: since?,
        until: until?,
    })
}

impl TryFrom<AuditListQuery> for AuditQuery {
    type Error = ApiError;

    fn try_from(q: AuditListQuery) -> Result<Self, ApiError> {
        let mut fields = QueryFields(Vec::new());
        let action = fields.optional("action", q.action.as_deref(), AuditAction::parse);
        let times = range(&mut fields, q.since.as_deref(), q.until.as_deref());
        let before = fields.optional("cursor", q.cursor.as_deref(), cursor);
        let limit = match parse_limit(q.limit.as_deref()) {
            Ok(limit) => Some(limit),
            Err(ApiError::Validation(mut errors)) => {
                fields.0.append(&mut errors);
                None
            }
            Err(other) => return Err(other),
        };
        let query = (|| {
            let times = times?;
            Some(AuditQuery {
                action: action?,
                actor_id: q.actor_id,
                since: times.since,
                until: times.until,
                before: before?,
                limit: limit?,
            })
        })();
        query.ok_or(ApiError::Validation(fields.0))
    }
}

impl TryFrom<AuditExportQuery> for TimeRange {
    type Error = ApiError;

    fn try_from(q: AuditExportQuery) -> Result<Self, ApiError> {
        let mut fields = QueryFields(Vec::new());
        range(&mut fields, q.since.as_deref(), q.until.as_deref())
            .ok_or(ApiError::Validation(fields.0))
    }
}

#[cfg(test)]
mod tests;
