//! The registry through the JSON API, as a new user meets it: registration (M4.1, M4.2, G2),
//! bad input that must change nothing, API keys, and ownership between OPCs.

use crate::common::*;
use opchub_domain::{Role, Zone};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn registration_claims_the_workstation_and_survives_a_restart() {
    let app = TestApp::start().await;
    let (cid, ws) = app.community(Zone::HexiArea, 2).await;
    let anon = app.client();
    let mut body = registration("wangxm", &uscc(1), "hexi_area", &ws[0]);
    body["industry_code"] = json!("i6513");
    let r = anon.post_json("/api/v1/registrations", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let opc = &r.json()["opc"];
    assert_eq!(opc["registration_status"], "registered");
    // F3: the declared main industry, normalised with its GB/T 4754 section letter.
    assert_eq!(opc["industry_code"], "I6513");
    assert_eq!(opc["workstation_number"], "A-001");
    assert_eq!(opc["community_id"], cid.as_str());

    let detail = anon.get(&format!("/api/v1/communities/{cid}")).await.json();
    assert_eq!(detail["community"]["workstations_free"], 1);
    assert_eq!(detail["community"]["workstations_occupied"], 1);
    // The public directory does not reveal which OPC sits where.
    assert!(detail["workstations"].as_array().unwrap().iter().all(|w| w["opc_id"].is_null()));

    let db = app.stop().await;
    let app = TestApp::start_on(db).await;
    let founder = app.client();
    founder.login("wangxm", PASSWORD).await;
    let mine = founder.get("/api/v1/my/opc").await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.json()["uscc"], uscc(1));
    assert_eq!(app.client().get("/api/v1/stats").await.json()["opcs"], 1);
}

