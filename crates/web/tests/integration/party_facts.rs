//! Party facts through the pages (issue 17): the committee records a community company's tax
//! registration and an enterprise's in-district on /admin/parties; the platform operator creates
//! an agency user in its agency and moves it on /admin/users; a founder sets where its OPC is
//! paid on /my/bank-account. Each change is audited; bad input is explained and changes nothing.
//! Runs on SQLite, and on PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Role, Zone};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn facts_are_set_on_their_pages_and_audited() {
    let app = TestApp::start_preview().await;
    let (community, ws) = app.community(Zone::HexiArea, 1).await;
    let (committee, _) = app.user("cmte", Role::Committee).await;
    let (platform, _) = app.user("plat", Role::PlatformOperator).await;
    let (auditor, _) = app.user("audi", Role::Auditor).await;

    // Registrations (G2): "unknown" until the committee records them.
    let page = committee.get("/admin/parties").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&format!("id=\"party-{community}\"")), "{}", page.text);
    let path = format!("/admin/parties/community/{community}/registration");
    let bad = committee.post_form(&path, &[("tax_registered", "maybe")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("id=\"form-error\""));
    let r = committee
        .post_form(&path, &[("market_registered", "yes"), ("tax_registered", "yes")])
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/admin/parties?done=1".to_string())
    );
    let list = committee.get("/api/v1/parties/registrations").await.json();
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == community.as_str())
        .unwrap()
        .clone();
    assert_eq!((c["tax_registered"].as_bool(), c["in_district"].is_null()), (Some(true), true));
    let audit = auditor.get("/api/v1/audit?action=company.registration").await.json();
    assert!(audit.to_string().contains(&community), "{audit:#}");

    // F3: the main industry from the same page — a malformed code is explained and changes
    // nothing; a good one is normalised, listed and shown back in the form.
    let path = format!("/admin/parties/community/{community}/industry-code");
    let bad = committee.post_form(&path, &[("industry_code", "Z99x")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("id=\"form-error\""));
    let code_of = |list: &serde_json::Value| {
        list.as_array().unwrap().iter().find(|p| p["id"] == community.as_str()).unwrap()["industry_code"].clone()
    };
    assert!(code_of(&committee.get("/api/v1/parties/registrations").await.json()).is_null());
    let r = platform.post_form(&path, &[("industry_code", " i6513 ")]).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/admin/parties?done=1".to_string()),
        "{}",
        r.text
    );
    assert_eq!(code_of(&committee.get("/api/v1/parties/registrations").await.json()), "I6513");
    let page = committee.get("/admin/parties").await.text;
    assert!(page.contains("name=\"industry_code\" value=\"I6513\""), "{page}");

    // Agency membership (F1): required for an agency user, chosen from the agencies the measures name.
    let r = platform
        .post_form(
            "/admin/users",
            &[
                ("username", "sci1"),
                ("password", PASSWORD),
                ("display_name", "科委"),
                ("role", "agency"),
                ("agency", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!platform.get("/api/v1/users").await.text.contains("sci1"));
    let r = platform
        .post_form(
            "/admin/users",
            &[
                ("username", "sci1"),
                ("password", PASSWORD),
                ("display_name", "科委"),
                ("role", "agency"),
                ("agency", "commerce"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let users = platform.get("/api/v1/users").await.json();
    let id = users.as_array().unwrap().iter().find(|u| u["username"] == "sci1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.store.agency_of(&id).await.unwrap().as_deref(), Some("commerce"));
    let r = platform
        .post_form(&format!("/admin/users/{id}/agency"), &[("agency", "science_technology")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(app.store.agency_of(&id).await.unwrap().as_deref(), Some("science_technology"));
    let r = platform
        .put_json(&format!("/api/v1/users/{id}/agency"), json!({"agency": "nowhere"}))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["agency"], "unknown_agency");
    let (_, cid) = app.user("notagency", Role::Committee).await;
    let r = platform
        .put_json(&format!("/api/v1/users/{cid}/agency"), json!({"agency": "commerce"}))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["user"], "not_an_agency_user");
    let audit = auditor.get("/api/v1/audit?action=user.agency").await.json();
    assert!(
        audit.to_string().contains("commerce") && audit.to_string().contains("science_technology"),
        "{audit:#}"
    );

    // Bank account: the founder's own page.
    let r = app
        .client()
        .post_json("/api/v1/registrations", registration("fndr", &uscc(801), "hexi_area", &ws[0]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let opc = r.json()["opc"]["id"].as_str().unwrap().to_string();
    let founder = app.client();
    founder.login("fndr", PASSWORD).await;
    let page = founder.get("/my/bank-account").await;
    assert!(page.text.contains(&format!("id=\"bank-{opc}\"")), "{}", page.text);
    let form = format!("/my/bank-account/opc/{opc}");
    let bad = founder
        .post_form(
            &form,
            &[
                ("account_name", "北京fndr智能科技有限公司"),
                ("bank", "工行丰台支行"),
                ("account_number", "1234"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("8至30位数字"), "{}", bad.text);
    let r = founder
        .post_form(
            &form,
            &[
                ("account_name", "北京fndr智能科技有限公司"),
                ("bank", "工行丰台支行"),
                ("account_number", "6222 0202 0001 2345"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/my/bank-account?done=1".to_string())
    );
    // Issue 18 item 1: the number is kept sealed and shown by its last four digits only — to
    // its owner, in the audit trail and in the database.
    let mine = founder.get("/api/v1/my/bank-accounts").await.json();
    assert_eq!(mine[0]["bank_account"]["account_tail"], "2345");
    assert!(!mine.to_string().contains("6222020200012345"), "{mine:#}");
    let page = founder.get("/my/bank-account").await.text;
    assert!(page.contains("•••• 2345") && !page.contains("6222020200012345"), "{page}");
    let audit = auditor.get("/api/v1/audit?action=party.bank_account").await.json();
    assert!(audit.to_string().contains(&opc), "{audit:#}");
    assert!(!audit.to_string().contains("6222020200012345"), "{audit:#}");
    let kept: (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT bank_account_number, bank_account_sealed, bank_account_hash FROM opcs WHERE id = $1")
            .bind(&opc)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let (clear, sealed, hash) = (kept.0, kept.1.unwrap(), kept.2.unwrap());
    assert_eq!(clear, None);
    assert!(!sealed.contains("62220202") && !hash.contains("62220202"), "{sealed} {hash}");
    // A number recorded in clear before numbers were sealed is sealed at start, once.
    sqlx::query(
        "UPDATE opcs SET bank_account_number = '6222020200012345', bank_account_sealed = NULL, \
         bank_account_hash = NULL, bank_account_tail = NULL WHERE id = $1",
    )
    .bind(&opc)
    .execute(app.store.pool())
    .await
    .unwrap();
    let mut platform = opchub_app::App::new(app.store.clone());
    let secrets = opchub_gateway::SecretBox::from_hex(&app.db.secret_hex).unwrap();
    platform.identity_key = Some(opchub_app::crypto::IdentityKey::new(secrets.identity_key()));
    assert_eq!(opchub_app::party_facts::seal_clear_bank_accounts(&platform).await.unwrap(), 1);
    assert_eq!(opchub_app::party_facts::seal_clear_bank_accounts(&platform).await.unwrap(), 0);
    let again: (Option<String>, Option<String>) = sqlx::query_as("SELECT bank_account_number, bank_account_hash FROM opcs WHERE id = $1")
        .bind(&opc)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(again, (None, Some(hash)), "the same number hashes alike");
    assert_eq!(
        founder.get("/api/v1/my/bank-accounts").await.json()[0]["bank_account"]["account_tail"],
        "2345"
    );

    // A wrong account is cleared by its owner only: another beneficiary is refused and nothing
    // changes; the page's button clears it; clearing again says there is nothing to clear.
    let api = format!("/api/v1/parties/opc/{opc}/bank-account");
    let (company, _) = app.user("otherbene", Role::Enterprise).await;
    let r = company.send(reqwest::Method::DELETE, &api, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "not_owner".to_string()));
    assert_eq!(
        founder.get("/api/v1/my/bank-accounts").await.json()[0]["bank_account"]["account_tail"],
        "2345"
    );
    let page = founder.get("/my/bank-account").await.text;
    assert!(
        page.contains(&format!("/my/bank-account/opc/{opc}/clear")) && page.contains("清除收款账户"),
        "{page}"
    );
    let r = founder.post_form(&format!("/my/bank-account/opc/{opc}/clear"), &[]).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/my/bank-account?done=1".to_string())
    );
    assert_eq!(founder.get("/api/v1/my/bank-accounts").await.json()[0]["bank_account"], Value::Null);
    assert!(founder.get("/my/bank-account").await.text.contains("尚未填写收款账户"));
    let r = founder.send(reqwest::Method::DELETE, &api, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "bank_account_not_set".to_string()));
    let audit = auditor.get("/api/v1/audit?action=party.bank_account").await.json();
    assert!(audit.to_string().contains("bank account cleared"), "{audit:#}");
    // Issue 21: the audit page names actions and objects in Chinese; the record's own text is
    // folded away on Chinese pages and shown on English ones.
    let page = auditor.get("/audit?action=party.bank_account").await.text;
    assert!(
        page.contains("修改收款账户") && page.contains("<details class=\"small\">"),
        "{page}"
    );
    let summary = page.split("class=\"audit-summary\"").nth(1).unwrap_or_default();
    let visible = summary.split("<details").next().unwrap_or_default();
    assert!(!visible.contains("bank account"), "no English in the visible summary: {visible}");
    auditor.get("/lang/en").await;
    let en = auditor.get("/audit?action=party.bank_account").await.text;
    assert!(en.contains("Bank account changed") && en.contains("bank account cleared"), "{en}");
}

/// Who is who (issue 18 item 1) through the pages: the registration wizard takes the founder's
/// ID number (a bad one is explained and registers nothing); the founder's own page lists the
/// people recorded — names and roles, never the numbers — and records and removes more, in
/// Chinese and on the English pages.
#[tokio::test]
async fn people_are_recorded_at_registration_and_on_the_bank_account_page() {
    let app = TestApp::start_preview().await;
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    let number = crate::skills::resident_id("11010519800101001");
    let page = app.client().get("/register?zone=hexi_area").await;
    assert!(page.text.contains("name=\"founder_id_number\""), "{}", page.text);
    let w0 = ws[0].clone();
    let u = uscc(811);
    let form = |id: &str| -> Vec<(&'static str, String)> {
        vec![
            ("username", "idfounder".into()),
            ("password", PASSWORD.into()),
            ("founder_name", "赵六".into()),
            ("company_name", "北京赵六智能科技有限公司".into()),
            ("uscc", u.clone()),
            ("zone", "hexi_area".into()),
            ("theme_package", "opc_agent_dev".into()),
            ("workstation_id", w0.clone()),
            ("founder_id_number", id.into()),
            ("founder_phone", "13900139000".into()),
        ]
    };
    let refs = |v: &[(&'static str, String)]| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<(&str, String)>>();
    let anon = app.client();
    anon.get("/register?zone=hexi_area").await;
    let bad = refs(&form("110105198001010019"));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = anon.post_form("/register", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("校验码不正确"), "{}", r.text);
    assert!(!r.text.contains("110105198001010019"), "the number is not echoed back");
    let opc_named = || async {
        app.store
            .opcs(None, None, None)
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.name == "北京赵六智能科技有限公司")
    };
    assert!(opc_named().await.is_none(), "nothing registered");
    let good = refs(&form(&number));
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = anon.post_form("/register", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let opc = opc_named().await.unwrap().id;

    let page = anon.get("/my/bank-account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&format!("id=\"persons-{opc}-title\"")), "{}", page.text);
    assert!(page.text.contains("赵六") && page.text.contains("创始人") && page.text.contains("身份证号已加密保存"));
    assert!(!page.text.contains(&number[..10]) && !page.text.contains("13900139000"));
    // Another person on the page: a bad number is explained, a good one listed.
    let path = format!("/my/persons/opc/{opc}");
    let r = anon
        .post_form(&path, &[("role", "beneficial_owner"), ("name", "钱七"), ("id_number", "1234")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("公民身份号码应为18位"), "{}", r.text);
    let second = crate::skills::resident_id("44052419900307123");
    let r = anon
        .post_form(&path, &[("role", "beneficial_owner"), ("name", "钱七"), ("id_number", &second)])
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/my/bank-account?done=1".to_string())
    );
    let people = anon.get(&format!("/api/v1/parties/opc/{opc}/persons")).await.json();
    assert_eq!(people.as_array().unwrap().len(), 2, "{people:#}");
    assert_eq!(people[0]["role"], "founder");
    assert_eq!(people[0]["phone_recorded"], true);
    anon.get("/lang/en").await;
    let en = anon.get("/my/bank-account").await;
    assert!(
        en.text.contains("Beneficial owner") && en.text.contains("ID number kept as a hash"),
        "{}",
        en.text
    );
    let pid = people[1]["id"].as_str().unwrap();
    let r = anon.post_form(&format!("/my/persons/opc/{opc}/{pid}/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let people = anon.get(&format!("/api/v1/parties/opc/{opc}/persons")).await.json();
    assert_eq!(people.as_array().unwrap().len(), 1);
}
