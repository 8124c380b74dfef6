//! Fuzzing the parsers of values that come in from the edge (issue 20), bounded so it runs in
//! `cargo test` (`PROPTEST_CASES=100000 cargo test -p opchub-domain fuzz` for a longer run): the
//! USCC, GB/T 4754 industry codes, resident ID numbers (GB 11643), mobile numbers, yuan amounts
//! and dates never panic on any text, and what they accept prints back as something they accept
//! again to the same value.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::identity::check_character;
use crate::time::{Day, Month};
use crate::{IndustryCode, MobilePhone, Money, ResidentId, Uscc};
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

    #[test]
    fn resident_ids_never_panic_and_round_trip(s in near("[0-9xX ]{0,20}")) {
        if let Ok(id) = ResidentId::parse(&s) {
            prop_assert_eq!(ResidentId::parse(id.as_str()).unwrap(), id);
        }
    }

    /// GB 11643's MOD 11-2 check character catches every single changed digit and every swap
    /// of two adjacent different digits: a mistyped ID number is refused, never recorded as
    /// another person (issue 18 item 1 ties parties through it).
    #[test]
    fn a_mistyped_resident_id_is_refused(
        province in 11u32..=65,
        rest in "[0-9]{4}",
        birth in 0u32..(80 * 365),
        seq in "[0-9]{3}",
        at in 0usize..17,
        digit in 0u8..10,
    ) {
        let day = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap() + chrono::Days::new(u64::from(birth));
        let first17 = format!("{province}{rest}{}{seq}", day.format("%Y%m%d"));
        let id = format!("{first17}{}", check_character(&first17) as char);
        prop_assert!(ResidentId::parse(&id).is_ok(), "{}", id);
        let mut b = id.clone().into_bytes();
        if b[at] != b'0' + digit {
            b[at] = b'0' + digit;
            let typo = String::from_utf8(b).unwrap();
            prop_assert!(ResidentId::parse(&typo).is_err(), "{} accepted as {}", typo, id);
        }
        let mut b = id.clone().into_bytes();
        if at < 16 && b[at] != b[at + 1] {
            b.swap(at, at + 1);
            let swapped = String::from_utf8(b).unwrap();
            prop_assert!(ResidentId::parse(&swapped).is_err(), "{} accepted as {}", swapped, id);
        }
    }

    #[test]
    fn mobile_numbers_never_panic_and_round_trip(s in near("(\\+86|0086|86)?[ 0-9-]{0,16}")) {
        if let Ok(m) = MobilePhone::parse(&s) {
            prop_assert_eq!(m.as_str().len(), 11);
            prop_assert_eq!(MobilePhone::parse(m.as_str()).unwrap(), m);
        }
    }
}
