//! Dense integer indexes over the input: parties and skills interned in sorted order (so the
//! result does not depend on the order of input rows), the bipartite edges, the party graph in
//! CSR form and the related-party clusters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::{Input, PartyId, SignalKind, SkillId, Thresholds};

/// A small fast hasher for string keys (FNV-1a over 8-byte words); no need for DoS resistance
/// on data we aggregated ourselves.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // final avalanche (splitmix64)
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        self.0 = h;
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// One (invoker, skill) edge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BiEdge {
    pub inv: u32,
    pub skill: u32,
    pub calls: u64,
    pub fen: i64,
}

/// One invoker → publisher edge of the party graph (distinct parties).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PEdge {
    pub from: u32,
    pub to: u32,
    pub calls: u64,
    pub fen: i64,
}

/// Two parties tied by a shared signal (for explanations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub a: u32,
    pub b: u32,
    pub kind: SignalKind,
}

/// The input, indexed. Build once with [`Index::build`] and run detectors with [`crate::run`].
pub struct Index<'a> {
    pub(crate) input: &'a Input,
    pub(crate) parties: Vec<&'a str>,
    pub(crate) skills: Vec<&'a str>,
    /// Sorted by (inv, skill), merged.
    pub(crate) edges: Vec<BiEdge>,
    pub(crate) skill_pub: Vec<u32>,
    /// Sorted by (from, to), merged, no self loops.
    pub(crate) pedges: Vec<PEdge>,
    /// CSR: out edges of party p are pedges[out_start[p]..out_start[p+1]].
    pub(crate) out_start: Vec<usize>,
    pub(crate) out_fen: Vec<i64>,
    pub(crate) in_fen: Vec<i64>,
    pub(crate) out_calls: Vec<u64>,
    pub(crate) in_calls: Vec<u64>,
    /// Cluster representative per party (itself when unrelated).
    pub(crate) cluster: Vec<u32>,
    pub(crate) links: Vec<Link>,
}

/// Interns names by first appearance, then renumbers them in sorted order.
struct Interner<'a> {
    map: FastMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn with_capacity(n: usize) -> Self {
        let mut map = FastMap::default();
        map.reserve(n);
        Interner {
            map,
            names: Vec::with_capacity(n),
        }
    }
    fn id(&mut self, name: &'a str) -> u32 {
        let names = &mut self.names;
        *self.map.entry(name).or_insert_with(|| {
            names.push(name);
            (names.len() - 1) as u32
        })
    }
    /// Sorted names, and the sorted rank of each provisional id.
    fn finish(self) -> (Vec<&'a str>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.names[i as usize]);
        let mut rank = vec![0u32; order.len()];
        for (k, &i) in order.iter().enumerate() {
            rank[i as usize] = k as u32;
        }
        (order.iter().map(|&i| self.names[i as usize]).collect(), rank)
    }
}

pub(crate) struct UnionFind {
    parent: Vec<u32>,
    rank: Vec<u8>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            rank: vec![0; n],
        }
    }
    pub fn find(&mut self, mut x: u32) -> u32 {
        let mut root = x;
        while self.parent[root as usize] != root {
            root = self.parent[root as usize];
        }
        while self.parent[x as usize] != root {
            let next = self.parent[x as usize];
            self.parent[x as usize] = root;
            x = next;
        }
        root
    }
    /// Returns true when a and b were in different sets.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (ka, kb) = (self.rank[ra as usize], self.rank[rb as usize]);
        if ka < kb {
            self.parent[ra as usize] = rb;
        } else if ka > kb {
            self.parent[rb as usize] = ra;
        } else {
            self.parent[rb as usize] = ra;
            self.rank[ra as usize] = ka.saturating_add(1);
        }
        true
    }
}

