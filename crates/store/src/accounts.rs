//! Accounts: users with one role each, browser sessions and API keys. Secrets never reach
//! this module in clear: it stores and looks up hashes computed by the web layer.

use crate::audit::{record_after, Actor};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use opchub_domain::Role;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
}

fn user_from(r: &AnyRow) -> Result<User> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: role
            .parse()
            .map_err(|e: opchub_domain::UnknownRole| StoreError::Catalog(e.to_string()))?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

const USER_COLS: &str = "id, username, display_name, role, password_hash, disabled, created_at";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

fn key_from(r: &AnyRow) -> Result<ApiKey> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
        created_at: r.try_get("created_at")?,
    })
}

const KEY_COLS: &str = "id, user_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at";

pub struct NewApiKey<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a [String],
    pub expires_at: Option<i64>,
}

impl Store {
    pub async fn create_user(&self, actor: &Actor, u: NewUser<'_>) -> Result<User> {
        let mut tx = self.begin().await?;
        let user = insert_user(&mut tx, actor, u).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn users(&self, role: Option<Role>) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE ($1 IS NULL OR role = $1) ORDER BY role, username"
        ))
        .bind(role.map(|r| r.as_str().to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn set_user_disabled(&self, actor: &Actor, id: &str, disabled: bool) -> Result<User> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled as i64)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let after = serde_json::json!({ "id": id, "disabled": disabled });
        record_after(
            &mut tx,
            actor,
            if disabled { "user.disable" } else { "user.enable" },
            "user",
            id,
            after,
            format!("disabled={disabled}"),
        )
        .await?;
        tx.commit().await?;
        self.user(id).await
    }

    /// Sets the user's password hash and ends every other session of the user (all of them
    /// when `keep_session` is None), in one transaction, audited (without the hash).
    pub async fn set_password(&self, actor: &Actor, user_id: &str, password_hash: &str, keep_session: Option<&str>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let after = serde_json::json!({ "id": user_id, "sessions_ended": ended });
        record_after(
            &mut tx,
            actor,
            "user.password_change",
            "user",
            user_id,
            after,
            format!("sessions_ended={ended}"),
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    // ---- sessions ----

    pub async fn create_session(&self, user_id: &str, token_hash: &str, csrf: &str, ttl_ms: i64) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The live session's user and CSRF token; expired sessions and disabled users yield None.
    pub async fn session(&self, token_hash: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.role, u.password_hash, u.disabled, u.created_at, s.csrf_token \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((user_from(&r)?, r.try_get("csrf_token")?))),
            None => Ok(None),
        }
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at < $2")
            .bind(token_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- API keys ----

    pub async fn create_api_key(&self, actor: &Actor, k: NewApiKey<'_>) -> Result<ApiKey> {
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(k.user_id)
        .bind(k.name)
        .bind(k.prefix)
        .bind(k.key_hash)
        .bind(k.scopes.join(" "))
        .bind(k.expires_at)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({ "id": id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes, "expires_at": k.expires_at });
        record_after(
            &mut tx,
            actor,
            "api_key.create",
            "api_key",
            &id,
            after,
            format!("{} ({})", k.name, k.prefix),
        )
        .await?;
        tx.commit().await?;
        self.api_key(&id).await
    }

    pub async fn api_key(&self, id: &str) -> Result<ApiKey> {
        let row = sqlx::query(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from).collect()
    }

    /// A usable key (not revoked, not expired, owner not disabled) and its owner.
    pub async fn authenticate_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(key_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let key = key_from(&row)?;
        let user = self.user(&key.user_id).await?;
        if user.disabled {
            return Ok(None);
        }
        // `last_used_at` is kept to the minute: a write per request would contend with the
        // ledger's writes for nothing.
        if key.last_used_at.is_none_or(|t| now - t > 60_000) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&key.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some((key, user)))
    }

    /// Revokes one of `owner_id`'s keys. Someone else's key is NotFound, not Forbidden:
    /// its existence is not revealed.
    pub async fn revoke_api_key(&self, actor: &Actor, owner_id: &str, key_id: &str) -> Result<ApiKey> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .bind(owner_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_keys WHERE id = $1 AND user_id = $2")
                .bind(key_id)
                .bind(owner_id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(if exists.is_some() {
                StoreError::Conflict("already_revoked")
            } else {
                StoreError::NotFound
            });
        }
        let after = serde_json::json!({ "id": key_id, "revoked": true });
        record_after(&mut tx, actor, "api_key.revoke", "api_key", key_id, after, "revoked".into()).await?;
        tx.commit().await?;
        self.api_key(key_id).await
    }
}

pub(crate) async fn insert_user(tx: &mut crate::Tx, actor: &Actor, u: NewUser<'_>) -> Result<User> {
    let id = new_id();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO users (id, username, display_name, role, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(&id)
    .bind(u.username)
    .bind(u.display_name)
    .bind(u.role.as_str())
    .bind(u.password_hash)
    .bind(now)
    .execute(&mut **tx)
    .await;
    if let Err(e) = res {
        if is_unique_violation(&e, "username") {
            return Err(StoreError::Conflict("username_taken"));
        }
        return Err(e.into());
    }
    let after = serde_json::json!({ "id": id, "username": u.username, "role": u.role.as_str() });
    record_after(
        tx,
        actor,
        "user.create",
        "user",
        &id,
        after,
        format!("{} ({})", u.username, u.role.as_str()),
    )
    .await?;
    Ok(User {
        id,
        username: u.username.to_string(),
        display_name: u.display_name.to_string(),
        role: u.role,
        password_hash: u.password_hash.to_string(),
        disabled: false,
        created_at: now,
    })
}

/// Most client fingerprints kept per API key: a key used from everywhere is not a tie to anyone
/// in particular, and the table stays bounded.
pub const MAX_CLIENTS_PER_KEY: i64 = 16;

impl Store {
    /// Notes that `fingerprint` used API key `key_id` at `now` (issue 18 item 1): a new client
    /// is kept while the key has fewer than [`MAX_CLIENTS_PER_KEY`], a known one has its last
    /// sighting moved. One statement (no read first), safe across replicas.
    pub async fn record_key_client(&self, key_id: &str, fingerprint: &str, now: i64) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO api_key_clients (api_key_id, fingerprint, first_seen, last_seen) \
             SELECT $1, $2, $3, $3 WHERE (SELECT COUNT(*) FROM api_key_clients WHERE api_key_id = $1) < {MAX_CLIENTS_PER_KEY} \
             ON CONFLICT (api_key_id, fingerprint) DO UPDATE SET last_seen = excluded.last_seen"
        ))
        .bind(key_id)
        .bind(fingerprint)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
