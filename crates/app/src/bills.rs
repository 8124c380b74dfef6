//! Monthly bills (对账单) and their payments, the use cases (issue 19 items 2 and 3).
//!
//! One bill per (OPC payer, payee, month in Asia/Shanghai), built from the ledger's billed
//! events (`opchub_ledger::bills`): the payee is the community operator for models, compute
//! and data (M2.2) and the publisher for its paid skills (M2.3). An open month's bill is
//! running (未出账) and computed live; a month's bills are issued when its ledger period is
//! sealed (at the close, or on the first read after a close made elsewhere, e.g. the CLI) and
//! never change after.
//!
//! Payments mirror cooperation payments (M2.4): the payer records paying an issued bill, the
//! payee confirms it — or records a receipt itself; either side may dispute a pending payment
//! and a committee member decides. Two-party control: whoever records a payment cannot be the
//! one who confirms it. A bill is paid when its confirmed receipts reach its total; every
//! confirmed receipt is one `bill.payment` ledger event naming the bill.
//!
//! Who sees what: the payer and the payee their bills (an operator also those billed to its
//! communities); the committee and the auditor every bill.

use crate::{App, AppError, AppResult, ErrorKind, Principal};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::bills::parse_bill_id;
use opchub_store::bills::{running_bill, Bill, BillDispute, BillLine, BillPayment, BillScope, NewBillPayment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

crate::module_errors! {
    /// What a monthly bill refuses.
    pub enum BillError {
        /// The month's bill is not issued yet.
        NotIssued => (Conflict, "bill_not_issued"),
        /// Only the bill's payer may do this.
        NotPayer => (Forbidden, "not_payer"),
        /// Only the bill's payee may do this.
        NotPayee => (Forbidden, "not_payee"),
    }
}

/// Largest payment accepted: 100 million yuan.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;

/// The statuses a bill may have.
pub const STATUSES: [&str; 4] = ["running", "issued", "partially_paid", "paid"];

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct BillQuery {
    /// `YYYY-MM`; default every month.
    pub month: Option<String>,
    /// `running`, `issued`, `partially_paid` or `paid`.
    pub status: Option<String>,
    /// `payer` (what I owe) or `payee` (what I am owed); default both.
    pub side: Option<String>,
}

/// A bill with its lines, payments and disputes, and the caller's side.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillDetail {
    pub bill: Bill,
    pub lines: Vec<BillLine>,
    pub payments: Vec<BillPayment>,
    pub disputes: Vec<BillDispute>,
    /// `payer`, `payee`, or absent for the committee and the auditor.
    pub my_side: Option<String>,
}

/// The parties a caller acts for: the account itself and its OPC (the party the gateway and
/// the Skill Store bill).
pub async fn parties_of(app: &App, p: &Principal) -> AppResult<Vec<String>> {
    let mut v = vec![p.user.id.clone()];
    let party = crate::keys::billing_party(app, &p.user.id).await?;
    if !v.contains(&party) {
        v.push(party);
    }
    Ok(v)
}

fn staff(p: &Principal) -> bool {
    matches!(p.role(), Role::Committee | Role::Auditor)
}

/// Issues the bills of every sealed month not issued yet: months sealed before bills existed,
/// or a close whose issuing failed after the seal (closing issues them itself, in the store).
pub async fn issue_sealed(app: &App, p: Option<&Principal>) -> AppResult<()> {
    let actor = p.map(|p| p.actor()).unwrap_or_else(opchub_store::Actor::system);
    for month in app.store.bill_months_to_issue().await? {
        app.store.issue_bills(&actor, &month).await?;
    }
    Ok(())
}

fn month_of(q: Option<&str>) -> AppResult<Option<String>> {
    match q.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => opchub_ledger::event::parse_period(v)
            .filter(|m| m == v)
            .map(Some)
            .ok_or_else(|| AppError::field("month", "invalid_period")),
    }
}

