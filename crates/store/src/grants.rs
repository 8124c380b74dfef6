//! What each settlement key was granted and paid (issue 17): the committee's second signature,
//! finance's payment with a bank reference per line, and recovery orders for lowered keys
//! (F2, S5). The arithmetic is `opchub_domain::grant`'s; this module reads each key inside the
//! transaction that changes it and writes it back only if nobody changed it in between (a
//! version check, retried), so approvals and payments racing on several replicas pay once.

use crate::audit::{record_after, Actor};
use crate::notifications::notify;
use crate::settlement::{batch_from, line_from, Batch, Line, BATCH_COLS, LINE_COLS};
use crate::{new_id, now_ms, Result, Store, StoreError, Tx};
use opchub_domain::grant::{self, Answer, Grant};
use sqlx::Row;
use std::collections::BTreeMap;

/// The cap scope settled clauses are counted over (M1.1, M2.2, M2.3, M2.4: per year).
pub const YEAR_SCOPE: &str = "year";

/// One key's account as the pages show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct GrantView {
    pub clause: String,
    pub beneficiary: String,
    pub year: i64,
    pub scope_key: String,
    pub approved_fen: i64,
    pub paid_fen: i64,
    pub recovery_fen: i64,
}

/// A recovery order for a lowered settlement key (追回): repaid, or offset against payments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementRecovery {
    pub id: String,
    pub clause: String,
    pub beneficiary: String,
    pub year: i64,
    pub batch_id: String,
    /// `entitlement_lowered`.
    pub reason: String,
    /// What stood approved before the lowering batch.
    pub approved_before_fen: i64,
    /// The entitlement now.
    pub entitlement_fen: i64,
    /// What the beneficiary held (paid, less earlier recoveries) before.
    pub paid_before_fen: i64,
    /// The difference reclaimed: held − entitlement.
    pub amount_fen: i64,
    pub settled_fen: i64,
    /// `open` → `settled`.
    pub status: String,
    pub due_on: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

const RECOVERY_COLS: &str =
    "id, clause, beneficiary, year, scope_key, batch_id, reason, approved_before_fen, entitlement_fen, paid_before_fen, \
                             amount_fen, settled_fen, status, due_on, created_by, created_at";

