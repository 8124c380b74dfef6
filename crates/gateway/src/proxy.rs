//! Request flow of `/v1/models`, `/v1/chat/completions` (plain and SSE) and `/v1/embeddings`:
//! check the key's limits, hold the budget, pick a channel, forward, pass the bytes back,
//! read the usage, then settle the budget and append one set of ledger events per request.
//!
//! Metering is committed right after the caller has its answer, never on the answer's path: the
//! plain body (like a stream's last chunk) leaves as soon as upstream's usage is read, and the
//! ledger writer group-commits the events, the outcome row and the budget settlement in the
//! background. [`Gateway::drain`] waits for those commits at shutdown.

use crate::error::GatewayError;
use crate::ratelimit::RateLimiter;
use crate::secret::SecretBox;
use crate::usage::{cost_fen, forwarded, parse_usage, prompt_text, response_text, SseScanner, Usage};
use bytes::Bytes;
use futures_util::StreamExt;
use opchub_ledger::metering::{self, TokenKind};
use opchub_store::cache::SwrCache;
use opchub_store::gateway::{Channel, KeyLimits, ModelPrice, RequestOutcome};
use opchub_store::ledger::{Item, LedgerWriter, SideWrite};
use opchub_store::{now_ms, Store};
use rand::Rng;
use reqwest::header::{self, HeaderValue};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a model endpoint answers when it does not fail: the upstream's reply, passed through.
pub enum Reply {
    /// A whole body (a completion, embeddings, or the upstream's own error), with the
    /// upstream's status and content type.
    Body {
        status: u16,
        content_type: Option<String>,
        request_id: String,
        body: Bytes,
    },
    /// A server-sent event stream, relayed chunk by chunk as upstream sends it.
    Stream {
        content_type: Option<String>,
        request_id: String,
        chunks: tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>>,
    },
}

pub type GatewayResult<T> = Result<T, GatewayError>;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// After a client disconnects mid-stream, keep reading upstream this long…
    pub drain_timeout: Duration,
    /// …and at most this many bytes, to learn the final usage.
    pub drain_bytes: usize,
    /// Largest non-streaming upstream response read.
    pub max_response_bytes: usize,
    /// Output tokens assumed for the budget hold when the request sets no `max_tokens`.
    pub default_max_tokens: i64,
    /// Most requests handled at once (a stream counts until its relay ends). Beyond it a
    /// request is refused at once with 503 `overloaded` and `Retry-After`, before any work:
    /// under overload the gateway keeps answering quickly and its memory stays bounded,
    /// instead of every request waiting longer and longer.
    pub max_in_flight: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            drain_timeout: Duration::from_secs(30),
            drain_bytes: 8 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            default_max_tokens: 4096,
            max_in_flight: 4096,
        }
    }
}

/// Who calls: the API key and the party the usage is booked to (the OPC, else the user).
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub subject: String,
}

/// Short-lived copies of what every request reads (channels, key limits, prices): each would
/// otherwise be a database round trip per request. Stale-while-revalidate (see
/// [`opchub_store::cache`]): served as is for [`CACHE_TTL`], then served while one request
/// refreshes it in the background, never past [`CACHE_MAX_AGE`]. Writes through this process's
/// API call [`Gateway::invalidate`]; other replicas see changes within [`CACHE_MAX_AGE`].
type PriceInForce = Option<(String, ModelPrice)>;

struct Caches {
    channels: Arc<SwrCache<(), Vec<Channel>>>,
    limits: Arc<SwrCache<String, KeyLimits>>,
    /// (operator, model) → the price in force and its version.
    prices: Arc<SwrCache<(String, String), PriceInForce>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            channels: Arc::new(SwrCache::new(CACHE_TTL, CACHE_MAX_AGE, 16)),
            limits: Arc::new(SwrCache::new(CACHE_TTL, CACHE_MAX_AGE, 10_000)),
            prices: Arc::new(SwrCache::new(CACHE_TTL, CACHE_MAX_AGE, 10_000)),
        }
    }
}

pub const CACHE_TTL: Duration = Duration::from_secs(2);
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(4);

