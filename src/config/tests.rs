//! Configuration parsing, tested without touching the process environment.

use super::*;
use crate::domain::TenantLayout;
use jsonwebtoken::Algorithm;
use std::collections::HashMap;
use std::time::Duration;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_need_no_setup() {
    let c = config(&[]).unwrap();
    assert_eq!(c.http.port, 8000);
    assert_eq!(c.http.host.to_string(), "127.0.0.1");
    assert_eq!(
        c.storage.backend,
        StoreConfig::Embedded {
            path: "data/organizations.db".into()
        }
    );
    assert!(c.auth.secret_key_generated);
    assert_eq!(c.auth.secret_key.expose().len(), 32);
    assert_eq!(c.auth.algorithm, Algorithm::HS256);
    assert_eq!(c.auth.access_token_ttl, Duration::from_secs(1800));
    assert_eq!(c.auth.bcrypt_cost, 12);
    assert!(!c.demo_mode);
    assert!(c.http.rate_limits);
}

#[test]
fn mongodb_url_selects_mongo_with_default_master_db() {
    let c = config(&[("MONGODB_URL", "mongodb://localhost:27017")]).unwrap();
    match c.storage.backend {
        StoreConfig::Mongo {
            db_name, layout, ..
        } => {
            assert_eq!(db_name, "master_organization_db");
            assert_eq!(layout, TenantLayout::Collection);
        }
        other => panic!("expected mongo, got {other:?}"),
    }
}

#[test]
fn tenant_layout_is_for_mongodb_and_shared_is_what_embedded_does() {
    let mongo = |layout: &str| {
        config(&[
            ("MONGODB_URL", "mongodb://localhost"),
            ("TENANT_LAYOUT", layout),
        ])
        .map(|c| c.storage.backend)
    };
    assert!(matches!(
        mongo("shared"),
        Ok(StoreConfig::Mongo {
            layout: TenantLayout::Shared,
            ..
        })
    ));
    assert!(matches!(
        mongo("collection"),
        Ok(StoreConfig::Mongo {
            layout: TenantLayout::Collection,
            ..
        })
    ));
    assert_eq!(mongo("sharded").unwrap_err().var, "TENANT_LAYOUT");
    assert!(matches!(
        config(&[("TENANT_LAYOUT", "shared")]).map(|c| c.storage.backend),
        Ok(StoreConfig::Embedded { .. })
    ));
    let err = config(&[("TENANT_LAYOUT", "collection")]).unwrap_err();
    assert_eq!(err.var, "TENANT_LAYOUT");
    assert!(err.to_string().contains("embedded store"), "{err}");
}

#[test]
fn bad_values_name_their_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PORT", "eighty")], "PORT"),
        (&[("PORT", "70000")], "PORT"),
        (&[("BCRYPT_COST", "3")], "BCRYPT_COST"),
        (&[("ALGORITHM", "none")], "ALGORITHM"),
        (&[("ALGORITHM", "RS256")], "ALGORITHM"),
        (&[("HOST", "localhost:80")], "HOST"),
        (&[("DEMO_MODE", "maybe")], "DEMO_MODE"),
        (&[("RATE_LIMITS", "sometimes")], "RATE_LIMITS"),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("CORS_ORIGINS", "*")], "CORS_ORIGINS"),
        (&[("CORS_ORIGINS", "example.com")], "CORS_ORIGINS"),
        (&[("MONGODB_URL", "postgres://x")], "MONGODB_URL"),
        (
            &[("MONGODB_URL", "mongodb://x"), ("MASTER_DB_NAME", "a.b")],
            "MASTER_DB_NAME",
        ),
        (
            &[("ACCESS_TOKEN_EXPIRE_MINUTES", "0")],
            "ACCESS_TOKEN_EXPIRE_MINUTES",
        ),
        (&[("APP_ENV", "staging")], "APP_ENV"),
    ];
    for (pairs, var) in cases {
        let err = config(pairs).expect_err(&format!("{pairs:?} should be refused"));
        assert_eq!(err.var, *var, "{pairs:?}");
        assert!(err.to_string().contains(var));
    }
}

#[test]
fn production_refuses_missing_or_short_secret_and_demo_mode() {
    let err = config(&[("APP_ENV", "production"), ("DATABASE_PATH", "/d/o.db")]).unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
    let err = config(&[
        ("APP_ENV", "production"),
        ("DATABASE_PATH", "/d/o.db"),
        ("SECRET_KEY", "short"),
    ])
    .unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
    let long = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let ok = config(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", long),
        ("DATABASE_PATH", "/data/orgs.db"),
    ])
    .unwrap();
    assert!(!ok.auth.secret_key_generated);
    let err = config(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", long),
        ("DATABASE_PATH", "/data/orgs.db"),
        ("DEMO_MODE", "true"),
    ])
    .unwrap_err();
    assert_eq!(err.var, "DEMO_MODE");
}

