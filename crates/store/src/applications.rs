//! Applications and funds storage (issue 8): applications with their answers, evidence files
//! (by SHA-256), the timeline of every status change, conflict-of-interest declines, payment
//! batches of the finance bureau, recovery orders (F2, S5) with repayments and offsets, and the
//! platform's own no-support list. Every change is one transaction with its audit entry and
//! in-app notifications; an action names the application version it saw, so of two reviewers
//! acting at once one wins and the other gets `application_changed`.

use crate::audit::{record_after, Actor};
use crate::caps::CapKey;
use crate::demands::notify;
use crate::{new_id, now_ms, Result, Store, StoreError, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Application {
    pub id: String,
    pub clause: String,
    pub applicant_user_id: String,
    pub beneficiary: String,
    pub beneficiary_role: String,
    pub beneficiary_name: String,
    pub uscc: Option<String>,
    pub agency: Option<String>,
    pub year: i64,
    pub project_id: Option<String>,
    /// The applicant's answers (JSON object of facts).
    pub form: String,
    pub status: String,
    pub stage: Option<String>,
    pub stage_since: Option<i64>,
    pub engine_fen: Option<i64>,
    /// The engine's decision (JSON, with trace) at the last computation.
    pub decision: Option<String>,
    pub decided_fen: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub paid_fen: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
}

const APP_COLS: &str =
    "id, clause, applicant_user_id, beneficiary, beneficiary_role, beneficiary_name, uscc, agency, year, project_id, form, status, stage, \
     stage_since, engine_fen, decision, decided_fen, decided_by, decision_reason, paid_fen, version, created_at, updated_at, submitted_at";

fn app_from(r: &AnyRow) -> Result<Application> {
    Ok(Application {
        id: r.try_get("id")?,
        clause: r.try_get("clause")?,
        applicant_user_id: r.try_get("applicant_user_id")?,
        beneficiary: r.try_get("beneficiary")?,
        beneficiary_role: r.try_get("beneficiary_role")?,
        beneficiary_name: r.try_get("beneficiary_name")?,
        uscc: r.try_get("uscc")?,
        agency: r.try_get("agency")?,
        year: r.try_get("year")?,
        project_id: r.try_get("project_id")?,
        form: r.try_get("form")?,
        status: r.try_get("status")?,
        stage: r.try_get("stage")?,
        stage_since: r.try_get("stage_since")?,
        engine_fen: r.try_get("engine_fen")?,
        decision: r.try_get("decision")?,
        decided_fen: r.try_get("decided_fen")?,
        decided_by: r.try_get("decided_by")?,
        decision_reason: r.try_get("decision_reason")?,
        paid_fen: r.try_get("paid_fen")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        submitted_at: r.try_get("submitted_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EvidenceFile {
    pub id: String,
    pub application_id: String,
    pub slot: i64,
    pub name: String,
    pub mime: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    pub false_reason: Option<String>,
    pub false_by: Option<String>,
    pub false_at: Option<i64>,
}

fn file_from(r: &AnyRow) -> Result<EvidenceFile> {
    Ok(EvidenceFile {
        id: r.try_get("id")?,
        application_id: r.try_get("application_id")?,
        slot: r.try_get("slot")?,
        name: r.try_get("name")?,
        mime: r.try_get("mime")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        uploaded_by: r.try_get("uploaded_by")?,
        uploaded_at: r.try_get("uploaded_at")?,
        false_reason: r.try_get("false_reason")?,
        false_by: r.try_get("false_by")?,
        false_at: r.try_get("false_at")?,
    })
}

/// One entry of an application's timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AppEvent {
    pub at: i64,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub stage: Option<String>,
    pub action: String,
    pub status_after: String,
    pub note: Option<String>,
    pub amount_fen: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Decline {
    pub user_id: String,
    pub stage: String,
    pub reason: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct NewApplication {
    pub clause: String,
    pub applicant_user_id: String,
    pub beneficiary: String,
    pub beneficiary_role: String,
    pub beneficiary_name: String,
    pub uscc: Option<String>,
    pub agency: Option<String>,
    pub year: i64,
    pub project_id: Option<String>,
    pub form: String,
}

/// A review step decided by the workflow, applied by [`Store::apply_review`].
#[derive(Debug, Clone)]
pub struct ReviewStep {
    pub expected_version: i64,
    pub stage: String,
    pub action: String,
    pub reason: String,
    /// `draft`, `returned`, `in_review`, `approved`, `granted`, `rejected`.
    pub status_after: String,
    pub stage_after: Option<String>,
    pub engine_fen: Option<i64>,
    pub decision: Option<String>,
    pub decided_fen: Option<i64>,
    /// The cap to consume when the step approves an amount: key and cap in force.
    pub cap: Option<(CapKey, i64)>,
    /// Who acts next (notified): role and, for agency stages, the agency.
    pub next_role: Option<String>,
    pub next_agency: Option<String>,
    /// M8.1: the growth milestone (kind, day) recorded when the step grants the application.
    pub milestone: Option<(String, String)>,
    /// F1: the yearly budgets an approved amount must fit in — the clause's, with the year's
    /// other approvals of the clause (`clause_budget_exceeded` otherwise), and the policy-wide
    /// one, with every clause's approvals and the year's settlement grants
    /// (`policy_budget_exceeded`); nothing is written when either is exceeded.
    pub budget: Option<ClauseBudget>,
}

/// F1: the yearly budgets bounding what a clause's applications are approved for in a year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseBudget {
    pub clause: String,
    pub year: i64,
    /// The clause's own yearly budget, when it has one.
    pub budget_fen: Option<i64>,
    /// The policy-wide yearly budget, when the policy has one (shared with the 免申即享
    /// settlement of the same year).
    pub policy_budget_fen: Option<i64>,
}

/// What the approved applications of a year add up to, net of the money recovered from them
/// (F1, S5: a repaid or offset recovery order gives its budget back). `$1` year, `$2` clause or
/// NULL for every clause, `$3` an application id left out (the one being decided) or ''.
pub(crate) const APPROVED_NET_SQL: &str = "SELECT CAST(COALESCE(SUM(a.decided_fen - COALESCE((SELECT SUM(r.settled_fen) FROM recovery_orders r WHERE r.application_id = a.id), 0)), 0) AS BIGINT) AS total \
     FROM applications a WHERE a.year = $1 AND ($2 IS NULL OR a.clause = $2) AND a.id <> $3 AND a.status IN ('approved', 'paid')";

/// What the year's 免申即享 settlement has granted (approved, net of lowered keys), all clauses.
pub(crate) const SETTLED_IN_YEAR_SQL: &str =
    "SELECT CAST(COALESCE(SUM(approved_fen), 0) AS BIGINT) AS total FROM settlement_grants WHERE year = $1";

#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    pub applicant: Option<String>,
    pub status: Option<String>,
    pub stage: Option<String>,
    pub agency: Option<String>,
    pub clause: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FundBatch {
    pub id: String,
    pub reference: String,
    pub created_by: String,
    pub created_at: i64,
    pub line_count: i64,
    pub approved_fen: i64,
    pub offset_fen: i64,
    pub paid_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FundPayment {
    pub batch_id: String,
    pub application_id: String,
    pub clause: String,
    pub beneficiary: String,
    pub beneficiary_name: String,
    pub uscc: Option<String>,
    pub approved_fen: i64,
    pub offset_fen: i64,
    pub paid_fen: i64,
    pub payment_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RecoveryOrder {
    pub id: String,
    pub application_id: String,
    pub beneficiary: String,
    /// `false_evidence` or `violation`.
    pub kind: String,
    pub reason: String,
    pub paid_fen: i64,
    pub recomputed_fen: i64,
    pub amount_fen: i64,
    pub settled_fen: i64,
    pub due_on: String,
    /// `open` or `settled`.
    pub status: String,
    /// The engine's decision without the false evidence (JSON).
    pub decision: String,
    pub created_by: String,
    pub created_at: i64,
}

const ORDER_COLS: &str = "id, application_id, beneficiary, kind, reason, paid_fen, recomputed_fen, amount_fen, settled_fen, due_on, status, decision, created_by, created_at";

fn order_from(r: &AnyRow) -> Result<RecoveryOrder> {
    Ok(RecoveryOrder {
        id: r.try_get("id")?,
        application_id: r.try_get("application_id")?,
        beneficiary: r.try_get("beneficiary")?,
        kind: r.try_get("kind")?,
        reason: r.try_get("reason")?,
        paid_fen: r.try_get("paid_fen")?,
        recomputed_fen: r.try_get("recomputed_fen")?,
        amount_fen: r.try_get("amount_fen")?,
        settled_fen: r.try_get("settled_fen")?,
        due_on: r.try_get("due_on")?,
        status: r.try_get("status")?,
        decision: r.try_get("decision")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct NewRecovery {
    pub application_id: String,
    pub kind: String,
    pub reason: String,
    pub false_files: Vec<String>,
    pub recomputed_fen: i64,
    pub decision: String,
    pub due_on: String,
    /// The no-support entry: key (USCC or party id) and until when.
    pub party_key: String,
    pub no_support_until_ms: i64,
}

/// Per clause and status: how many and how much (committee dashboard).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClauseStat {
    pub clause: String,
    pub status: String,
    pub stage: Option<String>,
    pub count: i64,
    pub engine_fen: i64,
    pub decided_fen: i64,
    pub paid_fen: i64,
}

fn need_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(StoreError::Invalid {
            field: "reason",
            code: "reason_required",
        });
    }
    Ok(())
}

async fn event(
    tx: &mut Tx,
    app_id: &str,
    actor: &Actor,
    stage: Option<&str>,
    action: &str,
    status: &str,
    note: Option<&str>,
    amount: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO application_events (id, application_id, at, actor_user_id, actor_role, stage, action, status_after, note, amount_fen) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id())
    .bind(app_id)
    .bind(now_ms())
    .bind(actor.user_id.clone())
    .bind(actor.role.clone())
    .bind(stage)
    .bind(action)
    .bind(status)
    .bind(note)
    .bind(amount)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Notifies every enabled user of `role` (and `agency`, for agency users).
async fn notify_role(tx: &mut Tx, role: &str, agency: Option<&str>, kind: &str, object_kind: &str, id: &str, title: &str) -> Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE role = $1 AND disabled = 0 AND ($2 IS NULL OR agency = $2)")
        .bind(role)
        .bind(agency)
        .fetch_all(&mut **tx)
        .await?;
    for uid in ids {
        notify(tx, &uid, kind, object_kind, id, title).await?;
    }
    Ok(())
}

impl Store {
    pub async fn application(&self, id: &str) -> Result<Application> {
        let r = sqlx::query(&format!("SELECT {APP_COLS} FROM applications WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        app_from(&r)
    }

    pub async fn applications(&self, f: &AppFilter) -> Result<Vec<Application>> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLS} FROM applications WHERE ($1 IS NULL OR applicant_user_id = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR stage = $3) AND ($4 IS NULL OR agency = $4) AND ($5 IS NULL OR clause = $5) ORDER BY updated_at DESC, id LIMIT $6"
        ))
        .bind(f.applicant.clone())
        .bind(f.status.clone())
        .bind(f.stage.clone())
        .bind(f.agency.clone())
        .bind(f.clause.clone())
        .bind(if f.limit > 0 { f.limit } else { 500 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_from).collect()
    }

    pub async fn application_files(&self, app_id: &str) -> Result<Vec<EvidenceFile>> {
        let rows = sqlx::query(
            "SELECT id, application_id, slot, name, mime, size, sha256, uploaded_by, uploaded_at, false_reason, false_by, false_at \
             FROM application_files WHERE application_id = $1 ORDER BY slot, uploaded_at, id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from).collect()
    }

    pub async fn application_events(&self, app_id: &str) -> Result<Vec<AppEvent>> {
        let rows = sqlx::query(
            "SELECT at, actor_user_id, actor_role, stage, action, status_after, note, amount_fen FROM application_events WHERE application_id = $1 ORDER BY at, id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AppEvent {
                    at: r.try_get("at")?,
                    actor_user_id: r.try_get("actor_user_id")?,
                    actor_role: r.try_get("actor_role")?,
                    stage: r.try_get("stage")?,
                    action: r.try_get("action")?,
                    status_after: r.try_get("status_after")?,
                    note: r.try_get("note")?,
                    amount_fen: r.try_get("amount_fen")?,
                })
            })
            .collect()
    }

    pub async fn application_declines(&self, app_id: &str) -> Result<Vec<Decline>> {
        let rows = sqlx::query("SELECT user_id, stage, reason, at FROM application_declines WHERE application_id = $1 ORDER BY at")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Decline {
                    user_id: r.try_get("user_id")?,
                    stage: r.try_get("stage")?,
                    reason: r.try_get("reason")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// The agency an agency user belongs to.
    pub async fn agency_of(&self, user_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT agency FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    pub async fn set_user_agency(&self, actor: &Actor, user_id: &str, agency: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE users SET agency = $1 WHERE id = $2 AND role = 'agency'")
            .bind(agency)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Err(StoreError::NotFound);
        }
        record_after(
            &mut tx,
            actor,
            "user.agency",
            "user",
            user_id,
            serde_json::json!({ "agency": agency }),
            format!("agency {agency}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_application(&self, actor: &Actor, a: NewApplication) -> Result<Application> {
        let mut tx = self.begin().await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO applications (id, clause, applicant_user_id, beneficiary, beneficiary_role, beneficiary_name, uscc, agency, year, project_id, form, status, \
             paid_fen, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'draft', 0, 1, $12, $12)",
        )
        .bind(&id)
        .bind(&a.clause)
        .bind(&a.applicant_user_id)
        .bind(&a.beneficiary)
        .bind(&a.beneficiary_role)
        .bind(&a.beneficiary_name)
        .bind(a.uscc.clone())
        .bind(a.agency.clone())
        .bind(a.year)
        .bind(a.project_id.clone())
        .bind(&a.form)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        event(&mut tx, &id, actor, None, "created", "draft", None, None).await?;
        record_after(
            &mut tx,
            actor,
            "application.create",
            "application",
            &id,
            serde_json::json!({ "clause": a.clause, "year": a.year }),
            format!("{} draft", a.clause),
        )
        .await?;
        tx.commit().await?;
        self.application(&id).await
    }

    /// The applicant changes its answers (draft or returned only).
    pub async fn update_application_form(
        &self,
        actor: &Actor,
        id: &str,
        form: &str,
        year: i64,
        project_id: Option<&str>,
    ) -> Result<Application> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE applications SET form = $1, year = $2, project_id = $3, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND status IN ('draft', 'returned')",
        )
        .bind(form)
        .bind(year)
        .bind(project_id)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            drop(tx);
            self.application(id).await?;
            return Err(StoreError::Conflict("application_not_editable"));
        }
        record_after(
            &mut tx,
            actor,
            "application.update",
            "application",
            id,
            serde_json::json!({ "year": year }),
            "answers changed".into(),
        )
        .await?;
        tx.commit().await?;
        self.application(id).await
    }

    /// Records an evidence file already stored by its SHA-256 (draft or returned only).
    pub async fn add_application_file(
        &self,
        actor: &Actor,
        app_id: &str,
        slot: i64,
        name: &str,
        mime: &str,
        size: i64,
        sha256: &str,
    ) -> Result<EvidenceFile> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE applications SET version = version + 1, updated_at = $1 WHERE id = $2 AND status IN ('draft', 'returned')")
                .bind(now_ms())
                .bind(app_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n != 1 {
            drop(tx);
            self.application(app_id).await?;
            return Err(StoreError::Conflict("application_not_editable"));
        }
        let id = new_id();
        let uploader = actor.user_id.clone().unwrap_or_default();
        sqlx::query(
            "INSERT INTO application_files (id, application_id, slot, name, mime, size, sha256, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(app_id)
        .bind(slot)
        .bind(name)
        .bind(mime)
        .bind(size)
        .bind(sha256)
        .bind(&uploader)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        record_after(
            &mut tx,
            actor,
            "application.file",
            "application",
            app_id,
            serde_json::json!({ "slot": slot, "sha256": sha256, "size": size }),
            format!("evidence {name}"),
        )
        .await?;
        tx.commit().await?;
        let files = self.application_files(app_id).await?;
        files.into_iter().find(|f| f.id == id).ok_or(StoreError::NotFound)
    }

    /// Applies a review step decided by the workflow (also the applicant's submission): only if
    /// the application is still at `expected_version` — otherwise `application_changed` and
    /// nothing is written. An approval with an amount consumes its cap in the same transaction.
    pub async fn apply_review(&self, actor: &Actor, id: &str, step: &ReviewStep) -> Result<Application> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let decider = if step.decided_fen.is_some() || step.status_after == "granted" || step.status_after == "rejected" {
            actor.user_id.clone()
        } else {
            None
        };
        let submitted = step.action == "submit";
        let n = sqlx::query(
            "UPDATE applications SET status = $1, stage = $2, stage_since = $3, engine_fen = COALESCE($4, engine_fen), decision = COALESCE($5, decision), \
             decided_fen = COALESCE($6, decided_fen), decided_by = COALESCE($7, decided_by), decision_reason = CASE WHEN $8 = '' THEN decision_reason ELSE $8 END, \
             submitted_at = CASE WHEN $9 = 1 THEN $3 ELSE submitted_at END, version = version + 1, updated_at = $3 \
             WHERE id = $10 AND version = $11",
        )
        .bind(&step.status_after)
        .bind(step.stage_after.clone())
        .bind(now)
        .bind(step.engine_fen)
        .bind(step.decision.clone())
        .bind(step.decided_fen)
        .bind(decider.clone())
        .bind(if step.status_after == "rejected" || step.decided_fen.is_some() { step.reason.clone() } else { String::new() })
        .bind(i64::from(submitted))
        .bind(id)
        .bind(step.expected_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            drop(tx);
            self.application(id).await?;
            return Err(StoreError::Conflict("application_changed"));
        }
        if let (Some((key, cap_fen)), Some(amount)) = (&step.cap, step.decided_fen) {
            if amount > 0 {
                consume_exact(&mut tx, actor, key, *cap_fen, amount, &format!("application:{id}"), now).await?;
            }
        }
        if let (Some(budget), Some(amount)) = (&step.budget, step.decided_fen) {
            if amount > 0 {
                within_budget(&mut tx, budget, id, amount, now).await?;
            }
        }
        if let (Some((kind, day)), "granted") = (&step.milestone, step.status_after.as_str()) {
            sqlx::query(
                "INSERT INTO milestones (id, opc_id, kind, day, application_id, created_at) SELECT $1, beneficiary, $2, $3, id, $4 FROM applications WHERE id = $5",
            )
            .bind(new_id())
            .bind(kind)
            .bind(day)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let note = (!step.reason.trim().is_empty()).then_some(step.reason.as_str());
        event(
            &mut tx,
            id,
            actor,
            Some(&step.stage),
            &step.action,
            &step.status_after,
            note,
            step.decided_fen,
        )
        .await?;
        record_after(&mut tx, actor, "application.review", "application", id, serde_json::json!({ "action": step.action, "stage": step.stage, "status": step.status_after, "next_stage": step.stage_after, "decided_fen": step.decided_fen }), format!("{} at {} → {}", step.action, step.stage, step.status_after))
        .await?;
        let (applicant, clause): (String, String) = {
            let r = sqlx::query("SELECT applicant_user_id, clause FROM applications WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            (r.try_get("applicant_user_id")?, r.try_get("clause")?)
        };
        if !submitted {
            notify(
                &mut tx,
                &applicant,
                &format!("application_{}", step.status_after),
                "application",
                id,
                &clause,
            )
            .await?;
        }
        if let Some(role) = &step.next_role {
            notify_role(
                &mut tx,
                role,
                step.next_agency.as_deref(),
                "application_to_review",
                "application",
                id,
                &clause,
            )
            .await?;
        }
        tx.commit().await?;
        self.application(id).await
    }

    /// Conflict of interest: the reviewer steps aside; it may no longer act on the application.
    pub async fn decline_application(&self, actor: &Actor, id: &str, stage: &str, reason: &str) -> Result<()> {
        need_reason(reason)?;
        let user = actor.user_id.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let res = sqlx::query("INSERT INTO application_declines (application_id, user_id, stage, reason, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(&user)
            .bind(stage)
            .bind(reason)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if crate::is_unique_violation(&e, "application_declines") || crate::is_unique_violation(&e, "pkey") {
                return Err(StoreError::Conflict("already_declined"));
            }
            return Err(e.into());
        }
        event(&mut tx, id, actor, Some(stage), "decline", "in_review", Some(reason), None).await?;
        record_after(
            &mut tx,
            actor,
            "application.decline",
            "application",
            id,
            serde_json::json!({ "stage": stage }),
            "conflict of interest".into(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The finance bureau pays approved applications in one batch: each must be `approved` and
    /// not decided by the payer (two-person rule, checked again here); open recovery orders of
    /// the same beneficiary are offset first (F2, S5). All or nothing.
    pub async fn pay_applications(&self, actor: &Actor, reference: &str, items: &[(String, String)]) -> Result<FundBatch> {
        if reference.trim().is_empty() || items.is_empty() {
            return Err(StoreError::Invalid {
                field: if items.is_empty() { "applications" } else { "reference" },
                code: "required",
            });
        }
        let payer = actor.user_id.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let now = now_ms();
        let batch_id = new_id();
        let res = sqlx::query(
            "INSERT INTO fund_batches (id, reference, created_by, created_at, line_count, approved_fen, offset_fen, paid_fen) VALUES ($1, $2, $3, $4, 0, 0, 0, 0)",
        )
        .bind(&batch_id)
        .bind(reference.trim())
        .bind(&payer)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if crate::is_unique_violation(&e, "reference") || crate::is_unique_violation(&e, "fund_batches") {
                return Err(StoreError::Conflict("reference_taken"));
            }
            return Err(e.into());
        }
        let (mut approved_total, mut offset_total, mut paid_total) = (0i64, 0i64, 0i64);
        for (app_id, pay_ref) in items {
            if pay_ref.trim().is_empty() {
                return Err(StoreError::Invalid {
                    field: "payment_reference",
                    code: "required",
                });
            }
            let row = sqlx::query(
                "SELECT status, decided_by, decided_fen, beneficiary, applicant_user_id, clause FROM applications WHERE id = $1",
            )
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::Invalid {
                field: "applications",
                code: "not_found",
            })?;
            let (status, decided_by, decided_fen, beneficiary, applicant, clause): (
                String,
                Option<String>,
                Option<i64>,
                String,
                String,
                String,
            ) = (
                row.try_get("status")?,
                row.try_get("decided_by")?,
                row.try_get("decided_fen")?,
                row.try_get("beneficiary")?,
                row.try_get("applicant_user_id")?,
                row.try_get("clause")?,
            );
            if status != "approved" {
                return Err(StoreError::Conflict("application_not_approved"));
            }
            if decided_by.as_deref() == Some(payer.as_str()) {
                return Err(StoreError::Conflict("application_two_person_rule"));
            }
            let amount = decided_fen.unwrap_or(0);
            // F2, S5: offset open recovery orders of this beneficiary (settlement ones, then
            // application ones), oldest first.
            let offset =
                crate::grants::offset_open_recoveries(&mut tx, &beneficiary, amount, &format!("offset:{batch_id}:{app_id}"), &payer, now)
                    .await?;
            let left = amount - offset;
            let n = sqlx::query("UPDATE applications SET status = 'paid', paid_fen = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND status = 'approved'")
                .bind(amount)
                .bind(now)
                .bind(app_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("application_not_approved"));
            }
            sqlx::query(
                "INSERT INTO fund_payments (batch_id, application_id, approved_fen, offset_fen, paid_fen, payment_reference) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&batch_id)
            .bind(app_id)
            .bind(amount)
            .bind(offset)
            .bind(left)
            .bind(pay_ref.trim())
            .execute(&mut *tx)
            .await?;
            let note = format!("{} {}", reference.trim(), pay_ref.trim());
            event(
                &mut tx,
                app_id,
                actor,
                Some("finance_payment"),
                "pay",
                "paid",
                Some(&note),
                Some(amount),
            )
            .await?;
            notify(&mut tx, &applicant, "application_paid", "application", app_id, &clause).await?;
            approved_total += amount;
            offset_total += offset;
            paid_total += left;
        }
        sqlx::query("UPDATE fund_batches SET line_count = $1, approved_fen = $2, offset_fen = $3, paid_fen = $4 WHERE id = $5")
            .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
            .bind(approved_total)
            .bind(offset_total)
            .bind(paid_total)
            .bind(&batch_id)
            .execute(&mut *tx)
            .await?;
        record_after(&mut tx, actor, "funds.pay", "fund_batch", &batch_id, serde_json::json!({ "reference": reference, "approved_fen": approved_total, "offset_fen": offset_total, "paid_fen": paid_total }), format!("{} applications, {paid_total} fen paid", items.len()))
        .await?;
        tx.commit().await?;
        self.fund_batch(&batch_id).await
    }

    pub async fn fund_batch(&self, id: &str) -> Result<FundBatch> {
        let r = sqlx::query(
            "SELECT id, reference, created_by, created_at, line_count, approved_fen, offset_fen, paid_fen FROM fund_batches WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        batch_from(&r)
    }

    pub async fn fund_batches(&self) -> Result<Vec<FundBatch>> {
        let rows = sqlx::query("SELECT id, reference, created_by, created_at, line_count, approved_fen, offset_fen, paid_fen FROM fund_batches ORDER BY created_at DESC, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_from).collect()
    }

    pub async fn fund_payments(&self, batch_id: &str) -> Result<Vec<FundPayment>> {
        let rows = sqlx::query(
            "SELECT p.batch_id, p.application_id, a.clause, a.beneficiary, a.beneficiary_name, a.uscc, p.approved_fen, p.offset_fen, p.paid_fen, p.payment_reference \
             FROM fund_payments p JOIN applications a ON a.id = p.application_id WHERE p.batch_id = $1 ORDER BY a.clause, a.beneficiary_name, p.application_id",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FundPayment {
                    batch_id: r.try_get("batch_id")?,
                    application_id: r.try_get("application_id")?,
                    clause: r.try_get("clause")?,
                    beneficiary: r.try_get("beneficiary")?,
                    beneficiary_name: r.try_get("beneficiary_name")?,
                    uscc: r.try_get("uscc")?,
                    approved_fen: r.try_get("approved_fen")?,
                    offset_fen: r.try_get("offset_fen")?,
                    paid_fen: r.try_get("paid_fen")?,
                    payment_reference: r.try_get("payment_reference")?,
                })
            })
            .collect()
    }

    /// F2, S5: marks files false (or records a violation), opens a recovery order for what was
    /// paid beyond the recomputed amount, and puts the beneficiary on the no-support list.
    pub async fn open_recovery(&self, actor: &Actor, r: &NewRecovery) -> Result<RecoveryOrder> {
        need_reason(&r.reason)?;
        let by = actor.user_id.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let now = now_ms();
        let row = sqlx::query("SELECT status, paid_fen, beneficiary, applicant_user_id, clause FROM applications WHERE id = $1")
            .bind(&r.application_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (status, paid, beneficiary, applicant, clause): (String, i64, String, String, String) = (
            row.try_get("status")?,
            row.try_get("paid_fen")?,
            row.try_get("beneficiary")?,
            row.try_get("applicant_user_id")?,
            row.try_get("clause")?,
        );
        if status == "draft" {
            return Err(StoreError::Conflict("application_not_submitted"));
        }
        for f in &r.false_files {
            let n = sqlx::query(
                "UPDATE application_files SET false_reason = $1, false_by = $2, false_at = $3 WHERE id = $4 AND application_id = $5 AND false_at IS NULL",
            )
            .bind(&r.reason)
            .bind(&by)
            .bind(now)
            .bind(f)
            .bind(&r.application_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Invalid {
                    field: "file_id",
                    code: "not_found",
                });
            }
        }
        let amount = (paid - r.recomputed_fen.max(0)).max(0);
        let id = new_id();
        sqlx::query(&format!(
            "INSERT INTO recovery_orders ({ORDER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13)"
        ))
        .bind(&id)
        .bind(&r.application_id)
        .bind(&beneficiary)
        .bind(&r.kind)
        .bind(&r.reason)
        .bind(paid)
        .bind(r.recomputed_fen)
        .bind(amount)
        .bind(&r.due_on)
        .bind(if amount > 0 { "open" } else { "settled" })
        .bind(&r.decision)
        .bind(&by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO no_support (id, party_key, beneficiary, reason, order_id, from_ms, until_ms, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(new_id())
            .bind(&r.party_key)
            .bind(&beneficiary)
            .bind(&r.reason)
            .bind(&id)
            .bind(now)
            .bind(r.no_support_until_ms)
            .bind(&by)
            .execute(&mut *tx)
            .await?;
        // A pending application is stopped (S5); a paid one keeps its status, the order says the rest.
        let stop = matches!(status.as_str(), "in_review" | "returned" | "approved");
        if stop {
            sqlx::query(
                "UPDATE applications SET status = 'rejected', decision_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
            )
            .bind(&r.reason)
            .bind(now)
            .bind(&r.application_id)
            .execute(&mut *tx)
            .await?;
        }
        let after_status = if stop { "rejected".to_string() } else { status };
        event(
            &mut tx,
            &r.application_id,
            actor,
            None,
            &format!("recovery_{}", r.kind),
            &after_status,
            Some(&r.reason),
            Some(amount),
        )
        .await?;
        record_after(
            &mut tx,
            actor,
            "application.recovery",
            "application",
            &r.application_id,
            serde_json::json!({ "order": id, "kind": r.kind, "amount_fen": amount, "files": r.false_files }),
            format!("recovery {amount} fen"),
        )
        .await?;
        notify(
            &mut tx,
            &applicant,
            "application_recovery",
            "application",
            &r.application_id,
            &clause,
        )
        .await?;
        tx.commit().await?;
        self.recovery_order(&id).await
    }

    pub async fn recovery_order(&self, id: &str) -> Result<RecoveryOrder> {
        let r = sqlx::query(&format!("SELECT {ORDER_COLS} FROM recovery_orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        order_from(&r)
    }

    pub async fn recovery_orders(&self, beneficiary: Option<&str>, application: Option<&str>) -> Result<Vec<RecoveryOrder>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM recovery_orders WHERE ($1 IS NULL OR beneficiary = $1) AND ($2 IS NULL OR application_id = $2) ORDER BY created_at DESC, id"
        ))
        .bind(beneficiary)
        .bind(application)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from).collect()
    }

    /// Records a repayment against a recovery order (at most what is outstanding).
    pub async fn repay_recovery(&self, actor: &Actor, order_id: &str, amount_fen: i64, reference: &str) -> Result<RecoveryOrder> {
        if amount_fen <= 0 {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "out_of_range",
            });
        }
        if reference.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "reference",
                code: "required",
            });
        }
        let by = actor.user_id.clone().unwrap_or_default();
        let mut tx = self.begin().await?;
        let o = sqlx::query("SELECT amount_fen - settled_fen AS outstanding, status FROM recovery_orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (outstanding, status): (i64, String) = (o.try_get("outstanding")?, o.try_get("status")?);
        if status != "open" {
            return Err(StoreError::Conflict("recovery_settled"));
        }
        if amount_fen > outstanding {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "above_outstanding",
            });
        }
        settle_order(&mut tx, order_id, "repay", amount_fen, reference.trim(), &by, now_ms()).await?;
        record_after(
            &mut tx,
            actor,
            "recovery.repay",
            "application",
            order_id,
            serde_json::json!({ "amount_fen": amount_fen, "reference": reference }),
            format!("repaid {amount_fen} fen"),
        )
        .await?;
        tx.commit().await?;
        self.recovery_order(order_id).await
    }

    /// The platform's no-support list in force at `at_ms`: party keys (USCC or party id).
    pub async fn no_support_in_force(&self, at_ms: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT party_key FROM no_support WHERE from_ms <= $1 AND until_ms > $1 ORDER BY party_key")
                .bind(at_ms)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Committee dashboard: per clause, status and stage.
    pub async fn application_stats(&self, year: Option<i64>) -> Result<Vec<ClauseStat>> {
        let rows = sqlx::query(
            "SELECT clause, status, stage, CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(engine_fen), 0) AS BIGINT) AS e, \
             CAST(COALESCE(SUM(decided_fen), 0) AS BIGINT) AS d, CAST(COALESCE(SUM(paid_fen), 0) AS BIGINT) AS p \
             FROM applications WHERE ($1 IS NULL OR year = $1) GROUP BY clause, status, stage ORDER BY clause, status, stage",
        )
        .bind(year)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClauseStat {
                    clause: r.try_get("clause")?,
                    status: r.try_get("status")?,
                    stage: r.try_get("stage")?,
                    count: r.try_get("n")?,
                    engine_fen: r.try_get("e")?,
                    decided_fen: r.try_get("d")?,
                    paid_fen: r.try_get("p")?,
                })
            })
            .collect()
    }

    /// Applications of `year` under review whose stage began at or before `cutoff_ms`.
    pub async fn overdue_in_review(&self, year: i64, cutoff_ms: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM applications WHERE year = $1 AND status = 'in_review' AND COALESCE(stage_since, updated_at) <= $2",
        )
        .bind(year)
        .bind(cutoff_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Recovered so far (repaid + offset) and still open, in fen.
    pub async fn recovery_totals(&self) -> Result<(i64, i64)> {
        let r = sqlx::query("SELECT CAST(COALESCE(SUM(settled_fen), 0) AS BIGINT) AS s, CAST(COALESCE(SUM(amount_fen - settled_fen), 0) AS BIGINT) AS o FROM recovery_orders")
            .fetch_one(&self.pool)
            .await?;
        Ok((r.try_get("s")?, r.try_get("o")?))
    }
}

