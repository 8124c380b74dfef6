//! Integrity findings through the HTTP API (issue 18): two OPCs calling each other's paid skills
//! (M2.3 pays publisher and invoker, so a ring collects on both sides) are flagged by a scan;
//! while the finding is open their M2.3 lines are held; the flagged party answers; once the
//! committee upholds it the ring's calls stop qualifying and what was already paid comes back
//! through a recovery order. Others cannot read the finding; bad decisions change nothing.
//! Runs on SQLite, and on PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::ledger::Item;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn call(id: &str, invoker: &str, publisher: &str, calls: i64, fen: i64) -> Item {
    Item::Event(NewEvent {
        source: "test".into(),
        source_event_id: id.into(),
        kind: "skill.call".into(),
        subject: invoker.into(),
        counterparty: publisher.into(),
        quantity: calls,
        unit: "call".into(),
        list_fen: fen,
        charged_fen: fen,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        price_version: "t-1".into(),
        // Last month, billed and paid by the ring world (issue 19 item 4).
        occurred_at_ms: last_month().1,
        origin: Origin::Observed,
        attributes: BTreeMap::from([("qualified".to_string(), "true".to_string())]),
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    })
}

struct Ring {
    app: TestApp,
    committee: Client,
    second: Client,
    finance: Client,
    x: Client,
    y: Client,
    z: Client,
    x_opc: String,
    y_opc: String,
    year: i32,
}

