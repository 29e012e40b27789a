//! Configuration, read once at start-up from the environment (and `.env`, loaded by `main`).
//!
//! Only this module touches the environment. Every variable has a default that makes
//! `cargo run` work with no set-up; a value that is present but wrong stops start-up with a
//! [`ConfigError`] naming the variable. [`Config::from_lookup`] takes any key → value function,
//! so tests build a configuration from a map instead of mutating the process environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::domain::TenantLayout;
use crate::failpoint::Failpoints;

mod parse;
mod secret;

use parse::{default_max_connections, is_origin, parse_bool, parse_num, validate_db_name};
pub use secret::{estimated_entropy_bits, production_key_problem, Secret};

/// A start-up error that names the offending variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// Where the service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// MongoDB (production): `MONGODB_URL` with master database `MASTER_DB_NAME`.
    Mongo {
        /// Connection string; may carry credentials, so it is never logged whole.
        url: Secret,
        /// The master database that holds `organizations`, `admins` and the tenant collections.
        db_name: String,
        /// `TENANT_LAYOUT`: a collection per tenant (default) or one shared collection.
        layout: TenantLayout,
    },
    /// The embedded SQLite file at `DATABASE_PATH` (the zero set-up default).
    Embedded {
        /// Path of the database file; its directory is created on first run.
        path: PathBuf,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Deployment environment: production refuses unsafe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local work: a missing `SECRET_KEY` is replaced by a random one with a warning.
    Development,
    /// `APP_ENV=production`: a strong `SECRET_KEY` is required; demo mode and failpoints are refused.
    Production,
}

/// The shortest `RECONCILE_GRACE_SECONDS` accepted (six store timeouts if that is longer).
pub const MIN_RECONCILE_GRACE_SECONDS: u64 = 10;

