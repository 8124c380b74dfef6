//! The demand board's use cases (M2.4), called alike by the JSON API and the pages: demands
//! and their attachments, matching, proposals with question threads, cooperations with
//! payments, amendments, disputes, ratings, summaries and notifications; and the validation of
//! what a company or an OPC typed (before anything reaches the store).
//!
//! Who may act on what, beyond the route table's roles: a company acts only on its own
//! demands and cooperations, an OPC only on its own proposals and cooperations; anything else
//! is reported as not found so that nobody learns another party's records exist.

use crate::matching::{DemandDoc, Ranked, SearchFilter};
use crate::{App, AppError, AppResult, Principal};
use base64::Engine;
use opchub_domain::input::{Checker, FieldErrors};
use opchub_domain::Role;
use opchub_store::registry::Opc;
use opchub_store::StoreError;
use serde::Deserialize;
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};

pub use opchub_store::demands::{
    parse_date, Amendment, Attachment, Cooperation, Demand, DemandFilter, Dispute, Eligibility, FileIn, Flag, Message, Milestone,
    NewDemand, NewPayment, Notification, Payment, Proposal, Publisher, Rating, Reputation, CATEGORIES, FILE_TYPES, MAX_AMOUNT_FEN,
    MAX_FILE_BYTES, MAX_TAGS,
};

crate::module_errors! {
    /// What the demand board (M2.4) refuses.
    pub enum DemandError {
        /// The enterprise is not verified yet.
        CompanyNotVerified => (Forbidden, "company_not_verified"),
        /// The enterprise is not registered in the district.
        CompanyNotInDistrict => (Forbidden, "company_not_in_district"),
        /// The caller has no company.
        NoCompany => (Forbidden, "no_company"),
        /// The cooperation is not active.
        CooperationNotActive => (Conflict, "cooperation_not_active"),
        /// The cooperation is not completed yet.
        CooperationNotCompleted => (Conflict, "cooperation_not_completed"),
    }
}

// ---------------------------------------------------------------- input validation

