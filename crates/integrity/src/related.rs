//! Related-party clusters: union–find over shared identity signals (see the crate docs).

use std::collections::BTreeMap;

use crate::index::{Index, PEdge};
use crate::text::{names, pct, ratio, yuan};
use crate::{Detector, Finding, SignalKind, Thresholds};

/// Cluster representative → members (ascending), clusters of two or more only.
pub(crate) fn clusters(ix: &Index<'_>) -> BTreeMap<u32, Vec<u32>> {
    let mut m: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (p, &r) in ix.cluster.iter().enumerate() {
        m.entry(r).or_default().push(p as u32);
    }
    m.retain(|_, v| v.len() >= 2);
    m
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let mut links_by: BTreeMap<u32, Vec<(u32, u32, SignalKind)>> = BTreeMap::new();
    for l in &ix.links {
        links_by.entry(ix.cluster[l.a as usize]).or_default().push((l.a, l.b, l.kind));
    }
    let mut out = Vec::new();
    for (rep, members) in clusters(ix) {
        let mut inside: Vec<&PEdge> = Vec::new();
        for &a in &members {
            for e in ix.out_edges(a) {
                if members.binary_search(&e.to).is_ok() {
                    inside.push(e);
                }
            }
        }
        let in_calls: u64 = inside.iter().map(|e| e.calls).fold(0, u64::saturating_add);
        if inside.is_empty() || in_calls < th.related_min_inside_calls.max(1) {
            continue;
        }
        let in_fen: i64 = inside.iter().map(|e| e.fen).fold(0, i64::saturating_add);
        let touch: i64 = members
            .iter()
            .map(|&p| ix.out_fen[p as usize].saturating_add(ix.in_fen[p as usize]))
            .fold(0, i64::saturating_add)
            .saturating_sub(in_fen);
        let inside_share = if touch > 0 {
            ratio(in_fen as f64, touch as f64)
        } else {
            let tc: u64 = members
                .iter()
                .map(|&p| ix.out_calls[p as usize].saturating_add(ix.in_calls[p as usize]))
                .fold(0u64, u64::saturating_add);
            ratio(in_calls as f64, tc.saturating_sub(in_calls) as f64)
        };
        let mut links = links_by.remove(&rep).unwrap_or_default();
        links.sort_by(|x, y| {
            y.2.weight()
                .total_cmp(&x.2.weight())
                .then(x.2.cmp(&y.2))
                .then((x.0, x.1).cmp(&(y.0, y.1)))
        });
        let strongest = links.first().map(|l| l.2.weight()).unwrap_or(0.5);
        let ties_zh: Vec<String> = links
            .iter()
            .take(6)
            .map(|&(a, b, k)| format!("{} 与 {} 共用{}", ix.pname(a), ix.pname(b), k.label_zh()))
            .collect();
        let ties_en: Vec<String> = links
            .iter()
            .take(6)
            .map(|&(a, b, k)| format!("{} and {} share {}", ix.pname(a), ix.pname(b), k.label_en()))
            .collect();
        let more = if links.len() > 6 { "…" } else { "" };
        let member_names: Vec<&str> = members.iter().map(|&p| ix.pname(p)).collect();
        let mut skills = Vec::new();
        for &a in &members {
            let start = ix.edges.partition_point(|e| e.inv < a);
            for e in ix.edges[start..].iter().take_while(|e| e.inv == a) {
                let p = ix.skill_pub[e.skill as usize];
                if p != a && members.binary_search(&p).is_ok() {
                    skills.push(ix.sid(e.skill));
                }
            }
        }
        out.push(Finding {
            detector: Detector::RelatedParties,
            parties: members.iter().map(|&p| ix.pid(p)).collect(),
            skills,
            score: strongest * (0.5 + 0.5 * inside_share.min(1.0)),
            amount_at_stake_fen: in_fen,
            explanation_zh: format!(
                "{} 个主体（{}）是关联方：{}{more}。它们之间有 {} 次付费调用、{}，占其全部付费调用金额的 {}；关联方之间的调用不应计入补贴。",
                members.len(),
                names(&member_names, "、", 8),
                ties_zh.join("；"),
                in_calls,
                yuan(in_fen),
                pct(inside_share)
            ),
            explanation_en: format!(
                "{} parties ({}) are related: {}{more}. Between them: {} paid calls, {}, which is {} of all their paid volume; calls between related parties should not qualify for subsidy.",
                members.len(),
                names(&member_names, ", ", 8),
                ties_en.join("; "),
                in_calls,
                yuan(in_fen),
                pct(inside_share)
            ),
            evidence: inside.iter().map(|e| ix.evidence(e)).collect(),
        });
    }
    out
}
