//! The usage ledger's storage: appending events exactly once (dedup by source and source
//! event id, forever), their Merkle hashes, rollups and conservation counters in the same
//! transaction; signed checkpoints; proofs; sealed periods; outside sources; and `verify`,
//! which rebuilds everything from the raw rows. The tree math and the event rules live in
//! the pure `opchub-ledger` crate; the group-commit writer is [`LedgerWriter`].

use crate::audit::{record_after, Actor};
use crate::dialect::{self, multi_insert};
use crate::{is_unique_violation, new_id, now_ms, Backend, Result, Store, StoreError, Tx};
use opchub_ledger::checkpoint::{verify_checkpoint, LedgerKey};
use opchub_ledger::event::{canonical_bytes, content_hash_of, day_of, leaf_bytes, period_of, Booking, EventError, NewEvent, Origin};
use opchub_ledger::merkle::{self, Hash, MemoryTree};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One item of an append: a validated event, or one refused before storage (counted).
/// Not boxed: items are built once and moved into the batch; a box would cost an
/// allocation per event on the ingestion hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Item {
    Event(NewEvent),
    Rejected { source: String, error: EventError },
}

/// A row written with a group of events, in the same transaction: the gateway's outcome row and
/// budget settlement of a request ride on its metering commit instead of costing a write
/// transaction each (on SQLite, concurrent writers wait for each other's locks).
#[derive(Debug, Clone)]
pub enum SideWrite {
    /// A gateway request's outcome (`gateway_requests`).
    Request(crate::gateway::RequestOutcome),
    /// Settles a budget hold to the actual cost: releases `held`, adds `actual` to spent.
    SettleBudget {
        api_key_id: String,
        month: String,
        held: i64,
        actual: i64,
        /// When set, `actual` is spent only if this append stored the Skill Store event with
        /// this source event id (the call key): a retry the ledger finds a duplicate of, or a
        /// refused one, only releases its hold, so a call is paid once.
        only_if_stored: Option<String>,
    },
    /// A Skill Store call's row (`skill_calls`, M2.3), committed with its `skill.call` event:
    /// its `leaf_index` is set to the leaf of the event of source [`crate::skills::SOURCE`]
    /// keyed by its `call_key` in this append (stored or duplicate; none when refused). A row
    /// whose key exists is left as it is (the first attempt's counts stand).
    SkillCall(Box<crate::skills::SkillCall>),
    /// The payee's confirmation of a pending bill payment, which its `bill.payment` event (of
    /// source `bills`, keyed by the payment id, in the same append) stands for (issue 19 item
    /// 3). Applied before the events: when the payment is no longer pending, the event is
    /// refused (`payment_not_pending`) and nothing of it is written; when it applies, the
    /// payment's leaf is recorded in the same transaction.
    ConfirmBillPayment { payment_id: String, actor: Actor },
    /// A committee reviewer's upholding of a disputed payment, which confirms it: like
    /// [`SideWrite::ConfirmBillPayment`], applied before the events; a dispute no longer open
    /// refuses the payment's event (`dispute_resolved`).
    UpholdBillDispute {
        dispute_id: String,
        payment_id: String,
        note: String,
        actor: Actor,
    },
}

/// An event's canonical content JSON and content hash, computed before the writer books it:
/// for appends a caller waits on, [`LedgerWriter`] has each caller's task do this work (in
/// parallel), so the single writer only adds the booking and the tree. Background appends
/// leave it to the writer's own thread, off the answering threads.
pub struct Prepared {
    content_json: Vec<u8>,
    content_hash: String,
}

impl Prepared {
    pub fn of(e: &NewEvent) -> Prepared {
        let content_json = e.content_json();
        let content_hash = content_hash_of(&content_json);
        Prepared {
            content_json,
            content_hash,
        }
    }

    /// One per item (none for refused items).
    pub fn all(items: &[Item]) -> Vec<Option<Prepared>> {
        items
            .iter()
            .map(|it| match it {
                Item::Event(e) => Some(Prepared::of(e)),
                Item::Rejected { .. } => None,
            })
            .collect()
    }
}

/// `YYYY-MM-DD` and `YYYY-MM` (Asia/Shanghai) of instants, formatted once per day seen.
#[derive(Default)]
struct Days(HashMap<i64, (String, String)>);

impl Days {
    fn of(&mut self, ms: i64) -> &(String, String) {
        // Shanghai is UTC+8 all year: the local day number is fixed by the instant.
        let n = (ms + 8 * 3_600_000).div_euclid(86_400_000);
        self.0.entry(n).or_insert_with(|| (day_of(ms), period_of(ms)))
    }
}

/// Proof of storage handed back to the source; the same receipt for a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub leaf_index: i64,
    pub source: String,
    pub source_event_id: String,
    pub content_hash: String,
    pub leaf_hash: String,
    pub received_at_ms: i64,
    pub period: String,
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored(Receipt),
    Duplicate(Receipt),
    Rejected(EventError),
}

/// What the ledger signs for a batch of receipts (one Ed25519 signature per request, not
/// per event: signing costs about as much as storing an event). One line per receipt,
/// in response order: `<leaf_index> <leaf_hash> <source> <source_event_id>`.
pub fn receipts_message(receipts: &[&Receipt]) -> String {
    let mut m = String::from("opchub-receipts/v1\n");
    for r in receipts {
        m.push_str(&format!("{} {} {} {}\n", r.leaf_index, r.leaf_hash, r.source, r.source_event_id));
    }
    m
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Counters {
    pub received: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub rejected: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub tree_size: i64,
    pub root: String,
    /// The C2SP signed note.
    pub note: String,
    pub reason: String,
    /// Conservation counters per source at this checkpoint.
    pub counters: BTreeMap<String, Counters>,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub leaf_index: i64,
    pub source: String,
    pub source_event_id: String,
    pub kind: String,
    pub subject: String,
    pub counterparty: String,
    pub quantity: i64,
    pub unit: String,
    pub list_fen: i64,
    pub charged_fen: i64,
    /// What rounding `list_fen` and `charged_fen` to the fen left, in millionths of a fen
    /// (token usage; 0 otherwise): the exact amount is `fen × 10⁶ + sub_micro`.
    pub list_sub_micro: i64,
    pub charged_sub_micro: i64,
    pub price_version: String,
    pub occurred_at_ms: i64,
    pub received_at_ms: i64,
    pub origin: String,
    pub attributes: BTreeMap<String, String>,
    pub corrects_leaf_index: Option<i64>,
    pub correction_reason: Option<String>,
    pub requested_by: Option<String>,
    pub approved_by: Option<String>,
    pub period: String,
    pub late: bool,
    pub content_hash: String,
    pub leaf_hash: String,
}

const EVENT_COLS: &str = "leaf_index, source, source_event_id, kind, subject, counterparty, quantity, unit, list_fen, charged_fen, price_version, \
    occurred_at, received_at, origin, attributes, corrects_leaf_index, correction_reason, requested_by, approved_by, period, late, content_hash, leaf_hash, \
    list_sub_micro, charged_sub_micro";

fn event_from(r: &AnyRow) -> Result<StoredEvent> {
    let attrs: String = r.try_get("attributes")?;
    Ok(StoredEvent {
        leaf_index: r.try_get("leaf_index")?,
        source: r.try_get("source")?,
        source_event_id: r.try_get("source_event_id")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        counterparty: r.try_get("counterparty")?,
        quantity: r.try_get("quantity")?,
        unit: r.try_get("unit")?,
        list_fen: r.try_get("list_fen")?,
        charged_fen: r.try_get("charged_fen")?,
        list_sub_micro: r.try_get("list_sub_micro")?,
        charged_sub_micro: r.try_get("charged_sub_micro")?,
        price_version: r.try_get("price_version")?,
        occurred_at_ms: r.try_get("occurred_at")?,
        received_at_ms: r.try_get("received_at")?,
        origin: r.try_get("origin")?,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        corrects_leaf_index: r.try_get("corrects_leaf_index")?,
        correction_reason: r.try_get("correction_reason")?,
        requested_by: r.try_get("requested_by")?,
        approved_by: r.try_get("approved_by")?,
        period: r.try_get("period")?,
        late: r.try_get::<i64, _>("late")? != 0,
        content_hash: r.try_get("content_hash")?,
        leaf_hash: r.try_get("leaf_hash")?,
    })
}

impl StoredEvent {
    /// The event and its booking by value, and the stored leaf hash (no copies).
    pub fn into_parts(self) -> (NewEvent, Booking, String) {
        (
            NewEvent {
                source: self.source,
                source_event_id: self.source_event_id,
                kind: self.kind,
                subject: self.subject,
                counterparty: self.counterparty,
                quantity: self.quantity,
                unit: self.unit,
                list_fen: self.list_fen,
                charged_fen: self.charged_fen,
                list_sub_micro: self.list_sub_micro,
                charged_sub_micro: self.charged_sub_micro,
                price_version: self.price_version,
                occurred_at_ms: self.occurred_at_ms,
                origin: Origin::parse(&self.origin).unwrap_or(Origin::Reported),
                attributes: self.attributes,
                corrects_leaf_index: self.corrects_leaf_index,
                correction_reason: self.correction_reason,
                requested_by: self.requested_by,
                approved_by: self.approved_by,
            },
            Booking {
                leaf_index: self.leaf_index,
                received_at_ms: self.received_at_ms,
                period: self.period,
                late: self.late,
            },
            self.leaf_hash,
        )
    }

    /// Recomputes the leaf hash from the row's columns.
    pub fn recomputed_leaf_hash(&self) -> String {
        let (e, b, _) = self.clone().into_parts();
        merkle::hash_hex(&merkle::leaf_hash(&canonical_bytes(&e, &b, &e.content_hash())))
    }
}

fn hex_hash(s: &str) -> Result<Hash> {
    let v = hex::decode(s).map_err(|e| StoreError::Catalog(format!("bad hash: {e}")))?;
    v.try_into().map_err(|_| StoreError::Catalog("bad hash length".into()))
}

fn merkle_err(e: merkle::MerkleError) -> StoreError {
    StoreError::Catalog(format!("merkle: {e}"))
}

/// Splits `items` into chunks whose lengths are powers of two (at most `max`), so that
/// multi-row statements come in a handful of shapes that stay in the prepared-statement cache.
pub(crate) fn pow2_chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut out = vec![];
    let mut rest = items;
    while !rest.is_empty() {
        let mut c = max.min(rest.len()).next_power_of_two();
        if c > rest.len() {
            c /= 2;
        }
        let (head, tail) = rest.split_at(c.max(1));
        out.push(head);
        rest = tail;
    }
    out
}

