//! Concentration: a skill whose revenue comes mostly from one invoker or one related-party
//! cluster of invokers (see the crate docs).

use std::collections::BTreeMap;

use crate::index::Index;
use crate::text::{names, pct, ratio, yuan};
use crate::{Detector, Finding, Thresholds};

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let np = ix.party_count();
    let ns = ix.skill_count();
    // What each cluster (singletons included) spends on skills published outside itself.
    let mut spend_fen = vec![0i64; np];
    let mut spend_calls = vec![0u64; np];
    let mut col_start = vec![0usize; ns + 1];
    let group_of_pub = |s: u32| {
        let p = ix.skill_pub[s as usize];
        if p == u32::MAX {
            u32::MAX
        } else {
            ix.cluster[p as usize]
        }
    };
    for e in &ix.edges {
        let g = ix.cluster[e.inv as usize];
        if group_of_pub(e.skill) != g {
            spend_fen[g as usize] = spend_fen[g as usize].saturating_add(e.fen);
            spend_calls[g as usize] = spend_calls[g as usize].saturating_add(e.calls);
        }
        col_start[e.skill as usize + 1] += 1;
    }
    for i in 0..ns {
        col_start[i + 1] += col_start[i];
    }
    let mut fill = col_start.clone();
    let mut by_col = vec![0u32; ix.edges.len()];
    for (i, e) in ix.edges.iter().enumerate() {
        by_col[fill[e.skill as usize]] = i as u32;
        fill[e.skill as usize] += 1;
    }
    let mut members: Option<BTreeMap<u32, Vec<u32>>> = None;
    let mut out = Vec::new();
    let mut groups: BTreeMap<u32, (u64, i64)> = BTreeMap::new();
    for s in 0..ns {
        let col = &by_col[col_start[s]..col_start[s + 1]];
        let (mut calls, mut fen) = (0u64, 0i64);
        for &i in col {
            let e = &ix.edges[i as usize];
            calls = calls.saturating_add(e.calls);
            fen = fen.saturating_add(e.fen);
        }
        if calls < th.concentration_min_calls || fen < th.concentration_min_fen {
            continue;
        }
        groups.clear();
        for &i in col {
            let e = &ix.edges[i as usize];
            let slot = groups.entry(ix.cluster[e.inv as usize]).or_default();
            slot.0 = slot.0.saturating_add(e.calls);
            slot.1 = slot.1.saturating_add(e.fen);
        }
        let by_fen = fen > 0;
        let Some((&g, &(g_calls, g_fen))) = groups
            .iter()
            .max_by(|a, b| if by_fen { a.1 .1.cmp(&b.1 .1) } else { a.1 .0.cmp(&b.1 .0) }.then(b.0.cmp(a.0)))
        else {
            continue;
        };
        let share = if by_fen {
            ratio(g_fen as f64, fen as f64)
        } else {
            ratio(g_calls as f64, calls as f64)
        };
        // Spending on this skill over the group's spending outside itself (plus this skill).
        let inside = group_of_pub(s as u32) == g;
        let focus = if by_fen {
            ratio(
                g_fen as f64,
                spend_fen[g as usize].saturating_add(if inside { g_fen } else { 0 }) as f64,
            )
        } else {
            ratio(
                g_calls as f64,
                spend_calls[g as usize].saturating_add(if inside { g_calls } else { 0 }) as f64,
            )
        };
        if share < th.concentration_min_share || focus < th.concentration_min_focus {
            continue;
        }
        let all = members.get_or_insert_with(|| crate::related::clusters(ix));
        let group: Vec<u32> = all.get(&g).cloned().unwrap_or_else(|| vec![g]);
        let s = s as u32;
        let publ = ix.skill_pub[s as usize];
        let callers: Vec<u32> = col
            .iter()
            .map(|&i| ix.edges[i as usize].inv)
            .filter(|p| group.binary_search(p).is_ok())
            .collect();
        let caller_names: Vec<&str> = callers.iter().map(|&p| ix.pname(p)).collect();
        let related_pub = publ != u32::MAX && ix.cluster[publ as usize] == g;
        let pub_name = if publ == u32::MAX { "?" } else { ix.pname(publ) };
        let (who_zh, who_en) = if callers.len() == 1 {
            (
                format!("调用方 {}", caller_names.join("")),
                format!("one invoker, {}", caller_names.join("")),
            )
        } else {
            (
                format!("{} 个关联调用方（{}）", callers.len(), names(&caller_names, "、", 8)),
                format!("{} related invokers ({})", callers.len(), names(&caller_names, ", ", 8)),
            )
        };
        let (spender_zh, spender_en) = if group.len() == 1 {
            ("该调用方全部", "that invoker")
        } else {
            ("这组关联方在圈外的全部", "that group of related parties outside itself")
        };
        let (rel_zh, rel_en) = if related_pub {
            ("；调用方与发布方是关联方", "; the invokers are related to the publisher")
        } else {
            ("", "")
        };
        let mut parties = callers.clone();
        if publ != u32::MAX {
            parties.push(publ);
        }
        let mut evidence = Vec::new();
        if publ != u32::MAX {
            for &i in col {
                let e = &ix.edges[i as usize];
                if group.binary_search(&e.inv).is_ok() {
                    evidence.push((ix.pid(e.inv), ix.pid(publ), e.calls, e.fen));
                }
            }
        }
        out.push(Finding {
            detector: Detector::Concentration,
            parties: parties.iter().map(|&p| ix.pid(p)).collect(),
            skills: vec![ix.sid(s)],
            score: share,
            amount_at_stake_fen: if by_fen { g_fen } else { 0 },
            explanation_zh: format!(
                "{pub_name} 的技能 {} 共收到 {} 次付费调用、{}，其中 {} 来自{who_zh}（{} 次、{}）；这也占{spender_zh}付费支出的 {}{rel_zh}。",
                ix.sname(s),
                calls,
                yuan(fen),
                pct(share),
                g_calls,
                yuan(g_fen),
                pct(focus)
            ),
            explanation_en: format!(
                "Skill {} of {pub_name} received {} paid calls, {}; {} of it comes from {who_en} ({} calls, {}), which is also {} of what {spender_en} spends{rel_en}.",
                ix.sname(s),
                calls,
                yuan(fen),
                pct(share),
                g_calls,
                yuan(g_fen),
                pct(focus)
            ),
            evidence,
        });
    }
    out
}
