//! Routes and handlers of the fake upstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use crate::{Shared, Stats, DEFAULT_COMPLETION_TOKENS, DEFAULT_SLOW_DELAY_MS, MODELS, TOKENS_PER_CHUNK};

/// `created` of every listed model.
const MODELS_CREATED: u64 = 1_700_000_000;
/// Length of an embedding vector when the request gives no `dimensions`.
const DEFAULT_DIMENSIONS: u64 = 8;
/// Largest `dimensions` honoured.
const MAX_DIMENSIONS: u64 = 4096;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/__stats", get(stats))
        .route("/__reset", post(reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(shared)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Final,
    Cumulative,
    ChoicesNull,
    NoUsage,
    Abort,
    Slow,
    RateLimited,
    ServerError,
    Hang,
    Embed,
    Garbled,
}

impl Mode {
    fn of(model: &str) -> Option<Mode> {
        Some(match model {
            "fake-final" => Mode::Final,
            "fake-cumulative" => Mode::Cumulative,
            "fake-choices-null" => Mode::ChoicesNull,
            "fake-no-usage" => Mode::NoUsage,
            "fake-abort" => Mode::Abort,
            "fake-slow" => Mode::Slow,
            "fake-429" => Mode::RateLimited,
            "fake-500" => Mode::ServerError,
            "fake-hang" => Mode::Hang,
            "fake-embed" => Mode::Embed,
            "fake-garbled" => Mode::Garbled,
            _ => return None,
        })
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODELS_CREATED, "owned_by": "fake"})
}

async fn list_models() -> Json<Value> {
    Json(json!({"object": "list", "data": MODELS.iter().map(|m| model_object(m)).collect::<Vec<_>>()}))
}

async fn get_model(Path(id): Path<String>) -> Response {
    if MODELS.contains(&id.as_str()) {
        Json(model_object(&id)).into_response()
    } else {
        openai_error(
            StatusCode::NOT_FOUND,
            &format!("The model `{id}` does not exist"),
            "invalid_request_error",
            Some("model_not_found"),
        )
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.snapshot())
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn not_found() -> Response {
    openai_error(StatusCode::NOT_FOUND, "Unknown path", "invalid_request_error", Some("unknown_url"))
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

/// Counts the request, records its body and `Authorization`, parses it and resolves its mode — or answers the error.
fn accept(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Result<(Value, String, Mode), Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    shared.update(|s| {
        s.requests += 1;
        s.last_authorization = authorization;
        s.last_request = parsed.as_ref().ok().cloned();
    });
    let fail = |status: StatusCode, message: &str, code: Option<&str>| {
        shared.update(|s| s.errors += 1);
        Box::new(openai_error(status, message, "invalid_request_error", code))
    };
    let request = match parsed {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(fail(StatusCode::BAD_REQUEST, "The request body must be a JSON object", None)),
        Err(e) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                &format!("We could not parse the JSON body of your request: {e}"),
                None,
            ))
        }
    };
    let Some(model) = request.get("model").and_then(Value::as_str).map(str::to_owned) else {
        return Err(fail(StatusCode::BAD_REQUEST, "you must provide a model parameter", None));
    };
    let Some(mode) = Mode::of(&model) else {
        return Err(fail(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist"),
            Some("model_not_found"),
        ));
    };
    Ok((request, model, mode))
}

/// Answers the modes that behave the same on every endpoint (errors, hang); `None` for the others.
async fn common_mode(shared: &Shared, mode: Mode, model: &str) -> Option<Response> {
    match mode {
        Mode::RateLimited => {
            shared.update(|s| s.errors += 1);
            let mut response = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Rate limit reached for {model}. Please try again in 1s."),
                "requests",
                Some("rate_limit_exceeded"),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Some(response)
        }
        Mode::ServerError => {
            shared.update(|s| s.errors += 1);
            Some(openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("The server had an error while processing your request ({model})."),
                "server_error",
                None,
            ))
        }
        Mode::Hang => {
            // Never answers; a client timeout drops this future. When the server stops, the request is released.
            shared.stopping().await;
            Some(openai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The fake upstream is shutting down",
                "server_error",
                None,
            ))
        }
        _ => None,
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Words over all message contents (string contents and the `text` of content parts), at least 1.
fn prompt_tokens(request: &Value) -> u64 {
    let mut n = 0;
    for message in request.get("messages").and_then(Value::as_array).into_iter().flatten() {
        match message.get("content") {
            Some(Value::String(text)) => n += words(text),
            Some(Value::Array(parts)) => {
                n += parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .map(words)
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    n.max(1)
}

/// `hello hello …` (each word is exactly one token under the common cl100k tokenizer, so a
/// gateway that has to estimate gets the true count) split into chunks of [`TOKENS_PER_CHUNK`] words whose concatenation is the whole content.
fn content_chunks(tokens: u64) -> Vec<(String, u64)> {
    let mut chunks = Vec::new();
    let mut i = 1;
    while i <= tokens {
        let end = (i + TOKENS_PER_CHUNK - 1).min(tokens);
        let text = (i..=end).map(|_| "hello").collect::<Vec<_>>().join(" ");
        chunks.push((if i == 1 { text } else { format!(" {text}") }, end - i + 1));
        i = end + 1;
    }
    chunks
}

#[derive(Clone, Copy)]
struct Usage {
    prompt: u64,
    cached: u64,
    completion: u64,
}

impl Usage {
    fn json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        })
    }
}

