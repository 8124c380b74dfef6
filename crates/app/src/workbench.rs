//! The workbench (工作台, issue 21 item 2): what a signed-in person has to do next, counted
//! from the same use cases the task pages read (so a count and its page agree), the nearest
//! deadlines, and the latest notifications. Read-only.

use crate::applications::{self, ListQuery};
use crate::demands;
use crate::error::AppResult;
use crate::principal::Principal;
use crate::App;
use opchub_domain::Role;
use serde::Serialize;

/// One to-do: what (a catalog key under `workbench.todo.`), how many, and where it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Todo {
    pub key: &'static str,
    pub count: i64,
    pub href: &'static str,
}

/// A deadline: what (a catalog key under `workbench.deadline.`), by when (ms), how many things
/// it concerns, and where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub key: &'static str,
    pub at_ms: i64,
    pub count: i64,
    pub href: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workbench {
    pub todos: Vec<Todo>,
    pub deadlines: Vec<Deadline>,
    /// The latest notifications (at most five).
    pub recent: Vec<opchub_store::notifications::Notification>,
    pub unread: i64,
}

/// Every to-do a workbench may show (their labels are `workbench.todo.<key>`).
pub const TODO_KEYS: &[&str] = &[
    "lines_to_confirm",
    "bills_to_pay",
    "receipts_to_confirm",
    "applications_at_my_stage",
    "applications_overdue",
    "applications_to_finish",
    "batches_to_approve",
    "batches_to_pay",
    "findings_open",
    "findings_to_answer",
    "cooperation_disputes",
    "bill_disputes",
    "tickets_open",
    "channels_to_approve",
    "prices_to_approve",
    "skills_to_review",
    "demands_open",
];

/// Every deadline a workbench may show (`workbench.deadline.<key>`).
pub const DEADLINE_KEYS: &[&str] = &["confirm_lines", "pay_bills"];

fn todo(key: &'static str, count: usize, href: &'static str) -> Todo {
    debug_assert!(TODO_KEYS.contains(&key), "{key} is not in TODO_KEYS");
    Todo {
        key,
        count: i64::try_from(count).unwrap_or(i64::MAX),
        href,
    }
}

