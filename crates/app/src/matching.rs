//! Matching on the demand board (M2.4), both ways, in memory:
//!
//! - for a demand, a ranked list of OPCs: BM25 over Chinese-segmented OPC profile text (name,
//!   theme package and its business scope, past cooperation titles and tags, published skill
//!   names) combined with tag overlap and reputation (completed cooperations, ratings,
//!   qualified usage of the OPC's skills);
//! - for an OPC, "demands for you" from the same signals, over open demands;
//! - search with filters over open demands.
//!
//! Every recommendation carries a human-readable reason in Chinese and English. The indexes
//! are rebuilt from the database when what they were built from changes (a cheap fingerprint
//! query), so a request normally only scores. Tokens come from `opchub_domain::text::tokens`,
//! the tokenizer the Skill Store search uses too. What the indexes are built from is read by the
//! store (`opchub_store::demands::matching_input`).

use opchub_domain::text::tokens;
use opchub_store::{Result, Store, StoreError};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Weights of the combined score (text relevance, tag overlap, reputation).
const W_TEXT: f32 = 0.55;
const W_TAGS: f32 = 0.30;
const W_REP: f32 = 0.15;
/// An OPC index older than this is rebuilt even if the fingerprint did not change (skill
/// usage in the ledger changes all the time and is not part of the fingerprint).
const MAX_AGE: Duration = Duration::from_secs(60);

pub use opchub_store::demands::{DemandDoc, OpcProfile, SkillSignal};

/// The text of a profile that BM25 scores.
fn opc_text(p: &OpcProfile) -> String {
    // The theme package's code is not text (codes share "opc"); theme fit is scored apart.
    let mut s = format!("{} {}", p.name, p.theme_text);
    for w in &p.past_work {
        s.push(' ');
        s.push_str(w);
    }
    for t in &p.tags {
        s.push(' ');
        s.push_str(t);
    }
    for k in &p.skills {
        s.push(' ');
        s.push_str(&k.name);
    }
    s
}

/// Adds to profiles what this crate cannot see (published skills and their qualified usage).
/// The Skill Store registers one; without it profiles have no skill names.
pub trait ProfileEnricher: Send + Sync {
    fn enrich<'a>(&'a self, store: &'a Store, profiles: &'a mut [OpcProfile]) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// The text of a demand that BM25 scores.
fn demand_text(d: &DemandDoc) -> String {
    format!("{} {} {}", d.title, d.tags.join(" "), d.description)
}

/// BM25 over token lists; postings are sorted by document number.
#[derive(Default)]
struct TextIndex {
    terms: HashMap<String, u32>,
    postings: Vec<Vec<(u32, u16)>>,
    doc_len: Vec<u32>,
    avg_len: f32,
}

impl TextIndex {
    fn build(docs: &[Vec<String>]) -> TextIndex {
        let mut ix = TextIndex::default();
        let mut total = 0u64;
        for (d, toks) in docs.iter().enumerate() {
            let mut tf: HashMap<u32, u16> = HashMap::new();
            for t in toks {
                let next = ix.terms.len() as u32;
                let id = *ix.terms.entry(t.clone()).or_insert(next);
                if id as usize == ix.postings.len() {
                    ix.postings.push(Vec::new());
                }
                let e = tf.entry(id).or_insert(0);
                *e = e.saturating_add(1);
            }
            for (id, n) in tf {
                ix.postings[id as usize].push((d as u32, n));
            }
            ix.doc_len.push(toks.len() as u32);
            total += toks.len() as u64;
        }
        for p in &mut ix.postings {
            p.sort_unstable_by_key(|x| x.0);
        }
        ix.avg_len = if docs.is_empty() {
            1.0
        } else {
            (total as f32 / docs.len() as f32).max(1.0)
        };
        ix
    }

