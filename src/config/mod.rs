//! Configuration, read once at start-up from the environment (and `.env`, loaded by `main`).
//!
//! Only this module touches the environment. Every variable has a default that makes
//! `cargo run` work with no set-up; a value that is present but wrong stops start-up with a
//! [`ConfigError`] naming the variable. [`Config::from_lookup`] takes any key → value function,
//! so tests build a configuration from a map instead of mutating the process environment.

mod auth;
mod http;
mod parse;
mod secret;
mod storage;
mod tenant;
mod testing;

pub use auth::AuthConfig;
pub use http::HttpConfig;
use parse::parse_bool;
pub use secret::{estimated_entropy_bits, production_key_problem, Secret};
pub use storage::{StorageConfig, StoreConfig, MIN_RECONCILE_GRACE_SECONDS};
pub use tenant::TenantLimits;
pub use testing::TestHooks;

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

/// The whole configuration, in groups. Built by [`Config::from_env`] or
/// [`Config::from_lookup`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Deployment environment (`APP_ENV`).
    pub app_env: AppEnv,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Seeds the original's demo organizations and enables `POST /demo/create-sample-data` (`DEMO_MODE`).
    pub demo_mode: bool,
    /// Listening, CORS, rate limits, proxies, connections, timeouts.
    pub http: HttpConfig,
    /// Token key and lifetimes, password hashing, login throttle.
    pub auth: AuthConfig,
    /// The store, its timeouts and its reconciler.
    pub storage: StorageConfig,
    /// Limits on the organizations' documents.
    pub tenant: TenantLimits,
    /// Test-only crash points and clock error.
    pub testing: TestHooks,
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

        Ok(Self {
            app_env,
            log_format,
            demo_mode,
            http: HttpConfig::parse(&get)?,
            auth: AuthConfig::parse(&get, app_env)?,
            storage: StorageConfig::parse(&get, app_env)?,
            tenant: TenantLimits::parse(&get)?,
            testing: TestHooks::parse(&get, app_env)?,
        })
    }
}

#[cfg(test)]
mod tests;
