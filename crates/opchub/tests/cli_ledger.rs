//! The real binary: a crash in the middle of a load loses no acknowledged event and stores
//! none twice (SIGKILL, restart, check), and `opchub ledger verify` on a demo database passes
//! until a row is edited behind the platform's back. Runs on SQLite, or on PostgreSQL when
//! `OPCHUB_TEST_DATABASE_URL` is set (a fresh schema per test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opchub_store::Store;
use serde_json::json;
use std::collections::HashSet;

use std::path::Path;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{opchub, serve};

async fn database_url(dir: &Path) -> String {
    opchub_testkit::db::fresh_database_url(dir).await.unwrap()
}

/// One fixed time for every event, so that resending an event is byte-for-byte the same event.
fn occurred_at() -> &'static str {
    static AT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AT.get_or_init(|| chrono::Utc::now().to_rfc3339())
}

/// A GPU event of the OPC the cluster's operator serves (a source reports only for the OPCs of
/// its owner's communities, with its owner as the counterparty).
fn event(id: &str, opc: &str, operator: &str) -> serde_json::Value {
    json!({
        "source_event_id": id, "kind": "compute.gpu_second", "unit": "gpu_second", "subject": opc,
        "counterparty": operator, "quantity": 60, "list_amount_fen": 90, "charged_amount_fen": 60,
        "price_version": "gpu-1", "occurred_at": occurred_at(), "attributes": {"item": "a100"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_no_acknowledged_event_and_doubles_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path()).await;
    let (code, out) = opchub(
        dir.path(),
        &db,
        &[
            "user",
            "create",
            "--username",
            "gpuops",
            "--role",
            "community_operator",
            "--password",
            "gpu-ops-pass",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = opchub(
        dir.path(),
        &db,
        &[
            "ledger",
            "source-create",
            "--name",
            "cluster1",
            "--owner",
            "gpuops",
            "--rate-per-minute",
            "1000000",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once): "))
        .unwrap()
        .trim()
        .to_string();
    // The operator's compute item the events are priced by (M2.2): 60 GPU-seconds at ¥54 list
    // and ¥36 OPC price per GPU-hour are 90 and 60 fen.
    let (operator, workstation) = {
        let store = Store::connect(&db).await.unwrap();
        let owner = store.user_by_username("gpuops").await.unwrap().unwrap();
        let uscc = opchub_domain::Uscc::complete("91110106MA01ABCDE").unwrap();
        let community = store
            .create_community(
                &opchub_store::Actor::system(),
                opchub_store::registry::NewCommunity {
                    name: "算力社区",
                    company_name: "北京算力园区运营有限公司",
                    company_uscc: &uscc,
                    zone: opchub_domain::Zone::HexiArea,
                    address: "北京市丰台区汽车博物馆东路1号",
                    operator_user_id: &owner.id,
                    workstations: 1,
                },
            )
            .await
            .unwrap();
        let ws = store.workstations(&community.id).await.unwrap()[0].id.clone();
        let item = opchub_store::gateway::ItemPrice {
            item: "a100".into(),
            unit: "gpu_hour".into(),
            name_zh: "A100算力".into(),
            name_en: "A100".into(),
            list_fen: 5_400,
            opc_fen: 3_600,
        };
        store
            .create_price_table(&opchub_store::Actor::system(), &owner.id, "gpu-1", 0, &[], &[item])
            .await
            .unwrap();
        // Only an approved table prices usage (issue 18).
        store
            .set_price_table_status(&opchub_store::Actor::system(), &owner.id, "gpu-1", "approved", None)
            .await
            .unwrap();
        store.close().await;
        (owner.id, ws)
    };

    let (mut child, base) = serve(dir.path(), &db);
    let uscc = opchub_domain::Uscc::complete("91110106MA01CRAWH").unwrap().to_string();
    let reg = reqwest::Client::new()
        .post(format!("{base}/api/v1/registrations"))
        .json(&json!({
            "username": "crashopc", "password": "crash-opc-pass", "founder_name": "王小明",
            "company_name": "北京崩溃测试智能科技有限公司", "uscc": uscc, "tax_registered": true,
            "zone": "hexi_area", "theme_package": "opc_agent_dev", "workstation_id": workstation,
        }))
        .send()
        .await
        .unwrap();
    assert!(reg.status().is_success(), "{}", reg.text().await.unwrap());
    let opc = reg.json::<serde_json::Value>().await.unwrap()["opc"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loaders = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (acked, stop, base, key) = (acked.clone(), stop.clone(), base.clone(), key.clone());
        let (opc, operator) = (opc.clone(), operator.clone());
        loaders.spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
            // Bounded: at most 400 batches per loader; it stops when the server dies.
            for b in 0..400 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let ids: Vec<String> = (0..25).map(|i| format!("w{w}-b{b}-{i}")).collect();
                let body = json!({ "events": ids.iter().map(|i| event(i, &opc, &operator)).collect::<Vec<_>>() });
                let Ok(resp) = http
                    .post(format!("{base}/api/v1/ledger/events"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if !resp.status().is_success() {
                    break;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else { break };
                let mut a = acked.lock().unwrap();
                for r in v["results"].as_array().unwrap() {
                    if r["status"] == "stored" || r["status"] == "duplicate" {
                        a.insert(r["receipt"]["source_event_id"].as_str().unwrap().to_string());
                    }
                }
            }
        });
    }
    // Kill without warning once a good part of the load has been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 2000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while loaders.join_next().await.is_some() {}
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 2000, "the load ran ({} acknowledged)", acked.len());

    // Restart: every acknowledged event is there exactly once; the ledger verifies.
    let (mut child, base) = serve(dir.path(), &db);
    let store = Store::connect(&db).await.unwrap();
    let size = store.ledger_size().await.unwrap();
    assert!(size as usize >= acked.len());
    for id in &acked {
        let e = store
            .ledger_event_by_key("cluster1", id)
            .await
            .unwrap_or_else(|_| panic!("acknowledged event {id} was lost"));
        assert_eq!(e.quantity, 60);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_events WHERE source = 'cluster1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, size, "no event was stored twice and none is outside the tree");
    // Sending everything acknowledged again after the crash: all duplicates, nothing new.
    let http = reqwest::Client::new();
    let ids: Vec<&String> = acked.iter().take(1000).collect();
    let body = json!({ "events": ids.iter().map(|i| event(i, &opc, &operator)).collect::<Vec<_>>() });
    let v: serde_json::Value = http
        .post(format!("{base}/api/v1/ledger/events"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["stored"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(ids.len() as u64)),
        "{v}"
    );
    assert_eq!(store.ledger_size().await.unwrap(), size);
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
    let (code, out) = opchub(dir.path(), &db, &["ledger", "checkpoint"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = opchub(dir.path(), &db, &["ledger", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK:"), "{out}");
}

#[tokio::test]
async fn ledger_verify_on_a_demo_database_then_after_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path()).await;
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("demo usage:"), "{out}");
    let (code, out) = opchub(dir.path(), &db, &["ledger", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK:"), "{out}");

    let store = Store::connect(&db).await.unwrap();
    sqlx::query("UPDATE ledger_events SET charged_fen = charged_fen + 100 WHERE leaf_index = 42")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let (code, out) = opchub(dir.path(), &db, &["ledger", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PROBLEM: event 42 "), "{out}");

    let (code, out) = opchub(dir.path(), &db, &["ledger", "public-key"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("opchub.ledger+"), "{out}");
}

/// Issue 19: `opchub ledger close` seals an ended month and issues its bills — one per (OPC,
/// payee), each equal to the month's ledger to the fen; a month sealed twice is refused.
#[tokio::test]
async fn ledger_close_from_the_command_line_issues_the_months_bills() {
    use chrono::{Datelike, TimeZone};
    use opchub_ledger::event::{NewEvent, Origin};
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path()).await;
    let store = Store::connect(&db).await.unwrap();
    store.migrate().await.unwrap();
    // Noon on the 10th of last month, Beijing.
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&beijing).date_naive();
    let day = today.with_day(1).unwrap().pred_opt().unwrap().with_day(10).unwrap();
    let at = beijing
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    let month = opchub_ledger::event::period_of(at);
    let ev = |id: &str, subject: &str, list: i64, charged: i64| {
        opchub_store::ledger::Item::Event(NewEvent {
            source: "cluster".into(),
            source_event_id: id.into(),
            kind: "compute.gpu_second".into(),
            subject: subject.into(),
            counterparty: "operator-1".into(),
            quantity: 60,
            unit: "gpu_second".into(),
            list_fen: list,
            charged_fen: charged,
            list_sub_micro: 0,
            charged_sub_micro: 0,
            price_version: "gpu-1".into(),
            occurred_at_ms: at,
            origin: Origin::Observed,
            attributes: [("item".to_string(), "a100".to_string())].into_iter().collect(),
            corrects_leaf_index: None,
            correction_reason: None,
            requested_by: None,
            approved_by: None,
        })
    };
    store
        .ledger_append(vec![
            ev("a-1", "opc-a", 90, 60),
            ev("a-2", "opc-a", 90, 61),
            ev("b-1", "opc-b", 45, 30),
        ])
        .await
        .unwrap();
    store.close().await;

    let (code, out) = opchub(dir.path(), &db, &["ledger", "close", "--period", &month]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("issued 2 bills for {month}")), "{out}");
    let store = Store::connect(&db).await.unwrap();
    let bills = store.issued_bills(Some(&month), None, None).await.unwrap();
    let totals: Vec<(String, i64, i64)> = bills.iter().map(|b| (b.payer.clone(), b.list_fen, b.total_fen)).collect();
    assert_eq!(
        totals,
        vec![("opc-a".to_string(), 180, 121), ("opc-b".to_string(), 45, 30)],
        "each bill is its payer's events of the month, to the fen"
    );
    assert!(bills.iter().all(|b| b.status == "issued" && b.payee == "operator-1"));
    store.close().await;
    let (code, out) = opchub(dir.path(), &db, &["ledger", "close", "--period", &month]);
    assert_ne!(code, 0, "a sealed month is not sealed again: {out}");
}

/// Issue 19: bills from the command line. The OPC lists its issued bill and records paying
/// it (pending); a reference used twice and an amount above the bill are refused and change
/// nothing; the operator, not the OPC, confirms — and the confirmed payment is a `bill.payment`
/// event in the ledger.
#[tokio::test]
async fn bills_are_paid_and_confirmed_from_the_command_line() {
    use chrono::{Datelike, TimeZone};
    use opchub_ledger::event::{NewEvent, Origin};
    use opchub_store::registry::{Founder, NewCommunity, RegisterOpc};
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path()).await;
    for (user, role) in [("billops", "community_operator"), ("billopc", "opc_founder")] {
        let (code, out) = opchub(
            dir.path(),
            &db,
            &["user", "create", "--username", user, "--role", role, "--password", "bill-cli-pass"],
        );
        assert_eq!(code, 0, "{out}");
    }
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&beijing).date_naive();
    let day = today.with_day(1).unwrap().pred_opt().unwrap().with_day(10).unwrap();
    let at = beijing
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    let month = opchub_ledger::event::period_of(at);
    let (opc, operator) = {
        let store = Store::connect(&db).await.unwrap();
        let ops = store.user_by_username("billops").await.unwrap().unwrap();
        let founder = store.user_by_username("billopc").await.unwrap().unwrap();
        let uscc = opchub_domain::Uscc::complete("91110106MA01ABCDE").unwrap();
        let community = store
            .create_community(
                &opchub_store::Actor::system(),
                NewCommunity {
                    name: "对账社区",
                    company_name: "北京对账园区运营有限公司",
                    company_uscc: &uscc,
                    zone: opchub_domain::Zone::HexiArea,
                    address: "北京市丰台区汽车博物馆东路1号",
                    operator_user_id: &ops.id,
                    workstations: 1,
                },
            )
            .await
            .unwrap();
        let ws = store.workstations(&community.id).await.unwrap()[0].id.clone();
        let opc_uscc = opchub_domain::Uscc::complete("91110106MA01BQCDE").unwrap();
        let (opc, _) = store
            .register_opc(
                &opchub_store::Actor::system(),
                RegisterOpc {
                    founder: Founder::Existing(&founder),
                    name: "北京对账智能科技有限公司",
                    uscc: Some(&opc_uscc),
                    founder_name: "赵六",
                    zone: opchub_domain::Zone::HexiArea,
                    theme_package: "opc_agent_dev",
                    workstation_id: &ws,
                    tax_registered: true,
                    industry_code: None,
                },
            )
            .await
            .unwrap();
        store
            .ledger_append(vec![opchub_store::ledger::Item::Event(NewEvent {
                source: "cluster".into(),
                source_event_id: "bill-cli-1".into(),
                kind: "compute.gpu_second".into(),
                subject: opc.id.clone(),
                counterparty: ops.id.clone(),
                quantity: 60,
                unit: "gpu_second".into(),
                list_fen: 90,
                charged_fen: 60,
                list_sub_micro: 0,
                charged_sub_micro: 0,
                price_version: "gpu-1".into(),
                occurred_at_ms: at,
                origin: Origin::Observed,
                attributes: [("item".to_string(), "a100".to_string())].into_iter().collect(),
                corrects_leaf_index: None,
                correction_reason: None,
                requested_by: None,
                approved_by: None,
            })])
            .await
            .unwrap();
        store.close().await;
        (opc.id, ops.id)
    };
    let (code, out) = opchub(dir.path(), &db, &["ledger", "close", "--period", &month]);
    assert_eq!(code, 0, "{out}");
    let bill = format!("{month}.{opc}.{operator}");

    let (code, out) = opchub(dir.path(), &db, &["bills", "list", "--as", "billopc"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&bill) && out.contains("issued") && out.contains("1 bills · billed ¥0.60 · paid ¥0.00"),
        "{out}"
    );

    let today = today.format("%Y-%m-%d").to_string();
    let pay = |who: &'static str, amount: &'static str, reference: &'static str| {
        let (dir, db, bill, today) = (dir.path().to_path_buf(), db.clone(), bill.clone(), today.clone());
        move || {
            opchub(
                &dir,
                &db,
                &[
                    "bills",
                    "pay",
                    &bill,
                    "--as",
                    who,
                    "--amount-fen",
                    amount,
                    "--paid-on",
                    &today,
                    "--reference",
                    reference,
                ],
            )
        }
    };
    // Above the bill: refused with its code, nothing recorded.
    let (code, out) = pay("billopc", "61", "CLI-1")();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("above_outstanding"), "{out}");
    // The operator is not the payer.
    let (code, out) = pay("billops", "60", "CLI-1")();
    assert_eq!(code, 2, "{out}");
    let (code, out) = pay("billopc", "60", "CLI-1")();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pending"), "{out}");
    let payment = out.split_whitespace().nth(1).unwrap().to_string();
    let (code, out) = pay("billopc", "1", "cli 1")();
    assert_eq!(code, 2, "a reference is used once per payee (spaces and case aside): {out}");

    // Only the payee confirms.
    let (code, out) = opchub(dir.path(), &db, &["bills", "confirm", &payment, "--as", "billopc"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not_payee"), "{out}");
    let (code, out) = opchub(dir.path(), &db, &["bills", "confirm", &payment, "--as", "billops"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("confirmed"), "{out}");
    let (code, out) = opchub(dir.path(), &db, &["bills", "list", "--as", "billops", "--month", &month]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("paid") && out.contains("billed ¥0.60 · paid ¥0.60"), "{out}");

    let store = Store::connect(&db).await.unwrap();
    let posted = store.ledger_event_by_key("bills", &payment).await.unwrap();
    assert_eq!((posted.kind.as_str(), posted.charged_fen), ("bill.payment", 60), "{posted:?}");
    store.close().await;
}
