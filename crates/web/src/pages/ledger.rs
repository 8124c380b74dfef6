//! Usage-ledger pages: a party's monthly statement (totals by kind, a daily chart drawn as
//! inline SVG, the events, CSV/XLSX downloads) through `opchub_app::ledger::statement_for`
//! (as the API), so who sees what is decided in one place; and the public transparency view — the signed
//! checkpoints with their conservation counters, the public key, and an inclusion proof
//! that the server verifies against the signed checkpoint before showing its verdict.

use super::chart::{self, Bar, Labels};
use super::{page_error, render};
use crate::auth::{Caller, CsrfToken, Principal};
use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use opchub_app::ledger::{inclusion_for, statement_for, InclusionProof, Statement, StatementQuery};
use opchub_domain::{Money, Role};
use opchub_ledger::checkpoint::verify_checkpoint;
use opchub_ledger::merkle::{verify_inclusion, Hash};
use opchub_store::ledger::DailyUsage;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `¥1,234.56` for an amount in fen.
pub fn money(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

/// An integer with thousands separators: `1,234,567`.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The month `delta` months from a `YYYY-MM` period (the period itself when it does not parse).
fn shift_period(period: &str, delta: i32) -> String {
    let Some((y, m)) = period
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<i32>().ok()?)))
    else {
        return period.to_string();
    };
    let months = y * 12 + (m - 1) + delta;
    format!("{:04}-{:02}", months.div_euclid(12), months.rem_euclid(12) + 1)
}

fn query_string(party: &str, period: &str, role: &str) -> String {
    serde_urlencoded::to_string([("party", party), ("period", period), ("role", role)]).unwrap_or_default()
}

/// The daily chart: one bar per day with usage, its height the amount charged that day, its
/// title the day, the amount and the quantities by kind.
pub(super) fn daily_chart(lang: &str, period: &str, daily: &[DailyUsage]) -> String {
    let mut days: BTreeMap<u32, (i64, Vec<String>)> = BTreeMap::new();
    for d in daily {
        let Some(day) = d.day.get(8..10).and_then(|v| v.parse::<u32>().ok()) else {
            continue;
        };
        let e = days.entry(day).or_default();
        e.0 = e.0.saturating_add(d.charged_fen);
        let unit = opchub_ledger::event::unit_of(&d.kind).unwrap_or("");
        e.1.push(format!(
            "{} {} {}",
            i18n::text(lang, &format!("ledger.kind.{}", d.kind)),
            grouped(d.quantity),
            i18n::text(lang, &format!("ledger.unit.{unit}"))
        ));
    }
    let (template, sep) = (
        i18n::text(lang, "ledger.statement.bar_title"),
        i18n::text(lang, "ledger.statement.bar_separator"),
    );
    let bars: Vec<Bar> = days
        .iter()
        .map(|(day, (charged, kinds))| Bar {
            day: *day,
            value: *charged,
            title: template
                .replace("{day}", &format!("{period}-{day:02}"))
                .replace("{amount}", &money(*charged))
                .replace("{kinds}", &kinds.join(&sep)),
        })
        .collect();
    let total = bars.iter().fold(0i64, |a, b| a.saturating_add(b.value));
    let labels = Labels {
        title: i18n::text(lang, "ledger.statement.chart_title"),
        desc: i18n::text(lang, "ledger.statement.chart_desc")
            .replace("{period}", period)
            .replace("{days}", &bars.len().to_string())
            .replace("{total}", &money(total)),
        x_axis: i18n::text(lang, "ledger.statement.chart_x"),
        y_axis: i18n::text(lang, "ledger.statement.chart_y"),
    };
    chart::daily_bars(chart::days_in_month(period), &bars, &labels, money)
}

/// `GET /ledger/statement`: the same parties, periods and roles as the API's statement.
pub async fn statement(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<StatementQuery>,
) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return page_error(&s, None, ApiError::unauthorized());
    };
    let st = match statement_for(&s, p, &q).await {
        Ok(st) => st,
        Err(e) => return page_error(&s, Some(p), e.into()),
    };
    statement_page(&s, p, &csrf.0, &st).await
}