async fn chat_completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, model, mode) = match accept(&shared, &headers, &body) {
        Ok(accepted) => accepted,
        Err(response) => return *response,
    };
    if let Some(response) = common_mode(&shared, mode, &model).await {
        return response;
    }
    if mode == Mode::Embed {
        shared.update(|s| s.errors += 1);
        return openai_error(
            StatusCode::BAD_REQUEST,
            &format!("{model} is an embedding model, not a chat model"),
            "invalid_request_error",
            Some("model_not_supported"),
        );
    }

    let prompt = prompt_tokens(&request);
    // Also from the body (`fake_cached_tokens`, `fake_delay_ms`): a gateway forwards the body
    // unchanged but not arbitrary client headers.
    let cached = header_u64(&headers, "x-fake-cached-tokens")
        .or_else(|| request.get("fake_cached_tokens").and_then(Value::as_u64))
        .unwrap_or(0)
        .min(prompt);
    let completion = request
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| request.get("max_tokens").and_then(Value::as_u64))
        .unwrap_or(DEFAULT_COMPLETION_TOKENS);
    let delay_ms = header_u64(&headers, "x-fake-delay-ms")
        .or_else(|| request.get("fake_delay_ms").and_then(Value::as_u64))
        .unwrap_or(if mode == Mode::Slow { DEFAULT_SLOW_DELAY_MS } else { 0 });
    let delay = Duration::from_millis(delay_ms);
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = format!("chatcmpl-fake-{}", shared.next_id());
    let created = now();
    let usage = Usage {
        prompt,
        cached,
        completion,
    };

    // The prompt is consumed as soon as the upstream starts answering.
    shared.update(|s| {
        s.prompt_tokens += prompt;
        s.cached_tokens += cached;
    });

    if stream {
        let events = stream_events(mode, &id, created, &model, usage, include_usage);
        let run = StreamRun {
            events,
            delay,
            first: true,
            finished: false,
            shared: shared.clone(),
        };
        let body = Body::from_stream(futures_util::stream::unfold(run, StreamRun::next));
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let content = content_chunks(completion).into_iter().map(|(text, _)| text).collect::<String>();
    let mut response = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "system_fingerprint": null
    });
    if mode == Mode::Garbled {
        // A 200 whose body is not JSON: nothing a client can read was delivered.
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"id\": \"chatcmpl-garbled\", \"choices\": [{\"message\""))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if mode != Mode::NoUsage {
        response["usage"] = usage.json();
    }
    if mode == Mode::Abort {
        // Headers and half of the body, then the connection is dropped; no completion was delivered.
        let bytes = response.to_string().into_bytes();
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        shared.update(|s| s.aborted += 1);
        let parts = futures_util::stream::iter([Ok(half)]).chain(futures_util::stream::once(abort_after_flush()));
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(parts))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    shared.update(|s| s.completion_tokens += completion);
    Json(response).into_response()
}

/// The body error that makes the server drop the connection. It comes a moment later, so that what was sent before
/// is flushed to the client first (an error in the same poll would drop the buffered bytes with the connection).
async fn abort_after_flush() -> Result<Bytes, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fake-abort"))
}

enum Event {
    /// One `data: {...}` chunk carrying this many completion tokens.
    Chunk(Value, u64),
    /// A line that is not a JSON event (`fake-garbled`): no tokens a client can read.
    Raw(&'static str),
    Done,
    Abort,
}

/// The whole stream of one response, decided up front from the mode.
fn stream_events(mode: Mode, id: &str, created: u64, model: &str, usage: Usage, include_usage: bool) -> VecDeque<Event> {
    let chunk = |choices: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": choices
        })
    };
    let choice = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);

    let contents = content_chunks(usage.completion);
    let sent_contents = match mode {
        // Half of the content chunks (rounded up), then the connection drops.
        Mode::Abort => contents.len().div_ceil(2),
        _ => contents.len(),
    };
    let mut chunks: Vec<(Value, u64)> = vec![(chunk(choice(json!({"role": "assistant", "content": ""}), None)), 0)];
    for (text, n) in contents.into_iter().take(sent_contents) {
        chunks.push((chunk(choice(json!({"content": text}), None)), n));
    }
    if mode != Mode::Abort {
        chunks.push((chunk(choice(json!({}), Some("stop"))), 0));
    }

    let mut events = VecDeque::new();
    match mode {
        Mode::Cumulative => {
            let mut so_far = 0;
            for (mut c, n) in chunks {
                so_far += n;
                c["usage"] = Usage {
                    completion: so_far,
                    ..usage
                }
                .json();
                events.push_back(Event::Chunk(c, n));
            }
        }
        Mode::NoUsage => events.extend(chunks.into_iter().map(|(c, n)| Event::Chunk(c, n))),
        Mode::Garbled => {
            // Valid chunks with malformed events among them, and no usage.
            for (i, (c, n)) in chunks.into_iter().enumerate() {
                events.push_back(Event::Chunk(c, n));
                if i == 1 {
                    events.push_back(Event::Raw("data: {\"choices\": [{\"delta\": {\"content\": \"hel\n\n"));
                    events.push_back(Event::Raw("data: not json at all\n\n"));
                    events.push_back(Event::Raw(": a comment line\n\nevent: unknown\n\n"));
                }
            }
        }
        Mode::Final | Mode::ChoicesNull | Mode::Slow | Mode::Abort => {
            for (mut c, n) in chunks {
                if include_usage {
                    c["usage"] = Value::Null;
                }
                events.push_back(Event::Chunk(c, n));
            }
            if include_usage && mode != Mode::Abort {
                let mut last = chunk(if mode == Mode::ChoicesNull { Value::Null } else { json!([]) });
                last["usage"] = usage.json();
                events.push_back(Event::Chunk(last, 0));
            }
        }
        Mode::RateLimited | Mode::ServerError | Mode::Hang | Mode::Embed => {}
    }
    events.push_back(if mode == Mode::Abort { Event::Abort } else { Event::Done });
    events
}

