//! A short-lived cache of API-key authentications and of whom a key's requests bill. Every
//! gateway request (M2.2) and MCP call (M2.3) presents a key; without the cache each would cost
//! three database reads before any work. An entry lives [`TTL`]: a key revoked or a user disabled
//! through this process is forgotten at once (`forget_all`); through another replica it stops
//! working within [`TTL`]. An expired key is never served from the cache.

use opchub_store::accounts::{ApiKey, User};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(2);
/// Bounded: when full, the cache starts over (a burst of distinct keys cannot grow it).
const MAX_ENTRIES: usize = 10_000;

type Entry<T> = (Instant, T);

#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<String, Entry<(ApiKey, User)>>>,
    subjects: Mutex<HashMap<String, Entry<String>>>,
}

fn get<T: Clone>(m: &Mutex<HashMap<String, Entry<T>>>, k: &str) -> Option<T> {
    m.lock().ok()?.get(k).filter(|(at, _)| at.elapsed() < TTL).map(|(_, v)| v.clone())
}

fn put<T>(m: &Mutex<HashMap<String, Entry<T>>>, k: &str, v: T) {
    if let Ok(mut m) = m.lock() {
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(k.to_string(), (Instant::now(), v));
    }
}

impl KeyCache {
    /// The key with this hash and its owner, if authenticated less than [`TTL`] ago and not expired since.
    pub fn key(&self, key_hash: &str, now_ms: i64) -> Option<(ApiKey, User)> {
        get(&self.keys, key_hash).filter(|(k, _)| k.expires_at.is_none_or(|e| e > now_ms))
    }

    pub fn put_key(&self, key_hash: &str, key: ApiKey, user: User) {
        put(&self.keys, key_hash, (key, user));
    }

    /// Whom a user's gateway requests bill (its OPC, else the user).
    pub fn subject(&self, user_id: &str) -> Option<String> {
        get(&self.subjects, user_id)
    }

    pub fn put_subject(&self, user_id: &str, subject: String) {
        put(&self.subjects, user_id, subject);
    }

    /// After a key is revoked or a user disabled (or an OPC registered) through this process.
    pub fn forget_all(&self) {
        if let Ok(mut m) = self.keys.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.subjects.lock() {
            m.clear();
        }
    }
}

/// Whom a user's usage bills: its OPC, else the user itself (gateway, M2.2; skill calls, M2.3).
pub async fn billing_party(s: &crate::AppState, user_id: &str) -> opchub_store::Result<String> {
    if let Some(subject) = s.keys.subject(user_id) {
        return Ok(subject);
    }
    let subject = s
        .store
        .opc_of_founder(user_id)
        .await?
        .map(|o| o.id)
        .unwrap_or_else(|| user_id.to_string());
    s.keys.put_subject(user_id, subject.clone());
    Ok(subject)
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
        assert!(c.key("h", 999).is_some());
        assert!(c.key("h", 1_000).is_none(), "an expired key is not served");
        assert!(c.key("other", 0).is_none());
        c.put_subject("u", "opc-1".into());
        assert_eq!(c.subject("u").as_deref(), Some("opc-1"));
        c.forget_all();
        assert!(c.key("h", 0).is_none());
        assert!(c.subject("u").is_none());
    }
}
