//! Factor gateway (M2.2): the OpenAI-compatible endpoints (`/v1/*`, OpenAI-shaped errors,
//! API keys only) and the JSON API for channels, price tables and key limits.
// Helpers here fail with the finished HTTP response (returned once, never propagated far).
#![allow(clippy::result_large_err)]

use super::ApiJson;
use crate::auth::{Caller, Principal, Via};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_gateway::openai_error;
use opchub_store::gateway::{Channel, ItemPrice, KeyLimits, ModelPrice, NewChannel, PriceTable, RequestOutcome};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Request bodies beyond this get an OpenAI-shaped 413.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

fn gateway(s: &AppState) -> Result<Arc<opchub_gateway::Gateway>, Response> {
    s.gateway.clone().ok_or_else(|| {
        openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "gateway_unavailable",
            "The gateway is not running.",
        )
    })
}

/// The key and the party to bill: the OPC of the key's owner, else the owner.
async fn gateway_caller(s: &AppState, caller: &Caller) -> Result<opchub_gateway::Caller, Response> {
    let unauthorized = || {
        openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Use an API key: Authorization: Bearer opk_…",
        )
    };
    let Some(p) = caller.0.as_ref() else { return Err(unauthorized()) };
    let Via::ApiKey { key_id, .. } = &p.via else {
        return Err(unauthorized());
    };
    let subject = match opchub_app::keys::billing_party(s, &p.user.id).await {
        Ok(subject) => subject,
        Err(_) => {
            return Err(openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal",
                "internal error",
            ))
        }
    };
    Ok(opchub_gateway::Caller {
        key_id: key_id.clone(),
        subject,
    })
}

async fn body_bytes(body: Body) -> Result<bytes::Bytes, Response> {
    // A declared length over the limit is refused before reading anything.
    if axum::body::HttpBody::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(openai_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            "The request body is larger than 8 MiB.",
        ));
    }
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        openai_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            "The request body is larger than 8 MiB.",
        )
    })
}

