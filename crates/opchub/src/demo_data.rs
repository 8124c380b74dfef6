//! Demo compute and data (M2.2) for `serve --demo`: the demo community operator's price items
//! (two GPU types per GPU-hour, data traffic per GB, a corpus per dataset), a small dataset
//! priced per dataset, and a week of GPU usage of the demo OPC as its cluster reports it —
//! priced by the same rule the ingestion API checks. Made through the API's own functions.

use anyhow::{anyhow, Result};
use opchub_app::datasets::{create_dataset_for, store_bytes, NewDatasetRequest};
use opchub_app::{App, AppError, Principal};
use opchub_ledger::{items, metering};
use opchub_store::gateway::ItemPrice;
use opchub_store::ledger::Item;
use opchub_store::Actor;

fn api(e: AppError) -> anyhow::Error {
    anyhow!("demo compute/data: {} {:?}", e.code, e.fields)
}

/// The demo dataset: a small CSV of the measures' clauses.
const CORPUS: &str = "clause,title_zh,title_en\n\
M1.1,OPC社区运营补贴,Community operation subsidy\n\
M2.2,算力、模型、数据、Token优惠,Discounted compute, models, data and tokens\n\
M2.3,技能商店,Skill Store\n\
M2.4,区内企业需求对接,District demand matching\n\
M3.2,联合研发支持,Joint R&D support\n";

fn item(code: &str, unit: &str, list_fen: i64, opc_fen: i64, zh: &str, en: &str) -> ItemPrice {
    ItemPrice {
        item: code.into(),
        unit: unit.into(),
        name_zh: zh.into(),
        name_en: en.into(),
        list_fen,
        opc_fen,
    }
}

/// Loads once (nothing when the demo operator already has items). Returns the number of GPU
/// events booked.
///
/// It runs at start-up, before the gateway serves (so no gateway cache needs dropping:
/// `NoGateway`).
pub async fn load(s: &App) -> Result<usize> {
    let Some(user) = s.store.user_by_username("operator").await? else {
        return Ok(0);
    };
    if !s.store.item_prices_of(&user.id).await?.is_empty() {
        return Ok(0);
    }
    let op = Principal::cli(user);
    let table = vec![
        item("a100-80g", "gpu_hour", 1_200, 800, "A100 80G 算力", "A100 80G GPU-hour"),
        item("h800", "gpu_hour", 3_000, 1_800, "H800 算力", "H800 GPU-hour"),
        item("traffic", "gb", 50, 30, "数据下载流量", "Data traffic"),
        item(
            "policy-corpus",
            "dataset",
            5_000,
            3_000,
            "丰台OPC政策语料",
            "Fengtai OPC policy corpus",
        ),
    ];
    let version = "demo-items-2026";
    // The demo seeds a history (a week of usage already priced), so its table dates from 2020
    // and is approved as if the platform operator had reviewed it then. Through the API a table
    // is never back-dated and waits for review (issue 18 item 3); the demo writes it directly.
    let effective_from = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00+08:00")
        .map(|d| d.timestamp_millis())
        .unwrap_or(0);
    s.store
        .create_price_table(&op.actor(), &op.user.id, version, effective_from, &[], &table)
        .await?;
    s.store
        .set_price_table_status(&Actor::system(), &op.user.id, version, "approved", None)
        .await?;
    let d = create_dataset_for(
        s,
        &op,
        &NewDatasetRequest {
            name_zh: Some("丰台OPC政策条款".into()),
            name_en: Some("Fengtai OPC measures".into()),
            description: Some("各条措施的编号与名称（CSV），示例数据集，按数据集计价，每个版本只付一次。".into()),
            item: Some("policy-corpus".into()),
        },
    )
    .await
    .map_err(api)?;
    let (sha, size) = store_bytes(s, CORPUS.as_bytes()).await.map_err(api)?;
    s.store
        .set_dataset_file(&op.actor(), &d.id, "fengtai-opc-measures.csv", "text/csv", size, &sha)
        .await?;

    // A week of GPU usage of the demo OPC, as the operator's cluster reports it.
    let Some(founder) = s.store.user_by_username("opc").await? else {
        return Ok(0);
    };
    let Some(opc) = s.store.opc_of_founder(&founder.id).await? else {
        return Ok(0);
    };
    let Some(writer) = s.ledger.as_ref() else { return Ok(0) };
    let now = opchub_store::now_ms();
    let mut events = vec![];
    for day in 0..7i64 {
        for (p, seconds) in [(&table[0], 3_600 + day * 900), (&table[1], 1_200 + day * 300)] {
            let source_event_id = format!("job-{day}-{}", p.item);
            events.push(Item::Event(metering::compute(&metering::ComputeUse {
                source: "demo-gpu-cluster",
                source_event_id: &source_event_id,
                subject: &opc.id,
                counterparty: &op.user.id,
                item: &p.item,
                cluster: "demo-cluster",
                gpu_seconds: seconds,
                list_fen: items::amount(&p.unit, seconds, p.list_fen).unwrap_or(0),
                charged_fen: items::amount(&p.unit, seconds, p.opc_fen).unwrap_or(0),
                price_version: version,
                occurred_at_ms: now - day * 86_400_000 - 3_600_000,
            })));
        }
    }
    let n = events.len();
    writer.append(events).await?;
    Ok(n)
}
