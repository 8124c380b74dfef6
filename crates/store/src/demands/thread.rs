//! The question thread of a proposal (the company and the proposing OPC).

use super::audit;
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    pub author_user_id: String,
    pub author_name: String,
    pub body: String,
    pub created_at: i64,
}

impl Store {
    pub async fn add_message(
        &self,
        actor: &Actor,
        proposal_id: &str,
        author_user_id: &str,
        notify_user_id: &str,
        body: &str,
    ) -> Result<Message> {
        let p = self.proposal(proposal_id).await?;
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO demand_messages (id, proposal_id, author_user_id, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(proposal_id)
            .bind(author_user_id)
            .bind(body)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, notify_user_id, "question", "demand", &p.demand_id, &p.demand_title).await?;
        audit(
            &mut tx,
            actor,
            "proposal.message",
            "proposal",
            proposal_id,
            serde_json::json!({ "message": id }),
            p.demand_title.clone(),
        )
        .await?;
        tx.commit().await?;
        let msgs = self.messages(proposal_id).await?;
        msgs.into_iter().find(|m| m.id == id).ok_or(StoreError::NotFound)
    }

    pub async fn messages(&self, proposal_id: &str) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT m.id, m.author_user_id, u.display_name, m.body, m.created_at FROM demand_messages m JOIN users u ON u.id = m.author_user_id \
             WHERE m.proposal_id = $1 ORDER BY m.created_at, m.id",
        )
        .bind(proposal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Message {
                    id: r.try_get("id")?,
                    author_user_id: r.try_get("author_user_id")?,
                    author_name: r.try_get("display_name")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
