//! 免申即享 settlement (issue 6, clauses M1.1, M2.2, M2.3, M2.4): benefits computed from the
//! platform's own statistics for every beneficiary, without an application. `run` builds facts
//! and decides (pure), `lists` reads F3 exclusion lists, `export` writes what finance receives;
//! `settle` ties them to the store: one draft batch with one line and one trace per beneficiary.

pub mod apply;
pub mod export;
pub mod lists;
pub mod run;

#[cfg(test)]
mod fuzz_tests;

pub use run::{
    amend_all, check_request, compute, compute_with, load_inputs, what_if, ClauseDiff, ClauseTotal, Computed, SettleError, SETTLED_CLAUSES,
};

use chrono::NaiveDate;
use opchub_policy::Policy;
use opchub_store::settlement::{Batch, NewBatch};
use opchub_store::{Actor, Store};
use std::collections::BTreeMap;

/// A stored draft batch and its per-clause totals.
#[derive(Debug, Clone)]
pub struct Settled {
    pub batch: Batch,
    pub per_clause: BTreeMap<String, ClauseTotal>,
}

/// Settles `year` (all settled clauses, or `clauses`) as of `as_of` into a new draft batch.
pub async fn settle(
    store: &Store,
    actor: &Actor,
    policy: &Policy,
    year: i32,
    clauses: &[String],
    as_of: NaiveDate,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<Settled, SettleError> {
    check_request(policy, year, clauses, as_of)?;
    progress("read", 0, 1);
    // Issue 19 item 4: M2.2 and M2.3 read the bills; a sealed month whose bills were never
    // issued (sealed before bills existed, or issuing failed after the seal) is issued first.
    for month in store.bill_months_to_issue().await? {
        store.issue_bills(actor, &month).await?;
    }
    // What the draft is based on, read before the inputs: anything that changes it afterwards
    // makes the draft stale at approval.
    let mark = basis_mark(store, policy, year).await?;
    let inputs = entitlement_inputs(load_inputs(store, policy, year, as_of).await?);
    let cands = run::candidates(policy, &inputs, year, as_of, clauses);
    let n = cands.len() as u64;
    progress("decide", 0, n);
    let computed = compute_with(policy, &cands, year, as_of, inputs.applications_fen, &|i| progress("decide", i, n))?;
    progress("decide", n, n);
    progress("store", 0, 1);
    let chosen: Vec<String> = if clauses.is_empty() {
        SETTLED_CLAUSES.iter().map(|s| s.to_string()).collect()
    } else {
        clauses.to_vec()
    };
    let batch = store
        .create_settlement(
            actor,
            NewBatch {
                year: i64::from(year),
                clauses: chosen,
                as_of: as_of.to_string(),
                policy_version: policy.version.clone(),
                lists: run::lists_used(&inputs),
                lines: computed.lines,
                confirm_until_ms: opchub_store::now_ms() + confirmation_days(policy, as_of) * 86_400_000,
                basis_mark: mark,
            },
        )
        .await?;
    progress("store", 1, 1);
    Ok(Settled {
        batch,
        per_clause: computed.per_clause,
    })
}

/// The inputs for a year-to-date entitlement: settled clauses are measured against what was
/// approved for each key when a batch is stored (`opchub_domain::grant`), not by shrinking the
/// cap here — shrinking both would let each new batch pay the same basis again (issue 17).
pub fn entitlement_inputs(mut inputs: run::Inputs) -> run::Inputs {
    inputs.consumed.clear();
    inputs
}

/// Days the beneficiaries have to confirm a batch's lines (意愿确认), from the policy file
/// (`confirmation_days`; 15 when the file has none).
pub fn confirmation_days(policy: &Policy, as_of: NaiveDate) -> i64 {
    match policy.param("confirmation_days", as_of).map(|p| &p.value) {
        Some(opchub_policy::ParamValue::Count(n)) => i64::from(*n),
        _ => 15,
    }
}

/// What a draft of `year` is based on beyond the ledger's new usage: the policy version, the
/// exclusion lists in force, the ledger's corrections, the platform's no-support findings, the
/// integrity findings and what the year's approved applications committed of a policy-wide
/// budget (F1). New usage only raises entitlements (a later batch pays the difference); any of
/// these may lower them, so approval refuses a draft whose mark changed (`batch_stale`).
pub async fn basis_mark(store: &Store, policy: &Policy, year: i32) -> Result<String, SettleError> {
    let now = opchub_store::now_ms();
    let lists = store.exclusions_in_force(now).await?;
    let ids: Vec<&String> = lists.lists.values().map(|l| &l.id).collect();
    let corrections = store.ledger_correction_count().await?;
    let mut no_support = store.no_support_in_force(now).await?;
    no_support.sort();
    // Issue 18: a finding opened, upheld or dismissed after the draft changes what it may pay.
    let findings: Vec<String> = store
        .integrity_findings(None)
        .await?
        .into_iter()
        .map(|f| format!("{}:{}", f.id, f.status))
        .collect();
    let mut mark = serde_json::json!({
        "policy": policy.version,
        "lists": ids,
        "corrections": corrections,
        "no_support": no_support,
        "findings": findings,
    });
    // Only a policy-wide budget makes the applications matter to the batch (and only then is
    // the key there, so drafts made before it existed keep their mark).
    if policy.param("yearly_budget", run::default_as_of(year)).is_some() {
        mark["applications_fen"] = serde_json::json!(store.committed_in_year(i64::from(year)).await?.0);
    }
    Ok(mark.to_string())
}

/// What-if over the live data: nothing is saved.
pub async fn what_if_live(
    store: &Store,
    base: &Policy,
    changes: &[String],
    year: i32,
    clauses: &[String],
    as_of: NaiveDate,
) -> Result<Vec<ClauseDiff>, SettleError> {
    check_request(base, year, clauses, as_of)?;
    let changed = amend_all(base, changes, as_of)?;
    let inputs = entitlement_inputs(load_inputs(store, base, year, as_of).await?);
    what_if(base, &changed, &inputs, year, as_of, clauses)
}

/// One line whose replay differs from what the batch stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayDiff {
    pub clause: String,
    pub beneficiary: String,
    pub stored_fen: Option<i64>,
    pub replayed_fen: Option<i64>,
    pub stored_eligible: Option<String>,
    pub replayed_eligible: Option<String>,
}

