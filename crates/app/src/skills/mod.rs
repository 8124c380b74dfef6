//! The Skill Store's runtime and use cases (M2.3): publishing with automated checks
//! ([`publish`]), upstream calls (the publisher's MCP server through the official Rust SDK's
//! client, or an HTTP tool: [`upstream`]), the counting of every caller-visible call into the
//! ledger ([`calls`]), rug-pull refresh ([`refresh`]), search ([`search`]) and the listings,
//! invokers' actions and dashboards ([`usage`]). Shared by the JSON API, `/mcp`, the pages and
//! the CLI; the runtime state lives in [`SkillHub`] (`App::skills`).

pub mod calls;
pub mod publish;
pub mod refresh;
pub mod search;
pub mod upstream;
pub mod usage;

pub use calls::{call, CallRequest, CallResult};
pub use publish::*;
pub use refresh::{refresh_all, refresh_skill, spawn_refresh, RefreshResult};
pub use search::{SearchIndex, SearchQuery};
pub use upstream::{fetch_mcp_tools, fetch_openapi, parse_openapi, text_block, UpstreamError, UpstreamResult, Upstreams};
pub use usage::*;

use crate::{App, AppError, AppResult, ErrorKind};
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use opchub_store::skills::{Skill, SkillCounts, SkillVersion};
use opchub_store::Store;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

crate::module_errors! {
    /// What the Skill Store (M2.3) refuses.
    pub enum SkillError {
        /// The key may not call this skill.
        NotAllowed => (Forbidden, "skill_not_allowed"),
        /// Too many calls per minute for this key.
        RateLimited => (RateLimited, "rate_limit_exceeded"),
        /// The key's monthly budget does not cover the call.
        BudgetExceeded => (RateLimited, "budget_exceeded"),
        /// No listed skill offers this tool.
        UnknownTool => (NotFound, "skill_unknown_tool"),
        /// The skill's live version has no upstream to call.
        NotCallable => (Conflict, "skill_not_callable"),
        /// Only a party that used the skill may rate it.
        NotUsed => (Forbidden, "skill_not_used"),
        /// The skill has no package to install.
        NoPackage => (NotFound, "skill_no_package"),
        /// The skill has no approved version.
        NotListed => (Gone, "skill_not_listed"),
        /// The skill was delisted.
        Delisted => (Gone, "skill_delisted"),
    }
}

/// The ledger source of skill events.
pub const SOURCE: &str = opchub_store::skills::SOURCE;
/// Separates a skill's slug from its tool's name on `/mcp`.
pub const NS: &str = "__";

#[derive(Debug, Clone)]
pub struct SkillsConfig {
    /// Test mode: publishers may point at loopback and private addresses. Never in production:
    /// the platform must not become a way into its own network.
    pub allow_private_upstreams: bool,
    /// Time allowed for one upstream call.
    pub call_timeout: Duration,
    /// How often the background task re-fetches remote tool lists (rug-pull check, M2.3; a
    /// setting of `serve`, default [`DEFAULT_REFRESH_INTERVAL`]).
    pub refresh_interval: Duration,
}

/// The rug-pull check's default period (issue 18 item 6): ten minutes, so a changed tool list
/// is noticed within minutes rather than an hour.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

