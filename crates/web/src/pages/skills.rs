//! Skill Store pages (M2.3): the public store (search with filters, ranked listings with
//! public counts), a skill's detail page (versions, tools with their `/mcp` names, price,
//! publisher, counts, ratings; enable and rate for OPC founders), the publisher's page
//! (publish form, versions with review decisions, calls / distinct invokers / revenue /
//! qualified vs not with a daily chart), the invoker's page (spend, skills used, the `/mcp`
//! quick start) and the platform operator's review queue. Validation and effects are the
//! JSON API's: both call the use cases of `opchub_app::skills`.

use super::chart::{daily_bars, days_in_month, Bar, Labels};
use super::ledger::money;
use super::{field_messages, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, upload, AppState};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::Engine;
use minijinja::{context, Value};
use opchub_app::skills::{self as api, PublishRequest, RateRequest, ReviewRequest, SearchQuery, VersionRequest};
use opchub_store::skills::{DailyCalls, CATEGORIES, KINDS};
use serde::Deserialize;

fn options(prefix: &str, codes: &[&str]) -> Vec<Value> {
    let lang = i18n::current_lang();
    codes
        .iter()
        .map(|c| context! { code => *c, name => i18n::text(&lang, &format!("{prefix}.{c}")) })
        .collect()
}

fn errors_ctx(e: &ApiError) -> Value {
    let (message, fields) = field_messages(e);
    context! { message => message, fields => fields }
}

/// The daily chart of this month's calls: bar height = calls, title = calls, qualified, amount.
fn calls_chart(lang: &str, daily: &[DailyCalls]) -> String {
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let bars: Vec<Bar> = daily
        .iter()
        .filter(|d| d.day.starts_with(&period))
        .filter_map(|d| {
            let day = d.day.get(8..10)?.parse::<u32>().ok()?;
            Some(Bar {
                day,
                value: d.calls,
                title: i18n::text(lang, "skill.bar_title")
                    .replace("{day}", &d.day)
                    .replace("{calls}", &d.calls.to_string())
                    .replace("{qualified}", &d.qualified_calls.to_string())
                    .replace("{amount}", &money(d.amount_fen)),
            })
        })
        .collect();
    let labels = Labels {
        title: i18n::text(lang, "skill.chart_title"),
        desc: i18n::text(lang, "skill.chart_desc"),
        x_axis: i18n::text(lang, "skill.chart_x"),
        y_axis: i18n::text(lang, "skill.chart_y"),
    };
    daily_bars(days_in_month(&period), &bars, &labels, |v| v.to_string())
}

// ---------------------------------------------------------------- store and detail

pub async fn store(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let results = match api::search_for(&s, &q).await.map_err(ApiError::from) {
        Ok(r) => r,
        Err(e) => return page_error(&s, caller.0.as_ref(), e),
    };
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "skills.html",
        StatusCode::OK,
        context! { q => q.q, kind => q.kind, category => q.category, tag => q.tag, results => results,
        kinds => options("skill.kind", &KINDS), categories => options("skill.category", &CATEGORIES) },
    )
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

fn done_text(v: Option<&str>) -> Option<String> {
    let key = match v? {
        "enabled" => "skill.done_enabled",
        "disabled" => "skill.done_disabled",
        "rated" => "skill.done_rated",
        "published" => "skill.done_published",
        "submitted" => "skill.done_submitted",
        "reviewed" => "skill.done_reviewed",
        "refreshed" => "skill.done_refreshed",
        "delisted" => "skill.done_delisted",
        _ => return None,
    };
    Some(i18n::text(&i18n::current_lang(), key))
}

async fn detail_page(
    s: &AppState,
    p: Option<&Principal>,
    csrf: &str,
    id: &str,
    status: StatusCode,
    errors: Value,
    done: Option<String>,
) -> Response {
    let d = match api::detail_for(s, p, id).await.map_err(ApiError::from) {
        Ok(d) => d,
        Err(e) => return page_error(s, p, e),
    };
    let tools: Vec<opchub_skills::tools::Tool> = d.live_version.as_ref().map(api::pinned_tools).unwrap_or_default();
    render(
        s,
        p,
        csrf,
        "skill.html",
        status,
        context! { d => d, tools => tools, errors => errors, done => done },
    )
}

