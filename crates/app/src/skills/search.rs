//! Skill search (M2.3): an inverted index of the listed skills (jieba tokens), ranked by
//! distinct qualified invokers, then rating, then name.

use super::SkillHub;
use crate::AppResult;
use opchub_store::skills::{Skill, SkillCounts};
use opchub_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

impl SkillHub {
    async fn index(&self, store: &Store) -> AppResult<Arc<SearchIndex>> {
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
    pub async fn search(&self, store: &Store, q: &SearchQuery) -> AppResult<Vec<(Skill, SkillCounts)>> {
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
#[into_params(parameter_in = Query)]
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
