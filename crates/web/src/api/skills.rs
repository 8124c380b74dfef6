//! Skill Store API (M2.3): OPC founders publish skills and versions (automated checks run
//! at once; a version that fails them is refused and nothing is stored), the platform
//! operator reviews, everyone searches and reads listings with public counts, invokers
//! enable skills for `/mcp`, call them over plain HTTP, download Agent Skill packages and
//! rate what they used; dashboards for publishers and invokers.

use super::ApiJson;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::skills::{self, refusal, CallRequest, CallResult, RefreshResult, SearchQuery};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::event::{NewEvent, Origin};
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use opchub_store::ledger::{Item, Outcome};
use opchub_store::skills::{
    CallTotals, DailyCalls, NewSkill, NewVersion, Rating, Review, Skill, SkillCounts, SkillUse, SkillVersion, CATEGORIES, KINDS,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// Largest request to publish a package (the zip travels base64-encoded in JSON).
pub const MAX_PUBLISH_BODY: usize = 8 * 1024 * 1024;
pub const MAX_PRICE_FEN: i64 = 100_000_000;

#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct PublishRequest {
    /// The tools' namespace on `/mcp`: lowercase letters, digits, hyphens (≤ 40). Defaults to
    /// the SKILL.md name for packages.
    pub slug: Option<String>,
    pub name: Option<String>,
    pub summary: Option<String>,
    /// `mcp_server`, `http_tool`, `agent_skill`, `aigc_app`.
    pub kind: Option<String>,
    /// `agent_tool`, `aigc_production`, `vertical_plugin`.
    pub category: Option<String>,
    /// Industry tags.
    pub tags: Option<Vec<String>>,
    /// The web app of an AIGC application (required for `aigc_app`).
    pub homepage_url: Option<String>,
    #[serde(flatten)]
    pub version: VersionRequest,
}

#[derive(Deserialize, ToSchema, Default, Clone)]
pub struct VersionRequest {
    /// Semantic version, e.g. `1.0.0`; each new version must be greater than the last.
    pub version: Option<String>,
    /// Price per call in fen (0 = free).
    pub price_fen: Option<i64>,
    /// `mcp_server`: the Streamable HTTP URL of the publisher's MCP server.
    pub mcp_url: Option<String>,
    /// `http_tool` / `aigc_app`: an OpenAPI 3 document (JSON or YAML).
    pub openapi: Option<String>,
    /// `http_tool` / `aigc_app`, instead of `openapi`: the URL the document is served at. The
    /// platform fetches it now and again at every periodic refresh; a changed tool list is a
    /// rug pull (M2.3).
    pub openapi_url: Option<String>,
    /// The operations (operationId) to offer as tools; all when absent.
    pub operations: Option<Vec<String>>,
    /// `agent_skill`: the zip of the skill folder, base64.
    pub package_base64: Option<String>,
    /// Submit for review at once (otherwise the version stays a draft).
    #[serde(default)]
    pub submit: bool,
}

/// What the automated checks produced for a version.
pub struct Prepared {
    pub content_hash: String,
    pub endpoint_url: Option<String>,
    pub openapi_url: Option<String>,
    pub tools: Value,
    pub tools_hash: String,
    pub manifest: Option<Value>,
    pub package_b64: Option<String>,
    pub checks: Value,
}

fn unprocessable(f: &Finding) -> ApiError {
    refusal(StatusCode::UNPROCESSABLE_ENTITY, f)
}

/// Tools, endpoint, manifest, package (base64) and content hash of a checked version.
type Checked = (Vec<Tool>, Option<String>, Option<Value>, Option<String>, Option<String>);

