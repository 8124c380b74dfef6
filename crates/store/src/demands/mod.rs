//! Demand board storage (M2.4): demands published by verified district companies, OPC
//! proposals with question threads, cooperations (agreed amount, milestones, amendments both
//! sides confirm), payments recorded by the company and confirmed by the OPC, disputes
//! resolved by a committee reviewer, two-way ratings, S3 flags for likely double claims and
//! in-app notifications. Every state change is one transaction with its audit entry; state
//! moves are conditional UPDATEs, so two concurrent accepts (or confirms) cannot both win.
//!
//! Only a payment confirmed by both sides (the company records it, the OPC confirms it, or a
//! committee reviewer upholds it after a dispute) becomes one `cooperation.payment` ledger
//! event; [`Store::post_payment`] appends it with the payment id as the source event id, so
//! the event exists exactly once however often posting is retried.
//!
//! One file per aggregate: [`demand`] (demands and who may publish), [`attachment`] (stored
//! files), [`proposal`] (proposals and acceptance), [`thread`] (question threads),
//! [`cooperation`] (cooperations, amendments, completion), [`payment`] (payments, their
//! ledger events, S3 flags), [`dispute`], [`rating`] (ratings and reputation) and
//! [`matching_input`] (what matching's indexes are built from); in-app
//! notifications are [`crate::notifications`]. Input is validated before it reaches the store
//! (`opchub_app::demands`); the store keeps the rules that depend on stored state.

mod attachment;
mod cooperation;
mod demand;
mod dispute;
pub mod matching_input;
mod payment;
mod proposal;
mod rating;
mod thread;

pub(crate) use crate::notifications::notify;
pub use crate::notifications::Notification;
pub(crate) use attachment::{put_file, sha_of};
pub use attachment::{Attachment, FileIn};
pub use cooperation::{Amendment, Cooperation, Milestone};
pub use demand::{Demand, DemandFilter, Eligibility, NewDemand, Publisher};
pub use dispute::Dispute;
pub use matching_input::{DemandDoc, OpcProfile, SkillSignal};
pub use payment::{Flag, NewPayment, Payment};
pub use proposal::Proposal;
pub use rating::{Rating, Reputation};
pub use thread::Message;

// Every demand-board state change writes its audit entry through the one helper.
use crate::audit::record_after as audit;
use crate::{now_ms, StoreError};

/// The ledger source of cooperation payments.
pub const LEDGER_SOURCE: &str = opchub_ledger::metering::COOPERATION_SOURCE;

/// Demand categories: the Skill Store's categories and the three theme packages (M4.2).
pub const CATEGORIES: [&str; 6] = [
    "agent_tool",
    "aigc_production",
    "vertical_plugin",
    "opc_llm_dev",
    "opc_agent_dev",
    "opc_digital_human",
];

pub const MAX_TAGS: usize = 10;
/// Largest amount accepted anywhere on the board: 100 million yuan.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;
/// Attachments and invoice files: at most this many bytes, of these types.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
pub const FILE_TYPES: [&str; 4] = ["application/pdf", "image/png", "image/jpeg", "text/plain"];

fn beijing_today() -> String {
    opchub_ledger::event::day_of(now_ms())
}

fn invalid(field: &'static str, code: &'static str) -> StoreError {
    StoreError::Invalid { field, code }
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(v: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()
}
