//! `/mcp`: one MCP endpoint (Streamable HTTP, the official Rust SDK `rmcp`) per invoker key
//! that aggregates the tools of every approved skill the invoker enabled, under namespaced
//! names `{skill-slug}__{tool}` (M2.3). `tools/list` shows the pinned (reviewed) tools;
//! `tools/call` is proxied to the publisher's MCP server (rmcp client) or HTTP tool and
//! counted once per (invoker, session, JSON-RPC id). Authentication is the route table's:
//! the invoker's `Authorization: Bearer opk_…`; the caller and the application state reach
//! the handler through the HTTP request's extensions. A thin adapter: listing and calling are
//! the application's (`opchub_app::skills`, where the rmcp clients to publishers' servers live).

use crate::auth::{Caller, Principal};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opchub_app::skills::{self, NS};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt as _;

/// The rmcp service behind `/mcp` (sessions kept in memory), with who opened which session.
pub struct Service {
    http: StreamableHttpService<Hub, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    /// Caller (`key:<api key id>` or `user:<user id>`) → its open sessions, oldest first.
    owners: Mutex<HashMap<String, VecDeque<String>>>,
}

/// Open `/mcp` sessions one caller (API key, or the user of a browser session) may hold; the
/// oldest is closed when a new one would exceed it, so one key cannot grow the server's memory
/// without bound (each session holds a worker and its buffers).
pub const MAX_SESSIONS_PER_CALLER: usize = 32;

/// The rmcp service behind `/mcp`.
pub fn service() -> Service {
    // Every request is authenticated by its bearer key, so the Host/Origin allow-lists meant
    // for unauthenticated local servers do not apply to the platform's public endpoint.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_sse_keep_alive(Some(Duration::from_secs(15)));
    let sessions = Arc::new(LocalSessionManager::default());
    Service {
        http: StreamableHttpService::new(|| Ok(Hub), sessions.clone(), config),
        sessions,
        owners: Mutex::default(),
    }
}

fn owner_of(req: &Request) -> Option<String> {
    let p = req.extensions().get::<Caller>()?.0.as_ref()?;
    Some(match &p.via {
        crate::auth::Via::ApiKey { key_id, .. } => format!("key:{key_id}"),
        _ => format!("user:{}", p.user.id),
    })
}

fn session_header(h: &axum::http::HeaderMap) -> Option<String> {
    h.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Route handler: hands the request (with the application state attached) to rmcp. A session
/// is used only by the caller that opened it (another caller's id is "not found"); a caller's
/// sessions beyond [`MAX_SESSIONS_PER_CALLER`] close the oldest. rmcp's own refusals (406, 415,
/// 400, 404, 405 as text) are answered as JSON-RPC error objects.
pub async fn handle(State(s): State<AppState>, mut req: Request) -> Response {
    let svc = s.mcp.get_or_init(service);
    let owner = owner_of(&req).unwrap_or_default();
    let asked = session_header(req.headers());
    if let Some(sid) = &asked {
        let owned = lock(&svc.owners).get(&owner).is_some_and(|q| q.contains(sid));
        if !owned {
            return rpc_error(StatusCode::NOT_FOUND, -32001, "Session not found", "mcp_session_not_found");
        }
    }
    let deleting = req.method() == axum::http::Method::DELETE;
    req.extensions_mut().insert(s.clone());
    let resp = match svc.http.clone().oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    };
    if deleting {
        if let (Some(sid), true) = (&asked, resp.status().is_success()) {
            if let Some(q) = lock(&svc.owners).get_mut(&owner) {
                q.retain(|x| x != sid);
            }
        }
    }
    if asked.is_none() && resp.status().is_success() {
        if let Some(sid) = session_header(resp.headers()) {
            let evicted = {
                let mut owners = lock(&svc.owners);
                let q = owners.entry(owner).or_default();
                q.push_back(sid);
                let mut out = Vec::new();
                while q.len() > MAX_SESSIONS_PER_CALLER {
                    out.extend(q.pop_front());
                }
                out
            };
            for old in evicted {
                let id: rmcp::transport::streamable_http_server::session::SessionId = old.into();
                let _ = svc.sessions.close_session(&id).await;
            }
        }
    }
    json_rpc_errors(resp).await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A JSON-RPC error object (`id` null: the request's id is not known here) with the HTTP status
/// rmcp chose and our stable code in `data.code`.
fn rpc_error(status: StatusCode, code: i64, message: &str, stable: &str) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message, "data": { "code": stable } } });
    (status, axum::Json(body)).into_response()
}

