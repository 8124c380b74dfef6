//! What was granted for one settlement key — a (clause, beneficiary, year, cap scope) — and the
//! arithmetic that keeps every yuan paid once (issue 17, F1, F2, S5).
//!
//! A 免申即享 batch line is the year-to-date entitlement minus what is already approved for its
//! key: a later batch pays only a positive difference (补发); a lower entitlement becomes a
//! negative line, and what was already paid beyond it a recovery order (追回), repaid or offset
//! against the next payment (抵扣). Approval and payment re-read the key inside their
//! transaction and apply these functions, so re-drafts, races between replicas and corrections
//! can never take a key past its current entitlement and cap.

/// One key's account, in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grant {
    /// What approvals granted in total (the year-to-date entitlement last approved).
    pub approved_fen: i64,
    /// What finance paid out for the key (before recoveries).
    pub paid_fen: i64,
    /// What recovery orders reclaimed or still reclaim (opened amounts).
    pub recovery_fen: i64,
}

impl Grant {
    /// Paid and kept: what the beneficiary holds for the key once open recoveries are settled.
    pub fn net_paid_fen(&self) -> i64 {
        self.paid_fen - self.recovery_fen
    }

    /// Approved but not yet paid.
    pub fn unpaid_fen(&self) -> i64 {
        (self.approved_fen - self.net_paid_fen()).max(0)
    }
}

/// Whether the engine's answer is settled enough to move money: an undetermined line (facts
/// missing) never lowers what was granted — missing information is not a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Eligible,
    NotEligible,
    Undetermined,
}

impl Answer {
    pub fn from_code(code: &str) -> Answer {
        match code {
            "yes" => Answer::Eligible,
            "no" => Answer::NotEligible,
            _ => Answer::Undetermined,
        }
    }
}

/// The line a draft shows for a key: the entitlement less what is already approved. Undetermined
/// answers show no change; a determined lower entitlement shows a negative line.
pub fn draft_delta(entitlement_fen: i64, answer: Answer, prior_approved_fen: i64) -> i64 {
    match answer {
        Answer::Undetermined => 0,
        _ => entitlement_fen.max(0) - prior_approved_fen,
    }
}

/// What approving one line does to its key, given the key as it is now (re-read in the
/// approving transaction, never the draft's copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval {
    /// Change of the approved total: > 0 pays more (补发), < 0 lowers it.
    pub delta_fen: i64,
    /// A recovery order to open: what was already paid beyond the new entitlement.
    pub recovery_fen: i64,
    /// The key afterwards.
    pub after: Grant,
}

/// Approves one line: `entitlement_fen` is the year-to-date entitlement the line was drafted
/// with (already bounded by the cap and budget), `cap_fen` the cap in force, `accepted` the
/// beneficiary's confirmation (意愿确认). A raise needs the confirmation; a lowering does not.
pub fn approve(now: Grant, entitlement_fen: i64, cap_fen: i64, answer: Answer, accepted: bool) -> Approval {
    let unchanged = Approval {
        delta_fen: 0,
        recovery_fen: 0,
        after: now,
    };
    if answer == Answer::Undetermined {
        return unchanged;
    }
    let target = entitlement_fen.max(0).min(cap_fen.max(0));
    if target > now.approved_fen {
        if !accepted {
            return unchanged;
        }
        let after = Grant {
            approved_fen: target,
            ..now
        };
        return Approval {
            delta_fen: target - now.approved_fen,
            recovery_fen: 0,
            after,
        };
    }
    if target == now.approved_fen {
        return unchanged;
    }
    // Lowered: what is held beyond the new target comes back.
    let recovery = (now.net_paid_fen() - target).max(0);
    let after = Grant {
        approved_fen: target,
        recovery_fen: now.recovery_fen + recovery,
        ..now
    };
    Approval {
        delta_fen: target - now.approved_fen,
        recovery_fen: recovery,
        after,
    }
}

/// What finance may pay for a line approved at `line_approved_fen`, given the key now: never
/// more than the key's approved total less what it already holds (a later lowering shrinks an
/// unpaid line).
pub fn payable(now: Grant, line_approved_fen: i64) -> i64 {
    line_approved_fen.max(0).min(now.unpaid_fen())
}

