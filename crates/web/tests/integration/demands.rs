//! Demand board (M2.4) end to end through the JSON API, on SQLite and (with
//! `OPCHUB_TEST_DATABASE_URL`) PostgreSQL: publish → match → propose → accept → pay → confirm,
//! the ledger event that exactly one confirmed payment becomes, every bad input a new user
//! might try (nothing written), disputes, S3 flags, and concurrent accepts and confirms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use crate::common::*;
use base64::Engine;
use opchub_domain::{Role, Uscc, Zone};
use opchub_store::accounts::NewUser;
use opchub_store::Actor;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

struct Board {
    app: TestApp,
    company: Client,
    enterprise_id: String,
    /// An agent developer whose name and theme fit the invoice demand.
    a: Client,
    a_opc: String,
    /// A digital-human studio (a poor fit).
    b: Client,
}

async fn enterprise(app: &TestApp, username: &str, n: u32, zone: Zone) -> (Client, String) {
    let uscc = Uscc::parse(&uscc(n)).unwrap();
    let (e, _) = app
        .store
        .create_enterprise(
            &Actor::system(),
            NewUser {
                username,
                display_name: username,
                role: Role::Enterprise,
                password_hash: &password_hash(),
            },
            "北京丰台精密制造有限公司",
            &uscc,
            zone,
        )
        .await
        .unwrap();
    let c = app.client();
    c.login(username, PASSWORD).await;
    (c, e.id)
}

async fn opc(app: &TestApp, username: &str, n: u32, ws: &str, company: &str, theme: &str) -> (Client, String) {
    let mut r = registration(username, &uscc(n), "hexi_area", ws);
    r["company_name"] = json!(company);
    r["theme_package"] = json!(theme);
    let resp = app.client().post_json("/api/v1/registrations", r).await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text);
    let c = app.client();
    c.login(username, PASSWORD).await;
    (c, resp.json()["opc"]["id"].as_str().unwrap().to_string())
}

async fn board() -> Board {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 4).await;
    let (company, enterprise_id) = enterprise(&app, "fengtaimfg", 500, Zone::ZhongguancunFengtaiPark).await;
    let (a, a_opc) = opc(&app, "invoiceagent", 501, &ws[0], "北京发票智能体科技有限公司", "opc_agent_dev").await;
    let (b, _) = opc(
        &app,
        "avatarstudio",
        502,
        &ws[1],
        "北京虚拟形象文化传媒有限公司",
        "opc_digital_human",
    )
    .await;
    Board {
        app,
        company,
        enterprise_id,
        a,
        a_opc,
        b,
    }
}

fn demand_body() -> Value {
    json!({
        "title": "发票识别与报销智能体",
        "description": "我们需要一个智能体：识别增值税发票，核对金额并自动发起报销流程，对接现有财务系统。",
        "category": "opc_agent_dev",
        "tags": ["发票", "智能体"],
        "budget_min_fen": 1_000_000,
        "budget_max_fen": 5_000_000,
        "deadline": "2999-12-31",
        "publish": true,
    })
}

