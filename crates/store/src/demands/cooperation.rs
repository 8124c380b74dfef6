//! Cooperations: the agreed amount and milestones, amendments both sides confirm, completion
//! and the yearly confirmed total the policy engine settles M2.4 from.

use super::{audit, invalid};
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Milestone {
    pub title: String,
    pub amount_fen: i64,
    /// `YYYY-MM-DD`, optional.
    #[serde(default)]
    pub due: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Cooperation {
    pub id: String,
    pub demand_id: String,
    pub proposal_id: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub enterprise_owner_user_id: String,
    pub opc_id: String,
    pub opc_name: String,
    pub opc_founder_user_id: String,
    pub title: String,
    pub agreed_fen: i64,
    pub milestones: Vec<Milestone>,
    /// `active`, `completed`.
    pub status: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// Payments confirmed by both sides (what counts, M2.4).
    pub confirmed_fen: i64,
    /// Payments recorded and not void (confirmed, awaiting confirmation or disputed).
    pub recorded_fen: i64,
}

const COOP_SELECT: &str = "SELECT c.id, c.demand_id, c.proposal_id, c.enterprise_id, e.name AS enterprise_name, e.owner_user_id, c.opc_id, \
    o.name AS opc_name, o.founder_user_id, c.title, c.agreed_fen, c.milestones, c.status, c.created_at, c.completed_at, \
    CAST(COALESCE((SELECT SUM(amount_fen) FROM cooperation_payments x WHERE x.cooperation_id = c.id AND x.status = 'confirmed'), 0) AS BIGINT) AS confirmed_fen, \
    CAST(COALESCE((SELECT SUM(amount_fen) FROM cooperation_payments x WHERE x.cooperation_id = c.id AND x.status <> 'void'), 0) AS BIGINT) AS recorded_fen \
    FROM cooperations c JOIN enterprises e ON e.id = c.enterprise_id JOIN opcs o ON o.id = c.opc_id";

fn coop_from(r: &AnyRow) -> Result<Cooperation> {
    let ms: String = r.try_get("milestones")?;
    Ok(Cooperation {
        id: r.try_get("id")?,
        demand_id: r.try_get("demand_id")?,
        proposal_id: r.try_get("proposal_id")?,
        enterprise_id: r.try_get("enterprise_id")?,
        enterprise_name: r.try_get("enterprise_name")?,
        enterprise_owner_user_id: r.try_get("owner_user_id")?,
        opc_id: r.try_get("opc_id")?,
        opc_name: r.try_get("opc_name")?,
        opc_founder_user_id: r.try_get("founder_user_id")?,
        title: r.try_get("title")?,
        agreed_fen: r.try_get("agreed_fen")?,
        milestones: serde_json::from_str(&ms).unwrap_or_default(),
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
        confirmed_fen: r.try_get("confirmed_fen")?,
        recorded_fen: r.try_get("recorded_fen")?,
    })
}

impl Cooperation {
    /// Which side `user_id` is on: `company`, `opc`, or none.
    pub fn side_of(&self, user_id: &str) -> Option<&'static str> {
        if self.enterprise_owner_user_id == user_id {
            Some("company")
        } else if self.opc_founder_user_id == user_id {
            Some("opc")
        } else {
            None
        }
    }
    pub(crate) fn other_party(&self, user_id: &str) -> &str {
        if self.enterprise_owner_user_id == user_id {
            &self.opc_founder_user_id
        } else {
            &self.enterprise_owner_user_id
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Amendment {
    pub id: String,
    pub cooperation_id: String,
    pub agreed_fen: i64,
    pub reason: String,
    /// `proposed`, `accepted`, `rejected`.
    pub status: String,
    pub proposed_by: String,
    pub created_at: i64,
}

fn amendment_from(r: &AnyRow) -> Result<Amendment> {
    Ok(Amendment {
        id: r.try_get("id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        agreed_fen: r.try_get("agreed_fen")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        proposed_by: r.try_get("proposed_by")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    pub async fn cooperation(&self, id: &str) -> Result<Cooperation> {
        let row = sqlx::query(&format!("{COOP_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(coop_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Cooperations of a company (by enterprise id) or an OPC (by OPC id).
    pub async fn cooperations_of(&self, enterprise_id: Option<&str>, opc_id: Option<&str>) -> Result<Vec<Cooperation>> {
        let rows = sqlx::query(&format!(
            "{COOP_SELECT} WHERE ($1 IS NULL OR c.enterprise_id = $1) AND ($2 IS NULL OR c.opc_id = $2) ORDER BY c.created_at DESC"
        ))
        .bind(enterprise_id.map(str::to_string))
        .bind(opc_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(coop_from).collect()
    }

    /// The company proposes a new agreed amount; it takes effect when the OPC accepts. It may
    /// not go below what is already recorded (not void).
    pub async fn propose_amendment(&self, actor: &Actor, cooperation_id: &str, agreed_fen: i64, reason: &str) -> Result<Amendment> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "active" {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        if agreed_fen < coop.recorded_fen {
            return Err(invalid("agreed_fen", "below_recorded_payments"));
        }
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE cooperation_amendments SET status = 'rejected', decided_at = $1 WHERE cooperation_id = $2 AND status = 'proposed'",
        )
        .bind(now_ms())
        .bind(cooperation_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cooperation_amendments (id, cooperation_id, agreed_fen, reason, status, proposed_by, decided_by, created_at, decided_at) \
             VALUES ($1, $2, $3, $4, 'proposed', $5, NULL, $6, NULL)",
        )
        .bind(&id)
        .bind(cooperation_id)
        .bind(agreed_fen)
        .bind(reason)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        notify(
            &mut tx,
            &coop.opc_founder_user_id,
            "amendment_proposed",
            "cooperation",
            cooperation_id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "amendment.propose",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "agreed_fen": agreed_fen }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.amendment(&id).await
    }

    pub async fn amendment(&self, id: &str) -> Result<Amendment> {
        let row = sqlx::query(
            "SELECT id, cooperation_id, agreed_fen, reason, status, proposed_by, created_at FROM cooperation_amendments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(amendment_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn amendments(&self, cooperation_id: &str) -> Result<Vec<Amendment>> {
        let rows = sqlx::query(
            "SELECT id, cooperation_id, agreed_fen, reason, status, proposed_by, created_at FROM cooperation_amendments \
             WHERE cooperation_id = $1 ORDER BY created_at",
        )
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(amendment_from).collect()
    }

    /// The OPC accepts (the agreed amount changes) or rejects a proposed amendment.
    pub async fn decide_amendment(&self, actor: &Actor, amendment_id: &str, accept: bool) -> Result<Amendment> {
        let a = self.amendment(amendment_id).await?;
        let coop = self.cooperation(&a.cooperation_id).await?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE cooperation_amendments SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'proposed'",
        )
        .bind(if accept { "accepted" } else { "rejected" })
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(amendment_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("amendment_decided"));
        }
        if accept {
            let used: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM cooperation_payments WHERE cooperation_id = $1 AND status <> 'void'",
            )
            .bind(&a.cooperation_id)
            .fetch_one(&mut *tx)
            .await?;
            if a.agreed_fen < used {
                return Err(invalid("agreed_fen", "below_recorded_payments"));
            }
            sqlx::query("UPDATE cooperations SET agreed_fen = $1 WHERE id = $2")
                .bind(a.agreed_fen)
                .bind(&a.cooperation_id)
                .execute(&mut *tx)
                .await?;
        }
        notify(
            &mut tx,
            &coop.enterprise_owner_user_id,
            "amendment_decided",
            "cooperation",
            &coop.id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "amendment.decide",
            "cooperation",
            &coop.id,
            serde_json::json!({ "amendment": amendment_id, "accepted": accept, "agreed_fen": a.agreed_fen }),
            format!("{} → {}", coop.agreed_fen, a.agreed_fen),
        )
        .await?;
        tx.commit().await?;
        self.amendment(amendment_id).await
    }

    /// The company marks the cooperation completed (and its demand).
    pub async fn complete_cooperation(&self, actor: &Actor, cooperation_id: &str) -> Result<Cooperation> {
        let coop = self.cooperation(cooperation_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE cooperations SET status = 'completed', completed_at = $1 WHERE id = $2 AND status = 'active'")
            .bind(now)
            .bind(cooperation_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        sqlx::query("UPDATE demands SET status = 'completed', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&coop.demand_id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "cooperation.complete",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "status": "completed" }),
            coop.title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.cooperation(cooperation_id).await
    }

    /// The company's confirmed cooperation payments in a calendar year, in fen, from the
    /// ledger (what the policy engine settles M2.4 from).
    pub async fn confirmed_cooperation_total(&self, enterprise_id: &str, year: i32) -> Result<i64> {
        let totals = self.usage_totals(enterprise_id, false, &format!("{year:04}")).await?;
        Ok(totals
            .iter()
            .filter(|t| t.kind == "cooperation.payment")
            .map(|t| t.charged_fen)
            .sum())
    }
}
