//! The audit log: every state change records who did what to which object, when, and a
//! SHA-256 digest of the object before and after. Entries are written in the same
//! transaction as the change they describe, so a change without its entry cannot commit.

use crate::{new_id, now_ms, Result, Store, Tx};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Who acts: a signed-in user, or the platform itself (migrations, demo loader, CLI).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            role: Some("system".into()),
        }
    }
    pub fn user(user_id: &str, role: &str) -> Actor {
        Actor {
            user_id: Some(user_id.to_string()),
            role: Some(role.to_string()),
        }
    }
}

/// One state change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub object_kind: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
    pub summary: String,
}

pub fn digest(v: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

pub async fn record(tx: &mut Tx, actor: &Actor, change: Change<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor_user_id, actor_role, action, object_kind, object_id, before_digest, after_digest, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id())
    .bind(now_ms())
    .bind(actor.user_id.clone())
    .bind(actor.role.clone())
    .bind(change.action)
    .bind(change.object_kind)
    .bind(change.object_id)
    .bind(change.before.map(digest))
    .bind(change.after.map(digest))
    .bind(change.summary)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a change that has only an "after" state (a creation, or a change whose before is
/// not digested): [`record`] with `before: None`.
pub(crate) async fn record_after(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    object_kind: &str,
    object_id: &str,
    after: serde_json::Value,
    summary: String,
) -> Result<()> {
    record(
        tx,
        actor,
        Change {
            action,
            object_kind,
            object_id,
            before: None,
            after: Some(&after),
            summary,
        },
    )
    .await
}

/// Records a change from `before` to `after`: [`record`] with both digests.
pub(crate) async fn record_before_after(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    object_kind: &str,
    object_id: &str,
    before: serde_json::Value,
    after: serde_json::Value,
    summary: String,
) -> Result<()> {
    record(
        tx,
        actor,
        Change {
            action,
            object_kind,
            object_id,
            before: Some(&before),
            after: Some(&after),
            summary,
        },
    )
    .await
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub summary: String,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditFilter {
    pub actor_user_id: Option<String>,
    pub action: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<i64>,
}

impl Store {
    /// Newest first; every filter is optional. At most 500 rows.
    pub async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor_user_id, actor_role, action, object_kind, object_id, before_digest, after_digest, summary \
             FROM audit_log \
             WHERE ($1 IS NULL OR actor_user_id = $1) AND ($2 IS NULL OR action = $2) \
               AND ($3 IS NULL OR object_kind = $3) AND ($4 IS NULL OR object_id = $4) \
               AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY at DESC, id DESC LIMIT $7",
        )
        .bind(f.actor_user_id.clone())
        .bind(f.action.clone())
        .bind(f.object_kind.clone())
        .bind(f.object_id.clone())
        .bind(f.since_ms)
        .bind(f.until_ms)
        .bind(f.limit.unwrap_or(200).clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_user_id: r.try_get("actor_user_id")?,
                    actor_role: r.try_get("actor_role")?,
                    action: r.try_get("action")?,
                    object_kind: r.try_get("object_kind")?,
                    object_id: r.try_get("object_id")?,
                    before_digest: r.try_get("before_digest")?,
                    after_digest: r.try_get("after_digest")?,
                    summary: r.try_get("summary")?,
                })
            })
            .collect()
    }
}
