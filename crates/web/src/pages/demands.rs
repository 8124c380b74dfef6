//! Demand-board pages (M2.4), Chinese first, usable without JavaScript. Companies publish
//! demands, see recommended OPCs with the reason, handle proposals and record payments; OPCs
//! browse, see "demands for you", propose, confirm or dispute payments; both rate; committee
//! reviewers resolve disputes and see S3 flags. Validation and rules are the JSON API's
//! (`api::demands::*_for`); a refused form comes back on the same page with the messages.

use super::{fen_of, page_error, render};
use crate::api::demands::{self as d, FileBytes, NewPaymentRequest, SearchQuery};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, upload, AppState};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_domain::Role;
use opchub_store::demands::{DemandInput, PaymentInput, CATEGORIES};
use serde::Deserialize;

fn errors_ctx(e: Option<&ApiError>) -> Value {
    match e {
        None => Value::from(()),
        Some(e) => {
            let (message, fields) = e.messages(&i18n::current_lang());
            context! { message => message, code => e.code.clone(), fields => fields }
        }
    }
}

fn categories_ctx() -> Vec<Value> {
    let lang = i18n::current_lang();
    CATEGORIES
        .iter()
        .map(|c| context! { code => *c, name => i18n::text(&lang, &format!("demand.category.{c}")) })
        .collect()
}

fn need(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.0.as_ref().ok_or_else(ApiError::unauthorized)
}

// ---------------------------------------------------------------- browse and search

