//! The deployment files agree with each other and with the binary.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every environment variable `src/config/mod.rs` reads: the string in each `get("X")` and
/// `parse_…(&get, "X", …)` call.
fn config_variables() -> BTreeSet<String> {
    let files = [
        "mod.rs",
        "http.rs",
        "auth.rs",
        "storage.rs",
        "tenant.rs",
        "testing.rs",
    ];
    let source: String = files
        .iter()
        .map(|f| read(&format!("src/config/{f}")))
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut vars = BTreeSet::new();
    for marker in ["get(\"", "&get,\"", "(get,\""] {
        for part in source.split(marker).skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                vars.insert(name.to_owned());
            }
        }
    }
    vars
}

#[test]
fn dockerfile_runs_the_binary_as_non_root_with_a_healthcheck() {
    let docker = read("Dockerfile");
    assert!(docker.contains("cargo build --release --locked"));
    assert!(docker.contains("/target/release/org-service /usr/local/bin/org-service"));
    assert!(docker.contains("ENTRYPOINT [\"org-service\"]"));
    assert!(docker.contains("HOST=0.0.0.0"));
    let user = docker
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    let health = docker
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .nth(1)
        .expect("HEALTHCHECK CMD");
    assert!(health.contains("${PORT}/health/live"), "{health}");
    let port = docker
        .lines()
        .find_map(|l| l.trim().strip_prefix("PORT="))
        .expect("ENV PORT")
        .trim_end_matches([' ', '\\']);
    assert!(docker.contains(&format!("EXPOSE {port}")));
    assert!(
        docker.contains("FROM rust:") && docker.contains("FROM debian:"),
        "multi-stage"
    );
    // The dependency layer builds with stand-ins for the sources: every bench Cargo.toml names
    // needs one, or the manifest does not parse there.
    let manifest = read("Cargo.toml");
    let benches: Vec<&str> = manifest
        .split("[[bench]]")
        .skip(1)
        .filter_map(|block| block.lines().find_map(|l| l.trim().strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    assert!(!benches.is_empty());
    for bench in benches {
        assert!(
            docker.contains(&format!("> benches/{bench}.rs")),
            "the Dockerfile's dependency layer lacks a stand-in for the {bench} bench"
        );
    }
}

#[test]
fn procfile_and_render_start_the_same_command() {
    let procfile = read("Procfile");
    let web = procfile
        .lines()
        .find_map(|l| l.strip_prefix("web:"))
        .expect("a web process")
        .trim()
        .to_owned();
    assert!(
        web.starts_with("./target/release/org-service serve --host 0.0.0.0 --port ${PORT"),
        "{web}"
    );

    let render = read("render.yaml");
    let value = |key: &str| {
        render
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("render.yaml lacks {key}"))
    };
    assert_eq!(
        value("startCommand"),
        "./target/release/org-service serve --host 0.0.0.0 --port $PORT"
    );
    assert_eq!(value("buildCommand"), "cargo build --release --locked");
    assert_eq!(value("healthCheckPath"), "/health");

    // Every variable render.yaml sets is one the service reads; the secret ones are secrets.
    let known = config_variables();
    let keys: Vec<&str> = render
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- key:"))
        .map(str::trim)
        .collect();
    for key in &keys {
        assert!(
            known.contains(*key) || *key == "RUST_LOG",
            "render.yaml sets {key}, which the service does not read"
        );
    }
    let block = |key: &str| {
        render
            .split(&format!("- key: {key}"))
            .nth(1)
            .and_then(|b| b.lines().nth(1))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    assert_eq!(block("SECRET_KEY"), "generateValue: true");
    assert_eq!(block("MONGODB_URL"), "sync: false");
    assert_eq!(block("APP_ENV"), "value: production");
}

#[test]
fn env_example_and_readme_document_every_variable() {
    let vars = config_variables();
    assert!(vars.len() >= 20, "found only {vars:?}");
    let example = read(".env.example");
    let readme = read("README.md");
    for var in &vars {
        if var.starts_with("ORG_SERVICE_") {
            assert!(
                readme.contains(var.as_str()),
                "README lacks the test-only {var}"
            );
            continue; // test-only knobs stay out of .env.example
        }
        assert!(
            example.contains(&format!("{var}=")),
            ".env.example lacks {var}"
        );
        assert!(readme.contains(var.as_str()), "README lacks {var}");
    }
}
