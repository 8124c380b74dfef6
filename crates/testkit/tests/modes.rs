//! Every mode of the fake upstream, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use opchub_testkit::{FakeUpstream, Stats, MODELS};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(up: &FakeUpstream, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", up.base_url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn chat(model: &str, stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello to me"}],
    });
    if stream {
        body["stream"] = json!(true);
    }
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The `data:` payloads of an SSE body, `[DONE]` included as a string.
fn sse(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data line: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// Parses an SSE stream that must end with `[DONE]`; returns the JSON chunks.
async fn stream_chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"].as_array()?.first()?["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_for(up: &FakeUpstream, what: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = up.stats();
        if what(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats never settled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const TWELVE: &str = "hello hello hello hello hello hello hello hello hello hello hello hello";

#[tokio::test]
async fn lists_the_models() {
    let up = FakeUpstream::start().await;
    let list: Value = client()
        .get(format!("{}/models", up.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, MODELS);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["object"] == "model" && m["owned_by"] == "fake" && m["created"].is_u64()));
    let one = client().get(format!("{}/models/fake-slow", up.base_url())).send().await.unwrap();
    assert_eq!(one.status(), 200);
    let missing = client().get(format!("{}/models/gpt-9", up.base_url())).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(up.stats(), Stats::default(), "listing models is not a metered request");
    up.stop().await;
}

#[tokio::test]
async fn final_plain_always_has_usage_and_records_the_request() {
    let up = FakeUpstream::start().await;
    let response = post(&up, "/chat/completions", chat("fake-final", false, false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "fake-final");
    assert_eq!(body["choices"][0]["message"]["content"], TWELVE);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 6);
    assert_eq!(body["usage"]["completion_tokens"], 12);
    assert_eq!(body["usage"]["total_tokens"], 18);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let stats = up.stats();
    assert_eq!(
        stats,
        Stats {
            requests: 1,
            prompt_tokens: 6,
            completion_tokens: 12,
            last_request: Some(chat("fake-final", false, false)),
            last_authorization: Some("Bearer sk-test".into()),
            ..Stats::default()
        }
    );
    up.stop().await;
}

#[tokio::test]
async fn max_tokens_and_cached_tokens_drive_the_counts() {
    let up = FakeUpstream::start().await;
    let mut body = chat("fake-final", false, false);
    body["max_tokens"] = json!(5);
    let response = client()
        .post(format!("{}/chat/completions", up.base_url()))
        .header("x-fake-cached-tokens", "4")
        .json(&body)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "hello hello hello hello hello");
    assert_eq!(body["usage"]["prompt_tokens"], 6, "cached tokens are part of the prompt tokens");
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(body["usage"]["completion_tokens"], 5);

    // max_completion_tokens wins over max_tokens; cached tokens cannot exceed the prompt.
    let mut body = chat("fake-final", false, false);
    body["max_tokens"] = json!(5);
    body["max_completion_tokens"] = json!(2);
    let response = client()
        .post(format!("{}/chat/completions", up.base_url()))
        .header("x-fake-cached-tokens", "100")
        .json(&body)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
    let stats = up.stats();
    assert_eq!(
        (stats.requests, stats.prompt_tokens, stats.cached_tokens, stats.completion_tokens),
        (2, 12, 10, 7)
    );
    assert_eq!(stats.last_authorization, None);
    up.stop().await;
}

#[tokio::test]
async fn final_streaming_without_include_usage_reports_none() {
    let up = FakeUpstream::start().await;
    let chunks = stream_chunks(post(&up, "/chat/completions", chat("fake-final", true, false)).await).await;
    assert_eq!(content(&chunks), TWELVE);
    // role chunk, 4 content chunks of 3 tokens, finish chunk.
    assert_eq!(chunks.len(), 6);
    assert!(chunks
        .iter()
        .all(|c| c.get("usage").is_none() && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    let stats = up.stats();
    assert_eq!((stats.prompt_tokens, stats.completion_tokens, stats.disconnected), (6, 12, 0));
    up.stop().await;
}

#[tokio::test]
async fn final_streaming_with_include_usage_ends_with_a_usage_chunk() {
    let up = FakeUpstream::start().await;
    let chunks = stream_chunks(post(&up, "/chat/completions", chat("fake-final", true, true)).await).await;
    assert_eq!(content(&chunks), TWELVE);
    assert_eq!(chunks.len(), 7);
    let (last, rest) = chunks.split_last().unwrap();
    assert!(
        rest.iter().all(|c| c["usage"].is_null() && c.get("usage").is_some()),
        "like OpenAI: usage: null until the end"
    );
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 6);
    assert_eq!(last["usage"]["completion_tokens"], 12);
    assert_eq!(last["usage"]["total_tokens"], 18);
    assert_eq!(up.stats().last_request.unwrap()["stream_options"]["include_usage"], true);
    up.stop().await;
}

#[tokio::test]
async fn cumulative_usage_on_every_chunk() {
    let up = FakeUpstream::start().await;
    let mut body = chat("fake-cumulative", true, false);
    body["max_tokens"] = json!(7);
    let chunks = stream_chunks(post(&up, "/chat/completions", body).await).await;
    assert_eq!(content(&chunks), "hello hello hello hello hello hello hello");
    let completions: Vec<u64> = chunks.iter().map(|c| c["usage"]["completion_tokens"].as_u64().unwrap()).collect();
    assert_eq!(completions, vec![0, 3, 6, 7, 7]);
    assert!(chunks
        .iter()
        .all(|c| c["usage"]["prompt_tokens"] == 6 && c["choices"].as_array().unwrap().len() == 1));
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 13);
    let stats = up.stats();
    assert_eq!((stats.prompt_tokens, stats.completion_tokens), (6, 7));
    up.stop().await;
}

#[tokio::test]
async fn choices_null_usage_chunk() {
    let up = FakeUpstream::start().await;
    let chunks = stream_chunks(post(&up, "/chat/completions", chat("fake-choices-null", true, true)).await).await;
    let last = chunks.last().unwrap();
    assert!(last.get("choices").is_some() && last["choices"].is_null());
    assert_eq!(last["usage"]["completion_tokens"], 12);
    // Without include_usage there is no usage chunk.
    let chunks = stream_chunks(post(&up, "/chat/completions", chat("fake-choices-null", true, false)).await).await;
    assert!(chunks.iter().all(|c| c.get("usage").is_none() && c["choices"].is_array()));
    assert_eq!(up.stats().completion_tokens, 24);
    up.stop().await;
}

#[tokio::test]
async fn no_usage_never_reports_but_is_counted() {
    let up = FakeUpstream::start().await;
    let body: Value = post(&up, "/chat/completions", chat("fake-no-usage", false, false))
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("usage").is_none());
    assert_eq!(body["choices"][0]["message"]["content"], TWELVE);
    let chunks = stream_chunks(post(&up, "/chat/completions", chat("fake-no-usage", true, true)).await).await;
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(content(&chunks), TWELVE);
    let stats = up.stats();
    assert_eq!((stats.requests, stats.prompt_tokens, stats.completion_tokens), (2, 12, 24));
    up.stop().await;
}