pub struct Gateway {
    caches: Caches,
    store: Store,
    ledger: LedgerWriter,
    secrets: SecretBox,
    http: reqwest::Client,
    requests: RateLimiter,
    tokens: RateLimiter,
    config: GatewayConfig,
    /// Streams being relayed and metering not yet committed.
    background: tokio_util::task::TaskTracker,
    /// One permit per request being handled ([`GatewayConfig::max_in_flight`]).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Each channel's health as this process last wrote it (see [`Gateway::note_health`]).
    health: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

/// What one request has to settle at the end.
struct Pending {
    request_id: String,
    caller: Caller,
    model: String,
    endpoint: &'static str,
    month: String,
    held: i64,
    started: i64,
}

/// Built once per request and moved once: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Upstream {
    Ok {
        channel: Channel,
        price_version: String,
        price: ModelPrice,
        resp: Box<reqwest::Response>,
    },
    Failed {
        status: StatusCode,
        message: String,
    },
}

fn month_now() -> String {
    opchub_ledger::event::period_of(now_ms())
}

fn seconds_to_next_month() -> u64 {
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    use chrono::Datelike;
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|next| (next - now.naive_utc()).num_seconds().max(1) as u64)
        .unwrap_or(3600)
}

impl Gateway {
    pub fn new(store: Store, ledger: LedgerWriter, secrets: SecretBox, config: GatewayConfig) -> Gateway {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Gateway {
            caches: Caches::default(),
            store,
            ledger,
            secrets,
            http,
            requests: RateLimiter::default(),
            tokens: RateLimiter::default(),
            background: tokio_util::task::TaskTracker::new(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            health: Default::default(),
            config,
        }
    }

    /// Waits until every relayed stream has ended and all metering has been committed (call
    /// after the HTTP server stopped taking requests). New requests may still be served.
    pub async fn drain(&self) {
        self.background.close();
        self.background.wait().await;
        self.background.reopen();
        if let Err(e) = self.ledger.flush().await {
            tracing::error!(error = %e, "metering not committed at shutdown");
        }
    }

    /// Meters a finished request in the background (see the module notes).
    #[allow(clippy::too_many_arguments)]
    fn finish_later(
        self: &Arc<Self>,
        p: Pending,
        b: Option<Billing>,
        http_status: i64,
        outcome: &'static str,
        usage: Option<Usage>,
        estimated: bool,
    ) {
        let me = self.clone();
        self.background.spawn(async move {
            me.finish(&p, b.as_ref(), http_status, outcome, usage, estimated).await;
        });
    }

    /// Records a channel's health as a request found it, off the request's path and once per
    /// change this process sees: without this, every request would write the same flag (and
    /// wait for SQLite's write lock) until the channel cache refreshed.
    fn note_health(&self, c: &Channel, healthy: bool, error: Option<&str>) {
        {
            // The usual case (no change) neither allocates nor writes the map.
            let mut seen = self.health.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get(&c.id).copied().unwrap_or(c.healthy) == healthy {
                return;
            }
            seen.insert(c.id.clone(), healthy);
        }
        let (store, id, error) = (self.store.clone(), c.id.clone(), error.map(str::to_string));
        self.background.spawn(async move {
            if let Err(e) = store.set_channel_health(&id, healthy, error.as_deref()).await {
                tracing::warn!(channel = %id, error = %e, "channel health not recorded");
            }
        });
    }

    /// Forgets the cached channels, limits and prices (after a change through this process).
    pub fn invalidate(&self) {
        self.caches.channels.clear();
        self.caches.limits.clear();
        self.caches.prices.clear();
    }

    async fn approved_channels(&self) -> opchub_store::Result<Vec<Channel>> {
        let store = self.store.clone();
        let c = self
            .caches
            .channels
            .get_or_fetch((), |_| true, |()| async move { store.approved_channels().await.map(Some) });
        Ok(c.await?.unwrap_or_default())
    }

    async fn key_limits(&self, key_id: &str) -> opchub_store::Result<KeyLimits> {
        let store = self.store.clone();
        let l = self.caches.limits.get_or_fetch(
            key_id.to_string(),
            |_| true,
            |k| async move { store.key_limits(&k).await.map(Some) },
        );
        l.await?.ok_or(opchub_store::StoreError::NotFound)
    }

    /// The price in force now for (operator, model).
    async fn price_at(&self, operator: &str, model: &str) -> opchub_store::Result<PriceInForce> {
        let store = self.store.clone();
        let p = self.caches.prices.get_or_fetch(
            (operator.to_string(), model.to_string()),
            |_| true,
            |(o, m)| async move { store.price_at(&o, &m, now_ms()).await.map(Some) },
        );
        Ok(p.await?.flatten())
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// `GET /v1/models`: the models this key may use on approved channels.
    pub async fn models(&self, caller: &Caller) -> GatewayResult<Value> {
        let (channels, limits) = match (self.approved_channels().await, self.key_limits(&caller.key_id).await) {
            (Ok(c), Ok(l)) => (c, l),
            _ => return Err(GatewayError::Internal),
        };
        let mut models: Vec<&str> = channels.iter().flat_map(|c| c.models.iter().map(String::as_str)).collect();
        models.sort_unstable();
        models.dedup();
        let data: Vec<Value> = models
            .into_iter()
            .filter(|m| limits.allowed_models.is_empty() || limits.allowed_models.iter().any(|a| a == m))
            .map(|m| serde_json::json!({ "id": m, "object": "model", "created": 0, "owned_by": "opchub" }))
            .collect();
        Ok(serde_json::json!({ "object": "list", "data": data }))
    }

    pub async fn chat(self: Arc<Self>, caller: Caller, body: Bytes) -> GatewayResult<Reply> {
        self.handle(caller, body, "chat/completions").await
    }

    pub async fn embeddings(self: Arc<Self>, caller: Caller, body: Bytes) -> GatewayResult<Reply> {
        self.handle(caller, body, "embeddings").await
    }

    async fn handle(self: Arc<Self>, caller: Caller, body: Bytes, endpoint: &'static str) -> GatewayResult<Reply> {
        // Refused before any work (parsing, caches, upstream): nothing is charged or recorded.
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            // Counted, not logged: under overload a log line per refusal would add to the load.
            metrics::counter!("opchub_gateway_overloaded_total").increment(1);
            return Err(GatewayError::Overloaded);
        };
        let Ok(req) = serde_json::from_slice::<Value>(&body) else {
            return Err(GatewayError::InvalidJson);
        };
        if !req.is_object() {
            return Err(GatewayError::NotAnObject);
        }
        let Some(model) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
            return Err(GatewayError::MissingModel);
        };
        let stream = match req.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(GatewayError::StreamNotBoolean),
        };
        if endpoint == "embeddings" && stream {
            return Err(GatewayError::EmbeddingsDoNotStream);
        }
        let limits = self.key_limits(&caller.key_id).await.map_err(|_| GatewayError::Internal)?;
        if !limits.allowed_models.is_empty() && !limits.allowed_models.contains(&model) {
            return Err(GatewayError::ModelNotAllowed(model));
        }
        // The prompt is tokenised only when a limit needs the estimate (tokens per minute, or
        // the budget hold): the tokenizer is the costliest step of an unlimited request.
        let prompt_estimate = if limits.tpm > 0 || limits.monthly_budget_fen > 0 {
            estimate_tokens(&prompt_text(&req))
        } else {
            0
        };
        let max_out = if endpoint == "embeddings" {
            0
        } else {
            req.get("max_tokens")
                .or(req.get("max_completion_tokens"))
                .and_then(Value::as_i64)
                .unwrap_or(self.config.default_max_tokens)
                .max(0)
        };
        if limits.rpm > 0 {
            if let Err(wait) = self.requests.check(&caller.key_id, limits.rpm, 1) {
                return Err(GatewayError::RequestsPerMinute { retry_after: wait });
            }
        }
        if limits.tpm > 0 {
            let want = (prompt_estimate + max_out).clamp(1, u32::MAX as i64) as u32;
            if let Err(wait) = self.tokens.check(&caller.key_id, limits.tpm, want) {
                return Err(GatewayError::TokensPerMinute { retry_after: wait });
            }
        }
        // Channels serving the model, in failover order.
        let channels = match self.approved_channels().await {
            Ok(c) => order_channels(c.into_iter().filter(|c| c.models.contains(&model)).collect()),
            Err(_) => return Err(GatewayError::Internal),
        };
        if channels.is_empty() {
            return Err(GatewayError::ModelNotFound(model));
        }
        // Budget: hold the most this request could cost at the highest OPC price among the
        // channels that may serve it; settle to the actual cost afterwards.
        let mut hold = 0i64;
        for c in &channels {
            if let Ok(Some((_, p))) = self.price_at(&c.operator_user_id, &model).await {
                hold = hold.max(cost_fen(prompt_estimate, p.opc_input) + cost_fen(max_out, p.opc_output));
            }
        }
        let month = month_now();
        if limits.monthly_budget_fen > 0 {
            match self
                .store
                .hold_budget(&caller.key_id, &month, limits.monthly_budget_fen, hold)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return Err(GatewayError::BudgetExceeded {
                        retry_after: seconds_to_next_month(),
                    })
                }
                Err(_) => return Err(GatewayError::Internal),
            }
        } else {
            hold = 0;
        }
        let pending = Pending {
            request_id: format!("req_{}", uuid::Uuid::now_v7().simple()),
            caller,
            model,
            endpoint,
            month,
            held: hold,
            started: now_ms(),
        };
        let client_asked_usage = req
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let upstream_body = if stream && !client_asked_usage {
            let mut r = req.clone();
            if let Some(o) = r.as_object_mut() {
                let so = o.entry("stream_options").or_insert_with(|| serde_json::json!({}));
                if let Some(so) = so.as_object_mut() {
                    so.insert("include_usage".into(), Value::Bool(true));
                }
            }
            Bytes::from(serde_json::to_vec(&r).unwrap_or_default())
        } else {
            body
        };
        match self.forward(&channels, &pending, upstream_body).await {
            Upstream::Failed { status, message } => {
                self.finish_later(pending, None, status.as_u16() as i64, "upstream_error", None, false);
                Err(GatewayError::UpstreamFailed(format!("{status}: {message}")))
            }
            Upstream::Ok {
                channel,
                price_version,
                price,
                resp,
            } => {
                let status = resp.status();
                let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
                let billing = Billing {
                    channel,
                    price_version,
                    price,
                };
                if stream && status.is_success() {
                    Ok(self.stream_response(pending, billing, *resp, client_asked_usage, &req, content_type, permit))
                } else {
                    self.plain_response(pending, billing, *resp, &req, content_type).await
                }
            }
        }
    }

    /// Tries channels in order; moves on after a connect error, timeout, 429 or 5xx that
    /// happened before any byte reached the client.
    async fn forward(&self, channels: &[Channel], p: &Pending, body: Bytes) -> Upstream {
        let mut last = (StatusCode::BAD_GATEWAY, "no channel".to_string());
        for c in channels {
            let Ok(Some((version, price))) = self.price_at(&c.operator_user_id, &p.model).await else {
                last = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("channel {} has no price for this model", c.name),
                );
                continue;
            };
            let Ok(secret) = self.secrets.open(&c.secret_enc) else {
                last = (StatusCode::BAD_GATEWAY, format!("channel {} secret unreadable", c.name));
                continue;
            };
            let url = format!("{}/{}", c.base_url.trim_end_matches('/'), p.endpoint);
            let send = self
                .http
                .post(&url)
                .bearer_auth(secret)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send();
            match tokio::time::timeout(Duration::from_millis(c.timeout_ms.max(100) as u64), send).await {
                Err(_) => {
                    self.note_health(c, false, Some("timeout"));
                    last = (StatusCode::GATEWAY_TIMEOUT, format!("channel {} timed out", c.name));
                }
                Ok(Err(e)) => {
                    self.note_health(c, false, Some("connect error"));
                    last = (
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "channel {}: {}",
                            c.name,
                            if e.is_connect() { "connect error" } else { "request error" }
                        ),
                    );
                }
                Ok(Ok(resp)) if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status().is_server_error() => {
                    self.note_health(c, false, Some(resp.status().as_str()));
                    last = (resp.status(), format!("channel {} answered {}", c.name, resp.status()));
                }
                Ok(Ok(resp)) => {
                    self.note_health(c, true, None);
                    return Upstream::Ok {
                        channel: c.clone(),
                        price_version: version,
                        price,
                        resp: Box::new(resp),
                    };
                }
            }
        }
        Upstream::Failed {
            status: last.0,
            message: last.1,
        }
    }

    async fn plain_response(
        self: Arc<Self>,
        p: Pending,
        b: Billing,
        resp: reqwest::Response,
        req: &Value,
        content_type: Option<HeaderValue>,
    ) -> GatewayResult<Reply> {
        let status = resp.status();
        let bytes = match read_limited(resp, self.config.max_response_bytes).await {
            Ok(b) => b,
            Err(_) => {
                self.finish_later(p, Some(b), 502, "upstream_error", None, false);
                return Err(GatewayError::UpstreamUnreadable);
            }
        };
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() && parsed.is_none() {
            // A success whose body is not JSON (truncated, garbled): nothing a client can read
            // was delivered, so nothing is charged, and the client gets a clear error.
            self.finish_later(p, Some(b), 502, "upstream_error", None, false);
            return Err(GatewayError::UpstreamUnreadable);
        }
        let (usage, estimated) = if status.is_success() {
            match parsed.as_ref().and_then(|v| v.get("usage")).and_then(parse_usage) {
                Some(u) => (Some(u), false),
                // No usage from the provider: count with the tokenizer and say so.
                None => {
                    let completion = parsed.as_ref().map(response_text).unwrap_or_default();
                    (
                        Some(Usage {
                            prompt: estimate_tokens(&prompt_text(req)),
                            cached: 0,
                            completion: estimate_tokens(&completion),
                        }),
                        true,
                    )
                }
            }
        } else {
            (None, false)
        };
        let outcome = if status.is_success() { "ok" } else { "upstream_error" };
        let request_id = p.request_id.clone();
        self.finish_later(p, Some(b), status.as_u16() as i64, outcome, usage, estimated);
        Ok(Reply::Body {
            status: status.as_u16(),
            content_type: content_type.and_then(|ct| ct.to_str().ok().map(str::to_string)),
            request_id,
            body: bytes,
        })
    }

    /// Relays the stream from a task of its own, which holds the request's in-flight `permit`
    /// until the relay (and any draining after a disconnect) ends.
    #[allow(clippy::too_many_arguments)]
    fn stream_response(
        self: Arc<Self>,
        p: Pending,
        b: Billing,
        resp: reqwest::Response,
        client_asked_usage: bool,
        req: &Value,
        content_type: Option<HeaderValue>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Reply {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        let prompt = prompt_text(req);
        let request_id = p.request_id.clone();
        let me = self.clone();
        self.background.spawn(async move {
            let mut scanner = SseScanner::new(client_asked_usage);
            let mut upstream = resp.bytes_stream();
            let mut client_gone_at: Option<Instant> = None;
            let mut drained = 0usize;
            let mut aborted = false;
            loop {
                let next = if let Some(t) = client_gone_at {
                    let left = me.config.drain_timeout.saturating_sub(t.elapsed());
                    match tokio::time::timeout(left, upstream.next()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    }
                } else {
                    upstream.next().await
                };
                let Some(chunk) = next else { break };
                let Ok(chunk) = chunk else {
                    aborted = true;
                    break;
                };
                if client_gone_at.is_some() {
                    drained += chunk.len();
                }
                let events = scanner.push(&chunk);
                if client_gone_at.is_none() {
                    if let Some(bytes) = forwarded(events) {
                        if tx.send(Ok(bytes)).await.is_err() {
                            // The client went away: keep reading (bounded) to learn the usage.
                            client_gone_at = Some(Instant::now());
                        }
                    }
                }
                if drained > me.config.drain_bytes {
                    break;
                }
            }
            if let Some(ev) = scanner.finish() {
                if ev.forward && client_gone_at.is_none() {
                    let _ = tx.send(Ok(ev.bytes)).await;
                }
            }
            drop(tx);
            drop(permit);
            let (usage, estimated) = match scanner.usage() {
                Some(u) => (u, false),
                None => (
                    Usage {
                        prompt: estimate_tokens(&prompt),
                        cached: 0,
                        completion: estimate_tokens(scanner.text()),
                    },
                    true,
                ),
            };
            let outcome = if client_gone_at.is_some() {
                "client_disconnected"
            } else if aborted || !scanner.done() {
                "upstream_aborted"
            } else {
                "ok"
            };
            me.finish(&p, Some(&b), 200, outcome, Some(usage), estimated).await;
        });
        Reply::Stream {
            content_type: content_type.and_then(|ct| ct.to_str().ok().map(str::to_string)),
            request_id,
            chunks: tokio_stream::wrappers::ReceiverStream::new(rx),
        }
    }

    /// Settles the budget, appends the ledger events (one set per request, keyed by its id)
    /// and records the outcome. A request with no usage costs nothing.
    async fn finish(&self, p: &Pending, b: Option<&Billing>, http_status: i64, outcome: &str, usage: Option<Usage>, estimated: bool) {
        let u = usage.unwrap_or_default();
        let mut list_total = 0;
        let mut charged_total = 0;
        let mut items = vec![];
        if let Some(b) = b {
            let fresh = (u.prompt - u.cached).max(0);
            let parts = [
                (TokenKind::Input, fresh, b.price.list_input, b.price.opc_input),
                (TokenKind::CachedInput, u.cached, b.price.list_cached, b.price.opc_cached),
                (TokenKind::Output, u.completion, b.price.list_output, b.price.opc_output),
            ];
            let request = metering::GatewayRequest {
                request_id: &p.request_id,
                subject: &p.caller.subject,
                operator_user_id: &b.channel.operator_user_id,
                channel_id: &b.channel.id,
                model: &p.model,
                endpoint: p.endpoint,
                price_version: &b.price_version,
                estimated,
                outcome,
                started_ms: p.started,
            };
            for (kind, q, list_p, opc_p) in parts {
                if q <= 0 {
                    continue;
                }
                // Exact per event; the request's own totals (its log row, the key's budget)
                // are the events' fen rounded per kind (issue 17 item 6: bills, statements
                // and settlement add the exact amounts and round once per line).
                let e = metering::token(&request, kind, q, list_p, opc_p);
                list_total += e.list_fen;
                charged_total += e.charged_fen;
                items.push(Item::Event(e));
            }
        }
        let o = RequestOutcome {
            request_id: p.request_id.clone(),
            api_key_id: p.caller.key_id.clone(),
            subject: p.caller.subject.clone(),
            channel_id: b.map(|b| b.channel.id.clone()),
            model: p.model.clone(),
            endpoint: p.endpoint.to_string(),
            outcome: outcome.to_string(),
            http_status,
            prompt_tokens: u.prompt,
            cached_tokens: u.cached,
            completion_tokens: u.completion,
            estimated,
            list_fen: list_total,
            charged_fen: charged_total,
            created_at: p.started,
            // Arrival to the last byte relayed (a stream has ended by now): the console's log.
            latency_ms: Some((now_ms() - p.started).max(0)),
        };
        // One commit for the metering events, the budget settlement and the outcome row: the
        // ledger writer groups it with concurrent requests' (no write transaction per request).
        let mut side = vec![SideWrite::Request(o)];
        if p.held > 0 || charged_total > 0 {
            side.push(SideWrite::SettleBudget {
                api_key_id: p.caller.key_id.clone(),
                month: p.month.clone(),
                held: p.held,
                actual: charged_total,
                only_if_stored: None,
            });
        }
        // Nobody waits on this commit (the answer has left): queued for the writer, which
        // batches it with others and logs a failure itself.
        if let Err(e) = self.ledger.append_background(items, side).await {
            tracing::error!(request = %p.request_id, error = %e, "metering failed");
        }
    }
}

