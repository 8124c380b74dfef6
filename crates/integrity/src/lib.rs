//! Integrity detectors over already-aggregated usage: fake usage is found and explained.
//!
//! M2.2 and M2.3 pay "by the platform's back-end usage statistics", and M2.3 pays both the
//! publisher and the invoker of a paid skill call. Two colluding parties that call each other's
//! paid skills pay each other nothing net and collect both subsidies. This crate looks for the
//! shapes such usage leaves in the paid-call graph, and a few more around the other subsidies:
//! M2.2 pays an operator (community company) on the discount (list price − OPC price) it gave
//! OPCs, M2.4 pays an enterprise 10% of its cooperation payments to OPCs. It is pure: the caller
//! aggregates the rollups (one [`Edge`] per (invoker, skill), the identity signals, optional
//! timing series, the M2.2 discounts per (operator, OPC), the M2.4 payments per (enterprise,
//! OPC), skill price histories and paid calls per (publisher, day)) and gets [`Finding`]s back;
//! nothing here reads a database, a clock or the network.
//!
//! Every finding names its detector, the parties and skills, a score in 0..=1, the amount at
//! stake in fen, the evidence rows (party → party, calls, fen) and a plain-language explanation
//! in Chinese and English with the numbers in it. [`scan`] runs every detector and returns the
//! findings in a deterministic order (detector, then score descending, then amount descending,
//! then parties). The same input always gives the same output, whatever the order of its rows.
//!
//! # The graphs
//!
//! * The **party graph**: a directed edge invoker → publisher per pair of distinct parties, with
//!   the calls and fen summed over the pair's skills. Calls of a party to its own skills are not
//!   in it (those are excluded upstream as the same company).
//! * The **bipartite graph** invoker → skill: one edge per (invoker, skill).
//! * The **related-party clusters**: union–find over shared identity signals.
//!
//! Negative fen (refunds, negative discounts or prices) count as 0. Days are days since
//! 1970-01-01 (Beijing dates); rows with a day more than 100,000,000 days away are ignored.
//!
//! # Detectors and their thresholds ([`Thresholds`], with their defaults)
//!
//! 1. **Reciprocity** ([`Detector::Reciprocity`]). For each pair X, Y with calls both ways,
//!    the reciprocity is `min(X→Y, Y→X) / max(X→Y, Y→X)` counted in calls. Flagged when it is
//!    at least `reciprocity_min_ratio` (default 0.2), the lighter direction has at least
//!    `reciprocity_min_calls` (default 30) calls and both directions together carry at least
//!    `reciprocity_min_fen` (default ¥500). A few calls one way against many the other way (ratio
//!    well under 0.2), a handful each way, or pennies each way are natural and not flagged.
//!    Score: the ratio, scaled by volume (half weight at the calls floor, full at 5× it).
//!    At stake: the fen of both directions (M2.3 pays both sides of each call).
//! 2. **Cycles** ([`Detector::Cycle`]). Strongly connected components (Tarjan, iterative: no
//!    recursion, no stack overflow) of the party graph restricted to *material* edges: at
//!    least `cycle_min_edge_calls` (default 10) calls and carrying at least `cycle_min_edge_share`
//!    [0.1] of the invoker's outgoing or of the publisher's incoming fen. Without that
//!    restriction a ring with a few honest customers is absorbed into the giant component of
//!    honest usage. A component of 2..=`cycle_max_size` (default 8) members is flagged when the share
//!    of its members' paid volume (fen of every edge touching a member, full graph) that stays
//!    inside is at least `cycle_min_inside_share` (default 0.5), with at least
//!    `cycle_min_inside_calls` (default 40) calls and `cycle_min_inside_fen` (default ¥500) inside. Score: the
//!    inside share scaled by volume. At stake: the fen inside. A ring of two is also a
//!    reciprocal pair; rings of three or more with one direction per edge are found only here.
//! 3. **Dense blocks** ([`Detector::DenseBlock`]). Sock-puppet invokers calling the same
//!    skills, camouflaged with calls to popular honest skills. Edges of at least
//!    `dense_min_edge_calls` (default 1) calls. FRAUDAR's greedy peeling (Hooi et al., KDD 2016) with
//!    column weights `1 / ln(deg + 5)` (deg: the skill's distinct invokers) repeatedly removes
//!    the node of least weighted degree and keeps the prefix of greatest density
//!    `f(S) / |S|`; camouflage edges to popular skills weigh little, so they neither hide a
//!    block nor pull honest skills into it. On the whole graph, though, the densest subgraph
//!    is the honest core (heavy users × popular skills: measured 130 × 132 at 1.4× the graph's
//!    density, where a planted 20 × 8 block is at 1.06×), so peeling runs on *lockstep
//!    candidates*: skills that share, with another skill, at least `dense_min_rows` (default 5)
//!    invokers and at least `dense_min_overlap` (default 0.5) of the larger one's invokers (invokers
//!    with more than `dense_max_row_degree` (default 64) skills are left out of that count: they are
//!    heavy users, and a puppet that calls 64 skills to hide pays for them). Each peeled block
//!    is split into connected parts, completed (skills called by half its invokers, invokers
//!    calling half its skills) and removed, up to `dense_max_rounds` (default 20) rounds. A part is
//!    reported when it has at least `dense_min_rows` invokers and `dense_min_cols` (default 2) skills,
//!    its fill (pairs with calls over invokers × skills) is at least
//!    `dense_min_density_ratio` (default 5) × the whole graph's fill, and at least
//!    `dense_min_exclusivity` (default 0.6) of the calls its skills receive come from its invokers.
//!    Score: `fill × (1 − graph fill / block fill)`. At stake: the fen of the block's calls.
//!    Parties: the invokers and the block skills' publishers.
//! 4. **Related parties** ([`Detector::RelatedParties`]). Union–find over parties sharing a
//!    signal value (the same person, phone, bank account, address, client fingerprint or
//!    endpoint host), transitively. A value shared by more than
//!    `related_max_signal_parties` (default 25) parties is too common to mean anything (a shared NAT,
//!    a large cloud host) and is ignored. A cluster of at least two parties with at least
//!    `related_min_inside_calls` (default 1) paid calls between its members is flagged. Score: the
//!    strongest signal's weight (person and bank account 1.0, phone 0.9, client 0.8, address
//!    0.7, endpoint host 0.6) × (0.5 + 0.5 × inside share). At stake: the fen between members.
//! 5. **Concentration** ([`Detector::Concentration`]). A skill with at least
//!    `concentration_min_calls` (default 50) calls and `concentration_min_fen` (default ¥2,000) whose revenue
//!    comes for at least `concentration_min_share` (default 0.8) from one invoker or from one
//!    related-party cluster of invokers, when that invoker (cluster) spends at least
//!    `concentration_min_focus` (default 0.5) of what it spends outside itself on that skill. The focus
//!    condition keeps honest heavy users out: they are often a niche skill's biggest customer,
//!    but any one skill is a small part of their spending. Score: the share. At stake: the
//!    dominant invoker's (cluster's) fen on the skill.
//! 6. **Timing** ([`Detector::Timing`]). For a key's call timestamps with at least
//!    `timing_min_calls` (default 30) calls, the coefficient of variation of the intervals between
//!    calls; organic traffic is bursty (about 1 or more), a script on a timer is nearly
//!    constant. Flagged when it is at most `timing_max_cv` (default 0.1); score `1 − cv`. Also a
//!    *burst*: at least `timing_burst_min_calls` (default 40) calls within any
//!    `timing_burst_window_ms` (default 10 min), at least `timing_burst_factor` (default 20) ×
//!    what the key's average rate over its whole span puts in such a window; score
//!    `1 − 1/√factor`. At stake: the fen of the key's (party, skill) edge when the series names
//!    a skill.
//!
//! 7. **Discount concentration** ([`Detector::DiscountConcentration`]). An operator whose M2.2
//!    discount ([`DiscountEdge`], summed per (operator, OPC)) goes to a handful of OPCs: its
//!    total discount is at least `discount_min_fen` (default ¥2,000), at least
//!    `discount_min_opcs` (default 10) OPCs got a discount, and the top `discount_handful`
//!    (default 3) of them got at least `discount_min_share` (default 0.9) of it. Honest usage is
//!    heavy-tailed but not that much: with a Zipf curve of exponent 1 the top 3 of 20 OPCs get
//!    51%, of 10 OPCs 63%; exponent 1.5 over 10 OPCs gives 78%; an operator with fewer than 10
//!    OPCs is naturally concentrated and left alone. Score: the share. At stake: the top
//!    handful's discount. Evidence: (operator, OPC, 0, discount fen) per top OPC.
//! 8. **Round trips** ([`Detector::RoundTrip`]). An M2.4 payment edge ([`PaymentEdge`], summed
//!    per (enterprise, OPC)) with paid fen > 0 whose enterprise and OPC are in the same
//!    related-party cluster (the clusters of detector 4, so `related_max_signal_parties`
//!    applies; parties named only in payments or discounts are in the index and cluster by
//!    their signals). Score: the weight of the strongest signal value the two share; when they
//!    are tied only through other members, the weakest tie of the shortest chain (named in the
//!    explanation); 1.0 when enterprise and OPC are the same party. At stake: the paid fen.
//!    Evidence: (enterprise, OPC, payments, fen).
//! 9. **Price jumps** ([`Detector::PriceJump`]). Consecutive price points of a skill
//!    ([`PricePoint`], one series per (skill, publisher) in the order the prices went live, a
//!    day read at its last price, the first day also at its first) old → new with old > 0, new ≥ `price_jump_factor` (default 5) × old and
//!    new − old ≥ `price_jump_min_fen` (default ¥100), or old = 0 (free) and new ≥
//!    `price_jump_min_fen`, flagged only when the publisher received paid calls ([`DailyCalls`])
//!    from the change day until the skill's next price point (or the end). Score `1 − old/new`
//!    (1 from free). At stake: the publisher's paid fen (all its skills) in that span.
//! 10. **Volume after a price rise** ([`Detector::VolumeAfterRise`]). For every rise
//!     (new > old) of a skill, the publisher's paid calls in the `price_window_days` (default 7)
//!     days from the change day against the as many days before it: flagged when the calls after
//!     are at least `price_volume_min_calls` (default 20) and at least `price_volume_factor`
//!     (default 3) × max(calls before, 1). Organic demand holds or falls after a price rise; it
//!     does not multiply. Score `1 − before/after` (before at least 1). At stake: the paid fen of
//!     the window after.
//! 11. **Period-end spikes** ([`Detector::PeriodEndSpike`]). For each calendar month a
//!     publisher has daily calls in, the calls of its last `period_end_days` (default 3) days
//!     against the publisher's mean calls per active day outside every month end: flagged when
//!     they are at least `period_end_min_calls` (default 50) and at least `period_end_factor`
//!     (default 5) × that mean × `period_end_days`. A publisher with no active day outside the
//!     month ends has no baseline and is not flagged (a monthly tool, or too new to judge). One
//!     finding per publisher: the worst month end (highest factor, then most calls, then the
//!     earliest) explained, with how many month ends spiked and whether the December year-end
//!     (settlement is yearly) is among them. Score `1 − 1/factor`. At stake: the paid fen of all
//!     the spiking days.
//!
//! Detectors 9 to 11 see calls per publisher and day, not who called: their evidence is one
//! row publisher → publisher with the calls and fen of the flagged days.
//!
//! Each finding keeps at most `max_evidence_rows` (default 200) evidence rows (the heaviest).
//! Not covered yet (issue 18): list prices above the reference (that needs an input this crate
//! does not take yet).
//!
//! The [`gen`] module builds synthetic usage with planted patterns and measures precision and
//! recall (`cargo run -p opchub-integrity --example quality --release`); `examples/bench.rs`
//! times a scan over a million edges.

