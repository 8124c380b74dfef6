//! Demo Skill Store (M2.3) for `serve --demo` and `opchub demo`: approved skills of every kind
//! and category, with Chinese and English names, published by demo OPCs, with calls counted in
//! the ledger and ratings from OPCs that used them.
//!
//! - Agent Skill packages and the AIGC application go through the same functions as the API
//!   (`publish_for` with its automated checks, `review_for` by the platform operator): the
//!   packages are real zips and can be installed with an invoker's key.
//! - MCP servers and HTTP tools need a publisher's server the platform can reach. The demo
//!   ships none: a built-in publisher would have to listen on loopback, which the platform
//!   refuses outside test mode (the rule against becoming a way into its own network, M2.3),
//!   and relaxing that rule for a demo is the wrong lesson. So these listings are written with
//!   their pinned tool lists as a reviewed version would hold them, at placeholder addresses in
//!   the reserved `.invalid` domain (RFC 6761, never resolvable), and say so in their summary:
//!   they can be searched, read, enabled and shown on `/mcp`'s `tools/list`, but a call fails.
//!   The tests publish real MCP and HTTP-tool skills against `opchub-fake-mcp` and the test
//!   tool server instead.

use anyhow::{anyhow, Result};
use opchub_app::skills::{publish_for, review_for, PublishRequest, ReviewRequest, VersionRequest};
use opchub_app::{App, AppError, Principal};
use opchub_ledger::metering;
use opchub_skills::tools::{HttpOperation, Tool};
use opchub_store::ledger::{Item, Outcome};
use opchub_store::skills::{NewSkill, NewVersion, SkillCall};
use serde_json::{json, Value};

fn api(e: AppError) -> anyhow::Error {
    anyhow!("demo skill: {} {:?} {:?}", e.code, e.detail, e.fields)
}

fn st(e: opchub_store::StoreError) -> anyhow::Error {
    anyhow!("demo skill: {e}")
}

async fn who(s: &App, username: &str) -> Result<Principal> {
    let user = s
        .store
        .user_by_username(username)
        .await
        .map_err(st)?
        .ok_or_else(|| anyhow!("demo user {username} missing"))?;
    Ok(Principal::cli(user))
}

/// An Agent Skill package: SKILL.md and its folders.
fn package(name: &str, description: &str, body: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let md = format!("---\nname: {name}\ndescription: {description}\nlicense: Apache-2.0\nmetadata:\n  author: opchub-demo\n---\n{body}\n");
    let mut entries: Vec<(&str, &[u8])> = vec![("SKILL.md", md.as_bytes())];
    for (path, text) in files {
        entries.push((path, text.as_bytes()));
    }
    opchub_skills::package::build_zip(&entries)
}

struct Published {
    skill_id: String,
    version_id: String,
    version_hash: String,
    slug: String,
    publisher_party: String,
    price_fen: i64,
    tool: String,
}

/// Publishes through the API's function and approves through the review function.
async fn publish_and_approve(s: &App, publisher: &Principal, platform: &Principal, r: PublishRequest, tool: &str) -> Result<Published> {
    let out = publish_for(s, publisher, &r).await.map_err(api)?;
    let v = review_for(
        s,
        platform,
        &out.version.id,
        &ReviewRequest {
            decision: Some("approve".into()),
            comment: Some("自动检查通过，内容与说明一致。".into()),
        },
    )
    .await
    .map_err(api)?;
    Ok(Published {
        skill_id: out.skill.id,
        version_id: v.id,
        version_hash: v.content_hash,
        slug: out.skill.slug,
        publisher_party: out.skill.publisher_party,
        price_fen: v.price_fen,
        tool: tool.into(),
    })
}

struct Remote {
    slug: &'static str,
    name: &'static str,
    summary: &'static str,
    kind: &'static str,
    category: &'static str,
    tags: &'static [&'static str],
    publisher: &'static str,
    price_fen: i64,
    endpoint: &'static str,
    tools: Vec<Tool>,
}

fn tool(name: &str, description: &str, schema: Value, http: Option<HttpOperation>) -> Tool {
    Tool {
        name: name.into(),
        description: description.into(),
        input_schema: schema,
        http,
    }
}

