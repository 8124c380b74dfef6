//! Evaluation of one paying clause for one beneficiary and one calendar year: validity (S2),
//! beneficiary role, conditions (G2 …), exclusions (F3), the clause's rule, caps, overlap (S3),
//! budget pro-rating (F1) and the one rounding — every step written to the trace. Pure.

use crate::amount::{add, div, mul, percent, round_half_up, short, yuan, yuan_fen, Span};
use crate::error::PolicyError;
use crate::facts::{Beneficiary, Entry, Fact, Facts};
use crate::model::{CapScope, Clause, Condition, OverlapMode, Param, ParamValue, Policy, Rule, Test, Window};
use chrono::{Datelike, Days, Months, NaiveDate};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// What a step or a reason says, as a message-catalog key (`trace.<key>`) and its values, so
/// pages render it in the reader's language (Chinese first; issue 21). A value named `x` may
/// come as `x_zh` and `x_en` (a condition's text, say); the page picks its language's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Msg {
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

/// A [`Msg`] from a key and its values.
pub fn msg(key: &str, args: &[(&str, String)]) -> Msg {
    Msg {
        key: key.to_string(),
        args: args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    }
}

/// One explained step of a decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceStep {
    /// The clause the step applies (`M3.2`, `S2`, `F3`, `G2`, `F1`).
    pub clause: String,
    /// The rule, in snake_case (`per_project_per_year_cap`, `overlap_top_up`, `rounding`, …).
    pub rule: String,
    /// What happened, in words.
    pub text: String,
    /// Parameter values (with version and source), input facts and intermediate amounts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// `text` for the message catalogs (none: pages show `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<Msg>,
}

/// The answer for one clause, one beneficiary, one year, as of one date.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub clause: String,
    pub beneficiary: String,
    pub year: i32,
    pub as_of: NaiveDate,
    /// The policy file's version; `versions_used` names the versions of the values actually read (S4).
    pub policy_version: String,
    pub versions_used: Vec<String>,
    /// `Some(true)` eligible, `Some(false)` not eligible, `None` undetermined (see `missing_facts`).
    pub eligible: Option<bool>,
    /// What to pay, in fen: 0 when not eligible; `None` (JSON `null`) when undetermined — an
    /// answer blocked by missing facts has no amount, not ¥0.00.
    pub amount_fen: Option<i64>,
    /// `amount_fen` for people: `¥500,000.00`; `None` when undetermined.
    pub amount: Option<String>,
    pub reasons: Vec<String>,
    /// `reasons` for the message catalogs, one per reason (`null`: pages show the reason's text).
    pub reason_msgs: Vec<Option<Msg>>,
    /// Unknown facts that block the answer; never taken as zero.
    pub missing_facts: Vec<String>,
    pub trace: Vec<TraceStep>,
}

/// Evaluates `clause_id` for `beneficiary` in calendar `year`, with the values in force on `as_of`.
pub fn evaluate(
    policy: &Policy,
    clause_id: &str,
    beneficiary: &Beneficiary,
    year: i32,
    facts: &Facts,
    as_of: NaiveDate,
) -> Result<Decision, PolicyError> {
    let clause = policy
        .clause(clause_id)
        .ok_or_else(|| PolicyError::UnknownClause(clause_id.to_string()))?;
    let rule = clause.rule.as_ref().ok_or_else(|| PolicyError::NotPaying(clause.id.clone()))?;
    if !(2000..=2100).contains(&year) {
        return Err(PolicyError::bad(
            "year",
            format!("expected a calendar year between 2000 and 2100, got {year}"),
        ));
    }
    let year_span = match (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year + 1, 1, 1)) {
        (Some(a), Some(b)) => Span::new(a, b),
        _ => return Err(PolicyError::bad("year", format!("not a calendar year: {year}"))),
    };
    let mut run = Run {
        policy,
        clause,
        facts,
        as_of,
        year,
        year_span,
        window: None,
        trace: Vec::new(),
        reasons: Vec::new(),
        reason_msgs: Vec::new(),
        missing: BTreeSet::new(),
        ineligible: false,
        versions: BTreeSet::new(),
    };
    run.step_m(
        &clause.id,
        "clause",
        format!(
            "{} {} ({}) for {} ({}), year {year}, as of {as_of}, policy v{}",
            clause.id, clause.title_en, clause.title_zh, beneficiary.id, beneficiary.role, policy.version
        ),
        vec![],
        msg(
            "clause",
            &[
                ("clause", clause.id.clone()),
                ("title_zh", clause.title_zh.clone()),
                ("title_en", clause.title_en.clone()),
                ("year", year.to_string()),
                ("as_of", as_of.to_string()),
                ("version", policy.version.clone()),
            ],
        ),
    );
    let amount = run.decide(rule, beneficiary)?;
    run.finish(beneficiary, amount)
}

/// F1: the factor that scales a batch of entitlements down to a yearly budget (1 when it fits).
/// Rounded down to 8 decimals so the scaled batch never exceeds the budget by more than the
/// per-decision half-fen roundings.
pub fn budget_factor(budget_fen: i64, total_entitlements_fen: i64) -> Decimal {
    if total_entitlements_fen <= budget_fen || total_entitlements_fen <= 0 {
        return Decimal::ONE;
    }
    let f = Decimal::from(budget_fen.max(0))
        .checked_div(Decimal::from(total_entitlements_fen))
        .unwrap_or(Decimal::ZERO);
    f.round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero)
}

/// F1: shares `budget_fen` out over `amounts` pro rata, to the fen, by largest remainder: each
/// line gets ⌊amount × budget ÷ total⌋ and the fen left over go one each to the lines with the
/// largest remainders (the earlier line first on a tie). The shares add up to exactly the
/// budget — never a fen over — and none exceeds its own amount. When the amounts fit, they are
/// returned unchanged.
pub fn largest_remainder(amounts: &[i64], budget_fen: i64) -> Vec<i64> {
    let amounts: Vec<i64> = amounts.iter().map(|a| (*a).max(0)).collect();
    let total: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
    let budget = i128::from(budget_fen.max(0));
    if total <= budget {
        return amounts;
    }
    let mut shares: Vec<i64> = Vec::with_capacity(amounts.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(amounts.len());
    for (i, a) in amounts.iter().enumerate() {
        let x = i128::from(*a) * budget;
        shares.push(i64::try_from(x / total).unwrap_or(i64::MAX));
        remainders.push((x % total, i));
    }
    let given: i128 = shares.iter().map(|s| i128::from(*s)).sum();
    let left = usize::try_from(budget - given).unwrap_or(0);
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take(left) {
        shares[i] += 1;
    }
    shares
}

struct Run<'a> {
    policy: &'a Policy,
    clause: &'a Clause,
    facts: &'a Facts,
    as_of: NaiveDate,
    year: i32,
    year_span: Span,
    window: Option<Window>,
    trace: Vec<TraceStep>,
    reasons: Vec<String>,
    reason_msgs: Vec<Option<Msg>>,
    missing: BTreeSet<String>,
    ineligible: bool,
    versions: BTreeSet<String>,
}

/// What `tally` adds up from each entry.
#[derive(Clone, Copy)]
enum Measure {
    Amount,
    Quantity,
}

impl<'a> Run<'a> {
    fn step(&mut self, clause: &str, rule: &str, text: String, values: Vec<(String, String)>) {
        self.trace.push(TraceStep {
            clause: clause.to_string(),
            rule: rule.to_string(),
            text,
            values: values.into_iter().collect(),
            msg: None,
        });
    }

    /// A step with its catalog message.
    fn step_m(&mut self, clause: &str, rule: &str, text: String, values: Vec<(String, String)>, m: Msg) {
        self.step(clause, rule, text, values);
        if let Some(s) = self.trace.last_mut() {
            s.msg = Some(m);
        }
    }

    fn reject(&mut self, clause: &str, rule: &str, reason: String) {
        self.ineligible = true;
        self.step(clause, rule, format!("not eligible: {reason}"), vec![]);
        self.reasons.push(reason);
        self.reason_msgs.push(None);
    }

    /// [`Run::reject`] with the reason's catalog message (the step says the same, marked not eligible).
    fn reject_m(&mut self, clause: &str, rule: &str, reason: String, m: Msg) {
        self.reject(clause, rule, reason);
        self.said(m);
    }

    fn note(&mut self, clause: &str, rule: &str, reason: String) {
        self.step(clause, rule, reason.clone(), vec![]);
        self.reasons.push(reason);
        self.reason_msgs.push(None);
    }

    fn note_m(&mut self, clause: &str, rule: &str, reason: String, m: Msg) {
        self.note(clause, rule, reason);
        self.said(m);
    }

