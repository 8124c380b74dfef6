//! The demo's gateway channel (issue 21 item 5, M2.2), at every `serve --demo` start: the demo
//! community operator (`operator`) has a channel "演示上游（内置）" serving `demo-chat` from the
//! built-in demo upstream, approved by the platform operator (`platform`), and an approved price
//! table for it — so the console's model list, playground and request log can be tried at once.
//!
//! Made once, through the application's own use cases (the same checks and audit entries as
//! the pages and the API). The demo upstream's port changes at every start, so on later starts
//! the existing channel is pointed at it again (`set_channel_base_url_for`, which sends a moved
//! channel back to review) and the platform operator approves it again. A channel or price
//! table the platform operator disabled stays disabled.

use crate::demo_upstream;
use anyhow::{anyhow, Result};
use opchub_app::gateway::{
    create_channel_for, create_prices_for, set_channel_base_url_for, set_channel_status_for, set_price_table_status_for, GatewayPort,
    NewChannelRequest, NewPriceTable,
};
use opchub_app::{App, AppError, Principal};
use opchub_store::gateway::ModelPrice;

/// The demo channel's name (what the operator's and platform's channel pages show).
pub const CHANNEL_NAME: &str = "演示上游（内置）";
/// The version of the demo price table.
pub const PRICE_VERSION: &str = "demo-chat-v1";

/// `demo-chat`'s prices in fen per million tokens (cached input as input): list 4 yuan input and
/// 12 yuan output, OPC 2 and 6 (M2.2's discount).
pub fn demo_price() -> ModelPrice {
    ModelPrice {
        model: demo_upstream::MODEL.into(),
        list_input: 400,
        opc_input: 200,
        list_cached: 400,
        opc_cached: 200,
        list_output: 1200,
        opc_output: 600,
    }
}

fn api(e: AppError) -> anyhow::Error {
    anyhow!("demo gateway channel: {} {:?} {}", e.code, e.fields, e.detail.unwrap_or_default())
}

/// What a start did to the demo channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No demo operator or platform operator (not demo data).
    Skipped,
    Created,
    /// The channel follows the upstream's new port.
    Moved,
    Unchanged,
}

/// Makes sure the demo channel and its prices exist, point at `base_url` and are approved.
pub async fn ensure(app: &App, gw: &dyn GatewayPort, base_url: &str) -> Result<Outcome> {
    let (Some(operator), Some(platform)) = (
        app.store.user_by_username("operator").await?,
        app.store.user_by_username("platform").await?,
    ) else {
        return Ok(Outcome::Skipped);
    };
    let op = Principal::cli(operator);
    let platform = Principal::cli(platform);
    let existing = app
        .store
        .channels(Some(&op.user.id))
        .await?
        .into_iter()
        .find(|c| c.name == CHANNEL_NAME);
    let (channel, outcome) = match existing {
        None => {
            let req = NewChannelRequest {
                name: Some(CHANNEL_NAME.into()),
                base_url: Some(base_url.into()),
                secret: Some(demo_upstream::KEY.into()),
                models: Some(vec![demo_upstream::MODEL.into()]),
                priority: Some(0),
                weight: Some(1),
                timeout_ms: Some(10_000),
            };
            (create_channel_for(app, gw, &op, &req).await.map_err(api)?, Outcome::Created)
        }
        Some(c) if c.base_url != base_url => (
            set_channel_base_url_for(app, gw, &op, &c.id, base_url).await.map_err(api)?,
            Outcome::Moved,
        ),
        Some(c) => (c, Outcome::Unchanged),
    };
    if channel.status == "pending" {
        set_channel_status_for(app, gw, &platform, &channel.id, "approved")
            .await
            .map_err(api)?;
    }
    let table = match app.store.price_table(&op.user.id, PRICE_VERSION).await? {
        Some(t) => t.status,
        None => {
            let req = NewPriceTable {
                version: Some(PRICE_VERSION.into()),
                effective_from: None,
                prices: vec![demo_price()],
                items: vec![],
            };
            create_prices_for(app, gw, &op, &req).await.map_err(api)?.status
        }
    };
    if table == "pending" {
        set_price_table_status_for(app, gw, &platform, &op.user.id, PRICE_VERSION, "approved")
            .await
            .map_err(api)?;
    }
    Ok(outcome)
}