/// The OpenAPI document of a version: inline, or fetched from `openapi_url` (not both).
/// Returns the text and the URL it came from.
async fn openapi_text(s: &AppState, r: &VersionRequest, passed: &mut Vec<&str>) -> ApiResult<Option<(String, Option<String>)>> {
    let inline = r.openapi.as_deref().filter(|d| !d.trim().is_empty());
    let url = r.openapi_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    match (inline, url) {
        (Some(_), Some(_)) => Err(ApiError::field("openapi_url", "skill_openapi_both")),
        (Some(doc), None) => Ok(Some((doc.to_string(), None))),
        (None, Some(url)) => {
            let text = skills::fetch_openapi(s, url).await.map_err(|f| unprocessable(&f))?;
            passed.push("openapi_fetched");
            Ok(Some((text, Some(url.to_string()))))
        }
        (None, None) => Ok(None),
    }
}

/// Runs the automated review checks for a version of `kind` (M2.3): manifest and SKILL.md
/// validation, package limits, secret, injection and dangerous-script scans, the endpoint's
/// address rule and reachability, the tool list fetched and pinned.
pub async fn prepare_version(s: &AppState, kind: &str, homepage: Option<&str>, r: &VersionRequest) -> ApiResult<Prepared> {
    let mut passed: Vec<&str> = Vec::new();
    let mut openapi_url = None;
    let (tools, endpoint, manifest, package_b64, content_hash): Checked = match kind {
        "mcp_server" => {
            let url = r.mcp_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
            let Some(url) = url else {
                return Err(ApiError::field("mcp_url", "required"));
            };
            opchub_skills::net::check_resolved(url, s.skills.config.allow_private_upstreams)
                .await
                .map_err(|f| unprocessable(&f))?;
            passed.push("upstream_address");
            let tools = skills::fetch_mcp_tools(s, url).await.map_err(|f| unprocessable(&f))?;
            passed.push("endpoint_reachable");
            (tools, Some(url.to_string()), None, None, None)
        }
        "http_tool" | "aigc_app" => match openapi_text(s, r, &mut passed).await? {
            None if kind == "http_tool" => return Err(ApiError::field("openapi", "required")),
            None => {
                let h = homepage.unwrap_or("");
                (vec![], None, None, None, Some(opchub_skills::sha256_hex(h.as_bytes())))
            }
            Some((doc, url)) => {
                openapi_url = url;
                let d = opchub_skills::openapi::parse(&doc, r.operations.as_deref().unwrap_or(&[])).map_err(|f| unprocessable(&f))?;
                passed.push("openapi_parsed");
                opchub_skills::net::check_resolved(&d.base_url, s.skills.config.allow_private_upstreams)
                    .await
                    .map_err(|f| unprocessable(&f))?;
                passed.push("upstream_address");
                (d.tools, Some(d.base_url), None, None, None)
            }
        },
        "agent_skill" => {
            let Some(b64) = r.package_base64.as_deref().filter(|p| !p.is_empty()) else {
                return Err(ApiError::field("package_base64", "required"));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| ApiError::field("package_base64", "skill_not_base64"))?;
            let p = opchub_skills::package::inspect(&bytes, Default::default()).map_err(|f| unprocessable(&f))?;
            passed.extend(["package_limits", "paths", "skill_md", "secrets", "injection", "scripts"]);
            let m = serde_json::to_value(&p.manifest).unwrap_or(Value::Null);
            (vec![], None, Some(m), Some(b64.trim().to_string()), Some(p.content_hash))
        }
        _ => return Err(ApiError::field("kind", "skill_unknown_kind")),
    };
    if !tools.is_empty() || kind == "mcp_server" || kind == "http_tool" {
        opchub_skills::tools::check(&tools).map_err(|f| unprocessable(&f))?;
        passed.extend(["tool_names", "tool_descriptions"]);
    }
    let (canonical, tools_hash) = opchub_skills::tools::canonical(&tools);
    let content_hash = content_hash.unwrap_or_else(|| {
        // Remote tools: the canonical list with where it is served.
        let v = json!({"endpoint": endpoint, "tools": canonical});
        opchub_skills::sha256_hex(opchub_skills::tools::canonical_json(&v).as_bytes())
    });
    let checks = json!({
        "passed": passed,
        "tool_count": tools.len(),
        "tools_hash": tools_hash,
        "checked_at": opchub_store::now_ms(),
    });
    Ok(Prepared {
        content_hash,
        endpoint_url: endpoint,
        openapi_url,
        tools: canonical,
        tools_hash,
        manifest,
        package_b64,
        checks,
    })
}

