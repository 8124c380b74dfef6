//! Demand board storage (M2.4): demands published by verified district companies, OPC
//! proposals with question threads, cooperations (agreed amount, milestones, amendments both
//! sides confirm), payments recorded by the company and confirmed by the OPC, disputes
//! resolved by a committee reviewer, two-way ratings, S3 flags for likely double claims and
//! in-app notifications. Every state change is one transaction with its audit entry; state
//! moves are conditional UPDATEs, so two concurrent accepts (or confirms) cannot both win.
//!
//! Only a payment confirmed by both sides (the company records it, the OPC confirms it, or a
//! committee reviewer upholds it after a dispute) becomes one `cooperation.payment` ledger
//! event; [`Store::post_payment`] appends it with the payment id as the source event id, so
//! the event exists exactly once however often posting is retried.

use crate::audit::{record, Actor, Change};
use crate::ledger::{Item, LedgerWriter, Outcome};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError, Tx};
use opchub_domain::input::{Checker, FieldErrors};
use opchub_ledger::event::{NewEvent, Origin};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// The ledger source of cooperation payments.
pub const LEDGER_SOURCE: &str = "cooperation";

/// Demand categories: the Skill Store's categories and the three theme packages (M4.2).
pub const CATEGORIES: [&str; 6] = [
    "agent_tool",
    "aigc_production",
    "vertical_plugin",
    "opc_llm_dev",
    "opc_agent_dev",
    "opc_digital_human",
];

pub const MAX_TAGS: usize = 10;
/// Largest amount accepted anywhere on the board: 100 million yuan.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;
/// Attachments and invoice files: at most this many bytes, of these types.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
pub const FILE_TYPES: [&str; 4] = ["application/pdf", "image/png", "image/jpeg", "text/plain"];

fn beijing_today() -> String {
    opchub_ledger::event::day_of(now_ms())
}

fn invalid(field: &'static str, code: &'static str) -> StoreError {
    StoreError::Invalid { field, code }
}

// ---------------------------------------------------------------- types

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

/// A demand as typed by the company (unvalidated).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct DemandInput {
    pub title: Option<String>,
    pub description: Option<String>,
    /// One of [`CATEGORIES`].
    pub category: Option<String>,
    /// Required capabilities (≤ 10 tags of ≤ 20 characters).
    #[serde(default)]
    pub tags: Vec<String>,
    pub budget_min_fen: Option<i64>,
    pub budget_max_fen: Option<i64>,
    /// `YYYY-MM-DD`, today or later (Beijing).
    pub deadline: Option<String>,
    /// Publish at once (`open`); otherwise the demand stays a draft.
    #[serde(default)]
    pub publish: bool,
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

/// Multi-line text of `min..=max` characters (line breaks and tabs allowed).
fn long_text(c: &mut Checker, field: &str, v: Option<&str>, min: usize, max: usize) -> String {
    let t = v.unwrap_or("").trim().to_string();
    let n = t.chars().count();
    let code = if n == 0 {
        Some("required")
    } else if n < min {
        Some("too_short")
    } else if n > max {
        Some("too_long")
    } else if t.chars().any(|ch| ch.is_control() && !matches!(ch, '\n' | '\r' | '\t')) {
        Some("control_characters")
    } else {
        None
    };
    if let Some(code) = code {
        c.errors.entry(field.to_string()).or_insert_with(|| code.to_string());
    }
    t
}

