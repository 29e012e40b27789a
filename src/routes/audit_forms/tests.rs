use super::super::forms::failed_locs as failed;
use super::*;

fn list(
    action: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<AuditQuery, ApiError> {
    AuditQuery::try_from(AuditListQuery {
        action: action.map(str::to_owned),
        actor_id: Some("a1".into()),
        since: since.map(str::to_owned),
        until: until.map(str::to_owned),
        limit: limit.map(str::to_owned),
        cursor: cursor.map(str::to_owned),
    })
}

#[test]
fn a_list_query_parses_every_field() {
    let q = list(
        Some("member.invited"),
        Some("2026-11-01T00:00:00Z"),
        Some("2026-12-01T01:00:00+01:00"),
        Some("7"),
        Some("42"),
    )
    .unwrap();
    assert_eq!(
        q,
        AuditQuery {
            action: Some(AuditAction::MemberInvited),
            actor_id: Some("a1".into()),
            since: Some(
                DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                    .unwrap()
                    .into()
            ),
            until: Some(
                DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
                    .unwrap()
                    .into()
            ),
            before: Some(42),
            limit: 7,
        }
    );
    let q = list(None, None, None, None, Some("1")).unwrap();
    assert_eq!(
        (q.action, q.since, q.until, q.before, q.limit),
        (None, None, None, Some(1), 50)
    );
}

#[test]
fn every_bad_field_is_named() {
    assert_eq!(
        failed(
            list(
                Some("member.Invited"),
                Some("yesterday"),
                Some("2026-13-01T00:00:00Z"),
                Some("0"),
                Some("x")
            )
            .unwrap_err()
        ),
        [
            "query.action",
            "query.since",
            "query.until",
            "query.cursor",
            "query.limit"
        ]
    );
    for bad in ["0", "-1", "+5", "1.0", "", "99999999999999999999"] {
        assert_eq!(
            failed(list(None, None, None, None, Some(bad)).unwrap_err()),
            ["query.cursor"],
            "{bad}"
        );
    }
    assert_eq!(
        failed(list(None, None, None, Some("101"), None).unwrap_err()),
        ["query.limit"]
    );
    assert_eq!(cursor_of(17), "17");
}

#[test]
fn an_export_takes_a_time_range() {
    let r = TimeRange::try_from(AuditExportQuery {
        since: Some("2026-11-01T00:00:00Z".into()),
        until: None,
    })
    .unwrap();
    assert_eq!(r.since.unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
    assert_eq!(r.until, None);
    assert_eq!(
        failed(
            TimeRange::try_from(AuditExportQuery {
                since: Some("x".into()),
                until: Some("y".into()),
            })
            .unwrap_err()
        ),
        ["query.since", "query.until"]
    );
}
