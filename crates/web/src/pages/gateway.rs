//! Factor-gateway pages (M2.2). Operators: their channels (the platform operator: all, with
//! approve/disable buttons), forms to add a channel and publish a price table, the prices in
//! force and this month's usage served. OPCs: the console (issue 21 item 5) — the models they can
//! call with operators and list and OPC prices, their keys with limits, budget use, a chart of
//! each key's cost by day and its request log, a playground that calls the gateway with a key
//! from the page, what the discount saved them this month, and a quick start for the official
//! OpenAI SDK. Validation is the application layer's, shared with the JSON API (`opchub_app::gateway::*_for`); handlers only translate
//! form fields.

use super::chart::{daily_bars_as, days_in_month, Bar, Labels};
use super::ledger::{daily_chart, grouped, money};
use super::{field_messages, page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::gateway::{
    create_channel_for, create_prices_for, set_channel_status_for, set_key_limits_for, NewChannelRequest, NewPriceTable,
};
use opchub_domain::{Money, Role};
use opchub_store::gateway::{ItemReference, KeyLimits, ModelPrice};
use serde::Deserialize;
use std::collections::BTreeMap;

use opchub_app::gateway::{self, period_now, sums};

/// Items of a comma-separated list (ASCII or full-width commas, or line breaks), trimmed,
/// empty items dropped.
pub fn split_list(v: &str) -> Vec<String> {
    v.split([',', '，', '\n', '\r'])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Price lines: `model list_in opc_in list_cached opc_cached list_out opc_out` (fen per
/// million tokens), separated by spaces or tabs; blank lines and lines starting with `#` are
/// skipped. A line that does not fit is reported by its 1-based number.
pub fn parse_price_lines(text: &str) -> Result<Vec<ModelPrice>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let nums: Option<Vec<i64>> = parts.iter().skip(1).map(|v| v.replace(',', "").parse::<i64>().ok()).collect();
        match (parts.first(), nums.as_deref()) {
            (Some(model), Some(&[list_input, opc_input, list_cached, opc_cached, list_output, opc_output])) => out.push(ModelPrice {
                model: (*model).to_string(),
                list_input,
                opc_input,
                list_cached,
                opc_cached,
                list_output,
                opc_output,
            }),
            _ => return Err(i + 1),
        }
    }
    Ok(out)
}

/// Reference lines (issue 18 item 3): `model list_in list_cached list_out` (fen per million
/// tokens) or `item unit list_fen` (fen per GPU-hour, GB or dataset), one per line, separated
/// by spaces or tabs; blank lines and `#` lines are skipped. A line that fits neither is
/// reported by its 1-based number.
pub fn parse_reference_lines(text: &str) -> Result<(Vec<ModelPrice>, Vec<ItemReference>), usize> {
    let (mut models, mut items) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let num = |v: &str| v.replace(',', "").parse::<i64>().ok();
        match parts.as_slice() {
            [item, unit, list] if num(unit).is_none() => items.push(ItemReference {
                item: (*item).to_string(),
                unit: (*unit).to_string(),
                list_fen: num(list).ok_or(i + 1)?,
            }),
            [model, a, b, c] => models.push(ModelPrice {
                model: (*model).to_string(),
                list_input: num(a).ok_or(i + 1)?,
                opc_input: 0,
                list_cached: num(b).ok_or(i + 1)?,
                opc_cached: 0,
                list_output: num(c).ok_or(i + 1)?,
                opc_output: 0,
            }),
            _ => return Err(i + 1),
        }
    }
    Ok((models, items))
}

/// The effective time of a price table as RFC 3339: empty means now (`None`); a browser's
/// `datetime-local` value (`YYYY-MM-DDTHH:MM[:SS]`, also with a space) is Beijing time;
/// anything else is passed on for the API to accept or reject.
pub fn effective_from(v: Option<&str>) -> Option<String> {
    let v = v.map(str::trim).filter(|v| !v.is_empty())?;
    if chrono::DateTime::parse_from_rfc3339(v).is_ok() {
        return Some(v.to_string());
    }
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok());
    match local {
        Some(t) => Some(format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))),
        None => Some(v.to_string()),
    }
}