fn remotes() -> Vec<Remote> {
    let text = |k: &str| json!({"type": "object", "properties": {k: {"type": "string", "minLength": 1}}, "required": [k]});
    vec![
        Remote {
            slug: "fengtai-policy-qa",
            name: "丰台政策问答 Fengtai policy Q&A",
            summary: "按条款检索丰台区OPC扶持政策并解释申报条件。Searches the district's OPC measures by clause and explains who qualifies. 演示：发布方服务器为示例地址，调用会失败（Demo: placeholder server, calls fail）。",
            kind: "mcp_server",
            category: "agent_tool",
            tags: &["政策", "policy"],
            publisher: "opc",
            price_fen: 0,
            endpoint: "https://policy-qa.demo.opchub.invalid/mcp",
            tools: vec![
                tool("search_policy", "Searches the measures by keywords. 按关键词检索政策条款。", text("query"), None),
                tool("explain_clause", "Explains one clause (e.g. M2.3). 解释某一条款的适用条件。", text("clause"), None),
            ],
        },
        Remote {
            slug: "factory-defect-inspect",
            name: "工业质检助手 Factory defect inspection",
            summary: "上传产品照片，识别划痕、缺件等常见缺陷并生成质检报告。Finds scratches and missing parts in product photos. 演示：发布方服务器为示例地址，调用会失败（Demo: placeholder server, calls fail）。",
            kind: "mcp_server",
            category: "vertical_plugin",
            tags: &["制造", "manufacturing"],
            publisher: "opc04",
            price_fen: 50,
            endpoint: "https://inspect.demo.opchub.invalid/mcp",
            tools: vec![tool(
                "inspect_image",
                "Inspects one product image given by URL. 检查一张产品图片。",
                text("image_url"),
                None,
            )],
        },
        Remote {
            slug: "short-video-script",
            name: "短视频脚本生成 Short video scripts",
            summary: "输入商品卖点，生成抖音、视频号短视频分镜脚本。Storyboards for short marketing videos. 演示：发布方服务器为示例地址，调用会失败（Demo: placeholder server, calls fail）。",
            kind: "http_tool",
            category: "aigc_production",
            tags: &["短视频", "marketing"],
            publisher: "opc05",
            price_fen: 200,
            endpoint: "https://video-script.demo.opchub.invalid",
            tools: vec![tool(
                "create_script",
                "Writes a storyboard script from selling points. 根据卖点生成分镜脚本。",
                json!({"type": "object", "properties": {"body": {"type": "object", "properties": {"product": {"type": "string"}, "selling_points": {"type": "array", "items": {"type": "string"}}}, "required": ["product"]}}, "required": ["body"]}),
                Some(HttpOperation {
                    method: "post".into(),
                    path: "/scripts".into(),
                    path_params: vec![],
                    query_params: vec![],
                    has_body: true,
                }),
            )],
        },
    ]
}

