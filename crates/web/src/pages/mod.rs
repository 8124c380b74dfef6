//! Server-rendered pages: Chinese first, English on request, usable without JavaScript.
//! Handlers call the same use cases as the API (`opchub_app`) and render templates from
//! `templates/<feature>/` (the base layout, the error page and the form macros of
//! `shared/forms.html` in `templates/shared/`); texts come from the message catalogs through
//! `t("key")`.

use crate::api;
use crate::auth::{self, Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::view::render;
use crate::{i18n, AppState};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Environment, Value};
use opchub_app::accounts::{self, NewKeyRequest, NewUserRequest};
use opchub_app::registry::{self, NewCommunityRequest, NewTicketRequest, RegistrationRequest};
use opchub_domain::{Role, Zone};
use serde::Deserialize;
use std::collections::BTreeMap;

pub mod applications;
// Monthly bills (issue 19)
pub mod bills;
pub mod chart;
pub mod chart_bars;
pub mod datasets;
// Demand board (M2.4)
pub mod demands;
pub mod gateway;
pub mod ledger;
// Party facts: registrations, agency membership, bank accounts (issue 17)
pub mod integrity;
pub mod party_facts;
pub mod records;
pub mod ring_graph;
pub mod settlement;
pub mod skills;
pub mod workbench;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "integrity_findings.html",
        include_str!("../../templates/integrity/integrity_findings.html"),
    ),
    ("base.html", include_str!("../../templates/shared/base.html")),
    ("workbench.html", include_str!("../../templates/workbench/workbench.html")),
    ("opc_detail.html", include_str!("../../templates/registry/opc_detail.html")),
    ("forms.html", include_str!("../../templates/shared/forms.html")),
    ("applications.html", include_str!("../../templates/applications/applications.html")),
    (
        "application_new.html",
        include_str!("../../templates/applications/application_new.html"),
    ),
    ("application.html", include_str!("../../templates/applications/application.html")),
    (
        "application_receipt.html",
        include_str!("../../templates/applications/application_receipt.html"),
    ),
    (
        "fund_payments.html",
        include_str!("../../templates/applications/fund_payments.html"),
    ),
    (
        "funds_dashboard.html",
        include_str!("../../templates/applications/funds_dashboard.html"),
    ),
    ("my_records.html", include_str!("../../templates/records/my_records.html")),
    ("housing.html", include_str!("../../templates/records/housing.html")),
    ("overlaps.html", include_str!("../../templates/settlement/overlaps.html")),
    ("home.html", include_str!("../../templates/registry/home.html")),
    ("api_reference.html", include_str!("../../templates/api/reference.html")),
    ("login.html", include_str!("../../templates/accounts/login.html")),
    ("register.html", include_str!("../../templates/registry/register.html")),
    ("communities.html", include_str!("../../templates/registry/communities.html")),
    ("community.html", include_str!("../../templates/registry/community.html")),
    ("my_company.html", include_str!("../../templates/registry/my_company.html")),
    ("ticket.html", include_str!("../../templates/registry/ticket.html")),
    ("queue.html", include_str!("../../templates/registry/queue.html")),
    ("keys.html", include_str!("../../templates/accounts/keys.html")),
    ("admin_users.html", include_str!("../../templates/accounts/admin_users.html")),
    (
        "admin_communities.html",
        include_str!("../../templates/registry/admin_communities.html"),
    ),
    ("admin_opcs.html", include_str!("../../templates/registry/admin_opcs.html")),
    ("audit.html", include_str!("../../templates/accounts/audit.html")),
    (
        "ledger_statement.html",
        include_str!("../../templates/ledger/ledger_statement.html"),
    ),
    (
        "ledger_checkpoints.html",
        include_str!("../../templates/ledger/ledger_checkpoints.html"),
    ),
    ("ledger_proof.html", include_str!("../../templates/ledger/ledger_proof.html")),
    ("gateway.html", include_str!("../../templates/gateway/gateway.html")),
    (
        "gateway_channels.html",
        include_str!("../../templates/gateway/gateway_channels.html"),
    ),
    ("datasets.html", include_str!("../../templates/datasets/datasets.html")),
    ("policy.html", include_str!("../../templates/settlement/policy.html")),
    (
        "policy_calculator.html",
        include_str!("../../templates/settlement/policy_calculator.html"),
    ),
    (
        "my_settlements.html",
        include_str!("../../templates/settlement/my_settlements.html"),
    ),
    (
        "settlement_statement.html",
        include_str!("../../templates/settlement/settlement_statement.html"),
    ),
    ("settlements.html", include_str!("../../templates/settlement/settlements.html")),
    ("settlement.html", include_str!("../../templates/settlement/settlement.html")),
    ("error.html", include_str!("../../templates/shared/error.html")),
    // party facts (issue 17)
    (
        "party_registrations.html",
        include_str!("../../templates/party_facts/party_registrations.html"),
    ),
    ("bank_accounts.html", include_str!("../../templates/party_facts/bank_accounts.html")),
    // demand board (M2.4)
    ("demands.html", include_str!("../../templates/demands/demands.html")),
    ("demand_new.html", include_str!("../../templates/demands/demand_new.html")),
    ("demands_mine.html", include_str!("../../templates/demands/demands_mine.html")),
    ("demand.html", include_str!("../../templates/demands/demand.html")),
    ("demand_thread.html", include_str!("../../templates/demands/demand_thread.html")),
    ("cooperations.html", include_str!("../../templates/demands/cooperations.html")),
    ("cooperation.html", include_str!("../../templates/demands/cooperation.html")),
    ("demand_review.html", include_str!("../../templates/demands/demand_review.html")),
    ("notifications.html", include_str!("../../templates/shared/notifications.html")),
    ("skills.html", include_str!("../../templates/skills/skills.html")),
    ("skill.html", include_str!("../../templates/skills/skill.html")),
    ("skills_mine.html", include_str!("../../templates/skills/skills_mine.html")),
    ("skills_usage.html", include_str!("../../templates/skills/skills_usage.html")),
    ("skills_review.html", include_str!("../../templates/skills/skills_review.html")),
    // monthly bills (issue 19)
    ("bills.html", include_str!("../../templates/bills/bills.html")),
    ("bill.html", include_str!("../../templates/bills/bill.html")),
];

