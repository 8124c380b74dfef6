//! Monthly bills (issue 19 items 2 and 3): a closed month's bills equal the ledger to the fen
//! for every payee (models through the gateway's event builder and its fake upstream, compute
//! reported by the operator, paid skills called through the Skill Store); the running bill
//! grows with every charge; an issued bill never changes; partial payment, confirmation and
//! the rest paid; disputes decided by the committee; the bad-input list refused with a stable
//! code and nothing changed; two-party control; the pages and the CSV export.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_ledger::metering;
use opchub_store::ledger::Item;
use opchub_testkit::mcp_server::FakeMcp;
use opchub_testkit::{FakeUpstream, MODELS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

struct World {
    app: TestApp,
    _upstream: FakeUpstream,
    _mcp: FakeMcp,
    /// The paying OPC: browser session, API key client, party id.
    opc: Client,
    opc_key: Client,
    opc_id: String,
    /// The community operator running the model channel (payee of models, compute, data).
    operator: Client,
    operator_id: String,
    /// A community of the operator (compute reported against it is billed to the operator).
    community_id: String,
    /// The publisher OPC of a paid skill (payee of its calls).
    publisher: Client,
    publisher_id: String,
    skill_id: String,
    committee: Client,
}

fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

/// The month before this one (Beijing) and an instant at noon on its 10th.
fn last_month() -> (String, i64) {
    let (month, at, _) = crate::common::last_month();
    (month, at)
}

fn this_month() -> String {
    opchub_ledger::event::period_of(opchub_store::now_ms())
}

fn today() -> String {
    opchub_ledger::event::day_of(opchub_store::now_ms())
}

/// The last day of a `YYYY-MM` month.
fn last_day_of(month: &str) -> String {
    let next = opchub_ledger::bills::day_after_month(month).unwrap();
    let d = chrono::NaiveDate::parse_from_str(&next, "%Y-%m-%d").unwrap();
    d.pred_opt().unwrap().format("%Y-%m-%d").to_string()
}

async fn world() -> World {
    let key = std::sync::Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
    let app = TestApp::start_full(
        std::sync::Arc::new(fresh_db().await),
        key,
        Some(policy_for_year(crate::common::last_month().2)),
        opchub_web::skills::SkillsConfig::testing(),
    )
    .await;
    let upstream = FakeUpstream::start().await;
    let mcp = FakeMcp::start().await.unwrap();
    // The operator's approved channel and price table: 1 fen per input token for OPCs (2 listed),
    // 0.5 per cached, 3 per output — whole fen per token, so every call costs something.
    let (operator, operator_id) = app.user("billop", Role::CommunityOperator).await;
    let r = operator
        .post_json(
            "/api/v1/gateway/channels",
            json!({"name": "main", "base_url": upstream.base_url(), "secret": "sk-up", "models": MODELS, "priority": 0, "timeout_ms": 3000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let channel = r.json()["id"].as_str().unwrap().to_string();
    let (platform, _) = app.user("billplat", Role::PlatformOperator).await;
    let r = platform
        .put_json(&format!("/api/v1/gateway/channels/{channel}/status"), json!({"status": "approved"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let prices: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"model": m, "list_input": 2_000_000, "opc_input": 1_000_000, "list_cached": 1_000_000, "opc_cached": 500_000, "list_output": 6_000_000, "opc_output": 3_000_000}))
        .collect();
    let r = operator
        .post_json("/api/v1/gateway/prices", json!({"version": "bill-v1", "prices": prices}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    approve_prices(&platform, &operator_id, "bill-v1").await;
    let (community_id, ws) = app.community_of(&operator_id, Zone::HexiArea, 3).await;

    let opc_id = app.opc_at("billopc", 701, &ws[0]).await;
    let opc = app.client();
    opc.login("billopc", PASSWORD).await;
    let k = opc.post_json("/api/v1/me/api-keys", json!({"name": "sdk"})).await.json();
    let opc_key = Client::with_key(&app.base, k["secret"].as_str().unwrap());

    // A paid skill (5 fen a call) of another OPC, approved and enabled by the paying OPC.
    let publisher_id = app.opc_at("billpub", 702, &ws[1]).await;
    let publisher = app.client();
    publisher.login("billpub", PASSWORD).await;
    let r = publisher
        .post_json(
            "/api/v1/skills",
            json!({"slug": "bill-calc", "name": "发票计算助手", "summary": "帮你自动计算发票金额，报销更轻松。",
                   "kind": "mcp_server", "category": "agent_tool", "tags": ["财税"], "version": "1.0.0",
                   "price_fen": 5, "mcp_url": mcp.url(), "submit": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let skill_id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    let version = r.json()["version"]["id"].as_str().unwrap().to_string();
    let r = platform
        .post_json(
            &format!("/api/v1/skill-versions/{version}/review"),
            json!({"decision": "approve", "comment": "工具描述与实现一致，通过。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = opc
        .put_json(&format!("/api/v1/skills/{skill_id}/enabled"), json!({"enabled": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (committee, _) = app.user("billcommittee", Role::Committee).await;
    World {
        app,
        _upstream: upstream,
        _mcp: mcp,
        opc,
        opc_key,
        opc_id,
        operator,
        operator_id,
        community_id,
        publisher,
        publisher_id,
        skill_id,
        committee,
    }
}

/// One model call through the gateway, waiting until its metering is committed.
async fn model_call(w: &World, model: &str) {
    let before = ledger_events(w).await;
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hello hello hello hello"}], "max_tokens": 7});
    let r = w.opc_key.post_json("/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for _ in 0..200 {
        if ledger_events(w).await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway did not meter the call");
}

async fn ledger_events(w: &World) -> i64 {
    w.app.store.ledger_size().await.unwrap()
}

/// One paid skill call through the Skill Store.
async fn skill_call(w: &World, a: i64) {
    let r = w
        .opc_key
        .post_json(
            &format!("/api/v1/skills/{}/invoke", w.skill_id),
            json!({"tool": "add", "arguments": {"a": a, "b": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["charged_fen"], 5, "{}", r.text);
}

/// Usage of last month, as the gateway, a reported cluster and the Skill Store build it (the
/// same event builders), dated at `at`: two model requests (per kind of token), GPU time
/// reported against the operator's community, and three paid skill calls.
async fn seed_month(w: &World, at: i64, tag: &str) {
    let mut items = vec![];
    for (i, model) in ["fake-final", "fake-cumulative"].iter().enumerate() {
        let id = format!("{tag}-req-{i}");
        let r = metering::GatewayRequest {
            request_id: &id,
            subject: &w.opc_id,
            operator_user_id: &w.operator_id,
            channel_id: "c1",
            model,
            endpoint: "/v1/chat/completions",
            price_version: "bill-v1",
            estimated: false,
            outcome: "ok",
            started_ms: at,
        };
        items.push(metering::token(&r, metering::TokenKind::Input, 120, 2_000_000, 1_000_000));
        items.push(metering::token(&r, metering::TokenKind::CachedInput, 40, 1_000_000, 500_000));
        items.push(metering::token(&r, metering::TokenKind::Output, 33, 6_000_000, 3_000_000));
    }
    let src = format!("{tag}-cluster");
    items.push(metering::compute(&metering::ComputeUse {
        source: &src,
        source_event_id: "job-1",
        subject: &w.opc_id,
        counterparty: &w.community_id,
        item: "a100-80g",
        cluster: "c",
        gpu_seconds: 5400,
        list_fen: 2700,
        charged_fen: 1350,
        price_version: "gpu-v1",
        occurred_at_ms: at,
    }));
    for i in 0..3 {
        let key = format!("{tag}-call-{i}");
        items.push(metering::skill_call(&metering::SkillCall {
            call_key: &key,
            invoker_party: &w.opc_id,
            publisher_party: &w.publisher_id,
            skill_slug: "bill-calc",
            version: "1.0.0",
            version_hash: "h",
            tool: "add",
            outcome: "ok",
            latency_ms: 3,
            request_digest: "d1",
            response_digest: "d2",
            charged_fen: 5,
            started_ms: at,
            not_qualified_reason: None,
        }));
    }
    let out = w
        .app
        .store
        .ledger_append(items.into_iter().map(Item::Event).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, opchub_store::ledger::Outcome::Stored(_))));
}

/// The ledger's (list, charged) per payee for the OPC in `month`, from the monthly rollups of
/// the billed kinds (a community counts for its operator).
async fn ledger_sums(w: &World, month: &str) -> BTreeMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT counterparty, CAST(SUM(list_fen) AS BIGINT), CAST(SUM(charged_fen) AS BIGINT) FROM ledger_rollups_monthly \
         WHERE subject = $1 AND month = $2 AND kind IN ('token.input', 'token.cached_input', 'token.output', 'compute.gpu_second', 'data.byte', 'skill.call') \
         GROUP BY counterparty",
    )
    .bind(&w.opc_id)
    .bind(month)
    .fetch_all(w.app.store.pool())
    .await
    .unwrap();
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (cp, l, c) in rows {
        let payee = if cp == w.community_id { w.operator_id.clone() } else { cp };
        let e = out.entry(payee).or_default();
        e.0 += l;
        e.1 += c;
    }
    out
}

async fn bills_of(c: &Client, query: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/bills{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json().as_array().unwrap().clone()
}

fn bill_id(month: &str, payer: &str, payee: &str) -> String {
    format!("{month}.{payer}.{payee}")
}

async fn close(w: &World, month: &str) {
    let r = w
        .committee
        .post_json(&format!("/api/v1/ledger/periods/{month}/close"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A bill's lines add up to its total and list amount, to the fen.
fn assert_lines_sum(detail: &Value) {
    let lines = detail["lines"].as_array().unwrap();
    let sum = |k: &str| lines.iter().map(|l| l[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("charged_fen"), detail["bill"]["total_fen"].as_i64().unwrap());
    assert_eq!(sum("list_fen"), detail["bill"]["list_fen"].as_i64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_months_bills_equal_the_ledger_to_the_fen_for_every_payee() {
    let w = world().await;
    let (month, at) = last_month();
    seed_month(&w, at, "a").await;
    // Before the close the month's bills are running.
    let running = bills_of(&w.opc, &format!("?month={month}")).await;
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.iter().all(|b| b["status"] == "running"));
    close(&w, &month).await;

    let sums = ledger_sums(&w, &month).await;
    assert_eq!(sums.len(), 2, "two payees: the operator and the publisher");
    let bills = bills_of(&w.opc, &format!("?month={month}")).await;
    assert_eq!(bills.len(), 2, "{bills:?}");
    for b in &bills {
        let payee = b["payee"].as_str().unwrap();
        let (list, charged) = sums[payee];
        assert_eq!(b["status"], "issued");
        assert_eq!(
            (b["list_fen"].as_i64().unwrap(), b["total_fen"].as_i64().unwrap()),
            (list, charged),
            "payee {payee}"
        );
        let d = w.opc.get(&format!("/api/v1/bills/{}", b["id"].as_str().unwrap())).await.json();
        assert_lines_sum(&d);
    }
    // The operator's bill: tokens per model and kind at bill-v1, and the GPU time reported
    // against its community (billed to the operator), each line exact.
    let op_bill = w
        .opc
        .get(&format!("/api/v1/bills/{}", bill_id(&month, &w.opc_id, &w.operator_id)))
        .await
        .json();
    let lines = op_bill["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 7, "{lines:?}");
    let gpu = lines.iter().find(|l| l["kind"] == "compute.gpu_second").unwrap();
    assert_eq!(
        (gpu["item"].as_str(), gpu["quantity"].as_i64(), gpu["charged_fen"].as_i64()),
        (Some("a100-80g"), Some(5400), Some(1350))
    );
    let out = lines
        .iter()
        .find(|l| l["kind"] == "token.output" && l["item"] == "fake-final")
        .unwrap();
    assert_eq!(
        (out["quantity"].as_i64(), out["list_fen"].as_i64(), out["charged_fen"].as_i64()),
        (Some(33), Some(198), Some(99))
    );
    assert_eq!(op_bill["bill"]["total_fen"], 2 * (120 + 20 + 99) + 1350);
    // The publisher's bill: one line for the skill, three calls of 5 fen.
    let pub_bill = w
        .publisher
        .get(&format!("/api/v1/bills/{}", bill_id(&month, &w.opc_id, &w.publisher_id)))
        .await
        .json();
    assert_eq!(pub_bill["my_side"], "payee");
    let l = &pub_bill["lines"][0];
    assert_eq!(
        (l["item"].as_str(), l["quantity"].as_i64(), l["charged_fen"].as_i64()),
        (Some("bill-calc"), Some(3), Some(15))
    );
    // The payee sees its receivables; the committee and the auditor every bill; another OPC none.
    assert_eq!(bills_of(&w.operator, &format!("?month={month}")).await.len(), 1);
    assert_eq!(bills_of(&w.committee, &format!("?month={month}&status=issued")).await.len(), 2);
    let (auditor, _) = w.app.user("billaudit", Role::Auditor).await;
    assert_eq!(bills_of(&auditor, &format!("?month={month}")).await.len(), 2);
    let (_, ws) = w.app.community(Zone::HexiArea, 1).await;
    w.app.opc_at("billother", 703, &ws[0]).await;
    let other = w.app.client();
    other.login("billother", PASSWORD).await;
    assert!(bills_of(&other, "").await.is_empty());
    let r = other
        .get(&format!("/api/v1/bills/{}", bill_id(&month, &w.opc_id, &w.operator_id)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_bill_grows_with_every_charge_and_an_issued_bill_never_changes() {
    let w = world().await;
    let month = this_month();
    let op_id = bill_id(&month, &w.opc_id, &w.operator_id);
    let pub_id = bill_id(&month, &w.opc_id, &w.publisher_id);

    // Model calls through the gateway and a paid skill call: running bills, equal to the ledger.
    model_call(&w, "fake-final").await;
    skill_call(&w, 1).await;
    let d = w.opc.get(&format!("/api/v1/bills/{op_id}")).await.json();
    assert_eq!(d["bill"]["status"], "running", "{d}");
    let first = d["bill"]["total_fen"].as_i64().unwrap();
    assert!(first > 0);
    assert_lines_sum(&d);
    let sums = ledger_sums(&w, &month).await;
    assert_eq!(first, sums[&w.operator_id].1, "the running bill is the ledger's charged amount");
    assert_eq!(d["bill"]["list_fen"].as_i64().unwrap(), sums[&w.operator_id].0);
    let running = bills_of(&w.opc, "?status=running").await;
    assert_eq!(running.len(), 2, "{running:?}");

    model_call(&w, "fake-cumulative").await;
    skill_call(&w, 2).await;
    let d = w.opc.get(&format!("/api/v1/bills/{op_id}")).await.json();
    let second = d["bill"]["total_fen"].as_i64().unwrap();
    assert!(second > first, "the running bill grows: {first} → {second}");
    assert_eq!(second, ledger_sums(&w, &month).await[&w.operator_id].1);
    let p = w.publisher.get(&format!("/api/v1/bills/{pub_id}")).await.json();
    assert_eq!(
        (p["bill"]["total_fen"].as_i64(), p["lines"][0]["quantity"].as_i64()),
        (Some(10), Some(2))
    );
    // A running bill cannot be paid.
    let r = w
        .opc
        .post_json(
            &format!("/api/v1/bills/{op_id}/payments"),
            json!({"amount_fen": 1, "paid_on": today(), "reference": "RUN-1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "bill_not_issued"),
        "{}",
        r.text
    );

    // Last month, closed: issued. A late event for it afterwards is booked into this month
    // (its running bill) and the issued bill stays exactly as it was.
    let (last, at) = last_month();
    seed_month(&w, at, "b").await;
    close(&w, &last).await;
    let issued_id = bill_id(&last, &w.opc_id, &w.operator_id);
    let before = w.opc.get(&format!("/api/v1/bills/{issued_id}")).await.json();
    assert_eq!(before["bill"]["status"], "issued");
    let running_before = w.opc.get(&format!("/api/v1/bills/{op_id}")).await.json()["bill"]["total_fen"]
        .as_i64()
        .unwrap();
    seed_month(&w, at, "late").await;
    let after = w.opc.get(&format!("/api/v1/bills/{issued_id}")).await.json();
    assert_eq!(before["bill"], after["bill"], "an issued bill never changes");
    assert_eq!(before["lines"], after["lines"]);
    let running_after = w.opc.get(&format!("/api/v1/bills/{op_id}")).await.json()["bill"]["total_fen"]
        .as_i64()
        .unwrap();
    assert_eq!(
        running_after - running_before,
        2 * (120 + 20 + 99) + 1350,
        "the late usage is on this month's bill"
    );
    // Issuing again changes nothing either.
    assert_eq!(w.app.store.issue_bills(&opchub_store::Actor::system(), &last).await.unwrap(), 0);
}

/// A closed month with usage: the operator's bill id and its total.
async fn issued(w: &World, tag: &str) -> (String, String, i64) {
    let (month, at) = last_month();
    seed_month(w, at, tag).await;
    close(w, &month).await;
    let id = bill_id(&month, &w.opc_id, &w.operator_id);
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    (month, id, d["bill"]["total_fen"].as_i64().unwrap())
}

async fn pay(c: &Client, bill: &str, amount: i64, paid_on: &str, reference: &str) -> Resp {
    c.post_json(
        &format!("/api/v1/bills/{bill}/payments"),
        json!({"amount_fen": amount, "paid_on": paid_on, "reference": reference, "note": "银行转账"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_payment_confirmed_then_the_rest_and_the_bill_is_paid() {
    let w = world().await;
    let (month, id, total) = issued(&w, "p").await;
    assert_eq!(total, 2 * (120 + 20 + 99) + 1350);

    let r = pay(&w.opc, &id, 400, &today(), "TX-0001").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let payment = r.json();
    assert_eq!(
        (payment["status"].as_str(), payment["recorded_side"].as_str()),
        (Some("pending"), Some("payer"))
    );
    let pid = payment["id"].as_str().unwrap().to_string();
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    assert_eq!(
        (d["bill"]["status"].as_str(), d["bill"]["paid_fen"].as_i64()),
        (Some("issued"), Some(0)),
        "pending is not paid"
    );
    assert_eq!(d["bill"]["outstanding_fen"].as_i64(), Some(total - 400));

    // Two-party control: the payer cannot confirm its own payment.
    let r = w.opc.post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({})).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::FORBIDDEN, "not_payee"), "{}", r.text);
    // The payee confirms: partially paid, and one ledger event names the bill.
    let size = w.app.store.ledger_size().await.unwrap();
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let leaf = r.json()["ledger_leaf_index"].as_i64().unwrap();
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 1);
    let e = w.app.store.ledger_event(leaf).await.unwrap();
    assert_eq!(
        (
            e.kind.as_str(),
            e.subject.as_str(),
            e.counterparty.as_str(),
            e.charged_fen,
            e.attributes["bill"].as_str()
        ),
        ("bill.payment", w.opc_id.as_str(), w.operator_id.as_str(), 400, id.as_str())
    );
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    assert_eq!(
        (d["bill"]["status"].as_str(), d["bill"]["paid_fen"].as_i64()),
        (Some("partially_paid"), Some(400))
    );
    assert_eq!(bills_of(&w.opc, "?status=partially_paid").await.len(), 1);

    // Confirming twice, or disputing a confirmed payment: refused, nothing changes.
    let audit = audit_count(&w.app.store).await;
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::CONFLICT, "payment_not_pending"));
    let r = w
        .opc
        .post_json(&format!("/api/v1/bills/payments/{pid}/dispute"), json!({"reason": "金额不对"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::CONFLICT, "payment_not_pending"));
    assert_eq!(audit_count(&w.app.store).await, audit);
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 1);

    // The payee records the rest as received: confirmed at once, paid.
    let r = w
        .operator
        .post_json(
            &format!("/api/v1/bills/{id}/receipts"),
            json!({"amount_fen": total - 400, "paid_on": opchub_ledger::bills::day_after_month(&month).unwrap(), "reference": "TX-0002"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["status"], "confirmed");
    assert!(r.json()["ledger_leaf_index"].is_i64());
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    assert_eq!(
        (d["bill"]["status"].as_str(), d["bill"]["paid_fen"].as_i64()),
        (Some("paid"), Some(total))
    );
    assert_eq!(d["payments"].as_array().unwrap().len(), 2);
    // Payments are money, not usage: the statements' totals do not count them.
    for period in [month.clone(), this_month()] {
        let totals = w.app.store.usage_totals(&w.opc_id, false, &period).await.unwrap();
        assert!(totals.iter().all(|t| t.kind != "bill.payment"), "{totals:?}");
        let served = w.app.store.usage_totals(&w.operator_id, true, &period).await.unwrap();
        assert!(served.iter().all(|t| t.kind != "bill.payment"), "{served:?}");
    }
    // Nothing more may be paid.
    let r = pay(&w.opc, &id, 1, &today(), "TX-0003").await;
    assert_eq!(r.json()["error"]["field_codes"]["amount_fen"], "above_outstanding", "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payments_are_refused_with_a_stable_code_and_nothing_changes() {
    let w = world().await;
    let (month, id, total) = issued(&w, "x").await;
    let pub_bill = bill_id(&month, &w.opc_id, &w.publisher_id);
    let r = pay(&w.opc, &id, 100, &today(), "REF-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.json()["id"].as_str().unwrap().to_string();

    let tomorrow = (chrono::Utc::now().with_timezone(&beijing()).date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let (stranger, _) = w.app.user("billstranger", Role::CommunityOperator).await;
    let audit = audit_count(&w.app.store).await;
    let payments = w.app.store.bill_payments(&id).await.unwrap();
    let field = |r: &Resp, f: &str| r.json()["error"]["field_codes"][f].as_str().unwrap_or("").to_string();

    // More than what is outstanding.
    let r = pay(&w.opc, &id, total - 100 + 1, &today(), "REF-2").await;
    assert_eq!(
        (r.status, field(&r, "amount_fen").as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "above_outstanding")
    );
    // Dated before the bill's month has ended, or in the future.
    let r = pay(&w.opc, &id, 10, &last_day_of(&month), "REF-3").await;
    assert_eq!(
        (r.status, field(&r, "paid_on").as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "paid_before_bill_month_end")
    );
    let r = pay(&w.opc, &id, 10, &tomorrow, "REF-4").await;
    assert_eq!(field(&r, "paid_on"), "date_in_future");
    // A reference used twice for the same payee (spelt differently).
    let r = pay(&w.opc, &id, 10, &today(), "ref- 1").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "duplicate_reference"),
        "{}",
        r.text
    );
    // A payment on a running bill.
    let running = bill_id(&this_month(), &w.opc_id, &w.operator_id);
    let r = pay(&w.opc, &running, 10, &today(), "REF-5").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::CONFLICT, "bill_not_issued"));
    // Confirming a payment on someone else's bill: another operator, or the publisher.
    let r = stranger
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let r = w
        .publisher
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The payee may not record the payer's payment, nor the payer a receipt.
    let r = w
        .operator
        .post_json(
            &format!("/api/v1/bills/{id}/payments"),
            json!({"amount_fen": 1, "paid_on": today(), "reference": "REF-6"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .opc
        .post_json(
            &format!("/api/v1/bills/{id}/receipts"),
            json!({"amount_fen": 1, "paid_on": today(), "reference": "REF-7"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::FORBIDDEN, "not_payee"));
    assert_eq!(audit_count(&w.app.store).await, audit, "nothing was written");
    assert_eq!(w.app.store.bill_payments(&id).await.unwrap(), payments);

    // The same reference is fine for another payee (references are per payee).
    let r = pay(&w.opc, &pub_bill, 5, &today(), "REF-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Confirmed twice and disputed once confirmed.
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let audit = audit_count(&w.app.store).await;
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!(r.code(), "payment_not_pending");
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{pid}/dispute"), json!({"reason": "没有收到"}))
        .await;
    assert_eq!(r.code(), "payment_not_pending");
    assert_eq!(audit_count(&w.app.store).await, audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_side_disputes_and_the_committee_decides() {
    let w = world().await;
    let (_, id, _) = issued(&w, "d").await;
    let r = pay(&w.opc, &id, 300, &today(), "D-1").await;
    let first = r.json()["id"].as_str().unwrap().to_string();
    // The payee says it never arrived.
    let r = w
        .operator
        .post_json(
            &format!("/api/v1/bills/payments/{first}/dispute"),
            json!({"reason": "没有收到这笔转账"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dispute = r.json()["id"].as_str().unwrap().to_string();
    let r = w.committee.get("/api/v1/bills/disputes").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // Only the committee decides; rejected: void, it frees its share of the bill.
    let r = resolve(&w.operator, &dispute, "upheld", "我方认为").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let size = w.app.store.ledger_size().await.unwrap();
    let r = resolve(&w.committee, &dispute, "rejected", "银行流水无此笔").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(w.app.store.bill_payment(&first).await.unwrap().status, "void");
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size, "a void payment is no ledger event");
    // The payer heard of the operator's dispute; both sides of the decision.
    let kinds = |c: &Client| {
        let (c, id) = (c.clone(), id.clone());
        async move {
            c.get("/api/v1/notifications").await.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["object_id"] == id.as_str())
                .map(|n| n["kind"].as_str().unwrap().to_string())
                .collect::<Vec<String>>()
        }
    };
    let opc_heard = kinds(&w.opc).await;
    assert!(
        opc_heard.contains(&"bill_payment_disputed".to_string()) && opc_heard.contains(&"bill_dispute_resolved".to_string()),
        "{opc_heard:?}"
    );
    let op_heard = kinds(&w.operator).await;
    assert!(
        !op_heard.contains(&"bill_payment_disputed".to_string()) && op_heard.contains(&"bill_dispute_resolved".to_string()),
        "{op_heard:?}"
    );
    let r = resolve(&w.committee, &dispute, "upheld", "再次裁定").await;
    assert_eq!(r.code(), "dispute_resolved");
    // The payer disputes nothing of its own, but an upheld dispute confirms and posts.
    let r = pay(&w.opc, &id, 300, &today(), "D-2").await;
    let second = r.json()["id"].as_str().unwrap().to_string();
    let r = w
        .opc
        .post_json(
            &format!("/api/v1/bills/payments/{second}/dispute"),
            json!({"reason": "收款方迟迟不确认"}),
        )
        .await;
    let dispute = r.json()["id"].as_str().unwrap().to_string();
    let r = resolve(&w.committee, &dispute, "upheld", "银行回单无误").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = w.app.store.bill_payment(&second).await.unwrap();
    assert_eq!(p.status, "confirmed");
    assert!(p.ledger_leaf_index.is_some());
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    assert_eq!(
        (d["bill"]["status"].as_str(), d["bill"]["paid_fen"].as_i64()),
        (Some("partially_paid"), Some(300))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bill_pages_list_show_and_take_a_payment_and_the_csv_has_the_lines() {
    let w = world().await;
    let (month, id, total) = issued(&w, "g").await;
    let page = w.opc.get("/my/bills").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!("/my/bills/{id}")), "{}", page.text);
    assert!(page.text.contains("已出账"));
    let page = w.opc.get(&format!("/my/bills/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("a100-80g") && page.text.contains("登记付款"), "{}", page.text);
    // The form in yuan; a refused one comes back with the message.
    let r = w
        .opc
        .post_form(
            &format!("/my/bills/{id}/payments"),
            &[("amount", "1.00"), ("paid_on", &last_day_of(&month)), ("reference", "P-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("付款日期不能早于账单月份结束"), "{}", r.text);
    let r = w
        .opc
        .post_form(
            &format!("/my/bills/{id}/payments"),
            &[("amount", "1.00"), ("paid_on", &today()), ("reference", "P-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let payment = &w.app.store.bill_payments(&id).await.unwrap()[0];
    assert_eq!(payment.amount_fen, 100);
    // The payee confirms on its page.
    let page = w.operator.get(&format!("/my/bills/{id}")).await;
    assert!(page.text.contains("确认收款"));
    let r = w
        .operator
        .post_form(&format!("/my/bills/payments/{}", payment.id), &[("action", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let page = w.opc.get(&format!("/my/bills/{id}?lang=en")).await;
    assert!(
        page.text.contains("部分付款") || page.text.contains("Partially paid"),
        "{}",
        page.text
    );

    // CSV: Chinese headers by default, English on request; the total row is the bill's.
    let (status, _, bytes) = w.opc.get_bytes(&format!("/api/v1/bills/{id}/export.csv")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("行号,类型,项目,价格版本"), "{text}");
    assert!(
        text.contains(&format!("合计,,,,,,{},{total},", 2 * (240 + 40 + 198) + 2700)),
        "{text}"
    );
    let (_, _, bytes) = w.opc.get_bytes(&format!("/api/v1/bills/{id}/export.csv?lang=en")).await;
    assert!(String::from_utf8(bytes).unwrap().contains("line,kind,item,price version"));

    // XLSX (issue 19 item 5), read back with calamine: Chinese headers, numeric cells whose
    // lines add up to the totals row, in fen and in yuan.
    let (status, headers, bytes) = w.opc.get_bytes(&format!("/api/v1/bills/{id}/export.xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''bill-"));
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), vec!["对账单".to_string()]);
    let rows: Vec<Vec<calamine::Data>> = wb.worksheet_range_at(0).unwrap().unwrap().rows().map(|r| r.to_vec()).collect();
    let num = |d: &calamine::Data| match d {
        calamine::Data::Float(f) => *f,
        calamine::Data::Int(i) => *i as f64,
        other => panic!("not a number cell: {other:?}"),
    };
    let head = rows.iter().position(|r| r[0] == calamine::Data::String("行号".into())).unwrap();
    assert_eq!(rows[head][10], calamine::Data::String("应付（元）".into()));
    let last = rows.len() - 1;
    assert_eq!(rows[last][0], calamine::Data::String("合计".into()));
    let lines = &rows[head + 1..last];
    assert!(!lines.is_empty());
    let fen: f64 = lines.iter().map(|r| num(&r[7])).sum();
    let yuan: f64 = lines.iter().map(|r| num(&r[10])).sum();
    assert_eq!((fen, num(&rows[last][7])), (total as f64, total as f64));
    assert!((yuan - total as f64 / 100.0).abs() < 1e-9 && (num(&rows[last][10]) - total as f64 / 100.0).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_never_pass_the_bills_total() {
    let w = world().await;
    let (_, id, total) = issued(&w, "c").await;
    let quarter = total / 4;
    let mut tasks = vec![];
    for i in 0..10 {
        let (c, id) = (w.opc.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            pay(&c, &id, quarter, &today(), &format!("C-{i}")).await.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::CREATED {
            ok += 1;
        }
    }
    assert_eq!(ok, 4, "four quarters fit the bill, no more");
    let recorded: i64 = w.app.store.bill_payments(&id).await.unwrap().iter().map(|p| p.amount_fen).sum();
    assert!(recorded <= total);
}

/// A settlement draft of last month's year for M2.2 and M2.3: its lines by (clause, beneficiary).
async fn settle_last_month(w: &World) -> BTreeMap<(String, String), Value> {
    use chrono::Datelike;
    let (_, at) = last_month();
    let year = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .with_timezone(&beijing())
        .year();
    let r = w
        .committee
        .post_json("/api/v1/settlements", json!({"year": year, "clauses": ["M2.2", "M2.3"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["batch"]["id"].as_str().unwrap().to_string();
    let b = w.committee.get(&format!("/api/v1/settlements/{id}")).await.json();
    b["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                (
                    l["clause"].as_str().unwrap().to_string(),
                    l["beneficiary"].as_str().unwrap().to_string(),
                ),
                l.clone(),
            )
        })
        .collect()
}

fn decision(l: &Value) -> Value {
    serde_json::from_str(l["decision"].as_str().unwrap()).unwrap()
}

/// Issue 19 item 4: M2.2's discount and M2.3's publisher revenue and invoker spend count only
/// usage on bills paid and confirmed. A closed month's unpaid bills hold the operator's M2.2
/// line and both M2.3 lines, and their traces name the bill; a payment recorded but not yet
/// confirmed releases nothing; the payee's confirmation (or its own receipt) releases the line
/// with the whole month's basis; the running month is not counted yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_bill_holds_its_m22_and_m23_lines_and_paying_and_confirming_releases_them() {
    let w = world().await;
    let (month, at) = last_month();
    // Both OPCs registered before last month's usage (a loader's history), so it qualifies.
    for id in [&w.opc_id, &w.publisher_id] {
        w.app
            .store
            .set_opc_registered_at(&opchub_store::Actor::system(), id, at - 5 * 86_400_000)
            .await
            .unwrap();
    }
    // What M2.2 and M2.3 read besides usage: the community's tax registration (G2) and every
    // F3 list, so the only open question is the bills.
    let (platform, _) = w.app.user("billplat2", Role::PlatformOperator).await;
    let r = platform
        .put_json(
            &format!("/api/v1/parties/community/{}/registration", w.community_id),
            json!({"tax_registered": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for kind in [
        "restricted_industry",
        "no_support_sanction",
        "safety_accident",
        "excluded_by_review",
    ] {
        let body = if kind == "safety_accident" {
            "uscc,name,reason,event_date\n"
        } else {
            "uscc,name,reason\n"
        };
        let r = w
            .committee
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/exclusions/{kind}"),
                Some(Body::Raw("text/csv", body.as_bytes().to_vec())),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {}", r.text);
    }
    seed_month(&w, at, "h").await;
    close(&w, &month).await;
    // This month's usage is on the running bill: not counted, and it holds nothing.
    skill_call(&w, 1).await;

    let op_bill = bill_id(&month, &w.opc_id, &w.operator_id);
    let skill_bill = bill_id(&month, &w.opc_id, &w.publisher_id);
    // Issue 19 item 5: the publisher sees its revenue split the way M2.3 reads it — last
    // month's 15 fen wait for the bill's payment, this month's 5 fen for the bill to be issued.
    let basis = |c: &Client| {
        let c = c.clone();
        async move {
            let r = c.get("/api/v1/my/skills/m23-basis").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()
        }
    };
    // The payer hears of each bill issued (出账), linked to the bill.
    let heard = |c: &Client, kind: &'static str| {
        let c = c.clone();
        async move {
            let r = c.get("/api/v1/notifications").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["kind"] == kind)
                .map(|n| n["object_id"].as_str().unwrap().to_string())
                .collect::<Vec<String>>()
        }
    };
    let issued_to_opc = heard(&w.opc, "bill_issued").await;
    assert!(
        issued_to_opc.contains(&op_bill) && issued_to_opc.contains(&skill_bill),
        "{issued_to_opc:?}"
    );
    let page = w.opc.get("/notifications").await;
    assert!(
        page.text.contains("月度对账单已出账") && page.text.contains(&format!("&#x2f;my&#x2f;bills&#x2f;{skill_bill}")),
        "{}",
        page.text
    );
    let b = basis(&w.publisher).await;
    assert_eq!(
        (b["counted_fen"].as_i64(), b["waiting_payment_fen"].as_i64()),
        (Some(0), Some(15)),
        "{b}"
    );
    assert_eq!(b["unpaid_bills"][0][0], skill_bill.as_str(), "{b}");
    assert_eq!(b["running"], json!([[this_month(), 5]]), "{b}");
    let page = w.publisher.get("/my/skills").await;
    assert!(
        page.text.contains("M2.3 补贴口径") && page.text.contains("待付款") && page.text.contains(&skill_bill),
        "{}",
        page.text
    );
    let lines = settle_last_month(&w).await;
    let held = [
        ("M2.2", &w.operator_id, &op_bill),
        ("M2.3-publisher", &w.publisher_id, &skill_bill),
        ("M2.3-invoker", &w.opc_id, &skill_bill),
    ];
    for (clause, who, bill) in held {
        let l = &lines[&(clause.to_string(), who.clone())];
        assert_eq!(
            (l["eligible"].as_str(), l["amount_fen"].as_i64()),
            (Some("unknown"), Some(0)),
            "{clause}: {l}"
        );
        let d = decision(l);
        assert!(d["missing_facts"].to_string().contains("bill_payment"), "{clause}: {d}");
        let hold = d["trace"].as_array().unwrap().iter().find(|s| s["rule"] == "bill_unpaid");
        let hold = hold.unwrap_or_else(|| panic!("{clause}: no bill hold in {d}"));
        assert!(hold["text"].as_str().unwrap().contains(bill.as_str()), "{clause}: {hold}");
    }
    // The running month is named as not counted yet on the M2.3 lines.
    let d = decision(&lines[&("M2.3-invoker".to_string(), w.opc_id.clone())]);
    assert!(d["trace"].as_array().unwrap().iter().any(|s| s["rule"] == "bill_running"), "{d}");

    // The operator records receiving its bill in full: confirmed at once, M2.2 released.
    let op_total = w.opc.get(&format!("/api/v1/bills/{op_bill}")).await.json()["bill"]["total_fen"]
        .as_i64()
        .unwrap();
    // Issue 19 item 5: the operator's receivables show the month billed and nothing received.
    let recv = |c: &Client| {
        let c = c.clone();
        async move {
            let r = c.get("/api/v1/bills/receivables").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json().as_array().unwrap().clone()
        }
    };
    let mine = recv(&w.operator).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        (
            mine[0]["month"].as_str(),
            mine[0]["billed_fen"].as_i64(),
            mine[0]["paid_fen"].as_i64(),
            mine[0]["outstanding_fen"].as_i64()
        ),
        (Some(month.as_str()), Some(op_total), Some(0), Some(op_total))
    );
    assert_ne!(mine[0]["ageing"], "settled");
    assert!(recv(&w.opc).await.is_empty(), "the paying OPC is owed nothing");
    let all = recv(&w.committee).await;
    let payees: Vec<&str> = all.iter().map(|r| r["payee"].as_str().unwrap()).collect();
    assert!(
        payees.contains(&w.operator_id.as_str()) && payees.contains(&w.publisher_id.as_str()),
        "{all:?}"
    );
    // Each payee's paid part is the basis of its clause: the operator's M2.2, the publisher's M2.3.
    for r in &all {
        let want = if r["payee"] == w.publisher_id.as_str() { "M2.3" } else { "M2.2" };
        assert_eq!(r["clause"], want, "{r}");
    }
    let r = w
        .operator
        .post_json(
            &format!("/api/v1/bills/{op_bill}/receipts"),
            json!({"amount_fen": op_total, "paid_on": today(), "reference": "OP-RCV-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The OPC records paying the publisher: pending until the publisher confirms.
    let skill_total = w.opc.get(&format!("/api/v1/bills/{skill_bill}")).await.json()["bill"]["total_fen"]
        .as_i64()
        .unwrap();
    assert_eq!(skill_total, 15);
    let r = pay(&w.opc, &skill_bill, skill_total, &today(), "SK-PAY-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.json()["id"].as_str().unwrap().to_string();
    // The publisher has a payment to confirm; the operator's own receipt told the OPC it was received.
    assert_eq!(heard(&w.publisher, "bill_payment_to_confirm").await, vec![skill_bill.clone()]);
    assert_eq!(heard(&w.opc, "bill_payment_confirmed").await, vec![op_bill.clone()]);

    let mine = recv(&w.operator).await;
    assert_eq!(
        (
            mine[0]["paid_fen"].as_i64(),
            mine[0]["outstanding_fen"].as_i64(),
            mine[0]["ageing"].as_str()
        ),
        (Some(op_total), Some(0), Some("settled"))
    );
    let page = w.operator.get("/my/bills").await;
    assert!(
        page.text.contains("应收账款与账龄") && page.text.contains("data-ageing=\"settled\""),
        "{}",
        page.text
    );
    let lines = settle_last_month(&w).await;
    let m22 = &lines[&("M2.2".to_string(), w.operator_id.clone())];
    // M2.2 pays 100% of the discount given (list − charged) on the paid bill.
    let sums = ledger_sums(&w, &month).await;
    let (list, charged) = sums[&w.operator_id];
    assert_eq!(
        (m22["eligible"].as_str(), m22["amount_fen"].as_i64()),
        (Some("yes"), Some(list - charged)),
        "{m22}"
    );
    assert!(!decision(m22)["trace"].to_string().contains("bill_unpaid"));
    for (clause, who) in [("M2.3-publisher", &w.publisher_id), ("M2.3-invoker", &w.opc_id)] {
        let l = &lines[&(clause.to_string(), who.clone())];
        assert_eq!(l["eligible"], "unknown", "a pending payment releases nothing: {clause} {l}");
        assert!(decision(l)["trace"].to_string().contains(&skill_bill));
    }

    // The publisher confirms: both M2.3 lines are payable at 50% of the 15 fen paid (¥0.075,
    // half-up once to ¥0.08), and this month's running usage still is not counted.
    let r = w
        .publisher
        .post_json(&format!("/api/v1/bills/payments/{pid}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let lines = settle_last_month(&w).await;
    for (clause, who) in [("M2.3-publisher", &w.publisher_id), ("M2.3-invoker", &w.opc_id)] {
        let l = &lines[&(clause.to_string(), who.clone())];
        assert_eq!(
            (l["eligible"].as_str(), l["amount_fen"].as_i64()),
            (Some("yes"), Some(8)),
            "{clause}: {l}"
        );
        assert!(!decision(l)["trace"].to_string().contains("bill_unpaid"));
    }
    let b = basis(&w.publisher).await;
    assert_eq!(
        (b["counted_fen"].as_i64(), b["waiting_payment_fen"].as_i64()),
        (Some(15), Some(0)),
        "{b}"
    );
    let confirmed = heard(&w.opc, "bill_payment_confirmed").await;
    assert!(confirmed.contains(&skill_bill) && confirmed.contains(&op_bill), "{confirmed:?}");
}

/// Issue 19 item 3: a confirmation and its `bill.payment` event are one commit. Confirmed
/// through the API, the payment has its leaf at once (nothing is left for a repair). When the
/// payment stops being pending after the confirmation was read (a dispute wins the race), the
/// writer refuses the event with `payment_not_pending` and writes nothing of either: the
/// ledger does not grow, the payment stays disputed, the payer hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_and_its_ledger_event_commit_together_or_not_at_all() {
    use opchub_store::ledger::{Item, Outcome, SideWrite};
    let w = world().await;
    let (month, id, _) = issued(&w, "once").await;
    let r = pay(&w.opc, &id, 100, &today(), "ONCE-1").await;
    let first = r.json()["id"].as_str().unwrap().to_string();
    let size = w.app.store.ledger_size().await.unwrap();
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{first}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let leaf = w.app.store.bill_payment(&first).await.unwrap().ledger_leaf_index;
    assert_eq!(leaf, Some(size), "the confirmation carries its event's leaf");
    assert!(w.app.store.unposted_bill_payments().await.unwrap().is_empty());
    // Confirming again is refused and appends nothing.
    let r = w
        .operator
        .post_json(&format!("/api/v1/bills/payments/{first}/confirm"), json!({}))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "payment_not_pending"),
        "{}",
        r.text
    );
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 1);

    // Two confirmations at once (they may share one writer commit): one confirms, the other
    // is refused, one event is appended.
    let r = pay(&w.opc, &id, 10, &today(), "ONCE-3").await;
    let third = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/bills/payments/{third}/confirm");
    let (a, b) = tokio::join!(w.operator.post_json(&path, json!({})), w.operator.post_json(&path, json!({})));
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT], "{} / {}", a.text, b.text);
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 2);
    assert!(w.app.store.bill_payment(&third).await.unwrap().ledger_leaf_index.is_some());
    // The same two confirmations in one writer commit, deterministically: the first is stored,
    // the second refuses its own event, not the first's.
    let r = pay(&w.opc, &id, 5, &today(), "ONCE-4").await;
    let fourth = w.app.store.bill_payment(r.json()["id"].as_str().unwrap()).await.unwrap();
    let operator = opchub_store::Actor::user(&w.operator_id, "community_operator");
    let confirm = || SideWrite::ConfirmBillPayment {
        payment_id: fourth.id.clone(),
        actor: operator.clone(),
    };
    let event = payer_payment_event(&w, &month, &fourth, &w.operator_id);
    let out = w
        .app
        .store
        .ledger_append_with(vec![Item::Event(event.clone()), Item::Event(event)], vec![confirm(), confirm()])
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [Outcome::Stored(_), Outcome::Rejected(e)] if e.code == "payment_not_pending"),
        "{out:?}"
    );
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 3);

    // The race: a second payment is disputed after its confirmation's event was built.
    let r = pay(&w.opc, &id, 50, &today(), "ONCE-2").await;
    let second = r.json()["id"].as_str().unwrap().to_string();
    let payment = w.app.store.bill_payment(&second).await.unwrap();
    let event = payer_payment_event(&w, &month, &payment, &w.operator_id);
    let r = w
        .opc
        .post_json(&format!("/api/v1/bills/payments/{second}/dispute"), json!({"reason": "金额不对"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let heard_before = confirmations_heard(&w.opc).await;
    let actor = opchub_store::Actor::user(&w.operator_id, "community_operator");
    let out = w
        .app
        .store
        .ledger_append_with(
            vec![Item::Event(event)],
            vec![SideWrite::ConfirmBillPayment {
                payment_id: second.clone(),
                actor,
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [Outcome::Rejected(e)] if e.code == "payment_not_pending"),
        "{out:?}"
    );
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size + 3, "no event");
    let after = w.app.store.bill_payment(&second).await.unwrap();
    assert_eq!((after.status.as_str(), after.ledger_leaf_index), ("disputed", None));
    assert_eq!(confirmations_heard(&w.opc).await, heard_before, "no notification");
}

/// The same for a committee's decision: upholding a disputed payment confirms it with its
/// event in one commit; a receipt the payee records is confirmed with its event in one commit
/// too; and a dispute decided meanwhile (rejected: void) refuses the upholding's event with
/// `dispute_resolved`, leaving the payment void and the ledger as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upheld_dispute_and_a_receipt_commit_with_their_events() {
    use opchub_store::ledger::{Item, Outcome, SideWrite};
    let w = world().await;
    let (month, id, _) = issued(&w, "uphold").await;
    // A receipt the payee records: confirmed, with its leaf, at once.
    let r = w
        .operator
        .post_json(
            &format!("/api/v1/bills/{id}/receipts"),
            json!({"amount_fen": 30, "paid_on": today(), "reference": "UP-R", "note": "现金"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let receipt = w.app.store.bill_payment(r.json()["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(receipt.status, "confirmed");
    assert!(receipt.ledger_leaf_index.is_some(), "the receipt carries its event's leaf");

    let dispute_of = |reference: &'static str| {
        let (opc, op) = (w.opc.clone(), w.operator.clone());
        let id = id.clone();
        async move {
            let r = pay(&opc, &id, 20, &today(), reference).await;
            let pid = r.json()["id"].as_str().unwrap().to_string();
            let r = op
                .post_json(&format!("/api/v1/bills/payments/{pid}/dispute"), json!({"reason": "未到账"}))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            (pid, r.json()["id"].as_str().unwrap().to_string())
        }
    };
    // Upheld through the API: confirmed with its leaf in the same commit.
    let (pid, dispute) = dispute_of("UP-1").await;
    let size = w.app.store.ledger_size().await.unwrap();
    let r = resolve(&w.committee, &dispute, "upheld", "银行流水有此笔").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let upheld = w.app.store.bill_payment(&pid).await.unwrap();
    assert_eq!((upheld.status.as_str(), upheld.ledger_leaf_index), ("confirmed", Some(size)));

    // The race: rejected after the upholding's event was built.
    let (pid, dispute) = dispute_of("UP-2").await;
    let payment = w.app.store.bill_payment(&pid).await.unwrap();
    let event = payer_payment_event(&w, &month, &payment, "committee");
    let r = resolve(&w.committee, &dispute, "rejected", "银行流水无此笔").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let size = w.app.store.ledger_size().await.unwrap();
    let out = w
        .app
        .store
        .ledger_append_with(
            vec![Item::Event(event)],
            vec![SideWrite::UpholdBillDispute {
                dispute_id: dispute.clone(),
                payment_id: pid.clone(),
                note: "迟到的维持".into(),
                actor: opchub_store::Actor::system(),
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [Outcome::Rejected(e)] if e.code == "dispute_resolved"),
        "{out:?}"
    );
    assert_eq!(w.app.store.ledger_size().await.unwrap(), size, "no event");
    let after = w.app.store.bill_payment(&pid).await.unwrap();
    assert_eq!((after.status.as_str(), after.ledger_leaf_index), ("void", None));
}

/// A committee (or other) member's decision on a dispute.
async fn resolve(c: &Client, dispute: &str, resolution: &str, note: &str) -> Resp {
    c.post_json(
        &format!("/api/v1/bills/disputes/{dispute}/resolve"),
        json!({"resolution": resolution, "note": note}),
    )
    .await
}

/// The `bill.payment` event of a payment the payer recorded on the world's operator bill, as
/// its confirmation by `confirmed_by` would append it.
fn payer_payment_event(w: &World, month: &str, p: &opchub_store::bills::BillPayment, confirmed_by: &str) -> opchub_ledger::event::NewEvent {
    opchub_ledger::metering::bill_payment(&opchub_ledger::metering::BillPayment {
        payment_id: &p.id,
        bill_id: &p.bill_id,
        month,
        payer: &w.opc_id,
        payee: &w.operator_id,
        amount_fen: p.amount_fen,
        reference: &p.reference,
        recorded_side: "payer",
        occurred_at_ms: p.created_at,
        confirmed_by: Some(confirmed_by),
    })
}

/// How many "payment confirmed" notifications `c` has.
async fn confirmations_heard(c: &Client) -> usize {
    let r = c.get("/api/v1/notifications").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "bill_payment_confirmed")
        .count()
}

/// A crash between a payment's confirmation and its ledger append (simulated: the store
/// confirms, nothing posts) is repaired when the server next starts: the confirmed payment
/// becomes its one `bill.payment` event; starting again posts nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_payment_a_crash_kept_out_of_the_ledger_is_posted_at_the_next_start() {
    let w = world().await;
    let (_, id, _) = issued(&w, "crash").await;
    let r = pay(&w.opc, &id, 200, &today(), "CRASH-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.json()["id"].as_str().unwrap().to_string();
    let actor = opchub_store::Actor::user(&w.operator_id, "community_operator");
    w.app.store.confirm_bill_payment(&actor, &pid).await.unwrap();
    assert_eq!(w.app.store.bill_payment(&pid).await.unwrap().ledger_leaf_index, None);
    assert_eq!(w.app.store.unposted_bill_payments().await.unwrap(), vec![pid.clone()]);

    let restarted = TestApp::start_on(w.app.db.clone()).await;
    let mut leaf = None;
    for _ in 0..100 {
        leaf = restarted.store.bill_payment(&pid).await.unwrap().ledger_leaf_index;
        if leaf.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leaf = leaf.expect("posted at start");
    let e = restarted.store.ledger_event(leaf).await.unwrap();
    assert_eq!(
        (e.kind.as_str(), e.charged_fen, e.source_event_id.as_str()),
        ("bill.payment", 200, pid.as_str())
    );
    let size = restarted.store.ledger_size().await.unwrap();
    let again = TestApp::start_on(w.app.db.clone()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(again.store.ledger_size().await.unwrap(), size, "nothing is posted twice");
    assert!(again.store.unposted_bill_payments().await.unwrap().is_empty());
}

/// Issue 19 item 3: a payment may carry its receipt file. The file's bytes must be what its
/// type says (an SVG declared as PNG is refused and nothing is recorded); the bill's two
/// parties and the committee read it, another OPC does not; the bill page links it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_carries_its_receipt_file_for_the_bills_parties_only() {
    use base64::Engine;
    let w = world().await;
    let (_, id, _) = issued(&w, "r").await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let with = |file: Value, reference: &str| json!({"amount_fen": 100, "paid_on": today(), "reference": reference, "receipt": file});
    let path = format!("/api/v1/bills/{id}/payments");
    let fake = json!({"name": "回单.png", "content_type": "image/png", "data_base64": b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>")});
    let r = w.opc.post_json(&path, with(fake, "RC-1")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["receipt"], "file_content_mismatch", "{}", r.text);
    let d = w.opc.get(&format!("/api/v1/bills/{id}")).await.json();
    assert!(d["payments"].as_array().unwrap().is_empty(), "nothing recorded: {d}");

    let real = json!({"name": "银行回单.png", "content_type": "image/png", "data_base64": b64(png)});
    let r = w.opc.post_json(&path, with(real, "RC-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sha = r.json()["receipt_sha256"].as_str().unwrap().to_string();
    assert_eq!(r.json()["receipt_name"], "银行回单.png");
    let file = format!("/api/v1/demands/files/{sha}");
    for c in [&w.opc, &w.operator, &w.committee] {
        let (status, _, bytes) = c.get_bytes(&file).await;
        assert_eq!((status, bytes.as_slice()), (StatusCode::OK, png));
    }
    let (other, _) = w.app.user("nosy_founder", opchub_domain::Role::OpcFounder).await;
    assert_eq!(other.get(&file).await.status, StatusCode::NOT_FOUND);
    let page = w.operator.get(&format!("/my/bills/{id}")).await.text;
    assert!(page.contains(&file) && page.contains("收据文件"), "{page}");

    // The bill page's form takes the file too (multipart); a fake one is explained there.
    let form = format!("/my/bills/{id}/payments");
    let page = w.opc.get(&format!("/my/bills/{id}")).await.text;
    assert!(
        page.contains("enctype=\"multipart/form-data\"") && page.contains("name=\"receipt\""),
        "{page}"
    );
    let day = today();
    let fields = [("amount", "1.00"), ("paid_on", day.as_str()), ("reference", "RC-2")];
    let bad = w
        .opc
        .post_multipart(&form, &fields, &[("receipt", "回单.png", "image/png", b"<svg/>")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let r = w
        .opc
        .post_multipart(&form, &fields, &[("receipt", "回单2.png", "image/png", png)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let pays = w.app.store.bill_payments(&id).await.unwrap();
    let p2 = pays.iter().find(|p| p.reference == "RC-2").unwrap();
    assert_eq!((p2.amount_fen, p2.receipt_name.as_deref()), (100, Some("回单2.png")));
}

/// Issue 21 item 2: the OPC's workbench counts the bill it owes with its due date (the month's
/// last day plus 30 days); the payee's counts the receipt to confirm once the OPC records paying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_counts_bills_to_pay_their_due_date_and_receipts_to_confirm() {
    let w = world().await;
    let (month, id, total) = issued(&w, "wb").await;
    let count = |html: &str, key: &str| -> i64 {
        let at = html
            .find(&format!(r#"id="todo-{key}""#))
            .unwrap_or_else(|| panic!("no {key} in {html}"));
        let n = html[at..].split(r#"class="todo-count" aria-hidden="true">"#).nth(1).unwrap();
        n.split('<').next().unwrap().parse().unwrap()
    };
    // What it owes: its issued bills with something outstanding (the operator's and the
    // publisher's of the seeded month).
    let owed = bills_of(&w.opc, "?side=payer")
        .await
        .iter()
        .filter(|b| b["status"] != "running" && b["outstanding_fen"].as_i64().unwrap() > 0)
        .count() as i64;
    assert!(owed >= 1);
    let page = w.opc.get("/workbench").await.text;
    assert_eq!(count(&page, "bills_to_pay"), owed, "{page}");
    let due = format!("{} 23:59", opchub_app::bills::due_on(&month).unwrap().format("%Y-%m-%d"));
    assert!(page.contains("对账单付款到期") && page.contains(&due), "{due}: {page}");
    assert_eq!(count(&w.operator.get("/workbench").await.text, "receipts_to_confirm"), 0);

    let r = pay(&w.opc, &id, total, &today(), "TX-WB-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        count(&w.opc.get("/workbench").await.text, "bills_to_pay"),
        owed - 1,
        "fully recorded"
    );
    assert_eq!(count(&w.operator.get("/workbench").await.text, "receipts_to_confirm"), 1);
}
