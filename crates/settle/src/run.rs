//! From the platform's statistics to one decision per beneficiary: the clauses paid without an
//! application (免申即享: M1.1, M2.2, M2.3 publisher and invoker, M2.4) get their facts from the
//! ledger rollups and the registry, the exclusion lists in force (F3), the register of other
//! grants (S3) and the cap ledger; the policy engine decides and explains; a clause's yearly
//! budget, when it has one, scales the batch down (F1). Building facts and deciding are pure
//! (`candidates`, `compute`); only `load_inputs` reads the store.

use chrono::{Datelike, NaiveDate};
use opchub_domain::{IndustryCode, Role};
use opchub_ledger::event::day_of;
use opchub_policy::{budget_factor, evaluate, Beneficiary, Decision, Facts, ParamValue, Policy, PolicyError};
use opchub_store::settlement::{Line, ListsInForce, OverlapGrant, Parties, Party, RollupRow, EXCLUSION_KINDS};
use opchub_store::Store;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The clauses settled from platform data, in the order a batch lists them.
pub const SETTLED_CLAUSES: &[&str] = &["M1.1", "M2.2", "M2.3-publisher", "M2.3-invoker", "M2.4"];

/// Ledger kinds whose list − charged difference is the M2.2 discount.
const FACTOR_KINDS: &[&str] = &[
    "token.input",
    "token.cached_input",
    "token.output",
    "compute.gpu_second",
    "data.byte",
    "data.download",
];

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
}

/// One beneficiary to decide for one clause.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub clause: String,
    pub role: Role,
    pub party: Party,
    pub facts: Map<String, Value>,
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
    Ok(Inputs {
        parties,
        rollups,
        lists: store.exclusions_in_force(end_of_as_of).await?,
        overlaps: store.overlap_grants(i64::from(year)).await?,
        consumed: store.caps_consumed_in(i64::from(year)).await?,
    })
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

fn entries(map: Option<&BTreeMap<(String, bool), i64>>, key: &str, value: &str) -> Value {
    Value::Array(
        map.into_iter()
            .flatten()
            .map(|((when, q), v)| json!({ key: when, value: v, "qualified": q }))
            .collect(),
    )
}

