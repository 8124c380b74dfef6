//! Fuzzing the parsers of values that come in from the edge (issue 20), bounded so it runs in
//! `cargo test` (`PROPTEST_CASES=100000 cargo test -p opchub-domain fuzz` for a longer run): the
//! USCC, GB/T 4754 industry codes, yuan amounts and dates never panic on any text, and what they
//! accept prints back as something they accept again to the same value.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::time::{Day, Month};
use crate::{IndustryCode, Money, Uscc};
use proptest::prelude::*;

fn near(alphabet: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), proptest::string::string_regex(alphabet).unwrap()]
}

/// The bounded budget of a `cargo test` run, or `PROPTEST_CASES` for a longer one.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    #[test]
    fn uscc_never_panics_and_round_trips(s in near("[0-9A-Za-z ]{0,20}")) {
        if let Ok(u) = Uscc::parse(&s) {
            prop_assert_eq!(Uscc::parse(u.as_str()).unwrap(), u);
        }
    }

    #[test]
    fn industry_codes_never_panic_and_round_trip(s in near("[A-Ta-t ]?[0-9]{0,5} ?")) {
        if let Ok(c) = IndustryCode::parse(&s) {
            prop_assert_eq!(IndustryCode::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn yuan_amounts_never_panic_and_round_trip(s in near("[-+]?[0-9,]{0,16}(\\.[0-9]{0,4})?")) {
        if let Ok(m) = s.parse::<Money>() {
            prop_assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
        }
    }

    #[test]
    fn dates_never_panic_and_round_trip(s in near("[+-]?[0-9]{1,5}-[0-9]{1,2}(-[0-9]{1,2})?")) {
        if let Ok(d) = Day::parse(&s) {
            prop_assert_eq!(Day::parse(&d.to_string()).unwrap(), d);
        }
        if let Ok(m) = Month::parse(&s) {
            prop_assert_eq!(Month::parse(&m.to_string()).unwrap(), m);
        }
    }
}
