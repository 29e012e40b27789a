//! HTTP settings: where to listen, cross-origin access, rate limits, client addresses behind
//! proxies, connection limits and timeouts.

use std::net::IpAddr;
use std::time::Duration;

use super::parse::{default_max_connections, is_origin, parse_bool, parse_num};
use super::ConfigError;

/// How the service talks HTTP.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to bind (`HOST`, default 127.0.0.1).
    pub host: IpAddr,
    /// Port to bind (`PORT`, default 8000; 0 picks a free port, as tests do).
    pub port: u16,
    /// Origins allowed by CORS (`CORS_ORIGINS`, comma-separated; empty: no cross-origin access).
    pub cors_origins: Vec<String>,
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
    /// Longest a client may take to send a request's headers, on a new or kept-alive connection
    /// (`HTTP_HEADER_TIMEOUT_SECONDS`, default 10): slow clients cannot pin connections.
    pub header_timeout: Duration,
    /// Longest a request may take end to end before it is answered with 503
    /// (`REQUEST_TIMEOUT_SECONDS`, default 30).
    pub request_timeout: Duration,
}

impl HttpConfig {
    pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::new("HOST", format!("{v:?} is not an IP address")))?,
        };
        let port = parse_num::<u16>(get, "PORT", 8000, 0, u16::MAX)?;

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

        let header_timeout = Duration::from_secs(parse_num::<u64>(
            get,
            "HTTP_HEADER_TIMEOUT_SECONDS",
            10,
            1,
            300,
        )?);
        let request_timeout = Duration::from_secs(parse_num::<u64>(
            get,
            "REQUEST_TIMEOUT_SECONDS",
            30,
            1,
            600,
        )?);
        let rate_limits = parse_bool(get, "RATE_LIMITS", true)?;
        let trust_forwarded_for = parse_bool(get, "TRUST_FORWARDED_FOR", false)?;
        let trusted_proxy_hops = parse_num::<usize>(get, "TRUSTED_PROXY_HOPS", 1, 1, 10)?;
        let max_connections = parse_num::<usize>(
            get,
            "MAX_CONNECTIONS",
            default_max_connections(),
            1,
            1_000_000,
        )?;
        let idle_timeout = Duration::from_secs(parse_num::<u64>(
            get,
            "HTTP_IDLE_TIMEOUT_SECONDS",
            60,
            1,
            3600,
        )?);
        Ok(Self {
            host,
            port,
            cors_origins,
            rate_limits,
            trust_forwarded_for,
            trusted_proxy_hops,
            max_connections,
            idle_timeout,
            header_timeout,
            request_timeout,
        })
    }
}