    fn idf(&self, term: u32) -> f32 {
        let n = self.doc_len.len() as f32;
        let df = self.postings[term as usize].len() as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Distinct known query terms with their idf.
    fn query_terms(&self, query: &[String]) -> Vec<(u32, f32, String)> {
        let mut seen = BTreeSet::new();
        query
            .iter()
            .filter_map(|t| {
                let id = *self.terms.get(t)?;
                seen.insert(id).then(|| (id, self.idf(id), t.clone()))
            })
            .collect()
    }

    /// Adds BM25 scores into `acc` (dense, one slot per document) and records in `mask` which
    /// of the first 64 query terms each document contains; pushes newly touched documents.
    fn score_into(&self, terms: &[(u32, f32, String)], acc: &mut [f32], mask: &mut [u64], touched: &mut Vec<u32>) {
        for (qi, (id, idf, _)) in terms.iter().enumerate() {
            let bit = if qi < 64 { 1u64 << qi } else { 0 };
            for &(d, tf) in &self.postings[*id as usize] {
                let tf = tf as f32;
                let dl = self.doc_len[d as usize] as f32;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / self.avg_len));
                let slot = &mut acc[d as usize];
                if *slot == 0.0 {
                    touched.push(d);
                }
                *slot += s;
                mask[d as usize] |= bit;
            }
        }
    }

    /// Whether `doc` contains query term number `qi` (of `terms`).
    fn contains(&self, terms: &[(u32, f32, String)], mask: u64, qi: usize, doc: u32) -> bool {
        if qi < 64 {
            mask & (1u64 << qi) != 0
        } else {
            self.has(terms[qi].0, doc)
        }
    }

    fn has(&self, term: u32, doc: u32) -> bool {
        self.postings[term as usize].binary_search_by_key(&doc, |x| x.0).is_ok()
    }
}

/// One ranked result with its reason.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Ranked {
    pub id: String,
    pub name: String,
    /// Combined score in 0..=1 (× 1000, integer).
    pub score: i64,
    /// Demand tags the other side covers, then the strongest matched words.
    pub matched: Vec<String>,
    pub why_zh: String,
    pub why_en: String,
}

fn tag_tokens(tags: &[String]) -> Vec<(String, Vec<String>)> {
    tags.iter().map(|t| (t.clone(), tokens(t))).filter(|(_, v)| !v.is_empty()).collect()
}

fn top_k(mut scored: Vec<(f32, u32)>, k: usize) -> Vec<(f32, u32)> {
    let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k, cmp);
        scored.truncate(k);
    }
    scored.sort_by(cmp);
    scored
}

/// The OPC side: profiles and their text index.
pub struct OpcIndex {
    profiles: Vec<OpcProfile>,
    text: TextIndex,
    /// Per profile: its reputation in 0..=1 (completed cooperations, ratings, skill users).
    reputation: Vec<f32>,
    /// Per profile: its theme package as a small number (no string compare per candidate).
    theme_ids: Vec<u16>,
    theme_codes: HashMap<String, u16>,
    by_id: HashMap<String, u32>,
}

