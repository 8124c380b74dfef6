//! Discount concentration: an operator whose M2.2 discount goes to a handful of OPCs (see the
//! crate docs).

use std::collections::BTreeMap;

use crate::index::Index;
use crate::text::{pct, ratio, yuan};
use crate::{Detector, Finding, PartyId, Thresholds};

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    // operator → OPC → discount (fen), summed, negative as 0
    let mut by_op: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for d in &ix.input.discounts {
        let slot = by_op.entry(d.operator.0.as_str()).or_default().entry(d.opc.0.as_str()).or_insert(0);
        *slot = slot.saturating_add(d.discount_fen.max(0));
    }
    let handful = th.discount_handful.max(1);
    let mut out = Vec::new();
    for (op, opcs) in by_op {
        let mut got: Vec<(&str, i64)> = opcs.into_iter().filter(|&(_, f)| f > 0).collect();
        let total: i64 = got.iter().map(|&(_, f)| f).fold(0, i64::saturating_add);
        if total < th.discount_min_fen.max(1) || got.len() < th.discount_min_opcs {
            continue;
        }
        // heaviest first, ties by name
        got.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let top = &got[..handful.min(got.len())];
        let top_fen: i64 = top.iter().map(|&(_, f)| f).fold(0, i64::saturating_add);
        let share = ratio(top_fen as f64, total as f64);
        if share < th.discount_min_share {
            continue;
        }
        let list_zh: Vec<String> = top.iter().map(|&(o, f)| format!("{o} {}", yuan(f))).collect();
        let list_en: Vec<String> = top.iter().map(|&(o, f)| format!("{o} {}", yuan(f))).collect();
        let mut parties = vec![PartyId::from(op)];
        parties.extend(top.iter().map(|&(o, _)| PartyId::from(o)));
        out.push(Finding {
            detector: Detector::DiscountConcentration,
            parties,
            skills: Vec::new(),
            score: share,
            amount_at_stake_fen: top_fen,
            explanation_zh: format!(
                "运营方 {op} 本期共向 {} 家 OPC 让利 {}，其中 {}（{}）集中在 {} 家：{}；M2.2 让利补贴应核实这些 OPC 的用量与让利是否真实。",
                got.len(),
                yuan(total),
                pct(share),
                yuan(top_fen),
                top.len(),
                list_zh.join("、")
            ),
            explanation_en: format!(
                "Operator {op} gave {} OPCs a discount of {} in all; {} of it ({}) went to {}: {}. The M2.2 discount subsidy should check that their usage and discounts are real.",
                got.len(),
                yuan(total),
                pct(share),
                yuan(top_fen),
                top.len(),
                list_en.join(", ")
            ),
            evidence: top
                .iter()
                .map(|&(o, f)| (PartyId::from(op), PartyId::from(o), 0, f))
                .collect(),
        });
    }
    out
}
