//! JSON API under `/api/v1`. Each handler extracts, calls the store, maps the error.
//! Ownership rules live in `access.rs` beside this file; role rules in the route table.

pub use opchub_app::access;
pub mod applications;
pub mod datasets;
// Demand board (M2.4)
pub mod demands;
pub mod gateway;
pub mod ledger;
pub mod policy;
pub mod records;
pub mod settlement;
pub mod skills;

use crate::auth::{self, Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opchub_domain::input::Checker;
use opchub_domain::{Role, WorkstationStatus, Zone};
use opchub_store::accounts::{ApiKey, NewApiKey, NewUser, User};
use opchub_store::registry::{
    Community, Counts, Enterprise, Founder, NewCommunity, Opc, RegisterOpc, ThemePackage, Ticket, TicketMessage, Workstation,
};
use opchub_store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// JSON body extractor whose rejections use our error shape: malformed JSON → 400,
/// wrong types or missing fields → 422, too large → 413, wrong content type → 415.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request("malformed_json").with_detail(e.body_text())),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").with_detail(e.body_text()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required")),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")),
            Err(_) => Err(ApiError::bad_request("malformed_json")),
        }
    }
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

// ---------------------------------------------------------------- public

#[utoipa::path(get, path = "/api/v1/stats", tag = "registry", responses((status = 200, body = Counts)))]
pub async fn stats(State(s): State<AppState>) -> ApiResult<Json<Counts>> {
    Ok(Json(s.store.counts().await?))
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
    Ok(Json(s.store.theme_packages().await?))
}

#[derive(Deserialize, IntoParams)]
pub struct CommunityQuery {
    /// Only communities in this G2 zone.
    pub zone: Option<String>,
}

fn parse_zone_filter(z: Option<&str>) -> ApiResult<Option<Zone>> {
    match z.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| ApiError::field("zone", "unknown_zone")),
    }
}

