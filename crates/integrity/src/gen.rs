//! Synthetic usage with planted patterns, and precision/recall of the detectors against it.
//!
//! Honest usage: publishers with one to three skills of skewed popularity, invokers with a
//! few skills each, heavy users calling a hundred skills many times, pairs of parties that
//! genuinely use each other's tools a little (a handful of calls each way, or a few calls one
//! way against many the other way), parties sharing a co-working address without calling each
//! other, many publishers on one big cloud host, organic (Poisson) call timing.
//!
//! Planted: rings of 2 to 6 members (a mutual pair, a directed cycle, or everyone calling
//! everyone), related-party clusters (a shared person, phone, bank account, client or host,
//! chained), dense blocks of sock-puppet invokers calling the same skills camouflaged with
//! honest calls, pumped skills (one invoker paying a skill almost all its revenue), scripts
//! calling on a timer, and rings topping up their usage in a burst at the end of the period. Each planted pattern also gets honest-looking camouflage.
//! M2.4 cooperation payments: each planted cluster's first member pays its last (a round trip),
//! planted and honest enterprises pay unrelated OPCs.
//!
//! Party and skill names are shuffled so that they say nothing about the pattern.
//! Everything is driven by a seeded xorshift generator: the same config gives the same data.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Detector, Edge, Finding, IdentitySignal, Input, PartyId, PaymentEdge, SignalKind, SkillId, Thresholds, TimingSeries};

/// The detectors the generator plants patterns for (and [`evaluate`] measures). The discount,
/// price and period-end detectors take inputs it does not generate; their tests are by hand.
pub const DETECTORS: [Detector; 7] = [
    Detector::Reciprocity,
    Detector::Cycle,
    Detector::DenseBlock,
    Detector::RelatedParties,
    Detector::Concentration,
    Detector::Timing,
    Detector::RoundTrip,
];

/// xorshift64* — small, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix the seed so that 0, 1, 2 … give unrelated streams
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// 1 + geometric with the given mean (≥ 1).
    pub fn count(&mut self, mean: f64) -> u64 {
        let p = 1.0 / mean.max(1.0);
        if p >= 1.0 {
            return 1;
        }
        let u = self.f64().max(1e-12);
        1 + (u.ln() / (1.0 - p).ln()).floor() as u64
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if v.is_empty() {
            None
        } else {
            v.get(self.below(v.len()))
        }
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// How much of everything to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub honest_parties: usize,
    /// Share of honest parties that publish (one to three skills each).
    pub publisher_share: f64,
    /// Mean distinct skills per ordinary invoker.
    pub mean_skills_per_invoker: f64,
    /// Mean calls per (invoker, skill) of ordinary invokers.
    pub mean_calls_per_edge: f64,
    pub heavy_users: usize,
    /// Pairs calling each other a little, and pairs with a few calls one way and many back.
    pub light_pairs: usize,
    pub lopsided_pairs: usize,
    pub shared_address_pairs: usize,
    /// Honest publishers all on one big cloud host.
    pub shared_host_publishers: usize,
    pub rings: usize,
    pub clusters: usize,
    pub blocks: usize,
    pub pumped: usize,
    /// Honest timing series (organic).
    pub honest_timings: usize,
    /// Whether to emit timing series at all.
    pub timings: bool,
    /// Multiplies the honest-looking calls around planted patterns (1.0: a few).
    pub camouflage: f64,
}

impl Config {
    /// A scenario of a few thousand parties, for precision and recall.
    pub fn quality(seed: u64) -> Self {
        Config {
            seed,
            honest_parties: 3000,
            publisher_share: 0.4,
            mean_skills_per_invoker: 7.0,
            mean_calls_per_edge: 10.0,
            heavy_users: 40,
            light_pairs: 60,
            lopsided_pairs: 60,
            shared_address_pairs: 40,
            shared_host_publishers: 60,
            rings: 20,
            clusters: 15,
            blocks: 4,
            pumped: 10,
            honest_timings: 300,
            timings: true,
            camouflage: 1.0,
        }
    }

