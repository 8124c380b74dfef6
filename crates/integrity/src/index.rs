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

fn intern<'a>(names: &mut Vec<&'a str>) -> FastMap<&'a str, u32> {
    names.sort_unstable();
    names.dedup();
    let mut map = FastMap::default();
    map.reserve(names.len());
    for (i, n) in names.iter().enumerate() {
        map.insert(*n, i as u32);
    }
    map
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
        let mut party_names: Vec<&'a str> = Vec::with_capacity(input.edges.len() / 4 + input.signals.len() + input.timings.len());
        let mut skill_names: Vec<&'a str> = Vec::with_capacity(input.edges.len() / 8);
        {
            // Dedup through a set first: far fewer names than rows.
            let mut seen_p: FastMap<&'a str, ()> = FastMap::default();
            let mut seen_s: FastMap<&'a str, ()> = FastMap::default();
            for e in &input.edges {
                seen_p.insert(e.invoker.0.as_str(), ());
                seen_p.insert(e.publisher.0.as_str(), ());
                seen_s.insert(e.skill.0.as_str(), ());
            }
            for s in &input.signals {
                seen_p.insert(s.party.0.as_str(), ());
            }
            for t in &input.timings {
                seen_p.insert(t.party.0.as_str(), ());
            }
            party_names.extend(seen_p.into_keys());
            skill_names.extend(seen_s.into_keys());
        }
        let pmap = intern(&mut party_names);
        let smap = intern(&mut skill_names);
        let np = party_names.len();
        let ns = skill_names.len();

        let mut skill_pub = vec![u32::MAX; ns];
        let mut edges: Vec<BiEdge> = Vec::with_capacity(input.edges.len());
        for e in &input.edges {
            let (Some(&inv), Some(&publ), Some(&skill)) = (
                pmap.get(e.invoker.0.as_str()),
                pmap.get(e.publisher.0.as_str()),
                smap.get(e.skill.0.as_str()),
            ) else {
                continue;
            };
            // The first publisher named for a skill, in sorted order, wins (deterministic).
            let slot = &mut skill_pub[skill as usize];
            if *slot == u32::MAX || publ < *slot {
                *slot = publ;
            }
            edges.push(BiEdge {
                inv,
                skill,
                calls: e.calls,
                fen: e.paid_fen.max(0),
            });
        }
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
        let mut by_value: FastMap<(SignalKind, &'a str), Vec<u32>> = FastMap::default();
        for s in &input.signals {
            if s.value_hash.is_empty() {
                continue;
            }
            if let Some(&p) = pmap.get(s.party.0.as_str()) {
                by_value.entry((s.kind, s.value_hash.as_str())).or_default().push(p);
            }
        }
        let mut groups: Vec<((SignalKind, &'a str), Vec<u32>)> = by_value.into_iter().collect();
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