/// Running bills of the open months: of the payers (or, with `as_payee`, the payees) given, or
/// everyone's with `None`.
async fn running(app: &App, month: Option<&str>, parties: Option<&[String]>, as_payee: bool) -> AppResult<Vec<(Bill, Vec<BillLine>)>> {
    let mut counterparties: Vec<String> = parties.map(<[String]>::to_vec).unwrap_or_default();
    if as_payee {
        if let Some(ps) = parties {
            for x in ps {
                counterparties.extend(app.store.bill_communities_of(x).await?);
            }
        }
    }
    let months = match month {
        Some(m) => vec![m.to_string()],
        None => {
            let who = parties.map(|_| counterparties.as_slice());
            app.store.bill_usage_months(who, as_payee).await?
        }
    };
    let mut out = vec![];
    for m in months {
        if app.store.bill_month_sealed(&m).await? {
            continue;
        }
        let scope = match parties {
            None => BillScope::All,
            Some(_) if as_payee => BillScope::Counterparties(&counterparties),
            Some(ps) => BillScope::Payers(ps),
        };
        let acc = app.store.bill_sums(&m, scope).await?;
        for ((month, payer, payee), lines) in &acc.bills {
            let keep = match parties {
                None => true,
                Some(ps) if as_payee => ps.contains(payee),
                Some(ps) => ps.contains(payer),
            };
            if keep {
                out.push(running_bill(month, payer, payee, lines));
            }
        }
    }
    Ok(out)
}

/// The caller's bills (as payer, payee or both), or every bill for the committee and the
/// auditor; filtered by month and status; newest month first.
pub async fn list_for(app: &App, p: &Principal, q: &BillQuery) -> AppResult<Vec<Bill>> {
    let month = month_of(q.month.as_deref())?;
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s) {
            return Err(AppError::field("status", "unknown_status"));
        }
    }
    let (payer, payee) = match q.side.as_deref().unwrap_or("") {
        "" => (true, true),
        "payer" => (true, false),
        "payee" => (false, true),
        _ => return Err(AppError::field("side", "unknown_side")),
    };
    issue_sealed(app, Some(p)).await?;
    let mut bills: Vec<Bill> = vec![];
    if staff(p) {
        bills.extend(app.store.issued_bills(month.as_deref(), None, None).await?);
        bills.extend(running(app, month.as_deref(), None, false).await?.into_iter().map(|(b, _)| b));
    } else {
        let parties = parties_of(app, p).await?;
        bills.extend(
            app.store
                .issued_bills(month.as_deref(), payer.then_some(&parties[..]), payee.then_some(&parties[..]))
                .await?,
        );
        if payer {
            bills.extend(
                running(app, month.as_deref(), Some(&parties), false)
                    .await?
                    .into_iter()
                    .map(|(b, _)| b),
            );
        }
        if payee {
            for (b, _) in running(app, month.as_deref(), Some(&parties), true).await? {
                if !bills.iter().any(|x| x.id == b.id) {
                    bills.push(b);
                }
            }
        }
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        bills.retain(|b| b.status == s);
    }
    bills.sort_by(|a, b| b.month.cmp(&a.month).then(a.payer.cmp(&b.payer)).then(a.payee.cmp(&b.payee)));
    bills.dedup_by(|a, b| a.id == b.id);
    Ok(bills)
}

/// The caller's side of a bill; `None` for staff; not found for anyone else.
async fn side_of(app: &App, p: &Principal, payer: &str, payee: &str) -> AppResult<Option<&'static str>> {
    let parties = parties_of(app, p).await?;
    if parties.iter().any(|x| x == payer) {
        return Ok(Some("payer"));
    }
    if parties.iter().any(|x| x == payee) {
        return Ok(Some("payee"));
    }
    if staff(p) {
        return Ok(None);
    }
    Err(AppError::not_found())
}

