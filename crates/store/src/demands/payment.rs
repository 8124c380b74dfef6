//! Payments: recorded by the company, confirmed by the OPC, posted once to the ledger as a
//! `cooperation.payment` event (M2.4); a reused invoice number is refused and flagged (S3).

use super::attachment::{put_file, sha_of};
use super::{audit, invalid, parse_date, Cooperation, FileIn};
use crate::audit::Actor;
use crate::ledger::{Item, LedgerWriter, Outcome};
use crate::notifications::notify;
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use opchub_ledger::event::NewEvent;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: String,
    pub cooperation_id: String,
    pub amount_fen: i64,
    pub paid_on: String,
    pub invoice_number: String,
    /// SHA-256 of the invoice file, when one was attached.
    pub invoice_sha256: Option<String>,
    /// `pending` (awaiting the OPC), `confirmed`, `disputed`, `void` (a dispute went against it).
    pub status: String,
    pub recorded_by: String,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<i64>,
    /// The ledger leaf of its `cooperation.payment` event, once posted.
    pub ledger_leaf_index: Option<i64>,
    pub created_at: i64,
}

const PAYMENT_COLS: &str = "id, cooperation_id, amount_fen, paid_on, invoice_number, invoice_sha256, status, recorded_by, confirmed_by, \
    confirmed_at, ledger_leaf_index, created_at";

