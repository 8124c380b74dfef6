//! Monthly bills (对账单) and their payments (issue 19 items 2 and 3).
//!
//! A bill is one (month, payer, payee) of the ledger's billed events (`opchub_ledger::bills`):
//! while the month's ledger period is open it is computed from the events (a running bill);
//! once the period is sealed its bills are issued — written once, with their lines, and never
//! updated (a sealed period's events never change: a late event or a correction is booked into
//! the open month and shows on that month's bill).
//!
//! Payments: the payer records one (pending until the payee confirms), or the payee records a
//! receipt (confirmed at once); either side may dispute a pending payment and a committee
//! reviewer decides (upheld: confirmed; rejected: void), as for cooperation payments. Every
//! confirmed payment is one `bill.payment` ledger event keyed by the payment id. State moves are
//! conditional UPDATEs, so concurrent confirms cannot both win; the payment's amount is checked
//! against the bill's outstanding amount inside the write transaction.

use crate::audit::{record_after, Actor};
use crate::ledger::{Item, LedgerWriter, Outcome};
use crate::notifications::notify;
use crate::{dialect, is_unique_violation, new_id, now_ms, Result, Store, StoreError, Tx};
use opchub_ledger::bills::{bill_id, Accumulator, BilledEvent, LineKey, LineSums, BILLED_KINDS};
use opchub_ledger::event::NewEvent;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The ledger source of confirmed bill payments (`bill.payment`, issue 19).
pub const SOURCE: &str = opchub_ledger::metering::BILLS_SOURCE;

/// One line of a bill: a kind of one model, skill or item at one price version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BillLine {
    pub line_no: i64,
    pub kind: String,
    /// The model (tokens), the skill (calls) or the price item (compute, data).
    pub item: String,
    pub price_version: String,
    pub unit: String,
    /// An adjustment line: the leaf index of the event it corrects.
    pub corrects_leaf_index: Option<i64>,
    pub quantity: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub events: i64,
}

/// A bill: who pays whom for a month, its totals and what is paid of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Bill {
    /// `<month>.<payer>.<payee>` — the same while running and once issued.
    pub id: String,
    pub month: String,
    /// The paying OPC.
    pub payer: String,
    /// Who is paid: the community operator (models, compute, data) or the publisher (skills).
    pub payee: String,
    /// `running` (未出账, the month is open), `issued` (出账, nothing confirmed), `partially_paid`, `paid`.
    pub status: String,
    /// What the usage lists at (the list price).
    pub list_fen: i64,
    /// What the payer owes: the sum of its lines' charged amounts, to the fen.
    pub total_fen: i64,
    pub events: i64,
    /// When it was issued (none while running).
    pub issued_at: Option<i64>,
    /// Confirmed receipts.
    pub paid_fen: i64,
    /// Payments recorded and not void (pending, disputed, confirmed).
    pub recorded_fen: i64,
    /// What may still be recorded: the total less the payments recorded and not void.
    pub outstanding_fen: i64,
}

/// The status of a bill from whether it is issued, its total and its confirmed receipts.
pub fn bill_status(issued: bool, total_fen: i64, paid_fen: i64) -> &'static str {
    if !issued {
        "running"
    } else if paid_fen >= total_fen {
        "paid"
    } else if paid_fen > 0 {
        "partially_paid"
    } else {
        "issued"
    }
}

/// A running bill and its lines from the sums of its events.
pub fn running_bill(month: &str, payer: &str, payee: &str, lines: &BTreeMap<LineKey, LineSums>) -> (Bill, Vec<BillLine>) {
    let lines: Vec<BillLine> = lines
        .iter()
        .enumerate()
        .map(|(i, (k, s))| BillLine {
            line_no: i as i64 + 1,
            kind: k.kind.clone(),
            item: k.item.clone(),
            price_version: k.price_version.clone(),
            unit: k.unit.clone(),
            corrects_leaf_index: k.corrects_leaf_index,
            quantity: s.quantity,
            list_fen: s.list_fen,
            charged_fen: s.charged_fen,
            events: s.events,
        })
        .collect();
    let total_fen = lines.iter().map(|l| l.charged_fen).sum();
    let bill = Bill {
        id: bill_id(month, payer, payee),
        month: month.to_string(),
        payer: payer.to_string(),
        payee: payee.to_string(),
        status: "running".into(),
        list_fen: lines.iter().map(|l| l.list_fen).sum(),
        total_fen,
        events: lines.iter().map(|l| l.events).sum(),
        issued_at: None,
        paid_fen: 0,
        recorded_fen: 0,
        outstanding_fen: total_fen,
    };
    (bill, lines)
}

