//! Who is behind an API key (issue 18 item 1, usage ties): a bounded sample of each key's
//! clients, kept as a fingerprint of the client network and user agent. Two parties whose keys
//! are used from the same client are tied for the integrity scan's related-party clusters (a
//! value shared by many parties, a community's NAT or a cloud host, is ignored there). The
//! fingerprint is a hash: the platform keeps no client address.
//!
//! Off the request's path: a request costs one in-memory lookup; only a (key, client) pair this
//! process has not seen yet is written, in the background, and the store keeps at most
//! [`opchub_store::accounts::MAX_CLIENTS_PER_KEY`] clients per key.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;

/// Distinct (key, client) pairs remembered before the memory starts over.
const MAX_SEEN: usize = 100_000;
/// The longest user agent read (the rest says nothing about who calls).
const MAX_USER_AGENT: usize = 256;

/// What a fingerprint is made of: the client's network (an IPv4 address, an IPv6 /64 — one
/// household or office) and its user agent.
pub fn fingerprint(ip: IpAddr, user_agent: &str) -> String {
    let net = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    };
    let ua: String = user_agent.trim().chars().take(MAX_USER_AGENT).collect();
    crate::crypto::sha256_hex(&format!("client\n{net}\n{ua}"))
}

/// The client a request comes from: the peer, or — when the peer is this host (a reverse proxy
/// in front of the platform) — the first address of `X-Forwarded-For`. `None` when only this
/// host is known (a local tool): that ties nobody to anybody.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
    let peer = peer?;
    let ip = if peer.is_loopback() {
        forwarded_for?.split(',').next()?.trim().parse().ok()?
    } else {
        peer
    };
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The (key, client) pairs this process has written (see the module notes).
#[derive(Default)]
pub struct ClientSampler {
    seen: Mutex<HashSet<u64>>,
}

impl ClientSampler {
    /// Notes that `key_id` was used from `ip` with `user_agent`; writes it when new.
    pub fn note(&self, app: &crate::App, key_id: &str, ip: IpAddr, user_agent: &str) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (key_id, ip, user_agent).hash(&mut h);
        let pair = h.finish();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.insert(pair) {
                return;
            }
            if seen.len() > MAX_SEEN {
                seen.clear();
                seen.insert(pair);
            }
        }
        let (store, key, fp) = (app.store.clone(), key_id.to_string(), fingerprint(ip, user_agent));
        tokio::spawn(async move {
            if let Err(e) = store.record_key_client(&key, &fp, opchub_store::now_ms()).await {
                tracing::warn!(error = %e, "client of an API key not recorded");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_its_network_and_user_agent() {
        let a: IpAddr = "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "203.0.113.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(fingerprint(a, "agent/1"), fingerprint(a, " agent/1 "));
        assert_ne!(fingerprint(a, "agent/1"), fingerprint(b, "agent/1"));
        assert_ne!(fingerprint(a, "agent/1"), fingerprint(a, "agent/2"));
        // One IPv6 /64 is one client network; the IPv4-mapped form is the IPv4 address.
        let x: IpAddr = "2001:db8:1:2::10".parse().unwrap_or(a);
        let y: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap_or(a);
        assert_eq!(fingerprint(x, "u"), fingerprint(y, "u"));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap_or(b);
        assert_eq!(fingerprint(mapped, "u"), fingerprint(a, "u"));
    }

    #[test]
    fn only_a_real_client_address_is_read() {
        let local: IpAddr = IpAddr::from([127, 0, 0, 1]);
        let outside: IpAddr = IpAddr::from([198, 51, 100, 4]);
        assert_eq!(
            client_ip(Some(outside), Some("203.0.113.7")),
            Some(outside),
            "only a local proxy is believed"
        );
        assert_eq!(
            client_ip(Some(local), Some("203.0.113.7, 10.0.0.1")),
            Some(IpAddr::from([203, 0, 113, 7]))
        );
        assert_eq!(client_ip(Some(local), None), None, "a local tool ties nobody");
        assert_eq!(client_ip(Some(local), Some("127.0.0.1")), None);
        assert_eq!(client_ip(Some(local), Some("not an address")), None);
        assert_eq!(client_ip(None, Some("203.0.113.7")), None);
    }
}
