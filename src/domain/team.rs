//! Teams: accounts, their memberships in organizations, roles and what each role may do.
//!
//! The role table of CONTRACT-TEAMS-DATA.md lives here, in [`MemberRole::may`], and the rules
//! for changing or removing a member (who may touch an owner, the protected last owner) in
//! [`check_member_change`]. Stores call the latter inside their atomic section, with the
//! target's role and the number of owners as they are at that moment.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Invalid, OrgName};

/// A member's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Everything, including renaming and deleting the organization.
    Owner,
    /// Runs the team (except owners), keys and the audit log.
    Admin,
    /// Reads and writes the organization's documents.
    Member,
    /// Reads.
    Viewer,
}

/// What a request wants to do, for the role table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Rename or delete the organization.
    ManageOrganization,
    /// Invite, re-send and revoke invitations; change roles; remove members.
    ManageMembers,
    /// List members and invitations; `GET /admin/me`.
    ViewMembers,
    /// Create, list and revoke API keys.
    ManageApiKeys,
    /// Read the audit log.
    ReadAudit,
    /// Write tenant documents.
    WriteDocuments,
    /// Read tenant documents.
    ReadDocuments,
}

impl MemberRole {
    /// Every role, most powerful first.
    pub const ALL: [MemberRole; 4] = [Self::Owner, Self::Admin, Self::Member, Self::Viewer];

    /// The role's name in the API and the stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a stored or submitted role name (exact, lower-case).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "enum",
                    "Input should be 'owner', 'admin', 'member' or 'viewer'",
                )
            })
    }

    /// The role table: whether this role may do `action`.
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match action {
            ManageOrganization => self == Self::Owner,
            ManageMembers | ManageApiKeys | ReadAudit => {
                matches!(self, Self::Owner | Self::Admin)
            }
            WriteDocuments => self != Self::Viewer,
            ViewMembers | ReadDocuments => true,
        }
    }
}

/// A change to one membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Give the member this role.
    Role(MemberRole),
    /// Remove the member (their own id: they leave).
    Remove,
}

/// Why a membership change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor's role does not allow it: 403.
    #[error("forbidden by role")]
    Forbidden,
    /// It would leave the organization without an owner: 409.
    #[error("last owner")]
    LastOwner,
}

/// Decides a membership change: `actor` acts on a member whose role is `target` (`is_self`
/// when it is the actor's own membership), in an organization that has `owners` owners now.
///
/// - Anyone may leave; only owners and admins change roles or remove others.
/// - An admin may not touch an owner, nor grant `owner`.
/// - No change may leave the organization without an owner.
pub fn check_member_change(
    actor: MemberRole,
    is_self: bool,
    target: MemberRole,
    change: MemberChange,
    owners: u64,
) -> Result<(), Refusal> {
    let leaving = is_self && change == MemberChange::Remove;
    if !leaving {
        if !actor.may(Action::ManageMembers) {
            return Err(Refusal::Forbidden);
        }
        if actor != MemberRole::Owner
            && (target == MemberRole::Owner || change == MemberChange::Role(MemberRole::Owner))
        {
            return Err(Refusal::Forbidden);
        }
    }
    let loses_an_owner = target == MemberRole::Owner && change != MemberChange::Role(target);
    if loses_an_owner && owners <= 1 {
        return Err(Refusal::LastOwner);
    }
    Ok(())
}

/// Whether `actor` may invite someone as `role` (admins may not invite owners).
pub fn check_invite(actor: MemberRole, role: MemberRole) -> Result<(), Refusal> {
    if !actor.may(Action::ManageMembers)
        || (role == MemberRole::Owner && actor != MemberRole::Owner)
    {
        return Err(Refusal::Forbidden);
    }
    Ok(())
}

/// A person who logs in: one email, one password, any number of memberships.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// 24-hex-digit ObjectId (the API's `admin_id`).
    pub id: String,
    /// Normalized email (unique across the service).
    pub email: String,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Bumped when the account's credentials change; tokens carry it and die when it moves.
    pub token_version: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

/// One account's place in one organization, as the organization's member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account's id.
    pub account_id: String,
    /// The account's email.
    pub email: String,
    /// Its role here.
    pub role: MemberRole,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
}

/// One of an account's organizations, as its login and `GET /admin/me` list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The organization's id.
    pub organization_id: String,
    /// The organization's name.
    pub organization_name: String,
    /// The account's role there.
    pub role: MemberRole,
    /// When the account joined it.
    pub joined_at: DateTime<Utc>,
}

/// The membership a login is for: the one in `wanted` (matched by slug, as names are), or the
/// oldest when none is named. `memberships` is oldest first. `None` when the account is not in
/// the named organization (or in none).
pub fn pick_membership<'a>(
    memberships: &'a [Membership],
    wanted: Option<&OrgName>,
) -> Option<&'a Membership> {
    match wanted {
        None => memberships.first(),
        Some(name) => memberships
            .iter()
            .find(|m| OrgName::parse(&m.organization_name).is_ok_and(|n| n.slug() == name.slug())),
    }
}

#[cfg(test)]
mod tests {
    use super::MemberChange::{Remove, Role};
    use super::MemberRole::{Admin, Member, Owner, Viewer};
    use super::*;

    #[test]
    fn the_role_table_cell_by_cell() {
        use Action::*;
        // (action, owner, admin, member, viewer), as in the contract's table.
        let table = [
            (ManageOrganization, true, false, false, false),
            (ManageMembers, true, true, false, false),
            (ViewMembers, true, true, true, true),
            (ManageApiKeys, true, true, false, false),
            (ReadAudit, true, true, false, false),
            (WriteDocuments, true, true, true, false),
            (ReadDocuments, true, true, true, true),
        ];
        for (action, owner, admin, member, viewer) in table {
            let got = [Owner, Admin, Member, Viewer].map(|r| r.may(action));
            assert_eq!(got, [owner, admin, member, viewer], "{action:?}");
        }
    }

