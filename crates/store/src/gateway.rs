//! Factor-gateway storage (M2.2): channels (secrets stored encrypted by the caller), price
//! tables with effective dates, per-key limits, monthly budgets enforced by reservation
//! (hold → settle/release, one conditional UPDATE each, safe across replicas), and request
//! outcomes. No HTTP and no crypto here.

use crate::audit::{record_after, record_before_after, Actor};
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Channel {
    pub id: String,
    pub operator_user_id: String,
    pub name: String,
    pub base_url: String,
    #[serde(skip)]
    pub secret_enc: String,
    pub models: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub timeout_ms: i64,
    /// `pending` (awaiting the platform operator), `approved`, `disabled`.
    pub status: String,
    pub healthy: bool,
    pub last_error: Option<String>,
    pub created_at: i64,
}

const CHANNEL_COLS: &str =
    "id, operator_user_id, name, base_url, secret_enc, models, priority, weight, timeout_ms, status, healthy, last_error, created_at";

fn channel_from(r: &AnyRow) -> Result<Channel> {
    let models: String = r.try_get("models")?;
    Ok(Channel {
        id: r.try_get("id")?,
        operator_user_id: r.try_get("operator_user_id")?,
        name: r.try_get("name")?,
        base_url: r.try_get("base_url")?,
        secret_enc: r.try_get("secret_enc")?,
        models: serde_json::from_str(&models).unwrap_or_default(),
        priority: r.try_get("priority")?,
        weight: r.try_get("weight")?,
        timeout_ms: r.try_get("timeout_ms")?,
        status: r.try_get("status")?,
        healthy: r.try_get::<i64, _>("healthy")? != 0,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewChannel<'a> {
    pub operator_user_id: &'a str,
    pub name: &'a str,
    pub base_url: &'a str,
    pub secret_enc: &'a str,
    pub models: &'a [String],
    pub priority: i64,
    pub weight: i64,
    pub timeout_ms: i64,
}

/// Prices in fen per million tokens: list price and the discounted OPC price (M2.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ModelPrice {
    pub model: String,
    pub list_input: i64,
    pub opc_input: i64,
    pub list_cached: i64,
    pub opc_cached: i64,
    pub list_output: i64,
    pub opc_output: i64,
}

/// A compute or data item of a price table (M2.2): list and OPC price in fen per unit —
/// per GPU-hour (`gpu_hour`), per GB of 10⁹ bytes (`gb`) or per whole dataset (`dataset`).
/// How a metered quantity becomes an amount is `opchub_gateway::items`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemPrice {
    /// The item's code, named by usage events (attribute `item`) and datasets.
    pub item: String,
    /// `gpu_hour`, `gb` or `dataset`.
    pub unit: String,
    pub name_zh: String,
    pub name_en: String,
    /// List price per unit, fen.
    pub list_fen: i64,
    /// OPC price per unit, fen (never above the list price).
    pub opc_fen: i64,
}

/// An item price with the version and effective time it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ItemPriceVersion {
    pub version: String,
    pub effective_from: i64,
    #[serde(flatten)]
    pub price: ItemPrice,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PriceTable {
    pub operator_user_id: String,
    pub version: String,
    pub effective_from: i64,
    /// `pending` (awaiting the platform operator), `approved` (prices usage), `disabled`.
    pub status: String,
    pub prices: Vec<ModelPrice>,
    /// Compute and data items of this version.
    pub items: Vec<ItemPrice>,
}

/// One price table version as the review lists it (issue 18 item 3: tables are reviewed as
/// channels are).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PriceTableSummary {
    pub operator_user_id: String,
    pub version: String,
    pub effective_from: i64,
    /// `pending`, `approved` or `disabled`.
    pub status: String,
    /// Who last reviewed it (a platform operator's user id).
    pub reviewed_by: Option<String>,
    pub prices: Vec<ModelPrice>,
    pub items: Vec<ItemPrice>,
    pub created_at: i64,
    /// Models whose list price is above the platform's reference in force now (flagged; the
    /// discount basis counts at most the reference).
    pub above_reference: Vec<String>,
}

