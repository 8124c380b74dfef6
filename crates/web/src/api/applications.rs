//! Applications and funds API (issue 8): application types with forms generated from the policy
//! file, drafts pre-filled from what the platform knows, evidence uploads (type read from the
//! content, stored by SHA-256 — F2), submission, the staged review of F1 with the engine's
//! amount and trace at every step, finance payment batches (XLSX export), recovery orders
//! (F2, S5) and the committee's dashboard. The use cases are `opchub_app::applications`'s;
//! handlers extract, call and answer.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::applications as app;
use opchub_funds::{evidence, FormSpec};
use opchub_store::applications::{Application, EvidenceFile, FundBatch, RecoveryOrder};
use serde::Deserialize;
use utoipa::IntoParams;

pub use opchub_app::applications::{
    create_for, dashboard_for, list_for, pay_for, prefill_for, readable, recovery_for, review_for, stage_age, submit_for, update_for,
    upload_for, view_for, ApplicationView, BatchView, ClauseSummary, Dashboard, ListQuery, ListedApplication, NewApplicationRequest,
    PayItem, PayRequest, Prefill, RecoveryRequest, RepayRequest, ReviewRequest, Submit, UpdateApplication,
};
pub use opchub_app::files::FileStore as EvidenceStore;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// ---------------------------------------------------------------- types

#[utoipa::path(get, path = "/api/v1/application-types", tag = "applications", responses((status = 200, body = [FormSpec])))]
pub async fn types(State(s): State<AppState>) -> ApiResult<Json<Vec<FormSpec>>> {
    Ok(Json(app::types(&s)?))
}

// ---------------------------------------------------------------- prefill

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClauseQuery {
    pub clause: String,
    pub year: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/applications/prefill", tag = "applications", params(ClauseQuery), responses((status = 200, body = Prefill), (status = 403)))]
pub async fn prefill(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<ClauseQuery>) -> ApiResult<Json<Prefill>> {
    let p = caller.require()?;
    Ok(Json(prefill_for(&s, p, &q.clause, q.year).await?))
}

// ---------------------------------------------------------------- drafts

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = NewApplicationRequest,
    responses((status = 201, body = Application), (status = 403), (status = 422)))]
pub async fn create(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewApplicationRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let a = create_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(put, path = "/api/v1/applications/{id}", tag = "applications", request_body = UpdateApplication,
    responses((status = 200, body = Application), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UpdateApplication>,
) -> ApiResult<Json<Application>> {
    let p = caller.require()?;
    Ok(Json(update_for(&s, p, &id, &r).await?))
}

// ---------------------------------------------------------------- evidence

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The evidence item (index in the form's `evidence`).
    pub slot: usize,
    /// The file's name (its extension must match its content).
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/files", tag = "applications", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = EvidenceFile), (status = 413), (status = 422)))]
pub async fn upload(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let p = caller.require()?;
    // Refuse an announced oversize body before reading it; read at most the limit otherwise.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > evidence::MAX_BYTES) {
        return Err(app::evidence_too_large().into());
    }
    let a = app::upload_target(&s, p, &id).await?;
    let bytes = axum::body::to_bytes(body, evidence::MAX_BYTES)
        .await
        .map_err(|_| app::evidence_too_large())?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let f = upload_for(&s, p, &a, q.slot, &q.name, declared, &bytes).await?;
    Ok((StatusCode::CREATED, Json(f)).into_response())
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/files/{file_id}", tag = "applications",
    responses((status = 200, content_type = "application/octet-stream"), (status = 404), (status = 409)))]
pub async fn download(State(s): State<AppState>, caller: Caller, Path((id, file_id)): Path<(String, String)>) -> ApiResult<Response> {
    let p = caller.require()?;
    let (f, bytes) = app::evidence_file(&s, p, &id, &file_id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, f.mime.clone()),
            (header::CONTENT_DISPOSITION, "attachment".to_string()),
            (header::HeaderName::from_static("x-content-sha256"), f.sha256.clone()),
        ],
        Bytes::from(bytes),
    )
        .into_response())
}

// ---------------------------------------------------------------- reading

