//! A ledger statement as files a spreadsheet opens: CSV (UTF-8 with a byte-order mark, so
//! spreadsheet programs read Chinese; formulas defused) and XLSX (totals and events, amounts in
//! fen and in yuan as numeric cells). The HTTP layer only attaches them.

use crate::ledger::Statement;
use opchub_settle::export::{xlsx_int as write_int, xlsx_yuan as write_yuan};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// The statement's events as CSV.
pub fn csv(st: &Statement) -> String {
    let mut out = String::from(
        "\u{feff}leaf_index,occurred_at,kind,subject,counterparty,quantity,unit,list_fen,charged_fen,price_version,origin,late,leaf_hash\n",
    );
    for e in &st.events {
        let occurred = chrono::DateTime::from_timestamp_millis(e.occurred_at_ms)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        let cells = [
            e.leaf_index.to_string(),
            occurred,
            e.kind.clone(),
            e.subject.clone(),
            e.counterparty.clone(),
            e.quantity.to_string(),
            e.unit.clone(),
            e.list_fen.to_string(),
            e.charged_fen.to_string(),
            e.price_version.clone(),
            e.origin.clone(),
            e.late.to_string(),
            e.leaf_hash.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn write_header(ws: &mut Worksheet, row: u32, names: &[&str], bold: &Format) -> Result<(), XlsxError> {
    for (c, name) in (0u16..).zip(names) {
        ws.write_string_with_format(row, c, *name, bold)?;
        ws.set_column_width(c, (name.len() as f64 + 4.0).max(12.0))?;
    }
    Ok(())
}

/// The statement as an Excel workbook: sheet "汇总" (totals by kind, each named by
/// `kind_name` in the reader's language) and sheet "明细" (the events: the CSV's columns, then
/// the amounts in yuan).
pub fn workbook(st: &Statement, kind_name: &dyn Fn(&str) -> String) -> Result<Vec<u8>, XlsxError> {
    let bold = Format::new().set_bold();
    let yuan = Format::new().set_num_format("#,##0.00");
    let int = Format::new().set_num_format("#,##0");
    let plain = Format::new().set_num_format("0");
    let mut wb = Workbook::new();

    let ws = wb.add_worksheet();
    ws.set_name("汇总")?;
    for (r, (k, v)) in (0u32..).zip([("party", &st.party), ("period", &st.period), ("role", &st.role)]) {
        ws.write_string_with_format(r, 0, k, &bold)?;
        ws.write_string(r, 1, v.as_str())?;
    }
    let head = 4;
    write_header(
        ws,
        head,
        &[
            "kind",
            "name",
            "unit",
            "quantity",
            "events",
            "list_fen",
            "charged_fen",
            "discount_fen",
            "list_yuan",
            "charged_yuan",
            "discount_yuan",
        ],
        &bold,
    )?;
    ws.set_column_width(1, 18)?;
    let (mut list, mut charged) = (0i128, 0i128);
    let mut row = head + 1;
    for t in &st.totals {
        let discount = i128::from(t.list_fen) - i128::from(t.charged_fen);
        ws.write_string(row, 0, t.kind.as_str())?;
        ws.write_string(row, 1, kind_name(&t.kind))?;
        ws.write_string(row, 2, t.unit.as_str())?;
        write_int(ws, row, 3, t.quantity, &int)?;
        write_int(ws, row, 4, t.events, &int)?;
        write_int(ws, row, 5, t.list_fen, &plain)?;
        write_int(ws, row, 6, t.charged_fen, &plain)?;
        write_int(ws, row, 7, discount, &plain)?;
        write_yuan(ws, row, 8, t.list_fen, &yuan)?;
        write_yuan(ws, row, 9, t.charged_fen, &yuan)?;
        write_yuan(ws, row, 10, discount, &yuan)?;
        list += i128::from(t.list_fen);
        charged += i128::from(t.charged_fen);
        row += 1;
    }
    // The total row (amounts only: quantities of different kinds do not add up).
    ws.write_string_with_format(row, 0, "total", &bold)?;
    for (col, fen) in [(5, list), (6, charged), (7, list - charged)] {
        write_int(ws, row, col, fen, &plain)?;
        write_yuan(ws, row, col + 3, fen, &yuan)?;
    }
    ws.set_freeze_panes(head + 1, 0)?;

    let ws = wb.add_worksheet();
    ws.set_name("明细")?;
    write_header(
        ws,
        0,
        &[
            "leaf_index",
            "occurred_at",
            "kind",
            "subject",
            "counterparty",
            "quantity",
            "unit",
            "list_fen",
            "charged_fen",
            "price_version",
            "origin",
            "late",
            "leaf_hash",
            "list_yuan",
            "charged_yuan",
        ],
        &bold,
    )?;
    for c in [1, 3, 4] {
        ws.set_column_width(c, 28)?;
    }
    ws.set_column_width(12, 66)?;
    for (row, e) in (1u32..).zip(&st.events) {
        let occurred = chrono::DateTime::from_timestamp_millis(e.occurred_at_ms)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        write_int(ws, row, 0, e.leaf_index, &plain)?;
        ws.write_string(row, 1, occurred)?;
        ws.write_string(row, 2, e.kind.as_str())?;
        ws.write_string(row, 3, e.subject.as_str())?;
        ws.write_string(row, 4, e.counterparty.as_str())?;
        write_int(ws, row, 5, e.quantity, &int)?;
        ws.write_string(row, 6, e.unit.as_str())?;
        write_int(ws, row, 7, e.list_fen, &plain)?;
        write_int(ws, row, 8, e.charged_fen, &plain)?;
        ws.write_string(row, 9, e.price_version.as_str())?;
        ws.write_string(row, 10, e.origin.as_str())?;
        ws.write_boolean(row, 11, e.late)?;
        ws.write_string(row, 12, e.leaf_hash.as_str())?;
        write_yuan(ws, row, 13, e.list_fen, &yuan)?;
        write_yuan(ws, row, 14, e.charged_fen, &yuan)?;
    }
    ws.set_freeze_panes(1, 0)?;
    wb.save_to_buffer()
}

/// Quotes a CSV cell when needed and defuses spreadsheet formulas.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) && v.parse::<i64>().is_err() {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}