/// The statuses of a price table.
pub const PRICE_TABLE_STATUSES: &[&str] = &["pending", "approved", "disabled"];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyLimits {
    /// Empty: every model the gateway serves.
    pub allowed_models: Vec<String>,
    /// Requests per minute (0 = unlimited).
    pub rpm: i64,
    /// Tokens per minute (0 = unlimited).
    pub tpm: i64,
    /// Monthly budget in fen (0 = unlimited); model and paid skill calls both draw on it.
    pub monthly_budget_fen: i64,
    /// Skill slugs the key may call through `/mcp` and the invoke API (empty: every skill the
    /// key's owner enabled). Optional in requests.
    #[serde(default)]
    pub allowed_skills: Vec<String>,
}

/// The outcome of one caller-visible request.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RequestOutcome {
    pub request_id: String,
    pub api_key_id: String,
    pub subject: String,
    pub channel_id: Option<String>,
    pub model: String,
    pub endpoint: String,
    /// `ok`, `client_disconnected`, `upstream_error`, `refused`.
    pub outcome: String,
    pub http_status: i64,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub estimated: bool,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub created_at: i64,
    /// From the request's arrival to its last byte (a stream: to its end), in ms; `None` for
    /// requests recorded before this was kept.
    pub latency_ms: Option<i64>,
}

/// Columns of `gateway_requests`, in [`bind_request`] order.
pub(crate) const REQUEST_COLS: &str = "request_id, api_key_id, subject, channel_id, model, endpoint, outcome, http_status, prompt_tokens, \
     cached_tokens, completion_tokens, estimated, list_fen, charged_fen, created_at, latency_ms";
/// How many columns [`REQUEST_COLS`] names.
pub(crate) const REQUEST_COL_COUNT: usize = 16;

pub(crate) fn bind_request<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    o: &RequestOutcome,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(o.request_id.clone())
        .bind(o.api_key_id.clone())
        .bind(o.subject.clone())
        .bind(o.channel_id.clone())
        .bind(o.model.clone())
        .bind(o.endpoint.clone())
        .bind(o.outcome.clone())
        .bind(o.http_status)
        .bind(o.prompt_tokens)
        .bind(o.cached_tokens)
        .bind(o.completion_tokens)
        .bind(o.estimated as i64)
        .bind(o.list_fen)
        .bind(o.charged_fen)
        .bind(o.created_at)
        .bind(o.latency_ms)
}

/// A model's prices from a `gateway_prices` row.
fn model_price_from(r: &AnyRow) -> Result<ModelPrice> {
    Ok(ModelPrice {
        model: r.try_get("model")?,
        list_input: r.try_get("list_input")?,
        opc_input: r.try_get("opc_input")?,
        list_cached: r.try_get("list_cached")?,
        opc_cached: r.try_get("opc_cached")?,
        list_output: r.try_get("list_output")?,
        opc_output: r.try_get("opc_output")?,
    })
}

/// An item's prices from a `gateway_item_prices` row.
fn item_price_from(r: &AnyRow) -> Result<ItemPrice> {
    Ok(ItemPrice {
        item: r.try_get("item")?,
        unit: r.try_get("unit")?,
        name_zh: r.try_get("name_zh")?,
        name_en: r.try_get("name_en")?,
        list_fen: r.try_get("list_fen")?,
        opc_fen: r.try_get("opc_fen")?,
    })
}

