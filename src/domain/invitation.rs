//! Invitations to join an organization: who, with which role, until when, and what became of
//! them. The token itself is never here: stores keep only its SHA-256.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Invalid, MemberRole};

/// Hours an invitation lasts when the request does not say.
pub const DEFAULT_INVITATION_HOURS: u32 = 168;
/// Longest an invitation may last (30 days).
pub const MAX_INVITATION_HOURS: u32 = 720;

/// What became of an invitation, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Waiting for its token.
    Pending,
    /// Used: its membership exists.
    Accepted,
    /// Withdrawn by an owner or admin.
    Revoked,
    /// Not used in time (a pending invitation past `expires_at`).
    Expired,
}

impl InvitationStatus {
    /// The status's name in the API and the stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// Parses a status name (exact, lower-case).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        [Self::Pending, Self::Accepted, Self::Revoked, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "enum",
                    "Input should be 'pending', 'accepted', 'revoked' or 'expired'",
                )
            })
    }
}

/// Why an invitation's token no longer works (410, naming which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationEnd {
    /// Used already.
    Accepted,
    /// Withdrawn.
    Revoked,
    /// Not used in time.
    Expired,
    /// A resend issued a newer token.
    Resent,
}

impl InvitationEnd {
    /// The 410's detail.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Accepted => "This invitation has already been accepted",
            Self::Revoked => "This invitation has been revoked",
            Self::Expired => "This invitation has expired",
            Self::Resent => "This invitation was re-sent; use the newest token",
        }
    }
}

/// An invitation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// 24-hex-digit id.
    pub id: String,
    /// The inviting organization.
    pub organization_id: String,
    /// The invited (normalized) email.
    pub email: String,
    /// The role the membership will have.
    pub role: MemberRole,
    /// `Pending`, `Accepted` or `Revoked` as stored; expiry is read from `expires_at`.
    pub stored_status: InvitationStatus,
    /// The requested lifetime, in hours (a resend starts it again).
    pub valid_hours: u32,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The inviting account's id.
    pub invited_by: String,
}

impl Invitation {
    /// The status at `now`: a pending invitation whose time is up is expired.
    pub fn status(&self, now: DateTime<Utc>) -> InvitationStatus {
        if self.stored_status == InvitationStatus::Pending && self.expires_at <= now {
            InvitationStatus::Expired
        } else {
            self.stored_status
        }
    }
}

impl Invitation {
    /// Whether the organization may still re-send or revoke it: not once accepted or revoked
    /// (an expired one may be re-sent, and revoked).
    pub fn check_open(&self) -> Result<(), InvitationEnd> {
        match self.stored_status {
            InvitationStatus::Accepted => Err(InvitationEnd::Accepted),
            InvitationStatus::Revoked => Err(InvitationEnd::Revoked),
            InvitationStatus::Pending | InvitationStatus::Expired => Ok(()),
        }
    }

    /// Whether a token of this invitation can be accepted at `now`: only the current token
    /// (`current`) of a pending, unexpired invitation.
    pub fn check_usable(&self, now: DateTime<Utc>, current: bool) -> Result<(), InvitationEnd> {
        match self.status(now) {
            InvitationStatus::Accepted => Err(InvitationEnd::Accepted),
            InvitationStatus::Revoked => Err(InvitationEnd::Revoked),
            InvitationStatus::Expired => Err(InvitationEnd::Expired),
            InvitationStatus::Pending if !current => Err(InvitationEnd::Resent),
            InvitationStatus::Pending => Ok(()),
        }
    }
}

/// Checks a requested lifetime in hours: 1 to [`MAX_INVITATION_HOURS`], default
/// [`DEFAULT_INVITATION_HOURS`].
pub fn invitation_hours(requested: Option<i64>) -> Result<u32, Invalid> {
    match requested {
        None => Ok(DEFAULT_INVITATION_HOURS),
        Some(h) if (1..=i64::from(MAX_INVITATION_HOURS)).contains(&h) => Ok(h as u32),
        Some(_) => Err(Invalid::new(
            "value_error",
            format!("expires_in_hours must be between 1 and {MAX_INVITATION_HOURS}"),
        )),
    }
}

