//! Rug-pull refresh (M2.3): re-fetches what listed remote skills serve and marks a skill whose
//! tools changed from the pinned (reviewed) list.

use super::upstream::{fetch_mcp_tools, fetch_openapi, parse_openapi};
use super::{live_version, pinned_tools};
use crate::{App, AppResult};
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use opchub_store::skills::{Skill, SkillVersion};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RefreshResult {
    pub skill_id: String,
    /// `unchanged`, `drifted` (newly marked), `still_drifted`, `unreachable` (not fetched or
    /// not readable), `not_remote` (a package or an inline OpenAPI document).
    pub status: String,
    pub pinned_hash: String,
    pub remote_hash: Option<String>,
}

/// The tools a listed skill's publisher serves now: a remote MCP server's tool list, or the
/// pinned operations of an HTTP tool's OpenAPI document re-fetched from its URL. `None` when
/// nothing is remote (packages, inline documents).
async fn remote_tools(s: &App, skill: &Skill, version: &SkillVersion) -> Option<Result<Vec<Tool>, Finding>> {
    match (skill.kind.as_str(), version.endpoint_url.as_deref(), version.openapi_url.as_deref()) {
        ("mcp_server", Some(url), _) => Some(fetch_mcp_tools(s, url).await),
        ("http_tool" | "aigc_app", _, Some(doc_url)) => {
            let pinned: Vec<String> = pinned_tools(version).into_iter().map(|t| t.name).collect();
            Some(match fetch_openapi(s, doc_url).await {
                Ok(text) => parse_openapi(text, pinned).await.map(|d| d.tools),
                Err(f) => Err(f),
            })
        }
        _ => None,
    }
}

/// Re-fetches what one listed skill's publisher serves (an MCP server's tool list, an HTTP
/// tool's OpenAPI document published by URL) and compares its canonical hash with the pinned
/// one. A change is a rug pull (M2.3): the skill is marked and its calls are not qualified
/// until a new version is reviewed.
pub async fn refresh_skill(s: &App, skill: &Skill) -> AppResult<RefreshResult> {
    let version = live_version(&s.store, skill).await?;
    let mut r = RefreshResult {
        skill_id: skill.id.clone(),
        status: "not_remote".into(),
        pinned_hash: version.tools_hash.clone(),
        remote_hash: None,
    };
    let Some(fetched) = remote_tools(s, skill, &version).await else {
        return Ok(r);
    };
    match fetched {
        Err(_) => r.status = "unreachable".into(),
        Ok(tools) => {
            let (_, hash) = opchub_skills::tools::canonical(&tools);
            r.status = if hash == version.tools_hash {
                "unchanged".into()
            } else if s.store.mark_skill_drift(&skill.id, &hash).await? {
                s.skills.invalidate();
                "drifted".into()
            } else {
                "still_drifted".into()
            };
            r.remote_hash = Some(hash);
        }
    }
    Ok(r)
}

/// Refreshes every listed remote skill: MCP servers and HTTP tools published by document URL
/// (the periodic task and the operator's button).
pub async fn refresh_all(s: &App) -> AppResult<Vec<RefreshResult>> {
    let mut out = Vec::new();
    for skill in s.store.skills(true).await? {
        if skill.kind == "agent_skill" {
            continue;
        }
        let r = refresh_skill(s, &skill).await?;
        if r.status != "not_remote" {
            out.push(r);
        }
    }
    Ok(out)
}

/// The periodic refresh, until the process ends.
pub fn spawn_refresh(s: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = s.skills.config.refresh_interval;
        loop {
            tokio::time::sleep(every).await;
            match refresh_all(&s).await {
                Ok(rs) => {
                    let drifted = rs.iter().filter(|r| r.status == "drifted").count();
                    if drifted > 0 {
                        tracing::warn!(drifted, "skills whose remote tools changed from the pinned list");
                    }
                }
                Err(e) => tracing::error!(code = %e.code, "skill refresh failed"),
            }
        }
    })
}
