//! `opchub settle …` (免申即享, issue 6): settle a year from the ledger into a draft batch, or
//! run a what-if that saves nothing; `opchub exclusions …` imports and lists the F3 lists;
//! `opchub settlement export …` writes an approved batch for the finance bureau.

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use opchub_domain::Money;
use opchub_policy::Policy;
use opchub_store::{Actor, Store};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SettleArgs {
    /// Calendar year to settle (Asia/Shanghai).
    #[arg(long)]
    pub year: i32,
    /// Only these clauses (repeatable): M1.1, M2.2, M2.3 (= publisher and invoker), M2.3-publisher, M2.3-invoker, M2.4.
    #[arg(long)]
    pub clause: Vec<String>,
    /// Values in force on this date (default: today, or the year's last day when that is earlier).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// What-if: change a value (repeatable), e.g. `--set M2.3-publisher.revenue_rate=0.30`; nothing is saved.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// A policy file adopted by the committee instead of the built-in measures.
    #[arg(long, env = "OPCHUB_POLICY")]
    pub policy: Option<PathBuf>,
    /// Preview the measures as if in force from this date (what `serve --demo` does before the
    /// publication date); the batch records the previewed policy version.
    #[arg(long)]
    pub preview_from: Option<NaiveDate>,
}

#[derive(Subcommand)]
pub enum ExclusionsCommand {
    /// Import a new version of an F3 list from CSV (`uscc,name,reason[,event_date]`); all or nothing.
    Import {
        /// restricted_industry, no_support_sanction, safety_accident or excluded_by_review.
        #[arg(long)]
        kind: String,
        file: PathBuf,
    },
    /// List every imported version.
    List,
}

#[derive(Subcommand)]
pub enum SettlementCommand {
    /// Write an approved batch as CSV and/or XLSX for the finance bureau.
    Export {
        id: String,
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long)]
        xlsx: Option<PathBuf>,
        /// Headers and labels: `zh` (default) or `en`.
        #[arg(long, default_value = "zh", value_parser = ["zh", "en"])]
        lang: String,
    },
    /// List batches.
    List,
    /// Decide a batch again with the F3 list versions and the as-of date it recorded; lists the
    /// lines that come out differently (exit 1), nothing is saved (F3: replayable as of its date).
    Replay {
        id: String,
        /// A policy file the committee adopted (default: the built-in one).
        #[arg(long, env = "OPCHUB_POLICY")]
        policy: Option<PathBuf>,
        /// Replay a batch made while the measures were previewed (`settle --preview-from`).
        #[arg(long)]
        preview_from: Option<NaiveDate>,
    },
}

pub fn load_policy(path: Option<&PathBuf>) -> Result<Policy> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
        None => Policy::embedded().map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// Before the measures take effect, the demo previews them as in force from January 1st of
/// this year, so that its usage (the last two weeks) can be settled. `None` once in force.
pub fn demo_preview(policy: &Policy) -> Option<(Policy, NaiveDate)> {
    let today = opchub_settle::run::today();
    let start = policy.latest_window()?.start;
    if today >= start {
        return None;
    }
    let from = NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 1, 1)?;
    Some((policy.preview_from(from), from))
}

pub use opchub_settle::run::{default_as_of, expand_clauses};

/// The export's headers and labels in `lang` from the site's message catalogs (their `[export]`
/// table, compiled in), so that the command line writes what the API serves.
fn export_labels(lang: &str) -> opchub_settle::export::Labels {
    let text = if lang == "en" {
        include_str!("../../web/i18n/en.toml")
    } else {
        include_str!("../../web/i18n/zh.toml")
    };
    let catalog: toml::Table = text.parse().unwrap_or_default();
    let export = catalog.get("export").and_then(|v| v.as_table()).cloned().unwrap_or_default();
    opchub_settle::export::Labels::from_lookup(|key| {
        let k = key.trim_start_matches("export.");
        export.get(k).and_then(|v| v.as_str()).unwrap_or(k).to_string()
    })
}

