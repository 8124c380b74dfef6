//! Applications and funds (issue 8): the clauses paid or granted on application (M1, M3, M5, M6,
//! M7, M8), their forms generated from the policy file (facts and evidence), the staged review of
//! F1 (committee intake → agency review → committee decision → finance payment), evidence checks
//! (type, size, SHA-256 — F2) and recovery (F2, S5): what the engine pays when a document was
//! false. Pure: the store and the web layer call in here; nothing here does I/O.

pub mod evidence;
pub mod forms;
pub mod recovery;
pub mod schedule;
pub mod workflow;

pub use forms::{form_spec, read_form, Field, FieldKind, FormError, FormSpec};
pub use workflow::{Action, Stage, WorkflowError};

/// The clauses applied for (the rest are settled from the ledger, 免申即享, or pay nothing).
pub const APPLICATION_CLAUSES: &[&str] = &[
    "M1.1", "M1.2", "M3.1", "M3.2", "M3.3", "M5.1", "M6.1", "M6.2", "M6.3", "M7.1", "M7.2", "M8.1",
];

/// The clause family an application belongs to (`M3.2` → `M3`), for statistics.
pub fn family(clause: &str) -> &str {
    clause.split('.').next().unwrap_or(clause)
}
