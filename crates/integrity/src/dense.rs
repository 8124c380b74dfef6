//! Dense blocks in the invoker → skill graph: FRAUDAR-style greedy peeling (Hooi et al.,
//! KDD 2016) with column weights 1 / ln(deg + 5) (see the crate docs).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::index::{FastMap, Index, UnionFind};
use crate::text::{names, pct, ratio, yuan};
use crate::{Detector, Finding, Thresholds};

/// Non-negative f64 as an order-preserving key (+0.0 for anything ≤ 0 or NaN).
fn key(x: f64) -> u64 {
    if x > 0.0 {
        x.to_bits()
    } else {
        0
    }
}

pub(crate) struct Block {
    pub rows: Vec<u32>,
    pub cols: Vec<u32>,
}

/// The bipartite graph for peeling: edges `(row, col)` with CSR in both directions.
pub(crate) struct Bipartite {
    pub nrows: usize,
    pub ncols: usize,
    pub edges: Vec<(u32, u32)>,
    row_start: Vec<usize>,
    col_start: Vec<usize>,
    col_edges: Vec<u32>,
}

impl Bipartite {
    /// `edges` sorted by row.
    pub fn new(nrows: usize, ncols: usize, edges: Vec<(u32, u32)>) -> Self {
        let mut row_start = vec![0usize; nrows + 1];
        let mut col_start = vec![0usize; ncols + 1];
        for &(r, c) in &edges {
            row_start[r as usize + 1] += 1;
            col_start[c as usize + 1] += 1;
        }
        for i in 0..nrows {
            row_start[i + 1] += row_start[i];
        }
        for i in 0..ncols {
            col_start[i + 1] += col_start[i];
        }
        let mut fill = col_start.clone();
        let mut col_edges = vec![0u32; edges.len()];
        for (i, &(_, c)) in edges.iter().enumerate() {
            col_edges[fill[c as usize]] = i as u32;
            fill[c as usize] += 1;
        }
        Bipartite {
            nrows,
            ncols,
            edges,
            row_start,
            col_start,
            col_edges,
        }
    }

    /// Edge indices of row r.
    fn row(&self, r: usize) -> std::ops::Range<usize> {
        self.row_start[r]..self.row_start[r + 1]
    }

    /// Edge indices of column c.
    fn col(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        self.col_edges[self.col_start[c]..self.col_start[c + 1]].iter().map(|&e| e as usize)
    }