/// An amount in fen as a form value in yuan: `1.00`; empty for 0 (no limit).
pub fn yuan_input(fen: i64) -> String {
    if fen == 0 {
        return String::new();
    }
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The OpenAI-compatible base URL as the caller reached this server: the `Host` header (only
/// host-name characters), the scheme from `X-Forwarded-Proto` when a proxy sets it.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| v == "https" || v == "http")
        .unwrap_or_else(|| "http".into());
    format!("{scheme}://{host}/v1")
}

/// The copy-paste quick starts (Python with the official SDK, and curl).
pub fn quick_start(base: &str, model: &str) -> (String, String) {
    let python = format!(
        r#"# pip install openai
from openai import OpenAI

client = OpenAI(base_url="{base}", api_key="opk_YOUR_KEY")
resp = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "你好"}}],
)
print(resp.choices[0].message.content)
print(resp.usage)"#
    );
    let curl = format!(
        r#"curl {base}/chat/completions \
  -H "Authorization: Bearer opk_YOUR_KEY" \
  -H "Content-Type: application/json" \
  -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "你好"}}]}}'"#
    );
    (python, curl)
}

fn errors_ctx(e: &ApiError, form: &str) -> Value {
    let (message, fields) = field_messages(e);
    context! { message => message, fields => fields, form => form }
}

// ---------------------------------------------------------------- operators

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

fn done_key(v: Option<&str>) -> Option<&'static str> {
    match v? {
        "channel" => Some("gateway.done_channel"),
        "prices" => Some("integrity.done_prices_submitted"),
        "price_status" => Some("integrity.done_price_status"),
        "status" => Some("gateway.done_status"),
        "limits" => Some("gateway.done_limits"),
        "references" => Some("gateway.done_references"),
        _ => None,
    }
}

