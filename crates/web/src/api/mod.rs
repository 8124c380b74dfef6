//! JSON API under `/api/v1`. Each handler extracts, calls a use case of `opchub_app` (the
//! registry's in `opchub_app::registry`, the accounts' in `opchub_app::accounts`), maps the error.
//! Ownership rules live in `access.rs` beside this file; role rules in the route table.

pub use opchub_app::access;
pub mod applications;
// Monthly bills and their payments (issue 19)
pub mod bills;
pub mod datasets;
// Demand board (M2.4)
pub mod demands;
pub mod gateway;
pub mod integrity;
pub mod ledger;
pub mod party_facts;
pub mod policy;
pub mod records;
pub mod settlement;
pub mod skills;

// The registry's and the accounts' request and answer types live with their use cases; the
// OpenAPI document names them from here.
pub use opchub_app::accounts::{CreatedKey, Me, NewKeyRequest, NewUserRequest, PasswordChange, PasswordChanged, SetDisabled};
pub use opchub_app::registry::{
    AddWorkstations, AssignSpecialist, CommunityDetail, NewCommunityRequest, NewEnterpriseRequest, NewTicketRequest, RegistrationRequest,
    RegistrationResult, ReplyRequest, SetWorkstationStatus, TicketThread,
};

use crate::auth::Caller;
use crate::error::HttpError;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_app::{accounts, registry};
use opchub_domain::Zone;
use opchub_store::accounts::{ApiKey, User};
use opchub_store::registry::{Community, Counts, Enterprise, Opc, ThemePackage, Ticket, Workstation};
use opchub_store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A downloaded file: its content type and `Content-Disposition: attachment` with the name in
/// ASCII and, for Chinese names, RFC 6266's `filename*` (one helper for every export).
pub(crate) fn attachment(content_type: &str, file_name: &str, body: impl Into<axum::body::Body>) -> Response {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, opchub_settle::export::content_disposition(file_name)),
        ],
        body.into(),
    )
        .into_response()
}

/// JSON body extractor whose rejections use our error shape: malformed JSON → 400
/// `malformed_json`, wrong types or missing fields → 422 `invalid_body`, a field the request
/// type does not have → 422 `unknown_field` (naming it, nested ones as `items.0.name`), too
/// large → 413 `body_too_large`, wrong content type → 415 `json_required`. Unknown fields are
/// refused here, at the one door every JSON body of the API comes through, rather than on each
/// request type: a new type cannot forget it, and nested types are covered too. Fields kept
/// open on purpose are maps or `serde_json::Value` (nothing of them is ignored).
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::from(HttpError::JsonRequired));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from(HttpError::BodyTooLarge)
            } else {
                ApiError::bad_request("malformed_json")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON request body strictly: see [`ApiJson`].
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown: Vec<String> = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = {
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path.to_string()));
        let ignoring = serde_ignored::Deserializer::new(&mut de, &mut note);
        serde_path_to_error::deserialize(ignoring)
    };
    match parsed {
        Ok(v) => {
            de.end()
                .map_err(|e| ApiError::bad_request("malformed_json").with_detail(e.to_string()))?;
            if unknown.is_empty() {
                return Ok(v);
            }
            Err(unknown_fields(unknown))
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let detail = if path == "." {
                        inner.to_string()
                    } else {
                        format!("{path}: {inner}")
                    };
                    Err(ApiError::from(HttpError::InvalidBody).with_detail(detail))
                }
                _ => Err(ApiError::bad_request("malformed_json").with_detail(inner.to_string())),
            }
        }
    }
}

/// 422 `unknown_field`, each unknown field named (field code `unknown_field`).
pub fn unknown_fields(names: Vec<String>) -> ApiError {
    let mut e = ApiError::from(HttpError::UnknownField).with_detail(names.join(", "));
    for n in names {
        e.fields.insert(n, "unknown_field".into());
    }
    e
}

/// `items.?.0.name` (serde_ignored's path, `?` for an `Option`) → `items.0.name`.
fn field_path(p: &str) -> String {
    p.split('.').filter(|s| *s != "?" && !s.is_empty()).collect::<Vec<_>>().join(".")
}

/// Query-string extractor whose rejection is our error shape: 400 `invalid_query`, naming the
/// parameter that did not parse (field code `invalid_query_value`).
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a query string into `T`: see [`ApiQuery`].
pub fn parse_query<T: serde::de::DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let mut err = ApiError::bad_request("invalid_query");
        if path != "." && !path.is_empty() {
            err.fields.insert(path.clone(), "invalid_query_value".into());
            err.detail = Some(format!("{path}: {inner}"));
        } else {
            err.detail = Some(inner);
        }
        err
    })
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

// ---------------------------------------------------------------- public