/// Returns the exit code: 0 done, 2 bad input.
pub async fn settle(store: &Store, args: SettleArgs) -> Result<i32> {
    let mut policy = load_policy(args.policy.as_ref())?;
    if let Some(from) = args.preview_from {
        policy = policy.preview_from(from);
    }
    let clauses = expand_clauses(&args.clause);
    let as_of = args.as_of.unwrap_or_else(|| default_as_of(args.year));
    if !args.set.is_empty() {
        let diffs = match opchub_settle::what_if_live(store, &policy, &args.set, args.year, &clauses, as_of).await {
            Ok(d) => d,
            Err(opchub_settle::SettleError::Store(e)) => return Err(anyhow::anyhow!("{e}")),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(2);
            }
        };
        println!("what-if {} (as of {as_of}; nothing saved): {}", args.year, args.set.join(", "));
        println!(
            "  {:<16} {:>18} {:>18} {:>18} {:>8}",
            "clause", "now", "what-if", "difference", "lines"
        );
        let (mut a, mut b) = (0i64, 0i64);
        for d in &diffs {
            a += d.base_fen;
            b += d.changed_fen;
            println!(
                "  {:<16} {:>18} {:>18} {:>18} {:>8}",
                d.clause,
                Money::from_fen(d.base_fen).to_string(),
                Money::from_fen(d.changed_fen).to_string(),
                Money::from_fen(d.difference_fen).to_string(),
                d.beneficiaries
            );
        }
        println!(
            "  {:<16} {:>18} {:>18} {:>18}",
            "total",
            Money::from_fen(a).to_string(),
            Money::from_fen(b).to_string(),
            Money::from_fen(b - a).to_string()
        );
        return Ok(0);
    }
    let started = std::time::Instant::now();
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} settle {msg} [{bar:30}] {pos}/{len}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |stage: &str, done: u64, total: u64| {
        bar.set_message(stage.to_string());
        bar.set_length(total.max(1));
        bar.set_position(done);
    };
    let settled = match opchub_settle::settle(store, &Actor::system(), &policy, args.year, &clauses, as_of, &progress).await {
        Ok(s) => s,
        Err(opchub_settle::SettleError::Store(e)) => return Err(anyhow::anyhow!("{e}")),
        Err(e) => {
            bar.finish_and_clear();
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    bar.finish_and_clear();
    print_summary(&settled, started.elapsed().as_secs_f64());
    Ok(0)
}

pub fn print_summary(s: &opchub_settle::Settled, secs: f64) {
    println!(
        "draft batch {} — year {}, as of {}, policy v{}",
        s.batch.id, s.batch.year, s.batch.as_of, s.batch.policy_version
    );
    println!(
        "  {:<16} {:>10} {:>10} {:>12} {:>18} {:>8}",
        "clause", "lines", "eligible", "undetermined", "amount", "F1"
    );
    for (c, t) in &s.per_clause {
        println!(
            "  {:<16} {:>10} {:>10} {:>12} {:>18} {:>8}",
            c,
            t.beneficiaries,
            t.eligible,
            t.undetermined,
            Money::from_fen(t.total_fen).to_string(),
            t.budget_factor
        );
    }
    println!(
        "  {:<16} {:>10} {:>10} {:>12} {:>18}",
        "total",
        s.batch.line_count,
        "",
        "",
        Money::from_fen(s.batch.total_fen).to_string()
    );
    println!("  seconds: {secs:.2}; beneficiaries confirm on their pages, then the committee approves");
}

pub async fn exclusions(store: &Store, cmd: ExclusionsCommand) -> Result<i32> {
    match cmd {
        ExclusionsCommand::Import { kind, file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (rows, sha) = match opchub_settle::lists::parse(&kind, &bytes) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {}: {e} [{}]; nothing imported", file.display(), e.code);
                    return Ok(2);
                }
            };
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let list = store
                .import_exclusions(&Actor::system(), &kind, &name, &sha, &rows)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "imported {} v{}: {} entries (sha256 {})",
                list.kind, list.version, list.entries, list.sha256
            );
            Ok(0)
        }
        ExclusionsCommand::List => {
            println!("  {:<22} {:>7} {:>8}  {:<24} sha256", "kind", "version", "entries", "file");
            for l in store.exclusion_lists().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                println!(
                    "  {:<22} {:>7} {:>8}  {:<24} {}",
                    l.kind,
                    l.version,
                    l.entries,
                    l.file_name,
                    &l.sha256[..16.min(l.sha256.len())]
                );
            }
            Ok(0)
        }
    }
}

