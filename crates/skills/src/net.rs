//! Which upstream URLs a publisher may point the platform at. Outside test mode an MCP or
//! HTTP-tool URL must be http(s) and resolve only to public addresses: the platform must not
//! become a way into its own network (loopback, private ranges, link-local incl. cloud
//! metadata, carrier-grade NAT, unique-local IPv6, …) (M2.3).
//!
//! The rule holds twice: at publish time ([`check_resolved`]) and at connect time, for every
//! outgoing call to a publisher (MCP, HTTP tool, refresh): the HTTP client of those calls
//! ([`publisher_client`]) resolves host names through [`GuardedResolver`], which drops
//! non-public addresses, so a name that resolved to a public address at publish time and to a
//! private one later (DNS rebinding) is refused with `upstream_private_address`. IP literals
//! are never resolved, so [`check_literal`] checks them before each call; redirects are not
//! followed (a redirect could name an IP literal).

use crate::Finding;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The IPv4 address a v6 address carries for a v4 host, if any: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-translated (`::ffff:0:a.b.c.d`, RFC 2765), IPv4-compatible (`::a.b.c.d`, deprecated)
/// and 6to4 (`2002:AABB:CCDD::/48`, RFC 3056). A stack or relay may deliver such an address
/// to the v4 host, so it is judged by that host.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        // `::` and `::1` are in the IPv4-compatible range; they embed 0.0.0.0 and 0.0.0.1,
        // which are not public either.
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Teredo (2001::/32): the v4 ends of the tunnel are not visible to this check.
        || (s[0] == 0x2001 && s[1] == 0)
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

/// Syntax and, for IP literals, the address rule, without resolving a name: the check before
/// each call (names are checked by [`GuardedResolver`] when the connection is made).
pub fn check_literal(raw: &str, allow_private: bool) -> Result<(), Finding> {
    let (host, _) = parse_upstream(raw)?;
    if allow_private {
        return Ok(());
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Err(Finding::new("upstream_private_address", format!("{host} is not a public address"))),
        _ => Ok(()),
    }
}

/// The addresses a connection may use: all of them in test mode, else only public ones.
pub fn usable_addrs(addrs: impl IntoIterator<Item = SocketAddr>, allow_private: bool) -> Vec<SocketAddr> {
    addrs.into_iter().filter(|a| allow_private || is_public(a.ip())).collect()
}

/// The error of a connection refused because the publisher's host name resolved only to
/// non-public addresses. Its text starts with the stable code `upstream_private_address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateAddress {
    pub host: String,
}

impl std::fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream_private_address: {} resolves to no public address", self.host)
    }
}

impl std::error::Error for PrivateAddress {}

impl PrivateAddress {
    pub fn finding(&self) -> Finding {
        Finding::new("upstream_private_address", format!("{} is not a public address", self.host))
    }
}

/// How long a refused host is remembered, so that a caller whose HTTP stack flattened the
/// error to text (rmcp) can still tell a refusal from an ordinary connection failure.
const REFUSED_MEMORY: Duration = Duration::from_secs(120);

/// A `reqwest` DNS resolver for publisher calls: resolves with the system resolver and drops
/// loopback, private, link-local, unique-local, unspecified, multicast and other non-public
/// addresses (v4 and v6, IPv4-mapped v6 included). A name with no public address left is
/// refused with [`PrivateAddress`]. In test mode (`allow_private`) every address is kept.
#[derive(Clone, Default)]
pub struct GuardedResolver {
    allow_private: bool,
    refused: Arc<Mutex<HashMap<String, Instant>>>,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        GuardedResolver {
            allow_private,
            refused: Arc::default(),
        }
    }

    /// Resolves `host` as a connection would (port 0: the URL's port is applied by reqwest).
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let kept = usable_addrs(all, self.allow_private);
        if kept.is_empty() {
            if let Ok(mut m) = self.refused.lock() {
                m.retain(|_, at| at.elapsed() < REFUSED_MEMORY);
                m.insert(host.to_ascii_lowercase(), Instant::now());
            }
            return Err(Box::new(PrivateAddress { host: host.to_string() }));
        }
        Ok(kept)
    }

    /// Whether a connection to the host of `url` was refused recently (see [`REFUSED_MEMORY`]).
    pub fn refused(&self, url: &str) -> Option<PrivateAddress> {
        let (host, _) = parse_upstream(url).ok()?;
        let m = self.refused.lock().ok()?;
        let at = m.get(&host.to_ascii_lowercase())?;
        (at.elapsed() < REFUSED_MEMORY).then_some(PrivateAddress { host })
    }
}

impl reqwest_publisher::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest_publisher::dns::Name) -> reqwest_publisher::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest_publisher::dns::Addrs)
        })
    }
}

/// The refusal in an error's source chain, if the error is a refused connection.
pub fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<PrivateAddress> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(p) = e.downcast_ref::<PrivateAddress>() {
            return Some(p.clone());
        }
        cur = e.source();
    }
    None
}

