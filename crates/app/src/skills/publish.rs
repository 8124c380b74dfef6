//! Publishing and review (M2.3): OPC founders publish skills and versions (automated checks run
//! at once; a version that fails them is refused and nothing is stored), the platform operator
//! reviews and delists.

use super::refusal;
use crate::{App, AppError, AppResult, ErrorKind, Principal};
use base64::Engine;
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use opchub_store::skills::{NewSkill, NewVersion, Skill, SkillVersion, CATEGORIES, KINDS};
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

fn unprocessable(f: &Finding) -> AppError {
    refusal(ErrorKind::Invalid, f)
}

/// Tools, endpoint, manifest, package (base64) and content hash of a checked version.
type Checked = (Vec<Tool>, Option<String>, Option<Value>, Option<String>, Option<String>);

/// The OpenAPI document of a version: inline, or fetched from `openapi_url` (not both).
/// Returns the text and the URL it came from.
async fn openapi_text(s: &App, r: &VersionRequest, passed: &mut Vec<&str>) -> AppResult<Option<(String, Option<String>)>> {
    let inline = r.openapi.as_deref().filter(|d| !d.trim().is_empty());
    let url = r.openapi_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    match (inline, url) {
        (Some(_), Some(_)) => Err(AppError::field("openapi_url", "skill_openapi_both")),
        (Some(doc), None) => Ok(Some((doc.to_string(), None))),
        (None, Some(url)) => {
            let text = super::fetch_openapi(s, url).await.map_err(|f| unprocessable(&f))?;
            passed.push("openapi_fetched");
            Ok(Some((text, Some(url.to_string()))))
        }
        (None, None) => Ok(None),
    }
}