/// When an invitation made or re-sent at `now` for `hours` expires.
pub fn invitation_expiry(now: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    now + Duration::hours(i64::from(hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(status: InvitationStatus, expires_at: DateTime<Utc>) -> Invitation {
        Invitation {
            id: "65a1b2c3d4e5f6a7b8c9d0e1".into(),
            organization_id: "65a1b2c3d4e5f6a7b8c9d0e2".into(),
            email: "a@b.co".into(),
            role: MemberRole::Member,
            stored_status: status,
            valid_hours: 1,
            expires_at,
            created_at: expires_at,
            invited_by: "65a1b2c3d4e5f6a7b8c9d0e3".into(),
        }
    }

    #[test]
    fn pending_turns_expired_at_the_instant_it_ends() {
        let end = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let inv = invitation(InvitationStatus::Pending, end);
        let just_before = end - Duration::milliseconds(1);
        assert_eq!(inv.status(just_before), InvitationStatus::Pending);
        assert_eq!(inv.status(end), InvitationStatus::Expired);
        // What ended otherwise stays as it ended.
        for s in [InvitationStatus::Accepted, InvitationStatus::Revoked] {
            assert_eq!(invitation(s, end).status(end + Duration::days(1)), s);
        }
    }

    #[test]
    fn only_the_current_token_of_a_live_invitation_works() {
        let end = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let before = end - Duration::seconds(1);
        let live = invitation(InvitationStatus::Pending, end);
        assert_eq!(live.check_usable(before, true), Ok(()));
        assert_eq!(live.check_usable(before, false), Err(InvitationEnd::Resent));
        assert_eq!(live.check_usable(end, true), Err(InvitationEnd::Expired));
        // An expired token says expired, whether or not it was superseded.
        assert_eq!(live.check_usable(end, false), Err(InvitationEnd::Expired));
        for (stored, ended) in [
            (InvitationStatus::Accepted, InvitationEnd::Accepted),
            (InvitationStatus::Revoked, InvitationEnd::Revoked),
            (InvitationStatus::Expired, InvitationEnd::Expired),
        ] {
            assert_eq!(
                invitation(stored, end).check_usable(before, true),
                Err(ended)
            );
        }
        let details = [
            InvitationEnd::Accepted,
            InvitationEnd::Revoked,
            InvitationEnd::Expired,
            InvitationEnd::Resent,
        ]
        .map(InvitationEnd::detail);
        assert_eq!(
            details,
            [
                "This invitation has already been accepted",
                "This invitation has been revoked",
                "This invitation has expired",
                "This invitation was re-sent; use the newest token",
            ]
        );
    }

    #[test]
    fn only_pending_or_expired_invitations_stay_open() {
        let end = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for (stored, open) in [
            (InvitationStatus::Pending, Ok(())),
            (InvitationStatus::Expired, Ok(())),
            (InvitationStatus::Accepted, Err(InvitationEnd::Accepted)),
            (InvitationStatus::Revoked, Err(InvitationEnd::Revoked)),
        ] {
            assert_eq!(invitation(stored, end).check_open(), open, "{stored:?}");
        }
    }

    #[test]
    fn hours_are_checked_not_clamped() {
        assert_eq!(invitation_hours(None), Ok(168));
        assert_eq!(invitation_hours(Some(1)), Ok(1));
        assert_eq!(invitation_hours(Some(720)), Ok(720));
        for bad in [0, 721, -1] {
            assert_eq!(
                invitation_hours(Some(bad)).unwrap_err().message,
                "expires_in_hours must be between 1 and 720"
            );
        }
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            invitation_expiry(now, 168) - now,
            Duration::seconds(168 * 3600)
        );
    }

    #[test]
    fn statuses_parse_exactly() {
        for s in [
            InvitationStatus::Pending,
            InvitationStatus::Accepted,
            InvitationStatus::Revoked,
            InvitationStatus::Expired,
        ] {
            assert_eq!(InvitationStatus::parse(s.as_str()), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(
            [
                InvitationStatus::Pending,
                InvitationStatus::Accepted,
                InvitationStatus::Revoked,
                InvitationStatus::Expired
            ]
            .map(InvitationStatus::as_str),
            ["pending", "accepted", "revoked", "expired"]
        );
        assert!(InvitationStatus::parse("Pending").is_err());
    }
}
