//! Skill calls are charged like model calls (issue 19 item 1, M2.3): a paid call made with an
//! API key holds its price against the key's monthly budget before the publisher is called and
//! settles in the commit that counts it. A call beyond the budget is refused with
//! `budget_exceeded` and counts nothing (the publisher is not even called); a failed call costs
//! nothing; a retry is paid once; two replicas racing cannot overspend; the key's allowed skills
//! and calls per minute hold on `/mcp` and the invoke API alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use crate::skills::{calls_of, ledger_calls, listed_mcp_skill, world, RawMcp, World};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// A new key of the invoker with these limits; returns (key id, secret).
async fn limited_key(w: &World, limits: Value) -> (String, String) {
    let k = w.invoker.post_json("/api/v1/me/api-keys", json!({"name": "budgeted"})).await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.text);
    let (id, secret) = (
        k.json()["key"]["id"].as_str().unwrap().to_string(),
        k.json()["secret"].as_str().unwrap().to_string(),
    );
    let r = w.invoker.put_json(&format!("/api/v1/me/api-keys/{id}/limits"), limits).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (id, secret)
}

async fn enable(w: &World, skill_id: &str) {
    let r = w
        .invoker
        .put_json(&format!("/api/v1/skills/{skill_id}/enabled"), json!({"enabled": true}))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

async fn budget(w: &World, key_id: &str) -> (i64, i64) {
    w.app
        .store
        .budget_use(key_id, &opchub_ledger::event::period_of(opchub_store::now_ms()))
        .await
        .unwrap()
}

fn invoke(a: i64) -> Value {
    json!({"tool": "add", "arguments": {"a": a, "b": 1}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_fen_budget_pays_two_fifty_fen_calls_and_refuses_the_third_uncounted() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "budget-calc", 50).await;
    enable(&w, &id).await;
    let (key_id, secret) = limited_key(&w, json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 100})).await;
    let api = Client::with_key(&w.app.base, &secret);
    for a in 0..2 {
        let r = api.post_json(&format!("/api/v1/skills/{id}/invoke"), invoke(a)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["charged_fen"], 50);
        assert_eq!(r.json()["qualified"], true);
    }
    assert_eq!(budget(&w, &key_id).await, (100, 0), "two calls spent the budget, nothing left held");
    let upstream_before = w.mcp.calls();
    let r = api.post_json(&format!("/api/v1/skills/{id}/invoke"), invoke(9)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.code(), "budget_exceeded");
    assert!(
        r.json()["error"]["message"].as_str().unwrap().contains("预算"),
        "Chinese first: {}",
        r.text
    );
    // Counted nowhere: not called, no call row, no ledger event, nothing spent or held.
    assert_eq!(w.mcp.calls(), upstream_before, "the publisher was not called");
    assert_eq!(calls_of(&w, &id).await.len(), 2);
    assert_eq!(ledger_calls(&w, &w.invoker_party).await.len(), 2);
    assert_eq!(budget(&w, &key_id).await, (100, 0));
    let d = w.publisher.get("/api/v1/my/skills").await.json();
    assert_eq!(d["totals"]["calls"], 2);

    // The same through /mcp: a JSON-RPC error naming the code, nothing counted.
    let mcp = RawMcp::connect(&w.app.base, &secret).await;
    let v = mcp.call(1, "budget-calc__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(v["error"]["data"]["code"], "budget_exceeded", "{v}");
    assert_eq!(calls_of(&w, &id).await.len(), 2);
    assert_eq!(budget(&w, &key_id).await, (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_cost_nothing_and_a_retry_is_paid_once() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "retry-budget", 50).await;
    enable(&w, &id).await;
    let (key_id, secret) = limited_key(&w, json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 150})).await;
    // A failing tool: the hold is released, nothing spent.
    let api = Client::with_key(&w.app.base, &secret);
    let r = api
        .post_json(&format!("/api/v1/skills/{id}/invoke"), json!({"tool": "fail", "arguments": {}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.json()["outcome"].as_str(), r.json()["charged_fen"].as_i64()),
        (Some("tool_error"), Some(0))
    );
    assert_eq!(budget(&w, &key_id).await, (0, 0));
    // Arguments the schema refuses: refused before anything is held.
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "add", "arguments": {"a": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(budget(&w, &key_id).await, (0, 0));
    // The same request three times (one Idempotency-Key): one call, paid once.
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .post(format!("{}/api/v1/skills/{id}/invoke", w.app.base))
            .bearer_auth(&secret)
            .header("idempotency-key", "order-42")
            .json(&invoke(5))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(budget(&w, &key_id).await, (50, 0), "a retry is paid once");
    // A retried JSON-RPC request on one /mcp session: one call, paid once.
    let mcp = RawMcp::connect(&w.app.base, &secret).await;
    for _ in 0..2 {
        let v = mcp.call(7, "retry-budget__add", json!({"a": 2, "b": 2})).await;
        assert_eq!(v["result"]["content"][0]["text"], "4", "{v}");
    }
    assert_eq!(budget(&w, &key_id).await, (100, 0));
    let charged: i64 = calls_of(&w, &id).await.iter().map(|c| c.charged_fen).sum();
    assert_eq!(charged, 100, "what the key spent is what the calls were charged");
    // 50 fen left: one more call fits, then the budget is spent.
    assert_eq!(
        api.post_json(&format!("/api/v1/skills/{id}/invoke"), invoke(8)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.post_json(&format!("/api/v1/skills/{id}/invoke"), invoke(9)).await.code(),
        "budget_exceeded"
    );
    assert_eq!(budget(&w, &key_id).await, (150, 0));
}

/// Twenty concurrent 50-fen calls through two replicas against a 500-fen budget: exactly ten
/// succeed, the key spent exactly 500 and the ledger holds exactly ten charged calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_on_two_replicas_never_overspend_the_budget() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "race-calc", 50).await;
    enable(&w, &id).await;
    let (key_id, secret) = limited_key(&w, json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 500})).await;
    let replica = TestApp::start_with(w.app.db.clone(), w.app.key.clone()).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20i64 {
        let base = if i % 2 == 0 { w.app.base.clone() } else { replica.base.clone() };
        let (secret, barrier, path) = (secret.clone(), barrier.clone(), format!("/api/v1/skills/{id}/invoke"));
        tasks.spawn(async move {
            let c = Client::with_key(&base, &secret);
            barrier.wait().await;
            let r = c.post_json(&path, invoke(i)).await;
            (r.status, r.code())
        });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        match res.unwrap() {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::TOO_MANY_REQUESTS, code) if code == "budget_exceeded" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((ok, refused), (10, 10));
    assert_eq!(budget(&w, &key_id).await, (500, 0));
    let calls = calls_of(&w, &id).await;
    assert_eq!(calls.len(), 10);
    assert_eq!(calls.iter().map(|c| c.charged_fen).sum::<i64>(), 500);
    let events = ledger_calls(&w, &w.invoker_party).await;
    assert_eq!(events.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_allowed_skills_and_calls_per_minute_hold_on_mcp_and_the_api() {
    let w = world().await;
    let allowed = listed_mcp_skill(&w, "allowed-calc", 1).await;
    let other = listed_mcp_skill(&w, "other-calc", 1).await;
    enable(&w, &allowed).await;
    enable(&w, &other).await;
    let (_, secret) = limited_key(
        &w,
        json!({"allowed_models": [], "allowed_skills": ["allowed-calc"], "rpm": 2, "tpm": 0, "monthly_budget_fen": 0}),
    )
    .await;
    // tools/list shows only the allowed skill's tools; the other one cannot be called.
    let mcp = RawMcp::connect(&w.app.base, &secret).await;
    let tools = mcp.tools().await;
    assert!(tools.iter().all(|t| t.starts_with("allowed-calc__")), "{tools:?}");
    assert!(!tools.is_empty());
    let v = mcp.call(1, "other-calc__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(v["error"]["data"]["code"], "skill_not_allowed", "{v}");
    let api = Client::with_key(&w.app.base, &secret);
    let r = api.post_json(&format!("/api/v1/skills/{other}/invoke"), invoke(1)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "skill_not_allowed".to_string()),
        "{}",
        r.text
    );
    assert!(calls_of(&w, &other).await.is_empty(), "a refused call counts nothing");
    // Two calls a minute: the third is refused, on /mcp as on the API.
    let v = mcp.call(2, "allowed-calc__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(v["result"]["content"][0]["text"], "2", "{v}");
    assert_eq!(
        api.post_json(&format!("/api/v1/skills/{allowed}/invoke"), invoke(1)).await.status,
        StatusCode::OK
    );
    let v = mcp.call(3, "allowed-calc__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(v["error"]["data"]["code"], "rate_limit_exceeded", "{v}");
    let r = api.post_json(&format!("/api/v1/skills/{allowed}/invoke"), invoke(2)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded".to_string())
    );
    assert_eq!(calls_of(&w, &allowed).await.len(), 2);
    // The limits show on the gateway page, and the page form keeps the allowed skills.
    let page = w.invoker.get("/gateway").await;
    assert!(page.text.contains("<code>allowed-calc</code>"), "{}", page.text);
}
