//! Demand board JSON API (M2.4): demands, matching, proposals with question threads,
//! cooperations with payments, amendments, disputes, ratings, S3 flags and notifications.
//! The `*_for` functions hold the rules and are shared with the pages; handlers only extract.
//!
//! Who may act on what, beyond the route table's roles: a company acts only on its own
//! demands and cooperations, an OPC only on its own proposals and cooperations; anything else
//! is reported as 404 so that nobody learns another party's records exist.

use super::ApiJson;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use opchub_domain::Role;
use opchub_store::demands::{
    check_demand, check_file, check_payment, Amendment, Attachment, Cooperation, Demand, DemandFilter, DemandInput, Dispute, Eligibility,
    FileIn, Flag, Message, Milestone, Notification, Payment, PaymentInput, Proposal, Publisher, Rating, Reputation,
};
use opchub_store::matching::{DemandDoc, Ranked, SearchFilter};
use opchub_store::registry::Opc;
use opchub_store::StoreError;
use serde::Deserialize;
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};

/// Bodies that may carry files (base64): demands with attachments, payments with invoices.
pub const MAX_FILE_BODY: usize = 4 * 1024 * 1024;

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// The caller's company, if it may publish (M2.4: verified, in the district).
pub async fn publisher_of(s: &AppState, p: &Principal) -> ApiResult<Publisher> {
    if p.role() != Role::Enterprise {
        return Err(ApiError::forbidden());
    }
    match s.store.publisher(&p.user.id).await? {
        Eligibility::Eligible(pb) => Ok(pb),
        Eligibility::NotVerified => Err(ApiError::new(StatusCode::FORBIDDEN, "company_not_verified")),
        Eligibility::NotInDistrict => Err(ApiError::new(StatusCode::FORBIDDEN, "company_not_in_district")),
    }
}

/// The caller's OPC (an OPC founder without one cannot propose).
pub async fn opc_of(s: &AppState, p: &Principal) -> ApiResult<Opc> {
    if p.role() != Role::OpcFounder {
        return Err(ApiError::forbidden());
    }
    s.store
        .opc_of_founder(&p.user.id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "no_company"))
}

fn staff(p: &Principal) -> bool {
    matches!(p.role(), Role::Committee | Role::Auditor | Role::PlatformOperator)
}

/// A demand the caller may see: open/in progress/completed for everyone signed in or not;
/// drafts, cancelled and expired ones only for their company and staff.
pub async fn visible_demand(s: &AppState, p: Option<&Principal>, id: &str) -> ApiResult<Demand> {
    let d = s.store.demand(id).await?;
    if matches!(d.status.as_str(), "open" | "in_progress" | "completed") {
        return Ok(d);
    }
    if let Some(p) = p {
        if staff(p) {
            return Ok(d);
        }
        if p.role() == Role::Enterprise {
            if let Eligibility::Eligible(pb) = s.store.publisher(&p.user.id).await? {
                if pb.enterprise_id == d.enterprise_id {
                    return Ok(d);
                }
            }
        }
    }
    Err(ApiError::not_found())
}

/// A demand of the caller's own company.
pub async fn own_demand(s: &AppState, p: &Principal, id: &str) -> ApiResult<(Publisher, Demand)> {
    let pb = publisher_of(s, p).await?;
    let d = s.store.demand(id).await?;
    if d.enterprise_id != pb.enterprise_id {
        return Err(ApiError::not_found());
    }
    Ok((pb, d))
}

/// A cooperation the caller is a party to (staff may read any).
pub async fn visible_cooperation(s: &AppState, p: &Principal, id: &str) -> ApiResult<Cooperation> {
    let c = s.store.cooperation(id).await?;
    if c.side_of(&p.user.id).is_some() || staff(p) {
        Ok(c)
    } else {
        Err(ApiError::not_found())
    }
}

/// A cooperation the caller is a party to on `side` (`company` or `opc`).
async fn party_cooperation(s: &AppState, p: &Principal, id: &str, side: &str) -> ApiResult<Cooperation> {
    let c = s.store.cooperation(id).await?;
    if c.side_of(&p.user.id) == Some(side) {
        Ok(c)
    } else {
        Err(ApiError::not_found())
    }
}

// ---------------------------------------------------------------- demands