fn batch_from(r: &AnyRow) -> Result<FundBatch> {
    Ok(FundBatch {
        id: r.try_get("id")?,
        reference: r.try_get("reference")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        line_count: r.try_get("line_count")?,
        approved_fen: r.try_get("approved_fen")?,
        offset_fen: r.try_get("offset_fen")?,
        paid_fen: r.try_get("paid_fen")?,
    })
}

pub(crate) async fn settle_order(tx: &mut Tx, order: &str, kind: &str, amount: i64, reference: &str, by: &str, now: i64) -> Result<()> {
    crate::grants::settle_part(tx, &crate::grants::APPLICATION_ORDERS, order, kind, amount, reference, by, now).await
}

impl Store {
    /// F1: what applications of `clause` were approved for in `year` (approved or paid).
    /// F1: the clause's approved applications of `year`, net of recovered money.
    pub async fn approved_in_year(&self, clause: &str, year: i64) -> Result<i64> {
        let row = sqlx::query(APPROVED_NET_SQL)
            .bind(year)
            .bind(Some(clause))
            .bind("")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("total")?)
    }

    /// F1: what the year has committed against the policy-wide budget: (approved applications of
    /// every clause net of recovered money, settlement grants approved).
    pub async fn committed_in_year(&self, year: i64) -> Result<(i64, i64)> {
        let apps: i64 = sqlx::query(APPROVED_NET_SQL)
            .bind(year)
            .bind(None::<String>)
            .bind("")
            .fetch_one(&self.pool)
            .await?
            .try_get("total")?;
        let settled: i64 = sqlx::query(SETTLED_IN_YEAR_SQL)
            .bind(year)
            .fetch_one(&self.pool)
            .await?
            .try_get("total")?;
        Ok((apps, settled))
    }
}

