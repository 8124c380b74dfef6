//! Demand-board pages (M2.4), Chinese first, usable without JavaScript. Companies publish
//! demands, see recommended OPCs with the reason, handle proposals and record payments; OPCs
//! browse, see "demands for you", propose, confirm or dispute payments; both rate; committee
//! reviewers resolve disputes and see S3 flags. Validation and rules are the use cases of
//! `opchub_app::demands`, the same the JSON API calls; a refused form comes back on the same
//! page with the messages.

use super::{fen_of, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, upload, AppState};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::demands::{self as d, DemandInput, FileBytes, NewPaymentRequest, PaymentInput, SearchQuery, CATEGORIES};
use opchub_domain::Role;
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
        Err(e) => return page_error(&s, p, e.into()),
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
        return page_error(&s, Some(p), e.into());
    }
    new_form(&s, p, &csrf.0, &DemandForm::default(), None)
}

/// The publish form: URL-encoded, or `multipart/form-data` with up to five files in the
/// `attachments` input (a file input left empty is ignored).
async fn read_demand_form(req: Request) -> Result<(DemandForm, Vec<FileBytes>), ApiError> {
    let boundary = upload::boundary(req.headers());
    let bytes = axum::body::to_bytes(req.into_body(), upload::PAGE_UPLOAD_BODY)
        .await
        .map_err(|_| ApiError::from(crate::error::HttpError::BodyTooLarge))?;
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
        Ok::<_, ApiError>(d::create_demand_with_files(&s, p, &demand, &files).await?)
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
    let res = d::company_board(&s, p).await.map(|b| Value::from_serialize(&b));
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "demands_mine.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

// ---------------------------------------------------------------- one demand

async fn demand_page(s: &AppState, p: Option<&Principal>, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    let res = d::demand_view(s, p, id)
        .await
        .map(|v| context! { errors => errors_ctx(e), ..Value::from_serialize(&v) });
    match res {
        Ok(ctx) => render(s, p, csrf, "demand.html", e.map(|e| e.status).unwrap_or(StatusCode::OK), ctx),
        Err(err) => page_error(s, p, err.into()),
    }
}

pub async fn show(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    demand_page(&s, caller.0.as_ref(), &csrf.0, &id, None).await
}

pub async fn publish(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::publish_for(&s, p, &id).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to(&format!("/demands/{id}")).into_response(),
        Err(e) => demand_page(&s, Some(p), &csrf.0, &id, Some(&e)).await,
    }
}

pub async fn cancel(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match d::cancel_for(&s, p, &id).await.map_err(ApiError::from) {
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
        Ok::<_, ApiError>(d::propose_for(&s, p, &id, &r).await?)
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
    let demand_id = match d::proposal_demand(&s, &id).await {
        Ok(x) => x,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let res: Result<String, ApiError> = match f.action.as_deref() {
        Some("shortlist") => d::shortlist_for(&s, p, &id)
            .await
            .map(|_| format!("/demands/{demand_id}"))
            .map_err(Into::into),
        Some("decline") => d::decline_for(&s, p, &id)
            .await
            .map(|_| format!("/demands/{demand_id}"))
            .map_err(Into::into),
        Some("accept") => d::accept_for(&s, p, &id, &d::AcceptRequest::default())
            .await
            .map(|c| format!("/cooperations/{}", c.id))
            .map_err(Into::into),
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
        let (proposal, messages) = d::thread_for(s, p, id).await?;
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
    match d::post_message_for(&s, p, &id, &d::NewMessageRequest { body: f.body })
        .await
        .map_err(ApiError::from)
    {
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
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

async fn coop_page(s: &AppState, p: &Principal, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    match d::cooperation_view(s, p, id).await {
        Ok(view) => render(
            s,
            Some(p),
            csrf,
            "cooperation.html",
            e.map(|e| e.status).unwrap_or(StatusCode::OK),
            context! { errors => errors_ctx(e), ..Value::from_serialize(&view) },
        ),
        Err(err) => page_error(s, Some(p), err.into()),
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
        Ok::<_, ApiError>(d::record_payment_for(&s, p, &id, &r).await?)
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
    let coop_id = match d::payment_cooperation(&s, &id).await {
        Ok(x) => x,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let res: Result<(), ApiError> = match f.action.as_deref() {
        Some("confirm") => d::confirm_for(&s, p, &id).await.map(|_| ()).map_err(Into::into),
        Some("dispute") => d::dispute_for(&s, p, &id, &d::ReasonRequest { reason: f.reason.clone() })
            .await
            .map(|_| ())
            .map_err(Into::into),
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
                .await?;
                Ok(())
            }
            Some("complete") => {
                d::complete_for(&s, p, &id).await?;
                Ok(())
            }
            Some("rate") => {
                let score = f.score.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
                let r = d::RateRequest {
                    score,
                    comment: f.comment.clone().unwrap_or_default(),
                };
                d::rate_for(&s, p, &id, &r).await?;
                Ok(())
            }
            Some(a @ ("accept_amendment" | "reject_amendment")) => {
                let aid = f.amendment_id.clone().unwrap_or_default();
                d::decide_in_cooperation(&s, p, &id, &aid, a == "accept_amendment").await?;
                Ok(())
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
    let res = d::review_board(&s).await.map(|b| Value::from_serialize(&b));
    match res {
        Ok(ctx) => render(&s, Some(p), &csrf.0, "demand_review.html", StatusCode::OK, ctx),
        Err(e) => page_error(&s, Some(p), e.into()),
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
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

// ---------------------------------------------------------------- notifications

/// Notifications as rows a person reads: where each leads and its text in the page's language
/// (the notifications page and the workbench).
pub(crate) fn notification_rows(items: Vec<opchub_store::notifications::Notification>) -> Vec<Value> {
    let lang = i18n::current_lang();
    items
        .into_iter()
        .map(|n| {
            let href = match n.object_kind.as_str() {
                "cooperation" => format!("/cooperations/{}", n.object_id),
                "dispute" => format!("/cooperations/review#dispute-{}", n.object_id),
                "settlement" => "/my/settlements".to_string(),
                "application" => format!("/applications/{}", n.object_id),
                "bill" => format!("/my/bills/{}", n.object_id),
                _ => format!("/demands/{}", n.object_id),
            };
            let text = i18n::text(&lang, &format!("demand.notify.{}", n.kind));
            context! { n => n, href => href, text => text }
        })
        .collect()
}

pub async fn notifications(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let d::Notifications { unread, items } = d::notifications_for(&s, p).await?;
        let items = notification_rows(items);
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
    match d::mark_read_for(&s, p, id.as_deref()).await {
        Ok(_) => Redirect::to("/notifications").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}
