//! What the finance bureau receives for an approved batch (F1: the district finance bureau
//! pays): one row per payable line with the beneficiary's name, USCC and bank account, and a
//! totals row; as CSV and as XLSX. Amounts are in yuan with two decimals and in fen as integers,
//! computed from integer fen (never summed as floats): in the XLSX both are numeric cells (yuan
//! formatted `#,##0.00`; whole fen and fen/100 are exact in a spreadsheet's double).
//!
//! Headers and labels are the caller's ([`Labels`], from the message catalogs in the reader's
//! language). The store's `Line`/`Batch` are read in one place, [`rows`], so new columns
//! (entitlement, prior payments, payment step) are added there and in [`COLUMN_KEYS`].

use opchub_store::party_facts::BankAccount;
use opchub_store::settlement::{Batch, Line};
use std::collections::BTreeMap;

/// The columns, by the catalog key suffix of their header (`export.<key>`).
pub const COLUMN_KEYS: [&str; 12] = [
    "batch",
    "clause",
    "beneficiary_id",
    "beneficiary_name",
    "uscc",
    "account_name",
    "bank",
    "account_number",
    "amount_yuan",
    "amount_fen",
    "confirmation",
    "policy_version",
];

/// Index of the yuan and fen columns.
const YUAN: usize = 8;
const FEN: usize = 9;

/// What the reader reads: the column headers (in [`COLUMN_KEYS`] order), the totals row's
/// label, the sheet's name, and the confirmation states (`confirmed`, `pending`, `declined`).
#[derive(Debug, Clone)]
pub struct Labels {
    pub columns: Vec<String>,
    pub total: String,
    pub sheet: String,
    /// The download's name before `-<year>-<batch>.<ext>`.
    pub file: String,
    pub confirmation: BTreeMap<String, String>,
}

impl Labels {
    /// Labels looked up by catalog key: `export.<column>`, `export.total`, `export.sheet`, `export.file`,
    /// `export.conf_<state>`.
    pub fn from_lookup(t: impl Fn(&str) -> String) -> Labels {
        Labels {
            columns: COLUMN_KEYS.iter().map(|k| t(&format!("export.{k}"))).collect(),
            total: t("export.total"),
            sheet: t("export.sheet"),
            file: t("export.file"),
            confirmation: ["confirmed", "pending", "declined", "lapsed"]
                .iter()
                .map(|s| (s.to_string(), t(&format!("export.conf_{s}"))))
                .collect(),
        }
    }

    /// The column keys themselves (tests, tools without catalogs).
    pub fn keys() -> Labels {
        Labels::from_lookup(|k| k.trim_start_matches("export.").to_string())
    }
}

/// One payable line as finance reads it: the adapter between the store's model and the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub batch: String,
    pub clause: String,
    pub beneficiary_id: String,
    pub beneficiary_name: String,
    pub uscc: String,
    pub bank: Option<BankAccount>,
    /// What is paid, in fen.
    pub amount_fen: i64,
    pub confirmation: String,
    pub policy_version: String,
}

/// The payable lines of `batch` (approved more than zero), each with its beneficiary's bank
/// account; the amount is what finance paid once it paid, else what approval granted.
pub fn rows(batch: &Batch, lines: &[Line], banks: &BTreeMap<String, BankAccount>) -> Vec<Row> {
    lines
        .iter()
        .filter(|l| l.approved_fen.unwrap_or(0) > 0)
        .map(|l| Row {
            batch: batch.id.clone(),
            clause: l.clause.clone(),
            beneficiary_id: l.beneficiary.clone(),
            beneficiary_name: l.beneficiary_name.clone(),
            uscc: l.uscc.clone().unwrap_or_default(),
            bank: banks.get(&l.beneficiary).cloned(),
            amount_fen: l.paid_fen.or(l.approved_fen).unwrap_or(0),
            confirmation: l.confirmation.clone(),
            policy_version: batch.policy_version.clone(),
        })
        .collect()
}

/// Fen as yuan with two decimals, no grouping (`1234567` → `12345.67`, `-5` → `-0.05`).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn cells(r: &Row, l: &Labels) -> [String; 12] {
    let b = r.bank.as_ref();
    [
        r.batch.clone(),
        r.clause.clone(),
        r.beneficiary_id.clone(),
        r.beneficiary_name.clone(),
        r.uscc.clone(),
        b.map(|b| b.account_name.clone()).unwrap_or_default(),
        b.map(|b| b.bank.clone()).unwrap_or_default(),
        b.map(|b| b.account_number.clone()).unwrap_or_default(),
        yuan(r.amount_fen),
        r.amount_fen.to_string(),
        l.confirmation
            .get(&r.confirmation)
            .cloned()
            .unwrap_or_else(|| r.confirmation.clone()),
        r.policy_version.clone(),
    ]
}

