//! Compute and data (M2.2; issue 4 items 2 and 6, issue 3 "amounts that don't match the price
//! table"): reported GPU and data events priced per event against the source operator's
//! versioned item table (match, mismatch, unknown item, not yet in force, other version), and
//! datasets downloaded with an OPC's API key — full, one range, 416, bad and revoked keys, a
//! per-dataset price paid exactly once, a client that goes away halfway charged only for the
//! bytes it was sent — with exact ledger totals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_gateway::items::amount;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// A compute or data event as a GPU cluster reports it.
#[allow(clippy::too_many_arguments)]
fn reported(id: &str, kind: &str, item: Option<&str>, quantity: i64, list: i64, charged: i64, version: &str, at: &str) -> Value {
    let unit = if kind == "data.byte" { "byte" } else { "gpu_second" };
    let mut e = json!({
        "source_event_id": id, "kind": kind, "unit": unit, "subject": "opc-x", "counterparty": "community-x",
        "quantity": quantity, "list_amount_fen": list, "charged_amount_fen": charged, "price_version": version,
        "occurred_at": at, "attributes": {"cluster": "c1"}
    });
    if let Some(i) = item {
        e["attributes"]["item"] = json!(i);
    }
    e
}

fn item(code: &str, unit: &str, list: i64, opc: i64) -> Value {
    json!({"item": code, "unit": unit, "name_zh": format!("{code}条目"), "name_en": code, "list_fen": list, "opc_fen": opc})
}