impl Store {
    pub async fn create_channel(&self, actor: &Actor, c: NewChannel<'_>) -> Result<Channel> {
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO gateway_channels ({CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 1, NULL, $10)"
        ))
        .bind(&id)
        .bind(c.operator_user_id)
        .bind(c.name)
        .bind(c.base_url)
        .bind(c.secret_enc)
        .bind(serde_json::to_string(c.models).unwrap_or_else(|_| "[]".into()))
        .bind(c.priority)
        .bind(c.weight)
        .bind(c.timeout_ms)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({ "id": id, "name": c.name, "base_url": c.base_url, "models": c.models });
        record_after(&mut tx, actor, "channel.create", "channel", &id, after, c.name.to_string()).await?;
        tx.commit().await?;
        self.channel(&id).await
    }

    pub async fn channel(&self, id: &str) -> Result<Channel> {
        let row = sqlx::query(&format!("SELECT {CHANNEL_COLS} FROM gateway_channels WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(channel_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn channels(&self, operator_user_id: Option<&str>) -> Result<Vec<Channel>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLS} FROM gateway_channels WHERE ($1 IS NULL OR operator_user_id = $1) ORDER BY priority DESC, created_at"
        ))
        .bind(operator_user_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    /// Approved channels, best priority first (the caller picks by weight within a priority).
    pub async fn approved_channels(&self) -> Result<Vec<Channel>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLS} FROM gateway_channels WHERE status = 'approved' ORDER BY priority DESC, created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    /// The platform operator approves (or disables) a channel before it serves traffic.
    pub async fn set_channel_status(&self, actor: &Actor, id: &str, status: &str) -> Result<Channel> {
        if !matches!(status, "approved" | "disabled" | "pending") {
            return Err(StoreError::Invalid {
                field: "status",
                code: "unknown_status",
            });
        }
        let before = self.channel(id).await?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE gateway_channels SET status = $1, approved_by = $2 WHERE id = $3")
            .bind(status)
            .bind(actor.user_id.clone())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "channel.set_status",
            "channel",
            id,
            serde_json::json!({ "status": before.status }),
            serde_json::json!({ "status": status }),
            format!("{} → {status}", before.status),
        )
        .await?;
        tx.commit().await?;
        self.channel(id).await
    }

    pub async fn set_channel_health(&self, id: &str, healthy: bool, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE gateway_channels SET healthy = $1, last_error = $2, last_checked_at = $3 WHERE id = $4")
            .bind(healthy as i64)
            .bind(error.map(str::to_string))
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- price tables ----

    pub async fn create_price_table(
        &self,
        actor: &Actor,
        operator_user_id: &str,
        version: &str,
        effective_from: i64,
        prices: &[ModelPrice],
        items: &[ItemPrice],
    ) -> Result<PriceTable> {
        let mut tx = self.begin().await?;
        // A version is one table: models and items share its name (checked in the transaction;
        // the primary keys catch a concurrent twin).
        let exists: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM gateway_prices WHERE operator_user_id = $1 AND version = $2) + \
             (SELECT COUNT(*) FROM gateway_item_prices WHERE operator_user_id = $1 AND version = $2)",
        )
        .bind(operator_user_id)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        if exists > 0 {
            return Err(StoreError::Conflict("price_version_exists"));
        }
        for it in items {
            let res = sqlx::query(
                "INSERT INTO gateway_item_prices (operator_user_id, version, effective_from, item, unit, name_zh, name_en, list_fen, opc_fen, created_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')",
            )
            .bind(operator_user_id)
            .bind(version)
            .bind(effective_from)
            .bind(&it.item)
            .bind(&it.unit)
            .bind(&it.name_zh)
            .bind(&it.name_en)
            .bind(it.list_fen)
            .bind(it.opc_fen)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            version_taken(res)?;
        }
        for p in prices {
            let res = sqlx::query(
                "INSERT INTO gateway_prices (operator_user_id, version, effective_from, model, list_input, opc_input, list_cached, opc_cached, list_output, opc_output, created_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending')",
            )
            .bind(operator_user_id)
            .bind(version)
            .bind(effective_from)
            .bind(&p.model)
            .bind(p.list_input)
            .bind(p.opc_input)
            .bind(p.list_cached)
            .bind(p.opc_cached)
            .bind(p.list_output)
            .bind(p.opc_output)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            version_taken(res)?;
        }
        let after = serde_json::json!({ "version": version, "effective_from": effective_from, "prices": prices, "items": items });
        record_after(
            &mut tx,
            actor,
            "price_table.create",
            "price_table",
            version,
            after,
            version.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(PriceTable {
            operator_user_id: operator_user_id.to_string(),
            version: version.to_string(),
            effective_from,
            status: "pending".into(),
            prices: prices.to_vec(),
            items: items.to_vec(),
        })
    }

    /// Sets the status of an operator's price table version (the platform operator's review,
    /// issue 18 item 3), both its model and its item rows, in one transaction. On approval a
    /// table takes effect no earlier than `not_before` (the approval time): a table is never in
    /// force before it was approved, so usage already priced by the previous table stays so.
    pub async fn set_price_table_status(
        &self,
        actor: &Actor,
        operator_user_id: &str,
        version: &str,
        status: &str,
        not_before: Option<i64>,
    ) -> Result<PriceTableSummary> {
        if !PRICE_TABLE_STATUSES.contains(&status) {
            return Err(StoreError::Invalid {
                field: "status",
                code: "unknown_status",
            });
        }
        let before = self.price_table(operator_user_id, version).await?.ok_or(StoreError::NotFound)?;
        let floor = if status == "approved" {
            not_before.unwrap_or(i64::MIN)
        } else {
            i64::MIN
        };
        let mut tx = self.begin().await?;
        for table in ["gateway_prices", "gateway_item_prices"] {
            sqlx::query(&format!(
                "UPDATE {table} SET status = $1, reviewed_by = $2, effective_from = CASE WHEN effective_from < $3 THEN $3 ELSE effective_from END \
                 WHERE operator_user_id = $4 AND version = $5"
            ))
            .bind(status)
            .bind(actor.user_id.clone())
            .bind(floor)
            .bind(operator_user_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        record_before_after(
            &mut tx,
            actor,
            "price_table.set_status",
            "price_table",
            &format!("{operator_user_id}/{version}"),
            serde_json::json!({ "status": before.status, "effective_from": before.effective_from }),
            serde_json::json!({ "status": status, "effective_from": before.effective_from.max(floor) }),
            format!("{version}: {} → {status}", before.status),
        )
        .await?;
        tx.commit().await?;
        self.price_table(operator_user_id, version).await?.ok_or(StoreError::NotFound)
    }

    /// One price table version of an operator, whatever its status.
    pub async fn price_table(&self, operator_user_id: &str, version: &str) -> Result<Option<PriceTableSummary>> {
        Ok(self
            .price_tables(Some(operator_user_id))
            .await?
            .into_iter()
            .find(|t| t.version == version))
    }

    /// Every price table version, of one operator or of all, newest first, with its status.
    pub async fn price_tables(&self, operator_user_id: Option<&str>) -> Result<Vec<PriceTableSummary>> {
        let op = operator_user_id.map(str::to_string);
        let models = sqlx::query(
            "SELECT operator_user_id, version, effective_from, status, reviewed_by, created_at, model, list_input, opc_input, list_cached, opc_cached, \
             list_output, opc_output FROM gateway_prices WHERE ($1 IS NULL OR operator_user_id = $1) ORDER BY model",
        )
        .bind(op.clone())
        .fetch_all(&self.pool)
        .await?;
        let items = sqlx::query(
            "SELECT operator_user_id, version, effective_from, status, reviewed_by, created_at, item, unit, name_zh, name_en, list_fen, opc_fen \
             FROM gateway_item_prices WHERE ($1 IS NULL OR operator_user_id = $1) ORDER BY item",
        )
        .bind(op)
        .fetch_all(&self.pool)
        .await?;
        let mut out: std::collections::BTreeMap<(String, String), PriceTableSummary> = std::collections::BTreeMap::new();
        let mut entry = |r: &AnyRow| -> Result<(String, String)> {
            let key: (String, String) = (r.try_get("operator_user_id")?, r.try_get("version")?);
            if !out.contains_key(&key) {
                out.insert(
                    key.clone(),
                    PriceTableSummary {
                        operator_user_id: key.0.clone(),
                        version: key.1.clone(),
                        effective_from: r.try_get("effective_from")?,
                        status: r.try_get("status")?,
                        reviewed_by: r.try_get("reviewed_by")?,
                        prices: vec![],
                        items: vec![],
                        created_at: r.try_get("created_at")?,
                        above_reference: vec![],
                    },
                );
            }
            Ok(key)
        };
        let mut keyed_models = vec![];
        for r in &models {
            keyed_models.push((entry(r)?, model_price_from(r)?));
        }
        let mut keyed_items = vec![];
        for r in &items {
            keyed_items.push((entry(r)?, item_price_from(r)?));
        }
        for (k, m) in keyed_models {
            if let Some(t) = out.get_mut(&k) {
                t.prices.push(m);
            }
        }
        for (k, i) in keyed_items {
            if let Some(t) = out.get_mut(&k) {
                t.items.push(i);
            }
        }
        let mut v: Vec<PriceTableSummary> = out.into_values().collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.version.cmp(&b.version)));
        Ok(v)
    }

    /// Every approved item price row of an operator, newest effective first (ingestion loads
    /// them once per batch and picks per event with [`item_price_at`]). Only approved tables
    /// price usage (issue 18 item 3).
    pub async fn item_prices_of(&self, operator_user_id: &str) -> Result<Vec<ItemPriceVersion>> {
        let rows = sqlx::query(
            "SELECT version, effective_from, item, unit, name_zh, name_en, list_fen, opc_fen FROM gateway_item_prices \
             WHERE operator_user_id = $1 AND status = 'approved' ORDER BY effective_from DESC, created_at DESC",
        )
        .bind(operator_user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ItemPriceVersion {
                    version: r.try_get("version")?,
                    effective_from: r.try_get("effective_from")?,
                    price: item_price_from(r)?,
                })
            })
            .collect()
    }

    /// The item prices of an operator in force at `at_ms`: per item, the newest version
    /// effective by then.
    pub async fn item_prices_in_force(&self, operator_user_id: &str, at_ms: i64) -> Result<Vec<ItemPriceVersion>> {
        let all = self.item_prices_of(operator_user_id).await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut out: Vec<ItemPriceVersion> = all
            .into_iter()
            .filter(|p| p.effective_from <= at_ms && seen.insert(p.price.item.clone()))
            .collect();
        out.sort_by(|a, b| a.price.item.cmp(&b.price.item));
        Ok(out)
    }

    /// The price of one item of an operator in force at `at_ms`.
    pub async fn item_price_at(&self, operator_user_id: &str, item: &str, at_ms: i64) -> Result<Option<ItemPriceVersion>> {
        Ok(item_price_at(&self.item_prices_of(operator_user_id).await?, item, at_ms).cloned())
    }

    /// The price of `model` in the operator's approved table in force at `at_ms`, with its version.
    pub async fn price_at(&self, operator_user_id: &str, model: &str, at_ms: i64) -> Result<Option<(String, ModelPrice)>> {
        let row = sqlx::query(
            "SELECT version, model, list_input, opc_input, list_cached, opc_cached, list_output, opc_output FROM gateway_prices \
             WHERE operator_user_id = $1 AND model = $2 AND effective_from <= $3 AND status = 'approved' ORDER BY effective_from DESC, created_at DESC LIMIT 1",
        )
        .bind(operator_user_id)
        .bind(model)
        .bind(at_ms)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let mut price = model_price_from(&r)?;
        // The discount basis counts the list price at most up to the platform's reference in
        // force (M2.2, issue 18 item 3); never below what the OPC is charged.
        if let Some(rf) = self.reference_price_at(model, at_ms).await? {
            price.list_input = price.list_input.min(rf.list_input).max(price.opc_input);
            price.list_cached = price.list_cached.min(rf.list_cached).max(price.opc_cached);
            price.list_output = price.list_output.min(rf.list_output).max(price.opc_output);
        }
        Ok(Some((r.try_get("version")?, price)))
    }

    /// Publishes a version of the platform's reference price list (vendors' public list prices
    /// per model, fen per million tokens, the OPC fields of each row ignored; and per compute or
    /// data item code and unit, fen per unit).
    pub async fn create_reference_prices(
        &self,
        actor: &Actor,
        version: &str,
        effective_from: i64,
        prices: &[ModelPrice],
        items: &[ItemReference],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for it in items {
            let res = sqlx::query(
                "INSERT INTO gateway_item_reference_prices (version, effective_from, item, unit, list_fen, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(version)
            .bind(effective_from)
            .bind(&it.item)
            .bind(&it.unit)
            .bind(it.list_fen)
            .bind(actor.user_id.clone())
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            version_taken(res)?;
        }
        for p in prices {
            let res = sqlx::query(
                "INSERT INTO gateway_reference_prices (version, effective_from, model, list_input, list_cached, list_output, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(version)
            .bind(effective_from)
            .bind(&p.model)
            .bind(p.list_input)
            .bind(p.list_cached)
            .bind(p.list_output)
            .bind(actor.user_id.clone())
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            version_taken(res)?;
        }
        let after = serde_json::json!({ "version": version, "effective_from": effective_from, "prices": prices, "items": items });
        record_after(
            &mut tx,
            actor,
            "reference_prices.create",
            "reference_prices",
            version,
            after,
            version.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every item reference price of every version, newest effective first (a small list: the
    /// callers look items up in it with [`item_reference_in`]).
    pub async fn item_references(&self) -> Result<Vec<ItemReferenceVersion>> {
        let rows = sqlx::query(
            "SELECT version, effective_from, item, unit, list_fen FROM gateway_item_reference_prices \
             ORDER BY effective_from DESC, created_at DESC, item, unit",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ItemReferenceVersion {
                    version: r.try_get("version")?,
                    effective_from: r.try_get("effective_from")?,
                    reference: ItemReference {
                        item: r.try_get("item")?,
                        unit: r.try_get("unit")?,
                        list_fen: r.try_get("list_fen")?,
                    },
                })
            })
            .collect()
    }

    /// Every model reference price of every version, newest effective first.
    pub async fn model_references(&self) -> Result<Vec<(String, i64, ModelPrice)>> {
        let rows = sqlx::query(
            "SELECT version, effective_from, model, list_input, list_cached, list_output FROM gateway_reference_prices \
             ORDER BY effective_from DESC, created_at DESC, model",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("version")?, r.try_get("effective_from")?, reference_from(r)?)))
            .collect()
    }

    /// The reference price of `model` in force at `at_ms` (list prices only).
    pub async fn reference_price_at(&self, model: &str, at_ms: i64) -> Result<Option<ModelPrice>> {
        let row = sqlx::query(
            "SELECT model, list_input, list_cached, list_output FROM gateway_reference_prices \
             WHERE model = $1 AND effective_from <= $2 ORDER BY effective_from DESC, created_at DESC LIMIT 1",
        )
        .bind(model)
        .bind(at_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(reference_from).transpose()
    }

    // ---- key limits and budgets ----

    pub async fn set_key_limits(&self, actor: &Actor, api_key_id: &str, l: &KeyLimits) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO gateway_key_limits (api_key_id, allowed_models, rpm, tpm, monthly_budget_fen, allowed_skills) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (api_key_id) DO UPDATE SET allowed_models = excluded.allowed_models, rpm = excluded.rpm, tpm = excluded.tpm, \
             monthly_budget_fen = excluded.monthly_budget_fen, allowed_skills = excluded.allowed_skills",
        )
        .bind(api_key_id)
        .bind(serde_json::to_string(&l.allowed_models).unwrap_or_else(|_| "[]".into()))
        .bind(l.rpm)
        .bind(l.tpm)
        .bind(l.monthly_budget_fen)
        .bind(serde_json::to_string(&l.allowed_skills).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        let after = serde_json::to_value(l).unwrap_or_default();
        record_after(&mut tx, actor, "api_key.set_limits", "api_key", api_key_id, after, "limits".into()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn key_limits(&self, api_key_id: &str) -> Result<KeyLimits> {
        let row = sqlx::query(
            "SELECT allowed_models, rpm, tpm, monthly_budget_fen, allowed_skills FROM gateway_key_limits WHERE api_key_id = $1",
        )
        .bind(api_key_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => KeyLimits {
                allowed_models: vec![],
                rpm: 0,
                tpm: 0,
                monthly_budget_fen: 0,
                allowed_skills: vec![],
            },
            Some(r) => {
                let m: String = r.try_get("allowed_models")?;
                let sk: String = r.try_get("allowed_skills")?;
                KeyLimits {
                    allowed_models: serde_json::from_str(&m).unwrap_or_default(),
                    rpm: r.try_get("rpm")?,
                    tpm: r.try_get("tpm")?,
                    monthly_budget_fen: r.try_get("monthly_budget_fen")?,
                    allowed_skills: serde_json::from_str(&sk).unwrap_or_default(),
                }
            }
        })
    }

    /// Holds `amount` of the key's monthly budget. One conditional upsert (a single write, so a
    /// request waits for the database's write lock once): concurrent holds, also from other
    /// replicas, can never together exceed the budget. Returns false when the hold does not fit.
    pub async fn hold_budget(&self, api_key_id: &str, month: &str, budget_fen: i64, amount: i64) -> Result<bool> {
        // `WHERE` on the SELECT also keeps SQLite's parser from reading ON CONFLICT as a join.
        let n = sqlx::query(
            "INSERT INTO gateway_budgets (api_key_id, month, spent_fen, held_fen) SELECT $1, $2, 0, $3 WHERE $3 <= $4 \
             ON CONFLICT (api_key_id, month) DO UPDATE SET held_fen = gateway_budgets.held_fen + excluded.held_fen \
             WHERE gateway_budgets.spent_fen + gateway_budgets.held_fen + excluded.held_fen <= $4",
        )
        .bind(api_key_id)
        .bind(month)
        .bind(amount)
        .bind(budget_fen)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Releases a hold that was never settled (the call it was for failed before the ledger
    /// booked anything).
    pub async fn release_budget(&self, api_key_id: &str, month: &str, amount: i64) -> Result<()> {
        sqlx::query("UPDATE gateway_budgets SET held_fen = held_fen - $1 WHERE api_key_id = $2 AND month = $3")
            .bind(amount)
            .bind(api_key_id)
            .bind(month)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// (spent, held) this month.
    pub async fn budget_use(&self, api_key_id: &str, month: &str) -> Result<(i64, i64)> {
        let row = sqlx::query("SELECT spent_fen, held_fen FROM gateway_budgets WHERE api_key_id = $1 AND month = $2")
            .bind(api_key_id)
            .bind(month)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => (r.try_get("spent_fen")?, r.try_get("held_fen")?),
            None => (0, 0),
        })
    }

    pub async fn requests_of_key(&self, api_key_id: &str, limit: i64) -> Result<Vec<RequestOutcome>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLS} FROM gateway_requests WHERE api_key_id = $1 ORDER BY created_at DESC LIMIT $2"
        ))
        .bind(api_key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RequestOutcome {
                    request_id: r.try_get("request_id")?,
                    api_key_id: r.try_get("api_key_id")?,
                    subject: r.try_get("subject")?,
                    channel_id: r.try_get("channel_id")?,
                    model: r.try_get("model")?,
                    endpoint: r.try_get("endpoint")?,
                    outcome: r.try_get("outcome")?,
                    http_status: r.try_get("http_status")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    cached_tokens: r.try_get("cached_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    estimated: r.try_get::<i64, _>("estimated")? != 0,
                    list_fen: r.try_get("list_fen")?,
                    charged_fen: r.try_get("charged_fen")?,
                    created_at: r.try_get("created_at")?,
                    latency_ms: r.try_get("latency_ms")?,
                })
            })
            .collect()
    }

    /// What one key's requests cost per day (Asia/Shanghai) from `from_ms` to before `to_ms`:
    /// `(day start in ms, requests, list fen, charged fen)`, oldest first (the gateway
    /// console's per-key chart, M2.2).
    pub async fn key_daily_costs(&self, api_key_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<KeyDay>> {
        // Whole days east of UTC by 8 hours, in integer arithmetic both backends share.
        let rows = sqlx::query(
            "SELECT (created_at + 28800000) / 86400000 AS d, COUNT(*) AS n, CAST(SUM(list_fen) AS BIGINT) AS l, \
             CAST(SUM(charged_fen) AS BIGINT) AS c FROM gateway_requests \
             WHERE api_key_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY (created_at + 28800000) / 86400000 ORDER BY d",
        )
        .bind(api_key_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let d: i64 = r.try_get("d")?;
                Ok(KeyDay {
                    day_start_ms: d * 86_400_000 - 28_800_000,
                    requests: r.try_get("n")?,
                    list_fen: r.try_get("l")?,
                    charged_fen: r.try_get("c")?,
                })
            })
            .collect()
    }

    /// Points a channel at another base URL (its operator, or the demo at start-up when its
    /// built-in upstream's port changed). An approved channel goes back to `pending`: the
    /// platform operator reviews where a channel sends requests (M2.2). Audited.
    pub async fn set_channel_base_url(&self, actor: &Actor, id: &str, base_url: &str) -> Result<Channel> {
        let before = self.channel(id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE gateway_channels SET base_url = $1, status = CASE WHEN status = 'approved' THEN 'pending' ELSE status END, \
             healthy = 1, last_error = NULL WHERE id = $2",
        )
        .bind(base_url)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let after_status = if before.status == "approved" {
            "pending"
        } else {
            before.status.as_str()
        };
        record_before_after(
            &mut tx,
            actor,
            "channel.set_base_url",
            "channel",
            id,
            serde_json::json!({ "base_url": before.base_url, "status": before.status }),
            serde_json::json!({ "base_url": base_url, "status": after_status }),
            format!("{} → {base_url}", before.base_url),
        )
        .await?;
        tx.commit().await?;
        self.channel(id).await
    }
}

