//! Round trips: an M2.4 cooperation payment between related parties (see the crate docs).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::index::{FastMap, Index};
use crate::text::yuan;
use crate::{Detector, Finding, SignalKind, Thresholds};

/// How two parties are tied: the strongest value they share themselves, or else the shortest
/// chain of shared values through other members of their cluster.
enum Tie {
    Same,
    /// Kinds both parties hold the same value of (strongest first).
    Direct(Vec<SignalKind>),
    /// (a, b, kind) steps from the enterprise to the OPC.
    Chain(Vec<(u32, u32, SignalKind)>),
}

fn strongest_first(kinds: &mut [SignalKind]) {
    kinds.sort_by(|a, b| b.weight().total_cmp(&a.weight()).then(a.cmp(b)));
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let mut agg: BTreeMap<(&str, &str), (u64, i64)> = BTreeMap::new();
    for p in &ix.input.payments {
        let slot = agg.entry((p.enterprise.0.as_str(), p.opc.0.as_str())).or_default();
        slot.0 = slot.0.saturating_add(p.payments);
        slot.1 = slot.1.saturating_add(p.paid_fen.max(0));
    }
    let candidates: Vec<(u32, u32, u64, i64)> = agg
        .into_iter()
        .filter(|&(_, (_, fen))| fen > 0)
        .filter_map(|((e, o), (n, fen))| {
            let (pe, po) = (ix.party_index(e)?, ix.party_index(o)?);
            (ix.cluster[pe as usize] == ix.cluster[po as usize]).then_some((pe, po, n, fen))
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }

    // The signal values of the candidates' parties, and how many parties hold each (a value
    // held by more than `related_max_signal_parties` ties nobody, as in the clusters).
    let wanted: BTreeSet<u32> = candidates.iter().flat_map(|&(e, o, _, _)| [e, o]).collect();
    let mut held: BTreeMap<u32, BTreeSet<(SignalKind, &str)>> = BTreeMap::new();
    for s in &ix.input.signals {
        if s.value_hash.is_empty() {
            continue;
        }
        if let Some(p) = ix.party_index(&s.party.0).filter(|p| wanted.contains(p)) {
            held.entry(p).or_default().insert((s.kind, s.value_hash.as_str()));
        }
    }
    let values: BTreeSet<(SignalKind, &str)> = held.values().flatten().copied().collect();
    let mut holders: FastMap<(SignalKind, &str), BTreeSet<&str>> = FastMap::default();
    for s in &ix.input.signals {
        let key = (s.kind, s.value_hash.as_str());
        if values.contains(&key) {
            holders.entry(key).or_default().insert(s.party.0.as_str());
        }
    }
    let meaningful = |key: &(SignalKind, &str)| {
        holders
            .get(key)
            .is_some_and(|h| h.len() >= 2 && h.len() <= th.related_max_signal_parties)
    };
    // Undirected links of the clusters, the strongest kind per pair, neighbours ascending.
    let mut adj: BTreeMap<u32, BTreeMap<u32, SignalKind>> = BTreeMap::new();
    for l in &ix.links {
        for (a, b) in [(l.a, l.b), (l.b, l.a)] {
            let k = adj.entry(a).or_default().entry(b).or_insert(l.kind);
            if l.kind.weight() > k.weight() || (l.kind.weight() == k.weight() && l.kind < *k) {
                *k = l.kind;
            }
        }
    }

    let mut out = Vec::new();
    for (e, o, n, fen) in candidates {
        let tie = if e == o {
            Tie::Same
        } else {
            let empty = BTreeSet::new();
            let (he, ho) = (held.get(&e).unwrap_or(&empty), held.get(&o).unwrap_or(&empty));
            let mut kinds: Vec<SignalKind> = he.intersection(ho).filter(|k| meaningful(k)).map(|k| k.0).collect();
            if kinds.is_empty() {
                Tie::Chain(chain(&adj, e, o))
            } else {
                strongest_first(&mut kinds);
                kinds.dedup();
                Tie::Direct(kinds)
            }
        };
        let (en, on) = (ix.pname(e), ix.pname(o));
        let (score, tie_zh, tie_en) = match &tie {
            Tie::Same => (1.0, "二者是同一主体".to_string(), "they are the same party".to_string()),
            Tie::Direct(kinds) => (
                kinds.first().map_or(0.5, |k| k.weight()),
                format!(
                    "{en} 与 {on} 共用{}",
                    kinds.iter().map(|k| k.label_zh()).collect::<Vec<_>>().join("、")
                ),
                format!(
                    "{en} and {on} share {}",
                    kinds.iter().map(|k| k.label_en()).collect::<Vec<_>>().join(" and ")
                ),
            ),
            Tie::Chain(steps) if steps.is_empty() => (
                0.5,
                "二者属于同一关联方集群".to_string(),
                "they are in one cluster of related parties".to_string(),
            ),
            Tie::Chain(steps) => (
                // a chain is as strong as its weakest tie
                steps.iter().map(|s| s.2.weight()).fold(1.0, f64::min),
                steps
                    .iter()
                    .map(|&(a, b, k)| format!("{} 与 {} 共用{}", ix.pname(a), ix.pname(b), k.label_zh()))
                    .collect::<Vec<_>>()
                    .join("；"),
                steps
                    .iter()
                    .map(|&(a, b, k)| format!("{} and {} share {}", ix.pname(a), ix.pname(b), k.label_en()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        // The parties in between a chain are named in the explanation, not flagged.
        let mut parties = vec![ix.pid(e), ix.pid(o)];
        parties.dedup();
        out.push(Finding {
            detector: Detector::RoundTrip,
            parties,
            skills: Vec::new(),
            score,
            amount_at_stake_fen: fen,
            explanation_zh: format!(
                "企业 {en} 向 OPC {on} 确认了 {n} 笔合作付款、共 {}，但二者是关联方：{tie_zh}。这笔钱回流到自己人手里，M2.4 合作补贴不应计入。",
                yuan(fen)
            ),
            explanation_en: format!(
                "Enterprise {en} confirmed {n} cooperation payments to OPC {on}, {} in all, but they are related: {tie_en}. The money comes back to the same side; M2.4 should not count it.",
                yuan(fen)
            ),
            evidence: vec![(ix.pid(e), ix.pid(o), n, fen)],
        });
    }
    out
}

/// The shortest chain of links from `from` to `to` (breadth first, neighbours ascending: the
/// same input always gives the same chain). Empty when there is none.
fn chain(adj: &BTreeMap<u32, BTreeMap<u32, SignalKind>>, from: u32, to: u32) -> Vec<(u32, u32, SignalKind)> {
    let mut parent: BTreeMap<u32, (u32, SignalKind)> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(a) = queue.pop_front() {
        if a == to {
            break;
        }
        for (&b, &k) in adj.get(&a).into_iter().flatten() {
            if seen.insert(b) {
                parent.insert(b, (a, k));
                queue.push_back(b);
            }
        }
    }
    let mut steps = Vec::new();
    let mut at = to;
    while let Some(&(p, k)) = parent.get(&at) {
        steps.push((p, at, k));
        at = p;
    }
    steps.reverse();
    steps
}