async fn channels_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    status: StatusCode,
    errors: Value,
    form: Value,
    done: Option<&str>,
) -> Response {
    let lang = i18n::current_lang();
    let period = period_now();
    let console = match gateway::channel_console(s, p, &period).await {
        Ok(c) => c,
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let names = &console.operator_names;
    let prices: Vec<Value> = console
        .prices
        .iter()
        .map(|r| {
            context! {
                operator => names.get(&r.operator_user_id), model => r.model,
                version => r.price.as_ref().map(|(v, _)| v.clone()), price => r.price.as_ref().map(|(_, p)| p.clone()),
            }
        })
        .collect();
    // Price tables under review (issue 18 item 3), next to the channels' review.
    let price_tables: Vec<Value> = match gateway::price_tables_for(s, p).await {
        Ok(v) => v
            .iter()
            .take(gateway::MAX_PRICE_ROWS)
            .map(|t| context! { t => t, operator => names.get(&t.operator_user_id).cloned().unwrap_or_else(|| t.operator_user_id.clone()) })
            .collect(),
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    // The platform's reference prices in force now (issue 18 item 3): what the discount basis
    // counts at most, for the operators it bounds and the platform operator who keeps it.
    let references = match gateway::reference_prices_for(s).await {
        Ok(r) => {
            let now = opchub_store::now_ms();
            let mut seen = std::collections::BTreeSet::new();
            let models: Vec<_> = r
                .models
                .into_iter()
                .filter(|m| m.effective_from <= now && seen.insert(("model".to_string(), m.model.clone())))
                .collect();
            let items: Vec<_> = r
                .items
                .into_iter()
                .filter(|i| i.effective_from <= now && seen.insert((i.reference.unit.clone(), i.reference.item.clone())))
                .collect();
            context! { models => models, items => items }
        }
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let list = &console.channels;
    let channels: Vec<Value> = list
        .iter()
        .map(|c| context! { c => c, operator => names.get(&c.operator_user_id) })
        .collect();
    // Usage served this month (community operators are the counterparty of their channels' events).
    let usage = if let Some(served) = &console.usage {
        let (totals, daily) = (&served.totals, &served.daily);
        let (list_fen, charged_fen) = sums(totals.iter().map(|t| (t.list_fen, t.charged_fen)));
        let statement_qs =
            serde_urlencoded::to_string([("party", p.user.id.as_str()), ("period", period.as_str()), ("role", "counterparty")])
                .unwrap_or_default();
        Some(context! {
            totals => totals, total_list_fen => list_fen, total_charged_fen => charged_fen,
            chart => Value::from_safe_string(daily_chart(&lang, &period, daily)), statement_qs => statement_qs,
            by_opc => Value::from_safe_string(served_chart(&lang, "chart-by-opc", "by_opc", &served.by_opc)),
            by_model => Value::from_safe_string(served_chart(&lang, "chart-by-model", "by_model", &served.by_model)),
        })
    } else {
        None
    };
    render(
        s,
        Some(p),
        csrf,
        "gateway_channels.html",
        status,
        context! {
            platform => p.role() == Role::PlatformOperator, operator => p.role() == Role::CommunityOperator,
            channels => channels, prices => prices, price_tables => price_tables, usage => usage, period => period,
            references => references,
            errors => errors, form => form, done => done_key(done).map(|k| i18n::text(&lang, k)),
        },
    )
}

/// What an operator served this month by OPC or by model, at list price and as charged
/// (issue 21 item 4): grouped bars, titles in yuan.
fn served_chart(lang: &str, id: &str, what: &str, rows: &[opchub_app::gateway::Served]) -> String {
    // An operator collects (实收); an OPC pays (实付).
    let charged = if what == "spend_by_model" {
        "gateway.served_paid"
    } else {
        "gateway.served_charged"
    };
    use super::chart::Labels;
    use super::chart_bars::{grouped, Row};
    let t = |k: &str| i18n::text(lang, k);
    let series = vec![t("gateway.served_list"), t(charged)];
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            label: r.label.clone(),
            values: vec![Some(r.list_fen), Some(r.charged_fen)],
            titles: vec![
                format!("{} {} {}", r.label, series[0], super::ledger::money(r.list_fen)),
                format!("{} {} {}", r.label, series[1], super::ledger::money(r.charged_fen)),
            ],
        })
        .collect();
    let labels = Labels {
        title: t(&format!("gateway.served_{what}")),
        desc: t(&format!("gateway.served_{what}_desc")),
        ..Default::default()
    };
    grouped(id, &rows, &series, &labels, super::ledger::money)
}

/// `GET /gateway/channels`: community operators see their own channels, the platform operator all.
pub async fn channels(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    channels_page(&s, p, &csrf.0, StatusCode::OK, Value::from(()), Value::from(()), q.done.as_deref()).await
}

#[derive(Deserialize)]
pub struct ChannelForm {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub secret: Option<String>,
    pub models: Option<String>,
    pub priority: Option<String>,
    pub weight: Option<String>,
    pub timeout_ms: Option<String>,
}

/// An optional integer field: empty is `None`, anything else must parse.
fn int_field(field: &str, v: Option<&str>, bad: &mut BTreeMap<String, String>) -> Option<i64> {
    let v = v.map(str::trim).filter(|v| !v.is_empty())?;
    match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            bad.insert(field.into(), "out_of_range".into());
            None
        }
    }
}

/// `POST /gateway/channels` (community operators): registers a channel, pending approval.
pub async fn create_channel(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<ChannelForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let mut bad = BTreeMap::new();
        let priority = int_field("priority", f.priority.as_deref(), &mut bad);
        let weight = int_field("weight", f.weight.as_deref(), &mut bad);
        // An unreadable timeout is out of range for the API, which reports it with the rest.
        let timeout_ms = f
            .timeout_ms
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<i64>().unwrap_or(-1));
        if !bad.is_empty() {
            return Err(ApiError::validation(bad));
        }
        let req = NewChannelRequest {
            name: f.name.clone(),
            base_url: f.base_url.as_deref().map(|v| v.trim().to_string()),
            secret: f.secret.clone(),
            models: Some(split_list(f.models.as_deref().unwrap_or(""))),
            priority,
            weight,
            timeout_ms,
        };
        create_channel_for(&s, &s, p, &req).await.map_err(ApiError::from)
    }
    .await;
    match res {
        Ok(_) => Redirect::to("/gateway/channels?done=channel").into_response(),
        Err(e) => {
            // The secret is never echoed back, not even after an error.
            let form = context! {
                name => f.name, base_url => f.base_url, models => f.models,
                priority => f.priority, weight => f.weight, timeout_ms => f.timeout_ms,
            };
            channels_page(&s, p, &csrf.0, e.status, errors_ctx(&e, "channel"), form, None).await
        }
    }
}

#[derive(Deserialize)]
pub struct PricesForm {
    pub version: Option<String>,
    pub effective_from: Option<String>,
    pub prices: Option<String>,
}

