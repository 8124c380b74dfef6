//! `opchub-loadgen`: an open-loop load generator for OpenAI-compatible chat endpoints and MCP servers on loopback.
//!
//! ```sh
//! opchub-loadgen --url http://127.0.0.1:PORT/v1 --key opk_… --rate 1000 --duration 10 [--stream] [--model fake-final] [--max-tokens 16]
//! opchub-loadgen --mcp --url http://127.0.0.1:PORT/mcp [--key opk_…] [--header 'Name: value'] --tool add --arguments '{"a":1,"b":2}' --rate 1000
//! ```
//!
//! With `--mcp` the target is an MCP Streamable HTTP endpoint: the generator first opens one session (`initialize`,
//! then `notifications/initialized`, keeping the `Mcp-Session-Id` the server returns) and then sends `tools/call`
//! JSON-RPC POSTs on it, each with its own id (1, 2, …); a call succeeds when the response (plain JSON or an SSE
//! stream) holds the JSON-RPC result with that id and the result is not `isError: true`. The session is deleted
//! at the end.
//!
//! Request `i` is scheduled at `start + i / rate`, whatever the earlier requests are doing (open loop), and runs as
//! its own task. Its latency is measured from its **scheduled** time to the end of the response body (for a stream:
//! the whole stream), so a stalled server is charged for every request it delayed (no coordinated omission).
//! At most `--max-in-flight` requests run at once and exactly `rate × duration` are sent; each has a 30 s timeout
//! and the run drains for at most 35 s after the last one was sent, so it always stops by itself.
//!
//! Only loopback targets are accepted (`127.0.0.1`, `localhost`, `::1`). Prints one JSON line on stdout:
//! `{"mode":…,"rate":…,"duration_s":…,"stream":…,"sent":…,"ok":…,"errors":…,"p50_ms":…,"p99_ms":…,"max_ms":…,"p99_by_second_ms":[…],"lag_max_ms":…}`
//! where `lag_max_ms` is how late the dispatcher was at worst (large values mean the generator, not the target,
//! was the bottleneck). Percentiles are exact (nearest rank) over the successful requests.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

/// Largest total number of requests one run may send.
const MAX_TOTAL: u64 = 1_000_000;
/// Timeout of a single request (connect to end of body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the run waits for requests still in flight after the last one was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(35);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(
    name = "opchub-loadgen",
    about = "Open-loop load generator for OpenAI-compatible chat endpoints and MCP servers (loopback only)"
)]
struct Args {
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1; with `--mcp` the MCP endpoint itself,
    /// e.g. http://127.0.0.1:8080/mcp (loopback hosts only).
    #[arg(long)]
    url: String,
    /// Bearer token sent as `Authorization: Bearer …` (chat default: sk-loadgen; with `--mcp`: none unless given).
    #[arg(long)]
    key: Option<String>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Drive an MCP Streamable HTTP endpoint with `tools/call` requests instead of chat completions.
    #[arg(long)]
    mcp: bool,
    /// `--mcp`: the tool to call.
    #[arg(long, default_value = "add")]
    tool: String,
    /// `--mcp`: the tool's arguments (a JSON object).
    #[arg(long, default_value = r#"{"a":1,"b":2}"#)]
    arguments: String,
    /// Requests per second (1–100000).
    #[arg(long)]
    rate: u64,
    /// Seconds to send for (1–600); rate × duration requests are sent in all (at most 1,000,000).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Ask for a streamed response (`"stream": true`) and read the whole stream.
    #[arg(long)]
    stream: bool,
    /// Model to ask for.
    #[arg(long, default_value = "fake-final")]
    model: String,
    /// `max_tokens` of each request.
    #[arg(long, default_value_t = 16)]
    max_tokens: u64,
    /// The user message of each request.
    #[arg(long, default_value = "hello hello hello")]
    prompt: String,
    /// Most requests in flight at once; when reached, sending waits (and the wait counts in the latency).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
}

/// The outcome of one request.
struct Outcome {
    ok: bool,
    /// From the scheduled time to the end of the response body.
    latency: Duration,
    /// Why it failed (only when `ok` is false).
    error: Option<String>,
}

fn main() {
    match run() {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("opchub-loadgen: {e}");
            std::process::exit(2);
        }
    }
}

/// Accepts only loopback hosts: 127.0.0.1, localhost and ::1.
fn check_loopback(url: &Url) -> Result<(), BoxError> {
    if url.scheme() != "http" {
        return Err(format!("only http:// URLs are supported, not {}", url.scheme()).into());
    }
    // `host_str` is normalised by the URL parser: lower-case names, canonical IPv6 in brackets.
    let ok = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if ok {
        Ok(())
    } else {
        Err(format!("refusing {url}: the target must be 127.0.0.1, localhost or ::1").into())
    }
}

