//! Demo data: a realistic picture of OPC Hub in Fengtai district, Beijing — role accounts,
//! communities in every G2 key zone with their workstations, about fifty OPCs across the three
//! theme packages, enterprises of the district and service-window tickets.
//!
//! Everything goes through the store API (so every change has its audit entry) and is
//! deterministic: names, USCCs, workstation choices and ticket states come from fixed lists
//! and a seeded RNG, so every run produces the same data (only ids and timestamps differ).

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use opchub_domain::{Role, Uscc, WorkstationStatus, Zone};
use opchub_store::accounts::{NewUser, User};
use opchub_store::registry::{Founder, NewCommunity, RegisterOpc};
use opchub_store::{Actor, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "opchub-demo";

/// What [`load_demo`] created. `tickets` counts question tickets and the licence tickets opened
/// automatically for OPCs without a USCC.
pub struct DemoSummary {
    pub users: usize,
    pub communities: usize,
    pub workstations: usize,
    pub opcs: usize,
    pub enterprises: usize,
    pub tickets: usize,
    /// One row per role account: (role code, username, password).
    pub credentials: Vec<(String, String, String)>,
}

const SEED: u64 = 0x0FC_2025_1106;

/// Role accounts and extra staff created as plain users (the `opc` and `enterprise` accounts are
/// created with their company). (role, username, display name)
const STAFF: [(Role, &str, &str); 16] = [
    (Role::PlatformOperator, "platform", "周子墨"),
    (Role::Specialist, "specialist", "刘静"),
    (Role::Specialist, "specialist2", "陈思远"),
    (Role::Committee, "committee", "丰台园管委会 · 郑国强"),
    // The second signature (issue 17): a batch is approved by a committee member other than its drafter.
    (Role::Committee, "committee2", "丰台园管委会 · 林晓彤"),
    (Role::Agency, "agency", "区科信局 · 何建华"),
    (Role::Agency, "agency-commerce", "区商务局 · 杜宏伟"),
    (Role::Agency, "agency-hr", "区人力社保局 · 吕晓燕"),
    (Role::Agency, "agency-finance", "区财政局预算科 · 严志明"),
    (Role::Agency, "agency-fund", "政策性基金 · 魏子涵"),
    (Role::Finance, "finance", "区财政局 · 冯丽君"),
    (Role::Auditor, "auditor", "审计 · 秦志远"),
    (Role::CommunityOperator, "operator", "王海燕"),
    (Role::CommunityOperator, "operator2", "赵立新"),
    (Role::CommunityOperator, "operator3", "孙晓雯"),
    (Role::CommunityOperator, "operator4", "马骏"),
];

/// Which district agency each agency account reviews for (F1; the policy file's `review_agency`).
const AGENCIES: [(&str, &str); 5] = [
    ("agency", "science_technology"),
    ("agency-commerce", "commerce"),
    ("agency-hr", "human_resources"),
    ("agency-finance", "finance"),
    ("agency-fund", "investment_fund"),
];

/// The login table: one memorable account per role, in role order.
const LOGINS: [(Role, &str); 9] = [
    (Role::OpcFounder, "opc"),
    (Role::Enterprise, "enterprise"),
    (Role::CommunityOperator, "operator"),
    (Role::PlatformOperator, "platform"),
    (Role::Specialist, "specialist"),
    (Role::Committee, "committee"),
    (Role::Agency, "agency"),
    (Role::Finance, "finance"),
    (Role::Auditor, "auditor"),
];

struct CommunitySeed {
    name: &'static str,
    company: &'static str,
    zone: Zone,
    address: &'static str,
    workstations: u32,
    operator: &'static str,
}

const COMMUNITIES: [CommunitySeed; 7] = [
    CommunitySeed {
        name: "丰台科技园OPC创新社区",
        company: "北京丰科创新孵化器有限公司",
        zone: Zone::ZhongguancunFengtaiPark,
        address: "北京市丰台区汽车博物馆东路6号院3号楼",
        workstations: 30,
        operator: "operator",
    },
    CommunitySeed {
        name: "丰台科学城AI+OPC社区",
        company: "北京科学城智算空间运营管理有限公司",
        zone: Zone::ZhongguancunFengtaiPark,
        address: "北京市丰台区海鹰路6号院2号楼",
        workstations: 24,
        operator: "operator",
    },
    CommunitySeed {
        name: "河西长辛店OPC创客社区",
        company: "北京长辛店创新园运营管理有限公司",
        zone: Zone::HexiArea,
        address: "北京市丰台区长辛店大街23号院",
        workstations: 18,
        operator: "operator2",
    },
    CommunitySeed {
        name: "青创村·首经贸OPC驿站",
        company: "北京青创村科技企业孵化器有限公司",
        zone: Zone::Line10YouthVillage,
        address: "北京市丰台区纪家庙路1号院",
        workstations: 20,
        operator: "operator3",
    },
    CommunitySeed {
        name: "青创村·草桥OPC空间",
        company: "北京草桥青年创业服务有限公司",
        zone: Zone::Line10YouthVillage,
        address: "北京市丰台区草桥东路8号院",
        workstations: 16,
        operator: "operator3",
    },
    CommunitySeed {
        name: "IBI国际OPC孵化社区",
        company: "北京国际企业孵化中心运营管理有限公司",
        zone: Zone::IbiIncubator,
        address: "北京市丰台区南四环西路188号总部基地十八区",
        workstations: 22,
        operator: "operator4",
    },
    CommunitySeed {
        name: "丽泽金融商务区OPC社区",
        company: "北京丽泽数智科技服务有限公司",
        zone: Zone::OtherKeyZone,
        address: "北京市丰台区丽泽路18号院1号楼",
        workstations: 14,
        operator: "operator4",
    },
];

/// (name, zone, owner display name). The first is owned by the `enterprise` account.
const ENTERPRISES: [(&str, Zone, &str); 10] = [
    ("北京丰台科技园投资发展有限公司", Zone::ZhongguancunFengtaiPark, "高建平"),
    ("北京轨道交通智能信号技术有限公司", Zone::ZhongguancunFengtaiPark, "罗文涛"),
    ("北京航丰医疗器械有限公司", Zone::ZhongguancunFengtaiPark, "谢雨萱"),
    ("北京河西智造装备有限公司", Zone::HexiArea, "田国华"),
    ("北京长辛店文旅发展有限公司", Zone::HexiArea, "唐秀兰"),
    ("北京草桥花卉电商科技有限公司", Zone::Line10YouthVillage, "韩志刚"),
    ("北京丰益云计算科技有限公司", Zone::Line10YouthVillage, "曹敏"),
    ("北京启航国际企业服务有限公司", Zone::IbiIncubator, "彭晓燕"),
    ("北京丽泽金融科技服务有限公司", Zone::OtherKeyZone, "袁博"),
    ("北京南中轴数字文化传媒有限公司", Zone::OtherKeyZone, "蒋丽华"),
];

/// One OPC per brand (字号); the first belongs to the `opc` account.
const BRANDS: [&str; 50] = [
    "智语未来",
    "言川",
    "深湾智算",
    "灵犀问答",
    "青禾",
    "知微",
    "星图",
    "蓝鲸思维",
    "元启",
    "拾光",
    "澄明",
    "若水",
    "云帆",
    "知更鸟",
    "明镜",
    "燎原",
    "万象",
    "南山",
    "北辰",
    "长风",
    "观止",
    "行知",
    "问津",
    "致远",
    "微光",
    "鹿鸣",
    "听澜",
    "栖木",
    "一苇",
    "清源",
    "锦程",
    "伯乐",
    "竹简",
    "朝露",
    "砚台",
    "方寸",
    "乐言",
    "知意",
    "润物",
    "熙禾",
    "雁栖",
    "岚山",
    "墨池",
    "晓语",
    "维度",
    "丰泽",
    "启元",
    "见微",
    "青鸾",
    "卓思",
];

/// Theme package codes (catalog/theme_packages.toml) and company-name endings that fit them.
const THEMES: [(&str, &[&str]); 3] = [
    ("opc_llm_dev", &["科技有限公司", "人工智能科技有限公司", "智能科技有限公司"]),
    ("opc_agent_dev", &["智能科技有限公司", "软件科技有限公司", "信息技术有限公司"]),
    ("opc_digital_human", &["数字科技有限公司", "文化科技有限公司", "数字传媒有限公司"]),
];

const SURNAMES: [&str; 40] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高", "郑", "梁",
    "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余", "杜",
];

