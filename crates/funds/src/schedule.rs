//! Month-by-month schedules computed by the engine (pure): the M6.3 interest subsidy each month's
//! interest statements earn (the monthly claims), and the M7.2 rent relief and rent due for each
//! month of a talent apartment assignment. Each month's figure is the difference of the engine's
//! cumulative answers, so the months always add up to what the engine pays for the year.

use chrono::{Months, NaiveDate};
use opchub_domain::Role;
use opchub_policy::{evaluate, Beneficiary, Facts, Policy, PolicyError};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LoanMonth {
    /// `YYYY-MM`
    pub month: String,
    pub interest_fen: i64,
    /// What the engine pays for this month's interest (M6.3).
    pub subsidy_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RentMonth {
    pub month: String,
    /// Rent for the days occupied this month (daily rent for part months).
    pub rent_fen: i64,
    /// The M7.2 relief for this month.
    pub relief_fen: i64,
    /// What the talent pays.
    pub due_fen: i64,
}

fn amount(
    policy: &Policy,
    clause: &str,
    who: &Beneficiary,
    year: i32,
    facts: &Map<String, Value>,
    as_of: NaiveDate,
) -> Result<i64, PolicyError> {
    // An undetermined answer has no amount; a schedule month then counts nothing (as before).
    Ok(evaluate(policy, clause, who, year, &Facts::from_map(facts.clone()), as_of)?
        .amount_fen
        .unwrap_or(0))
}

/// M6.3 per month of `year`: `base` holds the platform facts (G2, F3); `loans` the loan facts
/// with every interest statement. Month m's subsidy = engine(statements ≤ m) − engine(< m).
pub fn loan_months(
    policy: &Policy,
    who: &Beneficiary,
    year: i32,
    as_of: NaiveDate,
    base: &Map<String, Value>,
    loans: &[Value],
) -> Result<Vec<LoanMonth>, PolicyError> {
    let mut months: Vec<String> = loans
        .iter()
        .flat_map(|l| l.get("interest").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|i| i.get("month").and_then(Value::as_str).map(str::to_string))
        .filter(|m| m.starts_with(&format!("{year:04}-")))
        .collect();
    months.sort();
    months.dedup();
    let upto = |last: Option<&str>| -> Vec<Value> {
        loans
            .iter()
            .map(|l| {
                let mut l = l.clone();
                let kept: Vec<Value> = l
                    .get("interest")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| last.is_some_and(|m| i.get("month").and_then(Value::as_str).is_some_and(|x| x <= m)))
                    .collect();
                l["interest"] = Value::Array(kept);
                l
            })
            .collect()
    };
    let mut out = vec![];
    let mut before = 0i64;
    for m in &months {
        let mut f = base.clone();
        f.insert("loans".into(), Value::Array(upto(Some(m))));
        let now = amount(policy, "M6.3", who, year, &f, as_of)?;
        let interest = loans
            .iter()
            .flat_map(|l| l.get("interest").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter(|i| i.get("month").and_then(Value::as_str) == Some(m.as_str()))
            .filter_map(|i| i.get("amount_fen").and_then(Value::as_i64))
            .sum();
        out.push(LoanMonth {
            month: m.clone(),
            interest_fen: interest,
            subsidy_fen: now - before,
        });
        before = now;
    }
    Ok(out)
}

fn month_end(first: NaiveDate) -> NaiveDate {
    first.checked_add_months(Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(first)
}

/// M7.2 per month of `year` for one assignment: relief = engine(moved out at month end) −
/// engine(moved out at the previous month end); rent = the month's rent (daily rent × days for a
/// part month); due = rent − relief.
#[allow(clippy::too_many_arguments)]
pub fn rent_months(
    policy: &Policy,
    who: &Beneficiary,
    year: i32,
    as_of: NaiveDate,
    base: &Map<String, Value>,
    move_in: NaiveDate,
    move_out: Option<NaiveDate>,
    monthly_rent_fen: i64,
    daily_rent_fen: i64,
) -> Result<Vec<RentMonth>, PolicyError> {
    let mut facts = base.clone();
    facts.insert("young_talent".into(), json!(true));
    facts.insert("move_in".into(), json!(move_in.to_string()));
    facts.insert("monthly_rent_fen".into(), json!(monthly_rent_fen));
    facts.insert("daily_rent_fen".into(), json!(daily_rent_fen));
    // The move-out day is not occupied (the engine counts up to the day before it).
    let cum = |end_excl: NaiveDate| -> Result<i64, PolicyError> {
        if end_excl <= move_in {
            return Ok(0);
        }
        let mut f = facts.clone();
        let out = move_out.map_or(end_excl, |o| o.min(end_excl));
        f.insert("move_out".into(), json!(out.to_string()));
        amount(policy, "M7.2", who, year, &f, as_of)
    };
    let mut out = vec![];
    let mut before = 0i64;
    for m in 1..=12u32 {
        let Some(first) = NaiveDate::from_ymd_opt(year, m, 1) else {
            continue;
        };
        let last = month_end(first);
        let next = last.succ_opt().unwrap_or(last);
        let (from, to_excl) = (first.max(move_in), move_out.map_or(next, |o| o.min(next)));
        if from >= to_excl || first > as_of {
            continue;
        }
        let rent = stay_rent(from, to_excl, move_in, free_days(policy, as_of), monthly_rent_fen, daily_rent_fen);
        let now = cum(next)?;
        let relief = (now - before).clamp(0, rent);
        before = now;
        out.push(RentMonth {
            month: first.format("%Y-%m").to_string(),
            rent_fen: rent,
            relief_fen: relief,
            due_fen: rent - relief,
        });
    }
    Ok(out)
}

/// The rent of the days `[from, to_excl)` priced as the engine prices a stay: the first
/// `free_days` at the daily rent (turnover housing), then months of the stay counted from the day
/// after them — each month of the stay costs the monthly rent, a part of it pro rata by its own
/// length. Rounded half up to the fen.
fn stay_rent(from: NaiveDate, to_excl: NaiveDate, move_in: NaiveDate, free_days: u32, monthly: i64, daily: i64) -> i64 {
    let months_start = move_in.checked_add_days(chrono::Days::new(u64::from(free_days))).unwrap_or(move_in);
    let daily_days = (to_excl.min(months_start) - from.min(months_start)).num_days().max(0);
    // Σ monthly × overlap / stay-month length, as one fraction per stay month, rounded once.
    let (mut num, mut den) = (0i128, 1i128);
    let mut k = 0u32;
    while let (Some(a), Some(b)) = (
        months_start.checked_add_months(Months::new(k)),
        months_start.checked_add_months(Months::new(k + 1)),
    ) {
        if a >= to_excl {
            break;
        }
        let overlap = (to_excl.min(b) - from.max(a)).num_days().max(0);
        if overlap > 0 {
            let len = i128::from((b - a).num_days());
            num = num * len + i128::from(monthly) * i128::from(overlap) * den;
            den *= len;
            let g = gcd(num, den);
            num /= g;
            den /= g;
        }
        k += 1;
    }
    let months_part = i64::try_from((2 * num + den) / (2 * den)).unwrap_or(i64::MAX);
    daily * daily_days + months_part
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// M7.2's free days (days 1–7 of the stay are free, priced at the daily rent).
fn free_days(policy: &Policy, as_of: NaiveDate) -> u32 {
    match policy.clause("M7.2").and_then(|c| c.param("free_days", as_of)).map(|p| &p.value) {
        Some(opchub_policy::ParamValue::Count(n)) => *n,
        _ => 0,
    }
}

/// The beneficiary of a schedule.
pub fn opc(id: &str) -> Beneficiary {
    Beneficiary {
        id: id.to_string(),
        role: Role::OpcFounder,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn base() -> Map<String, Value> {
        json!({ "zone": "hexi_area", "market_registered": true, "tax_registered": true, "restricted_industry": false,
                "no_support_sanction": false, "safety_accident_in_window": false, "excluded_by_review": false, "other_grants": [] })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn loan_months_add_up_to_the_year_and_pay_interest_in_full() {
        let p = Policy::embedded().unwrap();
        let loans = vec![
            json!({ "id": "L1", "principal_fen": 100_000_000, "first_drawdown": "2027-01-01", "qualified": true, "interest": [
            { "month": "2027-01", "amount_fen": 350_000 }, { "month": "2027-02", "amount_fen": 340_000 } ] }),
        ];
        let as_of = NaiveDate::from_ymd_opt(2028, 1, 15).unwrap();
        let m = loan_months(&p, &opc("o1"), 2027, as_of, &base(), &loans).unwrap();
        assert_eq!(m.iter().map(|x| x.subsidy_fen).collect::<Vec<_>>(), [350_000, 340_000]);
    }

    #[test]
    fn rent_relief_follows_the_m7_2_schedule_and_due_is_the_rest() {
        let p = Policy::embedded().unwrap();
        let as_of = NaiveDate::from_ymd_opt(2028, 1, 10).unwrap();
        let move_in = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let m = rent_months(&p, &opc("t1"), 2027, as_of, &base(), move_in, None, 400_000, 20_000).unwrap();
        assert_eq!(m.len(), 12);
        // The year's relief is what the engine pays for the year (policy/tests/m7_2.toml: ¥28,948.39).
        assert_eq!(m.iter().map(|x| x.relief_fen).sum::<i64>(), 2_894_839);
        // February lies inside the two free months (Jan 8 – Mar 7): nothing due; June is at 50%.
        assert_eq!((m[1].relief_fen, m[1].due_fen), (m[1].rent_fen, 0));
        assert!((m[5].relief_fen - m[5].due_fen).abs() <= 1, "{:?}", m[5]);
        assert!(m.iter().all(|x| x.due_fen + x.relief_fen == x.rent_fen));
    }
}
