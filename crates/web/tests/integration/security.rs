//! Security findings of issue 20, each as a user or an attacker would meet it over real HTTP:
//! HTTP tools that tried to reach the platform's own network through their path (SSRF), YAML
//! documents nested to stall the server, redirects off the site after sign-in or a language
//! switch, symbolic links in Agent Skill packages, dates and months that broke lists forever,
//! and password guessing without a brake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use base64::Engine;
use opchub_domain::{Role, Uscc, Zone};
use opchub_store::accounts::NewUser;
use opchub_store::Actor;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A loopback listener standing for an internal admin service: counts connections and
/// answers every request with a secret.
async fn internal_admin() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"secret":"internal-admin-token"}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

/// An OPC founder (signed in) on `app`; returns the client and the OPC's id.
async fn opc(app: &TestApp, name: &str, n: u32, ws: &str) -> (Client, String) {
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration(name, &uscc(n), "hexi_area", ws))
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let c = app.client();
    c.login(name, PASSWORD).await;
    (c, reg.json()["opc"]["id"].as_str().unwrap().to_string())
}

fn tool_doc(server: &str, path: &str) -> String {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Admin", "version": "1"},
        "servers": [{"url": server}],
        "paths": {path: {"get": {"operationId": "get_admin", "summary": "Reads the status"}}}
    })
    .to_string()
}

fn http_tool(slug: &str, doc: &str) -> Value {
    json!({"slug": slug, "name": "状态查询", "summary": "status lookup", "kind": "http_tool", "category": "agent_tool",
           "version": "1.0.0", "openapi": doc, "submit": true})
}

