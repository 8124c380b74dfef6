//! From the platform's statistics to one decision per beneficiary: the clauses paid without an
//! application (免申即享: M1.1, M2.2, M2.3 publisher and invoker, M2.4) get their facts from the
//! ledger rollups and the registry, the exclusion lists in force (F3), the register of other
//! grants (S3) and the cap ledger; the policy engine decides and explains; a clause's yearly
//! budget, when it has one, scales the batch down (F1). Building facts and deciding are pure
//! (`candidates`, `compute`); only `load_inputs` reads the store.

use chrono::{Datelike, NaiveDate};
use opchub_domain::money::{round_micro, MICRO_PER_FEN};
use opchub_domain::{IndustryCode, Role};
use opchub_ledger::event::day_of;
use opchub_policy::{budget_factor, evaluate, msg, Beneficiary, Decision, Facts, ParamValue, Policy, PolicyError, TraceStep};
use opchub_store::bills::BillMarks;
use opchub_store::settlement::{Line, ListsInForce, OverlapGrant, Parties, Party, RollupRow, EXCLUSION_KINDS};
use opchub_store::Store;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The clauses settled from platform data, in the order a batch lists them.
pub const SETTLED_CLAUSES: &[&str] = &["M1.1", "M2.2", "M2.3-publisher", "M2.3-invoker", "M2.4"];

// The M2.2 discount is read from the billed factor kinds (issue 19 item 4: what is never
// billed is never paid, so it is no basis).
use opchub_ledger::bills::FACTOR_KINDS;

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] opchub_store::StoreError),
    #[error("{field}: {message}")]
    Bad { field: &'static str, message: String },
}

fn bad(field: &'static str, message: impl Into<String>) -> SettleError {
    SettleError::Bad {
        field,
        message: message.into(),
    }
}

/// Everything a settlement reads from the store.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub parties: Parties,
    pub rollups: Vec<RollupRow>,
    pub lists: ListsInForce,
    pub overlaps: Vec<OverlapGrant>,
    /// (clause, beneficiary) → consumed this year (per-year caps).
    pub consumed: BTreeMap<(String, String), i64>,
    /// Integrity findings of the year that are open or upheld (issue 18): each holds the lines of
    /// its detector's clause ([`clause_of_detector`]).
    pub findings: Vec<IntegrityMark>,
    /// F1: what the year's approved applications (every clause, net of recovered money) have
    /// already committed of a policy-wide yearly budget; the batch shares out what is left.
    pub applications_fen: i64,
    /// The year's issued bills (issue 19 item 4): M2.2 and M2.3 count only usage on bills that
    /// are paid and confirmed; usage on an issued bill not yet paid holds the line.
    pub bills: BillMarks,
    /// Related parties (issue 18 item 1), by ordered pair (`a < b`) → the tie (`person`, `phone`,
    /// `bank_account`). A community's ties are also its operator account's. Their dealings
    /// with each other are not basis in any clause.
    pub related: BTreeMap<(String, String), String>,
}

/// An integrity finding as settlement sees it (issue 18): while `open`, the lines of its
/// detector's clause ([`clause_of_detector`]) of its parties are held (undetermined); once
/// `upheld`, the dealings among its parties in that clause do not qualify (M2.3 paid calls,
/// M2.2 discounts, M2.4 payments). A finding naming one party (a price jump, a volume jump
/// after a price rise, a period-end spike: a publisher's own revenue) takes its amount at
/// stake out of that publisher's counted M2.3 revenue, the latest first (S5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityMark {
    pub id: String,
    /// `open` or `upheld` (dismissed findings are not loaded).
    pub status: String,
    pub detector: String,
    pub parties: Vec<String>,
    pub amount_at_stake_fen: i64,
}

/// The clause family whose lines a detector's finding holds: the M2.2 discount concentration
/// holds the operator's M2.2 line, an M2.4 round trip the enterprise's M2.4 line, every
/// detector of the paid-call graph the M2.3 lines.
pub fn clause_of_detector(detector: &str) -> &'static str {
    match detector {
        "discount_concentration" => "M2.2",
        "round_trip" => "M2.4",
        _ => "M2.3",
    }
}

/// One beneficiary to decide for one clause.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub clause: String,
    pub role: Role,
    pub party: Party,
    pub facts: Map<String, Value>,
    /// Open integrity findings naming the party (issue 18): the line is held until decided.
    pub held_by: Vec<String>,
    /// Upheld findings whose dealings no longer qualify for this party: (finding, detector, fen,
    /// the trace message's catalog key).
    pub upheld: Vec<(String, String, i64, String)>,
    /// Issued bills not yet paid and confirmed that carry this line's usage (issue 19 item 4):
    /// (bill id, total fen, confirmed fen). The line is held until they are paid.
    pub unpaid_bills: Vec<(String, i64, i64)>,
    /// This line's usage on those unpaid bills, in fen (what waits for their payment).
    pub unpaid_usage_fen: i64,
    /// Usage of months whose bills are not issued yet (the running bill, 未出账): (month, fen).
    /// Not counted yet; it counts once its bill is issued, paid and confirmed.
    pub unbilled: Vec<(String, i64)>,
    /// Dealings with related parties left out of the basis (issue 18 item 1): (the other
    /// party's name, the tie, fen).
    pub related: Vec<(String, String, i64)>,
}

/// A computed batch before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Computed {
    pub lines: Vec<Line>,
    /// Clause → (beneficiaries, eligible, undetermined, total fen, budget factor as text).
    pub per_clause: BTreeMap<String, ClauseTotal>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClauseTotal {
    pub beneficiaries: i64,
    pub eligible: i64,
    pub undetermined: i64,
    pub total_fen: i64,
    pub budget_factor: String,
}

/// Checks the clause filter and that `year` overlaps the policy's validity window (S2).
pub fn check_request(policy: &Policy, year: i32, clauses: &[String], as_of: NaiveDate) -> Result<(), SettleError> {
    for c in clauses {
        if !SETTLED_CLAUSES.contains(&c.as_str()) {
            return Err(bad(
                "clause",
                format!("{c} is not settled from platform data; one of {}", SETTLED_CLAUSES.join(", ")),
            ));
        }
    }
    let Some((w, _, _)) = policy
        .window(as_of)
        .or_else(|| policy.latest_window().and_then(|w| policy.window(w.start)))
    else {
        return Err(bad("as_of", "the policy defines no validity window (S2)"));
    };
    let (Some(first), Some(last)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 31)) else {
        return Err(bad("year", format!("not a calendar year: {year}")));
    };
    if last < w.start || first > w.last_day() {
        return Err(bad("year", format!("{year} is outside the policy's validity window {w} (S2)")));
    }
    Ok(())
}

/// Reads what a settlement of `year` needs, with the lists in force at the end of `as_of`.
/// Usage is read summed per month and pair (a few rows per beneficiary instead of one per
/// day); a month is re-read day by day where a day matters inside it — a party registered in
/// that month after its first usage, or the validity window opening or closing mid-month —
/// so the result is the same as reading every day.
pub async fn load_inputs(store: &Store, policy: &Policy, year: i32, as_of: NaiveDate) -> Result<Inputs, SettleError> {
    load(store, policy, year, as_of, None).await
}

/// [`load_inputs`] with only the usage of one beneficiary (and of whoever it dealt with, as far
/// as those rows go): what the policy calculator needs, read through the rollups' party indexes
/// instead of the whole year of everyone. Candidates other than `beneficiary` built from it are
/// incomplete; callers keep only `beneficiary`'s.
pub async fn load_inputs_for(
    store: &Store,
    policy: &Policy,
    year: i32,
    as_of: NaiveDate,
    beneficiary: &str,
) -> Result<Inputs, SettleError> {
    load(store, policy, year, as_of, Some(beneficiary)).await
}