fn total(rows: &[Row]) -> i64 {
    rows.iter().map(|r| r.amount_fen).sum()
}

/// UTF-8 CSV with a byte-order mark (so spreadsheet programs read the Chinese headers), the
/// header row, one row per payable line, and a totals row.
pub fn csv(rows: &[Row], labels: &Labels) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(&labels.columns)?;
    for r in rows {
        w.write_record(cells(r, labels))?;
    }
    let t = total(rows);
    let mut last = vec![String::new(); COLUMN_KEYS.len()];
    last[0] = labels.total.clone();
    last[YUAN] = yuan(t);
    last[FEN] = t.to_string();
    w.write_record(&last)?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

pub fn xlsx(rows: &[Row], labels: &Labels) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut wb = Workbook::new();
    let money = Format::new().set_num_format("#,##0.00");
    let whole = Format::new().set_num_format("0");
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name(&labels.sheet)?;
    for (c, h) in labels.columns.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        for (c, v) in cells(r, labels).iter().enumerate() {
            match c {
                // Whole fen fit exactly in a double (< 2^53); fen/100 is the nearest double to the yuan amount.
                YUAN => ws.write_number_with_format(row, c as u16, r.amount_fen as f64 / 100.0, &money)?,
                FEN => ws.write_number_with_format(row, c as u16, r.amount_fen as f64, &whole)?,
                _ => ws.write_string(row, c as u16, v)?,
            };
        }
    }
    let last = rows.len() as u32 + 1;
    let t = total(rows);
    ws.write_string_with_format(last, 0, &labels.total, &bold)?;
    ws.write_number_with_format(last, YUAN as u16, t as f64 / 100.0, &money)?;
    ws.write_number_with_format(last, FEN as u16, t as f64, &whole)?;
    ws.set_column_width(3, 28)?;
    ws.set_column_width(4, 22)?;
    ws.set_column_width(6, 24)?;
    ws.set_column_width(7, 24)?;
    ws.set_column_width(YUAN as u16, 16)?;
    wb.save_to_buffer()
}

/// Integers above 2^53 do not survive a spreadsheet's doubles; those are written as text.
pub const EXACT_IN_F64: u128 = 1 << 53;

pub fn xlsx_int(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    v: impl Into<i128>,
    f: &rust_xlsxwriter::Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let v: i128 = v.into();
    if v.unsigned_abs() <= EXACT_IN_F64 {
        ws.write_number_with_format(row, col, v as f64, f)?;
    } else {
        ws.write_string(row, col, v.to_string())?;
    }
    Ok(())
}

/// Yuan for display: the double nearest to fen/100, from an exactly representable fen
/// count (the exact fen are in their own columns); beyond that, the exact decimal as text.
pub fn xlsx_yuan(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    fen: impl Into<i128>,
    f: &rust_xlsxwriter::Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let fen: i128 = fen.into();
    if fen.unsigned_abs() <= EXACT_IN_F64 {
        ws.write_number_with_format(row, col, fen as f64 / 100.0, f)?;
    } else {
        let sign = if fen < 0 { "-" } else { "" };
        ws.write_string(
            row,
            col,
            format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100),
        )?;
    }
    Ok(())
}

/// `Content-Disposition` for a download named `name`: an ASCII `filename=` for old clients and
/// `filename*=UTF-8''…` (RFC 5987/6266) with the full name.
pub fn content_disposition(name: &str) -> String {
    // Other characters are left out of the ASCII name; one that starts with them is `settlement…`.
    let mut ascii: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    if !ascii.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        ascii = format!("settlement{ascii}");
    }
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn yuan_has_two_decimals() {
        assert_eq!(yuan(15_000_000), "150000.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-1234), "-12.34");
    }

    #[test]
    fn the_file_name_is_ascii_and_utf8() {
        let d = content_disposition("结算-2026-x.xlsx");
        assert!(
            d.starts_with("attachment; filename=\"settlement-2026-x.xlsx\"; filename*=UTF-8''%E7%BB%93"),
            "{d}"
        );
    }
}
