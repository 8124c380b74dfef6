//! The platform's calendar: Beijing time (Asia/Shanghai), which has no daylight saving and is
//! UTC+8 all year. Policy years, ledger periods and deadlines are counted in it.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};

/// Asia/Shanghai's offset from UTC, in seconds.
pub const BEIJING_OFFSET_S: i32 = 8 * 3600;

/// The fixed UTC+8 offset of Beijing.
pub fn beijing() -> FixedOffset {
    // 8 h is always a valid offset; UTC is the unreachable fallback.
    FixedOffset::east_opt(BEIJING_OFFSET_S).unwrap_or_else(|| Utc.fix())
}

/// The calendar day in Beijing of an instant.
pub fn beijing_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&beijing()).date_naive()
}

/// Today in Beijing.
pub fn beijing_today() -> NaiveDate {
    beijing_date(Utc::now())
}

/// The years a day or month typed by a user may fall in: four digits (text sorts like dates,
/// nothing downstream meets year 0 or 10000), from 2000 (the platform has no older records),
/// up to 2999 (clients write `2999-12-31` for an open-ended deadline) (issue 20).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2999;

/// Why a typed day or month was refused. [`DateError::code`] is the stable field code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("expected a date YYYY-MM-DD")]
    NotADate,
    #[error("expected a month YYYY-MM")]
    NotAMonth,
    #[error("the year must be between 2000 and 2999")]
    OutOfRange,
}

impl DateError {
    pub fn code(self) -> &'static str {
        match self {
            DateError::NotADate => "not_a_date",
            DateError::NotAMonth => "not_a_month",
            DateError::OutOfRange => "date_out_of_range",
        }
    }
}

/// `n` ASCII digits exactly, as a number.
fn digits(s: &[u8]) -> Option<u32> {
    s.iter()
        .try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// A calendar day typed at the edge: exactly `YYYY-MM-DD` (no spaces, no sign, two-digit
/// month and day), a real date, in [`YEARS`]. Written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

impl Day {
    pub fn parse(s: &str) -> Result<Day, DateError> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(DateError::NotADate);
        }
        let (Some(y), Some(m), Some(d)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..])) else {
            return Err(DateError::NotADate);
        };
        let y = i32::try_from(y).map_err(|_| DateError::NotADate)?;
        let date = NaiveDate::from_ymd_opt(y, m, d).ok_or(DateError::NotADate)?;
        if !YEARS.contains(&y) {
            return Err(DateError::OutOfRange);
        }
        Ok(Day(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl std::str::FromStr for Day {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Day::parse(s)
    }
}

/// A calendar month typed at the edge: exactly `YYYY-MM`, in [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn parse(s: &str) -> Result<Month, DateError> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(DateError::NotAMonth);
        }
        let (Some(y), Some(m)) = (digits(&b[..4]), digits(&b[5..])) else {
            return Err(DateError::NotAMonth);
        };
        let year = i32::try_from(y).map_err(|_| DateError::NotAMonth)?;
        if !(1..=12).contains(&m) {
            return Err(DateError::NotAMonth);
        }
        if !YEARS.contains(&year) {
            return Err(DateError::OutOfRange);
        }
        Ok(Month { year, month: m })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// The first day of the month.
    pub fn first_day(self) -> NaiveDate {
        // Month and year were checked when parsed; the fallback is unreachable.
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Month::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_exactly_and_in_range() {
        assert_eq!(Day::parse("2026-03-09").unwrap().to_string(), "2026-03-09");
        assert_eq!(
            Day::parse("2000-01-01").unwrap().date(),
            NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
        );
        for bad in [
            "2026-3-09",
            "2026-03-9",
            " 2026-03-09",
            "2026-03-09 ",
            "\t2026-03-09",
            "+2026-03-09",
            "+10000-01-01",
            "2026-02-30",
            "2026-13-01",
            "2026/03/09",
            "20260309",
            "２０２６-03-09",
            "",
        ] {
            assert_eq!(Day::parse(bad), Err(DateError::NotADate), "{bad:?}");
        }
        assert!(Day::parse("2999-12-31").is_ok());
        for far in ["0000-01-01", "1999-12-31", "3000-01-01", "9999-12-31"] {
            assert_eq!(Day::parse(far), Err(DateError::OutOfRange), "{far:?}");
            assert_eq!(Day::parse(far).unwrap_err().code(), "date_out_of_range");
        }
    }

    #[test]
    fn months_parse_exactly_and_in_range() {
        let m = Month::parse("2026-05").unwrap();
        assert_eq!((m.year(), m.month(), m.to_string()), (2026, 5, "2026-05".to_string()));
        assert_eq!(m.first_day(), NaiveDate::from_ymd_opt(2026, 5, 1).unwrap());
        for bad in [
            "2026-5",
            " 2026-03",
            "\t2026-03",
            "2026-03 ",
            "2026-00",
            "2026-13",
            "+2026-03",
            "2026-03-01",
            "202603",
            "",
        ] {
            assert_eq!(Month::parse(bad), Err(DateError::NotAMonth), "{bad:?}");
        }
        assert_eq!(Month::parse("0000-01").unwrap_err().code(), "date_out_of_range");
        assert_eq!(Month::parse("3000-01").unwrap_err().code(), "date_out_of_range");
    }

    proptest::proptest! {
        #[test]
        fn a_parsed_day_is_written_back_as_typed(y in 2000i32..=2999, m in 1u32..=12, d in 1u32..=28) {
            let s = format!("{y:04}-{m:02}-{d:02}");
            proptest::prop_assert_eq!(Day::parse(&s).map(|d| d.to_string()), Ok(s.clone()));
            proptest::prop_assert_eq!(Month::parse(&s[..7]).map(|m| m.to_string()), Ok(s[..7].to_string()));
        }
    }

    #[test]
    fn the_day_turns_at_sixteen_utc() {
        let before = DateTime::parse_from_rfc3339("2026-12-31T15:59:59Z").map(|t| t.with_timezone(&Utc));
        let after = DateTime::parse_from_rfc3339("2026-12-31T16:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(before.map(beijing_date).ok(), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(after.map(beijing_date).ok(), NaiveDate::from_ymd_opt(2027, 1, 1));
    }
}
