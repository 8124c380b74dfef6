//! Usage-ledger API, the HTTP side of `opchub_app::ledger`: ingestion from outside sources
//! (per-source keys, batches ≤ 1,000, per-event results signed here), corrections, period
//! close, checkpoints and proofs (public, as a transparency log is), and statements with CSV
//! and XLSX export.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::ledger as app;
use opchub_ledger::event::EventError;
use opchub_settle::export::{xlsx_int as write_int, xlsx_yuan as write_yuan};
use opchub_store::ledger::{Checkpoint, Outcome, Receipt, Source, StoredEvent};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use opchub_app::ledger::{
    create_source_for, inclusion_for, price_reported, statement_for, ConsistencyProof, CorrectionRequest, CreatedSource, EventBatch,
    InclusionProof, NewSourceRequest, Statement, StatementQuery, MAX_BATCH,
};

/// A full batch of events with attributes fits well inside this (the API default is 64 KiB).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const INGEST_PATH: &str = "/api/v1/ledger/events";

#[derive(Serialize, ToSchema)]
pub struct EventResult {
    /// Position in the submitted batch.
    pub index: usize,
    /// `stored`, `duplicate` or `rejected`.
    pub status: String,
    pub receipt: Option<Receipt>,
    pub error: Option<EventErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct EventErrorBody {
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
    /// Ed25519 signature (base64, ledger key) over the receipts of this response: one line per
    /// receipt in result order, `<leaf_index> <leaf_hash> <source> <source_event_id>`, after
    /// the header line `opchub-receipts/v1`. Verify with the key at `/.well-known/opchub-ledger-key`.
    pub signature: String,
}

fn error_body(e: &EventError) -> EventErrorBody {
    let lang = crate::i18n::current_lang();
    EventErrorBody {
        code: e.code.clone(),
        field: e.field.clone(),
        message: {
            // Scope refusals (issue 18) have their messages in the integrity table.
            let scoped = format!("integrity.event.{}", e.code);
            let strict = format!("seclow.event.{}", e.code);
            if crate::i18n::has(&lang, &scoped) {
                crate::i18n::text(&lang, &scoped)
            } else if crate::i18n::has(&lang, &strict) {
                crate::i18n::text(&lang, &strict)
            } else {
                crate::i18n::text(&lang, &format!("ledger.error.{}", e.code))
            }
        },
    }
}

fn to_results(s: &AppState, outcomes: Vec<Outcome>) -> BatchResult {
    let mut r = BatchResult {
        stored: 0,
        duplicates: 0,
        rejected: 0,
        results: Vec::with_capacity(outcomes.len()),
        signature: String::new(),
    };
    for (index, o) in outcomes.into_iter().enumerate() {
        let (status, receipt, error) = match o {
            Outcome::Stored(rc) => {
                r.stored += 1;
                ("stored", Some(rc), None)
            }
            Outcome::Duplicate(rc) => {
                r.duplicates += 1;
                ("duplicate", Some(rc), None)
            }
            Outcome::Rejected(e) => {
                r.rejected += 1;
                ("rejected", None, Some(error_body(&e)))
            }
        };
        r.results.push(EventResult {
            index,
            status: status.into(),
            receipt,
            error,
        });
    }
    if let Some(w) = s.ledger.as_ref() {
        let receipts: Vec<&Receipt> = r.results.iter().filter_map(|x| x.receipt.as_ref()).collect();
        r.signature = w.key.sign_bytes(opchub_store::ledger::receipts_message(&receipts).as_bytes());
    }
    r
}

#[utoipa::path(post, path = "/api/v1/ledger/events", tag = "ledger", request_body = EventBatch,
    responses((status = 200, body = BatchResult), (status = 401), (status = 403), (status = 422), (status = 429)))]
pub async fn ingest(State(s): State<AppState>, caller: Caller, ApiJson(b): ApiJson<EventBatch>) -> ApiResult<Json<BatchResult>> {
    let p = caller.require()?;
    let admit = |name: &str, rate: i64, n: u32| s.rate.check(name, rate, n).map_err(|wait| format!("{wait}s"));
    let outcomes = app::ingest_for(&s, p, &b.events, admit).await?;
    Ok(Json(to_results(&s, outcomes)))
}

/// Corrections are new events that reference the corrected one (never rewrites). The
/// requester is the caller; the approver must be another committee member.
#[utoipa::path(post, path = "/api/v1/ledger/corrections", tag = "ledger", request_body = CorrectionRequest,
    responses((status = 200, body = BatchResult), (status = 422)))]
pub async fn correct(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<CorrectionRequest>) -> ApiResult<Json<BatchResult>> {
    let p = caller.require()?;
    let outcomes = app::correct_for(&s, p, &r).await?;
    Ok(Json(to_results(&s, outcomes)))
}

#[utoipa::path(post, path = "/api/v1/ledger/sources", tag = "ledger", request_body = NewSourceRequest,
    responses((status = 201, body = CreatedSource), (status = 409), (status = 422)))]
pub async fn create_source(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewSourceRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok((StatusCode::CREATED, Json(create_source_for(&s, p, &r).await?)).into_response())
}

