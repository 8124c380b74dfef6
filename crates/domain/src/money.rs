//! Money in CNY as integer fen (分). Arithmetic is exact and checked; there is no
//! floating point anywhere. Display is `¥1,234.56` (negative: `-¥1,234.56`).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("金额超出范围 (amount out of range)")]
    Overflow,
    #[error("金额格式无效：{0} (invalid amount)")]
    Invalid(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_fen(fen: i64) -> Self {
        Money(fen)
    }

    /// Whole yuan; checked.
    pub fn from_yuan(yuan: i64) -> Result<Self, MoneyError> {
        yuan.checked_mul(100).map(Money).ok_or(MoneyError::Overflow)
    }

    pub const fn fen(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_add(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_sub(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    pub fn checked_mul(self, n: i64) -> Result<Money, MoneyError> {
        self.0.checked_mul(n).map(Money).ok_or(MoneyError::Overflow)
    }

    pub fn min(self, other: Money) -> Money {
        Money(self.0.min(other.0))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let yuan = abs / 100;
        let fen = abs % 100;
        let digits = yuan.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "{}¥{}.{:02}", if neg { "-" } else { "" }, grouped, fen)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    /// Parses `1234`, `1234.5`, `1,234.56`, `¥1,234.56` (at most two decimals) into fen.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || MoneyError::Invalid(s.to_string());
        let t = s.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let t = t.trim_start_matches('¥').replace(',', "");
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i.to_string(), f.to_string()),
            None => (t.clone(), String::new()),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let yuan: i64 = int.parse().map_err(|_| MoneyError::Overflow)?;
        let mut fen: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| invalid())? };
        if frac.len() == 1 {
            fen *= 10;
        }
        let total = yuan.checked_mul(100).and_then(|v| v.checked_add(fen)).ok_or(MoneyError::Overflow)?;
        Ok(Money(if neg { -total } else { total }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_a_receipt() {
        assert_eq!(Money::from_fen(123456).to_string(), "¥1,234.56");
        assert_eq!(Money::from_fen(5).to_string(), "¥0.05");
        assert_eq!(Money::from_fen(50_000_000).to_string(), "¥500,000.00");
        assert_eq!(Money::from_fen(-100).to_string(), "-¥1.00");
        assert_eq!(Money::from_fen(i64::MIN).to_string(), "-¥92,233,720,368,547,758.08");
    }

    #[test]
    fn parses_common_spellings() {
        assert_eq!("¥1,234.56".parse::<Money>(), Ok(Money::from_fen(123456)));
        assert_eq!("1234.5".parse::<Money>(), Ok(Money::from_fen(123450)));
        assert_eq!("7".parse::<Money>(), Ok(Money::from_fen(700)));
        assert!("1.234".parse::<Money>().is_err());
        assert!("abc".parse::<Money>().is_err());
        assert!("1e3".parse::<Money>().is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(Money::from_fen(i64::MAX).checked_add(Money::from_fen(1)), Err(MoneyError::Overflow));
        assert_eq!(Money::from_yuan(i64::MAX / 10), Err(MoneyError::Overflow));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(fen in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let m = Money::from_fen(fen);
            prop_assert_eq!(m.to_string().replace('¥', "").parse::<Money>(), Ok(m));
        }

        #[test]
        fn addition_is_exact(a in -1_000_000_000_000i64..1_000_000_000_000i64, b in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let s = Money::from_fen(a).checked_add(Money::from_fen(b)).unwrap();
            prop_assert_eq!(s.checked_sub(Money::from_fen(b)).unwrap(), Money::from_fen(a));
        }
    }
}

/// A yuan amount as a person types it in a form (`1,234.56`, `¥1,234.56`, also with a
/// full-width `，`) in fen; `Ok(None)` when the field is empty. The one parser of typed amounts.
pub fn fen_of_input(v: Option<&str>) -> Result<Option<i64>, MoneyError> {
    match v.map(|v| v.trim().replace('，', ",")).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<Money>().map(|m| Some(m.fen())),
    }
}

#[cfg(test)]
mod input_tests {
    use super::fen_of_input;

    #[test]
    fn typed_amounts_parse_alike_everywhere() {
        assert_eq!(fen_of_input(Some("1,234.56")), Ok(Some(123_456)));
        assert_eq!(fen_of_input(Some(" 1，234.5 ")), Ok(Some(123_450)));
        assert_eq!(fen_of_input(Some("")), Ok(None));
        assert_eq!(fen_of_input(None), Ok(None));
        assert!(fen_of_input(Some("1.234")).is_err());
        assert!(fen_of_input(Some("abc")).is_err());
    }
}

/// Millionths of a fen per fen. A token price is fen per million tokens, so tokens × price is
/// an exact amount in millionths of a fen: usage money stays exact in this unit until the one
/// rounding of a statement, bill or settlement line (PARAMETERS: round once, at the end; issue
/// 17 item 6).
pub const MICRO_PER_FEN: i64 = 1_000_000;

/// An exact amount in millionths of a fen, as stored on a ledger event: the amount rounded
/// half-up to the fen, and what the rounding left (`exact − fen × 10⁶`, in −500,000 < sub ≤
/// 499,999 millionths). Old events and whole-fen amounts have `sub_micro` 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactFen {
    pub fen: i64,
    pub sub_micro: i64,
}

impl ExactFen {
    /// Splits an exact amount in millionths of a fen (saturating at the i64 range of fen).
    pub fn from_micro(micro: i128) -> ExactFen {
        let fen = round_micro(micro);
        let sub = micro - fen as i128 * MICRO_PER_FEN as i128;
        ExactFen {
            fen,
            sub_micro: sub.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        }
    }
    /// `tokens` at `fen_per_million`, exactly.
    pub fn of_tokens(tokens: i64, fen_per_million: i64) -> ExactFen {
        ExactFen::from_micro(tokens.max(0) as i128 * fen_per_million.max(0) as i128)
    }
    /// The exact amount in millionths of a fen.
    pub fn micro(self) -> i128 {
        self.fen as i128 * MICRO_PER_FEN as i128 + self.sub_micro as i128
    }
}

/// Half-up (away from zero) to the fen of an exact amount in millionths of a fen: the one
/// rounding of a line.
pub fn round_micro(micro: i128) -> i64 {
    let m = MICRO_PER_FEN as i128;
    let half = m / 2;
    let fen = if micro >= 0 { (micro + half) / m } else { -((-micro + half) / m) };
    fen.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
mod exact_tests {
    use super::*;

    /// Issue 17 item 6: 100 requests of 500 input tokens at list ¥10/M and OPC price ¥4/M are
    /// ¥0.50 list and ¥0.20 charged (a ¥0.30 discount), not 100 × (1 fen − 0 fen).
    #[test]
    fn sub_fen_amounts_add_up_exactly_and_round_once() {
        let (list, opc) = (ExactFen::of_tokens(500, 1_000), ExactFen::of_tokens(500, 400));
        assert_eq!((list.fen, list.sub_micro), (1, -500_000));
        assert_eq!((opc.fen, opc.sub_micro), (0, 200_000));
        let sum = |e: ExactFen| (0..100).map(|_| e.micro()).sum::<i128>();
        assert_eq!((round_micro(sum(list)), round_micro(sum(opc))), (50, 20));
        assert_eq!(round_micro(sum(list) - sum(opc)), 30);
        assert_eq!(round_micro(1_500_000), 2);
        assert_eq!(round_micro(-1_500_000), -2);
        assert_eq!(round_micro(1_499_999), 1);
        assert_eq!(ExactFen::from_micro(7 * MICRO_PER_FEN as i128), ExactFen { fen: 7, sub_micro: 0 });
    }
}