/// `POST /gateway/prices` (community operators): publishes a price table.
pub async fn create_prices(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<PricesForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let (prices, bad_line) = match parse_price_lines(f.prices.as_deref().unwrap_or("")) {
        Ok(v) => (v, None),
        Err(n) => (vec![], Some(n)),
    };
    let req = NewPriceTable {
        version: f.version.as_deref().map(|v| v.trim().to_string()),
        effective_from: effective_from(f.effective_from.as_deref()),
        prices,
        items: vec![],
    };
    match create_prices_for(&s, &s, p, &req).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/gateway/channels?done=prices").into_response(),
        Err(mut e) => {
            if let Some(n) = bad_line {
                let line = i18n::text(&i18n::current_lang(), "gateway.price_line").replace("{n}", &n.to_string());
                e.field_details.insert("prices".into(), line);
            }
            let form = context! { version => f.version, effective_from => f.effective_from, prices => f.prices };
            channels_page(&s, p, &csrf.0, e.status, errors_ctx(&e, "prices"), form, None).await
        }
    }
}

#[derive(Deserialize)]
pub struct ReferenceForm {
    pub version: Option<String>,
    pub effective_from: Option<String>,
    pub lines: Option<String>,
}

/// `POST /gateway/reference-prices` (the platform operator): publishes a version of the
/// reference price list, for models and compute and data items alike.
pub async fn create_reference_prices(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Form(f): Form<ReferenceForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let ((prices, items), bad_line) = match parse_reference_lines(f.lines.as_deref().unwrap_or("")) {
        Ok(v) => (v, None),
        Err(n) => ((vec![], vec![]), Some(n)),
    };
    let req = gateway::NewReferencePrices {
        version: f.version.as_deref().map(|v| v.trim().to_string()),
        effective_from: effective_from(f.effective_from.as_deref()),
        prices,
        items,
    };
    match gateway::create_reference_prices_for(&s, &s, p, &req).await.map_err(ApiError::from) {
        Ok(_) => Redirect::to("/gateway/channels?done=references").into_response(),
        Err(mut e) => {
            if let Some(n) = bad_line {
                let line = i18n::text(&i18n::current_lang(), "gateway.price_line").replace("{n}", &n.to_string());
                e.field_details.insert("prices".into(), line);
            }
            let form = context! { version => f.version, effective_from => f.effective_from, lines => f.lines };
            channels_page(&s, p, &csrf.0, e.status, errors_ctx(&e, "references"), form, None).await
        }
    }
}

#[derive(Deserialize)]
pub struct StatusForm {
    pub status: Option<String>,
}

