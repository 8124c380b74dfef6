//! Failed sign-ins (issue 20): counted per account and per client address; past a few free
//! failures every further one makes the next attempt wait, twice as long each time (up to a
//! cap). While a key waits, no password is checked for it — the right one is refused too — so
//! guessing costs time however fast it is sent. The counts live in this process's memory: a
//! restart forgets them, and replicas count separately (each bounds guessing on its own).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures of one account before the backoff starts.
    pub account_free: u32,
    /// Failures from one client address (all accounts) before the backoff starts; higher, as
    /// people behind one NAT share an address.
    pub address_free: u32,
    /// The first wait; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A key without failures for this long starts again from zero.
    pub forget_after: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            account_free: 5,
            address_free: 20,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// At most this many keys are remembered; past it, forgotten keys are dropped first.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    keys: Mutex<HashMap<String, Entry>>,
}

/// The keys of one attempt: the account (as typed, case-folded) and the client's address.
pub fn keys(username: &str, addr: Option<IpAddr>) -> Vec<(String, bool)> {
    let mut k = vec![(format!("user:{}", username.trim().to_lowercase()), true)];
    if let Some(a) = addr {
        k.push((format!("addr:{a}"), false));
    }
    k
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        LoginThrottle {
            config,
            keys: Mutex::default(),
        }
    }

    /// How long the attempt with these keys must still wait (`None`: it may go ahead).
    pub fn wait(&self, keys: &[(String, bool)], now: Instant) -> Option<Duration> {
        let map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|(k, _)| map.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Records a failed attempt (wrong password or unknown account).
    pub fn failed(&self, keys: &[(String, bool)], now: Instant) {
        let c = self.config;
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| now.duration_since(e.last) < c.forget_after || e.blocked_until.is_some_and(|u| u > now));
            if map.len() >= MAX_KEYS {
                // Flooded with distinct keys: start over rather than grow without bound.
                map.clear();
            }
        }
        for (k, account) in keys {
            let free = if *account { c.account_free } else { c.address_free };
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                blocked_until: None,
                last: now,
            });
            if now.duration_since(e.last) >= c.forget_after {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if e.failures >= free {
                let doublings = (e.failures - free).min(30);
                let wait = c.base.saturating_mul(1u32 << doublings).min(c.max);
                e.blocked_until = Some(now + wait);
            }
        }
    }

    /// A successful sign-in clears the account's failures (not the address's: one's own
    /// account must not reset the count of guesses at others).
    pub fn succeeded(&self, keys: &[(String, bool)]) {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for (k, account) in keys {
            if *account {
                map.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            account_free: 3,
            address_free: 5,
            ..Default::default()
        })
    }

    #[test]
    fn the_backoff_starts_after_the_free_failures_and_doubles() {
        let t = throttle();
        let k = keys("Alice ", None);
        let t0 = Instant::now();
        for i in 0..2 {
            t.failed(&k, t0 + Duration::from_secs(i));
            assert_eq!(t.wait(&k, t0 + Duration::from_secs(i)), None);
        }
        t.failed(&k, t0 + Duration::from_secs(2));
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(2)), Some(Duration::from_secs(1)));
        assert_eq!(
            t.wait(&keys("alice", None), t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(3)), None);
        t.failed(&k, t0 + Duration::from_secs(3));
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(3)), Some(Duration::from_secs(2)));
        t.failed(&k, t0 + Duration::from_secs(5));
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(5)), Some(Duration::from_secs(4)));
        for i in 0..40 {
            t.failed(&k, t0 + Duration::from_secs(10 + i));
        }
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(49)), Some(Duration::from_secs(15 * 60)));
        t.succeeded(&k);
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(49)), None);
    }

    #[test]
    fn an_address_is_throttled_across_accounts_and_a_success_does_not_clear_it() {
        let t = throttle();
        let addr: IpAddr = "203.0.113.7".parse().unwrap();
        let now = Instant::now();
        for i in 0..5 {
            t.failed(&keys(&format!("user{i}"), Some(addr)), now);
        }
        assert!(t.wait(&keys("someone-else", Some(addr)), now).is_some());
        assert!(t.wait(&keys("someone-else", Some("203.0.113.8".parse().unwrap())), now).is_none());
        t.succeeded(&keys("mine", Some(addr)));
        assert!(t.wait(&keys("mine", Some(addr)), now).is_some());
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_hour() {
        let t = throttle();
        let k = keys("bob", None);
        let now = Instant::now();
        t.failed(&k, now);
        t.failed(&k, now);
        t.failed(&k, now + Duration::from_secs(3601));
        assert_eq!(t.wait(&k, now + Duration::from_secs(3601)), None);
    }
}
