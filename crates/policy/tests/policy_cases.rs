//! Runs every case file in `policy/tests/` against the embedded policy (so `cargo test --workspace`
//! runs the policy's data tests), checks that the binary embeds exactly those files, and checks
//! that every paying clause has at least three cases.

use opchub_policy::cases::{run_file, EMBEDDED};
use opchub_policy::Policy;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn case_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policy/tests")
}

#[test]
fn every_case_file_passes() {
    let policy = Policy::embedded().unwrap();
    let mut failed = Vec::new();
    let mut total = 0;
    for (name, text) in EMBEDDED {
        for r in run_file(&policy, name, text).unwrap() {
            total += 1;
            if !r.passed {
                failed.push(format!("{}: {} [{}]\n    {}", r.file, r.name, r.clause, r.failures.join("\n    ")));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} policy cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(total >= 60, "expected the full suite, ran {total} cases");
}

#[test]
fn the_embedded_case_files_are_the_directory() {
    let mut on_disk: Vec<String> = std::fs::read_dir(case_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "add new case files to opchub_policy::cases::EMBEDDED");
    for (name, text) in EMBEDDED {
        let disk = std::fs::read_to_string(case_dir().join(name)).unwrap();
        assert_eq!(&disk, text, "{name}");
    }
}

#[test]
fn every_paying_clause_has_at_least_three_cases() {
    let policy = Policy::embedded().unwrap();
    let mut per_clause: BTreeMap<String, usize> = BTreeMap::new();
    for (name, text) in EMBEDDED {
        for r in run_file(&policy, name, text).unwrap() {
            *per_clause.entry(r.clause).or_default() += 1;
        }
    }
    for clause in policy.clauses.iter().filter(|c| c.pays()) {
        let n = per_clause.get(&clause.id).copied().unwrap_or(0);
        assert!(n >= 3, "{} has {n} cases, want at least 3", clause.id);
    }
}