/// `POST /gateway/channels/{id}/status` (platform operator): approve, disable or reset a channel.
pub async fn set_channel_status(State(s): State<AppState>, caller: Caller, Path(id): Path<String>, Form(f): Form<StatusForm>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    match set_channel_status_for(&s, &s, p, &id, f.status.as_deref().unwrap_or("").trim()).await {
        Ok(_) => Redirect::to("/gateway/channels?done=status").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

/// `POST /gateway/prices/{operator_user_id}/{version}/status` (platform operator): approve,
/// disable or reset a price table, as a channel.
pub async fn set_price_table_status(
    State(s): State<AppState>,
    caller: Caller,
    Path((operator_user_id, version)): Path<(String, String)>,
    Form(f): Form<StatusForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let status = f.status.as_deref().unwrap_or("").trim();
    match gateway::set_price_table_status_for(&s, &s, p, &operator_user_id, &version, status).await {
        Ok(_) => Redirect::to("/gateway/channels?done=price_status").into_response(),
        Err(e) => page_error(&s, Some(p), e.into()),
    }
}

// ---------------------------------------------------------------- OPCs

async fn opc_page(
    s: &AppState,
    p: &Principal,
    csrf: &str,
    headers: &HeaderMap,
    status: StatusCode,
    errors: Value,
    done: Option<&str>,
) -> Response {
    let lang = i18n::current_lang();
    let period = period_now();
    let (opc, keys, list, charged, saved, models, offers, spend) = match gateway::opc_gateway(s, p, &period).await {
        Ok(g) => {
            let keys: Vec<Value> = g
                .keys
                .into_iter()
                .map(|k| {
                    let chart = key_chart(&lang, &period, &k.key.id, &k.key.name, &k.daily);
                    context! {
                        key => k.key, active => k.active, limits => k.limits,
                        models_input => k.limits.allowed_models.join(", "), skills_input => k.limits.allowed_skills.join(", "), budget_input => yuan_input(k.limits.monthly_budget_fen),
                        spent => k.spent, held => k.held, remaining => k.remaining, requests => k.requests,
                        chart => Value::from_safe_string(chart), used_days => k.daily.len(),
                    }
                })
                .collect();
            let offers: Vec<Value> = g
                .offers
                .iter()
                .map(|o| {
                    context! {
                        model => o.model, operator => o.operator_name,
                        version => o.price.as_ref().map(|(v, _)| v.clone()), price => o.price.as_ref().map(|(_, p)| p.clone()),
                    }
                })
                .collect();
            let spend = served_chart(&lang, "chart-spend-by-model", "spend_by_model", &g.spend_by_model);
            (g.opc, keys, g.list_fen, g.charged_fen, g.saved_fen, g.models, offers, spend)
        }
        Err(e) => return page_error(s, Some(p), e.into()),
    };
    let base = base_url(headers);
    let example_model = models.iter().next().cloned().unwrap_or_else(|| "MODEL".into());
    let (python, curl) = quick_start(&base, &example_model);
    render(
        s,
        Some(p),
        csrf,
        "gateway.html",
        status,
        context! {
            opc => opc, keys => keys, period => period,
            list_fen => list, charged_fen => charged, saved_fen => saved,
            models => models, offers => offers, example_model => example_model, spend_chart => Value::from_safe_string(spend),
            base_url => base, python => python, curl => curl,
            errors => errors, done => done_key(done).map(|k| i18n::text(&lang, k)),
        },
    )
}

/// One key's cost by day of this month as an inline SVG bar chart (the console's usage chart).
fn key_chart(lang: &str, period: &str, key_id: &str, key_name: &str, daily: &[opchub_store::gateway::KeyDay]) -> String {
    let template = i18n::text(lang, "console.bar_title");
    let bars: Vec<Bar> = daily
        .iter()
        .filter_map(|d| {
            let day = opchub_ledger::event::day_of(d.day_start_ms);
            let n = day.get(8..10)?.parse::<u32>().ok()?;
            Some(Bar {
                day: n,
                value: d.charged_fen,
                title: template
                    .replace("{day}", &day)
                    .replace("{requests}", &grouped(d.requests))
                    .replace("{amount}", &money(d.charged_fen))
                    .replace("{list}", &money(d.list_fen)),
            })
        })
        .collect();
    let total = daily.iter().fold(0i64, |a, d| a.saturating_add(d.charged_fen));
    let labels = Labels {
        title: i18n::text(lang, "console.chart_title").replace("{key}", key_name),
        desc: i18n::text(lang, "console.chart_desc")
            .replace("{period}", period)
            .replace("{days}", &bars.len().to_string())
            .replace("{total}", &money(total)),
        x_axis: i18n::text(lang, "console.chart_x"),
        y_axis: i18n::text(lang, "console.chart_y"),
    };
    daily_bars_as(&format!("chart-{key_id}"), days_in_month(period), &bars, &labels, money)
}

/// The gateway console's playground (`/static/playground.js`): sends a chat request with the
/// key the user pastes, from the page. A file, not inline: the pages' CSP allows scripts from
/// this site only.
const PLAYGROUND_JS: &str = include_str!("../../templates/gateway/playground.js");

/// `GET /static/playground.js` (public).
pub async fn playground_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PLAYGROUND_JS,
    )
}

/// `GET /gateway` (OPC founders): keys, limits, budgets, savings, recent requests, quick start.
pub async fn opc(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    opc_page(&s, p, &csrf.0, &headers, StatusCode::OK, Value::from(()), q.done.as_deref()).await
}

#[derive(Deserialize)]
pub struct LimitsForm {
    pub allowed_models: Option<String>,
    /// Skill slugs, comma or space separated; empty: every enabled skill (issue 19 item 1).
    pub allowed_skills: Option<String>,
    pub rpm: Option<String>,
    pub tpm: Option<String>,
    /// Yuan, at most two decimals; empty or 0 is no budget.
    pub monthly_budget: Option<String>,
}

