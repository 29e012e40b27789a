//! The OpenAPI 3.1 document: document-level metadata and the bearer scheme. Paths and schemas
//! are collected from the handlers by `utoipa_axum::routes!` in [`crate::router::router`].

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Document-level metadata.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "org-service",
        description = "Multi-tenant organization management: each organization has members with roles (owner, admin, member, viewer), invitations, and its own collection `org_<slug>`.",
        license(name = "MIT"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "organizations", description = "Create, read, rename and delete organizations"),
        (name = "admin", description = "Log in, refresh, log out, change the password"),
        (name = "members", description = "The caller, the organization's members and their roles"),
        (name = "invitations", description = "Invite people by email; accept an invitation"),
        (name = "documents", description = "The organization's own documents: store, read, query, update with ETag / If-Match, delete. A person's access token or an API key"),
        (name = "audit", description = "The organization's audit log: who did what, when, from where; hash-chained, exportable"),
        (name = "api-keys", description = "Keys for machines: the organization's documents without a person's password"),
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
                    .description(Some("The access_token from POST /admin/login. On /org/documents an API key (`osk_…`) works here too: `Authorization: Bearer osk_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key from POST /org/api-keys (`osk_…`), for /org/documents only. The same key also works as `Authorization: Bearer osk_…`.",
            ))),
        );
    }
}

/// The served document as JSON, with OpenAPI links between operations added: what a response
/// lets a client do next. They document the flows (create → get, create → login → refresh →
/// refresh) and drive schemathesis' stateful phase. (Added to the JSON because utoipa 5
/// serializes `Link` fields in snake_case, which OpenAPI readers do not recognise.)
pub fn document_json(openapi: &utoipa::openapi::OpenApi) -> serde_json::Value {
    use serde_json::json;

    let mut doc = serde_json::to_value(openapi).expect("the OpenAPI document serializes");
    let links = [
        (
            "/org/create",
            "201",
            "GetOrganization",
            json!({
                "operationId": "get_org",
                "parameters": { "organization_name": "$response.body#/organization_name" },
                "description": "Read the organization just created",
            }),
        ),
        (
            "/org/create",
            "201",
            "LogInAsItsAdmin",
            json!({
                "operationId": "login_admin",
                "requestBody": { "email": "$request.body#/email", "password": "$request.body#/password" },
                "description": "Log in with the credentials just registered",
            }),
        ),
        (
            "/org/documents",
            "201",
            "GetDocument",
            json!({
                "operationId": "get_document",
                "parameters": { "id": "$response.body#/id" },
                "description": "Read the document just stored",
            }),
        ),
        (
            "/org/documents",
            "201",
            "ReplaceDocument",
            json!({
                "operationId": "replace_document",
                "parameters": { "id": "$response.body#/id" },
                "description": "Replace the document just stored",
            }),
        ),
        (
            "/org/documents",
            "201",
            "PatchDocument",
            json!({
                "operationId": "patch_document",
                "parameters": { "id": "$response.body#/id" },
                "description": "Merge-patch the document just stored",
            }),
        ),
        (
            "/org/documents",
            "201",
            "DeleteDocument",
            json!({
                "operationId": "delete_document",
                "parameters": { "id": "$response.body#/id" },
                "description": "Delete the document just stored",
            }),
        ),
        (
            "/admin/login",
            "200",
            "Refresh",
            json!({
                "operationId": "refresh_tokens",
                "requestBody": { "refresh_token": "$response.body#/refresh_token" },
                "description": "Exchange the refresh token for new tokens",
            }),
        ),
        (
            "/admin/refresh",
            "200",
            "RefreshAgain",
            json!({
                "operationId": "refresh_tokens",
                "requestBody": { "refresh_token": "$response.body#/refresh_token" },
                "description": "Exchange the next refresh token",
            }),
        ),
    ];
    for (path, status, name, link) in links {
        if let Some(response) = doc
            .pointer_mut(&format!(
                "/paths/{}/post/responses/{status}",
                path.replace('/', "~1")
            ))
            .and_then(|r| r.as_object_mut())
        {
            response
                .entry("links")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("links is an object")
                .insert(name.to_owned(), link);
        }
    }
    describe_headers_and_names(&mut doc);
    doc
}

