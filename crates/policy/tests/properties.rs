//! Properties of every paying clause (proptest): an amount is never negative, never above the
//! clause's cap less what was already paid in the cap's scope, and M6.3/M7.2 never pay more than
//! the interest or rent they are computed from. Plus replay "as of" a date (S4).
// Test support functions outside `#[test]` may unwrap too (as in crates/web/tests/common).
#![allow(clippy::unwrap_used, clippy::panic)]

use opchub_policy::{evaluate, Beneficiary, Facts, Policy};
use proptest::prelude::*;
use serde_json::{json, Value};

fn base(policy: &Policy) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for c in &policy.conditions {
        let v = if c.fact == "zone" { json!("hexi_area") } else { json!(true) };
        m.insert(c.fact.clone(), v);
    }
    for e in &policy.exclusions {
        m.insert(e.fact.clone(), json!(false));
    }
    m
}

fn who(policy: &Policy, clause: &str) -> Beneficiary {
    Beneficiary {
        id: "b-1".into(),
        role: policy.clause(clause).unwrap().beneficiary.unwrap(),
    }
}

fn as_of() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2028, 1, 15).unwrap()
}

fn cap_fen(policy: &Policy, clause: &str) -> i64 {
    match policy.clause(clause).unwrap().param("cap", as_of()).unwrap().value {
        opchub_policy::ParamValue::Fen(f) => f,
        ref other => panic!("cap of {clause} is {other:?}"),
    }
}