async fn publish(b: &Board) -> String {
    let r = b.company.post_json("/api/v1/demands", demand_body()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn propose(c: &Client, demand: &str, price: i64) -> String {
    let r = c
        .post_json(
            &format!("/api/v1/demands/{demand}/proposals"),
            json!({"price_fen": price, "timeline_days": 30, "message": "我们做过类似的发票助手，可两周交付原型。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

/// A demand with an accepted proposal of OPC A; returns (demand id, cooperation id).
async fn cooperation(b: &Board, price: i64) -> (String, String) {
    let d = publish(b).await;
    let p = propose(&b.a, &d, price).await;
    let r = b
        .company
        .post_json(&format!("/api/v1/demands/proposals/{p}/accept"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (d, r.json()["id"].as_str().unwrap().to_string())
}

async fn pay(b: &Board, coop: &str, amount: i64, invoice: &str) -> common::Resp {
    b.company
        .post_json(
            &format!("/api/v1/cooperations/{coop}/payments"),
            json!({"amount_fen": amount, "paid_on": "2026-01-05", "invoice_number": invoice}),
        )
        .await
}

async fn count(b: &Board, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(b.app.store.pool()).await.unwrap()
}

async fn ledger_payments(b: &Board) -> i64 {
    count(b, "SELECT COUNT(*) FROM ledger_events WHERE source = 'cooperation'").await
}

async fn unread(c: &Client) -> (i64, Vec<String>) {
    let n = c.get("/api/v1/notifications").await.json();
    let kinds = n["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect();
    (n["unread"].as_i64().unwrap(), kinds)
}

#[tokio::test]
async fn publish_match_propose_accept_pay_confirm_end_to_end() {
    let b = board().await;
    let d = publish(&b).await;

    // Everyone can find it, Chinese words segmented.
    let found = b.app.client().get("/api/v1/demands?q=%E5%8F%91%E7%A5%A8").await.json();
    assert_eq!(found[0]["id"], d.as_str(), "{found}");
    let none = b
        .app
        .client()
        .get("/api/v1/demands?q=%E6%95%B0%E5%AD%97%E4%BA%BA%E7%9B%B4%E6%92%AD")
        .await
        .json();
    assert!(none.as_array().unwrap().is_empty(), "{none}");

    // Matching: the agent developer ranks first, with a reason.
    let rec = b.company.get(&format!("/api/v1/demands/{d}/recommendations")).await;
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.text);
    let rec = rec.json();
    assert_eq!(rec[0]["id"], b.a_opc.as_str(), "{rec}");
    assert!(rec[0]["why_zh"].as_str().unwrap().contains("匹配"), "{rec}");
    assert!(rec[0]["why_en"].as_str().unwrap().contains("matched"), "{rec}");
    let for_me = b.a.get("/api/v1/demands/for-me").await.json();
    assert_eq!(for_me[0]["id"], d.as_str(), "{for_me}");

    // Two proposals; the company is told of each.
    let pa = propose(&b.a, &d, 3_000_000).await;
    let pb = propose(&b.b, &d, 2_000_000).await;
    let again =
        b.a.post_json(
            &format!("/api/v1/demands/{d}/proposals"),
            json!({"price_fen": 1, "timeline_days": 1, "message": "再来"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "already_proposed".into()));
    let (n, kinds) = unread(&b.company).await;
    assert_eq!(n, 2);
    assert!(kinds.iter().all(|k| k == "proposal_received"), "{kinds:?}");
    // An OPC sees only its own proposal.
    let mine = b.b.get(&format!("/api/v1/demands/{d}/proposals")).await.json();
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // Shortlist and a question thread.
    let r = b
        .company
        .post_json(&format!("/api/v1/demands/proposals/{pa}/shortlist"), json!({}))
        .await;
    assert_eq!(r.json()["status"], "shortlisted");
    let r = b
        .company
        .post_json(
            &format!("/api/v1/demands/proposals/{pa}/messages"),
            json!({"body": "能对接用友吗？"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    b.a.post_json(
        &format!("/api/v1/demands/proposals/{pa}/messages"),
        json!({"body": "可以，用友和金蝶都支持。"}),
    )
    .await;
    let thread = b.a.get(&format!("/api/v1/demands/proposals/{pa}/messages")).await.json();
    assert_eq!(thread.as_array().unwrap().len(), 2);
    // B cannot read A's thread.
    assert_eq!(
        b.b.get(&format!("/api/v1/demands/proposals/{pa}/messages")).await.status,
        StatusCode::NOT_FOUND
    );

    // Accept A: a cooperation; B is told it was not chosen.
    let r = b
        .company
        .post_json(
            &format!("/api/v1/demands/proposals/{pa}/accept"),
            json!({"milestones": [
                {"title": "原型", "amount_fen": 1_000_000, "due": "2026-03-01"}, {"title": "上线", "amount_fen": 2_000_000}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let coop = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["agreed_fen"], 3_000_000);
    let d_now = b.app.client().get(&format!("/api/v1/demands/{d}")).await.json();
    assert_eq!(d_now["demand"]["status"], "in_progress");
    let bp = b.b.get("/api/v1/demands/proposals/mine").await.json();
    assert_eq!(bp[0]["id"], pb.as_str());
    assert_eq!(bp[0]["status"], "declined");
    assert!(unread(&b.b).await.1.contains(&"proposal_declined".to_string()));
    assert!(unread(&b.a).await.1.contains(&"proposal_accepted".to_string()));

    // The company records a payment with its invoice file; one-sided, it is not in the ledger.
    let invoice = b"%PDF-1.4 invoice 0001".to_vec();
    let digest = hex::encode(sha2::Sha256::digest(&invoice));
    let r = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/{coop}/payments"),
            json!({"amount_fen": 1_000_000, "paid_on": "2026-01-05", "invoice_number": "No. 0001 2345",
                   "invoice": {"name": "invoice.pdf", "content_type": "application/pdf",
                               "data_base64": base64::engine::general_purpose::STANDARD.encode(&invoice)}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pay1 = r.json();
    let pid = pay1["id"].as_str().unwrap().to_string();
    assert_eq!(pay1["status"], "pending");
    assert_eq!(pay1["invoice_sha256"], digest.as_str());
    assert_eq!(pay1["invoice_number"], "NO.00012345");
    assert_eq!(
        ledger_payments(&b).await,
        0,
        "a payment only the company recorded is not in the ledger"
    );
    let s = b.company.get("/api/v1/cooperations/summary?year=2026").await.json();
    assert_eq!(s["confirmed_fen"], 0);
    assert!(unread(&b.a).await.1.contains(&"payment_to_confirm".to_string()));

    // The OPC confirms: exactly one cooperation.payment event, the company's year total grows.
    let r =
        b.a.post_json(&format!("/api/v1/cooperations/payments/{pid}/confirm"), json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "confirmed");
    assert!(r.json()["ledger_leaf_index"].is_i64());
    let ev = b.app.store.ledger_event_by_key("cooperation", &pid).await.unwrap();
    let (e, _, _) = ev.into_parts();
    assert_eq!(e.kind, "cooperation.payment");
    assert_eq!(e.subject, b.enterprise_id);
    assert_eq!(e.counterparty, b.a_opc);
    assert_eq!((e.quantity, e.charged_fen), (1_000_000, 1_000_000));
    assert_eq!(e.attributes["cooperation"], coop);
    assert_eq!(e.attributes["invoice_sha256"], digest);
    let again =
        b.a.post_json(&format!("/api/v1/cooperations/payments/{pid}/confirm"), json!({}))
            .await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "payment_not_pending".into()));
    assert_eq!(ledger_payments(&b).await, 1);
    let s = b.company.get("/api/v1/cooperations/summary?year=2026").await.json();
    assert_eq!(s["confirmed_fen"], 1_000_000, "{s}");
    assert_eq!(s["cap_fen"], 50_000_000);
    // The invoice file is stored by its digest.
    let f = b.company.get(&format!("/api/v1/demands/files/{digest}")).await;
    assert_eq!(f.text.as_bytes(), invoice.as_slice());
    // Only the parties (and reviewers) get an invoice file; another OPC does not.
    assert_eq!(
        b.b.get(&format!("/api/v1/demands/files/{digest}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Complete, then ratings both ways (once each).
    assert_eq!(
        b.a.post_json(&format!("/api/v1/cooperations/{coop}/ratings"), json!({"score": 5}))
            .await
            .code(),
        "cooperation_not_completed"
    );
    let r = b
        .company
        .post_json(&format!("/api/v1/cooperations/{coop}/complete"), json!({}))
        .await;
    assert_eq!(r.json()["status"], "completed", "{}", r.text);
    let r = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/{coop}/ratings"),
            json!({"score": 5, "comment": "交付及时"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r =
        b.a.post_json(&format!("/api/v1/cooperations/{coop}/ratings"), json!({"score": 4}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r =
        b.a.post_json(&format!("/api/v1/cooperations/{coop}/ratings"), json!({"score": 1}))
            .await;
    assert_eq!(r.code(), "already_rated");
    let detail = b.company.get(&format!("/api/v1/cooperations/{coop}")).await.json();
    assert_eq!(detail["ratings"].as_array().unwrap().len(), 2);
    assert_eq!(
        b.app.client().get(&format!("/api/v1/demands/{d}")).await.json()["demand"]["status"],
        "completed"
    );

    // The completed work now shows in A's recommendation reason for a similar demand.
    let d2 = publish(&b).await;
    let rec = b.company.get(&format!("/api/v1/demands/{d2}/recommendations")).await.json();
    assert_eq!(rec[0]["id"], b.a_opc.as_str());
    assert!(rec[0]["why_zh"].as_str().unwrap().contains("已完成 1 个项目"), "{rec}");
    assert!(rec[0]["why_zh"].as_str().unwrap().contains("评分 5.0"), "{rec}");

    // Notifications: mark all read.
    let r = b.company.post_json("/api/v1/notifications/read", json!({})).await.json();
    assert_eq!(r["unread"], 0);
    assert!(r["marked"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn bad_demands_are_refused_with_codes_and_nothing_is_written() {
    let b = board().await;
    let audited = "SELECT COUNT(*) FROM audit_log WHERE object_kind = 'demand'";
    let before = (count(&b, "SELECT COUNT(*) FROM demands").await, count(&b, audited).await);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("budget_min_fen", json!(-100), "negative_amount"),
        ("budget_max_fen", json!(-1), "negative_amount"),
        ("deadline", json!("2020-01-01"), "deadline_in_past"),
        ("deadline", json!("31/12/2999"), "invalid_date"),
        ("category", json!("mining"), "unknown_category"),
        ("title", json!(""), "required"),
    ];
    for (field, value, code) in cases {
        let mut body = demand_body();
        body[field] = value;
        let r = b.company.post_json("/api/v1/demands", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", r.text);
        assert_eq!(r.json()["error"]["field_codes"][field], code, "{}", r.text);
        assert!(
            !r.json()["error"]["fields"][field].as_str().unwrap().starts_with("field."),
            "a readable message: {}",
            r.text
        );
    }
    let mut body = demand_body();
    body["budget_min_fen"] = json!(9_000_000);
    let r = b.company.post_json("/api/v1/demands", body).await;
    assert_eq!(r.json()["error"]["field_codes"]["budget_min_fen"], "budget_min_above_max");
    assert_eq!(r.json()["error"]["fields"]["budget_min_fen"], "预算下限不能高于上限");

    // An Enterprise account with no company in the registry: not verified.
    let (stranger, _) = b.app.user("nocompany", Role::Enterprise).await;
    let r = stranger.post_json("/api/v1/demands", demand_body()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "company_not_verified".into()),
        "{}",
        r.text
    );
    // A company whose recorded zone is outside the district's key zones.
    let (outside, eid) = enterprise(&b.app, "chaoyangco", 503, Zone::HexiArea).await;
    sqlx::query("UPDATE enterprises SET zone = 'chaoyang' WHERE id = $1")
        .bind(&eid)
        .execute(b.app.store.pool())
        .await
        .unwrap();
    let r = outside.post_json("/api/v1/demands", demand_body()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "company_not_in_district".into()),
        "{}",
        r.text
    );
    // OPCs cannot publish at all.
    assert_eq!(b.a.post_json("/api/v1/demands", demand_body()).await.status, StatusCode::FORBIDDEN);

    let after = (count(&b, "SELECT COUNT(*) FROM demands").await, count(&b, audited).await);
    assert_eq!(before, after, "no demand written, nothing audited");

    // A draft is not public; publishing a draft whose deadline is fine opens it.
    let mut body = demand_body();
    body["publish"] = json!(false);
    let dr = b.company.post_json("/api/v1/demands", body).await.json();
    let id = dr["id"].as_str().unwrap();
    assert_eq!(dr["status"], "draft");
    assert_eq!(
        b.app.client().get(&format!("/api/v1/demands/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.a.post_json(
            &format!("/api/v1/demands/{id}/proposals"),
            json!({"price_fen": 1, "timeline_days": 1, "message": "ok ok"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = b.company.post_json(&format!("/api/v1/demands/{id}/publish"), json!({})).await;
    assert_eq!(r.json()["status"], "open");
    // Another company cannot touch it.
    let (other, _) = enterprise(&b.app, "othermfg", 504, Zone::HexiArea).await;
    assert_eq!(
        other.post_json(&format!("/api/v1/demands/{id}/cancel"), json!({})).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn payments_above_the_agreed_amount_foreign_confirms_and_reused_invoices_are_refused() {
    let b = board().await;
    let (_, coop) = cooperation(&b, 1_000_000).await;
    assert_eq!(pay(&b, &coop, 600_000, "INV-1").await.status, StatusCode::CREATED);

    // Above the agreed amount: refused, nothing written.
    let n = count(&b, "SELECT COUNT(*) FROM cooperation_payments").await;
    let r = pay(&b, &coop, 400_001, "INV-2").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["amount_fen"], "above_agreed_amount");
    for (amount, code) in [(-5, "negative_amount"), (0, "required")] {
        let r = pay(&b, &coop, amount, "INV-X").await;
        assert_eq!(r.json()["error"]["field_codes"]["amount_fen"], code, "{}", r.text);
    }
    let r = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/{coop}/payments"),
            json!({"amount_fen": 1, "paid_on": "2999-01-01", "invoice_number": "INV-F"}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["paid_on"], "date_in_future");
    assert_eq!(count(&b, "SELECT COUNT(*) FROM cooperation_payments").await, n);

    // An amended agreement (company proposes, OPC accepts) raises the limit.
    let r = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/{coop}/amendments"),
            json!({"agreed_fen": 1_500_000, "reason": "增加对接金蝶"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let am = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        pay(&b, &coop, 400_001, "INV-2").await.code(),
        "validation_failed",
        "not before the OPC accepts"
    );
    // Only the cooperation's OPC may accept it.
    assert_eq!(
        b.b.post_json(&format!("/api/v1/cooperations/amendments/{am}/decide"), json!({"accept": true}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r =
        b.a.post_json(&format!("/api/v1/cooperations/amendments/{am}/decide"), json!({"accept": true}))
            .await;
    assert_eq!(r.json()["status"], "accepted", "{}", r.text);
    let r = pay(&b, &coop, 400_001, "INV-2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let p2 = r.json()["id"].as_str().unwrap().to_string();

    // Another OPC confirming a payment of someone else's cooperation: 404, nothing changes.
    let r =
        b.b.post_json(&format!("/api/v1/cooperations/payments/{p2}/confirm"), json!({}))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // The company cannot confirm its own payment either.
    assert_eq!(
        b.company
            .post_json(&format!("/api/v1/cooperations/payments/{p2}/confirm"), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(b.app.store.payment(&p2).await.unwrap().status, "pending");
    assert_eq!(ledger_payments(&b).await, 0);

    // The same invoice number again (in any spelling), here or in another cooperation:
    // refused and flagged for the committee (S3).
    let r = pay(&b, &coop, 1, "inv-1").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "duplicate_invoice".into()),
        "{}",
        r.text
    );
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("S3"));
    let b2 = b.app.client();
    let (_, ws) = b.app.community(Zone::HexiArea, 1).await;
    let (c_opc_client, _) = opc(&b.app, "thirdopc", 505, &ws[0], "北京第三智能科技有限公司", "opc_llm_dev").await;
    drop(b2);
    let d = publish(&b).await;
    let p = propose(&c_opc_client, &d, 800_000).await;
    let coop2 = b
        .company
        .post_json(&format!("/api/v1/demands/proposals/{p}/accept"), json!({}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pay(&b, &coop2, 100, "INV-2").await.code(), "duplicate_invoice");
    let (committee, _) = b.app.user("reviewer", Role::Committee).await;
    let flags = committee.get("/api/v1/cooperations/flags").await.json();
    assert_eq!(flags.as_array().unwrap().len(), 2, "{flags}");
    assert!(flags
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["clause"] == "S3" && f["kind"] == "duplicate_invoice"));
    assert_eq!(count(&b, "SELECT COUNT(*) FROM cooperation_payments").await, n + 1);
    // OPCs and companies do not see the flags.
    assert_eq!(b.a.get("/api/v1/cooperations/flags").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_disputed_payment_counts_only_when_the_committee_upholds_it() {
    let b = board().await;
    let (_, coop) = cooperation(&b, 1_000_000).await;
    let p1 = pay(&b, &coop, 300_000, "D-1").await.json()["id"].as_str().unwrap().to_string();
    let p2 = pay(&b, &coop, 200_000, "D-2").await.json()["id"].as_str().unwrap().to_string();
    let r =
        b.a.post_json(
            &format!("/api/v1/cooperations/payments/{p1}/dispute"),
            json!({"reason": "未收到款项"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d1 = r.json()["id"].as_str().unwrap().to_string();
    let d2 = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/payments/{p2}/dispute"),
            json!({"reason": "金额登记错误"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Disputed: cannot be confirmed, not in the ledger, not in the year's total.
    assert_eq!(
        b.a.post_json(&format!("/api/v1/cooperations/payments/{p1}/confirm"), json!({}))
            .await
            .code(),
        "payment_not_pending"
    );
    assert_eq!(ledger_payments(&b).await, 0);
    assert!(unread(&b.company).await.1.contains(&"payment_disputed".to_string()));

    let (committee, _) = b.app.user("reviewer", Role::Committee).await;
    let open = committee.get("/api/v1/cooperations/disputes").await.json();
    assert_eq!(open.as_array().unwrap().len(), 2);
    let bad = committee
        .post_json(
            &format!("/api/v1/cooperations/disputes/{d1}/resolve"),
            json!({"resolution": "maybe", "note": "看看"}),
        )
        .await;
    assert_eq!(bad.json()["error"]["field_codes"]["resolution"], "unknown_resolution");
    // Only the committee resolves.
    assert_eq!(
        b.a.post_json(
            &format!("/api/v1/cooperations/disputes/{d1}/resolve"),
            json!({"resolution": "upheld", "note": "自己裁定"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = committee
        .post_json(
            &format!("/api/v1/cooperations/disputes/{d1}/resolve"),
            json!({"resolution": "upheld", "note": "银行回单证明已付款"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = committee
        .post_json(
            &format!("/api/v1/cooperations/disputes/{d2}/resolve"),
            json!({"resolution": "rejected", "note": "企业撤回"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        committee
            .post_json(
                &format!("/api/v1/cooperations/disputes/{d2}/resolve"),
                json!({"resolution": "upheld", "note": "改判"})
            )
            .await
            .code(),
        "dispute_resolved"
    );

    assert_eq!(b.app.store.payment(&p1).await.unwrap().status, "confirmed");
    assert_eq!(b.app.store.payment(&p2).await.unwrap().status, "void");
    assert_eq!(ledger_payments(&b).await, 1, "only the upheld payment is in the ledger");
    assert!(b.app.store.ledger_event_by_key("cooperation", &p1).await.is_ok());
    let s = b.company.get("/api/v1/cooperations/summary?year=2026").await.json();
    assert_eq!(s["confirmed_fen"], 300_000);
    // The void payment no longer uses up the agreed amount.
    assert_eq!(pay(&b, &coop, 700_000, "D-3").await.status, StatusCode::CREATED);
}

/// Notifications of one user, straight from the store: (kind, object kind, object id).
async fn notes_of(b: &Board, user_id: &str) -> Vec<(String, String, String)> {
    b.app
        .store
        .notifications(user_id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.object_kind, n.object_id))
        .collect()
}

#[tokio::test]
async fn every_committee_reviewer_is_notified_of_a_dispute_and_the_parties_still_are() {
    let b = board().await;
    let (c1, _) = b.app.user("reviewer1", Role::Committee).await;
    let (c2, c2_id) = b.app.user("reviewer2", Role::Committee).await;
    let (_, gone) = b.app.user("reviewer_gone", Role::Committee).await;
    b.app.store.set_user_disabled(&Actor::system(), &gone, true).await.unwrap();
    let (auditor, _) = b.app.user("auditor1", Role::Auditor).await;
    let (_, coop) = cooperation(&b, 1_000_000).await;
    let p1 = pay(&b, &coop, 300_000, "N-1").await.json()["id"].as_str().unwrap().to_string();
    let p2 = pay(&b, &coop, 200_000, "N-2").await.json()["id"].as_str().unwrap().to_string();
    let (_, before) = unread(&b.company).await;

    // The OPC disputes: the company is told, and so is every committee reviewer.
    let r =
        b.a.post_json(
            &format!("/api/v1/cooperations/payments/{p1}/dispute"),
            json!({"reason": "未收到款项"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d1 = r.json()["id"].as_str().unwrap().to_string();
    let (_, company_kinds) = unread(&b.company).await;
    assert_eq!(company_kinds.len(), before.len() + 1);
    assert_eq!(company_kinds[0], "payment_disputed");
    for c in [&c1, &c2] {
        let n = c.get("/api/v1/notifications").await.json();
        assert_eq!(n["unread"], 1, "{n}");
        let item = &n["items"][0];
        assert_eq!(item["kind"], "dispute_opened");
        assert_eq!(item["object_kind"], "dispute");
        assert_eq!(item["object_id"], d1.as_str());
        assert_eq!(item["title"], "发票识别与报销智能体");
    }
    // A disabled reviewer and other staff are not; the disputing side gets nothing new.
    assert!(notes_of(&b, &gone).await.is_empty());
    assert_eq!(unread(&auditor).await, (0, vec![]));
    assert!(!unread(&b.a).await.1.contains(&"payment_disputed".to_string()));

    // The company disputes the other payment: the OPC is told, the reviewers a second time.
    let r = b
        .company
        .post_json(
            &format!("/api/v1/cooperations/payments/{p2}/dispute"),
            json!({"reason": "金额登记错误"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d2 = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(unread(&b.a).await.1[0], "payment_disputed");
    let (n, kinds) = unread(&c1).await;
    assert_eq!((n, kinds), (2, vec!["dispute_opened".to_string(), "dispute_opened".to_string()]));
    let ids: Vec<String> = notes_of(&b, &c2_id).await.into_iter().map(|(_, _, id)| id).collect();
    assert!(ids.contains(&d1) && ids.contains(&d2), "{ids:?}");

    // On the notifications page the link leads to the dispute on the review page.
    let page = c1.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("有新的付款争议待裁定"), "{}", page.text);
    let href = format!("/cooperations/review#dispute-{d2}");
    assert!(
        page.text.contains(&href.replace('/', "&#x2f;")) || page.text.contains(&href),
        "{}",
        page.text
    );
    let review = c1.get("/cooperations/review").await;
    assert!(review.text.contains(&format!("id=\"dispute-{d2}\"")), "{}", review.text);
    c1.get("/lang/en").await;
    assert!(c1
        .get("/notifications")
        .await
        .text
        .contains("A payment dispute awaits your decision"));
}

#[tokio::test]
async fn concurrent_accepts_have_one_winner_and_concurrent_confirms_one_ledger_event() {
    let b = board().await;
    let (_, ws) = b.app.community(Zone::HexiArea, 6).await;
    let d = publish(&b).await;
    let mut proposals = vec![propose(&b.a, &d, 1_000_000).await, propose(&b.b, &d, 1_100_000).await];
    for (i, w) in ws.iter().enumerate() {
        let (c, _) = opc(
            &b.app,
            &format!("racer{i}"),
            600 + i as u32,
            w,
            &format!("北京竞速{i}号科技有限公司"),
            "opc_llm_dev",
        )
        .await;
        proposals.push(propose(&c, &d, 900_000 + i as i64).await);
    }
    let tasks: Vec<_> = proposals
        .iter()
        .map(|p| {
            let c = b.company.clone();
            let p = p.clone();
            tokio::spawn(async move { c.post_json(&format!("/api/v1/demands/proposals/{p}/accept"), json!({})).await })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => won.push(r.json()["id"].as_str().unwrap().to_string()),
            StatusCode::CONFLICT => assert!(
                matches!(r.code().as_str(), "demand_not_open" | "proposal_wrong_state"),
                "{}",
                r.text
            ),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(won.len(), 1, "exactly one accept wins");
    assert_eq!(count(&b, "SELECT COUNT(*) FROM cooperations").await, 1);
    assert_eq!(
        count(&b, "SELECT COUNT(*) FROM demand_proposals WHERE status = 'accepted'").await,
        1
    );
    assert_eq!(
        count(&b, "SELECT COUNT(*) FROM demand_proposals WHERE status = 'declined'").await,
        proposals.len() as i64 - 1
    );

    // The winner's OPC confirms one payment from many concurrent requests.
    let coop = b.app.store.cooperation(&won[0]).await.unwrap();
    let winner_user = coop.opc_founder_user_id.clone();
    let pid = pay(&b, &coop.id, 500_000, "RACE-1").await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let username = b.app.store.user(&winner_user).await.unwrap().username;
    let opc_client = b.app.client();
    opc_client.login(&username, PASSWORD).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = opc_client.clone();
            let pid = pid.clone();
            tokio::spawn(async move {
                c.post_json(&format!("/api/v1/cooperations/payments/{pid}/confirm"), json!({}))
                    .await
                    .status
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(ledger_payments(&b).await, 1, "one confirmed payment, one ledger event");
}
