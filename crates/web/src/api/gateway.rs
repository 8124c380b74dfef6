//! Factor gateway (M2.2): the OpenAI-compatible endpoints (`/v1/*`, OpenAI-shaped errors,
//! API keys only) and the JSON API for channels, price tables and key limits (the use cases are
//! `opchub_app::gateway`; this module is their HTTP side and the gateway's [`GatewayPort`]).

use super::{ApiJson, ApiQuery};
use crate::auth::{Caller, Via};
use crate::error::{status_of, ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::gateway::{self as app, GatewayPort};
use opchub_gateway::{GatewayError, Reply};
use opchub_store::gateway::{Channel, KeyLimits, PriceTable, PriceTableSummary, RequestOutcome};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

/// Request bodies beyond this get an OpenAI-shaped 413.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// An error in OpenAI's shape (`{"error": {message, type, param, code}}`), which the openai
/// and anthropic SDKs read: it wraps the gateway's [`GatewayError`], or an access refusal of
/// this layer, and takes its HTTP status from the one mapping of kinds ([`status_of`]).
pub struct OpenAiError {
    status: StatusCode,
    kind: &'static str,
    code: String,
    message: String,
    retry_after: Option<u64>,
}

impl From<GatewayError> for OpenAiError {
    fn from(e: GatewayError) -> Self {
        OpenAiError {
            status: status_of(e.kind()),
            kind: e.openai_type(),
            code: e.code().to_string(),
            message: e.to_string(),
            retry_after: e.retry_after(),
        }
    }
}

impl OpenAiError {
    /// A refusal of the access rules (no credential, no right), in English as the SDKs expect.
    pub fn refused(e: &ApiError) -> Self {
        let (message, _) = e.messages("en");
        let kind = match e.status {
            StatusCode::UNAUTHORIZED => "invalid_request_error",
            StatusCode::FORBIDDEN => "permission_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        OpenAiError {
            status: e.status,
            kind,
            code: e.code.clone(),
            message,
            retry_after: None,
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": {
            "message": self.message, "type": self.kind, "param": null, "code": self.code } });
        let mut r = (self.status, Json(body)).into_response();
        if let Some(v) = self.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// The upstream's reply as an HTTP response: status, content type and bytes passed through.
fn reply(r: Reply) -> Response {
    let built = match r {
        Reply::Body {
            status,
            content_type,
            request_id,
            body,
        } => {
            let mut b = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .header("x-opchub-request-id", request_id);
            if let Some(ct) = content_type {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            b.body(Body::from(body))
        }
        Reply::Stream {
            content_type,
            request_id,
            chunks,
        } => Response::builder()
            .status(StatusCode::OK)
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-opchub-request-id", request_id)
            .header(header::CONTENT_TYPE, content_type.unwrap_or_else(|| "text/event-stream".into()))
            .body(Body::from_stream(chunks)),
    };
    built.unwrap_or_else(|_| OpenAiError::from(GatewayError::Internal).into_response())
}

fn gateway(s: &AppState) -> Result<Arc<opchub_gateway::Gateway>, OpenAiError> {
    s.gateway.clone().ok_or_else(|| GatewayError::NotRunning.into())
}

/// The key and the party to bill: the OPC of the key's owner, else the owner.
async fn gateway_caller(s: &AppState, caller: &Caller) -> Result<opchub_gateway::Caller, OpenAiError> {
    let Some(p) = caller.0.as_ref() else {
        return Err(GatewayError::InvalidApiKey.into());
    };
    let Via::ApiKey { key_id, .. } = &p.via else {
        return Err(GatewayError::InvalidApiKey.into());
    };
    let subject = opchub_app::keys::billing_party(s, &p.user.id)
        .await
        .map_err(|_| GatewayError::Internal)?;
    Ok(opchub_gateway::Caller {
        key_id: key_id.clone(),
        subject,
    })
}

async fn body_bytes(body: Body) -> Result<bytes::Bytes, OpenAiError> {
    // A declared length over the limit is refused before reading anything.
    if axum::body::HttpBody::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(GatewayError::RequestTooLarge.into());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| GatewayError::RequestTooLarge.into())
}

pub async fn models(State(s): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, OpenAiError> {
    let g = gateway(&s)?;
    let c = gateway_caller(&s, &caller).await?;
    Ok(Json(g.models(&c).await?))
}

pub async fn chat_completions(State(s): State<AppState>, caller: Caller, body: Body) -> Result<Response, OpenAiError> {
    let g = gateway(&s)?;
    let c = gateway_caller(&s, &caller).await?;
    Ok(reply(g.chat(c, body_bytes(body).await?).await?))
}

pub async fn embeddings(State(s): State<AppState>, caller: Caller, body: Body) -> Result<Response, OpenAiError> {
    let g = gateway(&s)?;
    let c = gateway_caller(&s, &caller).await?;
    Ok(reply(g.embeddings(c, body_bytes(body).await?).await?))
}

// ---------------------------------------------------------------- channels and prices

pub use opchub_app::gateway::{
    create_channel_for, create_prices_for, item_code_ok, set_key_limits_for, ChannelStatus, NewChannelRequest, NewPriceTable,
    PriceTableStatus,
};

/// The gateway running in this process, as the administration use cases see it: its box seals
/// upstream keys, and every write of channels, prices or limits drops its caches through here.
impl GatewayPort for AppState {
    fn running(&self) -> bool {
        self.gateway.is_some()
    }
    fn seal(&self, secret: &str) -> Option<String> {
        self.gateway.as_ref().map(|g| g.secrets().seal(secret))
    }
    fn invalidate(&self) {
        if let Some(g) = &self.gateway {
            g.invalidate();
        }
    }
}

#[utoipa::path(post, path = "/api/v1/gateway/channels", tag = "gateway", request_body = NewChannelRequest, responses((status = 201, body = Channel), (status = 422)))]
pub async fn create_channel(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewChannelRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let ch = create_channel_for(&s, &s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(ch)).into_response())
}

#[utoipa::path(get, path = "/api/v1/gateway/channels", tag = "gateway", responses((status = 200, body = [Channel])))]
pub async fn channels(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Channel>>> {
    let p = caller.require()?;
    Ok(Json(app::channels_for(&s, p).await?))
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
    Ok(Json(app::set_channel_status_for(&s, &s, p, &id, &r.status).await?))
}

#[utoipa::path(post, path = "/api/v1/gateway/prices", tag = "gateway", request_body = NewPriceTable, responses((status = 201, body = PriceTable), (status = 409), (status = 422)))]
pub async fn create_prices(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewPriceTable>) -> ApiResult<Response> {
    let p = caller.require()?;
    let t = create_prices_for(&s, &s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// The price tables a caller sees, with their review status (a community operator its own,
/// the platform operator all).
#[utoipa::path(get, path = "/api/v1/gateway/prices", tag = "gateway", responses((status = 200, body = [PriceTableSummary])))]
pub async fn price_tables(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<PriceTableSummary>>> {
    let p = caller.require()?;
    Ok(Json(app::price_tables_for(&s, p).await?))
}

/// The platform operator's review of a price table (as of a channel): only approved tables
/// price usage.
#[utoipa::path(put, path = "/api/v1/gateway/prices/{operator_user_id}/{version}/status", tag = "gateway",
    params(("operator_user_id" = String, Path), ("version" = String, Path)), request_body = PriceTableStatus,
    responses((status = 200, body = PriceTableSummary), (status = 404), (status = 422)))]
pub async fn set_price_table_status(
    State(s): State<AppState>,
    caller: Caller,
    Path((operator_user_id, version)): Path<(String, String)>,
    ApiJson(r): ApiJson<PriceTableStatus>,
) -> ApiResult<Json<PriceTableSummary>> {
    let p = caller.require()?;
    Ok(Json(
        app::set_price_table_status_for(&s, &s, p, &operator_user_id, &version, &r.status).await?,
    ))
}

/// The platform operator's reference price list (vendors' public list prices, M2.2): an
/// operator's list price counts for the discount basis at most up to it.
#[utoipa::path(post, path = "/api/v1/gateway/reference-prices", tag = "gateway", request_body = app::NewReferencePrices,
    responses((status = 201, body = app::NewReferenceOutcome), (status = 409), (status = 422)))]
pub async fn create_reference_prices(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<app::NewReferencePrices>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let t = app::create_reference_prices_for(&s, &s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

/// The platform's reference price list (issue 18 item 3): every published version of every
/// model's and compute or data item's reference, newest effective first.
#[utoipa::path(get, path = "/api/v1/gateway/reference-prices", tag = "gateway",
    responses((status = 200, body = app::ReferencePrices), (status = 403)))]
pub async fn reference_prices(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<app::ReferencePrices>> {
    caller.require()?;
    Ok(Json(app::reference_prices_for(&s).await?))
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
    Ok(Json(set_key_limits_for(&s, &s, p, &id, &l).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    pub key_id: String,
}

#[utoipa::path(get, path = "/api/v1/gateway/requests", tag = "gateway", params(RequestsQuery), responses((status = 200, body = [RequestOutcome]), (status = 404)))]
pub async fn requests(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> ApiResult<Json<Vec<RequestOutcome>>> {
    let p = caller.require()?;
    Ok(Json(app::requests_for(&s, p, &q.key_id).await?))
}
