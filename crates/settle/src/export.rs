//! What the finance bureau receives for an approved batch: one row per payable line, as CSV and
//! as XLSX (amounts in yuan as text with two decimals, and in fen as integers — never floats).

use opchub_domain::Money;
use opchub_store::settlement::{Batch, Line};

pub const COLUMNS: [&str; 9] = [
    "batch",
    "clause",
    "beneficiary_id",
    "name",
    "uscc",
    "amount",
    "paid_fen",
    "confirmation",
    "policy_version",
];

fn rows<'a>(batch: &'a Batch, lines: &'a [Line]) -> impl Iterator<Item = [String; 9]> + 'a {
    // Approved lines (what finance is to pay); what it paid is on the line once it pays.
    lines.iter().filter(|l| l.approved_fen.unwrap_or(0) > 0).map(move |l| {
        let paid = l.paid_fen.or(l.approved_fen).unwrap_or(0);
        [
            batch.id.clone(),
            l.clause.clone(),
            l.beneficiary.clone(),
            l.beneficiary_name.clone(),
            l.uscc.clone().unwrap_or_default(),
            Money::from_fen(paid).to_string(),
            paid.to_string(),
            l.confirmation.clone(),
            batch.policy_version.clone(),
        ]
    })
}

pub fn csv(batch: &Batch, lines: &[Line]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(COLUMNS)?;
    for r in rows(batch, lines) {
        w.write_record(&r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

pub fn xlsx(batch: &Batch, lines: &[Line]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("settlement")?;
    for (c, h) in COLUMNS.iter().enumerate() {
        ws.write_string(0, c as u16, *h)?;
    }
    for (i, r) in rows(batch, lines).enumerate() {
        let row = i as u32 + 1;
        for (c, v) in r.iter().enumerate() {
            if c == 6 {
                // Whole fen fit exactly in a spreadsheet number (< 2^53).
                ws.write_number(row, c as u16, v.parse::<i64>().unwrap_or(0) as f64)?;
            } else {
                ws.write_string(row, c as u16, v)?;
            }
        }
    }
    wb.save_to_buffer()
}
