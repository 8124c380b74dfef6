//! Party facts API (issue 17): G2 registrations and M2.4's in-district of companies (the
//! committee or the platform operator), agency membership of agency users (the platform
//! operator, F1), and the bank account a beneficiary is paid to (its owner). The use cases are
//! `opchub_app::party_facts`'s; handlers extract, call and answer.

use super::ApiJson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use opchub_app::party_facts as app;
use opchub_app::persons as persons_app;
use opchub_store::party_facts::{PartyBankAccount, PartyRegistration};
use opchub_store::persons::{PartyAddress, PartyPerson};

pub use opchub_app::persons::{AddressChange, PersonChange};

pub use opchub_app::party_facts::{AgencyChange, AgencySet, BankAccountChange, RegistrationFacts};

#[utoipa::path(get, path = "/api/v1/parties/registrations", tag = "settlement",
    responses((status = 200, body = [PartyRegistration])))]
pub async fn registrations(State(s): State<AppState>) -> ApiResult<Json<Vec<PartyRegistration>>> {
    Ok(Json(app::registrations(&s).await?))
}

/// G2: records a community's company's or a district enterprise's market and tax registration,
/// and (enterprises) M2.4's in-district; only the fields given change; audited.
#[utoipa::path(put, path = "/api/v1/parties/{kind}/{id}/registration", tag = "settlement",
    params(("kind" = String, Path, description = "community or enterprise"), ("id" = String, Path)),
    request_body = RegistrationFacts,
    responses((status = 200, body = PartyRegistration), (status = 400, description = "no_change"), (status = 404), (status = 422)))]
pub async fn set_registration(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<RegistrationFacts>,
) -> ApiResult<Json<PartyRegistration>> {
    let p = caller.require()?;
    Ok(Json(app::set_registration_for(&s, p, &kind, &id, &r).await?))
}

/// F1: the district agency an agency user reviews for; audited with the agency before.
#[utoipa::path(put, path = "/api/v1/users/{id}/agency", tag = "accounts", params(("id" = String, Path)),
    request_body = AgencyChange,
    responses((status = 200, body = AgencySet), (status = 404), (status = 422, description = "unknown_agency / not_an_agency_user")))]
pub async fn set_agency(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AgencyChange>,
) -> ApiResult<Json<AgencySet>> {
    let p = caller.require()?;
    Ok(Json(app::set_agency_for(&s, p, &id, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/my/bank-accounts", tag = "settlement",
    responses((status = 200, body = [PartyBankAccount])))]
pub async fn my_bank_accounts(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<PartyBankAccount>>> {
    let p = caller.require()?;
    Ok(Json(app::my_bank_accounts(&s, p).await?))
}

/// Where a beneficiary is paid, set by its owner (the founder, the operator, the enterprise's
/// owner); finance reads it in the settlement exports. Audited.
#[utoipa::path(put, path = "/api/v1/parties/{kind}/{id}/bank-account", tag = "settlement",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    request_body = BankAccountChange,
    responses((status = 200, body = PartyBankAccount), (status = 403, description = "not_owner"), (status = 404), (status = 422)))]
pub async fn set_bank_account(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<BankAccountChange>,
) -> ApiResult<Json<PartyBankAccount>> {
    let p = caller.require()?;
    Ok(Json(app::set_bank_account_for(&s, p, &kind, &id, &r).await?))
}

/// Clears the bank account a beneficiary is paid to (its owner only): a wrong account is
/// removed; finance's payout export shows none until a new one is set. Audited.
#[utoipa::path(delete, path = "/api/v1/parties/{kind}/{id}/bank-account", tag = "party_facts",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    responses((status = 200, body = PartyBankAccount), (status = 403, description = "not_owner"), (status = 404),
        (status = 409, description = "bank_account_not_set"), (status = 422)))]
pub async fn clear_bank_account(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<PartyBankAccount>> {
    let p = caller.require()?;
    Ok(Json(app::clear_bank_account_for(&s, p, &kind, &id).await?))
}

/// Who is who (issue 18 item 1): the people recorded for a party — names and roles; the ID
/// numbers and phones are kept only as keyed hashes and never shown.
#[utoipa::path(get, path = "/api/v1/parties/{kind}/{id}/persons", tag = "integrity",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    responses((status = 200, body = [PartyPerson]), (status = 403, description = "not_owner"), (status = 404)))]
pub async fn persons(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<PartyPerson>>> {
    let p = caller.require()?;
    Ok(Json(persons_app::persons_for(&s, p, &kind, &id).await?))
}

/// Records a founder, beneficial owner or controlling person of a party (its owner, the
/// committee or the platform operator); the resident ID number is validated (GB 11643) and
/// kept only as a keyed hash. Parties sharing a person, a phone or a payout account are
/// related: their dealings are not subsidy basis. Audited.
#[utoipa::path(post, path = "/api/v1/parties/{kind}/{id}/persons", tag = "integrity",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    request_body = PersonChange,
    responses((status = 201, body = PartyPerson), (status = 403, description = "not_owner"), (status = 404),
        (status = 409, description = "person_already_recorded"), (status = 422)))]
pub async fn add_person(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<PersonChange>,
) -> ApiResult<(StatusCode, Json<PartyPerson>)> {
    let p = caller.require()?;
    Ok((StatusCode::CREATED, Json(persons_app::add_person_for(&s, p, &kind, &id, &r).await?)))
}

/// Removes a recorded person of a party. Audited.
#[utoipa::path(delete, path = "/api/v1/parties/{kind}/{id}/persons/{person_id}", tag = "integrity",
    params(("kind" = String, Path), ("id" = String, Path), ("person_id" = String, Path)),
    responses((status = 200, body = PartyPerson), (status = 403, description = "not_owner"), (status = 404)))]
pub async fn remove_person(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id, person_id)): Path<(String, String, String)>,
) -> ApiResult<Json<PartyPerson>> {
    let p = caller.require()?;
    Ok(Json(persons_app::remove_person_for(&s, p, &kind, &id, &person_id).await?))
}

/// A party's registered address (注册地址; OPCs and enterprises), for its owner, the committee,
/// the platform operator and the auditor.
#[utoipa::path(get, path = "/api/v1/parties/{kind}/{id}/address", tag = "integrity",
    params(("kind" = String, Path, description = "opc or enterprise"), ("id" = String, Path)),
    responses((status = 200, body = PartyAddress), (status = 403, description = "not_owner"), (status = 404), (status = 422)))]
pub async fn address(State(s): State<AppState>, caller: Caller, Path((kind, id)): Path<(String, String)>) -> ApiResult<Json<PartyAddress>> {
    let p = caller.require()?;
    Ok(Json(persons_app::address_for(&s, p, &kind, &id).await?))
}

/// Records a party's registered address (its owner, the committee or the platform operator).
/// Two parties registered at one address (compared without spaces, punctuation, full-width
/// forms or a leading 北京市) are related: their dealings are not subsidy basis. Audited.
#[utoipa::path(put, path = "/api/v1/parties/{kind}/{id}/address", tag = "integrity",
    params(("kind" = String, Path, description = "opc or enterprise"), ("id" = String, Path)),
    request_body = AddressChange,
    responses((status = 200, body = PartyAddress), (status = 403, description = "not_owner"), (status = 404), (status = 422)))]
pub async fn set_address(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<AddressChange>,
) -> ApiResult<Json<PartyAddress>> {
    let p = caller.require()?;
    Ok(Json(persons_app::set_address_for(&s, p, &kind, &id, &r).await?))
}