async fn publish(op: &Client, version: &str, from: &str, items: Vec<Value>) -> Value {
    let r = op
        .post_json(
            "/api/v1/gateway/prices",
            json!({"version": version, "effective_from": from, "items": items}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn reported_compute_and_data_events_are_priced_one_by_one() {
    let app = TestApp::start().await;
    let (op, op_id) = app.user("gpu_operator", Role::CommunityOperator).await;
    // The OPC the cluster serves, in the operator's community (issue 18: a source reports only
    // for the parties it serves).
    let (community, ws) = app.community_of(&op_id, Zone::HexiArea, 1).await;
    let opc = app.opc_at("gpu_user", 4_242, &ws[0]).await;
    // Bad tables are refused whole.
    for bad in [
        json!([item("a100", "gpu_minute", 100, 50)]),
        json!([item("a100", "gpu_hour", 100, 150)]),
        json!([item("a 100", "gpu_hour", 100, 50)]),
        json!([item("a100", "gpu_hour", 100, 50), item("a100", "gb", 1, 1)]),
    ] {
        let r = op
            .post_json("/api/v1/gateway/prices", json!({"version": "bad", "items": bad}))
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["field_codes"]["items"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_items"))
        );
    }
    // v1 from 2020; v2 re-prices a100 from 2024 (both history, approved); h100 only from
    // tomorrow, published and approved now.
    app.seed_prices(
        &op_id,
        "items-v1",
        "2020-01-01T00:00:00+08:00",
        json!([
            item("a100", "gpu_hour", 1_000, 600),
            item("traffic", "gb", 50, 30),
            item("corpus", "dataset", 5_000, 3_000),
        ]),
    )
    .await;
    app.seed_prices(
        &op_id,
        "items-v2",
        "2024-01-01T00:00:00+08:00",
        json!([item("a100", "gpu_hour", 3_600, 1_800)]),
    )
    .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let t = publish(&op, "items-v3", &tomorrow, vec![item("h100", "gpu_hour", 9_000, 6_000)]).await;
    assert_eq!((t["items"].as_array().unwrap().len(), t["status"].as_str()), (1, Some("pending")));
    let again = op
        .post_json(
            "/api/v1/gateway/prices",
            json!({"version": "items-v1", "items": [item("x", "gb", 1, 1)]}),
        )
        .await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "price_version_exists".into()));

    let (platform, _) = app.user("gpu_platform", Role::PlatformOperator).await;
    approve_prices(&platform, &op_id, "items-v3").await;
    let r = platform
        .post_json("/api/v1/ledger/sources", json!({"name": "cluster-x", "owner_user_id": op_id}))
        .await;
    let gpu = Client::with_key(&app.base, r.json()["key"].as_str().unwrap());

    let old = "2023-06-01T10:00:00+08:00";
    let now = chrono::Utc::now().to_rfc3339();
    let c = "compute.gpu_second";
    let mut events = vec![
        // 9 s at ¥10/h list, ¥6/h OPC (v1): 2.5 → 3 fen and 1.5 → 2 fen (half up).
        reported("v1-ok", c, Some("a100"), 9, 3, 2, "items-v1", old),
        // 1 h at v2's ¥36/¥18.
        reported("v2-ok", c, Some("a100"), 3_600, 3_600, 1_800, "items-v2", &now),
        reported("list-off", c, Some("a100"), 3_600, 3_601, 1_800, "items-v2", &now),
        // Rounded down instead of half up.
        reported("charged-off", c, Some("a100"), 9, 3, 1, "items-v1", old),
        // Priced right, but by the version no longer in force.
        reported("old-version", c, Some("a100"), 3_600, 1_000, 600, "items-v1", &now),
        reported("unknown", c, Some("z9"), 60, 1, 1, "items-v1", &now),
        reported("no-item", c, None, 60, 1, 1, "items-v1", &now),
        reported("not-yet", c, Some("h100"), 60, 150, 100, "items-v3", &now),
        reported("wrong-kind", c, Some("traffic"), 60, 0, 0, "items-v1", &now),
        // 1.5 GB at 50/30 fen per GB.
        reported("gb-ok", "data.byte", Some("traffic"), 1_500_000_000, 75, 45, "items-v1", &now),
        // One event of a per-dataset item is one whole dataset.
        reported("dataset-ok", "data.byte", Some("corpus"), 123_456, 5_000, 3_000, "items-v1", &now),
        reported("dataset-off", "data.byte", Some("corpus"), 123_456, 2_500, 1_500, "items-v1", &now),
    ];
    for e in &mut events {
        e["subject"] = json!(opc);
        e["counterparty"] = json!(community);
    }
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let res = r.json();
    let got: Vec<(String, String)> = res["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["error"]["code"].as_str().unwrap_or("stored").to_string(),
                x["error"]["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("stored", ""),
        ("stored", ""),
        ("amount_mismatch", "list_amount_fen"),
        ("amount_mismatch", "charged_amount_fen"),
        ("price_version_mismatch", "price_version"),
        ("unknown_price_item", "attributes.item"),
        ("price_item_required", "attributes.item"),
        ("price_not_effective", "occurred_at"),
        ("item_kind_mismatch", "attributes.item"),
        ("stored", ""),
        ("stored", ""),
        ("amount_mismatch", "list_amount_fen"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want);
    assert!(res["results"][2]["error"]["message"].as_str().unwrap().contains("价格表"));
    assert_eq!((res["stored"].as_i64(), res["rejected"].as_i64()), (Some(4), Some(8)));

    // Exactly the valid events are stored, each with the price version it was priced by.
    assert_eq!(app.store.ledger_size().await.unwrap(), 4);
    let stored: Vec<_> = futures_events(&app, 4).await;
    let v: Vec<(&str, i64, i64, &str)> = stored
        .iter()
        .map(|e| (e.source_event_id.as_str(), e.list_fen, e.charged_fen, e.price_version.as_str()))
        .collect();
    assert_eq!(
        v,
        [
            ("v1-ok", 3, 2, "items-v1"),
            ("v2-ok", 3_600, 1_800, "items-v2"),
            ("gb-ok", 75, 45, "items-v1"),
            ("dataset-ok", 5_000, 3_000, "items-v1")
        ]
    );
    let c = &app.store.ledger_counters().await.unwrap()["cluster-x"];
    assert_eq!((c.received, c.stored, c.duplicates, c.rejected), (12, 4, 0, 8));
    // This month's totals for the subject: exact sums.
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let totals = app.store.usage_totals(&opc, false, &period).await.unwrap();
    let of = |k: &str| {
        totals
            .iter()
            .find(|t| t.kind == k)
            .map(|t| (t.quantity, t.list_fen, t.charged_fen))
            .unwrap()
    };
    assert_eq!(of("compute.gpu_second"), (3_600, 3_600, 1_800));
    assert_eq!(of("data.byte"), (1_500_123_456, 5_075, 3_045));
    // The same batch again: the stored ones are duplicates, the refused ones refused again.
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await.json();
    assert_eq!(
        (r["stored"].as_i64(), r["duplicates"].as_i64(), r["rejected"].as_i64()),
        (Some(0), Some(4), Some(8))
    );
    assert!(app
        .store
        .ledger_verify(&app.key.verifier_key(), &|_| {})
        .await
        .unwrap()
        .problems
        .is_empty());
}

async fn futures_events(app: &TestApp, n: i64) -> Vec<opchub_store::ledger::StoredEvent> {
    let mut out = vec![];
    for i in 0..n {
        out.push(app.store.ledger_event(i).await.unwrap());
    }
    out
}

// ---------------------------------------------------------------- datasets

struct Setup {
    app: TestApp,
    op: Client,
    op_id: String,
    /// Holds the OPC's API key.
    opc: Client,
    opc_id: String,
    key_id: String,
    browser: Client,
}

/// An operator with data items (¥10,000 list and ¥6,000 OPC price per GB: 1 and 0.6 fen per
/// kB; a whole-dataset item at ¥50/¥30), and an OPC with an API key.
async fn setup() -> Setup {
    let app = TestApp::start().await;
    let (op, op_id) = app.user("data_operator", Role::CommunityOperator).await;
    app.seed_prices(
        &op_id,
        "data-v1",
        "2020-01-01T00:00:00+08:00",
        json!([item("traffic", "gb", 1_000_000, 600_000), item("corpus", "dataset", 5_000, 3_000)]),
    )
    .await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration("dataopc", &uscc(77), "hexi_area", &ws[0]))
        .await
        .json();
    let browser = app.client();
    browser.login("dataopc", PASSWORD).await;
    let k = browser.post_json("/api/v1/me/api-keys", json!({"name": "data"})).await.json();
    Setup {
        opc: Client::with_key(&app.base, k["secret"].as_str().unwrap()),
        key_id: k["key"]["id"].as_str().unwrap().to_string(),
        opc_id: reg["opc"]["id"].as_str().unwrap().to_string(),
        app,
        op,
        op_id,
        browser,
    }
}

fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// A published dataset priced by `item`, with `bytes` as its file; returns its id.
async fn dataset(s: &Setup, name: &str, item: &str, bytes: Vec<u8>) -> String {
    let r =
        s.op.post_json(
            "/api/v1/datasets",
            json!({"name_zh": format!("{name}数据集"), "name_en": name, "description": "测试", "item": item}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let size = bytes.len();
    let r =
        s.op.send(
            Method::PUT,
            &format!("/api/v1/datasets/{id}/file?file_name={name}.bin"),
            Some(Body::Raw("application/octet-stream", bytes)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = r.json();
    assert_eq!(
        (
            d["sha256"].as_str(),
            d["size_bytes"].as_u64(),
            d["status"].as_str(),
            d["version"].as_i64()
        ),
        (Some(sha.as_str()), Some(size as u64), Some("published"), Some(1))
    );
    id
}

async fn get_range(c: &Client, path: &str, range: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let http = reqwest::Client::new();
    let mut req = http.get(format!("{}{path}", c.base));
    if let Some(k) = &c.bearer {
        req = req.bearer_auth(k);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Waits until `n` downloads of the dataset are recorded (metering runs when the body ends).
async fn downloads(s: &Setup, id: &str, n: usize) -> Vec<opchub_store::datasets::Download> {
    for _ in 0..300 {
        let d = s.app.store.downloads(id, None, 1000).await.unwrap();
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} downloads were not recorded");
}

/// (quantity, list, charged) of `data.byte` booked to the OPC this month.
async fn data_totals(s: &Setup) -> (i64, i64, i64) {
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let totals = s.app.store.usage_totals(&s.opc_id, false, &period).await.unwrap();
    totals
        .iter()
        .find(|t| t.kind == "data.byte")
        .map(|t| (t.quantity, t.list_fen, t.charged_fen))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_are_downloaded_with_an_opc_key_and_metered_by_bytes() {
    let s = setup().await;
    let bytes = content(1_000_000);
    let id = dataset(&s, "traffic", "traffic", bytes.clone()).await;
    let path = format!("/api/v1/datasets/{id}/download");

    // Listed with its price in force for the OPC.
    let list = s.opc.get("/api/v1/datasets").await.json();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(
        (list[0]["price"]["opc_fen"].as_i64(), list[0]["price"]["version"].as_str()),
        (Some(600_000), Some("data-v1"))
    );
    assert_eq!(list[0]["download_path"], path.as_str());

    // Full, then one range, then the last 1,500 bytes.
    let (st, h, body) = get_range(&s.opc, &path, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body == bytes, "the file arrives unchanged");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], "1000000");
    assert!(h["etag"]
        .to_str()
        .unwrap()
        .contains(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))));
    let (st, h, body) = get_range(&s.opc, &path, Some("bytes=0-499999")).await;
    assert_eq!(
        (st, h["content-range"].to_str().unwrap()),
        (StatusCode::PARTIAL_CONTENT, "bytes 0-499999/1000000")
    );
    assert!(body == bytes[..500_000]);
    let (st, h, body) = get_range(&s.opc, &path, Some("bytes=-1500")).await;
    assert_eq!(
        (st, h["content-range"].to_str().unwrap()),
        (StatusCode::PARTIAL_CONTENT, "bytes 998500-999999/1000000")
    );
    assert!(body == bytes[998_500..]);

    // Unsatisfiable ranges: 416 with the size; several ranges are not served either.
    for bad in ["bytes=1000000-", "bytes=5-2", "bytes=0-1,5-6"] {
        let (st, h, body) = get_range(&s.opc, &path, Some(bad)).await;
        assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(h["content-range"], "bytes */1000000");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "range_not_satisfiable");
    }
    // Keys: a wrong one, a browser session without a key, and a revoked key: 401, nothing sent.
    let (st, _, body) = get_range(&Client::with_key(&s.app.base, "opk_not_a_key"), &path, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"], "invalid_api_key");
    let r = s.browser.get(&path).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "api_key_required".into()));
    let k2 = s
        .browser
        .post_json("/api/v1/me/api-keys", json!({"name": "short-lived"}))
        .await
        .json();
    let revoked = Client::with_key(&s.app.base, k2["secret"].as_str().unwrap());
    assert_eq!(get_range(&revoked, &path, Some("bytes=0-9")).await.0, StatusCode::PARTIAL_CONTENT);
    let r = s
        .browser
        .send(
            Method::DELETE,
            &format!("/api/v1/me/api-keys/{}", k2["key"]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let (st, _, _) = get_range(&revoked, &path, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Other roles may not download; an unknown dataset is not found.
    let r = s.op.get(&path).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get_range(&s.opc, "/api/v1/datasets/nope/download", None).await.0,
        StatusCode::NOT_FOUND
    );

    // Four metered downloads (the 10-byte one with the later revoked key); exact amounts:
    // 10⁶ B = 1,000 / 600 fen; 5·10⁵ B = 500 / 300; 1,500 B = 1.5 → 2 / 0.9 → 1; 10 B = 0 / 0.
    let d = downloads(&s, &id, 4).await;
    let mut sent: Vec<(i64, i64, i64, &str)> = d
        .iter()
        .map(|x| (x.bytes_sent, x.list_fen, x.charged_fen, x.outcome.as_str()))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            (10, 0, 0, "complete"),
            (1_500, 2, 1, "complete"),
            (500_000, 500, 300, "complete"),
            (1_000_000, 1_000, 600, "complete")
        ]
    );
    assert_eq!(data_totals(&s).await, (1_501_510, 1_502, 901));
    // Issue 17 item 6: the 10-byte download is 0 fen rounded, but the event keeps it exactly
    // (10 B × ¥10,000/GB = 0.01 fen listed, 0.006 charged), so many small ranges add up.
    let small = d.iter().find(|x| x.bytes_sent == 10).unwrap();
    let ev = s.app.store.ledger_event_by_key("datasets", &small.id).await.unwrap();
    assert_eq!(
        (ev.list_fen, ev.list_sub_micro, ev.charged_fen, ev.charged_sub_micro),
        (0, 10_000, 0, 6_000)
    );
    // Each download is one event of the platform's `datasets` source, naming item, dataset and range.
    let ev = s.app.store.ledger_event_by_key("datasets", &d[0].id).await.unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.origin.as_str(), ev.counterparty.as_str()),
        ("data.byte", "observed", s.op_id.as_str())
    );
    assert_eq!(ev.attributes["item"], "traffic");
    assert_eq!(ev.price_version, "data-v1");
    // The OPC sees its own downloads; another operator does not see the dataset's.
    let mine = s.opc.get(&format!("/api/v1/datasets/{id}/downloads")).await.json();
    assert_eq!(mine.as_array().unwrap().len(), 4);
    let (other_op, _) = s.app.user("other_operator", Role::CommunityOperator).await;
    assert_eq!(
        other_op.get(&format!("/api/v1/datasets/{id}/downloads")).await.status,
        StatusCode::NOT_FOUND
    );

    // A budget too small for a whole download: refused before a byte is sent, nothing charged.
    let r = s
        .browser
        .put_json(
            &format!("/api/v1/me/api-keys/{}/limits", s.key_id),
            json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (st, _, body) = get_range(&s.opc, &path, None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"], "budget_exceeded");
    // A range that fits is served and settled to its cost.
    assert_eq!(get_range(&s.opc, &path, Some("bytes=0-99999")).await.0, StatusCode::PARTIAL_CONTENT);
    downloads(&s, &id, 5).await;
    let month = opchub_ledger::event::period_of(opchub_store::now_ms());
    assert_eq!(s.app.store.budget_use(&s.key_id, &month).await.unwrap(), (60, 0));
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
async fn a_dataset_priced_per_dataset_is_paid_once_per_version() {
    let s = setup().await;
    let bytes = content(1_000);
    let id = dataset(&s, "corpus", "corpus", bytes.clone()).await;
    let path = format!("/api/v1/datasets/{id}/download");
    // Half, then the whole file, then the whole file again.
    assert_eq!(get_range(&s.opc, &path, Some("bytes=0-499")).await.0, StatusCode::PARTIAL_CONTENT);
    downloads(&s, &id, 1).await;
    assert_eq!(get_range(&s.opc, &path, None).await.2, bytes);
    downloads(&s, &id, 2).await;
    assert_eq!(get_range(&s.opc, &path, None).await.2, bytes);
    let d = downloads(&s, &id, 3).await;
    let mut charged: Vec<(i64, i64)> = d.iter().map(|x| (x.list_fen, x.charged_fen)).collect();
    charged.sort();
    // 500 B = half of ¥50/¥30; the full download pays the other half; the third nothing.
    assert_eq!(charged, [(0, 0), (2_500, 1_500), (2_500, 1_500)]);
    assert_eq!(data_totals(&s).await, (2_500, 5_000, 3_000));
    // The OPC's gateway page counts the data discount in what it saved this month (M2.2).
    let page = s.browser.get("/gateway").await;
    let saved = format!("id=\"saved\">{}<", opchub_domain::Money::from_fen(2_000));
    assert!(page.text.contains(&saved), "{saved}");
    // A new file is a new version: paid again.
    let r =
        s.op.send(
            Method::PUT,
            &format!("/api/v1/datasets/{id}/file"),
            Some(Body::Raw("text/csv", content(2_000))),
        )
        .await;
    assert_eq!(r.json()["version"], 2);
    assert_eq!(get_range(&s.opc, &path, None).await.2.len(), 2_000);
    downloads(&s, &id, 4).await;
    assert_eq!(data_totals(&s).await, (4_500, 10_000, 6_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_halfway_pays_for_the_bytes_it_was_sent() {
    let s = setup().await;
    // Larger than every buffer between the server and the client on loopback.
    let size = 48 * 1024 * 1024;
    let id = dataset(&s, "big", "traffic", content(size)).await;
    let http = reqwest::Client::new();
    let mut resp = http
        .get(format!("{}/api/v1/datasets/{id}/download", s.app.base))
        .bearer_auth(s.opc.bearer.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut received = 0usize;
    while received < 1024 * 1024 {
        received += resp.chunk().await.unwrap().unwrap().len();
    }
    drop(resp);
    drop(http);
    let d = downloads(&s, &id, 1).await;
    let d = &d[0];
    assert_eq!(d.outcome, "interrupted");
    assert!(
        d.bytes_sent >= received as i64,
        "at least what arrived: {} < {received}",
        d.bytes_sent
    );
    assert!(d.bytes_sent < size as i64 / 2, "not the whole file: {} of {size}", d.bytes_sent);
    // The ledger holds exactly the bytes sent, priced by the rule.
    let ev = s.app.store.ledger_event_by_key("datasets", &d.id).await.unwrap();
    assert_eq!(ev.quantity, d.bytes_sent);
    assert_eq!(ev.attributes["outcome"], "interrupted");
    assert_eq!(ev.list_fen, amount("gb", d.bytes_sent, 1_000_000).unwrap());
    assert_eq!(ev.charged_fen, amount("gb", d.bytes_sent, 600_000).unwrap());
    assert_eq!(data_totals(&s).await, (d.bytes_sent, ev.list_fen, ev.charged_fen));
}

#[tokio::test]
async fn pages_show_items_datasets_and_the_download_command() {
    let s = setup().await;
    let id = dataset(&s, "pagedata", "traffic", content(100)).await;
    // The operator publishes a compute item through the page form.
    let r =
        s.op.post_form(
            "/gateway/items",
            &[
                ("version", "page-v1"),
                ("effective_from", ""),
                ("items", "h100 gpu_hour 2,000 1500 H100算力 H100 hour"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let bad =
        s.op.post_form("/gateway/items", &[("version", "page-v2"), ("items", "h100 gpu_hour x 1 名")])
            .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("第 1 行"));
    // Priced once the platform operator approved it (issue 18).
    let (platform, _) = s.app.user("data_platform", Role::PlatformOperator).await;
    approve_prices(&platform, &s.op_id, "page-v1").await;
    let page = s.op.get("/gateway/datasets").await;
    assert_eq!(page.status, StatusCode::OK);
    for want in [
        "data-item=\"h100\"",
        "data-item=\"traffic\"",
        "data-item=\"corpus\"",
        "page-v1",
        "id=\"dataset-form\"",
    ] {
        assert!(page.text.contains(want), "{want}");
    }
    // The dataset form with its file.
    let r =
        s.op.post_multipart(
            "/gateway/datasets",
            &[("name_zh", "页面数据"), ("name_en", "Page data"), ("item", "corpus")],
            &[("file", "page.csv", "text/csv", b"a,b\n1,2\n")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r =
        s.op.post_multipart(
            "/gateway/datasets",
            &[("name_zh", "坏"), ("item", "h100")],
            &[("file", "x.bin", "application/octet-stream", b"x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The OPC sees both datasets with prices and a command that downloads with its key.
    let page = s.browser.get("/gateway/datasets").await;
    assert_eq!(page.status, StatusCode::OK);
    // Minijinja escapes `/` and quotes in text.
    let html = page.text.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&#x27;", "'");
    assert!(html.contains("页面数据") && html.contains("pagedata数据集"));
    let command = format!(
        "curl -fL -C - -H \"Authorization: Bearer opk_YOUR_KEY\" -o 'pagedata.bin' {}/api/v1/datasets/{id}/download",
        s.app.base
    );
    assert!(html.contains(&command), "{html}");
    assert!(html.contains("6,000.00"), "the OPC price per GB");
}