fn check_version_fields(c: &mut Checker, r: &VersionRequest) -> (String, i64) {
    let version = r.version.as_deref().map(str::trim).unwrap_or("").to_string();
    if version.is_empty() {
        c.errors.insert("version".into(), "required".into());
    } else if semver::Version::parse(&version).is_err() || version.len() > 64 {
        c.errors.insert("version".into(), "skill_version_invalid".into());
    }
    let price = r.price_fen.unwrap_or(0);
    if !(0..=MAX_PRICE_FEN).contains(&price) {
        c.errors.insert("price_fen".into(), "out_of_range".into());
    }
    (version, price)
}

#[derive(serde::Serialize, ToSchema)]
pub struct Published {
    pub skill: Skill,
    pub version: SkillVersion,
}

/// Validates, checks and stores a new skill with its first version (JSON API and pages).
pub async fn publish_for(s: &AppState, p: &Principal, r: &PublishRequest) -> ApiResult<Published> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 1, 80);
    let summary = c.text("summary", r.summary.as_deref(), 1, 1000);
    let kind = r.kind.as_deref().unwrap_or("").trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        c.errors.insert("kind".into(), "skill_unknown_kind".into());
    }
    let category = r.category.as_deref().unwrap_or("").trim().to_string();
    if !CATEGORIES.contains(&category.as_str()) {
        c.errors.insert("category".into(), "skill_unknown_category".into());
    }
    let tags: Vec<String> = r
        .tags
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.len() > 10 || tags.iter().any(|t| t.chars().count() > 30) {
        c.errors.insert("tags".into(), "skill_invalid_tags".into());
    }
    let homepage = r.homepage_url.as_deref().map(str::trim).filter(|h| !h.is_empty());
    if let Some(h) = homepage {
        if opchub_skills::net::parse_upstream(h).is_err() {
            c.errors.insert("homepage_url".into(), "invalid_url".into());
        }
    } else if kind == "aigc_app" {
        c.errors.insert("homepage_url".into(), "required".into());
    }
    let (version, price) = check_version_fields(&mut c, &r.version);
    let mut slug = r.slug.as_deref().map(str::trim).unwrap_or("").to_string();
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    let prepared = prepare_version(s, &kind, homepage, &r.version).await?;
    if slug.is_empty() {
        if let Some(n) = prepared.manifest.as_ref().and_then(|m| m["name"].as_str()) {
            slug = n.to_string();
        }
    }
    if slug.is_empty() || slug.len() > 40 || !opchub_skills::manifest::valid_name(&slug) {
        return Err(ApiError::field("slug", "skill_invalid_slug"));
    }
    let party = skills::party_of(s, &p.user.id).await?;
    let (skill, v) = s
        .store
        .create_skill(
            &p.actor(),
            NewSkill {
                slug: &slug,
                name: &name,
                summary: &summary,
                kind: &kind,
                category: &category,
                tags: &tags,
                homepage_url: homepage,
                publisher_user_id: &p.user.id,
                publisher_party: &party,
            },
            new_version(&version, price, &prepared),
        )
        .await?;
    let v = if r.version.submit {
        s.store.submit_skill_version(&p.actor(), &v.id).await?
    } else {
        v
    };
    Ok(Published { skill, version: v })
}

fn new_version<'a>(version: &'a str, price: i64, p: &'a Prepared) -> NewVersion<'a> {
    NewVersion {
        version,
        content_hash: &p.content_hash,
        price_fen: price,
        endpoint_url: p.endpoint_url.as_deref(),
        openapi_url: p.openapi_url.as_deref(),
        tools: &p.tools,
        tools_hash: &p.tools_hash,
        manifest: p.manifest.as_ref(),
        package_b64: p.package_b64.as_deref(),
        checks: &p.checks,
    }
}