#[test]
fn secret_debug_hides_the_key() {
    let s = Secret::new(b"super-secret-value".to_vec());
    assert_eq!(format!("{s:?}"), "Secret([redacted; 18 bytes])");
    assert_eq!(s.expose(), b"super-secret-value");
}

#[test]
fn numbers_out_of_range_say_so_even_past_the_type() {
    let err = config(&[("PORT", "70000")]).unwrap_err();
    assert_eq!(err.var, "PORT");
    assert!(err.message.contains("out of range 0..=65535"), "{err}");
    let err = config(&[("PORT", "-1")]).unwrap_err();
    assert!(err.message.contains("out of range"), "{err}");
    let err = config(&[("PORT", "8o")]).unwrap_err();
    assert!(err.message.contains("not a whole number"), "{err}");
    assert_eq!(config(&[("PORT", "65535")]).unwrap().http.port, 65535);
}

#[test]
fn cors_origins_must_be_origins_a_browser_sends() {
    for bad in [
        "https://*.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "ftp://app.example.com",
        "https://",
        "https://app.example.com:99999",
    ] {
        let err = config(&[("CORS_ORIGINS", bad)]).expect_err(bad);
        assert_eq!(err.var, "CORS_ORIGINS", "{bad}");
    }
    let ok = config(&[(
        "CORS_ORIGINS",
        "https://app.example.com, http://localhost:3000/",
    )])
    .unwrap();
    assert_eq!(
        ok.http.cors_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
}

#[test]
fn production_needs_a_strong_key_and_an_explicit_store() {
    let strong = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let err = config(&[
        ("APP_ENV", "production"),
        ("MONGODB_URL", "mongodb://db"),
        ("SECRET_KEY", &"a".repeat(32)),
    ])
    .unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
    let err = config(&[
        ("APP_ENV", "production"),
        ("MONGODB_URL", "mongodb://db"),
        (
            "SECRET_KEY",
            "change-me-to-the-output-of-openssl-rand-hex-32",
        ),
    ])
    .unwrap_err();
    assert_eq!(err.var, "SECRET_KEY");
    let err = config(&[("APP_ENV", "production"), ("SECRET_KEY", strong)]).unwrap_err();
    assert_eq!(
        err.var, "DATABASE_PATH",
        "no silent file on an ephemeral disk"
    );
    let ok = config(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", strong),
        ("DATABASE_PATH", "/data/orgs.db"),
    ])
    .unwrap();
    assert_eq!(
        ok.storage.backend,
        StoreConfig::Embedded {
            path: "/data/orgs.db".into()
        }
    );
    config(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", strong),
        ("MONGODB_URL", "mongodb://db"),
    ])
    .unwrap();
}

#[test]
fn connection_limits_and_proxy_hops() {
    let c = config(&[]).unwrap();
    assert_eq!(c.http.trusted_proxy_hops, 1);
    assert!((16..=16_384).contains(&c.http.max_connections));
    assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
    let c = config(&[
        ("TRUSTED_PROXY_HOPS", "2"),
        ("MAX_CONNECTIONS", "100"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "5"),
    ])
    .unwrap();
    assert_eq!(
        (
            c.http.trusted_proxy_hops,
            c.http.max_connections,
            c.http.idle_timeout
        ),
        (2, 100, Duration::from_secs(5))
    );
    for (var, bad) in [
        ("TRUSTED_PROXY_HOPS", "0"),
        ("TRUSTED_PROXY_HOPS", "11"),
        ("MAX_CONNECTIONS", "0"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "0"),
    ] {
        assert_eq!(config(&[(var, bad)]).unwrap_err().var, var);
    }
}

#[test]
fn reconcile_grace_has_a_safe_minimum() {
    assert_eq!(
        config(&[]).unwrap().storage.reconcile_grace,
        Duration::from_secs(60)
    );
    let err = config(&[("RECONCILE_GRACE_SECONDS", "0")]).unwrap_err();
    assert_eq!(err.var, "RECONCILE_GRACE_SECONDS");
    // Six store timeouts of 2 s.
    assert!(err.message.contains("12..="), "{err}");
    // Never under ten seconds, however short the store timeout.
    let one = ("STORE_TIMEOUT_SECONDS", "1");
    let err = config(&[one, ("RECONCILE_GRACE_SECONDS", "9")]).unwrap_err();
    assert!(err.message.contains("10..="), "{err}");
    assert_eq!(
        config(&[one, ("RECONCILE_GRACE_SECONDS", "10")])
            .unwrap()
            .storage
            .reconcile_grace,
        Duration::from_secs(10)
    );
    let err = config(&[
        ("STORE_TIMEOUT_SECONDS", "5"),
        ("RECONCILE_GRACE_SECONDS", "29"),
    ])
    .unwrap_err();
    assert!(err.message.contains("30..="), "{err}");
    let c = config(&[("STORE_TIMEOUT_SECONDS", "20")]).unwrap();
    assert_eq!(c.storage.reconcile_grace, Duration::from_secs(120));
}