async fn fetch_hashes(tx: &mut Tx, idxs: &[u64]) -> Result<HashMap<u64, Hash>> {
    let mut out = HashMap::with_capacity(idxs.len());
    for chunk in idxs.chunks(500) {
        let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!("SELECT idx, hash FROM ledger_hashes WHERE idx IN ({list})"))
            .fetch_all(&mut **tx)
            .await?;
        for r in rows {
            let idx: i64 = r.try_get("idx")?;
            let h: String = r.try_get("hash")?;
            out.insert(idx as u64, hex_hash(&h)?);
        }
    }
    Ok(out)
}

async fn lock_head(tx: &mut Tx) -> Result<i64> {
    // The row lock (PostgreSQL) or the write lock (SQLite, BEGIN IMMEDIATE) serialises appenders,
    // also across several `opchub serve` replicas.
    Ok(sqlx::query_scalar("UPDATE ledger_head SET size = size WHERE id = 1 RETURNING size")
        .fetch_one(&mut **tx)
        .await?)
}

async fn counters_tx(tx: &mut Tx) -> Result<BTreeMap<String, Counters>> {
    let rows = sqlx::query("SELECT source, received, stored, duplicates, rejected FROM ledger_counters ORDER BY source")
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("source")?,
                Counters {
                    received: r.try_get("received")?,
                    stored: r.try_get("stored")?,
                    duplicates: r.try_get("duplicates")?,
                    rejected: r.try_get("rejected")?,
                },
            ))
        })
        .collect()
}

fn empty_root() -> Hash {
    use sha2::{Digest, Sha256};
    Sha256::digest([]).into()
}

async fn root_tx(tx: &mut Tx, size: i64) -> Result<Hash> {
    if size == 0 {
        return Ok(empty_root());
    }
    let reads = merkle::root_reads(size as u64);
    let map = fetch_hashes(tx, &reads).await?;
    merkle::root(size as u64, &map).map_err(merkle_err)
}

async fn checkpoint_tx(tx: &mut Tx, key: &LedgerKey, origin: &str, size: i64, reason: &str) -> Result<Checkpoint> {
    if let Some(row) = sqlx::query(&format!("SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints WHERE tree_size = $1"))
        .bind(size)
        .fetch_optional(&mut **tx)
        .await?
    {
        return checkpoint_from(&row);
    }
    let root = root_tx(tx, size).await?;
    let note = key
        .sign_checkpoint(origin, size as u64, &root)
        .map_err(|e| StoreError::Catalog(e.to_string()))?;
    let counters = counters_tx(tx).await?;
    let created_at = now_ms();
    sqlx::query(&format!(
        "INSERT INTO ledger_checkpoints ({CHECKPOINT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
    ))
    .bind(size)
    .bind(hex::encode(root))
    .bind(&note)
    .bind(reason)
    .bind(serde_json::to_string(&counters).unwrap_or_default())
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    Ok(Checkpoint {
        tree_size: size,
        root: hex::encode(root),
        note,
        reason: reason.to_string(),
        counters,
        created_at,
    })
}

const CHECKPOINT_COLS: &str = "tree_size, root, note, reason, counters, created_at";

fn checkpoint_from(r: &AnyRow) -> Result<Checkpoint> {
    let counters: String = r.try_get("counters")?;
    Ok(Checkpoint {
        tree_size: r.try_get("tree_size")?,
        root: r.try_get("root")?,
        note: r.try_get("note")?,
        reason: r.try_get("reason")?,
        counters: serde_json::from_str(&counters).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
    })
}

/// (day, subject, counterparty, kind, unit)
pub(crate) type RollupKey = (String, String, String, String, String);

#[derive(Default)]
pub(crate) struct RollupDelta {
    pub(crate) quantity: i64,
    pub(crate) list: i64,
    pub(crate) charged: i64,
    pub(crate) events: i64,
    /// The part of the above from events the platform marked not qualified (attribute
    /// `qualified = false`: self-dealing, failed calls, unreviewed skill versions; M2.3).
    pub(crate) uq_quantity: i64,
    pub(crate) uq_list: i64,
    pub(crate) uq_charged: i64,
    pub(crate) uq_events: i64,
    /// Qualified events with nothing charged (free skill calls, M2.3).
    pub(crate) free_events: i64,
    /// What per-event rounding left of `list` and `charged` (and of their not-qualified
    /// part), in millionths of a fen: the sums stay exact (issue 17 item 6).
    pub(crate) list_sub: i64,
    pub(crate) charged_sub: i64,
    pub(crate) uq_list_sub: i64,
    pub(crate) uq_charged_sub: i64,
}

impl RollupDelta {
    fn add(&mut self, o: &RollupDelta) {
        self.quantity += o.quantity;
        self.list += o.list;
        self.charged += o.charged;
        self.events += o.events;
        self.uq_quantity += o.uq_quantity;
        self.uq_list += o.uq_list;
        self.uq_charged += o.uq_charged;
        self.uq_events += o.uq_events;
        self.free_events += o.free_events;
        self.list_sub += o.list_sub;
        self.charged_sub += o.charged_sub;
        self.uq_list_sub += o.uq_list_sub;
        self.uq_charged_sub += o.uq_charged_sub;
    }
}

/// The sums a rollup row keeps, in [`ROLLUP_SUMS`] order.
const ROLLUP_SUMS: &str = "quantity, list_fen, charged_fen, events, uq_quantity, uq_list_fen, uq_charged_fen, uq_events, free_events, \
    list_sub_micro, charged_sub_micro, uq_list_sub_micro, uq_charged_sub_micro";
/// How many sums [`ROLLUP_SUMS`] names.
const N_SUMS: usize = 13;

/// `ON CONFLICT … DO UPDATE` adding every sum of `excluded` to `table`'s row.
fn add_sums_on_conflict(table: &str, key: &str) -> String {
    let sets: Vec<String> = ROLLUP_SUMS
        .split(", ")
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(" ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
}

fn bind_sums<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    d: &RollupDelta,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(d.quantity)
        .bind(d.list)
        .bind(d.charged)
        .bind(d.events)
        .bind(d.uq_quantity)
        .bind(d.uq_list)
        .bind(d.uq_charged)
        .bind(d.uq_events)
        .bind(d.free_events)
        .bind(d.list_sub)
        .bind(d.charged_sub)
        .bind(d.uq_list_sub)
        .bind(d.uq_charged_sub)
}