fn fail(c: &mut Checker, field: &str, code: &str) {
    c.errors.entry(field.to_string()).or_insert_with(|| code.to_string());
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(v: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()
}

/// Checks every field; all problems at once.
pub fn check_demand(i: &DemandInput) -> std::result::Result<NewDemand, FieldErrors> {
    let mut c = Checker::new();
    let title = c.text("title", i.title.as_deref(), 4, 100);
    let description = long_text(&mut c, "description", i.description.as_deref(), 10, 5000);
    let category = i.category.as_deref().unwrap_or("").trim().to_string();
    if category.is_empty() {
        fail(&mut c, "category", "required");
    } else if !CATEGORIES.contains(&category.as_str()) {
        fail(&mut c, "category", "unknown_category");
    }
    let mut tags: Vec<String> = Vec::new();
    for t in &i.tags {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > 20 || t.chars().any(char::is_control) {
            fail(&mut c, "tags", "invalid_tag");
        } else if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        fail(&mut c, "tags", "too_many_tags");
    }
    let (min, max) = (i.budget_min_fen, i.budget_max_fen);
    match (min, max) {
        (None, _) => fail(&mut c, "budget_min_fen", "required"),
        (_, None) => fail(&mut c, "budget_max_fen", "required"),
        (Some(a), Some(b)) => {
            if a < 0 {
                fail(&mut c, "budget_min_fen", "negative_amount");
            }
            if b < 0 {
                fail(&mut c, "budget_max_fen", "negative_amount");
            } else if b == 0 {
                fail(&mut c, "budget_max_fen", "required");
            } else if b > MAX_AMOUNT_FEN || a > MAX_AMOUNT_FEN {
                fail(&mut c, "budget_max_fen", "amount_out_of_range");
            } else if a > b {
                fail(&mut c, "budget_min_fen", "budget_min_above_max");
            }
        }
    }
    let deadline = i.deadline.as_deref().unwrap_or("").trim().to_string();
    match parse_date(&deadline) {
        None if deadline.is_empty() => fail(&mut c, "deadline", "required"),
        None => fail(&mut c, "deadline", "invalid_date"),
        Some(d) => {
            if d.format("%Y-%m-%d").to_string() < beijing_today() {
                fail(&mut c, "deadline", "deadline_in_past");
            }
        }
    }
    if !c.ok() {
        return Err(c.errors);
    }
    Ok(NewDemand {
        title,
        description,
        category,
        tags,
        budget_min_fen: min.unwrap_or(0),
        budget_max_fen: max.unwrap_or(0),
        deadline,
        publish: i.publish,
    })
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

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Proposal {
    pub id: String,
    pub demand_id: String,
    pub demand_title: String,
    pub opc_id: String,
    pub opc_name: String,
    pub price_fen: i64,
    pub timeline_days: i64,
    pub message: String,
    /// `submitted`, `shortlisted`, `accepted`, `declined`.
    pub status: String,
    pub created_at: i64,
}

const PROPOSAL_SELECT: &str =
    "SELECT p.id, p.demand_id, d.title AS demand_title, p.opc_id, o.name AS opc_name, p.price_fen, p.timeline_days, \
    p.message, p.status, p.created_at FROM demand_proposals p JOIN demands d ON d.id = p.demand_id JOIN opcs o ON o.id = p.opc_id";

fn proposal_from(r: &AnyRow) -> Result<Proposal> {
    Ok(Proposal {
        id: r.try_get("id")?,
        demand_id: r.try_get("demand_id")?,
        demand_title: r.try_get("demand_title")?,
        opc_id: r.try_get("opc_id")?,
        opc_name: r.try_get("opc_name")?,
        price_fen: r.try_get("price_fen")?,
        timeline_days: r.try_get("timeline_days")?,
        message: r.try_get("message")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    pub author_user_id: String,
    pub author_name: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Milestone {
    pub title: String,
    pub amount_fen: i64,
    /// `YYYY-MM-DD`, optional.
    #[serde(default)]
    pub due: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Cooperation {
    pub id: String,
    pub demand_id: String,
    pub proposal_id: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub enterprise_owner_user_id: String,
    pub opc_id: String,
    pub opc_name: String,
    pub opc_founder_user_id: String,
    pub title: String,
    pub agreed_fen: i64,
    pub milestones: Vec<Milestone>,
    /// `active`, `completed`.
    pub status: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// Payments confirmed by both sides (what counts, M2.4).
    pub confirmed_fen: i64,
    /// Payments recorded and not void (confirmed, awaiting confirmation or disputed).
    pub recorded_fen: i64,
}

const COOP_SELECT: &str = "SELECT c.id, c.demand_id, c.proposal_id, c.enterprise_id, e.name AS enterprise_name, e.owner_user_id, c.opc_id, \
    o.name AS opc_name, o.founder_user_id, c.title, c.agreed_fen, c.milestones, c.status, c.created_at, c.completed_at, \
    CAST(COALESCE((SELECT SUM(amount_fen) FROM cooperation_payments x WHERE x.cooperation_id = c.id AND x.status = 'confirmed'), 0) AS BIGINT) AS confirmed_fen, \
    CAST(COALESCE((SELECT SUM(amount_fen) FROM cooperation_payments x WHERE x.cooperation_id = c.id AND x.status <> 'void'), 0) AS BIGINT) AS recorded_fen \
    FROM cooperations c JOIN enterprises e ON e.id = c.enterprise_id JOIN opcs o ON o.id = c.opc_id";

fn coop_from(r: &AnyRow) -> Result<Cooperation> {
    let ms: String = r.try_get("milestones")?;
    Ok(Cooperation {
        id: r.try_get("id")?,
        demand_id: r.try_get("demand_id")?,
        proposal_id: r.try_get("proposal_id")?,
        enterprise_id: r.try_get("enterprise_id")?,
        enterprise_name: r.try_get("enterprise_name")?,
        enterprise_owner_user_id: r.try_get("owner_user_id")?,
        opc_id: r.try_get("opc_id")?,
        opc_name: r.try_get("opc_name")?,
        opc_founder_user_id: r.try_get("founder_user_id")?,
        title: r.try_get("title")?,
        agreed_fen: r.try_get("agreed_fen")?,
        milestones: serde_json::from_str(&ms).unwrap_or_default(),
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
        confirmed_fen: r.try_get("confirmed_fen")?,
        recorded_fen: r.try_get("recorded_fen")?,
    })
}

impl Cooperation {
    /// Which side `user_id` is on: `company`, `opc`, or none.
    pub fn side_of(&self, user_id: &str) -> Option<&'static str> {
        if self.enterprise_owner_user_id == user_id {
            Some("company")
        } else if self.opc_founder_user_id == user_id {
            Some("opc")
        } else {
            None
        }
    }
    fn other_party(&self, user_id: &str) -> &str {
        if self.enterprise_owner_user_id == user_id {
            &self.opc_founder_user_id
        } else {
            &self.enterprise_owner_user_id
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: String,
    pub cooperation_id: String,
    pub amount_fen: i64,
    pub paid_on: String,
    pub invoice_number: String,
    /// SHA-256 of the invoice file, when one was attached.
    pub invoice_sha256: Option<String>,
    /// `pending` (awaiting the OPC), `confirmed`, `disputed`, `void` (a dispute went against it).
    pub status: String,
    pub recorded_by: String,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<i64>,
    /// The ledger leaf of its `cooperation.payment` event, once posted.
    pub ledger_leaf_index: Option<i64>,
    pub created_at: i64,
}

const PAYMENT_COLS: &str = "id, cooperation_id, amount_fen, paid_on, invoice_number, invoice_sha256, status, recorded_by, confirmed_by, \
    confirmed_at, ledger_leaf_index, created_at";

fn payment_from(r: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: r.try_get("id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        amount_fen: r.try_get("amount_fen")?,
        paid_on: r.try_get("paid_on")?,
        invoice_number: r.try_get("invoice_number")?,
        invoice_sha256: r.try_get("invoice_sha256")?,
        status: r.try_get("status")?,
        recorded_by: r.try_get("recorded_by")?,
        confirmed_by: r.try_get("confirmed_by")?,
        confirmed_at: r.try_get("confirmed_at")?,
        ledger_leaf_index: r.try_get("ledger_leaf_index")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Amendment {
    pub id: String,
    pub cooperation_id: String,
    pub agreed_fen: i64,
    pub reason: String,
    /// `proposed`, `accepted`, `rejected`.
    pub status: String,
    pub proposed_by: String,
    pub created_at: i64,
}

fn amendment_from(r: &AnyRow) -> Result<Amendment> {
    Ok(Amendment {
        id: r.try_get("id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        agreed_fen: r.try_get("agreed_fen")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        proposed_by: r.try_get("proposed_by")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Dispute {
    pub id: String,
    pub payment_id: String,
    pub cooperation_id: String,
    pub cooperation_title: String,
    pub amount_fen: i64,
    pub invoice_number: String,
    pub raised_by: String,
    pub reason: String,
    /// `open`, `resolved`.
    pub status: String,
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub resolution_note: Option<String>,
    pub created_at: i64,
}

const DISPUTE_SELECT: &str = "SELECT d.id, d.payment_id, p.cooperation_id, c.title AS cooperation_title, p.amount_fen, p.invoice_number, \
    d.raised_by, d.reason, d.status, d.resolution, d.resolution_note, d.created_at FROM cooperation_disputes d \
    JOIN cooperation_payments p ON p.id = d.payment_id JOIN cooperations c ON c.id = p.cooperation_id";

fn dispute_from(r: &AnyRow) -> Result<Dispute> {
    Ok(Dispute {
        id: r.try_get("id")?,
        payment_id: r.try_get("payment_id")?,
        cooperation_id: r.try_get("cooperation_id")?,
        cooperation_title: r.try_get("cooperation_title")?,
        amount_fen: r.try_get("amount_fen")?,
        invoice_number: r.try_get("invoice_number")?,
        raised_by: r.try_get("raised_by")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        resolution: r.try_get("resolution")?,
        resolution_note: r.try_get("resolution_note")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A likely double claim (S3) for the committee to look at.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Flag {
    pub id: String,
    /// `duplicate_invoice`.
    pub kind: String,
    /// The policy clause (`S3`).
    pub clause: String,
    pub cooperation_id: String,
    /// The payment that already carries the invoice number.
    pub other_payment_id: Option<String>,
    pub invoice_number: String,
    pub attempted_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rating {
    pub cooperation_id: String,
    /// Who rated: `company` or `opc`.
    pub rater_side: String,
    pub score: i64,
    pub comment: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    /// `proposal_received`, `question`, `proposal_accepted`, `proposal_declined`,
    /// `payment_to_confirm`, `payment_confirmed`, `payment_disputed`, `dispute_resolved`,
    /// `amendment_proposed`, `amendment_decided`, `rating_received`, `demand_cancelled`;
    /// committee reviewers: `dispute_opened`.
    pub kind: String,
    /// `demand`, `proposal`, `cooperation` or `dispute` (on the committee's review page):
    /// where the link goes.
    pub object_kind: String,
    pub object_id: String,
    pub title: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// A stored file (attachment or invoice), addressed by its SHA-256.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub sha256: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// A file to store: its type (one of [`FILE_TYPES`]) and bytes (≤ [`MAX_FILE_BYTES`]).
pub struct FileIn<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

pub fn check_file(f: &FileIn<'_>) -> Result<String> {
    if f.bytes.is_empty() {
        return Err(invalid("file", "empty_file"));
    }
    if f.bytes.len() > MAX_FILE_BYTES {
        return Err(invalid("file", "file_too_large"));
    }
    if !FILE_TYPES.contains(&f.content_type) {
        return Err(invalid("file", "file_type_not_allowed"));
    }
    let n = f.name.trim().chars().count();
    if n == 0 || n > 200 || f.name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(invalid("file", "invalid_file_name"));
    }
    Ok(hex::encode(Sha256::digest(f.bytes)))
}

async fn put_file(tx: &mut Tx, sha: &str, f: &FileIn<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO demand_files (sha256, content_type, size_bytes, body, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha)
    .bind(f.content_type)
    .bind(f.bytes.len() as i64)
    .bind(f.bytes.to_vec())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn audit(tx: &mut Tx, actor: &Actor, action: &str, kind: &str, id: &str, after: serde_json::Value, summary: String) -> Result<()> {
    record(
        tx,
        actor,
        Change {
            action,
            object_kind: kind,
            object_id: id,
            before: None,
            after: Some(&after),
            summary,
        },
    )
    .await
}

pub(crate) async fn notify(tx: &mut Tx, user_id: &str, kind: &str, object_kind: &str, object_id: &str, title: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, object_kind, object_id, title, created_at, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(kind)
    .bind(object_kind)
    .bind(object_id)
    .bind(title)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Upper-cased, spaces removed: `No. 0012 3` and `no.00123` are the same invoice.
pub fn normalize_invoice(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

/// A payment as the company records it (unvalidated).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PaymentInput {
    pub amount_fen: Option<i64>,
    /// `YYYY-MM-DD`, not in the future.
    pub paid_on: Option<String>,
    pub invoice_number: Option<String>,
}

pub struct NewPayment {
    pub amount_fen: i64,
    pub paid_on: String,
    pub invoice_number: String,
}

pub fn check_payment(i: &PaymentInput) -> std::result::Result<NewPayment, FieldErrors> {
    let mut c = Checker::new();
    match i.amount_fen {
        None => fail(&mut c, "amount_fen", "required"),
        Some(a) if a < 0 => fail(&mut c, "amount_fen", "negative_amount"),
        Some(0) => fail(&mut c, "amount_fen", "required"),
        Some(a) if a > MAX_AMOUNT_FEN => fail(&mut c, "amount_fen", "amount_out_of_range"),
        _ => {}
    }
    let paid_on = i.paid_on.as_deref().unwrap_or("").trim().to_string();
    match parse_date(&paid_on) {
        None if paid_on.is_empty() => fail(&mut c, "paid_on", "required"),
        None => fail(&mut c, "paid_on", "invalid_date"),
        Some(d) if d.format("%Y-%m-%d").to_string() > beijing_today() => fail(&mut c, "paid_on", "date_in_future"),
        Some(_) => {}
    }
    let raw = c.text("invoice_number", i.invoice_number.as_deref(), 1, 64);
    let invoice_number = normalize_invoice(&raw);
    if !raw.is_empty() && !invoice_number.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch)) {
        fail(&mut c, "invoice_number", "invalid_invoice_number");
    }
    if !c.ok() {
        return Err(c.errors);
    }
    Ok(NewPayment {
        amount_fen: i.amount_fen.unwrap_or(0),
        paid_on,
        invoice_number,
    })
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

/// What a company or OPC reputation shows (ratings received, completed cooperations).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Reputation {
    pub completed: i64,
    pub ratings: i64,
    /// Average score × 100 (integer), 0 without ratings.
    pub average_x100: i64,
}

impl Store {
    // ------------------------------------------------------------ demands

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
        let mut shas = Vec::new();
        for f in files {
            shas.push(check_file(f)?);
        }
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

    pub async fn demand_attachments(&self, demand_id: &str) -> Result<Vec<Attachment>> {
        let rows = sqlx::query(
            "SELECT sha256, file_name, content_type, size_bytes FROM demand_attachments WHERE demand_id = $1 ORDER BY created_at, file_name",
        )
        .bind(demand_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Attachment {
                    sha256: r.try_get("sha256")?,
                    file_name: r.try_get("file_name")?,
                    content_type: r.try_get("content_type")?,
                    size_bytes: r.try_get("size_bytes")?,
                })
            })
            .collect()
    }

    /// A stored file by digest: (content type, bytes).
    pub async fn demand_file(&self, sha256: &str) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query("SELECT content_type, body FROM demand_files WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((row.try_get("content_type")?, row.try_get("body")?))
    }

    /// Demands that have the file `sha256` as an attachment.
    pub async fn file_demands(&self, sha256: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT demand_id FROM demand_attachments WHERE sha256 = $1")
            .bind(sha256)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Cooperations with a payment whose invoice file is `sha256`.
    pub async fn file_cooperations(&self, sha256: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT cooperation_id FROM cooperation_payments WHERE invoice_sha256 = $1")
                .bind(sha256)
                .fetch_all(&self.pool)
                .await?,
        )
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

    // ------------------------------------------------------------ proposals

    #[allow(clippy::too_many_arguments)]
    pub async fn create_proposal(
        &self,
        actor: &Actor,
        demand_id: &str,
        opc_id: &str,
        price_fen: i64,
        timeline_days: i64,
        message: &str,
    ) -> Result<Proposal> {
        self.expire_demands().await?;
        let d = self.demand(demand_id).await?;
        if d.status != "open" {
            return Err(StoreError::Conflict("demand_not_open"));
        }
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO demand_proposals (id, demand_id, opc_id, price_fen, timeline_days, message, status, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $8)",
        )
        .bind(&id)
        .bind(demand_id)
        .bind(opc_id)
        .bind(price_fen)
        .bind(timeline_days)
        .bind(message)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "demand_proposals") || is_unique_violation(&e, "opc_id") {
                return Err(StoreError::Conflict("already_proposed"));
            }
            return Err(e.into());
        }
        let owner: String = sqlx::query_scalar("SELECT owner_user_id FROM enterprises WHERE id = $1")
            .bind(&d.enterprise_id)
            .fetch_one(&mut *tx)
            .await?;
        notify(&mut tx, &owner, "proposal_received", "demand", demand_id, &d.title).await?;
        audit(
            &mut tx,
            actor,
            "proposal.create",
            "proposal",
            &id,
            serde_json::json!({ "demand": demand_id, "opc": opc_id, "price_fen": price_fen }),
            d.title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.proposal(&id).await
    }

    pub async fn proposal(&self, id: &str) -> Result<Proposal> {
        let row = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(proposal_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn proposals_of_demand(&self, demand_id: &str) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.demand_id = $1 ORDER BY p.created_at"))
            .bind(demand_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(proposal_from).collect()
    }

    pub async fn proposals_of_opc(&self, opc_id: &str) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(&format!("{PROPOSAL_SELECT} WHERE p.opc_id = $1 ORDER BY p.created_at DESC"))
            .bind(opc_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(proposal_from).collect()
    }

    /// submitted → shortlisted, or submitted/shortlisted → declined (the OPC is told).
    pub async fn set_proposal_status(&self, actor: &Actor, id: &str, to: &str) -> Result<Proposal> {
        let from: &[&str] = match to {
            "shortlisted" => &["submitted"],
            "declined" => &["submitted", "shortlisted"],
            _ => return Err(invalid("status", "unknown_status")),
        };
        let p = self.proposal(id).await?;
        if !from.contains(&p.status.as_str()) {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE demand_proposals SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(to)
            .bind(now_ms())
            .bind(id)
            .bind(&p.status)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        if to == "declined" {
            let uid: String = sqlx::query_scalar("SELECT founder_user_id FROM opcs WHERE id = $1")
                .bind(&p.opc_id)
                .fetch_one(&mut *tx)
                .await?;
            notify(&mut tx, &uid, "proposal_declined", "demand", &p.demand_id, &p.demand_title).await?;
        }
        audit(
            &mut tx,
            actor,
            "proposal.set_status",
            "proposal",
            id,
            serde_json::json!({ "status": to }),
            format!("{} → {to}", p.status),
        )
        .await?;
        tx.commit().await?;
        self.proposal(id).await
    }

    /// Accepts one proposal: the demand goes open → in_progress (exactly one accept wins, by a
    /// conditional update), a cooperation is created with the agreed amount and milestones,
    /// the accepted OPC and every other proposer are told.
    pub async fn accept_proposal(
        &self,
        actor: &Actor,
        proposal_id: &str,
        agreed_fen: Option<i64>,
        milestones: &[Milestone],
    ) -> Result<Cooperation> {
        let p = self.proposal(proposal_id).await?;
        let agreed = agreed_fen.unwrap_or(p.price_fen);
        if agreed <= 0 {
            return Err(invalid("agreed_fen", "required"));
        }
        if agreed > MAX_AMOUNT_FEN {
            return Err(invalid("agreed_fen", "amount_out_of_range"));
        }
        let mut sum = 0i64;
        for m in milestones {
            let n = m.title.trim().chars().count();
            if n == 0 || n > 100 {
                return Err(invalid("milestones", "invalid_milestone"));
            }
            if m.amount_fen < 0 {
                return Err(invalid("milestones", "negative_amount"));
            }
            if let Some(due) = &m.due {
                if parse_date(due).is_none() {
                    return Err(invalid("milestones", "invalid_date"));
                }
            }
            sum = sum.saturating_add(m.amount_fen);
        }
        if sum > agreed {
            return Err(invalid("milestones", "milestones_above_agreed"));
        }
        if milestones.len() > 20 {
            return Err(invalid("milestones", "too_many_milestones"));
        }
        if !matches!(p.status.as_str(), "submitted" | "shortlisted") {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let now = now_ms();
        let mut tx = self.begin().await?;
        let won = sqlx::query("UPDATE demands SET status = 'in_progress', updated_at = $1 WHERE id = $2 AND status = 'open'")
            .bind(now)
            .bind(&p.demand_id)
            .execute(&mut *tx)
            .await?;
        if won.rows_affected() != 1 {
            return Err(StoreError::Conflict("demand_not_open"));
        }
        let ok = sqlx::query(
            "UPDATE demand_proposals SET status = 'accepted', updated_at = $1 WHERE id = $2 AND status IN ('submitted', 'shortlisted')",
        )
        .bind(now)
        .bind(proposal_id)
        .execute(&mut *tx)
        .await?;
        if ok.rows_affected() != 1 {
            return Err(StoreError::Conflict("proposal_wrong_state"));
        }
        let others = sqlx::query(
            "SELECT o.founder_user_id FROM demand_proposals p JOIN opcs o ON o.id = p.opc_id WHERE p.demand_id = $1 AND p.id <> $2 AND p.status IN ('submitted', 'shortlisted')",
        )
        .bind(&p.demand_id)
        .bind(proposal_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE demand_proposals SET status = 'declined', updated_at = $1 WHERE demand_id = $2 AND id <> $3 AND status IN ('submitted', 'shortlisted')")
            .bind(now)
            .bind(&p.demand_id)
            .bind(proposal_id)
            .execute(&mut *tx)
            .await?;
        let enterprise_id: String = sqlx::query_scalar("SELECT enterprise_id FROM demands WHERE id = $1")
            .bind(&p.demand_id)
            .fetch_one(&mut *tx)
            .await?;
        let id = new_id();
        let res = sqlx::query(
            "INSERT INTO cooperations (id, demand_id, proposal_id, enterprise_id, opc_id, title, agreed_fen, milestones, status, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, NULL)",
        )
        .bind(&id)
        .bind(&p.demand_id)
        .bind(proposal_id)
        .bind(&enterprise_id)
        .bind(&p.opc_id)
        .bind(&p.demand_title)
        .bind(agreed)
        .bind(serde_json::to_string(milestones).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "demand_id") || is_unique_violation(&e, "cooperations") {
                return Err(StoreError::Conflict("demand_not_open"));
            }
            return Err(e.into());
        }
        let winner: String = sqlx::query_scalar("SELECT founder_user_id FROM opcs WHERE id = $1")
            .bind(&p.opc_id)
            .fetch_one(&mut *tx)
            .await?;
        notify(&mut tx, &winner, "proposal_accepted", "cooperation", &id, &p.demand_title).await?;
        for r in others {
            let uid: String = r.try_get("founder_user_id")?;
            notify(&mut tx, &uid, "proposal_declined", "demand", &p.demand_id, &p.demand_title).await?;
        }
        audit(
            &mut tx,
            actor,
            "cooperation.create",
            "cooperation",
            &id,
            serde_json::json!({ "demand": p.demand_id, "proposal": proposal_id, "opc": p.opc_id, "agreed_fen": agreed }),
            p.demand_title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.cooperation(&id).await
    }

    pub async fn add_message(
        &self,
        actor: &Actor,
        proposal_id: &str,
        author_user_id: &str,
        notify_user_id: &str,
        body: &str,
    ) -> Result<Message> {
        let p = self.proposal(proposal_id).await?;
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO demand_messages (id, proposal_id, author_user_id, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(proposal_id)
            .bind(author_user_id)
            .bind(body)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        notify(&mut tx, notify_user_id, "question", "demand", &p.demand_id, &p.demand_title).await?;
        audit(
            &mut tx,
            actor,
            "proposal.message",
            "proposal",
            proposal_id,
            serde_json::json!({ "message": id }),
            p.demand_title.clone(),
        )
        .await?;
        tx.commit().await?;
        let msgs = self.messages(proposal_id).await?;
        msgs.into_iter().find(|m| m.id == id).ok_or(StoreError::NotFound)
    }

    pub async fn messages(&self, proposal_id: &str) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT m.id, m.author_user_id, u.display_name, m.body, m.created_at FROM demand_messages m JOIN users u ON u.id = m.author_user_id \
             WHERE m.proposal_id = $1 ORDER BY m.created_at, m.id",
        )
        .bind(proposal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Message {
                    id: r.try_get("id")?,
                    author_user_id: r.try_get("author_user_id")?,
                    author_name: r.try_get("display_name")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ cooperations

    pub async fn cooperation(&self, id: &str) -> Result<Cooperation> {
        let row = sqlx::query(&format!("{COOP_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(coop_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Cooperations of a company (by enterprise id) or an OPC (by OPC id).
    pub async fn cooperations_of(&self, enterprise_id: Option<&str>, opc_id: Option<&str>) -> Result<Vec<Cooperation>> {
        let rows = sqlx::query(&format!(
            "{COOP_SELECT} WHERE ($1 IS NULL OR c.enterprise_id = $1) AND ($2 IS NULL OR c.opc_id = $2) ORDER BY c.created_at DESC"
        ))
        .bind(enterprise_id.map(str::to_string))
        .bind(opc_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(coop_from).collect()
    }

    pub async fn payments(&self, cooperation_id: &str) -> Result<Vec<Payment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM cooperation_payments WHERE cooperation_id = $1 ORDER BY created_at, id"
        ))
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from).collect()
    }

    pub async fn payment(&self, id: &str) -> Result<Payment> {
        let row = sqlx::query(&format!("SELECT {PAYMENT_COLS} FROM cooperation_payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn flag_duplicate_invoice(&self, actor: &Actor, coop: &Cooperation, invoice: &str, other: Option<String>) -> Result<()> {
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO demand_flags (id, kind, clause, cooperation_id, other_payment_id, invoice_number, attempted_by, created_at) \
             VALUES ($1, 'duplicate_invoice', 'S3', $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&coop.id)
        .bind(other)
        .bind(invoice)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "flag.duplicate_invoice",
            "cooperation",
            &coop.id,
            serde_json::json!({ "invoice": invoice }),
            invoice.to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The company records a payment. Refused when it would take the payments (not void)
    /// above the agreed amount, or when the invoice number was already used anywhere (then
    /// also flagged as a likely double claim, S3).
    pub async fn record_payment(
        &self,
        actor: &Actor,
        cooperation_id: &str,
        p: &NewPayment,
        invoice: Option<FileIn<'_>>,
    ) -> Result<Payment> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "active" {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        let sha = invoice.as_ref().map(check_file).transpose()?;
        let existing: Option<String> = sqlx::query_scalar("SELECT id FROM cooperation_payments WHERE invoice_number = $1")
            .bind(&p.invoice_number)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(other) = existing {
            self.flag_duplicate_invoice(actor, &coop, &p.invoice_number, Some(other)).await?;
            return Err(StoreError::Conflict("duplicate_invoice"));
        }
        let id = new_id();
        let mut tx = self.begin().await?;
        // Read the agreed amount and the sum inside the write transaction (SQLite holds the
        // write lock; PostgreSQL locks the cooperation row), so two concurrent payments cannot
        // together pass the agreed amount.
        let agreed: i64 = sqlx::query_scalar(if self.backend == crate::Backend::Postgres {
            "SELECT agreed_fen FROM cooperations WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT agreed_fen FROM cooperations WHERE id = $1"
        })
        .bind(cooperation_id)
        .fetch_one(&mut *tx)
        .await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM cooperation_payments WHERE cooperation_id = $1 AND status <> 'void'",
        )
        .bind(cooperation_id)
        .fetch_one(&mut *tx)
        .await?;
        if used.saturating_add(p.amount_fen) > agreed {
            return Err(invalid("amount_fen", "above_agreed_amount"));
        }
        if let (Some(sha), Some(f)) = (&sha, &invoice) {
            put_file(&mut tx, sha, f).await?;
        }
        let res = sqlx::query(&format!(
            "INSERT INTO cooperation_payments ({PAYMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, NULL, NULL, NULL, $8)"
        ))
        .bind(&id)
        .bind(cooperation_id)
        .bind(p.amount_fen)
        .bind(&p.paid_on)
        .bind(&p.invoice_number)
        .bind(sha.clone())
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "invoice_number") {
                drop(tx);
                self.flag_duplicate_invoice(actor, &coop, &p.invoice_number, None).await?;
                return Err(StoreError::Conflict("duplicate_invoice"));
            }
            return Err(e.into());
        }
        notify(
            &mut tx,
            &coop.opc_founder_user_id,
            "payment_to_confirm",
            "cooperation",
            cooperation_id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "payment.record",
            "payment",
            &id,
            serde_json::json!({ "cooperation": cooperation_id, "amount_fen": p.amount_fen, "invoice": p.invoice_number, "invoice_sha256": sha }),
            format!("{} fen", p.amount_fen),
        )
        .await?;
        tx.commit().await?;
        self.payment(&id).await
    }

    /// pending → confirmed (the OPC's confirmation; only one of concurrent confirms wins).
    pub async fn confirm_payment(&self, actor: &Actor, payment_id: &str) -> Result<Payment> {
        self.settle_payment(actor, payment_id, "pending", "confirmed", "payment.confirm")
            .await
    }

    async fn settle_payment(&self, actor: &Actor, payment_id: &str, from: &str, to: &str, action: &str) -> Result<Payment> {
        let p = self.payment(payment_id).await?;
        let coop = self.cooperation(&p.cooperation_id).await?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE cooperation_payments SET status = $1, confirmed_by = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_by END, \
             confirmed_at = CASE WHEN $1 = 'confirmed' THEN $3 ELSE confirmed_at END WHERE id = $4 AND status = $5",
        )
        .bind(to)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(payment_id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        if to == "confirmed" {
            notify(
                &mut tx,
                &coop.enterprise_owner_user_id,
                "payment_confirmed",
                "cooperation",
                &coop.id,
                &coop.title,
            )
            .await?;
        }
        audit(
            &mut tx,
            actor,
            action,
            "payment",
            payment_id,
            serde_json::json!({ "status": to }),
            format!("{from} → {to}"),
        )
        .await?;
        tx.commit().await?;
        self.payment(payment_id).await
    }

    /// The `cooperation.payment` ledger event of a confirmed payment (M2.4): subject the
    /// paying company, counterparty the OPC, quantity = charged = the amount in fen, the
    /// payment id as source event id (so it is stored exactly once), the cooperation and the
    /// invoice digest as attributes.
    pub async fn payment_event(&self, payment_id: &str) -> Result<NewEvent> {
        let p = self.payment(payment_id).await?;
        if p.status != "confirmed" {
            return Err(StoreError::Conflict("payment_not_confirmed"));
        }
        let coop = self.cooperation(&p.cooperation_id).await?;
        let occurred_at_ms = parse_date(&p.paid_on)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() - 8 * 3600 * 1000)
            .unwrap_or(p.created_at)
            .min(now_ms());
        let mut attributes = BTreeMap::new();
        attributes.insert("cooperation".to_string(), coop.id.clone());
        attributes.insert("demand".to_string(), coop.demand_id.clone());
        attributes.insert("invoice_number".to_string(), p.invoice_number.clone());
        if let Some(sha) = &p.invoice_sha256 {
            attributes.insert("invoice_sha256".to_string(), sha.clone());
        }
        Ok(NewEvent {
            source: LEDGER_SOURCE.into(),
            source_event_id: p.id.clone(),
            kind: "cooperation.payment".into(),
            subject: coop.enterprise_id.clone(),
            counterparty: coop.opc_id.clone(),
            quantity: p.amount_fen,
            unit: "fen".into(),
            list_fen: p.amount_fen,
            charged_fen: p.amount_fen,
            price_version: String::new(),
            occurred_at_ms,
            origin: Origin::Observed,
            attributes,
            corrects_leaf_index: None,
            correction_reason: None,
            requested_by: None,
            approved_by: p.confirmed_by.clone(),
        })
    }

    /// Records the ledger leaf of a posted payment.
    pub async fn set_payment_leaf(&self, payment_id: &str, outcome: Option<Outcome>) -> Result<i64> {
        let leaf = match outcome {
            Some(Outcome::Stored(r)) | Some(Outcome::Duplicate(r)) => r.leaf_index,
            Some(Outcome::Rejected(e)) => return Err(StoreError::Catalog(format!("ledger refused payment {payment_id}: {}", e.code))),
            None => return Err(StoreError::Catalog("ledger returned no outcome".into())),
        };
        sqlx::query("UPDATE cooperation_payments SET ledger_leaf_index = $1 WHERE id = $2 AND ledger_leaf_index IS NULL")
            .bind(leaf)
            .bind(payment_id)
            .execute(&self.pool)
            .await?;
        Ok(leaf)
    }

    /// Appends the event of a confirmed payment through the writer (idempotent) and records
    /// its leaf. Returns the leaf index.
    pub async fn post_payment(&self, writer: &LedgerWriter, payment_id: &str) -> Result<i64> {
        if let Some(leaf) = self.payment(payment_id).await?.ledger_leaf_index {
            return Ok(leaf);
        }
        let event = self.payment_event(payment_id).await?;
        let out = writer.append(vec![Item::Event(event)]).await?;
        self.set_payment_leaf(payment_id, out.into_iter().next()).await
    }

    /// Confirmed payments whose event is not yet in the ledger (a crash between the
    /// confirmation and the append); `post_payment` them to repair.
    pub async fn unposted_payments(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cooperation_payments WHERE status = 'confirmed' AND ledger_leaf_index IS NULL ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Either side disputes a pending payment; it does not count until a committee reviewer
    /// resolves the dispute.
    pub async fn dispute_payment(&self, actor: &Actor, payment_id: &str, reason: &str) -> Result<Dispute> {
        let p = self.payment(payment_id).await?;
        let coop = self.cooperation(&p.cooperation_id).await?;
        let uid = actor.user_id.clone().unwrap_or_default();
        let id = new_id();
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE cooperation_payments SET status = 'disputed' WHERE id = $1 AND status = 'pending'")
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("payment_not_pending"));
        }
        sqlx::query(
            "INSERT INTO cooperation_disputes (id, payment_id, raised_by, reason, status, resolution, resolution_note, resolved_by, created_at, resolved_at) \
             VALUES ($1, $2, $3, $4, 'open', NULL, NULL, NULL, $5, NULL)",
        )
        .bind(&id)
        .bind(payment_id)
        .bind(&uid)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        notify(
            &mut tx,
            coop.other_party(&uid),
            "payment_disputed",
            "cooperation",
            &coop.id,
            &coop.title,
        )
        .await?;
        // Every committee reviewer who can sign in is told there is a dispute to decide.
        let reviewers: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE role = $1 AND disabled = 0 ORDER BY id")
            .bind(opchub_domain::Role::Committee.as_str())
            .fetch_all(&mut *tx)
            .await?;
        for reviewer in &reviewers {
            notify(&mut tx, reviewer, "dispute_opened", "dispute", &id, &coop.title).await?;
        }
        audit(
            &mut tx,
            actor,
            "payment.dispute",
            "payment",
            payment_id,
            serde_json::json!({ "dispute": id, "reason": reason }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.dispute(&id).await
    }

    pub async fn dispute(&self, id: &str) -> Result<Dispute> {
        let row = sqlx::query(&format!("{DISPUTE_SELECT} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dispute_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn disputes(&self, open_only: bool) -> Result<Vec<Dispute>> {
        let rows = sqlx::query(&format!(
            "{DISPUTE_SELECT} WHERE ($1 = 0 OR d.status = 'open') ORDER BY d.created_at DESC LIMIT 500"
        ))
        .bind(open_only as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dispute_from).collect()
    }

    /// A committee reviewer resolves a dispute: `upheld` (the payment stands: confirmed, and
    /// then posted) or `rejected` (void: it never counts and frees its share of the amount).
    pub async fn resolve_dispute(&self, actor: &Actor, dispute_id: &str, resolution: &str, note: &str) -> Result<Dispute> {
        let to = match resolution {
            "upheld" => "confirmed",
            "rejected" => "void",
            _ => return Err(invalid("resolution", "unknown_resolution")),
        };
        let d = self.dispute(dispute_id).await?;
        let coop = self.cooperation(&d.cooperation_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "UPDATE cooperation_disputes SET status = 'resolved', resolution = $1, resolution_note = $2, resolved_by = $3, resolved_at = $4 \
             WHERE id = $5 AND status = 'open'",
        )
        .bind(resolution)
        .bind(note)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(dispute_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("dispute_resolved"));
        }
        sqlx::query(
            "UPDATE cooperation_payments SET status = $1, confirmed_by = CASE WHEN $1 = 'confirmed' THEN $2 ELSE confirmed_by END, \
             confirmed_at = CASE WHEN $1 = 'confirmed' THEN $3 ELSE confirmed_at END WHERE id = $4 AND status = 'disputed'",
        )
        .bind(to)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(&d.payment_id)
        .execute(&mut *tx)
        .await?;
        for uid in [&coop.enterprise_owner_user_id, &coop.opc_founder_user_id] {
            notify(&mut tx, uid, "dispute_resolved", "cooperation", &coop.id, &coop.title).await?;
        }
        audit(
            &mut tx,
            actor,
            "dispute.resolve",
            "dispute",
            dispute_id,
            serde_json::json!({ "resolution": resolution, "note": note }),
            resolution.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.dispute(dispute_id).await
    }

    pub async fn flags(&self) -> Result<Vec<Flag>> {
        let rows = sqlx::query(
            "SELECT id, kind, clause, cooperation_id, other_payment_id, invoice_number, attempted_by, created_at FROM demand_flags ORDER BY created_at DESC LIMIT 500",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Flag {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    clause: r.try_get("clause")?,
                    cooperation_id: r.try_get("cooperation_id")?,
                    other_payment_id: r.try_get("other_payment_id")?,
                    invoice_number: r.try_get("invoice_number")?,
                    attempted_by: r.try_get("attempted_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ amendments, completion, ratings

    /// The company proposes a new agreed amount; it takes effect when the OPC accepts. It may
    /// not go below what is already recorded (not void).
    pub async fn propose_amendment(&self, actor: &Actor, cooperation_id: &str, agreed_fen: i64, reason: &str) -> Result<Amendment> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "active" {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        if agreed_fen <= 0 {
            return Err(invalid("agreed_fen", "required"));
        }
        if agreed_fen > MAX_AMOUNT_FEN {
            return Err(invalid("agreed_fen", "amount_out_of_range"));
        }
        if agreed_fen < coop.recorded_fen {
            return Err(invalid("agreed_fen", "below_recorded_payments"));
        }
        let id = new_id();
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE cooperation_amendments SET status = 'rejected', decided_at = $1 WHERE cooperation_id = $2 AND status = 'proposed'",
        )
        .bind(now_ms())
        .bind(cooperation_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cooperation_amendments (id, cooperation_id, agreed_fen, reason, status, proposed_by, decided_by, created_at, decided_at) \
             VALUES ($1, $2, $3, $4, 'proposed', $5, NULL, $6, NULL)",
        )
        .bind(&id)
        .bind(cooperation_id)
        .bind(agreed_fen)
        .bind(reason)
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        notify(
            &mut tx,
            &coop.opc_founder_user_id,
            "amendment_proposed",
            "cooperation",
            cooperation_id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "amendment.propose",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "agreed_fen": agreed_fen }),
            reason.to_string(),
        )
        .await?;
        tx.commit().await?;
        self.amendment(&id).await
    }

    pub async fn amendment(&self, id: &str) -> Result<Amendment> {
        let row = sqlx::query(
            "SELECT id, cooperation_id, agreed_fen, reason, status, proposed_by, created_at FROM cooperation_amendments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(amendment_from).transpose()?.ok_or(StoreError::NotFound)
    }

    pub async fn amendments(&self, cooperation_id: &str) -> Result<Vec<Amendment>> {
        let rows = sqlx::query(
            "SELECT id, cooperation_id, agreed_fen, reason, status, proposed_by, created_at FROM cooperation_amendments \
             WHERE cooperation_id = $1 ORDER BY created_at",
        )
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(amendment_from).collect()
    }

    /// The OPC accepts (the agreed amount changes) or rejects a proposed amendment.
    pub async fn decide_amendment(&self, actor: &Actor, amendment_id: &str, accept: bool) -> Result<Amendment> {
        let a = self.amendment(amendment_id).await?;
        let coop = self.cooperation(&a.cooperation_id).await?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE cooperation_amendments SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'proposed'",
        )
        .bind(if accept { "accepted" } else { "rejected" })
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now)
        .bind(amendment_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("amendment_decided"));
        }
        if accept {
            let used: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM cooperation_payments WHERE cooperation_id = $1 AND status <> 'void'",
            )
            .bind(&a.cooperation_id)
            .fetch_one(&mut *tx)
            .await?;
            if a.agreed_fen < used {
                return Err(invalid("agreed_fen", "below_recorded_payments"));
            }
            sqlx::query("UPDATE cooperations SET agreed_fen = $1 WHERE id = $2")
                .bind(a.agreed_fen)
                .bind(&a.cooperation_id)
                .execute(&mut *tx)
                .await?;
        }
        notify(
            &mut tx,
            &coop.enterprise_owner_user_id,
            "amendment_decided",
            "cooperation",
            &coop.id,
            &coop.title,
        )
        .await?;
        audit(
            &mut tx,
            actor,
            "amendment.decide",
            "cooperation",
            &coop.id,
            serde_json::json!({ "amendment": amendment_id, "accepted": accept, "agreed_fen": a.agreed_fen }),
            format!("{} → {}", coop.agreed_fen, a.agreed_fen),
        )
        .await?;
        tx.commit().await?;
        self.amendment(amendment_id).await
    }

    /// The company marks the cooperation completed (and its demand).
    pub async fn complete_cooperation(&self, actor: &Actor, cooperation_id: &str) -> Result<Cooperation> {
        let coop = self.cooperation(cooperation_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let res = sqlx::query("UPDATE cooperations SET status = 'completed', completed_at = $1 WHERE id = $2 AND status = 'active'")
            .bind(now)
            .bind(cooperation_id)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Conflict("cooperation_not_active"));
        }
        sqlx::query("UPDATE demands SET status = 'completed', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&coop.demand_id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "cooperation.complete",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "status": "completed" }),
            coop.title.clone(),
        )
        .await?;
        tx.commit().await?;
        self.cooperation(cooperation_id).await
    }

    /// One rating per side, after completion; score 1..=5.
    pub async fn rate(&self, actor: &Actor, cooperation_id: &str, side: &str, score: i64, comment: &str) -> Result<Rating> {
        let coop = self.cooperation(cooperation_id).await?;
        if coop.status != "completed" {
            return Err(StoreError::Conflict("cooperation_not_completed"));
        }
        if !(1..=5).contains(&score) {
            return Err(invalid("score", "score_out_of_range"));
        }
        if comment.chars().count() > 500 {
            return Err(invalid("comment", "too_long"));
        }
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO cooperation_ratings (cooperation_id, rater_side, score, comment, rated_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cooperation_id)
        .bind(side)
        .bind(score)
        .bind(comment.trim())
        .bind(actor.user_id.clone().unwrap_or_default())
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                return Err(StoreError::Conflict("already_rated"));
            }
            return Err(e.into());
        }
        let other = if side == "company" {
            &coop.opc_founder_user_id
        } else {
            &coop.enterprise_owner_user_id
        };
        notify(&mut tx, other, "rating_received", "cooperation", cooperation_id, &coop.title).await?;
        audit(
            &mut tx,
            actor,
            "cooperation.rate",
            "cooperation",
            cooperation_id,
            serde_json::json!({ "side": side, "score": score }),
            format!("{score}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Rating {
            cooperation_id: cooperation_id.to_string(),
            rater_side: side.to_string(),
            score,
            comment: comment.trim().to_string(),
            created_at: now_ms(),
        })
    }

    pub async fn ratings(&self, cooperation_id: &str) -> Result<Vec<Rating>> {
        let rows = sqlx::query(
            "SELECT cooperation_id, rater_side, score, comment, created_at FROM cooperation_ratings WHERE cooperation_id = $1 ORDER BY created_at",
        )
        .bind(cooperation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rating {
                    cooperation_id: r.try_get("cooperation_id")?,
                    rater_side: r.try_get("rater_side")?,
                    score: r.try_get("score")?,
                    comment: r.try_get("comment")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Completed cooperations and ratings received by an OPC (`opc`) or a company (`company`).
    pub async fn reputation(&self, side: &str, party_id: &str) -> Result<Reputation> {
        let (col, rater) = if side == "opc" {
            ("opc_id", "company")
        } else {
            ("enterprise_id", "opc")
        };
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM cooperations WHERE {col} = $1 AND status = 'completed') AS completed, \
             (SELECT COUNT(*) FROM cooperation_ratings r JOIN cooperations c ON c.id = r.cooperation_id WHERE c.{col} = $1 AND r.rater_side = $2) AS n, \
             (SELECT CAST(COALESCE(SUM(r.score), 0) AS BIGINT) FROM cooperation_ratings r JOIN cooperations c ON c.id = r.cooperation_id WHERE c.{col} = $1 AND r.rater_side = $2) AS total"
        ))
        .bind(party_id)
        .bind(rater)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let total: i64 = row.try_get("total")?;
        Ok(Reputation {
            completed: row.try_get("completed")?,
            ratings: n,
            average_x100: if n > 0 { total * 100 / n } else { 0 },
        })
    }

    /// The company's confirmed cooperation payments in a calendar year, in fen, from the
    /// ledger (what the policy engine settles M2.4 from).
    pub async fn confirmed_cooperation_total(&self, enterprise_id: &str, year: i32) -> Result<i64> {
        let totals = self.usage_totals(enterprise_id, false, &format!("{year:04}")).await?;
        Ok(totals
            .iter()
            .filter(|t| t.kind == "cooperation.payment")
            .map(|t| t.charged_fen)
            .sum())
    }

    // ------------------------------------------------------------ notifications

    pub async fn notifications(&self, user_id: &str, limit: i64) -> Result<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, kind, object_kind, object_id, title, created_at, read_at FROM notifications WHERE user_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    object_kind: r.try_get("object_kind")?,
                    object_id: r.try_get("object_id")?,
                    title: r.try_get("title")?,
                    created_at: r.try_get("created_at")?,
                    read_at: r.try_get("read_at")?,
                })
            })
            .collect()
    }

    pub async fn unread_notifications(&self, user_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Marks one notification (or, with `None`, all) of `user_id` read. Returns how many changed.
    pub async fn mark_notifications_read(&self, user_id: &str, id: Option<&str>) -> Result<u64> {
        let res = sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL AND ($3 IS NULL OR id = $3)")
            .bind(now_ms())
            .bind(user_id)
            .bind(id.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> DemandInput {
        DemandInput {
            title: Some("发票识别智能体".into()),
            description: Some("需要一个能识别增值税发票并自动报销的智能体。".into()),
            category: Some("agent_tool".into()),
            tags: vec!["发票".into(), "OCR".into(), "发票".into()],
            budget_min_fen: Some(1_000_000),
            budget_max_fen: Some(5_000_000),
            deadline: Some("2999-12-31".into()),
            publish: true,
        }
    }

    #[test]
    fn a_good_demand_passes_and_tags_are_deduplicated() {
        let d = check_demand(&good()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.tags, vec!["发票".to_string(), "OCR".to_string()]);
    }

    #[test]
    fn bad_budgets_and_dates_are_refused_with_codes() {
        let mut i = good();
        i.budget_min_fen = Some(-1);
        i.deadline = Some("2000-01-01".into());
        i.category = Some("mining".into());
        let e = check_demand(&i).err().unwrap_or_default();
        assert_eq!(e["budget_min_fen"], "negative_amount");
        assert_eq!(e["deadline"], "deadline_in_past");
        assert_eq!(e["category"], "unknown_category");
        let mut i = good();
        i.budget_min_fen = Some(9_000_000);
        assert_eq!(check_demand(&i).err().unwrap_or_default()["budget_min_fen"], "budget_min_above_max");
    }

    #[test]
    fn invoice_numbers_are_normalized() {
        assert_eq!(normalize_invoice(" no. 0012 3"), "NO.00123");
        let e = check_payment(&PaymentInput {
            amount_fen: Some(100),
            paid_on: Some("2999-01-01".into()),
            invoice_number: Some("发票#1".into()),
        })
        .err()
        .unwrap_or_default();
        assert_eq!(e["paid_on"], "date_in_future");
        assert_eq!(e["invoice_number"], "invalid_invoice_number");
    }
}
