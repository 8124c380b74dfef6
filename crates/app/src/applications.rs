//! Applications and funds (issue 8): application types with forms generated from the policy
//! file, drafts pre-filled from what the platform knows, evidence uploads (type read from the
//! content, stored by SHA-256 — F2), submission, the staged review of F1 with the engine's
//! amount and trace at every step, finance payment batches (XLSX export), recovery orders
//! (F2, S5) and the committee's dashboard. Rules live in `opchub_funds` (pure) and the store;
//! these use cases check who may act and orchestrate.

use crate::settlement::{policy, settle_error, today};
use crate::{App, AppError, AppResult, ErrorKind, Principal};
use chrono::{Datelike, Days, NaiveDate};
use opchub_domain::Role;
use opchub_funds::workflow::{self, Reviewer, Stage};
use opchub_funds::{evidence, forms, recovery, Action, FormSpec};
use opchub_policy::{Decision, ParamValue, Policy};
use opchub_settle::apply as app_facts;
use opchub_store::applications::{
    AppEvent, AppFilter, Application, ClauseBudget, ClauseStat, Decline, EvidenceFile, FundBatch, FundPayment, NewApplication, NewRecovery,
    RecoveryOrder, ReviewStep,
};
use opchub_store::settlement::Party;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

crate::module_errors! {
    /// What an application (F1) refuses.
    pub enum ApplicationError {
        /// The clause is not one the caller's kind of party applies for.
        ClauseNotForRole => (Forbidden, "clause_not_for_role"),
        /// The caller has no company to apply for.
        NoCompany => (Forbidden, "no_company"),
        /// The evidence file is larger than allowed.
        EvidenceTooLarge => (TooLarge, "evidence_too_large"),
        /// The application has been submitted; it can no longer be changed.
        NotEditable => (Conflict, "application_not_editable"),
        /// The application is another agency's to review.
        OtherAgency => (Forbidden, "application_other_agency"),
        /// Evidence the clause requires is missing.
        EvidenceMissing => (Invalid, "evidence_missing"),
        /// The application changed since it was read (another version).
        Changed => (Conflict, "application_changed"),
    }
}

/// How a workflow refusal (F1) reaches the caller: its code, a kind, and the field it names.
pub fn workflow_err(e: workflow::WorkflowError) -> AppError {
    use workflow::WorkflowError as W;
    let kind = match e {
        W::WrongRole | W::WrongAgency | W::Declined | W::TwoPersonRule => ErrorKind::Forbidden,
        W::WrongStage | W::NotADecisionStage => ErrorKind::Conflict,
        W::ReasonRequired | W::AboveEntitlement => ErrorKind::Invalid,
    };
    let mut err = AppError::new(kind, e.code());
    if matches!(e, W::ReasonRequired) {
        err.fields.insert("reason".into(), "reason_required".into());
    }
    if matches!(e, W::AboveEntitlement) {
        err.fields.insert("amount_fen".into(), "amount_above_entitlement".into());
    }
    err
}

// ---------------------------------------------------------------- types

/// The application types (F1): one generated form per clause applied for.
pub fn types(app: &App) -> AppResult<Vec<FormSpec>> {
    let p = policy(app)?;
    Ok(opchub_funds::APPLICATION_CLAUSES
        .iter()
        .filter_map(|c| forms::form_spec(&p, c))
        .collect())
}

/// The application types the caller's role may apply for.
pub fn types_for(app: &App, p: &Principal) -> AppResult<Vec<FormSpec>> {
    Ok(types(app)?
        .into_iter()
        .filter(|f| f.beneficiary.as_deref() == Some(p.role().as_str()))
        .collect())
}

/// Whether the caller reviews applications (rather than applies for them).
pub fn is_reviewer(p: &Principal) -> bool {
    matches!(p.role(), Role::Committee | Role::Agency | Role::Finance | Role::Auditor)
}

fn spec_of(p: &Policy, clause: &str) -> AppResult<FormSpec> {
    forms::form_spec(p, clause).ok_or_else(|| AppError::field("clause", "not_applied_for"))
}

/// The party the caller applies as, for a clause whose beneficiary is `role`.
async fn applicant_party(app: &App, p: &Principal, spec: &FormSpec) -> AppResult<Party> {
    if spec.beneficiary.as_deref() != Some(p.role().as_str()) {
        return Err(ApplicationError::ClauseNotForRole.into());
    }
    app_facts::party_of(&app.store, p.role(), &p.user.id)
        .await
        .map_err(settle_error)?
        .ok_or_else(|| AppError::from(ApplicationError::NoCompany))
}

// ---------------------------------------------------------------- prefill

#[derive(Serialize, ToSchema)]
pub struct Prefill {
    pub form: FormSpec,
    pub beneficiary: String,
    pub beneficiary_name: String,
    pub uscc: Option<String>,
    /// What the platform fills in (G2 registry, F3 lists, S3 grants, cap consumed).
    #[schema(value_type = Object)]
    pub platform_facts: Value,
    /// Suggested answers from platform records (loans, housing, milestones).
    #[schema(value_type = Object)]
    pub suggested: Value,
}

