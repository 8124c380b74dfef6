//! `opchub bench search`: Skill Store search latency (M2.3, issue 5 "Speed") with many listed
//! skills. Seeds `--skills` skills (Chinese and English names and summaries, the four kinds and
//! three categories, industry tags) through the store's own publish → submit → approve path,
//! then times the search behind `GET /api/v1/skills` (`SkillHub::search`: the in-memory index,
//! the cached public counts, filters, ranking, the top 50) plus the JSON encoding of its hits,
//! over a fixed mix of queries. Prints a table of p50/p99/max per query class and overall.
//!
//! Run it on a scratch database: `opchub --data-dir "$(mktemp -d)" bench search`.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use opchub_app::skills::{SearchQuery, SkillHub, SkillsConfig};
use opchub_domain::Role;
use opchub_store::accounts::NewUser;
use opchub_store::skills::{NewSkill, NewVersion, KINDS};
use opchub_store::{Actor, Store};
use std::time::{Duration, Instant};

/// (Chinese, English) topics; names and summaries combine them.
const TOPICS: &[(&str, &str)] = &[
    ("发票", "invoice"),
    ("视频生成", "video generation"),
    ("合同审查", "contract review"),
    ("翻译", "translation"),
    ("客服", "customer service"),
    ("数据分析", "data analysis"),
    ("财务报表", "financial report"),
    ("法律咨询", "legal advice"),
    ("数字人", "digital human"),
    ("直播", "live streaming"),
    ("知识库", "knowledge base"),
    ("海报设计", "poster design"),
    ("语音识别", "speech recognition"),
    ("招聘", "recruiting"),
    ("跨境电商", "cross-border ecommerce"),
    ("税务申报", "tax filing"),
    ("舆情监测", "sentiment monitoring"),
    ("病历整理", "medical records"),
    ("物流调度", "logistics scheduling"),
    ("营销文案", "marketing copy"),
];
const TAGS: &[&str] = &[
    "finance",
    "legal",
    "media",
    "education",
    "health",
    "retail",
    "manufacturing",
    "government",
];
const CATEGORIES: [&str; 3] = ["agent_tool", "aigc_production", "vertical_plugin"];

/// The query mix: (class, query, kind filter, category filter).
const QUERIES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("zh word", "发票", None, None),
    ("zh word", "翻译", None, None),
    ("zh word", "数字人", None, None),
    ("zh phrase", "视频生成工具", None, None),
    ("zh phrase", "合同审查 法律", None, None),
    ("en word", "invoice", None, None),
    ("en word", "translation", None, None),
    ("en words", "video generation", None, None),
    ("en words", "customer service tool", None, None),
    ("mixed", "发票 invoice", None, None),
    ("mixed", "知识库 knowledge", None, None),
    ("broad", "工具", None, None),
    ("broad", "tool", None, None),
    ("filtered", "数据分析", Some("mcp_server"), None),
    ("filtered", "report", None, Some("vertical_plugin")),
    ("no query", "", None, None),
    ("no match", "量子计算", None, None),
];

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn bar(n: u64, template: &str) -> ProgressBar {
    let b = ProgressBar::new(n);
    b.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    b
}