/// One day of one key's requests (see [`Store::key_daily_costs`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyDay {
    /// 00:00 Asia/Shanghai of the day, ms since the epoch.
    pub day_start_ms: i64,
    pub requests: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
}

/// A price row's insert: a version already published is `price_version_exists`.
fn version_taken<T>(res: std::result::Result<T, sqlx::Error>) -> Result<()> {
    match res {
        Ok(_) => Ok(()),
        Err(e) if crate::is_unique_violation(&e, "") => Err(StoreError::Conflict("price_version_exists")),
        Err(e) => Err(e.into()),
    }
}

/// A model's reference row as a [`ModelPrice`] (list prices only; the OPC fields 0).
fn reference_from(r: &AnyRow) -> Result<ModelPrice> {
    Ok(ModelPrice {
        model: r.try_get("model")?,
        list_input: r.try_get("list_input")?,
        opc_input: 0,
        list_cached: r.try_get("list_cached")?,
        opc_cached: 0,
        list_output: r.try_get("list_output")?,
        opc_output: 0,
    })
}

/// A reference price of a compute or data item (issue 18 item 3): the public list price per
/// unit, in fen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemReference {
    /// The item code usage events and price tables name (e.g. `a100`).
    pub item: String,
    /// `gpu_hour`, `gb` or `dataset`.
    pub unit: String,
    pub list_fen: i64,
}

