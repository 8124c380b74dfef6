//! The usage ledger's use cases: ingestion from outside sources (per-source keys, batches
//! ≤ 1,000, per-event outcomes; reported compute and data priced against the operator's price
//! table, M2.2), corrections (new events that reference the corrected one, approved by another
//! committee member), source keys, period close, checkpoints and proofs (public, as a
//! transparency log is), and statements. The web layer turns the outcomes into the signed
//! per-event results and the statements into CSV and XLSX.

use crate::{App, AppError, AppResult, Principal, Via};
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_ledger::event::{parse_period, EventError, EventInput, Origin};
use opchub_ledger::items;
use opchub_store::ledger::{Checkpoint, DailyUsage, Item, LedgerWriter, Outcome, Source, StoredEvent, UsageTotal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

crate::module_errors! {
    /// What the usage ledger's use cases refuse.
    pub enum LedgerError {
        /// The ledger writer is not running in this process.
        Unavailable => (Unavailable, "ledger_unavailable"),
        /// Only a ledger source key may post events.
        SourceKeyRequired => (Forbidden, "source_key_required"),
        /// The source posts faster than its limit.
        RateLimited => (RateLimited, "rate_limited"),
        /// No checkpoint has been signed yet.
        NoCheckpointYet => (Conflict, "no_checkpoint_yet"),
    }
}

pub const MAX_BATCH: usize = 1000;

/// The ledger writer (`ledger_unavailable` in a process without one).
pub fn writer(s: &App) -> AppResult<&LedgerWriter> {
    s.ledger.as_ref().ok_or_else(|| AppError::from(LedgerError::Unavailable))
}

/// Confirmed payments — cooperation payments (M2.4) and bill payments (issue 19) — whose ledger
/// event a crash kept out (the confirmation committed, the process stopped before its append):
/// posted now, each exactly once (the event's key is the payment id). `serve` runs this at
/// start. Returns how many of each were posted.
pub async fn post_unposted_payments(s: &App) -> AppResult<(usize, usize)> {
    let w = writer(s)?;
    let coop = s.store.unposted_payments().await?;
    for id in &coop {
        s.store.post_payment(w, id).await?;
    }
    let bills = s.store.unposted_bill_payments().await?;
    for id in &bills {
        s.store.post_bill_payment(w, id).await?;
    }
    Ok((coop.len(), bills.len()))
}

#[derive(Deserialize, ToSchema)]
pub struct EventBatch {
    /// Up to 1,000 events.
    pub events: Vec<serde_json::Value>,
}

/// Parses and validates each raw event; a malformed one is a per-event rejection, not a 400.
pub fn items_from(raw: &[serde_json::Value], source: &str, origin: Origin, requested_by: Option<&str>) -> Vec<Item> {
    let now = opchub_store::now_ms();
    raw.iter()
        .map(|v| match strict_event(v) {
            Err(field) => Item::Rejected {
                source: source.to_string(),
                error: EventError::new("unknown_field", Some(&field)),
            },
            Ok(None) => Item::Rejected {
                source: source.to_string(),
                error: EventError::new("invalid_event", None),
            },
            Ok(Some(input)) => match input.validate(source, origin, requested_by, now) {
                Ok(e) => Item::Event(e),
                Err(error) => Item::Rejected {
                    source: source.to_string(),
                    error,
                },
            },
        })
        .collect()
}

/// One raw event as an [`EventInput`]: `Err(field)` for the first field the format does not
/// have (a misspelt `list_amount` would otherwise be dropped silently; `attributes` is the
/// place for anything else), `Ok(None)` when it does not parse.
fn strict_event(v: &serde_json::Value) -> Result<Option<EventInput>, String> {
    let mut unknown: Option<String> = None;
    let parsed = serde_ignored::deserialize(v, |path: serde_ignored::Path<'_>| {
        unknown.get_or_insert_with(|| path.to_string());
    });
    match (parsed, unknown) {
        (_, Some(field)) => Err(field),
        (Ok(input), None) => Ok(Some(input)),
        (Err(_), None) => Ok(None),
    }
}

