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
use opchub_store::ledger::{Checkpoint, Outcome, Receipt, Source, StoredEvent};
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
        message: crate::i18n::text(&lang, &format!("ledger.error.{}", e.code)),
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
    let out = opchub_app::statements::csv(&st);
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
    let lang = crate::i18n::current_lang();
    let kind_name = |kind: &str| crate::i18n::text(&lang, &format!("ledger.kind.{kind}"));
    let bytes = opchub_app::statements::workbook(&st, &kind_name).map_err(|e| {
        tracing::error!(error = %e, "statement workbook");
        ApiError::internal()
    })?;
    let filename = format!("statement-{}-{}.xlsx", st.party, st.period);
    Ok(super::attachment(XLSX_CONTENT_TYPE, &filename, bytes))
}