const CSS: &str = include_str!("../../templates/shared/site.css");
/// The one script of the pages (evidence uploads), served from the site: no inline scripts.
const EVIDENCE_JS: &str = include_str!("../../templates/shared/evidence.js");

pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, src) in TEMPLATES {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env.add_function("t", |state: &minijinja::State, key: String| -> String {
        let lang = state_lang(state);
        i18n::text(&lang, &key)
    });
    // A code's label from the `prefix` catalog block when it has one, else the code itself
    // (issue 21: audit actions and object kinds, …).
    env.add_function("label", |state: &minijinja::State, prefix: String, value: String| -> String {
        label_or(&state_lang(state), &prefix, &value)
    });
    // A step or reason of the engine's trace in the reader's language (issue 21): `say(msg,
    // fallback)` renders `trace.<key>` with its values, else shows the fallback (the engine's
    // English text, for steps it has no message for).
    env.add_function("say", |state: &minijinja::State, m: Value, fallback: Option<String>| -> String {
        let lang = state_lang(state);
        say(&lang, &m, fallback.unwrap_or_default())
    });
    // An application's answers (a JSON object of facts) as rows a person reads: the fact's
    // label, and its value — yes/no, a count of entries, amounts in yuan (issue 21).
    env.add_function("fact_rows", |state: &minijinja::State, json: String| -> Value {
        let lang = state_lang(state);
        Value::from_serialize(fact_rows(&lang, &json))
    });
    // A batch's list versions (`{kind: {id, version, sha256}}`) as "名单 v1 · …" (issue 21).
    env.add_filter("lists_used", |state: &minijinja::State, json: String| -> String {
        let lang = state_lang(state);
        let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&json) else {
            return json;
        };
        m.iter()
            .map(|(kind, v)| {
                let version = v
                    .get("version")
                    .and_then(serde_json::Value::as_i64)
                    .map(|n| format!(" v{n}"))
                    .unwrap_or_default();
                format!("{}{version}", i18n::text(&lang, &format!("settle.kind_{kind}")))
            })
            .collect::<Vec<_>>()
            .join(" · ")
    });
    env.add_filter("dt", |ms: i64| -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| {
                d.with_timezone(&opchub_domain::time::beijing())
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default()
    });
    // Money in integer fen as `¥1,234.56`; integers with thousands separators.
    env.add_filter("money", ledger::money);
    env.add_filter("num", ledger::grouped);
    env
}