/// Publishes, submits and approves `n` skills (as a real publisher and platform operator would).
async fn seed(store: &Store, n: usize) -> Result<()> {
    let run = &opchub_store::new_id()[20..];
    let publisher = store
        .create_user(
            &Actor::system(),
            NewUser {
                username: &format!("bench-pub-{run}"),
                display_name: "bench publisher",
                role: Role::OpcFounder,
                password_hash: "!",
            },
        )
        .await?;
    let actor = Actor::user(&publisher.id, "opc_founder");
    let reviewer = Actor::user(&publisher.id, "platform_operator");
    let tools = serde_json::json!([{"name": "run", "description": "Runs the skill.", "input_schema": {"type": "object"}}]);
    let checks = serde_json::json!({});
    let progress = bar(n as u64, "seeding {bar:30} {pos}/{len} skills {per_sec} eta {eta}");
    for i in 0..n {
        let (zh, en) = TOPICS[i % TOPICS.len()];
        let (zh2, en2) = TOPICS[(i * 7 + 3) % TOPICS.len()];
        let slug = format!("bench-{run}-{i}");
        let name = if i % 2 == 0 {
            format!("{zh}{zh2}工具 {i}")
        } else {
            format!("{en} {en2} tool {i}")
        };
        let summary = format!("{zh}与{zh2}的智能体工具，帮助一人公司自动处理业务。An agent tool for {en} and {en2}, skill number {i}.");
        let tags = vec![TAGS[i % TAGS.len()].to_string(), TAGS[(i / 3) % TAGS.len()].to_string()];
        let hash = opchub_store::new_id();
        let (_, version) = store
            .create_skill(
                &actor,
                NewSkill {
                    slug: &slug,
                    name: &name,
                    summary: &summary,
                    kind: KINDS[i % KINDS.len()],
                    category: CATEGORIES[(i / 4) % CATEGORIES.len()],
                    tags: &tags,
                    homepage_url: None,
                    publisher_user_id: &publisher.id,
                    publisher_party: &publisher.id,
                },
                NewVersion {
                    version: "1.0.0",
                    content_hash: &hash,
                    price_fen: (i % 10) as i64,
                    endpoint_url: Some("http://127.0.0.1:9/mcp"),
                    openapi_url: None,
                    tools: &tools,
                    tools_hash: &hash,
                    manifest: None,
                    package_b64: None,
                    checks: &checks,
                },
            )
            .await?;
        store.submit_skill_version(&actor, &version.id).await?;
        store.review_skill_version(&reviewer, &version.id, true, "bench").await?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

pub async fn run(store: &Store, skills: usize, queries: usize) -> Result<()> {
    let listed = store.skills(true).await?.len();
    if listed < skills {
        let t = Instant::now();
        seed(store, skills - listed).await.context("seeding skills")?;
        println!(
            "seeded {} skills in {:.1} s (publish, submit, approve)",
            skills - listed,
            t.elapsed().as_secs_f64()
        );
    }
    let hub = SkillHub::new(SkillsConfig::default());
    let search = |q: &(&str, &str, Option<&str>, Option<&str>)| {
        let query = SearchQuery {
            q: Some(q.1.to_string()),
            kind: q.2.map(str::to_string),
            category: q.3.map(str::to_string),
            tag: None,
            limit: None,
        };
        let hub = &hub;
        async move {
            let hits = hub
                .search(store, &query)
                .await
                .map_err(|e| anyhow::anyhow!("search failed: {}", e.code))?;
            let body = serde_json::to_vec(&hits)?;
            anyhow::Ok((hits.len(), body.len()))
        }
    };
    // The first search builds the index (as after a restart or a change to the listed skills).
    let t = Instant::now();
    search(&QUERIES[0]).await?;
    let first = t.elapsed();
    let listed = store.skills(true).await?.len();

    let progress = bar(queries as u64, "searching {bar:30} {pos}/{len}");
    let mut by_class: Vec<(&str, Vec<Duration>, usize)> = Vec::new();
    let mut all = Vec::with_capacity(queries);
    for i in 0..queries {
        let q = &QUERIES[i % QUERIES.len()];
        let t = Instant::now();
        let (hits, _) = search(q).await?;
        let d = t.elapsed();
        all.push(d);
        match by_class.iter_mut().find(|(c, _, _)| *c == q.0) {
            Some((_, v, h)) => {
                v.push(d);
                *h = (*h).max(hits);
            }
            None => by_class.push((q.0, vec![d], hits)),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    println!(
        "Skill Store search over {listed} listed skills on {:?} (first search, building the index: {:.1} ms)",
        store.backend(),
        first.as_secs_f64() * 1000.0
    );
    println!();
    println!("| query class | runs | hits (top 50) | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (class, mut v, hits) in by_class {
        v.sort();
        println!(
            "| {class} | {} | {hits} | {:.3} | {:.3} | {:.3} |",
            v.len(),
            pct(&v, 0.5),
            pct(&v, 0.99),
            pct(&v, 1.0)
        );
    }
    all.sort();
    println!(
        "| **all** | {} | | **{:.3}** | **{:.3}** | {:.3} |",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0)
    );
    println!("(SkillHub::search — the work behind GET /api/v1/skills — plus JSON encoding of the hits, one query at a time)");
    Ok(())
}
