//! The usage ledger through its API (M2.2–M2.4 pay from these statistics; F2 forbids
//! tampering): exactly-once ingestion with receipts, per-event refusals, rate limits,
//! proofs against signed checkpoints, tamper detection by `verify`, periods, corrections,
//! statements, and one consistent log under concurrent writers and replicas.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_ledger::checkpoint::{verify_bytes, verify_checkpoint};
use opchub_ledger::merkle::{verify_consistency, verify_inclusion, Hash};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// A compute event of an OPC served by the source's owner (a source reports only for the OPCs
/// of its owner's communities, issue 18).
fn event_of(p: &Served, id: &str, quantity: i64) -> Value {
    json!({
        "source_event_id": id, "kind": "compute.gpu_second", "unit": "gpu_second",
        "subject": p.opc, "counterparty": p.community, "quantity": quantity,
        "list_amount_fen": quantity * 3, "charged_amount_fen": quantity * 2, "price_version": "gpu-2026-11",
        "occurred_at": chrono::Utc::now().to_rfc3339(), "attributes": {"cluster": "A100-01", "item": "a100"}
    })
}

/// The owner's compute item the events are priced by (M2.2): ¥108 list and ¥72 OPC price per
/// GPU-hour — 3 and 2 fen per GPU-second exactly; approved, in force since 2020 (seeded as
/// history: the API never back-dates a table).
async fn gpu_prices(app: &TestApp, owner: &str) {
    app.seed_prices(
        owner,
        "gpu-2026-11",
        "2020-01-01T00:00:00+08:00",
        json!([{"item": "a100", "unit": "gpu_hour", "name_zh": "A100算力", "name_en": "A100", "list_fen": 10_800, "opc_fen": 7_200}]),
    )
    .await;
}

/// The parties a source serves: an OPC in its owner's community.
#[derive(Clone)]
struct Served {
    opc: String,
    community: String,
}

/// A ledger source run by a new community operator with a community and an OPC in it; returns
/// a client holding its key and the parties it serves.
async fn source(app: &TestApp, name: &str, rate: i64) -> (Client, Served) {
    let (_, owner) = app.user(&format!("owner_{name}"), Role::CommunityOperator).await;
    let (community, ws) = app.community_of(&owner, Zone::HexiArea, 1).await;
    let n = name.bytes().fold(100u32, |a, b| a * 7 + u32::from(b)) % 100_000;
    let opc = app.opc_at(&format!("opc_{name}"), n, &ws[0]).await;
    (source_for(app, name, rate, &owner).await, Served { opc, community })
}

