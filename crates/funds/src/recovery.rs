//! Recovery (F2, S5). A document found false takes away the facts it proved; a serious violation
//! puts the beneficiary under `excluded_by_review` (F3). The engine then recomputes and the
//! difference to what was paid is recovered — repaid by the beneficiary, or offset against its
//! next payments.

use crate::forms::{FieldKind, FormSpec};
use serde_json::{json, Map, Value};

/// The facts without what the false evidence slots proved: a statement becomes false, amounts
/// and dates become absent (never zero by guess — absent is "known: there is none").
pub fn without_false_evidence(spec: &FormSpec, facts: &Map<String, Value>, false_slots: &[usize]) -> Map<String, Value> {
    let mut out = facts.clone();
    for slot in spec.evidence.iter().filter(|s| false_slots.contains(&s.index)) {
        for fact in &slot.proves {
            let kind = spec.fields.iter().find(|f| &f.name == fact).map(|f| f.kind.clone());
            let v = match kind {
                Some(FieldKind::Declare) => json!(false),
                _ => Value::Null,
            };
            out.insert(fact.clone(), v);
        }
    }
    out
}

/// S5: a serious violation excludes the beneficiary by review.
pub fn with_violation(facts: &Map<String, Value>) -> Map<String, Value> {
    let mut out = facts.clone();
    out.insert("excluded_by_review".into(), json!(true));
    out
}

/// What is to be recovered: what was paid beyond what the engine now computes.
pub fn recovery_fen(paid_fen: i64, recomputed_fen: i64) -> i64 {
    (paid_fen - recomputed_fen.max(0)).max(0)
}

/// Offsets a payment against open recovery orders, oldest first (the one rule, shared with
/// settlement payments): `opchub_domain::grant::offset`.
pub use opchub_domain::grant::offset;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use opchub_policy::Policy;

    #[test]
    fn a_false_spend_ledger_takes_the_spend_away_and_a_false_agreement_the_partner() {
        let p = Policy::embedded().unwrap();
        let spec = crate::form_spec(&p, "M3.2").unwrap();
        let facts = json!({ "partner_is_university_or_institute": true, "project_id": "P1", "rd_spend": [{ "date": "2027-01-02", "amount_fen": 100 }] });
        let f = facts.as_object().unwrap();
        let a = without_false_evidence(&spec, f, &[1]);
        assert_eq!(a["rd_spend"], Value::Null);
        assert_eq!(a["partner_is_university_or_institute"], json!(true));
        let b = without_false_evidence(&spec, f, &[0]);
        assert_eq!(b["partner_is_university_or_institute"], json!(false));
        assert_eq!(with_violation(f)["excluded_by_review"], json!(true));
    }

    #[test]
    fn recovery_and_offsets_never_go_negative() {
        assert_eq!(recovery_fen(1000, 400), 600);
        assert_eq!(recovery_fen(1000, 1200), 0);
        let (used, left) = offset(500, &[("r1".into(), 300), ("r2".into(), 400)]);
        assert_eq!(used, vec![("r1".to_string(), 300), ("r2".to_string(), 200)]);
        assert_eq!(left, 0);
        let (used, left) = offset(500, &[("r1".into(), 100)]);
        assert_eq!((used.len(), left), (1, 400));
    }
}
