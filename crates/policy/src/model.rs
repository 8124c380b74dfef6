//! The policy file as types: clauses, dated parameter values, conditions (G2 and clause-specific),
//! exclusions (F3) and the file's version history (S4). Owns parsing and validation of
//! `policy/measures.toml` and "which value was in force on a date"; it computes no amounts.

use crate::error::PolicyError;
use chrono::{Months, NaiveDate};
use opchub_domain::{Money, Role};
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Where a value comes from: the measures' own text, or the platform's starting assumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Text,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Text => "text",
            Source::Default => "default",
        }
    }
}

/// The unit a parameter is written in; it decides how `value` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Yuan,
    Ratio,
    Months,
    Days,
    Years,
    Date,
    Mode,
}

impl Unit {
    fn parse(s: &str, field: &str) -> Result<Unit, PolicyError> {
        Ok(match s {
            "yuan" => Unit::Yuan,
            "ratio" => Unit::Ratio,
            "months" => Unit::Months,
            "days" => Unit::Days,
            "years" => Unit::Years,
            "date" => Unit::Date,
            "mode" => Unit::Mode,
            other => return Err(PolicyError::invalid(field, format!("unknown unit {other:?}"))),
        })
    }
}

/// S3: what happens when another policy already paid for the same item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapMode {
    /// Pay the difference up to this policy's own amount.
    TopUp,
    /// Pay nothing when the other grant was as high or higher; otherwise this policy's amount.
    Exclusive,
}

impl OverlapMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OverlapMode::TopUp => "top_up",
            OverlapMode::Exclusive => "exclusive",
        }
    }
}

/// A parameter's value, already read according to its unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// Money in fen.
    Fen(i64),
    Ratio(Decimal),
    Count(u32),
    Date(NaiveDate),
    Mode(OverlapMode),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Fen(fen) => write!(f, "{}", Money::from_fen(*fen)),
            ParamValue::Ratio(r) => write!(f, "{}%", (*r * Decimal::ONE_HUNDRED).normalize()),
            ParamValue::Count(n) => write!(f, "{n}"),
            ParamValue::Date(d) => write!(f, "{d}"),
            ParamValue::Mode(m) => f.write_str(m.as_str()),
        }
    }
}

/// One dated value of one parameter. A parameter's history is every entry with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub unit: Unit,
    pub value: ParamValue,
    pub valid_from: NaiveDate,
    pub source: Source,
    pub version: String,
    /// The words of the measures this value restates (for `text` values).
    pub cite: Option<String>,
    pub note: Option<String>,
}

impl Param {
    /// "10% (text, v2026.1, from 2026-12-01)": how a trace names a value.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, v{}, from {})",
            self.value,
            self.source.as_str(),
            self.version,
            self.valid_from
        )
    }
}

/// How a condition's fact is tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    IsTrue,
    OneOf(Vec<String>),
}

/// An eligibility condition (G2 or a clause's own). Exclusions (F3) use the same shape with
/// the opposite sense: their fact must be known false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub id: String,
    pub clause: String,
    pub fact: String,
    pub test: Test,
    /// F3 (exclusions only): a list of dated events that decides the flag when the flag itself is
    /// not given — an event inside the validity window, on or before the as-of date, excludes
    /// (`safety_accidents` for `safety_accident_in_window`).
    pub dated_fact: Option<String>,
    pub text_zh: String,
    pub text_en: String,
}

