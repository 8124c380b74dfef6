//! Stale-while-revalidate caches for what every request reads (API keys, key limits, channels,
//! prices). An entry younger than `ttl` is served as is. Between `ttl` and `max_age` it is
//! still served, and exactly one caller is told to refresh it in the background; nobody waits
//! on the database for it. Older than `max_age` (no traffic refreshed it), it is fetched again
//! on the request. So a busy key never pays a database round trip on its request path, and a
//! change made through another replica is seen within `max_age`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached<V> {
    /// Serve it.
    Fresh(V),
    /// Serve it, and refresh the entry in the background (this caller was chosen to).
    Refresh(V),
    /// Fetch it on the request.
    Miss,
}

struct Slot<V> {
    at: Instant,
    value: V,
    /// When a caller was told to refresh; another is told only if that one did not put a
    /// value within `ttl` (it failed or was dropped).
    refreshing: Option<Instant>,
}

pub struct SwrCache<K, V> {
    ttl: Duration,
    max_age: Duration,
    max_entries: usize,
    map: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash, V: Clone> SwrCache<K, V> {
    /// Bounded: when `max_entries` are held, the cache starts over (a burst of distinct keys
    /// cannot grow it).
    pub fn new(ttl: Duration, max_age: Duration, max_entries: usize) -> Self {
        SwrCache {
            ttl,
            max_age: max_age.max(ttl),
            max_entries,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get<Q>(&self, k: &Q) -> Cached<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_at(k, Instant::now())
    }

    fn get_at<Q>(&self, k: &Q, now: Instant) -> Cached<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Ok(mut m) = self.map.lock() else { return Cached::Miss };
        let Some(s) = m.get_mut(k) else { return Cached::Miss };
        let age = now.saturating_duration_since(s.at);
        if age < self.ttl {
            return Cached::Fresh(s.value.clone());
        }
        if age >= self.max_age {
            return Cached::Miss;
        }
        if s.refreshing.is_some_and(|r| now.saturating_duration_since(r) < self.ttl) {
            return Cached::Fresh(s.value.clone());
        }
        s.refreshing = Some(now);
        Cached::Refresh(s.value.clone())
    }

    pub fn put(&self, k: K, v: V) {
        self.put_at(k, v, Instant::now());
    }

    fn put_at(&self, k: K, v: V, now: Instant) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= self.max_entries {
                m.clear();
            }
            m.insert(
                k,
                Slot {
                    at: now,
                    value: v,
                    refreshing: None,
                },
            );
        }
    }

    pub fn remove<Q>(&self, k: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut m) = self.map.lock() {
            m.remove(k);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
}