    /// A reason without a step of its own.
    fn reason(&mut self, text: String, m: Option<Msg>) {
        self.reasons.push(text);
        self.reason_msgs.push(m);
    }

    /// Gives the last step and the last reason their catalog message.
    fn said(&mut self, m: Msg) {
        if let Some(s) = self.trace.last_mut() {
            s.msg = Some(m.clone());
        }
        if let Some(r) = self.reason_msgs.last_mut() {
            *r = Some(m);
        }
    }

    fn id(&self) -> &'a str {
        &self.clause.id
    }

    /// The span a dated amount must fall in to count: the year, inside the S2 window.
    fn counting_span(&self) -> Span {
        match self.window {
            Some(w) => self.year_span.intersect(Span::new(w.start, w.end)),
            None => Span::new(self.year_span.start, self.year_span.start),
        }
    }

    fn window_text(&self) -> String {
        self.window.map(|w| w.to_string()).unwrap_or_else(|| "(none)".into())
    }

    fn decide(&mut self, rule: &Rule, beneficiary: &Beneficiary) -> Result<Decimal, PolicyError> {
        // S2: the measures are in force for two years from publication.
        match self.policy.window(self.as_of) {
            None => {
                let reason = format!("S2: the measures were not in force on {}", self.as_of);
                let m = msg("s2_not_in_force", &[("as_of", self.as_of.to_string())]);
                self.reject_m("S2", "validity_window", reason, m);
                return Ok(Decimal::ZERO);
            }
            Some((w, publication, years)) => {
                self.versions.insert(publication.version.clone());
                self.versions.insert(years.version.clone());
                self.step_m(
                    "S2",
                    "validity_window",
                    format!("validity window {w}; usage and spend outside it do not count"),
                    vec![
                        ("publication_date".into(), publication.describe()),
                        ("validity_years".into(), years.describe()),
                    ],
                    msg("s2_window", &[("window", w.to_string())]),
                );
                self.window = Some(w);
                if !w.contains(self.as_of) {
                    let reason = format!("S2: as-of date {} is outside the validity window {w}", self.as_of);
                    let m = msg("s2_as_of_outside", &[("as_of", self.as_of.to_string()), ("window", w.to_string())]);
                    self.reject_m("S2", "validity_window", reason, m);
                } else if self.counting_span().days() == 0 {
                    // S2: nothing of the year is inside the window, so nothing of it can count.
                    let reason = format!("S2: no day of {} falls inside the validity window {w}", self.year);
                    let m = msg("s2_year_outside", &[("year", self.year.to_string()), ("window", w.to_string())]);
                    self.reject_m("S2", "validity_window", reason, m);
                }
            }
        }
        if Some(beneficiary.role) != self.clause.beneficiary {
            let expected = self.clause.beneficiary.map(|r| r.to_string()).unwrap_or_default();
            let reason = format!(
                "{} pays {expected} beneficiaries; {} is {}",
                self.id(),
                beneficiary.id,
                beneficiary.role
            );
            let m = msg(
                "beneficiary_role",
                &[
                    ("clause", self.id().to_string()),
                    ("expected_role", expected.clone()),
                    ("role", beneficiary.role.to_string()),
                ],
            );
            self.reject_m(self.id(), "beneficiary_role", reason, m);
        }
        let per_project = self.per_project();
        let projects = if per_project { self.facts.projects()? } else { Fact::Unknown };
        let projects = match projects {
            Fact::Known(list) => Some(list),
            Fact::Absent => Some(Vec::new()),
            Fact::Unknown => None,
        };
        // With a `projects` list the clause's own conditions are the project's (M3.1 a
        // high-value patent, M3.2 a university partner, …): each project is decided on its own.
        let (clause, policy, has_projects) = (self.clause, self.policy, projects.is_some());
        let own_condition = |c: &&Condition| has_projects && c.clause == clause.id;
        let conditions: Vec<&'a Condition> = clause.conditions.iter().filter_map(|id| policy.condition(id)).collect();
        for c in conditions.iter().filter(|c| !own_condition(c)) {
            self.condition(c)?;
        }
        for id in &self.clause.exclusions {
            if let Some(c) = self.policy.exclusion(id) {
                self.exclusion(c)?;
            }
        }
        let params = self.params(rule)?;
        if self.clause.param_names().iter().any(|n| !params.contains_key(*n)) {
            return Ok(Decimal::ZERO);
        }
        let own = match projects {
            None => self.project_amount(rule, &params)?,
            Some(list) => {
                let own_conditions: Vec<&Condition> = conditions.into_iter().filter(|c| c.clause == clause.id).collect();
                self.projects_amount(rule, &params, list, &own_conditions)?
            }
        };
        self.budget(own)
    }

    /// Whether the clause's cap counts per project (M3.1, M3.2, M3.3, M6.1).
    fn per_project(&self) -> bool {
        matches!(
            self.clause.cap_scope,
            Some(CapScope::PerProjectPerYear | CapScope::OncePerProject | CapScope::PerProject)
        )
    }

    /// Basis, cap and overlap of one item (the whole facts file, or one project of it).
    /// Even when a step before already made the beneficiary ineligible, the amount is computed
    /// (and the facts checked) for the explanation; `finish` pays nothing then.
    fn project_amount(&mut self, rule: &Rule, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let gross = match rule {
            Rule::RateOfAmounts { basis_fact } => self.rate_of_amounts(basis_fact, params)?,
            Rule::WorkstationMonths { basis_fact } => self.workstation_months(basis_fact, params)?,
            Rule::SkillPublisher => self.skill_publisher(params)?,
            Rule::ReviewAmount { amount_fact, date_fact } => self.review_amount(amount_fact, date_fact)?,
            Rule::LoanInterest { basis_fact } => self.loan_interest(basis_fact, params)?,
            Rule::HousingSchedule => self.housing(params)?,
        };
        let capped = self.cap(gross, params)?;
        self.overlap(capped)
    }

    /// M3.1, M3.2, M3.3, M6.1 with a `projects` list: every project is decided on its own — its
    /// conditions, basis, its own cap (less its own `consumed_fen`) and overlap — and the
    /// amounts add up. A project's facts are read first, then the file's. The beneficiary is
    /// not eligible when no project is; a project's unknown facts are named `projects[i].…`.
    fn projects_amount(
        &mut self,
        rule: &Rule,
        params: &BTreeMap<String, Param>,
        list: Vec<serde_json::Map<String, serde_json::Value>>,
        conditions: &[&Condition],
    ) -> Result<Decimal, PolicyError> {
        let id = self.id();
        if list.is_empty() {
            let m = msg("no_projects", &[("clause", id.to_string())]);
            self.note_m(id, "projects", format!("{id}: no project in the facts; nothing to pay"), m);
            return Ok(Decimal::ZERO);
        }
        let mut total = Decimal::ZERO;
        let mut eligible_projects = 0usize;
        let mut unread = Vec::new();
        let mut values = Vec::new();
        for (i, mut project) in list.into_iter().enumerate() {
            let prefix = format!("projects[{i}]");
            // A project's cap is counted with what was paid for that project: the file's
            // `consumed_fen` is not taken for it.
            project
                .entry("consumed_fen")
                .or_insert_with(|| serde_json::Value::String("unknown".into()));
            let name = match project.get("project_id") {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => {
                    return Err(PolicyError::bad(
                        format!("facts.{prefix}.project_id"),
                        "required: each project names its project_id",
                    ))
                }
            };
            self.facts.enter_project(&prefix, project);
            let _ = self.facts.shown("project_id");
            self.step_m(
                id,
                "project",
                format!("project {name} ({prefix})"),
                vec![("project_id".into(), name.clone())],
                msg("project", &[("project", name.clone())]),
            );
            let (was_ineligible, missing_before) = (self.ineligible, self.missing.clone());
            self.ineligible = false;
            let step = (|| -> Result<Decimal, PolicyError> {
                for c in conditions {
                    self.condition(c)?;
                }
                self.project_amount(rule, params)
            })();
            let amount = match step {
                Ok(a) => a,
                Err(e) => {
                    self.facts.leave_project();
                    return Err(e);
                }
            };
            unread.extend(self.facts.leave_project());
            let project_ineligible = self.ineligible;
            self.ineligible = was_ineligible;
            // What this project left unknown, named with its project.
            let added: Vec<String> = self.missing.difference(&missing_before).cloned().collect();
            for m in &added {
                self.missing.remove(m);
                if !project_ineligible {
                    let named = if m.starts_with("projects[") {
                        m.clone()
                    } else {
                        format!("{prefix}.{m}")
                    };
                    self.missing.insert(named);
                }
            }
            if project_ineligible {
                values.push((name, format!("not eligible: {}", yuan(Decimal::ZERO))));
                continue;
            }
            eligible_projects += 1;
            values.push((name, yuan(amount)));
            total = add(total, amount, "projects")?;
        }
        if !unread.is_empty() {
            self.step_m(
                id,
                "unused_facts",
                format!("project facts given but not read: {}", unread.join(", ")),
                vec![],
                msg("unused_facts", &[("facts", unread.join(", "))]),
            );
        }
        if eligible_projects == 0 {
            let m = msg("no_eligible_project", &[("clause", id.to_string())]);
            self.reject_m(id, "projects", format!("{id}: no project in the facts is eligible"), m);
        }
        let m = msg(
            "projects_total",
            &[
                ("clause", id.to_string()),
                ("projects", values.len().to_string()),
                ("total", yuan(total)),
            ],
        );
        self.step_m(
            id,
            "projects",
            format!("{id}: {} projects, each capped on its own: {}", values.len(), yuan(total)),
            values,
            m,
        );
        Ok(total)
    }

    fn condition(&mut self, c: &Condition) -> Result<(), PolicyError> {
        let holds = match &c.test {
            Test::IsTrue => match self.facts.flag(&c.fact)? {
                Fact::Known(b) => Some(b),
                Fact::Absent => Some(false),
                Fact::Unknown => None,
            },
            Test::OneOf(values) => match self.facts.text(&c.fact)? {
                Fact::Known(v) => Some(values.contains(&v)),
                Fact::Absent => Some(false),
                Fact::Unknown => None,
            },
        };
        let shown = self.facts.shown(&c.fact);
        match holds {
            Some(true) => self.step_m(
                &c.clause,
                &c.id,
                format!("holds: {}", c.text_en),
                vec![(c.fact.clone(), shown)],
                cond_msg("cond_holds", c),
            ),
            Some(false) => self.reject_m(
                &c.clause,
                &c.id,
                format!("{}: condition not met — {} ({} = {shown})", c.clause, c.text_en, c.fact),
                cond_msg("cond_not_met", c),
            ),
            None => {
                self.missing.insert(c.fact.clone());
                self.step_m(
                    &c.clause,
                    &c.id,
                    format!("unknown: {} (fact {} missing)", c.text_en, c.fact),
                    vec![],
                    cond_msg("cond_unknown", c),
                );
            }
        }
        Ok(())
    }

    fn exclusion(&mut self, c: &Condition) -> Result<(), PolicyError> {
        let flag = self.facts.flag(&c.fact)?;
        if let (Fact::Unknown, Some(dated)) = (&flag, &c.dated_fact) {
            if !matches!(self.facts.entries(dated)?, Fact::Unknown) {
                return self.dated_exclusion(c, dated);
            }
        }
        match flag {
            Fact::Known(true) => self.reject_m(
                &c.clause,
                &c.id,
                format!("{}: excluded — {}", c.clause, c.text_en),
                cond_msg("excl_applies", c),
            ),
            Fact::Known(false) | Fact::Absent => self.step_m(
                &c.clause,
                &c.id,
                format!("does not apply: {}", c.text_en),
                vec![(c.fact.clone(), "false".into())],
                cond_msg("excl_not_apply", c),
            ),
            Fact::Unknown => {
                self.missing.insert(c.fact.clone());
                self.step_m(
                    &c.clause,
                    &c.id,
                    format!("unknown whether {} (fact {} missing)", c.text_en, c.fact),
                    vec![],
                    cond_msg("excl_unknown", c),
                );
            }
        }
        Ok(())
    }

    /// F3 from dated events (`safety_accidents`): only an event dated inside the validity window
    /// and on or before the as-of date excludes; others are named in the trace and do not.
    fn dated_exclusion(&mut self, c: &Condition, dated: &str) -> Result<(), PolicyError> {
        let entries = match self.facts.entries(dated)? {
            Fact::Known(v) => v,
            _ => Vec::new(),
        };
        let mut inside = Vec::new();
        let mut values = Vec::new();
        for e in &entries {
            let date = e
                .date
                .ok_or_else(|| PolicyError::bad(format!("{}.date", e.field), "required (YYYY-MM-DD): an accident has a date"))?;
            let label = e.id.clone().unwrap_or_else(|| e.field.trim_start_matches("facts.").to_string());
            let counts = self.window.is_some_and(|w| w.contains(date)) && date <= self.as_of;
            let why = if counts {
                "inside the validity window, on or before the as-of date: excludes".to_string()
            } else if date > self.as_of {
                format!("after the as-of date {}: does not count", self.as_of)
            } else {
                format!("outside the validity window {}: does not count", self.window_text())
            };
            values.push((label, format!("{date}: {why}")));
            if counts {
                inside.push(date);
            }
        }
        if let Some(first) = inside.first() {
            let reason = format!("{}: excluded — {} (on {first})", c.clause, c.text_en);
            self.ineligible = true;
            self.step(&c.clause, &c.id, format!("not eligible: {reason}"), values);
            self.reason(reason, None);
            let mut m = cond_msg("excl_dated", c);
            m.args.insert("date".into(), first.to_string());
            self.said(m);
        } else {
            let (text, mut m) = if entries.is_empty() {
                (
                    format!("does not apply: {} (none recorded)", c.text_en),
                    cond_msg("excl_none_recorded", c),
                )
            } else {
                (
                    format!("does not apply: {} (no accident inside the window up to {})", c.text_en, self.as_of),
                    cond_msg("excl_none_inside", c),
                )
            };
            m.args.insert("as_of".into(), self.as_of.to_string());
            self.step_m(&c.clause, &c.id, text, values, m);
        }
        Ok(())
    }

    /// The rule's parameters in force on the as-of date, written to the trace with version and source.
    fn params(&mut self, rule: &Rule) -> Result<BTreeMap<String, Param>, PolicyError> {
        let mut out = BTreeMap::new();
        let mut shown = Vec::new();
        for name in self.clause.param_names() {
            match self.clause.param(name, self.as_of) {
                Some(p) => {
                    self.versions.insert(p.version.clone());
                    shown.push((name.to_string(), p.describe()));
                    out.insert(name.to_string(), p.clone());
                }
                None => {
                    let reason = format!("S4: no value of {} {name} is in force on {}", self.id(), self.as_of);
                    let m = msg(
                        "s4_no_value",
                        &[
                            ("clause", self.id().to_string()),
                            ("param", name.to_string()),
                            ("as_of", self.as_of.to_string()),
                        ],
                    );
                    self.reject_m("S4", "parameter_in_force", reason, m);
                }
            }
        }
        let id = self.id();
        self.step_m(
            id,
            "parameters",
            format!("{id} values in force on {} (rule {})", self.as_of, rule.name()),
            shown,
            msg("parameters", &[("clause", id.to_string()), ("as_of", self.as_of.to_string())]),
        );
        Ok(out)
    }

    fn fen_param(&self, params: &BTreeMap<String, Param>, name: &str) -> Result<i64, PolicyError> {
        match params.get(name).map(|p| &p.value) {
            Some(ParamValue::Fen(f)) => Ok(*f),
            _ => Err(PolicyError::invalid(
                format!("clauses.{}.{name}", self.id()),
                "expected an amount in yuan",
            )),
        }
    }

    fn ratio_param(&self, params: &BTreeMap<String, Param>, name: &str) -> Result<Decimal, PolicyError> {
        match params.get(name).map(|p| &p.value) {
            Some(ParamValue::Ratio(r)) => Ok(*r),
            _ => Err(PolicyError::invalid(format!("clauses.{}.{name}", self.id()), "expected a ratio")),
        }
    }

    fn count_param(&self, params: &BTreeMap<String, Param>, name: &str) -> Result<u32, PolicyError> {
        match params.get(name).map(|p| &p.value) {
            Some(ParamValue::Count(n)) => Ok(*n),
            _ => Err(PolicyError::invalid(
                format!("clauses.{}.{name}", self.id()),
                "expected a whole number",
            )),
        }
    }

    /// A list fact: `None` (and listed missing) when unknown, empty when known absent.
    fn list(&mut self, name: &str) -> Result<Option<Vec<Entry>>, PolicyError> {
        Ok(match self.facts.entries(name)? {
            Fact::Known(v) => Some(v),
            Fact::Absent => Some(Vec::new()),
            Fact::Unknown => {
                self.missing.insert(name.to_string());
                let id = self.id();
                self.step_m(
                    id,
                    "basis",
                    format!("{name} unknown: the basis cannot be computed"),
                    vec![],
                    msg("basis_unknown", &[("fact", name.to_string())]),
                );
                None
            }
        })
    }

    /// Adds up dated entries that count: in the year, inside the S2 window, qualified.
    fn tally(&mut self, name: &str, entries: &[Entry], measure: Measure) -> Result<Decimal, PolicyError> {
        let span = self.counting_span();
        let mut counted = (0usize, Decimal::ZERO);
        let mut other_year = (0usize, Decimal::ZERO);
        let mut outside = (0usize, Decimal::ZERO);
        let mut unqualified = (0usize, Decimal::ZERO);
        let mut unknown = (0usize, Decimal::ZERO);
        for e in entries {
            let date = e
                .date
                .ok_or_else(|| PolicyError::bad(format!("{}.date", e.field), "required (YYYY-MM-DD)"))?;
            let value = match measure {
                // Metered usage may be exact to a millionth of a fen (issue 17 item 6): the
                // tally stays exact and the clause rounds once, at the end (PARAMETERS).
                Measure::Amount => match (e.amount_micro_fen, e.amount_fen) {
                    (Some(micro), _) => Decimal::new(micro, 6),
                    (None, Some(fen)) => Decimal::from(fen),
                    (None, None) => {
                        return Err(PolicyError::bad(format!("{}.amount_fen", e.field), "required (whole fen)"));
                    }
                },
                Measure::Quantity => Decimal::from(
                    e.quantity
                        .ok_or_else(|| PolicyError::bad(format!("{}.quantity", e.field), "required (a count)"))?,
                ),
            };
            let bucket = if !self.year_span.contains(date) {
                &mut other_year
            } else if !span.contains(date) {
                &mut outside
            } else {
                match e.qualified {
                    Fact::Known(true) => &mut counted,
                    Fact::Known(false) | Fact::Absent => &mut unqualified,
                    Fact::Unknown => {
                        self.missing.insert(format!("{}.qualified", e.field.trim_start_matches("facts.")));
                        &mut unknown
                    }
                }
            };
            bucket.0 += 1;
            bucket.1 = add(bucket.1, value, name)?;
        }
        let show = |(n, v): (usize, Decimal)| {
            let entries = if n == 1 { "entry" } else { "entries" };
            match measure {
                Measure::Amount => format!("{n} {entries}, {}", yuan(v)),
                Measure::Quantity => format!("{n} {entries}, {v}"),
            }
        };
        let mut values = vec![("counted".to_string(), show(counted))];
        if other_year.0 > 0 {
            values.push((format!("not in {}", self.year), show(other_year)));
        }
        if outside.0 > 0 {
            values.push(("outside the validity window (S2)".into(), show(outside)));
            let what = match measure {
                Measure::Amount => yuan(outside.1),
                Measure::Quantity => outside.1.to_string(),
            };
            let reason = format!(
                "S2: {what} of {name} dated outside the validity window {} does not count",
                self.window_text()
            );
            let m = msg(
                "s2_outside_amount",
                &[("what", what), ("fact", name.to_string()), ("window", self.window_text())],
            );
            self.reason(reason, Some(m));
        }
        if unqualified.0 > 0 {
            values.push(("not qualified".into(), show(unqualified)));
            let what = match measure {
                Measure::Amount => yuan(unqualified.1),
                Measure::Quantity => unqualified.1.to_string(),
            };
            let reason = format!(
                "{}: {what} of {name} not qualified ({} {}) does not count",
                self.id(),
                unqualified.0,
                if unqualified.0 == 1 { "entry" } else { "entries" }
            );
            let m = msg(
                "not_qualified_amount",
                &[
                    ("clause", self.id().to_string()),
                    ("what", what),
                    ("fact", name.to_string()),
                    ("entries", unqualified.0.to_string()),
                ],
            );
            self.reason(reason, Some(m));
        }
        if unknown.0 > 0 {
            values.push(("qualification unknown".into(), show(unknown)));
        }
        let id = self.id();
        let counted_text = match measure {
            Measure::Amount => yuan(counted.1),
            Measure::Quantity => counted.1.to_string(),
        };
        self.step_m(
            id,
            "basis",
            format!("{name}: what counts in {} inside the validity window", self.year),
            values,
            msg(
                "basis_counted",
                &[
                    ("fact", name.to_string()),
                    ("year", self.year.to_string()),
                    ("entries", counted.0.to_string()),
                    ("counted", counted_text),
                ],
            ),
        );
        Ok(counted.1)
    }

    /// M2.2, M2.3-invoker, M2.4, M3.2, M5.1: Σ qualified amounts × rate.
    fn rate_of_amounts(&mut self, basis_fact: &str, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let rate = self.ratio_param(params, "rate")?;
        let Some(entries) = self.list(basis_fact)? else {
            return Ok(Decimal::ZERO);
        };
        let base = self.tally(basis_fact, &entries, Measure::Amount)?;
        let gross = mul(base, rate, basis_fact)?;
        let id = self.id();
        let args = [("base", yuan(base)), ("rate", percent(rate)), ("gross", yuan(gross))];
        self.step_m(
            id,
            "rate",
            format!("{} × {} = {}", yuan(base), percent(rate), yuan(gross)),
            vec![],
            msg("rate_amounts", &args),
        );
        Ok(gross)
    }

    /// M1.1: qualified free workstation-months × the rate per workstation-month. A month counts
    /// by day: `quantity` workstations occupied from `first_day` to `last_day` (inclusive, both
    /// optional: the whole month) are quantity × days ÷ days-in-month workstation-months, and only
    /// the days inside the year and the validity window count. The sum stays an exact fraction
    /// (over the least common multiple of the month lengths) until the one rounding.
    fn workstation_months(&mut self, basis_fact: &str, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        /// lcm(28, 29, 30, 31): every month's length divides it.
        const MONTH_LCM: i64 = 377_580;
        let rate = Decimal::from(self.fen_param(params, "rate_per_workstation_month")?);
        let Some(entries) = self.list(basis_fact)? else {
            return Ok(Decimal::ZERO);
        };
        let span = self.counting_span();
        // Workstation-months × MONTH_LCM, exact.
        let mut total: i128 = 0;
        let mut values = Vec::new();
        for e in &entries {
            let month = e
                .month
                .ok_or_else(|| PolicyError::bad(format!("{}.month", e.field), "required (YYYY-MM)"))?;
            let n = e
                .quantity
                .ok_or_else(|| PolicyError::bad(format!("{}.quantity", e.field), "required (workstations)"))?;
            let period = month_span(month, &e.field)?;
            let occupied = self.occupied_days(e, period)?;
            let days = occupied.intersect(span).days();
            let label = match (e.extra.contains_key("first_day"), e.extra.contains_key("last_day")) {
                (false, false) => format!("{}", month.format("%Y-%m")),
                _ => format!(
                    "{} ({}..{})",
                    month.format("%Y-%m"),
                    occupied.start,
                    occupied.end.pred_opt().unwrap_or(occupied.end)
                ),
            };
            let counted = match e.qualified {
                Fact::Known(true) => true,
                Fact::Known(false) | Fact::Absent => {
                    values.push((label, format!("{n} workstations, not qualified: 0")));
                    continue;
                }
                Fact::Unknown => {
                    if days > 0 {
                        self.missing.insert(format!("{}.qualified", e.field.trim_start_matches("facts.")));
                    }
                    false
                }
            };
            let month_days = period.days();
            let share = i128::from(n)
                .checked_mul(i128::from(days))
                .and_then(|x| x.checked_mul(i128::from(MONTH_LCM / month_days.max(1))))
                .ok_or_else(|| PolicyError::Overflow(basis_fact.to_string()))?;
            let wm = div(
                Decimal::try_from_i128_with_scale(share, 0).map_err(|_| PolicyError::Overflow(basis_fact.to_string()))?,
                Decimal::from(MONTH_LCM),
                basis_fact,
            )?;
            let why = if days == month_days {
                String::new()
            } else if days == 0 {
                " (outside the year or the validity window)".to_string()
            } else if occupied.days() < month_days && days == occupied.days() {
                " (occupied for part of the month: counted by day)".to_string()
            } else {
                " (S2: only the days inside the validity window count)".to_string()
            };
            values.push((
                label,
                format!("{n} × {days}/{month_days} days = {} workstation-months{why}", short(wm)),
            ));
            if counted {
                total = total
                    .checked_add(share)
                    .ok_or_else(|| PolicyError::Overflow(basis_fact.to_string()))?;
            }
        }
        let total_num = Decimal::try_from_i128_with_scale(total, 0).map_err(|_| PolicyError::Overflow(basis_fact.to_string()))?;
        let months = div(total_num, Decimal::from(MONTH_LCM), basis_fact)?;
        // One division, last: workstation-days weighted × rate ÷ the common denominator.
        let gross = div(mul(total_num, rate, basis_fact)?, Decimal::from(MONTH_LCM), basis_fact)?;
        let id = self.id();
        self.step_m(
            id,
            "basis",
            format!("{basis_fact}: {} workstation-months counted", short(months)),
            values,
            msg(
                "basis_workstation_months",
                &[("fact", basis_fact.to_string()), ("months", short(months))],
            ),
        );
        self.step_m(
            id,
            "rate",
            format!("{} × {} = {}", short(months), yuan(rate), yuan(gross)),
            vec![],
            msg(
                "rate_workstation_months",
                &[("months", short(months)), ("rate", yuan(rate)), ("gross", yuan(gross))],
            ),
        );
        Ok(gross)
    }

    /// The days of `period` (a month) an M1.1 entry's workstations were occupied.
    fn occupied_days(&self, e: &Entry, period: Span) -> Result<Span, PolicyError> {
        let day = |key: &str| -> Result<Option<NaiveDate>, PolicyError> {
            match e.extra.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v
                    .as_str()
                    .and_then(crate::facts::parse_date)
                    .map(Some)
                    .ok_or_else(|| PolicyError::bad(format!("{}.{key}", e.field), format!("expected a date YYYY-MM-DD, got {v}"))),
            }
        };
        let first = day("first_day")?.unwrap_or(period.start);
        let last = day("last_day")?;
        let end = match last {
            Some(l) => l.succ_opt().unwrap_or(l),
            None => period.end,
        };
        if !period.contains(first) || end <= first || end > period.end {
            return Err(PolicyError::bad(
                format!("{}.first_day", e.field),
                format!(
                    "first_day..last_day must be days of the entry's month {}, first_day not after last_day",
                    period.start.format("%Y-%m")
                ),
            ));
        }
        Ok(Span::new(first, end))
    }

    /// M2.3 publisher: revenue of qualified paid calls × rate + qualified free calls × amount per call.
    fn skill_publisher(&mut self, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let rate = self.ratio_param(params, "revenue_rate")?;
        let per_call = Decimal::from(self.fen_param(params, "per_free_call")?);
        let id = self.id();
        let paid = match self.list("paid_calls")? {
            Some(entries) => {
                let revenue = self.tally("paid_calls", &entries, Measure::Amount)?;
                let part = mul(revenue, rate, "paid_calls")?;
                self.step_m(
                    id,
                    "rate",
                    format!("paid calls: {} × {} = {}", yuan(revenue), percent(rate), yuan(part)),
                    vec![],
                    msg(
                        "rate_paid_calls",
                        &[("base", yuan(revenue)), ("rate", percent(rate)), ("gross", yuan(part))],
                    ),
                );
                part
            }
            None => Decimal::ZERO,
        };
        let free = if per_call.is_zero() {
            // Free calls pay nothing at ¥0.00 a call, so whether they are known does not matter.
            let _ = self.facts.entries("free_calls")?;
            self.step_m(
                id,
                "rate",
                format!("free calls pay {} each: nothing to add", yuan(per_call)),
                vec![],
                msg("rate_free_calls_zero", &[("per_call", yuan(per_call))]),
            );
            Decimal::ZERO
        } else {
            match self.list("free_calls")? {
                Some(entries) => {
                    let calls = self.tally("free_calls", &entries, Measure::Quantity)?;
                    let part = mul(calls, per_call, "free_calls")?;
                    self.step_m(
                        id,
                        "rate",
                        format!("free calls: {calls} × {} = {}", yuan(per_call), yuan(part)),
                        vec![],
                        msg(
                            "rate_free_calls",
                            &[("calls", calls.to_string()), ("per_call", yuan(per_call)), ("gross", yuan(part))],
                        ),
                    );
                    part
                }
                None => Decimal::ZERO,
            }
        };
        add(paid, free, "M2.3")
    }

    /// M3.1, M3.3, M6.1, M6.2: the amount decided in review, counted in the year of its event date.
    fn review_amount(&mut self, amount_fact: &str, date_fact: &str) -> Result<Decimal, PolicyError> {
        let id = self.id();
        let amount = match self.facts.fen(amount_fact)? {
            Fact::Known(a) => Some(a),
            Fact::Absent => Some(0),
            Fact::Unknown => {
                self.missing.insert(amount_fact.to_string());
                None
            }
        };
        let date = self.facts.date(date_fact)?;
        let span = self.counting_span();
        let counts = match date {
            Fact::Known(d) if !self.year_span.contains(d) => {
                let m = msg(
                    "event_other_year",
                    &[
                        ("clause", id.to_string()),
                        ("fact", date_fact.to_string()),
                        ("date", d.to_string()),
                        ("year", self.year.to_string()),
                    ],
                );
                self.note_m(
                    id,
                    "event_date",
                    format!("{id}: {date_fact} {d} is not in {}; nothing counts this year", self.year),
                    m,
                );
                false
            }
            Fact::Known(d) if !span.contains(d) => {
                let reason = format!(
                    "S2: {date_fact} {d} is outside the validity window {}; it does not count",
                    self.window_text()
                );
                let m = msg(
                    "event_outside_window",
                    &[
                        ("fact", date_fact.to_string()),
                        ("date", d.to_string()),
                        ("window", self.window_text()),
                    ],
                );
                self.note_m("S2", "validity_window", reason, m);
                false
            }
            Fact::Known(_) => true,
            Fact::Absent => {
                let m = msg("event_missing", &[("clause", id.to_string()), ("fact", date_fact.to_string())]);
                self.note_m(id, "event_date", format!("{id}: no {date_fact}; nothing to pay"), m);
                false
            }
            Fact::Unknown => {
                self.missing.insert(date_fact.to_string());
                true
            }
        };
        let gross = match (amount, counts) {
            (Some(a), true) => Decimal::from(a),
            _ => Decimal::ZERO,
        };
        self.step_m(
            id,
            "basis",
            format!("amount decided in review: {}", yuan(gross)),
            vec![
                (amount_fact.to_string(), self.facts.shown(amount_fact)),
                (date_fact.to_string(), self.facts.shown(date_fact)),
            ],
            msg("basis_review_amount", &[("gross", yuan(gross))]),
        );
        Ok(gross)
    }

    /// M6.3: interest month by month. Principal counts up to the cap across loans in order of first
    /// drawdown (a loan beyond it counts pro rata); months count up to the months cap from each
    /// loan's first drawdown (the last month pro rata by day), inside the year and the window.
    fn loan_interest(&mut self, basis_fact: &str, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let share = self.ratio_param(params, "interest_share")?;
        let principal_cap = self.fen_param(params, "principal_cap")?;
        let months_cap = self.count_param(params, "months_cap")?;
        let Some(entries) = self.list(basis_fact)? else {
            return Ok(Decimal::ZERO);
        };
        let mut loans = Vec::new();
        for e in entries {
            let principal = extra_fen(&e, "principal_fen")?;
            let drawdown = extra_date(&e, "first_drawdown")?;
            loans.push((drawdown, principal, e));
        }
        loans.sort_by_key(|(d, _, _)| *d);
        let id = self.id();
        let span = self.counting_span();
        let mut remaining = principal_cap;
        let mut total = Decimal::ZERO;
        for (drawdown, principal, e) in &loans {
            let name = e.id.clone().unwrap_or_else(|| e.field.trim_start_matches("facts.").to_string());
            match e.qualified {
                Fact::Known(true) => {}
                Fact::Known(false) | Fact::Absent => {
                    let m = msg("loan_not_eligible", &[("clause", id.to_string()), ("loan", name.clone())]);
                    self.note_m(
                        id,
                        "loan",
                        format!("{id}: loan {name} is not an eligible loan; its interest does not count"),
                        m,
                    );
                    continue;
                }
                Fact::Unknown => {
                    self.missing.insert(format!("{}.qualified", e.field.trim_start_matches("facts.")));
                    continue;
                }
            }
            if *principal == 0 {
                let m = msg("loan_no_principal", &[("clause", id.to_string()), ("loan", name.clone())]);
                self.note_m(
                    id,
                    "loan",
                    format!("{id}: loan {name} has no principal; its interest does not count"),
                    m,
                );
                continue;
            }
            let counted_principal = (*principal).min(remaining.max(0));
            remaining -= counted_principal;

            if counted_principal < *principal {
                let reason = format!(
                    "{id} principal cap: loan {name} {} → {} counted (cap {} across all loans)",
                    yuan_fen(*principal),
                    yuan_fen(counted_principal),
                    yuan_fen(principal_cap)
                );
                let m = msg(
                    "loan_principal_cap",
                    &[
                        ("clause", id.to_string()),
                        ("loan", name.clone()),
                        ("principal", yuan_fen(*principal)),
                        ("counted", yuan_fen(counted_principal)),
                        ("cap", yuan_fen(principal_cap)),
                    ],
                );
                self.note_m(id, "principal_cap", reason, m);
            }
            let limit = drawdown
                .checked_add_months(Months::new(months_cap))
                .ok_or_else(|| PolicyError::bad(format!("{}.first_drawdown", e.field), "date out of range"))?;
            let allowed = Span::new(*drawdown, limit);
            let interest = match e.extra.get("interest") {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| crate::facts::entry(v, &format!("{}.interest[{i}]", e.field)))
                    .collect::<Result<Vec<_>, _>>()?,
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(other) => {
                    return Err(PolicyError::bad(
                        format!("{}.interest", e.field),
                        format!("expected a list of {{month, amount_fen}}, got {other}"),
                    ))
                }
            };
            let mut values = vec![
                (
                    "principal".to_string(),
                    format!("{} ({} counted)", yuan_fen(*principal), yuan_fen(counted_principal)),
                ),
                (
                    "first_drawdown".to_string(),
                    format!("{drawdown}; months counted until {}", limit.pred_opt().unwrap_or(limit)),
                ),
            ];
            let mut loan_total = Decimal::ZERO;
            for m in &interest {
                let month = m
                    .month
                    .ok_or_else(|| PolicyError::bad(format!("{}.month", m.field), "required (YYYY-MM)"))?;
                let paid = m
                    .amount_fen
                    .ok_or_else(|| PolicyError::bad(format!("{}.amount_fen", m.field), "required (whole fen)"))?;
                let period = month_span(month, &m.field)?;
                let since_drawdown = period.intersect(Span::new(*drawdown, NaiveDate::MAX));
                let label = format!("{}", month.format("%Y-%m"));
                if since_drawdown.days() == 0 {
                    values.push((label, format!("{}: before the first drawdown, not counted", yuan_fen(paid))));
                    continue;
                }
                let days = since_drawdown.intersect(allowed).intersect(span).days();
                // One division, last: interest × days × counted principal × share / (days × principal).
                let numerator = mul(
                    mul(
                        mul(Decimal::from(paid), Decimal::from(days), basis_fact)?,
                        Decimal::from(counted_principal),
                        basis_fact,
                    )?,
                    share,
                    basis_fact,
                )?;
                let denominator = mul(Decimal::from(since_drawdown.days()), Decimal::from(*principal), basis_fact)?;
                let counted = div(numerator, denominator, basis_fact)?;
                let why = if days == since_drawdown.days() {
                    String::new()
                } else if since_drawdown.intersect(allowed).days() < since_drawdown.days() {
                    format!(" ({months_cap}-month cap from the first drawdown)")
                } else {
                    " (outside the year or the validity window)".to_string()
                };
                values.push((
                    label,
                    format!(
                        "{} × {days}/{} days × principal {}/{} × {} = {}{why}",
                        yuan_fen(paid),
                        since_drawdown.days(),
                        yuan_fen(counted_principal),
                        yuan_fen(*principal),
                        percent(share),
                        yuan(counted)
                    ),
                ));
                loan_total = add(loan_total, counted, basis_fact)?;
            }
            let m = msg("loan_interest", &[("loan", name.clone()), ("amount", yuan(loan_total))]);
            self.step_m(
                id,
                "interest_schedule",
                format!("loan {name}: interest counted {}", yuan(loan_total)),
                values,
                m,
            );
            total = add(total, loan_total, basis_fact)?;
        }
        Ok(total)
    }

    /// M7.2: rent forgone. Days 1..free_days free (daily rent), then free_months free, then up to
    /// discount_months at discount_share of the monthly rent; each month pro rata by the days of it
    /// that lie in the stay, the year and the window.
    fn housing(&mut self, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let free_days = self.count_param(params, "free_days")?;
        let free_months = self.count_param(params, "free_months")?;
        let discount_months = self.count_param(params, "discount_months")?;
        let discount_share = self.ratio_param(params, "discount_share")?;
        let id = self.id();
        let move_in = match self.facts.date("move_in")? {
            Fact::Known(d) => d,
            Fact::Absent => {
                let m = msg("housing_no_move_in", &[("clause", id.to_string())]);
                self.note_m(id, "stay", format!("{id}: no move-in date; nothing to subsidise"), m);
                return Ok(Decimal::ZERO);
            }
            Fact::Unknown => {
                self.missing.insert("move_in".into());
                return Ok(Decimal::ZERO);
            }
        };
        let far = NaiveDate::MAX;
        let move_out = match self.facts.date("move_out")? {
            Fact::Known(d) if d < move_in => return Err(PolicyError::bad("facts.move_out", format!("{d} is before move_in {move_in}"))),
            Fact::Known(d) => d,
            Fact::Absent => far,
            Fact::Unknown => {
                self.missing.insert("move_out".into());
                far
            }
        };
        let stay = Span::new(move_in, move_out).intersect(self.counting_span());
        let free_end = move_in
            .checked_add_days(Days::new(u64::from(free_days)))
            .ok_or_else(|| PolicyError::bad("facts.move_in", "date out of range"))?;
        let free_stay_days = Span::new(move_in, free_end).intersect(stay).days();
        let mut values = vec![(
            format!("days 1-{free_days} ({move_in}..{})", free_end.pred_opt().unwrap_or(free_end)),
            format!("{free_stay_days} days free"),
        )];
        // Rent-months forgone (free month = 1, discounted month = discount_share), summed month by month.
        let mut rent_months = Decimal::ZERO;
        for i in 0..free_months.saturating_add(discount_months) {
            let (Some(start), Some(end)) = (
                free_end.checked_add_months(Months::new(i)),
                free_end.checked_add_months(Months::new(i.saturating_add(1))),
            ) else {
                return Err(PolicyError::bad("facts.move_in", "date out of range"));
            };
            let period = Span::new(start, end);
            let days = period.intersect(stay).days();
            if days == 0 {
                continue;
            }
            let (kind, part) = if i < free_months {
                ("free", Decimal::ONE)
            } else {
                ("discounted", discount_share)
            };
            let fraction = div(Decimal::from(days), Decimal::from(period.days()), "M7.2")?;
            let forgone = mul(part, fraction, "M7.2")?;
            rent_months = add(rent_months, forgone, "M7.2")?;
            values.push((
                format!("month {:>2} ({start}..{})", i + 1, end.pred_opt().unwrap_or(end)),
                format!("{kind}: {days}/{} days × {} of the rent", period.days(), percent(part)),
            ));
        }
        let daily = if free_stay_days > 0 {
            self.rent("daily_rent_fen")?
        } else {
            Decimal::ZERO
        };
        let monthly = if rent_months > Decimal::ZERO {
            self.rent("monthly_rent_fen")?
        } else {
            Decimal::ZERO
        };
        let a = mul(Decimal::from(free_stay_days), daily, "M7.2")?;
        let b = mul(rent_months, monthly, "M7.2")?;
        let gross = add(a, b, "M7.2")?;
        values.push(("free days".into(), format!("{free_stay_days} × {} = {}", yuan(daily), yuan(a))));
        values.push((
            "rent months forgone".into(),
            format!("{} × {} = {}", short(rent_months), yuan(monthly), yuan(b)),
        ));
        let m = msg("housing_forgone", &[("year", self.year.to_string()), ("amount", yuan(gross))]);
        self.step_m(
            id,
            "housing_schedule",
            format!("rent forgone in {}: {}", self.year, yuan(gross)),
            values,
            m,
        );
        Ok(gross)
    }

    fn rent(&mut self, name: &str) -> Result<Decimal, PolicyError> {
        Ok(match self.facts.fen(name)? {
            Fact::Known(v) => Decimal::from(v),
            Fact::Absent => Decimal::ZERO,
            Fact::Unknown => {
                self.missing.insert(name.to_string());
                Decimal::ZERO
            }
        })
    }

    /// The clause's money cap, less what was already paid in the cap's scope (`consumed_fen`).
    fn cap(&mut self, gross: Decimal, params: &BTreeMap<String, Param>) -> Result<Decimal, PolicyError> {
        let (Some(scope), true) = (self.clause.cap_scope, params.contains_key("cap")) else {
            return Ok(gross);
        };
        let cap = self.fen_param(params, "cap")?;
        let id = self.id();
        if gross <= Decimal::ZERO {
            self.step_m(
                id,
                &format!("{}_cap", scope.as_str()),
                format!("{id} {}: nothing to cap", scope.words()),
                vec![],
                msg("cap_nothing", &[("clause", id.to_string()), ("scope", scope.as_str().to_string())]),
            );
            return Ok(Decimal::ZERO);
        }
        let consumed = match self.facts.fen("consumed_fen")? {
            Fact::Known(c) => c,
            Fact::Absent => 0,
            Fact::Unknown => {
                self.missing.insert("consumed_fen".into());
                0
            }
        };
        if scope == CapScope::OncePerProject && consumed > 0 {
            let reason = format!(
                "{id} pays once per project: {} was already paid for this project",
                yuan_fen(consumed)
            );
            let m = msg("cap_once_paid", &[("clause", id.to_string()), ("consumed", yuan_fen(consumed))]);
            self.reject_m(id, "once_per_project_cap", reason, m);
            return Ok(Decimal::ZERO);
        }
        let headroom = Decimal::from(cap.saturating_sub(consumed).max(0));
        let mut values = vec![
            ("cap".to_string(), yuan_fen(cap)),
            ("consumed_fen".to_string(), yuan_fen(consumed)),
            ("headroom".to_string(), yuan(headroom)),
        ];
        // M3.1, M3.2, M3.3, M6.1: the cap is this project's.
        let (project, project_id) = if matches!(scope, CapScope::PerProjectPerYear | CapScope::OncePerProject | CapScope::PerProject) {
            let shown = self.facts.shown("project_id");
            values.push(("project_id".to_string(), shown.clone()));
            (format!(" for project {shown}"), shown)
        } else {
            (String::new(), String::new())
        };
        let cap_args = |key: &str, gross: String, to: String| {
            msg(
                key,
                &[
                    ("clause", id.to_string()),
                    ("scope", scope.as_str().to_string()),
                    ("gross", gross),
                    ("to", to),
                    ("cap", yuan_fen(cap)),
                    ("consumed", yuan_fen(consumed)),
                    ("project", project_id.clone()),
                ],
            )
        };
        let rule = format!("{}_cap", scope.as_str());
        if gross > headroom {
            let mut text = format!("{id} {}: {} → {}{project}", scope.words(), yuan(gross), yuan(headroom));
            if consumed > 0 {
                text.push_str(&format!(" (cap {} less {} already paid)", yuan_fen(cap), yuan_fen(consumed)));
            }
            let key = if consumed > 0 { "cap_capped_consumed" } else { "cap_capped" };
            let m = cap_args(key, yuan(gross), yuan(headroom));
            self.step_m(id, &rule, text.clone(), values, m.clone());
            self.reason(text, Some(m));
            Ok(headroom)
        } else {
            let m = cap_args("cap_within", yuan(gross), yuan(headroom));
            self.step_m(
                id,
                &rule,
                format!("{id} {}: {} is within {}{project}", scope.words(), yuan(gross), yuan(headroom)),
                values,
                m,
            );
            Ok(gross)
        }
    }

    /// S3: grants from other policies for the same item (`other_grants`).
    fn overlap(&mut self, own: Decimal) -> Result<Decimal, PolicyError> {
        if own <= Decimal::ZERO {
            return Ok(Decimal::ZERO);
        }
        let Some(entries) = self.list("other_grants")? else {
            return Ok(own);
        };
        let mut other = Decimal::ZERO;
        let mut values = Vec::new();
        for e in &entries {
            let a = e
                .amount_fen
                .ok_or_else(|| PolicyError::bad(format!("{}.amount_fen", e.field), "required (whole fen)"))?;
            values.push((e.id.clone().unwrap_or_else(|| e.field.clone()), yuan_fen(a)));
            other = add(other, Decimal::from(a), "other_grants")?;
        }
        if other.is_zero() {
            self.step_m(
                "S3",
                "overlap",
                "no other policy paid for this item".into(),
                vec![],
                msg("s3_none", &[]),
            );
            return Ok(own);
        }
        let mode_param = self.policy.clause_param(self.clause, "overlap_mode", self.as_of);
        let mode = match mode_param.map(|p| &p.value) {
            Some(ParamValue::Mode(m)) => *m,
            _ => OverlapMode::TopUp,
        };
        if let Some(p) = mode_param {
            self.versions.insert(p.version.clone());
            values.push(("overlap_mode".into(), p.describe()));
        }
        let group = self.clause.overlap_group.clone().unwrap_or_default();
        let pay = match mode {
            OverlapMode::TopUp => {
                let pay = (own - other).max(Decimal::ZERO);
                let text = format!(
                    "S3 top-up ({group}): own {} less {} from other policies → {}",
                    yuan(own),
                    yuan(other),
                    yuan(pay)
                );
                let m = msg("s3_top_up", &[("own", yuan(own)), ("other", yuan(other)), ("pay", yuan(pay))]);
                self.step_m("S3", "overlap_top_up", text.clone(), values, m.clone());
                self.reason(text, Some(m));
                pay
            }
            OverlapMode::Exclusive if other >= own => {
                let text = format!(
                    "S3 exclusive ({group}): other policies already paid {} ≥ own {}; never both → {}",
                    yuan(other),
                    yuan(own),
                    yuan(Decimal::ZERO)
                );
                let m = msg("s3_exclusive_other", &[("own", yuan(own)), ("other", yuan(other))]);
                self.step_m("S3", "overlap_exclusive", text.clone(), values, m.clone());
                self.reason(text, Some(m));
                Decimal::ZERO
            }
            OverlapMode::Exclusive => {
                let text = format!(
                    "S3 exclusive ({group}): own {} is higher than {} from other policies; pays its own amount on condition that the other grant is renounced or returned",
                    yuan(own),
                    yuan(other)
                );
                let m = msg("s3_exclusive_own", &[("own", yuan(own)), ("other", yuan(other))]);
                self.step_m("S3", "overlap_exclusive", text.clone(), values, m.clone());
                self.reason(text, Some(m));
                own
            }
        };
        Ok(pay)
    }

    /// F1: the batch's budget factor (`budget_factor`, 1 when not given). A batch that shares a
    /// budget out to the fen (largest remainder, never a fen over) also gives this line's share
    /// (`budget_allocated_fen`) and says how the factor came about (`budget_basis`).
    fn budget(&mut self, own: Decimal) -> Result<Decimal, PolicyError> {
        let factor = match self.facts.ratio("budget_factor")? {
            Fact::Known(f) => f,
            Fact::Absent | Fact::Unknown => return Ok(own),
        };
        let allocated = match self.facts.fen("budget_allocated_fen")? {
            Fact::Known(a) => Some(a),
            Fact::Absent | Fact::Unknown => None,
        };
        let basis = match self.facts.text("budget_basis")? {
            Fact::Known(b) => Some(b),
            Fact::Absent | Fact::Unknown => None,
        };
        if factor < Decimal::ZERO || factor > Decimal::ONE {
            return Err(PolicyError::bad(
                "facts.budget_factor",
                format!("must be between 0 and 1, got {factor}"),
            ));
        }
        if factor == Decimal::ONE {
            self.step_m(
                "F1",
                "budget",
                "budget factor 1: no pro-rating".into(),
                vec![],
                msg("f1_no_prorating", &[]),
            );
            return Ok(own);
        }
        let scaled = mul(own, factor, "budget_factor")?;
        let mut values = vec![("budget_factor".to_string(), factor.normalize().to_string())];
        if let Some(p) = self.policy.clause_param(self.clause, "yearly_budget", self.as_of) {
            values.push(("yearly_budget".into(), p.describe()));
        }
        if let Some(b) = basis {
            values.push(("budget_basis".into(), b));
        }
        let mut text = format!(
            "F1 budget pro-rating: entitlements exceed the yearly budget; {} × {} = {}",
            yuan(own),
            factor.normalize(),
            yuan(scaled)
        );
        let mut m = msg(
            "f1_prorated",
            &[
                ("own", yuan(own)),
                ("factor", factor.normalize().to_string()),
                ("scaled", yuan(scaled)),
            ],
        );
        let out = match allocated {
            Some(a) => {
                // The batch's share to the fen; it never exceeds this line's own amount.
                if Decimal::from(a) > own.ceil() {
                    return Err(PolicyError::bad(
                        "facts.budget_allocated_fen",
                        format!("{} is more than the line's own amount {}", yuan_fen(a), yuan(own)),
                    ));
                }
                text.push_str(&format!(
                    "; shared out to the fen by largest remainder across the batch: {}",
                    yuan_fen(a)
                ));
                values.push(("budget_allocated_fen".into(), yuan_fen(a)));
                m.key = "f1_prorated_shared".into();
                m.args.insert("allocated".into(), yuan_fen(a));
                Decimal::from(a)
            }
            None => scaled,
        };
        self.step_m("F1", "budget", text.clone(), values, m.clone());
        self.reason(text, Some(m));
        Ok(out)
    }

    fn finish(mut self, beneficiary: &Beneficiary, amount: Decimal) -> Result<Decision, PolicyError> {
        let rounded = round_half_up(amount.max(Decimal::ZERO))?;
        let id = self.id();
        let (rounding, m) = if !self.ineligible && !self.missing.is_empty() {
            ("no rounding: the amount is undetermined".to_string(), msg("rounding_none", &[]))
        } else if Decimal::from(rounded) == amount {
            (
                format!("{} is exact to the fen", yuan(amount)),
                msg("rounding_exact", &[("amount", yuan(amount))]),
            )
        } else {
            (
                format!("half-up to the fen: {} → {}", yuan(amount), yuan_fen(rounded)),
                msg("rounding_half_up", &[("amount", yuan(amount)), ("rounded", yuan_fen(rounded))]),
            )
        };
        self.step_m(id, "rounding", rounding, vec![], m);
        let unread = self.facts.unread();
        if !unread.is_empty() {
            self.step_m(
                id,
                "unused_facts",
                format!(
                    "facts given but not read (not needed for this answer, or misspelt): {}",
                    unread.join(", ")
                ),
                vec![],
                msg("unused_facts", &[("facts", unread.join(", "))]),
            );
        }
        let (eligible, amount_fen) = if self.ineligible {
            if rounded > 0 {
                let text = format!(
                    "not eligible: nothing is paid; {} above is what the facts alone would give",
                    yuan_fen(rounded)
                );
                self.step_m(
                    id,
                    "not_eligible",
                    text,
                    vec![],
                    msg("not_eligible_would_give", &[("amount", yuan_fen(rounded))]),
                );
            }
            if !self.missing.is_empty() {
                let list = self.missing.iter().cloned().collect::<Vec<_>>().join(", ");
                let text = format!("not needed once ineligible: {list}");
                self.step_m(id, "missing_facts", text, vec![], msg("missing_not_needed", &[("facts", list)]));
                self.missing.clear();
            }
            (Some(false), Some(0))
        } else if !self.missing.is_empty() {
            // No amount at all: what the known facts alone give is not what would be paid.
            let list = self.missing.iter().cloned().collect::<Vec<_>>().join(", ");
            self.step_m(
                id,
                "missing_facts",
                format!("undetermined: no amount until these facts are known: {list}"),
                vec![("missing_facts".into(), list.clone())],
                msg("missing_undetermined", &[("facts", list.clone())]),
            );
            let m = msg("reason_undetermined", &[("facts", list.clone())]);
            self.reason(format!("undetermined: unknown facts {list}"), Some(m));
            (None, None)
        } else {
            (Some(true), Some(rounded))
        };
        if eligible == Some(true) && amount_fen == Some(0) && self.reasons.is_empty() {
            let m = msg(
                "reason_nothing_counts",
                &[("clause", id.to_string()), ("year", self.year.to_string())],
            );
            self.reason(format!("{id}: nothing counts in {}", self.year), Some(m));
        }
        Ok(Decision {
            clause: self.clause.id.clone(),
            beneficiary: beneficiary.id.clone(),
            year: self.year,
            as_of: self.as_of,
            policy_version: self.policy.version.clone(),
            versions_used: self.versions.into_iter().collect(),
            eligible,
            amount_fen,
            amount: amount_fen.map(yuan_fen),
            reasons: self.reasons,
            reason_msgs: self.reason_msgs,
            missing_facts: self.missing.into_iter().collect(),
            trace: self.trace,
        })
    }
}

