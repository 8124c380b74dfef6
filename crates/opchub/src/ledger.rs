//! `opchub ledger …`: verify the ledger from its raw rows, seal periods, take checkpoints,
//! print the public key, register outside sources. Long work shows progress and ends with
//! a summary table.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use opchub_ledger::checkpoint::LedgerKey;
use opchub_store::{Actor, Store};

pub enum Op {
    Verify,
    Close(String),
    Checkpoint,
    PublicKey,
    SourceCreate { name: String, owner: String, rate_per_minute: i64 },
}

/// Runs one ledger command; returns the process exit code (non-zero when verify finds problems).
pub async fn run(store: &Store, key: &LedgerKey, origin: &str, op: Op) -> Result<i32> {
    match op {
        Op::Verify => {
            let started = std::time::Instant::now();
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} verifying ledger: {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let progress = |n: i64| bar.set_message(format!("{n} events"));
            let report = store
                .ledger_verify(&key.verifier_key(), &progress)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            println!("ledger verify");
            println!("  {:<22} {:>12}", "events", report.events);
            println!("  {:<22} {:>12}", "tree size (head)", report.head_size);
            println!("  {:<22} {:>12}", "checkpoints checked", report.checkpoints);
            println!("  {:<22} {:>12}", "rollups checked", report.rollups);
            println!("  {:<22} {:>12}", "problems", report.problems.len());
            println!("  {:<22} {:>12.2}", "seconds", started.elapsed().as_secs_f64());
            for p in &report.problems {
                println!("PROBLEM: {p}");
            }
            if report.problems.is_empty() {
                println!("OK: every event, tree hash, checkpoint, rollup and counter matches");
                Ok(0)
            } else {
                Ok(1)
            }
        }
        Op::Close(period) => {
            let Some(period) = opchub_ledger::event::parse_period(&period) else {
                bail!("period must be YYYY-MM")
            };
            // The month's bills are issued with its close (issue 19), then never change.
            let (cp, bills) = store
                .ledger_close_period(&Actor::system(), key, origin, &period)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("sealed {period} at tree size {} (root {})", cp.tree_size, cp.root);
            println!("issued {bills} bills for {period}");
            print!("{}", cp.note);
            Ok(0)
        }
        Op::Checkpoint => {
            let cp = store
                .ledger_checkpoint(key, origin, "manual")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", cp.note);
            Ok(0)
        }
        Op::PublicKey => {
            println!("{}", key.verifier_key());
            Ok(0)
        }
        Op::SourceCreate {
            name,
            owner,
            rate_per_minute,
        } => {
            let Some(user) = store.user_by_username(&owner).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
                bail!("no user {owner}")
            };
            let secret = format!("ols_{}", opchub_app::crypto::random_token(24));
            let src = store
                .create_source(
                    &Actor::system(),
                    &name,
                    &user.id,
                    &opchub_app::crypto::sha256_hex(&secret),
                    &secret[..12],
                    rate_per_minute,
                    &opchub_ledger::metering::REPORTABLE_KINDS
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("source {} created for {} ({} events/min)", src.name, owner, src.rate_per_minute);
            println!("key (shown once): {secret}");
            Ok(0)
        }
    }
}