const GIVEN_NAMES: [&str; 40] = [
    "子涵", "浩然", "雨桐", "思远", "梓萱", "一鸣", "晓东", "佳怡", "明轩", "欣怡", "宇航", "嘉懿", "俊杰", "雪婷", "志强", "丽娜", "文博",
    "诗琪", "天佑", "若曦", "晨阳", "静怡", "昊天", "梦瑶", "建国", "海涛", "慧敏", "振宇", "婉清", "鹏飞", "凯", "磊", "婷", "洋", "芳",
    "伟", "敏", "杰", "琳", "涛",
];

/// OPCs without a USCC yet (a licence ticket opens for each).
const PENDING: [usize; 4] = [9, 21, 34, 46];
/// A community keeps at least this many workstations free.
const KEEP_FREE: usize = 3;

struct Question {
    subject: &'static str,
    body: &'static str,
    theme: Option<&'static str>,
    reply: Option<&'static str>,
    follow_up: Option<&'static str>,
    close: bool,
}

/// Question tickets. The first is asked by the `opc` account.
const QUESTIONS: [Question; 10] = [
    Question {
        subject: "算法备案需要准备哪些材料？",
        body: "我们基于开源大模型开发了一款面向律所的合同审查助手，计划下个月面向公众上线。请问需要做算法备案还是生成式人工智能服务备案？分别要准备哪些材料，大概需要多长时间？",
        theme: Some("opc_llm_dev"),
        reply: Some(
            "您好！面向公众提供生成式人工智能服务，需要在网信部门完成相应的备案或登记，同时通过“互联网信息服务算法备案系统”填报算法备案。一般需准备：主体资质材料、算法基本原理与安全自评估报告、语料来源与标注规则说明、拟公示内容和应急处置预案。材料齐全后建议先来服务专窗预审，我们可以帮您对照清单逐项检查。",
        ),
        follow_up: None,
        close: false,
    },
    Question {
        subject: "工位能否作为营业执照注册地址？",
        body: "社区给我分配的工位能不能直接作为公司注册地址？办理时需要社区出具哪些证明材料？",
        theme: None,
        reply: Some("可以。平台上的工位记录即为地址备案记录，社区运营方会出具场地使用证明，办理营业执照或变更登记时在“我的企业”页面下载即可。"),
        follow_up: None,
        close: true,
    },
    Question {
        subject: "算力补贴怎么申请？",
        body: "听说区里对 OPC 有算力券支持，我们每月在云上训练和推理的费用大约两万元，请问申请条件和流程是什么？",
        theme: Some("opc_llm_dev"),
        reply: Some("算力支持按季度集中受理，需提供营业执照、近三个月算力采购合同与发票以及项目简介。申报窗口开放后平台会发送通知，届时在线提交即可，专员会协助初审。"),
        follow_up: None,
        close: true,
    },
    Question {
        subject: "登记小规模纳税人还是一般纳税人？",
        body: "公司刚成立，预计第一年收入在 80 万元左右，主要客户是企业。应该登记为小规模纳税人还是一般纳税人？",
        theme: None,
        reply: Some(
            "年应税销售额未超过 500 万元的可以登记为小规模纳税人，申报相对简便；如果客户普遍要求 6% 的增值税专用发票，也可以主动申请登记为一般纳税人。建议结合客户的开票需求决定，我们可以帮您预约税务辅导。",
        ),
        follow_up: Some("我们的客户大多要求专票。登记为一般纳税人之后还能转回小规模纳税人吗？"),
        close: false,
    },
    Question {
        subject: "数字人形象的肖像授权怎么处理？",
        body: "我们为客户定制数字人主播，用的是真人模特的形象和声音。肖像和声音授权协议需要包含哪些内容？平台能提供合同模板吗？",
        theme: Some("opc_digital_human"),
        reply: Some(
            "建议授权协议明确：授权范围（形象、声音）、使用场景与期限、能否生成新内容、收益分成与撤回机制，并对深度合成内容做显著标识。服务专窗有合作律所提供的参考模板，可到专窗领取或预约线上法律咨询。",
        ),
        follow_up: None,
        close: false,
    },
    Question {
        subject: "软件著作权登记流程是怎样的？",
        body: "我们开发了一套面向制造企业的工单智能体，想先申请软件著作权。需要提交哪些材料，大概多久能下证？",
        theme: Some("opc_agent_dev"),
        reply: Some(
            "软件著作权登记在中国版权保护中心办理，需提交申请表、主体证明、源程序前后各连续 30 页以及用户手册等文档，审查周期通常为一到两个月。园区为 OPC 提供知识产权代办服务，可在专窗登记。",
        ),
        follow_up: None,
        close: false,
    },
    Question {
        subject: "怎样对接区内企业的采购需求？",
        body: "我们可以为企业做客服和财务流程智能体，想了解区内企业有没有相关的采购需求，平台能否帮忙对接？",
        theme: Some("opc_agent_dev"),
        reply: Some("可以。平台的企业需求板块会陆续发布区内企业的场景需求，我们已将贵公司加入智能体方向的推荐名单，有匹配的需求会第一时间通知您。"),
        follow_up: None,
        close: false,
    },
    Question {
        subject: "社保和公积金账户如何开户？",
        body: "公司只有我一个人，需要给自己缴纳社保和公积金吗？单位账户在哪里开户？",
        theme: None,
        reply: None,
        follow_up: None,
        close: false,
    },
    Question {
        subject: "能否申请高新技术企业认定？",
        body: "公司成立不到一年，已有两项软件著作权，能否申请高新技术企业认定？需要满足哪些条件？",
        theme: Some("opc_llm_dev"),
        reply: None,
        follow_up: None,
        close: false,
    },
    Question {
        subject: "工位能否更换到其他社区？",
        body: "目前的工位离客户较远，能否在同一区域内换到另一个社区的工位？换工位会影响已登记的注册地址吗？",
        theme: Some("opc_digital_human"),
        reply: None,
        follow_up: None,
        close: false,
    },
];