const CAPPED: [(&str, &str); 11] = [
    ("M1.1", "workstation_months"),
    ("M2.2", "discounts"),
    ("M2.3-publisher", "paid_calls"),
    ("M2.3-invoker", "paid_calls"),
    ("M2.4", "cooperation_payments"),
    ("M3.1", "review_amount_fen"),
    ("M3.2", "rd_spend"),
    ("M3.3", "review_amount_fen"),
    ("M5.1", "compliance_fees"),
    ("M6.1", "review_amount_fen"),
    ("M6.2", "review_amount_fen"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn capped_amounts_stay_between_zero_and_the_headroom(
        which in 0usize..CAPPED.len(),
        amounts in prop::collection::vec(0i64..2_000_000_000_000, 0..6),
        consumed in prop_oneof![Just(0i64), 0i64..2_000_000_000],
        other in prop_oneof![Just(0i64), 0i64..200_000_000],
        factor_pct in 0u32..=100,
    ) {
        let policy = Policy::embedded().unwrap();
        let (clause, fact) = CAPPED[which];
        let mut m = base(&policy);
        let entries: Vec<Value> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let month = (i % 12) + 1;
                if fact == "workstation_months" {
                    json!({"month": format!("2027-{month:02}"), "quantity": a % 100_000, "qualified": true})
                } else {
                    json!({"date": format!("2027-{month:02}-15"), "amount_fen": a, "qualified": true})
                }
            })
            .collect();
        if fact == "review_amount_fen" {
            m.insert(fact.into(), json!(amounts.first().copied().unwrap_or(0)));
            for d in ["commercialised_on", "award_date", "approved_on", "decided_on"] {
                m.insert(d.into(), json!("2027-06-01"));
            }
        } else {
            m.insert(fact.into(), Value::Array(entries));
        }
        m.insert("consumed_fen".into(), json!(consumed));
        m.insert("other_grants".into(), json!([{"policy": "other", "amount_fen": other}]));
        m.insert("budget_factor".into(), json!(format!("{}", rust_decimal::Decimal::new(i64::from(factor_pct), 2))));
        let facts = Facts::from_map(m);
        let d = evaluate(&policy, clause, &who(&policy, clause), 2027, &facts, as_of()).unwrap();
        let cap = cap_fen(&policy, clause);
        let amt = d.amount_fen.unwrap_or(0);
        prop_assert!(amt >= 0, "{clause}: negative {}", amt);
        prop_assert!(amt <= cap, "{clause}: {} above cap {cap}", amt);
        prop_assert!(amt <= (cap - consumed).max(0), "{clause}: {} above headroom", amt);
        prop_assert!(d.eligible.is_some(), "{clause}: every fact was given, yet {:?}", d.missing_facts);
    }

    #[test]
    fn loan_interest_never_exceeds_the_interest_paid(
        loans in prop::collection::vec((1i64..2_000_000_000, 1u32..=12, prop::collection::vec(0i64..10_000_000, 0..24)), 0..4),
    ) {
        let policy = Policy::embedded().unwrap();
        let mut m = base(&policy);
        let mut paid = 0i64;
        let list: Vec<Value> = loans
            .iter()
            .enumerate()
            .map(|(i, (principal, month, interest))| {
                let months: Vec<Value> = interest
                    .iter()
                    .enumerate()
                    .map(|(k, a)| {
                        paid += a;
                        let m0 = (*month as usize - 1) + k;
                        json!({"month": format!("{}-{:02}", 2027 + m0 / 12, m0 % 12 + 1), "amount_fen": a})
                    })
                    .collect();
                json!({"id": format!("L{i}"), "principal_fen": principal, "first_drawdown": format!("2027-{month:02}-10"),
                       "qualified": true, "interest": months})
            })
            .collect();
        m.insert("loans".into(), Value::Array(list));
        m.insert("other_grants".into(), json!([]));
        let facts = Facts::from_map(m);
        let d = evaluate(&policy, "M6.3", &who(&policy, "M6.3"), 2027, &facts, as_of()).unwrap();
        let amt = d.amount_fen.unwrap_or(0);
        prop_assert!(amt >= 0);
        prop_assert!(amt <= paid, "{} > {paid}", amt);
    }

    #[test]
    fn housing_never_exceeds_the_rent(
        day in 0u64..700,
        stay in prop::option::of(1u64..900),
        daily in 0i64..100_000,
        monthly in 0i64..5_000_000,
        year in 2026i32..=2029,
    ) {
        let policy = Policy::embedded().unwrap();
        let mut m = base(&policy);
        let move_in = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap() + chrono::Days::new(day);
        m.insert("move_in".into(), json!(move_in.to_string()));
        m.insert("move_out".into(), match stay {
            Some(s) => json!((move_in + chrono::Days::new(s)).to_string()),
            None => Value::Null,
        });
        m.insert("daily_rent_fen".into(), json!(daily));
        m.insert("monthly_rent_fen".into(), json!(monthly));
        m.insert("other_grants".into(), json!([]));
        let facts = Facts::from_map(m);
        let d = evaluate(&policy, "M7.2", &who(&policy, "M7.2"), year, &facts, as_of()).unwrap();
        let amt = d.amount_fen.unwrap_or(0);
        prop_assert!(amt >= 0);
        // A calendar year holds at most 7 free days and 12 months of rent forgone, at most 13 periods touched.
        prop_assert!(amt <= 7 * daily + 13 * monthly, "{} too high", amt);
    }
}

#[test]
fn replay_as_of_uses_the_values_then_in_force() {
    let policy = Policy::embedded().unwrap();
    let june = chrono::NaiveDate::from_ymd_opt(2027, 6, 1).unwrap();
    let amended = policy
        .amend(
            "2027.1",
            june,
            Some("M3.2"),
            "rate",
            &toml::Value::String("0.20".into()),
            "committee raises the rate",
        )
        .unwrap();
    assert_eq!(amended.version, "2027.1");
    assert_eq!(amended.versions.len(), policy.versions.len() + 1);
    let mut m = base(&policy);
    m.insert(
        "rd_spend".into(),
        json!([{"date": "2027-03-01", "amount_fen": 1_000_000, "qualified": true}]),
    );
    m.insert("consumed_fen".into(), json!(0));
    m.insert("other_grants".into(), json!([]));
    let facts = Facts::from_map(m);
    let before = evaluate(&amended, "M3.2", &who(&policy, "M3.2"), 2027, &facts, june.pred_opt().unwrap()).unwrap();
    let after = evaluate(&amended, "M3.2", &who(&policy, "M3.2"), 2027, &facts, june).unwrap();
    assert_eq!(before.amount_fen, Some(100_000));
    assert_eq!(before.versions_used, vec!["2026.1".to_string()]);
    assert_eq!(after.amount_fen, Some(200_000));
    assert!(after.versions_used.contains(&"2027.1".to_string()));
}
