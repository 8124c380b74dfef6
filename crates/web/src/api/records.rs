//! Records API (issue 8): an OPC's loans (drawdowns, interest statements, repayments) and the
//! M6.3 monthly interest-subsidy claims the engine computes from them; the talent-apartment
//! inventory, assignments of granted M7.2 applications and each month's rent due; growth
//! milestones (M8.1). Schedules are computed in `opchub_funds::schedule` (pure).

use super::ApiJson;
use crate::api::applications::{create_for, NewApplicationRequest};
use crate::api::settlement::{policy, settle_error, today};
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use opchub_domain::Role;
use opchub_funds::schedule::{self, LoanMonth, RentMonth};
use opchub_settle::apply as app_facts;
use opchub_store::applications::Application;
use opchub_store::records::{Apartment, Assignment, Loan, MilestoneRow};
use opchub_store::settlement::Party;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

async fn my_opc(s: &AppState, p: &Principal) -> ApiResult<Party> {
    app_facts::party_of(&s.store, Role::OpcFounder, &p.user.id)
        .await
        .map_err(settle_error)?
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "no_company"))
}

fn day(field: &str, v: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| ApiError::field(field, "not_a_date"))
}

fn text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(ApiError::field(field, "bad_text"));
    }
    Ok(t.to_string())
}

fn positive(field: &str, v: i64) -> ApiResult<i64> {
    if v <= 0 || v > 100_000_000_000 {
        return Err(ApiError::field(field, "out_of_range"));
    }
    Ok(v)
}

// ---------------------------------------------------------------- loans (M6.3)

#[derive(Deserialize, ToSchema)]
pub struct NewLoan {
    pub bank: String,
    pub contract_no: String,
    pub principal_fen: i64,
}

#[utoipa::path(post, path = "/api/v1/loans", tag = "records", request_body = NewLoan, responses((status = 201, body = Loan), (status = 409), (status = 422)))]
pub async fn create_loan(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewLoan>) -> ApiResult<Response> {
    let p = caller.require()?;
    let opc = my_opc(&s, p).await?;
    let bank = text("bank", &r.bank, 64)?;
    let contract = text("contract_no", &r.contract_no, 64)?;
    let principal = positive("principal_fen", r.principal_fen)?;
    let l = s
        .store
        .create_loan(&p.actor(), &opc.id, &p.user.id, &bank, &contract, principal)
        .await?;
    Ok((StatusCode::CREATED, Json(l)).into_response())
}