/// A ledger source run by the given community operator.
async fn source_for(app: &TestApp, name: &str, rate: i64, owner: &str) -> Client {
    let (platform, _) = app.user(&format!("plat_{name}"), Role::PlatformOperator).await;
    gpu_prices(app, owner).await;
    let r = platform
        .post_json(
            "/api/v1/ledger/sources",
            json!({"name": name, "owner_user_id": owner, "rate_per_minute": rate}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert!(
        !platform.get("/api/v1/ledger/sources").await.text.contains(&key),
        "the key is shown once"
    );
    Client::with_key(&app.base, &key)
}

async fn verify(app: &TestApp) -> Vec<String> {
    app.store.ledger_verify(&app.key.verifier_key(), &|_| {}).await.unwrap().problems
}

#[tokio::test]
async fn events_are_stored_exactly_once_with_signed_receipts() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu1", 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    let batch = json!({"events": [event("job-1", 3600), event("job-2", 120), event("job-3", 7)]});
    let r = gpu.post_json("/api/v1/ledger/events", batch.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let first = r.json();
    assert_eq!((first["stored"].as_i64(), first["duplicates"].as_i64()), (Some(3), Some(0)));
    let leaves: Vec<i64> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["receipt"]["leaf_index"].as_i64().unwrap())
        .collect();
    assert_eq!(leaves, [0, 1, 2]);

    // The receipts are signed by the key published at the well-known URL.
    let vkey = app.client().get("/.well-known/opchub-ledger-key").await.text.trim().to_string();
    let receipts: Vec<opchub_store::ledger::Receipt> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| serde_json::from_value(x["receipt"].clone()).unwrap())
        .collect();
    let refs: Vec<&opchub_store::ledger::Receipt> = receipts.iter().collect();
    let msg = opchub_store::ledger::receipts_message(&refs);
    let sig = first["signature"].as_str().unwrap();
    verify_bytes(&vkey, msg.as_bytes(), sig).unwrap();
    let mut forged = receipts.clone();
    forged[1].leaf_index = 7;
    let forged_refs: Vec<&opchub_store::ledger::Receipt> = forged.iter().collect();
    assert!(verify_bytes(&vkey, opchub_store::ledger::receipts_message(&forged_refs).as_bytes(), sig).is_err());

    // The same events again: duplicates with the very same receipts; nothing new stored.
    let again = gpu.post_json("/api/v1/ledger/events", batch).await.json();
    assert_eq!((again["stored"].as_i64(), again["duplicates"].as_i64()), (Some(0), Some(3)));
    for i in 0..3 {
        assert_eq!(again["results"][i]["receipt"], first["results"][i]["receipt"]);
        assert_eq!(again["results"][i]["status"], "duplicate");
    }
    assert_eq!(again["signature"], first["signature"], "the same receipts, the same signature");
    // The same key with different content: refused as a conflict.
    let conflict = gpu
        .post_json("/api/v1/ledger/events", json!({"events": [event("job-1", 3601)]}))
        .await
        .json();
    assert_eq!(conflict["results"][0]["error"]["code"], "event_conflict");
    assert_eq!(app.store.ledger_size().await.unwrap(), 3);
    assert_eq!(
        app.store.ledger_event(0).await.unwrap().quantity,
        3600,
        "the stored event is unchanged"
    );

    // Conservation: received = stored + duplicates + rejected.
    let c = &app.store.ledger_counters().await.unwrap()["gpu1"];
    assert_eq!((c.received, c.stored, c.duplicates, c.rejected), (7, 3, 3, 1));
    assert!(verify(&app).await.is_empty());
}

