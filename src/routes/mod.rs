//! HTTP routes, one module per resource. Each handler carries its `#[utoipa::path]`, and the
//! router is built with `utoipa_axum::routes!`, so the served OpenAPI document and the router
//! come from one source and cannot drift.

pub mod admin;
mod api_key_forms;
pub mod api_keys;
pub mod audit;
mod audit_forms;
pub mod demo;
pub mod docs;
mod document_forms;
pub mod documents;
mod forms;
pub mod health;
pub mod invitations;
pub mod members;
pub mod orgs;
pub mod session;
mod team_forms;
mod trail;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Organization;

/// An organization as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgResponse {
    /// 24-hex-digit id.
    #[schema(example = "65a1b2c3d4e5f6a7b8c9d0e1")]
    pub organization_id: String,
    /// Display name.
    #[schema(example = "Acme Corp")]
    pub organization_name: String,
    /// The tenant's collection: `org_<slug>`.
    #[schema(example = "org_acme_corp")]
    pub collection_name: String,
    /// The admin's email (lower-cased).
    #[schema(example = "admin@acme.com")]
    pub admin_email: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-11-30T09:15:00.000Z")]
    pub created_at: String,
    /// RFC 3339, UTC; null until the first update.
    #[schema(format = DateTime, example = "2026-11-30T09:20:00.000Z")]
    pub updated_at: Option<String>,
}

pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<Organization> for OrgResponse {
    fn from(o: Organization) -> Self {
        Self {
            organization_id: o.id,
            organization_name: o.name,
            collection_name: o.collection_name,
            admin_email: o.admin_email,
            created_at: rfc3339(o.created_at),
            updated_at: o.updated_at.map(rfc3339),
        }
    }
}