/// Ingests a batch from the source whose key the caller holds: checks the batch's size, asks
/// `admit` (the front end's per-source rate limit: `Err(detail)` refuses with `rate_limited`),
/// validates and prices each event (a malformed one is a per-event rejection) and appends.
pub async fn ingest_for(
    s: &App,
    p: &Principal,
    events: &[serde_json::Value],
    admit: impl FnOnce(&str, i64, u32) -> Result<(), String>,
) -> AppResult<Vec<Outcome>> {
    let Via::Source {
        name,
        rate_per_minute,
        kinds,
    } = &p.via
    else {
        return Err(LedgerError::SourceKeyRequired.into());
    };
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(AppError::field("events", "batch_size"));
    }
    if let Err(wait) = admit(name, *rate_per_minute, events.len() as u32) {
        return Err(AppError::from(LedgerError::RateLimited).with_detail(wait));
    }
    let mut items = items_from(events, name, Origin::Reported, None);
    scope_reported(s, &p.user.id, kinds, &mut items).await?;
    price_reported(s, &p.user.id, &mut items).await?;
    Ok(writer(s)?.append(items).await?)
}

/// Keeps a source to its scope (issue 18 item 4): it reports only the kinds it is registered
/// for (`kind_not_allowed`), only for OPCs in its owner's communities as the subject, and only
/// with its owner — the operator's account or one of its communities — as the counterparty
/// (`party_not_served`). Each out-of-scope event is refused on its own, with its code, as every
/// other per-event refusal is; the rest of the batch is stored (the API answers per event).
pub async fn scope_reported(s: &App, owner_user_id: &str, kinds: &[String], items: &mut [Item]) -> AppResult<()> {
    if !items.iter().any(|it| matches!(it, Item::Event(_))) {
        return Ok(());
    }
    let (communities, opcs) = s.store.parties_served_by(owner_user_id).await?;
    for it in items.iter_mut() {
        let Item::Event(e) = it else { continue };
        let refusal = if !kinds.contains(&e.kind) {
            Some(EventError::new("kind_not_allowed", Some("kind")))
        } else if !opcs.contains(&e.subject) {
            Some(EventError::new("party_not_served", Some("subject")))
        } else if e.counterparty != owner_user_id && !communities.contains(&e.counterparty) {
            Some(EventError::new("party_not_served", Some("counterparty")))
        } else {
            None
        };
        if let Some(error) = refusal {
            *it = Item::Rejected {
                source: e.source.clone(),
                error,
            };
        }
    }
    Ok(())
}

/// Prices reported compute and data events against the price table of the source's operator
/// (M2.2; issue 3 "amounts that don't match the price table"). Each `compute.gpu_second` or
/// `data.byte` event names its item in the attribute `item`; the item's version in force at
/// the event's `occurred_at` gives the expected list and charged amounts
/// (`opchub_ledger::items`: round half up to the fen; a per-dataset item costs its unit price
/// per event — one event is one whole dataset delivered). An event whose amounts differ, whose
/// item is missing, unknown, of the other kind or not yet in force, or that names another
/// price version is refused on its own; the rest of the batch is stored. An event without a
/// price version gets the one in force, so every stored event records it.
pub async fn price_reported(s: &App, operator_user_id: &str, items: &mut [Item]) -> AppResult<()> {
    let priced = |k: &str| k == "compute.gpu_second" || k == "data.byte";
    if !items.iter().any(|it| matches!(it, Item::Event(e) if priced(&e.kind))) {
        return Ok(());
    }
    let table = s.store.item_prices_of(operator_user_id).await?;
    let refs = s.store.item_references().await?;
    for it in items.iter_mut() {
        let Item::Event(e) = it else { continue };
        if !priced(&e.kind) {
            continue;
        }
        match price_event(&table, &refs, &mut *e) {
            Ok(version) => e.price_version = version,
            Err(error) => {
                *it = Item::Rejected {
                    source: e.source.clone(),
                    error,
                }
            }
        }
    }
    Ok(())
}

