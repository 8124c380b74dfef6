//! Demo data for the demand board (M2.4): the demo company (`enterprise`) has one open demand
//! and one completed cooperation with the demo OPC (`opc`) — a payment recorded by the company,
//! confirmed by the OPC and posted to the ledger, and ratings both ways. Skipped when the
//! database already has demands.

use anyhow::{anyhow, Context, Result};
use opchub_app::demands::{check_demand, check_payment, DemandInput, PaymentInput};
use opchub_store::demands::Eligibility;
use opchub_store::ledger::Item;
use opchub_store::{Actor, Store};

fn err(e: opchub_store::StoreError) -> anyhow::Error {
    anyhow!("{e}")
}

pub async fn load(store: &Store) -> Result<()> {
    let any = demand_count(store).await?;
    if any > 0 {
        return Ok(());
    }
    let (Some(company_user), Some(opc_user)) = (
        store.user_by_username("enterprise").await.map_err(err)?,
        store.user_by_username("opc").await.map_err(err)?,
    ) else {
        return Ok(());
    };
    let Eligibility::Eligible(publisher) = store.publisher(&company_user.id).await.map_err(err)? else {
        return Ok(());
    };
    let opc = store.opc_of_founder(&opc_user.id).await.map_err(err)?.context("demo OPC")?;
    let company = Actor::user(&company_user.id, "enterprise");
    let founder = Actor::user(&opc_user.id, "opc_founder");
    let deadline = chrono::Utc::now().date_naive() + chrono::Duration::days(60);
    let demand = |title: &str, description: &str, category: &str, tags: &[&str], min: i64, max: i64| DemandInput {
        title: Some(title.into()),
        description: Some(description.into()),
        category: Some(category.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        budget_min_fen: Some(min),
        budget_max_fen: Some(max),
        deadline: Some(deadline.format("%Y-%m-%d").to_string()),
        publish: true,
    };
    let open = check_demand(&demand(
        "发票识别与报销智能体",
        "识别增值税发票，核对金额，自动发起报销流程并对接现有财务系统。希望一个月内上线试用。",
        "opc_agent_dev",
        &["发票", "报销", "智能体"],
        2_000_000,
        8_000_000,
    ))
    .map_err(|e| anyhow!("demo demand: {e:?}"))?;
    store.create_demand(&company, &publisher, &open, &[]).await.map_err(err)?;

    let done = check_demand(&demand(
        "产品宣传短视频生成",
        "用 AIGC 为三款新品各生成两条宣传短视频，并配中英文字幕。",
        "aigc_production",
        &["视频生成", "AIGC"],
        1_000_000,
        3_000_000,
    ))
    .map_err(|e| anyhow!("demo demand: {e:?}"))?;
    let d = store.create_demand(&company, &publisher, &done, &[]).await.map_err(err)?;
    let p = store
        .create_proposal(&founder, &d.id, &opc.id, 2_400_000, 21, "三周交付六条视频，含两轮修改。")
        .await
        .map_err(err)?;
    let coop = store.accept_proposal(&company, &p.id, None, &[]).await.map_err(err)?;
    let today = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let pay = check_payment(&PaymentInput {
        amount_fen: Some(2_400_000),
        paid_on: Some(today),
        invoice_number: Some("DEMO-FP-2026-0001".into()),
    })
    .map_err(|e| anyhow!("demo payment: {e:?}"))?;
    let payment = store.record_payment(&company, &coop.id, &pay, None).await.map_err(err)?;
    store.confirm_payment(&founder, &payment.id).await.map_err(err)?;
    let event = store.payment_event(&payment.id).await.map_err(err)?;
    let out = store.ledger_append(vec![Item::Event(event)]).await.map_err(err)?;
    store.set_payment_leaf(&payment.id, out.into_iter().next()).await.map_err(err)?;
    store.complete_cooperation(&company, &coop.id).await.map_err(err)?;
    store
        .rate(&company, &coop.id, "company", 5, "交付准时，质量好")
        .await
        .map_err(err)?;
    store.rate(&founder, &coop.id, "opc", 5, "需求清楚，付款及时").await.map_err(err)?;
    println!("demo demand board: 1 open demand, 1 completed cooperation (¥24,000.00 confirmed)");
    Ok(())
}

async fn demand_count(store: &Store) -> Result<i64> {
    Ok(store
        .demands(&opchub_store::demands::DemandFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(err)?
        .len() as i64)
}