/// One published version's reference for one item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ItemReferenceVersion {
    pub version: String,
    pub effective_from: i64,
    #[serde(flatten)]
    pub reference: ItemReference,
}

/// In `rows` (as from [`Store::item_references`]: newest effective first), the reference of
/// `item` priced per `unit` in force at `at_ms`.
pub fn item_reference_in<'a>(rows: &'a [ItemReferenceVersion], item: &str, unit: &str, at_ms: i64) -> Option<&'a ItemReferenceVersion> {
    rows.iter()
        .find(|r| r.reference.item == item && r.reference.unit == unit && r.effective_from <= at_ms)
}

/// An operator's item price as the M2.2 discount basis reads it: the list price at most up to
/// the reference in force, never below what the OPC is charged.
pub fn capped_at_reference(p: &ItemPriceVersion, reference: Option<&ItemReferenceVersion>) -> ItemPriceVersion {
    let mut out = p.clone();
    if let Some(r) = reference {
        out.price.list_fen = p.price.list_fen.min(r.reference.list_fen).max(p.price.opc_fen);
    }
    out
}

/// What pricing an item at a time found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemLookup<'a> {
    /// The version in force.
    Found(&'a ItemPriceVersion),
    /// The operator has the item, but no version of it is effective yet at that time.
    NotYetEffective,
    /// The operator has no such item.
    Unknown,
}

/// In `rows` (as from [`Store::item_prices_of`]: newest effective first), the price of `item`
/// in force at `at_ms`.
pub fn lookup_item<'a>(rows: &'a [ItemPriceVersion], item: &str, at_ms: i64) -> ItemLookup<'a> {
    let mut known = false;
    for r in rows.iter().filter(|r| r.price.item == item) {
        known = true;
        if r.effective_from <= at_ms {
            return ItemLookup::Found(r);
        }
    }
    if known {
        ItemLookup::NotYetEffective
    } else {
        ItemLookup::Unknown
    }
}

/// The version of `item` in force at `at_ms`, if any.
pub fn item_price_at<'a>(rows: &'a [ItemPriceVersion], item: &str, at_ms: i64) -> Option<&'a ItemPriceVersion> {
    match lookup_item(rows, item, at_ms) {
        ItemLookup::Found(r) => Some(r),
        _ => None,
    }
}
