//! The client's address: the TCP peer, or the `X-Forwarded-For` entry left by a trusted
//! proxy. The header is believed only when the peer is in `TRUSTED_PROXIES`, so a client
//! cannot pick its own address to dodge rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use ipnet::IpNet;

use crate::app::AppState;

/// The address rate limits and the audit trail use.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(resolve(
            peer,
            || {
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            &state.config.trusted_proxies,
        )))
    }
}

/// Walks `X-Forwarded-For` from the right while the hops are trusted proxies; the first
/// untrusted hop is the client. The header is read (`forwarded`) only when the peer is a
/// trusted proxy: most requests come straight from clients.
fn resolve(peer: IpAddr, forwarded: impl FnOnce() -> String, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = forwarded();
    let mut client = peer;
    for hop in forwarded
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        assert_eq!(
            resolve(ip("203.0.113.9"), || "1.2.3.4".to_owned(), &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                || "1.2.3.4, 198.51.100.7, 10.0.0.5".to_owned(),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), || "garbage".to_owned(), &trusted),
            ip("10.0.0.2")
        );
    }
}
