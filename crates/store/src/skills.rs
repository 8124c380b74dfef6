//! Skill Store storage (M2.3): skills, immutable versions with their pinned tool lists and
//! automated-check reports, the review state machine (draft → submitted → approved |
//! rejected → delisted), per-invoker enablement, one row per counted call (mirroring the
//! ledger's `skill.call` events, with the qualified flag), installs and ratings. Tool lists
//! and reports are stored as JSON; their meaning lives in the `opchub-skills` crate.

use crate::audit::{record_after, Actor};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// The ledger source of the Skill Store's events (`skill.call`, `skill.install`, M2.3).
pub const SOURCE: &str = "skills";

pub const KINDS: [&str; 4] = ["mcp_server", "http_tool", "agent_skill", "aigc_app"];
pub const CATEGORIES: [&str; 3] = ["agent_tool", "aigc_production", "vertical_plugin"];

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Skill {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub summary: String,
    pub kind: String,
    pub category: String,
    pub tags: Vec<String>,
    pub homepage_url: Option<String>,
    pub publisher_user_id: String,
    pub publisher_party: String,
    pub live_version_id: Option<String>,
    /// When a refresh found the remote tools changed from the pinned hash (a rug pull).
    pub drifted_at: Option<i64>,
    pub drifted_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const SKILL_COLS: &str = "id, slug, name, summary, kind, category, tags, homepage_url, publisher_user_id, publisher_party, live_version_id, drifted_at, drifted_hash, created_at, updated_at";

fn skill_from(r: &AnyRow) -> Result<Skill> {
    let tags: String = r.try_get("tags")?;
    Ok(Skill {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        summary: r.try_get("summary")?,
        kind: r.try_get("kind")?,
        category: r.try_get("category")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        homepage_url: r.try_get("homepage_url")?,
        publisher_user_id: r.try_get("publisher_user_id")?,
        publisher_party: r.try_get("publisher_party")?,
        live_version_id: r.try_get("live_version_id")?,
        drifted_at: r.try_get("drifted_at")?,
        drifted_hash: r.try_get("drifted_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkillVersion {
    pub id: String,
    pub skill_id: String,
    pub version: String,
    /// `draft`, `submitted`, `approved`, `rejected`, `delisted`.
    pub status: String,
    /// SHA-256 of the package bytes, or of the canonical tool list.
    pub content_hash: String,
    /// Price per call in fen (0 = free).
    pub price_fen: i64,
    pub endpoint_url: Option<String>,
    /// Where an HTTP tool's OpenAPI document was published from (re-fetched by the refresh).
    pub openapi_url: Option<String>,
    /// The pinned tool list: `[{name, description, input_schema, …}]`.
    #[schema(value_type = Vec<Object>)]
    pub tools: serde_json::Value,
    pub tools_hash: String,
    /// SKILL.md frontmatter of an Agent Skill package (`null` for other kinds).
    #[schema(value_type = Option<Object>)]
    pub manifest: Option<serde_json::Value>,
    pub has_package: bool,
    /// The automated checks' report (`null` before they ran).
    #[schema(value_type = Option<Object>)]
    pub checks: serde_json::Value,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

const VERSION_COLS: &str =
    "id, skill_id, version, status, content_hash, price_fen, endpoint_url, openapi_url, tools, tools_hash, manifest, \
    CASE WHEN package_b64 IS NULL THEN 0 ELSE 1 END AS has_package, checks, submitted_at, decided_at, created_at";

fn version_from(r: &AnyRow) -> Result<SkillVersion> {
    let tools: String = r.try_get("tools")?;
    let manifest: Option<String> = r.try_get("manifest")?;
    let checks: String = r.try_get("checks")?;
    Ok(SkillVersion {
        id: r.try_get("id")?,
        skill_id: r.try_get("skill_id")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        content_hash: r.try_get("content_hash")?,
        price_fen: r.try_get("price_fen")?,
        endpoint_url: r.try_get("endpoint_url")?,
        openapi_url: r.try_get("openapi_url")?,
        tools: serde_json::from_str(&tools).unwrap_or_default(),
        tools_hash: r.try_get("tools_hash")?,
        manifest: manifest.and_then(|m| serde_json::from_str(&m).ok()),
        has_package: r.try_get::<i64, _>("has_package")? != 0,
        checks: serde_json::from_str(&checks).unwrap_or_default(),
        submitted_at: r.try_get("submitted_at")?,
        decided_at: r.try_get("decided_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewSkill<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub summary: &'a str,
    pub kind: &'a str,
    pub category: &'a str,
    pub tags: &'a [String],
    pub homepage_url: Option<&'a str>,
    pub publisher_user_id: &'a str,
    pub publisher_party: &'a str,
}

pub struct NewVersion<'a> {
    pub version: &'a str,
    pub content_hash: &'a str,
    pub price_fen: i64,
    pub endpoint_url: Option<&'a str>,
    pub openapi_url: Option<&'a str>,
    pub tools: &'a serde_json::Value,
    pub tools_hash: &'a str,
    pub manifest: Option<&'a serde_json::Value>,
    pub package_b64: Option<&'a str>,
    pub checks: &'a serde_json::Value,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Review {
    pub id: String,
    pub version_id: String,
    pub reviewer_user_id: String,
    pub decision: String,
    pub comment: String,
    pub created_at: i64,
}

/// One caller-visible call, as counted.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkillCall {
    /// invoker × request × JSON-RPC id (hashed): a retried request has the same key.
    pub call_key: String,
    pub skill_id: String,
    pub version_id: String,
    pub version_hash: String,
    pub tool: String,
    pub publisher_party: String,
    pub invoker_party: String,
    pub invoker_user_id: String,
    /// `ok`, `tool_error`, `upstream_error`, `timeout`.
    pub outcome: String,
    pub qualified: bool,
    /// `self_dealing`, `failed`, `drifted` when not qualified.
    pub not_qualified_reason: Option<String>,
    pub charged_fen: i64,
    pub latency_ms: i64,
    pub request_digest: String,
    pub response_digest: String,
    pub leaf_index: Option<i64>,
    pub day: String,
    pub created_at: i64,
}

const CALL_COLS: &str =
    "call_key, skill_id, version_id, version_hash, tool, publisher_party, invoker_party, invoker_user_id, outcome, qualified, \
    not_qualified_reason, charged_fen, latency_ms, request_digest, response_digest, leaf_index, day, created_at";

/// Inserts a call row; a row whose key exists is kept.
pub(crate) const INSERT_CALL: &str = "INSERT INTO skill_calls (call_key, skill_id, version_id, version_hash, tool, publisher_party, invoker_party, invoker_user_id, outcome, qualified, not_qualified_reason, charged_fen, latency_ms, request_digest, response_digest, leaf_index, day, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (call_key) DO NOTHING";

pub(crate) fn bind_call<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    c: &SkillCall,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(c.call_key.clone())
        .bind(c.skill_id.clone())
        .bind(c.version_id.clone())
        .bind(c.version_hash.clone())
        .bind(c.tool.clone())
        .bind(c.publisher_party.clone())
        .bind(c.invoker_party.clone())
        .bind(c.invoker_user_id.clone())
        .bind(c.outcome.clone())
        .bind(c.qualified as i64)
        .bind(c.not_qualified_reason.clone())
        .bind(c.charged_fen)
        .bind(c.latency_ms)
        .bind(c.request_digest.clone())
        .bind(c.response_digest.clone())
        .bind(c.leaf_index)
        .bind(c.day.clone())
        .bind(c.created_at)
}

fn call_from(r: &AnyRow) -> Result<SkillCall> {
    Ok(SkillCall {
        call_key: r.try_get("call_key")?,
        skill_id: r.try_get("skill_id")?,
        version_id: r.try_get("version_id")?,
        version_hash: r.try_get("version_hash")?,
        tool: r.try_get("tool")?,
        publisher_party: r.try_get("publisher_party")?,
        invoker_party: r.try_get("invoker_party")?,
        invoker_user_id: r.try_get("invoker_user_id")?,
        outcome: r.try_get("outcome")?,
        qualified: r.try_get::<i64, _>("qualified")? != 0,
        not_qualified_reason: r.try_get("not_qualified_reason")?,
        charged_fen: r.try_get("charged_fen")?,
        latency_ms: r.try_get("latency_ms")?,
        request_digest: r.try_get("request_digest")?,
        response_digest: r.try_get("response_digest")?,
        leaf_index: r.try_get("leaf_index")?,
        day: r.try_get("day")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rating {
    pub skill_id: String,
    pub user_id: String,
    pub stars: i64,
    pub comment: String,
    pub created_at: i64,
}

/// Public counts of one skill.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SkillCounts {
    pub calls: i64,
    pub qualified_calls: i64,
    pub distinct_qualified_invokers: i64,
    pub installs: i64,
    pub ratings: i64,
    /// Average stars × 100 (integer), 0 without ratings.
    pub rating_x100: i64,
}

/// Call totals of one party over a set of days.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct CallTotals {
    pub calls: i64,
    pub qualified_calls: i64,
    pub not_qualified_calls: i64,
    pub failed_calls: i64,
    pub distinct_invokers: i64,
    pub distinct_qualified_invokers: i64,
    /// Sum charged on successful calls, in fen.
    pub amount_fen: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DailyCalls {
    pub day: String,
    pub calls: i64,
    pub qualified_calls: i64,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkillUse {
    pub skill_id: String,
    pub calls: i64,
    pub qualified_calls: i64,
    pub amount_fen: i64,
}

fn day_of_ms(ms: i64) -> String {
    opchub_ledger::event::day_of(ms)
}

async fn insert_version(tx: &mut crate::Tx, skill_id: &str, v: &NewVersion<'_>) -> Result<String> {
    let id = new_id();
    let res = sqlx::query(
        "INSERT INTO skill_versions (id, skill_id, version, status, content_hash, price_fen, endpoint_url, openapi_url, tools, tools_hash, manifest, package_b64, checks, created_at) \
         VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&id)
    .bind(skill_id)
    .bind(v.version)
    .bind(v.content_hash)
    .bind(v.price_fen)
    .bind(v.endpoint_url.map(str::to_string))
    .bind(v.openapi_url.map(str::to_string))
    .bind(v.tools.to_string())
    .bind(v.tools_hash)
    .bind(v.manifest.map(|m| m.to_string()))
    .bind(v.package_b64.map(str::to_string))
    .bind(v.checks.to_string())
    .bind(now_ms())
    .execute(&mut **tx)
    .await;
    match res {
        Ok(_) => Ok(id),
        Err(e) if is_unique_violation(&e, "version") => Err(StoreError::Conflict("skill_version_exists")),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// A new skill with its first version (a draft).
    pub async fn create_skill(&self, actor: &Actor, s: NewSkill<'_>, v: NewVersion<'_>) -> Result<(Skill, SkillVersion)> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO skills (id, slug, name, summary, kind, category, tags, homepage_url, publisher_user_id, publisher_party, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(&id)
        .bind(s.slug)
        .bind(s.name)
        .bind(s.summary)
        .bind(s.kind)
        .bind(s.category)
        .bind(serde_json::to_string(s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.homepage_url.map(str::to_string))
        .bind(s.publisher_user_id)
        .bind(s.publisher_party)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "slug") {
                return Err(StoreError::Conflict("skill_slug_taken"));
            }
            return Err(e.into());
        }
        let vid = insert_version(&mut tx, &id, &v).await?;
        let after = serde_json::json!({ "id": id, "slug": s.slug, "kind": s.kind, "version": v.version, "content_hash": v.content_hash });
        record_after(
            &mut tx,
            actor,
            "skill.create",
            "skill",
            &id,
            after,
            format!("{} {}", s.slug, v.version),
        )
        .await?;
        tx.commit().await?;
        Ok((self.skill(&id).await?, self.skill_version(&vid).await?))
    }

    pub async fn add_skill_version(&self, actor: &Actor, skill_id: &str, v: NewVersion<'_>) -> Result<SkillVersion> {
        let mut tx = self.begin().await?;
        let vid = insert_version(&mut tx, skill_id, &v).await?;
        sqlx::query("UPDATE skills SET updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(skill_id)
            .execute(&mut *tx)
            .await?;
        let after = serde_json::json!({ "version": v.version, "content_hash": v.content_hash });
        record_after(&mut tx, actor, "skill.version", "skill", skill_id, after, v.version.to_string()).await?;
        tx.commit().await?;
        self.skill_version(&vid).await
    }

    pub async fn skill(&self, id: &str) -> Result<Skill> {
        let row = sqlx::query(&format!("SELECT {SKILL_COLS} FROM skills WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(skill_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn skill_by_slug(&self, slug: &str) -> Result<Option<Skill>> {
        let row = sqlx::query(&format!("SELECT {SKILL_COLS} FROM skills WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(skill_from).transpose()
    }

    /// Every skill (`listed_only`: those with an approved live version).
    pub async fn skills(&self, listed_only: bool) -> Result<Vec<Skill>> {
        let filter = if listed_only { "WHERE live_version_id IS NOT NULL" } else { "" };
        let rows = sqlx::query(&format!("SELECT {SKILL_COLS} FROM skills {filter} ORDER BY created_at"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(skill_from).collect()
    }

    pub async fn skills_of_publisher(&self, user_id: &str) -> Result<Vec<Skill>> {
        let rows = sqlx::query(&format!(
            "SELECT {SKILL_COLS} FROM skills WHERE publisher_user_id = $1 ORDER BY created_at DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(skill_from).collect()
    }

    pub async fn skill_version(&self, id: &str) -> Result<SkillVersion> {
        let row = sqlx::query(&format!("SELECT {VERSION_COLS} FROM skill_versions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Versions of a skill, newest first.
    pub async fn skill_versions(&self, skill_id: &str) -> Result<Vec<SkillVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLS} FROM skill_versions WHERE skill_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(skill_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from).collect()
    }

    /// The package bytes (base64) of a version, if it has one.
    pub async fn skill_package(&self, version_id: &str) -> Result<Option<String>> {
        let v: Option<Option<String>> = sqlx::query_scalar("SELECT package_b64 FROM skill_versions WHERE id = $1")
            .bind(version_id)
            .fetch_optional(&self.pool)
            .await?;
        v.ok_or(StoreError::NotFound)
    }

    /// Submitted versions waiting for the platform operator, oldest first.
    pub async fn skill_review_queue(&self) -> Result<Vec<SkillVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLS} FROM skill_versions WHERE status = 'submitted' ORDER BY submitted_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from).collect()
    }

    /// draft → submitted (one conditional UPDATE: a version is submitted once).
    pub async fn submit_skill_version(&self, actor: &Actor, version_id: &str) -> Result<SkillVersion> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE skill_versions SET status = 'submitted', submitted_at = $1 WHERE id = $2 AND status = 'draft'")
            .bind(now_ms())
            .bind(version_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict("skill_not_draft"));
        }
        record_after(
            &mut tx,
            actor,
            "skill.submit",
            "skill",
            version_id,
            serde_json::json!({ "status": "submitted" }),
            "submitted".into(),
        )
        .await?;
        tx.commit().await?;
        self.skill_version(version_id).await
    }

    /// submitted → approved | rejected, with the reviewer's comment. Approval makes the
    /// version the skill's live version and clears a drift mark (the re-review, M2.3).
    pub async fn review_skill_version(&self, actor: &Actor, version_id: &str, approve: bool, comment: &str) -> Result<SkillVersion> {
        let decision = if approve { "approved" } else { "rejected" };
        let now = now_ms();
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE skill_versions SET status = $1, decided_at = $2 WHERE id = $3 AND status = 'submitted'")
            .bind(decision)
            .bind(now)
            .bind(version_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict("skill_not_submitted"));
        }
        sqlx::query(
            "INSERT INTO skill_reviews (id, version_id, reviewer_user_id, decision, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(version_id)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(decision)
        .bind(comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if approve {
            sqlx::query(
                "UPDATE skills SET live_version_id = $1, drifted_at = NULL, drifted_hash = NULL, updated_at = $2 \
                 WHERE id = (SELECT skill_id FROM skill_versions WHERE id = $1)",
            )
            .bind(version_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        record_after(
            &mut tx,
            actor,
            "skill.review",
            "skill",
            version_id,
            serde_json::json!({ "decision": decision, "comment": comment }),
            decision.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.skill_version(version_id).await
    }

    pub async fn skill_reviews(&self, skill_id: &str) -> Result<Vec<Review>> {
        let rows = sqlx::query(
            "SELECT r.id, r.version_id, r.reviewer_user_id, r.decision, r.comment, r.created_at FROM skill_reviews r \
             JOIN skill_versions v ON v.id = r.version_id WHERE v.skill_id = $1 ORDER BY r.created_at DESC",
        )
        .bind(skill_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Review {
                    id: r.try_get("id")?,
                    version_id: r.try_get("version_id")?,
                    reviewer_user_id: r.try_get("reviewer_user_id")?,
                    decision: r.try_get("decision")?,
                    comment: r.try_get("comment")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Takes a skill off the store: its live version becomes `delisted`; calls are refused.
    pub async fn delist_skill(&self, actor: &Actor, skill_id: &str, reason: &str) -> Result<Skill> {
        let skill = self.skill(skill_id).await?;
        let Some(live) = skill.live_version_id.clone() else {
            return Err(StoreError::Conflict("skill_not_listed"));
        };
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE skill_versions SET status = 'delisted', decided_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(&live)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE skills SET live_version_id = NULL, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(skill_id)
            .execute(&mut *tx)
            .await?;
        record_after(
            &mut tx,
            actor,
            "skill.delist",
            "skill",
            skill_id,
            serde_json::json!({ "version_id": live, "reason": reason }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.skill(skill_id).await
    }

    /// Marks a rug pull found by a refresh (first finding kept).
    pub async fn mark_skill_drift(&self, skill_id: &str, remote_hash: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE skills SET drifted_at = $1, drifted_hash = $2, updated_at = $1 WHERE id = $3 AND drifted_at IS NULL")
            .bind(now_ms())
            .bind(remote_hash)
            .bind(skill_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            record_after(
                &mut tx,
                &Actor::system(),
                "skill.drift",
                "skill",
                skill_id,
                serde_json::json!({ "remote_tools_hash": remote_hash }),
                "remote tool list changed from the pinned hash".into(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// (version, price per call) of every listed skill's live version.
    pub async fn listed_prices(&self) -> Result<HashMap<String, (String, i64)>> {
        let rows = sqlx::query("SELECT s.id, v.version, v.price_fen FROM skills s JOIN skill_versions v ON v.id = s.live_version_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, (r.try_get("version")?, r.try_get("price_fen")?))))
            .collect()
    }

    // ---- enablement ----

    pub async fn set_skill_enabled(&self, user_id: &str, skill_id: &str, enabled: bool) -> Result<()> {
        if enabled {
            sqlx::query("INSERT INTO skill_enablements (user_id, skill_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (user_id, skill_id) DO NOTHING")
                .bind(user_id)
                .bind(skill_id)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query("DELETE FROM skill_enablements WHERE user_id = $1 AND skill_id = $2")
                .bind(user_id)
                .bind(skill_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Listed skills the user enabled, with their live versions.
    pub async fn enabled_skills(&self, user_id: &str) -> Result<Vec<(Skill, SkillVersion)>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT s.id FROM skill_enablements e JOIN skills s ON s.id = e.skill_id WHERE e.user_id = $1 AND s.live_version_id IS NOT NULL ORDER BY s.slug",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let s = self.skill(&id).await?;
            if let Some(v) = &s.live_version_id {
                let v = self.skill_version(v).await?;
                out.push((s, v));
            }
        }
        Ok(out)
    }

    pub async fn skill_enabled_ids(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT skill_id FROM skill_enablements WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    // ---- calls, installs, ratings ----

    /// Records a counted call once per key; false when the key was recorded before.
    /// Records a call row alone (the Skill Store's calls commit theirs with their ledger event,
    /// `ledger::SideWrite::SkillCall`). False when a row with its key exists.
    pub async fn record_skill_call(&self, c: &SkillCall) -> Result<bool> {
        let n = bind_call(sqlx::query(INSERT_CALL), c).execute(&self.pool).await?.rows_affected();
        Ok(n > 0)
    }

    pub async fn skill_call(&self, call_key: &str) -> Result<Option<SkillCall>> {
        let row = sqlx::query(&format!("SELECT {CALL_COLS} FROM skill_calls WHERE call_key = $1"))
            .bind(call_key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(call_from).transpose()
    }

    /// Calls of a skill (newest first) — for the publisher and staff.
    pub async fn skill_calls_of(&self, skill_id: &str, limit: i64) -> Result<Vec<SkillCall>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLS} FROM skill_calls WHERE skill_id = $1 ORDER BY created_at DESC LIMIT $2"
        ))
        .bind(skill_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from).collect()
    }

    /// Whether the user called the skill at least once successfully (ratings need it).
    pub async fn has_called_skill(&self, skill_id: &str, user_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM skill_calls WHERE skill_id = $1 AND invoker_user_id = $2 AND outcome = 'ok'")
            .bind(skill_id)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        let installs: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM skill_installs i JOIN skill_versions v ON v.id = i.version_id WHERE v.skill_id = $1 AND i.invoker_user_id = $2",
        )
        .bind(skill_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n + installs > 0)
    }

    /// One install per invoker per version; false when already installed.
    pub async fn record_skill_install(&self, version_id: &str, user_id: &str, party: &str, leaf_index: Option<i64>) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO skill_installs (version_id, invoker_user_id, invoker_party, leaf_index, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (version_id, invoker_user_id) DO NOTHING",
        )
        .bind(version_id)
        .bind(user_id)
        .bind(party)
        .bind(leaf_index)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn rate_skill(&self, skill_id: &str, user_id: &str, stars: i64, comment: &str) -> Result<Rating> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO skill_ratings (skill_id, user_id, stars, comment, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (skill_id, user_id) DO UPDATE SET stars = excluded.stars, comment = excluded.comment, created_at = excluded.created_at",
        )
        .bind(skill_id)
        .bind(user_id)
        .bind(stars)
        .bind(comment)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Rating {
            skill_id: skill_id.into(),
            user_id: user_id.into(),
            stars,
            comment: comment.into(),
            created_at: now,
        })
    }

    pub async fn skill_ratings(&self, skill_id: &str) -> Result<Vec<Rating>> {
        let rows = sqlx::query(
            "SELECT skill_id, user_id, stars, comment, created_at FROM skill_ratings WHERE skill_id = $1 ORDER BY created_at DESC",
        )
        .bind(skill_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rating {
                    skill_id: r.try_get("skill_id")?,
                    user_id: r.try_get("user_id")?,
                    stars: r.try_get("stars")?,
                    comment: r.try_get("comment")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Public counts of every skill that has any (for ranking and listings).
    pub async fn skill_counts(&self) -> Result<HashMap<String, SkillCounts>> {
        let mut out: HashMap<String, SkillCounts> = HashMap::new();
        let rows = sqlx::query(
            "SELECT skill_id, COUNT(*) AS calls, CAST(SUM(qualified) AS BIGINT) AS q, \
             COUNT(DISTINCT CASE WHEN qualified = 1 THEN invoker_party END) AS dq FROM skill_calls GROUP BY skill_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let e = out.entry(r.try_get("skill_id")?).or_default();
            e.calls = r.try_get("calls")?;
            e.qualified_calls = r.try_get::<Option<i64>, _>("q")?.unwrap_or(0);
            e.distinct_qualified_invokers = r.try_get("dq")?;
        }
        let rows = sqlx::query(
            "SELECT v.skill_id, COUNT(*) AS n FROM skill_installs i JOIN skill_versions v ON v.id = i.version_id GROUP BY v.skill_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            out.entry(r.try_get("skill_id")?).or_default().installs = r.try_get("n")?;
        }
        let rows = sqlx::query("SELECT skill_id, COUNT(*) AS n, CAST(SUM(stars) AS BIGINT) AS s FROM skill_ratings GROUP BY skill_id")
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let e = out.entry(r.try_get("skill_id")?).or_default();
            e.ratings = r.try_get("n")?;
            let s: i64 = r.try_get::<Option<i64>, _>("s")?.unwrap_or(0);
            e.rating_x100 = if e.ratings > 0 { s * 100 / e.ratings } else { 0 };
        }
        Ok(out)
    }

    /// Totals of the calls where `party` is the publisher (or, with `as_invoker`, the
    /// invoker), on days from `from_day` (inclusive, `YYYY-MM-DD`).
    pub async fn skill_call_totals(&self, party: &str, as_invoker: bool, from_day: &str) -> Result<CallTotals> {
        let col = if as_invoker { "invoker_party" } else { "publisher_party" };
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS calls, CAST(COALESCE(SUM(qualified), 0) AS BIGINT) AS q, \
             CAST(COALESCE(SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
             COUNT(DISTINCT invoker_party) AS di, COUNT(DISTINCT CASE WHEN qualified = 1 THEN invoker_party END) AS dq, \
             CAST(COALESCE(SUM(charged_fen), 0) AS BIGINT) AS amount FROM skill_calls WHERE {col} = $1 AND day >= $2"
        ))
        .bind(party)
        .bind(from_day)
        .fetch_one(&self.pool)
        .await?;
        let calls: i64 = row.try_get("calls")?;
        let q: i64 = row.try_get("q")?;
        Ok(CallTotals {
            calls,
            qualified_calls: q,
            not_qualified_calls: calls - q,
            failed_calls: row.try_get("failed")?,
            distinct_invokers: row.try_get("di")?,
            distinct_qualified_invokers: row.try_get("dq")?,
            amount_fen: row.try_get("amount")?,
        })
    }

    pub async fn skill_calls_daily(&self, party: &str, as_invoker: bool, from_day: &str) -> Result<Vec<DailyCalls>> {
        let col = if as_invoker { "invoker_party" } else { "publisher_party" };
        let rows = sqlx::query(&format!(
            "SELECT day, COUNT(*) AS calls, CAST(COALESCE(SUM(qualified), 0) AS BIGINT) AS q, CAST(COALESCE(SUM(charged_fen), 0) AS BIGINT) AS amount \
             FROM skill_calls WHERE {col} = $1 AND day >= $2 GROUP BY day ORDER BY day"
        ))
        .bind(party)
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyCalls {
                    day: r.try_get("day")?,
                    calls: r.try_get("calls")?,
                    qualified_calls: r.try_get("q")?,
                    amount_fen: r.try_get("amount")?,
                })
            })
            .collect()
    }

    /// Per-skill use by a party (publisher or invoker side) from `from_day`.
    pub async fn skill_use_by_skill(&self, party: &str, as_invoker: bool, from_day: &str) -> Result<Vec<SkillUse>> {
        let col = if as_invoker { "invoker_party" } else { "publisher_party" };
        let rows = sqlx::query(&format!(
            "SELECT skill_id, COUNT(*) AS calls, CAST(COALESCE(SUM(qualified), 0) AS BIGINT) AS q, CAST(COALESCE(SUM(charged_fen), 0) AS BIGINT) AS amount \
             FROM skill_calls WHERE {col} = $1 AND day >= $2 GROUP BY skill_id ORDER BY calls DESC"
        ))
        .bind(party)
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SkillUse {
                    skill_id: r.try_get("skill_id")?,
                    calls: r.try_get("calls")?,
                    qualified_calls: r.try_get("q")?,
                    amount_fen: r.try_get("amount")?,
                })
            })
            .collect()
    }
}

/// Calls of a publisher the platform marked not qualified (M2.3), per reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NotQualifiedCalls {
    /// `failed`, `self_dealing` or `drifted`.
    pub reason: String,
    pub calls: i64,
    /// What those calls charged (a failed call charges nothing).
    pub charged_fen: i64,
}

impl Store {
    /// A publisher's calls marked not qualified on days `from_day..=to_day`, by reason.
    pub async fn skill_calls_not_qualified(&self, publisher_party: &str, from_day: &str, to_day: &str) -> Result<Vec<NotQualifiedCalls>> {
        let rows = sqlx::query(
            "SELECT COALESCE(not_qualified_reason, 'other') AS reason, COUNT(*) AS calls, CAST(COALESCE(SUM(charged_fen), 0) AS BIGINT) AS amount \
             FROM skill_calls WHERE publisher_party = $1 AND qualified = 0 AND day >= $2 AND day <= $3 \
             GROUP BY COALESCE(not_qualified_reason, 'other') ORDER BY reason",
        )
        .bind(publisher_party)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NotQualifiedCalls {
                    reason: r.try_get("reason")?,
                    calls: r.try_get("calls")?,
                    charged_fen: r.try_get("amount")?,
                })
            })
            .collect()
    }
}

/// The booking day of a time (Asia/Shanghai), as the ledger books it.
pub fn call_day(ms: i64) -> String {
    day_of_ms(ms)
}