/// Reads a response body chunk by chunk until it ends or fails; returns the text and whether it failed.
async fn read_until_end(mut response: reqwest::Response) -> (String, bool) {
    let mut text = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => text.extend_from_slice(&bytes),
            Ok(None) => return (String::from_utf8(text).unwrap(), false),
            Err(_) => return (String::from_utf8(text).unwrap(), true),
        }
    }
}

#[tokio::test]
async fn abort_drops_the_connection_without_done() {
    let up = FakeUpstream::start().await;
    let response = post(&up, "/chat/completions", chat("fake-abort", true, true)).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_end(response).await;
    assert!(failed, "the body must end in an error, got {text:?}");
    let events = sse(&text);
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    // role chunk + 2 of the 4 content chunks; no finish chunk, no usage chunk even though it was asked.
    assert_eq!(chunks.len(), 3);
    assert_eq!(content(&chunks), "hello hello hello hello hello hello");
    assert!(chunks.iter().all(|c| c["usage"].is_null()));
    let stats = up.stats();
    assert_eq!(
        (stats.aborted, stats.prompt_tokens, stats.completion_tokens, stats.disconnected),
        (1, 6, 6, 0)
    );

    // Not streaming: half a JSON body, then the connection drops; no completion delivered.
    let response = post(&up, "/chat/completions", chat("fake-abort", false, false)).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_end(response).await;
    assert!(failed);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let stats = up.stats();
    assert_eq!((stats.aborted, stats.prompt_tokens, stats.completion_tokens), (2, 12, 6));
    up.stop().await;
}