/// F1 inside the approval's transaction: the year's approved total of the clause, this approval
/// included, must fit in the clause's budget, and with every other clause's approvals and the
/// year's settlement grants in the policy-wide one. Each budget's row in the cap ledger
/// (beneficiary `*`, scope `budget`; clause `*` for the policy-wide one) is written first, so
/// concurrent approvals queue on it and each sees the others' committed approvals; it keeps the
/// approved total.
async fn within_budget(tx: &mut Tx, b: &ClauseBudget, id: &str, amount: i64, now: i64) -> Result<()> {
    if let Some(budget) = b.budget_fen {
        let others: i64 = queue_on_budget(
            tx,
            &b.clause,
            b.year,
            budget,
            now,
            sqlx::query(APPROVED_NET_SQL).bind(b.year).bind(Some(&b.clause)).bind(id),
        )
        .await?;
        let total = others.saturating_add(amount);
        if total > budget {
            return Err(StoreError::Conflict("clause_budget_exceeded"));
        }
        record_budget(tx, &b.clause, b.year, budget, total, now).await?;
    }
    if let Some(budget) = b.policy_budget_fen {
        let apps: i64 = queue_on_budget(
            tx,
            "*",
            b.year,
            budget,
            now,
            sqlx::query(APPROVED_NET_SQL).bind(b.year).bind(None::<String>).bind(id),
        )
        .await?;
        let settled: i64 = sqlx::query(SETTLED_IN_YEAR_SQL)
            .bind(b.year)
            .fetch_one(&mut **tx)
            .await?
            .try_get("total")?;
        let total = apps.saturating_add(settled).saturating_add(amount);
        if total > budget {
            return Err(StoreError::Conflict("policy_budget_exceeded"));
        }
        record_budget(tx, "*", b.year, budget, total, now).await?;
    }
    Ok(())
}