#[derive(Deserialize, ToSchema, Default)]
pub struct FileUpload {
    pub name: String,
    /// `application/pdf`, `image/png`, `image/jpeg` or `text/plain`.
    pub content_type: String,
    /// The file, base64 (standard alphabet); at most 2 MiB decoded.
    pub data_base64: String,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewDemandRequest {
    #[serde(flatten)]
    pub demand: DemandInput,
    #[serde(default)]
    pub attachments: Vec<FileUpload>,
}

fn decode(f: &FileUpload) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(f.data_base64.trim())
        .map_err(|_| ApiError::field("file", "invalid_base64"))
}

/// At most this many attachments on one demand.
pub const MAX_ATTACHMENTS: usize = 5;

/// A file of a request, decoded: as the browser or API client named and typed it.
pub struct FileBytes {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub async fn create_demand_for(s: &AppState, p: &Principal, r: &NewDemandRequest) -> ApiResult<Demand> {
    if r.attachments.len() > MAX_ATTACHMENTS {
        return Err(ApiError::field("attachments", "too_many_files"));
    }
    let files: Vec<FileBytes> = r
        .attachments
        .iter()
        .map(|f| {
            Ok(FileBytes {
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                bytes: decode(f)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    create_demand_with_files(s, p, &r.demand, &files).await
}

/// Publishes (or saves as a draft) a demand with its attachments; the rules of the API and of
/// the publish page. Nothing is stored when the demand or any file is refused; a refused
/// file's error names the file.
pub async fn create_demand_with_files(s: &AppState, p: &Principal, input: &DemandInput, files: &[FileBytes]) -> ApiResult<Demand> {
    let pb = publisher_of(s, p).await?;
    let d = check_demand(input).map_err(ApiError::validation)?;
    if files.len() > MAX_ATTACHMENTS {
        return Err(ApiError::field("attachments", "too_many_files"));
    }
    let files: Vec<FileIn<'_>> = files
        .iter()
        .map(|f| FileIn {
            name: &f.name,
            content_type: &f.content_type,
            bytes: &f.bytes,
        })
        .collect();
    for f in &files {
        if let Err(e) = check_file(f) {
            let mut e = ApiError::from(e);
            let name: String = f.name.trim().chars().take(200).filter(|c| !c.is_control()).collect();
            if !name.is_empty() {
                e.field_details.insert("file".into(), name);
            }
            return Err(e);
        }
    }
    Ok(s.store.create_demand(&p.actor(), &pb, &d, &files).await?)
}

#[utoipa::path(post, path = "/api/v1/demands", tag = "demands", request_body = NewDemandRequest,
    responses((status = 201, body = Demand), (status = 403, description = "company_not_verified / company_not_in_district"), (status = 422)))]
pub async fn create_demand(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewDemandRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(create_demand_for(&s, p, &r).await?))
}

#[derive(Deserialize, IntoParams, Default)]
pub struct SearchQuery {
    /// Words to look for (Chinese is segmented); empty: newest first.
    pub q: Option<String>,
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Only demands whose budget reaches at least this much (fen).
    pub budget_at_least_fen: Option<i64>,
    pub limit: Option<usize>,
}

pub async fn search_for(s: &AppState, q: &SearchQuery) -> ApiResult<Vec<Demand>> {
    let ix = s.matching.demand_index(&s.store).await?;
    let f = SearchFilter {
        category: q.category.clone().filter(|c| !c.is_empty()),
        tag: q.tag.clone().filter(|c| !c.is_empty()),
        budget_at_least_fen: q.budget_at_least_fen,
    };
    let ids = ix.search(q.q.as_deref().unwrap_or(""), &f, q.limit.unwrap_or(50).clamp(1, 200));
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.store.demand(&id).await {
            Ok(d) if d.status == "open" => out.push(d),
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/demands", tag = "demands", params(SearchQuery), responses((status = 200, body = [Demand])))]
pub async fn search(State(s): State<AppState>, Query(q): Query<SearchQuery>) -> ApiResult<Json<Vec<Demand>>> {
    Ok(Json(search_for(&s, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/mine", tag = "demands", responses((status = 200, body = [Demand]), (status = 403)))]
pub async fn my_demands(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Demand>>> {
    let p = caller.require()?;
    let pb = publisher_of(&s, p).await?;
    s.store.expire_demands().await?;
    Ok(Json(
        s.store
            .demands(&DemandFilter {
                enterprise_id: Some(pb.enterprise_id),
                limit: 500,
                ..Default::default()
            })
            .await?,
    ))
}

#[derive(serde::Serialize, ToSchema)]
pub struct DemandDetail {
    pub demand: Demand,
    pub attachments: Vec<Attachment>,
    /// The company's reputation (completed cooperations, ratings from OPCs).
    pub company_reputation: Reputation,
}

#[utoipa::path(get, path = "/api/v1/demands/{id}", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = DemandDetail), (status = 404)))]
pub async fn demand(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<DemandDetail>> {
    s.store.expire_demands().await?;
    let d = visible_demand(&s, caller.0.as_ref(), &id).await?;
    Ok(Json(DemandDetail {
        attachments: s.store.demand_attachments(&d.id).await?,
        company_reputation: s.store.reputation("company", &d.enterprise_id).await?,
        demand: d,
    }))
}

#[utoipa::path(get, path = "/api/v1/demands/files/{sha256}", tag = "demands", params(("sha256" = String, Path)), responses((status = 200, description = "the file"), (status = 404)))]
pub async fn file(State(s): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    let p = caller.require()?;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let sha = sha.to_ascii_lowercase();
    // An attachment of a demand the caller may see, or an invoice of a cooperation the caller
    // is a party to (or reviews); any other file is not found.
    let mut allowed = false;
    for demand_id in s.store.file_demands(&sha).await? {
        if visible_demand(&s, Some(p), &demand_id).await.is_ok() {
            allowed = true;
            break;
        }
    }
    if !allowed {
        for coop_id in s.store.file_cooperations(&sha).await? {
            if visible_cooperation(&s, p, &coop_id).await.is_ok() {
                allowed = true;
                break;
            }
        }
    }
    if !allowed {
        return Err(ApiError::not_found());
    }
    let (ct, body) = s.store.demand_file(&sha).await?;
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

pub async fn publish_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Demand> {
    own_demand(s, p, id).await?;
    Ok(s.store.publish_demand(&p.actor(), id).await?)
}

pub async fn cancel_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Demand> {
    own_demand(s, p, id).await?;
    Ok(s.store.cancel_demand(&p.actor(), id).await?)
}

#[utoipa::path(post, path = "/api/v1/demands/{id}/publish", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Demand), (status = 404), (status = 409)))]
pub async fn publish(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Demand>> {
    Ok(Json(publish_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/{id}/cancel", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Demand), (status = 404), (status = 409)))]
pub async fn cancel(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Demand>> {
    Ok(Json(cancel_for(&s, caller.require()?, &id).await?))
}

fn doc_of(d: &Demand) -> DemandDoc {
    DemandDoc {
        id: d.id.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        category: d.category.clone(),
        tags: d.tags.clone(),
        budget_min_fen: d.budget_min_fen,
        budget_max_fen: d.budget_max_fen,
        published_at: d.published_at.unwrap_or(0),
    }
}

/// Ranked OPCs for a demand of the caller's company (staff may look at any demand).
pub async fn recommendations_for(s: &AppState, p: &Principal, id: &str, k: usize) -> ApiResult<Vec<Ranked>> {
    let d = if staff(p) {
        s.store.demand(id).await?
    } else {
        own_demand(s, p, id).await?.1
    };
    let ix = s.matching.opc_index(&s.store).await?;
    Ok(ix.recommend(&doc_of(&d), k))
}

#[derive(Deserialize, IntoParams, Default)]
pub struct LimitQuery {
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/demands/{id}/recommendations", tag = "demands", params(("id" = String, Path), LimitQuery),
    responses((status = 200, body = [Ranked]), (status = 404)))]
pub async fn recommendations(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Vec<Ranked>>> {
    let p = caller.require()?;
    Ok(Json(recommendations_for(&s, p, &id, q.limit.unwrap_or(10).clamp(1, 50)).await?))
}

/// "Demands for you": open demands ranked for the caller's OPC (without those it proposed on).
pub async fn for_me_for(s: &AppState, p: &Principal, k: usize) -> ApiResult<Vec<Ranked>> {
    let opc = opc_of(s, p).await?;
    let opcs = s.matching.opc_index(&s.store).await?;
    let demands = s.matching.demand_index(&s.store).await?;
    let exclude: BTreeSet<String> = s.store.proposals_of_opc(&opc.id).await?.into_iter().map(|p| p.demand_id).collect();
    Ok(match opcs.profile(&opc.id) {
        Some(profile) => demands.for_opc(profile, &exclude, k),
        None => Vec::new(),
    })
}

#[utoipa::path(get, path = "/api/v1/demands/for-me", tag = "demands", params(LimitQuery), responses((status = 200, body = [Ranked]), (status = 403)))]
pub async fn for_me(State(s): State<AppState>, caller: Caller, Query(q): Query<LimitQuery>) -> ApiResult<Json<Vec<Ranked>>> {
    let p = caller.require()?;
    Ok(Json(for_me_for(&s, p, q.limit.unwrap_or(10).clamp(1, 50)).await?))
}

// ---------------------------------------------------------------- proposals

#[derive(Deserialize, ToSchema, Default)]
pub struct NewProposalRequest {
    pub price_fen: Option<i64>,
    pub timeline_days: Option<i64>,
    pub message: Option<String>,
}

pub async fn propose_for(s: &AppState, p: &Principal, demand_id: &str, r: &NewProposalRequest) -> ApiResult<Proposal> {
    let opc = opc_of(s, p).await?;
    visible_demand(s, Some(p), demand_id).await?;
    let mut c = opchub_domain::input::Checker::new();
    match r.price_fen {
        None | Some(0) => {
            c.errors.insert("price_fen".into(), "required".into());
        }
        Some(v) if v < 0 => {
            c.errors.insert("price_fen".into(), "negative_amount".into());
        }
        Some(v) if v > opchub_store::demands::MAX_AMOUNT_FEN => {
            c.errors.insert("price_fen".into(), "amount_out_of_range".into());
        }
        _ => {}
    }
    match r.timeline_days {
        Some(1..=3650) => {}
        None => {
            c.errors.insert("timeline_days".into(), "required".into());
        }
        Some(_) => {
            c.errors.insert("timeline_days".into(), "out_of_range".into());
        }
    }
    let message = c.text(
        "message",
        r.message.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        2000,
    );
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store
        .create_proposal(
            &p.actor(),
            demand_id,
            &opc.id,
            r.price_fen.unwrap_or(0),
            r.timeline_days.unwrap_or(0),
            &message,
        )
        .await?)
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
    Ok(created(propose_for(&s, p, &id, &r).await?))
}

/// The company sees every proposal on its demand; an OPC only its own.
pub async fn proposals_for(s: &AppState, p: &Principal, demand_id: &str) -> ApiResult<Vec<Proposal>> {
    match p.role() {
        Role::Enterprise => {
            own_demand(s, p, demand_id).await?;
            Ok(s.store.proposals_of_demand(demand_id).await?)
        }
        Role::OpcFounder => {
            let opc = opc_of(s, p).await?;
            visible_demand(s, Some(p), demand_id).await?;
            Ok(s.store
                .proposals_of_demand(demand_id)
                .await?
                .into_iter()
                .filter(|x| x.opc_id == opc.id)
                .collect())
        }
        _ => {
            s.store.demand(demand_id).await?;
            Ok(s.store.proposals_of_demand(demand_id).await?)
        }
    }
}

#[utoipa::path(get, path = "/api/v1/demands/{id}/proposals", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = [Proposal]), (status = 404)))]
pub async fn proposals(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vec<Proposal>>> {
    Ok(Json(proposals_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/proposals/mine", tag = "demands", responses((status = 200, body = [Proposal]), (status = 403)))]
pub async fn my_proposals(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Proposal>>> {
    let opc = opc_of(&s, caller.require()?).await?;
    Ok(Json(s.store.proposals_of_opc(&opc.id).await?))
}

/// A proposal on one of the caller's company's demands.
async fn own_proposal(s: &AppState, p: &Principal, id: &str) -> ApiResult<Proposal> {
    let pr = s.store.proposal(id).await?;
    own_demand(s, p, &pr.demand_id).await?;
    Ok(pr)
}

pub async fn shortlist_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Proposal> {
    own_proposal(s, p, id).await?;
    Ok(s.store.set_proposal_status(&p.actor(), id, "shortlisted").await?)
}

pub async fn decline_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Proposal> {
    own_proposal(s, p, id).await?;
    Ok(s.store.set_proposal_status(&p.actor(), id, "declined").await?)
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/shortlist", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Proposal), (status = 404), (status = 409)))]
pub async fn shortlist(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Proposal>> {
    Ok(Json(shortlist_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/decline", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = Proposal), (status = 404), (status = 409)))]
pub async fn decline(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Proposal>> {
    Ok(Json(decline_for(&s, caller.require()?, &id).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct AcceptRequest {
    /// Default: the proposal's price.
    pub agreed_fen: Option<i64>,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
}

pub async fn accept_for(s: &AppState, p: &Principal, id: &str, r: &AcceptRequest) -> ApiResult<Cooperation> {
    own_proposal(s, p, id).await?;
    // A demand past its deadline is expired, not open: it cannot be accepted any more.
    s.store.expire_demands().await?;
    let c = s.store.accept_proposal(&p.actor(), id, r.agreed_fen, &r.milestones).await?;
    s.matching.invalidate();
    Ok(c)
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/accept", tag = "demands", params(("id" = String, Path)), request_body = AcceptRequest,
    responses((status = 201, body = Cooperation), (status = 404), (status = 409, description = "demand_not_open: another proposal was accepted")))]
pub async fn accept(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AcceptRequest>,
) -> ApiResult<Response> {
    Ok(created(accept_for(&s, caller.require()?, &id, &r).await?))
}

/// The question thread of a proposal: the company that owns the demand and the proposing OPC.
/// Returns the proposal and the user to notify when the caller writes.
async fn thread_party(s: &AppState, p: &Principal, id: &str) -> ApiResult<(Proposal, String)> {
    let pr = s.store.proposal(id).await?;
    match p.role() {
        Role::Enterprise => {
            own_demand(s, p, &pr.demand_id).await?;
            let opc = s.store.opc(&pr.opc_id).await?;
            Ok((pr, opc.founder_user_id))
        }
        Role::OpcFounder => {
            let opc = opc_of(s, p).await?;
            if opc.id != pr.opc_id {
                return Err(ApiError::not_found());
            }
            let d = s.store.demand(&pr.demand_id).await?;
            let e = s.store.enterprise(&d.enterprise_id).await?;
            Ok((pr, e.owner_user_id))
        }
        _ => Err(ApiError::not_found()),
    }
}

pub async fn messages_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Vec<Message>> {
    thread_party(s, p, id).await?;
    Ok(s.store.messages(id).await?)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewMessageRequest {
    pub body: Option<String>,
}

pub async fn post_message_for(s: &AppState, p: &Principal, id: &str, r: &NewMessageRequest) -> ApiResult<Message> {
    let (_, other) = thread_party(s, p, id).await?;
    let mut c = opchub_domain::input::Checker::new();
    let body = c.text("body", r.body.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(), 1, 2000);
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store.add_message(&p.actor(), id, &p.user.id, &other, &body).await?)
}

#[utoipa::path(get, path = "/api/v1/demands/proposals/{id}/messages", tag = "demands", params(("id" = String, Path)), responses((status = 200, body = [Message]), (status = 404)))]
pub async fn messages(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Vec<Message>>> {
    Ok(Json(messages_for(&s, caller.require()?, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/demands/proposals/{id}/messages", tag = "demands", params(("id" = String, Path)), request_body = NewMessageRequest,
    responses((status = 201, body = Message), (status = 404), (status = 422)))]
pub async fn post_message(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewMessageRequest>,
) -> ApiResult<Response> {
    Ok(created(post_message_for(&s, caller.require()?, &id, &r).await?))
}

// ---------------------------------------------------------------- cooperations

#[derive(serde::Serialize, ToSchema)]
pub struct CooperationDetail {
    pub cooperation: Cooperation,
    pub payments: Vec<Payment>,
    pub amendments: Vec<Amendment>,
    pub ratings: Vec<Rating>,
    /// `company`, `opc`, or absent for staff.
    pub my_side: Option<String>,
}

pub async fn cooperation_detail(s: &AppState, p: &Principal, id: &str) -> ApiResult<CooperationDetail> {
    let c = visible_cooperation(s, p, id).await?;
    // Repair: a confirmed payment whose ledger append did not finish (crash) is posted now.
    for pid in s
        .store
        .payments(&c.id)
        .await?
        .iter()
        .filter(|x| x.status == "confirmed" && x.ledger_leaf_index.is_none())
    {
        post(s, &pid.id).await?;
    }
    Ok(CooperationDetail {
        payments: s.store.payments(&c.id).await?,
        amendments: s.store.amendments(&c.id).await?,
        ratings: s.store.ratings(&c.id).await?,
        my_side: c.side_of(&p.user.id).map(str::to_string),
        cooperation: c,
    })
}

#[utoipa::path(get, path = "/api/v1/cooperations/{id}", tag = "cooperations", params(("id" = String, Path)), responses((status = 200, body = CooperationDetail), (status = 404)))]
pub async fn cooperation(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<CooperationDetail>> {
    Ok(Json(cooperation_detail(&s, caller.require()?, &id).await?))
}

pub async fn cooperations_for(s: &AppState, p: &Principal) -> ApiResult<Vec<Cooperation>> {
    Ok(match p.role() {
        Role::Enterprise => {
            let pb = publisher_of(s, p).await?;
            s.store.cooperations_of(Some(&pb.enterprise_id), None).await?
        }
        Role::OpcFounder => {
            let opc = opc_of(s, p).await?;
            s.store.cooperations_of(None, Some(&opc.id)).await?
        }
        _ => s.store.cooperations_of(None, None).await?,
    })
}

#[utoipa::path(get, path = "/api/v1/cooperations", tag = "cooperations", responses((status = 200, body = [Cooperation])))]
pub async fn cooperations(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Cooperation>>> {
    Ok(Json(cooperations_for(&s, caller.require()?).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewPaymentRequest {
    #[serde(flatten)]
    pub payment: PaymentInput,
    /// The invoice file (its SHA-256 is recorded and goes into the ledger event).
    pub invoice: Option<FileUpload>,
}

pub async fn record_payment_for(s: &AppState, p: &Principal, coop_id: &str, r: &NewPaymentRequest) -> ApiResult<Payment> {
    party_cooperation(s, p, coop_id, "company").await?;
    let np = check_payment(&r.payment).map_err(ApiError::validation)?;
    let bytes = r.invoice.as_ref().map(decode).transpose()?;
    let file = match (&r.invoice, &bytes) {
        (Some(f), Some(b)) => Some(FileIn {
            name: &f.name,
            content_type: &f.content_type,
            bytes: b,
        }),
        _ => None,
    };
    Ok(s.store.record_payment(&p.actor(), coop_id, &np, file).await?)
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/payments", tag = "cooperations", params(("id" = String, Path)), request_body = NewPaymentRequest,
    responses((status = 201, body = Payment), (status = 404), (status = 409, description = "duplicate_invoice (flagged, S3)"), (status = 422, description = "above_agreed_amount, …")))]
pub async fn record_payment(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<NewPaymentRequest>,
) -> ApiResult<Response> {
    Ok(created(record_payment_for(&s, caller.require()?, &id, &r).await?))
}

async fn post(s: &AppState, payment_id: &str) -> ApiResult<i64> {
    let Some(w) = s.ledger.as_ref() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"));
    };
    Ok(s.store.post_payment(w, payment_id).await?)
}

/// A payment of a cooperation the caller is a party to on `side`; anything else is 404.
async fn party_payment(s: &AppState, p: &Principal, id: &str, side: Option<&str>) -> ApiResult<Payment> {
    let pay = s.store.payment(id).await?;
    let c = s.store.cooperation(&pay.cooperation_id).await?;
    match (c.side_of(&p.user.id), side) {
        (Some(_), None) => Ok(pay),
        (Some(a), Some(b)) if a == b => Ok(pay),
        _ => Err(ApiError::not_found()),
    }
}

/// The OPC confirms a payment of its own cooperation; the confirmed payment becomes one
/// `cooperation.payment` ledger event (M2.4).
pub async fn confirm_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Payment> {
    party_payment(s, p, id, Some("opc")).await?;
    s.store.confirm_payment(&p.actor(), id).await?;
    post(s, id).await?;
    Ok(s.store.payment(id).await?)
}

#[utoipa::path(post, path = "/api/v1/cooperations/payments/{id}/confirm", tag = "cooperations", params(("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 404), (status = 409, description = "payment_not_pending")))]
pub async fn confirm(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Payment>> {
    Ok(Json(confirm_for(&s, caller.require()?, &id).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ReasonRequest {
    pub reason: Option<String>,
}

pub async fn dispute_for(s: &AppState, p: &Principal, id: &str, r: &ReasonRequest) -> ApiResult<Dispute> {
    party_payment(s, p, id, None).await?;
    let mut c = opchub_domain::input::Checker::new();
    let reason = c.text(
        "reason",
        r.reason.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        1000,
    );
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store.dispute_payment(&p.actor(), id, &reason).await?)
}

#[utoipa::path(post, path = "/api/v1/cooperations/payments/{id}/dispute", tag = "cooperations", params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 201, body = Dispute), (status = 404), (status = 409)))]
pub async fn dispute(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReasonRequest>,
) -> ApiResult<Response> {
    Ok(created(dispute_for(&s, caller.require()?, &id, &r).await?))
}

#[derive(Deserialize, IntoParams, Default)]
pub struct DisputeQuery {
    /// Only open disputes (default true).
    pub open: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/cooperations/disputes", tag = "cooperations", params(DisputeQuery), responses((status = 200, body = [Dispute])))]
pub async fn disputes(State(s): State<AppState>, Query(q): Query<DisputeQuery>) -> ApiResult<Json<Vec<Dispute>>> {
    Ok(Json(s.store.disputes(q.open.unwrap_or(true)).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ResolveRequest {
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub note: Option<String>,
}

pub async fn resolve_for(s: &AppState, p: &Principal, id: &str, r: &ResolveRequest) -> ApiResult<Dispute> {
    let mut c = opchub_domain::input::Checker::new();
    let note = c.text("note", r.note.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(), 2, 1000);
    let resolution = r.resolution.as_deref().unwrap_or("").trim().to_string();
    if !matches!(resolution.as_str(), "upheld" | "rejected") {
        c.errors.insert("resolution".into(), "unknown_resolution".into());
    }
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    let d = s.store.resolve_dispute(&p.actor(), id, &resolution, &note).await?;
    if resolution == "upheld" {
        post(s, &d.payment_id).await?;
    }
    Ok(d)
}

#[utoipa::path(post, path = "/api/v1/cooperations/disputes/{id}/resolve", tag = "cooperations", params(("id" = String, Path)), request_body = ResolveRequest,
    responses((status = 200, body = Dispute), (status = 404), (status = 409), (status = 422)))]
pub async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ResolveRequest>,
) -> ApiResult<Json<Dispute>> {
    Ok(Json(resolve_for(&s, caller.require()?, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/cooperations/flags", tag = "cooperations", responses((status = 200, body = [Flag])))]
pub async fn flags(State(s): State<AppState>) -> ApiResult<Json<Vec<Flag>>> {
    Ok(Json(s.store.flags().await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct AmendRequest {
    pub agreed_fen: Option<i64>,
    pub reason: Option<String>,
}

pub async fn amend_for(s: &AppState, p: &Principal, coop_id: &str, r: &AmendRequest) -> ApiResult<Amendment> {
    party_cooperation(s, p, coop_id, "company").await?;
    let mut c = opchub_domain::input::Checker::new();
    let reason = c.text(
        "reason",
        r.reason.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        1000,
    );
    match r.agreed_fen {
        None => {
            c.errors.insert("agreed_fen".into(), "required".into());
        }
        Some(v) if v < 0 => {
            c.errors.insert("agreed_fen".into(), "negative_amount".into());
        }
        _ => {}
    }
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store
        .propose_amendment(&p.actor(), coop_id, r.agreed_fen.unwrap_or(0), &reason)
        .await?)
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/amendments", tag = "cooperations", params(("id" = String, Path)), request_body = AmendRequest,
    responses((status = 201, body = Amendment), (status = 404), (status = 409), (status = 422)))]
pub async fn amend(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AmendRequest>,
) -> ApiResult<Response> {
    Ok(created(amend_for(&s, caller.require()?, &id, &r).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DecideRequest {
    pub accept: bool,
}

pub async fn decide_for(s: &AppState, p: &Principal, id: &str, accept: bool) -> ApiResult<Amendment> {
    let a = s.store.amendment(id).await?;
    party_cooperation(s, p, &a.cooperation_id, "opc").await?;
    Ok(s.store.decide_amendment(&p.actor(), id, accept).await?)
}

#[utoipa::path(post, path = "/api/v1/cooperations/amendments/{id}/decide", tag = "cooperations", params(("id" = String, Path)), request_body = DecideRequest,
    responses((status = 200, body = Amendment), (status = 404), (status = 409)))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<DecideRequest>,
) -> ApiResult<Json<Amendment>> {
    Ok(Json(decide_for(&s, caller.require()?, &id, r.accept).await?))
}

pub async fn complete_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Cooperation> {
    party_cooperation(s, p, id, "company").await?;
    let c = s.store.complete_cooperation(&p.actor(), id).await?;
    s.matching.invalidate();
    Ok(c)
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/complete", tag = "cooperations", params(("id" = String, Path)),
    responses((status = 200, body = Cooperation), (status = 404), (status = 409)))]
pub async fn complete(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Cooperation>> {
    Ok(Json(complete_for(&s, caller.require()?, &id).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct RateRequest {
    /// 1..=5
    pub score: Option<i64>,
    #[serde(default)]
    pub comment: String,
}

pub async fn rate_for(s: &AppState, p: &Principal, id: &str, r: &RateRequest) -> ApiResult<Rating> {
    let c = visible_cooperation(s, p, id).await?;
    let Some(side) = c.side_of(&p.user.id) else {
        return Err(ApiError::not_found());
    };
    let Some(score) = r.score else {
        return Err(ApiError::field("score", "required"));
    };
    let rating = s.store.rate(&p.actor(), id, side, score, &r.comment).await?;
    s.matching.invalidate();
    Ok(rating)
}

#[utoipa::path(post, path = "/api/v1/cooperations/{id}/ratings", tag = "cooperations", params(("id" = String, Path)), request_body = RateRequest,
    responses((status = 201, body = Rating), (status = 404), (status = 409), (status = 422)))]
pub async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RateRequest>,
) -> ApiResult<Response> {
    Ok(created(rate_for(&s, caller.require()?, &id, &r).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct CooperationSummary {
    pub enterprise_id: String,
    pub year: i32,
    /// Payments confirmed by both sides this year, from the ledger (M2.4's base).
    pub confirmed_fen: i64,
    /// M2.4's yearly cap for the publishing company (500,000 yuan), in fen.
    pub cap_fen: i64,
}

#[derive(Deserialize, IntoParams, Default)]
pub struct YearQuery {
    pub year: Option<i32>,
}

pub async fn summary_for(s: &AppState, p: &Principal, year: Option<i32>) -> ApiResult<CooperationSummary> {
    let pb = publisher_of(s, p).await?;
    let year = year.unwrap_or_else(|| opchub_ledger::event::day_of(opchub_store::now_ms())[..4].parse().unwrap_or(2026));
    Ok(CooperationSummary {
        confirmed_fen: s.store.confirmed_cooperation_total(&pb.enterprise_id, year).await?,
        enterprise_id: pb.enterprise_id,
        year,
        cap_fen: 50_000_000,
    })
}

#[utoipa::path(get, path = "/api/v1/cooperations/summary", tag = "cooperations", params(YearQuery), responses((status = 200, body = CooperationSummary), (status = 403)))]
pub async fn summary(State(s): State<AppState>, caller: Caller, Query(q): Query<YearQuery>) -> ApiResult<Json<CooperationSummary>> {
    Ok(Json(summary_for(&s, caller.require()?, q.year).await?))
}

// ---------------------------------------------------------------- notifications

#[derive(serde::Serialize, ToSchema)]
pub struct Notifications {
    pub unread: i64,
    pub items: Vec<Notification>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", responses((status = 200, body = Notifications)))]
pub async fn notifications(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Notifications>> {
    let p = caller.require()?;
    Ok(Json(Notifications {
        unread: s.store.unread_notifications(&p.user.id).await?,
        items: s.store.notifications(&p.user.id, 100).await?,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ReadRequest {
    /// One notification; omit to mark all read.
    pub id: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct ReadResult {
    pub marked: u64,
    pub unread: i64,
}

#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", request_body = ReadRequest, responses((status = 200, body = ReadResult)))]
pub async fn mark_read(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<ReadRequest>) -> ApiResult<Json<ReadResult>> {
    let p = caller.require()?;
    let marked = s.store.mark_notifications_read(&p.user.id, r.id.as_deref()).await?;
    Ok(Json(ReadResult {
        marked,
        unread: s.store.unread_notifications(&p.user.id).await?,
    }))
}
