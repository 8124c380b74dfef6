//! The demand board's pages (M2.4) with plain forms, as a company, two OPCs and a committee
//! reviewer would use them: publish (a refused form keeps its input and says why), see the
//! recommended OPCs with the reason, propose, accept, record a payment, confirm it, see the
//! year's confirmed total; a reused invoice number is refused and shows up for the committee.
//! Chinese by default, English on request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Uscc, Zone};
use opchub_store::accounts::NewUser;
use opchub_store::Actor;
use reqwest::StatusCode;
use serde_json::json;

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
    // The company's workbench counts its demand open for proposals (issue 21 item 2).
    let wb = company.get("/workbench").await.text;
    let at = wb.find(r#"id="todo-demands_open""#).expect("the open demands to-do");
    assert!(wb[at..].contains(r#"class="todo-count" aria-hidden="true">1<"#), "{wb}");

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

async fn verified_company(app: &TestApp, username: &str, n: u32) -> Client {
    app.store
        .create_enterprise(
            &Actor::system(),
            NewUser {
                username,
                display_name: username,
                role: Role::Enterprise,
                password_hash: &password_hash(),
            },
            "北京丰台附件测试有限公司",
            &Uscc::parse(&uscc(n)).unwrap(),
            Zone::HexiArea,
        )
        .await
        .unwrap();
    let c = app.client();
    c.login(username, PASSWORD).await;
    c
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(app.store.pool()).await.unwrap()
}

const DEMAND_FIELDS: &[(&str, &str)] = &[
    ("title", "质检报告生成智能体"),
    ("description", "根据产线质检数据自动生成质检报告，并附上缺陷图片与统计图表。"),
    ("category", "opc_agent_dev"),
    ("tags", "质检，报表"),
    ("budget_min", "20000"),
    ("budget_max", "60000"),
    ("deadline", "2999-12-31"),
    ("action", "publish"),
];

#[tokio::test]
async fn the_publish_page_uploads_attachments_and_refuses_bad_files_without_storing_anything() {
    let app = TestApp::start().await;
    let company = verified_company(&app, "filesco", 710).await;
    let new = company.get("/demands/new").await;
    assert!(
        new.text.contains("enctype=\"multipart/form-data\"") && new.text.contains("type=\"file\""),
        "{}",
        new.text
    );
    let pdf: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let txt = "质检字段说明：批次号、缺陷类型、数量。\n".as_bytes();
    let (demands0, files0, attachments0) = (
        count(&app, "SELECT COUNT(*) FROM demands").await,
        count(&app, "SELECT COUNT(*) FROM demand_files").await,
        count(&app, "SELECT COUNT(*) FROM demand_attachments").await,
    );

    // A file type the board does not take: the form comes back saying so and naming the
    // file, the input is kept, and nothing at all is stored.
    let bad = company
        .post_multipart(
            "/demands",
            DEMAND_FIELDS,
            &[
                ("attachments", "需求说明.pdf", "application/pdf", pdf),
                ("attachments", "setup.exe", "application/x-msdownload", b"MZ\x90\x00"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let text = unescape(&bad.text);
    assert!(text.contains("只接受 PDF、PNG、JPEG 或纯文本文件 (setup.exe)"), "{text}");
    assert!(text.contains("id=\"error-file\""), "{text}");
    assert!(text.contains("如需附件，请重新选择文件"), "{text}");
    assert!(text.contains("value=\"质检报告生成智能体\""), "input kept");
    // Too large, empty, too many: each refused with its own message.
    let big = vec![b'a'; opchub_store::demands::MAX_FILE_BYTES + 1];
    let r = company
        .post_multipart("/demands", DEMAND_FIELDS, &[("attachments", "big.txt", "text/plain", &big)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unescape(&r.text).contains("文件不能超过 2 MiB (big.txt)"), "{}", r.text);
    let r = company
        .post_multipart("/demands", DEMAND_FIELDS, &[("attachments", "empty.txt", "text/plain", b"")])
        .await;
    assert!(unescape(&r.text).contains("文件为空 (empty.txt)"), "{}", r.text);
    let six: Vec<(&str, &str, &str, &[u8])> = (0..6).map(|_| ("attachments", "a.txt", "text/plain", txt)).collect();
    let r = company.post_multipart("/demands", DEMAND_FIELDS, &six).await;
    assert!(r.text.contains("附件最多 5 个"), "{}", r.text);
    // Without the CSRF token a multipart form is refused like any other.
    let r = company
        .post_multipart(
            "/demands",
            &[DEMAND_FIELDS, &[("_csrf", "forged")]].concat(),
            &[("attachments", "a.txt", "text/plain", txt)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Forms of other pages do not take multipart bodies.
    let r = company
        .post_multipart("/notifications/read", &[], &[("attachments", "a.txt", "text/plain", txt)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM demands").await, demands0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM demand_files").await, files0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM demand_attachments").await, attachments0);

    // In English the same refusal reads in English.
    company.get("/lang/en").await;
    let r = company
        .post_multipart(
            "/demands",
            DEMAND_FIELDS,
            &[("attachments", "setup.exe", "application/x-msdownload", b"MZ")],
        )
        .await;
    assert!(
        unescape(&r.text).contains("Only PDF, PNG, JPEG or plain-text files (setup.exe)"),
        "{}",
        r.text
    );
    company.get("/lang/zh").await;

    // Good files (and an empty file input, as browsers send one): published with both.
    let ok = company
        .post_multipart(
            "/demands",
            // The token need not come first.
            &[DEMAND_FIELDS, &[("_csrf", company.cookie("opchub_csrf").unwrap().as_str())]].concat(),
            &[
                ("attachments", "需求说明.pdf", "application/pdf", pdf),
                ("attachments", "字段说明.txt", "text/plain", txt),
                ("attachments", "", "application/octet-stream", b""),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let demand_path = ok.location();
    let page = unescape(&company.get(&demand_path).await.text);
    assert!(page.contains("id=\"attachments\""), "{page}");
    let pdf_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pdf));
    assert!(
        page.contains(&format!("href=\"/api/v1/demands/files/{pdf_sha}\">需求说明.pdf</a>")),
        "{page}"
    );
    assert!(page.contains("字段说明.txt"), "{page}");
    let detail = company.get(&format!("/api/v1{demand_path}")).await.json();
    let names: Vec<&str> = detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{detail}");
    assert!(names.contains(&"需求说明.pdf") && names.contains(&"字段说明.txt"));
    let types: Vec<&str> = detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["content_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"application/pdf") && types.contains(&"text/plain"), "{types:?}");
    // The stored file is the uploaded one, byte for byte.
    let file = company.get(&format!("/api/v1/demands/files/{pdf_sha}")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.text.as_bytes(), pdf);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM demands").await, demands0 + 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM demand_files").await, files0 + 2);

    // A plain form without files still publishes.
    let plain = company.post_form("/demands", DEMAND_FIELDS).await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.text);
}