/// The computation a paying clause uses (see `eval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// M1.1: qualified workstation-months × rate.
    WorkstationMonths { basis_fact: String },
    /// M2.2, M2.3-invoker, M2.4, M3.2, M5.1: Σ qualified dated amounts × rate.
    RateOfAmounts { basis_fact: String },
    /// M2.3-publisher: revenue of paid calls × rate + free calls × amount per call.
    SkillPublisher,
    /// M3.1, M3.3, M6.1, M6.2: the amount decided in review (or by the fund), dated by an event.
    ReviewAmount { amount_fact: String, date_fact: String },
    /// M6.3: interest month by month, principal and months capped.
    LoanInterest { basis_fact: String },
    /// M7.2: free days, free months, then discounted months of rent.
    HousingSchedule,
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::WorkstationMonths { .. } => "workstation_months",
            Rule::RateOfAmounts { .. } => "rate_of_amounts",
            Rule::SkillPublisher => "skill_publisher",
            Rule::ReviewAmount { .. } => "review_amount",
            Rule::LoanInterest { .. } => "loan_interest",
            Rule::HousingSchedule => "housing_schedule",
        }
    }

    /// The fact the rule's basis is read from (`discounts`, `paid_calls`, `review_amount_fen`, …).
    pub fn basis_fact(&self) -> Option<&str> {
        match self {
            Rule::WorkstationMonths { basis_fact } | Rule::RateOfAmounts { basis_fact } | Rule::LoanInterest { basis_fact } => {
                Some(basis_fact)
            }
            Rule::SkillPublisher => Some("paid_calls"),
            Rule::ReviewAmount { amount_fact, .. } => Some(amount_fact),
            Rule::HousingSchedule => None,
        }
    }

    /// The parameters the rule reads; the policy file must define each.
    fn required_params(&self) -> &'static [&'static str] {
        match self {
            Rule::WorkstationMonths { .. } => &["rate_per_workstation_month", "cap"],
            Rule::RateOfAmounts { .. } => &["rate", "cap"],
            Rule::SkillPublisher => &["revenue_rate", "per_free_call", "cap"],
            Rule::ReviewAmount { .. } => &["cap"],
            Rule::LoanInterest { .. } => &["interest_share", "principal_cap", "months_cap"],
            Rule::HousingSchedule => &["free_days", "free_months", "discount_months", "discount_share"],
        }
    }

    fn has_money_cap(&self) -> bool {
        self.required_params().contains(&"cap")
    }
}

/// What a money cap is counted over; `consumed_fen` is what was already paid in that scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapScope {
    PerYear,
    PerProjectPerYear,
    OncePerProject,
    PerProject,
    PerBeneficiary,
}

