//! 免申即享 settlement API (issue 6): the policy's clauses, a beneficiary's own "what can I get"
//! calculation, settlement batches (draft from the ledger, beneficiary confirmation, committee
//! approval consuming the cap ledger, CSV/XLSX export for finance), what-if runs that save
//! nothing, F3 exclusion list imports and the S3 register of other grants. The use cases are
//! `opchub_app::settlement`'s; handlers extract, call and answer.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use opchub_app::settlement as app;
use opchub_policy::Policy;
use opchub_settle::ClauseDiff;
use opchub_store::settlement::{Batch, ExclusionList, Line, OverlapGrant};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

pub use opchub_app::settlement::{
    beneficiary_of, clause_views, create_for, estimate_for, import_for, today, what_if_for, BatchView, ClauseView, Confirm, Estimate,
    IndustryCodeChange, IndustryCodeSet, MyLine, NewOverlap, NewSettlement, ParamView, SettlementCreated, WhatIf, MAX_LINES,
    OVERLAP_LEVELS,
};

pub fn policy(s: &AppState) -> ApiResult<Arc<Policy>> {
    Ok(app::policy(s)?)
}

// ---------------------------------------------------------------- clauses

#[utoipa::path(get, path = "/api/v1/policy/clauses", tag = "policy", responses((status = 200, body = [ClauseView])))]
pub async fn clauses(State(s): State<AppState>) -> ApiResult<Json<Vec<ClauseView>>> {
    Ok(Json(app::clauses(&s)?))
}

// ---------------------------------------------------------------- calculator

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// Calendar year (default: this year).
    pub year: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/policy/calculator", tag = "policy", params(YearQuery), responses((status = 200, body = [Estimate])))]
pub async fn calculator(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<YearQuery>) -> ApiResult<Json<Vec<Estimate>>> {
    let p = caller.require()?;
    let year = q.year.unwrap_or_else(app::this_year);
    Ok(Json(estimate_for(&s, p, year).await?))
}

// ---------------------------------------------------------------- batches

#[utoipa::path(post, path = "/api/v1/settlements", tag = "settlement", request_body = NewSettlement,
    responses((status = 201, body = SettlementCreated), (status = 422)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewSettlement>,
) -> ApiResult<(StatusCode, Json<SettlementCreated>)> {
    let p = caller.require()?;
    Ok((StatusCode::CREATED, Json(create_for(&s, p, r).await?)))
}

#[utoipa::path(get, path = "/api/v1/settlements", tag = "settlement", responses((status = 200, body = [Batch])))]
pub async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Batch>>> {
    Ok(Json(app::batches(&s).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinesQuery {
    pub clause: Option<String>,
    /// Only lines with an amount.
    pub payable: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/settlements/{id}", tag = "settlement", params(("id" = String, Path), LinesQuery),
    responses((status = 200, body = BatchView), (status = 404)))]
pub async fn show(State(s): State<AppState>, Path(id): Path<String>, ApiQuery(q): ApiQuery<LinesQuery>) -> ApiResult<Json<BatchView>> {
    Ok(Json(app::batch_view(&s, &id, q.clause, q.payable.unwrap_or(false)).await?))
}

#[utoipa::path(post, path = "/api/v1/settlements/{id}/approve", tag = "settlement", params(("id" = String, Path)),
    responses((status = 200, body = Batch), (status = 404), (status = 409)))]
pub async fn approve(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Batch>> {
    let p = caller.require()?;
    Ok(Json(app::approve_for(&s, p, &id).await?))
}

/// Finance pays approved lines of an approved batch, a bank reference per line (issue 17).
#[utoipa::path(post, path = "/api/v1/settlements/{id}/pay", tag = "settlement", params(("id" = String, Path)),
    request_body = app::PaySettlement,
    responses((status = 200, body = Batch), (status = 404), (status = 409), (status = 422)))]
pub async fn pay(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<app::PaySettlement>,
) -> ApiResult<Json<Batch>> {
    let p = caller.require()?;
    Ok(Json(app::pay_for(&s, p, &id, r).await?))
}

/// Recovery orders of lowered settlement keys (all for the committee and finance, one's own otherwise).
#[utoipa::path(get, path = "/api/v1/settlement-recoveries", tag = "settlement",
    responses((status = 200, body = [opchub_store::grants::SettlementRecovery])))]
pub async fn recoveries(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<opchub_store::grants::SettlementRecovery>>> {
    let p = caller.require()?;
    Ok(Json(app::recoveries_for(&s, p).await?))
}

/// Finance records a repayment of a settlement recovery order (F2, S5).
#[utoipa::path(post, path = "/api/v1/settlement-recoveries/{id}/repay", tag = "settlement", params(("id" = String, Path)),
    request_body = app::Repay,
    responses((status = 200, body = opchub_store::grants::SettlementRecovery), (status = 404), (status = 409), (status = 422)))]
pub async fn repay(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<app::Repay>,
) -> ApiResult<Json<opchub_store::grants::SettlementRecovery>> {
    let p = caller.require()?;
    Ok(Json(app::repay_for(&s, p, &id, r).await?))
}