pub mod gen;

mod civil;
mod concentration;
mod cycles;
mod dense;
mod discount;
mod index;
mod period;
mod prices;
mod reciprocity;
mod related;
mod roundtrip;
mod text;
mod timing;

pub use index::Index;

use std::fmt;

/// A party (OPC, enterprise, operator) as the store names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PartyId(pub String);

/// A skill as the store names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SkillId(pub String);

impl From<&str> for PartyId {
    fn from(s: &str) -> Self {
        PartyId(s.to_string())
    }
}
impl From<String> for PartyId {
    fn from(s: String) -> Self {
        PartyId(s)
    }
}
impl From<&str> for SkillId {
    fn from(s: &str) -> Self {
        SkillId(s.to_string())
    }
}
impl From<String> for SkillId {
    fn from(s: String) -> Self {
        SkillId(s)
    }
}
impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for SkillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Paid calls of one invoker to one skill (whose publisher is `publisher`) over the scanned
/// period. Several rows for the same (invoker, skill) are summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub invoker: PartyId,
    pub publisher: PartyId,
    pub skill: SkillId,
    pub calls: u64,
    pub paid_fen: i64,
}

/// What an identity signal is. The value itself is a keyed hash computed by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalKind {
    /// A founder, beneficial owner or controlling person (hashed resident ID number).
    Person,
    Phone,
    BankAccount,
    /// A workstation or registered address.
    Address,
    /// Client IP and user agent behind a party's API keys.
    ClientFingerprint,
    /// The host of a publisher's endpoint.
    EndpointHost,
}