/// Which events a bill computation reads.
#[derive(Debug, Clone)]
pub enum BillScope<'a> {
    /// Every payer and payee (issuing a month, the committee's view).
    All,
    /// Events whose subject is one of these (a payer's bills).
    Payers(&'a [String]),
    /// Events whose counterparty is one of these (a payee's bills; communities included).
    Counterparties(&'a [String]),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BillPayment {
    pub id: String,
    pub bill_id: String,
    pub payee: String,
    pub amount_fen: i64,
    pub paid_on: String,
    pub reference: String,
    pub note: String,
    /// `pending` (awaiting the payee), `confirmed`, `disputed`, `void` (a dispute went against it).
    pub status: String,
    /// `payer` (the OPC recorded paying) or `payee` (the payee recorded a receipt).
    pub recorded_side: String,
    pub recorded_by: String,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<i64>,
    /// The ledger leaf of its `bill.payment` event, once posted.
    pub ledger_leaf_index: Option<i64>,
    pub created_at: i64,
    /// The receipt file, if one was attached: its SHA-256 (read at
    /// `/api/v1/demands/files/{sha256}` by the bill's parties, the committee and the auditor)
    /// and its file name.
    pub receipt_sha256: Option<String>,
    pub receipt_name: Option<String>,
}

const PAYMENT_COLS: &str = "id, bill_id, payee, amount_fen, paid_on, reference, note, status, recorded_side, recorded_by, confirmed_by, \
    confirmed_at, ledger_leaf_index, created_at, receipt_sha256, receipt_name";

fn payment_from(r: &AnyRow) -> Result<BillPayment> {
    Ok(BillPayment {
        id: r.try_get("id")?,
        bill_id: r.try_get("bill_id")?,
        payee: r.try_get("payee")?,
        amount_fen: r.try_get("amount_fen")?,
        paid_on: r.try_get("paid_on")?,
        reference: r.try_get("reference")?,
        note: r.try_get("note")?,
        status: r.try_get("status")?,
        recorded_side: r.try_get("recorded_side")?,
        recorded_by: r.try_get("recorded_by")?,
        confirmed_by: r.try_get("confirmed_by")?,
        confirmed_at: r.try_get("confirmed_at")?,
        ledger_leaf_index: r.try_get("ledger_leaf_index")?,
        created_at: r.try_get("created_at")?,
        receipt_sha256: r.try_get("receipt_sha256")?,
        receipt_name: r.try_get("receipt_name")?,
    })
}

/// A payment as validated by the use case.
pub struct NewBillPayment {
    pub amount_fen: i64,
    /// `YYYY-MM-DD`.
    pub paid_on: String,
    /// Normalised (upper case, no spaces); unique per payee.
    pub reference: String,
    pub note: String,
    /// `payer` or `payee`.
    pub side: &'static str,
    /// An optional receipt file (checked by the use case: type, size, content).
    pub receipt: Option<ReceiptFile>,
}

/// A receipt file as uploaded.
pub struct ReceiptFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BillDispute {
    pub id: String,
    pub payment_id: String,
    pub bill_id: String,
    pub amount_fen: i64,
    pub reference: String,
    pub raised_by: String,
    pub reason: String,
    /// `open`, `resolved`.
    pub status: String,
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub resolution_note: Option<String>,
    pub created_at: i64,
}

const DISPUTE_SELECT: &str =
    "SELECT d.id, d.payment_id, p.bill_id, p.amount_fen, p.reference, d.raised_by, d.reason, d.status, d.resolution, \
    d.resolution_note, d.created_at FROM bill_disputes d JOIN bill_payments p ON p.id = d.payment_id";

fn dispute_from(r: &AnyRow) -> Result<BillDispute> {
    Ok(BillDispute {
        id: r.try_get("id")?,
        payment_id: r.try_get("payment_id")?,
        bill_id: r.try_get("bill_id")?,
        amount_fen: r.try_get("amount_fen")?,
        reference: r.try_get("reference")?,
        raised_by: r.try_get("raised_by")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        resolution: r.try_get("resolution")?,
        resolution_note: r.try_get("resolution_note")?,
        created_at: r.try_get("created_at")?,
    })
}

const BILL_SELECT: &str = "SELECT b.id, b.month, b.payer, b.payee, b.list_fen, b.total_fen, b.events, b.issued_at, \
    CAST(COALESCE((SELECT SUM(p.amount_fen) FROM bill_payments p WHERE p.bill_id = b.id AND p.status = 'confirmed'), 0) AS BIGINT) AS paid_fen, \
    CAST(COALESCE((SELECT SUM(p.amount_fen) FROM bill_payments p WHERE p.bill_id = b.id AND p.status <> 'void'), 0) AS BIGINT) AS recorded_fen \
    FROM bills b";

fn bill_from(r: &AnyRow) -> Result<Bill> {
    let total_fen: i64 = r.try_get("total_fen")?;
    let paid_fen: i64 = r.try_get("paid_fen")?;
    let recorded_fen: i64 = r.try_get("recorded_fen")?;
    Ok(Bill {
        id: r.try_get("id")?,
        month: r.try_get("month")?,
        payer: r.try_get("payer")?,
        payee: r.try_get("payee")?,
        status: bill_status(true, total_fen, paid_fen).to_string(),
        list_fen: r.try_get("list_fen")?,
        total_fen,
        events: r.try_get("events")?,
        issued_at: Some(r.try_get("issued_at")?),
        paid_fen,
        recorded_fen,
        outstanding_fen: (total_fen - recorded_fen).max(0),
    })
}

fn line_from(r: &AnyRow) -> Result<BillLine> {
    Ok(BillLine {
        line_no: r.try_get("line_no")?,
        kind: r.try_get("kind")?,
        item: r.try_get("item")?,
        price_version: r.try_get("price_version")?,
        unit: r.try_get("unit")?,
        corrects_leaf_index: r.try_get("corrects_leaf_index")?,
        quantity: r.try_get("quantity")?,
        list_fen: r.try_get("list_fen")?,
        charged_fen: r.try_get("charged_fen")?,
        events: r.try_get("events")?,
    })
}

/// Events read per page when summing a month (keyset by leaf index).
const PAGE: i64 = 5000;

fn invalid(field: &'static str, code: &'static str) -> StoreError {
    StoreError::Invalid { field, code }
}

impl Store {
    /// Community id → its operator's account: a community named as an event's counterparty is
    /// billed to its operator.
    pub async fn bill_community_operators(&self) -> Result<HashMap<String, String>> {
        let rows = sqlx::query("SELECT id, operator_user_id FROM communities")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("operator_user_id")?)))
            .collect()
    }

    /// The bills of the events booked in `month` within `scope`, summed by line. A payer is
    /// never billed for what it paid itself (self-dealing usage is recorded, not billed).
    pub async fn bill_sums(&self, month: &str, scope: BillScope<'_>) -> Result<Accumulator> {
        let operators = self.bill_community_operators().await?;
        let kinds = BILLED_KINDS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(",");
        let (filter, parties): (String, &[String]) = match scope {
            BillScope::All => (String::new(), &[]),
            BillScope::Payers(p) => (format!(" AND subject IN ({})", numbered(4, p.len())), p),
            BillScope::Counterparties(p) => (format!(" AND counterparty IN ({})", numbered(4, p.len())), p),
        };
        let mut acc = Accumulator::default();
        if parties.is_empty() && !filter.is_empty() {
            return Ok(acc);
        }
        let sql = format!(
            "SELECT leaf_index, kind, subject, counterparty, quantity, unit, list_fen, charged_fen, list_sub_micro, charged_sub_micro, price_version, \
             attributes, corrects_leaf_index \
             FROM ledger_events WHERE period = $1 AND leaf_index > $2 AND kind IN ({kinds}){filter} ORDER BY leaf_index LIMIT $3"
        );
        let mut after = -1i64;
        loop {
            let mut q = sqlx::query(&sql).bind(month).bind(after).bind(PAGE);
            for p in parties {
                q = q.bind(p);
            }
            let rows = q.fetch_all(&self.pool).await?;
            for r in &rows {
                after = r.try_get("leaf_index")?;
                let subject: String = r.try_get("subject")?;
                let counterparty: String = r.try_get("counterparty")?;
                let payee = operators.get(&counterparty).cloned().unwrap_or(counterparty);
                if payee == subject {
                    continue;
                }
                let attrs: String = r.try_get("attributes")?;
                let attributes: BTreeMap<String, String> = serde_json::from_str(&attrs).unwrap_or_default();
                let kind: String = r.try_get("kind")?;
                let unit: String = r.try_get("unit")?;
                let price_version: String = r.try_get("price_version")?;
                acc.add(&BilledEvent {
                    period: month,
                    kind: &kind,
                    subject: &subject,
                    payee: &payee,
                    quantity: r.try_get("quantity")?,
                    unit: &unit,
                    list_fen: r.try_get("list_fen")?,
                    charged_fen: r.try_get("charged_fen")?,
                    list_sub_micro: r.try_get("list_sub_micro")?,
                    charged_sub_micro: r.try_get("charged_sub_micro")?,
                    price_version: &price_version,
                    attributes: &attributes,
                    corrects_leaf_index: r.try_get("corrects_leaf_index")?,
                });
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        Ok(acc)
    }

    /// Months with usage of these parties (as subject, or as counterparty), newest first, from
    /// the monthly rollups; every month when `parties` is `None`.
    pub async fn bill_usage_months(&self, parties: Option<&[String]>, as_counterparty: bool) -> Result<Vec<String>> {
        let kinds = BILLED_KINDS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(",");
        let col = if as_counterparty { "counterparty" } else { "subject" };
        let months: Vec<String> = match parties {
            None => {
                sqlx::query_scalar(&format!(
                    "SELECT DISTINCT month FROM ledger_rollups_monthly WHERE kind IN ({kinds}) ORDER BY month DESC"
                ))
                .fetch_all(&self.pool)
                .await?
            }
            Some([]) => vec![],
            Some(p) => {
                let sql = format!(
                    "SELECT DISTINCT month FROM ledger_rollups_monthly WHERE kind IN ({kinds}) AND {col} IN ({}) ORDER BY month DESC",
                    numbered(1, p.len())
                );
                let mut q = sqlx::query_scalar(&sql);
                for x in p {
                    q = q.bind(x);
                }
                q.fetch_all(&self.pool).await?
            }
        };
        Ok(months)
    }

    /// Whether the ledger period `month` is sealed.
    pub async fn bill_month_sealed(&self, month: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_periods WHERE period = $1")
            .bind(month)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Sealed months whose bills are not issued yet.
    pub async fn bill_months_to_issue(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT period FROM ledger_periods WHERE period NOT IN (SELECT month FROM bill_months) ORDER BY period")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Issues the bills of a sealed month, once: every (payer, payee) with billed events, with
    /// its lines, written in one transaction with its audit entry. Returns how many were issued
    /// (0 when the month was issued before, by this process or another).
    pub async fn issue_bills(&self, actor: &Actor, month: &str) -> Result<usize> {
        let tree_size: Option<i64> = sqlx::query_scalar("SELECT tree_size FROM ledger_periods WHERE period = $1")
            .bind(month)
            .fetch_optional(&self.pool)
            .await?;
        let Some(tree_size) = tree_size else {
            return Err(StoreError::Conflict("bill_not_issued"));
        };
        // A sealed period's events never change: summing before the transaction is safe.
        let acc = self.bill_sums(month, BillScope::All).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query("INSERT INTO bill_months (month, tree_size, bills, issued_at) VALUES ($1, $2, $3, $4)")
            .bind(month)
            .bind(tree_size)
            .bind(acc.bills.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "month") {
                return Ok(0);
            }
            return Err(e.into());
        }
        let mut total = 0i64;
        for ((m, payer, payee), lines) in &acc.bills {
            let (bill, lines) = running_bill(m, payer, payee, lines);
            total += bill.total_fen;
            sqlx::query(
                "INSERT INTO bills (id, month, payer, payee, list_fen, total_fen, events, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&bill.id)
            .bind(&bill.month)
            .bind(&bill.payer)
            .bind(&bill.payee)
            .bind(bill.list_fen)
            .bind(bill.total_fen)
            .bind(bill.events)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The payer hears its bill is issued (出账), with its total.
            if let Some(user) = user_of_party(&mut tx, &bill.payer).await? {
                let title = format!("{} · {}", bill.month, opchub_domain::Money::from_fen(bill.total_fen));
                notify(&mut tx, &user, "bill_issued", "bill", &bill.id, &title).await?;
            }
            for l in &lines {
                sqlx::query(
                    "INSERT INTO bill_lines (bill_id, line_no, kind, item, price_version, unit, corrects_leaf_index, quantity, list_fen, charged_fen, events) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&bill.id)
                .bind(l.line_no)
                .bind(&l.kind)
                .bind(&l.item)
                .bind(&l.price_version)
                .bind(&l.unit)
                .bind(l.corrects_leaf_index)
                .bind(l.quantity)
                .bind(l.list_fen)
                .bind(l.charged_fen)
                .bind(l.events)
                .execute(&mut *tx)
                .await?;
            }
        }
        record_after(
            &mut tx,
            actor,
            "bills.issue",
            "bill_month",
            month,
            serde_json::json!({ "month": month, "tree_size": tree_size, "bills": acc.bills.len(), "total_fen": total }),
            format!("{month}: {} bills", acc.bills.len()),
        )
        .await?;
        tx.commit().await?;
        Ok(acc.bills.len())
    }

    /// Issued bills, newest month first: of `month` (or all months), where the payer is one of
    /// `payers` or the payee one of `payees` (both `None`: everyone's).
    pub async fn issued_bills(&self, month: Option<&str>, payers: Option<&[String]>, payees: Option<&[String]>) -> Result<Vec<Bill>> {
        let mut conds = vec!["($1 IS NULL OR b.month = $1)".to_string()];
        let mut binds: Vec<&String> = vec![];
        let mut side = vec![];
        for (col, parties) in [("b.payer", payers), ("b.payee", payees)] {
            if let Some(p) = parties.filter(|p| !p.is_empty()) {
                side.push(format!("{col} IN ({})", numbered(2 + binds.len(), p.len())));
                binds.extend(p.iter());
            }
        }
        if payers.is_some() || payees.is_some() {
            if side.is_empty() {
                return Ok(vec![]);
            }
            conds.push(format!("({})", side.join(" OR ")));
        }
        let sql = format!(
            "{BILL_SELECT} WHERE {} ORDER BY b.month DESC, b.payer, b.payee LIMIT 2000",
            conds.join(" AND ")
        );
        let mut q = sqlx::query(&sql).bind(month.map(str::to_string));
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool).await?.iter().map(bill_from).collect()
    }

    /// An issued bill and its lines.
    pub async fn issued_bill(&self, id: &str) -> Result<(Bill, Vec<BillLine>)> {
        let row = sqlx::query(&format!("{BILL_SELECT} WHERE b.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let bill = row.as_ref().map(bill_from).transpose()?.ok_or(StoreError::NotFound)?;
        let lines = sqlx::query(
            "SELECT line_no, kind, item, price_version, unit, corrects_leaf_index, quantity, list_fen, charged_fen, events FROM bill_lines \
             WHERE bill_id = $1 ORDER BY line_no",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(line_from)
        .collect::<Result<Vec<_>>>()?;
        Ok((bill, lines))
    }

    pub async fn bill_payments(&self, bill_id: &str) -> Result<Vec<BillPayment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM bill_payments WHERE bill_id = $1 ORDER BY created_at, id"
        ))
        .bind(bill_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from).collect()
    }

    pub async fn bill_payment(&self, id: &str) -> Result<BillPayment> {
        let row = sqlx::query(&format!("SELECT {PAYMENT_COLS} FROM bill_payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Records a payment of an issued bill (the payer's: pending; the payee's receipt:
    /// confirmed at once). Refused when it would take the payments not void above the bill's
    /// total (`above_outstanding`), or when the payee has the reference already
    /// (`duplicate_reference`). The bill row is read inside the write transaction (SQLite holds
    /// the write lock; PostgreSQL locks the row), so concurrent payments cannot together pass it.
    /// The bills whose payments carry the receipt file `sha` (who may read the file).
    pub async fn file_bills(&self, sha: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT bill_id FROM bill_payments WHERE receipt_sha256 = $1")
                .bind(sha)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn record_bill_payment(&self, actor: &Actor, bill_id: &str, p: &NewBillPayment) -> Result<BillPayment> {
        self.record_bill_payment_as(actor, bill_id, p, p.side == "payee").await
    }

    /// The payee records a receipt and it is confirmed with its `bill.payment` event in one
    /// ledger-writer commit ([`Store::confirm_and_post_bill_payment`]). Should the server stop
    /// in between, the receipt is left pending, recorded by the payee, who confirms it as any
    /// other: never confirmed without its event.
    pub async fn record_and_post_bill_receipt(
        &self,
        writer: &LedgerWriter,
        actor: &Actor,
        bill_id: &str,
        p: &NewBillPayment,
    ) -> Result<BillPayment> {
        let pending = self.record_bill_payment_as(actor, bill_id, p, false).await?;
        self.confirm_and_post_bill_payment(writer, actor, &pending.id).await?;
        self.bill_payment(&pending.id).await
    }

    async fn record_bill_payment_as(&self, actor: &Actor, bill_id: &str, p: &NewBillPayment, confirmed: bool) -> Result<BillPayment> {
        let id = new_id();
        let uid = actor.user_id.clone().unwrap_or_default();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT payer, payee, total_fen FROM bills WHERE id = $1{}",
            dialect::for_update(self.backend)
        ))
        .bind(bill_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict("bill_not_issued"));
        };
        let payee: String = row.try_get("payee")?;
        let payer: String = row.try_get("payer")?;
        let total: i64 = row.try_get("total_fen")?;
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM bill_payments WHERE bill_id = $1 AND status <> 'void'",
        )
        .bind(bill_id)
        .fetch_one(&mut *tx)
        .await?;
        if used.saturating_add(p.amount_fen) > total {
            return Err(invalid("amount_fen", "above_outstanding"));
        }
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM bill_payments WHERE payee = $1 AND reference = $2")
            .bind(&payee)
            .bind(&p.reference)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict("duplicate_reference"));
        }
        let receipt_sha = p.receipt.as_ref().map(|r| crate::demands::sha_of(&r.bytes));
        if let (Some(sha), Some(r)) = (&receipt_sha, &p.receipt) {
            let f = crate::demands::FileIn {
                name: &r.name,
                content_type: &r.content_type,
                bytes: &r.bytes,
            };
            crate::demands::put_file(&mut tx, sha, &f).await?;
        }
        let res = sqlx::query(&format!(
            "INSERT INTO bill_payments ({PAYMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $14, $15)"
        ))
        .bind(&id)
        .bind(bill_id)
        .bind(&payee)
        .bind(p.amount_fen)
        .bind(&p.paid_on)
        .bind(&p.reference)
        .bind(&p.note)
        .bind(if confirmed { "confirmed" } else { "pending" })
        .bind(p.side)
        .bind(&uid)
        .bind(confirmed.then(|| uid.clone()))
        .bind(confirmed.then_some(now))
        .bind(now)
        .bind(receipt_sha.clone())
        .bind(p.receipt.as_ref().map(|r| r.name.trim().to_string()))
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "reference") {
                return Err(StoreError::Conflict("duplicate_reference"));
            }
            return Err(e.into());
        }
        // The other side hears of it: the payee has a payment to confirm; the payer, that its
        // payee recorded receiving it.
        // (A receipt the payee records to confirm at once says nothing yet: its confirmation
        // tells the payer.)
        let told = match (confirmed, p.side) {
            (true, _) => Some((&payer, "bill_payment_confirmed")),
            (false, "payer") => Some((&payee, "bill_payment_to_confirm")),
            (false, _) => None,
        };
        if let Some((to, kind)) = told {
            if let Some(user) = user_of_party(&mut tx, to).await? {
                let title = format!("{bill_id} · {}", opchub_domain::Money::from_fen(p.amount_fen));
                notify(&mut tx, &user, kind, "bill", bill_id, &title).await?;
            }
        }
        record_after(
            &mut tx,
            actor,
            if p.side == "payee" { "bill.receipt" } else { "bill.payment" },
            "bill_payment",
            &id,
            serde_json::json!({ "bill": bill_id, "amount_fen": p.amount_fen, "paid_on": p.paid_on, "reference": p.reference, "side": p.side }),
            format!("{} fen", p.amount_fen),
        )
        .await?;
        tx.commit().await?;
        self.bill_payment(&id).await
    }

    /// pending → confirmed (the payee's confirmation; only one of concurrent confirms wins).
    pub async fn confirm_bill_payment(&self, actor: &Actor, payment_id: &str) -> Result<BillPayment> {
        let mut tx = self.begin().await?;
        if !confirm_pending(&mut tx, actor, payment_id).await? {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        tx.commit().await?;
        self.bill_payment(payment_id).await
    }

    /// The payee confirms a pending payment and its `bill.payment` event is appended, in one
    /// commit of the ledger writer (issue 19 item 3): the confirmation, its notification and
    /// audit row, the event and the payment's leaf all commit together, or none does. A payment
    /// no longer pending (confirmed, disputed, void) is refused with `payment_not_pending` and
    /// nothing changes. Returns the leaf index.
    pub async fn confirm_and_post_bill_payment(&self, writer: &LedgerWriter, actor: &Actor, payment_id: &str) -> Result<i64> {
        let pending = self.bill_payment(payment_id).await?;
        if pending.status != "pending" {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        let event = payment_event(&pending, actor.user_id.as_deref())?;
        let out = writer
            .append_with(
                vec![Item::Event(event)],
                vec![crate::ledger::SideWrite::ConfirmBillPayment {
                    payment_id: payment_id.to_string(),
                    actor: actor.clone(),
                }],
            )
            .await?;
        match out.into_iter().next() {
            Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => Ok(r.leaf_index),
            Some(Outcome::Rejected(e)) if e.code == "payment_not_pending" => Err(StoreError::Conflict("payment_not_pending")),
            Some(Outcome::Rejected(e)) => Err(StoreError::Catalog(format!("ledger refused bill payment {payment_id}: {}", e.code))),
            None => Err(StoreError::Catalog("ledger returned no outcome".into())),
        }
    }

    /// Either side disputes a pending payment; it does not count until a committee reviewer
    /// decides.
    pub async fn dispute_bill_payment(&self, actor: &Actor, payment_id: &str, reason: &str) -> Result<BillDispute> {
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE bill_payments SET status = 'disputed' WHERE id = $1 AND status = 'pending'")
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        sqlx::query(
            "INSERT INTO bill_disputes (id, payment_id, raised_by, reason, status, resolution, resolution_note, resolved_by, created_at, resolved_at) \
             VALUES ($1, $2, $3, $4, 'open', NULL, NULL, NULL, $5, NULL)",
        )
        .bind(&id)
        .bind(payment_id)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        // Both sides of the bill hear of the dispute (the raiser's side too: its own record).
        let row = sqlx::query("SELECT b.id, b.payer, b.payee FROM bill_payments p JOIN bills b ON b.id = p.bill_id WHERE p.id = $1")
            .bind(payment_id)
            .fetch_one(&mut *tx)
            .await?;
        let (bill, payer, payee): (String, String, String) = (row.try_get("id")?, row.try_get("payer")?, row.try_get("payee")?);
        let raiser = actor.user_id.clone().unwrap_or_default();
        for party in [&payer, &payee] {
            if let Some(user) = user_of_party(&mut tx, party).await?.filter(|u| *u != raiser) {
                notify(&mut tx, &user, "bill_payment_disputed", "bill", &bill, reason).await?;
            }
        }
        record_after(
            &mut tx,
            actor,
            "bill.payment_dispute",
            "bill_payment",
            payment_id,
            serde_json::json!({ "dispute": id, "reason": reason }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.bill_dispute(&id).await
    }

    pub async fn bill_dispute(&self, id: &str) -> Result<BillDispute> {
        let row = sqlx::query(&format!("{DISPUTE_SELECT} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dispute_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Disputes (only open ones with `open_only`), newest first.
    pub async fn bill_disputes(&self, open_only: bool) -> Result<Vec<BillDispute>> {
        let rows = sqlx::query(&format!(
            "{DISPUTE_SELECT} WHERE ($1 = 0 OR d.status = 'open') ORDER BY d.created_at DESC LIMIT 500"
        ))
        .bind(open_only as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dispute_from).collect()
    }

    /// Disputes of one bill's payments.
    pub async fn bill_disputes_of(&self, bill_id: &str) -> Result<Vec<BillDispute>> {
        let rows = sqlx::query(&format!("{DISPUTE_SELECT} WHERE p.bill_id = $1 ORDER BY d.created_at"))
            .bind(bill_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dispute_from).collect()
    }

    /// A committee reviewer decides a dispute: `upheld` (the payment stands: confirmed, then
    /// posted) or `rejected` (void: it never counts and frees its share of the bill).
    pub async fn resolve_bill_dispute(&self, actor: &Actor, dispute_id: &str, resolution: &str, note: &str) -> Result<BillDispute> {
        if !matches!(resolution, "upheld" | "rejected") {
            return Err(invalid("resolution", "unknown_resolution"));
        }
        let mut tx = self.begin().await?;
        if !resolve_open(&mut tx, actor, dispute_id, resolution, note).await? {
            return Err(StoreError::Conflict("dispute_resolved"));
        }
        tx.commit().await?;
        self.bill_dispute(dispute_id).await
    }

    /// A committee reviewer upholds a disputed payment: the decision, the payment's
    /// confirmation and its `bill.payment` event commit in one ledger-writer transaction; a
    /// dispute decided meanwhile refuses the event (`dispute_resolved`) and nothing changes.
    pub async fn uphold_and_post_bill_dispute(
        &self,
        writer: &LedgerWriter,
        actor: &Actor,
        dispute_id: &str,
        note: &str,
    ) -> Result<BillDispute> {
        let d = self.bill_dispute(dispute_id).await?;
        if d.status != "open" {
            return Err(StoreError::Conflict("dispute_resolved"));
        }
        let payment = self.bill_payment(&d.payment_id).await?;
        let event = payment_event(&payment, actor.user_id.as_deref())?;
        let out = writer
            .append_with(
                vec![Item::Event(event)],
                vec![crate::ledger::SideWrite::UpholdBillDispute {
                    dispute_id: dispute_id.to_string(),
                    payment_id: d.payment_id.clone(),
                    note: note.to_string(),
                    actor: actor.clone(),
                }],
            )
            .await?;
        match out.into_iter().next() {
            Some(Outcome::Stored(_)) | Some(Outcome::Duplicate(_)) => self.bill_dispute(dispute_id).await,
            Some(Outcome::Rejected(e)) if e.code == "dispute_resolved" => Err(StoreError::Conflict("dispute_resolved")),
            Some(Outcome::Rejected(e)) => Err(StoreError::Catalog(format!(
                "ledger refused bill payment {}: {}",
                d.payment_id, e.code
            ))),
            None => Err(StoreError::Catalog("ledger returned no outcome".into())),
        }
    }

    /// The `bill.payment` ledger event of a confirmed payment, dated at noon (Beijing) of its
    /// payment date (never later than now).
    pub async fn bill_payment_event(&self, payment_id: &str) -> Result<NewEvent> {
        let p = self.bill_payment(payment_id).await?;
        if p.status != "confirmed" {
            return Err(StoreError::Conflict("payment_not_confirmed"));
        }
        payment_event(&p, p.confirmed_by.as_deref())
    }

    /// Appends the event of a confirmed payment through the writer (idempotent: keyed by the
    /// payment id) and records its leaf. Returns the leaf index.
    pub async fn post_bill_payment(&self, writer: &LedgerWriter, payment_id: &str) -> Result<i64> {
        if let Some(leaf) = self.bill_payment(payment_id).await?.ledger_leaf_index {
            return Ok(leaf);
        }
        let event = self.bill_payment_event(payment_id).await?;
        let out = writer.append(vec![Item::Event(event)]).await?;
        self.payment_posted(payment_id, out).await
    }

    /// [`Store::post_bill_payment`] without a writer, appending in this connection pool: for
    /// loaders (the demo), which run before the server and its writer start.
    pub async fn post_bill_payment_direct(&self, payment_id: &str) -> Result<i64> {
        if let Some(leaf) = self.bill_payment(payment_id).await?.ledger_leaf_index {
            return Ok(leaf);
        }
        let event = self.bill_payment_event(payment_id).await?;
        let out = self.ledger_append(vec![Item::Event(event)]).await?;
        self.payment_posted(payment_id, out).await
    }

    /// Records the leaf of a payment's appended event.
    /// Confirmed bill payments whose `bill.payment` event is not in the ledger yet (a crash
    /// between the confirmation's commit and its append); [`Store::post_bill_payment`] repairs each.
    pub async fn unposted_bill_payments(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM bill_payments WHERE status = 'confirmed' AND ledger_leaf_index IS NULL ORDER BY created_at")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn payment_posted(&self, payment_id: &str, out: Vec<Outcome>) -> Result<i64> {
        let leaf = match out.into_iter().next() {
            Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => r.leaf_index,
            Some(Outcome::Rejected(e)) => return Err(StoreError::Catalog(format!("ledger refused bill payment {payment_id}: {}", e.code))),
            None => return Err(StoreError::Catalog("ledger returned no outcome".into())),
        };
        sqlx::query("UPDATE bill_payments SET ledger_leaf_index = $1 WHERE id = $2 AND ledger_leaf_index IS NULL")
            .bind(leaf)
            .bind(payment_id)
            .execute(&self.pool)
            .await?;
        Ok(leaf)
    }

    /// The communities an operator runs (its bills as payee include theirs).
    pub async fn bill_communities_of(&self, operator_user_id: &str) -> Result<BTreeSet<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT id FROM communities WHERE operator_user_id = $1")
                .bind(operator_user_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect(),
        )
    }

    /// What settlement reads of the bills of the months `from..to` (`YYYY-MM`, `to` excluded;
    /// issue 19 item 4): the months whose bills are issued, and every issued bill's total and
    /// confirmed receipts. One row per bill, no lines.
    pub async fn bill_marks(&self, from: &str, to: &str) -> Result<BillMarks> {
        let months: Vec<String> = sqlx::query_scalar("SELECT month FROM bill_months WHERE month >= $1 AND month < $2")
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT b.id, b.total_fen, \
             CAST(COALESCE((SELECT SUM(p.amount_fen) FROM bill_payments p WHERE p.bill_id = b.id AND p.status = 'confirmed'), 0) AS BIGINT) AS paid_fen \
             FROM bills b WHERE b.month >= $1 AND b.month < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut bills = HashMap::with_capacity(rows.len());
        for r in &rows {
            bills.insert(r.try_get::<String, _>("id")?, (r.try_get("total_fen")?, r.try_get("paid_fen")?));
        }
        Ok(BillMarks {
            issued_months: months.into_iter().collect(),
            bills,
        })
    }
}

/// The issued bills of a span of months as settlement sees them (issue 19 item 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillMarks {
    /// Months whose bills are issued (their ledger period is sealed).
    pub issued_months: BTreeSet<String>,
    /// Bill id → (total fen, confirmed receipts fen).
    pub bills: HashMap<String, (i64, i64)>,
}

/// `count` placeholders `$first, $first+1, …`.
fn numbered(first: usize, count: usize) -> String {
    (0..count).map(|i| format!("${}", first + i)).collect::<Vec<_>>().join(",")
}

/// The account that acts for a bill's party: an OPC's founder, else the party itself (a
/// community operator's account); `None` when neither exists.
async fn user_of_party(tx: &mut Tx, party: &str) -> Result<Option<String>> {
    let founder: Option<String> = sqlx::query_scalar("SELECT founder_user_id FROM opcs WHERE id = $1")
        .bind(party)
        .fetch_optional(&mut **tx)
        .await?;
    if founder.is_some() {
        return Ok(founder);
    }
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(party)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Decides an open dispute in `tx`: `upheld` confirms its payment (by the decider), `rejected`
/// voids it; both parties hear of it and the audit log records it. False (nothing written) when
/// the dispute is no longer open.
pub(crate) async fn resolve_open(tx: &mut Tx, actor: &Actor, dispute_id: &str, resolution: &str, note: &str) -> Result<bool> {
    let to = if resolution == "upheld" { "confirmed" } else { "void" };
    let payment_id: Option<String> = sqlx::query_scalar("SELECT payment_id FROM bill_disputes WHERE id = $1")
        .bind(dispute_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(payment_id) = payment_id else {
        return Err(StoreError::NotFound);
    };
    let uid = actor.user_id.clone().unwrap_or_default();
    let now = now_ms();
    let res = sqlx::query(
        "UPDATE bill_disputes SET status = 'resolved', resolution = $1, resolution_note = $2, resolved_by = $3, resolved_at = $4 \
         WHERE id = $5 AND status = 'open'",
    )
    .bind(resolution)
    .bind(note)
    .bind(&uid)
    .bind(now)
    .bind(dispute_id)
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE bill_payments SET status = $1, confirmed_by = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_by END, \
         confirmed_at = CASE WHEN $1 = 'confirmed' THEN $3 ELSE confirmed_at END WHERE id = $4 AND status = 'disputed'",
    )
    .bind(to)
    .bind(&uid)
    .bind(now)
    .bind(&payment_id)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query("SELECT b.id, b.payer, b.payee FROM bill_payments p JOIN bills b ON b.id = p.bill_id WHERE p.id = $1")
        .bind(&payment_id)
        .fetch_one(&mut **tx)
        .await?;
    let (bill, payer, payee): (String, String, String) = (row.try_get("id")?, row.try_get("payer")?, row.try_get("payee")?);
    for party in [&payer, &payee] {
        if let Some(user) = user_of_party(tx, party).await? {
            notify(tx, &user, "bill_dispute_resolved", "bill", &bill, resolution).await?;
        }
    }
    record_after(
        tx,
        actor,
        "bill.dispute_resolve",
        "bill_dispute",
        dispute_id,
        serde_json::json!({ "resolution": resolution, "note": note }),
        resolution.to_string(),
    )
    .await?;
    Ok(true)
}

/// Confirms a pending payment in `tx`: the status, the payer's notification and the audit row.
/// False (nothing written) when the payment is not pending.
pub(crate) async fn confirm_pending(tx: &mut Tx, actor: &Actor, payment_id: &str) -> Result<bool> {
    let res = sqlx::query(
        "UPDATE bill_payments SET status = 'confirmed', confirmed_by = $1, confirmed_at = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(actor.user_id.clone().unwrap_or_default())
    .bind(now_ms())
    .bind(payment_id)
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() != 1 {
        return Ok(false);
    }
    let row = sqlx::query("SELECT b.id, b.payer, p.amount_fen FROM bill_payments p JOIN bills b ON b.id = p.bill_id WHERE p.id = $1")
        .bind(payment_id)
        .fetch_one(&mut **tx)
        .await?;
    let (bill, payer, amount): (String, String, i64) = (row.try_get("id")?, row.try_get("payer")?, row.try_get("amount_fen")?);
    if let Some(user) = user_of_party(tx, &payer).await? {
        let title = format!("{bill} · {}", opchub_domain::Money::from_fen(amount));
        notify(tx, &user, "bill_payment_confirmed", "bill", &bill, &title).await?;
    }
    record_after(
        tx,
        actor,
        "bill.payment_confirm",
        "bill_payment",
        payment_id,
        serde_json::json!({ "status": "confirmed" }),
        "pending → confirmed".into(),
    )
    .await?;
    Ok(true)
}

/// Records the leaf of a payment's `bill.payment` event in `tx`.
pub(crate) async fn set_payment_leaf(tx: &mut Tx, payment_id: &str, leaf: i64) -> Result<()> {
    sqlx::query("UPDATE bill_payments SET ledger_leaf_index = $1 WHERE id = $2 AND ledger_leaf_index IS NULL")
        .bind(leaf)
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The `bill.payment` event of payment `p`, confirmed by `confirmed_by`.
fn payment_event(p: &BillPayment, confirmed_by: Option<&str>) -> Result<NewEvent> {
    let (month, payer, payee) = opchub_ledger::bills::parse_bill_id(&p.bill_id).ok_or(StoreError::NotFound)?;
    let occurred_at_ms = chrono::NaiveDate::parse_from_str(&p.paid_on, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .map(|t| t.and_utc().timestamp_millis() - i64::from(opchub_domain::time::BEIJING_OFFSET_S) * 1000)
        .unwrap_or(p.created_at)
        .min(now_ms());
    Ok(opchub_ledger::metering::bill_payment(&opchub_ledger::metering::BillPayment {
        payment_id: &p.id,
        bill_id: &p.bill_id,
        month: &month,
        payer: &payer,
        payee: &payee,
        amount_fen: p.amount_fen,
        reference: &p.reference,
        recorded_side: &p.recorded_side,
        occurred_at_ms,
        confirmed_by,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_confirmed_receipts() {
        assert_eq!(bill_status(false, 100, 0), "running");
        assert_eq!(bill_status(true, 100, 0), "issued");
        assert_eq!(bill_status(true, 100, 40), "partially_paid");
        assert_eq!(bill_status(true, 100, 100), "paid");
    }
}