/// A listed remote skill written as a reviewed version holds it (see the module comment).
async fn remote(s: &App, platform: &Principal, r: &Remote) -> Result<Published> {
    let store = &s.store;
    let principal = who(s, r.publisher).await?;
    let publisher = principal.user.clone();
    let party = opchub_app::skills::party_of(s, &publisher.id).await.map_err(api)?;
    let (canonical, tools_hash) = opchub_skills::tools::canonical(&r.tools);
    let content_hash =
        opchub_skills::sha256_hex(opchub_skills::tools::canonical_json(&json!({"endpoint": r.endpoint, "tools": canonical})).as_bytes());
    let checks = json!({
        "passed": ["tool_names", "tool_descriptions"],
        "tool_count": r.tools.len(),
        "tools_hash": tools_hash,
        "demo": "placeholder publisher address (.invalid): listed for the demo, not callable",
        "checked_at": opchub_store::now_ms(),
    });
    let tags: Vec<String> = r.tags.iter().map(|t| t.to_string()).collect();
    let actor = principal.actor();
    let (skill, v) = store
        .create_skill(
            &actor,
            NewSkill {
                slug: r.slug,
                name: r.name,
                summary: r.summary,
                kind: r.kind,
                category: r.category,
                tags: &tags,
                homepage_url: None,
                publisher_user_id: &publisher.id,
                publisher_party: &party,
            },
            NewVersion {
                version: "1.0.0",
                content_hash: &content_hash,
                price_fen: r.price_fen,
                endpoint_url: Some(r.endpoint),
                openapi_url: None,
                tools: &canonical,
                tools_hash: &tools_hash,
                manifest: None,
                package_b64: None,
                checks: &checks,
            },
        )
        .await
        .map_err(st)?;
    store.submit_skill_version(&actor, &v.id).await.map_err(st)?;
    let v = store
        .review_skill_version(&platform.actor(), &v.id, true, "演示数据：工具说明已审核。")
        .await
        .map_err(st)?;
    Ok(Published {
        skill_id: skill.id,
        version_id: v.id,
        version_hash: v.content_hash,
        slug: skill.slug,
        publisher_party: party,
        price_fen: v.price_fen,
        tool: r.tools.first().map(|t| t.name.clone()).unwrap_or_default(),
    })
}