impl<K, V> SwrCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key`, if `usable`: fresh from the cache; stale from the cache while `fetch`
    /// refreshes it in the background; else fetched now. A fetch that finds nothing (`None`:
    /// gone, revoked) forgets the entry; a failed background refresh leaves it to be retried.
    pub async fn get_or_fetch<E, Fut>(
        self: &Arc<Self>,
        key: K,
        usable: impl Fn(&V) -> bool,
        fetch: impl FnOnce(K) -> Fut,
    ) -> Result<Option<V>, E>
    where
        E: std::fmt::Display + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<V>, E>> + Send + 'static,
    {
        match self.get(&key) {
            Cached::Fresh(v) if usable(&v) => Ok(Some(v)),
            Cached::Refresh(v) if usable(&v) => {
                let me = self.clone();
                let refresh = fetch(key.clone());
                tokio::spawn(async move {
                    match refresh.await {
                        Ok(Some(v)) => me.put(key, v),
                        Ok(None) => me.remove(&key),
                        Err(e) => tracing::warn!(error = %e, "refreshing a cached value failed"),
                    }
                });
                Ok(Some(v))
            }
            _ => {
                let found = fetch(key.clone()).await?;
                match &found {
                    Some(v) => self.put(key, v.clone()),
                    None => self.remove(&key),
                }
                Ok(found)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn fresh_then_one_refresher_then_miss() {
        let c: SwrCache<String, i32> = SwrCache::new(2 * S, 4 * S, 10);
        let t0 = Instant::now();
        assert_eq!(c.get_at("k", t0), Cached::Miss);
        c.put_at("k".into(), 1, t0);
        assert_eq!(c.get_at("k", t0 + S), Cached::Fresh(1));
        // Stale: the first caller refreshes, the others are served without waiting.
        assert_eq!(c.get_at("k", t0 + 2 * S), Cached::Refresh(1));
        assert_eq!(c.get_at("k", t0 + 2 * S), Cached::Fresh(1));
        // The refresher never came back: after another ttl someone else is asked.
        assert_eq!(c.get_at("k", t0 + 3 * S), Cached::Fresh(1));
        assert_eq!(c.get_at("k", t0 + 4 * S - Duration::from_millis(1)), Cached::Fresh(1));
        // Too old to serve at all.
        assert_eq!(c.get_at("k", t0 + 4 * S), Cached::Miss);
        // A refresh puts a new value and starts the clock again.
        c.put_at("k".into(), 2, t0 + 4 * S);
        assert_eq!(c.get_at("k", t0 + 5 * S), Cached::Fresh(2));
    }

    #[test]
    fn a_failed_refresh_lets_another_caller_try_after_ttl() {
        let c: SwrCache<String, i32> = SwrCache::new(2 * S, 10 * S, 10);
        let t0 = Instant::now();
        c.put_at("k".into(), 1, t0);
        assert_eq!(c.get_at("k", t0 + 2 * S), Cached::Refresh(1));
        assert_eq!(c.get_at("k", t0 + 3 * S), Cached::Fresh(1));
        assert_eq!(c.get_at("k", t0 + 4 * S), Cached::Refresh(1));
    }

    /// Fetches `value` and counts the calls.
    fn fetcher(
        calls: &Arc<std::sync::atomic::AtomicUsize>,
        value: Option<i32>,
    ) -> impl FnOnce(String) -> std::future::Ready<Result<Option<i32>, String>> {
        let calls = calls.clone();
        move |_| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(Ok(value))
        }
    }

    #[tokio::test]
    async fn get_or_fetch_serves_fresh_refreshes_stale_and_forgets_what_is_gone() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let c: Arc<SwrCache<String, i32>> = Arc::new(SwrCache::new(Duration::from_millis(50), 10 * S, 10));
        let calls = Arc::new(AtomicUsize::new(0));
        // A miss fetches on the request.
        assert_eq!(c.get_or_fetch("k".into(), |_| true, fetcher(&calls, Some(1))).await, Ok(Some(1)));
        // Fresh: no fetch.
        assert_eq!(c.get_or_fetch("k".into(), |_| true, fetcher(&calls, Some(9))).await, Ok(Some(1)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Not usable (e.g. expired): fetched now, whatever the cache holds.
        assert_eq!(c.get_or_fetch("k".into(), |v| *v != 1, fetcher(&calls, Some(2))).await, Ok(Some(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Stale: the old value is served and the new one arrives in the background.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(c.get_or_fetch("k".into(), |_| true, fetcher(&calls, Some(3))).await, Ok(Some(2)));
        for _ in 0..100 {
            if matches!(c.get("k"), Cached::Fresh(3)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(c.get("k"), Cached::Fresh(3));
        // Stale and gone (a revoked key): served this once, then forgotten.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(c.get_or_fetch("k".into(), |_| true, fetcher(&calls, None)).await, Ok(Some(3)));
        for _ in 0..100 {
            if c.get("k") == Cached::Miss {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(c.get("k"), Cached::Miss);
        assert_eq!(c.get_or_fetch("k".into(), |_| true, fetcher(&calls, None)).await, Ok(None));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn removed_cleared_and_bounded() {
        let c: SwrCache<String, i32> = SwrCache::new(2 * S, 4 * S, 2);
        c.put("a".into(), 1);
        c.put("b".into(), 2);
        c.remove("a");
        assert_eq!(c.get("a"), Cached::Miss);
        assert_eq!(c.get("b"), Cached::Fresh(2));
        c.put("c".into(), 3);
        c.put("d".into(), 4);
        assert_eq!(c.get("b"), Cached::Miss, "full: started over");
        assert_eq!(c.get("d"), Cached::Fresh(4));
        c.clear();
        assert_eq!(c.get("d"), Cached::Miss);
    }
}