/// A batch decided again (F3 "replayed as of its date").
#[derive(Debug, Clone)]
pub struct Replay {
    pub batch: Batch,
    pub lines: usize,
    pub same: usize,
    pub differences: Vec<ReplayDiff>,
    /// The policy file's version now, when it is not the one the batch recorded.
    pub policy_changed: Option<String>,
}

/// Decides a stored batch again: the same year, clauses and as-of date, the F3 list versions the
/// batch recorded (not the ones in force now), the parameter values in force on that date, the
/// ledger as it is now. Lines that come out differently are listed — a correction appended to the
/// ledger since, or another policy file, explains them; nothing is saved.
pub async fn replay(store: &Store, policy: &Policy, batch_id: &str) -> Result<Replay, SettleError> {
    let batch = store.settlement_batch(batch_id).await?;
    let stored = store
        .settlement_lines(batch_id, &opchub_store::settlement::LineFilter::default())
        .await?;
    let as_of = NaiveDate::parse_from_str(&batch.as_of, "%Y-%m-%d").map_err(|_| SettleError::Bad {
        field: "as_of",
        message: format!("batch as-of date {:?} is not a date", batch.as_of),
    })?;
    let year = i32::try_from(batch.year).unwrap_or_default();
    let clauses: Vec<String> = serde_json::from_str(&batch.clauses).unwrap_or_else(|_| {
        batch
            .clauses
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    });
    let recorded: BTreeMap<String, serde_json::Value> = serde_json::from_str(&batch.lists).unwrap_or_default();
    let ids: Vec<String> = recorded.values().filter_map(|v| v["id"].as_str().map(str::to_string)).collect();
    let mut inputs = entitlement_inputs(load_inputs(store, policy, year, as_of).await?);
    inputs.lists = store.exclusions_by_ids(&ids, batch.created_at).await?;
    let cands = run::candidates(policy, &inputs, year, as_of, &clauses);
    // The applications' share of the policy-wide budget as the draft saw it (its basis mark).
    let outside = batch
        .basis_mark
        .as_deref()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|m| m["applications_fen"].as_i64())
        .unwrap_or(0);
    let computed = compute_with(policy, &cands, year, as_of, outside, &|_| {})?;
    let mut replayed: BTreeMap<(String, String), (i64, String)> = computed
        .lines
        .into_iter()
        .map(|l| ((l.clause, l.beneficiary), (l.amount_fen, l.eligible)))
        .collect();
    let mut differences = vec![];
    let mut same = 0;
    for l in &stored {
        match replayed.remove(&(l.clause.clone(), l.beneficiary.clone())) {
            Some((fen, eligible)) if fen == l.entitlement_fen && eligible == l.eligible => same += 1,
            other => differences.push(ReplayDiff {
                clause: l.clause.clone(),
                beneficiary: l.beneficiary.clone(),
                stored_fen: Some(l.entitlement_fen),
                replayed_fen: other.as_ref().map(|o| o.0),
                stored_eligible: Some(l.eligible.clone()),
                replayed_eligible: other.map(|o| o.1),
            }),
        }
    }
    for ((clause, beneficiary), (fen, eligible)) in replayed {
        differences.push(ReplayDiff {
            clause,
            beneficiary,
            stored_fen: None,
            replayed_fen: Some(fen),
            stored_eligible: None,
            replayed_eligible: Some(eligible),
        });
    }
    Ok(Replay {
        lines: stored.len(),
        same,
        differences,
        policy_changed: (policy.version != batch.policy_version).then(|| policy.version.clone()),
        batch,
    })
}
