//! Application forms generated from the policy file: one field per fact the clause's conditions
//! and rule read that the platform cannot know itself, one slot per evidence item. Facts the
//! platform knows (G2 zone and registrations, F3 lists, S3 grants, caps) are filled in by the
//! platform and cannot be typed in by the applicant.

use chrono::NaiveDate;
use opchub_policy::{CapScope, Clause, Policy, Rule};
use serde_json::{json, Map, Value};

/// Facts the platform fills in (registry, F3 lists, S3 register, cap ledger); never on a form.
pub const PLATFORM_FACTS: &[&str] = &[
    "zone",
    "market_registered",
    "tax_registered",
    "in_district",
    "restricted_industry",
    "no_support_sanction",
    "safety_accident_in_window",
    "safety_accidents",
    "excluded_by_review",
    "other_grants",
    "consumed_fen",
];

/// At most this many dated lines (spend, fees, loans) on one application.
pub const MAX_ENTRIES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A statement the applicant makes and proves with evidence (a condition's fact).
    Declare,
    /// An amount in fen (e.g. the amount requested for review).
    Fen,
    Date,
    /// A short text (a project id).
    Text,
    /// Dated amounts: `[{ "date": "2027-03-01", "amount_fen": 120000, "note": "…" }]`.
    Entries,
    /// Loans (M6.3): `[{ "id", "principal_fen", "first_drawdown", "interest": [{ "month", "amount_fen" }] }]`.
    Loans,
    /// One of `options`.
    Choice,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Field {
    /// The fact's name, as the engine reads it.
    pub name: String,
    pub kind: FieldKind,
    pub label_zh: String,
    pub label_en: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct EvidenceSlot {
    pub index: usize,
    pub text: String,
    /// The item in Chinese (the policy file's `evidence_zh`), else the text.
    pub text_zh: String,
    /// Facts this document proves; a false document takes them away (F2).
    pub proves: Vec<String>,
    pub required: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FormSpec {
    pub clause: String,
    pub title_zh: String,
    pub title_en: String,
    pub beneficiary: Option<String>,
    /// The engine computes an amount (a paying rule); otherwise the decision grants or refuses.
    pub computes_amount: bool,
    /// The amount is decided in review (`review_amount`); the applicant states what it asks for.
    pub amount_decided_in_review: bool,
    /// Whether approved applications are paid by the finance bureau (a `finance_payment` stage).
    pub paid_by_finance: bool,
    pub stages: Vec<String>,
    pub agency: Option<String>,
    pub fields: Vec<Field>,
    pub evidence: Vec<EvidenceSlot>,
}

/// M1.1 is paid month by month from the platform's occupancy data (免申即享, issue 6); its
/// application is the community's qualification, which the settlement relies on: no money here.
pub const QUALIFICATION_ONLY: &[&str] = &["M1.1"];

/// The form of `clause_id`, or `None` when the clause is not applied for.
pub fn form_spec(policy: &Policy, clause_id: &str) -> Option<FormSpec> {
    if !crate::APPLICATION_CLAUSES.contains(&clause_id) {
        return None;
    }
    let c = policy.clause(clause_id)?;
    let qualification = QUALIFICATION_ONLY.contains(&clause_id);
    let mut fields = Vec::new();
    for id in &c.conditions {
        let Some(cond) = policy.condition(id) else { continue };
        if PLATFORM_FACTS.contains(&cond.fact.as_str()) || fields.iter().any(|f: &Field| f.name == cond.fact) {
            continue;
        }
        fields.push(Field {
            name: cond.fact.clone(),
            kind: FieldKind::Declare,
            label_zh: cond.text_zh.clone(),
            label_en: cond.text_en.clone(),
            required: true,
            options: vec![],
        });
    }
    let per_project = matches!(
        c.cap_scope,
        Some(CapScope::PerProjectPerYear | CapScope::OncePerProject | CapScope::PerProject)
    );
    if per_project {
        fields.push(field("project_id", FieldKind::Text, "项目编号", "project id", true));
    }
    if !qualification {
        match &c.rule {
            Some(Rule::RateOfAmounts { basis_fact }) => fields.push(field(
                basis_fact,
                FieldKind::Entries,
                &format!("{}（按日期逐笔填写）", basis_zh(basis_fact)),
                &format!("{basis_fact} (one dated line per payment)"),
                true,
            )),
            Some(Rule::ReviewAmount { amount_fact, date_fact }) => {
                fields.push(field(amount_fact, FieldKind::Fen, "申请金额（分）", "amount requested (fen)", true));
                fields.push(field(date_fact, FieldKind::Date, &date_zh(date_fact), date_fact, true));
            }
            Some(Rule::LoanInterest { basis_fact }) => fields.push(field(
                basis_fact,
                FieldKind::Loans,
                "贷款及每月付息",
                "loans and monthly interest paid",
                true,
            )),
            Some(Rule::HousingSchedule) => {
                fields.push(field("move_in", FieldKind::Date, "入住日期", "move-in date", true));
                fields.push(field(
                    "move_out",
                    FieldKind::Date,
                    "退租日期（未退租不填）",
                    "move-out date (empty if still living there)",
                    false,
                ));
                fields.push(field(
                    "monthly_rent_fen",
                    FieldKind::Fen,
                    "月租金（分）",
                    "monthly rent (fen)",
                    true,
                ));
                fields.push(field("daily_rent_fen", FieldKind::Fen, "日租金（分）", "daily rent (fen)", true));
            }
            _ => {}
        }
    }
    // Clauses without a rule grant a status; the form asks for what the evidence proves.
    if c.rule.is_none() {
        for proves in &c.evidence_proves {
            for fact in proves {
                if fields.iter().any(|f| &f.name == fact) {
                    continue;
                }
                if fact == "milestone" {
                    let mut f = field("milestone", FieldKind::Choice, "成长里程碑", "growth milestone", true);
                    f.options = MILESTONES.iter().map(|s| s.to_string()).collect();
                    fields.push(f);
                    fields.push(field(
                        "milestone_date",
                        FieldKind::Date,
                        "认定或入驻日期",
                        "date recognised or moved in",
                        true,
                    ));
                } else {
                    fields.push(field(fact, FieldKind::Declare, &declare_zh(fact), &fact.replace('_', " "), true));
                }
            }
        }
    }
    let evidence = c
        .evidence
        .iter()
        .enumerate()
        .map(|(i, text)| EvidenceSlot {
            index: i,
            text: text.clone(),
            text_zh: c.evidence_zh.get(i).cloned().unwrap_or_else(|| text.clone()),
            proves: c.evidence_proves.get(i).cloned().unwrap_or_default(),
            required: true,
        })
        .collect();
    let stages: Vec<String> = c
        .review_stages
        .iter()
        .filter(|s| !(qualification && s.as_str() == "finance_payment"))
        .cloned()
        .collect();
    Some(FormSpec {
        clause: c.id.clone(),
        title_zh: c.title_zh.clone(),
        title_en: c.title_en.clone(),
        beneficiary: c.beneficiary.map(|r| r.as_str().to_string()),
        computes_amount: c.rule.is_some() && !qualification,
        amount_decided_in_review: matches!(c.rule, Some(Rule::ReviewAmount { .. })) && !qualification,
        paid_by_finance: stages.iter().any(|s| s == "finance_payment"),
        stages,
        agency: c.review_agency.clone(),
        fields,
        evidence,
    })
}

/// M8.1 milestones: 高新技术企业, 专精特新, moving into a specialty industrial park.
pub const MILESTONES: &[&str] = &["high_tech_enterprise", "specialised_innovative", "specialty_park"];

fn field(name: &str, kind: FieldKind, zh: &str, en: &str, required: bool) -> Field {
    Field {
        name: name.to_string(),
        kind,
        label_zh: zh.to_string(),
        label_en: en.to_string(),
        required,
        options: vec![],
    }
}

fn basis_zh(fact: &str) -> String {
    match fact {
        "rd_spend" => "联合研发实际投入".into(),
        "compliance_fees" => "合规服务费".into(),
        "workstation_months" => "免费工位月数".into(),
        other => other.to_string(),
    }
}

fn date_zh(fact: &str) -> String {
    match fact {
        "commercialised_on" => "首次转化日期".into(),
        "award_date" => "获奖日期".into(),
        "approved_on" => "立项日期".into(),
        "decided_on" => "基金决策日期".into(),
        other => other.to_string(),
    }
}

fn declare_zh(fact: &str) -> String {
    match fact {
        "professional_operator" => "专业化市场运营机构".into(),
        "fengze_talent" => "符合丰泽计划人才条件".into(),
        other => other.to_string(),
    }
}

/// What is wrong with a form, by field: `rd_spend[2].amount_fen` / `negative`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {code}")]
pub struct FormError {
    pub field: String,
    pub code: &'static str,
}

fn err(field: impl Into<String>, code: &'static str) -> FormError {
    FormError { field: field.into(), code }
}

/// Reads the applicant's answers against the spec: every required field present and well
/// formed, nothing the platform fills in, nothing unknown. Returns the facts as the engine
/// reads them.
pub fn read_form(spec: &FormSpec, answers: &Map<String, Value>) -> Result<Map<String, Value>, FormError> {
    for k in answers.keys() {
        if PLATFORM_FACTS.contains(&k.as_str()) {
            return Err(err(k.as_str(), "filled_by_platform"));
        }
        if !spec.fields.iter().any(|f| &f.name == k) {
            return Err(err(k.as_str(), "unknown_field"));
        }
    }
    let mut out = Map::new();
    for f in &spec.fields {
        let v = answers.get(&f.name).filter(|v| !v.is_null() && v.as_str() != Some(""));
        let Some(v) = v else {
            if f.required {
                return Err(err(f.name.as_str(), "required"));
            }
            if f.kind == FieldKind::Date {
                out.insert(f.name.clone(), Value::Null);
            }
            continue;
        };
        let read = match f.kind {
            FieldKind::Declare => match v {
                Value::Bool(b) => json!(b),
                Value::String(s) if s == "true" || s == "on" => json!(true),
                Value::String(s) if s == "false" => json!(false),
                _ => return Err(err(f.name.as_str(), "not_a_flag")),
            },
            FieldKind::Fen => json!(fen(v, &f.name)?),
            FieldKind::Date => json!(date(v, &f.name)?.to_string()),
            FieldKind::Text => {
                let s = v.as_str().map(str::trim).unwrap_or_default();
                if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
                    return Err(err(f.name.as_str(), "bad_text"));
                }
                json!(s)
            }
            FieldKind::Choice => {
                let s = v.as_str().unwrap_or_default();
                if !f.options.iter().any(|o| o == s) {
                    return Err(err(f.name.as_str(), "not_an_option"));
                }
                json!(s)
            }
            FieldKind::Entries => entries(v, &f.name)?,
            FieldKind::Loans => loans(v, &f.name)?,
        };
        out.insert(f.name.clone(), read);
    }
    Ok(out)
}

fn fen(v: &Value, field: &str) -> Result<i64, FormError> {
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| err(field, "not_whole_fen"))?,
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| err(field, "not_whole_fen"))?,
        _ => return Err(err(field, "not_whole_fen")),
    };
    if n < 0 {
        return Err(err(field, "negative"));
    }
    if n > 100_000_000_000 {
        return Err(err(field, "too_large"));
    }
    Ok(n)
}