    /// Like [`Config::quality`], with five times the camouflage around every planted pattern
    /// (planted parties call more honest skills, more honest parties call planted skills).
    pub fn hard(seed: u64) -> Self {
        Config {
            camouflage: 5.0,
            ..Config::quality(seed)
        }
    }

    /// About a million distinct (invoker, skill) edges and ten million calls.
    pub fn bench(seed: u64) -> Self {
        Config {
            seed,
            honest_parties: 150_000,
            mean_skills_per_invoker: 5.7,
            heavy_users: 1_500,
            light_pairs: 2_000,
            lopsided_pairs: 2_000,
            shared_address_pairs: 2_000,
            shared_host_publishers: 2_000,
            rings: 200,
            clusters: 200,
            blocks: 10,
            pumped: 100,
            honest_timings: 2_000,
            mean_calls_per_edge: 5.0,
            ..Config::quality(seed)
        }
    }
}

/// What was planted where. Parties and skills by their generated ids.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Each ring's members and whether its pairs call each other both ways.
    pub rings: Vec<(Vec<PartyId>, bool)>,
    pub clusters: Vec<Vec<PartyId>>,
    /// Sock-puppet invokers, the block's publishers, the target skills.
    pub blocks: Vec<(Vec<PartyId>, Vec<PartyId>, Vec<SkillId>)>,
    /// Skills whose revenue a planted party or cluster dominates (≥ 80%, above the default
    /// volume floors), pumped skills among them.
    pub concentrated_skills: Vec<SkillId>,
    /// A timed script's party and the publisher of the skill it calls.
    pub timed: Vec<(PartyId, PartyId)>,
    pub heavy_users: Vec<PartyId>,
    pub light_pairs: Vec<(PartyId, PartyId)>,
    pub shared_address_pairs: Vec<(PartyId, PartyId)>,
    /// M2.4 payments (enterprise, OPC) between related parties.
    pub round_trips: Vec<(PartyId, PartyId)>,
    /// Every planted party and skill (for neutral counting).
    pub planted_parties: BTreeSet<PartyId>,
    pub planted_skills: BTreeSet<SkillId>,
}

/// The generated input and its ground truth.
#[derive(Debug, Clone)]
pub struct Generated {
    pub input: Input,
    pub truth: Truth,
}

struct Builder {
    rng: Rng,
    party_names: Vec<String>,
    skill_names: Vec<String>,
    nparties: usize,
    skill_owner: Vec<usize>,
    skill_price: Vec<i64>,
    /// (invoker, skill) → calls
    calls: BTreeMap<(usize, usize), u64>,
    /// planted group per invoker (for the concentration truth)
    group: BTreeMap<usize, usize>,
    signals: Vec<(usize, SignalKind, String)>,
    timings: Vec<(usize, Option<usize>, String, Vec<i64>)>,
    /// (enterprise, OPC, payments, fen)
    payments: Vec<(usize, usize, u64, i64)>,
    next_value: u64,
}

