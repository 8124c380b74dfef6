//! Skill Store (M2.3) end to end against real publishers (a real MCP server built with the
//! official Rust SDK, and an HTTP tool server): publish → automated checks → review → list →
//! search → enable → invoke through `/mcp` (MCP Streamable HTTP, also with the official Rust
//! SDK's client) and `POST /api/v1/skills/{id}/invoke` → counts on both dashboards and in the
//! ledger. Also: retries counted once, self-dealing recorded but not qualified, failed calls
//! not qualified, rug pulls noticed by the refresh, and bad input refused with nothing counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use base64::Engine;
use opchub_domain::{Role, Zone};
use opchub_testkit::mcp_server::FakeMcp;
use opchub_testkit::tool_server::ToolServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) mcp: FakeMcp,
    /// Publisher OPC founder (browser session).
    pub(crate) publisher: Client,
    pub(crate) publisher_party: String,
    /// Invoker OPC founder: browser session and API key.
    pub(crate) invoker: Client,
    pub(crate) invoker_key: String,
    pub(crate) invoker_party: String,
    pub(crate) platform: Client,
}

pub(crate) async fn opc(app: &TestApp, name: &str, n: u32, ws: &str) -> (Client, String) {
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration(name, &uscc(n), "hexi_area", ws))
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let c = app.client();
    c.login(name, PASSWORD).await;
    (c, reg.json()["opc"]["id"].as_str().unwrap().to_string())
}

pub(crate) async fn key(c: &Client) -> String {
    let k = c.post_json("/api/v1/me/api-keys", json!({"name": "agent"})).await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.text);
    k.json()["secret"].as_str().unwrap().to_string()
}

pub(crate) async fn world() -> World {
    let app = TestApp::start().await;
    let mcp = FakeMcp::start().await.unwrap();
    let (_, ws) = app.community(Zone::HexiArea, 3).await;
    let (publisher, publisher_party) = opc(&app, "skillpub", 501, &ws[0]).await;
    let (invoker, invoker_party) = opc(&app, "skilluser", 502, &ws[1]).await;
    let invoker_key = key(&invoker).await;
    let (platform, _) = app.user("skillplatform", Role::PlatformOperator).await;
    World {
        app,
        mcp,
        publisher,
        publisher_party,
        invoker,
        invoker_key,
        invoker_party,
        platform,
    }
}

