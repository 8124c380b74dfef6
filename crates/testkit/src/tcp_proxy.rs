//! A TCP proxy in front of a real server (PostgreSQL in the fault tests), to take it away and
//! bring it back the way a restart looks from the client: every open connection is cut, and
//! for the outage new connections are accepted and closed at once (the server's "starting
//! up"), then it forwards again. Loopback only; it stops with the value.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    addr: SocketAddr,
    /// The generation of connections: bumped to cut every open one.
    cut: watch::Sender<u64>,
    down: Arc<std::sync::atomic::AtomicBool>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(0u64);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cuts, is_down) = (cut.clone(), down.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut generation = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = generation.changed() => {}
                    }
                });
            }
        });
        Ok(TcpProxy { addr, cut, down, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every open connection and refuses new ones for `outage`, then forwards again.
    pub async fn restart(&self, outage: Duration) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
        tokio::time::sleep(outage).await;
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.send_modify(|g| *g += 1);
    }
}