/// The optional `Idempotency-Key` header of a POST, and the 409 and 422 it can bring.
fn describe_idempotency(operation: &mut serde_json::Value) {
    use serde_json::json;

    if operation.get("parameters").is_none() {
        operation["parameters"] = json!([]);
    }
    if let Some(parameters) = operation["parameters"].as_array_mut() {
        parameters.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Any unique string (1–255 visible ASCII characters, e.g. a UUID). The same key with the same request within 24 hours gets the first response again (with `Idempotent-Replayed: true`) instead of running twice; with a different request it is a 422; while the first still runs, a 409.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" },
            "example": "5f0c9a4e-2b7d-4c1e-9a63-1d8e7f2b4c60",
        }));
    }
    let responses = &mut operation["responses"];
    if responses.get("409").is_none() {
        responses["409"] = json!({
            "description": "A request with the same Idempotency-Key is still being processed",
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
        });
    }
    if responses.get("422").is_none() {
        responses["422"] = json!({
            "description": "Invalid Idempotency-Key, or one used with a different request",
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ValidationErrorBody" } } },
        });
    }
}

/// What utoipa's attributes cannot say, added to every operation: `Retry-After` on 429 and 503,
/// `WWW-Authenticate` on 401, the 403 an API key gets on a route for people, and the organization-name `pattern` (computed from the server's
/// own rule, see [`crate::domain::name_pattern`]) wherever a name is taken.
fn describe_headers_and_names(doc: &mut serde_json::Value) {
    use serde_json::json;

    let retry_after = json!({
        "description": "Seconds to wait before trying again",
        "schema": { "type": "integer", "minimum": 1 },
    });
    let www_authenticate = json!({
        "description": "Always `Bearer`: the scheme to authenticate with",
        "schema": { "type": "string", "enum": ["Bearer"] },
    });
    let pattern = crate::domain::name_pattern();
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (method, operation) in paths
        .values_mut()
        .filter_map(|p| p.as_object_mut())
        .flat_map(|p| p.iter_mut())
    {
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
        {
            for (status, header, value) in [
                ("429", "Retry-After", &retry_after),
                ("503", "Retry-After", &retry_after),
                ("401", "WWW-Authenticate", &www_authenticate),
            ] {
                if let Some(response) = responses.get_mut(status).and_then(|r| r.as_object_mut()) {
                    response
                        .entry("headers")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .expect("headers is an object")
                        .insert(header.to_owned(), value.clone());
                }
            }
        }
        if method == "post" {
            describe_idempotency(operation);
        }
        describe_key_refusal(operation);
        for parameter in operation
            .get_mut("parameters")
            .and_then(|p| p.as_array_mut())
            .into_iter()
            .flatten()
        {
            if parameter["name"] == "organization_name" {
                parameter["schema"]["pattern"] = json!(pattern);
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for (schema_name, schema) in schemas.iter_mut() {
            // A request body (optional names, as in a login, included).
            let is_request = schema_name.ends_with("Request")
                || schema
                    .get("required")
                    .and_then(|r| r.as_array())
                    .is_some_and(|r| r.iter().any(|f| f == "organization_name"));
            if let Some(name) = schema.pointer_mut("/properties/organization_name") {
                // Responses show names already accepted; requests are held to the rule.
                if is_request {
                    name["pattern"] = json!(pattern);
                }
            }
        }
    }
}

/// The 403 of a route for people (bearer only) when the request sends an API key, where the
/// route documents no 403 of its own.
fn describe_key_refusal(operation: &mut serde_json::Value) {
    use serde_json::json;

    let schemes: Vec<&str> = operation
        .get("security")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_object())
        .flat_map(|s| s.keys().map(String::as_str))
        .collect();
    if schemes != ["bearer"] {
        return;
    }
    if let Some(responses) = operation
        .get_mut("responses")
        .and_then(|r| r.as_object_mut())
    {
        responses.entry("403").or_insert_with(|| {
            json!({
                "description": "An API key was sent: keys work on /org/documents only",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
            })
        });
    }
}
