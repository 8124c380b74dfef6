//! Facts for an application (issue 8): what the platform knows about the applicant — G2 registry
//! facts, F3 lists (with the platform's own no-support list), S3 grants from other policies and
//! the cap already consumed in the clause's cap scope — merged with the applicant's answers,
//! then decided by the engine. The applicant can never override what the platform fills in.

use crate::run::{common_facts, Inputs, SettleError};
use chrono::NaiveDate;
use opchub_domain::Role;
use opchub_policy::{evaluate, Beneficiary, CapScope, Decision, Facts, Policy};
use opchub_store::caps::CapKey;
use opchub_store::settlement::Party;
use opchub_store::Store;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The party an applicant applies as: its OPC, its community-operator account, its company.
pub async fn party_of(store: &Store, role: Role, user_id: &str) -> Result<Option<Party>, SettleError> {
    Ok(store.settlement_party_of_user(role.as_str(), user_id).await?)
}

/// The cap ledger key an application of `clause` consumes (per its cap scope).
pub fn cap_key(policy: &Policy, clause: &str, beneficiary: &str, year: i32, project_id: Option<&str>) -> Option<CapKey> {
    let c = policy.clause(clause)?;
    let project = project_id.unwrap_or("-");
    let (scope, period) = match c.cap_scope? {
        CapScope::PerYear => ("year", year.to_string()),
        CapScope::PerProjectPerYear => ("project_year", format!("{project}/{year}")),
        CapScope::OncePerProject | CapScope::PerProject => ("project", project.to_string()),
        CapScope::PerBeneficiary => ("beneficiary", "all".to_string()),
    };
    Some(CapKey {
        clause: clause.to_string(),
        beneficiary: beneficiary.to_string(),
        scope: scope.to_string(),
        period_key: period,
    })
}

/// The facts of an application: the platform's, then the applicant's answers (which may not
/// name a platform fact — `opchub_funds::read_form` refuses those).
pub async fn application_facts(
    store: &Store,
    policy: &Policy,
    clause: &str,
    party: &Party,
    year: i32,
    as_of: NaiveDate,
    answers: &Map<String, Value>,
) -> Result<Map<String, Value>, SettleError> {
    let window = policy.window(as_of).map(|(w, _, _)| w);
    let now = opchub_store::now_ms();
    let inputs = Inputs {
        lists: store.exclusions_in_force(now).await?,
        overlaps: store.overlap_grants(i64::from(year)).await?,
        consumed: BTreeMap::new(),
        ..Inputs::default()
    };
    let mut facts = common_facts(policy, &inputs, clause, party, year, as_of, window);
    let project = answers.get("project_id").and_then(Value::as_str);
    if let Some(key) = cap_key(policy, clause, &party.id, year, project) {
        let consumed = store.cap_use(&key).await?.map(|u| u.consumed_fen).unwrap_or(0);
        facts.insert("consumed_fen".into(), json!(consumed));
    }
    for (k, v) in answers {
        facts.insert(k.clone(), v.clone());
    }
    // Several projects in one application (M3.1, M3.2, M3.3, M6.1): each project's cap is
    // counted with what was already paid for that project (the platform's, never the answer's).
    if let Some(Value::Array(projects)) = facts.get_mut("projects") {
        for p in projects.iter_mut() {
            let Value::Object(p) = p else { continue };
            let id = p.get("project_id").and_then(Value::as_str).map(str::to_string);
            if let Some(key) = cap_key(policy, clause, &party.id, year, id.as_deref()) {
                let consumed = store.cap_use(&key).await?.map(|u| u.consumed_fen).unwrap_or(0);
                p.insert("consumed_fen".into(), json!(consumed));
            }
        }
    }
    Ok(facts)
}

/// Decides an application's facts with the engine.
pub fn decide(
    policy: &Policy,
    clause: &str,
    party_id: &str,
    role: Role,
    year: i32,
    as_of: NaiveDate,
    facts: Map<String, Value>,
) -> Result<Decision, SettleError> {
    let b = Beneficiary {
        id: party_id.to_string(),
        role,
    };
    Ok(evaluate(policy, clause, &b, year, &Facts::from_map(facts), as_of)?)
}

/// The party with `id` (OPC, community-operator account or company).
pub async fn party_by_id(store: &Store, id: &str) -> Result<Option<Party>, SettleError> {
    Ok(store.settlement_party(id).await?)
}
