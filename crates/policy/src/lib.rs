//! `opchub-policy`: the Fengtai OPC measures as versioned rules (issue 6, the pure part). It parses
//! `policy/measures.toml`, evaluates one paying clause for one beneficiary with a full trace, and
//! runs the policy's data test cases. No I/O: every input arrives as a string or a value.

pub mod amount;
pub mod cases;
pub mod error;
pub mod eval;
pub mod facts;
pub mod model;

pub use error::PolicyError;
pub use eval::{budget_factor, evaluate, largest_remainder, msg, Decision, Msg, TraceStep};
pub use facts::{Beneficiary, EvalInput, Fact, Facts};
pub use model::{CapScope, Clause, OverlapMode, Param, ParamValue, Policy, Rule, Source, Window};

/// The policy file shipped with this build.
pub const EMBEDDED_MEASURES: &str = include_str!("../../../policy/measures.toml");

#[cfg(test)]
mod fuzz_tests;
