//! Accounts: who I am, users (created and disabled by the platform operator), API keys (shown
//! once, stored as SHA-256, scoped, expiring, revocable) and browser sessions. Every write that
//! changes what a key may do or whom it bills forgets the key cache itself ([`crate::keys`]),
//! so no caller has to remember it.

use crate::error::{AppError, AppResult};
use crate::{crypto, throttle};
use crate::{App, Principal, Via};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_store::accounts::{ApiKey, NewApiKey, NewUser, User};
use opchub_store::registry::{Community, Enterprise, Opc};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Instant;
use utoipa::ToSchema;

crate::module_errors! {
    /// What signing in and managing accounts refuses.
    pub enum AccountError {
        /// An administrator may not disable their own account.
        CannotDisableSelf => (Conflict, "cannot_disable_self"),
        /// Too many failed sign-ins from this address or for this name.
        TooManyAttempts => (RateLimited, "too_many_attempts"),
        /// A ledger source key that is unknown, revoked or wrong.
        InvalidSourceKey => (Unauthenticated, "invalid_source_key"),
        /// An API key that is unknown, revoked or wrong.
        InvalidApiKey => (Unauthenticated, "invalid_api_key"),
    }
}

/// API key scopes: `read` allows GET; `write` allows everything the role allows.
pub const SCOPES: [&str; 2] = ["read", "write"];
/// How long a browser session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

// ---------------------------------------------------------------- me

#[derive(serde::Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub opc: Option<Opc>,
    pub enterprise: Option<Enterprise>,
    pub communities: Vec<Community>,
}

/// The caller's account with the OPC, enterprise or communities it runs.
pub async fn me(app: &App, p: &Principal) -> AppResult<Me> {
    let opc = app.store.opc_of_founder(&p.user.id).await?;
    let enterprise = app.store.enterprise_of_owner(&p.user.id).await?;
    let communities = if p.role() == Role::CommunityOperator {
        app.store.communities(None, Some(&p.user.id)).await?
    } else {
        vec![]
    };
    Ok(Me {
        user: p.user.clone(),
        opc,
        enterprise,
        communities,
    })
}

// ---------------------------------------------------------------- API keys

#[derive(Deserialize, ToSchema)]
pub struct NewKeyRequest {
    pub name: Option<String>,
    /// `read` and/or `write`; default `["read", "write"]`.
    pub scopes: Option<Vec<String>>,
    /// Days until the key expires (1–730); omit for no expiry.
    pub expires_in_days: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// The secret, shown this once. Only its SHA-256 is stored.
    pub secret: String,
}

/// The caller's API keys (never their secrets).
pub async fn keys_of(app: &App, p: &Principal) -> AppResult<Vec<ApiKey>> {
    Ok(app.store.api_keys_of(&p.user.id).await?)
}

pub async fn create_key(app: &App, p: &Principal, r: &NewKeyRequest) -> AppResult<CreatedKey> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 1, 64);
    let mut scopes = r.scopes.clone().unwrap_or_else(|| vec!["read".into(), "write".into()]);
    // Each scope once, in the order of [`SCOPES`] (`["write","read","write"]` is `read write`).
    scopes.sort_by_key(|sc| SCOPES.iter().position(|k| k == sc).unwrap_or(SCOPES.len()));
    scopes.dedup();
    if scopes.is_empty() || scopes.iter().any(|sc| !SCOPES.contains(&sc.as_str())) {
        c.errors.insert("scopes".into(), "unknown_scope".into());
    }
    if let Some(d) = r.expires_in_days {
        if !(1..=730).contains(&d) {
            c.errors.insert("expires_in_days".into(), "out_of_range".into());
        }
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let (secret, prefix, hash) = crypto::new_api_key();
    let expires_at = r.expires_in_days.map(|d| opchub_store::now_ms() + d * 86_400_000);
    let key = app
        .store
        .create_api_key(
            &p.actor(),
            NewApiKey {
                user_id: &p.user.id,
                name: &name,
                prefix: &prefix,
                key_hash: &hash,
                scopes: &scopes,
                expires_at,
            },
        )
        .await?;
    Ok(CreatedKey { key, secret })
}

/// Revokes one of the caller's keys; it stops working at once in this process (the key cache
/// is forgotten here), within the cache's `MAX_AGE` elsewhere.
pub async fn revoke_key(app: &App, p: &Principal, id: &str) -> AppResult<ApiKey> {
    let key = app.store.revoke_api_key(&p.actor(), &p.user.id, id).await?;
    app.keys.forget_all();
    Ok(key)
}