fn date(v: &Value, field: &str) -> Result<NaiveDate, FormError> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
        .ok_or_else(|| err(field, "not_a_date"))
}

fn month(v: &Value, field: &str) -> Result<String, FormError> {
    let s = v.as_str().unwrap_or_default().trim();
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|_| err(field, "not_a_month"))?;
    Ok(s.to_string())
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, FormError> {
    let a = v.as_array().ok_or_else(|| err(field, "not_a_list"))?;
    if a.is_empty() {
        return Err(err(field, "required"));
    }
    if a.len() > MAX_ENTRIES {
        return Err(err(field, "too_many"));
    }
    Ok(a)
}

fn entries(v: &Value, field: &str) -> Result<Value, FormError> {
    let mut out = vec![];
    for (i, e) in list(v, field)?.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let d = date(e.get("date").unwrap_or(&Value::Null), &format!("{f}.date"))?;
        let a = fen(e.get("amount_fen").unwrap_or(&Value::Null), &format!("{f}.amount_fen"))?;
        let note = e.get("note").and_then(Value::as_str).unwrap_or_default();
        if note.chars().count() > 200 {
            return Err(err(format!("{f}.note"), "too_long"));
        }
        out.push(json!({ "date": d.to_string(), "amount_fen": a, "note": note, "qualified": true }));
    }
    Ok(Value::Array(out))
}

