//! The usage ledger as people see it: an OPC's monthly statement page (totals, the daily
//! chart as inline SVG, events, CSV/XLSX downloads) that no other OPC can open, and the
//! public transparency pages — signed checkpoints with conservation counters, and an
//! inclusion proof verified on the server, which names tampering when it finds it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DAY_MS: i64 = 86_400_000;

#[allow(clippy::too_many_arguments)]
fn event(id: &str, subject: &str, counterparty: &str, kind: &str, unit: &str, quantity: i64, list: i64, charged: i64, at_ms: i64) -> Value {
    json!({
        "source_event_id": id, "kind": kind, "unit": unit, "subject": subject, "counterparty": counterparty,
        "quantity": quantity, "list_amount_fen": list, "charged_amount_fen": charged, "price_version": "p-2026-11",
        "occurred_at": chrono::DateTime::from_timestamp_millis(at_ms).unwrap().to_rfc3339(),
        "attributes": {"item": "a100"},
    })
}

/// A token event as the platform's gateway meters it (outside sources report only compute and
/// data, issue 18), appended straight to the ledger.
fn gateway_event(v: &Value) -> opchub_store::ledger::Item {
    let input: opchub_ledger::event::EventInput = serde_json::from_value(v.clone()).unwrap();
    let e = input
        .validate("gateway", opchub_ledger::event::Origin::Observed, None, opchub_store::now_ms())
        .unwrap();
    opchub_store::ledger::Item::Event(e)
}