/// Renders `name` with the common context (language, user, CSRF token, navigation).
fn page_error(s: &AppState, p: Option<&Principal>, e: ApiError) -> Response {
    crate::view::error_page(s, p, &e)
}

fn field_messages(e: &ApiError) -> (String, BTreeMap<String, String>) {
    e.messages(&i18n::current_lang())
}

/// An error as one line above a form: the message, then each field's message.
pub(crate) fn error_text(e: &ApiError) -> String {
    let (msg, fields) = field_messages(e);
    let detail: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if detail.is_empty() {
        msg
    } else {
        format!("{msg}（{}）", detail.join("；"))
    }
}

/// The fields of an urlencoded form body, in order, repeated names kept (checkbox lists).
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// The first value of `name` in a form, or "".
pub(crate) fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// A yuan amount typed in a form (`1,234.56`, also with a full-width `，`) in fen;
/// `Err(field)` when it does not parse.
pub(crate) fn fen_of(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    opchub_domain::money::fen_of_input(v).map_err(|_| ApiError::field(field, "invalid_amount"))
}

pub async fn not_found(State(s): State<AppState>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::not_found().into_response();
    }
    crate::view::error_page(&s, None, &ApiError::not_found())
}

pub async fn evidence_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        EVIDENCE_JS,
    )
}

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

fn zones_ctx() -> Vec<Value> {
    let lang = i18n::current_lang();
    Zone::ALL
        .iter()
        .map(|z| context! { code => z.as_str(), name => i18n::text(&lang, &format!("zone.{}", z.as_str())) })
        .collect()
}

pub async fn home(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let counts = match registry::counts(&s).await {
        Ok(c) => c,
        Err(e) => return page_error(&s, caller.0.as_ref(), e.into()),
    };
    let packages = registry::theme_packages(&s).await.unwrap_or_default();
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "home.html",
        StatusCode::OK,
        context! { counts => counts, packages => packages, zones => zones_ctx() },
    )
}

pub async fn set_lang(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let code = if i18n::LANGS.contains(&code.as_str()) { code } else { "zh".into() };
    // Back to the page the switch was made on: the Referer's path, on this site (a path such
    // as `//evil.example/p` would leave it).
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u[url::Position::BeforePath..url::Position::AfterQuery].to_string())
        .filter(|p| same_origin_path(p).is_some())
        .unwrap_or_else(|| "/".into());
    let mut resp = Redirect::to(&back).into_response();
    if let Ok(v) = format!("lang={code}; Path=/; SameSite=Lax; Max-Age=31536000").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

// ---------------------------------------------------------------- login

#[derive(Deserialize, Default)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// A path on this site to send a browser back to, or `None`: it starts with one `/` (not `//`
/// or `/\\`, which browsers read as another host) and holds only visible ASCII without
/// backslashes — browsers drop tabs and line breaks before reading a URL (`/\t/evil.example`
/// is `//evil.example`), and a line break in a header is refused by the HTTP stack.
pub fn same_origin_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && p.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\');
    ok.then_some(p)
}

fn safe_next(n: Option<&str>) -> String {
    n.and_then(same_origin_path).unwrap_or_default().to_string()
}

pub async fn login_form(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NextQuery>,
) -> Response {
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "login.html",
        StatusCode::OK,
        context! { next => safe_next(q.next.as_deref()) },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: Option<String>,
    pub password: Option<String>,
    pub next: Option<String>,
}

/// Where a person lands after signing in: the workbench, whatever the role (issue 21 item 2).
const SIGNED_IN_HOME: &str = "/workbench";

