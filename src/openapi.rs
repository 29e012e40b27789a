//! The OpenAPI 3.1 document: document-level metadata and the bearer scheme. Paths and schemas
//! are collected from the handlers by `utoipa_axum::routes!` in [`crate::startup::router`].

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Document-level metadata.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "org-service",
        description = "Multi-tenant organization management: each organization has an admin and its own collection `org_<slug>`.",
        license(name = "MIT"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "organizations", description = "Create, read, rename and delete organizations"),
        (name = "admin", description = "Admin authentication"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access_token from POST /admin/login"))
                    .build(),
            ),
        );
    }
}