    #[test]
    fn an_account_prints_without_its_password_hash() {
        let account = Account {
            id: "65a1b2c3d4e5f6a7b8c9d0e1".into(),
            email: "a@b.co".into(),
            password_hash: "$2b$12$secret-hash".into(),
            token_version: 3,
        };
        let printed = format!("{account:?}");
        assert_eq!(
            printed,
            r#"Account { id: "65a1b2c3d4e5f6a7b8c9d0e1", email: "a@b.co", token_version: 3, .. }"#
        );
    }

    #[test]
    fn roles_parse_exactly() {
        for role in MemberRole::ALL {
            assert_eq!(MemberRole::parse(role.as_str()), Ok(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert_eq!(
            [Owner, Admin, Member, Viewer].map(MemberRole::as_str),
            ["owner", "admin", "member", "viewer"]
        );
        for bad in ["Owner", "", "root", " admin"] {
            assert_eq!(MemberRole::parse(bad).unwrap_err().kind, "enum");
        }
    }

    #[test]
    fn anyone_may_leave_except_the_last_owner() {
        for role in [Admin, Member, Viewer] {
            assert_eq!(check_member_change(role, true, role, Remove, 1), Ok(()));
        }
        assert_eq!(
            check_member_change(Owner, true, Owner, Remove, 1),
            Err(Refusal::LastOwner)
        );
        assert_eq!(check_member_change(Owner, true, Owner, Remove, 2), Ok(()));
    }

    #[test]
    fn members_and_viewers_change_nobody() {
        for actor in [Member, Viewer] {
            for target in MemberRole::ALL {
                for change in [Remove, Role(Viewer), Role(Member)] {
                    assert_eq!(
                        check_member_change(actor, false, target, change, 2),
                        Err(Refusal::Forbidden),
                        "{actor:?} on {target:?}"
                    );
                }
            }
            // Not even their own role.
            assert_eq!(
                check_member_change(actor, true, actor, Role(Admin), 1),
                Err(Refusal::Forbidden)
            );
        }
    }

    #[test]
    fn admins_never_touch_owners_nor_grant_owner() {
        for change in [Remove, Role(Admin), Role(Owner)] {
            assert_eq!(
                check_member_change(Admin, false, Owner, change, 3),
                Err(Refusal::Forbidden)
            );
        }
        for target in [Admin, Member, Viewer] {
            assert_eq!(
                check_member_change(Admin, false, target, Role(Owner), 1),
                Err(Refusal::Forbidden)
            );
            assert_eq!(check_member_change(Admin, false, target, Remove, 1), Ok(()));
            assert_eq!(
                check_member_change(Admin, false, target, Role(Viewer), 1),
                Ok(())
            );
        }
        // Nor themselves into an owner.
        assert_eq!(
            check_member_change(Admin, true, Admin, Role(Owner), 1),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            check_member_change(Admin, true, Admin, Role(Member), 1),
            Ok(())
        );
    }

    #[test]
    fn owners_may_do_anything_that_leaves_an_owner() {
        for target in [Admin, Member, Viewer] {
            for change in [Remove, Role(Owner), Role(Viewer)] {
                assert_eq!(check_member_change(Owner, false, target, change, 1), Ok(()));
            }
        }
        // Another owner, when there are two: fine; when the count says one (the target is
        // the only owner left), refused.
        assert_eq!(check_member_change(Owner, false, Owner, Remove, 2), Ok(()));
        assert_eq!(
            check_member_change(Owner, false, Owner, Role(Admin), 2),
            Ok(())
        );
        assert_eq!(
            check_member_change(Owner, false, Owner, Remove, 1),
            Err(Refusal::LastOwner)
        );
        assert_eq!(
            check_member_change(Owner, true, Owner, Role(Member), 1),
            Err(Refusal::LastOwner)
        );
        assert_eq!(
            check_member_change(Owner, true, Owner, Role(Member), 0),
            Err(Refusal::LastOwner)
        );
        // Keeping the owner role is no loss, even for the last owner.
        assert_eq!(
            check_member_change(Owner, true, Owner, Role(Owner), 1),
            Ok(())
        );
    }

    #[test]
    fn logins_pick_the_named_organization_or_the_oldest() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let m = |name: &str, role, joined| Membership {
            organization_id: name.to_lowercase(),
            organization_name: name.into(),
            role,
            joined_at: at(joined),
        };
        let list = [m("Acme Corp", Viewer, 0), m("Globex", Owner, 5)];
        assert_eq!(pick_membership(&list, None), Some(&list[0]));
        let named = |n: &str| OrgName::parse(n).unwrap();
        assert_eq!(
            pick_membership(&list, Some(&named("globex"))),
            Some(&list[1])
        );
        assert_eq!(
            pick_membership(&list, Some(&named("acme-corp"))),
            Some(&list[0])
        );
        assert_eq!(pick_membership(&list, Some(&named("Initech"))), None);
        assert_eq!(pick_membership(&[], None), None);
    }

    #[test]
    fn invitations_follow_the_same_rules() {
        assert_eq!(check_invite(Owner, Owner), Ok(()));
        assert_eq!(check_invite(Admin, Owner), Err(Refusal::Forbidden));
        for role in [Admin, Member, Viewer] {
            assert_eq!(check_invite(Owner, role), Ok(()));
            assert_eq!(check_invite(Admin, role), Ok(()));
            assert_eq!(check_invite(Member, role), Err(Refusal::Forbidden));
            assert_eq!(check_invite(Viewer, role), Err(Refusal::Forbidden));
        }
    }
}