/// The whole configuration. Built by [`Config::from_env`] or [`Config::from_lookup`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (`HOST`, default 127.0.0.1).
    pub host: IpAddr,
    /// Port to bind (`PORT`, default 8000; 0 picks a free port, as tests do).
    pub port: u16,
    /// Which store backs the service.
    pub store: StoreConfig,
    /// HMAC key for tokens (`SECRET_KEY`).
    pub secret_key: Secret,
    /// True when `SECRET_KEY` was missing and a random key was generated (tokens die on restart).
    pub secret_key_generated: bool,
    /// The one JWT algorithm accepted and issued (`ALGORITHM`: HS256, HS384 or HS512).
    pub algorithm: Algorithm,
    /// Access token lifetime (`ACCESS_TOKEN_EXPIRE_MINUTES`, default 30).
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (`REFRESH_TOKEN_EXPIRE_DAYS`, 1–90, default 7).
    pub refresh_token_ttl: Duration,
    /// bcrypt work factor (`BCRYPT_COST`, 4–31, default 12).
    pub bcrypt_cost: u32,
    /// Threads hashing passwords at once (`BCRYPT_WORKERS`, default: the number of cores).
    pub bcrypt_workers: usize,
    /// Origins allowed by CORS (`CORS_ORIGINS`, comma-separated; empty: no cross-origin access).
    pub cors_origins: Vec<String>,
    /// Seeds the original's demo organizations and enables `POST /demo/create-sample-data` (`DEMO_MODE`).
    pub demo_mode: bool,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Per-client-address request limits (`RATE_LIMITS`, on|off, default on).
    pub rate_limits: bool,
    /// Take the client address for rate limits from `X-Forwarded-For` (`TRUST_FORWARDED_FOR`,
    /// default off; turn on only behind a proxy that sets it, such as Render's).
    pub trust_forwarded_for: bool,
    /// Proxies in front of the service that append to `X-Forwarded-For` (`TRUSTED_PROXY_HOPS`,
    /// 1–10, default 1): the client is the address the outermost trusted proxy appended, this
    /// many entries from the right. Used only with `trust_forwarded_for`.
    pub trusted_proxy_hops: usize,
    /// Connections served at once (`MAX_CONNECTIONS`; default: what the open-file limit leaves
    /// after a reserve for the store and logs). Past it the accept loop waits for a connection
    /// to close instead of failing with "too many open files".
    pub max_connections: usize,
    /// A kept-alive HTTP/1 connection, or an HTTP/2 connection with no open stream, is closed
    /// after this long without a request (`HTTP_IDLE_TIMEOUT_SECONDS`, default 60).
    pub idle_timeout: Duration,
    /// Deployment environment (`APP_ENV`).
    pub app_env: AppEnv,
    /// Longest a client may take to send a request's headers, on a new or kept-alive connection
    /// (`HTTP_HEADER_TIMEOUT_SECONDS`, default 10): slow clients cannot pin connections.
    pub header_timeout: Duration,
    /// Longest a request may take end to end before it is answered with 503
    /// (`REQUEST_TIMEOUT_SECONDS`, default 30).
    pub request_timeout: Duration,
    /// Longest a request waits for the store before answering 503 (`STORE_TIMEOUT_SECONDS`, default 2).
    pub store_timeout: Duration,
    /// Age after which an unfinished create/rename/delete is considered abandoned by a crashed
    /// process and finished or undone by the reconciler (`RECONCILE_GRACE_SECONDS`, default 60).
    pub reconcile_grace: Duration,
    /// How often the reconciler runs in the background (`RECONCILE_INTERVAL_SECONDS`, default 60).
    pub reconcile_interval: Duration,
    /// Login attempts allowed per account and client address per window (`LOGIN_MAX_ATTEMPTS`,
    /// default 5).
    pub login_max_attempts: u32,
    /// Attempts per account across all addresses per window before each address is held to one
    /// attempt (`LOGIN_ACCOUNT_MAX_ATTEMPTS`, default 50, at least `LOGIN_MAX_ATTEMPTS`).
    pub login_account_max_attempts: u32,
    /// Length of the login throttle window (`LOGIN_WINDOW_SECONDS`, default 900).
    pub login_window: Duration,
    /// Test-only crash and pause points (`ORG_SERVICE_FAILPOINTS`: `name` or `name=<n>ms`,
    /// comma-separated); refused in production.
    pub failpoints: Failpoints,
    /// Test-only: pretends this instance's clock is off by this many seconds
    /// (`ORG_SERVICE_CLOCK_SKEW_SECONDS`), to show that the MongoDB reconciler and locks go by
    /// the server's clock. Refused in production.
    pub clock_skew: chrono::Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup` (key → value); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let app_env = match get("APP_ENV")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("development") | Some("dev") | Some("test") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    format!("expected development or production, got {other:?}"),
                ))
            }
        };

        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::new("HOST", format!("{v:?} is not an IP address")))?,
        };
        let port = parse_num::<u16>(&get, "PORT", 8000, 0, u16::MAX)?;

        let layout = get("TENANT_LAYOUT")
            .map(|v| v.parse::<TenantLayout>())
            .transpose()
            .map_err(|e| ConfigError::new("TENANT_LAYOUT", e))?;
        let store = match get("MONGODB_URL") {
            Some(url) => {
                if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
                    return Err(ConfigError::new(
                        "MONGODB_URL",
                        "must start with mongodb:// or mongodb+srv://",
                    ));
                }
                let db_name =
                    get("MASTER_DB_NAME").unwrap_or_else(|| "master_organization_db".into());
                validate_db_name(&db_name)?;
                StoreConfig::Mongo {
                    url: Secret::new(url),
                    db_name,
                    layout: layout.unwrap_or_default(),
                }
            }
            // The embedded store keeps every tenant in one table: `shared` is what it does.
            None if layout == Some(TenantLayout::Collection) => {
                return Err(ConfigError::new(
                    "TENANT_LAYOUT",
                    "collection is a MongoDB layout; the embedded store keeps every tenant's documents in one table (set MONGODB_URL, or leave TENANT_LAYOUT unset)",
                ))
            }
            None => match get("DATABASE_PATH") {
                Some(path) => StoreConfig::Embedded {
                    path: PathBuf::from(path),
                },
                // A host's default working directory is often an ephemeral disk (Render's is
                // wiped on every deploy): production must say where its data lives.
                None if app_env == AppEnv::Production => {
                    return Err(ConfigError::new(
                        "DATABASE_PATH",
                        "is required when APP_ENV=production without MONGODB_URL: name a file on a persistent disk, or set MONGODB_URL",
                    ))
                }
                None => StoreConfig::Embedded {
                    path: PathBuf::from("data/organizations.db"),
                },
            },
        };

        let (secret_key, secret_key_generated) = match get("SECRET_KEY") {
            Some(key) => {
                if app_env == AppEnv::Production {
                    if let Some(problem) = production_key_problem(&key) {
                        return Err(ConfigError::new("SECRET_KEY", problem));
                    }
                }
                (Secret::new(key.into_bytes()), false)
            }
            None if app_env == AppEnv::Production => {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    "is required when APP_ENV=production (try `openssl rand -hex 32`)",
                ))
            }
            None => {
                let bytes: [u8; 32] = rand::random();
                (Secret::new(bytes.to_vec()), true)
            }
        };

        let algorithm = match get("ALGORITHM")
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("HS256") => Algorithm::HS256,
            Some("HS384") => Algorithm::HS384,
            Some("HS512") => Algorithm::HS512,
            Some(other) => {
                return Err(ConfigError::new(
                    "ALGORITHM",
                    format!("{other:?} is not supported: use HS256, HS384 or HS512"),
                ))
            }
        };

        let minutes = parse_num::<u64>(&get, "ACCESS_TOKEN_EXPIRE_MINUTES", 30, 1, 24 * 60)?;
        let refresh_days = parse_num::<u64>(&get, "REFRESH_TOKEN_EXPIRE_DAYS", 7, 1, 90)?;
        let bcrypt_cost = parse_num::<u32>(&get, "BCRYPT_COST", 12, 4, 31)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let bcrypt_workers = parse_num::<usize>(&get, "BCRYPT_WORKERS", cores, 1, 256)?;

        let cors_origins = match get("CORS_ORIGINS") {
            None => Vec::new(),
            Some(v) => {
                let origins: Vec<String> = v
                    .split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect();
                for origin in &origins {
                    if origin == "*" {
                        return Err(ConfigError::new(
                            "CORS_ORIGINS",
                            "\"*\" is not allowed: list the origins that may call the API",
                        ));
                    }
                    if !is_origin(origin) {
                        return Err(ConfigError::new(
                            "CORS_ORIGINS",
                            format!("{origin:?} is not an origin like https://app.example.com (scheme and host, an optional port, no path or wildcard): a browser never sends it, so it would never match"),
                        ));
                    }
                }
                origins
            }
        };

        let demo_mode = parse_bool(&get, "DEMO_MODE", false)?;
        if demo_mode && app_env == AppEnv::Production {
            return Err(ConfigError::new(
                "DEMO_MODE",
                "demo mode publishes known passwords and is refused when APP_ENV=production",
            ));
        }

        let log_format = match get("LOG_FORMAT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ))
            }
        };

        let header_timeout = Duration::from_secs(parse_num::<u64>(
            &get,
            "HTTP_HEADER_TIMEOUT_SECONDS",
            10,
            1,
            300,
        )?);
        let request_timeout = Duration::from_secs(parse_num::<u64>(
            &get,
            "REQUEST_TIMEOUT_SECONDS",
            30,
            1,
            600,
        )?);
        let rate_limits = parse_bool(&get, "RATE_LIMITS", true)?;
        let trust_forwarded_for = parse_bool(&get, "TRUST_FORWARDED_FOR", false)?;
        let trusted_proxy_hops = parse_num::<usize>(&get, "TRUSTED_PROXY_HOPS", 1, 1, 10)?;
        let max_connections = parse_num::<usize>(
            &get,
            "MAX_CONNECTIONS",
            default_max_connections(),
            1,
            1_000_000,
        )?;
        let idle_timeout = Duration::from_secs(parse_num::<u64>(
            &get,
            "HTTP_IDLE_TIMEOUT_SECONDS",
            60,
            1,
            3600,
        )?);
        let store_timeout =
            Duration::from_secs(parse_num::<u64>(&get, "STORE_TIMEOUT_SECONDS", 2, 1, 60)?);
        // An operation is judged abandoned only after the longest a live one can take before
        // its outcome is recorded: six store calls, each bounded by the store timeout. Less
        // would undo live creates during a slow spell (they would answer 503, not a wrong 201,
        // but still fail); `org-service migrate --grace-seconds 0` is for stopped deployments.
        let min_grace = (6 * store_timeout.as_secs()).max(MIN_RECONCILE_GRACE_SECONDS);
        let reconcile_grace = Duration::from_secs(parse_num::<u64>(
            &get,
            "RECONCILE_GRACE_SECONDS",
            60.max(min_grace),
            min_grace,
            86_400,
        )?);
        let reconcile_interval = Duration::from_secs(parse_num::<u64>(
            &get,
            "RECONCILE_INTERVAL_SECONDS",
            60,
            1,
            86_400,
        )?);

        let login_max_attempts = parse_num::<u32>(&get, "LOGIN_MAX_ATTEMPTS", 5, 1, 1000)?;
        let login_account_max_attempts = parse_num::<u32>(
            &get,
            "LOGIN_ACCOUNT_MAX_ATTEMPTS",
            50.max(login_max_attempts),
            login_max_attempts,
            1_000_000,
        )?;
        let login_window = Duration::from_secs(parse_num::<u64>(
            &get,
            "LOGIN_WINDOW_SECONDS",
            900,
            1,
            86_400,
        )?);

        let failpoints = Failpoints::parse(&get("ORG_SERVICE_FAILPOINTS").unwrap_or_default())
            .map_err(|e| ConfigError::new("ORG_SERVICE_FAILPOINTS", e))?;
        let clock_skew =
            parse_num::<i64>(&get, "ORG_SERVICE_CLOCK_SKEW_SECONDS", 0, -86_400, 86_400)?;
        if clock_skew != 0 && app_env == AppEnv::Production {
            return Err(ConfigError::new(
                "ORG_SERVICE_CLOCK_SKEW_SECONDS",
                "a simulated clock error is for tests and is refused when APP_ENV=production",
            ));
        }
        if !failpoints.is_empty() && app_env == AppEnv::Production {
            return Err(ConfigError::new(
                "ORG_SERVICE_FAILPOINTS",
                "crash points are for tests and are refused when APP_ENV=production",
            ));
        }

        Ok(Self {
            host,
            port,
            store,
            secret_key,
            secret_key_generated,
            algorithm,
            access_token_ttl: Duration::from_secs(minutes * 60),
            refresh_token_ttl: Duration::from_secs(refresh_days * 86_400),
            bcrypt_cost,
            bcrypt_workers,
            cors_origins,
            demo_mode,
            log_format,
            rate_limits,
            header_timeout,
            request_timeout,
            trust_forwarded_for,
            trusted_proxy_hops,
            max_connections,
            idle_timeout,
            app_env,
            store_timeout,
            reconcile_grace,
            reconcile_interval,
            login_max_attempts,
            login_account_max_attempts,
            login_window,
            failpoints,
            clock_skew: chrono::Duration::seconds(clock_skew),
        })
    }
}

#[cfg(test)]
mod tests;