/// rustls' ring provider as the process default (reqwest is built without a provider of its
/// own, so that no native-tls/OpenSSL and no aws-lc is linked). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client for calls to publishers: https (rustls, ring) and http, the guarded
/// resolver, no redirects, `timeout` per request. `pool` keeps idle connections for the next
/// request (HTTP tools and the MCP transport; the guarded resolver checks each new one).
pub fn publisher_client(resolver: &GuardedResolver, timeout: Duration, pool: bool) -> Result<reqwest_publisher::Client, Finding> {
    install_crypto_provider();
    let mut b = reqwest_publisher::Client::builder()
        .dns_resolver(Arc::new(resolver.clone()))
        .redirect(reqwest_publisher::redirect::Policy::none())
        .timeout(timeout);
    if !pool {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().map_err(|e| Finding::new("upstream_client", e.to_string()))
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
    fn the_classifier_covers_every_non_public_family_in_v4_and_v6() {
        let not_public = [
            // loopback, unspecified, private, link-local, CGNAT, multicast, broadcast, reserved
            "127.255.0.9",
            "0.0.0.0",
            "10.255.255.255",
            "172.31.1.1",
            "192.168.0.1",
            "169.254.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            // v6: loopback, unspecified, unique-local, link-local, multicast, documentation
            "::1",
            "::",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::abcd",
            "febf::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            // IPv4-mapped v6 of private and loopback addresses
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.168.1.1",
            "::ffff:0.0.0.0",
            // NAT64 of an internal address
            "64:ff9b::a00:1",
        ];
        for a in not_public {
            assert!(!is_public(a.parse().unwrap()), "{a} must not be public");
        }
        for a in [
            "93.184.216.34",
            "::ffff:8.8.8.8",
            "2001:4860:4860::8888",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
    }

    #[test]
    fn v6_forms_embedding_a_private_v4_address_are_not_public() {
        for a in [
            // IPv4-compatible, IPv4-translated, IPv4-mapped and 6to4 forms of 127.0.0.1
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "::ffff:0:127.0.0.1",
            "::ffff:7f00:1",
            "2002:7f00:1::",
            "2002:7f00:1::1",
            // the same of private, link-local and unspecified addresses
            "::10.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101::1",
            "2002::",
            // Teredo, site-local
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} must not be public");
        }
        for a in ["2002:808:808::1", "::ffff:0:808:808", "2606:4700::1111"] {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
        for url in [
            "http://[::127.0.0.1]:8080/",
            "http://[::ffff:0:7f00:1]/",
            "http://[2002:7f00:1::]/x",
        ] {
            assert_eq!(check_literal(url, false).unwrap_err().code, "upstream_private_address", "{url}");
        }
    }

    #[test]
    fn usable_addrs_drop_non_public_ones_outside_test_mode() {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:0", "8.8.8.8:0", "[::1]:0", "[fd00::2]:0", "[2606:4700::1111]:0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let kept = usable_addrs(addrs.clone(), false);
        assert_eq!(kept, vec![addrs[1], addrs[4]]);
        assert_eq!(usable_addrs(addrs.clone(), true), addrs);
        assert!(usable_addrs(vec![addrs[0], addrs[2]], false).is_empty());
    }

    #[test]
    fn literals_are_checked_without_resolving() {
        assert_eq!(
            check_literal("http://127.0.0.1:9/mcp", false).unwrap_err().code,
            "upstream_private_address"
        );
        assert_eq!(
            check_literal("http://[::ffff:10.1.1.1]/", false).unwrap_err().code,
            "upstream_private_address"
        );
        assert!(check_literal("http://127.0.0.1:9/mcp", true).is_ok());
        // Names pass here: the resolver checks them when the connection is made.
        assert!(check_literal("https://tools.example.com/mcp", false).is_ok());
        assert!(check_literal("ftp://x.example", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_resolving_to_loopback_unless_in_test_mode() {
        let strict = GuardedResolver::new(false);
        let err = strict.lookup("localhost").await.unwrap_err();
        let p = refusal_in(err.as_ref()).expect("a refusal");
        assert_eq!(p.host, "localhost");
        assert!(err.to_string().starts_with("upstream_private_address"));
        assert!(strict.refused("http://LOCALHOST:8080/mcp").is_some());
        assert!(strict.refused("http://other.example/").is_none());
        let testing = GuardedResolver::new(true);
        assert!(!testing.lookup("localhost").await.unwrap().is_empty());
    }

    #[test]
    fn the_publisher_client_builds_for_https_with_rustls() {
        let client = publisher_client(&GuardedResolver::new(false), Duration::from_secs(5), true).unwrap();
        let req = client.get("https://tools.example.com/openapi.json").build().unwrap();
        assert_eq!(req.url().scheme(), "https");
        assert!(publisher_client(&GuardedResolver::new(true), Duration::from_secs(5), false).is_ok());
    }

    #[test]
    fn url_syntax() {
        assert!(parse_upstream("ftp://x.example").is_err());
        assert!(parse_upstream("https://u:p@x.example/").is_err());
        assert!(parse_upstream("not a url").is_err());
        assert_eq!(parse_upstream("https://[::1]:8443/mcp").unwrap(), ("::1".to_string(), 8443));
    }
}
