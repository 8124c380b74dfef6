//! `opchub-fake-mcp --listen 127.0.0.1:0`: the fake publisher MCP server (official Rust SDK,
//! Streamable HTTP) as a process, for the Python SDK test and the Skill Store benchmark.
//!
//! Prints `listening on http://ADDR/mcp` as its first stdout line, then serves until SIGINT or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use opchub_testkit::mcp_server::FakeMcp;

#[derive(Parser, Debug)]
#[command(name = "opchub-fake-mcp", about = "A fake publisher MCP server for tests")]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let server = FakeMcp::start_on(args.listen).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.url())?;
    stdout.flush()?;
    drop(stdout);
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    server.stop().await;
    Ok(())
}
