//! The cap ledger (issue 6, "caps across claims"): how much of each cap a beneficiary has
//! used, per clause, cap scope (year, project, …) and period key (`2027`, a project id).
//! Consuming is one conditional UPDATE inside a transaction, so concurrent approvals — also
//! on several replicas — can never exceed a cap; each consumption carries a unique reference
//! so a retried approval is not counted twice.

use crate::audit::{record_after, Actor};
use crate::{is_unique_violation, now_ms, Result, Store, StoreError};
use sqlx::Row;

/// Which cap: e.g. (`M2.3-publisher`, an OPC id, `year`, `2027`) or (`M3.2`, an OPC id, `project_year`, `P-17/2027`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CapKey {
    pub clause: String,
    pub beneficiary: String,
    pub scope: String,
    pub period_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CapUse {
    #[serde(flatten)]
    pub key: CapKey,
    pub cap_fen: i64,
    pub consumed_fen: i64,
    pub headroom_fen: i64,
}

impl Store {
    /// Consumes `amount_fen` of the cap `cap_fen` under `key`, once per `reference`.
    /// `Conflict("cap_exceeded")` when it does not fit (nothing is written);
    /// `Conflict("already_consumed")` when the reference was used before.
    pub async fn consume_cap(&self, actor: &Actor, key: &CapKey, cap_fen: i64, amount_fen: i64, reference: &str) -> Result<CapUse> {
        if amount_fen < 0 || cap_fen < 0 {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "out_of_range",
            });
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "INSERT INTO cap_consumptions (reference, clause, beneficiary, scope, period_key, amount_fen, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(reference)
        .bind(&key.clause)
        .bind(&key.beneficiary)
        .bind(&key.scope)
        .bind(&key.period_key)
        .bind(amount_fen)
        .bind(actor.user_id.clone())
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "reference") || is_unique_violation(&e, "cap_consumptions") {
                return Err(StoreError::Conflict("already_consumed"));
            }
            return Err(e.into());
        }
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
        .execute(&mut *tx)
        .await?;
        // The cap in force is the one passed now (a new policy version may change it).
        let n = sqlx::query(
            "UPDATE cap_ledger SET consumed_fen = consumed_fen + $1, cap_fen = $2, updated_at = $3 \
             WHERE clause = $4 AND beneficiary = $5 AND scope = $6 AND period_key = $7 AND consumed_fen + $1 <= $2",
        )
        .bind(amount_fen)
        .bind(cap_fen)
        .bind(now)
        .bind(&key.clause)
        .bind(&key.beneficiary)
        .bind(&key.scope)
        .bind(&key.period_key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            // Dropping the transaction rolls back the consumption record too.
            return Err(StoreError::Conflict("cap_exceeded"));
        }
        let after = serde_json::json!({ "key": key, "amount_fen": amount_fen, "cap_fen": cap_fen, "reference": reference });
        record_after(
            &mut tx,
            actor,
            "cap.consume",
            "cap",
            &format!("{}/{}/{}/{}", key.clause, key.beneficiary, key.scope, key.period_key),
            after,
            format!("{amount_fen} fen ({reference})"),
        )
        .await?;
        tx.commit().await?;
        self.cap_use(key).await?.ok_or(StoreError::NotFound)
    }

    pub async fn cap_use(&self, key: &CapKey) -> Result<Option<CapUse>> {
        let row = sqlx::query(
            "SELECT cap_fen, consumed_fen FROM cap_ledger WHERE clause = $1 AND beneficiary = $2 AND scope = $3 AND period_key = $4",
        )
        .bind(&key.clause)
        .bind(&key.beneficiary)
        .bind(&key.scope)
        .bind(&key.period_key)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let (cap_fen, consumed_fen): (i64, i64) = (r.try_get("cap_fen")?, r.try_get("consumed_fen")?);
                Ok(Some(CapUse {
                    key: key.clone(),
                    cap_fen,
                    consumed_fen,
                    headroom_fen: (cap_fen - consumed_fen).max(0),
                }))
            }
        }
    }

    /// Every cap a beneficiary has touched, for its year-to-date headroom view.
    pub async fn caps_of(&self, beneficiary: &str) -> Result<Vec<CapUse>> {
        let rows = sqlx::query("SELECT clause, scope, period_key, cap_fen, consumed_fen FROM cap_ledger WHERE beneficiary = $1 ORDER BY period_key DESC, clause")
            .bind(beneficiary)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let (cap_fen, consumed_fen): (i64, i64) = (r.try_get("cap_fen")?, r.try_get("consumed_fen")?);
                Ok(CapUse {
                    key: CapKey {
                        clause: r.try_get("clause")?,
                        beneficiary: beneficiary.to_string(),
                        scope: r.try_get("scope")?,
                        period_key: r.try_get("period_key")?,
                    },
                    cap_fen,
                    consumed_fen,
                    headroom_fen: (cap_fen - consumed_fen).max(0),
                })
            })
            .collect()
    }
}
