//! Issue 20, the low findings (8–10), each as a client or an attacker would meet it over real
//! HTTP: errors that were `text/plain` without a code, unknown JSON fields that were silently
//! dropped, `/mcp` sessions without a bound, weak passwords and no way to change one, pages
//! without security headers, public metrics, a world-readable database file, key scopes
//! stored twice, gateway channels pointing at the platform's own network, and attachments
//! whose bytes are not what they claim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use base64::Engine;
use opchub_domain::{Role, Zone};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

fn content_type(r: &Resp) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The documented error shape with this status and code.
#[track_caller]
fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(content_type(r).starts_with("application/json"), "{}: {}", content_type(r), r.text);
    assert_eq!(r.code(), code, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
}

/// An OPC founder (signed in) and a key of theirs.
async fn founder(app: &TestApp, name: &str, n: u32, ws: &str) -> (Client, String) {
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration(name, &uscc(n), "hexi_area", ws))
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let c = app.client();
    c.login(name, PASSWORD).await;
    let k = c.post_json("/api/v1/me/api-keys", json!({"name": "mcp"})).await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.text);
    (c, k.json()["secret"].as_str().unwrap().to_string())
}

/// A district company (signed in) that may publish demands.
async fn company(app: &TestApp, username: &str, n: u32) -> Client {
    let uscc = opchub_domain::Uscc::parse(&uscc(n)).unwrap();
    app.store
        .create_enterprise(
            &opchub_store::Actor::system(),
            opchub_store::accounts::NewUser {
                username,
                display_name: username,
                role: Role::Enterprise,
                password_hash: &password_hash(),
            },
            "北京丰台精密制造有限公司",
            &uscc,
            Zone::ZhongguancunFengtaiPark,
        )
        .await
        .unwrap();
    let c = app.client();
    c.login(username, PASSWORD).await;
    c
}

// ---------------------------------------------------------------- 8. every error in the JSON shape