/// Prices one reported event; a per-GPU-hour or per-GB item's amounts are stored exactly
/// (issue 17 item 6): the source may send them rounded to the fen (as the price table's rule
/// rounds them) or exact to a millionth of a fen, and the event keeps the exact amount, so
/// usage worth less than a fen an event is not rounded away event by event. The source prices
/// by its operator's table; the list amount stored is at most the reference's (issue 18 item
/// 3: the discount basis counts a list price at most up to the platform's reference), and the
/// event then names the reference version (attribute `reference`).
fn price_event(
    table: &[opchub_store::gateway::ItemPriceVersion],
    refs: &[opchub_store::gateway::ItemReferenceVersion],
    e: &mut opchub_ledger::event::NewEvent,
) -> Result<String, EventError> {
    use opchub_store::gateway::{lookup_item, ItemLookup};
    let item = e.attributes.get("item").map(|v| v.trim()).unwrap_or("");
    if item.is_empty() {
        return Err(EventError::new("price_item_required", Some("attributes.item")));
    }
    let p = match lookup_item(table, item, e.occurred_at_ms) {
        ItemLookup::Found(p) => p,
        ItemLookup::NotYetEffective => return Err(EventError::new("price_not_effective", Some("occurred_at"))),
        ItemLookup::Unknown => return Err(EventError::new("unknown_price_item", Some("attributes.item"))),
    };
    if items::kind_of(&p.price.unit) != Some(e.kind.as_str()) {
        return Err(EventError::new("item_kind_mismatch", Some("attributes.item")));
    }
    if !e.price_version.is_empty() && e.price_version != p.version {
        return Err(EventError::new("price_version_mismatch", Some("price_version")));
    }
    use opchub_domain::money::ExactFen;
    let whole = |fen: i64| ExactFen { fen, sub_micro: 0 };
    let (list, charged) = if p.price.unit == "dataset" {
        (Some(whole(p.price.list_fen)), Some(whole(p.price.opc_fen)))
    } else {
        (
            items::exact_amount(&p.price.unit, e.quantity, p.price.list_fen),
            items::exact_amount(&p.price.unit, e.quantity, p.price.opc_fen),
        )
    };
    let (Some(list), Some(charged)) = (list, charged) else {
        return Err(EventError::new("amount_out_of_range", Some("quantity")));
    };
    // As sent: the price table's rounding to the fen, or the exact amount.
    let rounded = |price: i64| items::amount(&p.price.unit, e.quantity, price);
    let matches = |fen: i64, sub: i64, want: ExactFen, price: i64| {
        (fen == want.fen && sub == want.sub_micro) || (sub == 0 && (fen == want.fen || Some(fen) == rounded(price)))
    };
    if !matches(e.list_fen, e.list_sub_micro, list, p.price.list_fen) {
        return Err(EventError::new("amount_mismatch", Some("list_amount_fen")));
    }
    if !matches(e.charged_fen, e.charged_sub_micro, charged, p.price.opc_fen) {
        return Err(EventError::new("amount_mismatch", Some("charged_amount_fen")));
    }
    let reference = opchub_store::gateway::item_reference_in(refs, item, &p.price.unit, e.occurred_at_ms);
    let capped = opchub_store::gateway::capped_at_reference(p, reference);
    let list = if capped.price.list_fen < p.price.list_fen {
        e.attributes
            .insert("reference".into(), reference.map(|r| r.version.clone()).unwrap_or_default());
        if capped.price.unit == "dataset" {
            Some(whole(capped.price.list_fen))
        } else {
            items::exact_amount(&capped.price.unit, e.quantity, capped.price.list_fen)
        }
        .unwrap_or(list)
    } else {
        list
    };
    (e.list_fen, e.list_sub_micro) = (list.fen, list.sub_micro);
    (e.charged_fen, e.charged_sub_micro) = (charged.fen, charged.sub_micro);
    Ok(p.version.clone())
}

#[derive(Deserialize, ToSchema)]
pub struct CorrectionRequest {
    /// The correcting event; `corrects_leaf_index`, `correction_reason` and `approved_by` are required.
    pub event: serde_json::Value,
}