/// What the caller's party was granted per clause and year: approved, paid, recovered.
#[utoipa::path(get, path = "/api/v1/my/grants", tag = "settlement", responses((status = 200, body = [opchub_store::grants::GrantView])))]
pub async fn my_grants(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<opchub_store::grants::GrantView>>> {
    let p = caller.require()?;
    Ok(Json(app::my_grants(&s, p).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// Headers and labels: `zh` (default) or `en`.
    pub lang: Option<String>,
}

/// The export's headers and labels in `lang` (Chinese unless `en`), from the message catalogs.
pub fn export_labels(lang: Option<&str>) -> opchub_settle::export::Labels {
    let lang = match lang {
        Some("en") => "en",
        _ => "zh",
    };
    opchub_settle::export::Labels::from_lookup(|k| crate::i18n::text(lang, k))
}

#[utoipa::path(get, path = "/api/v1/settlements/{id}/export", tag = "settlement", params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "CSV or XLSX attachment: one row per payable line with the beneficiary's name, USCC and bank account, and a totals row"),
        (status = 404), (status = 409), (status = 422)))]
pub async fn export(State(s): State<AppState>, Path(id): Path<String>, ApiQuery(q): ApiQuery<ExportQuery>) -> ApiResult<Response> {
    let x = app::export_for(&s, &id, q.format.as_deref(), &export_labels(q.lang.as_deref())).await?;
    Ok(super::attachment(x.content_type, &x.file_name, x.bytes))
}

#[utoipa::path(post, path = "/api/v1/settlements/what-if", tag = "settlement", request_body = WhatIf,
    responses((status = 200, body = [ClauseDiff]), (status = 422)))]
pub async fn what_if(State(s): State<AppState>, ApiJson(r): ApiJson<WhatIf>) -> ApiResult<Json<Vec<ClauseDiff>>> {
    Ok(Json(what_if_for(&s, r).await?))
}

// ---------------------------------------------------------------- confirmation (意愿确认)

#[utoipa::path(get, path = "/api/v1/my/settlements", tag = "settlement", responses((status = 200, body = [MyLine])))]
pub async fn mine(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<MyLine>>> {
    let p = caller.require()?;
    Ok(Json(app::mine(&s, p).await?))
}

#[utoipa::path(post, path = "/api/v1/my/settlements/confirm", tag = "settlement", request_body = Confirm,
    responses((status = 200, body = Line), (status = 404), (status = 409)))]
pub async fn confirm(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<Confirm>) -> ApiResult<Json<Line>> {
    let p = caller.require()?;
    Ok(Json(app::confirm_for(&s, p, &r).await?))
}

// ---------------------------------------------------------------- F3 lists, S3 register

#[utoipa::path(get, path = "/api/v1/exclusions", tag = "settlement", responses((status = 200, body = [ExclusionList])))]
pub async fn exclusion_lists(State(s): State<AppState>) -> ApiResult<Json<Vec<ExclusionList>>> {
    Ok(Json(app::exclusion_lists(&s).await?))
}

#[utoipa::path(post, path = "/api/v1/exclusions/{kind}", tag = "settlement", params(("kind" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ExclusionList), (status = 422)))]
pub async fn import(
    State(s): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ExclusionList>)> {
    let p = caller.require()?;
    Ok((
        StatusCode::CREATED,
        Json(import_for(&s, p, &kind, &format!("{kind}.csv"), &body).await?),
    ))
}

/// Records a party's main industry, checked against its licence by the committee or the platform
/// operator. F3's restricted-industry catalogue is matched by it (a party without one is
/// "information missing" while a catalogue by code is in force).
#[utoipa::path(put, path = "/api/v1/parties/{kind}/{id}/industry-code", tag = "settlement",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    request_body = IndustryCodeChange,
    responses((status = 200, body = IndustryCodeSet), (status = 404), (status = 422)))]
pub async fn set_industry_code(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<IndustryCodeChange>,
) -> ApiResult<Json<IndustryCodeSet>> {
    let p = caller.require()?;
    Ok(Json(app::set_industry_code_for(&s, p, kind, id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/overlap-grants", tag = "settlement", request_body = NewOverlap,
    responses((status = 201, body = OverlapGrant), (status = 422)))]
pub async fn add_overlap(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewOverlap>,
) -> ApiResult<(StatusCode, Json<OverlapGrant>)> {
    let p = caller.require()?;
    Ok((StatusCode::CREATED, Json(app::add_overlap_for(&s, p, r).await?)))
}

#[utoipa::path(get, path = "/api/v1/overlap-grants", tag = "settlement", params(YearQuery), responses((status = 200, body = [OverlapGrant])))]
pub async fn overlaps(State(s): State<AppState>, ApiQuery(q): ApiQuery<YearQuery>) -> ApiResult<Json<Vec<OverlapGrant>>> {
    Ok(Json(app::overlaps(&s, q.year).await?))
}
