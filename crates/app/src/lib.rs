//! The application layer of OPC Hub: every use case, called alike by the JSON API, the pages,
//! `/mcp` and the CLI. A use case takes the [`App`] (the store and the shared services), the
//! acting [`Principal`](principal::Principal) where a caller matters, and plain input; it
//! checks who may act (ownership rules in [`access`]), applies the pure rules of `opchub_domain`,
//! `opchub_policy`, `opchub_funds`, `opchub_skills` and `opchub_ledger`, writes through the store
//! and keeps the caches right. It returns its own error ([`error`]), never an HTTP answer: this
//! crate depends on no HTTP framework (a test in `tests/layering.rs` holds that).

pub mod access;
pub mod accounts;
pub mod applications;
// Monthly bills and their payments (issue 19)
pub mod bills;
pub mod clients;
pub mod crypto;
pub mod datasets;
pub mod demands;
pub mod error;
pub mod files;
pub mod gateway;
pub mod integrity;
pub mod keys;
pub mod ledger;
pub mod matching;
// Party facts: registrations, agency membership, bank accounts (issue 17)
pub mod party_facts;
pub mod persons;
pub mod policy;
pub mod principal;
pub mod records;
pub mod registry;
pub mod settlement;
pub mod skills;
pub mod statements;
pub mod throttle;
pub mod workbench;

pub use error::{AppError, AppResult, Coded, ErrorKind};
pub use principal::{Principal, Via};

use opchub_store::Store;
use std::sync::Arc;

/// The store and the services every use case shares. Cheap to clone (every field is shared).
#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// The usage ledger's group-commit writer (absent only in tools that do not append).
    pub ledger: Option<opchub_store::ledger::LedgerWriter>,
    /// The measures in force (the built-in file, or one the committee adopted).
    pub policy: Option<Arc<opchub_policy::Policy>>,
    /// Demand-board matching indexes (M2.4), rebuilt when their data changes.
    pub matching: Arc<matching::MatchingCache>,
    /// Where application evidence and demand attachments are stored, content-addressed (F2).
    pub evidence: Arc<files::FileStore>,
    /// Where published datasets are stored, content-addressed (M2.2).
    pub datasets: Arc<files::FileStore>,
    /// API-key authentications of the last seconds (the gateway's and /mcp's hot path).
    pub keys: Arc<keys::KeyCache>,
    /// The Skill Store's runtime (M2.3): upstream clients, the search index, cached counts.
    pub skills: Arc<skills::SkillHub>,
    /// Failed sign-ins per account and client address (in memory, issue 20).
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// The key of the identity hashes (issue 18 item 1); people cannot be recorded without it.
    pub identity_key: Option<crypto::IdentityKey>,
    /// Related-party answers of the last seconds (every skill call asks, M2.3).
    pub related: Arc<persons::RelatedCache>,
    /// The clients seen behind each API key (issue 18 item 1, usage ties).
    pub clients: Arc<clients::ClientSampler>,
    /// `serve --demo` only: the base URL of the built-in demo upstream on loopback, the one
    /// private address a gateway channel may name outside test mode (M2.2). `None` otherwise.
    pub demo_upstream: Option<String>,
}

impl App {
    pub fn new(store: Store) -> Self {
        App {
            store,
            ledger: None,
            policy: opchub_policy::Policy::embedded().ok().map(Arc::new),
            matching: {
                let m: Arc<matching::MatchingCache> = Arc::default();
                // Published skills and their qualified users feed the demand board's matching.
                m.set_enricher(Arc::new(matching::SkillEnricher));
                m
            },
            keys: Arc::default(),
            skills: Arc::new(skills::SkillHub::new(skills::SkillsConfig::default())),
            login_throttle: Arc::default(),
            identity_key: None,
            related: Arc::default(),
            clients: Arc::default(),
            demo_upstream: None,
            // Tools and tests without a data directory keep files in a per-process temp dir;
            // `serve` puts them under the data directory (`with_evidence_dir`).
            evidence: Arc::new(files::FileStore::local(
                std::env::temp_dir().join(format!("opchub-evidence-{}", std::process::id())),
            )),
            datasets: Arc::new(files::FileStore::local(
                std::env::temp_dir().join(format!("opchub-datasets-{}", std::process::id())),
            )),
        }
    }

    /// The Skill Store with these settings (a fresh runtime: no clients, caches or index yet).
    pub fn with_skills(mut self, config: skills::SkillsConfig) -> Self {
        self.skills = Arc::new(skills::SkillHub::new(config));
        self
    }

    /// Admits exactly this base URL (the demo's built-in upstream on loopback) for gateway
    /// channels outside test mode; every other private address stays refused.
    pub fn with_demo_upstream(mut self, base_url: impl Into<String>) -> Self {
        self.demo_upstream = Some(base_url.into());
        self
    }
}
