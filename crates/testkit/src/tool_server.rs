//! A small HTTP tool server for the Skill Store's tests (M2.3): it serves its own OpenAPI 3
//! document at `/openapi.json` (with `servers[0].url` pointing at itself) and the operations
//! it describes:
//!
//! | operationId | call | answer |
//! |---|---|---|
//! | `get_weather` | `GET /weather/{city}?units=c\|f` | `{"city": …, "temperature": 21, "units": …}` |
//! | `add_note` | `POST /notes` with `{"text": …}` | `{"id": n, "text": …}` |
//! | `broken` | `GET /broken` | HTTP 500 |

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    notes: AtomicU64,
}

pub struct ToolServer {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The OpenAPI document of a tool server at `base`.
pub fn openapi_doc(base: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Test tools", "version": "1.0.0"},
        "servers": [{"url": base}],
        "paths": {
            "/weather/{city}": {"get": {
                "operationId": "get_weather",
                "summary": "Current weather of a city. 查询城市天气。",
                "parameters": [
                    {"name": "city", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}},
                    {"name": "units", "in": "query", "schema": {"type": "string", "enum": ["c", "f"]}}
                ]
            }},
            "/notes": {"post": {
                "operationId": "add_note",
                "summary": "Stores a note",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}
            }},
            "/broken": {"get": {"operationId": "broken", "summary": "Always fails"}}
        },
        "components": {"schemas": {"Note": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}
    })
}

impl ToolServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<ToolServer> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let base = format!("http://{addr}");
        let doc = openapi_doc(&base);
        let app = Router::new()
            .route("/openapi.json", get(move || async move { Json(doc) }))
            .route("/weather/{city}", get(weather))
            .route("/notes", post(note))
            .route("/broken", get(broken))
            .with_state(counters.clone());
        let (shutdown, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(ToolServer {
            addr,
            counters,
            shutdown,
            task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served to the operations.
    pub fn calls(&self) -> u64 {
        self.counters.calls.load(Ordering::Relaxed)
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

#[derive(serde::Deserialize)]
struct Units {
    units: Option<String>,
}

async fn weather(State(c): State<Arc<Counters>>, Path(city): Path<String>, Query(u): Query<Units>) -> Json<Value> {
    c.calls.fetch_add(1, Ordering::Relaxed);
    let units = u.units.unwrap_or_else(|| "c".into());
    let t = if units == "f" { 70 } else { 21 };
    Json(json!({"city": city, "temperature": t, "units": units}))
}

async fn note(State(c): State<Arc<Counters>>, Json(v): Json<Value>) -> Json<Value> {
    c.calls.fetch_add(1, Ordering::Relaxed);
    let id = c.notes.fetch_add(1, Ordering::Relaxed) + 1;
    Json(json!({"id": id, "text": v["text"]}))
}

async fn broken(State(c): State<Arc<Counters>>) -> (StatusCode, &'static str) {
    c.calls.fetch_add(1, Ordering::Relaxed);
    (StatusCode::INTERNAL_SERVER_ERROR, "tool server failure")
}
