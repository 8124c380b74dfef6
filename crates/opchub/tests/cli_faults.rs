//! Faults, with the real binary (issue 20): `opchub serve` in front of the fake upstream
//! while the upstream misbehaves (resets mid-stream, stalls before the first byte, sends
//! malformed events), the SQLite disk fills up, or PostgreSQL restarts under load. Each test
//! prints a line of the table in the note: fault, requests in flight, acknowledged, lost,
//! recovery time. Loopback only; every load is bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{create_user, ok, opchub, serve_with, statement_quantity, Api};
use opchub_testkit::{FakeUpstream, MODELS};

/// Tokens of every load request: 3 prompt words, 5 completion tokens.
const MAX_TOKENS: u64 = 5;

/// A platform with a channel to the fake upstream, a price table, and an OPC with a key.
struct Rig {
    dir: tempfile::TempDir,
    db: String,
    child: Option<Child>,
    base: String,
    upstream: FakeUpstream,
    platform: Api,
    opc: Api,
    party: String,
}

impl Rig {
    async fn start(db: Option<String>, file_size_limit: Option<u64>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let db = match db {
            Some(db) => db,
            None => opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap(),
        };
        for (user, role) in [
            ("faultop", "community_operator"),
            ("faultplat", "platform_operator"),
            ("faultopc", "opc_founder"),
        ] {
            create_user(dir.path(), &db, user, role, &[]);
        }
        let upstream = FakeUpstream::start().await;
        let (child, base) = serve_with(dir.path(), &db, &["--allow-private-upstreams"], file_size_limit);
        let (op, platform, opc) = (
            Api::login(&base, "faultop").await,
            Api::login(&base, "faultplat").await,
            Api::login(&base, "faultopc").await,
        );
        let ch = ok(
            &op.post(
                "/api/v1/gateway/channels",
                json!({"name": "main", "base_url": upstream.base_url(), "secret": "sk-fake", "models": MODELS, "timeout_ms": 1500}),
            )
            .await,
            "channel",
        );
        let id = ch["id"].as_str().unwrap();
        ok(
            &platform
                .put(&format!("/api/v1/gateway/channels/{id}/status"), json!({"status": "approved"}))
                .await,
            "channel approval",
        );
        let prices: Vec<Value> = MODELS
            .iter()
            .map(|m| json!({"model": m, "list_input": 400, "opc_input": 200, "list_cached": 100, "opc_cached": 50, "list_output": 1200, "opc_output": 600}))
            .collect();
        ok(
            &op.post("/api/v1/gateway/prices", json!({"version": "f-v1", "prices": prices}))
                .await,
            "prices",
        );
        let op_id = ok(&op.get("/api/v1/me").await, "me")["user"]["id"].as_str().unwrap().to_string();
        ok(
            &platform
                .put(
                    &format!("/api/v1/gateway/prices/{op_id}/f-v1/status"),
                    json!({"status": "approved"}),
                )
                .await,
            "price approval",
        );
        let party = ok(&opc.get("/api/v1/me").await, "me")["user"]["id"].as_str().unwrap().to_string();
        // A monthly budget: each request holds its price before the upstream call (a write).
        let keys = ok(&opc.get("/api/v1/me/api-keys").await, "keys");
        let key_id = keys.as_array().unwrap()[0]["id"].as_str().unwrap().to_string();
        ok(
            &opc.put(
                &format!("/api/v1/me/api-keys/{key_id}/limits"),
                json!({"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": 100_000_000}),
            )
            .await,
            "budget",
        );
        Rig {
            dir,
            db,
            child: Some(child),
            base,
            upstream,
            platform,
            opc,
            party,
        }
    }

    /// The ledger's (input, output) tokens of the OPC, read through the API.
    async fn ledger(&self) -> (u64, u64) {
        let st = ok(
            &self.platform.get(&format!("/api/v1/ledger/statement?party={}", self.party)).await,
            "statement",
        );
        let q = |kind: &str| u64::try_from(statement_quantity(&st, kind)).unwrap();
        (q("token.input") + q("token.cached_input"), q("token.output"))
    }

    /// Waits (bounded) until the ledger holds `want`; returns what it holds.
    async fn ledger_reaches(&self, want: (u64, u64)) -> (u64, u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.ledger().await;
            if got == want || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// After a load: no request hung, every acknowledged request is in the ledger once (the
    /// ledger equals what the upstream served), and, with the server stopped, `ledger verify`
    /// passes. Returns the acknowledged count and when the ledger was complete.
    async fn metered_once_and_verified(&mut self, load: &Load) -> (u64, Instant) {
        let acked = load.acknowledged.load(Ordering::SeqCst);
        assert_eq!(load.gave_up.load(Ordering::SeqCst), 0, "no request hung");
        let stats = self.upstream.stats();
        let want = (stats.prompt_tokens, stats.completion_tokens);
        assert_eq!(self.ledger_reaches(want).await, want, "every answered request is metered once");
        let complete = Instant::now();
        assert!(acked * MAX_TOKENS <= want.1);
        self.stop();
        let (code, out) = opchub(self.dir.path(), &self.db, &["ledger", "verify"]);
        assert_eq!(code, 0, "{out}");
        (acked, complete)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "hello hello hello"}]})
}

