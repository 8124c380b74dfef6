//! Small charts drawn on the server as inline SVG: no JavaScript, no external library, and
//! readable without sight (`role="img"`, a title and description, and a `<title>` on every
//! bar). Pure functions: data and already-translated texts in, markup out.

use std::fmt::Write;

/// One bar: the day of the month (1-based), its value and its accessible title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub day: u32,
    pub value: i64,
    pub title: String,
}

/// Texts of a chart, translated by the caller.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// The chart's accessible name (also its `<title>`).
    pub title: String,
    /// A one-sentence description (its `<desc>`).
    pub desc: String,
    /// Under the x axis, e.g. "日".
    pub x_axis: String,
    /// Beside the y axis, e.g. "实收金额".
    pub y_axis: String,
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 260;
const LEFT: i64 = 84;
const RIGHT: i64 = 12;
const TOP: i64 = 16;
const BOTTOM: i64 = 44;

/// Days in a `YYYY-MM` month (31 for anything that is not a month).
pub fn days_in_month(period: &str) -> u32 {
    let parsed = period
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)));
    let Some((y, m)) = parsed else { return 31 };
    let next = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    match (chrono::NaiveDate::from_ymd_opt(y, m, 1), next) {
        (Some(a), Some(b)) => u32::try_from((b - a).num_days()).unwrap_or(31),
        _ => 31,
    }
}

/// The smallest "nice" number (1, 2 or 5 × 10ⁿ) that is ≥ `v`; 0 for 0.
pub(super) fn nice_ceiling(v: i64) -> i64 {
    if v <= 0 {
        return 0;
    }
    let mut step: i64 = 1;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= v {
                return candidate;
            }
        }
        if step > i64::MAX / 10 {
            return v;
        }
        step *= 10;
    }
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar chart of one value per day of a month of `days` days. Bars rise from the zero line
/// (negative values, from corrections, go below it); the y axis is labelled at its bounds
/// and zero with `fmt`, the x axis at day 1, every fifth day and the last day. Days without
/// a bar have no element, so the number of `class="bar"` elements is the number of bars.
pub fn daily_bars(days: u32, bars: &[Bar], labels: &Labels, fmt: impl Fn(i64) -> String) -> String {
    daily_bars_as("chart", days, bars, labels, fmt)
}