/// An OPC created by the loader, as the ticket step needs it.
struct DemoOpc {
    id: String,
    founder: User,
    theme: &'static str,
    registered: bool,
    specialist: Option<User>,
}

/// Loads demo data unless the database already holds OPCs (then returns Ok(None)).
/// `password_hash` is one precomputed argon2 hash of [`DEMO_PASSWORD`] used for every demo user.
pub async fn load_demo(store: &Store, password_hash: &str, progress: &ProgressBar) -> Result<Option<DemoSummary>> {
    if store.counts().await.context("counting existing data")?.opcs > 0 {
        return Ok(None);
    }
    let actor = Actor::system();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut usccs: HashSet<String> = HashSet::new();
    let steps = STAFF.len() + COMMUNITIES.len() + BRANDS.len() + ENTERPRISES.len() + QUESTIONS.len();
    progress.set_length(steps as u64);
    progress.set_position(0);

    // ---- staff accounts ----
    progress.set_message("用户 (accounts)");
    let mut staff: HashMap<&str, User> = HashMap::new();
    for (role, username, display_name) in STAFF {
        let user = store
            .create_user(
                &actor,
                NewUser {
                    username,
                    display_name,
                    role,
                    password_hash,
                },
            )
            .await
            .with_context(|| format!("creating demo user {username}"))?;
        if let Some((_, agency)) = AGENCIES.iter().find(|(u, _)| *u == username) {
            store.set_user_agency(&actor, &user.id, agency).await?;
        }
        staff.insert(username, user);
        progress.inc(1);
    }
    let mut users = STAFF.len();

    // ---- communities and workstations ----
    let mut communities = Vec::with_capacity(COMMUNITIES.len());
    // Free workstation ids per community, in the (seeded) order they are handed out.
    let mut free: Vec<Vec<String>> = Vec::with_capacity(COMMUNITIES.len());
    let mut workstations = 0usize;
    for seed in &COMMUNITIES {
        progress.set_message(format!("社区 {}", seed.name));
        let operator = staff_user(&staff, seed.operator)?;
        let uscc = new_uscc(&mut rng, &mut usccs, "MA0")?;
        let community = store
            .create_community(
                &actor,
                NewCommunity {
                    name: seed.name,
                    company_name: seed.company,
                    company_uscc: &uscc,
                    zone: seed.zone,
                    address: seed.address,
                    operator_user_id: &operator.id,
                    workstations: seed.workstations,
                },
            )
            .await
            .with_context(|| format!("creating community {}", seed.name))?;
        workstations += seed.workstations as usize;
        let mut ids: Vec<String> = store.workstations(&community.id).await?.into_iter().map(|w| w.id).collect();
        ids.shuffle(&mut rng);
        for _ in 0..rng.gen_range(1..=2) {
            let id = ids.pop().context("community without workstations")?;
            store
                .set_workstation_status(&actor, &id, WorkstationStatus::Reserved)
                .await
                .context("reserving a workstation")?;
        }
        communities.push(community);
        free.push(ids);
        progress.inc(1);
    }

    // ---- OPCs ----
    let mut founder_names: HashSet<String> = HashSet::new();
    let mut opcs: Vec<DemoOpc> = Vec::with_capacity(BRANDS.len());
    // Theme packages in equal shares, in a seeded order.
    let mut themes: Vec<usize> = (0..BRANDS.len()).map(|i| i % THEMES.len()).collect();
    themes.shuffle(&mut rng);
    for (i, brand) in BRANDS.iter().enumerate() {
        let (name, founder_name, theme, ci) = if i == 0 {
            ("北京智语未来科技有限公司".to_string(), "李明轩".to_string(), "opc_llm_dev", 0)
        } else {
            let &(theme, endings) = themes.get(i).and_then(|&t| THEMES.get(t)).context("theme index")?;
            let ending = endings.choose(&mut rng).context("theme without name endings")?;
            let founder_name = new_person(&mut rng, &mut founder_names);
            (
                format!("北京{brand}{ending}"),
                founder_name,
                theme,
                pick_community(&mut rng, &free)?,
            )
        };
        founder_names.insert(founder_name.clone());
        progress.set_message(format!("OPC {name}"));
        let community = communities.get(ci).context("community index")?;
        let workstation = free.get_mut(ci).and_then(Vec::pop).context("no free workstation left")?;
        let registered = !PENDING.contains(&i);
        let uscc = if registered {
            Some(new_uscc(&mut rng, &mut usccs, if i % 3 == 0 { "MAD" } else { "MAC" })?)
        } else {
            None
        };
        let username = if i == 0 { "opc".to_string() } else { format!("opc{:02}", i + 1) };
        // Main industries of AI OPCs (GB/T 4754-2017): application and other software, systems
        // integration, IT consulting, digital content.
        let industry = opchub_domain::IndustryCode::parse(DEMO_OPC_INDUSTRIES[i % DEMO_OPC_INDUSTRIES.len()])?;
        let (opc, founder) = store
            .register_opc(
                &actor,
                RegisterOpc {
                    founder: Founder::New(NewUser {
                        username: &username,
                        display_name: &founder_name,
                        role: Role::OpcFounder,
                        password_hash,
                    }),
                    name: &name,
                    uscc: uscc.as_ref(),
                    founder_name: &founder_name,
                    zone: community.zone,
                    theme_package: theme,
                    workstation_id: &workstation,
                    tax_registered: registered && i % 11 != 7,
                    industry_code: Some(&industry),
                },
            )
            .await
            .with_context(|| format!("registering OPC {name}"))?;
        users += 1;
        // The committee assigns specialists by zone; a few OPCs are still waiting for one.
        let specialist = if i % 7 == 3 {
            None
        } else {
            let username = match community.zone {
                Zone::ZhongguancunFengtaiPark | Zone::Line10YouthVillage => "specialist",
                Zone::HexiArea | Zone::IbiIncubator | Zone::OtherKeyZone => "specialist2",
            };
            let specialist = staff_user(&staff, username)?;
            store
                .assign_specialist(&actor, &opc.id, &specialist.id)
                .await
                .context("assigning a specialist")?;
            Some(specialist.clone())
        };
        opcs.push(DemoOpc {
            id: opc.id,
            founder,
            theme,
            registered,
            specialist,
        });
        progress.inc(1);
    }

    // ---- enterprises ----
    let mut enterprise_login: Option<User> = None;
    for (i, (name, zone, owner_name)) in ENTERPRISES.iter().enumerate() {
        progress.set_message(format!("企业 {name}"));
        let username = if i == 0 {
            "enterprise".to_string()
        } else {
            format!("enterprise{:02}", i + 1)
        };
        let uscc = new_uscc(&mut rng, &mut usccs, "")?;
        let (_, owner) = store
            .create_enterprise(
                &actor,
                NewUser {
                    username: &username,
                    display_name: owner_name,
                    role: Role::Enterprise,
                    password_hash,
                },
                name,
                &uscc,
                *zone,
            )
            .await
            .with_context(|| format!("creating enterprise {name}"))?;
        if i == 0 {
            enterprise_login = Some(owner);
        }
        users += 1;
        progress.inc(1);
    }

    // ---- question tickets ----
    let mut candidates: Vec<usize> = (1..opcs.len())
        .filter(|&i| opcs[i].registered && opcs[i].specialist.is_some())
        .collect();
    candidates.shuffle(&mut rng);
    let mut tickets = PENDING.len();
    for (qi, q) in QUESTIONS.iter().enumerate() {
        progress.set_message(format!("工单 {}", q.subject));
        let oi = if qi == 0 {
            0
        } else {
            let pos = candidates
                .iter()
                .position(|&i| q.theme.is_none_or(|t| opcs[i].theme == t))
                .or_else(|| (!candidates.is_empty()).then_some(0))
                .context("not enough OPCs for the demo tickets")?;
            candidates.remove(pos)
        };
        let opc = opcs.get(oi).context("OPC index")?;
        let ticket = store
            .create_ticket(&actor, &opc.id, &opc.founder.id, "question", q.subject, q.body)
            .await
            .with_context(|| format!("creating ticket {}", q.subject))?;
        tickets += 1;
        if let (Some(reply), Some(specialist)) = (q.reply, opc.specialist.as_ref()) {
            store
                .reply_ticket(&actor, &ticket.id, specialist, reply)
                .await
                .context("replying to a ticket")?;
            if let Some(follow_up) = q.follow_up {
                store
                    .reply_ticket(&actor, &ticket.id, &opc.founder, follow_up)
                    .await
                    .context("following up a ticket")?;
            }
            if q.close {
                store.close_ticket(&actor, &ticket.id).await.context("closing a ticket")?;
            }
        }
        progress.inc(1);
    }

    // ---- the login table ----
    let mut credentials = Vec::with_capacity(LOGINS.len());
    for (role, username) in LOGINS {
        let user = match role {
            Role::OpcFounder => opcs.first().map(|o| &o.founder),
            Role::Enterprise => enterprise_login.as_ref(),
            _ => staff.get(username),
        };
        let user = user.with_context(|| format!("demo account {username} missing"))?;
        credentials.push((role.as_str().to_string(), user.username.clone(), DEMO_PASSWORD.to_string()));
    }
    progress.set_message("完成 (done)");

    Ok(Some(DemoSummary {
        users,
        communities: communities.len(),
        workstations,
        opcs: opcs.len(),
        enterprises: ENTERPRISES.len(),
        tickets,
        credentials,
    }))
}

