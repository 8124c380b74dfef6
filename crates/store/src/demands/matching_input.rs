//! What demand-board matching (M2.4) reads from the database: OPC profiles (registry, past
//! cooperations, ratings, ledger usage), open demands as documents, and the fingerprints that
//! tell when an index built from them is stale. The ranking itself is in memory, in
//! `opchub_app::matching`.

use crate::{Result, Store};
use sqlx::Row;
use std::collections::HashMap;

/// A published skill of an OPC and how many distinct OPCs used it (qualified usage).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SkillSignal {
    pub name: String,
    pub users: i64,
}

/// Everything matching knows about one OPC.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OpcProfile {
    #[serde(alias = "id")]
    pub opc_id: String,
    pub name: String,
    pub theme_package: String,
    /// The theme package's name and business scope (M4.2).
    #[serde(default)]
    pub theme_text: String,
    /// Titles of past cooperations.
    #[serde(default)]
    pub past_work: Vec<String>,
    /// Tags of the demands of past cooperations and any self-declared capabilities.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Published skills (filled by the application's profile enricher, e.g. the Skill Store).
    #[serde(default)]
    pub skills: Vec<SkillSignal>,
    #[serde(default)]
    pub completed: i64,
    #[serde(default)]
    pub ratings: i64,
    /// Average rating × 100 (0..=500).
    #[serde(default)]
    pub rating_avg_x100: i64,
    /// Distinct OPCs that called this OPC's skills (`skill.call` events with this OPC as
    /// counterparty, from the ledger rollups).
    #[serde(default)]
    pub skill_users: i64,
}

/// A demand as matching sees it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DemandDoc {
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    #[serde(default)]
    pub budget_min_fen: i64,
    #[serde(default)]
    pub budget_max_fen: i64,
    #[serde(default)]
    pub published_at: i64,
}

impl Store {
    /// What the OPC index is built from changed when this changes (counts and latest times of
    /// OPCs, cooperations, completions and ratings).
    pub async fn opc_fingerprint(&self) -> Result<Vec<i64>> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM opcs) AS a, (SELECT CAST(COALESCE(MAX(created_at), 0) AS BIGINT) FROM opcs) AS b, \
             (SELECT COUNT(*) FROM cooperations) AS c, (SELECT COUNT(*) FROM cooperations WHERE status = 'completed') AS d, \
             (SELECT COUNT(*) FROM cooperation_ratings) AS e",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(vec![
            r.try_get("a")?,
            r.try_get("b")?,
            r.try_get("c")?,
            r.try_get("d")?,
            r.try_get("e")?,
        ])
    }

    /// What the demand index is built from changed when this changes.
    pub async fn demand_fingerprint(&self) -> Result<Vec<i64>> {
        let r = sqlx::query("SELECT COUNT(*) AS a, CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) AS b FROM demands WHERE status = 'open'")
            .fetch_one(&self.pool)
            .await?;
        let all: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) FROM demands")
            .fetch_one(&self.pool)
            .await?;
        Ok(vec![r.try_get("a")?, r.try_get("b")?, all])
    }

    /// Profiles of every OPC from the registry, past cooperations, ratings and the ledger.
    pub async fn opc_profiles(&self) -> Result<Vec<OpcProfile>> {
        let rows = sqlx::query(
            "SELECT o.id, o.name, o.theme_package, t.name_zh, t.name_en, t.business_scope FROM opcs o JOIN theme_packages t ON t.code = o.theme_package ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut pos = HashMap::new();
        for r in rows {
            let scope: String = r.try_get("business_scope")?;
            let scope: Vec<String> = serde_json::from_str(&scope).unwrap_or_default();
            let name_zh: String = r.try_get("name_zh")?;
            let name_en: String = r.try_get("name_en")?;
            let p = OpcProfile {
                opc_id: r.try_get("id")?,
                name: r.try_get("name")?,
                theme_package: r.try_get("theme_package")?,
                theme_text: format!("{name_zh} {name_en} {}", scope.join(" ")),
                ..Default::default()
            };
            pos.insert(p.opc_id.clone(), out.len());
            out.push(p);
        }
        let coops = sqlx::query("SELECT c.opc_id, c.title, c.status, d.tags FROM cooperations c JOIN demands d ON d.id = c.demand_id")
            .fetch_all(&self.pool)
            .await?;
        for r in coops {
            let opc: String = r.try_get("opc_id")?;
            let Some(&i) = pos.get(&opc) else { continue };
            let status: String = r.try_get("status")?;
            let tags: String = r.try_get("tags")?;
            let p = &mut out[i];
            p.past_work.push(r.try_get("title")?);
            p.tags.extend(serde_json::from_str::<Vec<String>>(&tags).unwrap_or_default());
            if status == "completed" {
                p.completed += 1;
            }
        }
        let ratings = sqlx::query(
            "SELECT c.opc_id, COUNT(*) AS n, CAST(SUM(r.score) AS BIGINT) AS total FROM cooperation_ratings r JOIN cooperations c ON c.id = r.cooperation_id \
             WHERE r.rater_side = 'company' GROUP BY c.opc_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in ratings {
            let opc: String = r.try_get("opc_id")?;
            let Some(&i) = pos.get(&opc) else { continue };
            let n: i64 = r.try_get("n")?;
            let total: i64 = r.try_get("total")?;
            out[i].ratings = n;
            out[i].rating_avg_x100 = if n > 0 { total * 100 / n } else { 0 };
        }
        let usage = sqlx::query(
            "SELECT counterparty, COUNT(DISTINCT subject) AS users FROM ledger_rollups WHERE kind = 'skill.call' GROUP BY counterparty",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in usage {
            let opc: String = r.try_get("counterparty")?;
            let Some(&i) = pos.get(&opc) else { continue };
            out[i].skill_users = r.try_get("users")?;
        }
        Ok(out)
    }

    /// Open demands as matching documents.
    pub async fn open_demand_docs(&self) -> Result<Vec<DemandDoc>> {
        let rows = sqlx::query(
            "SELECT id, title, description, category, tags, budget_min_fen, budget_max_fen, published_at FROM demands WHERE status = 'open'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let tags: String = r.try_get("tags")?;
                Ok(DemandDoc {
                    id: r.try_get("id")?,
                    title: r.try_get("title")?,
                    description: r.try_get("description")?,
                    category: r.try_get("category")?,
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                    budget_min_fen: r.try_get("budget_min_fen")?,
                    budget_max_fen: r.try_get("budget_max_fen")?,
                    published_at: r.try_get::<Option<i64>, _>("published_at")?.unwrap_or(0),
                })
            })
            .collect()
    }
}