impl SignalKind {
    pub const ALL: [SignalKind; 6] = [
        SignalKind::Person,
        SignalKind::Phone,
        SignalKind::BankAccount,
        SignalKind::Address,
        SignalKind::ClientFingerprint,
        SignalKind::EndpointHost,
    ];

    /// Stable code, e.g. for storage.
    pub fn code(self) -> &'static str {
        match self {
            SignalKind::Person => "person",
            SignalKind::Phone => "phone",
            SignalKind::BankAccount => "bank_account",
            SignalKind::Address => "address",
            SignalKind::ClientFingerprint => "client_fingerprint",
            SignalKind::EndpointHost => "endpoint_host",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            SignalKind::Person => "同一自然人（创始人/受益所有人）",
            SignalKind::Phone => "同一手机号",
            SignalKind::BankAccount => "同一收款账户",
            SignalKind::Address => "同一工位/地址",
            SignalKind::ClientFingerprint => "同一客户端（IP 与 User-Agent）",
            SignalKind::EndpointHost => "同一发布端点主机",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            SignalKind::Person => "the same person (founder or beneficial owner)",
            SignalKind::Phone => "the same phone number",
            SignalKind::BankAccount => "the same payout bank account",
            SignalKind::Address => "the same workstation or address",
            SignalKind::ClientFingerprint => "the same client (IP and user agent)",
            SignalKind::EndpointHost => "the same publisher endpoint host",
        }
    }

    /// How strongly sharing this signal ties two parties (0..=1).
    pub fn weight(self) -> f64 {
        match self {
            SignalKind::Person | SignalKind::BankAccount => 1.0,
            SignalKind::Phone => 0.9,
            SignalKind::ClientFingerprint => 0.8,
            SignalKind::Address => 0.7,
            SignalKind::EndpointHost => 0.6,
        }
    }
}

