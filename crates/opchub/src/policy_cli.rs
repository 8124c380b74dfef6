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
        Ok(code) => Ok(code),
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
fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

fn parse_as_of(s: &str) -> Result<NaiveDate, BadInput> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BadInput(format!("--as-of: expected a date YYYY-MM-DD, got {s:?}")))
}

fn eval(clause: &str, facts_path: &Path, as_of: Option<&str>, policy_path: Option<&Path>) -> Result<i32, BadInput> {
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
    println!("{json}");
    Ok(0)
}

fn test(dir: Option<&Path>, policy_path: Option<&Path>) -> Result<i32, BadInput> {
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
        println!("FAILED {} — {} [{}]", r.file, r.name, r.clause);
        for f in &r.failures {
            println!("    {f}");
        }
    }
    println!("{:<16} {:>7} {:>7}", "clause", "passed", "failed");
    for (clause, (p, f)) in &per_clause {
        println!("{clause:<16} {p:>7} {f:>7}");
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
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

fn show(as_of: Option<&str>, only: Option<&str>, policy_path: Option<&Path>) -> Result<i32, BadInput> {
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
    println!("{} ({})", policy.title_zh, policy.title_en);
    println!("policy file version {}; * = value in force on {as_of}", policy.version);
    for v in &policy.versions {
        println!("  version {} of {}: {}", v.version, v.date, v.note);
    }
    match policy.window(as_of) {
        Some((w, _, _)) => println!("S2 validity window (as of {as_of}): {w}"),
        None => match policy.latest_window() {
            Some(w) => println!("S2: not in force on {as_of}; validity window {w}"),
            None => println!("S2: no validity window defined"),
        },
    }
    if only.is_none() {
        println!("\npolicy-wide values");
        for p in &policy.params {
            println!("{}", show_param(p, policy.param(&p.name, as_of)));
        }
    }
    for c in policy.clauses.iter().filter(|c| only.is_none_or(|id| id == c.id)) {
        println!("\n{:<15} {} / {}  [{}]", c.id, c.title_en, c.title_zh, c.kind);
        println!("  {}", c.summary);
        if let Some(rule) = &c.rule {
            let who = c.beneficiary.map(|b| b.to_string()).unwrap_or_default();
            let cap = c.cap_scope.map(|s| s.as_str()).unwrap_or("none");
            println!("  pays: {who}; rule {}; cap scope {cap}", rule.name());
            if !c.conditions.is_empty() {
                println!("  conditions: {}; exclusions: {}", c.conditions.join(", "), c.exclusions.join(", "));
            }
            if let Some(g) = &c.overlap_group {
                println!("  overlap group (S3): {g}");
            }
        }
        for p in &c.params {
            println!("{}", show_param(p, c.param(&p.name, as_of)));
        }
    }
    Ok(0)
}