async fn load(store: &Store, policy: &Policy, year: i32, as_of: NaiveDate, only: Option<&str>) -> Result<Inputs, SettleError> {
    let from = format!("{year:04}-01");
    let to = format!("{:04}-01", year + 1);
    let mut kinds: Vec<&str> = FACTOR_KINDS.to_vec();
    kinds.extend(["skill.call", "cooperation.payment"]);
    let parties = store.settlement_parties().await?;
    // A community operator is the counterparty of its factor usage by account or by community.
    let only: Option<Vec<String>> = only.map(|b| {
        std::iter::once(b.to_string())
            .chain(parties.community_operator.iter().filter(|(_, op)| *op == b).map(|(c, _)| c.clone()))
            .collect()
    });
    let registered: HashMap<&str, String> = parties.opcs.iter().map(|o| (o.id.as_str(), day_of(o.created_at))).collect();
    let window = policy.window(as_of).map(|(w, _, _)| w);
    let straddles = |month: &str| {
        window.is_some_and(|w| {
            [w.start, w.end]
                .iter()
                .any(|d| d.day() != 1 && d.format("%Y-%m").to_string() == month)
        })
    };
    let mut rollups = vec![];
    let mut reread = std::collections::HashSet::new();
    for r in store.rollups_by_month(&from, &to, &kinds, only.as_deref()).await? {
        let month = r.day.get(..7).unwrap_or_default().to_string();
        let late_registration = [&r.subject, &r.counterparty]
            .iter()
            .any(|p| registered.get(p.as_str()).is_some_and(|reg| *reg > r.day));
        if late_registration || straddles(&month) {
            // Day by day, once per (month, pair, kind) whatever the units.
            if reread.insert((month.clone(), r.subject.clone(), r.counterparty.clone(), r.kind.clone())) {
                rollups.extend(store.rollups_of_month(&month, &r.subject, &r.counterparty, &r.kind).await?);
            }
        } else {
            rollups.push(r);
        }
    }
    let end_of_as_of = as_of
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
        .unwrap_or(i64::MAX);
    let parties_community_operator = parties.community_operator.clone();
    Ok(Inputs {
        rollups,
        lists: store.exclusions_in_force(end_of_as_of).await?,
        overlaps: store.overlap_grants(i64::from(year)).await?,
        consumed: store.caps_consumed_in(i64::from(year)).await?,
        findings: store
            .integrity_findings(Some(year))
            .await?
            .into_iter()
            .filter(|f| f.status == "open" || f.status == "upheld")
            .map(|f| IntegrityMark {
                id: f.id,
                status: f.status,
                detector: f.detector,
                parties: f.parties,
                amount_at_stake_fen: f.amount_at_stake_fen,
            })
            .collect(),
        applications_fen: store.committed_in_year(i64::from(year)).await?.0,
        bills: store.bill_marks(&from, &to).await?,
        related: related_of(store.related_pairs().await?, &parties_community_operator),
        parties,
    })
}

/// Related pairs as settlement reads them: a community's ties are its operator account's too
/// (M2.2 pays the operator for its communities).
pub fn related_of(
    pairs: BTreeMap<(String, String), &'static str>,
    community_operator: &BTreeMap<String, String>,
) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for ((a, b), kind) in pairs {
        let a_all = std::iter::once(a.clone()).chain(community_operator.get(&a).cloned());
        for x in a_all {
            for y in std::iter::once(b.clone()).chain(community_operator.get(&b).cloned()) {
                if x != y {
                    let k = if x < y { (x.clone(), y) } else { (y, x.clone()) };
                    out.entry(k).or_insert_with(|| kind.to_string());
                }
            }
        }
    }
    out
}

/// Per beneficiary: (day or month, qualified) → amount or quantity.
type Tally = BTreeMap<String, BTreeMap<(String, bool), i64>>;

fn add(t: &mut Tally, who: &str, when: &str, qualified: bool, v: i64) {
    if v != 0 {
        *t.entry(who.to_string())
            .or_default()
            .entry((when.to_string(), qualified))
            .or_default() += v;
    }
}

/// Moves up to `fen` of `who`'s qualified amounts to not qualified, the latest dates first;
/// returns how much moved.
fn disqualify_latest(t: &mut Tally, who: &str, fen: i64) -> i64 {
    let Some(m) = t.get_mut(who) else {
        return 0;
    };
    let mut left = fen.max(0);
    let dates: Vec<String> = m.keys().filter(|(_, q)| *q).map(|(d, _)| d.clone()).rev().collect();
    for d in dates {
        if left == 0 {
            break;
        }
        let have = m.get(&(d.clone(), true)).copied().unwrap_or(0);
        let take = have.min(left);
        if take <= 0 {
            continue;
        }
        left -= take;
        if have == take {
            m.remove(&(d.clone(), true));
        } else {
            m.insert((d.clone(), true), have - take);
        }
        *m.entry((d, false)).or_default() += take;
    }
    fen.max(0) - left
}

fn entries(map: Option<&BTreeMap<(String, bool), i64>>, key: &str, value: &str) -> Value {
    Value::Array(
        map.into_iter()
            .flatten()
            .map(|((when, q), v)| json!({ key: when, value: v, "qualified": q }))
            .collect(),
    )
}

/// Like [`entries`] for amounts kept in millionths of a fen (M2.2's discounts): a whole-fen
/// amount is written as `amount_fen`, any other as `amount_micro_fen`, so the engine adds
/// them exactly and rounds once (issue 17 item 6).
fn micro_entries(map: Option<&BTreeMap<(String, bool), i64>>) -> Value {
    Value::Array(
        map.into_iter()
            .flatten()
            .map(|((when, q), v)| {
                if v % MICRO_PER_FEN == 0 {
                    json!({ "date": when, "amount_fen": v / MICRO_PER_FEN, "qualified": q })
                } else {
                    json!({ "date": when, "amount_micro_fen": v, "qualified": q })
                }
            })
            .collect(),
    )
}

fn saturate(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A line's unpaid bills: bill id → (total fen, confirmed fen, this line's usage on it in fen).
type UnpaidBills = BTreeMap<String, (i64, i64, i64)>;

/// Where a row's usage stands on its bill (issue 19 item 4).
enum OnBill {
    /// Paid and confirmed, or nothing to pay: it counts.
    Paid,
    /// On an issued bill not yet paid and confirmed: (bill id, total fen, confirmed fen).
    Unpaid(String, i64, i64),
    /// The month's bills are not issued yet (the running bill of this month).
    Unbilled(String),
}