/// One identity signal of one party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySignal {
    pub party: PartyId,
    pub kind: SignalKind,
    pub value_hash: String,
}

/// Call timestamps (ms) of one key (an API key, or any caller-chosen series name) of a party,
/// optionally for one skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingSeries {
    pub party: PartyId,
    pub skill: Option<SkillId>,
    pub key: String,
    pub timestamps_ms: Vec<i64>,
}

/// The M2.2 discount (list − charged, in fen) an operator gave one OPC over the scanned period.
/// Several rows for the same (operator, OPC) are summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountEdge {
    pub operator: PartyId,
    pub opc: PartyId,
    pub discount_fen: i64,
}

/// Confirmed M2.4 cooperation payments of an enterprise to an OPC over the period. Several
/// rows for the same (enterprise, OPC) are summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEdge {
    pub enterprise: PartyId,
    pub opc: PartyId,
    pub payments: u64,
    pub paid_fen: i64,
}

/// A skill's per-call price from `day` on (days since 1970-01-01, Beijing date), as versions
/// went live, in that order (`day`, then `at_ms`, then the price). A day is read at its last
/// price (that day's calls were paid at it); a skill's first day also keeps its first price, so
/// a skill listed cheap and raised the same day is a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePoint {
    pub skill: SkillId,
    pub publisher: PartyId,
    pub day: i64,
    /// When the price went live (ms since the epoch; orders the points of one day).
    pub at_ms: i64,
    pub price_fen: i64,
}

/// Paid calls received by one publisher (all its skills) on one day (days since 1970-01-01,
/// Beijing date). Several rows for the same (publisher, day) are summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCalls {
    pub publisher: PartyId,
    pub day: i64,
    pub calls: u64,
    pub paid_fen: i64,
}

/// Everything a scan looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub edges: Vec<Edge>,
    pub signals: Vec<IdentitySignal>,
    pub timings: Vec<TimingSeries>,
    /// M2.2 discounts per (operator, OPC), for [`Detector::DiscountConcentration`].
    pub discounts: Vec<DiscountEdge>,
    /// M2.4 cooperation payments per (enterprise, OPC), for [`Detector::RoundTrip`].
    pub payments: Vec<PaymentEdge>,
    /// Skill price history, for [`Detector::PriceJump`] and [`Detector::VolumeAfterRise`].
    pub prices: Vec<PricePoint>,
    /// Paid calls per (publisher, day), for the price detectors and [`Detector::PeriodEndSpike`].
    pub daily: Vec<DailyCalls>,
}