struct Billing {
    channel: Channel,
    price_version: String,
    price: ModelPrice,
}

/// Priority first; within a priority, healthy channels first, then a weighted random order.
fn order_channels(mut cs: Vec<Channel>) -> Vec<Channel> {
    let mut rng = rand::thread_rng();
    let mut keyed: Vec<(i64, bool, f64, Channel)> = cs
        .drain(..)
        .map(|c| {
            let w = c.weight.max(1) as f64;
            // Efraimidis–Spirakis: key = u^(1/w), larger first.
            let key = rng.gen::<f64>().powf(1.0 / w);
            (c.priority, c.healthy, key, c)
        })
        .collect();
    keyed.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    keyed.into_iter().map(|(_, _, _, c)| c).collect()
}

async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Bytes, ()> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|_| ())?;
        if out.len() + chunk.len() > limit {
            return Err(());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Tokens of `text` under the cl100k tokenizer, used only when a provider reports no usage
/// (the events are then marked `estimated`).
pub fn estimate_tokens(text: &str) -> i64 {
    static BPE: std::sync::OnceLock<Option<tiktoken_rs::CoreBPE>> = std::sync::OnceLock::new();
    if text.is_empty() {
        return 0;
    }
    match BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()) {
        Some(bpe) => bpe.encode_with_special_tokens(text).len() as i64,
        None => (text.chars().count() as i64 + 3) / 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokenizer_counts_simple_words_one_each() {
        assert_eq!(estimate_tokens("hello hello hello"), 3);
        assert_eq!(estimate_tokens(""), 0);
    }
}
