//! `/mcp`: one MCP endpoint (Streamable HTTP, the official Rust SDK `rmcp`) per invoker key
//! that aggregates the tools of every approved skill the invoker enabled, under namespaced
//! names `{skill-slug}__{tool}` (M2.3). `tools/list` shows the pinned (reviewed) tools;
//! `tools/call` is proxied to the publisher's MCP server (rmcp client) or HTTP tool and
//! counted once per (invoker, session, JSON-RPC id). Authentication is the route table's:
//! the invoker's `Authorization: Bearer opk_…`; the caller and the application state reach
//! the handler through the HTTP request's extensions.
//!
//! Also here: [`Upstreams`], the rmcp clients to publishers' servers.

use crate::auth::{Caller, Principal};
use crate::skills::{self, text_block, UpstreamError, UpstreamResult, NS};
use crate::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

pub type Service = StreamableHttpService<Hub, LocalSessionManager>;

/// The rmcp service behind `/mcp` (sessions kept in memory).
pub fn service() -> Service {
    // Every request is authenticated by its bearer key, so the Host/Origin allow-lists meant
    // for unauthenticated local servers do not apply to the platform's public endpoint.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_sse_keep_alive(Some(Duration::from_secs(15)));
    StreamableHttpService::new(|| Ok(Hub), Arc::new(LocalSessionManager::default()), config)
}

/// Route handler: hands the request (with the application state attached) to rmcp.
pub async fn handle(State(s): State<AppState>, mut req: Request) -> Response {
    req.extensions_mut().insert(s.clone());
    match s.skills.mcp_service().oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
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
        let mut tools = Vec::new();
        for (skill, version) in s.store.enabled_skills(&p.user.id).await.map_err(internal)? {
            for t in skills::pinned_tools(&version) {
                let mut description = t.description.clone();
                if skill.drifted_at.is_some() {
                    description.push_str("\n[OPC Hub: the publisher's server changed since review; calls are not counted as qualified]");
                }
                tools.push(json!({
                    "name": format!("{}{NS}{}", skill.slug, t.name),
                    "title": format!("{} · {}", skill.name, t.name),
                    "description": description,
                    "inputSchema": t.input_schema,
                }));
            }
        }
        serde_json::from_value(json!({ "tools": tools, "resultType": "complete" })).map_err(internal)
    }

    async fn call_tool(&self, request: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let (s, p, session) = from_ctx(&ctx)?;
        let unknown = || ErrorData::invalid_params(format!("unknown tool: {}", request.name), None);
        let Some((slug, tool)) = request.name.split_once(NS) else {
            return Err(unknown());
        };
        let skill = match s.store.skill_by_slug(slug).await.map_err(internal)? {
            Some(sk) => sk,
            None => return Err(unknown()),
        };
        let enabled = s.store.skill_enabled_ids(&p.user.id).await.map_err(internal)?;
        if !enabled.contains(&skill.id) {
            return Err(unknown());
        }
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
                let (message, _) = e.messages("en");
                Err(ErrorData::invalid_params(message, Some(json!({ "code": e.code }))))
            }
        }
    }
}

// ---------------------------------------------------------------- upstream clients

type Client = RunningService<RoleClient, ()>;

/// rmcp clients to publishers' MCP servers, one session per URL, reconnected on failure.
/// Every connection goes through the publisher HTTP client (rustls for https, the guarded
/// resolver, no redirects).
pub struct Upstreams {
    http: Result<reqwest_publisher::Client, Finding>,
    clients: tokio::sync::Mutex<HashMap<String, Arc<Client>>>,
}

impl Upstreams {
    pub fn new(http: Result<reqwest_publisher::Client, Finding>) -> Self {
        Upstreams {
            http,
            clients: tokio::sync::Mutex::default(),
        }
    }
}

async fn connect(http: &Result<reqwest_publisher::Client, Finding>, url: &str, timeout: Duration) -> Result<Client, Finding> {
    let http = http.as_ref().map_err(Clone::clone)?;
    let transport =
        StreamableHttpClientTransport::with_client(http.clone(), StreamableHttpClientTransportConfig::with_uri(url.to_string()));
    match tokio::time::timeout(timeout, ().serve(transport)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Finding::new("upstream_unreachable", e.to_string())),
        Err(_) => Err(Finding::new("upstream_unreachable", "timeout")),
    }
}

fn tool_of(t: rmcp::model::Tool) -> Tool {
    Tool {
        name: t.name.to_string(),
        description: t.description.map(|d| d.to_string()).unwrap_or_default(),
        input_schema: Value::Object((*t.input_schema).clone()),
        http: None,
    }
}

impl Upstreams {
    /// The server's current tool list, on a fresh session (no cached list).
    pub async fn list_tools(&self, url: &str, timeout: Duration) -> Result<Vec<Tool>, Finding> {
        let client = connect(&self.http, url, timeout).await?;
        let listed = tokio::time::timeout(timeout, client.list_all_tools()).await;
        let _ = client.cancel().await;
        match listed {
            Ok(Ok(tools)) => Ok(tools.into_iter().map(tool_of).collect()),
            Ok(Err(e)) => Err(Finding::new("upstream_unreachable", e.to_string())),
            Err(_) => Err(Finding::new("upstream_unreachable", "timeout")),
        }
    }

    async fn client(&self, url: &str, timeout: Duration) -> Result<Arc<Client>, UpstreamError> {
        let mut map = self.clients.lock().await;
        if let Some(c) = map.get(url) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(
            connect(&self.http, url, timeout)
                .await
                .map_err(|f| UpstreamError::Failed(f.detail))?,
        );
        map.insert(url.to_string(), c.clone());
        Ok(c)
    }

    async fn forget(&self, url: &str) {
        self.clients.lock().await.remove(url);
    }

    pub async fn call_tool(
        &self,
        url: &str,
        name: &str,
        args: Map<String, Value>,
        timeout: Duration,
    ) -> Result<UpstreamResult, UpstreamError> {
        let client = self.client(url, timeout).await?;
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        let res = match tokio::time::timeout(timeout, client.peer().call_tool(params)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => {
                self.forget(url).await;
                return Err(UpstreamError::Failed(e.to_string()));
            }
            Ok(Ok(r)) => r,
        };
        let v = serde_json::to_value(&res).unwrap_or(Value::Null);
        let content = v["content"].as_array().cloned().unwrap_or_else(|| vec![text_block("")]);
        Ok(UpstreamResult {
            is_error: res.is_error.unwrap_or(false),
            content,
            structured: res.structured_content.clone(),
        })
    }
}
