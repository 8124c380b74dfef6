//! Records (issue 8): an OPC's loans (drawdowns, interest statements, repayments) and the M6.3
//! monthly interest-subsidy claims the engine computes from them; the talent-apartment
//! inventory, assignments of granted M7.2 applications and each month's rent due; growth
//! milestones (M8.1). Schedules are computed in `opchub_funds::schedule` (pure).

use crate::applications::{create_for, loan_facts, NewApplicationRequest};
use crate::settlement::{policy, settle_error, today};
use crate::{App, AppError, AppResult, Principal};
use chrono::{Datelike, NaiveDate};
use opchub_domain::time::{Day, Month};
use opchub_domain::Role;
use opchub_funds::schedule::{self, LoanMonth, RentMonth};
use opchub_settle::apply as app_facts;
use opchub_store::applications::{AppFilter, Application};
use opchub_store::records::{Apartment, Assignment, Loan, MilestoneRow};
use opchub_store::settlement::Party;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

crate::module_errors! {
    /// What the subsidy records refuse.
    pub enum RecordError {
        /// The caller has no company.
        NoCompany => (Forbidden, "no_company"),
        /// The facts do not fit the policy's input.
        PolicyInput => (BadRequest, "policy_input"),
    }
}

async fn my_opc(app: &App, p: &Principal) -> AppResult<Party> {
    app_facts::party_of(&app.store, Role::OpcFounder, &p.user.id)
        .await
        .map_err(settle_error)?
        .ok_or_else(|| AppError::from(RecordError::NoCompany))
}

/// A day typed by the user: exactly `YYYY-MM-DD`, in the platform's years (issue 20).
fn day(field: &str, v: &str) -> AppResult<NaiveDate> {
    Day::parse(v).map(Day::date).map_err(|e| AppError::field(field, e.code()))
}

/// A month typed by the user: exactly `YYYY-MM`, in the platform's years (issue 20).
fn month(field: &str, v: &str) -> AppResult<Month> {
    Month::parse(v).map_err(|e| AppError::field(field, e.code()))
}

fn text(field: &str, v: &str, max: usize) -> AppResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(AppError::field(field, "bad_text"));
    }
    Ok(t.to_string())
}

