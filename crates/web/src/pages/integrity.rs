//! Integrity pages (issue 18): the committee's and auditor's findings — by detector and amount
//! at stake, each with its graph (inline SVG), evidence table, the party's statement and the
//! committee's decision form — and a flagged party's own findings with its answer form. The
//! use cases are `opchub_app::integrity`'s; handlers translate forms.

use super::ring_graph::{ring, Arrow};
use super::{error_text, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::context;
use opchub_app::integrity::{self as app, Answer, Decide};
use opchub_domain::money::Money;
use opchub_domain::Role;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub year: Option<i32>,
    pub done: Option<String>,
}

async fn findings_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    status: StatusCode,
    year: Option<i32>,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let (list, names) = match (app::findings_for(s, p, year).await, app::party_names(s).await) {
        (Ok(l), Ok(n)) => (l, n),
        (Err(e), _) | (_, Err(e)) => return page_error(s, Some(p), e.into()),
    };
    let en = i18n::current_lang() == "en";
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let rows: Vec<Value> = list
        .iter()
        .map(|f| {
            let nodes: Vec<String> = f.parties.iter().map(|x| name(x)).collect();
            let arrows: Vec<Arrow> = f
                .evidence
                .iter()
                .filter_map(|(a, b, calls, fen)| {
                    let from = f.parties.iter().position(|x| x == a)?;
                    let to = f.parties.iter().position(|x| x == b)?;
                    Some(Arrow {
                        from,
                        to,
                        fen: *fen,
                        title: format!("{} → {}: {calls} × {}", name(a), name(b), Money::from_fen(*fen)),
                    })
                })
                .collect();
            let explanation = if en { &f.explanation_en } else { &f.explanation_zh };
            json!({
                "f": f,
                "names": nodes,
                "explanation": explanation,
                "amount": Money::from_fen(f.amount_at_stake_fen).to_string(),
                "score": format!("{:.2}", f.score_ppm as f64 / 1_000_000.0),
                "graph": ring(&f.id, &nodes, &arrows, &i18n::text(&i18n::current_lang(), &format!("findings.detector_{}", f.detector)), explanation),
                "evidence": f.evidence.iter().map(|(a, b, calls, fen)| json!({
                    "from": name(a), "to": name(b), "calls": calls, "amount": Money::from_fen(*fen).to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    render(
        s,
        Some(p),
        csrf,
        "integrity_findings.html",
        status,
        context! {
            rows => rows,
            year => year,
            committee => p.role() == Role::Committee,
            party => matches!(p.role(), Role::OpcFounder | Role::CommunityOperator | Role::Enterprise),
            error => error,
            done => done,
        },
    )
}

/// The findings the caller may read (all for the committee and the auditor, its own for a party).
pub async fn findings(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    findings_page(&s, p, &csrf.0, StatusCode::OK, q.year, None, q.done).await
}

#[derive(Deserialize, Default)]
pub struct ScanForm {
    pub year: Option<String>,
}

/// The committee scans a year.
pub async fn scan(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Form(f): Form<ScanForm>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let Some(year) = f.year.as_deref().and_then(|y| y.trim().parse::<i32>().ok()) else {
        let e = ApiError::from(opchub_app::AppError::field("year", "not_a_number"));
        return findings_page(&s, p, &csrf.0, e.status, None, Some(error_text(&e)), None).await;
    };
    match app::scan_for(&s, p, year).await {
        Ok(_) => Redirect::to(&format!("/integrity?year={year}&done=scanned")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            findings_page(&s, p, &csrf.0, e.status, Some(year), Some(error_text(&e)), None).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct DecideForm {
    pub decision: Option<String>,
    pub reason: Option<String>,
}

/// The committee upholds or dismisses a finding.
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let d = Decide {
        decision: f.decision.unwrap_or_default(),
        reason: f.reason.unwrap_or_default(),
    };
    match app::decide_for(&s, p, &id, &d).await {
        Ok(x) => Redirect::to(&format!("/integrity?year={}&done=decided#finding-{id}", x.year)).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            findings_page(&s, p, &csrf.0, e.status, None, Some(error_text(&e)), None).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AnswerForm {
    pub statement: Option<String>,
}

/// A flagged party answers a finding (申辩).
pub async fn answer(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<AnswerForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let a = Answer {
        statement: f.statement.unwrap_or_default(),
    };
    match app::answer_for(&s, p, &id, &a).await {
        Ok(_) => Redirect::to(&format!("/integrity?done=answered#finding-{id}")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            findings_page(&s, p, &csrf.0, e.status, None, Some(error_text(&e)), None).await
        }
    }
}
