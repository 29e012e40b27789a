//! Test-only settings, each refused when `APP_ENV=production`.

use super::parse::parse_num;
use super::{AppEnv, ConfigError};
use crate::failpoint::Failpoints;

/// What tests may do to the service.
#[derive(Debug, Clone)]
pub struct TestHooks {
    /// Test-only crash and pause points (`ORG_SERVICE_FAILPOINTS`: `name` or `name=<n>ms`,
    /// comma-separated); refused in production.
    pub failpoints: Failpoints,
    /// Test-only: pretends this instance's clock is off by this many seconds
    /// (`ORG_SERVICE_CLOCK_SKEW_SECONDS`), to show that the MongoDB reconciler and locks go by
    /// the server's clock. Refused in production.
    pub clock_skew: chrono::Duration,
}

impl TestHooks {
    pub(super) fn parse(
        get: &impl Fn(&str) -> Option<String>,
        app_env: AppEnv,
    ) -> Result<Self, ConfigError> {
        let failpoints = Failpoints::parse(&get("ORG_SERVICE_FAILPOINTS").unwrap_or_default())
            .map_err(|e| ConfigError::new("ORG_SERVICE_FAILPOINTS", e))?;
        let clock_skew =
            parse_num::<i64>(get, "ORG_SERVICE_CLOCK_SKEW_SECONDS", 0, -86_400, 86_400)?;
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
            failpoints,
            clock_skew: chrono::Duration::seconds(clock_skew),
        })
    }
}