#[utoipa::path(get, path = "/api/v1/stats", tag = "registry", responses((status = 200, body = Counts)))]
pub async fn stats(State(s): State<AppState>) -> ApiResult<Json<Counts>> {
    Ok(Json(registry::counts(&s).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct ZoneInfo {
    pub code: Zone,
    pub name_zh: String,
    pub name_en: String,
}

#[utoipa::path(get, path = "/api/v1/zones", tag = "registry", responses((status = 200, body = [ZoneInfo])))]
pub async fn zones() -> Json<Vec<ZoneInfo>> {
    Json(
        Zone::ALL
            .iter()
            .map(|z| ZoneInfo {
                code: *z,
                name_zh: crate::i18n::text("zh", &format!("zone.{}", z.as_str())),
                name_en: crate::i18n::text("en", &format!("zone.{}", z.as_str())),
            })
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/v1/theme-packages", tag = "registry", responses((status = 200, body = [ThemePackage])))]
pub async fn theme_packages(State(s): State<AppState>) -> ApiResult<Json<Vec<ThemePackage>>> {
    Ok(Json(registry::theme_packages(&s).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommunityQuery {
    /// Only communities in this G2 zone.
    pub zone: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/communities", tag = "registry", params(CommunityQuery), responses((status = 200, body = [Community]), (status = 422)))]
pub async fn communities(State(s): State<AppState>, ApiQuery(q): ApiQuery<CommunityQuery>) -> ApiResult<Json<Vec<Community>>> {
    Ok(Json(registry::communities(&s, q.zone.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/communities/{id}", tag = "registry", params(("id" = String, Path)), responses((status = 200, body = CommunityDetail), (status = 404)))]
pub async fn community(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<CommunityDetail>> {
    Ok(Json(registry::community(&s, caller.0.as_ref(), &id).await?))
}

#[utoipa::path(post, path = "/api/v1/registrations", tag = "registry", request_body = RegistrationRequest,
    responses((status = 201, body = RegistrationResult), (status = 400), (status = 409), (status = 413), (status = 422)))]
pub async fn create_registration(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<RegistrationRequest>,
) -> ApiResult<Response> {
    let (opc, user) = registry::register(&s, caller.0.as_ref(), &r).await?;
    Ok(created(RegistrationResult { opc, user }))
}

// ---------------------------------------------------------------- me

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", responses((status = 200, body = Me), (status = 401)))]
pub async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let p = caller.require()?;
    Ok(Json(accounts::me(&s, p).await?))
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "accounts", responses((status = 200, body = [ApiKey])))]
pub async fn list_keys(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiKey>>> {
    let p = caller.require()?;
    Ok(Json(accounts::keys_of(&s, p).await?))
}

#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "accounts", request_body = NewKeyRequest, responses((status = 201, body = CreatedKey), (status = 422)))]
pub async fn create_key(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewKeyRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(accounts::create_key(&s, p, &r).await?))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "accounts", params(("id" = String, Path)), responses((status = 200, body = ApiKey), (status = 404), (status = 409)))]
pub async fn revoke_key(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ApiKey>> {
    let p = caller.require()?;
    Ok(Json(accounts::revoke_key(&s, p, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/account/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 200, body = PasswordChanged), (status = 401), (status = 422), (status = 429)))]
pub async fn change_password(
    State(s): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    ApiJson(r): ApiJson<PasswordChange>,
) -> ApiResult<Json<PasswordChanged>> {
    let p = caller.require()?;
    let session = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE).filter(|_| matches!(p.via, crate::auth::Via::Session { .. }));
    let client = peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a.ip());
    Ok(Json(accounts::change_password(&s, p, &r, session, client).await?))
}

// ---------------------------------------------------------------- OPCs

#[utoipa::path(get, path = "/api/v1/my/opc", tag = "registry", responses((status = 200, body = Opc), (status = 404)))]
pub async fn my_opc(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Opc>> {
    let p = caller.require()?;
    Ok(Json(registry::my_opc(&s, p).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpcQuery {
    pub zone: Option<String>,
    pub community_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/opcs", tag = "registry", params(OpcQuery), responses((status = 200, body = [Opc])))]
pub async fn opcs(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<OpcQuery>) -> ApiResult<Json<Vec<Opc>>> {
    let p = caller.require()?;
    Ok(Json(registry::opcs(&s, p, q.zone.as_deref(), q.community_id.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/opcs/{id}", tag = "registry", params(("id" = String, Path)), responses((status = 200, body = Opc), (status = 404)))]
pub async fn opc(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Opc>> {
    let p = caller.require()?;
    Ok(Json(access::opc_for(&s, p, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/opcs/{id}/specialist", tag = "registry", params(("id" = String, Path)), request_body = AssignSpecialist,
    responses((status = 200, body = Opc), (status = 404), (status = 422)))]
pub async fn assign_specialist(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AssignSpecialist>,
) -> ApiResult<Json<Opc>> {
    let p = caller.require()?;
    Ok(Json(registry::assign_specialist(&s, p, &id, &r.specialist_user_id).await?))
}

// ---------------------------------------------------------------- communities (M1)

#[utoipa::path(post, path = "/api/v1/communities", tag = "registry", request_body = NewCommunityRequest, responses((status = 201, body = Community), (status = 422)))]
pub async fn create_community(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewCommunityRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(registry::create_community(&s, p, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/communities/{id}/workstations", tag = "registry", params(("id" = String, Path)), request_body = AddWorkstations,
    responses((status = 200, body = Community), (status = 404), (status = 422)))]
pub async fn add_workstations(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AddWorkstations>,
) -> ApiResult<Json<Community>> {
    let p = caller.require()?;
    Ok(Json(registry::add_workstations(&s, p, &id, r.count).await?))
}

#[utoipa::path(put, path = "/api/v1/workstations/{id}", tag = "registry", params(("id" = String, Path)), request_body = SetWorkstationStatus,
    responses((status = 200, body = Workstation), (status = 404), (status = 409), (status = 422)))]
pub async fn set_workstation(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SetWorkstationStatus>,
) -> ApiResult<Json<Workstation>> {
    let p = caller.require()?;
    Ok(Json(registry::set_workstation(&s, p, &id, &r.status).await?))
}

// ---------------------------------------------------------------- enterprises

#[utoipa::path(get, path = "/api/v1/enterprises", tag = "registry", responses((status = 200, body = [Enterprise])))]
pub async fn enterprises(State(s): State<AppState>) -> ApiResult<Json<Vec<Enterprise>>> {
    Ok(Json(registry::enterprises(&s).await?))
}

#[utoipa::path(post, path = "/api/v1/enterprises", tag = "registry", request_body = NewEnterpriseRequest,
    responses((status = 201, body = Enterprise), (status = 409), (status = 422)))]
pub async fn create_enterprise(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewEnterpriseRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(registry::create_enterprise(&s, p, &r).await?))
}

// ---------------------------------------------------------------- users (admin)

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    pub role: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", params(UserQuery), responses((status = 200, body = [User])))]
pub async fn users(State(s): State<AppState>, ApiQuery(q): ApiQuery<UserQuery>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(accounts::users(&s, q.role.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUserRequest, responses((status = 201, body = User), (status = 409), (status = 422)))]
pub async fn create_user(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewUserRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(accounts::create_user(&s, p, &r).await?))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/disabled", tag = "accounts", params(("id" = String, Path)), request_body = SetDisabled, responses((status = 200, body = User), (status = 404)))]
pub async fn set_user_disabled(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SetDisabled>,
) -> ApiResult<Json<User>> {
    let p = caller.require()?;
    Ok(Json(accounts::set_user_disabled(&s, p, &id, r.disabled).await?))
}

// ---------------------------------------------------------------- tickets (M4.3)

#[utoipa::path(get, path = "/api/v1/tickets", tag = "service", responses((status = 200, body = [Ticket])))]
pub async fn tickets(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Ticket>>> {
    let p = caller.require()?;
    Ok(Json(access::visible_tickets(&s, p).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "service", request_body = NewTicketRequest, responses((status = 201, body = Ticket), (status = 409), (status = 422)))]
pub async fn create_ticket(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewTicketRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(registry::open_ticket(&s, p, &r).await?))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "service", params(("id" = String, Path)), responses((status = 200, body = TicketThread), (status = 404)))]
pub async fn ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TicketThread>> {
    let p = caller.require()?;
    Ok(Json(registry::ticket(&s, p, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/replies", tag = "service", params(("id" = String, Path)), request_body = ReplyRequest,
    responses((status = 200, body = Ticket), (status = 404), (status = 409), (status = 422)))]
pub async fn reply_ticket(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReplyRequest>,
) -> ApiResult<Json<Ticket>> {
    let p = caller.require()?;
    Ok(Json(registry::reply(&s, p, &id, r.body.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "service", params(("id" = String, Path)), responses((status = 200, body = Ticket), (status = 404), (status = 409)))]
pub async fn close_ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Ticket>> {
    let p = caller.require()?;
    Ok(Json(registry::close_ticket(&s, p, &id).await?))
}

// ---------------------------------------------------------------- audit

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor_user_id: Option<String>,
    pub action: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub limit: Option<i64>,
}

impl AuditQuery {
    pub fn filter(&self) -> AuditFilter {
        let nz = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        AuditFilter {
            actor_user_id: nz(&self.actor_user_id),
            action: nz(&self.action),
            object_kind: nz(&self.object_kind),
            object_id: nz(&self.object_id),
            since_ms: None,
            until_ms: None,
            limit: self.limit,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditEntry])))]
pub async fn audit(State(s): State<AppState>, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(accounts::audit_entries(&s, &q.filter()).await?))
}
