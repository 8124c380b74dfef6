//! In-app notifications (the demand board's and the applications'): written in the
//! transaction of the change they report, listed and marked read by their user.

use crate::{new_id, now_ms, Result, Store, Tx};
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    /// `proposal_received`, `question`, `proposal_accepted`, `proposal_declined`,
    /// `payment_to_confirm`, `payment_confirmed`, `payment_disputed`, `dispute_resolved`,
    /// `amendment_proposed`, `amendment_decided`, `rating_received`, `demand_cancelled`;
    /// committee reviewers: `dispute_opened`.
    pub kind: String,
    /// `demand`, `proposal`, `cooperation` or `dispute` (on the committee's review page):
    /// where the link goes.
    pub object_kind: String,
    pub object_id: String,
    pub title: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

pub(crate) async fn notify(tx: &mut Tx, user_id: &str, kind: &str, object_kind: &str, object_id: &str, title: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, object_kind, object_id, title, created_at, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(kind)
    .bind(object_kind)
    .bind(object_id)
    .bind(title)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn notifications(&self, user_id: &str, limit: i64) -> Result<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, kind, object_kind, object_id, title, created_at, read_at FROM notifications WHERE user_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    object_kind: r.try_get("object_kind")?,
                    object_id: r.try_get("object_id")?,
                    title: r.try_get("title")?,
                    created_at: r.try_get("created_at")?,
                    read_at: r.try_get("read_at")?,
                })
            })
            .collect()
    }

    pub async fn unread_notifications(&self, user_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Marks one notification (or, with `None`, all) of `user_id` read. Returns how many changed.
    pub async fn mark_notifications_read(&self, user_id: &str, id: Option<&str>) -> Result<u64> {
        let res = sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL AND ($3 IS NULL OR id = $3)")
            .bind(now_ms())
            .bind(user_id)
            .bind(id.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }
}
