//! What the command-line tests share: running the real `opchub` binary once, and starting
//! `opchub serve` on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

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
#[allow(clippy::zombie_processes)]
pub fn serve(dir: &Path, db: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--database-url",
            db,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("OPCHUB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("open ").nth(1) {
            let url = rest.trim().trim_end_matches('/').to_string();
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, url);
        }
    }
}