/// A streaming response in progress: counts the completion tokens of each chunk as it is handed to the connection,
/// and notices when the connection drops it before the end.
struct StreamRun {
    events: VecDeque<Event>,
    delay: Duration,
    first: bool,
    finished: bool,
    shared: Arc<Shared>,
}

impl StreamRun {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, StreamRun)> {
        if self.finished {
            return None;
        }
        let event = self.events.pop_front()?;
        if !self.first && !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.first = false;
        let item = match event {
            Event::Chunk(value, tokens) => {
                self.shared.update(|s| s.completion_tokens += tokens);
                Ok(Bytes::from(format!("data: {value}\n\n")))
            }
            Event::Raw(line) => Ok(Bytes::from_static(line.as_bytes())),
            Event::Done => {
                self.finished = true;
                Ok(Bytes::from_static(b"data: [DONE]\n\n"))
            }
            Event::Abort => {
                self.finished = true;
                self.shared.update(|s| s.aborted += 1);
                abort_after_flush().await
            }
        };
        Some((item, self))
    }
}

impl Drop for StreamRun {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.update(|s| s.disconnected += 1);
        }
    }
}

/// The inputs of an embeddings request and the tokens of each.
fn embedding_inputs(input: Option<&Value>) -> Option<Vec<u64>> {
    match input? {
        Value::String(text) => Some(vec![words(text)]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_u64) => Some(vec![items.len() as u64]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some(words(text)),
                Value::Array(ids) if ids.iter().all(Value::is_u64) => Some(ids.len() as u64),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

async fn embeddings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, model, mode) = match accept(&shared, &headers, &body) {
        Ok(accepted) => accepted,
        Err(response) => return *response,
    };
    if let Some(response) = common_mode(&shared, mode, &model).await {
        return response;
    }
    let fail = |message: &str, code: Option<&str>| {
        shared.update(|s| s.errors += 1);
        openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", code)
    };
    if mode != Mode::Embed {
        return fail(&format!("{model} does not support embeddings"), Some("model_not_supported"));
    }
    let Some(inputs) = embedding_inputs(request.get("input")) else {
        return fail("'input' must be a string, an array of strings, or an array of token arrays", None);
    };
    let dimensions = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let tokens = inputs.iter().sum::<u64>().max(1);

    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, &n)| {
            let vector: Vec<f32> = (0..dimensions)
                .map(|d| ((index as u64 + 1) * 1000 + n * 10 + d) as f32 / 10_000.0)
                .collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect::<Vec<_>>();
    shared.update(|s| s.embedding_tokens += tokens);
    Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_content() {
        let chunks = content_chunks(7);
        assert_eq!(chunks.iter().map(|c| c.1).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert_eq!(
            chunks.iter().map(|c| c.0.as_str()).collect::<String>(),
            "hello hello hello hello hello hello hello"
        );
        assert!(content_chunks(0).is_empty());
    }

    #[test]
    fn prompt_words_count_strings_and_text_parts() {
        let request = json!({"messages": [
            {"role": "system", "content": "be  brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"}, {"type": "image_url", "image_url": {"url": "x"}}]}
        ]});
        assert_eq!(prompt_tokens(&request), 5);
        assert_eq!(prompt_tokens(&json!({"messages": []})), 1);
    }

    #[test]
    fn embedding_inputs_of_every_shape() {
        assert_eq!(embedding_inputs(Some(&json!("a b c"))), Some(vec![3]));
        assert_eq!(embedding_inputs(Some(&json!(["a b", "c"]))), Some(vec![2, 1]));
        assert_eq!(embedding_inputs(Some(&json!([1, 2, 3, 4]))), Some(vec![4]));
        assert_eq!(embedding_inputs(Some(&json!([[1, 2], [3]]))), Some(vec![2, 1]));
        assert_eq!(embedding_inputs(Some(&json!(7))), None);
        assert_eq!(embedding_inputs(None), None);
    }
}