/// Which detector produced a finding. The order is the output order of [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detector {
    Reciprocity,
    Cycle,
    DenseBlock,
    RelatedParties,
    Concentration,
    Timing,
    DiscountConcentration,
    RoundTrip,
    PriceJump,
    VolumeAfterRise,
    PeriodEndSpike,
}

impl Detector {
    pub const ALL: [Detector; 11] = [
        Detector::Reciprocity,
        Detector::Cycle,
        Detector::DenseBlock,
        Detector::RelatedParties,
        Detector::Concentration,
        Detector::Timing,
        Detector::DiscountConcentration,
        Detector::RoundTrip,
        Detector::PriceJump,
        Detector::VolumeAfterRise,
        Detector::PeriodEndSpike,
    ];

    /// Stable code, e.g. for storage and URLs.
    pub fn code(self) -> &'static str {
        match self {
            Detector::Reciprocity => "reciprocity",
            Detector::Cycle => "cycle",
            Detector::DenseBlock => "dense_block",
            Detector::RelatedParties => "related_parties",
            Detector::Concentration => "concentration",
            Detector::Timing => "timing",
            Detector::DiscountConcentration => "discount_concentration",
            Detector::RoundTrip => "round_trip",
            Detector::PriceJump => "price_jump",
            Detector::VolumeAfterRise => "volume_after_rise",
            Detector::PeriodEndSpike => "period_end_spike",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Detector::Reciprocity => "互相调用",
            Detector::Cycle => "调用环",
            Detector::DenseBlock => "密集调用块",
            Detector::RelatedParties => "关联方",
            Detector::Concentration => "收入集中",
            Detector::Timing => "机器节奏",
            Detector::DiscountConcentration => "让利集中",
            Detector::RoundTrip => "资金回流",
            Detector::PriceJump => "价格跳涨",
            Detector::VolumeAfterRise => "涨价后放量",
            Detector::PeriodEndSpike => "期末突增",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Detector::Reciprocity => "Reciprocity",
            Detector::Cycle => "Cycle",
            Detector::DenseBlock => "Dense block",
            Detector::RelatedParties => "Related parties",
            Detector::Concentration => "Concentration",
            Detector::Timing => "Machine timing",
            Detector::DiscountConcentration => "Discount concentration",
            Detector::RoundTrip => "Round trip",
            Detector::PriceJump => "Price jump",
            Detector::VolumeAfterRise => "Volume after a price rise",
            Detector::PeriodEndSpike => "Period-end spike",
        }
    }
}

/// One evidence row: from party → to party (invoker → publisher), calls, fen.
pub type EvidenceRow = (PartyId, PartyId, u64, i64);

/// What a detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub detector: Detector,
    /// Sorted.
    pub parties: Vec<PartyId>,
    /// Sorted.
    pub skills: Vec<SkillId>,
    /// 0..=1; higher is more suspicious.
    pub score: f64,
    pub amount_at_stake_fen: i64,
    pub explanation_zh: String,
    pub explanation_en: String,
    /// Invoker → publisher rows (operator → OPC for discounts, enterprise → OPC for payments,
    /// publisher → publisher with the flagged days' totals for the price and period-end
    /// detectors), sorted.
    pub evidence: Vec<EvidenceRow>,
}

