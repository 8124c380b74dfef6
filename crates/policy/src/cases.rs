//! Policy test cases as data (`policy/tests/*.toml`, in the spirit of OpenFisca's YAML tests):
//! the file format, and running the cases of one file against a policy. Pure: files arrive as
//! strings; `EMBEDDED` carries the repository's files into the binary (`opchub policy test`).

use crate::error::PolicyError;
use crate::eval::{evaluate, Decision};
use crate::facts::{Beneficiary, Facts};
use crate::model::Policy;
use chrono::NaiveDate;
use serde::Deserialize;
use toml::value::Datetime;

/// The repository's case files, name and text, embedded at build time.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("common.toml", include_str!("../../../policy/tests/common.toml")),
    ("m1_1.toml", include_str!("../../../policy/tests/m1_1.toml")),
    ("m2_2.toml", include_str!("../../../policy/tests/m2_2.toml")),
    ("m2_3.toml", include_str!("../../../policy/tests/m2_3.toml")),
    ("m2_4.toml", include_str!("../../../policy/tests/m2_4.toml")),
    ("m3_1.toml", include_str!("../../../policy/tests/m3_1.toml")),
    ("m3_2.toml", include_str!("../../../policy/tests/m3_2.toml")),
    ("m3_3.toml", include_str!("../../../policy/tests/m3_3.toml")),
    ("m5_1.toml", include_str!("../../../policy/tests/m5_1.toml")),
    ("m6_1.toml", include_str!("../../../policy/tests/m6_1.toml")),
    ("m6_2.toml", include_str!("../../../policy/tests/m6_2.toml")),
    ("m6_3.toml", include_str!("../../../policy/tests/m6_3.toml")),
    ("m7_2.toml", include_str!("../../../policy/tests/m7_2.toml")),
];

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub clause: String,
    pub passed: bool,
    /// What differed from the expectation (empty when passed).
    pub failures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    defaults: Setup,
    case: Vec<Case>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Setup {
    clause: Option<String>,
    as_of: Option<Datetime>,
    year: Option<i32>,
    beneficiary: Option<Beneficiary>,
    #[serde(default)]
    facts: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    clause: Option<String>,
    as_of: Option<Datetime>,
    year: Option<i32>,
    beneficiary: Option<Beneficiary>,
    #[serde(default)]
    facts: toml::Table,
    #[serde(default)]
    amend: Vec<Amend>,
    expect: Expect,
}

/// A dated change of one value for this case (S4): the policy is amended before evaluating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Amend {
    clause: Option<String>,
    name: String,
    value: toml::Value,
    valid_from: Option<Datetime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// true, false or "unknown".
    eligible: Option<toml::Value>,
    /// Fen, or `"none"` for an undetermined answer (which has no amount).
    amount_fen: Option<toml::Value>,
    /// Each must be among the decision's missing facts.
    #[serde(default)]
    missing_facts: Vec<String>,
    /// Each must be a substring of one of the decision's reasons.
    #[serde(default)]
    reasons: Vec<String>,
    /// Each must be a substring of one trace step's text or of one of its values.
    #[serde(default)]
    trace: Vec<String>,
    /// The evaluation must fail with an error whose message contains this.
    error: Option<String>,
}

fn to_date(d: &Datetime, field: &str) -> Result<NaiveDate, PolicyError> {
    crate::facts::parse_date(&d.to_string()).ok_or_else(|| PolicyError::bad(field, format!("expected a date, got {d}")))
}

