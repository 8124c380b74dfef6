//! `/mcp` JSON-RPC fuzzing (issue 20), bounded, on loopback: random JSON-RPC messages —
//! known and unknown methods, ids of every JSON type, random params and tool arguments for a
//! real enabled skill, batches, non-object bodies and bytes that are not JSON — sent to a live
//! session and without one. Nothing may answer 5xx; every JSON-RPC answer is a result or an
//! error with an integer code; the session still works afterwards. Runs on SQLite, and on
//! PostgreSQL when OPCHUB_TEST_DATABASE_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::skills::{listed_mcp_skill, world, RawMcp};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[\\PC]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One body to send: a JSON-RPC message (or a batch, or something that is not one), as bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("initialize".to_string()),
        Just("tools/list".to_string()),
        Just("tools/call".to_string()),
        Just("ping".to_string()),
        Just("resources/list".to_string()),
        Just("prompts/list".to_string()),
        Just("notifications/initialized".to_string()),
        Just("notifications/cancelled".to_string()),
        "[\\PC]{0,20}",
    ];
    let id = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|i| Some(json!(i))),
        "[a-z0-9-]{0,12}".prop_map(|s| Some(json!(s))),
        Just(Some(Value::Null)),
        any_json().prop_map(Some),
    ];
    let tool = prop_oneof![
        Just(json!("fuzz-calc__add")),
        Just(json!("fuzz-calc__echo")),
        Just(json!("fuzz-calc__fail")),
        Just(json!("no-such__tool")),
        any_json(),
    ];
    let params = prop_oneof![
        Just(None),
        any_json().prop_map(Some),
        (tool, any_json()).prop_map(|(name, arguments)| Some(json!({"name": name, "arguments": arguments}))),
    ];
    let message = (method, id, params, any::<bool>()).prop_map(|(method, id, params, v2)| {
        let mut m = serde_json::Map::new();
        m.insert("jsonrpc".into(), json!(if v2 { "2.0" } else { "1.0" }));
        m.insert("method".into(), json!(method));
        if let Some(id) = id {
            m.insert("id".into(), id);
        }
        if let Some(p) = params {
            m.insert("params".into(), p);
        }
        Value::Object(m)
    });
    prop_oneof![
        8 => message.clone().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        1 => prop::collection::vec(message, 0..4).prop_map(|b| serde_json::to_vec(&b).unwrap()),
        1 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// What an answer may be: any status but a 5xx; a JSON-RPC answer is a result or an error
/// with an integer code.
fn check_answer(status: StatusCode, text: &str, sent: &[u8]) {
    assert!(!status.is_server_error(), "{status} for {}: {text}", String::from_utf8_lossy(sent));
    // Sent as application/json: a body that is no JSON-RPC message is an invalid request (400),
    // never "unsupported media type".
    assert_ne!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    let payloads: Vec<Value> = if text.trim_start().starts_with("event:") || text.trim_start().starts_with("data:") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    } else {
        serde_json::from_str::<Value>(text).ok().into_iter().collect()
    };
    for p in payloads
        .iter()
        .flat_map(|p| p.as_array().cloned().unwrap_or_else(|| vec![p.clone()]))
    {
        if p.get("jsonrpc").is_some() && p.get("method").is_none() {
            let ok = p.get("result").is_some() || p["error"]["code"].is_i64();
            assert!(ok, "not a JSON-RPC result or error: {p} (sent {})", String::from_utf8_lossy(sent));
        }
    }
}

#[test]
fn random_json_rpc_never_breaks_mcp() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (w, mcp, url, key) = rt.block_on(async {
        let w = world().await;
        let id = listed_mcp_skill(&w, "fuzz-calc", 2).await;
        let r = w
            .invoker
            .put_json(&format!("/api/v1/skills/{id}/enabled"), json!({"enabled": true}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let mcp = RawMcp::connect(&w.app.base, &w.invoker_key).await;
        let url = format!("{}/mcp", w.app.base);
        let key = w.invoker_key.clone();
        (w, mcp, url, key)
    });
    let session = mcp.session_id();
    let http = reqwest::Client::new();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 400,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&(body(), any::<bool>()), |(bytes, with_session)| {
            rt.block_on(async {
                let mut req = http
                    .post(&url)
                    .bearer_auth(&key)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .body(bytes.clone());
                if let (true, Some(s)) = (with_session, &session) {
                    req = req.header("mcp-session-id", s);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                check_answer(status, &text, &bytes);
            });
            Ok(())
        })
        .unwrap();
    // The session still serves after all of it.
    rt.block_on(async {
        let mut tools = mcp.tools().await;
        tools.sort();
        assert_eq!(tools, ["fuzz-calc__add", "fuzz-calc__echo", "fuzz-calc__fail"]);
        let v = mcp.call(7, "fuzz-calc__add", json!({"a": 20, "b": 22})).await;
        assert_eq!(v["result"]["content"][0]["text"], "42", "{v}");
        drop(w);
    });
}