/// Starts a session: a new random token (only its hash is stored) and a new CSRF token.
async fn start_session(s: &AppState, user_id: &str, to: &str) -> Result<Response, ApiError> {
    let accounts::NewSession { token, csrf } = accounts::start_session(s, user_id).await?;
    let mut resp = Redirect::to(to).into_response();
    let secure = s.config.cookie_secure;
    for c in [
        auth::set_cookie(auth::SESSION_COOKIE, &token, auth::SESSION_TTL_MS / 1000, "Lax", secure),
        auth::set_cookie(auth::CSRF_COOKIE, &csrf, 30 * 24 * 3600, "Strict", secure),
    ] {
        if let Ok(v) = c.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

pub async fn login(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let username = f.username.unwrap_or_default().trim().to_string();
    let password = f.password.unwrap_or_default();
    let next = safe_next(f.next.as_deref());
    // The connection's peer (behind a reverse proxy: the proxy; the per-account count still holds).
    let client = peer.map(|Extension(axum::extract::ConnectInfo(a))| a.ip());
    let user = match accounts::check_password(&s, &username, &password, client).await {
        Ok(u) => u,
        Err(e) if e.code == "too_many_attempts" => {
            let message = i18n::text(&i18n::current_lang(), "error.too_many_attempts");
            return render(
                &s,
                caller.0.as_ref(),
                &csrf.0,
                "login.html",
                StatusCode::TOO_MANY_REQUESTS,
                context! { next => next, username => username, error => message },
            );
        }
        Err(e) => return page_error(&s, None, e.into()),
    };
    match user {
        Some(u) => {
            let to = if next.is_empty() { SIGNED_IN_HOME.to_string() } else { next };
            start_session(&s, &u.id, &to).await.unwrap_or_else(|e| page_error(&s, None, e))
        }
        _ => {
            let (message, _) = field_messages(&ApiError::unauthorized().with_detail(""));
            let message = if message.ends_with(": ") {
                i18n::text(&i18n::current_lang(), "accounts.login.failed")
            } else {
                message
            };
            render(
                &s,
                caller.0.as_ref(),
                &csrf.0,
                "login.html",
                StatusCode::UNPROCESSABLE_ENTITY,
                context! { next => next, username => username, error => message },
            )
        }
    }
}

pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(tok) = auth::cookie(&headers, auth::SESSION_COOKIE) {
        if let Err(e) = accounts::end_session(&s, tok).await {
            return page_error(&s, None, e.into());
        }
    }
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = auth::set_cookie(auth::SESSION_COOKIE, "", 0, "Lax", s.config.cookie_secure).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

// ---------------------------------------------------------------- registration wizard

#[derive(Deserialize, Default)]
pub struct WizardQuery {
    pub zone: Option<String>,
}

async fn wizard(
    s: &AppState,
    caller: Option<&Principal>,
    csrf: &str,
    zone: Option<&str>,
    form: Value,
    status: StatusCode,
    errors: Value,
) -> Response {
    if let Some(p) = caller {
        if p.role() != Role::OpcFounder {
            return page_error(s, caller, ApiError::forbidden());
        }
        if let Ok(Some(_)) = registry::opc_of_founder(s, &p.user.id).await {
            return Redirect::to("/my/company").into_response();
        }
    }
    let zone = zone.and_then(|z| z.parse::<Zone>().ok());
    let (communities, packages) = match zone {
        Some(z) => match registry::wizard_choices(s, z).await {
            Ok(w) => (
                w.communities
                    .into_iter()
                    .map(|(c, free)| context! { community => c, workstations => free })
                    .collect(),
                w.packages,
            ),
            Err(e) => return page_error(s, caller, e.into()),
        },
        None => (vec![], vec![]),
    };
    render(
        s,
        caller,
        csrf,
        "register.html",
        status,
        context! {
            step => if zone.is_some() { 2 } else { 1 },
            zone => zone.map(|z| z.as_str()),
            zone_name => zone.map(|z| i18n::text(&i18n::current_lang(), &format!("zone.{}", z.as_str()))),
            zones => zones_ctx(),
            communities => communities,
            packages => packages,
            form => form,
            errors => errors,
            need_account => caller.is_none(),
        },
    )
}

pub async fn register_form(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<WizardQuery>,
) -> Response {
    // Step 1 → step 2: a zone outside G2 is explained, not silently accepted.
    if q.zone.as_deref() == Some("outside") {
        let e = ApiError::field("zone", "outside_g2");
        let (message, fields) = field_messages(&e);
        return wizard(
            &s,
            caller.0.as_ref(),
            &csrf.0,
            None,
            Value::from(()),
            StatusCode::OK,
            context! { message => message, fields => fields },
        )
        .await;
    }
    wizard(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        q.zone.as_deref(),
        Value::from(()),
        StatusCode::OK,
        Value::from(()),
    )
    .await
}

#[derive(Deserialize)]
pub struct RegisterForm {
    pub username: Option<String>,
    pub password: Option<String>,
    pub founder_name: Option<String>,
    pub company_name: Option<String>,
    pub uscc: Option<String>,
    pub not_yet_registered: Option<String>,
    pub tax_registered: Option<String>,
    pub industry_code: Option<String>,
    pub zone: Option<String>,
    pub theme_package: Option<String>,
    pub workstation_id: Option<String>,
    pub founder_id_number: Option<String>,
    pub founder_phone: Option<String>,
    pub registered_address: Option<String>,
}

pub async fn register(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<RegisterForm>,
) -> Response {
    let req = RegistrationRequest {
        username: f.username.clone(),
        password: f.password.clone(),
        founder_name: f.founder_name.clone(),
        company_name: f.company_name.clone(),
        uscc: f.uscc.clone(),
        not_yet_registered: f.not_yet_registered.is_some(),
        tax_registered: f.tax_registered.is_some(),
        industry_code: f.industry_code.clone(),
        zone: f.zone.clone(),
        theme_package: f.theme_package.clone(),
        workstation_id: f.workstation_id.clone(),
        founder_id_number: f.founder_id_number.clone(),
        founder_phone: f.founder_phone.clone(),
        registered_address: f.registered_address.clone(),
    };
    match registry::register(&s, caller.0.as_ref(), &req).await.map_err(ApiError::from) {
        Ok((_, user)) => {
            if caller.0.is_some() {
                Redirect::to("/my/company").into_response()
            } else {
                start_session(&s, &user.id, "/my/company")
                    .await
                    .unwrap_or_else(|e| page_error(&s, None, e))
            }
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            let (message, fields) = field_messages(&e);
            let form = context! {
                username => f.username, founder_name => f.founder_name, company_name => f.company_name, uscc => f.uscc,
                not_yet_registered => f.not_yet_registered.is_some(), tax_registered => f.tax_registered.is_some(),
                industry_code => f.industry_code, theme_package => f.theme_package, workstation_id => f.workstation_id,
                registered_address => f.registered_address,
            };
            wizard(
                &s,
                caller.0.as_ref(),
                &csrf.0,
                f.zone.as_deref(),
                form,
                e.status,
                context! { message => message, fields => fields },
            )
            .await
        }
        Err(e) => page_error(&s, caller.0.as_ref(), e),
    }
}

// ---------------------------------------------------------------- directory

pub async fn communities(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<WizardQuery>,
) -> Response {
    let zone = q.zone.as_deref().and_then(|z| z.parse::<Zone>().ok());
    match registry::communities_in(&s, zone).await {
        Ok(list) => {
            let free: i64 = list.iter().map(|c| c.workstations_free).sum();
            render(
                &s,
                caller.0.as_ref(),
                &csrf.0,
                "communities.html",
                StatusCode::OK,
                context! { communities => list, zones => zones_ctx(), zone => zone.map(|z| z.as_str()), free => free },
            )
        }
        Err(e) => page_error(&s, caller.0.as_ref(), e.into()),
    }
}

pub async fn community(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
) -> Response {
    let page = match registry::community_page(&s, caller.0.as_ref(), &id).await {
        Ok(c) => c,
        Err(e) => return page_error(&s, caller.0.as_ref(), e.into()),
    };
    let (c, ws, manage, occupants) = (page.community, page.workstations, page.manage, page.occupants);
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "community.html",
        StatusCode::OK,
        context! { c => c, workstations => ws, manage => manage, occupants => occupants },
    )
}

// ---------------------------------------------------------------- my company and tickets

pub async fn my_company(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let company = match registry::my_company(&s, p).await {
        Ok(Some(c)) => c,
        Ok(None) => return Redirect::to("/register").into_response(),
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    // M8.1: growth milestones granted to this OPC.
    let (opc, package, tickets, milestones) = (company.opc, company.package, company.tickets, company.milestones);
    let zone_name = i18n::text(&i18n::current_lang(), &format!("zone.{}", opc.zone.as_str()));
    render(
        &s,
        Some(p),
        &csrf.0,
        "my_company.html",
        StatusCode::OK,
        context! { opc => opc, package => package, tickets => tickets, zone_name => zone_name, milestones => milestones },
    )
}

#[derive(Deserialize)]
pub struct TicketForm {
    pub subject: Option<String>,
    pub body: Option<String>,
}

pub async fn create_ticket(State(s): State<AppState>, caller: Caller, Form(f): Form<TicketForm>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::open_ticket(
        &s,
        p,
        &NewTicketRequest {
            subject: f.subject,
            body: f.body,
        },
    )
    .await
    .map_err(ApiError::from)
    {
        Ok(t) => Redirect::to(&format!("/tickets/{}", t.id)).into_response(),
        Err(e) => page_error(&s, Some(p), e),
    }
}

pub async fn ticket(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let (t, messages) = match registry::ticket(&s, p, &id).await {
        Ok(thread) => (thread.ticket, thread.messages),
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    let can_write = registry::may_write_ticket(p, &t);
    render(
        &s,
        Some(p),
        &csrf.0,
        "ticket.html",
        StatusCode::OK,
        context! { ticket => t, messages => messages, can_write => can_write },
    )
}

#[derive(Deserialize)]
pub struct ReplyForm {
    pub body: Option<String>,
}

pub async fn reply_ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>, Form(f): Form<ReplyForm>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::reply(&s, p, &id, f.body.as_deref()).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to(&format!("/tickets/{id}")).into_response(),
        Err(e) => page_error(&s, Some(p), e),
    }
}

pub async fn close_ticket(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::close_ticket(&s, p, &id).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to(&format!("/tickets/{id}")).into_response(),
        Err(e) => page_error(&s, Some(p), e),
    }
}