/// Takes the budget row of (clause, year) for this transaction, then runs `sum` (a total).
pub(crate) async fn queue_on_budget<'q>(
    tx: &mut Tx,
    clause: &str,
    year: i64,
    budget: i64,
    now: i64,
    sum: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<i64> {
    let period = year.to_string();
    sqlx::query(
        "INSERT INTO cap_ledger (clause, beneficiary, scope, period_key, cap_fen, consumed_fen, updated_at) VALUES ($1, '*', 'budget', $2, $3, 0, $4) \
         ON CONFLICT (clause, beneficiary, scope, period_key) DO NOTHING",
    )
    .bind(clause)
    .bind(&period)
    .bind(budget)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE cap_ledger SET updated_at = $1 WHERE clause = $2 AND beneficiary = '*' AND scope = 'budget' AND period_key = $3")
        .bind(now)
        .bind(clause)
        .bind(&period)
        .execute(&mut **tx)
        .await?;
    Ok(sum.fetch_one(&mut **tx).await?.try_get("total")?)
}

pub(crate) async fn record_budget(tx: &mut Tx, clause: &str, year: i64, budget: i64, total: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE cap_ledger SET consumed_fen = $1, cap_fen = $2, updated_at = $3 WHERE clause = $4 AND beneficiary = '*' AND scope = 'budget' AND period_key = $5",
    )
    .bind(total)
    .bind(budget)
    .bind(now)
    .bind(clause)
    .bind(year.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Consumes exactly `amount` of a cap inside `tx`, once per `reference`; `cap_exceeded` when it
/// does not fit (the caller's transaction then rolls back the whole decision).
async fn consume_exact(tx: &mut Tx, actor: &Actor, key: &CapKey, cap_fen: i64, amount: i64, reference: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO cap_ledger (clause, beneficiary, scope, period_key, cap_fen, consumed_fen, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6) \
         ON CONFLICT (clause, beneficiary, scope, period_key) DO NOTHING",
    )
    .bind(&key.clause)
    .bind(&key.beneficiary)
    .bind(&key.scope)
    .bind(&key.period_key)
    .bind(cap_fen)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let n = sqlx::query(
        "UPDATE cap_ledger SET consumed_fen = consumed_fen + $1, cap_fen = $2, updated_at = $3 \
         WHERE clause = $4 AND beneficiary = $5 AND scope = $6 AND period_key = $7 AND consumed_fen + $1 <= $2",
    )
    .bind(amount)
    .bind(cap_fen)
    .bind(now)
    .bind(&key.clause)
    .bind(&key.beneficiary)
    .bind(&key.scope)
    .bind(&key.period_key)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(StoreError::Conflict("cap_exceeded"));
    }
    sqlx::query("INSERT INTO cap_consumptions (reference, clause, beneficiary, scope, period_key, amount_fen, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(reference)
        .bind(&key.clause)
        .bind(&key.beneficiary)
        .bind(&key.scope)
        .bind(&key.period_key)
        .bind(amount)
        .bind(actor.user_id.clone())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