pub async fn detail(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    detail_page(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        &id,
        StatusCode::OK,
        Value::from(()),
        done_text(q.done.as_deref()),
    )
    .await
}

#[derive(Deserialize)]
pub struct EnableForm {
    pub enabled: Option<String>,
}

pub async fn set_enabled(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<EnableForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let on = f.enabled.as_deref() == Some("1");
    match api::set_enabled_for(&s, p, &id, on).await.map_err(ApiError::from) {
        Ok(()) => Redirect::to(&format!("/skills/{id}?done={}", if on { "enabled" } else { "disabled" })).into_response(),
        Err(e) => detail_page(&s, Some(p), &csrf.0, &id, e.status, errors_ctx(&e), None).await,
    }
}

#[derive(Deserialize)]
pub struct RateForm {
    pub stars: Option<String>,
    pub comment: Option<String>,
}

pub async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<RateForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let r = RateRequest {
        stars: f.stars.as_deref().and_then(|v| v.trim().parse().ok()),
        comment: f.comment,
    };
    match api::rate_for(&s, p, &id, &r).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to(&format!("/skills/{id}?done=rated")).into_response(),
        Err(e) => detail_page(&s, Some(p), &csrf.0, &id, e.status, errors_ctx(&e), None).await,
    }
}

// ---------------------------------------------------------------- publishers

async fn mine_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    status: StatusCode,
    form: Value,
    errors: Value,
    done: Option<String>,
) -> Response {
    let d = match api::publisher_dashboard_for(s, p).await.map_err(ApiError::from) {
        Ok(d) => d,
        Err(e) => return page_error(s, Some(p), e),
    };
    // M2.3's reading of the revenue (issue 19 item 5); the page shows nothing of it without
    // a policy file.
    let basis = opchub_app::settlement::publisher_basis_for(s, p, opchub_app::settlement::this_year())
        .await
        .ok()
        .flatten();
    let lang = i18n::current_lang();
    let chart = Value::from_safe_string(calls_chart(&lang, &d.daily));
    render(
        s,
        Some(p),
        csrf,
        "skills_mine.html",
        status,
        context! { d => d, basis => basis, chart => chart, form => form, errors => errors, done => done,
        kinds => options("skill.kind", &KINDS), categories => options("skill.category", &CATEGORIES) },
    )
}

pub async fn mine(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    mine_page(
        &s,
        p,
        &csrf.0,
        StatusCode::OK,
        Value::from(()),
        Value::from(()),
        done_text(q.done.as_deref()),
    )
    .await
}

#[derive(Deserialize, serde::Serialize, Default)]
pub struct PublishForm {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub summary: Option<String>,
    pub kind: Option<String>,
    pub category: Option<String>,
    pub tags: Option<String>,
    pub homepage_url: Option<String>,
    pub version: Option<String>,
    pub price_yuan: Option<String>,
    pub mcp_url: Option<String>,
    pub openapi: Option<String>,
    pub openapi_url: Option<String>,
    pub operations: Option<String>,
}

/// The largest publish form: an Agent Skill package at the store's limit (5 MiB), an inline
/// OpenAPI document (1 MiB) and the text fields.
pub const PAGE_PUBLISH_BODY: usize = 5 * 1024 * 1024 + 1024 * 1024 + 256 * 1024;

