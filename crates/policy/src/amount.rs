//! Exact money arithmetic for the engine: amounts in (possibly fractional) fen as `Decimal`,
//! checked operations, the one rounding rule (half-up to the fen) and how amounts read in a trace.
//! No floating point anywhere.

use crate::error::PolicyError;
use chrono::NaiveDate;
use opchub_domain::Money;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

pub(crate) fn add(a: Decimal, b: Decimal, what: &str) -> Result<Decimal, PolicyError> {
    a.checked_add(b).ok_or_else(|| PolicyError::Overflow(what.to_string()))
}

pub(crate) fn mul(a: Decimal, b: Decimal, what: &str) -> Result<Decimal, PolicyError> {
    a.checked_mul(b).ok_or_else(|| PolicyError::Overflow(what.to_string()))
}

pub(crate) fn div(a: Decimal, b: Decimal, what: &str) -> Result<Decimal, PolicyError> {
    a.checked_div(b).ok_or_else(|| PolicyError::Overflow(what.to_string()))
}

/// Half-up to the fen: the one rounding of a clause's computation (PARAMETERS: "once, at the end").
pub fn round_half_up(fen: Decimal) -> Result<i64, PolicyError> {
    fen.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or_else(|| PolicyError::Overflow("rounding".into()))
}

/// `¥612,345.67`, or `¥612,345.675` when the amount still has a fraction of a fen
/// (`¥3,333.3333…` when that fraction has more than two digits).
pub fn yuan(fen: Decimal) -> String {
    let whole = fen.trunc();
    let Some(whole_fen) = whole.to_i64() else {
        return format!("{fen} fen");
    };
    let base = Money::from_fen(whole_fen).to_string();
    let exact = (fen - whole).abs().normalize();
    // Traces show at most two decimals of a fen; "…" says the value goes on.
    let frac = exact.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero).normalize();
    let more = if frac == exact { "" } else { "…" };
    if frac.is_zero() {
        if fen.is_sign_negative() && whole_fen == 0 {
            return format!("-{base}");
        }
        return base;
    }
    let digits = frac.to_string();
    let digits = digits.trim_start_matches("0.");
    let sign = if fen.is_sign_negative() && whole_fen == 0 { "-" } else { "" };
    format!("{sign}{base}{digits}{more}")
}

pub fn yuan_fen(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

/// A quantity for a trace: at most four decimals, "…" when it goes on.
pub fn short(d: Decimal) -> String {
    let r = d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero).normalize();
    if r == d.normalize() {
        r.to_string()
    } else {
        format!("{r}…")
    }
}

/// A ratio as a percentage: 0.1 → `10%`.
pub fn percent(r: Decimal) -> String {
    match r.checked_mul(Decimal::ONE_HUNDRED) {
        Some(p) => format!("{}%", p.normalize()),
        None => format!("{r}"),
    }
}

/// A half-open span of days `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Span {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Span {
        Span { start, end }
    }

    pub fn days(self) -> i64 {
        (self.end - self.start).num_days().max(0)
    }

    pub fn intersect(self, other: Span) -> Span {
        Span {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        }
    }

    pub fn contains(self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn rounds_half_up_to_the_fen() {
        assert_eq!(round_half_up(Decimal::from_str("10.5").unwrap()).unwrap(), 11);
        assert_eq!(round_half_up(Decimal::from_str("10.49").unwrap()).unwrap(), 10);
        assert_eq!(round_half_up(Decimal::from_str("2.5").unwrap()).unwrap(), 3);
    }

    #[test]
    fn shows_fractions_of_a_fen() {
        assert_eq!(yuan(Decimal::from(61_234_567)), "¥612,345.67");
        assert_eq!(yuan(Decimal::from_str("61234567.5").unwrap()), "¥612,345.675");
        assert_eq!(yuan(Decimal::ZERO), "¥0.00");
        assert_eq!(yuan(Decimal::from(1_000_000) / Decimal::from(3)), "¥3,333.3333…");
        assert_eq!(percent(Decimal::from_str("0.10").unwrap()), "10%");
    }
}
