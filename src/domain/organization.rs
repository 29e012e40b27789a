//! Organizations, as the stores keep them.

use chrono::{DateTime, Utc};

use super::{Email, OrgName};

/// An organization as stored: identity, names and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// 24-hex-digit ObjectId, the same form on both stores.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Uniqueness key (see [`OrgName::slug`]).
    pub slug: String,
    /// Tenant collection / table: `org_<slug>`.
    pub collection_name: String,
    /// The (normalized) email stored with it: its creator's at first. The API shows the email
    /// of the longest-standing owner (`Members::owner_email`), looked up only where an
    /// organization is shown, so that the guard does not pay for it.
    pub admin_email: String,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Last rename (UTC); `None` until the first update.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Everything a store needs to create an organization with its owner and collection.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// New organization id.
    pub id: String,
    /// The owner's account id: a new one, or an existing account's.
    pub admin_id: String,
    /// Validated name.
    pub name: OrgName,
    /// Validated, normalized email of the owner.
    pub admin_email: Email,
    /// bcrypt hash of a new account's password; `None` when the owner is an existing account
    /// (which re-authenticated), so no account is created.
    pub password_hash: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewOrganization {
    /// The organization this creates, as both stores return it (built in one place).
    pub fn organization(&self) -> Organization {
        Organization {
            id: self.id.clone(),
            name: self.name.as_str().to_owned(),
            slug: self.name.slug().to_owned(),
            collection_name: self.name.collection_name(),
            admin_email: self.admin_email.as_str().to_owned(),
            created_at: self.created_at,
            updated_at: None,
        }
    }
}

/// A fresh 24-hex-digit id (MongoDB ObjectId form, used on both stores).
pub fn new_id() -> String {
    mongodb::bson::oid::ObjectId::new().to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_24_hex_digits() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
