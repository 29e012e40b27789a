//! Team request bodies and queries parsed into domain values, once (see `forms.rs`).

use serde::Deserialize;
use utoipa::IntoParams;

use super::forms::Fields;
use super::invitations::{AcceptRequest, InviteRequest};
use super::members::RoleRequest;
use crate::domain::{
    invitation_hours, page_limit, Email, Invalid, InvitationStatus, MemberRole, PageKey,
};
use crate::error::ApiError;

/// `?limit=&cursor=` of a paged list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50); outside that range is a 422, never clamped.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// `GET /org/invitations?status=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// Only invitations with this status now.
    #[param(inline)]
    pub status: Option<InvitationStatus>,
    /// Items per page, 1 to 100 (default 50); outside that range is a 422, never clamped.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// A page request, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub after: Option<PageKey>,
}

fn query_field<T>(name: &str, parsed: Result<T, Invalid>) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::field(&["query", name], e.kind, e.message))
}

/// `?limit=` as text: 1 to 100, default 50.
pub fn parse_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    let limit = limit
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                Invalid::new("int_parsing", "limit must be an integer between 1 and 100")
            })
        })
        .transpose();
    query_field("limit", limit.and_then(page_limit))
}

impl Page {
    /// `limit` as the query string has it (a number in text), `cursor` as issued.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            limit: parse_limit(limit)?,
            after: cursor
                .map(|c| query_field("cursor", PageKey::decode(c)))
                .transpose()?,
        })
    }
}

/// `POST /org/invitations`, parsed.
#[derive(Debug)]
pub struct InviteForm {
    pub email: Email,
    pub role: MemberRole,
    pub hours: u32,
}

impl TryFrom<InviteRequest> for InviteForm {
    type Error = ApiError;

    fn try_from(body: InviteRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let email = fields.take("email", Email::parse(&body.email));
        let role = fields.take("role", MemberRole::parse(&body.role));
        let hours = fields.take("expires_in_hours", invitation_hours(body.expires_in_hours));
        let form = (|| {
            Some(Self {
                email: email?,
                role: role?,
                hours: hours?,
            })
        })();
        fields.finish(form)
    }
}

/// `PATCH /org/members/{admin_id}`, parsed.
pub fn parse_role(body: &RoleRequest) -> Result<MemberRole, ApiError> {
    let mut fields = Fields::new();
    let role = fields.take("role", MemberRole::parse(&body.role));
    fields.finish(role)
}

/// `POST /invitations/accept`: the token's shape (1 to 256 characters, as documented). The
/// password's rules depend on whether the account exists, so it is parsed later.
pub fn check_accept(body: &AcceptRequest) -> Result<(), ApiError> {
    let mut fields = Fields::new();
    let n = body.token.chars().count();
    let token = fields.take(
        "token",
        if (1..=256).contains(&n) {
            Ok(())
        } else {
            Err(Invalid::new(
                "string_length",
                "token must be 1 to 256 characters",
            ))
        },
    );
    fields.finish(token)
}

#[cfg(test)]
mod tests {
    use super::super::forms::failed_locs as failed;
    use super::*;

    #[test]
    fn invitations_name_every_bad_field() {
        let invite = |email: &str, role: &str, hours| {
            InviteForm::try_from(InviteRequest {
                email: email.into(),
                role: role.into(),
                expires_in_hours: hours,
            })
        };
        let ok = invite("Bo@Acme.com", "viewer", None).unwrap();
        assert_eq!(
            (ok.email.as_str(), ok.role, ok.hours),
            ("bo@acme.com", MemberRole::Viewer, 168)
        );
        assert_eq!(
            invite("bo@acme.com", "owner", Some(720)).unwrap().hours,
            720
        );
        assert_eq!(
            failed(invite("nope", "root", Some(0)).unwrap_err()),
            ["body.email", "body.role", "body.expires_in_hours"]
        );
        assert_eq!(
            failed(invite("bo@acme.com", "admin", Some(721)).unwrap_err()),
            ["body.expires_in_hours"]
        );
    }

    #[test]
    fn pages_and_roles_are_checked() {
        assert_eq!(
            Page::parse(None, None).unwrap(),
            Page {
                limit: 50,
                after: None
            }
        );
        assert_eq!(Page::parse(Some("7"), None).unwrap().limit, 7);
        for bad in ["0", "101", "x", "", "1.5"] {
            assert_eq!(
                failed(Page::parse(Some(bad), None).unwrap_err()),
                ["query.limit"],
                "{bad}"
            );
        }
        assert_eq!(
            failed(Page::parse(Some("5"), Some("zz")).unwrap_err()),
            ["query.cursor"]
        );
        assert_eq!(
            parse_role(&RoleRequest {
                role: "member".into()
            })
            .unwrap(),
            MemberRole::Member
        );
        assert_eq!(
            failed(
                parse_role(&RoleRequest {
                    role: "Member".into()
                })
                .unwrap_err()
            ),
            ["body.role"]
        );
    }

    #[test]
    fn accept_tokens_are_1_to_256_characters() {
        let accept = |token: String| {
            check_accept(&AcceptRequest {
                token,
                password: "x".into(),
            })
        };
        assert!(accept("é".repeat(256)).is_ok());
        assert!(accept("a".into()).is_ok());
        assert_eq!(failed(accept(String::new()).unwrap_err()), ["body.token"]);
        assert_eq!(failed(accept("a".repeat(257)).unwrap_err()), ["body.token"]);
    }
}
