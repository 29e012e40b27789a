//! Who the client is: the peer address, or behind trusted proxies the address they saw.
//!
//! Rate limits and the login throttle key on this address, so it must not be something the
//! client can choose. A proxy *appends* the address it received the connection from to
//! `X-Forwarded-For`; everything to the left of what our own proxies appended is whatever the
//! client sent. So with `TRUSTED_PROXY_HOPS = n` proxies in front of the service, the client is
//! the `n`-th entry from the right, counted over every `X-Forwarded-For` line of the request
//! taken together in order (a client that sends its own line before the proxy's cannot move
//! that position). Without `TRUST_FORWARDED_FOR` the header is ignored and the peer address is
//! the client.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// The client address of a request, put in its extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// How much of `X-Forwarded-For` to believe: `None` ignores it; `Some(n)` trusts `n` proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedPolicy(pub Option<usize>);

impl ForwardedPolicy {
    /// The client address for a request from `peer` with these headers.
    pub fn client(self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let Some(hops) = self.0 else {
            return peer;
        };
        let lines = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or(""));
        forwarded_client(lines, hops).unwrap_or(peer)
    }
}

/// The entry `hops` places from the right of the comma-separated lists in `lines` (all lines
/// joined in order), if it is an IP address. With fewer entries than hops the request did not
/// pass through every trusted proxy, so the left-most entry (the first a trusted proxy added)
/// is used.
pub fn forwarded_client<'a>(lines: impl Iterator<Item = &'a str>, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = lines
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let index = entries.len().saturating_sub(hops.max(1));
    entries.get(index).and_then(|e| parse_entry(e))
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Middleware: records the request's [`ClientAddr`] for the layers and handlers after it.
pub async fn resolve(
    State(policy): State<ForwardedPolicy>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = policy.client(req.headers(), peer.ip());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn untrusted_header_is_ignored() {
        let peer = ip("10.0.0.9");
        let h = headers(&["1.1.1.1"]);
        assert_eq!(ForwardedPolicy(None).client(&h, peer), peer);
    }

    #[test]
    fn one_hop_takes_the_right_most_entry_across_lines() {
        let peer = ip("10.0.0.9");
        // The client's own line comes first; the proxy appended its line last.
        let h = headers(&["6.6.6.6, 7.7.7.7", "203.0.113.5"]);
        assert_eq!(ForwardedPolicy(Some(1)).client(&h, peer), ip("203.0.113.5"));
        let h = headers(&["6.6.6.6", "203.0.113.5, 198.51.100.2"]);
        assert_eq!(
            ForwardedPolicy(Some(1)).client(&h, peer),
            ip("198.51.100.2")
        );
        assert_eq!(ForwardedPolicy(Some(2)).client(&h, peer), ip("203.0.113.5"));
        assert_eq!(ForwardedPolicy(Some(3)).client(&h, peer), ip("6.6.6.6"));
    }

    #[test]
    fn fewer_entries_than_hops_takes_the_left_most() {
        let h = headers(&["203.0.113.5, 198.51.100.2"]);
        assert_eq!(
            ForwardedPolicy(Some(5)).client(&h, ip("10.0.0.9")),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn missing_or_garbage_falls_back_to_the_peer() {
        let peer = ip("10.0.0.9");
        assert_eq!(
            ForwardedPolicy(Some(1)).client(&HeaderMap::new(), peer),
            peer
        );
        let h = headers(&["1.1.1.1, not-an-address"]);
        assert_eq!(ForwardedPolicy(Some(1)).client(&h, peer), peer);
        let h = headers(&[" , "]);
        assert_eq!(ForwardedPolicy(Some(1)).client(&h, peer), peer);
    }

    #[test]
    fn entries_with_ports_and_ipv6() {
        assert_eq!(parse_entry("1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(parse_entry("[2001:db8::1]:80"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("unknown"), None);
    }

    #[tokio::test]
    async fn the_middleware_records_the_client_for_later_layers() {
        use axum::routing::get;
        use tower::ServiceExt;

        let app = axum::Router::new()
            .route(
                "/",
                get(|req: Request| async move {
                    req.extensions()
                        .get::<ClientAddr>()
                        .map_or("none".to_owned(), |c| c.0.to_string())
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                ForwardedPolicy(Some(1)),
                resolve,
            ));
        let mut req = Request::builder()
            .uri("/")
            .header("x-forwarded-for", "203.0.113.5")
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo("10.0.0.9:1234".parse::<SocketAddr>().unwrap()));
        let response = app.clone().oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"203.0.113.5");
        // Without a peer address (no connection info) nothing is recorded.
        let req = Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"none");
    }
}
