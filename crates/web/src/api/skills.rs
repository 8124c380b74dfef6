//! Skill Store API (M2.3): OPC founders publish skills and versions (automated checks run
//! at once; a version that fails them is refused and nothing is stored), the platform
//! operator reviews, everyone searches and reads listings with public counts, invokers
//! enable skills for `/mcp`, call them over plain HTTP, download Agent Skill packages and
//! rate what they used; dashboards for publishers and invokers. Thin handlers: the use cases
//! and their types are the application's (`opchub_app::skills`).

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
pub use opchub_app::skills::{
    add_version_for, delist_for, detail_for, find_skill, invoke_for, invoker_dashboard_for, package_for, prepare_version, publish_for,
    publisher_dashboard_for, rate_for, refresh_for, review_for, review_queue_for, search_for, set_enabled_for, submit_for, CallResult,
    DelistRequest, Detail, EnableRequest, InvokeRequest, InvokerDashboard, Listing, MySkill, Package, Prepared, PublishRequest, Published,
    PublisherDashboard, QueueEntry, RateRequest, RefreshResult, ReviewRequest, SearchQuery, VersionRequest, MAX_PRICE_FEN,
    MAX_PUBLISH_BODY,
};
use opchub_store::skills::{Rating, Skill, SkillVersion};
use serde_json::{json, Value};

#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", request_body = PublishRequest,
    responses((status = 201, body = Published), (status = 409), (status = 422)))]
pub async fn publish(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<PublishRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let out = publish_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/versions", tag = "skills", params(("id" = String, Path)), request_body = VersionRequest,
    responses((status = 201, body = SkillVersion), (status = 404), (status = 409), (status = 422)))]
pub async fn add_version(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<VersionRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let v = add_version_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[utoipa::path(post, path = "/api/v1/skill-versions/{id}/submit", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, body = SkillVersion), (status = 404), (status = 409)))]
pub async fn submit(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<SkillVersion>> {
    let p = caller.require()?;
    Ok(Json(submit_for(&s, p, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/skill-reviews", tag = "skills", responses((status = 200, body = [QueueEntry])))]
pub async fn review_queue(State(s): State<AppState>) -> ApiResult<Json<Vec<QueueEntry>>> {
    Ok(Json(review_queue_for(&s).await?))
}

#[utoipa::path(post, path = "/api/v1/skill-versions/{id}/review", tag = "skills", params(("id" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = SkillVersion), (status = 404), (status = 409), (status = 422)))]
pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReviewRequest>,
) -> ApiResult<Json<SkillVersion>> {
    let p = caller.require()?;
    Ok(Json(review_for(&s, p, &id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/delist", tag = "skills", params(("id" = String, Path)), request_body = DelistRequest,
    responses((status = 200, body = Skill), (status = 404), (status = 409)))]
pub async fn delist(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<DelistRequest>,
) -> ApiResult<Json<Skill>> {
    let p = caller.require()?;
    let reason = r.reason.unwrap_or_default();
    Ok(Json(delist_for(&s, p, &id, reason.trim()).await?))
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/refresh", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, body = RefreshResult), (status = 404), (status = 410)))]
pub async fn refresh(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RefreshResult>> {
    Ok(Json(refresh_for(&s, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/skills", tag = "skills", params(SearchQuery), responses((status = 200, body = [Listing])))]
pub async fn search(State(s): State<AppState>, ApiQuery(q): ApiQuery<SearchQuery>) -> ApiResult<Json<Vec<Listing>>> {
    Ok(Json(search_for(&s, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/skills/{id}", tag = "skills", params(("id" = String, Path, description = "id or slug")),
    responses((status = 200, body = Detail), (status = 404)))]
pub async fn detail(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Detail>> {
    Ok(Json(detail_for(&s, caller.0.as_ref(), &id).await?))
}

#[utoipa::path(put, path = "/api/v1/skills/{id}/enabled", tag = "skills", params(("id" = String, Path)), request_body = EnableRequest,
    responses((status = 200), (status = 404), (status = 410)))]
pub async fn set_enabled(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<EnableRequest>,
) -> ApiResult<Json<Value>> {
    let p = caller.require()?;
    set_enabled_for(&s, p, &id, r.enabled).await?;
    Ok(Json(json!({ "enabled": r.enabled })))
}

/// Calls a tool of a listed skill. `Idempotency-Key` makes a retry count once (M2.3);
/// without it every request is a new call.
#[utoipa::path(post, path = "/api/v1/skills/{id}/invoke", tag = "skills", params(("id" = String, Path)), request_body = InvokeRequest,
    responses((status = 200, body = CallResult), (status = 404), (status = 410), (status = 422), (status = 502)))]
pub async fn invoke(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<InvokeRequest>,
) -> ApiResult<Json<CallResult>> {
    let p = caller.require()?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    Ok(Json(invoke_for(&s, p, &id, r, key).await?))
}

/// The Agent Skill package, downloaded with the invoker's key: one `skill.install` per
/// invoker per version (M2.3).
#[utoipa::path(get, path = "/api/v1/skills/{id}/package", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/zip"), (status = 404), (status = 410)))]
pub async fn package(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let p = caller.require()?;
    let pkg = package_for(&s, p, &id).await?;
    let name = format!("attachment; filename=\"{}\"", pkg.filename);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        pkg.bytes,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/ratings", tag = "skills", params(("id" = String, Path)), request_body = RateRequest,
    responses((status = 201, body = Rating), (status = 403), (status = 404), (status = 422)))]
pub async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RateRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let out = rate_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct BasisQuery {
    /// The year (default this year in Beijing).
    pub year: Option<i32>,
}

/// What of the caller's skill revenue counts for M2.3 this year and what does not, and why:
/// counted (paid and confirmed bills between eligible OPCs), waiting for payment, the running
/// month, marked not qualified by reason, voided by an upheld finding, not eligible that day.
#[utoipa::path(get, path = "/api/v1/my/skills/m23-basis", tag = "skills", params(BasisQuery),
    responses((status = 200, body = opchub_app::settlement::PublisherBasis), (status = 404, description = "the caller has no OPC")))]
pub async fn publisher_basis(
    State(s): State<AppState>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<BasisQuery>,
) -> ApiResult<Json<opchub_app::settlement::PublisherBasis>> {
    let p = caller.require()?;
    let year = q.year.unwrap_or_else(opchub_app::settlement::this_year);
    opchub_app::settlement::publisher_basis_for(&s, p, year)
        .await?
        .map(Json)
        .ok_or_else(crate::error::ApiError::not_found)
}

#[utoipa::path(get, path = "/api/v1/my/skills", tag = "skills", responses((status = 200, body = PublisherDashboard)))]
pub async fn publisher_dashboard(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<PublisherDashboard>> {
    let p = caller.require()?;
    Ok(Json(publisher_dashboard_for(&s, p).await?))
}

#[utoipa::path(get, path = "/api/v1/my/skill-usage", tag = "skills", responses((status = 200, body = InvokerDashboard)))]
pub async fn invoker_dashboard(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<InvokerDashboard>> {
    let p = caller.require()?;
    Ok(Json(invoker_dashboard_for(&s, p).await?))
}
