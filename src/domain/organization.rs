//! Organizations and their admins, as the stores keep them.

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
    /// The admin's (normalized) email.
    pub admin_email: String,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Last rename (UTC); `None` until the first update.
    pub updated_at: Option<DateTime<Utc>>,
}

/// An organization's admin account.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// 24-hex-digit ObjectId.
    pub id: String,
    /// Normalized email (unique across the service).
    pub email: String,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// The organization this admin manages.
    pub organization_id: String,
    /// Bumped when the admin's credentials change; tokens carry it and die when it moves.
    pub token_version: i64,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("organization_id", &self.organization_id)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

/// Everything a store needs to create an organization with its admin and collection.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// New organization id.
    pub id: String,
    /// New admin id.
    pub admin_id: String,
    /// Validated name.
    pub name: OrgName,
    /// Validated, normalized email.
    pub admin_email: Email,
    /// bcrypt hash of the admin's password.
    pub password_hash: String,
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
