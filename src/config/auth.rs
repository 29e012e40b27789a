//! Authentication settings: the token key and algorithm, token lifetimes, password hashing and
//! the login throttle.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::parse::parse_num;
use super::secret::{production_key_problem, Secret};
use super::{AppEnv, ConfigError};

/// How the service authenticates.
#[derive(Debug, Clone)]
pub struct AuthConfig {
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
    /// Login attempts allowed per account and client address per window (`LOGIN_MAX_ATTEMPTS`,
    /// default 5).
    pub login_max_attempts: u32,
    /// Attempts per account across all addresses per window before each address is held to one
    /// attempt (`LOGIN_ACCOUNT_MAX_ATTEMPTS`, default 50, at least `LOGIN_MAX_ATTEMPTS`).
    pub login_account_max_attempts: u32,
    /// Length of the login throttle window (`LOGIN_WINDOW_SECONDS`, default 900).
    pub login_window: Duration,
}

impl AuthConfig {
    pub(super) fn parse(
        get: &impl Fn(&str) -> Option<String>,
        app_env: AppEnv,
    ) -> Result<Self, ConfigError> {
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

        let minutes = parse_num::<u64>(get, "ACCESS_TOKEN_EXPIRE_MINUTES", 30, 1, 24 * 60)?;
        let refresh_days = parse_num::<u64>(get, "REFRESH_TOKEN_EXPIRE_DAYS", 7, 1, 90)?;
        let bcrypt_cost = parse_num::<u32>(get, "BCRYPT_COST", 12, 4, 31)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let bcrypt_workers = parse_num::<usize>(get, "BCRYPT_WORKERS", cores, 1, 256)?;

        let login_max_attempts = parse_num::<u32>(get, "LOGIN_MAX_ATTEMPTS", 5, 1, 1000)?;
        let login_account_max_attempts = parse_num::<u32>(
            get,
            "LOGIN_ACCOUNT_MAX_ATTEMPTS",
            50.max(login_max_attempts),
            login_max_attempts,
            1_000_000,
        )?;
        let login_window = Duration::from_secs(parse_num::<u64>(
            get,
            "LOGIN_WINDOW_SECONDS",
            900,
            1,
            86_400,
        )?);

        Ok(Self {
            secret_key,
            secret_key_generated,
            algorithm,
            access_token_ttl: Duration::from_secs(minutes * 60),
            refresh_token_ttl: Duration::from_secs(refresh_days * 86_400),
            bcrypt_cost,
            bcrypt_workers,
            login_max_attempts,
            login_account_max_attempts,
            login_window,
        })
    }
}
