//! Issue 21 item 5 with the real binary: `serve --demo` starts a built-in demo upstream on
//! loopback and gives the demo operator an approved, priced channel to it, so the demo OPC can
//! call model `demo-chat` at once — plain and streaming, with a Chinese answer — and see the
//! upstream's token counts metered exactly (the key's request log, the ledger statement). A
//! restart on the same data picks a new port and the channel follows it. Only that one
//! loopback address is admitted: the operator cannot register another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const DEMO_PASSWORD: &str = "opchub-demo";
const CHANNEL: &str = "演示上游（内置）";

/// One token per character of the message text, as the demo upstream counts.
fn chars(s: &str) -> i64 {
    s.chars().count() as i64
}

/// The key's request log once it has `n` rows (newest first).
async fn requests(opc: &Api, key_id: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let a = opc.get(&format!("/api/v1/gateway/requests?key_id={key_id}")).await;
        let rows = ok(&a, "request log").as_array().unwrap().clone();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the request was not metered");
}

/// This month's token totals of the OPC's statement: (input, cached, output) quantities.
async fn token_totals(opc: &Api) -> (i64, i64, i64) {
    let st = ok(&opc.get("/api/v1/ledger/statement").await, "statement");
    let q = |kind: &str| statement_quantity(&st, kind);
    (q("token.input"), q("token.cached_input"), q("token.output"))
}

async fn demo_channel(operator: &Api) -> Value {
    let list = ok(&operator.get("/api/v1/gateway/channels").await, "channels");
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == CHANNEL)
        .cloned()
        .expect("the demo channel")
}

/// A plain call; returns (reply text, request id).
async fn chat(opc: &Api, message: &str) -> (String, String) {
    let r = opc
        .http
        .post(format!("{}/v1/chat/completions", opc.base))
        .bearer_auth(&opc.key)
        .json(&json!({"model": "demo-chat", "messages": [{"role": "user", "content": message}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-opchub-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let reply = body["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert_eq!(body["usage"]["prompt_tokens"], chars(message), "{body}");
    assert_eq!(body["usage"]["completion_tokens"], chars(&reply), "{body}");
    (reply, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_channel_serves_demo_chat_metered_exactly_and_follows_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let (mut child, base) = serve_with(dir.path(), &db, &["--demo"], None);

    // The operator sees its channel: approved, to the demo upstream on loopback.
    let operator = Api::login_as(&base, "operator", DEMO_PASSWORD).await;
    let ch = demo_channel(&operator).await;
    assert_eq!(ch["status"], "approved", "{ch}");
    assert_eq!(ch["models"], json!(["demo-chat"]));
    let first_url = ch["base_url"].as_str().unwrap().to_string();
    assert!(
        first_url.starts_with("http://127.0.0.1:") && first_url.ends_with("/v1"),
        "{first_url}"
    );
    // Another loopback address stays refused, demo or not.
    let a = operator
        .post(
            "/api/v1/gateway/channels",
            json!({"name": "私网", "base_url": "http://127.0.0.1:9/v1", "secret": "sk-x", "models": ["m"]}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["field_codes"]["base_url"].as_str()),
        (422, Some("channel_private_address")),
        "{:#}",
        a.body
    );

    // ---- the OPC's key, a plain call: a Chinese answer quoting the message, metered exactly
    let opc = Api::login_as(&base, "opc", DEMO_PASSWORD).await;
    let keys = ok(&opc.get("/api/v1/me/api-keys").await, "keys");
    let key_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| opc.key.starts_with(k["prefix"].as_str().unwrap()) && k["name"] == "fresh")
        .map(|k| k["id"].as_str().unwrap().to_string())
        .expect("the key just made");
    let models = ok(&opc.get("/v1/models").await, "models");
    assert!(
        models["data"].as_array().unwrap().iter().any(|m| m["id"] == "demo-chat"),
        "{models}"
    );
    let before = token_totals(&opc).await;
    let message = "你好，请介绍一下丰台园的OPC社区。";
    let (reply, id1) = chat(&opc, message).await;
    assert!(reply.contains(&format!("「{message}」")) && reply.contains("演示"), "{reply}");
    let rows = requests(&opc, &key_id, 1).await;
    let row = &rows[0];
    assert_eq!(row["request_id"], id1.as_str());
    assert_eq!(
        (row["model"].as_str(), row["outcome"].as_str(), row["estimated"].as_bool()),
        (Some("demo-chat"), Some("ok"), Some(false))
    );
    assert_eq!(
        (
            row["prompt_tokens"].as_i64(),
            row["cached_tokens"].as_i64(),
            row["completion_tokens"].as_i64()
        ),
        (Some(chars(message)), Some(0), Some(chars(&reply))),
        "the upstream's counts, exactly: {row}"
    );
    assert!(row["latency_ms"].as_i64().is_some_and(|l| l >= 0), "{row}");
    let after = token_totals(&opc).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (chars(message), 0, chars(&reply)),
        "the ledger has the same tokens"
    );

    // ---- streaming: the chunks make the answer, the usage the gateway asked for is stripped
    let message2 = "流式输出也可以吗？";
    let r = opc
        .http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&opc.key)
        .json(&json!({"model": "demo-chat", "stream": true, "messages": [{"role": "user", "content": message2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("\"usage\""), "the client did not ask for usage: {text}");
    let streamed: String = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert!(streamed.contains(&format!("「{message2}」")), "{streamed}");
    let rows = requests(&opc, &key_id, 2).await;
    assert_eq!(
        (
            rows[0]["prompt_tokens"].as_i64(),
            rows[0]["completion_tokens"].as_i64(),
            rows[0]["estimated"].as_bool()
        ),
        (Some(chars(message2)), Some(chars(&streamed)), Some(false)),
        "{}",
        rows[0]
    );
    let after2 = token_totals(&opc).await;
    assert_eq!((after2.0 - after.0, after2.2 - after.2), (chars(message2), chars(&streamed)));

    // ---- a restart on the same data: a new port, the channel follows, the key still works
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, base) = serve_with(dir.path(), &db, &["--demo"], None);
    let operator = Api::login_as(&base, "operator", DEMO_PASSWORD).await;
    let ch = demo_channel(&operator).await;
    let second_url = ch["base_url"].as_str().unwrap().to_string();
    assert_ne!(second_url, first_url, "the demo upstream has a new port");
    assert_eq!(ch["status"], "approved", "re-approved after the move: {ch}");
    let channels = ok(&operator.get("/api/v1/gateway/channels").await, "channels");
    assert_eq!(
        channels.as_array().unwrap().iter().filter(|c| c["name"] == CHANNEL).count(),
        1,
        "made once"
    );
    // The old address is not admitted any more.
    let a = operator
        .post(
            "/api/v1/gateway/channels",
            json!({"name": "旧地址", "base_url": first_url, "secret": "sk-x", "models": ["m"]}),
        )
        .await;
    assert_eq!(a.status, 422, "{:#}", a.body);
    let opc = Api {
        base: base.clone(),
        key: opc.key.clone(),
        http: opc.http.clone(),
    };
    let message3 = "重启之后还能调用吗？";
    let (reply3, id3) = chat(&opc, message3).await;
    assert!(reply3.contains(&format!("「{message3}」")));
    let rows = requests(&opc, &key_id, 3).await;
    assert_eq!(rows[0]["request_id"], id3.as_str());
    assert_eq!(
        (rows[0]["prompt_tokens"].as_i64(), rows[0]["completion_tokens"].as_i64()),
        (Some(chars(message3)), Some(chars(&reply3)))
    );
    let _ = child.kill();
    let _ = child.wait();
}
