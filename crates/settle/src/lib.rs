//! 免申即享 settlement (issue 6, clauses M1.1, M2.2, M2.3, M2.4): benefits computed from the
//! platform's own statistics for every beneficiary, without an application. `run` builds facts
//! and decides (pure), `lists` reads F3 exclusion lists, `export` writes what finance receives;
//! `settle` ties them to the store: one draft batch with one line and one trace per beneficiary.

pub mod apply;
pub mod export;
pub mod lists;
pub mod run;

pub use run::{amend_all, check_request, compute, load_inputs, what_if, ClauseDiff, ClauseTotal, Computed, SettleError, SETTLED_CLAUSES};

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
    let inputs = load_inputs(store, policy, year, as_of).await?;
    let cands = run::candidates(policy, &inputs, year, as_of, clauses);
    let n = cands.len() as u64;
    progress("decide", 0, n);
    let computed = compute(policy, &cands, year, as_of, &|i| progress("decide", i, n))?;
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
            },
        )
        .await?;
    progress("store", 1, 1);
    Ok(Settled {
        batch,
        per_clause: computed.per_clause,
    })
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
    let inputs = load_inputs(store, base, year, as_of).await?;
    what_if(base, &changed, &inputs, year, as_of, clauses)
}
