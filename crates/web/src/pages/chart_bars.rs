//! Horizontal bar charts drawn on the server as inline SVG (issue 21 item 4): grouped bars
//! (several series per row, e.g. approved / paid / recovered / budget per clause) and one
//! bar of shares (e.g. how settlement lines were answered). Like [`super::chart`]: no
//! script, `role="img"` with a title and description, and a `<title>` on every bar.

use super::chart::{escape, nice_ceiling, Labels};
use std::fmt::Write;

/// One row: its label and one value per series (`None`: the series has nothing to show for
/// the row, e.g. no budget set), with each bar's accessible title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub values: Vec<Option<i64>>,
    pub titles: Vec<String>,
}

const WIDTH: i64 = 720;
const LABEL_W: i64 = 170;
const RIGHT: i64 = 16;
const BAR_H: i64 = 11;
const ROW_GAP: i64 = 12;
const LEGEND_H: i64 = 26;
const AXIS_H: i64 = 22;

/// Grouped horizontal bars: one group per row, one bar per series (`series`: the series'
/// names, shown in the legend; bars get `class="bar s{i}"`). The scale is shared and starts
/// at zero; negative values are drawn as zero.
pub fn grouped(id: &str, rows: &[Row], series: &[String], labels: &Labels, fmt: impl Fn(i64) -> String) -> String {
    let id = escape(id);
    let n = i64::try_from(series.len().max(1)).unwrap_or(1);
    let group_h = n * BAR_H + ROW_GAP;
    let rows_n = i64::try_from(rows.len()).unwrap_or(0);
    let height = LEGEND_H + rows_n.max(1) * group_h + AXIS_H;
    let plot_w = WIDTH - LABEL_W - RIGHT;
    let hi = nice_ceiling(
        rows.iter()
            .flat_map(|r| r.values.iter().flatten())
            .copied()
            .max()
            .unwrap_or(0)
            .max(0),
    )
    .max(1);
    let x = |v: i64| -> i64 {
        let off = i128::from(v.max(0)) * i128::from(plot_w) / i128::from(hi);
        LABEL_W + i64::try_from(off).unwrap_or(0)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-h" id="{id}" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&labels.title),
        escape(&labels.desc)
    );
    // Legend.
    s.push_str(r#"<g class="legend">"#);
    let mut lx = LABEL_W;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            s,
            r#"<rect class="bar s{i}" x="{lx}" y="6" width="12" height="12"/><text x="{}" y="16">{}</text>"#,
            lx + 16,
            escape(name)
        );
        lx += 28 + i64::try_from(name.chars().count()).unwrap_or(4) * 12;
    }
    s.push_str("</g>");
    // Grid: zero, half and the top of the scale.
    let base = LEGEND_H + rows_n.max(1) * group_h;
    s.push_str(r#"<g class="axis x-axis">"#);
    for v in [0, hi / 2, hi] {
        let gx = x(v);
        let _ = write!(
            s,
            r#"<line x1="{gx}" y1="{LEGEND_H}" x2="{gx}" y2="{base}" class="grid{}"/><text x="{gx}" y="{}" text-anchor="{}">{}</text>"#,
            if v == 0 { " zero" } else { "" },
            base + 14,
            if v == hi { "end" } else { "middle" },
            escape(&fmt(v))
        );
    }
    s.push_str("</g>");
    s.push_str(r#"<g class="bars">"#);
    for (ri, r) in rows.iter().enumerate() {
        let top = LEGEND_H + i64::try_from(ri).unwrap_or(0) * group_h + ROW_GAP / 2;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" class="row-label">{}</text>"#,
            LABEL_W - 8,
            top + n * BAR_H / 2 + 4,
            escape(&r.label)
        );
        for (si, v) in r.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let y = top + i64::try_from(si).unwrap_or(0) * BAR_H;
            let w = (x(*v) - LABEL_W).max(1);
            let title = r.titles.get(si).map(String::as_str).unwrap_or("");
            let _ = write!(
                s,
                r#"<rect class="bar s{si}" x="{LABEL_W}" y="{y}" width="{w}" height="{}"><title>{}</title></rect>"#,
                BAR_H - 2,
                escape(title)
            );
        }
    }
    s.push_str("</g></svg>");
    s
}