/// Whether the caller may read bill `id`: one of its two parties, or the committee and the
/// auditor (who read every bill).
pub(crate) async fn may_read(app: &App, p: &Principal, id: &str) -> AppResult<bool> {
    let Some((_, payer, payee)) = parse_bill_id(id) else {
        return Ok(false);
    };
    match side_of(app, p, &payer, &payee).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// One bill: issued (stored) when its month is sealed, else running (computed now).
pub async fn bill_for(app: &App, p: &Principal, id: &str) -> AppResult<BillDetail> {
    let (month, payer, payee) = parse_bill_id(id).ok_or_else(AppError::not_found)?;
    let side = side_of(app, p, &payer, &payee).await?;
    issue_sealed(app, Some(p)).await?;
    let (bill, lines, payments, disputes) = if app.store.bill_month_sealed(&month).await? {
        let (bill, lines) = app.store.issued_bill(id).await?;
        // Repair: a confirmed payment whose ledger append did not finish (crash) is posted now.
        for pay in app.store.bill_payments(id).await? {
            if pay.status == "confirmed" && pay.ledger_leaf_index.is_none() {
                post(app, &pay.id).await?;
            }
        }
        (
            bill,
            lines,
            app.store.bill_payments(id).await?,
            app.store.bill_disputes_of(id).await?,
        )
    } else {
        let payers = [payer.clone()];
        let acc = app.store.bill_sums(&month, BillScope::Payers(&payers)).await?;
        let lines = acc
            .bills
            .get(&(month.clone(), payer.clone(), payee.clone()))
            .ok_or_else(AppError::not_found)?;
        let (bill, lines) = running_bill(&month, &payer, &payee, lines);
        (bill, lines, vec![], vec![])
    };
    Ok(BillDetail {
        bill,
        lines,
        payments,
        disputes,
        my_side: side.map(str::to_string),
    })
}

/// A payment as typed (unvalidated).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PaymentInput {
    pub amount_fen: Option<i64>,
    /// `YYYY-MM-DD`: after the bill's month, not in the future.
    pub paid_on: Option<String>,
    /// The transfer's reference (bank serial, receipt number); used once per payee.
    pub reference: Option<String>,
    pub note: Option<String>,
    /// An optional receipt file (PDF, PNG, JPEG or plain text, at most 2 MiB; its bytes must
    /// be what its type says).
    #[serde(default)]
    pub receipt: Option<crate::demands::FileUpload>,
}

/// Upper-cased, spaces removed: `ab 12` and `AB12` are the same reference.
pub fn normalize_reference(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

/// Validates a payment of a bill of `month` (paid on or after the first day after the month,
/// not after today in Beijing).
pub fn check_payment(month: &str, i: &PaymentInput, side: &'static str) -> AppResult<NewBillPayment> {
    let mut c = Checker::new();
    match i.amount_fen {
        None | Some(0) => c.fail("amount_fen", "required"),
        Some(a) if a < 0 => c.fail("amount_fen", "negative_amount"),
        Some(a) if a > MAX_AMOUNT_FEN => c.fail("amount_fen", "amount_out_of_range"),
        _ => {}
    }
    let paid_on = i.paid_on.as_deref().unwrap_or("").trim().to_string();
    let earliest = opchub_ledger::bills::day_after_month(month).unwrap_or_default();
    match opchub_domain::time::Day::parse(&paid_on) {
        Err(_) if paid_on.is_empty() => c.fail("paid_on", "required"),
        Err(opchub_domain::time::DateError::OutOfRange) => c.fail("paid_on", "date_out_of_range"),
        Err(_) => c.fail("paid_on", "invalid_date"),
        Ok(d) if d.date() > opchub_domain::time::beijing_today() => c.fail("paid_on", "date_in_future"),
        Ok(_) if paid_on < earliest => c.fail("paid_on", "paid_before_bill_month_end"),
        Ok(_) => {}
    }
    let raw = c.text("reference", i.reference.as_deref(), 1, 64);
    let reference = normalize_reference(&raw);
    if !raw.is_empty() && !reference.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch)) {
        c.fail("reference", "invalid_reference");
    }
    let note = match i.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => String::new(),
        Some(n) => c.text("note", Some(&n.replace(['\n', '\r'], " ")), 1, 500),
    };
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let receipt = match &i.receipt {
        None => None,
        Some(f) => {
            let bytes = crate::demands::decode_upload(f).map_err(|e| e.refield("receipt"))?;
            let file = opchub_store::demands::FileIn {
                name: &f.name,
                content_type: &f.content_type,
                bytes: &bytes,
            };
            crate::demands::check_file(&file).map_err(|e| e.refield("receipt"))?;
            Some(opchub_store::bills::ReceiptFile {
                name: f.name.trim().to_string(),
                content_type: f.content_type.clone(),
                bytes,
            })
        }
    };
    Ok(NewBillPayment {
        amount_fen: i.amount_fen.unwrap_or(0),
        paid_on,
        reference,
        note,
        side,
        receipt,
    })
}