/// Posts a chat completion with the OPC's key; returns the status and every byte received
/// (a stream cut by the upstream ends with what arrived), or `None` when the client gave up.
async fn send(http: &reqwest::Client, base: &str, key: &str, body: &Value) -> Option<(u16, Vec<u8>)> {
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(20))
        .json(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let mut r = r;
    let mut bytes = vec![];
    while let Ok(Some(c)) = r.chunk().await {
        bytes.extend_from_slice(&c);
    }
    Some((status, bytes))
}

/// The upstream resets a stream half-way, stalls before its first byte, answers a stream with
/// malformed events among the good ones, or a plain request with a body that is not JSON: the
/// client gets the bytes so far or a clear error in OpenAI's shape, and the ledger counts
/// exactly what was delivered — the tokens of the chunks that reached the client, nothing for
/// an answer nobody could read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_resets_stalls_or_garbles_is_metered_by_what_was_delivered() {
    let rig = Rig::start(None, None).await;
    let http = reqwest::Client::new();
    let mut expected = (0, 0);
    for (model, stream) in [
        ("fake-abort", true),
        ("fake-garbled", true),
        ("fake-abort", false),
        ("fake-garbled", false),
        ("fake-hang", false),
        ("fake-hang", true),
    ] {
        let before = rig.upstream.stats();
        let started = Instant::now();
        let (status, bytes) = send(&http, &rig.base, &rig.opc.key, &chat(model, stream))
            .await
            .expect("an answer, not a hang");
        let after = rig.upstream.stats();
        let text = String::from_utf8_lossy(&bytes).to_string();
        if stream && model != "fake-hang" {
            // The bytes so far: the good chunks, and no end for the stream that was cut.
            assert_eq!(status, 200, "{model}: {text}");
            assert!(text.contains("\"content\":\"hello"), "{model}: {text}");
            assert_eq!(text.contains("[DONE]"), model == "fake-garbled", "{model}: {text}");
            expected.0 += after.prompt_tokens - before.prompt_tokens;
            expected.1 += after.completion_tokens - before.completion_tokens;
        } else {
            // Nothing readable was delivered: a clear error, nothing charged.
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_eq!(status, 502, "{model} stream={stream}: {text}");
            assert_eq!(body["error"]["type"], "upstream_error", "{model}: {text}");
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{model}: answered after the channel's timeout, not hung"
            );
        }
        let got = rig.ledger_reaches(expected).await;
        assert_eq!(got, expected, "after {model} stream={stream}: the ledger counts what was delivered");
    }
    assert!(
        expected.1 > 0 && expected.1 < 2 * MAX_TOKENS,
        "part of the output was delivered: {expected:?}"
    );
    println!("fault table | upstream resets, stalls, garbles | 1 | 6 answered (2 streams metered) | 0 | immediate");
}

/// What a load saw: requests acknowledged (200 with their usage), failed (a 5xx in the
/// documented error shape), or given up on by the client (a hang: must stay 0).
struct Load {
    acknowledged: AtomicU64,
    failed: AtomicU64,
    gave_up: AtomicU64,
    last_failure_ms: AtomicU64,
    first_success_after_ms: AtomicU64,
}

