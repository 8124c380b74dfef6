//! A fresh deployment finished through the public API and the command line only — no demo
//! loader, no SQL (issue 17): the accounts (two committee members, finance, an agency user in
//! its agency, the platform operator), a community and an OPC at one of its free workstations,
//! a district enterprise; the facts settlement reads (G2 tax registration of the community's
//! company — "information missing" until recorded —, bank accounts); usage reported through a
//! ledger source; F3 lists imported; a settlement batch drafted by one committee member,
//! confirmed by the beneficiary, approved by the other, paid by finance with a bank reference
//! per line and exported with the bank account; and an M3.2 application through agency review to the finance bureau's payment.
//! Runs on SQLite, or on PostgreSQL when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Datelike;
use serde_json::{json, Value};

mod common;

use common::{create_user, ok, opchub, serve, Api, PASSWORD};

/// A valid USCC (check character computed) from a number.
fn uscc(n: u32) -> String {
    let alphabet = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut tail = String::new();
    let mut v = n;
    for _ in 0..6 {
        tail.insert(0, alphabet[(v % 31) as usize] as char);
        v /= 31;
    }
    opchub_domain::Uscc::complete(&format!("91110106MA0{tail}")).unwrap().to_string()
}

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_deployment_settles_and_pays_through_the_api_and_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let d = dir.path();

    // Accounts, from the command line. An agency user names its agency (F1).
    create_user(d, &db, "platform", "platform_operator", &[]);
    create_user(d, &db, "cmte1", "committee", &[]);
    create_user(d, &db, "cmte2", "committee", &[]);
    create_user(d, &db, "finance", "finance", &[]);
    create_user(d, &db, "operator", "community_operator", &[]);
    let (code, out) = opchub(
        d,
        &db,
        &["user", "create", "--username", "sci", "--role", "agency", "--password", PASSWORD],
    );
    assert_eq!(code, 2, "an agency user without an agency is refused: {out}");
    assert!(out.contains("agency: required"), "{out}");
    let (code, out) = opchub(
        d,
        &db,
        &[
            "user",
            "create",
            "--username",
            "sci",
            "--role",
            "agency",
            "--password",
            PASSWORD,
            "--agency",
            "nowhere",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("agency: unknown_agency"), "{out}");
    create_user(d, &db, "sci", "agency", &["--agency", "commerce"]);
    // Moved to the agency that reviews M3.2 (the policy's review_agency), audited.
    let (code, out) = opchub(
        d,
        &db,
        &["user", "set-agency", "--username", "sci", "--agency", "science_technology"],
    );
    assert_eq!(code, 0, "{out}");

    // F3: every list imported (empty), so no fact stays unknown for want of a list.
    let empty = d.join("empty.csv");
    std::fs::write(&empty, "uscc,name,reason\n").unwrap();
    for kind in [
        "restricted_industry",
        "no_support_sanction",
        "safety_accident",
        "excluded_by_review",
    ] {
        let (code, out) = opchub(d, &db, &["exclusions", "import", "--kind", kind, empty.to_str().unwrap()]);
        assert_eq!(code, 0, "{kind}: {out}");
    }

    let (mut child, base) = serve(d, &db);
    let platform = Api::login(&base, "platform").await;
    let operator = Api::login(&base, "operator").await;
    let cmte1 = Api::login(&base, "cmte1").await;
    let cmte2 = Api::login(&base, "cmte2").await;
    let finance = Api::login(&base, "finance").await;
    let sci = Api::login(&base, "sci").await;

    // The operator's community with free workstations (M1.1), and an OPC registered at one.
    let community = ok(
        &operator
            .post(
                "/api/v1/communities",
                json!({"name": "丰台新生OPC社区", "company_name": "北京新生园区运营有限公司", "company_uscc": uscc(901),
                       "zone": "hexi_area", "address": "丰台区河西路1号", "workstations": 3}),
            )
            .await,
        "community",
    );
    let community_id = community["id"].as_str().unwrap().to_string();
    let detail = ok(
        &operator.get(&format!("/api/v1/communities/{community_id}")).await,
        "community detail",
    );
    let ws = detail["workstations"][0]["id"].as_str().unwrap().to_string();
    let reg = reqwest::Client::new()
        .post(format!("{base}/api/v1/registrations"))
        .json(&json!({
            "username": "founder", "password": PASSWORD, "founder_name": "王小明", "company_name": "北京新生智能科技有限公司",
            "uscc": uscc(902), "tax_registered": true, "zone": "hexi_area", "theme_package": "opc_agent_dev", "workstation_id": ws,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let opc_id = reg.json::<Value>().await.unwrap()["opc"]["id"].as_str().unwrap().to_string();
    let founder = Api::login(&base, "founder").await;
    let enterprise = ok(
        &platform
            .post(
                "/api/v1/enterprises",
                json!({"name": "北京丰台新生制造有限公司", "uscc": uscc(903), "zone": "hexi_area", "username": "company",
                       "password": PASSWORD, "contact_name": "李经理"}),
            )
            .await,
        "enterprise",
    );
    let enterprise_id = enterprise["id"].as_str().unwrap().to_string();

    // Usage through the API: the operator's compute item (¥200 list, ¥100 OPC price per
    // GPU-hour), approved by the platform operator (issue 18: price tables are reviewed), and a
    // ledger source the platform registers for the operator reporting an hour of GPU the OPC
    // used at the operator's discount (M2.2).
    ok(
        &operator
            .post(
                "/api/v1/gateway/prices",
                json!({"version": "gpu-1", "items": [{"item": "a100", "unit": "gpu_hour", "name_zh": "A100算力", "name_en": "A100",
                        "list_fen": 20_000, "opc_fen": 10_000}]}),
            )
            .await,
        "price table",
    );
    ok(
        &platform
            .put(
                &format!(
                    "/api/v1/gateway/prices/{}/gpu-1/status",
                    community["operator_user_id"].as_str().unwrap()
                ),
                json!({"status": "approved"}),
            )
            .await,
        "price review",
    );
    let source = ok(
        &platform
            .post(
                "/api/v1/ledger/sources",
                json!({"name": "community-gpu", "owner_user_id": community["operator_user_id"], "rate_per_minute": 1000}),
            )
            .await,
        "source",
    );
    let source_key = source["key"].as_str().unwrap().to_string();
    let r = operator
        .send(
            reqwest::Method::POST,
            "/api/v1/ledger/events",
            Some(json!({"events": [{
                "source_event_id": "gpu-1", "kind": "compute.gpu_second", "unit": "gpu_second", "subject": opc_id,
                "counterparty": community_id, "quantity": 3_600, "list_amount_fen": 20_000, "charged_amount_fen": 10_000,
                "price_version": "gpu-1", "occurred_at": chrono::Utc::now().to_rfc3339(), "attributes": {"item": "a100"}
            }]})),
            Some(&source_key),
        )
        .await;
    let results = ok(&r, "ingest");
    assert!(results["results"][0]["receipt"].is_object(), "{results:#}");

    // The community's company has no recorded tax registration yet: its M1.1 estimate is
    // "information missing" (G2).
    let year = (chrono::Utc::now() + chrono::Duration::hours(8)).year();
    let m11 = |e: &Value| e.as_array().unwrap().iter().find(|x| x["clause"] == "M1.1").cloned().unwrap();
    let before = m11(&ok(
        &operator.get(&format!("/api/v1/policy/calculator?year={year}")).await,
        "calculator",
    ));
    assert!(before["eligible"].is_null(), "{before:#}");
    assert!(before["decision"].to_string().contains("tax_registered"), "{before:#}");
    // Only the committee or the platform operator records it; bad input changes nothing.
    let path = format!("/api/v1/parties/community/{community_id}/registration");
    assert_eq!(operator.put(&path, json!({"tax_registered": true})).await.status, 403);
    assert_eq!(cmte1.put(&path, json!({})).await.code(), "no_change");
    let r = cmte1.put(&path, json!({"in_district": true})).await;
    assert_eq!(r.body["error"]["field_codes"]["in_district"], "not_applicable");
    let set = ok(&cmte1.put(&path, json!({"tax_registered": true})).await, "tax registration");
    assert_eq!(
        (set["tax_registered"].as_bool(), set["market_registered"].as_bool()),
        (Some(true), Some(true))
    );
    ok(
        &platform
            .put(
                &format!("/api/v1/parties/enterprise/{enterprise_id}/registration"),
                json!({"tax_registered": true, "in_district": true}),
            )
            .await,
        "enterprise registration",
    );
    let after = m11(&ok(
        &operator.get(&format!("/api/v1/policy/calculator?year={year}")).await,
        "calculator",
    ));
    assert_eq!(after["eligible"], true, "{after:#}");
    // The CLI lists the recorded facts.
    let (code, out) = opchub(d, &db, &["party", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().any(|l| l.contains(&community_id) && l.contains(" yes ")), "{out}");

    // Bank accounts: the operator through the API for its community; the OPC's from the CLI.
    let bank = json!({"account_name": "北京新生园区运营有限公司", "bank": "北京银行丰台支行", "account_number": "20000012345678901"});
    assert_eq!(
        founder
            .put(&format!("/api/v1/parties/community/{community_id}/bank-account"), bank.clone())
            .await
            .code(),
        "not_owner"
    );
    ok(
        &operator
            .put(&format!("/api/v1/parties/community/{community_id}/bank-account"), bank)
            .await,
        "bank account",
    );
    let set = |number: &'static str| {
        [
            "party",
            "bank-account",
            "--kind",
            "opc",
            "--id",
            opc_id.as_str(),
            "--account-name",
            "北京新生智能科技有限公司",
            "--bank",
            "工行",
            "--account-number",
            number,
        ]
    };
    let (code, out) = opchub(d, &db, &set("12ab"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("account_number: not_digits"), "{out}");
    // A wrong account is cleared from the CLI (audited); clearing again has nothing to clear.
    let (code, out) = opchub(d, &db, &set("6222020200099999"));
    assert_eq!(code, 0, "{out}");
    let clear = ["party", "bank-account-clear", "--kind", "opc", "--id", &opc_id];
    let (code, out) = opchub(d, &db, &clear);
    assert_eq!((code, out.contains("bank account cleared")), (0, true), "{out}");
    let (code, out) = opchub(d, &db, &clear);
    assert_eq!((code, out.contains("bank_account_not_set")), (2, true), "{out}");

    // Who is who (issue 18 item 1): the desk records the founder from the CLI (a wrong check
    // character is refused); the server hashes alike (the same person again is a conflict);
    // the operator records its community's controlling person through the API.
    let person = |n: &str| -> Vec<String> {
        [
            "party",
            "person-add",
            "--kind",
            "opc",
            "--id",
            &opc_id,
            "--role",
            "founder",
            "--name",
            "孙八",
            "--id-number",
            n,
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let args = person("110105198001010019");
    let (code, out) = opchub(d, &db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("id_number: id_bad_check_character"), "{out}");
    let args = person("110105198001010016");
    let (code, out) = opchub(d, &db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recorded as founder"), "{out}");
    let again = founder
        .post(
            &format!("/api/v1/parties/opc/{opc_id}/persons"),
            json!({"role": "founder", "name": "孙八", "id_number": "110105198001010016"}),
        )
        .await;
    assert_eq!(again.code(), "person_already_recorded");
    ok(
        &operator
            .post(
                &format!("/api/v1/parties/community/{community_id}/persons"),
                json!({"role": "controlling_person", "name": "周九", "id_number": "440524199003071236"}),
            )
            .await,
        "controlling person",
    );
    let (code, out) = opchub(d, &db, &["party", "persons", "--id", &opc_id]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("孙八") && !out.contains("1101051980"), "{out}");
    // The desk records the OPC's registered address (a two-character one is refused).
    let address = |a: &'static str| ["party", "address", "--kind", "opc", "--id", opc_id.as_str(), "--address", a];
    let (code, out) = opchub(d, &db, &address("1号"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("registered_address: too_short"), "{out}");
    let (code, out) = opchub(d, &db, &address("北京市丰台区南四环西路188号十二区22号楼"));
    assert_eq!((code, out.contains("registered address set")), (0, true), "{out}");
    let (code, out) = opchub(d, &db, &["party", "related"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 related pairs"), "different people relate no one: {out}");

    // Settlement: drafted by one committee member, confirmed by the beneficiary, approved by another.
    let created = ok(
        &cmte1
            .post("/api/v1/settlements", json!({"year": year, "clauses": ["M1.1", "M2.2"]}))
            .await,
        "draft",
    );
    let batch = created["batch"]["id"].as_str().unwrap().to_string();
    let view = ok(&cmte1.get(&format!("/api/v1/settlements/{batch}")).await, "batch");
    let lines = view["lines"].as_array().unwrap();
    // M2.2 counts usage on bills paid and confirmed (issue 19 item 4): this month's compute is
    // on the running bill, so the line counts nothing yet and its trace says what waits.
    let m22 = lines
        .iter()
        .find(|l| l["clause"] == "M2.2")
        .unwrap_or_else(|| panic!("no M2.2 line: {view:#}"));
    assert_eq!(m22["amount_fen"], 0, "{m22:#}");
    let decision: Value = serde_json::from_str(m22["decision"].as_str().unwrap()).unwrap();
    let waits = decision["trace"].as_array().unwrap().iter().find(|s| s["rule"] == "bill_running");
    let month = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m")
        .to_string();
    assert_eq!(
        waits.map(|s| s["values"]["month"].clone()),
        Some(json!(month)),
        "the running bill is named: {decision:#}"
    );
    for clause in ["M1.1"] {
        let l = lines
            .iter()
            .find(|l| l["clause"] == clause)
            .unwrap_or_else(|| panic!("no {clause} line: {view:#}"));
        assert_eq!(l["eligible"], "yes", "{clause}: {l:#}");
        assert!(l["amount_fen"].as_i64().unwrap() > 0, "{clause}: {l:#}");
        ok(
            &operator
                .post(
                    "/api/v1/my/settlements/confirm",
                    json!({"batch": batch, "clause": clause, "beneficiary": l["beneficiary"], "accept": true}),
                )
                .await,
            "confirm",
        );
    }
    let approved = ok(
        &cmte2.post(&format!("/api/v1/settlements/{batch}/approve"), json!({})).await,
        "approve",
    );
    let paid = approved["approved_fen"].as_i64().unwrap();
    assert!(paid > 0, "{approved:#}");
    assert!(
        approved["paid_fen"].is_null(),
        "nothing reads as paid before finance pays: {approved:#}"
    );
    // Finance pays each approved line with its bank reference; only then is the batch 已拨付.
    let pay_lines: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l["clause"] == "M1.1")
        .enumerate()
        .map(|(i, l)| json!({"clause": l["clause"], "beneficiary": l["beneficiary"], "payment_reference": format!("BANK-{i}")}))
        .collect();
    let done = ok(
        &finance
            .post(
                &format!("/api/v1/settlements/{batch}/pay"),
                json!({"reference": "FIN-2026-001", "lines": pay_lines}),
            )
            .await,
        "pay",
    );
    assert_eq!(
        (done["status"].as_str(), done["paid_fen"].as_i64()),
        (Some("paid"), Some(paid)),
        "{done:#}"
    );
    // Finance's export names where to pay, and its amounts add up.
    let x = finance.get(&format!("/api/v1/settlements/{batch}/export?format=csv")).await;
    assert_eq!(x.status, 200);
    let text = String::from_utf8(x.bytes).unwrap();
    assert!(text.contains("北京银行丰台支行") && text.contains("20000012345678901"), "{text}");
    let total = text.lines().last().unwrap();
    assert!(total.starts_with("合计") && total.contains(&format!(",{paid},")), "{total}");
    assert!(
        x.disposition.contains("filename=\"settlement-") && x.disposition.contains("filename*=UTF-8''"),
        "{}",
        x.disposition
    );

    // The command line writes the same export, here with English headers.
    let out_csv = d.join("batch.csv");
    let (code, out) = opchub(
        d,
        &db,
        &["settlement", "export", &batch, "--csv", out_csv.to_str().unwrap(), "--lang", "en"],
    );
    assert_eq!(code, 0, "{out}");
    let cli = std::fs::read_to_string(&out_csv).unwrap();
    assert!(
        cli.trim_start_matches('\u{feff}').starts_with("Batch,Clause,Beneficiary ID"),
        "{cli}"
    );
    assert!(
        cli.contains("20000012345678901") && cli.lines().last().unwrap().starts_with("Total,"),
        "{cli}"
    );

    // M3.2 (joint R&D): applied for by the OPC, through intake, the science and technology
    // agency's review and the committee's decision, to the finance bureau's payment.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive().to_string();
    let a = ok(
        &founder
            .post(
                "/api/v1/applications",
                json!({"clause": "M3.2", "year": year, "answers": {"partner_is_university_or_institute": true, "project_id": "RD-1",
                       "rd_spend": [{"date": today, "amount_fen": 10_000_000, "note": "联合实验室"}]}}),
            )
            .await,
        "application",
    );
    let app_id = a["id"].as_str().unwrap().to_string();
    let spec = ok(&founder.get(&format!("/api/v1/applications/{app_id}")).await, "application");
    for slot in 0..spec["form"]["evidence"].as_array().unwrap().len() {
        ok(
            &founder
                .upload(&format!("/api/v1/applications/{app_id}/files?slot={slot}&name=e.pdf"), PDF)
                .await,
            "evidence",
        );
    }
    let version = ok(&founder.get(&format!("/api/v1/applications/{app_id}")).await, "application")["application"]["version"].clone();
    ok(
        &founder
            .post(&format!("/api/v1/applications/{app_id}/submit"), json!({"version": version}))
            .await,
        "submit",
    );
    for (who, action) in [(&cmte1, "pass"), (&sci, "pass"), (&cmte1, "approve")] {
        let v = ok(&who.get(&format!("/api/v1/applications/{app_id}")).await, "application")["application"]["version"].clone();
        ok(
            &who.post(
                &format!("/api/v1/applications/{app_id}/review"),
                json!({"version": v, "action": action}),
            )
            .await,
            action,
        );
    }
    let b = ok(
        &finance
            .post(
                "/api/v1/fund-batches",
                json!({"reference": "FB-FRESH-1", "items": [{"application_id": app_id, "payment_reference": "BANK-1"}]}),
            )
            .await,
        "payment",
    );
    assert_eq!(b["paid_fen"], 1_000_000, "10% of ¥100,000 of R&D spend (M3.2): {b:#}");

    child.kill().unwrap();
    child.wait().unwrap();
}