/// A day typed in a demand's form, exactly `YYYY-MM-DD` in the platform's years (issue 20):
/// the field code of a refusal (`invalid_date`, `date_out_of_range`).
fn typed_day(v: &str) -> Result<opchub_domain::time::Day, &'static str> {
    opchub_domain::time::Day::parse(v).map_err(|e| match e {
        opchub_domain::time::DateError::OutOfRange => "date_out_of_range",
        _ => "invalid_date",
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

/// Checks every field; all problems at once.
pub fn check_demand(i: &DemandInput) -> Result<NewDemand, FieldErrors> {
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
    match typed_day(&deadline) {
        Err(_) if deadline.is_empty() => fail(&mut c, "deadline", "required"),
        Err(code) => fail(&mut c, "deadline", code),
        Ok(d) => {
            if d.date() < opchub_domain::time::beijing_today() {
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

pub fn check_payment(i: &PaymentInput) -> Result<NewPayment, FieldErrors> {
    let mut c = Checker::new();
    match i.amount_fen {
        None => fail(&mut c, "amount_fen", "required"),
        Some(a) if a < 0 => fail(&mut c, "amount_fen", "negative_amount"),
        Some(0) => fail(&mut c, "amount_fen", "required"),
        Some(a) if a > MAX_AMOUNT_FEN => fail(&mut c, "amount_fen", "amount_out_of_range"),
        _ => {}
    }
    let paid_on = i.paid_on.as_deref().unwrap_or("").trim().to_string();
    match typed_day(&paid_on) {
        Err(_) if paid_on.is_empty() => fail(&mut c, "paid_on", "required"),
        Err(code) => fail(&mut c, "paid_on", code),
        Ok(d) if d.date() > opchub_domain::time::beijing_today() => fail(&mut c, "paid_on", "date_in_future"),
        Ok(_) => {}
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

/// A file (attachment or invoice) the board accepts: not empty, at most [`MAX_FILE_BYTES`], one
/// of [`FILE_TYPES`], a plain file name.
pub fn check_file(f: &FileIn<'_>) -> AppResult<()> {
    if f.bytes.is_empty() {
        return Err(AppError::field("file", "empty_file"));
    }
    if f.bytes.len() > MAX_FILE_BYTES {
        return Err(AppError::field("file", "file_too_large"));
    }
    if !FILE_TYPES.contains(&f.content_type) {
        return Err(AppError::field("file", "file_type_not_allowed"));
    }
    let n = f.name.trim().chars().count();
    if n == 0 || n > 200 || f.name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(AppError::field("file", "invalid_file_name"));
    }
    if !content_matches(f.content_type, f.bytes) {
        return Err(AppError::field("file", "file_content_mismatch"));
    }
    Ok(())
}

/// Whether the bytes are what the declared type says, by their signature (the `infer` crate):
/// a PDF, PNG or JPEG must carry its own signature (SVG or HTML bytes declared as PNG are
/// refused); plain text must have no NUL byte and no binary signature (an ELF, PE or Mach-O
/// executable, an archive, an image declared as text is refused). Text in any encoding passes.
fn content_matches(declared: &str, bytes: &[u8]) -> bool {
    let sniffed = infer::get(bytes).map(|t| t.mime_type());
    match declared {
        "text/plain" => !bytes.contains(&0) && sniffed.is_none(),
        other => sniffed == Some(other),
    }
}

/// The agreed amount and milestones of an acceptance (`agreed` defaults to the proposal's
/// price): the first problem found, as the store used to report it.
pub fn check_acceptance(agreed: i64, milestones: &[Milestone]) -> AppResult<()> {
    check_agreed(agreed)?;
    let mut sum = 0i64;
    for m in milestones {
        let n = m.title.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(AppError::field("milestones", "invalid_milestone"));
        }
        if m.amount_fen < 0 {
            return Err(AppError::field("milestones", "negative_amount"));
        }
        if let Some(due) = &m.due {
            typed_day(due).map_err(|code| AppError::field("milestones", code))?;
        }
        sum = sum.saturating_add(m.amount_fen);
    }
    if sum > agreed {
        return Err(AppError::field("milestones", "milestones_above_agreed"));
    }
    if milestones.len() > 20 {
        return Err(AppError::field("milestones", "too_many_milestones"));
    }
    Ok(())
}

/// An agreed amount (acceptance or amendment): positive, at most [`MAX_AMOUNT_FEN`].
pub fn check_agreed(agreed_fen: i64) -> AppResult<()> {
    if agreed_fen <= 0 {
        return Err(AppError::field("agreed_fen", "required"));
    }
    if agreed_fen > MAX_AMOUNT_FEN {
        return Err(AppError::field("agreed_fen", "amount_out_of_range"));
    }
    Ok(())
}

/// A rating: score 1..=5, a comment of at most 500 characters.
pub fn check_rating(score: i64, comment: &str) -> AppResult<()> {
    if !(1..=5).contains(&score) {
        return Err(AppError::field("score", "score_out_of_range"));
    }
    if comment.chars().count() > 500 {
        return Err(AppError::field("comment", "too_long"));
    }
    Ok(())
}

// ---------------------------------------------------------------- access

/// The caller's company, if it may publish (M2.4: verified, in the district).
pub async fn publisher_of(app: &App, p: &Principal) -> AppResult<Publisher> {
    if p.role() != Role::Enterprise {
        return Err(AppError::forbidden());
    }
    match app.store.publisher(&p.user.id).await? {
        Eligibility::Eligible(pb) => Ok(pb),
        Eligibility::NotVerified => Err(DemandError::CompanyNotVerified.into()),
        Eligibility::NotInDistrict => Err(DemandError::CompanyNotInDistrict.into()),
    }
}

/// The caller's OPC (an OPC founder without one cannot propose).
pub async fn opc_of(app: &App, p: &Principal) -> AppResult<Opc> {
    if p.role() != Role::OpcFounder {
        return Err(AppError::forbidden());
    }
    app.store
        .opc_of_founder(&p.user.id)
        .await?
        .ok_or_else(|| AppError::from(DemandError::NoCompany))
}

fn staff(p: &Principal) -> bool {
    matches!(p.role(), Role::Committee | Role::Auditor | Role::PlatformOperator)
}

/// A demand the caller may see: open/in progress/completed for everyone signed in or not;
/// drafts, cancelled and expired ones only for their company and staff.
pub async fn visible_demand(app: &App, p: Option<&Principal>, id: &str) -> AppResult<Demand> {
    let d = app.store.demand(id).await?;
    if matches!(d.status.as_str(), "open" | "in_progress" | "completed") {
        return Ok(d);
    }
    if let Some(p) = p {
        if staff(p) {
            return Ok(d);
        }
        if p.role() == Role::Enterprise {
            if let Eligibility::Eligible(pb) = app.store.publisher(&p.user.id).await? {
                if pb.enterprise_id == d.enterprise_id {
                    return Ok(d);
                }
            }
        }
    }
    Err(AppError::not_found())
}

/// A demand of the caller's own company.
pub async fn own_demand(app: &App, p: &Principal, id: &str) -> AppResult<(Publisher, Demand)> {
    let pb = publisher_of(app, p).await?;
    let d = app.store.demand(id).await?;
    if d.enterprise_id != pb.enterprise_id {
        return Err(AppError::not_found());
    }
    Ok((pb, d))
}

/// A cooperation the caller is a party to (staff may read any).
pub async fn visible_cooperation(app: &App, p: &Principal, id: &str) -> AppResult<Cooperation> {
    let c = app.store.cooperation(id).await?;
    if c.side_of(&p.user.id).is_some() || staff(p) {
        Ok(c)
    } else {
        Err(AppError::not_found())
    }
}

/// A cooperation the caller is a party to on `side` (`company` or `opc`).
async fn party_cooperation(app: &App, p: &Principal, id: &str, side: &str) -> AppResult<Cooperation> {
    let c = app.store.cooperation(id).await?;
    if c.side_of(&p.user.id) == Some(side) {
        Ok(c)
    } else {
        Err(AppError::not_found())
    }
}

// ---------------------------------------------------------------- demands

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
pub struct FileUpload {
    pub name: String,
    /// `application/pdf`, `image/png`, `image/jpeg` or `text/plain`.
    pub content_type: String,
    /// The file, base64 (standard alphabet); at most 2 MiB decoded.
    pub data_base64: String,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewDemandRequest {
    #[serde(flatten)]
    pub demand: DemandInput,
    #[serde(default)]
    pub attachments: Vec<FileUpload>,
}

/// An upload's bytes (`invalid_base64` on field `file` when they do not decode).
pub fn decode_upload(f: &FileUpload) -> AppResult<Vec<u8>> {
    decode(f)
}

fn decode(f: &FileUpload) -> AppResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(f.data_base64.trim())
        .map_err(|_| AppError::field("file", "invalid_base64"))
}

/// At most this many attachments on one demand.
pub const MAX_ATTACHMENTS: usize = 5;

/// A file of a request, decoded: as the browser or API client named and typed it.
pub struct FileBytes {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub async fn create_demand_for(app: &App, p: &Principal, r: &NewDemandRequest) -> AppResult<Demand> {
    if r.attachments.len() > MAX_ATTACHMENTS {
        return Err(AppError::field("attachments", "too_many_files"));
    }
    let files: Vec<FileBytes> = r
        .attachments
        .iter()
        .map(|f| {
            Ok(FileBytes {
                name: f.name.clone(),
                content_type: f.content_type.clone(),
                bytes: decode(f)?,
            })
        })
        .collect::<AppResult<_>>()?;
    create_demand_with_files(app, p, &r.demand, &files).await
}

/// Publishes (or saves as a draft) a demand with its attachments; the rules of the API and of
/// the publish page. Nothing is stored when the demand or any file is refused; a refused
/// file's error names the file.
pub async fn create_demand_with_files(app: &App, p: &Principal, input: &DemandInput, files: &[FileBytes]) -> AppResult<Demand> {
    let pb = publisher_of(app, p).await?;
    let d = check_demand(input).map_err(AppError::validation)?;
    if files.len() > MAX_ATTACHMENTS {
        return Err(AppError::field("attachments", "too_many_files"));
    }
    let files: Vec<FileIn<'_>> = files
        .iter()
        .map(|f| FileIn {
            name: &f.name,
            content_type: &f.content_type,
            bytes: &f.bytes,
        })
        .collect();
    for f in &files {
        if let Err(mut e) = check_file(f) {
            let name: String = f.name.trim().chars().take(200).filter(|c| !c.is_control()).collect();
            if !name.is_empty() {
                e.field_details.insert("file".into(), name);
            }
            return Err(e);
        }
    }
    Ok(app.store.create_demand(&p.actor(), &pb, &d, &files).await?)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to look for (Chinese is segmented); empty: newest first.
    pub q: Option<String>,
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Only demands whose budget reaches at least this much (fen).
    pub budget_at_least_fen: Option<i64>,
    pub limit: Option<usize>,
}

pub async fn search_for(app: &App, q: &SearchQuery) -> AppResult<Vec<Demand>> {
    let ix = app.matching.demand_index(&app.store).await?;
    let f = SearchFilter {
        category: q.category.clone().filter(|c| !c.is_empty()),
        tag: q.tag.clone().filter(|c| !c.is_empty()),
        budget_at_least_fen: q.budget_at_least_fen,
    };
    let ids = ix.search(q.q.as_deref().unwrap_or(""), &f, q.limit.unwrap_or(50).clamp(1, 200));
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match app.store.demand(&id).await {
            Ok(d) if d.status == "open" => out.push(d),
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The demands of the caller's company, newest first (expired ones marked so first).
pub async fn my_demands_for(app: &App, p: &Principal) -> AppResult<Vec<Demand>> {
    let pb = publisher_of(app, p).await?;
    company_demands(app, &pb).await
}

async fn company_demands(app: &App, pb: &Publisher) -> AppResult<Vec<Demand>> {
    app.store.expire_demands().await?;
    Ok(app
        .store
        .demands(&DemandFilter {
            enterprise_id: Some(pb.enterprise_id.clone()),
            limit: 500,
            ..Default::default()
        })
        .await?)
}

#[derive(serde::Serialize, ToSchema)]
pub struct DemandDetail {
    pub demand: Demand,
    pub attachments: Vec<Attachment>,
    /// The company's reputation (completed cooperations, ratings from OPCs).
    pub company_reputation: Reputation,
}

/// One demand the caller may see, with its attachments and the company's reputation.
pub async fn demand_detail(app: &App, p: Option<&Principal>, id: &str) -> AppResult<DemandDetail> {
    app.store.expire_demands().await?;
    let d = visible_demand(app, p, id).await?;
    Ok(DemandDetail {
        attachments: app.store.demand_attachments(&d.id).await?,
        company_reputation: app.store.reputation("company", &d.enterprise_id).await?,
        demand: d,
    })
}

/// A stored file by its SHA-256 (hex), as (content type, bytes): an attachment of a demand
/// the caller may see, or an invoice of a cooperation the caller is a party to (or reviews);
/// any other file is not found.
pub async fn file_for(app: &App, p: &Principal, sha: &str) -> AppResult<(String, Vec<u8>)> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::not_found());
    }
    let sha = sha.to_ascii_lowercase();
    let mut allowed = false;
    for demand_id in app.store.file_demands(&sha).await? {
        if visible_demand(app, Some(p), &demand_id).await.is_ok() {
            allowed = true;
            break;
        }
    }
    if !allowed {
        for coop_id in app.store.file_cooperations(&sha).await? {
            if visible_cooperation(app, p, &coop_id).await.is_ok() {
                allowed = true;
                break;
            }
        }
    }
    if !allowed {
        // A bill payment's receipt (issue 19 item 3): the bill's parties, the committee and
        // the auditor.
        for bill_id in app.store.file_bills(&sha).await? {
            if crate::bills::may_read(app, p, &bill_id).await? {
                allowed = true;
                break;
            }
        }
    }
    if !allowed {
        return Err(AppError::not_found());
    }
    Ok(app.store.demand_file(&sha).await?)
}

/// What the demand page shows a caller: the demand and its files; for its company the
/// proposals and (while open or a draft) the recommended OPCs; for an OPC its own proposal
/// and whether it may still propose; for either party of the cooperation, the cooperation.
#[derive(serde::Serialize)]
pub struct DemandView {
    pub demand: Demand,
    pub attachments: Vec<Attachment>,
    pub owner: bool,
    pub recommendations: Vec<Ranked>,
    pub proposals: Vec<Proposal>,
    pub my_proposal: Option<Proposal>,
    pub can_propose: bool,
    pub cooperation: Option<Cooperation>,
}

pub async fn demand_view(app: &App, p: Option<&Principal>, id: &str) -> AppResult<DemandView> {
    app.store.expire_demands().await?;
    let dm = visible_demand(app, p, id).await?;
    let attachments = app.store.demand_attachments(id).await?;
    let mut owner = false;
    let mut recommendations = Vec::new();
    let mut proposals = Vec::new();
    let mut my_proposal = None;
    let mut can_propose = false;
    if let Some(p) = p {
        match p.role() {
            Role::Enterprise if own_demand(app, p, id).await.is_ok() => {
                owner = true;
                proposals = app.store.proposals_of_demand(id).await?;
                if dm.status == "open" || dm.status == "draft" {
                    recommendations = recommendations_for(app, p, id, 10).await?;
                }
            }
            Role::OpcFounder => {
                if let Ok(opc) = opc_of(app, p).await {
                    my_proposal = app.store.proposals_of_demand(id).await?.into_iter().find(|x| x.opc_id == opc.id);
                    can_propose = my_proposal.is_none() && dm.status == "open";
                }
            }
            _ => {}
        }
    }
    let cooperation = if owner || my_proposal.as_ref().is_some_and(|x| x.status == "accepted") {
        app.store
            .cooperations_of(Some(&dm.enterprise_id), None)
            .await?
            .into_iter()
            .find(|c| c.demand_id == dm.id)
    } else {
        None
    };
    Ok(DemandView {
        demand: dm,
        attachments,
        owner,
        recommendations,
        proposals,
        my_proposal,
        can_propose,
        cooperation,
    })
}

/// A company's own board: its demands, this year's confirmed total and its cooperations.
#[derive(serde::Serialize)]
pub struct CompanyBoard {
    pub company: Publisher,
    pub demands: Vec<Demand>,
    pub summary: CooperationSummary,
    pub cooperations: Vec<Cooperation>,
}

pub async fn company_board(app: &App, p: &Principal) -> AppResult<CompanyBoard> {
    let pb = publisher_of(app, p).await?;
    let demands = company_demands(app, &pb).await?;
    let summary = summary_for(app, p, None).await?;
    let cooperations = cooperations_for(app, p).await?;
    Ok(CompanyBoard {
        company: pb,
        demands,
        summary,
        cooperations,
    })
}

pub async fn publish_for(app: &App, p: &Principal, id: &str) -> AppResult<Demand> {
    own_demand(app, p, id).await?;
    Ok(app.store.publish_demand(&p.actor(), id).await?)
}

pub async fn cancel_for(app: &App, p: &Principal, id: &str) -> AppResult<Demand> {
    own_demand(app, p, id).await?;
    Ok(app.store.cancel_demand(&p.actor(), id).await?)
}

fn doc_of(d: &Demand) -> DemandDoc {
    DemandDoc {
        id: d.id.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        category: d.category.clone(),
        tags: d.tags.clone(),
        budget_min_fen: d.budget_min_fen,
        budget_max_fen: d.budget_max_fen,
        published_at: d.published_at.unwrap_or(0),
    }
}

/// Ranked OPCs for a demand of the caller's company (staff may look at any demand).
pub async fn recommendations_for(app: &App, p: &Principal, id: &str, k: usize) -> AppResult<Vec<Ranked>> {
    let d = if staff(p) {
        app.store.demand(id).await?
    } else {
        own_demand(app, p, id).await?.1
    };
    let ix = app.matching.opc_index(&app.store).await?;
    Ok(ix.recommend(&doc_of(&d), k))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    pub limit: Option<usize>,
}

/// "Demands for you": open demands ranked for the caller's OPC (without those it proposed on).
pub async fn for_me_for(app: &App, p: &Principal, k: usize) -> AppResult<Vec<Ranked>> {
    let opc = opc_of(app, p).await?;
    let opcs = app.matching.opc_index(&app.store).await?;
    let demands = app.matching.demand_index(&app.store).await?;
    let exclude: BTreeSet<String> = app
        .store
        .proposals_of_opc(&opc.id)
        .await?
        .into_iter()
        .map(|p| p.demand_id)
        .collect();
    Ok(match opcs.profile(&opc.id) {
        Some(profile) => demands.for_opc(profile, &exclude, k),
        None => Vec::new(),
    })
}

// ---------------------------------------------------------------- proposals

#[derive(Deserialize, ToSchema, Default)]
pub struct NewProposalRequest {
    pub price_fen: Option<i64>,
    pub timeline_days: Option<i64>,
    pub message: Option<String>,
}

pub async fn propose_for(app: &App, p: &Principal, demand_id: &str, r: &NewProposalRequest) -> AppResult<Proposal> {
    let opc = opc_of(app, p).await?;
    visible_demand(app, Some(p), demand_id).await?;
    let mut c = opchub_domain::input::Checker::new();
    match r.price_fen {
        None | Some(0) => {
            c.errors.insert("price_fen".into(), "required".into());
        }
        Some(v) if v < 0 => {
            c.errors.insert("price_fen".into(), "negative_amount".into());
        }
        Some(v) if v > MAX_AMOUNT_FEN => {
            c.errors.insert("price_fen".into(), "amount_out_of_range".into());
        }
        _ => {}
    }
    match r.timeline_days {
        Some(1..=3650) => {}
        None => {
            c.errors.insert("timeline_days".into(), "required".into());
        }
        Some(_) => {
            c.errors.insert("timeline_days".into(), "out_of_range".into());
        }
    }
    let message = c.text(
        "message",
        r.message.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        2000,
    );
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app
        .store
        .create_proposal(
            &p.actor(),
            demand_id,
            &opc.id,
            r.price_fen.unwrap_or(0),
            r.timeline_days.unwrap_or(0),
            &message,
        )
        .await?)
}

/// The company sees every proposal on its demand; an OPC only its own.
pub async fn proposals_for(app: &App, p: &Principal, demand_id: &str) -> AppResult<Vec<Proposal>> {
    match p.role() {
        Role::Enterprise => {
            own_demand(app, p, demand_id).await?;
            Ok(app.store.proposals_of_demand(demand_id).await?)
        }
        Role::OpcFounder => {
            let opc = opc_of(app, p).await?;
            visible_demand(app, Some(p), demand_id).await?;
            Ok(app
                .store
                .proposals_of_demand(demand_id)
                .await?
                .into_iter()
                .filter(|x| x.opc_id == opc.id)
                .collect())
        }
        _ => {
            app.store.demand(demand_id).await?;
            Ok(app.store.proposals_of_demand(demand_id).await?)
        }
    }
}

/// The proposals of the caller's OPC.
pub async fn my_proposals_for(app: &App, p: &Principal) -> AppResult<Vec<Proposal>> {
    let opc = opc_of(app, p).await?;
    Ok(app.store.proposals_of_opc(&opc.id).await?)
}

/// The demand a proposal is on (the pages go back to it).
pub async fn proposal_demand(app: &App, proposal_id: &str) -> AppResult<String> {
    Ok(app.store.proposal(proposal_id).await?.demand_id)
}

/// A proposal on one of the caller's company's demands.
async fn own_proposal(app: &App, p: &Principal, id: &str) -> AppResult<Proposal> {
    let pr = app.store.proposal(id).await?;
    own_demand(app, p, &pr.demand_id).await?;
    Ok(pr)
}

pub async fn shortlist_for(app: &App, p: &Principal, id: &str) -> AppResult<Proposal> {
    own_proposal(app, p, id).await?;
    Ok(app.store.set_proposal_status(&p.actor(), id, "shortlisted").await?)
}

pub async fn decline_for(app: &App, p: &Principal, id: &str) -> AppResult<Proposal> {
    own_proposal(app, p, id).await?;
    Ok(app.store.set_proposal_status(&p.actor(), id, "declined").await?)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct AcceptRequest {
    /// Default: the proposal's price.
    pub agreed_fen: Option<i64>,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
}

pub async fn accept_for(app: &App, p: &Principal, id: &str, r: &AcceptRequest) -> AppResult<Cooperation> {
    let pr = own_proposal(app, p, id).await?;
    // A demand past its deadline is expired, not open: it cannot be accepted any more.
    app.store.expire_demands().await?;
    check_acceptance(r.agreed_fen.unwrap_or(pr.price_fen), &r.milestones)?;
    let c = app.store.accept_proposal(&p.actor(), id, r.agreed_fen, &r.milestones).await?;
    app.matching.invalidate();
    Ok(c)
}

/// The question thread of a proposal: the company that owns the demand and the proposing OPC.
/// Returns the proposal and the user to notify when the caller writes.
async fn thread_party(app: &App, p: &Principal, id: &str) -> AppResult<(Proposal, String)> {
    let pr = app.store.proposal(id).await?;
    match p.role() {
        Role::Enterprise => {
            own_demand(app, p, &pr.demand_id).await?;
            let opc = app.store.opc(&pr.opc_id).await?;
            Ok((pr, opc.founder_user_id))
        }
        Role::OpcFounder => {
            let opc = opc_of(app, p).await?;
            if opc.id != pr.opc_id {
                return Err(AppError::not_found());
            }
            let d = app.store.demand(&pr.demand_id).await?;
            let e = app.store.enterprise(&d.enterprise_id).await?;
            Ok((pr, e.owner_user_id))
        }
        _ => Err(AppError::not_found()),
    }
}

pub async fn messages_for(app: &App, p: &Principal, id: &str) -> AppResult<Vec<Message>> {
    thread_party(app, p, id).await?;
    Ok(app.store.messages(id).await?)
}

/// A proposal's question thread, for a party to it: the proposal and its messages.
pub async fn thread_for(app: &App, p: &Principal, id: &str) -> AppResult<(Proposal, Vec<Message>)> {
    let messages = messages_for(app, p, id).await?;
    Ok((app.store.proposal(id).await?, messages))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewMessageRequest {
    pub body: Option<String>,
}

pub async fn post_message_for(app: &App, p: &Principal, id: &str, r: &NewMessageRequest) -> AppResult<Message> {
    let (_, other) = thread_party(app, p, id).await?;
    let mut c = opchub_domain::input::Checker::new();
    let body = c.text("body", r.body.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(), 1, 2000);
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app.store.add_message(&p.actor(), id, &p.user.id, &other, &body).await?)
}

// ---------------------------------------------------------------- cooperations

#[derive(serde::Serialize, ToSchema)]
pub struct CooperationDetail {
    pub cooperation: Cooperation,
    pub payments: Vec<Payment>,
    pub amendments: Vec<Amendment>,
    pub ratings: Vec<Rating>,
    /// `company`, `opc`, or absent for staff.
    pub my_side: Option<String>,
}

pub async fn cooperation_detail(app: &App, p: &Principal, id: &str) -> AppResult<CooperationDetail> {
    let c = visible_cooperation(app, p, id).await?;
    // Repair: a confirmed payment whose ledger append did not finish (crash) is posted now.
    for pid in app
        .store
        .payments(&c.id)
        .await?
        .iter()
        .filter(|x| x.status == "confirmed" && x.ledger_leaf_index.is_none())
    {
        post(app, &pid.id).await?;
    }
    Ok(CooperationDetail {
        payments: app.store.payments(&c.id).await?,
        amendments: app.store.amendments(&c.id).await?,
        ratings: app.store.ratings(&c.id).await?,
        my_side: c.side_of(&p.user.id).map(str::to_string),
        cooperation: c,
    })
}

/// What the cooperation page shows: the detail, what may still be recorded, today (Beijing,
/// the latest payment date), which sides rated and the amendment awaiting the OPC.
#[derive(serde::Serialize)]
pub struct CooperationView {
    pub detail: CooperationDetail,
    /// The agreed amount less the payments recorded and not void.
    pub remaining: i64,
    pub today: String,
    pub rated: Vec<String>,
    pub pending_amendment: Option<Amendment>,
}

pub async fn cooperation_view(app: &App, p: &Principal, id: &str) -> AppResult<CooperationView> {
    let detail = cooperation_detail(app, p, id).await?;
    Ok(CooperationView {
        remaining: detail.cooperation.agreed_fen - detail.cooperation.recorded_fen,
        today: opchub_ledger::event::day_of(opchub_store::now_ms()),
        rated: detail.ratings.iter().map(|r| r.rater_side.clone()).collect(),
        pending_amendment: detail.amendments.iter().find(|a| a.status == "proposed").cloned(),
        detail,
    })
}

pub async fn cooperations_for(app: &App, p: &Principal) -> AppResult<Vec<Cooperation>> {
    Ok(match p.role() {
        Role::Enterprise => {
            let pb = publisher_of(app, p).await?;
            app.store.cooperations_of(Some(&pb.enterprise_id), None).await?
        }
        Role::OpcFounder => {
            let opc = opc_of(app, p).await?;
            app.store.cooperations_of(None, Some(&opc.id)).await?
        }
        _ => app.store.cooperations_of(None, None).await?,
    })
}

#[derive(Deserialize, ToSchema, Default)]
pub struct NewPaymentRequest {
    #[serde(flatten)]
    pub payment: PaymentInput,
    /// The invoice file (its SHA-256 is recorded and goes into the ledger event).
    pub invoice: Option<FileUpload>,
}

pub async fn record_payment_for(app: &App, p: &Principal, coop_id: &str, r: &NewPaymentRequest) -> AppResult<Payment> {
    let coop = party_cooperation(app, p, coop_id, "company").await?;
    let np = check_payment(&r.payment).map_err(AppError::validation)?;
    let bytes = r.invoice.as_ref().map(decode).transpose()?;
    let file = match (&r.invoice, &bytes) {
        (Some(f), Some(b)) => Some(FileIn {
            name: &f.name,
            content_type: &f.content_type,
            bytes: b,
        }),
        _ => None,
    };
    // The store refuses a payment on an inactive cooperation; that answer comes before the
    // invoice file's own (as it always did).
    if coop.status != "active" {
        return Err(DemandError::CooperationNotActive.into());
    }
    if let Some(f) = &file {
        check_file(f)?;
    }
    Ok(app.store.record_payment(&p.actor(), coop_id, &np, file).await?)
}

async fn post(app: &App, payment_id: &str) -> AppResult<i64> {
    let Some(w) = app.ledger.as_ref() else {
        return Err(crate::ledger::LedgerError::Unavailable.into());
    };
    Ok(app.store.post_payment(w, payment_id).await?)
}

/// The cooperation a payment belongs to (the pages go back to it).
pub async fn payment_cooperation(app: &App, payment_id: &str) -> AppResult<String> {
    Ok(app.store.payment(payment_id).await?.cooperation_id)
}

/// A payment of a cooperation the caller is a party to on `side`; anything else is not found.
async fn party_payment(app: &App, p: &Principal, id: &str, side: Option<&str>) -> AppResult<Payment> {
    let pay = app.store.payment(id).await?;
    let c = app.store.cooperation(&pay.cooperation_id).await?;
    match (c.side_of(&p.user.id), side) {
        (Some(_), None) => Ok(pay),
        (Some(a), Some(b)) if a == b => Ok(pay),
        _ => Err(AppError::not_found()),
    }
}

/// The OPC confirms a payment of its own cooperation; the confirmed payment becomes one
/// `cooperation.payment` ledger event (M2.4).
pub async fn confirm_for(app: &App, p: &Principal, id: &str) -> AppResult<Payment> {
    party_payment(app, p, id, Some("opc")).await?;
    app.store.confirm_payment(&p.actor(), id).await?;
    post(app, id).await?;
    Ok(app.store.payment(id).await?)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ReasonRequest {
    pub reason: Option<String>,
}

pub async fn dispute_for(app: &App, p: &Principal, id: &str, r: &ReasonRequest) -> AppResult<Dispute> {
    party_payment(app, p, id, None).await?;
    let mut c = opchub_domain::input::Checker::new();
    let reason = c.text(
        "reason",
        r.reason.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        1000,
    );
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app.store.dispute_payment(&p.actor(), id, &reason).await?)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DisputeQuery {
    /// Only open disputes (default true).
    pub open: Option<bool>,
}

/// Disputes for the committee (only open ones unless `open_only` is false).
pub async fn disputes_for(app: &App, open_only: bool) -> AppResult<Vec<Dispute>> {
    Ok(app.store.disputes(open_only).await?)
}

/// Likely double claims (S3) for the committee.
pub async fn flags_for(app: &App) -> AppResult<Vec<Flag>> {
    Ok(app.store.flags().await?)
}

/// The committee's review board: open disputes, resolved ones and the S3 flags.
#[derive(serde::Serialize)]
pub struct ReviewBoard {
    pub open: Vec<Dispute>,
    pub resolved: Vec<Dispute>,
    pub flags: Vec<Flag>,
}

pub async fn review_board(app: &App) -> AppResult<ReviewBoard> {
    let open = app.store.disputes(true).await?;
    let all = app.store.disputes(false).await?;
    let flags = app.store.flags().await?;
    Ok(ReviewBoard {
        open,
        resolved: all.into_iter().filter(|x| x.status != "open").collect(),
        flags,
    })
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ResolveRequest {
    /// `upheld` (the payment counts) or `rejected` (void).
    pub resolution: Option<String>,
    pub note: Option<String>,
}

pub async fn resolve_for(app: &App, p: &Principal, id: &str, r: &ResolveRequest) -> AppResult<Dispute> {
    let mut c = opchub_domain::input::Checker::new();
    let note = c.text("note", r.note.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(), 2, 1000);
    let resolution = r.resolution.as_deref().unwrap_or("").trim().to_string();
    if !matches!(resolution.as_str(), "upheld" | "rejected") {
        c.errors.insert("resolution".into(), "unknown_resolution".into());
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let d = app.store.resolve_dispute(&p.actor(), id, &resolution, &note).await?;
    if resolution == "upheld" {
        post(app, &d.payment_id).await?;
    }
    Ok(d)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct AmendRequest {
    pub agreed_fen: Option<i64>,
    pub reason: Option<String>,
}

pub async fn amend_for(app: &App, p: &Principal, coop_id: &str, r: &AmendRequest) -> AppResult<Amendment> {
    let coop = party_cooperation(app, p, coop_id, "company").await?;
    let mut c = opchub_domain::input::Checker::new();
    let reason = c.text(
        "reason",
        r.reason.as_deref().map(|m| m.replace(['\n', '\r'], " ")).as_deref(),
        2,
        1000,
    );
    match r.agreed_fen {
        None => {
            c.errors.insert("agreed_fen".into(), "required".into());
        }
        Some(v) if v < 0 => {
            c.errors.insert("agreed_fen".into(), "negative_amount".into());
        }
        _ => {}
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    if coop.status != "active" {
        return Err(DemandError::CooperationNotActive.into());
    }
    check_agreed(r.agreed_fen.unwrap_or(0))?;
    Ok(app
        .store
        .propose_amendment(&p.actor(), coop_id, r.agreed_fen.unwrap_or(0), &reason)
        .await?)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DecideRequest {
    pub accept: bool,
}

pub async fn decide_for(app: &App, p: &Principal, id: &str, accept: bool) -> AppResult<Amendment> {
    let a = app.store.amendment(id).await?;
    party_cooperation(app, p, &a.cooperation_id, "opc").await?;
    Ok(app.store.decide_amendment(&p.actor(), id, accept).await?)
}

/// The OPC decides an amendment of the cooperation `coop_id` (the page's form names both).
pub async fn decide_in_cooperation(app: &App, p: &Principal, coop_id: &str, amendment_id: &str, accept: bool) -> AppResult<Amendment> {
    let a = app.store.amendment(amendment_id).await?;
    if a.cooperation_id != coop_id {
        return Err(AppError::not_found());
    }
    decide_for(app, p, amendment_id, accept).await
}

pub async fn complete_for(app: &App, p: &Principal, id: &str) -> AppResult<Cooperation> {
    party_cooperation(app, p, id, "company").await?;
    let c = app.store.complete_cooperation(&p.actor(), id).await?;
    app.matching.invalidate();
    Ok(c)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct RateRequest {
    /// 1..=5
    pub score: Option<i64>,
    #[serde(default)]
    pub comment: String,
}

pub async fn rate_for(app: &App, p: &Principal, id: &str, r: &RateRequest) -> AppResult<Rating> {
    let c = visible_cooperation(app, p, id).await?;
    let Some(side) = c.side_of(&p.user.id) else {
        return Err(AppError::not_found());
    };
    let Some(score) = r.score else {
        return Err(AppError::field("score", "required"));
    };
    if c.status != "completed" {
        return Err(DemandError::CooperationNotCompleted.into());
    }
    check_rating(score, &r.comment)?;
    let rating = app.store.rate(&p.actor(), id, side, score, &r.comment).await?;
    app.matching.invalidate();
    Ok(rating)
}

#[derive(serde::Serialize, ToSchema)]
pub struct CooperationSummary {
    pub enterprise_id: String,
    pub year: i32,
    /// Payments confirmed by both sides this year, from the ledger (M2.4's base).
    pub confirmed_fen: i64,
    /// M2.4's yearly cap for the publishing company (500,000 yuan), in fen.
    pub cap_fen: i64,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    pub year: Option<i32>,
}

pub async fn summary_for(app: &App, p: &Principal, year: Option<i32>) -> AppResult<CooperationSummary> {
    let pb = publisher_of(app, p).await?;
    let year = year.unwrap_or_else(|| opchub_ledger::event::day_of(opchub_store::now_ms())[..4].parse().unwrap_or(2026));
    Ok(CooperationSummary {
        confirmed_fen: app.store.confirmed_cooperation_total(&pb.enterprise_id, year).await?,
        enterprise_id: pb.enterprise_id,
        year,
        cap_fen: 50_000_000,
    })
}

// ---------------------------------------------------------------- notifications

#[derive(serde::Serialize, ToSchema)]
pub struct Notifications {
    pub unread: i64,
    pub items: Vec<Notification>,
}

/// The caller's latest notifications (at most 100) and how many are unread.
pub async fn notifications_for(app: &App, p: &Principal) -> AppResult<Notifications> {
    Ok(Notifications {
        unread: app.store.unread_notifications(&p.user.id).await?,
        items: app.store.notifications(&p.user.id, 100).await?,
    })
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ReadRequest {
    /// One notification; omit to mark all read.
    pub id: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct ReadResult {
    pub marked: u64,
    pub unread: i64,
}

/// Marks one of the caller's notifications (or, with `None`, all) read.
pub async fn mark_read_for(app: &App, p: &Principal, id: Option<&str>) -> AppResult<ReadResult> {
    let marked = app.store.mark_notifications_read(&p.user.id, id).await?;
    Ok(ReadResult {
        marked,
        unread: app.store.unread_notifications(&p.user.id).await?,
    })
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

    #[test]
    fn files_acceptances_and_ratings_are_checked_with_the_store_codes() {
        let f = |name: &'static str, ct: &'static str, bytes: &'static [u8]| FileIn {
            name,
            content_type: ct,
            bytes,
        };
        let code = |r: AppResult<()>| r.err().and_then(|e| e.fields.get("file").cloned()).unwrap_or_default();
        assert!(check_file(&f("a.pdf", "application/pdf", b"%PDF")).is_ok());
        assert_eq!(code(check_file(&f("a.pdf", "application/pdf", b""))), "empty_file");
        assert_eq!(
            code(check_file(&f("a.exe", "application/x-msdownload", b"MZ"))),
            "file_type_not_allowed"
        );
        assert_eq!(code(check_file(&f("a/b.txt", "text/plain", b"x"))), "invalid_file_name");
        // The content must be what the type says (issue 20, finding 10).
        let svg: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
        assert_eq!(code(check_file(&f("a.png", "image/png", svg))), "file_content_mismatch");
        assert_eq!(
            code(check_file(&f("a.txt", "text/plain", b"\x7fELF\x02\x01\x01\x00"))),
            "file_content_mismatch"
        );
        assert_eq!(
            code(check_file(&f("a.txt", "text/plain", b"MZ\x90\x00\x03\x00"))),
            "file_content_mismatch"
        );
        assert!(check_file(&f("a.txt", "text/plain", "说明：交付物清单\n".as_bytes())).is_ok());
        assert!(check_file(&f(
            "a.png",
            "image/png",
            &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        ))
        .is_ok());
        let m = |amount_fen| Milestone {
            title: "交付".into(),
            amount_fen,
            due: None,
        };
        assert!(check_acceptance(100, &[m(60), m(40)]).is_ok());
        let e = check_acceptance(100, &[m(60), m(50)]).err().unwrap_or_else(AppError::internal);
        assert_eq!(e.fields["milestones"], "milestones_above_agreed");
        let e = check_acceptance(0, &[]).err().unwrap_or_else(AppError::internal);
        assert_eq!(e.fields["agreed_fen"], "required");
        let e = check_rating(6, "").err().unwrap_or_else(AppError::internal);
        assert_eq!(e.fields["score"], "score_out_of_range");
    }
}
