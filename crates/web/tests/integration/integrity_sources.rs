//! Integrity (issue 18) over HTTP: ledger sources kept to their scope (item 4) — only the
//! kinds they are registered for, only for the parties they serve, the platform's own names
//! reserved — so that a community operator's source cannot invent M2.2/M2.3/M2.4 usage; rug
//! pulls neither charged nor qualified, found on a configurable period (item 6); price tables
//! never back-dated and priced only once the platform operator approved them (item 3).
//! Runs on SQLite, and on PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::ledger::Item;
use opchub_testkit::mcp_server::FakeMcp;
use opchub_testkit::{FakeUpstream, MODELS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Two operators each with a community and an OPC, a district enterprise, and this year's
/// platform-metered usage: the enterprise paid operator A's OPC ¥20,000 under confirmed
/// cooperation (M2.4: ¥2,000), and A's OPC got ¥100 of token discount from A (M2.2).
struct World {
    app: TestApp,
    platform: Client,
    op_a: Client,
    op_a_id: String,
    community_a: String,
    community_b: String,
    opc_a: String,
    opc_b: String,
    firm: Client,
    enterprise: String,
}

fn observed(source: &str, id: &str, kind: &str, unit: &str, subject: &str, counterparty: &str, q: i64, list: i64, charged: i64) -> Item {
    Item::Event(NewEvent {
        source: source.into(),
        source_event_id: id.into(),
        kind: kind.into(),
        subject: subject.into(),
        counterparty: counterparty.into(),
        quantity: q,
        unit: unit.into(),
        list_fen: list,
        charged_fen: charged,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        price_version: "t-1".into(),
        occurred_at_ms: opchub_store::now_ms() - 60_000,
        origin: Origin::Observed,
        attributes: Default::default(),
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    })
}

async fn world() -> World {
    let app = TestApp::start_preview().await;
    let (platform, _) = app.user("integ_platform", Role::PlatformOperator).await;
    let (op_a, op_a_id) = app.user("integ_op_a", Role::CommunityOperator).await;
    let (_, op_b_id) = app.user("integ_op_b", Role::CommunityOperator).await;
    let (community_a, ws_a) = app.community_of(&op_a_id, Zone::HexiArea, 1).await;
    let (community_b, ws_b) = app.community_of(&op_b_id, Zone::HexiArea, 1).await;
    let opc_a = app.opc_at("integ_opc_a", 801, &ws_a[0]).await;
    let opc_b = app.opc_at("integ_opc_b", 802, &ws_b[0]).await;
    let e = platform
        .post_json(
            "/api/v1/enterprises",
            json!({"name": "北京丰台诚信制造有限公司", "uscc": uscc(803), "zone": "hexi_area", "username": "integ_firm", "password": PASSWORD, "contact_name": "赵经理"}),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let enterprise = e.json()["id"].as_str().unwrap().to_string();
    for (kind, id) in [
        ("community", &community_a),
        ("community", &community_b),
        ("enterprise", &enterprise),
    ] {
        let r = platform
            .put_json(
                &format!("/api/v1/parties/{kind}/{id}/registration"),
                json!({"tax_registered": true}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let firm = app.client();
    firm.login("integ_firm", PASSWORD).await;
    // F3: the committee's lists are known (empty), so estimates are determined.
    let (committee, _) = app.user("integ_committee", Role::Committee).await;
    import_empty_lists(&committee).await;
    app.store
        .ledger_append(
            vec![
                observed(
                    "cooperation",
                    "coop-1",
                    "cooperation.payment",
                    "fen",
                    &enterprise,
                    &opc_a,
                    2_000_000,
                    2_000_000,
                    2_000_000,
                ),
                observed(
                    "gateway",
                    "tok-1",
                    "token.input",
                    "token",
                    &opc_a,
                    &community_a,
                    1_000_000,
                    20_000,
                    10_000,
                ),
            ]
            .into_iter()
            .map(|mut it| {
                // The platform-metered baseline is last month's, billed and paid (issue 19 item 4).
                if let Item::Event(e) = &mut it {
                    e.occurred_at_ms = last_month().1;
                }
                it
            })
            .collect(),
        )
        .await
        .unwrap();
    app.registered_at(&[&opc_a, &opc_b], last_month().1 - 3_600_000).await;
    app.close_and_pay(&last_month().0).await;
    World {
        app,
        platform,
        op_a,
        op_a_id,
        community_a,
        community_b,
        opc_a,
        opc_b,
        firm,
        enterprise,
    }
}

/// The caller's calculator estimate of `clause` this year (what is still to come, in fen).
async fn estimate(c: &Client, clause: &str) -> Option<i64> {
    let est = c.get(&format!("/api/v1/policy/calculator?year={}", this_year())).await;
    assert_eq!(est.status, StatusCode::OK, "{}", est.text);
    est.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["clause"] == clause)
        .unwrap_or_else(|| panic!("no {clause} estimate in {}", est.text))["amount_fen"]
        .as_i64()
}

/// What of the caller's `clause` basis waits on this month's running bill (issue 19 item 4:
/// counted once the bill is issued, paid and confirmed), in fen, from the estimate's trace.
async fn running(c: &Client, clause: &str) -> i64 {
    let est = c.get(&format!("/api/v1/policy/calculator?year={}", this_year())).await;
    assert_eq!(est.status, StatusCode::OK, "{}", est.text);
    let month = opchub_ledger::event::period_of(opchub_store::now_ms());
    est.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["clause"] == clause)
        .flat_map(|e| e["decision"]["trace"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["rule"] == "bill_running" && s["values"]["month"] == month.as_str())
        .map(|s| s["values"]["amount_fen"].as_str().unwrap().parse::<i64>().unwrap())
        .sum()
}

/// Operator A's compute items: ¥108 list and ¥72 OPC price per GPU-hour (3 and 2 fen a second),
/// and a ¥1.00 / ¥0.40 T4 (less than a fen a second).
async fn gpu_prices(w: &World) {
    let r = w
        .op_a
        .post_json(
            "/api/v1/gateway/prices",
            json!({"version": "integ-gpu-1",
                   "items": [{"item": "a100", "unit": "gpu_hour", "name_zh": "A100算力", "name_en": "A100", "list_fen": 10_800, "opc_fen": 7_200},
                             {"item": "t4", "unit": "gpu_hour", "name_zh": "T4算力", "name_en": "T4", "list_fen": 100, "opc_fen": 40}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    approve_prices(&w.platform, &w.op_a_id, "integ-gpu-1").await;
}

async fn new_source(w: &World, body: Value) -> Client {
    let r = w.platform.post_json("/api/v1/ledger/sources", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Client::with_key(&w.app.base, r.json()["key"].as_str().unwrap())
}

#[allow(clippy::too_many_arguments)]
fn reported(id: &str, kind: &str, unit: &str, subject: &str, counterparty: &str, q: i64, list: i64, charged: i64) -> Value {
    json!({
        "source_event_id": id, "kind": kind, "unit": unit, "subject": subject, "counterparty": counterparty,
        "quantity": q, "list_amount_fen": list, "charged_amount_fen": charged, "price_version": "integ-gpu-1",
        "occurred_at": chrono::Utc::now().to_rfc3339(), "attributes": {"item": "a100", "qualified": "true"}
    })
}

fn codes(r: &Value) -> Vec<(String, String)> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["error"]["code"].as_str().unwrap_or("stored").to_string(),
                x["error"]["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_source_reports_only_its_kinds_for_the_parties_it_serves() {
    let w = world().await;
    gpu_prices(&w).await;
    let before_m24 = estimate(&w.firm, "M2.4").await;
    let before_m22 = estimate(&w.op_a, "M2.2").await;
    assert_eq!(
        (before_m24, before_m22),
        (Some(200_000), Some(10_000)),
        "the platform-metered baseline: 10% of ¥20,000 and the ¥100 token discount: {}",
        w.op_a.get("/api/v1/policy/calculator").await.text
    );

    // The platform's own source names are reserved; a source reports compute and data only.
    for name in ["gateway", "cooperation", "skills", "datasets", "corrections"] {
        let r = w
            .platform
            .post_json("/api/v1/ledger/sources", json!({"name": name, "owner_user_id": w.op_a_id}))
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["field_codes"]["name"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("source_name_reserved")),
            "{name}: {}",
            r.text
        );
    }
    let r = w
        .platform
        .post_json(
            "/api/v1/ledger/sources",
            json!({"name": "token-box", "owner_user_id": w.op_a_id, "kinds": ["compute.gpu_second", "token.input"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["field_codes"]["kinds"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("kind_not_allowed"))
    );
    assert!(w.platform.get("/api/v1/ledger/sources").await.json().as_array().unwrap().is_empty());

    // The measured attack: operator A's source invents M2.4, M2.2 and M2.3 usage.
    let src = new_source(&w, json!({"name": "cluster-a", "owner_user_id": w.op_a_id})).await;
    let listed = w.platform.get("/api/v1/ledger/sources").await.json();
    assert_eq!(listed[0]["kinds"], json!(["compute.gpu_second", "data.byte"]));
    let size = w.app.store.ledger_size().await.unwrap();
    let attack = vec![
        // A cooperation payment with the enterprise as its subject (M2.4 +¥5,000).
        reported(
            "coop-x",
            "cooperation.payment",
            "fen",
            &w.enterprise,
            &w.opc_a,
            5_000_000,
            5_000_000,
            5_000_000,
        ),
        // ¥100,000 of tokens given away to an OPC of another operator's community (M2.2).
        reported("tok-x", "token.input", "token", &w.opc_b, &w.op_a_id, 1_000_000, 10_000_000, 0),
        // Skill calls between OPCs (M2.3 both sides).
        reported("call-x", "skill.call", "call", &w.opc_a, &w.opc_b, 1, 100_000, 100_000),
        // Compute, but for another operator's OPC, for the enterprise, or billed to another community.
        reported(
            "gpu-b",
            "compute.gpu_second",
            "gpu_second",
            &w.opc_b,
            &w.community_a,
            3_600,
            10_800,
            7_200,
        ),
        reported(
            "gpu-firm",
            "compute.gpu_second",
            "gpu_second",
            &w.enterprise,
            &w.op_a_id,
            3_600,
            10_800,
            7_200,
        ),
        reported(
            "gpu-cb",
            "compute.gpu_second",
            "gpu_second",
            &w.opc_a,
            &w.community_b,
            3_600,
            10_800,
            7_200,
        ),
    ];
    let r = src.post_json("/api/v1/ledger/events", json!({ "events": attack })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let res = r.json();
    let want: Vec<(String, String)> = [
        ("kind_not_allowed", "kind"),
        ("kind_not_allowed", "kind"),
        ("kind_not_allowed", "kind"),
        ("party_not_served", "subject"),
        ("party_not_served", "subject"),
        ("party_not_served", "counterparty"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(codes(&res), want);
    assert_eq!((res["stored"].as_i64(), res["rejected"].as_i64()), (Some(0), Some(6)));
    let msg = res["results"][3]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("不服务"), "the refusal says why, in Chinese by default: {msg}");
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size, "nothing was stored");
    assert_eq!(
        estimate(&w.firm, "M2.4").await,
        before_m24,
        "the enterprise's M2.4 estimate is unchanged"
    );
    assert_eq!(
        estimate(&w.op_a, "M2.2").await,
        before_m22,
        "the operator's M2.2 estimate is unchanged"
    );
    assert_eq!(running(&w.op_a, "M2.2").await, 0, "nor is anything waiting on a bill");

    // In scope, the same source is heard: an hour of A100 for A's OPC, billed by A's community
    // or by A itself: ¥36 of discount each (M2.2).
    let ok = vec![
        reported(
            "gpu-a1",
            "compute.gpu_second",
            "gpu_second",
            &w.opc_a,
            &w.community_a,
            3_600,
            10_800,
            7_200,
        ),
        reported(
            "gpu-a2",
            "compute.gpu_second",
            "gpu_second",
            &w.opc_a,
            &w.op_a_id,
            3_600,
            10_800,
            7_200,
        ),
    ];
    let r = src.post_json("/api/v1/ledger/events", json!({ "events": ok })).await.json();
    assert_eq!(r["stored"], 2, "{r}");
    // This month's: on the running bill, counted once it is paid (issue 19 item 4).
    assert_eq!(estimate(&w.op_a, "M2.2").await, before_m22);
    assert_eq!(running(&w.op_a, "M2.2").await, 2 * 3_600);
    assert_eq!(estimate(&w.firm, "M2.4").await, before_m24);

    // A source registered for data only may not report compute.
    let data_only = new_source(&w, json!({"name": "cdn-a", "owner_user_id": w.op_a_id, "kinds": ["data.byte"]})).await;
    let r = data_only
        .post_json(
            "/api/v1/ledger/events",
            json!({"events": [reported("gpu-d", "compute.gpu_second", "gpu_second", &w.opc_a, &w.community_a, 3_600, 10_800, 7_200)]}),
        )
        .await
        .json();
    assert_eq!(codes(&r), [("kind_not_allowed".to_string(), "kind".to_string())]);

    // Issue 17 item 6: 36 single GPU-seconds of A's ¥1.00-an-hour T4 item list 0.028 fen each
    // and charge 0.011: rounded event by event they would give no discount at all. The
    // platform keeps each exactly, whether the source sent the rounded fen or the exact
    // millionths, so the 36 list ¥0.01, charge ¥0.004, and the ¥0.006 discount rounds once,
    // on the line, to 1 fen.
    let t4 = |n: usize| {
        let mut e = reported(
            &format!("t4-{n}"),
            "compute.gpu_second",
            "gpu_second",
            &w.opc_a,
            &w.community_a,
            1,
            0,
            0,
        );
        e["attributes"]["item"] = json!("t4");
        if n % 2 == 1 {
            e.as_object_mut().unwrap().remove("list_amount_fen");
            e.as_object_mut().unwrap().remove("charged_amount_fen");
            e["list_amount_micro_fen"] = json!(27_778);
            e["charged_amount_micro_fen"] = json!(11_111);
        }
        e
    };
    let mut wrong = t4(1);
    wrong["list_amount_micro_fen"] = json!(27_000);
    let r = src.post_json("/api/v1/ledger/events", json!({ "events": [wrong] })).await.json();
    assert_eq!(codes(&r), [("amount_mismatch".to_string(), "list_amount_fen".to_string())]);
    let r = src
        .post_json("/api/v1/ledger/events", json!({ "events": (0..36).map(t4).collect::<Vec<_>>() }))
        .await
        .json();
    assert_eq!(r["stored"], 36, "{r}");
    assert_eq!(running(&w.op_a, "M2.2").await, 2 * 3_600 + 1);
}

// ---------------------------------------------------------------- rug pulls (item 6)

async fn founder(app: &TestApp, name: &str, n: u32, ws: &str) -> (Client, String) {
    let id = app.opc_at(name, n, ws).await;
    let c = app.client();
    c.login(name, PASSWORD).await;
    (c, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_skill_is_found_on_the_configured_period_and_its_calls_are_free_and_not_qualified() {
    assert_eq!(
        opchub_web::skills::SkillsConfig::default().refresh_interval,
        Duration::from_secs(600),
        "the rug-pull check runs every ten minutes by default"
    );
    let app = TestApp::start().await;
    let mcp = FakeMcp::start().await.unwrap();
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    let (publisher, _) = founder(&app, "rug_pub", 811, &ws[0]).await;
    let (invoker, invoker_party) = founder(&app, "rug_user", 812, &ws[1]).await;
    let (platform, _) = app.user("rug_platform", Role::PlatformOperator).await;
    let r = publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "rug-bot", "name": "天气助手 Weather bot", "summary": "查询天气并回显文本，帮你规划出行。Echoes text.",
                   "kind": "mcp_server", "category": "agent_tool", "tags": ["天气"], "version": "1.0.0",
                   "price_fen": 500, "mcp_url": mcp.url(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    let version = r.json()["version"]["id"].as_str().unwrap().to_string();
    let r = platform
        .post_json(
            &format!("/api/v1/skill-versions/{version}/review"),
            json!({"decision": "approve", "comment": "工具描述与实现一致，通过。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let k = invoker.post_json("/api/v1/me/api-keys", json!({"name": "agent"})).await.json();
    let api = Client::with_key(&app.base, k["secret"].as_str().unwrap());
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
    let v = call().await;
    assert_eq!((v["qualified"].as_bool(), v["charged_fen"].as_i64()), (Some(true), Some(500)));

    // The periodic check on a short period (a setting): nobody presses the refresh button.
    let cfg = opchub_web::skills::SkillsConfig {
        refresh_interval: Duration::from_millis(100),
        ..opchub_web::skills::SkillsConfig::testing()
    };
    let state = opchub_web::AppState::new(app.store.clone(), opchub_web::WebConfig::default(), None).with_skills(cfg);
    let task = opchub_web::skills::spawn_refresh(state.app.clone());
    mcp.set_rug_pull(true);
    let mut found = false;
    for _ in 0..100 {
        if app.store.skill(&id).await.unwrap().drifted_at.is_some() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert!(found, "the periodic check marked the drift");

    // After the drift: neither charged to the invoker nor qualified (M2.3).
    let v = call().await;
    assert_eq!(
        (
            v["qualified"].as_bool(),
            v["not_qualified_reason"].as_str(),
            v["charged_fen"].as_i64()
        ),
        (Some(false), Some("drifted"), Some(0)),
        "{v}"
    );
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let calls: Vec<(i64, i64)> = app
        .store
        .ledger_events_of(&invoker_party, false, &period, 100, 0)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "skill.call")
        .map(|e| (e.list_fen, e.charged_fen))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls.iter().map(|c| c.1).sum::<i64>(),
        500,
        "only the call before the drift is charged"
    );
    let totals = app.store.usage_totals(&invoker_party, false, &period).await.unwrap();
    let skill_calls = totals.iter().find(|t| t.kind == "skill.call").unwrap();
    assert_eq!((skill_calls.quantity, skill_calls.charged_fen), (2, 500));
}

// ---------------------------------------------------------------- price tables (item 3)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_tables_are_never_back_dated_and_price_nothing_until_approved() {
    let w = world().await;
    // Back-dated: refused with its code, nothing stored.
    let r = w
        .op_a
        .post_json(
            "/api/v1/gateway/prices",
            json!({"version": "old", "effective_from": "2020-01-01T00:00:00+08:00",
                   "items": [{"item": "a100", "unit": "gpu_hour", "name_zh": "A100算力", "name_en": "A100", "list_fen": 10_800, "opc_fen": 7_200}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["field_codes"]["effective_from"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("effective_from_past")),
        "{}",
        r.text
    );
    assert!(w.op_a.get("/api/v1/gateway/prices").await.json().as_array().unwrap().is_empty());

    // The measured attack: a channel, then a table with list ¥1,000,000 per million tokens and
    // an OPC price of ¥0 (a ¥1 discount per token).
    let upstream = FakeUpstream::start().await;
    let r = w
        .op_a
        .post_json(
            "/api/v1/gateway/channels",
            json!({"name": "a-main", "base_url": upstream.base_url(), "secret": "sk-upstream", "models": MODELS}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let channel = r.json()["id"].as_str().unwrap().to_string();
    let r = w
        .platform
        .put_json(&format!("/api/v1/gateway/channels/{channel}/status"), json!({"status": "approved"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let prices: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"model": m, "list_input": 100_000_000, "opc_input": 0, "list_cached": 100_000_000, "opc_cached": 0, "list_output": 100_000_000, "opc_output": 0}))
        .collect();
    let r = w
        .op_a
        .post_json("/api/v1/gateway/prices", json!({"version": "inflated", "prices": prices}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["status"], "pending");
    let listed = w.platform.get("/api/v1/gateway/prices").await.json();
    assert_eq!(
        (listed[0]["version"].as_str(), listed[0]["status"].as_str()),
        (Some("inflated"), Some("pending"))
    );
    let other = w.app.user("integ_op_c", Role::CommunityOperator).await.0;
    assert!(other.get("/api/v1/gateway/prices").await.json().as_array().unwrap().is_empty());
    let r = w
        .op_a
        .put_json(
            &format!("/api/v1/gateway/prices/{}/inflated/status", w.op_a_id),
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the operator does not approve its own table");

    // A's OPC uses the model: pending, the table prices nothing and the basis does not move.
    let opc = w.app.client();
    opc.login("integ_opc_a", PASSWORD).await;
    let k = opc.post_json("/api/v1/me/api-keys", json!({"name": "sdk"})).await.json();
    let sdk = Client::with_key(&w.app.base, k["secret"].as_str().unwrap());
    let chat = json!({"model": "fake-final", "messages": [{"role": "user", "content": "hello hello"}], "max_tokens": 3});
    let before = estimate(&w.op_a, "M2.2").await;
    let r = sdk.post_json("/v1/chat/completions", chat.clone()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("upstream_failed")),
        "{}",
        r.text
    );
    assert!(r.text.contains("no price"), "{}", r.text);
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let tokens = |totals: &[opchub_store::ledger::UsageTotal]| {
        totals
            .iter()
            .filter(|t| t.kind.starts_with("token."))
            .map(|t| t.list_fen)
            .sum::<i64>()
    };
    let listed_before = tokens(&w.app.store.usage_totals(&w.opc_a, false, &period).await.unwrap());
    assert_eq!(listed_before, 0, "nothing this month (the baseline is last month's)");
    assert_eq!(estimate(&w.op_a, "M2.2").await, before);
    assert_eq!(running(&w.op_a, "M2.2").await, 0);

    // Approved: it prices usage from then on.
    let t = approve_prices(&w.platform, &w.op_a_id, "inflated").await;
    assert_eq!(t["status"], "approved");
    assert!(t["effective_from"].as_i64().unwrap() <= opchub_store::now_ms());
    let r = sdk.post_json("/v1/chat/completions", chat).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut priced = 0;
    for _ in 0..100 {
        priced = tokens(&w.app.store.usage_totals(&w.opc_a, false, &period).await.unwrap()) - listed_before;
        if priced > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(priced > 0, "the approved table priced the call");
    // This month's usage waits on its running bill (issue 19 item 4); the basis it will add:
    assert_eq!(estimate(&w.op_a, "M2.2").await, before);
    assert_eq!(running(&w.op_a, "M2.2").await, priced);

    // The platform operator's reference list: the vendor lists the models at ¥0.01 per million
    // tokens, 1/100,000 of the operator's list. The next call counts at most the reference.
    let refs: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"model": m, "list_input": 1_000, "opc_input": 0, "list_cached": 1_000, "opc_cached": 0, "list_output": 1_000, "opc_output": 0}))
        .collect();
    let r = w
        .op_a
        .post_json(
            "/api/v1/gateway/reference-prices",
            json!({"version": "ref-1", "prices": refs.clone()}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "only the platform operator keeps the reference list"
    );
    let r = w
        .platform
        .post_json(
            "/api/v1/gateway/reference-prices",
            json!({"version": "ref-0", "effective_from": "2020-01-01T00:00:00+08:00", "prices": refs.clone()}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["effective_from"], "effective_from_past");
    let r = w
        .platform
        .post_json("/api/v1/gateway/reference-prices", json!({"version": "ref-1", "prices": refs}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let listed = priced + listed_before;
    let r = sdk
        .post_json(
            "/v1/chat/completions",
            json!({"model": "fake-final", "messages": [{"role": "user", "content": "hello hello"}], "max_tokens": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut events = 0;
    let mut capped = 0;
    for _ in 0..100 {
        let totals = w.app.store.usage_totals(&w.opc_a, false, &period).await.unwrap();
        events = totals
            .iter()
            .filter(|t| t.kind.starts_with("token."))
            .map(|t| t.events)
            .sum::<i64>();
        capped = tokens(&totals) - listed;
        // Two priced calls this month, input and output each (the baseline is last month's).
        if events >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(events >= 4, "the third call was metered");
    let listed = w.platform.get("/api/v1/gateway/prices").await.json();
    assert_eq!(listed[0]["above_reference"].as_array().unwrap().len(), MODELS.len(), "{listed}");
    let page = w.platform.get("/gateway/channels").await.text;
    assert!(
        page.contains("data-above-reference=\"true\"") && page.contains("高于参考价"),
        "the list above the reference is flagged"
    );
    assert!(
        capped * 1_000 < priced,
        "the same call counts at the reference: {capped} fen against {priced} fen at the operator's list"
    );
    assert_eq!(running(&w.op_a, "M2.2").await, priced + capped);

    // Disabled: it prices nothing again.
    let r = w
        .platform
        .put_json(
            &format!("/api/v1/gateway/prices/{}/inflated/status", w.op_a_id),
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!((r.status, r.json()["status"].as_str()), (StatusCode::OK, Some("disabled")));
    let r = w
        .platform
        .put_json(
            &format!("/api/v1/gateway/prices/{}/nope/status", w.op_a_id),
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Issue 18 item 3 for compute and data items: the platform operator publishes item reference
/// prices on the gateway page (a line that fits no format is named, nothing is published); a
/// price table above the reference is flagged; an hour of A100 reported at the operator's
/// ¥108 list price counts for M2.2 only up to the ¥90 reference — ¥18 of discount, not ¥36 —
/// and the OPC still pays the operator's ¥72.
#[tokio::test]
async fn an_item_list_price_above_the_reference_counts_only_up_to_it() {
    let w = world().await;
    gpu_prices(&w).await;
    let src = new_source(&w, json!({"name": "cluster-ref", "owner_user_id": w.op_a_id})).await;

    let page = w.platform.get("/gateway/channels").await;
    assert!(
        page.text.contains("id=\"no-references\"") && page.text.contains("id=\"references-form\""),
        "{}",
        page.text
    );
    assert!(!w.op_a.get("/gateway/channels").await.text.contains("id=\"references-form\""));
    let bad = w
        .platform
        .post_form(
            "/gateway/reference-prices",
            &[("version", "ref-items-1"), ("lines", "a100 gpu_hour 9000\na100 per-hour")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("第 2 行") && bad.text.contains("参考价有误"), "{}", bad.text);
    let r = w
        .platform
        .post_json(
            "/api/v1/gateway/reference-prices",
            json!({"version": "ref-items-0", "items": [{"item": "a100", "unit": "hour", "list_fen": 9_000}]}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["items"], "invalid_item_references", "{}", r.text);
    assert!(w.platform.get("/api/v1/gateway/reference-prices").await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = w
        .platform
        .post_form(
            "/gateway/reference-prices",
            &[("version", "ref-items-1"), ("lines", "# 厂商公开价\na100 gpu_hour 9,000")],
        )
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/gateway/channels?done=references".to_string()),
        "{}",
        r.text
    );
    let page = w.op_a.get("/gateway/channels").await.text;
    assert!(page.contains("data-item=\"a100\"") && page.contains("9,000"), "{page}");
    let refs = w.op_a.get("/api/v1/gateway/reference-prices").await.json();
    assert_eq!(refs["items"][0]["list_fen"], 9_000, "{refs}");
    assert_eq!(w.firm.get("/api/v1/gateway/reference-prices").await.status, StatusCode::FORBIDDEN);
    let tables = w.op_a.get("/api/v1/gateway/prices").await.json();
    assert!(tables.to_string().contains("\"above_reference\":[\"a100\"]"), "{tables}");

    // Reported at the operator's own list price, stored at the reference's.
    let r = src
        .post_json(
            "/api/v1/ledger/events",
            json!({"events": [reported("gpu-ref", "compute.gpu_second", "gpu_second", &w.opc_a, &w.community_a, 3_600, 10_800, 7_200)]}),
        )
        .await
        .json();
    assert_eq!(r["stored"], 1, "{r}");
    assert_eq!(running(&w.op_a, "M2.2").await, 1_800, "¥90 − ¥72 of discount, not ¥108 − ¥72");
    let totals = w
        .app
        .store
        .usage_totals(&w.opc_a, false, &opchub_ledger::event::period_of(opchub_store::now_ms()))
        .await
        .unwrap();
    let gpu = totals.iter().find(|t| t.kind == "compute.gpu_second").unwrap();
    assert_eq!((gpu.list_fen, gpu.charged_fen), (9_000, 7_200), "the OPC still pays ¥72: {gpu:?}");
}
