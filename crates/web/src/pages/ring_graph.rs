//! The graph of an integrity finding (issue 18), drawn on the server as inline SVG: its parties
//! on a circle, one arrow per evidence row (invoker → publisher) whose width grows with the
//! money, each with a `<title>` naming the calls and the amount. Readable without sight
//! (`role="img"`, a title and description). Pure: data and translated texts in, markup out.

use super::chart::escape;
use std::fmt::Write;

/// One arrow: invoker index → publisher index, with its accessible title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub fen: i64,
    pub title: String,
}

const SIZE: f64 = 360.0;
const RADIUS: f64 = 120.0;
const NODE: f64 = 22.0;

fn position(i: usize, n: usize) -> (f64, f64) {
    if n <= 1 {
        return (SIZE / 2.0, SIZE / 2.0);
    }
    let a = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n as f64;
    (SIZE / 2.0 + RADIUS * a.cos(), SIZE / 2.0 + RADIUS * a.sin())
}

/// The SVG of `nodes` (labels) and `arrows`; `title` and `desc` are the accessible texts.
pub fn ring(key: &str, nodes: &[String], arrows: &[Arrow], title: &str, desc: &str) -> String {
    let key = escape(key);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="ring-graph" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" height="{SIZE}" role="img" aria-labelledby="rg-t-{key} rg-d-{key}" xmlns="http://www.w3.org/2000/svg"><title id="rg-t-{key}">{}</title><desc id="rg-d-{key}">{}</desc>"#,
        escape(title),
        escape(desc)
    );
    let _ = write!(
        s,
        r#"<defs><marker id="rg-arrow-{key}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>"#
    );
    let max = arrows.iter().map(|a| a.fen).max().unwrap_or(1).max(1) as f64;
    for a in arrows
        .iter()
        .filter(|a| a.from < nodes.len() && a.to < nodes.len() && a.from != a.to)
    {
        let ((x1, y1), (x2, y2)) = (position(a.from, nodes.len()), position(a.to, nodes.len()));
        // Two arrows between the same pair bend to opposite sides, so both stay visible.
        let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (cx, cy) = (mx - dy / len * 28.0, my + dx / len * 28.0);
        // Stop at the node's edge.
        let (ex, ey) = (
            x2 - (x2 - cx) / ((x2 - cx).hypot(y2 - cy)).max(1.0) * NODE,
            y2 - (y2 - cy) / ((x2 - cx).hypot(y2 - cy)).max(1.0) * NODE,
        );
        let width = 1.0 + 5.0 * (a.fen.max(0) as f64 / max);
        let _ = write!(
            s,
            r##"<path class="rg-edge" d="M{x1:.1},{y1:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}" fill="none" stroke="currentColor" stroke-width="{width:.1}" marker-end="url(#rg-arrow-{key})"><title>{}</title></path>"##,
            escape(&a.title)
        );
    }
    for (i, label) in nodes.iter().enumerate() {
        let (x, y) = position(i, nodes.len());
        let _ = write!(
            s,
            r##"<g class="rg-node"><circle cx="{x:.1}" cy="{y:.1}" r="{NODE}" fill="#fff" stroke="currentColor" stroke-width="2"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text><title>{}</title></g>"##,
            y + NODE + 14.0,
            escape(&short(label)),
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A label short enough to sit under a node: at most 10 characters.
fn short(label: &str) -> String {
    let n = label.chars().count();
    if n <= 10 {
        label.to_string()
    } else {
        format!("{}…", label.chars().take(9).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_of_two_draws_two_nodes_and_two_arrows_escaped() {
        let svg = ring(
            "f1",
            &["甲公司<x>".to_string(), "乙".to_string()],
            &[
                Arrow {
                    from: 0,
                    to: 1,
                    fen: 40_000_000,
                    title: "甲 → 乙 200 次 ¥400,000.00".into(),
                },
                Arrow {
                    from: 1,
                    to: 0,
                    fen: 10_000,
                    title: "乙 → 甲 200 次 ¥100.00".into(),
                },
            ],
            "互刷",
            "两家",
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"rg-edge\"").count(), 2);
        assert!(svg.contains("甲公司&lt;x&gt;") && !svg.contains("<x>"));
        assert!(svg.contains("<title>甲 → 乙 200 次 ¥400,000.00</title>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
