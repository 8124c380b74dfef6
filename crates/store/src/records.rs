//! Records behind M6.3, M7.2 and M8.1 (issue 8): an OPC's loans with drawdowns, interest
//! statements and repayments; the talent-apartment inventory and its assignments (one occupant
//! per apartment, enforced by a unique index, so two concurrent assignments cannot both win);
//! growth milestones recorded when an M8.1 application is granted.

use crate::audit::{record_after, Actor};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LoanEntry {
    pub id: String,
    /// `drawdown`, `interest` or `repayment`.
    pub kind: String,
    pub day: String,
    /// For interest: the month it pays (`YYYY-MM`).
    pub month: Option<String>,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Loan {
    pub id: String,
    pub opc_id: String,
    pub bank: String,
    pub contract_no: String,
    pub principal_fen: i64,
    pub created_at: i64,
    pub entries: Vec<LoanEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Apartment {
    pub id: String,
    pub name: String,
    pub address: String,
    pub monthly_rent_fen: i64,
    pub daily_rent_fen: i64,
    /// The active assignment, if occupied.
    pub occupied_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub id: String,
    pub apartment_id: String,
    pub apartment_name: String,
    pub application_id: String,
    pub opc_id: String,
    pub move_in: String,
    pub move_out: Option<String>,
    pub monthly_rent_fen: i64,
    pub daily_rent_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MilestoneRow {
    pub id: String,
    pub opc_id: String,
    pub kind: String,
    pub day: String,
    pub application_id: String,
}

/// The audit entry of a record change (one per transaction).
fn assignment_from(r: &AnyRow) -> Result<Assignment> {
    Ok(Assignment {
        id: r.try_get("id")?,
        apartment_id: r.try_get("apartment_id")?,
        apartment_name: r.try_get("name")?,
        application_id: r.try_get("application_id")?,
        opc_id: r.try_get("opc_id")?,
        move_in: r.try_get("move_in")?,
        move_out: r.try_get("move_out")?,
        monthly_rent_fen: r.try_get("monthly_rent_fen")?,
        daily_rent_fen: r.try_get("daily_rent_fen")?,
    })
}

const ASSIGNMENT_SELECT: &str =
    "SELECT h.id, h.apartment_id, a.name, h.application_id, h.opc_id, h.move_in, h.move_out, a.monthly_rent_fen, a.daily_rent_fen \
     FROM housing_assignments h JOIN apartments a ON a.id = h.apartment_id";

impl Store {
    // ------------------------------------------------------------ loans (M6.3)

    pub async fn create_loan(
        &self,
        actor: &Actor,
        opc_id: &str,
        owner: &str,
        bank: &str,
        contract_no: &str,
        principal_fen: i64,
    ) -> Result<Loan> {
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("INSERT INTO loans (id, opc_id, owner_user_id, bank, contract_no, principal_fen, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(opc_id)
            .bind(owner)
            .bind(bank)
            .bind(contract_no)
            .bind(principal_fen)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "contract_no") || is_unique_violation(&e, "loans") {
                return Err(StoreError::Conflict("loan_exists"));
            }
            return Err(e.into());
        }
        record_after(
            &mut tx,
            actor,
            "loan.create",
            "loan",
            &id,
            serde_json::json!({ "bank": bank, "principal_fen": principal_fen }),
            format!("loan {contract_no}"),
        )
        .await?;
        tx.commit().await?;
        self.loan(&id).await
    }

    pub async fn loan(&self, id: &str) -> Result<Loan> {
        let r = sqlx::query("SELECT id, opc_id, bank, contract_no, principal_fen, created_at FROM loans WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let entries = sqlx::query("SELECT id, kind, day, month, amount_fen FROM loan_entries WHERE loan_id = $1 ORDER BY day, kind, id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|e| {
                Ok(LoanEntry {
                    id: e.try_get("id")?,
                    kind: e.try_get("kind")?,
                    day: e.try_get("day")?,
                    month: e.try_get("month")?,
                    amount_fen: e.try_get("amount_fen")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Loan {
            id: r.try_get("id")?,
            opc_id: r.try_get("opc_id")?,
            bank: r.try_get("bank")?,
            contract_no: r.try_get("contract_no")?,
            principal_fen: r.try_get("principal_fen")?,
            created_at: r.try_get("created_at")?,
            entries,
        })
    }

    pub async fn loans_of(&self, opc_id: &str) -> Result<Vec<Loan>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM loans WHERE opc_id = $1 ORDER BY created_at, id")
            .bind(opc_id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = vec![];
        for id in ids {
            out.push(self.loan(&id).await?);
        }
        Ok(out)
    }

    /// Adds a drawdown, an interest statement (one per month) or a repayment.
    pub async fn add_loan_entry(
        &self,
        actor: &Actor,
        loan_id: &str,
        kind: &str,
        day: &str,
        month: Option<&str>,
        amount_fen: i64,
    ) -> Result<Loan> {
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO loan_entries (id, loan_id, kind, day, month, amount_fen, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(loan_id)
        .bind(kind)
        .bind(day)
        .bind(month)
        .bind(amount_fen)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "loan_interest_month") || is_unique_violation(&e, "loan_entries") {
                return Err(StoreError::Conflict("interest_month_recorded"));
            }
            return Err(e.into());
        }
        record_after(
            &mut tx,
            actor,
            "loan.entry",
            "loan",
            loan_id,
            serde_json::json!({ "kind": kind, "day": day, "amount_fen": amount_fen }),
            format!("{kind} {amount_fen} fen"),
        )
        .await?;
        tx.commit().await?;
        self.loan(loan_id).await
    }

    // ------------------------------------------------------------ talent housing (M7)

    pub async fn create_apartment(
        &self,
        actor: &Actor,
        name: &str,
        address: &str,
        monthly_rent_fen: i64,
        daily_rent_fen: i64,
    ) -> Result<Apartment> {
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("INSERT INTO apartments (id, name, address, monthly_rent_fen, daily_rent_fen, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(name)
            .bind(address)
            .bind(monthly_rent_fen)
            .bind(daily_rent_fen)
            .bind(actor.user_id.clone().unwrap_or_default())
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "name") || is_unique_violation(&e, "apartments") {
                return Err(StoreError::Conflict("apartment_exists"));
            }
            return Err(e.into());
        }
        record_after(
            &mut tx,
            actor,
            "apartment.create",
            "apartment",
            &id,
            serde_json::json!({ "name": name }),
            format!("apartment {name}"),
        )
        .await?;
        tx.commit().await?;
        self.apartments()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(StoreError::NotFound)
    }

    pub async fn apartments(&self) -> Result<Vec<Apartment>> {
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.address, a.monthly_rent_fen, a.daily_rent_fen, h.id AS occupied_by FROM apartments a \
             LEFT JOIN housing_assignments h ON h.apartment_id = a.id AND h.active = 1 ORDER BY a.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Apartment {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    address: r.try_get("address")?,
                    monthly_rent_fen: r.try_get("monthly_rent_fen")?,
                    daily_rent_fen: r.try_get("daily_rent_fen")?,
                    occupied_by: r.try_get("occupied_by")?,
                })
            })
            .collect()
    }

    /// Assigns an apartment to the beneficiary of a granted M7.2 application. One occupant per
    /// apartment and one apartment per application: `apartment_occupied` / `application_housed`.
    pub async fn assign_apartment(
        &self,
        actor: &Actor,
        apartment_id: &str,
        application_id: &str,
        opc_id: &str,
        move_in: &str,
    ) -> Result<Assignment> {
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO housing_assignments (id, apartment_id, application_id, opc_id, move_in, move_out, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, 1, $6, $7)",
        )
        .bind(&id)
        .bind(apartment_id)
        .bind(application_id)
        .bind(opc_id)
        .bind(move_in)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "application_id") {
                return Err(StoreError::Conflict("application_housed"));
            }
            if is_unique_violation(&e, "housing_one_occupant") || is_unique_violation(&e, "housing_assignments") {
                return Err(StoreError::Conflict("apartment_occupied"));
            }
            return Err(e.into());
        }
        record_after(
            &mut tx,
            actor,
            "housing.assign",
            "apartment",
            apartment_id,
            serde_json::json!({ "assignment": id, "move_in": move_in }),
            format!("assigned from {move_in}"),
        )
        .await?;
        tx.commit().await?;
        self.assignment(&id).await
    }

    pub async fn end_assignment(&self, actor: &Actor, id: &str, move_out: &str) -> Result<Assignment> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE housing_assignments SET move_out = $1, active = NULL WHERE id = $2 AND active = 1 AND move_in <= $1")
            .bind(move_out)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            drop(tx);
            self.assignment(id).await?;
            return Err(StoreError::Conflict("assignment_not_active"));
        }
        record_after(
            &mut tx,
            actor,
            "housing.move_out",
            "assignment",
            id,
            serde_json::json!({ "move_out": move_out }),
            format!("moved out {move_out}"),
        )
        .await?;
        tx.commit().await?;
        self.assignment(id).await
    }

    pub async fn assignment(&self, id: &str) -> Result<Assignment> {
        let r = sqlx::query(&format!("{ASSIGNMENT_SELECT} WHERE h.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        assignment_from(&r)
    }

    pub async fn assignments(&self, opc_id: Option<&str>) -> Result<Vec<Assignment>> {
        let rows = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} WHERE ($1 IS NULL OR h.opc_id = $1) ORDER BY h.move_in, h.id"
        ))
        .bind(opc_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(assignment_from).collect()
    }

    // ------------------------------------------------------------ growth (M8.1)

    pub async fn milestones(&self, opc_id: Option<&str>) -> Result<Vec<MilestoneRow>> {
        let rows =
            sqlx::query("SELECT id, opc_id, kind, day, application_id FROM milestones WHERE ($1 IS NULL OR opc_id = $1) ORDER BY day, id")
                .bind(opc_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(MilestoneRow {
                    id: r.try_get("id")?,
                    opc_id: r.try_get("opc_id")?,
                    kind: r.try_get("kind")?,
                    day: r.try_get("day")?,
                    application_id: r.try_get("application_id")?,
                })
            })
            .collect()
    }
}
