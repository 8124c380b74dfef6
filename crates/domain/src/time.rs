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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_sixteen_utc() {
        let before = DateTime::parse_from_rfc3339("2026-12-31T15:59:59Z").map(|t| t.with_timezone(&Utc));
        let after = DateTime::parse_from_rfc3339("2026-12-31T16:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(before.map(beijing_date).ok(), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(after.map(beijing_date).ok(), NaiveDate::from_ymd_opt(2027, 1, 1));
    }
}