/// Offsets a payment against open recovery orders, oldest first: `(order, amount offset)` and
/// what is left to transfer (F2, S5 抵扣).
pub fn offset(payment_fen: i64, open_orders: &[(String, i64)]) -> (Vec<(String, i64)>, i64) {
    let mut left = payment_fen.max(0);
    let mut used = vec![];
    for (id, outstanding) in open_orders {
        if left == 0 {
            break;
        }
        let take = left.min((*outstanding).max(0));
        if take > 0 {
            used.push((id.clone(), take));
            left -= take;
        }
    }
    (used, left)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_second_batch_pays_only_the_difference() {
        let g = Grant::default();
        let a = approve(g, 500_000, 50_000_000, Answer::Eligible, true);
        assert_eq!(a.delta_fen, 500_000);
        // The same year again with the same basis: nothing more.
        let b = approve(a.after, 500_000, 50_000_000, Answer::Eligible, true);
        assert_eq!(b.delta_fen, 0);
        // More basis later in the year: the difference (补发).
        let c = approve(b.after, 650_000, 50_000_000, Answer::Eligible, true);
        assert_eq!(c.delta_fen, 150_000);
    }

    #[test]
    fn a_lowered_paid_key_opens_a_recovery_for_what_was_paid_beyond_it() {
        let a = approve(Grant::default(), 1_000, 10_000, Answer::Eligible, true).after;
        let paid = Grant { paid_fen: 1_000, ..a };
        let low = approve(paid, 600, 10_000, Answer::Eligible, false);
        assert_eq!((low.delta_fen, low.recovery_fen), (-400, 400));
        assert_eq!(low.after.net_paid_fen(), 600);
        // Not paid yet: the lowering shrinks what finance may pay, no recovery.
        let unpaid = approve(a, 600, 10_000, Answer::NotEligible, true);
        assert_eq!((unpaid.delta_fen, unpaid.recovery_fen), (-400, 0));
        assert_eq!(payable(unpaid.after, 1_000), 600);
    }

    #[test]
    fn missing_information_moves_no_money_and_a_raise_needs_the_confirmation() {
        let a = approve(Grant::default(), 1_000, 10_000, Answer::Eligible, true).after;
        assert_eq!(approve(a, 0, 10_000, Answer::Undetermined, true).delta_fen, 0);
        assert_eq!(draft_delta(0, Answer::Undetermined, 1_000), 0);
        assert_eq!(approve(a, 2_000, 10_000, Answer::Eligible, false).delta_fen, 0);
        assert_eq!(approve(a, 20_000, 10_000, Answer::Eligible, true).after.approved_fen, 10_000);
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A batch drafted from this entitlement, confirmed or not, approved.
        Approve(i64, Answer, bool),
        /// Finance pays every approved line so far.
        Pay,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (
                0i64..3_000_000,
                prop_oneof![Just(Answer::Eligible), Just(Answer::NotEligible), Just(Answer::Undetermined)],
                any::<bool>()
            )
                .prop_map(|(e, a, c)| Step::Approve(e, a, c)),
            Just(Step::Pay),
        ]
    }

    proptest! {
        /// Over any sequence of approvals (raising, lowering, unconfirmed, undetermined), payments
        /// a key never holds more than the cap, and never more than its latest
        /// determined entitlement once its recoveries are settled.
        #[test]
        fn a_key_never_holds_more_than_its_entitlement_and_cap(steps in proptest::collection::vec(step(), 1..40)) {
            let cap = 2_000_000;
            let mut g = Grant::default();
            let mut lines: Vec<i64> = vec![]; // approved, unpaid deltas
            for s in steps {
                match s {
                    Step::Approve(e, a, c) => {
                        let before = g;
                        let r = approve(g, e, cap, a, c);
                        let target = e.min(cap);
                        if a != Answer::Undetermined && (c || target < before.approved_fen) {
                            // Applied: the key now stands exactly at the entitlement.
                            prop_assert_eq!(r.after.approved_fen, target);
                        } else {
                            prop_assert_eq!(r.after, before);
                        }
                        if r.delta_fen > 0 {
                            lines.push(r.delta_fen);
                        }
                        g = r.after;
                    }
                    Step::Pay => {
                        for l in lines.drain(..) {
                            g.paid_fen += payable(g, l);
                        }
                    }
                }
                prop_assert!(g.approved_fen <= cap);
                // What the beneficiary keeps never exceeds what stands approved now.
                prop_assert!(g.net_paid_fen() <= g.approved_fen, "{:?}", g);
            }
        }
    }
}
