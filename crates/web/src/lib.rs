//! The HTTP layer of OPC Hub: the route table (`routes.rs`), JSON API handlers (`api/`),
//! server-rendered pages (`pages/`), authentication (`auth.rs`), message catalogs
//! (`i18n.rs`), operations endpoints (`ops.rs`) and `/mcp` (`mcp.rs`, a thin rmcp server over the
//! Skill Store's use cases). HTTP only: a handler extracts its input, calls one use case of
//! `opchub_app` and maps the answer; an error's HTTP status is chosen in one place (`error.rs`).
//! The store is touched only to build the state (`AppState::new`).

pub mod api;
pub mod auth;
pub mod error;
pub mod i18n;
pub mod openapi;
pub mod ops;
pub mod pages;
pub use opchub_gateway::ratelimit;
pub mod mcp;
pub mod nav;
pub mod routes;
pub mod skills;
pub mod upload;
pub mod view;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use opchub_store::Store;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure`. Browsers accept Secure cookies over plain HTTP on loopback only.
    pub cookie_secure: bool,
    /// Largest request body accepted (bytes); larger bodies get 413.
    pub body_limit: usize,
    /// `/metrics` answers only `Authorization: Bearer <this>`; unset, only loopback callers.
    pub metrics_token: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            cookie_secure: true,
            body_limit: 64 * 1024,
            metrics_token: None,
        }
    }
}

/// Everything a handler needs, behind one `Arc`: axum clones the state for every layer of every
/// request, and one reference count is cheaper than fifteen (measured on the gateway's hot path).
#[derive(Clone)]
pub struct AppState(Arc<State>);

impl std::ops::Deref for AppState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// The fields of [`AppState`], read through it (`state.store`); set with its `with_*` builders.
/// The use cases and the services they share are the [`App`](opchub_app::App) (`state.app`,
/// also reached through `Deref`: `state.store` is `state.app.store`); the rest is the HTTP
/// layer's own.
#[derive(Clone)]
pub struct State {
    pub app: opchub_app::App,
    pub config: Arc<WebConfig>,
    pub templates: Arc<minijinja::Environment<'static>>,
    pub metrics: Option<PrometheusHandle>,
    pub rate: Arc<ratelimit::RateLimiter>,
    /// The OpenAI-compatible factor gateway (M2.2).
    pub gateway: Option<Arc<opchub_gateway::Gateway>>,
    /// The rmcp service behind `/mcp` (M2.3; its sessions), made on the first request. The Skill
    /// Store's runtime is the application's (`app.skills`).
    pub mcp: Arc<std::sync::OnceLock<mcp::Service>>,
}

impl std::ops::Deref for State {
    type Target = opchub_app::App;
    fn deref(&self) -> &opchub_app::App {
        &self.app
    }
}

impl AppState {
    pub fn new(store: Store, config: WebConfig, metrics: Option<PrometheusHandle>) -> Self {
        AppState(Arc::new(State {
            app: opchub_app::App::new(store),
            config: Arc::new(config),
            templates: Arc::new(pages::templates()),
            metrics,
            rate: Arc::default(),
            gateway: None,
            mcp: Arc::default(),
        }))
    }

    /// The fields, for the `with_*` builders (copied first if the state is already shared).
    fn fields(&mut self) -> &mut State {
        Arc::make_mut(&mut self.0)
    }

    pub fn with_evidence_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.fields().app.evidence = Arc::new(opchub_app::files::FileStore::local(dir));
        self
    }

    pub fn with_dataset_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.fields().app.datasets = Arc::new(opchub_app::files::FileStore::local(dir));
        self
    }

    /// The file stores (evidence and demand attachments; datasets) on any backend (a local
    /// directory, S3-compatible object storage shared by replicas).
    pub fn with_file_stores(mut self, evidence: opchub_app::files::FileStore, datasets: opchub_app::files::FileStore) -> Self {
        let app = &mut self.fields().app;
        app.evidence = Arc::new(evidence);
        app.datasets = Arc::new(datasets);
        self
    }

    pub fn with_policy(mut self, policy: opchub_policy::Policy) -> Self {
        self.fields().app.policy = Some(Arc::new(policy));
        self
    }

    pub fn with_skills(mut self, config: skills::SkillsConfig) -> Self {
        let f = self.fields();
        f.app.skills = Arc::new(skills::SkillHub::new(config));
        f.mcp = Arc::default();
        self
    }

    /// The gateway, whose secret key also keys the identity hashes (issue 18 item 1).
    pub fn with_gateway(mut self, gateway: Arc<opchub_gateway::Gateway>) -> Self {
        let f = self.fields();
        f.app.identity_key = Some(opchub_app::crypto::IdentityKey::new(gateway.secrets().identity_key()));
        f.gateway = Some(gateway);
        self
    }

    /// `serve --demo` only: the built-in demo upstream's base URL, the one loopback address a
    /// gateway channel may name outside test mode (M2.2).
    pub fn with_demo_upstream(mut self, base_url: impl Into<String>) -> Self {
        self.fields().app.demo_upstream = Some(base_url.into());
        self
    }

    pub fn with_ledger(mut self, writer: opchub_store::ledger::LedgerWriter) -> Self {
        self.fields().app.ledger = Some(writer);
        self
    }
}

/// Installs the process-wide Prometheus recorder once; later calls return the same handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// The whole application: every route of the table behind its access rule, plus global
/// layers (language, request metrics, body size limit).
pub fn app(state: AppState) -> Router {
    let limit = state.config.body_limit;
    routes::router(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(language_and_metrics))
}

async fn language_and_metrics(req: Request, next: Next) -> Response {
    // Pages are Chinese unless the visitor chose English (the `lang` cookie); API clients
    // may also ask through Accept-Language.
    let accept = if req.uri().path().starts_with("/api/") {
        req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let lang = i18n::negotiate(auth::cookie(req.headers(), "lang"), accept);
    let method = req.method().to_string();
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let mut resp = i18n::scope(lang, next.run(req)).await;
    security_headers(resp.headers_mut());
    let status = resp.status().as_u16().to_string();
    metrics::counter!("opchub_http_requests_total", "method" => method.clone(), "route" => matched.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("opchub_http_request_duration_seconds", "method" => method, "route" => matched)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// The pages' Content Security Policy: scripts, styles, fonts and frames from this site only.
/// The pages have no inline script or style (the one script is `/static/evidence.js`); charts
/// and graphs are inline SVG with presentation attributes, which a policy does not govern.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every answer (a handler that set one keeps its own): the policy above,
/// no framing, no content sniffing, and no Referer to other sites.
fn security_headers(h: &mut axum::http::HeaderMap) {
    use axum::http::HeaderValue;
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, v: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // No Nagle delay: SSE chunks must leave at once (measured: +44 ms per streamed request without it).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // A confirmed payment whose ledger event a crash kept out is posted now (once: the event is
    // keyed by the payment).
    if state.app.ledger.is_some() {
        let app = state.app.clone();
        tokio::spawn(async move {
            match opchub_app::ledger::post_unposted_payments(&app).await {
                Ok((0, 0)) => {}
                Ok((coop, bills)) => tracing::warn!(coop, bills, "posted confirmed payments a crash had kept out of the ledger"),
                Err(e) => tracing::error!(error = %e.code, "posting unposted payments"),
            }
        });
    }
    // With the peer's address (the sign-in throttle counts failures per client address).
    axum::serve(listener, app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
