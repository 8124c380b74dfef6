//! Compute and data price items (M2.2). The arithmetic is pure and lives in the ledger crate
//! ([`opchub_ledger::items`]) so that the application layer, which may not depend on the
//! gateway, prices dataset downloads by the same rule; this path stays for the gateway's users.

pub use opchub_ledger::items::*;