pub async fn prefill_for(app: &App, p: &Principal, clause: &str, year: Option<i32>) -> AppResult<Prefill> {
    let pol = policy(app)?;
    let spec = spec_of(&pol, clause)?;
    let party = applicant_party(app, p, &spec).await?;
    let year = year.unwrap_or_else(|| today().year());
    let as_of = opchub_settle::run::default_as_of(year);
    let facts = app_facts::application_facts(&app.store, &pol, clause, &party, year, as_of, &Map::new())
        .await
        .map_err(settle_error)?;
    // Answers the platform's own records suggest: M6.3 loans from the loan records.
    let mut suggested = Map::new();
    if spec.clause == "M6.3" {
        let loans = loan_facts(&app.store.loans_of(&party.id).await?);
        if !loans.is_empty() {
            suggested.insert("loans".into(), Value::Array(loans));
        }
    }
    Ok(Prefill {
        form: spec,
        beneficiary: party.id.clone(),
        beneficiary_name: party.name.clone(),
        uscc: party.uscc.clone(),
        platform_facts: Value::Object(facts),
        suggested: Value::Object(suggested),
    })
}

// ---------------------------------------------------------------- drafts

#[derive(Deserialize, ToSchema)]
pub struct NewApplicationRequest {
    pub clause: String,
    /// Calendar year the application is for (default: from the answers' dates, else this year).
    pub year: Option<i32>,
    /// The answers, keyed by the form's field names.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub answers: Map<String, Value>,
}

fn form_error(e: forms::FormError) -> AppError {
    AppError::field(&e.field, e.code)
}

fn check_year(pol: &Policy, year: i32) -> AppResult<()> {
    let ok = pol.window(opchub_settle::run::default_as_of(year)).is_some()
        || pol
            .latest_window()
            .is_some_and(|w| w.start.year() <= year && year <= w.last_day().year());
    if !ok {
        return Err(AppError::field("year", "outside_validity_window"));
    }
    Ok(())
}

