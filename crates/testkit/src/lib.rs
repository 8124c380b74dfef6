//! A fake upstream model provider that speaks the OpenAI wire format over real HTTP.
//!
//! The platform's model gateway forwards to it in tests (and CI points the official `openai` Python SDK at the
//! gateway in front of it). The behaviour is chosen by the **model name**, so any client can pick it:
//!
//! | model | behaviour |
//! |---|---|
//! | `fake-final` | usage in a last chunk with `"choices": []` when the request asks `stream_options.include_usage` (like OpenAI); plain responses always carry `usage` |
//! | `fake-cumulative` | streaming: every chunk carries a cumulative `usage`; the last has the totals |
//! | `fake-choices-null` | like `fake-final`, but the usage chunk has `"choices": null` |
//! | `fake-no-usage` | never reports usage |
//! | `fake-abort` | streams some chunks, then drops the connection without `[DONE]` |
//! | `fake-slow` | waits between chunks (`x-fake-delay-ms`, default 200 ms), usage at the end if asked |
//! | `fake-429` / `fake-500` | HTTP 429 (with `retry-after: 1`) / 500 with an OpenAI-shaped error body |
//! | `fake-hang` | accepts the request and never answers (until the client gives up or the server stops) |
//! | `fake-embed` | `POST /v1/embeddings` |
//! | `fake-garbled` | streaming: valid chunks with malformed events among them (a truncated JSON line, a line that is not JSON, a comment, an unknown event), no usage; plain: a 200 whose body is truncated JSON |
//!
//! Token counts are deterministic: completion tokens = `max_completion_tokens`, else `max_tokens`, else 12, the
//! content being `hello hello …` (one word per token, each one cl100k token, 3 tokens per streamed chunk); prompt tokens = whitespace-separated
//! words over all message contents (min 1); cached tokens = header `x-fake-cached-tokens` (default 0, at most the
//! prompt tokens, counted inside `prompt_tokens` and reported as `prompt_tokens_details.cached_tokens`); embedding
//! tokens = words of the input (token arrays count their length).
//!
//! [`Stats`] is the truth of what the server emitted, for comparing against what the gateway metered.

pub mod db;
pub mod mcp_server;
pub mod s3;
mod server;
pub mod tcp_proxy;
pub mod tool_server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The model names the fake serves (also listed by `GET /v1/models`).
pub const MODELS: &[&str] = &[
    "fake-final",
    "fake-cumulative",
    "fake-choices-null",
    "fake-no-usage",
    "fake-abort",
    "fake-slow",
    "fake-429",
    "fake-500",
    "fake-hang",
    "fake-embed",
    "fake-garbled",
];

/// Completion tokens generated when the request gives neither `max_completion_tokens` nor `max_tokens`.
pub const DEFAULT_COMPLETION_TOKENS: u64 = 12;
/// Tokens per streamed content chunk.
pub const TOKENS_PER_CHUNK: u64 = 3;
/// Delay between chunks of `fake-slow` when the request has no `x-fake-delay-ms` header.
pub const DEFAULT_SLOW_DELAY_MS: u64 = 200;

/// What the server emitted so far (in usage-equivalent terms), whether or not it reported it to the client.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Requests to `/v1/chat/completions` and `/v1/embeddings`, whatever their outcome.
    pub requests: u64,
    /// Prompt tokens of every request that produced output (cached ones included).
    pub prompt_tokens: u64,
    /// Of those, the cached ones.
    pub cached_tokens: u64,
    /// Completion tokens actually sent (for an aborted or disconnected stream: those of the chunks sent).
    pub completion_tokens: u64,
    /// Input tokens of embedding requests.
    pub embedding_tokens: u64,
    /// Responses the server dropped on purpose before their end (`fake-abort`).
    pub aborted: u64,
    /// Error responses (429, 500, malformed requests, unknown models).
    pub errors: u64,
    /// Streams the client went away from before the server finished them (e.g. `fake-slow` cancelled mid-stream).
    pub disconnected: u64,
    /// The last request body received (JSON).
    pub last_request: Option<serde_json::Value>,
    /// The `Authorization` header of the last request.
    pub last_authorization: Option<String>,
}

pub(crate) struct Shared {
    stats: Mutex<Stats>,
    shutdown: watch::Receiver<bool>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn update(&self, f: impl FnOnce(&mut Stats)) {
        let mut guard = self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard);
    }

    fn snapshot(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn reset(&self) {
        *self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Stats::default();
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// Resolves once the server is asked to stop (or its owner is gone).
    pub(crate) async fn stopping(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// A running fake upstream. It serves until [`FakeUpstream::stop`] is called or it is dropped.
pub struct FakeUpstream {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUpstream").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeUpstream {
    /// Starts on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If no loopback port can be bound (a machine without a loopback interface); use [`FakeUpstream::start_on`]
    /// to handle that error.
    #[allow(clippy::expect_used)]
    pub async fn start() -> FakeUpstream {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("fake upstream: cannot bind 127.0.0.1:0")
    }

    /// Starts on the given address (port 0 picks a free one; [`FakeUpstream::addr`] tells which).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeUpstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            stats: Mutex::new(Stats::default()),
            shutdown: rx.clone(),
            next_id: Default::default(),
        });
        let app = server::router(shared.clone());
        let mut signal = rx;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            });
            let _ = serve.await;
        });
        Ok(FakeUpstream {
            addr,
            shared,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/v1` — what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// What it emitted so far.
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// Zeroes the stats.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, releases hanging requests and waits (at most 5 s) for running responses to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}