/// Every threshold of every detector; see the crate docs for what each means.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub reciprocity_min_ratio: f64,
    pub reciprocity_min_calls: u64,
    pub reciprocity_min_fen: i64,

    pub cycle_min_edge_calls: u64,
    pub cycle_min_edge_share: f64,
    pub cycle_max_size: usize,
    pub cycle_min_inside_share: f64,
    pub cycle_min_inside_calls: u64,
    pub cycle_min_inside_fen: i64,

    pub dense_min_edge_calls: u64,
    pub dense_max_row_degree: usize,
    pub dense_min_overlap: f64,
    pub dense_min_density_ratio: f64,
    pub dense_min_rows: usize,
    pub dense_min_cols: usize,
    pub dense_min_exclusivity: f64,
    pub dense_max_rounds: usize,

    pub related_max_signal_parties: usize,
    pub related_min_inside_calls: u64,

    pub concentration_min_share: f64,
    pub concentration_min_focus: f64,
    pub concentration_min_calls: u64,
    pub concentration_min_fen: i64,

    pub timing_min_calls: usize,
    pub timing_max_cv: f64,
    pub timing_burst_window_ms: i64,
    pub timing_burst_min_calls: usize,
    pub timing_burst_factor: f64,

    pub discount_min_fen: i64,
    pub discount_min_opcs: usize,
    pub discount_handful: usize,
    pub discount_min_share: f64,

    pub price_jump_factor: f64,
    pub price_jump_min_fen: i64,
    pub price_window_days: i64,
    pub price_volume_min_calls: u64,
    pub price_volume_factor: f64,

    pub period_end_days: i64,
    pub period_end_min_calls: u64,
    pub period_end_factor: f64,

    /// At most this many evidence rows per finding (the heaviest are kept).
    pub max_evidence_rows: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            reciprocity_min_ratio: 0.2,
            reciprocity_min_calls: 30,
            reciprocity_min_fen: 50_000,
            cycle_min_edge_calls: 10,
            cycle_min_edge_share: 0.1,
            cycle_max_size: 8,
            cycle_min_inside_share: 0.5,
            cycle_min_inside_calls: 40,
            cycle_min_inside_fen: 50_000,
            dense_min_edge_calls: 1,
            dense_max_row_degree: 64,
            dense_min_overlap: 0.5,
            dense_min_density_ratio: 5.0,
            dense_min_rows: 5,
            dense_min_cols: 2,
            dense_min_exclusivity: 0.6,
            dense_max_rounds: 20,
            related_max_signal_parties: 25,
            related_min_inside_calls: 1,
            concentration_min_share: 0.8,
            concentration_min_focus: 0.5,
            concentration_min_calls: 50,
            concentration_min_fen: 200_000,
            timing_min_calls: 30,
            timing_max_cv: 0.1,
            timing_burst_window_ms: 600_000,
            timing_burst_min_calls: 40,
            timing_burst_factor: 20.0,
            discount_min_fen: 200_000,
            discount_min_opcs: 10,
            discount_handful: 3,
            discount_min_share: 0.9,
            price_jump_factor: 5.0,
            price_jump_min_fen: 10_000,
            price_window_days: 7,
            price_volume_min_calls: 20,
            price_volume_factor: 3.0,
            period_end_days: 3,
            period_end_min_calls: 50,
            period_end_factor: 5.0,
            max_evidence_rows: 200,
        }
    }
}

/// Runs one detector on a built index.
pub fn run(detector: Detector, index: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let mut out = match detector {
        Detector::Reciprocity => reciprocity::detect(index, th),
        Detector::Cycle => cycles::detect(index, th),
        Detector::DenseBlock => dense::detect(index, th),
        Detector::RelatedParties => related::detect(index, th),
        Detector::Concentration => concentration::detect(index, th),
        Detector::Timing => timing::detect(index, th),
        Detector::DiscountConcentration => discount::detect(index, th),
        Detector::RoundTrip => roundtrip::detect(index, th),
        Detector::PriceJump => prices::detect_jumps(index, th),
        Detector::VolumeAfterRise => prices::detect_volume(index, th),
        Detector::PeriodEndSpike => period::detect(index, th),
    };
    for f in &mut out {
        f.parties.sort();
        f.parties.dedup();
        f.skills.sort();
        f.skills.dedup();
        f.score = if f.score.is_finite() { f.score.clamp(0.0, 1.0) } else { 0.0 };
        f.evidence
            .sort_by(|a, b| b.3.cmp(&a.3).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        f.evidence.truncate(th.max_evidence_rows);
        f.evidence.sort();
    }
    out.sort_by(finding_order);
    out
}

fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    a.detector
        .cmp(&b.detector)
        .then(b.score.total_cmp(&a.score))
        .then(b.amount_at_stake_fen.cmp(&a.amount_at_stake_fen))
        .then_with(|| a.parties.cmp(&b.parties))
        .then_with(|| a.skills.cmp(&b.skills))
}

/// Runs every detector; findings in a deterministic order (see the crate docs).
pub fn scan(input: &Input, th: &Thresholds) -> Vec<Finding> {
    let index = Index::build(input, th);
    let mut out = Vec::new();
    for d in Detector::ALL {
        out.extend(run(d, &index, th));
    }
    out
}

#[cfg(test)]
mod tests;
