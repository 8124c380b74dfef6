//! Datasets community operators publish (M2.2, issue 4 item 6): their metadata and the file
//! they point to (stored by SHA-256 by the caller), every download through the platform, and —
//! for datasets priced per dataset — how many bytes of a dataset version each OPC has already
//! been billed for (advanced with a compare-and-set, so concurrent downloads on several
//! replicas never bill one byte twice). No HTTP and no file access here.

use crate::audit::{record_after, record_before_after, Actor};
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Dataset {
    pub id: String,
    pub operator_user_id: String,
    /// The data price item (unit `gb` or `dataset`) the downloads are priced by.
    pub item: String,
    pub name_zh: String,
    pub name_en: String,
    pub description: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// SHA-256 of the file (hex); empty while the dataset has no file.
    pub sha256: String,
    /// 0 while there is no file; each new file is the next version.
    pub version: i64,
    /// `draft` (no file yet), `published`, `withdrawn`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str =
    "id, operator_user_id, item, name_zh, name_en, description, file_name, content_type, size_bytes, sha256, version, status, created_at, updated_at";

fn dataset_from(r: &AnyRow) -> Result<Dataset> {
    Ok(Dataset {
        id: r.try_get("id")?,
        operator_user_id: r.try_get("operator_user_id")?,
        item: r.try_get("item")?,
        name_zh: r.try_get("name_zh")?,
        name_en: r.try_get("name_en")?,
        description: r.try_get("description")?,
        file_name: r.try_get("file_name")?,
        content_type: r.try_get("content_type")?,
        size_bytes: r.try_get("size_bytes")?,
        sha256: r.try_get("sha256")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub struct NewDataset<'a> {
    pub operator_user_id: &'a str,
    pub item: &'a str,
    pub name_zh: &'a str,
    pub name_en: &'a str,
    pub description: &'a str,
}

/// One download through the platform, recorded when its response ended.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Download {
    pub id: String,
    pub dataset_id: String,
    pub dataset_version: i64,
    pub sha256: String,
    pub api_key_id: String,
    pub subject: String,
    /// First byte of the range served (0 for a full download).
    pub range_start: i64,
    /// Bytes the response was to carry.
    pub range_len: i64,
    /// Bytes handed to the connection before the response ended or the client went away.
    pub bytes_sent: i64,
    /// `complete` or `interrupted`.
    pub outcome: String,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub price_version: String,
    pub created_at: i64,
}

impl Store {
    pub async fn create_dataset(&self, actor: &Actor, d: NewDataset<'_>) -> Result<Dataset> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO datasets ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, '', '', 0, '', 0, 'draft', $7, $7)"
        ))
        .bind(&id)
        .bind(d.operator_user_id)
        .bind(d.item)
        .bind(d.name_zh)
        .bind(d.name_en)
        .bind(d.description)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({ "id": id, "item": d.item, "name_zh": d.name_zh, "name_en": d.name_en });
        record_after(&mut tx, actor, "dataset.create", "dataset", &id, after, d.name_zh.to_string()).await?;
        tx.commit().await?;
        self.dataset(&id).await
    }

    /// Points the dataset at a new file (already stored by its SHA-256): the next version,
    /// published.
    pub async fn set_dataset_file(
        &self,
        actor: &Actor,
        id: &str,
        file_name: &str,
        content_type: &str,
        size_bytes: i64,
        sha256: &str,
    ) -> Result<Dataset> {
        let before = self.dataset(id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE datasets SET file_name = $1, content_type = $2, size_bytes = $3, sha256 = $4, version = version + 1, \
             status = 'published', updated_at = $5 WHERE id = $6",
        )
        .bind(file_name)
        .bind(content_type)
        .bind(size_bytes)
        .bind(sha256)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        record_before_after(
            &mut tx,
            actor,
            "dataset.file",
            "dataset",
            id,
            serde_json::json!({ "sha256": before.sha256, "version": before.version }),
            serde_json::json!({ "sha256": sha256, "size_bytes": size_bytes, "version": before.version + 1 }),
            format!("{file_name} ({size_bytes} B)"),
        )
        .await?;
        tx.commit().await?;
        self.dataset(id).await
    }

    /// Publishes (needs a file) or withdraws a dataset.
    pub async fn set_dataset_status(&self, actor: &Actor, id: &str, status: &str) -> Result<Dataset> {
        let before = self.dataset(id).await?;
        if !matches!(status, "published" | "withdrawn") {
            return Err(StoreError::Invalid {
                field: "status",
                code: "unknown_status",
            });
        }
        if status == "published" && before.version == 0 {
            return Err(StoreError::Conflict("dataset_has_no_file"));
        }
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE datasets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "dataset.set_status",
            "dataset",
            id,
            serde_json::json!({ "status": before.status }),
            serde_json::json!({ "status": status }),
            format!("{} → {status}", before.status),
        )
        .await?;
        tx.commit().await?;
        self.dataset(id).await
    }

    pub async fn dataset(&self, id: &str) -> Result<Dataset> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM datasets WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dataset_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Datasets of one operator (all states), or every published dataset (`None`).
    pub async fn datasets(&self, operator_user_id: Option<&str>) -> Result<Vec<Dataset>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM datasets WHERE ($1 IS NULL AND status = 'published') OR operator_user_id = $1 ORDER BY created_at DESC"
        ))
        .bind(operator_user_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dataset_from).collect()
    }

    /// Bytes of a dataset version already billed to `subject` (per-dataset items).
    pub async fn dataset_billed(&self, dataset_id: &str, sha256: &str, subject: &str) -> Result<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT billed_bytes FROM dataset_billing WHERE dataset_id = $1 AND sha256 = $2 AND subject = $3")
                .bind(dataset_id)
                .bind(sha256)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Moves the billed bytes of a dataset version for `subject` from `from` to `to` — only if
    /// they are still `from` (compare-and-set). False when another download moved them first;
    /// the caller reads again and recomputes.
    pub async fn advance_dataset_billed(&self, dataset_id: &str, sha256: &str, subject: &str, from: i64, to: i64) -> Result<bool> {
        if from == 0 {
            let res = sqlx::query("INSERT INTO dataset_billing (dataset_id, sha256, subject, billed_bytes) VALUES ($1, $2, $3, $4)")
                .bind(dataset_id)
                .bind(sha256)
                .bind(subject)
                .bind(to)
                .execute(&self.pool)
                .await;
            match res {
                Ok(_) => return Ok(true),
                Err(e) if crate::is_unique_violation(&e, "") => {}
                Err(e) => return Err(e.into()),
            }
        }
        let n = sqlx::query(
            "UPDATE dataset_billing SET billed_bytes = $1 WHERE dataset_id = $2 AND sha256 = $3 AND subject = $4 AND billed_bytes = $5",
        )
        .bind(to)
        .bind(dataset_id)
        .bind(sha256)
        .bind(subject)
        .bind(from)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn record_download(&self, d: &Download) -> Result<()> {
        sqlx::query(
            "INSERT INTO dataset_downloads (id, dataset_id, dataset_version, sha256, api_key_id, subject, range_start, range_len, bytes_sent, outcome, list_fen, charged_fen, price_version, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&d.id)
        .bind(&d.dataset_id)
        .bind(d.dataset_version)
        .bind(&d.sha256)
        .bind(&d.api_key_id)
        .bind(&d.subject)
        .bind(d.range_start)
        .bind(d.range_len)
        .bind(d.bytes_sent)
        .bind(&d.outcome)
        .bind(d.list_fen)
        .bind(d.charged_fen)
        .bind(&d.price_version)
        .bind(d.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Downloads of a dataset, newest first; `subject` narrows to one OPC.
    pub async fn downloads(&self, dataset_id: &str, subject: Option<&str>, limit: i64) -> Result<Vec<Download>> {
        let rows = sqlx::query(
            "SELECT id, dataset_id, dataset_version, sha256, api_key_id, subject, range_start, range_len, bytes_sent, outcome, list_fen, charged_fen, price_version, created_at \
             FROM dataset_downloads WHERE dataset_id = $1 AND ($2 IS NULL OR subject = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(dataset_id)
        .bind(subject.map(str::to_string))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Download {
                    id: r.try_get("id")?,
                    dataset_id: r.try_get("dataset_id")?,
                    dataset_version: r.try_get("dataset_version")?,
                    sha256: r.try_get("sha256")?,
                    api_key_id: r.try_get("api_key_id")?,
                    subject: r.try_get("subject")?,
                    range_start: r.try_get("range_start")?,
                    range_len: r.try_get("range_len")?,
                    bytes_sent: r.try_get("bytes_sent")?,
                    outcome: r.try_get("outcome")?,
                    list_fen: r.try_get("list_fen")?,
                    charged_fen: r.try_get("charged_fen")?,
                    price_version: r.try_get("price_version")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