impl CapScope {
    fn parse(s: &str, field: &str) -> Result<CapScope, PolicyError> {
        Ok(match s {
            "per_year" => CapScope::PerYear,
            "per_project_per_year" => CapScope::PerProjectPerYear,
            "once_per_project" => CapScope::OncePerProject,
            "per_project" => CapScope::PerProject,
            "per_beneficiary" => CapScope::PerBeneficiary,
            other => return Err(PolicyError::invalid(field, format!("unknown cap scope {other:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CapScope::PerYear => "per_year",
            CapScope::PerProjectPerYear => "per_project_per_year",
            CapScope::OncePerProject => "once_per_project",
            CapScope::PerProject => "per_project",
            CapScope::PerBeneficiary => "per_beneficiary",
        }
    }

    /// How a trace names the cap: "annual cap", "per-project annual cap", …
    pub fn words(self) -> &'static str {
        match self {
            CapScope::PerYear => "annual cap",
            CapScope::PerProjectPerYear => "per-project annual cap",
            CapScope::OncePerProject => "once-per-project cap",
            CapScope::PerProject => "per-project cap",
            CapScope::PerBeneficiary => "per-beneficiary cap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub id: String,
    pub title_zh: String,
    pub title_en: String,
    /// A short restatement in our own words.
    pub summary: String,
    /// The same restatement in Chinese (our own words, not the measures' text).
    pub summary_zh: String,
    /// grant, award, investment, rent_relief, in_kind, service, rule, procedure, …
    pub kind: String,
    pub beneficiary: Option<Role>,
    pub rule: Option<Rule>,
    pub basis: Option<String>,
    pub cap_scope: Option<CapScope>,
    /// Condition ids (G2 and the clause's own).
    pub conditions: Vec<String>,
    /// Exclusion ids (F3); every exclusion when the file does not list them.
    pub exclusions: Vec<String>,
    /// S3: items in one group are "the same thing" when comparing with other policies.
    pub overlap_group: Option<String>,
    pub evidence: Vec<String>,
    /// The `evidence` items in Chinese, one per item (empty when the file gives none).
    pub evidence_zh: Vec<String>,
    /// For each `evidence` item, the facts it proves: when a reviewer finds that document false
    /// (F2), the engine recomputes without those facts. Empty when the file does not say.
    pub evidence_proves: Vec<Vec<String>>,
    pub review_stages: Vec<String>,
    /// F1: the district agency that reviews applications for this clause (`agency_review` stage).
    pub review_agency: Option<String>,
    pub params: Vec<Param>,
}

impl Clause {
    pub fn pays(&self) -> bool {
        self.rule.is_some()
    }

    /// The value of `name` in force on `as_of`: the entry with the latest `valid_from` on or before it.
    pub fn param(&self, name: &str, as_of: NaiveDate) -> Option<&Param> {
        in_force(&self.params, name, as_of)
    }

    /// Names of this clause's parameters, in file order, each once.
    pub fn param_names(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.params
            .iter()
            .filter(|p| seen.insert(p.name.as_str()))
            .map(|p| p.name.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: String,
    pub date: NaiveDate,
    pub note: String,
}

/// S2: the validity window, half-open: `start <= day < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Window {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }

    /// The last day in force.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.last_day())
    }
}

/// The whole policy file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub schema: u32,
    pub version: String,
    pub title_zh: String,
    pub title_en: String,
    pub versions: Vec<VersionEntry>,
    /// Policy-wide parameters (publication_date, validity_years, overlap_mode, yearly_budget).
    pub params: Vec<Param>,
    pub conditions: Vec<Condition>,
    pub exclusions: Vec<Condition>,
    pub clauses: Vec<Clause>,
}

fn in_force<'a>(params: &'a [Param], name: &str, as_of: NaiveDate) -> Option<&'a Param> {
    params
        .iter()
        .filter(|p| p.name == name && p.valid_from <= as_of)
        .max_by_key(|p| p.valid_from)
}

impl Policy {
    /// The measures shipped with this build (`policy/measures.toml`).
    pub fn embedded() -> Result<Policy, PolicyError> {
        Policy::from_toml(crate::EMBEDDED_MEASURES)
    }

    /// Parses and validates a policy file.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let raw: raw::File = toml::from_str(text).map_err(|e| PolicyError::Parse {
            file: "policy file".into(),
            message: e.to_string(),
        })?;
        raw.validate()
    }

    pub fn clause(&self, id: &str) -> Option<&Clause> {
        self.clauses.iter().find(|c| c.id == id)
    }

    pub fn condition(&self, id: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.id == id)
    }

    pub fn exclusion(&self, id: &str) -> Option<&Condition> {
        self.exclusions.iter().find(|c| c.id == id)
    }

    /// A policy-wide value in force on `as_of`.
    pub fn param(&self, name: &str, as_of: NaiveDate) -> Option<&Param> {
        in_force(&self.params, name, as_of)
    }

    /// A clause's value in force on `as_of`, falling back to the policy-wide one of the same name
    /// (a clause may override `overlap_mode` or carry its own `yearly_budget`).
    pub fn clause_param<'a>(&'a self, clause: &'a Clause, name: &str, as_of: NaiveDate) -> Option<&'a Param> {
        clause.param(name, as_of).or_else(|| self.param(name, as_of))
    }

    /// S2: the validity window as the values in force on `as_of` describe it; `None` before the
    /// first publication date entry is in force.
    pub fn window(&self, as_of: NaiveDate) -> Option<(Window, &Param, &Param)> {
        let publication = self.param("publication_date", as_of)?;
        let years = self.param("validity_years", as_of)?;
        let (ParamValue::Date(start), ParamValue::Count(n)) = (&publication.value, &years.value) else {
            return None;
        };
        let end = start.checked_add_months(Months::new(n.checked_mul(12)?))?;
        Some((Window { start: *start, end }, publication, years))
    }

    /// The window as the latest values say (for messages when `as_of` lies outside every window).
    pub fn latest_window(&self) -> Option<Window> {
        let latest = self.params.iter().map(|p| p.valid_from).max()?;
        self.window(latest).map(|(w, _, _)| w)
    }

    /// S2 at the edge: an error naming `as_of` when the date is outside the policy's window.
    pub fn check_as_of(&self, as_of: NaiveDate) -> Result<Window, PolicyError> {
        match self.window(as_of) {
            Some((w, _, _)) if w.contains(as_of) => Ok(w),
            Some((w, _, _)) => Err(PolicyError::bad(
                "as_of",
                format!("{as_of} is outside the policy's validity window {w} (S2)"),
            )),
            None => Err(PolicyError::bad(
                "as_of",
                match self.latest_window() {
                    Some(w) => format!("{as_of} is before the measures took effect; validity window {w} (S2)"),
                    None => format!("{as_of}: the policy file defines no validity window (S2)"),
                },
            )),
        }
    }

    /// A copy with one more dated value (a new version entry): how the committee changes a value
    /// without losing the old one (S4). `clause` = `None` amends a policy-wide parameter.
    pub fn amend(
        &self,
        version: &str,
        valid_from: NaiveDate,
        clause: Option<&str>,
        name: &str,
        value: &toml::Value,
        note: &str,
    ) -> Result<Policy, PolicyError> {
        let mut next = self.clone();
        if !next.versions.iter().any(|v| v.version == version) {
            next.versions.push(VersionEntry {
                version: version.to_string(),
                date: valid_from,
                note: note.to_string(),
            });
        }
        next.version = version.to_string();
        let field = format!("{}.{name}", clause.unwrap_or("params"));
        let params = match clause {
            Some(id) => {
                let c = next
                    .clauses
                    .iter_mut()
                    .find(|c| c.id == id)
                    .ok_or_else(|| PolicyError::UnknownClause(id.to_string()))?;
                &mut c.params
            }
            None => &mut next.params,
        };
        let unit = match params.iter().find(|p| p.name == name) {
            Some(p) => p.unit,
            None if name == "overlap_mode" => Unit::Mode,
            None if name == "yearly_budget" => Unit::Yuan,
            None => return Err(PolicyError::invalid(field, "no such parameter to amend")),
        };
        params.push(Param {
            name: name.to_string(),
            unit,
            value: raw::read_value(unit, value, &field)?,
            valid_from,
            source: Source::Default,
            version: version.to_string(),
            cite: None,
            note: Some(note.to_string()),
        });
        Ok(next)
    }

    /// A preview copy "as if published on `start`" (S2 what-if, and the demo before the real
    /// publication date): the publication date becomes `start` and every value of the first
    /// version takes effect from `start` instead of its original date. Labelled `{version}+preview`.
    pub fn preview_from(&self, start: NaiveDate) -> Policy {
        let mut next = self.clone();
        let first = self
            .params
            .iter()
            .chain(self.clauses.iter().flat_map(|c| c.params.iter()))
            .map(|p| p.valid_from)
            .min();
        let Some(first) = first else { return next };
        if start >= first {
            return next;
        }
        let shift = |ps: &mut Vec<Param>| {
            for p in ps.iter_mut().filter(|p| p.valid_from == first) {
                p.valid_from = start;
                if p.name == "publication_date" {
                    p.value = ParamValue::Date(start);
                }
            }
        };
        shift(&mut next.params);
        for c in &mut next.clauses {
            shift(&mut c.params);
        }
        next.version = format!("{}+preview", self.version);
        next
    }
}

