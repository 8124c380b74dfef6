//! The factor gateway (M2.2) against a real fake upstream: every usage mode metered exactly
//! (ledger tokens − upstream-emitted tokens = 0), the extra usage chunk stripped, client
//! disconnects and upstream aborts, failover before the first byte, budgets that concurrent
//! requests on two replicas cannot overspend, bad input answered in OpenAI's shape
//! without charging anything, and requests beyond capacity refused at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_testkit::{FakeUpstream, MODELS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

struct Setup {
    app: TestApp,
    upstream: FakeUpstream,
    /// Client holding the OPC's API key.
    opc: Client,
    opc_id: String,
    key_id: String,
    operator_id: String,
    browser: Client,
}

/// An operator's approved channel to `base_url` with a price table; prices in fen per
/// million tokens.
async fn channel(app: &TestApp, name: &str, base_url: &str, priority: i64, prices: (i64, i64, i64), timeout_ms: i64) -> String {
    let (op, op_id) = app.user(&format!("chanop_{name}"), Role::CommunityOperator).await;
    let r = op
        .post_json(
            "/api/v1/gateway/channels",
            json!({"name": name, "base_url": base_url, "secret": "sk-upstream-secret", "models": MODELS, "priority": priority, "timeout_ms": timeout_ms}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains("sk-upstream-secret"), "the secret is never shown");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (platform, _) = app.user(&format!("plat_{name}"), Role::PlatformOperator).await;
    let r = platform
        .put_json(&format!("/api/v1/gateway/channels/{id}/status"), json!({"status": "approved"}))
        .await;
    assert_eq!(r.json()["status"], "approved");
    let (inp, cached, out) = prices;
    let prices: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"model": m, "list_input": inp * 2, "opc_input": inp, "list_cached": cached * 2, "opc_cached": cached, "list_output": out * 2, "opc_output": out}))
        .collect();
    let r = op
        .post_json("/api/v1/gateway/prices", json!({"version": format!("{name}-v1"), "prices": prices}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Priced once the platform operator approved the table, as the channel (issue 18).
    approve_prices(&platform, &op_id, &format!("{name}-v1")).await;
    op_id
}

async fn setup(prices: (i64, i64, i64)) -> Setup {
    setup_on(TestApp::start().await, prices).await
}

async fn setup_on(app: TestApp, prices: (i64, i64, i64)) -> Setup {
    let upstream = FakeUpstream::start().await;
    let operator_id = channel(&app, "main", &upstream.base_url(), 0, prices, 3000).await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration("gwopc", &uscc(90), "hexi_area", &ws[0]))
        .await
        .json();
    let browser = app.client();
    browser.login("gwopc", PASSWORD).await;
    let k = browser.post_json("/api/v1/me/api-keys", json!({"name": "sdk"})).await.json();
    Setup {
        opc: Client::with_key(&app.base, k["secret"].as_str().unwrap()),
        key_id: k["key"]["id"].as_str().unwrap().to_string(),
        opc_id: reg["opc"]["id"].as_str().unwrap().to_string(),
        app,
        upstream,
        operator_id,
        browser,
    }
}

