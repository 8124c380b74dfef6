//! `opchub bench matching`: demand-board matching quality and speed (M2.4), in process, no
//! database. Quality: nDCG@10 over the labelled set `bench/matching_eval.toml` (the labelled
//! pool alone, then with synthetic distractor profiles mixed in). Speed: p50/p99 of
//! recommendations (OPCs for a demand), "demands for you" and search with the given numbers
//! of OPC profiles and open demands. Deterministic (fixed seed); prints a table.

use anyhow::{Context, Result};
use opchub_app::matching::{DemandDoc, DemandIndex, OpcIndex, OpcProfile, SearchFilter};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const EVAL: &str = include_str!("../../../bench/matching_eval.toml");

#[derive(serde::Deserialize)]
struct EvalDemand {
    id: String,
    title: String,
    description: String,
    category: String,
    tags: Vec<String>,
    relevant: BTreeMap<String, u32>,
}

#[derive(serde::Deserialize)]
struct EvalSet {
    opc: Vec<OpcProfile>,
    demand: Vec<EvalDemand>,
}

const THEMES: [&str; 3] = ["opc_llm_dev", "opc_agent_dev", "opc_digital_human"];
const CATEGORIES: [&str; 6] = [
    "agent_tool",
    "aigc_production",
    "vertical_plugin",
    "opc_llm_dev",
    "opc_agent_dev",
    "opc_digital_human",
];
const WORDS: &[&str] = &[
    "智能体",
    "大模型",
    "数字人",
    "直播",
    "发票",
    "报销",
    "财务",
    "合同",
    "法律",
    "知识库",
    "问答",
    "检索",
    "客服",
    "工单",
    "质检",
    "视觉",
    "检测",
    "制造",
    "报表",
    "数据",
    "清洗",
    "翻译",
    "多语种",
    "教育",
    "辅导",
    "医疗",
    "病历",
    "海报",
    "设计",
    "视频",
    "短视频",
    "生成",
    "微调",
    "部署",
    "推理",
    "工作流",
    "插件",
    "电商",
    "跨境",
    "营销",
    "文案",
    "语音",
    "识别",
    "客服机器人",
    "物流",
    "调度",
    "招聘",
    "简历",
    "筛选",
    "园区",
    "政务",
    "申报",
    "政策",
    "税务",
    "审计",
    "风控",
    "舆情",
    "分析",
    "游戏",
    "原画",
    "动画",
    "配音",
    "字幕",
];
const SUFFIX: &[&str] = &["科技有限公司", "智能科技有限公司", "文化传媒有限公司", "信息技术有限公司", "工作室"];

fn phrase(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| *WORDS.choose(rng).unwrap_or(&"智能")).collect::<Vec<_>>().join("")
}

fn synthetic_opc(rng: &mut StdRng, i: usize) -> OpcProfile {
    let theme = THEMES[rng.gen_range(0..THEMES.len())];
    let completed = if rng.gen_bool(0.3) { rng.gen_range(1..8) } else { 0 };
    let ratings = if completed > 0 { rng.gen_range(0..=completed) } else { 0 };
    OpcProfile {
        opc_id: format!("syn-opc-{i}"),
        name: format!("北京{}{}", phrase(rng, 2), SUFFIX.choose(rng).unwrap_or(&"有限公司")),
        theme_package: theme.into(),
        theme_text: format!("{theme} 人工智能应用软件开发 {}", phrase(rng, 3)),
        past_work: (0..rng.gen_range(0..3)).map(|_| phrase(rng, 3)).collect(),
        tags: (0..rng.gen_range(1..4))
            .map(|_| WORDS.choose(rng).unwrap_or(&"数据").to_string())
            .collect(),
        skills: Vec::new(),
        completed,
        ratings,
        rating_avg_x100: if ratings > 0 { rng.gen_range(300..=500) } else { 0 },
        skill_users: if rng.gen_bool(0.1) { rng.gen_range(1..200) } else { 0 },
    }
}

fn synthetic_demand(rng: &mut StdRng, i: usize) -> DemandDoc {
    DemandDoc {
        id: format!("syn-demand-{i}"),
        title: format!("{}需求", phrase(rng, 3)),
        description: format!("我们需要{}，要求{}，并且{}。", phrase(rng, 4), phrase(rng, 3), phrase(rng, 3)),
        category: CATEGORIES[rng.gen_range(0..CATEGORIES.len())].into(),
        tags: (0..rng.gen_range(1..4))
            .map(|_| WORDS.choose(rng).unwrap_or(&"数据").to_string())
            .collect(),
        budget_min_fen: 100_000,
        budget_max_fen: rng.gen_range(100_000..10_000_000),
        published_at: i as i64,
    }
}

fn doc(d: &EvalDemand) -> DemandDoc {
    DemandDoc {
        id: d.id.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        category: d.category.clone(),
        tags: d.tags.clone(),
        ..Default::default()
    }
}

