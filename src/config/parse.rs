//! The small parsers behind [`super::Config::from_lookup`]: numbers with ranges, switches,
//! origins, database names, and the default connection cap.

use std::fmt;

use super::ConfigError;

pub(super) fn parse_num<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: TryFrom<i128> + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    // Parsed wide first, so that 70000 for a port is "out of range", not "not a whole number".
    let wide: i128 = raw
        .parse()
        .map_err(|_| ConfigError::new(var, format!("{raw:?} is not a whole number")))?;
    let out_of_range = || ConfigError::new(var, format!("{raw} is out of range {min}..={max}"));
    let value = T::try_from(wide).map_err(|_| out_of_range())?;
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

/// True for a browser origin: `http` or `https`, a host (no wildcard), an optional port, and
/// nothing else (no path, query, fragment or credentials).
pub(super) fn is_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', '*'])
        && authority
            .parse::<axum::http::uri::Authority>()
            // `port()` is `None` both without a port and with one that is not a u16.
            .is_ok_and(|a| a.port().is_some() || a.host().len() == authority.len())
}

/// Connections to serve at once by default: the soft open-file limit less a reserve of 64
/// descriptors for the store's connections, the database files and the logs (at least 16,
/// at most 16,384).
pub(super) fn default_max_connections() -> usize {
    const RESERVE: u64 = 64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    usize::try_from(soft.saturating_sub(RESERVE).clamp(16, 16_384)).unwrap_or(16_384)
}

pub(super) fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("expected on/off (or true/false), got {other:?}"),
        )),
    }
}

pub(super) fn validate_db_name(name: &str) -> Result<(), ConfigError> {
    let bad = name.len() > 38
        || name
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if bad {
        return Err(ConfigError::new(
            "MASTER_DB_NAME",
            "use at most 38 characters of letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_hold_at_most_38_safe_characters() {
        assert!(validate_db_name(&"d".repeat(38)).is_ok());
        let too_long = validate_db_name(&"d".repeat(39)).unwrap_err();
        assert!(
            too_long.to_string().contains("MASTER_DB_NAME"),
            "{too_long}"
        );
        assert!(validate_db_name("org_service-2").is_ok());
        for bad in ["org service", "org.service", "orgs/x", "örg", "a$b"] {
            assert!(validate_db_name(bad).is_err(), "{bad}");
        }
    }

    /// The default follows the process's soft open-file limit. The test moves that limit to a
    /// value other than the 1024 assumed when it cannot be read, so a default that ignored the
    /// limit would be caught, then puts it back.
    #[test]
    fn the_default_connection_cap_is_the_soft_file_limit_less_64() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read or write only the struct they are given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        let original = limit;
        let soft = if limit.rlim_max >= 2048 { 2048 } else { 1000 };
        limit.rlim_cur = soft;
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let cap = default_max_connections();
        assert_eq!(
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &original) },
            0
        );
        assert_eq!(cap as u64, soft - 64);
    }
}
