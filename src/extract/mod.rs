//! Request extractors that reject with the API's error envelope.
//!
//! axum's own `Json` and `Query` answer bad input with plain-text bodies; these answer with
//! [`ApiError`]: 415 for a wrong content type, 413 for an oversized body, and a FastAPI-shaped
//! 422 naming the field for malformed JSON, a missing field or a value of the wrong type.
//! [`AuthAdmin`] (in `auth.rs`) is the guard of the endpoints that need a token;
//! [`TenantCaller`] (in `caller.rs`) that of the documents routes, which also take API keys.

mod auth;
mod caller;
mod context;

pub use auth::{reauthenticate, token_account, AuthAdmin, Client};
pub use caller::{presented_key, Actor, TenantCaller, API_KEY_HEADER};
pub use context::RequestContext;

/// Largest request body accepted by the JSON endpoints (their bodies are well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes_ext::body_bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{ApiError, FieldError};

/// A JSON body of type `T`.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ValidJson)
    }
}

mod bytes_ext {
    use axum::body::Bytes;
    use axum::extract::{FromRequest, Request};
    use axum::http::StatusCode;

    use crate::error::ApiError;

    pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
        Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::field(&["body"], "body_error", rejection.body_text())
            }
        })
    }
}

/// Parses `bytes` as `T`, mapping serde's error to a 422 that names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec![json!("body"), json!(e.column())],
            msg: format!("JSON decode error: {e}"),
            kind: "json_invalid".into(),
        }])
    })?;
    if !value.is_object() {
        return Err(ApiError::field(
            &["body"],
            "model_attributes_type",
            "Input should be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| field_error("body", &e))
}

fn field_error(origin: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner().to_string();
    let mut loc = vec![json!(origin)];
    loc.extend(
        e.path()
            .iter()
            .map(|seg| json!(seg.to_string()))
            .filter(|s| s != &json!("?") && s != &json!(".")),
    );
    // "missing field `email`": serde reports it at the parent; name the field itself.
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        loc.push(json!(field));
        return ApiError::Validation(vec![FieldError {
            loc,
            msg: "Field required".into(),
            kind: "missing".into(),
        }]);
    }
    let kind = if inner.starts_with("invalid type") {
        "string_type"
    } else {
        "value_error"
    };
    let msg = if kind == "string_type" {
        "Input should be a valid string".to_owned()
    } else {
        inner.split(" at line").next().unwrap_or(&inner).to_owned()
    };
    ApiError::Validation(vec![FieldError {
        loc,
        msg,
        kind: kind.into(),
    }])
}

/// Query parameters of type `T`.
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded_de(query);
        match de {
            Ok(value) => serde_path_to_error::deserialize(value)
                .map(ValidQuery)
                .map_err(|e| field_error("query", &e)),
            Err(msg) => Err(ApiError::field(&["query"], "value_error", msg)),
        }
    }
}

/// Query string → JSON object of strings (the last value of a repeated key wins).
fn serde_urlencoded_de(query: &str) -> Result<serde_json::Value, String> {
    let pairs: Vec<(String, String)> = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| "malformed query string".to_owned())?,
    )
    .map_err(|e| e.body_text())?
    .0;
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k, json!(v));
    }
    Ok(serde_json::Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        email: String,
    }

    fn detail(e: ApiError) -> Vec<FieldError> {
        match e {
            ApiError::Validation(d) => d,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn missing_field_is_named() {
        let d = detail(parse_json::<Body>(br#"{"name":"x"}"#).unwrap_err());
        assert_eq!(d[0].loc, vec![json!("body"), json!("email")]);
        assert_eq!(d[0].kind, "missing");
    }

    #[test]
    fn wrong_type_is_named() {
        let d = detail(parse_json::<Body>(br#"{"name":1,"email":"e"}"#).unwrap_err());
        assert_eq!(d[0].loc, vec![json!("body"), json!("name")]);
        assert_eq!(d[0].kind, "string_type");
        assert_eq!(d[0].msg, "Input should be a valid string");
    }

    async fn extract(content_type: Option<&str>) -> Result<ValidJson<Body>, ApiError> {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let req = builder
            .body(axum::body::Body::from(r#"{"name":"n","email":"e"}"#))
            .unwrap();
        ValidJson::<Body>::from_request(req, &()).await
    }

    #[tokio::test]
    async fn only_json_media_types_are_accepted() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(extract(Some(ok)).await.is_ok(), "{ok}");
        }
        for refused in [
            Some("application/xml"),
            Some("text/json"),
            Some("application/jsonx"),
            Some("text/plain"),
            None,
        ] {
            assert!(
                matches!(extract(refused).await, Err(ApiError::UnsupportedMediaType)),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn malformed_json_and_non_objects() {
        assert_eq!(
            detail(parse_json::<Body>(b"{not json").unwrap_err())[0].kind,
            "json_invalid"
        );
        assert_eq!(
            detail(parse_json::<Body>(b"[1,2]").unwrap_err())[0].kind,
            "model_attributes_type"
        );
    }

    #[test]
    fn unknown_path_segments_are_left_out_of_loc() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Tagged {
            tags: std::collections::HashMap<u8, String>,
        }
        let d = detail(parse_json::<Tagged>(br#"{"tags":{"x":"v"}}"#).unwrap_err());
        assert_eq!(d[0].loc, vec![json!("body"), json!("tags")], "{d:?}");
        assert_eq!(d[0].kind, "value_error");
    }

    #[test]
    fn query_strings_become_objects_of_strings() {
        assert_eq!(
            serde_urlencoded_de("organization_name=Acme%20Corp&x=1&x=2").unwrap(),
            json!({"organization_name": "Acme Corp", "x": "2"})
        );
        assert_eq!(serde_urlencoded_de("").unwrap(), json!({}));
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_413() {
        use axum::extract::DefaultBodyLimit;
        use axum::response::IntoResponse;
        use axum::routing::post;
        use tower::ServiceExt;

        let app = axum::Router::new()
            .route(
                "/",
                post(|ValidJson(body): ValidJson<Body>| async move { body.name }),
            )
            .layer(DefaultBodyLimit::max(32));
        let send = |body: &'static str| {
            let req = Request::builder()
                .method("POST")
                .uri("/")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            app.clone().oneshot(req)
        };
        let ok = send(r#"{"name":"n","email":"e"}"#).await.unwrap();
        assert_eq!(ok.status(), 200);
        let big = send(r#"{"name":"a long name that does not fit","email":"e"}"#)
            .await
            .unwrap();
        assert_eq!(
            big.status(),
            ApiError::PayloadTooLarge.into_response().status()
        );
        assert_eq!(big.status(), 413);
    }
}