/// Builds the facts of every beneficiary of `clauses` (pure).
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

    let (mut discounts, mut published, mut free_calls, mut invoked, mut cooperation) =
        (Tally::new(), Tally::new(), Tally::new(), Tally::new(), Tally::new());
    for r in &inputs.rollups {
        match r.kind.as_str() {
            "skill.call" => {
                // M2.3: the platform marks self-dealing, failed and unreviewed calls not qualified;
                // a call also counts only between OPCs eligible that day.
                let both = opc_ok(&r.subject, &r.day) && opc_ok(&r.counterparty, &r.day);
                let (q_fen, uq_fen) = (r.charged_fen - r.uq_charged_fen, r.uq_charged_fen);
                add(&mut published, &r.counterparty, &r.day, both, q_fen);
                add(&mut published, &r.counterparty, &r.day, false, uq_fen);
                add(&mut invoked, &r.subject, &r.day, both, q_fen);
                add(&mut invoked, &r.subject, &r.day, false, uq_fen);
                add(&mut free_calls, &r.counterparty, &r.day, both, r.free_events);
            }
            "cooperation.payment" => {
                // M2.4: only payments confirmed by both sides reach the ledger; the OPC must be eligible.
                let ok = opc_ok(&r.counterparty, &r.day);
                add(&mut cooperation, &r.subject, &r.day, ok, r.charged_fen - r.uq_charged_fen);
                add(&mut cooperation, &r.subject, &r.day, false, r.uq_charged_fen);
            }
            _ => {
                // M2.2: the discount an operator gave = list − charged, used by eligible OPCs.
                if let Some(op) = operator_of(&r.counterparty) {
                    let ok = opc_ok(&r.subject, &r.day);
                    let (all, uq) = (r.list_fen - r.charged_fen, r.uq_list_fen - r.uq_charged_fen);
                    add(&mut discounts, &op, &r.day, ok, all - uq);
                    add(&mut discounts, &op, &r.day, false, uq);
                }
            }
        }
    }
    // M1.1: free workstations occupied by eligible OPCs, per month of the year up to the as-of
    // date: a workstation counts for a month when it is occupied at the month's end (or on the
    // as-of date, for the running month).
    let mut months = Tally::new();
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
            let check = month_end.min(as_of).to_string();
            let key = format!("{year:04}-{m:02}");
            for (opc, since_ms) in occ {
                if day_of(*since_ms) <= check {
                    add(&mut months, op, &key, opc_ok(opc, &check), 1);
                }
            }
        }
    }

    let mut out = vec![];
    let mut push = |clause: &str, role: Role, party: &Party, specific: Vec<(&str, Value)>| {
        let mut f = common_facts(policy, inputs, clause, party, year, as_of, window);
        for (k, v) in specific {
            f.insert(k.to_string(), v);
        }
        out.push(Candidate {
            clause: clause.to_string(),
            role,
            party: party.clone(),
            facts: f,
        });
    };
    if wanted("M1.1") {
        for p in &inputs.parties.operators {
            if let Some(m) = months.get(&p.id) {
                push(
                    "M1.1",
                    Role::CommunityOperator,
                    p,
                    vec![
                        ("runs_opc_community", json!(true)),
                        ("workstation_months", entries(Some(m), "month", "quantity")),
                    ],
                );
            }
        }
    }
    if wanted("M2.2") {
        for p in &inputs.parties.operators {
            if let Some(d) = discounts.get(&p.id) {
                push(
                    "M2.2",
                    Role::CommunityOperator,
                    p,
                    vec![
                        ("operates_community_on_platform", json!(true)),
                        ("discounts", entries(Some(d), "date", "amount_fen")),
                    ],
                );
            }
        }
    }
    for p in &inputs.parties.opcs {
        if wanted("M2.3-publisher") && (published.contains_key(&p.id) || free_calls.contains_key(&p.id)) {
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
        if wanted("M2.3-invoker") {
            if let Some(i) = invoked.get(&p.id) {
                push(
                    "M2.3-invoker",
                    Role::OpcFounder,
                    p,
                    vec![("paid_calls", entries(Some(i), "date", "amount_fen"))],
                );
            }
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
    as_of: NaiveDate,
    window: Option<opchub_policy::Window>,
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
        let v = match (*kind, hit) {
            (_, None) => match by_code {
                Some(v) => v,
                None => continue,
            },
            ("safety_accident", Some(dates)) => dates
                .iter()
                .any(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok_and(|d| window.is_some_and(|w| w.start <= d) && d <= as_of)),
            (_, Some(_)) => true,
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

/// Decides every candidate; applies each clause's yearly budget (F1) when entitlements exceed it.
pub fn compute(
    policy: &Policy,
    cands: &[Candidate],
    year: i32,
    as_of: NaiveDate,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Computed, SettleError> {
    let decide = |c: &Candidate, factor: Option<&str>| -> Result<Decision, SettleError> {
        let mut map = c.facts.clone();
        if let Some(f) = factor {
            map.insert("budget_factor".into(), json!(f));
        }
        let facts = Facts::from_map(map);
        Ok(evaluate(
            policy,
            &c.clause,
            &Beneficiary {
                id: c.party.id.clone(),
                role: c.role,
            },
            year,
            &facts,
            as_of,
        )?)
    };
    let mut decisions = Vec::with_capacity(cands.len());
    for (i, c) in cands.iter().enumerate() {
        decisions.push(decide(c, None)?);
        if i % 500 == 0 {
            progress(i as u64);
        }
    }
    // F1: a clause's yearly budget scales its batch down when entitlements exceed it.
    let mut factors: BTreeMap<String, String> = BTreeMap::new();
    for clause in SETTLED_CLAUSES {
        let Some(c) = policy.clause(clause) else { continue };
        let Some(ParamValue::Fen(budget)) = policy.clause_param(c, "yearly_budget", as_of).map(|p| p.value.clone()) else {
            continue;
        };
        let total: i64 = decisions.iter().filter(|d| d.clause == *clause).map(|d| d.amount_fen).sum();
        let f = budget_factor(budget, total);
        if f < rust_decimal::Decimal::ONE {
            factors.insert(clause.to_string(), f.to_string());
        }
    }
    if !factors.is_empty() {
        for (c, d) in cands.iter().zip(decisions.iter_mut()) {
            if let Some(f) = factors.get(&c.clause) {
                *d = decide(c, Some(f))?;
            }
        }
    }
    let mut out = Computed::default();
    for (c, d) in cands.iter().zip(decisions) {
        let t = out.per_clause.entry(c.clause.clone()).or_default();
        t.beneficiaries += 1;
        match d.eligible {
            Some(true) => t.eligible += 1,
            None => t.undetermined += 1,
            Some(false) => {}
        }
        t.total_fen += d.amount_fen;
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
            amount_fen: d.amount_fen,
            cap_fen: cap_of(policy, &c.clause, as_of),
            decision: serde_json::to_string(&d).unwrap_or_default(),
            confirmation: "pending".into(),
            ..Default::default()
        });
    }
    Ok(out)
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
    let a = compute(base, &candidates(base, inputs, year, as_of, clauses), year, as_of, &|_| {})?;
    let b = compute(changed, &candidates(changed, inputs, year, as_of, clauses), year, as_of, &|_| {})?;
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
