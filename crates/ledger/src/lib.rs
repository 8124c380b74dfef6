//! The usage ledger's pure core: events, validation, canonical bytes, the RFC 6962 Merkle tree
//! and signed checkpoints. No I/O: the store crate persists what this crate computes.

pub mod bills;
pub mod checkpoint;
pub mod event;
pub mod items;
pub mod merkle;
pub mod metering;
