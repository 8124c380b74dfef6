//! The Skill Store's runtime (M2.3) lives in the application layer
//! ([`opchub_app::skills`]: publishing checks, upstream clients, counting, refresh, search);
//! re-exported here for the handlers and for callers that name it by its old path.

pub use opchub_app::skills::*;
