//! `opchub integrity …` (issue 18): scan a year's paid skill calls for rings, cycles, dense
//! blocks, related parties and concentration (the same use case as `POST /api/v1/integrity/scan`,
//! acting as the system), list the findings, and decide one as a named committee member.

use anyhow::Result;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use opchub_app::integrity;
use opchub_app::App;
use opchub_store::{Actor, Store};
use std::time::Duration;

#[derive(Subcommand)]
pub enum IntegrityCommand {
    /// Scan a year and store the findings (a rescan refreshes open findings, keeps decided ones).
    Scan {
        #[arg(long)]
        year: i32,
    },
    /// List the findings of a year (all years without --year).
    List {
        #[arg(long)]
        year: Option<i32>,
    },
    /// Uphold or dismiss an open finding, as a committee member (`--as`, their username).
    Decide {
        #[arg(long)]
        id: String,
        /// `uphold` or `dismiss`.
        #[arg(long)]
        decision: String,
        /// Why (shown to the parties, kept in the audit log).
        #[arg(long)]
        reason: String,
        /// The committee member deciding.
        #[arg(long = "as")]
        as_user: String,
    },
}

fn yuan(fen: i64) -> String {
    opchub_domain::money::Money::from_fen(fen).to_string()
}

/// Returns the exit code: 0 done, 2 bad input.
pub async fn run(store: &Store, c: IntegrityCommand) -> Result<i32> {
    let app = App::new(store.clone());
    match c {
        IntegrityCommand::Scan { year } => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar.set_message(format!("scanning {year}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            let r = integrity::scan_as(&app, &Actor::system(), year).await;
            bar.finish_and_clear();
            let r = match r {
                Ok(r) => r,
                Err(e) => return Ok(crate::party_cli::report(&e)),
            };
            println!("{:<20} {:>10}", "year", r.year);
            println!("{:<20} {:>10}", "call pairs", r.edges);
            println!("{:<20} {:>10}", "identity signals", r.signals);
            for (d, n) in &r.by_detector {
                println!("{:<20} {:>10}", d, n);
            }
            println!("{:<20} {:>10}", "opened", r.stored.opened);
            println!("{:<20} {:>10}", "refreshed", r.stored.refreshed);
            println!("{:<20} {:>10}", "already decided", r.stored.decided);
        }
        IntegrityCommand::List { year } => {
            let all = store.integrity_findings(year).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<32} {:>4} {:<16} {:<10} {:>16}  parties",
                "id", "year", "detector", "status", "at stake"
            );
            for f in &all {
                println!(
                    "{:<32} {:>4} {:<16} {:<10} {:>16}  {}",
                    f.id,
                    f.year,
                    f.detector,
                    f.status,
                    yuan(f.amount_at_stake_fen),
                    f.parties.join(", ")
                );
            }
            println!("{} findings", all.len());
        }
        IntegrityCommand::Decide {
            id,
            decision,
            reason,
            as_user,
        } => {
            let user = match store.user_by_username(&as_user).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                Some(u) if u.role == opchub_domain::Role::Committee => u,
                Some(_) => {
                    eprintln!("error: not_committee ({as_user} is not a committee member)");
                    return Ok(2);
                }
                None => {
                    eprintln!("error: unknown_user ({as_user})");
                    return Ok(2);
                }
            };
            let d = integrity::Decide { decision, reason };
            match integrity::decide_for(&app, &opchub_app::Principal::cli(user), &id, &d).await {
                Ok(f) => println!(
                    "{:<32} {:<16} {:<10} {:>16}",
                    f.id,
                    f.detector,
                    f.status,
                    yuan(f.amount_at_stake_fen)
                ),
                Err(e) => return Ok(crate::party_cli::report(&e)),
            }
        }
    }
    Ok(0)
}