// ---------------------------------------------------------------- users (admin)

/// Users, optionally of one role (`role` is a role code; empty means all).
pub async fn users(app: &App, role: Option<&str>) -> AppResult<Vec<User>> {
    let role = match role.filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(r.parse::<Role>().map_err(|_| AppError::field("role", "unknown_role"))?),
    };
    Ok(app.store.users(role).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct NewUserRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub role: Option<String>,
    /// Agency users: the district agency they review for (F1; required for the `agency` role).
    #[serde(default)]
    pub agency: Option<String>,
}

pub async fn create_user(app: &App, p: &Principal, r: &NewUserRequest) -> AppResult<User> {
    create_user_as(app, &p.actor(), r).await
}

/// Creates a user as `actor` (the platform operator through the API and pages, or the CLI as
/// the system): the same checks either way.
pub async fn create_user_as(app: &App, actor: &opchub_store::Actor, r: &NewUserRequest) -> AppResult<User> {
    let mut c = Checker::new();
    let username = c.username("username", r.username.as_deref());
    let password = c.password("password", r.password.as_deref(), &username);
    let display = c.text("display_name", r.display_name.as_deref(), 1, 50);
    let role = r.role.as_deref().unwrap_or("").parse::<Role>().ok();
    if role.is_none() {
        c.errors.insert("role".into(), "unknown_role".into());
    }
    let agency = match role {
        Some(Role::Agency) => Some(crate::party_facts::check_agency(app, &mut c, r.agency.as_deref())),
        _ => {
            if r.agency.as_deref().is_some_and(|a| !a.trim().is_empty()) {
                c.fail("agency", "not_applicable");
            }
            None
        }
    };
    let (Some(role), true) = (role, c.ok()) else {
        return Err(AppError::checked(c));
    };
    let hash = crypto::hash_password(&password)?;
    let new = NewUser {
        username: &username,
        display_name: &display,
        role,
        password_hash: &hash,
    };
    let res = match &agency {
        Some(a) => app.store.create_agency_user(actor, new, a).await,
        None => app.store.create_user(actor, new).await,
    };
    match res {
        Err(opchub_store::StoreError::Conflict(code)) => {
            let mut e = AppError::conflict(code);
            e.fields.insert("username".into(), code.into());
            Err(e)
        }
        other => Ok(other?),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SetDisabled {
    pub disabled: bool,
}

/// Disables or re-enables a user (not oneself); a disabled user's keys stop working at once in
/// this process (the key cache is forgotten here).
pub async fn set_user_disabled(app: &App, p: &Principal, id: &str, disabled: bool) -> AppResult<User> {
    if p.user.id == id {
        return Err(AccountError::CannotDisableSelf.into());
    }
    let user = app.store.set_user_disabled(&p.actor(), id, disabled).await?;
    app.keys.forget_all();
    Ok(user)
}

// ---------------------------------------------------------------- password change

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The password the account has now.
    pub current_password: Option<String>,
    /// The new password (at least 10 characters, not only spaces, not a common password, not
    /// the username).
    pub new_password: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct PasswordChanged {
    /// Other browser sessions of the account that were ended (this one stays signed in).
    pub sessions_ended: u64,
}

/// Changes the caller's password: the current one must be right (a wrong one counts towards
/// the sign-in throttle, like a failed sign-in), the new one must satisfy the password policy
/// and differ from the current one. Every other session of the account ends; the caller's own
/// (`session_token`, the cookie's value) stays.
pub async fn change_password(
    app: &App,
    p: &Principal,
    r: &PasswordChange,
    session_token: Option<&str>,
    client: Option<IpAddr>,
) -> AppResult<PasswordChanged> {
    let mut c = Checker::new();
    let current = r.current_password.clone().unwrap_or_default();
    if current.is_empty() {
        c.fail("current_password", "required");
    }
    let new = c.password("new_password", r.new_password.as_deref(), &p.user.username);
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    if check_password(app, &p.user.username, &current, client).await?.is_none() {
        return Err(AppError::field("current_password", "wrong_password"));
    }
    if new == current {
        return Err(AppError::field("new_password", "password_unchanged"));
    }
    let hash = crypto::hash_password(&new)?;
    let keep = session_token.map(crypto::sha256_hex);
    let sessions_ended = app.store.set_password(&p.actor(), &p.user.id, &hash, keep.as_deref()).await?;
    Ok(PasswordChanged { sessions_ended })
}

// ---------------------------------------------------------------- sessions

/// A hash of the kind stored, for a password no account has: an unknown username is checked
/// against it, so that it takes as long as a known one (no telling which usernames exist).
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crypto::hash_password(&crypto::random_token(16)).unwrap_or_default())
}