pub async fn specialist_queue(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let (queue, mine) = registry::specialist_queue(&s, p).await.unwrap_or_default();
    render(
        &s,
        Some(p),
        &csrf.0,
        "queue.html",
        StatusCode::OK,
        context! { tickets => queue, opcs => mine },
    )
}

// ---------------------------------------------------------------- API keys

async fn keys_page(s: &AppState, p: &Principal, csrf: &str, secret: Option<String>, status: StatusCode, error: Option<String>) -> Response {
    account_page(s, p, csrf, secret, status, error, (None, None)).await
}

/// The caller's own page (`/my/keys`): API keys and the password form, with the password form's
/// notice or error.
async fn account_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    secret: Option<String>,
    status: StatusCode,
    error: Option<String>,
    (password_notice, password_error): (Option<String>, Option<String>),
) -> Response {
    let keys = accounts::keys_of(s, p).await.unwrap_or_default();
    render(
        s,
        Some(p),
        csrf,
        "keys.html",
        status,
        context! { keys => keys, secret => secret, error => error, now => opchub_store::now_ms(),
        password_notice => password_notice, password_error => password_error },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// The password form of `/my/keys`: the same use case as `POST /api/v1/account/password`; this
/// browser stays signed in, every other session of the account ends.
pub async fn change_password(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    headers: axum::http::HeaderMap,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let session = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE);
    let client = peer.map(|Extension(axum::extract::ConnectInfo(a))| a.ip());
    let req = accounts::PasswordChange {
        current_password: f.current_password,
        new_password: f.new_password,
    };
    match accounts::change_password(&s, p, &req, session, client)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => {
            let notice = i18n::text(&i18n::current_lang(), "accounts.password.password_changed");
            account_page(&s, p, &csrf.0, None, StatusCode::OK, None, (Some(notice), None)).await
        }
        Err(e) => {
            let (m, fields) = field_messages(&e);
            let detail = fields.values().cloned().collect::<Vec<_>>().join("；");
            let msg = if detail.is_empty() { m } else { detail };
            account_page(&s, p, &csrf.0, None, e.status, None, (None, Some(msg))).await
        }
    }
}