fn month_span(first: NaiveDate, field: &str) -> Result<Span, PolicyError> {
    let next = first
        .checked_add_months(Months::new(1))
        .ok_or_else(|| PolicyError::bad(format!("{field}.month"), "out of range"))?;
    Ok(Span::new(first.with_day(1).unwrap_or(first), next))
}

fn extra_fen(e: &Entry, key: &str) -> Result<i64, PolicyError> {
    let field = format!("{}.{key}", e.field);
    match e.extra.get(key).and_then(|v| v.as_i64()) {
        Some(n) if n < 0 => Err(PolicyError::bad(field, format!("must not be negative (got {n})"))),
        Some(n) => Ok(n),
        None => Err(PolicyError::bad(field, "required (whole fen)")),
    }
}

fn extra_date(e: &Entry, key: &str) -> Result<NaiveDate, PolicyError> {
    let field = format!("{}.{key}", e.field);
    e.extra
        .get(key)
        .and_then(|v| v.as_str())
        .and_then(crate::facts::parse_date)
        .ok_or_else(|| PolicyError::bad(field, "required (YYYY-MM-DD)"))
}

/// A condition's message: its clause, fact and text in both languages.
fn cond_msg(key: &str, c: &Condition) -> Msg {
    msg(
        key,
        &[
            ("clause", c.clause.clone()),
            ("fact", c.fact.clone()),
            ("cond_zh", c.text_zh.clone()),
            ("cond_en", c.text_en.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_factor_scales_only_when_the_budget_is_short() {
        assert_eq!(budget_factor(100, 80), Decimal::ONE);
        assert_eq!(budget_factor(100, 0), Decimal::ONE);
        assert_eq!(budget_factor(80, 100), Decimal::new(8, 1));
        assert_eq!(budget_factor(1, 3), Decimal::new(33_333_333, 8));
        assert_eq!(budget_factor(-5, 3), Decimal::ZERO);
    }

    /// F1 (issue 17): the shares add up to the budget exactly, none above its own amount.
    #[test]
    fn largest_remainder_shares_a_budget_to_the_fen_never_a_fen_over() {
        assert_eq!(largest_remainder(&[33_333, 50_000, 30_652], 28_080), vec![8_212, 12_317, 7_551]);
        assert_eq!(largest_remainder(&[100, 200], 1_000), vec![100, 200], "fits: unchanged");
        assert_eq!(largest_remainder(&[1, 1, 1], 2), vec![1, 1, 0], "a tie goes to the earlier line");
        assert_eq!(largest_remainder(&[0, 5], 3), vec![0, 3]);
        for budget in [0, 1, 7, 999, 12_345] {
            let amounts = [1_234, 5_678, 9, 0, 4_321, 777];
            let s = largest_remainder(&amounts, budget);
            assert_eq!(s.iter().sum::<i64>(), budget.min(amounts.iter().sum()));
            assert!(s.iter().zip(amounts).all(|(x, a)| *x <= a && *x >= 0));
        }
    }

    /// Issue 17: an undetermined answer has no amount (`null`), and says what is missing.
    #[test]
    fn an_undetermined_decision_has_a_null_amount() {
        let policy = Policy::embedded().unwrap();
        let who = Beneficiary {
            id: "o".into(),
            role: opchub_domain::Role::OpcFounder,
        };
        let as_of = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let facts = Facts::from_json(r#"{"compliance_fees": [{"date": "2027-01-05", "amount_fen": 100000, "qualified": true}]}"#).unwrap();
        let d = evaluate(&policy, "M5.1", &who, 2027, &facts, as_of).unwrap();
        assert_eq!((d.eligible, d.amount_fen, d.amount.clone()), (None, None, None));
        let v = serde_json::to_value(&d).unwrap();
        assert!(v["amount_fen"].is_null() && v["amount"].is_null(), "{v}");
        let text = serde_json::to_string(&d.trace).unwrap();
        assert!(!text.contains("would be paid"), "{text}");
        assert!(text.contains("no amount until these facts are known: "), "{text}");
    }

    #[test]
    fn an_ineligible_decision_still_checks_its_facts() {
        let policy = Policy::embedded().unwrap();
        let facts = Facts::from_json(r#"{"rd_spend": [{"date": "2027-01-01", "amount_fen": -1, "qualified": true}]}"#).unwrap();
        let who = Beneficiary {
            id: "e".into(),
            role: opchub_domain::Role::Enterprise,
        };
        let as_of = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let err = evaluate(&policy, "M3.2", &who, 2027, &facts, as_of).unwrap_err();
        assert_eq!(err.field(), Some("facts.rd_spend[0].amount_fen"));
    }

    #[test]
    fn the_decision_serialises_with_the_fields_the_cli_prints() {
        let policy = Policy::embedded().unwrap();
        let who = Beneficiary {
            id: "o".into(),
            role: opchub_domain::Role::OpcFounder,
        };
        let as_of = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let d = evaluate(&policy, "M5.1", &who, 2027, &Facts::default(), as_of).unwrap();
        assert_eq!(d.eligible, None);
        assert!(d.missing_facts.contains(&"compliance_fees".to_string()));
        assert!(d.missing_facts.contains(&"zone".to_string()));
        let v = serde_json::to_value(&d).unwrap();
        for key in ["eligible", "amount_fen", "reasons", "missing_facts", "trace"] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