#[utoipa::path(post, path = "/api/v1/skills", tag = "skills", request_body = PublishRequest,
    responses((status = 201, body = Published), (status = 409), (status = 422)))]
pub async fn publish(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<PublishRequest>) -> ApiResult<Response> {
    let p = caller.require()?;
    let out = publish_for(&s, p, &r).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// The skill, if the caller publishes it (others: not found).
async fn own_skill(s: &AppState, p: &Principal, id: &str) -> ApiResult<Skill> {
    let skill = find_skill(s, id).await?;
    if skill.publisher_user_id == p.user.id {
        Ok(skill)
    } else {
        Err(ApiError::not_found())
    }
}

/// A skill by id or slug.
pub async fn find_skill(s: &AppState, id: &str) -> ApiResult<Skill> {
    match s.store.skill(id).await {
        Ok(sk) => Ok(sk),
        Err(opchub_store::StoreError::NotFound) => s.store.skill_by_slug(id).await?.ok_or_else(ApiError::not_found),
        Err(e) => Err(e.into()),
    }
}

/// Adds a version to one of the caller's skills (JSON API and pages).
pub async fn add_version_for(s: &AppState, p: &Principal, id: &str, r: &VersionRequest) -> ApiResult<SkillVersion> {
    let skill = own_skill(s, p, id).await?;
    let mut c = Checker::new();
    let (version, price) = check_version_fields(&mut c, r);
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    // Versions only grow (semver order).
    let new = semver::Version::parse(&version).map_err(|_| ApiError::field("version", "skill_version_invalid"))?;
    let existing = s.store.skill_versions(&skill.id).await?;
    if existing
        .iter()
        .any(|v| semver::Version::parse(&v.version).is_ok_and(|old| old >= new))
    {
        return Err(ApiError::field("version", "skill_version_not_greater"));
    }
    let prepared = prepare_version(s, &skill.kind, skill.homepage_url.as_deref(), r).await?;
    if let Some(n) = prepared.manifest.as_ref().and_then(|m| m["name"].as_str()) {
        if n != skill.slug {
            return Err(refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Finding::new("manifest_name_mismatch", format!("{n} ≠ {}", skill.slug)),
            ));
        }
    }
    let v = s
        .store
        .add_skill_version(&p.actor(), &skill.id, new_version(&version, price, &prepared))
        .await?;
    if r.submit {
        return Ok(s.store.submit_skill_version(&p.actor(), &v.id).await?);
    }
    Ok(v)
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/versions", tag = "skills", params(("id" = String, Path)), request_body = VersionRequest,
    responses((status = 201, body = SkillVersion), (status = 404), (status = 409), (status = 422)))]