fn positive(field: &str, v: i64) -> AppResult<i64> {
    if v <= 0 || v > 100_000_000_000 {
        return Err(AppError::field(field, "out_of_range"));
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

pub async fn create_loan_for(app: &App, p: &Principal, r: &NewLoan) -> AppResult<Loan> {
    let opc = my_opc(app, p).await?;
    let bank = text("bank", &r.bank, 64)?;
    let contract = text("contract_no", &r.contract_no, 64)?;
    let principal = positive("principal_fen", r.principal_fen)?;
    Ok(app
        .store
        .create_loan(&p.actor(), &opc.id, &p.user.id, &bank, &contract, principal)
        .await?)
}

/// The caller's OPC's loans.
pub async fn loans_for(app: &App, p: &Principal) -> AppResult<Vec<Loan>> {
    let opc = my_opc(app, p).await?;
    Ok(app.store.loans_of(&opc.id).await?)
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

pub async fn add_entry_for(app: &App, p: &Principal, id: &str, r: &NewLoanEntry) -> AppResult<Loan> {
    let opc = my_opc(app, p).await?;
    let loan = app.store.loan(id).await?;
    if loan.opc_id != opc.id {
        return Err(AppError::not_found());
    }
    if !matches!(r.kind.as_str(), "drawdown" | "interest" | "repayment") {
        return Err(AppError::field("kind", "unknown_kind"));
    }
    let d = day("day", &r.day)?;
    let amount = positive("amount_fen", r.amount_fen)?;
    let month = match (r.kind.as_str(), r.month.as_deref()) {
        ("interest", Some(m)) => Some(month("month", m)?.to_string()),
        ("interest", None) => return Err(AppError::field("month", "required")),
        _ => None,
    };
    let drawn: i64 = loan.entries.iter().filter(|e| e.kind == "drawdown").map(|e| e.amount_fen).sum();
    if r.kind == "drawdown" && drawn + amount > loan.principal_fen {
        return Err(AppError::field("amount_fen", "above_principal"));
    }
    let repaid: i64 = loan.entries.iter().filter(|e| e.kind == "repayment").map(|e| e.amount_fen).sum();
    if r.kind == "repayment" && repaid + amount > drawn {
        return Err(AppError::field("amount_fen", "above_outstanding"));
    }
    Ok(app
        .store
        .add_loan_entry(&p.actor(), id, &r.kind, &d.to_string(), month.as_deref(), amount)
        .await?)
}

#[derive(Serialize, ToSchema)]
pub struct LoanClaims {
    pub year: i32,
    /// Per month: interest paid and the M6.3 subsidy the engine computes for it.
    pub months: Vec<LoanMonth>,
    pub total_fen: i64,
}

/// M6.3: the monthly interest subsidies of the caller's OPC in `year` (default this year).
pub async fn claims_for(app: &App, p: &Principal, year: Option<i32>) -> AppResult<LoanClaims> {
    let year = year.unwrap_or_else(|| today().year());
    let opc = my_opc(app, p).await?;
    let pol = policy(app)?;
    let as_of = opchub_settle::run::default_as_of(year);
    let base = app_facts::application_facts(&app.store, &pol, "M6.3", &opc, year, as_of, &Map::new())
        .await
        .map_err(settle_error)?;
    let loans = loan_facts(&app.store.loans_of(&opc.id).await?);
    let months = schedule::loan_months(&pol, &schedule::opc(&opc.id), year, as_of, &base, &loans)
        .map_err(|e| AppError::from(RecordError::PolicyInput).with_detail(e.to_string()))?;
    Ok(LoanClaims {
        year,
        total_fen: months.iter().map(|m| m.subsidy_fen).sum(),
        months,
    })
}

#[derive(Deserialize, ToSchema)]
pub struct NewClaim {
    /// `YYYY-MM`: the month whose interest statements are claimed.
    pub month: String,
}

/// Generates the M6.3 application for one month from the loan records (a draft to add the
/// bank statements to and submit).
pub async fn create_claim_for(app: &App, p: &Principal, r: &NewClaim) -> AppResult<Application> {
    let opc = my_opc(app, p).await?;
    let claimed = month("month", &r.month)?;
    let mut loans = loan_facts(&app.store.loans_of(&opc.id).await?);
    for l in &mut loans {
        let kept: Vec<Value> = l["interest"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i["month"] == claimed.to_string().as_str())
            .collect();
        l["interest"] = Value::Array(kept);
    }
    loans.retain(|l| l["interest"].as_array().is_some_and(|a| !a.is_empty()));
    if loans.is_empty() {
        return Err(AppError::field("month", "no_interest_recorded"));
    }
    let mut answers = Map::new();
    answers.insert("loans".into(), Value::Array(loans));
    create_for(
        app,
        p,
        &NewApplicationRequest {
            clause: "M6.3".into(),
            year: Some(claimed.year()),
            answers,
        },
    )
    .await
}

// ---------------------------------------------------------------- housing (M7)

/// Talent housing is managed by the committee and the human-resources agency.
async fn housing_staff(app: &App, p: &Principal) -> AppResult<()> {
    match p.role() {
        Role::Committee => Ok(()),
        Role::Agency if app.store.agency_of(&p.user.id).await?.as_deref() == Some("human_resources") => Ok(()),
        _ => Err(crate::applications::ApplicationError::OtherAgency.into()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewApartment {
    pub name: String,
    pub address: String,
    pub monthly_rent_fen: i64,
    pub daily_rent_fen: i64,
}

pub async fn create_apartment_for(app: &App, p: &Principal, r: &NewApartment) -> AppResult<Apartment> {
    // Input first (a clear 422), then who may manage housing.
    let (name, address) = (text("name", &r.name, 64)?, text("address", &r.address, 200)?);
    let (monthly, daily) = (
        positive("monthly_rent_fen", r.monthly_rent_fen)?,
        positive("daily_rent_fen", r.daily_rent_fen)?,
    );
    housing_staff(app, p).await?;
    Ok(app.store.create_apartment(&p.actor(), &name, &address, monthly, daily).await?)
}

pub async fn apartments(app: &App) -> AppResult<Vec<Apartment>> {
    Ok(app.store.apartments().await?)
}

#[derive(Deserialize, ToSchema)]
pub struct NewAssignment {
    pub apartment_id: String,
    /// A granted M7.2 application.
    pub application_id: String,
    pub move_in: String,
}

/// M7.2: assigns an apartment to a granted housing application.
pub async fn assign_for(app: &App, p: &Principal, r: &NewAssignment) -> AppResult<Assignment> {
    let a = app
        .store
        .application(&r.application_id)
        .await
        .map_err(|_| AppError::field("application_id", "not_found"))?;
    if a.clause != "M7.2" || a.status != "granted" {
        return Err(AppError::field("application_id", "not_granted_housing"));
    }
    if !app.store.apartments().await?.iter().any(|x| x.id == r.apartment_id) {
        return Err(AppError::field("apartment_id", "not_found"));
    }
    let d = day("move_in", &r.move_in)?;
    housing_staff(app, p).await?;
    Ok(app
        .store
        .assign_apartment(&p.actor(), &r.apartment_id, &a.id, &a.beneficiary, &d.to_string())
        .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct MoveOut {
    pub move_out: String,
}

pub async fn move_out_for(app: &App, p: &Principal, id: &str, r: &MoveOut) -> AppResult<Assignment> {
    let d = day("move_out", &r.move_out)?;
    housing_staff(app, p).await?;
    Ok(app.store.end_assignment(&p.actor(), id, &d.to_string()).await?)
}

#[derive(Serialize, ToSchema)]
pub struct RentSchedule {
    pub assignment: Assignment,
    pub year: i32,
    pub months: Vec<RentMonth>,
}

/// M7.2: each month's rent due of an assignment in `year` (default this year). A founder sees
/// only its own OPC's.
pub async fn rent_schedule_for(app: &App, p: &Principal, id: &str, year: Option<i32>) -> AppResult<RentSchedule> {
    let a = app.store.assignment(id).await?;
    if p.role() == Role::OpcFounder && my_opc(app, p).await?.id != a.opc_id {
        return Err(AppError::not_found());
    }
    let pol = policy(app)?;
    let year = year.unwrap_or_else(|| today().year());
    let as_of = opchub_settle::run::default_as_of(year);
    let party = app_facts::party_by_id(&app.store, &a.opc_id)
        .await
        .map_err(settle_error)?
        .ok_or_else(AppError::not_found)?;
    let base = app_facts::application_facts(&app.store, &pol, "M7.2", &party, year, as_of, &Map::new())
        .await
        .map_err(settle_error)?;
    // Stored days were checked when typed; read them as stored.
    let stored = |field: &str, v: &str| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| AppError::field(field, "not_a_date"));
    let move_in = stored("move_in", &a.move_in)?;
    let move_out = a.move_out.as_deref().map(|d| stored("move_out", d)).transpose()?;
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
    .map_err(|e| AppError::from(RecordError::PolicyInput).with_detail(e.to_string()))?;
    Ok(RentSchedule {
        assignment: a,
        year,
        months,
    })
}

/// The housing office's view: apartments, assignments and granted M7.2 applications not yet
/// assigned an apartment.
#[derive(Serialize)]
pub struct HousingOverview {
    pub apartments: Vec<Apartment>,
    pub assignments: Vec<Assignment>,
    pub granted: Vec<Application>,
}

pub async fn housing_overview(app: &App) -> AppResult<HousingOverview> {
    let apartments = app.store.apartments().await?;
    let assignments = app.store.assignments(None).await?;
    let granted = app
        .store
        .applications(&AppFilter {
            status: Some("granted".into()),
            clause: Some("M7.2".into()),
            limit: 500,
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|a| !assignments.iter().any(|h| h.application_id == a.id))
        .collect();
    Ok(HousingOverview {
        apartments,
        assignments,
        granted,
    })
}

// ---------------------------------------------------------------- growth (M8.1)

#[derive(Serialize, ToSchema)]
pub struct Milestones {
    pub items: Vec<MilestoneRow>,
    /// Per milestone kind: how many OPCs reached it (committee statistics).
    pub counts: Vec<(String, i64)>,
}

/// M8.1 milestones: a founder's own OPC's, everyone's for staff, with counts per kind.
pub async fn milestones_for(app: &App, p: &Principal) -> AppResult<Milestones> {
    let own = if p.role() == Role::OpcFounder {
        Some(my_opc(app, p).await?.id)
    } else {
        None
    };
    let items = app.store.milestones(own.as_deref()).await?;
    Ok(Milestones {
        counts: milestone_counts(&items),
        items,
    })
}

/// Per milestone kind (M8.1), how many of `items` reached it.
pub fn milestone_counts(items: &[MilestoneRow]) -> Vec<(String, i64)> {
    let mut counts: Vec<(String, i64)> = opchub_funds::forms::MILESTONES.iter().map(|k| (k.to_string(), 0)).collect();
    for m in items {
        if let Some(c) = counts.iter_mut().find(|(k, _)| *k == m.kind) {
            c.1 += 1;
        }
    }
    counts
}

/// Per milestone kind (M8.1), how many OPCs of the whole district reached it (the committee's
/// dashboard; a failed read shows no milestones).
pub async fn milestone_counts_all(app: &App) -> Vec<(String, i64)> {
    milestone_counts(&app.store.milestones(None).await.unwrap_or_default())
}

// ---------------------------------------------------------------- the OPC's records page

/// Everything /my/records shows: the OPC's loans and this year's M6.3 claims, the rent schedule
/// of each of its apartments (M7.2) and its milestones (M8.1).
#[derive(Serialize)]
pub struct MyRecords {
    pub loans: Vec<Loan>,
    pub claims: LoanClaims,
    pub housing: Vec<RentSchedule>,
    pub milestones: Vec<MilestoneRow>,
}

pub async fn my_records(app: &App, p: &Principal) -> AppResult<MyRecords> {
    let year = today().year();
    let loans = loans_for(app, p).await?;
    let claims = claims_for(app, p, Some(year)).await?;
    let opc = app.store.opc_of_founder(&p.user.id).await?.map(|o| o.id).unwrap_or_default();
    let mut housing = vec![];
    for a in app.store.assignments(Some(&opc)).await? {
        housing.push(rent_schedule_for(app, p, &a.id, Some(year)).await?);
    }
    let milestones = app.store.milestones(Some(&opc)).await?;
    Ok(MyRecords {
        loans,
        claims,
        housing,
        milestones,
    })
}
