//! 免申即享 settlement API (issue 6): the policy's clauses, a beneficiary's own "what can I get"
//! calculation, settlement batches (draft from the ledger, beneficiary confirmation, committee
//! approval consuming the cap ledger, CSV/XLSX export for finance), what-if runs that save
//! nothing, F3 exclusion list imports and the S3 register of other grants.

use super::ApiJson;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use opchub_domain::Role;
use opchub_policy::Policy;
use opchub_settle::{ClauseDiff, ClauseTotal, SettleError};
use opchub_store::settlement::{Batch, ExclusionList, Line, LineFilter, OverlapGrant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// At most this many lines in one batch response (the export has them all).
pub const MAX_LINES: i64 = 2000;

pub fn policy(s: &AppState) -> ApiResult<Arc<Policy>> {
    s.policy.clone().ok_or_else(ApiError::internal)
}

/// How a settlement or application error reaches the caller.
pub(crate) fn settle_error(e: SettleError) -> ApiError {
    match e {
        SettleError::Store(e) => e.into(),
        SettleError::Policy(e) => ApiError::bad_request("policy_input").with_detail(e.to_string()),
        SettleError::Bad { field, message } => {
            let mut err = ApiError::field(field, "invalid");
            err = err.with_detail(message);
            err
        }
    }
}

/// Today in Beijing.
pub fn today() -> NaiveDate {
    opchub_settle::run::today()
}

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

#[utoipa::path(get, path = "/api/v1/policy/clauses", tag = "policy", responses((status = 200, body = [ClauseView])))]
pub async fn clauses(State(s): State<AppState>) -> ApiResult<Json<Vec<ClauseView>>> {
    let p = policy(&s)?;
    Ok(Json(clause_views(&p, today())))
}

// ---------------------------------------------------------------- calculator

#[derive(Deserialize, IntoParams)]
pub struct YearQuery {
    /// Calendar year (default: this year).
    pub year: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct Estimate {
    pub clause: String,
    pub eligible: Option<bool>,
    pub amount_fen: i64,
    /// The engine's decision: reasons, missing facts, trace.
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
}

/// Who the caller is as a beneficiary: its OPC, the communities it operates, its company.
pub async fn beneficiary_of(s: &AppState, p: &Principal) -> ApiResult<Option<String>> {
    Ok(match p.role() {
        Role::OpcFounder => s.store.opc_of_founder(&p.user.id).await?.map(|o| o.id),
        Role::CommunityOperator => Some(p.user.id.clone()),
        Role::Enterprise => s.store.enterprise_of_owner(&p.user.id).await?.map(|e| e.id),
        _ => None,
    })
}

/// 政策计算器: what the caller would get this year from its own platform data, saving nothing.
pub async fn estimate_for(s: &AppState, p: &Principal, year: i32) -> ApiResult<Vec<Estimate>> {
    let pol = policy(s)?;
    let Some(me) = beneficiary_of(s, p).await? else { return Ok(vec![]) };
    let as_of = default_as_of(year);
    if opchub_settle::check_request(&pol, year, &[], as_of).is_err() {
        return Ok(vec![]);
    }
    let inputs = opchub_settle::run::load_inputs_for(&s.store, &pol, year, as_of, &me)
        .await
        .map_err(settle_error)?;
    let cands: Vec<_> = opchub_settle::run::candidates(&pol, &inputs, year, as_of, &[])
        .into_iter()
        .filter(|c| c.party.id == me)
        .collect();
    let computed = opchub_settle::compute(&pol, &cands, year, as_of, &|_| {}).map_err(settle_error)?;
    Ok(computed
        .lines
        .into_iter()
        .map(|l| Estimate {
            clause: l.clause,
            eligible: match l.eligible.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            amount_fen: l.amount_fen,
            decision: serde_json::from_str(&l.decision).unwrap_or_default(),
        })
        .collect())
}

#[utoipa::path(get, path = "/api/v1/policy/calculator", tag = "policy", params(YearQuery), responses((status = 200, body = [Estimate])))]
pub async fn calculator(State(s): State<AppState>, caller: Caller, Query(q): Query<YearQuery>) -> ApiResult<Json<Vec<Estimate>>> {
    let p = caller.require()?;
    let year = q.year.unwrap_or_else(|| opchub_settle::run::year_of(today()));
    Ok(Json(estimate_for(&s, p, year).await?))
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

pub async fn create_for(s: &AppState, p: &Principal, r: NewSettlement) -> ApiResult<SettlementCreated> {
    let pol = policy(s)?;
    let clauses = expand(&r.clauses);
    let as_of = r.as_of.unwrap_or_else(|| default_as_of(r.year));
    let settled = opchub_settle::settle(&s.store, &p.actor(), &pol, r.year, &clauses, as_of, &|_, _, _| {})
        .await
        .map_err(settle_error)?;
    Ok(SettlementCreated {
        batch: settled.batch,
        per_clause: settled.per_clause,
    })
}

#[utoipa::path(post, path = "/api/v1/settlements", tag = "settlement", request_body = NewSettlement,
    responses((status = 201, body = SettlementCreated), (status = 422)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewSettlement>,
) -> ApiResult<(StatusCode, Json<SettlementCreated>)> {
    let p = caller.require()?;
    Ok((StatusCode::CREATED, Json(create_for(&s, p, r).await?)))
}

#[utoipa::path(get, path = "/api/v1/settlements", tag = "settlement", responses((status = 200, body = [Batch])))]
pub async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Batch>>> {
    Ok(Json(s.store.settlement_batches().await?))
}

#[derive(Deserialize, IntoParams)]
pub struct LinesQuery {
    pub clause: Option<String>,
    /// Only lines with an amount.
    pub payable: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub batch: Batch,
    /// At most 2,000 lines (filter by clause, or export for all).
    pub lines: Vec<Line>,
}

#[utoipa::path(get, path = "/api/v1/settlements/{id}", tag = "settlement", params(("id" = String, Path), LinesQuery),
    responses((status = 200, body = BatchView), (status = 404)))]
pub async fn show(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<LinesQuery>) -> ApiResult<Json<BatchView>> {
    let batch = s.store.settlement_batch(&id).await?;
    let lines = s
        .store
        .settlement_lines(
            &id,
            &LineFilter {
                clause: q.clause.filter(|c| !c.is_empty()),
                payable: q.payable.unwrap_or(false),
                limit: Some(MAX_LINES),
            },
        )
        .await?;
    Ok(Json(BatchView { batch, lines }))
}

#[utoipa::path(post, path = "/api/v1/settlements/{id}/approve", tag = "settlement", params(("id" = String, Path)),
    responses((status = 200, body = Batch), (status = 404), (status = 409)))]
