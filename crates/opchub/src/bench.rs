//! `opchub bench`: durable ledger ingestion (acknowledged = committed, Merkle leaf appended)
//! with several concurrent writers and batch sizes, then inclusion-proof and verify timings,
//! on whatever database `--database-url` names. Run it on a scratch database.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use opchub_ledger::checkpoint::LedgerKey;
use opchub_ledger::event::NewEvent;
use opchub_ledger::metering::{self, TokenKind};
use opchub_store::ledger::{Item, LedgerConfig, LedgerWriter, Outcome};
use opchub_store::Store;
use std::sync::Arc;
use std::time::Instant;

/// One gateway request's output tokens, built as the gateway builds them (`run` keys the
/// requests by run, writer count and batch size so runs never collide).
fn event(run: &str, id: usize) -> NewEvent {
    let (request_id, subject, operator) = (format!("{run}-e{id}"), format!("opc-{}", id % 50), format!("operator-{}", id % 7));
    let request = metering::GatewayRequest {
        request_id: &request_id,
        subject: &subject,
        operator_user_id: &operator,
        channel_id: "bench",
        model: "bench-model",
        endpoint: "chat/completions",
        price_version: "bench",
        estimated: false,
        outcome: "ok",
        started_ms: opchub_store::now_ms() - (id % 86_400_000) as i64,
    };
    metering::token(&request, TokenKind::Output, 1000 + (id % 977) as i64, 20_000, 10_000)
}

pub async fn run(store: &Store, key: Arc<LedgerKey>, origin: &str, events: usize, writers: &[usize], batches: &[usize]) -> Result<()> {
    let backend = format!("{:?}", store.backend());
    let run_id = opchub_store::new_id();
    let writer = LedgerWriter::start(
        store,
        key.clone(),
        LedgerConfig {
            origin: origin.to_string(),
            ..Default::default()
        },
    )
    .await?;
    let mut rows = vec![];
    let total = writers.len() * batches.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    for &w in writers {
        for &b in batches {
            bar.set_message(format!("{w} writers × batch {b}"));
            let source = format!("bench-{}-{w}-{b}", &run_id[20..]);
            let per_writer = events.div_ceil(w.max(1));
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for wi in 0..w {
                let writer = writer.clone();
                let source = source.clone();
                let key = key.clone();
                tasks.spawn(async move {
                    let mut n = 0usize;
                    let mut i = wi * per_writer;
                    let end = (wi + 1) * per_writer;
                    while i < end {
                        let chunk: Vec<Item> = (i..(i + b).min(end)).map(|id| Item::Event(event(&source, id))).collect();
                        i += chunk.len();
                        // As the API does: one signature over each response's receipts.
                        if let Ok(outcomes) = writer.append(chunk).await {
                            let receipts: Vec<&opchub_store::ledger::Receipt> = outcomes
                                .iter()
                                .filter_map(|o| match o {
                                    Outcome::Stored(r) | Outcome::Duplicate(r) => Some(r),
                                    Outcome::Rejected(_) => None,
                                })
                                .collect();
                            let _signature = key.sign_bytes(opchub_store::ledger::receipts_message(&receipts).as_bytes());
                            n += receipts.len();
                        }
                    }
                    n
                });
            }
            let mut acked = 0;
            while let Some(r) = tasks.join_next().await {
                acked += r.unwrap_or(0);
            }
            let secs = started.elapsed().as_secs_f64();
            rows.push((w, b, acked, secs));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    println!("durable ingestion on {backend} (acknowledged = committed)");
    println!(
        "  {:>8} {:>8} {:>10} {:>10} {:>12}",
        "writers", "batch", "events", "seconds", "events/s"
    );
    for (w, b, n, s) in &rows {
        println!("  {:>8} {:>8} {:>10} {:>10.2} {:>12.0}", w, b, n, s, *n as f64 / s);
    }
    // Proofs against the current tree.
    let size = store.ledger_size().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if size > 0 {
        let n = 500.min(size as usize);
        let started = Instant::now();
        for i in 0..n {
            let leaf = (i as i64 * 7919) % size;
            store.ledger_inclusion(leaf, size).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let per = started.elapsed().as_secs_f64() / n as f64;
        println!(
            "inclusion proof at tree size {size}: {:.3} ms each (from the database, {n} proofs)",
            per * 1000.0
        );
        let started = Instant::now();
        let report = store
            .ledger_verify(&key.verifier_key(), &|_| {})
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "ledger verify over {} events: {:.2} s ({} problems)",
            report.events,
            started.elapsed().as_secs_f64(),
            report.problems.len()
        );
    }
    Ok(())
}