async fn approve(platform: &Client, version_id: &str) {
    let r = platform
        .post_json(
            &format!("/api/v1/skill-versions/{version_id}/review"),
            json!({"decision": "approve", "comment": "通过"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

// ---------------------------------------------------------------- 1. SSRF through HTTP tools

/// Issue 20, finding 1: a path key such as `@127.0.0.1:PORT/internal-admin` on a public IP
/// literal server was joined as text (`http://93.184.216.34@127.0.0.1:PORT/…`) and fetched the
/// loopback listener after approval. Now it is refused at import, and a version stored before
/// is refused at call time; the listener is never reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_names_another_host_is_refused_at_import_and_at_call_time() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    let (_, _) = opc(&app, "ssrfpub", 601, &ws[0]).await;
    let (invoker, _) = opc(&app, "ssrfuser", 602, &ws[1]).await;
    let key = invoker.post_json("/api/v1/me/api-keys", json!({"name": "agent"})).await.json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (platform, _) = app.user("ssrfplatform", Role::PlatformOperator).await;
    let (port, hits) = internal_admin().await;

    // Outside test mode (the production rule): a public IP literal passes the address check,
    // the path may not leave it.
    let strict = TestApp::start_on_with_skills(app.db.clone(), opchub_web::skills::SkillsConfig::default()).await;
    let publisher = strict.client();
    publisher.login("ssrfpub", PASSWORD).await;
    for path in [
        format!("@127.0.0.1:{port}/internal-admin"),
        format!(":x@127.0.0.1:{port}/internal-admin"),
        format!("//127.0.0.1:{port}/internal-admin"),
        format!("/\\127.0.0.1:{port}/internal-admin"),
        format!("/\t/127.0.0.1:{port}/internal-admin"),
        format!("/../@127.0.0.1:{port}/internal-admin"),
    ] {
        let r = publisher
            .post_json("/api/v1/skills", http_tool("ssrf", &tool_doc("http://93.184.216.34", &path)))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path:?}: {}", r.text);
        assert_eq!(r.code(), "skill_openapi_path_invalid", "{path:?}: {}", r.text);
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    assert!(app.store.skills(false).await.unwrap().is_empty(), "nothing was stored");

    // A version stored before the check (its pinned path rewritten in the database): the call
    // URL is built on the base's host and the path refused; the listener is not reached.
    let r = publisher
        .post_json(
            "/api/v1/skills",
            http_tool("legacy", &tool_doc("http://93.184.216.34", "/internal-admin")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["skill"]["id"].as_str().unwrap().to_string();
    let version = r.json()["version"]["id"].as_str().unwrap().to_string();
    approve(&platform, &version).await;
    let tools = r.json()["version"]["tools"]
        .to_string()
        .replace("\"/internal-admin\"", &format!("\"@127.0.0.1:{port}/internal-admin\""));
    let sql = format!(
        "UPDATE skill_versions SET tools = '{}' WHERE id = '{version}'",
        tools.replace('\'', "''")
    );
    sqlx::query(&sql).execute(app.store.pool()).await.unwrap();
    let later = TestApp::start_on_with_skills(app.db.clone(), opchub_web::skills::SkillsConfig::default()).await;
    let api = Client::with_key(&later.base, &key);
    let r = api
        .post_json(
            &format!("/api/v1/skills/{id}/invoke"),
            json!({"tool": "get_admin", "arguments": {}}),
        )
        .await;
    assert!(!r.text.contains("internal-admin-token"), "{}", r.text);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.code(), "skill_openapi_path_invalid", "{}", r.text);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the internal listener was never reached");
}

/// Issue 20, finding 10: IPv4-compatible, IPv4-translated and 6to4 forms of loopback pass no
/// more than 127.0.0.1 does, as a server URL (publish time) and as an MCP URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v6_forms_of_loopback_are_refused_as_upstream_addresses() {
    let app = TestApp::start_on_with_skills(Arc::new(fresh_db().await), opchub_web::skills::SkillsConfig::default()).await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let (publisher, _) = opc(&app, "v6pub", 603, &ws[0]).await;
    for host in ["[::127.0.0.1]", "[::ffff:0:7f00:1]", "[2002:7f00:1::]"] {
        let r = publisher
            .post_json(
                "/api/v1/skills",
                http_tool("v6", &tool_doc(&format!("http://{host}:8080"), "/status")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {}", r.text);
        assert_eq!(r.code(), "skill_upstream_private_address", "{host}: {}", r.text);
        let r = publisher
            .post_json(
                "/api/v1/skills",
                json!({"slug": "v6mcp", "name": "x", "summary": "x", "kind": "mcp_server", "category": "agent_tool",
                       "version": "1.0.0", "mcp_url": format!("http://{host}:8080/mcp")}),
            )
            .await;
        assert_eq!(r.code(), "skill_upstream_private_address", "{host}: {}", r.text);
    }
    assert!(app.store.skills(false).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- 2. YAML nesting

/// Issue 20, finding 2: `paths: ` and 200,000 `[` then as many `]` (400 KB) held a worker for
/// minutes. It is refused before parsing with `skill_openapi_too_deep`, and the server keeps
/// answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_yaml_document_is_refused_before_parsing_and_the_server_stays_responsive() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let (publisher, _) = opc(&app, "yamlpub", 604, &ws[0]).await;
    let doc = format!(
        "openapi: 3.0.3\nservers: [{{url: 'https://tools.example.com'}}]\npaths: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    assert!(doc.len() > 400_000);
    let sent = {
        let p = publisher.clone();
        let body = json!({"slug": "deep", "name": "深", "summary": "deep", "kind": "http_tool", "category": "agent_tool",
                          "version": "1.0.0", "openapi": doc});
        tokio::spawn(async move { p.post_json("/api/v1/skills", body).await })
    };
    // Two at once, as in the report: the second is refused the same way.
    let second = {
        let p = publisher.clone();
        let body = json!({"slug": "deeper", "name": "深", "summary": "deep", "kind": "http_tool", "category": "agent_tool",
                          "version": "1.0.0", "openapi": format!("{}{}", "{a: ".repeat(80_000), "}".repeat(80_000))});
        tokio::spawn(async move { p.post_json("/api/v1/skills", body).await })
    };
    let health = tokio::time::timeout(Duration::from_secs(20), app.client().get("/healthz"))
        .await
        .expect("/healthz answers while documents are checked");
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    for task in [sent, second] {
        let r = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the document is refused, not parsed for minutes")
            .unwrap();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", &r.text[..r.text.len().min(300)]);
        assert_eq!(r.code(), "skill_openapi_too_deep");
    }
    assert!(app.store.skills(false).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- 3. redirects

/// Issue 20, findings 4 and 10: after sign-in `next` sends the browser only to a path of this
/// site; `/\t/evil.example/x` (a browser drops the tab: `//evil.example/x`) and a `next` with a
/// line break (a 500 before, with the session cookies set) go to the workbench instead.
#[tokio::test]
async fn sign_in_and_language_switch_redirect_only_within_the_site() {
    let app = TestApp::start().await;
    let (_, _) = app.user("redirop", Role::PlatformOperator).await;
    let home = "/workbench";
    for (next, expected) in [
        ("/\t/evil.example/x", home),
        ("/x\r\nSet-Cookie: a=b", home),
        ("//evil.example/x", home),
        ("/\\evil.example/x", home),
        ("https://evil.example/x", home),
        ("/\u{7f}/evil.example", home),
        (" /admin/opcs", home),
        ("/admin/communities?tab=1", "/admin/communities?tab=1"),
    ] {
        let c = app.client();
        assert_eq!(c.get("/login").await.status, StatusCode::OK);
        let r = c
            .post_form("/login", &[("username", "redirop"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}: {}", r.text);
        assert_eq!(r.location(), expected, "{next:?}");
        assert!(c.cookie("opchub_session").is_some());
    }
    // The login page does not carry an off-site `next` into its form either.
    let page = app.client().get("/login?next=%2F%09%2Fevil.example%2Fx").await;
    assert!(!page.text.contains("evil.example"), "{}", page.text);

    // The language switch goes back to the Referer's path on this site only.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (referer, expected) in [
        (format!("{}//evil.example/p", app.base), "/"),
        (format!("{}/\\evil.example/p", app.base), "/"),
        ("https://evil.example//evil.example/p".to_string(), "/"),
        (format!("{}/skills?q=1", app.base), "/skills?q=1"),
    ] {
        let r = http
            .get(format!("{}/lang/en", app.base))
            .header("referer", &referer)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{referer}: {}", r.status());
        assert_eq!(r.headers()["location"], expected, "{referer}");
    }
}

// ---------------------------------------------------------------- 4. symlinks in packages

/// Issue 20, finding 6: a zip entry that is a symbolic link (`assets/link -> /etc/passwd`)
/// was stored and served to invokers as is. It is refused with `skill_package_special_entry`.
#[tokio::test]
async fn an_agent_skill_package_with_a_symbolic_link_is_refused() {
    use std::io::Write;
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let (publisher, _) = opc(&app, "zippub", 605, &ws[0]).await;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("SKILL.md", opts).unwrap();
    w.write_all(b"---\nname: link-skill\ndescription: Sorts invoices.\n---\n# Link\n")
        .unwrap();
    w.add_symlink("assets/link", "/etc/passwd", opts).unwrap();
    let zip = w.finish().unwrap().into_inner();
    let r = publisher
        .post_json(
            "/api/v1/skills",
            json!({"name": "链接", "summary": "link", "kind": "agent_skill", "category": "agent_tool", "version": "1.0.0",
                   "package_base64": base64::engine::general_purpose::STANDARD.encode(zip)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "skill_package_special_entry", "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("assets/link"), "{}", r.text);
    assert!(app.store.skills(false).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- 5. dates and months

/// Issue 20, finding 7: interest months `2026-5`, ` 2026-03`, `\t2026-03` and days
/// `+10000-01-01`, `0000-01-01` were stored, and the loan claims answered 400 from then on.
/// Each is refused with its field code and nothing is stored.
#[tokio::test]
async fn malformed_or_far_dates_and_months_of_loans_are_refused_and_nothing_is_stored() {
    let app = TestApp::start_preview().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let (c, _) = opc(&app, "loandates", 606, &ws[0]).await;
    let l = c
        .post_json(
            "/api/v1/loans",
            json!({ "bank": "北京银行丰台支行", "contract_no": "BJ-1", "principal_fen": 100_000_000 }),
        )
        .await;
    assert_eq!(l.status, StatusCode::CREATED, "{}", l.text);
    let path = format!("/api/v1/loans/{}/entries", l.json()["id"].as_str().unwrap());
    let y = this_year();
    let ok_day = format!("{y}-01-05");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"kind": "interest", "day": ok_day, "month": "2026-5", "amount_fen": 1}),
            "month",
            "not_a_month",
        ),
        (
            json!({"kind": "interest", "day": ok_day, "month": " 2026-03", "amount_fen": 1}),
            "month",
            "not_a_month",
        ),
        (
            json!({"kind": "interest", "day": ok_day, "month": "\t2026-03", "amount_fen": 1}),
            "month",
            "not_a_month",
        ),
        (
            json!({"kind": "interest", "day": ok_day, "month": "0000-03", "amount_fen": 1}),
            "month",
            "date_out_of_range",
        ),
        (
            json!({"kind": "drawdown", "day": "+10000-01-01", "amount_fen": 1}),
            "day",
            "not_a_date",
        ),
        (
            json!({"kind": "drawdown", "day": "0000-01-01", "amount_fen": 1}),
            "day",
            "date_out_of_range",
        ),
        (
            json!({"kind": "drawdown", "day": format!("{y}-1-5"), "amount_fen": 1}),
            "day",
            "not_a_date",
        ),
        (
            json!({"kind": "drawdown", "day": format!(" {y}-01-05"), "amount_fen": 1}),
            "day",
            "not_a_date",
        ),
    ];
    for (body, field, code) in cases {
        let r = c.post_json(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.text);
        assert_eq!(r.json()["error"]["field_codes"][field], code, "{body}: {}", r.text);
        assert!(!r.json()["error"]["fields"][field].as_str().unwrap_or("").is_empty(), "{}", r.text);
    }
    let loans = c.get("/api/v1/loans").await;
    assert_eq!(loans.json()[0]["entries"].as_array().map(Vec::len), Some(0), "{}", loans.text);
    let r = c.post_json("/api/v1/loans/claims", json!({"month": " 2026-03"})).await;
    assert_eq!(r.json()["error"]["field_codes"]["month"], "not_a_month", "{}", r.text);
    // The list the bad months used to break still answers.
    assert_eq!(c.get(&format!("/api/v1/loans/claims?year={y}")).await.status, StatusCode::OK);
    // A well-formed entry is still accepted.
    let r = c
        .post_json(&path, json!({"kind": "drawdown", "day": ok_day, "amount_fen": 1}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Issue 20, finding 7: a payment dated `+10000-01-01` passed the "not in the future" check
/// (it sorts before today as text) and was counted. Refused now, nothing written.
#[tokio::test]
async fn a_payment_dated_in_year_ten_thousand_is_refused() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let uscc_e = Uscc::parse(&uscc(610)).unwrap();
    app.store
        .create_enterprise(
            &Actor::system(),
            NewUser {
                username: "paydates",
                display_name: "paydates",
                role: Role::Enterprise,
                password_hash: &password_hash(),
            },
            "北京丰台精密制造有限公司",
            &uscc_e,
            Zone::ZhongguancunFengtaiPark,
        )
        .await
        .unwrap();
    let company = app.client();
    company.login("paydates", PASSWORD).await;
    let (a, _) = opc(&app, "payopc", 611, &ws[0]).await;
    let d = company
        .post_json(
            "/api/v1/demands",
            json!({"title": "发票识别与报销智能体", "description": "我们需要一个智能体：识别增值税发票，核对金额并自动发起报销流程。",
                   "category": "opc_agent_dev", "tags": ["发票"], "budget_min_fen": 1_000_000, "budget_max_fen": 5_000_000,
                   "deadline": "2999-12-31", "publish": true}),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    let demand = d.json()["id"].as_str().unwrap().to_string();
    let p = a
        .post_json(
            &format!("/api/v1/demands/{demand}/proposals"),
            json!({"price_fen": 1_000_000, "timeline_days": 30, "message": "我们做过类似的发票助手，可两周交付原型。"}),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.text);
    let coop = company
        .post_json(
            &format!("/api/v1/demands/proposals/{}/accept", p.json()["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(coop.status, StatusCode::CREATED, "{}", coop.text);
    let coop = coop.json()["id"].as_str().unwrap().to_string();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cooperation_payments")
            .fetch_one(app.store.pool())
            .await
            .unwrap()
    };
    for (paid_on, code) in [
        ("+10000-01-01", "invalid_date"),
        ("0000-01-01", "date_out_of_range"),
        ("2026-1-05", "invalid_date"),
    ] {
        let r = company
            .post_json(
                &format!("/api/v1/cooperations/{coop}/payments"),
                json!({"amount_fen": 1000, "paid_on": paid_on, "invoice_number": "INV-D"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{paid_on}: {}", r.text);
        assert_eq!(r.json()["error"]["field_codes"]["paid_on"], code, "{paid_on}: {}", r.text);
    }
    assert_eq!(count().await, 0, "no payment was stored");
    // A demand deadline in year 10000 is refused the same way.
    let r = company
        .post_json(
            "/api/v1/demands",
            json!({"title": "发票识别与报销智能体", "description": "我们需要一个智能体：识别增值税发票，核对金额并自动发起报销流程。",
                   "category": "opc_agent_dev", "tags": ["发票"], "budget_min_fen": 1_000_000, "budget_max_fen": 5_000_000,
                   "deadline": "+10000-12-31", "publish": true}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["deadline"], "invalid_date", "{}", r.text);
}

// ---------------------------------------------------------------- 6. password guessing

/// Issue 20, finding 5: 60 wrong passwords in 1.6 s and then the right one worked. Now, past
/// five failures of an account, the next attempt must wait (429) — the right password too —
/// and the wait doubles with every further failure; it passes once the wait is over.
#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_the_right_password_waits_too() {
    let app = TestApp::start().await;
    let (_, _) = app.user("guessme", Role::PlatformOperator).await;
    let c = app.client();
    assert_eq!(c.get("/login").await.status, StatusCode::OK);
    let attempt = |password: &'static str| {
        let c = c.clone();
        async move { c.post_form("/login", &[("username", "guessme"), ("password", password)]).await }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-password").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = attempt("wrong-password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.text.contains("登录失败次数过多"), "the page says why");
    let r = attempt(PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the right password waits too");
    assert!(r.location().is_empty());
    // Unknown accounts are throttled alike (no telling which usernames exist).
    let other = app.client();
    other.get("/login").await;
    for _ in 0..5 {
        let r = other.post_form("/login", &[("username", "nobody-here"), ("password", "x")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = other.post_form("/login", &[("username", "nobody-here"), ("password", "x")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Once the wait (one second after the fifth failure) is over, the right password works.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = attempt(PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
}

/// Per client address: guesses spread over many accounts from one address are throttled
/// after twenty failures, for every account from that address.
#[tokio::test]
async fn failed_sign_ins_are_throttled_per_client_address() {
    let app = TestApp::start().await;
    let (_, _) = app.user("addrvictim", Role::PlatformOperator).await;
    let c = app.client();
    c.get("/login").await;
    for i in 0..20 {
        let user = format!("spray{i}");
        let r = c.post_form("/login", &[("username", user.as_str()), ("password", "guess")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}");
    }
    let r = c.post_form("/login", &[("username", "addrvictim"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}