pub async fn add_version(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<VersionRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let v = add_version_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn submit_for(s: &AppState, p: &Principal, version_id: &str) -> ApiResult<SkillVersion> {
    let v = s.store.skill_version(version_id).await?;
    own_skill(s, p, &v.skill_id).await?;
    Ok(s.store.submit_skill_version(&p.actor(), version_id).await?)
}

#[utoipa::path(post, path = "/api/v1/skill-versions/{id}/submit", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, body = SkillVersion), (status = 404), (status = 409)))]
pub async fn submit(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<SkillVersion>> {
    let p = caller.require()?;
    Ok(Json(submit_for(&s, p, &id).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct QueueEntry {
    pub skill: Skill,
    pub version: SkillVersion,
    /// The version that serves calls now, if any (to compare tools).
    pub live_version: Option<SkillVersion>,
}

pub async fn review_queue_for(s: &AppState) -> ApiResult<Vec<QueueEntry>> {
    let mut out = Vec::new();
    for v in s.store.skill_review_queue().await? {
        let skill = s.store.skill(&v.skill_id).await?;
        let live = match &skill.live_version_id {
            Some(l) => Some(s.store.skill_version(l).await?),
            None => None,
        };
        out.push(QueueEntry {
            skill,
            version: v,
            live_version: live,
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/skill-reviews", tag = "skills", responses((status = 200, body = [QueueEntry])))]
pub async fn review_queue(State(s): State<AppState>) -> ApiResult<Json<Vec<QueueEntry>>> {
    Ok(Json(review_queue_for(&s).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ReviewRequest {
    /// `approve` or `reject`.
    pub decision: Option<String>,
    /// Required when rejecting; shown to the publisher.
    pub comment: Option<String>,
}

pub async fn review_for(s: &AppState, p: &Principal, version_id: &str, r: &ReviewRequest) -> ApiResult<SkillVersion> {
    let approve = match r.decision.as_deref() {
        Some("approve") => true,
        Some("reject") => false,
        _ => return Err(ApiError::field("decision", "skill_unknown_decision")),
    };
    let comment = r.comment.as_deref().unwrap_or("").trim().to_string();
    if !approve && comment.is_empty() {
        return Err(ApiError::field("comment", "required"));
    }
    if comment.chars().count() > 2000 {
        return Err(ApiError::field("comment", "too_long"));
    }
    let v = s.store.review_skill_version(&p.actor(), version_id, approve, &comment).await?;
    s.skills.invalidate();
    Ok(v)
}

#[utoipa::path(post, path = "/api/v1/skill-versions/{id}/review", tag = "skills", params(("id" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = SkillVersion), (status = 404), (status = 409), (status = 422)))]
pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReviewRequest>,
) -> ApiResult<Json<SkillVersion>> {
    let p = caller.require()?;
    Ok(Json(review_for(&s, p, &id, &r).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DelistRequest {
    pub reason: Option<String>,
}

pub async fn delist_for(s: &AppState, p: &Principal, id: &str, reason: &str) -> ApiResult<Skill> {
    let skill = match p.role() {
        Role::PlatformOperator => find_skill(s, id).await?,
        _ => own_skill(s, p, id).await?,
    };
    let out = s.store.delist_skill(&p.actor(), &skill.id, reason).await?;
    s.skills.invalidate();
    Ok(out)
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/delist", tag = "skills", params(("id" = String, Path)), request_body = DelistRequest,
    responses((status = 200, body = Skill), (status = 404), (status = 409)))]
pub async fn delist(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<DelistRequest>,
) -> ApiResult<Json<Skill>> {
    let p = caller.require()?;
    let reason = r.reason.unwrap_or_default();
    Ok(Json(delist_for(&s, p, &id, reason.trim()).await?))
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/refresh", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, body = RefreshResult), (status = 404), (status = 410)))]
pub async fn refresh(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RefreshResult>> {
    let skill = find_skill(&s, &id).await?;
    Ok(Json(skills::refresh_skill(&s, &skill).await?))
}

// ---------------------------------------------------------------- discovery

#[derive(serde::Serialize, ToSchema)]
pub struct Listing {
    pub skill: Skill,
    pub counts: SkillCounts,
    pub version: Option<String>,
    pub price_fen: Option<i64>,
}

pub async fn search_for(s: &AppState, q: &SearchQuery) -> ApiResult<Vec<Listing>> {
    let hits = s.skills.search(&s.store, q).await?;
    let prices = s.skills.prices(&s.store).await?;
    Ok(hits
        .into_iter()
        .map(|(skill, counts)| {
            let p = prices.get(&skill.id);
            Listing {
                version: p.map(|x| x.0.clone()),
                price_fen: p.map(|x| x.1),
                skill,
                counts,
            }
        })
        .collect())
}

#[utoipa::path(get, path = "/api/v1/skills", tag = "skills", params(SearchQuery), responses((status = 200, body = [Listing])))]
pub async fn search(State(s): State<AppState>, Query(q): Query<SearchQuery>) -> ApiResult<Json<Vec<Listing>>> {
    Ok(Json(search_for(&s, &q).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct Detail {
    pub skill: Skill,
    pub live_version: Option<SkillVersion>,
    /// Public: approved and delisted versions; the publisher and the platform operator see all.
    pub versions: Vec<SkillVersion>,
    pub counts: SkillCounts,
    pub ratings: Vec<Rating>,
    /// Review decisions (publisher and platform operator only).
    pub reviews: Vec<Review>,
    pub publisher_name: String,
    /// Whether the caller enabled it for `/mcp`.
    pub enabled: bool,
    /// Tool names as they appear on `/mcp`.
    pub mcp_tool_names: Vec<String>,
}

pub async fn detail_for(s: &AppState, p: Option<&Principal>, id: &str) -> ApiResult<Detail> {
    let skill = find_skill(s, id).await?;
    let insider = p.is_some_and(|p| p.user.id == skill.publisher_user_id || p.role() == Role::PlatformOperator);
    if skill.live_version_id.is_none() && !insider {
        // Never-approved skills are the publisher's business.
        let any_public = s.store.skill_versions(&skill.id).await?.iter().any(|v| v.status == "delisted");
        if !any_public {
            return Err(ApiError::not_found());
        }
    }
    let mut versions = s.store.skill_versions(&skill.id).await?;
    if !insider {
        versions.retain(|v| v.status == "approved" || v.status == "delisted");
        for v in &mut versions {
            v.checks = Value::Null;
        }
    }
    let live_version = versions.iter().find(|v| Some(&v.id) == skill.live_version_id.as_ref()).cloned();
    let counts = s.skills.counts(&s.store).await?.get(&skill.id).cloned().unwrap_or_default();
    let reviews = if insider { s.store.skill_reviews(&skill.id).await? } else { vec![] };
    let publisher = s.store.user(&skill.publisher_user_id).await?;
    let publisher_name = match s.store.opc_of_founder(&publisher.id).await? {
        Some(o) => o.name,
        None => publisher.display_name,
    };
    let enabled = match p {
        Some(p) => s.store.skill_enabled_ids(&p.user.id).await?.contains(&skill.id),
        None => false,
    };
    let mcp_tool_names = live_version
        .as_ref()
        .map(|v| {
            skills::pinned_tools(v)
                .iter()
                .map(|t| format!("{}{}{}", skill.slug, skills::NS, t.name))
                .collect()
        })
        .unwrap_or_default();
    Ok(Detail {
        ratings: s.store.skill_ratings(&skill.id).await?,
        skill,
        live_version,
        versions,
        counts,
        reviews,
        publisher_name,
        enabled,
        mcp_tool_names,
    })
}

#[utoipa::path(get, path = "/api/v1/skills/{id}", tag = "skills", params(("id" = String, Path, description = "id or slug")),
    responses((status = 200, body = Detail), (status = 404)))]
pub async fn detail(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Detail>> {
    Ok(Json(detail_for(&s, caller.0.as_ref(), &id).await?))
}

// ---------------------------------------------------------------- invokers

#[derive(Deserialize, ToSchema)]
pub struct EnableRequest {
    pub enabled: bool,
}

pub async fn set_enabled_for(s: &AppState, p: &Principal, id: &str, enabled: bool) -> ApiResult<()> {
    let skill = find_skill(s, id).await?;
    if enabled {
        skills::live_version(&s.store, &skill).await?;
    }
    s.store.set_skill_enabled(&p.user.id, &skill.id, enabled).await?;
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/skills/{id}/enabled", tag = "skills", params(("id" = String, Path)), request_body = EnableRequest,
    responses((status = 200), (status = 404), (status = 410)))]
pub async fn set_enabled(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<EnableRequest>,
) -> ApiResult<Json<Value>> {
    let p = caller.require()?;
    set_enabled_for(&s, p, &id, r.enabled).await?;
    Ok(Json(json!({ "enabled": r.enabled })))
}

#[derive(Deserialize, ToSchema)]
pub struct InvokeRequest {
    pub tool: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: Option<serde_json::Map<String, Value>>,
}

/// Calls a tool of a listed skill. `Idempotency-Key` makes a retry count once (M2.3);
/// without it every request is a new call.
#[utoipa::path(post, path = "/api/v1/skills/{id}/invoke", tag = "skills", params(("id" = String, Path)), request_body = InvokeRequest,
    responses((status = 200, body = CallResult), (status = 404), (status = 410), (status = 422), (status = 502)))]
pub async fn invoke(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<InvokeRequest>,
) -> ApiResult<Json<CallResult>> {
    let p = caller.require()?;
    let skill = find_skill(&s, &id).await?;
    let tool = r.tool.as_deref().map(str::trim).unwrap_or("");
    if tool.is_empty() {
        return Err(ApiError::field("tool", "required"));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(|k| format!("http:{k}"))
        .unwrap_or_else(|| format!("http:{}", opchub_store::new_id()));
    let res = skills::call(
        &s,
        p,
        CallRequest {
            skill: &skill,
            tool,
            arguments: r.arguments.unwrap_or_default(),
            request: key,
            rpc_id: "-".into(),
        },
    )
    .await?;
    Ok(Json(res))
}

/// The Agent Skill package, downloaded with the invoker's key: one `skill.install` per
/// invoker per version (M2.3).
#[utoipa::path(get, path = "/api/v1/skills/{id}/package", tag = "skills", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/zip"), (status = 404), (status = 410)))]
pub async fn package(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let p = caller.require()?;
    let skill = find_skill(&s, &id).await?;
    let v = skills::live_version(&s.store, &skill).await?;
    let b64 = s
        .store
        .skill_package(&v.id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "skill_no_package"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| ApiError::internal())?;
    let party = skills::party_of(&s, &p.user.id).await?;
    let ledger = s
        .ledger
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"))?;
    let key = opchub_skills::sha256_hex(format!("install\n{}\n{}", p.user.id, v.id).as_bytes());
    let self_dealing = party == skill.publisher_party || p.user.id == skill.publisher_user_id;
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("skill".to_string(), skill.slug.clone());
    attributes.insert("version".to_string(), v.version.clone());
    attributes.insert("version_hash".to_string(), v.content_hash.clone());
    attributes.insert("publisher".to_string(), skill.publisher_party.clone());
    attributes.insert("invoker".to_string(), party.clone());
    attributes.insert("qualified".to_string(), (!self_dealing && skill.drifted_at.is_none()).to_string());
    let event = NewEvent {
        source: skills::SOURCE.into(),
        source_event_id: key,
        kind: "skill.install".into(),
        subject: party.clone(),
        counterparty: skill.publisher_party.clone(),
        quantity: 1,
        unit: "install".into(),
        list_fen: 0,
        charged_fen: 0,
        price_version: String::new(),
        occurred_at_ms: opchub_store::now_ms(),
        origin: Origin::Observed,
        attributes,
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    };
    let leaf = match ledger.append(vec![Item::Event(event)]).await?.into_iter().next() {
        Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => Some(r.leaf_index),
        _ => None,
    };
    s.store.record_skill_install(&v.id, &p.user.id, &party, leaf).await?;
    // The public install count changed.
    s.skills.invalidate_counts();
    let name = format!("attachment; filename=\"{}-{}.zip\"", skill.slug, v.version);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct RateRequest {
    /// 1 to 5.
    pub stars: Option<i64>,
    pub comment: Option<String>,
}

pub async fn rate_for(s: &AppState, p: &Principal, id: &str, r: &RateRequest) -> ApiResult<Rating> {
    let skill = find_skill(s, id).await?;
    let stars = r.stars.unwrap_or(0);
    if !(1..=5).contains(&stars) {
        return Err(ApiError::field("stars", "out_of_range"));
    }
    let comment = r.comment.as_deref().unwrap_or("").trim().to_string();
    if comment.chars().count() > 1000 {
        return Err(ApiError::field("comment", "too_long"));
    }
    // Only invokers who actually called (or installed) the skill may rate it (M2.3).
    if skill.publisher_user_id == p.user.id || !s.store.has_called_skill(&skill.id, &p.user.id).await? {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "skill_not_used"));
    }
    let out = s.store.rate_skill(&skill.id, &p.user.id, stars, &comment).await?;
    s.skills.invalidate();
    Ok(out)
}

#[utoipa::path(post, path = "/api/v1/skills/{id}/ratings", tag = "skills", params(("id" = String, Path)), request_body = RateRequest,
    responses((status = 201, body = Rating), (status = 403), (status = 404), (status = 422)))]
pub async fn rate(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RateRequest>,
) -> ApiResult<Response> {
    let p = caller.require()?;
    let out = rate_for(&s, p, &id, &r).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

// ---------------------------------------------------------------- dashboards

#[derive(serde::Serialize, ToSchema)]
pub struct MySkill {
    pub skill: Skill,
    pub versions: Vec<SkillVersion>,
    pub reviews: Vec<Review>,
    pub counts: SkillCounts,
}

#[derive(serde::Serialize, ToSchema)]
pub struct PublisherDashboard {
    /// Since this day (30 days back).
    pub from_day: String,
    pub totals: CallTotals,
    pub daily: Vec<DailyCalls>,
    pub by_skill: Vec<SkillUse>,
    pub skills: Vec<MySkill>,
}

fn from_day() -> String {
    opchub_store::skills::call_day(opchub_store::now_ms() - 29 * 86_400_000)
}

pub async fn publisher_dashboard_for(s: &AppState, p: &Principal) -> ApiResult<PublisherDashboard> {
    let party = skills::party_of(s, &p.user.id).await?;
    let from = from_day();
    let counts = s.skills.counts(&s.store).await?;
    let mut mine = Vec::new();
    for skill in s.store.skills_of_publisher(&p.user.id).await? {
        mine.push(MySkill {
            versions: s.store.skill_versions(&skill.id).await?,
            reviews: s.store.skill_reviews(&skill.id).await?,
            counts: counts.get(&skill.id).cloned().unwrap_or_default(),
            skill,
        });
    }
    Ok(PublisherDashboard {
        totals: s.store.skill_call_totals(&party, false, &from).await?,
        daily: s.store.skill_calls_daily(&party, false, &from).await?,
        by_skill: s.store.skill_use_by_skill(&party, false, &from).await?,
        from_day: from,
        skills: mine,
    })
}

#[utoipa::path(get, path = "/api/v1/my/skills", tag = "skills", responses((status = 200, body = PublisherDashboard)))]
pub async fn publisher_dashboard(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<PublisherDashboard>> {
    let p = caller.require()?;
    Ok(Json(publisher_dashboard_for(&s, p).await?))
}

#[derive(serde::Serialize, ToSchema)]
pub struct InvokerDashboard {
    pub from_day: String,
    /// Spend is `amount_fen`.
    pub totals: CallTotals,
    pub daily: Vec<DailyCalls>,
    pub by_skill: Vec<SkillUse>,
    /// Skills enabled for `/mcp`.
    pub enabled: Vec<Skill>,
}

pub async fn invoker_dashboard_for(s: &AppState, p: &Principal) -> ApiResult<InvokerDashboard> {
    let party = skills::party_of(s, &p.user.id).await?;
    let from = from_day();
    Ok(InvokerDashboard {
        totals: s.store.skill_call_totals(&party, true, &from).await?,
        daily: s.store.skill_calls_daily(&party, true, &from).await?,
        by_skill: s.store.skill_use_by_skill(&party, true, &from).await?,
        enabled: s.store.enabled_skills(&p.user.id).await?.into_iter().map(|(sk, _)| sk).collect(),
        from_day: from,
    })
}

#[utoipa::path(get, path = "/api/v1/my/skill-usage", tag = "skills", responses((status = 200, body = InvokerDashboard)))]
pub async fn invoker_dashboard(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<InvokerDashboard>> {
    let p = caller.require()?;
    Ok(Json(invoker_dashboard_for(&s, p).await?))
}
