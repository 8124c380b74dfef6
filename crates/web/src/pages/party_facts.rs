//! Party facts pages (issue 17): the committee's and platform operator's list of companies with
//! their G2 registrations and M2.4 in-district, each with a form; the agency form on the users
//! page (F1); and the beneficiary's own bank-account page. Validation is
//! `opchub_app::party_facts`'s (the same functions the JSON API calls); handlers translate forms.

use super::{error_text, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::context;
use opchub_app::party_facts::{self as app, AgencyChange, BankAccountChange, RegistrationFacts};
use opchub_app::persons::{AddressChange, PersonChange};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

async fn registrations_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: bool) -> Response {
    match app::registrations(s).await {
        Ok(list) => render(
            s,
            Some(p),
            csrf,
            "party_registrations.html",
            status,
            context! { parties => list, error => error, done => done },
        ),
        Err(e) => page_error(s, Some(p), e.into()),
    }
}

/// Every community's company and district enterprise with its registrations, each with a form.
pub async fn registrations(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    registrations_page(&s, p, &csrf.0, StatusCode::OK, None, q.done.is_some()).await
}

/// The form's selects: `yes`, `no`, and (tax) `unknown`.
#[derive(Deserialize, Default)]
pub struct RegistrationForm {
    pub market_registered: Option<String>,
    pub tax_registered: Option<String>,
    pub in_district: Option<String>,
}

fn yes_no(v: Option<&str>) -> Result<Option<bool>, ()> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(_) => Err(()),
    }
}

pub async fn set_registration(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<RegistrationForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let parsed = (|| {
        let market = yes_no(f.market_registered.as_deref()).map_err(|_| "market_registered")?;
        let tax = match f.tax_registered.as_deref().map(str::trim) {
            Some("unknown") => Some(None),
            v => yes_no(v).map_err(|_| "tax_registered")?.map(Some),
        };
        let in_district = yes_no(f.in_district.as_deref()).map_err(|_| "in_district")?;
        Ok::<_, &str>(RegistrationFacts {
            market_registered: market,
            tax_registered: tax,
            in_district,
        })
    })();
    let r = match parsed {
        Ok(r) => r,
        Err(field) => {
            let e = ApiError::from(opchub_app::AppError::field(field, "not_an_option"));
            return registrations_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await;
        }
    };
    match app::set_registration_for(&s, p, &kind, &id, &r).await {
        Ok(_) => Redirect::to("/admin/parties?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            registrations_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct IndustryForm {
    pub industry_code: Option<String>,
}

/// F3: records a company's main industry (GB/T 4754-2017) from the list's per-row form; an
/// empty field clears it. Checked by the same use case as `PUT /api/v1/parties/{kind}/{id}/industry-code`.
pub async fn set_industry_code(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<IndustryForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let r = opchub_app::settlement::IndustryCodeChange {
        industry_code: f.industry_code.filter(|c| !c.trim().is_empty()),
    };
    match opchub_app::settlement::set_industry_code_for(&s, p, kind, id, &r).await {
        Ok(_) => Redirect::to("/admin/parties?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            registrations_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

/// F1: moves an agency user to another agency (the users page's per-row form).
pub async fn set_agency(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<AgencyChange>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match app::set_agency_for(&s, p, &id, &f).await {
        Ok(_) => Redirect::to("/admin/users").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let (message, fields) = super::field_messages(&e);
            super::users_page(&s, p, &csrf.0, e.status, context! { message => message, fields => fields }).await
        }
    }
}

async fn bank_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, error: Option<String>, done: bool) -> Response {
    let persons = match opchub_app::persons::my_persons(s, p).await {
        Ok(v) => v
            .into_iter()
            .map(|(kind, id, list)| (id, context! { roles => opchub_app::persons::roles_for(&kind), list => list }))
            .collect::<std::collections::BTreeMap<_, _>>(),
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let list = match app::my_bank_accounts(s, p).await {
        Ok(list) => list,
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let addresses = match opchub_app::persons::addresses_of(s, &list).await {
        Ok(v) => v
            .into_iter()
            .map(|a| (a.id, a.registered_address.unwrap_or_default()))
            .collect::<std::collections::BTreeMap<_, _>>(),
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    render(
        s,
        Some(p),
        csrf,
        "bank_accounts.html",
        status,
        context! { parties => list, persons => persons, addresses => addresses, error => error, done => done },
    )
}

/// Who is who (issue 18 item 1): the owner records a founder, beneficial owner or controlling
/// person of its party on the same page as where it is paid.
pub async fn add_person(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<PersonChange>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match opchub_app::persons::add_person_for(&s, p, &kind, &id, &f).await {
        Ok(_) => Redirect::to("/my/bank-account?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            bank_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

/// The owner records its party's registered address on the same page (issue 18 item 1).
pub async fn set_address(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<AddressChange>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match opchub_app::persons::set_address_for(&s, p, &kind, &id, &f).await {
        Ok(_) => Redirect::to("/my/bank-account?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            bank_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

pub async fn remove_person(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id, person_id)): Path<(String, String, String)>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match opchub_app::persons::remove_person_for(&s, p, &kind, &id, &person_id).await {
        Ok(_) => Redirect::to("/my/bank-account?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            bank_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

/// The caller's own OPC, communities or enterprise, each with where it is paid.
pub async fn bank_accounts(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    bank_page(&s, p, &csrf.0, StatusCode::OK, None, q.done.is_some()).await
}

pub async fn set_bank_account(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<BankAccountChange>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match app::set_bank_account_for(&s, p, &kind, &id, &f).await {
        Ok(_) => Redirect::to("/my/bank-account?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            bank_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}

/// The page's "clear" button: the owner removes a wrong account.
pub async fn clear_bank_account(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match app::clear_bank_account_for(&s, p, &kind, &id).await {
        Ok(_) => Redirect::to("/my/bank-account?done=1").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            bank_page(&s, p, &csrf.0, e.status, Some(error_text(&e)), false).await
        }
    }
}