pub async fn models(State(s): State<AppState>, caller: Caller) -> Response {
    let (g, c) = match (gateway(&s), gateway_caller(&s, &caller).await) {
        (Ok(g), Ok(c)) => (g, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    g.models(&c).await
}

pub async fn chat_completions(State(s): State<AppState>, caller: Caller, body: Body) -> Response {
    let (g, c) = match (gateway(&s), gateway_caller(&s, &caller).await) {
        (Ok(g), Ok(c)) => (g, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match body_bytes(body).await {
        Ok(b) => g.chat(c, b).await,
        Err(r) => r,
    }
}

pub async fn embeddings(State(s): State<AppState>, caller: Caller, body: Body) -> Response {
    let (g, c) = match (gateway(&s), gateway_caller(&s, &caller).await) {
        (Ok(g), Ok(c)) => (g, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match body_bytes(body).await {
        Ok(b) => g.embeddings(c, b).await,
        Err(r) => r,
    }
}

// ---------------------------------------------------------------- channels and prices

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
pub async fn create_channel_for(s: &AppState, p: &Principal, r: &NewChannelRequest) -> ApiResult<Channel> {
    let g = s
        .gateway
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "gateway_unavailable"))?;
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
        return Err(ApiError::checked(c));
    }
    let sealed = g.secrets().seal(&secret);
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
    changed(s);
    Ok(ch)
}

/// Channels, prices or limits changed through this process: the gateway's cached copies go.
pub fn changed(s: &AppState) {
    if let Some(g) = &s.gateway {
        g.invalidate();
    }
}

#[utoipa::path(post, path = "/api/v1/gateway/channels", tag = "gateway", request_body = NewChannelRequest, responses((status = 201, body = Channel), (status = 422)))]
pub async fn create_channel(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewChannelRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let ch = create_channel_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(ch)).into_response())
}

#[utoipa::path(get, path = "/api/v1/gateway/channels", tag = "gateway", responses((status = 200, body = [Channel])))]
pub async fn channels(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Channel>>> {
    let p = caller.require()?;
    let mine = if p.role() == Role::CommunityOperator {
        Some(p.user.id.as_str())
    } else {
        None
    };
    Ok(Json(s.store.channels(mine).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ChannelStatus {
    /// `approved`, `disabled` or `pending`.
    pub status: String,
}

#[utoipa::path(put, path = "/api/v1/gateway/channels/{id}/status", tag = "gateway", params(("id" = String, Path)), request_body = ChannelStatus,
    responses((status = 200, body = Channel), (status = 404), (status = 422)))]
pub async fn set_channel_status(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ChannelStatus>,
) -> ApiResult<Json<Channel>> {
    let p = caller.require()?;
    let ch = s.store.set_channel_status(&p.actor(), &id, &r.status).await?;
    changed(&s);
    Ok(Json(ch))
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
pub async fn create_prices_for(s: &AppState, p: &Principal, r: &NewPriceTable) -> ApiResult<PriceTable> {
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
            || !opchub_gateway::items::UNITS.contains(&i.unit.as_str())
            || i.name_zh.trim().is_empty()
            || i.name_zh.chars().count() > 100
            || i.name_en.chars().count() > 100
            || i.list_fen < 0
            || i.list_fen > opchub_gateway::items::MAX_UNIT_PRICE_FEN
            || i.opc_fen < 0
            || i.opc_fen > i.list_fen
    };
    let mut codes = std::collections::BTreeSet::new();
    if r.items.iter().any(bad_item) || !r.items.iter().all(|i| codes.insert(i.item.as_str())) {
        c.errors.insert("items".into(), "invalid_items".into());
    }
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    let t = s
        .store
        .create_price_table(&p.actor(), &p.user.id, &version, effective_from, &r.prices, &r.items)
        .await?;
    changed(s);
    Ok(t)
}

#[utoipa::path(post, path = "/api/v1/gateway/prices", tag = "gateway", request_body = NewPriceTable, responses((status = 201, body = PriceTable), (status = 409), (status = 422)))]
pub async fn create_prices(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewPriceTable>) -> ApiResult<Response> {
    let p = caller.require()?;
    let t = create_prices_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// Sets the limits of one of the caller's own keys (JSON API and pages); another user's key
/// is not found.
pub async fn set_key_limits_for(s: &AppState, p: &Principal, id: &str, l: &KeyLimits) -> ApiResult<KeyLimits> {
    own_key(s, p, id).await?;
    if l.rpm < 0 || l.tpm < 0 || l.monthly_budget_fen < 0 {
        return Err(ApiError::field("limits", "out_of_range"));
    }
    s.store.set_key_limits(&p.actor(), id, l).await?;
    changed(s);
    Ok(s.store.key_limits(id).await?)
}

#[utoipa::path(put, path = "/api/v1/me/api-keys/{id}/limits", tag = "gateway", params(("id" = String, Path)), request_body = KeyLimits,
    responses((status = 200, body = KeyLimits), (status = 404), (status = 422)))]
pub async fn set_key_limits(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(l): ApiJson<KeyLimits>,
) -> ApiResult<Json<KeyLimits>> {
    let p = caller.require()?;
    Ok(Json(set_key_limits_for(&s, p, &id, &l).await?))
}

async fn own_key(s: &AppState, p: &Principal, id: &str) -> ApiResult<()> {
    match s.store.api_key(id).await {
        Ok(k) if k.user_id == p.user.id => Ok(()),
        Ok(_) | Err(opchub_store::StoreError::NotFound) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct RequestsQuery {
    pub key_id: String,
}

#[utoipa::path(get, path = "/api/v1/gateway/requests", tag = "gateway", params(RequestsQuery), responses((status = 200, body = [RequestOutcome]), (status = 404)))]
pub async fn requests(State(s): State<AppState>, caller: Caller, Query(q): Query<RequestsQuery>) -> ApiResult<Json<Vec<RequestOutcome>>> {
    let p = caller.require()?;
    own_key(&s, p, &q.key_id).await?;
    Ok(Json(s.store.requests_of_key(&q.key_id, 200).await?))
}
