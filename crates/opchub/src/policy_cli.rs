//! `opchub policy …`: evaluate one clause from a facts file, run the policy's data test cases, show
//! the clauses with their dated values. A thin front end over `opchub-policy`; it needs no database.
//! Exit codes: 0 done, 1 test cases failed, 2 bad input (the message names the field).

use anyhow::Result;
use chrono::NaiveDate;
use clap::Subcommand;
use opchub_policy::cases::{run_file, CaseResult, EMBEDDED};
use opchub_policy::{evaluate, EvalInput, Param, Policy, PolicyError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Evaluate one clause for one beneficiary; prints the decision (eligible, amount, reasons, missing facts, trace) as JSON.
    Eval {
        /// Clause ID, e.g. M3.2 or M2.3-invoker.
        #[arg(long)]
        clause: String,
        /// JSON file: {"beneficiary": {"id", "role"}, "year": 2027, "as_of": "YYYY-MM-DD" (optional), "facts": {…}} (policy/README.md).
        #[arg(long)]
        facts: PathBuf,
        /// Decision date (YYYY-MM-DD): which values are in force. Default: the file's as_of, else today (Asia/Shanghai).
        #[arg(long)]
        as_of: Option<String>,
        /// Use this policy file instead of the one built in.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Run the policy test cases (the built-in ones, or the *.toml files in --dir); prints a table per clause.
    Test {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List the clauses with their parameters, sources (text/default) and versions.
    Show {
        /// Mark the values in force on this date (default: today, Asia/Shanghai).
        #[arg(long)]
        as_of: Option<String>,
        /// Only this clause.
        #[arg(long)]
        clause: Option<String>,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

/// A user error: printed as `error: <field>: <message>`, exit code 2.
struct BadInput(String);

impl From<PolicyError> for BadInput {
    fn from(e: PolicyError) -> Self {
        BadInput(e.to_string())
    }
}

/// Runs one policy command and returns the process exit code.
pub fn run(cmd: PolicyCommand) -> Result<i32> {
    let outcome = match cmd {
        PolicyCommand::Eval {
            clause,
            facts,
            as_of,
            policy,
        } => eval(&clause, &facts, as_of.as_deref(), policy.as_deref()),
        PolicyCommand::Test { dir, policy } => test(dir.as_deref(), policy.as_deref()),
        PolicyCommand::Show { as_of, clause, policy } => show(as_of.as_deref(), clause.as_deref(), policy.as_deref()),
    };
    match outcome {
        Ok((code, output)) => {
            emit(&output);
            Ok(code)
        }
        Err(BadInput(message)) => {
            eprintln!("error: {message}");
            Ok(2)
        }
    }
}

fn read(path: &Path) -> Result<String, BadInput> {
    std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))
}

fn load_policy(path: Option<&Path>) -> Result<Policy, BadInput> {
    match path {
        None => Ok(Policy::embedded()?),
        Some(p) => Policy::from_toml(&read(p)?).map_err(|e| BadInput(format!("{}: {e}", p.display()))),
    }
}

/// Today in Asia/Shanghai (UTC+8, no daylight saving): the policy's calendar.
use opchub_domain::time::beijing_today as today;

fn parse_as_of(s: &str) -> Result<NaiveDate, BadInput> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BadInput(format!("--as-of: expected a date YYYY-MM-DD, got {s:?}")))
}

/// Each command returns its exit code and what to print; `run` prints it.
type Outcome = Result<(i32, String), BadInput>;

fn eval(clause: &str, facts_path: &Path, as_of: Option<&str>, policy_path: Option<&Path>) -> Outcome {
    let policy = load_policy(policy_path)?;
    let Some(c) = policy.clause(clause) else {
        let paying: Vec<&str> = policy.clauses.iter().filter(|c| c.pays()).map(|c| c.id.as_str()).collect();
        return Err(BadInput(format!(
            "--clause: unknown clause {clause:?} (paying clauses: {})",
            paying.join(", ")
        )));
    };
    if !c.pays() {
        return Err(BadInput(format!("--clause: {clause} pays no money, there is nothing to evaluate")));
    }
    let text = read(facts_path)?;
    let input = EvalInput::from_json(&text).map_err(|e| BadInput(format!("{}: {e}", facts_path.display())))?;
    let (as_of, how) = match (as_of, input.as_of) {
        (Some(s), _) => (parse_as_of(s)?, ""),
        (None, Some(d)) => (d, " (the facts file's as_of)"),
        (None, None) => (today(), " (no --as-of and no as_of in the facts file: today is used)"),
    };
    policy.check_as_of(as_of).map_err(|e| BadInput(format!("{e}{how}")))?;
    let decision = evaluate(&policy, clause, &input.beneficiary, input.year, &input.facts, as_of)?;
    let json = serde_json::to_string_pretty(&decision).map_err(|e| BadInput(format!("decision: {e}")))?;
    Ok((0, format!("{json}\n")))
}

