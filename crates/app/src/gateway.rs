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

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::items;
use opchub_store::gateway::{
    Channel, ItemPrice, ItemReference, ItemReferenceVersion, KeyLimits, ModelPrice, NewChannel, PriceTable, PriceTableSummary,
    RequestOutcome,
};
use serde::Deserialize;
use utoipa::ToSchema;

crate::module_errors! {
    /// What administering the gateway refuses.
    pub enum GatewayAdminError {
        /// The gateway is not running in this process.
        Unavailable => (Unavailable, "gateway_unavailable"),
    }
}

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
        return Err(GatewayAdminError::Unavailable.into());
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
    // Not the platform's own network outside test mode (save the demo's upstream).
    check_channel_address(s, &base_url).await?;
    let sealed = gw.seal(&secret).ok_or_else(|| AppError::from(GatewayAdminError::Unavailable))?;
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

/// Where a channel may send requests. Outside test mode (`--allow-private-upstreams`) a channel
/// may not point the gateway at the platform's own network: loopback, private, link-local, …
/// (v4, v6 and the v6 forms that embed a v4 address), by the Skill Store's address rule — save
/// exactly the demo's built-in upstream under `serve --demo` (`App::demo_upstream`). A name
/// that does not resolve now is not refused here (it fails over at call time like any dead
/// channel).
async fn check_channel_address(s: &App, base_url: &str) -> AppResult<()> {
    if s.demo_upstream.as_deref().is_some_and(|demo| demo == base_url) {
        return Ok(());
    }
    if let Err(f) = opchub_skills::net::check_resolved(base_url, s.skills.config.allow_private_upstreams).await {
        if f.code != "upstream_unreachable" {
            let code = if f.code == "upstream_private_address" {
                "channel_private_address"
            } else {
                "invalid_url"
            };
            return Err(AppError::field("base_url", code).with_detail(f.detail));
        }
    }
    Ok(())
}

