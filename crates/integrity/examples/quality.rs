//! Precision and recall of every detector on synthetic scenarios with planted patterns.
//!
//! `cargo run -p opchub-integrity --example quality --release [-- [--hard] SEED...]`
//! (`--hard`: five times the camouflage around planted patterns)

use std::time::Instant;

use opchub_integrity::gen::{evaluate, generate, table, Config, DETECTORS};
use opchub_integrity::{scan, Thresholds};

fn main() {
    let hard = std::env::args().any(|a| a == "--hard");
    let seeds: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seeds = if seeds.is_empty() { vec![1, 2, 3, 4, 5] } else { seeds };
    let th = Thresholds::default();
    let mut reports = Vec::new();
    for &seed in &seeds {
        let g = generate(&if hard { Config::hard(seed) } else { Config::quality(seed) });
        let t = Instant::now();
        let findings = scan(&g.input, &th);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let r = evaluate(&findings, &g.truth);
        println!(
            "seed {seed}: {} edges, {} calls, {} signals, {} timing series; {} findings in {ms:.1} ms; honest heavy users flagged: {}, light/lopsided pair parties flagged: {}, co-workers flagged: {}",
            g.input.edges.len(),
            g.input.edges.iter().map(|e| e.calls).sum::<u64>(),
            g.input.signals.len(),
            g.input.timings.len(),
            findings.len(),
            r.heavy_flagged.len(),
            r.light_pairs_flagged.len(),
            r.shared_address_flagged.len()
        );
        reports.push((seed, r));
    }
    println!();
    print!("{}", table(&reports));
    println!();
    println!("| detector | mean precision | mean recall | min precision | min recall |\n|---|---|---|---|---|");
    for d in DETECTORS {
        let qs: Vec<_> = reports
            .iter()
            .filter_map(|(_, r)| r.per_detector.iter().find(|q| q.detector == d))
            .collect();
        let n = qs.len().max(1) as f64;
        let p: Vec<f64> = qs.iter().map(|q| q.precision()).collect();
        let rc: Vec<f64> = qs.iter().map(|q| q.recall()).collect();
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            d.code(),
            p.iter().sum::<f64>() / n,
            rc.iter().sum::<f64>() / n,
            p.iter().copied().fold(1.0, f64::min),
            rc.iter().copied().fold(1.0, f64::min)
        );
    }
}