fn test(dir: Option<&Path>, policy_path: Option<&Path>) -> Outcome {
    let policy = load_policy(policy_path)?;
    let files: Vec<(String, String)> = match dir {
        None => EMBEDDED.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
        Some(d) => {
            let mut names: Vec<PathBuf> = std::fs::read_dir(d)
                .map_err(|e| BadInput(format!("--dir {}: {e}", d.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(BadInput(format!("--dir {}: no *.toml case files", d.display())));
            }
            let mut out = Vec::new();
            for p in names {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.push((name, read(&p)?));
            }
            out
        }
    };
    let mut out = Out::default();
    let mut results: Vec<CaseResult> = Vec::new();
    for (name, text) in &files {
        results.extend(run_file(&policy, name, text)?);
    }
    let mut per_clause: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &results {
        let e = per_clause.entry(r.clause.as_str()).or_default();
        if r.passed {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    for r in results.iter().filter(|r| !r.passed) {
        out.line(format!("FAILED {} — {} [{}]", r.file, r.name, r.clause));
        for f in &r.failures {
            out.line(format!("    {f}"));
        }
    }
    out.line(format!("{:<16} {:>7} {:>7}", "clause", "passed", "failed"));
    for (clause, (p, f)) in &per_clause {
        out.line(format!("{clause:<16} {p:>7} {f:>7}"));
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    out.line(format!("{passed} passed, {failed} failed"));
    Ok((if failed == 0 { 0 } else { 1 }, out.0))
}

fn show_param(p: &Param, in_force: Option<&Param>) -> String {
    let mark = if in_force == Some(p) { "*" } else { " " };
    let cite = p.cite.as_deref().map(|c| format!("  「{c}」")).unwrap_or_default();
    format!(
        "  {mark} {:<28} {:<16} {:<8} v{:<8} from {}{cite}",
        p.name,
        p.value.to_string(),
        p.source.as_str(),
        p.version,
        p.valid_from
    )
}

fn show(as_of: Option<&str>, only: Option<&str>, policy_path: Option<&Path>) -> Outcome {
    let policy = load_policy(policy_path)?;
    let as_of = match as_of {
        Some(s) => parse_as_of(s)?,
        None => today(),
    };
    if let Some(id) = only {
        if policy.clause(id).is_none() {
            return Err(BadInput(format!("--clause: unknown clause {id:?}")));
        }
    }
    let mut out = Out::default();
    out.line(format!("{} ({})", policy.title_zh, policy.title_en));
    out.line(format!("policy file version {}; * = value in force on {as_of}", policy.version));
    for v in &policy.versions {
        out.line(format!("  version {} of {}: {}", v.version, v.date, v.note));
    }
    match policy.window(as_of) {
        Some((w, _, _)) => out.line(format!("S2 validity window (as of {as_of}): {w}")),
        None => match policy.latest_window() {
            Some(w) => out.line(format!("S2: not in force on {as_of}; validity window {w}")),
            None => out.line("S2: no validity window defined".into()),
        },
    }
    if only.is_none() {
        out.line("\npolicy-wide values".into());
        for p in &policy.params {
            out.line(show_param(p, policy.param(&p.name, as_of)));
        }
    }
    for c in policy.clauses.iter().filter(|c| only.is_none_or(|id| id == c.id)) {
        out.line(format!("\n{:<15} {} / {}  [{}]", c.id, c.title_en, c.title_zh, c.kind));
        out.line(format!("  {}", c.summary));
        if let Some(rule) = &c.rule {
            let who = c.beneficiary.map(|b| b.to_string()).unwrap_or_default();
            let cap = c.cap_scope.map(|s| s.as_str()).unwrap_or("none");
            out.line(format!("  pays: {who}; rule {}; cap scope {cap}", rule.name()));
            if !c.conditions.is_empty() {
                out.line(format!(
                    "  conditions: {}; exclusions: {}",
                    c.conditions.join(", "),
                    c.exclusions.join(", ")
                ));
            }
            if let Some(g) = &c.overlap_group {
                out.line(format!("  overlap group (S3): {g}"));
            }
        }
        for p in &c.params {
            out.line(show_param(p, c.param(&p.name, as_of)));
        }
    }
    Ok((0, out.0))
}

/// Output collected line by line and written once (a closed pipe, as with `| head`, is not an error).
#[derive(Default)]
struct Out(String);

impl Out {
    fn line(&mut self, s: String) {
        self.0.push_str(&s);
        self.0.push('\n');
    }
}

fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"{"beneficiary": {"id": "opc-1", "role": "opc_founder"}, "year": 2027,
        "facts": {"zone": "hexi_area", "market_registered": true, "tax_registered": true,
                  "partner_is_university_or_institute": true, "restricted_industry": false, "no_support_sanction": false,
                  "safety_accident_in_window": false, "excluded_by_review": false, "other_grants": [], "consumed_fen": 0,
                  "rd_spend": [{"date": "2027-05-01", "amount_fen": 612345670, "qualified": true}]}}"#;

    #[test]
    fn eval_answers_and_refuses_bad_input_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let good = facts_file(&dir, "good.json", GOOD);
        let (code, json) = eval("M3.2", &good, Some("2027-03-01"), None).ok().unwrap();
        assert_eq!(code, 0);
        let decision: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(decision["eligible"], serde_json::json!(true));
        assert_eq!(decision["amount_fen"], serde_json::json!(50_000_000));
        assert!(json.contains("M3.2 per-project annual cap: ¥612,345.67 → ¥500,000.00"));
        let msg = |r: Outcome| match r {
            Err(BadInput(m)) => m,
            Ok((code, _)) => panic!("expected bad input, got exit {code}"),
        };
        assert!(msg(eval("M9.9", &good, Some("2027-03-01"), None)).contains("--clause: unknown clause \"M9.9\""));
        assert!(msg(eval("M4.1", &good, Some("2027-03-01"), None)).contains("pays no money"));
        assert!(msg(eval("M3.2", &good, Some("2029-03-01"), None)).contains("as_of: 2029-03-01 is outside"));
        assert!(msg(eval("M3.2", &good, Some("03/01/2027"), None)).contains("--as-of"));
        let negative = facts_file(&dir, "neg.json", &GOOD.replace("612345670", "-5"));
        assert!(msg(eval("M3.2", &negative, Some("2027-03-01"), None)).contains("facts.rd_spend[0].amount_fen: must not be negative"));
        let broken = facts_file(&dir, "broken.json", "{\"beneficiary\": ");
        assert!(msg(eval("M3.2", &broken, Some("2027-03-01"), None)).contains("malformed JSON"));
        let missing = dir.path().join("nope.json");
        assert!(msg(eval("M3.2", &missing, Some("2027-03-01"), None)).contains("nope.json"));
    }

    #[test]
    fn run_maps_bad_input_to_exit_code_2() {
        let code = run(PolicyCommand::Eval {
            clause: "M9.9".into(),
            facts: PathBuf::from("does-not-matter.json"),
            as_of: None,
            policy: None,
        })
        .unwrap();
        assert_eq!(code, 2);
    }

    #[test]
    fn the_built_in_cases_pass_and_show_lists_every_clause() {
        let (code, table) = test(None, None).ok().unwrap();
        assert_eq!(code, 0, "{table}");
        assert!(table.lines().last().unwrap().ends_with(" passed, 0 failed"), "{table}");
        assert!(table.contains("M6.3"));
        let (code, listing) = show(Some("2027-01-01"), None, None).ok().unwrap();
        assert_eq!(code, 0);
        assert!(
            listing.contains("* cap                          ¥500,000.00      text"),
            "{listing}"
        );
        assert!(listing.contains("S5"));
        assert!(show(None, Some("M9.9"), None).is_err());
    }
}