/// Publishes an MCP skill, submits and approves it; returns its id.
pub(crate) async fn listed_mcp_skill(w: &World, slug: &str, price_fen: i64) -> String {
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": slug, "name": "发票计算助手 Invoice calculator", "summary": "帮你自动计算发票金额，报销更轻松。Adds and echoes.",
                   "kind": "mcp_server", "category": "agent_tool", "tags": ["财税", "finance"], "version": "1.0.0",
                   "price_fen": price_fen, "mcp_url": w.mcp.url(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = r.json()["version"].clone();
    assert_eq!(v["status"], "submitted");
    assert_eq!(v["tools"].as_array().unwrap().len(), 3, "the tool list is fetched and pinned");
    assert_eq!(v["tools_hash"].as_str().unwrap().len(), 64);
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(w, v["id"].as_str().unwrap()).await;
    id
}

pub(crate) async fn approve(w: &World, version_id: &str) {
    let r = w
        .platform
        .post_json(
            &format!("/api/v1/skill-versions/{version_id}/review"),
            json!({"decision": "approve", "comment": "工具描述与实现一致，通过。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "approved");
}

/// A minimal MCP Streamable HTTP client speaking raw JSON-RPC (to control ids and retries).
pub(crate) struct RawMcp {
    http: reqwest::Client,
    url: String,
    key: String,
    session: Option<String>,
}

impl RawMcp {
    pub(crate) async fn connect(base: &str, key: &str) -> RawMcp {
        let mut m = RawMcp {
            http: reqwest::Client::new(),
            url: format!("{base}/mcp"),
            key: key.to_string(),
            session: None,
        };
        let (status, v, sid) = m
            .post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert!(v["result"]["serverInfo"].is_object(), "{v}");
        m.session = sid;
        let (status, _, _) = m.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert!(status.is_success());
        m
    }

    pub(crate) async fn post(&self, body: Value) -> (StatusCode, Value, Option<String>) {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        let v = if ct.starts_with("text/event-stream") {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|v| v.get("id").is_some())
                .unwrap_or(Value::Null)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        (status, v, sid)
    }

    /// The session id the server gave at `initialize`, if any.
    pub(crate) fn session_id(&self) -> Option<String> {
        self.session.clone()
    }

    pub(crate) async fn call(&self, id: i64, name: &str, args: Value) -> Value {
        let (status, v, _) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    pub(crate) async fn tools(&self) -> Vec<String> {
        let (_, v, _) = self.post(json!({"jsonrpc": "2.0", "id": 9999, "method": "tools/list"})).await;
        v["result"]["tools"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }
}

pub(crate) async fn calls_of(w: &World, skill_id: &str) -> Vec<opchub_store::skills::SkillCall> {
    w.app.store.skill_calls_of(skill_id, 1000).await.unwrap()
}

pub(crate) async fn ledger_calls(w: &World, party: &str) -> Vec<opchub_store::ledger::StoredEvent> {
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    w.app
        .store
        .ledger_events_of(party, false, &period, 1000, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "skill.call")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_review_search_invoke_through_mcp_and_count_on_both_dashboards() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "invoice-calc", 5).await;

    // Search in Chinese (segmented) and English, with filters.
    for q in ["发票", "计算", "invoice", "报销"] {
        let r = w.app.client().get(&format!("/api/v1/skills?q={}", urlenc(q))).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json().as_array().unwrap().len(), 1, "query {q}: {}", r.text);
    }
    let r = w.app.client().get("/api/v1/skills?q=发票&kind=http_tool").await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = w.app.client().get("/api/v1/skills?tag=finance&category=agent_tool").await;
    assert_eq!(r.json()[0]["skill"]["slug"], "invoice-calc");
    assert_eq!(r.json()[0]["price_fen"], 5);

    // Nothing is on /mcp before the invoker enables the skill.
    let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    assert!(mcp.tools().await.is_empty());
    let r = w
        .invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut names = mcp.tools().await;
    names.sort();
    assert_eq!(names, vec!["invoice-calc__add", "invoice-calc__echo", "invoice-calc__fail"]);

    let v = mcp.call(1, "invoice-calc__add", json!({"a": 2, "b": 40})).await;
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "42", "the publisher's result passes through");
    assert_eq!(w.mcp.calls(), 1);

    // Counted once, qualified, priced, in the ledger with its attributes.
    let calls = calls_of(&w, &id).await;
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert!(c.qualified && c.outcome == "ok" && c.charged_fen == 5, "{c:?}");
    assert_eq!(
        (c.publisher_party.as_str(), c.invoker_party.as_str()),
        (w.publisher_party.as_str(), w.invoker_party.as_str())
    );
    let events = ledger_calls(&w, &w.invoker_party).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.counterparty.as_str(), e.quantity, e.charged_fen),
        (w.publisher_party.as_str(), 1, 5)
    );
    for a in [
        "publisher",
        "invoker",
        "version_hash",
        "tool",
        "outcome",
        "latency_ms",
        "request_digest",
        "response_digest",
    ] {
        assert!(e.attributes.contains_key(a), "attribute {a} missing: {:?}", e.attributes);
    }
    assert_eq!(e.attributes["qualified"], "true");
    assert_eq!(e.attributes["tool"], "add");

    // Dashboards.
    let d = w.publisher.get("/api/v1/my/skills").await.json();
    assert_eq!(d["totals"]["calls"], 1);
    assert_eq!(d["totals"]["qualified_calls"], 1);
    assert_eq!(d["totals"]["distinct_invokers"], 1);
    assert_eq!(d["totals"]["amount_fen"], 5);
    assert_eq!(d["daily"].as_array().unwrap().len(), 1);
    let d = w.invoker.get("/api/v1/my/skill-usage").await.json();
    assert_eq!(d["totals"]["amount_fen"], 5, "the invoker's spend");
    assert_eq!(d["by_skill"][0]["skill_id"], id.as_str());
    assert_eq!(d["enabled"][0]["slug"], "invoice-calc");
    // Public counts on the listing.
    let r = w.app.client().get("/api/v1/skills/invoice-calc").await.json();
    assert_eq!(r["counts"]["distinct_qualified_invokers"], 1);
    assert_eq!(r["counts"]["qualified_calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_rust_sdk_client_lists_and_calls_through_mcp() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "calc", 0).await;
    w.invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    let (tools, text) = opchub_testkit::mcp_server::client_list_and_call(
        &format!("{}/mcp", w.app.base),
        Some(&w.invoker_key),
        "calc__add",
        json!({"a": 1.5, "b": 2}),
    )
    .await
    .unwrap();
    assert!(tools.contains(&"calc__echo".to_string()), "{tools:?}");
    assert_eq!(text, "3.5");
    assert_eq!(calls_of(&w, &id).await.len(), 1);
    // Without a key the endpoint refuses.
    let err = opchub_testkit::mcp_server::client_list_and_call(&format!("{}/mcp", w.app.base), None, "calc__add", json!({})).await;
    assert!(err.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_is_counted_once() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "retry-calc", 3).await;
    w.invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    // The same JSON-RPC request sent twice on one session (a client retry).
    for _ in 0..2 {
        let v = mcp.call(7, "retry-calc__add", json!({"a": 1, "b": 1})).await;
        assert_eq!(v["result"]["content"][0]["text"], "2");
    }
    // A new id is a new call; a new session with the same id is a new call too.
    mcp.call(8, "retry-calc__add", json!({"a": 1, "b": 2})).await;
    let other = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    other.call(7, "retry-calc__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(calls_of(&w, &id).await.len(), 3);
    assert_eq!(ledger_calls(&w, &w.invoker_party).await.len(), 3);

    // Plain HTTP: the Idempotency-Key decides.
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    for _ in 0..2 {
        let r = api
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/skills/{id}/invoke"),
                Some(Body::Raw(
                    "application/json",
                    br#"{"tool":"add","arguments":{"a":2,"b":2}}"#.to_vec(),
                )),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(calls_of(&w, &id).await.len(), 5, "without a key every request counts");
    let http = reqwest::Client::new();
    let mut seen = vec![];
    for _ in 0..3 {
        let r = http
            .post(format!("{}/api/v1/skills/{id}/invoke", w.app.base))
            .bearer_auth(&w.invoker_key)
            .header("idempotency-key", "order-17")
            .json(&json!({"tool": "add", "arguments": {"a": 5, "b": 5}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["content"][0]["text"], "10");
        seen.push(v["duplicate"].as_bool().unwrap());
    }
    assert_eq!(seen, vec![false, true, true]);
    assert_eq!(calls_of(&w, &id).await.len(), 6);
    assert_eq!(ledger_calls(&w, &w.invoker_party).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_dealing_and_failed_calls_are_recorded_but_not_qualified() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "self-calc", 4).await;
    // The publisher calls its own skill with its own key (same company, same founder).
    let own = Client::with_key(&w.app.base, &key(&w.publisher).await);
    let r = own
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["qualified"], false);
    assert_eq!(r.json()["not_qualified_reason"], "self_dealing");
    // A failing tool: recorded with its outcome, not qualified, nothing charged.
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let r = api
        .post_json(&format!("/api/v1/skills/{id}/invoke"), json!({"tool": "fail", "arguments": {}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["outcome"], "tool_error");
    assert_eq!(r.json()["qualified"], false);
    assert_eq!(r.json()["charged_fen"], 0);
    let calls = calls_of(&w, &id).await;
    assert_eq!(calls.len(), 2);
    let d = w.publisher.get("/api/v1/my/skills").await.json();
    assert_eq!(d["totals"]["calls"], 2);
    assert_eq!(d["totals"]["qualified_calls"], 0);
    assert_eq!(d["totals"]["not_qualified_calls"], 2);
    assert_eq!(d["totals"]["distinct_qualified_invokers"], 0);
    let r = w.app.client().get(&format!("/api/v1/skills/{id}")).await.json();
    assert_eq!(r["counts"]["distinct_qualified_invokers"], 0);
    // Both are in the ledger, marked.
    let own_events = ledger_calls(&w, &w.publisher_party).await;
    assert_eq!(own_events.len(), 1);
    assert_eq!(own_events[0].attributes["not_qualified_reason"], "self_dealing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rug_pull_is_noticed_and_later_calls_are_not_qualified_until_re_reviewed() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "weather-bot", 2).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let call = || async {
        let r = api
            .post_json(
                &format!("/api/v1/skills/{id}/invoke"),
                json!({"tool": "echo", "arguments": {"text": "hi"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    };
    assert_eq!(call().await["qualified"], true);
    let r = w.platform.post_json(&format!("/api/v1/skills/{id}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "unchanged", "{}", r.text);

    // The publisher's server changes a tool description behind the platform's back.
    w.mcp.set_rug_pull(true);
    let r = w.platform.post_json(&format!("/api/v1/skills/{id}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "drifted", "{}", r.text);
    assert_ne!(r.json()["remote_hash"], r.json()["pinned_hash"]);
    let v = call().await;
    assert_eq!(v["qualified"], false);
    assert_eq!(v["not_qualified_reason"], "drifted");
    // /mcp still shows the reviewed descriptions, not the changed ones.
    w.invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    let (_, listed, _) = mcp.post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})).await;
    assert!(!listed.to_string().contains("IMPORTANT"), "{listed}");

    // The background task does the same check: a second refresh keeps the mark.
    let all = opchub_web::skills::refresh_all(&state_of(&w)).await.unwrap();
    assert_eq!(all[0].status, "still_drifted");

    // A new version pins the new list; once approved, calls qualify again.
    let r = w
        .publisher
        .post_json(
            &format!("/api/v1/skills/{id}/versions"),
            json!({"version": "1.1.0", "price_fen": 2, "mcp_url": w.mcp.url(), "submit": true}),
        )
        .await;
    // The changed description carries an injection pattern: the automated check refuses it.
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.code().starts_with("skill_injection"), "{}", r.text);
    w.mcp.set_rug_pull(false);
    let r = w
        .publisher
        .post_json(
            &format!("/api/v1/skills/{id}/versions"),
            json!({"version": "1.1.0", "price_fen": 2, "mcp_url": w.mcp.url(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    approve(&w, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(call().await["qualified"], true);
    let calls = calls_of(&w, &id).await;
    assert_eq!(calls.iter().filter(|c| c.qualified).count(), 2);
}

/// An AppState on the test app's database (for calling runtime functions directly).
fn state_of(w: &World) -> opchub_web::AppState {
    opchub_web::AppState::new(w.app.store.clone(), opchub_web::WebConfig::default(), None)
        .with_skills(opchub_web::skills::SkillsConfig::testing())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tools_from_an_openapi_document_are_called_and_counted() {
    let w = world().await;
    let tools = ToolServer::start().await.unwrap();
    let doc = opchub_testkit::tool_server::openapi_doc(&tools.base_url()).to_string();
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "weather", "name": "天气查询", "summary": "查询城市天气 weather lookup", "kind": "http_tool",
                   "category": "vertical_plugin", "tags": ["气象"], "version": "0.1.0", "price_fen": 1, "openapi": doc,
                   "operations": ["get_weather", "broken"], "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.json()["version"]["tools"].as_array().unwrap().len(),
        2,
        "only the chosen operations"
    );
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(&w, r.json()["version"]["id"].as_str().unwrap()).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "get_weather", "arguments": {"city": "丰台", "units": "c"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["structured_content"]["city"], "丰台");
    assert_eq!(r.json()["qualified"], true);
    let r = api
        .post_json(&format!("/api/v1/skills/{id}/invoke"), json!({"tool": "broken", "arguments": {}}))
        .await;
    assert_eq!(r.json()["outcome"], "tool_error");
    assert_eq!(r.json()["qualified"], false);
    // Arguments failing the schema: refused before the call, nothing counted.
    let before = tools.calls();
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "get_weather", "arguments": {"units": "kelvin"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "skill_arguments_invalid");
    assert_eq!(tools.calls(), before);
    assert_eq!(calls_of(&w, &id).await.len(), 2);
}

fn skill_zip(name: &str, extra: &[(&str, &[u8])]) -> String {
    let md = format!("---\nname: {name}\ndescription: 整理发票并生成报销单。Sorts invoices.\nlicense: MIT\n---\n# {name}\n");
    let mut entries: Vec<(&str, &[u8])> = vec![("SKILL.md", md.as_bytes())];
    entries.extend_from_slice(extra);
    base64::engine::general_purpose::STANDARD.encode(opchub_skills::package::build_zip(&entries))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_skill_packages_install_once_per_invoker_and_version_and_ratings_need_use() {
    let w = world().await;
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"name": "报销助手", "summary": "发票整理", "kind": "agent_skill", "category": "agent_tool", "version": "1.0.0",
                   "package_base64": skill_zip("expense-helper", &[("scripts/run.py", b"print('ok')\n")]), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.json()["skill"]["slug"],
        "expense-helper",
        "the slug defaults to the SKILL.md name"
    );
    assert_eq!(r.json()["version"]["manifest"]["license"], "MIT");
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    // Only invokers who used a skill may rate it.
    let r = w
        .invoker
        .post_json(&format!("/api/v1/skills/{id}/ratings"), json!({"stars": 5}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    approve(&w, r_version(&w, &id).await.as_str()).await;
    let r = w
        .invoker
        .post_json(&format!("/api/v1/skills/{id}/ratings"), json!({"stars": 5}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "skill_not_used");
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let resp = http
            .get(format!("{}/api/v1/skills/{id}/package", w.app.base))
            .bearer_auth(&w.invoker_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/zip");
        let bytes = resp.bytes().await.unwrap();
        assert!(opchub_skills::package::inspect(&bytes, Default::default()).is_ok());
    }
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let installs: Vec<_> = w
        .app
        .store
        .ledger_events_of(&w.invoker_party, false, &period, 100, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "skill.install")
        .collect();
    assert_eq!(installs.len(), 1, "one install per invoker per version");
    let r = w
        .invoker
        .post_json(&format!("/api/v1/skills/{id}/ratings"), json!({"stars": 4, "comment": "好用"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d = w.app.client().get(&format!("/api/v1/skills/{id}")).await.json();
    assert_eq!(d["counts"]["installs"], 1);
    assert_eq!(d["counts"]["rating_x100"], 400);
    assert_eq!(d["ratings"][0]["comment"], "好用");
}

async fn r_version(w: &World, id: &str) -> String {
    let d = w.publisher.get(&format!("/api/v1/skills/{id}")).await.json();
    d["versions"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_nothing_is_written_or_counted() {
    let w = world().await;
    let base = json!({"name": "坏技能", "summary": "bad", "kind": "agent_skill", "category": "agent_tool", "version": "1.0.0"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let b64 = |z: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(z);
    let audit_before = audit_count(&w.app.store).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            with(
                "package_base64",
                json!(b64(opchub_skills::package::build_zip(&[("SKILL.md", b"# no frontmatter\n")]))),
            ),
            "skill_manifest_no_frontmatter",
        ),
        (
            with(
                "package_base64",
                json!(b64(opchub_skills::package::build_zip(&[(
                    "SKILL.md",
                    format!("---\nname: {}\ndescription: d\n---\n", "a".repeat(65)).as_bytes()
                )]))),
            ),
            "skill_manifest_name_too_long",
        ),
        (
            with(
                "package_base64",
                json!(skill_zip("bomb", &[("assets/zeros.bin", &vec![0u8; 4 * 1024 * 1024])])),
            ),
            "skill_package_ratio",
        ),
        (
            with("package_base64", json!(skill_zip("trav", &[("../../etc/passwd", b"x")]))),
            "skill_package_path_traversal",
        ),
        (
            json!({"name": "坏", "summary": "bad", "kind": "http_tool", "category": "agent_tool", "version": "1.0.0", "openapi": "{not: [valid"}),
            "skill_openapi_unparseable",
        ),
        (with("version", json!("v1")), "validation_failed"),
    ];
    for (body, code) in cases {
        let r = w.publisher.post_json("/api/v1/skills", body).await;
        assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY, "{code}: {} {}", r.status, r.text);
        assert_eq!(r.code(), code, "{}", r.text);
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(audit_count(&w.app.store).await, audit_before, "nothing was written");
    assert!(w.app.store.skills(false).await.unwrap().is_empty());

    // A private or loopback MCP URL outside test mode.
    let strict = TestApp::start_on_with_skills(w.app.db.clone(), opchub_web::skills::SkillsConfig::default()).await;
    let pc = strict.client();
    pc.login("skillpub", PASSWORD).await;
    for url in [
        w.mcp.url(),
        "http://10.0.0.8/mcp".into(),
        "http://169.254.169.254/latest".into(),
        "http://localhost:1/mcp".into(),
    ] {
        let r = pc
            .post_json(
                "/api/v1/skills",
                json!({"slug": "intranet", "name": "x", "summary": "x", "kind": "mcp_server", "category": "agent_tool", "version": "1.0.0", "mcp_url": url}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.text);
        assert_eq!(r.code(), "skill_upstream_private_address", "{}", r.text);
    }
    assert_eq!(w.mcp.calls(), 0);
    assert!(w.app.store.skills(false).await.unwrap().is_empty());

    // Arguments failing the schema and a delisted skill: refused, nothing counted.
    let id = listed_mcp_skill(&w, "strict-calc", 1).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "add", "arguments": {"a": "two"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "skill_arguments_invalid");
    w.invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    let v = mcp.call(1, "strict-calc__add", json!({"a": 1})).await;
    assert!(v["error"].is_object() || v["result"]["isError"] == true, "{v}");
    let r = w
        .publisher
        .post_json(&format!("/api/v1/skills/{id}/delist"), json!({"reason": "停止维护"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "add", "arguments": {"a": 1, "b": 2}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert_eq!(r.code(), "skill_delisted");
    assert!(mcp.tools().await.is_empty(), "a delisted skill leaves /mcp");
    let v = mcp.call(2, "strict-calc__add", json!({"a": 1, "b": 2})).await;
    assert!(v["error"].is_object() || v["result"]["isError"] == true, "{v}");
    assert_eq!(w.mcp.calls(), 0, "the publisher was never called");
    assert!(calls_of(&w, &id).await.is_empty());
    assert!(ledger_calls(&w, &w.invoker_party).await.is_empty());
    // The delisted skill is gone from search.
    assert!(w
        .app
        .client()
        .get("/api/v1/skills?q=发票")
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_by_distinct_qualified_invokers_then_rating() {
    let w = world().await;
    let a = listed_mcp_skill(&w, "alpha-calc", 0).await;
    let b = listed_mcp_skill(&w, "beta-calc", 0).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    // One qualified invoker for beta; alpha only self-dealing calls.
    api.post_json(
        &format!("/api/v1/skills/{b}/invoke"),
        json!({"tool": "add", "arguments": {"a": 1, "b": 1}}),
    )
    .await;
    let own = Client::with_key(&w.app.base, &key(&w.publisher).await);
    for _ in 0..3 {
        own.post_json(
            &format!("/api/v1/skills/{a}/invoke"),
            json!({"tool": "add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    }
    let r = w.app.client().get("/api/v1/skills?q=invoice").await.json();
    let order: Vec<_> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["skill"]["slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, vec!["beta-calc", "alpha-calc"]);
}

fn urlenc(s: &str) -> String {
    opchub_web::auth::urlencode(s)
}

/// M2.4 × M2.3: a district company's demand board recommends the publisher and says which of
/// its skills how many OPCs used (qualified calls only).
#[tokio::test]
async fn demand_recommendations_name_the_publishers_skill_and_its_users() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "invoice-calc", 5).await;
    let r = w
        .invoker
        .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
    let v = mcp.call(1, "invoice-calc__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(v["result"]["isError"], false, "{v}");

    let e = w
        .platform
        .post_json(
            "/api/v1/enterprises",
            json!({"name": "北京丰台财务共享服务有限公司", "uscc": uscc(777), "zone": "hexi_area", "username": "fincorp", "password": PASSWORD, "contact_name": "赵会计"}),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let company = w.app.client();
    company.login("fincorp", PASSWORD).await;
    let d = company
        .post_json(
            "/api/v1/demands",
            json!({"title": "发票计算与报销助手", "description": "需要一个能自动计算发票金额、辅助报销的工具或智能体。", "category": "opc_agent_dev",
                   "tags": ["发票"], "budget_min_fen": 100_000, "budget_max_fen": 500_000, "deadline": "2999-12-31", "publish": true}),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    let demand = d.json()["id"].as_str().unwrap().to_string();
    let rec = company.get(&format!("/api/v1/demands/{demand}/recommendations")).await;
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.text);
    let list = rec.json();
    let top = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == w.publisher_party.as_str())
        .unwrap_or_else(|| panic!("the publisher is not recommended: {list:#}"))
        .clone();
    let why = top["why_zh"].as_str().unwrap_or_default();
    assert!(why.contains("发票计算助手") && why.contains("被 1 个 OPC 使用"), "{top:#}");
    assert!(top["why_en"].as_str().unwrap_or_default().contains("used by 1 OPCs"), "{top:#}");
}

/// An HTTP tool published by the URL of its OpenAPI document: the platform fetches the
/// document at publish time and again at every refresh; a changed tool (here a changed
/// description) is a rug pull exactly like an MCP server's (M2.3): marked, calls not qualified
/// until a new version is reviewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_tool_published_by_document_url_is_refetched_and_a_changed_document_is_a_rug_pull() {
    let w = world().await;
    let tools = ToolServer::start().await.unwrap();
    // Inline document and URL together: refused, nothing stored.
    let doc = opchub_testkit::tool_server::openapi_doc(&tools.base_url()).to_string();
    let both = json!({"slug": "weather-url", "name": "天气 Weather", "summary": "查询城市天气 weather", "kind": "http_tool",
                      "category": "vertical_plugin", "version": "1.0.0", "openapi": doc, "openapi_url": tools.openapi_url()});
    let r = w.publisher.post_json("/api/v1/skills", both).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["openapi_url"], "skill_openapi_both", "{}", r.text);
    // A URL that serves no document: refused with its code.
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "weather-url", "name": "天气", "summary": "s", "kind": "http_tool", "category": "vertical_plugin",
                   "version": "1.0.0", "openapi_url": format!("{}/missing.json", tools.base_url())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "skill_openapi_fetch_failed");
    assert!(w.app.store.skills(false).await.unwrap().is_empty());

    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "weather-url", "name": "天气 Weather", "summary": "查询城市天气 weather", "kind": "http_tool",
                   "category": "vertical_plugin", "version": "1.0.0", "price_fen": 1, "openapi_url": tools.openapi_url(),
                   "operations": ["get_weather"], "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = r.json()["version"].clone();
    assert_eq!(v["openapi_url"], tools.openapi_url().as_str());
    assert_eq!(v["endpoint_url"], tools.base_url().as_str(), "calls go to servers[0].url");
    assert!(v["checks"]["passed"].as_array().unwrap().iter().any(|c| c == "openapi_fetched"));
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(&w, v["id"].as_str().unwrap()).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let call = || async {
        let r = api
            .post_json(
                &format!("/api/v1/skills/{id}/invoke"),
                json!({"tool": "get_weather", "arguments": {"city": "丰台"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    };
    assert_eq!(call().await["qualified"], true);

    let fetched = tools.openapi_fetches();
    let r = w.platform.post_json(&format!("/api/v1/skills/{id}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "unchanged", "{}", r.text);
    assert_eq!(tools.openapi_fetches(), fetched + 1, "the refresh fetched the document again");

    // The publisher changes the document behind the platform's back.
    tools.set_rug_pull(true);
    let all = opchub_web::skills::refresh_all(&state_of(&w)).await.unwrap();
    let mine: Vec<_> = all.iter().filter(|r| r.skill_id == id).collect();
    assert_eq!(mine.len(), 1, "the periodic refresh covers HTTP tools published by URL: {all:?}");
    assert_eq!(mine[0].status, "drifted");
    assert_ne!(mine[0].remote_hash.as_deref(), Some(mine[0].pinned_hash.as_str()));
    let v = call().await;
    assert_eq!(v["qualified"], false);
    assert_eq!(v["not_qualified_reason"], "drifted");
    let r = w.platform.post_json(&format!("/api/v1/skills/{id}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "still_drifted", "{}", r.text);

    // A new version pins the changed document; once reviewed, calls qualify again.
    let r = w
        .publisher
        .post_json(
            &format!("/api/v1/skills/{id}/versions"),
            json!({"version": "1.1.0", "price_fen": 1, "openapi_url": tools.openapi_url(), "operations": ["get_weather"], "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    approve(&w, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(call().await["qualified"], true);
    let r = w.platform.post_json(&format!("/api/v1/skills/{id}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "unchanged", "{}", r.text);

    // An inline document has nothing to re-fetch.
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "weather-inline", "name": "天气", "summary": "s", "kind": "http_tool", "category": "vertical_plugin",
                   "version": "1.0.0", "openapi": opchub_testkit::tool_server::openapi_doc(&tools.base_url()).to_string(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let inline = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(&w, r.json()["version"]["id"].as_str().unwrap()).await;
    let r = w.platform.post_json(&format!("/api/v1/skills/{inline}/refresh"), json!({})).await;
    assert_eq!(r.json()["status"], "not_remote", "{}", r.text);
}

/// DNS rebinding (M2.3): outside test mode a publisher's host name is resolved again for every
/// call, through the guarded resolver, and a name that resolves only to non-public addresses
/// is refused — here `localhost` (127.0.0.1), published while test mode allowed it. The
/// publisher is never reached and nothing is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_resolving_to_loopback_is_refused_at_call_time_outside_test_mode() {
    let w = world().await;
    let tools = ToolServer::start().await.unwrap();
    let port = w.mcp.addr.port();
    let mcp_url = format!("http://localhost:{port}/mcp");
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "rebind-mcp", "name": "换绑", "summary": "rebinding", "kind": "mcp_server", "category": "agent_tool",
                   "version": "1.0.0", "mcp_url": mcp_url, "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mcp_id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(&w, r.json()["version"]["id"].as_str().unwrap()).await;
    let doc = opchub_testkit::tool_server::openapi_doc(&format!("http://localhost:{}", tools.addr.port())).to_string();
    let r = w
        .publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "rebind-http", "name": "换绑", "summary": "rebinding", "kind": "http_tool", "category": "agent_tool",
                   "version": "1.0.0", "openapi": doc, "operations": ["get_weather"], "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let http_id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    approve(&w, r.json()["version"]["id"].as_str().unwrap()).await;
    // In test mode both calls reach their publishers.
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{mcp_id}/invoke"),
            json!({"tool": "add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(r.json()["content"][0]["text"], "2", "{}", r.text);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{http_id}/invoke"),
            json!({"tool": "get_weather", "arguments": {"city": "x"}}),
        )
        .await;
    assert_eq!(r.json()["outcome"], "ok", "{}", r.text);
    let (mcp_calls, tool_calls) = (w.mcp.calls(), tools.calls());
    let counted = calls_of(&w, &mcp_id).await.len() + calls_of(&w, &http_id).await.len();
    let events = ledger_calls(&w, &w.invoker_party).await.len();

    // The same database served outside test mode: every call is refused at connect time.
    let strict = TestApp::start_on_with_skills(w.app.db.clone(), opchub_web::skills::SkillsConfig::default()).await;
    let api = Client::with_key(&strict.base, &w.invoker_key);
    for (id, tool, args) in [
        (&mcp_id, "add", json!({"a": 1, "b": 1})),
        (&http_id, "get_weather", json!({"city": "x"})),
    ] {
        let r = api
            .post_json(&format!("/api/v1/skills/{id}/invoke"), json!({"tool": tool, "arguments": args}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
        assert_eq!(r.code(), "skill_upstream_private_address", "{}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("localhost"), "{}", r.text);
    }
    // Through /mcp the same refusal is a protocol error naming the code.
    w.invoker
        .put_json(&format!("/api/v1/skills/{mcp_id}/enabled"), json!({"enabled": true}))
        .await;
    let mcp = RawMcp::connect(&strict.base, &w.invoker_key).await;
    let v = mcp.call(1, "rebind-mcp__add", json!({"a": 1, "b": 1})).await;
    assert_eq!(v["error"]["data"]["code"], "skill_upstream_private_address", "{v}");
    // The refresh cannot reach it either.
    let strict_state = opchub_web::AppState::new(w.app.store.clone(), opchub_web::WebConfig::default(), None)
        .with_skills(opchub_web::skills::SkillsConfig::default());
    let skill = w.app.store.skill(&mcp_id).await.unwrap();
    let r = opchub_web::skills::refresh_skill(&strict_state, &skill).await.unwrap();
    assert_eq!(r.status, "unreachable");
    assert_eq!((w.mcp.calls(), tools.calls()), (mcp_calls, tool_calls), "no publisher was reached");
    assert_eq!(
        calls_of(&w, &mcp_id).await.len() + calls_of(&w, &http_id).await.len(),
        counted,
        "nothing was counted"
    );
    assert_eq!(ledger_calls(&w, &w.invoker_party).await.len(), events);
}

/// A valid resident ID number (GB 11643) from its first 17 digits.
pub(crate) fn resident_id(first17: &str) -> String {
    format!("{first17}{}", opchub_domain::identity::check_character(first17) as char)
}

/// Issue 18 item 1: the invoker's company has the publisher's founder as its beneficial owner —
/// a second company of the same person. Its calls are recorded and charged but not qualified
/// (`related_party`); once the record is corrected, calls qualify again. The ID number is
/// checked, never answered back and never stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_related_partys_calls_are_not_qualified_and_identity_numbers_are_never_shown() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "related-calc", 4).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let invoke = format!("/api/v1/skills/{id}/invoke");
    let call = || api.post_json(&invoke, json!({"tool": "add", "arguments": {"a": 1, "b": 2}}));
    let r = call().await;
    assert_eq!(
        (r.status, r.json()["qualified"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{}",
        r.text
    );

    let number = resident_id("11010519800101001");
    let pub_path = format!("/api/v1/parties/opc/{}/persons", w.publisher_party);
    let inv_path = format!("/api/v1/parties/opc/{}/persons", w.invoker_party);
    // Bad input: a wrong check character is named, nothing is recorded.
    let mut wrong = number.clone();
    wrong.pop();
    wrong.push(if number.ends_with('1') { '2' } else { '1' });
    let bad = w
        .publisher
        .post_json(
            &pub_path,
            json!({"role": "founder", "name": "王小明", "id_number": wrong, "phone": "12345"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.json()["error"]["field_codes"]["id_number"], "id_bad_check_character");
    assert_eq!(bad.json()["error"]["field_codes"]["phone"], "phone_bad_length");
    let bad = w
        .publisher
        .post_json(
            &pub_path,
            json!({"role": "controlling_person", "name": "王小明", "id_number": number}),
        )
        .await;
    assert_eq!(bad.json()["error"]["field_codes"]["role"], "role_not_for_kind", "{}", bad.text);
    assert_eq!(w.publisher.get(&pub_path).await.json(), json!([]));
    // Only the party's owner records its people.
    let other = w
        .invoker
        .post_json(&pub_path, json!({"role": "founder", "name": "王小明", "id_number": number}))
        .await;
    assert_eq!((other.status, other.code()), (StatusCode::FORBIDDEN, "not_owner".to_string()));
    assert_eq!(w.invoker.get(&pub_path).await.code(), "not_owner");

    let r = w
        .publisher
        .post_json(
            &pub_path,
            json!({"role": "founder", "name": "王小明", "id_number": number, "phone": "138 0013 8000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains(&number[..10]) && !r.text.contains("13800138000"), "{}", r.text);
    assert_eq!(r.json()["phone_recorded"], true);
    let again = w
        .publisher
        .post_json(
            &pub_path,
            json!({"role": "founder", "name": "王小明", "id_number": number.to_lowercase()}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "person_already_recorded".to_string())
    );
    // The same person, typed with spaces, behind the invoker's company.
    let spaced = format!("{} {} {}", &number[..6], &number[6..14], &number[14..]);
    let owner = w
        .invoker
        .post_json(
            &inv_path,
            json!({"role": "beneficial_owner", "name": "王小明", "id_number": spaced}),
        )
        .await;
    assert_eq!(owner.status, StatusCode::CREATED, "{}", owner.text);
    let r = call().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["qualified"], false);
    assert_eq!(r.json()["not_qualified_reason"], "related_party");
    assert_eq!(r.json()["charged_fen"], 4, "the call is still the invoker's to pay");
    let events = ledger_calls(&w, &w.invoker_party).await;
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .any(|e| e.attributes.get("not_qualified_reason").map(String::as_str) == Some("related_party")));
    // The publisher's basis names it.
    let basis = w.publisher.get("/api/v1/my/skills/m23-basis").await;
    assert!(basis.text.contains("related_party"), "{}", basis.text);
    // Nothing stored or audited carries the number.
    let signals = w.app.store.person_signals().await.unwrap();
    assert_eq!(signals.len(), 3, "two people, one phone: {signals:?}");
    assert!(signals.iter().all(|(_, _, h)| h.len() == 64 && !h.contains(&number[..10])));
    let audit = w.app.store.audit_entries(&Default::default()).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "party.person"));
    assert!(!serde_json::to_string(&audit).unwrap().contains(&number[..10]));
    // Corrected: the invoker's record is removed, and calls qualify again.
    let person_id = owner.json()["id"].as_str().unwrap().to_string();
    let r = w
        .invoker
        .send(reqwest::Method::DELETE, &format!("{inv_path}/{person_id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call().await;
    assert_eq!(r.json()["qualified"], true, "{}", r.text);
    // One payout account for both companies relates them too, from the next call on.
    for (c, party) in [(&w.publisher, &w.publisher_party), (&w.invoker, &w.invoker_party)] {
        let r = c
            .put_json(
                &format!("/api/v1/parties/opc/{party}/bank-account"),
                json!({"account_name": "王小明", "bank": "中国工商银行北京丰台支行", "account_number": "6222 0202 0001 2345 678"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = call().await;
    assert_eq!(r.json()["not_qualified_reason"], "related_party", "{}", r.text);
    let pairs = w.app.store.related_pairs().await.unwrap();
    assert_eq!(pairs.values().collect::<Vec<_>>(), vec![&"bank_account"], "{pairs:?}");
}

/// Issue 18 item 1: two companies registered at one address are related — written with and
/// without 北京市, spaces or full-width digits, given at registration, through the API or on
/// the page — so their calls are not qualified; moved to another room, they qualify again. Bad
/// addresses and other people's parties are refused and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_registered_at_one_address_are_related() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "address-calc", 4).await;
    let api = Client::with_key(&w.app.base, &w.invoker_key);
    let invoke = format!("/api/v1/skills/{id}/invoke");
    let call = || api.post_json(&invoke, json!({"tool": "add", "arguments": {"a": 1, "b": 2}}));
    assert_eq!(call().await.json()["qualified"], true);

    let pub_path = format!("/api/v1/parties/opc/{}/address", w.publisher_party);
    let address = "北京市丰台区汽车博物馆东路1号院3号楼201";
    // Bad input changes nothing.
    for (body, code) in [
        (json!({"registered_address": "1号"}), "too_short"),
        (json!({"registered_address": "  ，，，、、、 "}), "too_short"),
        (json!({}), "required"),
    ] {
        let r = w.publisher.put_json(&pub_path, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.json()["error"]["field_codes"]["registered_address"], code, "{}", r.text);
    }
    let r = w.invoker.put_json(&pub_path, json!({"registered_address": address})).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "not_owner".to_string()));
    assert_eq!(w.publisher.get(&pub_path).await.json()["registered_address"], Value::Null);

    let r = w.publisher.put_json(&pub_path, json!({"registered_address": address})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["registered_address"], address);
    assert_eq!(call().await.json()["qualified"], true, "one address alone relates no one");
    // The invoker's founder gives the same place on the page, written another way.
    let form = format!("/my/address/opc/{}", w.invoker_party);
    let r = w
        .invoker
        .post_form(&form, &[("registered_address", "丰台区汽车博物馆东路 １ 号院 3 号楼 201")])
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/my/bank-account?done=1".to_string())
    );
    let page = w.invoker.get("/my/bank-account").await.text;
    assert!(page.contains("丰台区汽车博物馆东路 １ 号院 3 号楼 201"), "{page}");
    let r = call().await;
    assert_eq!(r.json()["qualified"], false, "{}", r.text);
    assert_eq!(r.json()["not_qualified_reason"], "related_party");
    let pairs = w.app.store.related_pairs().await.unwrap();
    assert_eq!(pairs.values().collect::<Vec<_>>(), vec![&"address"], "{pairs:?}");
    let audit = w.app.store.audit_entries(&Default::default()).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "party.address").count(), 2);

    // Registered at the same address from the start: a third company is related to both.
    let (community, ws) = w.app.community(Zone::HexiArea, 7).await;
    let mut reg = registration("sameaddr", &uscc(7701), "hexi_area", &ws[0]);
    reg["registered_address"] = json!("中国北京丰台区汽车博物馆东路1号院-3号楼#201");
    let r = w.app.client().post_json("/api/v1/registrations", reg.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let third = r.json()["opc"]["id"].as_str().unwrap().to_string();
    let pairs = w.app.store.related_pairs().await.unwrap();
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    let tied = |a: &str, b: &str| pairs.get(&(a.min(b).to_string(), a.max(b).to_string())) == Some(&"address");
    assert!(tied(&third, &w.publisher_party) && tied(&third, &w.invoker_party), "{pairs:?}");
    // A bad address at registration refuses the whole registration.
    reg["username"] = json!("badaddr");
    reg["uscc"] = json!(uscc(7702));
    reg["registered_address"] = json!("x");
    let r = w.app.client().post_json("/api/v1/registrations", reg).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["registered_address"], "too_short");
    // A community's company has no address of this kind (its OPCs register at its workstations).
    let r = w
        .platform
        .put_json(
            &format!("/api/v1/parties/community/{community}/address"),
            json!({"registered_address": address}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["kind"], "unknown_kind", "{}", r.text);

    // An enterprise registered there too is related to the OPCs (M2.4 round trips).
    let e = w
        .platform
        .post_json(
            "/api/v1/enterprises",
            json!({"name": "北京同址科技有限公司", "uscc": uscc(7703), "zone": "hexi_area", "username": "sameaddrco",
                   "password": PASSWORD, "contact_name": "赵经理", "registered_address": address}),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let enterprise = e.json()["id"].as_str().unwrap().to_string();
    let pairs = w.app.store.related_pairs().await.unwrap();
    let tied = |a: &str, b: &str| pairs.get(&(a.min(b).to_string(), a.max(b).to_string())) == Some(&"address");
    assert!(tied(&enterprise, &w.publisher_party), "{pairs:?}");
    let r = w.platform.get(&format!("/api/v1/parties/enterprise/{enterprise}/address")).await;
    assert_eq!(r.json()["registered_address"], address, "{}", r.text);

    // The invoker moves to the next room: its calls qualify again.
    let r = w
        .invoker
        .put_json(
            &format!("/api/v1/parties/opc/{}/address", w.invoker_party),
            json!({"registered_address": "北京市丰台区汽车博物馆东路1号院3号楼202"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(call().await.json()["qualified"], true);
}

/// Issue 18 item 2 (timing): an account whose paid calls to one publisher come at machine-regular
/// intervals is flagged by the scan, naming both parties and the interval; an honest user whose
/// calls come at irregular times is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_regular_paid_calls_are_flagged_and_irregular_ones_are_not() {
    let w = world().await;
    let skill_id = listed_mcp_skill(&w, "timed-calc", 10).await;
    let skill = w.app.store.skill(&skill_id).await.unwrap();
    let version = skill.live_version_id.clone().unwrap();
    let (_, ws) = w.app.community(Zone::HexiArea, 1).await;
    let (_, honest_party) = opc(&w.app, "jitteruser", 503, &ws[0]).await;
    let users = w.app.store.users(None).await.unwrap();
    let user_of = |name: &str| users.iter().find(|u| u.username == name).unwrap().id.clone();
    let now = opchub_store::now_ms();
    let row = |n: usize, invoker: &str, user: &str, at: i64| opchub_store::skills::SkillCall {
        call_key: format!("timed-{invoker}-{n}"),
        skill_id: skill_id.clone(),
        version_id: version.clone(),
        version_hash: "h".into(),
        tool: "add".into(),
        publisher_party: w.publisher_party.clone(),
        invoker_party: invoker.to_string(),
        invoker_user_id: user.to_string(),
        outcome: "ok".into(),
        qualified: true,
        not_qualified_reason: None,
        charged_fen: 10,
        latency_ms: 5,
        request_digest: "r".into(),
        response_digest: "s".into(),
        leaf_index: None,
        day: opchub_domain::time::beijing_date(chrono::DateTime::from_timestamp_millis(at).unwrap()).to_string(),
        created_at: at,
    };
    // 60 calls exactly 90 s apart, ending a minute ago.
    let bot = user_of("skilluser");
    for n in 0..60 {
        let at = now - 60_000 - (59 - n as i64) * 90_000;
        assert!(w.app.store.record_skill_call(&row(n, &w.invoker_party, &bot, at)).await.unwrap());
    }
    // The ledger holds what the calls were charged (the paid-call graph's edge).
    let event = |id: &str, invoker: &str| {
        opchub_store::ledger::Item::Event(opchub_ledger::event::NewEvent {
            source: "test".into(),
            source_event_id: id.into(),
            kind: "skill.call".into(),
            subject: invoker.into(),
            counterparty: w.publisher_party.clone(),
            quantity: 60,
            unit: "call".into(),
            list_fen: 600,
            charged_fen: 600,
            list_sub_micro: 0,
            charged_sub_micro: 0,
            price_version: "t-1".into(),
            occurred_at_ms: now - 60_000,
            origin: opchub_ledger::event::Origin::Observed,
            attributes: std::collections::BTreeMap::from([("qualified".to_string(), "true".to_string())]),
            corrects_leaf_index: None,
            correction_reason: None,
            requested_by: None,
            approved_by: None,
        })
    };
    w.app.store.ledger_append(vec![event("timed-bot", &w.invoker_party)]).await.unwrap();
    // 60 calls at human, irregular times over the same hours.
    let person = user_of("jitteruser");
    let gaps = [7_000i64, 250_000, 31_000, 900_000, 64_000, 3_000, 480_000, 120_000];
    let mut at = now - 60_000;
    for n in 0..60 {
        assert!(w.app.store.record_skill_call(&row(n, &honest_party, &person, at)).await.unwrap());
        at -= gaps[n % gaps.len()];
    }
    w.app.store.ledger_append(vec![event("timed-person", &honest_party)]).await.unwrap();
    let (committee, _) = w.app.user("timecmte", Role::Committee).await;
    let year = opchub_domain::time::beijing_today().format("%Y").to_string();
    let r = committee
        .post_json("/api/v1/integrity/scan", json!({"year": year.parse::<i32>().unwrap()}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let all = committee.get(&format!("/api/v1/integrity/findings?year={year}")).await.json();
    let timing: Vec<&Value> = all.as_array().unwrap().iter().filter(|f| f["detector"] == "timing").collect();
    assert_eq!(timing.len(), 1, "{all:#?}");
    let f = timing[0];
    let mut pair = vec![w.invoker_party.clone(), w.publisher_party.clone()];
    pair.sort();
    let mut got: Vec<String> = f["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, pair, "{f:#?}");
    assert!(f["explanation_zh"].as_str().unwrap().contains("90.0 秒"), "{f:#?}");
    assert!(!f["parties"].to_string().contains(&honest_party), "{f:#?}");
}

/// Issue 18 item 2: a skill re-priced from ¥1.00 to ¥1,000.00 a call, then called, is flagged
/// as a price jump naming the publisher and the skill, with both prices in the explanation; the
/// skill's first price alone is not.
#[tokio::test]
async fn a_price_jump_before_paid_calls_is_flagged() {
    let w = world().await;
    let id = listed_mcp_skill(&w, "jump-calc", 100).await;
    let (committee, _) = w.app.user("jumpcmte", Role::Committee).await;
    let year: i32 = opchub_domain::time::beijing_today().format("%Y").to_string().parse().unwrap();
    let scan = || committee.post_json("/api/v1/integrity/scan", json!({ "year": year }));
    let jumps = |all: Value| -> Vec<Value> {
        all.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["detector"] == "price_jump")
            .cloned()
            .collect()
    };
    assert_eq!(scan().await.status, StatusCode::OK);
    let all = committee.get(&format!("/api/v1/integrity/findings?year={year}")).await.json();
    assert!(jumps(all).is_empty(), "a first price is no jump");
    let r = w
        .publisher
        .post_json(
            &format!("/api/v1/skills/{id}/versions"),
            json!({"version": "1.1.0", "price_fen": 100_000, "mcp_url": w.mcp.url(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    approve(&w, r.json()["id"].as_str().unwrap()).await;
    // 50 paid calls at the new price (the ledger's skill.call events).
    let now = opchub_store::now_ms();
    let item = opchub_store::ledger::Item::Event(opchub_ledger::event::NewEvent {
        source: "test".into(),
        source_event_id: "jump-calls".into(),
        kind: "skill.call".into(),
        subject: w.invoker_party.clone(),
        counterparty: w.publisher_party.clone(),
        quantity: 50,
        unit: "call".into(),
        list_fen: 5_000_000,
        charged_fen: 5_000_000,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        price_version: "t-1".into(),
        occurred_at_ms: now,
        origin: opchub_ledger::event::Origin::Observed,
        attributes: std::collections::BTreeMap::from([("qualified".to_string(), "true".to_string())]),
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    });
    w.app.store.ledger_append(vec![item]).await.unwrap();
    let r = scan().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let found = jumps(committee.get(&format!("/api/v1/integrity/findings?year={year}")).await.json());
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(
        (f["parties"].clone(), f["skills"].clone()),
        (json!([w.publisher_party]), json!([id]))
    );
    assert_eq!(f["amount_at_stake_fen"], 5_000_000);
    let zh = f["explanation_zh"].as_str().unwrap();
    assert!(
        zh.contains("¥1.00") && zh.contains("¥1,000.00") && zh.contains("¥50,000.00"),
        "{zh}"
    );
    // The publisher sees its finding; the page names the detector in Chinese.
    let page = committee.get("/integrity").await;
    assert!(page.text.contains("价格跳涨"), "{}", page.text);
}