/// The file as written; `validate` turns it into `Policy`.
mod raw {
    use super::*;
    use serde::Deserialize;
    use toml::value::Datetime;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        schema: u32,
        version: String,
        title_zh: String,
        title_en: String,
        versions: Vec<Version>,
        #[serde(default)]
        params: Vec<RawParam>,
        #[serde(default)]
        conditions: Vec<RawCondition>,
        #[serde(default)]
        exclusions: Vec<RawCondition>,
        clauses: Vec<RawClause>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Version {
        version: String,
        date: Datetime,
        note: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawParam {
        name: String,
        unit: String,
        value: toml::Value,
        valid_from: Datetime,
        source: String,
        version: String,
        cite: Option<String>,
        note: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawCondition {
        id: String,
        clause: String,
        fact: String,
        test: Option<String>,
        values: Option<Vec<String>>,
        dated_fact: Option<String>,
        text_zh: String,
        text_en: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawClause {
        id: String,
        title_zh: String,
        title_en: String,
        summary: String,
        summary_zh: String,
        kind: String,
        beneficiary: Option<String>,
        rule: Option<String>,
        basis: Option<String>,
        basis_fact: Option<String>,
        amount_fact: Option<String>,
        date_fact: Option<String>,
        cap_scope: Option<String>,
        #[serde(default)]
        conditions: Vec<String>,
        exclusions: Option<Vec<String>>,
        overlap_group: Option<String>,
        #[serde(default)]
        evidence: Vec<String>,
        #[serde(default)]
        evidence_zh: Vec<String>,
        #[serde(default)]
        evidence_proves: Vec<Vec<String>>,
        #[serde(default)]
        review_stages: Vec<String>,
        review_agency: Option<String>,
        #[serde(default)]
        params: Vec<RawParam>,
    }

    pub(super) fn date(d: &Datetime, field: &str) -> Result<NaiveDate, PolicyError> {
        match (&d.date, &d.time) {
            (Some(date), None) => NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
                .ok_or_else(|| PolicyError::invalid(field, format!("not a calendar date: {d}"))),
            _ => Err(PolicyError::invalid(field, format!("expected a date like 2026-12-01, got {d}"))),
        }
    }

    pub(super) fn read_value(unit: Unit, v: &toml::Value, field: &str) -> Result<ParamValue, PolicyError> {
        let bad = |what: &str| PolicyError::invalid(format!("{field}.value"), format!("expected {what}, got {v}"));
        Ok(match unit {
            Unit::Yuan => {
                let s = v.as_str().ok_or_else(|| bad("an amount in yuan as a string, like \"500000\""))?;
                let m: Money = s.parse().map_err(|_| bad("an amount in yuan as a string, like \"500000\""))?;
                if m.is_negative() {
                    return Err(bad("an amount that is not negative"));
                }
                ParamValue::Fen(m.fen())
            }
            Unit::Ratio => {
                let s = v.as_str().ok_or_else(|| bad("a ratio as a decimal string, like \"0.10\""))?;
                let r = Decimal::from_str(s).map_err(|_| bad("a ratio as a decimal string, like \"0.10\""))?;
                if r < Decimal::ZERO || r > Decimal::ONE {
                    return Err(bad("a ratio between 0 and 1"));
                }
                ParamValue::Ratio(r)
            }
            Unit::Months | Unit::Days | Unit::Years => {
                let n = v.as_integer().ok_or_else(|| bad("a whole number"))?;
                ParamValue::Count(u32::try_from(n).map_err(|_| bad("a whole number that is not negative"))?)
            }
            Unit::Date => ParamValue::Date(date(v.as_datetime().ok_or_else(|| bad("a date like 2026-12-01"))?, field)?),
            Unit::Mode => match v.as_str() {
                Some("top_up") => ParamValue::Mode(OverlapMode::TopUp),
                Some("exclusive") => ParamValue::Mode(OverlapMode::Exclusive),
                _ => return Err(bad("\"top_up\" or \"exclusive\"")),
            },
        })
    }

    fn read_params(raw: Vec<RawParam>, scope: &str, versions: &BTreeSet<String>) -> Result<Vec<Param>, PolicyError> {
        let mut out: Vec<Param> = Vec::with_capacity(raw.len());
        for (i, p) in raw.into_iter().enumerate() {
            let field = format!("{scope}.params[{i}] ({})", p.name);
            let unit = Unit::parse(&p.unit, &field)?;
            let source = match p.source.as_str() {
                "text" => Source::Text,
                "default" => Source::Default,
                other => {
                    return Err(PolicyError::invalid(
                        &field,
                        format!("source must be \"text\" or \"default\", got {other:?}"),
                    ))
                }
            };
            if !versions.contains(&p.version) {
                return Err(PolicyError::invalid(
                    &field,
                    format!("version {:?} is not in [[versions]]", p.version),
                ));
            }
            let valid_from = date(&p.valid_from, &field)?;
            if let Some(prev) = out.iter().find(|q| q.name == p.name) {
                if prev.unit != unit {
                    return Err(PolicyError::invalid(&field, "a parameter keeps its unit across versions"));
                }
            }
            if out.iter().any(|q| q.name == p.name && q.valid_from == valid_from) {
                return Err(PolicyError::invalid(&field, "two values of one parameter valid from the same day"));
            }
            out.push(Param {
                value: read_value(unit, &p.value, &field)?,
                name: p.name,
                unit,
                valid_from,
                source,
                version: p.version,
                cite: p.cite,
                note: p.note,
            });
        }
        Ok(out)
    }

    fn condition(c: RawCondition, exclusion: bool) -> Result<Condition, PolicyError> {
        let field = format!("{}.{}", if exclusion { "exclusions" } else { "conditions" }, c.id);
        let test = match (c.test.as_deref(), c.values) {
            (None, None) if exclusion => Test::IsTrue,
            (Some("is_true"), None) => Test::IsTrue,
            (Some("one_of"), Some(values)) if !values.is_empty() => Test::OneOf(values),
            _ => return Err(PolicyError::invalid(field, "test must be \"is_true\", or \"one_of\" with values")),
        };
        if c.dated_fact.is_some() && !exclusion {
            return Err(PolicyError::invalid(field, "dated_fact is for exclusions (F3)"));
        }
        Ok(Condition {
            id: c.id,
            clause: c.clause,
            fact: c.fact,
            test,
            dated_fact: c.dated_fact,
            text_zh: c.text_zh,
            text_en: c.text_en,
        })
    }

    impl File {
        pub(super) fn validate(self) -> Result<Policy, PolicyError> {
            if self.schema != 1 {
                return Err(PolicyError::invalid(
                    "schema",
                    format!("this build reads schema 1, the file is schema {}", self.schema),
                ));
            }
            let mut versions = Vec::new();
            for v in self.versions {
                versions.push(VersionEntry {
                    date: date(&v.date, &format!("versions.{}", v.version))?,
                    version: v.version,
                    note: v.note,
                });
            }
            let names: BTreeSet<String> = versions.iter().map(|v| v.version.clone()).collect();
            if names.len() != versions.len() {
                return Err(PolicyError::invalid("versions", "a version is listed twice"));
            }
            if !names.contains(&self.version) {
                return Err(PolicyError::invalid(
                    "version",
                    format!("{:?} is not in [[versions]]", self.version),
                ));
            }
            let params = read_params(self.params, "params", &names)?;
            for required in ["publication_date", "validity_years", "overlap_mode"] {
                if !params.iter().any(|p| p.name == required) {
                    return Err(PolicyError::invalid(
                        "params",
                        format!("the policy-wide parameter {required} is missing"),
                    ));
                }
            }
            let conditions = self
                .conditions
                .into_iter()
                .map(|c| condition(c, false))
                .collect::<Result<Vec<_>, _>>()?;
            let exclusions = self
                .exclusions
                .into_iter()
                .map(|c| condition(c, true))
                .collect::<Result<Vec<_>, _>>()?;
            let mut clauses: Vec<Clause> = Vec::new();
            for c in self.clauses {
                let field = format!("clauses.{}", c.id);
                // A clause is named in traces, caps and settlement lines by its id (found by the
                // policy-file fuzzer: an empty id was accepted).
                if c.id.trim().is_empty() || c.id.trim() != c.id || c.id.chars().any(char::is_control) {
                    return Err(PolicyError::invalid(field, "a clause needs an id without surrounding spaces"));
                }
                if clauses.iter().any(|d| d.id == c.id) {
                    return Err(PolicyError::invalid(field, "clause listed twice"));
                }
                let need = |v: Option<String>, what: &str| {
                    v.ok_or_else(|| PolicyError::invalid(format!("{field}.{what}"), "required by the clause's rule"))
                };
                let rule = match c.rule.as_deref() {
                    None => None,
                    Some("workstation_months") => Some(Rule::WorkstationMonths {
                        basis_fact: need(c.basis_fact, "basis_fact")?,
                    }),
                    Some("rate_of_amounts") => Some(Rule::RateOfAmounts {
                        basis_fact: need(c.basis_fact, "basis_fact")?,
                    }),
                    Some("skill_publisher") => Some(Rule::SkillPublisher),
                    Some("review_amount") => Some(Rule::ReviewAmount {
                        amount_fact: need(c.amount_fact, "amount_fact")?,
                        date_fact: need(c.date_fact, "date_fact")?,
                    }),
                    Some("loan_interest") => Some(Rule::LoanInterest {
                        basis_fact: need(c.basis_fact, "basis_fact")?,
                    }),
                    Some("housing_schedule") => Some(Rule::HousingSchedule),
                    Some(other) => return Err(PolicyError::invalid(format!("{field}.rule"), format!("unknown rule {other:?}"))),
                };
                let beneficiary = match c.beneficiary {
                    Some(b) => Some(
                        b.parse::<Role>()
                            .map_err(|e| PolicyError::invalid(format!("{field}.beneficiary"), e.to_string()))?,
                    ),
                    None => None,
                };
                let cap_scope = match c.cap_scope {
                    Some(s) => Some(CapScope::parse(&s, &format!("{field}.cap_scope"))?),
                    None => None,
                };
                let clause_params = read_params(c.params, &field, &names)?;
                if let Some(rule) = &rule {
                    if beneficiary.is_none() {
                        return Err(PolicyError::invalid(
                            format!("{field}.beneficiary"),
                            "a paying clause names its beneficiary",
                        ));
                    }
                    for p in rule.required_params() {
                        if !clause_params.iter().any(|q| q.name == *p) {
                            return Err(PolicyError::invalid(
                                format!("{field}.params"),
                                format!("rule {} needs {p}", rule.name()),
                            ));
                        }
                    }
                    if rule.has_money_cap() && cap_scope.is_none() {
                        return Err(PolicyError::invalid(
                            format!("{field}.cap_scope"),
                            "a capped clause says what the cap counts over",
                        ));
                    }
                }
                if !c.evidence_zh.is_empty() && c.evidence_zh.len() != c.evidence.len() {
                    return Err(PolicyError::invalid(
                        format!("{field}.evidence_zh"),
                        "one Chinese name per evidence item",
                    ));
                }
                if !c.evidence_proves.is_empty() && c.evidence_proves.len() != c.evidence.len() {
                    return Err(PolicyError::invalid(
                        format!("{field}.evidence_proves"),
                        "one list of facts per evidence item",
                    ));
                }
                if c.review_stages.iter().any(|s| s == "agency_review" || s.starts_with("fund_")) && c.review_agency.is_none() {
                    return Err(PolicyError::invalid(
                        format!("{field}.review_agency"),
                        "a clause reviewed by an agency names the agency",
                    ));
                }
                for id in &c.conditions {
                    if !conditions.iter().any(|k| &k.id == id) {
                        return Err(PolicyError::invalid(format!("{field}.conditions"), format!("no condition {id:?}")));
                    }
                }
                let clause_exclusions = match c.exclusions {
                    Some(list) => {
                        for id in &list {
                            if !exclusions.iter().any(|k| &k.id == id) {
                                return Err(PolicyError::invalid(format!("{field}.exclusions"), format!("no exclusion {id:?}")));
                            }
                        }
                        list
                    }
                    None if rule.is_some() => exclusions.iter().map(|e| e.id.clone()).collect(),
                    None => Vec::new(),
                };
                clauses.push(Clause {
                    id: c.id,
                    title_zh: c.title_zh,
                    title_en: c.title_en,
                    summary: c.summary,
                    summary_zh: c.summary_zh,
                    kind: c.kind,
                    beneficiary,
                    rule,
                    basis: c.basis,
                    cap_scope,
                    conditions: c.conditions,
                    exclusions: clause_exclusions,
                    overlap_group: c.overlap_group,
                    evidence: c.evidence,
                    evidence_zh: c.evidence_zh,
                    evidence_proves: c.evidence_proves,
                    review_stages: c.review_stages,
                    review_agency: c.review_agency,
                    params: clause_params,
                });
            }
            Ok(Policy {
                schema: self.schema,
                version: self.version,
                title_zh: self.title_zh,
                title_en: self.title_en,
                versions,
                params,
                conditions,
                exclusions,
                clauses,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_preview_moves_the_window_and_the_first_values_but_nothing_else() {
        let p = Policy::embedded().unwrap();
        let start = p.latest_window().unwrap().start;
        let q = p.preview_from(d(2026, 1, 1));
        assert_eq!(q.version, format!("{}+preview", p.version));
        let (w, _, _) = q.window(d(2026, 6, 1)).unwrap();
        assert_eq!((w.start, w.end), (d(2026, 1, 1), d(2028, 1, 1)));
        // S2: the real policy is not in force on that day; the preview is, with the same values.
        assert!(p.window(d(2026, 6, 1)).is_none() || !p.window(d(2026, 6, 1)).unwrap().0.contains(d(2026, 6, 1)));
        let cap = |pol: &Policy, on| pol.clause("M2.3-publisher").unwrap().param("cap", on).map(|x| x.value.clone());
        assert_eq!(cap(&q, d(2026, 6, 1)), cap(&p, start));
        // A later start is no preview at all.
        assert_eq!(p.preview_from(d(2030, 1, 1)), p);
    }

    #[test]
    fn the_embedded_policy_has_every_clause_of_the_measures() {
        let p = Policy::embedded().unwrap();
        for id in [
            "G1",
            "G2",
            "M1.1",
            "M1.2",
            "M2.1",
            "M2.2",
            "M2.3",
            "M2.3-publisher",
            "M2.3-invoker",
            "M2.4",
            "M3.1",
            "M3.2",
            "M3.3",
            "M4.1",
            "M4.2",
            "M4.3",
            "M5.1",
            "M6.1",
            "M6.2",
            "M6.3",
            "M7.1",
            "M7.2",
            "M8.1",
            "F1",
            "F2",
            "F3",
            "S1",
            "S2",
            "S3",
            "S4",
            "S5",
        ] {
            assert!(p.clause(id).is_some(), "{id} missing");
        }
        let paying: Vec<&str> = p.clauses.iter().filter(|c| c.pays()).map(|c| c.id.as_str()).collect();
        assert_eq!(
            paying,
            [
                "M1.1",
                "M2.2",
                "M2.3-publisher",
                "M2.3-invoker",
                "M2.4",
                "M3.1",
                "M3.2",
                "M3.3",
                "M5.1",
                "M6.1",
                "M6.2",
                "M6.3",
                "M7.2"
            ]
        );
    }

    #[test]
    fn every_clause_has_a_chinese_summary() {
        let p = Policy::embedded().unwrap();
        for c in &p.clauses {
            assert!(!c.summary_zh.trim().is_empty(), "{} has an empty summary_zh", c.id);
            assert!(
                c.summary_zh.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
                "{} summary_zh has no Chinese character",
                c.id
            );
        }
    }

    #[test]
    fn caps_come_from_the_text() {
        let p = Policy::embedded().unwrap();
        for c in p.clauses.iter().filter(|c| c.pays()) {
            for name in ["cap", "principal_cap", "months_cap"] {
                if let Some(v) = c.param(name, d(2027, 1, 1)) {
                    assert_eq!(v.source, Source::Text, "{} {name}", c.id);
                    assert!(v.cite.is_some(), "{} {name} cites the text", c.id);
                }
            }
        }
        let m32 = p.clause("M3.2").unwrap();
        assert_eq!(m32.param("cap", d(2027, 1, 1)).unwrap().value, ParamValue::Fen(50_000_000));
        assert_eq!(
            m32.param("rate", d(2027, 1, 1)).unwrap().value,
            ParamValue::Ratio(Decimal::new(10, 2))
        );
    }

    #[test]
    fn s2_window_is_two_years_from_publication() {
        let p = Policy::embedded().unwrap();
        let (w, _, _) = p.window(d(2027, 1, 1)).unwrap();
        assert_eq!((w.start, w.last_day()), (d(2026, 12, 1), d(2028, 11, 30)));
        assert!(p.check_as_of(d(2028, 11, 30)).is_ok());
        assert_eq!(p.check_as_of(d(2028, 12, 1)).unwrap_err().field(), Some("as_of"));
        assert_eq!(p.check_as_of(d(2026, 11, 30)).unwrap_err().field(), Some("as_of"));
    }

    #[test]
    fn amending_keeps_the_old_value() {
        let p = Policy::embedded().unwrap();
        let q = p
            .amend(
                "2027.1",
                d(2027, 7, 1),
                None,
                "overlap_mode",
                &toml::Value::String("exclusive".into()),
                "test",
            )
            .unwrap();
        assert_eq!(
            q.param("overlap_mode", d(2027, 6, 30)).unwrap().value,
            ParamValue::Mode(OverlapMode::TopUp)
        );
        assert_eq!(
            q.param("overlap_mode", d(2027, 7, 1)).unwrap().value,
            ParamValue::Mode(OverlapMode::Exclusive)
        );
        let bad = p.amend(
            "2027.1",
            d(2027, 7, 1),
            Some("M3.2"),
            "rate",
            &toml::Value::String("1.5".into()),
            "test",
        );
        assert!(matches!(bad, Err(PolicyError::InvalidPolicy { .. })));
    }

    #[test]
    fn bad_policy_files_are_refused_with_the_field() {
        let good = crate::EMBEDDED_MEASURES;
        let cases = [
            (
                good.replacen("version = \"2026.1\"\ncite", "version = \"1999\"\ncite", 1),
                "not in [[versions]]",
            ),
            (good.replacen("value = \"500000\"", "value = \"-500000\"", 1), "not negative"),
            (good.replacen("source = \"text\"", "source = \"rumour\"", 1), "source must be"),
            (good.replacen("rule = \"rate_of_amounts\"", "rule = \"guess\"", 1), "unknown rule"),
            (
                good.replacen("conditions = [\"g2_zone\",", "conditions = [\"g3_zone\",", 1),
                "no condition",
            ),
            (good.replacen("schema = 1", "schema = 2", 1), "schema"),
            (
                good.replacen(
                    "evidence_zh = [\"赛事结果公告\", \"获奖证书\"]",
                    "evidence_zh = [\"赛事结果公告\"]",
                    1,
                ),
                "one Chinese name per evidence item",
            ),
            ("not toml at all [".to_string(), "policy file"),
        ];
        for (text, want) in cases {
            assert_ne!(text, good, "the mutation for {want:?} changed nothing");
            let Err(err) = Policy::from_toml(&text) else {
                panic!("a file that should fail with {want:?} was accepted");
            };
            assert!(err.to_string().contains(want), "{err} should mention {want}");
        }
    }
}
