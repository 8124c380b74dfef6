//! The factor gateway's administration (M2.2): channels (registered by community operators,
//! approved or disabled by the platform operator), price tables of models and of compute and
//! data items, the limits of an OPC's keys and the outcomes of its requests. The proxy itself
//! (`/v1/*`) is `opchub_gateway`.
//!
//! The running gateway keeps channels, prices and key limits cached, and holds the box that
//! seals upstream keys. This crate may not depend on `opchub_gateway` (the layering test), so
//! a use case that writes one of those is handed a [`GatewayPort`]: the web layer implements
//! it over the gateway it runs (sealing and invalidating), the CLI passes [`NoGateway`]. Each
//! write that changes what the gateway caches has exactly one path, here, and invalidates
//! through the port right after the write — the pages and the JSON API call the same function.

use crate::{App, AppError, AppResult, ErrorKind, Principal};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::items;
use opchub_store::gateway::{Channel, ItemPrice, KeyLimits, ModelPrice, NewChannel, PriceTable, RequestOutcome};
use serde::Deserialize;
use utoipa::ToSchema;

/// What the administration needs of the gateway running in this process.
pub trait GatewayPort: Send + Sync {
    /// Whether a gateway runs here (channels can only be registered then: their keys are
    /// sealed with its box).
    fn running(&self) -> bool;
    /// Seals an upstream key for storage; `None` when no gateway runs.
    fn seal(&self, secret: &str) -> Option<String>;
    /// Channels, prices or limits changed through this process: the cached copies go.
    fn invalidate(&self);
}

/// No gateway in this process (the CLI, tools): nothing is cached, no key can be sealed.
pub struct NoGateway;

impl GatewayPort for NoGateway {
    fn running(&self) -> bool {
        false
    }
    fn seal(&self, _secret: &str) -> Option<String> {
        None
    }
    fn invalidate(&self) {}
}

#[derive(Deserialize, ToSchema)]
pub struct NewChannelRequest {
    pub name: Option<String>,
    /// OpenAI-compatible base URL, e.g. `https://api.example.com/v1`.
    pub base_url: Option<String>,
    /// The upstream key; stored encrypted, never shown again.
    pub secret: Option<String>,
    pub models: Option<Vec<String>>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    /// Time to the upstream's response headers (100–600,000 ms; default 30,000).
    pub timeout_ms: Option<i64>,
}

