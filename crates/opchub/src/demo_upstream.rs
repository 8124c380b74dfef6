//! The built-in demo upstream (issue 21 item 5, M2.2): a small OpenAI-compatible model provider
//! on loopback, started only by `serve --demo`, so that the demo's gateway can be tried end to
//! end — the console's playground, the SDKs, curl — without an outside provider.
//!
//! `POST /v1/chat/completions` answers model `demo-chat` with a short canned Chinese reply that
//! quotes the last user message, as plain JSON or, with `stream: true`, as SSE chunks whose
//! last one (`choices: []`) carries `usage` when `stream_options.include_usage` asks for it
//! (as OpenAI does; the gateway always asks). `GET /v1/models` lists the model. Usage is
//! deterministic, so the metered tokens can be checked exactly: the prompt counts one token per
//! character of the messages' text, the completion one per character of the reply, nothing is
//! cached. Only the demo channel's key is accepted.

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The one model the demo upstream serves.
pub const MODEL: &str = "demo-chat";
/// The key the demo channel sends (sealed in the channel like any upstream key).
pub const KEY: &str = "demo-upstream-local-key";
/// Characters of the user's message quoted in the reply.
const QUOTE_CHARS: usize = 60;
/// Characters per streamed content chunk.
const CHUNK_CHARS: usize = 8;

/// The running demo upstream; stops when dropped.
pub struct DemoUpstream {
    /// `http://127.0.0.1:<port>/v1`: the port is picked anew at every start.
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DemoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1 on a free port and serves in the background.
pub async fn start() -> Result<DemoUpstream> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the demo upstream")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            tracing::warn!(error = %e, "demo upstream stopped");
        }
    });
    Ok(DemoUpstream {
        base_url: format!("http://{addr}/v1"),
        task,
    })
}

fn router() -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k.trim() == KEY)
}

/// OpenAI's 401 for a request without the demo channel's key, `None` when it has it.
fn refuse_unauthorized(headers: &HeaderMap) -> Option<Response> {
    (!authorized(headers)).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
            "invalid_api_key",
        )
    })
}

async fn models(headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_unauthorized(&headers) {
        return refused;
    }
    Json(json!({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "opchub-demo"}]})).into_response()
}

/// The text of a message's `content`: a string, or the `text` of its parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// Prompt tokens: one per character of every message's text, at least 1.
pub fn prompt_tokens(request: &Value) -> i64 {
    let n: usize = request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| content_text(m.get("content")).chars().count())
        .sum();
    i64::try_from(n).unwrap_or(i64::MAX).max(1)
}

/// The canned reply to a request: it quotes the last user message (shortened).
pub fn reply_to(request: &Value) -> String {
    let last = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|ms| ms.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default();
    let last = last.split_whitespace().collect::<Vec<_>>().join(" ");
    let quote: String = if last.chars().count() > QUOTE_CHARS {
        last.chars().take(QUOTE_CHARS).chain("…".chars()).collect()
    } else {
        last
    };
    format!(
        "您好！我是 OPC Hub 内置的演示模型。您刚才说：「{quote}」。这是一条演示回答：本次调用经平台的模型网关按 OPC 优惠价计量，可在调用记录和用量账本中查看。"
    )
}

/// Completion tokens of a reply: one per character.
pub fn completion_tokens(reply: &str) -> i64 {
    i64::try_from(reply.chars().count()).unwrap_or(i64::MAX)
}

fn usage(prompt: i64, completion: i64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}
    })
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn chat(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unauthorized(&headers) {
        return refused;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "The body must be a JSON object",
                "invalid_request_error",
                "invalid_json",
            )
        }
    };
    let model = request.get("model").and_then(Value::as_str).unwrap_or_default();
    if model != MODEL {
        return error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist"),
            "invalid_request_error",
            "model_not_found",
        );
    }
    let reply = reply_to(&request);
    let (prompt, completion) = (prompt_tokens(&request), completion_tokens(&reply));
    let id = format!("chatcmpl-demo-{}", uuid_like());
    let created = now_s();
    if request.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let include_usage = request
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let body = sse(&id, created, &reply, include_usage.then(|| usage(prompt, completion)));
        return (
            [
                (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response();
    }
    Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": usage(prompt, completion)
    }))
    .into_response()
}

/// The whole SSE stream of a reply: a role chunk, content chunks, a finishing chunk, the usage
/// chunk (`choices: []`) when asked, then `[DONE]`.
fn sse(id: &str, created: i64, reply: &str, usage: Option<Value>) -> String {
    let chunk =
        |choices: Value| json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": MODEL, "choices": choices});
    let mut events = vec![chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
    )];
    let chars: Vec<char> = reply.chars().collect();
    for part in chars.chunks(CHUNK_CHARS) {
        let text: String = part.iter().collect();
        events.push(chunk(json!([{"index": 0, "delta": {"content": text}, "finish_reason": null}])));
    }
    events.push(chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])));
    if let Some(u) = usage {
        let mut last = chunk(json!([]));
        last["usage"] = u;
        events.push(last);
    }
    let mut out = String::new();
    for e in events {
        out.push_str("data: ");
        out.push_str(&e.to_string());
        out.push_str("\n\n");
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// A short random id for the response (`rand`, already a dependency).
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_quote_the_last_user_message_and_count_characters() {
        let req = json!({"model": MODEL, "messages": [
            {"role": "system", "content": "简短回答"},
            {"role": "user", "content": "你好"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "丰台  OPC"}]}
        ]});
        let reply = reply_to(&req);
        assert!(reply.contains("「丰台 OPC」"), "{reply}");
        assert_eq!(prompt_tokens(&req), 4 + 2 + 1 + 7);
        assert_eq!(completion_tokens(&reply), reply.chars().count() as i64);
        let long = json!({"messages": [{"role": "user", "content": "长".repeat(100)}]});
        assert!(reply_to(&long).contains(&format!("「{}…」", "长".repeat(QUOTE_CHARS))));
        assert_eq!(prompt_tokens(&json!({})), 1);
    }

    #[test]
    fn a_stream_ends_with_usage_when_asked_then_done() {
        let s = sse("id1", 1, "一二三四五六七八九十", Some(usage(3, 10)));
        let events: Vec<&str> = s.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.last(), Some(&"data: [DONE]"));
        let usage_chunk: Value = serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 10);
        let text: String = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e.trim_start_matches("data: ")).ok())
            .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, "一二三四五六七八九十");
        assert!(!sse("id1", 1, "x", None).contains("usage"));
    }
}