#[tokio::test]
async fn slow_waits_between_chunks_and_still_reports_usage() {
    let up = FakeUpstream::start().await;
    let started = Instant::now();
    let response = client()
        .post(format!("{}/chat/completions", up.base_url()))
        .header("x-fake-delay-ms", "40")
        .json(&chat("fake-slow", true, true))
        .send()
        .await
        .unwrap();
    let chunks = stream_chunks(response).await;
    // 8 events (role, 4 content, finish, usage, [DONE]) with 7 waits between them.
    assert!(
        started.elapsed() >= Duration::from_millis(7 * 40),
        "took only {:?}",
        started.elapsed()
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 12);
    assert_eq!(content(&chunks), TWELVE);
    up.stop().await;
}

#[tokio::test]
async fn slow_default_delay_applies_without_the_header() {
    let up = FakeUpstream::start().await;
    let mut body = chat("fake-slow", true, false);
    body["max_tokens"] = json!(1);
    let started = Instant::now();
    // role, 1 content, finish, [DONE]: 3 waits of 200 ms.
    let chunks = stream_chunks(post(&up, "/chat/completions", body).await).await;
    assert!(started.elapsed() >= Duration::from_millis(600), "took only {:?}", started.elapsed());
    assert_eq!(content(&chunks), "hello");
    up.stop().await;
}

#[tokio::test]
async fn slow_stream_dropped_by_the_client_counts_only_what_was_sent() {
    let up = FakeUpstream::start().await;
    let mut response = client()
        .post(format!("{}/chat/completions", up.base_url()))
        .header("x-fake-delay-ms", "150")
        .json(&chat("fake-slow", true, true))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("hello hello hello") {
        text.push_str(std::str::from_utf8(&response.chunk().await.unwrap().unwrap()).unwrap());
    }
    drop(response);
    let stats = wait_for(&up, |s| s.disconnected == 1).await;
    assert_eq!(stats.aborted, 0);
    assert_eq!(stats.prompt_tokens, 6);
    assert!(stats.completion_tokens >= 3 && stats.completion_tokens < 12, "{stats:?}");
    up.stop().await;
}