pub async fn create_for(app: &App, p: &Principal, r: &NewApplicationRequest) -> AppResult<Application> {
    let pol = policy(app)?;
    let spec = spec_of(&pol, &r.clause)?;
    let party = applicant_party(app, p, &spec).await?;
    let answers = forms::read_form(&spec, &r.answers).map_err(form_error)?;
    let year = r
        .year
        .or_else(|| forms::year_hint(&spec, &answers))
        .unwrap_or_else(|| today().year());
    check_year(&pol, year)?;
    Ok(app
        .store
        .create_application(
            &p.actor(),
            NewApplication {
                clause: spec.clause.clone(),
                applicant_user_id: p.user.id.clone(),
                beneficiary: party.id.clone(),
                beneficiary_role: p.role().as_str().to_string(),
                beneficiary_name: party.name.clone(),
                uscc: party.uscc.clone(),
                agency: spec.agency.clone(),
                year: i64::from(year),
                project_id: answers.get("project_id").and_then(Value::as_str).map(str::to_string),
                form: Value::Object(answers).to_string(),
            },
        )
        .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateApplication {
    pub year: Option<i32>,
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
}

/// The applicant's own application, or 404 (someone else's is not revealed).
async fn own(app: &App, p: &Principal, id: &str) -> AppResult<Application> {
    let a = app.store.application(id).await?;
    if a.applicant_user_id != p.user.id {
        return Err(AppError::not_found());
    }
    Ok(a)
}

pub async fn update_for(app: &App, p: &Principal, id: &str, r: &UpdateApplication) -> AppResult<Application> {
    let a = own(app, p, id).await?;
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    let answers = forms::read_form(&spec, &r.answers).map_err(form_error)?;
    let year = r.year.map(i64::from).unwrap_or(a.year);
    check_year(&pol, i32::try_from(year).unwrap_or_default())?;
    let project = answers.get("project_id").and_then(Value::as_str).map(str::to_string);
    Ok(app
        .store
        .update_application_form(&p.actor(), id, &Value::Object(answers).to_string(), year, project.as_deref())
        .await?)
}

// ---------------------------------------------------------------- evidence

/// F2: an evidence file larger than allowed (the limit is `opchub_funds::evidence::MAX_BYTES`).
pub fn evidence_too_large() -> AppError {
    let mut e = AppError::from(ApplicationError::EvidenceTooLarge);
    e.fields.insert("file".into(), "evidence_too_large".into());
    e
}

/// The applicant's own application that evidence is uploaded to (404 for anyone else's).
pub async fn upload_target(app: &App, p: &Principal, id: &str) -> AppResult<Application> {
    own(app, p, id).await
}

pub async fn upload_for(
    app: &App,
    p: &Principal,
    a: &Application,
    slot: usize,
    name: &str,
    declared: &str,
    bytes: &[u8],
) -> AppResult<EvidenceFile> {
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    if slot >= spec.evidence.len() {
        return Err(AppError::field("slot", "unknown_slot"));
    }
    if !matches!(a.status.as_str(), "draft" | "returned") {
        return Err(ApplicationError::NotEditable.into());
    }
    let kind = evidence::check(name, declared, bytes).map_err(|e| {
        let kind = if matches!(e, evidence::EvidenceError::TooLarge) {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Invalid
        };
        let mut err = AppError::new(kind, e.code());
        err.fields.insert("file".into(), e.code().into());
        err
    })?;
    let sha = hex::encode(Sha256::digest(bytes));
    app.evidence.put(&sha, bytes).await?;
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    Ok(app
        .store
        .add_application_file(
            &p.actor(),
            &a.id,
            i64::try_from(slot).unwrap_or_default(),
            name,
            kind.mime,
            size,
            &sha,
        )
        .await?)
}

/// One evidence file of an application the caller may read, and its bytes.
pub async fn evidence_file(app: &App, p: &Principal, id: &str, file_id: &str) -> AppResult<(EvidenceFile, Vec<u8>)> {
    let a = readable(app, p, id).await?;
    let f = app
        .store
        .application_files(&a.id)
        .await?
        .into_iter()
        .find(|f| f.id == file_id)
        .ok_or_else(AppError::not_found)?;
    let bytes = app.evidence.get(&f.sha256).await?;
    Ok((f, bytes))
}

// ---------------------------------------------------------------- reading

/// The application if the caller may read it: the applicant, the committee, finance, audit,
/// and the agency that reviews its clause. Others get 404 (existence is not revealed) — an
/// agency reviewer opening another agency's application gets 403 `application_other_agency`.
pub async fn readable(app: &App, p: &Principal, id: &str) -> AppResult<Application> {
    let a = app.store.application(id).await?;
    if a.applicant_user_id == p.user.id {
        return Ok(a);
    }
    let agency = app.store.agency_of(&p.user.id).await?;
    let r = Reviewer {
        user_id: &p.user.id,
        role: p.role(),
        agency: agency.as_deref(),
    };
    if workflow::may_read(&r, a.agency.as_deref()) {
        return Ok(a);
    }
    if p.role() == Role::Agency {
        return Err(ApplicationError::OtherAgency.into());
    }
    Err(AppError::not_found())
}

#[derive(Serialize, ToSchema)]
pub struct ApplicationView {
    pub application: Application,
    pub form: FormSpec,
    pub files: Vec<EvidenceFile>,
    pub timeline: Vec<AppEvent>,
    pub declines: Vec<Decline>,
    pub recoveries: Vec<RecoveryOrder>,
    /// The engine's decision on the current answers (amount, reasons, trace), today; `null`
    /// for a clause whose amount is not computed.
    #[schema(value_type = Option<Object>)]
    pub engine: Option<Value>,
    /// Days the application has been at its current stage; overdue past the policy's deadline.
    pub days_at_stage: Option<i64>,
    pub overdue: bool,
    /// 办件进度: submission, each review stage, completion, and where the application is.
    pub progress: Vec<opchub_funds::workflow::ProgressStep>,
}

pub async fn view_for(app: &App, p: &Principal, id: &str) -> AppResult<ApplicationView> {
    let a = readable(app, p, id).await?;
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    let engine = if spec.computes_amount {
        evaluate(app, &pol, &spec, &a, None, &[], false)
            .await
            .ok()
            .map(|d| serde_json::to_value(d).unwrap_or_default())
    } else {
        None
    };
    let (days, overdue) = stage_age(&pol, &a);
    Ok(ApplicationView {
        progress: opchub_funds::workflow::progress(&spec.stages, &a.status, a.stage.as_deref()),
        files: app.store.application_files(&a.id).await?,
        timeline: app.store.application_events(&a.id).await?,
        declines: app.store.application_declines(&a.id).await?,
        recoveries: app.store.recovery_orders(None, Some(&a.id)).await?,
        form: spec,
        engine,
        days_at_stage: days,
        overdue,
        application: a,
    })
}

/// What the caller may do on an application's page.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Actions {
    /// The caller acts at the current review stage.
    pub can_act: bool,
    /// The caller applied for it.
    pub mine: bool,
    /// The caller applied for it and it is a draft or returned.
    pub editable: bool,
}

pub async fn actions_for(app: &App, p: &Principal, v: &ApplicationView) -> Actions {
    let agency = app.store.agency_of(&p.user.id).await.ok().flatten();
    let reviewer = Reviewer {
        user_id: &p.user.id,
        role: p.role(),
        agency: agency.as_deref(),
    };
    let declined: Vec<String> = v.declines.iter().map(|d| d.user_id.clone()).collect();
    let can_act = v.application.status == "in_review"
        && v.application
            .stage
            .as_deref()
            .is_some_and(|st| workflow::may_act(&reviewer, st, v.application.agency.as_deref(), &declined).is_ok());
    let mine = v.application.applicant_user_id == p.user.id;
    let editable = mine && matches!(v.application.status.as_str(), "draft" | "returned");
    Actions { can_act, mine, editable }
}

pub(crate) fn days_param(pol: &Policy, name: &str, default: u32) -> u32 {
    match pol.param(name, today()).map(|p| &p.value) {
        Some(ParamValue::Count(n)) => *n,
        _ => default,
    }
}

/// Days at the current review stage, and whether past the stage deadline (F1, policy file).
pub fn stage_age(pol: &Policy, a: &Application) -> (Option<i64>, bool) {
    if a.status != "in_review" && a.status != "approved" {
        return (None, false);
    }
    let since = a.stage_since.unwrap_or(a.updated_at);
    let days = (opchub_store::now_ms() - since).max(0) / 86_400_000;
    (Some(days), days > i64::from(days_param(pol, "review_stage_days", 15)))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    pub stage: Option<String>,
    pub clause: Option<String>,
    /// Only applications past their stage deadline.
    pub overdue: Option<bool>,
    /// `mine` (what I applied for) or `queue` (what I review; default for reviewers).
    pub view: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListedApplication {
    #[serde(flatten)]
    pub application: Application,
    pub days_at_stage: Option<i64>,
    pub overdue: bool,
    /// The caller acts at the application's current stage.
    pub yours: bool,
}

pub async fn list_for(app: &App, p: &Principal, q: &ListQuery) -> AppResult<Vec<ListedApplication>> {
    let pol = policy(app)?;
    let reviewer = is_reviewer(p);
    let mine = q.view.as_deref() == Some("mine") || !reviewer;
    let agency = app.store.agency_of(&p.user.id).await?;
    if p.role() == Role::Agency && agency.is_none() && !mine {
        return Ok(vec![]);
    }
    let f = AppFilter {
        applicant: mine.then(|| p.user.id.clone()),
        status: q.status.clone(),
        stage: q.stage.clone(),
        agency: if p.role() == Role::Agency && !mine { agency.clone() } else { None },
        clause: q.clause.clone(),
        limit: 500,
    };
    let r = Reviewer {
        user_id: &p.user.id,
        role: p.role(),
        agency: agency.as_deref(),
    };
    let mut out = vec![];
    for a in app.store.applications(&f).await? {
        if !mine && a.status == "draft" {
            continue;
        }
        let (days, overdue) = stage_age(&pol, &a);
        if q.overdue == Some(true) && !overdue {
            continue;
        }
        let yours = match (a.status.as_str(), a.stage.as_deref()) {
            ("in_review", Some(stage)) => workflow::may_act(&r, stage, a.agency.as_deref(), &[]).is_ok(),
            ("approved", _) => p.role() == Role::Finance,
            _ => false,
        };
        out.push(ListedApplication {
            application: a,
            days_at_stage: days,
            overdue,
            yours,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- engine

/// The engine's decision for an application: the platform's facts, the applicant's answers,
/// an amount decided in review (review-amount clauses), minus false evidence or under a
/// violation (recovery).
async fn evaluate(
    app: &App,
    pol: &Policy,
    spec: &FormSpec,
    a: &Application,
    decided_amount: Option<i64>,
    false_slots: &[usize],
    violation: bool,
) -> AppResult<Decision> {
    let answers: Map<String, Value> = serde_json::from_str(&a.form).unwrap_or_default();
    let party = app_facts::party_by_id(&app.store, &a.beneficiary)
        .await
        .map_err(settle_error)?
        .ok_or_else(AppError::not_found)?;
    let year = i32::try_from(a.year).unwrap_or_default();
    let as_of = opchub_settle::run::default_as_of(year);
    let mut facts = app_facts::application_facts(&app.store, pol, &a.clause, &party, year, as_of, &answers)
        .await
        .map_err(settle_error)?;
    if let (Some(amount), Some(opchub_policy::Rule::ReviewAmount { amount_fact, .. })) =
        (decided_amount, pol.clause(&a.clause).and_then(|c| c.rule.as_ref()))
    {
        facts.insert(amount_fact.clone(), Value::from(amount));
    }
    let mut facts = recovery::without_false_evidence(spec, &facts, false_slots);
    if violation {
        facts = recovery::with_violation(&facts);
    }
    let role: Role = a.beneficiary_role.parse().map_err(|_| AppError::internal())?;
    app_facts::decide(pol, &a.clause, &party.id, role, year, as_of, facts).map_err(settle_error)
}

fn cap_of(pol: &Policy, a: &Application) -> Option<(opchub_store::caps::CapKey, i64)> {
    let year = i32::try_from(a.year).ok()?;
    let key = app_facts::cap_key(pol, &a.clause, &a.beneficiary, year, a.project_id.as_deref())?;
    let cap = match pol
        .clause(&a.clause)?
        .param("cap", opchub_settle::run::default_as_of(year))
        .map(|p| &p.value)
    {
        Some(ParamValue::Fen(f)) => *f,
        _ => return None,
    };
    Some((key, cap))
}

// ---------------------------------------------------------------- submit and review

#[derive(Deserialize, ToSchema)]
pub struct Submit {
    /// The version the applicant saw.
    pub version: i64,
}

pub async fn submit_for(app: &App, p: &Principal, id: &str, version: i64) -> AppResult<Application> {
    let a = own(app, p, id).await?;
    if !matches!(a.status.as_str(), "draft" | "returned") {
        return Err(ApplicationError::NotEditable.into());
    }
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    // Every required evidence item has at least one file.
    let files = app.store.application_files(&a.id).await?;
    let missing: Vec<String> = spec
        .evidence
        .iter()
        .filter(|e| e.required && !files.iter().any(|f| f.slot == i64::try_from(e.index).unwrap_or(-1)))
        .map(|e| e.text.clone())
        .collect();
    if !missing.is_empty() {
        let mut e = AppError::from(ApplicationError::EvidenceMissing).with_detail(missing.join("; "));
        e.fields.insert("evidence".into(), "evidence_missing".into());
        return Err(e);
    }
    let decision = if spec.computes_amount {
        Some(evaluate(app, &pol, &spec, &a, None, &[], false).await?)
    } else {
        None
    };
    let first = spec.stages.first().cloned();
    let next_role = first.as_deref().map(|st| workflow::actor_role(st).as_str().to_string());
    let step = ReviewStep {
        expected_version: version,
        stage: "applicant".into(),
        action: "submit".into(),
        reason: String::new(),
        status_after: "in_review".into(),
        stage_after: first.clone(),
        engine_fen: decision.as_ref().map(|d| d.amount_fen.unwrap_or(0)),
        decision: decision.as_ref().map(|d| serde_json::to_string(d).unwrap_or_default()),
        decided_fen: None,
        cap: None,
        next_agency: first
            .as_deref()
            .filter(|st| workflow::actor_role(st) == Role::Agency)
            .and(spec.agency.clone()),
        next_role,
        milestone: None,
        budget: None,
    };
    Ok(app.store.apply_review(&p.actor(), id, &step).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct ReviewRequest {
    /// The version the reviewer saw; if the application changed since, 409 `application_changed`.
    pub version: i64,
    pub action: Action,
    #[serde(default)]
    pub reason: String,
    /// With `approve`: an amount other than the engine's (reason required).
    pub amount_fen: Option<i64>,
}

pub async fn review_for(app: &App, p: &Principal, id: &str, r: &ReviewRequest) -> AppResult<Application> {
    let a = readable(app, p, id).await?;
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    // A reviewer who acted on an older version is told first, whatever changed since (the
    // other reviewer's decision may also have ended the stage).
    if r.version != a.version {
        return Err(ApplicationError::Changed.into());
    }
    let Stage::Review(stage) = Stage::parse(&a.status, a.stage.as_deref()) else {
        return Err(workflow_err(workflow::WorkflowError::WrongStage));
    };
    let agency = app.store.agency_of(&p.user.id).await?;
    let reviewer = Reviewer {
        user_id: &p.user.id,
        role: p.role(),
        agency: agency.as_deref(),
    };
    let declined: Vec<String> = app
        .store
        .application_declines(&a.id)
        .await?
        .into_iter()
        .map(|d| d.user_id)
        .collect();
    workflow::may_act(&reviewer, &stage, a.agency.as_deref(), &declined).map_err(workflow_err)?;
    if r.amount_fen.is_some_and(|f| f < 0) {
        return Err(AppError::field("amount_fen", "negative"));
    }
    if r.action == Action::Decline {
        app.store.decline_application(&p.actor(), &a.id, &stage, &r.reason).await?;
        return Ok(app.store.application(&a.id).await?);
    }
    // The engine's amount now; for review-amount clauses an adjusted amount is decided in review
    // and still capped by the engine.
    let requested = spec.amount_decided_in_review.then_some(r.amount_fen).flatten();
    let decision = if spec.computes_amount {
        Some(evaluate(app, &pol, &spec, &a, None, &[], false).await?)
    } else {
        None
    };
    // An undetermined decision has no amount; the workflow reads it as nothing to approve (the
    // stored column keeps 0, the stored decision says null).
    let engine_fen = decision.as_ref().map(|d| d.amount_fen.unwrap_or(0));
    let (decision, adjusted) = match (requested, &decision) {
        (Some(amount), Some(_)) => {
            let d = evaluate(app, &pol, &spec, &a, Some(amount), &[], false).await?;
            if d.amount_fen.unwrap_or(0) < amount {
                return Err(workflow_err(workflow::WorkflowError::AboveEntitlement));
            }
            (Some(d), Some(amount))
        }
        _ => (decision, if spec.computes_amount { r.amount_fen } else { None }),
    };
    let outcome = workflow::apply(
        &spec.stages,
        &stage,
        &r.action,
        &r.reason,
        engine_fen,
        adjusted,
        spec.paid_by_finance,
    )
    .map_err(workflow_err)?;
    let (status_after, stage_after) = match &outcome.next {
        Stage::Review(next) => ("in_review".to_string(), Some(next.clone())),
        Stage::Approved => ("approved".to_string(), Some("finance_payment".to_string())),
        other => (other.status().to_string(), None),
    };
    let next_role = stage_after.as_deref().map(|st| workflow::actor_role(st).as_str().to_string());
    let next_agency = stage_after
        .as_deref()
        .filter(|st| workflow::actor_role(st) == Role::Agency)
        .and(spec.agency.clone());
    let budget = match outcome.decided_fen.filter(|f| *f > 0) {
        Some(amount) => check_budget(app, &pol, &a, amount).await?,
        None => None,
    };
    let step = ReviewStep {
        expected_version: r.version,
        stage: stage.clone(),
        action: serde_json::to_value(&r.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        reason: r.reason.trim().to_string(),
        status_after,
        stage_after,
        engine_fen: decision.as_ref().map(|d| d.amount_fen.unwrap_or(0)),
        decision: decision.as_ref().map(|d| serde_json::to_string(d).unwrap_or_default()),
        decided_fen: outcome.decided_fen,
        cap: outcome.decided_fen.filter(|f| *f > 0).and_then(|_| cap_of(&pol, &a)),
        next_role,
        next_agency,
        milestone: milestone_of(&a),
        budget,
    };
    Ok(app.store.apply_review(&p.actor(), &a.id, &step).await?)
}

/// F1: a clause's own yearly budget bounds what its applications are approved for in the year,
/// and a policy-wide yearly budget what every clause's applications and the year's 免申即享
/// settlement grants add up to. Money recovered from an approved application (S5) gives its
/// budget back. An approval that would take a total past a budget is refused with
/// `clause_budget_exceeded` or `policy_budget_exceeded`, the headroom in the detail and in
/// `field_details.amount_fen`; the store checks the same inside the approval's transaction
/// (concurrent approvals queue on it).
async fn check_budget(app: &App, pol: &Policy, a: &Application, amount: i64) -> AppResult<Option<ClauseBudget>> {
    let year = i32::try_from(a.year).unwrap_or_default();
    let as_of = opchub_settle::run::default_as_of(year);
    let fen = |p: Option<&opchub_policy::Param>| match p.map(|p| &p.value) {
        Some(ParamValue::Fen(b)) => Some(*b),
        _ => None,
    };
    let clause_budget = fen(pol.clause(&a.clause).and_then(|c| c.param("yearly_budget", as_of)));
    let policy_budget = fen(pol.param("yearly_budget", as_of));
    if clause_budget.is_none() && policy_budget.is_none() {
        return Ok(None);
    }
    let money = opchub_domain::Money::from_fen;
    let refuse = |code: &str, what: String, budget: i64, committed: i64| {
        let headroom = budget.saturating_sub(committed).max(0);
        let detail = format!(
            "{what} {} (F1): {} already committed in {}, headroom {}, this approval {}",
            money(budget),
            money(committed),
            a.year,
            money(headroom),
            money(amount)
        );
        let mut e = AppError::new(ErrorKind::Conflict, code).with_detail(detail);
        e.fields.insert("amount_fen".into(), code.into());
        e.field_details.insert("amount_fen".into(), money(headroom).to_string());
        e
    };
    if let Some(budget) = clause_budget {
        let approved = app.store.approved_in_year(&a.clause, a.year).await?;
        if amount > budget.saturating_sub(approved).max(0) {
            return Err(refuse(
                "clause_budget_exceeded",
                format!("{} yearly budget", a.clause),
                budget,
                approved,
            ));
        }
    }
    if let Some(budget) = policy_budget {
        let (apps, settled) = app.store.committed_in_year(a.year).await?;
        let committed = apps.saturating_add(settled);
        if amount > budget.saturating_sub(committed).max(0) {
            return Err(refuse(
                "policy_budget_exceeded",
                "policy-wide yearly budget".into(),
                budget,
                committed,
            ));
        }
    }
    Ok(Some(ClauseBudget {
        clause: a.clause.clone(),
        year: a.year,
        budget_fen: clause_budget,
        policy_budget_fen: policy_budget,
    }))
}

/// M8.1: the milestone an application records when granted.
fn milestone_of(a: &Application) -> Option<(String, String)> {
    if a.clause != "M8.1" {
        return None;
    }
    let form: Map<String, Value> = serde_json::from_str(&a.form).ok()?;
    Some((
        form.get("milestone")?.as_str()?.to_string(),
        form.get("milestone_date")?.as_str()?.to_string(),
    ))
}

// ---------------------------------------------------------------- payment

#[derive(Deserialize, ToSchema)]
pub struct PayItem {
    pub application_id: String,
    /// The bank's payment reference for this transfer.
    pub payment_reference: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PayRequest {
    /// The batch's reference (unique).
    pub reference: String,
    pub items: Vec<PayItem>,
}

pub async fn pay_for(app: &App, p: &Principal, r: &PayRequest) -> AppResult<FundBatch> {
    if r.items.len() > 500 {
        return Err(AppError::field("items", "too_many"));
    }
    for i in &r.items {
        let a = app
            .store
            .application(&i.application_id)
            .await
            .map_err(|_| AppError::field("items", "not_found"))?;
        workflow::may_pay(&p.user.id, a.decided_by.as_deref()).map_err(workflow_err)?;
    }
    let items: Vec<(String, String)> = r
        .items
        .iter()
        .map(|i| (i.application_id.clone(), i.payment_reference.clone()))
        .collect();
    Ok(app.store.pay_applications(&p.actor(), &r.reference, &items).await?)
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub batch: FundBatch,
    pub payments: Vec<FundPayment>,
}

pub async fn batches(app: &App) -> AppResult<Vec<FundBatch>> {
    Ok(app.store.fund_batches().await?)
}

pub async fn batch_view(app: &App, id: &str) -> AppResult<BatchView> {
    Ok(BatchView {
        batch: app.store.fund_batch(id).await?,
        payments: app.store.fund_payments(id).await?,
    })
}

/// A payment batch as the XLSX file finance sends the bank, with the batch it is of.
pub async fn batch_export(app: &App, id: &str) -> AppResult<(FundBatch, Vec<u8>)> {
    let b = app.store.fund_batch(id).await?;
    let rows = app.store.fund_payments(id).await?;
    let bytes = batch_xlsx(&b, &rows).map_err(|e| AppError::internal_from("xlsx export failed", e))?;
    Ok((b, bytes))
}

fn batch_xlsx(b: &FundBatch, rows: &[FundPayment]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("payments")?;
    let head = [
        "批次 batch",
        "申请 application",
        "条款 clause",
        "受益方 beneficiary",
        "统一社会信用代码 USCC",
        "核定(分) approved fen",
        "抵扣(分) offset fen",
        "实付(分) paid fen",
        "实付(元) paid yuan",
        "支付凭证 payment reference",
    ];
    for (c, h) in head.iter().enumerate() {
        ws.write_string(0, u16::try_from(c).unwrap_or_default(), *h)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ws.write_string(row, 0, &b.reference)?;
        ws.write_string(row, 1, &r.application_id)?;
        ws.write_string(row, 2, &r.clause)?;
        ws.write_string(row, 3, &r.beneficiary_name)?;
        ws.write_string(row, 4, r.uscc.as_deref().unwrap_or(""))?;
        // Integers in fen are exact in a spreadsheet number up to 2^53.
        ws.write_number(row, 5, r.approved_fen as f64)?;
        ws.write_number(row, 6, r.offset_fen as f64)?;
        ws.write_number(row, 7, r.paid_fen as f64)?;
        ws.write_string(row, 8, opchub_domain::Money::from_fen(r.paid_fen).to_string())?;
        ws.write_string(row, 9, &r.payment_reference)?;
    }
    wb.save_to_buffer()
}

// ---------------------------------------------------------------- recovery

#[derive(Deserialize, ToSchema)]
pub struct RecoveryRequest {
    /// `false_evidence` (F2: name the files) or `violation` (S5).
    pub kind: String,
    #[serde(default)]
    pub file_ids: Vec<String>,
    pub reason: String,
}

pub async fn recovery_for(app: &App, p: &Principal, id: &str, r: &RecoveryRequest) -> AppResult<RecoveryOrder> {
    let a = app.store.application(id).await?;
    let pol = policy(app)?;
    let spec = spec_of(&pol, &a.clause)?;
    if r.reason.trim().is_empty() {
        return Err(AppError::field("reason", "reason_required"));
    }
    let files = app.store.application_files(&a.id).await?;
    let violation = match r.kind.as_str() {
        "false_evidence" => false,
        "violation" => true,
        _ => return Err(AppError::field("kind", "unknown_kind")),
    };
    if !violation && r.file_ids.is_empty() {
        return Err(AppError::field("file_ids", "required"));
    }
    let mut slots = vec![];
    for fid in &r.file_ids {
        let f = files
            .iter()
            .find(|f| &f.id == fid)
            .ok_or_else(|| AppError::field("file_ids", "not_found"))?;
        if f.false_at.is_some() {
            return Err(AppError::field("file_ids", "already_false"));
        }
        slots.push(usize::try_from(f.slot).unwrap_or(usize::MAX));
    }
    // Earlier false findings stay false.
    slots.extend(
        files
            .iter()
            .filter(|f| f.false_at.is_some())
            .filter_map(|f| usize::try_from(f.slot).ok()),
    );
    let (recomputed, decision) = if spec.computes_amount {
        let d = evaluate(
            app,
            &pol,
            &spec,
            &a,
            a.decided_fen.filter(|_| spec.amount_decided_in_review),
            &slots,
            violation,
        )
        .await?;
        (
            {
                let now = d.amount_fen.unwrap_or(0);
                now.min(a.decided_fen.unwrap_or(now))
            },
            serde_json::to_string(&d).unwrap_or_default(),
        )
    } else {
        (0, "{}".to_string())
    };
    let today = today();
    let due = today
        .checked_add_days(Days::new(u64::from(days_param(&pol, "recovery_due_days", 30))))
        .unwrap_or(today);
    let years = days_param(&pol, "no_support_years", 3);
    let until = today
        .with_year(today.year() + i32::try_from(years).unwrap_or(3))
        .or_else(|| NaiveDate::from_ymd_opt(today.year() + i32::try_from(years).unwrap_or(3), 3, 1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(i64::MAX);
    let party_key = a.uscc.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| a.beneficiary.clone());
    Ok(app
        .store
        .open_recovery(
            &p.actor(),
            &NewRecovery {
                application_id: a.id.clone(),
                kind: r.kind.clone(),
                reason: r.reason.trim().to_string(),
                false_files: r.file_ids.clone(),
                recomputed_fen: recomputed,
                decision,
                due_on: due.to_string(),
                party_key,
                no_support_until_ms: until,
            },
        )
        .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct RepayRequest {
    pub amount_fen: i64,
    /// The bank reference of the repayment (unique).
    pub reference: String,
}

pub async fn repay_for(app: &App, p: &Principal, id: &str, r: &RepayRequest) -> AppResult<RecoveryOrder> {
    Ok(app.store.repay_recovery(&p.actor(), id, r.amount_fen, &r.reference).await?)
}

/// Recovery orders: a beneficiary sees its own orders; staff see all.
pub async fn recoveries_for(app: &App, p: &Principal) -> AppResult<Vec<RecoveryOrder>> {
    let own = match p.role() {
        Role::Committee | Role::Finance | Role::Auditor => None,
        role => Some(
            app_facts::party_of(&app.store, role, &p.user.id)
                .await
                .map_err(settle_error)?
                .map(|x| x.id)
                .unwrap_or_default(),
        ),
    };
    Ok(app.store.recovery_orders(own.as_deref(), None).await?)
}

// ---------------------------------------------------------------- dashboard

#[derive(Serialize, ToSchema)]
pub struct ClauseSummary {
    pub clause: String,
    pub title_zh: String,
    pub submitted: i64,
    pub in_review: i64,
    pub approved: i64,
    pub paid: i64,
    pub rejected: i64,
    pub approved_fen: i64,
    pub paid_fen: i64,
    /// F1: the clause's yearly budget, when the policy file sets one.
    pub budget_fen: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    pub year: i32,
    pub clauses: Vec<ClauseSummary>,
    /// Applications under review per stage.
    pub by_stage: Vec<(String, i64)>,
    pub overdue: i64,
    pub approved_fen: i64,
    pub paid_fen: i64,
    pub recovered_fen: i64,
    pub recovery_open_fen: i64,
    pub stats: Vec<ClauseStat>,
    /// The settled clauses (免申即享, M1.1–M2.4) of the year: approved, paid, recovered, budget.
    pub settled: Vec<SettledClause>,
    /// How the year's payable settlement lines were answered: (confirmation, lines).
    pub confirmations: Vec<(String, i64)>,
    /// What finance paid per month of the year (January first, Asia/Shanghai): application
    /// payment batches and settlement batches together.
    pub paid_by_month: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SettledClause {
    pub clause: String,
    pub title_zh: String,
    pub approved_fen: i64,
    pub paid_fen: i64,
    pub recovery_fen: i64,
    /// F1: the clause's yearly budget, when the policy file sets one.
    pub budget_fen: Option<i64>,
}

/// `(year, month)` of an instant in Asia/Shanghai.
fn year_month(ms: i64) -> Option<(i32, usize)> {
    let period = opchub_ledger::event::period_of(ms);
    let (y, m) = period.split_once('-')?;
    Some((y.parse().ok()?, m.parse().ok()?))
}

pub async fn dashboard_for(app: &App, year: i32) -> AppResult<Dashboard> {
    let pol: Arc<Policy> = policy(app)?;
    let stats = app.store.application_stats(Some(i64::from(year))).await?;
    let as_of = opchub_settle::run::default_as_of(year);
    let mut clauses = vec![];
    for c in opchub_funds::APPLICATION_CLAUSES {
        let rows: Vec<&ClauseStat> = stats.iter().filter(|r| r.clause == *c).collect();
        let count = |st: &[&str]| {
            rows.iter()
                .filter(|r| st.contains(&r.status.as_str()))
                .map(|r| r.count)
                .sum::<i64>()
        };
        let clause = pol.clause(c);
        clauses.push(ClauseSummary {
            clause: c.to_string(),
            title_zh: clause.map(|x| x.title_zh.clone()).unwrap_or_default(),
            submitted: count(&["in_review", "returned", "approved", "granted", "paid", "rejected"]),
            in_review: count(&["in_review", "returned"]),
            approved: count(&["approved", "granted", "paid"]),
            paid: count(&["paid"]),
            rejected: count(&["rejected"]),
            approved_fen: rows
                .iter()
                .filter(|r| r.status == "approved" || r.status == "paid")
                .map(|r| r.decided_fen)
                .sum(),
            paid_fen: rows.iter().map(|r| r.paid_fen).sum(),
            budget_fen: clause.and_then(|x| yearly_budget(x, as_of)),
        });
    }
    let settled = app
        .store
        .settlement_totals_by_clause(year)
        .await?
        .into_iter()
        .map(|(c, approved_fen, paid_fen, recovery_fen)| {
            let clause = pol.clause(&c);
            SettledClause {
                title_zh: clause.map(|x| x.title_zh.clone()).unwrap_or_default(),
                budget_fen: clause.and_then(|x| yearly_budget(x, as_of)),
                clause: c,
                approved_fen,
                paid_fen,
                recovery_fen,
            }
        })
        .collect();
    let confirmations = app.store.settlement_confirmations(year).await?;
    let mut paid_by_month = vec![0i64; 12];
    let mut add = |at: i64, fen: i64| {
        if let Some((y, m)) = year_month(at) {
            if y == year && (1..=12).contains(&m) {
                paid_by_month[m - 1] += fen;
            }
        }
    };
    // Every payment finance makes is a payment batch (applications and settlement lines alike).
    for b in app.store.fund_batches().await? {
        add(b.created_at, b.paid_fen);
    }
    let mut by_stage: Vec<(String, i64)> = vec![];
    for r in stats.iter().filter(|r| r.status == "in_review") {
        let st = r.stage.clone().unwrap_or_default();
        match by_stage.iter_mut().find(|(k, _)| *k == st) {
            Some((_, n)) => *n += r.count,
            None => by_stage.push((st, r.count)),
        }
    }
    // Overdue as `stage_age` counts it: whole days at the stage above the deadline.
    let deadline_days = i64::from(days_param(&pol, "review_stage_days", 15));
    let cutoff = opchub_store::now_ms() - (deadline_days + 1) * 86_400_000;
    let overdue = app.store.overdue_in_review(i64::from(year), cutoff).await?;
    let (recovered, open) = app.store.recovery_totals().await?;
    Ok(Dashboard {
        year,
        approved_fen: clauses.iter().map(|c| c.approved_fen).sum(),
        paid_fen: clauses.iter().map(|c| c.paid_fen).sum(),
        clauses,
        by_stage,
        overdue,
        recovered_fen: recovered,
        recovery_open_fen: open,
        stats,
        settled,
        confirmations,
        paid_by_month,
    })
}

/// F1: a clause's yearly budget in force on `as_of`, when the policy file sets one.
fn yearly_budget(c: &opchub_policy::Clause, as_of: chrono::NaiveDate) -> Option<i64> {
    match c.param("yearly_budget", as_of).map(|p| &p.value) {
        Some(ParamValue::Fen(f)) => Some(*f),
        _ => None,
    }
}

/// The dashboard of `year` (default this year) as an XLSX file, with the dashboard.
pub async fn dashboard_export(app: &App, year: Option<i32>) -> AppResult<(Dashboard, Vec<u8>)> {
    let d = dashboard_for(app, year.unwrap_or_else(|| today().year())).await?;
    let bytes = dashboard_xlsx(&d).map_err(|e| AppError::internal_from("xlsx export failed", e))?;
    Ok((d, bytes))
}

fn dashboard_xlsx(d: &Dashboard) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("clauses")?;
    let head = [
        "条款 clause",
        "名称 title",
        "申报 submitted",
        "审核中 in review",
        "批准 approved",
        "拨付 paid",
        "未通过 rejected",
        "批准金额(分) approved fen",
        "拨付金额(分) paid fen",
        "年度预算(分) budget fen",
    ];
    for (c, h) in head.iter().enumerate() {
        ws.write_string(0, u16::try_from(c).unwrap_or_default(), *h)?;
    }
    for (i, c) in d.clauses.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ws.write_string(row, 0, &c.clause)?;
        ws.write_string(row, 1, &c.title_zh)?;
        for (col, v) in [c.submitted, c.in_review, c.approved, c.paid, c.rejected, c.approved_fen, c.paid_fen]
            .iter()
            .enumerate()
        {
            ws.write_number(row, u16::try_from(col + 2).unwrap_or_default(), *v as f64)?;
        }
        if let Some(b) = c.budget_fen {
            ws.write_number(row, 9, b as f64)?;
        }
    }
    wb.save_to_buffer()
}

/// Loans (M6.3 records) as the engine reads them: drawn amount (counted principal), first drawdown, interest.
pub fn loan_facts(loans: &[opchub_store::records::Loan]) -> Vec<Value> {
    loans
        .iter()
        .filter_map(|l| {
            let draws: Vec<_> = l.entries.iter().filter(|e| e.kind == "drawdown").collect();
            let first = draws.iter().map(|e| e.day.clone()).min()?;
            let principal: i64 = draws.iter().map(|e| e.amount_fen).sum();
            let interest: Vec<Value> = l
                .entries
                .iter()
                .filter(|e| e.kind == "interest")
                .filter_map(|e| Some(serde_json::json!({ "month": e.month.clone()?, "amount_fen": e.amount_fen })))
                .collect();
            Some(serde_json::json!({ "id": l.contract_no, "principal_fen": principal, "first_drawdown": first, "qualified": true, "interest": interest }))
        })
        .collect()
}
