//! Record pages (issue 8): the OPC's loans with their monthly M6.3 claims, its talent-apartment
//! rent schedule and growth milestones (/my/records); the apartment inventory and assignments for
//! the committee and the human-resources agency (/housing). The JSON API does the work; these
//! handlers translate forms (amounts typed in yuan) and show errors next to the form.

use super::{error_text, fen_of, form_pairs, form_value, page_error, render};
use crate::api::records::{self as api, MoveOut, NewApartment, NewAssignment, NewClaim, NewLoan, NewLoanEntry, YearQuery};
use crate::api::ApiJson;
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;

/// An amount typed in yuan, in fen (empty = 0, which the API refuses where it must be positive).
fn amount(f: &[(String, String)], name: &str, field: &str) -> Result<i64, ApiError> {
    Ok(fen_of(field, Some(form_value(f, name)))?.unwrap_or(0))
}

fn caller_of(p: &Principal) -> Caller {
    Caller(Some(p.clone()))
}

#[derive(Deserialize, Default)]
pub struct Done {
    pub done: Option<String>,
}

async fn mine_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: Option<String>) -> Response {
    let res = async {
        let year = chrono::Datelike::year(&crate::api::settlement::today());
        let loans = api::loans(State(s.clone()), caller_of(p)).await?.0;
        let claims = api::claims(State(s.clone()), caller_of(p), Query(YearQuery { year: Some(year) }))
            .await?
            .0;
        let opc = s.store.opc_of_founder(&p.user.id).await?.map(|o| o.id).unwrap_or_default();
        let mut housing = vec![];
        for a in s.store.assignments(Some(&opc)).await? {
            housing.push(
                api::rent_schedule(
                    State(s.clone()),
                    caller_of(p),
                    Path(a.id.clone()),
                    Query(YearQuery { year: Some(year) }),
                )
                .await?
                .0,
            );
        }
        let milestones = s.store.milestones(Some(&opc)).await?;
        Ok::<_, ApiError>(
            context! { loans => loans, claims => claims, housing => housing, milestones => milestones, error => error, done => done },
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
    match api::create_loan(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/my/records?done=loan").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
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
    match api::add_entry(State(s.clone()), caller_of(p), Path(id), ApiJson(req)).await {
        Ok(_) => Redirect::to("/my/records?done=entry").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
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
    match api::create_claim(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(resp) => {
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap_or_default();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            Redirect::to(&format!("/applications/{}", v["id"].as_str().unwrap_or_default())).into_response()
        }
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
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
        let apartments = s.store.apartments().await?;
        let assignments = s.store.assignments(None).await?;
        let granted = s
            .store
            .applications(&opchub_store::applications::AppFilter {
                status: Some("granted".into()),
                clause: Some("M7.2".into()),
                limit: 500,
                ..Default::default()
            })
            .await?
            .into_iter()
            .filter(|a| !assignments.iter().any(|h| h.application_id == a.id))
            .collect::<Vec<_>>();
        Ok::<_, ApiError>(
            context! { apartments => apartments, assignments => assignments, granted => granted, error => error, done => done },
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
    match api::create_apartment(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=apartment").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
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
    match api::assign(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=assigned").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
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
    match api::move_out(State(s.clone()), caller_of(p), Path(id), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=moved_out").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await,
    }
}