/// rmcp answers its transport-level refusals as `text/plain` (or without a type): those become
/// JSON-RPC error objects, keeping the status and rmcp's text as the message.
async fn json_rpc_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/json") || ct.starts_with("text/event-stream") {
        return resp;
    }
    let (code, stable) = match status {
        StatusCode::NOT_ACCEPTABLE => (-32600, "mcp_not_acceptable"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (-32600, "mcp_unsupported_media_type"),
        StatusCode::METHOD_NOT_ALLOWED => (-32600, "method_not_allowed"),
        StatusCode::NOT_FOUND => (-32001, "mcp_session_not_found"),
        StatusCode::BAD_REQUEST => (-32600, "mcp_invalid_request"),
        s if s.is_server_error() => (-32603, "internal"),
        _ => (-32600, "request_failed"),
    };
    let text = match axum::body::to_bytes(resp.into_body(), 4096).await {
        Ok(b) if !status.is_server_error() => String::from_utf8_lossy(&b).trim().to_string(),
        _ => String::new(),
    };
    // rmcp answers a JSON body that is not a JSON-RPC message (or no JSON at all) with 415, as
    // if the content type were wrong; it is an invalid request (400, JSON-RPC -32600), found by
    // fuzzing (issue 20).
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        if let Some(detail) = text.strip_prefix("fail to deserialize request body") {
            let message = format!("not a JSON-RPC message:{detail}");
            return rpc_error(StatusCode::BAD_REQUEST, -32600, &message, "mcp_invalid_message");
        }
    }
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    rpc_error(status, code, &message, stable)
}

/// The aggregating MCP server (stateless: everything comes from the request).
#[derive(Clone, Copy)]
pub struct Hub;

fn from_ctx(ctx: &RequestContext<RoleServer>) -> Result<(AppState, Principal, String), ErrorData> {
    let parts = ctx
        .extensions
        .get::<axum::http::request::Parts>()
        .ok_or_else(|| ErrorData::internal_error("no HTTP request", None))?;
    let state = parts
        .extensions
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("no state", None))?;
    let principal = parts
        .extensions
        .get::<Caller>()
        .and_then(|c| c.0.clone())
        .ok_or_else(|| ErrorData::invalid_request("Use an API key: Authorization: Bearer opk_…", None))?;
    // A retry is the same (session, JSON-RPC id). Stateless requests (no session) are the
    // same call only when they carry the same Idempotency-Key; otherwise each one counts.
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 200)
    };
    let session = match (header("mcp-session-id"), header("idempotency-key")) {
        (Some(sid), _) => format!("session:{sid}"),
        (None, Some(k)) => format!("key:{k}"),
        (None, None) => format!("request:{}", opchub_store::new_id()),
    };
    Ok((state, principal, session))
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

impl ServerHandler for Hub {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("opchub-skill-store", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "OPC Hub Skill Store: the tools of every skill you enabled, named {skill}__{tool}. Every call is counted (M2.3).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (s, p, _) = from_ctx(&ctx)?;
        let tools: Vec<serde_json::Value> = skills::enabled_tools(&s, &p)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|t| json!({ "name": t.name, "title": t.title, "description": t.description, "inputSchema": t.input_schema }))
            .collect();
        serde_json::from_value(json!({ "tools": tools, "resultType": "complete" })).map_err(internal)
    }

    async fn call_tool(&self, request: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let (s, p, session) = from_ctx(&ctx)?;
        let unknown = || ErrorData::invalid_params(format!("unknown tool: {}", request.name), None);
        let Some((slug, tool)) = request.name.split_once(NS) else {
            return Err(unknown());
        };
        let Some(skill) = skills::enabled_skill(&s, &p, slug).await.map_err(internal)? else {
            return Err(unknown());
        };
        let rpc_id = serde_json::to_string(&ctx.id).unwrap_or_default();
        let res = skills::call(
            &s,
            &p,
            skills::CallRequest {
                skill: &skill,
                tool,
                arguments: request.arguments.clone().unwrap_or_default(),
                request: format!("mcp:{session}"),
                rpc_id,
            },
        )
        .await;
        match res {
            Ok(r) => {
                let v = json!({
                    "resultType": "complete",
                    "content": r.content,
                    "isError": r.is_error,
                    "structuredContent": r.structured_content,
                });
                let mut v = v;
                if r.structured_content.is_none() {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("structuredContent");
                    }
                }
                let result: CallToolResult = serde_json::from_value(v).map_err(internal)?;
                Ok(result.into())
            }
            // Refused before anything was called or counted: a protocol error for the client.
            Err(e) => {
                let e = ApiError::from(e);
                let (message, _) = e.messages("en");
                Err(ErrorData::invalid_params(message, Some(json!({ "code": e.code }))))
            }
        }
    }
}
