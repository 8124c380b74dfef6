//! `opchub integrity …` (issue 18): scan a year's paid skill calls for rings, cycles, dense
//! blocks, related parties and concentration (the same use case as `POST /api/v1/integrity/scan`,
//! acting as the system), and list the findings.

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
    }
    Ok(0)
}