pub async fn keys(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    keys_page(&s, p, &csrf.0, None, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    pub name: Option<String>,
    pub read_only: Option<String>,
    pub expires_in_days: Option<String>,
}

pub async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<KeyForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let expires = f
        .expires_in_days
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<i64>().unwrap_or(-1));
    let scopes = if f.read_only.is_some() {
        vec!["read".to_string()]
    } else {
        vec!["read".to_string(), "write".to_string()]
    };
    match accounts::create_key(
        &s,
        p,
        &NewKeyRequest {
            name: f.name,
            scopes: Some(scopes),
            expires_in_days: expires,
        },
    )
    .await
    .map_err(ApiError::from)
    {
        Ok(k) => keys_page(&s, p, &csrf.0, Some(k.secret), StatusCode::OK, None).await,
        Err(e) => {
            let (m, fields) = field_messages(&e);
            let detail = fields.values().cloned().collect::<Vec<_>>().join("；");
            keys_page(&s, p, &csrf.0, None, e.status, Some(if detail.is_empty() { m } else { detail })).await
        }
    }
}

pub async fn revoke_key(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match accounts::revoke_key(&s, p, &id).await {
        Ok(_) => Redirect::to("/my/keys").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

// ---------------------------------------------------------------- admin

pub(crate) async fn users_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, errors: Value) -> Response {
    let users = accounts::all_users(s).await.unwrap_or_default();
    // F1: which agency each agency user reviews for, and the agencies the measures name.
    let agency_of = opchub_app::party_facts::user_agencies(s).await.unwrap_or_default();
    let agencies: Vec<Value> = opchub_app::party_facts::agencies(s)
        .into_iter()
        .map(|a| context! { code => a.clone(), name => i18n::text(&i18n::current_lang(), &format!("facts.agency_name.{a}")) })
        .collect();
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| context! { code => r.as_str(), name => i18n::text(&i18n::current_lang(), &format!("role.{}", r.as_str())) })
        .collect();
    render(
        s,
        Some(p),
        csrf,
        "admin_users.html",
        status,
        context! { users => users, roles => roles, errors => errors, agency_of => agency_of, agencies => agencies },
    )
}