/// The bill of `id` if the caller is on `side` of it (else not found, or `not_payer` /
/// `not_payee` for the other party), refused with `bill_not_issued` while it runs.
async fn issued_on_side(app: &App, p: &Principal, id: &str, side: &str) -> AppResult<String> {
    let (month, payer, payee) = parse_bill_id(id).ok_or_else(AppError::not_found)?;
    match side_of(app, p, &payer, &payee).await? {
        Some(s) if s == side => {}
        Some(_) | None => {
            return Err(if side == "payer" {
                BillError::NotPayer
            } else {
                BillError::NotPayee
            }
            .into())
        }
    }
    issue_sealed(app, Some(p)).await?;
    if !app.store.bill_month_sealed(&month).await? {
        return Err(BillError::NotIssued.into());
    }
    match app.store.issued_bill(id).await {
        Ok(_) => Ok(month),
        Err(opchub_store::StoreError::NotFound) => Err(AppError::not_found()),
        Err(e) => Err(e.into()),
    }
}

/// The payer records paying an issued bill (pending until the payee confirms).
pub async fn record_payment_for(app: &App, p: &Principal, id: &str, i: &PaymentInput) -> AppResult<BillPayment> {
    let month = issued_on_side(app, p, id, "payer").await?;
    let np = check_payment(&month, i, "payer")?;
    Ok(app.store.record_bill_payment(&p.actor(), id, &np).await?)
}

/// The payee records a receipt directly: confirmed with its ledger event in one commit.
pub async fn record_receipt_for(app: &App, p: &Principal, id: &str, i: &PaymentInput) -> AppResult<BillPayment> {
    let month = issued_on_side(app, p, id, "payee").await?;
    let np = check_payment(&month, i, "payee")?;
    let w = crate::ledger::writer(app)?;
    Ok(app.store.record_and_post_bill_receipt(w, &p.actor(), id, &np).await?)
}

async fn post(app: &App, payment_id: &str) -> AppResult<i64> {
    let w = crate::ledger::writer(app)?;
    Ok(app.store.post_bill_payment(w, payment_id).await?)
}

/// A payment of a bill the caller is a party to, and the caller's side; anyone else: not found.
async fn party_payment(app: &App, p: &Principal, payment_id: &str) -> AppResult<(BillPayment, &'static str)> {
    let pay = app.store.bill_payment(payment_id).await?;
    let (_, payer, payee) = parse_bill_id(&pay.bill_id).ok_or_else(AppError::not_found)?;
    match side_of(app, p, &payer, &payee).await? {
        Some(side) => Ok((pay, side)),
        None => Err(AppError::not_found()),
    }
}