/// The caller's workbench.
pub async fn of(app: &App, p: &Principal) -> AppResult<Workbench> {
    let role = p.role();
    let mut todos = vec![];
    let mut deadlines = vec![];
    // Settlement lines awaiting the beneficiary's 意愿确认 (免申即享: M1.1, M2.2, M2.3, M2.4).
    if matches!(role, Role::OpcFounder | Role::CommunityOperator | Role::Enterprise) {
        let mine = crate::settlement::mine(app, p).await?;
        let pending: Vec<_> = mine
            .iter()
            // What the page lets them answer: payable lines of drafts still pending.
            .filter(|m| m.line.confirmation == "pending" && m.batch.status == "draft" && m.line.amount_fen > 0)
            .collect();
        todos.push(todo("lines_to_confirm", pending.len(), "/my/settlements"));
        if let Some(at) = pending.iter().filter_map(|m| m.batch.confirm_until_ms).min() {
            deadlines.push(Deadline {
                key: "confirm_lines",
                at_ms: at,
                count: i64::try_from(pending.len()).unwrap_or(i64::MAX),
                href: "/my/settlements",
            });
        }
    }
    // Bills (M2.2, M2.3): what I owe, and receipts others recorded that I confirm.
    if matches!(role, Role::OpcFounder | Role::CommunityOperator) {
        let bills = crate::bills::list_for(app, p, &crate::bills::BillQuery::default()).await?;
        let parties = crate::bills::parties_of(app, p).await?;
        let to_pay: Vec<_> = bills
            .iter()
            .filter(|b| b.status != "running" && b.outstanding_fen > 0 && parties.contains(&b.payer))
            .collect();
        if role == Role::OpcFounder {
            todos.push(todo("bills_to_pay", to_pay.len(), "/my/bills"));
            // The earliest due date of what it owes (the month's last day plus the days to pay),
            // at 23:59 of that day in Beijing (UTC+8).
            let due = to_pay.iter().filter_map(|b| crate::bills::due_on(&b.month)).min();
            if let Some(at) = due.and_then(|d| d.and_hms_opt(23, 59, 0)) {
                deadlines.push(Deadline {
                    key: "pay_bills",
                    at_ms: at.and_utc().timestamp_millis() - 8 * 3_600_000,
                    count: i64::try_from(to_pay.len()).unwrap_or(i64::MAX),
                    href: "/my/bills",
                });
            }
        }
        let mut to_confirm = 0;
        for b in bills
            .iter()
            .filter(|b| b.status != "running" && b.status != "paid" && parties.contains(&b.payee))
        {
            to_confirm += app
                .store
                .bill_payments(&b.id)
                .await?
                .iter()
                .filter(|x| x.status == "pending" && x.recorded_side == "payer")
                .count();
        }
        todos.push(todo("receipts_to_confirm", to_confirm, "/my/bills"));
    }
    // Applications (M3–M8): drafts of an applicant, the queue of a reviewer.
    if applications::is_reviewer(p) {
        let queue = applications::list_for(app, p, &ListQuery::default()).await?;
        let yours: Vec<_> = queue.iter().filter(|a| a.yours).collect();
        todos.push(todo("applications_at_my_stage", yours.len(), "/applications"));
        let overdue = yours.iter().filter(|a| a.overdue).count();
        if overdue > 0 {
            todos.push(todo("applications_overdue", overdue, "/applications?overdue=true"));
        }
    } else if matches!(role, Role::OpcFounder | Role::CommunityOperator | Role::Enterprise) {
        let q = ListQuery {
            view: Some("mine".into()),
            ..Default::default()
        };
        let mine = applications::list_for(app, p, &q).await?;
        let drafts = mine
            .iter()
            .filter(|a| matches!(a.application.status.as_str(), "draft" | "returned"))
            .count();
        todos.push(todo("applications_to_finish", drafts, "/applications"));
    }
    // Settlement batches (M-wide): drafts for the committee's second signature, approved
    // batches for finance to pay.
    if matches!(role, Role::Committee | Role::Finance) {
        let batches = crate::settlement::batches(app).await?;
        if role == Role::Committee {
            let drafts = batches.iter().filter(|b| b.status == "draft").count();
            todos.push(todo("batches_to_approve", drafts, "/committee/settlements"));
        } else {
            let approved = batches.iter().filter(|b| b.status == "approved").count();
            todos.push(todo("batches_to_pay", approved, "/committee/settlements"));
        }
    }
    // Integrity findings (issue 18): open ones for the committee and the auditor; a flagged
    // party's findings it has not answered.
    if matches!(role, Role::Committee | Role::Auditor) {
        let open = crate::integrity::findings_for(app, p, None)
            .await?
            .iter()
            .filter(|f| f.status == "open")
            .count();
        todos.push(todo("findings_open", open, "/integrity"));
    } else if matches!(role, Role::OpcFounder | Role::CommunityOperator | Role::Enterprise) {
        let unanswered = crate::integrity::findings_for(app, p, None)
            .await?
            .iter()
            .filter(|f| f.status == "open" && f.statement.is_none())
            .count();
        if unanswered > 0 {
            todos.push(todo("findings_to_answer", unanswered, "/integrity"));
        }
    }
    // Disputes the committee decides: cooperation payments (M2.4) and bills (M2.2, M2.3).
    if role == Role::Committee {
        let coop = demands::disputes_for(app, true).await?.len();
        todos.push(todo("cooperation_disputes", coop, "/cooperations/review"));
        let bills = crate::bills::disputes_for(app, true).await?.len();
        todos.push(todo("bill_disputes", bills, "/my/bills"));
    }
    // Service tickets (M4.3): the specialist's open ones; the founder's awaiting an answer.
    if role == Role::Specialist {
        let (tickets, _) = crate::registry::specialist_queue(app, p).await?;
        let open = tickets.iter().filter(|t| t.status != "closed").count();
        todos.push(todo("tickets_open", open, "/specialist/queue"));
    }
    if role == Role::OpcFounder {
        if let Some(opc) = app.store.opc_of_founder(&p.user.id).await? {
            let open = app
                .store
                .tickets_of_opc(&opc.id)
                .await?
                .iter()
                .filter(|t| t.status != "closed")
                .count();
            todos.push(todo("tickets_open", open, "/my/company"));
        }
    }
    // The platform operator approves channels, price tables (issue 18 item 3) and skills (M2.3).
    if role == Role::PlatformOperator {
        let channels = app.store.channels(None).await?.iter().filter(|c| c.status == "pending").count();
        todos.push(todo("channels_to_approve", channels, "/gateway/channels"));
        let tables = app.store.price_tables(None).await?.iter().filter(|t| t.status == "pending").count();
        todos.push(todo("prices_to_approve", tables, "/gateway/channels"));
        let skills = crate::skills::publish::review_queue_for(app).await?.len();
        todos.push(todo("skills_to_review", skills, "/admin/skills"));
    }
    // Enterprise (M2.4): its demands open for proposals.
    if role == Role::Enterprise {
        let demands = demands::my_demands_for(app, p).await?;
        let open = demands.iter().filter(|d| d.status == "open").count();
        todos.push(todo("demands_open", open, "/demands/mine"));
    }
    deadlines.sort_by_key(|d| d.at_ms);
    let notes = demands::notifications_for(app, p).await?;
    Ok(Workbench {
        todos,
        deadlines,
        recent: notes.items.into_iter().take(5).collect(),
        unread: notes.unread,
    })
}

/// How many notifications the caller has not read (the header's badge).
pub async fn unread(app: &App, p: &Principal) -> AppResult<i64> {
    Ok(app.store.unread_notifications(&p.user.id).await?)
}