fn recovery_from(r: &sqlx::any::AnyRow) -> Result<SettlementRecovery> {
    Ok(SettlementRecovery {
        id: r.try_get("id")?,
        clause: r.try_get("clause")?,
        beneficiary: r.try_get("beneficiary")?,
        year: r.try_get("year")?,
        batch_id: r.try_get("batch_id")?,
        reason: r.try_get("reason")?,
        approved_before_fen: r.try_get("approved_before_fen")?,
        entitlement_fen: r.try_get("entitlement_fen")?,
        paid_before_fen: r.try_get("paid_before_fen")?,
        amount_fen: r.try_get("amount_fen")?,
        settled_fen: r.try_get("settled_fen")?,
        status: r.try_get("status")?,
        due_on: r.try_get("due_on")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// One line finance pays: the line, and the bank reference of its transfer.
#[derive(Debug, Clone)]
pub struct LinePayment {
    pub clause: String,
    pub beneficiary: String,
    pub payment_reference: String,
}

/// (clause, beneficiary) → approved, for every key of a year (what a new draft is measured against).
pub(crate) async fn approved_in_year(tx: &mut Tx, year: i64) -> Result<BTreeMap<(String, String), i64>> {
    let rows = sqlx::query("SELECT clause, beneficiary, approved_fen FROM settlement_grants WHERE year = $1 AND scope_key = $2")
        .bind(year)
        .bind(YEAR_SCOPE)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok(((r.try_get("clause")?, r.try_get("beneficiary")?), r.try_get("approved_fen")?)))
        .collect()
}

/// The key as it is now, with its version (the row is created when missing).
async fn read_grant(tx: &mut Tx, clause: &str, beneficiary: &str, year: i64, now: i64) -> Result<(Grant, i64)> {
    sqlx::query(
        "INSERT INTO settlement_grants (clause, beneficiary, year, scope_key, approved_fen, paid_fen, recovery_fen, version, updated_at) \
         VALUES ($1, $2, $3, $4, 0, 0, 0, 0, $5) ON CONFLICT (clause, beneficiary, year, scope_key) DO NOTHING",
    )
    .bind(clause)
    .bind(beneficiary)
    .bind(year)
    .bind(YEAR_SCOPE)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let r = sqlx::query(
        "SELECT approved_fen, paid_fen, recovery_fen, version FROM settlement_grants WHERE clause = $1 AND beneficiary = $2 AND year = $3 AND scope_key = $4",
    )
    .bind(clause)
    .bind(beneficiary)
    .bind(year)
    .bind(YEAR_SCOPE)
    .fetch_one(&mut **tx)
    .await?;
    Ok((
        Grant {
            approved_fen: r.try_get("approved_fen")?,
            paid_fen: r.try_get("paid_fen")?,
            recovery_fen: r.try_get("recovery_fen")?,
        },
        r.try_get("version")?,
    ))
}

/// Writes the key back if it is still at `version`; `false` when another transaction changed it.
async fn write_grant(tx: &mut Tx, clause: &str, beneficiary: &str, year: i64, g: Grant, version: i64, now: i64) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE settlement_grants SET approved_fen = $1, paid_fen = $2, recovery_fen = $3, version = version + 1, updated_at = $4 \
         WHERE clause = $5 AND beneficiary = $6 AND year = $7 AND scope_key = $8 AND version = $9",
    )
    .bind(g.approved_fen)
    .bind(g.paid_fen)
    .bind(g.recovery_fen)
    .bind(now)
    .bind(clause)
    .bind(beneficiary)
    .bind(year)
    .bind(YEAR_SCOPE)
    .bind(version)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Moves the cap ledger by `delta` (consumes when positive, releases when negative), so the
/// calculator's headroom view follows what stands approved.
async fn move_cap(tx: &mut Tx, clause: &str, beneficiary: &str, year: i64, cap_fen: i64, delta: i64, now: i64) -> Result<()> {
    if delta == 0 {
        return Ok(());
    }
    let period = year.to_string();
    sqlx::query(
        "INSERT INTO cap_ledger (clause, beneficiary, scope, period_key, cap_fen, consumed_fen, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6) \
         ON CONFLICT (clause, beneficiary, scope, period_key) DO NOTHING",
    )
    .bind(clause)
    .bind(beneficiary)
    .bind(YEAR_SCOPE)
    .bind(&period)
    .bind(cap_fen)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE cap_ledger SET consumed_fen = CASE WHEN consumed_fen + $1 < 0 THEN 0 ELSE consumed_fen + $1 END, cap_fen = $2, updated_at = $3 \
         WHERE clause = $4 AND beneficiary = $5 AND scope = $6 AND period_key = $7",
    )
    .bind(delta)
    .bind(cap_fen)
    .bind(now)
    .bind(clause)
    .bind(beneficiary)
    .bind(YEAR_SCOPE)
    .bind(&period)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many times a key's conditional write is retried before giving up (`grant_contended`).
const RETRIES: usize = 16;

impl Store {
    /// The second signature (issue 17): a committee member other than the drafter approves a
    /// draft batch. In one transaction the batch becomes `approved` (once: a concurrent second
    /// approval gets `batch_not_draft`; the drafter gets `drafter_cannot_approve`), lines still
    /// pending lapse (`confirmation_open` while the window is open and a payable line is
    /// unanswered), and each line moves its key to the entitlement it was drafted with —
    /// measured against the key as it is now, so a second batch of the same year approves only
    /// the difference, and a lowered key already paid opens a recovery order due on `due_on`.
    /// Nothing reads as paid here: finance pays approved lines with [`Store::pay_settlement`].
    ///
    /// F1: with a policy-wide yearly budget (`policy_budget_fen`), the transaction first takes
    /// the budget's cap-ledger row — the one application approvals queue on — and at the end
    /// checks the year's approved applications and settlement grants, this batch's included,
    /// against it (`policy_budget_exceeded`, nothing written). A batch and an application
    /// approved at the same moment, also on two replicas, are serialised: the later one sees
    /// the earlier and never pays past the budget.
    pub async fn approve_settlement(&self, actor: &Actor, batch_id: &str, due_on: &str, policy_budget_fen: Option<i64>) -> Result<Batch> {
        let Some(approver) = actor.user_id.clone() else {
            return Err(StoreError::Conflict("approver_unknown"));
        };
        let mut tx = self.begin().await?;
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE settlement_batches SET status = 'approved', approved_by = $1, approved_at = $2 \
             WHERE id = $3 AND status = 'draft' AND (created_by IS NULL OR created_by <> $1)",
        )
        .bind(&approver)
        .bind(now)
        .bind(batch_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            drop(tx);
            let b = self.settlement_batch(batch_id).await?;
            if b.status != "draft" {
                return Err(StoreError::Conflict("batch_not_draft"));
            }
            return Err(StoreError::Conflict("drafter_cannot_approve"));
        }
        let b = sqlx::query(&format!("SELECT {BATCH_COLS} FROM settlement_batches WHERE id = $1"))
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
        let batch = batch_from(&b)?;
        if let Some(budget) = policy_budget_fen {
            // Queue with application approvals on the policy budget's row (F1).
            crate::applications::queue_on_budget(
                &mut tx,
                "*",
                batch.year,
                budget,
                now,
                sqlx::query("SELECT CAST(0 AS BIGINT) AS total"),
            )
            .await?;
        }
        let rows = sqlx::query(&format!("SELECT {LINE_COLS} FROM settlement_lines WHERE batch_id = $1"))
            .bind(batch_id)
            .fetch_all(&mut *tx)
            .await?;
        let lines: Vec<Line> = rows.iter().map(line_from).collect::<Result<_>>()?;
        let window_open = batch.confirm_until_ms.is_some_and(|u| now <= u);
        if window_open && lines.iter().any(|l| l.amount_fen > 0 && l.confirmation == "pending") {
            return Err(StoreError::Conflict("confirmation_open"));
        }
        let (mut approved_total, mut recovery_total) = (0i64, 0i64);
        for l in &lines {
            let lapsed = l.amount_fen > 0 && l.confirmation == "pending";
            let answer = Answer::from_code(&l.eligible);
            let accepted = l.confirmation == "confirmed";
            let mut applied = None;
            for _ in 0..RETRIES {
                let (now_grant, version) = read_grant(&mut tx, &l.clause, &l.beneficiary, batch.year, now).await?;
                let a = grant::approve(now_grant, l.entitlement_fen, l.cap_fen, answer, accepted);
                if a.after == now_grant || write_grant(&mut tx, &l.clause, &l.beneficiary, batch.year, a.after, version, now).await? {
                    applied = Some((now_grant, a));
                    break;
                }
            }
            let Some((before, a)) = applied else {
                return Err(StoreError::Conflict("grant_contended"));
            };
            move_cap(&mut tx, &l.clause, &l.beneficiary, batch.year, l.cap_fen, a.delta_fen, now).await?;
            if a.recovery_fen > 0 {
                sqlx::query(&format!(
                    "INSERT INTO settlement_recoveries ({RECOVERY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 'open', $12, $13, $14)"
                ))
                .bind(new_id())
                .bind(&l.clause)
                .bind(&l.beneficiary)
                .bind(batch.year)
                .bind(YEAR_SCOPE)
                .bind(batch_id)
                .bind("entitlement_lowered")
                .bind(before.approved_fen)
                .bind(a.after.approved_fen)
                .bind(before.net_paid_fen())
                .bind(a.recovery_fen)
                .bind(due_on)
                .bind(&approver)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if let Some(owner) = &l.owner_user_id {
                    notify(&mut tx, owner, "settlement_recovery", "settlement", batch_id, &l.clause).await?;
                }
            }
            approved_total += a.delta_fen.max(0);
            recovery_total += a.recovery_fen;
            sqlx::query(
                "UPDATE settlement_lines SET approved_fen = $1, confirmation = $2, lapse_reason = $3 WHERE batch_id = $4 AND clause = $5 AND beneficiary = $6",
            )
            .bind(a.delta_fen)
            .bind(if lapsed { "lapsed" } else { l.confirmation.as_str() })
            .bind(lapsed.then_some("not_confirmed_in_time"))
            .bind(batch_id)
            .bind(&l.clause)
            .bind(&l.beneficiary)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(budget) = policy_budget_fen {
            let apps: i64 = sqlx::query(crate::applications::APPROVED_NET_SQL)
                .bind(batch.year)
                .bind(None::<String>)
                .bind("")
                .fetch_one(&mut *tx)
                .await?
                .try_get("total")?;
            let settled: i64 = sqlx::query(crate::applications::SETTLED_IN_YEAR_SQL)
                .bind(batch.year)
                .fetch_one(&mut *tx)
                .await?
                .try_get("total")?;
            let total = apps.saturating_add(settled);
            if total > budget {
                return Err(StoreError::Conflict("policy_budget_exceeded"));
            }
            crate::applications::record_budget(&mut tx, "*", batch.year, budget, total, now).await?;
        }
        // Nothing for finance to pay: the batch is closed at approval (never reads 已拨付).
        let status = if approved_total == 0 { "closed" } else { "approved" };
        sqlx::query("UPDATE settlement_batches SET approved_fen = $1, recovery_fen = $2, status = $3 WHERE id = $4")
            .bind(approved_total)
            .bind(recovery_total)
            .bind(status)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        let after = serde_json::json!({ "status": "approved", "approved_fen": approved_total, "recovery_fen": recovery_total, "drafted_by": batch.created_by });
        record_after(
            &mut tx,
            actor,
            "settlement.approve",
            "settlement",
            batch_id,
            after,
            format!("approved, {approved_total} fen for finance to pay, {recovery_total} fen to recover"),
        )
        .await?;
        tx.commit().await?;
        self.settlement_batch(batch_id).await
    }

    /// Finance pays approved lines of an approved batch (issue 17): the payer is neither the
    /// approver nor the drafter; each line gets its bank reference; a line is paid once, never
    /// beyond what its key still has approved and unpaid (a later lowering shrinks it), and open
    /// recovery orders of the same beneficiary — settlement or application — are offset first
    /// (抵扣). The batch reads 已拨付 when its last approved line is paid. All or nothing.
    pub async fn pay_settlement(&self, actor: &Actor, batch_id: &str, reference: &str, items: &[LinePayment]) -> Result<Batch> {
        if reference.trim().is_empty() || reference.chars().count() > 64 {
            return Err(StoreError::Invalid {
                field: "reference",
                code: "required",
            });
        }
        if items.is_empty() {
            return Err(StoreError::Invalid {
                field: "lines",
                code: "required",
            });
        }
        let Some(payer) = actor.user_id.clone() else {
            return Err(StoreError::Conflict("payer_unknown"));
        };
        let mut tx = self.begin().await?;
        let now = now_ms();
        let b = sqlx::query(&format!("SELECT {BATCH_COLS} FROM settlement_batches WHERE id = $1"))
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let batch = batch_from(&b)?;
        if batch.status != "approved" {
            return Err(StoreError::Conflict("batch_not_approved"));
        }
        if batch.approved_by.as_deref() == Some(payer.as_str()) || batch.created_by.as_deref() == Some(payer.as_str()) {
            return Err(StoreError::Conflict("payer_signed_batch"));
        }
        let fund_batch = new_id();
        let res = sqlx::query(
            "INSERT INTO fund_batches (id, reference, created_by, created_at, line_count, approved_fen, offset_fen, paid_fen) VALUES ($1, $2, $3, $4, 0, 0, 0, 0)",
        )
        .bind(&fund_batch)
        .bind(reference.trim())
        .bind(&payer)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if crate::is_unique_violation(&e, "reference") || crate::is_unique_violation(&e, "fund_batches") {
                return Err(StoreError::Conflict("reference_taken"));
            }
            return Err(e.into());
        }
        let (mut credited_total, mut offset_total) = (0i64, 0i64);
        for item in items {
            let pay_ref = item.payment_reference.trim();
            if pay_ref.is_empty() || pay_ref.chars().count() > 64 {
                return Err(StoreError::Invalid {
                    field: "payment_reference",
                    code: "required",
                });
            }
            let row = sqlx::query(&format!(
                "SELECT {LINE_COLS} FROM settlement_lines WHERE batch_id = $1 AND clause = $2 AND beneficiary = $3"
            ))
            .bind(batch_id)
            .bind(&item.clause)
            .bind(&item.beneficiary)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::Invalid {
                field: "lines",
                code: "not_found",
            })?;
            let l = line_from(&row)?;
            if l.paid_at.is_some() {
                return Err(StoreError::Conflict("line_already_paid"));
            }
            let approved = l.approved_fen.unwrap_or(0);
            if approved <= 0 {
                return Err(StoreError::Conflict("line_not_payable"));
            }
            let mut credited = None;
            for _ in 0..RETRIES {
                let (g, version) = read_grant(&mut tx, &l.clause, &l.beneficiary, batch.year, now).await?;
                let p = grant::payable(g, approved);
                let after = Grant {
                    paid_fen: g.paid_fen + p,
                    ..g
                };
                if write_grant(&mut tx, &l.clause, &l.beneficiary, batch.year, after, version, now).await? {
                    credited = Some(p);
                    break;
                }
            }
            let credited = credited.ok_or(StoreError::Conflict("grant_contended"))?;
            let offset = offset_open_recoveries(
                &mut tx,
                &l.beneficiary,
                credited,
                &format!("offset:{fund_batch}:{}:{}", l.clause, l.beneficiary),
                &payer,
                now,
            )
            .await?;
            let n = sqlx::query(
                "UPDATE settlement_lines SET paid_fen = $1, offset_fen = $2, payment_reference = $3, paid_by = $4, paid_at = $5 \
                 WHERE batch_id = $6 AND clause = $7 AND beneficiary = $8 AND paid_at IS NULL",
            )
            .bind(credited)
            .bind(offset)
            .bind(pay_ref)
            .bind(&payer)
            .bind(now)
            .bind(batch_id)
            .bind(&l.clause)
            .bind(&l.beneficiary)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("line_already_paid"));
            }
            if let Some(owner) = &l.owner_user_id {
                notify(&mut tx, owner, "settlement_paid", "settlement", batch_id, &l.clause).await?;
            }
            credited_total += credited;
            offset_total += offset;
        }
        let unpaid: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM settlement_lines WHERE batch_id = $1 AND approved_fen > 0 AND paid_at IS NULL")
                .bind(batch_id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("UPDATE settlement_batches SET paid_fen = COALESCE(paid_fen, 0) + $1, status = $2, paid_at = $3 WHERE id = $4")
            .bind(credited_total)
            .bind(if unpaid == 0 { "paid" } else { "approved" })
            .bind((unpaid == 0).then_some(now))
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE fund_batches SET line_count = $1, approved_fen = $2, offset_fen = $3, paid_fen = $4 WHERE id = $5")
            .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
            .bind(credited_total)
            .bind(offset_total)
            .bind(credited_total - offset_total)
            .bind(&fund_batch)
            .execute(&mut *tx)
            .await?;
        record_after(
            &mut tx,
            actor,
            "settlement.pay",
            "settlement",
            batch_id,
            serde_json::json!({ "reference": reference.trim(), "lines": items.len(), "paid_fen": credited_total, "offset_fen": offset_total }),
            format!("{} lines paid, {credited_total} fen ({offset_total} offset)", items.len()),
        )
        .await?;
        tx.commit().await?;
        self.settlement_batch(batch_id).await
    }

    /// Every key a beneficiary has (what was approved, paid and recovered per clause and year).
    pub async fn settlement_grants_of(&self, beneficiary: &str) -> Result<Vec<GrantView>> {
        let rows = sqlx::query(
            "SELECT clause, beneficiary, year, scope_key, approved_fen, paid_fen, recovery_fen FROM settlement_grants WHERE beneficiary = $1 ORDER BY year DESC, clause",
        )
        .bind(beneficiary)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GrantView {
                    clause: r.try_get("clause")?,
                    beneficiary: r.try_get("beneficiary")?,
                    year: r.try_get("year")?,
                    scope_key: r.try_get("scope_key")?,
                    approved_fen: r.try_get("approved_fen")?,
                    paid_fen: r.try_get("paid_fen")?,
                    recovery_fen: r.try_get("recovery_fen")?,
                })
            })
            .collect()
    }

    /// What was approved, paid and recovered per settled clause in a year (the funds
    /// dashboard, issue 21 item 4): (clause, approved, paid, recovered), by clause.
    pub async fn settlement_totals_by_clause(&self, year: i32) -> Result<Vec<(String, i64, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT clause, CAST(COALESCE(SUM(approved_fen), 0) AS BIGINT) AS a, CAST(COALESCE(SUM(paid_fen), 0) AS BIGINT) AS p, \
             CAST(COALESCE(SUM(recovery_fen), 0) AS BIGINT) AS r FROM settlement_grants WHERE year = $1 GROUP BY clause ORDER BY clause",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("clause")?, r.try_get("a")?, r.try_get("p")?, r.try_get("r")?)))
            .collect()
    }

    /// How the payable lines of a year's batches were answered (意愿确认): (confirmation,
    /// lines), for `pending`, `confirmed`, `declined` and `lapsed`.
    pub async fn settlement_confirmations(&self, year: i32) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT l.confirmation AS c, CAST(COUNT(*) AS BIGINT) AS n FROM settlement_lines l JOIN settlement_batches b ON b.id = l.batch_id \
             WHERE b.year = $1 AND l.amount_fen > 0 GROUP BY l.confirmation ORDER BY l.confirmation",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("c")?, r.try_get("n")?))).collect()
    }

    /// Recovery orders of settlement keys (of one beneficiary, or all), newest first.
    pub async fn settlement_recoveries(&self, beneficiary: Option<&str>) -> Result<Vec<SettlementRecovery>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECOVERY_COLS} FROM settlement_recoveries WHERE ($1 IS NULL OR beneficiary = $1) ORDER BY created_at DESC, id"
        ))
        .bind(beneficiary)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recovery_from).collect()
    }

    pub async fn settlement_recovery(&self, id: &str) -> Result<SettlementRecovery> {
        let r = sqlx::query(&format!("SELECT {RECOVERY_COLS} FROM settlement_recoveries WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        recovery_from(&r)
    }

    /// Records a repayment of a settlement recovery order (at most what is outstanding).
    pub async fn repay_settlement_recovery(&self, actor: &Actor, id: &str, amount_fen: i64, reference: &str) -> Result<SettlementRecovery> {
        if amount_fen <= 0 {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "out_of_range",
            });
        }
        if reference.trim().is_empty() || reference.chars().count() > 64 {
            return Err(StoreError::Invalid {
                field: "reference",
                code: "required",
            });
        }
        let by = actor.user_id.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let o = sqlx::query("SELECT amount_fen - settled_fen AS outstanding, status FROM settlement_recoveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (outstanding, status): (i64, String) = (o.try_get("outstanding")?, o.try_get("status")?);
        if status != "open" {
            return Err(StoreError::Conflict("recovery_settled"));
        }
        if amount_fen > outstanding {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "above_outstanding",
            });
        }
        settle_recovery(&mut tx, id, "repay", amount_fen, reference.trim(), &by, now_ms()).await?;
        record_after(
            &mut tx,
            actor,
            "settlement.recovery_repay",
            "settlement_recovery",
            id,
            serde_json::json!({ "amount_fen": amount_fen, "reference": reference.trim() }),
            format!("repaid {amount_fen} fen"),
        )
        .await?;
        tx.commit().await?;
        self.settlement_recovery(id).await
    }

    /// How many corrections the ledger holds (a draft made before a new one is stale).
    pub async fn ledger_correction_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM ledger_events WHERE corrects_leaf_index IS NOT NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// Where a kind of recovery order and its repayments/offsets are kept.
