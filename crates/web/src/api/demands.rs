//! Demand board JSON API (M2.4): demands, matching, proposals with question threads,
//! cooperations with payments, amendments, disputes, ratings, S3 flags and notifications.
//! The use cases are `opchub_app::demands` (shared with the pages); handlers only extract,
//! call them and answer.

use super::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::demands::{self as app, Amendment, Cooperation, Demand, Dispute, Flag, Message, Payment, Proposal, Rating};
pub use opchub_app::demands::{
    AcceptRequest, AmendRequest, CooperationDetail, CooperationSummary, DecideRequest, DemandDetail, DisputeQuery, FileUpload, LimitQuery,
    NewDemandRequest, NewMessageRequest, NewPaymentRequest, NewProposalRequest, Notifications, RateRequest, ReadRequest, ReadResult,
    ReasonRequest, ResolveRequest, SearchQuery, YearQuery,
};
use opchub_app::matching::Ranked;

/// Bodies that may carry files (base64): demands with attachments, payments with invoices.
pub const MAX_FILE_BODY: usize = 4 * 1024 * 1024;

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[utoipa::path(post, path = "/api/v1/demands", tag = "demands", request_body = NewDemandRequest,
    responses((status = 201, body = Demand), (status = 403, description = "company_not_verified / company_not_in_district"), (status = 422)))]
