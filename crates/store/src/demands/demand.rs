//! Demands (M2.4): who may publish, creation with attachments, listings, publish/cancel and
//! expiry.

use super::attachment::{put_file, sha_of};
use super::{audit, beijing_today, invalid, FileIn};
use crate::audit::Actor;
use crate::notifications::notify;
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Demand {
    pub id: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    /// `YYYY-MM-DD` (Beijing); an open demand past it becomes `expired`.
    pub deadline: String,
    /// `draft`, `open`, `in_progress`, `completed`, `cancelled`, `expired`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    pub proposals: i64,
}

const DEMAND_SELECT: &str = "SELECT d.id, d.enterprise_id, e.name AS enterprise_name, d.title, d.description, d.category, d.tags, \
    d.budget_min_fen, d.budget_max_fen, d.deadline, d.status, d.created_at, d.updated_at, d.published_at, \
    (SELECT COUNT(*) FROM demand_proposals p WHERE p.demand_id = d.id) AS proposals \
    FROM demands d JOIN enterprises e ON e.id = d.enterprise_id";

fn demand_from(r: &AnyRow) -> Result<Demand> {
    let tags: String = r.try_get("tags")?;
    Ok(Demand {
        id: r.try_get("id")?,
        enterprise_id: r.try_get("enterprise_id")?,
        enterprise_name: r.try_get("enterprise_name")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        category: r.try_get("category")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        budget_min_fen: r.try_get("budget_min_fen")?,
        budget_max_fen: r.try_get("budget_max_fen")?,
        deadline: r.try_get("deadline")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        published_at: r.try_get("published_at")?,
        proposals: r.try_get("proposals")?,
    })
}

/// A validated demand.
#[derive(Debug, Clone)]
pub struct NewDemand {
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub deadline: String,
    pub publish: bool,
}

/// The company that may publish: a registry enterprise whose zone is one of the district's
/// key zones (G2, M2.4).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Publisher {
    pub enterprise_id: String,
    pub name: String,
    pub zone: String,
}

#[derive(Debug, Clone)]
pub enum Eligibility {
    Eligible(Publisher),
    /// No enterprise in the registry for this account (the platform operator registers and
    /// verifies companies by their USCC).
    NotVerified,
    /// The company's recorded zone is not one of Fengtai's key zones.
    NotInDistrict,
}

