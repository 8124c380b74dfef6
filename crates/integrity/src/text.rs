//! Formatting for explanations: money as `¥1,234.56`, shares as `87%`.

/// Fen as yuan with thousands separators: 40_000_000 → `¥400,000.00`.
pub(crate) fn yuan(fen: i64) -> String {
    let neg = fen < 0;
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}¥{}.{:02}", if neg { "-" } else { "" }, grouped, abs % 100)
}

/// A share 0..=1 as a whole percentage.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.0}%", (x * 100.0).clamp(0.0, 100.0))
}

/// `a / b` as f64, 0 when b is 0.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Names joined for prose, at most `max` then "…".
pub(crate) fn names(list: &[&str], sep: &str, max: usize) -> String {
    let mut s = list.iter().take(max).copied().collect::<Vec<_>>().join(sep);
    if list.len() > max {
        s.push_str(sep);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_groups_thousands() {
        assert_eq!(yuan(40_000_000), "¥400,000.00");
        assert_eq!(yuan(10_000), "¥100.00");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(-123_456_789), "-¥1,234,567.89");
        assert_eq!(pct(0.999), "100%");
    }
}