fn staff_user<'a>(staff: &'a HashMap<&str, User>, username: &str) -> Result<&'a User> {
    staff.get(username).with_context(|| format!("demo user {username} missing"))
}

/// A community for the next OPC, weighted by the workstations it can still hand out.
fn pick_community(rng: &mut StdRng, free: &[Vec<String>]) -> Result<usize> {
    let weights: Vec<usize> = free.iter().map(|ids| ids.len().saturating_sub(KEEP_FREE)).collect();
    let total: usize = weights.iter().sum();
    if total == 0 {
        bail!("the demo communities have no workstations left");
    }
    let mut r = rng.gen_range(0..total);
    weights
        .iter()
        .position(|&w| {
            if r < w {
                true
            } else {
                r -= w;
                false
            }
        })
        .context("weighted choice out of range")
}

/// A Chinese personal name not used before.
fn new_person(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    loop {
        let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
        let given = GIVEN_NAMES[rng.gen_range(0..GIVEN_NAMES.len())];
        let name = format!("{surname}{given}");
        if taken.insert(name.clone()) {
            return name;
        }
    }
}

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A unique, valid Fengtai USCC: 9 (market regulator) 1 (enterprise) 110106 (丰台区), then a
/// 9-character organisation code (8 characters starting with `prefix`, e.g. `MAC` for recent
/// registrations or empty for an older numeric code, plus its GB 11714 check character) and the
/// GB 32100 check character.
fn new_uscc(rng: &mut StdRng, taken: &mut HashSet<String>, prefix: &str) -> Result<Uscc> {
    loop {
        let mut body = prefix.to_string();
        if prefix.is_empty() {
            body.push(char::from(b'5' + rng.gen_range(0..4u8)));
            while body.len() < 8 {
                body.push(char::from(b'0' + rng.gen_range(0..10u8)));
            }
        }
        while body.len() < 8 {
            body.push(char::from(USCC_ALPHABET[rng.gen_range(0..USCC_ALPHABET.len())]));
        }
        let first17 = format!("91110106{body}{}", org_code_check(&body));
        if taken.insert(first17.clone()) {
            return Uscc::complete(&first17).with_context(|| format!("demo USCC {first17}"));
        }
    }
}