fn reputation(p: &OpcProfile) -> f32 {
    let completed = (p.completed.min(10) as f32) / 10.0;
    let rating = if p.ratings > 0 {
        (p.rating_avg_x100 as f32 / 500.0).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let users = ((p.skill_users.max(0) as f32) + 1.0).ln() / (101f32).ln();
    0.5 * completed + 0.3 * rating + 0.2 * users.min(1.0)
}

fn reasons(matched: &[String], completed: i64, ratings: i64, avg_x100: i64, skill: Option<&SkillSignal>) -> (String, String) {
    let mut zh = Vec::new();
    let mut en = Vec::new();
    if !matched.is_empty() {
        zh.push(format!("匹配：{}", matched.join("、")));
        en.push(format!("matched: {}", matched.join(", ")));
    }
    if completed > 0 {
        zh.push(format!("已完成 {completed} 个项目"));
        en.push(format!("{completed} completed project{}", if completed == 1 { "" } else { "s" }));
    }
    if ratings > 0 {
        let avg = format!("{}.{}", avg_x100 / 100, (avg_x100 % 100) / 10);
        zh.push(format!("评分 {avg}（{ratings} 条）"));
        en.push(format!("rated {avg} ({ratings})"));
    }
    if let Some(s) = skill.filter(|s| s.users > 0) {
        zh.push(format!("技能 {} 被 {} 个 OPC 使用", s.name, s.users));
        en.push(format!("skill {} used by {} OPCs", s.name, s.users));
    }
    if zh.is_empty() {
        zh.push("主题套餐相符".into());
        en.push("same theme package".into());
    }
    (zh.join(" · "), en.join(" · "))
}

impl OpcIndex {
    pub fn build(profiles: Vec<OpcProfile>) -> OpcIndex {
        let docs: Vec<Vec<String>> = profiles.iter().map(|p| tokens(&opc_text(p))).collect();
        let by_id = profiles.iter().enumerate().map(|(i, p)| (p.opc_id.clone(), i as u32)).collect();
        let mut theme_codes: HashMap<String, u16> = HashMap::new();
        let theme_ids = profiles
            .iter()
            .map(|p| {
                let next = theme_codes.len() as u16;
                *theme_codes.entry(p.theme_package.clone()).or_insert(next)
            })
            .collect();
        OpcIndex {
            text: TextIndex::build(&docs),
            reputation: profiles.iter().map(reputation).collect(),
            theme_ids,
            theme_codes,
            profiles,
            by_id,
        }
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    pub fn profile(&self, opc_id: &str) -> Option<&OpcProfile> {
        self.by_id.get(opc_id).map(|i| &self.profiles[*i as usize])
    }

    /// The best `k` OPCs for a demand.
    pub fn recommend(&self, d: &DemandDoc, k: usize) -> Vec<Ranked> {
        let dtags = tag_tokens(&d.tags);
        // Tag tokens first, so that they get the low mask bits.
        let mut q: Vec<String> = dtags.iter().flat_map(|(_, ts)| ts.iter().cloned()).collect();
        q.extend(tokens(&demand_text(d)));
        let terms = self.text.query_terms(&q);
        let pos: HashMap<&str, usize> = terms.iter().enumerate().map(|(i, t)| (t.2.as_str(), i)).collect();
        // Per tag: the mask bits all its tokens need (None: no profile can cover it).
        let required: Vec<Option<u64>> = dtags
            .iter()
            .map(|(_, ts)| {
                ts.iter().try_fold(0u64, |m, t| match pos.get(t.as_str()) {
                    Some(&i) if i < 64 => Some(m | (1u64 << i)),
                    _ => None,
                })
            })
            .collect();
        let n = self.profiles.len();
        let (mut acc, mut mask, mut touched) = (vec![0f32; n], vec![0u64; n], Vec::new());
        self.text.score_into(&terms, &mut acc, &mut mask, &mut touched);
        let max = touched.iter().map(|d| acc[*d as usize]).fold(0f32, f32::max).max(f32::MIN_POSITIVE);
        let theme = self.theme_codes.get(&d.category).copied();
        let covered = |m: u64| required.iter().filter(|r| r.is_some_and(|r| m & r == r)).count();
        let scored: Vec<(f32, u32)> = touched
            .iter()
            .map(|&i| {
                let mut tag = if dtags.is_empty() {
                    0.0
                } else {
                    covered(mask[i as usize]) as f32 / dtags.len() as f32
                };
                if Some(self.theme_ids[i as usize]) == theme {
                    tag = (tag + 0.5).min(1.0);
                }
                let s = W_TEXT * acc[i as usize] / max + W_TAGS * tag + W_REP * self.reputation[i as usize];
                (s, i)
            })
            .collect();
        top_k(scored, k)
            .into_iter()
            .map(|(s, i)| {
                let p = &self.profiles[i as usize];
                let m = mask[i as usize];
                let mut matched: Vec<String> = dtags
                    .iter()
                    .zip(&required)
                    .filter(|(_, r)| r.is_some_and(|r| m & r == r))
                    .map(|((t, _), _)| t.clone())
                    .collect();
                let mut words: Vec<&(u32, f32, String)> = terms
                    .iter()
                    .enumerate()
                    .filter(|(qi, _)| self.text.contains(&terms, m, *qi, i))
                    .map(|(_, t)| t)
                    .collect();
                words.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (_, _, w) in words {
                    if matched.len() >= 4 {
                        break;
                    }
                    if w.chars().count() > 1 && !matched.iter().any(|m| m.contains(w.as_str())) {
                        matched.push(w.clone());
                    }
                }
                let best_skill = p.skills.iter().max_by_key(|s| s.users);
                let (why_zh, why_en) = reasons(&matched, p.completed, p.ratings, p.rating_avg_x100, best_skill);
                Ranked {
                    id: p.opc_id.clone(),
                    name: p.name.clone(),
                    score: (s * 1000.0).round() as i64,
                    matched,
                    why_zh,
                    why_en,
                }
            })
            .collect()
    }
}

/// The demand side: open demands and their text index.
pub struct DemandIndex {
    docs: Vec<DemandDoc>,
    text: TextIndex,
    /// Per demand: its tags with their tokens' term ids.
    tag_ids: Vec<Vec<(String, Vec<u32>)>>,
}

/// Search filters over open demands.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    pub budget_at_least_fen: Option<i64>,
}

impl SearchFilter {
    fn keeps(&self, d: &DemandDoc) -> bool {
        self.category.as_ref().is_none_or(|c| &d.category == c)
            && self.tag.as_ref().is_none_or(|t| d.tags.iter().any(|x| x == t))
            && self.budget_at_least_fen.is_none_or(|b| d.budget_max_fen >= b)
    }
}

impl DemandIndex {
    pub fn build(docs: Vec<DemandDoc>) -> DemandIndex {
        let toks: Vec<Vec<String>> = docs.iter().map(|d| tokens(&demand_text(d))).collect();
        let text = TextIndex::build(&toks);
        let tag_ids = docs
            .iter()
            .map(|d| {
                tag_tokens(&d.tags)
                    .into_iter()
                    .map(|(t, ts)| (t, ts.iter().filter_map(|x| text.terms.get(x).copied()).collect()))
                    .collect()
            })
            .collect();
        DemandIndex { text, docs, tag_ids }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Open demands matching `query` (all when empty, newest first), filtered; ids in rank order.
    pub fn search(&self, query: &str, f: &SearchFilter, k: usize) -> Vec<String> {
        let q = tokens(query);
        if q.is_empty() {
            let mut all: Vec<&DemandDoc> = self.docs.iter().filter(|d| f.keeps(d)).collect();
            all.sort_by(|a, b| b.published_at.cmp(&a.published_at).then(a.id.cmp(&b.id)));
            return all.into_iter().take(k).map(|d| d.id.clone()).collect();
        }
        let terms = self.text.query_terms(&q);
        let n = self.docs.len();
        let (mut acc, mut mask, mut touched) = (vec![0f32; n], vec![0u64; n], Vec::new());
        self.text.score_into(&terms, &mut acc, &mut mask, &mut touched);
        let scored = touched
            .into_iter()
            .filter(|&i| f.keeps(&self.docs[i as usize]))
            .map(|i| (acc[i as usize], i))
            .collect();
        top_k(scored, k)
            .into_iter()
            .map(|(_, i)| self.docs[i as usize].id.clone())
            .collect()
    }

    /// Open demands for an OPC, from the same signals as [`OpcIndex::recommend`].
    pub fn for_opc(&self, p: &OpcProfile, exclude: &BTreeSet<String>, k: usize) -> Vec<Ranked> {
        let toks = tokens(&opc_text(p));
        let terms = self.text.query_terms(&toks);
        let qset: HashSet<u32> = terms.iter().map(|t| t.0).collect();
        let n = self.docs.len();
        let (mut acc, mut mask, mut touched) = (vec![0f32; n], vec![0u64; n], Vec::new());
        self.text.score_into(&terms, &mut acc, &mut mask, &mut touched);
        let max = touched.iter().map(|d| acc[*d as usize]).fold(0f32, f32::max).max(f32::MIN_POSITIVE);
        let covers = |ids: &Vec<u32>| !ids.is_empty() && ids.iter().all(|t| qset.contains(t));
        let scored = touched
            .into_iter()
            .filter(|&i| !exclude.contains(&self.docs[i as usize].id))
            .map(|i| {
                let d = &self.docs[i as usize];
                let dt = &self.tag_ids[i as usize];
                let covered = dt.iter().filter(|(_, ids)| covers(ids)).count();
                let mut tag = if dt.is_empty() { 0.0 } else { covered as f32 / dt.len() as f32 };
                if d.category == p.theme_package {
                    tag = (tag + 0.5).min(1.0);
                }
                ((W_TEXT * acc[i as usize] / max + W_TAGS * tag) / (W_TEXT + W_TAGS), i)
            })
            .collect();
        top_k(scored, k)
            .into_iter()
            .map(|(s, i)| {
                let d = &self.docs[i as usize];
                let m = mask[i as usize];
                let mut matched: Vec<String> = self.tag_ids[i as usize]
                    .iter()
                    .filter(|(_, ids)| covers(ids))
                    .map(|(t, _)| t.clone())
                    .collect();
                let mut words: Vec<&(u32, f32, String)> = terms
                    .iter()
                    .enumerate()
                    .filter(|(qi, _)| self.text.contains(&terms, m, *qi, i))
                    .map(|(_, t)| t)
                    .collect();
                words.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (_, _, w) in words {
                    if matched.len() >= 4 {
                        break;
                    }
                    if w.chars().count() > 1 && !matched.iter().any(|m| m.contains(w.as_str())) {
                        matched.push(w.clone());
                    }
                }
                let (why_zh, why_en) = reasons(&matched, 0, 0, 0, None);
                Ranked {
                    id: d.id.clone(),
                    name: d.title.clone(),
                    score: (s * 1000.0).round() as i64,
                    matched,
                    why_zh,
                    why_en,
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------- loading and caching

type Fingerprint = Vec<i64>;

struct Cached<T> {
    fingerprint: Fingerprint,
    built: Instant,
    value: Arc<T>,
}

/// The process's matching indexes, rebuilt when the data they came from changed.
#[derive(Default)]
pub struct MatchingCache {
    opcs: RwLock<Option<Cached<OpcIndex>>>,
    demands: RwLock<Option<Cached<DemandIndex>>>,
    enricher: RwLock<Option<Arc<dyn ProfileEnricher>>>,
}

impl MatchingCache {
    /// Registers the hook that adds published skills to profiles.
    pub fn set_enricher(&self, e: Arc<dyn ProfileEnricher>) {
        if let Ok(mut g) = self.enricher.write() {
            *g = Some(e);
        }
        self.invalidate();
    }

    pub fn invalidate(&self) {
        if let Ok(mut g) = self.opcs.write() {
            *g = None;
        }
        if let Ok(mut g) = self.demands.write() {
            *g = None;
        }
    }

    pub async fn opc_index(&self, store: &Store) -> Result<Arc<OpcIndex>> {
        let fp = store.opc_fingerprint().await?;
        if let Ok(g) = self.opcs.read() {
            if let Some(c) = g.as_ref().filter(|c| c.fingerprint == fp && c.built.elapsed() < MAX_AGE) {
                return Ok(c.value.clone());
            }
        }
        let mut profiles = store.opc_profiles().await?;
        let enricher = self.enricher.read().ok().and_then(|g| g.clone());
        if let Some(e) = enricher {
            e.enrich(store, &mut profiles).await?;
        }
        let ix = Arc::new(build_blocking(move || OpcIndex::build(profiles)).await?);
        if let Ok(mut g) = self.opcs.write() {
            *g = Some(Cached {
                fingerprint: fp,
                built: Instant::now(),
                value: ix.clone(),
            });
        }
        Ok(ix)
    }

    pub async fn demand_index(&self, store: &Store) -> Result<Arc<DemandIndex>> {
        store.expire_demands().await?;
        let fp = store.demand_fingerprint().await?;
        if let Ok(g) = self.demands.read() {
            if let Some(c) = g.as_ref().filter(|c| c.fingerprint == fp) {
                return Ok(c.value.clone());
            }
        }
        let docs = store.open_demand_docs().await?;
        let ix = Arc::new(build_blocking(move || DemandIndex::build(docs)).await?);
        if let Ok(mut g) = self.demands.write() {
            *g = Some(Cached {
                fingerprint: fp,
                built: Instant::now(),
                value: ix.clone(),
            });
        }
        Ok(ix)
    }
}

/// Builds an index on a blocking thread (tokenizing many profiles takes a while).
async fn build_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Catalog(format!("index build failed: {e}")))
}

/// The Skill Store's part of demand matching (M2.4 × M2.3): each OPC's listed skills, with
/// how many distinct OPCs called each one in qualified calls, so that a recommendation can
/// say "skill 发票助手 used by 41 OPCs" and rank by it.
pub struct SkillEnricher;

impl ProfileEnricher for SkillEnricher {
    fn enrich<'a>(
        &'a self,
        store: &'a Store,
        profiles: &'a mut [OpcProfile],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let skills = store.skills(true).await?;
            if skills.is_empty() {
                return Ok(());
            }
            let counts = store.skill_counts().await?;
            let mut by_party: HashMap<&str, Vec<SkillSignal>> = HashMap::new();
            for s in &skills {
                let users = counts.get(&s.id).map_or(0, |c| c.distinct_qualified_invokers);
                by_party.entry(s.publisher_party.as_str()).or_default().push(SkillSignal {
                    name: s.name.clone(),
                    users,
                });
            }
            for p in profiles.iter_mut() {
                if let Some(list) = by_party.get(p.opc_id.as_str()) {
                    p.skills = list.clone();
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opc(id: &str, name: &str, theme: &str, text: &str, completed: i64) -> OpcProfile {
        OpcProfile {
            opc_id: id.into(),
            name: name.into(),
            theme_package: theme.into(),
            theme_text: text.into(),
            completed,
            ..Default::default()
        }
    }

    #[test]
    fn the_relevant_opc_ranks_first_and_says_why() {
        let ix = OpcIndex::build(vec![
            opc("a", "北京发票智能科技", "opc_agent_dev", "智能体开发 发票识别 报销自动化", 3),
            opc("b", "北京数字人文化", "opc_digital_human", "数字人 直播 虚拟形象", 0),
            opc("c", "北京大模型推理", "opc_llm_dev", "大模型 微调 推理服务", 1),
        ]);
        let d = DemandDoc {
            id: "d".into(),
            title: "发票识别智能体".into(),
            description: "自动识别增值税发票并完成报销".into(),
            category: "opc_agent_dev".into(),
            tags: vec!["发票".into(), "智能体".into()],
            ..Default::default()
        };
        let r = ix.recommend(&d, 10);
        assert_eq!(r[0].id, "a", "{r:?}");
        assert!(
            r[0].why_zh.contains("发票") && r[0].why_zh.contains("已完成 3 个项目"),
            "{}",
            r[0].why_zh
        );
        assert!(r[0].why_en.contains("3 completed projects"), "{}", r[0].why_en);
        assert!(!r.iter().any(|x| x.id == "b"), "an unrelated OPC is not recommended: {r:?}");
    }

    #[test]
    fn search_filters_and_demands_for_you() {
        let docs = vec![
            DemandDoc {
                id: "1".into(),
                title: "数字人直播带货".into(),
                description: "需要数字人主播".into(),
                category: "opc_digital_human".into(),
                tags: vec!["数字人".into()],
                budget_max_fen: 100,
                published_at: 1,
                ..Default::default()
            },
            DemandDoc {
                id: "2".into(),
                title: "合同审查插件".into(),
                description: "法律行业垂直插件".into(),
                category: "vertical_plugin".into(),
                tags: vec!["法律".into()],
                budget_max_fen: 1000,
                published_at: 2,
                ..Default::default()
            },
        ];
        let ix = DemandIndex::build(docs);
        assert_eq!(ix.search("数字人", &SearchFilter::default(), 10), vec!["1"]);
        assert_eq!(ix.search("", &SearchFilter::default(), 10), vec!["2", "1"]);
        let f = SearchFilter {
            budget_at_least_fen: Some(500),
            ..Default::default()
        };
        assert_eq!(ix.search("", &f, 10), vec!["2"]);
        let p = opc("x", "北京数字人", "opc_digital_human", "数字人 直播", 0);
        let r = ix.for_opc(&p, &BTreeSet::new(), 10);
        assert_eq!(r[0].id, "1");
        let mut ex = BTreeSet::new();
        ex.insert("1".to_string());
        assert!(ix.for_opc(&p, &ex, 10).iter().all(|x| x.id != "1"));
    }
}
