//! The landing page and API docs, served with no CDN.

use serde_json::{json, Value};

use crate::both_stores;
use crate::helpers::*;

/// Every `http(s)://` URL in `html` that is not a relative path (the docs must work offline).
fn external_urls(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap_or_default();
            if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("//") {
                found.push(url.to_owned());
            }
        }
    }
    found
}

both_stores! {
    /// The landing page links /docs, /redoc, /openapi.json and /health.
    async fn landing_page_links_the_docs(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.get(app.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = r.text().await.unwrap();
        for link in ["href=\"/docs\"", "href=\"/redoc\"", "href=\"/openapi.json\"", "href=\"/health\""] {
            assert!(html.contains(link), "landing page lacks {link}");
        }
    }
}

both_stores! {
    /// Swagger UI and ReDoc are served by the service and load nothing from other hosts.
    async fn docs_pages_are_self_hosted(backend: Backend) {
        let app = spawn_app(backend).await;
        let swagger = app.client.get(app.url("/docs/")).send().await.unwrap();
        assert_eq!(swagger.status(), 200);
        let html = swagger.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        assert!(external_urls(&html).is_empty(), "{:?}", external_urls(&html));
        let init = app.client.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap();
        assert_eq!(init.status(), 200);
        let init = init.text().await.unwrap();
        assert!(init.contains("/openapi.json"));
        assert!(init.replace(" ", "").contains("\"validatorUrl\":\"none\""), "validator must not call out: {init}");

        let redoc = app.client.get(app.url("/redoc")).send().await.unwrap();
        assert_eq!(redoc.status(), 200);
        let html = redoc.text().await.unwrap();
        assert!(html.contains("/redoc/redoc.standalone.js") && html.contains("spec-url=\"/openapi.json\""));
        assert!(external_urls(&html).is_empty(), "{:?}", external_urls(&html));
        let js = app.client.get(app.url("/redoc/redoc.standalone.js")).send().await.unwrap();
        assert_eq!(js.status(), 200);
        assert!(js.headers()["content-type"].to_str().unwrap().contains("javascript"));
        assert!(js.bytes().await.unwrap().len() > 500_000);
    }
}

both_stores! {
    /// The OpenAPI 3.1 document lists every route with its responses and the bearer scheme.
    async fn openapi_lists_every_route(backend: Backend) {
        let app = spawn_app(backend).await;
        let r = app.client.get(app.url("/openapi.json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let spec: Value = r.json().await.unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
        let expected = [
            ("/org/create", "post", &["201", "409", "413", "415", "422", "429", "503"][..]),
            ("/org/get", "get", &["200", "404", "422", "503"][..]),
            ("/org/update", "put", &["200", "401", "409", "422", "429", "503"][..]),
            ("/org/delete", "delete", &["204", "401", "403", "422", "503"][..]),
            ("/admin/login", "post", &["200", "401", "422", "429", "503"][..]),
            ("/health", "get", &["200", "503"][..]),
            ("/health/live", "get", &["200"][..]),
            ("/admin/refresh", "post", &["200", "401", "422", "503"][..]),
            ("/admin/logout", "post", &["204", "401", "503"][..]),
            ("/admin/password", "put", &["200", "401", "422", "429", "503"][..]),
        ];
        for (path, verb, statuses) in expected {
            let op = &spec["paths"][path][verb];
            assert!(op.is_object(), "{verb} {path} missing from the spec");
            for status in statuses {
                assert!(op["responses"][status].is_object(), "{verb} {path} lacks {status}");
            }
        }
        assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        // Swagger UI's "Authorize" has an entry for API keys; the documents routes take either
        // scheme, the others a person's token only (and say 403 to a key).
        let key = &spec["components"]["securitySchemes"]["api_key"];
        assert_eq!((key["type"].as_str(), key["in"].as_str(), key["name"].as_str()), (Some("apiKey"), Some("header"), Some("X-API-Key")));
        assert!(key["description"].as_str().unwrap().contains("Authorization: Bearer osk_"));
        assert_eq!(spec["paths"]["/org/documents"]["get"]["security"], json!([{"bearer": []}, {"api_key": []}]));
        assert_eq!(spec["paths"]["/org/members"]["get"]["security"], json!([{"bearer": []}]));
        assert!(spec["paths"]["/org/members"]["get"]["responses"]["403"]["description"].as_str().unwrap().contains("API key"));
        for path in ["/org/api-keys", "/org/audit", "/org/audit/export", "/org/audit/verify"] {
            assert!(spec["paths"][path]["get"]["responses"]["403"].is_object(), "{path}");
        }
        assert!(spec["paths"]["/org/update"]["put"]["security"].is_array());
        assert!(spec["paths"].get("/demo/create-sample-data").is_none(), "demo route only in demo mode");
        assert_eq!(spec["paths"]["/org/get"]["get"]["parameters"][0]["in"], "query");
        let link = &spec["paths"]["/org/create"]["post"]["responses"]["201"]["links"]["GetOrganization"];
        assert_eq!(link["operationId"], "get_org", "links use OpenAPI's field names: {link}");
        let login = &spec["paths"]["/admin/login"]["post"]["responses"]["200"]["links"]["Refresh"];
        assert_eq!(login["requestBody"]["refresh_token"], "$response.body#/refresh_token");
    }
}
