//! Integrity (issue 18): scanning a year's paid-call graph with the detectors of
//! `opchub_integrity`, storing what they find, and its review — the committee upholds or
//! dismisses a finding with a reason; the flagged parties see it and may answer.
//!
//! What a finding does to money (M2.3, both sides): while it is open, the M2.3 lines of its
//! parties are held (undetermined, so approval moves nothing); once upheld, the paid calls among
//! its parties stop qualifying — a line already paid is lowered through its recovery order by the
//! next batch; once dismissed, nothing changes.
//!
//! The graph is party-level: a "skill" in the detectors' input is a publisher's set of skills
//! (the rollups M2.3 pays from are kept per invoker and publisher).

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::Role;
use opchub_integrity as det;
use opchub_store::integrity::{Finding, NewFinding, ScanStored};
use opchub_store::Actor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What a scan looked at and did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanReport {
    pub year: i32,
    /// (invoker, publisher) pairs with paid calls.
    pub edges: usize,
    /// Identity signals (payout bank accounts) considered.
    pub signals: usize,
    /// Findings per detector.
    pub by_detector: BTreeMap<String, usize>,
    pub stored: ScanStored,
}

/// Builds the detectors' input from the store (pure mapping; no scoring here).
fn input_of(edges: &[opchub_store::integrity::CallEdge], signals: &[opchub_store::integrity::PartySignal]) -> det::Input {
    det::Input {
        edges: edges
            .iter()
            .filter(|e| e.invoker != e.publisher && e.calls > 0)
            .map(|e| det::Edge {
                invoker: det::PartyId(e.invoker.clone()),
                publisher: det::PartyId(e.publisher.clone()),
                skill: det::SkillId(e.publisher.clone()),
                calls: e.calls.max(0) as u64,
                paid_fen: e.paid_fen.max(0),
            })
            .collect(),
        signals: signals
            .iter()
            .map(|s| det::IdentitySignal {
                party: det::PartyId(s.party.clone()),
                kind: det::SignalKind::BankAccount,
                value_hash: crate::crypto::sha256_hex(&format!("{}:{}", s.kind, s.value)),
            })
            .collect(),
        timings: vec![],
    }
}

fn stored_of(year: i32, f: det::Finding) -> NewFinding {
    NewFinding {
        year,
        detector: f.detector.code().to_string(),
        parties: f.parties.into_iter().map(|p| p.0).collect(),
        skills: f.skills.into_iter().map(|s| s.0).collect(),
        score_ppm: (f.score.clamp(0.0, 1.0) * 1_000_000.0).round() as i64,
        amount_at_stake_fen: f.amount_at_stake_fen,
        explanation_zh: f.explanation_zh,
        explanation_en: f.explanation_en,
        evidence: f
            .evidence
            .into_iter()
            .map(|(a, b, calls, fen)| (a.0, b.0, i64::try_from(calls).unwrap_or(i64::MAX), fen))
            .collect(),
    }
}

/// Scans `year` as `actor` (the committee, the CLI, the scheduled scan) and stores the findings.
pub async fn scan_as(app: &App, actor: &Actor, year: i32) -> AppResult<ScanReport> {
    if !(2000..=2100).contains(&year) {
        return Err(AppError::field("year", "out_of_range"));
    }
    let edges = app.store.integrity_call_edges(year).await?;
    let signals = app.store.integrity_signals().await?;
    let input = input_of(&edges, &signals);
    let found = tokio::task::spawn_blocking(move || det::scan(&input, &det::Thresholds::default()))
        .await
        .map_err(|_| AppError::internal())?;
    let mut by_detector = BTreeMap::new();
    for f in &found {
        *by_detector.entry(f.detector.code().to_string()).or_insert(0) += 1;
    }
    let new: Vec<NewFinding> = found.into_iter().map(|f| stored_of(year, f)).collect();
    let stored = app.store.store_integrity_findings(actor, year, &new).await?;
    Ok(ScanReport {
        year,
        edges: edges.len(),
        signals: signals.len(),
        by_detector,
        stored,
    })
}