fn endpoint(base: &str) -> Result<Url, BoxError> {
    let base = Url::parse(base).map_err(|e| format!("bad --url {base}: {e}"))?;
    check_loopback(&base)?;
    let joined = format!("{}/chat/completions", base.as_str().trim_end_matches('/'));
    Ok(Url::parse(&joined)?)
}

/// The MCP endpoint itself (loopback only).
fn mcp_endpoint(url: &str) -> Result<Url, BoxError> {
    let url = Url::parse(url).map_err(|e| format!("bad --url {url}: {e}"))?;
    check_loopback(&url)?;
    Ok(url)
}

/// `Name: value` → a header.
fn header_of(h: &str) -> Result<(HeaderName, HeaderValue), BoxError> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("bad --header {h}: expected `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| format!("bad --header {h}: {e}"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|e| format!("bad --header {h}: {e}"))?;
    Ok((name, value))
}

fn run() -> Result<String, BoxError> {
    let args = Args::parse();
    let url = if args.mcp { mcp_endpoint(&args.url)? } else { endpoint(&args.url)? };
    if !(1..=100_000).contains(&args.rate) {
        return Err("--rate must be 1..=100000".into());
    }
    if !(1..=600).contains(&args.duration) {
        return Err("--duration must be 1..=600 seconds".into());
    }
    let total = args.rate * args.duration;
    if total > MAX_TOTAL {
        return Err(format!("rate × duration = {total} requests; at most {MAX_TOTAL} per run").into());
    }
    if args.max_in_flight == 0 {
        return Err("--max-in-flight must be at least 1".into());
    }
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = header_of(h)?;
        headers.append(name, value);
    }
    let key = match (&args.key, args.mcp) {
        (Some(k), _) => Some(k.clone()),
        (None, false) => Some("sk-loadgen".to_owned()),
        (None, true) => None,
    };
    if let Some(k) = &key {
        let value = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|e| format!("bad --key: {e}"))?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    let kind = if args.mcp {
        let arguments: Value = serde_json::from_str(&args.arguments).map_err(|e| format!("bad --arguments: {e}"))?;
        if !arguments.is_object() {
            return Err("--arguments must be a JSON object".into());
        }
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static(MCP_ACCEPT));
        let session = runtime.block_on(mcp_session(&client, &url, &headers))?;
        headers.extend(session);
        // `{"jsonrpc":"2.0","method":"tools/call","params":{…},"id":` + id + `}`
        let params = serde_json::to_string(&json!({"name": args.tool, "arguments": arguments}))?;
        Kind::Mcp {
            prefix: format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":"#),
        }
    } else {
        Kind::Chat {
            body: serde_json::to_string(&json!({
                "model": args.model,
                "messages": [{"role": "user", "content": args.prompt}],
                "max_tokens": args.max_tokens,
                "stream": args.stream,
            }))?,
            stream: args.stream,
        }
    };
    let job = Job {
        client,
        url,
        headers: Arc::new(headers),
        kind: Arc::new(kind),
    };
    let session_url = job.url.clone();
    let session_headers = job.headers.clone();
    let semaphore = Arc::new(Semaphore::new(args.max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);

    // The dispatcher is a plain thread: std::thread::sleep is precise to tens of microseconds,
    // tokio's timer only to a millisecond, which would bunch requests at high rates.
    let dispatcher = {
        let semaphore = semaphore.clone();
        std::thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || dispatch(&handle, job, &semaphore, total, interval))?
    };
    let (tasks, lag, started) = dispatcher.join().map_err(|_| "the dispatcher thread failed")?;
    let sent = tasks.len() as u64;

    let outcomes = runtime.block_on(async move {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(outcome)) => outcomes.push(outcome),
                Ok(Err(e)) => outcomes.push(Outcome {
                    ok: false,
                    latency: Duration::ZERO,
                    error: Some(format!("task failed: {e}")),
                }),
                Err(_) => {
                    abort.abort();
                    outcomes.push(Outcome {
                        ok: false,
                        latency: Duration::ZERO,
                        error: Some("still running when the drain timeout passed".into()),
                    });
                }
            }
        }
        outcomes
    });
    let elapsed = started.elapsed();
    if args.mcp && session_headers.contains_key(MCP_SESSION) {
        // Close the session (best effort: the run is over).
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
        // `send` starts its timeout when called, so it must be called inside the runtime.
        let _ = runtime.block_on(async move { client.delete(session_url).headers((*session_headers).clone()).send().await });
    }
    runtime.shutdown_timeout(Duration::from_secs(1));

    let latencies = sorted_latencies_us(&outcomes);
    let ok = latencies.len() as u64;
    let errors = sent - ok;
    if let Some(first) = outcomes.iter().find_map(|o| o.error.as_deref()) {
        eprintln!("opchub-loadgen: {errors} errors; first: {first}");
    }
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
    // p99 of each second of the schedule (request i is due at i / rate): whether slow requests
    // come together (a stall) or spread over the run (queueing).
    let by_second: Vec<Option<f64>> = outcomes
        .chunks(args.rate as usize)
        .map(|second| ms(percentile(&sorted_latencies_us(second), 0.99)))
        .collect();
    let line = json!({
        "mode": if args.mcp { "mcp" } else { "chat" },
        "rate": args.rate,
        "duration_s": args.duration,
        "stream": args.stream,
        "sent": sent,
        "ok": ok,
        "errors": errors,
        "p50_ms": ms(percentile(&latencies, 0.50)),
        "p99_ms": ms(percentile(&latencies, 0.99)),
        "max_ms": ms(latencies.last().copied()),
        "p99_by_second_ms": by_second,
        "lag_max_ms": ms(Some(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX))),
        "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    });
    Ok(line.to_string())
}

