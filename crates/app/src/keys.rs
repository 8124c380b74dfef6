//! A short-lived cache of API-key authentications and of whom a key's requests bill. Every
//! gateway request (M2.2) and MCP call (M2.3) presents a key; without the cache each would cost
//! three database reads before any work. An entry is served as is for [`TTL`], then still served
//! while one request refreshes it in the background (so a busy key never waits on the database),
//! and never past [`MAX_AGE`]. A key revoked or a user disabled through this process is forgotten
//! at once (`forget_all`); through another replica it stops working within [`MAX_AGE`]. An
//! expired key is never served from the cache.

use opchub_store::accounts::{ApiKey, User};
use opchub_store::cache::SwrCache;
use std::sync::Arc;
use std::time::Duration;

/// Served without a database read for this long; then refreshed in the background on use.
pub const TTL: Duration = Duration::from_secs(2);
/// Never served older than this (a change through another replica is seen within it).
pub const MAX_AGE: Duration = Duration::from_secs(4);
/// Bounded: when full, the cache starts over (a burst of distinct keys cannot grow it).
const MAX_ENTRIES: usize = 10_000;

pub struct KeyCache {
    keys: Arc<SwrCache<String, (ApiKey, User)>>,
    subjects: Arc<SwrCache<String, String>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            keys: Arc::new(SwrCache::new(TTL, MAX_AGE, MAX_ENTRIES)),
            subjects: Arc::new(SwrCache::new(TTL, MAX_AGE, MAX_ENTRIES)),
        }
    }
}

impl KeyCache {
    /// After a key is revoked or a user disabled (or an OPC registered) through this process.
    pub fn forget_all(&self) {
        self.keys.clear();
        self.subjects.clear();
    }
}

fn not_expired((k, _): &(ApiKey, User), now_ms: i64) -> bool {
    k.expires_at.is_none_or(|e| e > now_ms)
}

/// Authenticates an API key by its hash (see the module notes); an expired key is never served
/// from the cache.
pub async fn authenticate(s: &crate::App, key_hash: &str) -> opchub_store::Result<Option<(ApiKey, User)>> {
    let store = s.store.clone();
    let now = opchub_store::now_ms();
    s.keys
        .keys
        .get_or_fetch(
            key_hash.to_string(),
            |k| not_expired(k, now),
            |h| async move { store.authenticate_api_key(&h).await },
        )
        .await
}

/// Whom a user's usage bills: its OPC, else the user itself (gateway, M2.2; skill calls, M2.3).
pub async fn billing_party(s: &crate::App, user_id: &str) -> opchub_store::Result<String> {
    let store = s.store.clone();
    let found = s
        .keys
        .subjects
        .get_or_fetch(
            user_id.to_string(),
            |_| true,
            |u| async move {
                let opc = store.opc_of_founder(&u).await?;
                opchub_store::Result::Ok(Some(opc.map(|o| o.id).unwrap_or(u)))
            },
        )
        .await?;
    Ok(found.unwrap_or_else(|| user_id.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(expires_at: Option<i64>) -> ApiKey {
        ApiKey {
            id: "k".into(),
            user_id: "u".into(),
            name: "n".into(),
            prefix: "opk_x".into(),
            scopes: vec![],
            expires_at,
            revoked_at: None,
            last_used_at: None,
            created_at: 0,
        }
    }

    fn user() -> User {
        User {
            id: "u".into(),
            username: "u".into(),
            display_name: "u".into(),
            role: opchub_domain::Role::OpcFounder,
            password_hash: String::new(),
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn expired_keys_are_not_usable_and_forget_all_empties_both_caches() {
        use opchub_store::cache::Cached;
        assert!(not_expired(&(key(Some(1_000)), user()), 999));
        assert!(!not_expired(&(key(Some(1_000)), user()), 1_000), "an expired key is not served");
        assert!(not_expired(&(key(None), user()), i64::MAX));
        let c = KeyCache::default();
        c.keys.put("h".into(), (key(None), user()));
        c.subjects.put("u".into(), "opc-1".into());
        assert!(matches!(c.keys.get("h"), Cached::Fresh(_)));
        assert_eq!(c.subjects.get("u"), Cached::Fresh("opc-1".to_string()));
        c.forget_all();
        assert!(matches!(c.keys.get("h"), Cached::Miss));
        assert_eq!(c.subjects.get("u"), Cached::Miss);
    }
}
