//! Per-minute rate limiting in memory: a token bucket per key (a ledger source, an API key),
//! refilled at its per-minute rate; a batch takes as many tokens as it has items. Used by the
//! ledger ingestion, the gateway and the Skill Store's calls; no I/O.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes `n` tokens from `key`'s bucket (capacity = one minute's worth). On refusal,
    /// returns the whole seconds to wait.
    pub fn check(&self, key: &str, per_minute: i64, n: u32) -> Result<(), u64> {
        let capacity = per_minute.max(1) as f64;
        let rate = capacity / 60.0;
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else { return Ok(()) };
        let (tokens, last) = map.entry(key.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
        *last = now;
        let need = n as f64;
        if *tokens >= need {
            *tokens -= need;
            Ok(())
        } else {
            Err(((need - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_beyond_its_minute_and_names_the_wait() {
        let r = RateLimiter::default();
        assert!(r.check("gpu", 120, 100).is_ok());
        assert!(r.check("gpu", 120, 20).is_ok());
        let wait = r.check("gpu", 120, 60).unwrap_err();
        assert!((29..=31).contains(&wait), "{wait}");
        assert!(r.check("other", 120, 100).is_ok(), "buckets are per source");
    }
}