#[utoipa::path(get, path = "/api/v1/ledger/sources", tag = "ledger", responses((status = 200, body = [Source])))]
pub async fn sources(State(s): State<AppState>) -> ApiResult<Json<Vec<Source>>> {
    Ok(Json(app::sources_for(&s).await?))
}

#[utoipa::path(get, path = "/api/v1/ledger/events/{leaf_index}", tag = "ledger", params(("leaf_index" = i64, Path)),
    responses((status = 200, body = StoredEvent), (status = 404)))]
pub async fn event(State(s): State<AppState>, Path(leaf_index): Path<String>) -> ApiResult<Json<StoredEvent>> {
    Ok(Json(app::event_for(&s, &leaf_index).await?))
}

#[utoipa::path(get, path = "/api/v1/ledger/checkpoints", tag = "ledger", responses((status = 200, body = [Checkpoint])))]
pub async fn checkpoints(State(s): State<AppState>) -> ApiResult<Json<Vec<Checkpoint>>> {
    Ok(Json(app::checkpoints_for(&s).await?))
}

/// The latest signed checkpoint as a C2SP signed note (text/plain).
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "ledger", responses((status = 200, body = String, content_type = "text/plain"), (status = 404)))]
pub async fn latest_checkpoint(State(s): State<AppState>) -> ApiResult<Response> {
    let note = app::latest_checkpoint_note(&s).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// The ledger's public key in signed-note verifier format.
pub async fn public_key(State(s): State<AppState>) -> ApiResult<Response> {
    let key = app::public_key(&s)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], key).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    pub leaf_index: i64,
    /// A checkpoint's tree size; default the latest checkpoint.
    pub tree_size: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/ledger/proofs/inclusion", tag = "ledger", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 409), (status = 422)))]
pub async fn inclusion(State(s): State<AppState>, ApiQuery(q): ApiQuery<InclusionQuery>) -> ApiResult<Json<InclusionProof>> {
    Ok(Json(inclusion_for(&s, q.leaf_index, q.tree_size).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub from: i64,
    pub to: i64,
}

#[utoipa::path(get, path = "/api/v1/ledger/proofs/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 422)))]
pub async fn consistency(State(s): State<AppState>, ApiQuery(q): ApiQuery<ConsistencyQuery>) -> ApiResult<Json<ConsistencyProof>> {
    Ok(Json(app::consistency_for(&s, q.from, q.to).await?))
}

#[utoipa::path(post, path = "/api/v1/ledger/periods/{period}/close", tag = "ledger", params(("period" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = Checkpoint), (status = 409), (status = 422)))]
pub async fn close_period(State(s): State<AppState>, caller: Caller, Path(period): Path<String>) -> ApiResult<Json<Checkpoint>> {
    let p = caller.require()?;
    Ok(Json(app::close_period_for(&s, p, &period).await?))
}

#[utoipa::path(get, path = "/api/v1/ledger/statement", tag = "ledger", params(StatementQuery), responses((status = 200, body = Statement), (status = 404)))]
pub async fn statement(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<StatementQuery>) -> ApiResult<Json<Statement>> {
    let p = caller.require()?;
    Ok(Json(statement_for(&s, p, &q).await?))
}

/// The statement's events as CSV (UTF-8 with BOM, so spreadsheet programs read Chinese).
#[utoipa::path(get, path = "/api/v1/ledger/statement.csv", tag = "ledger", params(StatementQuery), responses((status = 200, body = String, content_type = "text/csv")))]
pub async fn statement_csv(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<StatementQuery>) -> ApiResult<Response> {
    let p = caller.require()?;
    let st = statement_for(&s, p, &q).await?;
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
    let filename = format!("statement-{}-{}.csv", st.party, st.period);
    Ok(super::attachment("text/csv; charset=utf-8", &filename, out))
}

pub const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The bytes of a downloaded file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BinaryFile(pub Vec<u8>);

/// The statement as an Excel workbook: sheet "汇总" (totals by kind) and sheet "明细" (the
/// events: the CSV's columns, then the amounts in yuan).
#[utoipa::path(get, path = "/api/v1/ledger/statement.xlsx", tag = "ledger", params(StatementQuery),
    responses((status = 200, description = "The workbook (attachment).", body = inline(BinaryFile), content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404)))]
pub async fn statement_xlsx(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<StatementQuery>) -> ApiResult<Response> {
    let p = caller.require()?;
    let st = statement_for(&s, p, &q).await?;
    let bytes = statement_workbook(&st).map_err(|e| {
        tracing::error!(error = %e, "statement workbook");
        ApiError::internal()
    })?;
    let filename = format!("statement-{}-{}.xlsx", st.party, st.period);
    Ok(super::attachment(XLSX_CONTENT_TYPE, &filename, bytes))
}

fn write_header(ws: &mut Worksheet, row: u32, names: &[&str], bold: &Format) -> Result<(), XlsxError> {
    for (c, name) in (0u16..).zip(names) {
        ws.write_string_with_format(row, c, *name, bold)?;
        ws.set_column_width(c, (name.len() as f64 + 4.0).max(12.0))?;
    }
    Ok(())
}

pub fn statement_workbook(st: &Statement) -> Result<Vec<u8>, XlsxError> {
    let lang = crate::i18n::current_lang();
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
        ws.write_string(row, 1, crate::i18n::text(&lang, &format!("ledger.kind.{}", t.kind)))?;
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
