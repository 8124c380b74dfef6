//! Days since 1970-01-01 ↔ proleptic Gregorian dates (Howard Hinnant's `days_from_civil` and
//! `civil_from_days`), and the per-day inputs aggregated deterministically.

use std::collections::BTreeMap;

use crate::Input;

/// Days further than this from 1970-01-01 (about 270,000 years) are ignored: no date
/// arithmetic on them can overflow.
pub(crate) const MAX_DAY: i64 = 100_000_000;

pub(crate) fn day_ok(day: i64) -> bool {
    (-MAX_DAY..=MAX_DAY).contains(&day)
}

/// (year, month 1..=12, day 1..=31) of a day number within ±[`MAX_DAY`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of (year, month 1..=12, day 1..=31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The last day (day number) of the month that contains `day`, and that month as (year, month).
pub(crate) fn month_end(day: i64) -> (i64, (i64, u32)) {
    let (y, m, _) = civil_from_days(day);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - 1, (y, m))
}

/// `YYYY-MM-DD`.
pub(crate) fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Paid calls and fen of one publisher on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Day {
    pub calls: u64,
    pub fen: i64,
}

/// Publisher → day → calls and fen, summed over rows (negative fen as 0); days out of range
/// and days with neither calls nor fen are left out.
pub(crate) fn daily(input: &Input) -> BTreeMap<&str, BTreeMap<i64, Day>> {
    let mut m: BTreeMap<&str, BTreeMap<i64, Day>> = BTreeMap::new();
    for d in &input.daily {
        if !day_ok(d.day) || (d.calls == 0 && d.paid_fen <= 0) {
            continue;
        }
        let slot = m.entry(d.publisher.0.as_str()).or_default().entry(d.day).or_default();
        slot.calls = slot.calls.saturating_add(d.calls);
        slot.fen = slot.fen.saturating_add(d.paid_fen.max(0));
    }
    m
}

/// Calls and fen of a publisher's days in `from..to`.
pub(crate) fn window(days: &BTreeMap<i64, Day>, from: i64, to: i64) -> Day {
    let mut sum = Day::default();
    if from < to {
        for d in days.range(from..to).map(|(_, d)| d) {
            sum.calls = sum.calls.saturating_add(d.calls);
            sum.fen = sum.fen.saturating_add(d.fen);
        }
    }
    sum
}

/// One price series: (skill, publisher) → (day, price) ascending by day, one point a day (the
/// highest price given for that day), negative prices as 0, days out of range left out.
pub(crate) fn price_series(input: &Input) -> BTreeMap<(&str, &str), Vec<(i64, i64)>> {
    // (day, went live at ms, price) per (skill, publisher).
    type Points = Vec<(i64, i64, i64)>;
    let mut m: BTreeMap<(&str, &str), Points> = BTreeMap::new();
    for p in &input.prices {
        if !day_ok(p.day) {
            continue;
        }
        m.entry((p.skill.0.as_str(), p.publisher.0.as_str()))
            .or_default()
            .push((p.day, p.at_ms, p.price_fen.max(0)));
    }
    m.into_iter()
        .map(|(k, mut v)| {
            // In the order the prices went live (day, then time, then price: deterministic).
            // A day is read at its last price (that day's calls were paid at it); the first
            // day also keeps its first price, so a skill listed cheap and raised the same day
            // is a change.
            v.sort_unstable();
            let mut out: Vec<(i64, i64)> = Vec::new();
            for (i, &(day, _, price)) in v.iter().enumerate() {
                let last_of_day = v.get(i + 1).is_none_or(|n| n.0 != day);
                if i == 0 || last_of_day {
                    if out.last().is_some_and(|l| l.0 == day) && !last_of_day {
                        continue;
                    }
                    out.push((day, price));
                }
            }
            if out.len() >= 2 && out[0].0 == out[1].0 && out[0].1 == out[1].1 {
                out.remove(0);
            }
            (k, out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(date(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(month_end(days_from_civil(2024, 2, 10)), (days_from_civil(2024, 2, 29), (2024, 2)));
        assert_eq!(month_end(days_from_civil(2025, 12, 1)), (days_from_civil(2025, 12, 31), (2025, 12)));
        for z in (-MAX_DAY..=MAX_DAY).step_by(9_973) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        for z in [-MAX_DAY, MAX_DAY] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            let _ = month_end(z);
        }
    }
}