/// The user whose password this is, if the account exists and is not disabled. Failed
/// attempts are throttled per account and per client address (`too_many_attempts`, 429, see
/// [`crate::throttle`]); while an attempt must wait, no password is checked, the right one
/// included. The hash is checked off the async workers, for unknown usernames too.
pub async fn check_password(app: &App, username: &str, password: &str, client: Option<IpAddr>) -> AppResult<Option<User>> {
    let keys = throttle::keys(username, client);
    if let Some(wait) = app.login_throttle.wait(&keys, Instant::now()) {
        return Err(AppError::from(AccountError::TooManyAttempts).with_detail(format!("retry in {} s", wait.as_secs().max(1))));
    }
    let user = app.store.user_by_username(username).await?;
    let hash = user.as_ref().map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let typed = password.to_string();
    let matches = tokio::task::spawn_blocking(move || crypto::verify_password(&typed, &hash))
        .await
        .map_err(|_| AppError::internal())?;
    let user = user.filter(|u| matches && !u.disabled);
    if user.is_some() {
        app.login_throttle.succeeded(&keys);
    } else {
        app.login_throttle.failed(&keys, Instant::now());
    }
    Ok(user)
}

/// A new browser session's secrets.
pub struct NewSession {
    /// The session cookie's value (only its SHA-256 is stored).
    pub token: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Starts a session: a new random token (only its hash is stored) and a new CSRF token.
pub async fn start_session(app: &App, user_id: &str) -> AppResult<NewSession> {
    let token = crypto::random_token(32);
    let csrf = crypto::random_token(16);
    app.store
        .create_session(user_id, &crypto::sha256_hex(&token), &csrf, SESSION_TTL_MS)
        .await?;
    Ok(NewSession { token, csrf })
}

/// Ends the session of this cookie value.
pub async fn end_session(app: &App, token: &str) -> AppResult<()> {
    app.store.delete_session(&crypto::sha256_hex(token)).await?;
    Ok(())
}

// ---------------------------------------------------------------- who is calling

/// The caller behind a ledger source key (`ols_…`): the source's owner, acting as the source.
/// A key that names no source, or a disabled owner, is `invalid_source_key`.
pub async fn source_principal(app: &App, secret: &str) -> AppResult<Principal> {
    let invalid = || AppError::from(AccountError::InvalidSourceKey);
    let src = app.store.source_by_key(&crypto::sha256_hex(secret)).await?.ok_or_else(invalid)?;
    let user = app.store.user(&src.owner_user_id).await?;
    if user.disabled {
        return Err(invalid());
    }
    Ok(Principal {
        user,
        via: Via::Source {
            name: src.name,
            rate_per_minute: src.rate_per_minute,
            kinds: src.kinds,
        },
    })
}

/// The caller behind an API key (`opk_…`), through the key cache; an unknown, revoked or
/// expired key is `invalid_api_key`.
pub async fn api_key_principal(app: &App, secret: &str) -> AppResult<Principal> {
    match crate::keys::authenticate(app, &crypto::sha256_hex(secret)).await? {
        Some((key, user)) => Ok(Principal {
            user,
            via: Via::ApiKey {
                key_id: key.id,
                scopes: key.scopes,
            },
        }),
        None => Err(AccountError::InvalidApiKey.into()),
    }
}

/// The caller behind a session token, if the session is live.
pub async fn session_principal(app: &App, token: &str) -> AppResult<Option<Principal>> {
    Ok(app.store.session(&crypto::sha256_hex(token)).await?.map(|(user, csrf)| Principal {
        user,
        via: Via::Session { csrf },
    }))
}

/// Every user, for the administrators' list.
pub async fn all_users(app: &App) -> AppResult<Vec<User>> {
    Ok(app.store.users(None).await?)
}

/// The audit log, filtered (committee, auditor).
pub async fn audit_entries(app: &App, f: &opchub_store::AuditFilter) -> AppResult<Vec<opchub_store::AuditEntry>> {
    Ok(app.store.audit_entries(f).await?)
}