impl Builder {
    fn party(&mut self) -> usize {
        self.nparties += 1;
        let p = self.nparties - 1;
        for kind in [SignalKind::Person, SignalKind::Phone, SignalKind::BankAccount] {
            let v = self.value();
            self.signals.push((p, kind, v));
        }
        if self.rng.chance(0.5) {
            let v = self.value();
            self.signals.push((p, SignalKind::ClientFingerprint, v));
        }
        p
    }
    fn value(&mut self) -> String {
        self.next_value += 1;
        format!("h{:016x}", self.next_value.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn skill(&mut self, owner: usize, price: i64) -> usize {
        self.skill_owner.push(owner);
        self.skill_price.push(price);
        self.skill_owner.len() - 1
    }
    fn call(&mut self, inv: usize, skill: usize, n: u64) {
        if self.skill_owner[skill] == inv || n == 0 {
            return;
        }
        *self.calls.entry((inv, skill)).or_insert(0) += n;
    }
    fn price(&mut self, list: &[i64]) -> i64 {
        self.rng.pick(list).copied().unwrap_or(100)
    }
}

const HONEST_PRICES: [i64; 8] = [10, 20, 50, 100, 200, 500, 1_000, 2_000];
const RING_PRICES: [i64; 5] = [500, 1_000, 5_000, 20_000, 100_000];

/// Builds a scenario.
pub fn generate(cfg: &Config) -> Generated {
    let mut b = Builder {
        rng: Rng::new(cfg.seed),
        party_names: Vec::new(),
        skill_names: Vec::new(),
        nparties: 0,
        skill_owner: Vec::new(),
        skill_price: Vec::new(),
        calls: BTreeMap::new(),
        group: BTreeMap::new(),
        signals: Vec::new(),
        timings: Vec::new(),
        payments: Vec::new(),
        next_value: cfg.seed.wrapping_mul(1_000_003),
    };
    let mut truth_idx = TruthIdx::default();

    // ---- honest parties and skills
    let honest: Vec<usize> = (0..cfg.honest_parties).map(|_| b.party()).collect();
    let mut honest_skills = Vec::new();
    for &p in &honest {
        if b.rng.chance(cfg.publisher_share) {
            for _ in 0..b.rng.range(1, 3) {
                let price = b.price(&HONEST_PRICES);
                honest_skills.push(b.skill(p, price));
            }
        }
    }
    // popularity order: index 0 the most popular
    b.rng.shuffle(&mut honest_skills);
    let popular = |rng: &mut Rng, skills: &[usize]| -> Option<usize> {
        if skills.is_empty() {
            return None;
        }
        let u = rng.f64();
        skills.get(((u * u * u) * skills.len() as f64) as usize).copied()
    };
    // co-working pairs: the same address, and they never call each other
    let mut avoid: BTreeSet<(usize, usize)> = BTreeSet::new();
    for _ in 0..cfg.shared_address_pairs {
        let (x, y) = (honest[b.rng.below(honest.len())], honest[b.rng.below(honest.len())]);
        if x == y {
            continue;
        }
        let v = b.value();
        b.signals.push((x, SignalKind::Address, v.clone()));
        b.signals.push((y, SignalKind::Address, v));
        avoid.insert((x, y));
        avoid.insert((y, x));
        truth_idx.shared_address_pairs.push((x, y));
    }
    // one big cloud host
    let host = b.value();
    let owners: BTreeSet<usize> = honest_skills.iter().map(|&s| b.skill_owner[s]).collect();
    let owners: Vec<usize> = owners.into_iter().collect();
    for _ in 0..cfg.shared_host_publishers {
        if let Some(&p) = b.rng.pick(&owners) {
            b.signals.push((p, SignalKind::EndpointHost, host.clone()));
        }
    }
    let heavy: BTreeSet<usize> = (0..cfg.heavy_users.min(honest.len()))
        .map(|_| honest[b.rng.below(honest.len())])
        .collect();
    for &p in &honest {
        let is_heavy = heavy.contains(&p);
        let (deg, mean_calls) = if is_heavy {
            (b.rng.range(60, 150), cfg.mean_calls_per_edge * 6.0)
        } else {
            (b.rng.count(cfg.mean_skills_per_invoker), cfg.mean_calls_per_edge)
        };
        let mut chosen: Vec<usize> = Vec::with_capacity(deg as usize);
        let mut tries = 0;
        while chosen.len() < deg as usize && tries < deg * 4 {
            tries += 1;
            let Some(s) = popular(&mut b.rng, &honest_skills) else { break };
            let owner = b.skill_owner[s];
            if owner == p || chosen.contains(&s) || avoid.contains(&(p, owner)) {
                continue;
            }
            chosen.push(s);
        }
        for s in chosen {
            let n = b.rng.count(mean_calls);
            b.call(p, s, n);
        }
    }
    truth_idx.heavy = heavy.iter().copied().collect();
    // a few-calls-each-way pairs, and a-few-against-many pairs (the "many" side calls a
    // popular skill, so that no skill depends on it)
    let top = &honest_skills[..honest_skills.len().min((honest_skills.len() / 100).max(20))];
    for i in 0..cfg.light_pairs + cfg.lopsided_pairs {
        let (Some(&sa), Some(&sb)) = (
            b.rng.pick(if i < cfg.light_pairs { &honest_skills } else { top }),
            b.rng.pick(&honest_skills),
        ) else {
            break;
        };
        let (a, bb) = (b.skill_owner[sa], b.skill_owner[sb]);
        if a == bb || avoid.contains(&(a, bb)) || heavy.contains(&a) || heavy.contains(&bb) {
            continue;
        }
        if i < cfg.light_pairs {
            let (x, y) = (b.rng.range(1, 6), b.rng.range(1, 6));
            b.call(bb, sa, x);
            b.call(a, sb, y);
        } else {
            let (x, y) = (b.rng.range(40, 200), b.rng.range(1, 5));
            b.call(bb, sa, x);
            b.call(a, sb, y);
        }
        truth_idx.light_pairs.push((a, bb));
    }
    let mut group_id = 0usize;

    // ---- rings
    for k in 0..cfg.rings {
        let size = 2 + k % 5;
        let complete = size == 2 || k % 3 == 0;
        let members: Vec<usize> = (0..size).map(|_| b.party()).collect();
        let skills: Vec<usize> = members
            .iter()
            .map(|&m| {
                let price = b.price(&RING_PRICES);
                b.skill(m, price)
            })
            .collect();
        for (i, &m) in members.iter().enumerate() {
            group_id += 1;
            b.group.insert(m, group_id);
            for (j, &s) in skills.iter().enumerate() {
                if i == j || (!complete && j != (i + 1) % size) {
                    continue;
                }
                let n = b.rng.range(60, 300);
                b.call(m, s, n);
            }
        }
        camouflage(&mut b, cfg.camouflage, &members, &skills, &honest, &honest_skills);
        // every fourth ring tops up its usage in a burst at the end of the period
        if cfg.timings && k % 4 == 1 {
            let (m, s) = (members[0], skills[1]);
            let n = b.calls.get(&(m, s)).copied().unwrap_or(0) as usize;
            let ts = bursty(&mut b.rng, n);
            b.timings.push((m, Some(s), format!("key-{}", b.next_value), ts));
            b.next_value += 1;
            truth_idx.timed.push((m, members[1]));
        }
        truth_idx.rings.push((members, complete));
        truth_idx.skills.extend(skills);
    }

    // ---- related-party clusters
    let strong = [
        SignalKind::Person,
        SignalKind::Phone,
        SignalKind::BankAccount,
        SignalKind::ClientFingerprint,
        SignalKind::EndpointHost,
    ];
    for k in 0..cfg.clusters {
        let size = 2 + k % 3;
        let members: Vec<usize> = (0..size).map(|_| b.party()).collect();
        // chained: member i shares a signal with member i + 1 (transitivity matters)
        for w in members.windows(2) {
            let kind = strong[b.rng.below(strong.len())];
            let v = b.value();
            b.signals.push((w[0], kind, v.clone()));
            b.signals.push((w[1], kind, v));
        }
        let skills: Vec<usize> = members
            .iter()
            .map(|&m| {
                let price = b.price(&[200, 500, 1_000, 5_000]);
                b.skill(m, price)
            })
            .collect();
        group_id += 1;
        for (i, &m) in members.iter().enumerate() {
            b.group.insert(m, group_id);
            let j = (i + 1 + b.rng.below(size - 1)) % size;
            let n = b.rng.range(20, 150);
            b.call(m, skills[j], n);
        }
        camouflage(&mut b, cfg.camouflage, &members, &skills, &honest, &honest_skills);
        truth_idx.clusters.push(members);
        truth_idx.skills.extend(skills);
    }

    // ---- dense blocks with camouflage
    for _ in 0..cfg.blocks {
        let k = b.rng.range(15, 30) as usize;
        let m = b.rng.range(5, 10) as usize;
        let pubs: Vec<usize> = (0..b.rng.range(1, 3)).map(|_| b.party()).collect();
        let targets: Vec<usize> = (0..m)
            .map(|i| {
                let price = b.price(&[100, 200, 500, 1_000, 2_000]);
                b.skill(pubs[i % pubs.len()], price)
            })
            .collect();
        let puppets: Vec<usize> = (0..k).map(|_| b.party()).collect();
        for &p in &puppets {
            group_id += 1;
            b.group.insert(p, group_id);
            for &s in &targets {
                if b.rng.chance(0.9) {
                    let n = b.rng.range(5, 30);
                    b.call(p, s, n);
                }
            }
            // camouflage: honest popular skills
            for _ in 0..((b.rng.range(3, 10) as f64 * cfg.camouflage).round() as u64) {
                if let Some(s) = popular(&mut b.rng, &honest_skills) {
                    let n = b.rng.range(1, 5);
                    b.call(p, s, n);
                }
            }
        }
        // a few honest invokers try the target skills
        for &s in &targets {
            for _ in 0..b.rng.range(0, 3) {
                let h = honest[b.rng.below(honest.len())];
                let n = b.rng.range(1, 3);
                b.call(h, s, n);
            }
        }
        // some puppets run on a timer
        for &p in puppets.iter().take(2) {
            if cfg.timings {
                let s = targets[0];
                let n = b.rng.range(40, 200) as usize;
                let ts = regular(&mut b.rng, n);
                b.timings.push((p, Some(s), format!("key-{}", b.next_value), ts));
                truth_idx.timed.push((p, b.skill_owner[s]));
            }
        }
        truth_idx.blocks.push((puppets, pubs, targets.clone()));
        truth_idx.skills.extend(targets);
    }

    // ---- pumped skills
    for _ in 0..cfg.pumped {
        let publ = b.party();
        let price = b.price(&[1_000, 2_000, 5_000, 10_000]);
        let s = b.skill(publ, price);
        let pumper = b.party();
        group_id += 1;
        b.group.insert(pumper, group_id);
        let n = b.rng.range(200, 600);
        b.call(pumper, s, n);
        for _ in 0..b.rng.range(2, 5) {
            if let Some(h) = popular(&mut b.rng, &honest_skills) {
                let c = b.rng.range(1, 5);
                b.call(pumper, h, c);
            }
        }
        for _ in 0..b.rng.range(2, 6) {
            let h = honest[b.rng.below(honest.len())];
            let c = b.rng.range(1, 5);
            b.call(h, s, c);
        }
        if cfg.timings {
            let ts = regular(&mut b.rng, n as usize);
            b.timings.push((pumper, Some(s), format!("key-{}", b.next_value), ts));
            truth_idx.timed.push((pumper, publ));
        }
        truth_idx.pumped_parties.extend([publ, pumper]);
        truth_idx.skills.push(s);
    }

    // ---- honest timing: Poisson arrivals, some in bursts
    if cfg.timings {
        let mut who: Vec<usize> = heavy.iter().copied().collect();
        while who.len() < cfg.honest_timings && !honest.is_empty() {
            who.push(honest[b.rng.below(honest.len())]);
        }
        for p in who.into_iter().take(cfg.honest_timings.max(heavy.len())) {
            let n = b.rng.range(30, 500) as usize;
            let mean_gap = b.rng.range(10_000, 3_600_000) as f64;
            let mut t = 1_767_225_600_000i64; // 2026-01-01
            let mut ts = Vec::with_capacity(n);
            for _ in 0..n {
                let u = b.rng.f64().max(1e-12);
                let burst = if b.rng.chance(0.2) { 0.05 } else { 1.0 };
                t += (-u.ln() * mean_gap * burst) as i64 + 1;
                ts.push(t);
            }
            b.timings.push((p, None, format!("key-{}", b.next_value), ts));
            b.next_value += 1;
        }
    }

    // ---- M2.4 payments, from a generator of their own (the usage above stays as it was)
    let mut prng = Rng::new(cfg.seed ^ 0x0004_2024_0000_0000);
    let pay = |prng: &mut Rng| {
        let n = prng.range(1, 6);
        (n, (n as i64).saturating_mul(prng.range(20_000, 500_000) as i64))
    };
    for m in &truth_idx.clusters {
        if let (Some(&e), Some(&o)) = (m.first(), m.last()) {
            let (n, fen) = pay(&mut prng);
            b.payments.push((e, o, n, fen));
            truth_idx.round_trips.push((e, o));
            // and to an unrelated OPC
            if let Some(&h) = prng.pick(&honest) {
                let (n, fen) = pay(&mut prng);
                b.payments.push((e, h, n, fen));
            }
        }
    }
    if honest.len() >= 2 {
        for _ in 0..cfg.clusters * 10 {
            let (x, y) = (honest[prng.below(honest.len())], honest[prng.below(honest.len())]);
            if x == y || avoid.contains(&(x, y)) {
                continue;
            }
            let (n, fen) = pay(&mut prng);
            b.payments.push((x, y, n, fen));
        }
    }

    finish(b, cfg, truth_idx)
}

/// A fifth of the calls spread over 30 days, the rest within five minutes at the end.
fn bursty(rng: &mut Rng, n: usize) -> Vec<i64> {
    let start = 1_767_225_600_000i64;
    let day = 86_400_000i64;
    (0..n)
        .map(|i| {
            if i < n / 5 {
                start + rng.range(0, 30 * day as u64) as i64
            } else {
                start + 30 * day + rng.range(0, 300_000) as i64
            }
        })
        .collect()
}

/// A script on a timer: a fixed period with ±2% jitter.
fn regular(rng: &mut Rng, n: usize) -> Vec<i64> {
    let period = rng.range(30_000, 3_600_000) as f64;
    let mut t = 1_767_225_600_000i64 + rng.range(0, 86_400_000) as i64;
    (0..n)
        .map(|_| {
            t += (period * (0.98 + 0.04 * rng.f64())) as i64;
            t
        })
        .collect()
}

/// Honest-looking activity around planted parties: they call a few popular skills, and a few
/// honest parties try their skills.
fn camouflage(b: &mut Builder, c: f64, members: &[usize], skills: &[usize], honest: &[usize], honest_skills: &[usize]) {
    let times = |n: u64| ((n as f64) * c).round().max(1.0) as u64;
    for &m in members {
        for _ in 0..times(b.rng.range(2, 6)) {
            if let Some(&s) = honest_skills.get(b.rng.below(honest_skills.len().min(200))) {
                let n = b.rng.range(1, 8);
                b.call(m, s, n);
            }
        }
    }
    for &s in skills {
        for _ in 0..times(b.rng.range(1, 4)) {
            if let Some(&h) = honest.get(b.rng.below(honest.len())) {
                let n = b.rng.range(1, 5);
                b.call(h, s, n);
            }
        }
    }
}

#[derive(Default)]
struct TruthIdx {
    rings: Vec<(Vec<usize>, bool)>,
    clusters: Vec<Vec<usize>>,
    blocks: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)>,
    pumped_parties: Vec<usize>,
    timed: Vec<(usize, usize)>,
    heavy: Vec<usize>,
    light_pairs: Vec<(usize, usize)>,
    shared_address_pairs: Vec<(usize, usize)>,
    round_trips: Vec<(usize, usize)>,
    /// planted skills
    skills: Vec<usize>,
}

fn finish(mut b: Builder, cfg: &Config, t: TruthIdx) -> Generated {
    // shuffled names
    let mut pn: Vec<usize> = (0..b.nparties).collect();
    b.rng.shuffle(&mut pn);
    b.party_names = pn.iter().map(|i| format!("party-{i:07}")).collect();
    let mut sn: Vec<usize> = (0..b.skill_owner.len()).collect();
    b.rng.shuffle(&mut sn);
    b.skill_names = sn.iter().map(|i| format!("skill-{i:07}")).collect();
    let p = |i: usize| PartyId(b.party_names[i].clone());
    let s = |i: usize| SkillId(b.skill_names[i].clone());

    let edges: Vec<Edge> = b
        .calls
        .iter()
        .map(|(&(inv, sk), &n)| Edge {
            invoker: p(inv),
            publisher: p(b.skill_owner[sk]),
            skill: s(sk),
            calls: n,
            paid_fen: (n as i64).saturating_mul(b.skill_price[sk]),
        })
        .collect();

    // concentration truth: a planted group pays ≥ 80% of a skill's revenue above the floors
    let th = Thresholds::default();
    let mut per_skill: BTreeMap<usize, (u64, i64, BTreeMap<usize, i64>)> = BTreeMap::new();
    for (&(inv, sk), &n) in &b.calls {
        let fen = (n as i64).saturating_mul(b.skill_price[sk]);
        let e = per_skill.entry(sk).or_default();
        e.0 += n;
        e.1 += fen;
        if let Some(&g) = b.group.get(&inv) {
            *e.2.entry(g).or_insert(0) += fen;
        }
    }
    let mut concentrated = Vec::new();
    for (&sk, (calls, fen, groups)) in &per_skill {
        let top = groups.values().copied().max().unwrap_or(0);
        if *calls >= th.concentration_min_calls
            && *fen >= th.concentration_min_fen
            && top as f64 >= th.concentration_min_share * *fen as f64
        {
            concentrated.push(s(sk));
        }
    }
    concentrated.sort();

    let mut planted_parties = BTreeSet::new();
    for (m, _) in &t.rings {
        planted_parties.extend(m.iter().map(|&i| p(i)));
    }
    for m in &t.clusters {
        planted_parties.extend(m.iter().map(|&i| p(i)));
    }
    for (a, pubs, _) in &t.blocks {
        planted_parties.extend(a.iter().chain(pubs).map(|&i| p(i)));
    }
    planted_parties.extend(t.pumped_parties.iter().map(|&i| p(i)));
    let truth = Truth {
        rings: t.rings.iter().map(|(m, c)| (m.iter().map(|&i| p(i)).collect(), *c)).collect(),
        clusters: t.clusters.iter().map(|m| m.iter().map(|&i| p(i)).collect()).collect(),
        blocks: t
            .blocks
            .iter()
            .map(|(a, pubs, sk)| {
                (
                    a.iter().map(|&i| p(i)).collect(),
                    pubs.iter().map(|&i| p(i)).collect(),
                    sk.iter().map(|&i| s(i)).collect(),
                )
            })
            .collect(),
        concentrated_skills: concentrated,
        timed: t.timed.iter().map(|&(a, c)| (p(a), p(c))).collect(),
        heavy_users: t.heavy.iter().map(|&i| p(i)).collect(),
        light_pairs: t.light_pairs.iter().map(|&(x, y)| (p(x), p(y))).collect(),
        shared_address_pairs: t.shared_address_pairs.iter().map(|&(x, y)| (p(x), p(y))).collect(),
        round_trips: t.round_trips.iter().map(|&(x, y)| (p(x), p(y))).collect(),
        planted_parties,
        planted_skills: t.skills.iter().map(|&i| s(i)).collect(),
    };
    let signals = b
        .signals
        .iter()
        .map(|(i, kind, v)| IdentitySignal {
            party: p(*i),
            kind: *kind,
            value_hash: v.clone(),
        })
        .collect();
    let timings = if cfg.timings {
        b.timings
            .iter()
            .map(|(i, sk, key, ts)| TimingSeries {
                party: p(*i),
                skill: sk.map(s),
                key: key.clone(),
                timestamps_ms: ts.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Generated {
        input: Input {
            edges,
            signals,
            timings,
            payments: b
                .payments
                .iter()
                .map(|&(e, o, n, fen)| PaymentEdge {
                    enterprise: p(e),
                    opc: p(o),
                    payments: n,
                    paid_fen: fen,
                })
                .collect(),
            ..Input::default()
        },
        truth,
    }
}

/// Precision and recall of one detector on one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    pub detector: Detector,
    pub truth: usize,
    pub flagged: usize,
    pub true_positives: usize,
    /// Flagged honest parties (or skills).
    pub false_positives: usize,
    /// Flagged, planted, but in another pattern (found by this detector too; not counted
    /// against its precision).
    pub other_planted: usize,
    pub findings: usize,
}

impl Quality {
    pub fn precision(&self) -> f64 {
        let d = self.true_positives + self.false_positives;
        if d == 0 {
            1.0
        } else {
            self.true_positives as f64 / d as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            self.true_positives as f64 / self.truth as f64
        }
    }
}

/// The quality of a scan's findings against the truth, per detector, plus the honest parties
/// that must never be flagged (heavy users, light and lopsided reciprocal pairs, co-workers).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub per_detector: Vec<Quality>,
    pub heavy_flagged: Vec<PartyId>,
    pub light_pairs_flagged: Vec<PartyId>,
    pub shared_address_flagged: Vec<PartyId>,
}

/// Parties (skills for concentration) each detector is meant to find; `None` for the detectors
/// the generator plants nothing for.
fn targets(truth: &Truth, d: Detector) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let mut t = BTreeSet::new();
    let planted: BTreeSet<String> = if d == Detector::Concentration {
        truth.planted_skills.iter().map(|s| s.0.clone()).collect()
    } else {
        truth.planted_parties.iter().map(|p| p.0.clone()).collect()
    };
    match d {
        Detector::Reciprocity => {
            for (m, mutual) in &truth.rings {
                if *mutual {
                    t.extend(m.iter().map(|p| p.0.clone()));
                }
            }
        }
        Detector::Cycle => {
            for (m, _) in &truth.rings {
                t.extend(m.iter().map(|p| p.0.clone()));
            }
        }
        Detector::DenseBlock => {
            for (a, pubs, _) in &truth.blocks {
                t.extend(a.iter().chain(pubs).map(|p| p.0.clone()));
            }
        }
        Detector::RelatedParties => {
            for m in &truth.clusters {
                t.extend(m.iter().map(|p| p.0.clone()));
            }
        }
        Detector::Concentration => t.extend(truth.concentrated_skills.iter().map(|s| s.0.clone())),
        Detector::Timing => {
            for (a, c) in &truth.timed {
                t.insert(a.0.clone());
                t.insert(c.0.clone());
            }
        }
        Detector::RoundTrip => {
            for (e, o) in &truth.round_trips {
                t.insert(e.0.clone());
                t.insert(o.0.clone());
            }
        }
        Detector::DiscountConcentration | Detector::PriceJump | Detector::VolumeAfterRise | Detector::PeriodEndSpike => return None,
    }
    Some((t, planted))
}

pub fn evaluate(findings: &[Finding], truth: &Truth) -> Report {
    let mut per_detector = Vec::new();
    let mut all_flagged: BTreeSet<&str> = BTreeSet::new();
    for d in Detector::ALL {
        let Some((t, planted)) = targets(truth, d) else { continue };
        let mut flagged: BTreeSet<String> = BTreeSet::new();
        let mut n = 0;
        for f in findings.iter().filter(|f| f.detector == d) {
            n += 1;
            if d == Detector::Concentration {
                flagged.extend(f.skills.iter().map(|s| s.0.clone()));
            } else {
                flagged.extend(f.parties.iter().map(|p| p.0.clone()));
            }
            all_flagged.extend(f.parties.iter().map(|p| p.0.as_str()));
        }
        let tp = flagged.intersection(&t).count();
        let other = flagged.iter().filter(|x| !t.contains(*x) && planted.contains(*x)).count();
        per_detector.push(Quality {
            detector: d,
            truth: t.len(),
            flagged: flagged.len(),
            true_positives: tp,
            false_positives: flagged.len() - tp - other,
            other_planted: other,
            findings: n,
        });
    }
    let hit = |p: &PartyId| all_flagged.contains(p.0.as_str());
    let pairs = |v: &[(PartyId, PartyId)]| -> Vec<PartyId> {
        let mut out: Vec<PartyId> = v.iter().flat_map(|(a, b)| [a, b]).filter(|p| hit(p)).cloned().collect();
        out.sort();
        out.dedup();
        out
    };
    Report {
        per_detector,
        heavy_flagged: truth.heavy_users.iter().filter(|p| hit(p)).cloned().collect(),
        light_pairs_flagged: pairs(&truth.light_pairs),
        shared_address_flagged: pairs(&truth.shared_address_pairs),
    }
}

/// The per-detector table as Markdown.
pub fn table(reports: &[(u64, Report)]) -> String {
    let mut s = String::from("| detector | seed | truth | flagged | TP | FP (honest) | other planted | precision | recall |\n|---|---|---|---|---|---|---|---|---|\n");
    for d in DETECTORS {
        for (seed, r) in reports {
            if let Some(q) = r.per_detector.iter().find(|q| q.detector == d) {
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |\n",
                    d.code(),
                    seed,
                    q.truth,
                    q.flagged,
                    q.true_positives,
                    q.false_positives,
                    q.other_planted,
                    q.precision(),
                    q.recall()
                ));
            }
        }
    }
    s
}