/// The payee confirms a payment the payer recorded; the confirmed payment becomes one
/// `bill.payment` ledger event. The payer cannot confirm its own payment (`not_payee`).
pub async fn confirm_for(app: &App, p: &Principal, payment_id: &str) -> AppResult<BillPayment> {
    let (_, side) = party_payment(app, p, payment_id).await?;
    if side != "payee" {
        return Err(BillError::NotPayee.into());
    }
    // The confirmation and its ledger event commit together (one writer transaction).
    let w = crate::ledger::writer(app)?;
    app.store.confirm_and_post_bill_payment(w, &p.actor(), payment_id).await?;
    Ok(app.store.bill_payment(payment_id).await?)
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ReasonRequest {
    pub reason: Option<String>,
}

/// Either side disputes a pending payment (a confirmed one cannot be: `payment_not_pending`).
pub async fn dispute_for(app: &App, p: &Principal, payment_id: &str, r: &ReasonRequest) -> AppResult<BillDispute> {
    party_payment(app, p, payment_id).await?;
    let mut c = Checker::new();
    let reason = c.text(
        "reason",
        r.reason.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        1000,
    );
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app.store.dispute_bill_payment(&p.actor(), payment_id, &reason).await?)
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct DisputeQuery {
    /// Only open disputes (default true).
    pub open: Option<bool>,
}

/// Disputes over bill payments, for the committee and the auditor.
pub async fn disputes_for(app: &App, open_only: bool) -> AppResult<Vec<BillDispute>> {
    Ok(app.store.bill_disputes(open_only).await?)
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ResolveRequest {
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub note: Option<String>,
}

/// A committee member decides a dispute; an upheld payment is posted to the ledger.
pub async fn resolve_for(app: &App, p: &Principal, dispute_id: &str, r: &ResolveRequest) -> AppResult<BillDispute> {
    let mut c = Checker::new();
    let note = c.text("note", r.note.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(), 2, 1000);
    let resolution = r.resolution.as_deref().unwrap_or("").trim().to_string();
    if !matches!(resolution.as_str(), "upheld" | "rejected") {
        c.fail("resolution", "unknown_resolution");
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    // An upheld payment is confirmed together with its ledger event (one writer commit).
    if resolution == "upheld" {
        let w = crate::ledger::writer(app)?;
        return Ok(app.store.uphold_and_post_bill_dispute(w, &p.actor(), dispute_id, &note).await?);
    }
    Ok(app.store.resolve_bill_dispute(&p.actor(), dispute_id, &resolution, &note).await?)
}

/// The bill a payment belongs to (the pages go back to it).
pub async fn payment_bill(app: &App, payment_id: &str) -> AppResult<String> {
    Ok(app.store.bill_payment(payment_id).await?.bill_id)
}

/// The bill a dispute is about.
pub async fn dispute_bill(app: &App, dispute_id: &str) -> AppResult<String> {
    Ok(app.store.bill_dispute(dispute_id).await?.bill_id)
}

/// The column headers of a bill's lines (CSV and XLSX), Chinese by default.
fn line_headers(en: bool) -> [&'static str; 9] {
    if en {
        [
            "line",
            "kind",
            "item",
            "price version",
            "unit",
            "quantity",
            "list (fen)",
            "charged (fen)",
            "corrects leaf",
        ]
    } else {
        [
            "行号",
            "类型",
            "项目",
            "价格版本",
            "单位",
            "数量",
            "标价（分）",
            "应付（分）",
            "更正的事件",
        ]
    }
}

/// The bill's header rows: (label, value).
fn meta_rows(b: &Bill, en: bool) -> Vec<(&'static str, String)> {
    let meta: [(&str, &str, String); 6] = [
        ("bill", "对账单", b.id.clone()),
        ("month", "月份", b.month.clone()),
        ("payer", "付款方", b.payer.clone()),
        ("payee", "收款方", b.payee.clone()),
        ("status", "状态", b.status.clone()),
        ("paid (fen)", "已确认收款（分）", b.paid_fen.to_string()),
    ];
    meta.into_iter().map(|(e, z, v)| (if en { e } else { z }, v)).collect()
}

/// One bill as CSV (the csv crate): a header of the bill, its lines and the total; Chinese
/// headers by default, English with `en`.
pub fn csv_of(d: &BillDetail, en: bool) -> AppResult<Vec<u8>> {
    // The bill's header rows have two cells, the lines nine.
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(vec![]);
    let err = |e: csv::Error| AppError::internal_from("bill csv", e);
    let b = &d.bill;
    for (k, v) in meta_rows(b, en) {
        w.write_record([k, v.as_str()]).map_err(err)?;
    }
    w.write_record(line_headers(en)).map_err(err)?;
    for l in &d.lines {
        w.write_record([
            l.line_no.to_string(),
            l.kind.clone(),
            l.item.clone(),
            l.price_version.clone(),
            l.unit.clone(),
            l.quantity.to_string(),
            l.list_fen.to_string(),
            l.charged_fen.to_string(),
            l.corrects_leaf_index.map(|i| i.to_string()).unwrap_or_default(),
        ])
        .map_err(err)?;
    }
    let total = if en { "total" } else { "合计" };
    w.write_record([
        total.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        b.list_fen.to_string(),
        b.total_fen.to_string(),
        String::new(),
    ])
    .map_err(err)?;
    w.into_inner().map_err(|e| AppError::internal_from("bill csv", e))
}

/// One bill as an Excel workbook (issue 19 item 5): the CSV's header rows and columns, the
/// quantities and fen as numeric cells, then list and charged in yuan (numeric, two
/// decimals), and a totals row; Chinese headers by default, English with `en`.
pub fn xlsx_of(d: &BillDetail, en: bool) -> AppResult<Vec<u8>> {
    use opchub_settle::export::{xlsx_int, xlsx_yuan};
    use rust_xlsxwriter::{Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| AppError::internal_from("bill xlsx", e);
    let mut wb = Workbook::new();
    let (bold, whole, yuan) = (
        Format::new().set_bold(),
        Format::new().set_num_format("0"),
        Format::new().set_num_format("#,##0.00"),
    );
    let ws = wb.add_worksheet();
    ws.set_name(if en { "bill" } else { "对账单" }).map_err(err)?;
    let b = &d.bill;
    let meta = meta_rows(b, en);
    for (r, (k, v)) in (0u32..).zip(&meta) {
        ws.write_string_with_format(r, 0, *k, &bold).map_err(err)?;
        ws.write_string(r, 1, v.as_str()).map_err(err)?;
    }
    let head = meta.len() as u32 + 1;
    let mut headers: Vec<&str> = line_headers(en).to_vec();
    headers.extend(if en {
        ["list (yuan)", "charged (yuan)"]
    } else {
        ["标价（元）", "应付（元）"]
    });
    for (c, h) in (0u16..).zip(&headers) {
        ws.write_string_with_format(head, c, *h, &bold).map_err(err)?;
    }
    let mut row = head + 1;
    for l in &d.lines {
        xlsx_int(ws, row, 0, l.line_no, &whole).map_err(err)?;
        for (c, v) in (1u16..).zip([&l.kind, &l.item, &l.price_version, &l.unit]) {
            ws.write_string(row, c, v.as_str()).map_err(err)?;
        }
        xlsx_int(ws, row, 5, l.quantity, &whole).map_err(err)?;
        xlsx_int(ws, row, 6, l.list_fen, &whole).map_err(err)?;
        xlsx_int(ws, row, 7, l.charged_fen, &whole).map_err(err)?;
        if let Some(i) = l.corrects_leaf_index {
            xlsx_int(ws, row, 8, i, &whole).map_err(err)?;
        }
        xlsx_yuan(ws, row, 9, l.list_fen, &yuan).map_err(err)?;
        xlsx_yuan(ws, row, 10, l.charged_fen, &yuan).map_err(err)?;
        row += 1;
    }
    ws.write_string_with_format(row, 0, if en { "total" } else { "合计" }, &bold)
        .map_err(err)?;
    xlsx_int(ws, row, 6, b.list_fen, &whole).map_err(err)?;
    xlsx_int(ws, row, 7, b.total_fen, &whole).map_err(err)?;
    xlsx_yuan(ws, row, 9, b.list_fen, &yuan).map_err(err)?;
    xlsx_yuan(ws, row, 10, b.total_fen, &yuan).map_err(err)?;
    ws.set_column_width(0, 16).map_err(err)?;
    ws.set_column_width(2, 24).map_err(err)?;
    ws.set_freeze_panes(head + 1, 0).map_err(err)?;
    wb.save_to_buffer().map_err(err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn input(amount: i64, paid_on: &str, reference: &str) -> PaymentInput {
        PaymentInput {
            amount_fen: Some(amount),
            paid_on: Some(paid_on.into()),
            reference: Some(reference.into()),
            note: None,
            receipt: None,
        }
    }

    #[test]
    fn a_payment_is_dated_after_its_month_and_not_in_the_future() {
        let e = check_payment("2026-01", &input(100, "2026-01-31", "R1"), "payer").err().unwrap();
        assert_eq!(e.fields["paid_on"], "paid_before_bill_month_end");
        assert!(check_payment("2026-01", &input(100, "2026-02-01", "r 1"), "payer").is_ok());
        let tomorrow = (opchub_domain::time::beijing_today() + chrono::Days::new(1))
            .format("%Y-%m-%d")
            .to_string();
        let e = check_payment("2026-01", &input(100, &tomorrow, "R1"), "payer").err().unwrap();
        assert_eq!(e.fields["paid_on"], "date_in_future");
        let e = check_payment("2026-01", &input(0, "2026-02-01", "R1"), "payer").err().unwrap();
        assert_eq!(e.fields["amount_fen"], "required");
        assert_eq!(
            check_payment("2026-01", &input(5, "2026-02-01", "ab 12"), "payer")
                .unwrap()
                .reference,
            "AB12"
        );
    }
}

// ---------------------------------------------------------------- receivables and ageing

/// Days after its month ends that an issued bill is due (the policy is silent; a month, as
/// commercial invoices in Beijing usually are).
pub const DUE_DAYS: i64 = 30;

/// When a month's bills fall due: the month's last day plus [`DUE_DAYS`].
pub fn due_on(month: &str) -> Option<chrono::NaiveDate> {
    opchub_ledger::bills::day_after_month(month)
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .and_then(|d| d.pred_opt())
        .map(|last| last + chrono::Duration::days(DUE_DAYS))
}

/// What a payee is owed for one month (issue 19 item 5): its issued bills of that month, what
/// they total, what is confirmed received, and how overdue the rest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Receivable {
    pub payee: String,
    pub month: String,
    pub bills: i64,
    /// Bills not yet paid and confirmed.
    pub unpaid_bills: i64,
    pub billed_fen: i64,
    /// Confirmed receipts: what counts for M2.2 and M2.3 (usage on paid bills only).
    pub paid_fen: i64,
    /// Billed and not confirmed received: its usage does not count yet.
    pub outstanding_fen: i64,
    /// `YYYY-MM-DD`: the month's last day plus [`DUE_DAYS`].
    pub due_on: String,
    /// Days past `due_on` while something is outstanding (0 when not due or settled).
    pub days_overdue: i64,
    /// `settled`, `not_due`, `overdue_30` (1–30 days), `overdue_60` (31–60), `overdue_more`.
    pub ageing: String,
    /// The clause whose basis the paid part is: `M2.2` for a community operator (models,
    /// compute, data), `M2.3` for a publisher OPC (paid skills).
    pub clause: String,
}

/// Groups issued bills by (payee, month), newest month first, aged at `today` (pure).
pub fn receivables(bills: &[Bill], today: chrono::NaiveDate) -> Vec<Receivable> {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<(String, String), Vec<&Bill>> = BTreeMap::new();
    for b in bills.iter().filter(|b| b.status != "running") {
        groups.entry((b.payee.clone(), b.month.clone())).or_default().push(b);
    }
    let mut out: Vec<Receivable> = groups
        .into_iter()
        .map(|((payee, month), bs)| {
            let billed_fen: i64 = bs.iter().map(|b| b.total_fen).sum();
            let paid_fen: i64 = bs.iter().map(|b| b.paid_fen.min(b.total_fen)).sum();
            let outstanding_fen = billed_fen - paid_fen;
            let due = due_on(&month);
            let days_overdue = match due {
                Some(due) if outstanding_fen > 0 && today > due => (today - due).num_days(),
                _ => 0,
            };
            let ageing = match (outstanding_fen, days_overdue) {
                (0, _) => "settled",
                (_, 0) => "not_due",
                (_, 1..=30) => "overdue_30",
                (_, 31..=60) => "overdue_60",
                _ => "overdue_more",
            };
            Receivable {
                payee,
                month,
                bills: bs.len() as i64,
                unpaid_bills: bs.iter().filter(|b| b.paid_fen < b.total_fen).count() as i64,
                billed_fen,
                paid_fen,
                outstanding_fen,
                due_on: due.map(|d| d.to_string()).unwrap_or_default(),
                days_overdue,
                ageing: ageing.to_string(),
                clause: String::new(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.month.cmp(&a.month).then(a.payee.cmp(&b.payee)));
    out
}

/// The caller's receivables as payee (an operator's include its communities' bills), or every
/// payee's for the committee and the auditor (paid against billed, per payee and month).
pub async fn receivables_for(app: &App, p: &Principal) -> AppResult<Vec<Receivable>> {
    let q = BillQuery {
        side: (!staff(p)).then(|| "payee".to_string()),
        ..Default::default()
    };
    let bills = list_for(app, p, &q).await?;
    let mut out = receivables(&bills, opchub_domain::time::beijing_today());
    let mut clause_of: std::collections::BTreeMap<String, &'static str> = std::collections::BTreeMap::new();
    for r in &mut out {
        if !clause_of.contains_key(&r.payee) {
            let publisher = app.store.opc(&r.payee).await.is_ok();
            clause_of.insert(r.payee.clone(), if publisher { "M2.3" } else { "M2.2" });
        }
        r.clause = clause_of[&r.payee].to_string();
    }
    Ok(out)
}

#[cfg(test)]
mod receivable_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bill(month: &str, payer: &str, payee: &str, total: i64, paid: i64, issued: bool) -> Bill {
        Bill {
            id: opchub_ledger::bills::bill_id(month, payer, payee),
            month: month.into(),
            payer: payer.into(),
            payee: payee.into(),
            status: opchub_store::bills::bill_status(issued, total, paid).into(),
            list_fen: total,
            total_fen: total,
            events: 1,
            issued_at: issued.then_some(0),
            paid_fen: paid,
            recorded_fen: paid,
            outstanding_fen: total - paid,
        }
    }

    /// Issue 19 item 5: a payee's month sums its bills; what is unpaid 30 days after the month
    /// ends is overdue, aged in buckets; running bills are not receivables yet.
    #[test]
    fn receivables_sum_per_payee_and_month_and_age_after_the_due_date() {
        let bills = vec![
            bill("2027-03", "a", "op", 1_000, 1_000, true),
            bill("2027-03", "b", "op", 500, 200, true),
            bill("2027-04", "a", "op", 700, 0, true),
            bill("2027-05", "a", "op", 900, 0, false),
            bill("2027-03", "a", "pub", 15, 15, true),
        ];
        let today = chrono::NaiveDate::from_ymd_opt(2027, 5, 20).unwrap();
        let r = receivables(&bills, today);
        let by = |payee: &str, month: &str| r.iter().find(|x| x.payee == payee && x.month == month).unwrap();
        let m = by("op", "2027-03");
        assert_eq!(
            (m.bills, m.unpaid_bills, m.billed_fen, m.paid_fen, m.outstanding_fen),
            (2, 1, 1_500, 1_200, 300)
        );
        // March ends on the 31st: due April 30th, 20 days overdue on May 20th.
        assert_eq!(
            (m.due_on.as_str(), m.days_overdue, m.ageing.as_str()),
            ("2027-04-30", 20, "overdue_30")
        );
        let a = by("op", "2027-04");
        assert_eq!((a.due_on.as_str(), a.days_overdue, a.ageing.as_str()), ("2027-05-30", 0, "not_due"));
        assert_eq!(by("pub", "2027-03").ageing, "settled");
        assert!(r.iter().all(|x| x.month != "2027-05"), "a running bill is no receivable");
        let later = receivables(&bills, chrono::NaiveDate::from_ymd_opt(2027, 7, 15).unwrap());
        assert_eq!(
            later.iter().find(|x| x.month == "2027-03" && x.payee == "op").unwrap().ageing,
            "overdue_more"
        );
        assert_eq!(later.iter().find(|x| x.month == "2027-04").unwrap().ageing, "overdue_60");
    }
}
