//! A real S3-compatible server for tests: `s3s-fs` (a bucket is a directory under a root
//! directory) behind `s3s`' service, over plain HTTP on 127.0.0.1, with SigV4 authentication
//! of one access key. The file store's S3 backend is tested against it (crates/app/tests/files.rs);
//! nothing but Cargo is needed (no container, no external service).

use axum::error_handling::HandleError;
use axum::http::StatusCode;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The access key the server accepts (with [`SECRET_KEY`]).
pub const ACCESS_KEY: &str = "AKIAOPCHUBTEST";
pub const SECRET_KEY: &str = "opchub-test-secret-key";

/// A running S3-compatible server.
pub struct FakeS3 {
    pub addr: SocketAddr,
    /// The directory whose subdirectories are the buckets.
    pub root: PathBuf,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeS3 {
    /// Serves `root` (created if absent) on an ephemeral port of 127.0.0.1.
    pub async fn start(root: &Path) -> std::io::Result<FakeS3> {
        std::fs::create_dir_all(root)?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        // axum's fallback service must not fail: an HTTP-level error becomes a 500.
        let service = HandleError::new(service, |e: s3s::HttpError| async move {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}"))
        });
        let app = axum::Router::new().fallback_service(service);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let (shutdown, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(FakeS3 {
            addr,
            root: root.to_path_buf(),
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes a bucket (a directory under the root).
    pub fn create_bucket(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(name))
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