pub async fn create_demand(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewDemandRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(app::create_demand_for(&s, p, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/demands", tag = "demands", params(SearchQuery), responses((status = 200, body = [Demand])))]
pub async fn search(State(s): State<AppState>, ApiQuery(q): ApiQuery<SearchQuery>) -> ApiResult<Json<Vec<Demand>>> {
    Ok(Json(app::search_for(&s, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/mine", tag = "demands", responses((status = 200, body = [Demand]), (status = 403)))]
pub async fn my_demands(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Demand>>> {
    Ok(Json(app::my_demands_for(&s, caller.require()?).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/{id}", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = DemandDetail), (status = 404)))]
pub async fn demand(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<DemandDetail>> {
    Ok(Json(app::demand_detail(&s, caller.0.as_ref(), &id).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/files/{sha256}", tag = "demands", params(("sha256" = String, Path)), responses((status = 200, description = "the file"), (status = 404)))]
pub async fn file(State(s): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    let (ct, body) = app::file_for(&s, caller.require()?, &sha).await?;
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CONTENT_DISPOSITION, "attachment".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/demands/{id}/publish", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Demand), (status = 404), (status = 409)))]
pub async fn publish(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Demand>> {
    Ok(Json(app::publish_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/{id}/cancel", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Demand), (status = 404), (status = 409)))]
pub async fn cancel(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Demand>> {
    Ok(Json(app::cancel_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/{id}/recommendations", tag = "demands", params(("id" = String, Path), LimitQuery),
    responses((status = 200, body = [Ranked]), (status = 404)))]
pub async fn recommendations(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Json<Vec<Ranked>>> {
    let p = caller.require()?;
    Ok(Json(
        app::recommendations_for(&s, p, &id, q.limit.unwrap_or(10).clamp(1, 50)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/demands/for-me", tag = "demands", params(LimitQuery), responses((status = 200, body = [Ranked]), (status = 403)))]
pub async fn for_me(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<LimitQuery>) -> ApiResult<Json<Vec<Ranked>>> {
    let p = caller.require()?;
    Ok(Json(app::for_me_for(&s, p, q.limit.unwrap_or(10).clamp(1, 50)).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/{id}/proposals", tag = "demands", params(("id" = String, Path)), request_body = NewProposalRequest,
    responses((status = 201, body = Proposal), (status = 404), (status = 409), (status = 422)))]
pub async fn propose(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewProposalRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(app::propose_for(&s, p, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/{id}/proposals", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = [Proposal]), (status = 404)))]
pub async fn proposals(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vec<Proposal>>> {
    Ok(Json(app::proposals_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/proposals/mine", tag = "demands", responses((status = 200, body = [Proposal]), (status = 403)))]
pub async fn my_proposals(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Proposal>>> {
    Ok(Json(app::my_proposals_for(&s, caller.require()?).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/shortlist", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Proposal), (status = 404), (status = 409)))]
pub async fn shortlist(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Proposal>> {
    Ok(Json(app::shortlist_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/decline", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Proposal), (status = 404), (status = 409)))]
pub async fn decline(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Proposal>> {
    Ok(Json(app::decline_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/accept", tag = "demands", params(("id" = String, Path)), request_body = AcceptRequest,
    responses((status = 201, body = Cooperation), (status = 404), (status = 409, description = "demand_not_open: another proposal was accepted")))]
pub async fn accept(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AcceptRequest>,
) -> ApiResult<Response> {
    Ok(created(app::accept_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/proposals/{id}/messages", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = [Message]), (status = 404)))]
pub async fn messages(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vec<Message>>> {
    Ok(Json(app::messages_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/messages", tag = "demands", params(("id" = String, Path)), request_body = NewMessageRequest,
    responses((status = 201, body = Message), (status = 404), (status = 422)))]
pub async fn post_message(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewMessageRequest>,
) -> ApiResult<Response> {
    Ok(created(app::post_message_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations/{id}", tag = "cooperations", params(("id" = String, Path)), responses((status = 200, body = CooperationDetail), (status = 404)))]
pub async fn cooperation(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<CooperationDetail>> {
    Ok(Json(app::cooperation_detail(&s, caller.require()?, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations", tag = "cooperations", responses((status = 200, body = [Cooperation])))]
pub async fn cooperations(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Cooperation>>> {
    Ok(Json(app::cooperations_for(&s, caller.require()?).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/payments", tag = "cooperations", params(("id" = String, Path)), request_body = NewPaymentRequest,
    responses((status = 201, body = Payment), (status = 404), (status = 409, description = "duplicate_invoice (flagged, S3)"), (status = 422, description = "above_agreed_amount, …")))]
pub async fn record_payment(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewPaymentRequest>,
) -> ApiResult<Response> {
    Ok(created(app::record_payment_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/payments/{id}/confirm", tag = "cooperations", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404), (status = 409, description = "payment_not_pending")))]
pub async fn confirm(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Payment>> {
    Ok(Json(app::confirm_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/payments/{id}/dispute", tag = "cooperations", params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 201, body = Dispute), (status = 404), (status = 409)))]
pub async fn dispute(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReasonRequest>,
) -> ApiResult<Response> {
    Ok(created(app::dispute_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations/disputes", tag = "cooperations", params(DisputeQuery), responses((status = 200, body = [Dispute])))]
pub async fn disputes(State(s): State<AppState>, ApiQuery(q): ApiQuery<DisputeQuery>) -> ApiResult<Json<Vec<Dispute>>> {
    Ok(Json(app::disputes_for(&s, q.open.unwrap_or(true)).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/disputes/{id}/resolve", tag = "cooperations", params(("id" = String, Path)), request_body = ResolveRequest,
    responses((status = 200, body = Dispute), (status = 404), (status = 409), (status = 422)))]
pub async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ResolveRequest>,
) -> ApiResult<Json<Dispute>> {
    Ok(Json(app::resolve_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations/flags", tag = "cooperations", responses((status = 200, body = [Flag])))]
pub async fn flags(State(s): State<AppState>) -> ApiResult<Json<Vec<Flag>>> {
    Ok(Json(app::flags_for(&s).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/amendments", tag = "cooperations", params(("id" = String, Path)), request_body = AmendRequest,
    responses((status = 201, body = Amendment), (status = 404), (status = 409), (status = 422)))]
pub async fn amend(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AmendRequest>,
) -> ApiResult<Response> {
    Ok(created(app::amend_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/amendments/{id}/decide", tag = "cooperations", params(("id" = String, Path)), request_body = DecideRequest,
    responses((status = 200, body = Amendment), (status = 404), (status = 409)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<DecideRequest>,
) -> ApiResult<Json<Amendment>> {
    Ok(Json(app::decide_for(&s, caller.require()?, &id, r.accept).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/complete", tag = "cooperations", params(("id" = String, Path)),
    responses((status = 200, body = Cooperation), (status = 404), (status = 409)))]
pub async fn complete(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Cooperation>> {
    Ok(Json(app::complete_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/ratings", tag = "cooperations", params(("id" = String, Path)), request_body = RateRequest,
    responses((status = 201, body = Rating), (status = 404), (status = 409), (status = 422)))]
pub async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RateRequest>,
) -> ApiResult<Response> {
    Ok(created(app::rate_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations/summary", tag = "cooperations", params(YearQuery), responses((status = 200, body = CooperationSummary), (status = 403)))]
pub async fn summary(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<YearQuery>) -> ApiResult<Json<CooperationSummary>> {
    Ok(Json(app::summary_for(&s, caller.require()?, q.year).await?))
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", responses((status = 200, body = Notifications)))]
pub async fn notifications(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Notifications>> {
    Ok(Json(app::notifications_for(&s, caller.require()?).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", request_body = ReadRequest, responses((status = 200, body = ReadResult)))]
pub async fn mark_read(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<ReadRequest>) -> ApiResult<Json<ReadResult>> {
    Ok(Json(app::mark_read_for(&s, caller.require()?, r.id.as_deref()).await?))
}