async fn ring() -> Ring {
    let (month, at, year) = last_month();
    let key = std::sync::Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
    let app = TestApp::start_full(
        std::sync::Arc::new(fresh_db().await),
        key,
        Some(policy_for_year(year)),
        opchub_web::skills::SkillsConfig::testing(),
    )
    .await;
    let (community, ws) = app.community(Zone::HexiArea, 3).await;
    let (platform, _) = app.user("plat", Role::PlatformOperator).await;
    let r = platform
        .put_json(
            &format!("/api/v1/parties/community/{community}/registration"),
            json!({"tax_registered": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let mut ids = vec![];
    let mut clients = vec![];
    for (i, name) in ["ringx", "ringy", "honestz"].into_iter().enumerate() {
        let r = app
            .client()
            .post_json(
                "/api/v1/registrations",
                registration(name, &uscc(700 + i as u32), "hexi_area", &ws[i]),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        ids.push(r.json()["opc"]["id"].as_str().unwrap().to_string());
        let c = app.client();
        c.login(name, PASSWORD).await;
        clients.push(c);
    }
    let (x_opc, y_opc) = (ids[0].clone(), ids[1].clone());
    // X's skill re-priced to ¥2,000 a call, called 200 times by Y; X calls Y's ¥0.50 skill 200 times.
    app.store
        .ledger_append(vec![
            call("ring-1", &y_opc, &x_opc, 200, 40_000_000),
            call("ring-2", &x_opc, &y_opc, 200, 10_000),
        ])
        .await
        .unwrap();
    // Registered before the calls; the month closed and its bills paid, so they count.
    app.registered_at(&[&x_opc, &y_opc, &ids[2]], at - 3_600_000).await;
    app.close_and_pay(&month).await;
    let (committee, _) = app.user("cmte", Role::Committee).await;
    import_empty_lists(&committee).await;
    let (second, _) = app.user("cmte2", Role::Committee).await;
    let (finance, _) = app.user("fin", Role::Finance).await;
    let z = clients.pop().unwrap();
    let y = clients.pop().unwrap();
    let x = clients.pop().unwrap();
    Ring {
        year,
        app,
        committee,
        second,
        finance,
        x,
        y,
        z,
        x_opc,
        y_opc,
    }
}

async fn draft(w: &Ring) -> (String, Vec<Value>) {
    let r = w
        .committee
        .post_json("/api/v1/settlements", json!({ "year": w.year, "clauses": ["M2.3"] }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let id = r.json()["batch"]["id"].as_str().unwrap().to_string();
    let b = w.committee.get(&format!("/api/v1/settlements/{id}")).await.json();
    (id, b["lines"].as_array().unwrap().clone())
}

#[tokio::test]
async fn a_ring_of_two_is_flagged_held_and_once_upheld_not_paid_and_recovered() {
    let w = ring().await;
    // Before any scan, the ring would collect on both sides: approve and pay that batch.
    let (a, lines) = draft(&w).await;
    let x_pub = batch_line(&lines, "M2.3-publisher", &w.x_opc)["amount_fen"].as_i64().unwrap();
    let y_inv = batch_line(&lines, "M2.3-invoker", &w.y_opc)["amount_fen"].as_i64().unwrap();
    assert!(x_pub > 0 && y_inv > 0, "{lines:#?}");
    for (c, who) in [(&w.x, &w.x_opc), (&w.y, &w.y_opc)] {
        for l in lines
            .iter()
            .filter(|l| l["beneficiary"] == who.as_str() && l["amount_fen"].as_i64() > Some(0))
        {
            let r = c
                .post_json(
                    "/api/v1/my/settlements/confirm",
                    json!({"batch": a, "clause": l["clause"], "beneficiary": who, "accept": true}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        }
    }
    let r = w.second.post_json(&format!("/api/v1/settlements/{a}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let shown = w.finance.get(&format!("/api/v1/settlements/{a}")).await.json();
    let pay: Vec<Value> = shown["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["approved_fen"].as_i64() > Some(0))
        .enumerate()
        .map(|(i, l)| json!({"clause": l["clause"], "beneficiary": l["beneficiary"], "payment_reference": format!("B-{i}")}))
        .collect();
    let r = w
        .finance
        .post_json(
            &format!("/api/v1/settlements/{a}/pay"),
            json!({"reference": "RING-1", "lines": pay}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());

    // The scan flags the pair, with the numbers in Chinese.
    let r = w.committee.post_json("/api/v1/integrity/scan", json!({"year": w.year})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(r.json()["stored"]["opened"].as_i64().unwrap() >= 1, "{:?}", r.json());
    let all = w.committee.get(&format!("/api/v1/integrity/findings?year={}", w.year)).await.json();
    let f = all
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["detector"] == "reciprocity")
        .unwrap_or_else(|| panic!("no reciprocity finding: {all:#?}"))
        .clone();
    let mut pair = vec![w.x_opc.clone(), w.y_opc.clone()];
    pair.sort();
    assert_eq!(f["parties"], json!(pair));
    assert_eq!(f["status"], "open");
    let zh = f["explanation_zh"].as_str().unwrap();
    assert!(zh.contains("互相调用"), "{f:#?}");
    // The finding names the ledger events it rests on: the two calls' leaves (issue 18 item 5).
    assert_eq!(f["leaves_total"], 2, "{f:#?}");
    assert_eq!(f["leaves"].as_array().unwrap().len(), 2, "{f:#?}");
    // The parties are named by their names, not their ids (the ids are in `parties`).
    assert!(zh.contains("ringx") && zh.contains("ringy") && !zh.contains(&w.x_opc), "{zh}");
    let id = f["id"].as_str().unwrap().to_string();
    // A rescan opens nothing new.
    let r = w.committee.post_json("/api/v1/integrity/scan", json!({"year": w.year})).await;
    assert_eq!(r.json()["stored"]["opened"], 0, "{:?}", r.json());

    // The flagged party sees it; an unrelated OPC does not.
    let mine = w.x.get("/api/v1/integrity/findings").await.json();
    assert!(mine.as_array().unwrap().iter().any(|m| m["id"] == id.as_str()));
    assert!(w.z.get("/api/v1/integrity/findings").await.json().as_array().unwrap().is_empty());
    assert_eq!(
        w.z.get(&format!("/api/v1/integrity/findings/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r =
        w.z.post_json(&format!("/api/v1/integrity/findings/{id}/answer"), json!({"statement": "not me"}))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The pages: the committee sees the finding with its graph, in Chinese, and the decision
    // form; X sees its finding with an answer form; Z sees none.
    let page = w.committee.get("/integrity").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!("id=\"finding-{id}\"")), "{}", page.text);
    assert!(page.text.contains("互相调用（互刷）") && page.text.contains("<svg class=\"ring-graph\""));
    // The evidence: Y's 200 calls of X's skill, ¥400,000.00, drawn as an arrow with its title.
    assert!(
        page.text.contains("class=\"rg-node\"") && page.text.contains("200 × ¥400,000.00"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&format!("/integrity/{id}/decide")));
    let leaf = f["leaves"][0].as_i64().unwrap();
    assert!(
        page.text.contains(&format!("/ledger/proof?leaf_index={leaf}")) && page.text.contains("共 2 条"),
        "the page links each ledger event to its proof: {}",
        page.text
    );
    let mine = w.x.get("/integrity").await.text;
    assert!(
        mine.contains(&format!("/integrity/{id}/answer")) && !mine.contains("/decide"),
        "{mine}"
    );
    assert!(w.z.get("/integrity").await.text.contains("id=\"no-findings\""));

    // While open, the M2.3 lines of both are held: undetermined, nothing more approved.
    let (_, lines) = draft(&w).await;
    for (clause, who) in [("M2.3-publisher", &w.x_opc), ("M2.3-invoker", &w.y_opc)] {
        let l = batch_line(&lines, clause, who);
        assert_eq!(
            (l["eligible"].as_str(), l["amount_fen"].as_i64()),
            (Some("unknown"), Some(0)),
            "{l:#?}"
        );
        assert!(line_trace(l).contains("integrity_hold"), "{}", line_trace(l));
    }

    // X answers; a decision needs a known verdict and a reason; the committee upholds it once.
    let r =
        w.x.post_json(
            &format!("/api/v1/integrity/findings/{id}/answer"),
            json!({"statement": "我们是真实的业务合作伙伴"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["statement"], "我们是真实的业务合作伙伴");
    let bad = w
        .committee
        .post_json(
            &format!("/api/v1/integrity/findings/{id}/decide"),
            json!({"decision": "maybe", "reason": "x"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = w
        .committee
        .post_json(
            &format!("/api/v1/integrity/findings/{id}/decide"),
            json!({"decision": "uphold", "reason": " "}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let by_x =
        w.x.post_json(
            &format!("/api/v1/integrity/findings/{id}/decide"),
            json!({"decision": "dismiss", "reason": "no"}),
        )
        .await;
    assert_eq!(by_x.status, StatusCode::FORBIDDEN);
    // Two signatures: the first member's decision is a proposal (the lines stay held), the
    // proposer cannot confirm it, a second member confirming it decides the finding.
    let uphold = json!({"decision": "uphold", "reason": "双方互刷调用量，无真实业务"});
    let r = w
        .committee
        .post_json(&format!("/api/v1/integrity/findings/{id}/decide"), uphold.clone())
        .await;
    assert_eq!(
        (r.status, r.json()["status"].as_str(), r.json()["proposed_decision"].as_str()),
        (StatusCode::OK, Some("open"), Some("uphold")),
        "{:?}",
        r.json()
    );
    let page = w.committee.get("/integrity").await;
    assert!(
        page.text.contains("待另一位委员确认"),
        "the page shows the proposal awaiting a second member"
    );
    let alone = w
        .committee
        .post_json(&format!("/api/v1/integrity/findings/{id}/decide"), uphold.clone())
        .await;
    assert_eq!(
        (alone.status, alone.code()),
        (StatusCode::CONFLICT, "second_member_required".to_string())
    );
    let r = w.second.post_json(&format!("/api/v1/integrity/findings/{id}/decide"), uphold).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("upheld")),
        "{:?}",
        r.json()
    );
    assert_eq!(r.json()["decision_reason"], "双方互刷调用量，无真实业务");
    let again = w
        .second
        .post_json(
            &format!("/api/v1/integrity/findings/{id}/decide"),
            json!({"decision": "dismiss", "reason": "x"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "finding_decided".to_string()));

    // The same pair may be named by other detectors too (a cycle, concentration): each finding
    // holds the lines until it is decided; the committee upholds them as well.
    let rest = w.committee.get(&format!("/api/v1/integrity/findings?year={}", w.year)).await.json();
    for f in rest.as_array().unwrap().iter().filter(|f| f["status"] == "open") {
        for who in [&w.second, &w.committee] {
            let r = who
                .post_json(
                    &format!("/api/v1/integrity/findings/{}/decide", f["id"].as_str().unwrap()),
                    json!({"decision": "uphold", "reason": "同一对互刷"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        }
    }

    // Upheld: the ring's calls do not qualify; the paid lines come back as recovery orders.
    let (c, lines) = draft(&w).await;
    for (clause, who, paid) in [("M2.3-publisher", &w.x_opc, x_pub), ("M2.3-invoker", &w.y_opc, y_inv)] {
        let l = batch_line(&lines, clause, who);
        assert_eq!(
            (l["entitlement_fen"].as_i64(), l["amount_fen"].as_i64()),
            (Some(0), Some(-paid)),
            "{l:#?}"
        );
        assert!(
            line_trace(l).contains(&format!("upheld integrity finding {id}")),
            "{}",
            line_trace(l)
        );
    }
    let r = w.second.post_json(&format!("/api/v1/settlements/{c}/approve"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(r.json()["recovery_fen"].as_i64().unwrap() >= x_pub + y_inv, "{:?}", r.json());
    let orders = w.finance.get("/api/v1/settlement-recoveries").await.json();
    let open: i64 = orders
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "open")
        .map(|o| o["amount_fen"].as_i64().unwrap())
        .sum();
    assert!(open >= x_pub + y_inv, "{orders:#?}");

    // The committee's export, read back with a spreadsheet reader: Chinese headers, one row per
    // finding, the amount at stake as numbers (yuan and fen) and a total row.
    let (status, headers, bytes) = w
        .committee
        .get_bytes(&format!("/api/v1/integrity/findings/export?format=xlsx&year={}", w.year))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"].to_str().unwrap().contains(".xlsx"));
    let rows = xlsx_rows(bytes);
    let head: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        (head[2].as_str(), head[5].as_str(), head[6].as_str()),
        ("核查类型", "涉及金额", "涉及金额（分）")
    );
    let all = w.committee.get(&format!("/api/v1/integrity/findings?year={}", w.year)).await.json();
    let all = all.as_array().unwrap();
    assert_eq!(rows.len(), all.len() + 2, "header, one row per finding, total");
    let recip = rows.iter().find(|r| r[2] == "互相调用（互刷）").expect("the reciprocity row");
    let fen = all.iter().find(|f| f["detector"] == "reciprocity").unwrap()["amount_at_stake_fen"]
        .as_i64()
        .unwrap();
    assert_eq!((number(&recip[6]), number(&recip[5])), (fen as f64, fen as f64 / 100.0));
    assert_eq!(recip[4].to_string(), "已认定");
    let total: i64 = all.iter().map(|f| f["amount_at_stake_fen"].as_i64().unwrap()).sum();
    assert_eq!(number(&rows.last().unwrap()[6]), total as f64);
    // A flagged party exports only its own findings, in English when asked; an unrelated one none.
    let (_, _, csv) = w.x.get_bytes("/api/v1/integrity/findings/export?format=csv&lang=en").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("Mutual calls") && csv.contains("Upheld"), "{csv}");
    let (_, _, none) = w.z.get_bytes("/api/v1/integrity/findings/export?format=csv").await;
    assert_eq!(String::from_utf8(none).unwrap().lines().count(), 2, "header and total only");
    let bad = w.committee.get("/api/v1/integrity/findings/export?format=pdf").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let _ = &w.app;
}

fn xlsx_rows(bytes: Vec<u8>) -> Vec<Vec<calamine::Data>> {
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range.rows().map(|r| r.to_vec()).collect()
}

fn number(d: &calamine::Data) -> f64 {
    match d {
        calamine::Data::Float(f) => *f,
        calamine::Data::Int(i) => *i as f64,
        other => panic!("not a number cell: {other:?}"),
    }
}

/// Issue 18 item 1, usage ties: the two companies of the ring use their API keys from the same
/// client (one address behind the platform's proxy, one user agent), the honest third from
/// another. The scan ties X and Y — and only them — as related parties through "the same
/// client", with the paid calls between them at stake; the platform keeps a fingerprint, never
/// the address.
#[tokio::test]
async fn keys_used_from_one_client_tie_their_parties() {
    let w = ring().await;
    let http = reqwest::Client::new();
    for (c, address, agent) in [
        (&w.x, "203.0.113.7", "ring-agent/1.0"),
        (&w.y, "203.0.113.7", "ring-agent/1.0"),
        (&w.z, "198.51.100.20", "ring-agent/1.0"),
    ] {
        let key = c.post_json("/api/v1/me/api-keys", json!({"name": "agent"})).await.json();
        let key = key["secret"].as_str().unwrap_or_else(|| panic!("{key}")).to_string();
        let r = http
            .get(format!("{}/api/v1/notifications", w.app.base))
            .bearer_auth(&key)
            .header("x-forwarded-for", address)
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Recorded off the request's path: wait for the three keys' clients.
    let mut clients = vec![];
    for _ in 0..100 {
        clients = w
            .app
            .store
            .integrity_signals()
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.kind == "client")
            .collect();
        if clients.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(clients.len(), 3, "{clients:?}");
    assert!(clients.iter().all(|s| !s.value.contains("203.0.113")), "no address is kept");

    let r = w.committee.post_json("/api/v1/integrity/scan", json!({"year": w.year})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let all = w.committee.get(&format!("/api/v1/integrity/findings?year={}", w.year)).await.json();
    let related: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["detector"] == "related_parties")
        .collect();
    let mut pair = vec![w.x_opc.clone(), w.y_opc.clone()];
    pair.sort();
    assert_eq!(related.len(), 1, "{all:#?}");
    assert_eq!(related[0]["parties"], json!(pair), "the honest third is not tied");
    let zh = related[0]["explanation_zh"].as_str().unwrap();
    assert!(zh.contains("同一客户端"), "{zh}");
    assert!(related[0]["explanation_en"].as_str().unwrap().contains("the same client"));
}