/// The latencies of the successful requests, in microseconds, ascending.
fn sorted_latencies_us(outcomes: &[Outcome]) -> Vec<u64> {
    let mut l: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.ok)
        .map(|o| u64::try_from(o.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    l.sort_unstable();
    l
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// What every request sends.
#[derive(Clone)]
struct Job {
    client: reqwest::Client,
    url: Url,
    /// Authorization, content type, extra headers and (MCP) the session's headers.
    headers: Arc<HeaderMap>,
    kind: Arc<Kind>,
}

enum Kind {
    /// A chat completion; the same body every time.
    Chat { body: String, stream: bool },
    /// An MCP `tools/call`: the body is `prefix` + the JSON-RPC id + `}`.
    Mcp { prefix: String },
}

/// What an MCP client must accept on a Streamable HTTP POST.
const MCP_ACCEPT: &str = "application/json, text/event-stream";
const MCP_SESSION: &str = "mcp-session-id";
/// The protocol version the generator asks for (one that still has `initialize` and sessions).
const MCP_PROTOCOL: &str = "2025-06-18";

/// Opens an MCP session: `initialize`, then `notifications/initialized`. Returns the headers every later request
/// carries (`Mcp-Session-Id` when the server gave one, `MCP-Protocol-Version`).
async fn mcp_session(client: &reqwest::Client, url: &Url, headers: &HeaderMap) -> Result<HeaderMap, BoxError> {
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": MCP_PROTOCOL, "capabilities": {}, "clientInfo": {"name": "opchub-loadgen", "version": "1"}},
    });
    let response = client.post(url.clone()).headers(headers.clone()).json(&init).send().await?;
    let status = response.status();
    let session = response.headers().get(MCP_SESSION).cloned();
    let body = response.bytes().await?;
    if !status.is_success() {
        return Err(format!("initialize: HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    let result = rpc_response(&body, &json!(0))
        .and_then(|m| m.get("result").cloned())
        .ok_or_else(|| format!("initialize: no result in {}", String::from_utf8_lossy(&body)))?;
    let version = result["protocolVersion"].as_str().unwrap_or(MCP_PROTOCOL).to_owned();
    let mut out = HeaderMap::new();
    if let Some(sid) = session {
        out.insert(MCP_SESSION, sid);
    }
    out.insert("mcp-protocol-version", HeaderValue::from_str(&version)?);
    let mut all = headers.clone();
    all.extend(out.clone());
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = client.post(url.clone()).headers(all).json(&note).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("notifications/initialized: HTTP {status}").into());
    }
    Ok(out)
}

/// The JSON-RPC response with `id` in a body that is either one JSON message (or a batch) or an SSE stream of them.
fn rpc_response(body: &[u8], id: &Value) -> Option<Value> {
    let matching = |v: Value| -> Option<Value> {
        match v {
            Value::Array(items) => items.into_iter().find(|m| m.get("id") == Some(id)),
            m if m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some()) => Some(m),
            _ => None,
        }
    };
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return matching(v);
    }
    // SSE: the message is the `data:` lines of one event (usually one line).
    let text = std::str::from_utf8(body).ok()?;
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if line.is_empty() && !data.is_empty() {
            if let Some(m) = serde_json::from_str::<Value>(&data).ok().and_then(matching) {
                return Some(m);
            }
            data.clear();
        }
    }
    None
}

