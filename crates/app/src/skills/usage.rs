//! Discovery, invokers and dashboards (M2.3): search and listings with public counts, enabling
//! skills for `/mcp`, calls over plain HTTP, Agent Skill packages (`skill.install`), ratings,
//! and the publishers' and invokers' dashboards.

use super::publish::find_skill;
use super::SkillError;
use super::{CallRequest, CallResult, RefreshResult, SearchQuery};
use crate::ledger::LedgerError;
use crate::{App, AppError, AppResult, Principal};
use base64::Engine;
use opchub_domain::Role;
use opchub_store::ledger::{Item, Outcome};
use opchub_store::skills::{CallTotals, DailyCalls, Rating, Review, Skill, SkillCounts, SkillUse, SkillVersion};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

// ---------------------------------------------------------------- discovery

#[derive(serde::Serialize, ToSchema)]
pub struct Listing {
    pub skill: Skill,
    pub counts: SkillCounts,
    pub version: Option<String>,
    pub price_fen: Option<i64>,
}

pub async fn search_for(s: &App, q: &SearchQuery) -> AppResult<Vec<Listing>> {
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

pub async fn detail_for(s: &App, p: Option<&Principal>, id: &str) -> AppResult<Detail> {
    let skill = find_skill(s, id).await?;
    let insider = p.is_some_and(|p| p.user.id == skill.publisher_user_id || p.role() == Role::PlatformOperator);
    if skill.live_version_id.is_none() && !insider {
        // Never-approved skills are the publisher's business.
        let any_public = s.store.skill_versions(&skill.id).await?.iter().any(|v| v.status == "delisted");
        if !any_public {
            return Err(AppError::not_found());
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
            super::pinned_tools(v)
                .iter()
                .map(|t| format!("{}{}{}", skill.slug, super::NS, t.name))
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

// ---------------------------------------------------------------- invokers

#[derive(Deserialize, ToSchema)]
pub struct EnableRequest {
    pub enabled: bool,
}

pub async fn set_enabled_for(s: &App, p: &Principal, id: &str, enabled: bool) -> AppResult<()> {
    let skill = find_skill(s, id).await?;
    if enabled {
        super::live_version(&s.store, &skill).await?;
    }
    s.store.set_skill_enabled(&p.user.id, &skill.id, enabled).await?;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct InvokeRequest {
    pub tool: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize, ToSchema)]
pub struct RateRequest {
    /// 1 to 5.
    pub stars: Option<i64>,
    pub comment: Option<String>,
}

pub async fn rate_for(s: &App, p: &Principal, id: &str, r: &RateRequest) -> AppResult<Rating> {
    let skill = find_skill(s, id).await?;
    let stars = r.stars.unwrap_or(0);
    if !(1..=5).contains(&stars) {
        return Err(AppError::field("stars", "out_of_range"));
    }
    let comment = r.comment.as_deref().unwrap_or("").trim().to_string();
    if comment.chars().count() > 1000 {
        return Err(AppError::field("comment", "too_long"));
    }
    // Only invokers who actually called (or installed) the skill may rate it (M2.3).
    if skill.publisher_user_id == p.user.id || !s.store.has_called_skill(&skill.id, &p.user.id).await? {
        return Err(SkillError::NotUsed.into());
    }
    let out = s.store.rate_skill(&skill.id, &p.user.id, stars, &comment).await?;
    s.skills.invalidate();
    Ok(out)
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

pub async fn publisher_dashboard_for(s: &App, p: &Principal) -> AppResult<PublisherDashboard> {
    let party = super::party_of(s, &p.user.id).await?;
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

pub async fn invoker_dashboard_for(s: &App, p: &Principal) -> AppResult<InvokerDashboard> {
    let party = super::party_of(s, &p.user.id).await?;
    let from = from_day();
    Ok(InvokerDashboard {
        totals: s.store.skill_call_totals(&party, true, &from).await?,
        daily: s.store.skill_calls_daily(&party, true, &from).await?,
        by_skill: s.store.skill_use_by_skill(&party, true, &from).await?,
        enabled: s.store.enabled_skills(&p.user.id).await?.into_iter().map(|(sk, _)| sk).collect(),
        from_day: from,
    })
}

/// Re-fetches one skill's remote tools now (the platform operator's button; rug pull, M2.3).
pub async fn refresh_for(s: &App, id: &str) -> AppResult<RefreshResult> {
    let skill = find_skill(s, id).await?;
    super::refresh_skill(s, &skill).await
}

/// Calls a tool of a listed skill over plain HTTP. `idempotency_key` makes a retry count once
/// (M2.3); without it every request is a new call.
pub async fn invoke_for(s: &App, p: &Principal, id: &str, r: InvokeRequest, idempotency_key: Option<&str>) -> AppResult<CallResult> {
    let skill = find_skill(s, id).await?;
    let tool = r.tool.as_deref().map(str::trim).unwrap_or("");
    if tool.is_empty() {
        return Err(AppError::field("tool", "required"));
    }
    let key = idempotency_key
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(|k| format!("http:{k}"))
        .unwrap_or_else(|| format!("http:{}", opchub_store::new_id()));
    super::call(
        s,
        p,
        CallRequest {
            skill: &skill,
            tool,
            arguments: r.arguments.unwrap_or_default(),
            request: key,
            rpc_id: "-".into(),
        },
    )
    .await
}

/// An Agent Skill package as downloaded: its file name and the zip.
pub struct Package {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// The Agent Skill package, downloaded with the invoker's key: one `skill.install` per
/// invoker per version (M2.3).
pub async fn package_for(s: &App, p: &Principal, id: &str) -> AppResult<Package> {
    let skill = find_skill(s, id).await?;
    let v = super::live_version(&s.store, &skill).await?;
    let b64 = s
        .store
        .skill_package(&v.id)
        .await?
        .ok_or_else(|| AppError::from(SkillError::NoPackage))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| AppError::internal())?;
    let party = super::party_of(s, &p.user.id).await?;
    let ledger = s.ledger.clone().ok_or_else(|| AppError::from(LedgerError::Unavailable))?;
    let key = opchub_skills::sha256_hex(format!("install\n{}\n{}", p.user.id, v.id).as_bytes());
    let event = opchub_ledger::metering::skill_install(&opchub_ledger::metering::SkillInstall {
        install_key: &key,
        invoker_party: &party,
        publisher_party: &skill.publisher_party,
        skill_slug: &skill.slug,
        version: &v.version,
        version_hash: &v.content_hash,
        // Related parties (issue 18 item 1) install from themselves too.
        self_dealing: opchub_ledger::metering::self_dealing(&party, &p.user.id, &skill.publisher_party, &skill.publisher_user_id)
            || crate::persons::related_between(s, &party, &skill.publisher_party).await?.is_some(),
        drifted: skill.drifted_at.is_some(),
        occurred_at_ms: opchub_store::now_ms(),
    });
    let leaf = match ledger.append(vec![Item::Event(event)]).await?.into_iter().next() {
        Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => Some(r.leaf_index),
        _ => None,
    };
    s.store.record_skill_install(&v.id, &p.user.id, &party, leaf).await?;
    // The public install count changed.
    s.skills.invalidate_counts();
    Ok(Package {
        filename: format!("{}-{}.zip", skill.slug, v.version),
        bytes,
    })
}

// ---------------------------------------------------------------- the invoker's /mcp endpoint

/// One tool of an enabled skill as `/mcp` lists it: `{skill}__{tool}`.
pub struct EnabledTool {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: Value,
}

/// The tools of every skill the caller enabled, each version's pinned tools; a skill whose
/// publisher's server changed since review says so, as its calls are not qualified (M2.3).
pub async fn enabled_tools(app: &App, p: &Principal) -> AppResult<Vec<EnabledTool>> {
    let mut tools = Vec::new();
    // A key limited to some skills lists only those (issue 19 item 1).
    let allowed = match &p.via {
        crate::Via::ApiKey { key_id, .. } => app.store.key_limits(key_id).await?.allowed_skills,
        _ => vec![],
    };
    for (skill, version) in app.store.enabled_skills(&p.user.id).await? {
        if !allowed.is_empty() && !allowed.contains(&skill.slug) {
            continue;
        }
        for t in super::pinned_tools(&version) {
            let mut description = t.description.clone();
            if skill.drifted_at.is_some() {
                description.push_str("\n[OPC Hub: the publisher's server changed since review; calls are not counted as qualified]");
            }
            tools.push(EnabledTool {
                name: format!("{}{}{}", skill.slug, super::NS, t.name),
                title: format!("{} · {}", skill.name, t.name),
                description,
                input_schema: t.input_schema,
            });
        }
    }
    Ok(tools)
}

/// The skill of a slug, if the caller enabled it (`None` otherwise: an unknown tool to them).
pub async fn enabled_skill(app: &App, p: &Principal, slug: &str) -> AppResult<Option<Skill>> {
    let Some(skill) = app.store.skill_by_slug(slug).await? else {
        return Ok(None);
    };
    let enabled = app.store.skill_enabled_ids(&p.user.id).await?;
    Ok(enabled.contains(&skill.id).then_some(skill))
}