/// The publish form: URL-encoded, or `multipart/form-data` with the Agent Skill package in
/// the `package` file input (an input left empty is ignored). Returns the form and the
/// package bytes.
async fn read_publish_form(req: Request) -> Result<(PublishForm, Option<Vec<u8>>), ApiError> {
    let boundary = upload::boundary(req.headers());
    let bytes = axum::body::to_bytes(req.into_body(), PAGE_PUBLISH_BODY)
        .await
        .map_err(|_| ApiError::from(crate::error::HttpError::BodyTooLarge))?;
    let Some(boundary) = boundary else {
        let f = serde_urlencoded::from_bytes::<PublishForm>(&bytes).map_err(|_| ApiError::bad_request("invalid_body"))?;
        return Ok((f, None));
    };
    let parts = upload::parts(bytes, &boundary)
        .await
        .ok_or_else(|| ApiError::bad_request("invalid_body"))?;
    let mut f = PublishForm::default();
    let mut package = None;
    for part in parts {
        let slot = match part.name.as_str() {
            "package" => {
                if !part.bytes.is_empty() {
                    package = Some(part.bytes.to_vec());
                }
                continue;
            }
            "slug" => &mut f.slug,
            "name" => &mut f.name,
            "summary" => &mut f.summary,
            "kind" => &mut f.kind,
            "category" => &mut f.category,
            "tags" => &mut f.tags,
            "homepage_url" => &mut f.homepage_url,
            "version" => &mut f.version,
            "price_yuan" => &mut f.price_yuan,
            "mcp_url" => &mut f.mcp_url,
            "openapi" => &mut f.openapi,
            "openapi_url" => &mut f.openapi_url,
            "operations" => &mut f.operations,
            _ => continue,
        };
        *slot = Some(part.text());
    }
    Ok((f, package))
}

/// A price typed in yuan (`1,234.56`) → fen; empty → 0; negative or not an amount → None.
fn fen_of(v: Option<&str>) -> Option<i64> {
    match opchub_domain::money::fen_of_input(v) {
        Ok(None) => Some(0),
        Ok(Some(f)) if f >= 0 => Some(f),
        _ => None,
    }
}

/// Publishes from the page: the same validation and automated checks as the JSON API
/// (`opchub_app::skills::publish_for`), an Agent Skill package uploaded as a file (M2.3).
pub async fn publish(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, req: Request) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let (f, package) = match read_publish_form(req).await {
        Ok(x) => x,
        Err(e) => return mine_page(&s, p, &csrf.0, e.status, Value::from(()), errors_ctx(&e), None).await,
    };
    let form = minijinja::Value::from_serialize(&f);
    if f.kind.as_deref() == Some("agent_skill") && package.is_none() {
        let e = ApiError::field("package", "skill_package_required");
        return mine_page(&s, p, &csrf.0, e.status, form, errors_ctx(&e), None).await;
    }
    let Some(price) = fen_of(f.price_yuan.as_deref()) else {
        let e = ApiError::field("price_yuan", "invalid_amount");
        return mine_page(&s, p, &csrf.0, e.status, form, errors_ctx(&e), None).await;
    };
    let split = |v: &Option<String>| v.as_deref().map(super::gateway::split_list);
    let r = PublishRequest {
        slug: f.slug.clone(),
        name: f.name.clone(),
        summary: f.summary.clone(),
        kind: f.kind.clone(),
        category: f.category.clone(),
        tags: split(&f.tags),
        homepage_url: f.homepage_url.clone(),
        version: VersionRequest {
            version: f.version.clone(),
            price_fen: Some(price),
            mcp_url: f.mcp_url.clone().filter(|u| !u.trim().is_empty()),
            openapi: f.openapi.clone().filter(|u| !u.trim().is_empty()),
            openapi_url: f.openapi_url.clone().filter(|u| !u.trim().is_empty()),
            operations: split(&f.operations).filter(|o| !o.is_empty()),
            package_base64: package.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            submit: true,
        },
    };
    match api::publish_for(&s, p, &r).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/my/skills?done=published").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, form, errors_ctx(&e), None).await,
    }
}

pub async fn submit(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::submit_for(&s, p, &id).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/my/skills?done=submitted").into_response(),
        Err(e) => mine_page(&s, p, &csrf.0, e.status, Value::from(()), errors_ctx(&e), None).await,
    }
}