#[tokio::test]
async fn without_uscc_a_licence_ticket_opens_at_the_service_window() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::IbiIncubator, 1).await;
    let mut body = registration("lisi", "", "ibi_incubator", &ws[0]);
    body["uscc"] = json!(null);
    body["not_yet_registered"] = json!(true);
    let r = app.client().post_json("/api/v1/registrations", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["opc"]["registration_status"], "pending");
    let founder = app.client();
    founder.login("lisi", PASSWORD).await;
    let tickets = founder.get("/api/v1/tickets").await.json();
    assert_eq!(tickets.as_array().unwrap().len(), 1);
    assert_eq!(tickets[0]["kind"], "licence");
    // A specialist sees it in the queue (the OPC has no specialist yet).
    let (spec, _) = app.user("zhuanyuan", Role::Specialist).await;
    let queue = spec.get("/api/v1/tickets").await.json();
    assert_eq!(queue[0]["id"], tickets[0]["id"]);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let app = TestApp::start().await;
    let (cid, ws) = app.community(Zone::ZhongguancunFengtaiPark, 2).await;
    let c = app.client();
    assert_eq!(
        c.post_json(
            "/api/v1/registrations",
            registration("first", &uscc(7), "zhongguancun_fengtai_park", &ws[0])
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let audit_before = audit_count(&app.store).await;
    let stats_before = c.get("/api/v1/stats").await.text;

    // Wrong check character → 422 naming the field and the expected character.
    let mut bad = uscc(8);
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let r = c
        .post_json(
            "/api/v1/registrations",
            registration("second", &bad, "zhongguancun_fengtai_park", &ws[1]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field_codes"]["uscc"], "uscc_check_character");
    assert!(r.json()["error"]["fields"]["uscc"].as_str().unwrap().contains("校验"), "{}", r.text);

    // The same USCC twice → 409.
    let r = c
        .post_json(
            "/api/v1/registrations",
            registration("second", &uscc(7), "zhongguancun_fengtai_park", &ws[1]),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "uscc_taken".to_string()));

    // A workstation already taken → 409.
    let r = c
        .post_json(
            "/api/v1/registrations",
            registration("second", &uscc(8), "zhongguancun_fengtai_park", &ws[0]),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "workstation_taken".to_string()));

    // Unknown zone → 422; a workstation of another zone → 422.
    let r = c
        .post_json("/api/v1/registrations", registration("second", &uscc(8), "chaoyang_cbd", &ws[1]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field_codes"]["zone"], "unknown_zone");
    let r = c
        .post_json("/api/v1/registrations", registration("second", &uscc(8), "hexi_area", &ws[1]))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["workstation_id"], "workstation_outside_zone");
    // An industry code whose division is not in its section → 422 on that field.
    let mut body = registration("second", &uscc(8), "zhongguancun_fengtai_park", &ws[1]);
    body["industry_code"] = json!("C6513");
    let r = c.post_json("/api/v1/registrations", body).await;
    assert_eq!(r.json()["error"]["field_codes"]["industry_code"], "industry_code_section");

    // A body over the limit → 413; malformed JSON → 400; not JSON → 415.
    let mut huge = registration("second", &uscc(8), "zhongguancun_fengtai_park", &ws[1]);
    huge["company_name"] = json!("北".repeat(40_000));
    assert_eq!(
        c.post_json("/api/v1/registrations", huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let r = c
        .send(
            reqwest::Method::POST,
            "/api/v1/registrations",
            Some(Body::Raw("application/json", b"{\"username\": ".to_vec())),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "malformed_json".to_string()));
    let r = c
        .send(
            reqwest::Method::POST,
            "/api/v1/registrations",
            Some(Body::Raw("text/plain", b"hi".to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Missing fields → 422 listing each one.
    let r = c.post_json("/api/v1/registrations", json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for f in [
        "username",
        "password",
        "founder_name",
        "company_name",
        "uscc",
        "zone",
        "theme_package",
        "workstation_id",
    ] {
        assert_eq!(r.json()["error"]["field_codes"][f], "required", "field {f}: {}", r.text);
    }

    // None of it wrote anything: no account, no OPC, no audit entry, workstation still free.
    assert_eq!(audit_count(&app.store).await, audit_before);
    assert_eq!(c.get("/api/v1/stats").await.text, stats_before);
    assert!(app.store.user_by_username("second").await.unwrap().is_none());
    let detail = c.get(&format!("/api/v1/communities/{cid}")).await.json();
    assert_eq!(detail["community"]["workstations_free"], 1);
}

#[tokio::test]
async fn errors_speak_english_when_asked() {
    let app = TestApp::start().await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/communities?zone=nowhere", app.base))
        .header("accept-language", "en-US,en;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "validation_failed");
    assert!(v["error"]["fields"]["zone"].as_str().unwrap().is_ascii(), "{v}");
    let zh = app.client().get("/api/v1/communities?zone=nowhere").await.json();
    assert!(!zh["error"]["fields"]["zone"].as_str().unwrap().is_ascii(), "{zh}");
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    app.client()
        .post_json("/api/v1/registrations", registration("keyowner", &uscc(3), "hexi_area", &ws[0]))
        .await;
    let browser = app.client();
    browser.login("keyowner", PASSWORD).await;

    let created = browser
        .post_json("/api/v1/me/api-keys", json!({"name": "agent", "scopes": ["read"]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.json()["secret"].as_str().unwrap().to_string();
    let key_id = created.json()["key"]["id"].as_str().unwrap().to_string();
    // Listing never shows the secret again.
    let listed = browser.get("/api/v1/me/api-keys").await.text;
    assert!(!listed.contains(&secret));
    assert!(!listed.contains(&secret[12..]));

    let program = Client::with_key(&app.base, &secret);
    assert_eq!(program.get("/api/v1/my/opc").await.json()["uscc"], uscc(3));
    // A read-only key cannot write.
    let r = program
        .post_json("/api/v1/tickets", json!({"subject": "算法备案", "body": "需要哪些材料？"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "insufficient_scope".to_string()));

    // Revoked → 401.
    let r = browser
        .send(reqwest::Method::DELETE, &format!("/api/v1/me/api-keys/{key_id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["revoked_at"].is_i64());
    let r = program.get("/api/v1/my/opc").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_api_key".to_string()));

    // Expired → 401.
    let (s2, p2, h2) = opchub_web::auth::new_api_key();
    let me = app.store.user_by_username("keyowner").await.unwrap().unwrap();
    app.store
        .create_api_key(
            &opchub_store::Actor::system(),
            opchub_store::accounts::NewApiKey {
                user_id: &me.id,
                name: "old",
                prefix: &p2,
                key_hash: &h2,
                scopes: &["read".into()],
                expires_at: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        Client::with_key(&app.base, &s2).get("/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A write key works for writes; an unknown scope is refused.
    let w = browser.post_json("/api/v1/me/api-keys", json!({"name": "writer"})).await.json();
    let writer = Client::with_key(&app.base, w["secret"].as_str().unwrap());
    assert_eq!(
        writer
            .post_json("/api/v1/tickets", json!({"subject": "算法备案", "body": "需要哪些材料？"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = browser
        .post_json("/api/v1/me/api-keys", json!({"name": "x", "scopes": ["admin"]}))
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["scopes"], "unknown_scope");
}

#[tokio::test]
async fn browser_sessions_need_the_csrf_header_for_api_writes() {
    let app = TestApp::start().await;
    let (c, _) = app.user("platform1", Role::PlatformOperator).await;
    let mut no_csrf = Client::new(&app.base);
    no_csrf.bearer = None;
    let session = c.cookie("opchub_session").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/users", app.base))
        .header("cookie", format!("opchub_session={session}"))
        .json(&json!({"username": "x1234", "password": PASSWORD, "display_name": "x", "role": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(app.store.user_by_username("x1234").await.unwrap().is_none());
    let ok = c
        .post_json(
            "/api/v1/users",
            json!({"username": "x1234", "password": PASSWORD, "display_name": "x", "role": "auditor"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
}

#[tokio::test]
async fn one_opc_never_sees_another_opcs_private_data() {
    let app = TestApp::start().await;
    let (cid, ws) = app.community(Zone::Line10YouthVillage, 2).await;
    let anon = app.client();
    let a = anon
        .post_json(
            "/api/v1/registrations",
            registration("opca", &uscc(11), "line10_youth_village", &ws[0]),
        )
        .await
        .json();
    let b = anon
        .post_json(
            "/api/v1/registrations",
            registration("opcb", &uscc(12), "line10_youth_village", &ws[1]),
        )
        .await
        .json();
    let a_id = a["opc"]["id"].as_str().unwrap();
    let b_id = b["opc"]["id"].as_str().unwrap();
    let ca = app.client();
    ca.login("opca", PASSWORD).await;
    let cb = app.client();
    cb.login("opcb", PASSWORD).await;
    let t = cb
        .post_json("/api/v1/tickets", json!({"subject": "融资咨询", "body": "拨投联动怎么申请？"}))
        .await
        .json();
    let tid = t["id"].as_str().unwrap();

    assert_eq!(ca.get(&format!("/api/v1/opcs/{a_id}")).await.status, StatusCode::OK);
    assert_eq!(ca.get(&format!("/api/v1/opcs/{b_id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ca.get(&format!("/api/v1/tickets/{tid}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        ca.post_json(&format!("/api/v1/tickets/{tid}/replies"), json!({"body": "hi"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(ca.get("/api/v1/tickets").await.json().as_array().unwrap().is_empty());
    assert_eq!(ca.get("/api/v1/opcs").await.status, StatusCode::FORBIDDEN);

    // The community's operator sees its OPCs and who sits where; another operator does not.
    let op_id = app.store.community(&cid).await.unwrap().operator_user_id;
    let op = app.store.user(&op_id).await.unwrap();
    let cop = app.client();
    cop.login(&op.username, PASSWORD).await;
    assert_eq!(cop.get("/api/v1/opcs").await.json().as_array().unwrap().len(), 2);
    let detail = cop.get(&format!("/api/v1/communities/{cid}")).await.json();
    assert!(detail["workstations"].as_array().unwrap().iter().any(|w| w["opc_id"] == a_id));
    let (other_c, _) = app.community(Zone::HexiArea, 1).await;
    let other_op = app
        .store
        .user(&app.store.community(&other_c).await.unwrap().operator_user_id)
        .await
        .unwrap();
    let oc = app.client();
    oc.login(&other_op.username, PASSWORD).await;
    assert_eq!(oc.get(&format!("/api/v1/opcs/{a_id}")).await.status, StatusCode::NOT_FOUND);
    assert!(oc.get("/api/v1/opcs").await.json().as_array().unwrap().is_empty());
    let ws_a = app.store.workstation(&ws[1]).await.unwrap();
    assert_eq!(
        oc.put_json(&format!("/api/v1/workstations/{}", ws_a.id), json!({"status": "reserved"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn specialists_serve_assigned_opcs_through_tickets() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::OtherKeyZone, 1).await;
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration("opcz", &uscc(21), "other_key_zone", &ws[0]))
        .await
        .json();
    let opc_id = reg["opc"]["id"].as_str().unwrap().to_string();
    let (committee, _) = app.user("guanweihui", Role::Committee).await;
    let (spec, spec_id) = app.user("zhuanyuan1", Role::Specialist).await;
    let (spec2, _) = app.user("zhuanyuan2", Role::Specialist).await;
    let r = committee
        .put_json(&format!("/api/v1/opcs/{opc_id}/specialist"), json!({"specialist_user_id": spec_id}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Assigning someone who is not a specialist is refused.
    let r = committee
        .put_json(
            &format!("/api/v1/opcs/{opc_id}/specialist"),
            json!({"specialist_user_id": reg["user"]["id"]}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["specialist_user_id"], "not_a_specialist");

    let founder = app.client();
    founder.login("opcz", PASSWORD).await;
    assert_eq!(founder.get("/api/v1/my/opc").await.json()["specialist_name"], "zhuanyuan1");
    let t = founder
        .post_json("/api/v1/tickets", json!({"subject": "算法备案", "body": "需要准备哪些材料？"}))
        .await
        .json();
    let tid = t["id"].as_str().unwrap();
    assert_eq!(spec.get("/api/v1/tickets").await.json().as_array().unwrap().len(), 1);
    assert!(spec2.get("/api/v1/tickets").await.json().as_array().unwrap().is_empty());
    assert_eq!(spec2.get(&format!("/api/v1/tickets/{tid}")).await.status, StatusCode::NOT_FOUND);
    let r = spec
        .post_json(
            &format!("/api/v1/tickets/{tid}/replies"),
            json!({"body": "请准备算法安全自评估报告。"}),
        )
        .await;
    assert_eq!(r.json()["status"], "answered");
    let r = founder.post_json(&format!("/api/v1/tickets/{tid}/close"), json!({})).await;
    assert_eq!(r.json()["status"], "closed");
    let r = spec
        .post_json(&format!("/api/v1/tickets/{tid}/replies"), json!({"body": "补充"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "ticket_closed".to_string()));
    let thread = founder.get(&format!("/api/v1/tickets/{tid}")).await.json();
    assert_eq!(thread["messages"].as_array().unwrap().len(), 2);

    // The audit log names who did what.
    let (auditor, _) = app.user("shenji", Role::Auditor).await;
    let log = auditor.get("/api/v1/audit?object_kind=ticket").await.json();
    let actions: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["ticket.close", "ticket.reply", "ticket.create"]);
    assert!(log[1]["after_digest"].as_str().unwrap().len() == 64);
    assert_eq!(log[1]["actor_user_id"], spec_id.as_str());
}

#[tokio::test]
async fn operations_endpoints() {
    let app = TestApp::start().await;
    let c = app.client();
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(c.get("/readyz").await.text, "ready");
    c.get("/api/v1/stats").await;
    let m = c.get("/metrics").await.text;
    assert!(m.contains("opchub_registry_opcs 0"), "{m}");
    assert_eq!(c.get("/api/v1/nothing-here").await.code(), "not_found");
}

#[tokio::test]
async fn beneficiaries_see_their_own_cap_headroom_only() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    let a = app
        .client()
        .post_json("/api/v1/registrations", registration("capa", &uscc(80), "hexi_area", &ws[0]))
        .await
        .json();
    app.client()
        .post_json("/api/v1/registrations", registration("capb", &uscc(81), "hexi_area", &ws[1]))
        .await;
    let opc_a = a["opc"]["id"].as_str().unwrap().to_string();
    let key = opchub_store::caps::CapKey {
        clause: "M5.1".into(),
        beneficiary: opc_a.clone(),
        scope: "year".into(),
        period_key: "2027".into(),
    };
    app.store
        .consume_cap(&opchub_store::Actor::system(), &key, 50_000_000, 1_234_567, "app-1")
        .await
        .unwrap();
    let ca = app.client();
    ca.login("capa", PASSWORD).await;
    let mine = ca.get("/api/v1/policy/headroom").await.json();
    assert_eq!(
        (mine[0]["clause"].as_str(), mine[0]["headroom_fen"].as_i64()),
        (Some("M5.1"), Some(50_000_000 - 1_234_567))
    );
    let cb = app.client();
    cb.login("capb", PASSWORD).await;
    assert_eq!(
        cb.get(&format!("/api/v1/policy/headroom?beneficiary={opc_a}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(cb.get("/api/v1/policy/headroom").await.json().as_array().unwrap().is_empty());
    let (auditor, _) = app.user("capaudit", Role::Auditor).await;
    assert_eq!(
        auditor.get(&format!("/api/v1/policy/headroom?beneficiary={opc_a}")).await.json()[0]["consumed_fen"],
        1_234_567
    );
}