pub async fn settlement(store: &Store, identity: opchub_app::crypto::IdentityKey, cmd: SettlementCommand) -> Result<i32> {
    match cmd {
        SettlementCommand::Replay { id, policy, preview_from } => {
            let mut pol = load_policy(policy.as_ref())?;
            if let Some(from) = preview_from {
                pol = pol.preview_from(from);
            }
            let bar = ProgressBar::new_spinner();
            bar.set_message(format!("replaying {id}"));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            let r = opchub_settle::replay(store, &pol, &id).await;
            bar.finish_and_clear();
            let r = match r {
                Ok(r) => r,
                Err(opchub_settle::SettleError::Store(opchub_store::StoreError::NotFound)) => {
                    eprintln!("no batch {id}");
                    return Ok(2);
                }
                Err(e) => bail!("{e}"),
            };
            println!(
                "replay of batch {} (year {}, as of {}, lists {})",
                r.batch.id, r.batch.year, r.batch.as_of, r.batch.lists
            );
            if let Some(now) = &r.policy_changed {
                println!("note: the batch used policy v{}, this replay v{now}", r.batch.policy_version);
            }
            println!("  {:<16} {:>8}", "lines", r.lines);
            println!("  {:<16} {:>8}", "same", r.same);
            println!("  {:<16} {:>8}", "different", r.differences.len());
            let fen = |f: Option<i64>| f.map(|f| Money::from_fen(f).to_string()).unwrap_or_else(|| "—".into());
            for d in r.differences.iter().take(20) {
                println!(
                    "  {:<16} {:<34} stored {:>16} ({}) → replayed {:>16} ({})",
                    d.clause,
                    d.beneficiary,
                    fen(d.stored_fen),
                    d.stored_eligible.as_deref().unwrap_or("—"),
                    fen(d.replayed_fen),
                    d.replayed_eligible.as_deref().unwrap_or("—")
                );
            }
            Ok(if r.differences.is_empty() { 0 } else { 1 })
        }
        SettlementCommand::List => {
            println!(
                "  {:<38} {:>6} {:<9} {:>8} {:>18} {:>18}",
                "batch", "year", "status", "lines", "amount", "paid"
            );
            for b in store.settlement_batches().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                println!(
                    "  {:<38} {:>6} {:<9} {:>8} {:>18} {:>18}",
                    b.id,
                    b.year,
                    b.status,
                    b.line_count,
                    Money::from_fen(b.total_fen).to_string(),
                    b.paid_fen.map(|p| Money::from_fen(p).to_string()).unwrap_or_default()
                );
            }
            Ok(0)
        }
        SettlementCommand::Export { id, csv, xlsx, lang } => {
            let batch = store.settlement_batch(&id).await.map_err(|e| anyhow::anyhow!("batch {id}: {e}"))?;
            // As the API: an approved batch, or one finance has paid; never a draft.
            if batch.status == "draft" {
                eprintln!("error: batch {id} is {}; only an approved batch is exported", batch.status);
                return Ok(2);
            }
            if csv.is_none() && xlsx.is_none() {
                bail!("give --csv FILE and/or --xlsx FILE");
            }
            let mut app = opchub_app::App::new(store.clone());
            app.identity_key = Some(identity);
            let labels = export_labels(&lang);
            for (path, format) in [(csv, "csv"), (xlsx, "xlsx")] {
                if let Some(p) = path {
                    let x = opchub_app::settlement::export_for(&app, &id, Some(format), &labels)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.code))?;
                    std::fs::write(&p, x.bytes)?;
                    println!("wrote {}", p.display());
                }
            }
            Ok(0)
        }
    }
}
