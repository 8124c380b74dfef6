//! Records API (issue 8): an OPC's loans (drawdowns, interest statements, repayments) and the
//! M6.3 monthly interest-subsidy claims the engine computes from them; the talent-apartment
//! inventory, assignments of granted M7.2 applications and each month's rent due; growth
//! milestones (M8.1). The use cases are `opchub_app::records`'s; handlers extract, call, answer.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::records as app;
use opchub_store::applications::Application;
use opchub_store::records::{Apartment, Assignment, Loan};
use serde::Deserialize;
use utoipa::IntoParams;

pub use opchub_app::applications::loan_facts;
pub use opchub_app::records::{
    LoanClaims, Milestones, MoveOut, NewApartment, NewAssignment, NewClaim, NewLoan, NewLoanEntry, RentSchedule,
};

// ---------------------------------------------------------------- loans (M6.3)

#[utoipa::path(post, path = "/api/v1/loans", tag = "records", request_body = NewLoan, responses((status = 201, body = Loan), (status = 409), (status = 422)))]
pub async fn create_loan(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewLoan>) -> ApiResult<Response> {
    let p = caller.require()?;
    let l = app::create_loan_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(l)).into_response())
}

#[utoipa::path(get, path = "/api/v1/loans", tag = "records", responses((status = 200, body = [Loan])))]
pub async fn loans(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Loan>>> {
    let p = caller.require()?;
    Ok(Json(app::loans_for(&s, p).await?))
}

#[utoipa::path(post, path = "/api/v1/loans/{id}/entries", tag = "records", request_body = NewLoanEntry,
    responses((status = 201, body = Loan), (status = 404), (status = 409), (status = 422)))]
pub async fn add_entry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewLoanEntry>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let l = app::add_entry_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(l)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    pub year: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/loans/claims", tag = "records", params(YearQuery), responses((status = 200, body = LoanClaims)))]
pub async fn claims(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<YearQuery>) -> ApiResult<Json<LoanClaims>> {
    let p = caller.require()?;
    Ok(Json(app::claims_for(&s, p, q.year).await?))
}

/// Generates the M6.3 application for one month from the loan records (a draft to add the
/// bank statements to and submit).
#[utoipa::path(post, path = "/api/v1/loans/claims", tag = "records", request_body = NewClaim,
    responses((status = 201, body = Application), (status = 422)))]
pub async fn create_claim(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewClaim>) -> ApiResult<Response> {
    let p = caller.require()?;
    let a = app::create_claim_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

// ---------------------------------------------------------------- housing (M7)

#[utoipa::path(post, path = "/api/v1/apartments", tag = "records", request_body = NewApartment, responses((status = 201, body = Apartment), (status = 409), (status = 422)))]
pub async fn create_apartment(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewApartment>) -> ApiResult<Response> {
    let p = caller.require()?;
    let a = app::create_apartment_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(get, path = "/api/v1/apartments", tag = "records", responses((status = 200, body = [Apartment])))]
pub async fn apartments(State(s): State<AppState>) -> ApiResult<Json<Vec<Apartment>>> {
    Ok(Json(app::apartments(&s).await?))
}

#[utoipa::path(post, path = "/api/v1/housing/assignments", tag = "records", request_body = NewAssignment,
    responses((status = 201, body = Assignment), (status = 409), (status = 422)))]
pub async fn assign(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewAssignment>) -> ApiResult<Response> {
    let p = caller.require()?;
    let a = app::assign_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(post, path = "/api/v1/housing/assignments/{id}/move-out", tag = "records", request_body = MoveOut,
    responses((status = 200, body = Assignment), (status = 404), (status = 409)))]
pub async fn move_out(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<MoveOut>,
) -> ApiResult<Json<Assignment>> {
    let p = caller.require()?;
    Ok(Json(app::move_out_for(&s, p, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/housing/assignments/{id}/schedule", tag = "records", params(YearQuery),
    responses((status = 200, body = RentSchedule), (status = 404)))]
pub async fn rent_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> ApiResult<Json<RentSchedule>> {
    let p = caller.require()?;
    Ok(Json(app::rent_schedule_for(&s, p, &id, q.year).await?))
}

// ---------------------------------------------------------------- growth (M8.1)

#[utoipa::path(get, path = "/api/v1/milestones", tag = "records", responses((status = 200, body = Milestones)))]
pub async fn milestones(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Milestones>> {
    let p = caller.require()?;
    Ok(Json(app::milestones_for(&s, p).await?))
}
