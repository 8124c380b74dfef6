//! The registry: theme packages (M4.2), communities and workstations (M1, M4.1), OPCs (G2,
//! M4.1, M4.2), enterprises, specialists and service-window tickets (M4.3).
//! Every mutation runs in one transaction together with its audit entry.

use crate::accounts::{insert_user, NewUser, User};
use crate::audit::{record_after, record_before_after, Actor};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError, Tx};
use opchub_domain::{Role, Uscc, WorkstationStatus, Zone};
use sqlx::any::AnyRow;
use sqlx::Row;

const THEME_CATALOG: &str = include_str!("../../../catalog/theme_packages.toml");

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ThemePackage {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub description_zh: String,
    pub description_en: String,
    pub business_scope: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ThemeCatalog {
    package: Vec<ThemePackage>,
}

pub(crate) async fn load_theme_catalog(store: &Store) -> Result<()> {
    let catalog: ThemeCatalog = toml::from_str(THEME_CATALOG).map_err(|e| StoreError::Catalog(e.to_string()))?;
    let mut tx = store.begin().await?;
    for (i, p) in catalog.package.iter().enumerate() {
        let scope = serde_json::to_string(&p.business_scope).map_err(|e| StoreError::Catalog(e.to_string()))?;
        sqlx::query(
            "INSERT INTO theme_packages (code, name_zh, name_en, description_zh, description_en, business_scope, sort_order) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en, \
             description_zh = excluded.description_zh, description_en = excluded.description_en, business_scope = excluded.business_scope, sort_order = excluded.sort_order",
        )
        .bind(&p.code)
        .bind(&p.name_zh)
        .bind(&p.name_en)
        .bind(&p.description_zh)
        .bind(&p.description_en)
        .bind(scope)
        .bind(i as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn zone_of(s: String) -> Result<Zone> {
    s.parse()
        .map_err(|e: opchub_domain::UnknownZone| StoreError::Catalog(e.to_string()))
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Community {
    pub id: String,
    pub name: String,
    pub company_name: String,
    pub company_uscc: String,
    pub zone: Zone,
    pub address: String,
    pub operator_user_id: String,
    pub workstations_total: i64,
    pub workstations_free: i64,
    pub workstations_reserved: i64,
    pub workstations_occupied: i64,
}

const COMMUNITY_SELECT: &str = "SELECT c.id, c.name, c.company_name, c.company_uscc, c.zone, c.address, c.operator_user_id, \
    (SELECT COUNT(*) FROM workstations w WHERE w.community_id = c.id) AS total, \
    (SELECT COUNT(*) FROM workstations w WHERE w.community_id = c.id AND w.status = 'free') AS free, \
    (SELECT COUNT(*) FROM workstations w WHERE w.community_id = c.id AND w.status = 'reserved') AS reserved, \
    (SELECT COUNT(*) FROM workstations w WHERE w.community_id = c.id AND w.status = 'occupied') AS occupied \
    FROM communities c";

fn community_from(r: &AnyRow) -> Result<Community> {
    Ok(Community {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        company_name: r.try_get("company_name")?,
        company_uscc: r.try_get("company_uscc")?,
        zone: zone_of(r.try_get("zone")?)?,
        address: r.try_get("address")?,
        operator_user_id: r.try_get("operator_user_id")?,
        workstations_total: r.try_get("total")?,
        workstations_free: r.try_get("free")?,
        workstations_reserved: r.try_get("reserved")?,
        workstations_occupied: r.try_get("occupied")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Workstation {
    pub id: String,
    pub community_id: String,
    pub number: String,
    pub status: WorkstationStatus,
    pub opc_id: Option<String>,
}

fn workstation_from(r: &AnyRow) -> Result<Workstation> {
    let status: String = r.try_get("status")?;
    Ok(Workstation {
        id: r.try_get("id")?,
        community_id: r.try_get("community_id")?,
        number: r.try_get("number")?,
        status: status.parse().map_err(StoreError::Catalog)?,
        opc_id: r.try_get("opc_id")?,
    })
}

pub struct NewCommunity<'a> {
    pub name: &'a str,
    pub company_name: &'a str,
    pub company_uscc: &'a Uscc,
    pub zone: Zone,
    pub address: &'a str,
    pub operator_user_id: &'a str,
    pub workstations: u32,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Opc {
    pub id: String,
    pub name: String,
    pub uscc: Option<String>,
    /// `registered` (has a USCC) or `pending` (licence in progress at the service window, M4.3).
    pub registration_status: String,
    pub founder_name: String,
    pub founder_user_id: String,
    pub zone: Zone,
    pub theme_package: String,
    pub community_id: String,
    pub community_name: String,
    pub workstation_id: Option<String>,
    pub workstation_number: Option<String>,
    pub specialist_user_id: Option<String>,
    pub specialist_name: Option<String>,
    pub tax_registered: bool,
    /// Main industry, GB/T 4754-2017 (F3); None until declared.
    pub industry_code: Option<String>,
    pub created_at: i64,
}

const OPC_SELECT: &str = "SELECT o.id, o.name, o.uscc, o.registration_status, o.founder_name, o.founder_user_id, o.zone, o.theme_package, \
    o.community_id, c.name AS community_name, w.id AS workstation_id, w.number AS workstation_number, o.specialist_user_id, \
    s.display_name AS specialist_name, o.tax_registered, o.industry_code, o.created_at \
    FROM opcs o JOIN communities c ON c.id = o.community_id \
    LEFT JOIN workstations w ON w.opc_id = o.id LEFT JOIN users s ON s.id = o.specialist_user_id";

fn opc_from(r: &AnyRow) -> Result<Opc> {
    Ok(Opc {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uscc: r.try_get("uscc")?,
        registration_status: r.try_get("registration_status")?,
        founder_name: r.try_get("founder_name")?,
        founder_user_id: r.try_get("founder_user_id")?,
        zone: zone_of(r.try_get("zone")?)?,
        theme_package: r.try_get("theme_package")?,
        community_id: r.try_get("community_id")?,
        community_name: r.try_get("community_name")?,
        workstation_id: r.try_get("workstation_id")?,
        workstation_number: r.try_get("workstation_number")?,
        specialist_user_id: r.try_get("specialist_user_id")?,
        specialist_name: r.try_get("specialist_name")?,
        tax_registered: r.try_get::<i64, _>("tax_registered")? != 0,
        industry_code: r.try_get("industry_code")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The founder of an OPC being registered: a new account (the public wizard) or an existing
/// OPC-founder account that has no company yet.
pub enum Founder<'a> {
    New(NewUser<'a>),
    Existing(&'a User),
}

pub struct RegisterOpc<'a> {
    pub founder: Founder<'a>,
    pub name: &'a str,
    /// None: not yet registered with the market regulator; a service-window ticket opens.
    pub uscc: Option<&'a Uscc>,
    pub founder_name: &'a str,
    pub zone: Zone,
    pub theme_package: &'a str,
    pub workstation_id: &'a str,
    pub tax_registered: bool,
    pub industry_code: Option<&'a opchub_domain::IndustryCode>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub uscc: String,
    pub zone: Zone,
    pub owner_user_id: String,
    pub created_at: i64,
}

fn enterprise_from(r: &AnyRow) -> Result<Enterprise> {
    Ok(Enterprise {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uscc: r.try_get("uscc")?,
        zone: zone_of(r.try_get("zone")?)?,
        owner_user_id: r.try_get("owner_user_id")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub opc_id: String,
    pub opc_name: String,
    /// `question` (guidance, M4.3) or `licence` (service window: business licence application).
    pub kind: String,
    pub subject: String,
    /// `open` (waiting for the specialist), `answered` (waiting for the OPC), `closed`.
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const TICKET_SELECT: &str =
    "SELECT t.id, t.opc_id, o.name AS opc_name, t.kind, t.subject, t.status, t.created_by, t.created_at, t.updated_at \
    FROM tickets t JOIN opcs o ON o.id = t.opc_id";

fn ticket_from(r: &AnyRow) -> Result<Ticket> {
    Ok(Ticket {
        id: r.try_get("id")?,
        opc_id: r.try_get("opc_id")?,
        opc_name: r.try_get("opc_name")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TicketMessage {
    pub id: String,
    pub author_user_id: String,
    pub author_name: String,
    pub author_role: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, serde::Serialize, Default, utoipa::ToSchema)]
pub struct Counts {
    pub opcs: i64,
    pub communities: i64,
    pub workstations_free: i64,
    pub enterprises: i64,
}

impl Store {
    pub async fn theme_packages(&self) -> Result<Vec<ThemePackage>> {
        let rows = sqlx::query(
            "SELECT code, name_zh, name_en, description_zh, description_en, business_scope FROM theme_packages ORDER BY sort_order",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("business_scope")?;
                Ok(ThemePackage {
                    code: r.try_get("code")?,
                    name_zh: r.try_get("name_zh")?,
                    name_en: r.try_get("name_en")?,
                    description_zh: r.try_get("description_zh")?,
                    description_en: r.try_get("description_en")?,
                    business_scope: serde_json::from_str(&scope).map_err(|e| StoreError::Catalog(e.to_string()))?,
                })
            })
            .collect()
    }

    pub async fn counts(&self) -> Result<Counts> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM opcs) AS opcs, (SELECT COUNT(*) FROM communities) AS communities, \
             (SELECT COUNT(*) FROM workstations WHERE status = 'free') AS free, (SELECT COUNT(*) FROM enterprises) AS enterprises",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            opcs: r.try_get("opcs")?,
            communities: r.try_get("communities")?,
            workstations_free: r.try_get("free")?,
            enterprises: r.try_get("enterprises")?,
        })
    }

    // ---- communities and workstations (M1, M4.1) ----

    pub async fn create_community(&self, actor: &Actor, c: NewCommunity<'_>) -> Result<Community> {
        let id = new_id();
        let mut tx = self.begin().await?;
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
            .bind(c.operator_user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if role.as_deref() != Some(Role::CommunityOperator.as_str()) {
            return Err(StoreError::Invalid {
                field: "operator_user_id",
                code: "not_a_community_operator",
            });
        }
        sqlx::query("INSERT INTO communities (id, name, company_name, company_uscc, zone, address, operator_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(c.name)
            .bind(c.company_name)
            .bind(c.company_uscc.as_str())
            .bind(c.zone.as_str())
            .bind(c.address)
            .bind(c.operator_user_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        insert_workstations(&mut tx, &id, 0, c.workstations).await?;
        let after = serde_json::json!({ "id": id, "name": c.name, "company": c.company_name, "uscc": c.company_uscc.as_str(), "zone": c.zone.as_str(), "address": c.address, "workstations": c.workstations });
        record_after(
            &mut tx,
            actor,
            "community.create",
            "community",
            &id,
            after,
            format!("{} · {} 个工位", c.name, c.workstations),
        )
        .await?;
        tx.commit().await?;
        self.community(&id).await
    }

    pub async fn community(&self, id: &str) -> Result<Community> {
        let row = sqlx::query(&format!("{COMMUNITY_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(community_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// All communities, optionally of one zone or one operator, by name.
    pub async fn communities(&self, zone: Option<Zone>, operator_user_id: Option<&str>) -> Result<Vec<Community>> {
        let rows = sqlx::query(&format!(
            "{COMMUNITY_SELECT} WHERE ($1 IS NULL OR c.zone = $1) AND ($2 IS NULL OR c.operator_user_id = $2) ORDER BY c.zone, c.name"
        ))
        .bind(zone.map(|z| z.as_str().to_string()))
        .bind(operator_user_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(community_from).collect()
    }

    pub async fn workstations(&self, community_id: &str) -> Result<Vec<Workstation>> {
        let rows = sqlx::query("SELECT id, community_id, number, status, opc_id FROM workstations WHERE community_id = $1 ORDER BY number")
            .bind(community_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(workstation_from).collect()
    }

    pub async fn workstation(&self, id: &str) -> Result<Workstation> {
        let row = sqlx::query("SELECT id, community_id, number, status, opc_id FROM workstations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(workstation_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn add_workstations(&self, actor: &Actor, community_id: &str, count: u32) -> Result<Community> {
        let mut tx = self.begin().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workstations WHERE community_id = $1")
            .bind(community_id)
            .fetch_one(&mut *tx)
            .await?;
        insert_workstations(&mut tx, community_id, existing as u32, count).await?;
        let after = serde_json::json!({ "community_id": community_id, "workstations": existing + count as i64 });
        record_after(
            &mut tx,
            actor,
            "community.add_workstations",
            "community",
            community_id,
            after,
            format!("+{count}"),
        )
        .await?;
        tx.commit().await?;
        self.community(community_id).await
    }

    /// The community operator marks a workstation free or reserved. An occupied workstation
    /// is not changed here (it is released only when its OPC leaves).
    pub async fn set_workstation_status(&self, actor: &Actor, id: &str, status: WorkstationStatus) -> Result<Workstation> {
        if status == WorkstationStatus::Occupied {
            return Err(StoreError::Invalid {
                field: "status",
                code: "occupied_only_by_registration",
            });
        }
        let before = self.workstation(id).await?;
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE workstations SET status = $1, updated_at = $2 WHERE id = $3 AND status <> 'occupied'")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict("workstation_occupied"));
        }
        record_before_after(
            &mut tx,
            actor,
            "workstation.set_status",
            "workstation",
            id,
            serde_json::json!({ "status": before.status.as_str() }),
            serde_json::json!({ "status": status.as_str() }),
            format!("{} {} → {}", before.number, before.status.as_str(), status.as_str()),
        )
        .await?;
        tx.commit().await?;
        self.workstation(id).await
    }

    // ---- OPCs (G2, M4.1, M4.2) ----

    /// Registers an OPC at a free workstation in one transaction: the founder account (if new),
    /// the company, the workstation claim (exactly one of several concurrent claims wins) and,
    /// for a company without a USCC yet, a service-window licence ticket (M4.3).
    pub async fn register_opc(&self, actor: &Actor, r: RegisterOpc<'_>) -> Result<(Opc, User)> {
        let mut tx = self.begin().await?;
        let founder = match r.founder {
            Founder::New(nu) => insert_user(&mut tx, actor, nu).await?,
            Founder::Existing(u) => u.clone(),
        };
        let theme: Option<String> = sqlx::query_scalar("SELECT code FROM theme_packages WHERE code = $1")
            .bind(r.theme_package)
            .fetch_optional(&mut *tx)
            .await?;
        if theme.is_none() {
            return Err(StoreError::Invalid {
                field: "theme_package",
                code: "unknown_theme_package",
            });
        }
        let ws = sqlx::query(
            "SELECT w.community_id, w.number, c.zone FROM workstations w JOIN communities c ON c.id = w.community_id WHERE w.id = $1",
        )
        .bind(r.workstation_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ws) = ws else {
            return Err(StoreError::Invalid {
                field: "workstation_id",
                code: "unknown_workstation",
            });
        };
        let community_id: String = ws.try_get("community_id")?;
        let number: String = ws.try_get("number")?;
        let ws_zone: String = ws.try_get("zone")?;
        if ws_zone != r.zone.as_str() {
            return Err(StoreError::Invalid {
                field: "workstation_id",
                code: "workstation_outside_zone",
            });
        }
        let id = new_id();
        let status = if r.uscc.is_some() { "registered" } else { "pending" };
        let now = now_ms();
        let ins = sqlx::query(
            "INSERT INTO opcs (id, name, uscc, registration_status, founder_name, founder_user_id, zone, theme_package, community_id, tax_registered, industry_code, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(r.name)
        .bind(r.uscc.map(|u| u.as_str().to_string()))
        .bind(status)
        .bind(r.founder_name)
        .bind(&founder.id)
        .bind(r.zone.as_str())
        .bind(r.theme_package)
        .bind(&community_id)
        .bind(r.tax_registered as i64)
        .bind(r.industry_code.map(|c| c.as_str().to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = ins {
            if is_unique_violation(&e, "uscc") {
                return Err(StoreError::Conflict("uscc_taken"));
            }
            if is_unique_violation(&e, "founder_user_id") {
                return Err(StoreError::Conflict("already_registered"));
            }
            return Err(e.into());
        }
        // M4.1: the workstation is the address filing record. The conditional update is the
        // claim: under concurrency exactly one transaction sees status = 'free'.
        let claimed =
            sqlx::query("UPDATE workstations SET status = 'occupied', opc_id = $1, updated_at = $2 WHERE id = $3 AND status = 'free'")
                .bind(&id)
                .bind(now)
                .bind(r.workstation_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed != 1 {
            return Err(StoreError::Conflict("workstation_taken"));
        }
        let after = serde_json::json!({ "id": id, "name": r.name, "uscc": r.uscc.map(|u| u.as_str()), "zone": r.zone.as_str(), "theme_package": r.theme_package, "workstation": r.workstation_id });
        record_after(
            &mut tx,
            actor,
            "opc.register",
            "opc",
            &id,
            after,
            format!("{} @ {}", r.name, number),
        )
        .await?;
        if r.uscc.is_none() {
            create_ticket_tx(
                &mut tx,
                actor,
                &id,
                &founder.id,
                "licence",
                "营业执照办理 (business licence application)",
                "企业尚未完成工商注册，申请服务专窗受理、审核并办理营业执照。",
            )
            .await?;
        }
        tx.commit().await?;
        Ok((self.opc(&id).await?, founder))
    }

    pub async fn opc(&self, id: &str) -> Result<Opc> {
        let row = sqlx::query(&format!("{OPC_SELECT} WHERE o.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(opc_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn opc_of_founder(&self, user_id: &str) -> Result<Option<Opc>> {
        let row = sqlx::query(&format!("{OPC_SELECT} WHERE o.founder_user_id = $1"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(opc_from).transpose()
    }

    /// OPCs, optionally those of one community, one zone or one specialist.
    pub async fn opcs(&self, community_id: Option<&str>, zone: Option<Zone>, specialist_user_id: Option<&str>) -> Result<Vec<Opc>> {
        let rows = sqlx::query(&format!(
            "{OPC_SELECT} WHERE ($1 IS NULL OR o.community_id = $1) AND ($2 IS NULL OR o.zone = $2) AND ($3 IS NULL OR o.specialist_user_id = $3) ORDER BY o.created_at DESC, o.id"
        ))
        .bind(community_id.map(str::to_string))
        .bind(zone.map(|z| z.as_str().to_string()))
        .bind(specialist_user_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(opc_from).collect()
    }

    /// M4.3: the committee assigns a service specialist to an OPC.
    pub async fn assign_specialist(&self, actor: &Actor, opc_id: &str, specialist_user_id: &str) -> Result<Opc> {
        let before = self.opc(opc_id).await?;
        let mut tx = self.begin().await?;
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1 AND disabled = 0")
            .bind(specialist_user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if role.as_deref() != Some(Role::Specialist.as_str()) {
            return Err(StoreError::Invalid {
                field: "specialist_user_id",
                code: "not_a_specialist",
            });
        }
        sqlx::query("UPDATE opcs SET specialist_user_id = $1 WHERE id = $2")
            .bind(specialist_user_id)
            .bind(opc_id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "opc.assign_specialist",
            "opc",
            opc_id,
            serde_json::json!({ "specialist": before.specialist_user_id }),
            serde_json::json!({ "specialist": specialist_user_id }),
            format!("{} ← {}", before.name, specialist_user_id),
        )
        .await?;
        tx.commit().await?;
        self.opc(opc_id).await
    }

    /// Sets when an OPC registered (its workstation occupied since then): for loaders only —
    /// the demo's history, or OPCs registered at a workstation before the platform kept them.
    /// Eligibility (M1.1, M2.x) is read from this instant, so no route or page calls it; the
    /// change is audited with the instant it replaced.
    pub async fn set_opc_registered_at(&self, actor: &Actor, opc_id: &str, at_ms: i64) -> Result<Opc> {
        let before = self.opc(opc_id).await?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE opcs SET created_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(opc_id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "opc.registered_at",
            "opc",
            opc_id,
            serde_json::json!({ "created_at": before.created_at }),
            serde_json::json!({ "created_at": at_ms }),
            format!("{} registered at {at_ms}", before.name),
        )
        .await?;
        tx.commit().await?;
        self.opc(opc_id).await
    }

    // ---- enterprises ----

    pub async fn create_enterprise(
        &self,
        actor: &Actor,
        owner: NewUser<'_>,
        name: &str,
        uscc: &Uscc,
        zone: Zone,
    ) -> Result<(Enterprise, User)> {
        let mut tx = self.begin().await?;
        let user = insert_user(&mut tx, actor, owner).await?;
        let id = new_id();
        let res = sqlx::query("INSERT INTO enterprises (id, name, uscc, zone, owner_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(name)
            .bind(uscc.as_str())
            .bind(zone.as_str())
            .bind(&user.id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "uscc") {
                return Err(StoreError::Conflict("uscc_taken"));
            }
            return Err(e.into());
        }
        let after = serde_json::json!({ "id": id, "name": name, "uscc": uscc.as_str(), "zone": zone.as_str() });
        record_after(&mut tx, actor, "enterprise.create", "enterprise", &id, after, name.to_string()).await?;
        tx.commit().await?;
        Ok((self.enterprise(&id).await?, user))
    }

    pub async fn enterprise(&self, id: &str) -> Result<Enterprise> {
        let row = sqlx::query("SELECT id, name, uscc, zone, owner_user_id, created_at FROM enterprises WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(enterprise_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn enterprise_of_owner(&self, user_id: &str) -> Result<Option<Enterprise>> {
        let row = sqlx::query("SELECT id, name, uscc, zone, owner_user_id, created_at FROM enterprises WHERE owner_user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(enterprise_from).transpose()
    }

    pub async fn enterprises(&self) -> Result<Vec<Enterprise>> {
        let rows = sqlx::query("SELECT id, name, uscc, zone, owner_user_id, created_at FROM enterprises ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(enterprise_from).collect()
    }

    // ---- service-window tickets (M4.3) ----

    pub async fn create_ticket(
        &self,
        actor: &Actor,
        opc_id: &str,
        author_user_id: &str,
        kind: &str,
        subject: &str,
        body: &str,
    ) -> Result<Ticket> {
        let mut tx = self.begin().await?;
        let id = create_ticket_tx(&mut tx, actor, opc_id, author_user_id, kind, subject, body).await?;
        tx.commit().await?;
        self.ticket(&id).await
    }

    pub async fn ticket(&self, id: &str) -> Result<Ticket> {
        let row = sqlx::query(&format!("{TICKET_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn ticket_messages(&self, ticket_id: &str) -> Result<Vec<TicketMessage>> {
        let rows = sqlx::query(
            "SELECT m.id, m.author_user_id, u.display_name, u.role, m.body, m.created_at FROM ticket_messages m JOIN users u ON u.id = m.author_user_id \
             WHERE m.ticket_id = $1 ORDER BY m.created_at, m.id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketMessage {
                    id: r.try_get("id")?,
                    author_user_id: r.try_get("author_user_id")?,
                    author_name: r.try_get("display_name")?,
                    author_role: r.try_get("role")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn tickets_of_opc(&self, opc_id: &str) -> Result<Vec<Ticket>> {
        let rows = sqlx::query(&format!("{TICKET_SELECT} WHERE t.opc_id = $1 ORDER BY t.updated_at DESC"))
            .bind(opc_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ticket_from).collect()
    }

    /// A specialist's queue: unclosed tickets of the OPCs assigned to them and of OPCs that
    /// have no specialist yet, oldest first (the service window serves in order).
    pub async fn ticket_queue(&self, specialist_user_id: &str) -> Result<Vec<Ticket>> {
        let rows = sqlx::query(&format!(
            "{TICKET_SELECT} WHERE t.status <> 'closed' AND (o.specialist_user_id = $1 OR o.specialist_user_id IS NULL) ORDER BY t.created_at, t.id"
        ))
        .bind(specialist_user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from).collect()
    }

    /// Adds a reply. A specialist's reply marks the ticket answered; the OPC's reopens it.
    pub async fn reply_ticket(&self, actor: &Actor, ticket_id: &str, author: &User, body: &str) -> Result<Ticket> {
        let mut tx = self.begin().await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&mut *tx)
            .await?;
        match status.as_deref() {
            None => return Err(StoreError::NotFound),
            Some("closed") => return Err(StoreError::Conflict("ticket_closed")),
            _ => {}
        }
        let now = now_ms();
        sqlx::query("INSERT INTO ticket_messages (id, ticket_id, author_user_id, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(new_id())
            .bind(ticket_id)
            .bind(&author.id)
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let new_status = if author.role == Role::OpcFounder { "open" } else { "answered" };
        sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(new_status)
            .bind(now)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "ticket.reply",
            "ticket",
            ticket_id,
            serde_json::json!({ "status": status }),
            serde_json::json!({ "status": new_status, "body": body }),
            new_status.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.ticket(ticket_id).await
    }

    pub async fn close_ticket(&self, actor: &Actor, ticket_id: &str) -> Result<Ticket> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE tickets SET status = 'closed', updated_at = $1 WHERE id = $2 AND status <> 'closed'")
            .bind(now_ms())
            .bind(ticket_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM tickets WHERE id = $1")
                .bind(ticket_id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(if exists.is_some() {
                StoreError::Conflict("ticket_closed")
            } else {
                StoreError::NotFound
            });
        }
        record_after(
            &mut tx,
            actor,
            "ticket.close",
            "ticket",
            ticket_id,
            serde_json::json!({ "status": "closed" }),
            "closed".into(),
        )
        .await?;
        tx.commit().await?;
        self.ticket(ticket_id).await
    }
}

async fn insert_workstations(tx: &mut Tx, community_id: &str, start: u32, count: u32) -> Result<()> {
    let now = now_ms();
    for i in start..start + count {
        sqlx::query("INSERT INTO workstations (id, community_id, number, status, updated_at) VALUES ($1, $2, $3, 'free', $4)")
            .bind(new_id())
            .bind(community_id)
            .bind(format!("A-{:03}", i + 1))
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn create_ticket_tx(
    tx: &mut Tx,
    actor: &Actor,
    opc_id: &str,
    author_user_id: &str,
    kind: &str,
    subject: &str,
    body: &str,
) -> Result<String> {
    let id = new_id();
    let now = now_ms();
    let res = sqlx::query("INSERT INTO tickets (id, opc_id, kind, subject, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, 'open', $5, $6, $6)")
        .bind(&id)
        .bind(opc_id)
        .bind(kind)
        .bind(subject)
        .bind(author_user_id)
        .bind(now)
        .execute(&mut **tx)
        .await;
    if let Err(e) = res {
        if let sqlx::Error::Database(db) = &e {
            if db.is_foreign_key_violation() {
                return Err(StoreError::NotFound);
            }
        }
        return Err(e.into());
    }
    sqlx::query("INSERT INTO ticket_messages (id, ticket_id, author_user_id, body, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(new_id())
        .bind(&id)
        .bind(author_user_id)
        .bind(body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    record_after(
        tx,
        actor,
        "ticket.create",
        "ticket",
        &id,
        serde_json::json!({ "opc": opc_id, "kind": kind, "subject": subject }),
        subject.to_string(),
    )
    .await?;
    Ok(id)
}