/// nDCG@k of one ranking against graded relevance.
pub fn ndcg(ranked: &[String], relevant: &BTreeMap<String, u32>, k: usize) -> f64 {
    let gain = |g: u32| (2f64.powi(g as i32)) - 1.0;
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(relevant.get(id).copied().unwrap_or(0)) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| gain(*g) / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

fn mean_ndcg(ix: &OpcIndex, set: &EvalSet) -> f64 {
    let total: f64 = set
        .demand
        .iter()
        .map(|d| {
            let ranked: Vec<String> = ix.recommend(&doc(d), 10).into_iter().map(|r| r.id).collect();
            ndcg(&ranked, &d.relevant, 10)
        })
        .sum();
    total / set.demand.len().max(1) as f64
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn timed(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i);
        out.push(t.elapsed());
    }
    out.sort();
    out
}

pub fn run(opcs: usize, demands: usize, queries: usize) -> Result<()> {
    let set: EvalSet = toml::from_str(EVAL).context("bench/matching_eval.toml")?;
    let mut rng = StdRng::seed_from_u64(7);
    println!(
        "matching benchmark: {} labelled OPCs, {} labelled demands",
        set.opc.len(),
        set.demand.len()
    );

    let pool = OpcIndex::build(set.opc.clone());
    let ndcg_pool = mean_ndcg(&pool, &set);

    let t = Instant::now();
    let mut profiles = set.opc.clone();
    profiles.extend((0..opcs.saturating_sub(set.opc.len())).map(|i| synthetic_opc(&mut rng, i)));
    let opc_ix = OpcIndex::build(profiles.clone());
    let opc_build = t.elapsed();
    let ndcg_mixed = mean_ndcg(&opc_ix, &set);

    let t = Instant::now();
    let docs: Vec<DemandDoc> = (0..demands).map(|i| synthetic_demand(&mut rng, i)).collect();
    let demand_ix = DemandIndex::build(docs.clone());
    let demand_build = t.elapsed();

    let rec = timed(queries, |i| {
        let d = &docs[(i * 7919) % docs.len().max(1)];
        std::hint::black_box(opc_ix.recommend(d, 10));
    });
    let none = BTreeSet::new();
    let for_you = timed(queries, |i| {
        let p = &profiles[(i * 104_729) % profiles.len().max(1)];
        std::hint::black_box(demand_ix.for_opc(p, &none, 10));
    });
    let queries_text: Vec<String> = (0..queries).map(|_| phrase(&mut rng, 2)).collect();
    let search = timed(queries, |i| {
        std::hint::black_box(demand_ix.search(&queries_text[i], &SearchFilter::default(), 20));
    });
    let filter = SearchFilter {
        category: Some("opc_agent_dev".into()),
        budget_at_least_fen: Some(1_000_000),
        ..Default::default()
    };
    let filtered = timed(queries, |i| {
        std::hint::black_box(demand_ix.search(&queries_text[i], &filter, 20));
    });

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| nDCG@10, labelled pool ({} OPCs) | {ndcg_pool:.3} |", set.opc.len());
    println!("| nDCG@10, labelled + synthetic ({} OPCs) | {ndcg_mixed:.3} |", opc_ix.len());
    println!("| OPC index build ({} profiles) | {:.1} s |", opc_ix.len(), opc_build.as_secs_f64());
    println!(
        "| demand index build ({} open demands) | {:.1} s |",
        demand_ix.len(),
        demand_build.as_secs_f64()
    );
    println!();
    println!("| operation ({queries} runs) | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|");
    for (name, v) in [
        ("recommend OPCs for a demand", &rec),
        ("demands for an OPC", &for_you),
        ("search open demands", &search),
        ("search + category/budget filter", &filtered),
    ] {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", pct(v, 0.5), pct(v, 0.99), pct(v, 1.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_lower_otherwise() {
        let mut rel = BTreeMap::new();
        rel.insert("a".to_string(), 2);
        rel.insert("b".to_string(), 1);
        let ideal = ndcg(&["a".into(), "b".into()], &rel, 10);
        assert!((ideal - 1.0).abs() < 1e-9);
        let swapped = ndcg(&["b".into(), "a".into()], &rel, 10);
        assert!(swapped < 1.0 && swapped > 0.0);
        assert_eq!(ndcg(&["x".into()], &rel, 10), 0.0);
    }

    #[test]
    fn the_eval_set_parses_and_every_label_names_a_profile() {
        let set: EvalSet = toml::from_str(EVAL).unwrap_or_else(|e| panic!("{e}"));
        let ids: BTreeSet<&str> = set.opc.iter().map(|o| o.opc_id.as_str()).collect();
        assert!(set.demand.len() >= 10);
        for d in &set.demand {
            for id in d.relevant.keys() {
                assert!(ids.contains(id.as_str()), "{} labels unknown OPC {id}", d.id);
            }
        }
    }
}