/// Filters over open demands (all optional).
#[derive(Debug, Clone, Default)]
pub struct DemandFilter {
    pub status: Option<String>,
    pub enterprise_id: Option<String>,
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Demands whose budget range reaches at least this much.
    pub budget_at_least_fen: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// May this account publish demands? (M2.4: a verified company in the district.)
    pub async fn publisher(&self, user_id: &str) -> Result<Eligibility> {
        let row = sqlx::query("SELECT id, name, zone FROM enterprises WHERE owner_user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(Eligibility::NotVerified) };
        let zone: String = r.try_get("zone")?;
        if zone.parse::<opchub_domain::Zone>().is_err() {
            return Ok(Eligibility::NotInDistrict);
        }
        Ok(Eligibility::Eligible(Publisher {
            enterprise_id: r.try_get("id")?,
            name: r.try_get("name")?,
            zone,
        }))
    }

    pub async fn create_demand(&self, actor: &Actor, publisher: &Publisher, d: &NewDemand, files: &[FileIn<'_>]) -> Result<Demand> {
        let shas: Vec<String> = files.iter().map(|f| sha_of(f.bytes)).collect();
        let id = new_id();
        let now = now_ms();
        let status = if d.publish { "open" } else { "draft" };
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO demands (id, enterprise_id, title, description, category, tags, budget_min_fen, budget_max_fen, deadline, status, \
             created_by, created_at, updated_at, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
        )
        .bind(&id)
        .bind(&publisher.enterprise_id)
        .bind(&d.title)
        .bind(&d.description)
        .bind(&d.category)
        .bind(serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into()))
        .bind(d.budget_min_fen)
        .bind(d.budget_max_fen)
        .bind(&d.deadline)
        .bind(status)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(if d.publish { Some(now) } else { None })
        .execute(&mut *tx)
        .await?;
        for (f, sha) in files.iter().zip(&shas) {
            put_file(&mut tx, sha, f).await?;
            sqlx::query(
                "INSERT INTO demand_attachments (demand_id, sha256, file_name, content_type, size_bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (demand_id, sha256) DO NOTHING",
            )
            .bind(&id)
            .bind(sha)
            .bind(f.name.trim())
            .bind(f.content_type)
            .bind(f.bytes.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let after = serde_json::json!({ "id": id, "title": d.title, "status": status, "budget": [d.budget_min_fen, d.budget_max_fen] });
        audit(&mut tx, actor, "demand.create", "demand", &id, after, d.title.clone()).await?;
        tx.commit().await?;
        self.demand(&id).await
    }

    pub async fn demand(&self, id: &str) -> Result<Demand> {
        let row = sqlx::query(&format!("{DEMAND_SELECT} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(demand_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Open demands whose deadline has passed become `expired` (run before listings).
    pub async fn expire_demands(&self) -> Result<u64> {
        let res = sqlx::query("UPDATE demands SET status = 'expired', updated_at = $1 WHERE status = 'open' AND deadline < $2")
            .bind(now_ms())
            .bind(beijing_today())
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    pub async fn demands(&self, f: &DemandFilter) -> Result<Vec<Demand>> {
        let rows = sqlx::query(&format!(
            "{DEMAND_SELECT} WHERE ($1 IS NULL OR d.status = $1) AND ($2 IS NULL OR d.enterprise_id = $2) AND ($3 IS NULL OR d.category = $3) \
             AND ($4 IS NULL OR d.budget_max_fen >= $4) ORDER BY d.created_at DESC LIMIT $5"
        ))
        .bind(f.status.clone())
        .bind(f.enterprise_id.clone())
        .bind(f.category.clone())
        .bind(f.budget_at_least_fen)
        .bind(if f.tag.is_some() { 100_000 } else { f.limit.clamp(1, 100_000) })
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Demand> = rows.iter().map(demand_from).collect::<Result<_>>()?;
        if let Some(tag) = &f.tag {
            out.retain(|d| d.tags.iter().any(|t| t == tag));
            out.truncate(f.limit.clamp(1, 100_000) as usize);
        }
        Ok(out)
    }

    async fn demand_status_change(&self, actor: &Actor, id: &str, from: &[&str], to: &str, action: &str) -> Result<Demand> {
        let d = self.demand(id).await?;
        if !from.contains(&d.status.as_str()) {
            return Err(StoreError::Conflict("demand_wrong_state"));
        }
        if to == "open" && d.deadline < beijing_today() {
            return Err(invalid("deadline", "deadline_in_past"));
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE demands SET status = $1, updated_at = $2, published_at = CASE WHEN $1 = 'open' THEN $2 ELSE published_at END \
             WHERE id = $3 AND status = $4",
        )
        .bind(to)
        .bind(now)
        .bind(id)
        .bind(&d.status)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("demand_wrong_state"));
        }
        if to == "cancelled" {
            let rows = sqlx::query(
                "SELECT o.founder_user_id FROM demand_proposals p JOIN opcs o ON o.id = p.opc_id WHERE p.demand_id = $1 AND p.status IN ('submitted', 'shortlisted')",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE demand_proposals SET status = 'declined', updated_at = $1 WHERE demand_id = $2 AND status IN ('submitted', 'shortlisted')")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for r in rows {
                let uid: String = r.try_get("founder_user_id")?;
                notify(&mut tx, &uid, "demand_cancelled", "demand", id, &d.title).await?;
            }
        }
        audit(
            &mut tx,
            actor,
            action,
            "demand",
            id,
            serde_json::json!({ "status": to }),
            format!("{} → {to}", d.status),
        )
        .await?;
        tx.commit().await?;
        self.demand(id).await
    }

    /// draft → open.
    pub async fn publish_demand(&self, actor: &Actor, id: &str) -> Result<Demand> {
        self.demand_status_change(actor, id, &["draft"], "open", "demand.publish").await
    }

    /// draft/open → cancelled (pending proposals are declined and their OPCs told).
    pub async fn cancel_demand(&self, actor: &Actor, id: &str) -> Result<Demand> {
        self.demand_status_change(actor, id, &["draft", "open"], "cancelled", "demand.cancel")
            .await
    }
}
