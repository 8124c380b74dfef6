//! Pure domain types of OPC Hub: identifiers, money, zones, roles and theme packages.
//! This crate owns validation of values that come in from the edge; it does no I/O and
//! knows nothing of HTTP or databases.

pub mod error;
pub mod grant;
pub mod identity;
pub mod industry;
pub mod input;
pub mod money;
pub mod ratelimit;
pub mod registry;
pub mod role;
pub mod secret;
pub mod text;
pub mod time;
pub mod uscc;

pub use identity::{MobilePhone, ResidentId};
pub use industry::{IndustryCode, IndustryCodeError};
pub use money::{ExactFen, Money, MoneyError};
pub use registry::{UnknownZone, WorkstationStatus, Zone};
pub use role::{Role, UnknownRole};
pub use uscc::{Uscc, UsccError};

#[cfg(test)]
mod fuzz_tests;
