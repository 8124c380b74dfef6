//! The factor gateway's pages (M2.2), end to end with plain forms against a real fake
//! upstream: an operator adds a channel and publishes prices, the platform operator approves
//! the channel, an OPC sets a budget and calls the gateway, and both see the result — the
//! OPC its request and what it saved (list − charged, from the ledger), the operator its
//! channel and usage, never the upstream secret. Other operators and OPCs are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use opchub_domain::{Money, Role, Zone};
use opchub_testkit::FakeUpstream;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "sk-upstream-page-secret-0123456789";

/// The inner text of the element with `id` (up to its first child tag or end tag).
fn text_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    let end = start + html[start..].find('<').unwrap();
    html[start..end].trim().to_string()
}

/// Page text with minijinja's HTML escapes undone (values are escaped, `/` included).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Waits until the gateway has recorded a request for the key and the ledger has its tokens.
async fn wait_metered(app: &TestApp, key_id: &str, opc_id: &str, period: &str) {
    for _ in 0..200 {
        let recorded = !app.store.requests_of_key(key_id, 10).await.unwrap().is_empty();
        let booked = app
            .store
            .usage_totals(opc_id, false, period)
            .await
            .unwrap()
            .iter()
            .any(|t| t.kind == "token.output");
        if recorded && booked {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the request was not metered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_opcs_run_the_gateway_through_pages() {
    let app = TestApp::start().await;
    let upstream = FakeUpstream::start().await;
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());

    // ---- the operator adds a channel through the form
    let (op, op_id) = app.user("gwpageop", Role::CommunityOperator).await;
    let page = op.get("/gateway/channels").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(r#"<a href="/gateway/channels">模型渠道</a>"#), "navigation");
    assert!(page.text.contains(r#"id="channel-form""#) && page.text.contains(r#"id="prices-form""#));
    assert!(page.text.contains(r#"type="password" id="secret" name="secret""#));
    assert_eq!(
        page.text.matches("<form method=\"post\"").count(),
        page.text.matches("name=\"_csrf\"").count(),
        "every POST form carries the CSRF token"
    );
    let base_url = upstream.base_url();
    let r = op
        .post_form(
            "/gateway/channels",
            &[
                ("name", "主渠道"),
                ("base_url", &base_url),
                ("secret", SECRET),
                ("models", "fake-final， fake-no-usage,"),
                ("priority", "5"),
                ("weight", "10"),
                ("timeout_ms", "3000"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/gateway/channels?done=channel");
    let channels = app.store.channels(Some(&op_id)).await.unwrap();
    assert_eq!(channels.len(), 1);
    let ch = &channels[0];
    assert_eq!(
        (ch.status.as_str(), ch.models.clone(), ch.priority, ch.weight, ch.timeout_ms),
        ("pending", vec!["fake-final".to_string(), "fake-no-usage".to_string()], 5, 10, 3000)
    );
    assert!(!ch.secret_enc.contains(SECRET), "stored encrypted");
    let channel_id = ch.id.clone();

    // A form with mistakes comes back with messages, the other values kept, the secret not.
    let r = op
        .post_form(
            "/gateway/channels",
            &[
                ("name", "坏渠道"),
                ("base_url", "ftp://example.com"),
                ("secret", SECRET),
                ("models", " , "),
                ("timeout_ms", "abc"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for id in ["form-error", "error-base_url", "error-models", "error-timeout_ms"] {
        assert!(r.text.contains(&format!("id=\"{id}\"")), "{id}: {}", r.text);
    }
    assert!(r.text.contains(r#"value="坏渠道""#));
    assert!(!r.text.contains(SECRET), "the secret is never echoed");
    assert_eq!(app.store.channels(Some(&op_id)).await.unwrap().len(), 1);

    // ---- prices through the form: a bad line is named, then a good table, then a duplicate
    let r = op
        .post_form(
            "/gateway/prices",
            &[
                ("version", "p1"),
                ("prices", "fake-final 4000000 2000000 0 0 6000000 3000000\nfake-no-usage 1 2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("第 2 行") && r.text.contains(r#"id="error-prices""#), "{}", r.text);
    let table = "# model list_in opc_in list_cached opc_cached list_out opc_out\n\
                 fake-final 4000000 2000000 1000000 500000 6000000 3000000\n\
                 fake-no-usage 4000000 2000000 1000000 500000 6000000 3000000\n";
    let r = op
        .post_form("/gateway/prices", &[("version", "p1"), ("effective_from", ""), ("prices", table)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    // Pending until the platform operator approves it with the button next to the channels'
    // (issue 18): until then it prices nothing.
    assert!(app
        .store
        .price_at(&op_id, "fake-final", opchub_store::now_ms())
        .await
        .unwrap()
        .is_none());
    let mine = op.get("/gateway/channels").await.text;
    assert!(mine.contains(r#"id="price-table-p1" data-status="pending""#), "{mine}");
    assert!(!mine.contains("/gateway/prices/"), "the operator does not review its own table");
    let (reviewer, _) = app.user("gwpricereview", Role::PlatformOperator).await;
    let review = format!("/gateway/prices/{op_id}/p1/status");
    assert!(reviewer
        .get("/gateway/channels")
        .await
        .text
        .contains(&format!(r#"action="{review}""#)));
    assert_eq!(op.post_form(&review, &[("status", "approved")]).await.status, StatusCode::FORBIDDEN);
    let r = reviewer.post_form(&review, &[("status", "approved")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let now = opchub_store::now_ms();
    let (version, price) = app.store.price_at(&op_id, "fake-final", now).await.unwrap().unwrap();
    assert_eq!((version.as_str(), price.list_input, price.opc_output), ("p1", 4_000_000, 3_000_000));
    let r = op.post_form("/gateway/prices", &[("version", "p1"), ("prices", table)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text.contains("该价格表版本已存在"), "{}", r.text);
    // A browser's datetime-local value is Beijing time.
    let r = op
        .post_form(
            "/gateway/prices",
            &[("version", "p2"), ("effective_from", "2099-01-01T00:00"), ("prices", table)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = reviewer
        .post_form(&format!("/gateway/prices/{op_id}/p2/status"), &[("status", "approved")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let from = chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00+08:00")
        .unwrap()
        .timestamp_millis();
    assert_eq!(app.store.price_at(&op_id, "fake-final", from - 1).await.unwrap().unwrap().0, "p1");
    assert_eq!(app.store.price_at(&op_id, "fake-final", from).await.unwrap().unwrap().0, "p2");

    // ---- another operator neither sees nor changes the channel
    let (other, _) = app.user("gwpageop2", Role::CommunityOperator).await;
    let r = other
        .post_form(&format!("/gateway/channels/{channel_id}/status"), &[("status", "approved")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("<html") && r.text.contains("您没有权限执行此操作"), "a 403 page");
    let r = other.get("/gateway/channels").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text.contains("主渠道") && r.text.contains("暂无模型渠道"));
    assert_eq!(app.store.channel(&channel_id).await.unwrap().status, "pending");

    // ---- the platform operator approves it through the page
    let (platform, _) = app.user("gwpageplat", Role::PlatformOperator).await;
    let page = platform.get("/gateway/channels").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("主渠道") && page.text.contains("gwpageop"),
        "all channels with their operator"
    );
    assert!(page.text.contains(&format!(r#"action="/gateway/channels/{channel_id}/status""#)));
    assert!(
        !page.text.contains(r#"id="channel-form""#),
        "the platform operator does not add channels"
    );
    assert!(!page.text.contains(SECRET));
    let r = platform
        .post_form(&format!("/gateway/channels/{channel_id}/status"), &[("status", "approved")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(app.store.channel(&channel_id).await.unwrap().status, "approved");
    let r = platform
        .post_form(&format!("/gateway/channels/{channel_id}/status"), &[("status", "gone")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // ---- an OPC creates a key and sets a budget of ¥1.00 through the pages
    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let reg = app
        .client()
        .post_json("/api/v1/registrations", registration("gwpageopc", &uscc(77), "hexi_area", &ws[0]))
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let opc_id = reg.json()["opc"]["id"].as_str().unwrap().to_string();
    let opc = app.client();
    opc.login("gwpageopc", PASSWORD).await;
    let page = opc.get("/gateway").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(r#"<a href="/gateway">模型服务</a>"#), "navigation");
    assert!(page.text.contains(r#"id="no-keys""#));
    let r = opc.post_form("/my/keys", &[("name", "sdk")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let secret = text_of(&r.text, "new-secret");
    let user = app.store.user_by_username("gwpageopc").await.unwrap().unwrap();
    let key_id = app.store.api_keys_of(&user.id).await.unwrap()[0].id.clone();
    let r = opc
        .post_form(
            &format!("/gateway/keys/{key_id}/limits"),
            &[
                ("allowed_models", "fake-final, fake-no-usage"),
                ("rpm", "0"),
                ("tpm", ""),
                ("monthly_budget", "1.00"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let limits = app.store.key_limits(&key_id).await.unwrap();
    assert_eq!(limits.monthly_budget_fen, 100, "¥1.00 is stored as 100 fen");
    assert_eq!(limits.allowed_models, ["fake-final", "fake-no-usage"]);
    // A budget with three decimals is refused, the stored one kept; someone else's key is not found.
    let r = opc
        .post_form(&format!("/gateway/keys/{key_id}/limits"), &[("monthly_budget", "1.005")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains(r#"id="form-error""#));
    assert_eq!(app.store.key_limits(&key_id).await.unwrap().monthly_budget_fen, 100);
    let (_, other_key) = {
        let (c, _) = app.user("gwpageother", Role::OpcFounder).await;
        let k = c.post_json("/api/v1/me/api-keys", json!({"name": "x"})).await.json();
        (c, k["key"]["id"].as_str().unwrap().to_string())
    };
    let r = opc
        .post_form(&format!("/gateway/keys/{other_key}/limits"), &[("monthly_budget", "5")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.store.key_limits(&other_key).await.unwrap().monthly_budget_fen, 0);

    // ---- the OPC calls the gateway with the key
    let sdk = Client::with_key(&app.base, &secret);
    let r = sdk
        .post_json(
            "/v1/chat/completions",
            json!({"model": "fake-final", "messages": [{"role": "user", "content": "hello hello hello hello"}], "max_tokens": 7}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    wait_metered(&app, &key_id, &opc_id, &period).await;

    // Its page shows the request and what it saved: list − charged of this month's tokens.
    let request = app.store.requests_of_key(&key_id, 10).await.unwrap().remove(0);
    let totals = app.store.usage_totals(&opc_id, false, &period).await.unwrap();
    let tokens = totals.iter().filter(|t| t.kind.starts_with("token."));
    let (list, charged) = tokens.fold((0, 0), |(l, c), t| (l + t.list_fen, c + t.charged_fen));
    assert!(list > charged && charged > 0, "the OPC price is below list: {list} vs {charged}");
    let page = opc.get("/gateway").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .text
        .contains(&format!(r#"data-request="{}" data-outcome="ok""#, request.request_id)));
    assert_eq!(text_of(&page.text, "saved"), Money::from_fen(list - charged).to_string());
    assert!(page.text.contains("本月已为您节省"));
    assert_eq!(text_of(&page.text, "spend-charged"), Money::from_fen(charged).to_string());
    let (spent, held) = app.store.budget_use(&key_id, &period).await.unwrap();
    assert_eq!((spent, held), (charged, 0), "the budget is settled to the charge");
    assert!(page.text.contains(&Money::from_fen(100 - charged).to_string()), "budget left");
    // The quick start uses the address the page was reached at, with a placeholder key.
    let text = unescape(&page.text);
    assert!(
        text.contains(&format!(r#"OpenAI(base_url="{}/v1", api_key="opk_YOUR_KEY")"#, app.base)),
        "{text}"
    );
    assert!(text.contains(&format!("curl {}/v1/chat/completions", app.base)));
    assert!(page.text.contains(r#"<pre class="code" id="qs-python""#) && page.text.contains(r#"<pre class="code" id="qs-curl""#));
    assert!(page.text.contains("opk_YOUR_KEY") && !page.text.contains(&secret));
    // This month's spend by model, from the OPC's running bill (issue 21 item 4).
    let html = unescape(&page.text);
    let spend = &html[html.find(r#"id="chart-spend-by-model""#).expect("the spend chart")..];
    assert!(spend.contains("<title>fake-final 实付 ¥"), "{spend}");
    // English too.
    opc.get("/lang/en").await;
    let page = opc.get("/gateway").await;
    assert!(page.text.contains("You saved ") && page.text.contains(" this month"));
    assert_eq!(text_of(&page.text, "saved"), Money::from_fen(list - charged).to_string());
    opc.get("/lang/zh").await;

    // ---- the operator's page: the channel, this month's usage and chart, no secret anywhere
    let page = op.get("/gateway/channels").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("主渠道") && unescape(&page.text).contains(&base_url));
    assert!(page.text.contains(r#"data-status="approved""#));
    assert!(!page.text.contains(SECRET), "the upstream secret is never shown");
    assert_eq!(text_of(&page.text, "usage-charged"), Money::from_fen(charged).to_string());
    assert!(page.text.contains(r#"class="bar""#), "the daily chart has a bar for today");
    assert!(page.text.contains("role=counterparty"), "a link to the statement by OPC");
    // This month by OPC and by model, from the running bill (issue 21 item 4).
    let html = unescape(&page.text);
    let by_opc = &html[html.find(r#"id="chart-by-opc""#).expect("the by-OPC chart")..];
    assert!(by_opc.contains("<title>北京gwpageopc智能科技有限公司 实收 ¥"), "{by_opc}");
    let by_model = &html[html.find(r#"id="chart-by-model""#).expect("the by-model chart")..];
    assert!(by_model.contains("<title>fake-final 标准价 ¥"), "{by_model}");
    let statement = op
        .get(&format!("/ledger/statement?party={op_id}&period={period}&role=counterparty"))
        .await;
    assert_eq!(statement.status, StatusCode::OK);

    // ---- the wrong roles are refused
    assert_eq!(opc.get("/gateway/channels").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        opc.post_form("/gateway/channels", &[("name", "x")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(op.get("/gateway").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        platform
            .post_form("/gateway/prices", &[("version", "x"), ("prices", table)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.client().get("/gateway").await.status, StatusCode::SEE_OTHER);
}

/// The `<tr>` of the model list for `model` (from its `data-model` to its end tag).
fn model_row<'a>(html: &'a str, model: &str) -> &'a str {
    let at = html
        .find(&format!(r#"<tr data-model="{model}">"#))
        .unwrap_or_else(|| panic!("no row for {model} in {html}"));
    let end = at + html[at..].find("</tr>").unwrap();
    &html[at..end]
}

/// The gateway console (issue 21 item 5, M2.2): an OPC's `/gateway` lists every model of an
/// approved channel with its operator (the community's name) and list and OPC prices in yuan
/// per million tokens, has a playground form (model select, message, password field for the
/// key, the script from the site, the catalog's error texts), and after a call shows the
/// request with its latency and a bar for today in the key's cost chart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_models_with_prices_in_yuan_and_has_a_playground() {
    let app = TestApp::start().await;
    let upstream = FakeUpstream::start().await;
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let (op, op_id) = app.user("consoleop", Role::CommunityOperator).await;
    app.community_of(&op_id, Zone::HexiArea, 1).await;
    let r = op
        .post_json(
            "/api/v1/gateway/channels",
            json!({"name": "控制台渠道", "base_url": upstream.base_url(), "secret": SECRET, "models": ["fake-final", "fake-no-usage"], "timeout_ms": 3000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let channel_id = r.json()["id"].as_str().unwrap().to_string();
    // fen per million tokens: list ¥4 / ¥12, OPC ¥2 / ¥6; fake-no-usage has no price.
    let r = op
        .post_json(
            "/api/v1/gateway/prices",
            json!({"version": "c1", "prices": [{"model": "fake-final", "list_input": 400, "opc_input": 200, "list_cached": 300, "opc_cached": 100, "list_output": 1200, "opc_output": 600}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let (_, ws) = app.community(Zone::HexiArea, 1).await;
    let opc_id = app.opc_at("consoleopc", 91, &ws[0]).await;
    let opc = app.client();
    opc.login("consoleopc", PASSWORD).await;
    // A channel still under review offers nothing.
    let page = opc.get("/gateway").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(r#"id="no-models""#) && !page.text.contains(r#"data-model="fake-final""#));
    assert!(!page.text.contains(r#"id="playground-form""#), "no playground without a model");

    let (platform, _) = app.user("consoleplat", Role::PlatformOperator).await;
    let r = platform
        .put_json(
            &format!("/api/v1/gateway/channels/{channel_id}/status"),
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = platform
        .put_json(&format!("/api/v1/gateway/prices/{op_id}/c1/status"), json!({"status": "approved"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // ---- the model list: operator and prices in yuan
    let page = opc.get("/gateway").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("模型与价格") && unescape(&page.text).contains("单位：元/百万词元"),
        "{}",
        page.text
    );
    let row = model_row(&page.text, "fake-final");
    assert!(
        row.contains(r#"<td class="operator">测试OPC社区</td>"#),
        "the operator's community: {row}"
    );
    for (class, fen) in [
        ("list-input", 400),
        ("opc-input", 200),
        ("list-cached", 300),
        ("opc-cached", 100),
        ("list-output", 1200),
        ("opc-output", 600),
    ] {
        let cell = format!(r#"<td class="num {class}">{}</td>"#, Money::from_fen(fen));
        assert!(row.contains(&cell), "{cell} in {row}");
    }
    assert!(row.contains("¥4.00") && row.contains("¥12.00"), "yuan, not fen: {row}");
    let unpriced = model_row(&page.text, "fake-no-usage");
    assert!(unpriced.contains("尚无生效价格") && !unpriced.contains('¥'), "{unpriced}");

    // ---- the playground form
    assert!(page.text.contains(r#"id="playground-form""#));
    assert!(page.text.contains(r#"<option value="fake-final""#) && page.text.contains(r#"<option value="fake-no-usage""#));
    assert!(
        page.text.contains(r#"<input type="password" id="pg-key""#),
        "the key is pasted into a password field"
    );
    assert!(page.text.contains(r#"<textarea id="pg-message""#));
    assert!(page.text.contains(r#"<script src="/static/playground.js"></script>"#));
    assert!(page.text.contains(r#"data-err-invalid_api_key="API密钥无效、已吊销或已过期。""#));
    let form = &page.text[page.text.find(r#"id="playground-form""#).unwrap()..page.text.find(r#"id="pg-result""#).unwrap()];
    assert!(
        !form.contains(" name="),
        "no field is sent without the script (the key never lands in a URL)"
    );
    assert!(!page.text.contains("<script>"), "no inline script");
    let (status, headers, js) = app.client().get_bytes("/static/playground.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = String::from_utf8(js).unwrap();
    assert!(js.contains("'Bearer ' + key") && js.contains("playground-form"), "{js}");
    // The quick start names the model.
    assert_eq!(text_of(&page.text, "qs-model"), "fake-final");

    // ---- after a call: the request log has its latency, the key's chart a bar for today
    let r = opc.post_form("/my/keys", &[("name", "console")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let secret = text_of(&r.text, "new-secret");
    let user = app.store.user_by_username("consoleopc").await.unwrap().unwrap();
    let key_id = app.store.api_keys_of(&user.id).await.unwrap()[0].id.clone();
    let page = opc.get("/gateway").await;
    assert_eq!(page.text.matches(r#"class="bar""#).count(), 0, "no bar before any call");
    let sdk = Client::with_key(&app.base, &secret);
    let r = sdk
        .post_json(
            "/v1/chat/completions",
            json!({"model": "fake-final", "messages": [{"role": "user", "content": "hello hello"}], "max_tokens": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    wait_metered(&app, &key_id, &opc_id, &period).await;
    let request = app.store.requests_of_key(&key_id, 1).await.unwrap().remove(0);
    let latency = request.latency_ms.expect("the latency is recorded");
    assert!(latency >= 0);
    // 2 prompt tokens at ¥2 and 5 completion tokens at ¥6 per million: rounded per kind, 0 fen.
    assert_eq!((request.prompt_tokens, request.completion_tokens), (2, 5));
    let page = opc.get("/gateway").await;
    let at = page.text.find(&format!(r#"data-request="{}""#, request.request_id)).unwrap();
    let tr = &page.text[at..at + page.text[at..].find("</tr>").unwrap()];
    assert!(tr.contains(&format!(r#"<td class="num latency">{} ms</td>"#, latency)), "{tr}");
    assert!(tr.contains("成功") && tr.contains("200"), "{tr}");
    let figure = &page.text[page.text.find(&format!(r#"id="chart-{key_id}-figure""#)).unwrap()..];
    let figure = &figure[..figure.find("</figure>").unwrap()];
    assert!(figure.contains(&format!(r#"aria-labelledby="chart-{key_id}-title chart-{key_id}-desc""#)));
    assert_eq!(figure.matches(r#"class="bar""#).count(), 1, "one bar: today");
    assert!(figure.contains("1 次调用"), "{figure}");
}