/// Loads the demo skills once (nothing when any skill exists). Returns how many were listed.
/// Run before the ledger writer starts: the demo calls are appended to the ledger directly.
pub async fn load(s: &App) -> Result<usize> {
    if !s.store.skills(false).await.map_err(st)?.is_empty() {
        return Ok(0);
    }
    let platform = who(s, "platform").await?;
    let mut listed = Vec::new();

    let invoice = package(
        "invoice-organizer",
        "整理增值税发票并生成报销明细表。Sorts VAT invoices and builds an expense report.",
        "# 发票整理助手 Invoice organizer\n\n1. 读取用户提供的发票图片或 PDF。\n2. 按日期、类别汇总金额，生成报销明细表（CSV）。\n3. 运行 `scripts/organize.py` 校验合计。\n",
        &[
            (
                "scripts/organize.py",
                "import csv, sys\n\n# Sums the amount column of an expense CSV.\ntotal = sum(float(r['amount']) for r in csv.DictReader(open(sys.argv[1])))\nprint(f'{total:.2f}')\n",
            ),
            ("references/categories.md", "# 报销类别\n- 差旅\n- 办公\n- 餐饮\n"),
        ],
    );
    let contract = package(
        "contract-review-checklist",
        "按清单审查技术服务合同的关键条款并标出风险。Reviews service contracts against a checklist.",
        "# 合同审查清单 Contract review checklist\n\n逐条检查：主体、标的、价款与支付、知识产权归属、保密、违约责任、争议解决。\n",
        &[(
            "references/checklist.md",
            "# 检查项\n1. 合同主体与统一社会信用代码一致\n2. 付款节点与验收挂钩\n3. 知识产权归属明确\n",
        )],
    );
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let packages = [
        (
            "opc02",
            "发票整理助手 Invoice organizer",
            "agent_tool",
            vec!["财税", "finance"],
            invoice,
            "organize",
        ),
        (
            "opc03",
            "合同审查清单 Contract review checklist",
            "vertical_plugin",
            vec!["法律", "legal"],
            contract,
            "review",
        ),
    ];
    for (user, name, category, tags, zip, tool) in packages {
        let p = who(s, user).await?;
        let r = PublishRequest {
            name: Some(name.into()),
            summary: Some(
                name.split(' ')
                    .next()
                    .map(|zh| {
                        format!("{zh}：Agent Skill 技能包，下载后放入智能体的 skills 目录即可使用。An Agent Skill package for your agent.")
                    })
                    .unwrap_or_default(),
            ),
            kind: Some("agent_skill".into()),
            category: Some(category.into()),
            tags: Some(tags.into_iter().map(String::from).collect()),
            version: VersionRequest {
                version: Some("1.0.0".into()),
                price_fen: Some(0),
                package_base64: Some(b64(&zip)),
                submit: true,
                ..Default::default()
            },
            ..Default::default()
        };
        listed.push(publish_and_approve(s, &p, &platform, r, tool).await?);
    }
    let poster = PublishRequest {
        slug: Some("product-poster-studio".into()),
        name: Some("商品海报工作室 Product poster studio".into()),
        summary: Some("上传商品图，一键生成电商主图和活动海报。Generates e-commerce posters from product photos.".into()),
        kind: Some("aigc_app".into()),
        category: Some("aigc_production".into()),
        tags: Some(vec!["电商".into(), "design".into()]),
        homepage_url: Some("https://poster.demo.opchub.invalid/".into()),
        version: VersionRequest {
            version: Some("1.0.0".into()),
            submit: true,
            ..Default::default()
        },
    };
    listed.push(publish_and_approve(s, &who(s, "opc06").await?, &platform, poster, "open").await?);
    for r in remotes() {
        listed.push(remote(s, &platform, &r).await?);
    }

    // Calls from other demo OPCs (counted once each, in the ledger) and their ratings.
    let invokers = ["opc07", "opc08", "opc09", "opc10", "opc11"];
    let now = opchub_store::now_ms();
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (k, p) in listed.iter().enumerate() {
        for (j, user) in invokers.iter().enumerate().take(5 - k % 3) {
            let u = who(s, user).await?;
            let party = opchub_app::skills::party_of(s, &u.user.id).await.map_err(api)?;
            for n in 0..(1 + (k + j) % 4) {
                let at = now - ((k * 7 + j * 3 + n) as i64 % 20 + 1) * 86_400_000 / 2;
                let key = opchub_skills::sha256_hex(format!("demo\n{}\n{}\n{n}", u.user.id, p.slug).as_bytes());
                let latency_ms = 120 + (n as i64) * 35;
                let (request_digest, response_digest) = (
                    opchub_skills::sha256_hex(b"demo request"),
                    opchub_skills::sha256_hex(b"demo response"),
                );
                // The event a real call of the skill appends (the Skill Store's own builder).
                items.push(Item::Event(metering::skill_call(&metering::SkillCall {
                    call_key: &key,
                    invoker_party: &party,
                    publisher_party: &p.publisher_party,
                    skill_slug: &p.slug,
                    version: "1.0.0",
                    version_hash: &p.version_hash,
                    tool: &p.tool,
                    outcome: "ok",
                    latency_ms,
                    request_digest: &request_digest,
                    response_digest: &response_digest,
                    charged_fen: p.price_fen,
                    started_ms: at,
                    not_qualified_reason: None,
                })));
                rows.push(SkillCall {
                    call_key: key,
                    skill_id: p.skill_id.clone(),
                    version_id: p.version_id.clone(),
                    version_hash: p.version_hash.clone(),
                    tool: p.tool.clone(),
                    publisher_party: p.publisher_party.clone(),
                    invoker_party: party.clone(),
                    invoker_user_id: u.user.id.clone(),
                    outcome: "ok".into(),
                    qualified: true,
                    not_qualified_reason: None,
                    charged_fen: p.price_fen,
                    latency_ms,
                    request_digest,
                    response_digest,
                    leaf_index: None,
                    day: opchub_store::skills::call_day(at),
                    created_at: at,
                });
            }
        }
    }
    let outcomes = s.store.ledger_append(items).await.map_err(st)?;
    for (mut row, outcome) in rows.into_iter().zip(outcomes) {
        if let Outcome::Stored(r) | Outcome::Duplicate(r) = outcome {
            row.leaf_index = Some(r.leaf_index);
        }
        s.store.record_skill_call(&row).await.map_err(st)?;
    }
    let comments = [
        (5, "好用，省了很多时间。"),
        (4, "效果不错，希望支持更多格式。"),
        (5, "Works well for our team."),
    ];
    for (k, p) in listed.iter().enumerate() {
        for (j, (stars, comment)) in comments.iter().enumerate().take(1 + k % 3) {
            let u = who(s, invokers[j]).await?;
            s.store.rate_skill(&p.skill_id, &u.user.id, *stars, comment).await.map_err(st)?;
        }
    }
    s.skills.invalidate();
    Ok(listed.len())
}
