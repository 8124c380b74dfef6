//! Invocation and counting (M2.3): one `skill.call` event per (invoker, request, JSON-RPC id),
//! committed with the call's row in one ledger transaction (`SideWrite::SkillCall`).
//!
//! A call made with an API key is charged like a model call (issue 19 item 1): the key's limits
//! (skills allowed, calls per minute) are checked, the price is held against the key's monthly
//! budget before the publisher is called (one conditional update, safe across replicas), and
//! the hold settles to what the call cost in the same commit as its event and row. A refused
//! call counts nothing; a failed or drifted call costs nothing; a retry is paid once.

use super::upstream::{http_call, text_block, UpstreamError};
use super::SkillError;
use super::{party_of, refusal, validate_with};
use crate::ledger::LedgerError;
use crate::{App, AppError, AppResult, ErrorKind, Principal, Via};
use opchub_ledger::metering;
use opchub_store::ledger::{Item, Outcome, SideWrite};
use opchub_store::skills::{Skill, SkillCall};
use serde_json::{Map, Value};
use std::time::Instant;

/// One call as the caller made it.
pub struct CallRequest<'a> {
    pub skill: &'a Skill,
    pub tool: &'a str,
    pub arguments: Map<String, Value>,
    /// What makes a retry the same call: (request, JSON-RPC id).
    pub request: String,
    pub rpc_id: String,
}

/// What the caller gets back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallResult {
    /// `ok`, `tool_error`, `upstream_error`, `timeout`.
    pub outcome: String,
    pub is_error: bool,
    /// The publisher's content blocks (MCP shape).
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    #[schema(value_type = Option<Object>)]
    pub structured_content: Option<Value>,
    /// Whether the call counts toward M2.3 statistics.
    pub qualified: bool,
    pub not_qualified_reason: Option<String>,
    pub charged_fen: i64,
    /// The ledger leaf of the `skill.call` event.
    pub leaf_index: Option<i64>,
    /// True when this was a retry of a call already counted.
    pub duplicate: bool,
}

/// What a call holds of its key's monthly budget until its commit settles it.
struct Hold {
    key_id: String,
    month: String,
    amount: i64,
}

/// The key's limits for this call (issue 19 item 1): the skills it may call, its calls per
/// minute, and its monthly budget, from which `price` is held. Session callers (the pages)
/// have no key and no key limits.
async fn admit(s: &App, p: &Principal, skill: &Skill, price: i64) -> AppResult<Option<Hold>> {
    let Via::ApiKey { key_id, .. } = &p.via else {
        return Ok(None);
    };
    let limits = s.store.key_limits(key_id).await?;
    if !limits.allowed_skills.is_empty() && !limits.allowed_skills.contains(&skill.slug) {
        return Err(AppError::from(SkillError::NotAllowed).with_detail(skill.slug.clone()));
    }
    if limits.rpm > 0 {
        if let Err(wait) = s.skills.rate.check(key_id, limits.rpm, 1) {
            return Err(AppError::from(SkillError::RateLimited).with_detail(format!("{wait} s")));
        }
    }
    if limits.monthly_budget_fen <= 0 || price <= 0 {
        return Ok(None);
    }
    let month = opchub_ledger::event::period_of(opchub_store::now_ms());
    if !s.store.hold_budget(key_id, &month, limits.monthly_budget_fen, price).await? {
        return Err(SkillError::BudgetExceeded.into());
    }
    Ok(Some(Hold {
        key_id: key_id.clone(),
        month,
        amount: price,
    }))
}

/// Gives a hold back when the call ends before its commit (refused by the upstream checks, or
/// the ledger failed): nothing was booked, so nothing is spent.
async fn release(s: &App, hold: &Option<Hold>) {
    if let Some(h) = hold {
        if let Err(e) = s.store.release_budget(&h.key_id, &h.month, h.amount).await {
            tracing::error!(key = %h.key_id, error = %e, "budget hold not released");
        }
    }
}

fn digest(v: &Value) -> String {
    opchub_skills::sha256_hex(opchub_skills::tools::canonical_json(v).as_bytes())
}