/// [`daily_bars`] whose title and description have the ids `{id}-title` and `{id}-desc`, for
/// a page with several charts (ids stay unique; `id` is escaped).
pub fn daily_bars_as(id: &str, days: u32, bars: &[Bar], labels: &Labels, fmt: impl Fn(i64) -> String) -> String {
    let id = escape(id);
    let days = days.clamp(1, 31);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let hi = nice_ceiling(bars.iter().map(|b| b.value).max().unwrap_or(0).max(0));
    let lo = -nice_ceiling(bars.iter().map(|b| b.value).min().unwrap_or(0).min(0).saturating_neg());
    // An empty (all-zero) chart keeps its zero line at the bottom.
    let top_value = if hi == 0 && lo == 0 { 1 } else { hi };
    let span = (i128::from(top_value) - i128::from(lo)).max(1);
    // y of a value, in whole pixels (integer arithmetic: no rounding surprises).
    let y = |v: i64| -> i64 {
        let off = (i128::from(top_value) - i128::from(v)) * i128::from(plot_h) / span;
        TOP + i64::try_from(off).unwrap_or(0)
    };
    let slot = plot_w as f64 / f64::from(days);
    let bar_w = (slot * 0.7).max(1.0);
    let x_of = |day: u32| LEFT as f64 + slot * f64::from(day.saturating_sub(1));

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&labels.title),
        escape(&labels.desc)
    );

    // Grid lines and y labels: top, zero and (when there are negatives) bottom.
    let mut ticks = vec![hi];
    if hi != 0 {
        ticks.push(hi / 2);
    }
    ticks.push(0);
    if lo != 0 {
        ticks.push(lo);
    }
    s.push_str(r#"<g class="axis y-axis">"#);
    for v in ticks {
        let ty = y(v);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{ty}" x2="{}" y2="{ty}" class="grid{}"/><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            if v == 0 { " zero" } else { "" },
            LEFT - 6,
            ty + 4,
            escape(&fmt(v))
        );
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{}" text-anchor="middle" transform="rotate(-90 12 {})" class="axis-title">{}</text>"#,
        TOP + plot_h / 2,
        TOP + plot_h / 2,
        escape(&labels.y_axis)
    );
    s.push_str("</g>");

    // X labels.
    s.push_str(r#"<g class="axis x-axis">"#);
    for d in 1..=days {
        if d == 1 || d % 5 == 0 || d == days {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{d}</text>"#,
                x_of(d) + slot / 2.0,
                TOP + plot_h + 16
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" class="axis-title">{}</text>"#,
        LEFT + plot_w / 2,
        HEIGHT - 6,
        escape(&labels.x_axis)
    );
    s.push_str("</g>");

    // Bars; a day with usage but a zero value still gets a 1-pixel bar so it can be seen.
    s.push_str(r#"<g class="bars">"#);
    let zero = y(0);
    for b in bars.iter().filter(|b| (1..=days).contains(&b.day)) {
        let top = y(b.value);
        let (ry, rh) = if b.value >= 0 { (top, zero - top) } else { (zero, top - zero) };
        let (ry, rh) = if rh < 1 { (zero - 1, 1) } else { (ry, rh) };
        let _ = write!(
            s,
            r#"<rect class="bar" x="{:.1}" y="{ry}" width="{bar_w:.1}" height="{rh}" data-day="{}"><title>{}</title></rect>"#,
            x_of(b.day) + (slot - bar_w) / 2.0,
            b.day,
            escape(&b.title)
        );
    }
    s.push_str("</g></svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            title: "每日用量".into(),
            desc: "A & B".into(),
            x_axis: "日".into(),
            y_axis: "实收".into(),
        }
    }

    #[test]
    fn days_of_months() {
        assert_eq!(days_in_month("2026-02"), 28);
        assert_eq!(days_in_month("2028-02"), 29);
        assert_eq!(days_in_month("2026-12"), 31);
        assert_eq!(days_in_month("2026-11"), 30);
        assert_eq!(days_in_month("nonsense"), 31);
    }

    #[test]
    fn nice_numbers() {
        assert_eq!([0, 1, 3, 7, 10, 11, 600, 2001].map(nice_ceiling), [0, 1, 5, 10, 10, 20, 1000, 5000]);
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
    }

    #[test]
    fn one_bar_per_day_with_titles_and_axis_labels() {
        let bars = vec![
            Bar {
                day: 3,
                value: 600,
                title: "3日 <¥6.00>".into(),
            },
            Bar {
                day: 17,
                value: 300,
                title: "17日".into(),
            },
            Bar {
                day: 20,
                value: 0,
                title: "20日".into(),
            },
        ];
        let svg = daily_bars(30, &bars, &labels(), |v| format!("¥{v}"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3);
        assert!(svg.contains("<title>3日 &lt;¥6.00&gt;</title>"), "titles are escaped");
        assert!(svg.contains("<desc id=\"chart-desc\">A &amp; B</desc>"));
        // y axis: nice top 1000, half 500, zero.
        for l in [">¥1000<", ">¥500<", ">¥0<"] {
            assert!(svg.contains(l), "{l} in {svg}");
        }
        // x axis: 1, 5, …, 30 (the last day).
        assert!(svg.contains(">1</text>") && svg.contains(">25</text>") && svg.contains(">30</text>"));
        assert!(!svg.contains(">31</text>"));
        // The 600 bar is 60 % of the plot height (200 px), the 300 bar half of it; the zero bar is 1 px.
        assert!(svg.contains(r#"height="120" data-day="3""#), "{svg}");
        assert!(svg.contains(r#"height="60" data-day="17""#), "{svg}");
        assert!(svg.contains(r#"height="1" data-day="20""#), "{svg}");
    }

    #[test]
    fn negative_values_go_below_zero_and_empty_charts_draw() {
        let bars = vec![Bar {
            day: 1,
            value: -50,
            title: "x".into(),
        }];
        let svg = daily_bars(31, &bars, &labels(), |v| v.to_string());
        assert!(svg.contains(">-50<"), "{svg}");
        assert_eq!(svg.matches(r#"class="bar""#).count(), 1);
        let empty = daily_bars(28, &[], &labels(), |v| v.to_string());
        assert_eq!(empty.matches(r#"class="bar""#).count(), 0);
        assert!(empty.contains(r#"y1="216""#), "the zero line is at the bottom: {empty}");
        assert!(empty.contains(">28</text>"));
        // Bars outside the month are ignored.
        let outside = daily_bars(
            28,
            &[Bar {
                day: 30,
                value: 1,
                title: String::new(),
            }],
            &labels(),
            |v| v.to_string(),
        );
        assert_eq!(outside.matches(r#"class="bar""#).count(), 0);
    }

    #[test]
    fn charts_of_one_page_keep_their_ids_apart() {
        let a = daily_bars_as("key-1-chart", 30, &[], &labels(), |v| v.to_string());
        assert!(a.contains(r#"aria-labelledby="key-1-chart-title key-1-chart-desc""#), "{a}");
        assert!(a.contains(r#"<title id="key-1-chart-title">"#) && a.contains(r#"<desc id="key-1-chart-desc">"#));
        assert!(daily_bars(30, &[], &labels(), |v| v.to_string()).contains(r#"<title id="chart-title">"#));
    }
}