#[tokio::test]
async fn bad_events_are_refused_one_by_one_and_nothing_partial_is_written() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu2", 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    let mut negative = event("neg", 10);
    negative["quantity"] = json!(-5);
    let mut overflow = event("big", 10);
    overflow["quantity"] = json!(i64::MAX);
    let mut unknown = event("kind", 10);
    unknown["kind"] = json!("compute.quantum_second");
    let mut wrong_unit = event("unit", 10);
    wrong_unit["unit"] = json!("byte");
    let mut future = event("future", 10);
    future["occurred_at"] = json!("2099-01-01T00:00:00Z");
    let mut attrs = event("attrs", 10);
    attrs["attributes"] = json!({"blob": "x".repeat(4096)});
    let mut above_list = event("price", 10);
    above_list["charged_amount_fen"] = json!(31);
    let not_an_object = json!("hello");
    let events = vec![
        event("good", 10),
        negative,
        overflow,
        unknown,
        wrong_unit,
        future,
        attrs,
        above_list,
        not_an_object,
    ];
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["error"]["code"].as_str().unwrap_or("stored").to_string())
        .collect();
    assert_eq!(
        codes,
        [
            "stored",
            "negative_quantity",
            "quantity_out_of_range",
            "unknown_kind",
            "unit_mismatch",
            "occurred_in_future",
            "attributes_too_large",
            "charged_above_list",
            "invalid_event"
        ]
    );
    assert!(
        !r.json()["results"][1]["error"]["message"].as_str().unwrap().is_ascii(),
        "messages are in Chinese by default"
    );
    assert_eq!(app.store.ledger_size().await.unwrap(), 1);
    let c = &app.store.ledger_counters().await.unwrap()["gpu2"];
    assert_eq!((c.received, c.stored, c.rejected), (9, 1, 8));

    // A batch of 1,001 is refused whole.
    let many: Vec<Value> = (0..1001).map(|i| event(&format!("m{i}"), 1)).collect();
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": many })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field_codes"]["events"], "batch_size");
    assert_eq!(app.store.ledger_size().await.unwrap(), 1);

    // A wrong source key → 401; a user's API key cannot submit; a source key can do nothing else.
    let r = Client::with_key(&app.base, "ols_000000000000000000000000000000000000000000000000")
        .post_json("/api/v1/ledger/events", json!({"events": [event("x", 1)]}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_source_key".to_string()));
    let (op, _) = app.user("op_userkey", Role::CommunityOperator).await;
    let k = op.post_json("/api/v1/me/api-keys", json!({"name": "k"})).await.json();
    let r = Client::with_key(&app.base, k["secret"].as_str().unwrap())
        .post_json("/api/v1/ledger/events", json!({"events": [event("x", 1)]}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "source_key_required".to_string()));
    assert_eq!(gpu.get("/api/v1/me").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.ledger_size().await.unwrap(), 1);
}

#[tokio::test]
async fn each_source_is_rate_limited() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu3", 10).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    let eight: Vec<Value> = (0..8).map(|i| event(&format!("r{i}"), 1)).collect();
    assert_eq!(
        gpu.post_json("/api/v1/ledger/events", json!({ "events": eight })).await.status,
        StatusCode::OK
    );
    let five: Vec<Value> = (8..13).map(|i| event(&format!("r{i}"), 1)).collect();
    let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": five })).await;
    assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_string()));
    assert_eq!(app.store.ledger_size().await.unwrap(), 8);
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_against_signed_checkpoints() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu4", 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    for b in 0..4 {
        let events: Vec<Value> = (0..10).map(|i| event(&format!("p{b}-{i}"), 1 + i)).collect();
        let r = gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
        assert_eq!(r.json()["stored"], 10, "{}", r.text);
    }
    let (committee, _) = app.user("guanwei", Role::Committee).await;
    let cp1 = app.store.ledger_checkpoint(&app.key, "opchub.test/ledger", "test").await.unwrap();
    let more: Vec<Value> = (0..23).map(|i| event(&format!("q{i}"), 5)).collect();
    gpu.post_json("/api/v1/ledger/events", json!({ "events": more })).await;
    let cp2 = app.store.ledger_checkpoint(&app.key, "opchub.test/ledger", "test").await.unwrap();
    assert_eq!((cp1.tree_size, cp2.tree_size), (40, 63));

    let anon = app.client();
    let vkey = anon.get("/.well-known/opchub-ledger-key").await.text.trim().to_string();
    let note = anon.get("/api/v1/ledger/checkpoint").await.text;
    let latest = verify_checkpoint(&note, &vkey).unwrap();
    assert_eq!(latest.size, 63);
    let listed = anon.get("/api/v1/ledger/checkpoints").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["counters"]["gpu4"]["stored"], 40, "counters are kept per checkpoint");

    for leaf in [0, 1, 17, 39] {
        for size in [40, 63] {
            let p = anon
                .get(&format!("/api/v1/ledger/proofs/inclusion?leaf_index={leaf}&tree_size={size}"))
                .await
                .json();
            let proof: Vec<Hash> = p["proof"].as_array().unwrap().iter().map(|x| h(x.as_str().unwrap())).collect();
            let signed = verify_checkpoint(p["checkpoint"].as_str().unwrap(), &vkey).unwrap();
            assert_eq!(hex::encode(signed.root), p["root"].as_str().unwrap());
            // The leaf hash the proof is about is the one in the event's receipt/row.
            let ev = committee.get(&format!("/api/v1/ledger/events/{leaf}")).await.json();
            assert_eq!(ev["leaf_hash"], p["leaf_hash"]);
            verify_inclusion(&proof, size as u64, &signed.root, leaf as u64, &h(p["leaf_hash"].as_str().unwrap())).unwrap();
            let mut bad = h(p["leaf_hash"].as_str().unwrap());
            bad[0] ^= 1;
            assert!(verify_inclusion(&proof, size as u64, &signed.root, leaf as u64, &bad).is_err());
        }
    }
    let c = anon.get("/api/v1/ledger/proofs/consistency?from=40&to=63").await.json();
    let proof: Vec<Hash> = c["proof"].as_array().unwrap().iter().map(|x| h(x.as_str().unwrap())).collect();
    verify_consistency(&proof, 63, &h(&cp2.root), 40, &h(&cp1.root)).unwrap();
    assert!(verify_consistency(&proof, 63, &h(&cp2.root), 40, &h(&cp2.root)).is_err());
    let r = anon.get("/api/v1/ledger/proofs/inclusion?leaf_index=63&tree_size=63").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn filled(name: &str) -> TestApp {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, name, 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    let events: Vec<Value> = (0..20).map(|i| event(&format!("t{i}"), 100 + i)).collect();
    gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
    app.store.ledger_checkpoint(&app.key, "opchub.test/ledger", "test").await.unwrap();
    assert!(verify(&app).await.is_empty());
    app
}