/// Calls a tool of a listed skill for `p`, and counts the call: one `skill.call` event per
/// (invoker, request, JSON-RPC id), so a retry is not counted twice (M2.3). Refusals (unknown
/// tool, arguments failing the schema, a delisted skill) happen before the upstream is
/// called and count nothing.
pub async fn call(s: &App, p: &Principal, req: CallRequest<'_>) -> AppResult<CallResult> {
    let live = s.skills.live_version(&s.store, req.skill).await?;
    let version = &live.version;
    let Some((tool, validator)) = live.tool(req.tool) else {
        return Err(AppError::from(SkillError::UnknownTool).with_detail(req.tool.to_string()));
    };
    validator
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|v| validate_with(v, &req.arguments))
        .map_err(|f| refusal(ErrorKind::Invalid, &f))?;
    let endpoint = version
        .endpoint_url
        .clone()
        .ok_or_else(|| AppError::from(SkillError::NotCallable))?;
    // IP literals here; host names when the connection is made (the guarded resolver).
    opchub_skills::net::check_literal(&endpoint, s.skills.config.allow_private_upstreams).map_err(|f| refusal(ErrorKind::Upstream, &f))?;
    let ledger = s.ledger.clone().ok_or_else(|| AppError::from(LedgerError::Unavailable))?;

    // A drifted skill's calls are free (below), so nothing is held for them.
    let price = if req.skill.drifted_at.is_some() { 0 } else { version.price_fen };
    let Some(hold) = admit(s, p, req.skill, price).await? else {
        return call_held(s, p, &req, &live, tool, &endpoint, &ledger, &None).await;
    };
    // A call holding budget runs to its commit in its own task: if the caller goes away
    // mid-call (a dropped request future), the hold is still settled or released, never left.
    let (app, principal, skill, tool_name) = (s.clone(), p.clone(), req.skill.clone(), tool.name.clone());
    let (arguments, request, rpc_id) = (req.arguments, req.request, req.rpc_id);
    let task = tokio::spawn(async move {
        let req = CallRequest {
            skill: &skill,
            tool: &tool_name,
            arguments,
            request,
            rpc_id,
        };
        let hold = Some(hold);
        let out = match live.tool(&tool_name) {
            Some((tool, _)) => call_held(&app, &principal, &req, &live, tool, &endpoint, &ledger, &hold).await,
            None => Err(SkillError::UnknownTool.into()),
        };
        if out.is_err() {
            release(&app, &hold).await;
        }
        out
    });
    task.await.map_err(|e| AppError::internal_from("skill call task", e))?
}

