//! Application pages (issue 8): the applicant's list and forms (generated from the policy file,
//! amounts typed in yuan), one application's page (evidence upload, submission, timeline, the
//! engine's amount and trace, the reviewer's actions, recovery), the finance bureau's payment
//! page and the committee's dashboard. Validation and rules are `opchub_app::applications`'s
//! (the same functions the JSON API calls); handlers translate forms and show errors next to
//! the form.

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
use opchub_app::applications::{self as api, ListQuery, NewApplicationRequest, PayItem, PayRequest, RecoveryRequest, ReviewRequest};
use opchub_domain::Role;
use opchub_funds::{Action, FieldKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

fn need(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.require()
}

/// Yuan as typed (`12,345.60`) → fen; anything else is passed through for the API to refuse
/// with the exact field (`rd_spend[2].amount_fen`).
fn yuan(s: &str) -> Value {
    match fen_of("", Some(s)) {
        Ok(Some(fen)) => json!(fen),
        _ => json!(s.trim()),
    }
}

#[derive(Deserialize, Default)]
pub struct ListPage {
    pub overdue: Option<String>,
    pub done: Option<String>,
}

pub async fn list(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Query(q): Query<ListPage>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let lq = ListQuery {
            overdue: q.overdue.as_deref().map(|v| v == "1"),
            ..ListQuery::default()
        };
        let items = api::list_for(&s, p, &lq).await?;
        let types = api::types_for(&s, p)?;
        let reviewer = api::is_reviewer(p);
        Ok::<_, ApiError>(context! { items => items, types => types, reviewer => reviewer, overdue => q.overdue.is_some(), done => q.done })
    }
    .await;
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "applications.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e),
    }
}

#[derive(Deserialize, Default)]
pub struct NewPage {
    pub clause: String,
}

/// Rows offered for dated lines and loan interest months.
const ROWS: usize = 6;