/// `POST /gateway/keys/{id}/limits` (OPC founders): the limits of one of their keys.
pub async fn set_limits(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<LimitsForm>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let res = async {
        let mut bad = BTreeMap::new();
        let rpm = int_field("rpm", f.rpm.as_deref(), &mut bad).unwrap_or(0);
        let tpm = int_field("tpm", f.tpm.as_deref(), &mut bad).unwrap_or(0);
        let budget = match f.monthly_budget.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => 0,
            Some(v) => match v.parse::<Money>() {
                Ok(m) if !m.is_negative() => m.fen(),
                _ => {
                    bad.insert("monthly_budget".into(), "invalid_amount".into());
                    0
                }
            },
        };
        for (field, v) in [("rpm", rpm), ("tpm", tpm)] {
            if v < 0 {
                bad.insert(field.into(), "out_of_range".into());
            }
        }
        if !bad.is_empty() {
            return Err(ApiError::validation(bad));
        }
        let limits = KeyLimits {
            allowed_models: split_list(f.allowed_models.as_deref().unwrap_or("")),
            rpm,
            tpm,
            monthly_budget_fen: budget,
            allowed_skills: split_list(f.allowed_skills.as_deref().unwrap_or("")),
        };
        set_key_limits_for(&s, &s, p, &id, &limits).await.map_err(ApiError::from)
    }
    .await;
    match res {
        Ok(_) => Redirect::to(&format!("/gateway?done=limits#key-{id}")).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => page_error(&s, Some(p), e),
        Err(e) => {
            let (message, fields) = field_messages(&e);
            let errors = context! { message => message, fields => fields, key_id => id };
            opc_page(&s, p, &csrf.0, &headers, e.status, errors, None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_prices_and_times() {
        assert_eq!(split_list(" a, b，c\n\n d ,"), ["a", "b", "c", "d"]);
        assert!(split_list(" , ").is_empty());
        let p =
            parse_price_lines("# model li oi lc oc lo oo\n\nfake-a 200 100 50 25 600 300\n  fake-b\t1,000 900 0 0 2000 1800  \n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            ModelPrice {
                model: "fake-a".into(),
                list_input: 200,
                opc_input: 100,
                list_cached: 50,
                opc_cached: 25,
                list_output: 600,
                opc_output: 300
            }
        );
        assert_eq!(p[1].list_input, 1000);
        assert_eq!(parse_price_lines("ok 1 1 1 1 1 1\nbad 1 2 3"), Err(2));
        assert_eq!(parse_price_lines("bad 1 2 3 4 5 x"), Err(1));
        assert_eq!(parse_price_lines("bad 1 2 3 4 5 6 7"), Err(1));
        assert!(parse_price_lines("").unwrap().is_empty());
        assert_eq!(effective_from(Some("  ")), None);
        assert_eq!(effective_from(None), None);
        assert_eq!(
            effective_from(Some("2026-05-01T08:30")).as_deref(),
            Some("2026-05-01T08:30:00+08:00")
        );
        assert_eq!(
            effective_from(Some("2026-05-01T08:30:00Z")).as_deref(),
            Some("2026-05-01T08:30:00Z")
        );
        assert_eq!(effective_from(Some("next week")).as_deref(), Some("next week"));
        assert_eq!(yuan_input(0), "");
        assert_eq!(yuan_input(100), "1.00");
        assert_eq!(yuan_input(123456), "1234.56");
        assert_eq!(yuan_input(5), "0.05");
        assert_eq!("1234.56".parse::<Money>().map(Money::fen), Ok(123456));
    }

    #[test]
    fn base_url_from_host_and_proxy() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h), "http://localhost/v1");
        h.insert(header::HOST, "opc.example.cn:8443".parse().unwrap());
        assert_eq!(base_url(&h), "http://opc.example.cn:8443/v1");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&h), "https://opc.example.cn:8443/v1");
        h.insert(header::HOST, "evil\"><script>".parse().unwrap());
        assert_eq!(base_url(&h), "https://localhost/v1");
        let (py, curl) = quick_start("http://h/v1", "m1");
        assert!(py.contains(r#"OpenAI(base_url="http://h/v1", api_key="opk_YOUR_KEY")"#) && py.contains(r#"model="m1""#));
        assert!(curl.starts_with("curl http://h/v1/chat/completions") && curl.contains(r#""model": "m1""#));
    }
}
