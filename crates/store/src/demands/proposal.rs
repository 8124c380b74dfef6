//! Proposals of OPCs on demands: submission, shortlisting and declining, and acceptance (which
//! creates the cooperation).

use super::{audit, invalid, Cooperation, Milestone};
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Proposal {
    pub id: String,
    pub demand_id: String,
    pub demand_title: String,
    pub opc_id: String,
    pub opc_name: String,
    pub price_fen: i64,
    pub timeline_days: i64,
    pub message: String,
    /// `submitted`, `shortlisted`, `accepted`, `declined`.
    pub status: String,
    pub created_at: i64,
}

const PROPOSAL_SELECT: &str =
    "SELECT p.id, p.demand_id, d.title AS demand_title, p.opc_id, o.name AS opc_name, p.price_fen, p.timeline_days, \
    p.message, p.status, p.created_at FROM demand_proposals p JOIN demands d ON d.id = p.demand_id JOIN opcs o ON o.id = p.opc_id";

fn proposal_from(r: &AnyRow) -> Result<Proposal> {
    Ok(Proposal {
        id: r.try_get("id")?,
        demand_id: r.try_get("demand_id")?,
        demand_title: r.try_get("demand_title")?,
        opc_id: r.try_get("opc_id")?,
        opc_name: r.try_get("opc_name")?,
        price_fen: r.try_get("price_fen")?,
        timeline_days: r.try_get("timeline_days")?,
        message: r.try_get("message")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_proposal(
        &self,
        actor: &Actor,
        demand_id: &str,
        opc_id: &str,
        price_fen: i64,
        timeline_days: i64,
        message: &str,
    ) -> Result<Proposal> {
        self.expire_demands().await?;
        let d = self.demand(demand_id).await?;
        if d.status != "open" {
            return Err(StoreError::Conflict("demand_not_open"));
        }
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO demand_proposals (id, demand_id, opc_id, price_fen, timeline_days, message, status, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $8)",
        )
        .bind(&id)
        .bind(demand_id)
        .bind(opc_id)
        .bind(price_fen)
        .bind(timeline_days)
        .bind(message)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "demand_proposals") || is_unique_violation(&e, "opc_id") {
                return Err(StoreError::Conflict("already_proposed"));
            }
            return Err(e.into());
        }
        let owner: String = sqlx::query_scalar("SELECT owner_user_id FROM enterprises WHERE id = $1")
            .bind(&d.enterprise_id)
            .fetch_one(&mut *tx)
            .await?;
        notify(&mut tx, &owner, "proposal_received", "demand", demand_id, &d.title).await?;
        audit(
            &mut tx,
            actor,
            "proposal.create",
            "proposal",
            &id,
            serde_json::json!({ "demand": demand_id, "opc": opc_id, "price_fen": price_fen }),
            d.title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.proposal(&id).await
    }

    pub async fn proposal(&self, id: &str) -> Result<Proposal> {
        let row = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(proposal_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn proposals_of_demand(&self, demand_id: &str) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.demand_id = $1 ORDER BY p.created_at"))
            .bind(demand_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(proposal_from).collect()
    }

    pub async fn proposals_of_opc(&self, opc_id: &str) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.opc_id = $1 ORDER BY p.created_at DESC"))
            .bind(opc_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(proposal_from).collect()
    }

    /// submitted → shortlisted, or submitted/shortlisted → declined (the OPC is told).
    pub async fn set_proposal_status(&self, actor: &Actor, id: &str, to: &str) -> Result<Proposal> {
        let from: &[&str] = match to {
            "shortlisted" => &["submitted"],
            "declined" => &["submitted", "shortlisted"],
            _ => return Err(invalid("status", "unknown_status")),
        };
        let p = self.proposal(id).await?;
        if !from.contains(&p.status.as_str()) {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE demand_proposals SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to)
            .bind(now_ms())
            .bind(id)
            .bind(&p.status)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        if to == "declined" {
            let uid: String = sqlx::query_scalar("SELECT founder_user_id FROM opcs WHERE id = $1")
                .bind(&p.opc_id)
                .fetch_one(&mut *tx)
                .await?;
            notify(&mut tx, &uid, "proposal_declined", "demand", &p.demand_id, &p.demand_title).await?;
        }
        audit(
            &mut tx,
            actor,
            "proposal.set_status",
            "proposal",
            id,
            serde_json::json!({ "status": to }),
            format!("{} → {to}", p.status),
        )
        .await?;
        tx.commit().await?;
        self.proposal(id).await
    }

    /// Accepts one proposal: the demand goes open → in_progress (exactly one accept wins, by a
    /// conditional update), a cooperation is created with the agreed amount and milestones,
    /// the accepted OPC and every other proposer are told.
    pub async fn accept_proposal(
        &self,
        actor: &Actor,
        proposal_id: &str,
        agreed_fen: Option<i64>,
        milestones: &[Milestone],
    ) -> Result<Cooperation> {
        let p = self.proposal(proposal_id).await?;
        // The amount and milestones were checked by the caller (opchub_app::demands).
        let agreed = agreed_fen.unwrap_or(p.price_fen);
        if !matches!(p.status.as_str(), "submitted" | "shortlisted") {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let now = now_ms();
        let mut tx = self.begin().await?;
        let won = sqlx::query("UPDATE demands SET status = 'in_progress', updated_at = $1 WHERE id = $2 AND status = 'open'")
            .bind(now)
            .bind(&p.demand_id)
            .execute(&mut *tx)
            .await?;
        if won.rows_affected() != 1 {
            return Err(StoreError::Conflict("demand_not_open"));
        }
        let ok = sqlx::query(
            "UPDATE demand_proposals SET status = 'accepted', updated_at = $1 WHERE id = $2 AND status IN ('submitted', 'shortlisted')",
        )
        .bind(now)
        .bind(proposal_id)
        .execute(&mut *tx)
        .await?;
        if ok.rows_affected() != 1 {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let others = sqlx::query(
            "SELECT o.founder_user_id FROM demand_proposals p JOIN opcs o ON o.id = p.opc_id WHERE p.demand_id = $1 AND p.id <> $2 AND p.status IN ('submitted', 'shortlisted')",
        )
        .bind(&p.demand_id)
        .bind(proposal_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE demand_proposals SET status = 'declined', updated_at = $1 WHERE demand_id = $2 AND id <> $3 AND status IN ('submitted', 'shortlisted')")
            .bind(now)
            .bind(&p.demand_id)
            .bind(proposal_id)
            .execute(&mut *tx)
            .await?;
        let enterprise_id: String = sqlx::query_scalar("SELECT enterprise_id FROM demands WHERE id = $1")
            .bind(&p.demand_id)
            .fetch_one(&mut *tx)
            .await?;
        let id = new_id();
        let res = sqlx::query(
            "INSERT INTO cooperations (id, demand_id, proposal_id, enterprise_id, opc_id, title, agreed_fen, milestones, status, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, NULL)",
        )
        .bind(&id)
        .bind(&p.demand_id)
        .bind(proposal_id)
        .bind(&enterprise_id)
        .bind(&p.opc_id)
        .bind(&p.demand_title)
        .bind(agreed)
        .bind(serde_json::to_string(milestones).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "demand_id") || is_unique_violation(&e, "cooperations") {
                return Err(StoreError::Conflict("demand_not_open"));
            }
            return Err(e.into());
        }
        let winner: String = sqlx::query_scalar("SELECT founder_user_id FROM opcs WHERE id = $1")
            .bind(&p.opc_id)
            .fetch_one(&mut *tx)
            .await?;
        notify(&mut tx, &winner, "proposal_accepted", "cooperation", &id, &p.demand_title).await?;
        for r in others {
            let uid: String = r.try_get("founder_user_id")?;
            notify(&mut tx, &uid, "proposal_declined", "demand", &p.demand_id, &p.demand_title).await?;
        }
        audit(
            &mut tx,
            actor,
            "cooperation.create",
            "cooperation",
            &id,
            serde_json::json!({ "demand": p.demand_id, "proposal": proposal_id, "opc": p.opc_id, "agreed_fen": agreed }),
            p.demand_title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.cooperation(&id).await
    }
}