pub async fn new_form(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NewPage>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::prefill_for(&s, p, &q.clause, None).await {
        Ok(pre) => render(
            &s,
            Some(p),
            &csrf.0,
            "application_new.html",
            StatusCode::OK,
            context! { pre => pre, rows => (0..ROWS).collect::<Vec<_>>(), error => Option::<String>::None, year => opchub_app::settlement::today().format("%Y").to_string() },
        ),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

/// Reads the generated form back into answers: checkboxes, yuan amounts, dated rows.
fn answers_from(spec: &opchub_funds::FormSpec, pairs: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in &spec.fields {
        let v = form_value(pairs, &f.name);
        match f.kind {
            FieldKind::Declare => {
                out.insert(f.name.clone(), json!(v == "on" || v == "true"));
            }
            FieldKind::Fen if !v.trim().is_empty() => {
                out.insert(f.name.clone(), yuan(v));
            }
            FieldKind::Date | FieldKind::Text | FieldKind::Choice if !v.trim().is_empty() => {
                out.insert(f.name.clone(), json!(v.trim()));
            }
            FieldKind::Entries => {
                let rows: Vec<Value> = (0..ROWS)
                    .filter_map(|i| {
                        let d = form_value(pairs, &format!("{}.{i}.date", f.name));
                        let a = form_value(pairs, &format!("{}.{i}.amount", f.name));
                        (!d.is_empty() || !a.is_empty()).then(
                            || json!({ "date": d, "amount_fen": yuan(a), "note": form_value(pairs, &format!("{}.{i}.note", f.name)) }),
                        )
                    })
                    .collect();
                out.insert(f.name.clone(), Value::Array(rows));
            }
            FieldKind::Loans => {
                let interest: Vec<Value> = (0..ROWS)
                    .filter_map(|i| {
                        let m = form_value(pairs, &format!("{}.interest.{i}.month", f.name));
                        let a = form_value(pairs, &format!("{}.interest.{i}.amount", f.name));
                        (!m.is_empty() || !a.is_empty()).then(|| json!({ "month": m, "amount_fen": yuan(a) }))
                    })
                    .collect();
                let id = form_value(pairs, &format!("{}.id", f.name));
                if !id.is_empty() || !interest.is_empty() {
                    out.insert(
                        f.name.clone(),
                        json!([{ "id": id, "principal_fen": yuan(form_value(pairs, &format!("{}.principal", f.name))),
                                 "first_drawdown": form_value(pairs, &format!("{}.first_drawdown", f.name)), "interest": interest }]),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

pub async fn create(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let pairs = form_pairs(&body);
    let clause = form_value(&pairs, "clause").to_string();
    let pre = match api::prefill_for(&s, p, &clause, None).await {
        Ok(pre) => pre,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let req = NewApplicationRequest {
        clause: clause.clone(),
        year: form_value(&pairs, "year").parse().ok(),
        answers: answers_from(&pre.form, &pairs),
    };
    match api::create_for(&s, p, &req).await {
        Ok(a) => Redirect::to(&format!("/applications/{}", a.id)).into_response(),
        Err(e) => render(
            &s,
            Some(p),
            &csrf.0,
            "application_new.html",
            StatusCode::UNPROCESSABLE_ENTITY,
            context! { pre => pre, rows => (0..ROWS).collect::<Vec<_>>(), error => error_text(&e.into()), year => form_value(&pairs, "year") },
        ),
    }
}

#[derive(Deserialize, Default)]
pub struct ShowPage {
    pub done: Option<String>,
}

async fn show_with(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    match api::view_for(s, p, id).await {
        Ok(v) => {
            let api::Actions { can_act, mine, editable } = api::actions_for(s, p, &v).await;
            let decision: Value = v
                .application
                .decision
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            render(
                s,
                Some(p),
                csrf,
                "application.html",
                status,
                context! {
                    v => v, can_act => can_act, mine => mine, editable => editable, decision => decision, error => error, done => done,
                    committee => p.role() == Role::Committee,
                },
            )
        }
        Err(e) => page_error(s, Some(p), e.into()),
    }
}

pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(q): Query<ShowPage>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    show_with(&s, p, &csrf.0, &id, StatusCode::OK, None, q.done).await
}

/// A printable receipt (回执) of an application (issue 21 item 6): what was received when, for
/// whom, where it stands; the print stylesheet leaves the site's frame off.
pub async fn receipt(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::view_for(&s, p, &id).await {
        Ok(v) => render(
            &s,
            Some(p),
            &csrf.0,
            "application_receipt.html",
            StatusCode::OK,
            context! { v => v, now => opchub_store::now_ms() },
        ),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

pub async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let pairs = form_pairs(&body);
    match api::submit_for(&s, p, &id, form_value(&pairs, "version").parse().unwrap_or(-1)).await {
        Ok(_) => Redirect::to(&format!("/applications/{id}?done=submitted")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            show_with(&s, p, &csrf.0, &id, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let pairs = form_pairs(&body);
    let action: Option<Action> = serde_json::from_value(json!(form_value(&pairs, "action"))).ok();
    let Some(action) = action else {
        return show_with(
            &s,
            p,
            &csrf.0,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(error_text(&ApiError::field("action", "invalid"))),
            None,
        )
        .await;
    };
    let amount_fen = match fen_of("amount_fen", Some(form_value(&pairs, "amount"))) {
        Ok(f) => f,
        Err(e) => return show_with(&s, p, &csrf.0, &id, e.status, Some(error_text(&e)), None).await,
    };
    let req = ReviewRequest {
        version: form_value(&pairs, "version").parse().unwrap_or(-1),
        action,
        reason: form_value(&pairs, "reason").to_string(),
        amount_fen,
    };
    match api::review_for(&s, p, &id, &req).await {
        Ok(_) => Redirect::to(&format!("/applications/{id}?done=reviewed")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            show_with(&s, p, &csrf.0, &id, e.status, Some(error_text(&e)), None).await
        }
    }
}

pub async fn recovery(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let pairs = form_pairs(&body);
    let req = RecoveryRequest {
        kind: form_value(&pairs, "kind").to_string(),
        file_ids: pairs.iter().filter(|(k, _)| k == "file_id").map(|(_, v)| v.clone()).collect(),
        reason: form_value(&pairs, "reason").to_string(),
    };
    match api::recovery_for(&s, p, &id, &req).await {
        Ok(_) => Redirect::to(&format!("/applications/{id}?done=recovery")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            show_with(&s, p, &csrf.0, &id, e.status, Some(error_text(&e)), None).await
        }
    }
}

// ---------------------------------------------------------------- finance

async fn payments_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let res = async {
        let approved = api::list_for(
            s,
            p,
            &ListQuery {
                status: Some("approved".into()),
                view: Some("queue".into()),
                ..ListQuery::default()
            },
        )
        .await?;
        let batches = api::batches(s).await?;
        Ok::<_, ApiError>(
            context! { approved => approved, batches => batches, error => error, done => done, finance => p.role() == Role::Finance },
        )
    }
    .await;
    match res {
        Ok(ctx) => render(s, Some(p), csrf, "fund_payments.html", status, ctx),
        Err(e) => page_error(s, Some(p), e),
    }
}

pub async fn payments(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ShowPage>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    payments_page(&s, p, &csrf.0, StatusCode::OK, None, q.done).await
}

pub async fn pay(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, body: Bytes) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let pairs = form_pairs(&body);
    let items: Vec<PayItem> = pairs
        .iter()
        .filter(|(k, _)| k == "application_id")
        .map(|(_, id)| PayItem {
            application_id: id.clone(),
            payment_reference: form_value(&pairs, &format!("ref.{id}")).to_string(),
        })
        .collect();
    let req = PayRequest {
        reference: form_value(&pairs, "reference").to_string(),
        items,
    };
    match api::pay_for(&s, p, &req).await {
        Ok(_) => Redirect::to("/finance/payments?done=paid").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            payments_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), None).await
        }
    }
}

// ---------------------------------------------------------------- dashboard

/// The funds dashboard's charts (issue 21 item 4), as inline SVG in the page's language:
/// settled clauses (免申即享) and applied-for clauses by approved, paid, recovered and budget,
/// what was paid per month, and how settlement lines were answered.
fn funds_charts(d: &api::Dashboard) -> Value {
    use super::chart::{self, Bar, Labels};
    use super::chart_bars::{self, Row};
    use super::ledger::money;
    let lang = crate::i18n::current_lang();
    let t = |k: &str| crate::i18n::text(&lang, k);
    let series = |keys: &[&str]| keys.iter().map(|k| t(&format!("funds_chart.{k}"))).collect::<Vec<_>>();
    let row = |clause: &str, values: Vec<Option<i64>>, names: &[String]| Row {
        label: clause.to_string(),
        titles: values
            .iter()
            .zip(names)
            .map(|(v, n)| v.map(|v| format!("{clause} {n} {}", money(v))).unwrap_or_default())
            .collect(),
        values,
    };
    let settled_names = series(&["approved", "paid", "recovered", "budget"]);
    let settled: Vec<Row> = d
        .settled
        .iter()
        .map(|c| {
            row(
                &c.clause,
                vec![Some(c.approved_fen), Some(c.paid_fen), Some(c.recovery_fen), c.budget_fen],
                &settled_names,
            )
        })
        .collect();
    let applied_names = series(&["approved", "paid", "budget"]);
    let applied: Vec<Row> = d
        .clauses
        .iter()
        .map(|c| {
            row(
                &c.clause,
                vec![Some(c.approved_fen), Some(c.paid_fen), c.budget_fen],
                &applied_names,
            )
        })
        .collect();
    let labels = |title: &str, desc: &str| Labels {
        title: t(title),
        desc: t(desc),
        ..Default::default()
    };
    let months: Vec<Bar> = d
        .paid_by_month
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(i, v)| {
            let m = u32::try_from(i + 1).unwrap_or(1);
            Bar {
                day: m,
                value: *v,
                title: format!("{}{} {}", m, t("funds_chart.month_suffix"), money(*v)),
            }
        })
        .collect();
    let month_labels = Labels {
        title: t("funds_chart.by_month"),
        desc: t("funds_chart.by_month_desc"),
        x_axis: t("funds_chart.month"),
        y_axis: t("funds_chart.paid"),
    };
    let order = ["confirmed", "declined", "lapsed", "pending"];
    let parts: Vec<(String, i64)> = order
        .iter()
        .map(|k| {
            let n = d.confirmations.iter().filter(|(c, _)| c == k).map(|(_, n)| *n).sum();
            (t(&format!("funds_chart.confirmation_{k}")), n)
        })
        .collect();
    json!({
        "settled": chart_bars::grouped("chart-settled", &settled, &settled_names, &labels("funds_chart.settled", "funds_chart.settled_desc"), money),
        "applied": chart_bars::grouped("chart-applied", &applied, &applied_names, &labels("funds_chart.applied", "funds_chart.applied_desc"), money),
        "months": chart::daily_bars_as("chart-months", 12, &months, &month_labels, money),
        "confirmations": chart_bars::shares("chart-confirmations", &parts, &labels("funds_chart.confirmations", "funds_chart.confirmations_desc")),
    })
}

pub async fn dashboard(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let year = chrono::Datelike::year(&opchub_app::settlement::today());
    match api::dashboard_for(&s, year).await {
        Ok(d) => {
            let charts = funds_charts(&d);
            // M8.1: how many OPCs reached each growth milestone.
            let milestones = opchub_app::records::milestone_counts_all(&s).await;
            render(
                &s,
                Some(p),
                &csrf.0,
                "funds_dashboard.html",
                StatusCode::OK,
                context! { d => d, charts => charts, milestones => milestones },
            )
        }
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}
