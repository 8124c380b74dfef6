//! Monthly bills pages (issue 19): `/my/bills` lists the caller's bills as payer and payee
//! (the committee and the auditor: every bill) with filters, `/my/bills/{id}` shows one bill
//! with its lines, payments and disputes and the forms to record a payment (payer) or a
//! receipt (payee), confirm or dispute, and for the committee to decide a dispute. The use
//! cases are `opchub_app::bills`, the same the JSON API calls; a refused form comes back on the
//! same page with the messages.

use super::{fen_of, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::upload;
use crate::{i18n, AppState};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::bills::{self as b, BillQuery, PaymentInput, ReasonRequest, ResolveRequest};
use opchub_app::demands::FileUpload;
use serde::Deserialize;
use std::collections::BTreeMap;

fn errors_ctx(e: Option<&ApiError>) -> Value {
    match e {
        None => Value::from(()),
        Some(e) => {
            let (message, fields) = e.messages(&i18n::current_lang());
            context! { message => message, code => e.code.clone(), fields => fields }
        }
    }
}

fn need(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.0.as_ref().ok_or_else(ApiError::unauthorized)
}

/// Readable names of the parties on the bills (OPC, community or account names).
async fn names_of<'a>(s: &AppState, parties: impl Iterator<Item = &'a String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for p in parties {
        if !names.contains_key(p) {
            names.insert(p.clone(), opchub_app::ledger::party_name(s, p).await);
        }
    }
    names
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub month: Option<String>,
    pub status: Option<String>,
    pub side: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let query = BillQuery {
        month: q.month.clone(),
        status: q.status.clone(),
        side: q.side.clone(),
    };
    let (bills, err) = match b::list_for(&s, p, &query).await {
        Ok(v) => (v, None),
        Err(e) => (vec![], Some(ApiError::from(e))),
    };
    // What the caller is owed as payee, aged (issue 19 item 5); none for a payer only.
    let receivables = b::receivables_for(&s, p).await.unwrap_or_default();
    let names = names_of(
        &s,
        bills
            .iter()
            .flat_map(|x| [&x.payer, &x.payee])
            .chain(receivables.iter().map(|r| &r.payee)),
    )
    .await;
    render(
        &s,
        Some(p),
        &csrf.0,
        "bills.html",
        err.as_ref().map(|e| e.status).unwrap_or(StatusCode::OK),
        context! {
            bills => bills, names => names, statuses => b::STATUSES, receivables => receivables,
            q => context! { month => q.month, status => q.status },
            errors => errors_ctx(err.as_ref()),
        },
    )
}

async fn bill_page(s: &AppState, p: &Principal, csrf: &str, id: &str, e: Option<&ApiError>) -> Response {
    match b::bill_for(s, p, id).await {
        Ok(d) => {
            let names = names_of(s, [&d.bill.payer, &d.bill.payee].into_iter()).await;
            render(
                s,
                Some(p),
                csrf,
                "bill.html",
                e.map(|e| e.status).unwrap_or(StatusCode::OK),
                context! {
                    d => d, names => names, errors => errors_ctx(e),
                    today => opchub_domain::time::beijing_today().to_string(),
                },
            )
        }
        Err(err) => page_error(s, Some(p), err.into()),
    }
}

pub async fn show(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    bill_page(&s, p, &csrf.0, &id, None).await
}

#[derive(Deserialize, Default)]
pub struct PaymentForm {
    /// Yuan.
    pub amount: Option<String>,
    pub paid_on: Option<String>,
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// The payment form: URL-encoded, or `multipart/form-data` with an optional receipt file in
/// the `receipt` input (issue 19 item 3; an input left empty is ignored).
async fn read_payment_form(req: Request) -> Result<(PaymentForm, Option<FileUpload>), ApiError> {
    use base64::Engine;
    let boundary = upload::boundary(req.headers());
    let bytes = axum::body::to_bytes(req.into_body(), upload::PAGE_UPLOAD_BODY)
        .await
        .map_err(|_| ApiError::from(crate::error::HttpError::BodyTooLarge))?;
    let Some(boundary) = boundary else {
        let f = serde_urlencoded::from_bytes::<PaymentForm>(&bytes).map_err(|_| ApiError::bad_request("invalid_body"))?;
        return Ok((f, None));
    };
    let parts = upload::parts(bytes, &boundary)
        .await
        .ok_or_else(|| ApiError::bad_request("invalid_body"))?;
    let (mut f, mut receipt) = (PaymentForm::default(), None);
    for part in parts {
        let slot = match part.name.as_str() {
            "receipt" => {
                let name = part.file_name.as_deref().unwrap_or_default();
                let name = name.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
                if !name.is_empty() || !part.bytes.is_empty() {
                    receipt = Some(FileUpload {
                        name,
                        content_type: part.content_type.clone().unwrap_or_default(),
                        data_base64: base64::engine::general_purpose::STANDARD.encode(&part.bytes),
                    });
                }
                continue;
            }
            "amount" => &mut f.amount,
            "paid_on" => &mut f.paid_on,
            "reference" => &mut f.reference,
            "note" => &mut f.note,
            _ => continue,
        };
        *slot = Some(part.text());
    }
    Ok((f, receipt))
}

/// The payer records paying; the payee records a receipt (the caller's side decides).
pub async fn record(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let (f, receipt) = read_payment_form(req).await?;
        let d = b::bill_for(&s, p, &id).await?;
        let input = PaymentInput {
            amount_fen: fen_of("amount_fen", f.amount.as_deref())?,
            paid_on: f.paid_on.clone(),
            reference: f.reference.clone(),
            note: f.note.clone(),
            receipt,
        };
        match d.my_side.as_deref() {
            Some("payee") => b::record_receipt_for(&s, p, &id, &input).await?,
            _ => b::record_payment_for(&s, p, &id, &input).await?,
        };
        Ok::<_, ApiError>(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/my/bills/{id}")).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page_error(&s, Some(p), e),
        Err(e) => bill_page(&s, p, &csrf.0, &id, Some(&e)).await,
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
    let bill_id = match b::payment_bill(&s, &id).await {
        Ok(x) => x,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let res: Result<(), ApiError> = match f.action.as_deref() {
        Some("confirm") => b::confirm_for(&s, p, &id).await.map(|_| ()).map_err(Into::into),
        Some("dispute") => b::dispute_for(&s, p, &id, &ReasonRequest { reason: f.reason.clone() })
            .await
            .map(|_| ())
            .map_err(Into::into),
        _ => Err(ApiError::field("action", "unknown_status")),
    };
    match res {
        Ok(()) => Redirect::to(&format!("/my/bills/{bill_id}")).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page_error(&s, Some(p), e),
        Err(e) => bill_page(&s, p, &csrf.0, &bill_id, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct ResolveForm {
    pub resolution: Option<String>,
    pub note: Option<String>,
}

pub async fn resolve(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<ResolveForm>,
) -> Response {
    let Ok(p) = need(&caller) else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let bill_id = match b::dispute_bill(&s, &id).await {
        Ok(x) => x,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let r = ResolveRequest {
        resolution: f.resolution.clone(),
        note: f.note.clone(),
    };
    match b::resolve_for(&s, p, &id, &r).await {
        Ok(_) => Redirect::to(&format!("/my/bills/{bill_id}")).into_response(),
        Err(e) => bill_page(&s, p, &csrf.0, &bill_id, Some(&e.into())).await,
    }
}