// ---------------------------------------------------------------- invokers

pub async fn usage(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, headers: HeaderMap) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let d = match api::invoker_dashboard_for(&s, p).await.map_err(ApiError::from) {
        Ok(d) => d,
        Err(e) => return page_error(&s, Some(p), e),
    };
    let mcp_url = super::gateway::base_url(&headers).trim_end_matches("/v1").to_string() + "/mcp";
    let lang = i18n::current_lang();
    let chart = Value::from_safe_string(calls_chart(&lang, &d.daily));
    let python = format!(
        "# pip install mcp\nimport asyncio\nfrom mcp import Client\nfrom mcp.client.streamable_http import streamable_http_client\nfrom mcp.shared._httpx_utils import create_mcp_http_client\n\nasync def main():\n    http = create_mcp_http_client(headers={{\"Authorization\": \"Bearer opk_YOUR_KEY\"}})\n    async with http, Client(streamable_http_client(\"{mcp_url}\", http_client=http)) as client:\n        print([t.name for t in (await client.list_tools()).tools])\n\nasyncio.run(main())"
    );
    render(
        &s,
        Some(p),
        &csrf.0,
        "skills_usage.html",
        StatusCode::OK,
        context! { d => d, chart => chart, mcp_url => mcp_url, python => python },
    )
}

// ---------------------------------------------------------------- platform operator

async fn review_page(s: &AppState, p: &Principal, csrf: &str, status: StatusCode, errors: Value, done: Option<String>) -> Response {
    let queue = match api::review_queue_for(s).await.map_err(ApiError::from) {
        Ok(q) => q,
        Err(e) => return page_error(s, Some(p), e),
    };
    let listed = match api::search_for(
        s,
        &SearchQuery {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .map_err(ApiError::from)
    {
        Ok(l) => l,
        Err(e) => return page_error(s, Some(p), e),
    };
    render(
        s,
        Some(p),
        csrf,
        "skills_review.html",
        status,
        context! { queue => queue, listed => listed, errors => errors, done => done },
    )
}

pub async fn review_queue(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    review_page(&s, p, &csrf.0, StatusCode::OK, Value::from(()), done_text(q.done.as_deref())).await
}

#[derive(Deserialize)]
pub struct ReviewForm {
    pub decision: Option<String>,
    pub comment: Option<String>,
}

pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<ReviewForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let r = ReviewRequest {
        decision: f.decision,
        comment: f.comment,
    };
    match api::review_for(&s, p, &id, &r).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/admin/skills?done=reviewed").into_response(),
        Err(e) => review_page(&s, p, &csrf.0, e.status, errors_ctx(&e), None).await,
    }
}

pub async fn refresh(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match api::refresh_for(&s, &id).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/admin/skills?done=refreshed").into_response(),
        Err(e) => review_page(&s, p, &csrf.0, e.status, errors_ctx(&e), None).await,
    }
}

#[derive(Deserialize)]
pub struct DelistForm {
    pub reason: Option<String>,
}

pub async fn delist(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(f): Form<DelistForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let reason = f.reason.unwrap_or_default();
    match api::delist_for(&s, p, &id, reason.trim()).await.map_err(ApiError::from) {
        Ok(_) if p.role() == opchub_domain::Role::PlatformOperator => Redirect::to("/admin/skills?done=delisted").into_response(),
        Ok(_) => Redirect::to("/my/skills?done=delisted").into_response(),
        Err(e) => review_page(&s, p, &csrf.0, e.status, errors_ctx(&e), None).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn yuan_to_fen() {
        assert_eq!(super::fen_of(Some("1.5")), Some(150));
        assert_eq!(super::fen_of(Some("")), Some(0));
        assert_eq!(super::fen_of(Some("0.05")), Some(5));
        assert_eq!(super::fen_of(Some("1.234")), None);
        assert_eq!(super::fen_of(Some("-1")), None);
    }
}
