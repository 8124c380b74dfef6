//! Engine fidelity through the HTTP API (issue 17): M1.1 counts occupied workstations by day
//! (10 days of a 31-day month are 10/31 of a workstation-month); F1 yearly budgets bound a
//! settlement batch as a whole, to the fen, and bound the approvals of a clause paid on
//! application (`clause_budget_exceeded`, with the headroom); a policy-wide budget is shared by
//! the applications and the settlement of the same year (`policy_budget_exceeded`, the batch
//! shares out what the applications left, and a change in them makes a draft stale).
//! Runs on SQLite, and on PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use chrono::NaiveDate;
use opchub_domain::{Role, Zone};
use opchub_store::Actor;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";

async fn start(policy: opchub_policy::Policy) -> TestApp {
    let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
    TestApp::start_full(
        Arc::new(fresh_db().await),
        key,
        Some(policy),
        opchub_web::skills::SkillsConfig::testing(),
    )
    .await
}

fn jan(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(this_year(), 1, day).unwrap()
}

/// Milliseconds of noon (Beijing) on `d`.
fn noon_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis() - 8 * 3_600_000
}

/// Imports empty F3 lists, dated the 1st of January: a settlement as of a past day uses the list
/// versions imported by then.
async fn import_empty_lists(app: &TestApp, committee: &Client) {
    crate::common::import_empty_lists(committee).await;
    sqlx::query("UPDATE exclusion_lists SET imported_at = $1")
        .bind(noon_ms(jan(1)))
        .execute(app.store.pool())
        .await
        .unwrap();
}

