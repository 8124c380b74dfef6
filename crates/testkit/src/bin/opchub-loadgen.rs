//! `opchub-loadgen`: an open-loop load generator for OpenAI-compatible chat endpoints on loopback.
//!
//! ```sh
//! opchub-loadgen --url http://127.0.0.1:PORT/v1 --key opk_… --rate 1000 --duration 10 [--stream] [--model fake-final] [--max-tokens 16]
//! ```
//!
//! Request `i` is scheduled at `start + i / rate`, whatever the earlier requests are doing (open loop), and runs as
//! its own task. Its latency is measured from its **scheduled** time to the end of the response body (for a stream:
//! the whole stream), so a stalled server is charged for every request it delayed (no coordinated omission).
//! At most `--max-in-flight` requests run at once and exactly `rate × duration` are sent; each has a 30 s timeout
//! and the run drains for at most 35 s after the last one was sent, so it always stops by itself.
//!
//! Only loopback targets are accepted (`127.0.0.1`, `localhost`, `::1`). Prints one JSON line on stdout:
//! `{"rate":…,"duration_s":…,"stream":…,"sent":…,"ok":…,"errors":…,"p50_ms":…,"p99_ms":…,"max_ms":…,"lag_max_ms":…}`
//! where `lag_max_ms` is how late the dispatcher was at worst (large values mean the generator, not the target,
//! was the bottleneck). Percentiles are exact (nearest rank) over the successful requests.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::Url;
use serde_json::json;
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
    about = "Open-loop load generator for OpenAI-compatible chat endpoints (loopback only)"
)]
struct Args {
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1 (loopback hosts only).
    #[arg(long)]
    url: String,
    /// Bearer token sent as `Authorization: Bearer …`.
    #[arg(long, default_value = "sk-loadgen")]
    key: String,
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

fn run() -> Result<String, BoxError> {
    let args = Args::parse();
    let url = endpoint(&args.url)?;
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
    let body = serde_json::to_string(&json!({
        "model": args.model,
        "messages": [{"role": "user", "content": args.prompt}],
        "max_tokens": args.max_tokens,
        "stream": args.stream,
    }))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    let job = Job {
        client,
        url,
        key: args.key.clone(),
        body,
        stream: args.stream,
    };
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
    runtime.shutdown_timeout(Duration::from_secs(1));

    let mut latencies: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.ok)
        .map(|o| u64::try_from(o.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let errors = sent - ok;
    if let Some(first) = outcomes.iter().find_map(|o| o.error.as_deref()) {
        eprintln!("opchub-loadgen: {errors} errors; first: {first}");
    }
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
    let line = json!({
        "rate": args.rate,
        "duration_s": args.duration,
        "stream": args.stream,
        "sent": sent,
        "ok": ok,
        "errors": errors,
        "p50_ms": ms(percentile(&latencies, 0.50)),
        "p99_ms": ms(percentile(&latencies, 0.99)),
        "max_ms": ms(latencies.last().copied()),
        "lag_max_ms": ms(Some(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX))),
        "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    });
    Ok(line.to_string())
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
    key: String,
    body: String,
    stream: bool,
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
            let outcome = one(&job, scheduled).await;
            drop(permit);
            outcome
        }));
    }
    (tasks, lag, start)
}

/// One request, read to the end of its body.
async fn one(job: &Job, scheduled: Instant) -> Outcome {
    let result = async {
        let response = job
            .client
            .post(job.url.clone())
            .bearer_auth(&job.key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(job.body.clone())
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
        Ok((_, body)) => {
            let complete = if job.stream {
                body.windows(12).any(|w| w == b"data: [DONE]")
            } else {
                body.windows(9).any(|w| w == b"\"choices\"")
            };
            (!complete).then(|| "incomplete response body".to_owned())
        }
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
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
