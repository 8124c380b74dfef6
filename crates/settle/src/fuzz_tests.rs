//! Fuzzing the F3 exclusion-list CSV parser (issue 20), bounded so it runs in `cargo test`
//! (`PROPTEST_CASES=100000 cargo test -p opchub-settle fuzz` for a longer run): on any bytes it
//! returns rows or an error naming a line — never a panic — and every row it accepts carries a
//! valid USCC (or industry code) and a name.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::lists;
use proptest::prelude::*;

fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("91110106MA01ABCD10".to_string()),
        Just("911101066000000001".to_string()),
        Just("C2511".to_string()),
        Just("2026-03-01".to_string()),
        Just("\"a,b\"".to_string()),
        Just("\"\"".to_string()),
        Just("某公司".to_string()),
        "[A-Z0-9 ,\"-]{0,20}",
        any::<String>(),
    ];
    let header = prop_oneof![
        Just("uscc,name,reason".to_string()),
        Just("uscc,name,reason,event_date".to_string()),
        Just("industry_code,name,reason".to_string()),
        Just("\u{feff}uscc,name,reason".to_string()),
        "[a-z_,]{0,30}",
    ];
    (
        header,
        proptest::collection::vec(proptest::collection::vec(field, 0..5), 0..8),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(h, rows, nl)| {
            let mut s = h;
            for r in rows {
                s.push_str(nl);
                s.push_str(&r.join(","));
            }
            s.into_bytes()
        })
}

/// The bounded budget of a `cargo test` run, or `PROPTEST_CASES` for a longer one.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(kind in prop_oneof![Just("restricted_industry"), Just("no_support_sanction"), Just("nope")],
                             bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = lists::parse(kind, &bytes);
    }

    #[test]
    fn accepted_rows_are_valid(kind in prop_oneof![Just("restricted_industry"), Just("no_support_sanction"), Just("safety_accident")],
                               bytes in csvish()) {
        if let Ok((rows, sha)) = lists::parse(kind, &bytes) {
            prop_assert_eq!(sha.len(), 64);
            for r in rows {
                prop_assert!(!r.name.trim().is_empty());
                let ok = match r.industry_code.as_deref() {
                    Some(c) => opchub_domain::IndustryCode::parse(c).is_ok(),
                    None => opchub_domain::Uscc::parse(&r.uscc).is_ok(),
                };
                prop_assert!(ok, "{:?}", r);
            }
        }
    }
}