async fn statement_page(s: &AppState, p: &Principal, csrf: &str, st: &Statement) -> Response {
    let lang = i18n::current_lang();
    // Sums are checked: an amount that does not fit is shown as "—", never wrapped.
    let (mut list, mut charged, mut discount) = (Some(0i64), Some(0i64), Some(0i64));
    let totals: Vec<Value> = st
        .totals
        .iter()
        .map(|t| {
            let d = t.list_fen.checked_sub(t.charged_fen);
            list = list.and_then(|a| a.checked_add(t.list_fen));
            charged = charged.and_then(|a| a.checked_add(t.charged_fen));
            discount = discount.and_then(|a| d.and_then(|d| a.checked_add(d)));
            context! {
                kind => t.kind, unit => t.unit, quantity => t.quantity, events => t.events,
                list_fen => t.list_fen, charged_fen => t.charged_fen, discount_fen => d,
            }
        })
        .collect();
    let qs = query_string(&st.party, &st.period, &st.role);
    let (prev, next) = (shift_period(&st.period, -1), shift_period(&st.period, 1));
    render(
        s,
        Some(p),
        csrf,
        "ledger_statement.html",
        StatusCode::OK,
        context! {
            party => st.party, party_name => opchub_app::ledger::party_name(s, &st.party).await, period => st.period, role => st.role,
            choose_party => p.role() != Role::OpcFounder,
            prev_qs => query_string(&st.party, &prev, &st.role), prev => prev,
            next_qs => query_string(&st.party, &next, &st.role), next => next,
            totals => totals, total_list_fen => list, total_charged_fen => charged, total_discount_fen => discount,
            chart => Value::from_safe_string(daily_chart(&lang, &st.period, &st.daily)), usage_days => !st.daily.is_empty(),
            events => st.events, truncated => st.events.len() >= 500,
            qs => qs,
        },
    )
}

// ---------------------------------------------------------------- transparency

fn verifier_key(s: &AppState) -> Option<String> {
    s.ledger.as_ref().map(|w| w.key.verifier_key())
}

/// `GET /ledger/checkpoints` (public): every signed checkpoint, newest first.
pub async fn checkpoints(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let list = match opchub_app::ledger::checkpoints_for(&s).await {
        Ok(l) => l,
        Err(e) => return page_error(&s, caller.0.as_ref(), e.into()),
    };
    let sealed = opchub_app::ledger::sealed_periods(&s).await;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            let counters: Vec<Value> = c
                .counters
                .iter()
                .map(|(source, n)| {
                    let balanced = n
                        .stored
                        .checked_add(n.duplicates)
                        .and_then(|v| v.checked_add(n.rejected))
                        .is_some_and(|v| v == n.received);
                    context! {
                        source => source, received => n.received, stored => n.stored,
                        duplicates => n.duplicates, rejected => n.rejected, balanced => balanced,
                    }
                })
                .collect();
            context! {
                tree_size => c.tree_size, root => c.root, root_short => c.root.get(..16).unwrap_or(&c.root),
                reason => c.reason, created_at => c.created_at, note => c.note, counters => counters,
            }
        })
        .collect();
    let sealed: Vec<Value> = sealed
        .into_iter()
        .map(|(period, at, size)| context! { period => period, sealed_at => at, tree_size => size })
        .collect();
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "ledger_checkpoints.html",
        StatusCode::OK,
        context! { checkpoints => rows, sealed => sealed, key => verifier_key(&s) },
    )
}

#[derive(Deserialize, Default)]
pub struct ProofQuery {
    pub leaf_index: Option<String>,
    pub tree_size: Option<String>,
}

/// One step of the verification, as shown to the visitor.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Check {
    /// Catalog key suffix (`ledger.proof.check_<step>`, failures `ledger.proof.fail_<code>`).
    pub step: &'static str,
    pub ok: bool,
    /// The failure code when not ok.
    pub fail: Option<&'static str>,
}