/// Waits until the gateway has recorded `n` requests for the key (streams finish metering
/// after the response).
async fn wait_recorded(s: &Setup, n: usize) -> Vec<opchub_store::gateway::RequestOutcome> {
    for _ in 0..200 {
        let r = s.app.store.requests_of_key(&s.key_id, 1000).await.unwrap();
        if r.len() >= n {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not record {n} requests");
}

/// (prompt incl. cached, cached, completion) tokens booked to the OPC this month.
async fn ledger_tokens(s: &Setup) -> (i64, i64, i64) {
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let totals = s.app.store.usage_totals(&s.opc_id, false, &period).await.unwrap();
    let get = |k: &str| totals.iter().find(|t| t.kind == k).map(|t| t.quantity).unwrap_or(0);
    (
        get("token.input") + get("token.cached_input"),
        get("token.cached_input"),
        get("token.output"),
    )
}

/// A streamed chat whose upstream waits 150 ms between its `max_tokens` chunks, read by hand.
async fn slow_stream(s: &Setup, max_tokens: i64) -> reqwest::Response {
    let mut body = chat("fake-slow", true, false);
    body["max_tokens"] = json!(max_tokens);
    body["fake_delay_ms"] = json!(150);
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.app.base))
        .bearer_auth(s.opc.bearer.clone().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn chat(model: &str, stream: bool, include_usage: bool) -> Value {
    let mut b =
        json!({"model": model, "messages": [{"role": "user", "content": "hello hello hello hello"}], "max_tokens": 7, "stream": stream});
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_usage_mode_is_metered_exactly() {
    let s = setup((200, 50, 600)).await;
    let mut n = 0;
    for model in ["fake-final", "fake-cumulative", "fake-choices-null", "fake-no-usage"] {
        for (stream, include) in [(false, false), (true, false), (true, true)] {
            let r = s.opc.post_json("/v1/chat/completions", chat(model, stream, include)).await;
            assert_eq!(r.status, StatusCode::OK, "{model} {stream} {include}: {}", r.text);
            if stream {
                assert!(r.text.contains("hello"), "content passes through");
                assert!(r.text.trim_end().ends_with("data: [DONE]"));
                if !include {
                    // The usage chunk the gateway asked for is not shown to the client.
                    for line in r.text.lines().filter(|l| l.starts_with("data: {")) {
                        let v: Value = serde_json::from_str(&line[6..]).unwrap();
                        let usage_only = v["choices"].as_array().is_none_or(|c| c.is_empty()) && !v["usage"].is_null();
                        assert!(!usage_only || model == "fake-cumulative", "{model}: stray usage chunk {line}");
                    }
                    let upstream_req = s.upstream.stats().last_request.unwrap();
                    assert_eq!(
                        upstream_req["stream_options"]["include_usage"], true,
                        "the gateway asks upstream for usage"
                    );
                }
            } else {
                assert_eq!(
                    r.json()["choices"][0]["message"]["content"],
                    "hello hello hello hello hello hello hello"
                );
            }
            n += 1;
            let rec = wait_recorded(&s, n).await;
            assert_eq!(rec[0].estimated, model == "fake-no-usage", "{model}");
            let stats = s.upstream.stats();
            let (prompt, cached, completion) = ledger_tokens(&s).await;
            assert_eq!(
                (prompt, cached, completion),
                (
                    stats.prompt_tokens as i64,
                    stats.cached_tokens as i64,
                    stats.completion_tokens as i64
                ),
                "{model} stream={stream} include_usage={include}: ledger − upstream must be 0"
            );
        }
    }
    // Cached input tokens are counted once, at the cached price.
    let r = s
        .opc
        .send(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(Body::Json(chat("fake-final", false, false))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Metering commits right after the answer: wait for it before taking the baseline.
    wait_recorded(&s, n + 1).await;
    let before = ledger_tokens(&s).await;
    let http = reqwest::Client::new();
    let mut cached_req = chat("fake-final", true, true);
    cached_req["fake_cached_tokens"] = json!(3);
    let r = http
        .post(format!("{}/v1/chat/completions", s.app.base))
        .bearer_auth(s.opc.bearer.clone().unwrap())
        .json(&cached_req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let _ = r.text().await;
    wait_recorded(&s, n + 2).await;
    let after = ledger_tokens(&s).await;
    assert_eq!(after.1 - before.1, 3);
    assert_eq!(after.0 - before.0, 4, "cached tokens are part of the prompt, counted once");
    let stats = s.upstream.stats();
    assert_eq!(
        after,
        (
            stats.prompt_tokens as i64,
            stats.cached_tokens as i64,
            stats.completion_tokens as i64
        )
    );
    // Every event names channel, operator, model, price version and both amounts.
    let ev = s.app.store.ledger_event(0).await.unwrap();
    assert_eq!(
        (ev.source.as_str(), ev.counterparty.as_str(), ev.price_version.as_str()),
        ("gateway", s.operator_id.as_str(), "main-v1")
    );
    assert!(ev.attributes.contains_key("channel") && ev.attributes["model"] == "fake-final");
    assert!(ev.list_fen >= ev.charged_fen);
    assert!(s
        .app
        .store
        .ledger_verify(&s.app.key.verifier_key(), &|_| {})
        .await
        .unwrap()
        .problems
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_and_disconnects_are_metered_from_what_was_really_sent() {
    let s = setup((200, 50, 600)).await;
    // The upstream drops the stream half-way: the partial output is counted (estimated).
    let r = s.opc.post_json("/v1/chat/completions", chat("fake-abort", true, false)).await;
    assert_eq!(r.status, StatusCode::OK);
    let rec = wait_recorded(&s, 1).await;
    assert_eq!(rec[0].outcome, "upstream_aborted");
    let stats = s.upstream.stats();
    assert_eq!(
        ledger_tokens(&s).await,
        (stats.prompt_tokens as i64, 0, stats.completion_tokens as i64)
    );

    // The client leaves after the first chunk: the gateway keeps reading to the final usage.
    let mut resp = slow_stream(&s, 12).await;
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    let rec = wait_recorded(&s, 2).await;
    assert_eq!(rec[0].outcome, "client_disconnected");
    assert!(!rec[0].estimated, "the final usage was read after the client left");
    assert_eq!(rec[0].completion_tokens, 12);
    let stats = s.upstream.stats();
    assert_eq!(
        ledger_tokens(&s).await,
        (stats.prompt_tokens as i64, 0, stats.completion_tokens as i64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_channel_fails_over_and_errors_cost_nothing() {
    let s = setup((200, 50, 600)).await;
    // A higher-priority channel whose upstream refuses connections.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let dead_op = channel(&s.app, "dead", &dead_url, 10, (200, 50, 600), 1000).await;
    let r = s.opc.post_json("/v1/chat/completions", chat("fake-final", false, false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rec = wait_recorded(&s, 1).await;
    assert_ne!(rec[0].channel_id, None);
    let ev = s.app.store.ledger_event(0).await.unwrap();
    assert_eq!(ev.counterparty, s.operator_id, "served (and billed) by the channel that answered");
    assert_ne!(ev.counterparty, dead_op);
    // Recorded off the request's path: wait for it.
    let mut marked = false;
    for _ in 0..100 {
        if !s.app.store.channels(Some(&dead_op)).await.unwrap()[0].healthy {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(marked, "the failing channel is marked unhealthy");

    let size = s.app.store.ledger_size().await.unwrap();
    for model in ["fake-429", "fake-500", "fake-hang"] {
        let r = s.opc.post_json("/v1/chat/completions", chat(model, false, false)).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{model}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], "upstream_error");
    }
    let rec = wait_recorded(&s, 4).await;
    assert!(rec[..3].iter().all(|o| o.outcome == "upstream_error" && o.charged_fen == 0));
    assert_eq!(s.app.store.ledger_size().await.unwrap(), size, "failed requests cost nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_two_replicas_never_overspend_the_budget() {
    // 1 fen per input token and per output token: each request (4 + 7 tokens) costs 11 fen.
    let s = setup((1_000_000, 1_000_000, 1_000_000)).await;
    let r = s
        .browser
        .put_json(
            &format!("/api/v1/me/api-keys/{}/limits", s.key_id),
            json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let replica = TestApp::start_with(s.app.db.clone(), s.app.key.clone()).await;
    let key = s.opc.bearer.clone().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let base = if i % 2 == 0 { s.app.base.clone() } else { replica.base.clone() };
        let key = key.clone();
        tasks.spawn(async move {
            let c = Client::with_key(&base, &key);
            let r = c.post_json("/v1/chat/completions", chat("fake-final", false, false)).await;
            (
                r.status,
                r.headers.get("retry-after").is_some(),
                r.json()["error"]["code"].as_str().unwrap_or("").to_string(),
                r.text,
            )
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, retry_after, code, text) = r.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(
                (status, retry_after, code.as_str()),
                (StatusCode::TOO_MANY_REQUESTS, true, "budget_exceeded"),
                "{text}"
            );
        }
    }
    assert_eq!(ok, 9, "9 × 11 fen fit in 100 fen, the 10th does not");
    wait_recorded(&s, 9).await;
    let (spent, held) = s
        .app
        .store
        .budget_use(&s.key_id, &opchub_ledger::event::period_of(opchub_store::now_ms()))
        .await
        .unwrap();
    assert_eq!((spent, held), (99, 0));
    replica.stop().await;
}

/// Announces a 50 MB body, sends its first 9 MB and reads the answer, like a client that
/// respects an early 413 (a plain client that keeps writing may see the connection close).
async fn post_declared_50mb(base: &str, key: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        50 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..9 {
        if tcp.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_openai_shaped_errors_and_costs_nothing() {
    let s = setup((200, 50, 600)).await;
    let anon = s.app.client();
    let r = anon.post_json("/v1/chat/completions", chat("fake-final", false, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"]["message"].is_string() && r.json()["error"]["type"].is_string());
    let r = Client::with_key(&s.app.base, "opk_nonsense")
        .post_json("/v1/chat/completions", chat("fake-final", false, false))
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
    let r = s
        .opc
        .send(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(Body::Raw("application/json", b"{\"model\": ".to_vec())),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request_error"))
    );
    let mut yes = chat("fake-final", false, false);
    yes["stream"] = json!("yes");
    assert_eq!(s.opc.post_json("/v1/chat/completions", yes).await.status, StatusCode::BAD_REQUEST);
    let (status, body) = post_declared_50mb(&s.app.base, s.opc.bearer.as_deref().unwrap()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("request_too_large"), "{body}");
    let r = s.opc.post_json("/v1/chat/completions", chat("gpt-unknown", false, false)).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("model_not_found"))
    );

    // A key limited to one model: others are 403, and /v1/models lists only that one.
    s.browser
        .put_json(
            &format!("/api/v1/me/api-keys/{}/limits", s.key_id),
            json!({"allowed_models": ["fake-final"], "rpm": 0, "tpm": 0, "monthly_budget_fen": 0}),
        )
        .await;
    let r = s.opc.post_json("/v1/chat/completions", chat("fake-cumulative", false, false)).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("model_not_allowed"))
    );
    let models = s.opc.get("/v1/models").await.json();
    assert_eq!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["fake-final"]
    );

    // Requests per minute.
    s.browser
        .put_json(
            &format!("/api/v1/me/api-keys/{}/limits", s.key_id),
            json!({"allowed_models": [], "rpm": 2, "tpm": 0, "monthly_budget_fen": 0}),
        )
        .await;
    assert_eq!(
        s.opc
            .post_json("/v1/chat/completions", chat("fake-final", false, false))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.opc
            .post_json("/v1/chat/completions", chat("fake-final", false, false))
            .await
            .status,
        StatusCode::OK
    );
    let r = s.opc.post_json("/v1/chat/completions", chat("fake-final", false, false)).await;
    assert_eq!(
        (r.status, r.headers.contains_key("retry-after")),
        (StatusCode::TOO_MANY_REQUESTS, true)
    );

    // A revoked key.
    s.browser
        .send(reqwest::Method::DELETE, &format!("/api/v1/me/api-keys/{}", s.key_id), None)
        .await;
    assert_eq!(s.opc.get("/v1/models").await.status, StatusCode::UNAUTHORIZED);
    // Only the two successful calls were charged (metering commits right after the answer).
    assert_eq!(wait_recorded(&s, 2).await.len(), 2, "refused requests are not recorded");
    let events = s.app.store.ledger_size().await.unwrap();
    assert_eq!(events, 4, "two requests × (input, output)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_its_capacity_the_gateway_refuses_at_once_and_charges_nothing() {
    let app = TestApp::start_with_gateway(opchub_gateway::GatewayConfig {
        max_in_flight: 1,
        drain_timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .await;
    let s = setup_on(app, (200, 50, 600)).await;
    // A slow stream takes the only slot…
    let mut stream = slow_stream(&s, 6).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.chunk().await.unwrap().is_some());
    let upstream_requests = s.upstream.stats().requests;

    // …so a request meanwhile is refused at once, in OpenAI's shape, with Retry-After.
    for req in [chat("fake-final", false, false), chat("fake-final", true, true)] {
        let r = s.opc.post_json("/v1/chat/completions", req).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert_eq!(r.code(), "overloaded");
        assert_eq!(r.json()["error"]["type"], "server_error");
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    }
    assert_eq!(
        s.upstream.stats().requests,
        upstream_requests,
        "refused requests never reach upstream"
    );

    // The stream itself is unaffected and metered exactly; the refusals cost and record nothing.
    let mut text = String::new();
    while let Some(c) = stream.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let rec = wait_recorded(&s, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec_after = s.app.store.requests_of_key(&s.key_id, 1000).await.unwrap();
    assert_eq!(rec_after.len(), 1, "only the stream is recorded: {rec_after:?}");
    assert_eq!(rec[0].outcome, "ok");
    let stats = s.upstream.stats();
    assert_eq!(
        ledger_tokens(&s).await,
        (stats.prompt_tokens as i64, 0, stats.completion_tokens as i64)
    );

    // Once the relay has ended, its slot is free again.
    let mut ok = false;
    for _ in 0..100 {
        let r = s.opc.post_json("/v1/chat/completions", chat("fake-final", false, false)).await;
        if r.status == StatusCode::OK {
            ok = true;
            break;
        }
        assert_eq!(r.code(), "overloaded", "{}", r.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the slot was not released after the stream ended");
}
