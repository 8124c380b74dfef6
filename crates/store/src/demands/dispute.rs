//! Disputes over pending payments, resolved by a committee reviewer.

use super::{audit, invalid};
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Dispute {
    pub id: String,
    pub payment_id: String,
    pub cooperation_id: String,
    pub cooperation_title: String,
    pub amount_fen: i64,
    pub invoice_number: String,
    pub raised_by: String,
    pub reason: String,
    /// `open`, `resolved`.
    pub status: String,
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub resolution_note: Option<String>,
    pub created_at: i64,
}

const DISPUTE_SELECT: &str = "SELECT d.id, d.payment_id, p.cooperation_id, c.title AS cooperation_title, p.amount_fen, p.invoice_number, \
    d.raised_by, d.reason, d.status, d.resolution, d.resolution_note, d.created_at FROM cooperation_disputes d \
    JOIN cooperation_payments p ON p.id = d.payment_id JOIN cooperations c ON c.id = p.cooperation_id";

fn dispute_from(r: &AnyRow) -> Result<Dispute> {
    Ok(Dispute {
        id: r.try_get("id")?,
        payment_id: r.try_get("payment_id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        cooperation_title: r.try_get("cooperation_title")?,
        amount_fen: r.try_get("amount_fen")?,
        invoice_number: r.try_get("invoice_number")?,
        raised_by: r.try_get("raised_by")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        resolution: r.try_get("resolution")?,
        resolution_note: r.try_get("resolution_note")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Either side disputes a pending payment; it does not count until a committee reviewer
    /// resolves the dispute.
    pub async fn dispute_payment(&self, actor: &Actor, payment_id: &str, reason: &str) -> Result<Dispute> {
        let p = self.payment(payment_id).await?;
        let coop = self.cooperation(&p.cooperation_id).await?;
        let uid = actor.user_id.clone().unwrap_or_default();
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE cooperation_payments SET status = 'disputed' WHERE id = $1 AND status = 'pending'")
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        sqlx::query(
            "INSERT INTO cooperation_disputes (id, payment_id, raised_by, reason, status, resolution, resolution_note, resolved_by, created_at, resolved_at) \
             VALUES ($1, $2, $3, $4, 'open', NULL, NULL, NULL, $5, NULL)",
        )
        .bind(&id)
        .bind(payment_id)
        .bind(&uid)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        notify(
            &mut tx,
            coop.other_party(&uid),
            "payment_disputed",
            "cooperation",
            &coop.id,
            &coop.title,
        )
        .await?;
        // Every committee reviewer who can sign in is told there is a dispute to decide.
        let reviewers: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE role = $1 AND disabled = 0 ORDER BY id")
            .bind(opchub_domain::Role::Committee.as_str())
            .fetch_all(&mut *tx)
            .await?;
        for reviewer in &reviewers {
            notify(&mut tx, reviewer, "dispute_opened", "dispute", &id, &coop.title).await?;
        }
        audit(
            &mut tx,
            actor,
            "payment.dispute",
            "payment",
            payment_id,
            serde_json::json!({ "dispute": id, "reason": reason }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.dispute(&id).await
    }

    pub async fn dispute(&self, id: &str) -> Result<Dispute> {
        let row = sqlx::query(&format!("{DISPUTE_SELECT} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dispute_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn disputes(&self, open_only: bool) -> Result<Vec<Dispute>> {
        let rows = sqlx::query(&format!(
            "{DISPUTE_SELECT} WHERE ($1 = 0 OR d.status = 'open') ORDER BY d.created_at DESC LIMIT 500"
        ))
        .bind(open_only as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dispute_from).collect()
    }

    /// A committee reviewer resolves a dispute: `upheld` (the payment stands: confirmed, and
    /// then posted) or `rejected` (void: it never counts and frees its share of the amount).
    pub async fn resolve_dispute(&self, actor: &Actor, dispute_id: &str, resolution: &str, note: &str) -> Result<Dispute> {
        let to = match resolution {
            "upheld" => "confirmed",
            "rejected" => "void",
            _ => return Err(invalid("resolution", "unknown_resolution")),
        };
        let d = self.dispute(dispute_id).await?;
        let coop = self.cooperation(&d.cooperation_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "UPDATE cooperation_disputes SET status = 'resolved', resolution = $1, resolution_note = $2, resolved_by = $3, resolved_at = $4 \
             WHERE id = $5 AND status = 'open'",
        )
        .bind(resolution)
        .bind(note)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(dispute_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("dispute_resolved"));
        }
        sqlx::query(
            "UPDATE cooperation_payments SET status = $1, confirmed_by = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_by END, \
             confirmed_at = CASE WHEN $1 = 'confirmed' THEN $3 ELSE confirmed_at END WHERE id = $4 AND status = 'disputed'",
        )
        .bind(to)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(&d.payment_id)
        .execute(&mut *tx)
        .await?;
        for uid in [&coop.enterprise_owner_user_id, &coop.opc_founder_user_id] {
            notify(&mut tx, uid, "dispute_resolved", "cooperation", &coop.id, &coop.title).await?;
        }
        audit(
            &mut tx,
            actor,
            "dispute.resolve",
            "dispute",
            dispute_id,
            serde_json::json!({ "resolution": resolution, "note": note }),
            resolution.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.dispute(dispute_id).await
    }
}
