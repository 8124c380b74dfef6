//! The Skill Store's runtime (M2.3): publishing with automated checks, upstream calls (the
//! publisher's MCP server through the official Rust SDK's client, or an HTTP tool), the
//! counting of every caller-visible call into the ledger, rug-pull refresh and search.
//! Shared by the JSON API (`api/skills.rs`), `/mcp` (`mcp.rs`) and the pages.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;
use opchub_ledger::event::{NewEvent, Origin};
use opchub_skills::tools::Tool;
use opchub_skills::Finding;
use opchub_store::ledger::{Item, Outcome};
use opchub_store::skills::{Skill, SkillCall, SkillCounts, SkillVersion};
use opchub_store::Store;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The ledger source of skill events.
pub const SOURCE: &str = "skills";
/// Separates a skill's slug from its tool's name on `/mcp`.
pub const NS: &str = "__";

#[derive(Debug, Clone)]
pub struct SkillsConfig {
    /// Test mode: publishers may point at loopback and private addresses. Never in production:
    /// the platform must not become a way into its own network.
    pub allow_private_upstreams: bool,
    /// Time allowed for one upstream call.
    pub call_timeout: Duration,
    /// How often the background task re-fetches remote tool lists (rug-pull check).
    pub refresh_interval: Duration,
}