pub async fn admin_users(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    users_page(&s, p, &csrf.0, StatusCode::OK, Value::from(())).await
}

pub async fn admin_create_user(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<NewUserRequest>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match accounts::create_user(&s, p, &f).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/admin/users").into_response(),
        Err(e) => {
            let (message, fields) = field_messages(&e);
            users_page(&s, p, &csrf.0, e.status, context! { message => message, fields => fields }).await
        }
    }
}

async fn communities_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, errors: Value) -> Response {
    let (list, operators) = registry::managed_communities(s, p).await.unwrap_or_default();
    render(
        s,
        Some(p),
        csrf,
        "admin_communities.html",
        status,
        context! { communities => list, zones => zones_ctx(), operators => operators, errors => errors },
    )
}

pub async fn admin_communities(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    communities_page(&s, p, &csrf.0, StatusCode::OK, Value::from(())).await
}

#[derive(Deserialize)]
pub struct CommunityForm {
    pub name: Option<String>,
    pub company_name: Option<String>,
    pub company_uscc: Option<String>,
    pub zone: Option<String>,
    pub address: Option<String>,
    pub workstations: Option<String>,
    pub operator_user_id: Option<String>,
}

pub async fn admin_create_community(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<CommunityForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let req = NewCommunityRequest {
        name: f.name,
        company_name: f.company_name,
        company_uscc: f.company_uscc,
        zone: f.zone,
        address: f.address,
        workstations: f.workstations.as_deref().map(|v| v.trim().parse::<i64>().unwrap_or(-1)),
        operator_user_id: f.operator_user_id,
    };
    match registry::create_community(&s, p, &req).await.map_err(ApiError::from) {
        Ok(c) => Redirect::to(&format!("/communities/{}", c.id)).into_response(),
        Err(e) => {
            let (message, fields) = field_messages(&e);
            communities_page(&s, p, &csrf.0, e.status, context! { message => message, fields => fields }).await
        }
    }
}

#[derive(Deserialize)]
pub struct WorkstationForm {
    pub status: Option<String>,
}

pub async fn admin_set_workstation(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<WorkstationForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::set_workstation(&s, p, &id, f.status.as_deref().unwrap_or_default())
        .await
        .map(|ws| ws.community_id)
        .map_err(ApiError::from)
    {
        Ok(cid) => Redirect::to(&format!("/communities/{cid}")).into_response(),
        Err(e) => page_error(&s, Some(p), e),
    }
}

pub async fn admin_opcs(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<WizardQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let zone = q.zone.as_deref().and_then(|z| z.parse::<Zone>().ok());
    let (opcs, specialists) = registry::opcs_and_specialists(&s, zone).await.unwrap_or_default();
    render(
        &s,
        Some(p),
        &csrf.0,
        "admin_opcs.html",
        StatusCode::OK,
        context! { opcs => opcs, specialists => specialists, zones => zones_ctx(), zone => zone.map(|z| z.as_str()) },
    )
}

