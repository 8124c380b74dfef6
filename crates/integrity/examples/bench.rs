//! Times a full scan over about a million distinct (invoker, skill) edges and ten million
//! calls, detector by detector, and prints a table.
//!
//! `cargo run -p opchub-integrity --example bench --release [-- SEED [HONEST_PARTIES]]`

use std::time::Instant;

use opchub_integrity::gen::{evaluate, generate, Config};
use opchub_integrity::{run, scan, Detector, Index, Thresholds};

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut cfg = Config::bench(seed);
    if let Some(n) = args.next().and_then(|a| a.parse().ok()) {
        cfg.honest_parties = n;
    }
    let t = Instant::now();
    let g = generate(&cfg);
    let gen_s = t.elapsed().as_secs_f64();
    let calls: u64 = g.input.edges.iter().map(|e| e.calls).sum();
    println!(
        "input: {} edges, {} calls, {} identity signals, {} timing series ({} timestamps); generated in {gen_s:.2} s",
        g.input.edges.len(),
        calls,
        g.input.signals.len(),
        g.input.timings.len(),
        g.input.timings.iter().map(|t| t.timestamps_ms.len()).sum::<usize>()
    );
    let th = Thresholds::default();
    println!();
    println!("| step | time (s) | findings |\n|---|---|---|");
    let t = Instant::now();
    let ix = Index::build(&g.input, &th);
    println!(
        "| index ({} parties, {} skills, {} edges) | {:.3} | |",
        ix.party_count(),
        ix.skill_count(),
        ix.edge_count(),
        t.elapsed().as_secs_f64()
    );
    let mut total = t.elapsed().as_secs_f64();
    for d in Detector::ALL {
        let t = Instant::now();
        let f = run(d, &ix, &th);
        let s = t.elapsed().as_secs_f64();
        total += s;
        println!("| {} | {s:.3} | {} |", d.code(), f.len());
    }
    println!("| sum of steps | {total:.3} | |");
    drop(ix);
    let t = Instant::now();
    let findings = scan(&g.input, &th);
    let scan_s = t.elapsed().as_secs_f64();
    println!("| **scan() end to end** | **{scan_s:.3}** | {} |", findings.len());
    let r = evaluate(&findings, &g.truth);
    println!();
    println!("| detector | truth | flagged | TP | FP (honest) | precision | recall |\n|---|---|---|---|---|---|---|");
    for q in &r.per_detector {
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            q.detector.code(),
            q.truth,
            q.flagged,
            q.true_positives,
            q.false_positives,
            q.precision(),
            q.recall()
        );
    }
    println!(
        "honest heavy users flagged: {}, light/lopsided pair parties flagged: {}, co-workers flagged: {}",
        r.heavy_flagged.len(),
        r.light_pairs_flagged.len(),
        r.shared_address_flagged.len()
    );
}