impl Default for SkillsConfig {
    fn default() -> Self {
        SkillsConfig {
            allow_private_upstreams: false,
            call_timeout: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(3600),
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
pub fn refusal(status: StatusCode, f: &Finding) -> ApiError {
    ApiError::new(status, &format!("skill_{}", f.code)).with_detail(f.detail.clone())
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
    mcp: crate::mcp::Upstreams,
    index: RwLock<Option<Arc<SearchIndex>>>,
    prices: Cached<Arc<Prices>>,
    counts: Cached<(Instant, Arc<HashMap<String, SkillCounts>>)>,
    service: Mutex<Option<crate::mcp::Service>>,
    /// Approved versions by id, with their tools and compiled argument schemas. What a call
    /// uses of a version (tools, endpoint, price, hashes) never changes once it is created, and
    /// whether it is live is read from the skill on every call, so entries need no invalidation.
    versions: Mutex<HashMap<String, Arc<LiveVersion>>>,
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
        let mcp_http = opchub_skills::net::publisher_client(&resolver, config.call_timeout, false);
        if let Err(f) = http.as_ref().and(mcp_http.as_ref()) {
            tracing::error!(code = %f.code, detail = %f.detail, "the HTTP client for publisher calls could not be built");
        }
        SkillHub {
            config,
            resolver,
            http,
            mcp: crate::mcp::Upstreams::new(mcp_http),
            index: RwLock::new(None),
            prices: RwLock::new(None),
            counts: RwLock::new(None),
            service: Mutex::new(None),
            versions: Mutex::new(HashMap::new()),
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

    pub(crate) fn mcp_service(&self) -> crate::mcp::Service {
        let mut guard = self.service.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert_with(crate::mcp::service).clone()
    }

    pub(crate) fn upstreams(&self) -> &crate::mcp::Upstreams {
        &self.mcp
    }

    /// Public counts of every skill (cached for two seconds).
    pub async fn counts(&self, store: &Store) -> Result<Arc<HashMap<String, SkillCounts>>, ApiError> {
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
    pub async fn prices(&self, store: &Store) -> Result<Arc<Prices>, ApiError> {
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
    pub async fn live_version(&self, store: &Store, skill: &Skill) -> Result<Arc<LiveVersion>, ApiError> {
        let Some(id) = &skill.live_version_id else {
            return Err(live_version(store, skill)
                .await
                .err()
                .unwrap_or_else(|| ApiError::new(StatusCode::GONE, "skill_not_listed")));
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

    async fn index(&self, store: &Store) -> Result<Arc<SearchIndex>, ApiError> {
        if let Ok(g) = self.index.read() {
            if let Some(i) = g.as_ref() {
                return Ok(i.clone());
            }
        }
        let skills = store.skills(true).await?;
        let idx = Arc::new(SearchIndex::build(skills));
        if let Ok(mut g) = self.index.write() {
            *g = Some(idx.clone());
        }
        Ok(idx)
    }

    /// Listed skills matching every token of `q` (all when empty) and the filters, ranked by
    /// distinct qualified invokers, then rating, then name. Works on positions in the in-memory
    /// index; only the returned page of skills is cloned.
    pub async fn search(&self, store: &Store, q: &SearchQuery) -> Result<Vec<(Skill, SkillCounts)>, ApiError> {
        let idx = self.index(store).await?;
        let counts = self.counts(store).await?;
        let limit = q.limit.unwrap_or(50).clamp(1, 200);
        let (kind, category, tag) = (nonempty(&q.kind), nonempty(&q.category), nonempty(&q.tag));
        // The counts of a position (few skills have any: look those up once, not per hit).
        let mut counted: Vec<Option<&SkillCounts>> = vec![None; idx.skills.len()];
        for (id, c) in counts.iter() {
            if let Some(&i) = idx.position.get(id) {
                if let Some(slot) = counted.get_mut(i) {
                    *slot = Some(c);
                }
            }
        }
        // Rank key: more distinct qualified invokers, then higher rating, then the position
        // (the index is in name order).
        let key = |i: usize| {
            let c = counted.get(i).copied().flatten();
            (
                std::cmp::Reverse(c.map_or(0, |c| c.distinct_qualified_invokers)),
                std::cmp::Reverse(c.map_or(0, |c| c.rating_x100)),
                i,
            )
        };
        let mut hits: Vec<usize> = idx
            .matching_positions(&q.q.clone().unwrap_or_default())
            .into_iter()
            .filter(|&i| {
                idx.skills.get(i).is_some_and(|s| {
                    kind.is_none_or(|k| s.kind == k)
                        && category.is_none_or(|c| s.category == c)
                        && tag.is_none_or(|t| s.tags.iter().any(|x| x == t))
                })
            })
            .collect();
        if hits.len() > limit {
            hits.select_nth_unstable_by_key(limit - 1, |&i| key(i));
            hits.truncate(limit);
        }
        hits.sort_unstable_by_key(|&i| key(i));
        Ok(hits
            .into_iter()
            .filter_map(|i| {
                let c = counted.get(i).copied().flatten().cloned().unwrap_or_default();
                idx.skills.get(i).map(|s| (s.clone(), c))
            })
            .collect())
    }
}

fn nonempty(f: &Option<String>) -> Option<&str> {
    f.as_deref().filter(|v| !v.is_empty())
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Words in Chinese or English.
    pub q: Option<String>,
    /// `mcp_server`, `http_tool`, `agent_skill`, `aigc_app`.
    pub kind: Option<String>,
    /// `agent_tool`, `aigc_production`, `vertical_plugin`.
    pub category: Option<String>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
}

/// An inverted index of the listed skills' names, summaries, tags and slugs (jieba tokens).
/// Skills are kept in name order (ties in the order given), so a position is also the name rank.
pub struct SearchIndex {
    skills: Vec<Skill>,
    /// Skill id → position.
    position: HashMap<String, usize>,
    /// Token → positions of the skills that have it, ascending.
    postings: HashMap<String, Vec<usize>>,
}

impl SearchIndex {
    pub fn build(mut skills: Vec<Skill>) -> Self {
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        let mut postings: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in skills.iter().enumerate() {
            let text = format!("{} {} {} {}", s.name, s.summary, s.tags.join(" "), s.slug);
            let set: HashSet<String> = opchub_domain::text::tokens(&text).into_iter().collect();
            for t in set {
                postings.entry(t).or_default().push(i);
            }
        }
        let position = skills.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        SearchIndex {
            skills,
            position,
            postings,
        }
    }

    /// Positions (ascending) of the skills that have every token of `q`; all when it has none.
    fn matching_positions(&self, q: &str) -> Vec<usize> {
        let toks: HashSet<String> = opchub_domain::text::tokens(q).into_iter().collect();
        if toks.is_empty() {
            return (0..self.skills.len()).collect();
        }
        let mut lists: Vec<&[usize]> = Vec::with_capacity(toks.len());
        for t in &toks {
            match self.postings.get(t) {
                Some(l) => lists.push(l),
                None => return vec![],
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else { return vec![] };
        // Walk the shortest list; the others are sorted, so each is searched from where the
        // previous match left off.
        let mut from = vec![0usize; rest.len()];
        first
            .iter()
            .copied()
            .filter(|i| {
                rest.iter().zip(from.iter_mut()).all(|(l, f)| {
                    let tail = l.get(*f..).unwrap_or_default();
                    match tail.binary_search(i) {
                        Ok(k) => {
                            *f += k + 1;
                            true
                        }
                        Err(k) => {
                            *f += k;
                            false
                        }
                    }
                })
            })
            .collect()
    }

    /// The skills that have every token of `q` (all when it has none), in name order.
    pub fn matching(&self, q: &str) -> Vec<&Skill> {
        self.matching_positions(q).into_iter().filter_map(|i| self.skills.get(i)).collect()
    }
}

/// The party a user acts for: their OPC, else the user (as the gateway bills). Cached for a
/// moment with the key authentications (`AppState::keys`): every skill call asks.
pub async fn party_of(s: &AppState, user_id: &str) -> Result<String, ApiError> {
    Ok(opchub_app::keys::billing_party(s, user_id).await?)
}

/// Tools pinned by a version.
pub fn pinned_tools(v: &SkillVersion) -> Vec<Tool> {
    serde_json::from_value(v.tools.clone()).unwrap_or_default()
}

/// Fetches the tool list of a publisher's MCP server (for pinning and refresh).
pub async fn fetch_mcp_tools(s: &AppState, url: &str) -> Result<Vec<Tool>, Finding> {
    opchub_skills::net::check_resolved(url, s.skills.config.allow_private_upstreams).await?;
    s.skills
        .upstreams()
        .list_tools(url, s.skills.config.call_timeout)
        .await
        .map_err(|f| s.skills.resolver.refused(url).map(|p| p.finding()).unwrap_or(f))
}

/// Fetches an HTTP tool's OpenAPI document from the URL it was published by (for pinning and
/// refresh): the address rule at once, the guarded resolver on connect, at most
/// [`opchub_skills::openapi::MAX_DOC_BYTES`].
pub async fn fetch_openapi(s: &AppState, url: &str) -> Result<String, Finding> {
    opchub_skills::net::check_resolved(url, s.skills.config.allow_private_upstreams).await?;
    let http = s.skills.http.as_ref().map_err(Clone::clone)?;
    let failed = |e: &reqwest_publisher::Error| match UpstreamError::of(e) {
        UpstreamError::Refused(f) => f,
        UpstreamError::Timeout => Finding::new("openapi_fetch_failed", "timeout"),
        UpstreamError::Failed(m) => Finding::new("openapi_fetch_failed", m),
    };
    let mut resp = http.get(url).send().await.map_err(|e| failed(&e))?;
    if !resp.status().is_success() {
        return Err(Finding::new("openapi_fetch_failed", format!("HTTP {}", resp.status().as_u16())));
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > opchub_skills::openapi::MAX_DOC_BYTES {
            return Err(Finding::new(
                "openapi_too_large",
                format!("max {} bytes", opchub_skills::openapi::MAX_DOC_BYTES),
            ));
        }
    }
    String::from_utf8(body).map_err(|_| Finding::new("openapi_unparseable", "the document is not UTF-8"))
}

// ---------------------------------------------------------------- invocation and counting

/// One call as the caller made it.
pub struct CallRequest<'a> {
    pub skill: &'a Skill,
    pub tool: &'a str,
    pub arguments: Map<String, Value>,
    /// What makes a retry the same call: (request, JSON-RPC id).
    pub request: String,
    pub rpc_id: String,
}

/// What the caller gets back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallResult {
    /// `ok`, `tool_error`, `upstream_error`, `timeout`.
    pub outcome: String,
    pub is_error: bool,
    /// The publisher's content blocks (MCP shape).
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    pub structured_content: Option<Value>,
    /// Whether the call counts toward M2.3 statistics.
    pub qualified: bool,
    pub not_qualified_reason: Option<String>,
    pub charged_fen: i64,
    /// The ledger leaf of the `skill.call` event.
    pub leaf_index: Option<i64>,
    /// True when this was a retry of a call already counted.
    pub duplicate: bool,
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
pub async fn live_version(store: &Store, skill: &Skill) -> Result<SkillVersion, ApiError> {
    match &skill.live_version_id {
        Some(v) => Ok(store.skill_version(v).await?),
        None => {
            let delisted = store.skill_versions(&skill.id).await?.iter().any(|v| v.status == "delisted");
            Err(ApiError::new(
                StatusCode::GONE,
                if delisted { "skill_delisted" } else { "skill_not_listed" },
            ))
        }
    }
}

fn digest(v: &Value) -> String {
    opchub_skills::sha256_hex(opchub_skills::tools::canonical_json(v).as_bytes())
}

/// Calls a tool of a listed skill for `p`, and counts the call: one `skill.call` event per
/// (invoker, request, JSON-RPC id), so a retry is not counted twice (M2.3). Refusals (unknown
/// tool, arguments failing the schema, a delisted skill) happen before the upstream is
/// called and count nothing.
pub async fn call(s: &AppState, p: &Principal, req: CallRequest<'_>) -> Result<CallResult, ApiError> {
    let live = s.skills.live_version(&s.store, req.skill).await?;
    let version = &live.version;
    let Some((tool, validator)) = live.tool(req.tool) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "skill_unknown_tool").with_detail(req.tool.to_string()));
    };
    validator
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|v| validate_with(v, &req.arguments))
        .map_err(|f| refusal(StatusCode::UNPROCESSABLE_ENTITY, &f))?;
    let endpoint = version
        .endpoint_url
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "skill_not_callable"))?;
    // IP literals here; host names when the connection is made (the guarded resolver).
    opchub_skills::net::check_literal(&endpoint, s.skills.config.allow_private_upstreams)
        .map_err(|f| refusal(StatusCode::BAD_GATEWAY, &f))?;
    let ledger = s
        .ledger
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"))?;

    let started_ms = opchub_store::now_ms();
    let started = Instant::now();
    let args_value = Value::Object(req.arguments.clone());
    let upstream = match &tool.http {
        Some(op) => http_call(s, &endpoint, op, &req.arguments).await,
        None => {
            s.skills
                .upstreams()
                .call_tool(&endpoint, &tool.name, req.arguments.clone(), s.skills.config.call_timeout)
                .await
        }
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    // A host name that now resolves only to non-public addresses (DNS rebinding): refused
    // like a private URL at publish time; the publisher was not reached, nothing is counted.
    let upstream = match (upstream, s.skills.resolver.refused(&endpoint)) {
        (Err(UpstreamError::Failed(_)), Some(p)) => Err(UpstreamError::Refused(p.finding())),
        (other, _) => other,
    };
    let (outcome, content, structured) = match upstream {
        Err(UpstreamError::Refused(f)) => return Err(refusal(StatusCode::BAD_GATEWAY, &f)),
        Ok(r) => (if r.is_error { "tool_error" } else { "ok" }.to_string(), r.content, r.structured),
        Err(UpstreamError::Timeout) => ("timeout".to_string(), vec![text_block("upstream timeout")], None),
        Err(UpstreamError::Failed(m)) => (
            "upstream_error".to_string(),
            vec![text_block(&format!("upstream error: {m}"))],
            None,
        ),
    };
    let is_error = outcome != "ok";

    // Who is paid and who used: M2.3 subsidises both, so self-dealing and failures do not qualify.
    let invoker_party = party_of(s, &p.user.id).await?;
    let skill = req.skill;
    let self_dealing = invoker_party == skill.publisher_party || p.user.id == skill.publisher_user_id;
    let reason = if is_error {
        Some("failed")
    } else if self_dealing {
        Some("self_dealing")
    } else if skill.drifted_at.is_some() {
        Some("drifted")
    } else {
        None
    };
    let qualified = reason.is_none();
    let charged = if is_error { 0 } else { version.price_fen };
    let call_key = opchub_skills::sha256_hex(format!("{}\n{}\n{}", p.user.id, req.request, req.rpc_id).as_bytes());
    let response_value = Value::Array(content.clone());
    let request_digest = digest(&serde_json::json!({"skill": skill.slug, "tool": tool.name, "arguments": args_value}));
    let response_digest = digest(&response_value);
    let mut attributes = BTreeMap::new();
    attributes.insert("skill".to_string(), skill.slug.clone());
    attributes.insert("version".to_string(), version.version.clone());
    attributes.insert("version_hash".to_string(), version.content_hash.clone());
    attributes.insert("tool".to_string(), tool.name.clone());
    attributes.insert("publisher".to_string(), skill.publisher_party.clone());
    attributes.insert("invoker".to_string(), invoker_party.clone());
    attributes.insert("outcome".to_string(), outcome.clone());
    attributes.insert("latency_ms".to_string(), latency_ms.to_string());
    attributes.insert("request_digest".to_string(), request_digest.clone());
    attributes.insert("response_digest".to_string(), response_digest.clone());
    attributes.insert("qualified".to_string(), qualified.to_string());
    if let Some(r) = reason {
        attributes.insert("not_qualified_reason".to_string(), r.to_string());
    }
    let event = NewEvent {
        source: SOURCE.into(),
        source_event_id: call_key.clone(),
        kind: "skill.call".into(),
        subject: invoker_party.clone(),
        counterparty: skill.publisher_party.clone(),
        quantity: 1,
        unit: "call".into(),
        list_fen: charged,
        charged_fen: charged,
        price_version: format!("skill:{}@{}", skill.slug, version.version).chars().take(120).collect(),
        occurred_at_ms: started_ms,
        origin: Origin::Observed,
        attributes,
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    };
    let outcome_of_append = ledger.append(vec![Item::Event(event)]).await?;
    let (leaf_index, duplicate) = match outcome_of_append.into_iter().next() {
        Some(Outcome::Stored(r)) => (Some(r.leaf_index), false),
        Some(Outcome::Duplicate(r)) => (Some(r.leaf_index), true),
        Some(Outcome::Rejected(e)) => {
            tracing::error!(code = %e.code, "skill call event refused by the ledger");
            (None, false)
        }
        None => (None, false),
    };
    let row = SkillCall {
        call_key: call_key.clone(),
        skill_id: skill.id.clone(),
        version_id: version.id.clone(),
        version_hash: version.content_hash.clone(),
        tool: tool.name.clone(),
        publisher_party: skill.publisher_party.clone(),
        invoker_party,
        invoker_user_id: p.user.id.clone(),
        outcome: outcome.clone(),
        qualified,
        not_qualified_reason: reason.map(str::to_string),
        charged_fen: charged,
        latency_ms,
        request_digest,
        response_digest,
        leaf_index,
        day: opchub_store::skills::call_day(started_ms),
        created_at: started_ms,
    };
    let inserted = s.store.record_skill_call(&row).await?;
    if inserted {
        s.skills.invalidate_counts();
    }
    // A retry reports what was counted the first time.
    let counted = if inserted {
        row
    } else {
        s.store.skill_call(&call_key).await?.unwrap_or(row)
    };
    Ok(CallResult {
        outcome,
        is_error,
        content,
        structured_content: structured,
        qualified: counted.qualified,
        not_qualified_reason: counted.not_qualified_reason,
        charged_fen: counted.charged_fen,
        leaf_index: counted.leaf_index,
        duplicate: duplicate || !inserted,
    })
}

pub fn text_block(t: &str) -> Value {
    serde_json::json!({"type": "text", "text": t})
}

pub struct UpstreamResult {
    pub is_error: bool,
    pub content: Vec<Value>,
    pub structured: Option<Value>,
}

#[derive(Debug)]
pub enum UpstreamError {
    Timeout,
    Failed(String),
    /// Refused before the publisher was reached (its host resolved to no public address).
    Refused(Finding),
}

impl UpstreamError {
    /// A failed request: a refusal of the guarded resolver, a timeout, or another failure.
    pub fn of(e: &reqwest_publisher::Error) -> UpstreamError {
        if let Some(p) = opchub_skills::net::refusal_in(e) {
            UpstreamError::Refused(p.finding())
        } else if e.is_timeout() {
            UpstreamError::Timeout
        } else {
            UpstreamError::Failed(error_chain(e))
        }
    }
}

/// An error with its sources (reqwest's own text omits the cause), without URLs.
fn error_chain(e: &reqwest_publisher::Error) -> String {
    let mut out = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    }
    .to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

const MAX_HTTP_RESPONSE: usize = 1024 * 1024;

async fn http_call(
    s: &AppState,
    base: &str,
    op: &opchub_skills::tools::HttpOperation,
    args: &Map<String, Value>,
) -> Result<UpstreamResult, UpstreamError> {
    let (url, body) = opchub_skills::openapi::request_of(base, op, args);
    let method = reqwest_publisher::Method::from_bytes(op.method.as_bytes()).map_err(|e| UpstreamError::Failed(e.to_string()))?;
    let http = s.skills.http.as_ref().map_err(|f| UpstreamError::Failed(f.detail.clone()))?;
    let mut rb = http.request(method, &url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.map_err(|e| UpstreamError::of(&e))?;
    let ok = resp.status().is_success();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| UpstreamError::of(&e))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_HTTP_RESPONSE)]).to_string();
    let structured = serde_json::from_str::<Value>(&text).ok().filter(Value::is_object);
    let shown = if ok { text } else { format!("HTTP {status}: {text}") };
    Ok(UpstreamResult {
        is_error: !ok,
        content: vec![text_block(&shown)],
        structured,
    })
}

// ---------------------------------------------------------------- rug-pull refresh

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RefreshResult {
    pub skill_id: String,
    /// `unchanged`, `drifted` (newly marked), `still_drifted`, `unreachable` (not fetched or
    /// not readable), `not_remote` (a package or an inline OpenAPI document).
    pub status: String,
    pub pinned_hash: String,
    pub remote_hash: Option<String>,
}

/// The tools a listed skill's publisher serves now: a remote MCP server's tool list, or the
/// pinned operations of an HTTP tool's OpenAPI document re-fetched from its URL. `None` when
/// nothing is remote (packages, inline documents).
async fn remote_tools(s: &AppState, skill: &Skill, version: &SkillVersion) -> Option<Result<Vec<Tool>, Finding>> {
    match (skill.kind.as_str(), version.endpoint_url.as_deref(), version.openapi_url.as_deref()) {
        ("mcp_server", Some(url), _) => Some(fetch_mcp_tools(s, url).await),
        ("http_tool" | "aigc_app", _, Some(doc_url)) => {
            let pinned: Vec<String> = pinned_tools(version).into_iter().map(|t| t.name).collect();
            Some(match fetch_openapi(s, doc_url).await {
                Ok(text) => opchub_skills::openapi::parse(&text, &pinned).map(|d| d.tools),
                Err(f) => Err(f),
            })
        }
        _ => None,
    }
}

/// Re-fetches what one listed skill's publisher serves (an MCP server's tool list, an HTTP
/// tool's OpenAPI document published by URL) and compares its canonical hash with the pinned
/// one. A change is a rug pull (M2.3): the skill is marked and its calls are not qualified
/// until a new version is reviewed.
pub async fn refresh_skill(s: &AppState, skill: &Skill) -> Result<RefreshResult, ApiError> {
    let version = live_version(&s.store, skill).await?;
    let mut r = RefreshResult {
        skill_id: skill.id.clone(),
        status: "not_remote".into(),
        pinned_hash: version.tools_hash.clone(),
        remote_hash: None,
    };
    let Some(fetched) = remote_tools(s, skill, &version).await else {
        return Ok(r);
    };
    match fetched {
        Err(_) => r.status = "unreachable".into(),
        Ok(tools) => {
            let (_, hash) = opchub_skills::tools::canonical(&tools);
            r.status = if hash == version.tools_hash {
                "unchanged".into()
            } else if s.store.mark_skill_drift(&skill.id, &hash).await? {
                s.skills.invalidate();
                "drifted".into()
            } else {
                "still_drifted".into()
            };
            r.remote_hash = Some(hash);
        }
    }
    Ok(r)
}

/// Refreshes every listed remote skill: MCP servers and HTTP tools published by document URL
/// (the periodic task and the operator's button).
pub async fn refresh_all(s: &AppState) -> Result<Vec<RefreshResult>, ApiError> {
    let mut out = Vec::new();
    for skill in s.store.skills(true).await? {
        if skill.kind == "agent_skill" {
            continue;
        }
        let r = refresh_skill(s, &skill).await?;
        if r.status != "not_remote" {
            out.push(r);
        }
    }
    Ok(out)
}

/// The periodic refresh, until the process ends.
pub fn spawn_refresh(s: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = s.skills.config.refresh_interval;
        loop {
            tokio::time::sleep(every).await;
            match refresh_all(&s).await {
                Ok(rs) => {
                    let drifted = rs.iter().filter(|r| r.status == "drifted").count();
                    if drifted > 0 {
                        tracing::warn!(drifted, "skills whose remote tools changed from the pinned list");
                    }
                }
                Err(e) => tracing::error!(code = %e.code, "skill refresh failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(id: &str, name: &str, summary: &str) -> Skill {
        Skill {
            id: id.into(),
            slug: format!("s-{id}"),
            name: name.into(),
            summary: summary.into(),
            kind: "mcp_server".into(),
            category: "agent_tool".into(),
            tags: vec![],
            homepage_url: None,
            publisher_user_id: "u".into(),
            publisher_party: "u".into(),
            live_version_id: Some("v".into()),
            drifted_at: None,
            drifted_hash: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn ids(v: Vec<&Skill>) -> Vec<&str> {
        v.into_iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn the_index_keeps_name_order_and_intersects_every_token() {
        let mut skills: Vec<Skill> = (0..200)
            .map(|i| {
                let topic = if i % 3 == 0 { "发票 invoice" } else { "视频 video" };
                let extra = if i % 5 == 0 { "legal" } else { "other" };
                skill(&format!("{i}"), &format!("n{i:03}"), &format!("{topic} {extra}"))
            })
            .collect();
        skills.reverse();
        let idx = SearchIndex::build(skills);
        let expected = |f: &dyn Fn(usize) -> bool| (0..200).filter(|i| f(*i)).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(idx.matching("invoice legal")), expected(&|i| i % 15 == 0));
        assert_eq!(ids(idx.matching("legal 发票")), expected(&|i| i % 15 == 0));
        assert_eq!(ids(idx.matching("video")), expected(&|i| i % 3 != 0));
        assert_eq!(idx.matching("").len(), 200);
        assert!(idx.matching("invoice nothing-like-this").is_empty());
    }
}
