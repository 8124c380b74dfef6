//! Upstream calls (M2.3): [`Upstreams`], the rmcp clients to publishers' MCP servers, HTTP-tool
//! calls, and the fetching of tool lists and OpenAPI documents for pinning and refresh. Every
//! connection goes through the publisher HTTP client (the guarded resolver, no redirects).

use crate::App;
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Fetches the tool list of a publisher's MCP server (for pinning and refresh).
pub async fn fetch_mcp_tools(app: &App, url: &str) -> Result<Vec<Tool>, Finding> {
    opchub_skills::net::check_resolved(url, app.skills.config.allow_private_upstreams).await?;
    app.skills
        .upstreams()
        .list_tools(url, app.skills.config.call_timeout)
        .await
        .map_err(|f| app.skills.resolver.refused(url).map(|p| p.finding()).unwrap_or(f))
}

/// Fetches an HTTP tool's OpenAPI document from the URL it was published by (for pinning and
/// refresh): the address rule at once, the guarded resolver on connect, at most
/// [`opchub_skills::openapi::MAX_DOC_BYTES`].
pub async fn fetch_openapi(app: &App, url: &str) -> Result<String, Finding> {
    opchub_skills::net::check_resolved(url, app.skills.config.allow_private_upstreams).await?;
    let http = app.skills.http.as_ref().map_err(Clone::clone)?;
    let failed = |e: &reqwest_publisher::Error| match UpstreamError::of(e) {
        UpstreamError::Refused(f) => f,
        UpstreamError::Timeout => Finding::new("openapi_fetch_failed", "timeout"),
        UpstreamError::Failed(m) => Finding::new("openapi_fetch_failed", m),
    };
    let mut resp = http.get(url).send().await.map_err(|e| failed(&e))?;
    if !resp.status().is_success() {
        return Err(Finding::new("openapi_fetch_failed", format!("HTTP {}", resp.status().as_u16())));
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > opchub_skills::openapi::MAX_DOC_BYTES {
            return Err(Finding::new(
                "openapi_too_large",
                format!("max {} bytes", opchub_skills::openapi::MAX_DOC_BYTES),
            ));
        }
    }
    String::from_utf8(body).map_err(|_| Finding::new("openapi_unparseable", "the document is not UTF-8"))
}

/// At most this many OpenAPI documents are parsed at once (on blocking threads).
static PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// The time one OpenAPI document may take to be parsed, waiting for a parser included.
const PARSE_BUDGET: Duration = Duration::from_secs(10);

/// Parses an OpenAPI document (issue 20): size and nesting depth are checked first, in one
/// linear pass on the caller's task; the parse itself runs on a blocking thread (never on the
/// async workers that serve requests), at most [`PARSES`] at once, within [`PARSE_BUDGET`].
pub async fn parse_openapi(text: String, only: Vec<String>) -> Result<opchub_skills::openapi::Document, Finding> {
    opchub_skills::openapi::precheck(&text)?;
    let too_slow = || {
        Finding::new(
            "openapi_too_complex",
            format!("the document was not parsed within {} s", PARSE_BUDGET.as_secs()),
        )
    };
    let work = async {
        let permit = PARSES.acquire().await.map_err(|_| too_slow())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            opchub_skills::openapi::parse(&text, &only)
        })
        .await
        .map_err(|_| Finding::new("openapi_unparseable", "the parser failed"))?
    };
    tokio::time::timeout(PARSE_BUDGET, work).await.unwrap_or_else(|_| Err(too_slow()))
}

pub fn text_block(t: &str) -> Value {
    serde_json::json!({"type": "text", "text": t})
}

pub struct UpstreamResult {
    pub is_error: bool,
    pub content: Vec<Value>,
    pub structured: Option<Value>,
}

#[derive(Debug)]
pub enum UpstreamError {
    Timeout,
    Failed(String),
    /// Refused before the publisher was reached (its host resolved to no public address).
    Refused(Finding),
}

impl UpstreamError {
    /// A failed request: a refusal of the guarded resolver, a timeout, or another failure.
    pub fn of(e: &reqwest_publisher::Error) -> UpstreamError {
        if let Some(p) = opchub_skills::net::refusal_in(e) {
            UpstreamError::Refused(p.finding())
        } else if e.is_timeout() {
            UpstreamError::Timeout
        } else {
            UpstreamError::Failed(error_chain(e))
        }
    }
}

/// An error with its sources (reqwest's own text omits the cause), without URLs.
fn error_chain(e: &reqwest_publisher::Error) -> String {
    let mut out = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    }
    .to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

const MAX_HTTP_RESPONSE: usize = 1024 * 1024;

pub(crate) async fn http_call(
    app: &App,
    base: &str,
    op: &opchub_skills::tools::HttpOperation,
    args: &Map<String, Value>,
) -> Result<UpstreamResult, UpstreamError> {
    // Built structurally on the base (no path or argument changes its host), and the final
    // URL's host checked like the base's: IP literals here, names by the guarded resolver
    // when the connection is made (M2.3).
    let (url, body) = opchub_skills::openapi::request_of(base, op, args).map_err(UpstreamError::Refused)?;
    opchub_skills::net::check_literal(url.as_str(), app.skills.config.allow_private_upstreams).map_err(UpstreamError::Refused)?;
    let method = reqwest_publisher::Method::from_bytes(op.method.as_bytes()).map_err(|e| UpstreamError::Failed(e.to_string()))?;
    let http = app.skills.http.as_ref().map_err(|f| UpstreamError::Failed(f.detail.clone()))?;
    let mut rb = http.request(method, url.as_str());
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.map_err(|e| UpstreamError::of(&e))?;
    let ok = resp.status().is_success();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| UpstreamError::of(&e))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_HTTP_RESPONSE)]).to_string();
    let structured = serde_json::from_str::<Value>(&text).ok().filter(Value::is_object);
    let shown = if ok { text } else { format!("HTTP {status}: {text}") };
    Ok(UpstreamResult {
        is_error: !ok,
        content: vec![text_block(&shown)],
        structured,
    })
}

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