    fn incident(&self, node: usize) -> Box<dyn Iterator<Item = usize> + '_> {
        if node < self.nrows {
            Box::new(self.row_start[node]..self.row_start[node + 1])
        } else {
            let c = node - self.nrows;
            Box::new(self.col_edges[self.col_start[c]..self.col_start[c + 1]].iter().map(|&e| e as usize))
        }
    }

    /// One greedy peeling over the alive edges. Returns the densest prefix found and the
    /// density of the whole alive graph.
    pub fn peel(&self, alive: &[bool]) -> Option<(Block, f64)> {
        let n = self.nrows + self.ncols;
        let mut deg = vec![0u32; self.ncols];
        for (i, &(_, c)) in self.edges.iter().enumerate() {
            if alive[i] {
                deg[c as usize] += 1;
            }
        }
        let w: Vec<f64> = deg.iter().map(|&d| 1.0 / (f64::from(d) + 5.0).ln()).collect();
        let mut prio = vec![0f64; n];
        let mut f = 0f64;
        for (i, &(r, c)) in self.edges.iter().enumerate() {
            if alive[i] {
                let x = w[c as usize];
                prio[r as usize] += x;
                prio[self.nrows + c as usize] += x;
                f += x;
            }
        }
        let mut in_s: Vec<bool> = (0..n).map(|v| prio[v] > 0.0).collect();
        let mut size = in_s.iter().filter(|&&b| b).count();
        if size == 0 {
            return None;
        }
        let base = f / size as f64;
        let mut heap: BinaryHeap<Reverse<(u64, u32)>> = (0..n).filter(|&v| in_s[v]).map(|v| Reverse((key(prio[v]), v as u32))).collect();
        let mut cut = alive.to_vec();
        let mut order: Vec<u32> = Vec::with_capacity(size);
        let (mut best, mut best_at) = (base, 0usize);
        while let Some(Reverse((k, v))) = heap.pop() {
            let v = v as usize;
            if !in_s[v] || k != key(prio[v]) {
                continue;
            }
            in_s[v] = false;
            order.push(v as u32);
            size -= 1;
            for e in self.incident(v) {
                if !cut[e] {
                    continue;
                }
                cut[e] = false;
                let (r, c) = self.edges[e];
                let x = w[c as usize];
                f -= x;
                let other = if v < self.nrows { self.nrows + c as usize } else { r as usize };
                prio[other] -= x;
                heap.push(Reverse((key(prio[other]), other as u32)));
            }
            if size == 0 {
                break;
            }
            let d = f / size as f64;
            if d > best {
                best = d;
                best_at = order.len();
            }
        }
        let mut rows = Vec::new();
        let mut cols = Vec::new();
        for &v in &order[best_at..] {
            let v = v as usize;
            if v < self.nrows {
                rows.push(v as u32);
            } else {
                cols.push((v - self.nrows) as u32);
            }
        }
        rows.sort_unstable();
        cols.sort_unstable();
        Some((Block { rows, cols }, base))
    }
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let np = ix.party_count();
    let ns = ix.skill_count();
    let min_rows = th.dense_min_rows.max(2);
    let kept: Vec<(u32, u32)> = ix
        .edges
        .iter()
        .filter(|e| e.calls >= th.dense_min_edge_calls.max(1))
        .map(|e| (e.inv, e.skill))
        .collect();
    if kept.is_empty() {
        return Vec::new();
    }
    let graph_fill = ratio(kept.len() as f64, {
        let rows = {
            let mut r: Vec<u32> = kept.iter().map(|e| e.0).collect();
            r.dedup();
            r.len()
        };
        let mut cols: Vec<u32> = kept.iter().map(|e| e.1).collect();
        cols.sort_unstable();
        cols.dedup();
        rows as f64 * cols.len() as f64
    });
    let mut col_deg = vec![0u32; ns];
    for &(_, c) in &kept {
        col_deg[c as usize] += 1;
    }
    // Lockstep candidates: pairs of skills (each with at least min_rows invokers) sharing at
    // least min_rows invokers and at least dense_min_overlap of the larger one's invokers (both ways lockstep).
    let mut co: FastMap<u64, u32> = FastMap::default();
    let mut cols: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < kept.len() {
        let r = kept[i].0;
        let mut j = i;
        cols.clear();
        while j < kept.len() && kept[j].0 == r {
            if col_deg[kept[j].1 as usize] as usize >= min_rows {
                cols.push(kept[j].1);
            }
            j += 1;
        }
        if j - i <= th.dense_max_row_degree {
            for (x, &a) in cols.iter().enumerate() {
                for &b in &cols[x + 1..] {
                    *co.entry((u64::from(a) << 32) | u64::from(b)).or_insert(0) += 1;
                }
            }
        }
        i = j;
    }
    let mut candidate = vec![false; ns];
    for (&k, &n) in &co {
        let (a, b) = ((k >> 32) as usize, (k & 0xFFFF_FFFF) as usize);
        let larger = col_deg[a].max(col_deg[b]);
        if n as usize >= min_rows && f64::from(n) >= th.dense_min_overlap * f64::from(larger) {
            candidate[a] = true;
            candidate[b] = true;
        }
    }
    drop(co);
    let sub: Vec<(u32, u32)> = kept.iter().copied().filter(|&(_, c)| candidate[c as usize]).collect();
    let g = Bipartite::new(np, ns, sub);
    let mut alive = vec![true; g.edges.len()];
    let mut col_calls = vec![0u64; ns];
    for e in &ix.edges {
        col_calls[e.skill as usize] = col_calls[e.skill as usize].saturating_add(e.calls);
    }
    let mut out = Vec::new();
    for _ in 0..th.dense_max_rounds {
        let Some((block, _)) = g.peel(&alive) else { break };
        let mut removed = false;
        for mut part in g.components(&block, &alive) {
            g.complete(&mut part, &alive);
            // Remove the block's nodes for the next round.
            for (i, &(r, c)) in g.edges.iter().enumerate() {
                if alive[i] && (part.rows.binary_search(&r).is_ok() || part.cols.binary_search(&c).is_ok()) {
                    alive[i] = false;
                    removed = true;
                }
            }
            if part.rows.len() < min_rows || part.cols.len() < th.dense_min_cols.max(1) {
                continue;
            }
            if let Some(f) = finding(ix, th, &part, graph_fill, &col_calls) {
                out.push(f);
            }
        }
        if !removed {
            break;
        }
    }
    out
}

impl Bipartite {
    /// The connected parts of a block (peeling may return several blocks of like density).
    fn components(&self, block: &Block, alive: &[bool]) -> Vec<Block> {
        let nr = block.rows.len();
        let mut uf = UnionFind::new(nr + block.cols.len());
        for (ri, &r) in block.rows.iter().enumerate() {
            for e in self.row(r as usize) {
                if alive[e] {
                    if let Ok(ci) = block.cols.binary_search(&self.edges[e].1) {
                        uf.union(ri as u32, (nr + ci) as u32);
                    }
                }
            }
        }
        let mut parts: BTreeMap<u32, Block> = BTreeMap::new();
        for (ri, &r) in block.rows.iter().enumerate() {
            parts
                .entry(uf.find(ri as u32))
                .or_insert_with(|| Block {
                    rows: Vec::new(),
                    cols: Vec::new(),
                })
                .rows
                .push(r);
        }
        for (ci, &c) in block.cols.iter().enumerate() {
            parts
                .entry(uf.find((nr + ci) as u32))
                .or_insert_with(|| Block {
                    rows: Vec::new(),
                    cols: Vec::new(),
                })
                .cols
                .push(c);
        }
        parts.into_values().collect()
    }

