//! The file store: application evidence, demand attachments and published datasets, kept by
//! their SHA-256 (content-addressed, F2). A file changed in the store afterwards is refused on
//! read (`evidence_changed`).
//!
//! Backend: a local directory, `<dir>/<sha256[..2]>/<sha256>`.

use crate::error::{AppError, AppResult, ErrorKind};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FileStore {
    pub dir: PathBuf,
}

impl FileStore {
    /// A store in a local directory (created on first write).
    pub fn local(dir: PathBuf) -> Self {
        FileStore { dir }
    }

    pub fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(sha.get(..2).unwrap_or("00")).join(sha)
    }

    /// A fresh temporary path in the store's directory (same file system, so [`Self::adopt`]
    /// is a rename).
    pub async fn temp_path(&self) -> AppResult<PathBuf> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| AppError::internal_from("store directory", e))?;
        Ok(self.dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple())))
    }

    /// Moves a fully written temporary file to its content address `sha` (a file already there
    /// has the same content; the temporary one is then removed).
    pub async fn adopt(&self, tmp: &Path, sha: &str) -> AppResult<()> {
        let path = self.path(sha);
        let io = |e: std::io::Error| AppError::internal_from("store write failed", e);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let _ = tokio::fs::remove_file(tmp).await;
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        tokio::fs::rename(tmp, &path).await.map_err(io)
    }

    pub async fn put(&self, sha: &str, bytes: &[u8]) -> AppResult<()> {
        let path = self.path(sha);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let io = |e: std::io::Error| AppError::internal_from("evidence write failed", e);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Write beside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(())
    }

    /// The stored bytes, checked against their SHA-256: a changed file is refused (F2).
    pub async fn get(&self, sha: &str) -> AppResult<Vec<u8>> {
        let bytes = tokio::fs::read(self.path(sha))
            .await
            .map_err(|_| AppError::new(ErrorKind::Gone, "evidence_missing"))?;
        if hex::encode(Sha256::digest(&bytes)) != sha {
            return Err(AppError::conflict("evidence_changed"));
        }
        Ok(bytes)
    }
}