/// A ledger source run by `owner` created through the platform operator's API; returns a client
/// holding its key.
async fn source(app: &TestApp, name: &str, owner: &str) -> Client {
    let (platform, _) = app.user(&format!("plat_{name}"), Role::PlatformOperator).await;
    // The compute item GPU events are priced by (M2.2): 3 and 2 fen per GPU-second, approved
    // and in force since 2020 (history, seeded directly).
    app.seed_prices(
        owner,
        "p-2026-11",
        "2020-01-01T00:00:00+08:00",
        json!([{"item": "a100", "unit": "gpu_hour", "name_zh": "A100算力", "name_en": "A100", "list_fen": 10_800, "opc_fen": 7_200}]),
    )
    .await;
    let r = platform
        .post_json(
            "/api/v1/ledger/sources",
            json!({"name": name, "owner_user_id": owner, "rate_per_minute": 600_000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Client::with_key(&app.base, r.json()["key"].as_str().unwrap())
}

/// The text of the element with `id` (up to its first child tag).
fn by_id(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].trim().to_string()
}

async fn raw_get(app: &TestApp, c: &Client, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .header("cookie", format!("opchub_session={}", c.cookie("opchub_session").unwrap()))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn statement_page_chart_downloads_and_verified_proofs() {
    let app = TestApp::start().await;
    let (_, owner) = app.user("owner_gpu_pages", Role::CommunityOperator).await;
    let (community, ws) = app.community_of(&owner, Zone::HexiArea, 2).await;
    let anon = app.client();
    let a = anon
        .post_json("/api/v1/registrations", registration("usagea", &uscc(80), "hexi_area", &ws[0]))
        .await
        .json();
    anon.post_json("/api/v1/registrations", registration("usageb", &uscc(81), "hexi_area", &ws[1]))
        .await;
    let opc_a = a["opc"]["id"].as_str().unwrap().to_string();

    // Three GPU events on up to three days of this month, and one token event today.
    let now = opchub_store::now_ms();
    let period = opchub_ledger::event::period_of(now);
    let times: Vec<i64> = (0..3)
        .map(|k| now - k * DAY_MS)
        .map(|t| if opchub_ledger::event::period_of(t) == period { t } else { now })
        .collect();
    let days: BTreeSet<String> = times.iter().map(|t| opchub_ledger::event::day_of(*t)).collect();
    let events: Vec<Value> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            event(
                &format!("g{i}"),
                &opc_a,
                &community,
                "compute.gpu_second",
                "gpu_second",
                60,
                180,
                120,
                *t,
            )
        })
        .collect();
    let gpu = source(&app, "gpu-pages", &owner).await;
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
    assert_eq!(r.json()["stored"], 3, "{}", r.text);
    app.store
        .ledger_append(vec![
            gateway_event(&event("t0", &opc_a, &community, "token.input", "token", 1000, 200, 150, now)),
            gateway_event(&event("other", "someone-else", &community, "token.input", "token", 5, 1, 1, now)),
        ])
        .await
        .unwrap();

    // The founder's statement page.
    let founder = app.client();
    founder.login("usagea", PASSWORD).await;
    let page = founder.get("/ledger/statement").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let html = &page.text;
    assert!(html.contains("href=\"/ledger/statement\""), "the navigation links the page");
    assert!(html.contains("href=\"/ledger/checkpoints\""), "the footer links the checkpoints");
    assert_eq!(by_id(html, "period"), period);
    assert!(html.contains("北京usagea智能科技有限公司"), "the party is named");
    assert!(
        html.contains("GPU算力") && html.contains("输入词元"),
        "kinds by their catalog names"
    );
    assert!(html.contains("180 GPU秒") && html.contains("1,000 词元"), "quantities with units");
    for money in ["¥5.40", "¥3.60", "¥1.80", "¥2.00", "¥1.50", "¥0.50"] {
        assert!(html.contains(money), "{money} in the totals");
    }
    assert_eq!(
        (
            by_id(html, "total-list"),
            by_id(html, "total-charged"),
            by_id(html, "total-discount")
        ),
        ("¥7.40".to_string(), "¥5.10".to_string(), "¥2.30".to_string())
    );
    // The chart: inline SVG, one bar per day with usage, each with a title.
    assert!(html.contains("<svg"));
    assert_eq!(html.matches("class=\"bar\"").count(), days.len(), "{days:?}");
    assert_eq!(html.matches("</title></rect>").count(), days.len());
    assert!(!html.contains("<script"), "no JavaScript");
    // Events (only the party's), each with its proof link; downloads keep the query.
    for leaf in 0..4 {
        assert!(html.contains(&format!("href=\"/ledger/proof?leaf_index={leaf}\"")));
    }
    assert!(!html.contains("href=\"/ledger/proof?leaf_index=4\""));
    assert!(html.contains(&format!(
        "/api/v1/ledger/statement.xlsx?party={opc_a}&amp;period={period}&amp;role=subject"
    )));
    assert!(html.contains("/api/v1/ledger/statement.csv?"));

    // In English: kinds, units and the chart's titles too.
    founder.get("/lang/en").await;
    let en = founder.get("/ledger/statement").await.text;
    assert!(en.contains("GPU compute") && en.contains("180 GPU-seconds") && en.contains("1,000 tokens"));
    assert!(en.contains(&format!("<title>{}", opchub_ledger::event::day_of(now))) && en.contains("charged (GPU compute 60 GPU-seconds"));
    founder.get("/lang/zh").await;

    // The XLSX download.
    let x = raw_get(&app, &founder, "/api/v1/ledger/statement.xlsx").await;
    assert_eq!(x.status(), StatusCode::OK);
    assert_eq!(
        x.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let cd = x.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.starts_with("attachment;") && cd.contains(".xlsx"), "{cd}");
    let bytes = x.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "a zip file");
    assert!(bytes.len() > 1024, "{} bytes", bytes.len());
    assert!(bytes.windows(15).any(|w| w == b"xl/workbook.xml"));

    // Another OPC cannot open the first one's statement (page or download).
    let other = app.client();
    other.login("usageb", PASSWORD).await;
    let r = other.get(&format!("/ledger/statement?party={opc_a}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("id=\"error-code\""), "an error page");
    assert!(!r.text.contains("¥5.10"));
    let r = raw_get(&app, &other, &format!("/api/v1/ledger/statement.xlsx?party={opc_a}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Its own statement is empty; a bad period is explained.
    let own = other.get("/ledger/statement").await;
    assert!(own.text.contains("id=\"no-usage\"") && own.text.matches("class=\"bar\"").count() == 0);
    let bad = other.get("/ledger/statement?period=2026-13").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Staff see any party.
    let (committee, _) = app.user("guanwei", Role::Committee).await;
    let r = committee.get(&format!("/ledger/statement?party={opc_a}&period={period}")).await;
    assert_eq!(by_id(&r.text, "total-charged"), "¥5.10");

    // Before any checkpoint, an event in the ledger is said to await its checkpoint (issue 21
    // item 8: an honest state, not a red "not verified" that reads like tampering).
    let r = anon.get("/ledger/proof?leaf_index=0").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("data-verified=\"pending\"") && !r.text.contains("data-verified=\"false\""),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("尚未包含在已签名的检查点中") && r.text.contains("最新检查点覆盖前 0 条，账本现有 5 条"),
        "{}",
        r.text
    );

    // After a checkpoint: verified on the server, with the path and the signed note.
    let cp = app.store.ledger_checkpoint(&app.key, "opchub.test/ledger", "test").await.unwrap();
    assert_eq!(cp.tree_size, 5);
    let r = anon.get("/ledger/proof?leaf_index=0").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("data-verified=\"true\""), "{}", r.text);
    assert!(r.text.contains("已验证：该事件包含在签名检查点中"));
    assert_eq!(r.text.matches("class=\"check-ok\"").count(), 4);
    assert_eq!(by_id(&r.text, "leaf-hash"), app.store.ledger_event(0).await.unwrap().leaf_hash);
    assert_eq!(by_id(&r.text, "root"), cp.root);
    let text = unescape(&r.text);
    assert!(text.contains("<pre class=\"wrap-anywhere\" id=\"checkpoint-note\">opchub.test/ledger\n5\n"));
    assert!(text.contains(&app.key.verifier_key()));
    let en = app.client();
    en.get("/lang/en").await;
    let r = en.get("/ledger/proof?leaf_index=3&tree_size=5").await;
    assert!(r.text.contains("Verified: this event is included in the signed checkpoint"));

    // An event appended after the checkpoint awaits the next one, in English too.
    app.store
        .ledger_append(vec![gateway_event(&event(
            "t1",
            &opc_a,
            &community,
            "token.input",
            "token",
            10,
            2,
            1,
            now,
        ))])
        .await
        .unwrap();
    let r = en.get("/ledger/proof?leaf_index=5").await;
    assert!(r.text.contains("data-verified=\"pending\""), "{}", r.text);
    assert!(
        r.text
            .contains("the latest checkpoint covers the first 5 of the ledger&#x27;s 6 events")
            || r.text.contains("the latest checkpoint covers the first 5 of the ledger's 6 events"),
        "{}",
        r.text
    );

    // Failures are named: no checkpoint at that size, a leaf outside the tree.
    let r = anon.get("/ledger/proof?leaf_index=0&tree_size=4").await;
    assert!(r.text.contains("data-verified=\"false\"") && r.text.contains("该树大小没有签名检查点"));
    let r = anon.get("/ledger/proof?leaf_index=99").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("data-verified=\"false\""));
    let r = anon.get("/ledger/proof?leaf_index=abc").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = anon.get("/ledger/proof").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("id=\"proof-form\"") && !r.text.contains("id=\"verdict\""));

    // The public checkpoint list: the root (shortened, in full in its title), the key and
    // the conservation counters.
    let r = anon.get("/ledger/checkpoints").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains(&format!("title=\"{}\"", cp.root)));
    assert!(r.text.contains(&format!(">{}…<", &cp.root[..16])));
    assert!(unescape(&r.text).contains(&app.key.verifier_key()));
    assert!(r.text.contains("gpu-pages"));
    assert!(r.text.contains("收到 3 = 入账 3 + 重复 0 + 拒收 0"), "{}", r.text);
    assert!(r.text.contains("✓ 守恒"));

    // A changed event no longer matches its leaf: the page says so.
    sqlx::query("UPDATE ledger_events SET quantity = quantity + 1 WHERE leaf_index = 1")
        .execute(app.store.pool())
        .await
        .unwrap();
    let r = anon.get("/ledger/proof?leaf_index=1").await;
    assert!(r.text.contains("data-verified=\"false\""));
    assert!(r.text.contains("事件内容与叶子哈希不符"));
    assert!(anon.get("/ledger/proof?leaf_index=2").await.text.contains("data-verified=\"true\""));
}
