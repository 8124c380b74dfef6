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
use axum::response::{IntoResponse, Response};
use opchub_app::skills::{self, NS};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
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
    match s.mcp.get_or_init(service).clone().oneshot(req).await {
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