pub async fn approve(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Batch>> {
    let p = caller.require()?;
    Ok(Json(s.store.approve_settlement(&p.actor(), &id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/settlements/{id}/export", tag = "settlement", params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "CSV or XLSX attachment"), (status = 404), (status = 409)))]
pub async fn export(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<ExportQuery>) -> ApiResult<Response> {
    let batch = s.store.settlement_batch(&id).await?;
    if batch.status != "approved" {
        return Err(ApiError::conflict("batch_not_approved"));
    }
    let lines = s.store.settlement_lines(&id, &LineFilter::default()).await?;
    let (bytes, ctype, ext) = match q.format.as_deref().unwrap_or("csv") {
        "csv" => (
            opchub_settle::export::csv(&batch, &lines).map_err(|_| ApiError::internal())?,
            "text/csv; charset=utf-8",
            "csv",
        ),
        "xlsx" => (
            opchub_settle::export::xlsx(&batch, &lines).map_err(|_| ApiError::internal())?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        _ => return Err(ApiError::field("format", "invalid")),
    };
    let name = format!("settlement-{}-{}.{ext}", batch.year, batch.id);
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
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

pub async fn what_if_for(s: &AppState, r: WhatIf) -> ApiResult<Vec<ClauseDiff>> {
    if r.set.is_empty() {
        return Err(ApiError::field("set", "required"));
    }
    let pol = policy(s)?;
    let as_of = r.as_of.unwrap_or_else(|| default_as_of(r.year));
    opchub_settle::what_if_live(&s.store, &pol, &r.set, r.year, &expand(&r.clauses), as_of)
        .await
        .map_err(settle_error)
}

#[utoipa::path(post, path = "/api/v1/settlements/what-if", tag = "settlement", request_body = WhatIf,
    responses((status = 200, body = [ClauseDiff]), (status = 422)))]
pub async fn what_if(State(s): State<AppState>, ApiJson(r): ApiJson<WhatIf>) -> ApiResult<Json<Vec<ClauseDiff>>> {
    Ok(Json(what_if_for(&s, r).await?))
}

// ---------------------------------------------------------------- confirmation (意愿确认)

#[derive(Serialize, ToSchema)]
pub struct MyLine {
    pub batch: Batch,
    pub line: Line,
}

#[utoipa::path(get, path = "/api/v1/my/settlements", tag = "settlement", responses((status = 200, body = [MyLine])))]
pub async fn mine(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<MyLine>>> {
    let p = caller.require()?;
    let rows = s.store.settlement_lines_of_owner(&p.user.id).await?;
    Ok(Json(rows.into_iter().map(|(batch, line)| MyLine { batch, line }).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct Confirm {
    pub batch: String,
    pub clause: String,
    pub beneficiary: String,
    /// `true` accepts, `false` declines.
    pub accept: bool,
}

#[utoipa::path(post, path = "/api/v1/my/settlements/confirm", tag = "settlement", request_body = Confirm,
    responses((status = 200, body = Line), (status = 404), (status = 409)))]
pub async fn confirm(State(s): State<AppState>, caller: Caller, ApiJson(r): ApiJson<Confirm>) -> ApiResult<Json<Line>> {
    let p = caller.require()?;
    Ok(Json(
        s.store
            .confirm_settlement_line(&p.actor(), &r.batch, &r.clause, &r.beneficiary, r.accept)
            .await?,
    ))
}

// ---------------------------------------------------------------- F3 lists, S3 register

#[utoipa::path(get, path = "/api/v1/exclusions", tag = "settlement", responses((status = 200, body = [ExclusionList])))]
pub async fn exclusion_lists(State(s): State<AppState>) -> ApiResult<Json<Vec<ExclusionList>>> {
    Ok(Json(s.store.exclusion_lists().await?))
}

pub async fn import_for(s: &AppState, p: &Principal, kind: &str, file_name: &str, body: &[u8]) -> ApiResult<ExclusionList> {
    let (rows, sha) = opchub_settle::lists::parse(kind, body).map_err(|e| {
        let field = if e.line > 0 {
            format!("line {}: {}", e.line, e.field)
        } else {
            e.field.clone()
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code).with_detail(format!("{field}: {}", e.message))
    })?;
    Ok(s.store.import_exclusions(&p.actor(), kind, file_name, &sha, &rows).await?)
}

#[utoipa::path(post, path = "/api/v1/exclusions/{kind}", tag = "settlement", params(("kind" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ExclusionList), (status = 422)))]
pub async fn import(
    State(s): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ExclusionList>)> {
    let p = caller.require()?;
    Ok((
        StatusCode::CREATED,
        Json(import_for(&s, p, &kind, &format!("{kind}.csv"), &body).await?),
    ))
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
#[utoipa::path(put, path = "/api/v1/parties/{kind}/{id}/industry-code", tag = "settlement",
    params(("kind" = String, Path, description = "opc, community or enterprise"), ("id" = String, Path)),
    request_body = IndustryCodeChange,
    responses((status = 200, body = IndustryCodeSet), (status = 404), (status = 422)))]
pub async fn set_industry_code(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiJson(r): ApiJson<IndustryCodeChange>,
) -> ApiResult<Json<IndustryCodeSet>> {
    let p = caller.require()?;
    let mut c = opchub_domain::input::Checker::default();
    let code = c.industry_code("industry_code", r.industry_code.as_deref());
    if !c.ok() {
        return Err(ApiError::checked(c));
    }
    let code = code.map(|c| c.to_string());
    s.store.set_industry_code(&p.actor(), &kind, &id, code.as_deref()).await?;
    Ok(Json(IndustryCodeSet {
        kind,
        id,
        industry_code: code,
    }))
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

#[utoipa::path(post, path = "/api/v1/overlap-grants", tag = "settlement", request_body = NewOverlap,
    responses((status = 201, body = OverlapGrant), (status = 422)))]
pub async fn add_overlap(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<NewOverlap>,
) -> ApiResult<(StatusCode, Json<OverlapGrant>)> {
    let p = caller.require()?;
    let pol = policy(&s)?;
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
        return Err(ApiError::checked(c));
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
    Ok((StatusCode::CREATED, Json(s.store.record_overlap_grant(&p.actor(), &g).await?)))
}

#[utoipa::path(get, path = "/api/v1/overlap-grants", tag = "settlement", params(YearQuery), responses((status = 200, body = [OverlapGrant])))]
pub async fn overlaps(State(s): State<AppState>, Query(q): Query<YearQuery>) -> ApiResult<Json<Vec<OverlapGrant>>> {
    let year = q.year.unwrap_or_else(|| opchub_settle::run::year_of(today()));
    Ok(Json(s.store.overlap_grants(i64::from(year)).await?))
}
