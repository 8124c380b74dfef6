//! A short-lived cache of API-key authentications and of whom a key's requests bill. Every
//! gateway request (M2.2) and MCP call (M2.3) presents a key; without the cache each would cost
//! three database reads before any work. An entry is served as is for [`TTL`], then still served
//! while one request refreshes it in the background (so a busy key never waits on the database),
//! and never past [`MAX_AGE`]. A key revoked or a user disabled through this process is forgotten
//! at once (`forget_all`); through another replica it stops working within [`MAX_AGE`]. An
//! expired key is never served from the cache.

use opchub_store::accounts::{ApiKey, User};
use opchub_store::cache::{Cached, SwrCache};
use std::time::Duration;

/// Served without a database read for this long; then refreshed in the background on use.
pub const TTL: Duration = Duration::from_secs(2);
/// Never served older than this (a change through another replica is seen within it).
pub const MAX_AGE: Duration = Duration::from_secs(4);
/// Bounded: when full, the cache starts over (a burst of distinct keys cannot grow it).
const MAX_ENTRIES: usize = 10_000;

pub struct KeyCache {
    keys: SwrCache<String, (ApiKey, User)>,
    subjects: SwrCache<String, String>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            keys: SwrCache::new(TTL, MAX_AGE, MAX_ENTRIES),
            subjects: SwrCache::new(TTL, MAX_AGE, MAX_ENTRIES),
        }
    }
}

impl KeyCache {
    /// The key with this hash and its owner, if authenticated recently and not expired since.
    pub fn key(&self, key_hash: &str, now_ms: i64) -> Cached<(ApiKey, User)> {
        match self.keys.get(key_hash) {
            Cached::Fresh(v) if not_expired(&v, now_ms) => Cached::Fresh(v),
            Cached::Refresh(v) if not_expired(&v, now_ms) => Cached::Refresh(v),
            _ => Cached::Miss,
        }
    }

    pub fn put_key(&self, key_hash: &str, key: ApiKey, user: User) {
        self.keys.put(key_hash.to_string(), (key, user));
    }

    /// A refresh found the key revoked, expired or its user disabled.
    pub fn forget_key(&self, key_hash: &str) {
        self.keys.remove(key_hash);
    }

    /// Whom a user's gateway requests bill (its OPC, else the user).
    pub fn subject(&self, user_id: &str) -> Cached<String> {
        self.subjects.get(user_id)
    }

    pub fn put_subject(&self, user_id: &str, subject: String) {
        self.subjects.put(user_id.to_string(), subject);
    }

    /// After a key is revoked or a user disabled (or an OPC registered) through this process.
    pub fn forget_all(&self) {
        self.keys.clear();
        self.subjects.clear();
    }
}

fn not_expired((k, _): &(ApiKey, User), now_ms: i64) -> bool {
    k.expires_at.is_none_or(|e| e > now_ms)
}

/// Authenticates an API key by its hash: from the cache when it can, from the database on a
/// miss; a stale entry is served and refreshed in the background.
pub async fn authenticate(s: &crate::AppState, key_hash: &str) -> opchub_store::Result<Option<(ApiKey, User)>> {
    match s.keys.key(key_hash, opchub_store::now_ms()) {
        Cached::Fresh(hit) => Ok(Some(hit)),
        Cached::Refresh(hit) => {
            let s = s.clone();
            let h = key_hash.to_string();
            tokio::spawn(async move {
                match s.store.authenticate_api_key(&h).await {
                    Ok(Some((k, u))) => s.keys.put_key(&h, k, u),
                    Ok(None) => s.keys.forget_key(&h),
                    // Served from the cache until MAX_AGE; the next caller retries.
                    Err(e) => tracing::warn!(error = %e, "refreshing a cached API key failed"),
                }
            });
            Ok(Some(hit))
        }
        Cached::Miss => {
            let found = s.store.authenticate_api_key(key_hash).await?;
            if let Some((k, u)) = &found {
                s.keys.put_key(key_hash, k.clone(), u.clone());
            }
            Ok(found)
        }
    }
}

/// Whom a user's usage bills: its OPC, else the user itself (gateway, M2.2; skill calls, M2.3).
pub async fn billing_party(s: &crate::AppState, user_id: &str) -> opchub_store::Result<String> {
    async fn fetch(s: &crate::AppState, user_id: &str) -> opchub_store::Result<String> {
        let subject = s
            .store
            .opc_of_founder(user_id)
            .await?
            .map(|o| o.id)
            .unwrap_or_else(|| user_id.to_string());
        s.keys.put_subject(user_id, subject.clone());
        Ok(subject)
    }
    match s.keys.subject(user_id) {
        Cached::Fresh(subject) => Ok(subject),
        Cached::Refresh(subject) => {
            let s = s.clone();
            let u = user_id.to_string();
            tokio::spawn(async move {
                if let Err(e) = fetch(&s, &u).await {
                    tracing::warn!(error = %e, "refreshing a cached billing party failed");
                }
            });
            Ok(subject)
        }
        Cached::Miss => fetch(s, user_id).await,
    }
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
    fn entries_are_served_until_forgotten_and_never_past_expiry() {
        let c = KeyCache::default();
        c.put_key("h", key(Some(1_000)), user());
        assert!(matches!(c.key("h", 999), Cached::Fresh(_)));
        assert!(matches!(c.key("h", 1_000), Cached::Miss), "an expired key is not served");
        assert!(matches!(c.key("other", 0), Cached::Miss));
        c.put_subject("u", "opc-1".into());
        assert_eq!(c.subject("u"), Cached::Fresh("opc-1".to_string()));
        c.forget_key("h");
        assert!(matches!(c.key("h", 0), Cached::Miss));
        c.put_key("h", key(None), user());
        c.forget_all();
        assert!(matches!(c.key("h", 0), Cached::Miss));
        assert_eq!(c.subject("u"), Cached::Miss);
    }
}