/// One OPC for the committee and its specialist (issue 21 item 6).
pub async fn opc_detail(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::opc_detail_for(&s, p, &id).await {
        Ok(d) => render(&s, Some(p), &csrf.0, "opc_detail.html", StatusCode::OK, context! { d => d }),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

#[derive(Deserialize)]
pub struct SpecialistForm {
    pub specialist_user_id: Option<String>,
}

pub async fn admin_assign_specialist(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<SpecialistForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match registry::assign_specialist(&s, p, &id, f.specialist_user_id.as_deref().unwrap_or("")).await {
        Ok(_) => Redirect::to("/admin/opcs").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

pub async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<api::AuditQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let entries = accounts::audit_entries(&s, &q.filter()).await.unwrap_or_default();
    let f = q.filter();
    render(
        &s,
        Some(p),
        &csrf.0,
        "audit.html",
        StatusCode::OK,
        context! { entries => entries, action => f.action, object_kind => f.object_kind, object_id => f.object_id, actor_user_id => f.actor_user_id },
    )
}

/// The page's language (the context's `lang`; Chinese when absent).
fn state_lang(state: &minijinja::State) -> String {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "zh".into())
}

/// [`i18n::text`] of `prefix.value` when the catalogs have it, else the value itself.
fn label_or(lang: &str, prefix: &str, value: &str) -> String {
    let key = format!("{prefix}.{value}");
    if i18n::has(lang, &key) || i18n::has("zh", &key) {
        i18n::text(lang, &key)
    } else {
        value.to_string()
    }
}

/// Renders an engine message (`{key, args}`, see `opchub_policy::Msg`) from the `trace.` catalog
/// block: `{name}` is the value `name_<lang>` when given, else `name`; facts, fact lists, cap
/// scopes and roles read as their labels. Without a message (or a catalog entry) the fallback.
pub fn say(lang: &str, m: &Value, fallback: String) -> String {
    let Some(key) = m.get_attr("key").ok().and_then(|k| k.as_str().map(str::to_string)) else {
        return fallback;
    };
    let catalog_key = format!("trace.{key}");
    if !(i18n::has(lang, &catalog_key) || i18n::has("zh", &catalog_key)) {
        return fallback;
    }
    let mut out = i18n::text(lang, &catalog_key);
    let args = m.get_attr("args").ok();
    let arg = |name: &str| -> Option<String> {
        let a = args.as_ref()?;
        let pick = |k: &str| a.get_attr(k).ok().and_then(|v| v.as_str().map(str::to_string));
        pick(&format!("{name}_{lang}")).or_else(|| pick(name))
    };
    // Each `{name}` once, left to right.
    let mut start = 0;
    while let Some(open) = out[start..].find('{').map(|i| i + start) {
        let Some(close) = out[open..].find('}').map(|i| i + open) else {
            break;
        };
        let name = out[open + 1..close].to_string();
        let value = match arg(&name) {
            Some(v) => match name.as_str() {
                "fact" => label_or(lang, "fact", &v),
                "facts" => v.split(", ").map(|f| label_or(lang, "fact", f)).collect::<Vec<_>>().join("、"),
                "scope" => label_or(lang, "cap_scope", &v),
                "role" | "expected_role" => label_or(lang, "role", &v),
                _ => v,
            },
            None => String::new(),
        };
        out.replace_range(open..=close, &value);
        start = open + value.len();
    }
    out
}

/// See the `fact_rows` template function.
pub fn fact_rows(lang: &str, json: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return vec![];
    };
    map.iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::Bool(b) => i18n::text(lang, if *b { "common.yes" } else { "common.no" }),
                serde_json::Value::Null => i18n::text(lang, "common.none"),
                serde_json::Value::Array(a) if a.is_empty() => i18n::text(lang, "common.none"),
                serde_json::Value::Array(a) => i18n::text(lang, "app.entries").replace("{n}", &a.len().to_string()),
                serde_json::Value::Number(n) if k.ends_with("_fen") => n.as_i64().map(ledger::money).unwrap_or_else(|| n.to_string()),
                // M8.1's milestone is one of the catalog's milestones; other choices are zones.
                serde_json::Value::String(t) if k == "milestone" => label_or(lang, "rec", &format!("milestone_{t}")),
                serde_json::Value::String(t) => label_or(lang, "zone", t),
                other => other.to_string(),
            };
            (label_or(lang, "fact", k), shown)
        })
        .collect()
}
