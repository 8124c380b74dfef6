//! Strongly connected components of the party graph and the share of volume that stays
//! inside them (see the crate docs).

use crate::index::{Index, PEdge};
use crate::text::{names, pct, ratio, yuan};
use crate::{Detector, Finding, Thresholds};

fn share(part: i64, whole: i64) -> f64 {
    ratio(part as f64, whole as f64)
}

/// Is a → b material: enough calls, and a real part of a's spending or of b's revenue.
fn material(ix: &Index<'_>, e: &PEdge, th: &Thresholds) -> bool {
    if e.calls < th.cycle_min_edge_calls {
        return false;
    }
    let (a, b) = (e.from as usize, e.to as usize);
    let s = if ix.out_fen[a] > 0 && ix.in_fen[b] > 0 {
        share(e.fen, ix.out_fen[a]).max(share(e.fen, ix.in_fen[b]))
    } else {
        ratio(e.calls as f64, ix.out_calls[a] as f64).max(ratio(e.calls as f64, ix.in_calls[b] as f64))
    };
    s >= th.cycle_min_edge_share
}

/// Tarjan's algorithm without recursion (no stack overflow on long paths). `out(v)` gives the
/// successors of v. Returns the components of two or more nodes, members ascending.
pub(crate) fn tarjan(n: usize, out: impl Fn(u32) -> Vec<u32>) -> Vec<Vec<u32>> {
    const UNSEEN: u32 = u32::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut comps = Vec::new();
    let mut next = 0u32;
    // call stack frames: (node, its successors, position)
    let mut frames: Vec<(u32, Vec<u32>, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        frames.push((root, out(root), 0));
        while let Some(frame) = frames.last_mut() {
            let v = frame.0;
            if frame.2 < frame.1.len() {
                let w = frame.1[frame.2];
                frame.2 += 1;
                if index[w as usize] == UNSEEN {
                    index[w as usize] = next;
                    low[w as usize] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    frames.push((w, out(w), 0));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            } else {
                frames.pop();
                if let Some(parent) = frames.last() {
                    let p = parent.0 as usize;
                    low[p] = low[p].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort_unstable();
                        comps.push(comp);
                    }
                }
            }
        }
    }
    comps
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let n = ix.party_count();
    let comps = tarjan(n, |v| {
        ix.out_edges(v).iter().filter(|e| material(ix, e, th)).map(|e| e.to).collect()
    });
    let mut out = Vec::new();
    for comp in comps {
        if comp.len() < 2 || comp.len() > th.cycle_max_size.max(2) {
            continue;
        }
        let mut inside: Vec<&PEdge> = Vec::new();
        for &a in &comp {
            for e in ix.out_edges(a) {
                if comp.binary_search(&e.to).is_ok() {
                    inside.push(e);
                }
            }
        }
        let in_fen: i64 = inside.iter().map(|e| e.fen).fold(0, i64::saturating_add);
        let in_calls: u64 = inside.iter().map(|e| e.calls).fold(0, u64::saturating_add);
        let touch_fen: i64 = comp
            .iter()
            .map(|&p| ix.out_fen[p as usize].saturating_add(ix.in_fen[p as usize]))
            .fold(0, i64::saturating_add)
            .saturating_sub(in_fen);
        let touch_calls: u64 = comp
            .iter()
            .map(|&p| ix.out_calls[p as usize].saturating_add(ix.in_calls[p as usize]))
            .fold(0, u64::saturating_add)
            .saturating_sub(in_calls);
        let s = if touch_fen > 0 {
            share(in_fen, touch_fen)
        } else {
            ratio(in_calls as f64, touch_calls as f64)
        };
        if s < th.cycle_min_inside_share || in_calls < th.cycle_min_inside_calls || in_fen < th.cycle_min_inside_fen {
            continue;
        }
        let volume = ratio(in_calls as f64, 5.0 * th.cycle_min_inside_calls.max(1) as f64).min(1.0);
        let member_names: Vec<&str> = comp.iter().map(|&p| ix.pname(p)).collect();
        let mut heavy = inside.clone();
        heavy.sort_by(|a, b| b.fen.cmp(&a.fen).then(b.calls.cmp(&a.calls)));
        let rows_zh: Vec<String> = heavy
            .iter()
            .take(6)
            .map(|e| format!("{}→{} {} 次 {}", ix.pname(e.from), ix.pname(e.to), e.calls, yuan(e.fen)))
            .collect();
        let rows_en: Vec<String> = heavy
            .iter()
            .take(6)
            .map(|e| format!("{}→{} {} calls {}", ix.pname(e.from), ix.pname(e.to), e.calls, yuan(e.fen)))
            .collect();
        let more = if heavy.len() > 6 { "…" } else { "" };
        let mut skills = Vec::new();
        for &a in &comp {
            let start = ix.edges.partition_point(|e| e.inv < a);
            for e in ix.edges[start..].iter().take_while(|e| e.inv == a) {
                let p = ix.skill_pub[e.skill as usize];
                if p != a && comp.binary_search(&p).is_ok() {
                    skills.push(ix.sid(e.skill));
                }
            }
        }
        out.push(Finding {
            detector: Detector::Cycle,
            parties: comp.iter().map(|&p| ix.pid(p)).collect(),
            skills,
            score: s * (0.5 + 0.5 * volume),
            amount_at_stake_fen: in_fen,
            explanation_zh: format!(
                "{} 个主体（{}）相互形成付费调用环：{}{more}。环内共 {} 次调用、{}，占这些主体全部付费调用金额的 {}。",
                comp.len(),
                names(&member_names, "、", 8),
                rows_zh.join("；"),
                in_calls,
                yuan(in_fen),
                pct(s)
            ),
            explanation_en: format!(
                "{} parties ({}) form a ring of paid calls: {}{more}. Inside the ring: {} calls, {}, which is {} of all the paid volume of these parties.",
                comp.len(),
                names(&member_names, ", ", 8),
                rows_en.join("; "),
                in_calls,
                yuan(in_fen),
                pct(s)
            ),
            evidence: inside.iter().map(|e| ix.evidence(e)).collect(),
        });
    }
    out
}
