//! Policy and settlement pages (issue 6): the policy browser (every clause with its values and
//! their sources), the "what can I get" calculator (政策计算器) from the caller's own platform
//! data, the beneficiary's confirmation page (意愿确认), and the committee's settlement pages —
//! draft a batch, what-if, import F3 lists, read lines with their traces, approve, export.
//! Validation and computation are `opchub_app::settlement`'s (the same functions the JSON
//! API calls); handlers translate forms.

use super::{error_text, fen_of, field_messages, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::settlement::{self as api, Confirm, NewOverlap, NewSettlement, WhatIf};
use opchub_domain::Role;
use opchub_store::settlement::EXCLUSION_KINDS;
use serde::Deserialize;

fn decision_view(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_default()
}

#[derive(Deserialize, Default)]
pub struct ClauseQuery {
    pub clause: Option<String>,
}

pub async fn policy_browser(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ClauseQuery>,
) -> Response {
    let p = caller.0.as_ref();
    let pol = match api::policy(&s) {
        Ok(p) => p,
        Err(e) => return page_error(&s, caller.0.as_ref(), e.into()),
    };
    let as_of = api::today();
    let window = pol
        .window(as_of)
        .map(|(w, _, _)| w)
        .or_else(|| pol.latest_window())
        .map(|w| w.to_string());
    let clauses = api::clause_views(&pol, as_of);
    let selected = q.clause.filter(|c| clauses.iter().any(|x| &x.id == c));
    render(
        &s,
        p,
        &csrf.0,
        "policy.html",
        StatusCode::OK,
        context! { clauses => clauses, selected => selected, version => pol.version.clone(), window => window },
    )
}

#[derive(Deserialize, Default)]
pub struct YearForm {
    pub year: Option<i32>,
}

pub async fn calculator(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<YearForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let year = q.year.unwrap_or_else(api::this_year);
    let api::Calculator {
        estimates,
        total_fen: total,
        caps,
    } = match api::calculator_for(&s, p, year).await {
        Ok(c) => c,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let chart = Value::from_safe_string(estimate_chart(&estimates));
    render(
        &s,
        Some(p),
        &csrf.0,
        "policy_calculator.html",
        StatusCode::OK,
        context! { year => year, estimates => estimates, total => total, caps => caps, chart => chart },
    )
}

/// The year's subsidy estimate per clause (issue 21 item 4): already approved and still to
/// come, in yuan; clauses the engine cannot determine yet have no bar.
fn estimate_chart(estimates: &[api::Estimate]) -> String {
    use super::chart::Labels;
    use super::chart_bars::{grouped, Row};
    use super::ledger::money;
    let lang = i18n::current_lang();
    let t = |k: &str| i18n::text(&lang, k);
    let series = vec![t("settle.chart_approved"), t("settle.chart_to_come")];
    let rows: Vec<Row> = estimates
        .iter()
        .map(|e| Row {
            label: e.clause.clone(),
            values: vec![Some(e.approved_fen), e.amount_fen],
            titles: vec![
                format!("{} {} {}", e.clause, series[0], money(e.approved_fen)),
                e.amount_fen
                    .map(|a| format!("{} {} {}", e.clause, series[1], money(a)))
                    .unwrap_or_default(),
            ],
        })
        .collect();
    let labels = Labels {
        title: t("settle.chart_title"),
        desc: t("settle.chart_desc"),
        ..Default::default()
    };
    grouped("chart-estimate", &rows, &series, &labels, money)
}

// ---------------------------------------------------------------- 意愿确认

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

async fn mine_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: Option<String>) -> Response {
    let rows = match api::mine(s, p).await {
        Ok(r) => r,
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|api::MyLine { batch, line }| {
            let d = decision_view(&line.decision);
            context! { batch => batch, line => line, decision => d }
        })
        .collect();
    render(
        s,
        Some(p),
        csrf,
        "my_settlements.html",
        status,
        context! { rows => rows, error => error, done => done },
    )
}

/// A printable statement (结算单) of one settlement line (issue 21 item 6).
pub async fn statement(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((batch, clause, beneficiary)): Path<(String, String, String)>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::line_for(&s, p, &batch, &clause, &beneficiary).await {
        Ok(api::MyLine { batch, line }) => {
            let d = decision_view(&line.decision);
            render(
                &s,
                Some(p),
                &csrf.0,
                "settlement_statement.html",
                StatusCode::OK,
                context! { batch => batch, line => line, decision => d, now => opchub_store::now_ms() },
            )
        }
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

pub async fn mine(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    mine_page(&s, p, &csrf.0, StatusCode::OK, None, q.done).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    pub batch: String,
    pub clause: String,
    pub beneficiary: String,
    /// `yes` accepts, anything else declines.
    pub accept: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let accept = f.accept == "yes";
    let req = Confirm {
        batch: f.batch,
        clause: f.clause,
        beneficiary: f.beneficiary,
        accept,
    };
    match api::confirm_for(&s, p, &req).await {
        Ok(_) => Redirect::to(if accept {
            "/my/settlements?done=confirmed"
        } else {
            "/my/settlements?done=declined"
        })
        .into_response(),
        Err(e) => {
            let e: ApiError = e.into();
            let (m, _) = field_messages(&e);
            mine_page(&s, p, &csrf.0, e.status, Some(m), None).await
        }
    }
}

// ---------------------------------------------------------------- committee

#[derive(Default)]
struct Extra {
    error: Option<String>,
    diffs: Option<Vec<opchub_settle::ClauseDiff>>,
    imported: Option<String>,
    form: Value,
}

async fn batches_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, x: Extra) -> Response {
    let batches = match api::batches(s).await {
        Ok(b) => b,
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let lists = api::exclusion_lists(s).await.unwrap_or_default();
    let kinds: Vec<&str> = EXCLUSION_KINDS.iter().map(|(k, _)| *k).collect();
    let year = api::this_year();
    render(
        s,
        Some(p),
        csrf,
        "settlements.html",
        status,
        context! {
            batches => batches, lists => lists, kinds => kinds, clauses => opchub_settle::SETTLED_CLAUSES,
            year => year, committee => p.role() == Role::Committee, error => x.error, diffs => x.diffs,
            imported => x.imported, form => if x.form.is_undefined() { context! {} } else { x.form },
        },
    )
}

pub async fn batches(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    batches_page(&s, p, &csrf.0, StatusCode::OK, Extra::default()).await
}

fn message(e: &ApiError) -> String {
    let (m, fields) = field_messages(e);
    if fields.is_empty() {
        m
    } else {
        format!(
            "{m}（{}）",
            fields.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("；")
        )
    }
}

fn parse_year(v: Option<&str>) -> Option<i32> {
    v.map(str::trim).and_then(|v| v.parse::<i32>().ok())
}

fn parse_date(v: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::field("as_of", "invalid")),
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    pub year: Option<String>,
    pub as_of: Option<String>,
    /// Comma-separated or repeated; empty = all.
    pub clauses: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<CreateForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let form = context! { year => f.year.clone(), as_of => f.as_of.clone(), clauses => f.clauses.clone() };
    let fail = |e: ApiError, form: Value| Extra {
        error: Some(message(&e)),
        form,
        ..Extra::default()
    };
    let Some(year) = parse_year(f.year.as_deref()) else {
        let e = ApiError::field("year", "invalid");
        return batches_page(&s, p, &csrf.0, e.status, fail(e, form)).await;
    };
    let as_of = match parse_date(f.as_of.as_deref()) {
        Ok(d) => d,
        Err(e) => return batches_page(&s, p, &csrf.0, e.status, fail(e, form)).await,
    };
    let clauses = super::gateway::split_list(f.clauses.as_deref().unwrap_or(""));
    match api::create_for(&s, p, NewSettlement { year, clauses, as_of }).await {
        Ok(c) => Redirect::to(&format!("/committee/settlements/{}", c.batch.id)).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            batches_page(&s, p, &csrf.0, e.status, fail(e, form)).await
        }
    }
}

#[derive(Deserialize)]
pub struct WhatIfForm {
    pub year: Option<String>,
    pub as_of: Option<String>,
    /// One change per line: `M2.3-publisher.revenue_rate=0.30`.
    pub set: Option<String>,
}

pub async fn what_if(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<WhatIfForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let form = context! { wyear => f.year.clone(), set => f.set.clone() };
    let Some(year) = parse_year(f.year.as_deref()) else {
        let e = ApiError::field("year", "invalid");
        let x = Extra {
            error: Some(message(&e)),
            form,
            ..Extra::default()
        };
        return batches_page(&s, p, &csrf.0, e.status, x).await;
    };
    let set: Vec<String> = f
        .set
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let as_of = parse_date(f.as_of.as_deref()).unwrap_or(None);
    match api::what_if_for(
        &s,
        WhatIf {
            year,
            clauses: vec![],
            as_of,
            set,
        },
    )
    .await
    {
        Ok(d) => {
            let x = Extra {
                diffs: Some(d),
                form,
                ..Extra::default()
            };
            batches_page(&s, p, &csrf.0, StatusCode::OK, x).await
        }
        Err(e) => {
            let e = ApiError::from(e);
            let x = Extra {
                error: Some(message(&e)),
                form,
                ..Extra::default()
            };
            batches_page(&s, p, &csrf.0, e.status, x).await
        }
    }
}

#[derive(Deserialize)]
pub struct ImportForm {
    pub kind: String,
    pub csv: String,
}

pub async fn import(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<ImportForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let lang = i18n::current_lang();
    match api::import_for(&s, p, &f.kind, &format!("{}.csv", f.kind), f.csv.as_bytes()).await {
        Ok(l) => {
            let text = i18n::text(&lang, "settle.imported")
                .replace("{kind}", &l.kind)
                .replace("{version}", &l.version.to_string())
                .replace("{entries}", &l.entries.to_string());
            let x = Extra {
                imported: Some(text),
                ..Extra::default()
            };
            batches_page(&s, p, &csrf.0, StatusCode::OK, x).await
        }
        Err(e) => {
            let e = ApiError::from(e);
            let x = Extra {
                error: Some(message(&e)),
                form: context! { kind => f.kind.clone(), csv => f.csv.clone() },
                ..Extra::default()
            };
            batches_page(&s, p, &csrf.0, e.status, x).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct BatchQuery {
    pub clause: Option<String>,
    /// `approved` / `paid` after a step succeeded.
    pub done: Option<String>,
}

pub async fn batch(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(q): Query<BatchQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    batch_page(&s, p, &csrf.0, &id, q.clause, StatusCode::OK, None, q.done).await
}

/// A batch with its lines; the committee's approval form on a draft, finance's payment form
/// (a bank reference per approved line) on an approved batch; a refused step shows its reason.
#[allow(clippy::too_many_arguments)]
async fn batch_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    id: &str,
    clause: Option<String>,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let clause = clause.filter(|c| !c.is_empty());
    let api::BatchView { batch: b, lines } = match api::batch_view(s, id, clause.clone(), false).await {
        Ok(v) => v,
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let confirmed = lines.iter().filter(|l| l.confirmation == "confirmed").count();
    let payable = lines
        .iter()
        .filter(|l| l.approved_fen.unwrap_or(0) > 0 && l.paid_at.is_none())
        .count();
    let rows: Vec<Value> = lines
        .into_iter()
        .map(|l| {
            let d = decision_view(&l.decision);
            context! { line => l, decision => d }
        })
        .collect();
    let committee = p.role() == Role::Committee;
    let finance = p.role() == Role::Finance;
    let window_open = b.confirm_until_ms.is_some_and(|u| opchub_store::now_ms() <= u);
    render(
        s,
        Some(p),
        csrf,
        "settlement.html",
        status,
        context! {
            batch => b, rows => rows, clause => clause, committee => committee, finance => finance, confirmed => confirmed,
            payable => payable, window_open => window_open, error => error, done => done, clauses => opchub_settle::SETTLED_CLAUSES,
        },
    )
}

pub async fn approve(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::approve_for(&s, p, &id).await {
        Ok(_) => Redirect::to(&format!("/committee/settlements/{id}?done=approved")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            batch_page(&s, p, &csrf.0, &id, None, e.status, Some(message(&e)), None).await
        }
    }
}

/// Finance's payment form: the batch reference and one bank reference per approved line, as
/// `ref:<clause>:<beneficiary>` fields; lines left blank are not paid now.
pub async fn pay(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let mut reference = String::new();
    let mut lines = vec![];
    for (k, v) in f {
        if k == "reference" {
            reference = v;
        } else if let Some(rest) = k.strip_prefix("ref:") {
            if let Some((clause, beneficiary)) = rest.split_once(':') {
                if !v.trim().is_empty() {
                    lines.push(api::PayLine {
                        clause: clause.to_string(),
                        beneficiary: beneficiary.to_string(),
                        payment_reference: v,
                    });
                }
            }
        }
    }
    match api::pay_for(&s, p, &id, api::PaySettlement { reference, lines }).await {
        Ok(_) => Redirect::to(&format!("/committee/settlements/{id}?done=paid")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            batch_page(&s, p, &csrf.0, &id, None, e.status, Some(message(&e)), None).await
        }
    }
}

// ---------------------------------------------------------------- S3 register

async fn overlaps_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: bool) -> Response {
    let year = chrono::Datelike::year(&api::today());
    let res = async {
        let pol = api::policy(s)?;
        let grants = api::overlaps(s, Some(year)).await?;
        let groups = api::overlap_groups(&pol);
        Ok::<_, ApiError>(context! {
            grants => grants, groups => groups, levels => api::OVERLAP_LEVELS, year => year, error => error, done => done,
            committee => p.role() == Role::Committee,
        })
    }
    .await;
    match res {
        Ok(ctx) => render(s, Some(p), csrf, "overlaps.html", status, ctx),
        Err(e) => page_error(s, Some(p), e),
    }
}

/// S3: the register of grants from other policies (level, policy, item, amount).
pub async fn overlaps(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    overlaps_page(&s, p, &csrf.0, StatusCode::OK, None, q.done.is_some()).await
}

#[derive(Deserialize, Default)]
pub struct OverlapForm {
    pub beneficiary: Option<String>,
    pub overlap_group: Option<String>,
    pub year: Option<String>,
    pub policy: Option<String>,
    pub level: Option<String>,
    pub item_key: Option<String>,
    pub amount: Option<String>,
}

pub async fn add_overlap(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<OverlapForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let amount_fen = match fen_of("amount_fen", f.amount.as_deref()) {
        Ok(v) => v.unwrap_or(-1),
        Err(e) => return overlaps_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await,
    };
    let req = NewOverlap {
        beneficiary: f.beneficiary.unwrap_or_default(),
        overlap_group: f.overlap_group.unwrap_or_default(),
        year: f.year.as_deref().unwrap_or("").trim().parse().unwrap_or(0),
        policy: f.policy.unwrap_or_default(),
        level: f.level,
        item_key: f.item_key,
        amount_fen,
    };
    match api::add_overlap_for(&s, p, req).await {
        Ok(_) => Redirect::to("/committee/overlaps?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            overlaps_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}
