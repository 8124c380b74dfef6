//! The demand board's pages (M2.4) with plain forms, as a company, two OPCs and a committee
//! reviewer would use them: publish (a refused form keeps its input and says why), see the
//! recommended OPCs with the reason, propose, accept, record a payment, confirm it, see the
//! year's confirmed total; a reused invoice number is refused and shows up for the committee.
//! Chinese by default, English on request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use opchub_domain::{Role, Uscc, Zone};
use opchub_store::accounts::NewUser;
use opchub_store::Actor;
use reqwest::StatusCode;
use serde_json::json;

fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn publish_propose_accept_pay_confirm_through_pages() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    app.store
        .create_enterprise(
            &Actor::system(),
            NewUser {
                username: "pagesco",
                display_name: "pagesco",
                role: Role::Enterprise,
                password_hash: &password_hash(),
            },
            "北京丰台页面测试有限公司",
            &Uscc::parse(&uscc(700)).unwrap(),
            Zone::HexiArea,
        )
        .await
        .unwrap();
    let company = app.client();
    company.login("pagesco", PASSWORD).await;
    let mut reg = registration("pageopc", &uscc(701), "hexi_area", &ws[0]);
    reg["company_name"] = json!("北京发票智能体科技有限公司");
    assert_eq!(
        app.client().post_json("/api/v1/registrations", reg).await.status,
        StatusCode::CREATED
    );
    let opc = app.client();
    opc.login("pageopc", PASSWORD).await;

    // A refused form comes back with the reason and the input kept; nothing is published.
    let new = company.get("/demands/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.text.contains("发布需求"));
    let form = |min: &'static str, deadline: &'static str| {
        vec![
            ("title", "发票识别智能体"),
            ("description", "识别增值税发票并自动报销，对接现有财务系统。"),
            ("category", "opc_agent_dev"),
            ("tags", "发票，智能体"),
            ("budget_min", min),
            ("budget_max", "50000"),
            ("deadline", deadline),
            ("action", "publish"),
        ]
    };
    let bad = company.post_form("/demands", &form("-100", "2999-12-31")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("金额不能为负数"), "{}", bad.text);
    assert!(bad.text.contains("value=\"发票识别智能体\""), "input kept");
    let past = company.post_form("/demands", &form("100", "2020-01-01")).await;
    assert!(past.text.contains("截止日期不能早于今天"), "{}", past.text);
    let ok = company.post_form("/demands", &form("10000", "2999-12-31")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let demand_path = ok.location();

    // The company sees the recommended OPC with its reason.
    let page = company.get(&demand_path).await;
    assert!(page.text.contains("id=\"recommendations\""), "{}", page.text);
    assert!(page.text.contains("北京发票智能体科技有限公司"));
    assert!(page.text.contains("匹配："));

    // The OPC finds it on the board ("for you") and proposes.
    let board = opc.get("/demands").await;
    assert!(
        board.text.contains("为你推荐的需求") && board.text.contains("发票识别智能体"),
        "{}",
        board.text
    );
    let r = opc
        .post_form(
            &format!("{demand_path}/proposals"),
            &[("price", "30000"), ("timeline_days", "20"), ("message", "两周出原型")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let notes = company.get("/notifications").await;
    assert!(notes.text.contains("收到新方案"), "{}", notes.text);

    // Accept on the demand page → the cooperation page.
    let proposals = company.get(&format!("/api/v1{demand_path}/proposals")).await.json();
    let pid = proposals[0]["id"].as_str().unwrap();
    let r = company
        .post_form(&format!("/demands/proposals/{pid}"), &[("action", "accept")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let coop_path = r.location();
    assert!(coop_path.starts_with("/cooperations/"));

    // Record a payment above the agreed amount: refused on the page; then a good one.
    let today = opchub_ledger::event::day_of(opchub_store::now_ms());
    let over = company
        .post_form(
            &format!("{coop_path}/payments"),
            &[("amount", "30000.01"), ("paid_on", &today), ("invoice_number", "FP-001")],
        )
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(over.text.contains("付款合计将超过约定金额"), "{}", over.text);
    let r = company
        .post_form(
            &format!("{coop_path}/payments"),
            &[("amount", "10000"), ("paid_on", &today), ("invoice_number", "FP-001")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let dup = company
        .post_form(
            &format!("{coop_path}/payments"),
            &[("amount", "1"), ("paid_on", &today), ("invoice_number", "fp-001")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.text.contains("S3"), "{}", dup.text);

    // The OPC confirms on the cooperation page; the ledger leaf appears.
    let coop_page = opc.get(&coop_path).await;
    assert!(coop_page.text.contains("确认收款"), "{}", coop_page.text);
    let coop_id = coop_path.trim_start_matches("/cooperations/");
    let pay_id = company.get(&format!("/api/v1/cooperations/{coop_id}")).await.json()["payments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = opc
        .post_form(&format!("/cooperations/payments/{pay_id}"), &[("action", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let after = unescape(&company.get(&coop_path).await.text);
    assert!(after.contains("已确认") && after.contains("/ledger/proof?leaf_index="), "{after}");
    let mine = company.get("/demands/mine").await;
    assert!(mine.text.contains("¥10,000.00"), "{}", mine.text);

    // The committee sees the flag; English on request.
    let (committee, _) = app.user("pagereviewer", Role::Committee).await;
    let review = committee.get("/cooperations/review").await;
    assert!(
        review.text.contains("发票号码重复使用") && review.text.contains("FP-001"),
        "{}",
        review.text
    );
    committee.get("/lang/en").await;
    let review = committee.get("/cooperations/review").await;
    assert!(review.text.contains("Invoice number used again"), "{}", review.text);
    // Others may not open the review page.
    assert_eq!(opc.get("/cooperations/review").await.status, StatusCode::FORBIDDEN);
}