pub(crate) struct OrderTables {
    orders: &'static str,
    entries: &'static str,
    order_column: &'static str,
}

/// Recovery orders of applications (F2, S5).
pub(crate) const APPLICATION_ORDERS: OrderTables = OrderTables {
    orders: "recovery_orders",
    entries: "recovery_settlements",
    order_column: "order_id",
};

/// Recovery orders of lowered settlement keys.
const SETTLEMENT_ORDERS: OrderTables = OrderTables {
    orders: "settlement_recoveries",
    entries: "settlement_recovery_entries",
    order_column: "recovery_id",
};

/// Settles part of a recovery order (repayment or offset) conditionally — never past what is
/// outstanding, once per reference — for either kind of order.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle_part(
    tx: &mut Tx,
    t: &OrderTables,
    id: &str,
    kind: &str,
    amount: i64,
    reference: &str,
    by: &str,
    now: i64,
) -> Result<()> {
    let n = sqlx::query(&format!(
        "UPDATE {} SET settled_fen = settled_fen + $1, status = CASE WHEN settled_fen + $1 >= amount_fen THEN 'settled' ELSE 'open' END \
         WHERE id = $2 AND status = 'open' AND settled_fen + $1 <= amount_fen",
        t.orders
    ))
    .bind(amount)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(StoreError::Conflict("recovery_changed"));
    }
    let res = sqlx::query(&format!(
        "INSERT INTO {} (id, {}, kind, amount_fen, reference, recorded_by, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        t.entries, t.order_column
    ))
    .bind(new_id())
    .bind(id)
    .bind(kind)
    .bind(amount)
    .bind(reference)
    .bind(by)
    .bind(now)
    .execute(&mut **tx)
    .await;
    if let Err(e) = res {
        if crate::is_unique_violation(&e, "reference") || crate::is_unique_violation(&e, t.entries) {
            return Err(StoreError::Conflict("reference_taken"));
        }
        return Err(e.into());
    }
    Ok(())
}