/// Why an MCP `tools/call` response is not a success, if it is not.
fn mcp_failure(body: &[u8], id: u64) -> Option<String> {
    let Some(m) = rpc_response(body, &json!(id)) else {
        return Some("no JSON-RPC response with the request's id".to_owned());
    };
    if let Some(e) = m.get("error") {
        return Some(format!("JSON-RPC error: {e}"));
    }
    (m["result"]["isError"] == json!(true)).then(|| format!("tool error: {}", m["result"]["content"]))
}

/// Sends `total` requests, request `i` at `start + i × interval`; returns their tasks, the dispatcher's worst
/// lateness and the start.
fn dispatch(
    handle: &tokio::runtime::Handle,
    job: Job,
    semaphore: &Arc<Semaphore>,
    total: u64,
    interval: Duration,
) -> (Vec<JoinHandle<Outcome>>, Duration, Instant) {
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let start = Instant::now();
    let mut lag = Duration::ZERO;
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        let permit = loop {
            match semaphore.clone().try_acquire_owned() {
                Ok(permit) => break permit,
                Err(TryAcquireError::NoPermits) => std::thread::sleep(Duration::from_micros(100)),
                Err(TryAcquireError::Closed) => return (tasks, lag, start),
            }
        };
        lag = lag.max(Instant::now().saturating_duration_since(scheduled));
        let job = job.clone();
        tasks.push(handle.spawn(async move {
            let outcome = one(&job, i + 1, scheduled).await;
            drop(permit);
            outcome
        }));
    }
    (tasks, lag, start)
}

/// One request (`id` is its JSON-RPC id in MCP mode), read to the end of its body.
async fn one(job: &Job, id: u64, scheduled: Instant) -> Outcome {
    let body = match &*job.kind {
        Kind::Chat { body, .. } => body.clone(),
        Kind::Mcp { prefix } => format!("{prefix}{id}}}"),
    };
    let result = async {
        let response = job
            .client
            .post(job.url.clone())
            .headers((*job.headers).clone())
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let latency = scheduled.elapsed();
    let error = match result {
        Err(e) => Some(format!("request failed: {e}")),
        Ok((status, _)) if !status.is_success() => Some(format!("HTTP {status}")),
        Ok((_, body)) => match &*job.kind {
            Kind::Chat { stream, .. } => {
                let complete = if *stream {
                    body.windows(12).any(|w| w == b"data: [DONE]")
                } else {
                    body.windows(9).any(|w| w == b"\"choices\"")
                };
                (!complete).then(|| "incomplete response body".to_owned())
            }
            Kind::Mcp { .. } => mcp_failure(&body, id),
        },
    };
    Outcome {
        ok: error.is_none(),
        latency,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:1/v1",
            "http://[::1]:9/v1",
            "http://LOCALHOST:1/v1/",
        ] {
            assert!(endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080/v1",
            "http://example.com/v1",
            "https://127.0.0.1/v1",
            "http://127.0.0.2/v1",
            "nope",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(
            endpoint("http://127.0.0.1:8080/v1/").unwrap().as_str(),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
    }

    #[test]
    fn mcp_targets_are_loopback_and_kept_as_given() {
        assert_eq!(mcp_endpoint("http://127.0.0.1:9/mcp").unwrap().as_str(), "http://127.0.0.1:9/mcp");
        assert!(mcp_endpoint("http://192.168.1.1:9/mcp").is_err());
        assert!(header_of("X-Thing: a b").is_ok());
        assert!(header_of("no colon").is_err());
    }

    #[test]
    fn mcp_responses_in_json_and_sse() {
        let ok = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"3"}],"isError":false}}"#;
        assert_eq!(mcp_failure(ok, 7), None);
        assert!(mcp_failure(ok, 8).is_some(), "another id");
        let sse = b"id: 0\nretry: 3000\ndata: \n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[],\"isError\":false}}\n\n";
        assert_eq!(mcp_failure(sse, 3), None);
        let tool_error = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#;
        assert!(mcp_failure(tool_error, 1).is_some());
        let rpc_error = br#"data: {"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}"#;
        assert!(mcp_failure(rpc_error, 1).unwrap().contains("unknown tool"));
        assert!(mcp_failure(b"", 1).is_some());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
