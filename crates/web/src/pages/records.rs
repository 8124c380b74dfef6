//! Record pages (issue 8): the OPC's loans with their monthly M6.3 claims, its talent-apartment
//! rent schedule and growth milestones (/my/records); the apartment inventory and assignments for
//! the committee and the human-resources agency (/housing). The JSON API does the work; these
//! handlers translate forms (amounts typed in yuan) and show errors next to the form.

use super::{page_error, render};
use crate::api::records::{self as api, MoveOut, NewApartment, NewAssignment, NewClaim, NewLoan, NewLoanEntry, YearQuery};
use crate::api::ApiJson;
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::context;
use opchub_domain::Money;
use serde::Deserialize;
use serde_json::Value;

fn pairs(body: &Bytes) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Yuan as typed → fen; unreadable amounts become -1 so the API names the field.
fn fen(s: &str) -> i64 {
    s.trim().replace([',', '，'], "").parse::<Money>().map(|m| m.fen()).unwrap_or(-1)
}

fn message(e: &ApiError) -> String {
    let (msg, fields) = e.messages(&i18n::current_lang());
    let detail: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if detail.is_empty() {
        msg
    } else {
        format!("{msg}（{}）", detail.join("；"))
    }
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
    let f = pairs(&body);
    let req = NewLoan {
        bank: get(&f, "bank").into(),
        contract_no: get(&f, "contract_no").into(),
        principal_fen: fen(get(&f, "principal")),
    };
    match api::create_loan(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/my/records?done=loan").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
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
    let f = pairs(&body);
    let month = get(&f, "month").trim();
    let req = NewLoanEntry {
        kind: get(&f, "kind").into(),
        day: get(&f, "day").into(),
        month: (!month.is_empty()).then(|| month.to_string()),
        amount_fen: fen(get(&f, "amount")),
    };
    match api::add_entry(State(s.clone()), caller_of(p), Path(id), ApiJson(req)).await {
        Ok(_) => Redirect::to("/my/records?done=entry").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
    }
}

pub async fn claim(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = pairs(&body);
    let req = NewClaim {
        month: get(&f, "month").into(),
    };
    match api::create_claim(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(resp) => {
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap_or_default();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            Redirect::to(&format!("/applications/{}", v["id"].as_str().unwrap_or_default())).into_response()
        }
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
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
    let f = pairs(&body);
    let req = NewApartment {
        name: get(&f, "name").into(),
        address: get(&f, "address").into(),
        monthly_rent_fen: fen(get(&f, "monthly_rent")),
        daily_rent_fen: fen(get(&f, "daily_rent")),
    };
    match api::create_apartment(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=apartment").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
    }
}

pub async fn assign(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let f = pairs(&body);
    let req = NewAssignment {
        apartment_id: get(&f, "apartment_id").into(),
        application_id: get(&f, "application_id").into(),
        move_in: get(&f, "move_in").into(),
    };
    match api::assign(State(s.clone()), caller_of(p), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=assigned").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
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
    let f = pairs(&body);
    let req = MoveOut {
        move_out: get(&f, "move_out").into(),
    };
    match api::move_out(State(s.clone()), caller_of(p), Path(id), ApiJson(req)).await {
        Ok(_) => Redirect::to("/housing?done=moved_out").into_response(),
        Err(e) => housing_page(&s, p, &csrf.0, e.status, Some(message(&e)), None).await,
    }
}