/// Settlement reads the monthly rollups; they are checked against the raw events like the daily ones.
#[tokio::test]
async fn verify_names_a_changed_monthly_rollup() {
    let app = filled("gpu4").await;
    let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_rollups_monthly")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(n > 0, "the batch wrote monthly rollups");
    sqlx::query("UPDATE ledger_rollups_monthly SET charged_fen = charged_fen + 100")
        .execute(app.store.pool())
        .await
        .unwrap();
    let problems = verify(&app).await;
    assert!(problems.iter().any(|p| p.starts_with("monthly rollup")), "{problems:?}");
    assert!(
        !problems.iter().any(|p| p.starts_with("rollup") || p.starts_with("event")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn verify_names_a_changed_quantity_a_deleted_event_and_a_swapped_pair() {
    let app = filled("gpu5").await;
    sqlx::query("UPDATE ledger_events SET quantity = quantity + 1 WHERE leaf_index = 5")
        .execute(app.store.pool())
        .await
        .unwrap();
    let problems = verify(&app).await;
    assert!(
        problems.iter().any(|p| p.starts_with("event 5 ") && p.contains("changed")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("checkpoint at size 20")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("rollup")) && problems.iter().any(|p| p.starts_with("monthly rollup")),
        "the daily and monthly rollups no longer match: {problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.starts_with("event 4 ") || p.starts_with("event 6 ")),
        "{problems:?}"
    );

    let app = filled("gpu6").await;
    sqlx::query("DELETE FROM ledger_events WHERE leaf_index = 7")
        .execute(app.store.pool())
        .await
        .unwrap();
    let problems = verify(&app).await;
    assert!(problems.iter().any(|p| p == "event 7 is missing (deleted)"), "{problems:?}");

    // Reordering: two rows swap places (their leaf indexes).
    let app = filled("gpu7").await;
    for q in [
        "UPDATE ledger_events SET leaf_index = -1 WHERE leaf_index = 3",
        "UPDATE ledger_events SET leaf_index = 3 WHERE leaf_index = 4",
        "UPDATE ledger_events SET leaf_index = 4 WHERE leaf_index = -1",
    ] {
        sqlx::query(q).execute(app.store.pool()).await.unwrap();
    }
    let problems = verify(&app).await;
    assert!(
        problems.iter().any(|p| p.starts_with("event 3 ")) && problems.iter().any(|p| p.starts_with("event 4 ")),
        "{problems:?}"
    );

    // An event inserted beyond the tree, and a rewritten leaf hash together with its content.
    let app = filled("gpu8").await;
    sqlx::query("INSERT INTO ledger_events SELECT 99, source, 'forged', kind, subject, counterparty, quantity, unit, list_fen, charged_fen, price_version, occurred_at, received_at, origin, attributes, corrects_leaf_index, correction_reason, requested_by, approved_by, period, late, content_hash, leaf_hash, list_sub_micro, charged_sub_micro FROM ledger_events WHERE leaf_index = 0")
        .execute(app.store.pool())
        .await
        .unwrap();
    let problems = verify(&app).await;
    assert!(
        problems.iter().any(|p| p.starts_with("event 99 ") && p.contains("inserted")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_sealed_month_is_never_changed_late_events_are_booked_now() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu9", 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    let last_month_ms = opchub_store::now_ms() - 35 * 86_400_000;
    let last_month = opchub_ledger::event::period_of(last_month_ms);
    let at = chrono::DateTime::from_timestamp_millis(last_month_ms).unwrap().to_rfc3339();
    let mut on_time = event("before-close", 10);
    on_time["occurred_at"] = json!(at);
    gpu.post_json("/api/v1/ledger/events", json!({"events": [on_time]})).await;
    let (committee, _) = app.user("closer", Role::Committee).await;
    let r = committee
        .post_json(&format!("/api/v1/ledger/periods/{last_month}/close"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["tree_size"], 1);
    assert_eq!(
        committee
            .post_json(&format!("/api/v1/ledger/periods/{last_month}/close"), json!({}))
            .await
            .code(),
        "period_sealed"
    );
    let this_month = opchub_ledger::event::period_of(opchub_store::now_ms());
    let r = committee
        .post_json(&format!("/api/v1/ledger/periods/{this_month}/close"), json!({}))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["period"], "period_not_ended");

    let mut late = event("after-close", 10);
    late["occurred_at"] = json!(at);
    let r = gpu.post_json("/api/v1/ledger/events", json!({"events": [late]})).await.json();
    let rc = &r["results"][0]["receipt"];
    assert_eq!(
        (rc["late"].as_bool(), rc["period"].as_str()),
        (Some(true), Some(this_month.as_str()))
    );
    let stored = app.store.ledger_event(1).await.unwrap();
    assert_eq!(
        chrono::DateTime::from_timestamp_millis(stored.occurred_at_ms).unwrap().to_rfc3339(),
        chrono::DateTime::parse_from_rfc3339(&at).unwrap().to_utc().to_rfc3339(),
        "occurred_at is kept"
    );
    let sealed = app.store.usage_totals(&served.opc, false, &last_month).await.unwrap();
    assert_eq!(sealed[0].quantity, 10, "the sealed month's totals did not change");
    assert!(verify(&app).await.is_empty());
}

#[tokio::test]
async fn corrections_are_new_events_approved_by_someone_else() {
    let app = TestApp::start().await;
    let (gpu, served) = source(&app, "gpu10", 600_000).await;
    let event = |id: &str, q: i64| event_of(&served, id, q);
    gpu.post_json("/api/v1/ledger/events", json!({"events": [event("double", 500)]}))
        .await;
    let (alice, _) = app.user("alice", Role::Committee).await;
    app.user("bob", Role::Committee).await;
    let mut fix = event("fix-1", -500);
    fix["list_amount_fen"] = json!(-1500);
    fix["charged_amount_fen"] = json!(-1000);
    fix["corrects_leaf_index"] = json!(0);
    fix["correction_reason"] = json!("集群重复上报");
    fix["approved_by"] = json!("alice");
    let r = alice.post_json("/api/v1/ledger/corrections", json!({ "event": fix.clone() })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field_codes"]["approved_by"], "ledger_approver_is_requester");
    fix["approved_by"] = json!("bob");
    let r = alice.post_json("/api/v1/ledger/corrections", json!({ "event": fix.clone() })).await;
    assert_eq!(r.json()["stored"], 1, "{}", r.text);
    let stored = app.store.ledger_event(1).await.unwrap();
    assert_eq!(
        (stored.origin.as_str(), stored.corrects_leaf_index, stored.requested_by.as_deref()),
        ("correction", Some(0), Some("alice"))
    );
    assert_eq!(app.store.ledger_event(0).await.unwrap().quantity, 500, "history is not rewritten");
    let totals = app.store.usage_totals(&served.opc, false, &stored.period).await.unwrap();
    assert_eq!(totals[0].quantity, 0);
    fix["source_event_id"] = json!("fix-2");
    fix["corrects_leaf_index"] = json!(42);
    let r = alice.post_json("/api/v1/ledger/corrections", json!({ "event": fix })).await.json();
    assert_eq!(r["results"][0]["error"]["code"], "unknown_corrected_event");
    assert!(verify(&app).await.is_empty());
}

#[tokio::test]
async fn statements_come_from_rollups_and_belong_to_their_party() {
    let app = TestApp::start().await;
    let (_, owner) = app.user("owner_gpu11", Role::CommunityOperator).await;
    let (_, ws) = app.community_of(&owner, Zone::HexiArea, 2).await;
    let anon = app.client();
    let a = anon
        .post_json("/api/v1/registrations", registration("stmta", &uscc(70), "hexi_area", &ws[0]))
        .await
        .json();
    anon.post_json("/api/v1/registrations", registration("stmtb", &uscc(71), "hexi_area", &ws[1]))
        .await;
    let opc_a = a["opc"]["id"].as_str().unwrap().to_string();
    let gpu = source_for(&app, "gpu11", 600_000, &owner).await;
    let served = Served {
        opc: opc_a.clone(),
        community: owner.clone(),
    };
    let events: Vec<Value> = (0..5).map(|i| event_of(&served, &format!("s{i}"), 60)).collect();
    gpu.post_json("/api/v1/ledger/events", json!({ "events": events })).await;
    let ca = app.client();
    ca.login("stmta", PASSWORD).await;
    let st = ca.get("/api/v1/ledger/statement").await.json();
    assert_eq!(st["party"], opc_a.as_str());
    assert_eq!(st["totals"][0]["kind"], "compute.gpu_second");
    assert_eq!(
        (st["totals"][0]["quantity"].as_i64(), st["totals"][0]["charged_fen"].as_i64()),
        (Some(300), Some(600))
    );
    assert_eq!(st["events"].as_array().unwrap().len(), 5);
    let csv = ca.get("/api/v1/ledger/statement.csv").await;
    assert_eq!(csv.text.lines().count(), 6);
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains(".csv"));
    let cb = app.client();
    cb.login("stmtb", PASSWORD).await;
    assert_eq!(
        cb.get(&format!("/api/v1/ledger/statement?party={opc_a}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_two_replicas_build_one_consistent_log() {
    let app = TestApp::start().await;
    let replica = TestApp::start_with(app.db.clone(), app.key.clone()).await;
    let (gpu, served) = source(&app, "gpu12", 1_000_000).await;
    let key = gpu.bearer.clone().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let base = if w % 2 == 0 { app.base.clone() } else { replica.base.clone() };
        let key = key.clone();
        let served = served.clone();
        tasks.spawn(async move {
            let event = |id: &str, q: i64| event_of(&served, id, q);
            let c = Client::with_key(&base, &key);
            let mut leaves = vec![];
            for b in 0..5 {
                let events: Vec<Value> = (0..20).map(|i| event(&format!("w{w}-b{b}-{i}"), 1)).collect();
                // Every batch is sent twice: the second time everything is a duplicate.
                let r = c
                    .post_json("/api/v1/ledger/events", json!({ "events": events.clone() }))
                    .await
                    .json();
                let r2 = c.post_json("/api/v1/ledger/events", json!({ "events": events })).await.json();
                assert_eq!(r2["duplicates"], 20);
                for x in r["results"].as_array().unwrap() {
                    leaves.push(x["receipt"]["leaf_index"].as_i64().unwrap());
                }
            }
            leaves
        });
    }
    let mut all = vec![];
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1600).collect::<Vec<i64>>(),
        "every acknowledged event has its own leaf, no gaps"
    );
    assert_eq!(app.store.ledger_size().await.unwrap(), 1600);
    app.store.ledger_checkpoint(&app.key, "opchub.test/ledger", "test").await.unwrap();
    assert!(verify(&app).await.is_empty());
    let c = &app.store.ledger_counters().await.unwrap()["gpu12"];
    assert_eq!((c.received, c.stored, c.duplicates), (3200, 1600, 1600));
    replica.stop().await;
}