#[utoipa::path(get, path = "/api/v1/loans", tag = "records", responses((status = 200, body = [Loan])))]
pub async fn loans(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Loan>>> {
    let p = caller.require()?;
    let opc = my_opc(&s, p).await?;
    Ok(Json(s.store.loans_of(&opc.id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewLoanEntry {
    /// `drawdown`, `interest` or `repayment`.
    pub kind: String,
    /// The day of the bank record.
    pub day: String,
    /// For interest: the month it pays, `YYYY-MM` (one statement per month).
    pub month: Option<String>,
    pub amount_fen: i64,
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
    let opc = my_opc(&s, p).await?;
    let loan = s.store.loan(&id).await?;
    if loan.opc_id != opc.id {
        return Err(ApiError::not_found());
    }
    if !matches!(r.kind.as_str(), "drawdown" | "interest" | "repayment") {
        return Err(ApiError::field("kind", "unknown_kind"));
    }
    let d = day("day", &r.day)?;
    let amount = positive("amount_fen", r.amount_fen)?;
    let month = match (r.kind.as_str(), r.month.as_deref()) {
        ("interest", Some(m)) => {
            NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").map_err(|_| ApiError::field("month", "not_a_month"))?;
            Some(m.to_string())
        }
        ("interest", None) => return Err(ApiError::field("month", "required")),
        _ => None,
    };
    let drawn: i64 = loan.entries.iter().filter(|e| e.kind == "drawdown").map(|e| e.amount_fen).sum();
    if r.kind == "drawdown" && drawn + amount > loan.principal_fen {
        return Err(ApiError::field("amount_fen", "above_principal"));
    }
    let repaid: i64 = loan.entries.iter().filter(|e| e.kind == "repayment").map(|e| e.amount_fen).sum();
    if r.kind == "repayment" && repaid + amount > drawn {
        return Err(ApiError::field("amount_fen", "above_outstanding"));
    }
    let l = s
        .store
        .add_loan_entry(&p.actor(), &id, &r.kind, &d.to_string(), month.as_deref(), amount)
        .await?;
    Ok((StatusCode::CREATED, Json(l)).into_response())
}

/// Loans as the engine reads them: drawn amount (counted principal), first drawdown, interest.
pub(crate) fn loan_facts(loans: &[Loan]) -> Vec<Value> {
    loans
        .iter()
        .filter_map(|l| {
            let draws: Vec<_> = l.entries.iter().filter(|e| e.kind == "drawdown").collect();
            let first = draws.iter().map(|e| e.day.clone()).min()?;
            let principal: i64 = draws.iter().map(|e| e.amount_fen).sum();
            let interest: Vec<Value> = l
                .entries
                .iter()
                .filter(|e| e.kind == "interest")
                .filter_map(|e| Some(json!({ "month": e.month.clone()?, "amount_fen": e.amount_fen })))
                .collect();
            Some(json!({ "id": l.contract_no, "principal_fen": principal, "first_drawdown": first, "qualified": true, "interest": interest }))
        })
        .collect()
}

#[derive(Deserialize, IntoParams)]
pub struct YearQuery {
    pub year: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct LoanClaims {
    pub year: i32,
    /// Per month: interest paid and the M6.3 subsidy the engine computes for it.
    pub months: Vec<LoanMonth>,
    pub total_fen: i64,
}

#[utoipa::path(get, path = "/api/v1/loans/claims", tag = "records", params(YearQuery), responses((status = 200, body = LoanClaims)))]
pub async fn claims(State(s): State<AppState>, caller: Caller, Query(q): Query<YearQuery>) -> ApiResult<Json<LoanClaims>> {
    let p = caller.require()?;
    let year = q.year.unwrap_or_else(|| today().year());
    let opc = my_opc(&s, p).await?;
    let pol = policy(&s)?;
    let as_of = opchub_settle::run::default_as_of(year);
    let base = app_facts::application_facts(&s.store, &pol, "M6.3", &opc, year, as_of, &Map::new())
        .await
        .map_err(settle_error)?;
    let loans = loan_facts(&s.store.loans_of(&opc.id).await?);
    let months = schedule::loan_months(&pol, &schedule::opc(&opc.id), year, as_of, &base, &loans)
        .map_err(|e| ApiError::bad_request("policy_input").with_detail(e.to_string()))?;
    Ok(Json(LoanClaims {
        year,
        total_fen: months.iter().map(|m| m.subsidy_fen).sum(),
        months,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewClaim {
    /// `YYYY-MM`: the month whose interest statements are claimed.
    pub month: String,
}

/// Generates the M6.3 application for one month from the loan records (a draft to add the
/// bank statements to and submit).
#[utoipa::path(post, path = "/api/v1/loans/claims", tag = "records", request_body = NewClaim,
    responses((status = 201, body = Application), (status = 422)))]
pub async fn create_claim(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewClaim>) -> ApiResult<Response> {
    let p = caller.require()?;
    let opc = my_opc(&s, p).await?;
    let first =
        NaiveDate::parse_from_str(&format!("{}-01", r.month.trim()), "%Y-%m-%d").map_err(|_| ApiError::field("month", "not_a_month"))?;
    let mut loans = loan_facts(&s.store.loans_of(&opc.id).await?);
    for l in &mut loans {
        let kept: Vec<Value> = l["interest"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i["month"] == r.month.trim())
            .collect();
        l["interest"] = Value::Array(kept);
    }
    loans.retain(|l| l["interest"].as_array().is_some_and(|a| !a.is_empty()));
    if loans.is_empty() {
        return Err(ApiError::field("month", "no_interest_recorded"));
    }
    let mut answers = Map::new();
    answers.insert("loans".into(), Value::Array(loans));
    let a = create_for(
        &s,
        p,
        &NewApplicationRequest {
            clause: "M6.3".into(),
            year: Some(first.year()),
            answers,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

// ---------------------------------------------------------------- housing (M7)

/// Talent housing is managed by the committee and the human-resources agency.
async fn housing_staff(s: &AppState, p: &Principal) -> ApiResult<()> {
    match p.role() {
        Role::Committee => Ok(()),
        Role::Agency if s.store.agency_of(&p.user.id).await?.as_deref() == Some("human_resources") => Ok(()),
        _ => Err(ApiError::new(StatusCode::FORBIDDEN, "application_other_agency")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewApartment {
    pub name: String,
    pub address: String,
    pub monthly_rent_fen: i64,
    pub daily_rent_fen: i64,
}

#[utoipa::path(post, path = "/api/v1/apartments", tag = "records", request_body = NewApartment, responses((status = 201, body = Apartment), (status = 409), (status = 422)))]
pub async fn create_apartment(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewApartment>) -> ApiResult<Response> {
    let p = caller.require()?;
    // Input first (a clear 422), then who may manage housing.
    let (name, address) = (text("name", &r.name, 64)?, text("address", &r.address, 200)?);
    let (monthly, daily) = (
        positive("monthly_rent_fen", r.monthly_rent_fen)?,
        positive("daily_rent_fen", r.daily_rent_fen)?,
    );
    housing_staff(&s, p).await?;
    let a = s.store.create_apartment(&p.actor(), &name, &address, monthly, daily).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(get, path = "/api/v1/apartments", tag = "records", responses((status = 200, body = [Apartment])))]
pub async fn apartments(State(s): State<AppState>) -> ApiResult<Json<Vec<Apartment>>> {
    Ok(Json(s.store.apartments().await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewAssignment {
    pub apartment_id: String,
    /// A granted M7.2 application.
    pub application_id: String,
    pub move_in: String,
}

#[utoipa::path(post, path = "/api/v1/housing/assignments", tag = "records", request_body = NewAssignment,
    responses((status = 201, body = Assignment), (status = 409), (status = 422)))]
pub async fn assign(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewAssignment>) -> ApiResult<Response> {
    let p = caller.require()?;
    let app = s
        .store
        .application(&r.application_id)
        .await
        .map_err(|_| ApiError::field("application_id", "not_found"))?;
    if app.clause != "M7.2" || app.status != "granted" {
        return Err(ApiError::field("application_id", "not_granted_housing"));
    }
    if !s.store.apartments().await?.iter().any(|a| a.id == r.apartment_id) {
        return Err(ApiError::field("apartment_id", "not_found"));
    }
    let d = day("move_in", &r.move_in)?;
    housing_staff(&s, p).await?;
    let a = s
        .store
        .assign_apartment(&p.actor(), &r.apartment_id, &app.id, &app.beneficiary, &d.to_string())
        .await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct MoveOut {
    pub move_out: String,
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
    let d = day("move_out", &r.move_out)?;
    housing_staff(&s, p).await?;
    Ok(Json(s.store.end_assignment(&p.actor(), &id, &d.to_string()).await?))
}

#[derive(Serialize, ToSchema)]
pub struct RentSchedule {
    pub assignment: Assignment,
    pub year: i32,
    pub months: Vec<RentMonth>,
}

#[utoipa::path(get, path = "/api/v1/housing/assignments/{id}/schedule", tag = "records", params(YearQuery),
    responses((status = 200, body = RentSchedule), (status = 404)))]
pub async fn rent_schedule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<YearQuery>,
) -> ApiResult<Json<RentSchedule>> {
    let p = caller.require()?;
    let a = s.store.assignment(&id).await?;
    if p.role() == Role::OpcFounder && my_opc(&s, p).await?.id != a.opc_id {
        return Err(ApiError::not_found());
    }
    let pol = policy(&s)?;
    let year = q.year.unwrap_or_else(|| today().year());
    let as_of = opchub_settle::run::default_as_of(year);
    let party = app_facts::party_by_id(&s.store, &a.opc_id)
        .await
        .map_err(settle_error)?
        .ok_or_else(ApiError::not_found)?;
    let base = app_facts::application_facts(&s.store, &pol, "M7.2", &party, year, as_of, &Map::new())
        .await
        .map_err(settle_error)?;
    let move_in = day("move_in", &a.move_in)?;
    let move_out = a.move_out.as_deref().map(|d| day("move_out", d)).transpose()?;
    let months = schedule::rent_months(
        &pol,
        &schedule::opc(&a.opc_id),
        year,
        as_of,
        &base,
        move_in,
        move_out,
        a.monthly_rent_fen,
        a.daily_rent_fen,
    )
    .map_err(|e| ApiError::bad_request("policy_input").with_detail(e.to_string()))?;
    Ok(Json(RentSchedule {
        assignment: a,
        year,
        months,
    }))
}

// ---------------------------------------------------------------- growth (M8.1)

#[derive(Serialize, ToSchema)]
pub struct Milestones {
    pub items: Vec<MilestoneRow>,
    /// Per milestone kind: how many OPCs reached it (committee statistics).
    pub counts: Vec<(String, i64)>,
}

#[utoipa::path(get, path = "/api/v1/milestones", tag = "records", responses((status = 200, body = Milestones)))]
pub async fn milestones(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Milestones>> {
    let p = caller.require()?;
    let own = if p.role() == Role::OpcFounder {
        Some(my_opc(&s, p).await?.id)
    } else {
        None
    };
    let items = s.store.milestones(own.as_deref()).await?;
    let mut counts: Vec<(String, i64)> = opchub_funds::forms::MILESTONES.iter().map(|k| (k.to_string(), 0)).collect();
    for m in &items {
        if let Some(c) = counts.iter_mut().find(|(k, _)| *k == m.kind) {
            c.1 += 1;
        }
    }
    Ok(Json(Milestones { items, counts }))
}