/// Points one of the caller's own channels at another base URL, by the same address rule as a
/// new channel. An approved channel goes back to review (the platform operator approves where
/// a channel sends requests, M2.2). Drops the gateway's cached channels.
pub async fn set_channel_base_url_for(s: &App, gw: &dyn GatewayPort, p: &Principal, id: &str, base_url: &str) -> AppResult<Channel> {
    let ch = match s.store.channel(id).await {
        Ok(c) if c.operator_user_id == p.user.id => c,
        Ok(_) | Err(opchub_store::StoreError::NotFound) => return Err(AppError::not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut c = Checker::new();
    let base_url = c.text("base_url", Some(base_url), 8, 300);
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        c.errors.entry("base_url".into()).or_insert_with(|| "invalid_url".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    if ch.base_url == base_url {
        return Ok(ch);
    }
    check_channel_address(s, &base_url).await?;
    let ch = s.store.set_channel_base_url(&p.actor(), id, &base_url).await?;
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

/// How far behind the server's clock a price table's `effective_from` may be and still count
/// as "now" (the submitter's clock, the time a form takes to send).
pub const PAST_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Validates and submits a price table of the calling operator (JSON API and pages): it is
/// `pending` and prices nothing until the platform operator approves it (issue 18 item 3).
pub async fn create_prices_for(s: &App, gw: &dyn GatewayPort, p: &Principal, r: &NewPriceTable) -> AppResult<PriceTable> {
    let mut c = Checker::new();
    let version = c.text("version", r.version.as_deref(), 1, 64);
    let now = opchub_store::now_ms();
    let effective_from = match r.effective_from.as_deref() {
        None => now,
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            // Never back-dated (issue 18 item 3): a table prices usage from now on, not usage
            // already metered under another (a clock a little behind ours is tolerated).
            Ok(d) if d.timestamp_millis() < now - PAST_TOLERANCE_MS => {
                c.errors.insert("effective_from".into(), "effective_from_past".into());
                0
            }
            Ok(d) => d.timestamp_millis().max(now),
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

/// The price tables a caller sees: a community operator its own, the platform operator all.
pub async fn price_tables_for(s: &App, p: &Principal) -> AppResult<Vec<PriceTableSummary>> {
    let mine = (p.role() == Role::CommunityOperator).then_some(p.user.id.as_str());
    let mut tables = s.store.price_tables(mine).await?;
    // A list price above the reference in force is flagged (issue 18 item 3).
    let now = opchub_store::now_ms();
    let item_refs = s.store.item_references().await?;
    for t in &mut tables {
        for i in &t.items {
            if opchub_store::gateway::item_reference_in(&item_refs, &i.item, &i.unit, now)
                .is_some_and(|r| i.list_fen > r.reference.list_fen)
            {
                t.above_reference.push(i.item.clone());
            }
        }
    }
    let mut refs: std::collections::BTreeMap<String, Option<ModelPrice>> = std::collections::BTreeMap::new();
    for t in &mut tables {
        for m in &t.prices {
            if !refs.contains_key(&m.model) {
                refs.insert(m.model.clone(), s.store.reference_price_at(&m.model, now).await?);
            }
            if let Some(Some(rf)) = refs.get(&m.model) {
                if m.list_input > rf.list_input || m.list_cached > rf.list_cached || m.list_output > rf.list_output {
                    t.above_reference.push(m.model.clone());
                }
            }
        }
    }
    Ok(tables)
}

#[derive(Deserialize, ToSchema)]
pub struct PriceTableStatus {
    /// `approved`, `disabled` or `pending`.
    pub status: String,
}

/// Approves, disables or resets a price table (the platform operator, as for channels): only
/// approved tables price usage, and an approved table takes effect no earlier than its
/// approval. Then drops the gateway's cached prices.
pub async fn set_price_table_status_for(
    s: &App,
    gw: &dyn GatewayPort,
    p: &Principal,
    operator_user_id: &str,
    version: &str,
    status: &str,
) -> AppResult<PriceTableSummary> {
    let t = s
        .store
        .set_price_table_status(&p.actor(), operator_user_id, version, status, Some(opchub_store::now_ms()))
        .await?;
    gw.invalidate();
    Ok(t)
}

#[derive(Deserialize, ToSchema)]
pub struct NewReferencePrices {
    pub version: Option<String>,
    /// RFC 3339; default now; never in the past.
    pub effective_from: Option<String>,
    /// Per model, the vendor's public list prices in fen per million tokens (`list_input`,
    /// `list_cached`, `list_output`; the OPC fields are ignored).
    #[serde(default)]
    pub prices: Vec<ModelPrice>,
    /// Per compute or data item code and unit (`gpu_hour`, `gb`, `dataset`), the public list
    /// price in fen per unit.
    #[serde(default)]
    pub items: Vec<ItemReference>,
}

/// The platform operator publishes a version of the reference price list (M2.2, issue 18 item
/// 3): from then on an operator's list price counts for the discount basis at most up to the
/// reference. Drops the gateway's cached prices.
pub async fn create_reference_prices_for(
    s: &App,
    gw: &dyn GatewayPort,
    p: &Principal,
    r: &NewReferencePrices,
) -> AppResult<NewReferenceOutcome> {
    let mut c = Checker::new();
    let version = c.text("version", r.version.as_deref(), 1, 64);
    let now = opchub_store::now_ms();
    let effective_from = match r.effective_from.as_deref() {
        None => now,
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) if d.timestamp_millis() < now - PAST_TOLERANCE_MS => {
                c.errors.insert("effective_from".into(), "effective_from_past".into());
                0
            }
            Ok(d) => d.timestamp_millis().max(now),
            Err(_) => {
                c.errors.insert("effective_from".into(), "invalid_time".into());
                0
            }
        },
    };
    let bad = |m: &ModelPrice| {
        m.model.trim().is_empty()
            || [m.list_input, m.list_cached, m.list_output]
                .iter()
                .any(|v| *v < 0 || *v > 100_000_000)
    };
    let mut models = std::collections::BTreeSet::new();
    if r.prices.iter().any(bad) || !r.prices.iter().all(|m| models.insert(m.model.as_str())) {
        c.errors.insert("prices".into(), "invalid_reference_prices".into());
    }
    let bad_item = |i: &ItemReference| {
        !(1..=64).contains(&i.item.trim().chars().count())
            || !items::UNITS.contains(&i.unit.as_str())
            || !(0..=items::MAX_UNIT_PRICE_FEN).contains(&i.list_fen)
    };
    let mut codes = std::collections::BTreeSet::new();
    if r.items.iter().any(bad_item) || !r.items.iter().all(|i| codes.insert((i.item.trim(), i.unit.as_str()))) {
        c.errors.insert("items".into(), "invalid_item_references".into());
    }
    if r.prices.is_empty() && r.items.is_empty() {
        c.errors.insert("prices".into(), "invalid_reference_prices".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let item_refs: Vec<ItemReference> = r
        .items
        .iter()
        .map(|i| ItemReference {
            item: i.item.trim().to_string(),
            ..i.clone()
        })
        .collect();
    s.store
        .create_reference_prices(&p.actor(), &version, effective_from, &r.prices, &item_refs)
        .await?;
    gw.invalidate();
    Ok(NewReferenceOutcome { version, effective_from })
}

#[derive(serde::Serialize, ToSchema)]
pub struct NewReferenceOutcome {
    pub version: String,
    pub effective_from: i64,
}

/// One model's reference in one published version.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ModelReferenceVersion {
    pub version: String,
    pub effective_from: i64,
    pub model: String,
    pub list_input: i64,
    pub list_cached: i64,
    pub list_output: i64,
}

/// The platform's reference price list (issue 18 item 3): every version published, newest
/// first; what is in force at a time is the newest effective one per model or item.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ReferencePrices {
    pub models: Vec<ModelReferenceVersion>,
    pub items: Vec<ItemReferenceVersion>,
}

/// The reference price list, for the operators it bounds, the platform operator who keeps it
/// and the committee and auditor.
pub async fn reference_prices_for(s: &App) -> AppResult<ReferencePrices> {
    Ok(ReferencePrices {
        models: s
            .store
            .model_references()
            .await?
            .into_iter()
            .map(|(version, effective_from, m)| ModelReferenceVersion {
                version,
                effective_from,
                model: m.model,
                list_input: m.list_input,
                list_cached: m.list_cached,
                list_output: m.list_output,
            })
            .collect(),
        items: s.store.item_references().await?,
    })
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

// ---------------------------------------------------------------- what the gateway pages show

/// At most this many rows of "prices in force" are looked up for one page.
pub const MAX_PRICE_ROWS: usize = 200;
/// Recent requests shown per key.
pub const RECENT_REQUESTS: i64 = 20;

/// The open ledger period (`YYYY-MM`, Asia/Shanghai).
pub fn period_now() -> String {
    opchub_ledger::event::period_of(opchub_store::now_ms())
}

/// Sums of list and charged amounts (checked: `None` when they do not fit).
pub fn sums(rows: impl Iterator<Item = (i64, i64)>) -> (Option<i64>, Option<i64>) {
    rows.fold((Some(0i64), Some(0i64)), |(l, c), (list, charged)| {
        (l.and_then(|a| a.checked_add(list)), c.and_then(|a| a.checked_add(charged)))
    })
}

/// A model price in force for one operator's model (`None`: no table covers it yet).
pub struct PriceInForce {
    pub operator_user_id: String,
    pub model: String,
    pub price: Option<(String, ModelPrice)>,
}

/// What a community operator's usage this month was (they are the counterparty of their
/// channels' events, M2.2).
pub struct ServedUsage {
    pub totals: Vec<opchub_store::ledger::UsageTotal>,
    pub daily: Vec<opchub_store::ledger::DailyUsage>,
    /// This month's bills to its OPCs by OPC, and their model lines by model (M2.2; the bills
    /// are the ledger's sums), largest charged first, at most [`MAX_BREAKDOWN`] each.
    pub by_opc: Vec<Served>,
    pub by_model: Vec<Served>,
}

/// What was served to one OPC or of one model: at list price and as charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub label: String,
    pub list_fen: i64,
    pub charged_fen: i64,
}

/// Rows of a breakdown chart at most.
pub const MAX_BREAKDOWN: usize = 12;

/// The caller's bills of `period` on one `side` (`payee`: an operator's bills to its OPCs;
/// `payer`: an OPC's bills), by the other party and by model (issue 21 item 4).
async fn bill_breakdown(app: &App, p: &Principal, period: &str, side: &str) -> AppResult<(Vec<Served>, Vec<Served>)> {
    let q = crate::bills::BillQuery {
        month: Some(period.to_string()),
        side: Some(side.into()),
        ..Default::default()
    };
    let mut by_opc = vec![];
    let mut models: std::collections::BTreeMap<String, (i64, i64)> = std::collections::BTreeMap::new();
    for b in crate::bills::list_for(app, p, &q).await? {
        let other = if side == "payee" { &b.payer } else { &b.payee };
        by_opc.push(Served {
            label: crate::ledger::party_name(app, other).await,
            list_fen: b.list_fen,
            charged_fen: b.total_fen,
        });
        for l in crate::bills::bill_for(app, p, &b.id).await?.lines {
            if l.kind.starts_with("token.") {
                let e = models.entry(l.item).or_default();
                e.0 += l.list_fen;
                e.1 += l.charged_fen;
            }
        }
    }
    let mut by_model: Vec<Served> = models
        .into_iter()
        .map(|(label, (list_fen, charged_fen))| Served {
            label,
            list_fen,
            charged_fen,
        })
        .collect();
    for v in [&mut by_opc, &mut by_model] {
        v.sort_by(|a, b| b.charged_fen.cmp(&a.charged_fen).then_with(|| a.label.cmp(&b.label)));
        v.truncate(MAX_BREAKDOWN);
    }
    Ok((by_opc, by_model))
}

/// The channel console: the caller's channels (all for the platform operator, with their
/// operators' names), the model prices in force for them, and for a community operator the
/// usage served this month.
pub struct ChannelConsole {
    pub channels: Vec<Channel>,
    pub operator_names: std::collections::BTreeMap<String, String>,
    pub prices: Vec<PriceInForce>,
    pub usage: Option<ServedUsage>,
}

pub async fn channel_console(app: &App, p: &Principal, period: &str) -> AppResult<ChannelConsole> {
    let platform = p.role() == Role::PlatformOperator;
    let mine = (!platform).then_some(p.user.id.as_str());
    let channels = app.store.channels(mine).await?;
    let mut operator_names = std::collections::BTreeMap::new();
    if platform {
        for c in &channels {
            if !operator_names.contains_key(&c.operator_user_id) {
                let name = app
                    .store
                    .user(&c.operator_user_id)
                    .await
                    .map(|u| u.display_name)
                    .unwrap_or_else(|_| c.operator_user_id.clone());
                operator_names.insert(c.operator_user_id.clone(), name);
            }
        }
    }
    let now = opchub_store::now_ms();
    let mut seen = std::collections::BTreeSet::new();
    let mut prices = Vec::new();
    for c in &channels {
        for m in &c.models {
            if prices.len() >= MAX_PRICE_ROWS || !seen.insert((c.operator_user_id.clone(), m.clone())) {
                continue;
            }
            let price = app.store.price_at(&c.operator_user_id, m, now).await.ok().flatten();
            prices.push(PriceInForce {
                operator_user_id: c.operator_user_id.clone(),
                model: m.clone(),
                price,
            });
        }
    }
    let usage = if p.role() == Role::CommunityOperator {
        let (by_opc, by_model) = bill_breakdown(app, p, period, "payee").await?;
        Some(ServedUsage {
            totals: app.store.usage_totals(&p.user.id, true, period).await.unwrap_or_default(),
            daily: app.store.usage_daily(&p.user.id, true, period).await.unwrap_or_default(),
            by_opc,
            by_model,
        })
    } else {
        None
    };
    Ok(ChannelConsole {
        channels,
        operator_names,
        prices,
        usage,
    })
}

/// One model an OPC can call through an approved channel, with who serves it and at what
/// prices (M2.2: the list price and the discounted OPC price, fen per million tokens).
pub struct ModelOffer {
    pub model: String,
    pub operator_user_id: String,
    /// The names of the communities the operator runs (joined with `、`), else its display name.
    pub operator_name: String,
    /// `(price table version, prices)` in force now; `None` when no approved table covers it
    /// (the gateway refuses such a model on that channel).
    pub price: Option<(String, ModelPrice)>,
}

/// Every (model, operator) pair on approved channels, models in name order, with the price in
/// force now (at most [`MAX_PRICE_ROWS`]).
pub async fn model_offers(app: &App) -> AppResult<Vec<ModelOffer>> {
    let now = opchub_store::now_ms();
    let mut pairs = std::collections::BTreeSet::new();
    for c in app.store.approved_channels().await? {
        for m in c.models {
            pairs.insert((m, c.operator_user_id.clone()));
        }
    }
    let mut names: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for (model, operator) in pairs.into_iter().take(MAX_PRICE_ROWS) {
        if !names.contains_key(&operator) {
            // The communities it runs (an operator may run several), else its display name.
            let communities: Vec<String> = app
                .store
                .communities(None, Some(&operator))
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect();
            let name = if communities.is_empty() {
                app.store
                    .user(&operator)
                    .await
                    .map(|u| u.display_name)
                    .unwrap_or_else(|_| operator.clone())
            } else {
                communities.join("、")
            };
            names.insert(operator.clone(), name);
        }
        let price = app.store.price_at(&operator, &model, now).await?;
        out.push(ModelOffer {
            operator_name: names.get(&operator).cloned().unwrap_or_default(),
            model,
            operator_user_id: operator,
            price,
        });
    }
    Ok(out)
}

/// 00:00 Asia/Shanghai of the first day of a `YYYY-MM` period and of the month after, in ms.
pub fn period_bounds(period: &str) -> Option<(i64, i64)> {
    let (y, m) = period.split_once('-')?;
    let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let start = |y: i32, m: u32| -> Option<i64> {
        let d = chrono::NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
        Some(d.and_utc().timestamp_millis() - 8 * 3_600_000)
    };
    Some((start(y, m)?, start(ny, nm)?))
}

/// One of an OPC founder's keys on the gateway page: its limits, this month's budget use and
/// what is left of it, and its recent requests.
pub struct KeyUse {
    pub key: opchub_store::accounts::ApiKey,
    pub active: bool,
    pub limits: KeyLimits,
    pub spent: i64,
    pub held: i64,
    /// `None` when the key has no monthly budget.
    pub remaining: Option<i64>,
    pub requests: Vec<RequestOutcome>,
    /// This month's requests per day (the console's per-key chart).
    pub daily: Vec<opchub_store::gateway::KeyDay>,
}

/// The OPC's gateway page: its company, its keys, this month's list and charged amounts of what
/// the M2.2 discount covers (tokens, compute and data) and what it saved, and the models offered.
pub struct OpcGateway {
    pub opc: Option<opchub_store::registry::Opc>,
    pub keys: Vec<KeyUse>,
    pub list_fen: Option<i64>,
    pub charged_fen: Option<i64>,
    pub saved_fen: Option<i64>,
    pub models: std::collections::BTreeSet<String>,
    /// The models with their operators and prices (the console's model list).
    pub offers: Vec<ModelOffer>,
    /// This month's spend by model, from its running bills (at list price and as charged).
    pub spend_by_model: Vec<Served>,
}

pub async fn opc_gateway(app: &App, p: &Principal, period: &str) -> AppResult<OpcGateway> {
    let opc = app.store.opc_of_founder(&p.user.id).await?;
    // The party the gateway bills: the founder's OPC, else the user.
    let subject = opc.as_ref().map(|o| o.id.clone()).unwrap_or_else(|| p.user.id.clone());
    let now = opchub_store::now_ms();
    let bounds = period_bounds(period);
    let mut keys = Vec::new();
    for key in app.store.api_keys_of(&p.user.id).await? {
        let limits = app.store.key_limits(&key.id).await?;
        let daily = match bounds {
            Some((from, to)) => app.store.key_daily_costs(&key.id, from, to).await?,
            None => vec![],
        };
        let (spent, held) = app.store.budget_use(&key.id, period).await?;
        let requests = app.store.requests_of_key(&key.id, RECENT_REQUESTS).await?;
        let active = key.revoked_at.is_none() && key.expires_at.is_none_or(|e| e > now);
        let remaining =
            (limits.monthly_budget_fen > 0).then(|| limits.monthly_budget_fen.saturating_sub(spent).saturating_sub(held).max(0));
        keys.push(KeyUse {
            key,
            active,
            limits,
            spent,
            held,
            remaining,
            requests,
            daily,
        });
    }
    let totals = app.store.usage_totals(&subject, false, period).await?;
    let (list_fen, charged_fen) = sums(
        totals
            .iter()
            // What the M2.2 discount covers: tokens, compute and data.
            .filter(|t| t.kind.starts_with("token.") || t.kind.starts_with("compute.") || t.kind.starts_with("data."))
            .map(|t| (t.list_fen, t.charged_fen)),
    );
    let saved_fen = list_fen.zip(charged_fen).and_then(|(l, c)| l.checked_sub(c));
    let offers = model_offers(app).await?;
    let models = offers.iter().map(|o| o.model.clone()).collect();
    let (_, spend_by_model) = bill_breakdown(app, p, period, "payer").await?;
    Ok(OpcGateway {
        spend_by_model,
        opc,
        keys,
        list_fen,
        charged_fen,
        saved_fen,
        models,
        offers,
    })
}

/// A community operator's compute and data items in force now (M2.2).
pub async fn items_in_force(app: &App, p: &Principal) -> AppResult<Vec<opchub_store::gateway::ItemPriceVersion>> {
    Ok(app.store.item_prices_in_force(&p.user.id, opchub_store::now_ms()).await?)
}