/// Parses one case file and runs every case in it against `policy`.
pub fn run_file(policy: &Policy, file_name: &str, text: &str) -> Result<Vec<CaseResult>, PolicyError> {
    let file: File = toml::from_str(text).map_err(|e| PolicyError::Parse {
        file: file_name.to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(file.case.len());
    for case in file.case {
        let d = &file.defaults;
        let clause = case.clause.clone().or_else(|| d.clause.clone()).unwrap_or_default();
        let mut result = CaseResult {
            file: file_name.to_string(),
            name: case.name.clone(),
            clause: clause.clone(),
            passed: false,
            failures: Vec::new(),
        };
        match run_case(policy, &file.defaults, &case, &clause) {
            Ok(failures) => {
                result.passed = failures.is_empty();
                result.failures = failures;
            }
            Err(e) => result.failures.push(format!("case setup: {e}")),
        }
        out.push(result);
    }
    Ok(out)
}

fn run_case(policy: &Policy, defaults: &Setup, case: &Case, clause: &str) -> Result<Vec<String>, PolicyError> {
    let as_of = case
        .as_of
        .as_ref()
        .or(defaults.as_of.as_ref())
        .ok_or_else(|| PolicyError::bad("as_of", "required in the case or [defaults]"))?;
    let as_of = to_date(as_of, "as_of")?;
    let year = case
        .year
        .or(defaults.year)
        .ok_or_else(|| PolicyError::bad("year", "required in the case or [defaults]"))?;
    let beneficiary = case
        .beneficiary
        .clone()
        .or_else(|| defaults.beneficiary.clone())
        .ok_or_else(|| PolicyError::bad("beneficiary", "required in the case or [defaults]"))?;
    let mut table = defaults.facts.clone();
    for (k, v) in &case.facts {
        table.insert(k.clone(), v.clone());
    }
    let facts = Facts::from_toml(&table);
    let mut amended: Option<Policy> = None;
    for (i, a) in case.amend.iter().enumerate() {
        let from = match &a.valid_from {
            Some(d) => to_date(d, &format!("amend[{i}].valid_from"))?,
            None => as_of,
        };
        let base = amended.as_ref().unwrap_or(policy);
        let next = base.amend(
            &format!("case-{}", i + 1),
            from,
            a.clause.as_deref(),
            &a.name,
            &a.value,
            "amended by a test case",
        )?;
        amended = Some(next);
    }
    let policy = amended.as_ref().unwrap_or(policy);
    let outcome = evaluate(policy, clause, &beneficiary, year, &facts, as_of);
    Ok(compare(&case.expect, outcome))
}

fn compare(expect: &Expect, outcome: Result<Decision, PolicyError>) -> Vec<String> {
    let mut failures = Vec::new();
    let decision = match (outcome, &expect.error) {
        (Err(e), Some(want)) => {
            if !e.to_string().contains(want.as_str()) {
                failures.push(format!("error {:?} does not contain {want:?}", e.to_string()));
            }
            return failures;
        }
        (Err(e), None) => {
            failures.push(format!("unexpected error: {e}"));
            return failures;
        }
        (Ok(d), Some(want)) => {
            failures.push(format!(
                "expected an error containing {want:?}, got a decision ({:?}, {:?})",
                d.eligible, d.amount_fen
            ));
            return failures;
        }
        (Ok(d), None) => d,
    };
    let want_eligible = match &expect.eligible {
        Some(toml::Value::Boolean(b)) => Some(Some(*b)),
        Some(toml::Value::String(s)) if s == "unknown" => Some(None),
        Some(other) => {
            failures.push(format!("expect.eligible must be true, false or \"unknown\", got {other}"));
            None
        }
        None => {
            failures.push("expect.eligible is required".into());
            None
        }
    };
    if let Some(want) = want_eligible {
        if decision.eligible != want {
            failures.push(format!("eligible: expected {want:?}, got {:?}", decision.eligible));
        }
    }
    let want_amount = match &expect.amount_fen {
        Some(toml::Value::Integer(a)) => Some(Some(*a)),
        Some(toml::Value::String(s)) if s == "none" => Some(None),
        Some(other) => {
            failures.push(format!("expect.amount_fen must be fen or \"none\", got {other}"));
            None
        }
        None => {
            failures.push("expect.amount_fen is required".into());
            None
        }
    };
    if let Some(want) = want_amount {
        if want != decision.amount_fen {
            failures.push(format!("amount_fen: expected {want:?}, got {:?}", decision.amount_fen));
        }
    }
    for m in &expect.missing_facts {
        if !decision.missing_facts.contains(m) {
            failures.push(format!("missing_facts: expected {m:?} among {:?}", decision.missing_facts));
        }
    }
    for r in &expect.reasons {
        if !decision.reasons.iter().any(|x| x.contains(r.as_str())) {
            failures.push(format!("reasons: none contains {r:?}; reasons are {:?}", decision.reasons));
        }
    }
    for t in &expect.trace {
        let found = decision
            .trace
            .iter()
            .any(|s| s.text.contains(t.as_str()) || s.values.iter().any(|(k, v)| k.contains(t.as_str()) || v.contains(t.as_str())));
        if !found {
            failures.push(format!("trace: no step contains {t:?}"));
        }
    }
    failures
}
