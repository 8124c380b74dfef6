//! Which upstream URLs a publisher may point the platform at. Outside test mode an MCP or
//! HTTP-tool URL must be http(s) and resolve only to public addresses: the platform must not
//! become a way into its own network (loopback, private ranges, link-local incl. cloud
//! metadata, carrier-grade NAT, unique-local IPv6, …).

use crate::Finding;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || o[0] >= 240)
}

pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x64 && s[1] == 0xff9b))
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => is_public_v4(v),
        IpAddr::V6(v) => is_public_v6(v),
    }
}

/// Syntax of an upstream URL: absolute http(s) with a host, no credentials. Returns (host, port).
pub fn parse_upstream(raw: &str) -> Result<(String, u16), Finding> {
    let u = url::Url::parse(raw.trim()).map_err(|_| Finding::new("upstream_url_invalid", raw.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Finding::new("upstream_url_invalid", "only http:// and https:// URLs"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Finding::new("upstream_url_invalid", "no credentials in the URL"));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Finding::new("upstream_url_invalid", "no host"))?;
    let port = u.port_or_known_default().unwrap_or(80);
    Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port))
}

/// Checks an upstream URL; with `allow_private` (test mode) only the syntax is checked.
/// Host names are resolved and every address must be public.
pub async fn check_resolved(raw: &str, allow_private: bool) -> Result<(), Finding> {
    let (host, port) = parse_upstream(raw)?;
    if allow_private {
        return Ok(());
    }
    let refused = || Finding::new("upstream_private_address", format!("{host} is not a public address"));
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Err(refused());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_public(ip) { Ok(()) } else { Err(refused()) };
    }
    let addrs: Vec<_> = tokio_lookup(&host, port)
        .await
        .map_err(|e| Finding::new("upstream_unreachable", e))?;
    if addrs.is_empty() {
        return Err(Finding::new("upstream_unreachable", format!("{host} does not resolve")));
    }
    if addrs.iter().any(|a| !is_public(*a)) {
        return Err(refused());
    }
    Ok(())
}

async fn tokio_lookup(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    tokio::net::lookup_host((host, port))
        .await
        .map(|it| it.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn url_syntax() {
        assert!(parse_upstream("ftp://x.example").is_err());
        assert!(parse_upstream("https://u:p@x.example/").is_err());
        assert!(parse_upstream("not a url").is_err());
        assert_eq!(parse_upstream("https://[::1]:8443/mcp").unwrap(), ("::1".to_string(), 8443));
    }
}
