//! Helpers of the teams tests: calls with a bearer token, and a member made in one step
//! (invited, then accepted).

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::*;

/// The password of members made by [`TestApp::join`].
pub const MEMBER_PASSWORD: &str = "AnotherPass789!";

impl TestApp {
    /// `method path` with a bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        self.call_with(method, path, token, body, &[]).await
    }

    /// [`TestApp::call`] with extra headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("request")
    }

    /// Invites `email` as `role`; returns the 201 body (panics otherwise).
    pub async fn invite(&self, token: &str, email: &str, role: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/org/invitations",
                token,
                Some(&json!({"email": email, "role": role})),
            )
            .await;
        assert_eq!(r.status(), 201, "inviting {email} as {role}");
        json_body(r).await
    }

    /// `POST /invitations/accept`.
    pub async fn accept(&self, token: &str, password: &str) -> Response {
        self.post_json(
            "/invitations/accept",
            &json!({"token": token, "password": password}),
        )
        .await
    }

    /// Makes `email` a member with `role` (invited by `owner_token`, accepted with
    /// [`MEMBER_PASSWORD`] unless the account exists) and returns its login body.
    pub async fn join(&self, owner_token: &str, email: &str, role: &str) -> Value {
        let invitation = self.invite(owner_token, email, role).await;
        let r = self
            .accept(invitation["token"].as_str().unwrap(), MEMBER_PASSWORD)
            .await;
        assert_eq!(r.status(), 200, "accepting {email}'s invitation");
        json_body(r).await
    }

    /// The organization's members, first page of 100.
    pub async fn members(&self, token: &str) -> Vec<Value> {
        let r = self
            .call(Method::GET, "/org/members?limit=100", token, None)
            .await;
        assert_eq!(r.status(), 200);
        json_body(r).await["members"].as_array().unwrap().clone()
    }

    /// `PATCH /org/members/{id}` to `role`.
    pub async fn set_role(&self, token: &str, id: &str, role: &str) -> Response {
        self.call(
            Method::PATCH,
            &format!("/org/members/{id}"),
            token,
            Some(&json!({"role": role})),
        )
        .await
    }

    /// `DELETE /org/members/{id}`.
    pub async fn remove(&self, token: &str, id: &str) -> Response {
        self.call(Method::DELETE, &format!("/org/members/{id}"), token, None)
            .await
    }
}

/// The access token of a login body.
pub fn access(login: &Value) -> String {
    login["access_token"].as_str().unwrap().to_owned()
}

/// The account id of a login body.
pub fn id_of(login: &Value) -> String {
    login["admin_id"].as_str().unwrap().to_owned()
}