/// A community whose one free workstation an OPC has occupied since `since` (a day this year);
/// returns the operator's account id.
async fn community_occupied_since(app: &TestApp, n: u32, since: NaiveDate) -> String {
    let (community, ws) = app.community(Zone::HexiArea, 1).await;
    let operator_id = app.store.community(&community).await.unwrap().operator_user_id;
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
        .post_json(
            "/api/v1/registrations",
            registration(&format!("ws{n}"), &uscc(800 + n), "hexi_area", &ws[0]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let opc = r.json()["opc"]["id"].as_str().unwrap().to_string();
    // The OPC took its workstation when it registered: on `since`.
    sqlx::query("UPDATE opcs SET created_at = $1 WHERE id = $2")
        .bind(noon_ms(since))
        .bind(&opc)
        .execute(app.store.pool())
        .await
        .unwrap();
    operator_id
}

async fn settle_m1_1(committee: &Client, as_of: NaiveDate) -> Vec<Value> {
    let r = committee
        .post_json(
            "/api/v1/settlements",
            json!({ "year": this_year(), "clauses": ["M1.1"], "as_of": as_of.to_string() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let id = r.json()["batch"]["id"].as_str().unwrap().to_string();
    committee.get(&format!("/api/v1/settlements/{id}")).await.json()["lines"]
        .as_array()
        .unwrap()
        .clone()
}

fn line<'a>(lines: &'a [Value], who: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["beneficiary"] == who)
        .unwrap_or_else(|| panic!("no line for {who} in {lines:#?}"))
}

#[tokio::test]
async fn m1_1_counts_a_workstation_occupied_ten_days_of_january_as_ten_31sts() {
    let app = start(preview_policy()).await;
    let (committee, _) = app.user("cmte", Role::Committee).await;
    import_empty_lists(&app, &committee).await;
    let op = community_occupied_since(&app, 1, jan(22)).await;
    let lines = settle_m1_1(&committee, jan(31)).await;
    let l = line(&lines, &op);
    // ¥1,000 (default) × 10/31 = ¥322.5806… → ¥322.58, not a whole ¥1,000 month.
    assert_eq!(
        (l["eligible"].as_str(), l["amount_fen"].as_i64()),
        (Some("yes"), Some(32_258)),
        "{l:#?}"
    );
    let d: Value = serde_json::from_str(l["decision"].as_str().unwrap()).unwrap();
    let trace = d["trace"].to_string();
    assert!(trace.contains("1 × 10/31 days"), "{trace}");
}

#[tokio::test]
async fn a_policy_wide_budget_bounds_the_batch_to_the_fen_and_the_trace_says_the_factor() {
    let year = this_year();
    let policy = preview_policy()
        .amend(
            "budget-test",
            jan(1),
            None,
            "yearly_budget",
            &toml::Value::String("500.00".into()),
            "test",
        )
        .unwrap();
    let app = start(policy).await;
    let (committee, _) = app.user("cmte", Role::Committee).await;
    import_empty_lists(&app, &committee).await;
    // Entitlements ¥322.58 (10/31) and ¥1,000.00 (the whole month): ¥1,322.58 against ¥500.00.
    let a = community_occupied_since(&app, 1, jan(22)).await;
    let b = community_occupied_since(&app, 2, jan(1)).await;
    let lines = settle_m1_1(&committee, jan(31)).await;
    let (la, lb) = (line(&lines, &a), line(&lines, &b));
    let (fa, fb) = (la["amount_fen"].as_i64().unwrap(), lb["amount_fen"].as_i64().unwrap());
    assert_eq!(fa + fb, 50_000, "the whole batch is the budget, never a fen over: {fa} + {fb}");
    // 50,000 × 32,258 ÷ 132,258 = 12,195.0…; 50,000 × 100,000 ÷ 132,258 = 37,804.9… → 12,195 + 37,805.
    assert_eq!((fa, fb), (12_195, 37_805));
    let d: Value = serde_json::from_str(lb["decision"].as_str().unwrap()).unwrap();
    let trace = d["trace"].to_string();
    assert!(
        trace.contains("policy-wide yearly budget ¥500.00 for ¥1,322.58 of entitlements: factor 0.37804896"),
        "{trace}"
    );
    let _ = year;
}

/// Two OPCs in a tax-registered community each apply for M3.2 on ¥1,000,000 of joint R&D spend
/// (¥100,000 each), walked to the committee's decision; returns the committee and the ids.
async fn rd_applications_at_decision(app: &TestApp) -> (Client, Vec<String>) {
    let (committee, _) = app.user("cmte", Role::Committee).await;
    import_empty_lists(app, &committee).await;
    let (agency, agency_id) = app.user("ag-sci", Role::Agency).await;
    app.store
        .set_user_agency(&Actor::system(), &agency_id, "science_technology")
        .await
        .unwrap();
    let (community, ws) = app.community(Zone::HexiArea, 2).await;
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
    let mut opcs = vec![];
    for (i, name) in ["rda", "rdb"].into_iter().enumerate() {
        let r = app
            .client()
            .post_json(
                "/api/v1/registrations",
                registration(name, &uscc(900 + i as u32), "hexi_area", &ws[i]),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        let c = app.client();
        c.login(name, PASSWORD).await;
        opcs.push(c);
    }
    let year = this_year();
    // Each applies for M3.2 on ¥1,000,000 of joint R&D spend: ¥100,000 each, ¥200,000 together.
    let mut ids = vec![];
    for (i, who) in opcs.iter().enumerate() {
        let r = who
            .post_json(
                "/api/v1/applications",
                json!({ "clause": "M3.2", "year": year, "answers": {
                    "partner_is_university_or_institute": true, "project_id": format!("RD-{i}"),
                    "rd_spend": [{ "date": format!("{year}-01-10"), "amount_fen": 100_000_000 }] } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let spec = who.get(&format!("/api/v1/applications/{id}")).await.json()["form"].clone();
        for slot in 0..spec["evidence"].as_array().unwrap().len() {
            let u = who
                .send(
                    Method::POST,
                    &format!("/api/v1/applications/{id}/files?slot={slot}&name=e.pdf"),
                    Some(Body::Raw("application/pdf", PDF.to_vec())),
                )
                .await;
            assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
        }
        let v = who.get(&format!("/api/v1/applications/{id}")).await.json()["application"]["version"].clone();
        let s = who
            .post_json(&format!("/api/v1/applications/{id}/submit"), json!({ "version": v }))
            .await;
        assert_eq!(s.status, StatusCode::OK, "{:?}", s.json());
        assert_eq!(s.json()["engine_fen"], 10_000_000);
        ids.push(id);
    }
    let walk_to_decision = |id: String| {
        let (committee, agency) = (committee.clone(), agency.clone());
        async move {
            for _ in 0..6 {
                let a = committee.get(&format!("/api/v1/applications/{id}")).await.json()["application"].clone();
                if a["stage"] == "committee_decision" {
                    return;
                }
                let who = if a["stage"] == "agency_review" { &agency } else { &committee };
                let v = a["version"].clone();
                let r = who
                    .post_json(
                        &format!("/api/v1/applications/{id}/review"),
                        json!({ "version": v, "action": "pass" }),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
            }
            panic!("{id} never reached the committee decision");
        }
    };
    for id in &ids {
        walk_to_decision(id.clone()).await;
    }
    (committee, ids)
}

async fn decide(committee: &Client, id: &str, action: &str) -> Resp {
    let v = committee.get(&format!("/api/v1/applications/{id}")).await.json()["application"]["version"].clone();
    committee
        .post_json(
            &format!("/api/v1/applications/{id}/review"),
            json!({ "version": v, "action": action }),
        )
        .await
}

#[tokio::test]
async fn an_approval_past_a_clauses_yearly_budget_is_refused_with_the_headroom() {
    let policy = preview_policy()
        .amend(
            "budget-test",
            jan(1),
            Some("M3.2"),
            "yearly_budget",
            &toml::Value::String("150000".into()),
            "test",
        )
        .unwrap();
    let app = start(policy).await;
    let (committee, ids) = rd_applications_at_decision(&app).await;
    let act = |who: &Client, id: &str, action: &'static str| {
        let (who, id) = (who.clone(), id.to_string());
        async move { decide(&who, &id, action).await }
    };
    let first = act(&committee, &ids[0], "approve").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json());
    assert_eq!(first.json()["decided_fen"], 10_000_000);
    // The second ¥100,000 would take M3.2's approved total to ¥200,000, past its ¥150,000 budget.
    let before = committee.get(&format!("/api/v1/applications/{}", ids[1])).await.json()["application"].clone();
    let second = act(&committee, &ids[1], "approve").await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "clause_budget_exceeded".to_string()),
        "{:?}",
        second.json()
    );
    let err = second.json()["error"].clone();
    assert_eq!(err["field_codes"]["amount_fen"], "clause_budget_exceeded");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("¥50,000.00"), "the headroom is shown: {message}");
    assert!(err["fields"]["amount_fen"].as_str().unwrap().contains("¥50,000.00"), "{err}");
    let after = committee.get(&format!("/api/v1/applications/{}", ids[1])).await.json()["application"].clone();
    assert_eq!(before, after, "a refused approval changes nothing");
}

/// F1 across the two ways money goes out: a policy-wide yearly budget of ¥100,500 with one
/// ¥100,000 M3.2 approval leaves ¥500 — a second ¥100,000 approval is refused with the headroom,
/// and the 免申即享 batch shares out only the ¥500 left, saying so in the trace. When the approved
/// application is stopped by a recovery order (S5), its budget comes back: the draft is stale
/// (it was cut for a budget that is no longer spent) and the second approval now fits.
#[tokio::test]
async fn a_policy_wide_budget_is_shared_by_applications_and_the_settlement_batch() {
    let policy = preview_policy()
        .amend(
            "budget-test",
            jan(1),
            None,
            "yearly_budget",
            &toml::Value::String("100500.00".into()),
            "test",
        )
        .unwrap();
    let app = start(policy).await;
    let (committee, ids) = rd_applications_at_decision(&app).await;
    let first = decide(&committee, &ids[0], "approve").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json());
    let before = committee.get(&format!("/api/v1/applications/{}", ids[1])).await.json()["application"].clone();
    let second = decide(&committee, &ids[1], "approve").await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "policy_budget_exceeded".to_string()),
        "{:?}",
        second.json()
    );
    let err = second.json()["error"].clone();
    assert!(err["message"].as_str().unwrap().contains("¥500.00"), "the headroom is shown: {err}");
    assert!(err["message"].as_str().unwrap().contains("总预算"), "Chinese first: {err}");
    let after = committee.get(&format!("/api/v1/applications/{}", ids[1])).await.json()["application"].clone();
    assert_eq!(before, after, "a refused approval changes nothing");

    // The batch: ¥322.58 + ¥1,000.00 of entitlements share the ¥500.00 the application left.
    let a = community_occupied_since(&app, 1, jan(22)).await;
    let b = community_occupied_since(&app, 2, jan(1)).await;
    let r = committee
        .post_json(
            "/api/v1/settlements",
            json!({ "year": this_year(), "clauses": ["M1.1"], "as_of": jan(31).to_string() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let batch = r.json()["batch"]["id"].as_str().unwrap().to_string();
    let lines = committee.get(&format!("/api/v1/settlements/{batch}")).await.json()["lines"]
        .as_array()
        .unwrap()
        .clone();
    let (la, lb) = (line(&lines, &a), line(&lines, &b));
    assert_eq!((la["amount_fen"].as_i64(), lb["amount_fen"].as_i64()), (Some(12_195), Some(37_805)));
    let d: Value = serde_json::from_str(lb["decision"].as_str().unwrap()).unwrap();
    let trace = d["trace"].to_string();
    assert!(
        trace.contains("policy-wide yearly budget ¥100,500.00 less ¥100,000.00 approved on applications this year, leaving ¥500.00 for ¥1,322.58 of entitlements"),
        "{trace}"
    );

    // S5: the committee stops the approved application (a violation): its ¥100,000 is no longer
    // committed, so the draft cut for it is stale, and the second application fits.
    let r = committee
        .post_json(
            &format!("/api/v1/applications/{}/recovery", ids[0]),
            json!({ "kind": "violation", "reason": "项目与申报不符" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let (second_member, _) = app.user("cmte2", Role::Committee).await;
    let stale = second_member
        .post_json(&format!("/api/v1/settlements/{batch}/approve"), json!({}))
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::CONFLICT, "batch_stale".to_string()),
        "{:?}",
        stale.json()
    );
    let again = decide(&committee, &ids[1], "approve").await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.json());
    assert_eq!(again.json()["decided_fen"], 10_000_000);
}

/// A policy budget of ¥100,500 that fits either a ¥100,000 M3.2 approval or the M1.1 batch's
/// ¥1,322.58, not both: the app, the committee, the application ids, a second committee member
/// (id) and a drafted batch whose lines both operators accepted.
async fn budget_for_one_of_two() -> (TestApp, Client, Vec<String>, Client, String, String) {
    let policy = preview_policy()
        .amend(
            "budget-test",
            jan(1),
            None,
            "yearly_budget",
            &toml::Value::String("100500.00".into()),
            "test",
        )
        .unwrap();
    let app = start(policy).await;
    let (committee, ids) = rd_applications_at_decision(&app).await;
    let a = community_occupied_since(&app, 1, jan(22)).await;
    let b = community_occupied_since(&app, 2, jan(1)).await;
    let r = committee
        .post_json(
            "/api/v1/settlements",
            json!({ "year": this_year(), "clauses": ["M1.1"], "as_of": jan(31).to_string() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let batch = r.json()["batch"]["id"].as_str().unwrap().to_string();
    let lines = committee.get(&format!("/api/v1/settlements/{batch}")).await.json()["lines"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        line(&lines, &a)["amount_fen"].as_i64().unwrap() + line(&lines, &b)["amount_fen"].as_i64().unwrap(),
        132_258,
        "nothing approved yet: the whole entitlement fits"
    );
    // Each operator accepts its line (意愿确认), so the batch may be approved.
    for op in [&a, &b] {
        let user = app.store.user(op).await.unwrap();
        let c = app.client();
        c.login(&user.username, PASSWORD).await;
        let r = c
            .post_json(
                "/api/v1/my/settlements/confirm",
                json!({"batch": batch, "clause": "M1.1", "beneficiary": op, "accept": true}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    }
    let (second, second_id) = app.user("cmte2", Role::Committee).await;
    (app, committee, ids, second, second_id, batch)
}

const BUDGET_FEN: i64 = 10_050_000;

/// F1 (issue 17): a 免申即享 batch and an application approved at the same moment are
/// serialised on the policy budget. Interleaved the worst way — the batch's basis was checked
/// before the application committed — the batch's own transaction still sees the application
/// and refuses (`policy_budget_exceeded`); the batch stays a draft and nothing is granted.
#[tokio::test]
async fn a_batch_approved_after_an_application_slipped_in_is_refused_inside_its_transaction() {
    let (app, committee, ids, _, second_id, batch) = budget_for_one_of_two().await;
    let ok = decide(&committee, &ids[0], "approve").await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.json());
    // The batch approval's transaction, as it runs right after its (passed) basis check.
    let refused = app
        .store
        .approve_settlement(&Actor::user(&second_id, "committee"), &batch, "2099-01-31", Some(BUDGET_FEN))
        .await;
    assert!(
        matches!(refused, Err(opchub_store::StoreError::Conflict("policy_budget_exceeded"))),
        "{refused:?}"
    );
    let b = committee.get(&format!("/api/v1/settlements/{batch}")).await.json();
    assert_eq!(b["batch"]["status"], "draft", "a refused approval changes nothing");
    let (apps, settled) = app.store.committed_in_year(i64::from(this_year())).await.unwrap();
    assert_eq!((apps, settled), (10_000_000, 0));
}

/// The same two approvals racing over HTTP: exactly one goes through and the year never
/// approves past the budget.
#[tokio::test]
async fn a_batch_and_an_application_racing_never_pass_the_policy_budget() {
    let (app, committee, ids, second, _, batch) = budget_for_one_of_two().await;
    let approve = format!("/api/v1/settlements/{batch}/approve");
    let (x, y) = tokio::join!(second.post_json(&approve, json!({})), decide(&committee, &ids[0], "approve"),);
    let (apps, settled) = app.store.committed_in_year(i64::from(this_year())).await.unwrap();
    assert!(apps + settled <= BUDGET_FEN, "approved {apps} + {settled} past the budget");
    assert!(
        (x.status == StatusCode::OK) != (y.status == StatusCode::OK),
        "exactly one goes through: {} {:?} / {} {:?}",
        x.status,
        x.json(),
        y.status,
        y.json()
    );
    let loser = if x.status == StatusCode::OK { y.code() } else { x.code() };
    assert!(["policy_budget_exceeded", "batch_stale"].contains(&loser.as_str()), "{loser}");
}