/// GB 11714 check character of an 8-character organisation code body.
fn org_code_check(body: &str) -> char {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| {
            let v = if b.is_ascii_digit() {
                u32::from(b - b'0')
            } else {
                u32::from(b.saturating_sub(b'A')) + 10
            };
            v * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from_digit(c, 10).unwrap_or('0'),
    }
}

/// Demo usage in the ledger: two weeks of model tokens for the first OPCs (through their
/// community's discounted channel, M2.2) and skill calls between OPCs (M2.3), then a signed
/// checkpoint. Skipped when the ledger already has events.
pub async fn load_demo_usage(store: &Store, key: &opchub_ledger::checkpoint::LedgerKey, origin: &str) -> anyhow::Result<()> {
    use opchub_ledger::metering::{self, TokenKind};
    use opchub_store::ledger::Item;
    if store.ledger_size().await.map_err(|e| anyhow::anyhow!("{e}"))? > 0 {
        return Ok(());
    }
    let mut opcs = store.opcs(None, None, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The demo founder `opc` first, so that its "my usage" page has data.
    if let Some(u) = store.user_by_username("opc").await.map_err(|e| anyhow::anyhow!("{e}"))? {
        if let Some(pos) = opcs.iter().position(|o| o.founder_user_id == u.id) {
            let own = opcs.remove(pos);
            opcs.insert(0, own);
        }
    }
    let now = opchub_store::now_ms();
    // The demo's history spans the last two months and this one, so closed months have bills
    // (issue 19 item 6): its OPCs registered before it began.
    const HISTORY_DAYS: i64 = 56;
    for o in &opcs {
        store
            .set_opc_registered_at(&Actor::system(), &o.id, now - (HISTORY_DAYS + 7) * 86_400_000)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut rng = StdRng::seed_from_u64(2026);
    let mut items = vec![];
    // Built by the platform's own metering builders, exactly as the gateway, the Skill Store
    // and a confirmed cooperation payment build them: the demo's events are real events.
    let mut operator_of: HashMap<String, String> = HashMap::new();
    for c in store.communities(None, None).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        operator_of.insert(c.id, c.operator_user_id);
    }
    for (i, o) in opcs.iter().take(20).enumerate() {
        let Some(operator) = operator_of.get(&o.community_id) else {
            continue;
        };
        for day in (0..HISTORY_DAYS).step_by(2) {
            let at = now - day * 86_400_000 - rng.gen_range(0..3_600_000);
            let input = rng.gen_range(20_000..400_000i64);
            let output = input / rng.gen_range(2..6i64);
            let request_id = format!("demo-{i}-{day}");
            let request = metering::GatewayRequest {
                request_id: &request_id,
                subject: &o.id,
                operator_user_id: operator,
                channel_id: "demo-channel",
                model: "demo-chat",
                endpoint: "chat/completions",
                price_version: "demo-2026-11",
                estimated: false,
                outcome: "ok",
                started_ms: at,
            };
            // List ¥4 / ¥12 per million tokens; OPCs pay half (M2.2 discount).
            items.push(Item::Event(metering::token(&request, TokenKind::Input, input, 400, 200)));
            items.push(Item::Event(metering::token(&request, TokenKind::Output, output, 1200, 600)));
            if day % 3 == 0 {
                // Paid calls between OPCs at ¥2.00 a call (M2.3), one event per call.
                let publisher = &opcs[(i + 7) % opcs.len()];
                for n in 0..rng.gen_range(1..40i64) {
                    let key = format!("demo-{i}-{day}-call-{n}");
                    items.push(Item::Event(metering::skill_call(&metering::SkillCall {
                        call_key: &key,
                        invoker_party: &o.id,
                        publisher_party: &publisher.id,
                        skill_slug: "demo-consulting",
                        version: "1.0.0",
                        version_hash: "demo",
                        tool: "consult",
                        outcome: "ok",
                        latency_ms: 120,
                        request_digest: "",
                        response_digest: "",
                        charged_fen: 200,
                        started_ms: at + n * 1_000,
                        not_qualified_reason: None,
                    })));
                }
            }
        }
    }
    // Confirmed cooperation payments from district companies to OPCs (M2.4).
    let parties = store.settlement_parties().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for (k, e) in parties.enterprises.iter().take(3).enumerate() {
        let opc = &opcs[(k * 3 + 1) % opcs.len()];
        let (payment, cooperation) = (format!("demo-coop-{k}"), format!("demo-cooperation-{k}"));
        items.push(Item::Event(metering::cooperation_payment(&metering::CooperationPayment {
            payment_id: &payment,
            cooperation_id: &cooperation,
            demand_id: "demo-demand",
            enterprise_id: &e.id,
            opc_id: &opc.id,
            amount_fen: 2_000_000 + 1_500_000 * k as i64,
            invoice_number: "demo",
            invoice_sha256: None,
            occurred_at_ms: now - (k as i64 + 1) * 60_000,
            confirmed_by: None,
        })));
    }
    let n = items.len();
    store.ledger_append(items).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    load_demo_settlement_inputs(store, &parties).await?;
    let (months, bills) = load_demo_bills(store, key, origin, &opcs, now - HISTORY_DAYS * 86_400_000).await?;
    println!("demo bills: {bills} issued for {months} closed months");
    store
        .ledger_checkpoint(key, origin, "demo")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("demo usage: {n} ledger events, checkpoint signed");
    Ok(())
}

/// Closes the demo history's ended months (their bills are issued) and pays them as people
/// would (issue 19 item 6): the older months in full; in the last closed month the demo founder
/// `opc` still owes its skill bill, a third OPC has paid nothing (its community operator's M2.2
/// line and its M2.3 lines wait on it), a fifth recorded paying and awaits its payees'
/// confirmation, a sixth paid half; everyone else paid. Returns (months closed, bills issued).
async fn load_demo_bills(
    store: &Store,
    key: &opchub_ledger::checkpoint::LedgerKey,
    origin: &str,
    opcs: &[opchub_store::registry::Opc],
    since_ms: i64,
) -> anyhow::Result<(usize, usize)> {
    use opchub_store::bills::NewBillPayment;
    let err = |e: opchub_store::StoreError| anyhow::anyhow!("{e}");
    let system = Actor::system();
    let this_month = opchub_ledger::event::period_of(opchub_store::now_ms());
    let mut months = vec![];
    let mut m = opchub_ledger::event::period_of(since_ms);
    while m < this_month {
        months.push(m.clone());
        let Some(next) = opchub_ledger::bills::day_after_month(&m) else {
            break;
        };
        m = next.get(..7).unwrap_or_default().to_string();
    }
    let founder = |i: usize| opcs.get(i).map(|o| o.id.as_str()).unwrap_or_default();
    let mut issued = 0;
    for (n, month) in months.iter().enumerate() {
        issued += store.ledger_close_period(&system, key, origin, month).await.map_err(err)?.1;
        let latest = n + 1 == months.len();
        let paid_on = opchub_ledger::bills::day_after_month(month).unwrap_or_default();
        for (k, b) in store
            .issued_bills(Some(month), None, None)
            .await
            .map_err(err)?
            .into_iter()
            .enumerate()
        {
            if b.total_fen == 0 {
                continue;
            }
            let is_skill = opcs.iter().any(|o| o.id == b.payee);
            let (amount, side) = match () {
                _ if !latest => (b.total_fen, "payee"),
                _ if b.payer == founder(0) && is_skill => continue,
                _ if b.payer == founder(2) => continue,
                _ if b.payer == founder(4) => (b.total_fen, "payer"),
                _ if b.payer == founder(5) => ((b.total_fen / 2).max(1), "payee"),
                _ => (b.total_fen, if k % 2 == 0 { "payer" } else { "payee" }),
            };
            let reference = format!("DEMO{}{:04}", month.replace('-', ""), k);
            let payment = NewBillPayment {
                amount_fen: amount,
                paid_on: paid_on.clone(),
                reference,
                note: "银行转账".into(),
                side,
                receipt: None,
            };
            // Who acts: the paying OPC's founder, and the payee (an operator, or the
            // publisher's founder).
            let founder_of = |party: &str| {
                opcs.iter()
                    .find(|o| o.id == party)
                    .map(|o| Actor::user(&o.founder_user_id, Role::OpcFounder.as_str()))
            };
            let payer = founder_of(&b.payer).unwrap_or_else(Actor::system);
            let payee = founder_of(&b.payee).unwrap_or_else(|| Actor::user(&b.payee, Role::CommunityOperator.as_str()));
            let by = if side == "payer" { &payer } else { &payee };
            let p = store.record_bill_payment(by, &b.id, &payment).await.map_err(err)?;
            // The fifth OPC's payments wait on its payees; every other payer's is confirmed.
            if side == "payer" && b.payer != founder(4) {
                store.confirm_bill_payment(&payee, &p.id).await.map_err(err)?;
            }
            if store.bill_payment(&p.id).await.map_err(err)?.status == "confirmed" {
                store.post_bill_payment_direct(&p.id).await.map_err(err)?;
            }
        }
    }
    Ok((months.len(), issued))
}

const DEMO_OPC_INDUSTRIES: &[&str] = &["I6513", "I6519", "I6531", "I6550", "I6579"];

/// What 免申即享 settlement needs besides usage: the companies' tax registration (G2) and main
/// industries, and one version of every F3 list (nobody from the demo on them), so demo
/// settlements are decidable.
async fn load_demo_settlement_inputs(store: &Store, parties: &opchub_store::settlement::Parties) -> anyhow::Result<()> {
    let actor = Actor::system();
    let err = |e: opchub_store::StoreError| anyhow::anyhow!("{e}");
    let tax_registered = opchub_store::party_facts::RegistrationChange {
        tax_registered: Some(Some(true)),
        ..Default::default()
    };
    for community in parties.community_operator.keys() {
        store
            .set_party_registration(&actor, "community", community, &tax_registered)
            .await
            .map_err(err)?;
        // L72 商务服务业 (park and incubator management).
        store
            .set_industry_code(&actor, "community", community, Some("L72"))
            .await
            .map_err(err)?;
    }
    for e in &parties.enterprises {
        store
            .set_party_registration(&actor, "enterprise", &e.id, &tax_registered)
            .await
            .map_err(err)?;
        // C39 计算机、通信和其他电子设备制造业.
        store
            .set_industry_code(&actor, "enterprise", &e.id, Some("C39"))
            .await
            .map_err(err)?;
    }
    let outsider = opchub_domain::Uscc::complete("91110106MA01DE7X0")
        .map(|u| u.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let lists = [
        (
            "restricted_industry",
            "industry_code,name,reason\nB06,煤炭开采和洗选业,限制类（示例）\nC25,石油、煤炭及其他燃料加工业,限制类（示例）\n".to_string(),
        ),
        (
            "no_support_sanction",
            format!("uscc,name,reason\n{outsider},北京示例失信企业有限公司,失信被执行人（不予支持）\n"),
        ),
        ("safety_accident", "uscc,name,reason,event_date\n".to_string()),
        ("excluded_by_review", "uscc,name,reason\n".to_string()),
    ];
    for (kind, csv) in lists {
        let (rows, sha) = opchub_settle::lists::parse(kind, csv.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        store
            .import_exclusions(&actor, kind, &format!("demo-{kind}.csv"), &sha, &rows)
            .await
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lists_are_unique() {
        assert_eq!(BRANDS.iter().collect::<HashSet<_>>().len(), BRANDS.len());
        assert_eq!(ENTERPRISES.iter().map(|e| e.0).collect::<HashSet<_>>().len(), ENTERPRISES.len());
        assert!(PENDING.iter().all(|&i| i != 0 && i < BRANDS.len()));
        for zone in Zone::ALL {
            assert!(COMMUNITIES.iter().any(|c| c.zone == zone), "no community in {zone}");
        }
    }

    #[test]
    fn usccs_are_valid_and_deterministic() {
        let mut a = StdRng::seed_from_u64(SEED);
        let mut b = StdRng::seed_from_u64(SEED);
        let (mut ta, mut tb) = (HashSet::new(), HashSet::new());
        for prefix in ["MAC", "MA0", ""] {
            let x = new_uscc(&mut a, &mut ta, prefix).map(|u| u.as_str().to_string());
            let y = new_uscc(&mut b, &mut tb, prefix).map(|u| u.as_str().to_string());
            assert!(x.is_ok());
            assert_eq!(x.ok(), y.ok());
        }
        // 1·3 + 2·7 + 3·9 + 4·10 + 5·5 + 6·8 + 7·4 + 8·2 = 201; 201 mod 11 = 3; 11 - 3 = 8.
        assert_eq!(org_code_check("12345678"), '8');
    }

    #[tokio::test]
    async fn loads_once_into_an_empty_database() -> Result<()> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("opchub-demo-test-{}-{nanos}.db", std::process::id()));
        let store = Store::connect(&format!("sqlite://{}", path.display())).await?;
        store.migrate().await?;
        let bar = ProgressBar::hidden();
        let summary = load_demo(&store, "not-a-real-hash", &bar)
            .await?
            .context("first load returns a summary")?;
        let counts = store.counts().await?;
        assert_eq!(counts.opcs as usize, summary.opcs);
        assert_eq!(counts.communities as usize, summary.communities);
        assert_eq!(counts.enterprises as usize, summary.enterprises);
        assert_eq!(summary.credentials.len(), Role::ALL.len());
        assert_eq!(bar.position(), bar.length().unwrap_or(0));
        assert!(load_demo(&store, "not-a-real-hash", &bar).await?.is_none());
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        Ok(())
    }
}