/// Validates and registers a channel for the calling operator (JSON API and pages).
pub async fn create_channel_for(s: &App, gw: &dyn GatewayPort, p: &Principal, r: &NewChannelRequest) -> AppResult<Channel> {
    if !gw.running() {
        return Err(AppError::new(ErrorKind::Unavailable, "gateway_unavailable"));
    }
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 1, 64);
    let base_url = c.text("base_url", r.base_url.as_deref(), 8, 300);
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        c.errors.entry("base_url".into()).or_insert_with(|| "invalid_url".into());
    }
    let secret = c.text("secret", r.secret.as_deref(), 1, 500);
    let models = r.models.clone().unwrap_or_default();
    if models.is_empty() || models.len() > 100 || models.iter().any(|m| m.trim().is_empty() || m.len() > 100) {
        c.errors.insert("models".into(), "invalid_models".into());
    }
    let timeout_ms = r.timeout_ms.unwrap_or(30_000);
    if !(100..=600_000).contains(&timeout_ms) {
        c.errors.insert("timeout_ms".into(), "out_of_range".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let sealed = gw
        .seal(&secret)
        .ok_or_else(|| AppError::new(ErrorKind::Unavailable, "gateway_unavailable"))?;
    let ch = s
        .store
        .create_channel(
            &p.actor(),
            NewChannel {
                operator_user_id: &p.user.id,
                name: &name,
                base_url: &base_url,
                secret_enc: &sealed,
                models: &models,
                priority: r.priority.unwrap_or(0),
                weight: r.weight.unwrap_or(1).clamp(1, 1000),
                timeout_ms,
            },
        )
        .await?;
    gw.invalidate();
    Ok(ch)
}

/// The channels a caller sees: a community operator its own, the platform operator all.
pub async fn channels_for(s: &App, p: &Principal) -> AppResult<Vec<Channel>> {
    let mine = if p.role() == Role::CommunityOperator {
        Some(p.user.id.as_str())
    } else {
        None
    };
    Ok(s.store.channels(mine).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct ChannelStatus {
    /// `approved`, `disabled` or `pending`.
    pub status: String,
}

/// Approves, disables or resets a channel (the platform operator; the store checks the
/// status), then drops the gateway's cached channels: the one write path of a channel's status.
pub async fn set_channel_status_for(s: &App, gw: &dyn GatewayPort, p: &Principal, id: &str, status: &str) -> AppResult<Channel> {
    let ch = s.store.set_channel_status(&p.actor(), id, status).await?;
    gw.invalidate();
    Ok(ch)
}

#[derive(Deserialize, ToSchema)]
pub struct NewPriceTable {
    pub version: Option<String>,
    /// RFC 3339; default now.
    pub effective_from: Option<String>,
    /// Per model, fen per million tokens.
    #[serde(default)]
    pub prices: Vec<ModelPrice>,
    /// Compute and data items: fen per GPU-hour (`gpu_hour`), per GB of 10⁹ bytes (`gb`) or per
    /// whole dataset (`dataset`).
    #[serde(default)]
    pub items: Vec<ItemPrice>,
}

/// An item code: 1–64 characters of letters, digits, `-`, `_` and `.` (it is named in usage
/// events' attributes and in download commands).
pub fn item_code_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Validates and publishes a price table of the calling operator (JSON API and pages).
pub async fn create_prices_for(s: &App, gw: &dyn GatewayPort, p: &Principal, r: &NewPriceTable) -> AppResult<PriceTable> {
    let mut c = Checker::new();
    let version = c.text("version", r.version.as_deref(), 1, 64);
    let effective_from = match r.effective_from.as_deref() {
        None => opchub_store::now_ms(),
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) => d.timestamp_millis(),
            Err(_) => {
                c.errors.insert("effective_from".into(), "invalid_time".into());
                0
            }
        },
    };
    let bad_price = |m: &ModelPrice| {
        let all = [m.list_input, m.opc_input, m.list_cached, m.opc_cached, m.list_output, m.opc_output];
        m.model.trim().is_empty()
            || all.iter().any(|v| *v < 0 || *v > 100_000_000)
            || m.opc_input > m.list_input
            || m.opc_cached > m.list_cached
            || m.opc_output > m.list_output
    };
    if r.prices.iter().any(bad_price) || (r.prices.is_empty() && r.items.is_empty()) {
        c.errors.insert("prices".into(), "invalid_prices".into());
    }
    let bad_item = |i: &ItemPrice| {
        !item_code_ok(&i.item)
            || !items::UNITS.contains(&i.unit.as_str())
            || i.name_zh.trim().is_empty()
            || i.name_zh.chars().count() > 100
            || i.name_en.chars().count() > 100
            || i.list_fen < 0
            || i.list_fen > items::MAX_UNIT_PRICE_FEN
            || i.opc_fen < 0
            || i.opc_fen > i.list_fen
    };
    let mut codes = std::collections::BTreeSet::new();
    if r.items.iter().any(bad_item) || !r.items.iter().all(|i| codes.insert(i.item.as_str())) {
        c.errors.insert("items".into(), "invalid_items".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let t = s
        .store
        .create_price_table(&p.actor(), &p.user.id, &version, effective_from, &r.prices, &r.items)
        .await?;
    gw.invalidate();
    Ok(t)
}

/// Sets the limits of one of the caller's own keys (JSON API and pages); another user's key
/// is not found.
pub async fn set_key_limits_for(s: &App, gw: &dyn GatewayPort, p: &Principal, id: &str, l: &KeyLimits) -> AppResult<KeyLimits> {
    own_key(s, p, id).await?;
    if l.rpm < 0 || l.tpm < 0 || l.monthly_budget_fen < 0 {
        return Err(AppError::field("limits", "out_of_range"));
    }
    s.store.set_key_limits(&p.actor(), id, l).await?;
    gw.invalidate();
    Ok(s.store.key_limits(id).await?)
}

pub async fn own_key(s: &App, p: &Principal, id: &str) -> AppResult<()> {
    match s.store.api_key(id).await {
        Ok(k) if k.user_id == p.user.id => Ok(()),
        Ok(_) | Err(opchub_store::StoreError::NotFound) => Err(AppError::not_found()),
        Err(e) => Err(e.into()),
    }
}

/// The recent request outcomes of one of the caller's own keys.
pub async fn requests_for(s: &App, p: &Principal, key_id: &str) -> AppResult<Vec<RequestOutcome>> {
    own_key(s, p, key_id).await?;
    Ok(s.store.requests_of_key(key_id, 200).await?)
}
