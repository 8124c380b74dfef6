//! The review workflow of F1: the stages an application passes, who acts at each, what they may
//! do, and the rules between people (a reviewer who declined for a conflict of interest acts no
//! more; whoever decided may not pay — the two-person rule). Pure: the store applies the result
//! in one transaction guarded by the application's version, so of two reviewers acting at once
//! one wins and the other is told.

use opchub_domain::Role;

/// Where an application is. `Stage(name)` is one of the clause's review stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Draft,
    /// Sent back to the applicant to complete (returned at `stage`).
    Returned,
    Review(String),
    /// Decided; waiting for the finance bureau.
    Approved,
    /// Decided, nothing to pay (in kind, qualification, investment by the fund, housing).
    Granted,
    Paid,
    Rejected,
    Withdrawn,
}

impl Stage {
    pub fn parse(status: &str, stage: Option<&str>) -> Stage {
        match (status, stage) {
            ("draft", _) => Stage::Draft,
            ("returned", _) => Stage::Returned,
            ("in_review", Some(s)) => Stage::Review(s.to_string()),
            ("approved", _) => Stage::Approved,
            ("granted", _) => Stage::Granted,
            ("paid", _) => Stage::Paid,
            ("rejected", _) => Stage::Rejected,
            _ => Stage::Withdrawn,
        }
    }

    pub fn status(&self) -> &'static str {
        match self {
            Stage::Draft => "draft",
            Stage::Returned => "returned",
            Stage::Review(_) => "in_review",
            Stage::Approved => "approved",
            Stage::Granted => "granted",
            Stage::Paid => "paid",
            Stage::Rejected => "rejected",
            Stage::Withdrawn => "withdrawn",
        }
    }
}

/// The role that acts at a review stage; agency stages also need the clause's agency.
pub fn actor_role(stage: &str) -> Role {
    match stage {
        "agency_review" | "fund_due_diligence" | "fund_decision" => Role::Agency,
        "finance_payment" => Role::Finance,
        _ => Role::Committee,
    }
}

/// What a reviewer does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Complete / reviewed: forward to the next stage (at intake, agency and expert stages).
    Pass,
    /// Back to the applicant to complete (reason required).
    Return,
    /// Refuse (reason required).
    Reject,
    /// The committee's decision: approve, optionally with an adjusted amount (reason required then).
    Approve,
    /// The reviewer has a conflict of interest and steps aside.
    Decline,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("application is not under review at a stage this caller acts at")]
    WrongStage,
    #[error("this role does not act at this stage")]
    WrongRole,
    #[error("another agency reviews this clause")]
    WrongAgency,
    #[error("the reviewer declined this application for a conflict of interest")]
    Declined,
    #[error("whoever decided an application may not pay it")]
    TwoPersonRule,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("only the committee's decision approves")]
    NotADecisionStage,
    #[error("an adjusted amount is above what the engine computed")]
    AboveEntitlement,
}

impl WorkflowError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::WrongStage => "application_wrong_stage",
            WorkflowError::WrongRole => "application_wrong_role",
            WorkflowError::WrongAgency => "application_other_agency",
            WorkflowError::Declined => "application_declined_by_you",
            WorkflowError::TwoPersonRule => "application_two_person_rule",
            WorkflowError::ReasonRequired => "reason_required",
            WorkflowError::NotADecisionStage => "application_not_decision_stage",
            WorkflowError::AboveEntitlement => "amount_above_entitlement",
        }
    }
}

/// The reviewer as the workflow sees it.
pub struct Reviewer<'a> {
    pub user_id: &'a str,
    pub role: Role,
    /// For agency users: the agency they belong to.
    pub agency: Option<&'a str>,
}

/// What the caller may see of an application under review: committee, finance and audit see all;
/// an agency user only its own agency's clauses.
pub fn may_read(reviewer: &Reviewer<'_>, clause_agency: Option<&str>) -> bool {
    match reviewer.role {
        Role::Committee | Role::Finance | Role::Auditor => true,
        Role::Agency => reviewer.agency.is_some() && reviewer.agency == clause_agency,
        _ => false,
    }
}

/// Whether `reviewer` may act at `stage` of an application of a clause reviewed by `clause_agency`.
pub fn may_act(reviewer: &Reviewer<'_>, stage: &str, clause_agency: Option<&str>, declined_by: &[String]) -> Result<(), WorkflowError> {
    if reviewer.role != actor_role(stage) {
        return Err(WorkflowError::WrongRole);
    }
    if reviewer.role == Role::Agency && (reviewer.agency.is_none() || reviewer.agency != clause_agency) {
        return Err(WorkflowError::WrongAgency);
    }
    if declined_by.iter().any(|u| u == reviewer.user_id) {
        return Err(WorkflowError::Declined);
    }
    Ok(())
}

