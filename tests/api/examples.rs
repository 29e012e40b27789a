//! Every example in `/openapi.json` is one a person can send as is and succeed with, in the
//! order of the README's walk-through; the document states the headers and formats clients
//! rely on; the organization-name pattern agrees with the server.

use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::helpers::*;

/// The example request body of `method path`: each property's `example`.
fn example_body(doc: &Value, method: &str, path: &str) -> Value {
    let reference = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} has no JSON body"));
    let name = reference.rsplit('/').next().unwrap();
    let properties = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap();
    let body: Map<String, Value> = properties
        .iter()
        .map(|(field, schema)| {
            let example = schema
                .get("example")
                .cloned()
                .unwrap_or_else(|| panic!("{name}.{field} has no example"));
            (field.clone(), example)
        })
        .collect();
    Value::Object(body)
}

/// The example of the query parameter `name` of `GET path`.
fn example_param(doc: &Value, path: &str, name: &str) -> String {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| {
            p["example"]
                .as_str()
                .or_else(|| p["schema"]["example"].as_str())
        })
        .unwrap_or_else(|| panic!("{path} ?{name} has no example"))
        .to_owned()
}

/// Sends each documented example in the walk-through's order: every one succeeds, and every
/// documented operation is visited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_example_works_in_walk_through_order() {
    let app = spawn_app(Backend::Embedded).await;
    let doc = app.openapi().await;
    let mut visited = Vec::new();
    let mut send = |method: &'static str, path: &'static str| {
        visited.push(format!("{method} {path}"));
        (method, path)
    };

    let (m, p) = send("post", "/org/create");
    let r = app.post_json(p, &example_body(&doc, m, p)).await;
    assert_eq!(r.status(), 201, "{m} {p}");
    let (_, p) = send("get", "/org/get");
    let r = app
        .get_org(&example_param(&doc, p, "organization_name"))
        .await;
    assert_eq!(r.status(), 200, "get {p}");
    let (m, p) = send("post", "/admin/login");
    let r = app.post_json(p, &example_body(&doc, m, p)).await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let login = json_body(r).await;

    // A refresh token is a secret of the session: the example shows its shape, and the real
    // one from the login takes its place.
    let (m, p) = send("post", "/admin/refresh");
    let mut body = example_body(&doc, m, p);
    let example = body["refresh_token"].as_str().unwrap().to_owned();
    let real = login["refresh_token"].as_str().unwrap();
    assert!(
        example.starts_with("ort_") && example.len() == real.len(),
        "{example}"
    );
    body["refresh_token"] = json!(real);
    let r = app.post_json(p, &body).await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let token = json_body(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The team walk-through: the caller, an invitation (re-sent, then accepted), the members,
    // a role change, a removal, a revoked invitation. Ids and tokens in paths and bodies are
    // the real ones the previous steps returned.
    let (_, p) = send("get", "/admin/me");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(r.status(), 200, "get {p}");
    let (m, p) = send("post", "/org/invitations");
    let r = app
        .call(Method::POST, p, &token, Some(&example_body(&doc, m, p)))
        .await;
    assert_eq!(r.status(), 201, "{m} {p}");
    let invitation = json_body(r).await;
    let id = invitation["invitation_id"].as_str().unwrap().to_owned();
    let (_, p) = send("get", "/org/invitations");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(r.status(), 200, "get {p}");
    let (_, p) = send("post", "/org/invitations/{invitation_id}/resend");
    let r = app
        .call(
            Method::POST,
            &p.replace("{invitation_id}", &id),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "post {p}");
    let resent = json_body(r).await;
    let (m, p) = send("post", "/invitations/accept");
    let mut body = example_body(&doc, m, p);
    let example = body["token"].as_str().unwrap().to_owned();
    let real = resent["token"].as_str().unwrap();
    assert!(
        example.starts_with("oit_") && example.len() == real.len(),
        "{example}"
    );
    body["token"] = json!(real);
    let r = app.post_json(p, &body).await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let member = json_body(r).await["admin_id"].as_str().unwrap().to_owned();
    let (_, p) = send("get", "/org/members");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(r.status(), 200, "get {p}");
    let (m, p) = send("patch", "/org/members/{admin_id}");
    let r = app
        .call(
            Method::PATCH,
            &p.replace("{admin_id}", &member),
            &token,
            Some(&example_body(&doc, m, p)),
        )
        .await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let (_, p) = send("delete", "/org/members/{admin_id}");
    let r = app
        .call(
            Method::DELETE,
            &p.replace("{admin_id}", &member),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204, "delete {p}");
    let (_, p) = send("delete", "/org/invitations/{invitation_id}");
    let again = app.invite(&token, "cy@acme.com", "viewer").await;
    let r = app
        .call(
            Method::DELETE,
            &p.replace("{invitation_id}", again["invitation_id"].as_str().unwrap()),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204, "delete {p}");

    // Documents: store, read, list, count, replace (If-Match), merge-patch, delete.
    let (m, p) = send("post", "/org/documents");
    let body_example = |m: &str, p: &str, content: &str| {
        doc["paths"][p][m]["requestBody"]["content"][content]["example"].clone()
    };
    let example = body_example(m, p, "application/json");
    assert!(example.is_object(), "{m} {p} has an example body");
    let r = app.call(Method::POST, p, &token, Some(&example)).await;
    assert_eq!(r.status(), 201, "{m} {p}");
    let stored = json_body(r).await;
    let id = stored["id"].as_str().unwrap().to_owned();
    let (_, p) = send("get", "/org/documents/{id}");
    let one = p.replace("{id}", &id);
    assert_eq!(
        app.call(Method::GET, &one, &token, None).await.status(),
        200,
        "get {p}"
    );
    let (_, p) = send("get", "/org/documents");
    let filter = example_param(&doc, p, "filter");
    let r = app
        .client
        .get(app.url(p))
        .query(&[("filter", filter.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "get {p}");
    assert_eq!(
        json_body(r).await["documents"].as_array().unwrap().len(),
        1,
        "the example filter finds the example document"
    );
    let (_, p) = send("get", "/org/documents/count");
    let r = app
        .client
        .get(app.url(p))
        .query(&[("filter", filter.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(r).await["count"], 1, "get {p}");
    let (_, p) = send("put", "/org/documents/{id}");
    let r = app
        .client
        .put(app.url(&one))
        .bearer_auth(&token)
        .header("if-match", "\"1\"")
        .json(&body_example("put", p, "application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "put {p}");
    let (_, p) = send("patch", "/org/documents/{id}");
    let r = app
        .client
        .patch(app.url(&one))
        .bearer_auth(&token)
        .header("if-match", "\"2\"")
        .header("content-type", "application/merge-patch+json")
        .body(body_example("patch", p, "application/merge-patch+json").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "patch {p}");
    let (_, p) = send("delete", "/org/documents/{id}");
    let r = app
        .client
        .delete(app.url(&one))
        .bearer_auth(&token)
        .header("if-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "delete {p}");

    // API keys: make one, list them, use it on the documents, revoke it.
    let (m, p) = send("post", "/org/api-keys");
    let r = app
        .call(Method::POST, p, &token, Some(&example_body(&doc, m, p)))
        .await;
    assert_eq!(r.status(), 201, "{m} {p}");
    let made = json_body(r).await;
    let (_, p) = send("get", "/org/api-keys");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(
        json_body(r).await["api_keys"][0]["id"],
        made["id"],
        "get {p}"
    );
    let r = app
        .client
        .get(app.url("/org/documents/count"))
        .header("x-api-key", made["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the key reads the documents");
    let (_, p) = send("delete", "/org/api-keys/{id}");
    let r = app
        .call(
            Method::DELETE,
            &p.replace("{id}", made["id"].as_str().unwrap()),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204, "delete {p}");

    // The audit log: its newest events, the example filter, the export and the check.
    let (_, p) = send("get", "/org/audit");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(r.status(), 200, "get {p}");
    let newest = json_body(r).await;
    assert_eq!(
        newest["events"][0]["action"], "api_key.revoked",
        "the last change is first"
    );
    let query: Vec<(String, String)> = ["action", "actor_id", "since", "until"]
        .iter()
        .map(|name| (name.to_string(), example_param(&doc, p, name)))
        .collect();
    let r = app
        .client
        .get(app.url(p))
        .query(&query)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "get {p} with the example filter");
    let (_, p) = send("get", "/org/audit/export");
    let r = app.call(Method::GET, p, &token, None).await;
    assert_eq!(r.status(), 200, "get {p}");
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines = r.text().await.unwrap().lines().count();
    assert!(
        lines >= newest["events"].as_array().unwrap().len(),
        "{lines} exported"
    );
    let (_, p) = send("get", "/org/audit/verify");
    let r = app.call(Method::GET, p, &token, None).await;
    let verified = json_body(r).await;
    assert_eq!(verified["ok"], true, "get {p}: {verified}");
    assert_eq!(verified["events_checked"], lines);

    let (m, p) = send("put", "/org/update");
    let r = app
        .send_json(Method::PUT, p, Some(&token), &example_body(&doc, m, p))
        .await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let (m, p) = send("put", "/admin/password");
    let r = app
        .send_json(Method::PUT, p, Some(&token), &example_body(&doc, m, p))
        .await;
    assert_eq!(r.status(), 200, "{m} {p}");
    let token = json_body(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (m, p) = send("delete", "/org/delete");
    let r = app
        .send_json(Method::DELETE, p, Some(&token), &example_body(&doc, m, p))
        .await;
    assert_eq!(r.status(), 204, "{m} {p}");

    // Logout with a live token: a fresh organization from the same examples.
    let (m, p) = send("post", "/admin/logout");
    assert_eq!(
        app.post_json("/org/create", &example_body(&doc, "post", "/org/create"))
            .await
            .status(),
        201
    );
    let token = app.token("admin@acme.com", "SecurePass123!").await;
    let r = app
        .client
        .post(app.url(p))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{m} {p}");
    for path in ["/health", "/health/live"] {
        send("get", path);
        assert_eq!(
            app.client.get(app.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }

    let documented: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{m} {path}"))
        })
        .collect();
    for operation in &documented {
        assert!(
            visited.contains(operation),
            "{operation} has no example in the walk-through test"
        );
    }
}

/// 401s say `WWW-Authenticate`, 429s and 503s `Retry-After`, and times are `date-time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_headers_and_formats() {
    let app = spawn_app(Backend::Embedded).await;
    let doc = app.openapi().await;
    let mut seen = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (status, header) in [
                ("401", "WWW-Authenticate"),
                ("429", "Retry-After"),
                ("503", "Retry-After"),
            ] {
                if let Some(response) = operation["responses"].get(status) {
                    assert!(
                        response["headers"].get(header).is_some(),
                        "{method} {path} {status} lacks {header}"
                    );
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= 15, "only {seen} responses checked");
    let org = &doc["components"]["schemas"]["OrgResponse"]["properties"];
    assert_eq!(org["created_at"]["format"], "date-time");
    assert_eq!(org["updated_at"]["format"], "date-time");
}

/// The name pattern, read by Python's `re` as schemathesis reads it, accepts exactly the names
/// the server accepts, for a table of names from several scripts and every refused class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_pattern_agrees_with_the_server() {
    let app = spawn_app(Backend::Embedded).await;
    let doc = app.openapi().await;
    let pattern = doc["components"]["schemas"]["CreateOrgRequest"]["properties"]
        ["organization_name"]["pattern"]
        .as_str()
        .unwrap()
        .to_owned();
    let names = [
        "Acme Corp",
        "日本 株式会社",
        "Café Noir",
        "Ωmega",
        "١٢٣",
        "㎏",
        "x",
        "!!!",
        "   ",
        "Acme\u{0085}Corp",
        "Acme\u{009F}Corp",
        "Acme\u{200B}Corp",
        "Acme\u{202E}Corp",
        "Acme\u{2028}Corp",
        "Acme\u{0007}Corp",
        "\u{0301}\u{0301}",
        "_-_",
    ];
    // The pattern holds NUL and other controls: it goes to Python as JSON on stdin.
    let script = "import json, re, sys\nd = json.load(sys.stdin)\np = re.compile(d['pattern'])\nprint(json.dumps([bool(p.fullmatch(n)) for n in d['names']]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        let input = json!({"pattern": pattern, "names": names}).to_string();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let matches: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    for (i, name) in names.iter().enumerate() {
        let r = app
            .create_org(name, &format!("p{i}@pattern.example"), PASSWORD)
            .await;
        let accepted = r.status() == 201;
        assert_eq!(
            matches[i],
            accepted,
            "{name:?}: pattern says {}, server says {}",
            matches[i],
            r.status()
        );
    }
}