#[tokio::test]
async fn rate_limited_and_server_error() {
    let up = FakeUpstream::start().await;
    let response = post(&up, "/chat/completions", chat("fake-429", true, true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    assert!(body["error"]["message"].as_str().unwrap().contains("fake-429"));
    assert!(body["error"].get("param").is_some());

    let response = post(&up, "/chat/completions", chat("fake-500", false, false)).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");

    let response = post(&up, "/embeddings", json!({"model": "fake-429", "input": "a b"})).await;
    assert_eq!(response.status(), 429);

    let stats = up.stats();
    assert_eq!(stats.last_request, Some(json!({"model": "fake-429", "input": "a b"})));
    assert_eq!(
        Stats {
            last_request: None,
            last_authorization: None,
            ..stats
        },
        Stats {
            requests: 3,
            errors: 3,
            ..Stats::default()
        },
        "errors add no tokens"
    );
    up.stop().await;
}

#[tokio::test]
async fn hang_never_answers_until_the_client_gives_up() {
    let up = FakeUpstream::start().await;
    let started = Instant::now();
    let result = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/chat/completions", up.base_url()))
        .json(&chat("fake-hang", true, true))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(started.elapsed() >= Duration::from_millis(300));
    let stats = up.stats();
    assert_eq!((stats.requests, stats.errors, stats.prompt_tokens), (1, 0, 0));
    up.stop().await;
}

#[tokio::test]
async fn stop_releases_a_hanging_request() {
    let up = FakeUpstream::start().await;
    let url = format!("{}/chat/completions", up.base_url());
    let pending = tokio::spawn(async move { client().post(url).json(&chat("fake-hang", false, false)).send().await });
    wait_for(&up, |s| s.requests == 1).await;
    let started = Instant::now();
    up.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let response = tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap();
    assert!(response.map(|r| r.status() == 503).unwrap_or(true));
}

#[tokio::test]
async fn embeddings_of_every_input_shape() {
    let up = FakeUpstream::start().await;
    let body: Value = post(&up, "/embeddings", json!({"model": "fake-embed", "input": "the quick brown fox"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "fake-embed");
    assert_eq!(body["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    assert_eq!(body["data"][0]["object"], "embedding");
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 8);

    let body: Value = post(
        &up,
        "/embeddings",
        json!({"model": "fake-embed", "input": ["a b", "c d e"], "dimensions": 3}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 3);

    // What the official SDK sends by default: base64 of little-endian f32.
    let body: Value = post(
        &up,
        "/embeddings",
        json!({"model": "fake-embed", "input": [[1, 2, 3]], "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["usage"]["total_tokens"], 3);
    let encoded = body["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(encoded.len(), 44, "8 floats = 32 bytes = 44 base64 characters");

    let response = post(&up, "/embeddings", json!({"model": "fake-final", "input": "x"})).await;
    assert_eq!(response.status(), 400);
    let response = post(&up, "/embeddings", json!({"model": "fake-embed", "input": {"no": 1}})).await;
    assert_eq!(response.status(), 400);
    let response = post(&up, "/chat/completions", chat("fake-embed", false, false)).await;
    assert_eq!(response.status(), 400);

    let stats = up.stats();
    assert_eq!(
        (
            stats.requests,
            stats.embedding_tokens,
            stats.errors,
            stats.prompt_tokens,
            stats.completion_tokens
        ),
        (6, 12, 3, 0, 0)
    );
    up.stop().await;
}

#[tokio::test]
async fn malformed_requests_and_unknown_models_are_openai_errors() {
    let up = FakeUpstream::start().await;
    let response = client()
        .post(format!("{}/chat/completions", up.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(up.stats().last_request, None);

    let response = post(&up, "/chat/completions", chat("gpt-4o", false, false)).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");

    let response = post(&up, "/chat/completions", json!({"messages": []})).await;
    assert_eq!(response.status(), 400);

    let response = client().get(format!("{}/nowhere", up.base_url())).send().await.unwrap();
    assert_eq!(response.status(), 404);

    let stats = up.stats();
    assert_eq!((stats.requests, stats.errors), (3, 3));
    up.stop().await;
}

#[tokio::test]
async fn stats_and_reset_over_http() {
    let up = FakeUpstream::start().await;
    post(&up, "/chat/completions", chat("fake-final", false, false)).await;
    let root = format!("http://{}", up.addr);
    let over_http: Stats = client().get(format!("{root}/__stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http, up.stats());
    assert_eq!(over_http.completion_tokens, 12);
    let response = client().post(format!("{root}/__reset")).send().await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(up.stats(), Stats::default());
    post(&up, "/chat/completions", chat("fake-final", false, false)).await;
    up.reset();
    let over_http: Stats = client().get(format!("{root}/__stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(over_http, Stats::default());
    up.stop().await;
}

#[tokio::test]
async fn drop_stops_the_server() {
    let up = FakeUpstream::start().await;
    let url = format!("{}/models", up.base_url());
    assert!(client().get(&url).send().await.is_ok());
    drop(up);
    let deadline = Instant::now() + Duration::from_secs(5);
    // A fresh client (no pooled connection) must eventually be refused.
    while reqwest::Client::new().get(&url).send().await.is_ok() {
        assert!(Instant::now() < deadline, "still serving after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_requests_add_up() {
    let up = FakeUpstream::start().await;
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let url = format!("{}/chat/completions", up.base_url());
        tasks.push(tokio::spawn(async move {
            let mut body = chat(if i % 2 == 0 { "fake-final" } else { "fake-cumulative" }, i % 3 == 0, true);
            body["max_tokens"] = json!(i);
            let response = client().post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = up.stats();
    assert_eq!(
        (stats.requests, stats.prompt_tokens, stats.completion_tokens),
        (20, 120, (0..20).sum::<u64>())
    );
    up.stop().await;
}