/// The outcome of an action at `stage` among `stages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub next: Stage,
    /// The amount decided, when the action decided one.
    pub decided_fen: Option<i64>,
}

/// Applies `action` at review `stage`. `engine_fen` is what the engine computes now (for a
/// clause that computes an amount); `adjusted_fen` an amount the committee sets instead.
pub fn apply(
    stages: &[String],
    stage: &str,
    action: &Action,
    reason: &str,
    engine_fen: Option<i64>,
    adjusted_fen: Option<i64>,
    paid_by_finance: bool,
) -> Result<Outcome, WorkflowError> {
    let pos = stages.iter().position(|s| s == stage).ok_or(WorkflowError::WrongStage)?;
    let reason_given = !reason.trim().is_empty();
    let decision_stage = stage == "committee_decision";
    match action {
        Action::Return | Action::Reject if !reason_given => Err(WorkflowError::ReasonRequired),
        Action::Return => Ok(Outcome {
            next: Stage::Returned,
            decided_fen: None,
        }),
        Action::Reject => Ok(Outcome {
            next: Stage::Rejected,
            decided_fen: None,
        }),
        Action::Decline => Ok(Outcome {
            next: Stage::Review(stage.to_string()),
            decided_fen: None,
        }),
        Action::Pass if decision_stage => Err(WorkflowError::NotADecisionStage),
        Action::Pass => match stages.get(pos + 1) {
            Some(next) if next != "finance_payment" => Ok(Outcome {
                next: Stage::Review(next.clone()),
                decided_fen: None,
            }),
            // A stage list without a committee decision ends at its last review.
            _ => Ok(Outcome {
                next: Stage::Granted,
                decided_fen: None,
            }),
        },
        Action::Approve if !decision_stage => Err(WorkflowError::NotADecisionStage),
        Action::Approve => {
            let decided = match (engine_fen, adjusted_fen) {
                (_, Some(_)) if !reason_given => return Err(WorkflowError::ReasonRequired),
                (Some(e), Some(a)) if a > e => return Err(WorkflowError::AboveEntitlement),
                (Some(_), Some(a)) => Some(a),
                (Some(e), None) => Some(e),
                (None, _) => None,
            };
            let next = match decided {
                Some(fen) if fen > 0 && paid_by_finance => Stage::Approved,
                Some(_) if paid_by_finance => Stage::Rejected,
                _ => Stage::Granted,
            };
            Ok(Outcome {
                next,
                decided_fen: decided,
            })
        }
    }
}