/// Adds a batch's daily rollup deltas to the daily and the monthly rollups (same transaction as
/// the events, so statements and settlement never scan raw events and never see half a batch).
pub(crate) async fn write_rollups(tx: &mut Tx, backend: Backend, daily: BTreeMap<RollupKey, RollupDelta>) -> Result<()> {
    let mut monthly: BTreeMap<RollupKey, (String, RollupDelta)> = BTreeMap::new();
    for ((day, s, c, k, u), d) in &daily {
        let month = day.get(..7).unwrap_or(day).to_string();
        let m = monthly
            .entry((month, s.clone(), c.clone(), k.clone(), u.clone()))
            .or_insert_with(|| (day.clone(), RollupDelta::default()));
        // Keys are in day order within a month, so the first seen is the earliest.
        m.1.add(d);
    }
    let daily: Vec<_> = daily.into_iter().collect();
    let conflict = add_sums_on_conflict("ledger_rollups", "day, subject, counterparty, kind, unit");
    for chunk in pow2_chunks(&daily, 256) {
        let sql = multi_insert(
            backend,
            "ledger_rollups",
            &format!("day, subject, counterparty, kind, unit, {ROLLUP_SUMS}"),
            5 + N_SUMS,
            chunk.len(),
            &conflict,
        );
        let mut q = sqlx::query(&sql);
        for ((day, s, c, k, u), d) in chunk {
            q = bind_sums(q.bind(day).bind(s).bind(c).bind(k).bind(u), d);
        }
        q.execute(&mut **tx).await?;
    }
    let monthly: Vec<_> = monthly.into_iter().collect();
    let conflict = format!(
        "{}, first_day = CASE WHEN excluded.first_day < ledger_rollups_monthly.first_day THEN excluded.first_day ELSE ledger_rollups_monthly.first_day END",
        add_sums_on_conflict("ledger_rollups_monthly", "kind, month, subject, counterparty, unit")
    );
    for chunk in pow2_chunks(&monthly, 256) {
        let sql = multi_insert(
            backend,
            "ledger_rollups_monthly",
            &format!("month, subject, counterparty, kind, unit, first_day, {ROLLUP_SUMS}"),
            6 + N_SUMS,
            chunk.len(),
            &conflict,
        );
        let mut q = sqlx::query(&sql);
        for ((month, s, c, k, u), (first, d)) in chunk {
            q = bind_sums(q.bind(month).bind(s).bind(c).bind(k).bind(u).bind(first), d);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_side(tx: &mut Tx, backend: Backend, side: Vec<SideWrite>, outcomes: &[Outcome]) -> Result<()> {
    let mut requests = vec![];
    let mut budgets: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut calls = vec![];
    let stored_skill_event = |key: &str| {
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Stored(r) if r.source == crate::skills::SOURCE && r.source_event_id == key))
    };
    for s in side {
        match s {
            SideWrite::Request(o) => requests.push(o),
            SideWrite::SkillCall(c) => calls.push(c),
            // Applied before the events (`append_sized`).
            SideWrite::ConfirmBillPayment { .. } | SideWrite::UpholdBillDispute { .. } => {}
            SideWrite::SettleBudget {
                api_key_id,
                month,
                held,
                actual,
                only_if_stored,
            } => {
                let b = budgets.entry((api_key_id, month)).or_default();
                b.0 += held;
                if only_if_stored.as_deref().is_none_or(stored_skill_event) {
                    b.1 += actual;
                }
            }
        }
    }
    for chunk in pow2_chunks(&requests, 64) {
        let sql = multi_insert(
            backend,
            "gateway_requests",
            crate::gateway::REQUEST_COLS,
            crate::gateway::REQUEST_COL_COUNT,
            chunk.len(),
            "",
        );
        let mut q = sqlx::query(&sql);
        for o in chunk {
            q = crate::gateway::bind_request(q, o);
        }
        q.execute(&mut **tx).await?;
    }
    // Settles each hold to the actual cost (which may be 0): releases the hold, adds the cost.
    for ((key, month), (held, actual)) in budgets {
        sqlx::query("UPDATE gateway_budgets SET held_fen = held_fen - $1, spent_fen = spent_fen + $2 WHERE api_key_id = $3 AND month = $4")
            .bind(held)
            .bind(actual)
            .bind(key)
            .bind(month)
            .execute(&mut **tx)
            .await?;
    }
    if !calls.is_empty() {
        let leaves: HashMap<&str, i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Stored(r) | Outcome::Duplicate(r) if r.source == crate::skills::SOURCE => {
                    Some((r.source_event_id.as_str(), r.leaf_index))
                }
                _ => None,
            })
            .collect();
        for mut c in calls {
            c.leaf_index = leaves.get(c.call_key.as_str()).copied();
            crate::skills::bind_call(sqlx::query(crate::skills::INSERT_CALL), &c)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Whether the platform marked an event as not qualified for subsidy (attribute `qualified`).
pub fn unqualified(e: &NewEvent) -> bool {
    e.attributes.get("qualified").is_some_and(|v| v == "false")
}

impl Store {
    /// Appends `items` in one transaction, in order. Exactly once: an event whose (source,
    /// source event id) exists is a duplicate (same receipt) when its content is the same,
    /// and refused with `event_conflict` when it is not. Returns when committed.
    pub async fn ledger_append(&self, items: Vec<Item>) -> Result<Vec<Outcome>> {
        self.ledger_append_with(items, vec![]).await
    }

    /// [`Store::ledger_append`], also writing `side` rows in the same transaction.
    pub async fn ledger_append_with(&self, items: Vec<Item>, side: Vec<SideWrite>) -> Result<Vec<Outcome>> {
        let prepared = Prepared::all(&items);
        Ok(self.append_sized(items, prepared, side).await?.0)
    }

    /// The append, also returning the ledger's size after it.
    async fn append_sized(&self, items: Vec<Item>, prepared: Vec<Option<Prepared>>, side: Vec<SideWrite>) -> Result<(Vec<Outcome>, i64)> {
        if items.len() != prepared.len() {
            return Err(StoreError::Catalog("ledger append: one prepared entry per item".into()));
        }
        let now = now_ms();
        let (mut items, mut prepared) = (items, prepared);
        let mut tx = self.begin().await?;
        let size = lock_head(&mut tx).await?;
        // State changes the events stand for, applied first (with the writer's lock held):
        // an event whose change no longer applies is refused, so neither is written.
        let mut confirmed: Vec<(usize, String)> = vec![];
        let mut side_rows = Vec::with_capacity(side.len());
        for s in side {
            let (payment_id, refusal, applied) = match s {
                SideWrite::ConfirmBillPayment { payment_id, actor } => {
                    let applied = crate::bills::confirm_pending(&mut tx, &actor, &payment_id).await?;
                    (payment_id, "payment_not_pending", applied)
                }
                SideWrite::UpholdBillDispute {
                    dispute_id,
                    payment_id,
                    note,
                    actor,
                } => {
                    let applied = crate::bills::resolve_open(&mut tx, &actor, &dispute_id, "upheld", &note).await?;
                    (payment_id, "dispute_resolved", applied)
                }
                other => {
                    side_rows.push(other);
                    continue;
                }
            };
            // Its own event: two confirmations of one payment in one group each claim one (the
            // second then finds the payment confirmed and refuses its own, not the first's).
            let at = items.iter().enumerate().position(|(i, it)| {
                !confirmed.iter().any(|(c, _)| *c == i)
                    && matches!(it, Item::Event(e) if e.source == crate::bills::SOURCE && e.source_event_id == payment_id)
            });
            let Some(at) = at else {
                return Err(StoreError::Catalog(format!("a change of payment {payment_id} without its event")));
            };
            if applied {
                confirmed.push((at, payment_id));
            } else {
                items[at] = Item::Rejected {
                    source: crate::bills::SOURCE.to_string(),
                    error: EventError::new(refusal, None),
                };
                prepared[at] = None;
            }
        }
        let side = side_rows;
        let sealed: HashSet<String> = sqlx::query_scalar("SELECT period FROM ledger_periods")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();

        // Existing receipts for the keys in this batch.
        let mut by_source: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut targets: Vec<i64> = vec![];
        for it in &items {
            if let Item::Event(e) = it {
                by_source.entry(&e.source).or_default().push(&e.source_event_id);
                if let Some(t) = e.corrects_leaf_index {
                    targets.push(t);
                }
            }
        }
        let mut known: HashMap<(String, String), Receipt> = HashMap::new();
        for (source, ids) in &by_source {
            for chunk in pow2_chunks(ids, 256) {
                let ph = dialect::placeholder_list(self.backend, 2, chunk.len());
                let first = dialect::placeholder(self.backend, 1);
                let sql = format!(
                    "SELECT leaf_index, source, source_event_id, content_hash, leaf_hash, received_at, period, late FROM ledger_events WHERE source = {first} AND source_event_id IN ({ph})"
                );
                let mut q = sqlx::query(&sql).bind(*source);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(&mut *tx).await? {
                    let leaf_index: i64 = r.try_get("leaf_index")?;
                    let leaf_hash: String = r.try_get("leaf_hash")?;
                    let rc = Receipt {
                        leaf_index,
                        source: r.try_get("source")?,
                        source_event_id: r.try_get("source_event_id")?,
                        content_hash: r.try_get("content_hash")?,
                        leaf_hash,
                        received_at_ms: r.try_get("received_at")?,
                        period: r.try_get("period")?,
                        late: r.try_get::<i64, _>("late")? != 0,
                    };
                    known.insert((rc.source.clone(), rc.source_event_id.clone()), rc);
                }
            }
        }
        let mut existing_targets: HashSet<i64> = HashSet::new();
        for chunk in targets.chunks(500) {
            let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
            let found: Vec<i64> = sqlx::query_scalar(&format!("SELECT leaf_index FROM ledger_events WHERE leaf_index IN ({list})"))
                .fetch_all(&mut *tx)
                .await?;
            existing_targets.extend(found);
        }

        let mut days = Days::default();
        let open_period = days.of(now).1.clone();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut counters: BTreeMap<String, Counters> = BTreeMap::new();
        let mut rows: Vec<(NewEvent, Booking, String, String)> = vec![];
        let mut rollups: BTreeMap<RollupKey, RollupDelta> = BTreeMap::new();
        for (it, prep) in items.into_iter().zip(prepared) {
            match it {
                Item::Rejected { source, error } => {
                    let c = counters.entry(source).or_default();
                    c.received += 1;
                    c.rejected += 1;
                    outcomes.push(Outcome::Rejected(error));
                }
                Item::Event(e) => {
                    let c = counters.entry(e.source.clone()).or_default();
                    c.received += 1;
                    let prep = match prep {
                        Some(p) => p,
                        None => Prepared::of(&e),
                    };
                    let content_hash = prep.content_hash;
                    let k = (e.source.clone(), e.source_event_id.clone());
                    if let Some(r) = known.get(&k) {
                        if r.content_hash == content_hash {
                            c.duplicates += 1;
                            outcomes.push(Outcome::Duplicate(r.clone()));
                        } else {
                            c.rejected += 1;
                            outcomes.push(Outcome::Rejected(EventError::new("event_conflict", Some("source_event_id"))));
                        }
                        continue;
                    }
                    if let Some(t) = e.corrects_leaf_index {
                        if !existing_targets.contains(&t) && !rows.iter().any(|(_, b, _, _)| b.leaf_index == t) {
                            c.rejected += 1;
                            outcomes.push(Outcome::Rejected(EventError::new(
                                "unknown_corrected_event",
                                Some("corrects_leaf_index"),
                            )));
                            continue;
                        }
                    }
                    c.stored += 1;
                    let own = days.of(e.occurred_at_ms).1.clone();
                    // F2/periods: a sealed month is never changed; late events are booked now.
                    let (period, late) = if sealed.contains(&own) {
                        (open_period.clone(), true)
                    } else {
                        (own, false)
                    };
                    let booking = Booking {
                        leaf_index: size + rows.len() as i64,
                        received_at_ms: now,
                        period,
                        late,
                    };
                    let leaf_hash = merkle::hash_hex(&merkle::leaf_hash(&leaf_bytes(&prep.content_json, &booking, &content_hash)));
                    let rc = Receipt {
                        leaf_index: booking.leaf_index,
                        source: e.source.clone(),
                        source_event_id: e.source_event_id.clone(),
                        content_hash: content_hash.clone(),
                        leaf_hash: leaf_hash.clone(),
                        received_at_ms: now,
                        period: booking.period.clone(),
                        late,
                    };
                    let day = days.of(if late { now } else { e.occurred_at_ms }).0.clone();
                    let d = rollups
                        .entry((day, e.subject.clone(), e.counterparty.clone(), e.kind.clone(), e.unit.clone()))
                        .or_default();
                    d.quantity += e.quantity;
                    d.list += e.list_fen;
                    d.charged += e.charged_fen;
                    d.list_sub += e.list_sub_micro;
                    d.charged_sub += e.charged_sub_micro;
                    d.events += 1;
                    if unqualified(&e) {
                        d.uq_quantity += e.quantity;
                        d.uq_list += e.list_fen;
                        d.uq_charged += e.charged_fen;
                        d.uq_list_sub += e.list_sub_micro;
                        d.uq_charged_sub += e.charged_sub_micro;
                        d.uq_events += 1;
                    } else if e.charged_fen == 0 {
                        d.free_events += 1;
                    }
                    known.insert(k, rc.clone());
                    outcomes.push(Outcome::Stored(rc));
                    rows.push((e, booking, content_hash, leaf_hash));
                }
            }
        }

        let new_size = size + rows.len() as i64;
        if !rows.is_empty() {
            // Merkle: read from the database the earlier hashes that any leaf of this batch
            // needs (the right edge of the tree before it), then extend the tree in memory.
            let before = merkle::stored_hash_count(size as u64);
            let mut reads: Vec<u64> = (size as u64..size as u64 + rows.len() as u64)
                .flat_map(merkle::append_reads)
                .filter(|i| *i < before)
                .collect();
            reads.sort_unstable();
            reads.dedup();
            let mut map = fetch_hashes(&mut tx, &reads).await?;
            let mut new_hashes: Vec<(u64, Hash)> = Vec::with_capacity(rows.len() * 2);
            for (e_i, (_, b, _, lh)) in rows.iter().enumerate() {
                let n = size as u64 + e_i as u64;
                let hs = merkle::stored_hashes_for_leaf(n, hex_hash(lh)?, &map).map_err(merkle_err)?;
                let start = merkle::stored_hash_index(0, n);
                debug_assert_eq!(b.leaf_index as u64, n);
                for (j, h) in hs.into_iter().enumerate() {
                    map.insert(start + j as u64, h);
                    new_hashes.push((start + j as u64, h));
                }
            }
            for chunk in pow2_chunks(&rows, 256) {
                let sql = multi_insert(self.backend, "ledger_events", EVENT_COLS, 25, chunk.len(), "");
                let mut q = sqlx::query(&sql);
                for (e, b, ch, lh) in chunk {
                    q = q
                        .bind(b.leaf_index)
                        .bind(&e.source)
                        .bind(&e.source_event_id)
                        .bind(&e.kind)
                        .bind(&e.subject)
                        .bind(&e.counterparty)
                        .bind(e.quantity)
                        .bind(&e.unit)
                        .bind(e.list_fen)
                        .bind(e.charged_fen)
                        .bind(&e.price_version)
                        .bind(e.occurred_at_ms)
                        .bind(b.received_at_ms)
                        .bind(e.origin.as_str())
                        .bind(serde_json::to_string(&e.attributes).unwrap_or_else(|_| "{}".into()))
                        .bind(e.corrects_leaf_index)
                        .bind(e.correction_reason.clone())
                        .bind(e.requested_by.clone())
                        .bind(e.approved_by.clone())
                        .bind(&b.period)
                        .bind(b.late as i64)
                        .bind(ch)
                        .bind(lh)
                        .bind(e.list_sub_micro)
                        .bind(e.charged_sub_micro);
                }
                q.execute(&mut *tx).await.map_err(|err| {
                    if is_unique_violation(&err, "source") {
                        StoreError::Conflict("event_conflict")
                    } else {
                        err.into()
                    }
                })?;
            }
            for chunk in pow2_chunks(&new_hashes, 512) {
                let sql = multi_insert(self.backend, "ledger_hashes", "idx, hash", 2, chunk.len(), "");
                let mut q = sqlx::query(&sql);
                for (i, h) in chunk {
                    q = q.bind(*i as i64).bind(merkle::hash_hex(h));
                }
                q.execute(&mut *tx).await?;
            }
            write_rollups(&mut tx, self.backend, rollups).await?;
            sqlx::query("UPDATE ledger_head SET size = $1 WHERE id = 1")
                .bind(size + rows.len() as i64)
                .execute(&mut *tx)
                .await?;
        }
        for (source, c) in &counters {
            sqlx::query(
                "INSERT INTO ledger_counters (source, received, stored, duplicates, rejected) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (source) DO UPDATE SET received = ledger_counters.received + excluded.received, stored = ledger_counters.stored + excluded.stored, \
                 duplicates = ledger_counters.duplicates + excluded.duplicates, rejected = ledger_counters.rejected + excluded.rejected",
            )
            .bind(source)
            .bind(c.received)
            .bind(c.stored)
            .bind(c.duplicates)
            .bind(c.rejected)
            .execute(&mut *tx)
            .await?;
        }
        write_side(&mut tx, self.backend, side, &outcomes).await?;
        for (at, payment_id) in confirmed {
            match outcomes.get(at) {
                Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => {
                    crate::bills::set_payment_leaf(&mut tx, &payment_id, r.leaf_index).await?
                }
                // A platform-built event refused: nothing of the confirmation may commit.
                _ => {
                    return Err(StoreError::Catalog(format!(
                        "the event of confirmed payment {payment_id} was refused"
                    )))
                }
            }
        }
        tx.commit().await?;
        Ok((outcomes, new_size))
    }

    pub async fn ledger_size(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT size FROM ledger_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Signs a checkpoint of the current tree (or returns the one at this size).
    pub async fn ledger_checkpoint(&self, key: &LedgerKey, origin: &str, reason: &str) -> Result<Checkpoint> {
        let mut tx = self.begin().await?;
        let size = lock_head(&mut tx).await?;
        let cp = checkpoint_tx(&mut tx, key, origin, size, reason).await?;
        tx.commit().await?;
        Ok(cp)
    }

    pub async fn ledger_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(&format!("SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints ORDER BY tree_size DESC"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(checkpoint_from).collect()
    }

    /// The checkpoint signed at exactly `tree_size`, if any.
    pub async fn ledger_checkpoint_at(&self, tree_size: i64) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints WHERE tree_size = $1"))
            .bind(tree_size)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(checkpoint_from).transpose()
    }

    pub async fn ledger_latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from).transpose()
    }

    pub async fn ledger_counters(&self) -> Result<BTreeMap<String, Counters>> {
        let mut tx = self.pool.begin().await?;
        let c = counters_tx(&mut tx).await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn ledger_event(&self, leaf_index: i64) -> Result<StoredEvent> {
        let row = sqlx::query(&format!("SELECT {EVENT_COLS} FROM ledger_events WHERE leaf_index = $1"))
            .bind(leaf_index)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(event_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn ledger_event_by_key(&self, source: &str, source_event_id: &str) -> Result<StoredEvent> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM ledger_events WHERE source = $1 AND source_event_id = $2"
        ))
        .bind(source)
        .bind(source_event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Events booked in `period` where `party` is the subject (or, with `as_counterparty`,
    /// the counterparty), oldest first.
    pub async fn ledger_events_of(
        &self,
        party: &str,
        as_counterparty: bool,
        period: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<StoredEvent>> {
        let col = if as_counterparty { "counterparty" } else { "subject" };
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM ledger_events WHERE {col} = $1 AND period = $2 ORDER BY leaf_index LIMIT $3 OFFSET $4"
        ))
        .bind(party)
        .bind(period)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from).collect()
    }

    /// Inclusion proof of `leaf_index` in the tree of `tree_size` (≤ the current size).
    pub async fn ledger_inclusion(&self, leaf_index: i64, tree_size: i64) -> Result<(Hash, Hash, Vec<Hash>)> {
        let mut tx = self.pool.begin().await?;
        let size: i64 = sqlx::query_scalar("SELECT size FROM ledger_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if leaf_index < 0 || tree_size <= leaf_index || tree_size > size {
            return Err(StoreError::Invalid {
                field: "leaf_index",
                code: "out_of_range",
            });
        }
        let (l, t) = (leaf_index as u64, tree_size as u64);
        let mut reads = merkle::inclusion_reads(l, t).map_err(merkle_err)?;
        reads.extend(merkle::root_reads(t));
        reads.push(merkle::stored_hash_index(0, l));
        reads.sort_unstable();
        reads.dedup();
        let map = fetch_hashes(&mut tx, &reads).await?;
        let proof = merkle::inclusion_proof(l, t, &map).map_err(merkle_err)?;
        let root = merkle::root(t, &map).map_err(merkle_err)?;
        let leaf = *map.get(&merkle::stored_hash_index(0, l)).ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok((leaf, root, proof))
    }

    /// Consistency proof between two tree sizes (old ≤ new ≤ current size).
    pub async fn ledger_consistency(&self, old_size: i64, new_size: i64) -> Result<(Hash, Hash, Vec<Hash>)> {
        let mut tx = self.pool.begin().await?;
        let size: i64 = sqlx::query_scalar("SELECT size FROM ledger_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if old_size < 1 || new_size < old_size || new_size > size {
            return Err(StoreError::Invalid {
                field: "tree_size",
                code: "out_of_range",
            });
        }
        let (o, n) = (old_size as u64, new_size as u64);
        let mut reads = merkle::consistency_reads(o, n).map_err(merkle_err)?;
        reads.extend(merkle::root_reads(o));
        reads.extend(merkle::root_reads(n));
        reads.sort_unstable();
        reads.dedup();
        let map = fetch_hashes(&mut tx, &reads).await?;
        let proof = merkle::consistency_proof(o, n, &map).map_err(merkle_err)?;
        let old_root = merkle::root(o, &map).map_err(merkle_err)?;
        let new_root = merkle::root(n, &map).map_err(merkle_err)?;
        tx.commit().await?;
        Ok((old_root, new_root, proof))
    }

    /// Seals a month that has ended: later events for it are booked into the open month
    /// and marked late. Takes a checkpoint at the seal, then issues the month's bills (issue 19:
    /// from then on they never change); returns the checkpoint and how many bills were issued.
    /// Every way of closing (API, page, CLI) comes through here, so none has to remember the
    /// bills; a close whose bills failed to issue is caught up by the next read of the bills.
    pub async fn ledger_close_period(&self, actor: &Actor, key: &LedgerKey, origin: &str, period: &str) -> Result<(Checkpoint, usize)> {
        if period >= period_of(now_ms()).as_str() {
            return Err(StoreError::Invalid {
                field: "period",
                code: "period_not_ended",
            });
        }
        let mut tx = self.begin().await?;
        let size = lock_head(&mut tx).await?;
        let res = sqlx::query("INSERT INTO ledger_periods (period, sealed_at, tree_size, sealed_by) VALUES ($1, $2, $3, $4)")
            .bind(period)
            .bind(now_ms())
            .bind(size)
            .bind(actor.user_id.clone().unwrap_or_else(|| "system".into()))
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "period") {
                return Err(StoreError::Conflict("period_sealed"));
            }
            return Err(e.into());
        }
        let cp = checkpoint_tx(&mut tx, key, origin, size, &format!("period {period} sealed")).await?;
        let after = serde_json::json!({ "period": period, "tree_size": size, "root": cp.root });
        record_after(
            &mut tx,
            actor,
            "ledger.close_period",
            "ledger_period",
            period,
            after,
            format!("{period} @ {size}"),
        )
        .await?;
        tx.commit().await?;
        let bills = self.issue_bills(actor, period).await?;
        Ok((cp, bills))
    }

    pub async fn ledger_sealed_periods(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query("SELECT period, sealed_at, tree_size FROM ledger_periods ORDER BY period")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("period")?, r.try_get("sealed_at")?, r.try_get("tree_size")?)))
            .collect()
    }
}

