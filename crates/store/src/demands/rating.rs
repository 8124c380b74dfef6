//! Two-way ratings after completion, and the reputation they add up to.

use super::audit;
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{now_ms, Result, Store, StoreError};
use sqlx::Row;

/// A party's rating of a cooperation (named `CooperationRating` in the API document: the Skill
/// Store's `Rating` is another shape).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CooperationRating)]
pub struct Rating {
    pub cooperation_id: String,
    /// Who rated: `company` or `opc`.
    pub rater_side: String,
    pub score: i64,
    pub comment: String,
    pub created_at: i64,
}

/// What a company or OPC reputation shows (ratings received, completed cooperations).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Reputation {
    pub completed: i64,
    pub ratings: i64,
    /// Average score × 100 (integer), 0 without ratings.
    pub average_x100: i64,
}

impl Store {
    /// One rating per side, after completion; score 1..=5.
    pub async fn rate(&self, actor: &Actor, cooperation_id: &str, side: &str, score: i64, comment: &str) -> Result<Rating> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "completed" {
            return Err(StoreError::Conflict("cooperation_not_completed"));
        }
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO cooperation_ratings (cooperation_id, rater_side, score, comment, rated_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cooperation_id)
        .bind(side)
        .bind(score)
        .bind(comment.trim())
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                return Err(StoreError::Conflict("already_rated"));
            }
            return Err(e.into());
        }
        let other = if side == "company" {
            &coop.opc_founder_user_id
        } else {
            &coop.enterprise_owner_user_id
        };
        notify(&mut tx, other, "rating_received", "cooperation", cooperation_id, &coop.title).await?;
        audit(
            &mut tx,
            actor,
            "cooperation.rate",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "side": side, "score": score }),
            format!("{score}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Rating {
            cooperation_id: cooperation_id.to_string(),
            rater_side: side.to_string(),
            score,
            comment: comment.trim().to_string(),
            created_at: now_ms(),
        })
    }

    pub async fn ratings(&self, cooperation_id: &str) -> Result<Vec<Rating>> {
        let rows = sqlx::query(
            "SELECT cooperation_id, rater_side, score, comment, created_at FROM cooperation_ratings WHERE cooperation_id = $1 ORDER BY created_at",
        )
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rating {
                    cooperation_id: r.try_get("cooperation_id")?,
                    rater_side: r.try_get("rater_side")?,
                    score: r.try_get("score")?,
                    comment: r.try_get("comment")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Completed cooperations and ratings received by an OPC (`opc`) or a company (`company`).
    pub async fn reputation(&self, side: &str, party_id: &str) -> Result<Reputation> {
        let (col, rater) = if side == "opc" {
            ("opc_id", "company")
        } else {
            ("enterprise_id", "opc")
        };
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM cooperations WHERE {col} = $1 AND status = 'completed') AS completed, \
             (SELECT COUNT(*) FROM cooperation_ratings r JOIN cooperations c ON c.id = r.cooperation_id WHERE c.{col} = $1 AND r.rater_side = $2) AS n, \
             (SELECT CAST(COALESCE(SUM(r.score), 0) AS BIGINT) FROM cooperation_ratings r JOIN cooperations c ON c.id = r.cooperation_id WHERE c.{col} = $1 AND r.rater_side = $2) AS total"
        ))
        .bind(party_id)
        .bind(rater)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let total: i64 = row.try_get("total")?;
        Ok(Reputation {
            completed: row.try_get("completed")?,
            ratings: n,
            average_x100: if n > 0 { total * 100 / n } else { 0 },
        })
    }
}