/// Corrections are new events that reference the corrected one (never rewrites). The
/// requester is the caller; the approver must be another committee member.
pub async fn correct_for(s: &App, p: &Principal, r: &CorrectionRequest) -> AppResult<Vec<Outcome>> {
    let approver = r.event.get("approved_by").and_then(|v| v.as_str()).unwrap_or("");
    match s.store.user_by_username(approver).await? {
        Some(u) if u.role == Role::Committee && !u.disabled => {}
        _ => return Err(AppError::field("approved_by", "not_a_committee_member")),
    }
    let items = items_from(
        std::slice::from_ref(&r.event),
        opchub_ledger::metering::CORRECTIONS_SOURCE,
        Origin::Correction,
        Some(&p.user.username),
    );
    if let Some(Item::Rejected { error, .. }) = items.first() {
        let e = AppError::field(error.field.as_deref().unwrap_or("event"), &format!("ledger_{}", error.code));
        return Err(e.with_detail(error.code.clone()));
    }
    Ok(writer(s)?.append(items).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct NewSourceRequest {
    pub name: Option<String>,
    /// The account that runs the source (e.g. a community operator).
    pub owner_user_id: Option<String>,
    /// Events per minute (1–1,000,000); default 60,000.
    pub rate_per_minute: Option<i64>,
    /// The kinds the source may report: `compute.gpu_second` and/or `data.byte` (default both).
    pub kinds: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedSource {
    pub source: Source,
    /// The source key, shown this once (only its SHA-256 is stored).
    pub key: String,
}

/// Registers an outside source and makes its key (shown once; only its hash is stored).
pub async fn create_source_for(s: &App, p: &Principal, r: &NewSourceRequest) -> AppResult<CreatedSource> {
    let mut c = Checker::new();
    let name = c.username("name", r.name.as_deref());
    let owner = c.text("owner_user_id", r.owner_user_id.as_deref(), 1, 64);
    let rate = r.rate_per_minute.unwrap_or(60_000);
    if !(1..=1_000_000).contains(&rate) {
        c.errors.insert("rate_per_minute".into(), "out_of_range".into());
    }
    if opchub_ledger::metering::reserved_source(&name) {
        c.errors.insert("name".into(), "source_name_reserved".into());
    }
    let kinds = match &r.kinds {
        None => opchub_ledger::metering::REPORTABLE_KINDS.iter().map(|k| k.to_string()).collect(),
        Some(k) => {
            let mut k = k.clone();
            k.sort();
            k.dedup();
            k
        }
    };
    if kinds.is_empty()
        || kinds
            .iter()
            .any(|k| !opchub_ledger::metering::REPORTABLE_KINDS.contains(&k.as_str()))
    {
        c.errors.insert("kinds".into(), "kind_not_allowed".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let (key, hash) = crate::crypto::new_source_key();
    let source = s
        .store
        .create_source(&p.actor(), &name, &owner, &hash, key.get(..12).unwrap_or(&key), rate, &kinds)
        .await?;
    Ok(CreatedSource { source, key })
}

/// One stored event by its leaf index (a malformed index is not found).
pub async fn event_for(s: &App, leaf_index: &str) -> AppResult<StoredEvent> {
    let i: i64 = leaf_index.parse().map_err(|_| AppError::not_found())?;
    Ok(s.store.ledger_event(i).await?)
}

/// The sources registered.
pub async fn sources_for(s: &App) -> AppResult<Vec<Source>> {
    Ok(s.store.sources().await?)
}

/// The signed checkpoints.
pub async fn checkpoints_for(s: &App) -> AppResult<Vec<Checkpoint>> {
    Ok(s.store.ledger_checkpoints().await?)
}

/// The latest signed checkpoint as a C2SP signed note.
pub async fn latest_checkpoint_note(s: &App) -> AppResult<String> {
    let cp = s.store.ledger_latest_checkpoint().await?.ok_or_else(AppError::not_found)?;
    Ok(cp.note)
}

/// The ledger's public key in signed-note verifier format.
pub fn public_key(s: &App) -> AppResult<String> {
    Ok(format!("{}\n", writer(s)?.key.verifier_key()))
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    pub leaf_index: i64,
    pub tree_size: i64,
    pub leaf_hash: String,
    pub root: String,
    /// Audit path, hex, leaf to root (RFC 6962).
    pub proof: Vec<String>,
    /// The signed checkpoint at `tree_size`, when one exists.
    pub checkpoint: Option<String>,
}

/// Where an event stands that no signed checkpoint covers yet (issue 21 item 8: an honest
/// state, not a failed proof): (how many events the latest checkpoint covers, 0 without one;
/// the ledger's size). `None` when the latest checkpoint covers it, or it is not in the ledger.
pub async fn awaiting_checkpoint(s: &App, leaf_index: i64) -> AppResult<Option<(i64, i64)>> {
    let size = s.store.ledger_size().await?;
    let covered = s.store.ledger_latest_checkpoint().await?.map(|c| c.tree_size).unwrap_or(0);
    Ok((leaf_index >= covered && leaf_index < size).then_some((covered, size)))
}

pub async fn inclusion_for(s: &App, leaf_index: i64, tree_size: Option<i64>) -> AppResult<InclusionProof> {
    let tree_size = match tree_size {
        Some(t) => t,
        None => s
            .store
            .ledger_latest_checkpoint()
            .await?
            .map(|c| c.tree_size)
            .ok_or_else(|| AppError::from(LedgerError::NoCheckpointYet))?,
    };
    let (leaf, root, proof) = s.store.ledger_inclusion(leaf_index, tree_size).await?;
    // One row, not the whole checkpoint list: a long-lived ledger has thousands.
    let checkpoint = s.store.ledger_checkpoint_at(tree_size).await?.map(|c| c.note);
    Ok(InclusionProof {
        leaf_index,
        tree_size,
        leaf_hash: hex::encode(leaf),
        root: hex::encode(root),
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint,
    })
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

pub async fn consistency_for(s: &App, from: i64, to: i64) -> AppResult<ConsistencyProof> {
    let (a, b, proof) = s.store.ledger_consistency(from, to).await?;
    Ok(ConsistencyProof {
        from,
        to,
        from_root: hex::encode(a),
        to_root: hex::encode(b),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// Closes a booking period (`YYYY-MM`) and signs its checkpoint.
pub async fn close_period_for(s: &App, p: &Principal, period: &str) -> AppResult<Checkpoint> {
    let period = parse_period(period).ok_or_else(|| AppError::field("period", "invalid_period"))?;
    let w = writer(s)?;
    // The store issues the month's bills with the close (issue 19).
    let (cp, _bills) = s.store.ledger_close_period(&p.actor(), &w.key, &w.config.origin, &period).await?;
    Ok(cp)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// The party: an OPC id, a community id or a user id. Default: the caller's own OPC or user.
    pub party: Option<String>,
    /// `YYYY-MM`; default the current month.
    pub period: Option<String>,
    /// `subject` (what the party used or paid) or `counterparty` (what it served or was paid).
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Statement {
    pub party: String,
    pub period: String,
    pub role: String,
    pub totals: Vec<UsageTotal>,
    pub daily: Vec<DailyUsage>,
    /// The first 500 events (see `/api/v1/ledger/events/{leaf_index}` and the inclusion proof for each).
    pub events: Vec<StoredEvent>,
}

/// Which parties a caller may see statements of: staff any; an OPC founder its OPC; a
/// community operator itself and its communities.
pub async fn statement_for(s: &App, p: &Principal, q: &StatementQuery) -> AppResult<Statement> {
    let period = match q.period.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => parse_period(v).ok_or_else(|| AppError::field("period", "invalid_period"))?,
        None => opchub_ledger::event::period_of(opchub_store::now_ms()),
    };
    let as_counterparty = match q.role.as_deref().unwrap_or("subject") {
        "subject" => false,
        "counterparty" => true,
        _ => return Err(AppError::field("role", "unknown_role")),
    };
    let own_opc = s.store.opc_of_founder(&p.user.id).await?;
    let party = match q.party.clone().filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => own_opc.as_ref().map(|o| o.id.clone()).unwrap_or_else(|| p.user.id.clone()),
    };
    let allowed = match p.role() {
        Role::Committee | Role::Auditor | Role::PlatformOperator | Role::Finance => true,
        Role::OpcFounder => own_opc.as_ref().is_some_and(|o| o.id == party),
        Role::CommunityOperator => party == p.user.id || s.store.communities(None, Some(&p.user.id)).await?.iter().any(|c| c.id == party),
        _ => party == p.user.id,
    };
    if !allowed {
        return Err(AppError::not_found());
    }
    let totals = s.store.usage_totals(&party, as_counterparty, &period).await?;
    let daily = s.store.usage_daily(&party, as_counterparty, &period).await?;
    let events = s.store.ledger_events_of(&party, as_counterparty, &period, 500, 0).await?;
    Ok(Statement {
        party,
        period,
        role: if as_counterparty { "counterparty".into() } else { "subject".into() },
        totals,
        daily,
        events,
    })
}

// ---------------------------------------------------------------- what the ledger pages show

/// A readable name for a statement's party: an OPC, a community or a user; else its id.
pub async fn party_name(s: &App, party: &str) -> String {
    if let Ok(o) = s.store.opc(party).await {
        return o.name;
    }
    if let Ok(c) = s.store.community(party).await {
        return c.name;
    }
    if let Ok(u) = s.store.user(party).await {
        return u.display_name;
    }
    party.to_string()
}

/// The sealed periods: (period, tree size at its close, when).
pub async fn sealed_periods(s: &App) -> Vec<(String, i64, i64)> {
    s.store.ledger_sealed_periods().await.unwrap_or_default()
}

/// The leaf hash recomputed from a stored event's content (for checking a proof against what
/// the database holds now, F2); `None` when no such event.
pub async fn recomputed_leaf_hash(s: &App, leaf_index: i64) -> Option<String> {
    s.store.ledger_event(leaf_index).await.ok().map(|e| e.recomputed_leaf_hash())
}