impl Default for SkillsConfig {
    fn default() -> Self {
        SkillsConfig {
            allow_private_upstreams: false,
            call_timeout: Duration::from_secs(30),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

impl SkillsConfig {
    pub fn testing() -> Self {
        SkillsConfig {
            allow_private_upstreams: true,
            call_timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }
}

/// A refusal before anything is called or counted.
pub fn refusal(kind: ErrorKind, f: &Finding) -> AppError {
    AppError::new(kind, &format!("skill_{}", f.code)).with_detail(f.detail.clone())
}

/// (version, price per call in fen) of each listed skill.
pub type Prices = HashMap<String, (String, i64)>;
type Cached<T> = RwLock<Option<T>>;

/// Runtime state of the store: upstream clients, the search index, cached counts.
pub struct SkillHub {
    pub config: SkillsConfig,
    /// Resolves publisher host names at connect time, dropping non-public addresses outside
    /// test mode (DNS rebinding, M2.3).
    pub(crate) resolver: opchub_skills::net::GuardedResolver,
    /// HTTP tools and OpenAPI documents (pooled).
    pub(crate) http: Result<reqwest_publisher::Client, Finding>,
    mcp: Upstreams,
    index: RwLock<Option<Arc<SearchIndex>>>,
    prices: Cached<Arc<Prices>>,
    counts: Cached<(Instant, Arc<HashMap<String, SkillCounts>>)>,
    /// Approved versions by id, with their tools and compiled argument schemas. What a call
    /// uses of a version (tools, endpoint, price, hashes) never changes once it is created, and
    /// whether it is live is read from the skill on every call, so entries need no invalidation.
    versions: Mutex<HashMap<String, Arc<LiveVersion>>>,
    /// Skill calls per API key per minute (the key's `rpm` limit, issue 19 item 1).
    pub(crate) rate: opchub_domain::ratelimit::RateLimiter,
}

/// Most versions [`SkillHub::live_version`] keeps (cleared when full).
const VERSION_CACHE: usize = 4096;

/// A version as calls use it: its pinned tools, each with its compiled input schema.
pub struct LiveVersion {
    pub version: SkillVersion,
    pub tools: Vec<Tool>,
    /// Per tool (same order): the compiled schema, or why it does not compile.
    validators: Vec<Result<jsonschema::Validator, Finding>>,
}

impl LiveVersion {
    pub fn new(version: SkillVersion) -> Self {
        let tools = pinned_tools(&version);
        let validators = tools
            .iter()
            .map(|t| jsonschema::validator_for(&t.input_schema).map_err(|e| Finding::new("schema_invalid", e.to_string())))
            .collect();
        LiveVersion {
            version,
            tools,
            validators,
        }
    }

    /// The tool named `name` and its compiled schema.
    fn tool(&self, name: &str) -> Option<(&Tool, &Result<jsonschema::Validator, Finding>)> {
        self.tools.iter().zip(&self.validators).find(|(t, _)| t.name == name)
    }
}

impl SkillHub {
    pub fn new(config: SkillsConfig) -> Self {
        let resolver = opchub_skills::net::GuardedResolver::new(config.allow_private_upstreams);
        let http = opchub_skills::net::publisher_client(&resolver, config.call_timeout, true);
        // Connections to an MCP publisher are kept for the next call too (measured: a new TCP
        // connection per `tools/call` was the largest cost of a call through `/mcp`).
        let mcp_http = opchub_skills::net::publisher_client(&resolver, config.call_timeout, true);
        if let Err(f) = http.as_ref().and(mcp_http.as_ref()) {
            tracing::error!(code = %f.code, detail = %f.detail, "the HTTP client for publisher calls could not be built");
        }
        SkillHub {
            config,
            resolver,
            http,
            mcp: Upstreams::new(mcp_http),
            index: RwLock::new(None),
            prices: RwLock::new(None),
            counts: RwLock::new(None),
            versions: Mutex::new(HashMap::new()),
            rate: Default::default(),
        }
    }

    /// Skills changed: the search index is rebuilt on the next search.
    pub fn invalidate(&self) {
        if let Ok(mut i) = self.index.write() {
            *i = None;
        }
        if let Ok(mut p) = self.prices.write() {
            *p = None;
        }
        if let Ok(mut c) = self.counts.write() {
            *c = None;
        }
    }

    /// A call or rating changed the public counts.
    pub fn invalidate_counts(&self) {
        if let Ok(mut c) = self.counts.write() {
            *c = None;
        }
    }

    pub(crate) fn upstreams(&self) -> &Upstreams {
        &self.mcp
    }

    /// Public counts of every skill (cached for two seconds).
    pub async fn counts(&self, store: &Store) -> AppResult<Arc<HashMap<String, SkillCounts>>> {
        if let Ok(g) = self.counts.read() {
            if let Some((at, c)) = g.as_ref() {
                if at.elapsed() < Duration::from_secs(2) {
                    return Ok(c.clone());
                }
            }
        }
        let c = Arc::new(store.skill_counts().await?);
        if let Ok(mut g) = self.counts.write() {
            *g = Some((Instant::now(), c.clone()));
        }
        Ok(c)
    }

    /// (version, price) of every listed skill (rebuilt with the index).
    pub async fn prices(&self, store: &Store) -> AppResult<Arc<Prices>> {
        if let Ok(g) = self.prices.read() {
            if let Some(p) = g.as_ref() {
                return Ok(p.clone());
            }
        }
        let p = Arc::new(store.listed_prices().await?);
        if let Ok(mut g) = self.prices.write() {
            *g = Some(p.clone());
        }
        Ok(p)
    }

    /// The live version of a listed skill (cached by version id); a delisted or never-approved
    /// skill is refused, as by [`live_version`].
    pub async fn live_version(&self, store: &Store, skill: &Skill) -> AppResult<Arc<LiveVersion>> {
        let Some(id) = &skill.live_version_id else {
            return Err(live_version(store, skill)
                .await
                .err()
                .unwrap_or_else(|| AppError::from(SkillError::NotListed)));
        };
        if let Some(v) = self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(v.clone());
        }
        let v = Arc::new(LiveVersion::new(store.skill_version(id).await?));
        let mut map = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= VERSION_CACHE {
            map.clear();
        }
        map.insert(id.clone(), v.clone());
        Ok(v)
    }
}

/// The party a user acts for: their OPC, else the user (as the gateway bills). Cached for a
/// moment with the key authentications (`App::keys`): every skill call asks.
pub async fn party_of(app: &App, user_id: &str) -> AppResult<String> {
    Ok(crate::keys::billing_party(app, user_id).await?)
}

/// Tools pinned by a version.
pub fn pinned_tools(v: &SkillVersion) -> Vec<Tool> {
    serde_json::from_value(v.tools.clone()).unwrap_or_default()
}

/// Validates arguments against the tool's input schema.
pub fn validate_arguments(tool: &Tool, args: &Map<String, Value>) -> Result<(), Finding> {
    let validator = jsonschema::validator_for(&tool.input_schema).map_err(|e| Finding::new("schema_invalid", e.to_string()))?;
    validate_with(&validator, args)
}

fn validate_with(validator: &jsonschema::Validator, args: &Map<String, Value>) -> Result<(), Finding> {
    let instance = Value::Object(args.clone());
    let errors: Vec<String> = validator.iter_errors(&instance).take(3).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Finding::new("arguments_invalid", errors.join("; ")))
    }
}

/// The live version of a listed skill; a delisted or never-approved skill is refused.
pub async fn live_version(store: &Store, skill: &Skill) -> AppResult<SkillVersion> {
    match &skill.live_version_id {
        Some(v) => Ok(store.skill_version(v).await?),
        None => {
            let delisted = store.skill_versions(&skill.id).await?.iter().any(|v| v.status == "delisted");
            Err(if delisted { SkillError::Delisted } else { SkillError::NotListed }.into())
        }
    }
}