/// The two-person rule: whoever made the committee decision may not pay the application.
pub fn may_pay(payer: &str, decided_by: Option<&str>) -> Result<(), WorkflowError> {
    if decided_by == Some(payer) {
        return Err(WorkflowError::TwoPersonRule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn stages() -> Vec<String> {
        ["committee_intake", "agency_review", "committee_decision", "finance_payment"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn passes_walk_the_stages_and_the_decision_approves_for_payment() {
        let s = stages();
        let o = apply(&s, "committee_intake", &Action::Pass, "", Some(100), None, true).unwrap();
        assert_eq!(o.next, Stage::Review("agency_review".into()));
        let o = apply(&s, "agency_review", &Action::Pass, "", Some(100), None, true).unwrap();
        assert_eq!(o.next, Stage::Review("committee_decision".into()));
        let o = apply(&s, "committee_decision", &Action::Approve, "", Some(100), None, true).unwrap();
        assert_eq!((o.next, o.decided_fen), (Stage::Approved, Some(100)));
    }

    #[test]
    fn an_adjusted_amount_needs_a_reason_and_stays_within_the_entitlement() {
        let s = stages();
        let e = apply(&s, "committee_decision", &Action::Approve, " ", Some(100), Some(80), true).unwrap_err();
        assert_eq!(e.code(), "reason_required");
        let e = apply(&s, "committee_decision", &Action::Approve, "why", Some(100), Some(120), true).unwrap_err();
        assert_eq!(e.code(), "amount_above_entitlement");
        let o = apply(
            &s,
            "committee_decision",
            &Action::Approve,
            "invoice 3 not eligible",
            Some(100),
            Some(80),
            true,
        )
        .unwrap();
        assert_eq!(o.decided_fen, Some(80));
    }

    #[test]
    fn reject_and_return_need_reasons_and_approve_only_at_the_decision() {
        let s = stages();
        assert_eq!(
            apply(&s, "agency_review", &Action::Reject, "", None, None, true)
                .unwrap_err()
                .code(),
            "reason_required"
        );
        assert_eq!(
            apply(&s, "agency_review", &Action::Approve, "x", None, None, true)
                .unwrap_err()
                .code(),
            "application_not_decision_stage"
        );
        assert_eq!(
            apply(&s, "agency_review", &Action::Return, "add the audit report", None, None, true)
                .unwrap()
                .next,
            Stage::Returned
        );
    }

    #[test]
    fn agencies_act_only_on_their_own_clauses_and_decliners_not_at_all() {
        let sci = Reviewer {
            user_id: "u1",
            role: Role::Agency,
            agency: Some("science_technology"),
        };
        assert!(may_act(&sci, "agency_review", Some("science_technology"), &[]).is_ok());
        assert_eq!(
            may_act(&sci, "agency_review", Some("finance"), &[]),
            Err(WorkflowError::WrongAgency)
        );
        assert_eq!(
            may_act(&sci, "committee_decision", Some("science_technology"), &[]),
            Err(WorkflowError::WrongRole)
        );
        assert_eq!(
            may_act(&sci, "agency_review", Some("science_technology"), &["u1".into()]),
            Err(WorkflowError::Declined)
        );
        assert!(!may_read(&sci, Some("finance")));
        assert_eq!(may_pay("u9", Some("u9")), Err(WorkflowError::TwoPersonRule));
        assert!(may_pay("u8", Some("u9")).is_ok());
    }
}

/// One step of an application's progress (办件进度, issue 21 item 2): `submit`, each review
/// stage of its clause, then `done` (办结); and where the application is on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ProgressStep {
    pub step: String,
    /// `done`, `current` (where it is now), `todo`, `stopped` (it ended here: rejected,
    /// withdrawn) or `skipped` (not reached because it ended earlier).
    pub state: String,
}

/// The progress of an application with `status` at `stage`, through its clause's `stages`.
pub fn progress(stages: &[String], status: &str, stage: Option<&str>) -> Vec<ProgressStep> {
    let at = stage.and_then(|s| stages.iter().position(|x| x == s));
    let pay = stages.iter().position(|s| s == "finance_payment");
    let n = stages.len();
    let parsed = Stage::parse(status, stage);
    let stage_state = |i: usize| -> &'static str {
        match (&parsed, at) {
            (Stage::Draft, _) => "todo",
            (Stage::Withdrawn, _) => "skipped",
            (Stage::Returned | Stage::Review(_), Some(a)) if i < a => "done",
            (Stage::Review(_), Some(a)) if i == a => "current",
            (Stage::Returned | Stage::Review(_), _) => "todo",
            (Stage::Approved, _) if Some(i) == pay => "current",
            (Stage::Approved | Stage::Granted | Stage::Paid, _) => "done",
            (Stage::Rejected, Some(a)) if i < a => "done",
            (Stage::Rejected, Some(a)) if i == a => "stopped",
            (Stage::Rejected, Some(_)) => "skipped",
            // Rejected where the stage is not known: at the last stage.
            (Stage::Rejected, None) if i + 1 < n => "done",
            (Stage::Rejected, None) => "stopped",
        }
    };
    let submit = match parsed {
        Stage::Draft | Stage::Returned => "current",
        Stage::Withdrawn => "stopped",
        _ => "done",
    };
    let done = match parsed {
        Stage::Granted | Stage::Paid => "done",
        Stage::Withdrawn | Stage::Rejected => "skipped",
        _ => "todo",
    };
    let mut out = vec![ProgressStep {
        step: "submit".into(),
        state: submit.into(),
    }];
    out.extend(stages.iter().enumerate().map(|(i, s)| ProgressStep {
        step: s.clone(),
        state: stage_state(i).into(),
    }));
    out.push(ProgressStep {
        step: "done".into(),
        state: done.into(),
    });
    out
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    fn states(status: &str, stage: Option<&str>) -> Vec<String> {
        let stages: Vec<String> = ["committee_intake", "agency_review", "committee_decision", "finance_payment"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        progress(&stages, status, stage).into_iter().map(|s| s.state).collect()
    }

    #[test]
    fn each_status_reads_as_steps_done_current_and_to_come() {
        assert_eq!(states("draft", None), ["current", "todo", "todo", "todo", "todo", "todo"]);
        assert_eq!(
            states("in_review", Some("agency_review")),
            ["done", "done", "current", "todo", "todo", "todo"]
        );
        assert_eq!(
            states("returned", Some("agency_review")),
            ["current", "done", "todo", "todo", "todo", "todo"]
        );
        assert_eq!(states("approved", None), ["done", "done", "done", "done", "current", "todo"]);
        assert_eq!(states("paid", None), ["done"; 6]);
        assert_eq!(
            states("rejected", Some("agency_review")),
            ["done", "done", "stopped", "skipped", "skipped", "skipped"]
        );
        assert_eq!(states("withdrawn", None)[0], "stopped");
    }
}
