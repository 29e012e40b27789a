//! Storage settings: which store, where, in which tenant layout, and the store's timeouts and
//! reconciler.

use std::path::PathBuf;
use std::time::Duration;

use super::parse::{parse_num, validate_db_name};
use super::secret::Secret;
use super::{AppEnv, ConfigError};
use crate::domain::TenantLayout;

/// The shortest `RECONCILE_GRACE_SECONDS` accepted (six store timeouts if that is longer).
pub const MIN_RECONCILE_GRACE_SECONDS: u64 = 10;

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

/// Where the data lives and how long the service waits for it.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Which store backs the service.
    pub backend: StoreConfig,
    /// Longest a request waits for the store before answering 503 (`STORE_TIMEOUT_SECONDS`, default 2).
    pub timeout: Duration,
    /// Age after which an unfinished create/rename/delete is considered abandoned by a crashed
    /// process and finished or undone by the reconciler (`RECONCILE_GRACE_SECONDS`, default 60).
    pub reconcile_grace: Duration,
    /// How often the reconciler runs in the background (`RECONCILE_INTERVAL_SECONDS`, default 60).
    pub reconcile_interval: Duration,
}

impl StorageConfig {
    pub(super) fn parse(
        get: &impl Fn(&str) -> Option<String>,
        app_env: AppEnv,
    ) -> Result<Self, ConfigError> {
        let layout = get("TENANT_LAYOUT")
            .map(|v| v.parse::<TenantLayout>())
            .transpose()
            .map_err(|e| ConfigError::new("TENANT_LAYOUT", e))?;
        let backend = match get("MONGODB_URL") {
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

        let store_timeout =
            Duration::from_secs(parse_num::<u64>(get, "STORE_TIMEOUT_SECONDS", 2, 1, 60)?);
        // An operation is judged abandoned only after the longest a live one can take before
        // its outcome is recorded: six store calls, each bounded by the store timeout. Less
        // would undo live creates during a slow spell (they would answer 503, not a wrong 201,
        // but still fail); `org-service migrate --grace-seconds 0` is for stopped deployments.
        let min_grace = (6 * store_timeout.as_secs()).max(MIN_RECONCILE_GRACE_SECONDS);
        let reconcile_grace = Duration::from_secs(parse_num::<u64>(
            get,
            "RECONCILE_GRACE_SECONDS",
            60.max(min_grace),
            min_grace,
            86_400,
        )?);
        let reconcile_interval = Duration::from_secs(parse_num::<u64>(
            get,
            "RECONCILE_INTERVAL_SECONDS",
            60,
            1,
            86_400,
        )?);

        Ok(Self {
            backend,
            timeout: store_timeout,
            reconcile_grace,
            reconcile_interval,
        })
    }
}