/// Runs the automated review checks for a version of `kind` (M2.3): manifest and SKILL.md
/// validation, package limits, secret, injection and dangerous-script scans, the endpoint's
/// address rule and reachability, the tool list fetched and pinned.
pub async fn prepare_version(s: &App, kind: &str, homepage: Option<&str>, r: &VersionRequest) -> AppResult<Prepared> {
    let mut passed: Vec<&str> = Vec::new();
    let mut openapi_url = None;
    let (tools, endpoint, manifest, package_b64, content_hash): Checked = match kind {
        "mcp_server" => {
            let url = r.mcp_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
            let Some(url) = url else {
                return Err(AppError::field("mcp_url", "required"));
            };
            opchub_skills::net::check_resolved(url, s.skills.config.allow_private_upstreams)
                .await
                .map_err(|f| unprocessable(&f))?;
            passed.push("upstream_address");
            let tools = super::fetch_mcp_tools(s, url).await.map_err(|f| unprocessable(&f))?;
            passed.push("endpoint_reachable");
            (tools, Some(url.to_string()), None, None, None)
        }
        "http_tool" | "aigc_app" => match openapi_text(s, r, &mut passed).await? {
            None if kind == "http_tool" => return Err(AppError::field("openapi", "required")),
            None => {
                let h = homepage.unwrap_or("");
                (vec![], None, None, None, Some(opchub_skills::sha256_hex(h.as_bytes())))
            }
            Some((doc, url)) => {
                openapi_url = url;
                let d = super::parse_openapi(doc, r.operations.clone().unwrap_or_default())
                    .await
                    .map_err(|f| unprocessable(&f))?;
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
                return Err(AppError::field("package_base64", "required"));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| AppError::field("package_base64", "skill_not_base64"))?;
            let p = opchub_skills::package::inspect(&bytes, Default::default()).map_err(|f| unprocessable(&f))?;
            passed.extend(["package_limits", "paths", "skill_md", "secrets", "injection", "scripts"]);
            let m = serde_json::to_value(&p.manifest).unwrap_or(Value::Null);
            (vec![], None, Some(m), Some(b64.trim().to_string()), Some(p.content_hash))
        }
        _ => return Err(AppError::field("kind", "skill_unknown_kind")),
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
pub async fn publish_for(s: &App, p: &Principal, r: &PublishRequest) -> AppResult<Published> {
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
        return Err(AppError::checked(c));
    }
    let prepared = prepare_version(s, &kind, homepage, &r.version).await?;
    if slug.is_empty() {
        if let Some(n) = prepared.manifest.as_ref().and_then(|m| m["name"].as_str()) {
            slug = n.to_string();
        }
    }
    if slug.is_empty() || slug.len() > 40 || !opchub_skills::manifest::valid_name(&slug) {
        return Err(AppError::field("slug", "skill_invalid_slug"));
    }
    let party = super::party_of(s, &p.user.id).await?;
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

/// The skill, if the caller publishes it (others: not found).
async fn own_skill(s: &App, p: &Principal, id: &str) -> AppResult<Skill> {
    let skill = find_skill(s, id).await?;
    if skill.publisher_user_id == p.user.id {
        Ok(skill)
    } else {
        Err(AppError::not_found())
    }
}

/// A skill by id or slug.
pub async fn find_skill(s: &App, id: &str) -> AppResult<Skill> {
    match s.store.skill(id).await {
        Ok(sk) => Ok(sk),
        Err(opchub_store::StoreError::NotFound) => s.store.skill_by_slug(id).await?.ok_or_else(AppError::not_found),
        Err(e) => Err(e.into()),
    }
}

/// Adds a version to one of the caller's skills (JSON API and pages).
pub async fn add_version_for(s: &App, p: &Principal, id: &str, r: &VersionRequest) -> AppResult<SkillVersion> {
    let skill = own_skill(s, p, id).await?;
    let mut c = Checker::new();
    let (version, price) = check_version_fields(&mut c, r);
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    // Versions only grow (semver order).
    let new = semver::Version::parse(&version).map_err(|_| AppError::field("version", "skill_version_invalid"))?;
    let existing = s.store.skill_versions(&skill.id).await?;
    if existing
        .iter()
        .any(|v| semver::Version::parse(&v.version).is_ok_and(|old| old >= new))
    {
        return Err(AppError::field("version", "skill_version_not_greater"));
    }
    let prepared = prepare_version(s, &skill.kind, skill.homepage_url.as_deref(), r).await?;
    if let Some(n) = prepared.manifest.as_ref().and_then(|m| m["name"].as_str()) {
        if n != skill.slug {
            return Err(refusal(
                ErrorKind::Invalid,
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

pub async fn submit_for(s: &App, p: &Principal, version_id: &str) -> AppResult<SkillVersion> {
    let v = s.store.skill_version(version_id).await?;
    own_skill(s, p, &v.skill_id).await?;
    Ok(s.store.submit_skill_version(&p.actor(), version_id).await?)
}

#[derive(serde::Serialize, ToSchema)]
pub struct QueueEntry {
    pub skill: Skill,
    pub version: SkillVersion,
    /// The version that serves calls now, if any (to compare tools).
    pub live_version: Option<SkillVersion>,
}

pub async fn review_queue_for(s: &App) -> AppResult<Vec<QueueEntry>> {
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

// `SkillReviewRequest` in the OpenAPI document: the applications' review body is the schema
// named `ReviewRequest` there (before, this route was documented with that body).
#[derive(Deserialize, ToSchema)]
#[schema(as = SkillReviewRequest)]
pub struct ReviewRequest {
    /// `approve` or `reject`.
    pub decision: Option<String>,
    /// Required when rejecting; shown to the publisher.
    pub comment: Option<String>,
}

pub async fn review_for(s: &App, p: &Principal, version_id: &str, r: &ReviewRequest) -> AppResult<SkillVersion> {
    let approve = match r.decision.as_deref() {
        Some("approve") => true,
        Some("reject") => false,
        _ => return Err(AppError::field("decision", "skill_unknown_decision")),
    };
    let comment = r.comment.as_deref().unwrap_or("").trim().to_string();
    if !approve && comment.is_empty() {
        return Err(AppError::field("comment", "required"));
    }
    if comment.chars().count() > 2000 {
        return Err(AppError::field("comment", "too_long"));
    }
    let v = s.store.review_skill_version(&p.actor(), version_id, approve, &comment).await?;
    s.skills.invalidate();
    Ok(v)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DelistRequest {
    pub reason: Option<String>,
}

pub async fn delist_for(s: &App, p: &Principal, id: &str, reason: &str) -> AppResult<Skill> {
    let skill = match p.role() {
        Role::PlatformOperator => find_skill(s, id).await?,
        _ => own_skill(s, p, id).await?,
    };
    let out = s.store.delist_skill(&p.actor(), &skill.id, reason).await?;
    s.skills.invalidate();
    Ok(out)
}