#[tokio::test]
async fn query_string_path_method_and_body_limit_errors_are_json_with_stable_codes() {
    let app = TestApp::start().await;
    let anon = app.client();

    // A number that is not one: the parameter is named.
    let r = anon.get("/api/v1/ledger/proofs/inclusion?leaf_index=abc").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(r.json()["error"]["field_codes"]["leaf_index"], "invalid_query_value", "{}", r.text);
    let r = anon.get("/api/v1/ledger/proofs/consistency?from=1&to=x").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(r.json()["error"]["field_codes"]["to"], "invalid_query_value", "{}", r.text);
    let (committee, _) = app.user("qcommittee", Role::Committee).await;
    let r = committee.get("/api/v1/overlap-grants?year=abc").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(r.json()["error"]["field_codes"]["year"], "invalid_query_value", "{}", r.text);
    // A required parameter left out.
    let r = anon.get("/api/v1/ledger/proofs/inclusion").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");

    // Bodies over the limit (64 KiB here): a JSON body, and a raw one (an exclusion list).
    let big = json!({"username": "x".repeat(70_000)});
    let r = anon.post_json("/api/v1/registrations", big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let csv = "uscc,name,reason\n".repeat(5_000).into_bytes();
    let r = committee
        .send(
            reqwest::Method::POST,
            "/api/v1/exclusions/no_support_sanction",
            Some(Body::Raw("text/csv", csv)),
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Not JSON, and JSON that does not parse.
    let r = anon
        .send(
            reqwest::Method::POST,
            "/api/v1/registrations",
            Some(Body::Raw("text/plain", b"{}".to_vec())),
        )
        .await;
    assert_error(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required");
    let r = anon
        .send(
            reqwest::Method::POST,
            "/api/v1/registrations",
            Some(Body::Raw("application/json", b"{\"username\": ".to_vec())),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");

    // A method the route does not have.
    let r = anon.send(reqwest::Method::DELETE, "/api/v1/stats", None).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    // A page's query string that does not parse is an error page, not text.
    let r = committee.get("/audit?limit=abc").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(content_type(&r).starts_with("text/html"), "{}", content_type(&r));
}

#[tokio::test]
async fn mcp_transport_refusals_are_json_rpc_error_objects() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let (_, key) = founder(&app, "mcprefusals", 801, &ws[0]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/mcp", app.base);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let cases = [
        // Accepts JSON but not SSE: 406.
        (
            "application/json",
            "application/json",
            init.to_string(),
            StatusCode::NOT_ACCEPTABLE,
            "mcp_not_acceptable",
        ),
        // Not JSON: 415.
        (
            "application/json, text/event-stream",
            "text/plain",
            init.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "mcp_unsupported_media_type",
        ),
        // JSON, but no JSON-RPC message: an invalid request (found by fuzzing, issue 20).
        (
            "application/json, text/event-stream",
            "application/json",
            "{\"hello\": 1}".to_string(),
            StatusCode::BAD_REQUEST,
            "mcp_invalid_message",
        ),
    ];
    for (accept, ct, body, status, code) in cases {
        let r = http
            .post(&url)
            .bearer_auth(&key)
            .header("accept", accept)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let rct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(rct.starts_with("application/json"), "{rct}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        assert_eq!(v["error"]["code"], -32600, "{v}");
        assert_eq!(v["error"]["data"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
}

// ---------------------------------------------------------------- 9. unknown fields

#[tokio::test]
async fn a_misspelt_field_is_refused_and_named_instead_of_being_ignored() {
    let app = TestApp::start().await;
    let (u, _) = app.user("typo", Role::OpcFounder).await;
    // `scope` instead of `scopes` used to give a key with every scope.
    let r = u.post_json("/api/v1/me/api-keys", json!({"name": "ro", "scope": ["read"]})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_field");
    assert_eq!(r.json()["error"]["field_codes"]["scope"], "unknown_field", "{}", r.text);
    assert!(r.json()["error"]["fields"]["scope"].is_string(), "{}", r.text);
    let keys = u.get("/api/v1/me/api-keys").await.json();
    assert_eq!(keys.as_array().unwrap().len(), 0, "nothing was created: {keys}");

    // Scopes are stored once each (and the right spelling works).
    let r = u
        .post_json(
            "/api/v1/me/api-keys",
            json!({"name": "rw", "scopes": ["write", "read", "write", "read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["key"]["scopes"], json!(["read", "write"]), "{}", r.text);
    let keys = u.get("/api/v1/me/api-keys").await.json();
    assert_eq!(keys[0]["scopes"], json!(["read", "write"]), "{keys}");

    // `ids` is not a field of marking notifications read (it used to mark all of them read).
    let r = u.post_json("/api/v1/notifications/read", json!({"ids": ["a", "b"]})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_field");
    assert_eq!(r.json()["error"]["field_codes"]["ids"], "unknown_field", "{}", r.text);

    // A nested unknown field is named by its path.
    let co = company(&app, "typoco", 820).await;
    let r = co
        .post_json(
            "/api/v1/demands",
            json!({"title": "x", "attachments": [{"name": "a.txt", "content_type": "text/plain", "data_base64": "eA==", "size": 1}]}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_field");
    assert_eq!(
        r.json()["error"]["field_codes"]["attachments.0.size"],
        "unknown_field",
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_ledger_event_with_a_field_the_format_does_not_define_is_refused_alone() {
    let app = TestApp::start().await;
    let (platform, _) = app.user("lplatform", Role::PlatformOperator).await;
    let (_, owner) = app.user("lowner", Role::CommunityOperator).await;
    let r = platform
        .post_json(
            "/api/v1/ledger/sources",
            json!({"name": "cluster9", "owner_user_id": owner, "rate_per_minute": 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let source = Client::with_key(&app.base, r.json()["key"].as_str().unwrap());
    let event = json!({
        "source_event_id": "job-1", "kind": "compute.gpu_second", "unit": "gpu_second",
        "subject": "opc", "counterparty": "community", "quantity": 10,
        "list_amount": 30, "charged_amount_fen": 20, "price_version": "v1",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
    });
    let r = source.post_json("/api/v1/ledger/events", json!({"events": [event]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["rejected"], 1, "{v}");
    assert_eq!(v["results"][0]["status"], "rejected", "{v}");
    assert_eq!(v["results"][0]["error"]["code"], "unknown_field", "{v}");
    assert_eq!(v["results"][0]["error"]["field"], "list_amount", "{v}");
    // An unknown field of the batch itself refuses the batch.
    let r = source
        .post_json("/api/v1/ledger/events", json!({"events": [], "dry_run": true}))
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_field");
}

// ---------------------------------------------------------------- 10. the low list

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sessions_of_one_key_are_capped_and_the_oldest_is_closed() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 2).await;
    let (_, key) = founder(&app, "mcpcap", 802, &ws[0]).await;
    let (_, other_key) = founder(&app, "mcpother", 803, &ws[1]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/mcp", app.base);
    let post = |key: String, session: Option<String>, body: Value| {
        let mut req = http
            .post(&url)
            .bearer_auth(key)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        async move { req.send().await.unwrap() }
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let cap = opchub_web::mcp::MAX_SESSIONS_PER_CALLER;
    let mut sessions = Vec::new();
    for _ in 0..cap + 1 {
        let r = post(key.clone(), None, init.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        sessions.push(r.headers()["mcp-session-id"].to_str().unwrap().to_string());
        let _ = r.text().await;
    }
    // The oldest session was closed to make room; the newest works.
    let r = post(key.clone(), Some(sessions[0].clone()), initialized.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["data"]["code"], "mcp_session_not_found", "{v}");
    let r = post(key.clone(), Some(sessions[cap].clone()), initialized.clone()).await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = post(key.clone(), Some(sessions[1].clone()), initialized.clone()).await;
    assert!(r.status().is_success(), "{}", r.status());
    // Another key cannot use this key's session.
    let r = post(other_key, Some(sessions[cap].clone()), initialized).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn weak_passwords_are_refused_at_registration_and_user_creation() {
    let app = TestApp::start().await;
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let cases = [
        ("12345678", "password_too_short"),
        ("        ", "password_blank"),
        ("            ", "password_blank"),
        ("Password123", "password_common"),
        ("1234567890", "password_common"),
        ("weakfounder", "password_is_username"),
    ];
    for (password, code) in cases {
        let mut body = registration("weakfounder", &uscc(810), "hexi_area", &ws[0]);
        body["password"] = json!(password);
        let r = app.client().post_json("/api/v1/registrations", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{password:?}: {}", r.text);
        assert_eq!(r.json()["error"]["field_codes"]["password"], code, "{password:?}: {}", r.text);
    }
    let (platform, _) = app.user("pwplatform", Role::PlatformOperator).await;
    let r = platform
        .post_json(
            "/api/v1/users",
            json!({"username": "auditor2", "password": "12345678", "display_name": "审计", "role": "auditor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json()["error"]["field_codes"]["password"], "password_too_short", "{}", r.text);
    let r = platform
        .post_json(
            "/api/v1/users",
            json!({"username": "auditor2", "password": PASSWORD, "display_name": "审计", "role": "auditor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .client()
        .post_json(
            "/api/v1/registrations",
            registration("goodfounder", &uscc(811), "hexi_area", &ws[0]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::start().await;
    let (here, _) = app.user("changer", Role::OpcFounder).await;
    let elsewhere = app.client();
    elsewhere.login("changer", PASSWORD).await;
    assert_eq!(elsewhere.get("/api/v1/me").await.status, StatusCode::OK);

    let r = here
        .post_json(
            "/api/v1/account/password",
            json!({"current_password": "not-the-password", "new_password": "a-much-better-one-7"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.json()["error"]["field_codes"]["current_password"], "wrong_password", "{}", r.text);
    let r = here
        .post_json(
            "/api/v1/account/password",
            json!({"current_password": PASSWORD, "new_password": "12345678"}),
        )
        .await;
    assert_eq!(r.json()["error"]["field_codes"]["new_password"], "password_too_short", "{}", r.text);
    assert_eq!(elsewhere.get("/api/v1/me").await.status, StatusCode::OK, "refusals end nothing");

    let r = here
        .post_json(
            "/api/v1/account/password",
            json!({"current_password": PASSWORD, "new_password": "a-much-better-one-7"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["sessions_ended"], 1, "{}", r.text);
    assert_eq!(here.get("/api/v1/me").await.status, StatusCode::OK, "this browser stays signed in");
    assert_eq!(
        elsewhere.get("/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED,
        "the other one is signed out"
    );

    // The old password no longer signs in; the new one does.
    let old = app.client();
    old.get("/login").await;
    let r = old.post_form("/login", &[("username", "changer"), ("password", PASSWORD)]).await;
    assert!(!r.status.is_redirection(), "{}", r.status);
    assert_eq!(old.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    let new = app.client();
    new.login("changer", "a-much-better-one-7").await;
    assert_eq!(new.get("/api/v1/me").await.status, StatusCode::OK);

    // The same on the account page's form.
    let page = new.get("/my/keys").await;
    assert!(page.text.contains("id=\"password-form\""), "{}", page.text);
    let r = new
        .post_form(
            "/my/password",
            &[("current_password", "a-much-better-one-7"), ("new_password", "another-good-one-8")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"password-notice\""), "{}", r.text);
    assert_eq!(here.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    let r = new
        .post_form(
            "/my/password",
            &[("current_password", "wrong-one-000"), ("new_password", "yet-another-one-9")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("id=\"password-error\""), "{}", r.text);
}

#[tokio::test]
async fn pages_and_api_answers_carry_security_headers_and_pages_have_no_inline_script_or_style() {
    let app = TestApp::start().await;
    for path in ["/", "/login", "/api/v1/stats", "/no-such-page"] {
        let r = app.client().get(path).await;
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(h("content-security-policy"), opchub_web::CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
    }
    let csp = opchub_web::CONTENT_SECURITY_POLICY;
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // The policy allows no inline script or style, so the templates have none.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut stack = vec![dir];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                let text = std::fs::read_to_string(&p).unwrap();
                seen += 1;
                for (i, _) in text.match_indices("<script") {
                    let tag = &text[i..text[i..].find('>').map_or(text.len(), |j| i + j)];
                    assert!(tag.contains(" src="), "{}: inline script {tag}", p.display());
                }
                assert!(!text.contains("<style"), "{}: inline style", p.display());
                assert!(!text.contains(" style=\""), "{}: style attribute", p.display());
                assert!(
                    !text.contains(" onclick=") && !text.contains(" onchange="),
                    "{}: inline handler",
                    p.display()
                );
            }
        }
    }
    assert!(seen > 20, "{seen} templates");
    let js = app.client().get("/static/evidence.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(content_type(&js).starts_with("text/javascript"), "{}", content_type(&js));
    assert!(js.text.contains("evidence-file"), "{}", js.text);
}

#[tokio::test]
async fn metrics_answer_only_the_configured_token() {
    let app = TestApp::start_with_metrics_token("scrape-secret-1").await;
    let r = app.client().get("/metrics").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "metrics_token_required");
    let r = Client::with_key(&app.base, "wrong").get("/metrics").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = Client::with_key(&app.base, "scrape-secret-1").get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("opchub_registry_opcs"), "{}", r.text);
    // Without a token, a scraper on loopback (this test) may read them.
    let plain = TestApp::start().await;
    let r = plain.client().get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::start().await;
    let Some(rest) = app.db.url.strip_prefix("sqlite://") else {
        return; // PostgreSQL: no file.
    };
    let path = rest.split('?').next().unwrap();
    for suffix in ["", "-wal"] {
        let p = format!("{path}{suffix}");
        if let Ok(m) = std::fs::metadata(&p) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{p}");
        } else {
            assert!(!suffix.is_empty(), "{p} exists");
        }
    }
    // A file made world-readable before is made private again when opened.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = opchub_store::Store::connect(&app.db.url).await.unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
    again.close().await;
}

#[tokio::test]
async fn gateway_channels_may_not_point_at_private_addresses_outside_test_mode() {
    let app = TestApp::start_on_with_skills(Arc::new(fresh_db().await), opchub_web::skills::SkillsConfig::default()).await;
    let (operator, _) = app.user("chanop", Role::CommunityOperator).await;
    for base in [
        "http://127.0.0.1:9/v1",
        "http://localhost:9/v1",
        "http://10.1.2.3/v1",
        "http://[::1]:9/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://[2002:7f00:1::]/v1",
        "http://169.254.169.254/v1",
    ] {
        let r = operator
            .post_json(
                "/api/v1/gateway/channels",
                json!({"name": "c", "base_url": base, "secret": "sk-x", "models": ["m"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{base}: {}", r.text);
        assert_eq!(
            r.json()["error"]["field_codes"]["base_url"],
            "channel_private_address",
            "{base}: {}",
            r.text
        );
    }
    let r = operator
        .post_json(
            "/api/v1/gateway/channels",
            json!({"name": "c", "base_url": "http://8.8.8.8/v1", "secret": "sk-x", "models": ["m"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "a public address is fine: {}", r.text);
}

#[tokio::test]
async fn attachments_whose_bytes_are_not_the_declared_type_are_refused() {
    let app = TestApp::start().await;
    let company = company(&app, "attco", 821).await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let demand = |name: &str, ct: &str, bytes: &[u8]| {
        json!({
            "title": "发票识别与报销智能体", "description": "识别增值税发票，核对金额并自动发起报销流程，对接现有财务系统。",
            "category": "opc_agent_dev", "tags": ["发票"], "budget_min_fen": 1_000_000, "budget_max_fen": 5_000_000,
            "deadline": "2999-12-31", "publish": false,
            "attachments": [{"name": name, "content_type": ct, "data_base64": b64(bytes)}],
        })
    };
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"></svg>"#;
    let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    for (name, ct, bytes) in [
        ("logo.png", "image/png", &svg[..]),
        ("readme.txt", "text/plain", &elf[..]),
        ("setup.txt", "text/plain", &b"MZ\x90\x00\x03\x00\x00\x00"[..]),
    ] {
        let r = company.post_json("/api/v1/demands", demand(name, ct, bytes)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", r.text);
        assert!(r.text.contains("file_content_mismatch"), "{name}: {}", r.text);
    }
}
