//! Monthly bills and their payments, JSON API (issue 19 items 2 and 3). The use cases are
//! `opchub_app::bills` (shared with the pages); handlers only extract, call them and answer.

use super::ApiJson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::bills::{self as app, BillDetail, BillQuery, DisputeQuery, PaymentInput, ReasonRequest, Receivable, ResolveRequest};
use opchub_store::bills::{Bill, BillDispute, BillPayment};
use serde::Deserialize;
use utoipa::IntoParams;

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[utoipa::path(get, path = "/api/v1/bills", tag = "bills", params(BillQuery),
    responses((status = 200, body = [Bill], description = "the caller's bills as payer and payee (committee and auditor: all), running ones included"), (status = 422)))]
pub async fn list(State(s): State<AppState>, caller: Caller, Query(q): Query<BillQuery>) -> ApiResult<Json<Vec<Bill>>> {
    Ok(Json(app::list_for(&s, caller.require()?, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/bills/receivables", tag = "bills",
    responses((status = 200, body = [Receivable], description = "what the caller is owed per month as payee — billed, confirmed received, outstanding and how overdue (committee and auditor: every payee's paid against billed)")))]
pub async fn receivables(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Receivable>>> {
    Ok(Json(app::receivables_for(&s, caller.require()?).await?))
}

#[utoipa::path(get, path = "/api/v1/bills/{id}", tag = "bills", params(("id" = String, Path, description = "`<month>.<payer>.<payee>`")),
    responses((status = 200, body = BillDetail), (status = 404)))]
pub async fn show(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<BillDetail>> {
    Ok(Json(app::bill_for(&s, caller.require()?, &id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct CsvQuery {
    /// `en` for English headers; Chinese by default.
    pub lang: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/bills/{id}/export.csv", tag = "bills", params(("id" = String, Path), CsvQuery),
    responses((status = 200, description = "CSV attachment: the bill, its lines and the total"), (status = 404)))]
pub async fn export_csv(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<CsvQuery>,
) -> ApiResult<Response> {
    let d = app::bill_for(&s, caller.require()?, &id).await?;
    let bytes = app::csv_of(&d, q.lang.as_deref() == Some("en"))?;
    Ok(super::attachment(
        "text/csv; charset=utf-8",
        &format!("bill-{}.csv", d.bill.month),
        bytes,
    ))
}

#[utoipa::path(get, path = "/api/v1/bills/{id}/export.xlsx", tag = "bills", params(("id" = String, Path), CsvQuery),
    responses((status = 200, description = "Excel attachment: the bill, its lines (quantities and fen as numbers, list and charged also in yuan) and the total",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404)))]
pub async fn export_xlsx(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<CsvQuery>,
) -> ApiResult<Response> {
    let d = app::bill_for(&s, caller.require()?, &id).await?;
    let bytes = app::xlsx_of(&d, q.lang.as_deref() == Some("en"))?;
    Ok(super::attachment(
        crate::api::ledger::XLSX_CONTENT_TYPE,
        &format!("bill-{}.xlsx", d.bill.month),
        bytes,
    ))
}

#[utoipa::path(post, path = "/api/v1/bills/{id}/payments", tag = "bills", params(("id" = String, Path)), request_body = PaymentInput,
    responses((status = 201, body = BillPayment), (status = 403, description = "not_payer"), (status = 404),
        (status = 409, description = "bill_not_issued, duplicate_reference"), (status = 422, description = "above_outstanding, paid_before_bill_month_end, date_in_future, …")))]
pub async fn record_payment(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PaymentInput>,
) -> ApiResult<Response> {
    Ok(created(app::record_payment_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/bills/{id}/receipts", tag = "bills", params(("id" = String, Path)), request_body = PaymentInput,
    responses((status = 201, body = BillPayment, description = "confirmed at once and posted to the ledger"), (status = 403, description = "not_payee"), (status = 404),
        (status = 409), (status = 422)))]
pub async fn record_receipt(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PaymentInput>,
) -> ApiResult<Response> {
    Ok(created(app::record_receipt_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/bills/payments/{id}/confirm", tag = "bills", params(("id" = String, Path)),
    responses((status = 200, body = BillPayment), (status = 403, description = "not_payee"), (status = 404), (status = 409, description = "payment_not_pending")))]
pub async fn confirm(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<BillPayment>> {
    Ok(Json(app::confirm_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/bills/payments/{id}/dispute", tag = "bills", params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 201, body = BillDispute), (status = 404), (status = 409, description = "payment_not_pending"), (status = 422)))]
pub async fn dispute(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReasonRequest>,
) -> ApiResult<Response> {
    Ok(created(app::dispute_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/bills/disputes", tag = "bills", params(DisputeQuery), responses((status = 200, body = [BillDispute])))]
pub async fn disputes(State(s): State<AppState>, Query(q): Query<DisputeQuery>) -> ApiResult<Json<Vec<BillDispute>>> {
    Ok(Json(app::disputes_for(&s, q.open.unwrap_or(true)).await?))
}

#[utoipa::path(post, path = "/api/v1/bills/disputes/{id}/resolve", tag = "bills", params(("id" = String, Path)), request_body = ResolveRequest,
    responses((status = 200, body = BillDispute), (status = 404), (status = 409, description = "dispute_resolved"), (status = 422)))]
pub async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ResolveRequest>,
) -> ApiResult<Json<BillDispute>> {
    Ok(Json(app::resolve_for(&s, caller.require()?, &id, &r).await?))
}