/// Sends `total` chat completions from `workers` concurrent clients.
async fn load(base: &str, key: &str, total: u64, workers: u64, fault_at: Arc<std::sync::Mutex<Option<Instant>>>) -> Arc<Load> {
    let l = Arc::new(Load {
        acknowledged: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        gave_up: AtomicU64::new(0),
        last_failure_ms: AtomicU64::new(0),
        first_success_after_ms: AtomicU64::new(u64::MAX),
    });
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (l, next, base, key, fault_at) = (l.clone(), next.clone(), base.to_string(), key.to_string(), fault_at.clone());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let at = start.elapsed().as_millis() as u64;
                match send(&http, &base, &key, &chat("fake-final", false)).await {
                    Some((200, body)) => {
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(v["usage"]["completion_tokens"], MAX_TOKENS);
                        l.acknowledged.fetch_add(1, Ordering::SeqCst);
                        let fault = *fault_at.lock().unwrap();
                        if let Some(f) = fault {
                            let since = f.elapsed().as_millis() as u64;
                            if l.failed.load(Ordering::SeqCst) > 0 {
                                l.first_success_after_ms.fetch_min(since, Ordering::SeqCst);
                            }
                        }
                    }
                    Some((status, body)) => {
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        assert!(status >= 500, "a fault answers a server error: {status} {v}");
                        assert!(v["error"]["code"].is_string() || v["error"]["type"].is_string(), "{status}: {v}");
                        l.failed.fetch_add(1, Ordering::SeqCst);
                        l.last_failure_ms.fetch_max(at, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    None => {
                        l.gave_up.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    l
}

/// The SQLite disk fills up under gateway load (a file-size limit on the server process, the
/// way a full disk answers writes): requests fail with a clear error or succeed, none hangs;
/// once space returns (the limit lifted on the running server), metering queued meanwhile is
/// committed — every acknowledged request is in the ledger once — and `ledger verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_sqlite_disk_loses_no_acknowledged_metering() {
    if std::env::var("OPCHUB_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        println!("a full SQLite disk: this run is on PostgreSQL (the SQLite run of the suite tests it)");
        return;
    }
    // The database files as set up, and room for a little more.
    let mut rig = Rig::start(None, None).await;
    rig.stop();
    let size = |name: &str| std::fs::metadata(rig.dir.path().join(name)).map(|m| m.len()).unwrap_or(0);
    // (The write-ahead log is rewritten from its start after each checkpoint: a write past the
    // limit fails there too.)
    let limit = size("opchub.db") + 32 * 1024;
    let (child, base) = serve_with(rig.dir.path(), &rig.db, &["--allow-private-upstreams"], Some(limit));
    let pid = child.id();
    rig.child = Some(child);
    rig.base = base.clone();
    rig.platform.base = base.clone();
    rig.opc.base = base.clone();

    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let key = rig.opc.key.clone();
    let (b, k, f) = (base.clone(), key.clone(), fault_at.clone());
    let load = tokio::spawn(async move { load(&b, &k, 6000, 8, f).await });
    // Wait for the disk to be full (the server's commits failing), then give space back.
    let log = || std::fs::read_to_string(rig.dir.path().join("serve.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !load.is_finished() && !log().contains("ledger append failed") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log().contains("ledger append failed"), "the load filled the disk: {}", log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    *fault_at.lock().unwrap() = Some(Instant::now());
    let lifted = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--fsize=unlimited:unlimited"])
        .status()
        .unwrap();
    assert!(lifted.success(), "space returns");
    let space_returned = Instant::now();
    let load = load.await.unwrap();
    let (acked, complete) = rig.metered_once_and_verified(&load).await;
    let recovered = complete.duration_since(space_returned).as_millis();
    println!(
        "fault table | SQLite disk full | 8 | {acked} ({} failed) | 0 | metering complete {recovered} ms after space returned",
        load.failed.load(Ordering::SeqCst)
    );
}

/// PostgreSQL restarts in the middle of gateway load (every connection cut, new ones refused
/// for two seconds): requests fail fast or succeed, none hangs; every acknowledged request is
/// in the ledger once; metering queued meanwhile is committed after the reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_load_loses_no_acknowledged_metering() {
    let Some(base_url) = std::env::var("OPCHUB_TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) else {
        println!("a PostgreSQL restart: this run is on SQLite (the PostgreSQL run of the suite tests it)");
        return;
    };
    // The server reaches PostgreSQL through a proxy the test can cut.
    let dir = tempfile::tempdir().unwrap();
    let direct = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let url = reqwest::Url::parse(&base_url).unwrap();
    let pg: std::net::SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
        .parse()
        .unwrap();
    let proxy = opchub_testkit::tcp_proxy::TcpProxy::start(pg).await.unwrap();
    let through = direct.replacen(
        &format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432)),
        &proxy.addr().to_string(),
        1,
    );
    assert_ne!(through, direct);
    let mut rig = Rig::start(Some(through), None).await;

    let fault_at = Arc::new(std::sync::Mutex::new(None));
    let (b, k, f) = (rig.base.clone(), rig.opc.key.clone(), fault_at.clone());
    let load = tokio::spawn(async move { load(&b, &k, 4000, 8, f).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!load.is_finished(), "the restart happens under load");
    proxy.restart(Duration::from_secs(2)).await;
    *fault_at.lock().unwrap() = Some(Instant::now());
    let load = load.await.unwrap();
    let (acked, _) = rig.metered_once_and_verified(&load).await;
    let recovery = load.first_success_after_ms.load(Ordering::SeqCst);
    println!(
        "fault table | PostgreSQL restart (2 s) | 8 | {acked} ({} failed) | 0 | {} ms after it came back",
        load.failed.load(Ordering::SeqCst),
        if recovery == u64::MAX { 0 } else { recovery }
    );
}