/// The call once admitted: the upstream, the event, the row and the budget in one commit.
/// Returns an error only when nothing was committed (so the caller releases the hold).
#[allow(clippy::too_many_arguments)]
async fn call_held(
    s: &App,
    p: &Principal,
    req: &CallRequest<'_>,
    live: &super::LiveVersion,
    tool: &opchub_skills::tools::Tool,
    endpoint: &str,
    ledger: &opchub_store::ledger::LedgerWriter,
    hold: &Option<Hold>,
) -> AppResult<CallResult> {
    let version = &live.version;
    let started_ms = opchub_store::now_ms();
    let started = Instant::now();
    let args_value = Value::Object(req.arguments.clone());
    let upstream = match &tool.http {
        Some(op) => http_call(s, endpoint, op, &req.arguments).await,
        None => {
            s.skills
                .upstreams()
                .call_tool(endpoint, &tool.name, req.arguments.clone(), s.skills.config.call_timeout)
                .await
        }
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    // A host name that now resolves only to non-public addresses (DNS rebinding): refused
    // like a private URL at publish time; the publisher was not reached, nothing is counted.
    let upstream = match (upstream, s.skills.resolver.refused(endpoint)) {
        (Err(UpstreamError::Failed(_)), Some(p)) => Err(UpstreamError::Refused(p.finding())),
        (other, _) => other,
    };
    let (outcome, content, structured) = match upstream {
        // An argument that is no path segment (`..`) is the caller's mistake; the rest are refusals of the upstream.
        Err(UpstreamError::Refused(f)) if f.code == "argument_invalid" => return Err(refusal(ErrorKind::Invalid, &f)),
        Err(UpstreamError::Refused(f)) => return Err(refusal(ErrorKind::Upstream, &f)),
        Ok(r) => (if r.is_error { "tool_error" } else { "ok" }.to_string(), r.content, r.structured),
        Err(UpstreamError::Timeout) => ("timeout".to_string(), vec![text_block("upstream timeout")], None),
        Err(UpstreamError::Failed(m)) => (
            "upstream_error".to_string(),
            vec![text_block(&format!("upstream error: {m}"))],
            None,
        ),
    };
    let is_error = outcome != "ok";

    // Who is paid and who used: M2.3 subsidises both, so self-dealing and failures do not qualify.
    let invoker_party = party_of(s, &p.user.id).await?;
    let skill = req.skill;
    let self_dealing = metering::self_dealing(&invoker_party, &p.user.id, &skill.publisher_party, &skill.publisher_user_id);
    // Issue 18 item 1: related parties (a shared person, phone or payout account) deal with
    // themselves too.
    let related = !self_dealing
        && crate::persons::related_between(s, &invoker_party, &skill.publisher_party)
            .await?
            .is_some();
    let drifted = skill.drifted_at.is_some();
    let reason = metering::skill_call_not_qualified(is_error, self_dealing, related, drifted);
    let qualified = reason.is_none();
    // A failed call is free; so is a call to a skill whose tools changed from the reviewed ones
    // (a rug pull, issue 18 item 6): the invoker did not get what it was priced for.
    let charged = if is_error || drifted { 0 } else { version.price_fen };
    let call_key = opchub_skills::sha256_hex(format!("{}\n{}\n{}", p.user.id, req.request, req.rpc_id).as_bytes());
    let response_value = Value::Array(content.clone());
    let request_digest = digest(&serde_json::json!({"skill": skill.slug, "tool": tool.name, "arguments": args_value}));
    let response_digest = digest(&response_value);
    let event = metering::skill_call(&metering::SkillCall {
        call_key: &call_key,
        invoker_party: &invoker_party,
        publisher_party: &skill.publisher_party,
        skill_slug: &skill.slug,
        version: &version.version,
        version_hash: &version.content_hash,
        tool: &tool.name,
        outcome: &outcome,
        latency_ms,
        request_digest: &request_digest,
        response_digest: &response_digest,
        charged_fen: charged,
        started_ms,
        not_qualified_reason: reason,
    });
    let mut row = SkillCall {
        call_key: call_key.clone(),
        skill_id: skill.id.clone(),
        version_id: version.id.clone(),
        version_hash: version.content_hash.clone(),
        tool: tool.name.clone(),
        publisher_party: skill.publisher_party.clone(),
        invoker_party,
        invoker_user_id: p.user.id.clone(),
        outcome: outcome.clone(),
        qualified,
        not_qualified_reason: reason.map(str::to_string),
        charged_fen: charged,
        latency_ms,
        request_digest,
        response_digest,
        // Set by the ledger to the leaf of the event, in the same transaction.
        leaf_index: None,
        day: opchub_store::skills::call_day(started_ms),
        created_at: started_ms,
    };
    // The event and the call row commit in one transaction: a call is never counted in one
    // and missing from the other.
    let mut side = vec![SideWrite::SkillCall(Box::new(row.clone()))];
    // The hold settles in the same commit, to what the call cost, and only if this call's event
    // is the one stored (a retry the ledger already has is paid once, by its first attempt).
    if let Some(h) = hold {
        side.push(SideWrite::SettleBudget {
            api_key_id: h.key_id.clone(),
            month: h.month.clone(),
            held: h.amount,
            actual: charged,
            only_if_stored: Some(call_key.clone()),
        });
    }
    let appended = match ledger.append_with(vec![Item::Event(event)], side).await {
        Ok(a) => a,
        Err(e) => return Err(e.into()),
    };
    let (inserted, duplicate) = match appended.into_iter().next() {
        Some(Outcome::Stored(r)) => {
            row.leaf_index = Some(r.leaf_index);
            (true, false)
        }
        Some(Outcome::Duplicate(_)) => (false, true),
        Some(Outcome::Rejected(e)) => {
            tracing::error!(code = %e.code, "skill call event refused by the ledger");
            (false, false)
        }
        None => (false, false),
    };
    // A retry reports what was counted the first time. A refused event (a retry whose content
    // differs) left the row of the first attempt, or wrote this one if there was none.
    let (inserted, counted) = if inserted {
        (true, row)
    } else {
        // After the commit nothing may fail the call (its hold is settled): a failed read
        // reports this attempt.
        match s.store.skill_call(&call_key).await.ok().flatten() {
            Some(found) => {
                let ours = !duplicate
                    && found.created_at == row.created_at
                    && found.latency_ms == row.latency_ms
                    && found.response_digest == row.response_digest;
                (ours, found)
            }
            None => (false, row),
        }
    };
    if inserted {
        s.skills.invalidate_counts();
    }
    Ok(CallResult {
        outcome,
        is_error,
        content,
        structured_content: structured,
        qualified: counted.qualified,
        not_qualified_reason: counted.not_qualified_reason,
        charged_fen: counted.charged_fen,
        leaf_index: counted.leaf_index,
        duplicate: duplicate || !inserted,
    })
}