/// One bar of shares (each part's count as a part of the whole), with each part's percent
/// in its title and legend; an empty whole draws an empty frame.
pub fn shares(id: &str, parts: &[(String, i64)], labels: &Labels) -> String {
    let id = escape(id);
    let total: i64 = parts.iter().map(|(_, n)| (*n).max(0)).sum();
    let plot_w = WIDTH - RIGHT - 8;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-h" id="{id}" viewBox="0 0 {WIDTH} 70" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&labels.title),
        escape(&labels.desc)
    );
    let _ = write!(s, r#"<rect class="grid" x="8" y="8" width="{plot_w}" height="24" fill="none"/>"#);
    let mut x = 8i64;
    let mut lx = 8i64;
    for (i, (name, n)) in parts.iter().enumerate() {
        let n = (*n).max(0);
        let pct = if total > 0 { n * 1000 / total } else { 0 };
        let text = format!("{name} {n}（{}.{}%）", pct / 10, pct % 10);
        if total > 0 && n > 0 {
            let w = (n * plot_w / total).max(1);
            let _ = write!(
                s,
                r#"<rect class="bar s{i}" x="{x}" y="8" width="{w}" height="24"><title>{}</title></rect>"#,
                escape(&text)
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<rect class="bar s{i}" x="{lx}" y="44" width="12" height="12"/><text x="{}" y="54">{}</text>"#,
            lx + 16,
            escape(&text)
        );
        lx += 40 + i64::try_from(text.chars().count()).unwrap_or(8) * 9;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            title: "各条款资金".into(),
            desc: "已批准、已拨付".into(),
            ..Default::default()
        }
    }

    #[test]
    fn one_bar_per_present_value_scaled_to_the_largest() {
        let rows = vec![
            Row {
                label: "M1.1".into(),
                values: vec![Some(1_000), Some(500), None],
                titles: vec!["批准 ¥10".into(), "拨付 ¥5".into(), String::new()],
            },
            Row {
                label: "M2.2 <x>".into(),
                values: vec![Some(0), Some(0), Some(2_000)],
                titles: vec!["a".into(), "b".into(), "预算 ¥20".into()],
            },
        ];
        let series = vec!["已批准".to_string(), "已拨付".to_string(), "预算".to_string()];
        let svg = grouped("funds", &rows, &series, &labels(), |v| v.to_string());
        // Legend swatches (3) and bars (5: the missing budget has none).
        assert_eq!(svg.matches(r#"class="bar s"#).count(), 3 + 5);
        assert!(svg.contains("<title>批准 ¥10</title>") && svg.contains("M2.2 &lt;x&gt;"));
        assert!(svg.contains(r#"role="img""#) && svg.contains("各条款资金"));
        // The largest value (2,000, already a nice number) spans the plot; 1,000 half of it.
        let plot = WIDTH - LABEL_W - RIGHT;
        assert!(svg.contains(&format!(r#"width="{plot}" height="9"><title>预算 ¥20"#)), "{svg}");
        assert!(svg.contains(&format!(r#"width="{}" height="9"><title>批准 ¥10"#, plot / 2)));
    }

    #[test]
    fn shares_add_up_and_an_empty_whole_draws() {
        let parts = vec![("已确认".to_string(), 3), ("已逾期".to_string(), 1)];
        let svg = shares("rate", &parts, &labels());
        assert!(svg.contains("已确认 3（75.0%）") && svg.contains("已逾期 1（25.0%）"), "{svg}");
        let empty = shares("rate", &[("已确认".to_string(), 0)], &labels());
        assert!(empty.contains("已确认 0（0.0%）") && !empty.contains(r#"height="24"><title>"#));
    }
}