/// Settles part of a settlement recovery order (repayment or offset), conditionally.
async fn settle_recovery(tx: &mut Tx, id: &str, kind: &str, amount: i64, reference: &str, by: &str, now: i64) -> Result<()> {
    settle_part(tx, &SETTLEMENT_ORDERS, id, kind, amount, reference, by, now).await
}

/// Offsets `amount` against the beneficiary's open recovery orders — settlement ones first,
/// then application ones — oldest first; returns what was offset.
pub(crate) async fn offset_open_recoveries(
    tx: &mut Tx,
    beneficiary: &str,
    amount: i64,
    reference: &str,
    by: &str,
    now: i64,
) -> Result<i64> {
    if amount <= 0 {
        return Ok(0);
    }
    let settlement: Vec<(String, i64)> = sqlx::query(
        "SELECT id, amount_fen - settled_fen AS outstanding FROM settlement_recoveries WHERE beneficiary = $1 AND status = 'open' ORDER BY created_at, id",
    )
    .bind(beneficiary)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get::<String, _>("id")?, r.try_get::<i64, _>("outstanding")?)))
    .collect::<Result<_>>()?;
    let (used, left) = grant::offset(amount, &settlement);
    let mut offset = 0;
    for (i, (id, take)) in used.iter().enumerate() {
        settle_recovery(tx, id, "offset", *take, &format!("{reference}:s{i}"), by, now).await?;
        offset += take;
    }
    let applications: Vec<(String, i64)> = sqlx::query(
        "SELECT id, amount_fen - settled_fen AS outstanding FROM recovery_orders WHERE beneficiary = $1 AND status = 'open' ORDER BY created_at, id",
    )
    .bind(beneficiary)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get::<String, _>("id")?, r.try_get::<i64, _>("outstanding")?)))
    .collect::<Result<_>>()?;
    let (used, _) = grant::offset(left, &applications);
    for (i, (id, take)) in used.iter().enumerate() {
        crate::applications::settle_order(tx, id, "offset", *take, &format!("{reference}:a{i}"), by, now).await?;
        offset += take;
    }
    Ok(offset)
}
