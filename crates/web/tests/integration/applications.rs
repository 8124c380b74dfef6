//! Applications and funds end to end (issue 8): for each clause family an application goes from
//! submission through every review stage (with the right role, and the right agency, at each)
//! to payment or grant; recovery of false evidence (F2) with repayment and offset; the
//! two-person rule; two reviewers deciding at once; bad input changes nothing.
//! Runs on SQLite, and on PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use opchub_store::Actor;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1,
];

struct World {
    app: TestApp,
    opc: Client,
    operator: Client,
    committee: Client,
    committee2: Client,
    finance: Client,
    /// agency → client
    agencies: BTreeMap<&'static str, Client>,
    year: i32,
}

async fn world() -> World {
    let app = TestApp::start_preview().await;
    let (community, ws) = app.community(Zone::HexiArea, 2).await;
    let operator_user = app.store.community(&community).await.unwrap().operator_user_id;
    let operator_name = app.store.user(&operator_user).await.unwrap().username;
    app.store
        .set_party_registration(
            &Actor::system(),
            "community",
            &community,
            &opchub_store::party_facts::RegistrationChange {
                tax_registered: Some(Some(true)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = app
        .client()
        .post_json("/api/v1/registrations", registration("appl", &uscc(701), "hexi_area", &ws[0]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let opc = app.client();
    opc.login("appl", PASSWORD).await;
    let operator = app.client();
    operator.login(&operator_name, PASSWORD).await;
    let (committee, _) = app.user("cmte1", Role::Committee).await;
    let (committee2, _) = app.user("cmte2", Role::Committee).await;
    let (finance, _) = app.user("fin1", Role::Finance).await;
    let mut agencies = BTreeMap::new();
    for a in ["science_technology", "finance", "commerce", "human_resources", "investment_fund"] {
        let (c, id) = app.user(&format!("ag-{}", &a[..5]), Role::Agency).await;
        app.store.set_user_agency(&Actor::system(), &id, a).await.unwrap();
        agencies.insert(a, c);
    }
    // F3: every list imported (empty): no applicant is excluded, none is "unknown".
    import_empty_lists(&committee).await;
    World {
        app,
        opc,
        operator,
        committee,
        committee2,
        finance,
        agencies,
        year: this_year(),
    }
}

fn day(w: &World, md: &str) -> String {
    format!("{}-{md}", w.year)
}

/// Creates a draft, uploads one PDF per evidence item, submits; returns the application.
async fn apply(w: &World, who: &Client, clause: &str, answers: Value) -> Value {
    let r = who
        .post_json(
            "/api/v1/applications",
            json!({ "clause": clause, "year": w.year, "answers": answers }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{clause}: {:?}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let spec = who.get(&format!("/api/v1/applications/{id}")).await.json()["form"].clone();
    for slot in 0..spec["evidence"].as_array().unwrap().len() {
        upload(who, &id, slot, "evidence.pdf", "application/pdf", PDF.to_vec(), StatusCode::CREATED).await;
    }
    let v = who.get(&format!("/api/v1/applications/{id}")).await.json()["application"]["version"].clone();
    let s = who
        .post_json(&format!("/api/v1/applications/{id}/submit"), json!({ "version": v }))
        .await;
    assert_eq!(s.status, StatusCode::OK, "{clause} submit: {:?}", s.json());
    assert_eq!(s.json()["status"], "in_review");
    s.json()
}

async fn upload(who: &Client, id: &str, slot: usize, name: &str, ct: &'static str, bytes: Vec<u8>, want: StatusCode) -> Resp {
    let r = who
        .send(
            Method::POST,
            &format!("/api/v1/applications/{id}/files?slot={slot}&name={name}"),
            Some(Body::Raw(ct, bytes)),
        )
        .await;
    assert_eq!(r.status, want, "upload {name}: {}", r.text);
    r
}

async fn app_of(who: &Client, id: &str) -> Value {
    let r = who.get(&format!("/api/v1/applications/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    r.json()
}

async fn act(who: &Client, id: &str, action: &str, reason: &str, amount: Option<i64>) -> Resp {
    let v = app_of(who, id).await["application"]["version"].clone();
    who.post_json(
        &format!("/api/v1/applications/{id}/review"),
        json!({ "version": v, "action": action, "reason": reason, "amount_fen": amount }),
    )
    .await
}

/// Walks an application through its review stages with the right person at each: passes,
/// then approves at the committee decision. Returns the final application.
async fn walk(w: &World, id: &str) -> Value {
    for _ in 0..8 {
        let a = app_of(&w.committee, id).await["application"].clone();
        if a["status"] != "in_review" {
            return a;
        }
        let stage = a["stage"].as_str().unwrap().to_string();
        let who = match stage.as_str() {
            "agency_review" | "fund_due_diligence" | "fund_decision" => &w.agencies[a["agency"].as_str().unwrap()],
            _ => &w.committee,
        };
        let action = if stage == "committee_decision" { "approve" } else { "pass" };
        let r = act(who, id, action, "", None).await;
        assert_eq!(r.status, StatusCode::OK, "{stage}: {:?}", r.json());
    }
    panic!("application {id} did not finish its stages");
}

async fn pay(w: &World, reference: &str, ids: &[&str]) -> Resp {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "application_id": id, "payment_reference": format!("BANK-{id}") }))
        .collect();
    w.finance
        .post_json("/api/v1/fund-batches", json!({ "reference": reference, "items": items }))
        .await
}

#[tokio::test]
async fn m3_2_goes_through_every_stage_to_payment_with_the_right_agency() {
    let w = world().await;
    let a = apply(
        &w,
        &w.opc,
        "M3.2",
        json!({ "partner_is_university_or_institute": true, "project_id": "RD-1", "rd_spend": [
            { "date": day(&w, "01-10"), "amount_fen": 60_000_000, "note": "清华联合实验室" },
            { "date": day(&w, "02-10"), "amount_fen": 40_000_000 }
        ] }),
    )
    .await;
    let id = a["id"].as_str().unwrap();
    // M3.2: 10% of ¥1,000,000 of R&D spend.
    assert_eq!(a["engine_fen"], 10_000_000);
    assert_eq!(a["stage"], "committee_intake");
    // The agency of another clause family cannot open it, nor act on it.
    let other = &w.agencies["finance"];
    assert_eq!(
        other.get(&format!("/api/v1/applications/{id}")).await.code(),
        "application_other_agency"
    );
    assert_eq!(act(&w.committee, id, "pass", "", None).await.status, StatusCode::OK);
    let r = other
        .post_json(
            &format!("/api/v1/applications/{id}/review"),
            json!({ "version": 1, "action": "pass" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Finance cannot review at the agency stage; science and technology can.
    assert_eq!(act(&w.finance, id, "pass", "", None).await.code(), "application_wrong_role");
    let sci = &w.agencies["science_technology"];
    let view = app_of(sci, id).await;
    assert_eq!(view["engine"]["amount_fen"], 10_000_000, "the reviewer sees the engine's amount");
    assert!(!view["engine"]["trace"].as_array().unwrap().is_empty(), "and its trace");
    assert_eq!(view["files"].as_array().unwrap().len(), 3, "and the evidence");
    // 办件进度 on the applicant's page (issue 21 item 2): intake done, the agency's review
    // in progress, the decision and payment to come.
    let steps: Vec<(String, String)> = view["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().into(), s["state"].as_str().unwrap().into()))
        .collect();
    assert_eq!(steps.first(), Some(&("submit".to_string(), "done".to_string())));
    assert!(steps.contains(&("committee_intake".into(), "done".into())), "{steps:?}");
    assert!(steps.contains(&("agency_review".into(), "current".into())), "{steps:?}");
    assert_eq!(steps.last(), Some(&("done".to_string(), "todo".to_string())));
    let page = unescape(&w.opc.get(&format!("/applications/{id}")).await.text);
    assert!(page.contains("办件进度"), "{page}");
    assert!(
        page.contains(r#"data-step="agency_review" data-state="current" aria-current="step"><span class="step-name">部门审核</span> <span class="step-state">办理中</span>"#),
        "{page}"
    );
    // Its printable receipt (回执, issue 21 item 6): the number, when it was received, where
    // it stands; linked from the page; another agency cannot print it.
    assert!(page.contains(&format!(r#"href="/applications/{id}/receipt""#)));
    let receipt = unescape(&w.opc.get(&format!("/applications/{id}/receipt")).await.text);
    assert!(
        receipt.contains("申报回执") && receipt.contains(&format!(r#"<code id="receipt-number">{id}</code>"#)),
        "{receipt}"
    );
    assert!(receipt.contains("审核中 · 部门审核") && !receipt.contains("尚未提交"), "{receipt}");
    assert_eq!(
        other.get(&format!("/applications/{id}/receipt")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(act(sci, id, "pass", "", None).await.status, StatusCode::OK);
    // Committee decision: an adjusted amount needs a reason, and cannot exceed the engine's.
    let r = act(&w.committee, id, "approve", "", Some(9_000_000)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "reason_required".to_string())
    );
    let r = act(&w.committee, id, "approve", "too much", Some(12_000_000)).await;
    assert_eq!(r.code(), "amount_above_entitlement");
    let r = act(&w.committee, id, "approve", "一张发票不属于联合研发", Some(9_000_000)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        (r.json()["status"].as_str(), r.json()["decided_fen"].as_i64()),
        (Some("approved"), Some(9_000_000))
    );
    // Approval consumed the per-project annual cap.
    let cap = w
        .app
        .store
        .cap_use(&opchub_store::caps::CapKey {
            clause: "M3.2".into(),
            beneficiary: r.json()["beneficiary"].as_str().unwrap().into(),
            scope: "project_year".into(),
            period_key: format!("RD-1/{}", w.year),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cap.consumed_fen, 9_000_000);
    // The finance bureau pays; the export lists it in fen.
    let b = pay(&w, "FB-2026-001", &[id]).await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.json());
    assert_eq!(b.json()["paid_fen"], 9_000_000);
    let x = w
        .finance
        .get(&format!("/api/v1/fund-batches/{}/export", b.json()["id"].as_str().unwrap()))
        .await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.text.starts_with("PK"), "an XLSX (zip) file");
    // Paying twice is refused.
    assert_eq!(pay(&w, "FB-2026-002", &[id]).await.code(), "application_not_approved");
    // The applicant sees every status change with its date, and was notified.
    let mine = app_of(&w.opc, id).await;
    let steps: Vec<&str> = mine["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status_after"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["draft", "in_review", "in_review", "in_review", "approved", "paid"]);
    assert!(mine["timeline"].as_array().unwrap().iter().all(|e| e["at"].as_i64().unwrap() > 0));
    let n = w.opc.get("/api/v1/notifications").await.json()["items"].clone();
    let kinds: Vec<String> = n
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"application_paid".to_string()) && kinds.contains(&"application_approved".to_string()),
        "{kinds:?}"
    );
    // The agency was told when the application reached it.
    let sn = sci.get("/api/v1/notifications").await.json()["items"].clone();
    assert!(sn.as_array().unwrap().iter().any(|x| x["kind"] == "application_to_review"));
}

#[tokio::test]
async fn every_clause_family_reaches_payment_or_grant() {
    let w = world().await;
    let cases: Vec<(&Client, &str, Value, &str, i64)> = vec![
        // M1: the community's qualification (paid monthly by settlement, 免申即享).
        (&w.operator, "M1.1", json!({ "runs_opc_community": true }), "granted", 0),
        (&w.operator, "M1.2", json!({ "professional_operator": true }), "granted", 0),
        // M3.3: the award decided in review.
        (
            &w.opc,
            "M3.3",
            json!({ "quality_project": true, "project_id": "AW-1", "review_amount_fen": 20_000_000, "award_date": day(&w, "03-01") }),
            "paid",
            20_000_000,
        ),
        // M5.1: 50% of compliance fees.
        (
            &w.opc,
            "M5.1",
            json!({ "compliance_fees": [{ "date": day(&w, "04-01"), "amount_fen": 3_000_000 }] }),
            "paid",
            1_500_000,
        ),
        // M6.3: three months of interest in full.
        (
            &w.opc,
            "M6.3",
            json!({ "loans": [{ "id": "L1", "principal_fen": 100_000_000, "first_drawdown": day(&w, "01-01"), "interest": [
            { "month": format!("{}-01", w.year), "amount_fen": 350_000 }, { "month": format!("{}-02", w.year), "amount_fen": 350_000 }] }] }),
            "paid",
            700_000,
        ),
        // M6.2: the fund's investment, decided by the fund (no finance payment).
        (
            &w.opc,
            "M6.2",
            json!({ "hard_tech_high_potential": true, "review_amount_fen": 100_000_000, "decided_on": day(&w, "05-01") }),
            "granted",
            0,
        ),
        // M7.2: housing relief on the rent schedule; M7.1: the Fengze Plan.
        (
            &w.opc,
            "M7.2",
            json!({ "young_talent": true, "move_in": day(&w, "01-01"), "monthly_rent_fen": 400_000, "daily_rent_fen": 20_000 }),
            "granted",
            0,
        ),
        (&w.opc, "M7.1", json!({ "fengze_talent": true }), "granted", 0),
        // M8.1: a growth milestone on the OPC's record.
        (
            &w.opc,
            "M8.1",
            json!({ "milestone": "high_tech_enterprise", "milestone_date": day(&w, "06-01") }),
            "granted",
            0,
        ),
    ];
    let mut to_pay = vec![];
    for (who, clause, answers, end, fen) in &cases {
        let a = apply(&w, who, clause, answers.clone()).await;
        let id = a["id"].as_str().unwrap().to_string();
        let done = walk(&w, &id).await;
        let want = if *end == "paid" { "approved" } else { end };
        assert_eq!(done["status"], want, "{clause}: {done:?}");
        if *end == "paid" {
            assert_eq!(done["decided_fen"], *fen, "{clause}");
            to_pay.push(id);
        }
    }
    let ids: Vec<&str> = to_pay.iter().map(String::as_str).collect();
    let b = pay(&w, "FB-ALL", &ids).await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.json());
    assert_eq!(b.json()["paid_fen"], 20_000_000 + 1_500_000 + 700_000);
    // The committee's dashboard counts them per clause.
    let d = w.committee.get(&format!("/api/v1/funds/dashboard?year={}", w.year)).await.json();
    let m5 = d["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clause"] == "M5.1")
        .unwrap()
        .clone();
    assert_eq!((m5["paid"].as_i64(), m5["paid_fen"].as_i64()), (Some(1), Some(1_500_000)));
    assert_eq!(d["paid_fen"], 22_200_000);
    let x = w.committee.get(&format!("/api/v1/funds/dashboard/export?year={}", w.year)).await;
    assert!(
        x.status == StatusCode::OK && x.text.starts_with("PK"),
        "the dashboard exports as XLSX"
    );
    // The M8.1 milestone shows on the OPC's profile and in the committee's dashboard.
    assert!(w.opc.get("/my/company").await.text.contains("id=\"milestones\""));
    let page = w.committee.get("/committee/funds").await.text;
    assert!(page.contains("id=\"milestone-counts\""));
}

#[tokio::test]
async fn false_evidence_is_recovered_by_repayment_and_offset_and_bars_future_support() {
    let w = world().await;
    let fees = |amount: i64, md: &str| json!({ "compliance_fees": [{ "date": day(&w, md), "amount_fen": amount }] });
    let first = apply(&w, &w.opc, "M5.1", fees(4_000_000, "03-01")).await;
    let first_id = first["id"].as_str().unwrap();
    walk(&w, first_id).await;
    assert_eq!(pay(&w, "FB-R1", &[first_id]).await.status, StatusCode::CREATED);
    let second = apply(&w, &w.opc, "M5.1", fees(1_000_000, "05-01")).await;
    let second_id = second["id"].as_str().unwrap();
    assert_eq!(walk(&w, second_id).await["status"], "approved");
    // The committee finds the first application's invoices false (F2).
    let files = app_of(&w.committee, first_id).await["files"].clone();
    let invoices = files.as_array().unwrap().iter().find(|f| f["slot"] == 1).unwrap()["id"].clone();
    let r = w
        .committee
        .post_json(
            &format!("/api/v1/applications/{first_id}/recovery"),
            json!({ "kind": "false_evidence", "file_ids": [invoices], "reason": "发票系伪造" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let order = r.json();
    // Without the fees the engine pays nothing: the whole ¥20,000 is recovered.
    assert_eq!(
        (
            order["paid_fen"].as_i64(),
            order["recomputed_fen"].as_i64(),
            order["amount_fen"].as_i64()
        ),
        (Some(2_000_000), Some(0), Some(2_000_000))
    );
    assert_eq!(order["status"], "open");
    let oid = order["id"].as_str().unwrap();
    // Part repaid by the beneficiary, recorded by finance; more than outstanding is refused.
    let r = w
        .finance
        .post_json(
            &format!("/api/v1/recoveries/{oid}/repay"),
            json!({ "amount_fen": 2_500_000, "reference": "RP-0" }),
        )
        .await;
    assert_eq!(r.code(), "validation_failed");
    let r = w
        .finance
        .post_json(
            &format!("/api/v1/recoveries/{oid}/repay"),
            json!({ "amount_fen": 1_200_000, "reference": "RP-1" }),
        )
        .await;
    assert_eq!((r.status, r.json()["settled_fen"].as_i64()), (StatusCode::OK, Some(1_200_000)));
    // ¥8,000 still owed: the next payment (¥5,000) is offset in full, ¥3,000 stays open.
    let b = pay(&w, "FB-R2", &[second_id]).await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.json());
    assert_eq!(
        (
            b.json()["approved_fen"].as_i64(),
            b.json()["offset_fen"].as_i64(),
            b.json()["paid_fen"].as_i64()
        ),
        (Some(500_000), Some(500_000), Some(0))
    );
    let o = w.committee.get("/api/v1/recoveries").await.json();
    let o = o.as_array().unwrap().iter().find(|x| x["id"] == oid).unwrap().clone();
    assert_eq!((o["settled_fen"].as_i64(), o["status"].as_str()), (Some(1_700_000), Some("open")));
    // F1, S5: recovered money gives its budget back — ¥20,000 + ¥5,000 approved, ¥17,000 of it
    // recovered (repaid and offset), so M5.1 has ¥8,000 committed against its yearly budget.
    let year = i64::from(w.year);
    assert_eq!(w.app.store.approved_in_year("M5.1", year).await.unwrap(), 800_000);
    assert_eq!(w.app.store.committed_in_year(year).await.unwrap().0, 800_000);
    // The beneficiary is now on the platform's no-support list: a new application is ineligible.
    let third = apply(&w, &w.opc, "M5.1", fees(1_000_000, "06-01")).await;
    assert_eq!(third["engine_fen"], 0);
    let view = app_of(&w.committee, third["id"].as_str().unwrap()).await;
    assert_eq!(view["engine"]["eligible"], false, "{:?}", view["engine"]["reasons"]);
    // The applicant was told.
    let n = w.opc.get("/api/v1/notifications").await.json()["items"].clone();
    assert!(n.as_array().unwrap().iter().any(|x| x["kind"] == "application_recovery"));
}

#[tokio::test]
async fn two_reviewers_deciding_at_once_one_wins_and_the_cap_is_consumed_once() {
    let w = world().await;
    let a = apply(
        &w,
        &w.opc,
        "M5.1",
        json!({ "compliance_fees": [{ "date": day(&w, "03-01"), "amount_fen": 2_000_000 }] }),
    )
    .await;
    let id = a["id"].as_str().unwrap().to_string();
    act(&w.committee, &id, "pass", "", None).await;
    act(&w.agencies["commerce"], &id, "pass", "", None).await;
    let v = app_of(&w.committee, &id).await["application"]["version"].clone();
    let body = json!({ "version": v, "action": "approve" });
    let path = format!("/api/v1/applications/{id}/review");
    let (r1, r2) = tokio::join!(
        w.committee.post_json(&path, body.clone()),
        w.committee2.post_json(&path, body.clone())
    );
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} / {}", r1.text, r2.text);
    let loser = if r1.status == StatusCode::CONFLICT { r1 } else { r2 };
    assert_eq!(loser.code(), "application_changed");
    let a = app_of(&w.committee, &id).await["application"].clone();
    let cap = w
        .app
        .store
        .cap_use(&opchub_store::caps::CapKey {
            clause: "M5.1".into(),
            beneficiary: a["beneficiary"].as_str().unwrap().into(),
            scope: "year".into(),
            period_key: w.year.to_string(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cap.consumed_fen, 1_000_000, "consumed once");
    let events = app_of(&w.opc, &id).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approve")
        .count();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn two_person_rule_conflicts_of_interest_and_bad_input_change_nothing() {
    let w = world().await;
    // A clause the applicant's role cannot claim.
    let r = w
        .opc
        .post_json(
            "/api/v1/applications",
            json!({ "clause": "M1.1", "answers": { "runs_opc_community": true } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "clause_not_for_role".to_string()));
    let r = w
        .opc
        .post_json("/api/v1/applications", json!({ "clause": "M2.2", "answers": {} }))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["clause"], "not_applied_for");
    // Platform facts cannot be typed in; negative amounts are refused.
    let r = w
        .opc
        .post_json(
            "/api/v1/applications",
            json!({ "clause": "M5.1", "answers": { "zone": "hexi_area", "compliance_fees": [] } }),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["zone"], "filled_by_platform");
    let r = w
        .opc
        .post_json(
            "/api/v1/applications",
            json!({ "clause": "M5.1", "answers": { "compliance_fees": [{ "date": day(&w, "01-01"), "amount_fen": -1 }] } }),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["compliance_fees[0].amount_fen"], "negative");

    let r = w
        .opc
        .post_json("/api/v1/applications", json!({ "clause": "M5.1", "year": w.year, "answers": { "compliance_fees": [{ "date": day(&w, "02-01"), "amount_fen": 1_000_000 }] } }))
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    // A file whose type lies about its content; an oversize file; an unknown type.
    let r = upload(
        &w.opc,
        &id,
        0,
        "contract.pdf",
        "application/pdf",
        PNG.to_vec(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.code(), "file_type_mismatch");
    let big = [PDF.to_vec(), vec![b' '; 21 * 1024 * 1024]].concat();
    let r = upload(&w.opc, &id, 0, "big.pdf", "application/pdf", big, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(r.code(), "evidence_too_large");
    upload(
        &w.opc,
        &id,
        0,
        "tool.exe",
        "application/octet-stream",
        b"MZ\x90\x00".to_vec(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(app_of(&w.opc, &id).await["files"].as_array().unwrap().is_empty(), "nothing stored");
    // A missing required document: the submission names what is missing.
    upload(&w.opc, &id, 0, "contract.pdf", "application/pdf", PDF.to_vec(), StatusCode::CREATED).await;
    let v = app_of(&w.opc, &id).await["application"]["version"].clone();
    let r = w
        .opc
        .post_json(&format!("/api/v1/applications/{id}/submit"), json!({ "version": v }))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "evidence_missing".to_string())
    );
    assert_eq!(app_of(&w.opc, &id).await["application"]["status"], "draft");
    // Someone else's application is not there for another applicant.
    assert_eq!(
        w.operator.get(&format!("/api/v1/applications/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    for slot in 1..4 {
        upload(&w.opc, &id, slot, "doc.pdf", "application/pdf", PDF.to_vec(), StatusCode::CREATED).await;
    }
    let v = app_of(&w.opc, &id).await["application"]["version"].clone();
    assert_eq!(
        w.opc
            .post_json(&format!("/api/v1/applications/{id}/submit"), json!({ "version": v }))
            .await
            .status,
        StatusCode::OK
    );
    // Paying an application that is not approved.
    assert_eq!(pay(&w, "FB-X", &[&id]).await.code(), "application_not_approved");
    // A committee member with a conflict of interest steps aside and can no longer act.
    let r = act(&w.committee, &id, "decline", "申请人是我的亲属", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(act(&w.committee, &id, "pass", "", None).await.code(), "application_declined_by_you");
    assert_eq!(act(&w.committee2, &id, "pass", "", None).await.status, StatusCode::OK);
    act(&w.agencies["commerce"], &id, "pass", "", None).await;
    // A rejection needs a reason.
    assert_eq!(act(&w.committee2, &id, "reject", " ", None).await.code(), "reason_required");
    assert_eq!(act(&w.committee2, &id, "approve", "", None).await.status, StatusCode::OK);
    // The two-person rule, enforced where payment is recorded: whoever decided cannot pay.
    let decider = app_of(&w.committee, &id).await["application"]["decided_by"]
        .as_str()
        .unwrap()
        .to_string();
    let err = w
        .app
        .store
        .pay_applications(&Actor::user(&decider, "finance"), "FB-SELF", &[(id.clone(), "B-1".into())])
        .await
        .unwrap_err();
    assert!(
        matches!(err, opchub_store::StoreError::Conflict("application_two_person_rule")),
        "{err:?}"
    );
    assert_eq!(app_of(&w.opc, &id).await["application"]["status"], "approved", "nothing changed");
}

/// The M3.2 page form with one R&D spend line of `amount` yuan.
async fn post_rd_form(w: &World, amount: &str) -> Resp {
    let (year, date) = (w.year.to_string(), day(w, "01-05"));
    let fields = [
        ("clause", "M3.2"),
        ("year", year.as_str()),
        ("partner_is_university_or_institute", "on"),
        ("project_id", "RD-9"),
        ("rd_spend.0.date", date.as_str()),
        ("rd_spend.0.amount", amount),
    ];
    w.opc.post_form("/applications/new", &fields).await
}

#[tokio::test]
async fn pages_generate_forms_explain_errors_and_show_each_role_its_part() {
    let w = world().await;
    let list = w.opc.get("/applications").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.text.contains("/applications/new?clause=M3.2") && !list.text.contains("clause=M1.1"),
        "an OPC is offered its own clauses"
    );
    let form = w.opc.get("/applications/new?clause=M3.2").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in [
        "partner_is_university_or_institute",
        "project_id",
        "rd_spend.0.date",
        "rd_spend.0.amount",
    ] {
        assert!(form.text.contains(&format!("name=\"{field}\"")), "form asks for {field}");
    }
    // A negative amount in yuan is explained on the form, and nothing is created.
    let bad = post_rd_form(&w, "-100").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text.contains("id=\"form-error\"") && bad.text.contains("rd_spend[0].amount_fen"),
        "{}",
        bad.text
    );
    assert!(w.opc.get("/api/v1/applications").await.json().as_array().unwrap().is_empty());
    let ok = post_rd_form(&w, "123,456.78").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let page = w.opc.get(&ok.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("class=\"evidence-file\"") && page.text.contains("id=\"submit-application\""));
    // 10% of ¥123,456.78, shown before submission.
    assert!(page.text.contains("¥12,345.68"), "engine amount on the page");
    // Issue 21: the answers and the trace read in Chinese — labels and yes/no, not codes.
    let facts = page
        .text
        .split("id=\"platform-facts\">")
        .nth(1)
        .unwrap()
        .split("</dl>")
        .next()
        .unwrap();
    assert!(
        facts.contains("<dt>合作方为高校或科研院所</dt><dd>是</dd>") && facts.contains("<dt>研发投入</dt><dd>1 条</dd>"),
        "{facts}"
    );
    assert!(
        !facts.contains("partner_is_university_or_institute") && !facts.contains("true"),
        "{facts}"
    );
    let trace = page.text.split("id=\"trace\">").nth(1).unwrap().split("</ol>").next().unwrap();
    assert!(
        trace.contains("研发投入：") && trace.contains("计入 1 条，合计 ¥123,456.78"),
        "{trace}"
    );
    assert!(
        trace.contains("¥123,456.78 × 10% = ¥12,345.678") && trace.contains("四舍五入到分"),
        "{trace}"
    );
    assert!(!trace.contains("holds:") && !trace.contains("rounding"), "{trace}");
    // The evidence items are named in Chinese (the policy file's evidence_zh), not in English.
    let evidence = page.text.split("id=\"evidence\"").nth(1).unwrap().split("</ol>").next().unwrap();
    assert!(
        evidence.contains("与高校或科研院所的合作协议") && evidence.contains("研发费用专项审计报告"),
        "{evidence}"
    );
    assert!(
        !evidence.contains("cooperation agreement") && !evidence.contains("audit report"),
        "{evidence}"
    );
    // The history (办件进度) names each step in words, not by its code.
    assert!(page.text.contains("<span data-action=\"created\">创建草稿</span>"), "{}", page.text);
    // Submitting without the documents is explained on the page.
    let id = ok.location().rsplit('/').next().unwrap().to_string();
    let sub = w.opc.post_form(&format!("/applications/{id}/submit"), &[("version", "1")]).await;
    assert_eq!(sub.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(sub.text.contains("id=\"form-error\""));
    for (who, path) in [
        (&w.committee, "/applications"),
        (&w.committee, "/committee/funds"),
        (&w.finance, "/finance/payments"),
        (&w.agencies["commerce"], "/applications"),
    ] {
        let r = who.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn loan_records_generate_monthly_claims_and_housing_gives_each_months_rent_due() {
    let w = world().await;
    // M6.3: a loan, its drawdown and two months of interest statements.
    let l = w
        .opc
        .post_json(
            "/api/v1/loans",
            json!({ "bank": "北京银行丰台支行", "contract_no": "BJ-2027-8", "principal_fen": 100_000_000 }),
        )
        .await;
    assert_eq!(l.status, StatusCode::CREATED, "{:?}", l.json());
    let lid = l.json()["id"].as_str().unwrap().to_string();
    let entry =
        |kind: &str, d: String, month: Option<String>, amount: i64| json!({ "kind": kind, "day": d, "month": month, "amount_fen": amount });
    let path = format!("/api/v1/loans/{lid}/entries");
    assert_eq!(
        w.opc
            .post_json(&path, entry("drawdown", day(&w, "01-01"), None, 100_000_000))
            .await
            .status,
        StatusCode::CREATED
    );
    // More than the contract's principal, or interest without its month, is refused.
    assert_eq!(
        w.opc.post_json(&path, entry("drawdown", day(&w, "01-02"), None, 1)).await.json()["error"]["field_codes"]["amount_fen"],
        "above_principal"
    );
    assert_eq!(
        w.opc
            .post_json(&path, entry("interest", day(&w, "02-01"), None, 350_000))
            .await
            .json()["error"]["field_codes"]["month"],
        "required"
    );
    for (m, fen) in [("01", 350_000), ("02", 330_000)] {
        let r = w
            .opc
            .post_json(
                &path,
                entry("interest", day(&w, &format!("{m}-28")), Some(format!("{}-{m}", w.year)), fen),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    let again = w
        .opc
        .post_json(&path, entry("interest", day(&w, "01-29"), Some(format!("{}-01", w.year)), 1))
        .await;
    assert_eq!(again.code(), "interest_month_recorded");
    let c = w.opc.get(&format!("/api/v1/loans/claims?year={}", w.year)).await.json();
    let subsidies: Vec<i64> = c["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subsidy_fen"].as_i64().unwrap())
        .collect();
    assert_eq!(subsidies, [350_000, 330_000], "interest in full, month by month");
    // The M6.3 form is pre-filled from the loan records.
    let pre = w.opc.get("/api/v1/applications/prefill?clause=M6.3").await.json();
    assert_eq!(pre["suggested"]["loans"][0]["interest"].as_array().unwrap().len(), 2);
    // February's claim becomes an application with that month's statement only.
    let claim = w
        .opc
        .post_json("/api/v1/loans/claims", json!({ "month": format!("{}-02", w.year) }))
        .await;
    assert_eq!(claim.status, StatusCode::CREATED, "{:?}", claim.json());
    let view = app_of(&w.opc, claim.json()["id"].as_str().unwrap()).await;
    assert_eq!(view["engine"]["amount_fen"], 330_000);

    // M7.2: a granted housing application, an apartment, the assignment and the rent due.
    let a = apply(
        &w,
        &w.opc,
        "M7.2",
        json!({ "young_talent": true, "move_in": day(&w, "01-01"), "monthly_rent_fen": 400_000, "daily_rent_fen": 20_000 }),
    )
    .await;
    let app_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(walk(&w, &app_id).await["status"], "granted");
    let hr = &w.agencies["human_resources"];
    // Only the human-resources agency (or the committee) manages housing.
    let r = w.agencies["finance"]
        .post_json(
            "/api/v1/apartments",
            json!({ "name": "x", "address": "y", "monthly_rent_fen": 1, "daily_rent_fen": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let apt = hr
        .post_json(
            "/api/v1/apartments",
            json!({ "name": "丰泽人才公寓 3-201", "address": "丰台区丰泽路1号", "monthly_rent_fen": 400_000, "daily_rent_fen": 20_000 }),
        )
        .await;
    assert_eq!(apt.status, StatusCode::CREATED, "{:?}", apt.json());
    let apt_id = apt.json()["id"].as_str().unwrap().to_string();
    let body = json!({ "apartment_id": apt_id, "application_id": app_id, "move_in": day(&w, "01-01") });
    let (r1, r2) = tokio::join!(
        hr.post_json("/api/v1/housing/assignments", body.clone()),
        w.committee.post_json("/api/v1/housing/assignments", body.clone())
    );
    let mut st = [r1.status, r2.status];
    st.sort();
    assert_eq!(
        st,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "one assignment wins: {} / {}",
        r1.text,
        r2.text
    );
    let assignment = if r1.status == StatusCode::CREATED { r1.json() } else { r2.json() };
    let sched = w
        .opc
        .get(&format!(
            "/api/v1/housing/assignments/{}/schedule?year={}",
            assignment["id"].as_str().unwrap(),
            w.year
        ))
        .await;
    assert_eq!(sched.status, StatusCode::OK, "{:?}", sched.json());
    let months = sched.json()["months"].as_array().unwrap().clone();
    assert!(!months.is_empty());
    // January: 7 free days and the free months begin; each month's due + relief is its rent.
    assert!(months
        .iter()
        .all(|m| m["due_fen"].as_i64().unwrap() + m["relief_fen"].as_i64().unwrap() == m["rent_fen"].as_i64().unwrap()));
    assert_eq!(months[0]["due_fen"], 0, "January is free");

    // M8.1: a granted milestone shows in the OPC's record and the committee's statistics.
    let g = apply(
        &w,
        &w.opc,
        "M8.1",
        json!({ "milestone": "specialised_innovative", "milestone_date": day(&w, "06-01") }),
    )
    .await;
    assert_eq!(walk(&w, g["id"].as_str().unwrap()).await["status"], "granted");
    let mine = w.opc.get("/api/v1/milestones").await.json();
    assert_eq!(mine["items"][0]["kind"], "specialised_innovative");
    let stats = w.committee.get("/api/v1/milestones").await.json();
    let n = stats["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == "specialised_innovative")
        .unwrap()[1]
        .clone();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn record_pages_take_yuan_and_show_claims_rent_and_milestones() {
    let w = world().await;
    let r = w
        .opc
        .post_form(
            "/my/records/loans",
            &[("bank", "北京银行"), ("contract_no", "PG-1"), ("principal", "1,000,000")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let loan = w.opc.get("/api/v1/loans").await.json()[0].clone();
    assert_eq!(loan["principal_fen"], 100_000_000);
    let lid = loan["id"].as_str().unwrap();
    let path = format!("/my/records/loans/{lid}/entries");
    let r = w
        .opc
        .post_form(&path, &[("kind", "drawdown"), ("day", &day(&w, "01-01")), ("amount", "1000000")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let month = format!("{}-01", w.year);
    let r = w
        .opc
        .post_form(
            &path,
            &[
                ("kind", "interest"),
                ("day", &day(&w, "01-31")),
                ("month", &month),
                ("amount", "3500"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    // An amount that is not one, and a drawdown above the principal, are explained on the page.
    let typo = w
        .opc
        .post_form(&path, &[("kind", "repayment"), ("day", &day(&w, "02-01")), ("amount", "十元")])
        .await;
    assert_eq!(typo.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        typo.text.contains("id=\"form-error\"") && typo.text.contains("amount_fen"),
        "{}",
        typo.text
    );
    let bad = w
        .opc
        .post_form(&path, &[("kind", "drawdown"), ("day", &day(&w, "02-01")), ("amount", "1")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("id=\"form-error\""));
    let page = w.opc.get("/my/records").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("id=\"claims\"") && page.text.contains("¥3,500.00"),
        "the month's claim is listed"
    );
    let c = w.opc.post_form("/my/records/claims", &[("month", &month)]).await;
    assert_eq!(c.status, StatusCode::SEE_OTHER, "{}", c.text);
    assert!(c.location().starts_with("/applications/"));
    // Housing pages for the human-resources agency.
    let hr = &w.agencies["human_resources"];
    let r = hr
        .post_form(
            "/housing/apartments",
            &[
                ("name", "人才公寓 1-101"),
                ("address", "丰台区"),
                ("monthly_rent", "4000"),
                ("daily_rent", "200"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let h = hr.get("/housing").await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.text.contains("人才公寓 1-101") && h.text.contains("¥4,000.00"));
}

#[tokio::test]
async fn evidence_changed_on_disk_is_detected_and_oversize_uploads_are_refused_unread() {
    let w = world().await;
    let r = w
        .opc
        .post_json("/api/v1/applications", json!({ "clause": "M5.1", "year": w.year, "answers": { "compliance_fees": [{ "date": day(&w, "02-01"), "amount_fen": 1_000 }] } }))
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let f = upload(&w.opc, &id, 0, "contract.pdf", "application/pdf", PDF.to_vec(), StatusCode::CREATED)
        .await
        .json();
    let (fid, sha) = (f["id"].as_str().unwrap().to_string(), f["sha256"].as_str().unwrap().to_string());
    let url = format!("/api/v1/applications/{id}/files/{fid}");
    let ok = w.committee.get(&url).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.text.as_bytes(), PDF);
    // The test server runs in this process: its evidence lives in the per-process directory.
    let path = std::env::temp_dir()
        .join(format!("opchub-evidence-{}", std::process::id()))
        .join(&sha[..2])
        .join(&sha);
    std::fs::write(&path, b"%PDF-1.7 edited afterwards").unwrap();
    let changed = w.committee.get(&url).await;
    assert_eq!(
        (changed.status, changed.code()),
        (StatusCode::CONFLICT, "evidence_changed".to_string())
    );
    std::fs::write(&path, PDF).unwrap();
    // A 200 MB upload: refused as too large, and nothing is stored.
    let big = vec![b' '; 200 * 1024 * 1024];
    let r = w
        .opc
        .send(
            Method::POST,
            &format!("/api/v1/applications/{id}/files?slot=1&name=huge.pdf"),
            Some(Body::Raw("application/pdf", big)),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "evidence_too_large".to_string())
    );
    assert_eq!(app_of(&w.opc, &id).await["files"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_application_past_its_stage_deadline_shows_as_overdue() {
    let w = world().await;
    let a = apply(
        &w,
        &w.opc,
        "M5.1",
        json!({ "compliance_fees": [{ "date": day(&w, "03-01"), "amount_fen": 100_000 }] }),
    )
    .await;
    let id = a["id"].as_str().unwrap();
    let overdue = |c: &Client| {
        let c = c.clone();
        async move { c.get("/api/v1/applications?overdue=true").await.json().as_array().unwrap().len() }
    };
    assert_eq!(overdue(&w.committee).await, 0);
    // At intake for 16 days: past the policy file's 15-day stage deadline (review_stage_days).
    sqlx::query("UPDATE applications SET stage_since = $1 WHERE id = $2")
        .bind(opchub_store::now_ms() - 16 * 86_400_000)
        .bind(id)
        .execute(w.app.store.pool())
        .await
        .unwrap();
    assert_eq!(overdue(&w.committee).await, 1);
    let v = app_of(&w.committee, id).await;
    assert_eq!((v["overdue"].as_bool(), v["days_at_stage"].as_i64()), (Some(true), Some(16)));
    assert!(w.committee.get("/applications?overdue=1").await.text.contains(id));
    let d = w.committee.get(&format!("/api/v1/funds/dashboard?year={}", w.year)).await.json();
    assert_eq!(d["overdue"], 1);
    // Acting on it starts the next stage's clock.
    act(&w.committee, id, "pass", "", None).await;
    assert_eq!(overdue(&w.committee).await, 0);
}

#[tokio::test]
async fn s3_register_names_level_and_item_refuses_the_same_item_twice_and_the_trace_names_the_grant() {
    let w = world().await;
    let a = apply(
        &w,
        &w.opc,
        "M5.1",
        json!({ "compliance_fees": [{ "date": day(&w, "03-01"), "amount_fen": 2_000_000 }] }),
    )
    .await;
    let opc_id = a["beneficiary"].as_str().unwrap().to_string();
    let y = w.year.to_string();
    // On the register page, in yuan, by the committee.
    let r = w
        .committee
        .post_form(
            "/committee/overlaps",
            &[
                ("beneficiary", &opc_id),
                ("overlap_group", "compliance_services"),
                ("year", &y),
                ("level", "municipal"),
                ("policy", "北京市合规服务券"),
                ("item_key", "INV-2027-0001"),
                ("amount", "3,000"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    // The same invoice again is a likely double claim; a level not in the list is refused.
    let again = w
        .committee
        .post_json(
            "/api/v1/overlap-grants",
            json!({ "beneficiary": opc_id, "overlap_group": "compliance_services", "year": w.year,
            "policy": "另一个政策", "level": "district", "item_key": "INV-2027-0001", "amount_fen": 1 }),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "overlap_item_recorded".to_string())
    );
    let bad = w
        .committee
        .post_json(
            "/api/v1/overlap-grants",
            json!({ "beneficiary": opc_id, "overlap_group": "compliance_services", "year": w.year,
            "policy": "x", "level": "galactic", "amount_fen": 1 }),
        )
        .await;
    assert_eq!(bad.json()["error"]["field_codes"]["level"], "not_an_option");
    let page = w.committee.get("/committee/overlaps").await;
    assert!(page.text.contains("INV-2027-0001") && page.text.contains("¥3,000.00"));
    // S3 top-up: ¥10,000 own entitlement less ¥3,000 from the municipal grant, named in the trace.
    let v = app_of(&w.committee, a["id"].as_str().unwrap()).await;
    assert_eq!(v["engine"]["amount_fen"], 700_000);
    let trace = v["engine"]["trace"].to_string();
    assert!(trace.contains("municipal 北京市合规服务券 INV-2027-0001"), "{trace}");
}
