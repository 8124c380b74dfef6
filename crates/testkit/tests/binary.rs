//! The `opchub-fake-upstream` binary: first stdout line, stats over HTTP, clean exit on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use opchub_testkit::Stats;
use serde_json::{json, Value};

#[tokio::test]
async fn binary_prints_its_url_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opchub-fake-upstream"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line).await.unwrap().unwrap().unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"), "{base}");

    let client = reqwest::Client::new();
    let body: Value = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth("sk-ci")
        .json(&json!({"model": "fake-final", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["usage"]["total_tokens"], 6);
    let root = base.trim_end_matches("/v1");
    let stats: Stats = client.get(format!("{root}/__stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats.requests, stats.prompt_tokens, stats.completion_tokens), (1, 2, 4));
    assert_eq!(stats.last_authorization.as_deref(), Some("Bearer sk-ci"));
    drop(client);

    // SIGTERM to the child we started, by its pid: it stops cleanly.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait());
    let exit = tokio::time::timeout(Duration::from_secs(10), exit).await.unwrap().unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
}
