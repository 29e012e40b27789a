//! Demo data: the original service's three sample organizations with known passwords, seeded
//! at start-up when `DEMO_MODE=true` (refused in production), and by `org-service seed-demo`.

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{
    new_id, AuditAction, AuditActor, AuditContext, AuditTarget, Email, NewEvent, NewOrganization,
    OrgName, Password,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::StoreError;

/// The sample organizations: name, admin email, admin password.
pub const SAMPLES: [(&str, &str, &str); 3] = [
    ("Demo Company", "admin@democompany.com", "DemoPass123!"),
    ("Tech Startup", "admin@techstartup.com", "TechPass123!"),
    (
        "Global Enterprise",
        "admin@globalenterprise.com",
        "GlobalPass123!",
    ),
];

/// What the seeding did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemoResponse {
    /// Sample organizations created now.
    pub created: Vec<String>,
    /// Sample organizations that already existed.
    pub existing: Vec<String>,
}

/// Creates the sample organizations that do not exist yet (idempotent).
pub async fn seed(state: &AppState) -> Result<DemoResponse, ApiError> {
    let mut response = DemoResponse {
        created: vec![],
        existing: vec![],
    };
    for (name, email, password) in SAMPLES {
        let bad = |e: crate::domain::Invalid| ApiError::Internal(e.into());
        let name = OrgName::parse(name).map_err(bad)?;
        let new = NewOrganization {
            id: new_id(),
            admin_id: new_id(),
            admin_email: Email::parse(email).map_err(bad)?,
            password_hash: Some(
                state
                    .hasher
                    .hash(&Password::parse(password).map_err(bad)?)
                    .await
                    .map_err(ApiError::Internal)?,
            ),
            name,
            created_at: Utc::now(),
        };
        let org = new.organization();
        let event = NewEvent::new(
            (&org.id, &org.slug),
            AuditAction::OrganizationCreated,
            AuditActor::system("demo"),
            AuditTarget::new("organization", &org.id, Some(&org.name)),
            &AuditContext::default(),
            serde_json::Map::new(),
        );
        match state.store.create_organization(&new, &[event]).await {
            Ok(org) => response.created.push(org.name),
            Err(StoreError::Conflict(_)) => response.existing.push(new.name.as_str().to_owned()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(response)
}
