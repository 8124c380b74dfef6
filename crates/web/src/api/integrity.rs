//! Integrity API (issue 18): scans of a year's paid-call graph, the findings, the committee's
//! decision and the flagged party's statement. The use cases are `opchub_app::integrity`'s;
//! handlers extract, call and answer.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use opchub_app::integrity as app;
use opchub_store::integrity::Finding;
use serde::Deserialize;
use utoipa::IntoParams;

pub use opchub_app::integrity::{Answer, Decide, ScanReport};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// Only this year's findings.
    pub year: Option<i32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    pub year: i32,
}

/// Scans a year's paid skill calls for rings, cycles, dense blocks, related parties and
/// concentration, and stores what it finds (open findings hold the M2.3 lines of their parties).
#[utoipa::path(post, path = "/api/v1/integrity/scan", tag = "settlement", request_body = ScanRequest,
    responses((status = 200, body = ScanReport), (status = 422)))]
pub async fn scan(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<ScanRequest>) -> ApiResult<Json<ScanReport>> {
    let p = caller.require()?;
    Ok(Json(app::scan_for(&s, p, r.year).await?))
}

/// Findings: all of them for the committee and the auditor; the caller's own for a beneficiary.
#[utoipa::path(get, path = "/api/v1/integrity/findings", tag = "settlement", params(FindingsQuery),
    responses((status = 200, body = [Finding])))]
pub async fn findings(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<FindingsQuery>) -> ApiResult<Json<Vec<Finding>>> {
    let p = caller.require()?;
    Ok(Json(app::findings_for(&s, p, q.year).await?))
}

#[utoipa::path(get, path = "/api/v1/integrity/findings/{id}", tag = "settlement", params(("id" = String, Path)),
    responses((status = 200, body = Finding), (status = 404)))]
pub async fn finding(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Finding>> {
    let p = caller.require()?;
    Ok(Json(app::finding_for(&s, p, &id).await?))
}

/// The committee upholds (its calls stop qualifying) or dismisses an open finding, with a reason.
#[utoipa::path(post, path = "/api/v1/integrity/findings/{id}/decide", tag = "settlement", params(("id" = String, Path)),
    request_body = Decide,
    responses((status = 200, body = Finding), (status = 404), (status = 409, description = "finding_decided"), (status = 422)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decide>,
) -> ApiResult<Json<Finding>> {
    let p = caller.require()?;
    Ok(Json(app::decide_for(&s, p, &id, &d).await?))
}

/// A flagged party's statement (申辩) on an open finding naming it.
#[utoipa::path(post, path = "/api/v1/integrity/findings/{id}/answer", tag = "settlement", params(("id" = String, Path)),
    request_body = Answer,
    responses((status = 200, body = Finding), (status = 404), (status = 409, description = "finding_decided"), (status = 422)))]
pub async fn answer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(a): ApiJson<Answer>,
) -> ApiResult<Json<Finding>> {
    let p = caller.require()?;
    Ok(Json(app::answer_for(&s, p, &id, &a).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub year: Option<i32>,
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// `zh` (default) or `en`: the headers' and names' language.
    pub lang: Option<String>,
}

/// The findings the caller may read as a CSV or XLSX attachment: detector, parties, status,
/// amount at stake in yuan and in fen, score, explanation, decision and statement, and a total.
#[utoipa::path(get, path = "/api/v1/integrity/findings/export", tag = "settlement", params(ExportQuery),
    responses((status = 200, description = "CSV or XLSX attachment, one row per finding and a totals row"), (status = 422)))]
pub async fn export(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<ExportQuery>) -> ApiResult<axum::response::Response> {
    let p = caller.require()?;
    let lang = if q.lang.as_deref() == Some("en") { "en" } else { "zh" };
    let t = |k: &str| crate::i18n::text(lang, k);
    let x = app::export_for(&s, p, q.year, q.format.as_deref(), &t).await?;
    Ok(super::attachment(x.content_type, &x.file_name, x.bytes))
}