#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications", responses((status = 200, body = ApplicationView), (status = 403), (status = 404)))]
pub async fn show(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ApplicationView>> {
    let p = caller.require()?;
    Ok(Json(view_for(&s, p, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", params(ListQuery), responses((status = 200, body = [ListedApplication])))]
pub async fn list(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Vec<ListedApplication>>> {
    let p = caller.require()?;
    Ok(Json(list_for(&s, p, &q).await?))
}

// ---------------------------------------------------------------- submit and review

#[utoipa::path(post, path = "/api/v1/applications/{id}/submit", tag = "applications", request_body = Submit,
    responses((status = 200, body = Application), (status = 409), (status = 422)))]
pub async fn submit(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<Submit>,
) -> ApiResult<Json<Application>> {
    let p = caller.require()?;
    Ok(Json(submit_for(&s, p, &id, r.version).await?))
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/review", tag = "applications", request_body = ReviewRequest,
    responses((status = 200, body = Application), (status = 403), (status = 409), (status = 422)))]
pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReviewRequest>,
) -> ApiResult<Json<Application>> {
    let p = caller.require()?;
    Ok(Json(review_for(&s, p, &id, &r).await?))
}

// ---------------------------------------------------------------- payment

#[utoipa::path(post, path = "/api/v1/fund-batches", tag = "applications", request_body = PayRequest,
    responses((status = 201, body = FundBatch), (status = 403), (status = 409), (status = 422)))]
pub async fn pay(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<PayRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let b = pay_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

#[utoipa::path(get, path = "/api/v1/fund-batches", tag = "applications", responses((status = 200, body = [FundBatch])))]
pub async fn batches(State(s): State<AppState>) -> ApiResult<Json<Vec<FundBatch>>> {
    Ok(Json(app::batches(&s).await?))
}

#[utoipa::path(get, path = "/api/v1/fund-batches/{id}", tag = "applications", responses((status = 200, body = BatchView), (status = 404)))]
pub async fn batch(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<BatchView>> {
    Ok(Json(app::batch_view(&s, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/fund-batches/{id}/export", tag = "applications",
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404)))]
pub async fn export(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let (b, bytes) = app::batch_export(&s, &id).await?;
    Ok(super::attachment(XLSX, &format!("funds-{}.xlsx", b.reference), bytes))
}

// ---------------------------------------------------------------- recovery

#[utoipa::path(post, path = "/api/v1/applications/{id}/recovery", tag = "applications", request_body = RecoveryRequest,
    responses((status = 201, body = RecoveryOrder), (status = 404), (status = 409), (status = 422)))]
pub async fn open_recovery(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RecoveryRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let o = recovery_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(o)).into_response())
}

#[utoipa::path(post, path = "/api/v1/recoveries/{id}/repay", tag = "applications", request_body = RepayRequest,
    responses((status = 200, body = RecoveryOrder), (status = 404), (status = 409), (status = 422)))]
pub async fn repay(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RepayRequest>,
) -> ApiResult<Json<RecoveryOrder>> {
    let p = caller.require()?;
    Ok(Json(app::repay_for(&s, p, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/recoveries", tag = "applications", responses((status = 200, body = [RecoveryOrder])))]
pub async fn recoveries(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RecoveryOrder>>> {
    let p = caller.require()?;
    Ok(Json(app::recoveries_for(&s, p).await?))
}

// ---------------------------------------------------------------- dashboard

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashQuery {
    pub year: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/funds/dashboard", tag = "applications", params(DashQuery), responses((status = 200, body = Dashboard)))]
pub async fn dashboard(State(s): State<AppState>, ApiQuery(q): ApiQuery<DashQuery>) -> ApiResult<Json<Dashboard>> {
    let year = q.year.unwrap_or_else(|| chrono::Datelike::year(&opchub_app::settlement::today()));
    Ok(Json(dashboard_for(&s, year).await?))
}

#[utoipa::path(get, path = "/api/v1/funds/dashboard/export", tag = "applications", params(DashQuery),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn dashboard_export(State(s): State<AppState>, ApiQuery(q): ApiQuery<DashQuery>) -> ApiResult<Response> {
    let (d, bytes) = app::dashboard_export(&s, q.year).await?;
    Ok(super::attachment(XLSX, &format!("funds-{}.xlsx", d.year), bytes))
}
