//! What the command-line tests share: running the real `opchub` binary once, and starting
//! `opchub serve` on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_opchub");

pub fn opchub(dir: &Path, db: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["--data-dir", dir.to_str().unwrap(), "--database-url", db])
        .args(args)
        .env("OPCHUB_LOG", "warn")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Starts `opchub serve` on a free port; returns the child and its base URL. The caller
/// kills and waits for it (a failed start panics the test, which ends the child with it).
pub fn serve(dir: &Path, db: &str) -> (Child, String) {
    serve_with(dir, db, &[], None)
}

/// [`serve`] with more arguments, and optionally under a file-size limit in bytes (`prlimit`,
/// started from a shell that ignores `SIGXFSZ`, so a write past it fails with `EFBIG` as on a
/// full disk instead of killing the server).
#[allow(clippy::zombie_processes)]
pub fn serve_with(dir: &Path, db: &str, extra: &[&str], file_size_limit: Option<u64>) -> (Child, String) {
    let mut cmd = match file_size_limit {
        Some(bytes) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("trap '' XFSZ; exec prlimit --fsize={bytes}:unlimited -- \"$0\" \"$@\""))
                .arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.args([
        "--data-dir",
        dir.to_str().unwrap(),
        "--database-url",
        db,
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])
    .args(extra);
    // Its log, for a failing test to read: `<data dir>/serve.log`.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut out = log.try_clone().unwrap();
    let mut child = cmd.env("OPCHUB_LOG", "warn").stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server exited").unwrap();
        // "OPC Hub is running — open http://…/" (demo lines before it may say "open" too).
        if let Some(rest) = line.split("open http").nth(1) {
            let url = format!("http{}", rest.trim().trim_end_matches('/'));
            std::thread::spawn(move || {
                use std::io::Write;
                for line in lines.by_ref().map_while(|l| l.ok()) {
                    let _ = writeln!(out, "{line}");
                }
            });
            return (child, url);
        }
    }
}

pub const PASSWORD: &str = "fresh-deploy-9";

pub fn cookies(r: &reqwest::Response, jar: &mut Vec<(String, String)>) {
    for v in r.headers().get_all("set-cookie") {
        let pair = v.to_str().unwrap().split(';').next().unwrap();
        let (k, val) = pair.split_once('=').unwrap();
        jar.retain(|(n, _)| n != k);
        jar.push((k.to_string(), val.to_string()));
    }
}

/// A signed-in caller using an API key made through its browser session.
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub bytes: Vec<u8>,
    pub disposition: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub async fn login(base: &str, username: &str) -> Api {
        Api::login_as(base, username, PASSWORD).await
    }

    /// Signs `username` in with `password` and makes it an API key.
    pub async fn login_as(base: &str, username: &str, password: &str) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut jar = vec![];
        cookies(&http.get(format!("{base}/login")).send().await.unwrap(), &mut jar);
        let csrf = jar.iter().find(|(k, _)| k == "opchub_csrf").unwrap().1.clone();
        let header = |jar: &[(String, String)]| jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let r = http
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", header(&jar))
            .body(format!("username={username}&password={password}&_csrf={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "login of {username}");
        cookies(&r, &mut jar);
        let csrf = jar.iter().find(|(k, _)| k == "opchub_csrf").unwrap().1.clone();
        let r = http
            .post(format!("{base}/api/v1/me/api-keys"))
            .header("cookie", header(&jar))
            .header("x-csrf-token", csrf)
            .json(&json!({"name": "fresh"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let key = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
        Api {
            base: base.to_string(),
            key,
            http,
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>, bearer: Option<&str>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer.unwrap_or(&self.key));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let disposition = r
            .headers()
            .get("content-disposition")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = r.bytes().await.unwrap().to_vec();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes,
            disposition,
        }
    }
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body), None).await
    }
    pub async fn upload(&self, path: &str, bytes: &[u8]) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/pdf")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        Answer {
            status,
            body,
            bytes: vec![],
            disposition: String::new(),
        }
    }
}

pub fn ok(a: &Answer, what: &str) -> Value {
    assert!((200..300).contains(&a.status), "{what}: {} {:#}", a.status, a.body);
    a.body.clone()
}

/// The quantity of one event kind in a ledger statement's totals (summed over its units).
pub fn statement_quantity(statement: &Value, kind: &str) -> i64 {
    statement["totals"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|t| t["kind"] == kind)
                .filter_map(|t| t["quantity"].as_i64())
                .sum()
        })
        .unwrap_or(0)
}

pub fn create_user(dir: &Path, db: &str, username: &str, role: &str, extra: &[&str]) -> String {
    let mut args = vec!["user", "create", "--username", username, "--role", role, "--password", PASSWORD];
    args.extend_from_slice(extra);
    let (code, out) = opchub(dir, db, &args);
    assert_eq!(code, 0, "{out}");
    out.split("id=").nth(1).unwrap().trim().to_string()
}
