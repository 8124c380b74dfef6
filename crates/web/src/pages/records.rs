//! Record pages (issue 8): the OPC's loans with their monthly M6.3 claims, its talent-apartment
//! rent schedule and growth milestones (/my/records); the apartment inventory and assignments for
//! the committee and the human-resources agency (/housing). `opchub_app::records` does the work (the
//! same functions the JSON API calls); these handlers translate forms (amounts typed in yuan) and show errors next to the form.

use super::{error_text, fen_of, form_pairs, form_value, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::context;
use opchub_app::records::{self as api, MoveOut, NewApartment, NewAssignment, NewClaim, NewLoan, NewLoanEntry};
use serde::Deserialize;

/// An amount typed in yuan, in fen (empty = 0, which the API refuses where it must be positive).
fn amount(f: &[(String, String)], name: &str, field: &str) -> Result<i64, ApiError> {
    Ok(fen_of(field, Some(form_value(f, name)))?.unwrap_or(0))
}

#[derive(Deserialize, Default)]
pub struct Done {
    pub done: Option<String>,
}

async fn mine_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: Option<String>) -> Response {
    let res = async {
        let r = api::my_records(s, p).await?;
        Ok::<_, ApiError>(
            context! { loans => r.loans, claims => r.claims, housing => r.housing, milestones => r.milestones, error => error, done => done },
        )
    }
    .await;
    match res {
        Ok(ctx) => render(s, Some(p), csrf, "my_records.html", status, ctx),
        Err(e) => page_error(s, Some(p), e),
    }
}

pub async fn mine(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Query(q): Query<Done>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    mine_page(&s, p, &csrf.0, StatusCode::OK, None, q.done).await
}

pub async fn add_loan(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let principal_fen = match amount(&f, "principal", "principal_fen") {
        Ok(v) => v,
        Err(e) => return mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
    };
    let req = NewLoan {
        bank: form_value(&f, "bank").into(),
        contract_no: form_value(&f, "contract_no").into(),
        principal_fen,
    };
    match api::create_loan_for(&s, p, &req).await {
        Ok(_) => Redirect::to("/my/records?done=loan").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn add_entry(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let month = form_value(&f, "month").trim();
    let amount_fen = match amount(&f, "amount", "amount_fen") {
        Ok(v) => v,
        Err(e) => return mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
    };
    let req = NewLoanEntry {
        kind: form_value(&f, "kind").into(),
        day: form_value(&f, "day").into(),
        month: (!month.is_empty()).then(|| month.to_string()),
        amount_fen,
    };
    match api::add_entry_for(&s, p, &id, &req).await {
        Ok(_) => Redirect::to("/my/records?done=entry").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn claim(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let req = NewClaim {
        month: form_value(&f, "month").into(),
    };
    match api::create_claim_for(&s, p, &req).await {
        Ok(a) => Redirect::to(&format!("/applications/{}", a.id)).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

// ---------------------------------------------------------------- housing

async fn housing_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let res = async {
        let h = api::housing_overview(s).await?;
        Ok::<_, ApiError>(
            context! { apartments => h.apartments, assignments => h.assignments, granted => h.granted, error => error, done => done },
        )
    }
    .await;
    match res {
        Ok(ctx) => render(s, Some(p), csrf, "housing.html", status, ctx),
        Err(e) => page_error(s, Some(p), e),
    }
}

pub async fn housing(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Query(q): Query<Done>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    housing_page(&s, p, &csrf.0, StatusCode::OK, None, q.done).await
}

pub async fn add_apartment(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let rents = amount(&f, "monthly_rent", "monthly_rent_fen").and_then(|m| Ok((m, amount(&f, "daily_rent", "daily_rent_fen")?)));
    let (monthly_rent_fen, daily_rent_fen) = match rents {
        Ok(v) => v,
        Err(e) => return housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
    };
    let req = NewApartment {
        name: form_value(&f, "name").into(),
        address: form_value(&f, "address").into(),
        monthly_rent_fen,
        daily_rent_fen,
    };
    match api::create_apartment_for(&s, p, &req).await {
        Ok(_) => Redirect::to("/housing?done=apartment").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn assign(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let req = NewAssignment {
        apartment_id: form_value(&f, "apartment_id").into(),
        application_id: form_value(&f, "application_id").into(),
        move_in: form_value(&f, "move_in").into(),
    };
    match api::assign_for(&s, p, &req).await {
        Ok(_) => Redirect::to("/housing?done=assigned").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn move_out(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = form_pairs(&body);
    let req = MoveOut {
        move_out: form_value(&f, "move_out").into(),
    };
    match api::move_out_for(&s, p, &id, &req).await {
        Ok(_) => Redirect::to("/housing?done=moved_out").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}