fn payment_from(r: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: r.try_get("id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        amount_fen: r.try_get("amount_fen")?,
        paid_on: r.try_get("paid_on")?,
        invoice_number: r.try_get("invoice_number")?,
        invoice_sha256: r.try_get("invoice_sha256")?,
        status: r.try_get("status")?,
        recorded_by: r.try_get("recorded_by")?,
        confirmed_by: r.try_get("confirmed_by")?,
        confirmed_at: r.try_get("confirmed_at")?,
        ledger_leaf_index: r.try_get("ledger_leaf_index")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewPayment {
    pub amount_fen: i64,
    pub paid_on: String,
    pub invoice_number: String,
}

/// A likely double claim (S3) for the committee to look at.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Flag {
    pub id: String,
    /// `duplicate_invoice`.
    pub kind: String,
    /// The policy clause (`S3`).
    pub clause: String,
    pub cooperation_id: String,
    /// The payment that already carries the invoice number.
    pub other_payment_id: Option<String>,
    pub invoice_number: String,
    pub attempted_by: String,
    pub created_at: i64,
}

impl Store {
    pub async fn payments(&self, cooperation_id: &str) -> Result<Vec<Payment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM cooperation_payments WHERE cooperation_id = $1 ORDER BY created_at, id"
        ))
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from).collect()
    }

    pub async fn payment(&self, id: &str) -> Result<Payment> {
        let row = sqlx::query(&format!("SELECT {PAYMENT_COLS} FROM cooperation_payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn flag_duplicate_invoice(&self, actor: &Actor, coop: &Cooperation, invoice: &str, other: Option<String>) -> Result<()> {
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO demand_flags (id, kind, clause, cooperation_id, other_payment_id, invoice_number, attempted_by, created_at) \
             VALUES ($1, 'duplicate_invoice', 'S3', $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&coop.id)
        .bind(other)
        .bind(invoice)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "flag.duplicate_invoice",
            "cooperation",
            &coop.id,
            serde_json::json!({ "invoice": invoice }),
            invoice.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The company records a payment. Refused when it would take the payments (not void)
    /// above the agreed amount, or when the invoice number was already used anywhere (then
    /// also flagged as a likely double claim, S3).
    pub async fn record_payment(
        &self,
        actor: &Actor,
        cooperation_id: &str,
        p: &NewPayment,
        invoice: Option<FileIn<'_>>,
    ) -> Result<Payment> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "active" {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        let sha = invoice.as_ref().map(|f| sha_of(f.bytes));
        let existing: Option<String> = sqlx::query_scalar("SELECT id FROM cooperation_payments WHERE invoice_number = $1")
            .bind(&p.invoice_number)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(other) = existing {
            self.flag_duplicate_invoice(actor, &coop, &p.invoice_number, Some(other)).await?;
            return Err(StoreError::Conflict("duplicate_invoice"));
        }
        let id = new_id();
        let mut tx = self.begin().await?;
        // Read the agreed amount and the sum inside the write transaction (SQLite holds the
        // write lock; PostgreSQL locks the cooperation row), so two concurrent payments cannot
        // together pass the agreed amount.
        let agreed: i64 = sqlx::query_scalar(&format!(
            "SELECT agreed_fen FROM cooperations WHERE id = $1{}",
            crate::dialect::for_update(self.backend)
        ))
        .bind(cooperation_id)
        .fetch_one(&mut *tx)
        .await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM cooperation_payments WHERE cooperation_id = $1 AND status <> 'void'",
        )
        .bind(cooperation_id)
        .fetch_one(&mut *tx)
        .await?;
        if used.saturating_add(p.amount_fen) > agreed {
            return Err(invalid("amount_fen", "above_agreed_amount"));
        }
        if let (Some(sha), Some(f)) = (&sha, &invoice) {
            put_file(&mut tx, sha, f).await?;
        }
        let res = sqlx::query(&format!(
            "INSERT INTO cooperation_payments ({PAYMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, NULL, NULL, NULL, $8)"
        ))
        .bind(&id)
        .bind(cooperation_id)
        .bind(p.amount_fen)
        .bind(&p.paid_on)
        .bind(&p.invoice_number)
        .bind(sha.clone())
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "invoice_number") {
                drop(tx);
                self.flag_duplicate_invoice(actor, &coop, &p.invoice_number, None).await?;
                return Err(StoreError::Conflict("duplicate_invoice"));
            }
            return Err(e.into());
        }
        notify(
            &mut tx,
            &coop.opc_founder_user_id,
            "payment_to_confirm",
            "cooperation",
            cooperation_id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "payment.record",
            "payment",
            &id,
            serde_json::json!({ "cooperation": cooperation_id, "amount_fen": p.amount_fen, "invoice": p.invoice_number, "invoice_sha256": sha }),
            format!("{} fen", p.amount_fen),
        )
        .await?;
        tx.commit().await?;
        self.payment(&id).await
    }

    /// pending → confirmed (the OPC's confirmation; only one of concurrent confirms wins).
    pub async fn confirm_payment(&self, actor: &Actor, payment_id: &str) -> Result<Payment> {
        self.settle_payment(actor, payment_id, "pending", "confirmed", "payment.confirm")
            .await
    }

    async fn settle_payment(&self, actor: &Actor, payment_id: &str, from: &str, to: &str, action: &str) -> Result<Payment> {
        let p = self.payment(payment_id).await?;
        let coop = self.cooperation(&p.cooperation_id).await?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE cooperation_payments SET status = $1, confirmed_by = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_by END, \
             confirmed_at = CASE WHEN $1 = 'confirmed' THEN $3 ELSE confirmed_at END WHERE id = $4 AND status = $5",
        )
        .bind(to)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(payment_id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        if to == "confirmed" {
            notify(
                &mut tx,
                &coop.enterprise_owner_user_id,
                "payment_confirmed",
                "cooperation",
                &coop.id,
                &coop.title,
            )
            .await?;
        }
        audit(
            &mut tx,
            actor,
            action,
            "payment",
            payment_id,
            serde_json::json!({ "status": to }),
            format!("{from} → {to}"),
        )
        .await?;
        tx.commit().await?;
        self.payment(payment_id).await
    }

    /// The `cooperation.payment` ledger event of a confirmed payment (M2.4): subject the
    /// paying company, counterparty the OPC, quantity = charged = the amount in fen, the
    /// payment id as source event id (so it is stored exactly once), the cooperation and the
    /// invoice digest as attributes.
    pub async fn payment_event(&self, payment_id: &str) -> Result<NewEvent> {
        let p = self.payment(payment_id).await?;
        if p.status != "confirmed" {
            return Err(StoreError::Conflict("payment_not_confirmed"));
        }
        let coop = self.cooperation(&p.cooperation_id).await?;
        let occurred_at_ms = parse_date(&p.paid_on)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() - i64::from(opchub_domain::time::BEIJING_OFFSET_S) * 1000)
            .unwrap_or(p.created_at)
            .min(now_ms());
        Ok(opchub_ledger::metering::cooperation_payment(
            &opchub_ledger::metering::CooperationPayment {
                payment_id: &p.id,
                cooperation_id: &coop.id,
                demand_id: &coop.demand_id,
                enterprise_id: &coop.enterprise_id,
                opc_id: &coop.opc_id,
                amount_fen: p.amount_fen,
                invoice_number: &p.invoice_number,
                invoice_sha256: p.invoice_sha256.as_deref(),
                occurred_at_ms,
                confirmed_by: p.confirmed_by.as_deref(),
            },
        ))
    }

    /// Records the ledger leaf of a posted payment.
    pub async fn set_payment_leaf(&self, payment_id: &str, outcome: Option<Outcome>) -> Result<i64> {
        let leaf = match outcome {
            Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => r.leaf_index,
            Some(Outcome::Rejected(e)) => return Err(StoreError::Catalog(format!("ledger refused payment {payment_id}: {}", e.code))),
            None => return Err(StoreError::Catalog("ledger returned no outcome".into())),
        };
        sqlx::query("UPDATE cooperation_payments SET ledger_leaf_index = $1 WHERE id = $2 AND ledger_leaf_index IS NULL")
            .bind(leaf)
            .bind(payment_id)
            .execute(&self.pool)
            .await?;
        Ok(leaf)
    }

    /// Appends the event of a confirmed payment through the writer (idempotent) and records
    /// its leaf. Returns the leaf index.
    pub async fn post_payment(&self, writer: &LedgerWriter, payment_id: &str) -> Result<i64> {
        if let Some(leaf) = self.payment(payment_id).await?.ledger_leaf_index {
            return Ok(leaf);
        }
        let event = self.payment_event(payment_id).await?;
        let out = writer.append(vec![Item::Event(event)]).await?;
        self.set_payment_leaf(payment_id, out.into_iter().next()).await
    }

    /// Confirmed payments whose event is not yet in the ledger (a crash between the
    /// confirmation and the append); `post_payment` them to repair.
    pub async fn unposted_payments(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cooperation_payments WHERE status = 'confirmed' AND ledger_leaf_index IS NULL ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn flags(&self) -> Result<Vec<Flag>> {
        let rows = sqlx::query(
            "SELECT id, kind, clause, cooperation_id, other_payment_id, invoice_number, attempted_by, created_at FROM demand_flags ORDER BY created_at DESC LIMIT 500",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Flag {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    clause: r.try_get("clause")?,
                    cooperation_id: r.try_get("cooperation_id")?,
                    other_payment_id: r.try_get("other_payment_id")?,
                    invoice_number: r.try_get("invoice_number")?,
                    attempted_by: r.try_get("attempted_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