fn hash_of(hex_str: &str) -> Option<Hash> {
    hex::decode(hex_str).ok()?.try_into().ok()
}

/// Verifies an inclusion proof as an outside auditor would: the checkpoint note's signature
/// with the public key, its tree size, the event's content against the leaf hash (when the
/// event row's recomputed hash is given), and the audit path up to the signed root. Stops at
/// the first failure.
pub fn verify_proof(p: &InclusionProof, key: Option<&str>, recomputed_leaf: Option<&str>) -> Vec<Check> {
    let mut checks = vec![];
    let mut step = |step: &'static str, fail: Option<&'static str>| -> bool {
        checks.push(Check {
            step,
            ok: fail.is_none(),
            fail,
        });
        fail.is_none()
    };
    let signed = match (key, p.checkpoint.as_deref()) {
        (None, _) => Err("no_key"),
        (_, None) => Err("no_checkpoint"),
        (Some(k), Some(note)) => verify_checkpoint(note, k).map_err(|_| "signature"),
    };
    let signed = match signed {
        Ok(v) => v,
        Err(f) => {
            step("signature", Some(f));
            return checks;
        }
    };
    let path: Option<Vec<Hash>> = p.proof.iter().map(|h| hash_of(h)).collect();
    let included = match (path, hash_of(&p.leaf_hash), u64::try_from(p.leaf_index)) {
        (Some(path), Some(leaf), Ok(i)) => verify_inclusion(&path, signed.size, &signed.root, i, &leaf).is_ok(),
        _ => false,
    };
    let _ = step("signature", None)
        && step("size", (i64::try_from(signed.size).ok() != Some(p.tree_size)).then_some("size"))
        && step("leaf", (recomputed_leaf != Some(p.leaf_hash.as_str())).then_some("leaf"))
        && step("path", (!included).then_some("path"));
    checks
}

fn parse_index(v: Option<&str>, field: &str) -> Result<Option<i64>, ApiError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(ApiError::field(field, "out_of_range")),
        },
    }
}

