//! 免申即享 settlement (issue 6): the policy's clauses, a beneficiary's own "what can I get"
//! calculation, settlement batches (draft from the ledger, beneficiary confirmation, committee
//! approval consuming the cap ledger, CSV/XLSX export for finance), what-if runs that save
//! nothing, F3 exclusion list imports and the S3 register of other grants. The computation is
//! `opchub_settle`'s; this module checks input and callers and orchestrates it over the store.

use crate::{App, AppError, AppResult, ErrorKind, Principal};
use chrono::NaiveDate;
use opchub_domain::Role;
use opchub_policy::Policy;
use opchub_settle::{ClauseDiff, ClauseTotal, SettleError};
use opchub_store::settlement::{Batch, ExclusionList, Line, LineFilter, OverlapGrant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

crate::module_errors! {
    /// What settlement batches refuse.
    pub enum SettlementError {
        /// The facts do not fit the policy's input.
        PolicyInput => (BadRequest, "policy_input"),
        /// The batch was computed on facts that have since changed.
        BatchStale => (Conflict, "batch_stale"),
        /// The batch is not approved yet.
        BatchNotApproved => (Conflict, "batch_not_approved"),
    }
}

/// At most this many lines in one batch response (the export has them all).
pub const MAX_LINES: i64 = 2000;

/// The measures in force (an internal error when none is loaded).
pub fn policy(app: &App) -> AppResult<Arc<Policy>> {
    app.policy.clone().ok_or_else(AppError::internal)
}

/// How a settlement or application error reaches the caller.
pub fn settle_error(e: SettleError) -> AppError {
    match e {
        SettleError::Store(e) => e.into(),
        SettleError::Policy(e) => AppError::from(SettlementError::PolicyInput).with_detail(e.to_string()),
        SettleError::Bad { field, message } => AppError::field(field, "invalid").with_detail(message),
    }
}

/// Today in Beijing (the one definition, in `opchub_domain::time`).
pub use opchub_domain::time::beijing_today as today;

fn default_as_of(year: i32) -> NaiveDate {
    opchub_settle::run::default_as_of(year)
}

fn expand(clauses: &[String]) -> Vec<String> {
    opchub_settle::run::expand_clauses(clauses)
}

// ---------------------------------------------------------------- clauses

#[derive(Serialize, ToSchema)]
pub struct ParamView {
    pub name: String,
    pub value: String,
    pub source: String,
    pub version: String,
    pub valid_from: String,
    pub cite: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClauseView {
    pub id: String,
    pub title_zh: String,
    pub title_en: String,
    pub summary: String,
    pub summary_zh: String,
    pub kind: String,
    pub beneficiary: Option<String>,
    pub basis: Option<String>,
    /// The fact the basis is read from (`discounts`, `paid_calls`, …): pages name it in their language.
    pub basis_fact: Option<String>,
    pub cap_scope: Option<String>,
    pub overlap_group: Option<String>,
    pub pays: bool,
    /// Settled from platform data without an application (免申即享).
    pub settled: bool,
    /// The values in force today (or at the window's start before it opens).
    pub params: Vec<ParamView>,
}

pub fn clause_views(p: &Policy, as_of: NaiveDate) -> Vec<ClauseView> {
    p.clauses
        .iter()
        .map(|c| ClauseView {
            id: c.id.clone(),
            title_zh: c.title_zh.clone(),
            title_en: c.title_en.clone(),
            summary: c.summary.clone(),
            summary_zh: c.summary_zh.clone(),
            kind: c.kind.clone(),
            beneficiary: c.beneficiary.map(|r| r.as_str().to_string()),
            basis: c.basis.clone(),
            basis_fact: c.rule.as_ref().and_then(|r| r.basis_fact()).map(str::to_string),
            cap_scope: c.cap_scope.map(|s| s.as_str().to_string()),
            overlap_group: c.overlap_group.clone(),
            pays: c.pays(),
            settled: opchub_settle::SETTLED_CLAUSES.contains(&c.id.as_str()),
            params: c
                .param_names()
                .into_iter()
                .filter_map(|n| c.param(n, as_of).or_else(|| c.params.iter().find(|x| x.name == n)))
                .map(|x| ParamView {
                    name: x.name.clone(),
                    value: x.value.to_string(),
                    source: x.source.as_str().to_string(),
                    version: x.version.clone(),
                    valid_from: x.valid_from.to_string(),
                    cite: x.cite.clone(),
                })
                .collect(),
        })
        .collect()
}

/// Every clause with the values in force today.
pub fn clauses(app: &App) -> AppResult<Vec<ClauseView>> {
    let p = policy(app)?;
    Ok(clause_views(&p, today()))
}

/// The S3 overlap groups the policy names, sorted, each once.
pub fn overlap_groups(p: &Policy) -> Vec<String> {
    let mut groups: Vec<String> = p.clauses.iter().filter_map(|c| c.overlap_group.clone()).collect();
    groups.sort();
    groups.dedup();
    groups
}

// ---------------------------------------------------------------- calculator

#[derive(Serialize, ToSchema)]
pub struct Estimate {
    pub clause: String,
    pub eligible: Option<bool>,
    /// What is still to come this year: the entitlement less what was already approved
    /// (negative when a lowered entitlement will be recovered); `null` when undetermined (facts
    /// missing): such an answer has no amount (issue 17).
    pub amount_fen: Option<i64>,
    /// The year-to-date entitlement (`null` when undetermined).
    pub entitlement_fen: Option<i64>,
    /// What batches already approved for this clause this year.
    pub approved_fen: i64,
    /// The engine's decision: reasons, missing facts, trace.
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
}

/// Who the caller is as a beneficiary: its OPC, the communities it operates, its company.
pub async fn beneficiary_of(app: &App, p: &Principal) -> AppResult<Option<String>> {
    Ok(match p.role() {
        Role::OpcFounder => app.store.opc_of_founder(&p.user.id).await?.map(|o| o.id),
        Role::CommunityOperator => Some(p.user.id.clone()),
        Role::Enterprise => app.store.enterprise_of_owner(&p.user.id).await?.map(|e| e.id),
        _ => None,
    })
}

/// 政策计算器: what the caller would get this year from its own platform data, saving nothing.
pub async fn estimate_for(app: &App, p: &Principal, year: i32) -> AppResult<Vec<Estimate>> {
    let pol = policy(app)?;
    let Some(me) = beneficiary_of(app, p).await? else {
        return Ok(vec![]);
    };
    let as_of = default_as_of(year);
    if opchub_settle::check_request(&pol, year, &[], as_of).is_err() {
        return Ok(vec![]);
    }
    let inputs = opchub_settle::run::load_inputs_for(&app.store, &pol, year, as_of, &me)
        .await
        .map(opchub_settle::entitlement_inputs)
        .map_err(settle_error)?;
    let granted: BTreeMap<String, i64> = app
        .store
        .settlement_grants_of(&me)
        .await?
        .into_iter()
        .filter(|g| g.year == i64::from(year))
        .map(|g| (g.clause, g.approved_fen))
        .collect();
    let cands: Vec<_> = opchub_settle::run::candidates(&pol, &inputs, year, as_of, &[])
        .into_iter()
        .filter(|c| c.party.id == me)
        .collect();
    let computed = opchub_settle::compute_with(&pol, &cands, year, as_of, inputs.applications_fen, &|_| {}).map_err(settle_error)?;
    Ok(computed
        .lines
        .into_iter()
        .map(|l| {
            let approved = granted.get(&l.clause).copied().unwrap_or(0);
            let answer = opchub_domain::grant::Answer::from_code(&l.eligible);
            let known = answer != opchub_domain::grant::Answer::Undetermined;
            Estimate {
                eligible: match answer {
                    opchub_domain::grant::Answer::Eligible => Some(true),
                    opchub_domain::grant::Answer::NotEligible => Some(false),
                    opchub_domain::grant::Answer::Undetermined => None,
                },
                amount_fen: known.then(|| opchub_domain::grant::draft_delta(l.amount_fen, answer, approved)),
                entitlement_fen: known.then_some(l.amount_fen),
                approved_fen: approved,
                clause: l.clause,
                decision: serde_json::from_str(&l.decision).unwrap_or_default(),
            }
        })
        .collect())
}

/// What of a publisher's skill revenue this year counts for M2.3 and what does not, and why
/// (issue 19 item 5) — the settlement engine's own reading of the ledger and the bills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublisherBasis {
    pub year: i32,
    /// Qualified revenue on bills paid and confirmed, between OPCs eligible that day: M2.3's basis.
    pub counted_fen: i64,
    /// Qualified revenue on issued bills not yet paid and confirmed (the line is held until then).
    pub waiting_payment_fen: i64,
    /// Those bills: (bill id, total fen, confirmed fen).
    pub unpaid_bills: Vec<(String, i64, i64)>,
    /// Revenue of months whose bills are not issued yet (the running bill): (month, fen).
    pub running: Vec<(String, i64)>,
    /// Calls the platform marked not qualified (failed, self-dealing, unreviewed version).
    pub not_qualified: Vec<opchub_store::skills::NotQualifiedCalls>,
    /// Revenue among the parties of an upheld integrity finding: (finding, detector, fen).
    pub voided_by_findings: Vec<(String, String, i64)>,
    /// Other revenue that does not count: the invoker or the publisher was not an eligible
    /// OPC on the day of the call (not registered, or not yet on the platform).
    pub not_eligible_fen: i64,
}

/// Splits a publisher's M2.3 candidate into what counts and what does not (pure).
fn publisher_basis(
    year: i32,
    c: Option<&opchub_settle::run::Candidate>,
    not_qualified: Vec<opchub_store::skills::NotQualifiedCalls>,
) -> PublisherBasis {
    let mut b = PublisherBasis {
        year,
        not_qualified,
        ..Default::default()
    };
    let Some(c) = c else {
        return b;
    };
    let (mut yes, mut no) = (0i64, 0i64);
    for e in c.facts.get("paid_calls").and_then(|v| v.as_array()).into_iter().flatten() {
        let fen = e["amount_fen"].as_i64().unwrap_or(0);
        if e["qualified"] == true {
            yes += fen;
        } else {
            no += fen;
        }
    }
    b.counted_fen = yes;
    b.waiting_payment_fen = c.unpaid_usage_fen;
    b.unpaid_bills = c.unpaid_bills.clone();
    b.running = c.unbilled.clone();
    b.voided_by_findings = c
        .upheld
        .iter()
        .map(|(id, detector, fen, _)| (id.clone(), detector.clone(), *fen))
        .collect();
    let marked: i64 = b.not_qualified.iter().map(|n| n.charged_fen).sum();
    let voided: i64 = b.voided_by_findings.iter().map(|v| v.2).sum();
    b.not_eligible_fen = (no - marked - voided).max(0);
    b
}

/// [`PublisherBasis`] of the caller's OPC this year (none for a caller without an OPC).
pub async fn publisher_basis_for(app: &App, p: &Principal, year: i32) -> AppResult<Option<PublisherBasis>> {
    let pol = policy(app)?;
    let Some(me) = app.store.opc_of_founder(&p.user.id).await?.map(|o| o.id) else {
        return Ok(None);
    };
    let as_of = default_as_of(year);
    if opchub_settle::check_request(&pol, year, &[], as_of).is_err() {
        return Ok(Some(PublisherBasis {
            year,
            ..Default::default()
        }));
    }
    let inputs = opchub_settle::run::load_inputs_for(&app.store, &pol, year, as_of, &me)
        .await
        .map_err(settle_error)?;
    let cands = opchub_settle::run::candidates(&pol, &inputs, year, as_of, &["M2.3-publisher".to_string()]);
    let not_qualified = app
        .store
        .skill_calls_not_qualified(&me, &format!("{year:04}-01-01"), &as_of.to_string())
        .await?;
    Ok(Some(publisher_basis(year, cands.iter().find(|c| c.party.id == me), not_qualified)))
}

/// The calculator's view: the estimates, their total, and the caller's cap headroom.
pub struct Calculator {
    pub estimates: Vec<Estimate>,
    pub total_fen: i64,
    pub caps: Vec<opchub_store::caps::CapUse>,
}

pub async fn calculator_for(app: &App, p: &Principal, year: i32) -> AppResult<Calculator> {
    let estimates = estimate_for(app, p, year).await?;
    let total_fen = estimates.iter().filter_map(|e| e.amount_fen).sum();
    let caps = match beneficiary_of(app, p).await {
        Ok(Some(me)) => app.store.caps_of(&me).await.unwrap_or_default(),
        _ => vec![],
    };
    Ok(Calculator {
        estimates,
        total_fen,
        caps,
    })
}

/// The year a calculation is for by default: this year in Beijing.
pub fn this_year() -> i32 {
    opchub_settle::run::year_of(today())
}

// ---------------------------------------------------------------- batches

#[derive(Deserialize, ToSchema)]
pub struct NewSettlement {
    pub year: i32,
    /// Clause IDs (empty = all settled clauses; `M2.3` = publisher and invoker).
    #[serde(default)]
    pub clauses: Vec<String>,
    /// `YYYY-MM-DD`; default today (or the year's last day).
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct SettlementCreated {
    pub batch: Batch,
    #[schema(value_type = Object)]
    pub per_clause: BTreeMap<String, ClauseTotal>,
}

pub async fn create_for(app: &App, p: &Principal, r: NewSettlement) -> AppResult<SettlementCreated> {
    let pol = policy(app)?;
    let clauses = expand(&r.clauses);
    let as_of = r.as_of.unwrap_or_else(|| default_as_of(r.year));
    let settled = opchub_settle::settle(&app.store, &p.actor(), &pol, r.year, &clauses, as_of, &|_, _, _| {})
        .await
        .map_err(settle_error)?;
    Ok(SettlementCreated {
        batch: settled.batch,
        per_clause: settled.per_clause,
    })
}

pub async fn batches(app: &App) -> AppResult<Vec<Batch>> {
    Ok(app.store.settlement_batches().await?)
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub batch: Batch,
    /// At most 2,000 lines (filter by clause, or export for all).
    pub lines: Vec<Line>,
}

/// A batch with at most [`MAX_LINES`] of its lines (of one clause; only payable ones).
pub async fn batch_view(app: &App, id: &str, clause: Option<String>, payable: bool) -> AppResult<BatchView> {
    let batch = app.store.settlement_batch(id).await?;
    let lines = app
        .store
        .settlement_lines(
            id,
            &LineFilter {
                clause: clause.filter(|c| !c.is_empty()),
                payable,
                limit: Some(MAX_LINES),
            },
        )
        .await?;
    Ok(BatchView { batch, lines })
}

/// The second signature: a committee member other than the drafter approves a draft (issue 17).
/// A draft whose basis changed since (a new policy version, exclusion list, ledger correction or
/// finding) is refused as `batch_stale` — it may overstate what is due; draft again.
pub async fn approve_for(app: &App, p: &Principal, id: &str) -> AppResult<Batch> {
    let pol = policy(app)?;
    let batch = app.store.settlement_batch(id).await?;
    if batch.status == "draft" {
        let now = opchub_settle::basis_mark(&app.store, &pol, i32::try_from(batch.year).unwrap_or_default())
            .await
            .map_err(settle_error)?;
        if batch.basis_mark.as_deref().is_some_and(|m| m != now) {
            return Err(SettlementError::BatchStale.into());
        }
    }
    let today = today();
    let days = crate::applications::days_param(&pol, "recovery_due_days", 30);
    let due = today.checked_add_days(chrono::Days::new(u64::from(days))).unwrap_or(today);
    // F1: the policy-wide yearly budget, checked again inside the approval's transaction
    // together with the year's application approvals (they queue on the same row).
    let as_of = opchub_settle::run::default_as_of(i32::try_from(batch.year).unwrap_or_default());
    let budget = match pol.param("yearly_budget", as_of).map(|p| &p.value) {
        Some(opchub_policy::ParamValue::Fen(b)) => Some(*b),
        _ => None,
    };
    Ok(app.store.approve_settlement(&p.actor(), id, &due.to_string(), budget).await?)
}

/// One line finance pays, with its bank reference.
#[derive(Deserialize, ToSchema)]
pub struct PayLine {
    pub clause: String,
    pub beneficiary: String,
    /// The bank's reference of the transfer (流水号).
    pub payment_reference: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PaySettlement {
    /// Finance's payment batch reference (unique across all payment batches).
    pub reference: String,
    /// The approved lines paid now (each once).
    pub lines: Vec<PayLine>,
}

/// Finance pays approved lines of an approved batch (issue 17): approver ≠ payer, a bank
/// reference per line; only then does a line read 已拨付.
pub async fn pay_for(app: &App, p: &Principal, id: &str, r: PaySettlement) -> AppResult<Batch> {
    let items: Vec<opchub_store::grants::LinePayment> = r
        .lines
        .into_iter()
        .map(|l| opchub_store::grants::LinePayment {
            clause: l.clause,
            beneficiary: l.beneficiary,
            payment_reference: l.payment_reference,
        })
        .collect();
    Ok(app.store.pay_settlement(&p.actor(), id, &r.reference, &items).await?)
}

/// Recovery orders of settlement keys: all of them for the committee and finance, the caller's
/// own for a beneficiary.
pub async fn recoveries_for(app: &App, p: &Principal) -> AppResult<Vec<opchub_store::grants::SettlementRecovery>> {
    match p.role() {
        Role::Committee | Role::Finance | Role::PlatformOperator => Ok(app.store.settlement_recoveries(None).await?),
        _ => match beneficiary_of(app, p).await? {
            Some(me) => Ok(app.store.settlement_recoveries(Some(&me)).await?),
            None => Ok(vec![]),
        },
    }
}

#[derive(Deserialize, ToSchema)]
pub struct Repay {
    pub amount_fen: i64,
    /// The bank reference of the repayment.
    pub reference: String,
}

/// Finance records a beneficiary's repayment of a settlement recovery order (F2, S5).
pub async fn repay_for(app: &App, p: &Principal, id: &str, r: Repay) -> AppResult<opchub_store::grants::SettlementRecovery> {
    Ok(app
        .store
        .repay_settlement_recovery(&p.actor(), id, r.amount_fen, &r.reference)
        .await?)
}

/// An approved batch exported for finance.
pub struct Export {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub file_name: String,
}

/// The export of an approved batch for finance: `csv` (default) or `xlsx`, with the headers and
/// labels of the reader's language, each payable line's beneficiary name, USCC and bank account
/// (as set now by its owner), and a totals row.
pub async fn export_for(app: &App, id: &str, format: Option<&str>, labels: &opchub_settle::export::Labels) -> AppResult<Export> {
    let format = format.unwrap_or("csv");
    if !["csv", "xlsx"].contains(&format) {
        return Err(AppError::field("format", "invalid"));
    }
    let batch = app.store.settlement_batch(id).await?;
    if batch.status == "draft" {
        return Err(SettlementError::BatchNotApproved.into());
    }
    let lines = app.store.settlement_lines(id, &LineFilter::default()).await?;
    let banks = crate::party_facts::payout_accounts(app).await?;
    let rows = opchub_settle::export::rows(&batch, &lines, &banks);
    let (bytes, content_type) = if format == "csv" {
        (
            opchub_settle::export::csv(&rows, labels).map_err(|e| AppError::internal_from("csv export", e))?,
            "text/csv; charset=utf-8",
        )
    } else {
        (
            opchub_settle::export::xlsx(&rows, labels).map_err(|e| AppError::internal_from("xlsx export", e))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    };
    Ok(Export {
        bytes,
        content_type,
        file_name: format!("{}-{}-{}.{format}", labels.file, batch.year, batch.id),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct WhatIf {
    pub year: i32,
    #[serde(default)]
    pub clauses: Vec<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    /// Changes such as `M2.3-publisher.revenue_rate=0.30`.
    pub set: Vec<String>,
}

pub async fn what_if_for(app: &App, r: WhatIf) -> AppResult<Vec<ClauseDiff>> {
    if r.set.is_empty() {
        return Err(AppError::field("set", "required"));
    }
    let pol = policy(app)?;
    let as_of = r.as_of.unwrap_or_else(|| default_as_of(r.year));
    opchub_settle::what_if_live(&app.store, &pol, &r.set, r.year, &expand(&r.clauses), as_of)
        .await
        .map_err(settle_error)
}

// ---------------------------------------------------------------- confirmation (意愿确认)

#[derive(Serialize, ToSchema)]
pub struct MyLine {
    pub batch: Batch,
    pub line: Line,
}

/// What the caller's party was granted per clause and year (approved, paid, recovered).
pub async fn my_grants(app: &App, p: &Principal) -> AppResult<Vec<opchub_store::grants::GrantView>> {
    match beneficiary_of(app, p).await? {
        Some(me) => Ok(app.store.settlement_grants_of(&me).await?),
        None => Ok(vec![]),
    }
}

/// The settlement lines of the caller's own parties.
pub async fn mine(app: &App, p: &Principal) -> AppResult<Vec<MyLine>> {
    let rows = app.store.settlement_lines_of_owner(&p.user.id).await?;
    Ok(rows.into_iter().map(|(batch, line)| MyLine { batch, line }).collect())
}

/// One settlement line with its batch, for its statement (结算单, issue 21 item 6): the
/// line's owner, and the committee, finance and the auditor (others: `not_found`).
pub async fn line_for(app: &App, p: &Principal, batch_id: &str, clause: &str, beneficiary: &str) -> AppResult<MyLine> {
    let batch = app.store.settlement_batch(batch_id).await?;
    let filter = opchub_store::settlement::LineFilter {
        clause: Some(clause.to_string()),
        ..Default::default()
    };
    let line = app
        .store
        .settlement_lines(batch_id, &filter)
        .await?
        .into_iter()
        .find(|l| l.beneficiary == beneficiary)
        .ok_or_else(AppError::not_found)?;
    let staff = matches!(p.role(), Role::Committee | Role::Finance | Role::Auditor);
    if !staff && line.owner_user_id.as_deref() != Some(p.user.id.as_str()) {
        return Err(AppError::not_found());
    }
    Ok(MyLine { batch, line })
}

#[derive(Deserialize, ToSchema)]
pub struct Confirm {
    pub batch: String,
    pub clause: String,
    pub beneficiary: String,
    /// `true` accepts, `false` declines.
    pub accept: bool,
}

pub async fn confirm_for(app: &App, p: &Principal, r: &Confirm) -> AppResult<Line> {
    Ok(app
        .store
        .confirm_settlement_line(&p.actor(), &r.batch, &r.clause, &r.beneficiary, r.accept)
        .await?)
}

// ---------------------------------------------------------------- F3 lists, S3 register

pub async fn exclusion_lists(app: &App) -> AppResult<Vec<ExclusionList>> {
    Ok(app.store.exclusion_lists().await?)
}

/// F3: imports a new version of an exclusion list from its CSV.
pub async fn import_for(app: &App, p: &Principal, kind: &str, file_name: &str, body: &[u8]) -> AppResult<ExclusionList> {
    let (rows, sha) = opchub_settle::lists::parse(kind, body).map_err(|e| {
        let field = if e.line > 0 {
            format!("line {}: {}", e.line, e.field)
        } else {
            e.field.clone()
        };
        AppError::new(ErrorKind::Invalid, e.code).with_detail(format!("{field}: {}", e.message))
    })?;
    Ok(app.store.import_exclusions(&p.actor(), kind, file_name, &sha, &rows).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct IndustryCodeChange {
    /// GB/T 4754-2017 code (`I6513`, `6513`, `C25`…); null or empty clears it.
    pub industry_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IndustryCodeSet {
    pub kind: String,
    pub id: String,
    /// The normalised code (section letter + digits), or null.
    pub industry_code: Option<String>,
}

/// Records a party's main industry, checked against its licence by the committee or the platform
/// operator. F3's restricted-industry catalogue is matched by it (a party without one is
/// "information missing" while a catalogue by code is in force).
pub async fn set_industry_code_for(
    app: &App,
    p: &Principal,
    kind: String,
    id: String,
    r: &IndustryCodeChange,
) -> AppResult<IndustryCodeSet> {
    let mut c = opchub_domain::input::Checker::default();
    let code = c.industry_code("industry_code", r.industry_code.as_deref());
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let code = code.map(|c| c.to_string());
    app.store.set_industry_code(&p.actor(), &kind, &id, code.as_deref()).await?;
    Ok(IndustryCodeSet {
        kind,
        id,
        industry_code: code,
    })
}

#[derive(Deserialize, ToSchema)]
pub struct NewOverlap {
    pub beneficiary: String,
    pub overlap_group: String,
    pub year: i64,
    /// The other policy (e.g. "市级算力券").
    pub policy: String,
    /// `national`, `municipal`, `district` or `other` (default).
    #[serde(default)]
    pub level: Option<String>,
    /// The item the other policy paid for: invoice or contract number.
    #[serde(default)]
    pub item_key: Option<String>,
    pub amount_fen: i64,
}

/// S3 register levels.
pub const OVERLAP_LEVELS: &[&str] = &["national", "municipal", "district", "other"];

/// S3: records a grant from another policy in an overlap group.
pub async fn add_overlap_for(app: &App, p: &Principal, r: NewOverlap) -> AppResult<OverlapGrant> {
    let pol = policy(app)?;
    let mut c = opchub_domain::input::Checker::default();
    if r.beneficiary.trim().is_empty() {
        c.fail("beneficiary", "required");
    }
    if !pol
        .clauses
        .iter()
        .any(|cl| cl.overlap_group.as_deref() == Some(r.overlap_group.as_str()))
    {
        c.fail("overlap_group", "invalid");
    }
    if r.policy.trim().is_empty() || r.policy.chars().count() > 200 {
        c.fail("policy", "required");
    }
    if r.amount_fen < 0 {
        c.fail("amount_fen", "out_of_range");
    }
    if !(2000..=2100).contains(&r.year) {
        c.fail("year", "out_of_range");
    }
    let level = r
        .level
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("other")
        .to_string();
    if !OVERLAP_LEVELS.contains(&level.as_str()) {
        c.fail("level", "not_an_option");
    }
    let item_key = r.item_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
    if item_key
        .as_ref()
        .is_some_and(|k| k.chars().count() > 64 || k.chars().any(char::is_control))
    {
        c.fail("item_key", "bad_text");
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let g = OverlapGrant {
        id: String::new(),
        beneficiary: r.beneficiary.trim().to_string(),
        overlap_group: r.overlap_group,
        year: r.year,
        policy: r.policy.trim().to_string(),
        level,
        item_key,
        amount_fen: r.amount_fen,
        recorded_by: None,
        created_at: 0,
    };
    Ok(app.store.record_overlap_grant(&p.actor(), &g).await?)
}

/// The S3 register of one year (default this year).
pub async fn overlaps(app: &App, year: Option<i32>) -> AppResult<Vec<OverlapGrant>> {
    let year = year.unwrap_or_else(this_year);
    Ok(app.store.overlap_grants(i64::from(year)).await?)
}
