//! `opchub-fake-upstream --listen 127.0.0.1:0`: the fake OpenAI-compatible upstream as a process, for CI scripts.
//!
//! Prints `listening on http://ADDR/v1` as its first stdout line, then serves until SIGINT or SIGTERM.
//! `GET /__stats` returns what it emitted so far, `POST /__reset` zeroes it.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use opchub_testkit::FakeUpstream;

#[derive(Parser, Debug)]
#[command(name = "opchub-fake-upstream", about = "A fake OpenAI-compatible model provider for tests")]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let upstream = FakeUpstream::start_on(args.listen).await?;
    // Listen for signals before announcing the address: a SIGTERM right after the first
    // line must already mean a clean stop.
    let signal = wait_for_signal()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", upstream.base_url())?;
    stdout.flush()?;
    drop(stdout);
    signal.await?;
    upstream.stop().await;
    Ok(())
}

/// Registers the handlers now; the returned future completes on SIGINT or SIGTERM.
#[cfg(unix)]
fn wait_for_signal() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    })
}

#[cfg(not(unix))]
fn wait_for_signal() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    Ok(async { tokio::signal::ctrl_c().await })
}