/// `GET /ledger/proof?leaf_index=N[&tree_size=M]` (public): the proof, verified here.
pub async fn proof(
    State(s): State<AppState>,
    caller: Caller,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ProofQuery>,
) -> Response {
    let lang = i18n::current_lang();
    let form = context! { leaf_index => q.leaf_index.as_deref().unwrap_or(""), tree_size => q.tree_size.as_deref().unwrap_or("") };
    let outcome = async {
        let Some(leaf) = parse_index(q.leaf_index.as_deref(), "leaf_index")? else {
            return Ok(None);
        };
        let tree_size = parse_index(q.tree_size.as_deref(), "tree_size")?;
        if tree_size.is_none() {
            if let Some((covered, size)) = opchub_app::ledger::awaiting_checkpoint(&s, leaf).await? {
                return Ok(Some(Err((leaf, covered, size))));
            }
        }
        let p = inclusion_for(&s, leaf, tree_size).await?;
        let recomputed = opchub_app::ledger::recomputed_leaf_hash(&s, leaf).await;
        let checks = verify_proof(&p, verifier_key(&s).as_deref(), recomputed.as_deref());
        Ok::<_, ApiError>(Some(Ok((p, checks))))
    }
    .await;
    let mut pending = None;
    let (status, proof, checks, error) = match outcome {
        Ok(None) => (StatusCode::OK, None, vec![], None),
        Ok(Some(Ok((p, checks)))) => (StatusCode::OK, Some(p), checks, None),
        // In the ledger, not yet in a signed checkpoint: said as such, not as a failure.
        Ok(Some(Err((leaf, covered, size)))) => {
            pending = Some(context! { leaf => leaf, covered => covered, size => size });
            (StatusCode::OK, None, vec![], None)
        }
        Err(e) => {
            let (message, fields) = e.messages(&lang);
            let detail = fields.values().cloned().collect::<Vec<_>>().join("；");
            (e.status, None, vec![], Some(if detail.is_empty() { message } else { detail }))
        }
    };
    let verified = !checks.is_empty() && checks.iter().all(|c| c.ok);
    let failure = checks
        .iter()
        .find_map(|c| c.fail)
        .map(|f| i18n::text(&lang, &format!("ledger.proof.fail_{f}")))
        .or(error);
    render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "ledger_proof.html",
        status,
        context! {
            form => form, proof => proof, checks => checks, verified => verified, failure => failure,
            pending => pending, key => verifier_key(&s),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opchub_ledger::checkpoint::LedgerKey;
    use opchub_ledger::merkle::{leaf_hash, MemoryTree};

    #[test]
    fn numbers_and_periods() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-1000), "-1,000");
        assert_eq!(grouped(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(money(123456), "¥1,234.56");
        assert_eq!(shift_period("2026-01", -1), "2025-12");
        assert_eq!(shift_period("2026-12", 1), "2027-01");
        assert_eq!(shift_period("2026-06", 0), "2026-06");
        assert_eq!(shift_period("x", 1), "x");
    }

    fn proof_of(leaves: u64, index: u64, key: &LedgerKey) -> InclusionProof {
        let mut tree = MemoryTree::new();
        let hashes: Vec<Hash> = (0..leaves).map(|i| leaf_hash(format!("event {i}").as_bytes())).collect();
        for h in &hashes {
            tree.append(*h).unwrap();
        }
        let root = tree.root().unwrap();
        let path = opchub_ledger::merkle::inclusion_proof(index, leaves, &tree.stored().to_vec()).unwrap();
        InclusionProof {
            leaf_index: index as i64,
            tree_size: leaves as i64,
            leaf_hash: hex::encode(hashes[index as usize]),
            root: hex::encode(root),
            proof: path.iter().map(hex::encode).collect(),
            checkpoint: Some(key.sign_checkpoint("opchub.test/ledger", leaves, &root).unwrap()),
        }
    }

    #[test]
    fn a_good_proof_verifies_and_each_kind_of_damage_is_named() {
        let key = LedgerKey::generate("opchub.test");
        let vk = key.verifier_key();
        let p = proof_of(7, 5, &key);
        let leaf = p.leaf_hash.clone();
        let all = verify_proof(&p, Some(&vk), Some(&leaf));
        assert_eq!(
            all.iter().map(|c| (c.step, c.ok)).collect::<Vec<_>>(),
            [("signature", true), ("size", true), ("leaf", true), ("path", true)]
        );
        let last_fail = |checks: Vec<Check>| checks.last().and_then(|c| c.fail);
        assert_eq!(last_fail(verify_proof(&p, None, Some(&leaf))), Some("no_key"));
        let other = LedgerKey::generate("opchub.test").verifier_key();
        assert_eq!(last_fail(verify_proof(&p, Some(&other), Some(&leaf))), Some("signature"));
        let mut unsigned = proof_of(7, 5, &key);
        unsigned.checkpoint = None;
        assert_eq!(last_fail(verify_proof(&unsigned, Some(&vk), Some(&leaf))), Some("no_checkpoint"));
        let mut resized = proof_of(7, 5, &key);
        resized.tree_size = 6;
        assert_eq!(last_fail(verify_proof(&resized, Some(&vk), Some(&leaf))), Some("size"));
        assert_eq!(last_fail(verify_proof(&p, Some(&vk), None)), Some("leaf"));
        assert_eq!(last_fail(verify_proof(&p, Some(&vk), Some(&"00".repeat(32)))), Some("leaf"));
        let mut bad_path = proof_of(7, 5, &key);
        bad_path.proof[0] = "11".repeat(32);
        assert_eq!(last_fail(verify_proof(&bad_path, Some(&vk), Some(&leaf))), Some("path"));
        let mut wrong_index = proof_of(7, 5, &key);
        wrong_index.leaf_index = 4;
        assert_eq!(last_fail(verify_proof(&wrong_index, Some(&vk), Some(&leaf))), Some("path"));
    }
}