/// Whether a row's `fen` counts where it stands on its bill; if not, notes it for every line it
/// feeds: the unpaid bill that holds them, or the running month it waits on.
fn wait_on<'a>(
    on: OnBill,
    lines: &[(&'a str, String)],
    fen: i64,
    unpaid: &mut BTreeMap<(&'a str, String), UnpaidBills>,
    unbilled: &mut BTreeMap<(&'a str, String), BTreeMap<String, i64>>,
) -> bool {
    match on {
        OnBill::Paid => return true,
        OnBill::Unpaid(id, total, paid) => {
            for k in lines {
                let e = unpaid.entry(k.clone()).or_default().entry(id.clone()).or_insert((total, paid, 0));
                e.2 += fen;
            }
        }
        OnBill::Unbilled(month) => {
            for k in lines {
                *unbilled.entry(k.clone()).or_default().entry(month.clone()).or_default() += fen;
            }
        }
    }
    false
}

/// Builds the facts of every beneficiary of `clauses` (pure).
/// One M1.1 entry of a month: (month, first day, last day, OPC eligible) → workstations.
type OccupancyDays = (String, String, String, bool);

pub fn candidates(policy: &Policy, inputs: &Inputs, year: i32, as_of: NaiveDate, clauses: &[String]) -> Vec<Candidate> {
    let wanted = |c: &str| clauses.is_empty() || clauses.iter().any(|x| x == c);
    let window = policy.window(as_of).map(|(w, _, _)| w);
    // OPC eligibility on a day: registered, and on the platform by then.
    let opc_since: HashMap<&str, (String, bool)> = inputs
        .parties
        .opcs
        .iter()
        .map(|o| (o.id.as_str(), (day_of(o.created_at), o.market_registered)))
        .collect();
    let opc_ok = |id: &str, day: &str| opc_since.get(id).is_some_and(|(since, reg)| *reg && since.as_str() <= day);
    let operator_of = |counterparty: &str| -> Option<String> {
        if inputs.parties.operators.iter().any(|o| o.id == counterparty) {
            Some(counterparty.to_string())
        } else {
            inputs.parties.community_operator.get(counterparty).cloned()
        }
    };

    // Issue 18 item 1: dealings between related parties are no basis in any clause.
    let related = |a: &str, b: &str| -> Option<&String> {
        // Most deployments relate no one: no allocation per usage row then.
        if inputs.related.is_empty() {
            return None;
        }
        let k = if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        inputs.related.get(&k)
    };
    let name_of: HashMap<&str, &str> = inputs
        .parties
        .opcs
        .iter()
        .chain(&inputs.parties.operators)
        .chain(&inputs.parties.enterprises)
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    // (clause, beneficiary, other party, tie) → fen (M2.2: millionths of a fen) left out.
    let mut related_out: BTreeMap<(&str, String, String, String), i64> = BTreeMap::new();
    // An upheld finding of `family`'s detectors naming both parties: a ring's finding voids
    // their paid calls, not a discount or a payment between two of its members (and the
    // reverse).
    let upheld_between = |a: &str, b: &str, family: &str| -> Option<&IntegrityMark> {
        inputs.findings.iter().find(|f| {
            f.status == "upheld"
                && clause_of_detector(&f.detector) == family
                && f.parties.iter().any(|p| p == a)
                && f.parties.iter().any(|p| p == b)
        })
    };
    // Issue 19 item 4: M2.2 and M2.3 count usage only on a bill paid and confirmed. A month
    // whose bills are not issued is the running bill (not counted yet); in an issued month, a
    // pair without a bill had nothing to pay (self-dealing is not billed, a free call lists 0).
    let on_bill = |day: &str, payer: &str, payee: &str| -> OnBill {
        let month = day.get(..7).unwrap_or_default();
        if !inputs.bills.issued_months.contains(month) {
            return OnBill::Unbilled(month.to_string());
        }
        let id = opchub_ledger::bills::bill_id(month, payer, payee);
        match inputs.bills.bills.get(&id) {
            Some((total, paid)) if paid < total => OnBill::Unpaid(id, *total, *paid),
            _ => OnBill::Paid,
        }
    };
    let mut unpaid: BTreeMap<(&str, String), UnpaidBills> = BTreeMap::new();
    let mut unbilled: BTreeMap<(&str, String), BTreeMap<String, i64>> = BTreeMap::new();
    // (clause family, party, finding, detector, message) → fen (M2.2: millionths of a fen) an
    // upheld finding took out of the party's basis.
    let mut voided: BTreeMap<(&str, String, String, String, &str), i64> = BTreeMap::new();
    let (mut discounts, mut published, mut free_calls, mut invoked, mut cooperation) =
        (Tally::new(), Tally::new(), Tally::new(), Tally::new(), Tally::new());
    for r in &inputs.rollups {
        match r.kind.as_str() {
            "skill.call" => {
                // M2.3: the platform marks self-dealing, failed and unreviewed calls not qualified;
                // a call also counts only between OPCs eligible that day — and not among the
                // parties of an upheld integrity finding (issue 18).
                let ring = upheld_between(&r.subject, &r.counterparty, "M2.3");
                if let Some(f) = ring {
                    for who in [&r.subject, &r.counterparty] {
                        *voided
                            .entry(("M2.3", who.clone(), f.id.clone(), f.detector.clone(), "integrity_upheld"))
                            .or_default() += r.charged_fen;
                    }
                }
                let tie = related(&r.subject, &r.counterparty);
                let (q_fen, uq_fen) = (r.charged_fen - r.uq_charged_fen, r.uq_charged_fen);
                let eligible = ring.is_none() && opc_ok(&r.subject, &r.day) && opc_ok(&r.counterparty, &r.day);
                if let (Some(tie), true) = (tie, eligible && q_fen > 0) {
                    for (clause, who, other) in [
                        ("M2.3-publisher", &r.counterparty, &r.subject),
                        ("M2.3-invoker", &r.subject, &r.counterparty),
                    ] {
                        *related_out.entry((clause, who.clone(), other.clone(), tie.clone())).or_default() += q_fen;
                    }
                }
                let both = eligible && tie.is_none();
                // The publisher's revenue and the invoker's spend count once the invoker's bill
                // to the publisher is paid and confirmed (issue 19 item 4).
                let lines = [("M2.3-publisher", r.counterparty.clone()), ("M2.3-invoker", r.subject.clone())];
                let counts = !(both && q_fen > 0)
                    || wait_on(
                        on_bill(&r.day, &r.subject, &r.counterparty),
                        &lines,
                        q_fen,
                        &mut unpaid,
                        &mut unbilled,
                    );
                if counts {
                    add(&mut published, &r.counterparty, &r.day, both, q_fen);
                    add(&mut invoked, &r.subject, &r.day, both, q_fen);
                }
                add(&mut published, &r.counterparty, &r.day, false, uq_fen);
                add(&mut invoked, &r.subject, &r.day, false, uq_fen);
                add(&mut free_calls, &r.counterparty, &r.day, both, r.free_events);
            }
            "cooperation.payment" => {
                // M2.4: only payments confirmed by both sides reach the ledger; the OPC must be eligible.
                // Issue 18 item 1: a payment to a related OPC is a round trip, not cooperation.
                let tie = related(&r.subject, &r.counterparty);
                let eligible = opc_ok(&r.counterparty, &r.day);
                if let (Some(tie), true) = (tie, eligible && r.charged_fen - r.uq_charged_fen > 0) {
                    *related_out
                        .entry(("M2.4", r.subject.clone(), r.counterparty.clone(), tie.clone()))
                        .or_default() += r.charged_fen - r.uq_charged_fen;
                }
                // Issue 18: payments between the parties of an upheld finding (a round trip).
                let ring = upheld_between(&r.subject, &r.counterparty, "M2.4");
                if let (Some(f), true) = (ring, tie.is_none() && eligible) {
                    *voided
                        .entry((
                            "M2.4",
                            r.subject.clone(),
                            f.id.clone(),
                            f.detector.clone(),
                            "integrity_upheld_payments",
                        ))
                        .or_default() += r.charged_fen - r.uq_charged_fen;
                }
                let ok = tie.is_none() && eligible && ring.is_none();
                add(&mut cooperation, &r.subject, &r.day, ok, r.charged_fen - r.uq_charged_fen);
                add(&mut cooperation, &r.subject, &r.day, false, r.uq_charged_fen);
            }
            _ => {
                // M2.2: the discount an operator gave = list − charged, used by eligible OPCs.
                if let Some(op) = operator_of(&r.counterparty) {
                    // Issue 18 item 1: an operator's discount to a related OPC is its own.
                    let tie = related(&r.subject, &op).or_else(|| related(&r.subject, &r.counterparty));
                    let eligible = opc_ok(&r.subject, &r.day);
                    // Issue 18: the discount to an OPC named with the operator in an upheld finding.
                    let ring = upheld_between(&op, &r.subject, "M2.2");
                    let ok = tie.is_none() && eligible && ring.is_none();
                    // Exact, in millionths of a fen: rounded once, at the end of the clause's
                    // computation (issue 17 item 6; PARAMETERS).
                    let (all, uq) = r.discount_micro();
                    let (all, uq) = (saturate(all), saturate(uq));
                    if let (Some(tie), true) = (tie, eligible && all - uq > 0) {
                        *related_out.entry(("M2.2", op.clone(), r.subject.clone(), tie.clone())).or_default() += all - uq;
                    }
                    if let (Some(f), true) = (ring, tie.is_none() && eligible && all - uq > 0) {
                        *voided
                            .entry(("M2.2", op.clone(), f.id.clone(), f.detector.clone(), "integrity_upheld_discount"))
                            .or_default() += all - uq;
                    }
                    // The discount counts once the OPC's bill to the operator is paid and
                    // confirmed: an operator that never collects its OPC price gave no
                    // discount it can show (issue 19 item 4).
                    let counts = !(ok && all - uq > 0)
                        || wait_on(
                            on_bill(&r.day, &r.subject, &op),
                            &[("M2.2", op.clone())],
                            round_micro((all - uq) as i128),
                            &mut unpaid,
                            &mut unbilled,
                        );
                    if counts {
                        add(&mut discounts, &op, &r.day, ok, all - uq);
                    }
                    add(&mut discounts, &op, &r.day, false, uq);
                }
            }
        }
    }
    // Issue 18 (S5): an upheld finding naming one publisher alone (its own revenue: a price
    // jump, a volume jump after a price rise, a period-end spike) takes its amount at stake out
    // of the publisher's counted M2.3 revenue, the latest first.
    for f in inputs.findings.iter().filter(|f| f.status == "upheld" && f.parties.len() == 1) {
        if clause_of_detector(&f.detector) != "M2.3" {
            continue;
        }
        let moved = disqualify_latest(&mut published, &f.parties[0], f.amount_at_stake_fen);
        if moved > 0 {
            *voided
                .entry((
                    "M2.3-publisher",
                    f.parties[0].clone(),
                    f.id.clone(),
                    f.detector.clone(),
                    "integrity_upheld_named",
                ))
                .or_default() += moved;
        }
    }
    // M1.1: free workstations occupied by eligible OPCs, counted by day (issue 17): in each month
    // of the year up to the as-of date, a workstation occupied from its occupation day (or the
    // month's first day) to the month's last day (or the as-of date) is that many days of a
    // workstation-month; the engine keeps the fraction exact. Workstations occupied over the
    // same days of a month are one entry; the OPC's eligibility is read on the last day counted.
    let mut months: BTreeMap<String, BTreeMap<OccupancyDays, i64>> = BTreeMap::new();
    for (op, occ) in &inputs.parties.occupancy {
        for m in 1..=12u32 {
            let Some(first) = NaiveDate::from_ymd_opt(year, m, 1) else {
                continue;
            };
            if first > as_of {
                break;
            }
            let month_end = first
                .checked_add_months(chrono::Months::new(1))
                .and_then(|d| d.pred_opt())
                .unwrap_or(first);
            let last = month_end.min(as_of).to_string();
            let key = format!("{year:04}-{m:02}");
            for (opc, since_ms) in occ {
                let since = day_of(*since_ms).max(first.to_string());
                if since > last {
                    continue;
                }
                *months
                    .entry(op.clone())
                    .or_default()
                    .entry((key.clone(), since, last.clone(), opc_ok(opc, &last)))
                    .or_default() += 1;
            }
        }
    }
    let workstation_entries = |m: &BTreeMap<(String, String, String, bool), i64>| -> Value {
        Value::Array(
            m.iter()
                .map(|((month, from, to, q), n)| {
                    let mut e = json!({ "month": month, "quantity": n, "qualified": q });
                    let whole_from = format!("{month}-01");
                    let whole = from == &whole_from
                        && NaiveDate::parse_from_str(to, "%Y-%m-%d")
                            .ok()
                            .and_then(|d| d.succ_opt())
                            .is_some_and(|next| next.day() == 1);
                    if !whole {
                        e["first_day"] = json!(from);
                        e["last_day"] = json!(to);
                    }
                    e
                })
                .collect(),
        )
    };

    let mut out = vec![];
    let mut push = |clause: &str, role: Role, party: &Party, specific: Vec<(&str, Value)>| {
        let mut f = common_facts(policy, inputs, clause, party, year, as_of, window);
        for (k, v) in specific {
            f.insert(k.to_string(), v);
        }
        let family = clause.get(..4).unwrap_or(clause);
        out.push(Candidate {
            clause: clause.to_string(),
            role,
            party: party.clone(),
            facts: f,
            held_by: inputs
                .findings
                .iter()
                .filter(|x| x.status == "open" && clause_of_detector(&x.detector) == family && x.parties.contains(&party.id))
                .map(|x| x.id.clone())
                .collect(),
            upheld: voided
                .iter()
                .filter(|((c, who, _, _, _), _)| *who == party.id && (*c == clause || *c == family))
                .map(|((_, _, id, detector, key), v)| {
                    let fen = if family == "M2.2" { round_micro(i128::from(*v)) } else { *v };
                    (id.clone(), detector.clone(), fen, (*key).to_string())
                })
                .collect(),
            unpaid_bills: unpaid
                .get(&(clause, party.id.clone()))
                .into_iter()
                .flatten()
                .map(|(id, (total, paid, _))| (id.clone(), *total, *paid))
                .collect(),
            unpaid_usage_fen: unpaid
                .get(&(clause, party.id.clone()))
                .into_iter()
                .flatten()
                .map(|(_, (_, _, fen))| *fen)
                .sum(),
            unbilled: unbilled
                .get(&(clause, party.id.clone()))
                .into_iter()
                .flatten()
                .map(|(m, fen)| (m.clone(), *fen))
                .collect(),
            related: related_out
                .iter()
                .filter(|((c, who, _, _), _)| *c == clause && *who == party.id)
                .map(|((c, _, other, tie), v)| {
                    let fen = if *c == "M2.2" { round_micro(i128::from(*v)) } else { *v };
                    (name_of.get(other.as_str()).copied().unwrap_or(other).to_string(), tie.clone(), fen)
                })
                .collect(),
        });
    };
    // A party whose usage is all on unpaid or running bills still gets its line: held, or
    // with nothing counted yet and the trace saying what waits on which bill.
    let held = |clause: &str, id: &str| {
        let k = (clause, id.to_string());
        unpaid.contains_key(&k) || unbilled.contains_key(&k)
    };
    if wanted("M1.1") {
        for p in &inputs.parties.operators {
            if let Some(m) = months.get(&p.id) {
                push(
                    "M1.1",
                    Role::CommunityOperator,
                    p,
                    vec![("runs_opc_community", json!(true)), ("workstation_months", workstation_entries(m))],
                );
            }
        }
    }
    if wanted("M2.2") {
        for p in &inputs.parties.operators {
            if discounts.contains_key(&p.id) || held("M2.2", &p.id) {
                let d = discounts.get(&p.id);
                push(
                    "M2.2",
                    Role::CommunityOperator,
                    p,
                    vec![("operates_community_on_platform", json!(true)), ("discounts", micro_entries(d))],
                );
            }
        }
    }
    for p in &inputs.parties.opcs {
        if wanted("M2.3-publisher") && (published.contains_key(&p.id) || free_calls.contains_key(&p.id) || held("M2.3-publisher", &p.id)) {
            push(
                "M2.3-publisher",
                Role::OpcFounder,
                p,
                vec![
                    ("paid_calls", entries(published.get(&p.id), "date", "amount_fen")),
                    ("free_calls", entries(free_calls.get(&p.id), "date", "quantity")),
                ],
            );
        }
        if wanted("M2.3-invoker") && (invoked.contains_key(&p.id) || held("M2.3-invoker", &p.id)) {
            push(
                "M2.3-invoker",
                Role::OpcFounder,
                p,
                vec![("paid_calls", entries(invoked.get(&p.id), "date", "amount_fen"))],
            );
        }
    }
    if wanted("M2.4") {
        for p in &inputs.parties.enterprises {
            if let Some(c) = cooperation.get(&p.id) {
                push(
                    "M2.4",
                    Role::Enterprise,
                    p,
                    vec![
                        // M2.4: a company in the district, as recorded (else: its zone is a G2 zone).
                        (
                            "in_district",
                            json!(p.in_district.unwrap_or_else(|| p.zone.parse::<opchub_domain::Zone>().is_ok())),
                        ),
                        ("cooperation_payments", entries(Some(c), "date", "amount_fen")),
                    ],
                );
            }
        }
    }
    out
}

/// G2, F3, S3 and the cap ledger: the facts every clause reads. A list never imported leaves its
/// F3 fact unknown (listed as missing by the engine), never "not excluded".
pub(crate) fn common_facts(
    policy: &Policy,
    inputs: &Inputs,
    clause: &str,
    p: &Party,
    year: i32,
    _as_of: NaiveDate,
    _window: Option<opchub_policy::Window>,
) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("zone".into(), json!(p.zone));
    f.insert("market_registered".into(), json!(p.market_registered));
    if let Some(t) = p.tax_registered {
        f.insert("tax_registered".into(), json!(t));
    }
    let uscc = p.uscc.clone().unwrap_or_default();
    for (kind, fact) in EXCLUSION_KINDS {
        let listed = inputs.lists.entries.get(*kind);
        // The platform's own no-support list (F2, S5) may name a party by id.
        let hit = listed.and_then(|m| m.get(&uscc).filter(|_| !uscc.is_empty()).or_else(|| m.get(&p.id)));
        if !inputs.lists.lists.contains_key(*kind) && hit.is_none() {
            continue;
        }
        // The restricted-industry catalogue may list industries: a party it names by code is
        // excluded; a party whose industry is not known leaves the fact unknown (F3).
        let codes = inputs.lists.industry_codes.get(*kind).filter(|c| !c.is_empty());
        let by_code = match (codes, p.industry_code.as_deref().and_then(|c| IndustryCode::parse(c).ok())) {
            (None, _) => Some(false),
            (Some(codes), Some(own)) => Some(codes.iter().filter_map(|c| IndustryCode::parse(c).ok()).any(|c| c.covers(&own))),
            (Some(_), None) => None,
        };
        if *kind == "safety_accident" {
            // F3: an accident has a date; the engine counts only one inside the validity window
            // and on or before the as-of date (`safety_accidents`, dated).
            // An entry without a date leaves the fact unknown (never "not excluded").
            let dates: Vec<&String> = hit.into_iter().flatten().collect();
            if dates.iter().any(|d| d.is_empty()) {
                continue;
            }
            let dated = dates.into_iter().map(|d| json!({ "date": d })).collect();
            f.insert("safety_accidents".into(), Value::Array(dated));
            continue;
        }
        let v = match hit {
            None => match by_code {
                Some(v) => v,
                None => continue,
            },
            Some(_) => true,
        };
        f.insert((*fact).into(), json!(v));
    }
    let group = policy.clause(clause).and_then(|c| c.overlap_group.clone()).unwrap_or_default();
    let grants: Vec<Value> = inputs
        .overlaps
        .iter()
        .filter(|g| g.beneficiary == p.id && g.overlap_group == group && g.year == i64::from(year))
        // The trace names the other grant: level, policy and the item it paid for (S3).
        .map(|g| {
            let id = match &g.item_key {
                Some(k) => format!("{} {} {}", g.level, g.policy, k),
                None => format!("{} {}", g.level, g.policy),
            };
            json!({ "policy": id, "amount_fen": g.amount_fen })
        })
        .collect();
    f.insert("other_grants".into(), Value::Array(grants));
    let consumed = inputs.consumed.get(&(clause.to_string(), p.id.clone())).copied().unwrap_or(0);
    f.insert("consumed_fen".into(), json!(consumed));
    f
}

fn cap_of(policy: &Policy, clause: &str, as_of: NaiveDate) -> i64 {
    match policy.clause(clause).and_then(|c| c.param("cap", as_of)).map(|p| &p.value) {
        Some(ParamValue::Fen(f)) => *f,
        _ => 0,
    }
}

fn budget_of(p: Option<&opchub_policy::Param>) -> Option<i64> {
    match p.map(|p| &p.value) {
        Some(ParamValue::Fen(f)) => Some(*f),
        _ => None,
    }
}

/// F1: bounds the lines `idx` by `budget` when their amounts (`shares`, as bounded so far) exceed
/// it; returns the factor (`budget ÷ total`, 8 decimals rounded down, for the trace — the fen
/// come from the largest-remainder shares) and notes the budget on every line it cut.
fn bound(idx: &[usize], budget: i64, what: &str, shares: &mut [i64], basis: &mut [Vec<String>]) -> Option<rust_decimal::Decimal> {
    let amounts: Vec<i64> = idx.iter().map(|i| shares[*i]).collect();
    let total: i64 = amounts.iter().sum();
    if total <= budget {
        return None;
    }
    let f = budget_factor(budget, total);
    let note = format!(
        "{what} {} for {} of entitlements: factor {}",
        opchub_domain::Money::from_fen(budget),
        opchub_domain::Money::from_fen(total),
        f.normalize()
    );
    for ((i, s), a) in idx.iter().zip(opchub_policy::largest_remainder(&amounts, budget)).zip(&amounts) {
        shares[*i] = s;
        if *a > 0 {
            basis[*i].push(note.clone());
        }
    }
    Some(f)
}

/// Decides every candidate; each line's `amount_fen` is its year-to-date entitlement after caps
/// and the yearly budgets (F1): a clause's own `yearly_budget` bounds that clause's lines, then a
/// policy-wide `yearly_budget` bounds the whole batch across its clauses. Each budget is shared
/// out pro rata over the lines it bounds, to the fen by largest remainder, so a batch never
/// exceeds a budget by a fen; the lines' traces say the factor and the share.
pub fn compute(
    policy: &Policy,
    cands: &[Candidate],
    year: i32,
    as_of: NaiveDate,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Computed, SettleError> {
    compute_with(policy, cands, year, as_of, 0, progress)
}

/// [`compute`] when `outside_fen` of a policy-wide yearly budget is already committed outside
/// the batch (the year's approved applications, [`Inputs::applications_fen`]): the batch shares
/// out only what is left, and the lines it cut say so (F1).
pub fn compute_with(
    policy: &Policy,
    cands: &[Candidate],
    year: i32,
    as_of: NaiveDate,
    outside_fen: i64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Computed, SettleError> {
    let decide = |c: &Candidate, share: Option<&BudgetShare>| -> Result<Decision, SettleError> {
        let mut map = c.facts.clone();
        if let Some(s) = share {
            map.insert("budget_factor".into(), json!(s.factor.to_string()));
            map.insert("budget_allocated_fen".into(), json!(s.allocated_fen));
            map.insert("budget_basis".into(), json!(s.basis.join("; ")));
        }
        let facts = Facts::from_map(map);
        let d = evaluate(
            policy,
            &c.clause,
            &Beneficiary {
                id: c.party.id.clone(),
                role: c.role,
            },
            year,
            &facts,
            as_of,
        )?;
        Ok(bill_marks(integrity_marks(related_marks(d, c), c), c))
    };
    let mut decisions = Vec::with_capacity(cands.len());
    for (i, c) in cands.iter().enumerate() {
        decisions.push(decide(c, None)?);
        if i % 500 == 0 {
            progress(i as u64);
        }
    }
    // F1: what each line is entitled to before budgets (only eligible lines have an amount).
    let own: Vec<i64> = decisions
        .iter()
        .map(|d| if d.eligible == Some(true) { d.amount_fen.unwrap_or(0) } else { 0 })
        .collect();
    let mut shares = own.clone();
    let mut basis: Vec<Vec<String>> = vec![Vec::new(); cands.len()];
    let mut clause_factor: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
    // A clause's own budget first (not the policy-wide one: that bounds the batch as a whole).
    let in_batch: Vec<&str> = SETTLED_CLAUSES
        .iter()
        .copied()
        .filter(|id| cands.iter().any(|c| c.clause == *id))
        .collect();
    for clause in &in_batch {
        let Some(budget) = budget_of(policy.clause(clause).and_then(|c| c.param("yearly_budget", as_of))) else {
            continue;
        };
        let idx: Vec<usize> = (0..cands.len()).filter(|i| cands[*i].clause == *clause).collect();
        if let Some(f) = bound(&idx, budget, &format!("{clause} yearly budget"), &mut shares, &mut basis) {
            clause_factor.insert(clause.to_string(), f);
        }
    }
    if let Some(budget) = budget_of(policy.param("yearly_budget", as_of)) {
        let idx: Vec<usize> = (0..cands.len()).collect();
        let outside = outside_fen.max(0);
        let (left, what) = if outside > 0 {
            let left = budget.saturating_sub(outside).max(0);
            let what = format!(
                "policy-wide yearly budget {} less {} approved on applications this year, leaving",
                opchub_domain::Money::from_fen(budget),
                opchub_domain::Money::from_fen(outside)
            );
            (left, what)
        } else {
            (budget, "policy-wide yearly budget".to_string())
        };
        if let Some(f) = bound(&idx, left, &what, &mut shares, &mut basis) {
            for clause in &in_batch {
                let e = clause_factor.entry(clause.to_string()).or_insert(rust_decimal::Decimal::ONE);
                *e = (*e * f).round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero);
            }
        }
    }
    for i in 0..cands.len() {
        if own[i] > 0 && !basis[i].is_empty() {
            let factor = clause_factor.get(&cands[i].clause).copied().unwrap_or(rust_decimal::Decimal::ONE);
            let share = BudgetShare {
                factor: factor.normalize(),
                allocated_fen: shares[i],
                basis: std::mem::take(&mut basis[i]),
            };
            decisions[i] = decide(&cands[i], Some(&share))?;
        }
    }
    let factors: BTreeMap<String, String> = clause_factor.iter().map(|(k, v)| (k.clone(), v.normalize().to_string())).collect();
    let mut out = Computed::default();
    for (c, d) in cands.iter().zip(decisions) {
        let t = out.per_clause.entry(c.clause.clone()).or_default();
        t.beneficiaries += 1;
        match d.eligible {
            Some(true) => t.eligible += 1,
            None => t.undetermined += 1,
            Some(false) => {}
        }
        // The stored line keeps 0 for an undetermined answer; its decision says `null`.
        let amount_fen = d.amount_fen.unwrap_or(0);
        t.total_fen += amount_fen;
        t.budget_factor = factors.get(&c.clause).cloned().unwrap_or_else(|| "1".into());
        out.lines.push(Line {
            batch_id: String::new(),
            clause: c.clause.clone(),
            beneficiary: c.party.id.clone(),
            beneficiary_role: c.role.as_str().to_string(),
            beneficiary_name: c.party.name.clone(),
            uscc: c.party.uscc.clone(),
            owner_user_id: Some(c.party.owner_user_id.clone()),
            eligible: match d.eligible {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            }
            .into(),
            amount_fen,
            cap_fen: cap_of(policy, &c.clause, as_of),
            decision: serde_json::to_string(&d).unwrap_or_default(),
            confirmation: "pending".into(),
            ..Default::default()
        });
    }
    Ok(out)
}

/// Issue 18 item 1: the trace names each related party whose dealings were left out, the tie
/// and the amount.
fn related_marks(mut d: Decision, c: &Candidate) -> Decision {
    for (other, tie, fen) in &c.related {
        let amount = opchub_domain::money::Money::from_fen(*fen).to_string();
        d.trace.push(TraceStep {
            clause: c.clause.clone(),
            rule: "related_party".into(),
            text: format!("{amount} with {other}, a related party (shared {tie}), is not counted"),
            values: BTreeMap::from([("related_party".to_string(), other.clone()), ("tie".to_string(), tie.clone())]),
            msg: Some(msg(
                &format!("related_party_{tie}"),
                &[("party", other.clone()), ("amount", amount.clone())],
            )),
        });
    }
    d
}

/// Issue 18: an upheld finding's calls are named in the trace; an open finding holds the line —
/// undetermined, no amount — until the committee decides it.
fn integrity_marks(mut d: Decision, c: &Candidate) -> Decision {
    for (id, detector, fen, key) in &c.upheld {
        let what = match key.as_str() {
            "integrity_upheld_discount" => "of discount between its parties does",
            "integrity_upheld_payments" => "of cooperation payments between its parties do",
            "integrity_upheld_named" => "of the paid calls it names do",
            _ => "of paid calls among its parties do",
        };
        d.trace.push(TraceStep {
            clause: c.clause.clone(),
            rule: "integrity_upheld".into(),
            text: format!(
                "upheld integrity finding {id} ({detector}): {} {what} not qualify",
                opchub_domain::money::Money::from_fen(*fen)
            ),
            values: BTreeMap::from([("finding".to_string(), id.clone())]),
            msg: Some(msg(
                key,
                &[
                    ("finding", id.clone()),
                    ("detector", detector.clone()),
                    ("amount", opchub_domain::money::Money::from_fen(*fen).to_string()),
                ],
            )),
        });
    }
    if !c.held_by.is_empty() {
        let ids = c.held_by.join(", ");
        d.eligible = None;
        d.amount_fen = None;
        d.amount = None;
        d.reasons
            .push(format!("held: integrity finding {ids} is under the committee's review"));
        d.reason_msgs.push(Some(msg("reason_integrity_hold", &[("findings", ids.clone())])));
        d.missing_facts.push("integrity_review".into());
        d.trace.push(TraceStep {
            clause: c.clause.clone(),
            rule: "integrity_hold".into(),
            text: format!("held: open integrity finding {ids} names this party; not payable until the committee decides it"),
            values: BTreeMap::from([("findings".to_string(), ids.clone())]),
            msg: Some(msg("integrity_hold", &[("findings", ids)])),
        });
    }
    d
}

/// Issue 19 item 4: usage on a running bill is not counted yet (the trace says how much and of
/// which month); usage on an issued bill not paid and confirmed holds the line — undetermined,
/// no amount — and the trace names the bills, what they total and what is confirmed of them.
fn bill_marks(mut d: Decision, c: &Candidate) -> Decision {
    use opchub_domain::money::Money;
    for (month, fen) in &c.unbilled {
        d.trace.push(TraceStep {
            clause: c.clause.clone(),
            rule: "bill_running".into(),
            text: format!(
                "not counted yet: {} of usage in {month} is on the running bill; it counts once the month's bill is issued, paid and confirmed",
                Money::from_fen(*fen)
            ),
            values: BTreeMap::from([("month".to_string(), month.clone()), ("amount_fen".to_string(), fen.to_string())]),
            msg: Some(msg("bill_running", &[("month", month.clone()), ("amount", Money::from_fen(*fen).to_string())])),
        });
    }
    if !c.unpaid_bills.is_empty() {
        let ids: Vec<&str> = c.unpaid_bills.iter().map(|(id, _, _)| id.as_str()).collect();
        let ids = ids.join(", ");
        let what: Vec<String> = c
            .unpaid_bills
            .iter()
            .map(|(id, total, paid)| format!("{id} ({} billed, {} confirmed)", Money::from_fen(*total), Money::from_fen(*paid)))
            .collect();
        d.eligible = None;
        d.amount_fen = None;
        d.amount = None;
        d.reasons.push(format!("held: bill {ids} is not paid and confirmed"));
        d.reason_msgs.push(Some(msg("reason_bill_unpaid", &[("bills", ids.clone())])));
        d.missing_facts.push("bill_payment".into());
        d.trace.push(TraceStep {
            clause: c.clause.clone(),
            rule: "bill_unpaid".into(),
            text: format!(
                "held: usage on bill {} is not paid and confirmed; the line is payable once the payee confirms receipt",
                what.join("; ")
            ),
            values: BTreeMap::from([("bills".to_string(), ids)]),
            msg: Some(msg(
                "bill_unpaid",
                &[(
                    "bills",
                    c.unpaid_bills
                        .iter()
                        .map(|(id, total, paid)| format!("{id} {} / {}", Money::from_fen(*paid), Money::from_fen(*total)))
                        .collect::<Vec<_>>()
                        .join("; "),
                )],
            )),
        });
    }
    d
}

/// F1: one line's part of the batch's budgets.
struct BudgetShare {
    factor: rust_decimal::Decimal,
    allocated_fen: i64,
    basis: Vec<String>,
}

/// The list versions a batch used, as JSON for the batch record (S4: replayable).
pub fn lists_used(inputs: &Inputs) -> String {
    let m: BTreeMap<&str, Value> = inputs
        .lists
        .lists
        .iter()
        .map(|(k, l)| (k.as_str(), json!({ "version": l.version, "sha256": l.sha256, "id": l.id })))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

/// Today in Beijing (Asia/Shanghai has no daylight saving: UTC+8).
pub use opchub_domain::time::beijing_today as today;

/// The default as-of date of a settlement of `year`: today, or the year's last day if earlier.
pub fn default_as_of(year: i32) -> NaiveDate {
    let t = today();
    NaiveDate::from_ymd_opt(year, 12, 31).map_or(t, |last| t.min(last))
}

/// Clause filters as typed: comma-separated or repeated; `M2.3` stands for both of its paying parts.
pub fn expand_clauses(clauses: &[String]) -> Vec<String> {
    let mut out = vec![];
    for c in clauses {
        for part in c.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if part == "M2.3" {
                out.extend(["M2.3-publisher".to_string(), "M2.3-invoker".to_string()]);
            } else {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// The calendar year of a date (for defaults).
pub fn year_of(d: NaiveDate) -> i32 {
    d.year()
}

/// What-if: the same inputs decided under two policies; per clause, the totals and the difference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClauseDiff {
    pub clause: String,
    pub base_fen: i64,
    pub changed_fen: i64,
    pub difference_fen: i64,
    pub beneficiaries: i64,
}

pub fn what_if(
    base: &Policy,
    changed: &Policy,
    inputs: &Inputs,
    year: i32,
    as_of: NaiveDate,
    clauses: &[String],
) -> Result<Vec<ClauseDiff>, SettleError> {
    let outside = inputs.applications_fen;
    let a = compute_with(base, &candidates(base, inputs, year, as_of, clauses), year, as_of, outside, &|_| {})?;
    let b = compute_with(
        changed,
        &candidates(changed, inputs, year, as_of, clauses),
        year,
        as_of,
        outside,
        &|_| {},
    )?;
    let mut out = vec![];
    for clause in SETTLED_CLAUSES {
        let (x, y) = (a.per_clause.get(*clause), b.per_clause.get(*clause));
        if x.is_none() && y.is_none() {
            continue;
        }
        let (bx, by) = (x.map_or(0, |t| t.total_fen), y.map_or(0, |t| t.total_fen));
        out.push(ClauseDiff {
            clause: clause.to_string(),
            base_fen: bx,
            changed_fen: by,
            difference_fen: by - bx,
            beneficiaries: x.or(y).map_or(0, |t| t.beneficiaries),
        });
    }
    Ok(out)
}

/// Parses what-if changes `CLAUSE.param=value` (or `param=value` for policy-wide values) and
/// applies them as a new, unsaved version in force from `valid_from`.
pub fn amend_all(base: &Policy, changes: &[String], valid_from: NaiveDate) -> Result<Policy, SettleError> {
    let mut p = base.clone();
    for ch in changes {
        let (lhs, value) = ch.split_once('=').ok_or_else(|| {
            bad(
                "set",
                format!("{ch:?}: expected CLAUSE.param=value, e.g. M2.3-publisher.revenue_rate=0.30"),
            )
        })?;
        let (clause, name) = match lhs.trim().rsplit_once('.') {
            Some((c, n)) => (Some(c.trim()), n.trim()),
            None => (None, lhs.trim()),
        };
        let v = value.trim();
        let tv = match v.parse::<toml::value::Datetime>() {
            Ok(d) if v.len() == 10 => toml::Value::Datetime(d),
            _ => match v.parse::<i64>() {
                Ok(n) if name.ends_with("months") || name.ends_with("days") || name.ends_with("years") => toml::Value::Integer(n),
                _ => toml::Value::String(v.to_string()),
            },
        };
        p = p.amend("what-if", valid_from, clause, name, &tv, "what-if, not saved")?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use opchub_store::settlement::ExclusionList;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn party(id: &str, created: NaiveDate) -> Party {
        Party {
            id: id.into(),
            name: id.into(),
            uscc: Some(format!("USCC-{id}")),
            zone: "hexi_area".into(),
            market_registered: true,
            tax_registered: Some(true),
            industry_code: None,
            in_district: Some(true),
            owner_user_id: format!("u-{id}"),
            created_at: created.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis() - 8 * 3_600_000,
        }
    }

    /// Every F3 list imported and naming nobody: the lines are decided, not left unknown.
    fn empty_lists() -> ListsInForce {
        let mut l = ListsInForce::default();
        for (kind, _) in EXCLUSION_KINDS {
            l.lists.insert(
                kind.to_string(),
                ExclusionList {
                    id: format!("l-{kind}"),
                    kind: kind.to_string(),
                    version: 1,
                    file_name: "list.csv".into(),
                    sha256: "x".into(),
                    entries: 0,
                    imported_by: None,
                    imported_at: 0,
                },
            );
        }
        l
    }

    fn cand(
        policy: &Policy,
        inputs: &Inputs,
        clause: &str,
        role: Role,
        p: &Party,
        year: i32,
        as_of: NaiveDate,
        specific: Value,
    ) -> Candidate {
        let mut facts = common_facts(policy, inputs, clause, p, year, as_of, None);
        if let Value::Object(m) = specific {
            facts.extend(m);
        }
        Candidate {
            clause: clause.into(),
            role,
            party: p.clone(),
            facts,
            held_by: vec![],
            upheld: vec![],
            unpaid_bills: vec![],
            unpaid_usage_fen: 0,
            unbilled: vec![],
            related: vec![],
        }
    }

    fn calls(fen: i64) -> Value {
        json!({ "paid_calls": [{ "date": "2027-03-01", "amount_fen": fen, "qualified": true }], "free_calls": [] })
    }

    /// F1 (issue 17): a policy-wide yearly budget bounds the whole batch across its clauses —
    /// not each clause on its own — shared out to the fen, never a fen over.
    #[test]
    fn a_policy_wide_budget_bounds_the_whole_batch_to_the_fen() {
        let base = Policy::embedded().unwrap();
        let as_of = d(2027, 6, 30);
        let policy = amend_all(&base, &["yearly_budget=280.80".to_string()], d(2026, 12, 1)).unwrap();
        let inputs = Inputs {
            lists: empty_lists(),
            ..Inputs::default()
        };
        let (a, b, c) = (party("a", d(2027, 1, 1)), party("b", d(2027, 1, 1)), party("c", d(2027, 1, 1)));
        // Entitlements: ¥333.33 + ¥500.00 (publisher) and ¥306.52 (invoker) = ¥1,139.85.
        let cands = vec![
            cand(&policy, &inputs, "M2.3-publisher", Role::OpcFounder, &a, 2027, as_of, calls(66_666)),
            cand(
                &policy,
                &inputs,
                "M2.3-publisher",
                Role::OpcFounder,
                &b,
                2027,
                as_of,
                calls(100_000),
            ),
            cand(
                &policy,
                &inputs,
                "M2.3-invoker",
                Role::OpcFounder,
                &c,
                2027,
                as_of,
                json!({ "paid_calls": [{ "date": "2027-03-01", "amount_fen": 61_304, "qualified": true }] }),
            ),
        ];
        let unbounded = compute(&base, &cands, 2027, as_of, &|_| {}).unwrap();
        let total: i64 = unbounded.lines.iter().map(|l| l.amount_fen).sum();
        assert_eq!(total, 113_985, "{:#?}", unbounded.lines);
        let out = compute(&policy, &cands, 2027, as_of, &|_| {}).unwrap();
        let amounts: Vec<i64> = out.lines.iter().map(|l| l.amount_fen).collect();
        assert_eq!(amounts.iter().sum::<i64>(), 28_080, "the whole batch is ¥280.80: {amounts:?}");
        // Pro rata: 28,080 × (33,333; 50,000; 30,652) ÷ 113,985 = 8,211.6…; 12,317.4…; 7,550.9…
        assert_eq!(amounts, vec![8_212, 12_317, 7_551]);
        let d0: Value = serde_json::from_str(&out.lines[0].decision).unwrap();
        let trace = d0["trace"].to_string();
        assert!(
            trace.contains("policy-wide yearly budget ¥280.80 for ¥1,139.85 of entitlements: factor 0.2463482"),
            "{trace}"
        );
        assert!(trace.contains("largest remainder"), "{trace}");
        assert_eq!(out.per_clause["M2.3-invoker"].budget_factor, "0.2463482");
    }

    /// F1: a clause's own budget bounds that clause only; the policy-wide one then bounds the batch.
    #[test]
    fn a_clause_budget_bounds_its_clause_then_the_policy_budget_the_batch() {
        let base = Policy::embedded().unwrap();
        let as_of = d(2027, 6, 30);
        let policy = amend_all(&base, &["M2.3-publisher.yearly_budget=100.00".to_string()], d(2026, 12, 1)).unwrap();
        let inputs = Inputs {
            lists: empty_lists(),
            ..Inputs::default()
        };
        let (a, b, c) = (party("a", d(2027, 1, 1)), party("b", d(2027, 1, 1)), party("c", d(2027, 1, 1)));
        let cands = vec![
            cand(&policy, &inputs, "M2.3-publisher", Role::OpcFounder, &a, 2027, as_of, calls(10_000)),
            cand(&policy, &inputs, "M2.3-publisher", Role::OpcFounder, &b, 2027, as_of, calls(20_000)),
            cand(
                &policy,
                &inputs,
                "M2.3-invoker",
                Role::OpcFounder,
                &c,
                2027,
                as_of,
                json!({ "paid_calls": [{ "date": "2027-03-01", "amount_fen": 100_000, "qualified": true }] }),
            ),
        ];
        let out = compute(&policy, &cands, 2027, as_of, &|_| {}).unwrap();
        let amounts: Vec<i64> = out.lines.iter().map(|l| l.amount_fen).collect();
        // Publisher ¥50 + ¥100 against ¥100: 3,333 + 6,667; the invoker's ¥500 is not touched.
        assert_eq!(amounts, vec![3_333, 6_667, 50_000]);
        let both = amend_all(&policy, &["yearly_budget=300.00".to_string()], d(2026, 12, 1)).unwrap();
        let out = compute(&both, &cands, 2027, as_of, &|_| {}).unwrap();
        let amounts: Vec<i64> = out.lines.iter().map(|l| l.amount_fen).collect();
        assert_eq!(amounts.iter().sum::<i64>(), 30_000, "{amounts:?}");
        assert!(amounts[0] + amounts[1] <= 10_000);
    }

    fn row(day: &str, kind: &str, subject: &str, counterparty: &str, list: i64, charged: i64) -> RollupRow {
        RollupRow {
            day: day.into(),
            subject: subject.into(),
            counterparty: counterparty.into(),
            kind: kind.into(),
            quantity: 1,
            list_fen: list,
            charged_fen: charged,
            events: 1,
            uq_quantity: 0,
            uq_list_fen: 0,
            uq_charged_fen: 0,
            uq_events: 0,
            free_events: 0,
            list_sub_micro: 0,
            charged_sub_micro: 0,
            uq_list_sub_micro: 0,
            uq_charged_sub_micro: 0,
        }
    }

    /// Issue 19 item 4: M2.2's discount and M2.3's revenue and spend count only on bills paid
    /// and confirmed. March is issued: the token bill is paid, the skill bill is not (both M2.3
    /// lines are held, the M2.2 line is not); April is running (not counted, named in the
    /// trace). Paying the skill bill in part still holds; in full, it counts.
    #[test]
    fn only_usage_on_paid_bills_counts_and_an_unpaid_bill_holds_its_lines() {
        let policy = Policy::embedded().unwrap();
        let as_of = d(2027, 4, 20);
        let (op, a, b) = (party("op", d(2026, 12, 1)), party("a", d(2027, 1, 1)), party("b", d(2027, 1, 1)));
        let mut inputs = Inputs {
            lists: empty_lists(),
            ..Inputs::default()
        };
        inputs.parties.operators = vec![op.clone()];
        inputs.parties.opcs = vec![a.clone(), b.clone()];
        inputs.rollups = vec![
            row("2027-03-05", "token.input", "a", "op", 1_000, 400),
            row("2027-04-02", "token.input", "a", "op", 500, 200),
            row("2027-03-06", "skill.call", "a", "b", 2_000, 2_000),
            row("2027-04-03", "skill.call", "a", "b", 300, 300),
        ];
        inputs.bills.issued_months.insert("2027-03".into());
        inputs.bills.bills.insert("2027-03.a.op".into(), (400, 400));
        inputs.bills.bills.insert("2027-03.a.b".into(), (2_000, 0));
        let decide = |inputs: &Inputs| {
            let cands = candidates(&policy, inputs, 2027, as_of, &[]);
            let out = compute(&policy, &cands, 2027, as_of, &|_| {}).unwrap();
            out.lines
                .into_iter()
                .map(|l| {
                    (
                        (l.clause.clone(), l.beneficiary.clone()),
                        (l.eligible.clone(), l.amount_fen, l.decision),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        let lines = decide(&inputs);
        // M2.2: March's paid discount of ¥6.00 at 100%; April's ¥3.00 waits on the running bill.
        let (e, fen, dec) = &lines[&("M2.2".to_string(), "op".to_string())];
        assert_eq!((e.as_str(), *fen), ("yes", 600));
        assert!(dec.contains("bill_running") && dec.contains("2027-04"), "{dec}");
        for (clause, who) in [("M2.3-publisher", "b"), ("M2.3-invoker", "a")] {
            let (e, fen, dec) = &lines[&(clause.to_string(), who.to_string())];
            assert_eq!((e.as_str(), *fen), ("unknown", 0), "{clause}");
            assert!(dec.contains("bill_unpaid") && dec.contains("2027-03.a.b"), "{clause}: {dec}");
        }
        inputs.bills.bills.insert("2027-03.a.b".into(), (2_000, 1_999));
        let lines = decide(&inputs);
        assert_eq!(
            lines[&("M2.3-invoker".to_string(), "a".to_string())].0,
            "unknown",
            "a fen short still holds"
        );
        inputs.bills.bills.insert("2027-03.a.b".into(), (2_000, 2_000));
        let lines = decide(&inputs);
        for (clause, who) in [("M2.3-publisher", "b"), ("M2.3-invoker", "a")] {
            let (e, fen, dec) = &lines[&(clause.to_string(), who.to_string())];
            // 50% of the ¥20.00 paid in March; April's ¥3.00 is not counted yet.
            assert_eq!((e.as_str(), *fen), ("yes", 1_000), "{clause}: {dec}");
            assert!(!dec.contains("bill_unpaid"), "{clause}: {dec}");
        }
    }

    /// M1.1 (issue 17): a workstation occupied from the 22nd of a 31-day month is 10/31 of a
    /// workstation-month, not a whole one; the running month counts up to the as-of date.
    #[test]
    fn workstation_months_count_by_day() {
        let policy = Policy::embedded().unwrap();
        let as_of = d(2027, 2, 14);
        let op = party("op", d(2026, 12, 1));
        let opc = party("opc", d(2027, 1, 22));
        let mut inputs = Inputs {
            lists: empty_lists(),
            ..Inputs::default()
        };
        inputs.parties.operators = vec![op.clone()];
        inputs.parties.opcs = vec![opc.clone()];
        inputs.parties.occupancy.insert("op".into(), vec![("opc".into(), opc.created_at)]);
        let cands = candidates(&policy, &inputs, 2027, as_of, &["M1.1".to_string()]);
        assert_eq!(cands.len(), 1);
        assert_eq!(
            cands[0].facts["workstation_months"],
            json!([
                { "month": "2027-01", "quantity": 1, "qualified": true, "first_day": "2027-01-22", "last_day": "2027-01-31" },
                { "month": "2027-02", "quantity": 1, "qualified": true, "first_day": "2027-02-01", "last_day": "2027-02-14" },
            ])
        );
        let out = compute(&policy, &cands, 2027, as_of, &|_| {}).unwrap();
        // ¥1,000 × (10/31 + 14/28) = ¥822.58
        assert_eq!(out.lines[0].amount_fen, 82_258, "{}", out.lines[0].decision);
    }

    /// F3 (issue 17): the settlement passes the accidents' dates; only one inside the window and
    /// on or before the as-of date excludes.
    #[test]
    fn only_an_accident_inside_the_window_up_to_the_as_of_date_excludes() {
        let policy = Policy::embedded().unwrap();
        let as_of = d(2027, 6, 30);
        let p = party("a", d(2027, 1, 1));
        let decide = |dates: &[&str]| {
            let mut inputs = Inputs {
                lists: empty_lists(),
                ..Inputs::default()
            };
            inputs.lists.entries.insert(
                "safety_accident".into(),
                [("USCC-a".to_string(), dates.iter().map(|s| s.to_string()).collect())]
                    .into_iter()
                    .collect(),
            );
            let c = cand(&policy, &inputs, "M2.3-publisher", Role::OpcFounder, &p, 2027, as_of, calls(10_000));
            compute(&policy, &[c], 2027, as_of, &|_| {}).unwrap().lines.remove(0).eligible
        };
        assert_eq!(decide(&["2026-05-01", "2027-07-01"]), "yes");
        assert_eq!(decide(&["2027-03-01"]), "no");
        assert_eq!(decide(&[""]), "unknown", "an accident without a date leaves F3 unknown");
    }

    /// An undetermined line stores 0 but its decision says `null`, and the trace names what is missing.
    /// Issue 18 item 1: a community company's tie is its operator account's too (M2.2 pays the
    /// operator), and each pair is keyed in order.
    #[test]
    fn a_communitys_ties_are_its_operators() {
        let pairs = BTreeMap::from([
            (("comm1".to_string(), "opc9".to_string()), "person"),
            (("ent1".to_string(), "opc2".to_string()), "phone"),
        ]);
        let ops = BTreeMap::from([("comm1".to_string(), "op-user".to_string())]);
        let r = related_of(pairs, &ops);
        let get = |a: &str, b: &str| r.get(&(a.to_string(), b.to_string())).map(String::as_str);
        assert_eq!(get("comm1", "opc9"), Some("person"));
        assert_eq!(get("op-user", "opc9"), Some("person"));
        assert_eq!(get("ent1", "opc2"), Some("phone"));
        assert_eq!(r.len(), 3, "{r:?}");
    }

    fn call_row(day: &str, invoker: &str, publisher: &str, fen: i64) -> RollupRow {
        RollupRow {
            day: day.into(),
            subject: invoker.into(),
            counterparty: publisher.into(),
            kind: "skill.call".into(),
            quantity: 10,
            list_fen: fen,
            charged_fen: fen,
            events: 10,
            uq_quantity: 0,
            uq_list_fen: 0,
            uq_charged_fen: 0,
            uq_events: 0,
            free_events: 0,
            list_sub_micro: 0,
            charged_sub_micro: 0,
            uq_list_sub_micro: 0,
            uq_charged_sub_micro: 0,
        }
    }

    /// Issue 18 (S5): an upheld finding naming one publisher (a price jump) takes its amount at
    /// stake out of that publisher's counted M2.3 revenue, the latest first, and the trace names
    /// it; the invoker's side and other clauses' findings are untouched; an open finding holds
    /// only its own detector's clause.
    #[test]
    fn an_upheld_single_party_finding_takes_its_stake_out_of_the_publishers_revenue() {
        let policy = Policy::embedded().unwrap();
        let mut inputs = Inputs {
            lists: empty_lists(),
            ..Inputs::default()
        };
        inputs.parties.opcs = vec![party("a", d(2027, 1, 1)), party("b", d(2027, 1, 1))];
        inputs.rollups = vec![call_row("2027-03-01", "b", "a", 30_000), call_row("2027-05-01", "b", "a", 20_000)];
        inputs.bills.issued_months = ["2027-03".to_string(), "2027-05".to_string()].into();
        inputs.findings = vec![
            IntegrityMark {
                id: "f-price".into(),
                status: "upheld".into(),
                detector: "price_jump".into(),
                parties: vec!["a".into()],
                amount_at_stake_fen: 25_000,
            },
            IntegrityMark {
                id: "f-discount".into(),
                status: "open".into(),
                detector: "discount_concentration".into(),
                parties: vec!["a".into(), "op".into()],
                amount_at_stake_fen: 1,
            },
            // Upheld, naming both OPCs: an M2.2 finding voids their discount, not their calls.
            IntegrityMark {
                id: "f-discount-2".into(),
                status: "upheld".into(),
                detector: "discount_concentration".into(),
                parties: vec!["a".into(), "b".into(), "op".into()],
                amount_at_stake_fen: 1,
            },
        ];
        let cands = candidates(&policy, &inputs, 2027, d(2027, 6, 30), &[]);
        let publisher = cands.iter().find(|c| c.clause == "M2.3-publisher" && c.party.id == "a").unwrap();
        assert_eq!(
            publisher.facts["paid_calls"],
            json!([
                { "date": "2027-03-01", "amount_fen": 5_000, "qualified": false },
                { "date": "2027-03-01", "amount_fen": 25_000, "qualified": true },
                { "date": "2027-05-01", "amount_fen": 20_000, "qualified": false },
            ])
        );
        assert_eq!(
            publisher.upheld,
            vec![(
                "f-price".to_string(),
                "price_jump".to_string(),
                25_000,
                "integrity_upheld_named".to_string()
            )]
        );
        assert!(publisher.held_by.is_empty(), "an M2.2 finding holds no M2.3 line");
        let invoker = cands.iter().find(|c| c.clause == "M2.3-invoker" && c.party.id == "b").unwrap();
        assert_eq!(
            invoker.facts["paid_calls"],
            json!([
                { "date": "2027-03-01", "amount_fen": 30_000, "qualified": true },
                { "date": "2027-05-01", "amount_fen": 20_000, "qualified": true },
            ])
        );
        assert!(invoker.upheld.is_empty());
        let out = compute(&policy, std::slice::from_ref(publisher), 2027, d(2027, 6, 30), &|_| {}).unwrap();
        let trace: Value = serde_json::from_str(&out.lines[0].decision).unwrap();
        assert!(
            trace["trace"]
                .to_string()
                .contains("upheld integrity finding f-price (price_jump): ¥250.00 of the paid calls it names do not qualify"),
            "{trace}"
        );
    }

    #[test]
    fn an_undetermined_line_has_no_amount_in_its_decision() {
        let policy = Policy::embedded().unwrap();
        let as_of = d(2027, 6, 30);
        let p = party("a", d(2027, 1, 1));
        let c = cand(
            &policy,
            &Inputs::default(),
            "M2.3-publisher",
            Role::OpcFounder,
            &p,
            2027,
            as_of,
            calls(10_000),
        );
        let out = compute(&policy, &[c], 2027, as_of, &|_| {}).unwrap();
        let l = &out.lines[0];
        assert_eq!((l.eligible.as_str(), l.amount_fen), ("unknown", 0));
        let d: Value = serde_json::from_str(&l.decision).unwrap();
        assert_eq!((d["amount_fen"].clone(), d["amount"].clone()), (Value::Null, Value::Null));
        let trace = d["trace"].to_string();
        assert!(!trace.contains("would be paid"), "{trace}");
        assert!(
            trace.contains("no amount until these facts are known: excluded_by_review"),
            "{trace}"
        );
    }
}