    /// Completes a block: peeling drops rows and columns a little below the block's average
    /// degree. Every skill called by half of the block's invokers, and every invoker calling
    /// half of the block's skills, is in lockstep with it.
    fn complete(&self, block: &mut Block, alive: &[bool]) {
        for _ in 0..2 {
            if block.rows.is_empty() || block.cols.is_empty() {
                return;
            }
            let need_c = block.rows.len().div_ceil(2).max(2);
            let mut hits: FastMap<u32, usize> = FastMap::default();
            for &r in &block.rows {
                for e in self.row(r as usize) {
                    if alive[e] {
                        *hits.entry(self.edges[e].1).or_insert(0) += 1;
                    }
                }
            }
            block.cols.extend(hits.into_iter().filter(|&(_, n)| n >= need_c).map(|(c, _)| c));
            block.cols.sort_unstable();
            block.cols.dedup();
            let need_r = block.cols.len().div_ceil(2).max(2);
            let mut hits: FastMap<u32, usize> = FastMap::default();
            for &c in &block.cols {
                for e in self.col(c as usize) {
                    if alive[e] {
                        *hits.entry(self.edges[e].0).or_insert(0) += 1;
                    }
                }
            }
            block.rows.extend(hits.into_iter().filter(|&(_, n)| n >= need_r).map(|(r, _)| r));
            block.rows.sort_unstable();
            block.rows.dedup();
        }
    }
}

fn finding(ix: &Index<'_>, th: &Thresholds, block: &Block, graph_fill: f64, col_calls: &[u64]) -> Option<Finding> {
    let mut calls = 0u64;
    let mut fen = 0i64;
    let mut pairs = 0usize;
    let mut by_pair: BTreeMap<(u32, u32), (u64, i64)> = BTreeMap::new();
    for &r in &block.rows {
        let start = ix.edges.partition_point(|e| e.inv < r);
        for e in ix.edges[start..].iter().take_while(|e| e.inv == r) {
            if block.cols.binary_search(&e.skill).is_ok() {
                pairs += 1;
                calls = calls.saturating_add(e.calls);
                fen = fen.saturating_add(e.fen);
                let slot = by_pair.entry((r, ix.skill_pub[e.skill as usize])).or_default();
                slot.0 = slot.0.saturating_add(e.calls);
                slot.1 = slot.1.saturating_add(e.fen);
            }
        }
    }
    let into_cols: u64 = block.cols.iter().map(|&c| col_calls[c as usize]).fold(0, u64::saturating_add);
    let exclusivity = ratio(calls as f64, into_cols as f64);
    let (k, m) = (block.rows.len(), block.cols.len());
    let fill = ratio(pairs as f64, (k * m) as f64);
    let times = ratio(fill, graph_fill);
    if exclusivity < th.dense_min_exclusivity || times < th.dense_min_density_ratio {
        return None;
    }
    let mut parties: Vec<u32> = block.rows.clone();
    parties.extend(block.cols.iter().map(|&c| ix.skill_pub[c as usize]).filter(|&p| p != u32::MAX));
    parties.sort_unstable();
    parties.dedup();
    let inv_names: Vec<&str> = block.rows.iter().map(|&p| ix.pname(p)).collect();
    let skill_names: Vec<&str> = block.cols.iter().map(|&s| ix.sname(s)).collect();
    Some(Finding {
        detector: Detector::DenseBlock,
        parties: parties.iter().map(|&p| ix.pid(p)).collect(),
        skills: block.cols.iter().map(|&s| ix.sid(s)).collect(),
        score: fill * (1.0 - ratio(1.0, times)),
        amount_at_stake_fen: fen,
        explanation_zh: format!(
            "{k} 个调用方（{}）步调一致地调用同一组 {m} 个技能（{}）：{k}×{m} 的组合中有 {} 个（{}）发生了调用，共 {} 次、{}；这些技能收到的调用中 {} 来自这 {k} 个调用方。该块的填充率是全图的 {:.0} 倍。",
            names(&inv_names, "、", 8),
            names(&skill_names, "、", 8),
            pairs,
            pct(fill),
            calls,
            yuan(fen),
            pct(exclusivity),
            times
        ),
        explanation_en: format!(
            "{k} invokers ({}) call the same set of {m} skills ({}) in lockstep: {} of the {k}×{m} pairs ({}) have calls, {} calls, {} in all; {} of the calls these skills receive come from these {k} invokers. The block is {:.0} times as densely filled as the whole graph.",
            names(&inv_names, ", ", 8),
            names(&skill_names, ", ", 8),
            pairs,
            pct(fill),
            calls,
            yuan(fen),
            pct(exclusivity),
            times
        ),
        evidence: by_pair.into_iter().filter(|((_, p), _)| *p != u32::MAX).map(|((r, p), (c, f))| (ix.pid(r), ix.pid(p), c, f)).collect(),
    })
}