impl<'a> Index<'a> {
    pub fn build(input: &'a Input, th: &Thresholds) -> Index<'a> {
        let mut pi = Interner::with_capacity(input.edges.len() / 4 + 16);
        let mut si = Interner::with_capacity(input.edges.len() / 8 + 16);
        let mut edges: Vec<BiEdge> = Vec::with_capacity(input.edges.len());
        let mut publ_of: Vec<u32> = Vec::with_capacity(input.edges.len());
        for e in &input.edges {
            let inv = pi.id(&e.invoker.0);
            publ_of.push(pi.id(&e.publisher.0));
            edges.push(BiEdge {
                inv,
                skill: si.id(&e.skill.0),
                calls: e.calls,
                fen: e.paid_fen.max(0),
            });
        }
        // Identity signals, grouped by value; only values held by two or more parties matter.
        let mut first: FastMap<(SignalKind, &'a str), u32> = FastMap::default();
        let mut more: Vec<((SignalKind, &'a str), u32)> = Vec::new();
        for s in &input.signals {
            if s.value_hash.is_empty() {
                continue;
            }
            let p = pi.id(&s.party.0);
            let key = (s.kind, s.value_hash.as_str());
            match first.get(&key) {
                Some(&q) => {
                    if q != p {
                        more.push((key, p));
                    }
                }
                None => {
                    first.insert(key, p);
                }
            }
        }
        for t in &input.timings {
            pi.id(&t.party.0);
        }
        // Parties named only by the M2.2/M2.3/M2.4 inputs are indexed too, so that their
        // signals cluster them (the round-trip detector looks their clusters up).
        for d in &input.discounts {
            pi.id(&d.operator.0);
            pi.id(&d.opc.0);
        }
        for p in &input.payments {
            pi.id(&p.enterprise.0);
            pi.id(&p.opc.0);
        }
        for p in &input.prices {
            pi.id(&p.publisher.0);
        }
        for d in &input.daily {
            pi.id(&d.publisher.0);
        }
        let (party_names, prank) = pi.finish();
        let (skill_names, srank) = si.finish();
        let np = party_names.len();
        let ns = skill_names.len();
        let mut skill_pub = vec![u32::MAX; ns];
        for (e, &publ) in edges.iter_mut().zip(&publ_of) {
            e.inv = prank[e.inv as usize];
            e.skill = srank[e.skill as usize];
            let publ = prank[publ as usize];
            // The first publisher named for a skill in sorted order wins (deterministic).
            let slot = &mut skill_pub[e.skill as usize];
            if *slot == u32::MAX || publ < *slot {
                *slot = publ;
            }
        }
        drop(publ_of);
        edges.sort_unstable_by_key(|e| (e.inv, e.skill));
        edges.dedup_by(|later, kept| {
            if later.inv == kept.inv && later.skill == kept.skill {
                kept.calls = kept.calls.saturating_add(later.calls);
                kept.fen = kept.fen.saturating_add(later.fen);
                true
            } else {
                false
            }
        });
        edges.retain(|e| e.calls > 0 || e.fen > 0);

        let mut pedges: Vec<PEdge> = edges
            .iter()
            .filter_map(|e| {
                let to = skill_pub[e.skill as usize];
                (to != e.inv && to != u32::MAX).then_some(PEdge {
                    from: e.inv,
                    to,
                    calls: e.calls,
                    fen: e.fen,
                })
            })
            .collect();
        pedges.sort_unstable_by_key(|e| (e.from, e.to));
        pedges.dedup_by(|later, kept| {
            if later.from == kept.from && later.to == kept.to {
                kept.calls = kept.calls.saturating_add(later.calls);
                kept.fen = kept.fen.saturating_add(later.fen);
                true
            } else {
                false
            }
        });
        let mut out_start = vec![0usize; np + 1];
        let mut out_fen = vec![0i64; np];
        let mut in_fen = vec![0i64; np];
        let mut out_calls = vec![0u64; np];
        let mut in_calls = vec![0u64; np];
        for e in &pedges {
            out_start[e.from as usize + 1] += 1;
            out_fen[e.from as usize] = out_fen[e.from as usize].saturating_add(e.fen);
            in_fen[e.to as usize] = in_fen[e.to as usize].saturating_add(e.fen);
            out_calls[e.from as usize] = out_calls[e.from as usize].saturating_add(e.calls);
            in_calls[e.to as usize] = in_calls[e.to as usize].saturating_add(e.calls);
        }
        for i in 0..np {
            out_start[i + 1] += out_start[i];
        }

        // Related-party clusters.
        let mut groups: FastMap<(SignalKind, &'a str), Vec<u32>> = FastMap::default();
        for (key, p) in more {
            if let Some(&q) = first.get(&key) {
                groups.entry(key).or_insert_with(|| vec![prank[q as usize]]).push(prank[p as usize]);
            }
        }
        drop(first);
        let mut groups: Vec<((SignalKind, &'a str), Vec<u32>)> = groups.into_iter().collect();
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut uf = UnionFind::new(np);
        let mut links = Vec::new();
        for ((kind, _), mut members) in groups {
            members.sort_unstable();
            members.dedup();
            if members.len() < 2 || members.len() > th.related_max_signal_parties {
                continue;
            }
            let first = members[0];
            for &m in &members[1..] {
                links.push(Link { a: first, b: m, kind });
                uf.union(first, m);
            }
        }
        // Representative: the smallest member (deterministic).
        let mut cluster = vec![u32::MAX; np];
        for p in 0..np as u32 {
            let r = uf.find(p) as usize;
            if cluster[r] == u32::MAX {
                cluster[r] = p; // p ascending: the first seen is the smallest
            }
        }
        let cluster = (0..np as u32).map(|p| cluster[uf.find(p) as usize]).collect();

        Index {
            input,
            parties: party_names,
            skills: skill_names,
            edges,
            skill_pub,
            pedges,
            out_start,
            out_fen,
            in_fen,
            out_calls,
            in_calls,
            cluster,
            links,
        }
    }

    pub fn party_count(&self) -> usize {
        self.parties.len()
    }
    pub fn skill_count(&self) -> usize {
        self.skills.len()
    }
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    pub(crate) fn pid(&self, p: u32) -> PartyId {
        PartyId(self.parties[p as usize].to_string())
    }
    pub(crate) fn sid(&self, s: u32) -> SkillId {
        SkillId(self.skills[s as usize].to_string())
    }
    pub(crate) fn pname(&self, p: u32) -> &'a str {
        self.parties[p as usize]
    }
    pub(crate) fn sname(&self, s: u32) -> &'a str {
        self.skills[s as usize]
    }
    pub(crate) fn party_index(&self, name: &str) -> Option<u32> {
        self.parties.binary_search(&name).ok().map(|i| i as u32)
    }
    pub(crate) fn skill_index(&self, name: &str) -> Option<u32> {
        self.skills.binary_search(&name).ok().map(|i| i as u32)
    }
    pub(crate) fn out_edges(&self, p: u32) -> &[PEdge] {
        &self.pedges[self.out_start[p as usize]..self.out_start[p as usize + 1]]
    }
    /// The party-graph edge a → b, if any.
    pub(crate) fn pedge(&self, a: u32, b: u32) -> Option<&PEdge> {
        let out = self.out_edges(a);
        out.binary_search_by_key(&b, |e| e.to).ok().map(|i| &out[i])
    }
    pub(crate) fn evidence(&self, e: &PEdge) -> crate::EvidenceRow {
        (self.pid(e.from), self.pid(e.to), e.calls, e.fen)
    }
}