#[utoipa::path(get, path = "/api/v1/communities", tag = "registry", params(CommunityQuery), responses((status = 200, body = [Community]), (status = 422)))]
pub async fn communities(State(s): State<AppState>, Query(q): Query<CommunityQuery>) -> ApiResult<Json<Vec<Community>>> {
    let zone = parse_zone_filter(q.zone.as_deref())?;
    Ok(Json(s.store.communities(zone, None).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct CommunityDetail {
    pub community: Community,
    /// Which OPC occupies a workstation is shown only to the community's operator and to staff.
    pub workstations: Vec<Workstation>,
}

#[utoipa::path(get, path = "/api/v1/communities/{id}", tag = "registry", params(("id" = String, Path)), responses((status = 200, body = CommunityDetail), (status = 404)))]
pub async fn community(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<CommunityDetail>> {
    let community = s.store.community(&id).await?;
    let mut workstations = s.store.workstations(&id).await?;
    if !access::sees_occupants(caller.0.as_ref(), &community) {
        for w in &mut workstations {
            w.opc_id = None;
        }
    }
    Ok(Json(CommunityDetail { community, workstations }))
}

/// The registration wizard's input (M4.1, M4.2, G2).
#[derive(Deserialize, ToSchema, Default)]
pub struct RegistrationRequest {
    /// New account's login name; omit when an OPC-founder account is already signed in.
    pub username: Option<String>,
    pub password: Option<String>,
    pub founder_name: Option<String>,
    pub company_name: Option<String>,
    /// 统一社会信用代码; omit and set `not_yet_registered` to open a licence ticket instead.
    pub uscc: Option<String>,
    #[serde(default)]
    pub not_yet_registered: bool,
    #[serde(default)]
    pub tax_registered: bool,
    /// Main industry, GB/T 4754-2017 (e.g. `I6513`); optional. F3's restricted-industry
    /// catalogue is matched by it.
    pub industry_code: Option<String>,
    pub zone: Option<String>,
    pub theme_package: Option<String>,
    pub workstation_id: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RegistrationResult {
    pub opc: Opc,
    pub user: User,
}

/// Validates and registers; used by the API and by the wizard page.
pub async fn register(s: &AppState, caller: Option<&Principal>, r: &RegistrationRequest) -> ApiResult<(Opc, User)> {
    let mut c = Checker::new();
    let existing = caller.map(|p| p.user.clone());
    if let Some(u) = &existing {
        if u.role != Role::OpcFounder {
            return Err(ApiError::forbidden());
        }
    }
    let (username, password) = if existing.is_none() {
        (
            c.username("username", r.username.as_deref()),
            c.password("password", r.password.as_deref()),
        )
    } else {
        (String::new(), String::new())
    };
    let founder_name = c.text("founder_name", r.founder_name.as_deref(), 2, 50);
    let company_name = c.text("company_name", r.company_name.as_deref(), 4, 100);
    let uscc = if r.not_yet_registered && r.uscc.as_deref().map(str::trim).unwrap_or("").is_empty() {
        None
    } else {
        c.uscc("uscc", r.uscc.as_deref())
    };
    let zone = c.zone("zone", r.zone.as_deref());
    let industry_code = c.industry_code("industry_code", r.industry_code.as_deref());
    let theme = c.text("theme_package", r.theme_package.as_deref(), 1, 64);
    let ws = c.text("workstation_id", r.workstation_id.as_deref(), 1, 64);
    let (Some(zone), true) = (zone, c.ok()) else {
        return Err(ApiError::checked(c));
    };
    let password_hash = if existing.is_none() {
        auth::hash_password(&password)?
    } else {
        String::new()
    };
    let actor = caller.map(|p| p.actor()).unwrap_or_else(opchub_store::Actor::system);
    let founder = match &existing {
        Some(u) => Founder::Existing(u),
        None => Founder::New(NewUser {
            username: &username,
            display_name: &founder_name,
            role: Role::OpcFounder,
            password_hash: &password_hash,
        }),
    };
    let reg = RegisterOpc {
        founder,
        name: &company_name,
        uscc: uscc.as_ref(),
        founder_name: &founder_name,
        zone,
        theme_package: &theme,
        workstation_id: &ws,
        tax_registered: r.tax_registered,
        industry_code: industry_code.as_ref(),
    };
    let res = s.store.register_opc(&actor, reg).await;
    // The founder's keys now bill the new OPC.
    s.keys.forget_all();
    if let Err(opchub_store::StoreError::Conflict(code)) = &res {
        let field = match *code {
            "uscc_taken" => "uscc",
            "username_taken" => "username",
            "workstation_taken" => "workstation_id",
            _ => "",
        };
        let mut e = ApiError::conflict(code);
        if !field.is_empty() {
            e.fields.insert(field.into(), (*code).into());
        }
        return Err(e);
    }
    Ok(res?)
}

#[utoipa::path(post, path = "/api/v1/registrations", tag = "registry", request_body = RegistrationRequest,
    responses((status = 201, body = RegistrationResult), (status = 400), (status = 409), (status = 413), (status = 422)))]
pub async fn create_registration(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<RegistrationRequest>,
) -> ApiResult<Response> {
    let (opc, user) = register(&s, caller.0.as_ref(), &r).await?;
    Ok(created(RegistrationResult { opc, user }))
}

// ---------------------------------------------------------------- me

#[derive(serde::Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub opc: Option<Opc>,
    pub enterprise: Option<Enterprise>,
    pub communities: Vec<Community>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", responses((status = 200, body = Me), (status = 401)))]
pub async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let p = caller.require()?;
    let opc = s.store.opc_of_founder(&p.user.id).await?;
    let enterprise = s.store.enterprise_of_owner(&p.user.id).await?;
    let communities = if p.role() == Role::CommunityOperator {
        s.store.communities(None, Some(&p.user.id)).await?
    } else {
        vec![]
    };
    Ok(Json(Me {
        user: p.user.clone(),
        opc,
        enterprise,
        communities,
    }))
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "accounts", responses((status = 200, body = [ApiKey])))]
pub async fn list_keys(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiKey>>> {
    let p = caller.require()?;
    Ok(Json(s.store.api_keys_of(&p.user.id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewKeyRequest {
    pub name: Option<String>,
    /// `read` and/or `write`; default `["read", "write"]`.
    pub scopes: Option<Vec<String>>,
    /// Days until the key expires (1–730); omit for no expiry.
    pub expires_in_days: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// The secret, shown this once. Only its SHA-256 is stored.
    pub secret: String,
}

pub async fn create_key_for(s: &AppState, p: &Principal, r: &NewKeyRequest) -> ApiResult<CreatedKey> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 1, 64);
    let scopes = r.scopes.clone().unwrap_or_else(|| vec!["read".into(), "write".into()]);
    if scopes.is_empty() || scopes.iter().any(|sc| !auth::SCOPES.contains(&sc.as_str())) {
        c.errors.insert("scopes".into(), "unknown_scope".into());
    }
    if let Some(d) = r.expires_in_days {
        if !(1..=730).contains(&d) {
            c.errors.insert("expires_in_days".into(), "out_of_range".into());
        }
    }
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    let (secret, prefix, hash) = auth::new_api_key();
    let expires_at = r.expires_in_days.map(|d| opchub_store::now_ms() + d * 86_400_000);
    let key = s
        .store
        .create_api_key(
            &p.actor(),
            NewApiKey {
                user_id: &p.user.id,
                name: &name,
                prefix: &prefix,
                key_hash: &hash,
                scopes: &scopes,
                expires_at,
            },
        )
        .await?;
    Ok(CreatedKey { key, secret })
}

#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "accounts", request_body = NewKeyRequest, responses((status = 201, body = CreatedKey), (status = 422)))]
pub async fn create_key(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewKeyRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(create_key_for(&s, p, &r).await?))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "accounts", params(("id" = String, Path)), responses((status = 200, body = ApiKey), (status = 404), (status = 409)))]
pub async fn revoke_key(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ApiKey>> {
    let p = caller.require()?;
    let key = s.store.revoke_api_key(&p.actor(), &p.user.id, &id).await?;
    s.keys.forget_all();
    Ok(Json(key))
}

// ---------------------------------------------------------------- OPCs

#[utoipa::path(get, path = "/api/v1/my/opc", tag = "registry", responses((status = 200, body = Opc), (status = 404)))]
pub async fn my_opc(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Opc>> {
    let p = caller.require()?;
    s.store.opc_of_founder(&p.user.id).await?.map(Json).ok_or_else(ApiError::not_found)
}

#[derive(Deserialize, IntoParams)]
pub struct OpcQuery {
    pub zone: Option<String>,
    pub community_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/opcs", tag = "registry", params(OpcQuery), responses((status = 200, body = [Opc])))]
pub async fn opcs(State(s): State<AppState>, caller: Caller, Query(q): Query<OpcQuery>) -> ApiResult<Json<Vec<Opc>>> {
    let p = caller.require()?;
    let zone = parse_zone_filter(q.zone.as_deref())?;
    Ok(Json(access::visible_opcs(&s, p, zone, q.community_id.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/opcs/{id}", tag = "registry", params(("id" = String, Path)), responses((status = 200, body = Opc), (status = 404)))]
pub async fn opc(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Opc>> {
    let p = caller.require()?;
    Ok(Json(access::opc_for(&s, p, &id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct AssignSpecialist {
    pub specialist_user_id: String,
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
    Ok(Json(s.store.assign_specialist(&p.actor(), &id, &r.specialist_user_id).await?))
}

// ---------------------------------------------------------------- communities (M1)

#[derive(Deserialize, ToSchema)]
pub struct NewCommunityRequest {
    pub name: Option<String>,
    pub company_name: Option<String>,
    pub company_uscc: Option<String>,
    pub zone: Option<String>,
    pub address: Option<String>,
    /// Number of workstations to create (1–2000).
    pub workstations: Option<i64>,
    /// The community operator who runs it; a community operator creating their own omits it.
    pub operator_user_id: Option<String>,
}

pub async fn create_community_for(s: &AppState, p: &Principal, r: &NewCommunityRequest) -> ApiResult<Community> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 2, 100);
    let company = c.text("company_name", r.company_name.as_deref(), 4, 100);
    let uscc = c.uscc("company_uscc", r.company_uscc.as_deref());
    let zone = c.zone("zone", r.zone.as_deref());
    let address = c.text("address", r.address.as_deref(), 4, 200);
    let n = r.workstations.unwrap_or(0);
    if !(1..=2000).contains(&n) {
        c.errors.insert("workstations".into(), "out_of_range".into());
    }
    let operator = match p.role() {
        Role::CommunityOperator => p.user.id.clone(),
        _ => c.text("operator_user_id", r.operator_user_id.as_deref(), 1, 64),
    };
    let (Some(uscc), Some(zone), true) = (uscc, zone, c.ok()) else {
        return Err(ApiError::checked(c));
    };
    Ok(s.store
        .create_community(
            &p.actor(),
            NewCommunity {
                name: &name,
                company_name: &company,
                company_uscc: &uscc,
                zone,
                address: &address,
                operator_user_id: &operator,
                workstations: n as u32,
            },
        )
        .await?)
}

#[utoipa::path(post, path = "/api/v1/communities", tag = "registry", request_body = NewCommunityRequest, responses((status = 201, body = Community), (status = 422)))]
pub async fn create_community(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewCommunityRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(create_community_for(&s, p, &r).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct AddWorkstations {
    /// 1–500
    pub count: i64,
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
    access::manage_community(&s, p, &id).await?;
    if !(1..=500).contains(&r.count) {
        return Err(ApiError::field("count", "out_of_range"));
    }
    Ok(Json(s.store.add_workstations(&p.actor(), &id, r.count as u32).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct SetWorkstationStatus {
    /// `free` or `reserved`
    pub status: String,
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
    let ws = s.store.workstation(&id).await?;
    access::manage_community(&s, p, &ws.community_id).await?;
    let status: WorkstationStatus = r.status.parse().map_err(|_| ApiError::field("status", "unknown_status"))?;
    Ok(Json(s.store.set_workstation_status(&p.actor(), &id, status).await?))
}

// ---------------------------------------------------------------- enterprises

#[utoipa::path(get, path = "/api/v1/enterprises", tag = "registry", responses((status = 200, body = [Enterprise])))]
pub async fn enterprises(State(s): State<AppState>) -> ApiResult<Json<Vec<Enterprise>>> {
    Ok(Json(s.store.enterprises().await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewEnterpriseRequest {
    pub name: Option<String>,
    pub uscc: Option<String>,
    pub zone: Option<String>,
    /// The owner's new account.
    pub username: Option<String>,
    pub password: Option<String>,
    pub contact_name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/enterprises", tag = "registry", request_body = NewEnterpriseRequest,
    responses((status = 201, body = Enterprise), (status = 409), (status = 422)))]
pub async fn create_enterprise(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewEnterpriseRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 4, 100);
    let uscc = c.uscc("uscc", r.uscc.as_deref());
    let zone = c.zone("zone", r.zone.as_deref());
    let username = c.username("username", r.username.as_deref());
    let password = c.password("password", r.password.as_deref());
    let contact = c.text("contact_name", r.contact_name.as_deref(), 2, 50);
    let (Some(uscc), Some(zone), true) = (uscc, zone, c.ok()) else {
        return Err(ApiError::checked(c));
    };
    let hash = auth::hash_password(&password)?;
    let owner = NewUser {
        username: &username,
        display_name: &contact,
        role: Role::Enterprise,
        password_hash: &hash,
    };
    let (e, _) = s.store.create_enterprise(&p.actor(), owner, &name, &uscc, zone).await?;
    Ok(created(e))
}

// ---------------------------------------------------------------- users (admin)

#[derive(Deserialize, IntoParams)]
pub struct UserQuery {
    pub role: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", params(UserQuery), responses((status = 200, body = [User])))]
pub async fn users(State(s): State<AppState>, Query(q): Query<UserQuery>) -> ApiResult<Json<Vec<User>>> {
    let role = match q.role.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(r.parse::<Role>().map_err(|_| ApiError::field("role", "unknown_role"))?),
    };
    Ok(Json(s.store.users(role).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewUserRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub role: Option<String>,
}

pub async fn create_user_for(s: &AppState, p: &Principal, r: &NewUserRequest) -> ApiResult<User> {
    let mut c = Checker::new();
    let username = c.username("username", r.username.as_deref());
    let password = c.password("password", r.password.as_deref());
    let display = c.text("display_name", r.display_name.as_deref(), 1, 50);
    let role = r.role.as_deref().unwrap_or("").parse::<Role>().ok();
    if role.is_none() {
        c.errors.insert("role".into(), "unknown_role".into());
    }
    let (Some(role), true) = (role, c.ok()) else {
        return Err(ApiError::checked(c));
    };
    let hash = auth::hash_password(&password)?;
    let res = s
        .store
        .create_user(
            &p.actor(),
            NewUser {
                username: &username,
                display_name: &display,
                role,
                password_hash: &hash,
            },
        )
        .await;
    match res {
        Err(opchub_store::StoreError::Conflict(code)) => {
            let mut e = ApiError::conflict(code);
            e.fields.insert("username".into(), code.into());
            Err(e)
        }
        other => Ok(other?),
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUserRequest, responses((status = 201, body = User), (status = 409), (status = 422)))]
pub async fn create_user(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewUserRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(create_user_for(&s, p, &r).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct SetDisabled {
    pub disabled: bool,
}

#[utoipa::path(put, path = "/api/v1/users/{id}/disabled", tag = "accounts", params(("id" = String, Path)), request_body = SetDisabled, responses((status = 200, body = User), (status = 404)))]
pub async fn set_user_disabled(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SetDisabled>,
) -> ApiResult<Json<User>> {
    let p = caller.require()?;
    if p.user.id == id {
        return Err(ApiError::conflict("cannot_disable_self"));
    }
    let user = s.store.set_user_disabled(&p.actor(), &id, r.disabled).await?;
    s.keys.forget_all();
    Ok(Json(user))
}

// ---------------------------------------------------------------- tickets (M4.3)

#[utoipa::path(get, path = "/api/v1/tickets", tag = "service", responses((status = 200, body = [Ticket])))]
pub async fn tickets(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Ticket>>> {
    let p = caller.require()?;
    Ok(Json(access::visible_tickets(&s, p).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewTicketRequest {
    pub subject: Option<String>,
    pub body: Option<String>,
}

pub async fn open_ticket(s: &AppState, p: &Principal, r: &NewTicketRequest) -> ApiResult<Ticket> {
    let opc = s
        .store
        .opc_of_founder(&p.user.id)
        .await?
        .ok_or_else(|| ApiError::conflict("no_company"))?;
    let mut c = Checker::new();
    let subject = c.text("subject", r.subject.as_deref(), 2, 120);
    let body = c.text("body", r.body.as_deref(), 1, 4000);
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store
        .create_ticket(&p.actor(), &opc.id, &p.user.id, "question", &subject, &body)
        .await?)
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "service", request_body = NewTicketRequest, responses((status = 201, body = Ticket), (status = 409), (status = 422)))]
pub async fn create_ticket(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<NewTicketRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    Ok(created(open_ticket(&s, p, &r).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct TicketThread {
    pub ticket: Ticket,
    pub messages: Vec<TicketMessage>,
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "service", params(("id" = String, Path)), responses((status = 200, body = TicketThread), (status = 404)))]
pub async fn ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TicketThread>> {
    let p = caller.require()?;
    let ticket = access::ticket_for(&s, p, &id).await?;
    let messages = s.store.ticket_messages(&id).await?;
    Ok(Json(TicketThread { ticket, messages }))
}

#[derive(Deserialize, ToSchema)]
pub struct ReplyRequest {
    pub body: Option<String>,
}

pub async fn reply(s: &AppState, p: &Principal, id: &str, body: Option<&str>) -> ApiResult<Ticket> {
    access::ticket_for_writer(s, p, id).await?;
    let mut c = Checker::new();
    let body = c.text("body", body, 1, 4000);
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    Ok(s.store.reply_ticket(&p.actor(), id, &p.user, &body).await?)
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
    Ok(Json(reply(&s, p, &id, r.body.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "service", params(("id" = String, Path)), responses((status = 200, body = Ticket), (status = 404), (status = 409)))]
pub async fn close_ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Ticket>> {
    let p = caller.require()?;
    access::ticket_for_writer(&s, p, &id).await?;
    Ok(Json(s.store.close_ticket(&p.actor(), &id).await?))
}

// ---------------------------------------------------------------- audit

#[derive(Deserialize, IntoParams)]
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
pub async fn audit(State(s): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(s.store.audit_entries(&q.filter()).await?))
}
