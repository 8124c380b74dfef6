//! Pairwise reciprocity of paid calls (see the crate docs).

use crate::index::Index;
use crate::text::{pct, yuan};
use crate::{Detector, Finding, Thresholds};

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let floor = th.reciprocity_min_calls.max(1);
    let mut out = Vec::new();
    for ab in &ix.pedges {
        if ab.from >= ab.to {
            continue;
        }
        let Some(ba) = ix.pedge(ab.to, ab.from) else { continue };
        let lo = ab.calls.min(ba.calls);
        let hi = ab.calls.max(ba.calls);
        if lo < floor || hi == 0 {
            continue;
        }
        let r = lo as f64 / hi as f64;
        if r < th.reciprocity_min_ratio || ab.fen.saturating_add(ba.fen) < th.reciprocity_min_fen {
            continue;
        }
        let volume = (lo as f64 / (5.0 * floor as f64)).min(1.0);
        let score = r * (0.5 + 0.5 * volume);
        let (x, y) = (ix.pname(ab.from), ix.pname(ab.to));
        let at_stake = ab.fen.saturating_add(ba.fen);
        out.push(Finding {
            detector: Detector::Reciprocity,
            parties: vec![ix.pid(ab.from), ix.pid(ab.to)],
            skills: skills_between(ix, ab.from, ab.to),
            score,
            amount_at_stake_fen: at_stake,
            explanation_zh: format!(
                "{x} 与 {y} 互相调用对方的付费技能：{x}→{y} {} 次 {}，{y}→{x} {} 次 {}，往返占比 {}（较少一方向的调用次数 ÷ 较多一方向）。涉及金额 {}。",
                ab.calls,
                yuan(ab.fen),
                ba.calls,
                yuan(ba.fen),
                pct(r),
                yuan(at_stake)
            ),
            explanation_en: format!(
                "{x} and {y} call each other's paid skills: {x}→{y} {} calls {}, {y}→{x} {} calls {}; reciprocity {} (calls of the lighter direction over the heavier). Amount at stake {}.",
                ab.calls,
                yuan(ab.fen),
                ba.calls,
                yuan(ba.fen),
                pct(r),
                yuan(at_stake)
            ),
            evidence: vec![ix.evidence(ab), ix.evidence(ba)],
        });
    }
    out
}

/// The skills of `a` called by `b` and of `b` called by `a`.
pub(crate) fn skills_between(ix: &Index<'_>, a: u32, b: u32) -> Vec<crate::SkillId> {
    let mut v = Vec::new();
    for (inv, publ) in [(a, b), (b, a)] {
        let start = ix.edges.partition_point(|e| e.inv < inv);
        for e in ix.edges[start..].iter().take_while(|e| e.inv == inv) {
            if ix.skill_pub[e.skill as usize] == publ {
                v.push(ix.sid(e.skill));
            }
        }
    }
    v
}