// ---------------------------------------------------------------- rollups and statements

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UsageTotal {
    pub kind: String,
    pub unit: String,
    pub quantity: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub events: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DailyUsage {
    pub day: String,
    pub kind: String,
    pub quantity: i64,
    pub charged_fen: i64,
}

/// Fen of a sum of rounded fen and what the rounding left (millionths of a fen), rounded once.
fn exact_fen(fen: i64, sub_micro: i64) -> i64 {
    let exact = opchub_domain::ExactFen { fen, sub_micro }.micro();
    opchub_domain::money::round_micro(exact)
}

impl Store {
    /// Totals by kind for a party (as user, or as counterparty) in a `YYYY-MM` period, from rollups.
    /// Usage only: payments of bills (`bill.payment`, issue 19) are money and not counted.
    pub async fn usage_totals(&self, party: &str, as_counterparty: bool, period: &str) -> Result<Vec<UsageTotal>> {
        let col = if as_counterparty { "counterparty" } else { "subject" };
        let rows = sqlx::query(&format!(
            "SELECT kind, unit, CAST(SUM(quantity) AS BIGINT) AS q, CAST(SUM(list_fen) AS BIGINT) AS l, CAST(SUM(charged_fen) AS BIGINT) AS c, \
             CAST(SUM(list_sub_micro) AS BIGINT) AS ls, CAST(SUM(charged_sub_micro) AS BIGINT) AS cs, \
             CAST(SUM(events) AS BIGINT) AS n FROM ledger_rollups WHERE {col} = $1 AND day LIKE $2 AND kind <> 'bill.payment' GROUP BY kind, unit ORDER BY kind"
        ))
        .bind(party)
        .bind(format!("{period}-%"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageTotal {
                    kind: r.try_get("kind")?,
                    unit: r.try_get("unit")?,
                    quantity: r.try_get("q")?,
                    // Exact sums, rounded once per line of the statement (issue 17 item 6).
                    list_fen: exact_fen(r.try_get("l")?, r.try_get("ls")?),
                    charged_fen: exact_fen(r.try_get("c")?, r.try_get("cs")?),
                    events: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub async fn usage_daily(&self, party: &str, as_counterparty: bool, period: &str) -> Result<Vec<DailyUsage>> {
        let col = if as_counterparty { "counterparty" } else { "subject" };
        let rows = sqlx::query(&format!(
            "SELECT day, kind, CAST(SUM(quantity) AS BIGINT) AS q, CAST(SUM(charged_fen) AS BIGINT) AS c, \
             CAST(SUM(charged_sub_micro) AS BIGINT) AS cs FROM ledger_rollups \
             WHERE {col} = $1 AND day LIKE $2 AND kind <> 'bill.payment' GROUP BY day, kind ORDER BY day, kind"
        ))
        .bind(party)
        .bind(format!("{period}-%"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyUsage {
                    day: r.try_get("day")?,
                    kind: r.try_get("kind")?,
                    quantity: r.try_get("q")?,
                    charged_fen: exact_fen(r.try_get("c")?, r.try_get("cs")?),
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------- sources

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub owner_user_id: String,
    pub key_prefix: String,
    pub rate_per_minute: i64,
    /// The kinds this source may report (issue 18 item 4): a subset of
    /// `opchub_ledger::metering::REPORTABLE_KINDS`.
    pub kinds: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The columns of a [`Source`].
const SOURCE_COLS: &str = "id, name, owner_user_id, key_prefix, rate_per_minute, kinds, created_at, revoked_at";

fn source_from(r: &AnyRow) -> Result<Source> {
    let kinds: String = r.try_get("kinds")?;
    Ok(Source {
        kinds: serde_json::from_str(&kinds).unwrap_or_default(),
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        owner_user_id: r.try_get("owner_user_id")?,
        key_prefix: r.try_get("key_prefix")?,
        rate_per_minute: r.try_get("rate_per_minute")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    pub async fn create_source(
        &self,
        actor: &Actor,
        name: &str,
        owner_user_id: &str,
        key_hash: &str,
        key_prefix: &str,
        rate_per_minute: i64,
        kinds: &[String],
    ) -> Result<Source> {
        // The platform's own source names are never an outside source's (issue 18 item 4).
        if opchub_ledger::metering::reserved_source(name) {
            return Err(StoreError::Invalid {
                field: "name",
                code: "source_name_reserved",
            });
        }
        if kinds.is_empty()
            || kinds
                .iter()
                .any(|k| !opchub_ledger::metering::REPORTABLE_KINDS.contains(&k.as_str()))
        {
            return Err(StoreError::Invalid {
                field: "kinds",
                code: "kind_not_allowed",
            });
        }
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("INSERT INTO ledger_sources (id, name, owner_user_id, key_hash, key_prefix, rate_per_minute, kinds, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(name)
            .bind(owner_user_id)
            .bind(key_hash)
            .bind(key_prefix)
            .bind(rate_per_minute)
            .bind(serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into()))
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "name") {
                return Err(StoreError::Conflict("source_name_taken"));
            }
            if let sqlx::Error::Database(db) = &e {
                if db.is_foreign_key_violation() {
                    return Err(StoreError::Invalid {
                        field: "owner_user_id",
                        code: "unknown_user",
                    });
                }
            }
            return Err(e.into());
        }
        let after =
            serde_json::json!({ "id": id, "name": name, "owner": owner_user_id, "rate_per_minute": rate_per_minute, "kinds": kinds });
        record_after(
            &mut tx,
            actor,
            "ledger.source.create",
            "ledger_source",
            &id,
            after,
            name.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.source_by_name(name).await?.ok_or(StoreError::NotFound)
    }

    pub async fn source_by_name(&self, name: &str) -> Result<Option<Source>> {
        let row = sqlx::query(&format!("SELECT {SOURCE_COLS} FROM ledger_sources WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(source_from).transpose()
    }

    /// A live (not revoked) source by the hash of its key.
    pub async fn source_by_key(&self, key_hash: &str) -> Result<Option<Source>> {
        let row = sqlx::query(&format!(
            "SELECT {SOURCE_COLS} FROM ledger_sources WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(source_from).transpose()
    }

    /// The parties a source's owner serves (issue 18 item 4): its communities, and the OPCs in
    /// them.
    pub async fn parties_served_by(&self, owner_user_id: &str) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let communities = sqlx::query_scalar::<_, String>("SELECT id FROM communities WHERE operator_user_id = $1")
            .bind(owner_user_id)
            .fetch_all(&self.pool)
            .await?;
        let opcs = sqlx::query_scalar::<_, String>(
            "SELECT o.id FROM opcs o JOIN communities c ON c.id = o.community_id WHERE c.operator_user_id = $1",
        )
        .bind(owner_user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok((communities.into_iter().collect(), opcs.into_iter().collect()))
    }

    pub async fn sources(&self) -> Result<Vec<Source>> {
        let rows = sqlx::query(&format!("SELECT {SOURCE_COLS} FROM ledger_sources ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(source_from).collect()
    }
}

// ---------------------------------------------------------------- group commit

struct Job {
    items: Vec<Item>,
    /// Done by the caller's task for appends a caller waits on (in parallel); by the writer's
    /// own (background) thread for background ones.
    prepared: Option<Vec<Option<Prepared>>>,
    side: Vec<SideWrite>,
    /// Absent for background appends: their failures are logged by the writer, and nobody is
    /// woken per commit ([`LedgerWriter::flush`] waits for them all at once).
    reply: Option<Reply>,
}

type Reply = oneshot::Sender<std::result::Result<Vec<Outcome>, String>>;

/// Settings of the ledger writer.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The log's origin line in checkpoints (e.g. `opchub.example/ledger`).
    pub origin: String,
    /// Take a checkpoint after this many new events…
    pub checkpoint_every: i64,
    /// …or after this much time with new events.
    pub checkpoint_interval: std::time::Duration,
    /// Most events committed in one transaction.
    pub max_group: usize,
    /// How long a group made only of background appends ([`LedgerWriter::append_background`])
    /// waits for more before committing: fewer, larger transactions for metering that nobody
    /// waits on. An ordinary append arriving meanwhile ends the wait.
    pub background_linger: std::time::Duration,
    /// How the writer's thread is scheduled next to the threads that answer requests.
    pub priority: WriterPriority,
}

/// Scheduling of the ledger writer's thread (and of the database connection thread it opens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriterPriority {
    /// Like every other thread.
    #[default]
    Normal,
    /// Runs when nothing else wants the CPU (Linux `SCHED_IDLE`): a request never waits behind
    /// a commit on a busy core. `opchub serve` uses it; it may starve on a core kept 100% busy,
    /// so tests keep `Normal`. Elsewhere than Linux, the same as `Normal`.
    Background,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            origin: "opchub/ledger".into(),
            checkpoint_every: 10_000,
            checkpoint_interval: std::time::Duration::from_secs(60),
            max_group: 10_000,
            background_linger: std::time::Duration::from_millis(20),
            priority: WriterPriority::Normal,
        }
    }
}

/// The single appender of a process: concurrent appends queue here and are committed
/// together in one transaction (group commit). An ordinary append resolves only after the
/// transaction that holds its events has committed; a background append (metering nobody waits
/// on) once it is queued, and [`LedgerWriter::flush`] waits for those.
#[derive(Clone)]
pub struct LedgerWriter {
    /// Appends a caller waits on.
    tx: mpsc::Sender<Job>,
    /// Background appends (and flushes, which follow them in this queue's order).
    background: mpsc::Sender<Job>,
    pub key: Arc<LedgerKey>,
    pub config: Arc<LedgerConfig>,
}

impl LedgerWriter {
    /// Starts the writer on a thread of its own, with its own current-thread runtime and its
    /// own connection to `store`'s database (opened there, so its SQLite thread is scheduled
    /// like the writer: see [`WriterPriority`]). Returns once that connection is open. The
    /// writer stops when the last [`LedgerWriter`] clone is dropped.
    pub async fn start(store: &Store, key: Arc<LedgerKey>, config: LedgerConfig) -> Result<LedgerWriter> {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let (background, background_rx) = mpsc::channel::<Job>(4096);
        let config = Arc::new(config);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let (main, thread_key, thread_config) = (store.clone(), key.clone(), config.clone());
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                if thread_config.priority == WriterPriority::Background {
                    schedule_in_background();
                }
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Catalog(format!("ledger writer runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(async move {
                    // One connection for the commits, one for a checkpoint's reads meanwhile.
                    let store = match main.dedicated(2).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    drop(main);
                    let _ = ready_tx.send(Ok(()));
                    run_writer(store.clone(), thread_key, thread_config, rx, background_rx).await;
                    store.close().await;
                });
            })
            .map_err(|e| StoreError::Catalog(format!("ledger writer thread: {e}")))?;
        ready_rx.await.map_err(|_| StoreError::Catalog("ledger writer stopped".into()))??;
        Ok(LedgerWriter {
            tx,
            background,
            key,
            config,
        })
    }

    /// Appends and waits until durable (the transaction holding these events committed).
    pub async fn append(&self, items: Vec<Item>) -> Result<Vec<Outcome>> {
        self.append_with(items, vec![]).await
    }

    /// Appends `items` and writes `side` in the same transaction; waits until committed.
    pub async fn append_with(&self, items: Vec<Item>, side: Vec<SideWrite>) -> Result<Vec<Outcome>> {
        self.submit(items, side).await
    }

    /// Queues `items` and `side` for one transaction, for metering that no caller is waiting
    /// on (the gateway's, after the answer left), and returns once queued. The writer may
    /// commit it up to `background_linger` later, together with others, from its own thread;
    /// a failure is logged there. [`LedgerWriter::flush`] waits until all of it is committed.
    pub async fn append_background(&self, items: Vec<Item>, side: Vec<SideWrite>) -> Result<()> {
        self.queue_background(items, side, None).await
    }

    /// Waits until every background append queued before this call has been committed (or
    /// has failed and been logged).
    pub async fn flush(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.queue_background(vec![], vec![], Some(reply)).await?;
        // A failed commit was logged by the writer; the flush itself is done either way.
        let _committed_or_logged = rx.await.map_err(|_| StoreError::Catalog("ledger writer stopped".into()))?;
        Ok(())
    }

    /// The background queue is FIFO: a flush queued here follows every append queued before it.
    async fn queue_background(&self, items: Vec<Item>, side: Vec<SideWrite>, reply: Option<Reply>) -> Result<()> {
        let job = Job {
            items,
            prepared: None,
            side,
            reply,
        };
        self.background
            .send(job)
            .await
            .map_err(|_| StoreError::Catalog("ledger writer stopped".into()))
    }

    async fn submit(&self, items: Vec<Item>, side: Vec<SideWrite>) -> Result<Vec<Outcome>> {
        let (reply, rx) = oneshot::channel();
        let prepared = Some(Prepared::all(&items));
        self.tx
            .send(Job {
                items,
                prepared,
                side,
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Catalog("ledger writer stopped".into()))?;
        match rx.await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(StoreError::Catalog(e)),
            Err(_) => Err(StoreError::Catalog("ledger writer stopped".into())),
        }
    }
}

/// The next job without waiting: appends a caller waits on first, then background ones.
fn next_ready(rx: &mut mpsc::Receiver<Job>, background: &mut mpsc::Receiver<Job>) -> Option<Job> {
    rx.try_recv().or_else(|_| background.try_recv()).ok()
}

/// The first wait before retrying background appends whose commit failed; it doubles on each
/// failure up to [`RETRY_LAST`].
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const RETRY_LAST: std::time::Duration = std::time::Duration::from_secs(2);
/// Most background appends kept for a retry: beyond, the oldest is dropped, logged and counted
/// (`opchub_ledger_background_dropped_total`): memory stays bounded through a long outage.
const RETRY_MAX_JOBS: usize = 200_000;
/// After shutdown, how many more attempts the retry queue gets before what is left is counted lost.
const RETRY_AT_SHUTDOWN: u32 = 10;

/// Background appends whose commit failed (the database restarting, the disk full), oldest
/// first. While any wait, newer background appends queue behind them, so the order (and a
/// flush's promise) holds; appends a caller waits on go on as usual, each failing fast or
/// committing.
#[derive(Default)]
struct Retry {
    jobs: std::collections::VecDeque<Job>,
    due: Option<tokio::time::Instant>,
    backoff: std::time::Duration,
    /// Most events of the next retry group: halved on each failure (a write that cannot fit
    /// on a nearly full disk keeps smaller ones from passing), doubled on each success.
    group: usize,
}

impl Retry {
    fn push(&mut self, job: Job) {
        if self.jobs.len() >= RETRY_MAX_JOBS {
            if let Some(old) = self.jobs.pop_front() {
                metrics::counter!("opchub_ledger_background_dropped_total").increment(old.items.len() as u64);
                tracing::error!(
                    events = old.items.len(),
                    "retry queue full: the oldest background append is dropped"
                );
            }
        }
        self.jobs.push_back(job);
        metrics::gauge!("opchub_ledger_retry_queue").set(self.jobs.len() as f64);
    }

    /// After a failed commit: `failed` go back to the front, in order, and wait longer.
    fn failed(&mut self, failed: Vec<Job>) {
        for j in failed.into_iter().rev() {
            self.jobs.push_front(j);
        }
        self.backoff = if self.backoff.is_zero() {
            RETRY_FIRST
        } else {
            (self.backoff * 2).min(RETRY_LAST)
        };
        self.group = (self.group / 2).max(1);
        self.due = Some(tokio::time::Instant::now() + self.backoff);
        metrics::gauge!("opchub_ledger_retry_queue").set(self.jobs.len() as f64);
    }

    fn succeeded(&mut self) {
        self.backoff = std::time::Duration::ZERO;
        self.group = self.group.saturating_mul(2);
        if self.jobs.is_empty() {
            self.due = None;
        }
        metrics::gauge!("opchub_ledger_retry_queue").set(self.jobs.len() as f64);
    }

    fn is_due(&self) -> bool {
        !self.jobs.is_empty() && self.due.is_none_or(|d| tokio::time::Instant::now() >= d)
    }
}

/// The gateway requests among `jobs` whose first attempt did commit (the connection broke
/// after the commit, before its answer): their outcome row exists. Their events would be found
/// duplicates anyway, but the outcome row and the budget settlement must not be written twice.
async fn committed_requests(store: &Store, jobs: &[Job]) -> Result<HashSet<String>> {
    let ids: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.side.iter())
        .filter_map(|s| match s {
            SideWrite::Request(o) => Some(o.request_id.as_str()),
            _ => None,
        })
        .collect();
    let mut committed: HashSet<String> = HashSet::new();
    for chunk in pow2_chunks(&ids, 256) {
        let ph = dialect::placeholder_list(store.backend, 1, chunk.len());
        let sql = format!("SELECT request_id FROM gateway_requests WHERE request_id IN ({ph})");
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        committed.extend(q.fetch_all(&store.pool).await?);
    }
    Ok(committed)
}

/// Commits one group of jobs in one transaction and answers each. When the commit fails,
/// appends a caller waits on get the error at once (they fail fast); background appends (and
/// the flushes queued behind them) go to `retry`, in order. Returns the ledger's size after,
/// and whether the commit failed.
async fn commit_group(store: &Store, jobs: Vec<Job>, size: i64, retry: &mut Retry) -> (i64, bool) {
    let n: usize = jobs.iter().map(|j| j.items.len()).sum();
    let lens: Vec<usize> = jobs.iter().map(|j| j.items.len()).collect();
    let mut all = Vec::with_capacity(n);
    let mut prepared = Vec::with_capacity(n);
    let mut side = vec![];
    let mut replies = Vec::with_capacity(jobs.len());
    // Background appends are kept until their group commits: a failure retries them.
    let mut kept: Vec<Option<Job>> = Vec::with_capacity(jobs.len());
    for mut j in jobs {
        match j.prepared.take() {
            Some(p) => {
                prepared.extend(p);
                all.extend(j.items);
                side.extend(j.side);
                replies.push(j.reply);
                kept.push(None);
            }
            None => {
                prepared.extend(Prepared::all(&j.items));
                all.extend(j.items.iter().cloned());
                side.extend(j.side.iter().cloned());
                replies.push(j.reply.take());
                kept.push(Some(j));
            }
        }
    }
    let result = if all.is_empty() && side.is_empty() {
        Ok((vec![], size)) // only flushes
    } else {
        store.append_sized(all, prepared, side).await
    };
    match result {
        Ok((outcomes, new_size)) => {
            let mut it = outcomes.into_iter();
            for (reply, len) in replies.into_iter().zip(lens) {
                let part: Vec<Outcome> = it.by_ref().take(len).collect();
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(part));
                }
            }
            retry.succeeded();
            (new_size, false)
        }
        Err(e) => {
            let size = store.ledger_size().await.unwrap_or(size);
            metrics::counter!("opchub_ledger_append_failures_total").increment(1);
            let mixed = kept.iter().any(Option::is_none);
            let mut again = vec![];
            for (reply, job) in replies.into_iter().zip(kept) {
                match job {
                    Some(mut j) => {
                        j.reply = reply;
                        again.push(j);
                    }
                    None => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
            let events: usize = again.iter().map(|j| j.items.len()).sum();
            if !e.is_transient() && mixed && !again.is_empty() {
                // Perhaps an append a caller waits on failed the group (it got its error):
                // the background ones are tried again on their own, without waiting.
                tracing::warn!(error = %e, events = n, "ledger append failed; its background appends are tried alone");
                retry.failed(again);
                retry.due = None;
                return (size, true);
            }
            if !e.is_transient() {
                // The same write would fail again (a constraint, a bug): retrying it would hold
                // every later background append behind it. Dropped, logged and counted.
                tracing::error!(error = %e, events = n, dropped = events, "ledger append failed for good");
                metrics::counter!("opchub_ledger_background_dropped_total").increment(events as u64);
                for j in again {
                    if let Some(reply) = j.reply {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
                retry.succeeded();
                return (size, true);
            }
            tracing::error!(error = %e, events = n, kept_for_retry = events, "ledger append failed; retrying");
            if !again.is_empty() {
                retry.failed(again);
            }
            (size, true)
        }
    }
}

async fn sleep_until_due(due: Option<tokio::time::Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn run_writer(
    mut store: Store,
    key: Arc<LedgerKey>,
    config: Arc<LedgerConfig>,
    mut rx: mpsc::Receiver<Job>,
    mut background_rx: mpsc::Receiver<Job>,
) {
    let mut last_cp = store
        .ledger_latest_checkpoint()
        .await
        .ok()
        .flatten()
        .map(|c| c.tree_size)
        .unwrap_or(0);
    // The size after this writer's last append (or the database's, when an append failed).
    let mut size = store.ledger_size().await.unwrap_or(last_cp);
    let mut last_cp_at = std::time::Instant::now();
    let mut tick = tokio::time::interval(config.checkpoint_interval.min(std::time::Duration::from_secs(5)));
    let mut retry = Retry::default();
    let mut attempts_after_shutdown = 0;
    // Both queues' senders live in the same handles: once one queue is closed and empty, what
    // is left in the other is committed, and what waits for a retry gets a few more tries;
    // then the writer stops.
    let (mut open, mut background_open) = (true, true);
    while open || background_open || (!retry.jobs.is_empty() && attempts_after_shutdown < RETRY_AT_SHUTDOWN) {
        let mut jobs: Vec<Job> = vec![];
        let (mut from_background, mut retrying) = (false, false);
        if retry.is_due() || (!open && !background_open) {
            if !open && !background_open {
                attempts_after_shutdown += 1;
                tokio::time::sleep(retry.backoff).await;
            }
            let mut n = 0;
            retry.group = retry.group.clamp(1, config.max_group);
            while n < retry.group {
                let Some(j) = retry.jobs.pop_front() else { break };
                n += j.items.len().max(1);
                jobs.push(j);
            }
            match committed_requests(&store, &jobs).await {
                Ok(done) if !done.is_empty() => {
                    tracing::warn!(requests = done.len(), "background appends found committed before their retry");
                    jobs.retain(|j| {
                        !j.side
                            .iter()
                            .any(|s| matches!(s, SideWrite::Request(o) if done.contains(&o.request_id)))
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    // The database is still away: wait longer.
                    tracing::warn!(error = %e, "ledger still unavailable");
                    metrics::counter!("opchub_ledger_append_failures_total").increment(1);
                    retry.failed(jobs);
                    continue;
                }
            }
            retrying = true;
        } else {
            let first = tokio::select! {
                biased;
                job = rx.recv(), if open => match job { Some(j) => Some((j, false)), None => { open = false; None } },
                job = background_rx.recv(), if background_open => match job {
                    Some(j) => Some((j, true)),
                    None => { background_open = false; None }
                },
                _ = sleep_until_due(retry.due), if !retry.jobs.is_empty() => None,
                _ = tick.tick() => None,
            };
            match first {
                // Behind the appends that wait for a retry, so the order (and a flush's promise) holds.
                Some((j, true)) if !retry.jobs.is_empty() => retry.push(j),
                Some((j, background)) => {
                    from_background = background;
                    jobs.push(j);
                }
                None => {}
            }
        }
        if !jobs.is_empty() {
            let mut n: usize = jobs.iter().map(|j| j.items.len()).sum();
            if from_background && open {
                // Only background work so far: give more of it time to queue up, without being
                // woken by each arrival; an append a caller waits on ends the wait at once.
                let linger_until = tokio::time::Instant::now() + config.background_linger;
                tokio::select! {
                    _ = tokio::time::sleep_until(linger_until) => {}
                    job = rx.recv() => match job {
                        Some(j) => {
                            n += j.items.len();
                            jobs.push(j);
                        }
                        None => open = false,
                    },
                }
            }
            // A retry group is only retried work: what arrives meanwhile queues behind it.
            while !retrying && n < config.max_group {
                let next = if retry.jobs.is_empty() {
                    next_ready(&mut rx, &mut background_rx)
                } else {
                    rx.try_recv().ok()
                };
                let Some(j) = next else { break };
                n += j.items.len();
                jobs.push(j);
            }
            let failed;
            (size, failed) = commit_group(&store, jobs, size, &mut retry).await;
            if failed {
                // A connection whose commit failed may be left inside its transaction (a full
                // disk on SQLite): the next groups get fresh connections.
                match store.dedicated(2).await {
                    Ok(fresh) => {
                        store.close().await;
                        store = fresh;
                    }
                    Err(e) => tracing::warn!(error = %e, "ledger writer could not reconnect yet"),
                }
            }
        }
        let due = size - last_cp >= config.checkpoint_every || (size > last_cp && last_cp_at.elapsed() >= config.checkpoint_interval);
        if due {
            match store.ledger_checkpoint(&key, &config.origin, "periodic").await {
                Ok(cp) => {
                    last_cp = cp.tree_size;
                    last_cp_at = std::time::Instant::now();
                }
                Err(e) => tracing::error!(error = %e, "checkpoint failed"),
            }
        }
    }
    if !retry.jobs.is_empty() {
        let events: usize = retry.jobs.iter().map(|j| j.items.len()).sum();
        metrics::counter!("opchub_ledger_background_dropped_total").increment(events as u64);
        tracing::error!(
            appends = retry.jobs.len(),
            events,
            "ledger writer stopped with background appends it could not commit"
        );
    }
}

/// Puts the calling thread (and the threads it starts from now on) in `SCHED_IDLE`.
#[cfg(target_os = "linux")]
fn schedule_in_background() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not schedule the ledger writer in the background");
    }
}

#[cfg(not(target_os = "linux"))]
fn schedule_in_background() {}

// ---------------------------------------------------------------- verify

/// A rollup row's sums, in [`ROLLUP_SUMS`] order.
fn sums_of(r: &AnyRow) -> Result<[i64; N_SUMS]> {
    let mut out = [0; N_SUMS];
    for (o, c) in out.iter_mut().zip(ROLLUP_SUMS.split(", ")) {
        *o = r.try_get(c)?;
    }
    Ok(out)
}

/// What `ledger verify` found. Empty `problems` means the ledger is intact.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub events: i64,
    pub head_size: i64,
    pub checkpoints: usize,
    pub rollups: usize,
    pub problems: Vec<String>,
}

impl Store {
    /// Rebuilds the tree from the raw rows and checks: every leaf against its stored hash
    /// (changed, reordered), gaps (deleted), rows beyond the head (inserted), every stored
    /// tree hash, every checkpoint's signature and root, every rollup, the counters.
    pub async fn ledger_verify(&self, verifier_key: &str, progress: &(dyn Fn(i64) + Sync)) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            head_size: self.ledger_size().await?,
            ..Default::default()
        };
        let mut tree = MemoryTree::new();
        let mut expected: i64 = 0;
        let mut rollups: HashMap<RollupKey, [i64; N_SUMS]> = HashMap::new();
        let mut stored_per_source: BTreeMap<String, i64> = BTreeMap::new();
        {
            // Pages are read by a second task while this one hashes (2 cores: both busy).
            let (tx, mut rx) = mpsc::channel::<Result<Vec<StoredEvent>>>(2);
            tokio::spawn(read_event_pages(self.clone(), tx));
            while let Some(page) = rx.recv().await {
                for ev in page? {
                    if ev.leaf_index >= report.head_size {
                        report.problems.push(format!(
                            "event {} (source {} id {}) was inserted beyond the tree size {}",
                            ev.leaf_index, ev.source, ev.source_event_id, report.head_size
                        ));
                        continue;
                    }
                    while expected < ev.leaf_index {
                        report.problems.push(format!("event {expected} is missing (deleted)"));
                        // Keep indexes aligned: a missing leaf is replaced by a marker that cannot match.
                        tree.append(merkle::leaf_hash(b"opchub: missing leaf")).map_err(merkle_err)?;
                        expected += 1;
                    }
                    // Owned parts, no copies: this loop runs once per event of the whole ledger.
                    let (e, b, stored_leaf_hash) = ev.into_parts();
                    let content = e.content_json();
                    let leaf = merkle::leaf_hash(&leaf_bytes(&content, &b, &content_hash_of(&content)));
                    if hex_hash(&stored_leaf_hash).ok() != Some(leaf) {
                        report.problems.push(format!(
                            "event {} (source {} id {}) was changed: its content no longer matches its leaf hash",
                            b.leaf_index, e.source, e.source_event_id
                        ));
                    }
                    tree.append(leaf).map_err(merkle_err)?;
                    let day = if b.late {
                        day_of(b.received_at_ms)
                    } else {
                        day_of(e.occurred_at_ms)
                    };
                    let uq = unqualified(&e);
                    let r = rollups.entry((day, e.subject, e.counterparty, e.kind, e.unit)).or_default();
                    let add = [e.quantity, e.list_fen, e.charged_fen, 1];
                    for (i, v) in add.into_iter().enumerate() {
                        r[i] += v;
                        if uq {
                            r[i + 4] += v;
                        }
                    }
                    if !uq && e.charged_fen == 0 {
                        r[8] += 1;
                    }
                    for (i, v) in [e.list_sub_micro, e.charged_sub_micro].into_iter().enumerate() {
                        r[9 + i] += v;
                        if uq {
                            r[11 + i] += v;
                        }
                    }
                    *stored_per_source.entry(e.source).or_default() += 1;
                    expected += 1;
                    report.events += 1;
                    if report.events % 10_000 == 0 {
                        progress(report.events);
                    }
                }
            }
        }
        while expected < report.head_size {
            report.problems.push(format!("event {expected} is missing (deleted)"));
            tree.append(merkle::leaf_hash(b"opchub: missing leaf")).map_err(merkle_err)?;
            expected += 1;
        }
        progress(report.events);
        // Every stored tree hash against the rebuilt tree; level-0 mismatches name the event.
        {
            let (tx, mut rx) = mpsc::channel::<Result<Vec<(i64, String)>>>(2);
            tokio::spawn(read_hash_pages(self.clone(), tx));
            let stored = tree.stored();
            let mut seen: u64 = 0;
            let mut reported: HashSet<i64> = HashSet::new();
            let mut all = vec![];
            while let Some(page) = rx.recv().await {
                all.extend(page?);
            }
            for (idx, h) in all {
                seen += 1;
                let ok = stored.get(idx as usize).is_some_and(|s| hex::encode(s) == h);
                if !ok {
                    // Which leaf does this stored hash cover? Report it once per leaf.
                    let leaf = leaf_of_stored_index(idx as u64);
                    if reported.insert(leaf) && !report.problems.iter().any(|p| p.starts_with(&format!("event {leaf} "))) {
                        report.problems.push(format!(
                            "event {leaf}: the tree hash stored for it does not match its content (changed or reordered)"
                        ));
                    }
                }
            }
            if seen != stored.len() as u64 {
                report
                    .problems
                    .push(format!("the tree has {seen} stored hashes, expected {}", stored.len()));
            }
        }
        // Checkpoints: signature, and the signed root equals the rebuilt root at that size.
        for cp in self.ledger_checkpoints().await? {
            report.checkpoints += 1;
            match verify_checkpoint(&cp.note, verifier_key) {
                Err(e) => report
                    .problems
                    .push(format!("checkpoint at size {}: signature does not verify ({e})", cp.tree_size)),
                Ok(v) => {
                    if v.size as i64 != cp.tree_size || hex::encode(v.root) != cp.root {
                        report
                            .problems
                            .push(format!("checkpoint at size {}: the row differs from its signed note", cp.tree_size));
                    }
                    let rebuilt = if v.size == 0 { Ok(empty_root()) } else { tree.root_at(v.size) };
                    match rebuilt {
                        Ok(r) if r == v.root => {}
                        Ok(_) => report.problems.push(format!(
                            "checkpoint at size {}: the signed root does not match the events (history was edited)",
                            v.size
                        )),
                        Err(e) => report.problems.push(format!("checkpoint at size {}: cannot rebuild ({e})", v.size)),
                    }
                }
            }
        }
        // Rollups against raw sums: the monthly ones against the events' monthly sums.
        let mut monthly: HashMap<RollupKey, ([i64; N_SUMS], String)> = HashMap::new();
        for ((day, s, c, k, u), v) in &rollups {
            let m = monthly
                .entry((day.get(..7).unwrap_or(day).to_string(), s.clone(), c.clone(), k.clone(), u.clone()))
                .or_insert_with(|| ([0; N_SUMS], day.clone()));
            for (a, b) in m.0.iter_mut().zip(v) {
                *a += b;
            }
            if *day < m.1 {
                m.1 = day.clone();
            }
        }
        {
            let rows = sqlx::query(&format!(
                "SELECT day, subject, counterparty, kind, unit, {ROLLUP_SUMS} FROM ledger_rollups"
            ))
            .fetch_all(&self.pool)
            .await?;
            report.rollups = rows.len();
            for r in &rows {
                let k: RollupKey = (
                    r.try_get("day")?,
                    r.try_get("subject")?,
                    r.try_get("counterparty")?,
                    r.try_get("kind")?,
                    r.try_get("unit")?,
                );
                let got = sums_of(r)?;
                match rollups.remove(&k) {
                    Some(want) if want == got => {}
                    Some(want) => report.problems.push(format!(
                        "rollup {} {} {} {}: stored {:?}, events sum to {:?}",
                        k.0, k.1, k.2, k.3, got, want
                    )),
                    None => report
                        .problems
                        .push(format!("rollup {} {} {} {} has no events", k.0, k.1, k.2, k.3)),
                }
            }
            for (k, _) in rollups {
                report
                    .problems
                    .push(format!("events of {} {} {} {} have no rollup", k.0, k.1, k.2, k.3));
            }
            let rows = sqlx::query(&format!(
                "SELECT month, subject, counterparty, kind, unit, first_day, {ROLLUP_SUMS} FROM ledger_rollups_monthly"
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let k: RollupKey = (
                    r.try_get("month")?,
                    r.try_get("subject")?,
                    r.try_get("counterparty")?,
                    r.try_get("kind")?,
                    r.try_get("unit")?,
                );
                let got = (sums_of(r)?, r.try_get::<String, _>("first_day")?);
                match monthly.remove(&k) {
                    Some(want) if want == got => {}
                    Some(want) => report.problems.push(format!(
                        "monthly rollup {} {} {} {}: stored {:?} from {}, events sum to {:?} from {}",
                        k.0, k.1, k.2, k.3, got.0, got.1, want.0, want.1
                    )),
                    None => report
                        .problems
                        .push(format!("monthly rollup {} {} {} {} has no events", k.0, k.1, k.2, k.3)),
                }
            }
            for (k, _) in monthly {
                report
                    .problems
                    .push(format!("events of {} {} {} {} have no monthly rollup", k.0, k.1, k.2, k.3));
            }
        }
        // Conservation: received = stored + duplicates + rejected, and stored = rows.
        for (source, c) in self.ledger_counters().await? {
            if c.received != c.stored + c.duplicates + c.rejected {
                report.problems.push(format!(
                    "source {source}: received {} ≠ stored {} + duplicates {} + rejected {}",
                    c.received, c.stored, c.duplicates, c.rejected
                ));
            }
            let rows = stored_per_source.remove(&source).unwrap_or(0);
            if rows != c.stored {
                report.problems.push(format!(
                    "source {source}: counter says {} stored, the ledger holds {rows}",
                    c.stored
                ));
            }
        }
        for (source, n) in stored_per_source {
            report.problems.push(format!("source {source}: {n} events but no counters"));
        }
        Ok(report)
    }
}

/// Rows per page when `verify` reads the ledger.
const VERIFY_PAGE: i64 = 20_000;

async fn key_range(store: &Store, table: &str, key: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(&format!(
        "SELECT COALESCE(MIN({key}), 0) AS lo, COALESCE(MAX({key}), -1) AS hi FROM {table}"
    ))
    .fetch_one(&store.pool)
    .await?;
    Ok((row.try_get::<i64, _>("lo")?.min(0), row.try_get("hi")?))
}

async fn read_event_pages(store: Store, tx: mpsc::Sender<Result<Vec<StoredEvent>>>) {
    let res = async {
        let (lo, hi) = key_range(&store, "ledger_events", "leaf_index").await?;
        let sql = dialect::json_page_sql(store.backend, "ledger_events", "leaf_index", EVENT_COLS);
        let mut start = lo;
        while start <= hi {
            let page: String = sqlx::query_scalar(&sql)
                .bind(start)
                .bind(start + VERIFY_PAGE)
                .fetch_one(&store.pool)
                .await?;
            let rows: Vec<Vec<serde_json::Value>> =
                serde_json::from_str(&page).map_err(|e| StoreError::Catalog(format!("verify page: {e}")))?;
            let events = rows.iter().map(|r| event_from_json(r)).collect::<Result<Vec<_>>>()?;
            if tx.send(Ok(events)).await.is_err() {
                return Ok(());
            }
            start += VERIFY_PAGE;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = res {
        let _ = tx.send(Err(e)).await;
    }
}

async fn read_hash_pages(store: Store, tx: mpsc::Sender<Result<Vec<(i64, String)>>>) {
    let res = async {
        let (lo, hi) = key_range(&store, "ledger_hashes", "idx").await?;
        let sql = dialect::json_page_sql(store.backend, "ledger_hashes", "idx", "idx, hash");
        let mut start = lo;
        while start <= hi {
            let page: String = sqlx::query_scalar(&sql)
                .bind(start)
                .bind(start + 2 * VERIFY_PAGE)
                .fetch_one(&store.pool)
                .await?;
            let rows: Vec<(i64, String)> = serde_json::from_str(&page).map_err(|e| StoreError::Catalog(format!("verify page: {e}")))?;
            if tx.send(Ok(rows)).await.is_err() {
                return Ok(());
            }
            start += 2 * VERIFY_PAGE;
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = res {
        let _ = tx.send(Err(e)).await;
    }
}

/// A stored event from the JSON array of its columns, in `EVENT_COLS` order.
fn event_from_json(r: &[serde_json::Value]) -> Result<StoredEvent> {
    use serde_json::Value;
    let bad = || StoreError::Catalog("verify: malformed event row".into());
    let s = |i: usize| -> Result<String> { r.get(i).and_then(Value::as_str).map(str::to_string).ok_or_else(bad) };
    let os = |i: usize| -> Option<String> { r.get(i).and_then(Value::as_str).map(str::to_string) };
    let n = |i: usize| -> Result<i64> { r.get(i).and_then(Value::as_i64).ok_or_else(bad) };
    let on = |i: usize| -> Option<i64> { r.get(i).and_then(Value::as_i64) };
    Ok(StoredEvent {
        leaf_index: n(0)?,
        source: s(1)?,
        source_event_id: s(2)?,
        kind: s(3)?,
        subject: s(4)?,
        counterparty: s(5)?,
        quantity: n(6)?,
        unit: s(7)?,
        list_fen: n(8)?,
        charged_fen: n(9)?,
        list_sub_micro: n(23)?,
        charged_sub_micro: n(24)?,
        price_version: s(10)?,
        occurred_at_ms: n(11)?,
        received_at_ms: n(12)?,
        origin: s(13)?,
        attributes: serde_json::from_str(&s(14)?).unwrap_or_default(),
        corrects_leaf_index: on(15),
        correction_reason: os(16),
        requested_by: os(17),
        approved_by: os(18),
        period: s(19)?,
        late: n(20)? != 0,
        content_hash: s(21)?,
        leaf_hash: s(22)?,
    })
}

/// The leaf whose append wrote stored hash `idx`.
fn leaf_of_stored_index(idx: u64) -> i64 {
    // stored_hash_index(0, n) is increasing in n; find the last n with index ≤ idx.
    let (mut lo, mut hi) = (0u64, idx + 1);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if merkle::stored_hash_index(0, mid) <= idx {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo as i64
}