pub async fn browse(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let p = caller.0.as_ref();
    let results = match d::search_for(&s, &q).await {
        Ok(r) => r,
        Err(e) => return page_error(&s, p, e),
    };
    let for_me = match p {
        Some(p) if p.role() == Role::OpcFounder => d::for_me_for(&s, p, 10).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    render(
        &s,
        p,
        &csrf.0,
        "demands.html",
        StatusCode::OK,
        context! {
            results => results, for_me => for_me, categories => categories_ctx(),
            q => q.q.clone().unwrap_or_default(), category => q.category.clone().unwrap_or_default(), tag => q.tag.clone().unwrap_or_default(),
        },
    )
}

// ---------------------------------------------------------------- company: publish, my demands

fn new_form(s: &AppState, p: &Principal, csrf: &str, form: &DemandForm, e: Option<&ApiError>) -> Response {
    let status = e.map(|e| e.status).unwrap_or(StatusCode::OK);
    render(
        s,
        Some(p),
        csrf,
        "demand_new.html",
        status,
        context! { categories => categories_ctx(), form => Value::from_serialize(form), errors => errors_ctx(e) },
    )
}

#[derive(Deserialize, serde::Serialize, Default)]
pub struct DemandForm {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    /// Comma-separated.
    pub tags: Option<String>,
    /// Yuan.
    pub budget_min: Option<String>,
    pub budget_max: Option<String>,
    pub deadline: Option<String>,
    /// `publish` or `draft`.
    pub action: Option<String>,
}

pub async fn new_demand(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let p = match need(&caller) {
        Ok(p) => p,
        Err(e) => return page_error(&s, None, e),
    };
    if let Err(e) = d::publisher_of(&s, p).await {
        return page_error(&s, Some(p), e);
    }
    new_form(&s, p, &csrf.0, &DemandForm::default(), None)
}

/// The publish form: URL-encoded, or `multipart/form-data` with up to five files in the
/// `attachments` input (a file input left empty is ignored).
async fn read_demand_form(req: Request) -> Result<(DemandForm, Vec<FileBytes>), ApiError> {
    let boundary = upload::boundary(req.headers());
    let bytes = axum::body::to_bytes(req.into_body(), upload::PAGE_UPLOAD_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"))?;
    let Some(boundary) = boundary else {
        let f = serde_urlencoded::from_bytes::<DemandForm>(&bytes).map_err(|_| ApiError::bad_request("invalid_body"))?;
        return Ok((f, Vec::new()));
    };
    let parts = upload::parts(bytes, &boundary)
        .await
        .ok_or_else(|| ApiError::bad_request("invalid_body"))?;
    let mut f = DemandForm::default();
    let mut files = Vec::new();
    for part in parts {
        let slot = match part.name.as_str() {
            "attachments" => {
                // Browsers send an unchosen file input as an empty part without a name; some
                // send a path: keep its last segment.
                let name = part.file_name.as_deref().unwrap_or_default();
                let name = name.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
                if !name.is_empty() || !part.bytes.is_empty() {
                    files.push(FileBytes {
                        name,
                        content_type: part.content_type.clone().unwrap_or_default(),
                        bytes: part.bytes.to_vec(),
                    });
                }
                continue;
            }
            "title" => &mut f.title,
            "description" => &mut f.description,
            "category" => &mut f.category,
            "tags" => &mut f.tags,
            "budget_min" => &mut f.budget_min,
            "budget_max" => &mut f.budget_max,
            "deadline" => &mut f.deadline,
            "action" => &mut f.action,
            _ => continue,
        };
        *slot = Some(part.text());
    }
    Ok((f, files))
}

pub async fn create_demand(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, req: Request) -> Response {
    let p = match need(&caller) {
        Ok(p) => p,
        Err(e) => return page_error(&s, None, e),
    };
    let (f, files) = match read_demand_form(req).await {
        Ok(x) => x,
        Err(e) => return new_form(&s, p, &csrf.0, &DemandForm::default(), Some(&e)),
    };
    let res = async {
        let budget_min_fen = fen_of("budget_min_fen", f.budget_min.as_deref())?;
        let budget_max_fen = fen_of("budget_max_fen", f.budget_max.as_deref())?;
        let demand = DemandInput {
            title: f.title.clone(),
            description: f.description.clone(),
            category: f.category.clone(),
            tags: super::gateway::split_list(f.tags.as_deref().unwrap_or("")),
            budget_min_fen,
            budget_max_fen,
            deadline: f.deadline.clone(),
            publish: f.action.as_deref() != Some("draft"),
        };
        d::create_demand_with_files(&s, p, &demand, &files).await
    }
    .await;
    match res {
        Ok(dm) => Redirect::to(&format!("/demands/{}", dm.id)).into_response(),
        Err(e) if e.status == StatusCode::FORBIDDEN => page_error(&s, Some(p), e),
        Err(e) => new_form(&s, p, &csrf.0, &f, Some(&e)),
    }
}

pub async fn mine(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let p = match need(&caller) {
        Ok(p) => p,
        Err(e) => return page_error(&s, None, e),
    };
    let res = async {
        let pb = d::publisher_of(&s, p).await?;
        s.store.expire_demands().await?;
        let demands = s
            .store
            .demands(&opchub_store::demands::DemandFilter {
                enterprise_id: Some(pb.enterprise_id.clone()),
                limit: 500,
                ..Default::default()
            })
            .await?;
        let summary = d::summary_for(&s, p, None).await?;
        let coops = d::cooperations_for(&s, p).await?;
        Ok::<_, ApiError>(context! { company => pb, demands => demands, summary => summary, cooperations => coops })
    }
    .await;
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "demands_mine.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e),
    }
}

// ---------------------------------------------------------------- one demand

async fn demand_page(s: &AppState, p: Option<&Principal>, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    let res = async {
        s.store.expire_demands().await?;
        let dm = d::visible_demand(s, p, id).await?;
        let attachments = s.store.demand_attachments(id).await?;
        let mut owner = false;
        let mut recommendations = Vec::new();
        let mut proposals = Vec::new();
        let mut my_proposal = None;
        let mut can_propose = false;
        if let Some(p) = p {
            match p.role() {
                Role::Enterprise if d::own_demand(s, p, id).await.is_ok() => {
                    owner = true;
                    proposals = s.store.proposals_of_demand(id).await?;
                    if dm.status == "open" || dm.status == "draft" {
                        recommendations = d::recommendations_for(s, p, id, 10).await?;
                    }
                }
                Role::OpcFounder => {
                    if let Ok(opc) = d::opc_of(s, p).await {
                        my_proposal = s.store.proposals_of_demand(id).await?.into_iter().find(|x| x.opc_id == opc.id);
                        can_propose = my_proposal.is_none() && dm.status == "open";
                    }
                }
                _ => {}
            }
        }
        let coop = if owner || my_proposal.as_ref().is_some_and(|x| x.status == "accepted") {
            s.store
                .cooperations_of(Some(&dm.enterprise_id), None)
                .await?
                .into_iter()
                .find(|c| c.demand_id == dm.id)
        } else {
            None
        };
        Ok::<_, ApiError>(context! {
            demand => dm, attachments => attachments, owner => owner, recommendations => recommendations, proposals => proposals,
            my_proposal => my_proposal, can_propose => can_propose, cooperation => coop, errors => errors_ctx(e),
        })
    }
    .await;
    match res {
        Ok(ctx) => render(s, p, csrf, "demand.html", e.map(|e| e.status).unwrap_or(StatusCode::OK), ctx),
        Err(err) => page_error(s, p, err),
    }
}

pub async fn show(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    demand_page(&s, caller.0.as_ref(), &csrf.0, &id, None).await
}

pub async fn publish(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::publish_for(&s, p, &id).await {
        Ok(_) => Redirect::to(&format!("/demands/{id}")).into_response(),
        Err(e) => demand_page(&s, Some(p), &csrf.0, &id, Some(&e)).await,
    }
}

pub async fn cancel(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::cancel_for(&s, p, &id).await {
        Ok(_) => Redirect::to(&format!("/demands/{id}")).into_response(),
        Err(e) => demand_page(&s, Some(p), &csrf.0, &id, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct ProposalForm {
    /// Yuan.
    pub price: Option<String>,
    pub timeline_days: Option<String>,
    pub message: Option<String>,
}

pub async fn propose(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<ProposalForm>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let price_fen = fen_of("price_fen", f.price.as_deref())?;
        let timeline_days = match f.timeline_days.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| ApiError::field("timeline_days", "out_of_range"))?),
        };
        let r = d::NewProposalRequest {
            price_fen,
            timeline_days,
            message: f.message.clone(),
        };
        d::propose_for(&s, p, &id, &r).await
    }
    .await;
    match res {
        Ok(_) => Redirect::to(&format!("/demands/{id}")).into_response(),
        Err(e) => demand_page(&s, Some(p), &csrf.0, &id, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct ProposalAction {
    /// `shortlist`, `decline` or `accept`.
    pub action: Option<String>,
}

pub async fn proposal_action(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<ProposalAction>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let demand_id = match s.store.proposal(&id).await {
        Ok(x) => x.demand_id,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let res = match f.action.as_deref() {
        Some("shortlist") => d::shortlist_for(&s, p, &id).await.map(|_| format!("/demands/{demand_id}")),
        Some("decline") => d::decline_for(&s, p, &id).await.map(|_| format!("/demands/{demand_id}")),
        Some("accept") => d::accept_for(&s, p, &id, &d::AcceptRequest::default())
            .await
            .map(|c| format!("/cooperations/{}", c.id)),
        _ => Err(ApiError::field("action", "unknown_status")),
    };
    match res {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => demand_page(&s, Some(p), &csrf.0, &demand_id, Some(&e)).await,
    }
}

// ---------------------------------------------------------------- question thread

async fn thread_page(s: &AppState, p: &Principal, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    let res = async {
        let messages = d::messages_for(s, p, id).await?;
        let proposal = s.store.proposal(id).await?;
        Ok::<_, ApiError>(context! { proposal => proposal, messages => messages, errors => errors_ctx(e) })
    }
    .await;
    match res {
        Ok(ctx) => render(
            s,
            Some(p),
            csrf,
            "demand_thread.html",
            e.map(|e| e.status).unwrap_or(StatusCode::OK),
            ctx,
        ),
        Err(err) => page_error(s, Some(p), err),
    }
}

pub async fn thread(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    thread_page(&s, p, &csrf.0, &id, None).await
}

#[derive(Deserialize, Default)]
pub struct MessageForm {
    pub body: Option<String>,
}

pub async fn post_message(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<MessageForm>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::post_message_for(&s, p, &id, &d::NewMessageRequest { body: f.body }).await {
        Ok(_) => Redirect::to(&format!("/demands/proposals/{id}")).into_response(),
        Err(e) => thread_page(&s, p, &csrf.0, &id, Some(&e)).await,
    }
}

// ---------------------------------------------------------------- cooperations

pub async fn cooperations(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::cooperations_for(&s, p).await {
        Ok(list) => render(
            &s,
            Some(p),
            &csrf.0,
            "cooperations.html",
            StatusCode::OK,
            context! { cooperations => list },
        ),
        Err(e) => page_error(&s, Some(p), e),
    }
}

async fn coop_page(s: &AppState, p: &Principal, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    match d::cooperation_detail(s, p, id).await {
        Ok(detail) => {
            let remaining = detail.cooperation.agreed_fen - detail.cooperation.recorded_fen;
            let today = opchub_ledger::event::day_of(opchub_store::now_ms());
            let rated: Vec<String> = detail.ratings.iter().map(|r| r.rater_side.clone()).collect();
            let pending_amendment = detail.amendments.iter().find(|a| a.status == "proposed").cloned();
            render(
                s,
                Some(p),
                csrf,
                "cooperation.html",
                e.map(|e| e.status).unwrap_or(StatusCode::OK),
                context! {
                    detail => detail, remaining => remaining, today => today, rated => rated,
                    pending_amendment => pending_amendment, errors => errors_ctx(e),
                },
            )
        }
        Err(err) => page_error(s, Some(p), err),
    }
}

pub async fn cooperation(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    coop_page(&s, p, &csrf.0, &id, None).await
}

#[derive(Deserialize, Default)]
pub struct PaymentForm {
    /// Yuan.
    pub amount: Option<String>,
    pub paid_on: Option<String>,
    pub invoice_number: Option<String>,
}

pub async fn record_payment(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<PaymentForm>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let amount_fen = fen_of("amount_fen", f.amount.as_deref())?;
        let r = NewPaymentRequest {
            payment: PaymentInput {
                amount_fen,
                paid_on: f.paid_on.clone(),
                invoice_number: f.invoice_number.clone(),
            },
            invoice: None,
        };
        d::record_payment_for(&s, p, &id, &r).await
    }
    .await;
    match res {
        Ok(_) => Redirect::to(&format!("/cooperations/{id}")).into_response(),
        Err(e) => coop_page(&s, p, &csrf.0, &id, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct PaymentAction {
    /// `confirm` or `dispute`.
    pub action: Option<String>,
    pub reason: Option<String>,
}

pub async fn payment_action(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<PaymentAction>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let coop_id = match s.store.payment(&id).await {
        Ok(x) => x.cooperation_id,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let res = match f.action.as_deref() {
        Some("confirm") => d::confirm_for(&s, p, &id).await.map(|_| ()),
        Some("dispute") => d::dispute_for(&s, p, &id, &d::ReasonRequest { reason: f.reason.clone() })
            .await
            .map(|_| ()),
        _ => Err(ApiError::field("action", "unknown_status")),
    };
    match res {
        Ok(()) => Redirect::to(&format!("/cooperations/{coop_id}")).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page_error(&s, Some(p), e),
        Err(e) => coop_page(&s, p, &csrf.0, &coop_id, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct CoopForm {
    /// `amend`, `complete`, `rate`, `accept_amendment`, `reject_amendment`.
    pub action: Option<String>,
    /// Yuan (amendments).
    pub agreed: Option<String>,
    pub reason: Option<String>,
    pub score: Option<String>,
    pub comment: Option<String>,
    pub amendment_id: Option<String>,
}

pub async fn coop_action(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<CoopForm>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        match f.action.as_deref() {
            Some("amend") => {
                let agreed_fen = fen_of("agreed_fen", f.agreed.as_deref())?;
                d::amend_for(
                    &s,
                    p,
                    &id,
                    &d::AmendRequest {
                        agreed_fen,
                        reason: f.reason.clone(),
                    },
                )
                .await
                .map(|_| ())
            }
            Some("complete") => d::complete_for(&s, p, &id).await.map(|_| ()),
            Some("rate") => {
                let score = f.score.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
                let r = d::RateRequest {
                    score,
                    comment: f.comment.clone().unwrap_or_default(),
                };
                d::rate_for(&s, p, &id, &r).await.map(|_| ())
            }
            Some(a @ ("accept_amendment" | "reject_amendment")) => {
                let aid = f.amendment_id.clone().unwrap_or_default();
                let am = s.store.amendment(&aid).await?;
                if am.cooperation_id != id {
                    return Err(ApiError::not_found());
                }
                d::decide_for(&s, p, &aid, a == "accept_amendment").await.map(|_| ())
            }
            _ => Err(ApiError::field("action", "unknown_status")),
        }
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/cooperations/{id}")).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page_error(&s, Some(p), e),
        Err(e) => coop_page(&s, p, &csrf.0, &id, Some(&e)).await,
    }
}

// ---------------------------------------------------------------- committee review

pub async fn review(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let open = s.store.disputes(true).await?;
        let all = s.store.disputes(false).await?;
        let flags = s.store.flags().await?;
        Ok::<_, ApiError>(
            context! { open => open, resolved => all.into_iter().filter(|x| x.status != "open").collect::<Vec<_>>(), flags => flags },
        )
    }
    .await;
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "demand_review.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e),
    }
}

#[derive(Deserialize, Default)]
pub struct ResolveForm {
    pub resolution: Option<String>,
    pub note: Option<String>,
}

pub async fn resolve(State(s): State<AppState>, caller: Caller, Path(id): Path<String>, Form(f): Form<ResolveForm>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let r = d::ResolveRequest {
        resolution: f.resolution,
        note: f.note,
    };
    match d::resolve_for(&s, p, &id, &r).await {
        Ok(_) => Redirect::to("/cooperations/review").into_response(),
        Err(e) => page_error(&s, Some(p), e),
    }
}

// ---------------------------------------------------------------- notifications

pub async fn notifications(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let items = s.store.notifications(&p.user.id, 100).await?;
        let unread = s.store.unread_notifications(&p.user.id).await?;
        let lang = i18n::current_lang();
        let items: Vec<Value> = items
            .into_iter()
            .map(|n| {
                let href = match n.object_kind.as_str() {
                    "cooperation" => format!("/cooperations/{}", n.object_id),
                    "dispute" => format!("/cooperations/review#dispute-{}", n.object_id),
                    _ => format!("/demands/{}", n.object_id),
                };
                let text = i18n::text(&lang, &format!("demand.notify.{}", n.kind));
                context! { n => n, href => href, text => text }
            })
            .collect();
        Ok::<_, ApiError>(context! { items => items, unread => unread })
    }
    .await;
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "notifications.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e),
    }
}

#[derive(Deserialize, Default)]
pub struct ReadForm {
    pub id: Option<String>,
}

pub async fn mark_read(State(s): State<AppState>, caller: Caller, Form(f): Form<ReadForm>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let id = f.id.filter(|v| !v.is_empty());
    match s.store.mark_notifications_read(&p.user.id, id.as_deref()).await {
        Ok(_) => Redirect::to("/notifications").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}