fn loans(v: &Value, field: &str) -> Result<Value, FormError> {
    let mut out = vec![];
    for (i, l) in list(v, field)?.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let id = l.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() {
            return Err(err(format!("{f}.id"), "required"));
        }
        let principal = fen(l.get("principal_fen").unwrap_or(&Value::Null), &format!("{f}.principal_fen"))?;
        let first = date(l.get("first_drawdown").unwrap_or(&Value::Null), &format!("{f}.first_drawdown"))?;
        let mut interest = vec![];
        for (j, m) in list(l.get("interest").unwrap_or(&Value::Null), &format!("{f}.interest"))?
            .iter()
            .enumerate()
        {
            let g = format!("{f}.interest[{j}]");
            interest.push(json!({
                "month": month(m.get("month").unwrap_or(&Value::Null), &format!("{g}.month"))?,
                "amount_fen": fen(m.get("amount_fen").unwrap_or(&Value::Null), &format!("{g}.amount_fen"))?,
            }));
        }
        out.push(
            json!({ "id": id, "principal_fen": principal, "first_drawdown": first.to_string(), "qualified": true, "interest": interest }),
        );
    }
    Ok(Value::Array(out))
}

/// The date that places an application's facts in a year (for the yearly cap and the window).
pub fn year_hint(spec: &FormSpec, facts: &Map<String, Value>) -> Option<i32> {
    use chrono::Datelike;
    for f in &spec.fields {
        let v = facts.get(&f.name);
        let d = match f.kind {
            FieldKind::Date => v.and_then(Value::as_str).map(str::to_string),
            FieldKind::Entries => v
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|e| e.get("date"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        if let Some(d) = d.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()) {
            return Some(d.year());
        }
    }
    None
}

/// Whether `clause` is one the policy file describes (for error messages).
pub fn known_clause(policy: &Policy, clause: &str) -> bool {
    policy.clause(clause).is_some()
}

/// The clause a spec was made from.
pub fn clause_of<'a>(policy: &'a Policy, spec: &FormSpec) -> Option<&'a Clause> {
    policy.clause(&spec.clause)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn policy() -> Policy {
        Policy::embedded().unwrap()
    }

    #[test]
    fn every_application_clause_has_a_form_with_evidence_and_stages() {
        let p = policy();
        for c in crate::APPLICATION_CLAUSES {
            let s = form_spec(&p, c).unwrap_or_else(|| panic!("{c} has no form"));
            assert!(!s.evidence.is_empty(), "{c} asks for no evidence");
            assert!(!s.stages.is_empty(), "{c} has no review stages");
            assert!(!s.fields.is_empty(), "{c} asks nothing");
            for f in &s.fields {
                assert!(!PLATFORM_FACTS.contains(&f.name.as_str()), "{c}: {} is the platform's", f.name);
            }
            // F2: what a false document takes away must be something the form or the rule reads.
            for slot in &s.evidence {
                for fact in &slot.proves {
                    let basis = matches!(&p.clause(c).unwrap().rule, Some(Rule::WorkstationMonths { basis_fact }) if basis_fact == fact);
                    assert!(
                        basis || s.fields.iter().any(|f| &f.name == fact),
                        "{c}: evidence proves unknown fact {fact}"
                    );
                }
            }
        }
        assert!(form_spec(&p, "M2.2").is_none(), "M2.2 is settled, not applied for");
    }

    #[test]
    fn m3_2_asks_for_partner_project_and_dated_spend() {
        let s = form_spec(&policy(), "M3.2").unwrap();
        let names: Vec<_> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["partner_is_university_or_institute", "project_id", "rd_spend"]);
        assert_eq!(s.agency.as_deref(), Some("science_technology"));
        assert!(s.paid_by_finance && s.computes_amount && !s.amount_decided_in_review);
    }

    #[test]
    fn read_form_refuses_platform_facts_bad_amounts_and_missing_fields() {
        let s = form_spec(&policy(), "M5.1").unwrap();
        let ok = json!({ "compliance_fees": [{ "date": "2027-03-01", "amount_fen": 1000000 }] });
        let facts = read_form(&s, ok.as_object().unwrap()).unwrap();
        assert_eq!(facts["compliance_fees"][0]["amount_fen"], json!(1000000));
        let cases = [
            (
                json!({ "compliance_fees": [{ "date": "2027-03-01", "amount_fen": -5 }] }),
                "compliance_fees[0].amount_fen",
                "negative",
            ),
            (
                json!({ "compliance_fees": [{ "date": "2027-02-30", "amount_fen": 5 }] }),
                "compliance_fees[0].date",
                "not_a_date",
            ),
            (json!({ "compliance_fees": [] }), "compliance_fees", "required"),
            (json!({}), "compliance_fees", "required"),
            (json!({ "zone": "x", "compliance_fees": [] }), "zone", "filled_by_platform"),
            (json!({ "bonus": 1 }), "bonus", "unknown_field"),
        ];
        for (v, field, code) in cases {
            let e = read_form(&s, v.as_object().unwrap()).unwrap_err();
            assert_eq!((e.field.as_str(), e.code), (field, code), "{v}");
        }
    }

    #[test]
    fn m8_1_offers_the_three_milestones() {
        let s = form_spec(&policy(), "M8.1").unwrap();
        let m = s.fields.iter().find(|f| f.name == "milestone").unwrap();
        assert_eq!(m.options.len(), 3);
        let bad = json!({ "milestone": "unicorn", "milestone_date": "2027-05-01" });
        assert_eq!(read_form(&s, bad.as_object().unwrap()).unwrap_err().code, "not_an_option");
        assert!(!s.paid_by_finance);
    }
}
