//! The factor gateway (M2.2): an OpenAI-compatible endpoint in front of community operators'
//! upstream channels. Per-OPC keys with allowed models, request/token rate limits and a
//! monthly budget held by reservation; failover before the first byte; bytes passed through
//! unchanged; every caller-visible request metered exactly into the usage ledger.

pub mod error;
pub mod items;
pub mod proxy;
pub use opchub_domain::ratelimit;
/// Channel secrets at rest: the one secret box of the platform, kept in the domain crate.
pub use opchub_domain::secret;
pub mod usage;

#[cfg(test)]
mod fuzz_tests;

pub use error::GatewayError;
pub use proxy::{Caller, Gateway, GatewayConfig, GatewayResult, Reply};
pub use secret::SecretBox;
