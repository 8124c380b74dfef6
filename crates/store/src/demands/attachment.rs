//! Stored files of the demand board (attachments and invoices), content-addressed by SHA-256.

use crate::{now_ms, Result, Store, StoreError, Tx};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A stored file (attachment or invoice), addressed by its SHA-256.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub sha256: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// A file to store: its type (one of [`super::FILE_TYPES`]) and bytes (≤ [`super::MAX_FILE_BYTES`]),
/// checked before it reaches the store.
pub struct FileIn<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// The SHA-256 of a file's bytes, hex: its address in the file table.
pub(crate) fn sha_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) async fn put_file(tx: &mut Tx, sha: &str, f: &FileIn<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO demand_files (sha256, content_type, size_bytes, body, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha)
    .bind(f.content_type)
    .bind(f.bytes.len() as i64)
    .bind(f.bytes.to_vec())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn demand_attachments(&self, demand_id: &str) -> Result<Vec<Attachment>> {
        let rows = sqlx::query(
            "SELECT sha256, file_name, content_type, size_bytes FROM demand_attachments WHERE demand_id = $1 ORDER BY created_at, file_name",
        )
        .bind(demand_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attachment {
                    sha256: r.try_get("sha256")?,
                    file_name: r.try_get("file_name")?,
                    content_type: r.try_get("content_type")?,
                    size_bytes: r.try_get("size_bytes")?,
                })
            })
            .collect()
    }

    /// A stored file by digest: (content type, bytes).
    pub async fn demand_file(&self, sha256: &str) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query("SELECT content_type, body FROM demand_files WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((row.try_get("content_type")?, row.try_get("body")?))
    }

    /// Demands that have the file `sha256` as an attachment.
    pub async fn file_demands(&self, sha256: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT demand_id FROM demand_attachments WHERE sha256 = $1")
            .bind(sha256)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Cooperations with a payment whose invoice file is `sha256`.
    pub async fn file_cooperations(&self, sha256: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT cooperation_id FROM cooperation_payments WHERE invoice_sha256 = $1")
                .bind(sha256)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