pub async fn scan_for(app: &App, p: &Principal, year: i32) -> AppResult<ScanReport> {
    scan_as(app, &p.actor(), year).await
}

/// Findings the caller may read: all of them for the committee and the auditor; a party's own
/// (where it is named) for a beneficiary.
pub async fn findings_for(app: &App, p: &Principal, year: Option<i32>) -> AppResult<Vec<Finding>> {
    let all = app.store.integrity_findings(year).await?;
    match p.role() {
        Role::Committee | Role::Auditor => Ok(all),
        _ => {
            let mine = app.store.parties_owned_by(&p.user.id).await?;
            Ok(all.into_iter().filter(|f| f.parties.iter().any(|x| mine.contains(x))).collect())
        }
    }
}

/// One finding, if the caller may read it (others get `not_found`).
pub async fn finding_for(app: &App, p: &Principal, id: &str) -> AppResult<Finding> {
    let f = app.store.integrity_finding(id).await?;
    match p.role() {
        Role::Committee | Role::Auditor => Ok(f),
        _ => {
            let mine = app.store.parties_owned_by(&p.user.id).await?;
            if f.parties.iter().any(|x| mine.contains(x)) {
                Ok(f)
            } else {
                Err(AppError::not_found())
            }
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// `uphold` or `dismiss`.
    pub decision: String,
    /// Why (required; shown to the parties and kept in the audit log).
    pub reason: String,
}

/// The committee upholds or dismisses an open finding.
pub async fn decide_for(app: &App, p: &Principal, id: &str, d: &Decide) -> AppResult<Finding> {
    let uphold = match d.decision.as_str() {
        "uphold" => true,
        "dismiss" => false,
        _ => return Err(AppError::field("decision", "unknown_decision")),
    };
    let reason = d.reason.trim();
    if reason.is_empty() {
        return Err(AppError::field("reason", "required"));
    }
    if reason.chars().count() > 2000 {
        return Err(AppError::field("reason", "too_long"));
    }
    Ok(app.store.decide_integrity_finding(&p.actor(), id, uphold, reason).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The party's statement (申辩).
    pub statement: String,
}

/// A flagged party answers an open finding.
pub async fn answer_for(app: &App, p: &Principal, id: &str, a: &Answer) -> AppResult<Finding> {
    let s = a.statement.trim();
    if s.is_empty() {
        return Err(AppError::field("statement", "required"));
    }
    if s.chars().count() > 4000 {
        return Err(AppError::field("statement", "too_long"));
    }
    Ok(app.store.answer_integrity_finding(&p.actor(), id, s).await?)
}

/// Names of the parties findings can name (OPCs, community operators, enterprises), by id.
pub async fn party_names(app: &App) -> AppResult<BTreeMap<String, String>> {
    let p = app.store.settlement_parties().await?;
    Ok(p.opcs
        .iter()
        .chain(p.operators.iter())
        .chain(p.enterprises.iter())
        .map(|x| (x.id.clone(), x.name.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use opchub_store::integrity::CallEdge;

    #[test]
    fn self_calls_are_not_edges_and_bank_accounts_are_hashed() {
        let edges = vec![
            CallEdge {
                invoker: "a".into(),
                publisher: "a".into(),
                calls: 5,
                paid_fen: 10,
            },
            CallEdge {
                invoker: "a".into(),
                publisher: "b".into(),
                calls: 5,
                paid_fen: 10,
            },
        ];
        let signals = vec![opchub_store::integrity::PartySignal {
            party: "a".into(),
            kind: "bank_account".into(),
            value: "6222020200001234".into(),
        }];
        let i = input_of(&edges, &signals);
        assert_eq!(i.edges.len(), 1);
        assert!(!i.signals[0].value_hash.contains("6222020200001234"));
    }
}
